/* Byte buffers: a growable writer and a bounds-checked reader.
 *
 * Every decoder in regentd reads through rg_rbuf, which never reads past its
 * end: a short or malformed input makes the reader "failed" (sticky), and all
 * later reads return zeroes. Callers check rg_rbuf_ok() once at the end of a
 * decode instead of after every field. All integers are big-endian. */
#ifndef RG_BUF_H
#define RG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rg_wbuf {
    uint8_t *data; /* owned; malloc'd */
    size_t len;
    size_t cap;
    bool oom; /* sticky: an allocation failed, contents are incomplete */
};

void rg_wbuf_init(struct rg_wbuf *w);
void rg_wbuf_free(struct rg_wbuf *w);
void rg_wbuf_reset(struct rg_wbuf *w);
/* Hands the bytes to the caller (who must free() them) and empties w. */
uint8_t *rg_wbuf_take(struct rg_wbuf *w, size_t *len);
/* Makes room for n more bytes; false (and oom set) if memory ran out. */
bool rg_wbuf_reserve(struct rg_wbuf *w, size_t n);
void rg_wbuf_put(struct rg_wbuf *w, const void *p, size_t n);
void rg_wbuf_u8(struct rg_wbuf *w, uint8_t v);
void rg_wbuf_u16(struct rg_wbuf *w, uint16_t v);
void rg_wbuf_u32(struct rg_wbuf *w, uint32_t v);
void rg_wbuf_u64(struct rg_wbuf *w, uint64_t v);
/* A u32 length followed by the bytes. */
void rg_wbuf_blob(struct rg_wbuf *w, const void *p, size_t n);
/* Overwrites 4 bytes at offset (for lengths/counts known only at the end). */
void rg_wbuf_patch_u32(struct rg_wbuf *w, size_t off, uint32_t v);

struct rg_rbuf {
    const uint8_t *p;
    size_t left;
    bool failed;
};

void rg_rbuf_init(struct rg_rbuf *r, const void *p, size_t n);
bool rg_rbuf_ok(const struct rg_rbuf *r);
bool rg_rbuf_done(const struct rg_rbuf *r); /* ok and nothing left */
uint8_t rg_rbuf_u8(struct rg_rbuf *r);
uint16_t rg_rbuf_u16(struct rg_rbuf *r);
uint32_t rg_rbuf_u32(struct rg_rbuf *r);
uint64_t rg_rbuf_u64(struct rg_rbuf *r);
/* Returns a pointer to the next n bytes (inside the input) or NULL. */
const uint8_t *rg_rbuf_bytes(struct rg_rbuf *r, size_t n);
/* A u32 length, at most max, then that many bytes. */
const uint8_t *rg_rbuf_blob(struct rg_rbuf *r, size_t max, uint32_t *len);

#endif
