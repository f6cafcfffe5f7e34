/* Unit tests for the fixed part of the transport handshake,
 * rg_handshake_fixed: [u64 magic 0x524547454E540001][u64 raft id]
 * [u16 address length], all big-endian. Covers a good handshake, the
 * accepted edges (address length 1 and 255, the largest id), each rejection
 * (id 0, address length 0 or > 255, a byte-swapped magic, every single-bit
 * error in the magic) and, for every bit of the 18 bytes, that flipping it
 * either is refused or yields exactly the id and length written. The input
 * is always an exact 18-byte heap block, so ASan sees any overread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "unit.h"

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void handshake(uint8_t *p, uint64_t magic, uint64_t id, uint16_t len)
{
    put_be(p, magic, 8);
    put_be(p + 8, id, 8);
    put_be(p + 16, len, 2);
}

/* Runs rg_handshake_fixed on an exact-size copy. */
static int parse(const uint8_t *p, raft_id *id)
{
    uint8_t *copy = malloc(RG_HANDSHAKE_FIXED);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, p, RG_HANDSHAKE_FIXED);
    int rv = rg_handshake_fixed(copy, id);
    free(copy);
    return rv;
}

static void test_good(void)
{
    uint8_t hs[RG_HANDSHAKE_FIXED];
    raft_id id = 0;
    static const uint8_t literal[RG_HANDSHAKE_FIXED] = {
        'R', 'E', 'G', 'E', 'N', 'T', 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 14};
    CHECK(parse(literal, &id) == 14 && id == 42);

    handshake(hs, RG_HANDSHAKE_MAGIC, 42, 14);
    CHECK(memcmp(hs, literal, sizeof hs) == 0);
    handshake(hs, RG_HANDSHAKE_MAGIC, 1, 1);
    CHECK(parse(hs, &id) == 1 && id == 1);
    handshake(hs, RG_HANDSHAKE_MAGIC, UINT64_MAX, RG_ADDRESS_MAX);
    CHECK(parse(hs, &id) == 255 && id == UINT64_MAX);
    handshake(hs, RG_HANDSHAKE_MAGIC, 0x0102030405060708ULL, 0x00FF);
    CHECK(parse(hs, &id) == 255 && id == 0x0102030405060708ULL);
}

static void test_bad(void)
{
    uint8_t hs[RG_HANDSHAKE_FIXED];
    raft_id id;
    handshake(hs, RG_HANDSHAKE_MAGIC, 0, 14);           /* id 0 */
    CHECK(parse(hs, &id) == -1);
    handshake(hs, RG_HANDSHAKE_MAGIC, 7, 0);            /* empty address */
    CHECK(parse(hs, &id) == -1);
    handshake(hs, RG_HANDSHAKE_MAGIC, 7, 256);          /* too long */
    CHECK(parse(hs, &id) == -1);
    handshake(hs, RG_HANDSHAKE_MAGIC, 7, 0xFFFF);
    CHECK(parse(hs, &id) == -1);
    handshake(hs, RG_HANDSHAKE_MAGIC, 7, 0x0100);       /* 1 little-endian */
    CHECK(parse(hs, &id) == -1);
    handshake(hs, 0x0100544E45474552ULL, 7, 14);        /* magic swapped */
    CHECK(parse(hs, &id) == -1);
    handshake(hs, 0x524547454E540002ULL, 7, 14);        /* other version */
    CHECK(parse(hs, &id) == -1);
    memset(hs, 0, sizeof hs);
    CHECK(parse(hs, &id) == -1);
    memset(hs, 0xFF, sizeof hs);
    CHECK(parse(hs, &id) == -1);
    /* An HTTP request or a TLS hello is not a handshake either. */
    CHECK(parse((const uint8_t *)"GET / HTTP/1.1\r\nHo", &id) == -1);
    static const uint8_t tls[RG_HANDSHAKE_FIXED] = {0x16, 3, 1, 0, 0xA5, 1};
    CHECK(parse(tls, &id) == -1);
}

/* Every single-bit change of a good handshake: refused, or (in the id and
 * length) accepted with exactly the values now written there. */
static void test_bit_flips(void)
{
    uint8_t hs[RG_HANDSHAKE_FIXED];
    int wrong = 0, magic_accepted = 0;
    for (int bit = 0; bit < 8 * (int)RG_HANDSHAKE_FIXED; bit++) {
        raft_id id = 0;
        handshake(hs, RG_HANDSHAKE_MAGIC, 0x8000000000000001ULL, 100);
        hs[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rv = parse(hs, &id);
        uint64_t want_id = get_be(hs + 8, 8);
        uint64_t want_len = get_be(hs + 16, 2);
        if (bit < 64) {
            magic_accepted += rv != -1;
            continue;
        }
        bool valid = want_id != 0 && want_len >= 1 && want_len <= 255;
        if (valid ? rv != (int)want_len || id != want_id : rv != -1) {
            wrong++;
        }
    }
    CHECK(magic_accepted == 0);
    CHECK(wrong == 0);
}

int main(void)
{
    test_good();
    test_bad();
    test_bit_flips();
    UNIT_DONE("test_transport");
}
