/* Unit tests for buf.c, the byte buffers every codec in regentd is built on.
 * Covers: the writer's big-endian layout for every integer width and for
 * blobs, growth across many reallocations, take/reset, patch_u32 (in range
 * and out of range), the sticky out-of-memory flag; the reader's round trip
 * of everything the writer produces, its sticky failure on a short read
 * (later reads return zeroes even when bytes remain), rg_rbuf_done, and
 * rg_rbuf_blob's length limit (max accepted, max + 1 refused, lengths longer
 * than the input refused). Reads happen from exact-size heap copies so that
 * ASan would flag any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

static void test_layout(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, 0xAB);
    rg_wbuf_u16(&w, 0x1234);
    rg_wbuf_u32(&w, 0xDEADBEEFu);
    rg_wbuf_u64(&w, 0x0102030405060708ULL);
    rg_wbuf_blob(&w, "xyz", 3);
    rg_wbuf_put(&w, "!", 1);
    static const uint8_t want[] = {
        0xAB, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1,   2,   3,   4, 5,
        6,    7,    8,    0,    0,    0,    3,    'x', 'y', 'z', '!'};
    CHECK(w.len == sizeof want);
    CHECK(!w.oom);
    CHECK(memcmp(w.data, want, sizeof want) == 0);
    rg_wbuf_free(&w);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0);
}

static void test_round_trip(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, 0);
    rg_wbuf_u8(&w, 255);
    rg_wbuf_u16(&w, 0);
    rg_wbuf_u16(&w, 0xFFFF);
    rg_wbuf_u32(&w, 0x80000001u);
    rg_wbuf_u64(&w, UINT64_MAX);
    rg_wbuf_u64(&w, 0x8000000000000001ULL);
    rg_wbuf_blob(&w, "hello", 5);
    rg_wbuf_blob(&w, NULL, 0);

    uint8_t *copy = unit_dup_exact(w.data, w.len);
    struct rg_rbuf r;
    uint32_t len;
    rg_rbuf_init(&r, copy, w.len);
    CHECK(rg_rbuf_u8(&r) == 0);
    CHECK(rg_rbuf_u8(&r) == 255);
    CHECK(rg_rbuf_u16(&r) == 0);
    CHECK(rg_rbuf_u16(&r) == 0xFFFF);
    CHECK(rg_rbuf_u32(&r) == 0x80000001u);
    CHECK(rg_rbuf_u64(&r) == UINT64_MAX);
    CHECK(rg_rbuf_u64(&r) == 0x8000000000000001ULL);
    const uint8_t *b = rg_rbuf_blob(&r, 5, &len);
    CHECK(b != NULL && len == 5 && memcmp(b, "hello", 5) == 0);
    CHECK(b == copy + w.len - 4 - 5); /* points into the input */
    CHECK(!rg_rbuf_done(&r));
    b = rg_rbuf_blob(&r, 0, &len);
    CHECK(b != NULL && len == 0);
    CHECK(rg_rbuf_ok(&r));
    CHECK(rg_rbuf_done(&r));
    free(copy);
    rg_wbuf_free(&w);
}

/* Once a read runs short, the reader stays failed and returns zeroes. */
static void test_sticky_failure(void)
{
    static const uint8_t in[] = {1, 2, 3, 4, 5};
    uint8_t *copy = unit_dup_exact(in, sizeof in);
    struct rg_rbuf r;
    rg_rbuf_init(&r, copy, sizeof in);
    CHECK(rg_rbuf_u16(&r) == 0x0102);
    CHECK(rg_rbuf_u32(&r) == 0); /* 3 bytes left: short */
    CHECK(!rg_rbuf_ok(&r));
    CHECK(!rg_rbuf_done(&r));
    CHECK(rg_rbuf_u8(&r) == 0); /* bytes remain, but the reader is failed */
    CHECK(rg_rbuf_u16(&r) == 0);
    CHECK(rg_rbuf_bytes(&r, 0) == NULL);
    CHECK(!rg_rbuf_ok(&r));

    /* Each width fails on its own when one byte is missing. */
    for (size_t width = 1; width <= 8; width *= 2) {
        rg_rbuf_init(&r, copy, width - 1);
        uint64_t v = width == 1   ? rg_rbuf_u8(&r)
                     : width == 2 ? rg_rbuf_u16(&r)
                     : width == 4 ? rg_rbuf_u32(&r)
                                  : rg_rbuf_u64(&r);
        CHECK(v == 0);
        CHECK(!rg_rbuf_ok(&r));
    }
    /* Regression: a u64 with 4..7 bytes left used to return the high half
     * (non-zero) while failing; a failed read must return 0 at every width. */
    static const uint8_t nines[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    for (size_t avail = 0; avail < 8; avail++) {
        uint8_t *part = unit_dup_exact(nines, avail);
        rg_rbuf_init(&r, part, avail);
        CHECK(rg_rbuf_u64(&r) == 0);
        CHECK(!rg_rbuf_ok(&r));
        free(part);
    }

    /* An empty input: everything fails, nothing is dereferenced. */
    rg_rbuf_init(&r, copy, 0);
    CHECK(rg_rbuf_done(&r));
    CHECK(rg_rbuf_bytes(&r, 0) != NULL);
    CHECK(rg_rbuf_u8(&r) == 0);
    CHECK(!rg_rbuf_ok(&r));
    free(copy);
}

static void test_bytes(void)
{
    static const uint8_t in[] = {10, 20, 30};
    uint8_t *copy = unit_dup_exact(in, sizeof in);
    struct rg_rbuf r;
    rg_rbuf_init(&r, copy, sizeof in);
    const uint8_t *p = rg_rbuf_bytes(&r, 2);
    CHECK(p == copy);
    CHECK(rg_rbuf_bytes(&r, 2) == NULL); /* only one left */
    CHECK(!rg_rbuf_ok(&r));
    rg_rbuf_init(&r, copy, sizeof in);
    CHECK(rg_rbuf_bytes(&r, SIZE_MAX) == NULL);
    CHECK(!rg_rbuf_ok(&r));
    rg_rbuf_init(&r, copy, sizeof in);
    CHECK(rg_rbuf_bytes(&r, 3) == copy);
    CHECK(rg_rbuf_done(&r));
    free(copy);
}

/* Builds [u32 n] followed by `avail` bytes of payload. */
static uint8_t *blob_input(uint32_t n, size_t avail, size_t *len)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u32(&w, n);
    for (size_t i = 0; i < avail; i++) {
        rg_wbuf_u8(&w, (uint8_t)i);
    }
    uint8_t *copy = unit_dup_exact(w.data, w.len);
    *len = w.len;
    rg_wbuf_free(&w);
    return copy;
}

static void test_blob_max(void)
{
    struct rg_rbuf r;
    uint32_t len = 99;
    size_t n;
    uint8_t *in = blob_input(16, 16, &n);

    rg_rbuf_init(&r, in, n);
    const uint8_t *b = rg_rbuf_blob(&r, 16, &len); /* exactly max */
    CHECK(b == in + 4 && len == 16 && rg_rbuf_done(&r));

    rg_rbuf_init(&r, in, n);
    len = 99;
    b = rg_rbuf_blob(&r, 15, &len); /* one over max */
    CHECK(b == NULL && len == 0 && !rg_rbuf_ok(&r));
    free(in);

    in = blob_input(17, 16, &n); /* longer than the input */
    rg_rbuf_init(&r, in, n);
    b = rg_rbuf_blob(&r, 1024, &len);
    CHECK(b == NULL && !rg_rbuf_ok(&r));
    free(in);

    in = blob_input(UINT32_MAX, 3, &n); /* hostile length */
    rg_rbuf_init(&r, in, n);
    b = rg_rbuf_blob(&r, SIZE_MAX, &len);
    CHECK(b == NULL && !rg_rbuf_ok(&r));
    free(in);

    in = blob_input(0, 0, &n);
    rg_rbuf_init(&r, in, 3); /* the length itself is short */
    len = 99;
    b = rg_rbuf_blob(&r, 10, &len);
    CHECK(b == NULL && len == 0 && !rg_rbuf_ok(&r));
    free(in);
}

static void test_patch(void)
{
    struct rg_wbuf w;
    size_t off;
    rg_wbuf_init(&w);
    rg_wbuf_u8(&w, 7);
    off = w.len;
    rg_wbuf_u32(&w, 0);
    rg_wbuf_u16(&w, 0xFFFF);
    rg_wbuf_patch_u32(&w, off, 0x01020304u);
    static const uint8_t want[] = {7, 1, 2, 3, 4, 0xFF, 0xFF};
    CHECK(w.len == sizeof want && memcmp(w.data, want, sizeof want) == 0);

    /* Offsets whose 4 bytes do not fit are ignored. */
    rg_wbuf_patch_u32(&w, w.len - 3, 0xAAAAAAAAu);
    rg_wbuf_patch_u32(&w, w.len, 0xAAAAAAAAu);
    /* Regression: off + 4 used to wrap and pass the bounds check. */
    rg_wbuf_patch_u32(&w, SIZE_MAX - 2, 0xAAAAAAAAu);
    CHECK(w.len == sizeof want && memcmp(w.data, want, sizeof want) == 0);
    rg_wbuf_patch_u32(&w, w.len - 4, 0x0A0B0C0Du); /* the last 4 bytes */
    CHECK(w.data[3] == 0x0A && w.data[6] == 0x0D);
    rg_wbuf_free(&w);
}

static void test_growth_take_reset(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    for (uint32_t i = 0; i < 100000; i++) {
        rg_wbuf_u32(&w, i);
    }
    CHECK(!w.oom && w.len == 400000 && w.cap >= w.len);
    struct rg_rbuf r;
    rg_rbuf_init(&r, w.data, w.len);
    bool all = true;
    for (uint32_t i = 0; i < 100000; i++) {
        all = all && rg_rbuf_u32(&r) == i;
    }
    CHECK(all && rg_rbuf_done(&r));

    size_t cap = w.cap;
    rg_wbuf_reset(&w);
    CHECK(w.len == 0 && w.cap == cap && w.data != NULL);
    rg_wbuf_u8(&w, 1);
    CHECK(w.len == 1 && w.data[0] == 1);

    size_t len = 0;
    uint8_t *d = rg_wbuf_take(&w, &len);
    CHECK(d != NULL && len == 1 && d[0] == 1);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0);
    free(d);

    rg_wbuf_put(&w, NULL, 0); /* nothing to do, nothing allocated */
    CHECK(w.data == NULL && w.len == 0);
    rg_wbuf_free(&w);
}

/* A reservation that cannot be satisfied sets oom; it stays set until reset
 * and makes every later write and patch a no-op. */
static void test_oom_sticky(void)
{
    struct rg_wbuf w;
    rg_wbuf_init(&w);
    rg_wbuf_u32(&w, 0x11223344u);
    CHECK(!rg_wbuf_reserve(&w, SIZE_MAX));
    CHECK(w.oom);
    rg_wbuf_u8(&w, 5);
    CHECK(w.len == 4);
    CHECK(!rg_wbuf_reserve(&w, 1));
    rg_wbuf_patch_u32(&w, 0, 0);
    CHECK(w.data[0] == 0x11);
    rg_wbuf_reset(&w);
    CHECK(!w.oom && rg_wbuf_reserve(&w, 1));
    rg_wbuf_u8(&w, 5);
    CHECK(w.len == 1 && w.data[0] == 5);
    rg_wbuf_free(&w);
}

int main(void)
{
    test_layout();
    test_round_trip();
    test_sticky_failure();
    test_bytes();
    test_blob_max();
    test_patch();
    test_growth_take_reset();
    test_oom_sticky();
    UNIT_DONE("test_buf");
}
