/*
 * principal.c - the vault's principals: people (password + TOTP) and services (mutual TLS),
 * their roles, logins and lockouts.
 *
 * Each principal is one record in the gate's store (<vault>/gate) under the key
 * 0x80 "principal" 0x00 NAME, so that a scan of the prefix lists them in name order. The
 * value is a version byte, a random 24-byte nonce and the record sealed with
 * XChaCha20-Poly1305 under a key derived from the vault's policy subkey, with the store key
 * as additional data: a record cannot be read, altered or moved to another name without the
 * vault's root key. Inside are the Argon2id hash of the password (crypto_pwhash_str,
 * interactive limits), the 20-byte TOTP secret, the last TOTP step accepted, the count of
 * consecutive failed logins and the time the lock they earned ends.
 *
 * A login checks the password first, outside any transaction (Argon2id is slow), and then,
 * in one write transaction, reads the record again, checks the TOTP code against steps
 * now-1..now+1 (RFC 6238, SHA-1, 6 digits, 30 s), refuses a step at or before the last
 * accepted one, and stores the new step or the failure before committing: a code is spent
 * durably before anyone is told it was good. Consecutive failures lock the user for
 * 2^(k-5) seconds at the k-th failure from the 5th (capped at 15 minutes); failures from
 * one client address, across any users, lock the address the same way from the 20th (kept
 * in memory, forgotten 15 minutes after its last failure). Unknown names are locked in
 * memory like known ones, hash a dummy password and write a decoy record, so that neither
 * the answer nor its timing tells whether a name exists.
 */
#include "policy/inner.h"

#include "store/store.h"

#include <liboath/oath.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REC_VERSION       1
#define NONCE_LEN         crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN           crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PLAIN_MAX         512
#define SEALED_MAX        (1 + NONCE_LEN + PLAIN_MAX + TAG_LEN)
#define TOTP_SECRET_LEN   20
#define TOTP_STEP_S       30
#define TOTP_DIGITS       6
#define TOTP_WINDOW       1
#define USER_LOCK_AFTER   5
#define CLIENT_LOCK_AFTER 20
#define LOCK_MAX_S        900
#define FORGET_MS         (15 * 60 * 1000)
#define MEM_SLOTS         4096
#define PASSWORD_MAX      1024
#define FLAG_DISABLED     1u
#define FLAG_SUSPENDED    2u
#define FLAG_MUST_CHANGE  4u

static const uint8_t KEY_PREFIX[] = {0x80, 'p', 'r', 'i', 'n', 'c', 'i', 'p', 'a', 'l', 0x00};
static const uint8_t DECOY_KEY[] = {0x80, 'p', 'r', 'i', 'n', 'c', 'i', 'p', 'a', 'l', 0x01};
#define KEY_PREFIX_LEN sizeof(KEY_PREFIX)
#define STORE_KEY_MAX  (KEY_PREFIX_LEN + RV_PRINCIPAL_NAME_MAX)

/* The most common passwords of 12 characters or more (shorter ones are refused anyway). */
static const char *const COMMON[] = {
    "password1234",  "password12345", "password123!", "passw0rd1234", "123456789012",
    "1234567890123", "qwerty123456",  "qwertyuiop12", "qwertyuiopas", "1q2w3e4r5t6y",
    "1qaz2wsx3edc",  "qazwsxedcrfv",  "iloveyou1234", "welcome12345", "letmein12345",
    "changeme1234",  "administrator", "abc123456789", "football1234", "123qweasdzxc",
    "zaq12wsxcde3",  "password2024",  "password2025", "password2026", "electoral123",
};

/* A principal record as stored (the secret parts beside the public ones). Wipe after use. */
struct prec {
    struct rv_principal p;
    char hash[crypto_pwhash_STRBYTES]; /* human: Argon2id string; NUL-padded */
    uint8_t totp[TOTP_SECRET_LEN];     /* human: TOTP secret */
    uint64_t last_step;                /* last TOTP step accepted (0: none) */
    uint32_t failures;                 /* consecutive failed logins */
    int64_t locked_until_ms;           /* UTC ms; 0 when not locked */
};

/* An in-memory failure counter: a client address ("c:ADDR") or an unknown name ("u:NAME"). */
struct slot {
    char id[80];
    uint32_t fails;
    int64_t last_ms;
    int64_t until_ms;
};

struct rv_principals {
    struct rv_gate_shared *sh;
    uint8_t *keys;        /* sodium_malloc, read-only: [0,32) record key, [32,64) name-hash key */
    pthread_mutex_t lock; /* guards slots */
    struct slot *slots;
    pthread_mutex_t dummy_lock; /* guards dummy */
    char dummy[crypto_pwhash_STRBYTES];
    bool have_dummy;
};

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;

static void oath_start(void)
{
    (void)oath_init();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------
 * Validation of names, roles, fingerprints and passwords.
 */

bool rv_principal_name_valid(const char *s)
{
    size_t n = strnlen(s, RV_PRINCIPAL_NAME_MAX);

    if (n < 1 || n >= RV_PRINCIPAL_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

bool rv_principal_role_valid(const char *s)
{
    static const char *const roles[] = {"admin", "registrar", "checker", "researcher", "auditor"};

    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(s, roles[i]) == 0)
            return true;
    return false;
}

/* 64 lower-case hex digits. */
static bool cert_ok(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Copies a fingerprint of 64 hex digits in either case to out in lower case. */
static bool cert_norm(const char *s, char out[65])
{
    size_t n = strnlen(s, 65);

    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[64] = '\0';
    return cert_ok(out, 64);
}

static bool hash_ok(const char *s, size_t n)
{
    if (n < 10 || n >= crypto_pwhash_STRBYTES || memcmp(s, "$argon2id$", 10) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* 0 when pw may be a principal's new password, RV_EWEAK otherwise. */
static int strength(const char *user, const char *pw)
{
    size_t len = strnlen(pw, PASSWORD_MAX + 1), chars = 0;
    bool same = true;

    if (len > PASSWORD_MAX || !rv_utf8_valid(pw, len))
        return RV_EWEAK;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)pw[i] & 0xc0) != 0x80)
            chars++;
        if (pw[i] != pw[0])
            same = false;
    }
    if (chars < 12 || same)
        return RV_EWEAK;
    if (strlen(user) >= 3 && strcasestr(pw, user) != NULL)
        return RV_EWEAK;
    for (size_t i = 0; i < sizeof(COMMON) / sizeof(COMMON[0]); i++)
        if (strcasecmp(pw, COMMON[i]) == 0)
            return RV_EWEAK;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The record: plaintext encoding (canonical: every field has one representation) and
 * sealing.
 *
 *   u8 kind, u8 flags, u8 len + name, u8 len + role, u32 budget, i64 created,
 *   u8 len + cert (0 or 64), u8 len + hash, u8 len + totp secret (0 or 20),
 *   u64 last step, u32 failures, i64 locked until (ms); integers little-endian.
 */

static void put_le(uint8_t *b, size_t *n, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        b[(*n)++] = (uint8_t)(v >> (8 * i));
}

static void put_str(uint8_t *b, size_t *n, const void *s, size_t len)
{
    b[(*n)++] = (uint8_t)len;
    memcpy(b + *n, s, len);
    *n += len;
}

static int rec_encode(const struct prec *r, uint8_t *b, size_t cap, size_t *len)
{
    bool human = r->p.kind == RV_PRINCIPAL_HUMAN;
    size_t nl = strnlen(r->p.name, sizeof(r->p.name)), rl = strnlen(r->p.role, sizeof(r->p.role));
    size_t cl = strnlen(r->p.cert_sha256, sizeof(r->p.cert_sha256));
    size_t hl = strnlen(r->hash, sizeof(r->hash)), tl = human ? TOTP_SECRET_LEN : 0;
    size_t n = 0;
    unsigned flags = (r->p.disabled ? FLAG_DISABLED : 0) | (r->p.suspended ? FLAG_SUSPENDED : 0) |
                     (r->p.must_change ? FLAG_MUST_CHANGE : 0);

    if (2 + 1 + nl + 1 + rl + 4 + 8 + 1 + cl + 1 + hl + 1 + tl + 8 + 4 + 8 > cap)
        return RV_ETOOBIG;
    b[n++] = (uint8_t)r->p.kind;
    b[n++] = (uint8_t)flags;
    put_str(b, &n, r->p.name, nl);
    put_str(b, &n, r->p.role, rl);
    put_le(b, &n, r->p.budget, 4);
    put_le(b, &n, (uint64_t)r->p.created, 8);
    put_str(b, &n, r->p.cert_sha256, cl);
    put_str(b, &n, r->hash, hl);
    put_str(b, &n, r->totp, tl);
    put_le(b, &n, r->last_step, 8);
    put_le(b, &n, r->failures, 4);
    put_le(b, &n, (uint64_t)r->locked_until_ms, 8);
    *len = n;
    return 0;
}

struct reader {
    const uint8_t *b;
    size_t len, off;
    bool bad;
};

static uint64_t get_le(struct reader *rd, unsigned bytes)
{
    uint64_t v = 0;

    if (rd->bad || rd->len - rd->off < bytes) {
        rd->bad = true;
        return 0;
    }
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)rd->b[rd->off++] << (8 * i);
    return v;
}

/* Reads a length-prefixed string of at most max bytes into out (outsz > max). */
static size_t get_str(struct reader *rd, void *out, size_t max)
{
    size_t n = (size_t)get_le(rd, 1);

    if (rd->bad || n > max || rd->len - rd->off < n) {
        rd->bad = true;
        return 0;
    }
    memcpy(out, rd->b + rd->off, n);
    rd->off += n;
    return n;
}

static int rec_decode(const uint8_t *b, size_t len, struct prec *r)
{
    struct reader rd = {b, len, 0, false};
    size_t nl, rl, cl, hl, tl;
    unsigned kind, flags;
    bool human;

    memset(r, 0, sizeof(*r));
    kind = (unsigned)get_le(&rd, 1);
    flags = (unsigned)get_le(&rd, 1);
    nl = get_str(&rd, r->p.name, sizeof(r->p.name) - 1);
    rl = get_str(&rd, r->p.role, sizeof(r->p.role) - 1);
    r->p.budget = (uint32_t)get_le(&rd, 4);
    r->p.created = (int64_t)get_le(&rd, 8);
    cl = get_str(&rd, r->p.cert_sha256, sizeof(r->p.cert_sha256) - 1);
    hl = get_str(&rd, r->hash, sizeof(r->hash) - 1);
    tl = get_str(&rd, r->totp, sizeof(r->totp));
    r->last_step = get_le(&rd, 8);
    r->failures = (uint32_t)get_le(&rd, 4);
    r->locked_until_ms = (int64_t)get_le(&rd, 8);
    if (rd.bad || rd.off != len || kind > RV_PRINCIPAL_SERVICE ||
        (flags & ~(FLAG_DISABLED | FLAG_SUSPENDED | FLAG_MUST_CHANGE)) != 0)
        goto bad;
    human = kind == RV_PRINCIPAL_HUMAN;
    r->p.kind = (enum rv_principal_kind)kind;
    r->p.disabled = (flags & FLAG_DISABLED) != 0;
    r->p.suspended = (flags & FLAG_SUSPENDED) != 0;
    r->p.must_change = (flags & FLAG_MUST_CHANGE) != 0;
    if (strlen(r->p.name) != nl || !rv_principal_name_valid(r->p.name) || strlen(r->p.role) != rl ||
        !rv_principal_role_valid(r->p.role) || r->locked_until_ms < 0)
        goto bad;
    if (human && (cl != 0 || !hash_ok(r->hash, hl) || tl != TOTP_SECRET_LEN))
        goto bad;
    if (!human && (!cert_ok(r->p.cert_sha256, cl) || hl != 0 || tl != 0 || r->p.must_change ||
                   r->last_step != 0))
        goto bad;
    return 0;
bad:
    sodium_memzero(r, sizeof(*r));
    return RV_ECORRUPT;
}

int rv_principal_record_roundtrip(const uint8_t *buf, size_t len)
{
    struct prec r;
    uint8_t out[PLAIN_MAX];
    size_t n = 0;
    int rc;

    if (rec_decode(buf, len, &r) != 0)
        return RV_ECORRUPT;
    rc =
        rec_encode(&r, out, sizeof(out), &n) == 0 && n == len && memcmp(out, buf, len) == 0 ? 0 : 1;
    sodium_memzero(&r, sizeof(r));
    sodium_memzero(out, sizeof(out));
    return rc;
}

static size_t store_key(const char *name, uint8_t key[STORE_KEY_MAX])
{
    size_t n = strnlen(name, RV_PRINCIPAL_NAME_MAX - 1);

    memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
    memcpy(key + KEY_PREFIX_LEN, name, n);
    return KEY_PREFIX_LEN + n;
}

static int rec_seal(const struct rv_principals *P, const uint8_t *key, size_t klen,
                    const struct prec *r, uint8_t out[SEALED_MAX], size_t *outlen)
{
    uint8_t plain[PLAIN_MAX];
    unsigned long long cl = 0;
    size_t pl = 0;
    int rc;

    if ((rc = rec_encode(r, plain, sizeof(plain), &pl)) != 0)
        goto out;
    out[0] = REC_VERSION;
    randombytes_buf(out + 1, NONCE_LEN);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_LEN, &cl, plain, pl, key, klen,
                                                   NULL, out + 1, P->keys) != 0) {
        rc = RV_ECRYPTO;
        goto out;
    }
    *outlen = 1 + NONCE_LEN + (size_t)cl;
out:
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

static int rec_open(const struct rv_principals *P, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen, struct prec *r)
{
    uint8_t plain[PLAIN_MAX];
    unsigned long long pl = 0;
    int rc = RV_ECORRUPT;

    memset(r, 0, sizeof(*r));
    if (vlen < 1 + NONCE_LEN + TAG_LEN || vlen > SEALED_MAX || val[0] != REC_VERSION)
        goto out;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &pl, NULL, val + 1 + NONCE_LEN,
                                                   vlen - 1 - NONCE_LEN, key, klen, val + 1,
                                                   P->keys) != 0)
        goto out;
    if ((rc = rec_decode(plain, (size_t)pl, r)) != 0)
        goto out;
    /* The key is authenticated; the name inside must be the one it names. */
    if (klen != KEY_PREFIX_LEN + strlen(r->p.name) ||
        memcmp(key + KEY_PREFIX_LEN, r->p.name, klen - KEY_PREFIX_LEN) != 0) {
        sodium_memzero(r, sizeof(*r));
        rc = RV_ECORRUPT;
    }
out:
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

static struct rv_store *store_of(struct rv_gate *g)
{
    return g->sh->state;
}

/* Reads name's record in t: 0, RV_ENOTFOUND or RV_ECORRUPT. */
static int rec_load(struct rv_txn *t, const struct rv_principals *P, const char *name,
                    struct prec *r)
{
    uint8_t key[STORE_KEY_MAX];
    size_t klen = store_key(name, key), vlen = 0;
    const void *val = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = rv_store_get(t, key, klen, &val, &vlen)) != 0)
        return rc;
    return rec_open(P, key, klen, val, vlen, r);
}

static int rec_save(struct rv_txn *t, const struct rv_principals *P, const struct prec *r,
                    bool insert)
{
    uint8_t key[STORE_KEY_MAX], val[SEALED_MAX];
    size_t klen = store_key(r->p.name, key), vlen = 0;
    int rc;

    if ((rc = rec_seal(P, key, klen, r, val, &vlen)) != 0)
        return rc;
    return insert ? rv_store_insert(t, key, klen, val, vlen)
                  : rv_store_put(t, key, klen, val, vlen);
}

/* Reads name's record in a read transaction of its own. */
static int rec_get(struct rv_gate *g, const char *name, struct prec *r)
{
    struct rv_txn *t = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = rv_store_begin(store_of(g), false, &t)) != 0)
        return rc;
    rc = rec_load(t, g->sh->principals, name, r);
    rv_store_abort(t);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Issued credentials.
 */

static void base32(const uint8_t *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = A[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = A[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    acc = 0;
}

/* A new random password (20 characters of 32 unambiguous ones, in groups of five: 100 bits)
 * and TOTP secret for r, returned in cred. */
static int issue(struct prec *r, struct rv_credentials *cred)
{
    static const char ALPHA[] = "23456789abcdefghijkmnpqrstuvwxyz";
    char b32[(TOTP_SECRET_LEN * 8 + 4) / 5 + 1];
    size_t n = 0;
    int rc = 0;

    sodium_memzero(cred, sizeof(*cred));
    for (int i = 0; i < 20; i++) {
        if (i > 0 && i % 5 == 0)
            cred->password[n++] = '-';
        cred->password[n++] = ALPHA[randombytes_uniform(32)];
    }
    cred->password[n] = '\0';
    sodium_memzero(r->hash, sizeof(r->hash));
    if (crypto_pwhash_str(r->hash, cred->password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        rc = RV_ENOMEM;
        goto out;
    }
    randombytes_buf(r->totp, sizeof(r->totp));
    base32(r->totp, sizeof(r->totp), b32);
    snprintf(cred->totp_uri, sizeof(cred->totp_uri),
             "otpauth://totp/regvault:%s?secret=%s&issuer=regvault&algorithm=SHA1&digits=%d&"
             "period=%d",
             r->p.name, b32, TOTP_DIGITS, TOTP_STEP_S);
    r->last_step = 0;
    r->failures = 0;
    r->locked_until_ms = 0;
    r->p.must_change = true;
out:
    sodium_memzero(b32, sizeof(b32));
    if (rc != 0)
        sodium_memzero(cred, sizeof(*cred));
    return rc;
}

/* The hash a login checks for a name that has no password, so that it takes as long. */
static const char *dummy_hash(struct rv_principals *P)
{
    const char *h = NULL;

    pthread_mutex_lock(&P->dummy_lock);
    if (!P->have_dummy) {
        uint8_t pw[32];
        randombytes_buf(pw, sizeof(pw));
        P->have_dummy = crypto_pwhash_str(P->dummy, (const char *)pw, sizeof(pw),
                                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                          crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
        sodium_memzero(pw, sizeof(pw));
    }
    if (P->have_dummy)
        h = P->dummy;
    pthread_mutex_unlock(&P->dummy_lock);
    return h;
}

/* ------------------------------------------------------------------------------------------
 * Lockouts: the backoff, and the in-memory counters of client addresses and unknown names.
 */

/* Seconds of lock earned by the k-th consecutive failure, counting from `after`. */
static unsigned backoff_s(uint32_t k, unsigned after)
{
    uint32_t e;

    if (k < after)
        return 0;
    e = k - after;
    return e >= 10 ? LOCK_MAX_S : ((1u << e) < LOCK_MAX_S ? (1u << e) : LOCK_MAX_S);
}

static long long secs_until(int64_t until_ms, int64_t now)
{
    return until_ms > now ? (until_ms - now + 999) / 1000 : 0;
}

/* Finds id's slot (under P->lock), making one when create is set: a free slot, else the
 * one least recently failed among those not locked, else the least recently failed. */
static struct slot *slot_find(struct rv_principals *P, const char *id, bool create, int64_t now)
{
    struct slot *free_s = NULL, *old = NULL, *old_locked = NULL;

    for (size_t i = 0; i < MEM_SLOTS; i++) {
        struct slot *s = &P->slots[i];
        if (s->id[0] == '\0') {
            if (free_s == NULL)
                free_s = s;
            continue;
        }
        if (strcmp(s->id, id) == 0) {
            if (s->until_ms <= now && now - s->last_ms > FORGET_MS)
                s->fails = 0;
            return s;
        }
        if (s->until_ms <= now) {
            if (old == NULL || s->last_ms < old->last_ms)
                old = s;
        } else if (old_locked == NULL || s->last_ms < old_locked->last_ms) {
            old_locked = s;
        }
    }
    if (!create)
        return NULL;
    if (free_s == NULL)
        free_s = old != NULL ? old : old_locked;
    memset(free_s, 0, sizeof(*free_s));
    snprintf(free_s->id, sizeof(free_s->id), "%s", id);
    return free_s;
}

/* When id is locked at now, the time its lock ends; else 0. */
static int64_t mem_locked(struct rv_principals *P, const char *id, int64_t now)
{
    struct slot *s;
    int64_t until = 0;

    pthread_mutex_lock(&P->lock);
    s = slot_find(P, id, false, now);
    if (s != NULL && s->until_ms > now)
        until = s->until_ms;
    pthread_mutex_unlock(&P->lock);
    return until;
}

/* Counts a failure of id; returns the seconds of lock it earned (0: none). */
static unsigned mem_fail(struct rv_principals *P, const char *id, int64_t now, unsigned after)
{
    struct slot *s;
    unsigned lock;

    pthread_mutex_lock(&P->lock);
    s = slot_find(P, id, true, now);
    if (s->fails < UINT32_MAX)
        s->fails++;
    s->last_ms = now;
    lock = backoff_s(s->fails, after);
    if (lock > 0)
        s->until_ms = now + (int64_t)lock * 1000;
    pthread_mutex_unlock(&P->lock);
    return lock;
}

/* ------------------------------------------------------------------------------------------
 * The gate's hooks.
 */

int rv_principals_new(struct rv_gate_shared *sh, struct rv_principals **out)
{
    struct rv_principals *P = NULL;
    uint8_t *sub = NULL;
    int rc = RV_ENOMEM;

    *out = NULL;
    (void)pthread_once(&oath_once, oath_start);
    if ((P = calloc(1, sizeof(*P))) == NULL)
        goto out;
    pthread_mutex_init(&P->lock, NULL);
    pthread_mutex_init(&P->dummy_lock, NULL);
    P->sh = sh;
    P->slots = calloc(MEM_SLOTS, sizeof(*P->slots));
    P->keys = sodium_malloc(64);
    sub = sodium_malloc(32);
    if (P->slots == NULL || P->keys == NULL || sub == NULL)
        goto out;
    if ((rc = rv_vault_subkey(sh->vault, RV_SUBKEY_POLICY, sub)) != 0)
        goto out;
    if (crypto_kdf_derive_from_key(P->keys, 32, 1, "rvprinc_", sub) != 0 ||
        crypto_kdf_derive_from_key(P->keys + 32, 32, 2, "rvprinc_", sub) != 0) {
        rc = RV_ECRYPTO;
        goto out;
    }
    (void)sodium_mprotect_readonly(P->keys);
    *out = P;
    P = NULL;
    rc = 0;
out:
    if (sub != NULL) {
        sodium_memzero(sub, 32);
        sodium_free(sub);
    }
    rv_principals_free(P);
    return rc;
}

void rv_principals_free(struct rv_principals *P)
{
    if (P == NULL)
        return;
    sodium_free(P->keys); /* wipes */
    sodium_memzero(P->dummy, sizeof(P->dummy));
    free(P->slots);
    pthread_mutex_destroy(&P->lock);
    pthread_mutex_destroy(&P->dummy_lock);
    free(P);
}

/* ------------------------------------------------------------------------------------------
 * Administration.
 */

/* The name as it may appear in the log: itself when valid, else "?" (it may be anything,
 * a password typed in the wrong field included). */
static const char *log_name(const char *name)
{
    return rv_principal_name_valid(name) ? name : "?";
}

/* Records the outcome of an administrative change in t and commits it: the entry first,
 * so that nothing changes without one. t may be NULL when rc is an error. */
static int finish(struct rv_gate *g, struct rv_txn *t, const char *params, int rc)
{
    /* The entry is durable before the change even when the calling thread's appends are
     * deferred (a daemon's pooled check that suspends its principal): leave that group. */
    struct rv_audit_group *group = rv_audit_group_enter(NULL);
    char outcome[96];
    int rc2;

    if (rc == 0) {
        if ((rc = rv_policy_record(g, RV_ACT_USERS, params, "ok", NULL, 0)) != 0) {
            rv_store_abort(t);
            goto out;
        }
        if ((rc = rv_store_commit(t)) == 0)
            goto out;
        t = NULL;
    }
    rv_store_abort(t);
    snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
    rc2 = rv_policy_record(g, RV_ACT_USERS, params, outcome, NULL, 0);
    rc = rc2 != 0 ? rc2 : rc;
out:
    (void)rv_audit_group_enter(group);
    return rc;
}

int rv_policy_user_add(struct rv_gate *g, const struct rv_principal *p, struct rv_credentials *cred)
{
    struct rv_principals *P = g->sh->principals;
    struct rv_txn *t = NULL;
    struct prec r;
    char params[160];
    bool human = p->kind == RV_PRINCIPAL_HUMAN;
    int rc;

    memset(&r, 0, sizeof(r));
    if (cred != NULL)
        sodium_memzero(cred, sizeof(*cred));
    snprintf(params, sizeof(params), "op=add user=%s role=%s kind=%s budget=%u", log_name(p->name),
             rv_principal_role_valid(p->role) ? p->role : "?",
             human                             ? "human"
             : p->kind == RV_PRINCIPAL_SERVICE ? "service"
                                               : "?",
             p->budget);
    if ((rc = rv_gate_authorise(g, RV_ACT_USERS, params)) != 0)
        return rc;
    if (!rv_principal_name_valid(p->name) || !rv_principal_role_valid(p->role) ||
        (p->kind != RV_PRINCIPAL_HUMAN && p->kind != RV_PRINCIPAL_SERVICE) ||
        (human && (cred == NULL || p->cert_sha256[0] != '\0')) ||
        (!human && !cert_norm(p->cert_sha256, r.p.cert_sha256))) {
        rc = RV_EINVAL;
        goto out;
    }
    /* A decoy's name stays a decoy: a principal of that name would silence its alarm. */
    if ((rc = rv_honeytoken_is_name(g, p->name)) != 0) {
        rc = rc == 1 ? RV_EEXIST : rc;
        goto out;
    }
    snprintf(r.p.name, sizeof(r.p.name), "%s", p->name);
    snprintf(r.p.role, sizeof(r.p.role), "%s", p->role);
    r.p.kind = p->kind;
    r.p.budget = p->budget;
    r.p.created = (int64_t)time(NULL);
    if (human && (rc = issue(&r, cred)) != 0)
        goto out;
    if ((rc = rv_store_begin(store_of(g), true, &t)) != 0)
        goto out;
    rc = rec_save(t, P, &r, true);
    rc = finish(g, t, params, rc);
    t = NULL;
    goto done;
out:
    rc = finish(g, t, params, rc);
done:
    if (rc != 0 && cred != NULL)
        sodium_memzero(cred, sizeof(*cred));
    sodium_memzero(&r, sizeof(r));
    return rc;
}

struct list_ctx {
    const struct rv_principals *P;
    struct rv_principal *v;
    size_t n, cap;
};

static int list_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct list_ctx *c = arg;
    struct prec r;
    int rc;

    if (klen > STORE_KEY_MAX)
        return RV_ECORRUPT;
    if ((rc = rec_open(c->P, key, klen, val, vlen, &r)) != 0)
        return rc;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct rv_principal *v = realloc(c->v, cap * sizeof(*v));
        if (v == NULL) {
            sodium_memzero(&r, sizeof(r));
            return RV_ENOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = r.p;
    sodium_memzero(&r, sizeof(r));
    return 0;
}

int rv_policy_user_list(struct rv_gate *g, rv_principal_fn fn, void *ctx)
{
    struct list_ctx c = {g->sh->principals, NULL, 0, 0};
    struct rv_txn *t = NULL;
    char outcome[64];
    int rc;

    if ((rc = rv_gate_authorise(g, RV_ACT_USERS, "op=list")) != 0)
        return rc;
    if ((rc = rv_store_begin(store_of(g), false, &t)) == 0) {
        rc = rv_store_scan(t, KEY_PREFIX, KEY_PREFIX_LEN, list_one, &c);
        rv_store_abort(t);
    }
    if (rc == 0)
        snprintf(outcome, sizeof(outcome), "ok count=%zu", c.n);
    else
        snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
    {
        int rc2 = rv_policy_record(g, RV_ACT_USERS, "op=list", outcome, NULL, 0);
        if (rc2 != 0)
            rc = rc2;
    }
    for (size_t i = 0; rc == 0 && i < c.n; i++)
        rc = fn(ctx, &c.v[i]);
    free(c.v);
    return rc;
}

int rv_policy_user_get(struct rv_gate *g, const char *name, struct rv_principal *out)
{
    struct prec r;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!rv_principal_name_valid(name))
        return RV_ENOTFOUND; /* no principal can have it */
    if ((rc = rec_get(g, name, &r)) == 0)
        *out = r.p;
    sodium_memzero(&r, sizeof(r));
    return rc;
}

enum op { OP_DISABLE, OP_RESET, OP_REINSTATE, OP_BUDGET, OP_SUSPEND };

/* Changes one principal in one write transaction, recorded. */
static int modify(struct rv_gate *g, const char *name, enum op op, uint32_t budget, const char *why,
                  struct rv_credentials *cred)
{
    static const char *const names[] = {"disable", "reset", "reinstate", "budget", "suspend"};
    struct rv_principals *P = g->sh->principals;
    struct rv_txn *t = NULL;
    struct prec r;
    char params[192], reason[64];
    int rc;

    memset(&r, 0, sizeof(r));
    if (op == OP_BUDGET)
        snprintf(params, sizeof(params), "op=budget user=%s budget=%u", log_name(name), budget);
    else if (op == OP_SUSPEND) {
        /* why is the limits' own words; keep them to printable ASCII. */
        size_t i = 0;
        for (; why[i] != '\0' && i < sizeof(reason) - 1; i++)
            reason[i] = why[i] >= 0x20 && why[i] < 0x7f ? why[i] : '?';
        reason[i] = '\0';
        snprintf(params, sizeof(params), "op=suspend user=%s why=%s", log_name(name), reason);
    } else
        snprintf(params, sizeof(params), "op=%s user=%s", names[op], log_name(name));
    if (op != OP_SUSPEND && (rc = rv_gate_authorise(g, RV_ACT_USERS, params)) != 0)
        return rc;
    if (!rv_principal_name_valid(name))
        return finish(g, NULL, params, op == OP_SUSPEND ? RV_ENOTFOUND : RV_EINVAL);
    if ((rc = rv_store_begin(store_of(g), true, &t)) != 0)
        return finish(g, NULL, params, rc);
    if ((rc = rec_load(t, P, name, &r)) != 0)
        goto out;
    switch (op) {
    case OP_DISABLE:
        r.p.disabled = true;
        break;
    case OP_RESET:
        if (r.p.kind != RV_PRINCIPAL_HUMAN) {
            rc = RV_EINVAL;
            goto out;
        }
        rc = issue(&r, cred);
        break;
    case OP_REINSTATE:
        r.p.suspended = false;
        r.p.disabled = false;
        r.failures = 0;
        r.locked_until_ms = 0;
        break;
    case OP_BUDGET:
        r.p.budget = budget;
        break;
    case OP_SUSPEND:
        r.p.suspended = true;
        break;
    }
    if (rc == 0)
        rc = rec_save(t, P, &r, false);
out:
    rc = finish(g, t, params, rc);
    /* Admissions and checks cache a principal's state for a second: not past this change. */
    if (rc == 0)
        rv_limits_forget(g->sh, name);
    if (rc != 0 && cred != NULL)
        sodium_memzero(cred, sizeof(*cred));
    sodium_memzero(&r, sizeof(r));
    return rc;
}

int rv_policy_user_disable(struct rv_gate *g, const char *name)
{
    return modify(g, name, OP_DISABLE, 0, NULL, NULL);
}

int rv_policy_user_reset(struct rv_gate *g, const char *name, struct rv_credentials *cred)
{
    return modify(g, name, OP_RESET, 0, NULL, cred);
}

int rv_policy_user_reinstate(struct rv_gate *g, const char *name)
{
    return modify(g, name, OP_REINSTATE, 0, NULL, NULL);
}

int rv_policy_user_set_budget(struct rv_gate *g, const char *name, uint32_t budget)
{
    return modify(g, name, OP_BUDGET, budget, NULL, NULL);
}

int rv_principal_suspend(struct rv_gate *g, const char *name, const char *why)
{
    return modify(g, name, OP_SUSPEND, 0, why != NULL ? why : "", NULL);
}

/* ------------------------------------------------------------------------------------------
 * Logins.
 */

/* oath's comparison of a candidate code with the one given, in constant time. */
static int otp_cmp(void *handle, const char *test_otp)
{
    return sodium_memcmp(handle, test_otp, TOTP_DIGITS + 1) == 0 ? 0 : 1;
}

/* 0 and *step when code is the TOTP of a step within one of now and after last; 1 when it
 * is no such code, 2 when its step is at or before last (replayed); or an RV_E* code. */
static int totp_check(const uint8_t secret[TOTP_SECRET_LEN], const char *code, int64_t now_s,
                      uint64_t last, uint64_t *step)
{
    char given[TOTP_DIGITS + 1];
    uint64_t counter = 0;
    int pos = 0, rc;

    if (strnlen(code, TOTP_DIGITS + 1) != TOTP_DIGITS)
        return 1;
    for (int i = 0; i < TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return 1;
    memcpy(given, code, sizeof(given));
    rc = oath_totp_validate3_callback((const char *)secret, TOTP_SECRET_LEN, (time_t)now_s,
                                      TOTP_STEP_S, OATH_TOTP_DEFAULT_START_TIME, TOTP_DIGITS,
                                      TOTP_WINDOW, &pos, &counter, otp_cmp, given);
    sodium_memzero(given, sizeof(given));
    if (rc == OATH_INVALID_OTP)
        return 1;
    if (rc < 0)
        return RV_ECRYPTO;
    if (counter <= last)
        return 2;
    *step = counter;
    return 0;
}

/* The in-memory lockout id of a client address ("c:" and its key: an IPv6 address counts
 * by its /64). */
static void client_id(const char *client, char *out, size_t outsz)
{
    char key[RV_CLIENT_KEY_MAX];

    rv_client_key(client, key);
    snprintf(out, outsz, "c:%s", key);
}

/* Raises a lockout alert. */
static int lock_alert(struct rv_gate *g, const char *who, const char *client, const char *what,
                      unsigned secs, unsigned after)
{
    struct rv_alert a = {0};
    char detail[128];

    snprintf(detail, sizeof(detail), "%s locked for %us after %u or more failed logins", what, secs,
             after);
    a.severity = RV_ALERT_MEDIUM;
    a.kind = "lockout";
    a.principal = who;
    a.client = client;
    a.detail = detail;
    return rv_policy_alert(g, &a);
}

/* The part of a login that reads, changes and writes the record, in one write transaction:
 * sets *reason for a failure (NULL on success) and r2 to the record as stored. */
static int settle(struct rv_gate *g, const struct prec *r, bool pw_ok, const char *totp,
                  const char *new_hash, int64_t now, int64_t lock_from, struct prec *r2,
                  const char **reason, unsigned *user_lock, int64_t *locked_until)
{
    struct rv_principals *P = g->sh->principals;
    struct rv_txn *t = NULL;
    uint64_t step = 0;
    int rc, tc;

    *reason = NULL;
    *user_lock = 0;
    *locked_until = 0;
    if ((rc = rv_store_begin(store_of(g), true, &t)) != 0)
        return rc;
    if ((rc = rec_load(t, P, r->p.name, r2)) != 0)
        goto out;
    /* The password checked was the one stored now (not one a reset has just replaced). */
    if (sodium_memcmp(r->hash, r2->hash, sizeof(r->hash)) != 0)
        pw_ok = false;
    if (r2->locked_until_ms > now) {
        *locked_until = r2->locked_until_ms;
        rc = RV_ELOCKED;
        goto out;
    }
    if (r2->p.kind != RV_PRINCIPAL_HUMAN)
        *reason = "denied: service principal";
    else if (r2->p.disabled)
        *reason = "denied: disabled";
    else if (!pw_ok)
        *reason = "denied: bad password";
    else if (new_hash == NULL) {
        tc = totp_check(r2->totp, totp, now / 1000, r2->last_step, &step);
        if (tc < 0) {
            rc = tc;
            goto out;
        }
        *reason = tc == 1 ? "denied: bad totp" : tc == 2 ? "denied: replayed totp" : NULL;
    }
    if (*reason != NULL) {
        if (r2->failures < UINT32_MAX)
            r2->failures++;
        *user_lock = backoff_s(r2->failures, USER_LOCK_AFTER);
        if (*user_lock > 0)
            r2->locked_until_ms = lock_from + (int64_t)*user_lock * 1000;
    } else {
        r2->failures = 0;
        r2->locked_until_ms = 0;
        if (new_hash == NULL) {
            r2->last_step = step;
        } else if (!r2->p.suspended) { /* a suspended principal changes nothing */
            memcpy(r2->hash, new_hash, sizeof(r2->hash));
            r2->p.must_change = false;
        }
    }
    if ((rc = rec_save(t, P, r2, false)) != 0)
        goto out;
    rc = rv_store_commit(t);
    t = NULL;
out:
    rv_store_abort(t);
    return rc;
}

/* Writes a decoy record, so that a login for an unknown name writes and syncs as a known
 * one does. */
static int decoy_write(struct rv_gate *g)
{
    struct rv_txn *t = NULL;
    uint8_t junk[1 + NONCE_LEN + 160 + TAG_LEN];
    int rc;

    randombytes_buf(junk, sizeof(junk));
    if ((rc = rv_store_begin(store_of(g), true, &t)) != 0)
        return rc;
    if ((rc = rv_store_put(t, DECOY_KEY, sizeof(DECOY_KEY), junk, sizeof(junk))) != 0) {
        rv_store_abort(t);
        return rc;
    }
    return rv_store_commit(t);
}

/* A login (new_password NULL) or a password change (totp NULL). */
static int authenticate(struct rv_gate *g, const char *user, const char *password, const char *totp,
                        const char *new_password, const char *client, struct rv_principal *out,
                        int64_t *retry_after)
{
    struct rv_principals *P = g->sh->principals;
    struct rv_actor saved = g->who;
    struct prec r, r2;
    char params[128], outcome[192], uid[80], cid[80], new_hash[crypto_pwhash_STRBYTES];
    const char *reason = NULL, *hash, *op = new_password == NULL ? "login" : "password";
    bool known = false, pw_ok;
    unsigned user_lock = 0, client_lock = 0;
    int64_t now = now_ms(), judged = now, until;
    int rc, hk = 0, rc2;

    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    memset(new_hash, 0, sizeof(new_hash));
    memset(out, 0, sizeof(*out));
    *retry_after = 0;
    client_id(client, cid, sizeof(cid));
    snprintf(uid, sizeof(uid), "u:%.63s", user);
    outcome[0] = '\0';

    rc = rv_principal_name_valid(user) ? rec_get(g, user, &r) : RV_ENOTFOUND;
    known = rc == 0;
    if (known || rc != RV_ENOTFOUND) {
        snprintf(params, sizeof(params), "op=%s user=%s", op, user);
    } else {
        /* Never the name itself: it may be a password typed in the wrong field. */
        uint8_t h[8];
        char hex[17];
        crypto_generichash(h, sizeof(h), (const uint8_t *)user, strnlen(user, PASSWORD_MAX),
                           P->keys + 32, 32);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        snprintf(params, sizeof(params), "op=%s user=unknown:%s", op, hex);
    }
    g->who.principal = known ? r.p.name : "-";
    g->who.role = known ? r.p.role : "-";
    g->who.client = client;
    if (!known && rc != RV_ENOTFOUND)
        goto record_error;

    /* A decoy's name or password raises its alarm whatever the lockouts: an intruder locked
     * out for guessing is the one most likely to try the credentials found next. */
    if ((hk = rv_policy_honeytoken_login(g, user, password, client)) < 0) {
        rc = hk;
        goto record_error;
    }
    /* Locked: refused before any password is hashed. */
    until = mem_locked(P, cid, now);
    if (until > 0) {
        *retry_after = secs_until(until, now);
        snprintf(outcome, sizeof(outcome), "refused: client locked %llds", (long long)*retry_after);
        rc = RV_ELOCKED;
        goto record;
    }
    until = known ? (r.locked_until_ms > now ? r.locked_until_ms : 0) : mem_locked(P, uid, now);
    if (until > 0) {
        *retry_after = secs_until(until, now);
        snprintf(outcome, sizeof(outcome), "refused: locked %llds", (long long)*retry_after);
        rc = RV_ELOCKED;
        goto record;
    }

    hash = known && r.p.kind == RV_PRINCIPAL_HUMAN ? r.hash : dummy_hash(P);
    if (hash == NULL) {
        rc = RV_ENOMEM;
        goto record_error;
    }
    pw_ok = crypto_pwhash_str_verify(hash, password, strnlen(password, PASSWORD_MAX + 1)) == 0 &&
            known && strnlen(password, PASSWORD_MAX + 1) <= PASSWORD_MAX;

    if (new_password != NULL && pw_ok && known && !r.p.disabled) {
        if (strength(user, new_password) != 0 || strcmp(new_password, password) == 0) {
            snprintf(outcome, sizeof(outcome), "denied: weak password");
            rc = RV_EWEAK;
            goto record;
        }
        if (crypto_pwhash_str(new_hash, new_password, strlen(new_password),
                              crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
            rc = RV_ENOMEM;
            goto record_error;
        }
    }

    /* A lock earned below runs from when the failure is judged, after the hashing (over a
     * second on a loaded machine), not from when the attempt began. */
    judged = now_ms();
    if (known) {
        rc = settle(g, &r, pw_ok, totp, new_password != NULL ? new_hash : NULL, now, judged, &r2,
                    &reason, &user_lock, &until);
        if (rc == RV_ELOCKED) {
            *retry_after = secs_until(until, judged);
            snprintf(outcome, sizeof(outcome), "refused: locked %llds", (long long)*retry_after);
            goto record;
        }
        if (rc != 0)
            goto record_error;
    } else {
        if ((rc = decoy_write(g)) != 0)
            goto record_error;
        reason = hk == 1 ? "denied: honeytoken" : "denied: unknown user";
        user_lock = mem_fail(P, uid, judged, USER_LOCK_AFTER);
    }

    if (reason != NULL) {
        int n;
        client_lock = mem_fail(P, cid, judged, CLIENT_LOCK_AFTER);
        n = snprintf(outcome, sizeof(outcome), "%s", reason);
        if (user_lock > 0)
            n += snprintf(outcome + n, sizeof(outcome) - (size_t)n, "; locked %us", user_lock);
        if (client_lock > 0)
            snprintf(outcome + n, sizeof(outcome) - (size_t)n, "; client locked %us", client_lock);
        rc = RV_EAUTH;
    } else if (r2.p.suspended) {
        snprintf(outcome, sizeof(outcome), "denied: suspended");
        rc = RV_ESUSPENDED;
    } else if (new_password == NULL && r2.p.must_change) {
        snprintf(outcome, sizeof(outcome), "ok: password must be changed");
        rc = RV_ECHANGE;
    } else {
        snprintf(outcome, sizeof(outcome), new_password == NULL ? "ok" : "ok: password changed");
        rc = 0;
    }
    goto record;

record_error:
    snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
record:
    if ((rc2 = rv_policy_record(g, RV_ACT_LOGIN, params, outcome, NULL, 0)) != 0)
        rc = rc2;
    if (user_lock > 0 &&
        (rc2 = lock_alert(g, known ? r.p.name : "-", client, known ? "user" : "unknown user name",
                          user_lock, USER_LOCK_AFTER)) != 0)
        rc = rc2;
    if (client_lock > 0 && (rc2 = lock_alert(g, known ? r.p.name : "-", client, "client address",
                                             client_lock, CLIENT_LOCK_AFTER)) != 0)
        rc = rc2;
    if (rc == 0 || rc == RV_ECHANGE)
        *out = r2.p;
    g->who = saved;
    sodium_memzero(&r, sizeof(r));
    sodium_memzero(&r2, sizeof(r2));
    sodium_memzero(new_hash, sizeof(new_hash));
    return rc;
}

int rv_policy_login(struct rv_gate *g, const char *user, const char *password, const char *totp,
                    const char *client, struct rv_principal *out, int64_t *retry_after)
{
    return authenticate(g, user, password, totp, NULL, client, out, retry_after);
}

int rv_policy_change_password(struct rv_gate *g, const char *user, const char *old,
                              const char *new_password, const char *client)
{
    struct rv_principal p;
    int64_t retry = 0;
    int rc = authenticate(g, user, old, NULL, new_password, client, &p, &retry);

    sodium_memzero(&p, sizeof(p));
    return rc;
}

struct cert_ctx {
    const struct rv_principals *P;
    const char *cert; /* lower-case hex, or "" */
    struct rv_principal found;
    bool match, disabled;
};

static int cert_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct cert_ctx *c = arg;
    struct prec r;
    int rc;

    if (klen > STORE_KEY_MAX)
        return RV_ECORRUPT;
    if ((rc = rec_open(c->P, key, klen, val, vlen, &r)) != 0)
        return rc;
    /* Every record is compared, the same way, whether or not one has matched. */
    if (sodium_memcmp(r.p.cert_sha256, c->cert, 64) == 0 && r.p.kind == RV_PRINCIPAL_SERVICE &&
        c->cert[0] != '\0' && !c->match) {
        if (r.p.disabled) {
            c->disabled = true;
        } else {
            c->found = r.p;
            c->match = true;
        }
    }
    sodium_memzero(&r, sizeof(r));
    return 0;
}

int rv_policy_login_cert(struct rv_gate *g, const char *cert_sha256, const char *client,
                         struct rv_principal *out)
{
    struct rv_principals *P = g->sh->principals;
    struct rv_actor saved = g->who;
    struct cert_ctx c;
    struct rv_txn *t = NULL;
    char cert[65] = {0}, params[128], outcome[128], cid[80];
    unsigned client_lock = 0;
    int64_t now = now_ms(), until;
    int rc, rc2;

    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    if (!cert_norm(cert_sha256, cert))
        memset(cert, 0, sizeof(cert));
    c.P = P;
    c.cert = cert;
    snprintf(params, sizeof(params), "op=cert cert=%.16s", cert[0] != '\0' ? cert : "?");
    client_id(client, cid, sizeof(cid));
    g->who.principal = "-";
    g->who.role = "-";
    g->who.client = client;

    if ((until = mem_locked(P, cid, now)) > 0) {
        snprintf(outcome, sizeof(outcome), "refused: client locked %llds", secs_until(until, now));
        rc = RV_ELOCKED;
        goto record;
    }
    if ((rc = rv_store_begin(store_of(g), false, &t)) == 0) {
        rc = rv_store_scan(t, KEY_PREFIX, KEY_PREFIX_LEN, cert_one, &c);
        rv_store_abort(t);
    }
    if (rc != 0) {
        snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
    } else if (!c.match) {
        int n = snprintf(outcome, sizeof(outcome), "%s",
                         c.disabled ? "denied: disabled" : "denied: unknown certificate");
        client_lock = mem_fail(P, cid, now, CLIENT_LOCK_AFTER);
        if (client_lock > 0)
            snprintf(outcome + n, sizeof(outcome) - (size_t)n, "; client locked %us", client_lock);
        rc = RV_EAUTH;
    } else {
        g->who.principal = c.found.name;
        g->who.role = c.found.role;
        rc = c.found.suspended ? RV_ESUSPENDED : 0;
        snprintf(outcome, sizeof(outcome), "%s", rc == 0 ? "ok" : "denied: suspended");
        snprintf(params, sizeof(params), "op=cert user=%s cert=%.16s", c.found.name, cert);
    }
record:
    if ((rc2 = rv_policy_record(g, RV_ACT_LOGIN, params, outcome, NULL, 0)) != 0)
        rc = rc2;
    if (client_lock > 0 &&
        (rc2 = lock_alert(g, "-", client, "client address", client_lock, CLIENT_LOCK_AFTER)) != 0)
        rc = rc2;
    if (rc == 0)
        *out = c.found;
    g->who = saved;
    sodium_memzero(&c, sizeof(c));
    return rc;
}
