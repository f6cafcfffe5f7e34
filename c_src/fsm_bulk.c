/* Bulk operations: REGISTER_MANY and UNREGISTER_MANY, many names in one op
 * and so in one log entry. Each name is handled as its single op would be
 * (REGISTER, UNREGISTER), in order; the changes are the singles' changes,
 * one after the other in one APPLIED frame, which the member applies to
 * its table in one go (regent_mirror). */
#include "fsm_int.h"

/* REGISTER_MANY answers OK with, per name in order,
 * [u8 result][blob holder] (holder empty unless NO). */
int rg_fsm_register_many(struct rg_fsm *f, const struct rg_op *op)
{
    struct rg_rbuf r;
    struct rg_op item;
    struct rg_wbuf answers;
    uint8_t holder[RG_PID_MAX];
    uint32_t holder_len;
    int rv = 0;
    rg_rbuf_init(&r, op->items, op->items_len);
    rg_wbuf_init(&answers);
    while (rv == 0 && rg_many_next(&r, op->kind, &item)) {
        int res = rg_fsm_register_one(f, &item, holder, &holder_len);
        if (res < 0) {
            rv = -1;
        } else {
            rg_wbuf_u8(&answers, (uint8_t)res);
            rg_wbuf_blob(&answers, holder, holder_len);
        }
    }
    if (rv == 0 && !answers.oom) {
        rg_fsm_reply(f, op, RG_RES_OK, answers.data, answers.len);
    }
    rv = rv == 0 && answers.oom ? -1 : rv;
    rg_wbuf_free(&answers);
    return rv;
}

int rg_fsm_unregister_many(struct rg_fsm *f, const struct rg_op *op)
{
    struct rg_rbuf r;
    struct rg_op item;
    rg_rbuf_init(&r, op->items, op->items_len);
    while (rg_many_next(&r, op->kind, &item)) {
        rg_fsm_unregister_one(f, &item);
    }
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}
