/* The registry state machine: applies batches of ops to the name table.
 *
 * Pure and deterministic: the same entries applied in the same order give
 * the same table on every server. Besides mutating the table, apply records
 * its effects for the local member: every change (put/del, in order) and the
 * replies to ops whose origin is this daemon. The node layer ships them over
 * the port after each entry; simulations just reset them.
 *
 * Results: OK (yes/ok), NO (taken; payload = holder pid; for GROUP_ADD, the
 * (key, pid) value list is full; for SET_META_IF_VERSION, the name is not
 * held by the op's pid at the op's version: payload = the entry as
 * [blob pid][u64 version][meta]), NOT_FOUND (SET_META, SET_META_IF_OWNER
 * and SET_META_IF_VERSION when the name is not held, or not by the op's
 * pid), and for READ, OK with the holder pid or an empty payload; for
 * READ_ENTRY, OK with the entry or an empty payload; for REGISTER_MANY, OK
 * with [u8 result][blob holder] per name. RETRY and BAD are never
 * produced here; the node layer uses them for ops that did not commit or did
 * not decode. Ops with ref 0 (SETTLE always) get no reply.
 *
 * De-duplication (dedup.h): a write (every kind but READ, PURGE_NODE and
 * SETTLE) with ref != 0 whose (origin, ref) is in the
 * set is a second copy of a re-sent op and is skipped entirely: no table
 * effect, no change, no reply. Otherwise it applies and its (origin, ref)
 * joins the set. SETTLE(origin, below) forgets that origin's refs below
 * `below`. READ and PURGE_NODE are never skipped nor tracked. */
#ifndef RG_FSM_H
#define RG_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cmd.h"
#include "dedup.h"
#include "table.h"

enum rg_result {
    RG_RES_OK = 0,
    RG_RES_NO = 1,
    RG_RES_NOT_FOUND = 2,
    RG_RES_RETRY = 3,
    RG_RES_BAD = 4,
};

/* DEL_PURGE: removed by PURGE_NODE (its node was seen down); the member of
 * a node that was only cut off re-claims such names on heal. The GROUP
 * changes are the duplicate-key table's, the META ones the registry
 * metadata's (layouts in docs/protocol.md, section 3.2). */
enum rg_change_kind {
    RG_CHANGE_PUT = 1,             /* key pid meta */
    RG_CHANGE_DEL = 2,             /* key */
    RG_CHANGE_DEL_PURGE = 3,       /* key */
    RG_CHANGE_GROUP_ADD = 4,       /* key pid value */
    RG_CHANGE_GROUP_DEL = 5,       /* key pid all value */
    RG_CHANGE_GROUP_DEL_PURGE = 6, /* key pid: all its values */
    RG_CHANGE_META_PUT = 7,        /* key value */
    RG_CHANGE_META_DEL = 8,        /* key */
};

struct rg_fsm {
    struct rg_table table;     /* unique names */
    struct rg_table groups;    /* duplicate keys (group.h) */
    struct rg_table meta;      /* registry metadata: key -> value (pid empty) */
    struct rg_dedup dedup;     /* applied writes not yet settled */
    uint64_t self;             /* raft id of this daemon: whose replies to keep */
    struct rg_wbuf changes;    /* [u8 kind][blob key]([blob pid][blob meta]) */
    uint32_t n_changes;
    struct rg_wbuf replies;    /* [u64 ref][u8 result][blob payload] */
    uint32_t n_replies;
    uint64_t bad_entries;      /* entries that failed to decode (a bug) */
    uint64_t version_seq;      /* the last version given to a name's put */
    bool restored;             /* set by restore; the node sends a full dump */
};

int rg_fsm_init(struct rg_fsm *f, uint64_t self, struct rg_sipkey key);
void rg_fsm_close(struct rg_fsm *f);
/* Forgets the recorded effects (after shipping them). */
void rg_fsm_effects_reset(struct rg_fsm *f);

/* Applies one log entry. Returns 0, or -1 when memory ran out (the entry
 * may be half applied then; regentd treats that as fatal). A malformed
 * entry is skipped from the first bad op on, identically on every server. */
int rg_fsm_apply(struct rg_fsm *f, const uint8_t *entry, size_t len);

/* Snapshot (fsm_snapshot.c): [u32 magic "RGS4"][u64 version_seq], then
 * three tables, each [u64 count] and rows of three blobs sorted by key:
 * names (key, pid, meta, then [u64 version]), groups (name, pid, value
 * list), metadata (key, "", value); then the de-duplication set as
 * rg_dedup_write lays it out. Equal states give
 * equal bytes. Output is malloc'd. */
int rg_fsm_snapshot(const struct rg_fsm *f, uint8_t **out, size_t *len);
/* Replaces the table and the de-duplication set with a snapshot's content;
 * on any error both are left as they were and -1 is returned. */
int rg_fsm_restore(struct rg_fsm *f, const uint8_t *p, size_t len);

#endif
