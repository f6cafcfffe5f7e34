/* The Erlang port; see port.h. */
#include "port.h"

#include <stdlib.h>
#include <string.h>

#include "limits.h"

struct port_write {
    uv_write_t req;
    struct rg_port *port;
    uint8_t *data; /* owned until the write completes */
    size_t len;
};

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct rg_port *p = h->data;
    /* Read straight into the frame buffer's free space. */
    if (!rg_wbuf_reserve(&p->rx, 65536)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)p->rx.data + p->rx.len;
    buf->len = p->rx.cap - p->rx.len;
}

static uint32_t be32(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
           ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

/* Hands every complete frame to on_frame; returns false on a bad length. */
static bool cut_frames(struct rg_port *p)
{
    size_t off = 0;
    while (p->rx.len - off >= 4) {
        uint32_t len = be32(p->rx.data + off);
        if (len > RG_FRAME_MAX) {
            return false;
        }
        if (p->rx.len - off - 4 < len) {
            break;
        }
        p->on_frame(p, p->rx.data + off + 4, len);
        off += 4 + (size_t)len;
    }
    memmove(p->rx.data, p->rx.data + off, p->rx.len - off);
    p->rx.len -= off;
    return true;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct rg_port *p = s->data;
    if (n == UV_ENOBUFS || (n == 0 && p->rx.oom)) {
        uv_read_stop(s);
        p->on_eof(p, "out of memory reading the port");
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        p->on_eof(p, n == UV_EOF ? NULL : uv_strerror((int)n));
        return;
    }
    p->rx.len += (size_t)n;
    if (!cut_frames(p)) {
        uv_read_stop(s);
        p->on_eof(p, "frame length over the limit; stream abandoned");
    }
}

int rg_port_init(struct rg_port *p, uv_loop_t *loop, int in_fd, int out_fd,
                 rg_port_frame_cb on_frame, rg_port_eof_cb on_eof)
{
    int rv;
    memset(p, 0, sizeof *p);
    rg_wbuf_init(&p->rx);
    rg_wbuf_init(&p->tx);
    p->on_frame = on_frame;
    p->on_eof = on_eof;
    if ((rv = uv_pipe_init(loop, &p->in, 0)) != 0 ||
        (rv = uv_pipe_open(&p->in, in_fd)) != 0 ||
        (rv = uv_pipe_init(loop, &p->out, 0)) != 0 ||
        (rv = uv_pipe_open(&p->out, out_fd)) != 0) {
        return rv;
    }
    p->in.data = p;
    p->out.data = p;
    return uv_read_start((uv_stream_t *)&p->in, alloc_cb, read_cb);
}

void rg_port_send(struct rg_port *p, const uint8_t *frame, size_t len)
{
    rg_wbuf_u32(&p->tx, (uint32_t)len);
    rg_wbuf_put(&p->tx, frame, len);
}

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write means the member is gone: EOF follows */
    struct port_write *w = (struct port_write *)req;
    w->port->tx_in_flight -= w->len;
    free(w->data);
    free(w);
}

int rg_port_flush(struct rg_port *p)
{
    if (p->tx.len == 0) {
        return 0;
    }
    if (p->tx.oom) {
        return UV_ENOMEM;
    }
    struct port_write *w = malloc(sizeof *w);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->port = p;
    w->data = rg_wbuf_take(&p->tx, &w->len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rv = uv_write(&w->req, (uv_stream_t *)&p->out, &b, 1, write_cb);
    if (rv != 0) {
        free(w->data);
        free(w);
        return rv;
    }
    p->tx_in_flight += w->len;
    return 0;
}

static void pipe_closed(uv_handle_t *h)
{
    struct rg_port *p = h->data;
    if (++p->closed_handles == 2) {
        rg_wbuf_free(&p->rx);
        rg_wbuf_free(&p->tx);
        if (p->close_cb != NULL) {
            p->close_cb(p);
        }
    }
}

static void out_drained(uv_shutdown_t *req, int status)
{
    (void)status;
    uv_close((uv_handle_t *)req->handle, pipe_closed);
    free(req);
}

/* Closing a pipe cancels its pending writes; shut it down first so that the
 * last frames (replies, the error that explains an exit) reach the member. */
void rg_port_close(struct rg_port *p, void (*cb)(struct rg_port *p))
{
    p->close_cb = cb;
    rg_port_flush(p);
    uv_read_stop((uv_stream_t *)&p->in);
    uv_close((uv_handle_t *)&p->in, pipe_closed);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req == NULL ||
        uv_shutdown(req, (uv_stream_t *)&p->out, out_drained) != 0) {
        free(req);
        uv_close((uv_handle_t *)&p->out, pipe_closed);
    }
}
