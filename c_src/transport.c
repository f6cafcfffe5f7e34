/* regent's raft transport; see transport.h.
 *
 * Lifetimes: each accepted connection is an `incoming` (tcp + timer) until
 * its handshake completes, then the tcp handle belongs to raft_uv (which
 * frees it with raft_free, hence raft_malloc here). Each connect is an
 * `outgoing` until its callback fired. `live` counts these plus the
 * listener; close() waits for it to reach zero. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDSHAKE_TIMEOUT_MS 5000

/* Handshakes and connects in flight, so close() can cancel them. */
enum { PENDING_IN, PENDING_OUT };
struct pending {
    struct pending *prev, *next;
    int kind;
};

static void pending_link(struct rg_transport *t, struct pending *p, int kind)
{
    struct pending *head = t->pending;
    p->kind = kind;
    p->prev = NULL;
    p->next = head;
    if (head != NULL) {
        head->prev = p;
    }
    t->pending = p;
    t->live++;
}

static void pending_unlink(struct rg_transport *t, struct pending *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        t->pending = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    t->live--;
}

struct incoming {
    struct pending link; /* first member: a pending* is an incoming* */
    struct rg_transport *t;
    uv_tcp_t *tcp;
    uv_timer_t timer;
    uint8_t buf[RG_HANDSHAKE_FIXED + RG_ADDRESS_MAX + 1];
    size_t need; /* bytes of the handshake expected so far */
    size_t got;
    raft_id peer;
    bool done;
};

struct outgoing {
    struct pending link; /* first member: a pending* is an outgoing* */
    struct rg_transport *t;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    uv_tcp_t *tcp;
    uv_connect_t connect;
    uv_write_t write;
    uint8_t hs[RG_HANDSHAKE_FIXED + RG_ADDRESS_MAX];
    bool tcp_closing;
};

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int rg_handshake_fixed(const uint8_t *p, raft_id *id)
{
    uint64_t len = get_be(p + 16, 2);
    *id = get_be(p + 8, 8);
    if (get_be(p, 8) != RG_HANDSHAKE_MAGIC || *id == 0 || len == 0 ||
        len > RG_ADDRESS_MAX) {
        return -1;
    }
    return (int)len;
}

static void maybe_closed(struct rg_transport *t)
{
    if (t->closing && t->live == 0 && t->close_cb != NULL) {
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(&t->iface);
    }
}

static void free_tcp(uv_handle_t *h)
{
    raft_free(h);
}

static void nodelay(uv_tcp_t *tcp)
{
    /* Raft messages are small and latency-bound: never wait for Nagle. */
    uv_tcp_nodelay(tcp, 1);
}

/* ---- accepting ---------------------------------------------------------- */

static void incoming_freed(uv_handle_t *h)
{
    struct incoming *in = h->data;
    struct rg_transport *t = in->t;
    pending_unlink(t, &in->link);
    raft_free(in);
    maybe_closed(t);
}

/* Ends a handshake; on success the stream goes to raft_uv. */
static void incoming_end(struct incoming *in, bool ok)
{
    struct rg_transport *t = in->t;
    if (in->done) {
        return;
    }
    in->done = true;
    uv_timer_stop(&in->timer);
    uv_read_stop((uv_stream_t *)in->tcp);
    if (ok && !t->closing && t->accept_cb != NULL) {
        char address[RG_ADDRESS_MAX + 1];
        size_t len = in->need - RG_HANDSHAKE_FIXED;
        memcpy(address, in->buf + RG_HANDSHAKE_FIXED, len);
        address[len] = '\0';
        in->tcp->data = NULL;
        t->accept_cb(&t->iface, in->peer, address, (uv_stream_t *)in->tcp);
    } else {
        t->rejected += ok ? 0 : 1;
        uv_close((uv_handle_t *)in->tcp, free_tcp);
    }
    uv_close((uv_handle_t *)&in->timer, incoming_freed);
}

static void incoming_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct incoming *in = h->data;
    /* Exactly what the handshake still needs: raft's bytes stay unread. */
    buf->base = (char *)in->buf + in->got;
    buf->len = in->need - in->got;
}

static void incoming_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct incoming *in = s->data;
    if (n < 0) {
        incoming_end(in, false);
        return;
    }
    in->got += (size_t)n;
    if (in->got < in->need) {
        return;
    }
    if (in->need == RG_HANDSHAKE_FIXED) {
        int len = rg_handshake_fixed(in->buf, &in->peer);
        if (len < 0) {
            incoming_end(in, false);
            return;
        }
        in->need += (size_t)len;
        return;
    }
    bool has_nul = memchr(in->buf + RG_HANDSHAKE_FIXED, 0,
                          in->need - RG_HANDSHAKE_FIXED) != NULL;
    incoming_end(in, !has_nul);
}

static void incoming_timeout(uv_timer_t *timer)
{
    incoming_end(timer->data, false);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct rg_transport *t = server->data;
    if (status != 0 || t->closing) {
        return;
    }
    struct incoming *in = raft_calloc(1, sizeof *in);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (in == NULL || tcp == NULL || uv_tcp_init(t->loop, tcp) != 0) {
        raft_free(in);
        raft_free(tcp);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
        raft_free(in);
        uv_close((uv_handle_t *)tcp, free_tcp);
        return;
    }
    in->t = t;
    in->tcp = tcp;
    in->need = RG_HANDSHAKE_FIXED;
    tcp->data = in;
    nodelay(tcp);
    uv_timer_init(t->loop, &in->timer);
    in->timer.data = in;
    pending_link(t, &in->link, PENDING_IN);
    uv_timer_start(&in->timer, incoming_timeout, HANDSHAKE_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)tcp, incoming_alloc, incoming_read) != 0) {
        incoming_end(in, false);
    }
}

/* ---- connecting --------------------------------------------------------- */

static void outgoing_end(struct outgoing *o, uv_stream_t *stream, int status)
{
    struct rg_transport *t = o->t;
    if (stream == NULL && !o->tcp_closing) {
        uv_close((uv_handle_t *)o->tcp, free_tcp);
    }
    pending_unlink(t, &o->link);
    o->cb(o->req, stream, status);
    raft_free(o);
    maybe_closed(t);
}

static void outgoing_written(uv_write_t *w, int status)
{
    struct outgoing *o = w->data;
    if (status != 0 || o->t->closing) {
        outgoing_end(o, NULL, o->t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        return;
    }
    outgoing_end(o, (uv_stream_t *)o->tcp, 0);
}

static void outgoing_connected(uv_connect_t *c, int status)
{
    struct outgoing *o = c->data;
    if (status != 0 || o->t->closing) {
        outgoing_end(o, NULL, o->t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        return;
    }
    nodelay(o->tcp);
    uv_buf_t b = uv_buf_init((char *)o->hs,
                             RG_HANDSHAKE_FIXED + (unsigned)get_be(o->hs + 16, 2));
    o->write.data = o;
    if (uv_write(&o->write, (uv_stream_t *)o->tcp, &b, 1, outgoing_written) != 0) {
        outgoing_end(o, NULL, RAFT_NOCONNECTION);
    }
}

static int parse_address(const char *address, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= sizeof host) {
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        return -1;
    }
    return uv_ip4_addr(host, (int)port, sa) == 0 ? 0 : -1;
}

static int t_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    (void)id;
    struct rg_transport *t = iface->impl;
    struct sockaddr_in sa;
    if (parse_address(address, &sa) != 0) {
        return RAFT_NOCONNECTION;
    }
    struct outgoing *o = raft_calloc(1, sizeof *o);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (o == NULL || tcp == NULL) {
        raft_free(o);
        raft_free(tcp);
        return RAFT_NOMEM;
    }
    o->t = t;
    o->req = req;
    o->cb = cb;
    o->tcp = tcp;
    /* Our own identity, so the peer knows whom it is talking to. */
    char mine[RG_ADDRESS_MAX + 1];
    snprintf(mine, sizeof mine, "%s:%u", t->host, (unsigned)t->port);
    size_t mlen = strlen(mine);
    put_be(o->hs, RG_HANDSHAKE_MAGIC, 8);
    put_be(o->hs + 8, t->id, 8);
    put_be(o->hs + 16, mlen, 2);
    memcpy(o->hs + RG_HANDSHAKE_FIXED, mine, mlen);
    uv_tcp_init(t->loop, tcp);
    tcp->data = o;
    o->connect.data = o;
    if (uv_tcp_connect(&o->connect, tcp, (struct sockaddr *)&sa,
                       outgoing_connected) != 0) {
        uv_close((uv_handle_t *)tcp, free_tcp);
        raft_free(o);
        return RAFT_NOCONNECTION;
    }
    pending_link(t, &o->link, PENDING_OUT);
    return 0;
}

/* ---- the raft_uv_transport interface ------------------------------------ */

static int t_init(struct raft_uv_transport *iface, raft_id id,
                  const char *address)
{
    (void)address;
    struct rg_transport *t = iface->impl;
    t->id = id;
    return 0;
}

static int t_listen(struct raft_uv_transport *iface, raft_uv_accept_cb cb)
{
    struct rg_transport *t = iface->impl;
    t->accept_cb = cb;
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct rg_transport *t = h->data;
    t->live--;
    maybe_closed(t);
}

/* Cancels what is in flight: connects see their handle closed and fail
 * with RAFT_CANCELED; handshakes are dropped. Both unlink themselves later,
 * from callbacks, so the next pointer is read first. */
static void cancel_pending(struct rg_transport *t)
{
    struct pending *p = t->pending;
    while (p != NULL) {
        struct pending *next = p->next;
        if (p->kind == PENDING_OUT) {
            struct outgoing *o = (struct outgoing *)p;
            if (!o->tcp_closing) {
                o->tcp_closing = true;
                uv_close((uv_handle_t *)o->tcp, free_tcp);
            }
        } else {
            incoming_end((struct incoming *)p, false);
        }
        p = next;
    }
}

static void t_close(struct raft_uv_transport *iface,
                    raft_uv_transport_close_cb cb)
{
    struct rg_transport *t = iface->impl;
    t->closing = true;
    t->close_cb = cb;
    cancel_pending(t);
    uv_close((uv_handle_t *)&t->listener, listener_closed);
}

static int bind_port(struct rg_transport *t, const char *host, uint16_t port)
{
    struct sockaddr_in sa;
    int rv = uv_ip4_addr(host, port, &sa);
    if (rv != 0) {
        return rv;
    }
    if ((rv = uv_tcp_init(t->loop, &t->listener)) != 0) {
        return rv;
    }
    t->listener.data = t;
    rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        /* bind errors such as EADDRINUSE surface at listen time */
        rv = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    }
    if (rv != 0) {
        uv_close((uv_handle_t *)&t->listener, NULL);
        uv_run(t->loop, UV_RUN_NOWAIT); /* let the close finish */
    }
    return rv;
}

int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *host, uint16_t lo, uint16_t hi)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->iface.version = 1;
    t->iface.impl = t;
    t->iface.init = t_init;
    t->iface.listen = t_listen;
    t->iface.connect = t_connect;
    t->iface.close = t_close;
    if (strlen(host) >= sizeof t->host) {
        return UV_EINVAL;
    }
    strcpy(t->host, host);
    int rv = UV_EADDRINUSE;
    for (uint32_t port = lo; port <= hi; port++) {
        rv = bind_port(t, host, (uint16_t)port);
        if (rv != UV_EADDRINUSE) {
            break;
        }
    }
    if (rv != 0) {
        return rv;
    }
    struct sockaddr_in sa;
    int len = sizeof sa;
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&sa, &len);
    t->port = ntohs(sa.sin_port);
    t->live = 1;
    return 0;
}
