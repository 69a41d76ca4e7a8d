/*
 * vault_records.c - the stored forms the reader and the writer share: sealed record
 * versions, blind-index values and lookups, and the sealed lists (districts, postcodes,
 * entries without a postcode, namesakes) with their keys and opening.
 *
 * A record version is stored under 0xff || id (u64 BE) as:
 *      0  format (u8) = 1
 *      1  flags (u8) = 0
 *      2  bucket (u32 LE): whose data key sealed it
 *      6  from (i32 LE)
 *     10  to (i32 LE): RV_DATE_FOREVER while in force
 *     14  MAC[16]: keyed BLAKE2b over "rvrm" || id || bytes 0..13
 *     30  nonce[24]
 *     54  XChaCha20-Poly1305 of the rv_elector wire form, additional data
 *         "rvrc" || vault id || id || bucket || from
 * The AEAD binds the ciphertext to its record id and bucket, so moving or swapping
 * ciphertexts fails; the MAC covers the metadata, including `to`, which changes when a
 * version is closed and so cannot sit inside the AEAD's additional data.
 *
 * Blind-index input is "\x01" (encoding version) || family || (u8 length || bytes) for each
 * field, hashed with the family's subkey and truncated to the vault's width.
 */
#include "vault/vault_internal.h"

#include <stddef.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------
 * Blind indexes.
 */

static size_t add_field(uint8_t *buf, size_t pos, size_t cap, const char *s, size_t n)
{
    if (pos == SIZE_MAX || n > 255 || pos + 1 + n > cap)
        return SIZE_MAX;
    buf[pos] = (uint8_t)n;
    memcpy(buf + pos + 1, s, n);
    return pos + 1 + n;
}

/* "SW1A 1AA" -> "SW1A1AA" and outward "SW1A". */
int rv_split_postcode(const char *pc, char compact[9], char outward[9])
{
    size_t n = 0, o = 0;
    bool in_out = true;

    if (pc == NULL || pc[0] == '\0')
        return RV_EINVAL;
    for (const char *s = pc; *s != '\0'; s++) {
        if (*s == ' ') {
            in_out = false;
            continue;
        }
        if (n >= 8)
            return RV_EINVAL;
        compact[n++] = *s;
        if (in_out)
            outward[o++] = *s;
    }
    compact[n] = '\0';
    outward[o] = '\0';
    return 0;
}

int rv_vault_prep_cache_new(struct rv_vault_prep_cache **out)
{
    struct rv_vault_prep_cache *c = sodium_malloc(sizeof(*c));

    *out = NULL;
    if (c == NULL)
        return RV_ENOMEM;
    sodium_memzero(c, sizeof(*c));
    *out = c;
    return 0;
}

void rv_vault_prep_cache_free(struct rv_vault_prep_cache *c)
{
    if (c == NULL)
        return;
    sodium_memzero(c, sizeof(*c));
    sodium_free(c);
}

/* The truncated value of a family for q into out (*outlen bytes) and, when tag is not
 * NULL, the entry's raw check bits (bytes 8..11 of the full hash). */
int rv_index_value_cached(const struct rv_vault *v, struct rv_vault_prep_cache *c,
                          enum rv_index family, const struct rv_index_query *q, uint8_t *out,
                          size_t *outlen, uint8_t *tag)
{
    uint8_t in[600], full[16];
    char compact[9], outward[9], prim[RV_PHONETIC_MAX], alt[RV_PHONETIC_MAX];
    size_t pos = 2, nbytes;
    bool need_pc = family != RV_IDX_SURNAME;
    const char *s = q->surname;

    if (family < 1 || family > RV_IDX_COUNT)
        return RV_EINVAL;
    if (need_pc && rv_split_postcode(q->postcode, compact, outward) != 0)
        return RV_EINVAL;
    in[0] = 1;
    in[1] = (uint8_t)family;
    switch (family) {
    case RV_IDX_SURNAME_POSTCODE:
    case RV_IDX_SURNAME:
        if (s == NULL || s[0] == '\0')
            return RV_EINVAL;
        pos = add_field(in, pos, sizeof(in), s, strlen(s));
        if (family == RV_IDX_SURNAME_POSTCODE)
            pos = add_field(in, pos, sizeof(in), compact, strlen(compact));
        break;
    case RV_IDX_INITIAL_SURNAME_OUTWARD:
        if (s == NULL || s[0] == '\0' || q->initial == 0)
            return RV_EINVAL;
        pos = add_field(in, pos, sizeof(in), &q->initial, 1);
        pos = add_field(in, pos, sizeof(in), s, strlen(s));
        pos = add_field(in, pos, sizeof(in), outward, strlen(outward));
        break;
    case RV_IDX_PHONETIC_POSTCODE:
        if (s == NULL || s[0] == '\0')
            return RV_EINVAL;
        if (c != NULL && strcmp(c->mp_surname, s) == 0) {
            memcpy(prim, c->mp_prim, sizeof(prim));
            memcpy(alt, c->mp_alt, sizeof(alt));
        } else {
            rv_double_metaphone(s, prim, alt);
            if (c != NULL && strlen(s) < sizeof(c->mp_surname)) {
                memcpy(c->mp_surname, s, strlen(s) + 1);
                memcpy(c->mp_prim, prim, sizeof(prim));
                memcpy(c->mp_alt, alt, sizeof(alt));
            }
        }
        if (prim[0] == '\0')
            return RV_EINVAL;
        pos = add_field(in, pos, sizeof(in), prim, strlen(prim));
        pos = add_field(in, pos, sizeof(in), compact, strlen(compact));
        break;
    case RV_IDX_ADDRESS_POSTCODE:
        if (q->first_line == NULL || q->first_line[0] == '\0')
            return RV_EINVAL;
        pos = add_field(in, pos, sizeof(in), q->first_line, strlen(q->first_line));
        pos = add_field(in, pos, sizeof(in), compact, strlen(compact));
        break;
    }
    if (pos == SIZE_MAX) {
        sodium_memzero(in, sizeof(in)); /* the fields that did fit */
        return RV_EINVAL;
    }
    if (c != NULL && c->idx[family - 1].len == pos && memcmp(c->idx[family - 1].in, in, pos) == 0) {
        memcpy(full, c->idx[family - 1].full, sizeof(full));
    } else {
        rv_vault_keyed_hash(v->k->st_idx[family - 1], in, pos, full);
        if (c != NULL) {
            memcpy(c->idx[family - 1].in, in, pos);
            memcpy(c->idx[family - 1].full, full, sizeof(full));
            c->idx[family - 1].len = pos;
        }
    }
    nbytes = (v->index_bits + 7) / 8;
    memcpy(out, full, nbytes);
    if (v->index_bits % 8 != 0)
        out[nbytes - 1] &= (uint8_t)(0xff << (8 - v->index_bits % 8));
    *outlen = nbytes;
    if (tag != NULL)
        memcpy(tag, full + 8, 4);
    sodium_memzero(in, pos); /* the bytes written: the fields, never past pos */
    sodium_memzero(full, sizeof(full));
    return 0;
}

int rv_vault_index_value(const struct rv_vault *v, enum rv_index family,
                         const struct rv_index_query *q, uint8_t *out, size_t *outlen)
{
    return rv_index_value_cached(v, NULL, family, q, out, outlen, NULL);
}

struct collect {
    const struct rv_vault *v;
    uint64_t *ids;
    size_t cap, n;
    size_t vlen;    /* bytes of the truncated value */
    uint8_t raw[4]; /* the query's check bits */
};

/* Keeps the ids whose check tag agrees with the query's: the entries whose full hash
 * agrees, not only its truncation. */
static int collect_id(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct collect *c = ctx;
    uint8_t want[4];
    uint64_t id;

    if (klen != 2 + c->vlen + 8 || vlen != 4)
        return RV_ECORRUPT;
    id = rv_get_u64be(key + klen - 8);
    rv_vault_index_tag(c->v, key[1], key + 2, c->vlen, id, c->raw, want);
    if (memcmp(want, val, 4) != 0)
        return 0;
    if (c->n < c->cap)
        c->ids[c->n] = id;
    c->n++;
    return 0;
}

int rv_index_lookup_txn(struct rv_vault *v, struct rv_txn *t, enum rv_index family,
                        const struct rv_index_query *q, uint64_t *ids, size_t cap, size_t *n)
{
    uint8_t prefix[2 + RV_VAULT_INDEX_MAX];
    struct collect c = {v, ids, ids != NULL ? cap : 0, 0, 0, {0}};
    int rc;

    *n = 0;
    rc = rv_index_value_cached(v, NULL, family, q, prefix + 2, &c.vlen, c.raw);
    if (rc != 0)
        return rc;
    prefix[0] = 'I';
    prefix[1] = (uint8_t)family;
    rc = rv_store_scan(t, prefix, 2 + c.vlen, collect_id, &c);
    *n = c.n;
    return rc;
}

int rv_vault_lookup(struct rv_vault *v, enum rv_index family, const struct rv_index_query *q,
                    uint64_t *ids, size_t cap, size_t *n)
{
    struct rv_txn *t = NULL;
    int rc;

    *n = 0;
    if (family < 1 || family > RV_IDX_COUNT)
        return RV_EINVAL;
    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = rv_index_lookup_txn(v, t, family, q, ids, cap, n);
    rv_store_abort(t);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Sealing and reading records.
 */

void rv_rec_key(uint64_t id, uint8_t key[9])
{
    key[0] = RV_REC_PREFIX;
    rv_put_u64be(key + 1, id);
}

void rv_rec_mac(const struct rv_vault *v, uint64_t id, const uint8_t *rec, uint8_t mac[16])
{
    uint8_t in[4 + 8 + REC_MACED];

    memcpy(in, "rvrm", 4);
    rv_put_u64be(in + 4, id);
    memcpy(in + 12, rec, REC_MACED);
    rv_vault_sip(v->k->sip_recmac, in, sizeof(in), mac);
}

void rv_rec_ad(const struct rv_vault *v, uint64_t id, uint32_t bucket, rv_date from, uint8_t ad[36])
{
    memcpy(ad, "rvrc", 4);
    memcpy(ad + 4, v->vault_id, 16);
    rv_put_u64be(ad + 20, id);
    rv_put_u32le(ad + 28, bucket);
    rv_put_u32le(ad + 32, (uint32_t)from);
}

/* Seals wire bytes into nonce || ciphertext || tag with XChaCha20-Poly1305. The nonce is
 * the batch's random prefix and the record id, unique under any key since each id is
 * sealed once per batch. XChaCha20 derives its key from the first 16 bytes of the nonce,
 * which every record of the batch shares, so the sealer holds that subkey and each record
 * needs only the ChaCha20-Poly1305 (IETF) step, with nonce 0^4 || id: the same bytes as
 * crypto_aead_xchacha20poly1305_ietf_encrypt. */
void rv_rec_seal(const struct rv_vault *v, const struct rv_vault_sealer *s, uint64_t id,
                 const uint8_t *wire, size_t wlen, uint8_t *out, size_t *outlen)
{
    uint8_t ad[36], npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
    unsigned long long clen;

    rv_rec_ad(v, id, s->bucket, s->from, ad);
    memcpy(out, s->nonce_prefix, 16);
    rv_put_u64be(out + 16, id);
    memcpy(npub + 4, out + 16, 8);
    crypto_aead_chacha20poly1305_ietf_encrypt(out + 24, &clen, wire, wlen, ad, sizeof(ad), NULL,
                                              npub, s->subkey);
    *outlen = 24 + (size_t)clen;
}

/* The 30 bytes in front of a new record: format, bucket, from, to (open), MAC. */
void rv_rec_header(const struct rv_vault *v, uint64_t id, uint32_t bucket, rv_date from,
                   uint8_t *rec)
{
    rec[0] = 1;
    rec[1] = 0;
    rv_put_u32le(rec + 2, bucket);
    rv_put_u32le(rec + 6, (uint32_t)from);
    rv_put_u32le(rec + 10, (uint32_t)RV_DATE_FOREVER);
    rv_rec_mac(v, id, rec, rec + REC_MACED);
}

/* Checks a stored record's format and MAC; fills bucket/from/to. */
int rv_rec_check(const struct rv_vault *v, uint64_t id, const uint8_t *val, size_t vlen,
                 uint32_t *bucket, rv_date *from, rv_date *to)
{
    uint8_t mac[16];

    if (vlen < REC_HDR + 16 || val[0] != 1 || val[1] != 0)
        return RV_ECORRUPT;
    rv_rec_mac(v, id, val, mac);
    if (crypto_verify_16(mac, val + REC_MACED) != 0)
        return RV_ECORRUPT;
    *bucket = rv_get_u32le(val + 2);
    *from = (rv_date)rv_get_u32le(val + 6);
    *to = (rv_date)rv_get_u32le(val + 10);
    return 0;
}

int rv_vault_span(struct rv_vault *v, uint64_t id, rv_date *from, rv_date *to)
{
    uint8_t key[9];
    const void *val;
    size_t vlen;
    uint32_t bucket;
    struct rv_txn *t = NULL;
    int rc;

    rv_rec_key(id, key);
    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = rv_store_get(t, key, sizeof(key), &val, &vlen);
    if (rc == 0)
        rc = rv_rec_check(v, id, val, vlen, &bucket, from, to);
    rv_store_abort(t);
    return rc;
}

int rv_vault_fetch(struct rv_vault *v, uint64_t id, struct rv_version *out)
{
    /* The plaintext on the stack (the matcher fetches many records; a guarded allocation
     * per call would cost more than the decryption), wiped on every path; the data key in a
     * scratch slot of the vault's key memory. */
    uint8_t buf[RV_ELECTOR_WIRE_MAX];
    uint8_t *dk = rv_vault_scratch_get(v);
    uint8_t key[9], ad[36];
    const uint8_t *val;
    const void *vp;
    size_t vlen;
    unsigned long long plen;
    uint32_t bucket;
    rv_date from, to;
    struct rv_txn *t = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    rv_rec_key(id, key);
    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        goto out;
    rc = rv_store_get(t, key, sizeof(key), &vp, &vlen);
    if (rc != 0)
        goto out;
    val = vp;
    rc = rv_rec_check(v, id, val, vlen, &bucket, &from, &to);
    if (rc != 0)
        goto out;
    if (vlen - REC_HDR - 16 > RV_ELECTOR_WIRE_MAX) {
        rc = RV_ECORRUPT;
        goto out;
    }
    rc = rv_vault_data_key(v, t, bucket, dk);
    if (rc != 0)
        goto out;
    rv_rec_ad(v, id, bucket, from, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(buf, &plen, NULL, val + REC_HDR, vlen - REC_HDR,
                                                   ad, sizeof(ad), val + 30, dk) != 0) {
        rc = RV_ECORRUPT;
        goto out;
    }
    rc = rv_elector_decode(buf, (size_t)plen, &out->e);
    if (rc != 0) {
        rc = RV_ECORRUPT;
        goto out;
    }
    out->id = id;
    out->from = from;
    out->to = to;
out:
    rv_store_abort(t);
    sodium_memzero(buf, sizeof(buf));
    rv_vault_scratch_put(v, dk);
    if (rc != 0)
        sodium_memzero(out, sizeof(*out));
    return rc;
}

struct scan_valid {
    struct rv_vault *v;
    rv_date d;
    rv_vault_version_fn fn;
    void *ctx;
};

static int scan_valid_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen)
{
    struct scan_valid *s = ctx;
    uint32_t bucket;
    rv_date from, to;
    uint64_t id;
    int rc;

    if (klen != 9)
        return RV_ECORRUPT;
    id = rv_get_u64be(key + 1);
    rc = rv_rec_check(s->v, id, val, vlen, &bucket, &from, &to);
    if (rc != 0)
        return rc;
    if (!rv_version_valid_at(from, to, s->d))
        return 0;
    return s->fn(s->ctx, id, from, to);
}

int rv_vault_scan_valid(struct rv_vault *v, rv_date d, rv_vault_version_fn fn, void *ctx)
{
    struct scan_valid s = {v, d, fn, ctx};
    uint8_t prefix = RV_REC_PREFIX;
    struct rv_txn *t = NULL;
    int rc;

    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = rv_store_scan(t, &prefix, 1, scan_valid_one, &s);
    rv_store_abort(t);
    return rc;
}

void rv_district_ad(const struct rv_vault *v, const uint8_t area[RV_AREA_LEN], uint8_t ad[36])
{
    memcpy(ad, "rvdd", 4);
    memcpy(ad + 4, v->vault_id, 16);
    memcpy(ad + 20, area, RV_AREA_LEN);
}

/* Opens a sealed list (key 'D' area) into body (DIST_BODY bytes, caller's): *blen gets
 * its length. RV_ECORRUPT when it fails authentication or is malformed. */
int rv_district_open(const struct rv_vault *v, const uint8_t area[RV_AREA_LEN], const uint8_t *val,
                     size_t vlen, uint8_t *body, size_t *blen)
{
    uint8_t ad[36];
    unsigned long long n;
    size_t pos = 2, cnt;

    if (vlen < DIST_HDR + 16 + 2 || vlen - DIST_HDR - 16 > DIST_BODY)
        return RV_ECORRUPT;
    rv_district_ad(v, area, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &n, NULL, val + DIST_HDR, vlen - DIST_HDR,
                                                   ad, sizeof(ad), val, v->k->districts) != 0)
        return RV_ECORRUPT;
    cnt = (size_t)body[0] | (size_t)body[1] << 8;
    for (size_t i = 0; i < cnt; i++) {
        if (pos >= n || body[pos] < 2 || body[pos] > 4 || pos + 1 + body[pos] > n)
            return RV_ECORRUPT;
        pos += 1 + body[pos];
    }
    if (pos != n)
        return RV_ECORRUPT;
    *blen = (size_t)n;
    return 0;
}

int rv_district_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* Postcode lists (see below, with the batch that writes them): the key of a postcode's
 * list, and opening one. */
/* A list's key: its kind, then a truncated keyed value, zero-padded to 16 bytes. The lists
 * of versions with no postcode and of namesakes use the truncated value of their blind-index
 * family (5, 2), so that on disk they group exactly the records those indexes group,
 * coincidences included, and a list's length says no more than the index does; the
 * readers drop the coincidences by comparing the listed names. Postcodes have no index
 * family: their lists use a keyed hash truncated to PC_BITS_LESS fewer bits than the
 * indexes, since a postcode holds a few dozen entries, so that each list too holds a few
 * postcodes. */
#define PC_BITS_LESS 5

int rv_pc_list_key(const struct rv_vault *v, const char *canon, uint8_t key[17])
{
    char compact[9], outward[9];
    uint8_t in[4 + 8], full[16];
    unsigned bits = v->index_bits > PC_BITS_LESS + 4 ? v->index_bits - PC_BITS_LESS : 4;
    size_t n, nbytes = (bits + 7) / 8;

    if (rv_split_postcode(canon, compact, outward) != 0)
        return RV_EINVAL;
    n = strlen(compact);
    memcpy(in, "rvpk", 4);
    memcpy(in + 4, compact, n);
    rv_vault_sip(v->k->sip_pckey, in, 4 + n, full);
    memset(key, 0, 17);
    key[0] = 'P';
    memcpy(key + 1, full, nbytes);
    if (bits % 8 != 0)
        key[nbytes] &= (uint8_t)(0xff << (8 - bits % 8));
    return 0;
}

void rv_pc_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36])
{
    memcpy(ad, "rvpc", 4);
    memcpy(ad + 4, v->vault_id, 16);
    memcpy(ad + 20, key + 1, 16);
}

/* Opens a sealed list into body (at least vlen bytes, caller's); *blen gets its length.
 * RV_ECORRUPT when it fails authentication or is malformed. */
int rv_pc_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                    size_t vlen, uint8_t *body, size_t *blen)
{
    uint8_t ad[36];
    unsigned long long n;
    size_t pos = 0;

    if (vlen < PCL_HDR + 16 || vlen - PCL_HDR - 16 > PCL_BODY)
        return RV_ECORRUPT;
    rv_pc_list_ad(v, key, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &n, NULL, val + PCL_HDR, vlen - PCL_HDR,
                                                   ad, sizeof(ad), val, v->k->pclist) != 0)
        return RV_ECORRUPT;
    while (pos < n) {
        size_t l;
        if (pos + 9 > n || body[pos + 8] > 8 || pos + 9 + body[pos + 8] + 1 > n)
            return RV_ECORRUPT;
        pos += 9 + body[pos + 8];
        l = body[pos] == RV_VAULT_PC_LONG ? RV_VAULT_PC_SURNAME - 1 : body[pos];
        if (l >= RV_VAULT_PC_SURNAME || pos + 1 + l > n)
            return RV_ECORRUPT;
        pos += 1 + l;
    }
    *blen = (size_t)n;
    return 0;
}

/* Lists of versions with no postcode, by surname: key and opening. */
int rv_nopc_list_key(const struct rv_vault *v, const char *surname, size_t n, uint8_t key[17])
{
    char s[RV_NAME_MAX];
    struct rv_index_query q = {s, 0, NULL, NULL};
    size_t len;
    int rc;

    if (n == 0 || n >= sizeof(s))
        return RV_EINVAL;
    memcpy(s, surname, n);
    s[n] = '\0';
    memset(key, 0, 17);
    key[0] = 'Q';
    rc = rv_index_value_cached(v, NULL, RV_IDX_SURNAME, &q, key + 1, &len, NULL);
    sodium_memzero(s, sizeof(s));
    return rc;
}

void rv_nopc_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36])
{
    memcpy(ad, "rvqs", 4);
    memcpy(ad + 4, v->vault_id, 16);
    memcpy(ad + 20, key + 1, 16);
}

int rv_nopc_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                      size_t vlen, uint8_t *body, size_t *blen)
{
    uint8_t ad[36];
    unsigned long long n;
    size_t pos = 0;

    if (vlen < PCL_HDR + 16 || vlen - PCL_HDR - 16 > PCL_BODY)
        return RV_ECORRUPT;
    rv_nopc_list_ad(v, key, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &n, NULL, val + PCL_HDR, vlen - PCL_HDR,
                                                   ad, sizeof(ad), val, v->k->pclist) != 0)
        return RV_ECORRUPT;
    while (pos < n) {
        size_t sl;
        if (pos + 9 > n)
            return RV_ECORRUPT;
        sl = body[pos + 8] & 0x7f; /* the top bit: address lines */
        if (sl >= RV_NAME_MAX || pos + 9 + sl + 1 > n)
            return RV_ECORRUPT;
        pos += 9 + sl;
        if (body[pos] >= RV_NAME_MAX || pos + 1 + body[pos] > n)
            return RV_ECORRUPT;
        pos += 1 + body[pos];
    }
    *blen = (size_t)n;
    return 0;
}

/* Namesake lists (initial + surname + outward code): key and opening. */
int rv_ns_list_key(const struct rv_vault *v, char initial, const char *surname,
                   const char *postcode, uint8_t key[17])
{
    struct rv_index_query q = {surname, initial, postcode, NULL};
    size_t len;

    if (initial == 0 || surname[0] == '\0')
        return RV_EINVAL;
    memset(key, 0, 17);
    key[0] = 'R';
    return rv_index_value_cached(v, NULL, RV_IDX_INITIAL_SURNAME_OUTWARD, &q, key + 1, &len, NULL);
}

void rv_ns_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36])
{
    memcpy(ad, "rvrs", 4);
    memcpy(ad + 4, v->vault_id, 16);
    memcpy(ad + 20, key + 1, 16);
}

/* The length of a listed name field from its length byte. */
size_t rv_ns_len(uint8_t b)
{
    return b == RV_VAULT_PC_LONG ? RV_VAULT_PC_SURNAME - 1 : b;
}

int rv_ns_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                    size_t vlen, uint8_t *body, size_t *blen)
{
    uint8_t ad[36];
    unsigned long long n;
    size_t pos = 0;

    if (vlen < PCL_HDR + 16 || vlen - PCL_HDR - 16 > PCL_BODY)
        return RV_ECORRUPT;
    rv_ns_list_ad(v, key, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &n, NULL, val + PCL_HDR, vlen - PCL_HDR,
                                                   ad, sizeof(ad), val, v->k->pclist) != 0)
        return RV_ECORRUPT;
    while (pos < n) {
        size_t l;
        if (pos + 9 > n || body[pos + 8] > 8)
            return RV_ECORRUPT;
        pos += 9 + body[pos + 8];
        for (int f = 0; f < 2; f++) {
            if (pos >= n)
                return RV_ECORRUPT;
            l = rv_ns_len(body[pos]);
            if (l >= RV_VAULT_PC_SURNAME || pos + 1 + l > n)
                return RV_ECORRUPT;
            pos += 1 + l;
        }
    }
    *blen = (size_t)n;
    return 0;
}

/* True when surname words ("smith jones") joined are `joined` ("smithjones"). */
bool rv_words_joined_equal(const char *words, const char *joined)
{
    for (; *words != '\0'; words++) {
        if (*words == ' ')
            continue;
        if (*words != *joined)
            return false;
        joined++;
    }
    return *joined == '\0';
}

/* True when a listed surname (words) is `surname`, whole or as one of the parts indexed for
 * it (as rv_vault_prepare chooses them: up to RV_VAULT_PARTS words of 3 letters or more). */
bool rv_words_name(const char *words, const char *surname)
{
    const char *tp = words;
    size_t n = strlen(surname);
    unsigned parts = 0;

    if (rv_words_joined_equal(words, surname))
        return true;
    while (*tp != '\0' && parts < RV_VAULT_PARTS) {
        size_t tl = strcspn(tp, " ");
        if (tl >= 3) {
            parts++;
            if (tl == n && memcmp(tp, surname, n) == 0)
                return true;
        }
        tp += tl;
        while (*tp == ' ')
            tp++;
    }
    return false;
}
