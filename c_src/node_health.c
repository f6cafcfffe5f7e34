/* The daemon's health checks run from the end-of-iteration hook: a silent
 * member's leadership handed over, memory given back after snapshots, a
 * data dir deleted under us (node_int.h; docs/architecture.md, The
 * daemon's health checks). The log-write watch is in node_io.c. */
#include "node_int.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "datadir.h"

#define MEMBER_SILENT_MS 1000 /* see rg_node_maybe_hand_over */
#define DIR_CHECK_MS 1000 /* see rg_node_data_dir_gone */
#define EXIT_DIR_GONE 5

static void member_silent_transfer_cb(struct raft_transfer *req)
{
    struct rg_node *n = req->data;
    n->silent_transfer = false;
    free(req);
}

/* Writes reach the leader's daemon through the leader's member, so a leader
 * whose member is stopped (a SIGSTOPped or wedged BEAM) stops every write in
 * the cluster while raft still sees a healthy leader. The member sends ALIVE
 * every 250 ms (any frame counts); after MEMBER_SILENT_MS of silence the
 * leader hands leadership to the most up-to-date voter. It checks from the
 * loop's check handle, which raft's heartbeat timer runs every 50 ms. */
void rg_node_maybe_hand_over(struct rg_node *n)
{
    if (n->silent_transfer || raft_state(&n->raft) != RAFT_LEADER ||
        uv_now(n->loop) - n->member_seen_ms < MEMBER_SILENT_MS) {
        return;
    }
    unsigned voters = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        voters += n->raft.configuration.servers[i].role == RAFT_VOTER;
    }
    if (voters < 2) {
        return; /* nobody to hand it to */
    }
    struct raft_transfer *req = calloc(1, sizeof *req);
    if (req == NULL) {
        return;
    }
    req->data = n;
    if (raft_transfer(&n->raft, req, 0, member_silent_transfer_cb) != 0) {
        free(req);
        return;
    }
    n->silent_transfer = true;
    char detail[64];
    snprintf(detail, sizeof detail, "%llu ms",
             (unsigned long long)(uv_now(n->loop) - n->member_seen_ms));
    rg_node_log("member silent; handing leadership over", detail);
}

/* After a snapshot libraft drops the log entries it covers; glibc keeps
 * the freed memory unless asked, and after cycles of mass registrations
 * and deaths a daemon with an empty table held 50 MB. */
void rg_node_maybe_trim(struct rg_node *n)
{
    if (n->trim_due && !n->snapshot_writing) {
        n->trim_due = false;
        malloc_trim(0);
    }
}

/* A data dir deleted under a running daemon leaves raft_uv unable to write
 * and the daemon wedged. Once a second it checks that its lock file is
 * still there; if not it exits, and its member starts a daemon afresh
 * (rejoining under a fresh id, claiming its names). */
bool rg_node_data_dir_gone(struct rg_node *n)
{
    uint64_t now = uv_now(n->loop);
    if (now - n->dir_checked_ms < DIR_CHECK_MS) {
        return false;
    }
    n->dir_checked_ms = now;
    if (n->lock_fd < 0 || rg_datadir_intact(n->lock_fd, n->dir)) {
        return false;
    }
    rg_node_log("the data dir was removed; exiting to start afresh", n->dir);
    rg_node_shutdown(n, EXIT_DIR_GONE);
    return true;
}
