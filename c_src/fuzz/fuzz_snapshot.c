/* libFuzzer target: an arbitrary byte string as a snapshot for
 * rg_fsm_restore, into an FSM that already holds one name and one
 * de-duplication entry. A refused snapshot must leave both exactly as they
 * were (and `restored` unset);
 * an accepted one must re-snapshot to bytes that restore into a second FSM
 * and snapshot identically again (sorted, deterministic). Any difference
 * aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rg_sipkey key_a = {5, 6};
static const struct rg_sipkey key_b = {7, 8};

/* Registers {x,1} -> a pid with a ref (so the de-duplication set holds
 * (0, 1)), so "unchanged" means something. */
static void seed_table(struct rg_fsm *f)
{
    static const uint8_t key[] = {104, 2, 119, 1, 'x', 97, 1};
    static const uint8_t pid[] = {88, 119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                  0,  0,   0, 0,   0,   0,   0, 1};
    struct rg_op op;
    struct rg_wbuf w;
    size_t off;
    memset(&op, 0, sizeof op);
    op.kind = RG_OP_REGISTER;
    op.ref = 1;
    op.key = key;
    op.key_len = sizeof key;
    op.pid = pid;
    op.pid_len = sizeof pid;
    rg_wbuf_init(&w);
    rg_entry_begin(&w, &off);
    rg_op_encode(&w, &op, true);
    rg_wbuf_patch_u32(&w, off, 1);
    rg_entry_finish(&w);
    if (rg_fsm_apply(f, w.data, w.len) != 0 || f->table.count != 1 ||
        f->dedup.n != 1) {
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
        snapshot(&f, &after, &na);
        if (rg_fsm_restore(&g, after, na) != 0) {
            abort();
        }
        snapshot(&g, &again, &ng);
        same_or_abort(after, na, again, ng);
        free(again);
    }
    free(before);
    free(after);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
    return 0;
}
