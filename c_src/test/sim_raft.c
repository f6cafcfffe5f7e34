/* sim_raft: regent's real FSM under libraft's raft_fixture, checked against
 * an independent model.
 *
 * raft_fixture (libraft 0.22) runs 3 or 5 raft servers in one process on a
 * simulated clock and network; each event (a tick, a message, a disk write)
 * is one raft_fixture_step, picked deterministically. Every server runs
 * regentd's own FSM (rg_fsm_apply / rg_fsm_snapshot / rg_fsm_restore behind
 * a struct raft_fsm v2, wired as node.c wires it, with regentd's timeouts
 * and pre-vote) and every log entry is built with the real codec
 * (rg_entry_begin, rg_op_encode with origin, rg_entry_finish): one entry =
 * a batch of ops on 8 hot names held by pids of 4 fake nodes, so conflicts
 * are the common case. The ops are all of cmd.h's: on the unique names
 * (REGISTER, REGISTER_NEW, UNREGISTER, UNREGISTER_IF_OWNER, SET_META,
 * SET_META_IF_OWNER, READ; SET_META_IF_VERSION at a version the committed
 * state suggests, right or stale, READ_ENTRY, and REGISTER_MANY and
 * UNREGISTER_MANY of 1..4 names, a name sometimes twice), on the
 * duplicate-key table (GROUP_ADD,
 * GROUP_DEL of one value or all, keyed by the same 8 names and any pid),
 * on the registry metadata (META_PUT always or if absent, META_DEL, keyed
 * by the same names), and PURGE_NODE, which clears names and group
 * entries. Some ops of a batch are copies of an earlier batch's
 * op (same origin and ref: a member re-sending after a RETRY or a leader
 * change) and some are SETTLEs, so the FSM's de-duplication is exercised:
 * copies commit before, after or without their original, and settled refs
 * can apply again. A seeded schedule submits batches through raft_apply
 * to whichever server is leader and injects faults: partitions, one-way
 * cuts (saturate), kills and revives, network and disk latency, elections
 * started on a chosen server, depositions, and role changes (the leader
 * makes a voter a standby or a standby a voter, with the preconditions of
 * regent's members, see act_role). Each server's disk appends pass through
 * raft_fixes.c as in node.c. Snapshot thresholds are tiny
 * (4..32 entries), so snapshots, InstallSnapshot and restore happen all the
 * time.
 *
 * Checks, made as events happen (so every step is covered):
 *  (a) log agreement: the bytes of the first entry applied at an index are
 *      kept; every later apply at that index, on any server, must be
 *      byte-identical, and no server may step over a command index.
 *  (b) a reference model (the arrays below, not table.c nor group.c, and
 *      bitsets for the de-duplication set, not dedup.c) applied in
 *      log-index order predicts every reply each FSM emits for the ops it
 *      originated (byte for byte: READ_ENTRY's and a refused
 *      SET_META_IF_VERSION's entry, REGISTER_MANY's answer per name), its
 *      three tables (names with each name's version and the FSM's last
 *      version given, groups with each value list in order, metadata) and
 *      de-duplication set after every entry and every restore,
 *      the exact bytes of every snapshot taken (at the index libraft labels
 *      it with) and restored, and the change stream the member mirrors into
 *      ETS. A raft_apply acknowledged with status 0 must sit at the index
 *      where the model saw its batch commit. At most one leader per term.
 *      No server holds a pending configuration change at or below its last
 *      applied index (one that can never settle; raft_fixes.h).
 *  (c) every QUIESCE_EVERY steps and at the end: heal everything, step
 *      until every server has applied the leader's whole log, then every
 *      server's rg_fsm_snapshot must be byte-identical and be the model's
 *      expected snapshot.
 *
 * libraft 0.22.1 and its fixture have bugs this schedule hits within
 * seconds (crashes, leaks, a stalled follower, mislabelled snapshots); the
 * section "workarounds" steers around them, each with its reason, and
 * sim_fsm_snapshot refuses a snapshot whose label would lie. Commit index
 * regressions (a libraft bug) are counted, not failed: the guard keeps
 * them harmless.
 *
 * Usage: sim_raft [--seed N] [--seeds K] [--steps S] [--servers 3|5] [-v]
 * Seeds run are N..N+K-1; without --servers odd seeds use 3 servers, even
 * ones 5. The first seed is run twice and must give the same trace digest.
 * Across processes a trace can differ, rarely: libraft reads a union member
 * of the wrong state (recv_request_vote_result.c reads in_pre_vote while a
 * follower: a byte of a heap pointer, so ASLR leaks in). For an exact
 * replay run under `setarch -R`. -v prints the schedule and libraft's
 * info-level trace.
 * Hidden: --inject-bug skip|corrupt makes one server drop an op / apply a
 * corrupted entry, to prove the checks fire (the `sim` make target expects
 * exit 3 then); --raw-fixture drops the workarounds, --no-snapshot-guard
 * the guard, --no-raft-fixes regentd's libraft corrections and
 * --no-reanchor only the AppendEntries re-anchoring, to show what they
 * avoid.
 * Exit: 0 ok, 2 bad usage or setup, 3 a check failed.
 *
 * Memory: the sim owns its batches (with their encoded bytes), the per-index
 * log records, the model's de-duplication bitsets and encoded sections
 * (sim.dsecs) and the FSMs; libraft owns each submitted entry buffer; a
 * struct pending is freed by its raft_apply callback, which libraft fires
 * at the latest from raft_fixture_close. */
#include <raft.h>
#include <raft/fixture.h>

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include "buf.h"
#include "canon.h"
#include "cmd.h"
#include "fsm.h"
#include "group.h"
#include "limits.h"
#include "raft_fixes.h"

#define MAX_SERVERS 5
#define N_NAMES 8
#define N_NODES 4
#define PIDS_PER_NODE 3
#define N_PIDS (N_NODES * PIDS_PER_NODE)
#define N_META 3
#define MAX_OPS 6
#define MANY_ITEMS 4 /* names per REGISTER_MANY / UNREGISTER_MANY */
#define REF_STRIDE 16 /* fresh op ref = (batch id + 1) * REF_STRIDE + op number */

/* Ops after the first of a batch: per mille re-sent copies of an op of the
 * last RESEND_WINDOW batches, SETTLEs (below a ref of the last
 * SETTLE_WINDOW batches), and fresh ops with ref 0 (never answered). */
#define RESEND_PER_MILLE 120
#define RESEND_WINDOW 64
#define SETTLE_PER_MILLE 60
#define SETTLE_WINDOW 48
#define REF0_PER_MILLE 20

/* Restated from docs/protocol.md, not taken from fsm.c / dedup.c. */
#define SNAPSHOT_MAGIC 0x52475334u /* "RGS4" */
#define MODEL_MAX_REFS (1u << 20)  /* per origin, then ... */
#define MODEL_DROP (1u << 16)      /* ... its smallest refs go */
#define MODEL_ORIGINS (MAX_SERVERS + 2) /* ops' origins are 1..n+1 */
_Static_assert(MODEL_MAX_REFS == RG_DEDUP_MAX_REFS &&
                   MODEL_DROP == RG_DEDUP_DROP,
               "docs/protocol.md and dedup.h disagree on the cap");

/* regentd's tuning (node.c): the fixture runs the timing regentd runs. */
#define ELECTION_TIMEOUT_MS 150
#define HEARTBEAT_MS 50
#define MAX_INFLIGHT_ENTRIES 4096

#define DISK_MS_DEFAULT 10 /* the fixture's default disk latency */
#define DISK_MS_MAX 40

#define QUIESCE_EVERY 2500   /* steps between heal-and-compare phases */
#define QUIESCE_MAX_MS 60000 /* simulated time allowed to converge */

#define EXIT_USAGE 2
#define EXIT_VIOLATION 3

/* The model keeps at most GROUP_CAP values per (name, pid) (the FSM's cap,
 * 1 MiB, is out of reach). The generator turns a GROUP_ADD into a
 * GROUP_DEL once the committed list has GROUP_LONG values, so only adds
 * in flight grow a list past that; a run that still reaches the cap stops
 * as a setup error. */
#define GROUP_CAP 48
#define GROUP_LONG 6

enum inject { INJECT_NONE, INJECT_SKIP, INJECT_CORRUPT };

struct options {
    uint64_t seed;
    unsigned seeds;
    unsigned long steps;
    unsigned servers; /* 0: by seed parity */
    bool verbose;
    bool raw_fixture; /* no workarounds for fixture/libraft bugs */
    bool no_guard;    /* snapshot even when libraft's commit index lies */
    bool no_raft_fixes; /* without raft_fixes.c's corrections */
    bool no_reanchor;   /* without its AppendEntries re-anchoring only */
    enum inject inject;
};

/* ---- random numbers ------------------------------------------------------ */

/* xorshift64*, one per run: the whole schedule derives from the seed. */
struct rng {
    uint64_t s;
};

static void rng_seed(struct rng *r, uint64_t seed)
{
    /* splitmix64 spreads neighbouring seeds apart; the state is never 0. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static unsigned rng_below(struct rng *r, unsigned n)
{
    return n ? (unsigned)(rng_next(r) % n) : 0;
}

static bool rng_per_mille(struct rng *r, unsigned p)
{
    return rng_below(r, 1000) < p;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return h * 0x100000001B3ULL;
}

/* ---- the world: names, pids, metadata ------------------------------------ */

struct term {
    uint8_t b[48];
    uint32_t n;
};

/* Canonical bytes of every name and pid the schedule uses; fixed per run. */
struct world {
    struct term names[N_NAMES];
    struct term pids[N_PIDS];
    char nodes[N_NODES][12];
    int name_order[N_NAMES]; /* names sorted by their bytes (snapshot order) */
    /* (name, pid) pairs, as name * N_PIDS + pid, sorted by the group
     * table's key: the name's bytes then the pid's (group.h). */
    int pair_order[N_NAMES * N_PIDS];
};

static const char *const metas[N_META] = {"", "m1", "m2"};

static unsigned pid_node(int p)
{
    return (unsigned)p / PIDS_PER_NODE;
}

/* The last pid of every node is of its second incarnation (creation 2), so
 * PURGE_NODE by creation has something to tell apart. */
static uint32_t pid_creation(int p)
{
    return p % PIDS_PER_NODE == PIDS_PER_NODE - 1 ? 2 : 1;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    return p;
}

/* Grows array p of *cap elements of `size` bytes to at least `need`
 * elements, zeroing the new ones; returns it (the old p is gone). */
static void *grow_zeroed(void *p, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    uint8_t *q = realloc(p, n * size);
    if (q == NULL) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    memset(q + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return q;
}

/* Byte order, a prefix first: the order of snapshot rows. */
static bool term_less(const struct term *a, const struct term *b)
{
    uint32_t m = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->b, b->b, m);
    return c < 0 || (c == 0 && a->n < b->n);
}

static void sort_names(struct world *w)
{
    for (int i = 0; i < N_NAMES; i++) {
        int j = i;
        for (; j > 0 && term_less(&w->names[i],
                                  &w->names[w->name_order[j - 1]]);
             j--) {
            w->name_order[j] = w->name_order[j - 1];
        }
        w->name_order[j] = i;
    }
}

/* The group table's key of pair i (name * N_PIDS + pid). */
static struct term pair_key(const struct world *w, int i)
{
    const struct term *name = &w->names[i / N_PIDS], *pid = &w->pids[i % N_PIDS];
    struct term t;
    if (name->n + pid->n > sizeof t.b) {
        fprintf(stderr, "sim_raft: a pair key is too long\n");
        exit(EXIT_USAGE);
    }
    memcpy(t.b, name->b, name->n);
    memcpy(t.b + name->n, pid->b, pid->n);
    t.n = name->n + pid->n;
    return t;
}

static void sort_pairs(struct world *w)
{
    for (int i = 0; i < N_NAMES * N_PIDS; i++) {
        struct term key = pair_key(w, i);
        int j = i;
        for (; j > 0; j--) {
            struct term prev = pair_key(w, w->pair_order[j - 1]);
            if (!term_less(&key, &prev)) {
                break;
            }
            w->pair_order[j] = w->pair_order[j - 1];
        }
        w->pair_order[j] = i;
    }
}

static void term_from(struct term *t, struct rg_wbuf *w)
{
    if (w->oom || w->len > sizeof t->b) {
        fprintf(stderr, "sim_raft: cannot build a term\n");
        exit(EXIT_USAGE);
    }
    memcpy(t->b, w->data, w->len);
    t->n = (uint32_t)w->len;
    rg_wbuf_reset(w);
}

/* Names {hot, I}; pids <node.id.0> as NEW_PID_EXT. Both checked by the real
 * canonical-form checks, so the FSM will accept them. */
static void world_init(struct world *w)
{
    struct rg_wbuf b;
    struct rg_pid_view v;
    rg_wbuf_init(&b);
    for (unsigned k = 0; k < N_NODES; k++) {
        snprintf(w->nodes[k], sizeof w->nodes[k], "n%u@sim", k);
    }
    for (unsigned i = 0; i < N_NAMES; i++) {
        rg_wbuf_u8(&b, RG_ETF_SMALL_TUPLE);
        rg_wbuf_u8(&b, 2);
        rg_wbuf_u8(&b, RG_ETF_SMALL_ATOM_UTF8);
        rg_wbuf_u8(&b, 3);
        rg_wbuf_put(&b, "hot", 3);
        rg_wbuf_u8(&b, RG_ETF_SMALL_INTEGER);
        rg_wbuf_u8(&b, (uint8_t)i);
        term_from(&w->names[i], &b);
    }
    for (int p = 0; p < N_PIDS; p++) {
        const char *node = w->nodes[pid_node(p)];
        rg_wbuf_u8(&b, RG_ETF_NEW_PID);
        rg_wbuf_u8(&b, RG_ETF_SMALL_ATOM_UTF8);
        rg_wbuf_u8(&b, (uint8_t)strlen(node));
        rg_wbuf_put(&b, node, strlen(node));
        rg_wbuf_u32(&b, (uint32_t)p + 100);
        rg_wbuf_u32(&b, 0);
        rg_wbuf_u32(&b, pid_creation(p));
        term_from(&w->pids[p], &b);
        if (!rg_canon_pid(w->pids[p].b, w->pids[p].n, &v)) {
            fprintf(stderr, "sim_raft: pid %d is not canonical\n", p);
            exit(EXIT_USAGE);
        }
    }
    for (unsigned i = 0; i < N_NAMES; i++) {
        if (!rg_canon_check(w->names[i].b, w->names[i].n)) {
            fprintf(stderr, "sim_raft: name %u is not canonical\n", i);
            exit(EXIT_USAGE);
        }
    }
    sort_names(w);
    sort_pairs(w);
    rg_wbuf_free(&b);
}

static bool same(const uint8_t *p, size_t n, const uint8_t *q, size_t m)
{
    return n == m && (n == 0 || memcmp(p, q, n) == 0);
}

static int find_name(const struct world *w, const uint8_t *p, size_t n)
{
    for (int i = 0; i < N_NAMES; i++) {
        if (same(p, n, w->names[i].b, w->names[i].n)) {
            return i;
        }
    }
    return -1;
}

static int find_pid(const struct world *w, const uint8_t *p, size_t n)
{
    for (int i = 0; i < N_PIDS; i++) {
        if (same(p, n, w->pids[i].b, w->pids[i].n)) {
            return i;
        }
    }
    return -1;
}

static int find_meta(const uint8_t *p, size_t n)
{
    for (int i = 0; i < N_META; i++) {
        if (same(p, n, (const uint8_t *)metas[i], strlen(metas[i]))) {
            return i;
        }
    }
    return -1;
}

/* ---- the reference model ------------------------------------------------- */

/* The whole registry: per name, the holding pid (-1: free), its meta and
 * its version (the FSM's write count when it was last put, fsm.h) with
 * the last version given, seq; per (name, pid) of the duplicate-key
 * table, its values in order (meta indexes; no entry when there are none);
 * per name as a metadata key, its value (a meta index, -1: none). */
struct mstate {
    int8_t holder[N_NAMES];
    int8_t meta[N_NAMES];
    uint64_t version[N_NAMES];
    uint64_t seq;
    uint8_t glen[N_NAMES][N_PIDS];
    int8_t gval[N_NAMES][N_PIDS][GROUP_CAP];
    int8_t rmeta[N_NAMES];
};

/* One name of a REGISTER_MANY (pid, meta, replace) or UNREGISTER_MANY. */
struct many_item {
    uint8_t name;
    int8_t pid;
    int8_t meta;
    int8_t replace;
};

/* One op, in model terms (indexes into the world). */
struct plan_op {
    uint8_t kind;
    uint8_t name;
    int8_t pid;     /* REGISTER(_NEW), UNREGISTER_IF_OWNER, SET_META_IF_OWNER,
                       GROUP_ADD, GROUP_DEL */
    int8_t meta;    /* REGISTER(_NEW), SET_META(_IF_OWNER), the value of
                       GROUP_ADD, GROUP_DEL and META_PUT */
    int8_t replace; /* REGISTER(_NEW): -1 or the pid to replace */
    bool flag;      /* GROUP_DEL: all values; META_PUT: only if absent */
    uint8_t node;   /* PURGE_NODE */
    bool any;       /* PURGE_NODE: any creation */
    uint32_t creation;
    raft_id origin; /* the daemon that must answer */
    uint64_t ref;   /* 0: nobody waits (SETTLE always) */
    uint64_t below; /* SETTLE */
    uint64_t version; /* SET_META_IF_VERSION */
    uint8_t n_items;  /* *_MANY */
    struct many_item items[MANY_ITEMS];
};

/* The payload of a reply: a pid (or nothing), an entry ([blob pid][u64
 * version][meta]: READ_ENTRY, SET_META_IF_VERSION's NO), or REGISTER_MANY's
 * answers ([u8 result][blob holder] per name). */
enum shape { SHAPE_PID = 0, SHAPE_ENTRY, SHAPE_ANSWERS };

/* What the model says an op returns; payload: a pid index or -1 (for an
 * entry, its holder, with version and meta). */
struct expect {
    uint8_t result;
    int8_t payload;
    bool answered; /* the origin's FSM replies */
    bool skipped;  /* a copy of an applied write: no effect */
    bool changed;  /* the op changed the registry (a version counts) */
    uint8_t shape;
    int8_t meta;       /* SHAPE_ENTRY */
    uint64_t version;  /* SHAPE_ENTRY */
    uint8_t n_items;   /* SHAPE_ANSWERS */
    uint8_t item_result[MANY_ITEMS];
    int8_t item_holder[MANY_ITEMS];
};

/* The de-duplication set, one bitset per origin (origins are small): bit r
 * of o[origin] says (origin, r) is remembered. Deliberately not dedup.c's
 * sorted arrays. No bit below word lo is set. */
struct mbits {
    uint64_t *w; /* owned */
    size_t words;
    size_t lo;
    uint32_t count;
};

struct mdedup {
    struct mbits o[MODEL_ORIGINS];
};

static bool mdedup_has(const struct mdedup *d, uint64_t origin, uint64_t ref)
{
    const struct mbits *b = &d->o[origin];
    return ref / 64 < b->words && (b->w[ref / 64] >> (ref % 64) & 1) != 0;
}

/* Clears the k lowest set bits. */
static void mbits_drop_lowest(struct mbits *b, uint32_t k)
{
    for (size_t i = b->lo; i < b->words && k > 0; i++) {
        while (b->w[i] != 0 && k > 0) {
            b->w[i] &= b->w[i] - 1;
            b->count--;
            k--;
        }
    }
}

static void mdedup_put(struct mdedup *d, uint64_t origin, uint64_t ref)
{
    struct mbits *b = &d->o[origin];
    size_t i = ref / 64;
    if (i >= b->words) {
        b->w = grow_zeroed(b->w, &b->words, i + 1, sizeof *b->w);
    }
    b->w[i] |= 1ULL << (ref % 64);
    b->count++;
    b->lo = i < b->lo ? i : b->lo;
    if (b->count > MODEL_MAX_REFS) {
        mbits_drop_lowest(b, MODEL_DROP);
    }
}

/* Clears every bit below `below`. */
static void mdedup_settle(struct mdedup *d, uint64_t origin, uint64_t below)
{
    struct mbits *b = &d->o[origin];
    uint64_t end = below / 64;
    for (size_t i = b->lo; i < b->words && i < end; i++) {
        b->count -= (uint32_t)__builtin_popcountll(b->w[i]);
        b->w[i] = 0;
    }
    if (end < b->words) {
        uint64_t low = (1ULL << (below % 64)) - 1;
        b->count -= (uint32_t)__builtin_popcountll(b->w[end] & low);
        b->w[end] &= ~low;
    }
    if (end > b->lo) {
        b->lo = end < b->words ? (size_t)end : b->words;
    }
}

static uint64_t mdedup_total(const struct mdedup *d)
{
    uint64_t n = 0;
    for (int o = 0; o < MODEL_ORIGINS; o++) {
        n += d->o[o].count;
    }
    return n;
}

/* The snapshot section docs/protocol.md specifies: [u32 n_origins], then
 * per origin ascending [u64 origin][u32 n][u64 ref]*n ascending. */
static void mdedup_encode(const struct mdedup *d, struct rg_wbuf *w)
{
    uint32_t n = 0;
    for (int o = 0; o < MODEL_ORIGINS; o++) {
        n += d->o[o].count > 0;
    }
    rg_wbuf_u32(w, n);
    for (int o = 0; o < MODEL_ORIGINS; o++) {
        const struct mbits *b = &d->o[o];
        if (b->count == 0) {
            continue;
        }
        rg_wbuf_u64(w, (uint64_t)o);
        rg_wbuf_u32(w, b->count);
        for (size_t i = b->lo; i < b->words; i++) {
            for (uint64_t v = b->w[i]; v != 0; v &= v - 1) {
                rg_wbuf_u64(w, i * 64 + (uint64_t)__builtin_ctzll(v));
            }
        }
    }
}

static void mdedup_free(struct mdedup *d)
{
    for (int o = 0; o < MODEL_ORIGINS; o++) {
        free(d->o[o].w);
    }
}

static void mstate_init(struct mstate *m)
{
    memset(m, 0, sizeof *m);
    memset(m->holder, -1, sizeof m->holder);
    memset(m->rmeta, -1, sizeof m->rmeta);
}

/* (name, pid)'s value lists are equal in both. */
static bool mgroup_eq(const struct mstate *a, const struct mstate *b, int i,
                      int p)
{
    return a->glen[i][p] == b->glen[i][p] &&
           memcmp(a->gval[i][p], b->gval[i][p], a->glen[i][p]) == 0;
}

static bool mstate_eq(const struct mstate *a, const struct mstate *b)
{
    for (int i = 0; i < N_NAMES; i++) {
        if (a->holder[i] != b->holder[i] ||
            (a->holder[i] >= 0 && a->meta[i] != b->meta[i]) ||
            a->rmeta[i] != b->rmeta[i]) {
            return false;
        }
        for (int p = 0; p < N_PIDS; p++) {
            if (!mgroup_eq(a, b, i, p)) {
                return false;
            }
        }
    }
    return true;
}

/* A put of a name: its holder and meta, and the next version (every put
 * takes one, so none is ever given twice). */
static void mput(struct mstate *m, int name, int pid, int meta)
{
    m->holder[name] = (int8_t)pid;
    m->meta[name] = (int8_t)meta;
    m->version[name] = ++m->seq;
}

/* Free, or ours already, or held by the pid we replace: yes. Same pid with
 * empty meta keeps the old meta, and the same meta is no put either.
 * Otherwise no, with the holder. REGISTER_NEW (Registry's register/3) is
 * no, with the holder, when the pid holds the name already. */
static struct expect model_register(struct mstate *m, const struct plan_op *op)
{
    struct expect e = {.result = RG_RES_OK, .payload = -1};
    int h = m->holder[op->name];
    if (h == op->pid && op->kind == RG_OP_REGISTER_NEW) {
        e.result = RG_RES_NO;
        e.payload = (int8_t)h;
    } else if (h == op->pid) {
        if (op->meta != 0 && op->meta != m->meta[op->name]) {
            mput(m, op->name, op->pid, op->meta);
        }
    } else if (h < 0 || h == op->replace) {
        mput(m, op->name, op->pid, op->meta);
    } else {
        e.result = RG_RES_NO;
        e.payload = (int8_t)h;
    }
    return e;
}

/* The entry of a held name, as READ_ENTRY and a refused
 * SET_META_IF_VERSION give it. */
static void expect_entry(struct expect *e, const struct mstate *m, int name)
{
    e->shape = SHAPE_ENTRY;
    e->payload = m->holder[name];
    e->meta = m->meta[name];
    e->version = m->version[name];
}

/* SET_META on a held name (a put even with the same meta);
 * SET_META_IF_OWNER only if op's pid holds it; SET_META_IF_VERSION only if
 * op's pid holds it at op's version, else NO with the entry. */
static void model_set_meta(struct mstate *m, const struct plan_op *op,
                           struct expect *e)
{
    int h = m->holder[op->name];
    if (h < 0 || (op->kind == RG_OP_SET_META_IF_OWNER && h != op->pid)) {
        e->result = RG_RES_NOT_FOUND;
        return;
    }
    if (op->kind == RG_OP_SET_META_IF_VERSION &&
        (h != op->pid || m->version[op->name] != op->version)) {
        e->result = RG_RES_NO;
        expect_entry(e, m, op->name);
        return;
    }
    mput(m, op->name, h, op->meta);
}

/* REGISTER_MANY: each name as a REGISTER, in order; OK with the answers. */
static void model_register_many(struct mstate *m, const struct plan_op *op,
                                struct expect *e)
{
    e->shape = SHAPE_ANSWERS;
    e->n_items = op->n_items;
    for (uint8_t i = 0; i < op->n_items; i++) {
        struct plan_op one = {.kind = RG_OP_REGISTER,
                              .name = op->items[i].name,
                              .pid = op->items[i].pid,
                              .meta = op->items[i].meta,
                              .replace = op->items[i].replace};
        struct expect r = model_register(m, &one);
        e->item_result[i] = r.result;
        e->item_holder[i] = r.payload;
    }
}

static bool pid_purged(int p, const struct plan_op *op)
{
    return pid_node(p) == op->node && (op->any || pid_creation(p) == op->creation);
}

static void model_purge(struct mstate *m, const struct plan_op *op)
{
    for (int i = 0; i < N_NAMES; i++) {
        int h = m->holder[i];
        if (h >= 0 && pid_purged(h, op)) {
            m->holder[i] = -1;
        }
        for (int p = 0; p < N_PIDS; p++) {
            if (pid_purged(p, op)) {
                m->glen[i][p] = 0;
            }
        }
    }
}

/* Appends value to (name, pid)'s list; false at the model's cap. */
static bool mgroup_add(struct mstate *m, int name, int pid, int8_t value)
{
    uint8_t *len = &m->glen[name][pid];
    if (*len == GROUP_CAP) {
        return false;
    }
    m->gval[name][pid][(*len)++] = value;
    return true;
}

/* Drops (name, pid)'s values equal to value, or all of them. */
static void mgroup_del(struct mstate *m, int name, int pid, int8_t value,
                       bool all)
{
    uint8_t *len = &m->glen[name][pid], kept = 0;
    int8_t *v = m->gval[name][pid];
    for (uint8_t k = 0; k < *len && !all; k++) {
        if (v[k] != value) {
            v[kept++] = v[k];
        }
    }
    *len = kept;
}

static void model_group_add(struct mstate *m, const struct plan_op *op)
{
    if (!mgroup_add(m, op->name, op->pid, op->meta)) {
        fprintf(stderr, "sim_raft: a value list of the model passed %d values "
                        "(GROUP_CAP)\n", GROUP_CAP);
        exit(EXIT_USAGE);
    }
}

/* META_PUT; with if_absent (flag) only when the key has no value. */
static void model_meta_put(struct mstate *m, const struct plan_op *op)
{
    if (!op->flag || m->rmeta[op->name] < 0) {
        m->rmeta[op->name] = op->meta;
    }
}

static struct expect model_apply_kind(struct mstate *m,
                                      const struct plan_op *op)
{
    struct mstate before = *m;
    struct expect e = {.result = RG_RES_OK, .payload = -1};
    int8_t *h = &m->holder[op->name];
    switch (op->kind) {
    case RG_OP_REGISTER:
    case RG_OP_REGISTER_NEW:
        e = model_register(m, op);
        break;
    case RG_OP_UNREGISTER:
        *h = -1;
        break;
    case RG_OP_UNREGISTER_IF_OWNER:
        if (*h == op->pid) {
            *h = -1;
        }
        break;
    case RG_OP_SET_META:
    case RG_OP_SET_META_IF_OWNER:
    case RG_OP_SET_META_IF_VERSION:
        model_set_meta(m, op, &e);
        break;
    case RG_OP_READ_ENTRY:
        if (*h >= 0) {
            expect_entry(&e, m, op->name);
        }
        break;
    case RG_OP_REGISTER_MANY:
        model_register_many(m, op, &e);
        break;
    case RG_OP_UNREGISTER_MANY:
        for (uint8_t i = 0; i < op->n_items; i++) {
            m->holder[op->items[i].name] = -1;
        }
        break;
    case RG_OP_GROUP_ADD:
        model_group_add(m, op);
        break;
    case RG_OP_GROUP_DEL:
        mgroup_del(m, op->name, op->pid, op->meta, op->flag);
        break;
    case RG_OP_META_PUT:
        model_meta_put(m, op);
        break;
    case RG_OP_META_DEL:
        m->rmeta[op->name] = -1;
        break;
    case RG_OP_PURGE_NODE:
        model_purge(m, op);
        break;
    default: /* READ */
        e.payload = *h;
        break;
    }
    e.changed = !mstate_eq(&before, m) || before.seq != m->seq;
    e.answered = op->ref != 0;
    return e;
}

/* docs/protocol.md: every op but READ, READ_ENTRY, PURGE_NODE and SETTLE
 * is a write. */
static bool is_write(uint8_t kind)
{
    return kind == RG_OP_REGISTER || kind == RG_OP_UNREGISTER ||
           kind == RG_OP_UNREGISTER_IF_OWNER || kind == RG_OP_SET_META ||
           kind == RG_OP_REGISTER_NEW || kind == RG_OP_SET_META_IF_OWNER ||
           kind == RG_OP_GROUP_ADD || kind == RG_OP_GROUP_DEL ||
           kind == RG_OP_META_PUT || kind == RG_OP_META_DEL ||
           kind == RG_OP_SET_META_IF_VERSION || kind == RG_OP_REGISTER_MANY ||
           kind == RG_OP_UNREGISTER_MANY;
}

/* A write with a ref applies once per (origin, ref) until SETTLE forgets
 * the ref; a copy is skipped without reply. */
static struct expect model_apply(struct mstate *m, struct mdedup *d,
                                 const struct plan_op *op)
{
    struct expect e = {.result = RG_RES_OK, .payload = -1};
    bool tracked = is_write(op->kind) && op->ref != 0;
    if (op->kind == RG_OP_SETTLE) {
        mdedup_settle(d, op->origin, op->below);
        return e;
    }
    if (tracked && mdedup_has(d, op->origin, op->ref)) {
        e.skipped = true;
        return e;
    }
    e = model_apply_kind(m, op);
    if (tracked) {
        mdedup_put(d, op->origin, op->ref);
    }
    return e;
}

/* ---- descriptions for failure messages ----------------------------------- */

static const char *kind_name(uint8_t k)
{
    static const char *const names[] = {
        "?",        "REGISTER",          "UNREGISTER", "UNREGISTER_IF_OWNER",
        "SET_META", "PURGE_NODE",        "READ",       "SETTLE",
        "REGISTER_NEW", "SET_META_IF_OWNER", "GROUP_ADD", "GROUP_DEL",
        "META_PUT", "META_DEL", "SET_META_IF_VERSION", "READ_ENTRY",
        "REGISTER_MANY", "UNREGISTER_MANY"};
    return k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static const char *result_name(uint8_t r)
{
    static const char *const names[] = {"OK", "NO", "NOT_FOUND", "RETRY",
                                        "BAD"};
    return r < sizeof names / sizeof names[0] ? names[r] : "?";
}

static void describe_pid(char *out, size_t n, int p)
{
    if (p < 0) {
        snprintf(out, n, "%s", p == -1 ? "none" : "unknown-pid");
    } else {
        snprintf(out, n, "p%d(n%u,c%" PRIu32 ")", p, pid_node(p),
                 pid_creation(p));
    }
}

static void describe_op(char *out, size_t n, const struct plan_op *op)
{
    char pid[32], rep[32];
    describe_pid(pid, sizeof pid, op->pid);
    describe_pid(rep, sizeof rep, op->replace);
    if (op->kind == RG_OP_PURGE_NODE) {
        snprintf(out, n, "PURGE_NODE n%u %s%" PRIu32 " origin %" PRIu64
                 " ref %" PRIu64,
                 op->node, op->any ? "any creation, not " : "creation ",
                 op->creation, (uint64_t)op->origin, op->ref);
        return;
    }
    if (op->kind == RG_OP_SETTLE) {
        snprintf(out, n, "SETTLE below %" PRIu64 " origin %" PRIu64,
                 op->below, (uint64_t)op->origin);
        return;
    }
    if (op->kind == RG_OP_REGISTER_MANY || op->kind == RG_OP_UNREGISTER_MANY) {
        size_t at = (size_t)snprintf(out, n, "%s origin %" PRIu64 " ref %" PRIu64
                                             " of",
                                     kind_name(op->kind), (uint64_t)op->origin,
                                     op->ref);
        for (uint8_t i = 0; i < op->n_items && at < n; i++) {
            const struct many_item *it = &op->items[i];
            describe_pid(pid, sizeof pid, it->pid);
            describe_pid(rep, sizeof rep, it->replace);
            at += (size_t)(op->kind == RG_OP_UNREGISTER_MANY
                               ? snprintf(out + at, n - at, " hot/%u", it->name)
                               : snprintf(out + at, n - at,
                                          " (hot/%u pid %s meta \"%s\" replace %s)",
                                          it->name, pid, metas[it->meta], rep));
        }
        return;
    }
    snprintf(out, n, "%s hot/%u pid %s meta \"%s\" replace %s%s version %" PRIu64
             " origin %" PRIu64 " ref %" PRIu64,
             kind_name(op->kind), op->name, pid, metas[op->meta], rep,
             op->flag ? (op->kind == RG_OP_GROUP_DEL ? " all" : " if_absent") : "",
             op->version, (uint64_t)op->origin, op->ref);
}

/* ---- batches and per-index records --------------------------------------- */

/* A submitted log entry: its ops, what the model said when it committed,
 * and its exact encoded bytes (owned). */
struct batch {
    uint32_t n;
    struct plan_op ops[MAX_OPS];
    struct expect exp[MAX_OPS];
    uint8_t *bytes;
    size_t len;
    raft_index index; /* where it committed; 0: not (yet) */
};

enum rec_kind { REC_UNKNOWN = 0, REC_OTHER, REC_COMMAND };

/* What the cluster agreed on at one raft index: a command (which batch) or
 * something else (bootstrap configuration, barrier), and the model's state
 * once everything up to this index is applied: the registry, and the
 * de-duplication set as its encoded snapshot section (an index into
 * sim.dsecs, shared by consecutive records while it does not change). */
struct rec {
    uint8_t kind;
    uint32_t batch;
    uint32_t dsec;
    struct mstate after;
};

/* An encoded de-duplication section (owned). */
struct dsec {
    uint8_t *bytes;
    size_t len;
};

typedef int (*io_append_fn)(struct raft_io *io, struct raft_io_append *req,
                            const struct raft_entry entries[], unsigned n,
                            raft_io_append_cb cb);
typedef int (*io_start_fn)(struct raft_io *io, unsigned msecs,
                           raft_io_tick_cb tick, raft_io_recv_cb recv);
typedef int (*io_truncate_fn)(struct raft_io *io, raft_index index);
typedef int (*io_send_fn)(struct raft_io *io, struct raft_io_send *req,
                          const struct raft_message *msg, raft_io_send_cb cb);
typedef int (*io_snapshot_put_fn)(struct raft_io *io, unsigned trailing,
                                  struct raft_io_snapshot_put *req,
                                  const struct raft_snapshot *snapshot,
                                  raft_io_snapshot_put_cb cb);

struct server {
    struct sim *sim;
    unsigned i;
    raft_id id;
    struct rg_fsm fsm;
    struct raft_fsm iface;
    struct raft_tracer tracer; /* -v only */

    /* The checks' view of this server. */
    raft_index last_seen;   /* last index this FSM reflects */
    raft_index last_commit; /* at the previous step */
    struct mstate mirror;   /* the change stream replayed, as in ETS */

    /* The workarounds: the fixture's raft_io methods they wrap, and what
     * they track. */
    io_append_fn io_append;
    io_truncate_fn io_truncate;
    io_snapshot_put_fn io_snapshot_put;
    bool installing;        /* an InstallSnapshot reached the fixture's disk */
    raft_time appends_done; /* completion time of its last append */
    bool snapshot_writing; /* a snapshot_put in flight (raft_fixes.h) */
    rg_snapshot_get_fn io_snapshot_get;
    io_send_fn io_send;
    struct rg_loaded_snapshot loaded; /* the snapshot being sent */
    io_start_fn io_start;
    raft_io_recv_cb recv; /* libraft's */
};

/* The fault plan the network must reflect (see sync_net). */
struct net {
    bool disc[MAX_SERVERS][MAX_SERVERS]; /* i cannot send to j */
    bool cut[MAX_SERVERS][MAX_SERVERS];  /* i's messages to j are dropped */
    bool dead[MAX_SERVERS];
};

struct stats {
    unsigned long submitted, committed, acked, unacked, replies_no;
    unsigned long resent, copies_skipped, settles, dedup_max;
    unsigned long group_rows_max, group_values_max, meta_rows_max;
    unsigned long snapshots, restores, faults, elections, quiesces;
    unsigned long commit_regressions, snapshots_refused;
    unsigned long cas_ok, cas_no, many_ops, versions_max;
    unsigned long role_changes, config_fixes, installs_dropped, reanchored,
        terms_fixed;
    raft_time sim_ms;
    uint64_t digest; /* of every seed's trace */
};

struct sim {
    struct raft_fixture fx; /* first: the step hook gets only &fx */
    const struct options *opt;
    uint64_t seed;
    unsigned n;
    unsigned snap_threshold, snap_trailing;
    struct rng rng;
    struct world world;
    struct server srv[MAX_SERVERS];
    struct batch *batches;
    size_t n_batches, cap_batches;
    struct rec *recs; /* by raft index */
    size_t cap_recs;
    raft_index model_index; /* highest index the model has accounted for */
    struct mstate model;    /* state at model_index */
    struct mstate guess;    /* the names as the model, then the batches
                               planned since it last moved (plan_cas) */
    struct mdedup mdedup;   /* de-duplication set at model_index */
    struct dsec *dsecs;     /* every encoded set a record refers to */
    size_t n_dsecs, cap_dsecs;
    raft_id *term_leader;   /* by term: who led it */
    size_t cap_terms;
    struct net net;
    unsigned disk_ms[MAX_SERVERS];
    raft_time next_draw; /* of election timeouts */
    unsigned long steps; /* fixture steps, counted by the hook */
    uint64_t digest;
    bool injected;
    bool failed;
    unsigned long fail_step;
    char fail_msg[600];
    struct stats st;
};

static void fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first violation; the run stops after the current step. */
static void fail(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    if (s->failed) {
        return;
    }
    s->failed = true;
    s->fail_step = s->steps;
    va_start(ap, fmt);
    vsnprintf(s->fail_msg, sizeof s->fail_msg, fmt, ap);
    va_end(ap);
}

static void vlog(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vlog(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    if (!s->opt->verbose) {
        return;
    }
    printf("  [seed %" PRIu64 " step %lu t=%llums] ", s->seed, s->steps,
           (unsigned long long)s->fx.time);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static struct rec *rec_at(struct sim *s, raft_index i)
{
    if (i >= s->cap_recs) {
        s->recs = grow_zeroed(s->recs, &s->cap_recs, i + 1, sizeof *s->recs);
    }
    return &s->recs[i];
}

static struct batch *batch_push(struct sim *s)
{
    if (s->n_batches == s->cap_batches) {
        s->batches = grow_zeroed(s->batches, &s->cap_batches,
                                 s->n_batches + 1, sizeof *s->batches);
    }
    struct batch *b = &s->batches[s->n_batches++];
    memset(b, 0, sizeof *b);
    return b;
}

static struct raft *raft_of(struct sim *s, unsigned i)
{
    return raft_fixture_get(&s->fx, i);
}

/* ---- encoding entries with the real codec -------------------------------- */

static void encode_op(struct rg_wbuf *w, const struct world *wd,
                      const struct plan_op *p)
{
    struct rg_op op;
    memset(&op, 0, sizeof op);
    op.kind = p->kind;
    op.origin = p->origin;
    op.ref = p->ref;
    op.below = p->below;
    op.flag = p->flag;
    op.key = wd->names[p->name].b;
    op.key_len = wd->names[p->name].n;
    if (p->pid >= 0) {
        op.pid = wd->pids[p->pid].b;
        op.pid_len = wd->pids[p->pid].n;
    }
    op.meta = (const uint8_t *)metas[p->meta];
    op.meta_len = (uint32_t)strlen(metas[p->meta]);
    if (p->replace >= 0) {
        op.replace = wd->pids[p->replace].b;
        op.replace_len = wd->pids[p->replace].n;
    }
    if (p->kind == RG_OP_PURGE_NODE) {
        op.pid = (const uint8_t *)wd->nodes[p->node];
        op.pid_len = (uint32_t)strlen(wd->nodes[p->node]);
        op.any_creation = p->any;
        op.creation = p->creation;
    }
    op.version = p->version;
    struct rg_wbuf items;
    rg_wbuf_init(&items);
    if (p->kind == RG_OP_REGISTER_MANY || p->kind == RG_OP_UNREGISTER_MANY) {
        op.key = NULL;
        op.key_len = 0;
        for (uint8_t i = 0; i < p->n_items; i++) {
            const struct many_item *it = &p->items[i];
            const struct term *name = &wd->names[it->name];
            rg_wbuf_blob(&items, name->b, name->n);
            if (p->kind == RG_OP_REGISTER_MANY) {
                const struct term *rep = it->replace < 0 ? NULL : &wd->pids[it->replace];
                rg_wbuf_blob(&items, wd->pids[it->pid].b, wd->pids[it->pid].n);
                rg_wbuf_blob(&items, metas[it->meta], strlen(metas[it->meta]));
                rg_wbuf_blob(&items, rep == NULL ? NULL : rep->b,
                             rep == NULL ? 0 : rep->n);
            }
        }
        op.count = p->n_items;
        op.items = items.data;
        op.items_len = (uint32_t)items.len;
        w->oom = w->oom || items.oom;
    }
    rg_op_encode(w, &op, true);
    rg_wbuf_free(&items);
}

/* A fresh op's ref: (batch id + 1) * REF_STRIDE + k. The first op of a
 * batch is always fresh, so its ref identifies the batch. */
static uint64_t fresh_ref(size_t id, uint32_t k)
{
    return ((uint64_t)id + 1) * REF_STRIDE + k;
}

/* One entry = the batch's ops; `skip` (or -1) leaves one out, for the
 * injected bug. */
static void encode_batch(struct rg_wbuf *w, const struct world *wd,
                         const struct batch *b, int skip)
{
    size_t count_off;
    uint32_t n = 0;
    rg_entry_begin(w, &count_off);
    for (uint32_t k = 0; k < b->n; k++) {
        if ((int)k != skip) {
            encode_op(w, wd, &b->ops[k]);
            n++;
        }
    }
    rg_wbuf_patch_u32(w, count_off, n);
    rg_entry_finish(w);
    if (w->oom) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
}

/* The batch an entry carries, found from its first op's ref; -1 when it is
 * not byte for byte one the sim submitted. */
static long batch_of_entry(const struct sim *s, const uint8_t *p, size_t len)
{
    struct rg_rbuf r;
    rg_rbuf_init(&r, p, len);
    rg_rbuf_u8(&r);  /* format */
    rg_rbuf_u32(&r); /* count */
    rg_rbuf_u8(&r);  /* kind */
    rg_rbuf_u64(&r); /* origin */
    uint64_t ref = rg_rbuf_u64(&r);
    if (!rg_rbuf_ok(&r) || ref < REF_STRIDE) {
        return -1;
    }
    uint64_t id = ref / REF_STRIDE - 1;
    if (id >= s->n_batches ||
        !same(p, len, s->batches[id].bytes, s->batches[id].len)) {
        return -1;
    }
    return (long)id;
}

/* ---- check (a): one entry per index -------------------------------------- */

/* Indexes up to `through` not yet seen as commands are not commands (the
 * server reporting them applied past them without calling the FSM). */
static void model_skip_through(struct sim *s, raft_index through)
{
    uint32_t dsec = rec_at(s, s->model_index)->dsec;
    while (s->model_index < through) {
        struct rec *r = rec_at(s, ++s->model_index);
        r->kind = REC_OTHER;
        r->after = s->model;
        r->dsec = dsec;
    }
}

/* The model's set encoded; a new section only if it differs from `prev`. */
static uint32_t dsec_of_model(struct sim *s, uint32_t prev)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    mdedup_encode(&s->mdedup, &w);
    if (w.oom) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    if (s->n_dsecs > 0 && same(w.data, w.len, s->dsecs[prev].bytes,
                               s->dsecs[prev].len)) {
        rg_wbuf_free(&w);
        return prev;
    }
    if (s->n_dsecs == s->cap_dsecs) {
        s->dsecs = grow_zeroed(s->dsecs, &s->cap_dsecs, s->n_dsecs + 1,
                               sizeof *s->dsecs);
    }
    struct dsec *d = &s->dsecs[s->n_dsecs];
    d->bytes = rg_wbuf_take(&w, &d->len);
    return (uint32_t)s->n_dsecs++;
}

static unsigned long max_ul(unsigned long a, unsigned long b)
{
    return a > b ? a : b;
}

/* How far the model's groups and metadata got (the summary shows that the
 * schedule reaches them). */
static void note_table_sizes(struct stats *st, const struct mstate *m)
{
    unsigned long rows = 0, metas_n = 0;
    for (int i = 0; i < N_NAMES; i++) {
        for (int p = 0; p < N_PIDS; p++) {
            rows += m->glen[i][p] > 0;
            st->group_values_max = max_ul(st->group_values_max, m->glen[i][p]);
        }
        metas_n += m->rmeta[i] >= 0;
    }
    st->group_rows_max = max_ul(st->group_rows_max, rows);
    st->meta_rows_max = max_ul(st->meta_rows_max, metas_n);
}

/* First apply of idx anywhere: the model applies the batch there. */
static long model_commit(struct sim *s, const struct server *sv,
                         raft_index idx, const struct raft_buffer *buf)
{
    long id = batch_of_entry(s, buf->base, buf->len);
    if (id < 0) {
        fail(s, "(a) index %llu: server %u applied an entry (%zu bytes) that "
                "the sim never submitted",
             (unsigned long long)idx, sv->i, buf->len);
        return -1;
    }
    struct batch *b = &s->batches[id];
    if (b->index != 0) {
        fail(s, "(a) batch %ld committed twice: at index %llu and at %llu "
                "(server %u)",
             id, (unsigned long long)b->index, (unsigned long long)idx, sv->i);
        return -1;
    }
    model_skip_through(s, idx - 1);
    for (uint32_t k = 0; k < b->n; k++) {
        b->exp[k] = model_apply(&s->model, &s->mdedup, &b->ops[k]);
        s->st.replies_no += b->exp[k].result == RG_RES_NO;
        s->st.copies_skipped += b->exp[k].skipped;
        s->st.settles += b->ops[k].kind == RG_OP_SETTLE;
        if (b->ops[k].kind == RG_OP_SET_META_IF_VERSION && !b->exp[k].skipped) {
            s->st.cas_ok += b->exp[k].result == RG_RES_OK;
            s->st.cas_no += b->exp[k].result == RG_RES_NO;
        }
        s->st.many_ops += (b->ops[k].kind == RG_OP_REGISTER_MANY ||
                           b->ops[k].kind == RG_OP_UNREGISTER_MANY) &&
                          !b->exp[k].skipped;
    }
    s->st.versions_max = max_ul(s->st.versions_max, (unsigned long)s->model.seq);
    uint64_t total = mdedup_total(&s->mdedup);
    s->st.dedup_max = total > s->st.dedup_max ? total : s->st.dedup_max;
    note_table_sizes(&s->st, &s->model);
    b->index = idx;
    uint32_t dsec = dsec_of_model(s, rec_at(s, idx - 1)->dsec);
    struct rec *r = rec_at(s, idx);
    r->kind = REC_COMMAND;
    r->batch = (uint32_t)id;
    r->dsec = dsec;
    r->after = s->model;
    s->guess = s->model;
    s->model_index = idx;
    s->st.committed++;
    return id;
}

static size_t first_difference(const uint8_t *p, size_t n, const uint8_t *q,
                               size_t m)
{
    size_t i = 0;
    while (i < n && i < m && p[i] == q[i]) {
        i++;
    }
    return i;
}

/* A later apply of idx: the bytes must be the first applier's. */
static long log_agrees(struct sim *s, const struct server *sv, raft_index idx,
                       const struct raft_buffer *buf)
{
    const struct rec *r = rec_at(s, idx);
    if (r->kind != REC_COMMAND) {
        fail(s, "(a) index %llu: server %u applied a command where an "
                "earlier server had a non-command entry",
             (unsigned long long)idx, sv->i);
        return -1;
    }
    const struct batch *b = &s->batches[r->batch];
    if (!same(buf->base, buf->len, b->bytes, b->len)) {
        fail(s, "(a) index %llu: server %u applied %zu bytes that differ from "
                "the %zu bytes applied there first (batch %u), from byte %zu",
             (unsigned long long)idx, sv->i, buf->len, b->len, r->batch,
             first_difference(buf->base, buf->len, b->bytes, b->len));
        return -1;
    }
    return (long)r->batch;
}

/* No command index between the server's previous one and idx. */
static bool no_command_skipped(struct sim *s, const struct server *sv,
                               raft_index idx)
{
    for (raft_index j = sv->last_seen + 1; j < idx; j++) {
        if (rec_at(s, j)->kind == REC_COMMAND) {
            fail(s, "(a) server %u went from index %llu to %llu without "
                    "applying the command at %llu",
                 sv->i, (unsigned long long)sv->last_seen,
                 (unsigned long long)idx, (unsigned long long)j);
            return false;
        }
    }
    return true;
}

/* Admits the entry applied at idx; returns its batch id or -1. */
static long admit_entry(struct sim *s, const struct server *sv, raft_index idx,
                        const struct raft_buffer *buf)
{
    if (idx <= sv->last_seen) {
        fail(s, "(a) server %u applied index %llu after index %llu",
             sv->i, (unsigned long long)idx,
             (unsigned long long)sv->last_seen);
        return -1;
    }
    long id = idx > s->model_index ? model_commit(s, sv, idx, buf)
                                   : log_agrees(s, sv, idx, buf);
    if (id >= 0 && !no_command_skipped(s, sv, idx)) {
        return -1;
    }
    return id;
}

/* ---- check (b): the FSM against the model -------------------------------- */

/* The payload the model expects, restated from cmd.h: a pid (or nothing),
 * an entry [blob pid][u64 version][meta bytes], or REGISTER_MANY's [u8
 * result][blob holder] per name. */
static void expected_payload(const struct world *wd, const struct expect *e,
                             struct rg_wbuf *w)
{
    if (e->shape == SHAPE_ANSWERS) {
        for (uint8_t i = 0; i < e->n_items; i++) {
            int h = e->item_holder[i];
            rg_wbuf_u8(w, e->item_result[i]);
            rg_wbuf_blob(w, h < 0 ? NULL : wd->pids[h].b, h < 0 ? 0 : wd->pids[h].n);
        }
    } else if (e->shape == SHAPE_ENTRY) {
        rg_wbuf_blob(w, wd->pids[e->payload].b, wd->pids[e->payload].n);
        rg_wbuf_u64(w, e->version);
        rg_wbuf_put(w, metas[e->meta], strlen(metas[e->meta]));
    } else if (e->payload >= 0) {
        rg_wbuf_put(w, wd->pids[e->payload].b, wd->pids[e->payload].n);
    }
}

static void check_reply(struct sim *s, const struct server *sv,
                        raft_index idx, const struct batch *b, uint32_t k,
                        struct rg_rbuf *r)
{
    char op[400], got_pid[32], want_pid[32];
    const struct expect *e = &b->exp[k];
    uint64_t ref = rg_rbuf_u64(r);
    uint8_t result = rg_rbuf_u8(r);
    uint32_t plen = 0;
    const uint8_t *payload = rg_rbuf_blob(r, RG_FRAME_MAX, &plen);
    struct rg_wbuf want;
    rg_wbuf_init(&want);
    expected_payload(&s->world, e, &want);
    if (want.oom) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    uint64_t want_ref = b->ops[k].ref;
    bool ok = rg_rbuf_ok(r) && ref == want_ref && result == e->result &&
              same(payload, plen, want.data, want.len);
    size_t diff = first_difference(payload, plen, want.data, want.len);
    size_t want_len = want.len;
    rg_wbuf_free(&want);
    if (ok) {
        return;
    }
    describe_op(op, sizeof op, &b->ops[k]);
    if (e->shape == SHAPE_PID) {
        int got = plen == 0 ? -1 : find_pid(&s->world, payload, plen);
        describe_pid(got_pid, sizeof got_pid, plen > 0 && got < 0 ? -2 : got);
        describe_pid(want_pid, sizeof want_pid, e->payload);
    } else {
        snprintf(got_pid, sizeof got_pid, "%" PRIu32 " bytes", plen);
        snprintf(want_pid, sizeof want_pid, "%zu bytes, from byte %zu", want_len,
                 diff);
    }
    fail(s, "(b) index %llu, server %u, op %u [%s]: FSM replied ref %" PRIu64
            " %s %s, model expects ref %" PRIu64 " %s %s",
         (unsigned long long)idx, sv->i, k, op, ref, result_name(result),
         got_pid, want_ref, result_name(e->result), want_pid);
}

/* The FSM answers exactly the ops this server originated, in order, but
 * for skipped copies, SETTLEs and other ops with ref 0. */
static void check_replies(struct sim *s, const struct server *sv,
                          raft_index idx, const struct batch *b)
{
    struct rg_rbuf r;
    uint32_t n = 0;
    rg_rbuf_init(&r, sv->fsm.replies.data, sv->fsm.replies.len);
    for (uint32_t k = 0; k < b->n && !s->failed; k++) {
        if (b->ops[k].origin == sv->id && b->exp[k].answered) {
            check_reply(s, sv, idx, b, k, &r);
            n++;
        }
    }
    if (!s->failed && (n != sv->fsm.n_replies || r.left != 0)) {
        fail(s, "(b) index %llu, server %u: FSM sent %" PRIu32 " replies "
                "(%zu bytes left over), the model expects %" PRIu32,
             (unsigned long long)idx, sv->i, sv->fsm.n_replies, r.left, n);
    }
}

/* A blob that must be one of the world's metas: its index, or -1. */
static int read_meta_blob(struct rg_rbuf *r)
{
    uint32_t len;
    const uint8_t *p = rg_rbuf_blob(r, RG_META_MAX, &len);
    return rg_rbuf_ok(r) ? find_meta(p, len) : -1;
}

static int read_pid_blob(const struct world *w, struct rg_rbuf *r)
{
    uint32_t len;
    const uint8_t *p = rg_rbuf_blob(r, RG_PID_MAX, &len);
    return p == NULL ? -1 : find_pid(w, p, len);
}

/* The duplicate-key table's records after the key: GROUP_ADD pid value,
 * GROUP_DEL pid all value, GROUP_DEL_PURGE pid. */
static bool replay_group_change(const struct world *w, struct rg_rbuf *r,
                                uint8_t kind, int name, struct mstate *m)
{
    int p = read_pid_blob(w, r);
    if (p < 0) {
        return false;
    }
    if (kind == RG_CHANGE_GROUP_DEL_PURGE) {
        m->glen[name][p] = 0;
        return true;
    }
    uint8_t all = kind == RG_CHANGE_GROUP_DEL ? rg_rbuf_u8(r) : 0;
    int v = read_meta_blob(r);
    if (v < 0 || all > 1) {
        return false;
    }
    if (kind == RG_CHANGE_GROUP_ADD) {
        return mgroup_add(m, name, p, (int8_t)v);
    }
    mgroup_del(m, name, p, (int8_t)v, all == 1);
    return true;
}

/* A names record after the key: PUT pid meta (DEL and DEL_PURGE have
 * nothing more). */
static bool replay_name_change(const struct world *w, struct rg_rbuf *r,
                               uint8_t kind, int name, struct mstate *m)
{
    if (kind == RG_CHANGE_DEL || kind == RG_CHANGE_DEL_PURGE) {
        m->holder[name] = -1;
        return true;
    }
    int p = read_pid_blob(w, r);
    int mi = read_meta_blob(r);
    if (p < 0 || mi < 0) {
        return false;
    }
    m->holder[name] = (int8_t)p;
    m->meta[name] = (int8_t)mi;
    return true;
}

/* Replays one change record into the mirror; false if it is malformed. */
static bool replay_change(const struct world *w, struct rg_rbuf *r,
                          struct mstate *m)
{
    uint32_t klen;
    uint8_t kind = rg_rbuf_u8(r);
    const uint8_t *key = rg_rbuf_blob(r, RG_NAME_MAX, &klen);
    int name = key == NULL ? -1 : find_name(w, key, klen);
    if (name < 0) {
        return false;
    }
    switch (kind) {
    case RG_CHANGE_PUT:
    case RG_CHANGE_DEL:
    case RG_CHANGE_DEL_PURGE:
        return replay_name_change(w, r, kind, name, m);
    case RG_CHANGE_GROUP_ADD:
    case RG_CHANGE_GROUP_DEL:
    case RG_CHANGE_GROUP_DEL_PURGE:
        return replay_group_change(w, r, kind, name, m);
    case RG_CHANGE_META_PUT: {
        int v = read_meta_blob(r);
        m->rmeta[name] = (int8_t)v;
        return v >= 0;
    }
    case RG_CHANGE_META_DEL:
        m->rmeta[name] = -1;
        return true;
    default:
        return false;
    }
}

/* The member mirrors the change stream into ETS: replaying it must give
 * the model's state. */
static void replay_changes(struct sim *s, struct server *sv, raft_index idx)
{
    struct rg_rbuf r;
    rg_rbuf_init(&r, sv->fsm.changes.data, sv->fsm.changes.len);
    for (uint32_t c = 0; c < sv->fsm.n_changes; c++) {
        if (!replay_change(&s->world, &r, &sv->mirror)) {
            fail(s, "(b) index %llu, server %u: change record %" PRIu32
                    " is malformed or names an unknown term",
                 (unsigned long long)idx, sv->i, c);
            return;
        }
    }
    if (r.left != 0) {
        fail(s, "(b) index %llu, server %u: %zu bytes after the last change",
             (unsigned long long)idx, sv->i, r.left);
    }
}

/* Does the FSM's name table hold exactly the model's names, each at the
 * model's version, and has it given the same last version? Says why not. */
static bool names_match(const struct world *w, const struct rg_fsm *f,
                        const struct mstate *m, char *why, size_t n)
{
    size_t count = 0;
    if (f->version_seq != m->seq) {
        snprintf(why, n, "the FSM's last version given is %" PRIu64 ", the "
                         "model's %" PRIu64,
                 f->version_seq, m->seq);
        return false;
    }
    for (int i = 0; i < N_NAMES; i++) {
        const struct rg_entry *e =
            rg_table_get(&f->table, w->names[i].b, w->names[i].n);
        int h = m->holder[i];
        int got = e == NULL ? -1 : find_pid(w, rg_entry_pid(e), e->pid_len);
        int meta = e == NULL ? 0 : find_meta(rg_entry_meta(e), e->meta_len);
        if (e != NULL && got < 0) {
            got = -2;
        }
        if (got != h || (h >= 0 && meta != m->meta[i])) {
            char a[32], b[32];
            describe_pid(a, sizeof a, got);
            describe_pid(b, sizeof b, h);
            snprintf(why, n, "name hot/%d: FSM holds %s meta %d, model %s "
                             "meta %d",
                     i, a, meta, b, h >= 0 ? m->meta[i] : 0);
            return false;
        }
        if (h >= 0 && e->version != m->version[i]) {
            snprintf(why, n, "name hot/%d: FSM's version %" PRIu64 ", the "
                             "model's %" PRIu64,
                     i, e->version, m->version[i]);
            return false;
        }
        count += h >= 0;
    }
    if (count != f->table.count) {
        snprintf(why, n, "FSM table has %zu entries, model %zu",
                 f->table.count, count);
        return false;
    }
    return true;
}

/* (name, pid)'s value list as group.h lays it out: [u32 len][bytes] per
 * value, restated from docs/protocol.md. */
static void mvalues_encode(const struct mstate *m, int name, int pid,
                           struct rg_wbuf *w)
{
    for (uint8_t k = 0; k < m->glen[name][pid]; k++) {
        const char *v = metas[m->gval[name][pid][k]];
        rg_wbuf_blob(w, v, strlen(v));
    }
}

/* Does (name, pid)'s entry of the FSM's group table hold the model's
 * values (NULL entry: the model has none)? */
static bool group_entry_matches(const struct rg_entry *e, const struct mstate *m,
                                int name, int pid)
{
    struct rg_wbuf w;
    if (e == NULL || m->glen[name][pid] == 0) {
        return e == NULL && m->glen[name][pid] == 0;
    }
    rg_wbuf_init(&w);
    mvalues_encode(m, name, pid, &w);
    bool ok = !w.oom && same(rg_entry_meta(e), e->meta_len, w.data, w.len);
    rg_wbuf_free(&w);
    return ok;
}

/* Does the FSM's duplicate-key table hold exactly the model's groups? */
static bool groups_match(const struct world *w, const struct rg_fsm *f,
                         const struct mstate *m, char *why, size_t n)
{
    size_t count = 0;
    for (int i = 0; i < N_NAMES; i++) {
        for (int p = 0; p < N_PIDS; p++) {
            const struct rg_entry *e =
                rg_group_get(&f->groups, w->names[i].b, w->names[i].n,
                             w->pids[p].b, w->pids[p].n);
            if (!group_entry_matches(e, m, i, p)) {
                snprintf(why, n, "group hot/%d pid p%d: FSM has %s (%u bytes), "
                                 "model %u values",
                         i, p, e == NULL ? "no entry" : "values",
                         e == NULL ? 0u : (unsigned)e->meta_len,
                         (unsigned)m->glen[i][p]);
                return false;
            }
            count += m->glen[i][p] > 0;
        }
    }
    if (count != f->groups.count) {
        snprintf(why, n, "FSM group table has %zu entries, model %zu",
                 f->groups.count, count);
        return false;
    }
    return true;
}

/* Does the FSM's metadata table hold exactly the model's? */
static bool meta_match(const struct world *w, const struct rg_fsm *f,
                       const struct mstate *m, char *why, size_t n)
{
    size_t count = 0;
    for (int i = 0; i < N_NAMES; i++) {
        const struct rg_entry *e =
            rg_table_get(&f->meta, w->names[i].b, w->names[i].n);
        int got = e == NULL ? -1
                  : e->pid_len != 0 ? -2
                                    : find_meta(rg_entry_meta(e), e->meta_len);
        if (e != NULL && got == -1) {
            got = -2; /* a value the world does not have */
        }
        if (got != m->rmeta[i]) {
            snprintf(why, n, "metadata key hot/%d: FSM has %d, model %d "
                             "(-1: none, -2: unknown)",
                     i, got, m->rmeta[i]);
            return false;
        }
        count += m->rmeta[i] >= 0;
    }
    if (count != f->meta.count) {
        snprintf(why, n, "FSM metadata table has %zu entries, model %zu",
                 f->meta.count, count);
        return false;
    }
    return true;
}

/* All three tables. */
static bool table_matches(const struct world *w, const struct rg_fsm *f,
                          const struct mstate *m, char *why, size_t n)
{
    return names_match(w, f, m, why, n) && groups_match(w, f, m, why, n) &&
           meta_match(w, f, m, why, n);
}

/* Does the FSM's de-duplication set (read through its public struct) hold
 * exactly the model's, given as its encoded section? Says why not. */
static bool dedup_matches(const struct rg_dedup *d, const struct dsec *e,
                          char *why, size_t n)
{
    struct rg_rbuf r;
    rg_rbuf_init(&r, e->bytes, e->len);
    uint32_t origins = rg_rbuf_u32(&r);
    if (origins != d->n) {
        snprintf(why, n, "the FSM remembers ops of %" PRIu32 " origins, the "
                         "model of %" PRIu32, d->n, origins);
        return false;
    }
    for (uint32_t i = 0; i < origins; i++) {
        const struct rg_dedup_origin *o = &d->v[i];
        uint64_t origin = rg_rbuf_u64(&r);
        uint32_t refs = rg_rbuf_u32(&r);
        if (o->origin != origin || o->n != refs) {
            snprintf(why, n, "origin #%" PRIu32 ": the FSM has %" PRIu64
                             " with %" PRIu32 " refs, the model %" PRIu64
                             " with %" PRIu32,
                     i, o->origin, o->n, origin, refs);
            return false;
        }
        for (uint32_t k = 0; k < refs; k++) {
            uint64_t ref = rg_rbuf_u64(&r);
            if (o->refs[k] != ref) {
                snprintf(why, n, "origin %" PRIu64 ", ref #%" PRIu32 ": the "
                                 "FSM has %" PRIu64 ", the model %" PRIu64,
                         origin, k, o->refs[k], ref);
                return false;
            }
        }
    }
    return true;
}

static void check_state(struct sim *s, const struct server *sv,
                        raft_index idx, const char *after)
{
    char why[200];
    const struct rec *rc = rec_at(s, idx);
    const struct mstate *m = &rc->after;
    if (!table_matches(&s->world, &sv->fsm, m, why, sizeof why)) {
        fail(s, "(b) after %s index %llu, server %u's tables are not the "
                "model's: %s",
             after, (unsigned long long)idx, sv->i, why);
    } else if (!dedup_matches(&sv->fsm.dedup, &s->dsecs[rc->dsec], why,
                              sizeof why)) {
        fail(s, "(b) after %s index %llu, server %u's de-duplication set is "
                "not the model's: %s",
             after, (unsigned long long)idx, sv->i, why);
    } else if (!mstate_eq(&sv->mirror, m)) {
        fail(s, "(b) after %s index %llu, server %u's change stream, "
                "replayed, is not the model's state",
             after, (unsigned long long)idx, sv->i);
    }
}

/* The snapshot's group table: rows (name, pid, value list) sorted by name
 * bytes then pid bytes. */
static void expected_groups(const struct world *wd, const struct mstate *m,
                            struct rg_wbuf *w)
{
    struct rg_wbuf values;
    uint64_t rows = 0;
    rg_wbuf_init(&values);
    for (int j = 0; j < N_NAMES * N_PIDS; j++) {
        rows += m->glen[j / N_PIDS][j % N_PIDS] > 0;
    }
    rg_wbuf_u64(w, rows);
    for (int j = 0; j < N_NAMES * N_PIDS; j++) {
        int i = wd->pair_order[j] / N_PIDS, p = wd->pair_order[j] % N_PIDS;
        if (m->glen[i][p] > 0) {
            rg_wbuf_reset(&values);
            mvalues_encode(m, i, p, &values);
            rg_wbuf_blob(w, wd->names[i].b, wd->names[i].n);
            rg_wbuf_blob(w, wd->pids[p].b, wd->pids[p].n);
            rg_wbuf_blob(w, values.data, values.len);
        }
    }
    w->oom = w->oom || values.oom;
    rg_wbuf_free(&values);
}

/* The snapshot's metadata table: rows (key, "", value) sorted by key. */
static void expected_meta(const struct world *wd, const struct mstate *m,
                          struct rg_wbuf *w)
{
    uint64_t rows = 0;
    for (int i = 0; i < N_NAMES; i++) {
        rows += m->rmeta[i] >= 0;
    }
    rg_wbuf_u64(w, rows);
    for (int j = 0; j < N_NAMES; j++) {
        int i = wd->name_order[j], v = m->rmeta[i];
        if (v >= 0) {
            rg_wbuf_blob(w, wd->names[i].b, wd->names[i].n);
            rg_wbuf_blob(w, "", 0);
            rg_wbuf_blob(w, metas[v], strlen(metas[v]));
        }
    }
}

/* The snapshot docs/protocol.md specifies for the model's state at idx:
 * magic, the last version given, the names table (row count, rows sorted
 * by name bytes, each ending in its version), the groups and metadata
 * tables, the set's section. */
static void expected_snapshot(struct sim *s, raft_index idx,
                              struct rg_wbuf *w)
{
    const struct rec *rc = rec_at(s, idx);
    const struct mstate *m = &rc->after;
    const struct world *wd = &s->world;
    uint64_t rows = 0;
    for (int i = 0; i < N_NAMES; i++) {
        rows += m->holder[i] >= 0;
    }
    rg_wbuf_u32(w, SNAPSHOT_MAGIC);
    rg_wbuf_u64(w, m->seq);
    rg_wbuf_u64(w, rows);
    for (int j = 0; j < N_NAMES; j++) {
        int i = wd->name_order[j], h = m->holder[i];
        if (h >= 0) {
            rg_wbuf_blob(w, wd->names[i].b, wd->names[i].n);
            rg_wbuf_blob(w, wd->pids[h].b, wd->pids[h].n);
            rg_wbuf_blob(w, metas[m->meta[i]], strlen(metas[m->meta[i]]));
            rg_wbuf_u64(w, m->version[i]);
        }
    }
    expected_groups(wd, m, w);
    expected_meta(wd, m, w);
    rg_wbuf_put(w, s->dsecs[rc->dsec].bytes, s->dsecs[rc->dsec].len);
}

/* Snapshot bytes p (taken, restored or compared) must be the model's. */
static void check_snapshot_bytes(struct sim *s, const uint8_t *p, size_t len,
                                 raft_index idx, const char *what)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    expected_snapshot(s, idx, &w);
    if (w.oom) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    if (!same(p, len, w.data, w.len)) {
        fail(s, "(b) %s of index %llu (%zu bytes) is not the model's "
                "expected snapshot (%zu bytes) from byte %zu",
             what, (unsigned long long)idx, len, w.len,
             first_difference(p, len, w.data, w.len));
    }
    rg_wbuf_free(&w);
}

/* ---- the FSM behind struct raft_fsm -------------------------------------- */

/* --inject-bug skip: server 1 applies one entry without the last op that
 * changed the registry (what a lost op would look like). */
static int apply_skipping(struct sim *s, struct server *sv,
                          const struct batch *b, int k)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    encode_batch(&w, &s->world, b, k);
    int rv = rg_fsm_apply(&sv->fsm, w.data, w.len);
    rg_wbuf_free(&w);
    s->injected = true;
    return rv;
}

static int last_change(const struct batch *b)
{
    for (int k = (int)b->n - 1; k >= 0; k--) {
        if (b->exp[k].changed) {
            return k;
        }
    }
    return -1;
}

static int apply_entry(struct sim *s, struct server *sv,
                       const struct raft_buffer *buf, long id)
{
    if (s->opt->inject == INJECT_SKIP && sv->i == 1 && !s->injected &&
        id >= 0 && last_change(&s->batches[id]) >= 0) {
        return apply_skipping(s, sv, &s->batches[id],
                              last_change(&s->batches[id]));
    }
    return rg_fsm_apply(&sv->fsm, buf->base, buf->len);
}

/* --inject-bug corrupt: server 2 sees one bit flipped in the ref of the
 * first op of an entry another server applied first. Returns the copy. */
static uint8_t *maybe_corrupt(struct sim *s, const struct server *sv,
                              raft_index idx, struct raft_buffer *view)
{
    const size_t at = 1 + 4 + 1 + 8 + 7; /* last byte of op 0's ref */
    if (s->opt->inject != INJECT_CORRUPT || sv->i != 2 || s->injected ||
        idx > s->model_index || view->len <= at) {
        return NULL;
    }
    uint8_t *copy = xmalloc(view->len);
    memcpy(copy, view->base, view->len);
    copy[at] ^= 1;
    view->base = copy;
    s->injected = true;
    return copy;
}

static int sim_fsm_apply(struct raft_fsm *iface, const struct raft_buffer *buf,
                         void **result)
{
    struct server *sv = iface->data;
    struct sim *s = sv->sim;
    /* libraft sets last_applied once apply returns: this is the index. */
    raft_index idx = raft_last_applied(raft_of(s, sv->i)) + 1;
    struct raft_buffer view = *buf;
    uint8_t *corrupt = maybe_corrupt(s, sv, idx, &view);
    long id = s->failed ? -1 : admit_entry(s, sv, idx, &view);
    *result = NULL;
    s->digest = mix(mix(s->digest, sv->i), idx);
    rg_fsm_effects_reset(&sv->fsm);
    if (apply_entry(s, sv, &view, id) != 0) {
        fail(s, "(b) index %llu, server %u: rg_fsm_apply ran out of memory",
             (unsigned long long)idx, sv->i);
    }
    if (!s->failed && id >= 0) {
        check_replies(s, sv, idx, &s->batches[id]);
        replay_changes(s, sv, idx);
        check_state(s, sv, idx, "entry at");
    }
    sv->last_seen = idx;
    free(corrupt);
    return 0;
}

/* libraft 0.22.1 can lower a follower's commit index below last_applied
 * (replication.c sets commit_index = min(leader_commit, prev_log_index +
 * n_entries) without keeping the larger value, so a heartbeat with an old
 * prev_log_index lowers it: after lost acks, or reordered messages). A
 * snapshot taken then is labelled with the lower commit index but holds
 * the state of last_applied (libraft's assert on this is compiled out in
 * Debian's build): restoring it, after a restart or on a follower, applies
 * the entries in between twice. The guard refuses to snapshot then;
 * libraft just tries again later. node.c has the same guard. */
static bool snapshot_would_lie(struct sim *s, const struct server *sv)
{
    struct raft *r = raft_of(s, sv->i);
    return raft_last_applied(r) != raft_commit_index(r);
}

/* As node.c: one malloc'd buffer, released by snapshot_finalize (fsm v2). */
static int sim_fsm_snapshot(struct raft_fsm *iface, struct raft_buffer *bufs[],
                            unsigned *n_bufs)
{
    struct server *sv = iface->data;
    struct sim *s = sv->sim;
    uint8_t *data;
    size_t len;
    /* libraft labels it with its commit index, which this server has
     * applied: indexes the model has not seen are not commands. */
    raft_index idx = raft_commit_index(raft_of(s, sv->i));
    if (snapshot_would_lie(s, sv)) {
        s->st.snapshots_refused++;
        if (!s->opt->no_guard) {
            return RAFT_BUSY;
        }
    }
    if (!s->failed) {
        model_skip_through(s, idx);
        check_state(s, sv, idx, "a snapshot labelled");
    }
    *bufs = malloc(sizeof **bufs);
    if (*bufs == NULL) {
        return RAFT_NOMEM;
    }
    if (rg_fsm_snapshot(&sv->fsm, &data, &len) != 0) {
        free(*bufs);
        *bufs = NULL;
        return RAFT_NOMEM;
    }
    if (!s->failed) {
        check_snapshot_bytes(s, data, len, idx, "a snapshot taken");
    }
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    s->st.snapshots++;
    return 0;
}

static int sim_fsm_snapshot_finalize(struct raft_fsm *iface,
                                     struct raft_buffer *bufs[],
                                     unsigned *n_bufs)
{
    (void)iface;
    for (unsigned i = 0; i < *n_bufs; i++) {
        free((*bufs)[i].base);
    }
    free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* A value list of the FSM as model values (-1 for a value the world does
 * not have), at most GROUP_CAP of them: a longer or stranger list makes
 * the mirror differ from the model, which check_state reports. */
static void mirror_group(struct mstate *m, int name, int pid,
                         const struct rg_entry *e)
{
    struct rg_rbuf r;
    m->glen[name][pid] = 0;
    if (e == NULL) {
        return;
    }
    rg_rbuf_init(&r, rg_entry_meta(e), e->meta_len);
    while (r.left > 0 && rg_rbuf_ok(&r) && m->glen[name][pid] < GROUP_CAP) {
        int v = read_meta_blob(&r);
        mgroup_add(m, name, pid, (int8_t)v);
    }
}

/* After a restore the node sends its member a full dump of every table:
 * the mirror is rebuilt from them. */
static void mirror_from_table(struct sim *s, struct server *sv)
{
    const struct world *w = &s->world;
    struct mstate *m = &sv->mirror;
    for (int i = 0; i < N_NAMES; i++) {
        const struct rg_entry *e =
            rg_table_get(&sv->fsm.table, w->names[i].b, w->names[i].n);
        m->holder[i] = (int8_t)(e == NULL ? -1
                                          : find_pid(w, rg_entry_pid(e),
                                                     e->pid_len));
        m->meta[i] = (int8_t)(e == NULL ? 0
                                        : find_meta(rg_entry_meta(e),
                                                    e->meta_len));
        for (int p = 0; p < N_PIDS; p++) {
            mirror_group(m, i, p,
                         rg_group_get(&sv->fsm.groups, w->names[i].b,
                                      w->names[i].n, w->pids[p].b,
                                      w->pids[p].n));
        }
        e = rg_table_get(&sv->fsm.meta, w->names[i].b, w->names[i].n);
        m->rmeta[i] = (int8_t)(e == NULL ? -1
                                         : find_meta(rg_entry_meta(e),
                                                     e->meta_len));
    }
}

static void check_restore(struct sim *s, struct server *sv, raft_index idx,
                          const struct raft_buffer *buf)
{
    if (idx < sv->last_seen) {
        fail(s, "(b) server %u restored a snapshot of index %llu after "
                "applying up to %llu",
             sv->i, (unsigned long long)idx,
             (unsigned long long)sv->last_seen);
        return;
    }
    /* The snapshot came from a server that applied through idx, so any
     * command up to idx is already known: the rest are not commands. */
    model_skip_through(s, idx);
    check_snapshot_bytes(s, buf->base, buf->len, idx, "a snapshot restored");
    check_state(s, sv, idx, "restoring a snapshot of");
}

static int sim_fsm_restore(struct raft_fsm *iface, struct raft_buffer *buf)
{
    struct server *sv = iface->data;
    struct sim *s = sv->sim;
    /* libraft restores once commit_index reaches the snapshot's index. */
    raft_index idx = raft_commit_index(raft_of(s, sv->i));
    if (rg_fsm_restore(&sv->fsm, buf->base, buf->len) != 0) {
        fail(s, "(b) server %u refused the snapshot of index %llu (%zu bytes)",
             sv->i, (unsigned long long)idx, buf->len);
        return RAFT_MALFORMED;
    }
    sv->fsm.restored = false;
    s->st.restores++;
    s->digest = mix(mix(s->digest, 0x5E570E + sv->i), idx);
    mirror_from_table(s, sv);
    if (!s->failed) {
        check_restore(s, sv, idx, buf);
    }
    raft_free(buf->base); /* libraft: restore owns the buffer on success */
    sv->last_seen = idx;
    vlog(s, "server %u restored a snapshot of index %llu", sv->i,
         (unsigned long long)idx);
    return 0;
}

/* ---- submitting batches -------------------------------------------------- */

/* A raft_apply in flight; freed by its callback. */
struct pending {
    struct raft_apply req;
    struct sim *sim;
    size_t batch;
    unsigned server;
};

/* Acknowledged: the entry is applied at req->index on the leader, and the
 * model must have seen this very batch commit there. */
static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct pending *p = req->data;
    struct sim *s = p->sim;
    (void)result;
    if (status != 0) {
        s->st.unacked++;
    } else {
        s->st.acked++;
        raft_index at = s->batches[p->batch].index;
        if (at != req->index) {
            fail(s, "(b) server %u acknowledged batch %zu at index %llu, "
                    "the model saw it commit at %llu (0: never)",
                 p->server, p->batch, (unsigned long long)req->index,
                 (unsigned long long)at);
        }
    }
    free(p);
}

static int8_t random_pid(struct sim *s)
{
    return (int8_t)rng_below(&s->rng, N_PIDS);
}

/* Half the time the pid the committed state says holds the name: both the
 * right and the wrong owner get exercised. */
static int8_t owner_guess(struct sim *s, unsigned name)
{
    int8_t h = s->model.holder[name];
    return h >= 0 && rng_below(&s->rng, 2) ? h : random_pid(s);
}

/* Half the time a pid with values under the name in the committed state
 * (if any): both existing and new entries get exercised. */
static int8_t member_guess(struct sim *s, unsigned name)
{
    int8_t members[N_PIDS];
    unsigned n = 0;
    for (int p = 0; p < N_PIDS; p++) {
        if (s->model.glen[name][p] > 0) {
            members[n++] = (int8_t)p;
        }
    }
    return n > 0 && rng_below(&s->rng, 2) ? members[rng_below(&s->rng, n)]
                                          : random_pid(s);
}

/* GROUP_ADD, or GROUP_DEL (one value, sometimes all) once the committed
 * list is GROUP_LONG values long, so lists stay short. */
static void plan_group(struct sim *s, struct plan_op *op, bool add)
{
    op->pid = add && rng_below(&s->rng, 3) ? random_pid(s)
                                           : member_guess(s, op->name);
    op->meta = (int8_t)rng_below(&s->rng, N_META);
    add = add && s->model.glen[op->name][op->pid] < GROUP_LONG;
    op->kind = add ? RG_OP_GROUP_ADD : RG_OP_GROUP_DEL;
    op->flag = !add && rng_below(&s->rng, 4) == 0;
}

/* SET_META_IF_VERSION at the version s->guess gives the name (the
 * committed state and the batches planned since: most often; it may have
 * moved on by the time the op commits), one before or after it, 0, or any
 * up to the last given; by the holder three times in four. */
static void plan_cas(struct sim *s, struct plan_op *op)
{
    const struct mstate *m = &s->guess;
    int8_t h = m->holder[op->name];
    uint64_t v = h >= 0 ? m->version[op->name] : m->seq;
    unsigned roll = rng_below(&s->rng, 20);
    op->kind = RG_OP_SET_META_IF_VERSION;
    op->pid = h >= 0 && rng_below(&s->rng, 4) ? h : random_pid(s);
    op->meta = (int8_t)rng_below(&s->rng, N_META);
    op->version = roll < 12 ? v
                  : roll < 15 ? v - (v > 0)
                  : roll < 17 ? v + 1
                  : roll < 18 ? 0
                              : rng_next(&s->rng) % (m->seq + 2);
}

/* REGISTER_MANY or UNREGISTER_MANY of 1..MANY_ITEMS names (a name may
 * come twice), each registration as plan_name_op draws a REGISTER's. */
static void plan_many(struct sim *s, struct plan_op *op, bool reg)
{
    op->kind = reg ? RG_OP_REGISTER_MANY : RG_OP_UNREGISTER_MANY;
    op->n_items = (uint8_t)(1 + rng_below(&s->rng, MANY_ITEMS));
    for (uint8_t i = 0; i < op->n_items; i++) {
        struct many_item *it = &op->items[i];
        it->name = (uint8_t)rng_below(&s->rng, N_NAMES);
        it->pid = -1;
        it->replace = -1;
        it->meta = 0;
        if (reg) {
            it->pid = rng_below(&s->rng, 3) ? random_pid(s)
                                            : owner_guess(s, it->name);
            it->meta = (int8_t)rng_below(&s->rng, N_META);
            if (rng_below(&s->rng, 3) == 0) {
                it->replace = owner_guess(s, it->name);
            }
        }
    }
}

/* An op on the unique names (k < 56 of plan_one's 100). */
static void plan_name_op(struct sim *s, struct plan_op *op, unsigned k)
{
    if (k < 28) {
        op->kind = k < 22 ? RG_OP_REGISTER : RG_OP_REGISTER_NEW;
        op->pid = rng_below(&s->rng, 3) ? random_pid(s)
                                        : owner_guess(s, op->name);
        op->meta = (int8_t)rng_below(&s->rng, N_META);
        if (rng_below(&s->rng, 3) == 0) {
            op->replace = owner_guess(s, op->name);
        }
    } else if (k < 33) {
        op->kind = RG_OP_UNREGISTER;
    } else if (k < 43) {
        op->kind = RG_OP_UNREGISTER_IF_OWNER;
        op->pid = owner_guess(s, op->name);
    } else {
        op->kind = k < 50 ? RG_OP_SET_META : RG_OP_SET_META_IF_OWNER;
        op->meta = (int8_t)rng_below(&s->rng, N_META);
        if (op->kind == RG_OP_SET_META_IF_OWNER) {
            op->pid = owner_guess(s, op->name);
        }
    }
}

static struct plan_op plan_one(struct sim *s)
{
    struct plan_op op;
    unsigned k = rng_below(&s->rng, 122);
    memset(&op, 0, sizeof op);
    op.name = (uint8_t)rng_below(&s->rng, N_NAMES);
    /* Mostly a server of the cluster (its FSM answers), sometimes an id no
     * server has, like a daemon that left. */
    op.origin = rng_below(&s->rng, s->n + 1) + 1;
    op.pid = -1;
    op.replace = -1;
    if (k < 56) {
        plan_name_op(s, &op, k);
    } else if (k < 77) {
        plan_group(s, &op, k < 68);
    } else if (k < 87) {
        op.kind = k < 83 ? RG_OP_META_PUT : RG_OP_META_DEL;
        op.meta = (int8_t)rng_below(&s->rng, N_META);
        op.flag = op.kind == RG_OP_META_PUT && rng_below(&s->rng, 3) == 0;
    } else if (k < 93) {
        op.kind = RG_OP_PURGE_NODE;
        op.node = (uint8_t)rng_below(&s->rng, N_NODES);
        op.any = rng_below(&s->rng, 2);
        op.creation = 1 + rng_below(&s->rng, 2);
    } else if (k < 100) {
        op.kind = RG_OP_READ;
    } else if (k < 110) {
        plan_cas(s, &op);
    } else if (k < 114) {
        op.kind = RG_OP_READ_ENTRY;
    } else {
        plan_many(s, &op, k < 119);
    }
    return op;
}

/* A live server in leader state (a stale one, cut off in a minority, is as
 * good: its entries must never commit); -1 if none. */
static int pick_leader(struct sim *s)
{
    unsigned c[MAX_SERVERS], n = 0;
    for (unsigned i = 0; i < s->n; i++) {
        struct raft *r = raft_of(s, i);
        if (!s->net.dead[i] && raft_state(r) == RAFT_LEADER &&
            raft_transferee(r) == 0) {
            c[n++] = i;
        }
    }
    return n == 0 ? -1 : (int)c[rng_below(&s->rng, n)];
}

/* A copy of an op of one of the last RESEND_WINDOW batches (committed or
 * not), as a member re-sends an unanswered op: same origin, same ref. */
static struct plan_op resent_op(struct sim *s, size_t id)
{
    size_t window = id < RESEND_WINDOW ? id : RESEND_WINDOW;
    const struct batch *old = &s->batches[id - 1 - rng_below(&s->rng,
                                                            (unsigned)window)];
    s->st.resent++;
    return old->ops[rng_below(&s->rng, old->n)];
}

/* SETTLE for some origin, below the first ref of a recent batch. */
static struct plan_op settle_op(struct sim *s, size_t id)
{
    struct plan_op op;
    unsigned back = rng_below(&s->rng, id < SETTLE_WINDOW ? (unsigned)id + 1
                                                          : SETTLE_WINDOW);
    memset(&op, 0, sizeof op);
    op.kind = RG_OP_SETTLE;
    op.origin = rng_below(&s->rng, s->n + 1) + 1;
    op.pid = -1;
    op.replace = -1;
    op.below = fresh_ref(id - back, 0);
    return op;
}

/* Op k of batch id: the first is always fresh (its ref names the batch). */
static struct plan_op plan_op_at(struct sim *s, size_t id, uint32_t k)
{
    unsigned roll = rng_below(&s->rng, 1000);
    if (k > 0 && id > 0 && roll < RESEND_PER_MILLE) {
        return resent_op(s, id);
    }
    if (k > 0 && roll < RESEND_PER_MILLE + SETTLE_PER_MILLE) {
        return settle_op(s, id);
    }
    struct plan_op op = plan_one(s);
    op.ref = k > 0 && roll >= 1000 - REF0_PER_MILLE ? 0 : fresh_ref(id, k);
    return op;
}

/* A new batch of 1..MAX_OPS random ops, encoded; returns its id. */
static size_t new_batch(struct sim *s)
{
    size_t id = s->n_batches;
    struct batch *b = batch_push(s);
    struct rg_wbuf w;
    b->n = 1 + rng_below(&s->rng, MAX_OPS);
    for (uint32_t k = 0; k < b->n; k++) {
        b->ops[k] = plan_op_at(s, id, k);
        /* The guess as if this batch committed next, as a member's client
         * would see it after its answer. Value lists are not its business
         * (GROUP_ADD could pass the model's cap there). */
        if (b->ops[k].kind != RG_OP_GROUP_ADD && b->ops[k].kind != RG_OP_SETTLE) {
            model_apply_kind(&s->guess, &b->ops[k]);
        }
    }
    rg_wbuf_init(&w);
    encode_batch(&w, &s->world, b, -1);
    b->bytes = rg_wbuf_take(&w, &b->len);
    return id;
}

static void act_submit(struct sim *s)
{
    int l = pick_leader(s);
    if (l < 0) {
        return;
    }
    size_t id = new_batch(s);
    const struct batch *b = &s->batches[id];
    struct raft_buffer buf = {raft_malloc(b->len), b->len};
    struct pending *p = xmalloc(sizeof *p);
    if (buf.base == NULL) {
        fprintf(stderr, "sim_raft: out of memory\n");
        exit(EXIT_USAGE);
    }
    memcpy(buf.base, b->bytes, b->len);
    p->req.data = p;
    p->sim = s;
    p->batch = id;
    p->server = (unsigned)l;
    int rv = raft_apply(raft_of(s, (unsigned)l), &p->req, &buf, 1, on_applied);
    if (rv != 0) {
        /* Not expected on a leader with the capacity check off. libraft
         * 0.22 frees the buffer on some failure paths and not on others
         * (see node.c), so it is left alone; the run stops here. */
        fail(s, "raft_apply on leader %d failed: %s", l, raft_strerror(rv));
        free(p);
        return;
    }
    s->st.submitted++;
}

/* ---- faults -------------------------------------------------------------- */

/* Makes the fixture's links match s->net. raft_fixture_kill/revive and
 * (de)saturate only act on connected links (their asserts are compiled out
 * in Debian's build, so misuse would go unnoticed), and revive desaturates
 * links we cut: so everything is reconnected, kill/revive applied, the
 * wanted saturations set, then the wanted disconnections. No step runs in
 * between, so the transient states are never observed. */
static void sync_net(struct sim *s)
{
    struct raft_fixture *f = &s->fx;
    for (unsigned i = 0; i < s->n; i++) {
        for (unsigned j = 0; j < s->n; j++) {
            if (i != j) {
                raft_fixture_reconnect(f, i, j);
            }
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (s->net.dead[i] && raft_fixture_alive(f, i)) {
            raft_fixture_kill(f, i);
        } else if (!s->net.dead[i] && !raft_fixture_alive(f, i)) {
            raft_fixture_revive(f, i);
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        for (unsigned j = 0; j < s->n; j++) {
            bool want = s->net.cut[i][j] || s->net.dead[i] ||
                        s->net.dead[j];
            if (i == j || raft_fixture_saturated(f, i, j) == want) {
                continue;
            }
            if (want) {
                raft_fixture_saturate(f, i, j);
            } else {
                raft_fixture_desaturate(f, i, j);
            }
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        for (unsigned j = 0; j < s->n; j++) {
            if (s->net.disc[i][j]) {
                raft_fixture_disconnect(f, i, j);
            }
        }
    }
}

static unsigned other_than(struct sim *s, unsigned i)
{
    return (i + 1 + rng_below(&s->rng, s->n - 1)) % s->n;
}

static void act_partition(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n), j = other_than(s, i);
    s->net.disc[i][j] = s->net.disc[j][i] = true;
    vlog(s, "disconnect %u <-> %u", i, j);
}

static void act_isolate(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    for (unsigned j = 0; j < s->n; j++) {
        s->net.disc[i][j] = s->net.disc[j][i] = i != j;
    }
    vlog(s, "isolate %u", i);
}

static void act_reconnect(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n), j = other_than(s, i);
    s->net.disc[i][j] = s->net.disc[j][i] = false;
    vlog(s, "reconnect %u <-> %u", i, j);
}

static void act_cut(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n), j = other_than(s, i);
    s->net.cut[i][j] = true;
    vlog(s, "cut %u -> %u (one way)", i, j);
}

static void act_uncut(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n), j = other_than(s, i);
    s->net.cut[i][j] = false;
    vlog(s, "uncut %u -> %u", i, j);
}

static void act_heal_links(struct sim *s)
{
    memset(s->net.disc, 0, sizeof s->net.disc);
    memset(s->net.cut, 0, sizeof s->net.cut);
    vlog(s, "heal all links");
}

static unsigned dead_count(const struct sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->n; i++) {
        n += s->net.dead[i];
    }
    return n;
}

/* At most a minority dead at once, so progress stays possible. */
static void act_kill(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    if (s->net.dead[i] || dead_count(s) + 1 > (s->n - 1) / 2) {
        return;
    }
    s->net.dead[i] = true;
    vlog(s, "kill %u", i);
}

static void act_revive(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    if (s->net.dead[i]) {
        s->net.dead[i] = false;
        vlog(s, "revive %u", i);
    }
}

static void act_latency(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    unsigned ms = 1 + rng_below(&s->rng, 60);
    raft_fixture_set_network_latency(&s->fx, i, ms);
    vlog(s, "network latency of %u: %ums", i, ms);
}

/* Only ever raised between quiescent points: the fixture completes disk
 * writes by completion time, so a lower latency would let a later append
 * finish first, which raft_uv never does and libraft assumes away (an
 * assert, compiled out in Debian's build: last_stored then goes back and
 * the leader under-counts itself). */
static void act_disk_latency(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    if (s->disk_ms[i] < DISK_MS_MAX) {
        s->disk_ms[i] += 1 + rng_below(&s->rng, 10);
        raft_fixture_set_disk_latency(&s->fx, i, s->disk_ms[i]);
        vlog(s, "disk latency of %u: %ums", i, s->disk_ms[i]);
    }
}

/* At a quiescent point no write is pending: latencies may go down. */
static void reset_disk_latency(struct sim *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        s->disk_ms[i] = DISK_MS_DEFAULT;
        raft_fixture_set_disk_latency(&s->fx, i, DISK_MS_DEFAULT);
    }
}

/* libraft draws a random election timeout at every timer reset; the
 * fixture pins each server's to one value (which must lie in [T, 2T] or
 * its seed search never ends). Pinned, a lagging candidate can livelock
 * the cluster: libraft's candidates retry without pre-vote, bump the term
 * and depose the others at the same instants forever. So the sim redraws
 * them every election timeout of simulated time (from the step hook). */
static void draw_timeouts(struct sim *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        unsigned ms = ELECTION_TIMEOUT_MS +
                      rng_below(&s->rng, ELECTION_TIMEOUT_MS + 1);
        raft_fixture_set_randomized_election_timeout(&s->fx, i, ms);
    }
    s->next_draw = s->fx.time + ELECTION_TIMEOUT_MS;
}

/* The role of server i in r's current configuration (RAFT_SPARE if absent). */
static int role_in(struct raft *r, struct sim *s, unsigned i)
{
    raft_id id = raft_of(s, i)->id;
    for (unsigned k = 0; k < r->configuration.n; k++) {
        if (r->configuration.servers[k].id == id) {
            return r->configuration.servers[k].role;
        }
    }
    return RAFT_SPARE;
}

/* Whether server i is a voter in r's configuration (raft_fixture_start_elect
 * wants a voter, by the server's own view). */
static bool votes(struct raft *r, struct sim *s, unsigned i)
{
    return role_in(r, s, i) == RAFT_VOTER;
}

static unsigned voter_count(struct raft *r)
{
    unsigned n = 0;
    for (unsigned k = 0; k < r->configuration.n; k++) {
        n += r->configuration.servers[k].role == RAFT_VOTER;
    }
    return n;
}

/* i hears the leader l and is heard by it. */
static bool in_touch(struct sim *s, unsigned l, unsigned i)
{
    return !s->net.dead[i] && !s->net.disc[l][i] && !s->net.disc[i][l] &&
           !s->net.cut[l][i] && !s->net.cut[i][l];
}

/* i is in touch with l and has stored l's last committed configuration
 * (so it knows its own role in it). */
static bool in_step_with(struct sim *s, unsigned l, unsigned i)
{
    struct raft *r = raft_of(s, l);
    raft_index match = 0;
    return in_touch(s, l, i) &&
           raft_match_index(r, raft_of(s, i)->id, &match) == 0 &&
           match >= r->configuration_committed_index;
}

/* Demoting leaves only voters in step with the leader: each has the
 * entry that made it a voter. libraft has every server that is not a
 * voter in its own configuration deny votes (electionVote), so a voter
 * that missed its promotion cannot help elect anyone until a leader
 * reaches it; if its vote is needed, the cluster stalls. regentd's members
 * never demote and promote only synced standbys (docs/cluster.md). */
static bool may_demote(struct sim *s, struct raft *r, unsigned l, unsigned i)
{
    if (voter_count(r) - 1 <= s->n / 2) {
        return false;
    }
    for (unsigned k = 0; k < s->n; k++) {
        if (k != l && k != i && votes(r, s, k) && !in_step_with(s, l, k)) {
            return false;
        }
    }
    return true;
}

static void on_role_changed(struct raft_change *req, int status)
{
    (void)status;
    free(req);
}

/* The leader turns another server from voter to standby or back, with
 * regent's preconditions (a promotee the leader reaches, see may_demote):
 * configuration entries then reach followers in the middle of catch-up
 * batches, and promotions run libraft's catch-up rounds.
 * Standbys keep replicating, so quiescence still compares every server. */
static void act_role(struct sim *s)
{
    if (s->fx.leader_id == 0) {
        return;
    }
    unsigned l = (unsigned)s->fx.leader_id - 1;
    struct raft *r = raft_of(s, l);
    unsigned i = other_than(s, l);
    if (raft_state(r) != RAFT_LEADER || !in_touch(s, l, i)) {
        return;
    }
    int role = votes(r, s, i) ? RAFT_STANDBY : RAFT_VOTER;
    if (role == RAFT_STANDBY && !may_demote(s, r, l, i)) {
        return;
    }
    struct raft_change *req = xmalloc(sizeof *req);
    int rv = raft_assign(r, req, raft_of(s, i)->id, role, on_role_changed);
    if (rv != 0) {
        free(req); /* refused before libraft kept it: one change at a time */
        return;
    }
    s->st.role_changes++;
    vlog(s, "make %u a %s", i, role == RAFT_VOTER ? "voter" : "standby");
}

/* raft_fixture_elect/depose write follower-only fields of the union in
 * struct raft on every other server: only safe when all are followers. */
static bool all_followers_except(struct sim *s, unsigned except)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (i != except && raft_state(raft_of(s, i)) != RAFT_FOLLOWER) {
            return false;
        }
    }
    return true;
}

/* Starts an election on a random live server: the fixture gives it the
 * shortest timeout and everyone else the longest. Not raft_fixture_elect:
 * it asserts the server wins, which cannot be known from outside (with
 * pre-vote, followers that still know a leader refuse; log recency needs
 * the last log term, which struct raft does not expose). */
static void act_elect(struct sim *s)
{
    unsigned i = rng_below(&s->rng, s->n);
    if (s->fx.leader_id != 0 || s->net.dead[i] ||
        !all_followers_except(s, s->n) || !votes(raft_of(s, i), s, i)) {
        return;
    }
    vlog(s, "start an election on %u", i);
    raft_fixture_start_elect(&s->fx, i);
}

static void act_depose(struct sim *s)
{
    if (s->fx.leader_id == 0) {
        return;
    }
    unsigned l = (unsigned)s->fx.leader_id - 1;
    if (raft_state(raft_of(s, l)) != RAFT_LEADER ||
        !all_followers_except(s, l)) {
        return;
    }
    vlog(s, "depose %u", l);
    raft_fixture_depose(&s->fx);
}

struct action {
    unsigned per_mille; /* chance per step */
    void (*run)(struct sim *s);
    bool net; /* changes s->net: sync the fixture after */
};

static const struct action actions[] = {
    {150, act_submit, false},   {3, act_partition, true},
    {1, act_isolate, true},     {6, act_reconnect, true},
    {3, act_cut, true},         {5, act_uncut, true},
    {1, act_heal_links, true},  {2, act_kill, true},
    {5, act_revive, true},      {3, act_latency, false},
    {2, act_disk_latency, false},
    {2, act_elect, false},      {2, act_depose, false},
    {2, act_role, false},
};

static void schedule_step(struct sim *s)
{
    for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++) {
        if (s->failed || !rng_per_mille(&s->rng, actions[a].per_mille)) {
            continue;
        }
        s->st.faults += actions[a].run != act_submit;
        actions[a].run(s);
        if (actions[a].net) {
            sync_net(s);
        }
    }
}

/* ---- workarounds for raft_fixture and libraft bugs ----------------------- */

/* libraft's raft_init points io->data at the raft; raft->data is ours. */
static struct server *server_of_io(struct raft_io *io)
{
    struct raft *r = io->data;
    return r->data;
}

/* Works around a raft_fixture bug (libraft 0.22.1, still in master): its
 * in-memory disk truncate keeps `index - 1` entries, ignoring that an
 * installed snapshot moved the start of its array, so the first log
 * truncation after an InstallSnapshot reads past the array (ASan:
 * heap-buffer-overflow) and later frees garbage. After start the fixture
 * never reads those entries back (raft keeps its own log and the fixture
 * cannot restart a server), so once a server has begun installing a
 * snapshot its disk truncations are skipped; raft_fixture_close frees the
 * entries. */
static int sim_io_truncate(struct raft_io *io, raft_index index)
{
    struct server *sv = server_of_io(io);
    return sv->installing ? 0 : sv->io_truncate(io, index);
}

/* Puts a snapshot as regentd does: with the fixes, tracked, so that
 * sim_recv drops an InstallSnapshot arriving meanwhile (raft_fixes.h: a
 * NULL dereference in takeSnapshotCb during an own write, a leak during an
 * installed one). */
static int put_snapshot(struct server *sv, struct raft_io *io,
                        unsigned trailing, struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb)
{
    if (sv->sim->opt->no_raft_fixes) {
        return sv->io_snapshot_put(io, trailing, req, snapshot, cb);
    }
    return rg_tracked_snapshot_put(sv->io_snapshot_put, &sv->snapshot_writing,
                                   io, trailing, req, snapshot, cb);
}

/* Works around a libraft 0.22.1 bug (legacy.c, still in master) that the
 * fixture's disk exposes and raft_uv's does not: a follower applies
 * entries it has not yet persisted (commit_index may pass last_stored), so
 * it may snapshot past an append still in flight; if that compacts the
 * batch's first entry, the completion is dropped, last_stored never moves
 * again and the follower stalls for good (InstallSnapshot: "have all
 * entries"). raft_uv finishes a snapshot write only after the appends
 * before it (a barrier); the fixture completes requests by time alone. So
 * an own snapshot write completes no earlier than the pending appends. */
static int own_snapshot_put(struct server *sv, struct raft_io *io,
                            unsigned trailing,
                            struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot,
                            raft_io_snapshot_put_cb cb)
{
    struct sim *s = sv->sim;
    raft_time now = s->fx.time;
    raft_time done = sv->appends_done > now ? sv->appends_done : now;
    raft_fixture_set_disk_latency(&s->fx, sv->i, (unsigned)(done - now));
    int rv = put_snapshot(sv, io, trailing, req, snapshot, cb);
    raft_fixture_set_disk_latency(&s->fx, sv->i, s->disk_ms[sv->i]);
    return rv;
}

/* Notes when the server's last pending append completes. */
static int sim_io_append(struct raft_io *io, struct raft_io_append *req,
                         const struct raft_entry entries[], unsigned n,
                         raft_io_append_cb cb)
{
    struct server *sv = server_of_io(io);
    struct sim *s = sv->sim;
    raft_time done = s->fx.time + s->disk_ms[sv->i];
    sv->appends_done = done > sv->appends_done ? done : sv->appends_done;
    /* As node.c does: libraft's pending-change index (raft_fixes.h). */
    if (!s->opt->no_raft_fixes &&
        rg_fix_uncommitted_config(io->data, entries, n)) {
        s->st.config_fixes++;
    }
    return sv->io_append(io, req, entries, n, cb);
}

/* sim_io_truncate's workaround starts with the first installed snapshot. */
static int install_snapshot_put(struct server *sv, struct raft_io *io,
                                struct raft_io_snapshot_put *req,
                                const struct raft_snapshot *snapshot,
                                raft_io_snapshot_put_cb cb)
{
    sv->installing = true;
    return put_snapshot(sv, io, 0, req, snapshot, cb);
}

/* As node.c does: an InstallSnapshot during a snapshot write is dropped. */
static void sim_recv(struct raft_io *io, struct raft_message *msg)
{
    struct server *sv = server_of_io(io);
    if (rg_fix_drop_install_snapshot(sv->snapshot_writing, msg)) {
        sv->sim->st.installs_dropped++;
        return;
    }
    if (!sv->sim->opt->no_raft_fixes && !sv->sim->opt->no_reanchor &&
        rg_fix_append_below_snapshot(io->data, msg)) {
        sv->sim->st.reanchored++;
    }
    sv->recv(io, msg);
}

static int sim_io_start(struct raft_io *io, unsigned msecs,
                        raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    struct server *sv = server_of_io(io);
    sv->recv = recv;
    return sv->io_start(io, msecs, tick, sim_recv);
}

/* libraft persists an installed snapshot with trailing 0, its own with the
 * configured (non-zero) trailing. */
static int sim_io_snapshot_put(struct raft_io *io, unsigned trailing,
                               struct raft_io_snapshot_put *req,
                               const struct raft_snapshot *snapshot,
                               raft_io_snapshot_put_cb cb)
{
    struct server *sv = server_of_io(io);
    if (trailing == 0) {
        return install_snapshot_put(sv, io, req, snapshot, cb);
    }
    return own_snapshot_put(sv, io, trailing, req, snapshot, cb);
}

/* As node.c does: the term of a snapshot libraft sends from a newer
 * snapshot than it chose (raft_fixes.h, 4). The fixture's load completes a
 * disk latency later, so an own snapshot finishing meanwhile makes this
 * frequent. */
static int sim_io_snapshot_get(struct raft_io *io,
                               struct raft_io_snapshot_get *req,
                               raft_io_snapshot_get_cb cb)
{
    struct server *sv = server_of_io(io);
    if (sv->sim->opt->no_raft_fixes) {
        return sv->io_snapshot_get(io, req, cb);
    }
    return rg_tracked_snapshot_get(sv->io_snapshot_get, &sv->loaded, io, req, cb);
}

static int sim_io_send(struct raft_io *io, struct raft_io_send *req,
                       const struct raft_message *msg, raft_io_send_cb cb)
{
    struct server *sv = server_of_io(io);
    struct raft_message fixed;
    const struct raft_message *out = rg_fix_install_snapshot_term(&sv->loaded, msg, &fixed);
    if (out != msg) {
        sv->sim->st.terms_fixed++;
    }
    return sv->io_send(io, req, out, cb);
}

static void wrap_io(struct sim *s, unsigned i)
{
    struct raft *r = raft_of(s, i);
    struct server *sv = &s->srv[i];
    r->data = sv;
    if (s->opt->raw_fixture) {
        return;
    }
    sv->io_truncate = r->io->truncate;
    sv->io_snapshot_put = r->io->snapshot_put;
    sv->io_append = r->io->append;
    sv->io_start = r->io->start;
    sv->io_snapshot_get = r->io->snapshot_get;
    sv->io_send = r->io->send;
    r->io->append = sim_io_append;
    r->io->send = sim_io_send;
    r->io->start = sim_io_start;
    r->io->truncate = sim_io_truncate;
    r->io->snapshot_put = sim_io_snapshot_put;
    r->io->snapshot_get = sim_io_snapshot_get;
}

/* ---- per-step checks ----------------------------------------------------- */

static void check_one_leader_per_term(struct sim *s, unsigned i)
{
    struct raft *r = raft_of(s, i);
    raft_term t = r->current_term;
    if (t >= s->cap_terms) {
        s->term_leader = grow_zeroed(s->term_leader, &s->cap_terms, t + 1,
                                     sizeof *s->term_leader);
    }
    if (s->term_leader[t] == 0) {
        s->term_leader[t] = r->id;
        s->st.elections++;
    } else if (s->term_leader[t] != r->id) {
        fail(s, "two leaders in term %llu: servers %llu and %llu",
             (unsigned long long)t, (unsigned long long)s->term_leader[t],
             (unsigned long long)r->id);
    }
}

/* Entries are applied as soon as they are committed (a synchronous FSM),
 * and applying a change entry settles it: a pending change at or below
 * the last applied index is one that can never settle, which wedges every
 * later membership change once this server leads (raft_fixes.h). */
static void check_pending_change(struct sim *s, unsigned i)
{
    struct raft *r = raft_of(s, i);
    raft_index pending = r->configuration_uncommitted_index;
    if (pending != 0 && pending <= raft_last_applied(r)) {
        fail(s, "server %u: pending configuration change at %llu, but it has "
                "applied up to %llu",
             i, (unsigned long long)pending,
             (unsigned long long)raft_last_applied(r));
    }
}

static void check_servers(struct sim *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        struct raft *r = raft_of(s, i);
        struct server *sv = &s->srv[i];
        if (raft_state(r) == RAFT_LEADER) {
            check_one_leader_per_term(s, i);
        }
        check_pending_change(s, i);
        if (raft_commit_index(r) < sv->last_commit) {
            s->st.commit_regressions++;
            vlog(s, "server %u's commit index went back from %llu to %llu "
                    "(libraft bug, see sim_fsm_snapshot)",
                 i, (unsigned long long)sv->last_commit,
                 (unsigned long long)raft_commit_index(r));
        }
        sv->last_commit = raft_commit_index(r);
    }
}

/* Runs after every fixture step, including those taken inside
 * raft_fixture_elect/depose/step_until. */
static void on_step(struct raft_fixture *f, struct raft_fixture_event *ev)
{
    /* The hook gets only the fixture, which is the sim's first member. */
    struct sim *s =
        (struct sim *)(void *)((char *)f - offsetof(struct sim, fx));
    s->steps++;
    s->digest = mix(s->digest, ((uint64_t)raft_fixture_event_type(ev) << 8) |
                                   raft_fixture_event_server_index(ev));
    s->digest = mix(mix(s->digest, f->time), f->leader_id);
    s->digest = mix(s->digest, f->commit_index);
    check_servers(s);
    if (f->time >= s->next_draw) {
        draw_timeouts(s);
    }
}

/* ---- check (c): quiescence ----------------------------------------------- */

/* A stable leader whose whole log is committed and applied everywhere,
 * with no disk write pending. */
static bool converged(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    if (s->failed) {
        return true;
    }
    if (f->leader_id == 0) {
        return false;
    }
    struct raft *l = raft_of(s, (unsigned)f->leader_id - 1);
    raft_index c = raft_commit_index(l);
    if (raft_state(l) != RAFT_LEADER || c != l->last_stored) {
        return false;
    }
    for (unsigned i = 0; i < s->n; i++) {
        struct raft *r = raft_of(s, i);
        /* A follower may still hold stale entries past c: the leader has
         * nothing to overwrite them with. No append may be pending when
         * the disk latencies go back down (see act_disk_latency). */
        if (raft_last_applied(r) != c || r->last_stored < c ||
            s->srv[i].appends_done >= f->time) {
            return false;
        }
    }
    return true;
}

static void compare_snapshots(struct sim *s)
{
    uint8_t *first = NULL, *p;
    size_t first_len = 0, len;
    char why[200];
    for (unsigned i = 0; i < s->n && !s->failed; i++) {
        if (rg_fsm_snapshot(&s->srv[i].fsm, &p, &len) != 0) {
            fail(s, "(c) server %u: rg_fsm_snapshot ran out of memory", i);
        } else if (i == 0) {
            first = p;
            first_len = len;
            continue;
        } else if (!same(p, len, first, first_len)) {
            fail(s, "(c) at quiescence server %u's snapshot (%zu bytes) "
                    "differs from server 0's (%zu bytes) from byte %zu",
                 i, len, first_len, first_difference(p, len, first, first_len));
        }
        free(p);
    }
    if (!s->failed && !table_matches(&s->world, &s->srv[0].fsm, &s->model,
                                     why, sizeof why)) {
        fail(s, "(c) at quiescence the tables are not the model's: %s", why);
    }
    if (!s->failed) {
        check_snapshot_bytes(s, first, first_len, s->model_index,
                             "(c) at quiescence, server 0's snapshot");
    }
    free(first);
}

/* Who is where, for the failure message. */
static void describe_servers(struct sim *s, char *out, size_t n)
{
    size_t k = 0;
    static const char *const states[] = {"unavailable", "follower",
                                         "candidate", "leader"};
    for (unsigned i = 0; i < s->n && k < n; i++) {
        struct raft *r = raft_of(s, i);
        unsigned st = raft_state(r);
        int w = snprintf(out + k, n - k,
                         "%s%u: %s term %llu commit %llu applied %llu "
                         "stored %llu",
                         i ? "; " : "", i,
                         st < sizeof states / sizeof states[0] ? states[st]
                                                              : "?",
                         (unsigned long long)r->current_term,
                         (unsigned long long)raft_commit_index(r),
                         (unsigned long long)raft_last_applied(r),
                         (unsigned long long)r->last_stored);
        k += w > 0 ? (size_t)w : 0;
    }
}

static void quiesce(struct sim *s)
{
    char who[400];
    memset(&s->net, 0, sizeof s->net);
    sync_net(s);
    if (!raft_fixture_step_until(&s->fx, converged, s, QUIESCE_MAX_MS)) {
        describe_servers(s, who, sizeof who);
        fail(s, "(c) no convergence %u simulated ms after healing everything "
                "(fixture leader %llu): %s",
             QUIESCE_MAX_MS, (unsigned long long)s->fx.leader_id, who);
        return;
    }
    if (!s->failed) {
        compare_snapshots(s);
    }
    if (!s->opt->raw_fixture) { /* only the wrappers track appends */
        reset_disk_latency(s);
    }
    s->st.quiesces++;
    vlog(s, "quiescent at index %llu, snapshots identical",
         (unsigned long long)raft_commit_index(raft_of(s, 0)));
}

/* ---- setup and teardown -------------------------------------------------- */

/* -v: libraft's info-level diagnostics, with the server and the time. */
static void trace_emit(struct raft_tracer *t, int type, const void *data)
{
    const struct server *sv = t->impl;
    const struct raft_tracer_info *info = data;
    if (type == RAFT_TRACER_DIAGNOSTIC && info->diagnostic.level <= 3) {
        printf("    [%llums] %u: %s\n", (unsigned long long)sv->sim->fx.time,
               sv->i, info->diagnostic.message);
    }
}

/* The fixture's own tracer prints every diagnostic to stderr; without -v
 * no tracer at all, which also spares libraft formatting them. */
static void set_tracer(struct sim *s, unsigned i)
{
    struct server *sv = &s->srv[i];
    sv->tracer.impl = sv;
    sv->tracer.version = 2;
    sv->tracer.emit = trace_emit;
    raft_of(s, i)->tracer = s->opt->verbose ? &sv->tracer : NULL;
}

static void tune(struct sim *s, unsigned i)
{
    struct raft *r = raft_of(s, i);
    set_tracer(s, i);
    wrap_io(s, i);
    raft_set_election_timeout(r, ELECTION_TIMEOUT_MS);
    raft_set_heartbeat_timeout(r, HEARTBEAT_MS);
    raft_set_pre_vote(r, true);
    raft_set_max_inflight_entries(r, MAX_INFLIGHT_ENTRIES);
    /* Servers snapshot at different paces, as members whose thresholds
     * differ or whose applies batch differently do: a follower can then
     * snapshot past its leader (raft_fixes.h, 3). */
    raft_set_snapshot_threshold(r, s->snap_threshold * (1 + i % 3));
    raft_set_snapshot_trailing(r, s->snap_trailing);
    raft_set_capacity_threshold(r, 0);
}

static void server_init(struct sim *s, unsigned i)
{
    struct server *sv = &s->srv[i];
    /* Every daemon has its own SipHash key: snapshots must still agree. */
    struct rg_sipkey key = {rng_next(&s->rng), rng_next(&s->rng)};
    sv->sim = s;
    sv->i = i;
    sv->id = i + 1; /* the fixture's ids */
    mstate_init(&sv->mirror);
    if (rg_fsm_init(&sv->fsm, sv->id, key) != 0) {
        fprintf(stderr, "sim_raft: rg_fsm_init failed\n");
        exit(EXIT_USAGE);
    }
    sv->iface.version = 2;
    sv->iface.data = sv;
    sv->iface.apply = sim_fsm_apply;
    sv->iface.snapshot = sim_fsm_snapshot;
    sv->iface.restore = sim_fsm_restore;
    sv->iface.snapshot_finalize = sim_fsm_snapshot_finalize;
}

static void setup_failed(const char *what, int rv)
{
    fprintf(stderr, "sim_raft: %s failed: %s\n", what, raft_strerror(rv));
    exit(EXIT_USAGE);
}

static void sim_init(struct sim *s, const struct options *o, uint64_t seed,
                     unsigned n)
{
    struct raft_configuration conf;
    int rv;
    memset(s, 0, sizeof *s);
    s->opt = o;
    s->seed = seed;
    s->n = n;
    rng_seed(&s->rng, seed);
    s->snap_threshold = 4 + rng_below(&s->rng, 29);
    s->snap_trailing = 1 + rng_below(&s->rng, 8);
    world_init(&s->world);
    mstate_init(&s->model);
    s->guess = s->model;
    rec_at(s, 0)->after = s->model;
    rec_at(s, 0)->dsec = dsec_of_model(s, 0); /* the empty set */
    if ((rv = raft_fixture_init(&s->fx)) != 0) {
        setup_failed("raft_fixture_init", rv);
    }
    for (unsigned i = 0; i < n; i++) {
        server_init(s, i);
        if ((rv = raft_fixture_grow(&s->fx, &s->srv[i].iface)) != 0) {
            setup_failed("raft_fixture_grow", rv);
        }
        tune(s, i);
    }
    draw_timeouts(s); /* the fixture's defaults lie outside [T, 2T] */
    reset_disk_latency(s);
    if ((rv = raft_fixture_configuration(&s->fx, n, &conf)) != 0) {
        setup_failed("raft_fixture_configuration", rv);
    }
    rv = raft_fixture_bootstrap(&s->fx, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) {
        setup_failed("raft_fixture_bootstrap", rv);
    }
    raft_fixture_hook(&s->fx, on_step);
    if ((rv = raft_fixture_start(&s->fx)) != 0) {
        setup_failed("raft_fixture_start", rv);
    }
}

/* The fixture first: closing it fires the callbacks of pending requests
 * and may still apply entries, which use everything else. */
static void sim_close(struct sim *s)
{
    raft_fixture_close(&s->fx);
    for (unsigned i = 0; i < s->n; i++) {
        rg_fsm_close(&s->srv[i].fsm);
    }
    for (size_t b = 0; b < s->n_batches; b++) {
        free(s->batches[b].bytes);
    }
    free(s->batches);
    for (size_t d = 0; d < s->n_dsecs; d++) {
        free(s->dsecs[d].bytes);
    }
    free(s->dsecs);
    mdedup_free(&s->mdedup);
    free(s->recs);
    free(s->term_leader);
}

/* ---- running seeds ------------------------------------------------------- */

/* Read only by the crash handler: a signal handler has no other way to
 * learn which seed and step were running. */
static const struct sim *volatile crash_ctx;

static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        out[k++] = tmp[--n];
    }
    return k;
}

/* Async-signal-safe: names the seed and step of a crash inside libraft or
 * the FSM, then lets the default action happen. */
static void crash_report(void)
{
    const struct sim *s = crash_ctx;
    char line[160];
    size_t n = 0;
    if (s == NULL) {
        return;
    }
    memcpy(line, "sim_raft: CRASHED in seed ", 26);
    n = 26;
    n += fmt_u64(line + n, s->seed);
    memcpy(line + n, " at step ", 9);
    n += 9;
    n += fmt_u64(line + n, s->steps);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        return;
    }
}

#ifdef __SANITIZE_ADDRESS__
static void install_crash_report(void)
{
    __asan_set_death_callback(crash_report); /* ASan owns the signals */
}
#else
static void on_crash(int sig)
{
    crash_report();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_report(void)
{
    signal(SIGSEGV, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
}
#endif

struct outcome {
    bool failed;
    uint64_t digest;
    struct stats st;
};

static void run_loop(struct sim *s)
{
    unsigned long next_quiesce = QUIESCE_EVERY;
    while (s->steps < s->opt->steps && !s->failed) {
        schedule_step(s);
        if (!s->failed) {
            raft_fixture_step(&s->fx);
        }
        if (!s->failed && s->steps >= next_quiesce) {
            quiesce(s);
            next_quiesce = s->steps + QUIESCE_EVERY;
        }
    }
    if (!s->failed) {
        quiesce(s);
    }
}

/* The flags that change the run, for the reproduce line. */
static void describe_flags(const struct options *o, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s%s%s",
             o->inject == INJECT_SKIP      ? " --inject-bug skip"
             : o->inject == INJECT_CORRUPT ? " --inject-bug corrupt"
                                           : "",
             o->raw_fixture ? " --raw-fixture" : "",
             o->no_guard ? " --no-snapshot-guard" : "",
             o->no_raft_fixes ? " --no-raft-fixes" : "",
             o->no_reanchor ? " --no-reanchor" : "");
}

static void print_failure(const struct sim *s)
{
    char flags[100];
    describe_flags(s->opt, flags, sizeof flags);
    fprintf(stderr,
            "sim_raft: FAILED seed %" PRIu64 " (%u servers) at step %lu, "
            "t=%llums\n  %s\n  reproduce: setarch -R sim_raft --seed %" PRIu64
            " --seeds 1 --servers %u --steps %lu%s -v\n",
            s->seed, s->n, s->fail_step, (unsigned long long)s->fx.time,
            s->fail_msg, s->seed, s->n, s->opt->steps, flags);
}

static struct outcome run_seed(const struct options *o, uint64_t seed,
                               unsigned n)
{
    struct outcome out;
    struct sim *s = xmalloc(sizeof *s);
    sim_init(s, o, seed, n);
    crash_ctx = s;
    run_loop(s);
    s->st.sim_ms = s->fx.time;
    if (s->failed) {
        print_failure(s);
    }
    sim_close(s);
    crash_ctx = NULL;
    if (o->verbose) {
        printf("seed %" PRIu64 " (%u servers, snapshot threshold %u trailing "
               "%u): %lu steps, %llu ms, %lu committed, %lu acked, "
               "%lu snapshots, %lu restores, %lu elections, digest %016" PRIx64
               "\n",
               seed, n, s->snap_threshold, s->snap_trailing, s->steps,
               (unsigned long long)s->st.sim_ms, s->st.committed, s->st.acked,
               s->st.snapshots, s->st.restores, s->st.elections, s->digest);
    }
    out.failed = s->failed;
    out.digest = s->digest;
    out.st = s->st;
    out.st.digest = s->digest; /* what the summary's digest mixes */
    free(s);
    return out;
}

static void add_stats(struct stats *t, const struct stats *a)
{
    t->submitted += a->submitted;
    t->committed += a->committed;
    t->acked += a->acked;
    t->unacked += a->unacked;
    t->replies_no += a->replies_no;
    t->resent += a->resent;
    t->copies_skipped += a->copies_skipped;
    t->settles += a->settles;
    t->dedup_max = a->dedup_max > t->dedup_max ? a->dedup_max : t->dedup_max;
    t->group_rows_max = max_ul(t->group_rows_max, a->group_rows_max);
    t->group_values_max = max_ul(t->group_values_max, a->group_values_max);
    t->meta_rows_max = max_ul(t->meta_rows_max, a->meta_rows_max);
    t->snapshots += a->snapshots;
    t->restores += a->restores;
    t->faults += a->faults;
    t->elections += a->elections;
    t->quiesces += a->quiesces;
    t->commit_regressions += a->commit_regressions;
    t->snapshots_refused += a->snapshots_refused;
    t->cas_ok += a->cas_ok;
    t->cas_no += a->cas_no;
    t->many_ops += a->many_ops;
    t->versions_max = max_ul(t->versions_max, a->versions_max);
    t->role_changes += a->role_changes;
    t->config_fixes += a->config_fixes;
    t->installs_dropped += a->installs_dropped;
    t->reanchored += a->reanchored;
    t->terms_fixed += a->terms_fixed;
    t->sim_ms += a->sim_ms;
    t->digest = mix(t->digest, a->digest);
}

static int usage(void)
{
    fprintf(stderr, "usage: sim_raft [--seed N] [--seeds K] [--steps S] "
                    "[--servers 3|5] [-v]\n");
    return EXIT_USAGE;
}

static bool parse_u64(const char *a, uint64_t *v)
{
    char *end;
    if (a == NULL || *a == '\0') {
        return false;
    }
    *v = strtoull(a, &end, 10);
    return *end == '\0';
}

static bool parse_args(int argc, char **argv, struct options *o)
{
    uint64_t v;
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->seeds = 64; /* about 2 s at -O2, 10 s under ASan+UBSan */
    o->steps = 20000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            o->verbose = true;
            continue;
        }
        if (strcmp(a, "--raw-fixture") == 0) {
            o->raw_fixture = true;
            continue;
        }
        if (strcmp(a, "--no-snapshot-guard") == 0) {
            o->no_guard = true;
            continue;
        }
        if (strcmp(a, "--no-raft-fixes") == 0) {
            o->no_raft_fixes = true;
            continue;
        }
        if (strcmp(a, "--no-reanchor") == 0) {
            o->no_reanchor = true;
            continue;
        }
        if (strcmp(a, "--inject-bug") == 0 && next != NULL) {
            o->inject = strcmp(next, "skip") == 0      ? INJECT_SKIP
                        : strcmp(next, "corrupt") == 0 ? INJECT_CORRUPT
                                                       : INJECT_NONE;
            if (o->inject == INJECT_NONE) {
                return false;
            }
        } else if (!parse_u64(next, &v)) {
            return false;
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = v;
        } else if (strcmp(a, "--seeds") == 0 && v > 0 && v < 1000000) {
            o->seeds = (unsigned)v;
        } else if (strcmp(a, "--steps") == 0 && v > 0 && v < 1000000000) {
            o->steps = (unsigned long)v;
        } else if (strcmp(a, "--servers") == 0 && (v == 3 || v == 5)) {
            o->servers = (unsigned)v;
        } else {
            return false;
        }
        i++;
    }
    return true;
}

static void print_summary(const struct options *o, const struct stats *t)
{
    printf("sim_raft: ok: seeds %" PRIu64 "..%" PRIu64 " x %lu steps (%s "
           "servers; seed %" PRIu64 " replayed identically), %llu s "
           "simulated: %lu batches committed of %lu submitted (%lu "
           "acknowledged, %lu lost leadership first), %lu NO replies, "
           "%lu ops re-sent, %lu copies skipped, %lu settles (at most %lu "
           "refs remembered), %lu compare-and-sets applied and %lu refused "
           "(NO), %lu bulk ops, up to %lu versions given, "
           "at most %lu group entries (longest value "
           "list %lu) and %lu metadata keys, "
           "%lu snapshots, %lu restores, %lu elections, %lu role changes, "
           "%lu faults, %lu heal-and-compare; libraft anomalies: %lu commit "
           "index regressions, %lu snapshot attempts refused (commit < "
           "applied), %lu pending-change indexes corrected, %lu "
           "InstallSnapshots dropped during a snapshot write, %lu "
           "AppendEntries re-anchored at a follower's snapshot, %lu "
           "snapshot terms corrected; trace digest %016" PRIx64 "\n",
           o->seed, o->seed + o->seeds - 1, o->steps,
           o->servers == 3   ? "3"
           : o->servers == 5 ? "5"
                             : "3 and 5",
           o->seed, (unsigned long long)t->sim_ms / 1000, t->committed,
           t->submitted, t->acked, t->unacked, t->replies_no, t->resent,
           t->copies_skipped, t->settles, t->dedup_max, t->cas_ok, t->cas_no,
           t->many_ops, t->versions_max, t->group_rows_max,
           t->group_values_max, t->meta_rows_max, t->snapshots,
           t->restores, t->elections, t->role_changes, t->faults,
           t->quiesces, t->commit_regressions, t->snapshots_refused,
           t->config_fixes, t->installs_dropped, t->reanchored,
           t->terms_fixed, t->digest);
}

int main(int argc, char **argv)
{
    struct options o;
    struct stats total;
    if (!parse_args(argc, argv, &o)) {
        return usage();
    }
    memset(&total, 0, sizeof total);
    if (o.verbose) { /* the trace must be complete when a crash cuts it */
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    install_crash_report();
    for (unsigned k = 0; k < o.seeds; k++) {
        uint64_t seed = o.seed + k;
        unsigned n = o.servers ? o.servers : (seed % 2 ? 3 : 5);
        struct outcome a = run_seed(&o, seed, n);
        if (a.failed) {
            return EXIT_VIOLATION;
        }
        if (k == 0) { /* same seed, same trace */
            struct outcome b = run_seed(&o, seed, n);
            if (b.failed || b.digest != a.digest) {
                fprintf(stderr, "sim_raft: FAILED seed %" PRIu64 " is not "
                                "deterministic: trace %016" PRIx64 " then "
                                "%016" PRIx64 "\n",
                        seed, a.digest, b.digest);
                return EXIT_VIOLATION;
            }
        }
        add_stats(&total, &a.st);
    }
    print_summary(&o, &total);
    return 0;
}
