/* The registry state machine; see fsm.h. */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "limits.h"

/* "RGS2": RGS1 had no de-duplication section. */
#define SNAPSHOT_MAGIC 0x52475332u

int rg_fsm_init(struct rg_fsm *f, uint64_t self, struct rg_sipkey key)
{
    memset(f, 0, sizeof *f);
    f->self = self;
    rg_wbuf_init(&f->changes);
    rg_wbuf_init(&f->replies);
    rg_dedup_init(&f->dedup);
    return rg_table_init(&f->table, key);
}

void rg_fsm_close(struct rg_fsm *f)
{
    rg_table_free(&f->table);
    rg_dedup_free(&f->dedup);
    rg_wbuf_free(&f->changes);
    rg_wbuf_free(&f->replies);
}

void rg_fsm_effects_reset(struct rg_fsm *f)
{
    rg_wbuf_reset(&f->changes);
    rg_wbuf_reset(&f->replies);
    f->n_changes = 0;
    f->n_replies = 0;
}

static void note_put(struct rg_fsm *f, const struct rg_entry *e)
{
    rg_wbuf_u8(&f->changes, RG_CHANGE_PUT);
    rg_wbuf_blob(&f->changes, rg_entry_key(e), e->key_len);
    rg_wbuf_blob(&f->changes, rg_entry_pid(e), e->pid_len);
    rg_wbuf_blob(&f->changes, rg_entry_meta(e), e->meta_len);
    f->n_changes++;
}

static void note_del(struct rg_fsm *f, const uint8_t *key, size_t key_len,
                     uint8_t kind)
{
    rg_wbuf_u8(&f->changes, kind);
    rg_wbuf_blob(&f->changes, key, key_len);
    f->n_changes++;
}

static void reply(struct rg_fsm *f, const struct rg_op *op, uint8_t result,
                  const uint8_t *payload, size_t len)
{
    if (op->origin != f->self || op->ref == 0) {
        return; /* someone else's caller, or nobody's */
    }
    rg_wbuf_u64(&f->replies, op->ref);
    rg_wbuf_u8(&f->replies, result);
    rg_wbuf_blob(&f->replies, payload, len);
    f->n_replies++;
}

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
                       size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Stores (key -> pid, meta) and records the change. */
static int put(struct rg_fsm *f, const struct rg_op *op, const uint8_t *meta,
               size_t meta_len)
{
    if (rg_table_put(&f->table, op->key, op->key_len, op->pid, op->pid_len,
                     meta, meta_len) != 0) {
        return -1;
    }
    note_put(f, rg_table_get(&f->table, op->key, op->key_len));
    return 0;
}

/* A name is free, or already ours, or held by the pid the member told us is
 * dead (replace): then it is ours now. Otherwise: NO with the holder. */
static int apply_register(struct rg_fsm *f, const struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    if (cur == NULL) {
        int rv = put(f, op, op->meta, op->meta_len);
        reply(f, op, RG_RES_OK, NULL, 0);
        return rv;
    }
    const uint8_t *holder = rg_entry_pid(cur);
    bool same = same_bytes(holder, cur->pid_len, op->pid, op->pid_len);
    bool replace = op->replace != NULL &&
                   same_bytes(holder, cur->pid_len, op->replace,
                              op->replace_len);
    if (!same && !replace) {
        reply(f, op, RG_RES_NO, holder, cur->pid_len);
        return 0;
    }
    int rv = 0;
    if (same && op->meta_len == 0) {
        /* Same owner, no new metadata: nothing changes. */
    } else if (!same || !same_bytes(rg_entry_meta(cur), cur->meta_len,
                                    op->meta, op->meta_len)) {
        rv = put(f, op, op->meta, op->meta_len);
    }
    reply(f, op, RG_RES_OK, NULL, 0);
    return rv;
}

/* RG_INJECT_BUG_SKIP_OWNER_CHECK builds the deliberately broken daemon
 * that the history checker's self-test must catch (docs/testing.md). */
#ifdef RG_INJECT_BUG_SKIP_OWNER_CHECK
#define OWNER_CHECKED(if_owner) false
#else
#define OWNER_CHECKED(if_owner) (if_owner)
#endif

static void apply_unregister(struct rg_fsm *f, const struct rg_op *op,
                             bool if_owner)
{
    if_owner = OWNER_CHECKED(if_owner);
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    if (cur != NULL &&
        (!if_owner ||
         same_bytes(rg_entry_pid(cur), cur->pid_len, op->pid, op->pid_len))) {
        rg_table_del(&f->table, op->key, op->key_len);
        note_del(f, op->key, op->key_len, RG_CHANGE_DEL);
    }
    reply(f, op, RG_RES_OK, NULL, 0);
}

static int apply_set_meta(struct rg_fsm *f, struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    if (cur == NULL) {
        reply(f, op, RG_RES_NOT_FOUND, NULL, 0);
        return 0;
    }
    op->pid = rg_entry_pid(cur);
    op->pid_len = cur->pid_len;
    /* put() frees cur; the pid is copied before that, so pass a copy. */
    uint8_t pid[RG_PID_MAX];
    memcpy(pid, op->pid, op->pid_len);
    op->pid = pid;
    int rv = put(f, op, op->meta, op->meta_len);
    reply(f, op, RG_RES_OK, NULL, 0);
    return rv;
}

struct purge_ctx {
    struct rg_fsm *f;
    const struct rg_op *op;
};

static bool purge_visit(void *arg, const struct rg_entry *e)
{
    struct purge_ctx *c = arg;
    struct rg_pid_view v;
    if (!rg_canon_pid(rg_entry_pid(e), e->pid_len, &v) ||
        !same_bytes(v.node, v.node_len, c->op->pid, c->op->pid_len) ||
        (!c->op->any_creation && v.creation != c->op->creation)) {
        return false;
    }
    note_del(c->f, rg_entry_key(e), e->key_len, RG_CHANGE_DEL_PURGE);
    return true;
}

static void apply_purge(struct rg_fsm *f, const struct rg_op *op)
{
    struct purge_ctx c = {f, op};
    rg_table_visit(&f->table, purge_visit, &c);
    reply(f, op, RG_RES_OK, NULL, 0);
}

static void apply_read(struct rg_fsm *f, const struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    if (cur == NULL) {
        reply(f, op, RG_RES_OK, NULL, 0);
    } else {
        reply(f, op, RG_RES_OK, rg_entry_pid(cur), cur->pid_len);
    }
}

static int apply_kind(struct rg_fsm *f, struct rg_op *op)
{
    switch (op->kind) {
    case RG_OP_REGISTER:
        return apply_register(f, op);
    case RG_OP_UNREGISTER:
        apply_unregister(f, op, false);
        return 0;
    case RG_OP_UNREGISTER_IF_OWNER:
        apply_unregister(f, op, true);
        return 0;
    case RG_OP_SET_META:
        return apply_set_meta(f, op);
    case RG_OP_PURGE_NODE:
        apply_purge(f, op);
        return 0;
    case RG_OP_READ:
        apply_read(f, op);
        return 0;
    default:
        abort(); /* rg_op_decode admits no other kind */
    }
}

static bool is_write(uint8_t kind)
{
    return kind == RG_OP_REGISTER || kind == RG_OP_UNREGISTER ||
           kind == RG_OP_UNREGISTER_IF_OWNER || kind == RG_OP_SET_META;
}

/* A write whose (origin, ref) was applied before is a re-sent copy: its
 * first copy already acted and was answered, so this one does nothing. */
static int apply_op(struct rg_fsm *f, struct rg_op *op)
{
    if (op->kind == RG_OP_SETTLE) {
        rg_dedup_settle(&f->dedup, op->origin, op->below);
        return 0;
    }
    bool tracked = is_write(op->kind) && op->ref != 0;
    if (tracked && rg_dedup_has(&f->dedup, op->origin, op->ref)) {
        return 0;
    }
    if (apply_kind(f, op) != 0) {
        return -1;
    }
    return tracked ? rg_dedup_add(&f->dedup, op->origin, op->ref) : 0;
}

int rg_fsm_apply(struct rg_fsm *f, const uint8_t *entry, size_t len)
{
    struct rg_rbuf r;
    uint32_t count;
    rg_rbuf_init(&r, entry, len);
    if (!rg_entry_open(&r, &count)) {
        f->bad_entries++;
        return 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct rg_op op;
        if (!rg_op_decode(&r, true, &op)) {
            f->bad_entries++;
            return 0;
        }
        if (apply_op(f, &op) != 0) {
            return -1;
        }
    }
    if (!rg_entry_close(&r)) {
        f->bad_entries++;
    }
    return f->changes.oom || f->replies.oom ? -1 : 0;
}

int rg_fsm_snapshot(const struct rg_fsm *f, uint8_t **out, size_t *len)
{
    size_t n;
    const struct rg_entry **v = rg_table_sorted(&f->table, &n);
    if (v == NULL && n != 0) {
        return -1;
    }
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u32(&w, SNAPSHOT_MAGIC);
    rg_wbuf_u64(&w, n);
    for (size_t i = 0; i < n; i++) {
        rg_wbuf_blob(&w, rg_entry_key(v[i]), v[i]->key_len);
        rg_wbuf_blob(&w, rg_entry_pid(v[i]), v[i]->pid_len);
        rg_wbuf_blob(&w, rg_entry_meta(v[i]), v[i]->meta_len);
    }
    free(v);
    rg_dedup_write(&f->dedup, &w);
    if (w.oom) {
        rg_wbuf_free(&w);
        return -1;
    }
    *out = rg_wbuf_take(&w, len);
    return 0;
}

/* Reads one snapshot row, validating it as strictly as a command. */
static bool read_row(struct rg_rbuf *r, struct rg_op *row)
{
    struct rg_pid_view v;
    row->key = rg_rbuf_blob(r, RG_NAME_MAX, &row->key_len);
    row->pid = rg_rbuf_blob(r, RG_PID_MAX, &row->pid_len);
    row->meta = rg_rbuf_blob(r, RG_META_MAX, &row->meta_len);
    return rg_rbuf_ok(r) && rg_canon_check(row->key, row->key_len) &&
           rg_canon_pid(row->pid, row->pid_len, &v);
}

/* The table part of a snapshot into t (initialised by the caller). */
static int read_table(struct rg_rbuf *r, struct rg_table *t)
{
    uint32_t magic = rg_rbuf_u32(r);
    uint64_t n = rg_rbuf_u64(r);
    if (!rg_rbuf_ok(r) || magic != SNAPSHOT_MAGIC || n > r->left / 12) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct rg_op row;
        if (!read_row(r, &row) ||
            rg_table_get(t, row.key, row.key_len) != NULL ||
            rg_table_put(t, row.key, row.key_len, row.pid, row.pid_len,
                         row.meta, row.meta_len) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Both parts are read into new structures and swapped in only if the
 * whole snapshot is valid. */
int rg_fsm_restore(struct rg_fsm *f, const uint8_t *p, size_t len)
{
    struct rg_rbuf r;
    struct rg_table t;
    struct rg_dedup d;
    rg_rbuf_init(&r, p, len);
    rg_dedup_init(&d);
    if (rg_table_init(&t, f->table.key) != 0) {
        return -1;
    }
    if (read_table(&r, &t) != 0 || rg_dedup_read(&d, &r) != 0 ||
        !rg_rbuf_done(&r)) {
        rg_table_free(&t);
        rg_dedup_free(&d);
        return -1;
    }
    rg_table_free(&f->table);
    rg_dedup_free(&f->dedup);
    f->table = t;
    f->dedup = d;
    f->restored = true;
    return 0;
}
