/*
 * entry.c - the canonical byte encoding of an audit entry, and subject ids.
 *
 * An entry's bytes are what the Merkle tree hashes, so there must be exactly one encoding
 * of each entry: fixed field order, little-endian fixed-width integers, length-prefixed
 * strings, and a decoder that refuses anything the encoder would not write (trailing bytes,
 * control characters, invalid UTF-8, an unknown version). The layout is in docs/audit.md:
 *
 *   u8 version (1) | i64le time_ms | u8 len, principal | u8 len, role | u8 len, action |
 *   u16le len, params | u8 len, outcome | u8 len, client | u16le n, n x 32-byte subject ids
 *
 * Subject ids are keyed BLAKE2b-256 hashes: the log can say "this elector was disclosed to
 * that principal" to whoever holds the audit MAC key, and nothing to anyone else.
 */
#include "audit/audit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_VERSION 1
#define NSTR          6

/* Valid UTF-8 without C0, DEL or C1 control characters. */
static bool text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += len;
    }
    return true;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int rv_audit_entry_encode(const struct rv_audit_entry *e, uint8_t *buf, size_t cap, size_t *len)
{
    const char *strs[NSTR] = {e->principal, e->role, e->action, e->params, e->outcome, e->client};
    size_t need = 1 + 8 + 2, off = 0;
    uint64_t t = (uint64_t)e->time_ms;

    *len = 0;
    for (int i = 0; i < NSTR; i++) {
        size_t n;
        if (strs[i] == NULL)
            return RV_EINVAL;
        n = strlen(strs[i]);
        if (n > (i == 3 ? (size_t)RV_AUDIT_PARAMS_MAX : (size_t)RV_AUDIT_STR_MAX) ||
            !text_ok((const uint8_t *)strs[i], n))
            return RV_EINVAL;
        need += (i == 3 ? 2 : 1) + n;
    }
    if (e->nsubjects > RV_AUDIT_SUBJECTS_MAX || (e->nsubjects > 0 && e->subjects == NULL) ||
        e->time_ms < 0)
        return RV_EINVAL;
    need += e->nsubjects * RV_AUDIT_HASH_LEN;
    if (need > cap)
        return RV_ETOOBIG;

    buf[off++] = ENTRY_VERSION;
    for (int i = 0; i < 8; i++)
        buf[off++] = (uint8_t)(t >> (8 * i));
    for (int i = 0; i < NSTR; i++) {
        size_t n = strlen(strs[i]);
        if (i == 3) {
            put_u16(buf + off, (uint16_t)n);
            off += 2;
        } else {
            buf[off++] = (uint8_t)n;
        }
        memcpy(buf + off, strs[i], n);
        off += n;
    }
    put_u16(buf + off, (uint16_t)e->nsubjects);
    off += 2;
    if (e->nsubjects > 0)
        memcpy(buf + off, e->subjects, e->nsubjects * RV_AUDIT_HASH_LEN);
    off += e->nsubjects * RV_AUDIT_HASH_LEN;
    *len = off;
    return 0;
}

void rv_audit_record_free(struct rv_audit_record *rec)
{
    if (rec == NULL)
        return;
    free(rec->raw);
    free(rec->text);
    memset(rec, 0, sizeof(*rec));
}

/* Where the fields of a canonical entry lie. */
struct spans {
    int64_t time_ms;
    size_t off[NSTR], len[NSTR];
    size_t subj_off;
    uint16_t nsub;
};

static int scan(const uint8_t *buf, size_t len, struct spans *sp)
{
    size_t off = 9;
    uint64_t t = 0;

    if (len < 1)
        return RV_ECORRUPT;
    if (buf[0] != ENTRY_VERSION)
        return RV_EVERSION;
    if (len < 9 || len > RV_AUDIT_ENTRY_MAX)
        return RV_ECORRUPT;
    for (int i = 0; i < 8; i++)
        t |= (uint64_t)buf[1 + i] << (8 * i);
    if (t > (uint64_t)INT64_MAX)
        return RV_ECORRUPT;
    sp->time_ms = (int64_t)t;
    for (int i = 0; i < NSTR; i++) {
        size_t n;
        if (i == 3) {
            if (len - off < 2)
                return RV_ECORRUPT;
            n = get_u16(buf + off);
            off += 2;
            if (n > RV_AUDIT_PARAMS_MAX)
                return RV_ECORRUPT;
        } else {
            if (len - off < 1)
                return RV_ECORRUPT;
            n = buf[off++];
        }
        if (len - off < n || !text_ok(buf + off, n))
            return RV_ECORRUPT;
        sp->off[i] = off;
        sp->len[i] = n;
        off += n;
    }
    if (len - off < 2)
        return RV_ECORRUPT;
    sp->nsub = get_u16(buf + off);
    off += 2;
    if (sp->nsub > RV_AUDIT_SUBJECTS_MAX || len - off != (size_t)sp->nsub * RV_AUDIT_HASH_LEN)
        return RV_ECORRUPT;
    sp->subj_off = off;
    return 0;
}

int rv_audit_entry_check(const uint8_t *buf, size_t len)
{
    struct spans sp;

    return scan(buf, len, &sp);
}

int rv_audit_entry_decode(const uint8_t *buf, size_t len, struct rv_audit_record *rec)
{
    const char **fields[NSTR];
    struct spans sp;
    size_t toff = 0;
    int rc;

    memset(rec, 0, sizeof(*rec));
    rc = scan(buf, len, &sp);
    if (rc != 0)
        return rc;
    rec->raw = malloc(len);
    /* Each string plus its NUL fits in len + NSTR bytes. */
    rec->text = malloc(len + NSTR);
    if (rec->raw == NULL || rec->text == NULL) {
        rv_audit_record_free(rec);
        return RV_ENOMEM;
    }
    memcpy(rec->raw, buf, len);
    rec->raw_len = len;
    rec->e.time_ms = sp.time_ms;
    fields[0] = &rec->e.principal;
    fields[1] = &rec->e.role;
    fields[2] = &rec->e.action;
    fields[3] = &rec->e.params;
    fields[4] = &rec->e.outcome;
    fields[5] = &rec->e.client;
    for (int i = 0; i < NSTR; i++) {
        memcpy(rec->text + toff, buf + sp.off[i], sp.len[i]);
        rec->text[toff + sp.len[i]] = '\0';
        *fields[i] = rec->text + toff;
        toff += sp.len[i] + 1;
    }
    rec->e.nsubjects = sp.nsub;
    rec->e.subjects = sp.nsub > 0 ? (const uint8_t(*)[32])(rec->raw + sp.subj_off) : NULL;
    rv_audit_leaf_hash(buf, len, rec->leaf_hash);
    return 0;
}

int rv_audit_subject_id(const uint8_t key[32], const struct rv_name_key *name,
                        const struct rv_postcode *pc, uint8_t out[32])
{
    crypto_generichash_state st;
    const char *parts[3] = {name->surname, name->first, pc->canon};
    size_t maxes[3] = {sizeof(name->surname), sizeof(name->first), sizeof(pc->canon)};
    static const uint8_t version = 0x01;
    int rc = RV_ECRYPTO;

    if (crypto_generichash_init(&st, key, 32, 32) != 0)
        goto out;
    crypto_generichash_update(&st, &version, 1);
    for (int i = 0; i < 3; i++) {
        size_t n = strnlen(parts[i], maxes[i]);
        uint8_t l[2];
        if (n == maxes[i]) {
            rc = RV_EINVAL; /* not NUL-terminated */
            goto out;
        }
        put_u16(l, (uint16_t)n);
        crypto_generichash_update(&st, l, 2);
        crypto_generichash_update(&st, (const uint8_t *)parts[i], n);
    }
    if (crypto_generichash_final(&st, out, 32) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(&st, sizeof(st));
    return rc;
}
