/* regentd: the engine of one regent registry on one node.
 *
 * A port program: the Erlang member starts it, talks to it in {packet,4}
 * frames on stdin/stdout (docs/protocol.md) and closes stdin to stop it.
 * Nothing sensitive is taken from argv or the environment; configuration,
 * including the cluster secret, arrives in the START frame. */
#include <raft.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "datadir.h"
#include "node.h"

/* 0.17.1 is the first libraft that appends a no-op on election and never
 * commits an earlier term's entry by counting replicas (Raft, Figure 8). */
#if RAFT_VERSION_NUMBER < 1701
#error "libraft >= 0.17.1 is required (see docs/architecture.md)"
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("regentd (libraft %d.%d.%d, libuv %s)\n", RAFT_VERSION_MAJOR,
               RAFT_VERSION_MINOR, RAFT_VERSION_RELEASE, uv_version_string());
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--sweep") == 0) {
        /* A member's clean-up of data dirs no daemon holds (datadir.h). */
        return rg_datadir_sweep(argv[2], argv[3]) < 0 ? 1 : 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: regentd [--version | --sweep <base> <keep>]\n"
                        "regentd is started by the regent Erlang application "
                        "as a port program.\n");
        return 2;
    }
    /* As many fds as we may have: the transport keeps a share of them
     * free for raft's own work (transport_admit.c), and the default soft limit is
     * often far below the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uv_loop_t loop;
    struct rg_node node;
    uv_loop_init(&loop);
    if (rg_node_init(&node, &loop, 0, 1) != 0) {
        fprintf(stderr, "regentd: cannot initialise\n");
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = node.exit_code;
    rg_node_close(&node);
    uv_loop_close(&loop);
    return code;
}
