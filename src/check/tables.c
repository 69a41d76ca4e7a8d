/*
 * tables.c - the name tables the matcher consults: the nickname table (the US genealogy
 * table nicknames/names.csv plus the project's reviewed UK addendum, minus the addendum's
 * exclusions), the surname population shares (names/surnames.csv) that weigh a surname
 * agreement by rarity, and the set of known forenames that stops two real names one letter
 * apart (Jon, Joan) from passing as a typo.
 *
 * The tables are built once, on first use, from the data compiled into the binary, and
 * then only read, so lookups need no lock. Each is a sorted array (searched by bisection
 * where order matters: the nicknames of one name) with a hash index over it, since the
 * matcher asks these questions for every listed name it considers, and bisection over
 * tens of thousands of strings cost more than the rest of the comparison.
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

/* A hash index over a table: open addressing, each slot the index of an element plus one
 * (0: empty), at most half full. */
struct hindex {
    uint32_t *slot;
    size_t mask;
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
    struct hindex hedges, hknown, hsurnames, hmale, hfemale;
    /* Each name with edges (a vertex): its edges, and the names rv_check_nickname pairs it
     * with, worked out once. */
    struct vertex {
        uint32_t first, nedges; /* edges[first, first + nedges) have this name as a */
        uint32_t nick, nnick;   /* nicks[nick, nick + nnick) */
    } * verts;
    size_t nverts;
    struct rv_check_nick *nicks;
    size_t nnicks;
    struct hindex hverts;
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

/* ---- hash indexes ---------------------------------------------------------------- */

/* FNV-1a over a string, then over a second one after a separator (b may be NULL). */
static uint64_t hash_str2(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *a != '\0'; a++)
        h = (h ^ (uint8_t)*a) * 0x100000001b3ull;
    if (b != NULL) {
        h = (h ^ 0xffu) * 0x100000001b3ull;
        for (; *b != '\0'; b++)
            h = (h ^ (uint8_t)*b) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

/* Builds an index over n elements whose keys key(i) gives (b may be NULL). An element whose
 * key is already indexed is left out: lookups find the first. */
static int hindex_build(struct hindex *hx, size_t n,
                        void (*key)(size_t i, const char **a, const char **b),
                        bool (*same)(size_t i, const char *a, const char *b))
{
    size_t cap = 16;

    while (cap < 2 * n + 2)
        cap *= 2;
    if (n >= UINT32_MAX || (hx->slot = calloc(cap, sizeof(*hx->slot))) == NULL)
        return RV_ENOMEM;
    hx->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *a, *b;
        size_t h;
        key(i, &a, &b);
        h = (size_t)(hash_str2(a, b) >> 20) & hx->mask;
        while (hx->slot[h] != 0 && !same(hx->slot[h] - 1, a, b))
            h = (h + 1) & hx->mask;
        if (hx->slot[h] == 0)
            hx->slot[h] = (uint32_t)(i + 1);
    }
    return 0;
}

/* The index of the element keyed (a, b), or SIZE_MAX. */
static size_t hindex_find(const struct hindex *hx, const char *a, const char *b,
                          bool (*same)(size_t i, const char *a, const char *b))
{
    size_t h;

    if (hx->slot == NULL)
        return SIZE_MAX;
    for (h = (size_t)(hash_str2(a, b) >> 20) & hx->mask; hx->slot[h] != 0; h = (h + 1) & hx->mask)
        if (same(hx->slot[h] - 1, a, b))
            return hx->slot[h] - 1;
    return SIZE_MAX;
}

static void edge_key(size_t i, const char **a, const char **b)
{
    *a = T.edges[i].a;
    *b = T.edges[i].b;
}
static bool edge_same(size_t i, const char *a, const char *b)
{
    return strcmp(T.edges[i].a, a) == 0 && strcmp(T.edges[i].b, b) == 0;
}
static void known_key(size_t i, const char **a, const char **b)
{
    *a = T.known[i];
    *b = NULL;
}
static bool known_same(size_t i, const char *a, const char *b)
{
    (void)b;
    return strcmp(T.known[i], a) == 0;
}
static void male_key(size_t i, const char **a, const char **b)
{
    *a = T.male[i];
    *b = NULL;
}
static bool male_same(size_t i, const char *a, const char *b)
{
    (void)b;
    return strcmp(T.male[i], a) == 0;
}
static void female_key(size_t i, const char **a, const char **b)
{
    *a = T.female[i];
    *b = NULL;
}
static bool female_same(size_t i, const char *a, const char *b)
{
    (void)b;
    return strcmp(T.female[i], a) == 0;
}
static void vert_key(size_t i, const char **a, const char **b)
{
    *a = T.edges[T.verts[i].first].a;
    *b = NULL;
}
static bool vert_same(size_t i, const char *a, const char *b)
{
    (void)b;
    return strcmp(T.edges[T.verts[i].first].a, a) == 0;
}
static bool surname_same(size_t i, const char *a, const char *b)
{
    (void)b;
    return strcmp(T.surnames[i].name, a) == 0;
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

/* The edges whose a is name (*count of them), or NULL. */
static const struct edge *first_edge(const char *name, size_t *count)
{
    size_t v = hindex_find(&T.hverts, name, NULL, vert_same);

    *count = 0;
    if (v == SIZE_MAX)
        return NULL;
    *count = T.verts[v].nedges;
    return &T.edges[T.verts[v].first];
}

/* Appends to the flat nickname array the names rv_check_nickname pairs a with: its edges'
 * names, then their other names that extend a or that a extends (siblings: bill, billy). */
static int vertex_nicks(struct vertex *vx, size_t *cap)
{
    const struct edge *e = &T.edges[vx->first];
    const char *a = e->a;
    size_t la = strlen(a);

    vx->nick = (uint32_t)T.nnicks;
    for (size_t i = 0; i < vx->nedges; i++) {
        size_t nf;
        const struct edge *f = first_edge(e[i].b, &nf);
        for (size_t k = 0; k <= nf; k++) {
            const char *b = k == 0 ? e[i].b : f[k - 1].b;
            size_t lb = strlen(b), j;
            if (k > 0 && (strcmp(b, a) == 0 || strncmp(a, b, la < lb ? la : lb) != 0))
                continue;
            for (j = vx->nick; j < T.nnicks && strcmp(T.nicks[j].s, b) != 0; j++)
                ;
            if (j < T.nnicks)
                continue;
            if (T.nnicks == *cap) {
                size_t nc = *cap != 0 ? *cap * 2 : 4096;
                struct rv_check_nick *nv = realloc(T.nicks, nc * sizeof(*nv));
                if (nv == NULL || nc >= UINT32_MAX)
                    return RV_ENOMEM;
                T.nicks = nv;
                *cap = nc;
            }
            T.nicks[T.nnicks].s = b;
            T.nicks[T.nnicks].len = lb;
            T.nnicks++;
        }
    }
    vx->nnick = (uint32_t)(T.nnicks - vx->nick);
    return 0;
}

static int build_verts(void)
{
    size_t cap = 0;
    int err;

    if (T.nedges >= UINT32_MAX || (T.verts = calloc(T.nedges + 1, sizeof(*T.verts))) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < T.nedges; i++) {
        if (i == 0 || strcmp(T.edges[i - 1].a, T.edges[i].a) != 0)
            T.verts[T.nverts++].first = (uint32_t)i;
        T.verts[T.nverts - 1].nedges++;
    }
    if ((err = hindex_build(&T.hverts, T.nverts, vert_key, vert_same)) != 0)
        return err;
    for (size_t v = 0; v < T.nverts; v++)
        if ((err = vertex_nicks(&T.verts[v], &cap)) != 0)
            return err;
    return 0;
}

/* A surname listed twice (two spellings that fold alike) is found as bisection finds it,
 * so that its weight does not depend on the index: the index holds bisection's answer. */
static int index_surnames(void)
{
    size_t cap = 16;

    while (cap < 2 * T.nsurnames + 2)
        cap *= 2;
    if (T.nsurnames >= UINT32_MAX ||
        (T.hsurnames.slot = calloc(cap, sizeof(*T.hsurnames.slot))) == NULL)
        return RV_ENOMEM;
    T.hsurnames.mask = cap - 1;
    for (size_t i = 0; i < T.nsurnames; i++) {
        struct share k = {T.surnames[i].name, 0};
        const struct share *s = bsearch(&k, T.surnames, T.nsurnames, sizeof(k), cmp_share);
        size_t h = (size_t)(hash_str2(k.name, NULL) >> 20) & T.hsurnames.mask;
        while (T.hsurnames.slot[h] != 0 && !surname_same(T.hsurnames.slot[h] - 1, k.name, NULL))
            h = (h + 1) & T.hsurnames.mask;
        if (T.hsurnames.slot[h] == 0)
            T.hsurnames.slot[h] = (uint32_t)(s - T.surnames + 1);
    }
    return 0;
}

static void init_once(void)
{
    int err;
    if ((err = build_edges()) != 0 || (err = build_known()) != 0 || (err = build_surnames()) != 0 ||
        (err = build_list("names/first_names_male.csv", &T.male, &T.nmale)) != 0 ||
        (err = build_list("names/first_names_female.csv", &T.female, &T.nfemale)) != 0 ||
        (err = hindex_build(&T.hedges, T.nedges, edge_key, edge_same)) != 0 ||
        (err = build_verts()) != 0 ||
        (err = hindex_build(&T.hknown, T.nknown, known_key, known_same)) != 0 ||
        (err = hindex_build(&T.hmale, T.nmale, male_key, male_same)) != 0 ||
        (err = hindex_build(&T.hfemale, T.nfemale, female_key, female_same)) != 0 ||
        (err = index_surnames()) != 0)
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
    return hindex_find(&T.hedges, a, b, edge_same) != SIZE_MAX;
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

const struct rv_check_nick *rv_check_nicknames_of(const char *a, size_t *n)
{
    size_t v;

    *n = 0;
    if (rv_check_tables_init() != 0 || a[0] == '\0' ||
        (v = hindex_find(&T.hverts, a, NULL, vert_same)) == SIZE_MAX)
        return NULL;
    *n = T.verts[v].nnick;
    return &T.nicks[T.verts[v].nick];
}

bool rv_check_known_forename(const char *a)
{
    if (rv_check_tables_init() != 0 || a[0] == '\0')
        return false;
    return hindex_find(&T.hknown, a, NULL, known_same) != SIZE_MAX;
}

static const struct share *find_surname(const char *joined)
{
    size_t i;
    if (rv_check_tables_init() != 0 || joined[0] == '\0')
        return NULL;
    i = hindex_find(&T.hsurnames, joined, NULL, surname_same);
    return i != SIZE_MAX ? &T.surnames[i] : NULL;
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

bool rv_check_sex_differs(const char *a, const char *b)
{
    bool am, af, bm, bf;
    if (rv_check_tables_init() != 0)
        return false;
    am = hindex_find(&T.hmale, a, NULL, male_same) != SIZE_MAX;
    af = hindex_find(&T.hfemale, a, NULL, female_same) != SIZE_MAX;
    bm = hindex_find(&T.hmale, b, NULL, male_same) != SIZE_MAX;
    bf = hindex_find(&T.hfemale, b, NULL, female_same) != SIZE_MAX;
    return (am && !af && bf && !bm) || (af && !am && bm && !bf);
}
