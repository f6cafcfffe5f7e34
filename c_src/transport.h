/* regent's raft transport: a raft_uv_transport over TCP.
 *
 * Why not raft_uv_tcp: it authenticates nothing and trusts the lengths a
 * peer sends. This one binds to a configured host and the first free port of
 * a range (reporting which), sets TCP_NODELAY on every connection, and hands
 * a stream to raft_uv only after the mutual HMAC handshake of handshake.h.
 * A connection that sends anything else, sends it wrong, or stalls for 5 s
 * is closed without allocating what it claims. */
#ifndef RG_TRANSPORT_H
#define RG_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "handshake.h"
#include "tls.h"

struct pending;

/* A connection handed to raft_uv, remembered so a test can cut it. */
struct rg_conn {
    uint64_t peer;
    bool inbound; /* accepted (carries what the peer sends us) */
    int fd;
    dev_t dev; /* to recognise the same socket (fstat) */
    ino_t ino;
};

#define RG_BLOCK_MAX 64
#define RG_RATE_SOURCES 64 /* source addresses a second's rate keeps apart */

/* Directions of a cut (fault injection): IN drops what the peer sends us
 * (its connections to us), OUT what we send it (our connections to it).
 * raft_uv sends on its own outbound streams only, so one direction can be
 * cut while the other still delivers. */
enum { RG_BLOCK_IN = 1, RG_BLOCK_OUT = 2 };

struct rg_block {
    uint64_t peer;
    uint8_t dirs; /* RG_BLOCK_IN | RG_BLOCK_OUT */
};

struct rg_transport {
    struct raft_uv_transport iface; /* handed to raft_uv_init; impl = this */
    uv_loop_t *loop;
    uv_tcp_t listener;
    char host[64];
    uint16_t port; /* bound port */
    char address[RG_ADDRESS_MAX + 1]; /* host:port, our identity */
    raft_id id;
    uint8_t secret[RG_SECRET_MAX];
    size_t secret_len;
    raft_uv_accept_cb accept_cb; /* NULL until raft_uv listens */
    unsigned live;               /* listener + handshakes + connects */
    struct pending *pending;     /* handshakes and connects in flight */
    bool closing;
    raft_uv_transport_close_cb close_cb;
    uint64_t rejected; /* connections dropped at the handshake */
    /* Unauthenticated peers hold at most this many handshakes, and one
     * source address at most RG_HANDSHAKES_PER_ADDR of them: a flood of
     * idle connections cannot take the fds raft needs (transport.c). */
    unsigned n_incoming, max_incoming;
    /* TLS on every connection (tls.h), or NULL / RG_TLS_OFF for plain TCP;
     * not owned (the node keeps it). */
    struct rg_tls *tls;
    uint64_t shed; /* connections closed at once because of those caps */
    /* New connections in the current second, overall and per source. */
    uint64_t rate_window_ms;
    unsigned rate_total, rate_n;
    struct {
        struct sockaddr_storage from;
        unsigned count;
    } rate[RG_RATE_SOURCES];
    /* Fault injection (tests): peers whose traffic is cut. */
    struct rg_block blocked[RG_BLOCK_MAX];
    unsigned n_blocked;
    struct rg_conn *conns; /* owned */
    unsigned n_conns, cap_conns;
};

/* Binds host:[lo..hi] (0..0: any free port) and starts accepting. */
int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *host, uint16_t lo, uint16_t hi);
/* The shared secret; must be set before raft starts (at most
 * RG_SECRET_MAX bytes, at least one). */
int rg_transport_set_secret(struct rg_transport *t, const uint8_t *secret,
                            size_t len);

/* Fault injection for tests (the BLOCK frame): from now on, refuse
 * handshakes with these peers in the given directions and cut the
 * connections raft_uv holds with them in those directions (shutdown(2):
 * raft_uv then sees a dead link through its own paths). Replaces the
 * previous set; n = 0 heals. */
void rg_transport_block(struct rg_transport *t, const struct rg_block *blocks,
                        unsigned n);
/* Frees what the transport owns after it has closed. */
void rg_transport_free(struct rg_transport *t);

#endif
