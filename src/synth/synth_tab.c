/*
 * synth_tab.c - the generator's building blocks: seeding, weighted choice, the tables of
 * names and places, and the buffered writer that renames a file into place only when it is
 * complete.
 *
 * The tables are built from the lists compiled in from data/names (surnames with population
 * shares, forenames, street names, postcode areas, town-name parts), the hand-written extras
 * (accented, apostrophe and Mc/Mac names) and a generated long tail of syllable surnames,
 * because the listed surnames cover only about 40 % of people. The universe of names does not
 * depend on the seed, so registers made with different seeds share their name frequencies.
 */
#include "synth/synth_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- random numbers --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sy_rng_seed(struct sy_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    (void)splitmix64(&x);
    x ^= stream;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
}

/* ---- alias tables ------------------------------------------------------------------------ */

int sy_alias_build(struct sy_alias *a, const double *w, uint32_t n)
{
    int err = RV_ENOMEM;
    double *p = NULL, total = 0;
    uint32_t *small = NULL, *large = NULL, ns = 0, nl = 0;

    a->n = n;
    a->alias = calloc(n, sizeof(*a->alias));
    a->cut = calloc(n, sizeof(*a->cut));
    p = malloc(n * sizeof(*p));
    small = malloc(n * sizeof(*small));
    large = malloc(n * sizeof(*large));
    if (a->alias == NULL || a->cut == NULL || p == NULL || small == NULL || large == NULL)
        goto out;
    for (uint32_t i = 0; i < n; i++)
        total += w[i];
    for (uint32_t i = 0; i < n; i++) {
        p[i] = total > 0 ? w[i] * n / total : 1.0;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = small[--ns], l = large[nl - 1];
        a->cut[s] = (uint32_t)(p[s] * 4294967296.0);
        a->alias[s] = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl > 0) {
        uint32_t l = large[--nl];
        a->cut[l] = UINT32_MAX;
        a->alias[l] = l;
    }
    while (ns > 0) {
        uint32_t s = small[--ns];
        a->cut[s] = UINT32_MAX;
        a->alias[s] = s;
    }
    err = 0;
out:
    free(p);
    free(small);
    free(large);
    if (err != 0)
        sy_alias_free(a);
    return err;
}

void sy_alias_free(struct sy_alias *a)
{
    free(a->alias);
    free(a->cut);
    a->alias = NULL;
    a->cut = NULL;
    a->n = 0;
}

/* ---- strings ----------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s (valid input assumed: the lists are ours). */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    int extra;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if ((c & 0xe0) == 0xc0) {
        cp = c & 0x1f;
        extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
        cp = c & 0x0f;
        extra = 2;
    } else {
        cp = c & 0x07;
        extra = 3;
    }
    (*i)++;
    while (extra-- > 0 && *i < len)
        cp = (cp << 6) | (s[(*i)++] & 0x3f);
    return cp;
}

/* Windows-1252 byte for a code point, transliterating letters 1252 lacks, as legacy
 * electoral management software does on export. */
static char cp1252_of(uint32_t cp)
{
    static const struct {
        uint16_t cp;
        char c;
    } map[] = {
        {0x160, (char)0x8a}, {0x161, (char)0x9a}, {0x17d, (char)0x8e}, {0x17e, (char)0x9e},
        {0x152, (char)0x8c}, {0x153, (char)0x9c}, {0x178, (char)0x9f}, {0x2019, (char)0x92},
        {0x141, 'L'},        {0x142, 'l'},        {0x15a, 'S'},        {0x15b, 's'},
        {0x106, 'C'},        {0x107, 'c'},        {0x143, 'N'},        {0x144, 'n'},
        {0x179, 'Z'},        {0x17a, 'z'},        {0x17b, 'Z'},        {0x17c, 'z'},
        {0x104, 'A'},        {0x105, 'a'},        {0x118, 'E'},        {0x119, 'e'},
        {0x131, 'i'},        {0x130, 'I'},        {0x15e, 'S'},        {0x15f, 's'},
        {0x11e, 'G'},        {0x11f, 'g'},        {0x150, 'O'},        {0x151, 'o'},
        {0x170, 'U'},        {0x171, 'u'},
    };
    if (cp < 0x80 || (cp >= 0xa0 && cp <= 0xff))
        return (char)cp;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i].cp == cp)
            return map[i].c;
    return '?';
}

static char *arena_alloc(struct sy_tables *t, size_t n)
{
    if (t->arena_len + n > t->arena_cap)
        return NULL;
    char *p = t->arena + t->arena_len;
    t->arena_len += n;
    return p;
}

static int add_str(struct sy_tables *t, const char *s, size_t len, uint8_t flags,
                   struct sy_str *out)
{
    const unsigned char *u = (const unsigned char *)s;
    char *u8 = arena_alloc(t, len + 1);
    if (u8 == NULL || len > 200)
        return RV_ENOMEM;
    memcpy(u8, s, len);
    u8[len] = '\0';
    out->u8 = u8;
    out->u8len = (uint16_t)len;
    out->cp = u8;
    out->cplen = (uint16_t)len;
    out->flags = flags;
    for (size_t i = 0; i < len; i++) {
        if (u[i] >= 0x80)
            out->flags |= SY_S_ACCENT;
        else if (u[i] == '\'')
            out->flags |= SY_S_APOSTROPHE;
        else if (u[i] == '-')
            out->flags |= SY_S_HYPHEN;
    }
    if ((len > 3 && s[0] == 'M' && s[1] == 'c' && s[2] >= 'A' && s[2] <= 'Z') ||
        (len > 4 && memcmp(s, "Mac", 3) == 0 && s[3] >= 'A' && s[3] <= 'Z'))
        out->flags |= SY_S_MC;
    if (out->flags & SY_S_ACCENT) {
        char *cp = arena_alloc(t, len + 1);
        size_t i = 0, n = 0;
        if (cp == NULL)
            return RV_ENOMEM;
        while (i < len)
            cp[n++] = cp1252_of(utf8_next(u, len, &i));
        cp[n] = '\0';
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)cp[k] >= 0x80)
                out->flags |= SY_S_CPACCENT;
        out->cp = cp;
        out->cplen = (uint16_t)n;
    }
    return 0;
}

/* ---- reading the compiled-in lists -------------------------------------------------------- */

/* Calls fn for every data line of a compiled-in CSV (header skipped) with up to 3 fields. */
typedef int (*row_fn)(struct sy_tables *t, char **f, size_t nf, void *ctx);

static int each_row(struct sy_tables *t, const char *name, row_fn fn, void *ctx)
{
    const struct rv_blob *b = rv_data_find(name);
    char line[512];
    size_t pos = 0;
    bool header = true;
    int err;

    if (b == NULL)
        return RV_ENOTFOUND;
    while (pos < b->len) {
        size_t end = pos, n;
        char *f[3];
        size_t nf = 0;
        while (end < b->len && b->data[end] != '\n')
            end++;
        n = end - pos;
        if (n > 0 && b->data[pos + n - 1] == '\r')
            n--;
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        memcpy(line, b->data + pos, n);
        line[n] = '\0';
        pos = end + 1;
        if (header || n == 0) {
            header = false;
            continue;
        }
        f[nf++] = line;
        for (char *c = line; *c != '\0' && nf < 3; c++)
            if (*c == ',') {
                *c = '\0';
                f[nf++] = c + 1;
            }
        if ((err = fn(t, f, nf, ctx)) != 0)
            return err;
    }
    return 0;
}

struct grow {
    struct sy_str *s;
    double *w;
    uint32_t n, cap;
};

static int grow_add(struct sy_tables *t, struct grow *g, const char *s, size_t len, double w,
                    uint8_t flags)
{
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 1024;
        struct sy_str *ns = realloc(g->s, cap * sizeof(*ns));
        if (ns == NULL)
            return RV_ENOMEM;
        g->s = ns;
        double *nw = realloc(g->w, cap * sizeof(*nw));
        if (nw == NULL)
            return RV_ENOMEM;
        g->w = nw;
        g->cap = cap;
    }
    g->w[g->n] = w;
    return add_str(t, s, len, flags, &g->s[g->n++]);
}

static int row_share(struct sy_tables *t, char **f, size_t nf, void *ctx)
{
    double share = nf > 1 ? strtod(f[1], NULL) : 0.01;
    return grow_add(t, ctx, f[0], strlen(f[0]), share, 0);
}

static int row_name(struct sy_tables *t, char **f, size_t nf, void *ctx)
{
    (void)nf;
    return grow_add(t, ctx, f[0], strlen(f[0]), 1.0, 0);
}

struct fore_ctx {
    struct grow *g;
    const char *sex; /* "M" or "F" filter for extras; NULL for base lists */
    double scale;
};

static int row_fore_extra(struct sy_tables *t, char **f, size_t nf, void *ctx)
{
    struct fore_ctx *c = ctx;
    if (nf < 3 || strcmp(f[1], c->sex) != 0)
        return 0;
    return grow_add(t, c->g, f[0], strlen(f[0]), strtod(f[2], NULL) * c->scale,
                    c->sex[0] == 'F' ? SY_S_FEMALE : 0);
}

/* ---- generated names ---------------------------------------------------------------------- */

static const char *const onset[] = {"B",  "Br", "C",  "Ch", "D", "Dr", "F", "G",
                                    "Gr", "H",  "J",  "K",  "L", "M",  "N", "P",
                                    "R",  "S",  "Sh", "St", "T", "Th", "W", "Wh"};
static const char *const vowel[] = {"a", "e", "i", "o", "u", "ai", "ea", "oo", "ow"};
static const char *const coda[] = {"n", "nd", "rr", "ll", "ck", "th",
                                   "m", "rt", "st", "ld", "nt", ""};
static const char *const ending[] = {"ley", "ton", "son",   "er",   "ham", "ford", "by",  "well",
                                     "ing", "s",   "ridge", "wick", "ett", "an",   "ard", "ell"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Generated names that would embarrass a test fixture are skipped. */
static bool unfortunate(const char *s)
{
    static const char *const bad[] = {"bum",  "ock",  "shit", "tit",  "cum", "dick", "nob",
                                      "wank", "arse", "piss", "fart", "poo", "cunt", "twat"};
    char low[64];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof(low); n++)
        low[n] = (char)(s[n] >= 'A' && s[n] <= 'Z' ? s[n] + 32 : s[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (strstr(low, bad[i]) != NULL)
            return true;
    return false;
}

/* The k-th generated syllable name (k < total combinations), written into buf. */
static size_t syllable_name(uint32_t k, char *buf)
{
    size_t n = 0;
    const char *parts[4];
    parts[0] = onset[k % NELEM(onset)];
    k /= (uint32_t)NELEM(onset);
    parts[1] = vowel[k % NELEM(vowel)];
    k /= (uint32_t)NELEM(vowel);
    parts[2] = coda[k % NELEM(coda)];
    k /= (uint32_t)NELEM(coda);
    parts[3] = ending[k % NELEM(ending)];
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(parts[i]);
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
    /* no triple letters ("Brealley", not "Breallley") */
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w < 2 || buf[i] != buf[w - 1] || buf[i] != buf[w - 2])
            buf[w++] = buf[i];
    buf[w] = '\0';
    return w;
}

static const char *const street_kind[] = {
    "Road",  "Street", "Lane",  "Close", "Avenue", "Drive", "Way",     "Crescent",
    "Grove", "Court",  "Place", "Walk",  "Row",    "Mews",  "Gardens", "Terrace",
    "Hill",  "Rise",   "View",  "Green", "Park",   "Fields"};

/* ---- nicknames ------------------------------------------------------------------------------ */

struct nick_pair {
    char a[24], b[24];
};

struct nick_ctx {
    struct nick_pair *p;
    size_t n, cap;
};

static int row_nick(struct sy_tables *t, char **f, size_t nf, void *ctx)
{
    struct nick_ctx *c = ctx;
    (void)t;
    if (nf < 3 || strcmp(f[1], "has_nickname") != 0 || strlen(f[0]) >= 24 || strlen(f[2]) >= 24)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        struct nick_pair *np = realloc(c->p, cap * sizeof(*np));
        if (np == NULL)
            return RV_ENOMEM;
        c->p = np;
        c->cap = cap;
    }
    strcpy(c->p[c->n].a, f[0]);
    strcpy(c->p[c->n].b, f[2]);
    c->n++;
    return 0;
}

static int nick_cmp(const void *x, const void *y)
{
    const struct nick_pair *a = x, *b = y;
    int c = strcmp(a->a, b->a);
    return c != 0 ? c : strcmp(a->b, b->b);
}

static uint32_t initial_bit(const char *s)
{
    char c = s[0];
    if (c >= 'a' && c <= 'z')
        return 1u << (c - 'a');
    if (c >= 'A' && c <= 'Z')
        return 1u << (c - 'A');
    return 1u << 26; /* anything else: accented initials */
}

static int build_nicknames(struct sy_tables *t)
{
    struct nick_ctx c = {0};
    int err;
    uint32_t cap = 0;

    if ((err = each_row(t, "nicknames/names.csv", row_nick, &c)) != 0)
        goto out;
    qsort(c.p, c.n, sizeof(*c.p), nick_cmp);
    err = RV_ENOMEM;
    t->nick_ix = calloc(t->nfore + 1, sizeof(*t->nick_ix));
    if (t->nick_ix == NULL)
        goto out;
    for (uint32_t i = 0; i < t->nfore; i++) {
        char key[24];
        const struct sy_str *s = &t->fore[i];
        t->nick_ix[i] = t->nnick;
        if (s->u8len == 0 || s->u8len >= sizeof(key) || (s->flags & SY_S_ACCENT))
            continue;
        for (size_t k = 0; k <= s->u8len; k++)
            key[k] = (char)((s->u8[k] >= 'A' && s->u8[k] <= 'Z') ? s->u8[k] + 32 : s->u8[k]);
        size_t lo = 0, hi = c.n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(c.p[mid].a, key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < c.n && strcmp(c.p[lo].a, key) == 0; lo++) {
            char nm[24];
            size_t l = strlen(c.p[lo].b);
            memcpy(nm, c.p[lo].b, l + 1);
            if (nm[0] >= 'a' && nm[0] <= 'z')
                nm[0] = (char)(nm[0] - 32);
            if (t->nnick == cap) {
                cap = cap ? cap * 2 : 2048;
                struct sy_str *ns = realloc(t->nick, cap * sizeof(*ns));
                if (ns == NULL)
                    goto out;
                t->nick = ns;
            }
            if ((err = add_str(t, nm, l, 0, &t->nick[t->nnick++])) != 0)
                goto out;
            err = RV_ENOMEM;
        }
    }
    t->nick_ix[t->nfore] = t->nnick;
    /* initials of every name each forename can be confused with */
    err = RV_ENOMEM;
    t->fore_rel = calloc(t->nfore, sizeof(*t->fore_rel));
    if (t->fore_rel == NULL)
        goto out;
    for (uint32_t i = 1; i < t->nfore; i++) {
        char key[24];
        const struct sy_str *s = &t->fore[i];
        t->fore_rel[i] |= initial_bit(s->u8);
        for (uint32_t k = t->nick_ix[i]; k < t->nick_ix[i + 1]; k++)
            t->fore_rel[i] |= initial_bit(t->nick[k].u8);
        if (s->u8len == 0 || s->u8len >= sizeof(key))
            continue;
        for (size_t k = 0; k <= s->u8len; k++)
            key[k] = (char)((s->u8[k] >= 'A' && s->u8[k] <= 'Z') ? s->u8[k] + 32 : s->u8[k]);
        /* names that list this one as their nickname: "bill" is a nickname of william */
        for (size_t k = 0; k < c.n; k++)
            if (strcmp(c.p[k].b, key) == 0)
                t->fore_rel[i] |= initial_bit(c.p[k].a);
    }
    err = 0;
out:
    free(c.p);
    return err;
}

/* ---- the tables --------------------------------------------------------------------------- */

static int build_forenames(struct sy_tables *t)
{
    struct grow m = {0}, f = {0};
    struct fore_ctx cm = {&m, "M", 0}, cf = {&f, "F", 0};
    double *wm = NULL, *wf = NULL;
    int err;

    if ((err = each_row(t, "names/first_names_male.csv", row_name, &m)) != 0 ||
        (err = each_row(t, "names/first_names_female.csv", row_name, &f)) != 0)
        goto out;
    for (uint32_t i = 0; i < f.n; i++)
        f.s[i].flags |= SY_S_FEMALE;
    /* The lists are unweighted: give them a Zipf-like weight so some names are common. */
    double summ = 0, sumf = 0;
    for (uint32_t i = 0; i < m.n; i++)
        summ += m.w[i] = 1.0 / (i + 8.0);
    for (uint32_t i = 0; i < f.n; i++)
        sumf += f.w[i] = 1.0 / (i + 8.0);
    /* Extras carry relative weights; together they take about 6 % of people. */
    cm.scale = summ * 0.06 / 60.0;
    cf.scale = sumf * 0.06 / 60.0;
    if ((err = each_row(t, "names/extra-forenames.csv", row_fore_extra, &cm)) != 0 ||
        (err = each_row(t, "names/extra-forenames.csv", row_fore_extra, &cf)) != 0)
        goto out;
    err = RV_ENOMEM;
    t->nfore = 1 + m.n + f.n;
    t->fore = calloc(t->nfore, sizeof(*t->fore));
    t->fore_m = malloc(m.n * sizeof(uint32_t));
    t->fore_f = malloc(f.n * sizeof(uint32_t));
    if (t->fore == NULL || t->fore_m == NULL || t->fore_f == NULL)
        goto out;
    t->fore[0].u8 = t->fore[0].cp = "";
    for (uint32_t i = 0; i < m.n; i++) {
        t->fore[1 + i] = m.s[i];
        t->fore_m[i] = 1 + i;
    }
    for (uint32_t i = 0; i < f.n; i++) {
        t->fore[1 + m.n + i] = f.s[i];
        t->fore_f[i] = 1 + m.n + i;
    }
    t->nfore_m = m.n;
    t->nfore_f = f.n;
    if ((err = sy_alias_build(&t->male_w, m.w, m.n)) != 0 ||
        (err = sy_alias_build(&t->female_w, f.w, f.n)) != 0)
        goto out;
    err = 0;
out:
    free(m.s);
    free(m.w);
    free(f.s);
    free(f.w);
    free(wm);
    free(wf);
    return err;
}

static int build_surnames(struct sy_tables *t)
{
    struct grow g = {0};
    int err;
    double listed = 0;
    char buf[64];
    uint32_t top;

    if ((err = each_row(t, "names/surnames.csv", row_share, &g)) != 0)
        goto out;
    top = g.n;
    if ((err = each_row(t, "names/extra-surnames.csv", row_share, &g)) != 0)
        goto out;
    for (uint32_t i = 0; i < g.n; i++)
        listed += g.w[i];
    /* Double-barrelled names from pairs of common ones: 1 % of people. */
    {
        struct sy_rng r;
        sy_rng_seed(&r, 0x5eed, 1);
        for (int i = 0; i < 300; i++) {
            const struct sy_str *a = &g.s[sy_below(&r, top / 4)], *b = &g.s[sy_below(&r, top)];
            if (a == b || (a->flags | b->flags) & (SY_S_HYPHEN | SY_S_APOSTROPHE))
                continue;
            int n = snprintf(buf, sizeof(buf), "%s-%s", a->u8, b->u8);
            if (n <= 0 || (size_t)n >= sizeof(buf))
                continue;
            if ((err = grow_add(t, &g, buf, (size_t)n, 1.0 / 300.0, 0)) != 0)
                goto out;
        }
        listed += 1.0;
    }
    /* The long tail: generated syllable names sharing what is left, Zipf-like. */
    {
        const uint32_t total =
            (uint32_t)(NELEM(onset) * NELEM(vowel) * NELEM(coda) * NELEM(ending));
        const uint32_t ntail = 40000 < total ? 40000 : total;
        const uint32_t step = 7919; /* prime, coprime with total: a permutation of 0..total-1 */
        double rest = 100.0 - listed, hsum = 0;
        uint32_t first = g.n;
        for (uint32_t i = 0; i < ntail; i++) {
            size_t n = syllable_name((uint32_t)(((uint64_t)i * step + 13) % total), buf);
            double w = 1.0 / (i + 50.0);
            if (unfortunate(buf))
                continue;
            hsum += w;
            if ((err = grow_add(t, &g, buf, n, w, 0)) != 0)
                goto out;
        }
        for (uint32_t i = first; i < g.n; i++)
            g.w[i] *= rest / hsum;
    }
    if ((err = sy_alias_build(&t->sur_w, g.w, g.n)) != 0)
        goto out;
    t->sur = g.s;
    t->nsur = g.n;
    g.s = NULL;
out:
    free(g.s);
    free(g.w);
    return err;
}

static int build_places(struct sy_tables *t)
{
    struct grow st = {0}, pre = {0}, suf = {0}, pca = {0};
    struct sy_rng r;
    char buf[128];
    int err;

    sy_rng_seed(&r, 0x5eed, 2);
    if ((err = each_row(t, "names/street_names.csv", row_name, &st)) != 0 ||
        (err = each_row(t, "names/city_prefixes.csv", row_name, &pre)) != 0 ||
        (err = each_row(t, "names/city_suffixes.csv", row_name, &suf)) != 0 ||
        (err = each_row(t, "names/postcode_areas.csv", row_name, &pca)) != 0)
        goto out;
    /* Streets named after people and places: "Harper Close", "Winter Gardens". */
    /* Each (surname, kind) pair once: k * 7 runs through every pair of 400 x 22 exactly once
     * (7 is coprime with 8800), and names already in the list are skipped, so no two streets
     * of a district share a name. */
    {
        const uint32_t nk = (uint32_t)NELEM(street_kind), npair = 400 * nk, nlisted = st.n;
        for (uint32_t k = 0; k < 6000; k++) {
            uint32_t pair = (k * 7 + 11) % npair;
            const struct sy_str *s = &t->sur[pair / nk];
            int n = snprintf(buf, sizeof(buf), "%s %s", s->u8, street_kind[pair % nk]);
            bool dup = false;
            if ((s->flags & SY_S_HYPHEN) || n <= 0 || (size_t)n >= sizeof(buf))
                continue;
            for (uint32_t j = 0; j < nlisted && !dup; j++)
                dup = strcmp(st.s[j].u8, buf) == 0;
            if (dup)
                continue;
            if ((err = grow_add(t, &st, buf, (size_t)n, 1, 0)) != 0)
                goto out;
        }
    }
    t->street = st.s;
    t->nstreet = st.n;
    st.s = NULL;
    /* Towns: "Brandbury", "North Thornton". */
    err = RV_ENOMEM;
    t->town = calloc(3000, sizeof(*t->town));
    if (t->town == NULL)
        goto out;
    for (int i = 0; i < 3000; i++) {
        char base[64];
        size_t bl;
        do
            bl = syllable_name(sy_below(&r, 20000), base);
        while (unfortunate(base));
        /* keep the onset, vowel and coda; drop the surname ending */
        const struct sy_str *sx = &suf.s[sy_below(&r, suf.n)];
        size_t keep = bl > 5 ? bl - 3 : bl;
        int n;
        base[keep] = '\0';
        if (sy_chance(&r, 0.15))
            n = snprintf(buf, sizeof(buf), "%s %s%s", pre.s[sy_below(&r, pre.n)].u8, base, sx->u8);
        else
            n = snprintf(buf, sizeof(buf), "%s%s", base, sx->u8);
        if (n <= 0 || (size_t)n >= sizeof(buf))
            goto out;
        if (unfortunate(buf)) {
            i--; /* draw again */
            continue;
        }
        if ((err = add_str(t, buf, (size_t)n, 0, &t->town[i])) != 0)
            goto out;
        err = RV_ENOMEM;
    }
    t->ntown = 3000;
    t->pc_area = calloc(pca.n, sizeof(*t->pc_area));
    if (t->pc_area == NULL)
        goto out;
    for (uint32_t i = 0; i < pca.n; i++)
        t->pc_area[i] = pca.s[i].u8;
    t->npc_area = pca.n;
    err = 0;
out:
    free(st.s);
    free(st.w);
    free(pre.s);
    free(pre.w);
    free(suf.s);
    free(suf.w);
    free(pca.s);
    free(pca.w);
    return err;
}

int sy_tables_load(struct sy_tables *t)
{
    int err = RV_ENOMEM;

    memset(t, 0, sizeof(*t));
    t->arena_cap = 8u << 20;
    t->arena = malloc(t->arena_cap);
    if (t->arena == NULL)
        goto out;
    if ((err = build_forenames(t)) != 0 || (err = build_surnames(t)) != 0 ||
        (err = build_places(t)) != 0 || (err = build_nicknames(t)) != 0)
        goto out;
    err = 0;
out:
    if (err != 0)
        sy_tables_free(t);
    return err;
}

void sy_tables_free(struct sy_tables *t)
{
    sy_alias_free(&t->sur_w);
    sy_alias_free(&t->male_w);
    sy_alias_free(&t->female_w);
    free(t->sur);
    free(t->fore);
    free(t->fore_m);
    free(t->fore_f);
    free(t->street);
    free(t->town);
    free(t->pc_area);
    free(t->nick_ix);
    free(t->nick);
    free(t->fore_rel);
    free(t->arena);
    memset(t, 0, sizeof(*t));
}

/* ---- output ------------------------------------------------------------------------------- */

int sy_out_open(struct sy_out *o, const char *dir, const char *name)
{
    memset(o, 0, sizeof(*o));
    o->fd = -1;
    if ((size_t)snprintf(o->path, sizeof(o->path), "%s/%s", dir, name) >= sizeof(o->path) ||
        (size_t)snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.tmp", dir, name) >= sizeof(o->tmp))
        return RV_ETOOBIG;
    o->cap = 1u << 20;
    o->buf = malloc(o->cap + 65536); /* slack: a row never exceeds 64 KiB */
    if (o->buf == NULL)
        return RV_ENOMEM;
    /* An unnamed file vanishes if the process dies, even by kill -9; it gets a name only
     * when complete. Filesystems without O_TMPFILE get a hidden temporary name instead. */
    o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (o->fd >= 0)
        o->anon = true;
    else
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0) {
        int e = errno;
        free(o->buf);
        o->buf = NULL;
        errno = e;
        return RV_EIO;
    }
    return 0;
}

void sy_out_flush(struct sy_out *o)
{
    size_t off = 0;
    while (o->err == 0 && off < o->len) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            o->err = RV_EIO;
            break;
        }
        off += (size_t)n;
    }
    o->bytes += o->len;
    o->len = 0;
}

int sy_out_close(struct sy_out *o, bool commit, struct rv_diag *diag)
{
    int err, e = 0;
    bool named = !o->anon;
    if (o->fd < 0)
        return o->err;
    sy_out_flush(o);
    err = o->err;
    if (commit && err == 0 && o->anon) {
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
        (void)unlink(o->tmp); /* left by a run on a filesystem without O_TMPFILE */
        if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) != 0)
            err = RV_EIO;
        else
            named = true;
    }
    if (commit && err == 0 && rename(o->tmp, o->path) != 0)
        err = RV_EIO;
    e = errno;
    if (close(o->fd) != 0 && err == 0) {
        err = RV_EIO;
        e = errno;
    }
    o->fd = -1;
    if ((err != 0 || !commit) && named)
        (void)unlink(o->tmp);
    if (err != 0 && diag != NULL)
        rv_diag_set(diag, o->path, 0, 0, "cannot write the file");
    free(o->buf);
    o->buf = NULL;
    errno = e;
    return err;
}

void sy_put_date(struct sy_out *o, rv_date d, bool iso)
{
    int y, m, dd;
    char *p = o->buf + o->len;
    rv_date_to_ymd(d, &y, &m, &dd);
    if (iso) {
        p[0] = (char)('0' + y / 1000);
        p[1] = (char)('0' + y / 100 % 10);
        p[2] = (char)('0' + y / 10 % 10);
        p[3] = (char)('0' + y % 10);
        p[4] = '-';
        p[5] = (char)('0' + m / 10);
        p[6] = (char)('0' + m % 10);
        p[7] = '-';
        p[8] = (char)('0' + dd / 10);
        p[9] = (char)('0' + dd % 10);
    } else {
        p[0] = (char)('0' + dd / 10);
        p[1] = (char)('0' + dd % 10);
        p[2] = '/';
        p[3] = (char)('0' + m / 10);
        p[4] = (char)('0' + m % 10);
        p[5] = '/';
        p[6] = (char)('0' + y / 1000);
        p[7] = (char)('0' + y / 100 % 10);
        p[8] = (char)('0' + y / 10 % 10);
        p[9] = (char)('0' + y % 10);
    }
    o->len += 10;
}
