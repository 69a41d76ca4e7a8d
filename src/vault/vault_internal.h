/*
 * vault_internal.h - what the vault's own .c files share: the handle's layout, the key
 * space in the store, and small byte-order helpers. Not for use outside src/vault/.
 *
 * Key space (first byte; the vault owns 0x00..0x7f and 0xff):
 *   'B' area[16] year(u16 BE)            -> bucket id (u32 LE)
 *   'K' bucket(u32 BE)                   -> wrapped data key: nonce[24] ct[32] tag[16]
 *   'N' name                             -> counter (u64 LE): "rec", "bkt", "seq"
 *   0xff id(u64 BE)                      -> record version (see vault_records.c); last in
 *                                           the key space so that new records append
 *   'I' family(u8) value[w] id(u64 BE)   -> check tag[4]: bytes 8..11 of the entry's full
 *                                           keyed hash, masked with SipHash(key 37,
 *                                           "rvit" family value id) (format 2)
 *   'D' area[16]                         -> nonce[24] sealed(district list) tag[16]: the
 *                                           outward codes the area's versions hold, sealed
 *                                           under key 38 (format 2)
 *   'P' keyed postcode[16] (key 39,      -> nonce[24] sealed(version list) tag[16]: each
 *       truncated to the index width - 5    version stored at those postcodes, as id (u64
 *       bits, zero-padded)                  LE), compact postcode (u8 length, bytes),
 *                                           length (u8), folded surname words; sealed
 *                                           under key 40 (format 2)
 *   'Q' family-5 index value, zero-padded -> nonce[24] sealed(version list) tag[16]: each
 *       to 16 bytes                         version with no postcode bearing a surname
 *                                           (or part) with that value, as id (u64 LE),
 *                                           length (u8;
 *                                           top bit: has address lines, not overseas) and
 *                                           folded surname words, length (u8) and
 *                                           folded forenames; sealed under key 40 with
 *                                           its own additional data (format 2)
 *   'R' family-2 index value, zero-padded -> nonce[24] sealed(version list) tag[16]: each
 *       to 16 bytes                         version with that index value (coincidences
 *                                           included), as id (u64 LE), postcode
 *                                           (u8 length, compact), surname words and
 *                                           forenames (u8 length each, 255 when cut to
 *                                           38 bytes); sealed under key 40 (format 2)
 *   'O' area[16] numkey[16]              -> version in force for a keyed elector number
 *   'A' area[16]                         -> area state: latest date and counters
 *   'S' area[16] seq(u32 BE)             -> statistics of one ingested file
 *   'F' filehash[32]                     -> area[16] seq(u32 LE): files already ingested
 */
#ifndef RV_VAULT_INTERNAL_H
#define RV_VAULT_INTERNAL_H

#include "store/store.h"
#include "vault/vault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <string.h>

/* The vault's private subkey ids (crypto_kdf subkey numbers). */
enum {
    RV_SUBKEY_WRAP = 32,      /* wraps data keys */
    RV_SUBKEY_CONTENT = 33,   /* content hashes of entries (16-byte SipHash key) */
    RV_SUBKEY_NUMBER = 34,    /* keyed elector numbers */
    RV_SUBKEY_RECMAC = 35,    /* MACs over record metadata */
    RV_SUBKEY_FILEHASH = 36,  /* keyed hashes of ingested files */
    RV_SUBKEY_IDXTAG = 37,    /* pads of blind-index check tags (16-byte SipHash key) */
    RV_SUBKEY_DISTRICTS = 38, /* seals the areas' district lists */
    RV_SUBKEY_PCKEY = 39,     /* keyed postcodes of the postcode lists (16-byte SipHash key) */
    RV_SUBKEY_PCLIST = 40     /* seals the postcode lists */
};

#define RV_AREA_LEN     16
#define RV_KEYCACHE     256
#define RV_REC_PREFIX   0xff
#define RV_SCRATCH_KEYS 16

struct rv_vault {
    struct rv_store *store;
    uint8_t vault_id[16];
    unsigned index_bits;
    /* All in one sodium_malloc block, wiped on close. */
    struct rv_vault_keys {
        uint8_t root[32];
        uint8_t idx[RV_IDX_COUNT][32];
        uint8_t wrap[32];
        uint8_t filehash[32];
        uint8_t cache[RV_KEYCACHE][32]; /* unwrapped data keys */
        /* BLAKE2b states already keyed (16-byte output), copied for each hash: saves
         * compressing the key block every time. */
        uint8_t st_idx[RV_IDX_COUNT][sizeof(crypto_generichash_state)];
        /* SipHash-2-4-128 keys (16 bytes, from the same subkey ids) for the vault's own
         * short keyed hashes, which are not blind indexes: ten times faster than BLAKE2b
         * on a few dozen bytes. */
        uint8_t sip_content[16];
        uint8_t sip_number[16];
        uint8_t sip_recmac[16];
        uint8_t sip_idxtag[16];
        uint8_t districts[32];
        uint8_t sip_pckey[16];
        uint8_t pclist[32];
        uint8_t scratch[RV_SCRATCH_KEYS][32]; /* data keys while a reader decrypts */
    } * k;
    uint32_t cache_bucket[RV_KEYCACHE]; /* 0 = empty slot */
    pthread_mutex_t cache_lock;         /* guards the cache and the scratch slots */
    pthread_cond_t scratch_free;
    uint32_t scratch_busy; /* bit i: scratch[i] in use */
    /* Readers between snapshots that keep their store transaction to renew it (each holds a
     * reader slot of the store's 256): at most RV_HELD_READERS, so that idle readers (a
     * daemon's pooled ones) never crowd out the transactions that need a slot. */
    atomic_uint held_readers;
};

#define RV_HELD_READERS 32

static inline void rv_put_u16be(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void rv_put_u32be(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void rv_put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint32_t rv_get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t rv_get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static inline void rv_put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rv_put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t rv_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rv_get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Keyed BLAKE2b-128 from a state prepared when the vault was opened. */
static inline void rv_vault_keyed_hash(const uint8_t *st, const void *in, size_t len,
                                       uint8_t out[16])
{
    crypto_generichash_state s;

    memcpy(&s, st, sizeof(s));
    crypto_generichash_update(&s, in, len);
    crypto_generichash_final(&s, out, 16);
    sodium_memzero(&s, sizeof(s));
}

/* Keyed SipHash-2-4 with a 128-bit output (a PRF), for short internal hashes and MACs. */
static inline void rv_vault_sip(const uint8_t key[16], const void *in, size_t len, uint8_t out[16])
{
    crypto_shorthash_siphashx24(out, in, len, key);
}

/* The check tag stored with a blind-index entry: raw (bytes 8..11 of the full keyed hash)
 * masked with a pad unique to the entry (family, truncated value of vlen bytes, record id). */
static inline void rv_vault_index_tag(const struct rv_vault *v, uint8_t family,
                                      const uint8_t *value, size_t vlen, uint64_t id,
                                      const uint8_t raw[4], uint8_t out[4])
{
    uint8_t in[4 + 1 + RV_VAULT_INDEX_MAX + 8], pad[16];

    memcpy(in, "rvit", 4);
    in[4] = family;
    memcpy(in + 5, value, vlen);
    rv_put_u64be(in + 5 + vlen, id);
    rv_vault_sip(v->k->sip_idxtag, in, 5 + vlen + 8, pad);
    for (int i = 0; i < 4; i++)
        out[i] = raw[i] ^ pad[i];
}

/* Area code to its fixed 16-byte key form; RV_EINVAL unless 1..15 of [A-Za-z0-9_-]. */
int rv_vault_area_key(const char *area, uint8_t out[RV_AREA_LEN]);

/* The data key of a bucket, unwrapped (and cached) into out (caller's sodium memory). */
int rv_vault_data_key(struct rv_vault *v, struct rv_txn *t, uint32_t bucket, uint8_t out[32]);

/* A slot of key memory (sodium_malloc'd, inside the vault's key block) for a reader thread
 * to hold a data key while decrypting; waits while all are in use. Release it (wiped)
 * with rv_vault_scratch_put. */
uint8_t *rv_vault_scratch_get(struct rv_vault *v);
void rv_vault_scratch_put(struct rv_vault *v, uint8_t *key);

/* Creates a bucket's data key (random) and stores it wrapped by the root key's wrapping
 * subkey. */
int rv_vault_new_data_key(struct rv_vault *v, struct rv_txn *t, uint32_t bucket);

/* Reads a u64 counter ('N' name), 0 when absent. */
int rv_vault_counter_get(struct rv_txn *t, const char *name, uint64_t *out);
int rv_vault_counter_put(struct rv_txn *t, const char *name, uint64_t val);

/* ------------------------------------------------------------------------------------------
 * Records, blind indexes and sealed lists: formats in vault_records.c, shared by the reader
 * (vault_reader.c) and the writer (vault_write.c).
 */
#define REC_HDR   54 /* bytes before a record's ciphertext */
#define REC_MACED 14 /* bytes of the header the MAC covers */

#define DIST_MAX  4096 /* codes per area: a UK postcode area has fewer than 100 */
#define DIST_HDR  24
#define DIST_BODY (2 + DIST_MAX * 5)

#define PCL_HDR  24
#define PCL_BODY (256u << 10) /* most plaintext bytes one list holds */

/* What one preparing thread remembers of its last entry (see rv_vault_prep_cache_new). */
struct rv_vault_prep_cache {
    bool addr_valid;
    char lines[RV_ADDR_LINES][RV_ADDR_LINE_MAX];
    int addr_rc;
    struct rv_address_key ak;
    char mp_surname[RV_NAME_MAX]; /* "" = nothing cached */
    char mp_prim[RV_PHONETIC_MAX], mp_alt[RV_PHONETIC_MAX];
    struct {
        size_t len; /* 0 = nothing cached */
        uint8_t in[600];
        uint8_t full[16];
    } idx[RV_IDX_COUNT];
};

/* A load defers its blind-index entries and list additions to its commit, keeping up to
 * `bytes` of them in memory and the rest, sealed, in a scratch file of the store (see
 * vault_write.c). For tests: the budget (default 24 MB; 0 spills every run), and the scratch
 * file's descriptor (-1 while there is none). */
void rv_vault_load_spill_budget(struct rv_vault_load *l, size_t bytes);
int rv_vault_load_spill_fd(const struct rv_vault_load *l);

/* "SW1A 1AA" -> "SW1A1AA" and outward "SW1A". */
int rv_split_postcode(const char *pc, char compact[9], char outward[9]);
/* The truncated value of a family for q into out (*outlen bytes) and, when tag is not
 * NULL, the entry's raw check bits (bytes 8..11 of the full hash). */
int rv_index_value_cached(const struct rv_vault *v, struct rv_vault_prep_cache *c,
                          enum rv_index family, const struct rv_index_query *q, uint8_t *out,
                          size_t *outlen, uint8_t *tag);
/* The record ids a family's blind index holds for q, in transaction t: up to cap into
 * ids, *n the number found (which may exceed cap). */
int rv_index_lookup_txn(struct rv_vault *v, struct rv_txn *t, enum rv_index family,
                        const struct rv_index_query *q, uint64_t *ids, size_t cap, size_t *n);
/* A record's store key: 0xff || id (u64 BE). */
void rv_rec_key(uint64_t id, uint8_t key[9]);
/* The MAC over a record's metadata (bytes 0..13). */
void rv_rec_mac(const struct rv_vault *v, uint64_t id, const uint8_t *rec, uint8_t mac[16]);
/* The AEAD's additional data for a record. */
void rv_rec_ad(const struct rv_vault *v, uint64_t id, uint32_t bucket, rv_date from,
               uint8_t ad[36]);
/* Seals wire bytes into nonce || ciphertext || tag with XChaCha20-Poly1305. The nonce is
 * the batch's random prefix and the record id, unique under any key since each id is
 * sealed once per batch. XChaCha20 derives its key from the first 16 bytes of the nonce,
 * which every record of the batch shares, so the sealer holds that subkey and each record
 * needs only the ChaCha20-Poly1305 (IETF) step, with nonce 0^4 || id: the same bytes as
 * crypto_aead_xchacha20poly1305_ietf_encrypt. */
void rv_rec_seal(const struct rv_vault *v, const struct rv_vault_sealer *s, uint64_t id,
                 const uint8_t *wire, size_t wlen, uint8_t *out, size_t *outlen);
/* The 30 bytes in front of a new record: format, bucket, from, to (open), MAC. */
void rv_rec_header(const struct rv_vault *v, uint64_t id, uint32_t bucket, rv_date from,
                   uint8_t *rec);
/* Checks a stored record's format and MAC; fills bucket/from/to. */
int rv_rec_check(const struct rv_vault *v, uint64_t id, const uint8_t *val, size_t vlen,
                 uint32_t *bucket, rv_date *from, rv_date *to);
/* District lists: additional data, opening, and the order of codes in them. */
void rv_district_ad(const struct rv_vault *v, const uint8_t area[RV_AREA_LEN], uint8_t ad[36]);
/* Opens a sealed list (key 'D' area) into body (DIST_BODY bytes, caller's): *blen gets
 * its length. RV_ECORRUPT when it fails authentication or is malformed. */
int rv_district_open(const struct rv_vault *v, const uint8_t area[RV_AREA_LEN], const uint8_t *val,
                     size_t vlen, uint8_t *body, size_t *blen);
int rv_district_cmp(const void *x, const void *y);
/* Postcode lists: a list's key and additional data. */
int rv_pc_list_key(const struct rv_vault *v, const char *canon, uint8_t key[17]);
void rv_pc_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36]);
/* Opens a sealed list into body (at least vlen bytes, caller's); *blen gets its length.
 * RV_ECORRUPT when it fails authentication or is malformed. */
int rv_pc_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                    size_t vlen, uint8_t *body, size_t *blen);
/* Lists of versions with no postcode, by surname: key and opening. */
int rv_nopc_list_key(const struct rv_vault *v, const char *surname, size_t n, uint8_t key[17]);
void rv_nopc_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36]);
int rv_nopc_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                      size_t vlen, uint8_t *body, size_t *blen);
/* Namesake lists (initial + surname + outward code): key and opening. */
int rv_ns_list_key(const struct rv_vault *v, char initial, const char *surname,
                   const char *postcode, uint8_t key[17]);
void rv_ns_list_ad(const struct rv_vault *v, const uint8_t key[17], uint8_t ad[36]);
/* The length of a listed name field from its length byte. */
size_t rv_ns_len(uint8_t b);
int rv_ns_list_open(const struct rv_vault *v, const uint8_t key[17], const uint8_t *val,
                    size_t vlen, uint8_t *body, size_t *blen);
/* True when surname words ("smith jones") joined are `joined` ("smithjones"). */
bool rv_words_joined_equal(const char *words, const char *joined);
/* True when a listed surname (words) is `surname`, whole or as one of the parts indexed for
 * it (as rv_vault_prepare chooses them: up to RV_VAULT_PARTS words of 3 letters or more). */
bool rv_words_name(const char *words, const char *surname);

#endif /* RV_VAULT_INTERNAL_H */
