/*
 * run.c - checks one donor against the encrypted vault: finds candidates through the blind
 * indexes only, decrypts just those, scores each, and decides the answer.
 *
 * The register is never read whole. Several searches run over the index families the vault
 * keeps (surname + postcode, initial + surname + outward code, phonetic surname + postcode,
 * first address line + postcode, and surname alone for entries with no postcode, such as
 * overseas electors), plus the surname search again with forename and surname swapped.
 * Each candidate remembers which searches found it; the answer's reasons say so, and no log
 * does. Index values are truncated, so some candidates are coincidences: scoring drops them.
 *
 * The register edition in force at the date is worked out from the vault's per-file
 * statistics (which hold no personal data), and the moved-donor search visits only the
 * postcode districts the vault holds (from its sealed district lists); both are read when
 * the context opens and again whenever a file has been ingested since.
 *
 * Speed: each check reads the vault in one snapshot through the context's own reader (no
 * lock shared with other threads' contexts), the blind indexes' check tags drop the
 * coincidences of the truncated values before anything is decrypted, validity spans are
 * read first so that versions not in force are decrypted only when nothing in force
 * matches (only then can they change the answer), and the context keeps its buffers from
 * check to check, wiping those that held register data at the end of each.
 */
#include "check/internal.h"
#include "vault/vault.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most ids one search may return, and most versions one query may decrypt in each stage
 * (the first searches, the typo search, the move search). */
#define SEARCH_MAX  4096
#define DECRYPT_MAX 256
#define LABEL_MEMO  8

struct file_row {
    char area[16];
    enum rv_file_kind kind;
    rv_date date;      /* edition date (for alterations, the edition they amend) */
    rv_date eff_first; /* alterations: first and last dates a row took effect */
    rv_date eff_last;
};

struct rv_check_ctx {
    struct rv_vault *v;
    struct rv_vault_reader *r;
    uint64_t generation; /* files ingested when files and districts were read */
    struct file_row *files;
    size_t nfiles, cap;
    char (*dist)[8]; /* outward codes the vault holds, sorted, unique */
    size_t ndist, dcap;
    uint64_t *ids; /* scratch for searches */
    /* Kept from check to check: candidates (ids only), matches and the version being
     * scored (register data, wiped at the end of every check). */
    struct cand_ref *refs;
    size_t refs_cap;
    struct rv_check_match *m;
    size_t mcap;
    /* The grades of the candidates scored first, when every candidate is scored again
     * together with those found later: a candidate no later search found again earns the
     * same, and is neither decrypted nor scored twice. Register data, wiped at the end of
     * every check (nkept entries). */
    struct rv_check_match *kept;
    size_t kcap, nkept;
    bool keeping; /* score_one records what it scores in the refs */
    struct rv_version *ver;
    struct rv_check_candidate *cand;
    /* Helpers for rv_check_run_many: contexts of their own, opened on first use, and the
     * threads that run them. */
    unsigned threads;
    struct rv_check_ctx **helpers;
    struct pool *pool;
    /* Which candidate of the current query holds each record id: open addressing, a slot
     * being (generation << 32) | (index + 1), so that a new query or a re-sort starts an
     * empty table by bumping the generation. Holds ids only, no register data. */
    uint64_t *slot;
    unsigned slot_bits;
    uint32_t gen;
    /* The current query's forenames, in words: worked out on first use (many checks never
     * compare a listed name), and wiped at the end of the check when probe_q is set. */
    struct rv_check_name_probe probe;
    const struct rv_check_query *probe_q;
    /* Edition labels worked out lately (an area code and a date: no personal data), so that
     * the many candidates of one area at one date share the work. Emptied whenever the
     * files are read again. */
    struct label_memo {
        char area[16];
        rv_date d;
        char label[sizeof(((struct rv_check_candidate *)0)->edition)];
    } labels[LABEL_MEMO];
    unsigned nlabels, next_label;
    bool fetched; /* ver and cand held a version during this check */
    /* Candidates in id order, for reading their spans (ids and positions only). */
    struct span_order {
        uint64_t id;
        size_t i;
    } * order;
    size_t order_cap;
};

#define SLOT_BITS_MIN 10

struct cand_ref {
    uint64_t id;
    unsigned found_by;
    unsigned hits; /* how many searches found it */
    rv_date from, to;
    bool in_force;
    bool deferred; /* not in force, within the budget: decrypted only if nothing in force
                      matches */
    /* Scored while the first candidates were kept (ctx keeping): with the searches in
     * kept_by, it earned kept[kept_at] (-1: no grade). */
    bool kept;
    unsigned kept_by;
    long kept_at;
};

static int on_file(void *ctx, const struct rv_file_stats *st)
{
    struct rv_check_ctx *c = ctx;
    if (c->nfiles == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 256;
        struct file_row *f = realloc(c->files, cap * sizeof(*f));
        if (f == NULL)
            return RV_ENOMEM;
        c->files = f;
        c->cap = cap;
    }
    memcpy(c->files[c->nfiles].area, st->area, sizeof(st->area));
    c->files[c->nfiles].area[sizeof(c->files[c->nfiles].area) - 1] = '\0';
    c->files[c->nfiles].kind = st->kind;
    c->files[c->nfiles].date = st->date;
    c->files[c->nfiles].eff_first = st->eff_first;
    c->files[c->nfiles].eff_last = st->eff_last;
    c->nfiles++;
    return 0;
}

static int on_district(void *ctx, const char *outward)
{
    struct rv_check_ctx *c = ctx;
    size_t n = strlen(outward);

    if (n >= sizeof(c->dist[0]))
        return 0;
    if (c->ndist == c->dcap) {
        size_t cap = c->dcap != 0 ? c->dcap * 2 : 256;
        char(*d)[8] = realloc(c->dist, cap * sizeof(*d));
        if (d == NULL)
            return RV_ENOMEM;
        c->dist = d;
        c->dcap = cap;
    }
    memcpy(c->dist[c->ndist++], outward, n + 1);
    return 0;
}

static int cmp_code(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* Reads the per-file statistics and the districts again when files were ingested since they
 * were last read (the reader's snapshot is open). */
static int refresh(struct rv_check_ctx *c)
{
    uint64_t gen;
    size_t k = 0;
    int err;

    if ((err = rv_vault_reader_generation(c->r, &gen)) != 0)
        return err;
    if (gen == c->generation && c->files != NULL)
        return 0;
    c->nfiles = 0;
    c->ndist = 0;
    if ((err = rv_vault_stats(c->v, on_file, c)) != 0 ||
        (err = rv_vault_reader_districts(c->r, on_district, c)) != 0)
        return err;
    if (c->files == NULL && (c->files = malloc(sizeof(*c->files))) == NULL)
        return RV_ENOMEM; /* an empty vault: remember that it was read */
    if (c->nfiles > 1)    /* by area, for edition_label_of */
        qsort(c->files, c->nfiles, sizeof(*c->files), cmp_code);
    if (c->ndist > 0) {
        qsort(c->dist, c->ndist, sizeof(*c->dist), cmp_code);
        for (size_t i = 0; i < c->ndist; i++)
            if (k == 0 || strcmp(c->dist[k - 1], c->dist[i]) != 0)
                memmove(c->dist[k++], c->dist[i], sizeof(c->dist[0]));
        c->ndist = k;
    }
    c->generation = gen;
    c->nlabels = 0;
    c->next_label = 0;
    return 0;
}

int rv_check_ctx_open(struct rv_vault *v, struct rv_check_ctx **out)
{
    struct rv_check_ctx *c = calloc(1, sizeof(*c));
    int err;

    *out = NULL;
    if (c == NULL)
        return RV_ENOMEM;
    c->v = v;
    c->threads = 1;
    c->slot_bits = SLOT_BITS_MIN;
    if ((c->ids = calloc(SEARCH_MAX, sizeof(*c->ids))) == NULL ||
        (c->slot = calloc((size_t)1 << c->slot_bits, sizeof(*c->slot))) == NULL ||
        (c->ver = calloc(1, sizeof(*c->ver))) == NULL ||
        (c->cand = calloc(1, sizeof(*c->cand))) == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    if ((err = rv_vault_reader_open(v, &c->r)) != 0)
        goto out;
    if ((err = rv_vault_reader_begin(c->r)) != 0)
        goto out;
    err = refresh(c);
    rv_vault_reader_end(c->r);
    if (err != 0)
        goto out;
    if ((err = rv_check_tables_init()) != 0)
        goto out;
    *out = c;
    c = NULL;
out:
    rv_check_ctx_close(c);
    return err;
}

static void pool_stop(struct rv_check_ctx *c);

void rv_check_ctx_close(struct rv_check_ctx *c)
{
    if (c == NULL)
        return;
    pool_stop(c);
    if (c->helpers != NULL)
        for (unsigned i = 0; i + 1 < c->threads; i++)
            rv_check_ctx_close(c->helpers[i]);
    free(c->helpers);
    rv_vault_reader_close(c->r);
    free(c->files);
    free(c->dist);
    free(c->ids);
    free(c->slot);
    free(c->refs);
    free(c->order);
    if (c->m != NULL) {
        sodium_memzero(c->m, c->mcap * sizeof(*c->m));
        free(c->m);
    }
    if (c->kept != NULL) {
        sodium_memzero(c->kept, c->kcap * sizeof(*c->kept));
        free(c->kept);
    }
    if (c->ver != NULL) {
        sodium_memzero(c->ver, sizeof(*c->ver));
        free(c->ver);
    }
    if (c->cand != NULL) {
        sodium_memzero(c->cand, sizeof(*c->cand));
        free(c->cand);
    }
    free(c);
}

/* "2025-12-01", or "2025-12-01 + alterations to 2026-02-01": the revised register of the
 * area in force at date d, and the latest date up to d, after the edition's own, on which
 * alterations to it took effect. */
static void edition_label_of(const struct rv_check_ctx *c, const char *area, rv_date d, char *buf,
                             size_t cap)
{
    rv_date ed = RV_DATE_NONE, alt = RV_DATE_NONE;
    char a[11], b[11];
    size_t lo = 0, hi = c->nfiles, end;

    /* The area's files: refresh sorted them by area (the field comes first). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->files[mid].area, area) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (end = lo; end < c->nfiles && strcmp(c->files[end].area, area) == 0; end++) {
        const struct file_row *f = &c->files[end];
        if (f->date > d)
            continue;
        if (f->kind == RV_FILE_EDITION && (ed == RV_DATE_NONE || f->date > ed))
            ed = f->date;
    }
    for (size_t i = lo; i < end && ed != RV_DATE_NONE; i++) {
        const struct file_row *f = &c->files[i];
        rv_date upto;
        if (f->kind != RV_FILE_ALTERATIONS || f->date != ed || f->eff_first == RV_DATE_NONE ||
            f->eff_first > d)
            continue;
        /* Alterations that took effect on the edition day (or before it) are the register as
         * it stood that day: only later ones add to the label. */
        upto = f->eff_last < d ? f->eff_last : d;
        if (upto <= ed)
            continue;
        if (alt == RV_DATE_NONE || upto > alt)
            alt = upto;
    }
    if (ed == RV_DATE_NONE)
        snprintf(buf, cap, "none in force");
    else if (alt == RV_DATE_NONE)
        snprintf(buf, cap, "%s", rv_check_date_text(ed, a));
    else
        snprintf(buf, cap, "%s + alterations to %s", rv_check_date_text(ed, a),
                 rv_check_date_text(alt, b));
}

static void label_copy(char *buf, size_t cap, const char *label)
{
    size_t n = strnlen(label, cap - 1);

    memcpy(buf, label, n);
    buf[n] = '\0';
}

/* edition_label_of, remembered for the last few areas and dates (those of one query's
 * candidates, mostly one area at the date of the donation). */
static void edition_label(struct rv_check_ctx *c, const char *area, rv_date d, char *buf,
                          size_t cap)
{
    struct label_memo *l;

    for (unsigned i = 0; i < c->nlabels; i++) {
        l = &c->labels[i];
        if (l->d == d && strcmp(l->area, area) == 0) {
            label_copy(buf, cap, l->label);
            return;
        }
    }
    if (strlen(area) >= sizeof(l->area)) {
        edition_label_of(c, area, d, buf, cap);
        return;
    }
    l = &c->labels[c->next_label];
    c->next_label = (c->next_label + 1) % LABEL_MEMO;
    if (c->nlabels < LABEL_MEMO)
        c->nlabels++;
    strcpy(l->area, area);
    l->d = d;
    edition_label_of(c, area, d, l->label, sizeof(l->label));
    label_copy(buf, cap, l->label);
}

/* Starts an empty id table (a new query, or candidates re-sorted). */
static void slots_clear(struct rv_check_ctx *c)
{
    if (++c->gen == 0) { /* wrapped: old slots could look current */
        memset(c->slot, 0, ((size_t)1 << c->slot_bits) * sizeof(*c->slot));
        c->gen = 1;
    }
}

/* The slot of id: where it is, or the empty slot where it would go. */
static size_t slot_of(const struct rv_check_ctx *c, const struct cand_ref *refs, uint64_t id)
{
    size_t mask = ((size_t)1 << c->slot_bits) - 1;
    size_t h = (size_t)((id * 0x9e3779b97f4a7c15ull) >> (64 - c->slot_bits));

    for (;; h = (h + 1) & mask) {
        uint64_t v = c->slot[h];
        if ((uint32_t)(v >> 32) != c->gen || refs[(uint32_t)v - 1].id == id)
            return h;
    }
}

/* Indexes refs[0, n) afresh, growing the table to keep it at most half full. */
static int slots_index(struct rv_check_ctx *c, const struct cand_ref *refs, size_t n)
{
    unsigned bits = c->slot_bits;

    while (((size_t)1 << bits) < 2 * (n + 1))
        bits++;
    if (bits >= 32)
        return RV_ENOMEM;
    if (bits != c->slot_bits) {
        uint64_t *ns = calloc((size_t)1 << bits, sizeof(*ns));
        if (ns == NULL)
            return RV_ENOMEM;
        free(c->slot);
        c->slot = ns;
        c->slot_bits = bits;
        c->gen = 0;
    }
    slots_clear(c);
    for (size_t i = 0; i < n; i++)
        c->slot[slot_of(c, refs, refs[i].id)] = (uint64_t)c->gen << 32 | (uint64_t)(i + 1);
    return 0;
}

/* Adds one id a search found to refs, or merges the search's bit into it. */
static int add_id(struct rv_check_ctx *c, uint64_t id, unsigned bit, struct cand_ref **refs,
                  size_t *n, size_t *cap)
{
    size_t h;
    int err;

    if (2 * (*n + 1) > ((size_t)1 << c->slot_bits) && (err = slots_index(c, *refs, *n)) != 0)
        return err;
    h = slot_of(c, *refs, id);
    if ((uint32_t)(c->slot[h] >> 32) == c->gen) {
        struct cand_ref *r = &(*refs)[(uint32_t)c->slot[h] - 1];
        r->found_by |= bit;
        r->hits++;
        return 0;
    }
    if (*n == *cap) {
        size_t nc = *cap != 0 ? *cap * 2 : 64;
        struct cand_ref *r = realloc(*refs, nc * sizeof(*r));
        if (r == NULL)
            return RV_ENOMEM;
        *refs = r;
        *cap = nc;
    }
    (*refs)[*n].id = id;
    (*refs)[*n].found_by = bit;
    (*refs)[*n].hits = 1;
    (*refs)[*n].kept = false;
    (*n)++;
    c->slot[h] = (uint64_t)c->gen << 32 | (uint64_t)*n;
    return 0;
}

/* Adds the ids one search finds to refs, merging found_by bits. */
static int search(struct rv_check_ctx *c, enum rv_index family, const struct rv_index_query *iq,
                  unsigned bit, struct cand_ref **refs, size_t *n, size_t *cap)
{
    size_t found = 0;
    int err = rv_vault_reader_lookup(c->r, family, iq, c->ids, SEARCH_MAX, &found);

    if (err == RV_EINVAL) /* the query lacks a field this family needs */
        return 0;
    if (err != 0)
        return err;
    if (found > SEARCH_MAX)
        found = SEARCH_MAX;
    for (size_t i = 0; i < found && err == 0; i++)
        err = add_id(c, c->ids[i], bit, refs, n, cap);
    return err;
}

static int cmp_ref(const void *x, const void *y)
{
    const struct cand_ref *a = x, *b = y;
    if (a->in_force != b->in_force)
        return a->in_force ? -1 : 1;
    /* More searches agreeing first. */
    int pa = __builtin_popcount(a->found_by), pb = __builtin_popcount(b->found_by);
    if (pa != pb)
        return pa > pb ? -1 : 1;
    if (a->hits != b->hits)
        return a->hits > b->hits ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int search_namesakes(struct rv_check_ctx *c, const struct rv_check_query *q,
                            const struct rv_index_query *iq, unsigned bit, struct cand_ref **refs,
                            size_t *n, size_t *cap);

/* The postcode-keyed searches for one reading of the surname. */
static int search_surname(struct rv_check_ctx *c, const struct rv_check_query *q,
                          const char *surname, char initial, struct cand_ref **refs, size_t *n,
                          size_t *cap)
{
    struct rv_index_query iq;
    int err;

    memset(&iq, 0, sizeof(iq));
    iq.surname = surname;
    iq.initial = initial;
    iq.postcode = q->postcode.canon;
    if ((err = search(c, RV_IDX_SURNAME_POSTCODE, &iq, RV_CHECK_BY_SURNAME_POSTCODE, refs, n,
                      cap)) != 0 ||
        (err = search_namesakes(c, q, &iq, RV_CHECK_BY_INITIAL_OUTWARD, refs, n, cap)) != 0 ||
        (err = search(c, RV_IDX_PHONETIC_POSTCODE, &iq, RV_CHECK_BY_PHONETIC_POSTCODE, refs, n,
                      cap)) != 0)
        return err;
    return 0;
}

/* The name probe of the current query q, worked out now if not yet in this check. */
static const struct rv_check_name_probe *probe_of(struct rv_check_ctx *c,
                                                  const struct rv_check_query *q)
{
    if (c->probe_q != q) {
        c->probe_q = NULL;
        c->probe_q = q;
    }
    return &c->probe;
}

struct nopc_ctx {
    struct rv_check_ctx *c;
    const struct rv_check_query *q;
    struct cand_ref **refs;
    size_t *n, *cap;
    unsigned bit;
    size_t found;
};

static int on_no_postcode(void *ctx, uint64_t id, const char *surname_words, const char *forenames,
                          bool address)
{
    struct nopc_ctx *t = ctx;

    if (t->found == SEARCH_MAX)
        return 1;
    if (!address && !rv_check_name_probe_grade(probe_of(t->c, t->q), surname_words, forenames))
        return 0; /* a namesake abroad whose forenames rule it out: scoring would drop it */
    t->found++;
    return add_id(t->c, id, t->bit, t->refs, t->n, t->cap);
}

/* Entries with no postcode (overseas electors) bearing a surname: from the vault's sealed
 * list of them, which holds their names, so that namesakes whose forenames cannot match are
 * never decrypted. */
static int search_no_postcode(struct rv_check_ctx *c, const struct rv_check_query *q,
                              const char *surname, unsigned bit, struct cand_ref **refs, size_t *n,
                              size_t *cap)
{
    struct nopc_ctx t = {c, q, refs, n, cap, bit, 0};
    int err;

    if (surname[0] == '\0')
        return 0;
    err = rv_vault_reader_no_postcode(c->r, surname, on_no_postcode, &t);
    return err == RV_EINVAL ? 0 : err;
}

struct ns_ctx {
    struct rv_check_ctx *c;
    const struct rv_check_query *q;
    struct cand_ref **refs;
    size_t *n, *cap;
    unsigned bit;
    char compact[9]; /* the donor's postcode without its space */
    size_t found;
};

static int on_namesake(void *ctx, uint64_t id, const char *postcode, const char *surname_words,
                       const char *forenames)
{
    struct ns_ctx *t = ctx;

    if (t->found == SEARCH_MAX)
        return 1;
    /* Elsewhere than the donor's postcode, with no street address given, the address is at
     * best the sector: only full, variant and partial names earn a grade there. */
    if (strcmp(postcode, t->compact) != 0 && surname_words != NULL && forenames != NULL &&
        !rv_check_name_probe_grade(probe_of(t->c, t->q), surname_words, forenames))
        return 0;
    t->found++;
    return add_id(t->c, id, t->bit, t->refs, t->n, t->cap);
}

/* Initial + surname + outward code: the index when the donor gave a street address (which
 * may agree with an entry's at another postcode), otherwise the vault's sealed namesake
 * list, leaving out those elsewhere whose forenames cannot match, without decrypting
 * them. */
static int search_namesakes(struct rv_check_ctx *c, const struct rv_check_query *q,
                            const struct rv_index_query *iq, unsigned bit, struct cand_ref **refs,
                            size_t *n, size_t *cap)
{
    struct ns_ctx t;
    size_t k = 0;
    int err;

    if (q->has_address)
        return search(c, RV_IDX_INITIAL_SURNAME_OUTWARD, iq, bit, refs, n, cap);
    memset(&t, 0, sizeof(t));
    t.c = c;
    t.q = q;
    t.refs = refs;
    t.n = n;
    t.cap = cap;
    t.bit = bit;
    for (const char *p = q->postcode.canon; *p != '\0' && k + 1 < sizeof(t.compact); p++)
        if (*p != ' ')
            t.compact[k++] = *p;
    err = rv_vault_reader_namesakes(c->r, iq, on_namesake, &t);
    return err == RV_EINVAL ? 0 : err;
}

/* Each part of a donor's surname of several ("Smith-Jones": smith, jones), with the
 * postcode, or (no_postcode) alone for entries with no postcode: the register may hold one
 * part only. The
 * vault indexes the parts of its own entries' surnames the same way, so a donor who writes
 * one part of a register's double-barrelled surname is found by the ordinary searches. */
static int search_parts(struct rv_check_ctx *c, const struct rv_check_query *q, bool no_postcode,
                        struct cand_ref **refs, size_t *n, size_t *cap)
{
    const char *tp = q->key.surname_tokens;
    char part[RV_NAME_MAX];
    struct rv_index_query iq;
    int err = 0;

    if (q->key.nsurname_tokens < 2)
        return 0;
    memset(&iq, 0, sizeof(iq));
    iq.surname = part;
    iq.postcode = q->has_postcode ? q->postcode.canon : NULL;
    for (unsigned k = 0; *tp != '\0' && k < RV_VAULT_PARTS && err == 0;) {
        size_t tl = strcspn(tp, " ");
        if (tl >= 3 && tl < sizeof(part)) {
            memcpy(part, tp, tl);
            part[tl] = '\0';
            k++;
            if (strcmp(part, q->key.surname) != 0) {
                if (!no_postcode && q->has_postcode)
                    err = search(c, RV_IDX_SURNAME_POSTCODE, &iq, RV_CHECK_BY_SURNAME_POSTCODE,
                                 refs, n, cap);
                else if (no_postcode)
                    err = search_no_postcode(c, q, part, RV_CHECK_BY_SURNAME, refs, n, cap);
            }
        }
        tp += tl;
        while (*tp == ' ')
            tp++;
    }
    sodium_memzero(part, sizeof(part));
    return err;
}

#define TYPO_MEMO 64 /* a power of two */

struct typo_ctx {
    struct rv_check_ctx *c;
    const struct rv_check_query *q;
    struct rv_check_sn_probe probe;
    struct cand_ref **refs;
    size_t *n, *cap;
    size_t found;
    /* The surnames judged so far (housemates share theirs): a 63-bit hash of each, with
     * the answer in the low bit; 0 is empty. Wiped after the search. */
    uint64_t memo[TYPO_MEMO];
};

/* FNV-1a over a surname, mixed so that both its high bits and the rest are spread. */
static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    return (h ^ h >> 27) | 2; /* never 0, whatever the answer bit */
}

/* rv_check_surname_close, remembered: a postcode lists each household's surname again for
 * every member. */
static bool typo_close(struct typo_ctx *t, const char *surname, size_t len)
{
    uint64_t h = name_hash(surname, len);
    uint64_t *slot = &t->memo[h >> 58 & (TYPO_MEMO - 1)];
    bool close;

    if (*slot != 0 && (*slot | 1) == (h | 1))
        return (*slot & 1) != 0;
    close = rv_check_surname_close(t->q, &t->probe, surname, len);
    *slot = (h & ~1ull) | (close ? 1 : 0);
    return close;
}

static int on_postcode_entry(void *ctx, uint64_t id, const char *surname, size_t len)
{
    struct typo_ctx *t = ctx;

    if (t->found == SEARCH_MAX)
        return 1;
    if (len != RV_VAULT_PC_LONG && !typo_close(t, surname, len))
        return 0;
    t->found++;
    return add_id(t->c, id, RV_CHECK_BY_VARIANT, t->refs, t->n, t->cap);
}

/* A donor's typo in the surname: every version at the donor's postcode whose surname is
 * close to the donor's (a typo, a sound-alike, one part of the other), from the vault's
 * sealed list of the postcode's surnames. Only run when the first searches found nothing
 * strong. */
static int search_typos(struct rv_check_ctx *c, const struct rv_check_query *q,
                        struct cand_ref **refs, size_t *n, size_t *cap)
{
    struct typo_ctx t;
    int err;

    if (!q->has_postcode)
        return 0;
    memset(&t, 0, sizeof(t));
    t.c = c;
    t.q = q;
    t.refs = refs;
    t.n = n;
    t.cap = cap;
    rv_check_sn_probe_init(q, &t.probe);
    err = rv_vault_reader_postcode(c->r, q->postcode.canon, on_postcode_entry, &t);
    sodium_memzero(&t, sizeof(t));
    return err;
}

/* The donor may have moved after the register last recorded them: initial + surname in the
 * other districts of the donor's postcode area that the vault holds (LS1 ... LS99, EC1A).
 * Only run when nothing at all was found in force; the matches it brings are never better
 * than possible. */
static int search_nearby(struct rv_check_ctx *c, const struct rv_check_query *q,
                         struct cand_ref **refs, size_t *n, size_t *cap)
{
    struct rv_index_query iq;
    char area[9], own[9];
    size_t al;
    int err = 0;

    if (!q->has_postcode || q->key.initial == 0)
        return 0;
    rv_postcode_area(&q->postcode, area);
    rv_postcode_outward(&q->postcode, own);
    al = strlen(area);
    memset(&iq, 0, sizeof(iq));
    iq.surname = q->key.surname;
    iq.initial = q->key.initial;
    /* The districts are sorted: those of the area follow the first code not before it. */
    size_t lo = 0, hi = c->ndist;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->dist[mid], area) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < c->ndist && err == 0 && strncmp(c->dist[i], area, al) == 0; i++) {
        const char *d = c->dist[i];
        if (d[al] < '0' || d[al] > '9' || strcmp(d, own) == 0)
            continue;    /* another area (L is not LS), or the donor's own district */
        iq.postcode = d; /* an outward code alone: all this family uses */
        err = search_namesakes(c, q, &iq, RV_CHECK_BY_NEARBY, refs, n, cap);
    }
    return err;
}

/* Decrypts and scores one candidate, appending it to m when it earns a grade. */
static int score_one(struct rv_check_ctx *c, const struct rv_check_query *q, struct cand_ref *ref,
                     struct rv_check_match **m, size_t *nm, size_t *mcap)
{
    struct rv_version *ver = c->ver;
    struct rv_check_candidate *cand = c->cand;
    struct rv_check_match *one;
    bool reuse = ref->kept && ref->kept_by == ref->found_by, graded;
    int err;

    if (reuse && ref->kept_at < 0)
        return 0; /* scored already, without a grade */
    if (!reuse) {
        c->fetched = true;
        if ((err = rv_vault_reader_fetch(c->r, ref->id, ver)) != 0)
            return err;
    }
    if (*nm == *mcap) {
        size_t ncap = *mcap != 0 ? *mcap * 2 : 16;
        struct rv_check_match *nmv = calloc(ncap, sizeof(*nmv));
        if (nmv == NULL)
            return RV_ENOMEM;
        if (*m != NULL) {
            memcpy(nmv, *m, *nm * sizeof(*nmv));
            sodium_memzero(*m, *mcap * sizeof(**m));
            free(*m);
        }
        *m = nmv;
        *mcap = ncap;
    }
    if (reuse) {
        (*m)[(*nm)++] = c->kept[ref->kept_at];
        return 0;
    }
    /* Every field is overwritten for each candidate (fetch clears ver first), so the
     * plaintext is wiped once, at the end of the check. */
    cand->elector = ver->e;
    cand->from = ver->from;
    cand->to = ver->to;
    cand->edition[0] = '\0';
    cand->found_by = ref->found_by;
    one = &(*m)[*nm];
    /* Most candidates are housemates with another name: they are dropped before the
     * address is compared. */
    graded = rv_check_score_graded(q, cand, one);
    if (c->keeping) {
        ref->kept = true;
        ref->kept_by = ref->found_by;
        ref->kept_at = graded ? (long)*nm : -1;
    }
    if (graded)
        (*nm)++;
    return 0;
}

static int cmp_span_order(const void *x, const void *y)
{
    const struct span_order *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Reads the validity spans of refs[from..n), in ascending id order: the records of one
 * household or street sit side by side in the store, and the reader finds one on the page
 * of the one before without a descent from the root. */
static int read_spans(struct rv_check_ctx *c, const struct rv_check_query *q, struct cand_ref *refs,
                      size_t from, size_t n)
{
    struct span_order *o;
    int err;

    if (n - from > c->order_cap) {
        size_t cap = c->order_cap != 0 ? c->order_cap : 64;
        while (cap < n - from)
            cap *= 2;
        if ((o = realloc(c->order, cap * sizeof(*o))) == NULL)
            return RV_ENOMEM;
        c->order = o;
        c->order_cap = cap;
    }
    o = c->order;
    for (size_t i = from; i < n; i++) {
        o[i - from].id = refs[i].id;
        o[i - from].i = i;
    }
    if (n - from > 1)
        qsort(o, n - from, sizeof(*o), cmp_span_order);
    for (size_t k = 0; k < n - from; k++) {
        struct cand_ref *r = &refs[o[k].i];
        if ((err = rv_vault_reader_span(c->r, r->id, &r->from, &r->to)) != 0)
            return err;
        r->in_force = r->from < q->win_to && r->to > q->win_from;
    }
    return 0;
}

/* Reads the spans of refs[spans_from..n) (those before were read already) and orders
 * refs[from..n): versions in force at the date first,
 * then those more searches agree on. Of those that fit the budget, decrypts and scores the
 * ones in force, appending graded ones to m, and marks the others deferred: they can change
 * the answer only when nothing in force matches (score_deferred). */
static int score_refs(struct rv_check_ctx *c, const struct rv_check_query *q, struct cand_ref *refs,
                      size_t from, size_t spans_from, size_t n, size_t *budget,
                      struct rv_check_match **m, size_t *nm, size_t *mcap)
{
    int err = 0;

    if ((err = read_spans(c, q, refs, spans_from, n)) != 0)
        return err;
    for (size_t i = from; i < n; i++)
        refs[i].deferred = false;
    if (n - from > 1) {
        qsort(refs + from, n - from, sizeof(*refs), cmp_ref);
        if ((err = slots_index(c, refs, n)) != 0) /* positions moved */
            return err;
    }
    if (n - from > *budget)
        n = from + *budget;
    *budget -= n - from;
    for (size_t i = from; i < n && err == 0; i++) {
        if (!refs[i].in_force)
            refs[i].deferred = true;
        else
            err = score_one(c, q, &refs[i], m, nm, mcap);
    }
    return err;
}

/* Scores the deferred candidates (versions not in force), when nothing in force matched:
 * the answer then shows those that match, with the dates that rule them out. */
static int score_deferred(struct rv_check_ctx *c, const struct rv_check_query *q,
                          struct cand_ref *refs, size_t n, struct rv_check_match **m, size_t *nm,
                          size_t *mcap)
{
    int err = 0;

    for (size_t i = 0; i < *nm; i++)
        if ((*m)[i].in_force)
            return 0;
    for (size_t i = 0; i < n && err == 0; i++)
        if (refs[i].deferred)
            err = score_one(c, q, &refs[i], m, nm, mcap);
    return err;
}

/* True when entries with no postcode can earn no more than possible against q once a
 * strong match in force is found, except for a full name with a rare surname (rare_surname):
 * the donor gave no street address, so an entry's address lines, without a postcode, never
 * agree. */
static bool may_settle(const struct rv_check_query *q)
{
    return q->has_postcode && !q->has_address;
}

/* A full name abroad with this surname would be strong: one rare enough to carry the name
 * alone. Only the surname as written and the reading with the last forename joined to it
 * can agree exactly, which a full name needs; an entry bearing either is in that surname's
 * own list, whatever other lists (parts, swapped) it is in. */
static bool rare_surname(const char *surname)
{
    return surname[0] != '\0' && rv_check_surname_weight(surname) >= RV_CHECK_RARE_BITS;
}

int rv_check_run(struct rv_check_ctx *c, const struct rv_check_query *q,
                 struct rv_check_answer *out)
{
    struct rv_index_query iq;
    struct cand_ref *refs = c->refs;
    struct rv_check_match *m = c->m;
    size_t n = 0, cap = c->refs_cap, nm = 0, mcap = c->mcap, scored, budget = DECRYPT_MAX;
    size_t spans = 0; /* refs whose spans were read */
    bool strong = false, settled = false;
    int err = 0;

    memset(out, 0, sizeof(*out));
    memset(&iq, 0, sizeof(iq));
    slots_clear(c);
    rv_check_name_probe_init(q, &c->probe);
    if ((err = rv_vault_reader_begin(c->r)) != 0)
        return err;
    if ((err = refresh(c)) != 0)
        goto out;
    if (q->has_postcode) {
        if ((err = search_surname(c, q, q->key.surname, q->key.initial, &refs, &n, &cap)) != 0)
            goto out;
        if (q->alt.surname[0] != '\0' &&
            (err = search_surname(c, q, q->alt.surname, q->alt.initial, &refs, &n, &cap)) != 0)
            goto out;
        iq.postcode = q->postcode.canon;
        if (q->has_address && q->addr.first_line[0] != '\0') {
            iq.first_line = q->addr.first_line;
            if ((err = search(c, RV_IDX_ADDRESS_POSTCODE, &iq, RV_CHECK_BY_LINE_POSTCODE, &refs, &n,
                              &cap)) != 0)
                goto out;
        }
        /* Forename and surname the other way round: the first forename as the surname. */
        if (q->swap.surname[0] != '\0') {
            iq.surname = q->swap.surname;
            if ((err = search(c, RV_IDX_SURNAME_POSTCODE, &iq, RV_CHECK_BY_SWAPPED, &refs, &n,
                              &cap)) != 0)
                goto out;
        }
        if ((err = search_parts(c, q, false, &refs, &n, &cap)) != 0)
            goto out;
    }
    /* Entries with no postcode (overseas electors) are found by surname alone, but without a
     * street address from the donor they can only be possible matches, unless a full name
     * with a rare surname makes them strong: when the postcode already gives a strong match
     * in force, only the lists of a rare surname as written or joined can change the
     * verdict, the grade or the entries shown, and only those are read. Whenever lists are
     * read, what was scored is set aside and every candidate is scored together, as though
     * the postcode's candidates had not been scored first. */
    if (may_settle(q)) {
        size_t b = budget;
        c->keeping = true;
        err = score_refs(c, q, refs, 0, 0, n, &b, &m, &nm, &mcap);
        c->keeping = false;
        if (err != 0)
            goto out;
        for (size_t i = 0; i < nm && !settled; i++)
            settled = m[i].in_force && m[i].grade >= RV_GRADE_STRONG;
        spans = n;
    }
    if (!settled || rare_surname(q->key.surname) || rare_surname(q->alt.surname)) {
        size_t before = n;
        if (settled) {
            if ((rare_surname(q->key.surname) &&
                 (err = search_no_postcode(c, q, q->key.surname, RV_CHECK_BY_SURNAME, &refs, &n,
                                           &cap)) != 0) ||
                (rare_surname(q->alt.surname) &&
                 (err = search_no_postcode(c, q, q->alt.surname, RV_CHECK_BY_SURNAME, &refs, &n,
                                           &cap)) != 0))
                goto out;
        } else if ((err = search_no_postcode(c, q, q->key.surname, RV_CHECK_BY_SURNAME, &refs, &n,
                                             &cap)) != 0 ||
                   (err = search_no_postcode(c, q, q->alt.surname, RV_CHECK_BY_SURNAME, &refs, &n,
                                             &cap)) != 0 ||
                   (err = search_no_postcode(c, q, q->swap.surname, RV_CHECK_BY_SWAPPED, &refs, &n,
                                             &cap)) != 0 ||
                   (err = search_parts(c, q, true, &refs, &n, &cap)) != 0) {
            goto out;
        }
        if (!settled || n > before) {
            if (nm > 0) {
                /* Those grades are kept for the candidates scored again (score_one). */
                struct rv_check_match *k = c->kept;
                size_t kc = c->kcap;
                c->kept = m;
                c->kcap = mcap;
                c->nkept = nm < mcap ? nm + 1 : mcap;
                m = k;
                mcap = kc;
                nm = 0;
            }
            if ((err = score_refs(c, q, refs, 0, spans, n, &budget, &m, &nm, &mcap)) != 0)
                goto out;
        }
    }

    /* Nothing in force on the donor's surname: look again for a surname mistyped. */
    /* A match in force on the donor's own surname means the surname was written right. */
    for (size_t i = 0; i < nm; i++)
        strong |= m[i].in_force && (m[i].grade >= RV_GRADE_STRONG || m[i].sn == RV_SN_EXACT);
    if (!strong) {
        budget = DECRYPT_MAX;
        scored = n;
        if ((err = search_typos(c, q, &refs, &n, &cap)) != 0 ||
            (err = score_refs(c, q, refs, scored, scored, n, &budget, &m, &nm, &mcap)) != 0)
            goto out;
    }
    /* Still nothing in force: the donor may have moved within the area. */
    {
        bool any = false;
        for (size_t i = 0; i < nm; i++)
            any |= m[i].in_force;
        if (!any) {
            budget = DECRYPT_MAX;
            scored = n;
            if ((err = search_nearby(c, q, &refs, &n, &cap)) != 0 ||
                (err = score_refs(c, q, refs, scored, scored, n, &budget, &m, &nm, &mcap)) != 0)
                goto out;
        }
    }
    if ((err = score_deferred(c, q, refs, n, &m, &nm, &mcap)) != 0)
        goto out;
    err = rv_check_decide(q, m, nm, out);
    /* Only the entries the answer shows are labelled with their edition. */
    for (size_t i = 0; err == 0 && i < out->nmatches; i++) {
        struct rv_check_match *s = &out->matches[i];
        bool in_force = s->cand.from < q->win_to && s->cand.to > q->win_from;
        edition_label(c, s->cand.elector.area,
                      in_force ? (q->bequest ? q->win_to - 1 : q->date) : s->cand.from,
                      s->cand.edition, sizeof(s->cand.edition));
    }
out:
    rv_vault_reader_end(c->r);
    if (m != NULL)
        sodium_memzero(m, (nm < mcap ? nm + 1 : mcap) * sizeof(*m));
    if (c->fetched) { /* register data passed through them */
        sodium_memzero(c->ver, sizeof(*c->ver));
        sodium_memzero(c->cand, sizeof(*c->cand));
        c->fetched = false;
    }
    if (c->nkept > 0) {
        sodium_memzero(c->kept, c->nkept * sizeof(*c->kept));
        c->nkept = 0;
    }
    if (c->probe_q != NULL) {
        sodium_memzero(&c->probe, sizeof(c->probe));
        c->probe_q = NULL;
    }
    c->refs = refs;
    c->refs_cap = cap;
    c->m = m;
    c->mcap = mcap;
    return err;
}

struct many {
    const struct rv_check_query *const *qs;
    struct rv_check_answer *out;
    size_t n;
    atomic_size_t next; /* the next query to take */
    atomic_int err;     /* the first failure, or 0 */
    unsigned helpers;   /* how many of the pool's threads take part */
};

/* Takes queries one at a time until none is left or a check failed: the cost of a check
 * varies tenfold, so fixed shares would leave one thread waiting. */
static void work(struct many *m, struct rv_check_ctx *c)
{
    size_t i;

    while (atomic_load(&m->err) == 0 && (i = atomic_fetch_add(&m->next, 1)) < m->n) {
        int err = rv_check_run(c, m->qs[i], &m->out[i]);
        if (err != 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&m->err, &zero, err);
        }
    }
}

/* The helpers' threads, started at the first rv_check_run_many that needs them and kept
 * until the context closes or its thread count changes: a batch hands its checks over chunk
 * by chunk, and starting threads for every chunk cost more than the smallest chunks'
 * checks. Each thread waits for a new job (gen moves on), works on it with its own
 * context, and reports when done. */
struct pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned nthreads;
    unsigned long gen; /* the current job's number */
    struct many *job;
    unsigned busy; /* threads not yet done with the current job */
    bool stop;
    struct pool_thread {
        struct pool *p;
        struct rv_check_ctx *c;
        unsigned index;
        pthread_t tid;
    } t[RV_CHECK_THREADS_MAX];
};

static void *pool_main(void *arg)
{
    struct pool_thread *t = arg;
    struct pool *p = t->p;
    unsigned long seen = 0;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        if (t->index < p->job->helpers) {
            struct many *m = p->job;
            pthread_mutex_unlock(&p->mu);
            work(m, t->c);
            pthread_mutex_lock(&p->mu);
        }
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stops and frees the pool (waiting for its threads); the helpers' contexts stay open. */
static void pool_stop(struct rv_check_ctx *c)
{
    struct pool *p = c->pool;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->t[i].tid, NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->mu);
    free(p);
    c->pool = NULL;
}

/* Starts the pool: a thread for each helper whose context opens (a helper that cannot open
 * its context, for want of memory or of a reader slot in the store, or whose thread cannot
 * start, leaves its share to the others: the answers are the same). */
static int pool_start(struct rv_check_ctx *c)
{
    struct pool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return RV_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return RV_ENOMEM;
    }
    if (pthread_cond_init(&p->go, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return RV_ENOMEM;
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->go);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return RV_ENOMEM;
    }
    c->pool = p;
    for (unsigned i = 1; i < c->threads; i++) {
        struct pool_thread *t = &p->t[p->nthreads];
        if (c->helpers[i - 1] == NULL && rv_check_ctx_open(c->v, &c->helpers[i - 1]) != 0)
            break;
        t->p = p;
        t->c = c->helpers[i - 1];
        t->index = p->nthreads;
        if (pthread_create(&t->tid, NULL, pool_main, t) != 0)
            break;
        p->nthreads++;
    }
    return 0;
}

int rv_check_ctx_set_threads(struct rv_check_ctx *c, unsigned n)
{
    struct rv_check_ctx **h;

    if (n == 0 || n > RV_CHECK_THREADS_MAX)
        return RV_EINVAL;
    if (n == c->threads)
        return 0;
    pool_stop(c); /* started again, with the new count, at the next batch */
    /* Helpers beyond the new count are closed; new ones open at the next batch. */
    if (c->helpers != NULL)
        for (unsigned i = n - 1; i + 1 < c->threads; i++)
            rv_check_ctx_close(c->helpers[i]);
    if (n == 1) {
        free(c->helpers);
        c->helpers = NULL;
        c->threads = 1;
        return 0;
    }
    h = realloc(c->helpers, (n - 1) * sizeof(*h));
    if (h == NULL) {
        if (c->threads > n)
            c->threads = n; /* the closed helpers are gone either way */
        return RV_ENOMEM;
    }
    for (unsigned i = c->helpers != NULL ? c->threads - 1 : 0; i < n - 1; i++)
        h[i] = NULL;
    c->helpers = h;
    c->threads = n;
    return 0;
}

int rv_check_run_many(struct rv_check_ctx *c, const struct rv_check_query *const *qs, size_t n,
                      struct rv_check_answer *out)
{
    struct many m;
    unsigned nt = 1;
    int err = 0;

    if (n == 0)
        return 0;
    memset(out, 0, n * sizeof(*out));
    m.qs = qs;
    m.out = out;
    m.n = n;
    m.helpers = 0;
    atomic_init(&m.next, 0);
    atomic_init(&m.err, 0);
    /* Helpers are worth waking only with a few checks each. */
    if (c->threads > 1 && n >= 8)
        nt = c->threads < n / 4 ? c->threads : (unsigned)(n / 4);
    if (nt > 1 && c->pool == NULL && (err = pool_start(c)) != 0)
        return err;
    if (nt > 1 && c->pool->nthreads > 0) {
        struct pool *p = c->pool;
        m.helpers = nt - 1 < p->nthreads ? nt - 1 : p->nthreads;
        pthread_mutex_lock(&p->mu);
        p->job = &m;
        p->busy = p->nthreads;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    work(&m, c);
    if (m.helpers > 0) {
        struct pool *p = c->pool;
        pthread_mutex_lock(&p->mu);
        while (p->busy > 0)
            pthread_cond_wait(&p->done, &p->mu);
        p->job = NULL;
        pthread_mutex_unlock(&p->mu);
    }
    err = atomic_load(&m.err);
    if (err != 0)
        for (size_t i = 0; i < n; i++) {
            rv_check_answer_free(&out[i]);
            memset(&out[i], 0, sizeof(out[i]));
        }
    return err;
}
