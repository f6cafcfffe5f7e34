/* libFuzzer target: one member -> daemon frame through the decode path of
 * node.c's on_frame (rg_proto_header, then rg_proto_start for START or
 * rg_proto_ops_count + rg_op_decode in port form for OPS), without the side
 * effects. Besides memory errors (ASan/UBSan) it aborts when a decoded value
 * breaks what the daemon relies on: a START with an empty dir or a reversed
 * port range, an op whose fields are not canonical (a name, and a pid for
 * every kind that has one), a SETTLE with a ref or with below 0, a
 * REGISTER_MANY or UNREGISTER_MANY whose items are not exactly `count`
 * (1..RG_MANY_MAX) canonical ones over its bytes, or an op that does not
 * re-encode to exactly the bytes it was decoded from (which also holds the
 * flag byte of GROUP_DEL and META_PUT to 0 or 1). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "cmd.h"
#include "limits.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_start(struct rg_rbuf *r, size_t len)
{
    struct rg_start s;
    const char *err = NULL;
    char *strings = malloc(len + RG_START_STRINGS);
    if (strings == NULL) {
        return;
    }
    if (rg_proto_start(r, &s, strings, len + RG_START_STRINGS, &err)) {
        if (s.dir[0] == '\0' || strlen(s.dir) > 4096 ||
            strlen(s.bind_host) > 63 || s.port_lo > s.port_hi ||
            s.secret_len > 1024) {
            abort();
        }
    } else if (err == NULL) {
        abort();
    }
    free(strings);
}

/* The kinds whose pid field is a required canonical pid (cmd.h). */
static bool has_pid(uint8_t kind)
{
    return kind == RG_OP_REGISTER || kind == RG_OP_UNREGISTER_IF_OWNER ||
           kind == RG_OP_REGISTER_NEW || kind == RG_OP_SET_META_IF_OWNER ||
           kind == RG_OP_GROUP_ADD || kind == RG_OP_GROUP_DEL ||
           kind == RG_OP_SET_META_IF_VERSION;
}

/* The items of a *_MANY op, as fsm_bulk.c will walk them. */
static void check_items(const struct rg_op *op)
{
    struct rg_rbuf r;
    struct rg_op item;
    struct rg_pid_view v;
    uint32_t n = 0;
    if (op->count == 0 || op->count > RG_MANY_MAX) {
        abort();
    }
    rg_rbuf_init(&r, op->items, op->items_len);
    while (rg_many_next(&r, op->kind, &item)) {
        n++;
        if (!rg_canon_check(item.key, item.key_len) || item.ref != 0) {
            abort();
        }
        if (op->kind == RG_OP_REGISTER_MANY &&
            (item.kind != RG_OP_REGISTER || !rg_canon_pid(item.pid, item.pid_len, &v) ||
             item.meta_len > RG_META_MAX ||
             (item.replace != NULL &&
              !rg_canon_pid(item.replace, item.replace_len, &v)))) {
            abort();
        }
    }
    if (!rg_rbuf_done(&r) || n != op->count) {
        abort();
    }
}

static void check_op(const struct rg_op *op, const uint8_t *from, size_t len)
{
    struct rg_pid_view v;
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_op_encode(&w, op, false);
    if (w.len != len || memcmp(w.data, from, len) != 0) {
        abort();
    }
    rg_wbuf_free(&w);
    if (op->kind == RG_OP_SETTLE) {
        if (op->ref != 0 || op->below == 0) {
            abort();
        }
        return;
    }
    if (op->kind == RG_OP_REGISTER_MANY || op->kind == RG_OP_UNREGISTER_MANY) {
        check_items(op);
        return;
    }
    if (op->kind != RG_OP_PURGE_NODE && !rg_canon_check(op->key, op->key_len)) {
        abort();
    }
    if (has_pid(op->kind) && !rg_canon_pid(op->pid, op->pid_len, &v)) {
        abort();
    }
    if (op->replace != NULL && !rg_canon_pid(op->replace, op->replace_len, &v)) {
        abort();
    }
}

static void check_ops(struct rg_rbuf *r)
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
        check_op(&op, at, (size_t)(r->p - at));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rg_rbuf r;
    uint8_t type;
    const char *err = NULL;
    rg_rbuf_init(&r, data, size);
    if (!rg_proto_header(&r, &type, &err)) {
        if (err == NULL) {
            abort();
        }
        return 0;
    }
    if (type == RG_MSG_START) {
        check_start(&r, size);
    } else if (type == RG_MSG_OPS) {
        check_ops(&r);
    }
    return 0;
}
