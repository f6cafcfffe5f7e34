/* The raft transport's handshake: mutual authentication of two regentd.
 *
 * Both sides hold the registry's secret (from the START frame; by default
 * derived from the Erlang cookie). The connector C proves it to the acceptor
 * A and A to C, over fresh nonces from both sides, so neither a replay nor a
 * reflected message passes:
 *
 *   C -> A  HELLO     [u64 magic][u64 C id][u64 A id (target)][16 nonce_c]
 *                     [u16 address length 1..255][C's address]
 *   A -> C  CHALLENGE [16 nonce_a][32 mac_a]
 *   C -> A  PROOF     [32 mac_c]
 *
 *   mac_a = HMAC-SHA256(secret, "regent-accept"  | nonce_c | nonce_a | C id | A id)
 *   mac_c = HMAC-SHA256(secret, "regent-connect" | nonce_a | nonce_c | C id | A id)
 *
 * A refuses a HELLO whose target is not its own id (a connection meant for
 * an earlier incarnation). Everything here is pure; transport_accept.c and transport_connect.c do the I/O. */
#ifndef RG_HANDSHAKE_H
#define RG_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RG_HS_MAGIC 0x524547454E540002ULL /* "REGENT\0\2" */
#define RG_HS_NONCE 16u
#define RG_HS_MAC 32u
#define RG_HS_HELLO_FIXED (8u + 8u + 8u + RG_HS_NONCE + 2u)
#define RG_HS_CHALLENGE (RG_HS_NONCE + RG_HS_MAC)
#define RG_HS_PROOF RG_HS_MAC
#define RG_ADDRESS_MAX 255u
#define RG_SECRET_MAX 1024u

struct rg_hs_hello {
    uint64_t from; /* the connector's raft id */
    uint64_t to;   /* the acceptor's raft id */
    uint8_t nonce[RG_HS_NONCE];
    uint16_t address_len;
};

/* Parses the fixed part of a HELLO (RG_HS_HELLO_FIXED bytes). Returns the
 * address length still to read, or -1 if the message is not acceptable for
 * the server whose id is self. */
int rg_hs_hello_parse(const uint8_t *p, uint64_t self, struct rg_hs_hello *h);
/* Writes a whole HELLO into out (RG_HS_HELLO_FIXED + RG_ADDRESS_MAX bytes);
 * returns its length. */
size_t rg_hs_hello_build(uint8_t *out, uint64_t from, uint64_t to,
                         const uint8_t nonce[RG_HS_NONCE], const char *address);

enum rg_hs_role { RG_HS_ACCEPT, RG_HS_CONNECT };
/* The MAC one side sends: RG_HS_ACCEPT for mac_a, RG_HS_CONNECT for mac_c.
 * Returns false only if the crypto library failed. */
bool rg_hs_mac(const uint8_t *secret, size_t secret_len, enum rg_hs_role role,
               const uint8_t nonce_c[RG_HS_NONCE],
               const uint8_t nonce_a[RG_HS_NONCE], uint64_t from, uint64_t to,
               uint8_t out[RG_HS_MAC]);
/* Constant-time comparison of two MACs. */
bool rg_hs_mac_equal(const uint8_t a[RG_HS_MAC], const uint8_t b[RG_HS_MAC]);

#endif
