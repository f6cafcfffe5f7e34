/* TLS 1.3 for the raft port: contexts and the per-connection pump.
 *
 * raft_uv reads and writes a plain uv_stream_t, and this kernel has no
 * kTLS, so a TLS socket cannot be handed to it. Instead each connection
 * gets a pump: raft_uv (and, before it, the id handshake of handshake.h)
 * gets one end of a socketpair, and the pump moves bytes between the other
 * end and SSL_read/SSL_write on the network stream. The TLS record layer
 * gives framing, integrity, confidentiality and replay protection; nothing
 * here is cryptography of our own.
 *
 * Authentication, mutual in both modes:
 * - RG_TLS_PSK: an external pre-shared key (TLS 1.3, psk_dhe_ke) derived
 *   from the cluster secret, so a zero-configuration cluster is protected;
 * - RG_TLS_CERT: certificates, with the peer verified against a CA file
 *   (the same files as a TLS distribution set-up).
 *
 * Lifetimes: the pump owns the network stream from rg_tls_pump_start on
 * and frees it; on success the app end (a uv_pipe_t from raft_malloc) is
 * handed to ready_cb and belongs to the caller from then on (raft_uv frees
 * it with raft_free). The pump frees itself once both of its handles have
 * closed: when either side ends, errs, or sends bytes that do not
 * authenticate. */
#ifndef RG_TLS_H
#define RG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum rg_tls_mode { RG_TLS_OFF = 0, RG_TLS_PSK = 1, RG_TLS_CERT = 2 };

#define RG_TLS_PSK_LEN 32

struct rg_tls_config {
    enum rg_tls_mode mode;
    uint8_t psk[RG_TLS_PSK_LEN]; /* RG_TLS_PSK: see rg_tls_psk */
    const char *certfile;        /* RG_TLS_CERT: PEM chain, key, CA */
    const char *keyfile;
    const char *cafile;
    bool verify; /* RG_TLS_CERT: refuse a peer whose certificate fails */
};

struct ssl_ctx_st;
struct rg_tls {
    enum rg_tls_mode mode;
    struct ssl_ctx_st *client; /* owned */
    struct ssl_ctx_st *server; /* owned */
    uint8_t psk[RG_TLS_PSK_LEN];
    /* Called when a peer's bytes arrive, if set (the daemon opens its spin
     * window: node_spin.c). */
    void (*traffic)(void *arg);
    void *traffic_arg;
};

/* The PSK for a cluster secret: HMAC-SHA256(secret, "regent raft tls psk
 * v1"), so it is never the secret itself (which also keys the id
 * handshake). */
void rg_tls_psk(const uint8_t *secret, size_t len, uint8_t out[RG_TLS_PSK_LEN]);

/* 0, or -1 with *err set (a file that does not load, say). */
int rg_tls_init(struct rg_tls *t, const struct rg_tls_config *c, const char **err);
void rg_tls_free(struct rg_tls *t);

struct rg_tls_pump;
/* app: the caller's end of the pump, or NULL if the TLS handshake failed
 * (the pump is then going away by itself). */
typedef void (*rg_tls_ready_cb)(struct rg_tls_pump *p, uv_stream_t *app, void *data);

/* Starts the TLS handshake on net (connected; allocated with raft_malloc)
 * as client or server; NULL if it could not start (net is then closed). A
 * client's first flight is sent at once: if that fails, cb(NULL) runs
 * before this returns, and the pump returned is already going away (do not
 * cancel it). */
struct rg_tls_pump *rg_tls_pump_start(struct rg_tls *t, uv_loop_t *loop,
                                      uv_stream_t *net, bool server,
                                      rg_tls_ready_cb cb, void *data);
/* Gives up a pump whose handshake has not finished: ready_cb is not called. */
void rg_tls_pump_cancel(struct rg_tls_pump *p);

#endif
