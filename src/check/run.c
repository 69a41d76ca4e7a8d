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

/* Most ids one search may return, and most versions one query may decrypt in each stage
 * (the first searches, the typo search, the move search). */
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
    /* Which candidate of the current query holds each record id: open addressing, a slot
     * being (generation << 32) | (index + 1), so that a new query or a re-sort starts an
     * empty table by bumping the generation. Holds ids only, no register data. */
    uint64_t *slot;
    unsigned slot_bits;
    uint32_t gen;
};

#define SLOT_BITS_MIN 10

struct cand_ref {
    uint64_t id;
    unsigned found_by;
    unsigned hits; /* how many searches found it */
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
    c->slot_bits = SLOT_BITS_MIN;
    if ((c->ids = calloc(SEARCH_MAX, sizeof(*c->ids))) == NULL ||
        (c->slot = calloc((size_t)1 << c->slot_bits, sizeof(*c->slot))) == NULL) {
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
    free(c->slot);
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
        size_t h;
        if (2 * (*n + 1) > ((size_t)1 << c->slot_bits) && (err = slots_index(c, *refs, *n)) != 0)
            return err;
        h = slot_of(c, *refs, c->ids[i]);
        if ((uint32_t)(c->slot[h] >> 32) == c->gen) {
            struct cand_ref *r = &(*refs)[(uint32_t)c->slot[h] - 1];
            r->found_by |= bit;
            r->hits++;
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
        (*refs)[*n].hits = 1;
        (*n)++;
        c->slot[h] = (uint64_t)c->gen << 32 | (uint64_t)*n;
    }
    return 0;
}

/* The order among candidates alike in being in force or not: more searches agreeing first. */
static int cmp_rank(const void *x, const void *y)
{
    const struct cand_ref *a = x, *b = y;
    int pa = __builtin_popcount(a->found_by), pb = __builtin_popcount(b->found_by);
    if (pa != pb)
        return pa > pb ? -1 : 1;
    if (a->hits != b->hits)
        return a->hits > b->hits ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
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
        (err = search(c, RV_IDX_INITIAL_SURNAME_OUTWARD, &iq, RV_CHECK_BY_INITIAL_OUTWARD, refs, n,
                      cap)) != 0 ||
        (err = search(c, RV_IDX_PHONETIC_POSTCODE, &iq, RV_CHECK_BY_PHONETIC_POSTCODE, refs, n,
                      cap)) != 0)
        return err;
    return 0;
}

/* One-letter variants of a surname (deletions, transpositions, substitutions, insertions),
 * reduced to their distinct Double Metaphone codes, each searched with the postcode: a
 * donor's typo in the surname changes its phonetic code, and this finds the entry whose
 * code the typo broke. Only run when the first searches found nothing strong. */
static int search_variants(struct rv_check_ctx *c, const struct rv_check_query *q,
                           struct cand_ref **refs, size_t *n, size_t *cap)
{
    const char *s = q->key.surname;
    size_t len = strlen(s), ncodes = 0;
    char codes[64][RV_PHONETIC_MAX], v[40], prim[RV_PHONETIC_MAX], alt[RV_PHONETIC_MAX];
    struct rv_index_query iq;
    int err = 0;

    if (len < 3 || len > 30 || !q->has_postcode)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return 0;
    rv_double_metaphone(s, codes[0], alt);
    ncodes = 1;
    memset(&iq, 0, sizeof(iq));
    iq.postcode = q->postcode.canon;
    /* kind 0 deletion, 1 transposition, 2 substitution, 3 insertion */
    for (int kind = 0; kind < 4 && err == 0; kind++)
        for (size_t i = 0; i <= len && err == 0; i++)
            for (char ch = 'a'; ch <= 'z' && err == 0; ch++) {
                size_t k;
                bool seen = false;
                if ((kind < 3 && i == len) || (kind == 1 && i + 1 >= len) ||
                    (kind < 2 && ch != 'a') || (kind == 2 && s[i] == ch))
                    continue;
                if (kind == 0) {
                    memcpy(v, s, i);
                    memcpy(v + i, s + i + 1, len - i);
                } else if (kind == 1) {
                    memcpy(v, s, len + 1);
                    v[i] = s[i + 1];
                    v[i + 1] = s[i];
                } else if (kind == 2) {
                    memcpy(v, s, len + 1);
                    v[i] = ch;
                } else {
                    memcpy(v, s, i);
                    v[i] = ch;
                    memcpy(v + i + 1, s + i, len - i + 1);
                }
                rv_double_metaphone(v, prim, alt);
                if (prim[0] == '\0')
                    continue;
                for (k = 0; k < ncodes && !seen; k++)
                    seen = strcmp(codes[k], prim) == 0;
                if (seen || ncodes == sizeof(codes) / sizeof(codes[0]))
                    continue;
                memcpy(codes[ncodes++], prim, sizeof(prim));
                iq.surname = v;
                err = search(c, RV_IDX_PHONETIC_POSTCODE, &iq, RV_CHECK_BY_VARIANT, refs, n, cap);
            }
    sodium_memzero(v, sizeof(v));
    return err;
}

/* The donor may have moved after the register last recorded them: initial + surname in the
 * other districts of the donor's postcode area (LS1 ... LS99). Only run when nothing at all
 * was found in force; the matches it brings are never better than possible. */
static int search_nearby(struct rv_check_ctx *c, const struct rv_check_query *q,
                         struct cand_ref **refs, size_t *n, size_t *cap)
{
    struct rv_index_query iq;
    char area[9], own[9], pc[16];
    int err = 0;

    if (!q->has_postcode || q->key.initial == 0)
        return 0;
    rv_postcode_area(&q->postcode, area);
    rv_postcode_district(&q->postcode, own);
    memset(&iq, 0, sizeof(iq));
    iq.surname = q->key.surname;
    iq.initial = q->key.initial;
    iq.postcode = pc;
    for (int d = 0; d < 100 && err == 0; d++) {
        snprintf(pc, sizeof(pc), "%s%d 1AA", area, d);
        if (strncmp(pc, own, strlen(own)) == 0 && pc[strlen(own)] == ' ')
            continue; /* the donor's own district was searched already */
        err = search(c, RV_IDX_INITIAL_SURNAME_OUTWARD, &iq, RV_CHECK_BY_NEARBY, refs, n, cap);
    }
    return err;
}

/* Reads spans for refs[from..n), then decrypts and scores those that fit the budget,
 * appending graded ones to m. */
static int score_refs(struct rv_check_ctx *c, const struct rv_check_query *q, struct cand_ref *refs,
                      size_t from, size_t n, size_t *budget, struct rv_check_match **m, size_t *nm,
                      size_t *mcap)
{
    struct rv_version *ver = NULL;
    struct rv_check_candidate *cand = NULL;
    int err = 0;

    /* Versions in force are decrypted first, then those most searches agree on. The spans
     * are read only when the budget cannot take every candidate (otherwise all are
     * decrypted anyway, and the fetch gives each one's span), and then in rank order only
     * until the budget is filled with versions in force: the rest could not get in. */
    for (size_t i = from; i < n; i++)
        refs[i].in_force = false;
    if (n - from > *budget) {
        size_t in_force = 0;
        qsort(refs + from, n - from, sizeof(*refs), cmp_rank);
        for (size_t i = from; i < n && in_force < *budget; i++) {
            if ((err = rv_vault_span(c->v, refs[i].id, &refs[i].from, &refs[i].to)) != 0)
                return err;
            refs[i].in_force = refs[i].from < q->win_to && refs[i].to > q->win_from;
            in_force += refs[i].in_force;
        }
    }
    if (n > from) {
        qsort(refs + from, n - from, sizeof(*refs), cmp_ref);
        if ((err = slots_index(c, refs, n)) != 0) /* positions moved */
            return err;
    }
    if (n - from > *budget)
        n = from + *budget;
    *budget -= n - from;
    if (n == from)
        return 0;
    ver = calloc(1, sizeof(*ver));
    cand = calloc(1, sizeof(*cand));
    if (ver == NULL || cand == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    for (size_t i = from; i < n; i++) {
        struct rv_check_match one;
        if ((err = rv_vault_fetch(c->v, refs[i].id, ver)) != 0)
            goto out;
        /* Every field is overwritten for each candidate (fetch clears ver first), so the
         * plaintext is wiped once, on the way out. */
        cand->elector = ver->e;
        cand->from = ver->from;
        cand->to = ver->to;
        cand->edition[0] = '\0';
        cand->found_by = refs[i].found_by;
        /* Most candidates are coincidences of the truncated indexes or housemates with
         * another name: they are dropped before the address is compared. */
        if (rv_check_score_graded(q, cand, &one)) {
            bool in_force = ver->from < q->win_to && ver->to > q->win_from;
            edition_label(c, ver->e.area,
                          in_force ? (q->bequest ? q->win_to - 1 : q->date) : ver->from,
                          one.cand.edition, sizeof(one.cand.edition));
            if (*nm == *mcap) {
                size_t ncap = *mcap != 0 ? *mcap * 2 : 16;
                struct rv_check_match *nmv = calloc(ncap, sizeof(*nmv));
                if (nmv == NULL) {
                    sodium_memzero(&one, sizeof(one));
                    err = RV_ENOMEM;
                    goto out;
                }
                if (*m != NULL) {
                    memcpy(nmv, *m, *nm * sizeof(*nmv));
                    sodium_memzero(*m, *mcap * sizeof(**m));
                    free(*m);
                }
                *m = nmv;
                *mcap = ncap;
            }
            (*m)[(*nm)++] = one;
            sodium_memzero(&one, sizeof(one));
        }
    }
out:
    if (ver != NULL) {
        sodium_memzero(ver, sizeof(*ver));
        free(ver);
    }
    if (cand != NULL) {
        sodium_memzero(cand, sizeof(*cand));
        free(cand);
    }
    return err;
}

int rv_check_run(struct rv_check_ctx *c, const struct rv_check_query *q,
                 struct rv_check_answer *out)
{
    struct rv_index_query iq;
    struct cand_ref *refs = NULL;
    struct rv_check_match *m = NULL;
    size_t n = 0, cap = 0, nm = 0, mcap = 0, scored, budget = DECRYPT_MAX;
    bool strong = false;
    int err = 0;

    memset(out, 0, sizeof(*out));
    memset(&iq, 0, sizeof(iq));
    slots_clear(c);
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
    }
    /* Entries with no postcode (overseas electors) are found by surname alone. */
    memset(&iq, 0, sizeof(iq));
    iq.surname = q->key.surname;
    if ((err = search(c, RV_IDX_SURNAME, &iq, RV_CHECK_BY_SURNAME, &refs, &n, &cap)) != 0)
        goto out;
    if (q->alt.surname[0] != '\0') {
        iq.surname = q->alt.surname;
        if ((err = search(c, RV_IDX_SURNAME, &iq, RV_CHECK_BY_SURNAME, &refs, &n, &cap)) != 0)
            goto out;
    }
    if (q->swap.surname[0] != '\0') {
        iq.surname = q->swap.surname;
        if ((err = search(c, RV_IDX_SURNAME, &iq, RV_CHECK_BY_SWAPPED, &refs, &n, &cap)) != 0)
            goto out;
    }
    if ((err = score_refs(c, q, refs, 0, n, &budget, &m, &nm, &mcap)) != 0)
        goto out;

    /* Nothing in force on the donor's surname: look again for a surname mistyped. */
    /* A match in force on the donor's own surname means the surname was written right. */
    for (size_t i = 0; i < nm; i++)
        strong |= m[i].in_force && (m[i].grade >= RV_GRADE_STRONG || m[i].sn == RV_SN_EXACT);
    if (!strong) {
        budget = DECRYPT_MAX;
        scored = n;
        if ((err = search_variants(c, q, &refs, &n, &cap)) != 0 ||
            (err = score_refs(c, q, refs, scored, n, &budget, &m, &nm, &mcap)) != 0)
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
                (err = score_refs(c, q, refs, scored, n, &budget, &m, &nm, &mcap)) != 0)
                goto out;
        }
    }
    err = rv_check_decide(q, m, nm, out);
out:
    if (m != NULL) {
        sodium_memzero(m, mcap * sizeof(*m));
        free(m);
    }
    free(refs);
    return err;
}
