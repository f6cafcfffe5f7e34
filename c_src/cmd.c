/* Registry operations and their encoding; see cmd.h. */
#include "cmd.h"

#include <string.h>

#include "canon.h"
#include "limits.h"

static bool decode_key(struct rg_rbuf *r, struct rg_op *op)
{
    op->key = rg_rbuf_blob(r, RG_NAME_MAX, &op->key_len);
    return op->key != NULL && rg_canon_check(op->key, op->key_len);
}

static bool decode_pid(struct rg_rbuf *r, const uint8_t **p, uint32_t *len,
                       bool optional)
{
    struct rg_pid_view v;
    *p = rg_rbuf_blob(r, RG_PID_MAX, len);
    if (!rg_rbuf_ok(r)) {
        return false;
    }
    if (optional && *len == 0) {
        *p = NULL;
        return true;
    }
    return rg_canon_pid(*p, *len, &v);
}

static bool decode_meta(struct rg_rbuf *r, struct rg_op *op)
{
    op->meta = rg_rbuf_blob(r, RG_META_MAX, &op->meta_len);
    return rg_rbuf_ok(r);
}

static bool decode_flag(struct rg_rbuf *r, struct rg_op *op)
{
    uint8_t b = rg_rbuf_u8(r);
    op->flag = b == 1;
    return rg_rbuf_ok(r) && b <= 1;
}

/* META_CAS: [u8 mode][blob expect][blob value]; a blob the mode does not
 * use must be empty, so that one op has one encoding. */
static bool decode_cas(struct rg_rbuf *r, struct rg_op *op)
{
    op->cas_mode = rg_rbuf_u8(r);
    op->expect = rg_rbuf_blob(r, RG_META_MAX, &op->expect_len);
    if (!rg_rbuf_ok(r) || op->cas_mode > (RG_CAS_EXPECT | RG_CAS_VALUE) ||
        (!(op->cas_mode & RG_CAS_EXPECT) && op->expect_len != 0)) {
        return false;
    }
    return decode_meta(r, op) &&
           ((op->cas_mode & RG_CAS_VALUE) || op->meta_len == 0);
}

static bool decode_node(struct rg_rbuf *r, struct rg_op *op)
{
    op->pid = rg_rbuf_blob(r, RG_NODE_MAX, &op->pid_len);
    uint8_t any = rg_rbuf_u8(r);
    op->creation = rg_rbuf_u32(r);
    op->any_creation = any == 1;
    return rg_rbuf_ok(r) && op->pid_len > 0 && any <= 1;
}

bool rg_many_next(struct rg_rbuf *r, uint8_t kind, struct rg_op *item)
{
    if (r->left == 0) {
        return false;
    }
    memset(item, 0, sizeof *item);
    item->kind = kind == RG_OP_REGISTER_MANY ? RG_OP_REGISTER : RG_OP_UNREGISTER;
    if (kind == RG_OP_UNREGISTER_MANY) {
        return decode_key(r, item);
    }
    return decode_key(r, item) &&
           decode_pid(r, &item->pid, &item->pid_len, false) &&
           decode_meta(r, item) &&
           decode_pid(r, &item->replace, &item->replace_len, true);
}

/* [u32 count] and count items, each valid; op->items covers them. */
static bool decode_many(struct rg_rbuf *r, struct rg_op *op)
{
    op->count = rg_rbuf_u32(r);
    if (!rg_rbuf_ok(r) || op->count == 0 || op->count > RG_MANY_MAX) {
        return false;
    }
    const uint8_t *start = r->p;
    struct rg_op item;
    for (uint32_t i = 0; i < op->count; i++) {
        if (!rg_many_next(r, op->kind, &item)) {
            return false;
        }
    }
    op->items = start;
    op->items_len = (uint32_t)(r->p - start);
    return true;
}

bool rg_op_decode(struct rg_rbuf *r, bool with_origin, struct rg_op *op)
{
    memset(op, 0, sizeof *op);
    op->kind = rg_rbuf_u8(r);
    op->origin = with_origin ? rg_rbuf_u64(r) : 0;
    op->ref = rg_rbuf_u64(r);
    if (!rg_rbuf_ok(r)) {
        return false;
    }
    switch (op->kind) {
    case RG_OP_REGISTER:
    case RG_OP_REGISTER_NEW:
        return decode_key(r, op) &&
               decode_pid(r, &op->pid, &op->pid_len, false) &&
               decode_meta(r, op) &&
               decode_pid(r, &op->replace, &op->replace_len, true);
    case RG_OP_UNREGISTER:
    case RG_OP_READ:
    case RG_OP_META_DEL:
        return decode_key(r, op);
    case RG_OP_SET_META_IF_OWNER:
    case RG_OP_GROUP_ADD:
        return decode_key(r, op) &&
               decode_pid(r, &op->pid, &op->pid_len, false) &&
               decode_meta(r, op);
    case RG_OP_GROUP_DEL:
        return decode_key(r, op) &&
               decode_pid(r, &op->pid, &op->pid_len, false) &&
               decode_flag(r, op) && decode_meta(r, op);
    case RG_OP_META_PUT:
        return decode_key(r, op) && decode_meta(r, op) && decode_flag(r, op);
    case RG_OP_META_CAS:
        return decode_key(r, op) && decode_cas(r, op);
    case RG_OP_SET_META_IF_VERSION:
        if (!decode_key(r, op) || !decode_pid(r, &op->pid, &op->pid_len, false)) {
            return false;
        }
        op->version = rg_rbuf_u64(r);
        return rg_rbuf_ok(r) && decode_meta(r, op);
    case RG_OP_READ_ENTRY:
        return decode_key(r, op);
    case RG_OP_REGISTER_MANY:
    case RG_OP_UNREGISTER_MANY:
        return decode_many(r, op);
    case RG_OP_UNREGISTER_IF_OWNER:
        return decode_key(r, op) &&
               decode_pid(r, &op->pid, &op->pid_len, false);
    case RG_OP_SET_META:
        return decode_key(r, op) && decode_meta(r, op);
    case RG_OP_PURGE_NODE:
        return decode_node(r, op);
    case RG_OP_SETTLE:
        op->below = rg_rbuf_u64(r);
        return rg_rbuf_ok(r) && op->ref == 0 && op->below != 0;
    default:
        return false;
    }
}

void rg_op_encode(struct rg_wbuf *w, const struct rg_op *op, bool with_origin)
{
    rg_wbuf_u8(w, op->kind);
    if (with_origin) {
        rg_wbuf_u64(w, op->origin);
    }
    rg_wbuf_u64(w, op->ref);
    switch (op->kind) {
    case RG_OP_REGISTER:
    case RG_OP_REGISTER_NEW:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->pid, op->pid_len);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        rg_wbuf_blob(w, op->replace, op->replace_len);
        break;
    case RG_OP_UNREGISTER:
    case RG_OP_READ:
    case RG_OP_META_DEL:
        rg_wbuf_blob(w, op->key, op->key_len);
        break;
    case RG_OP_SET_META_IF_OWNER:
    case RG_OP_GROUP_ADD:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->pid, op->pid_len);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        break;
    case RG_OP_GROUP_DEL:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->pid, op->pid_len);
        rg_wbuf_u8(w, op->flag ? 1 : 0);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        break;
    case RG_OP_META_PUT:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        rg_wbuf_u8(w, op->flag ? 1 : 0);
        break;
    case RG_OP_META_CAS:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_u8(w, op->cas_mode);
        rg_wbuf_blob(w, op->expect, op->expect_len);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        break;
    case RG_OP_SET_META_IF_VERSION:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->pid, op->pid_len);
        rg_wbuf_u64(w, op->version);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        break;
    case RG_OP_READ_ENTRY:
        rg_wbuf_blob(w, op->key, op->key_len);
        break;
    case RG_OP_REGISTER_MANY:
    case RG_OP_UNREGISTER_MANY:
        rg_wbuf_u32(w, op->count);
        rg_wbuf_put(w, op->items, op->items_len);
        break;
    case RG_OP_UNREGISTER_IF_OWNER:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->pid, op->pid_len);
        break;
    case RG_OP_SET_META:
        rg_wbuf_blob(w, op->key, op->key_len);
        rg_wbuf_blob(w, op->meta, op->meta_len);
        break;
    case RG_OP_PURGE_NODE:
        rg_wbuf_blob(w, op->pid, op->pid_len);
        rg_wbuf_u8(w, op->any_creation ? 1 : 0);
        rg_wbuf_u32(w, op->creation);
        break;
    case RG_OP_SETTLE:
        rg_wbuf_u64(w, op->below);
        break;
    default:
        break;
    }
}

void rg_entry_begin(struct rg_wbuf *w, size_t *count_off)
{
    rg_wbuf_u8(w, RG_ENTRY_FORMAT);
    *count_off = w->len;
    rg_wbuf_u32(w, 0);
}

bool rg_entry_open(struct rg_rbuf *r, uint32_t *count)
{
    uint8_t format = rg_rbuf_u8(r);
    *count = rg_rbuf_u32(r);
    return rg_rbuf_ok(r) && format == RG_ENTRY_FORMAT;
}

void rg_entry_finish(struct rg_wbuf *w)
{
    static const uint8_t zeros[8] = {0};
    rg_wbuf_put(w, zeros, (8 - w->len % 8) % 8);
}

bool rg_entry_close(struct rg_rbuf *r)
{
    if (!rg_rbuf_ok(r) || r->left >= 8) {
        return false;
    }
    const uint8_t *pad = rg_rbuf_bytes(r, r->left);
    for (size_t i = 0; pad != NULL && i < (size_t)(r->p - pad); i++) {
        if (pad[i] != 0) {
            return false;
        }
    }
    return true;
}
