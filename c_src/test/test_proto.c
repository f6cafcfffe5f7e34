/* Unit tests for proto.c and the port form of cmd.c's op codec.
 * Covers: rg_proto_header (short frames, wrong version); rg_proto_start on a
 * valid START and on every way it can be malformed (flags, port range, empty
 * or NUL-bearing strings, length limits, trailing bytes, each truncation, a
 * string buffer too small); rg_proto_ops_count's bounds; rg_op_decode in
 * port form (with_origin = false) for every op kind, its round trip with
 * rg_op_encode, and its refusals (unknown kinds, non-canonical names and
 * pids, size limits, truncations, flag bytes other than 0 and 1 for the
 * Registry ops), including that a failed decode reports a
 * ref only when all 8 bytes of it were read; the atomic and bulk ops
 * (SET_META_IF_VERSION, READ_ENTRY, REGISTER_MANY, UNREGISTER_MANY): their
 * round trips, and the refusal of a count of 0, over RG_MANY_MAX or over
 * the items present, a bad item (first or last), an item with bytes after
 * its term; a count below the items leaves bytes that the OPS frame
 * refuses; kind 18 and above are unknown; the daemon -> member builders'
 * byte layout. Then 200k random and mutated frames (fixed seed) through the
 * decode path of node.c's on_frame (header, then START or OPS + ops), each
 * from an exact-size heap copy, checking invariants of whatever decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "cmd.h"
#include "limits.h"
#include "proto.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------ */

/* The highest op kind cmd.h defines: every kind above it is unknown. */
#define LAST_KIND RG_OP_META_CAS

static const uint8_t pid_a[] = {88, 119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                0,  0,   0, 0,   0,   0,   0, 1};
static const uint8_t pid_b[] = {88, 119, 3, 'b', '@', 'h', 0, 0, 0, 2,
                                0,  0,   0, 0,   0,   0,   0, 2};
static const uint8_t name_x[] = {104, 2, 119, 1, 'x', 97, 1}; /* {x,1} */
static const uint8_t name_bad[] = {98, 0, 0, 0, 1};          /* 1, not canon */
static const uint8_t name_y[] = {119, 1, 'y'};               /* y */

/* The items make_op gives REGISTER_MANY ({x,1} for pid_a with metadata
 * and replacing pid_b, then y for pid_b) and UNREGISTER_MANY ({x,1}, y,
 * {x,1}); built by build_items. */
static struct rg_wbuf reg_items, unreg_items;

static void item_reg(struct rg_wbuf *w, const uint8_t *key, size_t key_len,
                     const uint8_t *pid, size_t pid_len, const char *meta,
                     const uint8_t *replace, size_t replace_len)
{
    rg_wbuf_blob(w, key, key_len);
    rg_wbuf_blob(w, pid, pid_len);
    rg_wbuf_blob(w, meta, strlen(meta));
    rg_wbuf_blob(w, replace, replace_len);
}

static void build_items(void)
{
    rg_wbuf_init(&reg_items);
    rg_wbuf_init(&unreg_items);
    item_reg(&reg_items, name_x, sizeof name_x, pid_a, sizeof pid_a, "m1", pid_b,
             sizeof pid_b);
    item_reg(&reg_items, name_y, sizeof name_y, pid_b, sizeof pid_b, "", NULL, 0);
    rg_wbuf_blob(&unreg_items, name_x, sizeof name_x);
    rg_wbuf_blob(&unreg_items, name_y, sizeof name_y);
    rg_wbuf_blob(&unreg_items, name_x, sizeof name_x);
}

/* START's TLS tail: mode, certificate, key and CA files, verify. */
static void start_tls(struct rg_wbuf *w, uint8_t mode, const char *cert,
                      const char *key, const char *ca, uint8_t verify)
{
    rg_wbuf_u8(w, mode);
    rg_wbuf_blob(w, cert, strlen(cert));
    rg_wbuf_blob(w, key, strlen(key));
    rg_wbuf_blob(w, ca, strlen(ca));
    rg_wbuf_u8(w, verify);
}

static void start_frame_snap(struct rg_wbuf *w, uint8_t flags,
                             const char *dir, size_t dir_len, const char *host,
                             uint16_t lo, uint16_t hi, size_t secret_len,
                             uint32_t threshold, uint32_t trailing);

static void start_frame(struct rg_wbuf *w, uint8_t flags, const char *dir,
                        size_t dir_len, const char *host, uint16_t lo,
                        uint16_t hi, size_t secret_len)
{
    start_frame_snap(w, flags, dir, dir_len, host, lo, hi, secret_len, 8192,
                     2048);
}

static void start_frame_snap(struct rg_wbuf *w, uint8_t flags,
                             const char *dir, size_t dir_len, const char *host,
                             uint16_t lo, uint16_t hi, size_t secret_len,
                             uint32_t threshold, uint32_t trailing)
{
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_START);
    rg_wbuf_u64(w, 0x1122334455667788ULL);
    rg_wbuf_u8(w, flags);
    rg_wbuf_blob(w, dir, dir_len);
    rg_wbuf_blob(w, host, strlen(host));
    rg_wbuf_u16(w, lo);
    rg_wbuf_u16(w, hi);
    rg_wbuf_u32(w, (uint32_t)secret_len);
    for (size_t i = 0; i < secret_len; i++) {
        rg_wbuf_u8(w, (uint8_t)(i * 7 + 1));
    }
    rg_wbuf_u32(w, threshold);
    rg_wbuf_u32(w, trailing);
    start_tls(w, 1, "", "", "", 0);
}

/* Header then START, as node.c does it (strbuf of frame length + 2). */
static bool decode_start(const uint8_t *frame, size_t len, struct rg_start *s,
                         char **strings, size_t room, const char **err)
{
    struct rg_rbuf r;
    uint8_t type;
    uint8_t *copy = unit_dup_exact(frame, len);
    rg_rbuf_init(&r, copy, len);
    *strings = malloc(room ? room : 1);
    bool ok = *strings != NULL && rg_proto_header(&r, &type, err) &&
              type == RG_MSG_START &&
              rg_proto_start(&r, s, *strings, room, err);
    free(copy); /* s->secret pointed into it: callers use it before this */
    return ok;
}

static bool start_ok(const struct rg_wbuf *w)
{
    struct rg_start s;
    char *strings = NULL;
    const char *err = NULL;
    bool ok = decode_start(w->data, w->len, &s, &strings, w->len + RG_START_STRINGS, &err);
    free(strings);
    return ok;
}

/* ---- header and START --------------------------------------------------- */

static void test_header(void)
{
    struct rg_rbuf r;
    uint8_t type = 0;
    const char *err = NULL;
    static const uint8_t frames[][2] = {{1, 2}, {2, 1}, {0, 1}, {1, 0x99}};
    uint8_t *f = unit_dup_exact(frames[0], 2);

    rg_rbuf_init(&r, f, 0);
    CHECK(!rg_proto_header(&r, &type, &err) && err != NULL &&
          strcmp(err, "frame shorter than its header") == 0);
    err = NULL;
    rg_rbuf_init(&r, f, 1);
    CHECK(!rg_proto_header(&r, &type, &err) && err != NULL);
    rg_rbuf_init(&r, f, 2);
    CHECK(rg_proto_header(&r, &type, &err) && type == RG_MSG_OPS &&
          rg_rbuf_done(&r));
    free(f);
    for (int i = 1; i < 3; i++) {
        f = unit_dup_exact(frames[i], 2);
        rg_rbuf_init(&r, f, 2);
        err = NULL;
        CHECK(!rg_proto_header(&r, &type, &err) && err != NULL &&
              strcmp(err, "unsupported protocol version") == 0);
        free(f);
    }
    f = unit_dup_exact(frames[3], 2); /* unknown types are node.c's business */
    rg_rbuf_init(&r, f, 2);
    CHECK(rg_proto_header(&r, &type, &err) && type == 0x99);
    free(f);
}

static void test_start_valid(void)
{
    struct rg_wbuf w;
    struct rg_start s;
    char *strings = NULL;
    const char *err = NULL;
    rg_wbuf_init(&w);
    start_frame(&w, 1, "/dev/shm/regent", 15, "127.0.0.1", 4000, 4010, 32);
    uint8_t *copy = unit_dup_exact(w.data, w.len);
    struct rg_rbuf r;
    uint8_t type;
    rg_rbuf_init(&r, copy, w.len);
    strings = malloc(w.len + RG_START_STRINGS);
    CHECK(rg_proto_header(&r, &type, &err) && type == RG_MSG_START);
    CHECK(rg_proto_start(&r, &s, strings, w.len + RG_START_STRINGS, &err));
    CHECK(s.id == 0x1122334455667788ULL && s.bootstrap);
    CHECK(strcmp(s.dir, "/dev/shm/regent") == 0);
    CHECK(strcmp(s.bind_host, "127.0.0.1") == 0);
    CHECK(s.port_lo == 4000 && s.port_hi == 4010);
    CHECK(s.secret_len == 32 && s.secret == copy + w.len - 40 - 14 &&
          s.secret[0] == 1);
    CHECK(s.snapshot_threshold == 8192 && s.snapshot_trailing == 2048);
    CHECK(s.dir >= strings && s.bind_host > s.dir &&
          s.bind_host + strlen(s.bind_host) < strings + w.len + RG_START_STRINGS);
    CHECK(s.tls == 1 && s.certfile[0] == '\0' && !s.verify);
    free(strings);
    free(copy);

    /* Edges that are allowed: flags 0, one port, empty host and secret,
     * a 4096-byte dir, a 63-byte host (IPv4 text; the transport keeps 64
     * bytes), a 1024-byte secret. A 64-byte host is refused. */
    char big[4096];
    memset(big, 'd', sizeof big);
    char host64[65];
    memset(host64, 'h', 64);
    host64[64] = '\0';
    rg_wbuf_reset(&w);
    start_frame(&w, 0, big, 4096, host64 + 1, 7, 7, 1024);
    CHECK(start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, big, 4096, host64, 7, 7, 1024);
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, "", 0, 0, 0);
    CHECK(start_ok(&w));
    /* Snapshot settings: threshold 16..2^24, trailing 0..2^24. */
    rg_wbuf_reset(&w);
    start_frame_snap(&w, 0, "d", 1, "h", 1, 2, 1, 16, 0);
    CHECK(start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame_snap(&w, 0, "d", 1, "h", 1, 2, 1, 1u << 24, 1u << 24);
    CHECK(start_ok(&w));
    rg_wbuf_free(&w);
}

static void test_start_malformed(void)
{
    struct rg_wbuf w;
    char big[4097];
    memset(big, 'd', sizeof big);
    char host256[257];
    memset(host256, 'h', 256);
    host256[256] = '\0';
    rg_wbuf_init(&w);

    start_frame(&w, 2, "d", 1, "h", 1, 2, 0); /* unknown flag */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame_snap(&w, 0, "d", 1, "h", 1, 2, 1, 15, 0); /* threshold < 16 */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame_snap(&w, 0, "d", 1, "h", 1, 2, 1, (1u << 24) + 1, 0);
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame_snap(&w, 0, "d", 1, "h", 1, 2, 1, 64, (1u << 24) + 1);
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, "h", 3, 2, 0); /* lo > hi */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "", 0, "h", 1, 2, 0); /* empty dir */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "a\0b", 3, "h", 1, 2, 0); /* NUL in dir */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, "h", 1, 2, 0);
    w.data[2 + 8 + 1 + 4 + 1 + 4] = '\0'; /* NUL in host */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, big, 4097, "h", 1, 2, 0); /* dir too long */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, host256, 1, 2, 0); /* host too long */
    CHECK(!start_ok(&w));
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, "h", 1, 2, 1025); /* secret too long */
    CHECK(!start_ok(&w));

    /* The TLS tail (the default one, PSK, is 14 bytes): a mode or verify
     * flag out of range, certificates without a certificate or key file,
     * verifying without a CA file are refused; files are checked like the
     * dir. */
    static const struct {
        uint8_t mode, verify;
        const char *cert, *key, *ca;
        bool ok;
    } tls[] = {
        {0, 0, "", "", "", true},          {2, 1, "c.pem", "k.pem", "ca.pem", true},
        {2, 0, "c.pem", "k.pem", "", true}, {3, 0, "", "", "", false},
        {1, 2, "", "", "", false},          {2, 0, "", "k.pem", "", false},
        {2, 0, "c.pem", "", "", false},     {2, 1, "c.pem", "k.pem", "", false},
    };
    for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++) {
        rg_wbuf_reset(&w);
        start_frame(&w, 0, "d", 1, "h", 1, 2, 4);
        w.len -= 14;
        start_tls(&w, tls[i].mode, tls[i].cert, tls[i].key, tls[i].ca, tls[i].verify);
        CHECK(start_ok(&w) == tls[i].ok);
    }
    rg_wbuf_reset(&w);
    start_frame(&w, 0, "d", 1, "h", 1, 2, 4);
    w.len -= 14;
    char longname[4098];
    memset(longname, 'c', 4097);
    longname[4097] = '\0';
    start_tls(&w, 2, longname, "k", "", 0); /* certificate file name too long */
    CHECK(!start_ok(&w));

    rg_wbuf_reset(&w);
    start_frame(&w, 1, "/tmp/x", 6, "0.0.0.0", 1, 2, 16);
    CHECK(start_ok(&w));
    size_t full = w.len;
    int refused = 0;
    for (size_t k = 0; k < full; k++) { /* every truncation */
        w.len = k;
        refused += !start_ok(&w);
    }
    CHECK(refused == (int)full);
    w.len = full;
    rg_wbuf_u8(&w, 0); /* a trailing byte */
    CHECK(!start_ok(&w));
    w.len = full;

    /* A string buffer with no room for the strings is refused, not
     * overrun (ASan watches the exact-size allocation). */
    struct rg_start s;
    char *strings = NULL;
    const char *err = NULL;
    for (size_t room = 0; room < 18; room++) {
        CHECK(!decode_start(w.data, w.len, &s, &strings, room, &err));
        free(strings);
    }
    /* "/tmp/x" and "0.0.0.0" with their NULs, 7 + 8 bytes, and the three
     * empty TLS file names, a NUL each */
    CHECK(decode_start(w.data, w.len, &s, &strings, 18, &err));
    free(strings);
    rg_wbuf_free(&w);
}

/* ---- OPS ---------------------------------------------------------------- */

static void ops_header(struct rg_wbuf *w, uint32_t count)
{
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, RG_MSG_OPS);
    rg_wbuf_u32(w, count);
}

static void test_ops_count(void)
{
    struct rg_wbuf w;
    struct rg_rbuf r;
    uint32_t count;
    uint8_t type;
    const char *err;
    rg_wbuf_init(&w);
    ops_header(&w, 0);
    rg_wbuf_put(&w, "123456789", 9);
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(rg_proto_header(&r, &type, &err));
    CHECK(!rg_proto_ops_count(&r, &count)); /* zero ops */

    rg_wbuf_patch_u32(&w, 2, 1); /* one op needs >= 9 bytes: there are 9 */
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(rg_proto_header(&r, &type, &err));
    CHECK(rg_proto_ops_count(&r, &count) && count == 1);

    rg_wbuf_patch_u32(&w, 2, 2); /* two cannot fit in 9 bytes */
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(rg_proto_header(&r, &type, &err));
    CHECK(!rg_proto_ops_count(&r, &count));

    rg_wbuf_patch_u32(&w, 2, UINT32_MAX);
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(rg_proto_header(&r, &type, &err));
    CHECK(!rg_proto_ops_count(&r, &count));

    rg_rbuf_init(&r, w.data, 5); /* the count itself is short */
    CHECK(rg_proto_header(&r, &type, &err));
    CHECK(!rg_proto_ops_count(&r, &count));
    rg_wbuf_free(&w);
}

/* The fields of the Registry ops (kinds 8..13) and of the atomic and bulk
 * ops (14..17) that make_op fills in. */
static void make_new_op(struct rg_op *op)
{
    switch (op->kind) {
    case RG_OP_REGISTER_NEW:
        op->pid = pid_b;
        op->pid_len = sizeof pid_b;
        op->meta = (const uint8_t *)"new";
        op->meta_len = 3;
        op->replace = pid_a;
        op->replace_len = sizeof pid_a;
        break;
    case RG_OP_SET_META_IF_OWNER:
    case RG_OP_GROUP_ADD:
        op->pid = pid_a;
        op->pid_len = sizeof pid_a;
        op->meta = (const uint8_t *)"value";
        op->meta_len = 5;
        break;
    case RG_OP_GROUP_DEL:
        op->pid = pid_b;
        op->pid_len = sizeof pid_b;
        op->flag = true;
        op->meta = (const uint8_t *)"v";
        op->meta_len = 1;
        break;
    case RG_OP_META_PUT:
        op->meta = (const uint8_t *)"registry meta";
        op->meta_len = 13;
        op->flag = true;
        break;
    case RG_OP_SET_META_IF_VERSION:
        op->pid = pid_a;
        op->pid_len = sizeof pid_a;
        op->version = 0x0102030405060708ULL;
        op->meta = (const uint8_t *)"cas";
        op->meta_len = 3;
        break;
    case RG_OP_META_CAS:
        op->cas_mode = RG_CAS_EXPECT | RG_CAS_VALUE;
        op->expect = (const uint8_t *)"old";
        op->expect_len = 3;
        op->meta = (const uint8_t *)"new";
        op->meta_len = 3;
        break;
    case RG_OP_REGISTER_MANY:
    case RG_OP_UNREGISTER_MANY: {
        const struct rg_wbuf *it =
            op->kind == RG_OP_REGISTER_MANY ? &reg_items : &unreg_items;
        op->key = NULL;
        op->key_len = 0;
        op->count = op->kind == RG_OP_REGISTER_MANY ? 2 : 3;
        op->items = it->data;
        op->items_len = (uint32_t)it->len;
        break;
    }
    default: /* READ, UNREGISTER, META_DEL, READ_ENTRY: the key only */
        break;
    }
}

static struct rg_op make_op(uint8_t kind, uint64_t ref)
{
    struct rg_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.ref = ref;
    op.key = name_x;
    op.key_len = sizeof name_x;
    switch (kind) {
    case RG_OP_REGISTER:
        op.pid = pid_a;
        op.pid_len = sizeof pid_a;
        op.meta = (const uint8_t *)"\x83\x6a";
        op.meta_len = 2;
        op.replace = pid_b;
        op.replace_len = sizeof pid_b;
        break;
    case RG_OP_UNREGISTER_IF_OWNER:
        op.pid = pid_b;
        op.pid_len = sizeof pid_b;
        break;
    case RG_OP_SET_META:
        op.meta = (const uint8_t *)"meta";
        op.meta_len = 4;
        break;
    case RG_OP_PURGE_NODE:
        op.key = NULL;
        op.key_len = 0;
        op.pid = (const uint8_t *)"a@h";
        op.pid_len = 3;
        op.any_creation = true;
        op.creation = 0xCAFEBABEu;
        break;
    case RG_OP_SETTLE:
        op.key = NULL;
        op.key_len = 0;
        op.below = 0x8877665544332211ULL;
        break;
    default:
        make_new_op(&op);
        break;
    }
    return op;
}

static bool field_eq(const uint8_t *p, uint32_t n, const uint8_t *q,
                     uint32_t m)
{
    return n == m && (n == 0 || (p != NULL && q != NULL && memcmp(p, q, n) == 0));
}

static bool op_eq(const struct rg_op *a, const struct rg_op *b)
{
    return a->kind == b->kind && a->ref == b->ref && a->origin == b->origin &&
           field_eq(a->key, a->key_len, b->key, b->key_len) &&
           field_eq(a->pid, a->pid_len, b->pid, b->pid_len) &&
           field_eq(a->meta, a->meta_len, b->meta, b->meta_len) &&
           field_eq(a->replace, a->replace_len, b->replace, b->replace_len) &&
           a->any_creation == b->any_creation && a->creation == b->creation &&
           a->below == b->below && a->flag == b->flag &&
           a->version == b->version && a->count == b->count &&
           field_eq(a->items, a->items_len, b->items, b->items_len);
}

/* Decodes one port-form op from an exact copy of w; true if it decoded and
 * consumed everything. */
static bool decode_one(const struct rg_wbuf *w, struct rg_op *op, bool *done)
{
    uint8_t *copy = unit_dup_exact(w->data, w->len);
    struct rg_rbuf r;
    rg_rbuf_init(&r, copy, w->len);
    bool ok = rg_op_decode(&r, false, op);
    *done = rg_rbuf_done(&r);
    free(copy);
    return ok;
}

static void test_op_round_trip(void)
{
    for (uint8_t kind = RG_OP_REGISTER; kind <= LAST_KIND; kind++) {
        /* SETTLE always has ref 0 (nothing answers it). */
        struct rg_op op = make_op(kind, kind == RG_OP_SETTLE ? 0 : 1000u + kind),
                     back;
        struct rg_wbuf w;
        rg_wbuf_init(&w);
        rg_op_encode(&w, &op, false);
        uint8_t *copy = unit_dup_exact(w.data, w.len);
        struct rg_rbuf r;
        rg_rbuf_init(&r, copy, w.len);
        CHECK(rg_op_decode(&r, false, &back) && rg_rbuf_done(&r));
        CHECK(op_eq(&op, &back));
        CHECK(w.data[0] == kind && w.len >= 9);
        free(copy);

        /* every truncation fails */
        size_t full = w.len;
        int refused = 0;
        for (size_t k = 0; k < full; k++) {
            bool done;
            w.len = k;
            refused += !decode_one(&w, &back, &done);
        }
        CHECK(refused == (int)full);
        rg_wbuf_free(&w);
    }

    /* REGISTER without replace: replace comes back NULL. */
    struct rg_op op = make_op(RG_OP_REGISTER, 5), back;
    op.replace = NULL;
    op.replace_len = 0;
    op.meta_len = 0;
    struct rg_wbuf w;
    bool done;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    CHECK(decode_one(&w, &back, &done) && done);
    CHECK(back.replace == NULL && back.replace_len == 0 && back.meta_len == 0);

    /* The log form carries the origin in front of the ref. */
    rg_wbuf_reset(&w);
    op.origin = 0xABCDEF;
    rg_op_encode(&w, &op, true);
    struct rg_rbuf r;
    rg_rbuf_init(&r, w.data, w.len);
    CHECK(rg_op_decode(&r, true, &back) && rg_rbuf_done(&r));
    CHECK(back.origin == 0xABCDEF && back.ref == 5);
    rg_wbuf_free(&w);
}

/* Encodes op in port form and expects the decode to refuse it. */
static void expect_refused(struct rg_op op, int line)
{
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    bool ok = decode_one(&w, &back, &done);
    CHECK(!ok);
    if (ok) {
        fprintf(stderr, "  op at line %d decoded\n", line);
    }
    rg_wbuf_free(&w);
}

static void test_op_refused(void)
{
    static uint8_t big[RG_META_MAX + 1];
    memset(big, 'x', sizeof big);
    struct rg_op op;

    for (int kind = 0; kind < 256; kind++) {
        if (kind < RG_OP_REGISTER || kind > LAST_KIND) {
            op = make_op(RG_OP_READ, 1);
            op.kind = (uint8_t)kind;
            expect_refused(op, __LINE__);
        }
    }
    op = make_op(RG_OP_REGISTER, 1);
    op.key = name_bad;
    op.key_len = sizeof name_bad;
    expect_refused(op, __LINE__); /* non-canonical name */
    op = make_op(RG_OP_READ, 1);
    op.key_len = 0;
    expect_refused(op, __LINE__); /* empty name */
    op = make_op(RG_OP_REGISTER, 1);
    op.pid = name_x;
    op.pid_len = sizeof name_x;
    expect_refused(op, __LINE__); /* pid is not a pid */
    op = make_op(RG_OP_REGISTER, 1);
    op.pid_len = 0;
    expect_refused(op, __LINE__); /* pid is required */
    op = make_op(RG_OP_UNREGISTER_IF_OWNER, 1);
    op.pid_len = 0;
    expect_refused(op, __LINE__);
    op = make_op(RG_OP_REGISTER, 1);
    op.replace = name_x;
    op.replace_len = sizeof name_x;
    expect_refused(op, __LINE__); /* replace is a pid or nothing */
    op = make_op(RG_OP_REGISTER, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX + 1;
    expect_refused(op, __LINE__); /* metadata over the limit */
    op = make_op(RG_OP_SET_META, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX + 1;
    expect_refused(op, __LINE__);
    op = make_op(RG_OP_READ, 1);
    op.key = big;
    op.key_len = RG_NAME_MAX + 1;
    expect_refused(op, __LINE__); /* name blob over the limit */
    op = make_op(RG_OP_REGISTER, 1);
    op.pid = big;
    op.pid_len = RG_PID_MAX + 1;
    expect_refused(op, __LINE__); /* pid blob over the limit */
    op = make_op(RG_OP_PURGE_NODE, 1);
    op.pid_len = 0;
    expect_refused(op, __LINE__); /* empty node name */
    op = make_op(RG_OP_PURGE_NODE, 1);
    op.pid = big;
    op.pid_len = RG_NODE_MAX + 1;
    expect_refused(op, __LINE__); /* node name over the limit */
    op = make_op(RG_OP_SETTLE, 1);
    expect_refused(op, __LINE__); /* SETTLE with a ref */
    op = make_op(RG_OP_SETTLE, 0);
    op.below = 0;
    expect_refused(op, __LINE__); /* SETTLE of nothing */

    /* Metadata at exactly the limit is fine. */
    op = make_op(RG_OP_SET_META, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX;
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    CHECK(decode_one(&w, &back, &done) && done && back.meta_len == RG_META_MAX);

    /* PURGE's any_creation byte is 0 or 1. */
    rg_wbuf_reset(&w);
    op = make_op(RG_OP_PURGE_NODE, 1);
    rg_op_encode(&w, &op, false);
    w.data[w.len - 5] = 2;
    CHECK(!decode_one(&w, &back, &done));
    rg_wbuf_free(&w);
}

/* Encodes op, sets the byte `back` bytes before the end to v and decodes:
 * true if the decoder took it. */
static bool decodes_with_byte(struct rg_op op, size_t back, uint8_t v)
{
    struct rg_wbuf w;
    struct rg_op out;
    bool done;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    w.data[w.len - back] = v;
    bool ok = decode_one(&w, &out, &done) && done && out.flag == (v == 1);
    rg_wbuf_free(&w);
    return ok;
}

/* The Registry ops (kinds 8..13) are held to the same rules: a pid where
 * the kind has one, canonical names, the metadata limit, and their flag
 * byte (GROUP_DEL's all, META_PUT's if_absent) 0 or 1. */
static void test_new_ops_refused(void)
{
    static uint8_t big[RG_META_MAX + 1];
    memset(big, 'x', sizeof big);
    static const uint8_t pid_kinds[] = {RG_OP_REGISTER_NEW, RG_OP_SET_META_IF_OWNER,
                                        RG_OP_GROUP_ADD, RG_OP_GROUP_DEL};
    for (size_t i = 0; i < sizeof pid_kinds; i++) {
        struct rg_op op = make_op(pid_kinds[i], 1);
        op.pid_len = 0;
        expect_refused(op, __LINE__); /* the pid is required */
        op = make_op(pid_kinds[i], 1);
        op.pid = name_x;
        op.pid_len = sizeof name_x;
        expect_refused(op, __LINE__); /* and must be a pid */
        op = make_op(pid_kinds[i], 1);
        op.meta = big;
        op.meta_len = RG_META_MAX + 1;
        expect_refused(op, __LINE__); /* metadata (a value) over the limit */
    }
    static const uint8_t key_kinds[] = {RG_OP_REGISTER_NEW, RG_OP_SET_META_IF_OWNER,
                                        RG_OP_GROUP_ADD, RG_OP_GROUP_DEL,
                                        RG_OP_META_PUT, RG_OP_META_DEL};
    for (size_t i = 0; i < sizeof key_kinds; i++) {
        struct rg_op op = make_op(key_kinds[i], 1);
        op.key = name_bad;
        op.key_len = sizeof name_bad;
        expect_refused(op, __LINE__); /* non-canonical name */
        op.key_len = 0;
        expect_refused(op, __LINE__); /* empty name */
    }
    struct rg_op op = make_op(RG_OP_REGISTER_NEW, 1);
    op.replace = name_x;
    op.replace_len = sizeof name_x;
    expect_refused(op, __LINE__); /* replace is a pid or nothing */
    op = make_op(RG_OP_META_PUT, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX + 1;
    expect_refused(op, __LINE__);

    /* The flag: GROUP_DEL's precedes the value blob ("v"), META_PUT's ends
     * the op. */
    struct rg_op del = make_op(RG_OP_GROUP_DEL, 1);
    size_t del_flag = 4 + del.meta_len + 1;
    CHECK(decodes_with_byte(del, del_flag, 0) && decodes_with_byte(del, del_flag, 1));
    CHECK(!decodes_with_byte(del, del_flag, 2) && !decodes_with_byte(del, del_flag, 0xFF));
    struct rg_op put = make_op(RG_OP_META_PUT, 1);
    CHECK(decodes_with_byte(put, 1, 0) && decodes_with_byte(put, 1, 1));
    CHECK(!decodes_with_byte(put, 1, 2) && !decodes_with_byte(put, 1, 0x80));

    /* A value at exactly the limit is fine, and so is an empty one. */
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    op = make_op(RG_OP_GROUP_ADD, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    CHECK(decode_one(&w, &back, &done) && done && back.meta_len == RG_META_MAX);
    rg_wbuf_reset(&w);
    op.meta_len = 0;
    rg_op_encode(&w, &op, false);
    CHECK(decode_one(&w, &back, &done) && done && back.meta_len == 0);
    rg_wbuf_free(&w);
}

/* node.c answers a failed op with BAD only if op.ref != 0: the ref must be
 * non-zero exactly when all its bytes were there. */
static void test_failed_ref(void)
{
    struct rg_wbuf w;
    struct rg_op op = make_op(RG_OP_REGISTER, 0x0102030405060708ULL), back;
    bool done;
    op.key = name_bad;
    op.key_len = sizeof name_bad;
    rg_wbuf_init(&w);
    rg_op_encode(&w, &op, false);
    CHECK(!decode_one(&w, &back, &done) && back.ref == op.ref);
    for (size_t k = 0; k < 9; k++) { /* kind + 0..7 bytes of the ref */
        w.len = k;
        CHECK(!decode_one(&w, &back, &done) && back.ref == 0);
    }
    rg_wbuf_free(&w);
}

/* ---- daemon -> member frames -------------------------------------------- */

static void test_builders(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_proto_started(&w, 0x0102030405060708ULL, 0x1F90, true);
    static const uint8_t started[] = {1, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0x1F, 0x90, 1};
    CHECK(w.len == sizeof started && memcmp(w.data, started, w.len) == 0);

    rg_wbuf_reset(&w);
    rg_proto_error(&w, "bad");
    static const uint8_t error[] = {1, 0x8F, 0, 0, 0, 3, 'b', 'a', 'd'};
    CHECK(w.len == sizeof error && memcmp(w.data, error, w.len) == 0);

    rg_wbuf_reset(&w);
    struct rg_status st = {3, 9, 2, 10, 11, 12, true, 18, 0x0102030405060708ULL};
    rg_proto_status(&w, &st);
    CHECK(w.len == 2 + 1 + 5 * 8 + 1 + 4 + 8 && w.data[1] == 0x84 && w.data[2] == 3);
    CHECK(w.data[10] == 9 && w.data[42] == 12 && w.data[43] == 1);
    CHECK(w.data[47] == 18 && w.data[48] == 1 && w.data[55] == 8);

    rg_wbuf_reset(&w);
    size_t off;
    rg_proto_replies_begin(&w, &off);
    rg_proto_reply(&w, 5, 77, 2);
    rg_wbuf_patch_u32(&w, off, 1);
    static const uint8_t replies[] = {1, 0x83, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                      0, 5,  0, 0, 0, 0, 0, 0, 0, 77,
                                      2, 0,  0, 0, 0};
    CHECK(off == 2 && w.len == sizeof replies &&
          memcmp(w.data, replies, w.len) == 0);
    rg_wbuf_free(&w);
}

/* ---- random frames ------------------------------------------------------ */


struct stats {
    long starts, ops, frames_ok, violations;
};

/* The kinds whose pid field is a required canonical pid. */
static bool has_pid(uint8_t kind)
{
    return kind == RG_OP_REGISTER || kind == RG_OP_UNREGISTER_IF_OWNER ||
           kind == RG_OP_REGISTER_NEW || kind == RG_OP_SET_META_IF_OWNER ||
           kind == RG_OP_GROUP_ADD || kind == RG_OP_GROUP_DEL ||
           kind == RG_OP_SET_META_IF_VERSION;
}

static bool is_many(uint8_t kind)
{
    return kind == RG_OP_REGISTER_MANY || kind == RG_OP_UNREGISTER_MANY;
}

/* A *_MANY op's items: exactly `count` of them over items_len bytes, each
 * with a canonical name, and for REGISTER_MANY a canonical pid, a pid or
 * nothing to replace and metadata within the limit. */
static bool items_sane(const struct rg_op *op)
{
    struct rg_rbuf r;
    struct rg_op item;
    struct rg_pid_view v;
    uint32_t n = 0;
    bool ok = op->count >= 1 && op->count <= RG_MANY_MAX;
    rg_rbuf_init(&r, op->items, op->items_len);
    while (ok && rg_many_next(&r, op->kind, &item)) {
        n++;
        ok = rg_canon_check(item.key, item.key_len) && item.ref == 0 &&
             item.origin == 0;
        if (op->kind == RG_OP_REGISTER_MANY) {
            ok = ok && item.kind == RG_OP_REGISTER &&
                 rg_canon_pid(item.pid, item.pid_len, &v) &&
                 item.meta_len <= RG_META_MAX &&
                 (item.replace == NULL ||
                  rg_canon_pid(item.replace, item.replace_len, &v));
        } else {
            ok = ok && item.kind == RG_OP_UNREGISTER;
        }
    }
    return ok && rg_rbuf_done(&r) && n == op->count;
}

/* A decoded op must re-encode to the bytes it came from, and its fields
 * must satisfy the checks the FSM relies on. */
static bool op_sane(const struct rg_op *op, const uint8_t *from, size_t len)
{
    struct rg_wbuf w;
    struct rg_pid_view v;
    rg_wbuf_init(&w);
    rg_op_encode(&w, op, false);
    bool ok = w.len == len && memcmp(w.data, from, len) == 0;
    rg_wbuf_free(&w);
    if (is_many(op->kind)) {
        ok = ok && items_sane(op);
    } else if (op->kind != RG_OP_PURGE_NODE) {
        ok = ok && rg_canon_check(op->key, op->key_len);
    }
    if (has_pid(op->kind)) {
        ok = ok && rg_canon_pid(op->pid, op->pid_len, &v);
    }
    if (op->replace != NULL) {
        ok = ok && rg_canon_pid(op->replace, op->replace_len, &v);
    }
    return ok && op->meta_len <= RG_META_MAX;
}

static void frame_start(struct rg_rbuf *r, size_t len, struct stats *st)
{
    struct rg_start s;
    const char *err = NULL;
    char *strings = malloc(len + 2);
    if (strings == NULL) {
        abort();
    }
    if (rg_proto_start(r, &s, strings, len + 2, &err)) {
        st->starts++;
        bool sane = s.dir[0] != '\0' && strlen(s.dir) <= 4096 &&
                    strlen(s.bind_host) <= 63 && s.port_lo <= s.port_hi &&
                    s.secret_len <= 1024;
        st->violations += !sane;
    } else {
        st->violations += err == NULL;
    }
    free(strings);
}

static void frame_ops(struct rg_rbuf *r, struct stats *st)
{
    uint32_t count;
    if (!rg_proto_ops_count(r, &count)) {
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct rg_op op;
        const uint8_t *at = r->p;
        if (!rg_op_decode(r, false, &op)) {
            return;
        }
        st->ops++;
        st->violations += !op_sane(&op, at, (size_t)(r->p - at));
    }
    st->frames_ok += rg_rbuf_done(r);
}

/* The on_frame path of node.c, minus the side effects. */
static void feed_frame(const uint8_t *frame, size_t len, struct stats *st)
{
    uint8_t *copy = unit_dup_exact(frame, len);
    struct rg_rbuf r;
    uint8_t type;
    const char *err = NULL;
    rg_rbuf_init(&r, copy, len);
    if (!rg_proto_header(&r, &type, &err)) {
        st->violations += err == NULL;
    } else if (type == RG_MSG_START) {
        frame_start(&r, len, st);
    } else if (type == RG_MSG_OPS) {
        frame_ops(&r, st);
    }
    free(copy);
}

/* A valid OPS frame with 1..6 random ops. */
static void random_ops_frame(struct rg_wbuf *w)
{
    uint32_t n = 1 + (uint32_t)unit_rng_below(6);
    ops_header(w, n);
    for (uint32_t i = 0; i < n; i++) {
        /* Any kind but SETTLE, whose random ref would be refused. */
        uint8_t kind = (uint8_t)(1 + unit_rng_below(LAST_KIND - 1));
        kind = kind >= RG_OP_SETTLE ? kind + 1 : kind;
        struct rg_op op = make_op(kind, unit_rng());
        if ((op.kind == RG_OP_REGISTER || op.kind == RG_OP_REGISTER_NEW) &&
            unit_rng_below(2)) {
            op.replace = NULL;
            op.replace_len = 0;
        }
        rg_op_encode(w, &op, false);
    }
}

static void mutate(struct rg_wbuf *w)
{
    size_t edits = 1 + unit_rng_below(4);
    for (size_t e = 0; e < edits && w->len > 0; e++) {
        size_t at = unit_rng_below(w->len);
        switch (unit_rng_below(4)) {
        case 0:
            w->data[at] = (uint8_t)unit_rng();
            break;
        case 1:
            w->data[at] ^= (uint8_t)(1u << unit_rng_below(8));
            break;
        case 2:
            w->len = at; /* truncate */
            break;
        default: /* a small or huge length-ish value */
            w->data[at] = unit_rng_below(2) ? 0 : 0xFF;
            break;
        }
    }
}

static void test_random_frames(void)
{
    struct stats st = {0, 0, 0, 0};
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    for (int i = 0; i < 200000; i++) {
        rg_wbuf_reset(&w);
        size_t pick = unit_rng_below(8);
        if (pick == 0) { /* noise behind a plausible header */
            rg_wbuf_u8(&w, unit_rng_below(8) ? 1 : (uint8_t)unit_rng());
            rg_wbuf_u8(&w, (uint8_t)(1 + unit_rng_below(4)));
            size_t n = unit_rng_below(64);
            for (size_t k = 0; k < n; k++) {
                rg_wbuf_u8(&w, (uint8_t)unit_rng());
            }
        } else if (pick == 1) {
            start_frame(&w, (uint8_t)unit_rng_below(2), "/dev/shm/x", 10,
                        "127.0.0.1", 100, 200, unit_rng_below(40));
        } else {
            random_ops_frame(&w);
        }
        if (unit_rng_below(8) != 0) {
            mutate(&w);
        }
        feed_frame(w.data, w.len, &st);
    }
    rg_wbuf_free(&w);
    CHECK(st.violations == 0);
    CHECK(st.starts > 1000 && st.ops > 10000 && st.frames_ok > 1000);
}

/* SET_META_IF_VERSION: key, a pid, any u64 version, metadata within the
 * limit; READ_ENTRY: a key. */
static void test_cas_read_entry_refused(void)
{
    static uint8_t big[RG_META_MAX + 1];
    memset(big, 'x', sizeof big);
    struct rg_op op = make_op(RG_OP_SET_META_IF_VERSION, 1);
    op.pid_len = 0;
    expect_refused(op, __LINE__); /* the pid is required */
    op = make_op(RG_OP_SET_META_IF_VERSION, 1);
    op.pid = name_x;
    op.pid_len = sizeof name_x;
    expect_refused(op, __LINE__); /* and must be a pid */
    op = make_op(RG_OP_SET_META_IF_VERSION, 1);
    op.meta = big;
    op.meta_len = RG_META_MAX + 1;
    expect_refused(op, __LINE__);
    static const uint8_t kinds[] = {RG_OP_SET_META_IF_VERSION, RG_OP_READ_ENTRY};
    for (size_t i = 0; i < sizeof kinds; i++) {
        op = make_op(kinds[i], 1);
        op.key = name_bad;
        op.key_len = sizeof name_bad;
        expect_refused(op, __LINE__); /* non-canonical name */
        op.key_len = 0;
        expect_refused(op, __LINE__); /* empty name */
        op = make_op(kinds[i], 1);
        op.key = big;
        op.key_len = RG_NAME_MAX + 1;
        expect_refused(op, __LINE__); /* name blob over the limit */
    }

    /* Any version (0 too), and metadata empty or at the limit, is fine. */
    static const uint64_t versions[] = {0, 1, UINT64_MAX};
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    rg_wbuf_init(&w);
    for (size_t i = 0; i < 3; i++) {
        op = make_op(RG_OP_SET_META_IF_VERSION, 1);
        op.version = versions[i];
        op.meta = big;
        op.meta_len = i == 0 ? 0 : RG_META_MAX;
        rg_wbuf_reset(&w);
        rg_op_encode(&w, &op, false);
        CHECK(decode_one(&w, &back, &done) && done && back.version == versions[i] &&
              back.meta_len == op.meta_len && back.kind == op.kind);
    }
    /* The layout: key, pid, version, metadata. */
    op = make_op(RG_OP_SET_META_IF_VERSION, 0x77);
    rg_wbuf_reset(&w);
    rg_op_encode(&w, &op, false);
    size_t at = 1 + 8 + 4 + sizeof name_x + 4 + sizeof pid_a;
    static const uint8_t tail[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 3, 'c', 'a', 's'};
    CHECK(w.len == at + sizeof tail && memcmp(w.data + at, tail, sizeof tail) == 0);
    rg_wbuf_free(&w);
}

/* Port form of a *_MANY op: kind, ref 1, the count given, raw items. */
static void many_op(struct rg_wbuf *w, uint8_t kind, uint32_t count,
                    const uint8_t *items, size_t len)
{
    rg_wbuf_u8(w, kind);
    rg_wbuf_u64(w, 1);
    rg_wbuf_u32(w, count);
    rg_wbuf_put(w, items, len);
}

/* Decodes a *_MANY op built by many_op: 1 decoded and consumed all, 0
 * decoded with bytes left over (an OPS frame then has trailing bytes),
 * -1 refused. */
static int many_decodes(uint8_t kind, uint32_t count, const struct rg_wbuf *items)
{
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    rg_wbuf_init(&w);
    many_op(&w, kind, count, items->data, items->len);
    bool ok = decode_one(&w, &back, &done);
    rg_wbuf_free(&w);
    return !ok ? -1 : done ? 1 : 0;
}

/* An OPS frame of one *_MANY op: does node.c's path (count, op, then
 * nothing left) take it? */
static bool many_frame_ok(uint8_t kind, uint32_t count,
                          const struct rg_wbuf *items)
{
    struct rg_wbuf w;
    struct stats st = {0, 0, 0, 0};
    rg_wbuf_init(&w);
    ops_header(&w, 1);
    many_op(&w, kind, count, items->data, items->len);
    feed_frame(w.data, w.len, &st);
    rg_wbuf_free(&w);
    return st.frames_ok == 1 && st.violations == 0;
}

/* A count of 0 or over the items, a bad item first or last, bytes after
 * an item's term: refused. A count below the items decodes the first
 * ones and leaves the rest, which the OPS frame refuses. */
static void test_many_refused(void)
{
    static uint8_t big[RG_META_MAX + 1];
    memset(big, 'x', sizeof big);
    struct rg_wbuf good, bad;
    rg_wbuf_init(&good);
    rg_wbuf_init(&bad);

    /* UNREGISTER_MANY: three names. */
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 3, &unreg_items) == 1);
    CHECK(many_frame_ok(RG_OP_UNREGISTER_MANY, 3, &unreg_items));
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 0, &unreg_items) == -1);
    struct rg_wbuf none;
    rg_wbuf_init(&none);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 0, &none) == -1);
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 0, &none) == -1);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 1, &none) == -1);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 4, &unreg_items) == -1);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, UINT32_MAX, &unreg_items) == -1);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, RG_MANY_MAX + 1, &unreg_items) == -1);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 2, &unreg_items) == 0);
    CHECK(!many_frame_ok(RG_OP_UNREGISTER_MANY, 2, &unreg_items));
    static const uint8_t x_plus[] = {104, 2, 119, 1, 'x', 97, 1, 0}; /* {x,1} and a byte */
    const struct {
        const uint8_t *key;
        size_t len;
    } bad_keys[] = {{name_bad, sizeof name_bad}, {name_x, 0}, {x_plus, sizeof x_plus},
                    {name_x, sizeof name_x - 1}, {big, RG_NAME_MAX + 1}, {pid_a, 0}};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        for (int last = 0; last < 2; last++) { /* the bad name first, or last */
            rg_wbuf_reset(&bad);
            if (last) {
                rg_wbuf_put(&bad, unreg_items.data, unreg_items.len);
            }
            rg_wbuf_blob(&bad, bad_keys[i].key, bad_keys[i].len);
            if (!last) {
                rg_wbuf_put(&bad, unreg_items.data, unreg_items.len);
            }
            bool ok = many_decodes(RG_OP_UNREGISTER_MANY, 4, &bad) == -1;
            CHECK(ok);
            if (!ok) {
                fprintf(stderr, "  bad name %zu (last %d) was taken\n", i, last);
            }
        }
    }

    /* REGISTER_MANY: two items. */
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 2, &reg_items) == 1);
    CHECK(many_frame_ok(RG_OP_REGISTER_MANY, 2, &reg_items));
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 3, &reg_items) == -1);
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 1, &reg_items) == 0);
    CHECK(!many_frame_ok(RG_OP_REGISTER_MANY, 1, &reg_items));
    /* As UNREGISTER_MANY the items read as names: {x,1}, then pid_a (a
     * pid is a name too), then "m1", which is not. */
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 2, &reg_items) == 0);
    CHECK(many_decodes(RG_OP_UNREGISTER_MANY, 3, &reg_items) == -1);
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 3, &unreg_items) == -1);
    static const uint8_t pid_plus[] = {88, 119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                       0,  0,   0, 0,   0,   0,   0, 1, 0};
    const struct {
        const uint8_t *key, *pid, *replace;
        size_t key_len, pid_len, replace_len, meta_len;
    } items[] = {
        {name_bad, pid_a, NULL, sizeof name_bad, sizeof pid_a, 0, 0},
        {x_plus, pid_a, NULL, sizeof x_plus, sizeof pid_a, 0, 0},
        {name_x, pid_a, NULL, 0, sizeof pid_a, 0, 0},          /* empty name */
        {name_x, pid_a, NULL, sizeof name_x, 0, 0, 0},         /* no pid */
        {name_x, name_x, NULL, sizeof name_x, sizeof name_x, 0, 0},
        {name_x, pid_plus, NULL, sizeof name_x, sizeof pid_plus, 0, 0},
        {name_x, pid_a, name_x, sizeof name_x, sizeof pid_a, sizeof name_x, 0},
        {name_x, pid_a, pid_plus, sizeof name_x, sizeof pid_a, sizeof pid_plus, 0},
        {name_x, pid_a, NULL, sizeof name_x, sizeof pid_a, 0, RG_META_MAX + 1},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        for (int last = 0; last < 2; last++) {
            rg_wbuf_reset(&bad);
            if (last) {
                rg_wbuf_put(&bad, reg_items.data, reg_items.len);
            }
            rg_wbuf_blob(&bad, items[i].key, items[i].key_len);
            rg_wbuf_blob(&bad, items[i].pid, items[i].pid_len);
            rg_wbuf_blob(&bad, big, items[i].meta_len);
            rg_wbuf_blob(&bad, items[i].replace, items[i].replace_len);
            if (!last) {
                rg_wbuf_put(&bad, reg_items.data, reg_items.len);
            }
            bool ok = many_decodes(RG_OP_REGISTER_MANY, 3, &bad) == -1;
            CHECK(ok);
            if (!ok) {
                fprintf(stderr, "  bad item %zu (last %d) was taken\n", i, last);
            }
        }
    }
    /* Metadata at the limit and an empty replace are fine. */
    rg_wbuf_reset(&good);
    item_reg(&good, name_x, sizeof name_x, pid_a, sizeof pid_a, "", NULL, 0);
    good.len -= 8;
    rg_wbuf_blob(&good, big, RG_META_MAX);
    rg_wbuf_blob(&good, NULL, 0);
    CHECK(many_decodes(RG_OP_REGISTER_MANY, 1, &good) == 1);
    /* Every truncation of the items is refused. */
    int refused = 0;
    for (size_t k = 0; k < reg_items.len; k++) {
        rg_wbuf_reset(&bad);
        rg_wbuf_put(&bad, reg_items.data, k);
        refused += many_decodes(RG_OP_REGISTER_MANY, 2, &bad) == -1;
    }
    CHECK(refused == (int)reg_items.len);
    rg_wbuf_free(&none);
    rg_wbuf_free(&good);
    rg_wbuf_free(&bad);
}

/* RG_MANY_MAX names in one op are taken, one more is not (the bytes are
 * all there: the count is what is refused). */
static void test_many_limit(void)
{
    struct rg_wbuf items;
    struct rg_wbuf w;
    struct rg_op back;
    bool done;
    rg_wbuf_init(&items);
    for (uint32_t i = 0; i <= RG_MANY_MAX; i++) {
        rg_wbuf_blob(&items, name_y, sizeof name_y);
    }
    CHECK(!items.oom);
    size_t one = 4 + sizeof name_y;
    rg_wbuf_init(&w);
    many_op(&w, RG_OP_UNREGISTER_MANY, RG_MANY_MAX, items.data, items.len - one);
    CHECK(decode_one(&w, &back, &done) && done && back.count == RG_MANY_MAX &&
          back.items_len == items.len - one);
    rg_wbuf_reset(&w);
    many_op(&w, RG_OP_UNREGISTER_MANY, RG_MANY_MAX + 1, items.data, items.len);
    CHECK(!decode_one(&w, &back, &done) && back.ref == 1);
    rg_wbuf_free(&w);
    rg_wbuf_free(&items);
}

int main(void)
{
    unit_seed(0xC0FFEE1234567ULL);
    build_items();
    test_header();
    test_start_valid();
    test_start_malformed();
    test_ops_count();
    test_op_round_trip();
    test_op_refused();
    test_new_ops_refused();
    test_cas_read_entry_refused();
    test_many_refused();
    test_many_limit();
    test_failed_ref();
    test_builders();
    test_random_frames();
    rg_wbuf_free(&reg_items);
    rg_wbuf_free(&unreg_items);
    UNIT_DONE("test_proto");
}
