/* The de-duplication set; see dedup.h. */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#define REFS_MIN_CAP 8u
#define ORIGINS_MIN_CAP 4u
/* Smallest encoded origin: [u64 origin][u32 n][u64 ref]. */
#define ORIGIN_MIN_BYTES 20u

void rg_dedup_init(struct rg_dedup *d)
{
    memset(d, 0, sizeof *d);
}

void rg_dedup_free(struct rg_dedup *d)
{
    for (uint32_t i = 0; i < d->n; i++) {
        free(d->v[i].refs);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* First index of v[0..n) whose value is >= x. */
static uint32_t ref_bound(const uint64_t *v, uint32_t n, uint64_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* First index of d->v whose origin is >= origin. */
static uint32_t origin_bound(const struct rg_dedup *d, uint64_t origin)
{
    uint32_t lo = 0, hi = d->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->v[mid].origin < origin) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct rg_dedup_origin *find(const struct rg_dedup *d, uint64_t origin)
{
    uint32_t at = origin_bound(d, origin);
    return at < d->n && d->v[at].origin == origin ? &d->v[at] : NULL;
}

bool rg_dedup_has(const struct rg_dedup *d, uint64_t origin, uint64_t ref)
{
    const struct rg_dedup_origin *o = find(d, origin);
    if (o == NULL) {
        return false;
    }
    uint32_t i = ref_bound(o->refs, o->n, ref);
    return i < o->n && o->refs[i] == ref;
}

uint32_t rg_dedup_count(const struct rg_dedup *d, uint64_t origin)
{
    const struct rg_dedup_origin *o = find(d, origin);
    return o == NULL ? 0 : o->n;
}

/* A new origin without refs at index at; NULL (d unchanged) if memory ran
 * out. Its refs array has room, so the caller's first insert cannot fail. */
static struct rg_dedup_origin *insert_origin(struct rg_dedup *d, uint32_t at,
                                             uint64_t origin)
{
    uint64_t *refs = malloc(REFS_MIN_CAP * sizeof *refs);
    if (refs == NULL) {
        return NULL;
    }
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : ORIGINS_MIN_CAP;
        struct rg_dedup_origin *v = realloc(d->v, cap * sizeof *v);
        if (v == NULL) {
            free(refs);
            return NULL;
        }
        d->v = v;
        d->cap = cap;
    }
    memmove(&d->v[at + 1], &d->v[at], (d->n - at) * sizeof *d->v);
    d->v[at].origin = origin;
    d->v[at].refs = refs;
    d->v[at].n = 0;
    d->v[at].cap = REFS_MIN_CAP;
    d->n++;
    return &d->v[at];
}

static void remove_origin(struct rg_dedup *d, uint32_t at)
{
    free(d->v[at].refs);
    memmove(&d->v[at], &d->v[at + 1], (d->n - at - 1) * sizeof *d->v);
    d->n--;
}

/* Forgets the k smallest refs of o. */
static void drop_front(struct rg_dedup_origin *o, uint32_t k)
{
    memmove(o->refs, o->refs + k, (size_t)(o->n - k) * sizeof *o->refs);
    o->n -= k;
}

/* Gives back memory after a large settle; failing to is harmless. */
static void maybe_shrink(struct rg_dedup_origin *o)
{
    if (o->cap <= REFS_MIN_CAP || o->n >= o->cap / 4) {
        return;
    }
    uint32_t cap = o->n * 2 > REFS_MIN_CAP ? o->n * 2 : REFS_MIN_CAP;
    uint64_t *refs = realloc(o->refs, (size_t)cap * sizeof *refs);
    if (refs != NULL) {
        o->refs = refs;
        o->cap = cap;
    }
}

static bool reserve_ref(struct rg_dedup_origin *o)
{
    if (o->n < o->cap) {
        return true;
    }
    uint32_t cap = o->cap * 2;
    uint64_t *refs = realloc(o->refs, (size_t)cap * sizeof *refs);
    if (refs == NULL) {
        return false;
    }
    o->refs = refs;
    o->cap = cap;
    return true;
}

int rg_dedup_add(struct rg_dedup *d, uint64_t origin, uint64_t ref)
{
    if (ref == 0) {
        return 0; /* never de-duplicated; a 0 would make snapshots invalid */
    }
    uint32_t at = origin_bound(d, origin);
    struct rg_dedup_origin *o;
    if (at < d->n && d->v[at].origin == origin) {
        o = &d->v[at];
    } else if ((o = insert_origin(d, at, origin)) == NULL) {
        return -1;
    }
    uint32_t i = ref_bound(o->refs, o->n, ref);
    if (i < o->n && o->refs[i] == ref) {
        return 0;
    }
    if (!reserve_ref(o)) {
        return -1; /* o is not new: insert_origin left room */
    }
    memmove(&o->refs[i + 1], &o->refs[i], (size_t)(o->n - i) * sizeof *o->refs);
    o->refs[i] = ref;
    o->n++;
    if (o->n > RG_DEDUP_MAX_REFS) {
        drop_front(o, RG_DEDUP_DROP);
    }
    return 0;
}

void rg_dedup_settle(struct rg_dedup *d, uint64_t origin, uint64_t below)
{
    uint32_t at = origin_bound(d, origin);
    if (at == d->n || d->v[at].origin != origin) {
        return;
    }
    struct rg_dedup_origin *o = &d->v[at];
    drop_front(o, ref_bound(o->refs, o->n, below));
    if (o->n == 0) {
        remove_origin(d, at);
    } else {
        maybe_shrink(o);
    }
}

void rg_dedup_write(const struct rg_dedup *d, struct rg_wbuf *w)
{
    rg_wbuf_u32(w, d->n);
    for (uint32_t i = 0; i < d->n; i++) {
        const struct rg_dedup_origin *o = &d->v[i];
        rg_wbuf_u64(w, o->origin);
        rg_wbuf_u32(w, o->n);
        for (uint32_t k = 0; k < o->n; k++) {
            rg_wbuf_u64(w, o->refs[k]);
        }
    }
}

/* One origin's record; its refs must be non-zero and strictly ascending.
 * Counts are checked against the bytes left before anything is allocated. */
static int read_origin(struct rg_rbuf *r, struct rg_dedup_origin *o)
{
    uint64_t prev = 0;
    o->origin = rg_rbuf_u64(r);
    o->n = rg_rbuf_u32(r);
    if (!rg_rbuf_ok(r) || o->n == 0 || o->n > RG_DEDUP_MAX_REFS ||
        o->n > r->left / 8) {
        return -1;
    }
    o->refs = malloc((size_t)o->n * sizeof *o->refs);
    if (o->refs == NULL) {
        return -1;
    }
    o->cap = o->n;
    for (uint32_t k = 0; k < o->n; k++) {
        o->refs[k] = rg_rbuf_u64(r);
        if (o->refs[k] <= prev) {
            free(o->refs);
            return -1;
        }
        prev = o->refs[k];
    }
    return 0;
}

int rg_dedup_read(struct rg_dedup *d, struct rg_rbuf *r)
{
    uint32_t n = rg_rbuf_u32(r);
    if (!rg_rbuf_ok(r) || n > r->left / ORIGIN_MIN_BYTES) {
        return -1;
    }
    if (n > 0) {
        d->v = malloc(n * sizeof *d->v);
        if (d->v == NULL) {
            return -1;
        }
        d->cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (read_origin(r, &d->v[i]) != 0) {
            rg_dedup_free(d);
            return -1;
        }
        d->n++;
        if (i > 0 && d->v[i].origin <= d->v[i - 1].origin) {
            rg_dedup_free(d);
            return -1;
        }
    }
    return 0;
}
