/*
 * address.c - UK addresses: the parts that matching compares, and the canonical first line
 * that the "first line + postcode" blind index is keyed on.
 *
 * Registers give up to six address lines; donors write one line of free text. Both must
 * key alike: "Flat 2, 10A High St.", "flat 2 10a high street" and the register's lines
 * ["Flat 2", "10A High Street"] all have the first line "flat 2 10a high street".
 *
 * How a line is read:
 *  - lines are split at commas into segments; words are folded (rv_fold), except house
 *    numbers, which keep their '/' and '-' ("2/1", "10-12");
 *  - a trailing postcode ("Leeds LS1 1AA", or a last segment of its own) is dropped;
 *  - abbreviations are expanded (Rd -> road, Gdns -> gardens ...). "St" is "saint" when a
 *    name follows it and no word comes before it in its segment ("St Johns Road", "5 St
 *    Johns Road"), otherwise "street" ("High St", "High St Leeds"); "Dr" is "drive" only
 *    when it ends a segment;
 *  - a sub-building is a keyword (Flat, Apartment, Apt, Unit, Room, Suite, Studio,
 *    Maisonette) followed by its designator ("2", "A", "2/1", "0/1"); first_line always says
 *    "flat", whichever keyword was written, because donors and registers disagree about it;
 *  - the street segment is the first segment that starts with a house number, or failing
 *    that the first with a number between a building name and a street name ("Ground Floor
 *    Flat 10 High St"). Its number is read as follows (the tenement rule):
 *      "10", "10a", "10 A High St"  number 10, suffix "a" (a lone letter after the number
 *                                   is a suffix only when a street name follows it);
 *      "10-12", "10 - 12"           number "10-12" (a range is one number);
 *      "2/1 10 High Street"         a slashed designator followed by another number is a
 *                                   Scottish tenement flat: flat "2/1" of number 10;
 *      "2/1", "10 High Street"      the same, written on two lines;
 *      "10/2 High St"               a slashed number standing alone before the street name
 *                                   is number 10, flat 2 (the Edinburgh form);
 *      "2 10 High Street"           two plain numbers before a street: flat 2 of number 10;
 *      "10", "High Street"          a number alone on its line numbers the next line;
 *  - with no house number, the first segment that ends in a thoroughfare word (road,
 *    street, lane ...) is the street, and segments before it are the building name; words
 *    that also end house names (view, court, green ...) count only when no segment ends in
 *    a stronger one, so "Meadow View, Kerr Road" is a house in Kerr Road; with neither, the
 *    first segment is the building name;
 *  - the building is what comes before the street segment (sub-building removed); the
 *    locality is the last segment after the street;
 *  - first_line is "flat <sub> " when there is a sub-building, then "<number><suffix>
 *    <street>" when there is a number, else the building name, else the street.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define RV_ADDR_IN_MAX   1024 /* longest raw line (or free text) looked at */
#define RV_ADDR_ARENA    4096
#define RV_ADDR_TOKENS   128
#define RV_ADDR_SEGMENTS 16

enum tkind { T_WORD, T_NUM, T_DASH };

struct atok {
    const char *s; /* NUL-terminated, in the arena */
    size_t len;
    enum tkind kind;
    bool slash; /* "2/1" */
    bool range; /* "10-12" */
    bool used;  /* taken as a sub-building */
};

struct aseg {
    size_t b, e; /* token range */
};

struct actx {
    char arena[RV_ADDR_ARENA];
    size_t used;
    struct atok t[RV_ADDR_TOKENS];
    size_t nt;
    struct aseg seg[RV_ADDR_SEGMENTS];
    size_t nseg;
};

/* ------------------------------------------------------------------------------------------
 * Word tables, kept sorted: they are searched with bsearch.
 */

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

struct abbrev {
    const char *from, *to;
};

#define RV_ABBREV_MAX 5 /* longest abbreviation in the table */
static const struct abbrev rv_abbrevs[] = {
    {"apts", "apartments"}, {"av", "avenue"},       {"ave", "avenue"},     {"avn", "avenue"},
    {"bldg", "building"},   {"bldgs", "buildings"}, {"blvd", "boulevard"}, {"bvd", "boulevard"},
    {"cl", "close"},        {"clo", "close"},       {"cnr", "corner"},     {"cotts", "cottages"},
    {"cres", "crescent"},   {"cresc", "crescent"},  {"crt", "court"},      {"ct", "court"},
    {"ctg", "cottage"},     {"ctr", "centre"},      {"est", "estate"},     {"fm", "farm"},
    {"gdn", "garden"},      {"gdns", "gardens"},    {"gn", "green"},       {"gr", "grove"},
    {"grn", "green"},       {"gro", "grove"},       {"gt", "great"},       {"gv", "grove"},
    {"hse", "house"},       {"hts", "heights"},     {"ln", "lane"},        {"lwr", "lower"},
    {"mkt", "market"},      {"mt", "mount"},        {"mws", "mews"},       {"nth", "north"},
    {"pde", "parade"},      {"pk", "park"},         {"pl", "place"},       {"rd", "road"},
    {"rdg", "ridge"},       {"sq", "square"},       {"sth", "south"},      {"tce", "terrace"},
    {"ter", "terrace"},     {"terr", "terrace"},    {"upr", "upper"},      {"vw", "view"},
    {"wk", "walk"},         {"wlk", "walk"},        {"wy", "way"},         {"yd", "yard"},
};

static const char *const rv_sub_keywords[] = {
    "apartment", "apt", "flat", "flt", "maisonette", "rm", "room", "studio", "suite", "unit",
};

/* Words that end a street name. The strong ones rarely end anything else; the weak ones
 * also end house names ("Meadow View", "Riverside Court") and places ("Palmers Green"), so
 * a street ending in one is chosen only when no line ends in a strong one. */
static const char *const rv_thoroughfares[] = {
    "avenue", "boulevard", "causeway", "close",  "crescent", "crossway", "drive", "gardens",
    "grove",  "lane",      "mews",     "parade", "place",    "road",     "row",   "square",
    "street", "terrace",   "vennel",   "walk",   "way",      "wynd"};

static const char *const rv_thoroughfares_weak[] = {"brae", "circus", "court", "gate", "green",
                                                    "hill", "loan",   "park",  "quay", "rise",
                                                    "vale", "view",   "yard"};

static int cmp_word(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

static int cmp_abbrev(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct abbrev *)elem)->from);
}

static bool word_in(const struct atok *t, const char *const *list, size_t n)
{
    return t->kind == T_WORD && bsearch(t->s, list, n, sizeof(*list), cmp_word) != NULL;
}

#define IS_SUB_KEYWORD(t)         word_in((t), rv_sub_keywords, NWORDS(rv_sub_keywords))
#define IS_STRONG_THOROUGHFARE(t) word_in((t), rv_thoroughfares, NWORDS(rv_thoroughfares))
#define IS_THOROUGHFARE(t)                                                                         \
    (IS_STRONG_THOROUGHFARE(t) ||                                                                  \
     word_in((t), rv_thoroughfares_weak, NWORDS(rv_thoroughfares_weak)))

/* ------------------------------------------------------------------------------------------
 * Lexing.
 */

static char *arena_put(struct actx *c, const char *s, size_t len)
{
    if (c->used + len + 1 > sizeof(c->arena))
        return NULL;
    char *p = c->arena + c->used;
    memcpy(p, s, len);
    p[len] = '\0';
    c->used += len + 1;
    return p;
}

static size_t read_digits(const char *s, size_t len, size_t i)
{
    size_t k = i;
    while (k < len && s[k] >= '0' && s[k] <= '9')
        k++;
    return k - i;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A house number or flat designator: digits, an optional letter, then optionally '/' or
 * '-' and the same again: "10", "10a", "2/1", "10-12", "10a-12". */
static bool num_pattern(const char *s, size_t len, bool *slash, bool *range)
{
    size_t i = 0, d;

    *slash = *range = false;
    if ((d = read_digits(s, len, i)) == 0 || d > 6)
        return false;
    i += d;
    if (i < len && is_alpha(s[i]))
        i++;
    if (i == len)
        return true;
    if (s[i] != '/' && s[i] != '-')
        return false;
    *slash = s[i] == '/';
    *range = s[i] == '-';
    i++;
    if ((d = read_digits(s, len, i)) == 0 || d > 6)
        return false;
    i += d;
    if (i < len && is_alpha(s[i]))
        i++;
    return i == len;
}

static int push_tok(struct actx *c, const char *s, size_t len, enum tkind kind, bool slash,
                    bool range)
{
    char *p;

    if (c->nt == RV_ADDR_TOKENS)
        return RV_ETOOBIG;
    if ((p = arena_put(c, s, len)) == NULL)
        return RV_ETOOBIG;
    for (size_t i = 0; i < len; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] + ('a' - 'A'));
    c->t[c->nt] = (struct atok){p, len, kind, slash, range, false};
    c->nt++;
    return 0;
}

/* One raw word: a number kept whole, or folded words. */
static int lex_word(struct actx *c, const char *w, size_t len)
{
    char folded[RV_ADDR_IN_MAX + 1];
    bool slash, range;
    int rc;

    while (len > 0 && (w[len - 1] == '.' || w[len - 1] == ';' || w[len - 1] == ':'))
        len--;
    if (len == 0)
        return 0;
    if ((len == 1 && w[0] == '-') || (len == 3 && memcmp(w, "\xe2\x80\x93", 3) == 0))
        return push_tok(c, w, len, T_DASH, false, false);
    if (num_pattern(w, len, &slash, &range))
        return push_tok(c, w, len, T_NUM, slash, range);
    if ((rc = rv_fold(w, len, folded, sizeof(folded))) != 0)
        return rc;
    for (const char *p = folded; *p != '\0';) {
        size_t n = strcspn(p, " ");
        bool num = num_pattern(p, n, &slash, &range);
        if ((rc = push_tok(c, p, n, num ? T_NUM : T_WORD, false, false)) != 0)
            return rc;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* Joins "10 - 12" into one range and drops any other dash. */
static int merge_dashes(struct actx *c, size_t b)
{
    size_t o = b;

    for (size_t i = b; i < c->nt; i++) {
        struct atok *t = &c->t[i];
        if (t->kind == T_DASH && o > b && i + 1 < c->nt) {
            struct atok *l = &c->t[o - 1], *r = &c->t[i + 1];
            if (l->kind == T_NUM && !l->slash && !l->range && r->kind == T_NUM && !r->slash &&
                !r->range) {
                char tmp[64];
                if (l->len + r->len + 2 > sizeof(tmp))
                    return RV_ETOOBIG;
                memcpy(tmp, l->s, l->len);
                tmp[l->len] = '-';
                memcpy(tmp + l->len + 1, r->s, r->len);
                char *p = arena_put(c, tmp, l->len + 1 + r->len);
                if (p == NULL)
                    return RV_ETOOBIG;
                l->s = p;
                l->len += 1 + r->len;
                l->range = true;
                i++;
                continue;
            }
        }
        if (t->kind == T_DASH)
            continue;
        c->t[o++] = *t;
    }
    c->nt = o;
    return 0;
}

/* Adds one segment (text between commas). Empty segments are not kept. */
static int lex_segment(struct actx *c, const char *s, size_t len)
{
    size_t b = c->nt, i = 0;
    int rc;

    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t w = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > w && (rc = lex_word(c, s + w, i - w)) != 0)
            return rc;
    }
    if ((rc = merge_dashes(c, b)) != 0)
        return rc;
    if (c->nt == b)
        return 0;
    if (c->nseg == RV_ADDR_SEGMENTS)
        return RV_ETOOBIG;
    c->seg[c->nseg++] = (struct aseg){b, c->nt};
    return 0;
}

/* A raw line: cleaned, then split at commas. */
static int lex_line(struct actx *c, const char *s, size_t len)
{
    char clean[RV_ADDR_IN_MAX + 1];
    int rc;

    if (len > RV_ADDR_IN_MAX)
        return RV_ETOOBIG;
    if ((rc = rv_text_clean(s, len, clean, sizeof(clean))) != 0)
        return rc;
    for (const char *p = clean;;) {
        size_t n = strcspn(p, ",");
        if ((rc = lex_segment(c, p, n)) != 0)
            return rc;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Reading the segments.
 */

/* Drops a postcode ending the last segment: "ls1 1aa" as two words or "ls11aa" as one. */
static void drop_postcode(struct actx *c)
{
    struct rv_postcode pc;
    char tmp[32];

    if (c->nseg == 0)
        return;
    struct aseg *g = &c->seg[c->nseg - 1];
    size_t n = g->e - g->b;
    if (n >= 2) {
        const struct atok *a = &c->t[g->e - 2], *b = &c->t[g->e - 1];
        if (a->len + b->len + 2 <= sizeof(tmp)) {
            memcpy(tmp, a->s, a->len);
            tmp[a->len] = ' ';
            memcpy(tmp + a->len + 1, b->s, b->len);
            if (rv_postcode_parse(tmp, a->len + 1 + b->len, &pc) == 0) {
                g->e -= 2;
                goto out;
            }
        }
    }
    if (n >= 1) {
        const struct atok *a = &c->t[g->e - 1];
        if (a->len >= 5 && rv_postcode_parse(a->s, a->len, &pc) == 0)
            g->e -= 1;
    }
out:
    if (g->e == g->b)
        c->nseg--;
}

static void expand_abbreviations(struct actx *c)
{
    for (size_t g = 0; g < c->nseg; g++) {
        for (size_t i = c->seg[g].b; i < c->seg[g].e; i++) {
            struct atok *t = &c->t[i];
            bool last = i + 1 == c->seg[g].e;
            if (t->kind != T_WORD)
                continue;
            if (strcmp(t->s, "st") == 0) {
                /* Saint when a name follows and no word comes before it in the segment
                 * ("St Johns Road", "5 St Johns Road"); otherwise street ("High St",
                 * "High St Leeds"). */
                bool word_before =
                    i > c->seg[g].b && c->t[i - 1].kind == T_WORD && !c->t[i - 1].used;
                t->s = last || word_before ? "street" : "saint";
            } else if (strcmp(t->s, "dr") == 0) {
                if (last)
                    t->s = "drive";
            } else {
                const struct abbrev *a = t->len > RV_ABBREV_MAX
                                             ? NULL
                                             : bsearch(t->s, rv_abbrevs, NWORDS(rv_abbrevs),
                                                       sizeof(rv_abbrevs[0]), cmp_abbrev);
                if (a != NULL)
                    t->s = a->to;
            }
            t->len = strlen(t->s);
        }
    }
}

static bool is_designator(const struct atok *t)
{
    return (t->kind == T_NUM && !t->range) || (t->kind == T_WORD && t->len == 1);
}

/* First unused token of segment g at or after index i, or e. */
static size_t next_free(const struct actx *c, size_t g, size_t i)
{
    while (i < c->seg[g].e && c->t[i].used)
        i++;
    return i;
}

static int copy_out(char *dst, size_t dstsz, const char *s, size_t len)
{
    if (len + 1 > dstsz)
        return RV_ETOOBIG;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* Appends the unused words of tokens [b, e) to dst, space-separated. */
static int append_words(const struct actx *c, size_t b, size_t e, char *dst, size_t dstsz)
{
    size_t o = strlen(dst);
    for (size_t i = b; i < e; i++) {
        const struct atok *t = &c->t[i];
        if (t->used)
            continue;
        if (o + (o > 0) + t->len + 1 > dstsz)
            return RV_ETOOBIG;
        if (o > 0)
            dst[o++] = ' ';
        memcpy(dst + o, t->s, t->len);
        o += t->len;
        dst[o] = '\0';
    }
    return 0;
}

static bool seg_empty(const struct actx *c, size_t g)
{
    return next_free(c, g, c->seg[g].b) == c->seg[g].e;
}

/* Splits a number token "10a" into number and suffix, or keeps a range whole. */
static int set_number(const struct atok *t, size_t len, struct rv_address_key *out)
{
    if (t->range)
        return copy_out(out->number, sizeof(out->number), t->s, t->len);
    if (len > 0 && is_alpha(t->s[len - 1])) {
        int rc = copy_out(out->number, sizeof(out->number), t->s, len - 1);
        return rc != 0
                   ? rc
                   : copy_out(out->number_suffix, sizeof(out->number_suffix), t->s + len - 1, 1);
    }
    return copy_out(out->number, sizeof(out->number), t->s, len);
}

/* Reads the house number at the start of segment g (first free token i). Returns the
 * index of the segment whose remaining words are the street, and in *street_from the
 * first token of the street words. */
static int read_number(struct actx *c, size_t g, size_t i, struct rv_address_key *out,
                       size_t *street_seg, size_t *street_from)
{
    struct atok *t = &c->t[i];
    size_t e = c->seg[g].e;
    size_t j = next_free(c, g, i + 1);
    int rc;

    *street_seg = g;
    if (t->slash) {
        const char *sl = memchr(t->s, '/', t->len);
        size_t before = (size_t)(sl - t->s);
        bool next_num_here = j < e && c->t[j].kind == T_NUM && !c->t[j].slash;
        bool next_num_line = j == e && g + 1 < c->nseg && !seg_empty(c, g + 1) &&
                             c->t[next_free(c, g + 1, c->seg[g + 1].b)].kind == T_NUM;
        if (next_num_here || next_num_line) {
            /* Tenement flat: "2/1 10 High Street" or "2/1" then "10 High Street". */
            if (out->sub_building[0] == '\0' &&
                (rc = copy_out(out->sub_building, sizeof(out->sub_building), t->s, t->len)) != 0)
                return rc;
            t->used = true;
            if (next_num_line) {
                g++;
                j = next_free(c, g, c->seg[g].b);
            }
            return read_number(c, g, j, out, street_seg, street_from);
        }
        /* Edinburgh "10/2 High St": number 10, flat 2. */
        if ((rc = set_number(t, before, out)) != 0)
            return rc;
        if (out->sub_building[0] == '\0' &&
            (rc = copy_out(out->sub_building, sizeof(out->sub_building), sl + 1,
                           t->len - before - 1)) != 0)
            return rc;
        t->used = true;
    } else if (!t->range && j < e && c->t[j].kind == T_NUM && !c->t[j].slash &&
               out->sub_building[0] == '\0' && next_free(c, g, j + 1) < e) {
        /* "2 10 High Street": flat 2 of number 10. */
        if ((rc = copy_out(out->sub_building, sizeof(out->sub_building), t->s, t->len)) != 0)
            return rc;
        t->used = true;
        return read_number(c, g, j, out, street_seg, street_from);
    } else {
        if ((rc = set_number(t, t->len, out)) != 0)
            return rc;
        t->used = true;
        /* "10 A High Street": a lone letter then a street name is the suffix. */
        if (!t->range && out->number_suffix[0] == '\0' && j < e && c->t[j].kind == T_WORD &&
            c->t[j].len == 1 && (next_free(c, g, j + 1) < e || g + 1 < c->nseg)) {
            if ((rc = copy_out(out->number_suffix, sizeof(out->number_suffix), c->t[j].s, 1)) != 0)
                return rc;
            c->t[j].used = true;
        }
    }
    /* A number alone on its line numbers the next line. */
    if (seg_empty(c, g) && g + 1 < c->nseg)
        g++;
    *street_seg = g;
    *street_from = c->seg[g].b;
    return 0;
}

/* 2: the segment's last word is a strong thoroughfare word, 1: a weak one, 0: neither. */
static int ends_in_thoroughfare(const struct actx *c, size_t g)
{
    size_t last = SIZE_MAX;
    for (size_t i = c->seg[g].b; i < c->seg[g].e; i++)
        if (!c->t[i].used)
            last = i;
    if (last == SIZE_MAX)
        return 0;
    return IS_STRONG_THOROUGHFARE(&c->t[last]) ? 2 : IS_THOROUGHFARE(&c->t[last]) ? 1 : 0;
}

static int analyse(struct actx *c, bool free_text, struct rv_address_key *out)
{
    size_t street_seg = SIZE_MAX, street_from = 0;
    bool have_number = false;
    int rc;

    drop_postcode(c);

    /* Sub-building: a keyword and its designator, at the start of a segment. */
    for (size_t g = 0; g < c->nseg && out->sub_building[0] == '\0'; g++) {
        size_t i = c->seg[g].b;
        if (i + 1 < c->seg[g].e && IS_SUB_KEYWORD(&c->t[i]) && is_designator(&c->t[i + 1])) {
            if ((rc = copy_out(out->sub_building, sizeof(out->sub_building), c->t[i + 1].s,
                               c->t[i + 1].len)) != 0)
                return rc;
            c->t[i].used = c->t[i + 1].used = true;
        }
    }

    expand_abbreviations(c);

    /* The street segment: the first that starts with a number. */
    for (size_t g = 0; g < c->nseg; g++) {
        size_t i = next_free(c, g, c->seg[g].b);
        if (i < c->seg[g].e && c->t[i].kind == T_NUM) {
            if ((rc = read_number(c, g, i, out, &street_seg, &street_from)) != 0)
                return rc;
            have_number = true;
            break;
        }
    }
    /* Failing that, a number inside a segment, after a building name and before a street
     * name: "Ground Floor Flat 10 High St", "Rose Cottage 12 Mill Lane". */
    size_t prefix_b = 0, prefix_e = 0;
    for (size_t g = 0; g < c->nseg && !have_number; g++) {
        size_t first = next_free(c, g, c->seg[g].b);
        for (size_t i = first + 1; i + 1 < c->seg[g].e; i++) {
            if (c->t[i].kind == T_NUM && !c->t[i].used && c->t[i + 1].kind == T_WORD &&
                !c->t[i + 1].used) {
                prefix_b = first;
                prefix_e = i;
                if ((rc = read_number(c, g, i, out, &street_seg, &street_from)) != 0)
                    return rc;
                have_number = true;
                break;
            }
        }
    }
    if (!have_number) {
        for (int want = 2; want > 0 && street_seg == SIZE_MAX; want--) {
            for (size_t g = 0; g < c->nseg; g++) {
                if (!seg_empty(c, g) && ends_in_thoroughfare(c, g) == want) {
                    street_seg = g;
                    street_from = c->seg[g].b;
                    break;
                }
            }
        }
    }

    /* Building: non-empty segments before the street segment (or the first segment). */
    size_t bend = street_seg;
    if (street_seg == SIZE_MAX) {
        bend = 0;
        while (bend < c->nseg && seg_empty(c, bend))
            bend++;
        if (bend < c->nseg)
            bend++;
    }
    for (size_t g = 0; g < bend && g < c->nseg; g++)
        if ((rc = append_words(c, c->seg[g].b, c->seg[g].e, out->building,
                               sizeof(out->building))) != 0)
            return rc;
    if (prefix_e > prefix_b) {
        if ((rc = append_words(c, prefix_b, prefix_e, out->building, sizeof(out->building))) != 0)
            return rc;
        for (size_t i = prefix_b; i < prefix_e; i++)
            c->t[i].used = true;
    }

    size_t after = bend;
    if (street_seg != SIZE_MAX) {
        size_t b = street_from, e = c->seg[street_seg].e;
        if (free_text && street_seg + 1 == c->nseg) {
            /* "10 High Street Leeds": one segment of free text; the town follows the run of
             * thoroughfare words that ends the street name. */
            for (size_t i = next_free(c, street_seg, b) + 1; i < e; i++) {
                if (!c->t[i].used && IS_THOROUGHFARE(&c->t[i])) {
                    size_t k = i;
                    while (k + 1 < e && IS_THOROUGHFARE(&c->t[k + 1]))
                        k++;
                    if (k + 1 < e) {
                        if ((rc = append_words(c, k + 1, e, out->locality,
                                               sizeof(out->locality))) != 0)
                            return rc;
                        e = k + 1;
                    }
                    break;
                }
            }
        }
        if ((rc = append_words(c, b, e, out->street, sizeof(out->street))) != 0)
            return rc;
        after = street_seg + 1;
    }
    /* Locality: the last non-empty segment after the street (or building). */
    for (size_t g = c->nseg; g > after; g--) {
        if (!seg_empty(c, g - 1)) {
            out->locality[0] = '\0';
            if ((rc = append_words(c, c->seg[g - 1].b, c->seg[g - 1].e, out->locality,
                                   sizeof(out->locality))) != 0)
                return rc;
            break;
        }
    }

    /* The canonical first line. */
    char *fl = out->first_line;
    size_t flsz = sizeof(out->first_line), o = 0;
    const char *parts[4];
    size_t np = 0;
    char num[sizeof(out->number) + sizeof(out->number_suffix)];
    if (out->sub_building[0] != '\0') {
        parts[np++] = "flat";
        parts[np++] = out->sub_building;
    }
    if (out->number[0] != '\0') {
        strcpy(num, out->number);
        strcat(num, out->number_suffix);
        parts[np++] = num;
        if (out->street[0] != '\0')
            parts[np++] = out->street;
    } else if (out->building[0] != '\0') {
        parts[np++] = out->building;
    } else if (out->street[0] != '\0') {
        parts[np++] = out->street;
    }
    fl[0] = '\0';
    for (size_t k = 0; k < np; k++) {
        size_t n = strlen(parts[k]);
        if (o + (o > 0) + n + 1 > flsz)
            return RV_ETOOBIG;
        if (o > 0)
            fl[o++] = ' ';
        memcpy(fl + o, parts[k], n);
        o += n;
        fl[o] = '\0';
    }
    return 0;
}

int rv_address_key(const char *const *lines, size_t nlines, struct rv_address_key *out)
{
    struct actx c;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    c.used = c.nt = c.nseg = 0;
    if (nlines > RV_ADDR_SEGMENTS) {
        rc = RV_ETOOBIG;
        goto out;
    }
    for (size_t i = 0; i < nlines; i++) {
        if (lines == NULL || lines[i] == NULL || lines[i][0] == '\0')
            continue;
        size_t len = strnlen(lines[i], RV_ADDR_IN_MAX + 1);
        if ((rc = lex_line(&c, lines[i], len)) != 0)
            goto out;
    }
    rc = analyse(&c, false, out);
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rv_address_parse(const char *s, size_t len, struct rv_address_key *out)
{
    struct actx c;
    int rc;

    memset(out, 0, sizeof(*out));
    c.used = c.nt = c.nseg = 0;
    if ((rc = lex_line(&c, s, len)) != 0)
        goto out;
    rc = analyse(&c, true, out);
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
