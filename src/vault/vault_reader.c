/*
 * vault_reader.c - readers: many reads in one store snapshot, for a thread that reads a
 * lot (the matcher).
 *
 * A reader keeps its own copies of the keys it needs in sodium memory (XChaCha20 subkeys by
 * bucket and batch, wiped on close), remembers the records whose span it read in this
 * snapshot so that fetching one next does not search the store again, and opens the sealed
 * lists (districts, postcodes, namesakes, entries without a postcode) that the matcher
 * searches before it fetches records. Record and list formats are in vault_records.c.
 */
#include "vault/vault_internal.h"

#include <stddef.h>
#include <stdlib.h>

#define RK_SLOTS       64
#define NOPC_SET_AFTER 64

struct rv_vault_reader {
    struct rv_vault *v;
    struct rv_txn *t;    /* the snapshot, or NULL */
    struct rv_txn *held; /* between snapshots: the last one, reset, to renew */
    /* The files-ingested counter as read in the snapshot with id gen_snap (gen_known):
     * a snapshot with the same id holds the same counter. */
    uint64_t gen, gen_snap;
    bool gen_known;
    /* The keys of the lists of versions with no postcode ('Q', 16 bytes after the kind
     * byte, sorted), read from the snapshot with id nopc_snap once a snapshot with that id
     * has looked such lists up NOPC_SET_AFTER times: most surnames have no such list, and a
     * look in this set spares them the store's descent. A snapshot with another id counts
     * afresh (a daemon's snapshots change with every recorded check and never build it). */
    uint8_t (*nopc)[16];
    size_t nnopc, nopc_cap;
    uint64_t nopc_snap;
    unsigned nopc_looks;
    bool nopc_valid;
    /* sodium memory, wiped on close */
    struct reader_keys {
        /* XChaCha20's subkeys (HChaCha20 of a bucket's data key and a batch's nonce prefix)
         * by (bucket, prefix): every record sealed by one batch for one bucket shares one,
         * so a reader derives it once and decrypts each record with ChaCha20-Poly1305. */
        uint32_t bucket[RK_SLOTS]; /* 0 = empty */
        uint8_t prefix[RK_SLOTS][16];
        uint8_t sub[RK_SLOTS][32];
        uint8_t dk[32];                   /* a data key while deriving */
        uint8_t buf[RV_ELECTOR_WIRE_MAX]; /* plaintext while decoding */
        uint8_t dist[DIST_BODY];          /* a district list while reading it */
    } * k;
    uint8_t *pcbuf; /* sodium memory: a postcode list while reading it */
    size_t pcbuf_cap;
    /* Records whose span was read in this snapshot (checked, borrowed from it), so that
     * fetching one of them next does not search the store again. */
    struct {
        uint64_t id; /* 0 = empty */
        const uint8_t *val;
        size_t vlen;
        uint32_t bucket;
        rv_date from, to;
    } seen[RK_SLOTS];
};

static size_t seen_slot(uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 58) % RK_SLOTS;
}

int rv_vault_reader_open(struct rv_vault *v, struct rv_vault_reader **out)
{
    struct rv_vault_reader *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL)
        return RV_ENOMEM;
    r->v = v;
    r->k = sodium_malloc(sizeof(*r->k));
    if (r->k == NULL) {
        free(r);
        return RV_ENOMEM;
    }
    sodium_memzero(r->k, sizeof(*r->k));
    *out = r;
    return 0;
}

void rv_vault_reader_close(struct rv_vault_reader *r)
{
    if (r == NULL)
        return;
    rv_vault_reader_end(r);
    if (r->held != NULL) {
        rv_store_abort(r->held);
        atomic_fetch_sub(&r->v->held_readers, 1);
    }
    free(r->nopc);
    sodium_memzero(r->k, sizeof(*r->k));
    sodium_free(r->k);
    if (r->pcbuf != NULL) {
        sodium_memzero(r->pcbuf, r->pcbuf_cap);
        sodium_free(r->pcbuf);
    }
    free(r);
}

int rv_vault_reader_begin(struct rv_vault_reader *r)
{
    if (r->t != NULL)
        return RV_EINVAL;
    for (size_t i = 0; i < RK_SLOTS; i++)
        r->seen[i].id = 0;
    if (r->held != NULL) {
        /* The last snapshot's transaction, renewed: no reader slot to look for again. */
        struct rv_txn *t = r->held;
        r->held = NULL;
        atomic_fetch_sub(&r->v->held_readers, 1);
        if (rv_store_renew(t) == 0) {
            r->t = t;
            return 0;
        }
        rv_store_abort(t);
    }
    return rv_store_begin(r->v->store, false, &r->t);
}

void rv_vault_reader_end(struct rv_vault_reader *r)
{
    if (r->t == NULL)
        return;
    if (atomic_fetch_add(&r->v->held_readers, 1) < RV_HELD_READERS) {
        rv_store_reset(r->t);
        r->held = r->t;
    } else {
        atomic_fetch_sub(&r->v->held_readers, 1);
        rv_store_abort(r->t); /* enough readers wait already: free the slot */
    }
    r->t = NULL;
}

int rv_vault_reader_lookup(struct rv_vault_reader *r, enum rv_index family,
                           const struct rv_index_query *q, uint64_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    if (r->t == NULL || family < 1 || family > RV_IDX_COUNT)
        return RV_EINVAL;
    return rv_index_lookup_txn(r->v, r->t, family, q, ids, cap, n);
}

int rv_vault_reader_span(struct rv_vault_reader *r, uint64_t id, rv_date *from, rv_date *to)
{
    uint8_t key[9];
    const void *val;
    size_t vlen;
    uint32_t bucket;
    int rc;

    if (r->t == NULL)
        return RV_EINVAL;
    rv_rec_key(id, key);
    /* Through the position of the last record read: a caller reading ids in ascending order
     * finds those on the same page without a descent from the root. */
    rc = rv_store_get_run(r->t, key, sizeof(key), &val, &vlen);
    if (rc == 0)
        rc = rv_rec_check(r->v, id, val, vlen, &bucket, from, to);
    if (rc == 0 && id != 0) {
        size_t h = seen_slot(id);
        r->seen[h].id = id;
        r->seen[h].val = val;
        r->seen[h].vlen = vlen;
        r->seen[h].bucket = bucket;
        r->seen[h].from = *from;
        r->seen[h].to = *to;
    }
    return rc;
}

/* The XChaCha20 subkey for a record of bucket sealed with nonce prefix, from the reader's
 * table or derived (and kept) now. */
static int reader_subkey(struct rv_vault_reader *r, uint32_t bucket, const uint8_t prefix[16],
                         const uint8_t **sub)
{
    struct reader_keys *k = r->k;
    size_t slot = (bucket * 0x9e3779b1u ^ rv_get_u32le(prefix)) % RK_SLOTS;
    int rc;

    if (k->bucket[slot] != bucket || memcmp(k->prefix[slot], prefix, 16) != 0) {
        k->bucket[slot] = 0;
        rc = rv_vault_data_key(r->v, r->t, bucket, k->dk);
        if (rc != 0)
            return rc;
        crypto_core_hchacha20(k->sub[slot], prefix, k->dk, NULL);
        sodium_memzero(k->dk, sizeof(k->dk));
        memcpy(k->prefix[slot], prefix, 16);
        k->bucket[slot] = bucket;
    }
    *sub = k->sub[slot];
    return 0;
}

int rv_vault_reader_fetch(struct rv_vault_reader *r, uint64_t id, struct rv_version *out)
{
    uint8_t key[9], ad[36], npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
    const uint8_t *val, *sub;
    const void *vp;
    size_t vlen;
    unsigned long long plen = 0;
    uint32_t bucket;
    rv_date from, to;
    int rc;

    memset(out, 0, sizeof(*out));
    if (r->t == NULL)
        return RV_EINVAL;
    if (id != 0 && r->seen[seen_slot(id)].id == id) {
        size_t h = seen_slot(id);
        val = r->seen[h].val;
        vlen = r->seen[h].vlen;
        bucket = r->seen[h].bucket;
        from = r->seen[h].from;
        to = r->seen[h].to;
    } else {
        rv_rec_key(id, key);
        rc = rv_store_get_run(r->t, key, sizeof(key), &vp, &vlen);
        if (rc != 0)
            return rc;
        val = vp;
        rc = rv_rec_check(r->v, id, val, vlen, &bucket, &from, &to);
        if (rc != 0)
            return rc;
    }
    if (vlen - REC_HDR - 16 > RV_ELECTOR_WIRE_MAX)
        return RV_ECORRUPT;
    rc = reader_subkey(r, bucket, val + 30, &sub);
    if (rc != 0)
        return rc;
    rv_rec_ad(r->v, id, bucket, from, ad);
    memcpy(npub + 4, val + 30 + 16, 8);
    /* The second step of XChaCha20-Poly1305 (the first is the subkey): the same bytes. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(r->k->buf, &plen, NULL, val + REC_HDR,
                                                  vlen - REC_HDR, ad, sizeof(ad), npub, sub) != 0)
        return RV_ECORRUPT;
    rc = rv_elector_decode(r->k->buf, (size_t)plen, &out->e);
    sodium_memzero(r->k->buf, (size_t)plen);
    if (rc != 0) {
        sodium_memzero(out, sizeof(*out));
        return RV_ECORRUPT;
    }
    out->id = id;
    out->from = from;
    out->to = to;
    return 0;
}

int rv_vault_reader_generation(struct rv_vault_reader *r, uint64_t *out)
{
    uint64_t snap;
    int rc;

    *out = 0;
    if (r->t == NULL)
        return RV_EINVAL;
    snap = rv_store_snapshot_id(r->t);
    if (r->gen_known && r->gen_snap == snap) {
        *out = r->gen;
        return 0;
    }
    r->gen_known = false;
    if ((rc = rv_vault_counter_get(r->t, "seq", out)) != 0)
        return rc;
    r->gen = *out;
    r->gen_snap = snap;
    r->gen_known = true;
    return 0;
}

struct districts_ctx {
    struct rv_vault_reader *r;
    rv_vault_district_fn fn;
    void *ctx;
};

static int districts_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen)
{
    struct districts_ctx *d = ctx;
    uint8_t *body = d->r->k->dist;
    size_t blen, pos = 2;
    char code[8];
    int rc;

    if (klen != 1 + RV_AREA_LEN)
        return RV_ECORRUPT;
    rc = rv_district_open(d->r->v, key + 1, val, vlen, body, &blen);
    for (size_t i = 0, cnt = (size_t)body[0] | (size_t)body[1] << 8; rc == 0 && i < cnt; i++) {
        memcpy(code, body + pos + 1, body[pos]);
        code[body[pos]] = '\0';
        pos += 1 + body[pos];
        rc = d->fn(d->ctx, code);
    }
    sodium_memzero(body, DIST_BODY);
    return rc;
}

int rv_vault_reader_districts(struct rv_vault_reader *r, rv_vault_district_fn fn, void *ctx)
{
    struct districts_ctx d = {r, fn, ctx};

    if (r->t == NULL)
        return RV_EINVAL;
    return rv_store_scan(r->t, "D", 1, districts_one, &d);
}

/* Makes the reader's list buffer (sodium memory, wiped when replaced) hold at least n
 * bytes. */
static int pcbuf_reserve(struct rv_vault_reader *r, size_t n)
{
    size_t cap = n < 4096 ? 4096 : n;
    uint8_t *nb;

    if (n <= r->pcbuf_cap)
        return 0;
    if ((nb = sodium_malloc(cap)) == NULL)
        return RV_ENOMEM;
    if (r->pcbuf != NULL) {
        sodium_memzero(r->pcbuf, r->pcbuf_cap);
        sodium_free(r->pcbuf);
    }
    r->pcbuf = nb;
    r->pcbuf_cap = cap;
    return 0;
}

int rv_vault_reader_postcode(struct rv_vault_reader *r, const char *postcode,
                             rv_vault_postcode_fn fn, void *ctx)
{
    uint8_t key[17];
    const void *val;
    size_t vlen, blen = 0, pos = 0, clen;
    int rc;
    char compact[9], outward[9];

    if (r->t == NULL || rv_pc_list_key(r->v, postcode, key) != 0 ||
        rv_split_postcode(postcode, compact, outward) != 0)
        return RV_EINVAL;
    rc = rv_store_get(r->t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = pcbuf_reserve(r, vlen)) != 0)
        return rc;
    rc = rv_pc_list_open(r->v, key, val, vlen, r->pcbuf, &blen);
    clen = strlen(compact);
    while (rc == 0 && pos < blen) {
        const uint8_t *e = r->pcbuf + pos, *sl = e + 9 + e[8];
        size_t l = sl[0] == RV_VAULT_PC_LONG ? RV_VAULT_PC_SURNAME - 1 : sl[0];
        /* The list holds the postcodes that share its truncated key: only this one's. */
        if (e[8] == clen && memcmp(e + 9, compact, clen) == 0)
            rc = fn(ctx, rv_get_u64le(e), (const char *)sl + 1,
                    sl[0] == RV_VAULT_PC_LONG ? sl[0] : l);
        pos += 9 + e[8] + 1 + l;
    }
    sodium_memzero(r->pcbuf, blen);
    return rc < 0 ? rc : 0;
}

static int nopc_key_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct rv_vault_reader *r = ctx;

    (void)val;
    (void)vlen;
    if (klen != 17)
        return RV_ECORRUPT;
    if (r->nnopc == r->nopc_cap) {
        size_t cap = r->nopc_cap != 0 ? r->nopc_cap * 2 : 1024;
        uint8_t(*n)[16] = realloc(r->nopc, cap * sizeof(*n));
        if (n == NULL)
            return RV_ENOMEM;
        r->nopc = n;
        r->nopc_cap = cap;
    }
    memcpy(r->nopc[r->nnopc++], key + 1, 16);
    return 0;
}

/* False when the snapshot certainly holds no list under key (a 'Q' key): from the set of
 * such keys, read (in key order, so sorted) once this snapshot id has asked often. */
static bool nopc_may_exist(struct rv_vault_reader *r, const uint8_t key[17])
{
    uint64_t snap = rv_store_snapshot_id(r->t);
    size_t lo = 0, hi;

    if (!r->nopc_valid || r->nopc_snap != snap) {
        if (r->nopc_snap != snap) {
            r->nopc_valid = false;
            r->nopc_snap = snap;
            r->nopc_looks = 0;
        }
        if (++r->nopc_looks < NOPC_SET_AFTER)
            return true;
        if (r->nopc_looks > NOPC_SET_AFTER)
            return true; /* reading the set failed in this snapshot: do without */
        r->nnopc = 0;
        if (rv_store_scan(r->t, "Q", 1, nopc_key_one, r) != 0)
            return true;
        r->nopc_valid = true;
    }
    hi = r->nnopc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(r->nopc[mid], key + 1, 16);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

int rv_vault_reader_no_postcode(struct rv_vault_reader *r, const char *surname, rv_vault_nopc_fn fn,
                                void *ctx)
{
    uint8_t key[17];
    const void *val;
    size_t vlen, blen = 0, pos = 0, n = strlen(surname);
    char sw[RV_NAME_MAX], fo[RV_NAME_MAX];
    int rc;

    if (r->t == NULL || n == 0 || n >= RV_NAME_MAX || rv_nopc_list_key(r->v, surname, n, key) != 0)
        return RV_EINVAL;
    if (!nopc_may_exist(r, key))
        return 0;
    rc = rv_store_get(r->t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = pcbuf_reserve(r, vlen)) != 0)
        return rc;
    rc = rv_nopc_list_open(r->v, key, val, vlen, r->pcbuf, &blen);
    while (rc == 0 && pos < blen) {
        const uint8_t *e = r->pcbuf + pos;
        uint64_t id = rv_get_u64le(e);
        size_t sl = e[8] & 0x7f;
        bool address = (e[8] & 0x80) != 0;
        memcpy(sw, e + 9, sl);
        sw[sl] = '\0';
        pos += 9 + sl;
        memcpy(fo, r->pcbuf + pos + 1, r->pcbuf[pos]);
        fo[r->pcbuf[pos]] = '\0';
        pos += 1 + r->pcbuf[pos];
        /* The list holds the surnames that share its truncated key: only this one's (most
         * often listed as the very bytes asked for, a single word). */
        if ((sl == n && memcmp(sw, surname, n) == 0) || rv_words_name(sw, surname))
            rc = fn(ctx, id, sw, fo, address);
    }
    sodium_memzero(r->pcbuf, blen);
    sodium_memzero(sw, sizeof(sw));
    sodium_memzero(fo, sizeof(fo));
    return rc < 0 ? rc : 0;
}

int rv_vault_reader_namesakes(struct rv_vault_reader *r, const struct rv_index_query *q,
                              rv_vault_namesake_fn fn, void *ctx)
{
    uint8_t key[17];
    const void *val;
    size_t vlen, blen = 0, pos = 0;
    char pc[9], sw[RV_VAULT_PC_SURNAME], fo[RV_VAULT_PC_SURNAME];
    size_t olen;
    int rc;
    char compact[9], outward[9];

    if (r->t == NULL || q->surname == NULL || q->postcode == NULL ||
        rv_ns_list_key(r->v, q->initial, q->surname, q->postcode, key) != 0 ||
        rv_split_postcode(q->postcode, compact, outward) != 0)
        return RV_EINVAL;
    rc = rv_store_get(r->t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = pcbuf_reserve(r, vlen)) != 0)
        return rc;
    rc = rv_ns_list_open(r->v, key, val, vlen, r->pcbuf, &blen);
    olen = strlen(outward);
    while (rc == 0 && pos < blen) {
        const uint8_t *e = r->pcbuf + pos, *sp, *fp;
        uint64_t id = rv_get_u64le(e);
        size_t sl, fl;
        bool scut, fcut;
        pos += 9 + e[8];
        sp = r->pcbuf + pos; /* length byte, then the surname words */
        sl = rv_ns_len(sp[0]);
        pos += 1 + sl;
        fp = r->pcbuf + pos; /* length byte, then the forenames */
        fl = rv_ns_len(fp[0]);
        pos += 1 + fl;
        /* The cheap parts of the test below first (the initial, the outward code), so that
         * the names of most entries are not copied. */
        if (fl == 0 || (char)fp[1] != q->initial || e[8] < olen ||
            memcmp(e + 9, outward, olen) != 0)
            continue;
        memcpy(pc, e + 9, e[8]);
        pc[e[8]] = '\0';
        scut = sp[0] == RV_VAULT_PC_LONG;
        memcpy(sw, sp + 1, sl);
        sw[sl] = '\0';
        fcut = fp[0] == RV_VAULT_PC_LONG;
        memcpy(fo, fp + 1, fl);
        fo[fl] = '\0';
        /* The list holds the names that share its truncated key: only these, wherever the
         * listed name is whole enough to tell. */
        if ((scut || rv_words_joined_equal(sw, q->surname)) && fo[0] == q->initial &&
            strncmp(pc, outward, olen) == 0 && (pc[olen] >= '0' && pc[olen] <= '9') &&
            strlen(pc) == olen + 3)
            rc = fn(ctx, id, pc, scut ? NULL : sw, fcut ? NULL : fo);
    }
    sodium_memzero(r->pcbuf, blen);
    sodium_memzero(sw, sizeof(sw));
    sodium_memzero(fo, sizeof(fo));
    return rc < 0 ? rc : 0;
}
