/* regent's raft transport; see transport.h and handshake.h.
 *
 * Lifetimes: each accepted connection is an `incoming` (tcp + timer) until
 * its handshake ends; each connect is an `outgoing` (tcp + timer) until its
 * callback fired. On success the tcp handle belongs to raft_uv, which frees
 * it with raft_free (hence raft_malloc here); otherwise we close it. The
 * struct itself is freed when its timer has closed. `live' counts these plus
 * the listener; close() fires its callback when it reaches zero. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <errno.h>
#include <unistd.h>

/* A peer that connects must complete the handshake (three small messages)
 * within this time; one we connect to gets longer, since its answer may
 * wait for its own work. */
#define ACCEPT_TIMEOUT_MS 2000
#define HANDSHAKE_TIMEOUT_MS 5000
/* Caps on unauthenticated handshakes (see struct rg_transport): at most
 * MAX_HANDSHAKES in flight, and fds for raft's own work are kept free: a
 * quarter of the fd limit beyond RESERVED_FDS. */
#define MAX_HANDSHAKES 64
#define RESERVED_FDS 128
#define HANDSHAKES_PER_ADDR 8
/* New connections per second (a TLS handshake costs the server an ECDHE):
 * from all sources, and from one source address. */
#define ACCEPTS_PER_SECOND 512
#define ACCEPTS_PER_ADDR_PER_SECOND 128

/* Handshakes and connects in flight, so close() can cancel them. */
enum { PENDING_IN, PENDING_OUT };
struct pending {
    struct pending *prev, *next;
    int kind;
};

enum in_state { IN_TLS, IN_HELLO, IN_ADDRESS, IN_CHALLENGE, IN_PROOF, IN_DONE };

struct incoming {
    struct pending link; /* first member: a pending* is an incoming* */
    struct rg_transport *t;
    /* The stream the id handshake runs on, handed to raft_uv on success:
     * the TCP socket itself, or with TLS the app end of the pump (which
     * then owns the TCP socket). NULL while the TLS handshake runs. */
    uv_stream_t *s;
    struct rg_tls_pump *pump; /* while the TLS handshake runs */
    uv_timer_t timer;
    uv_write_t write;
    enum in_state state;
    uint8_t hello[RG_HS_HELLO_FIXED + RG_ADDRESS_MAX];
    struct rg_hs_hello h;
    uint8_t challenge[RG_HS_CHALLENGE]; /* nonce_a, mac_a */
    uint8_t proof[RG_HS_PROOF];
    uint8_t *dst; /* what is being read, and how much of it */
    size_t need, got;
    struct sockaddr_storage from; /* the peer's address, for the caps */
    /* The CHALLENGE write is in flight: its callback, which libuv runs even
     * when the stream is closed, must find `in' alive, so the struct (freed
     * with the timer) goes only after it. */
    bool writing;
};

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

static bool tls_on(const struct rg_transport *t)
{
    return t->tls != NULL && t->tls->mode != RG_TLS_OFF;
}

static void pending_link(struct rg_transport *t, struct pending *p, int kind)
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

static void nonce(uint8_t out[RG_HS_NONCE])
{
    if (getrandom(out, RG_HS_NONCE, 0) != (ssize_t)RG_HS_NONCE) {
        abort(); /* no entropy, no authentication */
    }
}

/* ---- fault injection ---------------------------------------------------- */

static bool is_blocked(const struct rg_transport *t, uint64_t peer, uint8_t dir)
{
    for (unsigned i = 0; i < t->n_blocked; i++) {
        if (t->blocked[i].peer == peer && (t->blocked[i].dirs & dir) != 0) {
            return true;
        }
    }
    return false;
}

/* True while fd is still the socket we recorded (fds are reused; a
 * socket's inode is unique while it is open, TCP or a TLS pump's pipe). */
static bool same_socket(const struct rg_conn *c)
{
    struct stat st;
    return fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
}

/* s: what raft_uv gets (a TLS pump's app end: shutting it down ends the
 * pump, and the TCP connection with it). */
static void remember(struct rg_transport *t, uint64_t peer, bool inbound,
                     uv_stream_t *s)
{
    struct rg_conn c = {.peer = peer, .inbound = inbound};
    uv_os_fd_t fd;
    struct stat st;
    if (uv_fileno((uv_handle_t *)s, &fd) != 0 || fstat(fd, &st) != 0) {
        return;
    }
    c.fd = fd;
    c.dev = st.st_dev;
    c.ino = st.st_ino;
    /* Forget connections that are gone before growing. */
    unsigned k = 0;
    for (unsigned i = 0; i < t->n_conns; i++) {
        if (same_socket(&t->conns[i])) {
            t->conns[k++] = t->conns[i];
        }
    }
    t->n_conns = k;
    if (t->n_conns == t->cap_conns) {
        unsigned cap = t->cap_conns ? t->cap_conns * 2 : 16;
        struct rg_conn *v = realloc(t->conns, cap * sizeof *v);
        if (v == NULL) {
            return; /* only fault injection loses track of it */
        }
        t->conns = v;
        t->cap_conns = cap;
    }
    t->conns[t->n_conns++] = c;
}

void rg_transport_block(struct rg_transport *t, const struct rg_block *blocks,
                        unsigned n)
{
    t->n_blocked = n < RG_BLOCK_MAX ? n : RG_BLOCK_MAX;
    memcpy(t->blocked, blocks, t->n_blocked * sizeof *blocks);
    for (unsigned i = 0; i < t->n_conns; i++) {
        struct rg_conn *c = &t->conns[i];
        uint8_t dir = c->inbound ? RG_BLOCK_IN : RG_BLOCK_OUT;
        if (is_blocked(t, c->peer, dir) && same_socket(c)) {
            shutdown(c->fd, SHUT_RDWR);
        }
    }
}

void rg_transport_free(struct rg_transport *t)
{
    free(t->conns);
    t->conns = NULL;
    t->n_conns = t->cap_conns = 0;
}

/* ---- accepting ---------------------------------------------------------- */

static void incoming_freed(uv_handle_t *h)
{
    struct incoming *in = h->data;
    struct rg_transport *t = in->t;
    pending_unlink(t, &in->link);
    t->n_incoming--;
    raft_free(in);
    maybe_closed(t);
}

/* Ends a handshake; on success the stream goes to raft_uv. */
static void incoming_end(struct incoming *in, bool ok)
{
    struct rg_transport *t = in->t;
    if (in->state == IN_DONE) {
        return;
    }
    bool tls_phase = in->state == IN_TLS;
    in->state = IN_DONE;
    uv_timer_stop(&in->timer);
    if (in->pump != NULL) {
        rg_tls_pump_cancel(in->pump); /* it closes the TCP socket */
        in->pump = NULL;
    }
    ok = ok && !tls_phase && !is_blocked(t, in->h.from, RG_BLOCK_IN);
    if (ok && !t->closing && t->accept_cb != NULL) {
        uv_read_stop(in->s);
        remember(t, in->h.from, true, in->s);
        char address[RG_ADDRESS_MAX + 1];
        memcpy(address, in->hello + RG_HS_HELLO_FIXED, in->h.address_len);
        address[in->h.address_len] = '\0';
        in->s->data = NULL;
        t->accept_cb(&t->iface, in->h.from, address, in->s);
    } else {
        t->rejected += ok ? 0 : 1;
        if (in->s != NULL) {
            uv_read_stop(in->s);
            uv_close((uv_handle_t *)in->s, free_tcp);
        }
    }
    if (!in->writing) {
        uv_close((uv_handle_t *)&in->timer, incoming_freed);
    } /* else challenge_written closes it */
}

static void incoming_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct incoming *in = h->data;
    /* Exactly what the handshake still needs: raft's bytes stay unread. */
    buf->base = (char *)in->dst + in->got;
    buf->len = in->need - in->got;
}

static void incoming_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void expect(struct incoming *in, uint8_t *dst, size_t need)
{
    in->dst = dst;
    in->need = need;
    in->got = 0;
}

static void challenge_written(uv_write_t *w, int status)
{
    struct incoming *in = w->data;
    in->writing = false;
    if (in->state == IN_DONE) { /* ended meanwhile: now `in' may go */
        uv_close((uv_handle_t *)&in->timer, incoming_freed);
        return;
    }
    if (status != 0) {
        incoming_end(in, false);
        return;
    }
    in->state = IN_PROOF;
    expect(in, in->proof, RG_HS_PROOF);
    if (uv_read_start(in->s, incoming_alloc, incoming_read) != 0) {
        incoming_end(in, false);
    }
}

/* HELLO complete: answer with our nonce and proof of the secret. */
static void send_challenge(struct incoming *in)
{
    struct rg_transport *t = in->t;
    const char *addr = (const char *)in->hello + RG_HS_HELLO_FIXED;
    if (memchr(addr, 0, in->h.address_len) != NULL) {
        incoming_end(in, false);
        return;
    }
    uv_read_stop(in->s);
    nonce(in->challenge);
    if (!rg_hs_mac(t->secret, t->secret_len, RG_HS_ACCEPT, in->h.nonce,
                   in->challenge, in->h.from, in->h.to,
                   in->challenge + RG_HS_NONCE)) {
        incoming_end(in, false);
        return;
    }
    in->state = IN_CHALLENGE;
    in->write.data = in;
    uv_buf_t b = uv_buf_init((char *)in->challenge, RG_HS_CHALLENGE);
    in->writing = true;
    if (uv_write(&in->write, in->s, &b, 1, challenge_written) != 0) {
        in->writing = false;
        incoming_end(in, false);
    }
}

static void check_proof(struct incoming *in)
{
    struct rg_transport *t = in->t;
    uint8_t expected[RG_HS_MAC];
    bool ok = rg_hs_mac(t->secret, t->secret_len, RG_HS_CONNECT, in->h.nonce,
                        in->challenge, in->h.from, in->h.to, expected) &&
              rg_hs_mac_equal(expected, in->proof);
    incoming_end(in, ok);
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
    switch (in->state) {
    case IN_HELLO: {
        int len = rg_hs_hello_parse(in->hello, in->t->id, &in->h);
        if (len < 0) {
            incoming_end(in, false);
            return;
        }
        in->state = IN_ADDRESS;
        in->need += (size_t)len; /* same buffer, after the fixed part */
        return;
    }
    case IN_ADDRESS:
        send_challenge(in);
        return;
    case IN_PROOF:
        check_proof(in);
        return;
    default:
        incoming_end(in, false);
        return;
    }
}

static void hello_expected(struct incoming *in)
{
    in->state = IN_HELLO;
    expect(in, in->hello, RG_HS_HELLO_FIXED);
    in->s->data = in;
    if (uv_read_start(in->s, incoming_alloc, incoming_read) != 0) {
        incoming_end(in, false);
    }
}

/* TLS is up (app: our plain end of the pump), or it failed (NULL). */
static void incoming_tls_ready(struct rg_tls_pump *p, uv_stream_t *app, void *data)
{
    (void)p;
    struct incoming *in = data;
    in->pump = NULL;
    if (app == NULL) {
        incoming_end(in, false);
        return;
    }
    in->s = app;
    hello_expected(in);
}

static void incoming_timeout(uv_timer_t *timer)
{
    incoming_end(timer->data, false);
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    }
    return a->ss_family == AF_INET6 &&
           memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* Counts one more connection from `from' in this second's window; false
 * when it is over a rate. The window keeps the last RG_RATE_SOURCES source
 * addresses: a flood from more sources than that still meets the overall
 * rate and the caps in flight. */
static bool rate_fits(struct rg_transport *t, const struct sockaddr_storage *from)
{
    uint64_t now = uv_now(t->loop);
    if (now - t->rate_window_ms >= 1000) {
        t->rate_window_ms = now;
        t->rate_total = 0;
        t->rate_n = 0;
    }
    if (++t->rate_total > ACCEPTS_PER_SECOND) {
        return false;
    }
    for (unsigned i = 0; i < t->rate_n; i++) {
        if (same_host(&t->rate[i].from, from)) {
            return ++t->rate[i].count <= ACCEPTS_PER_ADDR_PER_SECOND;
        }
    }
    if (t->rate_n < RG_RATE_SOURCES) {
        t->rate[t->rate_n].from = *from;
        t->rate[t->rate_n++].count = 1;
    }
    return true;
}

/* Whether one more unauthenticated handshake from `from' fits the caps. */
static bool handshake_fits(struct rg_transport *t,
                           const struct sockaddr_storage *from)
{
    if (t->n_incoming >= t->max_incoming || !rate_fits(t, from)) {
        return false;
    }
    unsigned same = 0;
    for (const struct pending *p = t->pending; p != NULL; p = p->next) {
        if (p->kind == PENDING_IN &&
            ((const struct incoming *)p)->state != IN_DONE &&
            same_host(&((const struct incoming *)p)->from, from)) {
            same++;
        }
    }
    return same < HANDSHAKES_PER_ADDR;
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
    int len = sizeof in->from;
    if (uv_accept(server, (uv_stream_t *)tcp) != 0 ||
        uv_tcp_getpeername(tcp, (struct sockaddr *)&in->from, &len) != 0 ||
        !handshake_fits(t, &in->from)) {
        /* Accepted and closed at once: the backlog drains and the fd is
         * back before the next one. */
        t->shed++;
        raft_free(in);
        uv_close((uv_handle_t *)tcp, free_tcp);
        return;
    }
    in->t = t;
    t->n_incoming++;
    uv_tcp_nodelay(tcp, 1); /* raft messages are small and latency-bound */
    uv_timer_init(t->loop, &in->timer);
    in->timer.data = in;
    pending_link(t, &in->link, PENDING_IN);
    /* The whole handshake, TLS and ids, within the timeout. */
    uv_timer_start(&in->timer, incoming_timeout, ACCEPT_TIMEOUT_MS, 0);
    if (tls_on(t)) {
        in->state = IN_TLS;
        in->pump = rg_tls_pump_start(t->tls, t->loop, (uv_stream_t *)tcp, true,
                                     incoming_tls_ready, in);
        if (in->pump == NULL) {
            incoming_end(in, false);
        }
        return;
    }
    in->s = (uv_stream_t *)tcp;
    hello_expected(in);
}

/* ---- connecting --------------------------------------------------------- */

static void outgoing_freed(uv_handle_t *h)
{
    struct outgoing *o = h->data;
    struct rg_transport *t = o->t;
    pending_unlink(t, &o->link);
    raft_free(o);
    maybe_closed(t);
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
    if (status == 0 && is_blocked(o->t, o->target, RG_BLOCK_OUT)) {
        status = RAFT_NOCONNECTION;
    }
    if (o->pump != NULL) {
        rg_tls_pump_cancel(o->pump); /* it closes tcp */
        o->pump = NULL;
    }
    if (status == 0) {
        remember(o->t, o->target, false, o->s);
        uv_read_stop(o->s);
        o->s->data = NULL;
        stream = o->s;
    } else if (o->s != NULL && !o->s_closing) {
        o->s_closing = true;
        uv_close((uv_handle_t *)o->s, free_tcp);
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
        uv_close((uv_handle_t *)o->s, free_tcp);
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
    nonce(o->nonce_c);
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
    if (!tls_on(o->t)) {
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

static int t_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct rg_transport *t = iface->impl;
    struct sockaddr_in sa;
    if (is_blocked(t, id, RG_BLOCK_OUT) || parse_address(address, &sa) != 0) {
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
        uv_close((uv_handle_t *)tcp, free_tcp);
        raft_free(o);
        return RAFT_NOCONNECTION;
    }
    uv_timer_init(t->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, outgoing_timeout, HANDSHAKE_TIMEOUT_MS, 0);
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

/* Cancels what is in flight; each one unlinks itself later, from a
 * callback, so the next pointer is read first. */
static void cancel_pending(struct rg_transport *t)
{
    struct pending *p = t->pending;
    while (p != NULL) {
        struct pending *next = p->next;
        if (p->kind == PENDING_OUT) {
            outgoing_fail((struct outgoing *)p, RAFT_CANCELED);
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

/* MAX_HANDSHAKES, fewer when the fd limit is low (at least 4). */
static unsigned handshake_cap(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return MAX_HANDSHAKES;
    }
    rlim_t spare = rl.rlim_cur > RESERVED_FDS ? (rl.rlim_cur - RESERVED_FDS) / 4 : 0;
    if (spare < 4) {
        return 4;
    }
    return spare < MAX_HANDSHAKES ? (unsigned)spare : MAX_HANDSHAKES;
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
    t->max_incoming = handshake_cap();
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
        (rv = uv_listen((uv_stream_t *)&t->listener, 128, on_connection)) != 0) {
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
