/* Connecting: TCP connect, TLS (when on), then the id handshake as the
 * connector (send HELLO, check CHALLENGE, send PROOF), then the stream goes
 * to raft_uv through its connect callback (transport_int.h, handshake.h). */
#include "transport_int.h"

#include <stdlib.h>
#include <string.h>

/* One we connect to gets longer than a peer that connects to us, since its
 * answer may wait for its own work. */
#define HANDSHAKE_TIMEOUT_MS 5000

enum out_state { OUT_CONNECT, OUT_TLS, OUT_HELLO, OUT_CHALLENGE, OUT_PROOF, OUT_DONE };

struct outgoing {
    struct pending link; /* first member: a pending* is an outgoing* */
    struct rg_transport *t;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    raft_id target;
    uv_tcp_t *tcp;
    /* The stream the connect and the id handshake run on, handed to raft_uv
     * on success: tcp itself, or with TLS the pump's app end (the pump then
     * owns tcp). NULL while the TLS handshake runs. */
    uv_stream_t *s;
    struct rg_tls_pump *pump; /* while the TLS handshake runs */
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    enum out_state state;
    bool s_closing;
    int fail_status;
    uint8_t hello[RG_HS_HELLO_FIXED + RG_ADDRESS_MAX];
    uint8_t nonce_c[RG_HS_NONCE];
    uint8_t challenge[RG_HS_CHALLENGE];
    uint8_t proof[RG_HS_PROOF];
    size_t got;
};

static void outgoing_freed(uv_handle_t *h)
{
    struct outgoing *o = h->data;
    struct rg_transport *t = o->t;
    rg_tr_pending_unlink(t, &o->link);
    raft_free(o);
    rg_tr_maybe_closed(t);
}

/* Reports the outcome to raft_uv once; the struct goes with its timer. */
static void outgoing_end(struct outgoing *o, int status)
{
    if (o->state == OUT_DONE) {
        return;
    }
    o->state = OUT_DONE;
    uv_timer_stop(&o->timer);
    uv_stream_t *stream = NULL;
    if (status == 0 && rg_tr_is_blocked(o->t, o->target, RG_BLOCK_OUT)) {
        status = RAFT_NOCONNECTION;
    }
    if (o->pump != NULL) {
        rg_tls_pump_cancel(o->pump); /* it closes tcp */
        o->pump = NULL;
    }
    if (status == 0) {
        rg_tr_remember(o->t, o->target, false, o->s);
        uv_read_stop(o->s);
        o->s->data = NULL;
        stream = o->s;
    } else if (o->s != NULL && !o->s_closing) {
        o->s_closing = true;
        uv_close((uv_handle_t *)o->s, rg_tr_free_tcp);
    }
    o->cb(o->req, stream, status);
    uv_close((uv_handle_t *)&o->timer, outgoing_freed);
}

/* Fails now if we are waiting for bytes; otherwise closing the socket makes
 * the pending connect or write fail, and its callback ends the attempt. */
static void outgoing_fail(struct outgoing *o, int status)
{
    o->fail_status = status;
    if (o->state == OUT_CHALLENGE || o->state == OUT_TLS) {
        outgoing_end(o, status);
    } else if (!o->s_closing && o->state != OUT_DONE) {
        o->s_closing = true;
        uv_close((uv_handle_t *)o->s, rg_tr_free_tcp);
    }
}

static int failure(struct outgoing *o)
{
    if (o->fail_status != 0) {
        return o->fail_status;
    }
    return o->t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION;
}

/* A timeout or close may have closed the handle after the write went
 * through: then it is a failure, and the handle is not handed over. */
static void proof_written(uv_write_t *w, int status)
{
    struct outgoing *o = w->data;
    bool ok = status == 0 && !o->t->closing && !o->s_closing;
    outgoing_end(o, ok ? 0 : failure(o));
}

static void challenge_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct outgoing *o = h->data;
    buf->base = (char *)o->challenge + o->got;
    buf->len = RG_HS_CHALLENGE - o->got;
}

/* The acceptor's nonce and proof: check it, then prove ourselves. */
static void challenge_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct outgoing *o = s->data;
    struct rg_transport *t = o->t;
    if (n < 0) {
        outgoing_end(o, RAFT_NOCONNECTION);
        return;
    }
    o->got += (size_t)n;
    if (o->got < RG_HS_CHALLENGE) {
        return;
    }
    uv_read_stop(s);
    uint8_t expected[RG_HS_MAC];
    if (!rg_hs_mac(t->secret, t->secret_len, RG_HS_ACCEPT, o->nonce_c,
                   o->challenge, t->id, o->target, expected) ||
        !rg_hs_mac_equal(expected, o->challenge + RG_HS_NONCE) ||
        !rg_hs_mac(t->secret, t->secret_len, RG_HS_CONNECT, o->nonce_c,
                   o->challenge, t->id, o->target, o->proof)) {
        t->rejected++;
        outgoing_end(o, RAFT_NOCONNECTION);
        return;
    }
    o->state = OUT_PROOF;
    o->write.data = o;
    uv_buf_t b = uv_buf_init((char *)o->proof, RG_HS_PROOF);
    if (uv_write(&o->write, s, &b, 1, proof_written) != 0) {
        outgoing_fail(o, RAFT_NOCONNECTION);
    }
}

static void hello_written(uv_write_t *w, int status)
{
    struct outgoing *o = w->data;
    if (status != 0 || o->t->closing || o->s_closing) {
        outgoing_end(o, failure(o));
        return;
    }
    o->state = OUT_CHALLENGE;
    if (uv_read_start(o->s, challenge_alloc, challenge_read) != 0) {
        outgoing_end(o, RAFT_NOCONNECTION);
    }
}

static void send_hello(struct outgoing *o)
{
    rg_tr_nonce(o->nonce_c);
    size_t len = rg_hs_hello_build(o->hello, o->t->id, o->target, o->nonce_c,
                                   o->t->address);
    o->state = OUT_HELLO;
    o->s->data = o;
    o->write.data = o;
    uv_buf_t b = uv_buf_init((char *)o->hello, (unsigned)len);
    if (uv_write(&o->write, o->s, &b, 1, hello_written) != 0) {
        outgoing_fail(o, RAFT_NOCONNECTION);
    }
}

/* TLS is up (app: our plain end of the pump), or it failed (NULL). */
static void outgoing_tls_ready(struct rg_tls_pump *p, uv_stream_t *app, void *data)
{
    (void)p;
    struct outgoing *o = data;
    o->pump = NULL;
    if (app == NULL) {
        outgoing_end(o, failure(o));
        return;
    }
    o->s = app;
    send_hello(o);
}

static void outgoing_connected(uv_connect_t *c, int status)
{
    struct outgoing *o = c->data;
    if (status != 0 || o->t->closing || o->s_closing) {
        outgoing_end(o, failure(o));
        return;
    }
    uv_tcp_nodelay(o->tcp, 1);
    if (!rg_tr_tls_on(o->t)) {
        send_hello(o);
        return;
    }
    o->state = OUT_TLS;
    o->s = NULL; /* tcp is the pump's now */
    struct rg_tls_pump *p = rg_tls_pump_start(o->t->tls, o->t->loop,
                                              (uv_stream_t *)o->tcp, false,
                                              outgoing_tls_ready, o);
    if (p == NULL) {
        outgoing_end(o, RAFT_NOCONNECTION);
    } else if (o->state == OUT_TLS) { /* it may have failed already */
        o->pump = p;
    }
}

static void outgoing_timeout(uv_timer_t *timer)
{
    outgoing_fail(timer->data, RAFT_NOCONNECTION);
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

int rg_tr_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct rg_transport *t = iface->impl;
    struct sockaddr_in sa;
    if (rg_tr_is_blocked(t, id, RG_BLOCK_OUT) || parse_address(address, &sa) != 0) {
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
    o->target = id;
    o->tcp = tcp;
    o->s = (uv_stream_t *)tcp;
    o->state = OUT_CONNECT;
    uv_tcp_init(t->loop, tcp);
    tcp->data = o;
    o->connect.data = o;
    if (uv_tcp_connect(&o->connect, tcp, (struct sockaddr *)&sa,
                       outgoing_connected) != 0) {
        uv_close((uv_handle_t *)tcp, rg_tr_free_tcp);
        raft_free(o);
        return RAFT_NOCONNECTION;
    }
    uv_timer_init(t->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, outgoing_timeout, HANDSHAKE_TIMEOUT_MS, 0);
    rg_tr_pending_link(t, &o->link, PENDING_OUT);
    return 0;
}

void rg_tr_outgoing_cancel(struct pending *p)
{
    outgoing_fail((struct outgoing *)p, RAFT_CANCELED);
}
