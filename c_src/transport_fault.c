/* Fault injection for tests (BLOCK frames): a record of every connection
 * handed to raft_uv, and the cuts that refuse or shut down the links with
 * given peers (transport_int.h). */
#include "transport_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

bool rg_tr_is_blocked(const struct rg_transport *t, uint64_t peer, uint8_t dir)
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
void rg_tr_remember(struct rg_transport *t, uint64_t peer, bool inbound,
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
        if (rg_tr_is_blocked(t, c->peer, dir) && same_socket(c)) {
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
