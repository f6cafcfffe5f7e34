/* Checker for canonical names; see canon.h and docs/names.md.
 *
 * A recursive descent over an rg_rbuf with an explicit depth bound, so hostile
 * input can neither read out of bounds nor exhaust the stack. Every rule that
 * makes the encoding unique is enforced here: smallest integer form, no
 * negative zero, UTF-8 atoms in their short form when they fit, LIST_EXT for
 * all lists, map keys strictly increasing by their encoded bytes. */
#include "canon.h"

#include <string.h>

#include "buf.h"
#include "limits.h"

static bool check_term(struct rg_rbuf *r, unsigned depth);

/* Well-formed UTF-8 without overlongs or surrogates; counts code points. */
static bool utf8_valid(const uint8_t *s, size_t n, size_t *chars)
{
    size_t i = 0;
    size_t count = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t more;
        uint32_t cp;
        if (c < 0x80) {
            more = 0;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (more > n - i - 1) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[more] || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += more + 1;
        count++;
    }
    *chars = count;
    return true;
}

/* The tag has been read. Erlang atoms hold at most 255 characters. */
static bool check_atom_body(struct rg_rbuf *r, uint8_t tag)
{
    size_t len = tag == RG_ETF_SMALL_ATOM_UTF8 ? rg_rbuf_u8(r) : rg_rbuf_u16(r);
    const uint8_t *s = rg_rbuf_bytes(r, len);
    size_t chars = 0;
    if (s == NULL || !utf8_valid(s, len, &chars) || chars > 255) {
        return false;
    }
    return tag == RG_ETF_SMALL_ATOM_UTF8 || len > 255;
}

static bool check_atom(struct rg_rbuf *r)
{
    uint8_t tag = rg_rbuf_u8(r);
    if (tag != RG_ETF_SMALL_ATOM_UTF8 && tag != RG_ETF_ATOM_UTF8) {
        return false;
    }
    return check_atom_body(r, tag);
}

static bool check_integer(struct rg_rbuf *r)
{
    int32_t v = (int32_t)rg_rbuf_u32(r);
    return rg_rbuf_ok(r) && (v < 0 || v > 255); /* else SMALL_INTEGER_EXT */
}

static bool check_big(struct rg_rbuf *r)
{
    uint8_t n = rg_rbuf_u8(r);
    uint8_t sign = rg_rbuf_u8(r);
    const uint8_t *d = rg_rbuf_bytes(r, n);
    if (d == NULL || sign > 1 || n < 4 || d[n - 1] == 0) {
        return false;
    }
    if (n > 4) {
        return true;
    }
    /* Four bytes: only values outside the INTEGER_EXT range belong here. */
    uint32_t mag = (uint32_t)d[0] | ((uint32_t)d[1] << 8) |
                   ((uint32_t)d[2] << 16) | ((uint32_t)d[3] << 24);
    return sign == 0 ? mag > 0x7FFFFFFFu : mag > 0x80000000u;
}

static bool check_float(struct rg_rbuf *r)
{
    const uint8_t *d = rg_rbuf_bytes(r, 8);
    static const uint8_t neg_zero[8] = {0x80, 0, 0, 0, 0, 0, 0, 0};
    if (d == NULL || memcmp(d, neg_zero, 8) == 0) {
        return false;
    }
    /* Erlang has no NaN or infinity. */
    return (d[0] & 0x7F) != 0x7F || (d[1] & 0xF0) != 0xF0;
}

static bool check_bits(struct rg_rbuf *r)
{
    uint32_t len = rg_rbuf_u32(r);
    uint8_t bits = rg_rbuf_u8(r);
    const uint8_t *d = rg_rbuf_bytes(r, len);
    if (d == NULL || len == 0 || bits < 1 || bits > 7) {
        return false;
    }
    return (d[len - 1] & ((1u << (8 - bits)) - 1)) == 0;
}

static bool check_elements(struct rg_rbuf *r, uint32_t n, unsigned depth)
{
    if (n > r->left) { /* every element takes at least one byte */
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!check_term(r, depth + 1)) {
            return false;
        }
    }
    return true;
}

static bool check_list(struct rg_rbuf *r, unsigned depth)
{
    uint32_t n = rg_rbuf_u32(r);
    if (n == 0 || !check_elements(r, n, depth)) {
        return false;
    }
    /* The tail: [] for a proper list, any non-list term otherwise. */
    if (r->left == 0) {
        return false;
    }
    uint8_t tail_tag = r->p[0];
    if (tail_tag == RG_ETF_LIST) {
        return false;
    }
    return check_term(r, depth + 1);
}

/* Map keys must be strictly increasing as byte strings (memcmp order, a
 * shorter prefix first), which also rules out duplicates. */
static bool check_map(struct rg_rbuf *r, unsigned depth)
{
    uint32_t n = rg_rbuf_u32(r);
    if (n > r->left / 2) {
        return false;
    }
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *key = r->p;
        if (!check_term(r, depth + 1)) {
            return false;
        }
        size_t key_len = (size_t)(r->p - key);
        if (prev != NULL) {
            size_t m = prev_len < key_len ? prev_len : key_len;
            int c = memcmp(prev, key, m);
            if (c > 0 || (c == 0 && prev_len >= key_len)) {
                return false;
            }
        }
        prev = key;
        prev_len = key_len;
        if (!check_term(r, depth + 1)) {
            return false;
        }
    }
    return true;
}

static bool check_pid_body(struct rg_rbuf *r)
{
    if (!check_atom(r)) {
        return false;
    }
    rg_rbuf_bytes(r, 12); /* id, serial, creation */
    return rg_rbuf_ok(r);
}

static bool check_ref_body(struct rg_rbuf *r)
{
    uint16_t n = rg_rbuf_u16(r);
    if (n < 1 || n > 5 || !check_atom(r)) {
        return false;
    }
    rg_rbuf_bytes(r, 4 + 4 * (size_t)n); /* creation, ids */
    return rg_rbuf_ok(r);
}

static bool check_port_body(struct rg_rbuf *r)
{
    if (!check_atom(r)) {
        return false;
    }
    rg_rbuf_bytes(r, 12); /* 64-bit id, creation */
    return rg_rbuf_ok(r);
}

static bool check_term(struct rg_rbuf *r, unsigned depth)
{
    if (depth > RG_TERM_DEPTH) {
        return false;
    }
    uint8_t tag = rg_rbuf_u8(r);
    if (!rg_rbuf_ok(r)) {
        return false;
    }
    switch (tag) {
    case RG_ETF_SMALL_INTEGER:
        return rg_rbuf_bytes(r, 1) != NULL;
    case RG_ETF_INTEGER:
        return check_integer(r);
    case RG_ETF_SMALL_BIG:
        return check_big(r);
    case RG_ETF_NEW_FLOAT:
        return check_float(r);
    case RG_ETF_SMALL_ATOM_UTF8:
    case RG_ETF_ATOM_UTF8:
        return check_atom_body(r, tag);
    case RG_ETF_BINARY:
        rg_rbuf_bytes(r, rg_rbuf_u32(r));
        return rg_rbuf_ok(r);
    case RG_ETF_BIT_BINARY:
        return check_bits(r);
    case RG_ETF_SMALL_TUPLE:
        return check_elements(r, rg_rbuf_u8(r), depth);
    case RG_ETF_LARGE_TUPLE: {
        uint32_t n = rg_rbuf_u32(r);
        return n > 255 && check_elements(r, n, depth);
    }
    case RG_ETF_NIL:
        return true;
    case RG_ETF_LIST:
        return check_list(r, depth);
    case RG_ETF_MAP:
        return check_map(r, depth);
    case RG_ETF_NEW_PID:
        return check_pid_body(r);
    case RG_ETF_NEWER_REFERENCE:
        return check_ref_body(r);
    case RG_ETF_V4_PORT:
        return check_port_body(r);
    default:
        return false;
    }
}

bool rg_canon_check(const uint8_t *p, size_t n)
{
    struct rg_rbuf r;
    if (n == 0 || n > RG_NAME_MAX) {
        return false;
    }
    rg_rbuf_init(&r, p, n);
    return check_term(&r, 0) && rg_rbuf_done(&r);
}

size_t rg_canon_prefix(const uint8_t *p, size_t n)
{
    struct rg_rbuf r;
    rg_rbuf_init(&r, p, n);
    if (!check_term(&r, 0) || !rg_rbuf_ok(&r) || n - r.left > RG_NAME_MAX) {
        return 0;
    }
    return n - r.left;
}

bool rg_canon_pid(const uint8_t *p, size_t n, struct rg_pid_view *v)
{
    struct rg_rbuf r;
    if (n > RG_PID_MAX) {
        return false;
    }
    rg_rbuf_init(&r, p, n);
    if (rg_rbuf_u8(&r) != RG_ETF_NEW_PID) {
        return false;
    }
    uint8_t atag = rg_rbuf_u8(&r);
    if (atag != RG_ETF_SMALL_ATOM_UTF8 && atag != RG_ETF_ATOM_UTF8) {
        return false;
    }
    size_t len = atag == RG_ETF_SMALL_ATOM_UTF8 ? rg_rbuf_u8(&r) : rg_rbuf_u16(&r);
    const uint8_t *node = rg_rbuf_bytes(&r, len);
    size_t chars = 0;
    if (node == NULL || !utf8_valid(node, len, &chars) || chars > 255 ||
        (atag == RG_ETF_ATOM_UTF8 && len <= 255)) {
        return false;
    }
    rg_rbuf_bytes(&r, 8); /* id, serial */
    v->node = node;
    v->node_len = len;
    v->creation = rg_rbuf_u32(&r);
    return rg_rbuf_done(&r);
}
