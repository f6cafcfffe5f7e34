/* One registry daemon: the raft node, its FSM and the member's port.
 *
 * This is the edge where the pure parts (cmd, fsm, table) meet I/O
 * (libraft + raft_uv, the transport, the port). Its jobs:
 * - start raft from the START frame: resume the id kept in the data dir,
 *   or take a fresh random id and bootstrap (docs/architecture.md);
 * - batch: every op that arrives during one loop iteration goes into one
 *   log entry (flushed from a uv_check handle);
 * - ship effects: after each applied entry, the changes and this daemon's
 *   replies go to the member in one APPLIED frame;
 * - sync: once a barrier of its own term has applied, the table is sent as
 *   a DUMP, which the member uses to (re)build its ETS mirror; likewise after
 *   a snapshot restore;
 * - report raft status changes;
 * - watch its own health (a silent member, log writes, the data dir, an
 *   unread backlog).
 * Each job is a file of its own (node_*.c); node_int.h lists them in the
 * order a write flows and declares what they share. */
#ifndef RG_NODE_H
#define RG_NODE_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "fsm.h"
#include "port.h"
#include "proto.h"
#include "raft_fixes.h"
#include "transport.h"

/* A ref and the daemon whose member is waiting for its answer. */
struct rg_oref {
    uint64_t origin;
    uint64_t ref;
};

struct rg_node {
    uv_loop_t *loop;
    struct rg_port port;
    struct rg_transport transport;
    struct raft_io io;
    /* raft_uv's append, start, snapshot_put, snapshot_get and send, and
     * libraft's receive handler: node_io.c puts the corrections of
     * raft_fixes.h in front */
    int (*uv_append)(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb);
    int (*uv_start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv);
    rg_snapshot_put_fn uv_snapshot_put;
    rg_snapshot_get_fn uv_snapshot_get;
    int (*uv_send)(struct raft_io *io, struct raft_io_send *req,
                   const struct raft_message *msg, raft_io_send_cb cb);
    raft_io_recv_cb raft_recv;
    bool snapshot_writing; /* a snapshot_put is in flight */
    struct rg_loaded_snapshot loaded; /* the snapshot being sent */
    uint64_t reanchored;   /* AppendEntries re-anchored since last logged */
    uint64_t reanchor_logged_ms; /* when that was last logged (uv_now) */
    struct raft raft;
    struct raft_fsm fsm_iface;
    struct rg_fsm fsm;
    uv_check_t check;
    uv_idle_t spin;          /* active while the spin window is open (node_spin.c) */
    uint64_t spin_until_ns;  /* uv_hrtime() at which the window closes */
    uint64_t id;
    char address[RG_ADDRESS_MAX + 1];

    /* The entry being filled during this loop iteration. */
    struct rg_wbuf batch;
    size_t batch_count_off;
    uint32_t batch_n;
    struct rg_oref *batch_refs; /* owned; the refs in the batch */
    uint32_t batch_refs_cap;

    struct rg_status last_status;
    bool started;     /* raft_start succeeded */
    bool synced;      /* the member has had its DUMP */
    bool barrier_pending;
    bool unnudged;       /* a command applied since the last nudge */
    bool nudge_pending;
    uint64_t members_hash; /* of the configuration last sent as MEMBERS */
    bool members_sent;
    bool stopping;
    int exit_code;
    int lock_fd; /* the data dir's lock, held for the daemon's life (datadir.h) */
    struct rg_tls tls;       /* contexts for the transport's connections (tls.h) */
    uint64_t member_seen_ms; /* uv_now when the member's last frame arrived */
    bool silent_transfer;    /* a hand-over for a silent member is in flight */
    uint32_t io_error;       /* status of the last failed log write, 0 once one
                                succeeds; RG_IO_STALLED: no progress (node_io.c) */
    unsigned appends_inflight;
    uint64_t append_done_ms;       /* when the last append completed */
    uint64_t append_idle_until_ms; /* when appends_inflight last left 0 */
    uint64_t stall_checked_ms;     /* when rg_node_check_append_stall last ran */
    uint64_t io_error_logged_ms;
    bool trim_due;           /* a snapshot was taken: give memory back (node_health.c) */
    char dir[4097];          /* the data dir (START), checked by node_health.c */
    /* A member that does not read (node_out.c, port_overflowing): changes are
     * dropped and this member's replies held until a DUMP resyncs it. */
    bool overflow;
    struct rg_wbuf held;     /* replies held, in APPLIED's encoding; owned */
    uint32_t held_n;
    uint64_t applying;        /* log index of the entry being applied */
    size_t dump_bytes;       /* size of the last DUMP sent */
    uint64_t dir_checked_ms;
    struct rg_wbuf frame; /* scratch for building frames */
};

int rg_node_init(struct rg_node *n, uv_loop_t *loop, int in_fd, int out_fd);
/* Frees what is left after the loop has ended. */
void rg_node_close(struct rg_node *n);

#endif
