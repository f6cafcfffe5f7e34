/* Unit tests for tls.c, the TLS 1.3 pump of the raft port, over real
 * sockets and a real libuv loop. The "network" between two pumps is a
 * socketpair, or two with a relay in the middle that can flip one byte.
 * Covers: the PSK derivation (stable, not the secret); a PSK handshake
 * both ways and 3 MB of random bytes each way, intact and in order; a
 * wrong PSK refused on both sides (ready_cb with NULL); a byte flipped,
 * 100 bytes dropped or 16 injected after the handshake: the receiving pump
 * ends the link (its app end reads EOF), delivers nothing past the damage
 * and nothing that differs; a
 * client's recorded session replayed to a new server fails its handshake;
 * a cancelled pump calls nothing; everything freed (valgrind, ASan). */
#include <raft.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "tls.h"
#include "unit.h"

#define BIG (3u << 20)

struct end {
    uv_stream_t *app; /* from ready_cb */
    bool ready, failed;
    uint8_t *got; /* bytes read from app */
    size_t n_got;
    bool eof;
};

static uv_loop_t loop;

static void on_ready(struct rg_tls_pump *p, uv_stream_t *app, void *data)
{
    (void)p;
    struct end *e = data;
    if (app == NULL) {
        e->failed = true;
        return;
    }
    e->app = app;
    e->ready = true;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(hint);
    buf->len = hint;
}

static void app_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct end *e = s->data;
    if (n > 0) {
        e->got = realloc(e->got, e->n_got + (size_t)n);
        memcpy(e->got + e->n_got, buf->base, (size_t)n);
        e->n_got += (size_t)n;
    } else if (n < 0) {
        e->eof = true;
        uv_read_stop(s);
    }
    free(buf->base);
}

static void start_reading(struct end *e)
{
    e->app->data = e;
    uv_read_start(e->app, alloc_cb, app_read);
}

static uv_stream_t *pipe_of(int fd)
{
    uv_pipe_t *p = raft_malloc(sizeof *p);
    uv_pipe_init(&loop, p, 0);
    uv_pipe_open(p, fd);
    return (uv_stream_t *)p;
}

/* Runs the loop until done() or about 5 s. */
static bool run_until(bool (*done)(void *), void *arg)
{
    for (int i = 0; i < 5000 && !done(arg); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return done(arg);
}

struct pair {
    struct end a, b;
};

static bool both_settled(void *arg)
{
    struct pair *p = arg;
    return (p->a.ready || p->a.failed) && (p->b.ready || p->b.failed);
}

static void free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static void close_end(struct end *e)
{
    if (e->app != NULL) {
        uv_close((uv_handle_t *)e->app, free_handle);
        e->app = NULL;
    }
    free(e->got);
    e->got = NULL;
}

static void drain_loop(void)
{
    for (int i = 0; i < 200; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* ---- a relay that may flip a byte ---------------------------------------- */

struct relay {
    uv_stream_t *side[2]; /* side[0] faces the client, side[1] the server */
    size_t passed[2];     /* bytes passed on from each side */
    size_t flip_at;       /* tamper at this offset from side[0] (0: never) */
    enum { FLIP, DROP, INJECT } how; /* a byte flipped, 100 dropped, 16 added */
    uint8_t *recorded;    /* what side[0] sent (the client's bytes), if asked */
    size_t n_recorded;
    bool record;
};

static void relay_write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void shutdown_done(uv_shutdown_t *sd, int status)
{
    (void)status;
    free(sd);
}

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct relay *r = s->data;
    int from = s == r->side[0] ? 0 : 1;
    if (n < 0) {
        uv_read_stop(s);
        uv_shutdown_t *sd = malloc(sizeof *sd);
        if (uv_shutdown(sd, r->side[1 - from], shutdown_done) != 0) {
            free(sd);
        }
        free(buf->base);
        return;
    }
    size_t len = (size_t)n;
    if (from == 0 && r->flip_at != 0 && r->passed[0] <= r->flip_at &&
        r->flip_at < r->passed[0] + (size_t)n) {
        size_t at = r->flip_at - r->passed[0];
        if (r->how == FLIP) {
            buf->base[at] ^= 0x40;
        } else if (r->how == DROP) {
            size_t cut = len - at < 100 ? len - at : 100;
            memmove(buf->base + at, buf->base + at + cut, len - at - cut);
            len -= cut;
        } else {
            char *bigger = malloc(len + 16);
            memcpy(bigger, buf->base, at);
            memset(bigger + at, 0x17, 16); /* looks like a record's type */
            memcpy(bigger + at + 16, buf->base + at, len - at);
            free(buf->base);
            ((uv_buf_t *)buf)->base = bigger;
            len += 16;
        }
    }
    if (from == 0 && r->record) {
        r->recorded = realloc(r->recorded, r->n_recorded + (size_t)n);
        memcpy(r->recorded + r->n_recorded, buf->base, (size_t)n);
        r->n_recorded += (size_t)n;
    }
    r->passed[from] += (size_t)n;
    uv_write_t *w = malloc(sizeof *w);
    w->data = buf->base;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)len);
    uv_write(w, r->side[1 - from], &b, 1, relay_write_done);
}

/* ---- the cases ----------------------------------------------------------- */

static void make_tls(struct rg_tls *t, const char *secret)
{
    struct rg_tls_config c = {.mode = RG_TLS_PSK};
    rg_tls_psk((const uint8_t *)secret, strlen(secret), c.psk);
    const char *err = NULL;
    CHECK(rg_tls_init(t, &c, &err) == 0);
}

static void test_psk_derivation(void)
{
    uint8_t a[RG_TLS_PSK_LEN], b[RG_TLS_PSK_LEN], c[RG_TLS_PSK_LEN];
    rg_tls_psk((const uint8_t *)"secret", 6, a);
    rg_tls_psk((const uint8_t *)"secret", 6, b);
    rg_tls_psk((const uint8_t *)"secreT", 6, c);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, "secret", 6) != 0);
}

/* Two pumps over a socketpair (or through a relay when r != NULL). */
static void connect_pumps(struct rg_tls *client, struct rg_tls *server,
                          struct pair *p, struct relay *r)
{
    int net[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) == 0);
    int server_fd = net[1];
    if (r != NULL) {
        int back[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, back) == 0);
        r->side[0] = pipe_of(net[1]);
        r->side[1] = pipe_of(back[0]);
        for (int i = 0; i < 2; i++) {
            r->side[i]->data = r;
            uv_read_start(r->side[i], alloc_cb, relay_read);
        }
        server_fd = back[1];
    }
    memset(p, 0, sizeof *p);
    CHECK(rg_tls_pump_start(server, &loop, pipe_of(server_fd), true, on_ready, &p->b) != NULL);
    CHECK(rg_tls_pump_start(client, &loop, pipe_of(net[0]), false, on_ready, &p->a) != NULL);
    CHECK(run_until(both_settled, p));
}

struct transfer {
    struct end *to;
    size_t want;
};

static bool received(void *arg)
{
    struct transfer *t = arg;
    return t->to->n_got >= t->want || t->to->eof;
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void send_bytes(struct end *from, const uint8_t *data, size_t len)
{
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    CHECK(uv_write(w, from->app, &b, 1, write_done) == 0);
}

static void test_round_trip(struct rg_tls *tls)
{
    struct pair p;
    connect_pumps(tls, tls, &p, NULL);
    CHECK(p.a.ready && p.b.ready);
    if (!p.a.ready || !p.b.ready) {
        return;
    }
    start_reading(&p.a);
    start_reading(&p.b);
    uint8_t *data = malloc(BIG);
    for (size_t i = 0; i < BIG; i++) {
        data[i] = (uint8_t)unit_rng();
    }
    send_bytes(&p.a, data, BIG);
    send_bytes(&p.b, data, BIG);
    struct transfer ta = {&p.b, BIG}, tb = {&p.a, BIG};
    CHECK(run_until(received, &ta));
    CHECK(run_until(received, &tb));
    CHECK(p.b.n_got == BIG && memcmp(p.b.got, data, BIG) == 0);
    CHECK(p.a.n_got == BIG && memcmp(p.a.got, data, BIG) == 0);
    /* One side closes: the other reads EOF. */
    close_end(&p.a);
    struct transfer eof = {&p.b, (size_t)-1};
    CHECK(run_until(received, &eof) && p.b.eof);
    close_end(&p.b);
    drain_loop();
    free(data);
}

static void test_wrong_psk(struct rg_tls *tls, struct rg_tls *other)
{
    struct pair p;
    connect_pumps(other, tls, &p, NULL);
    CHECK(p.a.failed && p.b.failed);
    CHECK(!p.a.ready && !p.b.ready);
    drain_loop();
}

/* Closes both app ends and the relay's two sides, and lets them go. */
static void close_relayed(struct pair *p, struct relay *r)
{
    close_end(&p->a);
    close_end(&p->b);
    uv_close((uv_handle_t *)r->side[0], free_handle);
    uv_close((uv_handle_t *)r->side[1], free_handle);
    drain_loop();
}

/* A relay that flips, drops or injects bytes after the handshake. */
static void test_tampered(struct rg_tls *tls, int how)
{
    struct relay r = {.flip_at = 0, .how = how};
    struct pair p;
    connect_pumps(tls, tls, &p, &r);
    CHECK(p.a.ready && p.b.ready);
    if (!p.a.ready || !p.b.ready) {
        return;
    }
    start_reading(&p.b);
    start_reading(&p.a);
    /* Past the handshake: flip a byte in the middle of the next records. */
    r.flip_at = r.passed[0] + 5000;
    uint8_t *data = malloc(20000);
    for (size_t i = 0; i < 20000; i++) {
        data[i] = (uint8_t)i;
    }
    send_bytes(&p.a, data, 20000);
    struct transfer t = {&p.b, (size_t)-1};
    CHECK(run_until(received, &t) && p.b.eof);
    CHECK(p.b.n_got < 20000);
    CHECK(p.b.n_got == 0 || memcmp(p.b.got, data, p.b.n_got) == 0);
    struct transfer ta = {&p.a, (size_t)-1};
    CHECK(run_until(received, &ta) && p.a.eof); /* the link ends both ways */
    close_relayed(&p, &r);
    free(data);
}

/* A client's recorded bytes of a whole session (handshake and data),
 * replayed to a fresh server: its random differs, so the recorded Finished
 * does not verify and the handshake fails; no plaintext comes out. */
static void test_replay(struct rg_tls *tls)
{
    struct relay r = {.record = true};
    struct pair p;
    connect_pumps(tls, tls, &p, &r);
    CHECK(p.a.ready && p.b.ready);
    if (!p.a.ready || !p.b.ready) {
        return;
    }
    start_reading(&p.b);
    static const uint8_t secret_msg[] = "append entries, term 7";
    send_bytes(&p.a, secret_msg, sizeof secret_msg);
    struct transfer t = {&p.b, sizeof secret_msg};
    CHECK(run_until(received, &t));
    close_relayed(&p, &r);
    CHECK(r.n_recorded > sizeof secret_msg);

    int net[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) == 0);
    struct end server = {0};
    CHECK(rg_tls_pump_start(tls, &loop, pipe_of(net[1]), true, on_ready, &server) != NULL);
    CHECK(write(net[0], r.recorded, r.n_recorded) == (ssize_t)r.n_recorded);
    for (int i = 0; i < 2000 && !server.ready && !server.failed; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(server.failed && !server.ready);
    close(net[0]);
    drain_loop();
    free(r.recorded);
}

static void test_cancel(struct rg_tls *tls)
{
    int net[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) == 0);
    struct end e = {0};
    struct rg_tls_pump *p = rg_tls_pump_start(tls, &loop, pipe_of(net[0]), true,
                                              on_ready, &e);
    CHECK(p != NULL);
    rg_tls_pump_cancel(p);
    drain_loop();
    CHECK(!e.ready && !e.failed);
    close(net[1]);
}

int main(void)
{
    unit_seed(7);
    uv_loop_init(&loop);
    struct rg_tls tls, other;
    make_tls(&tls, "cluster secret");
    make_tls(&other, "another secret");
    test_psk_derivation();
    test_round_trip(&tls);
    test_wrong_psk(&tls, &other);
    test_tampered(&tls, FLIP);
    test_tampered(&tls, DROP);
    test_tampered(&tls, INJECT);
    test_replay(&tls);
    test_cancel(&tls);
    rg_tls_free(&tls);
    rg_tls_free(&other);
    drain_loop();
    CHECK(uv_loop_close(&loop) == 0);
    UNIT_DONE("test_tls");
}
