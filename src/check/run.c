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
 * The register edition in force at the date is worked out once per context from the
 * vault's per-file statistics (which hold no personal data).
 */
#include "check/internal.h"
#include "vault/vault.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most ids one search may return, and most versions one query may decrypt. */
#define SEARCH_MAX  4096
#define DECRYPT_MAX 256

struct file_row {
    char area[16];
    enum rv_file_kind kind;
    rv_date date;      /* edition date (for alterations, the edition they amend) */
    rv_date eff_first; /* alterations: first and last dates a row took effect */
    rv_date eff_last;
};

struct rv_check_ctx {
    struct rv_vault *v;
    struct file_row *files;
    size_t nfiles, cap;
    uint64_t *ids; /* scratch for searches */
};

struct cand_ref {
    uint64_t id;
    unsigned found_by;
    rv_date from, to;
    bool in_force;
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

int rv_check_ctx_open(struct rv_vault *v, struct rv_check_ctx **out)
{
    struct rv_check_ctx *c = calloc(1, sizeof(*c));
    int err;

    *out = NULL;
    if (c == NULL)
        return RV_ENOMEM;
    c->v = v;
    if ((c->ids = calloc(SEARCH_MAX, sizeof(*c->ids))) == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    if ((err = rv_vault_stats(v, on_file, c)) != 0)
        goto out;
    if ((err = rv_check_tables_init()) != 0)
        goto out;
    *out = c;
    c = NULL;
out:
    rv_check_ctx_close(c);
    return err;
}

void rv_check_ctx_close(struct rv_check_ctx *c)
{
    if (c == NULL)
        return;
    free(c->files);
    free(c->ids);
    free(c);
}

/* "2025-12-01", or "2025-12-01 + alterations to 2026-02-01": the revised register of the
 * area in force at date d, and the latest date up to d on which alterations to it took
 * effect. */
static void edition_label(const struct rv_check_ctx *c, const char *area, rv_date d, char *buf,
                          size_t cap)
{
    rv_date ed = RV_DATE_NONE, alt = RV_DATE_NONE;
    char a[11], b[11];

    for (size_t i = 0; i < c->nfiles; i++) {
        const struct file_row *f = &c->files[i];
        if (strcmp(f->area, area) != 0 || f->date > d)
            continue;
        if (f->kind == RV_FILE_EDITION && (ed == RV_DATE_NONE || f->date > ed))
            ed = f->date;
    }
    for (size_t i = 0; i < c->nfiles && ed != RV_DATE_NONE; i++) {
        const struct file_row *f = &c->files[i];
        rv_date upto;
        if (strcmp(f->area, area) != 0 || f->kind != RV_FILE_ALTERATIONS || f->date != ed ||
            f->eff_first == RV_DATE_NONE || f->eff_first > d)
            continue;
        upto = f->eff_last < d ? f->eff_last : d;
        if (alt == RV_DATE_NONE || upto > alt)
            alt = upto;
    }
    if (ed == RV_DATE_NONE)
        snprintf(buf, cap, "none in force");
    else if (alt == RV_DATE_NONE)
        snprintf(buf, cap, "%s", rv_date_format(ed, a));
    else
        snprintf(buf, cap, "%s + alterations to %s", rv_date_format(ed, a), rv_date_format(alt, b));
}

/* Adds the ids one search finds to refs, merging found_by bits. */
static int search(struct rv_check_ctx *c, enum rv_index family, const struct rv_index_query *iq,
                  unsigned bit, struct cand_ref **refs, size_t *n, size_t *cap)
{
    size_t found = 0;
    int err = rv_vault_lookup(c->v, family, iq, c->ids, SEARCH_MAX, &found);

    if (err == RV_EINVAL) /* the query lacks a field this family needs */
        return 0;
    if (err != 0)
        return err;
    if (found > SEARCH_MAX)
        found = SEARCH_MAX;
    for (size_t i = 0; i < found; i++) {
        size_t j;
        for (j = 0; j < *n && (*refs)[j].id != c->ids[i]; j++)
            ;
        if (j < *n) {
            (*refs)[j].found_by |= bit;
            continue;
        }
        if (*n == *cap) {
            size_t nc = *cap != 0 ? *cap * 2 : 64;
            struct cand_ref *r = realloc(*refs, nc * sizeof(*r));
            if (r == NULL)
                return RV_ENOMEM;
            *refs = r;
            *cap = nc;
        }
        (*refs)[*n].id = c->ids[i];
        (*refs)[*n].found_by = bit;
        (*n)++;
    }
    return 0;
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
    return a->id < b->id ? -1 : a->id > b->id;
}

int rv_check_run(struct rv_check_ctx *c, const struct rv_check_query *q,
                 struct rv_check_answer *out)
{
    struct rv_index_query iq;
    struct cand_ref *refs = NULL;
    struct rv_check_match *m = NULL;
    struct rv_version *ver = NULL;
    struct rv_check_candidate *cand = NULL;
    size_t n = 0, cap = 0, nm = 0;
    char swapped[RV_NAME_MAX];
    int err = 0;

    memset(out, 0, sizeof(*out));
    memset(&iq, 0, sizeof(iq));
    iq.surname = q->key.surname;
    iq.initial = q->key.initial;
    iq.postcode = q->has_postcode ? q->postcode.canon : NULL;
    iq.first_line = q->has_address ? q->addr.first_line : NULL;

    if (q->has_postcode) {
        if ((err = search(c, RV_IDX_SURNAME_POSTCODE, &iq, RV_CHECK_BY_SURNAME_POSTCODE, &refs, &n,
                          &cap)) != 0 ||
            (err = search(c, RV_IDX_INITIAL_SURNAME_OUTWARD, &iq, RV_CHECK_BY_INITIAL_OUTWARD,
                          &refs, &n, &cap)) != 0 ||
            (err = search(c, RV_IDX_PHONETIC_POSTCODE, &iq, RV_CHECK_BY_PHONETIC_POSTCODE, &refs,
                          &n, &cap)) != 0)
            goto out;
        if (q->has_address && q->addr.first_line[0] != '\0' &&
            (err = search(c, RV_IDX_ADDRESS_POSTCODE, &iq, RV_CHECK_BY_LINE_POSTCODE, &refs, &n,
                          &cap)) != 0)
            goto out;
        /* Forename and surname the other way round: the first forename as the surname. */
        if (q->key.first[0] != '\0' && q->key.first[1] != '\0') {
            size_t k = 0;
            for (const char *p = q->key.first; *p != '\0' && k + 1 < sizeof(swapped); p++)
                if (*p != ' ' && *p != '-')
                    swapped[k++] = *p;
            swapped[k] = '\0';
            iq.surname = swapped;
            err = search(c, RV_IDX_SURNAME_POSTCODE, &iq, RV_CHECK_BY_SWAPPED, &refs, &n, &cap);
            iq.surname = q->key.surname;
            if (err != 0)
                goto out;
        }
    }
    /* Entries with no postcode (overseas electors) are found by surname alone. */
    if ((err = search(c, RV_IDX_SURNAME, &iq, RV_CHECK_BY_SURNAME, &refs, &n, &cap)) != 0)
        goto out;

    /* Spans first (no decryption), so versions in force are decrypted before the others. */
    for (size_t i = 0; i < n; i++) {
        if ((err = rv_vault_span(c->v, refs[i].id, &refs[i].from, &refs[i].to)) != 0)
            goto out;
        refs[i].in_force = refs[i].from < q->win_to && refs[i].to > q->win_from;
    }
    if (n > 0)
        qsort(refs, n, sizeof(*refs), cmp_ref);
    if (n > DECRYPT_MAX)
        n = DECRYPT_MAX;

    if (n > 0) {
        m = calloc(n, sizeof(*m));
        ver = calloc(1, sizeof(*ver));
        cand = calloc(1, sizeof(*cand));
        if (m == NULL || ver == NULL || cand == NULL) {
            err = RV_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((err = rv_vault_fetch(c->v, refs[i].id, ver)) != 0)
            goto out;
        memset(cand, 0, sizeof(*cand));
        cand->elector = ver->e;
        cand->from = ver->from;
        cand->to = ver->to;
        cand->found_by = refs[i].found_by;
        edition_label(c, ver->e.area,
                      refs[i].in_force ? (q->bequest ? q->win_to - 1 : q->date) : ver->from,
                      cand->edition, sizeof(cand->edition));
        rv_check_score(q, cand, &m[nm]);
        if (m[nm].grade != RV_GRADE_NONE)
            nm++;
        else
            sodium_memzero(&m[nm], sizeof(m[nm]));
        sodium_memzero(ver, sizeof(*ver));
        sodium_memzero(cand, sizeof(*cand));
    }
    err = rv_check_decide(q, m, nm, out);
out:
    if (m != NULL) {
        sodium_memzero(m, n * sizeof(*m));
        free(m);
    }
    if (ver != NULL) {
        sodium_memzero(ver, sizeof(*ver));
        free(ver);
    }
    if (cand != NULL) {
        sodium_memzero(cand, sizeof(*cand));
        free(cand);
    }
    free(refs);
    sodium_memzero(swapped, sizeof(swapped));
    return err;
}
