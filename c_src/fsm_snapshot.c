/* The FSM's snapshots: every table and the de-duplication set in one
 * deterministic byte string; see fsm.h for the layout. */
#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "group.h"
#include "limits.h"

/* "RGS4": RGS3 had no versions, RGS2 no duplicate-key or metadata
 * tables, RGS1 no de-duplication section. */
#define SNAPSHOT_MAGIC 0x52475334u

enum table_kind { NAMES, GROUPS, META };

/* One table, sorted by key: [u64 n] then n rows of three blobs, and for a
 * name its version (u64). A group row is (name, pid, values), a metadata
 * row (key, "", value). */
static int write_table(struct rg_wbuf *w, const struct rg_table *t,
                       enum table_kind kind)
{
    bool groups = kind == GROUPS;
    size_t n;
    const struct rg_entry **v = rg_table_sorted(t, &n);
    if (v == NULL && n != 0) {
        return -1;
    }
    rg_wbuf_u64(w, n);
    for (size_t i = 0; i < n; i++) {
        struct rg_group_view g = {
            rg_entry_key(v[i]), v[i]->key_len, rg_entry_pid(v[i]),
            v[i]->pid_len, rg_entry_meta(v[i]), v[i]->meta_len};
        if (groups && !rg_group_view(v[i], &g)) {
            free(v);
            return -1;
        }
        rg_wbuf_blob(w, g.name, g.name_len);
        rg_wbuf_blob(w, g.pid, g.pid_len);
        rg_wbuf_blob(w, g.values, g.values_len);
        if (kind == NAMES) {
            rg_wbuf_u64(w, v[i]->version);
        }
    }
    free(v);
    return 0;
}

int rg_fsm_snapshot(const struct rg_fsm *f, uint8_t **out, size_t *len)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u32(&w, SNAPSHOT_MAGIC);
    rg_wbuf_u64(&w, f->version_seq);
    if (write_table(&w, &f->table, NAMES) != 0 ||
        write_table(&w, &f->groups, GROUPS) != 0 ||
        write_table(&w, &f->meta, META) != 0) {
        rg_wbuf_free(&w);
        return -1;
    }
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

/* The names part of a snapshot into t (initialised by the caller); every
 * version is 1 to the snapshot's last one. */
static int read_names(struct rg_rbuf *r, struct rg_table *t, uint64_t seq)
{
    uint64_t n = rg_rbuf_u64(r);
    if (!rg_rbuf_ok(r) || n > r->left / 20) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct rg_op row;
        bool ok = read_row(r, &row);
        uint64_t version = rg_rbuf_u64(r);
        if (!ok || !rg_rbuf_ok(r) || version == 0 || version > seq ||
            rg_table_get(t, row.key, row.key_len) != NULL ||
            rg_table_put(t, row.key, row.key_len, row.pid, row.pid_len,
                         row.meta, row.meta_len) != 0) {
            return -1;
        }
        rg_table_set_version(t, row.key, row.key_len, version);
    }
    return 0;
}

static int read_groups(struct rg_rbuf *r, struct rg_table *t)
{
    uint64_t n = rg_rbuf_u64(r);
    if (!rg_rbuf_ok(r) || n > r->left / 12) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct rg_op row;
        struct rg_pid_view v;
        row.key = rg_rbuf_blob(r, RG_NAME_MAX, &row.key_len);
        row.pid = rg_rbuf_blob(r, RG_PID_MAX, &row.pid_len);
        row.meta = rg_rbuf_blob(r, RG_GROUP_VALUES_MAX, &row.meta_len);
        if (!rg_rbuf_ok(r) || !rg_canon_check(row.key, row.key_len) ||
            !rg_canon_pid(row.pid, row.pid_len, &v) ||
            !rg_group_values_check(row.meta, row.meta_len) ||
            rg_group_get(t, row.key, row.key_len, row.pid, row.pid_len) != NULL ||
            rg_group_put(t, row.key, row.key_len, row.pid, row.pid_len,
                         row.meta, row.meta_len) != 0) {
            return -1;
        }
    }
    return 0;
}

static int read_meta(struct rg_rbuf *r, struct rg_table *t)
{
    uint64_t n = rg_rbuf_u64(r);
    if (!rg_rbuf_ok(r) || n > r->left / 12) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct rg_op row;
        row.key = rg_rbuf_blob(r, RG_NAME_MAX, &row.key_len);
        row.pid = rg_rbuf_blob(r, 0, &row.pid_len);
        row.meta = rg_rbuf_blob(r, RG_META_MAX, &row.meta_len);
        if (!rg_rbuf_ok(r) || !rg_canon_check(row.key, row.key_len) ||
            rg_table_get(t, row.key, row.key_len) != NULL ||
            rg_table_put(t, row.key, row.key_len, row.key, 0, row.meta,
                         row.meta_len) != 0) {
            return -1;
        }
    }
    return 0;
}

struct fsm_tables {
    uint64_t version_seq;
    struct rg_table names, groups, meta;
    struct rg_dedup dedup;
};

static void tables_free(struct fsm_tables *s)
{
    rg_table_free(&s->names);
    rg_table_free(&s->groups);
    rg_table_free(&s->meta);
    rg_dedup_free(&s->dedup);
}

static int tables_read(struct rg_rbuf *r, struct fsm_tables *s)
{
    bool magic = rg_rbuf_u32(r) == SNAPSHOT_MAGIC;
    s->version_seq = rg_rbuf_u64(r);
    return magic && rg_rbuf_ok(r) &&
                   read_names(r, &s->names, s->version_seq) == 0 &&
                   read_groups(r, &s->groups) == 0 &&
                   read_meta(r, &s->meta) == 0 &&
                   rg_dedup_read(&s->dedup, r) == 0 && rg_rbuf_done(r)
               ? 0
               : -1;
}

/* Both parts are read into new structures and swapped in only if the
 * whole snapshot is valid. */
int rg_fsm_restore(struct rg_fsm *f, const uint8_t *p, size_t len)
{
    struct rg_rbuf r;
    struct fsm_tables s;
    memset(&s, 0, sizeof s); /* rg_table_free skips a table never initialised */
    rg_rbuf_init(&r, p, len);
    rg_dedup_init(&s.dedup);
    if (rg_table_init(&s.names, f->table.key) != 0 ||
        rg_table_init(&s.groups, f->table.key) != 0 ||
        rg_table_init(&s.meta, f->table.key) != 0 || tables_read(&r, &s) != 0) {
        tables_free(&s);
        return -1;
    }
    rg_table_free(&f->table);
    rg_table_free(&f->groups);
    rg_table_free(&f->meta);
    rg_dedup_free(&f->dedup);
    f->table = s.names;
    f->groups = s.groups;
    f->meta = s.meta;
    f->dedup = s.dedup;
    f->version_seq = s.version_seq;
    f->restored = true;
    return 0;
}
