/* Starting raft from the START frame: the data dir's lock and id file, the
 * raft port (the old one if it can), libraft's tuning, bootstrap
 * (node_int.h; docs/architecture.md). */
#include "node_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "datadir.h"

/* Tuning (docs/architecture.md explains each): libraft's defaults give
 * multi-second failovers and stalls on big tables. */
#define ELECTION_TIMEOUT_MS 150 /* randomised by libraft to [T, 2T) */
#define HEARTBEAT_MS 50
#define MAX_INFLIGHT_ENTRIES 4096
#define INSTALL_SNAPSHOT_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 100
#define SEGMENT_SIZE (1u << 20)
#define ID_FILE "regent.id"
#define LOCK_WAIT_MS 5000 /* a previous daemon on the dir may still be exiting */
#define OLD_PORT_WAIT_MS 1000 /* see bind_old_port */

uint64_t rg_node_random_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
            abort(); /* no entropy means no safe id */
        }
    }
    return id;
}

/* The id file keeps "<id> <port>" so a restarted daemon resumes under the
 * same raft id and, if it can, the same address. */
static bool read_id_file(const char *dir, uint64_t *id, unsigned *port)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, ID_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    unsigned long long v = 0;
    int k = fscanf(f, "%llu %u", &v, port);
    fclose(f);
    *id = v;
    return k == 2 && v != 0 && *port <= 65535;
}

static int write_id_file(const char *dir, uint64_t id, unsigned port)
{
    char path[4200];
    char tmp[4210];
    snprintf(path, sizeof path, "%s/%s", dir, ID_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "%llu %u\n", (unsigned long long)id, port);
    if (fclose(f) != 0) {
        return -1;
    }
    return rename(tmp, path);
}

/* Removes the files of a data dir that has no id file: whatever raft state
 * is there belongs to a start that never completed. */
static int clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    int rv = 0;
    char path[4200];
    while ((e = readdir(d)) != NULL) {
        /* daemon.pid is the member's record of which daemon uses the
         * dir (it guards against two daemons on one dir): keep it. */
        if (e->d_name[0] == '.' || strcmp(e->d_name, "daemon.pid") == 0 ||
            strcmp(e->d_name, RG_LOCK_FILE) == 0) { /* ours, held */
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) {
            rv = -1;
        }
    }
    closedir(d);
    return rv;
}

static void tune(struct rg_node *n, const struct rg_start *s)
{
    raft_set_election_timeout(&n->raft, ELECTION_TIMEOUT_MS);
    raft_set_heartbeat_timeout(&n->raft, HEARTBEAT_MS);
    raft_set_pre_vote(&n->raft, true);
    raft_set_max_inflight_entries(&n->raft, MAX_INFLIGHT_ENTRIES);
    raft_set_snapshot_threshold(&n->raft, s->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, s->snapshot_trailing);
    raft_set_install_snapshot_timeout(&n->raft, INSTALL_SNAPSHOT_TIMEOUT_MS);
    /* raft_uv's "capacity" is the log space it has already reserved (open
     * and prepared segments), in KiB, as an unsigned short. With our 1 MiB
     * segments it reads 2048, under libraft's default threshold of 4096, so
     * every submission would fail with RAFT_NOSPACE; with 32 MiB segments it
     * wraps to 0. Our log lives on tmpfs, so the check is off
     * (docs/architecture.md, Findings). */
    raft_set_capacity_threshold(&n->raft, 0);
    raft_uv_set_connect_retry_delay(&n->io, CONNECT_RETRY_MS);
    raft_uv_set_segment_size(&n->io, SEGMENT_SIZE);
}

static int bootstrap_alone(struct rg_node *n)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = raft_configuration_add(&conf, n->id, n->address, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_bootstrap(&n->raft, &conf);
    }
    raft_configuration_close(&conf);
    return rv;
}

/* Our address is in the raft configuration, so a restarted daemon wants
 * its old port back; it may be held for a moment (another process that
 * bound it while we were down). If it stays taken we bind another one and
 * STARTED says which: the member sees the port change and, in a cluster,
 * joins again under a fresh id (a server the others cannot reach under its
 * configured address is cut off for good). */
static int bind_old_port(struct rg_node *n, const char *host, uint16_t port)
{
    int rv = UV_EADDRINUSE;
    for (unsigned waited = 0; waited <= OLD_PORT_WAIT_MS; waited += 50) {
        rv = rg_transport_init(&n->transport, n->loop, host, port, port);
        if (rv != UV_EADDRINUSE) {
            break;
        }
        uv_sleep(50);
    }
    if (rv != 0) {
        char detail[32];
        snprintf(detail, sizeof detail, "%u", (unsigned)port);
        rg_node_log("our raft port is taken; binding another", detail);
    }
    return rv;
}

/* TLS on every raft connection (tls.h): the PSK comes from the cluster
 * secret, certificates from the files START names. */
static int start_tls(struct rg_node *n, const struct rg_start *s, const char **err)
{
    struct rg_tls_config c = {.mode = (enum rg_tls_mode)s->tls,
                              .certfile = s->certfile,
                              .keyfile = s->keyfile,
                              .cafile = s->cafile,
                              .verify = s->verify};
    rg_tls_psk(s->secret, s->secret_len, c.psk);
    int rv = rg_tls_init(&n->tls, &c, err);
    OPENSSL_cleanse(c.psk, sizeof c.psk);
    n->tls.traffic = rg_node_spin_traffic;
    n->tls.traffic_arg = n;
    n->transport.tls = &n->tls;
    return rv;
}

static int start_raft(struct rg_node *n, const struct rg_start *s,
                      const char **err)
{
    unsigned old_port = 0;
    bool fresh_dir = false;
    /* Before anything in the dir is read or written: a previous daemon
     * still exiting gets a few seconds, and a dir that is gone (deleted
     * under us, or swept) is made again, empty. */
    n->lock_fd = rg_datadir_lock(s->dir, LOCK_WAIT_MS, &fresh_dir, err);
    if (n->lock_fd < 0) {
        return -1;
    }
    snprintf(n->dir, sizeof n->dir, "%s", s->dir);
    bool resumed = !fresh_dir && read_id_file(s->dir, &n->id, &old_port);
    if (!resumed) {
        n->id = s->id != 0 ? s->id : rg_node_random_id();
    }
    /* Prefer the port we had: our address is in the raft configuration. */
    int rv = UV_EADDRINUSE;
    bool any_port = s->port_lo == 0 && s->port_hi == 0;
    if (resumed && old_port != 0 &&
        (any_port || (old_port >= s->port_lo && old_port <= s->port_hi))) {
        rv = bind_old_port(n, s->bind_host, (uint16_t)old_port);
    }
    if (rv == UV_EADDRINUSE) { /* any other failure leaves a handle closing */
        rv = rg_transport_init(&n->transport, n->loop, s->bind_host, s->port_lo,
                               s->port_hi);
    }
    if (rv != 0) {
        *err = "cannot bind the raft port";
        return -1;
    }
    if (rg_transport_set_secret(&n->transport, s->secret, s->secret_len) != 0) {
        *err = "START: the cluster secret must be 1 to 1024 bytes";
        return -1;
    }
    if (start_tls(n, s, err) != 0) {
        return -1;
    }
    snprintf(n->address, sizeof n->address, "%s", n->transport.address);
    if (!resumed && clear_dir(s->dir) != 0) {
        *err = "cannot clear the data dir for a fresh start";
        return -1;
    }
    n->fsm.self = n->id;
    if (raft_uv_init(&n->io, n->loop, s->dir, &n->transport.iface) != 0) {
        *err = "raft_uv_init failed (data dir missing or unusable)";
        return -1;
    }
    if (raft_init(&n->raft, &n->io, &n->fsm_iface, n->id, n->address) != 0) {
        *err = "raft_init failed";
        return -1;
    }
    tune(n, s);
    rg_node_install_fixes(n);
    if (!resumed && s->bootstrap && bootstrap_alone(n) != 0) {
        *err = "raft_bootstrap failed";
        return -1;
    }
    /* Written last: a dir holds an id only once its raft state is usable,
     * so a daemon that died half-way through a fresh start is fresh again. */
    if (write_id_file(s->dir, n->id, n->transport.port) != 0) {
        *err = "cannot write the id file in the data dir";
        return -1;
    }
    if (raft_start(&n->raft) != 0) {
        *err = raft_errmsg(&n->raft);
        return -1;
    }
    n->started = true;
    rg_proto_started(&n->frame, n->id, n->transport.port, resumed);
    rg_node_send_frame(n);
    return 0;
}

/* A START that does not decode is answered with an ERROR and the daemon
 * keeps waiting for a good one; a START that decodes but cannot start raft
 * (bad data dir, no free port) ends the daemon after saying why. */
void rg_node_handle_start(struct rg_node *n, struct rg_rbuf *r, size_t len)
{
    struct rg_start s;
    const char *err = NULL;
    if (n->started || n->transport.live != 0) {
        rg_node_send_error(n, "START: already started");
        return;
    }
    char *strings = malloc(len + RG_START_STRINGS);
    if (strings == NULL) {
        rg_node_send_error(n, "out of memory");
        return;
    }
    if (!rg_proto_start(r, &s, strings, len + RG_START_STRINGS, &err)) {
        rg_node_send_error(n, err);
    } else if (start_raft(n, &s, &err) != 0) {
        rg_node_send_error(n, err);
        rg_node_log("start failed", err);
        rg_node_shutdown(n, 2);
    }
    free(strings);
}
