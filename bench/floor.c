/* The floors under regent's write path on this machine: what one hop
 * costs when nothing else is done. `make bench' (scenario 14) runs it.
 *
 *   floor pipe N     N round trips of one byte between two processes over
 *                    two pipes (a member and its regentd talk over a pipe)
 *   floor tcp N      N round trips of one byte between two processes over
 *                    loopback TCP with TCP_NODELAY (daemon to daemon, and
 *                    Erlang distribution)
 *   floor pool N     N hops to libuv's thread pool and back (raft_uv writes
 *                    its log there when the file system has no O_DIRECT,
 *                    as tmpfs has not)
 *   floor echo       echoes stdin to stdout until EOF: the other end of a
 *                    BEAM port round trip, measured from Erlang
 *
 * Prints the mean microseconds per round trip. One process at a time: the
 * numbers are floors, not loads. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int one_byte(int rfd, int wfd)
{
    char c = 0;
    return read(rfd, &c, 1) == 1 && write(wfd, &c, 1) == 1 ? 0 : -1;
}

static int ping(int wfd, int rfd)
{
    char c = 0;
    return write(wfd, &c, 1) == 1 && read(rfd, &c, 1) == 1 ? 0 : -1;
}

#define WARMUP 1000

/* WARMUP then N round trips from this process through fds to a child that
 * answers each byte on its own fds (timed: the N). Each side closes the
 * other's fds (distinct only for pipes), so that a side that fails ends
 * the other with EOF instead of leaving it blocked. */
static int round_trips(long n, int out, int in, int child_in, int child_out)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (out != child_out && out != child_in) {
            close(out);
            close(in);
        }
        for (long i = 0; i < n + WARMUP; i++)
            if (one_byte(child_in, child_out) != 0)
                _exit(1);
        _exit(0);
    }
    if (out != child_out && out != child_in) {
        close(child_in);
        close(child_out);
    }
    int ok = 0;
    for (long i = 0; i < WARMUP && ok == 0; i++)
        ok = ping(out, in);
    double t0 = now_us();
    for (long i = 0; i < n && ok == 0; i++)
        ok = ping(out, in);
    double t = now_us() - t0;
    close(out);
    close(in);
    int status;
    if (waitpid(pid, &status, 0) != pid || ok != 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    printf("%.2f\n", t / (double)n);
    return 0;
}

static int pipes(long n)
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return -1;
    return round_trips(n, to[1], from[0], to[0], from[1]);
}

static int nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int tcp(long n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, len) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, len) != 0)
        return -1;
    int sfd = accept(lfd, NULL, NULL);
    if (sfd < 0 || nodelay(cfd) != 0 || nodelay(sfd) != 0)
        return -1;
    close(lfd);
    return round_trips(n, cfd, cfd, sfd, sfd);
}

struct pool {
    uv_work_t req;
    long left, warmup;
    double t0, n;
};

static void pool_work(uv_work_t *req)
{
    (void)req;
}

/* The first WARMUP hops start the pool's threads; the clock starts after. */
static void pool_after(uv_work_t *req, int status)
{
    struct pool *p = req->data;
    if (status != 0)
        return;
    if (p->warmup > 0 && --p->warmup == 0)
        p->t0 = now_us();
    else if (p->warmup == 0 && --p->left == 0)
        return;
    uv_queue_work(uv_default_loop(), req, pool_work, pool_after);
}

static int pool(long n)
{
    struct pool p = {.left = n, .warmup = WARMUP, .n = (double)n};
    p.req.data = &p;
    if (uv_queue_work(uv_default_loop(), &p.req, pool_work, pool_after) != 0)
        return -1;
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    printf("%.2f\n", (now_us() - p.t0) / p.n);
    return uv_loop_close(uv_default_loop()) == 0 && p.left == 0 ? 0 : -1;
}

static int echo(void)
{
    char buf[65536];
    ssize_t got;
    while ((got = read(0, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(1, buf + off, (size_t)(got - off));
            if (w <= 0)
                return -1;
            off += w;
        }
    return got == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    int rc = -1;
    if (argc == 2 && strcmp(argv[1], "echo") == 0)
        rc = echo();
    else if (argc == 3 && n > 0 && strcmp(argv[1], "pipe") == 0)
        rc = pipes(n);
    else if (argc == 3 && n > 0 && strcmp(argv[1], "tcp") == 0)
        rc = tcp(n);
    else if (argc == 3 && n > 0 && strcmp(argv[1], "pool") == 0)
        rc = pool(n);
    else
        fprintf(stderr, "usage: floor pipe|tcp|pool N | floor echo\n");
    return rc == 0 ? 0 : 1;
}
