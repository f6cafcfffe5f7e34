/* Unit tests for canon.c, the checker of canonical names.
 * Covers every rule of the canonical subset of the external term format
 * (no 131 version byte): the one integer form per value range (SMALL_INTEGER
 * 0..255, INTEGER other int32, SMALL_BIG outside int32 with no trailing zero
 * byte), NEW_FLOAT without -0.0/NaN/inf, UTF-8 atoms in their short form when
 * they fit (<= 255 characters, well-formed UTF-8), BINARY, BIT_BINARY with
 * 1..7 bits and zero padding, SMALL/LARGE tuples, NIL, LIST_EXT only (no
 * STRING_EXT, no empty list, no list tail), maps with strictly increasing
 * encoded keys, NEW_PID/NEWER_REFERENCE/V4_PORT, nesting depth <= 64,
 * <= 1024 bytes and exactly one term. Byte strings marked "OTP" were printed
 * by term_to_binary(T, [{minor_version, 2}]) on OTP 25. Then rg_canon_pid,
 * rg_canon_prefix (the canonical term in front of other bytes, as the group
 * table splits its keys), and a 200k-input robustness loop (random and
 * mutated byte strings, fixed seed) with cross-checks that must hold for any
 * input, the prefix's among them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"
#include "limits.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------ */

/* Checks against an exact-size heap copy, so an overread trips ASan. */
static bool canon_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(d, p, n);
    }
    bool ok = rg_canon_check(d, n);
    free(d);
    return ok;
}

/* rg_canon_prefix on an exact-size heap copy, for the same reason. */
static size_t prefix_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(d, p, n);
    }
    size_t k = rg_canon_prefix(d, n);
    free(d);
    return k;
}

static void expect_canon(bool want, const uint8_t *p, size_t n, int line)
{
    bool got = canon_exact(p, n);
    CHECK(got == want);
    if (got != want) {
        fprintf(stderr, "  term at line %d: expected %s\n", line,
                want ? "accept" : "reject");
    }
}

#define ACCEPT(...)                                                        \
    do {                                                                   \
        static const uint8_t b_[] = {__VA_ARGS__};                         \
        expect_canon(true, b_, sizeof b_, __LINE__);                       \
    } while (0)
#define REJECT(...)                                                        \
    do {                                                                   \
        static const uint8_t b_[] = {__VA_ARGS__};                         \
        expect_canon(false, b_, sizeof b_, __LINE__);                      \
    } while (0)
#define EXPECT_W(want, w) expect_canon(want, (w)->data, (w)->len, __LINE__)

#define NONODE 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's', 't'

/* An atom of `chars` copies of the UTF-8 sequence `ch`. */
static void put_atom_rep(struct rg_wbuf *w, uint8_t tag, const char *ch,
                         size_t chars)
{
    size_t n = strlen(ch) * chars;
    rg_wbuf_u8(w, tag);
    if (tag == RG_ETF_SMALL_ATOM_UTF8) {
        rg_wbuf_u8(w, (uint8_t)n);
    } else {
        rg_wbuf_u16(w, (uint16_t)n);
    }
    for (size_t i = 0; i < chars; i++) {
        rg_wbuf_put(w, ch, strlen(ch));
    }
}

static void put_binary(struct rg_wbuf *w, size_t n)
{
    rg_wbuf_u8(w, RG_ETF_BINARY);
    rg_wbuf_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        rg_wbuf_u8(w, (uint8_t)i);
    }
}


/* ---- scalars ------------------------------------------------------------ */

static void test_integers(void)
{
    ACCEPT(97, 0);
    ACCEPT(97, 1);                       /* OTP: 1 */
    ACCEPT(97, 255);                     /* OTP: 255 */
    ACCEPT(98, 0, 0, 1, 0);              /* OTP: 256 */
    ACCEPT(98, 255, 255, 255, 255);      /* OTP: -1 */
    ACCEPT(98, 127, 255, 255, 255);      /* OTP: 2147483647 */
    ACCEPT(98, 128, 0, 0, 0);            /* OTP: -2147483648 */
    ACCEPT(110, 4, 0, 0, 0, 0, 128);     /* OTP: 2147483648 */
    ACCEPT(110, 4, 1, 1, 0, 0, 128);     /* OTP: -2147483649 */
    ACCEPT(110, 4, 0, 255, 255, 255, 255); /* 4294967295 */
    ACCEPT(110, 5, 0, 0, 0, 0, 0, 1);    /* OTP: 4294967296 */
    ACCEPT(110, 5, 1, 0, 0, 0, 0, 1);    /* OTP: -4294967296 */
    ACCEPT(110, 13, 0, 210, 10, 63, 78, 238, 224, 115, 195, 246, 15, 233, 142,
           1); /* OTP: 123456789012345678901234567890 */

    REJECT(97);                          /* truncated */
    REJECT(98, 0, 0, 0, 0);              /* 0 belongs in SMALL_INTEGER */
    REJECT(98, 0, 0, 0, 5);
    REJECT(98, 0, 0, 0, 255);
    REJECT(98, 0, 0, 1);                 /* truncated */
    REJECT(110, 4, 0, 255, 255, 255, 127); /* 2^31-1: INTEGER_EXT range */
    REJECT(110, 4, 1, 0, 0, 0, 128);     /* -2^31: INTEGER_EXT range */
    REJECT(110, 4, 1, 1, 0, 0, 0);       /* trailing zero byte */
    REJECT(110, 5, 0, 0, 0, 0, 0, 0);    /* trailing zero byte */
    REJECT(110, 3, 0, 1, 2, 3);          /* fits INTEGER_EXT */
    REJECT(110, 1, 0, 5);
    REJECT(110, 0, 0);                   /* big zero */
    REJECT(110, 0, 1);
    REJECT(110, 5, 2, 0, 0, 0, 0, 1);    /* sign must be 0 or 1 */
    REJECT(110, 8, 0, 1, 2, 3);          /* digits missing */
    REJECT(111, 0, 0, 0, 5, 0, 1, 2, 3, 4, 5); /* LARGE_BIG_EXT */
}

static void test_floats(void)
{
    ACCEPT(70, 63, 248, 0, 0, 0, 0, 0, 0);       /* OTP: 1.5 */
    ACCEPT(70, 191, 248, 0, 0, 0, 0, 0, 0);      /* OTP: -1.5 */
    ACCEPT(70, 0, 0, 0, 0, 0, 0, 0, 0);          /* OTP: 0.0 */
    ACCEPT(70, 126, 55, 228, 60, 136, 0, 117, 156); /* OTP: 1.0e300 */
    ACCEPT(70, 0, 0, 0, 0, 0, 0, 0, 1);          /* smallest subnormal */
    ACCEPT(70, 0x7F, 0xEF, 255, 255, 255, 255, 255, 255); /* max double */

    REJECT(70, 128, 0, 0, 0, 0, 0, 0, 0);        /* OTP: -0.0 */
    REJECT(70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0);    /* +inf */
    REJECT(70, 0xFF, 0xF0, 0, 0, 0, 0, 0, 0);    /* -inf */
    REJECT(70, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0);    /* NaN */
    REJECT(70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 1);    /* NaN */
    REJECT(70, 63, 248, 0, 0, 0, 0, 0);          /* truncated */
    REJECT(99, '1', '.', '5');                   /* FLOAT_EXT (old text) */
}

static void test_atoms(void)
{
    ACCEPT(119, 3, 'f', 'o', 'o');               /* OTP: foo */
    ACCEPT(119, 2, 195, 188);                    /* OTP: 'ü' */
    ACCEPT(119, 0);                              /* '' */
    ACCEPT(119, 4, 0xF0, 0x9F, 0x98, 0x80);      /* U+1F600 */
    ACCEPT(119, 3, 0xEF, 0xBF, 0xBF);            /* U+FFFF */
    ACCEPT(119, 4, 0xF4, 0x8F, 0xBF, 0xBF);      /* U+10FFFF */

    REJECT(100, 0, 3, 'f', 'o', 'o');            /* ATOM_EXT (OTP 25 default) */
    REJECT(115, 3, 'f', 'o', 'o');               /* SMALL_ATOM_EXT */
    REJECT(118, 0, 3, 'f', 'o', 'o');            /* long form for a short atom */
    REJECT(119, 4, 'f', 'o', 'o');               /* truncated */
    REJECT(119);
    REJECT(119, 1, 0xFF);                        /* not UTF-8 */
    REJECT(119, 1, 0x80);                        /* lone continuation */
    REJECT(119, 1, 0xC3);                        /* truncated sequence */
    REJECT(119, 2, 0xC3, 0x41);                  /* bad continuation */
    REJECT(119, 2, 0xC0, 0x80);                  /* overlong NUL */
    REJECT(119, 3, 0xE0, 0x80, 0x80);            /* overlong */
    REJECT(119, 4, 0xF0, 0x80, 0x80, 0x80);      /* overlong */
    REJECT(119, 3, 0xED, 0xA0, 0x80);            /* surrogate U+D800 */
    REJECT(119, 3, 0xED, 0xBF, 0xBF);            /* surrogate U+DFFF */
    REJECT(119, 4, 0xF4, 0x90, 0x80, 0x80);      /* above U+10FFFF */
    REJECT(119, 5, 0xF8, 0x88, 0x80, 0x80, 0x80); /* 5-byte form */

    struct rg_wbuf w;
    rg_wbuf_init(&w);
    put_atom_rep(&w, RG_ETF_SMALL_ATOM_UTF8, "a", 255); /* 255 bytes */
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "a", 255); /* fits the short form */
    EXPECT_W(false, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xC3\xBC", 128); /* 256 bytes */
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xF0\x9F\x98\x80", 100); /* OTP */
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xF0\x9F\x98\x80", 255); /* 1020 B */
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xC3\xBC", 255);
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xC3\xBC", 256); /* 256 chars */
    EXPECT_W(false, &w);
    rg_wbuf_reset(&w);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xE2\x82\xAC", 300); /* 300 chars */
    EXPECT_W(false, &w);
    rg_wbuf_free(&w);
}

static void test_binaries(void)
{
    ACCEPT(109, 0, 0, 0, 0);                     /* OTP: <<>> */
    ACCEPT(109, 0, 0, 0, 6, 104, 195, 169, 108, 108, 111); /* OTP: <<"héllo">> */
    ACCEPT(109, 0, 0, 0, 5, 131, 100, 0, 1, 97); /* OTP: term_to_binary(a) */
    ACCEPT(77, 0, 0, 0, 2, 3, 1, 64);            /* OTP: <<1,2:3>> */
    ACCEPT(77, 0, 0, 0, 1, 1, 0x80);             /* <<1:1>> */
    ACCEPT(77, 0, 0, 0, 1, 7, 0xFE);             /* <<127:7>> */

    REJECT(109, 0, 0, 0, 5, 1, 2);               /* truncated */
    REJECT(109, 0, 0, 0);
    REJECT(109, 0xFF, 0xFF, 0xFF, 0xFF, 1);      /* hostile length */
    REJECT(77, 0, 0, 0, 1, 0, 0);                /* 0 bits */
    REJECT(77, 0, 0, 0, 1, 8, 0xFF);             /* 8 bits: a BINARY_EXT */
    REJECT(77, 0, 0, 0, 1, 3, 0x21);             /* padding bit set */
    REJECT(77, 0, 0, 0, 1, 7, 0x01);             /* padding bit set */
    REJECT(77, 0, 0, 0, 0, 3);                   /* no bytes */
    REJECT(77, 0, 0, 0, 2, 3, 1);                /* truncated */
    REJECT(77, 0, 0, 0, 2);
}

/* ---- containers --------------------------------------------------------- */

static void test_tuples_lists(void)
{
    ACCEPT(104, 0);                              /* {} */
    ACCEPT(104, 2, 119, 1, 97, 119, 1, 98);      /* OTP: {a,b} */
    ACCEPT(104, 3, 119, 5, 'u', 's', 'e', 'r', 's', 109, 0, 0, 0, 5, 'a', 'l',
           'i', 'c', 'e', 97, 42);               /* OTP: {users,<<"alice">>,42} */
    ACCEPT(106);                                 /* OTP: [] */
    ACCEPT(108, 0, 0, 0, 1, 119, 1, 97, 119, 1, 98); /* OTP: [a|b] */
    ACCEPT(108, 0, 0, 0, 1, 104, 2, 119, 1, 'x', 97, 1, 106); /* OTP: [{x,1}] */
    ACCEPT(108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106); /* [1,2,3] */
    ACCEPT(108, 0, 0, 0, 1, 106, 106);           /* [[]] */
    ACCEPT(108, 0, 0, 0, 1, 97, 1, 104, 0);      /* [1|{}] */

    REJECT(104, 3, 97, 1, 97, 2);                /* arity > elements */
    REJECT(104, 1, 97, 1, 97, 2);                /* one term too many */
    REJECT(104);
    REJECT(105, 0, 0, 0, 2, 97, 1, 97, 2);       /* LARGE_TUPLE, small arity */
    REJECT(105, 0, 0, 0, 0);
    REJECT(105, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1);  /* hostile arity */
    REJECT(107, 0, 3, 1, 2, 3);                  /* OTP: [1,2,3] as STRING_EXT */
    REJECT(108, 0, 0, 0, 0, 106);                /* empty LIST_EXT */
    REJECT(108, 0, 0, 0, 1, 97, 1);              /* no tail */
    REJECT(108, 0, 0, 0, 2, 97, 1, 106);         /* too few elements */
    REJECT(108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106); /* list tail */
    REJECT(108, 0xFF, 0xFF, 0xFF, 0xFF, 106, 106);

    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, RG_ETF_LARGE_TUPLE); /* arity 256: LARGE_TUPLE is right */
    rg_wbuf_u32(&w, 256);
    for (int i = 0; i < 256; i++) {
        rg_wbuf_u8(&w, RG_ETF_NIL);
    }
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    rg_wbuf_u8(&w, RG_ETF_SMALL_TUPLE); /* 255 is the last SMALL_TUPLE */
    rg_wbuf_u8(&w, 255);
    for (int i = 0; i < 255; i++) {
        rg_wbuf_u8(&w, RG_ETF_NIL);
    }
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    rg_wbuf_u8(&w, RG_ETF_LARGE_TUPLE);
    rg_wbuf_u32(&w, 255);
    for (int i = 0; i < 255; i++) {
        rg_wbuf_u8(&w, RG_ETF_NIL);
    }
    EXPECT_W(false, &w);
    rg_wbuf_free(&w);
}

static void test_maps(void)
{
    ACCEPT(116, 0, 0, 0, 0);                     /* #{} */
    ACCEPT(116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 98, 97, 2); /* OTP */
    ACCEPT(116, 0, 0, 0, 2, 97, 1, 119, 1, 97, 119, 1, 97, 97, 1); /* OTP */
    /* 256 before -1: byte order, not Erlang term order. */
    ACCEPT(116, 0, 0, 0, 2, 98, 0, 0, 1, 0, 106, 98, 255, 255, 255, 255, 106);
    REJECT(116, 0, 0, 0, 2, 98, 255, 255, 255, 255, 106, 98, 0, 0, 1, 0, 106);
    /* a (97,1) and aa (97,1,...): same first bytes, decided by later ones */
    ACCEPT(116, 0, 0, 0, 2, 119, 1, 'a', 106, 119, 2, 'a', 'a', 106);
    REJECT(116, 0, 0, 0, 2, 119, 2, 'a', 'a', 106, 119, 1, 'a', 106);

    REJECT(116, 0, 0, 0, 2, 119, 1, 98, 97, 2, 119, 1, 97, 97, 1); /* b, a */
    REJECT(116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 97, 97, 2); /* dup */
    REJECT(116, 0, 0, 0, 1, 119, 1, 97);         /* value missing */
    REJECT(116, 0, 0, 0, 2, 119, 1, 97, 97, 1);  /* pair missing */
    REJECT(116, 0xFF, 0xFF, 0xFF, 0xFF, 106, 106);
    REJECT(116, 0, 0, 0);
}

static void test_identifiers(void)
{
    /* OTP: self() in a non-distributed node */
    ACCEPT(88, 119, 13, NONODE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0);
    /* OTP: make_ref() */
    ACCEPT(90, 0, 3, 119, 13, NONODE, 0, 0, 0, 0, 0, 3, 50, 0, 119, 28, 0, 1,
           20, 42, 169, 140);
    ACCEPT(90, 0, 1, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7);
    ACCEPT(90, 0, 5, 119, 1, 'n', 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3,
           3, 4, 4, 4, 4, 5, 5, 5, 5);
    ACCEPT(120, 119, 13, NONODE, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1);
    /* as a name element: {pid} */
    ACCEPT(104, 1, 88, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0);

    REJECT(88, 100, 0, 13, NONODE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0); /* OTP 25 */
    REJECT(88, 119, 13, NONODE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0);     /* short */
    REJECT(88, 118, 0, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0); /* long atom */
    REJECT(88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0);   /* node not an atom */
    REJECT(88, 119, 1, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0); /* bad UTF-8 */
    REJECT(103, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 0, 0);     /* PID_EXT */
    REJECT(90, 0, 0, 119, 1, 'n', 0, 0, 0, 1);               /* no ids */
    REJECT(90, 0, 6, 119, 1, 'n', 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3,
           3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6);           /* 6 ids */
    REJECT(90, 0, 2, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7);   /* an id missing */
    REJECT(114, 0, 1, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7);  /* NEW_REFERENCE */
    REJECT(89, 100, 0, 13, NONODE, 0, 0, 0, 0, 0, 0, 0, 0);  /* OTP 25 port */
    REJECT(120, 119, 13, NONODE, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0); /* short */
    REJECT(102, 119, 1, 'n', 0, 0, 0, 1, 0);                 /* PORT_EXT */
}

/* ---- whole-input rules -------------------------------------------------- */

static void put_nested(struct rg_wbuf *w, uint8_t kind, size_t levels)
{
    for (size_t i = 0; i < levels; i++) {
        if (kind == RG_ETF_SMALL_TUPLE) {
            rg_wbuf_u8(w, RG_ETF_SMALL_TUPLE);
            rg_wbuf_u8(w, 1);
        } else if (kind == RG_ETF_LIST) {
            rg_wbuf_u8(w, RG_ETF_LIST);
            rg_wbuf_u32(w, 1);
        } else {
            rg_wbuf_u8(w, RG_ETF_MAP);
            rg_wbuf_u32(w, 1);
            rg_wbuf_u8(w, RG_ETF_NIL); /* key [] */
        }
    }
    rg_wbuf_u8(w, RG_ETF_SMALL_INTEGER);
    rg_wbuf_u8(w, 7);
    if (kind == RG_ETF_LIST) {
        for (size_t i = 0; i < levels; i++) {
            rg_wbuf_u8(w, RG_ETF_NIL);
        }
    }
}

/* Depth = containers around the deepest term: 64 are allowed, 65 are not. */
static void test_depth(void)
{
    static const uint8_t kinds[] = {RG_ETF_SMALL_TUPLE, RG_ETF_LIST,
                                    RG_ETF_MAP};
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    for (size_t k = 0; k < sizeof kinds; k++) {
        rg_wbuf_reset(&w);
        put_nested(&w, kinds[k], RG_TERM_DEPTH);
        EXPECT_W(true, &w);
        rg_wbuf_reset(&w);
        put_nested(&w, kinds[k], RG_TERM_DEPTH + 1);
        EXPECT_W(false, &w);
    }
    /* Far deeper than the limit: refused without deep recursion. */
    rg_wbuf_reset(&w);
    put_nested(&w, RG_ETF_SMALL_TUPLE, 500);
    EXPECT_W(false, &w);
    /* A list tail counts as one level too. */
    rg_wbuf_reset(&w);
    put_nested(&w, RG_ETF_SMALL_TUPLE, RG_TERM_DEPTH - 1);
    w.len -= 2; /* drop the innermost integer: put [7|{}] there */
    static const uint8_t improper[] = {108, 0, 0, 0, 1, 97, 7, 104, 0};
    rg_wbuf_put(&w, improper, sizeof improper);
    EXPECT_W(true, &w);
    rg_wbuf_free(&w);
}

static void test_whole_input(void)
{
    static const uint8_t none[1] = {0};
    expect_canon(false, none, 0, __LINE__);      /* empty */
    CHECK(!rg_canon_check(NULL, 0));
    REJECT(131, 119, 3, 'f', 'o', 'o');          /* with the version byte */
    REJECT(97, 1, 97, 2);                        /* two terms */
    REJECT(106, 0);                              /* trailing byte */
    REJECT(0);
    REJECT(255);

    struct rg_wbuf w;
    rg_wbuf_init(&w);
    put_binary(&w, RG_NAME_MAX - 5); /* exactly 1024 bytes */
    CHECK(w.len == RG_NAME_MAX);
    EXPECT_W(true, &w);
    rg_wbuf_reset(&w);
    put_binary(&w, RG_NAME_MAX - 4); /* 1025 bytes */
    EXPECT_W(false, &w);
    rg_wbuf_free(&w);
}

/* ---- rg_canon_pid ------------------------------------------------------- */

static void test_pid_view(void)
{
    static const uint8_t pid[] = {88, 119, 13, NONODE, 0, 0, 0, 9, 0, 0,
                                  0,  0,   0,  0,      0, 0};
    struct rg_pid_view v;
    CHECK(rg_canon_pid(pid, sizeof pid, &v));
    CHECK(v.node == pid + 3 && v.node_len == 13);
    CHECK(memcmp(v.node, "nonode@nohost", 13) == 0);
    CHECK(v.creation == 0);

    static const uint8_t pid2[] = {88, 119, 3, 'a', '@', 'b', 0, 0, 0, 1,
                                   0,  0,   0, 2,   0x12, 0x34, 0x56, 0x78};
    CHECK(rg_canon_pid(pid2, sizeof pid2, &v));
    CHECK(v.node_len == 3 && memcmp(v.node, "a@b", 3) == 0);
    CHECK(v.creation == 0x12345678u);

    /* A node atom over 255 bytes uses ATOM_UTF8 and is still a pid. */
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, RG_ETF_NEW_PID);
    put_atom_rep(&w, RG_ETF_ATOM_UTF8, "\xC3\xBC", 200);
    rg_wbuf_put(&w, "\0\0\0\1\0\0\0\0\0\0\0\3", 12);
    CHECK(rg_canon_pid(w.data, w.len, &v));
    CHECK(v.node_len == 400 && v.creation == 3);
    CHECK(rg_canon_check(w.data, w.len));
    rg_wbuf_free(&w);

    /* Not pids. */
    for (size_t n = 0; n < sizeof pid; n++) {
        CHECK(!rg_canon_pid(pid, n, &v)); /* every truncation */
    }
    static const uint8_t longer[] = {88, 119, 1, 'n', 0, 0, 0, 1, 0, 0,
                                     0,  0,   0, 0,   0, 0, 0};
    CHECK(!rg_canon_pid(longer, sizeof longer, &v)); /* trailing byte */
    static const uint8_t atom[] = {119, 3, 'f', 'o', 'o'};
    CHECK(!rg_canon_pid(atom, sizeof atom, &v));
    static const uint8_t ref[] = {90, 0, 1, 119, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 7};
    CHECK(!rg_canon_pid(ref, sizeof ref, &v));
    static const uint8_t port[] = {120, 119, 1, 'n', 0, 0, 0, 0,
                                   0,   0,   0, 5,   0, 0, 0, 1};
    CHECK(!rg_canon_pid(port, sizeof port, &v));
    static const uint8_t old_atom[] = {88, 100, 0, 1, 'n', 0, 0, 0, 1,
                                       0,  0,   0, 0, 0,   0, 0, 0};
    CHECK(!rg_canon_pid(old_atom, sizeof old_atom, &v));
    static const uint8_t long_short[] = {88, 118, 0, 1, 'n', 0, 0, 0, 1,
                                         0,  0,   0, 0, 0,   0, 0, 0};
    CHECK(!rg_canon_pid(long_short, sizeof long_short, &v));
    static const uint8_t bad_utf8[] = {88, 119, 1, 0xC3, 0, 0, 0, 1,
                                       0,  0,   0, 0,    0, 0, 0, 0};
    CHECK(!rg_canon_pid(bad_utf8, sizeof bad_utf8, &v));
    static const uint8_t tuple_pid[] = {104, 1,  88, 119, 1, 'n', 0, 0, 0, 1,
                                        0,   0,  0,  0,   0, 0,   0, 0};
    CHECK(!rg_canon_pid(tuple_pid, sizeof tuple_pid, &v));
    CHECK(!rg_canon_pid(NULL, 0, &v));
}

/* ---- rg_canon_prefix ---------------------------------------------------- */

/* The group table's keys are a name followed by a pid (group.h); the prefix
 * is how the name is split off again, so it must be exactly the canonical
 * term in front, whatever follows, and nothing when there is none. */
static void test_prefix(void)
{
    static const uint8_t pair[] = {104, 2, 119, 1, 'x', 97, 1, /* {x,1} */
                                   88,  119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                   0,   0,   0, 0,   0,   0,   0, 1};
    CHECK(prefix_exact(pair, sizeof pair) == 7);
    CHECK(prefix_exact(pair, 7) == 7); /* the name alone */
    CHECK(prefix_exact(pair + 7, sizeof pair - 7) == sizeof pair - 7); /* a pid */
    for (size_t n = 0; n < 7; n++) {
        CHECK(prefix_exact(pair, n) == 0); /* every truncation of the name */
    }
    static const uint8_t none[1] = {0};
    CHECK(prefix_exact(none, 0) == 0);
    CHECK(rg_canon_prefix(NULL, 0) == 0);
    static const uint8_t two[] = {97, 1, 97, 2};
    CHECK(prefix_exact(two, sizeof two) == 2); /* the first of two terms */
    static const uint8_t trail[] = {106, 0, 0xFF};
    CHECK(prefix_exact(trail, sizeof trail) == 1); /* any bytes may follow */
    static const uint8_t not_canon[] = {98, 0, 0, 0, 1, 97, 1};
    CHECK(prefix_exact(not_canon, sizeof not_canon) == 0); /* 1 as INTEGER */
    static const uint8_t versioned[] = {131, 97, 1};
    CHECK(prefix_exact(versioned, sizeof versioned) == 0);

    /* The name limit holds for the prefix too. */
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    put_binary(&w, RG_NAME_MAX - 5); /* exactly 1024 bytes */
    rg_wbuf_put(&w, "\x61\x01", 2);
    CHECK(prefix_exact(w.data, w.len) == RG_NAME_MAX);
    rg_wbuf_reset(&w);
    put_binary(&w, RG_NAME_MAX - 4); /* 1025 bytes */
    CHECK(prefix_exact(w.data, w.len) == 0);
    rg_wbuf_u8(&w, RG_ETF_NIL);
    CHECK(prefix_exact(w.data, w.len) == 0);
    rg_wbuf_free(&w);

    /* Too deep is not a term, in front of something or not. */
    rg_wbuf_init(&w);
    put_nested(&w, RG_ETF_SMALL_TUPLE, RG_TERM_DEPTH + 1);
    size_t deep = w.len;
    rg_wbuf_u8(&w, RG_ETF_NIL);
    CHECK(prefix_exact(w.data, deep) == 0 && prefix_exact(w.data, w.len) == 0);
    rg_wbuf_reset(&w);
    put_nested(&w, RG_ETF_SMALL_TUPLE, RG_TERM_DEPTH);
    deep = w.len;
    rg_wbuf_u8(&w, RG_ETF_NIL);
    CHECK(prefix_exact(w.data, w.len) == deep);
    rg_wbuf_free(&w);
}

/* ---- robustness --------------------------------------------------------- */

/* Canonical seeds the mutator starts from. */
static const uint8_t seed0[] = {88, 119, 13, NONODE, 0, 0, 0, 9, 0, 0,
                                0,  0,   0,  0,      0, 0};
static const uint8_t seed1[] = {104, 3, 119, 5, 'u', 's', 'e', 'r', 's', 109,
                                0,   0, 0,   5, 'a', 'l', 'i', 'c', 'e', 97, 42};
static const uint8_t seed2[] = {116, 0, 0, 0, 2, 119, 1, 97, 97, 1,
                                119, 1, 98, 97, 2};
static const uint8_t seed3[] = {108, 0,   0, 0, 3, 104, 2, 119, 1, 'x', 97, 1,
                                70,  63,  248, 0, 0, 0, 0, 0, 0, 110, 5, 0,
                                0,   0,   0, 0, 1, 106};
static const uint8_t seed4[] = {90, 0, 3, 119, 13, NONODE, 0, 0, 0, 0, 0, 3,
                                50, 0, 119, 28, 0, 1, 20, 42, 169, 140};
static const uint8_t seed5[] = {104, 4, 77, 0, 0, 0, 2, 3, 1, 64, 98, 255, 255,
                                255, 255, 120, 119, 1, 'n', 0, 0, 0, 0,
                                0,   0,   0, 5, 0, 0, 0, 1, 106};

static const struct {
    const uint8_t *p;
    size_t n;
} seeds[] = {{seed0, sizeof seed0}, {seed1, sizeof seed1},
             {seed2, sizeof seed2}, {seed3, sizeof seed3},
             {seed4, sizeof seed4}, {seed5, sizeof seed5}};

static const uint8_t interesting[] = {0,   1,   4,   7,   8,   97,  98,  104,
                                      105, 106, 108, 109, 110, 116, 118, 119,
                                      127, 128, 255, 70,  77,  88,  90,  120};

static uint8_t pick_byte(void)
{
    return unit_rng() & 1 ? (uint8_t)unit_rng()
                     : interesting[unit_rng_below(sizeof interesting)];
}

/* One random edit of buf[0..*n) (capacity cap). */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    size_t at = unit_rng_below(*n + 1);
    switch (unit_rng_below(5)) {
    case 0: /* overwrite */
        if (*n > 0) {
            buf[unit_rng_below(*n)] = pick_byte();
        }
        break;
    case 1: /* insert */
        if (*n < cap) {
            memmove(buf + at + 1, buf + at, *n - at);
            buf[at] = pick_byte();
            (*n)++;
        }
        break;
    case 2: /* delete */
        if (*n > 0 && at < *n) {
            memmove(buf + at, buf + at + 1, *n - at - 1);
            (*n)--;
        }
        break;
    case 3: /* truncate */
        *n = at;
        break;
    default: /* flip a bit */
        if (*n > 0) {
            buf[unit_rng_below(*n)] ^= (uint8_t)(1u << unit_rng_below(8));
        }
        break;
    }
}

static size_t make_input(uint8_t *buf, size_t cap)
{
    size_t n;
    if (unit_rng_below(4) == 0) { /* pure noise, tag-biased */
        n = unit_rng_below(48);
        for (size_t i = 0; i < n; i++) {
            buf[i] = pick_byte();
        }
        return n;
    }
    size_t s = unit_rng_below(sizeof seeds / sizeof seeds[0]);
    n = seeds[s].n;
    memcpy(buf, seeds[s].p, n);
    size_t edits = 1 + unit_rng_below(4);
    for (size_t i = 0; i < edits; i++) {
        mutate(buf, &n, cap);
    }
    return n;
}

/* Properties of any accepted input: every strict prefix is refused (a term
 * is self-delimiting and the whole input is one term), so is any extension;
 * a pid the pid view accepts is a canonical term. */
static bool properties_hold(const uint8_t *p, size_t n)
{
    bool ok = canon_exact(p, n);
    struct rg_pid_view v;
    if (rg_canon_pid(p, n, &v) && !ok) {
        return false;
    }
    size_t k0 = prefix_exact(p, n);
    if (k0 > 0 && !canon_exact(p, k0)) {
        return false; /* a prefix is always a canonical term */
    }
    if (!ok) {
        return true;
    }
    if (k0 != n) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        if (canon_exact(p, k)) {
            return false;
        }
    }
    uint8_t ext[64];
    if (n < sizeof ext) {
        memcpy(ext, p, n);
        ext[n] = RG_ETF_NIL;
        return !canon_exact(ext, n + 1) && prefix_exact(ext, n + 1) == n;
    }
    return true;
}

static void test_random(void)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        CHECK(canon_exact(seeds[i].p, seeds[i].n));
    }
    uint8_t buf[96];
    size_t accepted = 0;
    size_t violations = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = make_input(buf, sizeof buf);
        if (!properties_hold(buf, n)) {
            violations++;
        }
        accepted += rg_canon_check(buf, n);
    }
    CHECK(violations == 0);
    CHECK(accepted > 1000); /* the mutator does reach valid terms */
}

int main(void)
{
    unit_seed(0x9E3779B97F4A7C15ULL);
    test_integers();
    test_floats();
    test_atoms();
    test_binaries();
    test_tuples_lists();
    test_maps();
    test_identifiers();
    test_depth();
    test_whole_input();
    test_pid_view();
    test_prefix();
    test_random();
    UNIT_DONE("test_canon");
}
