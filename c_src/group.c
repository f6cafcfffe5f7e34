/* Duplicate keys; see group.h. */
#include "group.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"

static size_t pair_key(uint8_t *buf, const uint8_t *name, size_t name_len,
                       const uint8_t *pid, size_t pid_len)
{
    memcpy(buf, name, name_len);
    memcpy(buf + name_len, pid, pid_len);
    return name_len + pid_len;
}

bool rg_group_view(const struct rg_entry *e, struct rg_group_view *v)
{
    const uint8_t *key = rg_entry_key(e);
    size_t name_len = rg_canon_prefix(key, e->key_len);
    if (name_len == 0) {
        return false;
    }
    v->name = key;
    v->name_len = name_len;
    v->pid = key + name_len;
    v->pid_len = e->key_len - name_len;
    v->values = rg_entry_meta(e);
    v->values_len = e->meta_len;
    return true;
}

bool rg_group_values_check(const uint8_t *p, size_t n)
{
    struct rg_rbuf r;
    uint32_t len;
    if (n == 0 || n > RG_GROUP_VALUES_MAX) {
        return false;
    }
    rg_rbuf_init(&r, p, n);
    while (r.left > 0) {
        rg_rbuf_blob(&r, RG_META_MAX, &len);
        if (!rg_rbuf_ok(&r)) {
            return false;
        }
    }
    return true;
}

const struct rg_entry *rg_group_get(const struct rg_table *t,
                                    const uint8_t *name, size_t name_len,
                                    const uint8_t *pid, size_t pid_len)
{
    uint8_t key[RG_GROUP_KEY_MAX];
    size_t key_len = pair_key(key, name, name_len, pid, pid_len);
    return rg_table_get(t, key, key_len);
}

int rg_group_put(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *values,
                 size_t values_len)
{
    uint8_t key[RG_GROUP_KEY_MAX];
    size_t key_len = pair_key(key, name, name_len, pid, pid_len);
    return rg_table_put(t, key, key_len, key, 0, values, values_len);
}

int rg_group_add(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *value,
                 size_t value_len)
{
    const struct rg_entry *cur = rg_group_get(t, name, name_len, pid, pid_len);
    size_t old_len = cur != NULL ? cur->meta_len : 0;
    if (old_len + 4 + value_len > RG_GROUP_VALUES_MAX) {
        return RG_GROUP_FULL;
    }
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    if (cur != NULL) {
        rg_wbuf_put(&w, rg_entry_meta(cur), old_len);
    }
    rg_wbuf_blob(&w, value, value_len);
    /* cur is freed by the put: w holds a copy of its values. */
    int rv = w.oom ? -1
                   : rg_group_put(t, name, name_len, pid, pid_len, w.data, w.len);
    rg_wbuf_free(&w);
    return rv == 0 ? RG_GROUP_ADDED : RG_GROUP_NOMEM;
}

/* The values of list p[0..n) that differ from value, into w. */
static void keep_others(struct rg_wbuf *w, const uint8_t *p, size_t n,
                        const uint8_t *value, size_t value_len)
{
    struct rg_rbuf r;
    uint32_t len;
    rg_rbuf_init(&r, p, n);
    while (r.left > 0) {
        const uint8_t *v = rg_rbuf_blob(&r, RG_META_MAX, &len);
        if (!rg_rbuf_ok(&r)) {
            return; /* cannot happen: lists are checked on the way in */
        }
        if (len != value_len || memcmp(v, value, len) != 0) {
            rg_wbuf_blob(w, v, len);
        }
    }
}

int rg_group_del(struct rg_table *t, const uint8_t *name, size_t name_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *value,
                 size_t value_len, bool all, bool *removed)
{
    uint8_t key[RG_GROUP_KEY_MAX];
    size_t key_len = pair_key(key, name, name_len, pid, pid_len);
    const struct rg_entry *cur = rg_table_get(t, key, key_len);
    *removed = false;
    if (cur == NULL) {
        return 0;
    }
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    if (!all) {
        keep_others(&w, rg_entry_meta(cur), cur->meta_len, value, value_len);
    }
    int rv = 0;
    if (w.oom) {
        rv = -1;
    } else if (w.len == 0) {
        *removed = rg_table_del(t, key, key_len);
    } else if (w.len != cur->meta_len) {
        rv = rg_table_put(t, key, key_len, key, 0, w.data, w.len);
        *removed = rv == 0;
    }
    rg_wbuf_free(&w);
    return rv;
}
