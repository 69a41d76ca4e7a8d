/*
 * vault_keys.c - the vault header and key hierarchy: creating a vault, unsealing it, and
 * deriving the subkeys and data keys everything else uses.
 *
 * vault.hdr (176 bytes, little-endian):
 *     0  magic "REGVAULT"           8
 *     8  format version (u16) = 2   2   (RV_VAULT_FORMAT_VERSION; 1 is refused)
 *    10  wrapping kind (u8): 1 passphrase (Argon2id), 2 key file
 *    11  blind-index width in bits (u8)
 *    12  reserved (u32) = 0
 *    16  Argon2id opslimit (u64)
 *    24  Argon2id memlimit (u64)
 *    32  expected electors the width was planned for (u64)
 *    40  salt[16]
 *    56  vault id[16]
 *    72  nonce[24]
 *    96  root key sealed with XChaCha20-Poly1305[48], additional data = bytes 0..71
 *   144  BLAKE2b-256 of bytes 0..143 (unkeyed: tells damage from a wrong key)
 * The header is written to a temporary name, fsynced, renamed, then the directory fsynced.
 */
#include "vault/vault_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <libgen.h>

#define HDR_LEN      176
#define HDR_AD_LEN   72
#define HDR_SUM_OFF  144
#define KIND_PASS    1
#define KIND_KEYFILE 2
static const char MAGIC[8] = {'R', 'E', 'G', 'V', 'A', 'U', 'L', 'T'};

/* Argon2id cost for passphrases: 3 passes over 256 MiB (libsodium's MODERATE), about
 * 0.7 s here. docs/security.md gives the reasoning. */
#define PASS_OPSLIMIT crypto_pwhash_OPSLIMIT_MODERATE
#define PASS_MEMLIMIT crypto_pwhash_MEMLIMIT_MODERATE

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rv_vault_read_keyfile(const char *path, uint8_t out[32])
{
    uint8_t *buf = NULL;
    ssize_t n;
    size_t len = 0;
    int fd = -1, rc = RV_EINVAL;

    buf = sodium_malloc(160);
    if (buf == NULL)
        return RV_ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
        goto out;
    }
    while (len < 160 && (n = read(fd, buf + len, 160 - len)) > 0)
        len += (size_t)n;
    if (len == 32) {
        memcpy(out, buf, 32);
        rc = 0;
    } else if (len == 64 || (len == 65 && buf[64] == '\n') ||
               (len == 66 && buf[64] == '\r' && buf[65] == '\n')) {
        rc = 0;
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                rc = RV_EINVAL;
                break;
            }
            out[i] = (uint8_t)(hi << 4 | lo);
        }
    }
out:
    if (fd >= 0)
        close(fd);
    sodium_memzero(buf, 160);
    sodium_free(buf);
    return rc;
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    rv_put_u64le(p, v);
}

/* The key-encryption key for the header's parameters and the secret. */
static int derive_kek(const uint8_t *hdr, const struct rv_vault_secret *sec, uint8_t kek[32])
{
    const uint8_t *salt = hdr + 40;

    if (hdr[10] == KIND_PASS) {
        if (sec->passphrase == NULL)
            return RV_EKEY;
        if (crypto_pwhash(kek, 32, sec->passphrase, sec->passphrase_len, salt,
                          rv_get_u64le(hdr + 16), (size_t)rv_get_u64le(hdr + 24),
                          crypto_pwhash_ALG_ARGON2ID13) != 0)
            return RV_ENOMEM;
        return 0;
    }
    if (hdr[10] == KIND_KEYFILE) {
        if (sec->keyfile == NULL)
            return RV_EKEY;
        /* The key file is already a uniform 32-byte key; bind it to this vault's salt. */
        return crypto_generichash(kek, 32, sec->keyfile, 32, salt, 16) == 0 ? 0 : RV_ECRYPTO;
    }
    return RV_ECORRUPT;
}

/* Number of index bits for R planned entries: the largest width leaving at least two
 * expected coincidences per value (C = R / 2^bits >= 2), which also keeps C well under
 * sqrt(R) for any R >= 16. */
static unsigned plan_index_bits(uint64_t r)
{
    unsigned bits = 0;

    while (bits < 64 && (r >> (bits + 1)) >= 2)
        bits++;
    if (bits < 4)
        bits = 4;
    if (bits > 8 * RV_VAULT_INDEX_MAX)
        bits = 8 * RV_VAULT_INDEX_MAX;
    return bits;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return RV_EIO;
    if (fsync(fd) != 0)
        rc = RV_EIO;
    close(fd);
    return rc;
}

static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool empty = true;

    if (d == NULL)
        return false;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

int rv_vault_create(const char *dir, const struct rv_vault_secret *secret,
                    uint64_t expected_electors)
{
    char path[PATH_MAX], tmp[PATH_MAX], storedir[PATH_MAX];
    uint8_t hdr[HDR_LEN];
    uint8_t *keys = NULL; /* root[32] kek[32] */
    struct stat st;
    int fd = -1, rc;
    bool made_dir = false, made_tmp = false, made_store = false;

    if (sodium_init() < 0)
        return RV_ECRYPTO;
    if ((secret->passphrase == NULL) == (secret->keyfile == NULL))
        return RV_EINVAL;
    if (snprintf(path, sizeof(path), "%s/vault.hdr", dir) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/vault.hdr.tmp", dir) >= (int)sizeof(tmp) ||
        snprintf(storedir, sizeof(storedir), "%s/store", dir) >= (int)sizeof(storedir))
        return RV_EINVAL;
    if (expected_electors == 0)
        expected_electors = RV_VAULT_DEFAULT_EXPECTED;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || !dir_is_empty(dir))
            return RV_EEXIST;
    } else if (errno == ENOENT) {
        if (mkdir(dir, 0700) != 0)
            return RV_EIO;
        made_dir = true;
    } else {
        return RV_EIO;
    }

    keys = sodium_malloc(64);
    if (keys == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, MAGIC, 8);
    hdr[8] = RV_VAULT_FORMAT_VERSION & 0xff;
    hdr[9] = RV_VAULT_FORMAT_VERSION >> 8;
    hdr[10] = secret->passphrase != NULL ? KIND_PASS : KIND_KEYFILE;
    hdr[11] = (uint8_t)plan_index_bits(expected_electors);
    if (hdr[10] == KIND_PASS) {
        put_u64le(hdr + 16, PASS_OPSLIMIT);
        put_u64le(hdr + 24, PASS_MEMLIMIT);
    }
    put_u64le(hdr + 32, expected_electors);
    randombytes_buf(hdr + 40, 16);
    randombytes_buf(hdr + 56, 16);
    randombytes_buf(hdr + 72, 24);
    crypto_aead_xchacha20poly1305_ietf_keygen(keys);
    rc = derive_kek(hdr, secret, keys + 32);
    if (rc != 0)
        goto out;
    crypto_aead_xchacha20poly1305_ietf_encrypt(hdr + 96, NULL, keys, 32, hdr, HDR_AD_LEN, NULL,
                                               hdr + 72, keys + 32);
    crypto_generichash(hdr + HDR_SUM_OFF, 32, hdr, HDR_SUM_OFF, NULL, 0);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? RV_EEXIST : RV_EIO;
        goto out;
    }
    made_tmp = true;
    if (write(fd, hdr, HDR_LEN) != HDR_LEN || fsync(fd) != 0) {
        rc = RV_EIO;
        goto out;
    }
    close(fd);
    fd = -1;
    if (mkdir(storedir, 0700) != 0) {
        rc = RV_EIO;
        goto out;
    }
    made_store = true;
    if (rename(tmp, path) != 0) {
        rc = RV_EIO;
        goto out;
    }
    made_tmp = false;
    rc = fsync_dir(dir);
    if (rc == 0 && made_dir) {
        /* The new directory's own entry must be durable too. */
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", dir);
        rc = fsync_dir(dirname(parent));
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        if (made_tmp)
            unlink(tmp);
        if (made_store)
            rmdir(storedir);
        if (made_dir)
            rmdir(dir);
    }
    if (keys != NULL) {
        sodium_memzero(keys, 64);
        sodium_free(keys);
    }
    sodium_memzero(hdr, sizeof(hdr));
    return rc;
}

static int derive(const uint8_t root[32], uint64_t id, uint8_t out[32])
{
    return crypto_kdf_derive_from_key(out, 32, id, "regvault", root) == 0 ? 0 : RV_ECRYPTO;
}

static int derive16(const uint8_t root[32], uint64_t id, uint8_t out[16])
{
    return crypto_kdf_derive_from_key(out, 16, id, "regvault", root) == 0 ? 0 : RV_ECRYPTO;
}

int rv_vault_open(const char *dir, const struct rv_vault_secret *secret, struct rv_vault **out)
{
    char path[PATH_MAX];
    uint8_t hdr[HDR_LEN + 1], sum[32];
    uint8_t *kek = NULL;
    struct rv_vault *v = NULL;
    ssize_t n;
    size_t len = 0;
    int fd = -1, rc;

    *out = NULL;
    if (sodium_init() < 0)
        return RV_ECRYPTO;
    if (snprintf(path, sizeof(path), "%s/vault.hdr", dir) >= (int)sizeof(path))
        return RV_EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
    while (len < sizeof(hdr) && (n = read(fd, hdr + len, sizeof(hdr) - len)) > 0)
        len += (size_t)n;
    close(fd);
    fd = -1;
    if (len != HDR_LEN || memcmp(hdr, MAGIC, 8) != 0)
        return RV_ECORRUPT;
    crypto_generichash(sum, 32, hdr, HDR_SUM_OFF, NULL, 0);
    if (sodium_memcmp(sum, hdr + HDR_SUM_OFF, 32) != 0)
        return RV_ECORRUPT;
    if ((hdr[8] | hdr[9] << 8) != RV_VAULT_FORMAT_VERSION)
        return RV_EVERSION;
    if (hdr[11] < 4 || hdr[11] > 8 * RV_VAULT_INDEX_MAX)
        return RV_ECORRUPT;
    if (hdr[10] == KIND_PASS &&
        (rv_get_u64le(hdr + 16) < crypto_pwhash_OPSLIMIT_MIN || rv_get_u64le(hdr + 16) > 64 ||
         rv_get_u64le(hdr + 24) < crypto_pwhash_MEMLIMIT_MIN ||
         rv_get_u64le(hdr + 24) > (8ull << 30)))
        return RV_ECORRUPT;

    v = calloc(1, sizeof(*v));
    kek = sodium_malloc(32);
    if (v == NULL || kek == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    pthread_mutex_init(&v->cache_lock, NULL);
    pthread_cond_init(&v->scratch_free, NULL);
    v->k = sodium_malloc(sizeof(*v->k));
    if (v->k == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    sodium_memzero(v->k, sizeof(*v->k));
    rc = derive_kek(hdr, secret, kek);
    if (rc != 0)
        goto out;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(v->k->root, NULL, NULL, hdr + 96, 48, hdr,
                                                   HDR_AD_LEN, hdr + 72, kek) != 0) {
        rc = RV_EKEY;
        goto out;
    }
    memcpy(v->vault_id, hdr + 56, 16);
    v->index_bits = hdr[11];
    for (int i = 0; i < RV_IDX_COUNT && rc == 0; i++)
        rc = derive(v->k->root, (uint64_t)RV_SUBKEY_IDX_SURNAME_POSTCODE + (uint64_t)i,
                    v->k->idx[i]);
    if (rc == 0)
        rc = derive(v->k->root, RV_SUBKEY_WRAP, v->k->wrap);
    if (rc == 0)
        rc = derive(v->k->root, RV_SUBKEY_FILEHASH, v->k->filehash);
    if (rc == 0)
        rc = derive16(v->k->root, RV_SUBKEY_CONTENT, v->k->sip_content);
    if (rc == 0)
        rc = derive16(v->k->root, RV_SUBKEY_NUMBER, v->k->sip_number);
    if (rc == 0)
        rc = derive16(v->k->root, RV_SUBKEY_RECMAC, v->k->sip_recmac);
    if (rc == 0)
        rc = derive16(v->k->root, RV_SUBKEY_IDXTAG, v->k->sip_idxtag);
    if (rc == 0)
        rc = derive(v->k->root, RV_SUBKEY_DISTRICTS, v->k->districts);
    if (rc == 0)
        rc = derive16(v->k->root, RV_SUBKEY_PCKEY, v->k->sip_pckey);
    if (rc == 0)
        rc = derive(v->k->root, RV_SUBKEY_PCLIST, v->k->pclist);
    if (rc != 0)
        goto out;
    {
        crypto_generichash_state st;
        for (int i = 0; i < RV_IDX_COUNT; i++) {
            crypto_generichash_init(&st, v->k->idx[i], 32, 16);
            memcpy(v->k->st_idx[i], &st, sizeof(st));
        }
        sodium_memzero(&st, sizeof(st));
    }
    if (snprintf(path, sizeof(path), "%s/store", dir) >= (int)sizeof(path)) {
        rc = RV_EINVAL;
        goto out;
    }
    rc = rv_store_open(path, &v->store);
    if (rc != 0)
        goto out;
    *out = v;
    v = NULL;
out:
    if (kek != NULL) {
        sodium_memzero(kek, 32);
        sodium_free(kek);
    }
    sodium_memzero(hdr, sizeof(hdr));
    if (v != NULL)
        rv_vault_close(v);
    return rc;
}

void rv_vault_close(struct rv_vault *v)
{
    if (v == NULL)
        return;
    rv_store_close(v->store);
    if (v->k != NULL) {
        sodium_memzero(v->k, sizeof(*v->k));
        sodium_free(v->k);
    }
    pthread_mutex_destroy(&v->cache_lock);
    pthread_cond_destroy(&v->scratch_free);
    sodium_memzero(v, sizeof(*v));
    free(v);
}

struct rv_store *rv_vault_store(struct rv_vault *v)
{
    return v->store;
}

unsigned rv_vault_index_bits(const struct rv_vault *v)
{
    return v->index_bits;
}

int rv_vault_subkey(const struct rv_vault *v, enum rv_subkey id, uint8_t out[32])
{
    switch (id) {
    case RV_SUBKEY_IDX_SURNAME_POSTCODE:
    case RV_SUBKEY_IDX_INITIAL_SURNAME_OUTWARD:
    case RV_SUBKEY_IDX_PHONETIC_POSTCODE:
    case RV_SUBKEY_IDX_ADDRESS_POSTCODE:
    case RV_SUBKEY_IDX_SURNAME:
    case RV_SUBKEY_AUDIT_MAC:
    case RV_SUBKEY_AUDIT_SIGN_SEED:
    case RV_SUBKEY_EXPORT_FINGERPRINT:
    case RV_SUBKEY_CANARY:
    case RV_SUBKEY_POLICY:
        return derive(v->k->root, (uint64_t)id, out);
    }
    return RV_EINVAL;
}

int rv_vault_area_key(const char *area, uint8_t out[RV_AREA_LEN])
{
    size_t n = strlen(area);

    if (n == 0 || n >= RV_AREA_LEN)
        return RV_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = area[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return RV_EINVAL;
    }
    memset(out, 0, RV_AREA_LEN);
    memcpy(out, area, n);
    return 0;
}

uint8_t *rv_vault_scratch_get(struct rv_vault *v)
{
    uint8_t *k = NULL;

    pthread_mutex_lock(&v->cache_lock);
    for (;;) {
        for (int i = 0; i < RV_SCRATCH_KEYS; i++)
            if (!(v->scratch_busy & (1u << i))) {
                v->scratch_busy |= 1u << i;
                k = v->k->scratch[i];
                break;
            }
        if (k != NULL)
            break;
        pthread_cond_wait(&v->scratch_free, &v->cache_lock);
    }
    pthread_mutex_unlock(&v->cache_lock);
    return k;
}

void rv_vault_scratch_put(struct rv_vault *v, uint8_t *key)
{
    size_t i = (size_t)(key - v->k->scratch[0]) / 32;

    sodium_memzero(key, 32);
    pthread_mutex_lock(&v->cache_lock);
    v->scratch_busy &= ~(1u << i);
    pthread_cond_signal(&v->scratch_free);
    pthread_mutex_unlock(&v->cache_lock);
}

/* Additional data for a wrapped data key: the vault and the bucket it belongs to. */
static void wrap_ad(const struct rv_vault *v, uint32_t bucket, uint8_t ad[24])
{
    memcpy(ad, "rvdk", 4);
    memcpy(ad + 4, v->vault_id, 16);
    rv_put_u32be(ad + 20, bucket);
}

int rv_vault_data_key(struct rv_vault *v, struct rv_txn *t, uint32_t bucket, uint8_t out[32])
{
    uint8_t key[5], ad[24];
    const void *val;
    size_t vlen, slot = bucket % RV_KEYCACHE;
    int rc;

    if (bucket == 0)
        return RV_ECORRUPT;
    pthread_mutex_lock(&v->cache_lock);
    if (v->cache_bucket[slot] == bucket) {
        memcpy(out, v->k->cache[slot], 32);
        pthread_mutex_unlock(&v->cache_lock);
        return 0;
    }
    pthread_mutex_unlock(&v->cache_lock);
    key[0] = 'K';
    rv_put_u32be(key + 1, bucket);
    rc = rv_store_get(t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return RV_ECORRUPT; /* a record names a bucket whose key is gone */
    if (rc != 0)
        return rc;
    if (vlen != 24 + 32 + 16)
        return RV_ECORRUPT;
    wrap_ad(v, bucket, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, (const uint8_t *)val + 24, 48,
                                                   ad, sizeof(ad), val, v->k->wrap) != 0)
        return RV_ECORRUPT;
    pthread_mutex_lock(&v->cache_lock);
    memcpy(v->k->cache[slot], out, 32);
    v->cache_bucket[slot] = bucket;
    pthread_mutex_unlock(&v->cache_lock);
    return 0;
}

int rv_vault_new_data_key(struct rv_vault *v, struct rv_txn *t, uint32_t bucket)
{
    uint8_t key[5], ad[24], val[24 + 48];
    uint8_t *dk = sodium_malloc(32);
    int rc;

    if (dk == NULL)
        return RV_ENOMEM;
    crypto_aead_xchacha20poly1305_ietf_keygen(dk);
    key[0] = 'K';
    rv_put_u32be(key + 1, bucket);
    wrap_ad(v, bucket, ad);
    randombytes_buf(val, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(val + 24, NULL, dk, 32, ad, sizeof(ad), NULL, val,
                                               v->k->wrap);
    rc = rv_store_put(t, key, sizeof(key), val, sizeof(val));
    sodium_memzero(dk, 32);
    sodium_free(dk);
    return rc;
}

int rv_vault_counter_get(struct rv_txn *t, const char *name, uint64_t *out)
{
    uint8_t key[16];
    size_t n = strlen(name);
    const void *val;
    size_t vlen;
    int rc;

    if (n + 1 > sizeof(key))
        return RV_EINVAL;
    key[0] = 'N';
    memcpy(key + 1, name, n);
    rc = rv_store_get(t, key, n + 1, &val, &vlen);
    if (rc == RV_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (vlen != 8)
        return RV_ECORRUPT;
    *out = rv_get_u64le(val);
    return 0;
}

int rv_vault_counter_put(struct rv_txn *t, const char *name, uint64_t val)
{
    uint8_t key[16], buf[8];
    size_t n = strlen(name);

    if (n + 1 > sizeof(key))
        return RV_EINVAL;
    key[0] = 'N';
    memcpy(key + 1, name, n);
    rv_put_u64le(buf, val);
    return rv_store_put(t, key, n + 1, buf, sizeof(buf));
}

int rv_vault_filehash_init(const struct rv_vault *v, struct rv_vault_filehash *h)
{
    _Static_assert(sizeof(h->state) >= sizeof(crypto_generichash_state), "filehash state");
    return crypto_generichash_init((crypto_generichash_state *)(void *)h->state, v->k->filehash, 32,
                                   32) == 0
               ? 0
               : RV_ECRYPTO;
}

void rv_vault_filehash_update(struct rv_vault_filehash *h, const void *buf, size_t len)
{
    crypto_generichash_update((crypto_generichash_state *)(void *)h->state, buf, len);
}

void rv_vault_filehash_final(struct rv_vault_filehash *h, uint8_t out[32])
{
    crypto_generichash_final((crypto_generichash_state *)(void *)h->state, out, 32);
    sodium_memzero(h, sizeof(*h));
}
