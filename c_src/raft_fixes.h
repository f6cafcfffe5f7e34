/* Corrections regentd applies from outside libraft, for libraft bugs that
 * would otherwise wedge a cluster. Each is guarded so that it does nothing
 * on a libraft that behaves; docs/testing.md ("Found in libraft") says how
 * each was found, and test/test_raft_fixes.c reproduces each under
 * raft_fixture with and without the correction.
 *
 * The uncommitted configuration index (libraft 0.22.1, replicationAppend;
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
 * nemesis test (seed 29). */
#ifndef RG_RAFT_FIXES_H
#define RG_RAFT_FIXES_H

#include <stdbool.h>

#include <raft.h>

/* To be called with the entries libraft hands to raft_io's `append`, before
 * passing them on. On a follower, libraft has just recorded the batch and
 * has not applied any of it yet; if it recorded the first new entry's index
 * for the batch's last RAFT_CHANGE entry, that entry's own index is put in
 * its place. Returns true if it corrected the index. */
bool rg_fix_uncommitted_config(struct raft *r, const struct raft_entry entries[],
                               unsigned n);

#endif
