/* The transport handshake (handshake.c): HELLO parsing against every field
 * rule and every single-bit corruption, and the MACs: both sides agree with
 * the same secret, disagree with another secret, another nonce or other ids,
 * and a side's own MAC is never the one the other side expects. */
#include <string.h>

#include "handshake.h"
#include "unit.h"

static const uint8_t secret[] = "cluster secret";
static const uint8_t other[] = "another secret";

static size_t good_hello(uint8_t *out)
{
    uint8_t nc[RG_HS_NONCE];
    memset(nc, 7, sizeof nc);
    return rg_hs_hello_build(out, 11, 22, nc, "127.0.0.1:4000");
}

static void test_hello(void)
{
    uint8_t m[RG_HS_HELLO_FIXED + RG_ADDRESS_MAX];
    struct rg_hs_hello h;
    size_t len = good_hello(m);
    CHECK(len == RG_HS_HELLO_FIXED + 14);
    CHECK(rg_hs_hello_parse(m, 22, &h) == 14);
    CHECK(h.from == 11 && h.to == 22 && h.nonce[0] == 7 && h.address_len == 14);
    CHECK(memcmp(m + RG_HS_HELLO_FIXED, "127.0.0.1:4000", 14) == 0);
    /* Meant for another server, or from ourselves, or from id 0. */
    CHECK(rg_hs_hello_parse(m, 23, &h) < 0);
    CHECK(rg_hs_hello_parse(m, 11, &h) < 0);
    uint8_t nc[RG_HS_NONCE] = {0};
    rg_hs_hello_build(m, 0, 22, nc, "a:1");
    CHECK(rg_hs_hello_parse(m, 22, &h) < 0);
    /* Address length 0 and over the limit. */
    good_hello(m);
    m[RG_HS_HELLO_FIXED - 2] = 0;
    m[RG_HS_HELLO_FIXED - 1] = 0;
    CHECK(rg_hs_hello_parse(m, 22, &h) < 0);
    m[RG_HS_HELLO_FIXED - 2] = 1;
    CHECK(rg_hs_hello_parse(m, 22, &h) < 0); /* 256 */
    /* Every bit of the magic and ids matters. */
    for (size_t bit = 0; bit < 24 * 8; bit++) {
        good_hello(m);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(rg_hs_hello_parse(m, 22, &h) < 0 || bit / 8 >= 8);
    }
}

static void test_macs(void)
{
    uint8_t nc[RG_HS_NONCE], na[RG_HS_NONCE];
    memset(nc, 1, sizeof nc);
    memset(na, 2, sizeof na);
    uint8_t a1[RG_HS_MAC], a2[RG_HS_MAC], c1[RG_HS_MAC], x[RG_HS_MAC];
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_ACCEPT, nc, na, 11, 22, a1));
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_ACCEPT, nc, na, 11, 22, a2));
    CHECK(rg_hs_mac_equal(a1, a2));
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_CONNECT, nc, na, 11, 22, c1));
    CHECK(!rg_hs_mac_equal(a1, c1)); /* no reflection */
    CHECK(rg_hs_mac(other, sizeof other, RG_HS_ACCEPT, nc, na, 11, 22, x));
    CHECK(!rg_hs_mac_equal(a1, x)); /* wrong secret */
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_ACCEPT, na, nc, 11, 22, x));
    CHECK(!rg_hs_mac_equal(a1, x)); /* nonces swapped */
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_ACCEPT, nc, na, 22, 11, x));
    CHECK(!rg_hs_mac_equal(a1, x)); /* ids swapped */
    CHECK(rg_hs_mac(secret, sizeof secret, RG_HS_ACCEPT, nc, na, 11, 23, x));
    CHECK(!rg_hs_mac_equal(a1, x)); /* another target */
    /* Equality looks at every byte. */
    for (size_t i = 0; i < RG_HS_MAC; i++) {
        memcpy(x, a1, RG_HS_MAC);
        x[i] ^= 0x80;
        CHECK(!rg_hs_mac_equal(a1, x));
    }
}

int main(void)
{
    test_hello();
    test_macs();
    UNIT_DONE("test_handshake");
}
