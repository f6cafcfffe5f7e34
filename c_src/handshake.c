/* The raft transport's handshake; see handshake.h. */
#include "handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

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

int rg_hs_hello_parse(const uint8_t *p, uint64_t self, struct rg_hs_hello *h)
{
    h->from = get_be(p + 8, 8);
    h->to = get_be(p + 16, 8);
    memcpy(h->nonce, p + 24, RG_HS_NONCE);
    h->address_len = (uint16_t)get_be(p + 24 + RG_HS_NONCE, 2);
    if (get_be(p, 8) != RG_HS_MAGIC || h->from == 0 || h->to != self ||
        h->from == self || h->address_len == 0 ||
        h->address_len > RG_ADDRESS_MAX) {
        return -1;
    }
    return h->address_len;
}

size_t rg_hs_hello_build(uint8_t *out, uint64_t from, uint64_t to,
                         const uint8_t nonce[RG_HS_NONCE], const char *address)
{
    size_t len = strlen(address);
    if (len > RG_ADDRESS_MAX) {
        len = RG_ADDRESS_MAX;
    }
    put_be(out, RG_HS_MAGIC, 8);
    put_be(out + 8, from, 8);
    put_be(out + 16, to, 8);
    memcpy(out + 24, nonce, RG_HS_NONCE);
    put_be(out + 24 + RG_HS_NONCE, len, 2);
    memcpy(out + RG_HS_HELLO_FIXED, address, len);
    return RG_HS_HELLO_FIXED + len;
}

bool rg_hs_mac(const uint8_t *secret, size_t secret_len, enum rg_hs_role role,
               const uint8_t nonce_c[RG_HS_NONCE],
               const uint8_t nonce_a[RG_HS_NONCE], uint64_t from, uint64_t to,
               uint8_t out[RG_HS_MAC])
{
    /* Distinct labels and nonce orders: a side's own MAC is never one the
     * other side would accept (no reflection). */
    static const char accept_label[] = "regent-accept";
    static const char connect_label[] = "regent-connect";
    const char *label = role == RG_HS_ACCEPT ? accept_label : connect_label;
    size_t label_len = strlen(label);
    uint8_t msg[sizeof connect_label + 2 * RG_HS_NONCE + 16];
    size_t n = 0;
    memcpy(msg, label, label_len);
    n += label_len;
    memcpy(msg + n, role == RG_HS_ACCEPT ? nonce_c : nonce_a, RG_HS_NONCE);
    n += RG_HS_NONCE;
    memcpy(msg + n, role == RG_HS_ACCEPT ? nonce_a : nonce_c, RG_HS_NONCE);
    n += RG_HS_NONCE;
    put_be(msg + n, from, 8);
    put_be(msg + n + 8, to, 8);
    n += 16;
    unsigned out_len = 0;
    return HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, out,
                &out_len) != NULL &&
           out_len == RG_HS_MAC;
}

bool rg_hs_mac_equal(const uint8_t a[RG_HS_MAC], const uint8_t b[RG_HS_MAC])
{
    return CRYPTO_memcmp(a, b, RG_HS_MAC) == 0;
}
