/* Accepting: TLS (when on), then the id handshake as the acceptor (read
 * HELLO, send CHALLENGE, check PROOF), then the stream goes to raft_uv
 * (transport_int.h, handshake.h). */
#include "transport_int.h"

#include <string.h>

/* A peer that connects must complete the handshake (TLS and ids) within
 * this time. */
#define ACCEPT_TIMEOUT_MS 2000

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

static void incoming_freed(uv_handle_t *h)
{
    struct incoming *in = h->data;
    struct rg_transport *t = in->t;
    rg_tr_pending_unlink(t, &in->link);
    t->n_incoming--;
    raft_free(in);
    rg_tr_maybe_closed(t);
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
    ok = ok && !tls_phase && !rg_tr_is_blocked(t, in->h.from, RG_BLOCK_IN);
    if (ok && !t->closing && t->accept_cb != NULL) {
        uv_read_stop(in->s);
        rg_tr_remember(t, in->h.from, true, in->s);
        char address[RG_ADDRESS_MAX + 1];
        memcpy(address, in->hello + RG_HS_HELLO_FIXED, in->h.address_len);
        address[in->h.address_len] = '\0';
        in->s->data = NULL;
        t->accept_cb(&t->iface, in->h.from, address, in->s);
    } else {
        t->rejected += ok ? 0 : 1;
        if (in->s != NULL) {
            uv_read_stop(in->s);
            uv_close((uv_handle_t *)in->s, rg_tr_free_tcp);
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
    rg_tr_nonce(in->challenge);
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

void rg_tr_on_connection(uv_stream_t *server, int status)
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
        !rg_tr_handshake_fits(t, &in->from)) {
        /* Accepted and closed at once: the backlog drains and the fd is
         * back before the next one. */
        t->shed++;
        raft_free(in);
        uv_close((uv_handle_t *)tcp, rg_tr_free_tcp);
        return;
    }
    in->t = t;
    t->n_incoming++;
    uv_tcp_nodelay(tcp, 1); /* raft messages are small and latency-bound */
    uv_timer_init(t->loop, &in->timer);
    in->timer.data = in;
    rg_tr_pending_link(t, &in->link, PENDING_IN);
    /* The whole handshake, TLS and ids, within the timeout. */
    uv_timer_start(&in->timer, incoming_timeout, ACCEPT_TIMEOUT_MS, 0);
    if (rg_tr_tls_on(t)) {
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

void rg_tr_incoming_cancel(struct pending *p)
{
    incoming_end((struct incoming *)p, false);
}

unsigned rg_tr_handshakes_from(const struct rg_transport *t,
                               const struct sockaddr_storage *from)
{
    unsigned n = 0;
    for (const struct pending *p = t->pending; p != NULL; p = p->next) {
        const struct incoming *in = (const struct incoming *)p;
        n += p->kind == PENDING_IN && in->state != IN_DONE &&
             rg_tr_same_host(&in->from, from);
    }
    return n;
}
