/* Registry operations and their encoding.
 *
 * One encoding serves the port (member -> regentd) and the raft log: an op
 * is [u8 kind][u64 origin][u64 ref][fields]. On the port the origin is
 * absent (regentd stamps its own raft id); in a log entry it says which
 * daemon must answer the caller once it has applied the op. A log entry is a
 * batch: [u8 format][u32 count][op]...[zero padding to 8n]. The decoder validates every field
 * (canonical names, canonical pids, size limits), so the FSM only ever sees
 * well-formed ops. Field layout per kind is in docs/protocol.md.
 *
 * Ref 0 means "answer nothing": SETTLE always has it (the decoder refuses a
 * SETTLE with another ref, or with below 0). */
#ifndef RG_CMD_H
#define RG_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RG_ENTRY_FORMAT 1

enum rg_op_kind {
    RG_OP_REGISTER = 1,            /* key pid meta replace_pid */
    RG_OP_UNREGISTER = 2,          /* key */
    RG_OP_UNREGISTER_IF_OWNER = 3, /* key pid */
    RG_OP_SET_META = 4,            /* key meta */
    RG_OP_PURGE_NODE = 5,          /* node any_creation creation */
    RG_OP_READ = 6,                /* key */
    RG_OP_SETTLE = 7,              /* below; ref is always 0 */
    /* Registry's API (docs/registry.md) */
    RG_OP_REGISTER_NEW = 8,        /* key pid meta replace_pid: no if held, even by pid */
    RG_OP_SET_META_IF_OWNER = 9,   /* key pid meta */
    RG_OP_GROUP_ADD = 10,          /* key pid meta: one more value for (key, pid) */
    RG_OP_GROUP_DEL = 11,          /* key pid all meta: (key, pid)'s values equal to meta, or all */
    RG_OP_META_PUT = 12,           /* key meta if_absent: registry metadata */
    RG_OP_META_DEL = 13,           /* key */
    /* Atomic updates and bulk operations */
    RG_OP_SET_META_IF_VERSION = 14, /* key pid version meta: compare-and-set */
    RG_OP_READ_ENTRY = 15,          /* key: pid, version and meta, through the log */
    RG_OP_REGISTER_MANY = 16,       /* count, count x (key pid meta replace) */
    RG_OP_UNREGISTER_MANY = 17,     /* count, count x key */
    /* Distributed supervision (docs/supervision.md) */
    RG_OP_META_CAS = 18,            /* key mode expect value: compare-and-set of metadata */
};

/* META_CAS mode bits: without EXPECT the key must have no value; without
 * VALUE a match deletes the key. */
#define RG_CAS_EXPECT 1u
#define RG_CAS_VALUE 2u

/* The most names one REGISTER_MANY or UNREGISTER_MANY carries. */
#define RG_MANY_MAX (1u << 20)

struct rg_op {
    uint8_t kind;
    uint64_t origin;
    uint64_t ref;
    const uint8_t *key; /* all byte fields point into the decoded input */
    uint32_t key_len;
    const uint8_t *pid; /* pid, or the node name for PURGE_NODE */
    uint32_t pid_len;
    const uint8_t *meta;
    uint32_t meta_len;
    const uint8_t *replace; /* REGISTER: also win if the holder is this pid */
    uint32_t replace_len;
    bool any_creation; /* PURGE_NODE */
    uint32_t creation; /* PURGE_NODE */
    uint64_t below;    /* SETTLE: the origin's ops with smaller refs are answered */
    bool flag;         /* GROUP_DEL: all values; META_PUT: only if absent */
    uint8_t cas_mode;  /* META_CAS: RG_CAS_* bits */
    const uint8_t *expect; /* META_CAS: the value the key must hold */
    uint32_t expect_len;
    uint64_t version;  /* SET_META_IF_VERSION */
    uint32_t count;    /* *_MANY: items, each checked by the decoder */
    const uint8_t *items; /* *_MANY: the items' bytes */
    uint32_t items_len;
};

/* The next item of a REGISTER_MANY (key, pid, meta, replace) or UNREGISTER_MANY
 * (key) op, read from r (initialised over op->items), into item; false
 * when the items are exhausted or malformed. */
bool rg_many_next(struct rg_rbuf *r, uint8_t kind, struct rg_op *item);

/* Decodes and validates one op; with_origin selects the log form. */
bool rg_op_decode(struct rg_rbuf *r, bool with_origin, struct rg_op *op);
void rg_op_encode(struct rg_wbuf *w, const struct rg_op *op, bool with_origin);

/* Entry header; the caller then appends `count` ops in log form. */
void rg_entry_begin(struct rg_wbuf *w, size_t *count_off);
/* Pads the entry with zeros to a multiple of 8 bytes: libraft's raft_uv
 * refuses entry buffers of other lengths. */
void rg_entry_finish(struct rg_wbuf *w);
/* Reads the header of an entry; returns false if it is not one. */
bool rg_entry_open(struct rg_rbuf *r, uint32_t *count);
/* After the last op: true if only the padding (< 8 zero bytes) is left. */
bool rg_entry_close(struct rg_rbuf *r);

#endif
