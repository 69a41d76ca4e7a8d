/*
 * limits.c - prevention: disclosure budgets, rate limits, probing limits and anomaly alerts.
 *
 * Budgets count distinct electors shown to a principal in a UTC day, not requests: the gate
 * hands over the subject id of every entry the answers would show, each is reduced to a
 * 16-byte keyed hash (a key of our own, derived from the audit MAC key, so these records
 * cannot be joined with the log's subject ids), and a request whose new electors would take
 * the principal past its budget is refused whole. The day's set lives in memory (an open
 * addressing hash set per principal) and in the store under 0x83 'S' principal 0x00
 * day (4 bytes, big-endian) hash (empty value), made durable before the answer goes out, so a
 * restart does not reset a budget. Requests that show someone new share durable commits (group
 * commit: whoever finds no writer busy writes for everyone queued); a request that shows only
 * electors already shown today costs a hash-set probe. A request whose thread has an audit group
 * (a daemon's pool, which withholds the answer until the group is durable) does not wait: it
 * holds the group (rv_audit_group_hold) and queues its electors to a writer thread of ours, which
 * commits everything queued at once and releases each group with the result, so the answer
 * goes out only once they are durable, and a failed write fails it as an audit failure. Earlier
 * days are deleted when a principal's day is loaded.
 *
 * Rate limits are token buckets per principal and per client address (an IPv6 address by its
 * /64), in memory only. At most 65536 addresses have a bucket of their own; past that, once
 * those that have refilled are forgotten, new addresses share one bucket. The
 * principal's state (suspended, disabled, budget) is read through rv_policy_user_get at most
 * once a second per principal, so admitting a request costs no store read.
 *
 * Probing limits look at features of each answered check, kept in a ring of the principal's
 * last probe_window checks: whether it found nobody, a keyed hash of the postcode sector, a
 * keyed hash of street + postcode with the house number, and the folded first four letters
 * of the surname (memory only, wiped when overwritten). Rules (each raises a medium alert,
 * halves the principal's request rate for an hour, and counts toward suspension after
 * probe_alerts_suspend alerts in a day):
 *   probing.nomatch  more than probe_nomatch_ratio of the window found nobody, once the
 *                    window holds at least 20 checks;
 *   probing.sector   more than probe_sector_max checks of the window in one postcode sector;
 *   probing.sweep    a run of probe_sweep_run checks whose surnames are in non-decreasing
 *                    order AND which mostly find nobody (over half) or mostly stay in one
 *                    sector (over half the steps): a donations file sorted by donor name
 *                    does neither, so it never fires; or a run of probe_sweep_run checks in
 *                    one street (or postcode) whose house numbers rise by 1 or 2 each time.
 * After firing, nomatch and sector stay quiet for half a window and a sweep needs a new run.
 * At probe_alerts_suspend probing alerts in a UTC day the principal is suspended
 * (rv_principal_suspend, and a high "suspended" alert); past that count, a further alert
 * after an admin's reinstatement suspends it again. A principal the store does not know is
 * suspended in memory only. Rows out of scope or unreadable are not observed.
 *
 * Anomalies, against a small per-principal baseline kept under 0x83 'B' principal 0x00 (a
 * fixed-size record with magic "RLV1" and a format version: volumes of the last 14 active
 * days, a bitmap of the UTC hours used, keyed hashes of the last 16 client addresses, and
 * the day's alert counters):
 *   anomaly.volume   (medium) today's checks exceed 5 times the median of the last 14
 *                    active days, given at least 3 of them; once a day;
 *   anomaly.hours    (low) the first use in an hour of day never used before, once the
 *                    principal's first use is at least 7 days old;
 *   anomaly.client   (medium) a client address not among the principal's last 16, once
 *                    the principal has used the vault on an earlier day.
 * A budget refusal raises a medium "budget" alert once per principal per day.
 *
 * Locks: one table lock for the principals' states, a mutex per principal, one lock for the
 * client buckets. Alerts, suspension and principal reads happen with no lock held.
 */
#include "policy/inner.h"

#include "audit/audit.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BYTE        0x83
#define TAG_SUBJECT     'S'
#define TAG_STATS       'B'
#define HASH_LEN        16
#define DAY_MS          86400000LL
#define HOUR_MS         3600000LL
#define CACHE_TTL_MS    1000
#define THROTTLE_MS     HOUR_MS
#define NOMATCH_MIN     20
#define HIST_DAYS       14
#define MAX_CLIENTS     16
#define VOLUME_FACTOR   5
#define VOLUME_MIN_DAYS 3
#define HOURS_MIN_DAYS  7
#define STATS_FLUSH_MS  10000
#define NCHAINS         256
#define CLIENTS_MAX     65536
#define OVERFLOW_CLIENT "(new clients past the table's room)"
#define MAX_PENDING     16
#define STATS_MAGIC     0x524c5631u /* "RLV1", stored big-endian */

/* ------------------------------------------------------------------------------------------
 * The clock (UTC ms) and, for tests, a view of every alert raised here.
 */
static int64_t real_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*clock_ms)(void) = real_clock_ms;
static void (*alert_seen)(const struct rv_alert *a);

void rv_limits_test_hooks(int64_t (*clock)(void), void (*on_alert)(const struct rv_alert *a))
{
    clock_ms = clock != NULL ? clock : real_clock_ms;
    alert_seen = on_alert;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* ------------------------------------------------------------------------------------------
 * State.
 */

/* One observed check: derived features only. */
struct obs {
    uint64_t sector; /* keyed hash of the postcode sector; 0 when none */
    uint64_t street; /* keyed hash of street + postcode (or the postcode alone); 0 when none */
    int32_t number;  /* house number, -1 when none */
    char sn4[5];     /* folded first four letters of the surname, "" when none */
    bool nomatch;
};

/* The baseline and the day's counters, persisted under 0x83 'B' principal. */
struct stats {
    int64_t first_day; /* first active day, -1 before any */
    int64_t day;       /* the day `volume` counts */
    uint32_t volume;   /* checks that day */
    uint32_t nhist;
    int64_t hist_day[HIST_DAYS]; /* earlier active days, newest first */
    uint32_t hist_vol[HIST_DAYS];
    uint32_t hours; /* bit h: used in UTC hour h */
    uint32_t nclients;
    uint64_t clients[MAX_CLIENTS]; /* keyed hashes, oldest first */
    int64_t budget_alert_day;
    int64_t volume_alert_day;
    int64_t probe_day;
    uint32_t probe_alerts;
    int64_t suspended_day;
};

struct pstate {
    struct pstate *next;
    char name[RV_PRINCIPAL_NAME_MAX];
    pthread_mutex_t mu;
    /* the principal as last read: fetched_ms (atomic; 0 before the first read) is when, and
     * one thread at a time (refreshing, atomic) reads it again after CACHE_TTL_MS */
    int64_t fetched_ms;
    int refreshing;
    bool suspended, disabled;
    bool sticky; /* suspended here while the principal is unknown to the store */
    uint32_t budget;
    /* budget: today's distinct electors */
    int64_t day;
    bool loaded;
    bool purge_due; /* earlier days' electors are in the store: delete them, unlocked */
    uint64_t gen;   /* bumped when the set is dropped after a failed write */
    uint8_t (*set)[HASH_LEN];
    size_t setcap, used; /* used counts electors whose write may still be in flight */
    /* request bucket */
    double tokens;
    int64_t bucket_ms;
    int64_t throttle_until;
    /* probing */
    struct obs *win;
    uint32_t wcap, wlen, wpos, nomatch_in_win;
    struct scount *sc; /* checks per sector in the window (open addressing, no deletes) */
    size_t sccap, scused;
    uint64_t seen, quiet_nomatch, quiet_sector;
    struct obs last;
    bool has_last;
    uint32_t alpha_run, alpha_nomatch, alpha_same, num_run;
    /* baseline: read once, then kept here; written at once when an alert counter, the hours,
     * the clients or the day change, and otherwise (volume) at most every STATS_FLUSH_MS */
    struct stats st;
    bool stats_loaded;
    bool flush_now;
    uint32_t unflushed;
    int64_t flushed_ms;
    uint32_t median;     /* of the volumes in st.hist_vol, kept when they change */
    pthread_mutex_t fmu; /* one baseline write at a time, with mu not held */
};

struct scount {
    uint64_t key;
    uint32_t n;
};

struct cbucket {
    struct cbucket *next;
    char addr[64];
    double tokens;
    int64_t ms;
};

struct rv_limits {
    struct rv_gate_shared *sh;
    uint8_t *key; /* sodium_malloc: keyed hashes of subjects and features */
    pthread_rwlock_t lock;
    struct pstate *ps[NCHAINS];
    pthread_mutex_t clock_;
    struct cbucket *cb[NCHAINS];
    size_t ncb;
    int64_t cb_purged_ms; /* the last sweep of refilled buckets */
    /* group commit of new electors: one writer commits for every request waiting */
    pthread_mutex_t wq_lock;
    struct wreq *wq;
    bool writing;
    /* requests whose answers wait in an audit group: the writer thread commits them */
    pthread_cond_t aq_more;
    struct areq *aq;
    bool aq_stop;
    bool writer_started, writer_failed;
    pthread_t writer;
};

/* Electors one request adds: keys prefix || hash[i], all of one length. */
struct wreq {
    struct wreq *next;
    const uint8_t *prefix;
    size_t plen;
    const uint8_t (*hash)[HASH_LEN];
    size_t n;
    int rc;
    bool done;
    pthread_cond_t *wake; /* the waiting caller's own condition (synchronous path) */
};

/* A request whose answer waits in the audit group it holds: its own copy of the keys, in
 * one heap block with the hashes after it, freed by the writer thread. */
struct areq {
    struct areq *next;
    struct wreq w;
    struct rv_audit_group *group;
    struct pstate *ps;
    uint64_t gen;
    int64_t today;
    uint8_t prefix[3 + RV_PRINCIPAL_NAME_MAX + 4];
};

struct pending {
    size_t n;
    struct {
        const char *kind;
        enum rv_alert_severity sev;
        char detail[160];
    } a[MAX_PENDING];
    bool suspend;
};

static void add_pending(struct pending *p, const char *kind, enum rv_alert_severity sev,
                        const char *detail)
{
    if (p->n >= MAX_PENDING)
        return;
    p->a[p->n].kind = kind;
    p->a[p->n].sev = sev;
    snprintf(p->a[p->n].detail, sizeof(p->a[p->n].detail), "%s", detail);
    p->n++;
}

struct cfgsnap {
    uint32_t budget;
    double rate_p, rate_c;
    uint32_t burst_p, burst_c;
    uint32_t window, sector_max, sweep_run, alerts_suspend;
    double nomatch_ratio;
};

static void cfg_snapshot(struct rv_gate_shared *sh, struct cfgsnap *c)
{
    pthread_mutex_lock(&sh->cfg_lock);
    c->budget = sh->cfg.budget_checker;
    c->rate_p = sh->cfg.rate_principal;
    c->rate_c = sh->cfg.rate_client;
    c->burst_p = sh->cfg.burst_principal;
    c->burst_c = sh->cfg.burst_client;
    c->window = sh->cfg.probe_window;
    c->sector_max = sh->cfg.probe_sector_max;
    c->sweep_run = sh->cfg.probe_sweep_run;
    c->alerts_suspend = sh->cfg.probe_alerts_suspend;
    c->nomatch_ratio = sh->cfg.probe_nomatch_ratio;
    pthread_mutex_unlock(&sh->cfg_lock);
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static uint64_t keyed64(const struct rv_limits *l, const char *domain, const char *s)
{
    crypto_generichash_state st;
    uint8_t out[8];
    uint64_t v = 0;

    crypto_generichash_init(&st, l->key, 32, sizeof(out));
    crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain) + 1);
    crypto_generichash_update(&st, (const uint8_t *)s, strlen(s));
    crypto_generichash_final(&st, out, sizeof(out));
    for (int i = 0; i < 8; i++)
        v = v << 8 | out[i];
    sodium_memzero(&st, sizeof(st));
    return v != 0 ? v : 1;
}

static void stats_init(struct stats *st)
{
    memset(st, 0, sizeof(*st));
    st->first_day = st->day = -1;
    st->budget_alert_day = st->volume_alert_day = st->probe_day = st->suspended_day = -1;
}

int rv_limits_new(struct rv_gate_shared *sh, struct rv_limits **out)
{
    static const char ctx[] = "regvault limits v1";
    struct rv_limits *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (l == NULL)
        return RV_ENOMEM;
    l->sh = sh;
    if ((l->key = sodium_malloc(32)) == NULL) {
        free(l);
        return RV_ENOMEM;
    }
    crypto_generichash(l->key, 32, (const uint8_t *)ctx, sizeof(ctx) - 1, sh->mac, 32);
    pthread_rwlock_init(&l->lock, NULL);
    pthread_mutex_init(&l->clock_, NULL);
    pthread_mutex_init(&l->wq_lock, NULL);
    pthread_cond_init(&l->aq_more, NULL);
    *out = l;
    return 0;
}

static void pstate_free(struct pstate *ps)
{
    if (ps->set != NULL) {
        sodium_memzero(ps->set, ps->setcap * HASH_LEN);
        free(ps->set);
    }
    if (ps->win != NULL) {
        sodium_memzero(ps->win, ps->wcap * sizeof(*ps->win));
        free(ps->win);
    }
    free(ps->sc);
    sodium_memzero(&ps->last, sizeof(ps->last));
    pthread_mutex_destroy(&ps->mu);
    pthread_mutex_destroy(&ps->fmu);
    free(ps);
}

void rv_limits_free(struct rv_limits *l)
{
    if (l == NULL)
        return;
    /* The writer thread commits and answers whatever is queued, then ends. */
    pthread_mutex_lock(&l->wq_lock);
    l->aq_stop = true;
    pthread_cond_signal(&l->aq_more);
    pthread_mutex_unlock(&l->wq_lock);
    if (l->writer_started)
        pthread_join(l->writer, NULL);
    for (size_t i = 0; i < NCHAINS; i++) {
        while (l->ps[i] != NULL) {
            struct pstate *n = l->ps[i]->next;
            pstate_free(l->ps[i]);
            l->ps[i] = n;
        }
        while (l->cb[i] != NULL) {
            struct cbucket *n = l->cb[i]->next;
            free(l->cb[i]);
            l->cb[i] = n;
        }
    }
    pthread_rwlock_destroy(&l->lock);
    pthread_mutex_destroy(&l->clock_);
    pthread_mutex_destroy(&l->wq_lock);
    pthread_cond_destroy(&l->aq_more);
    sodium_free(l->key);
    free(l);
}

/* The state of principal name, made on first use. NULL when out of memory. */
static struct pstate *pstate_get(struct rv_limits *l, const char *name)
{
    uint32_t h = hash_str(name) % NCHAINS;
    struct pstate *ps;

    pthread_rwlock_rdlock(&l->lock);
    for (ps = l->ps[h]; ps != NULL; ps = ps->next)
        if (strcmp(ps->name, name) == 0)
            break;
    pthread_rwlock_unlock(&l->lock);
    if (ps != NULL)
        return ps;
    pthread_rwlock_wrlock(&l->lock);
    for (ps = l->ps[h]; ps != NULL; ps = ps->next)
        if (strcmp(ps->name, name) == 0)
            break;
    if (ps == NULL && (ps = calloc(1, sizeof(*ps))) != NULL) {
        snprintf(ps->name, sizeof(ps->name), "%s", name);
        pthread_mutex_init(&ps->mu, NULL);
        pthread_mutex_init(&ps->fmu, NULL);
        ps->day = -1;
        ps->tokens = -1; /* full at first use */
        stats_init(&ps->st);
        ps->next = l->ps[h];
        l->ps[h] = ps;
    }
    pthread_rwlock_unlock(&l->lock);
    return ps;
}

static const char *actor_name(const struct rv_gate *g)
{
    return g->who.principal != NULL ? g->who.principal : "";
}

/* Re-reads the principal when its cached state is older than CACHE_TTL_MS: lock-free while
 * fresh; when stale, one thread reads while the others go on with the cached state. */
static int refresh_principal(struct rv_gate *g, struct pstate *ps, int64_t now)
{
    struct rv_principal p;
    int64_t f = __atomic_load_n(&ps->fetched_ms, __ATOMIC_ACQUIRE);
    int busy = 0;
    bool own;
    int rc;

    if (f != 0 && now >= f && now - f < CACHE_TTL_MS)
        return 0;
    own = __atomic_compare_exchange_n(&ps->refreshing, &busy, 1, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE);
    if (!own && f != 0)
        return 0;
    memset(&p, 0, sizeof(p));
    rc = rv_policy_user_get(g, ps->name, &p);
    pthread_mutex_lock(&ps->mu);
    if (rc == 0) {
        ps->suspended = p.suspended;
        ps->disabled = p.disabled;
        ps->budget = p.budget;
    } else if (rc == RV_ENOTFOUND) {
        ps->suspended = ps->disabled = false;
        ps->budget = 0;
    }
    if (rc == 0 || rc == RV_ENOTFOUND) {
        __atomic_store_n(&ps->fetched_ms, now != 0 ? now : 1, __ATOMIC_RELEASE);
        rc = 0;
    }
    pthread_mutex_unlock(&ps->mu);
    if (own)
        __atomic_store_n(&ps->refreshing, 0, __ATOMIC_RELEASE);
    sodium_memzero(&p, sizeof(p));
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Persistence.
 */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of the earlier active days' volumes (0 when there are none). */
static uint32_t median_of(const struct stats *st)
{
    uint32_t v[HIST_DAYS];

    if (st->nhist == 0)
        return 0;
    memcpy(v, st->hist_vol, st->nhist * sizeof(v[0]));
    qsort(v, st->nhist, sizeof(v[0]), cmp_u32);
    return st->nhist % 2 ? v[st->nhist / 2] : (v[st->nhist / 2 - 1] + v[st->nhist / 2]) / 2;
}

static size_t principal_prefix(uint8_t *key, char tag, const char *name)
{
    size_t n = strlen(name);

    key[0] = KEY_BYTE;
    key[1] = (uint8_t)tag;
    memcpy(key + 2, name, n);
    key[2 + n] = 0;
    return 3 + n;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

#define STATS_LEN (8 + 8 * 2 + 4 * 2 + HIST_DAYS * 12 + 4 + 4 + MAX_CLIENTS * 8 + 8 * 4 + 4)

static void stats_encode(const struct stats *st, uint8_t *b)
{
    uint8_t *p = b;

    put_u32(p, STATS_MAGIC), p += 4;
    put_u32(p, 1), p += 4; /* format version */
    put_u64(p, (uint64_t)st->first_day), p += 8;
    put_u64(p, (uint64_t)st->day), p += 8;
    put_u32(p, st->volume), p += 4;
    put_u32(p, st->nhist), p += 4;
    for (int i = 0; i < HIST_DAYS; i++) {
        put_u64(p, (uint64_t)st->hist_day[i]), p += 8;
        put_u32(p, st->hist_vol[i]), p += 4;
    }
    put_u32(p, st->hours), p += 4;
    put_u32(p, st->nclients), p += 4;
    for (int i = 0; i < MAX_CLIENTS; i++)
        put_u64(p, st->clients[i]), p += 8;
    put_u64(p, (uint64_t)st->budget_alert_day), p += 8;
    put_u64(p, (uint64_t)st->volume_alert_day), p += 8;
    put_u64(p, (uint64_t)st->probe_day), p += 8;
    put_u64(p, (uint64_t)st->suspended_day), p += 8;
    put_u32(p, st->probe_alerts);
}

static int stats_decode(const uint8_t *b, size_t len, struct stats *st)
{
    const uint8_t *p = b;

    if (len != STATS_LEN || get_u32(p) != STATS_MAGIC)
        return RV_ECORRUPT;
    if (get_u32(p + 4) != 1)
        return RV_EVERSION;
    p += 8;
    st->first_day = (int64_t)get_u64(p), p += 8;
    st->day = (int64_t)get_u64(p), p += 8;
    st->volume = get_u32(p), p += 4;
    st->nhist = get_u32(p), p += 4;
    for (int i = 0; i < HIST_DAYS; i++) {
        st->hist_day[i] = (int64_t)get_u64(p), p += 8;
        st->hist_vol[i] = get_u32(p), p += 4;
    }
    st->hours = get_u32(p), p += 4;
    st->nclients = get_u32(p), p += 4;
    for (int i = 0; i < MAX_CLIENTS; i++)
        st->clients[i] = get_u64(p), p += 8;
    st->budget_alert_day = (int64_t)get_u64(p), p += 8;
    st->volume_alert_day = (int64_t)get_u64(p), p += 8;
    st->probe_day = (int64_t)get_u64(p), p += 8;
    st->suspended_day = (int64_t)get_u64(p), p += 8;
    st->probe_alerts = get_u32(p);
    if (st->nhist > HIST_DAYS || st->nclients > MAX_CLIENTS)
        return RV_ECORRUPT;
    return 0;
}

/* Under ps->mu: whether the baseline should be written now. */
static bool stats_due(const struct pstate *ps, int64_t now)
{
    return ps->flush_now ||
           (ps->unflushed > 0 && (now - ps->flushed_ms >= STATS_FLUSH_MS || now < ps->flushed_ms));
}

/* Writes the principal's baseline if it is due, with ps->mu not held: one writer at a time
 * (ps->fmu; a thread that finds it busy leaves the write to a later call), the record taken
 * under ps->mu, the commit without it. */
static int stats_flush(struct rv_limits *l, struct pstate *ps, int64_t now)
{
    uint8_t key[3 + RV_PRINCIPAL_NAME_MAX], val[STATS_LEN];
    size_t klen = principal_prefix(key, TAG_STATS, ps->name);
    struct rv_txn *t = NULL;
    bool due;
    int rc = 0;

    if (pthread_mutex_trylock(&ps->fmu) != 0)
        return 0;
    pthread_mutex_lock(&ps->mu);
    if ((due = stats_due(ps, now))) {
        stats_encode(&ps->st, val);
        ps->unflushed = 0;
        ps->flush_now = false;
        ps->flushed_ms = now;
    }
    pthread_mutex_unlock(&ps->mu);
    if (due && (rc = rv_store_begin(l->sh->state, true, &t)) == 0) {
        if ((rc = rv_store_put(t, key, klen, val, sizeof(val))) != 0)
            rv_store_abort(t);
        else
            rc = rv_store_commit(t);
    }
    if (rc != 0) {
        pthread_mutex_lock(&ps->mu);
        ps->flush_now = true; /* try again at the next call */
        pthread_mutex_unlock(&ps->mu);
    }
    pthread_mutex_unlock(&ps->fmu);
    return rc;
}

/* A principal's electors' prefix length, and the day from which they are kept. */
struct purge {
    size_t plen;
    int64_t today;
};

/* Keeps a principal's electors of today and later (the day follows the prefix). */
static bool keep_from_today(void *ctx, const uint8_t *key, size_t klen)
{
    const struct purge *d = ctx;
    return klen < d->plen + 4 || (int64_t)get_u32(key + d->plen) >= d->today;
}

/* Deletes the principal's electors of days before today, with ps->mu not held. */
static int purge_days(struct rv_limits *l, const char *name, int64_t today)
{
    uint8_t prefix[3 + RV_PRINCIPAL_NAME_MAX];
    struct purge d = {principal_prefix(prefix, TAG_SUBJECT, name), today};
    struct rv_txn *t = NULL;
    int rc;

    if ((rc = rv_store_begin(l->sh->state, true, &t)) != 0)
        return rc;
    if ((rc = rv_store_del_prefix(t, prefix, d.plen, keep_from_today, &d)) != 0) {
        rv_store_abort(t);
        return rc;
    }
    return rv_store_commit(t);
}

/* The hash set of today's electors. */
static bool set_has(const struct pstate *ps, const uint8_t *h)
{
    size_t mask = ps->setcap - 1, i;

    if (ps->setcap == 0)
        return false;
    for (i = get_u32(h) & mask;; i = (i + 1) & mask) {
        if (ps->set[i][0] == 0)
            return false;
        if (memcmp(ps->set[i], h, HASH_LEN) == 0)
            return true;
    }
}

static int set_add(struct pstate *ps, const uint8_t *h)
{
    size_t mask, i;

    if ((ps->used + 1) * 2 > ps->setcap) {
        size_t ncap = ps->setcap != 0 ? ps->setcap * 2 : 512;
        uint8_t(*nset)[HASH_LEN] = calloc(ncap, HASH_LEN);
        uint8_t(*old)[HASH_LEN] = ps->set;
        size_t oldcap = ps->setcap;

        if (nset == NULL)
            return RV_ENOMEM;
        ps->set = nset;
        ps->setcap = ncap;
        for (size_t j = 0; j < oldcap; j++)
            if (old[j][0] != 0) {
                for (i = get_u32(old[j]) & (ncap - 1); nset[i][0] != 0; i = (i + 1) & (ncap - 1))
                    ;
                memcpy(nset[i], old[j], HASH_LEN);
            }
        if (old != NULL) {
            sodium_memzero(old, oldcap * HASH_LEN);
            free(old);
        }
    }
    mask = ps->setcap - 1;
    for (i = get_u32(h) & mask; ps->set[i][0] != 0; i = (i + 1) & mask)
        if (memcmp(ps->set[i], h, HASH_LEN) == 0)
            return 0;
    memcpy(ps->set[i], h, HASH_LEN);
    ps->used++;
    return 0;
}

static void set_clear(struct pstate *ps)
{
    if (ps->set != NULL)
        sodium_memzero(ps->set, ps->setcap * HASH_LEN);
    ps->used = 0;
}

/* Forgets today's set (ps->mu held): the next call reads it again from the store. */
static void set_drop(struct pstate *ps)
{
    set_clear(ps);
    ps->loaded = false;
    ps->gen++;
}

/* Loads today's electors and the baseline of ps (ps->mu held), in one read transaction;
 * notes whether earlier days are left to delete (purge_days, unlocked). */
static int ensure_loaded(struct rv_limits *l, struct pstate *ps, int64_t today)
{
    uint8_t prefix[3 + RV_PRINCIPAL_NAME_MAX];
    struct rv_txn *t = NULL;
    struct rv_cursor *c = NULL;
    const uint8_t *k, *v;
    size_t plen, klen, vlen;
    int rc;

    if (ps->day != today) {
        set_clear(ps);
        ps->loaded = false;
        ps->day = today;
    }
    if (ps->loaded)
        return 0;
    if ((rc = rv_store_begin(l->sh->state, false, &t)) != 0)
        return rc;
    if (!ps->stats_loaded) {
        plen = principal_prefix(prefix, TAG_STATS, ps->name);
        stats_init(&ps->st);
        if ((rc = rv_store_get(t, prefix, plen, (const void **)&v, &vlen)) == 0)
            rc = stats_decode(v, vlen, &ps->st);
        else if (rc == RV_ENOTFOUND)
            rc = 0;
        if (rc != 0)
            goto out;
        ps->median = median_of(&ps->st);
        ps->stats_loaded = true;
    }
    plen = principal_prefix(prefix, TAG_SUBJECT, ps->name);
    if ((rc = rv_store_cursor_open(t, prefix, plen, &c)) != 0)
        goto out;
    while ((rc = rv_store_cursor_next(c, &k, &klen, &v, &vlen)) == 1) {
        if (klen != plen + 4 + HASH_LEN) {
            rc = RV_ECORRUPT;
            break;
        }
        if ((int64_t)get_u32(k + plen) == today) {
            if ((rc = set_add(ps, k + plen + 4)) != 0)
                break;
        } else if ((int64_t)get_u32(k + plen) < today) {
            ps->purge_due = true;
        }
    }
    rv_store_cursor_close(c);
    if (rc == 0)
        ps->loaded = true;
out:
    rv_store_abort(t);
    if (rc != 0)
        set_clear(ps);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Alerts and suspension, raised with no lock held.
 */

static int raise_alert(struct rv_gate *g, const char *kind, enum rv_alert_severity sev,
                       const char *detail)
{
    struct rv_alert a = {
        .time_ms = clock_ms(),
        .severity = sev,
        .kind = kind,
        .principal = actor_name(g),
        .client = g->who.client != NULL ? g->who.client : "",
        .detail = detail,
    };

    if (alert_seen != NULL)
        alert_seen(&a);
    return rv_policy_alert(g, &a);
}

static int emit(struct rv_gate *g, struct pstate *ps, struct pending *p)
{
    int rc = 0, rc2;

    for (size_t i = 0; i < p->n; i++)
        if ((rc2 = raise_alert(g, p->a[i].kind, p->a[i].sev, p->a[i].detail)) != 0 && rc == 0)
            rc = rc2;
    if (p->suspend) {
        rc2 = rv_principal_suspend(g, ps->name, "probing alerts over the day's limit");
        pthread_mutex_lock(&ps->mu);
        if (rc2 == 0) {
            ps->suspended = true;
            __atomic_store_n(&ps->fetched_ms, clock_ms(), __ATOMIC_RELEASE);
        } else if (rc2 == RV_ENOTFOUND) {
            ps->sticky = true;
            rc2 = 0;
        }
        pthread_mutex_unlock(&ps->mu);
        if (rc == 0)
            rc = rc2;
        rc2 = raise_alert(g, "suspended", RV_ALERT_HIGH,
                          "suspended after repeated probing alerts; an admin must reinstate");
        if (rc == 0)
            rc = rc2;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Budgets.
 */

static int (*write_seen)(void);

void rv_limits_test_write_hook(int (*hook)(void))
{
    __atomic_store_n(&write_seen, hook, __ATOMIC_SEQ_CST);
}

/* Writes the requests of list in one durable transaction; the result is each one's. */
static int write_group(struct rv_limits *l, struct wreq *list)
{
    uint8_t key[3 + RV_PRINCIPAL_NAME_MAX + 4 + HASH_LEN];
    int (*hook)(void) = __atomic_load_n(&write_seen, __ATOMIC_SEQ_CST);
    struct rv_txn *t = NULL;
    int rc;

    if (hook != NULL && (rc = hook()) != 0)
        return rc;
    if ((rc = rv_store_begin(l->sh->state, true, &t)) != 0)
        return rc;
    for (struct wreq *w = list; w != NULL && rc == 0; w = w->next) {
        memcpy(key, w->prefix, w->plen);
        for (size_t i = 0; i < w->n && rc == 0; i++) {
            memcpy(key + w->plen, w->hash[i], HASH_LEN);
            rc = rv_store_put(t, key, w->plen + HASH_LEN, "", 0);
        }
    }
    sodium_memzero(key, sizeof(key));
    if (rc != 0) {
        rv_store_abort(t);
        return rc;
    }
    return rv_store_commit(t);
}

/* Makes w durable, together with whatever other requests are waiting: the first to arrive
 * while nobody writes becomes the writer for everyone queued by then (group commit), so
 * concurrent requests share one sync. The writer wakes exactly the requests it answered,
 * each on its own condition, and the first of those queued meanwhile, to write next. */
static int write_electors(struct rv_limits *l, struct wreq *w)
{
    pthread_cond_t wake;

    pthread_cond_init(&wake, NULL);
    w->wake = &wake;
    pthread_mutex_lock(&l->wq_lock);
    w->next = l->wq;
    l->wq = w;
    while (!w->done) {
        if (!l->writing) {
            struct wreq *list = l->wq;
            int rc;
            l->wq = NULL;
            l->writing = true;
            pthread_mutex_unlock(&l->wq_lock);
            rc = write_group(l, list);
            pthread_mutex_lock(&l->wq_lock);
            /* Each waiter sleeps until this lock is released, so its condition is valid. */
            for (struct wreq *x = list; x != NULL; x = x->next) {
                x->rc = rc;
                x->done = true;
                if (x != w)
                    pthread_cond_signal(x->wake);
            }
            l->writing = false;
            if (l->wq != NULL)
                pthread_cond_signal(l->wq->wake);
        } else {
            pthread_cond_wait(&wake, &l->wq_lock);
        }
    }
    pthread_mutex_unlock(&l->wq_lock);
    pthread_cond_destroy(&wake);
    return w->rc;
}

/* The writer thread: commits every queued request of a held audit group in one durable
 * transaction, then answers each (a failure drops the principal's set, as on the
 * synchronous path, and fails the group). Ends once stopped and the queue is empty. */
static void *writer_main(void *arg)
{
    struct rv_limits *l = arg;

    pthread_mutex_lock(&l->wq_lock);
    for (;;) {
        struct areq *list = l->aq, *a, *next;
        int rc;
        if (list == NULL) {
            if (l->aq_stop)
                break;
            pthread_cond_wait(&l->aq_more, &l->wq_lock);
            continue;
        }
        l->aq = NULL;
        pthread_mutex_unlock(&l->wq_lock);
        for (a = list; a != NULL; a = a->next)
            a->w.next = a->next != NULL ? &a->next->w : NULL;
        rc = write_group(l, &list->w);
        for (a = list; a != NULL; a = next) {
            next = a->next;
            if (rc != 0) {
                pthread_mutex_lock(&a->ps->mu);
                if (a->ps->gen == a->gen && a->ps->day == a->today)
                    set_drop(a->ps);
                pthread_mutex_unlock(&a->ps->mu);
            }
            rv_audit_group_release(a->group, rc);
            sodium_memzero(a, sizeof(*a) + a->w.n * HASH_LEN);
            free(a);
        }
        pthread_mutex_lock(&l->wq_lock);
    }
    pthread_mutex_unlock(&l->wq_lock);
    return NULL;
}

/* Queues the fresh electors h[0, n) of ps for the writer thread, which releases group once
 * they are durable (started here on first use, with every signal blocked). Returns false
 * when it cannot (no memory, no thread): the caller writes them itself. */
static bool write_later(struct rv_limits *l, struct rv_audit_group *group, struct pstate *ps,
                        uint64_t gen, int64_t today, const uint8_t (*h)[HASH_LEN], size_t n)
{
    struct areq *a = malloc(sizeof(*a) + n * HASH_LEN);
    uint8_t(*copy)[HASH_LEN];
    size_t plen;

    if (a == NULL)
        return false;
    copy = (uint8_t(*)[HASH_LEN])(a + 1);
    memcpy(copy, h, n * HASH_LEN);
    plen = principal_prefix(a->prefix, TAG_SUBJECT, ps->name);
    put_u32(a->prefix + plen, (uint32_t)today);
    memset(&a->w, 0, sizeof(a->w));
    a->w.prefix = a->prefix;
    a->w.plen = plen + 4;
    a->w.hash = (const uint8_t(*)[HASH_LEN])copy;
    a->w.n = n;
    a->group = group;
    a->ps = ps;
    a->gen = gen;
    a->today = today;
    pthread_mutex_lock(&l->wq_lock);
    if (!l->writer_started && !l->writer_failed && !l->aq_stop) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&l->writer, NULL, writer_main, l) == 0)
            l->writer_started = true;
        else
            l->writer_failed = true;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (!l->writer_started || l->aq_stop) {
        pthread_mutex_unlock(&l->wq_lock);
        sodium_memzero(a, sizeof(*a) + n * HASH_LEN);
        free(a);
        return false;
    }
    a->next = l->aq;
    l->aq = a;
    pthread_cond_signal(&l->aq_more);
    pthread_mutex_unlock(&l->wq_lock);
    return true;
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, HASH_LEN);
}

static void subject_hash(const struct rv_limits *l, const uint8_t *subject, uint8_t *out)
{
    crypto_generichash(out, HASH_LEN, subject, 32, l->key, 32);
    out[0] |= 1; /* never all zero: zero marks a free slot */
}

int rv_limits_charge(struct rv_gate *g, const uint8_t (*subjects)[32], size_t nsubjects)
{
    struct rv_limits *l = g->sh->limits;
    uint8_t(*h)[HASH_LEN] = NULL;
    uint8_t key[3 + RV_PRINCIPAL_NAME_MAX + 4];
    struct pending pend = {0};
    struct wreq w = {0};
    struct rv_audit_group *group;
    struct cfgsnap cfg;
    struct pstate *ps;
    size_t nh = 0, fresh = 0, plen;
    int64_t now = clock_ms(), today = floor_div(now, DAY_MS);
    uint64_t gen = 0;
    bool write = false, purge = false, flush = false;
    uint32_t limit;
    int rc = 0;

    if (rv_gate_is_local(g) || nsubjects == 0)
        return 0;
    cfg_snapshot(g->sh, &cfg);
    if ((ps = pstate_get(l, actor_name(g))) == NULL)
        return RV_ENOMEM;
    if ((rc = refresh_principal(g, ps, now)) != 0)
        return rc;
    if ((h = malloc(nsubjects * HASH_LEN)) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < nsubjects; i++)
        subject_hash(l, subjects[i], h[i]);
    qsort(h, nsubjects, HASH_LEN, cmp_hash);
    for (size_t i = 0; i < nsubjects; i++)
        if (nh == 0 || memcmp(h[nh - 1], h[i], HASH_LEN) != 0)
            memmove(h[nh++], h[i], HASH_LEN);

    pthread_mutex_lock(&ps->mu);
    if ((rc = ensure_loaded(l, ps, today)) != 0)
        goto unlock;
    purge = ps->purge_due;
    ps->purge_due = false;
    /* Keep only the electors not yet shown today. */
    for (size_t i = 0; i < nh; i++)
        if (!set_has(ps, h[i]))
            memmove(h[fresh++], h[i], HASH_LEN);
    if (fresh == 0)
        goto unlock;
    limit = ps->budget != 0 ? ps->budget : cfg.budget;
    if (ps->used + fresh > limit) {
        rc = RV_ELIMIT;
        if (ps->st.budget_alert_day != today) {
            char detail[160];
            ps->st.budget_alert_day = today;
            snprintf(detail, sizeof(detail),
                     "daily disclosure budget of %u electors reached (%zu shown, request "
                     "would add %zu)",
                     limit, ps->used, fresh);
            add_pending(&pend, "budget", RV_ALERT_MEDIUM, detail);
            ps->flush_now = flush = true; /* best effort: at worst the alert repeats */
        }
        goto unlock;
    }
    /* Counted at once, so that requests running alongside see the budget taken; written
     * below without the lock. A failed write drops the set, to be read again from the
     * store. */
    for (size_t i = 0; i < fresh && rc == 0; i++)
        rc = set_add(ps, h[i]);
    if (rc != 0) {
        set_drop(ps);
        goto unlock;
    }
    gen = ps->gen;
    write = true;
unlock:
    pthread_mutex_unlock(&ps->mu);
    /* In a daemon that withholds the answer until its audit group is durable, the group
     * waits for this write too, and the calling thread goes on at once. */
    if (write && (group = rv_audit_group_hold()) != NULL) {
        if (write_later(l, group, ps, gen, today, (const uint8_t(*)[HASH_LEN])h, fresh))
            write = false;
        else
            rv_audit_group_release(group, 0);
    }
    if (write) {
        plen = principal_prefix(key, TAG_SUBJECT, ps->name);
        put_u32(key + plen, (uint32_t)today);
        w.prefix = key;
        w.plen = plen + 4;
        w.hash = (const uint8_t(*)[HASH_LEN])h;
        w.n = fresh;
        if ((rc = write_electors(l, &w)) != 0) {
            pthread_mutex_lock(&ps->mu);
            if (ps->gen == gen && ps->day == today)
                set_drop(ps);
            pthread_mutex_unlock(&ps->mu);
        }
    }
    if (purge)
        (void)purge_days(l, ps->name, today); /* again at the next day's load if it fails */
    if (flush)
        (void)stats_flush(l, ps, now);
    sodium_memzero(h, nsubjects * HASH_LEN);
    sodium_memzero(key, sizeof(key));
    free(h);
    if (pend.n > 0) {
        int rc2 = emit(g, ps, &pend);
        if (rc == 0 || rc2 == RV_EAUDIT)
            rc = rc2;
    }
    return rc;
}

int rv_policy_budget(struct rv_gate *g, uint32_t *used, uint32_t *limit)
{
    struct rv_limits *l = g->sh->limits;
    struct cfgsnap cfg;
    struct pstate *ps;
    int64_t now = clock_ms();
    int rc;

    *used = 0;
    *limit = UINT32_MAX;
    if (rv_gate_is_local(g))
        return 0;
    cfg_snapshot(g->sh, &cfg);
    if ((ps = pstate_get(l, actor_name(g))) == NULL)
        return RV_ENOMEM;
    if ((rc = refresh_principal(g, ps, now)) != 0)
        return rc;
    pthread_mutex_lock(&ps->mu);
    if ((rc = ensure_loaded(l, ps, floor_div(now, DAY_MS))) == 0) {
        *used = (uint32_t)ps->used;
        *limit = ps->budget != 0 ? ps->budget : cfg.budget;
    }
    pthread_mutex_unlock(&ps->mu);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Rate limits.
 */

static void refill(double *tokens, int64_t *last, int64_t now, double rate, double burst)
{
    if (*tokens < 0) {
        *tokens = burst;
    } else if (now > *last) {
        *tokens += (double)(now - *last) * rate / 1000.0;
        if (*tokens > burst)
            *tokens = burst;
    }
    *last = now;
}

static int64_t wait_ms(double tokens, double rate)
{
    double ms = (1.0 - tokens) * 1000.0 / rate;
    return ms < 1 ? 1 : (int64_t)ms + 1;
}

/* The bucket of client address addr (l->clock_ held), made full on first use. */
static struct cbucket *client_bucket(struct rv_limits *l, const char *addr, int64_t now,
                                     const struct cfgsnap *cfg)
{
    uint32_t h = hash_str(addr) % NCHAINS;
    struct cbucket *b;

    for (b = l->cb[h]; b != NULL; b = b->next)
        if (strcmp(b->addr, addr) == 0)
            return b;
    if (l->ncb >= CLIENTS_MAX && now - l->cb_purged_ms >= 1000) {
        /* Forget buckets that have refilled: a full bucket is the same as a new one. At most
         * once a second: the sweep visits every bucket. */
        l->cb_purged_ms = now;
        for (size_t i = 0; i < NCHAINS; i++)
            for (struct cbucket **pp = &l->cb[i]; *pp != NULL;) {
                struct cbucket *x = *pp;
                if (x->tokens + (double)(now - x->ms) * cfg->rate_c / 1000.0 >= cfg->burst_c) {
                    *pp = x->next;
                    free(x);
                    l->ncb--;
                } else {
                    pp = &x->next;
                }
            }
    }
    if (l->ncb >= CLIENTS_MAX && strcmp(addr, OVERFLOW_CLIENT) != 0)
        /* Still full (many addresses, each with requests in its bucket: a spread attack):
         * every new address shares one bucket until some refill, rather than the table
         * growing without bound. */
        return client_bucket(l, OVERFLOW_CLIENT, now, cfg);
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    snprintf(b->addr, sizeof(b->addr), "%s", addr);
    b->tokens = -1;
    b->next = l->cb[h];
    l->cb[h] = b;
    l->ncb++;
    return b;
}

int rv_policy_admit(struct rv_gate *g, int64_t *retry_after_ms)
{
    struct rv_limits *l = g->sh->limits;
    const char *name = actor_name(g);
    char addr[RV_CLIENT_KEY_MAX];
    struct pstate *ps = NULL;
    struct cbucket *cb;
    struct cfgsnap cfg;
    int64_t now = clock_ms(), wait = 0;
    double rate_p;
    int rc = 0;

    *retry_after_ms = 0;
    if (rv_gate_is_local(g))
        return 0;
    rv_client_key(g->who.client, addr);
    cfg_snapshot(g->sh, &cfg);
    if (name[0] != '\0') {
        if ((ps = pstate_get(l, name)) == NULL)
            return RV_ENOMEM;
        if ((rc = refresh_principal(g, ps, now)) != 0)
            return rc;
        pthread_mutex_lock(&ps->mu);
        if (ps->suspended || ps->disabled || ps->sticky) {
            pthread_mutex_unlock(&ps->mu);
            return RV_ESUSPENDED;
        }
        rate_p = now < ps->throttle_until ? cfg.rate_p / 2 : cfg.rate_p;
        refill(&ps->tokens, &ps->bucket_ms, now, rate_p, cfg.burst_p);
        if (ps->tokens < 1)
            wait = wait_ms(ps->tokens, rate_p);
    }
    pthread_mutex_lock(&l->clock_);
    if ((cb = client_bucket(l, addr, now, &cfg)) == NULL) {
        rc = RV_ENOMEM;
    } else {
        int64_t w;
        refill(&cb->tokens, &cb->ms, now, cfg.rate_c, cfg.burst_c);
        if (cb->tokens < 1 && (w = wait_ms(cb->tokens, cfg.rate_c)) > wait)
            wait = w;
        if (wait == 0) {
            cb->tokens -= 1;
            if (ps != NULL)
                ps->tokens -= 1;
        } else {
            rc = RV_ELIMIT;
            *retry_after_ms = wait;
        }
    }
    pthread_mutex_unlock(&l->clock_);
    if (ps != NULL)
        pthread_mutex_unlock(&ps->mu);
    return rc;
}

int rv_policy_admit_client(struct rv_gate *g, int64_t *retry_after_ms)
{
    struct rv_limits *l = g->sh->limits;
    char addr[RV_CLIENT_KEY_MAX];
    struct cbucket *cb;
    struct cfgsnap cfg;
    int64_t now = clock_ms();
    int rc = 0;

    *retry_after_ms = 0;
    if (rv_gate_is_local(g))
        return 0;
    rv_client_key(g->who.client, addr);
    cfg_snapshot(g->sh, &cfg);
    pthread_mutex_lock(&l->clock_);
    if ((cb = client_bucket(l, addr, now, &cfg)) == NULL) {
        rc = RV_ENOMEM;
    } else {
        refill(&cb->tokens, &cb->ms, now, cfg.rate_c, cfg.burst_c);
        if (cb->tokens < 1) {
            rc = RV_ELIMIT;
            *retry_after_ms = wait_ms(cb->tokens, cfg.rate_c);
        } else {
            cb->tokens -= 1;
        }
    }
    pthread_mutex_unlock(&l->clock_);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Probing and anomalies.
 */

/* The features of one answered check. */
static void features(const struct rv_limits *l, const struct rv_check_query *q,
                     const struct rv_check_answer *a, struct obs *o)
{
    char sector[16], buf[2 * RV_ADDR_LINE_MAX];
    size_t j = 0;

    memset(o, 0, sizeof(*o));
    o->number = -1;
    o->nomatch = a->verdict == RV_VERDICT_NOT_FOUND && a->nmatches == 0;
    if (q->has_postcode) {
        o->sector = keyed64(l, "sector", rv_postcode_sector(&q->postcode, sector));
        sodium_memzero(sector, sizeof(sector));
    }
    for (const char *s = q->key.surname; *s != '\0' && j < 4; s++)
        if ((*s >= 'a' && *s <= 'z') || (unsigned char)*s >= 0x80)
            o->sn4[j++] = *s;
    o->sn4[j] = '\0';
    if (q->has_address && q->addr.number[0] != '\0' && (q->has_postcode || q->addr.street[0])) {
        long v = strtol(q->addr.number, NULL, 10);
        o->number = v >= 0 && v < 100000 ? (int32_t)v : -1;
        snprintf(buf, sizeof(buf), "%s|%s", q->addr.street,
                 q->has_postcode ? q->postcode.canon : "");
        o->street = keyed64(l, "street", buf);
        sodium_memzero(buf, sizeof(buf));
    }
}

/* Makes the window hold cap entries (ps->mu held); resets it when the size changes. */
static int window_fit(struct pstate *ps, uint32_t cap)
{
    struct obs *w;
    struct scount *sc;
    size_t sccap = 64;

    if (ps->wcap == cap)
        return 0;
    while (sccap < 2 * (size_t)cap + 16)
        sccap *= 2;
    w = calloc(cap, sizeof(*w));
    sc = calloc(sccap, sizeof(*sc));
    if (w == NULL || sc == NULL) {
        free(w);
        free(sc);
        return RV_ENOMEM;
    }
    if (ps->win != NULL) {
        sodium_memzero(ps->win, ps->wcap * sizeof(*ps->win));
        free(ps->win);
    }
    free(ps->sc);
    ps->win = w;
    ps->wcap = cap;
    ps->sc = sc;
    ps->sccap = sccap;
    ps->scused = 0;
    ps->wlen = ps->wpos = ps->nomatch_in_win = 0;
    return 0;
}

/* The count of sector key in the window's table (ps->mu held), NULL when absent; with add,
 * made when absent. */
static struct scount *sc_slot(struct pstate *ps, uint64_t key, bool add)
{
    size_t mask = ps->sccap - 1, i;

    for (i = (size_t)(key ^ key >> 29) & mask; ps->sc[i].key != 0; i = (i + 1) & mask)
        if (ps->sc[i].key == key)
            return &ps->sc[i];
    if (!add)
        return NULL;
    ps->sc[i].key = key;
    ps->sc[i].n = 0;
    ps->scused++;
    return &ps->sc[i];
}

/* Counts the window's sectors afresh (ps->mu held): sectors that left the window leave
 * zero counts behind, and a table three quarters full is rebuilt. */
static void sc_rebuild(struct pstate *ps)
{
    memset(ps->sc, 0, ps->sccap * sizeof(*ps->sc));
    ps->scused = 0;
    for (uint32_t i = 0; i < ps->wlen; i++)
        if (ps->win[i].sector != 0)
            sc_slot(ps, ps->win[i].sector, true)->n++;
}

static void probing_alert(struct pstate *ps, struct pending *p, const char *kind,
                          const char *detail, int64_t now, int64_t today, const struct cfgsnap *cfg)
{
    add_pending(p, kind, RV_ALERT_MEDIUM, detail);
    ps->throttle_until = now + THROTTLE_MS;
    if (ps->st.probe_day != today) {
        ps->st.probe_day = today;
        ps->st.probe_alerts = 0;
    }
    ps->st.probe_alerts++;
    /* Over the day's limit, every further alert suspends again (after a reinstatement). */
    if (ps->st.probe_alerts >= cfg->alerts_suspend && !ps->suspended && !ps->sticky &&
        !p->suspend) {
        ps->st.suspended_day = today;
        p->suspend = true;
    }
    ps->flush_now = true; /* written at the end of this call */
}

/* Pushes o into the window and applies the probing rules (ps->mu held). */
static void observe_one(struct pstate *ps, const struct obs *o, struct pending *p, int64_t now,
                        int64_t today, const struct cfgsnap *cfg)
{
    uint64_t rearm = cfg->window / 2 > 10 ? cfg->window / 2 : 10;
    char detail[160];
    uint32_t same = 0;
    struct obs *slot = &ps->win[ps->wpos];
    struct scount *c;

    if (ps->wlen == ps->wcap) {
        ps->nomatch_in_win -= slot->nomatch;
        if (slot->sector != 0 && (c = sc_slot(ps, slot->sector, false)) != NULL && c->n > 0)
            c->n--;
    } else {
        ps->wlen++;
    }
    *slot = *o;
    if (o->sector != 0) {
        if (sc_slot(ps, o->sector, false) == NULL && (ps->scused + 1) * 4 > ps->sccap * 3)
            sc_rebuild(ps); /* counts o too */
        else
            sc_slot(ps, o->sector, true)->n++;
        same = sc_slot(ps, o->sector, false)->n;
    }
    ps->nomatch_in_win += o->nomatch;
    ps->wpos = (ps->wpos + 1) % ps->wcap;
    ps->seen++;

    if (ps->wlen >= NOMATCH_MIN && ps->seen >= ps->quiet_nomatch &&
        (double)ps->nomatch_in_win > cfg->nomatch_ratio * ps->wlen) {
        snprintf(detail, sizeof(detail), "%u of the last %u checks found nobody",
                 ps->nomatch_in_win, ps->wlen);
        probing_alert(ps, p, "probing.nomatch", detail, now, today, cfg);
        ps->quiet_nomatch = ps->seen + rearm;
    }
    if (o->sector != 0 && ps->seen >= ps->quiet_sector) {
        if (same > cfg->sector_max) {
            snprintf(detail, sizeof(detail), "%u of the last %u checks in one postcode sector",
                     same, ps->wlen);
            probing_alert(ps, p, "probing.sector", detail, now, today, cfg);
            ps->quiet_sector = ps->seen + rearm;
        }
    }
    /* Alphabetical sweeps: surnames in order, and what enumeration does besides (finding
     * nobody, or staying in one sector) that a name-sorted donations file does not. */
    if (ps->has_last && o->sn4[0] != '\0' && ps->last.sn4[0] != '\0' &&
        strcmp(o->sn4, ps->last.sn4) >= 0) {
        ps->alpha_run++;
        ps->alpha_nomatch += o->nomatch;
        ps->alpha_same += o->sector != 0 && o->sector == ps->last.sector;
    } else {
        ps->alpha_run = 1;
        ps->alpha_nomatch = o->nomatch;
        ps->alpha_same = 0;
    }
    if (ps->alpha_run >= cfg->sweep_run &&
        (ps->alpha_nomatch * 2 > ps->alpha_run || ps->alpha_same * 2 > ps->alpha_run - 1)) {
        snprintf(detail, sizeof(detail),
                 "%u checks in alphabetical order of surname, %u finding nobody, %u steps "
                 "within one sector",
                 ps->alpha_run, ps->alpha_nomatch, ps->alpha_same);
        probing_alert(ps, p, "probing.sweep", detail, now, today, cfg);
        ps->alpha_run = ps->alpha_nomatch = ps->alpha_same = 0;
    }
    /* House-number sweeps along one street. */
    if (ps->has_last && o->street != 0 && o->street == ps->last.street && o->number >= 0 &&
        ps->last.number >= 0 &&
        (o->number - ps->last.number == 1 || o->number - ps->last.number == 2))
        ps->num_run++;
    else
        ps->num_run = 1;
    if (ps->num_run >= cfg->sweep_run) {
        snprintf(detail, sizeof(detail), "%u checks along one street in house-number order",
                 ps->num_run);
        probing_alert(ps, p, "probing.sweep", detail, now, today, cfg);
        ps->num_run = 0;
    }
    sodium_memzero(&ps->last, sizeof(ps->last));
    ps->last = *o;
    ps->has_last = true;
}

/* Updates the baseline with `count` checks and applies the anomaly rules (ps->mu held). */
static void anomalies(struct pstate *ps, uint64_t ch, uint32_t count, struct pending *p,
                      int64_t now, int64_t today)
{
    struct stats *st = &ps->st;
    uint32_t hour = (uint32_t)(floor_div(now, HOUR_MS) % 24);
    bool known = false;
    char detail[160];

    if (st->day != today) {
        if (st->day >= 0 && st->volume > 0) {
            memmove(st->hist_day + 1, st->hist_day, (HIST_DAYS - 1) * sizeof(st->hist_day[0]));
            memmove(st->hist_vol + 1, st->hist_vol, (HIST_DAYS - 1) * sizeof(st->hist_vol[0]));
            st->hist_day[0] = st->day;
            st->hist_vol[0] = st->volume;
            if (st->nhist < HIST_DAYS)
                st->nhist++;
            ps->median = median_of(st);
        }
        st->day = today;
        st->volume = 0;
        ps->flush_now = true;
    }
    if (st->first_day < 0)
        st->first_day = today;
    st->volume += count;
    ps->unflushed += count;

    if (st->nhist >= VOLUME_MIN_DAYS && st->volume_alert_day != today) {
        uint32_t median = ps->median;
        if (median < 1)
            median = 1;
        if (st->volume > (uint64_t)VOLUME_FACTOR * median) {
            st->volume_alert_day = today;
            snprintf(detail, sizeof(detail),
                     "%u checks today against a median of %u over the last %u active days",
                     st->volume, median, st->nhist);
            add_pending(p, "anomaly.volume", RV_ALERT_MEDIUM, detail);
            ps->flush_now = true;
        }
    }
    if ((st->hours & (1u << hour)) == 0) {
        if (today - st->first_day >= HOURS_MIN_DAYS) {
            snprintf(detail, sizeof(detail), "first use in the hour from %02u:00 UTC", hour);
            add_pending(p, "anomaly.hours", RV_ALERT_LOW, detail);
        }
        st->hours |= 1u << hour;
        ps->flush_now = true;
    }
    for (uint32_t i = 0; i < st->nclients; i++)
        known = known || st->clients[i] == ch;
    if (!known) {
        if (st->first_day < today)
            add_pending(p, "anomaly.client", RV_ALERT_MEDIUM,
                        "a client address this principal has not used before");
        if (st->nclients == MAX_CLIENTS) {
            memmove(st->clients, st->clients + 1, (MAX_CLIENTS - 1) * sizeof(st->clients[0]));
            st->nclients--;
        }
        st->clients[st->nclients++] = ch;
        ps->flush_now = true;
    }
}

int rv_limits_observe(struct rv_gate *g, const struct rv_check_query *const *qs,
                      const struct rv_check_answer *out, size_t n)
{
    struct rv_limits *l = g->sh->limits;
    struct pending pend = {0};
    struct cfgsnap cfg;
    struct pstate *ps;
    struct obs one, *o = &one;
    uint32_t count = 0;
    uint64_t ch;
    int64_t now = clock_ms(), today = floor_div(now, DAY_MS);
    bool purge = false, flush = false;
    int rc;

    if (rv_gate_is_local(g) || n == 0)
        return 0;
    cfg_snapshot(g->sh, &cfg);
    if ((ps = pstate_get(l, actor_name(g))) == NULL)
        return RV_ENOMEM;
    /* The features first, without the lock: only rows that were looked up (not those out of
     * scope or unreadable). */
    if (n > 1 && (o = calloc(n, sizeof(*o))) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (qs[i] != NULL && out[i].verdict != RV_VERDICT_OUT_OF_SCOPE && out[i].error[0] == '\0')
            features(l, qs[i], &out[i], &o[count++]);
    {
        char key[RV_CLIENT_KEY_MAX];
        rv_client_key(g->who.client, key);
        ch = keyed64(l, "client", key);
    }

    pthread_mutex_lock(&ps->mu);
    if ((rc = ensure_loaded(l, ps, today)) != 0 || (rc = window_fit(ps, cfg.window)) != 0)
        goto unlock;
    purge = ps->purge_due;
    ps->purge_due = false;
    for (uint32_t i = 0; i < count; i++)
        observe_one(ps, &o[i], &pend, now, today, &cfg);
    if (count > 0)
        anomalies(ps, ch, count, &pend, now, today);
    flush = stats_due(ps, now);
unlock:
    pthread_mutex_unlock(&ps->mu);
    sodium_memzero(o, (n > 1 ? n : 1) * sizeof(*o));
    if (o != &one)
        free(o);
    if (purge)
        (void)purge_days(l, ps->name, today); /* again at the next day's load if it fails */
    if (flush && rc == 0)
        rc = stats_flush(l, ps, now);
    if (pend.n > 0 || pend.suspend) {
        int rc2 = emit(g, ps, &pend);
        if (rc == 0)
            rc = rc2;
        /* The gate must stop answering this principal now, not at its next request. */
        if (rc == 0 && pend.suspend)
            rc = RV_ESUSPENDED;
    }
    return rc;
}

int rv_limits_state(struct rv_gate *g)
{
    struct pstate *ps;
    bool off;
    int rc;

    if (rv_gate_is_local(g))
        return 0;
    if ((ps = pstate_get(g->sh->limits, actor_name(g))) == NULL)
        return RV_ENOMEM;
    if ((rc = refresh_principal(g, ps, clock_ms())) != 0)
        return rc;
    pthread_mutex_lock(&ps->mu);
    off = ps->suspended || ps->disabled || ps->sticky;
    pthread_mutex_unlock(&ps->mu);
    return off ? RV_ESUSPENDED : 0;
}

void rv_limits_forget(struct rv_gate_shared *sh, const char *name)
{
    struct pstate *ps;

    if (sh->limits == NULL || (ps = pstate_get(sh->limits, name)) == NULL)
        return;
    __atomic_store_n(&ps->fetched_ms, 0, __ATOMIC_RELEASE);
}
