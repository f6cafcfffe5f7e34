/* Duplicate keys: the FSM's second table, for registries with
 * `keys: duplicate` (process groups, pub/sub).
 *
 * One entry per (name, pid) pair holds every value that pid registered
 * under that name, in registration order, so a pid may register one name
 * many times, as in Elixir's Registry. Entries live in an rg_table whose key
 * is the canonical name followed by the canonical pid (both self-delimiting,
 * so the pair has one encoding) and whose meta is the value list:
 * [u32 len][bytes] per value. Pure data, no I/O.
 *
 * Invariants: every entry holds 1..n values, each at most RG_META_MAX bytes,
 * and its value list is at most RG_GROUP_VALUES_MAX bytes. */
#ifndef RG_GROUP_H
#define RG_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "table.h"

#define RG_GROUP_VALUES_MAX (1u << 20)
#define RG_GROUP_KEY_MAX (RG_NAME_MAX + RG_PID_MAX)

/* An entry split into its parts (pointers into the entry). */
struct rg_group_view {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *pid;
    size_t pid_len;
    const uint8_t *values;
    size_t values_len;
};

/* Splits an entry of a group table; false if it is not one (a bug). */
bool rg_group_view(const struct rg_entry *e, struct rg_group_view *v);

/* True when p[0..n) is a well-formed, non-empty value list. */
bool rg_group_values_check(const uint8_t *p, size_t n);

enum rg_group_add_result { RG_GROUP_ADDED = 0, RG_GROUP_NOMEM = -1, RG_GROUP_FULL = 1 };

/* Appends value to (name, pid)'s list, creating the entry. FULL when the
 * list would exceed RG_GROUP_VALUES_MAX; the table is then unchanged, as
 * on NOMEM. */
int rg_group_add(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *value,
                 size_t value_len);

/* Removes from (name, pid)'s list every value equal to value, or all of
 * them when all is set; an emptied entry goes. *removed says whether
 * anything went. Returns 0, or -1 when memory ran out (table unchanged). */
int rg_group_del(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *value,
                 size_t value_len, bool all, bool *removed);

/* Puts a whole entry (a snapshot row). Returns 0 or -1 (out of memory). */
int rg_group_put(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *values,
                 size_t values_len);

/* The entry of (name, pid), or NULL. */
const struct rg_entry *rg_group_get(const struct rg_table *t,
                                    const uint8_t *name, size_t name_len,
                                    const uint8_t *pid, size_t pid_len);

#endif
