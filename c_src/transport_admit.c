/* What an unauthenticated peer may hold: handshakes in flight (overall and
 * per source address, fewer at a low fd limit) and new connections per
 * second (overall and per source). Over a cap a connection is accepted and
 * closed at once (transport_int.h; docs/cluster.md, Security). */
#include "transport_int.h"

#include <string.h>
#include <sys/resource.h>

/* At most MAX_HANDSHAKES in flight, and fds for raft's own work are kept
 * free: a quarter of the fd limit beyond RESERVED_FDS. */
#define MAX_HANDSHAKES 64
#define RESERVED_FDS 128
#define HANDSHAKES_PER_ADDR 8
/* New connections per second (a TLS handshake costs the server an ECDHE):
 * from all sources, and from one source address. */
#define ACCEPTS_PER_SECOND 512
#define ACCEPTS_PER_ADDR_PER_SECOND 128

bool rg_tr_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
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
        if (rg_tr_same_host(&t->rate[i].from, from)) {
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
bool rg_tr_handshake_fits(struct rg_transport *t,
                           const struct sockaddr_storage *from)
{
    if (t->n_incoming >= t->max_incoming || !rate_fits(t, from)) {
        return false;
    }
    return rg_tr_handshakes_from(t, from) < HANDSHAKES_PER_ADDR;
}

/* MAX_HANDSHAKES, fewer when the fd limit is low (at least 4). */
unsigned rg_tr_handshake_cap(void)
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
