/* libFuzzer target: an arbitrary byte string as a raft log entry. It is
 * applied three times to a fresh FSM: the second time its writes with a
 * ref are copies the de-duplication set must skip, the third time (after
 * the set is forgotten) every name it registered already exists, reaching
 * the same-pid / NO / replace paths, and every group value it added is
 * added again. After each pass the recorded changes (every kind of fsm.h,
 * GROUP_DEL's `all` byte 0 or 1) and replies must parse (no reply for ref
 * 0; a payload may be an entry or REGISTER_MANY's answers, longer than a
 * pid), the FSM's last version given must have grown by exactly the
 * number of PUT changes, every name's version must be 1..version_seq and
 * no two alike, and the three tables, the versions and the set must
 * survive a snapshot -> restore (into an FSM with another hash key) ->
 * snapshot round trip byte for byte, with the same row count in each
 * table and the same version_seq. Any difference aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rg_sipkey key_a = {1, 2};
static const struct rg_sipkey key_b = {3, 4};

/* The fields of a change record after its key (fsm.h); aborts on a kind
 * fsm.h does not list. */
static void skip_change_tail(struct rg_rbuf *r, uint8_t kind)
{
    uint32_t len;
    switch (kind) {
    case RG_CHANGE_DEL:
    case RG_CHANGE_DEL_PURGE:
    case RG_CHANGE_META_DEL:
        return;
    case RG_CHANGE_PUT:
    case RG_CHANGE_GROUP_ADD:
        rg_rbuf_blob(r, RG_PID_MAX, &len);
        rg_rbuf_blob(r, RG_META_MAX, &len);
        return;
    case RG_CHANGE_GROUP_DEL:
        rg_rbuf_blob(r, RG_PID_MAX, &len);
        if (rg_rbuf_u8(r) > 1) {
            abort();
        }
        rg_rbuf_blob(r, RG_META_MAX, &len);
        return;
    case RG_CHANGE_GROUP_DEL_PURGE:
        rg_rbuf_blob(r, RG_PID_MAX, &len);
        return;
    case RG_CHANGE_META_PUT:
        rg_rbuf_blob(r, RG_META_MAX, &len);
        return;
    default:
        abort();
    }
}

/* The effect buffers are exactly n_changes / n_replies records; returns
 * the number of PUT changes. */
static uint64_t check_effects(const struct rg_fsm *f)
{
    struct rg_rbuf r;
    uint32_t len, n = 0;
    uint64_t puts = 0;
    rg_rbuf_init(&r, f->changes.data, f->changes.len);
    while (r.left > 0 && rg_rbuf_ok(&r)) {
        uint8_t kind = rg_rbuf_u8(&r);
        rg_rbuf_blob(&r, RG_NAME_MAX, &len);
        skip_change_tail(&r, kind);
        puts += kind == RG_CHANGE_PUT;
        n++;
    }
    if (!rg_rbuf_done(&r) || n != f->n_changes) {
        abort();
    }
    n = 0;
    rg_rbuf_init(&r, f->replies.data, f->replies.len);
    while (r.left > 0 && rg_rbuf_ok(&r)) {
        uint64_t ref = rg_rbuf_u64(&r);
        if (rg_rbuf_u8(&r) > RG_RES_NOT_FOUND || ref == 0) {
            abort();
        }
        rg_rbuf_blob(&r, RG_FRAME_MAX, &len);
        n++;
    }
    if (!rg_rbuf_done(&r) || n != f->n_replies) {
        abort();
    }
    return puts;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every name's version is 1..version_seq, and no two are alike. */
static void check_versions(const struct rg_fsm *f)
{
    size_t n;
    const struct rg_entry **v = rg_table_sorted(&f->table, &n);
    uint64_t *ver = malloc((n ? n : 1) * sizeof *ver);
    if ((v == NULL && n != 0) || ver == NULL) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        ver[i] = v[i]->version;
        if (ver[i] == 0 || ver[i] > f->version_seq) {
            abort();
        }
    }
    qsort(ver, n, sizeof *ver, cmp_u64);
    for (size_t i = 1; i < n; i++) {
        if (ver[i] == ver[i - 1]) {
            abort();
        }
    }
    free(ver);
    free(v);
}

static void check_round_trip(const struct rg_fsm *f)
{
    struct rg_fsm g;
    uint8_t *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (rg_fsm_init(&g, 2, key_b) != 0 || rg_fsm_snapshot(f, &s1, &n1) != 0) {
        abort();
    }
    if (rg_fsm_restore(&g, s1, n1) != 0 || g.table.count != f->table.count ||
        g.groups.count != f->groups.count || g.meta.count != f->meta.count ||
        g.version_seq != f->version_seq ||
        rg_fsm_snapshot(&g, &s2, &n2) != 0 || n1 != n2 ||
        memcmp(s1, s2, n1) != 0) {
        abort();
    }
    free(s1);
    free(s2);
    rg_fsm_close(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rg_fsm f;
    if (rg_fsm_init(&f, 1, key_a) != 0) {
        return 0;
    }
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2) {
            rg_dedup_free(&f.dedup);
            rg_dedup_init(&f.dedup);
        }
        uint64_t seq = f.version_seq;
        if (rg_fsm_apply(&f, data, size) != 0) {
            abort(); /* only out of memory may fail */
        }
        if (f.version_seq != seq + check_effects(&f)) {
            abort(); /* a version per put, none otherwise */
        }
        check_versions(&f);
        rg_fsm_effects_reset(&f);
        check_round_trip(&f);
    }
    rg_fsm_close(&f);
    return 0;
}
