/* The raft_io that libraft drives: raft_uv's, wrapped so that the
 * corrections of raft_fixes.c run in front of append, snapshot_put,
 * snapshot_get, send and message delivery, and so that log writes that
 * fail or stall are noticed (node_int.h). */
#include "node_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "raft_fixes.h"

#define REANCHOR_LOG_MS 10000 /* see note_reanchored */
#define EXIT_IO_FAILED 4 /* see fixed_append */
#define IO_ERROR_LOG_MS 10000 /* see append_done */
#define APPEND_STALL_MS 2000 /* see rg_node_check_append_stall */

static struct rg_node *node_of_io(struct raft_io *io)
{
    return (struct rg_node *)(void *)((char *)io - offsetof(struct rg_node, io));
}

/* Each append goes to raft_uv through one of these, so the daemon sees how
 * its log writes end: a follower whose disk is full goes on applying
 * committed entries from memory while it persists nothing, and would look
 * healthy (STATUS carries io_error; the member reports it). */
struct append_watch {
    struct raft_io_append inner; /* first: raft_uv's callback finds us */
    struct raft_io_append *outer;
    struct rg_node *n;
};

static void append_done(struct raft_io_append *inner, int status)
{
    struct append_watch *w = (struct append_watch *)inner;
    struct raft_io_append *outer = w->outer;
    struct rg_node *n = w->n;
    free(w);
    n->appends_inflight--;
    n->append_done_ms = uv_now(n->loop);
    if (status != 0 && status != RAFT_CANCELED && !n->stopping) {
        uint64_t now = uv_now(n->loop);
        if (n->io_error == 0 || now - n->io_error_logged_ms >= IO_ERROR_LOG_MS) {
            n->io_error_logged_ms = now;
            rg_node_log("cannot write the raft log", n->io.errmsg);
        }
        n->io_error = (uint32_t)status;
    } else if (status == 0 && n->io_error != 0) {
        rg_node_log("the raft log is written again", NULL);
        n->io_error = 0;
    }
    outer->cb(outer, status);
}

/* raft_uv writes into segments it prepares ahead; on a full disk no segment
 * can be prepared and appends just wait, with no error. An append that has
 * made no progress for APPEND_STALL_MS counts as a failed write. */
void rg_node_check_append_stall(struct rg_node *n)
{
    uint64_t now = uv_now(n->loop);
    if (now - n->stall_checked_ms > APPEND_STALL_MS / 4) {
        /* The loop itself did not run (the daemon was stopped or starved):
         * that is no evidence against the disk, so the wait starts again. */
        n->append_idle_until_ms = now;
    }
    n->stall_checked_ms = now;
    uint64_t since = n->append_done_ms > n->append_idle_until_ms ? n->append_done_ms
                                                                  : n->append_idle_until_ms;
    if (n->appends_inflight > 0 && now - since >= APPEND_STALL_MS &&
        n->io_error == 0) {
        n->io_error = RG_IO_STALLED;
        n->io_error_logged_ms = now;
        rg_node_log("raft log writes stalled (is the disk full?)", NULL);
    }
}

/* Every batch libraft persists passes here first (see raft_fixes.h). */
static int fixed_append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n_entries,
                        raft_io_append_cb cb)
{
    struct rg_node *n = node_of_io(io);
    if (rg_fix_uncommitted_config(&n->raft, entries, n_entries)) {
        rg_node_log("corrected libraft's pending configuration index", NULL);
    }
    struct append_watch *w = calloc(1, sizeof *w);
    int rv;
    if (w == NULL) {
        rv = n->uv_append(io, req, entries, n_entries, cb);
    } else {
        w->outer = req;
        w->n = n;
        req->cb = cb;
        rv = n->uv_append(io, &w->inner, entries, n_entries, append_done);
        if (rv != 0) {
            free(w);
        } else if (n->appends_inflight++ == 0) {
            n->append_idle_until_ms = uv_now(n->loop);
        }
    }
    if (rv != 0 && !n->stopping) {
        /* libraft 0.22.1 answers a failed local append with an error path
         * that double-frees (raft_barrier: logDiscard, then raft_free of the
         * same buffer; reached from every barrier and nudge). Rather than
         * return into it, stop here: raft_uv's files are as a crash leaves
         * them, which they are made to survive, and the member restarts us. */
        char detail[96];
        snprintf(detail, sizeof detail, "%s (%d); exiting for a restart",
                 raft_strerror(rv), rv);
        rg_node_log("raft_uv could not append", detail);
        fflush(stderr);
        _exit(EXIT_IO_FAILED);
    }
    return rv;
}

static int fixed_snapshot_put(struct raft_io *io, unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot,
                              raft_io_snapshot_put_cb cb)
{
    struct rg_node *n = node_of_io(io);
    return rg_tracked_snapshot_put(n->uv_snapshot_put, &n->snapshot_writing,
                                   io, trailing, req, snapshot, cb);
}

static int fixed_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                              raft_io_snapshot_get_cb cb)
{
    struct rg_node *n = node_of_io(io);
    return rg_tracked_snapshot_get(n->uv_snapshot_get, &n->loaded, io, req, cb);
}

/* Every message libraft sends passes here (see raft_fixes.h). */
static int fixed_send(struct raft_io *io, struct raft_io_send *req,
                      const struct raft_message *msg, raft_io_send_cb cb)
{
    struct rg_node *n = node_of_io(io);
    struct raft_message fixed;
    const struct raft_message *out = rg_fix_install_snapshot_term(&n->loaded, msg, &fixed);
    if (out != msg) {
        rg_node_log("corrected the term of a snapshot libraft was sending", NULL);
    }
    return n->uv_send(io, req, out, cb);
}

/* While a leader probes a follower whose acknowledgements are lost, every
 * heartbeat is re-anchored: logged at most every REANCHOR_LOG_MS. */
static void note_reanchored(struct rg_node *n)
{
    uint64_t now = uv_now(n->loop);
    n->reanchored++;
    if (n->reanchor_logged_ms != 0 && now - n->reanchor_logged_ms < REANCHOR_LOG_MS) {
        return;
    }
    char count[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)n->reanchored);
    rg_node_log("re-anchored AppendEntries below our snapshot (libraft workaround), "
            "count", count);
    n->reanchored = 0;
    n->reanchor_logged_ms = now;
}

/* Every message passes here before libraft sees it (see raft_fixes.h). */
static void fixed_recv(struct raft_io *io, struct raft_message *msg)
{
    struct rg_node *n = node_of_io(io);
    if (rg_fix_drop_install_snapshot(n->snapshot_writing, msg)) {
        rg_node_log("dropped an InstallSnapshot that arrived during a snapshot "
                "write", NULL);
        return;
    }
    if (rg_fix_append_below_snapshot(&n->raft, msg)) {
        note_reanchored(n);
    }
    n->raft_recv(io, msg);
}

static int fixed_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct rg_node *n = node_of_io(io);
    n->raft_recv = recv;
    return n->uv_start(io, msecs, tick, fixed_recv);
}

/* Before raft_start: libraft calls start then, and the others later. */
void rg_node_install_fixes(struct rg_node *n)
{
    n->uv_append = n->io.append;
    n->io.append = fixed_append;
    n->uv_start = n->io.start;
    n->io.start = fixed_start;
    n->uv_snapshot_put = n->io.snapshot_put;
    n->io.snapshot_put = fixed_snapshot_put;
    n->uv_snapshot_get = n->io.snapshot_get;
    n->io.snapshot_get = fixed_snapshot_get;
    n->uv_send = n->io.send;
    n->io.send = fixed_send;
}
