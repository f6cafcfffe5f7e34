/* Size limits shared by every decoder. They are part of the contract
 * (docs/protocol.md) and mirrored by the Erlang side, which refuses oversize
 * input before it reaches the port. */
#ifndef RG_LIMITS_H
#define RG_LIMITS_H

#define RG_NAME_MAX 1024u        /* canonical name bytes */
#define RG_META_MAX 65536u       /* metadata bytes (term_to_binary) */
#define RG_PID_MAX 1040u         /* NEW_PID_EXT with the longest node atom */
#define RG_NODE_MAX 1023u        /* node atom text, UTF-8 bytes */
#define RG_TERM_DEPTH 64u        /* nesting of tuples/lists/maps in a name */
#define RG_FRAME_MAX (64u << 20) /* one port frame */
#define RG_BATCH_MAX (1u << 20)  /* bytes of ops packed into one log entry */

#endif
