/* The FSM as libraft sees it: apply, snapshot, restore over fsm.c
 * (node_int.h). */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

static int fsm_apply(struct raft_fsm *iface, const struct raft_buffer *buf,
                     void **result)
{
    struct rg_node *n = iface->data;
    uint64_t bad_before = n->fsm.bad_entries;
    *result = NULL;
    /* libraft 0.22 sets last_applied to an entry's index once its apply
     * returns (legacy.c, applyCommand), so this is the entry's index: the
     * member tells subscribers of each change with it. */
    n->applying = raft_last_applied(&n->raft) + 1;
    n->unnudged = true;
    rg_node_spin_note(n);
    if (rg_fsm_apply(&n->fsm, buf->base, buf->len) != 0) {
        rg_node_log("out of memory applying an entry", NULL);
        abort(); /* the FSM would diverge from its peers: stop instead */
    }
    if (n->fsm.bad_entries != bad_before) {
        rg_node_log("skipped a malformed log entry", NULL);
    }
    rg_node_ship_effects(n);
    return 0;
}

/* libraft 0.22.1 labels a snapshot with its commit index, which on a
 * follower can briefly fall below what it has applied (min(leader commit,
 * last new entry) after lost acks): the snapshot would then hold later
 * state than its label, and restoring it would apply entries twice. Found
 * by the raft_fixture simulation (docs/testing.md); libraft just tries
 * again later when we say busy. */
static bool snapshot_would_lie(struct rg_node *n)
{
    return raft_last_applied(&n->raft) != raft_commit_index(&n->raft);
}

static int fsm_snapshot(struct raft_fsm *iface, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct rg_node *n = iface->data;
    uint8_t *data;
    size_t len;
    if (snapshot_would_lie(n)) {
        return RAFT_BUSY;
    }
    *bufs = malloc(sizeof **bufs);
    if (*bufs == NULL) {
        return RAFT_NOMEM;
    }
    if (rg_fsm_snapshot(&n->fsm, &data, &len) != 0) {
        free(*bufs);
        *bufs = NULL;
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

/* fsm v2: the snapshot buffers stay ours until raft is done with them. */
static int fsm_snapshot_finalize(struct raft_fsm *iface,
                                 struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rg_node *n = iface->data;
    n->trim_due = true;
    for (unsigned i = 0; i < *n_bufs; i++) {
        free((*bufs)[i].base);
    }
    free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *iface, struct raft_buffer *buf)
{
    struct rg_node *n = iface->data;
    if (rg_fsm_restore(&n->fsm, buf->base, buf->len) != 0) {
        rg_node_log("refused a malformed snapshot", NULL);
        return RAFT_MALFORMED;
    }
    raft_free(buf->base); /* libraft: restore owns the buffer on success */
    return 0;
}

void rg_node_fsm_setup(struct rg_node *n)
{
    n->fsm_iface.version = 2;
    n->fsm_iface.data = n;
    n->fsm_iface.apply = fsm_apply;
    n->fsm_iface.snapshot = fsm_snapshot;
    n->fsm_iface.restore = fsm_restore;
    n->fsm_iface.snapshot_finalize = fsm_snapshot_finalize;
}
