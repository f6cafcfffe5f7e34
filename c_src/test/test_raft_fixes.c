/* raft_fixes.c's corrections on hand-made messages and a fake raft_io:
 * the InstallSnapshot drop, the snapshot-write tracking, the re-anchoring
 * of an AppendEntries below a snapshot and the snapshot-load tracking with
 * its term correction. ASan and valgrind check that whatever a correction
 * drops is freed. Their scenarios under raft_fixture are in
 * test_raft_fixes_fixture.c; the simulation runs them all. */
#include <raft.h>
#include <string.h>

#include "raft_fixes.h"
#include "unit.h"

static struct raft_message install_message(void)
{
    struct raft_message m = {0};
    m.type = RAFT_INSTALL_SNAPSHOT;
    raft_configuration_init(&m.install_snapshot.conf);
    CHECK(raft_configuration_add(&m.install_snapshot.conf, 7, "127.0.0.1:9",
                                 RAFT_VOTER) == 0);
    m.install_snapshot.data.base = raft_malloc(64);
    m.install_snapshot.data.len = 64;
    return m;
}

static void test_drop_install_snapshot(void)
{
    struct raft_message m = install_message();
    CHECK(!rg_fix_drop_install_snapshot(false, &m)); /* no write: deliver */
    CHECK(rg_fix_drop_install_snapshot(true, &m));   /* freed here */
    struct raft_message append = {0};
    append.type = RAFT_APPEND_ENTRIES;
    CHECK(!rg_fix_drop_install_snapshot(true, &append));
    /* the one not dropped is still ours to free */
    struct raft_message kept = install_message();
    CHECK(!rg_fix_drop_install_snapshot(false, &kept));
    raft_configuration_close(&kept.install_snapshot.conf);
    raft_free(kept.install_snapshot.data.base);
}

/* An AppendEntries as raft_uv decodes one: n entries after prev, all in
 * one batch; entry prev+1+k has term terms[k]. */
static struct raft_message append_message(raft_index prev, raft_term prev_term,
                                          unsigned n, const raft_term terms[])
{
    struct raft_message m = {0};
    m.type = RAFT_APPEND_ENTRIES;
    m.append_entries.term = 3;
    m.append_entries.prev_log_index = prev;
    m.append_entries.prev_log_term = prev_term;
    m.append_entries.n_entries = n;
    if (n > 0) {
        uint8_t *batch = raft_malloc(n * 8);
        m.append_entries.entries = raft_malloc(n * sizeof(struct raft_entry));
        CHECK(batch != NULL && m.append_entries.entries != NULL);
        for (unsigned k = 0; k < n; k++) {
            struct raft_entry *e = &m.append_entries.entries[k];
            *e = (struct raft_entry){.term = terms[k], .type = RAFT_COMMAND,
                                     .buf = {batch + 8 * k, 8}, .batch = batch};
            memset(e->buf.base, (int)(prev + 1 + k), 8);
        }
    }
    return m;
}

static void free_append(struct raft_message *m)
{
    if (m->append_entries.n_entries > 0) {
        raft_free(m->append_entries.entries[0].batch);
        raft_free(m->append_entries.entries);
    }
}

static void test_append_below_snapshot(void)
{
    /* Snapshot at 10 (term 2); the log keeps 7..10 and goes on. */
    struct raft r;
    memset(&r, 0, sizeof r);
    r.trail.snapshot.index = 10;
    r.trail.snapshot.term = 2;
    r.trail.offset = 6;
    raft_term terms[12] = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}; /* 4..15 */

    struct raft_message hb = append_message(3, 1, 0, terms);
    CHECK(rg_fix_append_below_snapshot(&r, &hb)); /* heartbeat: re-anchored */
    CHECK(hb.append_entries.prev_log_index == 10 &&
          hb.append_entries.prev_log_term == 2 && hb.append_entries.n_entries == 0);

    struct raft_message old = append_message(3, 1, 5, terms); /* 4..8 */
    CHECK(rg_fix_append_below_snapshot(&r, &old)); /* all held: freed here */
    CHECK(old.append_entries.n_entries == 0 && old.append_entries.entries == NULL);
    CHECK(old.append_entries.prev_log_index == 10);

    struct raft_message upto = append_message(3, 1, 7, terms); /* 4..10 */
    CHECK(rg_fix_append_below_snapshot(&r, &upto));
    CHECK(upto.append_entries.n_entries == 0);

    struct raft_message span = append_message(3, 1, 12, terms); /* 4..15 */
    void *batch = span.append_entries.entries[0].batch;
    CHECK(rg_fix_append_below_snapshot(&r, &span));
    CHECK(span.append_entries.prev_log_index == 10 && span.append_entries.n_entries == 5);
    CHECK(span.append_entries.entries[0].batch == batch); /* freed as one */
    CHECK(span.append_entries.entries[0].term == 2 && /* entry 11 */
          ((uint8_t *)span.append_entries.entries[0].buf.base)[0] == 11);
    CHECK(span.append_entries.entries[4].term == 3);
    free_append(&span);

    /* Left to libraft: a term at the snapshot's index that cannot be, a
     * prevLogIndex libraft can check itself, no snapshot, other messages. */
    raft_term odd[12] = {1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3};
    struct raft_message bad = append_message(3, 1, 12, odd);
    CHECK(!rg_fix_append_below_snapshot(&r, &bad));
    CHECK(bad.append_entries.prev_log_index == 3 && bad.append_entries.n_entries == 12);
    free_append(&bad);
    struct raft_message in_log = append_message(7, 2, 4, terms + 4); /* 8..11 */
    CHECK(!rg_fix_append_below_snapshot(&r, &in_log));
    free_append(&in_log);
    struct raft_message at = append_message(10, 2, 0, terms);
    CHECK(!rg_fix_append_below_snapshot(&r, &at));
    r.trail.snapshot.index = 0;
    r.trail.offset = 0;
    struct raft_message none = append_message(3, 1, 0, terms);
    CHECK(!rg_fix_append_below_snapshot(&r, &none));
    struct raft_message install = install_message();
    r.trail.snapshot.index = 10;
    CHECK(!rg_fix_append_below_snapshot(&r, &install));
    raft_configuration_close(&install.install_snapshot.conf);
    raft_free(install.install_snapshot.data.base);
}

/* A fake raft_io snapshot_put: keeps the request, completes on demand. */
static struct raft_io_snapshot_put *put_req;
static int put_rv;

static int fake_put(struct raft_io *io, unsigned trailing,
                    struct raft_io_snapshot_put *req,
                    const struct raft_snapshot *snapshot,
                    raft_io_snapshot_put_cb cb)
{
    (void)io;
    (void)trailing;
    (void)snapshot;
    if (put_rv != 0) {
        return put_rv;
    }
    req->cb = cb;
    put_req = req;
    return 0;
}

static struct raft_io_snapshot_put *done_req;
static int done_status;
static bool writing_in_cb;
static bool *writing_flag;

static void libraft_put_cb(struct raft_io_snapshot_put *req, int status)
{
    done_req = req;
    done_status = status;
    writing_in_cb = *writing_flag;
}

static void test_tracked_snapshot_put(void)
{
    bool writing = false;
    struct raft_io_snapshot_put outer = {0};
    struct raft_snapshot snap = {0};
    writing_flag = &writing;

    put_rv = RAFT_IOERR; /* a put that fails to start: nothing in flight */
    CHECK(rg_tracked_snapshot_put(fake_put, &writing, NULL, 0, &outer, &snap,
                                  libraft_put_cb) == RAFT_IOERR);
    CHECK(!writing);

    put_rv = 0;
    CHECK(rg_tracked_snapshot_put(fake_put, &writing, NULL, 8, &outer, &snap,
                                  libraft_put_cb) == 0);
    CHECK(writing);
    CHECK(put_req != NULL && put_req != &outer); /* raft_io got our own */
    put_req->cb(put_req, RAFT_CANCELED);
    CHECK(done_req == &outer && done_status == RAFT_CANCELED);
    CHECK(!writing_in_cb); /* cleared before libraft's callback runs */
    CHECK(!writing);
}

/* A fake raft_io snapshot_get: keeps the request, completes on demand. */
static struct raft_io_snapshot_get *get_req;
static int get_rv;

static int fake_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                    raft_io_snapshot_get_cb cb)
{
    (void)io;
    if (get_rv != 0) {
        return get_rv;
    }
    req->cb = cb;
    get_req = req;
    return 0;
}

static struct rg_loaded_snapshot *loaded_flag;
static struct rg_loaded_snapshot seen_in_cb;
static struct raft_io_snapshot_get *got_req;

static void libraft_get_cb(struct raft_io_snapshot_get *req,
                           struct raft_snapshot *snapshot, int status)
{
    (void)snapshot;
    (void)status;
    got_req = req;
    seen_in_cb = *loaded_flag;
}

static void test_snapshot_term(void)
{
    struct rg_loaded_snapshot loaded_now = {0};
    struct raft_io_snapshot_get outer = {0};
    struct raft_snapshot snap = {.index = 23, .term = 3};
    loaded_flag = &loaded_now;

    get_rv = RAFT_IOERR; /* a load that fails to start */
    CHECK(rg_tracked_snapshot_get(fake_get, &loaded_now, NULL, &outer,
                                  libraft_get_cb) == RAFT_IOERR);
    get_rv = 0;
    CHECK(rg_tracked_snapshot_get(fake_get, &loaded_now, NULL, &outer,
                                  libraft_get_cb) == 0);
    CHECK(get_req != NULL && get_req != &outer && !loaded_now.in_callback);
    get_req->cb(get_req, &snap, 0);
    CHECK(got_req == &outer); /* libraft got its own request back */
    CHECK(seen_in_cb.in_callback && seen_in_cb.index == 23 && seen_in_cb.term == 3);
    CHECK(!loaded_now.in_callback); /* only while libraft's callback runs */

    /* A failed load leaves nothing to correct with. */
    CHECK(rg_tracked_snapshot_get(fake_get, &loaded_now, NULL, &outer,
                                  libraft_get_cb) == 0);
    get_req->cb(get_req, NULL, RAFT_IOERR);
    CHECK(!seen_in_cb.in_callback);

    struct raft_message m = install_message();
    m.install_snapshot.last_index = 23;
    m.install_snapshot.last_term = 2; /* the term of the snapshot chosen */
    struct rg_loaded_snapshot at = {.in_callback = false, .index = 23, .term = 3};
    struct raft_message fixed, again;
    CHECK(rg_fix_install_snapshot_term(&at, &m, &fixed) == &m); /* not from a load */
    at.in_callback = true;
    CHECK(rg_fix_install_snapshot_term(&at, &m, &fixed) == &fixed);
    CHECK(fixed.install_snapshot.last_term == 3);
    CHECK(fixed.install_snapshot.last_index == 23 &&
          fixed.install_snapshot.data.base == m.install_snapshot.data.base);
    CHECK(m.install_snapshot.last_term == 2); /* libraft's own left alone */
    CHECK(rg_fix_install_snapshot_term(&at, &fixed, &again) == &fixed); /* already right */
    m.install_snapshot.last_index = 22;
    CHECK(rg_fix_install_snapshot_term(&at, &m, &fixed) == &m); /* another snapshot */
    struct raft_message append = {0};
    append.type = RAFT_APPEND_ENTRIES;
    CHECK(rg_fix_install_snapshot_term(&at, &append, &fixed) == &append);
    raft_configuration_close(&m.install_snapshot.conf);
    raft_free(m.install_snapshot.data.base);
}

int main(void)
{
    test_drop_install_snapshot();
    test_tracked_snapshot_put();
    test_append_below_snapshot();
    test_snapshot_term();
    UNIT_DONE("test_raft_fixes");
}
