#include "raft_fixes.h"

#include <stdlib.h>
#include <string.h>

bool rg_fix_uncommitted_config(struct raft *r, const struct raft_entry entries[],
                               unsigned n)
{
    if (n < 2 || raft_state(r) != RAFT_FOLLOWER) {
        return false; /* a leader records the right index */
    }
    unsigned last = n;
    for (unsigned i = n; i-- > 0;) {
        if (entries[i].type == RAFT_CHANGE) {
            last = i;
            break;
        }
    }
    if (last == n || last == 0) {
        return false; /* no change entry, or it is the first: index right */
    }
    /* libraft appends the batch to its in-memory log before it hands it to
     * the disk, so the batch ends at the last index. */
    raft_index first = raft_last_index(r) - n + 1;
    if (r->configuration_uncommitted_index != first) {
        return false; /* not the bug's value: leave libraft's state alone */
    }
    r->configuration_uncommitted_index = first + last;
    return true;
}

bool rg_fix_drop_install_snapshot(bool snapshot_writing,
                                  struct raft_message *msg)
{
    if (!snapshot_writing || msg->type != RAFT_INSTALL_SNAPSHOT) {
        return false;
    }
    /* What libraft's own receive path frees when it discards one. */
    raft_configuration_close(&msg->install_snapshot.conf);
    raft_free(msg->install_snapshot.data.base);
    msg->install_snapshot.data.base = NULL;
    return true;
}

bool rg_fix_append_below_snapshot(const struct raft *r, struct raft_message *msg)
{
    if (msg->type != RAFT_APPEND_ENTRIES) {
        return false;
    }
    struct raft_append_entries *a = &msg->append_entries;
    raft_index snap = r->trail.snapshot.index;
    if (snap == 0 || a->prev_log_index >= snap ||
        a->prev_log_index > r->trail.offset) {
        return false; /* libraft can check prevLogIndex itself */
    }
    raft_index held = snap - a->prev_log_index; /* entries the snapshot has */
    if (held <= a->n_entries && a->entries[held - 1].term != r->trail.snapshot.term) {
        return false; /* cannot be: leave it to libraft's own checks */
    }
    if (held >= a->n_entries) {
        /* Nothing new: what libraft frees of a message it consumes. */
        if (a->n_entries > 0) {
            raft_free(a->entries[0].batch);
            raft_free(a->entries);
        }
        a->entries = NULL;
        a->n_entries = 0;
    } else {
        /* Every entry shares entries[0].batch, which stays first. */
        a->n_entries -= (unsigned)held;
        memmove(a->entries, a->entries + held, a->n_entries * sizeof *a->entries);
    }
    a->prev_log_index = snap;
    a->prev_log_term = r->trail.snapshot.term;
    return true;
}

/* A snapshot write in flight: `put` gets `inner`; libraft's request (whose
 * data field libraft owns) and callback wait here. */
struct tracked_put {
    struct raft_io_snapshot_put inner; /* first: the callback finds us */
    struct raft_io_snapshot_put *outer;
    raft_io_snapshot_put_cb cb;
    bool *writing;
};

static void tracked_put_done(struct raft_io_snapshot_put *inner, int status)
{
    struct tracked_put *t = (struct tracked_put *)(void *)inner;
    struct raft_io_snapshot_put *outer = t->outer;
    raft_io_snapshot_put_cb cb = t->cb;
    *t->writing = false;
    free(t);
    cb(outer, status);
}

int rg_tracked_snapshot_put(rg_snapshot_put_fn put, bool *writing,
                            struct raft_io *io, unsigned trailing,
                            struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot,
                            raft_io_snapshot_put_cb cb)
{
    struct tracked_put *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return RAFT_NOMEM;
    }
    t->outer = req;
    t->cb = cb;
    t->writing = writing;
    int rv = put(io, trailing, &t->inner, snapshot, tracked_put_done);
    if (rv != 0) {
        free(t);
        return rv;
    }
    *writing = true;
    return 0;
}

/* A snapshot load in flight: as tracked_put. */
struct tracked_get {
    struct raft_io_snapshot_get inner; /* first: the callback finds us */
    struct raft_io_snapshot_get *outer;
    raft_io_snapshot_get_cb cb;
    struct rg_loaded_snapshot *loaded;
};

static void tracked_get_done(struct raft_io_snapshot_get *inner,
                             struct raft_snapshot *snapshot, int status)
{
    struct tracked_get *t = (struct tracked_get *)(void *)inner;
    struct raft_io_snapshot_get *outer = t->outer;
    raft_io_snapshot_get_cb cb = t->cb;
    struct rg_loaded_snapshot *loaded = t->loaded;
    free(t);
    if (status == 0 && snapshot != NULL) {
        loaded->index = snapshot->index;
        loaded->term = snapshot->term;
        loaded->in_callback = true;
    }
    cb(outer, snapshot, status); /* libraft sends from here */
    loaded->in_callback = false;
}

int rg_tracked_snapshot_get(rg_snapshot_get_fn get,
                            struct rg_loaded_snapshot *loaded,
                            struct raft_io *io, struct raft_io_snapshot_get *req,
                            raft_io_snapshot_get_cb cb)
{
    struct tracked_get *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return RAFT_NOMEM;
    }
    t->outer = req;
    t->cb = cb;
    t->loaded = loaded;
    int rv = get(io, &t->inner, tracked_get_done);
    if (rv != 0) {
        free(t);
    }
    return rv;
}

const struct raft_message *
rg_fix_install_snapshot_term(const struct rg_loaded_snapshot *loaded,
                             const struct raft_message *msg,
                             struct raft_message *fixed)
{
    if (!loaded->in_callback || msg->type != RAFT_INSTALL_SNAPSHOT ||
        msg->install_snapshot.last_index != loaded->index ||
        msg->install_snapshot.last_term == loaded->term) {
        return msg;
    }
    *fixed = *msg;
    fixed->install_snapshot.last_term = loaded->term;
    return fixed;
}
