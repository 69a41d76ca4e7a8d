/*
 * canary.c - canary electors: synthetic register entries that no real donor should match,
 * planted so that a check (or, later, an export) that shows one raises an alert naming who
 * asked and from where.
 *
 * Indistinguishable. A canary is made from what the vault already holds of its area: a
 * current entry of the area is taken as a neighbour (decrypted in memory only, never
 * printed or logged), and the canary lives a few doors along the same street, in the same
 * postcode and polling district, at a house number no entry on the register uses, with the
 * neighbour's elector number and the first free suffix (as registration officers number an
 * insertion: 12/1), a realistic name drawn from the generator's name lists (data/names)
 * with their population shares, a title only where the area's entries carry titles, a UPRN
 * near the neighbour's where the area has UPRNs, and markers and open-register opt-out in
 * the area's proportions. Its name is chosen so that no entry shares its surname (or the
 * surname's sound) at its postcode, nor its initial and surname in its postcode district,
 * so that checks of real electors never turn it up. It is stored through the same batch
 * API as ingest (an alterations batch for the area's current edition, valid from that
 * edition), so on disk it is sealed and indexed exactly like a real entry.
 *
 * Only the keys tell. Which entries are canaries is kept as a set of keyed BLAKE2b-256
 * hashes under the vault's canary subkey, over the entry's area, elector number, folded
 * surname, first forename and postcode, in the store under 0x81 || hash (value: one
 * version byte). The set is written before the entries, so a crash leaves at worst a hash
 * that matches nothing. Keying on the name as well as the number means a real elector who
 * later gets the canary's number does not raise an alert.
 *
 * The scan. rv_canary_scan runs after a check's answers are on the log: for each entry an
 * answer shows it computes the keyed hash and looks it up in an in-memory sorted array,
 * loaded once per open vault and updated after each rv_policy_canary_add, behind a
 * read-write lock (views check on many threads). With no canaries it costs nothing. A hit
 * raises a high-severity "canary" alert naming the actor's principal and client; its detail
 * holds only the first 8 bytes of the keyed hash. The answer is never changed.
 */
#include "policy/inner.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANARY_TAG     0x81
#define CANARY_MAX     1000 /* canaries one call may add */
#define AREAS_MAX      1024
#define SAMPLE_MIN     4096
#define SAMPLE_MAX     65536
#define ATTEMPTS       64 /* neighbours tried per canary */
#define NAME_ATTEMPTS  24 /* names tried per neighbour */
#define SUFFIX_MAX     30
#define HOUSE_STEP_MAX 12

struct rv_canaries {
    pthread_rwlock_t lock;
    uint8_t *key;       /* the canary subkey (sodium_malloc) */
    uint8_t (*ids)[32]; /* sorted */
    size_t n, cap;
};

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int set_add(struct rv_canaries *s, const uint8_t id[32])
{
    if (s->n == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 64;
        uint8_t(*ids)[32] = realloc(s->ids, cap * 32);
        if (ids == NULL)
            return RV_ENOMEM;
        s->ids = ids;
        s->cap = cap;
    }
    memcpy(s->ids[s->n++], id, 32);
    return 0;
}

static int load_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    return klen == 33 ? set_add(ctx, key + 1) : 0;
}

static void set_free(void *p)
{
    struct rv_canaries *s = p;

    if (s == NULL)
        return;
    pthread_rwlock_destroy(&s->lock);
    sodium_free(s->key);
    free(s->ids);
    free(s);
}

static int set_make(struct rv_gate_shared *sh, void **out)
{
    struct rv_canaries *s = calloc(1, sizeof(*s));
    struct rv_txn *t = NULL;
    const uint8_t prefix = CANARY_TAG;
    int rc;

    if (s == NULL)
        return RV_ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    if ((s->key = sodium_malloc(32)) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if ((rc = rv_vault_subkey(sh->vault, RV_SUBKEY_CANARY, s->key)) != 0)
        goto out;
    if ((rc = rv_store_begin(rv_vault_store(sh->vault), false, &t)) != 0)
        goto out;
    rc = rv_store_scan(t, &prefix, 1, load_one, s);
    rv_store_abort(t);
    if (rc != 0)
        goto out;
    if (s->n > 1)
        qsort(s->ids, s->n, 32, id_cmp);
    *out = s;
    s = NULL;
out:
    set_free(s);
    return rc;
}

int rv_canaries_new(struct rv_gate_shared *sh, struct rv_canaries **out)
{
    void *p = NULL;
    int rc = set_make(sh, &p);

    *out = p;
    return rc;
}

void rv_canaries_free(struct rv_canaries *c)
{
    set_free(c);
}

static int get_set(struct rv_gate *g, struct rv_canaries **out)
{
    *out = g->sh->canaries;
    return *out != NULL ? 0 : RV_EINVAL;
}

/* The keyed id of an entry: BLAKE2b-256 under the canary subkey. */
static int canary_id(const uint8_t *key, const struct rv_elector *e, uint8_t out[32])
{
    struct rv_name_key nk;
    char num[64];
    uint8_t in[1024];
    size_t pos = 0;
    int rc;

    if ((rc = rv_name_key(&e->name, &nk)) != 0)
        return rc;
    rv_elector_number_format(&e->number, num, sizeof(num));
    const char *parts[] = {"regvault canary v1", e->area,  num,
                           nk.surname,           nk.first, e->postcode.canon};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        size_t n = strnlen(parts[i], 256);
        if (pos + n + 1 > sizeof(in)) {
            rc = RV_ETOOBIG;
            goto out;
        }
        memcpy(in + pos, parts[i], n);
        pos += n;
        in[pos++] = 0;
    }
    if (crypto_generichash(out, 32, in, pos, key, 32) != 0)
        rc = RV_ECRYPTO;
out:
    sodium_memzero(in, sizeof(in));
    sodium_memzero(&nk, sizeof(nk));
    return rc;
}

int rv_canary_scan(struct rv_gate *g, const struct rv_check_answer *out, size_t n)
{
    struct rv_canaries *s = NULL;
    uint8_t(*hits)[32] = NULL;
    size_t nhits = 0, total = 0;
    int rc;

    if ((rc = get_set(g, &s)) != 0)
        return rc;
    pthread_rwlock_rdlock(&s->lock);
    total = s->n;
    pthread_rwlock_unlock(&s->lock);
    if (total == 0)
        return 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        for (size_t j = 0; j < out[i].nmatches && rc == 0; j++) {
            uint8_t id[32];
            bool found, dup = false;

            if ((rc = canary_id(s->key, &out[i].matches[j].cand.elector, id)) != 0)
                break;
            pthread_rwlock_rdlock(&s->lock);
            found = s->n > 0 && bsearch(id, s->ids, s->n, 32, id_cmp) != NULL;
            pthread_rwlock_unlock(&s->lock);
            for (size_t k = 0; k < nhits && found && !dup; k++)
                dup = memcmp(hits[k], id, 32) == 0;
            if (found && !dup) {
                uint8_t(*h)[32] = realloc(hits, (nhits + 1) * 32);
                char hex[17], detail[160];
                struct rv_alert a = {.severity = RV_ALERT_HIGH,
                                     .kind = "canary",
                                     .principal = g->who.principal,
                                     .client = g->who.client,
                                     .detail = detail};
                if (h == NULL) {
                    rc = RV_ENOMEM;
                    break;
                }
                hits = h;
                memcpy(hits[nhits++], id, 32);
                sodium_bin2hex(hex, sizeof(hex), id, 8);
                snprintf(detail, sizeof(detail),
                         "a check answer showed canary elector %s to principal %s (role %s)", hex,
                         g->who.principal != NULL ? g->who.principal : "-",
                         g->who.role != NULL ? g->who.role : "-");
                rc = rv_policy_alert(g, &a);
            }
        }
    free(hits);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Making canaries.
 */

struct area_info {
    char area[16];
    rv_date edition;  /* the current edition; RV_DATE_NONE if none */
    unsigned samples; /* neighbours sampled in the area */
    unsigned optout;  /* of those, opted out of the open register */
    unsigned titled;  /* of those, with a title */
    unsigned postal;  /* of those, postal voters */
    unsigned want, made;
};

struct name_list {
    char **name;
    double *cum; /* cumulative shares; NULL for a uniform choice */
    size_t n;
};

struct gen {
    struct rv_vault *v;
    struct area_info *areas;
    size_t nareas;
    const char *only; /* the area asked for, or NULL */
    uint64_t *ids;    /* reservoir of record ids */
    size_t k, cap;
    uint64_t seen;
    struct rv_version *smp; /* neighbours (personal data: sodium memory) */
    size_t nsmp;
    struct name_list sur, male, female;
    struct rv_elector *made; /* canaries (sodium memory) */
    size_t nmade;
};

static uint32_t rnd(uint32_t n)
{
    return n > 0 ? randombytes_uniform(n) : 0;
}

static double rnd01(void)
{
    return (double)randombytes_random() / 4294967296.0;
}

static int on_area(void *ctx, const struct rv_file_stats *st)
{
    struct gen *g = ctx;
    size_t i;

    for (i = 0; i < g->nareas; i++)
        if (strncmp(g->areas[i].area, st->area, sizeof(st->area)) == 0)
            break;
    if (i == g->nareas) {
        if (g->nareas == AREAS_MAX)
            return 0;
        memset(&g->areas[i], 0, sizeof(g->areas[i]));
        memcpy(g->areas[i].area, st->area, sizeof(g->areas[i].area));
        g->areas[i].area[sizeof(g->areas[i].area) - 1] = '\0';
        g->areas[i].edition = RV_DATE_NONE;
        g->nareas++;
    }
    if (st->kind == RV_FILE_EDITION &&
        (g->areas[i].edition == RV_DATE_NONE || st->date > g->areas[i].edition))
        g->areas[i].edition = st->date;
    return 0;
}

static int on_version(void *ctx, uint64_t id, rv_date from, rv_date to)
{
    struct gen *g = ctx;
    (void)from;
    (void)to;

    if (g->k < g->cap) {
        g->ids[g->k++] = id;
    } else {
        uint64_t r;
        randombytes_buf(&r, sizeof(r));
        r %= g->seen + 1;
        if (r < g->cap)
            g->ids[r] = id;
    }
    g->seen++;
    return 0;
}

static struct area_info *find_area(struct gen *g, const char *area)
{
    for (size_t i = 0; i < g->nareas; i++)
        if (strcmp(g->areas[i].area, area) == 0)
            return &g->areas[i];
    return NULL;
}

/* Reads a name list from data/names ("name" or "name,share" with a header line). */
static int load_names(const char *file, bool weighted, struct name_list *out)
{
    const struct rv_blob *b = rv_data_find(file);
    const char *p, *end;
    size_t cap = 0;
    double total = 0;

    memset(out, 0, sizeof(*out));
    if (b == NULL)
        return RV_ENOTFOUND;
    p = b->data;
    end = b->data + b->len;
    p = memchr(p, '\n', (size_t)(end - p)); /* the header */
    while (p != NULL && ++p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *comma;
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *name;
        double w = 1;

        comma = memchr(p, ',', len);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (comma != NULL) {
            w = strtod(comma + 1, NULL);
            len = (size_t)(comma - p);
        }
        if (len == 0 || len > 60 || !(w > 0)) {
            p = nl;
            continue;
        }
        if (out->n == cap) {
            size_t c = cap != 0 ? cap * 2 : 256;
            char **nn = realloc(out->name, c * sizeof(*nn));
            double *cc = nn != NULL ? realloc(out->cum, c * sizeof(*cc)) : NULL;
            if (nn != NULL)
                out->name = nn;
            if (cc == NULL)
                return RV_ENOMEM;
            out->cum = cc;
            cap = c;
        }
        if ((name = strndup(p, len)) == NULL)
            return RV_ENOMEM;
        total += weighted ? w : 1;
        out->name[out->n] = name;
        out->cum[out->n++] = total;
        p = nl;
    }
    return out->n > 0 ? 0 : RV_ENOTFOUND;
}

static void free_names(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->name[i]);
    free(l->name);
    free(l->cum);
    memset(l, 0, sizeof(*l));
}

static const char *pick_name(const struct name_list *l)
{
    double x = rnd01() * l->cum[l->n - 1];
    size_t lo = 0, hi = l->n - 1;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return l->name[lo];
}

/* Number of entries a blind-index search finds (0: nobody). */
static int lookup_count(struct rv_vault *v, enum rv_index family, const struct rv_index_query *q,
                        size_t *n)
{
    uint64_t ids[4];
    return rv_vault_lookup(v, family, q, ids, 4, n);
}

/* The line of an address that starts with the house number, or -1. */
static int number_line(const struct rv_elector *e)
{
    for (int i = 0; i < RV_ADDR_LINES; i++)
        if (e->address[i][0] >= '1' && e->address[i][0] <= '9')
            return i;
    return -1;
}

static bool already_made(const struct gen *g, const struct rv_elector *e, bool by_number)
{
    for (size_t i = 0; i < g->nmade; i++) {
        const struct rv_elector *m = &g->made[i];
        if (strcmp(m->area, e->area) != 0)
            continue;
        if (by_number && strcmp(m->number.prefix, e->number.prefix) == 0 &&
            m->number.number == e->number.number && m->number.suffix == e->number.suffix)
            return true;
        if (!by_number && strcmp(m->postcode.canon, e->postcode.canon) == 0 &&
            strcmp(m->address[0], e->address[0]) == 0 && strcmp(m->address[1], e->address[1]) == 0)
            return true;
    }
    return false;
}

/* A free house number a few doors from the neighbour's, on the same line layout. */
static int choose_address(struct gen *g, const struct rv_version *nb, struct rv_elector *e)
{
    int li = number_line(&nb->e);
    const char *rest;
    unsigned long house;
    char *endp;

    if (li < 0)
        return RV_ENOTFOUND;
    house = strtoul(nb->e.address[li], &endp, 10);
    if (house == 0 || house > 9999)
        return RV_ENOTFOUND;
    rest = endp;
    while ((*rest >= 'a' && *rest <= 'z') || (*rest >= 'A' && *rest <= 'Z'))
        rest++; /* "12a High Street": the letter goes with the number */
    if (*rest != ' ')
        return RV_ENOTFOUND;
    for (int tries = 0; tries < 8; tries++) {
        long step = 2 * (1 + (long)rnd(HOUSE_STEP_MAX / 2));
        long nh = (long)house + (rnd(2) == 0 && (long)house > step ? -step : step);
        struct rv_address_key ak;
        const char *lines[RV_ADDR_LINES];
        struct rv_index_query q = {0};
        size_t n = 0;
        int rc;

        snprintf(e->address[li], sizeof(e->address[li]), "%ld%s", nh, rest);
        for (int i = 0; i < RV_ADDR_LINES; i++)
            lines[i] = e->address[i];
        if (rv_address_key(lines, RV_ADDR_LINES, &ak) != 0 || ak.first_line[0] == '\0')
            continue;
        q.first_line = ak.first_line;
        q.postcode = e->postcode.canon;
        rc = lookup_count(g->v, RV_IDX_ADDRESS_POSTCODE, &q, &n);
        sodium_memzero(&ak, sizeof(ak));
        if (rc != 0)
            return rc;
        if (n == 0 && !already_made(g, e, false))
            return 0;
    }
    return RV_ENOTFOUND;
}

/* The neighbour's elector number with the first suffix nobody holds. */
static int choose_number(struct gen *g, const struct rv_version *nb, struct rv_elector *e)
{
    e->number = nb->e.number;
    for (uint32_t s = nb->e.number.suffix + 1; s <= nb->e.number.suffix + SUFFIX_MAX; s++) {
        uint64_t id;
        int rc;
        e->number.suffix = s;
        rc = rv_vault_current(g->v, e->area, &e->number, &id);
        if (rc == RV_ENOTFOUND && !already_made(g, e, true))
            return 0;
        if (rc != 0 && rc != RV_ENOTFOUND)
            return rc;
    }
    return RV_ENOTFOUND;
}

/* A realistic name that nobody near shares. */
static int choose_name(struct gen *g, const struct area_info *ai, struct rv_elector *e)
{
    for (int tries = 0; tries < NAME_ATTEMPTS; tries++) {
        bool female = rnd(2) == 0;
        const struct name_list *fl = female ? &g->female : &g->male;
        const char *first = pick_name(fl), *sur = pick_name(&g->sur);
        char fore[RV_NAME_MAX];
        struct rv_name_key nk;
        struct rv_index_query q = {0};
        size_t n1 = 1, n2 = 1, n3 = 1;
        int rc;

        if (rnd(100) < 30) {
            const char *mid = pick_name(fl);
            if (strcmp(mid, first) == 0)
                continue;
            snprintf(fore, sizeof(fore), "%s %s", first, mid);
        } else {
            snprintf(fore, sizeof(fore), "%s", first);
        }
        if (rv_name_from_parts(sur, fore, &e->name) != 0 || rv_name_key(&e->name, &nk) != 0)
            continue;
        if (ai->samples > 0 && rnd(ai->samples) < ai->titled)
            snprintf(e->name.title, sizeof(e->name.title), "%s",
                     female ? (rnd(3) == 0 ? "Miss"
                               : rnd(2)    ? "Mrs"
                                           : "Ms")
                            : "Mr");
        q.surname = nk.surname;
        q.initial = nk.initial;
        q.postcode = e->postcode.canon;
        rc = lookup_count(g->v, RV_IDX_SURNAME_POSTCODE, &q, &n1);
        if (rc == 0)
            rc = lookup_count(g->v, RV_IDX_PHONETIC_POSTCODE, &q, &n2);
        if (rc == 0 && nk.initial != 0)
            rc = lookup_count(g->v, RV_IDX_INITIAL_SURNAME_OUTWARD, &q, &n3);
        sodium_memzero(&nk, sizeof(nk));
        sodium_memzero(fore, sizeof(fore));
        if (rc == RV_EINVAL)
            continue;
        if (rc != 0)
            return rc;
        if (n1 == 0 && n2 == 0 && n3 == 0)
            return 0;
    }
    return RV_ENOTFOUND;
}

/* Makes one canary in area ai from one of its neighbours, appended to g->made. */
static int make_one(struct gen *g, struct area_info *ai)
{
    struct rv_elector *e = &g->made[g->nmade];
    int rc = RV_ENOTFOUND;

    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        size_t pick = rnd((uint32_t)ai->samples), j = 0;
        const struct rv_version *nb = NULL;

        for (size_t i = 0; i < g->nsmp && nb == NULL; i++)
            if (strcmp(g->smp[i].e.area, ai->area) == 0 && j++ == pick)
                nb = &g->smp[i];
        if (nb == NULL)
            break;
        sodium_memzero(e, sizeof(*e));
        memcpy(e->area, nb->e.area, sizeof(e->area));
        memcpy(e->address, nb->e.address, sizeof(e->address));
        e->postcode = nb->e.postcode;
        e->attainment = RV_DATE_NONE;
        if ((rc = choose_address(g, nb, e)) == RV_ENOTFOUND)
            continue;
        if (rc == 0 && (rc = choose_number(g, nb, e)) == RV_ENOTFOUND)
            continue;
        if (rc == 0 && (rc = choose_name(g, ai, e)) == RV_ENOTFOUND)
            continue;
        if (rc != 0)
            break;
        if (ai->samples > 0 && rnd(ai->samples) < ai->postal)
            e->markers.known = RV_MARK_A;
        e->open_register_optout = ai->samples > 0 && rnd(ai->samples) < ai->optout;
        e->uprn = nb->e.uprn != 0 ? nb->e.uprn + 1 + rnd(997) : 0;
        g->nmade++;
        return 0;
    }
    sodium_memzero(e, sizeof(*e));
    return rc;
}

/* A neighbour worth copying: a current entry with a numbered street address and no flat,
 * building name or marker. */
static bool good_neighbour(const struct rv_version *ver)
{
    const struct rv_elector *e = &ver->e;
    return ver->to == RV_DATE_FOREVER && e->postcode.canon[0] != '\0' &&
           (e->markers.known & RV_MARK_F) == 0 && number_line(e) == 0 && e->number.number > 0;
}

static int sample(struct gen *g)
{
    rv_date day = rv_date_today();
    int rc;

    if ((rc = rv_vault_scan_valid(g->v, day, on_version, g)) != 0)
        return rc;
    if (g->k == 0) {
        /* Editions dated in the future: take the entries of the latest one. */
        rv_date latest = RV_DATE_NONE;
        for (size_t i = 0; i < g->nareas; i++)
            if (g->areas[i].edition != RV_DATE_NONE && g->areas[i].edition > latest)
                latest = g->areas[i].edition;
        if (latest != RV_DATE_NONE && (rc = rv_vault_scan_valid(g->v, latest, on_version, g)) != 0)
            return rc;
    }
    if (g->k == 0)
        return 0;
    if ((g->smp = sodium_allocarray(g->k, sizeof(*g->smp))) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < g->k; i++) {
        struct rv_version *ver = &g->smp[g->nsmp];
        struct area_info *ai;

        if ((rc = rv_vault_fetch(g->v, g->ids[i], ver)) != 0) {
            sodium_memzero(ver, sizeof(*ver));
            if (rc == RV_ENOTFOUND)
                continue;
            return rc;
        }
        ai = find_area(g, ver->e.area);
        if (ai == NULL || ai->edition == RV_DATE_NONE ||
            (g->only != NULL && strcmp(g->only, ai->area) != 0) || !good_neighbour(ver)) {
            sodium_memzero(ver, sizeof(*ver));
            continue;
        }
        ai->samples++;
        ai->optout += ver->e.open_register_optout;
        ai->titled += ver->e.name.title[0] != '\0';
        ai->postal += (ver->e.markers.known & RV_MARK_A) != 0;
        g->nsmp++;
    }
    return 0;
}

/* Stores the keyed ids of the canaries (before the canaries themselves). */
static int store_ids(struct gen *g, const uint8_t *key, uint8_t (*ids)[32])
{
    struct rv_txn *t = NULL;
    uint8_t k[33];
    const uint8_t ver = 1;
    int rc;

    if ((rc = rv_store_begin(rv_vault_store(g->v), true, &t)) != 0)
        return rc;
    k[0] = CANARY_TAG;
    for (size_t i = 0; i < g->nmade && rc == 0; i++) {
        if ((rc = canary_id(key, &g->made[i], ids[i])) != 0)
            break;
        memcpy(k + 1, ids[i], 32);
        rc = rv_store_put(t, k, sizeof(k), &ver, 1);
    }
    if (rc != 0) {
        rv_store_abort(t);
        return rc;
    }
    return rv_store_commit(t);
}

/* Writes the canaries of one area in one alterations batch of its current edition. */
static int store_area(struct gen *g, struct area_info *ai, unsigned *stored)
{
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = NULL;
    uint8_t hash[32];
    uint64_t rows = 0;
    int rc;

    randombytes_buf(hash, sizeof(hash));
    if ((p = sodium_malloc(sizeof(*p))) == NULL)
        return RV_ENOMEM;
    if ((rc = rv_vault_batch_begin(g->v, ai->area, RV_FILE_ALTERATIONS, ai->edition, hash, &b)) !=
        0)
        goto out;
    for (size_t i = 0; i < g->nmade; i++) {
        enum rv_apply res;
        if (strcmp(g->made[i].area, ai->area) != 0)
            continue;
        rows++;
        if ((rc = rv_vault_prepare(g->v, &g->made[i], NULL, 0, p)) != 0 ||
            (rc = rv_vault_batch_alteration_row(b, p, false, ai->edition, &res)) != 0)
            goto out;
        if (res == RV_APPLIED_NEW)
            (*stored)++;
    }
    rv_vault_batch_count(b, rows, 0, 0);
    rc = rv_vault_batch_commit(b, NULL);
    b = NULL;
out:
    if (b != NULL)
        rv_vault_batch_abort(b);
    sodium_memzero(p, sizeof(*p));
    sodium_free(p);
    return rc;
}

static void gen_free(struct gen *g)
{
    free(g->areas);
    free(g->ids);
    if (g->smp != NULL) {
        sodium_memzero(g->smp, g->k * sizeof(*g->smp));
        sodium_free(g->smp);
    }
    if (g->made != NULL) {
        sodium_memzero(g->made, g->nmade * sizeof(*g->made));
        sodium_free(g->made);
    }
    free_names(&g->sur);
    free_names(&g->male);
    free_names(&g->female);
}

static int add_canaries(struct rv_gate *gt, unsigned n, const char *area, unsigned *added)
{
    struct gen g = {.v = gt->sh->vault, .only = area};
    struct rv_canaries *set = NULL;
    uint8_t(*ids)[32] = NULL;
    size_t with = 0, next;
    int rc;

    if ((g.areas = calloc(AREAS_MAX, sizeof(*g.areas))) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if ((rc = rv_vault_stats(g.v, on_area, &g)) != 0)
        goto out;
    if (area != NULL &&
        (find_area(&g, area) == NULL || find_area(&g, area)->edition == RV_DATE_NONE)) {
        rc = RV_ENOTFOUND;
        goto out;
    }
    g.cap = SAMPLE_MIN + 64 * (size_t)n;
    if (area == NULL)
        g.cap += 16 * (size_t)n * g.nareas;
    if (g.cap > SAMPLE_MAX)
        g.cap = SAMPLE_MAX;
    if ((g.ids = calloc(g.cap, sizeof(*g.ids))) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if ((rc = load_names("names/surnames.csv", true, &g.sur)) != 0 ||
        (rc = load_names("names/first_names_male.csv", false, &g.male)) != 0 ||
        (rc = load_names("names/first_names_female.csv", false, &g.female)) != 0)
        goto out;
    if ((rc = sample(&g)) != 0)
        goto out;
    if ((g.made = sodium_allocarray(n, sizeof(*g.made))) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    /* Spread over the areas that have neighbours, from a random one. */
    for (size_t i = 0; i < g.nareas; i++)
        with += g.areas[i].samples > 0;
    if (with == 0)
        goto out; /* an empty vault: nothing to look like */
    next = rnd((uint32_t)g.nareas);
    for (unsigned made = 0, fails = 0; made + fails < n;) {
        struct area_info *ai = &g.areas[next++ % g.nareas];
        if (ai->samples == 0)
            continue;
        if ((rc = make_one(&g, ai)) == 0) {
            ai->want++;
            made++;
        } else if (rc == RV_ENOTFOUND) {
            fails++;
            rc = 0;
        } else {
            goto out;
        }
    }
    if (g.nmade == 0)
        goto out;
    if ((ids = calloc(g.nmade, 32)) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if ((rc = get_set(gt, &set)) != 0 || (rc = store_ids(&g, set->key, ids)) != 0)
        goto out;
    for (size_t i = 0; i < g.nareas; i++)
        if (g.areas[i].want > 0 && (rc = store_area(&g, &g.areas[i], added)) != 0)
            goto out;
    pthread_rwlock_wrlock(&set->lock);
    for (size_t i = 0; i < g.nmade && rc == 0; i++)
        rc = set_add(set, ids[i]);
    if (set->n > 1) {
        size_t w = 1;
        qsort(set->ids, set->n, 32, id_cmp);
        for (size_t r = 1; r < set->n; r++)
            if (memcmp(set->ids[r], set->ids[w - 1], 32) != 0)
                memmove(set->ids[w++], set->ids[r], 32);
        set->n = w;
    }
    pthread_rwlock_unlock(&set->lock);
out:
    if (ids != NULL) {
        sodium_memzero(ids, g.nmade * 32);
        free(ids);
    }
    gen_free(&g);
    return rc;
}

int rv_policy_canary_add(struct rv_gate *g, unsigned n, const char *area, unsigned *added)
{
    char params[96], outcome[96];
    int rc, rc2;

    *added = 0;
    snprintf(params, sizeof(params), "count=%u area=%s", n, area != NULL ? area : "all");
    if ((rc = rv_gate_authorise(g, RV_ACT_CANARY, params)) != 0)
        return rc;
    if (n == 0 || n > CANARY_MAX || (area != NULL && (area[0] == '\0' || strlen(area) > 15)))
        rc = RV_EINVAL;
    else if ((rc = rv_policy_record(g, RV_ACT_CANARY, params, "started", NULL, 0)) != 0)
        return rc;
    if (rc == 0)
        rc = add_canaries(g, n, area, added);
    if (rc != 0)
        snprintf(outcome, sizeof(outcome), "error: %s added=%u", rv_strerror(rc), *added);
    else
        snprintf(outcome, sizeof(outcome), "ok added=%u", *added);
    rc2 = rv_policy_record(g, RV_ACT_CANARY, params, outcome, NULL, 0);
    return rc != 0 ? rc : rc2;
}
