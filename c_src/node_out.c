/* Frames to the member: errors, replies, STATUS, the table DUMP, each
 * applied entry's effects, and the bound on what a member that does not
 * read may have queued (node_int.h). */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "group.h"

#define DUMP_FRAME_BYTES (1u << 20)
#define PORT_BACKLOG_MAX (16u << 20) /* see port_overflowing */

void rg_node_send_frame(struct rg_node *n)
{
    if (n->frame.oom) {
        rg_node_log("out of memory building a frame", NULL);
        abort();
    }
    rg_port_send(&n->port, n->frame.data, n->frame.len);
    rg_wbuf_reset(&n->frame);
}

void rg_node_send_error(struct rg_node *n, const char *msg)
{
    rg_proto_error(&n->frame, msg);
    rg_node_send_frame(n);
}

/* RETRY or BAD for refs that reached no log entry (or a failed one). Ref 0
 * (SETTLE, always) waits for no answer and gets none. */
void rg_node_send_replies(struct rg_node *n, const struct rg_oref *refs,
                         uint32_t k, uint8_t result)
{
    size_t off = 0;
    uint32_t sent = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (refs[i].ref == 0) {
            continue;
        }
        if (sent++ == 0) {
            rg_proto_replies_begin(&n->frame, &off);
        }
        rg_proto_reply(&n->frame, refs[i].origin, refs[i].ref, result);
    }
    if (sent > 0) {
        rg_wbuf_patch_u32(&n->frame, off, sent);
        rg_node_send_frame(n);
    }
}

/* The daemon's resident memory (Linux: /proc/self/statm), 0 if unknown. */
static uint64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL) {
        return 0;
    }
    int k = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return k == 2 && page > 0 ? resident * (uint64_t)page : 0;
}

static void current_status(struct rg_node *n, struct rg_status *s)
{
    const char *addr;
    raft_id leader = 0;
    memset(s, 0, sizeof *s);
    if (!n->started) {
        return;
    }
    s->state = (uint8_t)raft_state(&n->raft);
    raft_leader(&n->raft, &leader, &addr);
    s->leader = leader;
    s->term = raft_current_term(&n->raft);
    s->applied = raft_last_applied(&n->raft);
    s->commit = raft_commit_index(&n->raft);
    s->last_index = raft_last_index(&n->raft);
    s->synced = n->synced;
    s->io_error = n->io_error;
}

/* Runs once per event-loop iteration; the RSS (three system calls and a
 * walk of /proc) is read only for a status that goes out. Read on every
 * iteration, it was the loop's largest cost on an idle follower. */
void rg_node_send_status(struct rg_node *n, bool always)
{
    struct rg_status s;
    current_status(n, &s);
    if (!always && s.state == n->last_status.state &&
        s.leader == n->last_status.leader && s.term == n->last_status.term &&
        s.synced == n->last_status.synced && s.io_error == n->last_status.io_error) {
        return;
    }
    s.rss = n->started ? resident_bytes() : 0;
    n->last_status = s;
    rg_proto_status(&n->frame, &s);
    rg_node_send_frame(n);
}

/* Which table a DUMP frame's rows come from (docs/protocol.md, 3.5). */
enum dump_table { DUMP_NAMES = 0, DUMP_GROUPS = 1, DUMP_META = 2 };

struct dump_ctx {
    struct rg_node *n;
    size_t count_off;
    uint32_t count;
    uint8_t table;
};

static void dump_begin(struct dump_ctx *d)
{
    rg_wbuf_u8(&d->n->frame, RG_PROTO_VERSION);
    rg_wbuf_u8(&d->n->frame, RG_MSG_DUMP);
    rg_wbuf_u8(&d->n->frame, 0); /* last? patched in dump_end */
    rg_wbuf_u8(&d->n->frame, d->table);
    rg_wbuf_u64(&d->n->frame, raft_last_applied(&d->n->raft));
    d->count_off = d->n->frame.len;
    rg_wbuf_u32(&d->n->frame, 0);
    d->count = 0;
}

static void dump_end(struct dump_ctx *d, bool last)
{
    d->n->frame.data[2] = last ? 1 : 0;
    rg_wbuf_patch_u32(&d->n->frame, d->count_off, d->count);
    rg_node_send_frame(d->n);
}

static bool dump_visit(void *arg, const struct rg_entry *e)
{
    struct dump_ctx *d = arg;
    struct rg_wbuf *w = &d->n->frame;
    struct rg_group_view g = {rg_entry_key(e), e->key_len, rg_entry_pid(e),
                              e->pid_len, rg_entry_meta(e), e->meta_len};
    if (d->table == DUMP_GROUPS && !rg_group_view(e, &g)) {
        return false; /* cannot happen: group keys are checked on the way in */
    }
    rg_wbuf_blob(w, g.name, g.name_len);
    rg_wbuf_blob(w, g.pid, g.pid_len);
    rg_wbuf_blob(w, g.values, g.values_len);
    d->count++;
    if (w->len >= DUMP_FRAME_BYTES) {
        dump_end(d, false);
        dump_begin(d);
    }
    return false;
}

static void dump_table(struct dump_ctx *d, struct rg_table *t, uint8_t table,
                       bool last)
{
    d->table = table;
    dump_begin(d);
    rg_table_visit(t, dump_visit, d);
    dump_end(d, last);
}

/* Every table, in frames of about DUMP_FRAME_BYTES; the last says so. */
void rg_node_send_dump(struct rg_node *n)
{
    struct dump_ctx d = {n, 0, 0, DUMP_NAMES};
    size_t before = n->port.tx.len;
    dump_table(&d, &n->fsm.table, DUMP_NAMES, false);
    dump_table(&d, &n->fsm.groups, DUMP_GROUPS, false);
    dump_table(&d, &n->fsm.meta, DUMP_META, true);
    n->dump_bytes = n->port.tx.len - before;
}

/* Bytes written to the port that the member has not read yet. */
static size_t port_backlog(const struct rg_node *n)
{
    return n->port.tx_in_flight + n->port.tx.len;
}

/* A member that stops reading (a stopped BEAM) would have every applied
 * change queued for it without bound. Past PORT_BACKLOG_MAX beyond the last
 * DUMP (a DUMP of a big table is a legitimate backlog while the member
 * reads it), changes are dropped and replies held: the member's mirror is
 * rebuilt from a DUMP once it has read everything (rg_node_maybe_resync). True if
 * this entry's effects are to be dropped. */
static bool port_overflowing(struct rg_node *n)
{
    if (!n->overflow && n->synced &&
        port_backlog(n) > PORT_BACKLOG_MAX + n->dump_bytes) {
        n->overflow = true;
        char detail[64];
        snprintf(detail, sizeof detail, "%zu bytes unread", port_backlog(n));
        rg_node_log("the member is not reading; dropping changes until it does", detail);
    }
    return n->overflow;
}

/* The replies held while the member's mirror could not take changes (an
 * overflow, or a restore not yet followed by its DUMP), sent after that
 * DUMP: its callers may now read their writes. */
void rg_node_send_held(struct rg_node *n)
{
    struct rg_wbuf *w = &n->frame;
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_APPLIED);
    rg_wbuf_u64(w, raft_last_applied(&n->raft));
    rg_wbuf_u32(w, 0);
    rg_wbuf_u32(w, n->held_n);
    rg_wbuf_put(w, n->held.data, n->held.len);
    rg_node_send_frame(n);
    rg_wbuf_reset(&n->held);
    n->held_n = 0;
}

/* The member has read everything again: its mirror is stale, so it gets the
 * whole table (it rebuilds its mirror as after a snapshot restore), then the
 * replies held meanwhile. */
void rg_node_maybe_resync(struct rg_node *n)
{
    if (!n->overflow || n->port.tx_in_flight != 0) {
        return;
    }
    n->overflow = false;
    rg_node_send_dump(n);
    rg_node_send_held(n);
    rg_node_log("the member reads again; its mirror is resynced with a DUMP", NULL);
}

/* After each entry: its changes (once the member is synced: before that it
 * ignores them and waits for the dump) and the replies owed by this daemon.
 * Between a snapshot restore and the DUMP that follows it (at the end of
 * this loop iteration, rg_node_maybe_sync), changes are dropped and replies
 * held, as in an overflow: the member's mirror lacks what the snapshot
 * brought, so a change on top of it would reach subscribers after a gap
 * with no resync before it, and a reply would come before the caller's
 * write is in the mirror (found by the nemesis on hosts: a follower's
 * daemon paused past the leader's log, then sent a snapshot and the entries
 * after it in one iteration). */
void rg_node_ship_effects(struct rg_node *n)
{
    struct rg_fsm *f = &n->fsm;
    if (port_overflowing(n) || (n->synced && f->restored)) {
        rg_wbuf_put(&n->held, f->replies.data, f->replies.len);
        n->held_n += f->n_replies;
        rg_fsm_effects_reset(f);
        return;
    }
    if (f->n_replies == 0 && (f->n_changes == 0 || !n->synced)) {
        rg_fsm_effects_reset(f);
        return;
    }
    struct rg_wbuf *w = &n->frame;
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_APPLIED);
    rg_wbuf_u64(w, n->applying);
    if (n->synced) {
        rg_wbuf_u32(w, f->n_changes);
        rg_wbuf_put(w, f->changes.data, f->changes.len);
    } else {
        rg_wbuf_u32(w, 0);
    }
    rg_wbuf_u32(w, f->n_replies);
    rg_wbuf_put(w, f->replies.data, f->replies.len);
    rg_node_send_frame(n);
    rg_fsm_effects_reset(f);
}
