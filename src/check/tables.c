/*
 * tables.c - the name tables the matcher consults: the nickname table (the US genealogy
 * table nicknames/names.csv plus the project's reviewed UK addendum, minus the addendum's
 * exclusions), the surname population shares (names/surnames.csv) that weigh a surname
 * agreement by rarity, and the set of known forenames that stops two real names one letter
 * apart (Jon, Joan) from passing as a typo.
 *
 * The tables are built once, on first use, from the data compiled into the binary, and
 * then only read, so lookups need no lock. Each is a sorted array searched by bisection.
 */
#include "check/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct edge {
    char *a;
    char *b;
};

struct share {
    char *name;
    double share; /* per cent */
};

static struct {
    int err;
    struct edge *edges; /* both directions, sorted by (a, b) */
    size_t nedges;
    char **known; /* known forenames, sorted, unique */
    size_t nknown;
    struct share *surnames; /* sorted by name */
    size_t nsurnames;
    char **male, **female; /* the given-name lists by sex, sorted */
    size_t nmale, nfemale;
} T;

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Share given to surnames not in the list: rarer than the rarest listed (0.03 %). */
#define RARE_SHARE 0.01

static int cmp_edge(const void *x, const void *y)
{
    const struct edge *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    return c != 0 ? c : strcmp(p->b, q->b);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int cmp_share(const void *x, const void *y)
{
    return strcmp(((const struct share *)x)->name, ((const struct share *)y)->name);
}

/* Splits the next line of a blob into up to max comma-separated fields, in place in line
 * (which the caller copied). Returns the number of fields. */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(f[i]);
        while (len > 0 && (f[i][len - 1] == '\r' || f[i][len - 1] == ' '))
            f[i][--len] = '\0';
    }
    return n;
}

/* Calls fn(fields, n, ctx) for each data line (the header is skipped). */
static int each_line(const char *blob_name, int (*fn)(char **, size_t, void *), void *ctx)
{
    const struct rv_blob *b = rv_data_find(blob_name);
    const char *p, *end;
    char line[512];
    char *f[4];
    int first = 1, err;

    if (b == NULL)
        return RV_ENOTFOUND;
    p = b->data;
    end = b->data + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (len < sizeof(line) && !first && len > 0) {
            memcpy(line, p, len);
            line[len] = '\0';
            if ((err = fn(f, split(line, f, 4), ctx)) != 0)
                return err;
        }
        first = 0;
        p += len + 1;
    }
    return 0;
}

static int fold_name(const char *s, char *out, size_t outsz)
{
    if (rv_fold(s, strlen(s), out, outsz) != 0 || out[0] == '\0')
        return -1;
    return 0;
}

/* ---- edges --------------------------------------------------------------------------- */

struct edge_build {
    struct edge *v;
    size_t n, cap;
    const struct edge *excl; /* sorted exclusions, or NULL while reading them */
    size_t nexcl;
    int pass_excl; /* 1 while collecting the addendum's exclusions */
};

static int push_edge(struct edge_build *eb, const char *a, const char *b)
{
    if (eb->n == eb->cap) {
        size_t cap = eb->cap != 0 ? eb->cap * 2 : 4096;
        struct edge *v = realloc(eb->v, cap * sizeof(*v));
        if (v == NULL)
            return RV_ENOMEM;
        eb->v = v;
        eb->cap = cap;
    }
    eb->v[eb->n].a = strdup(a);
    eb->v[eb->n].b = strdup(b);
    if (eb->v[eb->n].a == NULL || eb->v[eb->n].b == NULL) {
        free(eb->v[eb->n].a);
        free(eb->v[eb->n].b);
        return RV_ENOMEM;
    }
    eb->n++;
    return 0;
}

static bool excluded(const struct edge_build *eb, const char *a, const char *b)
{
    struct edge k = {(char *)a, (char *)b};
    if (eb->excl == NULL)
        return false;
    return bsearch(&k, eb->excl, eb->nexcl, sizeof(k), cmp_edge) != NULL;
}

static int on_nick_row(char **f, size_t n, void *ctx)
{
    struct edge_build *eb = ctx;
    char a[RV_NAME_MAX], b[RV_NAME_MAX];
    int err;

    if (n < 3 || fold_name(f[0], a, sizeof(a)) != 0 || fold_name(f[2], b, sizeof(b)) != 0 ||
        strcmp(a, b) == 0)
        return 0;
    if (eb->pass_excl) {
        if (strcmp(f[1], "not_nickname") != 0)
            return 0;
    } else {
        if (strcmp(f[1], "has_nickname") != 0 || excluded(eb, a, b))
            return 0;
    }
    if ((err = push_edge(eb, a, b)) != 0)
        return err;
    return push_edge(eb, b, a);
}

static void free_edges(struct edge *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].a);
        free(v[i].b);
    }
    free(v);
}

static int build_edges(void)
{
    struct edge_build ex = {0}, eb = {0};
    int err;

    ex.pass_excl = 1;
    if ((err = each_line("nicknames/uk-addendum.csv", on_nick_row, &ex)) != 0)
        goto out;
    qsort(ex.v, ex.n, sizeof(*ex.v), cmp_edge);
    eb.excl = ex.v;
    eb.nexcl = ex.n;
    if ((err = each_line("nicknames/names.csv", on_nick_row, &eb)) != 0)
        goto out;
    if ((err = each_line("nicknames/uk-addendum.csv", on_nick_row, &eb)) != 0)
        goto out;
    qsort(eb.v, eb.n, sizeof(*eb.v), cmp_edge);
    T.edges = eb.v;
    T.nedges = eb.n;
    eb.v = NULL;
    eb.n = 0;
out:
    free_edges(ex.v, ex.n);
    free_edges(eb.v, eb.n);
    return err;
}

/* ---- known forenames ----------------------------------------------------------------- */

struct str_build {
    char **v;
    size_t n, cap;
};

static int push_str(struct str_build *sb, const char *s)
{
    if (sb->n == sb->cap) {
        size_t cap = sb->cap != 0 ? sb->cap * 2 : 4096;
        char **v = realloc(sb->v, cap * sizeof(*v));
        if (v == NULL)
            return RV_ENOMEM;
        sb->v = v;
        sb->cap = cap;
    }
    if ((sb->v[sb->n] = strdup(s)) == NULL)
        return RV_ENOMEM;
    sb->n++;
    return 0;
}

static int on_first_name(char **f, size_t n, void *ctx)
{
    char a[RV_NAME_MAX];
    if (n < 1 || fold_name(f[0], a, sizeof(a)) != 0)
        return 0;
    return push_str(ctx, a);
}

static int build_list(const char *blob, char ***v, size_t *n)
{
    struct str_build sb = {0};
    int err;
    if ((err = each_line(blob, on_first_name, &sb)) != 0) {
        for (size_t i = 0; i < sb.n; i++)
            free(sb.v[i]);
        free(sb.v);
        return err;
    }
    qsort(sb.v, sb.n, sizeof(*sb.v), cmp_str);
    *v = sb.v;
    *n = sb.n;
    return 0;
}

static int build_known(void)
{
    struct str_build sb = {0};
    int err = 0;
    size_t w = 0;

    for (size_t i = 0; i < T.nedges; i++)
        if ((err = push_str(&sb, T.edges[i].a)) != 0)
            goto out;
    if ((err = each_line("names/first_names_male.csv", on_first_name, &sb)) != 0 ||
        (err = each_line("names/first_names_female.csv", on_first_name, &sb)) != 0)
        goto out;
    qsort(sb.v, sb.n, sizeof(*sb.v), cmp_str);
    for (size_t i = 0; i < sb.n; i++) {
        if (w > 0 && strcmp(sb.v[w - 1], sb.v[i]) == 0) {
            free(sb.v[i]);
            continue;
        }
        sb.v[w++] = sb.v[i];
    }
    T.known = sb.v;
    T.nknown = w;
    sb.v = NULL;
    sb.n = 0;
out:
    for (size_t i = 0; i < sb.n; i++)
        free(sb.v[i]);
    free(sb.v);
    return err;
}

/* ---- surnames ------------------------------------------------------------------------ */

struct share_build {
    struct share *v;
    size_t n, cap;
};

static int on_surname(char **f, size_t n, void *ctx)
{
    struct share_build *sb = ctx;
    struct rv_name nm;
    struct rv_name_key k;
    char *end = NULL;
    double share;

    if (n < 2)
        return 0;
    share = strtod(f[1], &end);
    if (end == f[1] || !(share > 0.0) || share > 100.0)
        return 0;
    if (rv_name_from_parts(f[0], "", &nm) != 0 || rv_name_key(&nm, &k) != 0 || k.surname[0] == 0)
        return 0;
    if (sb->n == sb->cap) {
        size_t cap = sb->cap != 0 ? sb->cap * 2 : 1024;
        struct share *v = realloc(sb->v, cap * sizeof(*v));
        if (v == NULL)
            return RV_ENOMEM;
        sb->v = v;
        sb->cap = cap;
    }
    if ((sb->v[sb->n].name = strdup(k.surname)) == NULL)
        return RV_ENOMEM;
    sb->v[sb->n++].share = share;
    return 0;
}

static int build_surnames(void)
{
    struct share_build sb = {0};
    int err;

    if ((err = each_line("names/surnames.csv", on_surname, &sb)) != 0)
        goto out;
    qsort(sb.v, sb.n, sizeof(*sb.v), cmp_share);
    T.surnames = sb.v;
    T.nsurnames = sb.n;
    sb.v = NULL;
    sb.n = 0;
out:
    for (size_t i = 0; i < sb.n; i++)
        free(sb.v[i].name);
    free(sb.v);
    return err;
}

static void init_once(void)
{
    int err;
    if ((err = build_edges()) != 0 || (err = build_known()) != 0 || (err = build_surnames()) != 0 ||
        (err = build_list("names/first_names_male.csv", &T.male, &T.nmale)) != 0 ||
        (err = build_list("names/first_names_female.csv", &T.female, &T.nfemale)) != 0)
        T.err = err;
}

int rv_check_tables_init(void)
{
    pthread_once(&once, init_once);
    return T.err;
}

/* ---- lookups ------------------------------------------------------------------------- */

static bool has_edge(const char *a, const char *b)
{
    struct edge k = {(char *)a, (char *)b};
    return bsearch(&k, T.edges, T.nedges, sizeof(k), cmp_edge) != NULL;
}

/* The first edge whose a is name, or NULL. */
static const struct edge *first_edge(const char *name, size_t *count)
{
    size_t lo = 0, hi = T.nedges, end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(T.edges[mid].a, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (end = lo; end < T.nedges && strcmp(T.edges[end].a, name) == 0; end++)
        ;
    *count = end - lo;
    return end > lo ? &T.edges[lo] : NULL;
}

bool rv_check_nickname(const char *a, const char *b)
{
    size_t n;
    const struct edge *e;
    size_t la, lb;

    if (rv_check_tables_init() != 0 || a[0] == '\0' || b[0] == '\0' || strcmp(a, b) == 0)
        return false;
    if (has_edge(a, b))
        return true;
    /* Siblings: two nicknames of one name where one extends the other (bill, billy). */
    la = strlen(a);
    lb = strlen(b);
    if (strncmp(a, b, la < lb ? la : lb) != 0)
        return false;
    e = first_edge(a, &n);
    for (size_t i = 0; e != NULL && i < n; i++)
        if (has_edge(e[i].b, b))
            return true;
    return false;
}

bool rv_check_known_forename(const char *a)
{
    if (rv_check_tables_init() != 0 || a[0] == '\0')
        return false;
    return bsearch(&a, T.known, T.nknown, sizeof(char *), cmp_str) != NULL;
}

static const struct share *find_surname(const char *joined)
{
    struct share k = {(char *)joined, 0};
    if (rv_check_tables_init() != 0 || joined[0] == '\0')
        return NULL;
    return bsearch(&k, T.surnames, T.nsurnames, sizeof(k), cmp_share);
}

double rv_check_surname_weight(const char *joined)
{
    const struct share *s = find_surname(joined);
    return -log2((s != NULL ? s->share : RARE_SHARE) / 100.0);
}

bool rv_check_known_surname(const char *joined)
{
    return find_surname(joined) != NULL;
}

static bool in_list(char **v, size_t n, const char *a)
{
    return v != NULL && bsearch(&a, v, n, sizeof(char *), cmp_str) != NULL;
}

bool rv_check_sex_differs(const char *a, const char *b)
{
    bool am, af, bm, bf;
    if (rv_check_tables_init() != 0)
        return false;
    am = in_list(T.male, T.nmale, a);
    af = in_list(T.female, T.nfemale, a);
    bm = in_list(T.male, T.nmale, b);
    bf = in_list(T.female, T.nfemale, b);
    return (am && !af && bf && !bm) || (af && !am && bm && !bf);
}
