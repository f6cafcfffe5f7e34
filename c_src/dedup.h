/* The FSM's de-duplication set: the (origin, ref) of every applied write
 * op that its origin has not yet settled.
 *
 * A member re-sends unanswered ops after a leader change or a RETRY, and the
 * first copy may still commit, so one op can reach the log twice. The FSM
 * applies a write only if its (origin, ref) is not in this set, and inserts
 * it; a SETTLE(origin, below) op, sent by the member once every op below
 * `below` is answered, removes that origin's smaller refs. The set is part of
 * the replicated state (it is in the snapshot), so every server skips the
 * same copies.
 *
 * Layout: origins in a sorted array, each with a sorted array of refs. Refs
 * of one origin mostly arrive increasing (a member's refs grow), so an
 * insert is usually an append; lookups are binary searches. Pure data, no
 * I/O. Invariants: origins strictly ascending, each with 1..RG_DEDUP_MAX_REFS
 * refs, strictly ascending and non-zero. */
#ifndef RG_DEDUP_H
#define RG_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

/* A member that never settles must not grow the state without bound: an
 * insert that takes an origin past RG_DEDUP_MAX_REFS refs drops its
 * RG_DEDUP_DROP smallest (its oldest ops, long answered or timed out), in
 * one step so that the cost of the move is shared by many inserts. */
#define RG_DEDUP_MAX_REFS (1u << 20)
#define RG_DEDUP_DROP (1u << 16)

struct rg_dedup_origin {
    uint64_t origin;
    uint64_t *refs; /* owned; n ascending */
    uint32_t n;
    uint32_t cap;
};

struct rg_dedup {
    struct rg_dedup_origin *v; /* owned, with every refs array; n ascending */
    uint32_t n;
    uint32_t cap;
};

void rg_dedup_init(struct rg_dedup *d);
void rg_dedup_free(struct rg_dedup *d);

bool rg_dedup_has(const struct rg_dedup *d, uint64_t origin, uint64_t ref);
/* Inserts (origin, ref); a no-op if present. Returns 0, or -1 when memory
 * ran out (then d is unchanged). */
int rg_dedup_add(struct rg_dedup *d, uint64_t origin, uint64_t ref);
/* Forgets origin's refs below `below`, and the origin if none are left. */
void rg_dedup_settle(struct rg_dedup *d, uint64_t origin, uint64_t below);
/* Number of refs held for origin (0 if unknown). */
uint32_t rg_dedup_count(const struct rg_dedup *d, uint64_t origin);

/* Snapshot section: [u32 n_origins] then per origin, ascending,
 * [u64 origin][u32 n][u64 ref]*n ascending. */
void rg_dedup_write(const struct rg_dedup *d, struct rg_wbuf *w);
/* Reads a section into d (which must be empty), validating it against the
 * invariants above. Returns 0, or -1 with d empty again. The caller checks
 * that nothing follows. */
int rg_dedup_read(struct rg_dedup *d, struct rg_rbuf *r);

#endif
