/* Corrections regentd applies from outside libraft, for libraft bugs that
 * would otherwise wedge a cluster, crash a daemon or leak. Each is guarded
 * so that it does nothing on a libraft that behaves; docs/testing.md says
 * how each was found. test/test_raft_fixes.c tests them on hand-made
 * messages, test/test_raft_fixes_fixture.c runs 1, 3 and 4 under
 * raft_fixture with and without the correction, and the simulation runs
 * them as node_io.c wires them. They read and write fields of struct raft
 * that raft.h declares.
 *
 * 1. The uncommitted configuration index (libraft 0.22.1, replicationAppend;
 * unchanged upstream as of 2026-11): a follower that receives a RAFT_CHANGE
 * entry records as `configuration_uncommitted_index` the index of the first
 * *new entry of the AppendEntries batch*, not the index of the change entry
 * itself. When the change entry is applied its index does not match, so the
 * follower never clears the pending change nor updates its committed
 * configuration. Nothing else clears it until the daemon restarts; if that
 * follower becomes leader, every membership change (adding a joiner,
 * removing a dead server, promoting a standby) fails with RAFT_CANTCHANGE.
 * A follower that catches up after a partition receives exactly such
 * batches (commands, then a change, in one AppendEntries). Found by the
 * nemesis test (seed 29).
 *
 * 2. An InstallSnapshot that arrives while a snapshot is being written
 * (libraft 0.22.1, legacy.c and replication.c; unchanged upstream as of
 * 2026-11). During the server's own snapshot write it is parked, and when
 * the write completes takeSnapshotCb clears the parked pointer before it
 * uses it: a NULL dereference, the daemon dies. During the write of an
 * installed snapshot it is ignored without freeing its data and
 * configuration: a leak of a copy of the table. Found by the raft_fixture
 * simulation. While a snapshot write is in flight regentd drops incoming
 * InstallSnapshot messages, as a lossy network would; the leader sends the
 * snapshot again after its install-snapshot timeout.
 *
 * 3. An AppendEntries anchored below the follower's own snapshot (libraft
 * 0.22.1, checkLogMatchingProperty and recvAppendEntries; unchanged upstream
 * as of 2026-11). A follower that compacted its log past prevLogIndex finds
 * no term there and rejects, saying its log ends at prevLogIndex - 1 (the
 * reply meant for a term mismatch), so the leader walks its next index
 * down; once below its own log start it sends its snapshot, which the
 * follower ignores as older than its own ("have more recent snapshot") and
 * answers at the leader's snapshot index, where the walk starts again. The
 * follower gets no entry until the leader snapshots past the follower's
 * snapshot, which without new writes is never. A follower gets there when
 * it applies entries whose acknowledgements are lost (a one-way cut) and
 * snapshots them before the leader does. Found by the nemesis test with
 * small snapshot thresholds. Everything up to the follower's snapshot is
 * committed, so by Raft's log matching the follower's log equals the
 * leader's there: regentd re-anchors such a message at its snapshot
 * (index and term) and drops the entries the snapshot already holds, and
 * libraft then accepts it and answers with the follower's real position,
 * as etcd's raft does for a prevLogIndex below its commit index.
 *
 * 4. The term of a snapshot sent from a newer snapshot than chosen (libraft
 * 0.22.1, legacyLoadSnapshotCb; unchanged upstream as of 2026-11). A
 * leader picks its latest snapshot X (index and term) to send, loads "the
 * latest snapshot" with raft_io's snapshot_get and, if a newer snapshot Y
 * was written meanwhile, sends Y's index and data with X's term. If an
 * election lies between X and Y the follower stores Y under a wrong term;
 * the leader's next AppendEntries then conflicts at a committed index
 * ("conflicting terms ... -> shutdown"): the follower takes no entry until
 * the leader snapshots again, and libraft's error path double-frees (the
 * daemon aborts, and restarts from the same wrong snapshot). Found by the
 * raft_fixture simulation, whose disk makes the window wide; raft_uv's is
 * narrower (the load runs in the thread pool while a snapshot write may
 * have finished there and not yet reported). regentd notes the index and
 * term of each snapshot that snapshot_get returns and, while libraft's
 * callback sends it, puts that term in the InstallSnapshot. */
#ifndef RG_RAFT_FIXES_H
#define RG_RAFT_FIXES_H

#include <stdbool.h>

#include <raft.h>

/* 1: to be called with the entries libraft hands to raft_io's `append`, before
 * passing them on. On a follower, libraft has just recorded the batch and
 * has not applied any of it yet; if it recorded the first new entry's index
 * for the batch's last RAFT_CHANGE entry, that entry's own index is put in
 * its place. Returns true if it corrected the index. */
bool rg_fix_uncommitted_config(struct raft *r, const struct raft_entry entries[],
                               unsigned n);

typedef int (*rg_snapshot_put_fn)(struct raft_io *io, unsigned trailing,
                                  struct raft_io_snapshot_put *req,
                                  const struct raft_snapshot *snapshot,
                                  raft_io_snapshot_put_cb cb);

/* 2: raft_io's snapshot_put through `put`, with *writing true from a
 * successful start until just before libraft's callback runs. */
int rg_tracked_snapshot_put(rg_snapshot_put_fn put, bool *writing,
                            struct raft_io *io, unsigned trailing,
                            struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot,
                            raft_io_snapshot_put_cb cb);

/* 2: called with each message raft_io delivers, before libraft sees it. If it
 * is an InstallSnapshot and a snapshot write is in flight, frees what the
 * message owns and returns true: the caller drops it. */
bool rg_fix_drop_install_snapshot(bool snapshot_writing,
                                  struct raft_message *msg);

/* 3: called with each message raft_io delivers, before libraft sees it. If it
 * is an AppendEntries whose prevLogIndex lies below r's snapshot and out of
 * its log, re-anchors it at the snapshot, freeing the entries it drops.
 * Returns true if it rewrote the message. */
bool rg_fix_append_below_snapshot(const struct raft *r, struct raft_message *msg);

/* 4: what raft_io's snapshot_get just returned, while libraft's callback
 * runs (it sends the InstallSnapshot from there). */
struct rg_loaded_snapshot {
    bool in_callback;
    raft_index index;
    raft_term term;
};

typedef int (*rg_snapshot_get_fn)(struct raft_io *io,
                                  struct raft_io_snapshot_get *req,
                                  raft_io_snapshot_get_cb cb);

/* 4: raft_io's snapshot_get through `get`, filling *loaded around libraft's
 * callback. */
int rg_tracked_snapshot_get(rg_snapshot_get_fn get,
                            struct rg_loaded_snapshot *loaded,
                            struct raft_io *io, struct raft_io_snapshot_get *req,
                            raft_io_snapshot_get_cb cb);

/* 4: called with each message libraft sends, before raft_io sends it.
 * Returns the message to send: msg itself, or, for an InstallSnapshot of
 * the snapshot just loaded under another term, *fixed, a copy of it with
 * the loaded snapshot's term (raft_io encodes a message before its send
 * returns, so the copy may live on the caller's stack). */
const struct raft_message *
rg_fix_install_snapshot_term(const struct rg_loaded_snapshot *loaded,
                             const struct raft_message *msg,
                             struct raft_message *fixed);

#endif
