/* The Erlang port: {packet,4} frames on stdin and stdout, over libuv.
 *
 * Incoming bytes are cut into frames and handed to on_frame; outgoing frames
 * are queued with rg_port_send and written together by rg_port_flush (one
 * write per loop iteration instead of one per frame). A length over
 * RG_FRAME_MAX cannot be resynchronised, so it ends the stream like EOF. */
#ifndef RG_PORT_H
#define RG_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

struct rg_port;
typedef void (*rg_port_frame_cb)(struct rg_port *p, const uint8_t *frame,
                                 size_t len);
/* reason: NULL for a clean EOF, else why the stream was abandoned. */
typedef void (*rg_port_eof_cb)(struct rg_port *p, const char *reason);

struct rg_port {
    uv_pipe_t in;
    uv_pipe_t out;
    struct rg_wbuf rx;    /* bytes read, not yet a whole frame */
    struct rg_wbuf tx;    /* frames queued for the next flush */
    size_t tx_in_flight;  /* bytes handed to uv_write, not yet written */
    rg_port_frame_cb on_frame;
    rg_port_eof_cb on_eof;
    void *data;
    int closed_handles;
    void (*close_cb)(struct rg_port *p);
};

int rg_port_init(struct rg_port *p, uv_loop_t *loop, int in_fd, int out_fd,
                 rg_port_frame_cb on_frame, rg_port_eof_cb on_eof);
/* Queues one frame (the 4-byte length is added here). */
void rg_port_send(struct rg_port *p, const uint8_t *frame, size_t len);
/* Writes everything queued. Returns 0 or a libuv error. */
int rg_port_flush(struct rg_port *p);
/* Stops reading and closes both pipes; cb fires when they are closed. */
void rg_port_close(struct rg_port *p, void (*cb)(struct rg_port *p));

#endif
