/* libFuzzer target: an arbitrary byte string as a snapshot for
 * rg_fsm_restore, into an FSM that already holds a row in each of its
 * three tables (a name, a group entry, a metadata key) and de-duplication
 * entries. A refused snapshot must leave all of them exactly as they were
 * (the version counter too, and `restored` unset); an accepted one must
 * hold names of versions 1..version_seq only, re-snapshot to bytes that
 * restore into a second FSM with the same row count in each table and the
 * same version_seq, and snapshot identically again (sorted,
 * deterministic); a put after it gets the version after version_seq. Any
 * difference aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm.h"
#include "limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rg_sipkey key_a = {5, 6};
static const struct rg_sipkey key_b = {7, 8};

/* Registers {x,1} -> a pid, adds a value to the group {x,1} for it and
 * puts the metadata key {x,1}, refs 1..3 (so the de-duplication set holds
 * origin 0's refs 1..3): every table has a row, so "unchanged" means
 * something. */
static void seed_table(struct rg_fsm *f)
{
    static const uint8_t key[] = {104, 2, 119, 1, 'x', 97, 1};
    static const uint8_t pid[] = {88, 119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                  0,  0,   0, 0,   0,   0,   0, 1};
    static const uint8_t kinds[] = {RG_OP_REGISTER, RG_OP_GROUP_ADD,
                                    RG_OP_META_PUT};
    struct rg_wbuf w;
    size_t off;
    rg_wbuf_init(&w);
    rg_entry_begin(&w, &off);
    for (uint8_t i = 0; i < sizeof kinds; i++) {
        struct rg_op op;
        memset(&op, 0, sizeof op);
        op.kind = kinds[i];
        op.ref = 1u + i;
        op.key = key;
        op.key_len = sizeof key;
        op.pid = pid;
        op.pid_len = sizeof pid;
        op.meta = (const uint8_t *)"v";
        op.meta_len = 1;
        rg_op_encode(&w, &op, true);
    }
    rg_wbuf_patch_u32(&w, off, sizeof kinds);
    rg_entry_finish(&w);
    if (rg_fsm_apply(f, w.data, w.len) != 0 || f->table.count != 1 ||
        f->groups.count != 1 || f->meta.count != 1 || f->dedup.n != 1) {
        abort();
    }
    rg_wbuf_free(&w);
}

/* Every name's version is 1..version_seq. */
static bool versions_in_range(void *arg, const struct rg_entry *e)
{
    const struct rg_fsm *f = arg;
    if (e->version == 0 || e->version > f->version_seq) {
        abort();
    }
    return false;
}

/* REGISTER of {y,2} after a restore: if it puts (the snapshot may hold
 * the name: then it may answer NO or change nothing), the version is the
 * one after the snapshot's version_seq (unless that is the largest u64,
 * which no FSM reaches). */
static void put_after(struct rg_fsm *f)
{
    static const uint8_t key[] = {104, 2, 119, 1, 'y', 97, 2};
    static const uint8_t pid[] = {88, 119, 3, 'b', '@', 'h', 0, 0, 0, 2,
                                  0,  0,   0, 0,   0,   0,   0, 1};
    struct rg_wbuf w;
    struct rg_op op;
    size_t off;
    memset(&op, 0, sizeof op);
    op.kind = RG_OP_REGISTER;
    op.key = key;
    op.key_len = sizeof key;
    op.pid = pid;
    op.pid_len = sizeof pid;
    op.meta = (const uint8_t *)"after";
    op.meta_len = 5;
    uint64_t seq = f->version_seq;
    rg_wbuf_init(&w);
    rg_entry_begin(&w, &off);
    rg_op_encode(&w, &op, true);
    rg_wbuf_patch_u32(&w, off, 1);
    rg_entry_finish(&w);
    rg_fsm_effects_reset(f);
    if (rg_fsm_apply(f, w.data, w.len) != 0 || f->bad_entries != 0) {
        abort();
    }
    const struct rg_entry *e = rg_table_get(&f->table, key, sizeof key);
    if (f->n_changes == 1 && seq != UINT64_MAX &&
        (f->version_seq != seq + 1 || e == NULL || e->version != seq + 1)) {
        abort();
    }
    rg_wbuf_free(&w);
}

static void snapshot(const struct rg_fsm *f, uint8_t **s, size_t *n)
{
    if (rg_fsm_snapshot(f, s, n) != 0) {
        abort();
    }
}

static void same_or_abort(const uint8_t *a, size_t an, const uint8_t *b,
                          size_t bn)
{
    if (an != bn || memcmp(a, b, an) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rg_fsm f, g;
    uint8_t *before, *after, *again;
    size_t nb, na, ng;
    if (rg_fsm_init(&f, 1, key_a) != 0 || rg_fsm_init(&g, 2, key_b) != 0) {
        abort();
    }
    seed_table(&f);
    snapshot(&f, &before, &nb);
    if (rg_fsm_restore(&f, data, size) != 0) {
        snapshot(&f, &after, &na);
        same_or_abort(before, nb, after, na);
        if (f.restored) {
            abort();
        }
    } else {
        rg_table_visit(&f.table, versions_in_range, &f);
        snapshot(&f, &after, &na);
        if (rg_fsm_restore(&g, after, na) != 0 ||
            g.table.count != f.table.count || g.groups.count != f.groups.count ||
            g.meta.count != f.meta.count || g.version_seq != f.version_seq) {
            abort();
        }
        snapshot(&g, &again, &ng);
        same_or_abort(after, na, again, ng);
        free(again);
        put_after(&g);
    }
    free(before);
    free(after);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
    return 0;
}
