/* The registry state machine; see fsm.h. */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "fsm_int.h"
#include "limits.h"

int rg_fsm_init(struct rg_fsm *f, uint64_t self, struct rg_sipkey key)
{
    memset(f, 0, sizeof *f);
    f->self = self;
    rg_wbuf_init(&f->changes);
    rg_wbuf_init(&f->replies);
    rg_dedup_init(&f->dedup);
    if (rg_table_init(&f->table, key) != 0) {
        return -1;
    }
    if (rg_table_init(&f->groups, key) != 0) {
        rg_table_free(&f->table);
        return -1;
    }
    if (rg_table_init(&f->meta, key) != 0) {
        rg_table_free(&f->table);
        rg_table_free(&f->groups);
        return -1;
    }
    return 0;
}

void rg_fsm_close(struct rg_fsm *f)
{
    rg_table_free(&f->table);
    rg_table_free(&f->groups);
    rg_table_free(&f->meta);
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

void rg_fsm_note(struct rg_fsm *f, uint8_t kind, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    rg_wbuf_u8(&f->changes, kind);
    rg_wbuf_blob(&f->changes, a, alen);
    if (b != NULL) {
        rg_wbuf_blob(&f->changes, b, blen);
    }
    f->n_changes++;
}

static void note_del(struct rg_fsm *f, const uint8_t *key, size_t key_len,
                     uint8_t kind)
{
    rg_fsm_note(f, kind, key, key_len, NULL, 0);
}

void rg_fsm_reply(struct rg_fsm *f, const struct rg_op *op, uint8_t result,
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

#define reply rg_fsm_reply
#define same_bytes rg_same_bytes

/* Stores (key -> pid, meta) and records the change. */
/* Every put of a name takes the next value of the FSM's write counter as
 * its version, so a version is never reused, even by a name registered
 * again after it went (SET_META_IF_VERSION relies on that). */
static int put(struct rg_fsm *f, const struct rg_op *op, const uint8_t *meta,
               size_t meta_len)
{
    if (rg_table_put(&f->table, op->key, op->key_len, op->pid, op->pid_len,
                     meta, meta_len) != 0) {
        return -1;
    }
    rg_table_set_version(&f->table, op->key, op->key_len, ++f->version_seq);
    note_put(f, rg_table_get(&f->table, op->key, op->key_len));
    return 0;
}

/* A name is free, or already ours, or held by the pid the member told us is
 * dead (replace): then it is ours now. Otherwise: NO with the holder.
 * REGISTER_NEW (Registry's register/3) is NO when the name is already ours. */
int rg_fsm_register_one(struct rg_fsm *f, const struct rg_op *op,
                        uint8_t holder[RG_PID_MAX], uint32_t *holder_len)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    *holder_len = 0;
    if (cur == NULL) {
        return put(f, op, op->meta, op->meta_len) != 0 ? -1 : RG_RES_OK;
    }
    bool same = same_bytes(rg_entry_pid(cur), cur->pid_len, op->pid, op->pid_len);
    bool replace = op->replace != NULL &&
                   same_bytes(rg_entry_pid(cur), cur->pid_len, op->replace,
                              op->replace_len);
    if ((same && op->kind == RG_OP_REGISTER_NEW) || (!same && !replace)) {
        memcpy(holder, rg_entry_pid(cur), cur->pid_len);
        *holder_len = cur->pid_len;
        return RG_RES_NO;
    }
    if (same && op->meta_len == 0) {
        return RG_RES_OK; /* same owner, no new metadata: nothing changes */
    }
    if (!same || !same_bytes(rg_entry_meta(cur), cur->meta_len, op->meta,
                             op->meta_len)) {
        return put(f, op, op->meta, op->meta_len) != 0 ? -1 : RG_RES_OK;
    }
    return RG_RES_OK;
}

static int apply_register(struct rg_fsm *f, const struct rg_op *op)
{
    uint8_t holder[RG_PID_MAX];
    uint32_t holder_len;
    int res = rg_fsm_register_one(f, op, holder, &holder_len);
    if (res < 0) {
        return -1;
    }
    reply(f, op, (uint8_t)res, holder, holder_len);
    return 0;
}

/* RG_INJECT_BUG_SKIP_OWNER_CHECK builds the deliberately broken daemon
 * that the history checker's self-test must catch (docs/testing.md). */
#ifdef RG_INJECT_BUG_SKIP_OWNER_CHECK
#define OWNER_CHECKED(if_owner) false
#else
#define OWNER_CHECKED(if_owner) (if_owner)
#endif

bool rg_fsm_unregister_one(struct rg_fsm *f, const struct rg_op *op)
{
    if (!rg_table_del(&f->table, op->key, op->key_len)) {
        return false;
    }
    note_del(f, op->key, op->key_len, RG_CHANGE_DEL);
    return true;
}

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

/* An entry as READ_ENTRY and a refused SET_META_IF_VERSION give it:
 * [blob pid][u64 version][meta bytes]. */
static void entry_payload(struct rg_wbuf *w, const struct rg_entry *e)
{
    rg_wbuf_blob(w, rg_entry_pid(e), e->pid_len);
    rg_wbuf_u64(w, e->version);
    rg_wbuf_put(w, rg_entry_meta(e), e->meta_len);
}

static void reply_entry(struct rg_fsm *f, const struct rg_op *op,
                        uint8_t result, const struct rg_entry *e)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    entry_payload(&w, e);
    reply(f, op, result, w.data, w.len); /* on oom the reply is short: f->replies.oom */
    f->replies.oom |= w.oom;
    rg_wbuf_free(&w);
}

/* SET_META_IF_OWNER (Registry's update_value/3) changes nothing unless the
 * holder is op's pid; SET_META_IF_VERSION (a compare-and-set) nothing
 * unless the holder is op's pid at op's version, and then answers NO with
 * the entry as it is, for the caller's next attempt. */
static int apply_set_meta(struct rg_fsm *f, struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    bool owner = cur != NULL &&
                 same_bytes(rg_entry_pid(cur), cur->pid_len, op->pid, op->pid_len);
    if (cur == NULL || (op->kind == RG_OP_SET_META_IF_OWNER && !owner)) {
        reply(f, op, RG_RES_NOT_FOUND, NULL, 0);
        return 0;
    }
    if (op->kind == RG_OP_SET_META_IF_VERSION &&
        (!owner || cur->version != op->version)) {
        reply_entry(f, op, RG_RES_NO, cur);
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


bool rg_fsm_pid_on_node(const uint8_t *p, size_t len, const struct rg_op *op)
{
    struct rg_pid_view v;
    return rg_canon_pid(p, len, &v) &&
           same_bytes(v.node, v.node_len, op->pid, op->pid_len) &&
           (op->any_creation || v.creation == op->creation);
}

static bool purged(void *arg, const struct rg_entry *e)
{
    return rg_fsm_pid_on_node(rg_entry_pid(e), e->pid_len, arg);
}

/* The node's names go in key order, the same on every server, so that
 * every member reports them (and every subscriber hears of them) in the
 * same order: the hash table's order differs between daemons (found by the
 * nemesis' subscription rule). */
static int apply_purge(struct rg_fsm *f, const struct rg_op *op)
{
    size_t n;
    const struct rg_entry **v = rg_table_select_sorted(&f->table, purged,
                                                       (void *)op, &n);
    if (v == NULL && n != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        note_del(f, rg_entry_key(v[i]), v[i]->key_len, RG_CHANGE_DEL_PURGE);
        rg_table_del(&f->table, rg_entry_key(v[i]), v[i]->key_len);
    }
    free(v);
    if (rg_fsm_group_purge(f, op) != 0) {
        return -1;
    }
    reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}

static void apply_read(struct rg_fsm *f, const struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->table, op->key, op->key_len);
    if (cur == NULL) {
        reply(f, op, RG_RES_OK, NULL, 0);
    } else if (op->kind == RG_OP_READ_ENTRY) {
        reply_entry(f, op, RG_RES_OK, cur);
    } else {
        reply(f, op, RG_RES_OK, rg_entry_pid(cur), cur->pid_len);
    }
}

static int apply_kind(struct rg_fsm *f, struct rg_op *op)
{
    switch (op->kind) {
    case RG_OP_REGISTER:
    case RG_OP_REGISTER_NEW:
        return apply_register(f, op);
    case RG_OP_UNREGISTER:
        apply_unregister(f, op, false);
        return 0;
    case RG_OP_UNREGISTER_IF_OWNER:
        apply_unregister(f, op, true);
        return 0;
    case RG_OP_SET_META:
    case RG_OP_SET_META_IF_OWNER:
    case RG_OP_SET_META_IF_VERSION:
        return apply_set_meta(f, op);
    case RG_OP_READ_ENTRY:
        apply_read(f, op);
        return 0;
    case RG_OP_REGISTER_MANY:
        return rg_fsm_register_many(f, op);
    case RG_OP_UNREGISTER_MANY:
        return rg_fsm_unregister_many(f, op);
    case RG_OP_GROUP_ADD:
        return rg_fsm_group_add(f, op);
    case RG_OP_GROUP_DEL:
        return rg_fsm_group_del(f, op);
    case RG_OP_META_PUT:
        return rg_fsm_meta_put(f, op);
    case RG_OP_META_DEL:
        rg_fsm_meta_del(f, op);
        return 0;
    case RG_OP_META_CAS:
        return rg_fsm_meta_cas(f, op);
    case RG_OP_PURGE_NODE:
        return apply_purge(f, op);
    case RG_OP_READ:
        apply_read(f, op);
        return 0;
    default:
        abort(); /* rg_op_decode admits no other kind */
    }
}

static bool is_write(uint8_t kind)
{
    return kind != RG_OP_PURGE_NODE && kind != RG_OP_READ &&
           kind != RG_OP_READ_ENTRY && kind != RG_OP_SETTLE;
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

