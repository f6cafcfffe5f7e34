/* libFuzzer target: the acceptor's view of a handshake. The first
 * RG_HS_HELLO_FIXED bytes are a HELLO; when it is accepted, the address and
 * then a PROOF follow, and the PROOF is checked the way transport.c does.
 * Nothing may read outside the input, and no forged PROOF may pass. */
#include <stdint.h>
#include <string.h>

#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[] = "fuzz secret";
    struct rg_hs_hello h;
    if (size < RG_HS_HELLO_FIXED) {
        return 0;
    }
    uint8_t fixed[RG_HS_HELLO_FIXED];
    memcpy(fixed, data, sizeof fixed);
    int len = rg_hs_hello_parse(fixed, 22, &h);
    if (len < 0 || size < RG_HS_HELLO_FIXED + (size_t)len + RG_HS_PROOF) {
        return 0;
    }
    const uint8_t *proof = data + RG_HS_HELLO_FIXED + len;
    uint8_t nonce_a[RG_HS_NONCE] = {1, 2, 3};
    uint8_t expected[RG_HS_MAC];
    if (rg_hs_mac(secret, sizeof secret, RG_HS_CONNECT, h.nonce, nonce_a, h.from,
                  h.to, expected) &&
        rg_hs_mac_equal(expected, proof)) {
        __builtin_trap(); /* a forged proof passed: impossible without the secret */
    }
    return 0;
}
