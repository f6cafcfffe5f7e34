/* What fsm.c, fsm_group.c and fsm_snapshot.c share: the effect recorders
 * and small helpers. Not part of the FSM's interface (fsm.h). */
#ifndef RG_FSM_INT_H
#define RG_FSM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm.h"

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

/* fsm_group.c: duplicate keys and registry metadata. */
int rg_fsm_group_add(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_group_del(struct rg_fsm *f, const struct rg_op *op);
void rg_fsm_group_purge(struct rg_fsm *f, const struct rg_op *op);
int rg_fsm_meta_put(struct rg_fsm *f, const struct rg_op *op);
void rg_fsm_meta_del(struct rg_fsm *f, const struct rg_op *op);

#endif
