/* Sync and the commit nudge: the DUMP once the table is complete, the
 * barrier that carries a new commit index to followers at once, and
 * MEMBERS when the configuration changes (node_int.h). */
#include "node_int.h"

#include <stdlib.h>
#include <string.h>

/* Appends a barrier entry whose callback gets n (and frees req); false if
 * it could not be submitted (the caller tries again on a later turn). */
static bool submit_barrier(struct rg_node *n, raft_barrier_cb cb)
{
    struct raft_barrier *req = calloc(1, sizeof *req);
    if (req == NULL) {
        return false;
    }
    req->data = n;
    if (raft_barrier(&n->raft, req, cb) != 0) {
        free(req);
        return false;
    }
    return true;
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct rg_node *n = req->data;
    free(req);
    n->barrier_pending = false;
    if (status == 0 && !n->stopping && !n->synced) {
        /* Everything committed before our term is applied: the table is
         * complete, so the member can rebuild its mirror from it. */
        rg_node_send_dump(n);
        n->synced = true;
    }
}

void rg_node_maybe_sync(struct rg_node *n)
{
    if (n->fsm.restored) {
        n->fsm.restored = false;
        if (n->synced && !n->overflow) { /* else rg_node_maybe_resync sends one */
            rg_node_send_dump(n); /* a snapshot replaced the table under the member */
            rg_node_send_held(n); /* the replies of the entries applied since */
        }
    }
    if (n->synced || n->barrier_pending) {
        return;
    }
    if (raft_state(&n->raft) == RAFT_FOLLOWER) {
        /* A follower's table is complete up to the commit index it has
         * heard of from a leader once it has applied that far. */
        raft_id leader = 0;
        const char *addr;
        raft_leader(&n->raft, &leader, &addr);
        raft_index commit = raft_commit_index(&n->raft);
        if (leader != 0 && commit > 0 && raft_last_applied(&n->raft) >= commit) {
            rg_node_send_dump(n);
            n->synced = true;
        }
        return;
    }
    if (raft_state(&n->raft) != RAFT_LEADER) {
        return;
    }
    n->barrier_pending = submit_barrier(n, barrier_cb);
}

/* A fingerprint of the configuration, to notice changes cheaply. */
static uint64_t config_hash(const struct raft_configuration *c)
{
    struct rg_sipkey key = {1, 2};
    uint64_t h = c->n;
    for (unsigned i = 0; i < c->n; i++) {
        uint64_t v[3] = {c->servers[i].id, (uint64_t)c->servers[i].role, h};
        h = rg_siphash(&key, (const uint8_t *)v, sizeof v) ^
            rg_siphash(&key, (const uint8_t *)c->servers[i].address,
                       strlen(c->servers[i].address));
    }
    return h;
}

/* MEMBERS whenever the configuration this server knows changes. */
void rg_node_maybe_send_members(struct rg_node *n)
{
    const struct raft_configuration *c = &n->raft.configuration;
    uint64_t h = config_hash(c);
    if (h == n->members_hash && n->members_sent) {
        return;
    }
    n->members_hash = h;
    n->members_sent = true;
    size_t off;
    rg_proto_members_begin(&n->frame, &off);
    for (unsigned i = 0; i < c->n; i++) {
        rg_wbuf_u64(&n->frame, c->servers[i].id);
        rg_wbuf_u8(&n->frame, (uint8_t)c->servers[i].role);
        rg_wbuf_blob(&n->frame, c->servers[i].address,
                     strlen(c->servers[i].address));
    }
    rg_wbuf_patch_u32(&n->frame, off, c->n);
    rg_node_send_frame(n);
}

static void nudge_cb(struct raft_barrier *req, int status)
{
    (void)status;
    struct rg_node *n = req->data;
    n->nudge_pending = false;
    free(req);
}

/* Followers learn a new commit index from the next AppendEntries; when no
 * entry follows, that is the next heartbeat (up to 50 ms later). After a
 * command entry has applied on the leader, a barrier entry carries the new
 * commit index to the followers at once (barriers do not nudge again). */
void rg_node_maybe_nudge(struct rg_node *n)
{
    if (!n->unnudged || n->nudge_pending || n->batch_n != 0 ||
        raft_state(&n->raft) != RAFT_LEADER ||
        n->raft.configuration.n < 2) {
        n->unnudged = n->unnudged && raft_state(&n->raft) == RAFT_LEADER &&
                      n->raft.configuration.n >= 2;
        return;
    }
    if (submit_barrier(n, nudge_cb)) {
        n->unnudged = false;
        n->nudge_pending = true;
    }
}
