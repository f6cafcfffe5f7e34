/* Unit tests for dedup.c, the FSM's de-duplication set: membership, refs
 * inserted in and out of order, several origins (including 0 and the
 * largest), SETTLE (prefix removal, dropping an emptied origin, unknown
 * origins), the per-origin cap, the snapshot section (byte layout, round
 * trip, every truncation and each kind of invalid content refused with the
 * target left empty), and a random run against a naive model. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "unit.h"

/* The set's invariants: origins and refs strictly ascending, refs > 0,
 * 1..RG_DEDUP_MAX_REFS refs per origin. */
static bool well_formed(const struct rg_dedup *d)
{
    for (uint32_t i = 0; i < d->n; i++) {
        const struct rg_dedup_origin *o = &d->v[i];
        if ((i > 0 && o->origin <= d->v[i - 1].origin) || o->n == 0 ||
            o->n > RG_DEDUP_MAX_REFS || o->n > o->cap || o->refs[0] == 0) {
            return false;
        }
        for (uint32_t k = 1; k < o->n; k++) {
            if (o->refs[k] <= o->refs[k - 1]) {
                return false;
            }
        }
    }
    return true;
}

static void test_basic(void)
{
    struct rg_dedup d;
    rg_dedup_init(&d);
    CHECK(!rg_dedup_has(&d, 1, 1) && rg_dedup_count(&d, 1) == 0);
    CHECK(rg_dedup_add(&d, 1, 10) == 0 && rg_dedup_has(&d, 1, 10));
    CHECK(!rg_dedup_has(&d, 1, 11) && !rg_dedup_has(&d, 2, 10));
    CHECK(rg_dedup_add(&d, 1, 10) == 0 && rg_dedup_count(&d, 1) == 1);
    CHECK(rg_dedup_add(&d, 1, 0) == 0 && rg_dedup_count(&d, 1) == 1);
    CHECK(!rg_dedup_has(&d, 1, 0)); /* ref 0 is never tracked */

    /* Out of order: kept sorted. */
    static const uint64_t refs[] = {5, 30, 20, 1, 25, 15, UINT64_MAX};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        CHECK(rg_dedup_add(&d, 1, refs[i]) == 0);
    }
    CHECK(rg_dedup_count(&d, 1) == 8 && well_formed(&d));
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        CHECK(rg_dedup_has(&d, 1, refs[i]));
    }
    CHECK(!rg_dedup_has(&d, 1, 2) && !rg_dedup_has(&d, 1, 29));

    /* Origins at both ends and in between. */
    CHECK(rg_dedup_add(&d, UINT64_MAX, 7) == 0);
    CHECK(rg_dedup_add(&d, 0, 7) == 0);
    CHECK(rg_dedup_add(&d, 5, 7) == 0);
    CHECK(d.n == 4 && well_formed(&d));
    CHECK(d.v[0].origin == 0 && d.v[1].origin == 1 && d.v[2].origin == 5 &&
          d.v[3].origin == UINT64_MAX);
    CHECK(rg_dedup_has(&d, 0, 7) && rg_dedup_has(&d, UINT64_MAX, 7) &&
          !rg_dedup_has(&d, 4, 7));
    rg_dedup_free(&d);
    CHECK(d.n == 0 && d.v == NULL);
}

static void test_settle(void)
{
    struct rg_dedup d;
    rg_dedup_init(&d);
    for (uint64_t r = 1; r <= 100; r++) {
        CHECK(rg_dedup_add(&d, 3, r * 2) == 0); /* 2, 4, ..., 200 */
        CHECK(rg_dedup_add(&d, 4, r) == 0);
    }
    rg_dedup_settle(&d, 9, 1000); /* unknown origin: nothing */
    CHECK(d.n == 2 && rg_dedup_count(&d, 3) == 100);
    rg_dedup_settle(&d, 3, 1); /* nothing below 1 */
    CHECK(rg_dedup_count(&d, 3) == 100);
    rg_dedup_settle(&d, 3, 50); /* drops 2..48, keeps 50.. */
    CHECK(rg_dedup_count(&d, 3) == 76 && !rg_dedup_has(&d, 3, 48) &&
          rg_dedup_has(&d, 3, 50) && rg_dedup_has(&d, 3, 200));
    rg_dedup_settle(&d, 3, 51); /* below between two refs */
    CHECK(rg_dedup_count(&d, 3) == 75 && !rg_dedup_has(&d, 3, 50));
    CHECK(rg_dedup_count(&d, 4) == 100 && well_formed(&d)); /* untouched */

    /* A settled ref applies again: the set forgets it. */
    CHECK(rg_dedup_add(&d, 3, 50) == 0 && rg_dedup_has(&d, 3, 50));

    rg_dedup_settle(&d, 3, 201); /* everything: the origin goes */
    CHECK(d.n == 1 && d.v[0].origin == 4 && rg_dedup_count(&d, 3) == 0);
    rg_dedup_settle(&d, 4, UINT64_MAX);
    CHECK(d.n == 0);
    CHECK(rg_dedup_add(&d, 4, 1) == 0 && d.n == 1); /* usable afterwards */
    rg_dedup_free(&d);
}

/* Past RG_DEDUP_MAX_REFS the smallest RG_DEDUP_DROP refs go in one step. */
static void test_cap(void)
{
    struct rg_dedup d;
    rg_dedup_init(&d);
    bool ok = true;
    for (uint64_t r = 1; r <= RG_DEDUP_MAX_REFS; r++) {
        ok = ok && rg_dedup_add(&d, 8, r) == 0;
    }
    CHECK(ok && rg_dedup_count(&d, 8) == RG_DEDUP_MAX_REFS);
    CHECK(rg_dedup_has(&d, 8, 1));
    CHECK(rg_dedup_add(&d, 8, RG_DEDUP_MAX_REFS + 1) == 0);
    CHECK(rg_dedup_count(&d, 8) == RG_DEDUP_MAX_REFS + 1 - RG_DEDUP_DROP);
    CHECK(!rg_dedup_has(&d, 8, 1) && !rg_dedup_has(&d, 8, RG_DEDUP_DROP));
    CHECK(rg_dedup_has(&d, 8, RG_DEDUP_DROP + 1) &&
          rg_dedup_has(&d, 8, RG_DEDUP_MAX_REFS + 1));
    /* An old ref arriving late is the smallest: it is what goes next. */
    CHECK(rg_dedup_add(&d, 8, 1) == 0 && rg_dedup_has(&d, 8, 1));
    CHECK(well_formed(&d));

    /* The snapshot of a capped origin restores. */
    struct rg_wbuf w;
    struct rg_rbuf r;
    struct rg_dedup e;
    rg_wbuf_init(&w);
    rg_dedup_write(&d, &w);
    rg_dedup_init(&e);
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(!w.oom && rg_dedup_read(&e, &r) == 0 && rg_rbuf_done(&r));
    CHECK(rg_dedup_count(&e, 8) == rg_dedup_count(&d, 8));
    rg_wbuf_free(&w);
    rg_dedup_free(&e);
    rg_dedup_free(&d);
}

/* ---- the snapshot section ----------------------------------------------- */

/* Reads p[0..n) from an exact copy into a fresh set; -1 also when bytes are
 * left over. On failure the set must be empty. */
static int read_exact(struct rg_dedup *d, const uint8_t *p, size_t n)
{
    uint8_t *copy = unit_dup_exact(p, n);
    struct rg_rbuf r;
    rg_dedup_init(d);
    rg_rbuf_init(&r, copy, n);
    int rv = rg_dedup_read(d, &r);
    if (rv != 0) {
        CHECK(d->n == 0 && d->v == NULL);
    } else if (!rg_rbuf_done(&r)) {
        rv = -1;
        rg_dedup_free(d);
    }
    free(copy);
    return rv;
}

static bool refused(const struct rg_wbuf *w)
{
    struct rg_dedup d;
    if (read_exact(&d, w->data, w->len) == -1) {
        return true;
    }
    rg_dedup_free(&d);
    return false;
}

static void test_layout(void)
{
    struct rg_dedup d;
    struct rg_wbuf w;
    rg_dedup_init(&d);
    rg_wbuf_init(&w);
    rg_dedup_write(&d, &w);
    static const uint8_t empty[] = {0, 0, 0, 0};
    CHECK(w.len == sizeof empty && memcmp(w.data, empty, w.len) == 0);

    CHECK(rg_dedup_add(&d, 0x0102, 9) == 0);
    CHECK(rg_dedup_add(&d, 0x0101, 0x0A0B) == 0);
    CHECK(rg_dedup_add(&d, 0x0101, 3) == 0);
    rg_wbuf_reset(&w);
    rg_dedup_write(&d, &w);
    static const uint8_t two[] = {
        0, 0, 0, 2,                           /* origins */
        0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 2,   /* origin 0x101, 2 refs */
        0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x0A, 0x0B,
        0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1,   /* origin 0x102, 1 ref */
        0, 0, 0, 0, 0, 0, 0, 9};
    CHECK(w.len == sizeof two && memcmp(w.data, two, w.len) == 0);

    struct rg_dedup e;
    CHECK(read_exact(&e, two, sizeof two) == 0);
    CHECK(e.n == 2 && rg_dedup_has(&e, 0x101, 3) &&
          rg_dedup_has(&e, 0x101, 0x0A0B) && rg_dedup_has(&e, 0x102, 9));
    rg_dedup_free(&e);

    int truncations = 0;
    for (size_t k = 0; k < sizeof two; k++) {
        truncations += read_exact(&e, two, k) == -1;
    }
    CHECK(truncations == (int)sizeof two);
    rg_wbuf_free(&w);
    rg_dedup_free(&d);
}

/* A section with one origin record per (origin, n, refs...) triple. */
static void section(struct rg_wbuf *w, uint32_t n_origins,
                    const uint64_t *origins, const uint32_t *counts,
                    const uint64_t *refs)
{
    rg_wbuf_reset(w);
    rg_wbuf_u32(w, n_origins);
    for (uint32_t i = 0; i < n_origins; i++) {
        rg_wbuf_u64(w, origins[i]);
        rg_wbuf_u32(w, counts[i]);
        for (uint32_t k = 0; k < counts[i]; k++) {
            rg_wbuf_u64(w, *refs++);
        }
    }
}

static void test_invalid(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    static const uint64_t o12[] = {1, 2}, o21[] = {2, 1}, o11[] = {1, 1};
    static const uint32_t c11[] = {1, 1}, c21[] = {2, 1}, c01[] = {0, 1};
    static const uint64_t r_ok[] = {5, 6, 7}, r_down[] = {6, 5, 7},
                          r_dup[] = {5, 5, 7}, r_zero[] = {0, 6, 7};

    section(&w, 2, o12, c21, r_ok); /* the valid baseline */
    CHECK(!refused(&w));
    section(&w, 2, o21, c21, r_ok); /* origins descending */
    CHECK(refused(&w));
    section(&w, 2, o11, c11, r_ok); /* an origin twice */
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_down); /* refs descending */
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_dup); /* a ref twice */
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_zero); /* ref 0 */
    CHECK(refused(&w));
    section(&w, 2, o12, c01, r_ok); /* an origin without refs */
    CHECK(refused(&w));

    section(&w, 2, o12, c21, r_ok); /* a byte too many */
    rg_wbuf_u8(&w, 0);
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_ok); /* n_origins one too high */
    w.data[3] = 3;
    CHECK(refused(&w));
    memset(w.data, 0xFF, 4); /* hostile n_origins */
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_ok); /* hostile ref count */
    memset(w.data + 4 + 8, 0xFF, 4);
    CHECK(refused(&w));
    section(&w, 2, o12, c21, r_ok); /* more refs than bytes left */
    w.data[4 + 8 + 3] = 100;
    CHECK(refused(&w));

    /* More refs than the cap, even if the bytes are there. */
    uint32_t big = RG_DEDUP_MAX_REFS + 1;
    uint64_t *many = malloc((size_t)big * sizeof *many);
    if (many == NULL) {
        abort();
    }
    for (uint32_t k = 0; k < big; k++) {
        many[k] = (uint64_t)k + 1;
    }
    static const uint64_t o1[] = {1};
    section(&w, 1, o1, &big, many);
    CHECK(refused(&w));
    big--;
    section(&w, 1, o1, &big, many); /* at the cap: fine */
    CHECK(!refused(&w));
    free(many);
    rg_wbuf_free(&w);
}

/* ---- random run against a naive model ----------------------------------- */

#define M_ORIGINS 5
#define M_REFS 64

/* present[o][r]: (o, r) is in the set (refs 1..M_REFS-1). */
struct naive {
    bool present[M_ORIGINS][M_REFS];
};

static bool agrees(const struct rg_dedup *d, const struct naive *m)
{
    uint32_t origins = 0;
    for (uint64_t o = 0; o < M_ORIGINS; o++) {
        uint32_t n = 0;
        for (uint64_t r = 1; r < M_REFS; r++) {
            if (rg_dedup_has(d, o, r) != m->present[o][r]) {
                return false;
            }
            n += m->present[o][r];
        }
        if (rg_dedup_count(d, o) != n) {
            return false;
        }
        origins += n > 0;
    }
    return origins == d->n && well_formed(d);
}

/* Snapshot bytes of d, restored into a fresh set, snapshot again: equal. */
static bool round_trips(const struct rg_dedup *d)
{
    struct rg_wbuf a, b;
    struct rg_dedup e;
    rg_wbuf_init(&a);
    rg_wbuf_init(&b);
    rg_dedup_write(d, &a);
    bool ok = read_exact(&e, a.data, a.len) == 0;
    if (ok) {
        rg_dedup_write(&e, &b);
        ok = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
        rg_dedup_free(&e);
    }
    rg_wbuf_free(&a);
    rg_wbuf_free(&b);
    return ok;
}

static void test_random(void)
{
    struct rg_dedup d;
    static struct naive m;
    int disagreements = 0, bad_trips = 0;
    rg_dedup_init(&d);
    memset(&m, 0, sizeof m);
    for (int step = 0; step < 20000; step++) {
        uint64_t o = unit_rng_below(M_ORIGINS);
        uint64_t r = 1 + unit_rng_below(M_REFS - 1);
        if (unit_rng_below(8) == 0) {
            rg_dedup_settle(&d, o, r);
            for (uint64_t k = 1; k < r; k++) {
                m.present[o][k] = false;
            }
        } else {
            CHECK(rg_dedup_add(&d, o, r) == 0);
            m.present[o][r] = true;
        }
        disagreements += !agrees(&d, &m);
        if (step % 97 == 0) {
            bad_trips += !round_trips(&d);
        }
    }
    CHECK(disagreements == 0 && bad_trips == 0);
    rg_dedup_free(&d);
}

int main(void)
{
    unit_seed(0xD3D0D3D0CAFEF00DULL);
    test_basic();
    test_settle();
    test_cap();
    test_layout();
    test_invalid();
    test_random();
    UNIT_DONE("test_dedup");
}
