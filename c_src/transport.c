/* regent's raft transport; see transport.h, and transport_int.h for its
 * files. This one holds what they share (the list of handshakes and
 * connects in flight, nonces), the raft_uv_transport interface, binding the
 * listener, and close.
 *
 * Lifetimes: each accepted connection is an `incoming` (tcp + timer) until
 * its handshake ends; each connect is an `outgoing` (tcp + timer) until its
 * callback fired. On success the stream belongs to raft_uv, which frees
 * it with raft_free (hence raft_malloc here); otherwise we close it. The
 * struct itself is freed when its timer has closed. `live' counts these plus
 * the listener; close() fires its callback when it reaches zero. */
#include "transport_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

bool rg_tr_tls_on(const struct rg_transport *t)
{
    return t->tls != NULL && t->tls->mode != RG_TLS_OFF;
}

void rg_tr_pending_link(struct rg_transport *t, struct pending *p, int kind)
{
    p->kind = kind;
    p->prev = NULL;
    p->next = t->pending;
    if (t->pending != NULL) {
        t->pending->prev = p;
    }
    t->pending = p;
    t->live++;
}

void rg_tr_pending_unlink(struct rg_transport *t, struct pending *p)
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

void rg_tr_maybe_closed(struct rg_transport *t)
{
    if (t->closing && t->live == 0 && t->close_cb != NULL) {
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(&t->iface);
    }
}

void rg_tr_free_tcp(uv_handle_t *h)
{
    raft_free(h);
}

void rg_tr_nonce(uint8_t out[RG_HS_NONCE])
{
    if (getrandom(out, RG_HS_NONCE, 0) != (ssize_t)RG_HS_NONCE) {
        abort(); /* no entropy, no authentication */
    }
}

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
    rg_tr_maybe_closed(t);
}

/* Cancels what is in flight; each one unlinks itself later, from a
 * callback, so the next pointer is read first. */
static void cancel_pending(struct rg_transport *t)
{
    struct pending *p = t->pending;
    while (p != NULL) {
        struct pending *next = p->next;
        if (p->kind == PENDING_OUT) {
            rg_tr_outgoing_cancel(p);
        } else {
            rg_tr_incoming_cancel(p);
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

/* A listening socket on host:port, made without libuv: a failed attempt
 * then leaves no libuv handle to close, so trying port after port never
 * runs the loop (which would read and handle more port frames while the
 * START being handled still points into the read buffer: found by ASan).
 * Returns the fd, or a libuv error (negative errno). */
static int listen_socket(const char *host, uint16_t port)
{
    struct sockaddr_in sa;
    int rv = uv_ip4_addr(host, port, &sa);
    if (rv != 0) {
        return rv;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    return fd;
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
    t->iface.connect = rg_tr_connect;
    t->iface.close = t_close;
    t->max_incoming = rg_tr_handshake_cap();
    if (strlen(host) >= sizeof t->host) {
        return UV_EINVAL;
    }
    strcpy(t->host, host);
    int fd = UV_EADDRINUSE;
    for (uint32_t port = lo; port <= hi; port++) {
        fd = listen_socket(host, (uint16_t)port);
        if (fd != UV_EADDRINUSE) {
            break;
        }
    }
    if (fd < 0) {
        return fd;
    }
    int rv = uv_tcp_init(t->loop, &t->listener);
    if (rv != 0) {
        close(fd);
        return rv;
    }
    t->listener.data = t;
    if ((rv = uv_tcp_open(&t->listener, fd)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&t->listener, 128, rg_tr_on_connection)) != 0) {
        /* The handle exists now: closing it (which closes fd) finishes in
         * a later loop iteration; the caller gives up on this transport. */
        uv_close((uv_handle_t *)&t->listener, NULL);
        return rv;
    }
    struct sockaddr_in sa;
    int len = sizeof sa;
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&sa, &len);
    t->port = ntohs(sa.sin_port);
    snprintf(t->address, sizeof t->address, "%s:%u", t->host, (unsigned)t->port);
    t->live = 1;
    return 0;
}

int rg_transport_set_secret(struct rg_transport *t, const uint8_t *secret,
                            size_t len)
{
    if (len == 0 || len > sizeof t->secret) {
        return -1;
    }
    memcpy(t->secret, secret, len);
    t->secret_len = len;
    return 0;
}
