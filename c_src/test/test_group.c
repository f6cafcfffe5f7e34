/* Unit tests for group.c, the duplicate-key table's entries.
 * Covers: rg_group_add creates the entry of (name, pid) with its key laid
 * out as name bytes then pid bytes and the value list as [u32 len][bytes]
 * per value, appends in order, keeps a value added twice twice, and keeps
 * entries of other pids and other names apart; rg_group_del of one value
 * (every copy of it goes, the rest stay in order; the entry goes when
 * nothing is left; `removed` says whether anything went) and of all values;
 * a value list may reach RG_GROUP_VALUES_MAX exactly, one byte more is
 * FULL with the table unchanged; rg_group_values_check accepts well-formed
 * non-empty lists only (empty, truncated headers, lengths past the end,
 * values over RG_META_MAX and lists over the cap are refused), read from
 * exact-size copies so that an overread trips ASan; rg_group_view splits
 * an entry back into name, pid and values, and refuses a key with no
 * canonical name in front. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"
#include "group.h"
#include "limits.h"
#include "table.h"
#include "unit.h"

static const struct rg_sipkey key_a = {11, 12};

/* ---- terms and value lists ---------------------------------------------- */

struct bytes {
    uint8_t b[64];
    uint32_t n;
};

static struct bytes make_pid(const char *node, uint8_t id)
{
    struct bytes t = {{0}, 0};
    size_t len = strlen(node);
    t.b[t.n++] = RG_ETF_NEW_PID;
    t.b[t.n++] = RG_ETF_SMALL_ATOM_UTF8;
    t.b[t.n++] = (uint8_t)len;
    memcpy(t.b + t.n, node, len);
    t.n += (uint32_t)len;
    uint8_t tail[12] = {0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0, 1};
    memcpy(t.b + t.n, tail, sizeof tail);
    t.n += sizeof tail;
    return t;
}

/* The name {Tag, I}; tags of different lengths give names of different
 * lengths, so a pair's split point moves. */
static struct bytes make_name(const char *tag, uint8_t i)
{
    struct bytes t;
    size_t len = strlen(tag);
    t.b[0] = RG_ETF_SMALL_TUPLE;
    t.b[1] = 2;
    t.b[2] = RG_ETF_SMALL_ATOM_UTF8;
    t.b[3] = (uint8_t)len;
    memcpy(t.b + 4, tag, len);
    t.b[4 + len] = RG_ETF_SMALL_INTEGER;
    t.b[5 + len] = i;
    t.n = (uint32_t)(6 + len);
    return t;
}

/* A value list built from NUL-terminated strings, ended by NULL. */
static void list_of(struct rg_wbuf *w, const char *const *values)
{
    rg_wbuf_reset(w);
    for (size_t i = 0; values[i] != NULL; i++) {
        rg_wbuf_blob(w, values[i], strlen(values[i]));
    }
}

static int add(struct rg_table *t, const struct bytes *name,
               const struct bytes *pid, const char *value)
{
    return rg_group_add(t, name->b, name->n, pid->b, pid->n,
                        (const uint8_t *)value, strlen(value));
}

static int del(struct rg_table *t, const struct bytes *name,
               const struct bytes *pid, const char *value, bool all,
               bool *removed)
{
    return rg_group_del(t, name->b, name->n, pid->b, pid->n,
                        (const uint8_t *)value, strlen(value), all, removed);
}

/* (name, pid)'s entry holds exactly the listed values, in order (values
 * NULL: there is no entry). */
static bool holds(const struct rg_table *t, const struct bytes *name,
                  const struct bytes *pid, const char *const *values)
{
    const struct rg_entry *e = rg_group_get(t, name->b, name->n, pid->b, pid->n);
    if (values == NULL) {
        return e == NULL;
    }
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    list_of(&w, values);
    bool ok = e != NULL && e->meta_len == w.len &&
              memcmp(rg_entry_meta(e), w.data, w.len) == 0;
    rg_wbuf_free(&w);
    return ok;
}

static bool values_check_exact(const uint8_t *p, size_t n)
{
    uint8_t *copy = unit_dup_exact(p, n);
    bool ok = rg_group_values_check(copy, n);
    free(copy);
    return ok;
}

/* ---- add and del -------------------------------------------------------- */

/* The entry's layout is what snapshots and DUMP rows are cut from. */
static void test_add_layout(void)
{
    struct rg_table t;
    struct bytes name = make_name("grp", 1), pid = make_pid("a@h", 1);
    CHECK(rg_table_init(&t, key_a) == 0);
    CHECK(add(&t, &name, &pid, "v1") == RG_GROUP_ADDED && t.count == 1);
    const struct rg_entry *e = rg_group_get(&t, name.b, name.n, pid.b, pid.n);
    CHECK(e != NULL && e->key_len == name.n + pid.n && e->pid_len == 0);
    CHECK(e != NULL && memcmp(rg_entry_key(e), name.b, name.n) == 0 &&
          memcmp(rg_entry_key(e) + name.n, pid.b, pid.n) == 0);
    static const uint8_t list[] = {0, 0, 0, 2, 'v', '1'};
    CHECK(e != NULL && e->meta_len == sizeof list &&
          memcmp(rg_entry_meta(e), list, sizeof list) == 0);

    static const char *const v1[] = {"v1", NULL};
    static const char *const v12[] = {"v1", "v2", NULL};
    CHECK(add(&t, &name, &pid, "v2") == RG_GROUP_ADDED && t.count == 1);
    CHECK(holds(&t, &name, &pid, v12));

    /* An empty value is a value. */
    static const char *const v12e[] = {"v1", "v2", "", NULL};
    CHECK(add(&t, &name, &pid, "") == RG_GROUP_ADDED);
    CHECK(holds(&t, &name, &pid, v12e));

    /* Other pids and other names are other entries. */
    struct bytes pid2 = make_pid("a@h", 2), name2 = make_name("grp", 2);
    CHECK(add(&t, &name, &pid2, "v1") == RG_GROUP_ADDED && t.count == 2);
    CHECK(add(&t, &name2, &pid, "v1") == RG_GROUP_ADDED && t.count == 3);
    CHECK(holds(&t, &name, &pid, v12e) && holds(&t, &name, &pid2, v1) &&
          holds(&t, &name2, &pid, v1));
    CHECK(holds(&t, &name2, &pid2, NULL));
    rg_table_free(&t);
}

/* A pid may register one name with one value many times (Elixir's
 * Registry allows it): each registration is a copy in the list. */
static void test_add_twice(void)
{
    struct rg_table t;
    struct bytes name = make_name("twice", 1), pid = make_pid("b@h", 3);
    CHECK(rg_table_init(&t, key_a) == 0);
    CHECK(add(&t, &name, &pid, "same") == RG_GROUP_ADDED);
    CHECK(add(&t, &name, &pid, "same") == RG_GROUP_ADDED);
    static const char *const two[] = {"same", "same", NULL};
    CHECK(holds(&t, &name, &pid, two) && t.count == 1);
    rg_table_free(&t);
}

static void test_del_one(void)
{
    struct rg_table t;
    bool removed = true;
    struct bytes name = make_name("del", 1), pid = make_pid("c@h", 4);
    struct bytes other = make_pid("c@h", 5);
    CHECK(rg_table_init(&t, key_a) == 0);
    static const char *const values[] = {"a", "b", "a", "c", "a", NULL};
    for (size_t i = 0; values[i] != NULL; i++) {
        CHECK(add(&t, &name, &pid, values[i]) == RG_GROUP_ADDED);
    }
    CHECK(add(&t, &name, &other, "a") == RG_GROUP_ADDED);

    /* Every copy of "a" goes; b and c stay in their order. */
    static const char *const bc[] = {"b", "c", NULL};
    CHECK(del(&t, &name, &pid, "a", false, &removed) == 0 && removed);
    CHECK(holds(&t, &name, &pid, bc));
    static const char *const a[] = {"a", NULL};
    CHECK(holds(&t, &name, &other, a)); /* another pid's "a" stays */

    /* A value not in the list: nothing goes. */
    CHECK(del(&t, &name, &pid, "a", false, &removed) == 0 && !removed);
    CHECK(del(&t, &name, &pid, "bc", false, &removed) == 0 && !removed);
    CHECK(del(&t, &name, &pid, "", false, &removed) == 0 && !removed);
    CHECK(holds(&t, &name, &pid, bc));

    /* The last values: the entry goes. */
    static const char *const c[] = {"c", NULL};
    CHECK(del(&t, &name, &pid, "b", false, &removed) == 0 && removed);
    CHECK(holds(&t, &name, &pid, c));
    CHECK(del(&t, &name, &pid, "c", false, &removed) == 0 && removed);
    CHECK(holds(&t, &name, &pid, NULL) && t.count == 1);

    /* No entry at all. */
    removed = true;
    CHECK(del(&t, &name, &pid, "c", false, &removed) == 0 && !removed);
    removed = true;
    CHECK(del(&t, &name, &pid, "", true, &removed) == 0 && !removed);
    rg_table_free(&t);
}

/* `all` removes the entry whatever value is given. */
static void test_del_all(void)
{
    struct rg_table t;
    bool removed = false;
    struct bytes name = make_name("all", 1), pid = make_pid("d@h", 6);
    struct bytes name2 = make_name("all", 2);
    CHECK(rg_table_init(&t, key_a) == 0);
    CHECK(add(&t, &name, &pid, "x") == RG_GROUP_ADDED);
    CHECK(add(&t, &name, &pid, "y") == RG_GROUP_ADDED);
    CHECK(add(&t, &name2, &pid, "x") == RG_GROUP_ADDED);
    CHECK(del(&t, &name, &pid, "not there", true, &removed) == 0 && removed);
    CHECK(holds(&t, &name, &pid, NULL) && t.count == 1);
    static const char *const x[] = {"x", NULL};
    CHECK(holds(&t, &name2, &pid, x));
    rg_table_free(&t);
}

/* Adds `n` values of `len` bytes of 'v' to (name, pid). */
static void add_big(struct rg_table *t, const struct bytes *name,
                    const struct bytes *pid, int n, size_t len)
{
    static uint8_t big[RG_META_MAX];
    memset(big, 'v', sizeof big);
    for (int i = 0; i < n; i++) {
        CHECK(rg_group_add(t, name->b, name->n, pid->b, pid->n, big, len) ==
              RG_GROUP_ADDED);
    }
}

/* The list may reach RG_GROUP_VALUES_MAX exactly; past it the add is FULL
 * and changes nothing. */
static void test_full(void)
{
    struct rg_table t;
    struct bytes name = make_name("full", 1), pid = make_pid("e@h", 7);
    CHECK(rg_table_init(&t, key_a) == 0);
    const size_t per = 4 + RG_META_MAX;
    const int n = (int)(RG_GROUP_VALUES_MAX / per); /* 15 whole values */
    add_big(&t, &name, &pid, n, RG_META_MAX);
    size_t room = RG_GROUP_VALUES_MAX - (size_t)n * per;
    CHECK(room >= 4 && room - 4 <= RG_META_MAX);

    static uint8_t big[RG_META_MAX];
    CHECK(rg_group_add(&t, name.b, name.n, pid.b, pid.n, big, room - 4 + 1) ==
          RG_GROUP_FULL); /* one byte too many */
    add_big(&t, &name, &pid, 1, room - 4); /* exactly full */
    const struct rg_entry *e = rg_group_get(&t, name.b, name.n, pid.b, pid.n);
    CHECK(e != NULL && e->meta_len == RG_GROUP_VALUES_MAX);
    CHECK(e != NULL && rg_group_values_check(rg_entry_meta(e), e->meta_len));
    uint8_t *before = e == NULL ? NULL : unit_dup_exact(rg_entry_meta(e), e->meta_len);

    CHECK(rg_group_add(&t, name.b, name.n, pid.b, pid.n, big, 0) == RG_GROUP_FULL);
    e = rg_group_get(&t, name.b, name.n, pid.b, pid.n);
    CHECK(e != NULL && before != NULL && e->meta_len == RG_GROUP_VALUES_MAX &&
          memcmp(rg_entry_meta(e), before, e->meta_len) == 0 && t.count == 1);

    /* Full is per (name, pid): another pid still adds. */
    struct bytes pid2 = make_pid("e@h", 8);
    CHECK(add(&t, &name, &pid2, "small") == RG_GROUP_ADDED && t.count == 2);

    /* Removing a value makes room again. */
    bool removed = false;
    uint8_t *tail = unit_dup_exact(big, room - 4);
    memset(tail, 'v', room - 4);
    CHECK(rg_group_del(&t, name.b, name.n, pid.b, pid.n, tail, room - 4, false,
                       &removed) == 0 && removed);
    e = rg_group_get(&t, name.b, name.n, pid.b, pid.n);
    CHECK(e != NULL && e->meta_len == (size_t)n * per);
    CHECK(add(&t, &name, &pid, "fits") == RG_GROUP_ADDED);
    free(tail);
    free(before);
    rg_table_free(&t);
}

/* ---- value lists -------------------------------------------------------- */

static void test_values_check(void)
{
    static const uint8_t one[] = {0, 0, 0, 1, 'x'};
    static const uint8_t empty_value[] = {0, 0, 0, 0};
    static const uint8_t three[] = {0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 2, 'y', 'z'};
    CHECK(values_check_exact(one, sizeof one));
    CHECK(values_check_exact(empty_value, sizeof empty_value));
    CHECK(values_check_exact(three, sizeof three));

    CHECK(!values_check_exact(one, 0)); /* no value at all */
    CHECK(!rg_group_values_check(NULL, 0));
    for (size_t n = 1; n < sizeof three; n++) {
        /* Cut inside a length or a value: refused; between values: a
         * shorter, valid list. */
        bool boundary = n == 5 || n == 9;
        CHECK(values_check_exact(three, n) == boundary);
    }
    static const uint8_t past_end[] = {0, 0, 0, 9, 'x'};
    CHECK(!values_check_exact(past_end, sizeof past_end));
    static const uint8_t huge_len[] = {0xFF, 0xFF, 0xFF, 0xFF, 'x'};
    CHECK(!values_check_exact(huge_len, sizeof huge_len));

    /* A value of RG_META_MAX bytes is fine, one more is not. */
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u32(&w, RG_META_MAX);
    for (uint32_t i = 0; i < RG_META_MAX; i++) {
        rg_wbuf_u8(&w, 'm');
    }
    CHECK(values_check_exact(w.data, w.len));
    rg_wbuf_patch_u32(&w, 0, RG_META_MAX + 1);
    rg_wbuf_u8(&w, 'm');
    CHECK(!values_check_exact(w.data, w.len));
    rg_wbuf_free(&w);

    /* A list over the cap, though made of valid values. */
    rg_wbuf_init(&w);
    while (w.len <= RG_GROUP_VALUES_MAX) {
        rg_wbuf_u32(&w, 0);
    }
    CHECK(w.len == RG_GROUP_VALUES_MAX + 4);
    CHECK(!values_check_exact(w.data, w.len));
    CHECK(values_check_exact(w.data, RG_GROUP_VALUES_MAX));
    rg_wbuf_free(&w);
}

/* ---- views -------------------------------------------------------------- */

static void test_view(void)
{
    struct rg_table t;
    struct rg_group_view v;
    CHECK(rg_table_init(&t, key_a) == 0);
    /* Names of several lengths, so the split point moves. */
    static const char *const tags[] = {"a", "longer_tag", "mid"};
    struct bytes pid = make_pid("view@host", 9);
    for (size_t i = 0; i < 3; i++) {
        struct bytes name = make_name(tags[i], (uint8_t)i);
        CHECK(add(&t, &name, &pid, tags[i]) == RG_GROUP_ADDED);
        const struct rg_entry *e = rg_group_get(&t, name.b, name.n, pid.b, pid.n);
        CHECK(e != NULL && rg_group_view(e, &v));
        CHECK(v.name == rg_entry_key(e) && v.name_len == name.n &&
              memcmp(v.name, name.b, name.n) == 0);
        CHECK(v.pid_len == pid.n && memcmp(v.pid, pid.b, pid.n) == 0);
        CHECK(v.values == rg_entry_meta(e) && v.values_len == e->meta_len &&
              v.values_len == 4 + strlen(tags[i]));
    }

    /* rg_group_put stores a whole list, as a snapshot row does. */
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    static const char *const vs[] = {"p", "q", "p", NULL};
    list_of(&w, vs);
    struct bytes name = make_name("put", 1);
    CHECK(rg_group_put(&t, name.b, name.n, pid.b, pid.n, w.data, w.len) == 0);
    CHECK(holds(&t, &name, &pid, vs) && t.count == 4);
    rg_wbuf_free(&w);

    /* A key with no canonical name in front is not a group entry. */
    static const uint8_t bad_key[] = {98, 0, 0, 0, 1, 88};
    CHECK(rg_table_put(&t, bad_key, sizeof bad_key, bad_key, 0, NULL, 0) == 0);
    const struct rg_entry *e = rg_table_get(&t, bad_key, sizeof bad_key);
    CHECK(e != NULL && !rg_group_view(e, &v));
    rg_table_free(&t);
}

int main(void)
{
    unit_seed(0x6B0F00D5EEDULL);
    test_add_layout();
    test_add_twice();
    test_del_one();
    test_del_all();
    test_full();
    test_values_check();
    test_view();
    UNIT_DONE("test_group");
}
