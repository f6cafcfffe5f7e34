/* The name table; see table.h. */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define TABLE_MIN_BUCKETS 64u

int rg_table_init(struct rg_table *t, struct rg_sipkey key)
{
    t->buckets = calloc(TABLE_MIN_BUCKETS, sizeof *t->buckets);
    if (t->buckets == NULL) {
        return -1;
    }
    t->mask = TABLE_MIN_BUCKETS - 1;
    t->count = 0;
    t->key = key;
    return 0;
}

void rg_table_clear(struct rg_table *t)
{
    for (size_t i = 0; i <= t->mask; i++) {
        struct rg_entry *e = t->buckets[i];
        while (e != NULL) {
            struct rg_entry *next = e->next;
            free(e);
            e = next;
        }
        t->buckets[i] = NULL;
    }
    t->count = 0;
}

void rg_table_free(struct rg_table *t)
{
    if (t->buckets != NULL) {
        rg_table_clear(t);
        free(t->buckets);
        t->buckets = NULL;
    }
}

static bool entry_is(const struct rg_entry *e, uint64_t h, const uint8_t *key,
                     size_t key_len)
{
    return e->hash == h && e->key_len == key_len &&
           memcmp(e->data, key, key_len) == 0;
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static struct rg_entry **table_slot(const struct rg_table *t, uint64_t h,
                                    const uint8_t *key, size_t key_len)
{
    struct rg_entry **link = &t->buckets[h & t->mask];
    while (*link != NULL && !entry_is(*link, h, key, key_len)) {
        link = &(*link)->next;
    }
    return link;
}

const struct rg_entry *rg_table_get(const struct rg_table *t,
                                    const uint8_t *key, size_t key_len)
{
    uint64_t h = rg_siphash(&t->key, key, key_len);
    return *table_slot(t, h, key, key_len);
}

/* Doubles the bucket array; on allocation failure the table just stays
 * more loaded than intended, which is slower but correct. */
static void table_grow(struct rg_table *t)
{
    size_t n = (t->mask + 1) * 2;
    struct rg_entry **b = calloc(n, sizeof *b);
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        struct rg_entry *e = t->buckets[i];
        while (e != NULL) {
            struct rg_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
}

int rg_table_put(struct rg_table *t, const uint8_t *key, size_t key_len,
                 const uint8_t *pid, size_t pid_len, const uint8_t *meta,
                 size_t meta_len)
{
    uint64_t h = rg_siphash(&t->key, key, key_len);
    struct rg_entry *e = malloc(sizeof *e + key_len + pid_len + meta_len);
    if (e == NULL) {
        return -1;
    }
    e->hash = h;
    e->version = 0;
    e->key_len = (uint32_t)key_len;
    e->pid_len = (uint32_t)pid_len;
    e->meta_len = (uint32_t)meta_len;
    memcpy(e->data, key, key_len);
    memcpy(e->data + key_len, pid, pid_len);
    if (meta_len > 0) {
        memcpy(e->data + key_len + pid_len, meta, meta_len);
    }
    struct rg_entry **link = table_slot(t, h, key, key_len);
    if (*link != NULL) { /* replace in place */
        e->next = (*link)->next;
        free(*link);
        *link = e;
        return 0;
    }
    e->next = NULL;
    *link = e;
    t->count++;
    if (t->count > t->mask + 1) {
        table_grow(t);
    }
    return 0;
}

void rg_table_set_version(struct rg_table *t, const uint8_t *key,
                          size_t key_len, uint64_t version)
{
    uint64_t h = rg_siphash(&t->key, key, key_len);
    struct rg_entry *e = *table_slot(t, h, key, key_len);
    if (e != NULL) {
        e->version = version;
    }
}

bool rg_table_del(struct rg_table *t, const uint8_t *key, size_t key_len)
{
    uint64_t h = rg_siphash(&t->key, key, key_len);
    struct rg_entry **link = table_slot(t, h, key, key_len);
    struct rg_entry *e = *link;
    if (e == NULL) {
        return false;
    }
    *link = e->next;
    free(e);
    t->count--;
    return true;
}

void rg_table_visit(struct rg_table *t, rg_table_visit_fn fn, void *arg)
{
    for (size_t i = 0; i <= t->mask; i++) {
        struct rg_entry **link = &t->buckets[i];
        while (*link != NULL) {
            struct rg_entry *e = *link;
            if (fn(arg, e)) {
                *link = e->next;
                free(e);
                t->count--;
            } else {
                link = &e->next;
            }
        }
    }
}

static int entry_cmp(const void *a, const void *b)
{
    const struct rg_entry *x = *(const struct rg_entry *const *)a;
    const struct rg_entry *y = *(const struct rg_entry *const *)b;
    size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->data, y->data, m);
    if (c != 0) {
        return c;
    }
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

const struct rg_entry **rg_table_select_sorted(const struct rg_table *t,
                                               rg_table_pred_fn pred, void *arg,
                                               size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        for (const struct rg_entry *e = t->buckets[i]; e != NULL; e = e->next) {
            k += pred(arg, e) ? 1 : 0;
        }
    }
    *n = k;
    if (k == 0) {
        return NULL;
    }
    const struct rg_entry **v = malloc(k * sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        for (const struct rg_entry *e = t->buckets[i]; e != NULL; e = e->next) {
            if (pred(arg, e)) {
                v[k++] = e;
            }
        }
    }
    qsort(v, k, sizeof *v, entry_cmp);
    return v;
}

const struct rg_entry **rg_table_sorted(const struct rg_table *t, size_t *n)
{
    *n = t->count;
    if (t->count == 0) {
        return NULL;
    }
    const struct rg_entry **v = malloc(t->count * sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        for (const struct rg_entry *e = t->buckets[i]; e != NULL; e = e->next) {
            v[k++] = e;
        }
    }
    qsort(v, k, sizeof *v, entry_cmp);
    return v;
}
