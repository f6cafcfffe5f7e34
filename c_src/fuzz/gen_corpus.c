/* Writes the seed corpus of every fuzz target: a handful of valid inputs
 * per target, built with regentd's own encoders so they stay valid when the
 * formats change. `make -C c_src fuzz-corpus` runs it as
 * `gen_corpus fuzz/corpus`, creating fuzz/corpus/<target>/<seed> files:
 * port frames (START, OPS with each op kind, STOP, STATUS_REQ, ALIVE) for
 * fuzz_proto, padded log entries for fuzz_entry (one per kind, mixes of
 * the name ops and of the Registry ops on groups and metadata, re-sent
 * copies with a SETTLE, and the atomic and bulk ops: compare-and-sets at
 * the right and a stale version, READ_ENTRY, REGISTER_MANY with every kind
 * of answer, UNREGISTER_MANY), snapshots of the FSM after those entries
 * (RGS4: all three tables with the names' versions, and the
 * de-duplication sections) for fuzz_snapshot, and handshakes for
 * fuzz_handshake. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "canon.h"
#include "cmd.h"
#include "fsm.h"
#include "handshake.h"
#include "proto.h"

static const char *out_dir;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        die(path);
    }
}

static void write_seed(const char *target, const char *name,
                       const struct rg_wbuf *w)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(w->data, 1, w->len, f) != w->len || fclose(f) != 0) {
        die(path);
    }
}

/* ---- terms -------------------------------------------------------------- */

struct term {
    uint8_t b[64];
    uint32_t n;
};

static struct term pid_on(const char *node, uint8_t id, uint8_t creation)
{
    struct term t = {{0}, 0};
    size_t len = strlen(node);
    t.b[t.n++] = RG_ETF_NEW_PID;
    t.b[t.n++] = RG_ETF_SMALL_ATOM_UTF8;
    t.b[t.n++] = (uint8_t)len;
    memcpy(t.b + t.n, node, len);
    t.n += (uint32_t)len;
    uint8_t tail[12] = {0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0, creation};
    memcpy(t.b + t.n, tail, sizeof tail);
    t.n += sizeof tail;
    return t;
}

static struct term from_bytes(const uint8_t *p, size_t n)
{
    struct term t;
    memcpy(t.b, p, n);
    t.n = (uint32_t)n;
    return t;
}

/* Names of several shapes; all canonical (checked in main). */
static const uint8_t name0[] = {119, 3, 'f', 'o', 'o'};
static const uint8_t name1[] = {104, 3, 119, 5, 'u', 's', 'e', 'r', 's', 109,
                                0,   0, 0,   5, 'a', 'l', 'i', 'c', 'e', 97, 42};
static const uint8_t name2[] = {116, 0, 0, 0, 2, 119, 1, 97, 97, 1,
                                119, 1, 98, 98, 0, 0, 1, 0};
static const uint8_t name3[] = {108, 0, 0, 0, 2, 70, 63, 248, 0, 0, 0, 0, 0, 0,
                                110, 5, 0, 0, 0, 0, 0, 1, 106};
static const uint8_t name4[] = {104, 2, 77, 0, 0, 0, 2, 3, 1, 64, 90, 0, 1,
                                119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7};

/* The highest op kind of cmd.h: seeds cover 1..LAST_KIND. */
#define LAST_KIND RG_OP_META_CAS

static struct term names[5];
static struct term pids[3];

/* The items op_of gives REGISTER_MANY (name 0 for pid 0; name 1 for pid
 * 1 replacing pid 0; name 0 again for pid 1, which it holds by then:
 * NO) and UNREGISTER_MANY (names 0, 2 and 0 again); see build_items. */
static struct rg_wbuf reg_items, unreg_items;

static void item_reg(struct rg_wbuf *w, int name, int pid, int replace,
                     const char *meta)
{
    rg_wbuf_blob(w, names[name].b, names[name].n);
    rg_wbuf_blob(w, pids[pid].b, pids[pid].n);
    rg_wbuf_blob(w, meta, strlen(meta));
    rg_wbuf_blob(w, replace < 0 ? NULL : pids[replace].b,
                 replace < 0 ? 0 : pids[replace].n);
}

static void build_items(void)
{
    rg_wbuf_init(&reg_items);
    rg_wbuf_init(&unreg_items);
    item_reg(&reg_items, 0, 0, -1, "\x83\x6a");
    item_reg(&reg_items, 1, 1, 0, "");
    item_reg(&reg_items, 0, 1, -1, "");
    rg_wbuf_blob(&unreg_items, names[0].b, names[0].n);
    rg_wbuf_blob(&unreg_items, names[2].b, names[2].n);
    rg_wbuf_blob(&unreg_items, names[0].b, names[0].n);
}

static struct rg_op op_of(uint8_t kind, uint64_t ref, int name, int pid)
{
    struct rg_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.origin = 1;
    op.ref = ref;
    op.key = names[name].b;
    op.key_len = names[name].n;
    op.pid = pids[pid].b;
    op.pid_len = pids[pid].n;
    if (kind == RG_OP_REGISTER || kind == RG_OP_SET_META ||
        kind >= RG_OP_REGISTER_NEW) { /* every Registry op has a value */
        op.meta = (const uint8_t *)"\x83\x74\0\0\0\0";
        op.meta_len = kind == RG_OP_META_DEL ? 0 : 6;
    }
    if (kind == RG_OP_PURGE_NODE) {
        op.key = NULL;
        op.key_len = 0;
        op.pid = (const uint8_t *)"a@h";
        op.pid_len = 3;
        op.creation = 1;
    }
    if (kind == RG_OP_SET_META_IF_VERSION) {
        op.version = 1;
    }
    if (kind == RG_OP_META_CAS) { /* put if absent */
        op.pid = NULL;
        op.pid_len = 0;
        op.cas_mode = RG_CAS_VALUE;
    }
    if (kind == RG_OP_REGISTER_MANY || kind == RG_OP_UNREGISTER_MANY) {
        const struct rg_wbuf *it = kind == RG_OP_REGISTER_MANY ? &reg_items
                                                               : &unreg_items;
        op.key = NULL;
        op.key_len = 0;
        op.pid = NULL;
        op.pid_len = 0;
        op.count = 3;
        op.items = it->data;
        op.items_len = (uint32_t)it->len;
    }
    if (kind == RG_OP_SETTLE) { /* ref 0; the ref given is `below` */
        memset(&op, 0, sizeof op);
        op.kind = kind;
        op.origin = 1;
        op.below = ref;
    }
    return op;
}

/* ---- per target --------------------------------------------------------- */

static void ops_frame(struct rg_wbuf *w, const struct rg_op *ops, uint32_t n)
{
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_OPS);
    rg_wbuf_u32(w, n);
    for (uint32_t i = 0; i < n; i++) {
        rg_op_encode(w, &ops[i], false);
    }
}

static void seeds_proto(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, RG_PROTO_VERSION);
    rg_wbuf_u8(&w, RG_MSG_START);
    rg_wbuf_u64(&w, 0);
    rg_wbuf_u8(&w, 1);
    rg_wbuf_blob(&w, "/dev/shm/regent-a", 17);
    rg_wbuf_blob(&w, "127.0.0.1", 9);
    rg_wbuf_u16(&w, 4100);
    rg_wbuf_u16(&w, 4199);
    rg_wbuf_blob(&w, "0123456789abcdef0123456789abcdef", 32);
    rg_wbuf_u32(&w, 8192);
    rg_wbuf_u32(&w, 2048);
    rg_wbuf_u8(&w, 1); /* TLS with the PSK: no files, no verify */
    rg_wbuf_blob(&w, "", 0);
    rg_wbuf_blob(&w, "", 0);
    rg_wbuf_blob(&w, "", 0);
    rg_wbuf_u8(&w, 0);
    write_seed("fuzz_proto", "start", &w);

    static const char *kinds[] = {"",         "register",   "unregister",
                                  "unreg_owner", "set_meta", "purge",
                                  "read",     "settle",     "register_new",
                                  "set_meta_owner", "group_add", "group_del",
                                  "meta_put", "meta_del", "set_meta_version",
                                  "read_entry", "register_many",
                                  "unregister_many"};
    struct rg_op mix[LAST_KIND];
    for (uint8_t k = RG_OP_REGISTER; k <= LAST_KIND; k++) {
        struct rg_op op = op_of(k, 100 + k, k % 5, k % 3);
        if (k == RG_OP_REGISTER) {
            op.replace = pids[2].b;
            op.replace_len = pids[2].n;
        }
        mix[k - 1] = op;
        char name[32];
        snprintf(name, sizeof name, "ops_%s", kinds[k]);
        rg_wbuf_reset(&w);
        ops_frame(&w, &op, 1);
        write_seed("fuzz_proto", name, &w);
    }
    rg_wbuf_reset(&w);
    ops_frame(&w, mix, RG_OP_SETTLE);
    write_seed("fuzz_proto", "ops_mixed", &w);
    rg_wbuf_reset(&w);
    ops_frame(&w, mix + RG_OP_SETTLE, RG_OP_META_DEL - RG_OP_SETTLE);
    write_seed("fuzz_proto", "ops_registry", &w);
    rg_wbuf_reset(&w);
    ops_frame(&w, mix + RG_OP_META_DEL, LAST_KIND - RG_OP_META_DEL);
    write_seed("fuzz_proto", "ops_atomic_bulk", &w);

    static const uint8_t stop[] = {RG_PROTO_VERSION, RG_MSG_STOP};
    static const uint8_t status[] = {RG_PROTO_VERSION, RG_MSG_STATUS_REQ};
    rg_wbuf_reset(&w);
    rg_wbuf_put(&w, stop, sizeof stop);
    write_seed("fuzz_proto", "stop", &w);
    rg_wbuf_reset(&w);
    rg_wbuf_put(&w, status, sizeof status);
    write_seed("fuzz_proto", "status_req", &w);
    static const uint8_t alive[] = {RG_PROTO_VERSION, RG_MSG_ALIVE};
    rg_wbuf_reset(&w);
    rg_wbuf_put(&w, alive, sizeof alive);
    write_seed("fuzz_proto", "alive", &w);
    rg_wbuf_free(&w);
}

static void entry_of(struct rg_wbuf *w, const struct rg_op *ops, uint32_t n)
{
    size_t off;
    rg_wbuf_reset(w);
    rg_entry_begin(w, &off);
    for (uint32_t i = 0; i < n; i++) {
        rg_op_encode(w, &ops[i], true);
    }
    rg_wbuf_patch_u32(w, off, n);
    rg_entry_finish(w);
}

static void snapshot_seed(const struct rg_fsm *f, const char *name)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    if (rg_fsm_snapshot(f, &w.data, &w.len) != 0) {
        die("snapshot");
    }
    write_seed("fuzz_snapshot", name, &w);
    rg_wbuf_free(&w);
}

/* Applies the entry in w to f, or dies. */
static void apply_seed(struct rg_fsm *f, const struct rg_wbuf *w)
{
    if (rg_fsm_apply(f, w->data, w->len) != 0) {
        die("apply");
    }
}

/* The Registry ops on f (which holds names already): a group entry with a
 * value twice, one value removed, another entry removed whole, metadata
 * put always and if absent and removed, REGISTER_NEW on a free and on a
 * held name, SET_META_IF_OWNER by the holder and by another pid; then
 * re-sent copies of some of them (skipped) and a PURGE_NODE that clears
 * group entries. Snapshots after each: every table has rows. */
static void seeds_registry(struct rg_fsm *f, struct rg_wbuf *w)
{
    struct rg_op ops[12] = {
        op_of(RG_OP_GROUP_ADD, 40, 0, 0),
        op_of(RG_OP_GROUP_ADD, 41, 0, 0),          /* the same value twice */
        op_of(RG_OP_GROUP_ADD, 42, 0, 1),
        op_of(RG_OP_GROUP_ADD, 43, 3, 2),
        op_of(RG_OP_GROUP_DEL, 44, 0, 1),          /* all of (0, 1)'s */
        op_of(RG_OP_GROUP_DEL, 45, 3, 2),          /* one value */
        op_of(RG_OP_META_PUT, 46, 1, 0),
        op_of(RG_OP_META_PUT, 47, 2, 0),           /* if absent */
        op_of(RG_OP_META_DEL, 48, 1, 0),
        op_of(RG_OP_REGISTER_NEW, 49, 3, 1),       /* free by now */
        op_of(RG_OP_REGISTER_NEW, 50, 3, 1),       /* held by itself: NO */
        op_of(RG_OP_SET_META_IF_OWNER, 51, 3, 0)}; /* not the holder */
    ops[4].flag = true;
    ops[7].flag = true;
    entry_of(w, ops, 12);
    write_seed("fuzz_entry", "registry12", w);
    apply_seed(f, w);
    snapshot_seed(f, "after_registry");

    struct rg_op again[5] = {
        op_of(RG_OP_GROUP_ADD, 41, 0, 0),          /* copies: skipped */
        op_of(RG_OP_META_DEL, 48, 1, 0),
        op_of(RG_OP_SET_META_IF_OWNER, 52, 3, 1),  /* the holder */
        op_of(RG_OP_GROUP_ADD, 53, 4, 1),          /* b@h's: stays */
        op_of(RG_OP_PURGE_NODE, 54, 0, 0)};        /* a@h: pid 0's entries */
    again[2].meta = (const uint8_t *)"\x83\x6a";
    again[2].meta_len = 2;
    entry_of(w, again, 5);
    write_seed("fuzz_entry", "registry_retry_purge", w);
    apply_seed(f, w);
    snapshot_seed(f, "after_registry_purge");
}

/* A *_MANY op of the items in it (count of them). */
static struct rg_op many_of(uint8_t kind, uint64_t ref, const struct rg_wbuf *it,
                            uint32_t count)
{
    struct rg_op op = op_of(kind, ref, 0, 0);
    op.count = count;
    op.items = it->data;
    op.items_len = (uint32_t)it->len;
    return op;
}

/* The atomic and bulk ops on f, from a known state: UNREGISTER_MANY of
 * every name (one twice); REGISTER_MANY answering OK for free names, OK for
 * the same pid, NO with the holder for a name given earlier in the op to
 * another pid, OK replacing a pid; READ_ENTRY of a held and a free name;
 * SET_META_IF_VERSION at the name's version (OK), at that version again
 * (stale: NO with the entry), by another pid (NO) and on a free name
 * (NOT_FOUND). Then copies of the writes (skipped), the name removed and
 * registered again (a new version) and a compare-and-set at its old
 * version (NO). Snapshots after each entry. */
static void seeds_bulk(struct rg_fsm *f, struct rg_wbuf *w)
{
    struct rg_wbuf all, reg, reg2;
    rg_wbuf_init(&all);
    rg_wbuf_init(&reg);
    rg_wbuf_init(&reg2);
    for (int i = 0; i <= 5; i++) {
        rg_wbuf_blob(&all, names[i % 5].b, names[i % 5].n);
    }
    item_reg(&reg, 0, 0, -1, "\x83\x6a"); /* free: OK */
    item_reg(&reg, 1, 1, -1, "");         /* free: OK */
    item_reg(&reg, 1, 0, -1, "");         /* pid 1's: NO */
    item_reg(&reg, 0, 0, -1, "");         /* its own: OK, nothing */
    item_reg(&reg, 2, 2, 1, "");          /* free, replace moot: OK */
    item_reg(&reg2, 1, 0, 1, "\x83\x6a"); /* replacing pid 1: OK */
    item_reg(&reg2, 3, 1, -1, "");        /* free: OK */

    uint64_t seq = f->version_seq; /* name 0 gets seq + 1, name 1 seq + 4 */
    struct rg_op ops[10] = {
        many_of(RG_OP_UNREGISTER_MANY, 60, &all, 6),
        many_of(RG_OP_REGISTER_MANY, 61, &reg, 5),
        many_of(RG_OP_REGISTER_MANY, 62, &reg2, 2),
        op_of(RG_OP_READ_ENTRY, 63, 0, 0),
        op_of(RG_OP_READ_ENTRY, 64, 4, 0),
        op_of(RG_OP_SET_META_IF_VERSION, 65, 0, 0), /* right version: OK */
        op_of(RG_OP_SET_META_IF_VERSION, 66, 0, 0), /* stale now: NO */
        op_of(RG_OP_SET_META_IF_VERSION, 67, 1, 1), /* not the holder: NO */
        op_of(RG_OP_SET_META_IF_VERSION, 68, 4, 0), /* free: NOT_FOUND */
        op_of(RG_OP_READ_ENTRY, 69, 0, 0)};
    ops[5].version = seq + 1;
    ops[6].version = seq + 1;
    ops[7].version = seq + 4;
    entry_of(w, ops, 10);
    write_seed("fuzz_entry", "atomic_bulk10", w);
    apply_seed(f, w);
    if (f->version_seq != seq + 6 || f->table.count != 4) {
        die("seeds_bulk: not the state expected");
    }
    snapshot_seed(f, "after_atomic_bulk");

    struct rg_op again[7] = {
        ops[5], ops[1], ops[0],                     /* copies: skipped */
        op_of(RG_OP_UNREGISTER, 70, 0, 0),
        op_of(RG_OP_REGISTER, 71, 0, 0),            /* back: a new version */
        op_of(RG_OP_SET_META_IF_VERSION, 72, 0, 0), /* its last one: NO */
        op_of(RG_OP_READ_ENTRY, 63, 0, 0)};         /* never skipped */
    again[5].version = seq + 6;
    entry_of(w, again, 7);
    write_seed("fuzz_entry", "atomic_bulk_retry", w);
    apply_seed(f, w);
    if (f->version_seq != seq + 7 || f->table.count != 4) {
        die("seeds_bulk: not the state expected after the copies");
    }
    snapshot_seed(f, "after_atomic_bulk_retry");
    rg_wbuf_free(&all);
    rg_wbuf_free(&reg);
    rg_wbuf_free(&reg2);
}

/* Entries for fuzz_entry; applied in order they also give the snapshots. */
static void seeds_entry_snapshot(void)
{
    struct rg_fsm f;
    struct rg_wbuf w;
    static const struct rg_sipkey key = {1, 2};
    if (rg_fsm_init(&f, 1, key) != 0) {
        die("fsm");
    }
    rg_wbuf_init(&w);
    snapshot_seed(&f, "empty");

    struct rg_op reg[5];
    for (int i = 0; i < 5; i++) {
        reg[i] = op_of(RG_OP_REGISTER, (uint64_t)i + 1, i, i % 3);
    }
    entry_of(&w, reg, 5);
    write_seed("fuzz_entry", "register5", &w);
    if (rg_fsm_apply(&f, w.data, w.len) != 0) {
        die("apply");
    }
    snapshot_seed(&f, "five");

    struct rg_op mixed[7] = {
        op_of(RG_OP_REGISTER, 10, 0, 1),           /* taken: NO */
        op_of(RG_OP_REGISTER, 11, 1, 1),           /* same pid again */
        op_of(RG_OP_SET_META, 12, 2, 0),
        op_of(RG_OP_UNREGISTER_IF_OWNER, 13, 3, 0),
        op_of(RG_OP_READ, 14, 4, 0),
        op_of(RG_OP_UNREGISTER, 15, 4, 0),
        op_of(RG_OP_PURGE_NODE, 16, 0, 0)};
    mixed[0].replace = pids[0].b; /* ...unless the holder is replaced */
    mixed[0].replace_len = pids[0].n;
    entry_of(&w, mixed, 7);
    write_seed("fuzz_entry", "mixed7", &w);
    if (rg_fsm_apply(&f, w.data, w.len) != 0) {
        die("apply");
    }
    snapshot_seed(&f, "after_mixed");

    /* Re-sent copies (skipped), a SETTLE that lets ref 1 apply again, and
     * another origin's op under a ref origin 1 used (applied), followed by
     * a copy of it in the same entry (skipped). */
    struct rg_op retry[6] = {
        op_of(RG_OP_REGISTER, 2, 1, 1),            /* copy of ref 2: skipped */
        op_of(RG_OP_UNREGISTER, 15, 4, 0),         /* copy of ref 15 */
        op_of(RG_OP_SETTLE, 2, 0, 0),              /* forgets ref 1 */
        op_of(RG_OP_REGISTER, 1, 0, 0),            /* ref 1 applies again */
        op_of(RG_OP_REGISTER, 2, 4, 2),
        op_of(RG_OP_SET_META, 2, 1, 0)};            /* origin 7's ref 2 again */
    retry[4].origin = 7;
    retry[5].origin = 7;
    entry_of(&w, retry, 6);
    write_seed("fuzz_entry", "retry_settle", &w);
    if (rg_fsm_apply(&f, w.data, w.len) != 0) {
        die("apply");
    }
    snapshot_seed(&f, "after_retry_settle");
    seeds_registry(&f, &w);
    seeds_bulk(&f, &w);

    for (uint8_t k = RG_OP_REGISTER; k <= LAST_KIND; k++) {
        struct rg_op op = op_of(k, 20 + k, k % 5, 2);
        char name[32];
        snprintf(name, sizeof name, "single_kind%u", (unsigned)k);
        entry_of(&w, &op, 1);
        write_seed("fuzz_entry", name, &w);
    }
    rg_wbuf_free(&w);
    rg_fsm_close(&f);
}

/* HELLOs addressed to server 22 (the fuzz target's own id), each followed
 * by a 32-byte PROOF of zeros. */
static void seeds_handshake(void)
{
    static const char *addrs[] = {"127.0.0.1:4100", "10.0.0.7:65535", "h:1"};
    static const uint64_t ids[] = {1, 0x8000000000000000ULL, 0xDEADBEEFCAFEULL};
    uint8_t hello[RG_HS_HELLO_FIXED + RG_ADDRESS_MAX];
    uint8_t nonce[RG_HS_NONCE] = {9, 8, 7};
    static const uint8_t proof[RG_HS_PROOF] = {0};
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    for (int i = 0; i < 3; i++) {
        char name[16];
        rg_wbuf_reset(&w);
        size_t len = rg_hs_hello_build(hello, ids[i], 22, nonce, addrs[i]);
        rg_wbuf_put(&w, hello, len);
        rg_wbuf_put(&w, proof, sizeof proof);
        snprintf(name, sizeof name, "hello%d", i);
        write_seed("fuzz_handshake", name, &w);
    }
    rg_wbuf_free(&w);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    make_dir(out_dir);
    names[0] = from_bytes(name0, sizeof name0);
    names[1] = from_bytes(name1, sizeof name1);
    names[2] = from_bytes(name2, sizeof name2);
    names[3] = from_bytes(name3, sizeof name3);
    names[4] = from_bytes(name4, sizeof name4);
    pids[0] = pid_on("a@h", 1, 1);
    pids[1] = pid_on("b@h", 2, 1);
    pids[2] = pid_on("nonode@nohost", 9, 0);
    for (int i = 0; i < 5; i++) {
        if (!rg_canon_check(names[i].b, names[i].n)) {
            fprintf(stderr, "gen_corpus: name %d is not canonical\n", i);
            return 1;
        }
    }
    build_items();
    seeds_proto();
    seeds_entry_snapshot();
    seeds_handshake();
    rg_wbuf_free(&reg_items);
    rg_wbuf_free(&unreg_items);
    return 0;
}
