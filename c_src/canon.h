/* Canonical names.
 *
 * A registered name travels as "canonical bytes": a restricted subset of the
 * Erlang external term format (without the 131 version byte) in which every
 * term has exactly one encoding, so names that are =:= give identical bytes
 * on every node and OTP release (docs/names.md has the rules). The Erlang side
 * (regent_name.erl) builds them; regentd only checks them, because they come
 * from outside and end up as keys of the replicated table. */
#ifndef RG_CANON_H
#define RG_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* External term format tags used by the canonical encoding. */
enum {
    RG_ETF_NEW_FLOAT = 70,
    RG_ETF_BIT_BINARY = 77,
    RG_ETF_NEW_PID = 88,
    RG_ETF_NEWER_REFERENCE = 90,
    RG_ETF_SMALL_INTEGER = 97,
    RG_ETF_INTEGER = 98,
    RG_ETF_SMALL_TUPLE = 104,
    RG_ETF_LARGE_TUPLE = 105,
    RG_ETF_NIL = 106,
    RG_ETF_LIST = 108,
    RG_ETF_BINARY = 109,
    RG_ETF_SMALL_BIG = 110,
    RG_ETF_MAP = 116,
    RG_ETF_ATOM_UTF8 = 118,
    RG_ETF_SMALL_ATOM_UTF8 = 119,
    RG_ETF_V4_PORT = 120,
};

/* True when p[0..n) is exactly one canonical term. */
bool rg_canon_check(const uint8_t *p, size_t n);

/* The length of the canonical term that starts p[0..n) (at most
 * RG_NAME_MAX bytes), or 0 if none does: splits a name from what follows. */
size_t rg_canon_prefix(const uint8_t *p, size_t n);

/* A canonical pid (NEW_PID_EXT) split into the parts the FSM needs. */
struct rg_pid_view {
    const uint8_t *node; /* UTF-8 node name, not NUL-terminated */
    size_t node_len;
    uint32_t creation;
};

/* True when p[0..n) is exactly one canonical pid; fills *v. */
bool rg_canon_pid(const uint8_t *p, size_t n, struct rg_pid_view *v);

#endif
