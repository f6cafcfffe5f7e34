/* The port protocol between the Erlang member and regentd.
 *
 * Erlang's {packet,4} frames the stream; each frame starts with
 * [u8 version][u8 type]. This module decodes member -> daemon frames and
 * builds daemon -> member frames, with no I/O (docs/protocol.md is the
 * reference). Decoding never trusts a length: a bad frame yields
 * RG_PROTO_BAD and an error message for the member, nothing else. */
#ifndef RG_PROTO_H
#define RG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cmd.h"

#define RG_PROTO_VERSION 1

enum rg_msg_type {
    /* member -> daemon */
    RG_MSG_START = 0x01,
    RG_MSG_OPS = 0x02,
    RG_MSG_STOP = 0x03,
    RG_MSG_STATUS_REQ = 0x04,
    RG_MSG_CHANGE = 0x05,
    RG_MSG_FWD_OPS = 0x06,
    RG_MSG_BLOCK = 0x07, /* tests: [u32 n]([u64 id][u8 dirs])... cut links */
    RG_MSG_ALIVE = 0x08, /* no payload: the member is running (node_health.c) */
    /* daemon -> member */
    RG_MSG_STARTED = 0x81,
    RG_MSG_APPLIED = 0x82,
    RG_MSG_REPLIES = 0x83,
    RG_MSG_STATUS = 0x84,
    RG_MSG_DUMP = 0x85,
    RG_MSG_MEMBERS = 0x86,
    RG_MSG_CHANGED = 0x87,
    RG_MSG_ERROR = 0x8F,
};

struct rg_start {
    uint64_t id;       /* 0: a fresh daemon picks a random id */
    bool bootstrap;    /* fresh daemon: bootstrap a one-node cluster */
    const char *dir;   /* NUL-terminated copies owned by the caller's buffer */
    const char *bind_host;
    uint16_t port_lo, port_hi;
    const uint8_t *secret;
    uint32_t secret_len;
    uint32_t snapshot_threshold; /* entries between snapshots */
    uint32_t snapshot_trailing;  /* entries kept after one */
    uint8_t tls;                 /* enum rg_tls_mode (tls.h): 0 off, 1 PSK, 2 certificates */
    const char *certfile;        /* certificates: PEM files ("" unless tls is 2) */
    const char *keyfile;
    const char *cafile;          /* "" when the peer is not verified */
    bool verify;
};

/* rg_proto_start's string buffer needs the frame's length plus this (one
 * NUL per string). */
#define RG_START_STRINGS 5

/* START's accepted snapshot settings (libraft takes any; these keep a
 * typo from making a daemon snapshot on every entry or never). */
#define RG_SNAPSHOT_THRESHOLD_MIN 16u
#define RG_SNAPSHOT_SETTING_MAX (1u << 24)

/* The first fields of any member frame. Returns false (with *err set) when
 * the header is bad; on success r is positioned after the header. */
bool rg_proto_header(struct rg_rbuf *r, uint8_t *type, const char **err);

/* START: decodes into s. Strings are copied into strbuf (size >= frame length
 * + 2) so they can be NUL-terminated. */
bool rg_proto_start(struct rg_rbuf *r, struct rg_start *s, char *strbuf,
                    size_t strbuf_len, const char **err);

/* OPS: [u32 count] then ops in port form; use rg_op_decode per op. */
bool rg_proto_ops_count(struct rg_rbuf *r, uint32_t *count);

/* FWD_OPS: [u64 origin] then as OPS. The leader's member passes on ops that
 * another member forwarded; origin is that member's daemon id. */
bool rg_proto_fwd_origin(struct rg_rbuf *r, uint64_t *origin);

/* CHANGE: a membership change asked by the member (only the leader can do
 * it). [u8 kind][u64 ref][u64 id][u8 role][blob address]. */
enum rg_conf_change {
    RG_CONF_ADD = 1,      /* id, address: joins as a spare */
    RG_CONF_ASSIGN = 2,   /* id, role (raft: 0 standby, 1 voter, 2 spare) */
    RG_CONF_REMOVE = 3,   /* id */
    RG_CONF_TRANSFER = 4, /* id (0: any voter) */
};
struct rg_change {
    uint8_t kind;
    uint64_t ref;
    uint64_t id;
    uint8_t role;
    char address[256];
};
bool rg_proto_change(struct rg_rbuf *r, struct rg_change *c);

/* Daemon -> member frames, written into w (which the caller frames). */
void rg_proto_started(struct rg_wbuf *w, uint64_t id, uint16_t port,
                      bool resumed);
void rg_proto_error(struct rg_wbuf *w, const char *msg);
#define RG_IO_STALLED 0xFFFFu /* log writes made no progress for a while */
struct rg_status {
    uint8_t state; /* raft_state(): 0 unavailable, 1 follower, 2 candidate, 3 leader */
    uint64_t leader;
    uint64_t term;
    uint64_t applied;
    uint64_t commit;
    uint64_t last_index;
    bool synced;
    uint32_t io_error; /* 0, the libraft code of the last failed log write,
                          or RG_IO_STALLED */
    uint64_t rss;      /* the daemon's resident memory, bytes */
};
void rg_proto_status(struct rg_wbuf *w, const struct rg_status *s);
/* REPLIES header; then n x [u64 origin][u64 ref][u8 result][blob payload].
 * For ops that reached no applied entry (RETRY, BAD); origin tells the
 * leader's member whom to pass a forwarded op's answer back to. */
void rg_proto_replies_begin(struct rg_wbuf *w, size_t *count_off);
void rg_proto_reply(struct rg_wbuf *w, uint64_t origin, uint64_t ref,
                    uint8_t result);
/* CHANGED: [u64 ref][u32 status] (0 or a libraft error code). */
void rg_proto_changed(struct rg_wbuf *w, uint64_t ref, uint32_t status);
/* MEMBERS header; then n x [u64 id][u8 role][blob address]. */
void rg_proto_members_begin(struct rg_wbuf *w, size_t *count_off);

#endif
