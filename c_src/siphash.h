/* SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed 64-bit hash. The table
 * is keyed with a per-process random key, so names chosen by an attacker
 * cannot be made to collide (hash flooding). */
#ifndef RG_SIPHASH_H
#define RG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct rg_sipkey {
    uint64_t k0, k1;
};

uint64_t rg_siphash(const struct rg_sipkey *key, const uint8_t *p, size_t n);

#endif
