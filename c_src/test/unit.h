/* A minimal test harness: CHECK records a failure and carries on, so one run
 * reports every broken expectation; the program's exit code is the verdict. */
#ifndef RG_UNIT_H
#define RG_UNIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(cond)                                                        \
    do {                                                                   \
        unit_checks++;                                                     \
        if (!(cond)) {                                                     \
            unit_failures++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

/* xorshift64*: a fixed-seed generator, so a failure reproduces. Each test
 * program seeds it with unit_seed() before use. */
static uint64_t unit_rng_state = 0x9E3779B97F4A7C15ULL;

static inline void unit_seed(uint64_t seed)
{
    unit_rng_state = seed;
}

static inline uint64_t unit_rng(void)
{
    unit_rng_state ^= unit_rng_state >> 12;
    unit_rng_state ^= unit_rng_state << 25;
    unit_rng_state ^= unit_rng_state >> 27;
    return unit_rng_state * 0x2545F4914F6CDD1DULL;
}

static inline size_t unit_rng_below(size_t n)
{
    return n ? (size_t)(unit_rng() % n) : 0;
}

/* A heap copy of exactly n bytes: reading one byte too far is an ASan error. */
static inline uint8_t *unit_dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(d, p, n);
    }
    return d;
}

#define UNIT_DONE(name)                                                    \
    do {                                                                   \
        printf("%-16s %s (%d checks, %d failed)\n", name,                  \
               unit_failures ? "FAIL" : "ok", unit_checks, unit_failures); \
        return unit_failures ? 1 : 0;                                      \
    } while (0)

#endif
