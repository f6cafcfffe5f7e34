/* TLS 1.3 for the raft port; see tls.h.
 *
 * The pump's two sides: `net' (the peer, ciphertext) and `local' (our end
 * of a socketpair whose other end, `app', the caller reads and writes in
 * plain). OpenSSL runs over memory BIOs, so every byte goes through libuv:
 * net bytes are fed to the read BIO, SSL_read's plaintext is written to
 * local; local bytes go to SSL_write, and what lands in the write BIO is
 * written to net. Each side stops reading while the other's write queue is
 * over HIGH_WATER, so a slow peer or a slow raft_uv bounds what the pump
 * holds. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PSK_IDENTITY "regent-raft"
#define READ_CHUNK (64 * 1024)
#define RECORD_MAX (16 * 1024) /* TLS 1.3's largest plaintext record */
#define HIGH_WATER (4u << 20)
#define LOW_WATER (1u << 20)

enum pump_state { PUMP_HANDSHAKE, PUMP_RUNNING, PUMP_CLOSING };

struct rg_tls_pump {
    struct rg_tls *t;
    uv_loop_t *loop;
    uv_stream_t *net; /* owned from start; raft_malloc'd */
    uv_pipe_t local;
    bool local_open;
    SSL *ssl; /* owns its two BIOs */
    BIO *rbio, *wbio;
    rg_tls_ready_cb cb;
    void *data;
    enum pump_state state;
    bool cancelled;
    int handles; /* open handles of ours: net, local */
    bool local_paused, net_paused;
};

struct pump_write {
    uv_write_t req;
    struct rg_tls_pump *p;
    char *buf;
};

/* ---- contexts ----------------------------------------------------------- */

void rg_tls_psk(const uint8_t *secret, size_t len, uint8_t out[RG_TLS_PSK_LEN])
{
    static const char label[] = "regent raft tls psk v1";
    unsigned int n = RG_TLS_PSK_LEN;
    HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label,
         sizeof label - 1, out, &n);
}

static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key)
{
    static const unsigned char aes128gcm_sha256[] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    SSL_SESSION *s = cipher != NULL ? SSL_SESSION_new() : NULL;
    if (s == NULL || !SSL_SESSION_set1_master_key(s, key, RG_TLS_PSK_LEN) ||
        !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

static struct rg_tls *tls_of(SSL *ssl)
{
    return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* Client: offer the cluster's PSK. */
static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                   size_t *idlen, SSL_SESSION **sess)
{
    SSL_SESSION *s = psk_session(ssl, tls_of(ssl)->psk);
    if (s != NULL && md != NULL &&
        md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    *sess = s;
    *id = (const unsigned char *)PSK_IDENTITY;
    *idlen = sizeof PSK_IDENTITY - 1;
    return 1;
}

/* Server: the cluster's PSK for our identity, nothing for any other (the
 * handshake then fails: there is no certificate to fall back on). */
static int find_psk(SSL *ssl, const unsigned char *id, size_t idlen,
                    SSL_SESSION **sess)
{
    bool ours = idlen == sizeof PSK_IDENTITY - 1 &&
                memcmp(id, PSK_IDENTITY, idlen) == 0;
    *sess = ours ? psk_session(ssl, tls_of(ssl)->psk) : NULL;
    return 1;
}

static SSL_CTX *new_ctx(struct rg_tls *t, const struct rg_tls_config *c,
                        bool server, const char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        *err = "TLS: cannot create a context";
        return NULL;
    }
    SSL_CTX_set_app_data(ctx, t);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_num_tickets(ctx, 0); /* no resumption: every link is fresh */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (c->mode == RG_TLS_PSK) {
        /* The PSK's session names a SHA-256 suite: a server that chose a
         * SHA-384 one (OpenSSL's first choice) would ignore the PSK. */
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
        if (server) {
            SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
        } else {
            SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
        }
        return ctx;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->certfile) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->keyfile, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        *err = "TLS: cannot load the certificate or its key";
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (c->verify) {
        if (SSL_CTX_load_verify_locations(ctx, c->cafile, NULL) != 1) {
            *err = "TLS: cannot load the CA certificates";
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

int rg_tls_init(struct rg_tls *t, const struct rg_tls_config *c, const char **err)
{
    memset(t, 0, sizeof *t);
    t->mode = c->mode;
    if (c->mode == RG_TLS_OFF) {
        return 0;
    }
    memcpy(t->psk, c->psk, sizeof t->psk);
    t->client = new_ctx(t, c, false, err);
    t->server = t->client != NULL ? new_ctx(t, c, true, err) : NULL;
    if (t->server == NULL) {
        rg_tls_free(t);
        return -1;
    }
    return 0;
}

void rg_tls_free(struct rg_tls *t)
{
    SSL_CTX_free(t->client);
    SSL_CTX_free(t->server);
    t->client = t->server = NULL;
    OPENSSL_cleanse(t->psk, sizeof t->psk);
}

/* ---- closing ------------------------------------------------------------ */

static void free_handle(uv_handle_t *h)
{
    raft_free(h);
}

static void pump_release(struct rg_tls_pump *p)
{
    if (--p->handles == 0) {
        SSL_free(p->ssl);
        free(p);
    }
}

static void net_closed(uv_handle_t *h)
{
    struct rg_tls_pump *p = h->data;
    raft_free(h);
    pump_release(p);
}

static void local_closed(uv_handle_t *h)
{
    pump_release(h->data);
}

/* Ends the pump: both sides close (the app end then reads EOF). A pump
 * whose handshake failed tells its caller, unless it was cancelled. */
static void pump_close(struct rg_tls_pump *p)
{
    if (p->state == PUMP_CLOSING) {
        return;
    }
    bool failed_handshake = p->state == PUMP_HANDSHAKE && !p->cancelled;
    p->state = PUMP_CLOSING;
    uv_close((uv_handle_t *)p->net, net_closed);
    if (p->local_open) {
        uv_close((uv_handle_t *)&p->local, local_closed);
    }
    if (failed_handshake) {
        p->cb(p, NULL, p->data);
    }
}

void rg_tls_pump_cancel(struct rg_tls_pump *p)
{
    p->cancelled = true;
    pump_close(p);
}

/* ---- writing ------------------------------------------------------------ */

static void alloc_chunk(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base != NULL ? READ_CHUNK : 0;
}

static void local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void net_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* A side's queue has drained below LOW_WATER: the other side reads again. */
static void resume_reading(struct rg_tls_pump *p)
{
    if (p->state != PUMP_RUNNING) {
        return;
    }
    if (p->local_paused && p->net->write_queue_size < LOW_WATER) {
        p->local_paused = false;
        uv_read_start((uv_stream_t *)&p->local, alloc_chunk, local_read);
    }
    if (p->net_paused && p->local.write_queue_size < LOW_WATER) {
        p->net_paused = false;
        uv_read_start(p->net, alloc_chunk, net_read);
    }
}

static void written(uv_write_t *req, int status)
{
    struct pump_write *w = (struct pump_write *)req;
    struct rg_tls_pump *p = w->p;
    free(w->buf);
    free(w);
    if (status != 0) {
        pump_close(p);
        return;
    }
    resume_reading(p);
}

/* Takes buf (malloc'd). */
static int write_to(struct rg_tls_pump *p, uv_stream_t *s, char *buf, size_t len)
{
    struct pump_write *w = malloc(sizeof *w);
    if (w == NULL) {
        free(buf);
        return -1;
    }
    w->p = p;
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&w->req, s, &b, 1, written) != 0) {
        free(buf);
        free(w);
        return -1;
    }
    return 0;
}

/* Whatever TLS produced goes to the peer. */
static int flush_to_net(struct rg_tls_pump *p)
{
    size_t n;
    while ((n = BIO_ctrl_pending(p->wbio)) > 0) {
        char *buf = malloc(n);
        if (buf == NULL || BIO_read(p->wbio, buf, (int)n) != (int)n) {
            free(buf);
            return -1;
        }
        if (write_to(p, p->net, buf, n) != 0) {
            return -1;
        }
    }
    if (p->net->write_queue_size > HIGH_WATER && !p->local_paused &&
        p->state == PUMP_RUNNING) {
        p->local_paused = true;
        uv_read_stop((uv_stream_t *)&p->local);
    }
    return 0;
}

/* ---- running ------------------------------------------------------------ */

/* Plaintext for the app end, as long as there are whole records; a record
 * that does not authenticate (or any other TLS error) ends the pump. */
static void decrypt(struct rg_tls_pump *p)
{
    char record[RECORD_MAX]; /* SSL_read gives at most one record */
    for (;;) {
        ERR_clear_error(); /* SSL_get_error reads this thread's queue */
        int n = SSL_read(p->ssl, record, sizeof record);
        if (n > 0) {
            /* Exactly n bytes stay queued until written, not a chunk. */
            char *buf = malloc((size_t)n);
            if (buf == NULL) {
                pump_close(p);
                return;
            }
            memcpy(buf, record, (size_t)n);
            if (write_to(p, (uv_stream_t *)&p->local, buf, (size_t)n) != 0) {
                pump_close(p);
                return;
            }
            continue;
        }
        int e = SSL_get_error(p->ssl, n);
        if (flush_to_net(p) != 0 || e != SSL_ERROR_WANT_READ) {
            /* close_notify, a bad record, an alert: the errors it queued
             * must not make another link's next SSL_get_error fail. */
            ERR_clear_error();
            pump_close(p);
            return;
        }
        break;
    }
    if (p->local.write_queue_size > HIGH_WATER && !p->net_paused) {
        p->net_paused = true;
        uv_read_stop(p->net);
    }
}

static void local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rg_tls_pump *p = s->data;
    if (n > 0 && p->state == PUMP_RUNNING) {
        ERR_clear_error();
        if (SSL_write(p->ssl, buf->base, (int)n) != (int)n || flush_to_net(p) != 0) {
            ERR_clear_error();
            pump_close(p);
        }
    } else if (n < 0) {
        pump_close(p); /* the app end closed: so does the link */
    }
    free(buf->base);
}

/* ---- the handshake ------------------------------------------------------ */

static void established(struct rg_tls_pump *p)
{
    int fds[2];
    uv_pipe_t *app = raft_malloc(sizeof *app);
    if (app == NULL ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
        raft_free(app);
        pump_close(p);
        return;
    }
    uv_pipe_init(p->loop, &p->local, 0);
    p->local.data = p;
    p->local_open = true;
    p->handles++;
    uv_pipe_init(p->loop, app, 0);
    if (uv_pipe_open(&p->local, fds[0]) != 0) {
        close(fds[0]);
        close(fds[1]);
        uv_close((uv_handle_t *)app, free_handle);
        pump_close(p);
        return;
    }
    if (uv_pipe_open(app, fds[1]) != 0) {
        close(fds[1]);
        uv_close((uv_handle_t *)app, free_handle);
        pump_close(p);
        return;
    }
    p->state = PUMP_RUNNING;
    uv_read_start((uv_stream_t *)&p->local, alloc_chunk, local_read);
    p->cb(p, (uv_stream_t *)app, p->data);
    decrypt(p); /* records that came with the last handshake flight */
}

static void handshake_step(struct rg_tls_pump *p)
{
    ERR_clear_error();
    int r = SSL_do_handshake(p->ssl);
    if (flush_to_net(p) != 0) {
        pump_close(p);
    } else if (r == 1) {
        established(p);
    } else if (SSL_get_error(p->ssl, r) != SSL_ERROR_WANT_READ) {
        ERR_clear_error(); /* the queue is per thread: do not leave it to others */
        pump_close(p); /* a wrong key or certificate, or garbage */
    }
}

static void net_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rg_tls_pump *p = s->data;
    if (n < 0) {
        pump_close(p);
    } else if (n > 0 && p->state != PUMP_CLOSING) {
        if (p->t->traffic != NULL) {
            p->t->traffic(p->t->traffic_arg);
        }
        if (BIO_write(p->rbio, buf->base, (int)n) != (int)n) {
            pump_close(p);
        } else if (p->state == PUMP_HANDSHAKE) {
            handshake_step(p);
        } else {
            decrypt(p);
        }
    }
    free(buf->base);
}

struct rg_tls_pump *rg_tls_pump_start(struct rg_tls *t, uv_loop_t *loop,
                                      uv_stream_t *net, bool server,
                                      rg_tls_ready_cb cb, void *data)
{
    struct rg_tls_pump *p = calloc(1, sizeof *p);
    SSL *ssl = p != NULL ? SSL_new(server ? t->server : t->client) : NULL;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        free(p);
        uv_close((uv_handle_t *)net, free_handle);
        return NULL;
    }
    SSL_set_bio(ssl, rbio, wbio);
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    *p = (struct rg_tls_pump){.t = t, .loop = loop, .net = net, .ssl = ssl,
                              .rbio = rbio, .wbio = wbio, .cb = cb, .data = data,
                              .state = PUMP_HANDSHAKE, .handles = 1};
    net->data = p;
    if (uv_read_start(net, alloc_chunk, net_read) != 0) {
        p->cancelled = true;
        pump_close(p);
        return NULL;
    }
    if (!server) {
        handshake_step(p); /* the ClientHello */
    }
    return p;
}
