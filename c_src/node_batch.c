/* Batching: every op that arrives during one loop iteration, from OPS and
 * FWD_OPS frames, goes into one log entry; an entry that fails is answered
 * RETRY op by op (node_int.h). */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

#include "limits.h"

struct batch_req {
    struct raft_apply req;
    struct rg_node *node;
    struct rg_oref *refs; /* owned */
    uint32_t n;
};

static bool batch_push_ref(struct rg_node *n, uint64_t origin, uint64_t ref)
{
    if (n->batch_n == n->batch_refs_cap) {
        uint32_t cap = n->batch_refs_cap ? n->batch_refs_cap * 2 : 256;
        struct rg_oref *r = realloc(n->batch_refs, cap * sizeof *r);
        if (r == NULL) {
            return false;
        }
        n->batch_refs = r;
        n->batch_refs_cap = cap;
    }
    n->batch_refs[n->batch_n].origin = origin;
    n->batch_refs[n->batch_n].ref = ref;
    n->batch_n++;
    return true;
}

void rg_node_batch_reset(struct rg_node *n)
{
    rg_wbuf_reset(&n->batch);
    n->batch_n = 0;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct batch_req *b = req->data;
    /* On success the FSM has applied the entry and answered its ops (but a
     * skipped second copy of a write: its first copy was answered).
     * Otherwise the entry may still commit later (then its replies come from
     * apply); the member re-sends on RETRY, and the FSM skips whichever copy
     * of a write commits second (fsm.h). */
    if (status != 0 && !b->node->stopping) {
        rg_node_send_replies(b->node, b->refs, b->n, RG_RES_RETRY);
    }
    free(b->refs);
    free(b);
}

/* Proposes the batch as one entry, or answers RETRY if we cannot. */
void rg_node_batch_flush(struct rg_node *n)
{
    if (n->batch_n == 0) {
        return;
    }
    rg_wbuf_patch_u32(&n->batch, n->batch_count_off, n->batch_n);
    rg_entry_finish(&n->batch);
    struct batch_req *b = calloc(1, sizeof *b);
    struct raft_buffer buf = {raft_malloc(n->batch.len), n->batch.len};
    if (b == NULL || buf.base == NULL || n->batch.oom ||
        raft_state(&n->raft) != RAFT_LEADER) {
        goto err;
    }
    memcpy(buf.base, n->batch.data, n->batch.len);
    b->node = n;
    b->req.data = b;
    b->n = n->batch_n;
    b->refs = malloc(b->n * sizeof *b->refs);
    if (b->refs == NULL) {
        goto err;
    }
    memcpy(b->refs, n->batch_refs, b->n * sizeof *b->refs);
    if (raft_apply(&n->raft, &b->req, &buf, 1, apply_cb) != 0) {
        /* libraft 0.22 frees the entry on some failure paths (I/O
         * submission) and not on others (not leader): we cannot know, so
         * the buffer is left to it. We only get here if leadership moved
         * within this iteration or memory ran out. */
        rg_node_log("raft_apply failed", raft_errmsg(&n->raft));
        buf.base = NULL;
        goto err;
    }
    rg_node_batch_reset(n);
    return;
err:
    rg_node_send_replies(n, n->batch_refs, n->batch_n, RG_RES_RETRY);
    if (b != NULL) {
        free(b->refs);
    }
    free(b);
    raft_free(buf.base);
    rg_node_batch_reset(n);
}

/* origin: the daemon whose member asked for the op (ours, or a forwarder's). */
static void batch_add(struct rg_node *n, struct rg_op *op, uint64_t origin)
{
    if (n->batch_n == 0) {
        /* Reset: a failed push below leaves a header without ops. */
        rg_wbuf_reset(&n->batch);
        rg_entry_begin(&n->batch, &n->batch_count_off);
    }
    op->origin = origin;
    if (!batch_push_ref(n, origin, op->ref)) {
        struct rg_oref o = {origin, op->ref};
        rg_node_send_replies(n, &o, 1, RG_RES_RETRY);
        return;
    }
    rg_op_encode(&n->batch, op, true);
    if (n->batch.len >= RG_BATCH_MAX) {
        rg_node_batch_flush(n);
    }
}

/* OPS from our member (origin: us) or FWD_OPS passed on by it for another
 * member (origin: that member's daemon). */
void rg_node_handle_ops(struct rg_node *n, struct rg_rbuf *r, bool forwarded)
{
    uint32_t count;
    uint64_t origin = n->id;
    if (!n->started) {
        rg_node_send_error(n, "OPS before START");
        return;
    }
    if ((forwarded && !rg_proto_fwd_origin(r, &origin)) ||
        !rg_proto_ops_count(r, &count)) {
        rg_node_send_error(n, "malformed OPS frame");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct rg_op op;
        if (!rg_op_decode(r, false, &op)) {
            /* Answer the op if its ref was readable (and it is not a
             * SETTLE, which is never answered); the rest of the frame
             * cannot be trusted. */
            if (op.ref != 0 && op.kind != RG_OP_SETTLE) {
                struct rg_oref o = {origin, op.ref};
                rg_node_send_replies(n, &o, 1, RG_RES_BAD);
            }
            rg_node_send_error(n, "malformed op in OPS frame");
            return;
        }
        batch_add(n, &op, origin);
    }
    if (!rg_rbuf_done(r)) {
        rg_node_send_error(n, "trailing bytes after the ops");
    }
}
