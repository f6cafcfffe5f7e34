/* What the files of one registry daemon share (node.h is the outside view).
 *
 * struct rg_node (node.h) is the daemon's state; each concern is a file
 * that works on it, named for what it does, in the order a write flows:
 *   node.c         life: init, frames from the member (dispatch), the
 *                  end-of-iteration hook, shutdown
 *   node_start.c   START: data dir lock and id file, raft port, tuning,
 *                  bootstrap
 *   node_batch.c   OPS/FWD_OPS into one log entry per loop iteration
 *   node_io.c      raft_uv wrapped: raft_fixes.c in front of its calls,
 *                  failed and stalled log writes noticed
 *   node_fsm.c     the FSM as libraft sees it (apply, snapshot, restore)
 *   node_out.c     frames to the member: APPLIED, REPLIES, STATUS, DUMP,
 *                  ERROR, and the bound on an unread backlog
 *   node_sync.c    the DUMP once the table is complete, the commit nudge,
 *                  MEMBERS
 *   node_change.c  membership changes (CHANGE/CHANGED)
 *   node_health.c  a silent member's leadership handed over, memory given
 *                  back, a deleted data dir noticed
 *   node_spin.c    busy-polling for a moment after work
 * Every function here is called from another of those files; the rest
 * are static in theirs. */
#ifndef RG_NODE_INT_H
#define RG_NODE_INT_H

#include "node.h"

/* node.c */
void rg_node_log(const char *what, const char *detail);
void rg_node_shutdown(struct rg_node *n, int code);

/* node_start.c */
uint64_t rg_node_random_id(void);
void rg_node_handle_start(struct rg_node *n, struct rg_rbuf *r, size_t len);

/* node_spin.c */
void rg_node_spin_init(struct rg_node *n);
void rg_node_spin_note(struct rg_node *n);
void rg_node_spin_traffic(void *arg);
void rg_node_spin_check(struct rg_node *n);

/* node_batch.c */
void rg_node_handle_ops(struct rg_node *n, struct rg_rbuf *r, bool forwarded);
void rg_node_batch_flush(struct rg_node *n);
void rg_node_batch_reset(struct rg_node *n);

/* node_io.c */
void rg_node_install_fixes(struct rg_node *n);
void rg_node_check_append_stall(struct rg_node *n);

/* node_fsm.c */
void rg_node_fsm_setup(struct rg_node *n);

/* node_out.c */
void rg_node_send_frame(struct rg_node *n);
void rg_node_send_error(struct rg_node *n, const char *msg);
void rg_node_send_replies(struct rg_node *n, const struct rg_oref *refs,
                          uint32_t count, uint8_t result);
void rg_node_send_status(struct rg_node *n, bool always);
void rg_node_send_dump(struct rg_node *n);
void rg_node_ship_effects(struct rg_node *n);
void rg_node_maybe_resync(struct rg_node *n);
void rg_node_send_held(struct rg_node *n);

/* node_sync.c */
void rg_node_maybe_sync(struct rg_node *n);
void rg_node_maybe_nudge(struct rg_node *n);
void rg_node_maybe_send_members(struct rg_node *n);

/* node_change.c */
void rg_node_handle_change(struct rg_node *n, struct rg_rbuf *r);

/* node_health.c */
void rg_node_maybe_hand_over(struct rg_node *n);
void rg_node_maybe_trim(struct rg_node *n);
bool rg_node_data_dir_gone(struct rg_node *n);

#endif
