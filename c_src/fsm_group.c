/* The FSM's ops on its duplicate-key table (group.h) and on the registry's
 * metadata table; see fsm.h for the effects they record. */
#include "fsm_int.h"

#include <stdlib.h>

#include "group.h"

int rg_fsm_group_add(struct rg_fsm *f, const struct rg_op *op)
{
    int rv = rg_group_add(&f->groups, op->key, op->key_len, op->pid,
                          op->pid_len, op->meta, op->meta_len);
    if (rv == RG_GROUP_NOMEM) {
        return -1;
    }
    if (rv == RG_GROUP_FULL) {
        rg_fsm_reply(f, op, RG_RES_NO, NULL, 0);
        return 0;
    }
    rg_wbuf_u8(&f->changes, RG_CHANGE_GROUP_ADD);
    rg_wbuf_blob(&f->changes, op->key, op->key_len);
    rg_wbuf_blob(&f->changes, op->pid, op->pid_len);
    rg_wbuf_blob(&f->changes, op->meta, op->meta_len);
    f->n_changes++;
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}

int rg_fsm_group_del(struct rg_fsm *f, const struct rg_op *op)
{
    bool removed;
    if (rg_group_del(&f->groups, op->key, op->key_len, op->pid, op->pid_len,
                     op->meta, op->meta_len, op->flag, &removed) != 0) {
        return -1;
    }
    if (removed) {
        rg_wbuf_u8(&f->changes, RG_CHANGE_GROUP_DEL);
        rg_wbuf_blob(&f->changes, op->key, op->key_len);
        rg_wbuf_blob(&f->changes, op->pid, op->pid_len);
        rg_wbuf_u8(&f->changes, op->flag ? 1 : 0);
        /* With `all' the value says nothing: the change carries none. */
        rg_wbuf_blob(&f->changes, op->meta, op->flag ? 0 : op->meta_len);
        f->n_changes++;
    }
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}

static bool purged(void *arg, const struct rg_entry *e)
{
    struct rg_group_view v;
    return rg_group_view(e, &v) && rg_fsm_pid_on_node(v.pid, v.pid_len, arg);
}

/* In key (name, pid) order, the same on every server: see apply_purge. */
int rg_fsm_group_purge(struct rg_fsm *f, const struct rg_op *op)
{
    size_t n;
    const struct rg_entry **v = rg_table_select_sorted(&f->groups, purged,
                                                       (void *)op, &n);
    if (v == NULL && n != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct rg_group_view g;
        rg_group_view(v[i], &g); /* holds: purged() checked it */
        rg_fsm_note(f, RG_CHANGE_GROUP_DEL_PURGE, g.name, g.name_len, g.pid,
                    g.pid_len);
        rg_table_del(&f->groups, rg_entry_key(v[i]), v[i]->key_len);
    }
    free(v);
    return 0;
}

int rg_fsm_meta_put(struct rg_fsm *f, const struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->meta, op->key, op->key_len);
    bool unchanged = cur != NULL &&
                     (op->flag || rg_same_bytes(rg_entry_meta(cur), cur->meta_len,
                                                op->meta, op->meta_len));
    if (!unchanged) {
        if (rg_table_put(&f->meta, op->key, op->key_len, op->key, 0, op->meta,
                         op->meta_len) != 0) {
            return -1;
        }
        rg_fsm_note(f, RG_CHANGE_META_PUT, op->key, op->key_len, op->meta,
                    op->meta_len);
    }
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}

void rg_fsm_meta_del(struct rg_fsm *f, const struct rg_op *op)
{
    if (rg_table_del(&f->meta, op->key, op->key_len)) {
        rg_fsm_note(f, RG_CHANGE_META_DEL, op->key, op->key_len, NULL, 0);
    }
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
}

/* META_CAS: the value changes (or goes) only if it is as the op expects;
 * otherwise NO with the value as it is, or NOT_FOUND when there is none,
 * for the caller's next attempt. */
int rg_fsm_meta_cas(struct rg_fsm *f, const struct rg_op *op)
{
    const struct rg_entry *cur = rg_table_get(&f->meta, op->key, op->key_len);
    bool expect = (op->cas_mode & RG_CAS_EXPECT) != 0;
    bool match = expect ? cur != NULL && rg_same_bytes(rg_entry_meta(cur), cur->meta_len,
                                                       op->expect, op->expect_len)
                        : cur == NULL;
    if (!match) {
        if (cur == NULL) {
            rg_fsm_reply(f, op, RG_RES_NOT_FOUND, NULL, 0);
        } else {
            rg_fsm_reply(f, op, RG_RES_NO, rg_entry_meta(cur), cur->meta_len);
        }
        return 0;
    }
    if (op->cas_mode & RG_CAS_VALUE) {
        if (rg_table_put(&f->meta, op->key, op->key_len, op->key, 0, op->meta,
                         op->meta_len) != 0) {
            return -1;
        }
        rg_fsm_note(f, RG_CHANGE_META_PUT, op->key, op->key_len, op->meta,
                    op->meta_len);
    } else if (rg_table_del(&f->meta, op->key, op->key_len)) {
        rg_fsm_note(f, RG_CHANGE_META_DEL, op->key, op->key_len, NULL, 0);
    }
    rg_fsm_reply(f, op, RG_RES_OK, NULL, 0);
    return 0;
}
