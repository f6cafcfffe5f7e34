/* The name table: canonical name bytes -> (pid bytes, metadata bytes).
 *
 * A chained hash table keyed by SipHash. It is pure data: no I/O, no clocks,
 * so the FSM built on it runs the same under unit tests, raft_fixture and the
 * fuzzers. Invariants: at most one entry per name; every entry's pid is a
 * canonical pid (checked by the FSM before insertion); the bucket count is a
 * power of two and the load factor stays <= 1. */
#ifndef RG_TABLE_H
#define RG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

struct rg_entry {
    struct rg_entry *next; /* chain */
    uint64_t hash;
    uint64_t version;      /* names: the FSM's write counter when last put */
    uint32_t key_len;
    uint32_t pid_len;
    uint32_t meta_len;
    uint8_t data[]; /* key, then pid, then meta */
};

static inline const uint8_t *rg_entry_key(const struct rg_entry *e)
{
    return e->data;
}
static inline const uint8_t *rg_entry_pid(const struct rg_entry *e)
{
    return e->data + e->key_len;
}
static inline const uint8_t *rg_entry_meta(const struct rg_entry *e)
{
    return e->data + e->key_len + e->pid_len;
}

struct rg_table {
    struct rg_entry **buckets; /* owned, with every entry in them */
    size_t mask;               /* bucket count - 1 */
    size_t count;
    struct rg_sipkey key;
};

int rg_table_init(struct rg_table *t, struct rg_sipkey key);
void rg_table_free(struct rg_table *t);
/* Removes every entry. */
void rg_table_clear(struct rg_table *t);
const struct rg_entry *rg_table_get(const struct rg_table *t,
                                    const uint8_t *key, size_t key_len);
/* Inserts or replaces the entry for key. Returns 0 or -1 (out of memory, in
 * which case the table is unchanged). */
int rg_table_put(struct rg_table *t, const uint8_t *key, size_t key_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *meta,
                 size_t meta_len);
/* Sets the version of key's entry (a no-op when there is none). */
void rg_table_set_version(struct rg_table *t, const uint8_t *key,
                          size_t key_len, uint64_t version);
/* Returns true if an entry was removed. */
bool rg_table_del(struct rg_table *t, const uint8_t *key, size_t key_len);

/* Visits entries in unspecified order. The visitor returns true to delete the
 * entry it was given (after it has finished using it). */
typedef bool (*rg_table_visit_fn)(void *arg, const struct rg_entry *e);
void rg_table_visit(struct rg_table *t, rg_table_visit_fn fn, void *arg);

/* The entries for which pred(arg, e) holds, sorted by key bytes: a purge
 * removes them in this order, the same on every server (the hash order
 * depends on each daemon's SipHash key). The array is malloc'd (caller
 * frees it); the entries stay owned by the table. NULL with *n = 0 when
 * none holds; NULL with *n != 0 on out of memory. */
typedef bool (*rg_table_pred_fn)(void *arg, const struct rg_entry *e);
const struct rg_entry **rg_table_select_sorted(const struct rg_table *t,
                                               rg_table_pred_fn pred, void *arg,
                                               size_t *n);

/* Entries sorted by key bytes, for deterministic snapshots. The array is
 * malloc'd (caller frees it); the entries stay owned by the table. NULL with
 * *n = 0 for an empty table; NULL with *n != 0 on out of memory. */
const struct rg_entry **rg_table_sorted(const struct rg_table *t, size_t *n);

#endif
