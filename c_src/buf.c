/* Byte buffers; see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void rg_wbuf_init(struct rg_wbuf *w)
{
    memset(w, 0, sizeof *w);
}

void rg_wbuf_free(struct rg_wbuf *w)
{
    free(w->data);
    rg_wbuf_init(w);
}

void rg_wbuf_reset(struct rg_wbuf *w)
{
    w->len = 0;
    w->oom = false;
}

uint8_t *rg_wbuf_take(struct rg_wbuf *w, size_t *len)
{
    uint8_t *d = w->data;
    *len = w->len;
    rg_wbuf_init(w);
    return d;
}

bool rg_wbuf_reserve(struct rg_wbuf *w, size_t n)
{
    if (w->oom) {
        return false;
    }
    if (n <= w->cap - w->len) {
        return true;
    }
    size_t cap = w->cap ? w->cap : 64;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(w->data, cap);
    if (d == NULL) {
        w->oom = true;
        return false;
    }
    w->data = d;
    w->cap = cap;
    return true;
}

void rg_wbuf_put(struct rg_wbuf *w, const void *p, size_t n)
{
    if (n == 0 || !rg_wbuf_reserve(w, n)) {
        return;
    }
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

void rg_wbuf_u8(struct rg_wbuf *w, uint8_t v)
{
    rg_wbuf_put(w, &v, 1);
}

void rg_wbuf_u16(struct rg_wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    rg_wbuf_put(w, b, 2);
}

void rg_wbuf_u32(struct rg_wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    rg_wbuf_put(w, b, 4);
}

void rg_wbuf_u64(struct rg_wbuf *w, uint64_t v)
{
    rg_wbuf_u32(w, (uint32_t)(v >> 32));
    rg_wbuf_u32(w, (uint32_t)v);
}

void rg_wbuf_blob(struct rg_wbuf *w, const void *p, size_t n)
{
    rg_wbuf_u32(w, (uint32_t)n);
    rg_wbuf_put(w, p, n);
}

void rg_wbuf_patch_u32(struct rg_wbuf *w, size_t off, uint32_t v)
{
    if (w->oom || off > w->len || w->len - off < 4) { /* no off + 4 wrap */
        return;
    }
    w->data[off] = (uint8_t)(v >> 24);
    w->data[off + 1] = (uint8_t)(v >> 16);
    w->data[off + 2] = (uint8_t)(v >> 8);
    w->data[off + 3] = (uint8_t)v;
}

void rg_rbuf_init(struct rg_rbuf *r, const void *p, size_t n)
{
    r->p = p;
    r->left = n;
    r->failed = false;
}

bool rg_rbuf_ok(const struct rg_rbuf *r)
{
    return !r->failed;
}

bool rg_rbuf_done(const struct rg_rbuf *r)
{
    return !r->failed && r->left == 0;
}

const uint8_t *rg_rbuf_bytes(struct rg_rbuf *r, size_t n)
{
    if (r->failed || n > r->left) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t rg_rbuf_u8(struct rg_rbuf *r)
{
    const uint8_t *p = rg_rbuf_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t rg_rbuf_u16(struct rg_rbuf *r)
{
    const uint8_t *p = rg_rbuf_bytes(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t rg_rbuf_u32(struct rg_rbuf *r)
{
    const uint8_t *p = rg_rbuf_bytes(r, 4);
    if (p == NULL) {
        return 0;
    }
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

uint64_t rg_rbuf_u64(struct rg_rbuf *r)
{
    uint64_t hi = rg_rbuf_u32(r);
    uint64_t lo = rg_rbuf_u32(r);
    /* A short read yields 0 like the other widths, not the high half alone
     * (node_batch.c answers a bad op only when its ref read as non-zero). */
    return rg_rbuf_ok(r) ? (hi << 32) | lo : 0;
}

const uint8_t *rg_rbuf_blob(struct rg_rbuf *r, size_t max, uint32_t *len)
{
    uint32_t n = rg_rbuf_u32(r);
    if (r->failed || n > max) {
        r->failed = true;
        *len = 0;
        return NULL;
    }
    *len = n;
    return rg_rbuf_bytes(r, n);
}
