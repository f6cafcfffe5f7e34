/* A minimal test harness: CHECK records a failure and carries on, so one run
 * reports every broken expectation; the program's exit code is the verdict. */
#ifndef RG_UNIT_H
#define RG_UNIT_H

#include <stdio.h>
#include <stdlib.h>

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

#define UNIT_DONE(name)                                                    \
    do {                                                                   \
        printf("%-16s %s (%d checks, %d failed)\n", name,                  \
               unit_failures ? "FAIL" : "ok", unit_checks, unit_failures); \
        return unit_failures ? 1 : 0;                                      \
    } while (0)

#endif
