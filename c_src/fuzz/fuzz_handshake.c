/* libFuzzer target: the transport handshake as incoming_read in transport.c
 * sees it. Inputs shorter than the 18-byte fixed part are ignored; the fixed
 * part goes through rg_handshake_fixed, and when it is accepted the address
 * that follows (if the input holds it) is checked for NULs the same way.
 * Aborts if an accepted handshake has a wrong magic, id 0 or a length
 * outside 1..255. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    raft_id id = 0;
    if (size < RG_HANDSHAKE_FIXED) {
        return 0;
    }
    int len = rg_handshake_fixed(data, &id);
    if (len == -1) {
        return 0;
    }
    if (len < 1 || len > (int)RG_ADDRESS_MAX || id == 0 ||
        get_be(data, 8) != RG_HANDSHAKE_MAGIC || id != get_be(data + 8, 8) ||
        (uint64_t)len != get_be(data + 16, 2)) {
        abort();
    }
    if (size - RG_HANDSHAKE_FIXED >= (size_t)len) {
        char address[RG_ADDRESS_MAX + 1];
        bool has_nul = memchr(data + RG_HANDSHAKE_FIXED, 0, (size_t)len) != NULL;
        memcpy(address, data + RG_HANDSHAKE_FIXED, (size_t)len);
        address[len] = '\0';
        if (!has_nul && strlen(address) != (size_t)len) {
            abort();
        }
    }
    return 0;
}
