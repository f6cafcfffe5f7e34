/* Membership changes for the leader's member (CHANGE/CHANGED): add,
 * assign, remove, transfer, and the rule that refuses an unsafe demotion
 * (node_int.h). */
#include "node_int.h"

#include <stdlib.h>

struct change_req {
    struct raft_change req;
    struct raft_transfer transfer;
    struct rg_node *node;
    uint64_t ref;
};

static void change_done(struct rg_node *n, uint64_t ref, int status)
{
    if (!n->stopping) {
        rg_proto_changed(&n->frame, ref, (uint32_t)status);
        rg_node_send_frame(n);
    }
}

static void change_cb(struct raft_change *req, int status)
{
    struct change_req *c = req->data;
    change_done(c->node, c->ref, status);
    free(c);
}

static void transfer_cb(struct raft_transfer *req)
{
    struct change_req *c = req->data;
    change_done(c->node, c->ref, 0); /* who leads now: see STATUS */
    free(c);
}

/* A voter may become a standby only while every other voter has stored
 * the last committed configuration. libraft has a server that is not a
 * voter in its own configuration deny every vote, so a voter that missed
 * its promotion cannot help elect anyone; if a demotion made its vote
 * needed, no election could succeed (found by the simulation, the same
 * rule as its may_demote; docs/testing.md). Refused changes are planned
 * again by the member. */
static bool may_demote(const struct rg_node *n, raft_id id)
{
    const struct raft_configuration *c = &n->raft.configuration;
    bool demotion = false;
    for (unsigned i = 0; i < c->n; i++) {
        demotion = demotion || (c->servers[i].id == id && c->servers[i].role == RAFT_VOTER);
    }
    if (!demotion) {
        return true; /* a spare made a standby */
    }
    for (unsigned i = 0; i < c->n; i++) {
        raft_id k = c->servers[i].id;
        raft_index match = 0;
        if (k == n->id || k == id || c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        if (raft_match_index(&n->raft, k, &match) != 0 ||
            match < n->raft.configuration_committed_index) {
            return false;
        }
    }
    return true;
}

static int start_change(struct rg_node *n, struct change_req *c,
                        const struct rg_change *m)
{
    switch (m->kind) {
    case RG_CONF_ADD:
        return raft_add(&n->raft, &c->req, m->id, m->address, change_cb);
    case RG_CONF_ASSIGN:
        if (m->role == RAFT_STANDBY && !may_demote(n, m->id)) {
            return RAFT_CANTCHANGE;
        }
        return raft_assign(&n->raft, &c->req, m->id, m->role, change_cb);
    case RG_CONF_REMOVE:
        return raft_remove(&n->raft, &c->req, m->id, change_cb);
    default:
        return raft_transfer(&n->raft, &c->transfer, m->id, transfer_cb);
    }
}

void rg_node_handle_change(struct rg_node *n, struct rg_rbuf *r)
{
    struct rg_change m = {0};
    if (!n->started || !rg_proto_change(r, &m)) {
        rg_node_send_error(n, n->started ? "malformed CHANGE frame" : "CHANGE before START");
        if (m.ref != 0) {
            change_done(n, m.ref, RAFT_MALFORMED); /* the member may wait */
        }
        return;
    }
    struct change_req *c = calloc(1, sizeof *c);
    if (c == NULL) {
        change_done(n, m.ref, RAFT_NOMEM);
        return;
    }
    c->node = n;
    c->ref = m.ref;
    c->req.data = c;
    c->transfer.data = c;
    int rv = start_change(n, c, &m);
    if (rv != 0) {
        free(c);
        change_done(n, m.ref, rv);
    }
}
