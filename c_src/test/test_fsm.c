/* Unit tests for fsm.c, the registry state machine, driven the way raft
 * drives it: log entries built with rg_entry_begin + rg_op_encode (log form,
 * with origin) and applied with rg_fsm_apply. Covers the semantics of every
 * op (register: free / same pid / other pid -> NO with the holder /
 * replace-if-owner; unregister; unregister-if-owner; set-meta and its
 * NOT_FOUND; purge-node by name and creation or any creation; READ's
 * payload), that replies exist only for ops whose origin is this daemon,
 * that changes are recorded in apply order, and a model-based random run in
 * which the change stream replayed into a mirror (as the member's ETS table
 * is) must equal a reference model. Snapshots: sorted, deterministic,
 * identical after restore into a second FSM; corrupt or truncated snapshots
 * are refused with the table unchanged. Malformed entries are counted in
 * bad_entries and never crash; entries are padded to 8n bytes as node.c
 * pads them, and 0..7 zero bytes after the ops are padding, not damage.
 * De-duplication: a second copy of a write (same origin and ref), in a later
 * entry or the same one, is skipped with no reply, no change and no table
 * effect; READ, PURGE_NODE and ref-0 ops are never skipped; ref 0 is never
 * answered; SETTLE answers nothing, changes nothing and makes its origin's
 * smaller refs apply again. Snapshots carry the set (same state, same
 * bytes, whatever the order it was built in); a restore refuses a damaged
 * set and then keeps both table and set.
 * The Registry ops: REGISTER_NEW answers NO with the holder even when that
 * is its own pid; SET_META_IF_OWNER is NOT_FOUND for a free name or another
 * pid; GROUP_ADD / GROUP_DEL on the duplicate-key table (values in order,
 * copies kept, one value or all removed, NO at the list cap) and their
 * change records; PURGE_NODE's GROUP_DEL_PURGE per group entry after the
 * names' DEL_PURGEs; META_PUT (always / if absent) and META_DEL; a second
 * copy of each new write kind is skipped. Snapshots (RGS4) hold the names,
 * groups and metadata tables, each sorted: equal states give equal bytes,
 * a restored one re-snapshots identically, and a restore refuses malformed
 * group rows, value lists and metadata rows (and the earlier RGS1, RGS2
 * and RGS3 layouts) with every table unchanged.
 * Versions and the atomic and bulk ops: every put of a name, by any op,
 * takes the FSM's next write count (version_seq) as the name's version and
 * nothing else moves it, so no version repeats, even for a name that went
 * and came back; SET_META_IF_VERSION is OK (a put) only for the holder at
 * its version, NO with [blob pid][u64 version][meta] of the entry
 * otherwise (stale, future, 0, another pid or incarnation, the old version
 * of a name registered again), NOT_FOUND for a free name; READ_ENTRY's
 * payloads; REGISTER_MANY's answer per name (free, same pid, held by
 * another, a given dead holder replaced, the same name twice) and its PUT
 * changes in order with consecutive versions; UNREGISTER_MANY's DELs; 2000
 * names in one op each way; second copies of 14, 16 and 17 skipped, in
 * later entries and the same one, READ_ENTRY never. Snapshots carry
 * version_seq and the versions: a restore gives identical bytes and the
 * same counter (a put after it gets a version above every restored one),
 * and refuses a version of 0 or above version_seq. The model-based run
 * covers these ops too, checking each name's version and version_seq. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "cmd.h"
#include "fsm.h"
#include "group.h"
#include "limits.h"
#include "unit.h"

#define SELF 7
#define OTHER 9
#define MAGIC 0x52475334u /* "RGS4" */

static const struct rg_sipkey key_a = {1, 2};
static const struct rg_sipkey key_b = {0xDEADBEEF, 0xFEEDFACE};

/* ---- building terms and entries ----------------------------------------- */

struct bytes {
    uint8_t b[160];
    uint32_t n;
};

static struct bytes make_pid(const char *node, uint32_t id, uint32_t creation)
{
    struct rg_wbuf w;
    struct bytes out;
    size_t len = strlen(node);
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, RG_ETF_NEW_PID);
    rg_wbuf_u8(&w, RG_ETF_SMALL_ATOM_UTF8);
    rg_wbuf_u8(&w, (uint8_t)len);
    rg_wbuf_put(&w, node, len);
    rg_wbuf_u32(&w, id);
    rg_wbuf_u32(&w, 0);
    rg_wbuf_u32(&w, creation);
    memcpy(out.b, w.data, w.len);
    out.n = (uint32_t)w.len;
    rg_wbuf_free(&w);
    return out;
}

/* The name {Tag, I}: a tuple of an atom and an integer. */
static struct bytes make_name(const char *tag, uint8_t i)
{
    struct bytes out;
    size_t len = strlen(tag);
    out.b[0] = RG_ETF_SMALL_TUPLE;
    out.b[1] = 2;
    out.b[2] = RG_ETF_SMALL_ATOM_UTF8;
    out.b[3] = (uint8_t)len;
    memcpy(out.b + 4, tag, len);
    out.b[4 + len] = RG_ETF_SMALL_INTEGER;
    out.b[5 + len] = i;
    out.n = (uint32_t)(6 + len);
    return out;
}

static struct rg_op op_base(uint8_t kind, uint64_t origin, uint64_t ref)
{
    struct rg_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.origin = origin;
    op.ref = ref;
    return op;
}

static struct rg_op op_register(uint64_t origin, uint64_t ref,
                                const struct bytes *key,
                                const struct bytes *pid, const char *meta,
                                const struct bytes *replace)
{
    struct rg_op op = op_base(RG_OP_REGISTER, origin, ref);
    op.key = key->b;
    op.key_len = key->n;
    op.pid = pid->b;
    op.pid_len = pid->n;
    op.meta = (const uint8_t *)meta;
    op.meta_len = (uint32_t)strlen(meta);
    if (replace != NULL) {
        op.replace = replace->b;
        op.replace_len = replace->n;
    }
    return op;
}

static struct rg_op op_key(uint8_t kind, uint64_t origin, uint64_t ref,
                           const struct bytes *key)
{
    struct rg_op op = op_base(kind, origin, ref);
    op.key = key->b;
    op.key_len = key->n;
    return op;
}

static struct rg_op op_unreg_owner(uint64_t origin, uint64_t ref,
                                   const struct bytes *key,
                                   const struct bytes *pid)
{
    struct rg_op op = op_key(RG_OP_UNREGISTER_IF_OWNER, origin, ref, key);
    op.pid = pid->b;
    op.pid_len = pid->n;
    return op;
}

static struct rg_op op_set_meta(uint64_t origin, uint64_t ref,
                                const struct bytes *key, const char *meta)
{
    struct rg_op op = op_key(RG_OP_SET_META, origin, ref, key);
    op.meta = (const uint8_t *)meta;
    op.meta_len = (uint32_t)strlen(meta);
    return op;
}

static struct rg_op op_settle(uint64_t origin, uint64_t below)
{
    struct rg_op op = op_base(RG_OP_SETTLE, origin, 0);
    op.below = below;
    return op;
}

static struct rg_op op_purge(uint64_t origin, uint64_t ref, const char *node,
                             bool any, uint32_t creation)
{
    struct rg_op op = op_base(RG_OP_PURGE_NODE, origin, ref);
    op.pid = (const uint8_t *)node;
    op.pid_len = (uint32_t)strlen(node);
    op.any_creation = any;
    op.creation = creation;
    return op;
}

/* REGISTER_NEW, SET_META_IF_OWNER and GROUP_ADD: key, pid and a value. */
static struct rg_op op_pid_meta(uint8_t kind, uint64_t origin, uint64_t ref,
                                const struct bytes *key,
                                const struct bytes *pid, const char *meta)
{
    struct rg_op op = op_key(kind, origin, ref, key);
    op.pid = pid->b;
    op.pid_len = pid->n;
    op.meta = (const uint8_t *)meta;
    op.meta_len = (uint32_t)strlen(meta);
    return op;
}

static struct rg_op op_group_del(uint64_t origin, uint64_t ref,
                                 const struct bytes *key,
                                 const struct bytes *pid, const char *value,
                                 bool all)
{
    struct rg_op op = op_pid_meta(RG_OP_GROUP_DEL, origin, ref, key, pid, value);
    op.flag = all;
    return op;
}

static struct rg_op op_meta_put(uint64_t origin, uint64_t ref,
                                const struct bytes *key, const char *value,
                                bool if_absent)
{
    struct rg_op op = op_set_meta(origin, ref, key, value);
    op.kind = RG_OP_META_PUT;
    op.flag = if_absent;
    return op;
}

/* A log entry under construction. */
struct batch {
    struct rg_wbuf w;
    size_t count_off;
    uint32_t n;
};

static void batch_begin(struct batch *b)
{
    rg_wbuf_init(&b->w);
    rg_entry_begin(&b->w, &b->count_off);
    b->n = 0;
}

static void batch_add(struct batch *b, const struct rg_op *op)
{
    rg_op_encode(&b->w, op, true);
    b->n++;
}

/* Sets the count, pads the entry to 8n bytes as node.c does, applies it
 * from an exact-size copy and frees the batch. */
static int batch_apply(struct batch *b, struct rg_fsm *f)
{
    rg_wbuf_patch_u32(&b->w, b->count_off, b->n);
    rg_entry_finish(&b->w);
    uint8_t *copy = malloc(b->w.len);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, b->w.data, b->w.len);
    int rv = rg_fsm_apply(f, copy, b->w.len);
    free(copy);
    rg_wbuf_free(&b->w);
    return rv;
}

/* Resets the effects, applies one op in its own entry. */
static int apply1(struct rg_fsm *f, const struct rg_op *op)
{
    struct batch b;
    rg_fsm_effects_reset(f);
    batch_begin(&b);
    batch_add(&b, op);
    return batch_apply(&b, f);
}

/* ---- reading the effects ------------------------------------------------ */

struct reply {
    uint64_t ref;
    uint8_t result;
    const uint8_t *payload;
    uint32_t len;
};

/* Decodes f->replies; -1 if it is not exactly n_replies well-formed ones. */
static int read_replies(const struct rg_fsm *f, struct reply *out, int max)
{
    struct rg_rbuf r;
    int n = 0;
    rg_rbuf_init(&r, f->replies.data, f->replies.len);
    while (r.left > 0 && n < max) {
        out[n].ref = rg_rbuf_u64(&r);
        out[n].result = rg_rbuf_u8(&r);
        out[n].payload = rg_rbuf_blob(&r, RG_FRAME_MAX, &out[n].len);
        n++;
    }
    return rg_rbuf_done(&r) && (uint32_t)n == f->n_replies ? n : -1;
}

/* One change record; meta is the value of the GROUP and META kinds. */
struct change {
    uint8_t kind;
    const uint8_t *key, *pid, *meta;
    uint32_t key_len, pid_len, meta_len;
    bool all; /* GROUP_DEL */
};

/* The fields after the key, per kind (fsm.h); false for an unknown kind
 * or an `all` byte other than 0 and 1. */
static bool read_change_tail(struct rg_rbuf *r, struct change *c)
{
    bool has_pid = c->kind == RG_CHANGE_PUT || c->kind == RG_CHANGE_GROUP_ADD ||
                   c->kind == RG_CHANGE_GROUP_DEL ||
                   c->kind == RG_CHANGE_GROUP_DEL_PURGE;
    bool has_value = c->kind == RG_CHANGE_PUT || c->kind == RG_CHANGE_GROUP_ADD ||
                     c->kind == RG_CHANGE_GROUP_DEL || c->kind == RG_CHANGE_META_PUT;
    if (c->kind < RG_CHANGE_PUT || c->kind > RG_CHANGE_META_DEL) {
        return false;
    }
    if (has_pid) {
        c->pid = rg_rbuf_blob(r, RG_PID_MAX, &c->pid_len);
    }
    if (c->kind == RG_CHANGE_GROUP_DEL) {
        uint8_t all = rg_rbuf_u8(r);
        c->all = all == 1;
        if (all > 1) {
            return false;
        }
    }
    if (has_value) {
        c->meta = rg_rbuf_blob(r, RG_META_MAX, &c->meta_len);
    }
    return rg_rbuf_ok(r);
}

static int read_changes(const struct rg_fsm *f, struct change *out, int max)
{
    struct rg_rbuf r;
    int n = 0;
    rg_rbuf_init(&r, f->changes.data, f->changes.len);
    while (r.left > 0 && n < max) {
        struct change *c = &out[n++];
        memset(c, 0, sizeof *c);
        c->kind = rg_rbuf_u8(&r);
        c->key = rg_rbuf_blob(&r, RG_NAME_MAX, &c->key_len);
        if (!read_change_tail(&r, c)) {
            return -1;
        }
    }
    return rg_rbuf_done(&r) && (uint32_t)n == f->n_changes ? n : -1;
}

static bool bytes_eq(const uint8_t *p, size_t n, const uint8_t *q, size_t m)
{
    return n == m && (n == 0 || memcmp(p, q, n) == 0);
}

static bool is_reply(const struct reply *r, uint64_t ref, uint8_t result,
                     const struct bytes *payload)
{
    return r->ref == ref && r->result == result &&
           (payload == NULL ? r->len == 0
                            : bytes_eq(r->payload, r->len, payload->b,
                                       payload->n));
}

static bool is_put(const struct change *c, const struct bytes *key,
                   const struct bytes *pid, const char *meta)
{
    return c->kind == RG_CHANGE_PUT &&
           bytes_eq(c->key, c->key_len, key->b, key->n) &&
           bytes_eq(c->pid, c->pid_len, pid->b, pid->n) &&
           bytes_eq(c->meta, c->meta_len, (const uint8_t *)meta,
                    strlen(meta));
}

static bool is_del(const struct change *c, const struct bytes *key)
{
    return c->kind == RG_CHANGE_DEL &&
           bytes_eq(c->key, c->key_len, key->b, key->n);
}

/* A deletion by PURGE_NODE is reported as such (the member re-claims). */
static bool is_purged(const struct change *c, const struct bytes *key)
{
    return c->kind == RG_CHANGE_DEL_PURGE &&
           bytes_eq(c->key, c->key_len, key->b, key->n);
}

/* The entry for key holds pid and meta (pid NULL: no entry). */
static bool holds(const struct rg_fsm *f, const struct bytes *key,
                  const struct bytes *pid, const char *meta)
{
    const struct rg_entry *e = rg_table_get(&f->table, key->b, key->n);
    if (pid == NULL) {
        return e == NULL;
    }
    return e != NULL && bytes_eq(rg_entry_pid(e), e->pid_len, pid->b, pid->n) &&
           bytes_eq(rg_entry_meta(e), e->meta_len, (const uint8_t *)meta,
                    strlen(meta));
}

static bool str_eq(const uint8_t *p, size_t n, const char *s)
{
    return bytes_eq(p, n, (const uint8_t *)s, strlen(s));
}

/* A change of kind for (key, pid) with value (pid or value NULL: the
 * record has none). */
static bool is_change(const struct change *c, uint8_t kind,
                      const struct bytes *key, const struct bytes *pid,
                      const char *value)
{
    return c->kind == kind && bytes_eq(c->key, c->key_len, key->b, key->n) &&
           (pid == NULL ? c->pid_len == 0
                        : bytes_eq(c->pid, c->pid_len, pid->b, pid->n)) &&
           (value == NULL ? c->meta_len == 0 : str_eq(c->meta, c->meta_len, value));
}

static bool is_group_del(const struct change *c, const struct bytes *key,
                         const struct bytes *pid, bool all, const char *value)
{
    return is_change(c, RG_CHANGE_GROUP_DEL, key, pid, value) && c->all == all;
}

/* (key, pid)'s value list is exactly the NULL-terminated values (values
 * NULL: there is no entry). */
static bool group_holds(const struct rg_fsm *f, const struct bytes *key,
                        const struct bytes *pid, const char *const *values)
{
    const struct rg_entry *e = rg_group_get(&f->groups, key->b, key->n, pid->b,
                                            pid->n);
    if (values == NULL) {
        return e == NULL;
    }
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    for (size_t i = 0; values[i] != NULL; i++) {
        rg_wbuf_blob(&w, values[i], strlen(values[i]));
    }
    bool ok = e != NULL && bytes_eq(rg_entry_meta(e), e->meta_len, w.data, w.len);
    rg_wbuf_free(&w);
    return ok;
}

/* The registry metadata under key is value (NULL: there is none). */
static bool meta_holds(const struct rg_fsm *f, const struct bytes *key,
                       const char *value)
{
    const struct rg_entry *e = rg_table_get(&f->meta, key->b, key->n);
    if (value == NULL) {
        return e == NULL;
    }
    return e != NULL && e->pid_len == 0 &&
           str_eq(rg_entry_meta(e), e->meta_len, value);
}

/* ---- op semantics ------------------------------------------------------- */

static void test_register(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("users", 1);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes b = make_pid("b@h", 2, 1);
    struct bytes c = make_pid("c@h", 3, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_register(SELF, 100, &k, &a, "m1", NULL);
    CHECK(apply1(&f, &op) == 0);                      /* free: yes */
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 100, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "m1"));
    CHECK(holds(&f, &k, &a, "m1") && f.table.count == 1);

    op = op_register(SELF, 101, &k, &a, "", NULL);    /* same pid: yes */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 101, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m1")); /* meta kept */

    op = op_register(SELF, 102, &k, &a, "m1", NULL);  /* same pid, same meta */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 102, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0);

    op = op_register(SELF, 103, &k, &a, "m2", NULL);  /* same pid, new meta */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 103, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "m2"));

    op = op_register(SELF, 104, &k, &b, "mb", NULL);  /* other pid: no */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 104, RG_RES_NO, &a));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m2"));

    op = op_register(SELF, 105, &k, &b, "mb", &c);    /* replace: not holder */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 105, RG_RES_NO, &a));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m2"));

    op = op_register(SELF, 106, &k, &b, "mb", &a);    /* replace the holder */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 106, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &b, "mb"));
    CHECK(holds(&f, &k, &b, "mb") && f.table.count == 1);

    op = op_register(SELF, 107, &k, &b, "", &c);      /* same pid wins too */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 107, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0 && holds(&f, &k, &b, "mb"));
    rg_fsm_close(&f);
}

static void test_unregister(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("svc", 1);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes b = make_pid("a@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct rg_op op = op_register(OTHER, 1, &k, &a, "", NULL);
    CHECK(apply1(&f, &op) == 0);

    op = op_unreg_owner(SELF, 2, &k, &b);             /* not the owner */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 2, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, ""));

    op = op_unreg_owner(SELF, 3, &k, &a);             /* the owner */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 3, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_del(&ch[0], &k));
    CHECK(holds(&f, &k, NULL, "") && f.table.count == 0);

    op = op_unreg_owner(SELF, 4, &k, &a);             /* already gone */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && f.n_changes == 0);

    op = op_register(OTHER, 5, &k, &b, "", NULL);
    CHECK(apply1(&f, &op) == 0);
    op = op_key(RG_OP_UNREGISTER, SELF, 6, &k);       /* whoever holds it */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 6, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_del(&ch[0], &k));
    CHECK(f.table.count == 0);

    op = op_key(RG_OP_UNREGISTER, SELF, 7, &k);       /* absent: still ok */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 7, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0);
    rg_fsm_close(&f);
}

static void test_set_meta_and_read(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("cfg", 9);
    struct bytes a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_set_meta(SELF, 1, &k, "x");  /* absent */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 &&
          is_reply(&rp[0], 1, RG_RES_NOT_FOUND, NULL));
    CHECK(f.n_changes == 0 && f.table.count == 0);

    op = op_key(RG_OP_READ, SELF, 2, &k);             /* READ absent */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 2, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0);

    op = op_register(SELF, 3, &k, &a, "old", NULL);
    CHECK(apply1(&f, &op) == 0);
    op = op_set_meta(SELF, 4, &k, "new");
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 4, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "new"));
    CHECK(holds(&f, &k, &a, "new"));

    op = op_set_meta(SELF, 5, &k, "");                /* clearing is allowed */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, ""));
    CHECK(holds(&f, &k, &a, ""));

    op = op_key(RG_OP_READ, SELF, 6, &k);             /* READ: holder pid */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 6, RG_RES_OK, &a));
    CHECK(f.n_changes == 0);
    rg_fsm_close(&f);
}

static void test_purge(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[16];
    struct bytes pids[6] = {
        make_pid("a@h", 1, 1), make_pid("a@h", 2, 1), make_pid("a@h", 3, 2),
        make_pid("b@h", 4, 1), make_pid("a@hh", 5, 1), make_pid("a@", 6, 1)};
    struct bytes keys[6];
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    for (uint8_t i = 0; i < 6; i++) {
        keys[i] = make_name("p", i);
        struct rg_op op = op_register(OTHER, i, &keys[i], &pids[i], "", NULL);
        CHECK(apply1(&f, &op) == 0);
    }
    struct rg_op op = op_purge(SELF, 50, "a@h", false, 1); /* a@h, creation 1 */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 50, RG_RES_OK, NULL));
    int n = read_changes(&f, ch, 16);
    CHECK(n == 2);
    bool del0 = false, del1 = false;
    for (int i = 0; i < n; i++) {
        del0 = del0 || is_purged(&ch[i], &keys[0]);
        del1 = del1 || is_purged(&ch[i], &keys[1]);
    }
    CHECK(del0 && del1);
    CHECK(f.table.count == 4);
    CHECK(holds(&f, &keys[2], &pids[2], "") && holds(&f, &keys[3], &pids[3], ""));
    CHECK(holds(&f, &keys[4], &pids[4], "") && holds(&f, &keys[5], &pids[5], ""));

    op = op_purge(SELF, 51, "a@h", false, 7);         /* no such creation */
    CHECK(apply1(&f, &op) == 0);
    CHECK(f.n_changes == 0 && f.table.count == 4);

    op = op_purge(SELF, 52, "a@h", true, 0);          /* any creation */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_changes(&f, ch, 16) == 1 && is_purged(&ch[0], &keys[2]));
    CHECK(f.table.count == 3); /* b@h, a@hh and a@ are other nodes */

    op = op_purge(OTHER, 53, "b@h", true, 0);
    CHECK(apply1(&f, &op) == 0);
    CHECK(f.n_replies == 0 && f.n_changes == 1 && f.table.count == 2);
    rg_fsm_close(&f);
}

/* Only ops stamped with this daemon's id are answered here; all change it. */
static void test_replies_only_for_self(void)
{
    struct rg_fsm f;
    struct reply rp[8];
    struct bytes k = make_name("x", 1);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes b = make_pid("a@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct batch bt;
    rg_fsm_effects_reset(&f);
    batch_begin(&bt);
    struct rg_op ops[6] = {
        op_register(OTHER, 1, &k, &a, "", NULL), op_register(SELF, 2, &k, &b, "", NULL),
        op_key(RG_OP_READ, OTHER, 3, &k),        op_key(RG_OP_READ, SELF, 4, &k),
        op_set_meta(OTHER, 5, &k, "m"),          op_key(RG_OP_UNREGISTER, 0, 6, &k)};
    for (int i = 0; i < 6; i++) {
        batch_add(&bt, &ops[i]);
    }
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(read_replies(&f, rp, 8) == 2);
    CHECK(is_reply(&rp[0], 2, RG_RES_NO, &a));
    CHECK(is_reply(&rp[1], 4, RG_RES_OK, &a));
    CHECK(f.n_changes == 3 && f.table.count == 0); /* put, put(meta), del */

    rg_fsm_effects_reset(&f);
    CHECK(f.n_changes == 0 && f.n_replies == 0);
    CHECK(f.changes.len == 0 && f.replies.len == 0);
    rg_fsm_close(&f);
}

static void test_change_order(void)
{
    struct rg_fsm f;
    struct change ch[8];
    struct reply rp[8];
    struct bytes k1 = make_name("k", 1), k2 = make_name("k", 2);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct batch bt;
    batch_begin(&bt);
    struct rg_op ops[5] = {
        op_register(SELF, 1, &k1, &a, "one", NULL),
        op_register(SELF, 2, &k2, &b, "two", NULL),
        op_key(RG_OP_UNREGISTER, SELF, 3, &k1),
        op_set_meta(SELF, 4, &k2, "three"),
        op_register(SELF, 5, &k1, &b, "", NULL)};
    for (int i = 0; i < 5; i++) {
        batch_add(&bt, &ops[i]);
    }
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(read_changes(&f, ch, 8) == 5);
    CHECK(is_put(&ch[0], &k1, &a, "one"));
    CHECK(is_put(&ch[1], &k2, &b, "two"));
    CHECK(is_del(&ch[2], &k1));
    CHECK(is_put(&ch[3], &k2, &b, "three"));
    CHECK(is_put(&ch[4], &k1, &b, ""));
    CHECK(read_replies(&f, rp, 8) == 5);
    for (int i = 0; i < 5; i++) {
        CHECK(is_reply(&rp[i], (uint64_t)i + 1, RG_RES_OK, NULL));
    }
    rg_fsm_close(&f);
}

/* ---- model-based random run --------------------------------------------- */

#define NKEYS 24
#define NPIDS 6
#define NMETA 3

/* A value in [0, n) from the shared generator, as an int index. */
static int pick(int n)
{
    return (int)unit_rng_below((size_t)n);
}

static const char *metas[NMETA] = {"", "m1", "m2"};
static const char *pid_nodes[NPIDS] = {"a@h", "a@h", "a@h", "b@h", "b@h", "c@h"};
static const uint32_t pid_creations[NPIDS] = {1, 1, 2, 1, 1, 5};

struct world {
    struct bytes keys[NKEYS];
    struct bytes pids[NPIDS];
    int holder[NKEYS]; /* model: pid index or -1 */
    int meta[NKEYS];
    uint64_t version[NKEYS]; /* of a held name */
    uint64_t seq;            /* the last version given */
    int cas_ok, cas_no, many_no; /* how often the run reached these */
    int mirror_pid[NKEYS]; /* the change stream replayed */
    int mirror_meta[NKEYS];
    int expected_changes;
};

static int find_key(const struct world *w, const uint8_t *p, uint32_t n)
{
    for (int i = 0; i < NKEYS; i++) {
        if (bytes_eq(p, n, w->keys[i].b, w->keys[i].n)) {
            return i;
        }
    }
    return -1;
}

static int find_pid(const struct world *w, const uint8_t *p, uint32_t n)
{
    for (int i = 0; i < NPIDS; i++) {
        if (bytes_eq(p, n, w->pids[i].b, w->pids[i].n)) {
            return i;
        }
    }
    return -1;
}

static int find_meta(const uint8_t *p, uint32_t n)
{
    for (int i = 0; i < NMETA; i++) {
        if (bytes_eq(p, n, (const uint8_t *)metas[i], strlen(metas[i]))) {
            return i;
        }
    }
    return -1;
}

/* A put of name k: holder p, meta m, the next version, a PUT change. */
static void model_put(struct world *w, int k, int p, int m)
{
    w->holder[k] = p;
    w->meta[k] = m;
    w->version[k] = ++w->seq;
    w->expected_changes++;
}

/* Applies op to the model; returns the expected result and holder (for NO
 * and READ). */
static uint8_t model_register(struct world *w, int k, int p, int m, int rep,
                              int *payload)
{
    int h = w->holder[k];
    if (h == -1 || (h != p && rep == h)) {
        model_put(w, k, p, m);
        return RG_RES_OK;
    }
    if (h == p) {
        if (m != 0 && w->meta[k] != m) {
            model_put(w, k, p, m);
        }
        return RG_RES_OK;
    }
    *payload = h;
    return RG_RES_NO;
}

static bool purge_matches(int p, int node, bool any, uint32_t creation)
{
    return strcmp(pid_nodes[p], pid_nodes[node]) == 0 &&
           (any || pid_creations[p] == creation);
}

struct planned {
    struct rg_op op;
    uint8_t result;
    int payload;       /* pid index or -1 */
    bool raw;          /* the payload is `want` (an entry, MANY's answers) */
    struct rg_wbuf want;
    struct rg_wbuf items; /* the *_MANY op's items, which op points into */
};

/* The entry of held name k as READ_ENTRY and a refused
 * SET_META_IF_VERSION give it: [blob pid][u64 version][meta bytes]. */
static void model_entry(const struct world *w, int k, struct rg_wbuf *out)
{
    const char *meta = metas[w->meta[k]];
    rg_wbuf_blob(out, w->pids[w->holder[k]].b, w->pids[w->holder[k]].n);
    rg_wbuf_u64(out, w->version[k]);
    rg_wbuf_put(out, meta, strlen(meta));
}

/* SET_META_IF_VERSION of k by p at a version near the name's: its own
 * (a right guess when p holds it), the one before, the next one, or 0. */
static void plan_cas(struct world *w, struct planned *pl, int k, int p, int m)
{
    uint64_t cur = w->holder[k] >= 0 ? w->version[k] : w->seq;
    static const int64_t delta[4] = {0, 0, -1, 1};
    uint64_t v = pick(5) == 0 ? 0 : cur + (uint64_t)delta[pick(4)];
    if (w->holder[k] >= 0 && pick(2)) {
        p = w->holder[k]; /* the holder, so that it can succeed */
    }
    pl->op = op_pid_meta(RG_OP_SET_META_IF_VERSION, pl->op.origin, pl->op.ref,
                         &w->keys[k], &w->pids[p], metas[m]);
    pl->op.version = v;
    if (w->holder[k] == -1) {
        pl->result = RG_RES_NOT_FOUND;
    } else if (w->holder[k] != p || w->version[k] != v) {
        pl->result = RG_RES_NO;
        pl->raw = true;
        model_entry(w, k, &pl->want);
        w->cas_no++;
    } else {
        model_put(w, k, p, m);
        w->cas_ok++;
    }
}

/* REGISTER_MANY of 1..4 names (maybe one twice), each as REGISTER; the
 * answer is [u8 result][blob holder] per name. */
static void plan_register_many(struct world *w, struct planned *pl)
{
    uint32_t n = 1 + (uint32_t)pick(4);
    pl->raw = true;
    for (uint32_t i = 0; i < n; i++) {
        int k = pick(NKEYS), p = pick(NPIDS), m = pick(NMETA);
        int rep = pick(3) ? -1 : pick(NPIDS), holder = -1;
        rg_wbuf_blob(&pl->items, w->keys[k].b, w->keys[k].n);
        rg_wbuf_blob(&pl->items, w->pids[p].b, w->pids[p].n);
        rg_wbuf_blob(&pl->items, metas[m], strlen(metas[m]));
        rg_wbuf_blob(&pl->items, rep < 0 ? NULL : w->pids[rep].b,
                     rep < 0 ? 0 : w->pids[rep].n);
        uint8_t res = model_register(w, k, p, m, rep, &holder);
        w->many_no += res == RG_RES_NO;
        rg_wbuf_u8(&pl->want, res);
        rg_wbuf_blob(&pl->want, holder < 0 ? NULL : w->pids[holder].b,
                     holder < 0 ? 0 : w->pids[holder].n);
    }
    pl->op.kind = RG_OP_REGISTER_MANY;
    pl->op.count = n;
}

/* UNREGISTER_MANY of 1..4 names (maybe one twice). */
static void plan_unregister_many(struct world *w, struct planned *pl)
{
    uint32_t n = 1 + (uint32_t)pick(4);
    for (uint32_t i = 0; i < n; i++) {
        int k = pick(NKEYS);
        rg_wbuf_blob(&pl->items, w->keys[k].b, w->keys[k].n);
        w->expected_changes += w->holder[k] != -1;
        w->holder[k] = -1;
    }
    pl->op.kind = RG_OP_UNREGISTER_MANY;
    pl->op.count = n;
}

/* Picks a random op into pl (whose buffers it resets), computes its
 * expected outcome on the model. */
static void plan_op(struct world *w, uint64_t ref, struct planned *pl)
{
    int k = pick(NKEYS), p = pick(NPIDS), m = pick(NMETA);
    uint64_t origin = pick(3) ? SELF : OTHER;
    pl->payload = -1;
    pl->result = RG_RES_OK;
    pl->raw = false;
    rg_wbuf_reset(&pl->want);
    rg_wbuf_reset(&pl->items);
    pl->op = op_base(RG_OP_READ, origin, ref);
    switch (pick(14)) {
    case 0:
    case 1:
    case 2: {
        int rep = pick(3) ? -1 : pick(NPIDS);
        pl->op = op_register(origin, ref, &w->keys[k], &w->pids[p], metas[m],
                             rep < 0 ? NULL : &w->pids[rep]);
        pl->result = model_register(w, k, p, m, rep, &pl->payload);
        break;
    }
    case 3:
        pl->op = op_key(RG_OP_UNREGISTER, origin, ref, &w->keys[k]);
        w->expected_changes += w->holder[k] != -1;
        w->holder[k] = -1;
        break;
    case 4:
        pl->op = op_unreg_owner(origin, ref, &w->keys[k], &w->pids[p]);
        if (w->holder[k] == p) {
            w->holder[k] = -1;
            w->expected_changes++;
        }
        break;
    case 5:
        pl->op = op_set_meta(origin, ref, &w->keys[k], metas[m]);
        if (w->holder[k] == -1) {
            pl->result = RG_RES_NOT_FOUND;
        } else {
            model_put(w, k, w->holder[k], m); /* a put even if m is the same */
        }
        break;
    case 6: {
        bool any = pick(2);
        uint32_t cr = pid_creations[pick(NPIDS)];
        pl->op = op_purge(origin, ref, pid_nodes[p], any, cr);
        for (int i = 0; i < NKEYS; i++) {
            if (w->holder[i] != -1 && purge_matches(w->holder[i], p, any, cr)) {
                w->holder[i] = -1;
                w->expected_changes++;
            }
        }
        break;
    }
    case 7:
    case 8:
        plan_cas(w, pl, k, p, m);
        break;
    case 9:
        pl->op = op_key(RG_OP_READ_ENTRY, origin, ref, &w->keys[k]);
        pl->raw = true;
        if (w->holder[k] >= 0) {
            model_entry(w, k, &pl->want);
        }
        break;
    case 10:
        plan_register_many(w, pl);
        break;
    case 11:
        plan_unregister_many(w, pl);
        break;
    default:
        pl->op = op_key(RG_OP_READ, origin, ref, &w->keys[k]);
        pl->payload = w->holder[k];
        break;
    }
    pl->op.items = pl->items.data;
    pl->op.items_len = (uint32_t)pl->items.len;
    if (origin != SELF) {
        pl->result = 0xFF; /* no reply expected */
    }
}

/* Replays the recorded changes into the mirror; false on a bad record. */
static bool replay_changes(struct world *w, const struct rg_fsm *f)
{
    static struct change ch[512];
    int n = read_changes(f, ch, 512);
    if (n < 0 || n != w->expected_changes) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        int k = find_key(w, ch[i].key, ch[i].key_len);
        if (k < 0) {
            return false;
        }
        if (ch[i].kind != RG_CHANGE_PUT) {
            w->mirror_pid[k] = -1;
            continue;
        }
        w->mirror_pid[k] = find_pid(w, ch[i].pid, ch[i].pid_len);
        w->mirror_meta[k] = find_meta(ch[i].meta, ch[i].meta_len);
        if (w->mirror_pid[k] < 0 || w->mirror_meta[k] < 0) {
            return false;
        }
    }
    return true;
}

static bool check_replies(const struct world *w, const struct rg_fsm *f,
                          const struct planned *pl, int n)
{
    static struct reply rp[64];
    int got = read_replies(f, rp, 64), j = 0;
    for (int i = 0; i < n; i++) {
        if (pl[i].result == 0xFF) {
            continue;
        }
        const struct bytes *payload =
            pl[i].payload < 0 ? NULL : &w->pids[pl[i].payload];
        bool ok = j < got &&
                  (pl[i].raw ? rp[j].ref == pl[i].op.ref &&
                                   rp[j].result == pl[i].result &&
                                   bytes_eq(rp[j].payload, rp[j].len,
                                            pl[i].want.data, pl[i].want.len)
                             : is_reply(&rp[j], pl[i].op.ref, pl[i].result,
                                        payload));
        if (!ok) {
            return false;
        }
        j++;
    }
    return j == got;
}

static bool model_matches(const struct world *w, const struct rg_fsm *f)
{
    size_t count = 0;
    for (int k = 0; k < NKEYS; k++) {
        int h = w->holder[k];
        const struct bytes *pid = h < 0 ? NULL : &w->pids[h];
        const char *meta = h < 0 ? "" : metas[w->meta[k]];
        const struct rg_entry *e = rg_table_get(&f->table, w->keys[k].b,
                                                w->keys[k].n);
        if (!holds(f, &w->keys[k], pid, meta) || w->mirror_pid[k] != h ||
            (h >= 0 && (w->mirror_meta[k] != w->meta[k] ||
                        e->version != w->version[k]))) {
            return false;
        }
        count += h >= 0;
    }
    return count == f->table.count && f->version_seq == w->seq;
}

static void world_init(struct world *w)
{
    w->seq = 0;
    w->cas_ok = w->cas_no = w->many_no = 0;
    for (int i = 0; i < NKEYS; i++) {
        w->keys[i] = make_name(i % 2 ? "odd" : "even", (uint8_t)(i * 11));
        w->holder[i] = w->mirror_pid[i] = -1;
        w->meta[i] = w->mirror_meta[i] = 0;
    }
    for (int i = 0; i < NPIDS; i++) {
        w->pids[i] = make_pid(pid_nodes[i], (uint32_t)i + 1, pid_creations[i]);
    }
}

static void test_model(void)
{
    static struct world w;
    struct rg_fsm f, g;
    static struct planned pl[16];
    uint64_t ref = 1;
    int bad_replies = 0, bad_changes = 0, bad_state = 0;
    world_init(&w);
    for (int i = 0; i < 16; i++) {
        rg_wbuf_init(&pl[i].want);
        rg_wbuf_init(&pl[i].items);
    }
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0); /* another server */
    for (int e = 0; e < 3000; e++) {
        struct batch bt, bt2;
        int n = 1 + pick(16);
        w.expected_changes = 0;
        batch_begin(&bt);
        batch_begin(&bt2);
        for (int i = 0; i < n; i++) {
            plan_op(&w, ref++, &pl[i]);
            batch_add(&bt, &pl[i].op);
            batch_add(&bt2, &pl[i].op);
        }
        rg_fsm_effects_reset(&f);
        CHECK(batch_apply(&bt, &f) == 0);
        CHECK(batch_apply(&bt2, &g) == 0);
        bad_replies += !check_replies(&w, &f, pl, n);
        bad_changes += !replay_changes(&w, &f);
        bad_state += !model_matches(&w, &f);
        rg_fsm_effects_reset(&g);
    }
    CHECK(bad_replies == 0 && bad_changes == 0 && bad_state == 0);
    CHECK(f.bad_entries == 0 && g.bad_entries == 0);
    CHECK(w.seq > 1000 && f.version_seq == w.seq && g.version_seq == w.seq);
    CHECK(w.cas_ok > 100 && w.cas_no > 100 && w.many_no > 100);
    for (int i = 0; i < 16; i++) {
        rg_wbuf_free(&pl[i].want);
        rg_wbuf_free(&pl[i].items);
    }
    uint8_t *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK(rg_fsm_snapshot(&f, &s1, &n1) == 0);
    CHECK(rg_fsm_snapshot(&g, &s2, &n2) == 0);
    CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0); /* same log, same state */
    free(s1);
    free(s2);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
}

/* ---- snapshots ---------------------------------------------------------- */

/* Fills f with n names, some with metadata. */
static void populate(struct rg_fsm *f, int n)
{
    struct batch bt;
    batch_begin(&bt);
    for (int i = 0; i < n; i++) {
        struct bytes k = make_name(i % 3 ? "abc" : "z", (uint8_t)i);
        struct bytes p = make_pid(i % 2 ? "a@h" : "b@h", (uint32_t)i, 1);
        struct rg_op op = op_register(OTHER, (uint64_t)i, &k, &p,
                                      i % 4 ? "meta" : "", NULL);
        batch_add(&bt, &op);
    }
    CHECK(batch_apply(&bt, f) == 0);
    rg_fsm_effects_reset(f);
}

static bool snapshot_equals(const struct rg_fsm *f, const uint8_t *s, size_t n)
{
    uint8_t *t = NULL;
    size_t m = 0;
    bool eq = rg_fsm_snapshot(f, &t, &m) == 0 && m == n && memcmp(s, t, n) == 0;
    free(t);
    return eq;
}

/* The de-duplication section as docs/protocol.md describes it: origins and
 * refs strictly ascending, every origin with at least one ref. */
static bool skip_dedup_section(struct rg_rbuf *r)
{
    uint32_t n = rg_rbuf_u32(r);
    uint64_t prev_origin = 0;
    for (uint32_t i = 0; i < n && rg_rbuf_ok(r); i++) {
        uint64_t origin = rg_rbuf_u64(r), prev_ref = 0;
        uint32_t k = rg_rbuf_u32(r);
        if ((i > 0 && origin <= prev_origin) || k == 0) {
            return false;
        }
        for (uint32_t j = 0; j < k && rg_rbuf_ok(r); j++) {
            uint64_t ref = rg_rbuf_u64(r);
            if (ref <= prev_ref) {
                return false;
            }
            prev_ref = ref;
        }
        prev_origin = origin;
    }
    return rg_rbuf_ok(r);
}

/* Byte order, a prefix first: the order of snapshot rows. */
static bool key_less(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int c = m == 0 ? 0 : memcmp(a, b, m);
    return c < 0 || (c == 0 && an < bn);
}

enum { T_NAMES = 0, T_GROUPS = 1, T_META = 2 };

/* One table of a snapshot: rows strictly increasing by their table key
 * (for groups the name then the pid, as group.h keys them), metadata rows
 * with an empty pid, names rows ending in a version in 1..seq. Returns the
 * row count or -1. */
static long table_rows_sorted(struct rg_rbuf *r, int table, uint64_t seq)
{
    static uint8_t prev[RG_GROUP_KEY_MAX], cur[RG_GROUP_KEY_MAX];
    size_t prev_len = 0;
    uint64_t count = rg_rbuf_u64(r);
    for (uint64_t i = 0; i < count && rg_rbuf_ok(r); i++) {
        uint32_t klen, plen, vlen;
        const uint8_t *k = rg_rbuf_blob(r, RG_NAME_MAX, &klen);
        const uint8_t *p = rg_rbuf_blob(r, RG_PID_MAX, &plen);
        rg_rbuf_blob(r, RG_GROUP_VALUES_MAX, &vlen);
        uint64_t version = table == T_NAMES ? rg_rbuf_u64(r) : 1;
        if (!rg_rbuf_ok(r) || (table == T_META && plen != 0) ||
            version == 0 || version > seq) {
            return -1;
        }
        if (klen == 0 || (table == T_GROUPS && plen == 0)) {
            return -1; /* no row has an empty name, no group an empty pid */
        }
        size_t len = klen;
        memcpy(cur, k, klen);
        if (table == T_GROUPS) {
            memcpy(cur + klen, p, plen);
            len += plen;
        }
        if (i > 0 && !key_less(prev, prev_len, cur, len)) {
            return -1;
        }
        memcpy(prev, cur, len);
        prev_len = len;
    }
    return rg_rbuf_ok(r) ? (long)count : -1;
}

/* The magic and the last version given, the three tables each sorted,
 * then a well-formed de-duplication section; fills counts (names, groups,
 * metadata) and returns true. */
static bool snapshot_tables(const uint8_t *s, size_t n, long counts[3])
{
    struct rg_rbuf r;
    rg_rbuf_init(&r, s, n);
    if (rg_rbuf_u32(&r) != MAGIC) {
        return false;
    }
    uint64_t seq = rg_rbuf_u64(&r);
    for (int t = T_NAMES; t <= T_META; t++) {
        counts[t] = table_rows_sorted(&r, t, seq);
        if (counts[t] < 0) {
            return false;
        }
    }
    return skip_dedup_section(&r) && rg_rbuf_done(&r);
}

/* The names' row count of a well-formed snapshot, or -1. */
static long snapshot_rows_sorted(const uint8_t *s, size_t n)
{
    long counts[3];
    return snapshot_tables(s, n, counts) ? counts[T_NAMES] : -1;
}

static void test_snapshot_round_trip(void)
{
    struct rg_fsm f, g;
    uint8_t *s = NULL;
    size_t n = 0;
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);

    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0); /* empty table */
    /* The magic, version_seq 0, three empty tables, an empty
     * de-duplication set. */
    static const uint8_t empty[40] = {0x52, 0x47, 0x53, 0x34};
    CHECK(n == sizeof empty && memcmp(s, empty, n) == 0);
    free(s);

    populate(&f, 200);
    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0);
    CHECK(snapshot_rows_sorted(s, n) == 200);
    CHECK(!g.restored);
    CHECK(rg_fsm_restore(&g, s, n) == 0);
    CHECK(g.restored && g.table.count == 200);
    CHECK(g.version_seq == 200 && f.version_seq == 200);
    CHECK(snapshot_equals(&g, s, n));
    CHECK(snapshot_equals(&f, s, n)); /* taking it changed nothing */

    /* Restoring replaces what was there; an empty snapshot empties it. */
    CHECK(rg_fsm_restore(&g, empty, sizeof empty) == 0);
    CHECK(g.table.count == 0 && g.version_seq == 0);
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
}

/* After a snapshot's names table: empty group and metadata tables and an
 * empty de-duplication section. */
static void end_snapshot(struct rg_wbuf *w)
{
    rg_wbuf_u64(w, 0);
    rg_wbuf_u64(w, 0);
    rg_wbuf_u32(w, 0);
}

/* A snapshot with rows in the given order (not necessarily sorted), row
 * i at version i + 1 and version_seq n, no groups nor metadata, and an
 * empty de-duplication section. */
static void build_snapshot(struct rg_wbuf *w, const struct bytes *keys,
                           const struct bytes *pids, int n, uint64_t count)
{
    rg_wbuf_init(w);
    rg_wbuf_u32(w, MAGIC);
    rg_wbuf_u64(w, (uint64_t)n);
    rg_wbuf_u64(w, count);
    for (int i = 0; i < n; i++) {
        rg_wbuf_blob(w, keys[i].b, keys[i].n);
        rg_wbuf_blob(w, pids[i].b, pids[i].n);
        rg_wbuf_blob(w, "m", 1);
        rg_wbuf_u64(w, (uint64_t)i + 1);
    }
    end_snapshot(w);
}

/* Restore must refuse p[0..n) and leave g exactly as it was. */
static bool refused_unchanged(struct rg_fsm *g, const uint8_t *p, size_t n)
{
    uint8_t *before = NULL;
    size_t blen = 0;
    bool ok = rg_fsm_snapshot(g, &before, &blen) == 0;
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(copy, p, n);
    }
    ok = ok && rg_fsm_restore(g, copy, n) == -1 && !g->restored &&
         snapshot_equals(g, before, blen);
    free(copy);
    free(before);
    return ok;
}

/* Truncations and a damaged header: refused, the table untouched. */
static void test_snapshot_truncated(void)
{
    struct rg_fsm f, g;
    uint8_t *s = NULL;
    size_t n = 0;
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&f, 20);
    populate(&g, 3); /* g has content a bad restore must not touch */
    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0);

    int truncations = 0;
    for (size_t k = 0; k < n; k++) {
        truncations += refused_unchanged(&g, s, k);
    }
    CHECK(truncations == (int)n);

    s[0] ^= 1; /* magic */
    CHECK(refused_unchanged(&g, s, n));
    s[0] ^= 1;
    s[3] = 0x33; /* RGS3's magic on RGS4's layout */
    CHECK(refused_unchanged(&g, s, n));
    s[3] = 0x34;
    CHECK(s[11] == 20); /* version_seq: populate's 20 puts */
    s[11] = 19; /* below the last row's version */
    CHECK(refused_unchanged(&g, s, n));
    s[11] = 0;
    CHECK(refused_unchanged(&g, s, n));
    s[11] = 20;
    s[19] += 1; /* count one too high */
    CHECK(refused_unchanged(&g, s, n));
    s[19] -= 2; /* one too low: a row left over */
    CHECK(refused_unchanged(&g, s, n));
    s[19] += 1;
    memset(s + 12, 0xFF, 8); /* hostile count */
    CHECK(refused_unchanged(&g, s, n));
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
}

/* A one-row snapshot (version 1 of 1) whose metadata is meta_len bytes
 * of 'x'. */
static void build_meta_snapshot(struct rg_wbuf *w, const struct bytes *key,
                                const struct bytes *pid, uint32_t meta_len)
{
    rg_wbuf_init(w);
    rg_wbuf_u32(w, MAGIC);
    rg_wbuf_u64(w, 1);
    rg_wbuf_u64(w, 1);
    rg_wbuf_blob(w, key->b, key->n);
    rg_wbuf_blob(w, pid->b, pid->n);
    rg_wbuf_u32(w, meta_len);
    for (uint32_t i = 0; i < meta_len; i++) {
        rg_wbuf_u8(w, 'x');
    }
    rg_wbuf_u64(w, 1);
    end_snapshot(w);
}

/* Rows that a command could not have produced: refused, table untouched.
 * Rows out of order are accepted (and come out sorted). */
static void test_snapshot_bad_rows(void)
{
    struct rg_fsm g;
    struct rg_wbuf w;
    struct bytes keys[3] = {make_name("a", 1), make_name("b", 2),
                            make_name("a", 1)};
    struct bytes pids[3] = {make_pid("n@h", 1, 1), make_pid("n@h", 2, 1),
                            make_pid("n@h", 3, 1)};
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&g, 3);

    build_snapshot(&w, keys, pids, 3, 3); /* duplicate key */
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);

    build_snapshot(&w, keys + 1, pids, 2, 2); /* unsorted but valid */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.table.count == 2);
    uint8_t *t = NULL;
    size_t n = 0;
    CHECK(rg_fsm_snapshot(&g, &t, &n) == 0 && snapshot_rows_sorted(t, n) == 2);
    free(t);
    rg_wbuf_free(&w);
    g.restored = false;

    keys[0].b[keys[0].n - 2] = RG_ETF_INTEGER; /* non-canonical key */
    build_snapshot(&w, keys, pids, 1, 1);
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);

    keys[0] = make_name("a", 1);
    pids[0].b[1] = 100; /* pid with an ATOM_EXT node */
    build_snapshot(&w, keys, pids, 1, 1);
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);

    build_snapshot(&w, keys, keys + 1, 1, 1); /* a name where a pid belongs */
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);

    pids[0] = make_pid("n@h", 1, 1);
    build_meta_snapshot(&w, &keys[0], &pids[0], RG_META_MAX + 1);
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);
    build_meta_snapshot(&w, &keys[0], &pids[0], RG_META_MAX); /* at max */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.table.count == 1);
    rg_wbuf_free(&w);
    rg_fsm_close(&g);
}

/* ---- de-duplication ----------------------------------------------------- */

/* The nemesis's two cases: a REGISTER answered NO whose second copy would
 * later take the name (a phantom owner), and a late second UNREGISTER that
 * would remove a newer owner. Both copies come in later entries. */
static void test_dedup_skips_second_copies(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct bytes k = make_name("dup", 1);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op held = op_register(OTHER, 1, &k, &b, "", NULL);
    CHECK(apply1(&f, &held) == 0);
    struct rg_op reg = op_register(SELF, 10, &k, &a, "", NULL);
    CHECK(apply1(&f, &reg) == 0); /* taken: NO */
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 10, RG_RES_NO, &b));
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, OTHER, 2, &k);
    CHECK(apply1(&f, &unreg) == 0);
    CHECK(apply1(&f, &reg) == 0); /* the re-sent copy: skipped */
    CHECK(f.n_replies == 0 && f.n_changes == 0 && holds(&f, &k, NULL, ""));

    struct rg_op reg2 = op_register(SELF, 11, &k, &a, "", NULL);
    CHECK(apply1(&f, &reg2) == 0); /* a's own, new op does register */
    CHECK(holds(&f, &k, &a, ""));
    struct rg_op drop = op_key(RG_OP_UNREGISTER, SELF, 12, &k);
    CHECK(apply1(&f, &drop) == 0);
    CHECK(f.n_replies == 1 && f.n_changes == 1 && holds(&f, &k, NULL, ""));
    struct rg_op newer = op_register(OTHER, 3, &k, &b, "m", NULL);
    CHECK(apply1(&f, &newer) == 0);
    CHECK(apply1(&f, &drop) == 0); /* late second UNREGISTER: skipped */
    CHECK(f.n_replies == 0 && f.n_changes == 0 && holds(&f, &k, &b, "m"));

    /* Likewise UNREGISTER_IF_OWNER and SET_META; the FSM of another server
     * (OTHER's copies) skips the same way. */
    struct rg_op meta = op_set_meta(OTHER, 4, &k, "n");
    CHECK(apply1(&f, &meta) == 0 && holds(&f, &k, &b, "n"));
    struct rg_op meta_back = op_set_meta(OTHER, 5, &k, "m");
    CHECK(apply1(&f, &meta_back) == 0);
    CHECK(apply1(&f, &meta) == 0 && f.n_changes == 0 && holds(&f, &k, &b, "m"));
    struct rg_op if_owner = op_unreg_owner(SELF, 13, &k, &b);
    CHECK(apply1(&f, &if_owner) == 0 && holds(&f, &k, NULL, ""));
    CHECK(apply1(&f, &newer) == 0); /* skipped too: OTHER's ref 3 again */
    CHECK(holds(&f, &k, NULL, ""));
    struct rg_op newest = op_register(OTHER, 6, &k, &b, "", NULL);
    CHECK(apply1(&f, &newest) == 0 && holds(&f, &k, &b, ""));
    CHECK(apply1(&f, &if_owner) == 0); /* would remove b again */
    CHECK(f.n_replies == 0 && f.n_changes == 0 && holds(&f, &k, &b, ""));

    /* The same ref from another origin is another op. */
    struct rg_op theirs = op_key(RG_OP_UNREGISTER, OTHER, 12, &k);
    CHECK(apply1(&f, &theirs) == 0 && f.n_changes == 1);
    CHECK(holds(&f, &k, NULL, ""));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 4);
    CHECK(rg_dedup_count(&f.dedup, OTHER) == 7);
    rg_fsm_close(&f);
}

/* A copy in the same entry is skipped as well; READ, PURGE_NODE and ref-0
 * ops are never skipped, and ref 0 is never answered. */
static void test_dedup_scope(void)
{
    struct rg_fsm f;
    struct reply rp[8];
    struct bytes k = make_name("scope", 1);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct batch bt;
    struct rg_op reg = op_register(SELF, 20, &k, &a, "", NULL);
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, SELF, 21, &k);
    rg_fsm_effects_reset(&f);
    batch_begin(&bt);
    batch_add(&bt, &reg);
    batch_add(&bt, &unreg);
    batch_add(&bt, &reg); /* copies inside one entry */
    batch_add(&bt, &unreg);
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(read_replies(&f, rp, 8) == 2 && is_reply(&rp[0], 20, RG_RES_OK, NULL) &&
          is_reply(&rp[1], 21, RG_RES_OK, NULL));
    CHECK(f.n_changes == 2 && holds(&f, &k, NULL, ""));

    struct rg_op read = op_key(RG_OP_READ, SELF, 20, &k); /* a tracked ref */
    CHECK(apply1(&f, &read) == 0 && f.n_replies == 1);
    CHECK(apply1(&f, &read) == 0 && f.n_replies == 1);

    struct rg_op purge = op_purge(SELF, 30, "a@h", true, 0);
    struct rg_op again = op_register(OTHER, 1, &k, &a, "", NULL);
    CHECK(apply1(&f, &again) == 0);
    CHECK(apply1(&f, &purge) == 0 && f.n_replies == 1 && f.n_changes == 1);
    struct rg_op again2 = op_register(OTHER, 2, &k, &a, "", NULL);
    CHECK(apply1(&f, &again2) == 0);
    CHECK(apply1(&f, &purge) == 0 && f.n_replies == 1 && f.n_changes == 1);
    CHECK(holds(&f, &k, NULL, "") && rg_dedup_count(&f.dedup, SELF) == 2);

    struct rg_op zero = op_register(SELF, 0, &k, &b, "", NULL);
    CHECK(apply1(&f, &zero) == 0 && f.n_replies == 0 && f.n_changes == 1);
    struct rg_op zero_del = op_key(RG_OP_UNREGISTER, SELF, 0, &k);
    CHECK(apply1(&f, &zero_del) == 0 && f.n_replies == 0 && f.n_changes == 1);
    CHECK(apply1(&f, &zero) == 0 && f.n_changes == 1 && holds(&f, &k, &b, ""));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 2); /* ref 0: never tracked */
    rg_fsm_close(&f);
}

/* SETTLE forgets the origin's refs below `below` (only that origin's): the
 * same (origin, ref) then applies again. It answers and changes nothing. */
static void test_settle(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct bytes k = make_name("settle", 1), k2 = make_name("settle", 2);
    struct bytes a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op reg = op_register(SELF, 10, &k, &a, "", NULL);
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, SELF, 11, &k);
    struct rg_op theirs = op_register(OTHER, 10, &k2, &a, "x", NULL);
    CHECK(apply1(&f, &reg) == 0 && apply1(&f, &unreg) == 0);
    CHECK(apply1(&f, &theirs) == 0 && apply1(&f, &reg) == 0);
    CHECK(holds(&f, &k, NULL, "") && holds(&f, &k2, &a, "x"));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 2 &&
          rg_dedup_count(&f.dedup, OTHER) == 1);

    struct rg_op settle = op_settle(SELF, 11); /* 10 is answered, 11 not */
    CHECK(apply1(&f, &settle) == 0);
    CHECK(f.n_replies == 0 && f.n_changes == 0 && f.bad_entries == 0);
    CHECK(rg_dedup_count(&f.dedup, SELF) == 1 &&
          rg_dedup_count(&f.dedup, OTHER) == 1);
    CHECK(apply1(&f, &reg) == 0); /* forgotten: applies again */
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 10, RG_RES_OK, NULL));
    CHECK(f.n_changes == 1 && holds(&f, &k, &a, ""));
    CHECK(apply1(&f, &unreg) == 0 && f.n_replies == 0); /* 11 still known */
    CHECK(holds(&f, &k, &a, ""));
    struct rg_op clear = op_key(RG_OP_UNREGISTER, OTHER, 11, &k2);
    CHECK(apply1(&f, &clear) == 0 && holds(&f, &k2, NULL, ""));
    CHECK(apply1(&f, &theirs) == 0 && f.n_changes == 0); /* OTHER untouched */

    settle = op_settle(SELF, UINT64_MAX);
    CHECK(apply1(&f, &settle) == 0 && rg_dedup_count(&f.dedup, SELF) == 0);
    settle = op_settle(OTHER, 12);
    CHECK(apply1(&f, &settle) == 0 && f.dedup.n == 0);
    settle = op_settle(12345, 1); /* an origin never seen */
    CHECK(apply1(&f, &settle) == 0 && f.dedup.n == 0 && f.bad_entries == 0);
    rg_fsm_close(&f);
}

/* Applies op under n distinct refs (and origins), in the order given. */
static void add_refs(struct rg_fsm *f, const uint64_t *origins,
                     const uint64_t *refs, int n)
{
    struct bytes k = make_name("order", 1);
    for (int i = 0; i < n; i++) {
        struct rg_op op = op_key(RG_OP_UNREGISTER, origins[i], refs[i], &k);
        CHECK(apply1(f, &op) == 0);
    }
    rg_fsm_effects_reset(f);
}

/* The set survives a snapshot round trip and keeps skipping copies; equal
 * sets built in different orders give equal bytes. */
static void test_snapshot_dedup(void)
{
    struct rg_fsm f, g, h;
    uint8_t *s = NULL;
    size_t n = 0;
    static const uint64_t origins[] = {OTHER, SELF, 3, OTHER, 3, SELF, 0, 3};
    static const uint64_t refs[] = {5, 9, 100, 200, 1, 10, 77, 50};
    static const uint64_t origins_r[] = {3, 0, SELF, 3, OTHER, 3, SELF, OTHER};
    static const uint64_t refs_r[] = {50, 77, 10, 1, 200, 100, 9, 5};
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    CHECK(rg_fsm_init(&h, 3, key_b) == 0);
    add_refs(&f, origins, refs, 8);
    add_refs(&h, origins_r, refs_r, 8);
    populate(&f, 5);
    populate(&h, 5);

    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0 && snapshot_rows_sorted(s, n) == 5);
    CHECK(snapshot_equals(&h, s, n)); /* same state, other order, other key */
    /* The section: 4 origins, 0 < 3 < SELF < OTHER, the last with 1..4
     * from populate (ref 0 is not tracked) besides 5 and 200. */
    static const uint8_t tail[] = {0, 0, 0, 0, 0, 0, 0, OTHER, 0, 0, 0, 6,
                                   0, 0, 0, 0, 0, 0, 0, 1,     0, 0, 0, 0,
                                   0, 0, 0, 2, 0, 0, 0, 0,     0, 0, 0, 3,
                                   0, 0, 0, 0, 0, 0, 0, 4,     0, 0, 0, 0,
                                   0, 0, 0, 5, 0, 0, 0, 0,     0, 0, 0, 200};
    CHECK(n > sizeof tail && memcmp(s + n - sizeof tail, tail, sizeof tail) == 0);

    CHECK(rg_fsm_restore(&g, s, n) == 0 && snapshot_equals(&g, s, n));
    CHECK(rg_dedup_count(&g.dedup, 0) == 1 && rg_dedup_count(&g.dedup, 3) == 3 &&
          rg_dedup_count(&g.dedup, SELF) == 2 &&
          rg_dedup_count(&g.dedup, OTHER) == 6);
    struct bytes k = make_name("z", 0); /* populate's first name */
    struct rg_op copy = op_key(RG_OP_UNREGISTER, SELF, 9, &k);
    CHECK(apply1(&g, &copy) == 0 && g.n_changes == 0 && g.table.count == 5);
    copy.ref = 8; /* not in the set: applies */
    CHECK(apply1(&g, &copy) == 0 && g.n_changes == 1 && g.table.count == 4);
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
    rg_fsm_close(&h);
}

/* A snapshot of one row and the given raw de-duplication section. */
static void build_dedup_snapshot(struct rg_wbuf *w, const uint64_t *words,
                                 int n)
{
    struct bytes k = make_name("d", 1), p = make_pid("n@h", 1, 1);
    build_meta_snapshot(w, &k, &p, 0);
    w->len -= 4; /* build_meta_snapshot's empty section */
    for (int i = 0; i < n; i++) { /* u32 counts are written as u32 */
        if (words[i] >> 32 == 0xC0) {
            rg_wbuf_u32(w, (uint32_t)words[i]);
        } else {
            rg_wbuf_u64(w, words[i]);
        }
    }
}

#define U32(v) (0xC000000000ULL | (uint32_t)(v))

/* Snapshots of the earlier layouts, one row each (RGS1: the names table
 * alone; RGS2: then the de-duplication section; RGS3: names, groups and
 * metadata, then the section, without version_seq or versions), are
 * refused under each earlier magic and under RGS4's. */
static void refuse_old_layouts(struct rg_fsm *g)
{
    struct bytes k = make_name("d", 1), p = make_pid("n@h", 1, 1);
    static const uint32_t magics[] = {0x52475331u, 0x52475332u, 0x52475333u,
                                      MAGIC};
    for (int layout = 1; layout <= 3; layout++) {
        for (size_t m = 0; m < 4; m++) {
            struct rg_wbuf w;
            rg_wbuf_init(&w);
            rg_wbuf_u32(&w, magics[m]);
            rg_wbuf_u64(&w, 1);
            rg_wbuf_blob(&w, k.b, k.n);
            rg_wbuf_blob(&w, p.b, p.n);
            rg_wbuf_blob(&w, "", 0);
            if (layout == 3) {
                rg_wbuf_u64(&w, 0); /* no groups, no metadata */
                rg_wbuf_u64(&w, 0);
            }
            if (layout >= 2) {
                rg_wbuf_u32(&w, 0);
            }
            CHECK(refused_unchanged(g, w.data, w.len));
            rg_wbuf_free(&w);
        }
    }
}

/* Damaged sections are refused, and then neither the table nor the set of
 * the FSM changes. */
static void test_snapshot_bad_dedup(void)
{
    struct rg_fsm g;
    struct rg_wbuf w;
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&g, 3); /* a table, and OTHER's refs 1 and 2 */
    CHECK(rg_dedup_count(&g.dedup, OTHER) == 2);

    static const uint64_t good[] = {U32(2), 4, U32(2), 1, 9, 6, U32(1), 3};
    build_dedup_snapshot(&w, good, 8);
    uint8_t *copy = malloc(w.len);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, w.data, w.len);
    int truncations = 0;
    for (size_t k = 0; k < w.len; k++) {
        truncations += refused_unchanged(&g, copy, k);
    }
    CHECK(truncations == (int)w.len);
    free(copy);
    rg_wbuf_free(&w);

    static const uint64_t bad[][8] = {
        {U32(2), 6, U32(1), 3, 4, U32(2), 1, 9}, /* origins descending */
        {U32(2), 4, U32(1), 3, 4, U32(2), 1, 9}, /* an origin twice */
        {U32(2), 4, U32(2), 9, 1, 6, U32(1), 3}, /* refs descending */
        {U32(2), 4, U32(2), 1, 1, 6, U32(1), 3}, /* a ref twice */
        {U32(2), 4, U32(2), 0, 9, 6, U32(1), 3}, /* ref 0 */
        {U32(3), 4, U32(2), 1, 9, 6, U32(1), 3}, /* one origin too many */
        {U32(2), 4, U32(3), 1, 9, 6, U32(1), 3}, /* one ref too many */
        {U32(1), 4, U32(2), 1, 9, 6, U32(1), 3}, /* an origin left over */
        {U32(2), 4, U32(0), 6, U32(1), 3, 0, 0}, /* an origin without refs */
    };
    static const int lens[] = {8, 8, 8, 8, 8, 8, 8, 8, 6};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        build_dedup_snapshot(&w, bad[i], lens[i]);
        bool ok = refused_unchanged(&g, w.data, w.len);
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "  bad dedup section %zu was accepted\n", i);
        }
        rg_wbuf_free(&w);
    }

    build_dedup_snapshot(&w, good, 8); /* a trailing byte */
    rg_wbuf_u8(&w, 0);
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);
    build_dedup_snapshot(&w, good, 0); /* no section at all */
    CHECK(refused_unchanged(&g, w.data, w.len));
    rg_wbuf_free(&w);
    refuse_old_layouts(&g);
    CHECK(rg_dedup_count(&g.dedup, OTHER) == 2 && g.table.count == 3);

    build_dedup_snapshot(&w, good, 8); /* and the good one is taken */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.table.count == 1);
    CHECK(rg_dedup_count(&g.dedup, OTHER) == 0 &&
          rg_dedup_count(&g.dedup, 4) == 2 && rg_dedup_count(&g.dedup, 6) == 1);
    rg_wbuf_free(&w);
    rg_fsm_close(&g);
}

/* ---- the Registry ops on names ------------------------------------------ */

static struct rg_op op_register_new(uint64_t origin, uint64_t ref,
                                    const struct bytes *key,
                                    const struct bytes *pid, const char *meta,
                                    const struct bytes *replace)
{
    struct rg_op op = op_register(origin, ref, key, pid, meta, replace);
    op.kind = RG_OP_REGISTER_NEW;
    return op;
}

/* REGISTER_NEW (Registry's register/3) is REGISTER except for a name the
 * pid already holds: NO with the holder, which is the pid itself, and
 * nothing changes, not even the metadata. */
static void test_register_new(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("new", 1);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    struct bytes c = make_pid("c@h", 3, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_register_new(SELF, 1, &k, &a, "m1", NULL); /* free */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 1, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "m1"));

    static const char *const metas_tried[] = {"m2", "m1", ""};
    for (int i = 0; i < 3; i++) { /* the same pid: NO, whatever the meta */
        op = op_register_new(SELF, 2 + (uint64_t)i, &k, &a, metas_tried[i], NULL);
        CHECK(apply1(&f, &op) == 0);
        CHECK(read_replies(&f, rp, 4) == 1 &&
              is_reply(&rp[0], 2 + (uint64_t)i, RG_RES_NO, &a));
        CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m1"));
    }
    op = op_register_new(SELF, 5, &k, &a, "m2", &a); /* even replacing itself */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 5, RG_RES_NO, &a));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m1"));

    op = op_register_new(SELF, 6, &k, &b, "mb", NULL); /* another pid: NO */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 6, RG_RES_NO, &a));
    op = op_register_new(SELF, 7, &k, &b, "mb", &c); /* replace: not holder */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 7, RG_RES_NO, &a));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m1"));

    op = op_register_new(SELF, 8, &k, &b, "mb", &a); /* replace the holder */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 8, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &b, "mb"));

    op = op_register(SELF, 9, &k, &b, "", NULL); /* REGISTER: yes for it */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 9, RG_RES_OK, NULL));
    CHECK(holds(&f, &k, &b, "mb") && f.table.count == 1);
    op = op_register_new(OTHER, 10, &k, &b, "", NULL); /* not ours to answer */
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0 && f.n_changes == 0);
    rg_fsm_close(&f);
}

/* SET_META_IF_OWNER (Registry's update_value/3) sets the metadata of the
 * name only if the op's pid holds it: for a free name and for any other
 * pid, NOT_FOUND and nothing changes. */
static void test_set_meta_if_owner(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("upd", 1);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    struct bytes a_next = make_pid("a@h", 1, 2); /* a's id, next incarnation */
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 1, &k, &a, "x");
    CHECK(apply1(&f, &op) == 0); /* free */
    CHECK(read_replies(&f, rp, 4) == 1 &&
          is_reply(&rp[0], 1, RG_RES_NOT_FOUND, NULL));
    CHECK(f.n_changes == 0 && holds(&f, &k, NULL, "") && f.table.count == 0);

    struct rg_op reg = op_register(OTHER, 1, &k, &a, "m", NULL);
    CHECK(apply1(&f, &reg) == 0);
    const struct bytes *others[2] = {&b, &a_next};
    for (int i = 0; i < 2; i++) {
        op = op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 2 + (uint64_t)i, &k,
                         others[i], "x");
        CHECK(apply1(&f, &op) == 0);
        CHECK(read_replies(&f, rp, 4) == 1 &&
              is_reply(&rp[0], 2 + (uint64_t)i, RG_RES_NOT_FOUND, NULL));
        CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m"));
    }

    op = op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 4, &k, &a, "x"); /* owner */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 4, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "x"));
    CHECK(holds(&f, &k, &a, "x"));
    op = op_pid_meta(RG_OP_SET_META_IF_OWNER, OTHER, 5, &k, &a, "");
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0);
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, ""));
    CHECK(holds(&f, &k, &a, "") && f.table.count == 1);
    rg_fsm_close(&f);
}

/* ---- duplicate keys ----------------------------------------------------- */

static struct rg_op op_group_add(uint64_t origin, uint64_t ref,
                                 const struct bytes *key,
                                 const struct bytes *pid, const char *value)
{
    return op_pid_meta(RG_OP_GROUP_ADD, origin, ref, key, pid, value);
}

/* Applies op, expecting one OK reply to ref (NULL change: no change) or,
 * for another origin, none. */
static bool applies_ok(struct rg_fsm *f, const struct rg_op *op,
                       struct change *ch, int max_changes)
{
    struct reply rp[2];
    int want = op->origin == SELF ? 1 : 0;
    return apply1(f, op) == 0 && read_replies(f, rp, 2) == want &&
           (want == 0 || is_reply(&rp[0], op->ref, RG_RES_OK, NULL)) &&
           read_changes(f, ch, max_changes) == (int)f->n_changes;
}

static void test_group_add_del(void)
{
    struct rg_fsm f;
    struct change ch[4];
    struct bytes k = make_name("grp", 1), k2 = make_name("grp", 2);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_group_add(SELF, 1, &k, &a, "v1");
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_GROUP_ADD, &k, &a, "v1"));
    static const char *const v1[] = {"v1", NULL};
    CHECK(group_holds(&f, &k, &a, v1) && f.groups.count == 1);
    op = op_group_add(SELF, 2, &k, &a, "v1"); /* the same value again */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_GROUP_ADD, &k, &a, "v1"));
    op = op_group_add(SELF, 3, &k, &a, "v2");
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    static const char *const v1v1v2[] = {"v1", "v1", "v2", NULL};
    CHECK(group_holds(&f, &k, &a, v1v1v2) && f.groups.count == 1);

    op = op_group_add(SELF, 4, &k, &b, "v1"); /* another pid: its own entry */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    op = op_group_add(OTHER, 5, &k2, &a, ""); /* not answered here */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_GROUP_ADD, &k2, &a, ""));
    CHECK(f.groups.count == 3 && f.table.count == 0 && f.meta.count == 0);

    op = op_group_del(SELF, 6, &k, &a, "v1", false); /* both copies go */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_group_del(&ch[0], &k, &a, false, "v1"));
    static const char *const v2[] = {"v2", NULL};
    CHECK(group_holds(&f, &k, &a, v2));
    op = op_group_del(SELF, 7, &k, &a, "v1", false); /* none left: no change */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 0);
    op = op_group_del(SELF, 8, &k, &b, "other", true); /* all of b's: the change carries no value */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_group_del(&ch[0], &k, &b, true, ""));
    CHECK(group_holds(&f, &k, &b, NULL) && f.groups.count == 2);
    op = op_group_del(SELF, 9, &k, &b, "", true); /* no entry: OK, nothing */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 0);
    op = op_group_del(SELF, 10, &k, &a, "v2", false); /* its last value */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(group_holds(&f, &k, &a, NULL) && f.groups.count == 1);
    op = op_group_del(SELF, 11, &k2, &a, "", false); /* an empty value */
    CHECK(applies_ok(&f, &op, ch, 4) && f.n_changes == 1);
    CHECK(is_group_del(&ch[0], &k2, &a, false, "") && f.groups.count == 0);
    rg_fsm_close(&f);
}

/* GROUP_ADD of a value of len bytes of 'v'. */
static struct rg_op op_group_add_big(uint64_t ref, const struct bytes *key,
                                     const struct bytes *pid, size_t len)
{
    static uint8_t big[RG_META_MAX];
    memset(big, 'v', sizeof big);
    struct rg_op op = op_group_add(SELF, ref, key, pid, "");
    op.meta = big;
    op.meta_len = (uint32_t)len;
    return op;
}

/* A (key, pid) list may reach RG_GROUP_VALUES_MAX; past it GROUP_ADD
 * answers NO, without a payload, and changes nothing. */
static void test_group_full(void)
{
    struct rg_fsm f;
    struct reply rp[2];
    struct bytes k = make_name("full", 1), a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    const size_t per = 4 + RG_META_MAX;
    const uint64_t whole = RG_GROUP_VALUES_MAX / per;
    const size_t last = RG_GROUP_VALUES_MAX - whole * per - 4;
    int ok = 0;
    for (uint64_t i = 0; i < whole; i++) {
        struct rg_op op = op_group_add_big(1 + i, &k, &a, RG_META_MAX);
        ok += apply1(&f, &op) == 0 && f.n_changes == 1;
    }
    CHECK(ok == (int)whole);
    struct rg_op op = op_group_add_big(100, &k, &a, last + 1); /* a byte over */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 100, RG_RES_NO, NULL));
    op = op_group_add_big(101, &k, &a, last); /* exactly full */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 1);
    const struct rg_entry *e = rg_group_get(&f.groups, k.b, k.n, a.b, a.n);
    CHECK(e != NULL && e->meta_len == RG_GROUP_VALUES_MAX);

    op = op_group_add(SELF, 102, &k, &a, ""); /* even an empty value */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 102, RG_RES_NO, NULL));
    e = rg_group_get(&f.groups, k.b, k.n, a.b, a.n);
    CHECK(e != NULL && e->meta_len == RG_GROUP_VALUES_MAX && f.groups.count == 1);

    op = op_group_add_big(103, &k, &a, last); /* delete the last value ... */
    op.kind = RG_OP_GROUP_DEL;
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 1);
    op = op_group_add(SELF, 104, &k, &a, "fits"); /* ... and it fits again */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 1);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 104, RG_RES_OK, NULL));
    rg_fsm_close(&f);
}

/* PURGE_NODE removes the group entries of the node's pids as it removes
 * their names: a GROUP_DEL_PURGE (key, pid) per entry, after the names'
 * DEL_PURGEs (the member drops them from its mirror). */
/* A purge removes a node's names and entries in key order: two servers
 * whose tables hash differently (another SipHash key) record the same
 * changes, byte for byte (found by the nemesis' subscription rule: the
 * members reported a purge's removals in different orders). */
static void purge_order_load(struct rg_fsm *f, const struct bytes *names,
                             const struct bytes *pid)
{
    struct batch bt;
    batch_begin(&bt);
    for (int i = 0; i < 40; i++) {
        struct rg_op reg = op_register(OTHER, (uint64_t)(2 * i + 1), &names[i], pid, "", NULL);
        struct rg_op add = op_group_add(OTHER, (uint64_t)(2 * i + 2), &names[i], pid, "v");
        batch_add(&bt, &reg);
        batch_add(&bt, &add);
    }
    CHECK(batch_apply(&bt, f) == 0);
    rg_fsm_effects_reset(f);
    struct batch pb;
    batch_begin(&pb);
    struct rg_op purge = op_purge(OTHER, 100, "a@h", true, 0);
    batch_add(&pb, &purge);
    CHECK(batch_apply(&pb, f) == 0 && f->n_changes == 80);
    CHECK(f->table.count == 0 && f->groups.count == 0);
}

static void test_purge_order(void)
{
    struct rg_fsm f, g;
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, SELF, key_b) == 0);
    struct bytes a = make_pid("a@h", 1, 1);
    struct bytes names[40];
    for (int i = 0; i < 40; i++) {
        names[i] = make_name("n", (uint8_t)i);
    }
    purge_order_load(&f, names, &a);
    purge_order_load(&g, names, &a);
    CHECK(f.changes.len == g.changes.len &&
          memcmp(f.changes.data, g.changes.data, f.changes.len) == 0);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
}

static void test_group_purge(void)
{
    struct rg_fsm f;
    struct change ch[8];
    struct bytes k = make_name("p", 0), k1 = make_name("p", 1);
    struct bytes k2 = make_name("p", 2);
    struct bytes a1 = make_pid("a@h", 1, 1), a2 = make_pid("a@h", 2, 2);
    struct bytes b = make_pid("b@h", 3, 1), ahh = make_pid("a@hh", 4, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct batch bt;
    batch_begin(&bt);
    struct rg_op ops[7] = {op_register(OTHER, 1, &k, &a1, "", NULL),
                           op_group_add(OTHER, 2, &k1, &a1, "x"),
                           op_group_add(OTHER, 3, &k1, &a1, "y"),
                           op_group_add(OTHER, 4, &k2, &a1, "x"),
                           op_group_add(OTHER, 5, &k1, &a2, "x"),
                           op_group_add(OTHER, 6, &k1, &b, "x"),
                           op_group_add(OTHER, 7, &k1, &ahh, "x")};
    for (int i = 0; i < 7; i++) {
        batch_add(&bt, &ops[i]);
    }
    CHECK(batch_apply(&bt, &f) == 0 && f.groups.count == 5);

    struct rg_op op = op_purge(SELF, 50, "a@h", false, 1); /* a1 only */
    CHECK(applies_ok(&f, &op, ch, 8) && f.n_changes == 3);
    CHECK(is_purged(&ch[0], &k)); /* names first */
    bool p1 = false, p2 = false;
    for (int i = 1; i < 3; i++) {
        p1 = p1 || is_change(&ch[i], RG_CHANGE_GROUP_DEL_PURGE, &k1, &a1, NULL);
        p2 = p2 || is_change(&ch[i], RG_CHANGE_GROUP_DEL_PURGE, &k2, &a1, NULL);
    }
    CHECK(p1 && p2);
    static const char *const x[] = {"x", NULL};
    CHECK(group_holds(&f, &k1, &a1, NULL) && group_holds(&f, &k2, &a1, NULL));
    CHECK(group_holds(&f, &k1, &a2, x) && group_holds(&f, &k1, &b, x) &&
          group_holds(&f, &k1, &ahh, x));
    CHECK(f.groups.count == 3 && f.table.count == 0);

    op = op_purge(SELF, 51, "a@h", false, 7); /* no such creation */
    CHECK(applies_ok(&f, &op, ch, 8) && f.n_changes == 0);
    op = op_purge(SELF, 52, "a@h", true, 0); /* any creation: a2 */
    CHECK(applies_ok(&f, &op, ch, 8) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_GROUP_DEL_PURGE, &k1, &a2, NULL));
    CHECK(f.groups.count == 2); /* b@h and a@hh are other nodes */
    rg_fsm_close(&f);
}

/* ---- registry metadata -------------------------------------------------- */

/* META_PUT sets a key's value (a change only when it differs), with
 * if_absent only when the key has none; META_DEL removes it. Both always
 * answer OK. The names and groups are another matter. */
static void test_meta_ops(void)
{
    struct rg_fsm f;
    struct change ch[2];
    struct bytes k = make_name("meta", 1), k2 = make_name("meta", 2);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_meta_put(SELF, 1, &k, "v1", false);
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_PUT, &k, NULL, "v1"));
    CHECK(meta_holds(&f, &k, "v1") && f.meta.count == 1 && f.table.count == 0 &&
          f.groups.count == 0);
    op = op_meta_put(SELF, 2, &k, "v1", false); /* the same value */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 0);
    op = op_meta_put(SELF, 3, &k, "v2", false);
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_PUT, &k, NULL, "v2"));
    op = op_meta_put(SELF, 4, &k, "v3", true); /* if absent: it is not */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 0);
    CHECK(meta_holds(&f, &k, "v2"));
    op = op_meta_put(SELF, 5, &k2, "w", true); /* if absent: it is */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_PUT, &k2, NULL, "w"));
    CHECK(meta_holds(&f, &k2, "w") && f.meta.count == 2);

    op = op_key(RG_OP_META_DEL, SELF, 6, &k);
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_DEL, &k, NULL, NULL));
    CHECK(meta_holds(&f, &k, NULL) && f.meta.count == 1);
    op = op_key(RG_OP_META_DEL, SELF, 7, &k); /* gone already */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 0);
    op = op_meta_put(OTHER, 8, &k, "", false); /* an empty value */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(meta_holds(&f, &k, "") && f.meta.count == 2);
    op = op_key(RG_OP_META_DEL, OTHER, 9, &k2);
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1 && f.meta.count == 1);
    rg_fsm_close(&f);
}

static bool copy_skipped(struct rg_fsm *f, const struct rg_op *op);

static struct rg_op op_meta_cas(uint64_t ref, const struct bytes *key,
                                const char *expect, const char *value)
{
    struct rg_op op = op_meta_put(SELF, ref, key, value == NULL ? "" : value, false);
    op.kind = RG_OP_META_CAS;
    op.flag = false;
    op.cas_mode = (uint8_t)((expect != NULL ? RG_CAS_EXPECT : 0) |
                            (value != NULL ? RG_CAS_VALUE : 0));
    op.expect = (const uint8_t *)(expect == NULL ? "" : expect);
    op.expect_len = (uint32_t)(expect == NULL ? 0 : strlen(expect));
    return op;
}

/* META_CAS puts (or deletes) only when the key is as expected: absent, or
 * holding the expected bytes. A mismatch changes nothing and answers NO
 * with the value as it is, or NOT_FOUND when there is none. */
static void test_meta_cas(void)
{
    struct rg_fsm f;
    struct change ch[2];
    struct bytes k = make_name("cas", 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_meta_cas(1, &k, NULL, "v1"); /* create */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_PUT, &k, NULL, "v1"));
    struct reply rp[2];
    struct bytes v1 = {{'v', '1'}, 2};
    op = op_meta_cas(2, &k, NULL, "v9"); /* create again: it exists */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 2, RG_RES_NO, &v1));
    op = op_meta_cas(3, &k, "v0", "v2"); /* a stale expectation */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 3, RG_RES_NO, &v1));
    CHECK(meta_holds(&f, &k, "v1"));
    op = op_meta_cas(4, &k, "v1", "v2");
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_PUT, &k, NULL, "v2"));
    op = op_meta_cas(5, &k, "v2", NULL); /* delete */
    CHECK(applies_ok(&f, &op, ch, 2) && f.n_changes == 1);
    CHECK(is_change(&ch[0], RG_CHANGE_META_DEL, &k, NULL, NULL));
    CHECK(meta_holds(&f, &k, NULL));
    op = op_meta_cas(6, &k, "v2", "v3"); /* expects a value: there is none */
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0);
    CHECK(read_replies(&f, rp, 2) == 1 && is_reply(&rp[0], 6, RG_RES_NOT_FOUND, NULL));
    op = op_meta_cas(4, &k, "v1", "v2"); /* a re-sent copy of ref 4: skipped */
    CHECK(copy_skipped(&f, &op) && meta_holds(&f, &k, NULL));
    rg_fsm_close(&f);
}

/* ---- de-duplication of the new writes ----------------------------------- */

/* Applies a second copy of op (a re-sent op), expecting nothing at all. */
static bool copy_skipped(struct rg_fsm *f, const struct rg_op *op)
{
    return apply1(f, op) == 0 && f->n_replies == 0 && f->n_changes == 0;
}

/* Every new write kind is tracked: after the state has moved on, so that
 * applying it again would show, a second copy is skipped. */
static void test_dedup_new_kinds(void)
{
    struct rg_fsm f;
    struct bytes k = make_name("again", 1), a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    static const char *const v[] = {"v", NULL};

    struct rg_op add = op_group_add(SELF, 1, &k, &a, "v");
    CHECK(apply1(&f, &add) == 0 && copy_skipped(&f, &add));
    CHECK(group_holds(&f, &k, &a, v)); /* not v twice */
    struct rg_op del = op_group_del(SELF, 2, &k, &a, "v", false);
    struct rg_op add2 = op_group_add(SELF, 3, &k, &a, "v");
    CHECK(apply1(&f, &del) == 0 && apply1(&f, &add2) == 0);
    CHECK(copy_skipped(&f, &del) && group_holds(&f, &k, &a, v));

    struct rg_op put = op_meta_put(SELF, 4, &k, "one", false);
    struct rg_op put2 = op_meta_put(SELF, 5, &k, "two", false);
    CHECK(apply1(&f, &put) == 0 && apply1(&f, &put2) == 0);
    CHECK(copy_skipped(&f, &put) && meta_holds(&f, &k, "two"));
    struct rg_op mdel = op_key(RG_OP_META_DEL, SELF, 6, &k);
    struct rg_op put3 = op_meta_put(SELF, 7, &k, "three", false);
    CHECK(apply1(&f, &mdel) == 0 && apply1(&f, &put3) == 0);
    CHECK(copy_skipped(&f, &mdel) && meta_holds(&f, &k, "three"));

    struct rg_op reg_new = op_register_new(SELF, 8, &k, &a, "m", NULL);
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, SELF, 9, &k);
    CHECK(apply1(&f, &reg_new) == 0 && apply1(&f, &unreg) == 0);
    CHECK(copy_skipped(&f, &reg_new) && holds(&f, &k, NULL, ""));
    struct rg_op reg = op_register(SELF, 10, &k, &a, "m0", NULL);
    struct rg_op if_owner = op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 11, &k, &a, "m1");
    struct rg_op set = op_set_meta(SELF, 12, &k, "m2");
    CHECK(apply1(&f, &reg) == 0 && apply1(&f, &if_owner) == 0 &&
          apply1(&f, &set) == 0);
    CHECK(copy_skipped(&f, &if_owner) && holds(&f, &k, &a, "m2"));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 12);

    /* The same ref from another origin is another op. */
    struct rg_op theirs = op_group_add(OTHER, 1, &k, &a, "v");
    CHECK(apply1(&f, &theirs) == 0 && f.n_changes == 1);
    static const char *const vv[] = {"v", "v", NULL};
    CHECK(group_holds(&f, &k, &a, vv));
    rg_fsm_close(&f);
}

/* ---- snapshots of all three tables -------------------------------------- */

/* Group entries and metadata for populate's names: lists of several
 * values, a value twice, empty values, two pids under one name. Entries
 * are added in reverse order when `reverse` is set, each list in the same
 * order. Group entries: n + (n + 4) / 5; metadata keys: n. */
static void populate_tables(struct rg_fsm *f, int n, bool reverse)
{
    struct batch bt;
    batch_begin(&bt);
    for (int j = 0; j < n; j++) {
        int i = reverse ? n - 1 - j : j;
        uint64_t ref = 1000 + 4 * (uint64_t)i;
        struct bytes k = make_name(i % 2 ? "grp" : "g", (uint8_t)i);
        struct bytes p = make_pid(i % 3 ? "a@h" : "c@h", (uint32_t)i, 1);
        struct bytes q = make_pid("d@h", (uint32_t)i, 2);
        struct rg_op ops[4] = {op_group_add(OTHER, ref, &k, &p, "v"),
                               op_group_add(OTHER, ref + 1, &k, &p, i % 2 ? "w" : ""),
                               op_group_add(OTHER, ref + 2, &k, &p, "v"),
                               op_group_add(OTHER, ref + 3, &k, &q, "q")};
        for (int o = 0; o < (i % 5 == 0 ? 4 : 3); o++) {
            batch_add(&bt, &ops[o]);
        }
        struct bytes mk = make_name("meta", (uint8_t)i);
        struct rg_op put = op_meta_put(OTHER, 3000 + (uint64_t)i, &mk,
                                       i % 4 ? "value" : "", false);
        batch_add(&bt, &put);
    }
    CHECK(batch_apply(&bt, f) == 0);
    rg_fsm_effects_reset(f);
}

/* The same state gives the same bytes whatever order it was built in and
 * whatever the hash key; a restored snapshot snapshots to identical bytes
 * and its tables live on. */
static void test_snapshot_all_tables(void)
{
    struct rg_fsm f, g, h;
    uint8_t *s = NULL;
    size_t n = 0;
    long counts[3] = {-1, -1, -1};
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    CHECK(rg_fsm_init(&h, 3, key_b) == 0);
    populate(&f, 40);
    populate_tables(&f, 40, false);
    populate_tables(&h, 40, true);
    populate(&h, 40);
    CHECK(f.table.count == 40 && f.groups.count == 48 && f.meta.count == 40);

    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0 && snapshot_tables(s, n, counts));
    CHECK(counts[T_NAMES] == 40 && counts[T_GROUPS] == 48 && counts[T_META] == 40);
    CHECK(snapshot_equals(&h, s, n));
    CHECK(rg_fsm_restore(&g, s, n) == 0 && g.restored);
    CHECK(g.table.count == 40 && g.groups.count == 48 && g.meta.count == 40);
    CHECK(snapshot_equals(&g, s, n) && snapshot_equals(&f, s, n));
    struct bytes k = make_name("grp", 5), p = make_pid("a@h", 5, 1);
    struct bytes mk = make_name("meta", 4);
    static const char *const vwv[] = {"v", "w", "v", NULL};
    CHECK(group_holds(&g, &k, &p, vwv) && meta_holds(&g, &mk, ""));

    /* The restored tables are live: the same ops keep f and g equal. */
    struct rg_op ops[3] = {op_group_del(SELF, 1, &k, &p, "v", false),
                           op_group_add(SELF, 2, &k, &p, "z"),
                           op_key(RG_OP_META_DEL, SELF, 3, &mk)};
    for (int i = 0; i < 3; i++) {
        CHECK(apply1(&f, &ops[i]) == 0 && apply1(&g, &ops[i]) == 0);
    }
    free(s);
    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0 && snapshot_equals(&g, s, n));
    static const char *const wz[] = {"w", "z", NULL};
    CHECK(group_holds(&g, &k, &p, wz) && g.meta.count == 39);

    /* Every truncation of a small one is refused, g unchanged. */
    g.restored = false;
    free(s);
    rg_fsm_close(&f);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    populate(&f, 4);
    populate_tables(&f, 6, false);
    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0);
    int truncations = 0;
    for (size_t cut = 0; cut < n; cut++) {
        truncations += refused_unchanged(&g, s, cut);
    }
    CHECK(truncations == (int)n);

    static const uint8_t empty[40] = {0x52, 0x47, 0x53, 0x34};
    CHECK(rg_fsm_restore(&g, empty, sizeof empty) == 0);
    CHECK(g.table.count == 0 && g.groups.count == 0 && g.meta.count == 0);
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
    rg_fsm_close(&h);
}

/* A snapshot row: three blobs. */
struct row {
    const uint8_t *a, *b, *c;
    uint32_t an, bn, cn;
};

static struct row row_of(const struct bytes *a, const struct bytes *b,
                         const uint8_t *c, uint32_t cn)
{
    struct row r = {a->b, b == NULL ? NULL : b->b, c,
                    a->n, b == NULL ? 0 : b->n, cn};
    return r;
}

static void put_rows(struct rg_wbuf *w, const struct row *rows, int n,
                     uint64_t count)
{
    rg_wbuf_u64(w, count);
    for (int i = 0; i < n; i++) {
        rg_wbuf_blob(w, rows[i].a, rows[i].an);
        rg_wbuf_blob(w, rows[i].b, rows[i].bn);
        rg_wbuf_blob(w, rows[i].c, rows[i].cn);
    }
}

/* A snapshot of one name (version 1 of 1), the given group and metadata
 * rows under the given counts, and an empty de-duplication section. */
static void build_tables(struct rg_wbuf *w, const struct row *groups, int ng,
                         uint64_t ng_count, const struct row *meta, int nm,
                         uint64_t nm_count)
{
    struct bytes k = make_name("n", 1), p = make_pid("n@h", 1, 1);
    struct row name = row_of(&k, &p, (const uint8_t *)"m", 1);
    rg_wbuf_init(w);
    rg_wbuf_u32(w, MAGIC);
    rg_wbuf_u64(w, 1);
    put_rows(w, &name, 1, 1);
    rg_wbuf_u64(w, 1);
    put_rows(w, groups, ng, ng_count);
    put_rows(w, meta, nm, nm_count);
    rg_wbuf_u32(w, 0);
}

/* Restore refuses the group rows (and their counts) unchanged; true if
 * it did. */
static bool groups_refused(struct rg_fsm *g, const struct row *rows, int n,
                           uint64_t count)
{
    struct rg_wbuf w;
    build_tables(&w, rows, n, count, NULL, 0, 0);
    bool ok = refused_unchanged(g, w.data, w.len);
    rg_wbuf_free(&w);
    return ok;
}

static bool meta_refused(struct rg_fsm *g, const struct row *rows, int n,
                         uint64_t count)
{
    struct rg_wbuf w;
    build_tables(&w, NULL, 0, 0, rows, n, count);
    bool ok = refused_unchanged(g, w.data, w.len);
    rg_wbuf_free(&w);
    return ok;
}

/* Group rows and value lists a command could not have produced: refused,
 * with every table and the set left as they were. */
static void test_snapshot_bad_groups(void)
{
    struct rg_fsm g;
    struct bytes k = make_name("g", 1), k2 = make_name("g", 2);
    struct bytes p = make_pid("a@h", 1, 1), p2 = make_pid("a@h", 2, 1);
    struct bytes bad = make_name("g", 1), empty = {{0}, 0};
    bad.b[bad.n - 2] = RG_ETF_INTEGER; /* non-canonical */
    static const uint8_t list[] = {0, 0, 0, 1, 'x', 0, 0, 0, 0};
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&g, 3);
    populate_tables(&g, 3, false);

    struct row good = row_of(&k, &p, list, sizeof list);
    struct row r;
    r = row_of(&bad, &p, list, sizeof list);
    CHECK(groups_refused(&g, &r, 1, 1)); /* a non-canonical name */
    r = row_of(&empty, &p, list, sizeof list);
    CHECK(groups_refused(&g, &r, 1, 1)); /* an empty name */
    r = row_of(&k, &k2, list, sizeof list);
    CHECK(groups_refused(&g, &r, 1, 1)); /* a name where the pid belongs */
    r = row_of(&k, &empty, list, sizeof list);
    CHECK(groups_refused(&g, &r, 1, 1)); /* no pid */
    r = row_of(&k, &p, list, 0);
    CHECK(groups_refused(&g, &r, 1, 1)); /* no value at all */
    for (uint32_t cut = 1; cut < sizeof list; cut++) {
        r = row_of(&k, &p, list, cut);
        /* a list cut inside a length or a value (at 5 it is whole) */
        CHECK(cut == 5 || groups_refused(&g, &r, 1, 1));
    }
    struct row twice[2] = {good, good};
    CHECK(groups_refused(&g, twice, 2, 2)); /* the same (name, pid) twice */
    CHECK(groups_refused(&g, &good, 1, 2)); /* count one too high */
    CHECK(groups_refused(&g, twice, 2, 1)); /* one too low: a row left over */
    CHECK(groups_refused(&g, &good, 1, UINT64_MAX)); /* hostile count */

    /* A value over RG_META_MAX inside the list, and a list over the cap. */
    struct rg_wbuf big;
    rg_wbuf_init(&big);
    rg_wbuf_u32(&big, RG_META_MAX + 1);
    for (uint32_t i = 0; i <= RG_META_MAX; i++) {
        rg_wbuf_u8(&big, 'x');
    }
    r = row_of(&k, &p, big.data, (uint32_t)big.len);
    CHECK(groups_refused(&g, &r, 1, 1));
    rg_wbuf_reset(&big);
    while (big.len <= RG_GROUP_VALUES_MAX) {
        rg_wbuf_u32(&big, 0);
    }
    r = row_of(&k, &p, big.data, (uint32_t)big.len);
    CHECK(groups_refused(&g, &r, 1, 1));
    CHECK(g.groups.count == 4 && g.table.count == 3 && g.meta.count == 3);

    /* Accepted: exactly at the cap, two pids under one name, rows out of
     * order (they come out sorted). */
    struct rg_wbuf w;
    struct row rows[3] = {row_of(&k2, &p, list, sizeof list),
                          row_of(&k, &p2, big.data, RG_GROUP_VALUES_MAX),
                          good};
    build_tables(&w, rows, 3, 3, NULL, 0, 0);
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.groups.count == 3);
    uint8_t *s = NULL;
    size_t n = 0;
    long counts[3] = {-1, -1, -1};
    CHECK(rg_fsm_snapshot(&g, &s, &n) == 0 && snapshot_tables(s, n, counts) &&
          counts[T_GROUPS] == 3);
    const struct rg_entry *e = rg_group_get(&g.groups, k.b, k.n, p2.b, p2.n);
    CHECK(e != NULL && e->meta_len == RG_GROUP_VALUES_MAX);
    free(s);
    rg_wbuf_free(&w);
    rg_wbuf_free(&big);
    rg_fsm_close(&g);
}

/* Metadata rows: a canonical key, an empty pid, a value within
 * RG_META_MAX, each key once. */
static void test_snapshot_bad_meta(void)
{
    struct rg_fsm g;
    struct bytes k = make_name("m", 1), k2 = make_name("m", 2);
    struct bytes p = make_pid("a@h", 1, 1), bad = make_name("m", 1);
    bad.b[bad.n - 2] = RG_ETF_INTEGER;
    static uint8_t big[RG_META_MAX + 1];
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&g, 3);
    populate_tables(&g, 3, false);

    struct row good = row_of(&k, NULL, (const uint8_t *)"v", 1);
    struct row r = row_of(&bad, NULL, (const uint8_t *)"v", 1);
    CHECK(meta_refused(&g, &r, 1, 1)); /* a non-canonical key */
    r = row_of(&k, &p, (const uint8_t *)"v", 1);
    CHECK(meta_refused(&g, &r, 1, 1)); /* a pid */
    r = row_of(&k, NULL, big, RG_META_MAX + 1);
    CHECK(meta_refused(&g, &r, 1, 1)); /* a value over the limit */
    struct row twice[2] = {good, good};
    CHECK(meta_refused(&g, twice, 2, 2));
    CHECK(meta_refused(&g, &good, 1, 2));
    CHECK(meta_refused(&g, twice, 2, 1));
    CHECK(g.meta.count == 3 && g.groups.count == 4);

    struct rg_wbuf w;
    struct row rows[2] = {row_of(&k2, NULL, big, RG_META_MAX), good};
    build_tables(&w, NULL, 0, 0, rows, 2, 2); /* at the limit, unsorted */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.meta.count == 2 &&
          g.groups.count == 0 && g.table.count == 1);
    CHECK(meta_holds(&g, &k, "v"));
    rg_wbuf_free(&w);
    rg_fsm_close(&g);
}

/* ---- versions, compare-and-set and bulk ops ----------------------------- */

/* The version of key's entry, 0 when there is none. */
static uint64_t version_of(const struct rg_fsm *f, const struct bytes *key)
{
    const struct rg_entry *e = rg_table_get(&f->table, key->b, key->n);
    return e == NULL ? 0 : e->version;
}

static struct rg_op op_cas(uint64_t origin, uint64_t ref,
                           const struct bytes *key, const struct bytes *pid,
                           uint64_t version, const char *meta)
{
    struct rg_op op = op_pid_meta(RG_OP_SET_META_IF_VERSION, origin, ref, key,
                                  pid, meta);
    op.version = version;
    return op;
}

/* The items of a REGISTER_MANY or UNREGISTER_MANY under construction. */
struct items {
    struct rg_wbuf w;
    uint32_t n;
};

static void items_init(struct items *it)
{
    rg_wbuf_init(&it->w);
    it->n = 0;
}

static void item_register(struct items *it, const struct bytes *key,
                          const struct bytes *pid, const char *meta,
                          const struct bytes *replace)
{
    rg_wbuf_blob(&it->w, key->b, key->n);
    rg_wbuf_blob(&it->w, pid->b, pid->n);
    rg_wbuf_blob(&it->w, meta, strlen(meta));
    rg_wbuf_blob(&it->w, replace == NULL ? NULL : replace->b,
                 replace == NULL ? 0 : replace->n);
    it->n++;
}

static void item_key(struct items *it, const struct bytes *key)
{
    rg_wbuf_blob(&it->w, key->b, key->n);
    it->n++;
}

/* The op points into it, which must outlive its encoding. */
static struct rg_op op_many(uint8_t kind, uint64_t origin, uint64_t ref,
                            const struct items *it)
{
    struct rg_op op = op_base(kind, origin, ref);
    op.count = it->n;
    op.items = it->w.data;
    op.items_len = (uint32_t)it->w.len;
    return op;
}

/* An entry as READ_ENTRY and a refused SET_META_IF_VERSION give it:
 * [blob pid][u64 version][meta bytes], restated from cmd.h. */
static struct bytes entry_bytes(const struct bytes *pid, uint64_t version,
                                const char *meta)
{
    struct rg_wbuf w;
    struct bytes out;
    rg_wbuf_init(&w);
    rg_wbuf_blob(&w, pid->b, pid->n);
    rg_wbuf_u64(&w, version);
    rg_wbuf_put(&w, meta, strlen(meta));
    if (w.oom || w.len > sizeof out.b) {
        abort();
    }
    memcpy(out.b, w.data, w.len);
    out.n = (uint32_t)w.len;
    rg_wbuf_free(&w);
    return out;
}

/* One REGISTER_MANY answer: [u8 result][blob holder] (NULL: empty). */
static void answer(struct rg_wbuf *w, uint8_t result, const struct bytes *holder)
{
    rg_wbuf_u8(w, result);
    rg_wbuf_blob(w, holder == NULL ? NULL : holder->b,
                 holder == NULL ? 0 : holder->n);
}

static bool is_reply_w(const struct reply *r, uint64_t ref, uint8_t result,
                       const struct rg_wbuf *payload)
{
    return r->ref == ref && r->result == result &&
           bytes_eq(r->payload, r->len, payload->data, payload->len);
}

static int count_puts(const struct rg_fsm *f)
{
    static struct change ch[4096];
    int n = read_changes(f, ch, 4096), puts = 0;
    for (int i = 0; i < n; i++) {
        puts += ch[i].kind == RG_CHANGE_PUT;
    }
    return n < 0 ? -1 : puts;
}

/* True if no two names of f share a version and none is 0 or above
 * version_seq. */
static bool versions_distinct(const struct rg_fsm *f)
{
    size_t n;
    const struct rg_entry **v = rg_table_sorted(&f->table, &n);
    bool ok = v != NULL || n == 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = v[i]->version != 0 && v[i]->version <= f->version_seq;
        for (size_t j = 0; ok && j < i; j++) {
            ok = v[i]->version != v[j]->version;
        }
    }
    free(v);
    return ok;
}

/* Every put of a name, whichever op makes it, takes the FSM's next write
 * count as the name's version, and nothing else moves the counter: so a
 * version is never given twice, not even to a name that went and was
 * registered again. */
static void test_versions(void)
{
    struct rg_fsm f;
    struct bytes k1 = make_name("ver", 1), k2 = make_name("ver", 2);
    struct bytes k3 = make_name("ver", 3);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    struct items many, gone;
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(f.version_seq == 0);
    items_init(&many);
    item_register(&many, &k1, &b, "", NULL);  /* free since the purge */
    item_register(&many, &k1, &b, "n", NULL); /* the same pid, new meta */
    item_register(&many, &k2, &a, "", NULL);  /* b's: NO */
    items_init(&gone);
    item_key(&gone, &k1);
    item_key(&gone, &k3);
    const struct {
        struct rg_op op;
        const struct bytes *key; /* the name the op may put */
        uint64_t puts;
    } steps[] = {
        {op_register(SELF, 1, &k1, &a, "m1", NULL), &k1, 1},
        {op_register(SELF, 2, &k2, &b, "", NULL), &k2, 1},
        {op_register(SELF, 3, &k1, &a, "", NULL), &k1, 0},   /* no new meta */
        {op_register(SELF, 4, &k1, &a, "m1", NULL), &k1, 0}, /* the same meta */
        {op_register(SELF, 5, &k1, &a, "m2", NULL), &k1, 1},
        {op_register(SELF, 6, &k1, &b, "", NULL), &k1, 0},   /* NO */
        {op_set_meta(SELF, 7, &k2, "x"), &k2, 1},
        {op_set_meta(SELF, 8, &k2, "x"), &k2, 1}, /* the same meta: a put */
        {op_set_meta(SELF, 9, &k3, "x"), &k3, 0}, /* NOT_FOUND */
        {op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 10, &k2, &b, "y"), &k2, 1},
        {op_pid_meta(RG_OP_SET_META_IF_OWNER, SELF, 11, &k2, &a, "z"), &k2, 0},
        {op_register(SELF, 12, &k1, &b, "mb", &a), &k1, 1}, /* replaces a */
        {op_register_new(SELF, 13, &k3, &a, "", NULL), &k3, 1},
        {op_register_new(SELF, 14, &k3, &a, "m", NULL), &k3, 0},
        {op_group_add(SELF, 15, &k1, &a, "v"), &k1, 0}, /* other tables */
        {op_meta_put(SELF, 16, &k1, "v", false), &k1, 0},
        {op_group_del(SELF, 17, &k1, &a, "v", true), &k1, 0},
        {op_key(RG_OP_META_DEL, SELF, 18, &k1), &k1, 0},
        {op_key(RG_OP_READ_ENTRY, SELF, 19, &k1), &k1, 0},
        {op_key(RG_OP_READ, SELF, 20, &k1), &k1, 0},
        {op_unreg_owner(SELF, 21, &k1, &a), &k1, 0}, /* not the owner */
        {op_key(RG_OP_UNREGISTER, SELF, 22, &k1), NULL, 0},
        {op_register(SELF, 23, &k1, &a, "m1", NULL), &k1, 1}, /* back */
        {op_cas(SELF, 24, &k2, &b, 0, "c"), &k2, 0}, /* a wrong version */
        {op_purge(SELF, 25, "a@h", true, 0), NULL, 0}, /* k1 and k3 go */
        {op_register(SELF, 26, &k3, &a, "", NULL), &k3, 1},
        {op_many(RG_OP_REGISTER_MANY, SELF, 27, &many), &k1, 2},
        {op_many(RG_OP_UNREGISTER_MANY, SELF, 28, &gone), NULL, 0},
        {op_settle(SELF, 10), NULL, 0},
        {op_register(OTHER, 29, &k3, &b, "o", NULL), &k3, 1}, /* not ours */
        {op_register(SELF, 0, &k1, &b, "", NULL), &k1, 1},     /* ref 0 */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        uint64_t before = f.version_seq;
        uint64_t kv = steps[i].key == NULL ? 0 : version_of(&f, steps[i].key);
        bool ok = apply1(&f, &steps[i].op) == 0 &&
                  f.version_seq == before + steps[i].puts &&
                  count_puts(&f) == (int)steps[i].puts;
        if (steps[i].key != NULL) {
            ok = ok && version_of(&f, steps[i].key) ==
                           (steps[i].puts > 0 ? f.version_seq : kv);
        }
        ok = ok && versions_distinct(&f);
        bad += !ok;
        if (!ok) {
            fprintf(stderr, "  test_versions: step %zu\n", i);
        }
    }
    CHECK(bad == 0);
    CHECK(f.version_seq == 14 && f.table.count == 3);
    CHECK(version_of(&f, &k1) == 14 && version_of(&f, &k2) == 6 &&
          version_of(&f, &k3) == 13);
    /* A compare-and-set at the version read: the next version. */
    struct rg_op cas = op_cas(SELF, 30, &k2, &b, version_of(&f, &k2), "c");
    CHECK(apply1(&f, &cas) == 0 && f.version_seq == 15 &&
          version_of(&f, &k2) == 15 && holds(&f, &k2, &b, "c"));
    CHECK(versions_distinct(&f));
    rg_wbuf_free(&many.w);
    rg_wbuf_free(&gone.w);
    rg_fsm_close(&f);
}

/* SET_META_IF_VERSION sets the metadata only when the op's pid holds the
 * name at the op's version: then OK, a put and a new version. A free name
 * is NOT_FOUND; any other pid or version is NO with the entry as it is
 * ([blob pid][u64 version][meta]), and nothing changes. */
static void test_set_meta_if_version(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[4];
    struct bytes k = make_name("cas", 1), k2 = make_name("cas", 2);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    struct bytes a_next = make_pid("a@h", 1, 2); /* a's id, next incarnation */
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    for (uint64_t v = 0; v < 2; v++) { /* free, at any version */
        struct rg_op op = op_cas(SELF, 1 + v, &k, &a, v, "x");
        CHECK(apply1(&f, &op) == 0);
        CHECK(read_replies(&f, rp, 4) == 1 &&
              is_reply(&rp[0], 1 + v, RG_RES_NOT_FOUND, NULL));
        CHECK(f.n_changes == 0 && f.table.count == 0 && f.version_seq == 0);
    }

    struct rg_op reg = op_register(OTHER, 1, &k2, &b, "", NULL); /* version 1 */
    struct rg_op reg2 = op_register(OTHER, 2, &k, &a, "m", NULL); /* 2 */
    CHECK(apply1(&f, &reg) == 0 && apply1(&f, &reg2) == 0);
    CHECK(version_of(&f, &k) == 2 && version_of(&f, &k2) == 1);

    /* Another name's version, one below, one above, 0, the largest; b and
     * a's next incarnation at the right version. */
    const struct {
        const struct bytes *pid;
        uint64_t version;
    } wrong[] = {{&a, 1}, {&a, 3}, {&a, 0}, {&a, UINT64_MAX}, {&b, 2},
                 {&a_next, 2}};
    struct bytes now = entry_bytes(&a, 2, "m");
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        struct rg_op op = op_cas(SELF, 10 + i, &k, wrong[i].pid,
                                 wrong[i].version, "x");
        CHECK(apply1(&f, &op) == 0);
        CHECK(read_replies(&f, rp, 4) == 1 &&
              is_reply(&rp[0], 10 + i, RG_RES_NO, &now));
        CHECK(f.n_changes == 0 && holds(&f, &k, &a, "m") &&
              version_of(&f, &k) == 2 && f.version_seq == 2);
    }

    struct rg_op op = op_cas(SELF, 20, &k, &a, 2, "x"); /* right: OK */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 20, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "x"));
    CHECK(holds(&f, &k, &a, "x") && version_of(&f, &k) == 3 && f.version_seq == 3);

    op = op_cas(SELF, 21, &k, &a, 2, "y"); /* the version it just had: stale */
    now = entry_bytes(&a, 3, "x");
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 21, RG_RES_NO, &now));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "x") && f.version_seq == 3);

    op = op_cas(SELF, 22, &k, &a, 3, "x"); /* the same meta: a put all the same */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 22, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 4) == 1 && is_put(&ch[0], &k, &a, "x"));
    CHECK(version_of(&f, &k) == 4);

    op = op_cas(SELF, 23, &k, &a, 4, ""); /* clearing the metadata */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 23, RG_RES_OK, NULL));
    CHECK(holds(&f, &k, &a, "") && version_of(&f, &k) == 5);
    op = op_cas(SELF, 24, &k, &b, 5, "z"); /* NO: the entry ends at its version */
    now = entry_bytes(&a, 5, "");
    CHECK(now.n == 4 + a.n + 8);
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 24, RG_RES_NO, &now));

    op = op_cas(OTHER, 25, &k, &a, 5, "o"); /* applied, answered elsewhere */
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0 && f.n_changes == 1);
    CHECK(holds(&f, &k, &a, "o") && version_of(&f, &k) == 6);

    /* The name goes and comes back, same pid, same meta: the version read
     * before it went does not match the new entry (no ABA). */
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, OTHER, 3, &k);
    struct rg_op back = op_register(OTHER, 4, &k, &a, "o", NULL);
    CHECK(apply1(&f, &unreg) == 0 && apply1(&f, &back) == 0);
    CHECK(version_of(&f, &k) == 7);
    op = op_cas(SELF, 26, &k, &a, 6, "late");
    now = entry_bytes(&a, 7, "o");
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 26, RG_RES_NO, &now));
    CHECK(f.n_changes == 0 && holds(&f, &k, &a, "o"));
    CHECK(holds(&f, &k2, &b, "") && version_of(&f, &k2) == 1 && f.table.count == 2);

    static uint8_t big[RG_META_MAX];
    memset(big, 'x', sizeof big);
    op = op_cas(SELF, 27, &k, &a, 7, ""); /* metadata at the limit */
    op.meta = big;
    op.meta_len = RG_META_MAX;
    CHECK(apply1(&f, &op) == 0 && read_replies(&f, rp, 4) == 1 &&
          is_reply(&rp[0], 27, RG_RES_OK, NULL));
    op = op_cas(SELF, 28, &k, &b, 8, ""); /* and a NO carries all of it */
    CHECK(apply1(&f, &op) == 0 && read_replies(&f, rp, 4) == 1 &&
          rp[0].result == RG_RES_NO && rp[0].len == 4 + a.n + 8 + RG_META_MAX &&
          memcmp(rp[0].payload + 4 + a.n + 8, big, RG_META_MAX) == 0);
    rg_fsm_close(&f);
}

/* READ_ENTRY answers OK with [blob pid][u64 version][meta] of the name, or
 * an empty payload when it is free; it changes nothing. */
static void test_read_entry(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct bytes k = make_name("re", 1), a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op op = op_key(RG_OP_READ_ENTRY, SELF, 1, &k);
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 1, RG_RES_OK, NULL));
    CHECK(f.n_changes == 0);

    struct rg_op reg = op_register(OTHER, 1, &k, &a, "meta", NULL);
    CHECK(apply1(&f, &reg) == 0);
    op = op_key(RG_OP_READ_ENTRY, SELF, 2, &k);
    struct bytes e = entry_bytes(&a, 1, "meta");
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 2, RG_RES_OK, &e));
    CHECK(f.n_changes == 0 && f.version_seq == 1 && holds(&f, &k, &a, "meta"));

    struct rg_op clear = op_set_meta(OTHER, 2, &k, "");
    CHECK(apply1(&f, &clear) == 0);
    op = op_key(RG_OP_READ_ENTRY, SELF, 3, &k);
    e = entry_bytes(&a, 2, "");
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 3, RG_RES_OK, &e));

    op = op_key(RG_OP_READ, SELF, 4, &k); /* READ still gives the pid alone */
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 4, RG_RES_OK, &a));
    op = op_key(RG_OP_READ_ENTRY, OTHER, 5, &k); /* not ours to answer */
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0 && f.n_changes == 0);
    op = op_key(RG_OP_READ_ENTRY, SELF, 0, &k); /* ref 0: nobody waits */
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0 && f.n_changes == 0);

    /* In one entry, each read sees the ops before it. */
    struct batch bt;
    struct rg_op ops[4] = {op_key(RG_OP_READ_ENTRY, SELF, 6, &k),
                           op_set_meta(SELF, 7, &k, "n"),
                           op_key(RG_OP_READ_ENTRY, SELF, 8, &k),
                           op_key(RG_OP_UNREGISTER, SELF, 9, &k)};
    rg_fsm_effects_reset(&f);
    batch_begin(&bt);
    for (int i = 0; i < 4; i++) {
        batch_add(&bt, &ops[i]);
    }
    batch_add(&bt, &ops[0]);
    CHECK(batch_apply(&bt, &f) == 0);
    struct bytes e2 = entry_bytes(&a, 2, ""), e3 = entry_bytes(&a, 3, "n");
    struct reply rp5[6];
    CHECK(read_replies(&f, rp5, 6) == 5 && is_reply(&rp5[0], 6, RG_RES_OK, &e2) &&
          is_reply(&rp5[2], 8, RG_RES_OK, &e3) &&
          is_reply(&rp5[4], 6, RG_RES_OK, NULL)); /* read again: answered */
    CHECK(f.table.count == 0 && f.n_changes == 2);
    rg_fsm_close(&f);
}

/* REGISTER_MANY handles each name as REGISTER would, in order (a name
 * given twice sees the first), and answers OK with [u8 result][blob
 * holder] per name; its changes are the singles' PUTs, in order, each
 * with the next version. */
static void test_register_many(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[16];
    struct bytes k[7];
    for (uint8_t i = 1; i <= 6; i++) {
        k[i] = make_name("many", i);
    }
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    struct bytes c = make_pid("c@h", 3, 1); /* dead, says the member */
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct rg_op setup[3] = {op_register(OTHER, 1, &k[1], &b, "", NULL),
                             op_register(OTHER, 2, &k[2], &a, "m", NULL),
                             op_register(OTHER, 3, &k[3], &c, "", NULL)};
    for (int i = 0; i < 3; i++) {
        CHECK(apply1(&f, &setup[i]) == 0);
    }
    CHECK(f.version_seq == 3);

    struct items it;
    struct rg_wbuf want;
    items_init(&it);
    rg_wbuf_init(&want);
    item_register(&it, &k[4], &a, "m4", NULL); /* free */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[2], &a, "", NULL); /* its own, no meta: nothing */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[2], &a, "m", NULL); /* its own, same meta: nothing */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[1], &a, "x", NULL); /* b's */
    answer(&want, RG_RES_NO, &b);
    item_register(&it, &k[1], &a, "x", &c); /* b's; c is not the holder */
    answer(&want, RG_RES_NO, &b);
    item_register(&it, &k[3], &a, "m3", &c); /* c's, replaced */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[5], &a, "", NULL); /* free ... */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[5], &b, "", NULL); /* ... and a's by now */
    answer(&want, RG_RES_NO, &a);
    item_register(&it, &k[2], &a, "m2", NULL); /* its own, new meta */
    answer(&want, RG_RES_OK, NULL);
    item_register(&it, &k[6], &b, "", &a); /* free: replace is moot */
    answer(&want, RG_RES_OK, NULL);
    struct rg_op op = op_many(RG_OP_REGISTER_MANY, SELF, 10, &it);
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply_w(&rp[0], 10, RG_RES_OK, &want));
    CHECK(read_changes(&f, ch, 16) == 5);
    CHECK(is_put(&ch[0], &k[4], &a, "m4") && is_put(&ch[1], &k[3], &a, "m3") &&
          is_put(&ch[2], &k[5], &a, "") && is_put(&ch[3], &k[2], &a, "m2") &&
          is_put(&ch[4], &k[6], &b, ""));
    CHECK(f.version_seq == 8 && version_of(&f, &k[4]) == 4 &&
          version_of(&f, &k[3]) == 5 && version_of(&f, &k[5]) == 6 &&
          version_of(&f, &k[2]) == 7 && version_of(&f, &k[6]) == 8 &&
          version_of(&f, &k[1]) == 1);
    CHECK(holds(&f, &k[1], &b, "") && holds(&f, &k[2], &a, "m2") &&
          holds(&f, &k[3], &a, "m3") && holds(&f, &k[4], &a, "m4") &&
          holds(&f, &k[5], &a, "") && holds(&f, &k[6], &b, "") &&
          f.table.count == 6);

    /* Another origin's: applied the same way, answered by its daemon. */
    rg_wbuf_reset(&it.w);
    it.n = 0;
    item_register(&it, &k[1], &c, "", &b);
    item_register(&it, &k[4], &b, "", NULL);
    op = op_many(RG_OP_REGISTER_MANY, OTHER, 11, &it);
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0);
    CHECK(read_changes(&f, ch, 16) == 1 && is_put(&ch[0], &k[1], &c, ""));
    CHECK(version_of(&f, &k[1]) == 9 && holds(&f, &k[4], &a, "m4"));

    /* One name: the answer of REGISTER, inside the list. */
    rg_wbuf_reset(&it.w);
    rg_wbuf_reset(&want);
    it.n = 0;
    item_register(&it, &k[1], &c, "", NULL);
    answer(&want, RG_RES_OK, NULL);
    op = op_many(RG_OP_REGISTER_MANY, SELF, 12, &it);
    CHECK(apply1(&f, &op) == 0 && f.n_changes == 0 && want.len == 5);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply_w(&rp[0], 12, RG_RES_OK, &want));
    rg_wbuf_free(&it.w);
    rg_wbuf_free(&want);
    rg_fsm_close(&f);
}

/* The name {Tag, I, J}: many distinct names. */
static struct bytes make_name3(const char *tag, uint8_t i, uint8_t j)
{
    struct bytes out = make_name(tag, i);
    out.b[1] = 3;
    out.b[out.n++] = RG_ETF_SMALL_INTEGER;
    out.b[out.n++] = j;
    return out;
}

/* UNREGISTER_MANY removes each name whoever holds it (a DEL change per
 * name that was there, in order; a name given twice goes once) and answers
 * OK with nothing; the groups and metadata tables are not its business.
 * Both bulk ops carry thousands of names in one op. */
static void test_unregister_many(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct change ch[8];
    struct bytes k1 = make_name("um", 1), k2 = make_name("um", 2);
    struct bytes k3 = make_name("um", 3);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    struct rg_op setup[4] = {op_register(OTHER, 1, &k1, &a, "", NULL),
                             op_register(OTHER, 2, &k2, &b, "m", NULL),
                             op_group_add(OTHER, 3, &k1, &a, "v"),
                             op_meta_put(OTHER, 4, &k1, "v", false)};
    for (int i = 0; i < 4; i++) {
        CHECK(apply1(&f, &setup[i]) == 0);
    }
    struct items it;
    items_init(&it);
    item_key(&it, &k1);
    item_key(&it, &k3); /* free */
    item_key(&it, &k2);
    item_key(&it, &k1); /* gone already */
    struct rg_op op = op_many(RG_OP_UNREGISTER_MANY, SELF, 10, &it);
    CHECK(apply1(&f, &op) == 0);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 10, RG_RES_OK, NULL));
    CHECK(read_changes(&f, ch, 8) == 2 && is_del(&ch[0], &k1) && is_del(&ch[1], &k2));
    CHECK(f.table.count == 0 && f.groups.count == 1 && f.meta.count == 1);
    CHECK(f.version_seq == 2);
    op = op_many(RG_OP_UNREGISTER_MANY, OTHER, 11, &it); /* nothing left */
    CHECK(apply1(&f, &op) == 0 && f.n_replies == 0 && f.n_changes == 0);

    /* 2000 names registered, then removed, one op each. */
    struct items reg, unreg;
    struct rg_wbuf want;
    items_init(&reg);
    items_init(&unreg);
    rg_wbuf_init(&want);
    for (int i = 0; i < 2000; i++) {
        struct bytes k = make_name3("bulk", (uint8_t)(i / 256), (uint8_t)i);
        item_register(&reg, &k, i % 2 ? &a : &b, i % 3 ? "m" : "", NULL);
        item_key(&unreg, &k);
        answer(&want, RG_RES_OK, NULL);
    }
    op = op_many(RG_OP_REGISTER_MANY, SELF, 12, &reg);
    CHECK(apply1(&f, &op) == 0 && f.table.count == 2000 && f.n_changes == 2000);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply_w(&rp[0], 12, RG_RES_OK, &want));
    int in_order = 0;
    for (int i = 0; i < 2000; i++) {
        struct bytes k = make_name3("bulk", (uint8_t)(i / 256), (uint8_t)i);
        in_order += version_of(&f, &k) == 3 + (uint64_t)i;
    }
    CHECK(in_order == 2000 && f.version_seq == 2002);
    op = op_many(RG_OP_UNREGISTER_MANY, SELF, 13, &unreg);
    CHECK(apply1(&f, &op) == 0 && f.table.count == 0 && f.n_changes == 2000);
    CHECK(read_replies(&f, rp, 4) == 1 && is_reply(&rp[0], 13, RG_RES_OK, NULL));
    CHECK(f.version_seq == 2002);
    rg_wbuf_free(&it.w);
    rg_wbuf_free(&reg.w);
    rg_wbuf_free(&unreg.w);
    rg_wbuf_free(&want);
    rg_fsm_close(&f);
}

/* SET_META_IF_VERSION, REGISTER_MANY and UNREGISTER_MANY are writes: a
 * second copy, in a later entry or the same one, is skipped with no
 * reply, no change, no version. READ_ENTRY is not: every copy is answered
 * and none is remembered. */
static void test_dedup_bulk_kinds(void)
{
    struct rg_fsm f;
    struct reply rp[4];
    struct bytes k = make_name("dd", 1), k2 = make_name("dd", 2);
    struct bytes a = make_pid("a@h", 1, 1), b = make_pid("b@h", 2, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    struct rg_op reg = op_register(SELF, 1, &k, &a, "m", NULL); /* version 1 */
    struct rg_op cas = op_cas(SELF, 2, &k, &a, 1, "c");        /* 2 */
    struct rg_op set = op_set_meta(SELF, 3, &k, "d");           /* 3 */
    CHECK(apply1(&f, &reg) == 0 && apply1(&f, &cas) == 0 && apply1(&f, &set) == 0);
    CHECK(copy_skipped(&f, &cas) && holds(&f, &k, &a, "d") && f.version_seq == 3);
    /* A copy of a CAS answered NO, once the version has come to match,
     * must not put either. */
    struct rg_op cas_no = op_cas(SELF, 4, &k, &a, 4, "e");
    CHECK(apply1(&f, &cas_no) == 0 && read_replies(&f, rp, 4) == 1 &&
          rp[0].result == RG_RES_NO);
    struct rg_op set2 = op_set_meta(SELF, 5, &k, "f"); /* version 4 */
    CHECK(apply1(&f, &set2) == 0);
    CHECK(copy_skipped(&f, &cas_no) && holds(&f, &k, &a, "f") &&
          version_of(&f, &k) == 4 && f.version_seq == 4);

    struct items one, gone;
    items_init(&one);
    item_register(&one, &k2, &a, "", NULL);
    items_init(&gone);
    item_key(&gone, &k);
    struct rg_op many = op_many(RG_OP_REGISTER_MANY, SELF, 6, &one);
    struct rg_op unreg = op_key(RG_OP_UNREGISTER, SELF, 7, &k2);
    CHECK(apply1(&f, &many) == 0 && apply1(&f, &unreg) == 0);
    CHECK(copy_skipped(&f, &many) && holds(&f, &k2, NULL, "") &&
          f.version_seq == 5);
    struct rg_op umany = op_many(RG_OP_UNREGISTER_MANY, SELF, 8, &gone);
    struct rg_op reg_b = op_register(SELF, 9, &k, &b, "", NULL);
    CHECK(apply1(&f, &umany) == 0 && apply1(&f, &reg_b) == 0);
    CHECK(copy_skipped(&f, &umany) && holds(&f, &k, &b, ""));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 9);

    struct bytes e = entry_bytes(&b, 6, "");
    struct rg_op read = op_key(RG_OP_READ_ENTRY, SELF, 10, &k);
    for (int i = 0; i < 2; i++) { /* never skipped, never remembered */
        CHECK(apply1(&f, &read) == 0 && read_replies(&f, rp, 4) == 1 &&
              is_reply(&rp[0], 10, RG_RES_OK, &e));
    }
    read.ref = 2; /* even under a write's remembered ref */
    CHECK(apply1(&f, &read) == 0 && read_replies(&f, rp, 4) == 1 &&
          is_reply(&rp[0], 2, RG_RES_OK, &e));
    CHECK(rg_dedup_count(&f.dedup, SELF) == 9);

    /* Copies inside one entry. */
    struct batch bt;
    struct rg_op many2 = op_many(RG_OP_REGISTER_MANY, SELF, 11, &one);
    struct rg_op unreg2 = op_key(RG_OP_UNREGISTER, SELF, 12, &k2);
    struct rg_op cas2 = op_cas(SELF, 13, &k, &b, 6, "g");
    struct rg_op set3 = op_set_meta(SELF, 14, &k, "h");
    rg_fsm_effects_reset(&f);
    batch_begin(&bt);
    batch_add(&bt, &many2);
    batch_add(&bt, &unreg2);
    batch_add(&bt, &many2);
    batch_add(&bt, &cas2);
    batch_add(&bt, &set3);
    batch_add(&bt, &cas2);
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(f.n_replies == 4 && f.n_changes == 4);
    CHECK(holds(&f, &k2, NULL, "") && holds(&f, &k, &b, "h") && f.version_seq == 9);

    /* The same ref from another origin is another op. */
    struct rg_op theirs = op_many(RG_OP_REGISTER_MANY, OTHER, 6, &one);
    CHECK(apply1(&f, &theirs) == 0 && f.n_changes == 1 && holds(&f, &k2, &a, ""));
    rg_wbuf_free(&one.w);
    rg_wbuf_free(&gone.w);
    rg_fsm_close(&f);
}

/* Puts, removals and bulk ops on populate's names, so the versions are
 * scattered and the last ones given belong to names now gone. */
static void shuffle_versions(struct rg_fsm *f)
{
    struct bytes a = make_pid("a@h", 77, 1);
    struct items it;
    items_init(&it);
    for (uint8_t i = 0; i < 30; i += 3) {
        struct bytes k = make_name(i % 3 ? "abc" : "z", i);
        struct rg_op op = op_set_meta(OTHER, 5000 + i, &k, "again");
        CHECK(apply1(f, &op) == 0);
        item_key(&it, &k);
    }
    struct rg_op many = op_many(RG_OP_UNREGISTER_MANY, OTHER, 6000, &it);
    struct bytes k5 = make_name("abc", 5);
    struct rg_op cas = op_cas(OTHER, 6001, &k5, &a, 0, "no");
    CHECK(apply1(f, &many) == 0 && apply1(f, &cas) == 0 && f->bad_entries == 0);
    rg_wbuf_free(&it.w);
}

/* A snapshot holds the last version given and each name's version: a
 * restore gives identical bytes and the same counter, so the next put
 * gets a version above every restored one, as on the server it came
 * from. */
static void test_snapshot_versions(void)
{
    struct rg_fsm f, g, h;
    uint8_t *s = NULL;
    size_t n = 0;
    long counts[3];
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    CHECK(rg_fsm_init(&h, 3, key_b) == 0);
    populate(&f, 30);
    shuffle_versions(&f);
    populate(&h, 100); /* a larger counter, which the restore replaces */
    CHECK(f.version_seq == 40 && f.table.count == 20 && h.version_seq == 100);

    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0 && snapshot_tables(s, n, counts));
    CHECK(counts[T_NAMES] == 20);
    uint64_t seq = 0;
    for (int i = 4; i < 12; i++) {
        seq = seq << 8 | s[i];
    }
    CHECK(seq == 40);
    CHECK(rg_fsm_restore(&g, s, n) == 0 && snapshot_equals(&g, s, n));
    CHECK(rg_fsm_restore(&h, s, n) == 0 && snapshot_equals(&h, s, n));
    CHECK(g.version_seq == 40 && h.version_seq == 40 && versions_distinct(&g));
    uint64_t max = 0;
    int same_versions = 0;
    for (uint8_t i = 0; i < 30; i++) {
        struct bytes k = make_name(i % 3 ? "abc" : "z", i);
        same_versions += version_of(&g, &k) == version_of(&f, &k) &&
                         version_of(&h, &k) == version_of(&f, &k);
        max = version_of(&g, &k) > max ? version_of(&g, &k) : max;
    }
    CHECK(same_versions == 30 && max == 30);

    struct bytes k = make_name("fresh", 1), p = make_pid("a@h", 1, 1);
    struct rg_op put = op_register(SELF, 7000, &k, &p, "", NULL);
    CHECK(apply1(&f, &put) == 0 && apply1(&g, &put) == 0 && apply1(&h, &put) == 0);
    CHECK(version_of(&g, &k) == 41 && version_of(&h, &k) == 41 &&
          version_of(&f, &k) == 41);
    free(s);
    CHECK(rg_fsm_snapshot(&f, &s, &n) == 0 && snapshot_equals(&g, s, n) &&
          snapshot_equals(&h, s, n));
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
    rg_fsm_close(&h);
}

/* A snapshot of names rows (key i, its version) under version_seq, with
 * empty groups, metadata and de-duplication set. */
static void build_version_snapshot(struct rg_wbuf *w, uint64_t seq,
                                   const uint64_t *versions, int n)
{
    struct bytes p = make_pid("n@h", 1, 1);
    rg_wbuf_init(w);
    rg_wbuf_u32(w, MAGIC);
    rg_wbuf_u64(w, seq);
    rg_wbuf_u64(w, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct bytes k = make_name("v", (uint8_t)i);
        rg_wbuf_blob(w, k.b, k.n);
        rg_wbuf_blob(w, p.b, p.n);
        rg_wbuf_blob(w, "", 0);
        rg_wbuf_u64(w, versions[i]);
    }
    end_snapshot(w);
}

/* Versions a put could not have given: 0, or above the snapshot's
 * version_seq. Refused with everything unchanged; the edges are taken. */
static void test_snapshot_bad_versions(void)
{
    struct rg_fsm g;
    struct rg_wbuf w;
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    populate(&g, 3);
    const struct {
        uint64_t seq;
        uint64_t v[2];
        int n;
    } bad[] = {
        {5, {0, 0}, 1},          {5, {6, 0}, 1}, {5, {UINT64_MAX, 0}, 1},
        {0, {1, 0}, 1},          {5, {2, 0}, 2}, /* the second row's 0 */
        {5, {2, 6}, 2},          {5, {6, 2}, 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        build_version_snapshot(&w, bad[i].seq, bad[i].v, bad[i].n);
        bool ok = refused_unchanged(&g, w.data, w.len);
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "  bad version snapshot %zu was accepted\n", i);
        }
        rg_wbuf_free(&w);
    }
    CHECK(g.version_seq == 3 && g.table.count == 3);

    static const uint64_t edges[2] = {5, 1};
    build_version_snapshot(&w, 5, edges, 2); /* at version_seq, and 1 */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.table.count == 2 &&
          g.version_seq == 5);
    struct bytes k0 = make_name("v", 0), k1 = make_name("v", 1);
    CHECK(version_of(&g, &k0) == 5 && version_of(&g, &k1) == 1);
    rg_wbuf_free(&w);
    build_version_snapshot(&w, 7, NULL, 0); /* a counter and no names */
    CHECK(rg_fsm_restore(&g, w.data, w.len) == 0 && g.table.count == 0 &&
          g.version_seq == 7);
    struct bytes p = make_pid("a@h", 1, 1);
    struct rg_op put = op_register(SELF, 1, &k0, &p, "", NULL);
    CHECK(apply1(&g, &put) == 0 && version_of(&g, &k0) == 8);
    rg_wbuf_free(&w);
    rg_fsm_close(&g);
}

/* ---- malformed entries -------------------------------------------------- */

static int apply_raw(struct rg_fsm *f, const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(copy, p, n);
    }
    int rv = rg_fsm_apply(f, copy, n);
    free(copy);
    return rv;
}

/* Headers that are not an entry's: counted, nothing else happens. */
static void test_bad_headers(void)
{
    struct rg_fsm f;
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    static const uint8_t none[1] = {0};
    CHECK(apply_raw(&f, none, 0) == 0 && f.bad_entries == 1); /* empty */
    static const uint8_t fmt2[] = {2, 0, 0, 0, 0};
    CHECK(apply_raw(&f, fmt2, sizeof fmt2) == 0 && f.bad_entries == 2);
    static const uint8_t short_hdr[] = {1, 0, 0};
    CHECK(apply_raw(&f, short_hdr, sizeof short_hdr) == 0 && f.bad_entries == 3);
    static const uint8_t zero[] = {1, 0, 0, 0, 0};
    CHECK(apply_raw(&f, zero, sizeof zero) == 0 && f.bad_entries == 3);
    static const uint8_t huge[] = {1, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(apply_raw(&f, huge, sizeof huge) == 0 && f.bad_entries == 4);
    CHECK(f.table.count == 0 && f.n_changes == 0 && f.n_replies == 0);
    rg_fsm_close(&f);
}

/* Ops before the damage apply, identically everywhere; padding is not
 * damage. */
static void test_partial_entries(void)
{
    struct rg_fsm f;
    struct batch bt;
    struct bytes k1 = make_name("k", 1), k2 = make_name("k", 2);
    struct bytes a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    batch_begin(&bt); /* count says 2, one op follows */
    struct rg_op op = op_register(SELF, 1, &k1, &a, "", NULL);
    batch_add(&bt, &op);
    bt.n = 2;
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(f.bad_entries == 1 && holds(&f, &k1, &a, "") && f.n_replies == 1);

    batch_begin(&bt); /* after the ops, a non-zero byte is not padding */
    op = op_register(SELF, 2, &k2, &a, "", NULL);
    batch_add(&bt, &op);
    rg_wbuf_u8(&bt.w, 1);
    CHECK(batch_apply(&bt, &f) == 0);
    CHECK(f.bad_entries == 2 && holds(&f, &k2, &a, ""));

    batch_begin(&bt); /* exactly eight zero bytes are more than padding */
    op = op_key(RG_OP_READ, SELF, 2, &k2);
    batch_add(&bt, &op);
    rg_wbuf_patch_u32(&bt.w, bt.count_off, 1);
    rg_wbuf_put(&bt.w, "\0\0\0\0\0\0\0\0", 8);
    CHECK(apply_raw(&f, bt.w.data, bt.w.len) == 0 && f.bad_entries == 3);
    rg_wbuf_free(&bt.w);
    for (size_t pad = 0; pad < 8; pad++) { /* 0..7 zero bytes are padding */
        batch_begin(&bt);
        batch_add(&bt, &op);
        rg_wbuf_patch_u32(&bt.w, bt.count_off, 1);
        rg_wbuf_put(&bt.w, "\0\0\0\0\0\0\0", pad);
        CHECK(apply_raw(&f, bt.w.data, bt.w.len) == 0 && f.bad_entries == 3);
        rg_wbuf_free(&bt.w);
    }
    rg_fsm_close(&f);
}

/* Ops that do not decode: unknown kind, non-canonical name, a name as the
 * pid, an op in port form. Counted; nothing applied. */
static void test_bad_ops(void)
{
    struct rg_fsm f;
    struct batch bt;
    struct bytes k1 = make_name("k", 1), k2 = make_name("k", 2);
    struct bytes a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);

    batch_begin(&bt);
    struct rg_op op = op_key(RG_OP_UNREGISTER, SELF, 3, &k1);
    op.kind = RG_OP_META_CAS + 1; /* the first unknown kind */
    batch_add(&bt, &op);
    rg_wbuf_blob(&bt.w, k1.b, k1.n);
    CHECK(batch_apply(&bt, &f) == 0 && f.bad_entries == 1);

    struct bytes bad = make_name("k", 1);
    bad.b[0] = RG_ETF_LARGE_TUPLE; /* not how a 2-tuple is written */
    batch_begin(&bt);
    op = op_register(SELF, 4, &bad, &a, "", NULL);
    batch_add(&bt, &op);
    CHECK(batch_apply(&bt, &f) == 0 && f.bad_entries == 2);

    batch_begin(&bt);
    op = op_register(SELF, 5, &k1, &k2, "", NULL); /* pid field holds a name */
    batch_add(&bt, &op);
    CHECK(batch_apply(&bt, &f) == 0 && f.bad_entries == 3);

    batch_begin(&bt);
    op = op_register(SELF, 6, &k1, &a, "", NULL);
    rg_op_encode(&bt.w, &op, false); /* port form inside a log entry */
    bt.n = 1;
    CHECK(batch_apply(&bt, &f) == 0 && f.bad_entries == 4);
    CHECK(f.table.count == 0 && f.n_changes == 0 && f.n_replies == 0);
    rg_fsm_close(&f);
}

/* Random and mutated entries: never a crash, and whatever they did to the
 * table survives a snapshot round trip. */
static void test_garbage_entries(void)
{
    struct rg_fsm f, g;
    struct bytes k = make_name("g", 3);
    struct bytes a = make_pid("a@h", 1, 1);
    CHECK(rg_fsm_init(&f, SELF, key_a) == 0);
    CHECK(rg_fsm_init(&g, OTHER, key_b) == 0);
    struct batch bt;
    batch_begin(&bt);
    /* Every table gets a row the mutations can damage or reach. */
    struct rg_op ops[6] = {op_register(SELF, 1, &k, &a, "meta", NULL),
                           op_set_meta(SELF, 2, &k, "x"),
                           op_pid_meta(RG_OP_GROUP_ADD, SELF, 4, &k, &a, "v"),
                           op_group_del(SELF, 5, &k, &a, "v", false),
                           op_meta_put(SELF, 6, &k, "m", false),
                           op_purge(SELF, 3, "a@h", true, 0)};
    for (int i = 0; i < 6; i++) {
        batch_add(&bt, &ops[i]);
    }
    rg_wbuf_patch_u32(&bt.w, bt.count_off, 6);
    uint8_t buf[512];
    size_t base = bt.w.len;
    memcpy(buf, bt.w.data, base);
    rg_wbuf_free(&bt.w);
    for (int i = 0; i < 20000; i++) {
        size_t n = base;
        uint8_t m[512];
        memcpy(m, buf, n);
        for (int e = unit_rng_below(4); e >= 0; e--) {
            size_t at = (size_t)unit_rng_below((int)n);
            if (unit_rng_below(4) == 0) {
                n = at; /* truncate */
            } else {
                m[at] = (uint8_t)unit_rng();
            }
            if (n == 0) {
                break;
            }
        }
        CHECK(apply_raw(&f, m, n) == 0 || f.changes.oom);
        rg_fsm_effects_reset(&f);
    }
    CHECK(f.bad_entries > 0);
    uint8_t *s = NULL;
    size_t sn = 0;
    CHECK(rg_fsm_snapshot(&f, &s, &sn) == 0);
    CHECK(rg_fsm_restore(&g, s, sn) == 0 && snapshot_equals(&g, s, sn));
    free(s);
    rg_fsm_close(&f);
    rg_fsm_close(&g);
}

int main(void)
{
    unit_seed(0x1234567887654321ULL);
    test_register();
    test_unregister();
    test_set_meta_and_read();
    test_purge();
    test_replies_only_for_self();
    test_change_order();
    test_model();
    test_snapshot_round_trip();
    test_snapshot_truncated();
    test_snapshot_bad_rows();
    test_dedup_skips_second_copies();
    test_dedup_scope();
    test_settle();
    test_snapshot_dedup();
    test_snapshot_bad_dedup();
    test_register_new();
    test_set_meta_if_owner();
    test_group_add_del();
    test_group_full();
    test_group_purge();
    test_purge_order();
    test_meta_ops();
    test_meta_cas();
    test_dedup_new_kinds();
    test_snapshot_all_tables();
    test_snapshot_bad_groups();
    test_snapshot_bad_meta();
    test_versions();
    test_set_meta_if_version();
    test_read_entry();
    test_register_many();
    test_unregister_many();
    test_dedup_bulk_kinds();
    test_snapshot_versions();
    test_snapshot_bad_versions();
    test_bad_headers();
    test_partial_entries();
    test_bad_ops();
    test_garbage_entries();
    UNIT_DONE("test_fsm");
}
