/* raft_fixes.c under libraft's raft_fixture: each correction's scenario,
 * run with the correction in front of every server's raft_io (as node.c
 * installs them), which must pass, and without, which shows what libraft
 * does on its own (printed, not checked: a libraft that fixes the bug would
 * pass it too).
 *
 * 1. The pending-change index: a follower catches up after a partition
 * with one AppendEntries that holds commands, a configuration change and
 * more commands; then it takes the leadership and must be able to change
 * the configuration.
 *
 * 3. The AppendEntries below a follower's snapshot: a follower whose
 * acknowledgements are lost (a one-way cut) applies entries and snapshots
 * past the leader's snapshot; once its acknowledgements flow again it must
 * catch up without any new write.
 *
 * 4. The term of a snapshot sent from a newer snapshot than chosen: a
 * lagging follower comes back while its new leader writes its first
 * snapshot of the new term; it must install it under its real term and
 * catch up. Without the correction libraft crashes, so that run is in a
 * child process. */
#include <fcntl.h>
#include <raft.h>
#include <raft/fixture.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raft_fixes.h"
#include "unit.h"

#define N_SERVERS 4 /* 3 voters and the standby whose role changes */
#define STANDBY 3
#define MAX_MS 10000

typedef int (*append_fn)(struct raft_io *io, struct raft_io_append *req,
                         const struct raft_entry entries[], unsigned n,
                         raft_io_append_cb cb);
typedef int (*start_fn)(struct raft_io *io, unsigned msecs,
                        raft_io_tick_cb tick, raft_io_recv_cb recv);
typedef int (*send_fn)(struct raft_io *io, struct raft_io_send *req,
                       const struct raft_message *msg, raft_io_send_cb cb);

/* Test-only state: the fixture's io vtables have no room for ours. */
static struct raft_fixture fx;
static append_fn fixture_append[N_SERVERS];
static start_fn fixture_start[N_SERVERS];
static raft_io_recv_cb libraft_recv[N_SERVERS];
static send_fn fixture_send[N_SERVERS];
static rg_snapshot_get_fn fixture_get[N_SERVERS];
static struct rg_loaded_snapshot loaded[N_SERVERS];
static bool fix_on;
static unsigned fixes;
static unsigned reanchors;
static unsigned terms_fixed;

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    (void)fsm;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].base = raft_malloc(1);
    (*bufs)[0].len = 1;
    *n = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static struct raft_fsm fsms[N_SERVERS];

static unsigned server_of(struct raft_io *io)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (raft_fixture_get(&fx, i)->io == io) {
            return i;
        }
    }
    abort();
}

static int wrapped_append(struct raft_io *io, struct raft_io_append *req,
                          const struct raft_entry entries[], unsigned n,
                          raft_io_append_cb cb)
{
    if (fix_on && rg_fix_uncommitted_config(io->data, entries, n)) {
        fixes++;
    }
    return fixture_append[server_of(io)](io, req, entries, n, cb);
}

static void wrapped_recv(struct raft_io *io, struct raft_message *msg)
{
    if (fix_on && rg_fix_append_below_snapshot(io->data, msg)) {
        reanchors++;
    }
    libraft_recv[server_of(io)](io, msg);
}

static int wrapped_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                       raft_io_snapshot_get_cb cb)
{
    unsigned i = server_of(io);
    return rg_tracked_snapshot_get(fixture_get[i], &loaded[i], io, req, cb);
}

static int wrapped_send(struct raft_io *io, struct raft_io_send *req,
                        const struct raft_message *msg, raft_io_send_cb cb)
{
    unsigned i = server_of(io);
    struct raft_message fixed;
    const struct raft_message *out = msg;
    if (fix_on) {
        out = rg_fix_install_snapshot_term(&loaded[i], msg, &fixed);
        terms_fixed += out != msg;
    }
    return fixture_send[i](io, req, out, cb);
}

static int wrapped_start(struct raft_io *io, unsigned msecs,
                         raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    unsigned i = server_of(io);
    libraft_recv[i] = recv;
    return fixture_start[i](io, msecs, tick, wrapped_recv);
}

struct done {
    bool fired;
    int status;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

static void change_cb(struct raft_change *req, int status)
{
    struct done *d = req->data;
    d->fired = true;
    d->status = status;
}

static void transfer_cb(struct raft_transfer *req)
{
    (void)req;
}

static void submit_command(struct raft *leader)
{
    struct raft_apply *req = malloc(sizeof *req);
    struct raft_buffer buf = {.base = raft_malloc(8), .len = 8};
    CHECK(req != NULL && buf.base != NULL);
    memset(buf.base, 0xAB, 8);
    int rv = raft_apply(leader, req, &buf, 1, apply_cb);
    CHECK(rv == 0);
}

struct until {
    unsigned i;
    raft_index index;
};

static bool committed_on(struct raft_fixture *f, void *arg)
{
    struct until *u = arg;
    return raft_commit_index(raft_fixture_get(f, u->i)) >= u->index;
}

static bool applied_on(struct raft_fixture *f, void *arg)
{
    struct until *u = arg;
    return raft_last_applied(raft_fixture_get(f, u->i)) >= u->index;
}

static bool leads(struct raft_fixture *f, void *arg)
{
    return raft_state(raft_fixture_get(f, *(unsigned *)arg)) == RAFT_LEADER;
}

static bool done_fired(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct done *)arg)->fired;
}

struct outcome {
    raft_index change_index;      /* where the change entry went */
    raft_index uncommitted_index; /* the caught-up follower's, after apply */
    raft_index committed_index;
    int assign_rv;     /* its raft_assign once it leads */
    int assign_status; /* and the change's outcome */
};

/* A fresh cluster of 3 voters and a standby, with or without the
 * corrections; returns the index of the elected leader. */
static unsigned start_cluster(bool with_fix)
{
    struct raft_configuration conf;
    fix_on = with_fix;
    memset(&fx, 0, sizeof fx);
    CHECK(raft_fixture_init(&fx) == 0);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        fsms[i] = (struct raft_fsm){.version = 1,
                                    .apply = fsm_apply,
                                    .snapshot = fsm_snapshot,
                                    .restore = fsm_restore};
        CHECK(raft_fixture_grow(&fx, &fsms[i]) == 0);
        struct raft *r = raft_fixture_get(&fx, i);
        r->tracer = NULL; /* the fixture's prints every diagnostic */
        raft_set_snapshot_threshold(r, 1000000); /* keep every entry */
        raft_set_pre_vote(r, true); /* as regentd: a server back from a cut
                                     * does not disrupt the leader */
        fixture_append[i] = r->io->append;
        r->io->append = wrapped_append;
        fixture_start[i] = r->io->start;
        r->io->start = wrapped_start;
        fixture_send[i] = r->io->send;
        r->io->send = wrapped_send;
        fixture_get[i] = r->io->snapshot_get;
        r->io->snapshot_get = wrapped_get;
    }
    CHECK(raft_fixture_configuration(&fx, N_SERVERS - 1, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&fx, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&fx) == 0);
    CHECK(raft_fixture_step_until_has_leader(&fx, MAX_MS));
    return raft_fixture_leader_index(&fx);
}

/* The k'th voter after voter i (k = 1 or 2). */
static unsigned voter_after(unsigned i, unsigned k)
{
    return (i + k) % (N_SERVERS - 1);
}

static void isolate(unsigned i, bool cut)
{
    for (unsigned j = 0; j < N_SERVERS; j++) {
        if (j != i) {
            if (cut) {
                raft_fixture_disconnect(&fx, i, j);
                raft_fixture_disconnect(&fx, j, i);
            } else {
                raft_fixture_reconnect(&fx, i, j);
                raft_fixture_reconnect(&fx, j, i);
            }
        }
    }
}

static void pending_change_scenario(bool with_fix, struct outcome *o)
{
    unsigned l = start_cluster(with_fix);
    unsigned f = voter_after(l, 1);
    struct raft *leader = raft_fixture_get(&fx, l);
    struct raft *follower = raft_fixture_get(&fx, f);
    raft_id standby_id = raft_fixture_get(&fx, STANDBY)->id;

    /* While f is cut off: commands, a change, commands. */
    isolate(f, true);
    for (int k = 0; k < 5; k++) {
        submit_command(leader);
    }
    struct raft_change change = {0};
    struct done changed = {0};
    change.data = &changed;
    CHECK(raft_assign(leader, &change, standby_id, RAFT_SPARE, change_cb) == 0);
    o->change_index = raft_last_index(leader);
    for (int k = 0; k < 3; k++) {
        submit_command(leader);
    }
    struct until u = {l, raft_last_index(leader)};
    CHECK(raft_fixture_step_until(&fx, committed_on, &u, MAX_MS));
    CHECK(changed.fired && changed.status == 0);

    /* f catches up, then leads. */
    isolate(f, false);
    u.i = f;
    CHECK(raft_fixture_step_until(&fx, applied_on, &u, MAX_MS));
    o->uncommitted_index = follower->configuration_uncommitted_index;
    o->committed_index = follower->configuration_committed_index;
    struct raft_transfer transfer = {0};
    CHECK(raft_transfer(leader, &transfer, follower->id, transfer_cb) == 0);
    CHECK(raft_fixture_step_until(&fx, leads, &f, MAX_MS));

    /* As leader it must be able to change the configuration. */
    struct raft_change again = {0};
    struct done again_done = {0};
    again.data = &again_done;
    o->assign_rv = raft_assign(follower, &again, standby_id, RAFT_STANDBY, change_cb);
    o->assign_status = -1;
    if (o->assign_rv == 0 &&
        raft_fixture_step_until(&fx, done_fired, &again_done, MAX_MS)) {
        o->assign_status = again_done.status;
    }
    raft_fixture_close(&fx);
}

/* ---- AppendEntries below the follower's snapshot --------------------- */

struct below_outcome {
    raft_index leader_snapshot, follower_snapshot; /* when acks flow again */
    raft_index leader_last;
    raft_index follower_applied; /* MAX_MS later, with no new write */
};

/* Submits k commands and steps until server i has applied them. */
static void write_and_apply(struct raft *leader, unsigned i, int k)
{
    for (int j = 0; j < k; j++) {
        submit_command(leader);
    }
    struct until u = {i, raft_last_index(leader)};
    CHECK(raft_fixture_step_until(&fx, applied_on, &u, MAX_MS));
}

static void below_snapshot_scenario(bool with_fix, struct below_outcome *o)
{
    unsigned l = start_cluster(with_fix);
    unsigned f = voter_after(l, 1);
    struct raft *leader = raft_fixture_get(&fx, l);
    struct raft *follower = raft_fixture_get(&fx, f);
    /* Both snapshot early (the follower every 8 entries); then only the
     * follower does. The leader pipelines as many entries as regentd lets
     * it. */
    raft_set_snapshot_threshold(leader, 16);
    raft_set_snapshot_trailing(leader, 4);
    raft_set_snapshot_threshold(follower, 8);
    raft_set_snapshot_trailing(follower, 4);
    raft_set_max_inflight_entries(leader, 4096);
    write_and_apply(leader, f, 20);
    raft_fixture_step_until_elapsed(&fx, 1000); /* snapshot writes done */
    raft_set_snapshot_threshold(leader, 1000000);

    /* The follower hears the leader and applies; the leader hears nothing
     * back from it (the third voter makes the quorum), and sends it no more
     * entries once it counts it offline. */
    raft_fixture_saturate(&fx, f, l);
    write_and_apply(leader, f, 48);
    /* One more write while cut off, then heal: the follower must catch up
     * with no further write. */
    submit_command(leader);
    o->leader_last = raft_last_index(leader);
    struct until committed = {l, o->leader_last};
    CHECK(raft_fixture_step_until(&fx, committed_on, &committed, MAX_MS));
    raft_fixture_step_until_elapsed(&fx, 2000); /* f now counts as offline */
    o->leader_snapshot = leader->trail.snapshot.index;
    o->follower_snapshot = follower->trail.snapshot.index;
    raft_fixture_desaturate(&fx, f, l);
    struct until u = {f, o->leader_last};
    raft_fixture_step_until(&fx, applied_on, &u, MAX_MS);
    o->follower_applied = raft_last_applied(follower);
    raft_fixture_close(&fx);
}

/* ---- InstallSnapshot sent from a newer snapshot than chosen ------------ */

struct term_outcome {
    raft_index old_index, new_index; /* the leader's snapshots */
    raft_term old_term, new_term;
    raft_index installed_index; /* the lagging follower's, once installed */
    raft_term installed_term;
    raft_index leader_last, follower_applied; /* MAX_MS after the install */
};

static bool snapshot_taking(struct raft_fixture *f, void *arg)
{
    return raft_fixture_get(f, *(unsigned *)arg)->legacy.snapshot_taking;
}

static bool snapshot_installed(struct raft_fixture *f, void *arg)
{
    return raft_fixture_get(f, *(unsigned *)arg)->trail.snapshot.index > 0;
}

static void term_scenario(bool with_fix, struct term_outcome *o)
{
    unsigned a = start_cluster(with_fix);
    unsigned b = voter_after(a, 1), c = voter_after(a, 2);
    struct raft *leader_b = raft_fixture_get(&fx, b);
    struct raft *lagging = raft_fixture_get(&fx, c);

    /* c falls behind; b snapshots in this term. */
    write_and_apply(raft_fixture_get(&fx, a), c, 2);
    isolate(c, true);
    raft_set_snapshot_threshold(leader_b, 8);
    raft_set_snapshot_trailing(leader_b, 2);
    write_and_apply(raft_fixture_get(&fx, a), b, 10);
    raft_fixture_step_until_elapsed(&fx, 500);
    o->old_index = leader_b->trail.snapshot.index;
    o->old_term = leader_b->trail.snapshot.term;

    /* b leads in a new term and starts its next snapshot, slowly. */
    raft_fixture_depose(&fx);
    raft_fixture_elect(&fx, b);
    raft_fixture_set_disk_latency(&fx, b, 400);
    for (int k = 0; k < 10; k++) {
        submit_command(leader_b);
    }
    CHECK(raft_fixture_step_until(&fx, snapshot_taking, &b, MAX_MS));
    raft_set_snapshot_threshold(leader_b, 1000000); /* the last one */

    /* c is back while that snapshot is written: b chooses the old snapshot
     * for it, but loads the new one by the time it sends. */
    isolate(c, false);
    CHECK(raft_fixture_step_until(&fx, snapshot_installed, &c, MAX_MS));
    o->new_index = leader_b->trail.snapshot.index;
    o->new_term = leader_b->trail.snapshot.term;
    o->installed_index = lagging->trail.snapshot.index;
    o->installed_term = lagging->trail.snapshot.term;
    raft_fixture_set_disk_latency(&fx, b, 10);
    submit_command(leader_b);
    o->leader_last = raft_last_index(leader_b);
    struct until u = {c, o->leader_last};
    raft_fixture_step_until(&fx, applied_on, &u, MAX_MS);
    o->follower_applied = raft_last_applied(lagging);
    raft_fixture_close(&fx);
}

/* 0: caught up, 1: did not, 2: crashed or reported an error. The
 * child's stderr goes nowhere: glibc's or a sanitizer's report of the crash
 * is the expected outcome, not this test's failure. */
static int without_in_child(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
        }
        struct term_outcome o = {0};
        term_scenario(false, &o);
        _exit(o.installed_term == o.new_term && o.follower_applied == o.leader_last ? 0 : 10);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 10 ? 1 : 2;
}

static void check_pending_change(void)
{
    struct outcome with = {0};
    struct outcome without = {0};
    fixes = 0;
    pending_change_scenario(true, &with);
    CHECK(fixes > 0); /* the scenario hits the bug's path */
    CHECK(with.uncommitted_index == 0);
    CHECK(with.committed_index == with.change_index);
    CHECK(with.assign_rv == 0);
    CHECK(with.assign_status == 0);

    pending_change_scenario(false, &without);
    printf("test_raft_fixes_fixture: libraft %d on its own: uncommitted "
           "configuration index %llu (change at %llu), raft_assign as leader "
           "-> %d (%s)\n",
           RAFT_VERSION_NUMBER, (unsigned long long)without.uncommitted_index,
           (unsigned long long)without.change_index, without.assign_rv,
           without.assign_rv == RAFT_CANTCHANGE ? "still has the bug"
                                                : "fixed upstream?");
}

static void check_below_snapshot(void)
{
    reanchors = 0;
    struct below_outcome below = {0};
    below_snapshot_scenario(true, &below);
    /* the scenario's precondition: the follower snapshotted past the leader */
    CHECK(below.leader_snapshot > 0);
    CHECK(below.follower_snapshot > below.leader_snapshot);
    CHECK(reanchors > 0);
    CHECK(below.follower_applied == below.leader_last);

    struct below_outcome without = {0};
    below_snapshot_scenario(false, &without);
    printf("test_raft_fixes_fixture: libraft %d on its own: a follower with "
           "snapshot %llu past the leader's %llu applied %llu of %llu in %d ms "
           "(%s)\n",
           RAFT_VERSION_NUMBER, (unsigned long long)without.follower_snapshot,
           (unsigned long long)without.leader_snapshot,
           (unsigned long long)without.follower_applied,
           (unsigned long long)without.leader_last, MAX_MS,
           without.follower_applied < without.leader_last ? "still has the bug"
                                                          : "fixed upstream?");
}

static void check_snapshot_term(void)
{
    terms_fixed = 0;
    struct term_outcome term = {0};
    term_scenario(true, &term);
    /* the precondition: an election between the two snapshots */
    CHECK(term.old_term < term.new_term && term.old_index < term.new_index);
    CHECK(terms_fixed > 0);
    CHECK(term.installed_index == term.new_index);
    CHECK(term.installed_term == term.new_term);
    CHECK(term.follower_applied == term.leader_last);

    int how = without_in_child();
    printf("test_raft_fixes_fixture: libraft %d on its own: a follower that "
           "installed a snapshot under the wrong term %s (%s)\n",
           RAFT_VERSION_NUMBER,
           how == 0 ? "caught up" : how == 1 ? "did not catch up"
                                              : "crashed (libraft's double free)",
           how == 0 ? "fixed upstream?" : "still has the bug");
}

int main(void)
{
    check_pending_change();
    check_below_snapshot();
    check_snapshot_term();
    UNIT_DONE("test_raft_fixes_fixture");
}
