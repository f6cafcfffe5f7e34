/* One registry daemon; see node.h. This file is its life: init, the frames
 * from the member and where they go, the end-of-iteration hook, shutdown.
 * The other node_*.c files each hold one of its concerns (node_int.h). */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void rg_node_log(const char *what, const char *detail)
{
    fprintf(stderr, "regentd[%d]: %s%s%s\n", (int)getpid(), what,
            detail ? ": " : "", detail ? detail : "");
}

static void on_check(uv_check_t *check)
{
    struct rg_node *n = check->data;
    if (n->started && !n->stopping && !rg_node_data_dir_gone(n)) {
        rg_node_maybe_resync(n);
        rg_node_maybe_trim(n);
        rg_node_check_append_stall(n);
        rg_node_maybe_hand_over(n);
        rg_node_batch_flush(n);
        rg_node_maybe_sync(n);
        rg_node_maybe_nudge(n);
        rg_node_maybe_send_members(n);
        rg_node_send_status(n, false);
    }
    if (rg_port_flush(&n->port) != 0 && !n->stopping) {
        rg_node_log("cannot write to the port", NULL);
        rg_node_shutdown(n, 1);
    }
    rg_node_spin_check(n);
}

/* Fault injection for tests: cut (or, with no peers, heal) the raft links
 * with the given peers, in the given directions. */
static void handle_block(struct rg_node *n, struct rg_rbuf *r)
{
    struct rg_block blocks[RG_BLOCK_MAX];
    uint32_t count = rg_rbuf_u32(r);
    if (!n->started || !rg_rbuf_ok(r) || count > RG_BLOCK_MAX ||
        r->left != (size_t)count * 9) {
        rg_node_send_error(n, "malformed BLOCK frame");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        blocks[i].peer = rg_rbuf_u64(r);
        blocks[i].dirs = rg_rbuf_u8(r);
        if ((blocks[i].dirs & ~(RG_BLOCK_IN | RG_BLOCK_OUT)) != 0) {
            rg_node_send_error(n, "malformed BLOCK frame");
            return;
        }
    }
    rg_transport_block(&n->transport, blocks, count);
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
        rg_node_send_error(n, err);
        return;
    }
    n->member_seen_ms = uv_now(n->loop);
    rg_node_spin_note(n);
    switch (type) {
    case RG_MSG_ALIVE:
        if (!rg_rbuf_done(&r)) {
            rg_node_send_error(n, "ALIVE frame with a payload");
        }
        break;
    case RG_MSG_START:
        rg_node_handle_start(n, &r, len);
        break;
    case RG_MSG_OPS:
        rg_node_handle_ops(n, &r, false);
        break;
    case RG_MSG_FWD_OPS:
        rg_node_handle_ops(n, &r, true);
        break;
    case RG_MSG_CHANGE:
        rg_node_handle_change(n, &r);
        break;
    case RG_MSG_BLOCK:
        handle_block(n, &r);
        break;
    case RG_MSG_STOP:
        if (rg_rbuf_done(&r)) {
            rg_node_shutdown(n, 0);
        } else {
            rg_node_send_error(n, "STOP frame with a payload");
        }
        break;
    case RG_MSG_STATUS_REQ:
        if (rg_rbuf_done(&r)) {
            rg_node_send_status(n, true);
        } else {
            rg_node_send_error(n, "STATUS frame with a payload");
        }
        break;
    default:
        rg_node_send_error(n, "unknown frame type");
        break;
    }
}

static void port_closed(struct rg_port *p)
{
    struct rg_node *n = p->data;
    uv_close((uv_handle_t *)&n->check, NULL);
    uv_close((uv_handle_t *)&n->spin, NULL);
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
void rg_node_shutdown(struct rg_node *n, int code)
{
    if (n->stopping) {
        return;
    }
    n->stopping = true;
    n->exit_code = code;
    rg_node_batch_reset(n);
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
        rg_node_log("port closed", reason);
    }
    rg_node_shutdown(n, reason != NULL ? 1 : 0);
}

int rg_node_init(struct rg_node *n, uv_loop_t *loop, int in_fd, int out_fd)
{
    struct rg_sipkey key = {rg_node_random_id(), rg_node_random_id()};
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
    rg_node_fsm_setup(n);
    uv_check_init(loop, &n->check);
    n->check.data = n;
    uv_check_start(&n->check, on_check);
    rg_node_spin_init(n);
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
    rg_tls_free(&n->tls);
    rg_fsm_close(&n->fsm);
    rg_wbuf_free(&n->batch);
    rg_wbuf_free(&n->frame);
    rg_wbuf_free(&n->held);
    free(n->batch_refs);
}
