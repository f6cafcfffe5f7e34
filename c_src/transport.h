/* regent's raft transport: a raft_uv_transport over TCP.
 *
 * Why not raft_uv_tcp: it authenticates nothing and trusts the lengths a
 * peer sends. This one binds to a configured host and the first free port of
 * a range (reporting which), sets TCP_NODELAY on every connection, and runs a
 * fixed-size handshake before handing a stream to raft_uv:
 *
 *   [u64 magic "REGENT\0\1"][u64 raft id][u16 address length <= 255][address]
 *
 * A connection that sends anything else, or stalls, is closed without
 * allocating what it claims. The mutual HMAC challenge-response of the
 * clustering work plugs into the same handshake step. */
#ifndef RG_TRANSPORT_H
#define RG_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define RG_HANDSHAKE_MAGIC 0x524547454E540001ULL
#define RG_HANDSHAKE_FIXED 18u
#define RG_ADDRESS_MAX 255u

struct pending;

struct rg_transport {
    struct raft_uv_transport iface; /* handed to raft_uv_init; impl = this */
    uv_loop_t *loop;
    uv_tcp_t listener;
    char host[64];
    uint16_t port; /* bound port */
    raft_id id;
    raft_uv_accept_cb accept_cb; /* NULL until raft_uv listens */
    unsigned live;               /* listener + handshakes + connects */
    struct pending *pending;     /* handshakes and connects in flight */
    bool closing;
    raft_uv_transport_close_cb close_cb;
    uint64_t rejected; /* connections dropped at the handshake */
};

/* Binds host:[lo..hi] (0..0: any free port) and starts accepting. */
int rg_transport_init(struct rg_transport *t, uv_loop_t *loop,
                      const char *host, uint16_t lo, uint16_t hi);

/* Parses a "handshake" (exposed for tests and the fuzzer): returns -1 if
 * the fixed part is bad, else the address length still to read. */
int rg_handshake_fixed(const uint8_t *p, raft_id *id);

#endif
