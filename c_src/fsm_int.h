/* What fsm.c, fsm_group.c and fsm_snapshot.c share: the effect recorders
 * and small helpers. Not part of the FSM's interface (fsm.h). */
#ifndef RG_FSM_INT_H
#define RG_FSM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm.h"
#include "limits.h"

/* Records a reply if this daemon owes one for op. */
void rg_fsm_reply(struct rg_fsm *f, const struct rg_op *op, uint8_t result,
                  const uint8_t *payload, size_t len);
/* Records a change: kind, then each blob in order. */
void rg_fsm_note(struct rg_fsm *f, uint8_t kind, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen);

static inline bool rg_same_bytes(const uint8_t *a, size_t alen,
                                 const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || __builtin_memcmp(a, b, alen) == 0);
}

/* True when the canonical pid p lives on the node PURGE_NODE op names. */
bool rg_fsm_pid_on_node(const uint8_t *p, size_t len, const struct rg_op *op);

/* fsm.c: REGISTER or REGISTER_NEW of op's name without a reply: the
 * result (OK, NO with the holder copied out), or -1 when memory ran out. */
int rg_fsm_register_one(struct rg_fsm *f, const struct rg_op *op,
                        uint8_t holder[RG_PID_MAX], uint32_t *holder_len);
/* Removes op's name whoever holds it, recording the change; true if it was
 * there. */
bool rg_fsm_unregister_one(struct rg_fsm *f, const struct rg_op *op);

/* fsm_bulk.c: REGISTER_MANY and UNREGISTER_MANY. */
int rg_fsm_register_many(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_unregister_many(struct rg_fsm *f, const struct rg_op *op);

/* fsm_group.c: duplicate keys and registry metadata. */
int rg_fsm_group_add(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_group_del(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_group_purge(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_meta_put(struct rg_fsm *f, const struct rg_op *op);
void rg_fsm_meta_del(struct rg_fsm *f, const struct rg_op *op);
/* META_CAS: compare-and-set of one metadata key (supervision's records). */
int rg_fsm_meta_cas(struct rg_fsm *f, const struct rg_op *op);

#endif
