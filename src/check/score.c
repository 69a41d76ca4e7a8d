/*
 * score.c - compares one donor (a query) with one register entry version (a candidate), field
 * by field, and grades the combination.
 *
 * Each field is compared at graded levels, the way a careful person reading both would:
 * forenames (exact, middle name, nickname, initials, typo, sound-alike), surname (exact,
 * hyphenated part, swapped with the forename, typo, sound-alike) and address (same property,
 * same building, same postcode, sector, town). The grade comes from the rule table in
 * rv_check_grade_for (written out in docs/matching.md); the numeric weight only orders
 * candidates that earn the same grade, and the surname's weight grows with its rarity, so
 * Smith agreeing counts for less than a rare name agreeing.
 *
 * Dates: an entry version counts only if it was valid at the date the donation was received
 * (or, for a bequest, at some time in the five years before death). One that was not is
 * still scored, so the answer can say "entered the register after the donation", but it
 * never earns a grade at that date.
 */
#include "check/internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define FN_TYPO_JW    0.92
#define FN_SIMILAR_JW 0.88
#define SN_TYPO_JW    0.88
#define STREET_JW     0.92
#define MAX_TOKENS    8
#define TOKEN_MAX     RV_NAME_MAX

struct tokens {
    char t[MAX_TOKENS][TOKEN_MAX];
    unsigned n;
};

static void tokenize(const char *s, struct tokens *out)
{
    out->n = 0;
    while (*s != '\0' && out->n < MAX_TOKENS) {
        size_t len;
        while (*s == ' ')
            s++;
        len = strcspn(s, " ");
        if (len == 0)
            break;
        if (len >= TOKEN_MAX)
            len = TOKEN_MAX - 1;
        memcpy(out->t[out->n], s, len);
        out->t[out->n][len] = '\0';
        out->n++;
        s += strcspn(s, " ");
    }
}

/* Double Metaphone codes equal, a's codes given (pa primary, aa alternate). */
static bool dm_codes_equal(const char *pa, const char *aa, const char *pb, const char *ab)
{
    if (pa[0] == '\0' || pb[0] == '\0')
        return false;
    return strcmp(pa, pb) == 0 || (ab[0] != '\0' && strcmp(ab, pb) == 0) ||
           (aa[0] != '\0' && strcmp(aa, pb) == 0) ||
           (aa[0] != '\0' && ab[0] != '\0' && strcmp(aa, ab) == 0);
}

static bool dm_equal_codes(const char *pa, const char *aa, const char *b)
{
    char pb[RV_PHONETIC_MAX], ab[RV_PHONETIC_MAX];
    rv_double_metaphone(b, pb, ab);
    return dm_codes_equal(pa, aa, pb, ab);
}

/* A register surname's Double Metaphone codes, worked out once for both readings of the
 * donor's name. */
struct dm_memo {
    bool done;
    char p[RV_PHONETIC_MAX], a[RV_PHONETIC_MAX];
};

static bool dm_equal(const char *a, const char *b)
{
    char pa[RV_PHONETIC_MAX], aa[RV_PHONETIC_MAX];
    rv_double_metaphone(a, pa, aa);
    return dm_equal_codes(pa, aa, b);
}

/* True when a and b are one insertion, deletion, substitution or adjacent transposition
 * apart (optimal string alignment distance 1). */
static bool one_edit(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i = 0;
    if (la > lb + 1 || lb > la + 1 || strcmp(a, b) == 0)
        return false;
    while (i < la && i < lb && a[i] == b[i])
        i++;
    if (la == lb) {
        if (strcmp(a + i + 1, b + i + 1) == 0)
            return true;
        return i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
               strcmp(a + i + 2, b + i + 2) == 0;
    }
    if (la > lb)
        return strcmp(a + i + 1, b + i) == 0;
    return strcmp(a + i, b + i + 1) == 0;
}

static bool is_initial(const char *t)
{
    return t[0] != '\0' && t[1] == '\0';
}

/* Forenames: q and c are folded, space-separated. *both_known reports two distinct known
 * given names (Jon, Joan), which are not taken for a typo of each other unless they also
 * sound alike. */
static enum rv_check_fn_level fn_level(const char *qs, const char *cs, bool similar,
                                       bool *both_known)
{
    struct tokens q, c;
    unsigned i, j;
    bool used_initial = false, in_order = true;
    unsigned j0 = 0;
    double jw;

    *both_known = false;
    tokenize(qs, &q);
    tokenize(cs, &c);
    if (q.n == 0 || c.n == 0)
        return RV_FN_ABSENT;
    if (q.n == c.n) {
        for (i = 0; i < q.n && strcmp(q.t[i], c.t[i]) == 0; i++)
            ;
        if (i == q.n)
            return RV_FN_EXACT;
    }
    /* The donor's tokens, in order, each a whole forename or its initial: "John", "J",
     * "J P", "John P" against "John Paul". */
    for (i = 0, j = 0; i < q.n && in_order; i++) {
        while (j < c.n && strcmp(q.t[i], c.t[j]) != 0 &&
               !(is_initial(q.t[i]) && q.t[i][0] == c.t[j][0]))
            j++;
        if (j == c.n) {
            in_order = false;
            break;
        }
        if (i == 0)
            j0 = j;
        if (strcmp(q.t[i], c.t[j]) != 0)
            used_initial = true;
        j++;
    }
    if (in_order) {
        if (used_initial)
            return j0 == 0 && strcmp(q.t[0], c.t[0]) == 0 ? RV_FN_MIDDLE : RV_FN_INITIAL;
        /* A first token that skipped the register's first forename uses a middle name. */
        return j0 == 0 ? RV_FN_MIDDLE : RV_FN_MIDDLE_ONLY;
    }
    /* The register holds initials and the donor wrote names: "J" on the register. */
    if (is_initial(c.t[0]) && c.t[0][0] == q.t[0][0])
        return RV_FN_INITIAL;
    if (strcmp(q.t[0], c.t[0]) == 0)
        return RV_FN_MIDDLE;
    for (i = 1; i < q.n; i++)
        if (strcmp(q.t[i], c.t[0]) == 0 && !is_initial(c.t[0]))
            return RV_FN_MIDDLE;
    if (rv_check_nickname(q.t[0], c.t[0]))
        return RV_FN_NICKNAME;
    for (j = 1; j < c.n; j++)
        if (!is_initial(q.t[0]) &&
            (strcmp(q.t[0], c.t[j]) == 0 || rv_check_nickname(q.t[0], c.t[j])))
            return RV_FN_MIDDLE_ONLY;
    if (is_initial(q.t[0]) || is_initial(c.t[0]))
        return RV_FN_DIFFERENT;
    jw = rv_jaro_winkler(q.t[0], c.t[0]);
    if (!similar && jw < FN_TYPO_JW) {
        /* Only typo or better matters to the caller: short of the Jaro-Winkler bar, only the
         * mistyped-first-forename rule below can still reach it, so the name lists need not
         * be consulted otherwise. */
        if (q.n != c.n || q.n < 2 || q.t[0][0] != c.t[0][0])
            return RV_FN_DIFFERENT;
        for (i = 1; i < q.n && strcmp(q.t[i], c.t[i]) == 0; i++)
            ;
        if (i != q.n)
            return RV_FN_DIFFERENT;
    }
    if (rv_check_sex_differs(q.t[0], c.t[0]))
        return RV_FN_DIFFERENT;
    *both_known = rv_check_known_forename(q.t[0]) && rv_check_known_forename(c.t[0]);
    if (jw >= FN_TYPO_JW && (!*both_known || dm_equal(q.t[0], c.t[0])))
        return RV_FN_TYPO;
    /* A mistyped first forename with every later forename agreeing: "Gzry Tom Martin". */
    if (q.n == c.n && q.n >= 2 && q.t[0][0] == c.t[0][0] && !*both_known) {
        for (i = 1; i < q.n && strcmp(q.t[i], c.t[i]) == 0; i++)
            ;
        if (i == q.n)
            return RV_FN_TYPO;
    }
    /* Without `similar`, the caller only asks whether the level is typo or better. */
    if (similar && (jw >= FN_SIMILAR_JW || dm_equal(q.t[0], c.t[0]) || one_edit(q.t[0], c.t[0])))
        return RV_FN_SIMILAR;
    return RV_FN_DIFFERENT;
}

/* The next word of s (folded, space-separated) at *p: its start and length, 0 at the end. */
static size_t next_word(const char **p, const char **w)
{
    const char *s = *p;
    size_t len;

    while (*s == ' ')
        s++;
    len = strcspn(s, " ");
    *w = s;
    *p = s + len;
    return len;
}

/* The words of s, at most MAX_TOKENS (as tokenize reads them, each cut to TOKEN_MAX - 1
 * bytes), into w and len, without copying. */
static unsigned split_tokens(const char *s, const char **w, size_t *len)
{
    unsigned n = 0;
    size_t l;

    while (n < MAX_TOKENS && (l = next_word(&s, &w[n])) != 0)
        len[n++] = l < TOKEN_MAX ? l : TOKEN_MAX - 1;
    return n;
}

/* Every token of the shorter list appears in the longer one. */
static bool token_subset(const char *a, const char *b)
{
    const char *wa[MAX_TOKENS], *wb[MAX_TOKENS];
    size_t la[MAX_TOKENS], lb[MAX_TOKENS];
    unsigned na, nb;
    const char *const *ws, *const *wl;
    const size_t *ls, *ll;
    unsigned ns, nl;

    if (strchr(a, ' ') == NULL && strchr(b, ' ') == NULL)
        return false; /* a word at most on each side: none, or as many */
    na = split_tokens(a, wa, la);
    nb = split_tokens(b, wb, lb);
    if (na == 0 || nb == 0 || na == nb)
        return false;
    ws = na < nb ? wa : wb;
    ls = na < nb ? la : lb;
    ns = na < nb ? na : nb;
    wl = na < nb ? wb : wa;
    ll = na < nb ? lb : la;
    nl = na < nb ? nb : na;
    for (unsigned i = 0; i < ns; i++) {
        unsigned j;
        for (j = 0; j < nl && !(ls[i] == ll[j] && memcmp(ws[i], wl[j], ls[i]) == 0); j++)
            ;
        if (j == nl)
            return false;
    }
    return true;
}

static bool ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80)
            return false;
    return true;
}

/* An upper bound on the Jaro-Winkler similarity of an ASCII word a (its letters counted:
 * a reading's first forename, or the donor's surname) and an ASCII word b: Jaro with every
 * character they have in common matched and none transposed (characters counted by their low 5
 * bits, which can only count more in common), raised by Winkler's bonus for their common prefix,
 * which raises a higher Jaro more. */
static double jw_bound(const uint8_t letters[32], const char *a, size_t la, const char *b,
                       size_t lb)
{
    uint8_t count[32];
    size_t common = 0, prefix = 0;
    double w;

    memcpy(count, letters, sizeof(count));
    for (size_t i = 0; i < lb; i++)
        if (count[(uint8_t)b[i] & 31] > 0) {
            count[(uint8_t)b[i] & 31]--;
            common++;
        }
    if (common == 0)
        return 0.0;
    while (prefix < 4 && prefix < la && prefix < lb && a[prefix] == b[prefix])
        prefix++;
    w = ((double)common / (double)la + (double)common / (double)lb + 1.0) / 3.0;
    return w + (double)prefix * 0.1 * (1.0 - w);
}

/* qdm: q->surname's Double Metaphone codes (primary, alternate), or NULL to compute them. */
static enum rv_check_sn_level sn_level_dm(const struct rv_name_key *q,
                                          const char (*qdm)[RV_PHONETIC_MAX],
                                          const uint8_t *letters, struct dm_memo *cdm,
                                          const struct rv_name_key *c);

static enum rv_check_sn_level sn_level(const struct rv_name_key *q, const struct rv_name_key *c)
{
    return sn_level_dm(q, NULL, NULL, NULL, c);
}

/* cdm, when not NULL, keeps c->surname's codes for the next call. */
static bool sn_dm_equal(const struct rv_name_key *q, const char (*qdm)[RV_PHONETIC_MAX],
                        struct dm_memo *cdm, const struct rv_name_key *c)
{
    if (qdm == NULL)
        return dm_equal(q->surname, c->surname);
    if (cdm == NULL)
        return dm_equal_codes(qdm[0], qdm[1], c->surname);
    if (!cdm->done) {
        rv_double_metaphone(c->surname, cdm->p, cdm->a);
        cdm->done = true;
    }
    return dm_codes_equal(qdm[0], qdm[1], cdm->p, cdm->a);
}

/* letters: q->surname's letters counted (jw_bound), when it is ASCII and shorter than
 * RV_NAME_MAX, or NULL: Jaro-Winkler is then worked out only when the bound reaches the
 * lowest bar it is held to, since below it no test below can pass on it. */
static enum rv_check_sn_level sn_level_dm(const struct rv_name_key *q,
                                          const char (*qdm)[RV_PHONETIC_MAX],
                                          const uint8_t *letters, struct dm_memo *cdm,
                                          const struct rv_name_key *c)
{
    bool both_known, edit;
    double jw;
    size_t lq, lc;

    if (q->surname[0] == '\0' || c->surname[0] == '\0')
        return RV_SN_DIFFERENT;
    if (strcmp(q->surname, c->surname) == 0)
        return RV_SN_EXACT;
    if (token_subset(q->surname_tokens, c->surname_tokens))
        return RV_SN_HYPHEN;
    /* Two different listed surnames (Thompson, Thomson; Hall, Hill) are not taken for a typo
     * of each other unless they sound alike; very close ones still count as sounding alike.
     * The lists are consulted only when the strings are close enough for it to matter. */
    lq = strlen(q->surname);
    lc = strlen(c->surname);
    if (letters != NULL && lc < RV_NAME_MAX && ascii(c->surname, lc) &&
        jw_bound(letters, q->surname, lq, c->surname, lc) < SN_TYPO_JW - 1e-9)
        jw = 0.0; /* below every bar */
    else
        jw = rv_jaro_winkler(q->surname, c->surname);
    edit = lq >= 4 && lc >= 4 && one_edit(q->surname, c->surname);
    both_known = (jw >= SN_TYPO_JW || edit) && rv_check_known_surname(q->surname) &&
                 rv_check_known_surname(c->surname);
    if (jw >= SN_TYPO_JW && (!both_known || sn_dm_equal(q, qdm, cdm, c)))
        return RV_SN_TYPO;
    if (!both_known && edit)
        return RV_SN_TYPO;
    if ((both_known && jw >= FN_TYPO_JW) || sn_dm_equal(q, qdm, cdm, c))
        return RV_SN_PHONETIC;
    return RV_SN_DIFFERENT;
}

/* Counts an ASCII surname's letters by their low 5 bits for jw_bound; false when it is not
 * ASCII or too long for it. */
static bool count_letters(const char *s, uint8_t letters[32])
{
    size_t n = strlen(s);

    memset(letters, 0, 32);
    if (n >= RV_NAME_MAX || !ascii(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        letters[(uint8_t)s[i] & 31]++;
    return true;
}

void rv_check_sn_probe_init(const struct rv_check_query *q, struct rv_check_sn_probe *p)
{
    rv_double_metaphone(q->key.surname, p->key[0], p->key[1]);
    p->key_counted = count_letters(q->key.surname, p->key_letters);
    p->alt[0][0] = p->alt[1][0] = '\0';
    p->alt_counted = false;
    if (q->alt.surname[0] != '\0') {
        rv_double_metaphone(q->alt.surname, p->alt[0], p->alt[1]);
        p->alt_counted = count_letters(q->alt.surname, p->alt_letters);
    }
}

bool rv_check_surname_close(const struct rv_check_query *q, const struct rv_check_sn_probe *p,
                            const char *words, size_t len)
{
    struct rv_name_key ck;
    struct dm_memo cdm = {false, "", ""};
    size_t o = 0;
    enum rv_check_sn_level a, b = RV_SN_DIFFERENT;

    if (len >= sizeof(ck.surname_tokens))
        return true;
    memset(&ck, 0, sizeof(ck));
    memcpy(ck.surname_tokens, words, len);
    for (size_t i = 0; i < len; i++)
        if (words[i] != ' ')
            ck.surname[o++] = words[i];
    a = sn_level_dm(&q->key, p->key, p->key_counted ? p->key_letters : NULL, &cdm, &ck);
    if (q->alt.surname[0] != '\0')
        b = sn_level_dm(&q->alt, p->alt, p->alt_counted ? p->alt_letters : NULL, &cdm, &ck);
    sodium_memzero(&ck, sizeof(ck));
    sodium_memzero(&cdm, sizeof(cdm));
    return (a != RV_SN_DIFFERENT && a != RV_SN_EXACT) || (b != RV_SN_DIFFERENT && b != RV_SN_EXACT);
}

/* ---- addresses ----------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static bool street_same(const char *a, const char *b)
{
    if (a[0] == '\0' || b[0] == '\0')
        return true;
    if (strcmp(a, b) == 0 || strstr(a, b) != NULL || strstr(b, a) != NULL)
        return true;
    return rv_jaro_winkler(a, b) >= STREET_JW;
}

/* The flat (sub-building) designator, or the number's letter suffix when there is no flat:
 * "Flat A, 10" and "10a" both give "a". */
static const char *flat_of(const struct rv_address_key *k)
{
    return k->sub_building[0] != '\0' ? k->sub_building : k->number_suffix;
}

static enum rv_check_addr_level addr_level(const struct rv_check_query *q,
                                           const struct rv_elector *e)
{
    struct rv_address_key c;
    const char *lines[RV_ADDR_LINES];
    bool have_lines = false, pc_same = false, sector_same = false, district_same = false;
    bool area_same = false;
    bool c_ok = false;
    char s1[9], s2[9];

    for (unsigned i = 0; i < RV_ADDR_LINES; i++) {
        lines[i] = e->address[i];
        if (e->address[i][0] != '\0')
            have_lines = true;
    }
    if ((e->markers.known & RV_MARK_F) != 0 || (!have_lines && e->postcode.canon[0] == '\0'))
        return RV_ADDR_OVERSEAS;
    memset(&c, 0, sizeof(c));
    /* The entry's address lines are read only against the donor's own. */
    if (q->has_address && have_lines && rv_address_key(lines, RV_ADDR_LINES, &c) == 0)
        c_ok = true;
    if (q->has_postcode && e->postcode.canon[0] != '\0') {
        pc_same = strcmp(q->postcode.canon, e->postcode.canon) == 0;
        sector_same =
            strcmp(rv_postcode_sector(&q->postcode, s1), rv_postcode_sector(&e->postcode, s2)) == 0;
        district_same = strcmp(rv_postcode_district(&q->postcode, s1),
                               rv_postcode_district(&e->postcode, s2)) == 0;
        area_same =
            strcmp(rv_postcode_area(&q->postcode, s1), rv_postcode_area(&e->postcode, s2)) == 0;
    }
    if (q->has_address && c_ok && (q->addr.number[0] != '\0' || q->addr.building[0] != '\0')) {
        const struct rv_address_key *a = &q->addr;
        bool street = street_same(a->street, c.street);
        bool town = a->locality[0] != '\0' && str_eq(a->locality, c.locality);
        bool anchor = pc_same || (street && a->street[0] != '\0' && c.street[0] != '\0' &&
                                  (sector_same || town || !q->has_postcode));
        bool number = a->number[0] != '\0' && str_eq(a->number, c.number);
        bool building =
            a->building[0] != '\0' && c.building[0] != '\0' && str_eq(a->building, c.building);
        bool building_clash = a->building[0] != '\0' && c.building[0] != '\0' && !building;
        bool same_building =
            (number && (a->building[0] == '\0' || c.building[0] == '\0' || building)) ||
            (building && (a->number[0] == '\0' || c.number[0] == '\0'));
        if (anchor && street && same_building && !(building_clash && !number)) {
            if (str_eq(a->sub_building, c.sub_building) &&
                str_eq(a->number_suffix, c.number_suffix))
                return RV_ADDR_PROPERTY;
            /* Two different flats are two properties: only the postcode agrees. */
            if (flat_of(a)[0] != '\0' && flat_of(&c)[0] != '\0' && !str_eq(flat_of(a), flat_of(&c)))
                return pc_same ? RV_ADDR_POSTCODE_ONLY : RV_ADDR_SECTOR;
            /* "10a" against "Flat A, 10", or the flat missing on one side. */
            return RV_ADDR_BUILDING;
        }
        if (anchor && street && number && str_eq(flat_of(a), flat_of(&c)) && flat_of(a)[0] != '\0')
            return RV_ADDR_BUILDING;
        if (pc_same)
            return RV_ADDR_POSTCODE_ONLY;
    } else if (pc_same) {
        return RV_ADDR_POSTCODE;
    }
    if (sector_same)
        return RV_ADDR_SECTOR;
    if (district_same)
        return RV_ADDR_TOWN;
    if (q->has_address && c_ok && q->addr.locality[0] != '\0' &&
        str_eq(q->addr.locality, c.locality))
        return RV_ADDR_TOWN;
    if (area_same)
        return RV_ADDR_AREA;
    return RV_ADDR_DIFFERENT;
}

/* ---- grades -------------------------------------------------------------------------- */

enum name_class { NAME_FULL, NAME_VARIANT, NAME_PARTIAL, NAME_WEAK, NAME_POOR, NAME_NONE };

static enum name_class name_class(enum rv_check_fn_level fn, enum rv_check_sn_level sn)
{
    bool fn_close = fn == RV_FN_MIDDLE || fn == RV_FN_NICKNAME || fn == RV_FN_TYPO;
    bool sn_close = sn == RV_SN_HYPHEN || sn == RV_SN_SWAPPED || sn == RV_SN_TYPO;

    if (fn == RV_FN_DIFFERENT || sn == RV_SN_DIFFERENT)
        return NAME_NONE;
    if (fn == RV_FN_EXACT && sn == RV_SN_EXACT)
        return NAME_FULL;
    if ((fn_close && sn == RV_SN_EXACT) || (fn == RV_FN_EXACT && sn_close))
        return NAME_VARIANT;
    if (fn == RV_FN_MIDDLE_ONLY && sn == RV_SN_EXACT)
        return NAME_PARTIAL;
    if (((fn == RV_FN_INITIAL || fn == RV_FN_SIMILAR || fn == RV_FN_ABSENT) && sn == RV_SN_EXACT) ||
        ((fn_close || fn == RV_FN_MIDDLE_ONLY) && sn_close) ||
        (fn == RV_FN_EXACT && sn == RV_SN_PHONETIC))
        return NAME_WEAK;
    return NAME_POOR;
}

/* The rule table: rows are name classes, columns address levels (docs/matching.md). */
#define E RV_GRADE_EXACT
#define S RV_GRADE_STRONG
#define P RV_GRADE_POSSIBLE
#define N RV_GRADE_NONE
/* clang-format off */
static const enum rv_check_grade rules[5][RV_ADDR_NLEVELS] = {
    /*               property building postcode pc-only sector town area overseas different */
    [NAME_FULL]    = {E,       S,       S,       P,      P,     P,   P,   P,       N},
    [NAME_VARIANT] = {S,       S,       S,       P,      P,     P,   N,   P,       N},
    [NAME_PARTIAL] = {S,       S,       P,       P,      P,     P,   N,   P,       N},
    [NAME_WEAK]    = {P,       P,       P,       P,      N,     N,   N,   N,       N},
    [NAME_POOR]    = {P,       P,       N,       N,      N,     N,   N,   N,       N},
};
/* clang-format on */
#undef E
#undef S
#undef P
#undef N

enum rv_check_grade rv_check_grade_for(enum rv_check_fn_level fn, enum rv_check_sn_level sn,
                                       enum rv_check_addr_level addr, double surname_weight)
{
    enum name_class nc = name_class(fn, sn);

    if (nc == NAME_NONE || (unsigned)addr >= RV_ADDR_NLEVELS)
        return RV_GRADE_NONE;
    /* The name is the only evidence: a rare surname carries it further. */
    if (nc == NAME_FULL && addr == RV_ADDR_OVERSEAS && surname_weight >= RV_CHECK_RARE_BITS)
        return RV_GRADE_STRONG;
    if (nc == NAME_FULL && addr == RV_ADDR_DIFFERENT && surname_weight >= RV_CHECK_RARE_BITS)
        return RV_GRADE_POSSIBLE;
    return rules[nc][addr];
}

/* ---- weights ------------------------------------------------------------------------- */

static const double fn_weight[RV_FN_NLEVELS] = {6.0, 4.5, 4.0, 3.0, 2.0, 3.5, 2.0, 0.0, -6.0};
static const double sn_factor[RV_SN_NLEVELS] = {1.0, 0.7, 0.8, 0.6, 0.4, 0.0};
static const double addr_weight[RV_ADDR_NLEVELS] = {10.0, 8.0, 6.0, 4.0, 3.0, 2.0, 0.0, 1.0, -2.0};

/* Generational suffixes tell father from son: agreeing earns a little, clashing costs. */
static double suffix_weight(const struct rv_name *q, const struct rv_name *c)
{
    char a[RV_SUFFIX_MAX], b[RV_SUFFIX_MAX];
    if (q->suffix[0] == '\0' || c->suffix[0] == '\0')
        return 0.0;
    if (rv_fold(q->suffix, strlen(q->suffix), a, sizeof(a)) != 0 ||
        rv_fold(c->suffix, strlen(c->suffix), b, sizeof(b)) != 0)
        return 0.0;
    return strcmp(a, b) == 0 ? 1.0 : -1.0;
}

void rv_check_bequest_window(rv_date death, rv_date *from, rv_date *to)
{
    int y, m, d;
    rv_date_to_ymd(death, &y, &m, &d);
    if (m == 2 && d == 29)
        d = 28;
    *from = rv_date_from_ymd(y - 5, m, d);
    *to = death + 1;
}

bool rv_check_bequest_registered(rv_date from, rv_date to, rv_date death)
{
    rv_date wf, wt;
    if (death == RV_DATE_NONE || from == RV_DATE_NONE)
        return false;
    rv_check_bequest_window(death, &wf, &wt);
    return from < wt && to > wf;
}

bool rv_check_restricted(const struct rv_check_query *q, const struct rv_elector *e)
{
    return e->attainment != RV_DATE_NONE && e->attainment >= q->win_to;
}

/* What one reading of the donor's name earns against a candidate. Holds no register data. */
struct levels {
    enum rv_check_fn_level fn;
    enum rv_check_sn_level sn;
    enum rv_check_addr_level addr;
    enum rv_check_grade grade;
    bool fn_both_known;
    double weight;
    double surname_weight;
};

/* The name levels of one reading of the donor's name (qk: q->key or q->alt; swap, when not
 * NULL, the surname-first reading) into out. With full false, a surname that rules the
 * candidate out leaves the forenames uncompared (different). */
static void name_levels(const struct rv_name_key *qk, const struct rv_name_key *swap,
                        const struct rv_name_key *ck, bool full, bool similar, struct levels *out)
{
    bool known = false;
    bool swapped =
        swap != NULL && swap->surname[0] != '\0' && strcmp(swap->surname, ck->surname) == 0;

    out->sn = sn_level(qk, ck);
    out->fn_both_known = false;
    if (!full && out->sn == RV_SN_DIFFERENT && !swapped) {
        out->fn = RV_FN_DIFFERENT; /* the surname alone rules a match out */
        return;
    }
    out->fn = fn_level(qk->forenames, ck->forenames, similar, &known);
    if (out->sn != RV_SN_EXACT && swapped) {
        /* Written the other way round ("SMITH John Paul"): the donor's first forename is the
         * register's surname, and the rest are the register's forenames. */
        bool k2 = false;
        enum rv_check_fn_level f = fn_level(swap->forenames, ck->forenames, similar, &k2);
        if (f <= RV_FN_TYPO) {
            out->sn = RV_SN_SWAPPED;
            out->fn = f;
            known = k2;
        }
    }
    out->fn_both_known = known;
}

/* Grades and weighs one reading whose levels (out->fn, sn, addr) are set. */
static void grade_with(const struct rv_check_query *q, const struct rv_elector *e,
                       const struct rv_name_key *ck, struct levels *out)
{
    out->surname_weight = rv_check_surname_weight(ck->surname);
    out->grade = rv_check_grade_for(out->fn, out->sn, out->addr, out->surname_weight);
    /* An attainer not yet of age at the date is never confirmed from the register alone. */
    if (rv_check_restricted(q, e) && out->grade > RV_GRADE_POSSIBLE)
        out->grade = RV_GRADE_POSSIBLE;
    out->weight = fn_weight[out->fn] + out->surname_weight * sn_factor[out->sn] +
                  addr_weight[out->addr] + suffix_weight(&q->name, &e->name) -
                  (out->sn == RV_SN_DIFFERENT ? 5.0 : 0.0);
}

/* A different forename or surname is never a match, whatever the address (the rule
 * table's "none" class). */
static bool name_rules_out(const struct levels *l)
{
    return l->fn == RV_FN_DIFFERENT || l->sn == RV_SN_DIFFERENT;
}

/* Scores cand into *best. With full false, stops before comparing addresses when no
 * reading of the name can match, leaving best->grade RV_GRADE_NONE. */
static void score(const struct rv_check_query *q, const struct rv_check_candidate *cand, bool full,
                  struct levels *best)
{
    struct rv_name_key ck;
    struct levels alt = {
        RV_FN_DIFFERENT, RV_SN_DIFFERENT, RV_ADDR_DIFFERENT, RV_GRADE_NONE, false, 0.0, 0.0};
    bool has_alt = q->alt.surname[0] != '\0';

    *best = alt;
    if (rv_name_key(&cand->elector.name, &ck) != 0)
        goto out;
    name_levels(&q->key, &q->swap, &ck, full, true, best);
    if (has_alt)
        name_levels(&q->alt, NULL, &ck, full, true, &alt);
    if (!full && name_rules_out(best) && (!has_alt || name_rules_out(&alt))) {
        best->fn = RV_FN_DIFFERENT;
        best->sn = RV_SN_DIFFERENT;
        goto out;
    }
    best->addr = addr_level(q, &cand->elector);
    grade_with(q, &cand->elector, &ck, best);
    if (has_alt) {
        /* The other reading of the name, kept only if it does better. */
        alt.addr = best->addr;
        grade_with(q, &cand->elector, &ck, &alt);
        if (alt.grade > best->grade || (alt.grade == best->grade && alt.weight > best->weight))
            *best = alt;
    }
out:
    sodium_memzero(&ck, sizeof(ck));
}

bool rv_check_name_could_grade(const struct rv_check_query *q, const char *surname_words,
                               const char *forenames)
{
    struct rv_name_key ck;
    struct levels l;
    size_t o = 0;
    bool could;

    if (strlen(surname_words) >= sizeof(ck.surname_tokens) ||
        strlen(forenames) >= sizeof(ck.forenames))
        return true;
    memset(&ck, 0, sizeof(ck));
    strcpy(ck.surname_tokens, surname_words);
    strcpy(ck.forenames, forenames);
    for (const char *p = surname_words; *p != '\0'; p++)
        if (*p != ' ')
            ck.surname[o++] = *p;
    /* Without a postcode the address is never better than overseas (or town): only full,
     * variant and partial names earn a grade there. */
    name_levels(&q->key, &q->swap, &ck, false, false, &l);
    could = name_class(l.fn, l.sn) <= NAME_PARTIAL;
    if (!could && q->alt.surname[0] != '\0') {
        name_levels(&q->alt, NULL, &ck, false, false, &l);
        could = name_class(l.fn, l.sn) <= NAME_PARTIAL;
    }
    sodium_memzero(&ck, sizeof(ck));
    sodium_memzero(&l, sizeof(l));
    return could;
}

/* ---- a cheap test before rv_check_name_could_grade ------------------------------------ */

/* Splits s into up to RV_CHECK_PROBE_WORDS words as tokenize does; returns the count, and the
 * end of the last word read in *end. */
static unsigned split_words(const char *s, const char **w, size_t *len, const char **end)
{
    unsigned n = 0;

    while (n < RV_CHECK_PROBE_WORDS) {
        const char *b;
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        for (b = s; *s != ' ' && *s != '\0'; s++)
            ;
        w[n] = b;
        len[n] = (size_t)(s - b);
        n++;
    }
    *end = s;
    return n;
}

static inline bool word_eq(const char *a, size_t la, const char *b, size_t lb)
{
    return la == lb && a[0] == b[0] && memcmp(a, b, la) == 0;
}

void rv_check_name_probe_init(const struct rv_check_query *q, struct rv_check_name_probe *p)
{
    const struct rv_name_key *k[3] = {&q->key, &q->swap, &q->alt};
    const char *end;

    memset(p, 0, sizeof(*p));
    p->q = q;
    for (int i = 0; i < 3; i++) {
        p->r[i].same_as = -1;
        if (k[i]->surname[0] == '\0' ||
            (p->r[i].n = split_words(k[i]->forenames, p->r[i].w, p->r[i].len, &end)) == 0)
            continue;
        memcpy(p->r[i].first, p->r[i].w[0], p->r[i].len[0]); /* shorter than the field */
        p->r[i].first[p->r[i].len[0]] = '\0';
        for (int j = i - 1; j >= 0; j--)
            if (p->r[j].n > 0 && strcmp(p->r[j].first, p->r[i].first) == 0)
                p->r[i].same_as = (int8_t)j;
        p->r[i].first_again = p->r[i].same_as >= 0;
        p->r[i].first_ascii = ascii(p->r[i].first, p->r[i].len[0]);
        for (size_t j = 0; j < p->r[i].len[0]; j++)
            p->r[i].letters[(uint8_t)p->r[i].first[j] & 31]++;
        p->r[i].nick = rv_check_nicknames_of(p->r[i].first, &p->r[i].nnick);
        for (size_t j = 0; j < p->r[i].nnick; j++)
            p->r[i].nick_mask |= 1ull << ((uint8_t)p->r[i].nick[j].s[0] % 64);
    }
}

/* A necessary condition for fn_level (without `similar`) to give exact, middle, nickname,
 * middle only or typo for a reading of the donor's forenames against register words c (the
 * levels that grade a name without a postcode), each test following one of fn_level's ways
 * to those levels: a word of one equal to the other's first (exact, middle, middle only),
 * the first forename mistyped with every later one agreeing, first forenames close enough
 * in spelling for a typo, or a nickname of the donor's first forename. */
static bool words_may_agree(const struct rv_check_name_probe *p, int r, bool again,
                            const char *const *cw, const size_t *cl, unsigned cn)
{
    const char *const *qw = p->r[r].w;
    const size_t *ql = p->r[r].len;
    unsigned qn = p->r[r].n, i;
    char b[TOKEN_MAX];
    bool agree = false;

    if (qn == 0 || cn == 0)
        return false; /* absent */
    for (unsigned j = 0; j < cn; j++)
        if (word_eq(qw[0], ql[0], cw[j], cl[j]))
            return true;
    for (i = 1; i < qn; i++)
        if (word_eq(qw[i], ql[i], cw[0], cl[0]))
            return true;
    if (qn == cn && qn >= 2 && qw[0][0] == cw[0][0]) {
        for (i = 1; i < qn && word_eq(qw[i], ql[i], cw[i], cl[i]); i++)
            ;
        if (i == qn)
            return true;
    }
    if (again)
        return false;             /* the typo and nickname tests are an earlier reading's */
    if (ql[0] > 1 && cl[0] > 1) { /* neither an initial: a typo is possible */
        if (p->r[r].first_ascii && ascii(cw[0], cl[0])) {
            /* Jaro-Winkler >= 0.92 needs Jaro >= 0.92 without a common prefix and >= 0.867
             * with the longest, so the shorter word at least 0.76 (0.6) of the longer's
             * length: a cheaper test first, gated a little lower to be safe. */
            size_t mn = ql[0] < cl[0] ? ql[0] : cl[0], mx = ql[0] < cl[0] ? cl[0] : ql[0];
            agree = 100 * mn >= (qw[0][0] != cw[0][0] ? 75 : 59) * mx &&
                    jw_bound(p->r[r].letters, qw[0], ql[0], cw[0], cl[0]) >= FN_TYPO_JW - 1e-9;
        } else if (cl[0] < sizeof(b)) {
            memcpy(b, cw[0], cl[0]);
            b[cl[0]] = '\0';
            agree = rv_jaro_winkler(p->r[r].first, b) >= FN_TYPO_JW;
            sodium_memzero(b, sizeof(b));
        } else {
            return true;
        }
    }
    for (unsigned j = 0; j < cn && !agree; j++) {
        if ((p->r[r].nick_mask & 1ull << ((uint8_t)cw[j][0] % 64)) == 0)
            continue;
        for (size_t k = 0; k < p->r[r].nnick && !agree; k++)
            agree = word_eq(p->r[r].nick[k].s, p->r[r].nick[k].len, cw[j], cl[j]);
    }
    return agree;
}

/* True when folded surname words, joined without their spaces, are s: only then is the
 * surname-first reading of the donor's name (whose surname is the first forename written)
 * compared at all (name_levels' `swapped`), so only then can its forenames matter. */
static bool joined_eq(const char *words, const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *words != '\0'; words++) {
        if (*words == ' ')
            continue;
        if (*words != *s)
            return false;
        s++;
    }
    return *s == '\0';
}

bool rv_check_name_probe_may(const struct rv_check_name_probe *p, const char *surname_words,
                             const char *forenames)
{
    const char *cw[RV_CHECK_PROBE_WORDS], *end;
    size_t cl[RV_CHECK_PROBE_WORDS];
    unsigned cn = split_words(forenames, cw, cl, &end);

    if (strlen(surname_words) >= RV_NAME_MAX ||
        (size_t)(end - forenames) + strlen(end) >= RV_NAME_MAX)
        return true;                        /* rv_check_name_could_grade cannot judge it either */
    bool tested[3] = {false, false, false}; /* the reading's first word had every test */

    for (int i = 0; i < 3; i++) {
        int same = p->r[i].same_as;
        if (i == 1 && !joined_eq(surname_words, p->q->swap.surname))
            continue;
        /* A first word an earlier reading tested in full is not tested again. */
        if (words_may_agree(p, i, same >= 0 && tested[same], cw, cl, cn))
            return true;
        tested[i] = true;
    }
    return false;
}

bool rv_check_name_probe_grade(const struct rv_check_name_probe *p, const char *surname_words,
                               const char *forenames)
{
    return rv_check_name_probe_may(p, surname_words, forenames) &&
           rv_check_name_could_grade(p->q, surname_words, forenames);
}

static void fill(const struct rv_check_query *q, const struct rv_check_candidate *cand,
                 const struct levels *l, struct rv_check_match *out)
{
    memset(out, 0, sizeof(*out));
    out->cand = *cand;
    out->fn = l->fn;
    out->sn = l->sn;
    out->addr = l->addr;
    out->grade = l->grade;
    out->in_force = cand->from != RV_DATE_NONE && cand->from < q->win_to && cand->to > q->win_from;
    out->fn_both_known = l->fn_both_known;
    out->weight = l->weight;
    out->surname_weight = l->surname_weight;
}

void rv_check_score(const struct rv_check_query *q, const struct rv_check_candidate *cand,
                    struct rv_check_match *out)
{
    struct levels l;
    score(q, cand, true, &l);
    fill(q, cand, &l, out);
}

bool rv_check_score_graded(const struct rv_check_query *q, const struct rv_check_candidate *cand,
                           struct rv_check_match *out)
{
    struct levels l;
    score(q, cand, false, &l);
    if (l.grade == RV_GRADE_NONE)
        return false;
    fill(q, cand, &l, out);
    return true;
}
