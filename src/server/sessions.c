/*
 * sessions.c - bearer-token sessions, in memory only.
 *
 * A token is "rvs_" followed by the base64url (no padding) of 32 random bytes. The table
 * never holds a token: it holds BLAKE2b-256(token), in an open-addressing table indexed by
 * the hash's first eight bytes and confirmed by comparing all 32 with sodium_memcmp, so the
 * time a lookup takes says nothing about any token held. A session ends idle seconds after
 * its last use or max seconds after login, whichever is first; expired sessions are dropped
 * when met and by rv_sessions_sweep. The clock can be injected, for tests.
 */
#include "server/server.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX     "rvs_"
#define PREFIX_LEN 4

struct slot {
    uint8_t hash[32];
    uint8_t state; /* 0 empty, 1 used, 2 deleted */
    bool restricted;
    char principal[RV_PRINCIPAL_NAME_MAX];
    char role[16];
    int64_t created_ms, used_ms;
};

struct rv_sessions {
    pthread_mutex_t lock;
    struct slot *slots;
    size_t nslots, used, deleted, cap; /* nslots: power of two, at least 2 * cap */
    int64_t idle_ms, max_ms;
    rv_server_clock_fn clock;
    void *clock_ctx;
};

static int64_t real_clock(void *ctx)
{
    struct timespec t;
    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int rv_sessions_new(uint32_t idle_s, uint32_t max_s, size_t cap, rv_server_clock_fn clock,
                    void *clock_ctx, struct rv_sessions **out)
{
    struct rv_sessions *s;
    size_t n = 16;

    *out = NULL;
    if (cap == 0 || cap > (1u << 24))
        return RV_EINVAL;
    while (n < 2 * cap)
        n *= 2;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return RV_ENOMEM;
    /* Locked memory: the hashes are not secrets, but they are as good as tokens to a process
     * that can read them, so keep them out of swap and core files. */
    if ((s->slots = sodium_allocarray(n, sizeof(struct slot))) == NULL) {
        free(s);
        return RV_ENOMEM;
    }
    memset(s->slots, 0, n * sizeof(struct slot));
    pthread_mutex_init(&s->lock, NULL);
    s->nslots = n;
    s->cap = cap;
    s->idle_ms = (int64_t)idle_s * 1000;
    s->max_ms = (int64_t)max_s * 1000;
    s->clock = clock != NULL ? clock : real_clock;
    s->clock_ctx = clock_ctx;
    *out = s;
    return 0;
}

void rv_sessions_free(struct rv_sessions *s)
{
    if (s == NULL)
        return;
    sodium_memzero(s->slots, s->nslots * sizeof(struct slot));
    sodium_free(s->slots);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static bool expired(const struct rv_sessions *s, const struct slot *e, int64_t now)
{
    return now - e->used_ms >= s->idle_ms || now - e->created_ms >= s->max_ms;
}

static int64_t expiry(const struct rv_sessions *s, const struct slot *e)
{
    int64_t a = e->used_ms + s->idle_ms, b = e->created_ms + s->max_ms;
    return a < b ? a : b;
}

static void fill(const struct rv_sessions *s, const struct slot *e, struct rv_session_info *out)
{
    memcpy(out->principal, e->principal, sizeof(out->principal));
    memcpy(out->role, e->role, sizeof(out->role));
    out->restricted = e->restricted;
    out->created_ms = e->created_ms;
    out->expires_ms = expiry(s, e);
}

static size_t start_of(const struct rv_sessions *s, const uint8_t hash[32])
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h));
    return (size_t)h & (s->nslots - 1);
}

static void drop(struct rv_sessions *s, struct slot *e)
{
    sodium_memzero(e, sizeof(*e));
    e->state = 2;
    s->used--;
    s->deleted++;
}

/* The slot holding hash, or NULL. Caller holds the lock. */
static struct slot *find(struct rv_sessions *s, const uint8_t hash[32])
{
    size_t i = start_of(s, hash);

    for (size_t probes = 0; probes < s->nslots; probes++, i = (i + 1) & (s->nslots - 1)) {
        struct slot *e = &s->slots[i];
        if (e->state == 0)
            return NULL;
        if (e->state == 1 && sodium_memcmp(e->hash, hash, 32) == 0)
            return e;
    }
    return NULL;
}

static int token_hash(const char *token, size_t len, uint8_t out[32])
{
    /* 4 + 43 characters of the base64url alphabet; anything else cannot be ours. */
    if (len != RV_SESSION_TOKEN_LEN || memcmp(token, PREFIX, PREFIX_LEN) != 0)
        return RV_EAUTH;
    for (size_t i = PREFIX_LEN; i < len; i++) {
        char ch = token[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return RV_EAUTH;
    }
    crypto_generichash(out, 32, (const unsigned char *)token, len, NULL, 0);
    return 0;
}

/* Rebuilds the table in place when deleted slots pile up: re-inserts live entries. */
static void rehash(struct rv_sessions *s)
{
    size_t n = s->nslots;
    struct slot *old = sodium_allocarray(n, sizeof(struct slot));

    if (old == NULL)
        return;
    memcpy(old, s->slots, n * sizeof(struct slot));
    memset(s->slots, 0, n * sizeof(struct slot));
    for (size_t j = 0; j < n; j++) {
        if (old[j].state != 1)
            continue;
        size_t i = start_of(s, old[j].hash);
        while (s->slots[i].state != 0)
            i = (i + 1) & (n - 1);
        s->slots[i] = old[j];
    }
    sodium_memzero(old, n * sizeof(struct slot));
    sodium_free(old);
    s->deleted = 0;
}

static size_t sweep_locked(struct rv_sessions *s, int64_t now)
{
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].state == 1 && expired(s, &s->slots[i], now))
            drop(s, &s->slots[i]);
    if (s->deleted > s->nslots / 4)
        rehash(s);
    return s->used;
}

int rv_sessions_create(struct rv_sessions *s, const char *principal, const char *role,
                       bool restricted, char token[RV_SESSION_TOKEN_LEN + 1],
                       struct rv_session_info *info)
{
    uint8_t raw[32], hash[32];
    struct slot *e = NULL;
    int64_t now;
    size_t i;
    int rc = 0;

    if (strlen(principal) >= RV_PRINCIPAL_NAME_MAX || strlen(role) >= 16)
        return RV_EINVAL;
    randombytes_buf(raw, sizeof(raw));
    memcpy(token, PREFIX, PREFIX_LEN);
    sodium_bin2base64(token + PREFIX_LEN, RV_SESSION_TOKEN_LEN + 1 - PREFIX_LEN, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(hash, 32, (const unsigned char *)token, RV_SESSION_TOKEN_LEN, NULL, 0);
    sodium_memzero(raw, sizeof(raw));

    pthread_mutex_lock(&s->lock);
    now = s->clock(s->clock_ctx);
    if (s->used >= s->cap || s->used + s->deleted > s->nslots / 2)
        sweep_locked(s, now);
    if (s->used >= s->cap) {
        rc = RV_ELIMIT;
        goto out;
    }
    for (i = start_of(s, hash);; i = (i + 1) & (s->nslots - 1))
        if (s->slots[i].state != 1) {
            e = &s->slots[i];
            break;
        }
    memset(e, 0, sizeof(*e));
    memcpy(e->hash, hash, 32);
    e->state = 1;
    e->restricted = restricted;
    strcpy(e->principal, principal);
    strcpy(e->role, role);
    e->created_ms = e->used_ms = now;
    s->used++;
    if (info != NULL)
        fill(s, e, info);
out:
    pthread_mutex_unlock(&s->lock);
    sodium_memzero(hash, sizeof(hash));
    if (rc != 0)
        sodium_memzero(token, RV_SESSION_TOKEN_LEN + 1);
    return rc;
}

int rv_sessions_lookup(struct rv_sessions *s, const char *token, size_t len,
                       struct rv_session_info *out)
{
    uint8_t hash[32];
    struct slot *e;
    int64_t now;
    int rc = RV_EAUTH;

    if (token_hash(token, len, hash) != 0)
        return RV_EAUTH;
    pthread_mutex_lock(&s->lock);
    now = s->clock(s->clock_ctx);
    if ((e = find(s, hash)) != NULL) {
        if (expired(s, e, now)) {
            drop(s, e);
        } else {
            e->used_ms = now;
            fill(s, e, out);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

static int change(struct rv_sessions *s, const char *token, size_t len, bool revoke)
{
    uint8_t hash[32];
    struct slot *e;
    int rc = RV_EAUTH;

    if (token_hash(token, len, hash) != 0)
        return RV_EAUTH;
    pthread_mutex_lock(&s->lock);
    if ((e = find(s, hash)) != NULL) {
        if (revoke)
            drop(s, e);
        else
            e->restricted = false;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

int rv_sessions_revoke(struct rv_sessions *s, const char *token, size_t len)
{
    return change(s, token, len, true);
}

int rv_sessions_unrestrict(struct rv_sessions *s, const char *token, size_t len)
{
    return change(s, token, len, false);
}

size_t rv_sessions_revoke_principal(struct rv_sessions *s, const char *principal)
{
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].state == 1 && strcmp(s->slots[i].principal, principal) == 0) {
            drop(s, &s->slots[i]);
            n++;
        }
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t rv_sessions_revoke_others(struct rv_sessions *s, const char *principal, const char *keep,
                                 size_t keep_len)
{
    uint8_t hash[32];
    size_t n = 0;

    if (token_hash(keep, keep_len, hash) != 0)
        return rv_sessions_revoke_principal(s, principal);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].state == 1 && strcmp(s->slots[i].principal, principal) == 0 &&
            sodium_memcmp(s->slots[i].hash, hash, 32) != 0) {
            drop(s, &s->slots[i]);
            n++;
        }
    pthread_mutex_unlock(&s->lock);
    sodium_memzero(hash, sizeof(hash));
    return n;
}

size_t rv_sessions_sweep(struct rv_sessions *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = sweep_locked(s, s->clock(s->clock_ctx));
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t rv_sessions_count(struct rv_sessions *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->used;
    pthread_mutex_unlock(&s->lock);
    return n;
}
