/* What the files of the raft transport share (transport.h is the outside
 * view). In the order a connection meets them:
 *   transport.c          the interface raft_uv calls, the listener, close,
 *                        and the list of handshakes and connects in flight
 *   transport_admit.c    the caps on unauthenticated peers (in flight, per
 *                        source, per second)
 *   transport_accept.c   an accepted connection: TLS, then the id handshake
 *   transport_connect.c  a connection we open: TLS, then the id handshake
 *   transport_fault.c    fault injection (BLOCK) and the record of the
 *                        connections raft_uv holds
 * TLS itself is tls.c; the id handshake's messages are handshake.c. */
#ifndef RG_TRANSPORT_INT_H
#define RG_TRANSPORT_INT_H

#include "transport.h"

/* Handshakes and connects in flight, so close() can cancel them. An
 * `incoming' or `outgoing' starts with one: a pending* is one of them. */
enum { PENDING_IN, PENDING_OUT };
struct pending {
    struct pending *prev, *next;
    int kind;
};

/* transport.c */
bool rg_tr_tls_on(const struct rg_transport *t);
void rg_tr_pending_link(struct rg_transport *t, struct pending *p, int kind);
void rg_tr_pending_unlink(struct rg_transport *t, struct pending *p);
void rg_tr_maybe_closed(struct rg_transport *t);
void rg_tr_free_tcp(uv_handle_t *h);
void rg_tr_nonce(uint8_t out[RG_HS_NONCE]);

/* transport_admit.c */
bool rg_tr_handshake_fits(struct rg_transport *t, const struct sockaddr_storage *from);
bool rg_tr_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
unsigned rg_tr_handshake_cap(void);

/* transport_accept.c */
void rg_tr_on_connection(uv_stream_t *server, int status);
void rg_tr_incoming_cancel(struct pending *p);
/* Accepted connections from from's host still in their handshake. */
unsigned rg_tr_handshakes_from(const struct rg_transport *t,
                               const struct sockaddr_storage *from);

/* transport_connect.c */
int rg_tr_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req,
                  raft_id id, const char *address, raft_uv_connect_cb cb);
void rg_tr_outgoing_cancel(struct pending *p);

/* transport_fault.c */
bool rg_tr_is_blocked(const struct rg_transport *t, uint64_t peer, uint8_t dir);
void rg_tr_remember(struct rg_transport *t, uint64_t peer, bool inbound, uv_stream_t *s);

#endif
