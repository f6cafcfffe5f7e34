/* The port protocol; see proto.h. */
#include "proto.h"

#include <string.h>

#include "limits.h"

bool rg_proto_header(struct rg_rbuf *r, uint8_t *type, const char **err)
{
    uint8_t version = rg_rbuf_u8(r);
    *type = rg_rbuf_u8(r);
    if (!rg_rbuf_ok(r)) {
        *err = "frame shorter than its header";
        return false;
    }
    if (version != RG_PROTO_VERSION) {
        *err = "unsupported protocol version";
        return false;
    }
    return true;
}

/* Copies a blob into strbuf as a C string, refusing embedded NULs. */
static const char *take_string(struct rg_rbuf *r, size_t max, char **strbuf,
                               size_t *room)
{
    uint32_t len;
    const uint8_t *p = rg_rbuf_blob(r, max, &len);
    if (p == NULL || len + 1 > *room || memchr(p, 0, len) != NULL) {
        r->failed = true;
        return NULL;
    }
    char *s = *strbuf;
    memcpy(s, p, len);
    s[len] = '\0';
    *strbuf += len + 1;
    *room -= len + 1;
    return s;
}

bool rg_proto_start(struct rg_rbuf *r, struct rg_start *s, char *strbuf,
                    size_t strbuf_len, const char **err)
{
    memset(s, 0, sizeof *s);
    s->id = rg_rbuf_u64(r);
    uint8_t flags = rg_rbuf_u8(r);
    s->dir = take_string(r, 4096, &strbuf, &strbuf_len);
    s->bind_host = take_string(r, 63, &strbuf, &strbuf_len); /* IPv4 text */
    s->port_lo = rg_rbuf_u16(r);
    s->port_hi = rg_rbuf_u16(r);
    s->secret = rg_rbuf_blob(r, 1024, &s->secret_len);
    s->snapshot_threshold = rg_rbuf_u32(r);
    s->snapshot_trailing = rg_rbuf_u32(r);
    s->tls = rg_rbuf_u8(r);
    s->certfile = take_string(r, 4096, &strbuf, &strbuf_len);
    s->keyfile = take_string(r, 4096, &strbuf, &strbuf_len);
    s->cafile = take_string(r, 4096, &strbuf, &strbuf_len);
    uint8_t verify = rg_rbuf_u8(r);
    s->verify = verify == 1;
    s->bootstrap = (flags & 1) != 0;
    /* take_string() marks r failed, so s->dir is only read when set. */
    if (!rg_rbuf_done(r) || flags > 1 || s->port_lo > s->port_hi ||
        s->dir[0] == '\0' ||
        s->snapshot_threshold < RG_SNAPSHOT_THRESHOLD_MIN ||
        s->snapshot_threshold > RG_SNAPSHOT_SETTING_MAX ||
        s->snapshot_trailing > RG_SNAPSHOT_SETTING_MAX || s->tls > 2 || verify > 1 ||
        (s->tls == 2 && (s->certfile[0] == '\0' || s->keyfile[0] == '\0' ||
                         (s->verify && s->cafile[0] == '\0')))) {
        *err = "malformed START frame";
        return false;
    }
    return true;
}

bool rg_proto_ops_count(struct rg_rbuf *r, uint32_t *count)
{
    *count = rg_rbuf_u32(r);
    /* Every op takes at least 9 bytes; refuse counts the frame cannot hold. */
    return rg_rbuf_ok(r) && *count > 0 && *count <= r->left / 9;
}

static void header(struct rg_wbuf *w, uint8_t type)
{
    rg_wbuf_u8(w, RG_PROTO_VERSION);
    rg_wbuf_u8(w, type);
}

void rg_proto_started(struct rg_wbuf *w, uint64_t id, uint16_t port,
                      bool resumed)
{
    header(w, RG_MSG_STARTED);
    rg_wbuf_u64(w, id);
    rg_wbuf_u16(w, port);
    rg_wbuf_u8(w, resumed ? 1 : 0);
}

void rg_proto_error(struct rg_wbuf *w, const char *msg)
{
    header(w, RG_MSG_ERROR);
    rg_wbuf_blob(w, msg, strlen(msg));
}

void rg_proto_status(struct rg_wbuf *w, const struct rg_status *s)
{
    header(w, RG_MSG_STATUS);
    rg_wbuf_u8(w, s->state);
    rg_wbuf_u64(w, s->leader);
    rg_wbuf_u64(w, s->term);
    rg_wbuf_u64(w, s->applied);
    rg_wbuf_u64(w, s->commit);
    rg_wbuf_u64(w, s->last_index);
    rg_wbuf_u8(w, s->synced ? 1 : 0);
    rg_wbuf_u32(w, s->io_error);
    rg_wbuf_u64(w, s->rss);
}

void rg_proto_replies_begin(struct rg_wbuf *w, size_t *count_off)
{
    header(w, RG_MSG_REPLIES);
    *count_off = w->len;
    rg_wbuf_u32(w, 0);
}

void rg_proto_reply(struct rg_wbuf *w, uint64_t origin, uint64_t ref,
                    uint8_t result)
{
    rg_wbuf_u64(w, origin);
    rg_wbuf_u64(w, ref);
    rg_wbuf_u8(w, result);
    rg_wbuf_u32(w, 0); /* empty payload */
}

bool rg_proto_fwd_origin(struct rg_rbuf *r, uint64_t *origin)
{
    *origin = rg_rbuf_u64(r);
    return rg_rbuf_ok(r) && *origin != 0;
}

bool rg_proto_change(struct rg_rbuf *r, struct rg_change *c)
{
    uint32_t len;
    memset(c, 0, sizeof *c);
    c->kind = rg_rbuf_u8(r);
    c->ref = rg_rbuf_u64(r);
    c->id = rg_rbuf_u64(r);
    c->role = rg_rbuf_u8(r);
    const uint8_t *a = rg_rbuf_blob(r, sizeof c->address - 1, &len);
    if (!rg_rbuf_done(r) || c->kind < RG_CONF_ADD ||
        c->kind > RG_CONF_TRANSFER || c->role > 2 ||
        (a != NULL && memchr(a, 0, len) != NULL)) {
        return false;
    }
    if (len > 0) {
        memcpy(c->address, a, len);
    }
    c->address[len] = '\0';
    if (c->kind == RG_CONF_ADD) {
        return c->id != 0 && len > 0;
    }
    return c->kind == RG_CONF_TRANSFER || c->id != 0;
}

void rg_proto_changed(struct rg_wbuf *w, uint64_t ref, uint32_t status)
{
    header(w, RG_MSG_CHANGED);
    rg_wbuf_u64(w, ref);
    rg_wbuf_u32(w, status);
}

void rg_proto_members_begin(struct rg_wbuf *w, size_t *count_off)
{
    header(w, RG_MSG_MEMBERS);
    *count_off = w->len;
    rg_wbuf_u32(w, 0);
}
