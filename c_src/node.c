/* One registry daemon; see node.h. */
#include "node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <raft/uv.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "datadir.h"
#include "limits.h"
#include "raft_fixes.h"

/* Tuning (docs/architecture.md explains each): libraft's defaults give
 * multi-second failovers and stalls on big tables. */
#define ELECTION_TIMEOUT_MS 150 /* randomised by libraft to [T, 2T) */
#define HEARTBEAT_MS 50
#define MAX_INFLIGHT_ENTRIES 4096
#define INSTALL_SNAPSHOT_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 100
#define REANCHOR_LOG_MS 10000 /* see note_reanchored */
#define SEGMENT_SIZE (1u << 20)
#define DUMP_FRAME_BYTES (1u << 20)

#define ID_FILE "regent.id"
#define LOCK_WAIT_MS 5000 /* a previous daemon on the dir may still be exiting */
#define MEMBER_SILENT_MS 1000 /* see maybe_hand_over */
#define OLD_PORT_WAIT_MS 1000 /* see bind_old_port */
#define EXIT_IO_FAILED 4 /* see fixed_append */
#define IO_ERROR_LOG_MS 10000 /* see append_done */
#define APPEND_STALL_MS 2000 /* see check_append_stall */
#define DIR_CHECK_MS 1000 /* see data_dir_gone */
#define PORT_BACKLOG_MAX (16u << 20) /* see port_overflowing */
#define EXIT_DIR_GONE 5

struct batch_req {
    struct raft_apply req;
    struct rg_node *node;
    struct rg_oref *refs; /* owned */
    uint32_t n;
};

struct change_req {
    struct raft_change req;
    struct raft_transfer transfer;
    struct rg_node *node;
    uint64_t ref;
};

static void node_shutdown(struct rg_node *n, int code);
static void check_append_stall(struct rg_node *n);

static void log_msg(const char *what, const char *detail)
{
    fprintf(stderr, "regentd[%d]: %s%s%s\n", (int)getpid(), what,
            detail ? ": " : "", detail ? detail : "");
}

/* ---- frames to the member ----------------------------------------------- */

static void send_frame(struct rg_node *n)
{
    if (n->frame.oom) {
        log_msg("out of memory building a frame", NULL);
        abort();
    }
    rg_port_send(&n->port, n->frame.data, n->frame.len);
    rg_wbuf_reset(&n->frame);
}

static void send_error(struct rg_node *n, const char *msg)
{
    rg_proto_error(&n->frame, msg);
    send_frame(n);
}

/* RETRY or BAD for refs that reached no log entry (or a failed one). Ref 0
 * (SETTLE, always) waits for no answer and gets none. */
static void send_replies(struct rg_node *n, const struct rg_oref *refs,
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
        send_frame(n);
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
    s->rss = resident_bytes();
}

static void send_status(struct rg_node *n, bool always)
{
    struct rg_status s;
    current_status(n, &s);
    if (!always && s.state == n->last_status.state &&
        s.leader == n->last_status.leader && s.term == n->last_status.term &&
        s.synced == n->last_status.synced && s.io_error == n->last_status.io_error) {
        return;
    }
    n->last_status = s;
    rg_proto_status(&n->frame, &s);
    send_frame(n);
}

/* ---- the table dump ----------------------------------------------------- */

struct dump_ctx {
    struct rg_node *n;
    size_t count_off;
    uint32_t count;
};

static void dump_begin(struct dump_ctx *d)
{
    rg_wbuf_u8(&d->n->frame, RG_PROTO_VERSION);
    rg_wbuf_u8(&d->n->frame, RG_MSG_DUMP);
    rg_wbuf_u8(&d->n->frame, 0); /* last? patched in dump_end */
    d->count_off = d->n->frame.len;
    rg_wbuf_u32(&d->n->frame, 0);
    d->count = 0;
}

static void dump_end(struct dump_ctx *d, bool last)
{
    d->n->frame.data[2] = last ? 1 : 0;
    rg_wbuf_patch_u32(&d->n->frame, d->count_off, d->count);
    send_frame(d->n);
}

static bool dump_visit(void *arg, const struct rg_entry *e)
{
    struct dump_ctx *d = arg;
    struct rg_wbuf *w = &d->n->frame;
    rg_wbuf_blob(w, rg_entry_key(e), e->key_len);
    rg_wbuf_blob(w, rg_entry_pid(e), e->pid_len);
    rg_wbuf_blob(w, rg_entry_meta(e), e->meta_len);
    d->count++;
    if (w->len >= DUMP_FRAME_BYTES) {
        dump_end(d, false);
        dump_begin(d);
    }
    return false;
}

/* The whole table, in frames of about DUMP_FRAME_BYTES; the last says so. */
static void send_dump(struct rg_node *n)
{
    struct dump_ctx d = {n, 0, 0};
    size_t before = n->port.tx.len;
    dump_begin(&d);
    rg_table_visit(&n->fsm.table, dump_visit, &d);
    dump_end(&d, true);
    n->dump_bytes = n->port.tx.len - before;
}

/* ---- a member that stops reading ---------------------------------------- */

/* Bytes written to the port that the member has not read yet. */
static size_t port_backlog(const struct rg_node *n)
{
    return n->port.tx_in_flight + n->port.tx.len;
}

/* A member that stops reading (a stopped BEAM) would have every applied
 * change queued for it without bound. Past PORT_BACKLOG_MAX beyond the last
 * DUMP (a DUMP of a big table is a legitimate backlog while the member
 * reads it), changes are dropped and replies held: the member's mirror is
 * rebuilt from a DUMP once it has read everything (maybe_resync). True if
 * this entry's effects are to be dropped. */
static bool port_overflowing(struct rg_node *n)
{
    if (!n->overflow && n->synced &&
        port_backlog(n) > PORT_BACKLOG_MAX + n->dump_bytes) {
        n->overflow = true;
        char detail[64];
        snprintf(detail, sizeof detail, "%zu bytes unread", port_backlog(n));
        log_msg("the member is not reading; dropping changes until it does", detail);
    }
    return n->overflow;
}

/* The member has read everything again: its mirror is stale, so it gets the
 * whole table (it rebuilds its mirror as after a snapshot restore), then the
 * replies held meanwhile, which its callers may now read their writes in. */
static void maybe_resync(struct rg_node *n)
{
    if (!n->overflow || n->port.tx_in_flight != 0) {
        return;
    }
    n->overflow = false;
    send_dump(n);
    struct rg_wbuf *w = &n->frame;
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_APPLIED);
    rg_wbuf_u32(w, 0);
    rg_wbuf_u32(w, n->held_n);
    rg_wbuf_put(w, n->held.data, n->held.len);
    send_frame(n);
    rg_wbuf_reset(&n->held);
    n->held_n = 0;
    log_msg("the member reads again; its mirror is resynced with a DUMP", NULL);
}

/* ---- the FSM as libraft sees it ----------------------------------------- */

/* After each entry: its changes (once the member is synced: before that it
 * ignores them and waits for the dump) and the replies owed by this daemon. */
static void ship_effects(struct rg_node *n)
{
    struct rg_fsm *f = &n->fsm;
    if (port_overflowing(n)) {
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
    if (n->synced) {
        rg_wbuf_u32(w, f->n_changes);
        rg_wbuf_put(w, f->changes.data, f->changes.len);
    } else {
        rg_wbuf_u32(w, 0);
    }
    rg_wbuf_u32(w, f->n_replies);
    rg_wbuf_put(w, f->replies.data, f->replies.len);
    send_frame(n);
    rg_fsm_effects_reset(f);
}

static int fsm_apply(struct raft_fsm *iface, const struct raft_buffer *buf,
                     void **result)
{
    struct rg_node *n = iface->data;
    uint64_t bad_before = n->fsm.bad_entries;
    *result = NULL;
    n->unnudged = true;
    if (rg_fsm_apply(&n->fsm, buf->base, buf->len) != 0) {
        log_msg("out of memory applying an entry", NULL);
        abort(); /* the FSM would diverge from its peers: stop instead */
    }
    if (n->fsm.bad_entries != bad_before) {
        log_msg("skipped a malformed log entry", NULL);
    }
    ship_effects(n);
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
        log_msg("refused a malformed snapshot", NULL);
        return RAFT_MALFORMED;
    }
    raft_free(buf->base); /* libraft: restore owns the buffer on success */
    return 0;
}

/* ---- batching ----------------------------------------------------------- */

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

static void batch_reset(struct rg_node *n)
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
        send_replies(b->node, b->refs, b->n, RG_RES_RETRY);
    }
    free(b->refs);
    free(b);
}

/* Proposes the batch as one entry, or answers RETRY if we cannot. */
static void batch_flush(struct rg_node *n)
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
        log_msg("raft_apply failed", raft_errmsg(&n->raft));
        buf.base = NULL;
        goto err;
    }
    batch_reset(n);
    return;
err:
    send_replies(n, n->batch_refs, n->batch_n, RG_RES_RETRY);
    if (b != NULL) {
        free(b->refs);
    }
    free(b);
    raft_free(buf.base);
    batch_reset(n);
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
        send_replies(n, &o, 1, RG_RES_RETRY);
        return;
    }
    rg_op_encode(&n->batch, op, true);
    if (n->batch.len >= RG_BATCH_MAX) {
        batch_flush(n);
    }
}

/* ---- sync and the end-of-iteration hook --------------------------------- */

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
        send_dump(n);
        n->synced = true;
    }
}

static void maybe_sync(struct rg_node *n)
{
    if (n->fsm.restored) {
        n->fsm.restored = false;
        if (n->synced && !n->overflow) { /* else maybe_resync sends one */
            send_dump(n); /* a snapshot replaced the table under the member */
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
            send_dump(n);
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
static void maybe_send_members(struct rg_node *n)
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
    send_frame(n);
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
static void maybe_nudge(struct rg_node *n)
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
static void maybe_hand_over(struct rg_node *n)
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
    log_msg("member silent; handing leadership over", detail);
}

/* After a snapshot libraft drops the log entries it covers; glibc keeps
 * the freed memory unless asked, and after cycles of mass registrations
 * and deaths a daemon with an empty table held 50 MB. */
static void maybe_trim(struct rg_node *n)
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
static bool data_dir_gone(struct rg_node *n)
{
    uint64_t now = uv_now(n->loop);
    if (now - n->dir_checked_ms < DIR_CHECK_MS) {
        return false;
    }
    n->dir_checked_ms = now;
    if (n->lock_fd < 0 || rg_datadir_intact(n->lock_fd, n->dir)) {
        return false;
    }
    log_msg("the data dir was removed; exiting to start afresh", n->dir);
    node_shutdown(n, EXIT_DIR_GONE);
    return true;
}

static void on_check(uv_check_t *check)
{
    struct rg_node *n = check->data;
    if (n->started && !n->stopping && !data_dir_gone(n)) {
        maybe_resync(n);
        maybe_trim(n);
        check_append_stall(n);
        maybe_hand_over(n);
        batch_flush(n);
        maybe_sync(n);
        maybe_nudge(n);
        maybe_send_members(n);
        send_status(n, false);
    }
    if (rg_port_flush(&n->port) != 0 && !n->stopping) {
        log_msg("cannot write to the port", NULL);
        node_shutdown(n, 1);
    }
}

/* ---- start -------------------------------------------------------------- */

static uint64_t random_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
            abort(); /* no entropy means no safe id */
        }
    }
    return id;
}

/* The id file keeps "<id> <port>" so a restarted daemon resumes under the
 * same raft id and, if it can, the same address. */
static bool read_id_file(const char *dir, uint64_t *id, unsigned *port)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, ID_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    unsigned long long v = 0;
    int k = fscanf(f, "%llu %u", &v, port);
    fclose(f);
    *id = v;
    return k == 2 && v != 0 && *port <= 65535;
}

static int write_id_file(const char *dir, uint64_t id, unsigned port)
{
    char path[4200];
    char tmp[4210];
    snprintf(path, sizeof path, "%s/%s", dir, ID_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "%llu %u\n", (unsigned long long)id, port);
    if (fclose(f) != 0) {
        return -1;
    }
    return rename(tmp, path);
}

/* Removes the files of a data dir that has no id file: whatever raft state
 * is there belongs to a start that never completed. */
static int clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    int rv = 0;
    char path[4200];
    while ((e = readdir(d)) != NULL) {
        /* daemon.pid is the member's record of which daemon uses the
         * dir (it guards against two daemons on one dir): keep it. */
        if (e->d_name[0] == '.' || strcmp(e->d_name, "daemon.pid") == 0 ||
            strcmp(e->d_name, RG_LOCK_FILE) == 0) { /* ours, held */
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) {
            rv = -1;
        }
    }
    closedir(d);
    return rv;
}

static void tune(struct rg_node *n, const struct rg_start *s)
{
    raft_set_election_timeout(&n->raft, ELECTION_TIMEOUT_MS);
    raft_set_heartbeat_timeout(&n->raft, HEARTBEAT_MS);
    raft_set_pre_vote(&n->raft, true);
    raft_set_max_inflight_entries(&n->raft, MAX_INFLIGHT_ENTRIES);
    raft_set_snapshot_threshold(&n->raft, s->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, s->snapshot_trailing);
    raft_set_install_snapshot_timeout(&n->raft, INSTALL_SNAPSHOT_TIMEOUT_MS);
    /* raft_uv's "capacity" is the log space it has already reserved (open
     * and prepared segments), in KiB, as an unsigned short. With our 1 MiB
     * segments it reads 2048, under libraft's default threshold of 4096, so
     * every submission would fail with RAFT_NOSPACE; with 32 MiB segments it
     * wraps to 0. Our log lives on tmpfs, so the check is off
     * (docs/architecture.md, Findings). */
    raft_set_capacity_threshold(&n->raft, 0);
    raft_uv_set_connect_retry_delay(&n->io, CONNECT_RETRY_MS);
    raft_uv_set_segment_size(&n->io, SEGMENT_SIZE);
}

static struct rg_node *node_of_io(struct raft_io *io)
{
    return (struct rg_node *)(void *)((char *)io - offsetof(struct rg_node, io));
}

/* Every batch libraft persists passes here first (see raft_fixes.h). */
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
            log_msg("cannot write the raft log", n->io.errmsg);
        }
        n->io_error = (uint32_t)status;
    } else if (status == 0 && n->io_error != 0) {
        log_msg("the raft log is written again", NULL);
        n->io_error = 0;
    }
    outer->cb(outer, status);
}

/* raft_uv writes into segments it prepares ahead; on a full disk no segment
 * can be prepared and appends just wait, with no error. An append that has
 * made no progress for APPEND_STALL_MS counts as a failed write. */
static void check_append_stall(struct rg_node *n)
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
        log_msg("raft log writes stalled (is the disk full?)", NULL);
    }
}

static int fixed_append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n_entries,
                        raft_io_append_cb cb)
{
    struct rg_node *n = node_of_io(io);
    if (rg_fix_uncommitted_config(&n->raft, entries, n_entries)) {
        log_msg("corrected libraft's pending configuration index", NULL);
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
        log_msg("raft_uv could not append", detail);
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
        log_msg("corrected the term of a snapshot libraft was sending", NULL);
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
    log_msg("re-anchored AppendEntries below our snapshot (libraft workaround), "
            "count", count);
    n->reanchored = 0;
    n->reanchor_logged_ms = now;
}

/* Every message passes here before libraft sees it (see raft_fixes.h). */
static void fixed_recv(struct raft_io *io, struct raft_message *msg)
{
    struct rg_node *n = node_of_io(io);
    if (rg_fix_drop_install_snapshot(n->snapshot_writing, msg)) {
        log_msg("dropped an InstallSnapshot that arrived during a snapshot "
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
static void install_fixes(struct rg_node *n)
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

static int bootstrap_alone(struct rg_node *n)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = raft_configuration_add(&conf, n->id, n->address, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_bootstrap(&n->raft, &conf);
    }
    raft_configuration_close(&conf);
    return rv;
}

/* Our address is in the raft configuration, so a restarted daemon wants
 * its old port back; it may be held for a moment (another process that
 * bound it while we were down). If it stays taken we bind another one and
 * STARTED says which: the member sees the port change and, in a cluster,
 * joins again under a fresh id (a server the others cannot reach under its
 * configured address is cut off for good). */
static int bind_old_port(struct rg_node *n, const char *host, uint16_t port)
{
    int rv = UV_EADDRINUSE;
    for (unsigned waited = 0; waited <= OLD_PORT_WAIT_MS; waited += 50) {
        rv = rg_transport_init(&n->transport, n->loop, host, port, port);
        if (rv != UV_EADDRINUSE) {
            break;
        }
        uv_sleep(50);
    }
    if (rv != 0) {
        char detail[32];
        snprintf(detail, sizeof detail, "%u", (unsigned)port);
        log_msg("our raft port is taken; binding another", detail);
    }
    return rv;
}

static int start_raft(struct rg_node *n, const struct rg_start *s,
                      const char **err)
{
    unsigned old_port = 0;
    bool fresh_dir = false;
    /* Before anything in the dir is read or written: a previous daemon
     * still exiting gets a few seconds, and a dir that is gone (deleted
     * under us, or swept) is made again, empty. */
    n->lock_fd = rg_datadir_lock(s->dir, LOCK_WAIT_MS, &fresh_dir, err);
    if (n->lock_fd < 0) {
        return -1;
    }
    snprintf(n->dir, sizeof n->dir, "%s", s->dir);
    bool resumed = !fresh_dir && read_id_file(s->dir, &n->id, &old_port);
    if (!resumed) {
        n->id = s->id != 0 ? s->id : random_id();
    }
    /* Prefer the port we had: our address is in the raft configuration. */
    int rv = UV_EADDRINUSE;
    bool any_port = s->port_lo == 0 && s->port_hi == 0;
    if (resumed && old_port != 0 &&
        (any_port || (old_port >= s->port_lo && old_port <= s->port_hi))) {
        rv = bind_old_port(n, s->bind_host, (uint16_t)old_port);
    }
    if (rv == UV_EADDRINUSE) { /* any other failure leaves a handle closing */
        rv = rg_transport_init(&n->transport, n->loop, s->bind_host, s->port_lo,
                               s->port_hi);
    }
    if (rv != 0) {
        *err = "cannot bind the raft port";
        return -1;
    }
    if (rg_transport_set_secret(&n->transport, s->secret, s->secret_len) != 0) {
        *err = "START: the cluster secret must be 1 to 1024 bytes";
        return -1;
    }
    snprintf(n->address, sizeof n->address, "%s", n->transport.address);
    if (!resumed && clear_dir(s->dir) != 0) {
        *err = "cannot clear the data dir for a fresh start";
        return -1;
    }
    n->fsm.self = n->id;
    if (raft_uv_init(&n->io, n->loop, s->dir, &n->transport.iface) != 0) {
        *err = "raft_uv_init failed (data dir missing or unusable)";
        return -1;
    }
    if (raft_init(&n->raft, &n->io, &n->fsm_iface, n->id, n->address) != 0) {
        *err = "raft_init failed";
        return -1;
    }
    tune(n, s);
    install_fixes(n);
    if (!resumed && s->bootstrap && bootstrap_alone(n) != 0) {
        *err = "raft_bootstrap failed";
        return -1;
    }
    /* Written last: a dir holds an id only once its raft state is usable,
     * so a daemon that died half-way through a fresh start is fresh again. */
    if (write_id_file(s->dir, n->id, n->transport.port) != 0) {
        *err = "cannot write the id file in the data dir";
        return -1;
    }
    if (raft_start(&n->raft) != 0) {
        *err = raft_errmsg(&n->raft);
        return -1;
    }
    n->started = true;
    rg_proto_started(&n->frame, n->id, n->transport.port, resumed);
    send_frame(n);
    return 0;
}

/* ---- frames from the member --------------------------------------------- */

/* A START that does not decode is answered with an ERROR and the daemon
 * keeps waiting for a good one; a START that decodes but cannot start raft
 * (bad data dir, no free port) ends the daemon after saying why. */
static void handle_start(struct rg_node *n, struct rg_rbuf *r, size_t len)
{
    struct rg_start s;
    const char *err = NULL;
    if (n->started || n->transport.live != 0) {
        send_error(n, "START: already started");
        return;
    }
    char *strings = malloc(len + 2);
    if (strings == NULL) {
        send_error(n, "out of memory");
        return;
    }
    if (!rg_proto_start(r, &s, strings, len + 2, &err)) {
        send_error(n, err);
    } else if (start_raft(n, &s, &err) != 0) {
        send_error(n, err);
        log_msg("start failed", err);
        node_shutdown(n, 2);
    }
    free(strings);
}

/* OPS from our member (origin: us) or FWD_OPS passed on by it for another
 * member (origin: that member's daemon). */
static void handle_ops(struct rg_node *n, struct rg_rbuf *r, bool forwarded)
{
    uint32_t count;
    uint64_t origin = n->id;
    if (!n->started) {
        send_error(n, "OPS before START");
        return;
    }
    if ((forwarded && !rg_proto_fwd_origin(r, &origin)) ||
        !rg_proto_ops_count(r, &count)) {
        send_error(n, "malformed OPS frame");
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
                send_replies(n, &o, 1, RG_RES_BAD);
            }
            send_error(n, "malformed op in OPS frame");
            return;
        }
        batch_add(n, &op, origin);
    }
    if (!rg_rbuf_done(r)) {
        send_error(n, "trailing bytes after the ops");
    }
}

/* Fault injection for tests: cut (or, with no peers, heal) the raft links
 * with the given peers, in the given directions. */
static void handle_block(struct rg_node *n, struct rg_rbuf *r)
{
    struct rg_block blocks[RG_BLOCK_MAX];
    uint32_t count = rg_rbuf_u32(r);
    if (!n->started || !rg_rbuf_ok(r) || count > RG_BLOCK_MAX ||
        r->left != (size_t)count * 9) {
        send_error(n, "malformed BLOCK frame");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        blocks[i].peer = rg_rbuf_u64(r);
        blocks[i].dirs = rg_rbuf_u8(r);
        if ((blocks[i].dirs & ~(RG_BLOCK_IN | RG_BLOCK_OUT)) != 0) {
            send_error(n, "malformed BLOCK frame");
            return;
        }
    }
    rg_transport_block(&n->transport, blocks, count);
}

/* ---- membership changes (leader only) ----------------------------------- */

static void change_done(struct rg_node *n, uint64_t ref, int status)
{
    if (!n->stopping) {
        rg_proto_changed(&n->frame, ref, (uint32_t)status);
        send_frame(n);
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

static void handle_change(struct rg_node *n, struct rg_rbuf *r)
{
    struct rg_change m = {0};
    if (!n->started || !rg_proto_change(r, &m)) {
        send_error(n, n->started ? "malformed CHANGE frame" : "CHANGE before START");
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

static void on_frame(struct rg_port *p, const uint8_t *frame, size_t len)
{
    struct rg_node *n = p->data;
    struct rg_rbuf r;
    uint8_t type;
    const char *err;
    if (n->stopping) {
        return;
    }
    rg_rbuf_init(&r, frame, len);
    if (!rg_proto_header(&r, &type, &err)) {
        send_error(n, err);
        return;
    }
    n->member_seen_ms = uv_now(n->loop);
    switch (type) {
    case RG_MSG_ALIVE:
        if (!rg_rbuf_done(&r)) {
            send_error(n, "ALIVE frame with a payload");
        }
        break;
    case RG_MSG_START:
        handle_start(n, &r, len);
        break;
    case RG_MSG_OPS:
        handle_ops(n, &r, false);
        break;
    case RG_MSG_FWD_OPS:
        handle_ops(n, &r, true);
        break;
    case RG_MSG_CHANGE:
        handle_change(n, &r);
        break;
    case RG_MSG_BLOCK:
        handle_block(n, &r);
        break;
    case RG_MSG_STOP:
        if (rg_rbuf_done(&r)) {
            node_shutdown(n, 0);
        } else {
            send_error(n, "STOP frame with a payload");
        }
        break;
    case RG_MSG_STATUS_REQ:
        if (rg_rbuf_done(&r)) {
            send_status(n, true);
        } else {
            send_error(n, "STATUS frame with a payload");
        }
        break;
    default:
        send_error(n, "unknown frame type");
        break;
    }
}

/* ---- shutdown ----------------------------------------------------------- */

static void port_closed(struct rg_port *p)
{
    struct rg_node *n = p->data;
    uv_close((uv_handle_t *)&n->check, NULL);
}

static void raft_closed(struct raft *r)
{
    struct rg_node *n = r->data;
    raft_uv_close(&n->io);
    rg_port_close(&n->port, port_closed);
}

static void transport_closed(struct raft_uv_transport *t)
{
    struct rg_node *n = ((struct rg_transport *)t->impl)->loop->data;
    rg_port_close(&n->port, port_closed);
}

/* Stops raft (which closes raft_uv and our transport), then the port; the
 * loop ends when the last handle has closed. */
static void node_shutdown(struct rg_node *n, int code)
{
    if (n->stopping) {
        return;
    }
    n->stopping = true;
    n->exit_code = code;
    batch_reset(n);
    if (n->started) {
        n->raft.data = n;
        raft_close(&n->raft, raft_closed);
    } else if (n->transport.live != 0) {
        n->transport.iface.close(&n->transport.iface, transport_closed);
    } else {
        rg_port_close(&n->port, port_closed);
    }
}

static void on_eof(struct rg_port *p, const char *reason)
{
    struct rg_node *n = p->data;
    if (reason != NULL) {
        log_msg("port closed", reason);
    }
    node_shutdown(n, reason != NULL ? 1 : 0);
}

int rg_node_init(struct rg_node *n, uv_loop_t *loop, int in_fd, int out_fd)
{
    struct rg_sipkey key = {random_id(), random_id()};
    memset(n, 0, sizeof *n);
    n->lock_fd = -1;
    n->loop = loop;
    loop->data = n;
    rg_wbuf_init(&n->batch);
    rg_wbuf_init(&n->frame);
    rg_wbuf_init(&n->held);
    if (rg_fsm_init(&n->fsm, 0, key) != 0) {
        return -1;
    }
    n->fsm_iface.version = 2;
    n->fsm_iface.data = n;
    n->fsm_iface.apply = fsm_apply;
    n->fsm_iface.snapshot = fsm_snapshot;
    n->fsm_iface.restore = fsm_restore;
    n->fsm_iface.snapshot_finalize = fsm_snapshot_finalize;
    uv_check_init(loop, &n->check);
    n->check.data = n;
    uv_check_start(&n->check, on_check);
    if (rg_port_init(&n->port, loop, in_fd, out_fd, on_frame, on_eof) != 0) {
        return -1;
    }
    n->port.data = n;
    return 0;
}

void rg_node_close(struct rg_node *n)
{
    if (n->lock_fd >= 0) {
        close(n->lock_fd); /* the data dir is free for the next daemon */
        n->lock_fd = -1;
    }
    rg_transport_free(&n->transport);
    rg_fsm_close(&n->fsm);
    rg_wbuf_free(&n->batch);
    rg_wbuf_free(&n->frame);
    rg_wbuf_free(&n->held);
    free(n->batch_refs);
}
