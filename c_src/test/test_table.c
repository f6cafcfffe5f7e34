/* Unit tests for table.c (and siphash.c, which keys it).
 * Covers: SipHash-2-4 against the reference vectors of the SipHash paper;
 * put/get/del/replace on single entries (replacement keeps the count, keys
 * that are prefixes of each other stay distinct, empty metadata); 100k
 * inserts through many bucket doublings with every entry still reachable and
 * half of them deleted again; rg_table_visit deleting a subset while visiting
 * every entry exactly once; rg_table_sorted returning entries in key order
 * (memcmp, shorter prefix first) and NULL for an empty table; clear and
 * reuse; rg_table_set_version (a put starts an entry at version 0, also
 * when it replaces one; setting an absent key's version is a no-op). The table does not check canonical form itself, so plain strings
 * serve as keys here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"
#include "table.h"
#include "unit.h"

static const struct rg_sipkey test_key = {0x0706050403020100ULL,
                                          0x0F0E0D0C0B0A0908ULL};

/* Key 00..0f, message 00..(n-1): outputs from the paper's appendix/vectors. */
static void test_siphash_vectors(void)
{
    uint8_t msg[64];
    for (int i = 0; i < 64; i++) {
        msg[i] = (uint8_t)i;
    }
    CHECK(rg_siphash(&test_key, msg, 0) == 0x726FDB47DD0E0E31ULL);
    CHECK(rg_siphash(&test_key, msg, 1) == 0x74F839C593DC67FDULL);
    CHECK(rg_siphash(&test_key, msg, 7) == 0xAB0200F58B01D137ULL);
    CHECK(rg_siphash(&test_key, msg, 8) == 0x93F5F5799A932462ULL);
    CHECK(rg_siphash(&test_key, msg, 15) == 0xA129CA6149BE45E5ULL);
    CHECK(rg_siphash(&test_key, msg, 63) == 0x958A324CEB064572ULL);
    struct rg_sipkey other = {1, 2};
    CHECK(rg_siphash(&other, msg, 15) != rg_siphash(&test_key, msg, 15));
}

static bool entry_is(const struct rg_entry *e, const char *key, const char *pid,
                     const char *meta)
{
    return e != NULL && e->key_len == strlen(key) &&
           memcmp(rg_entry_key(e), key, e->key_len) == 0 &&
           e->pid_len == strlen(pid) &&
           memcmp(rg_entry_pid(e), pid, e->pid_len) == 0 &&
           e->meta_len == strlen(meta) &&
           memcmp(rg_entry_meta(e), meta, e->meta_len) == 0;
}

static int put_s(struct rg_table *t, const char *key, const char *pid,
                 const char *meta)
{
    return rg_table_put(t, (const uint8_t *)key, strlen(key),
                        (const uint8_t *)pid, strlen(pid),
                        (const uint8_t *)meta, strlen(meta));
}

static const struct rg_entry *get_s(const struct rg_table *t, const char *key)
{
    return rg_table_get(t, (const uint8_t *)key, strlen(key));
}

static bool del_s(struct rg_table *t, const char *key)
{
    return rg_table_del(t, (const uint8_t *)key, strlen(key));
}

static void test_basic(void)
{
    struct rg_table t;
    CHECK(rg_table_init(&t, test_key) == 0);
    CHECK(t.count == 0 && get_s(&t, "a") == NULL);
    CHECK(!del_s(&t, "a"));

    CHECK(put_s(&t, "a", "pid1", "m1") == 0);
    CHECK(t.count == 1);
    CHECK(entry_is(get_s(&t, "a"), "a", "pid1", "m1"));

    CHECK(put_s(&t, "a", "pid2", "") == 0); /* replace: count unchanged */
    CHECK(t.count == 1);
    CHECK(entry_is(get_s(&t, "a"), "a", "pid2", ""));

    CHECK(put_s(&t, "ab", "pid3", "m3") == 0); /* "a" is a prefix of "ab" */
    CHECK(rg_table_put(&t, (const uint8_t *)"a\0", 2, (const uint8_t *)"p", 1,
                       NULL, 0) == 0);
    CHECK(t.count == 3);
    CHECK(entry_is(get_s(&t, "a"), "a", "pid2", ""));
    CHECK(entry_is(get_s(&t, "ab"), "ab", "pid3", "m3"));
    const struct rg_entry *z = rg_table_get(&t, (const uint8_t *)"a\0", 2);
    CHECK(z != NULL && z->key_len == 2 && z->meta_len == 0);
    CHECK(get_s(&t, "b") == NULL);

    CHECK(del_s(&t, "a"));
    CHECK(!del_s(&t, "a"));
    CHECK(t.count == 2 && get_s(&t, "a") == NULL);
    CHECK(entry_is(get_s(&t, "ab"), "ab", "pid3", "m3"));

    rg_table_clear(&t);
    CHECK(t.count == 0 && get_s(&t, "ab") == NULL);
    CHECK(put_s(&t, "ab", "pid4", "") == 0);
    CHECK(entry_is(get_s(&t, "ab"), "ab", "pid4", ""));
    rg_table_free(&t);
    CHECK(t.buckets == NULL);
    rg_table_free(&t); /* idempotent */
}

#define MANY 100000

static void key_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "name-%d", i);
}

static void test_growth(void)
{
    struct rg_table t;
    char key[32], pid[32];
    CHECK(rg_table_init(&t, test_key) == 0);
    for (int i = 0; i < MANY; i++) {
        key_of(key, sizeof key, i);
        snprintf(pid, sizeof pid, "pid-%d", i);
        if (put_s(&t, key, pid, i % 3 ? "meta" : "") != 0) {
            CHECK(!"put failed");
            break;
        }
    }
    CHECK(t.count == MANY);
    CHECK(t.mask + 1 >= MANY);              /* load factor <= 1 */
    CHECK(((t.mask + 1) & t.mask) == 0);    /* a power of two */
    int found = 0;
    for (int i = 0; i < MANY; i++) {
        key_of(key, sizeof key, i);
        snprintf(pid, sizeof pid, "pid-%d", i);
        found += entry_is(get_s(&t, key), key, pid, i % 3 ? "meta" : "");
    }
    CHECK(found == MANY);
    int deleted = 0;
    for (int i = 0; i < MANY; i += 2) {
        key_of(key, sizeof key, i);
        deleted += del_s(&t, key);
    }
    CHECK(deleted == MANY / 2 && t.count == MANY / 2);
    int present = 0, absent = 0;
    for (int i = 0; i < MANY; i++) {
        key_of(key, sizeof key, i);
        if (i % 2) {
            present += get_s(&t, key) != NULL;
        } else {
            absent += get_s(&t, key) == NULL;
        }
    }
    CHECK(present == MANY / 2 && absent == MANY / 2);
    rg_table_free(&t);
}

struct visit_state {
    int seen[1000];
    int calls;
};

/* Deletes the entries whose pid (a decimal index) is a multiple of 3. */
static bool visit_del3(void *arg, const struct rg_entry *e)
{
    struct visit_state *s = arg;
    char buf[16];
    memcpy(buf, rg_entry_pid(e), e->pid_len);
    buf[e->pid_len] = '\0';
    int i = atoi(buf);
    s->seen[i]++;
    s->calls++;
    return i % 3 == 0;
}

static void test_visit(void)
{
    struct rg_table t;
    struct visit_state s;
    char key[32], pid[16];
    memset(&s, 0, sizeof s);
    CHECK(rg_table_init(&t, test_key) == 0);
    for (int i = 0; i < 1000; i++) {
        key_of(key, sizeof key, i);
        snprintf(pid, sizeof pid, "%d", i);
        CHECK(put_s(&t, key, pid, "") == 0);
    }
    rg_table_visit(&t, visit_del3, &s);
    CHECK(s.calls == 1000);
    int once = 0;
    for (int i = 0; i < 1000; i++) {
        once += s.seen[i] == 1;
    }
    CHECK(once == 1000);
    CHECK(t.count == 1000 - 334);
    int right = 0;
    for (int i = 0; i < 1000; i++) {
        key_of(key, sizeof key, i);
        right += (get_s(&t, key) == NULL) == (i % 3 == 0);
    }
    CHECK(right == 1000);

    /* A second pass sees only the survivors and deletes none of them. */
    memset(&s, 0, sizeof s);
    rg_table_visit(&t, visit_del3, &s);
    CHECK(s.calls == 666 && t.count == 666);
    rg_table_free(&t);
}

static bool key_less(const struct rg_entry *a, const struct rg_entry *b)
{
    size_t m = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(rg_entry_key(a), rg_entry_key(b), m);
    return c < 0 || (c == 0 && a->key_len < b->key_len);
}

static void test_sorted(void)
{
    struct rg_table t;
    size_t n = 99;
    CHECK(rg_table_init(&t, test_key) == 0);
    CHECK(rg_table_sorted(&t, &n) == NULL && n == 0);

    static const char *keys[] = {"b", "ab", "a", "ba", "\x7f", "\x80", "\xff",
                                 "aa", "abc", "B", "\x01"};
    static const char *order[] = {"\x01", "B",  "a",    "aa",   "ab",  "abc",
                                  "b",    "ba", "\x7f", "\x80", "\xff"};
    const size_t nkeys = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < nkeys; i++) {
        CHECK(put_s(&t, keys[i], "p", "") == 0);
    }
    const struct rg_entry **v = rg_table_sorted(&t, &n);
    CHECK(v != NULL && n == nkeys);
    for (size_t i = 0; v != NULL && i < n; i++) {
        CHECK(v[i]->key_len == strlen(order[i]) &&
              memcmp(rg_entry_key(v[i]), order[i], v[i]->key_len) == 0);
    }
    free(v);

    /* Many keys of mixed lengths: strictly increasing throughout. */
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "%x", (unsigned)(i * 2654435761u));
        CHECK(put_s(&t, key, "p", "") == 0);
    }
    v = rg_table_sorted(&t, &n);
    CHECK(v != NULL && n == t.count);
    size_t increasing = 0;
    for (size_t i = 1; v != NULL && i < n; i++) {
        increasing += key_less(v[i - 1], v[i]);
    }
    CHECK(increasing == n - 1);
    free(v);
    rg_table_free(&t);
}

/* The version is the FSM's business: the table starts every entry it
 * stores, a replacement too, at 0 and keeps what it is given. */
static void test_version(void)
{
    struct rg_table t;
    CHECK(rg_table_init(&t, test_key) == 0);
    CHECK(put_s(&t, "k", "p", "m") == 0 && get_s(&t, "k")->version == 0);
    rg_table_set_version(&t, (const uint8_t *)"k", 1, 41);
    CHECK(get_s(&t, "k")->version == 41 && entry_is(get_s(&t, "k"), "k", "p", "m"));
    CHECK(put_s(&t, "k2", "p", "") == 0 && get_s(&t, "k")->version == 41 &&
          get_s(&t, "k2")->version == 0);
    rg_table_set_version(&t, (const uint8_t *)"kk", 2, 7); /* absent: no-op */
    CHECK(t.count == 2 && get_s(&t, "kk") == NULL && get_s(&t, "k2")->version == 0);
    CHECK(put_s(&t, "k", "q", "") == 0 && get_s(&t, "k")->version == 0); /* replaced */
    rg_table_set_version(&t, (const uint8_t *)"k", 1, UINT64_MAX);
    CHECK(get_s(&t, "k")->version == UINT64_MAX && t.count == 2);
    CHECK(rg_table_del(&t, (const uint8_t *)"k", 1));
    rg_table_set_version(&t, (const uint8_t *)"k", 1, 3);
    CHECK(get_s(&t, "k") == NULL && t.count == 1);
    rg_table_free(&t);
}

int main(void)
{
    test_siphash_vectors();
    test_basic();
    test_growth();
    test_visit();
    test_sorted();
    test_version();
    UNIT_DONE("test_table");
}
