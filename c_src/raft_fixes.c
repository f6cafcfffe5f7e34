#include "raft_fixes.h"

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
