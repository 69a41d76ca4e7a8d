/*
 * name.c - elector and donor names: parsing into title, forenames, surname and suffix, and
 * the folded keys that blind indexes and matching use.
 *
 * Registers give a name either whole ("Mr John A Smith OBE", "SMITH, John A") or as
 * separate surname and forename columns; donors' names arrive as free text. Both must key
 * alike. Rules:
 *  - leading titles (Mr, Dr, Rev, Sir, Rt Hon ...) go to title, trailing post-nominals and
 *    generational suffixes (OBE, QC, MP, Jr, III ...) go to suffix, matched without case
 *    and without dots ("O.B.E.", "Ph.D."); a title or suffix is never taken when it is the
 *    only word left, so "Major" or "Sr" alone stay a surname;
 *  - a comma means surname first ("SMITH, John A");
 *  - otherwise the last word is the surname, and lower-case particles written before it
 *    join it ("Ludwig van Beethoven", "Maria de la Cruz"), as does a Mc or Mac written
 *    apart ("Jessica Mc Lean");
 *  - the key drops apostrophes (O'Brien = OBrien = obrien), keeps a hyphenated surname both
 *    joined ("smithjones") and as tokens ("smith jones"), and writes Mc as Mac so that
 *    McDonald and MacDonald key alike ("macdonald").
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RV_NAME_IN_MAX 4096 /* longest raw name looked at */
#define RV_NAME_TOKENS 64

struct token {
    const char *s;
    size_t len;
};

struct tokens {
    struct token t[RV_NAME_TOKENS];
    size_t n;
    size_t comma_after; /* index of the token a first comma follows, or SIZE_MAX */
    bool lead_comma;    /* a comma before any word: surname-first with no surname */
};

/* Word lists are kept sorted: they are searched with bsearch. */
static const char *const rv_titles[] = {
    "baron",  "baroness",  "brig",      "capt",       "captain",  "cdr",         "cllr",
    "col",    "colonel",   "commander", "councillor", "countess", "cpl",         "dame",
    "doctor", "dr",        "fr",        "gen",        "general",  "hon",         "honourable",
    "imam",   "lady",      "lieut",     "lord",       "lt",       "maj",         "major",
    "master", "miss",      "mr",        "mrs",        "ms",       "mx",          "pastor",
    "prof",   "professor", "rabbi",     "rev",        "revd",     "reverend",    "right",
    "rt",     "sgt",       "sir",       "very",       "viscount", "viscountess",
};

static const char *const rv_postnominals[] = {
    "bart",  "bem", "bt",  "cb",   "cbe",  "ch",   "cmg", "cvo",  "dbe", "dl",
    "dphil", "dso", "esq", "fca",  "frcp", "frcs", "frs", "frse", "gbe", "gc",
    "ii",    "iii", "iv",  "jnr",  "jp",   "jr",   "kbe", "kc",   "kcb", "kcmg",
    "kcvo",  "llb", "lvo", "mbbs", "mbe",  "mep",  "mla", "mp",   "ms",  "msp",
    "mvo",   "obe", "om",  "phd",  "qc",   "rn",   "snr", "sr",   "vc",
};

static const char *const rv_mac[] = {"mac", "mc"};

/* Particles that join the surname when written in lower case before it. */
static const char *const rv_particles[] = {
    "da", "de", "del", "den", "der", "di", "dos", "du", "la", "le", "st", "van", "von",
};

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

static int cmp_word(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

/* Looks a token up in a sorted lower-case list, ignoring case and dots. */
static bool token_is(const struct token *t, const char *const *list, size_t nlist)
{
    char w[16];
    size_t n = 0;

    for (size_t i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '.')
            continue;
        if (n + 1 >= sizeof(w))
            return false;
        w[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    w[n] = '\0';
    return n > 0 && bsearch(w, list, nlist, sizeof(*list), cmp_word) != NULL;
}

static bool token_is_particle(const struct token *t)
{
    for (size_t i = 0; i < NWORDS(rv_particles); i++)
        if (strlen(rv_particles[i]) == t->len && memcmp(t->s, rv_particles[i], t->len) == 0)
            return true;
    return false;
}

/* Splits a cleaned string (single spaces) at spaces and commas. */
static int tokenise(const char *s, struct tokens *tk)
{
    tk->n = 0;
    tk->comma_after = SIZE_MAX;
    tk->lead_comma = false;
    while (*s != '\0') {
        while (*s == ' ' || *s == ',') {
            if (*s == ',' && tk->n == 0)
                tk->lead_comma = true;
            if (*s == ',' && tk->n > 0 && tk->comma_after == SIZE_MAX)
                tk->comma_after = tk->n - 1;
            s++;
        }
        if (*s == '\0')
            break;
        const char *b = s;
        while (*s != '\0' && *s != ' ' && *s != ',')
            s++;
        if (tk->n == RV_NAME_TOKENS)
            return RV_ETOOBIG;
        tk->t[tk->n].s = b;
        tk->t[tk->n].len = (size_t)(s - b);
        tk->n++;
    }
    return 0;
}

/* Appends tokens [b, e) to dst (size dstsz) separated by spaces; trailing dots are dropped
 * when drop_dot is set (titles: "Dr." -> "Dr"). */
static int join(char *dst, size_t dstsz, const struct token *t, size_t b, size_t e, bool drop_dot)
{
    size_t o = strlen(dst);

    for (size_t i = b; i < e; i++) {
        size_t len = t[i].len;
        if (drop_dot && len > 1 && t[i].s[len - 1] == '.')
            len--;
        if (o + (o > 0) + len + 1 > dstsz)
            return RV_ETOOBIG;
        if (o > 0)
            dst[o++] = ' ';
        memcpy(dst + o, t[i].s, len);
        o += len;
        dst[o] = '\0';
    }
    return 0;
}

/* Takes titles from the front of [*b, e) while more than min_left tokens remain. */
static int take_titles(const struct tokens *tk, size_t *b, size_t e, size_t min_left,
                       struct rv_name *out)
{
    size_t start = *b;
    while (*b < e && e - *b > min_left && token_is(&tk->t[*b], rv_titles, NWORDS(rv_titles)))
        (*b)++;
    return join(out->title, sizeof(out->title), tk->t, start, *b, true);
}

/* Takes post-nominals from the back of [b, *e) while more than min_left tokens remain. */
static int take_suffixes(const struct tokens *tk, size_t b, size_t *e, size_t min_left,
                         struct rv_name *out)
{
    size_t end = *e;
    char tmp[RV_SUFFIX_MAX] = "";
    int rc;

    while (*e > b && *e - b > min_left &&
           token_is(&tk->t[*e - 1], rv_postnominals, NWORDS(rv_postnominals)))
        (*e)--;
    if ((rc = join(tmp, sizeof(tmp), tk->t, *e, end, false)) != 0)
        return rc;
    /* Suffixes found in a later field go after those already held. */
    if (tmp[0] != '\0') {
        struct token one = {tmp, strlen(tmp)};
        return join(out->suffix, sizeof(out->suffix), &one, 0, 1, false);
    }
    return 0;
}

static int clean_into(const char *s, size_t len, char *buf, size_t bufsz)
{
    if (len > RV_NAME_IN_MAX)
        return RV_ETOOBIG;
    return rv_text_clean(s, len, buf, bufsz);
}

int rv_name_parse(const char *s, size_t len, struct rv_name *out)
{
    char buf[RV_NAME_IN_MAX + 1];
    struct tokens tk;
    size_t b = 0, e;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = clean_into(s, len, buf, sizeof(buf))) != 0 || (rc = tokenise(buf, &tk)) != 0)
        goto out;
    e = tk.n;
    if (tk.lead_comma) {
        rc = RV_EPARSE;
        goto out;
    }
    if ((rc = take_suffixes(&tk, 0, &e, 1, out)) != 0)
        goto out;
    if (tk.comma_after != SIZE_MAX && tk.comma_after + 1 < e) {
        /* "SMITH, John A" / "Dr SMITH, John" / "SMITH, Mr John". */
        size_t se = tk.comma_after + 1, fb = se;
        if ((rc = take_titles(&tk, &b, se, 1, out)) != 0 ||
            (rc = take_titles(&tk, &fb, e, 0, out)) != 0)
            goto out;
        if ((rc = join(out->surname, sizeof(out->surname), tk.t, b, se, false)) != 0 ||
            (rc = join(out->forenames, sizeof(out->forenames), tk.t, fb, e, false)) != 0)
            goto out;
    } else {
        if ((rc = take_titles(&tk, &b, e, 1, out)) != 0)
            goto out;
        if (e == b) {
            rc = RV_EPARSE;
            goto out;
        }
        size_t sb = e - 1;
        /* "Mc Lean" and "Mac Lean" written apart are one surname, as long as a forename
         * is left ("Mac Smith" alone is a forename and a surname). */
        while (sb > b && (token_is_particle(&tk.t[sb - 1]) ||
                          (sb > b + 1 && token_is(&tk.t[sb - 1], rv_mac, NWORDS(rv_mac)))))
            sb--;
        if ((rc = join(out->surname, sizeof(out->surname), tk.t, sb, e, false)) != 0 ||
            (rc = join(out->forenames, sizeof(out->forenames), tk.t, b, sb, false)) != 0)
            goto out;
    }
    if (out->surname[0] == '\0')
        rc = RV_EPARSE;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rv_name_from_parts(const char *surname, const char *forenames, struct rv_name *out)
{
    char sbuf[RV_NAME_IN_MAX + 1], fbuf[RV_NAME_IN_MAX + 1];
    struct tokens st, ft;
    size_t sb = 0, se, fb = 0, fe;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = clean_into(surname, strlen(surname), sbuf, sizeof(sbuf))) != 0 ||
        (rc = clean_into(forenames, strlen(forenames), fbuf, sizeof(fbuf))) != 0 ||
        (rc = tokenise(sbuf, &st)) != 0 || (rc = tokenise(fbuf, &ft)) != 0)
        goto out;
    se = st.n;
    fe = ft.n;
    /* A title may lead either field; post-nominals may end either. The surname keeps at
     * least one word; the forenames field may be a title alone ("Mr"). */
    if ((rc = take_titles(&ft, &fb, fe, 0, out)) != 0 ||
        (rc = take_titles(&st, &sb, se, 1, out)) != 0 ||
        (rc = take_suffixes(&ft, fb, &fe, 0, out)) != 0 ||
        (rc = take_suffixes(&st, sb, &se, 1, out)) != 0)
        goto out;
    if (se == sb) {
        rc = RV_EPARSE;
        goto out;
    }
    if ((rc = join(out->surname, sizeof(out->surname), st.t, sb, se, false)) != 0 ||
        (rc = join(out->forenames, sizeof(out->forenames), ft.t, fb, fe, false)) != 0)
        goto out;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Appends a word to a space-separated list. */
static int append_word(char *dst, size_t dstsz, size_t *o, const char *w, size_t len, bool space)
{
    if (*o + (space && *o > 0) + len + 1 > dstsz)
        return RV_ETOOBIG;
    if (space && *o > 0)
        dst[(*o)++] = ' ';
    memcpy(dst + *o, w, len);
    *o += len;
    dst[*o] = '\0';
    return 0;
}

int rv_name_key(const struct rv_name *n, struct rv_name_key *out)
{
    char folded[RV_NAME_MAX];
    size_t oj = 0, ot = 0;
    const char *p;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = rv_fold(n->forenames, strnlen(n->forenames, sizeof(n->forenames)), out->forenames,
                      sizeof(out->forenames))) != 0)
        goto out;
    size_t flen = strcspn(out->forenames, " ");
    memcpy(out->first, out->forenames, flen);
    out->first[flen] = '\0';
    if ((unsigned char)out->first[0] < 0x80)
        out->initial = out->first[0];

    if ((rc = rv_fold(n->surname, strnlen(n->surname, sizeof(n->surname)), folded,
                      sizeof(folded))) != 0)
        goto out;
    if (folded[0] == '\0') {
        rc = RV_EPARSE;
        goto out;
    }
    p = folded;
    while (*p != '\0') {
        size_t len = strcspn(p, " ");
        const char *w = p;
        if (len >= 2 && w[0] == 'm' && w[1] == 'c') {
            /* Mc and Mac key alike. */
            if ((rc = append_word(out->surname, sizeof(out->surname), &oj, "mac", 3, false)) ||
                (rc =
                     append_word(out->surname, sizeof(out->surname), &oj, w + 2, len - 2, false)) ||
                (rc = append_word(out->surname_tokens, sizeof(out->surname_tokens), &ot, "mac", 3,
                                  true)) ||
                (rc = append_word(out->surname_tokens, sizeof(out->surname_tokens), &ot, w + 2,
                                  len - 2, false)))
                goto out;
        } else if ((rc = append_word(out->surname, sizeof(out->surname), &oj, w, len, false)) ||
                   (rc = append_word(out->surname_tokens, sizeof(out->surname_tokens), &ot, w, len,
                                     true))) {
            goto out;
        }
        out->nsurname_tokens++;
        p += len;
        while (*p == ' ')
            p++;
    }
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

const char *rv_name_format(const struct rv_name *n, char *buf, size_t bufsz)
{
    int fl = (int)strnlen(n->forenames, sizeof(n->forenames));
    int sl = (int)strnlen(n->surname, sizeof(n->surname));

    if (bufsz == 0)
        return buf;
    snprintf(buf, bufsz, "%.*s%s%.*s", fl, n->forenames, fl > 0 && sl > 0 ? " " : "", sl,
             n->surname);
    return buf;
}
