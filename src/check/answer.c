/*
 * answer.c - decides the answer for one donor from the scored candidates, says why in words,
 * and renders it as JSON or as a CSV row.
 *
 * What an answer may show depends on its grade: for an exact or strong match in force at the
 * date, the name and address as on the register (the party must record them); for possible
 * matches, at most three candidates, masked to initials, house number and postcode; for an
 * entry that matches but was not in force, the dates that rule it out. Every entry tied at
 * the top grade is shown (a father and son of one name at one address are both on the
 * register, and either makes the donation permissible).
 */
#include "check/internal.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_MAX 16 /* most candidates an answer keeps */

const char *rv_check_fn_level_name(enum rv_check_fn_level l)
{
    static const char *const n[RV_FN_NLEVELS] = {
        "forenames agree",
        "first forename agrees; middle names missing or different",
        "nickname table",
        "a middle name on the register (or its nickname) used as the first forename",
        "initials consistent with the forenames",
        "spelt slightly differently (Jaro-Winkler >= 0.92)",
        "similar or sounds alike (Jaro-Winkler >= 0.88 or Double Metaphone)",
        "no forename given",
        "forenames differ",
    };
    return (unsigned)l < RV_FN_NLEVELS ? n[l] : "?";
}

const char *rv_check_sn_level_name(enum rv_check_sn_level l)
{
    static const char *const n[RV_SN_NLEVELS] = {
        "surname agrees",
        "one surname is part of the other (hyphenated or double-barrelled)",
        "forename and surname written the other way round",
        "surname spelt slightly differently",
        "surnames sound alike (Double Metaphone) or are close spellings of two listed surnames",
        "surnames differ",
    };
    return (unsigned)l < RV_SN_NLEVELS ? n[l] : "?";
}

const char *rv_check_addr_level_name(enum rv_check_addr_level l)
{
    static const char *const n[RV_ADDR_NLEVELS] = {
        "same property",
        "same building, flat missing or written differently",
        "same postcode (no street address given to compare)",
        "same postcode, but a different street address",
        "same postcode sector",
        "same town or postcode district",
        "same postcode area, another district (moved?)",
        "overseas elector: no address on the register",
        "different address",
    };
    return (unsigned)l < RV_ADDR_NLEVELS ? n[l] : "?";
}

const char *rv_check_grade_name(enum rv_check_grade g)
{
    switch (g) {
    case RV_GRADE_EXACT:
        return "exact";
    case RV_GRADE_STRONG:
        return "strong";
    case RV_GRADE_POSSIBLE:
        return "possible";
    default:
        return "no match";
    }
}

const char *rv_check_verdict_name(enum rv_check_verdict v)
{
    switch (v) {
    case RV_VERDICT_PERMISSIBLE:
        return "permissible";
    case RV_VERDICT_REVIEW:
        return "needs review";
    case RV_VERDICT_NOT_FOUND:
        return "not found";
    case RV_VERDICT_OUT_OF_SCOPE:
        return "out of scope";
    }
    return "?";
}

const char *rv_check_search_name(unsigned bit)
{
    switch (bit) {
    case RV_CHECK_BY_SURNAME_POSTCODE:
        return "surname+postcode";
    case RV_CHECK_BY_INITIAL_OUTWARD:
        return "initial+surname+outward code";
    case RV_CHECK_BY_PHONETIC_POSTCODE:
        return "phonetic surname+postcode";
    case RV_CHECK_BY_LINE_POSTCODE:
        return "first line+postcode";
    case RV_CHECK_BY_SURNAME:
        return "surname alone (no postcode)";
    case RV_CHECK_BY_SWAPPED:
        return "forename as surname+postcode";
    case RV_CHECK_BY_NEARBY:
        return "initial+surname in the area's other postcode districts";
    case RV_CHECK_BY_VARIANT:
        return "a surname close to the donor's among those at the postcode";
    default:
        return "?";
    }
}

/* ---- deciding ------------------------------------------------------------------------ */

static enum rv_check_grade effective(const struct rv_check_match *m)
{
    return m->in_force ? m->grade : RV_GRADE_NONE;
}

static int cmp_match(const void *x, const void *y)
{
    const struct rv_check_match *a = x, *b = y;
    if (a->in_force != b->in_force)
        return a->in_force ? -1 : 1;
    if (a->grade != b->grade)
        return a->grade > b->grade ? -1 : 1;
    if (a->weight != b->weight)
        return a->weight > b->weight ? -1 : 1;
    /* Stable across runs: earlier versions last. */
    if (a->cand.from != b->cand.from)
        return a->cand.from > b->cand.from ? -1 : 1;
    return 0;
}

static bool same_entry(const struct rv_check_match *a, const struct rv_check_match *b)
{
    return a->in_force == b->in_force && strcmp(a->cand.elector.area, b->cand.elector.area) == 0 &&
           strcmp(a->cand.elector.number.prefix, b->cand.elector.number.prefix) == 0 &&
           a->cand.elector.number.number == b->cand.elector.number.number &&
           a->cand.elector.number.suffix == b->cand.elector.number.suffix;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A graded match and its place among the matches, for sorting pointers rather than the
 * matches themselves (each over a kilobyte): ties keep their order, as a stable sort of the
 * matches would. */
struct ranked {
    const struct rv_check_match *m;
    size_t i;
};

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    int c = cmp_match(a->m, b->m);

    if (c != 0)
        return c;
    return a->i < b->i ? -1 : a->i > b->i;
}

#define RANKED_STACK 64

int rv_check_decide(const struct rv_check_query *q, const struct rv_check_match *matches, size_t n,
                    struct rv_check_answer *out)
{
    struct ranked stack[RANKED_STACK], *v = stack;
    size_t nv = 0, keep = 0;
    int err = 0;

    memset(out, 0, sizeof(*out));
    copy_str(out->id, sizeof(out->id), q->id);
    copy_str(out->note, sizeof(out->note), q->note);
    out->line = q->line;
    out->date = q->date;
    out->bequest = q->bequest;
    out->verdict = RV_VERDICT_NOT_FOUND;
    out->grade = RV_GRADE_NONE;
    out->runner_up = RV_GRADE_NONE;

    if (n > 0) {
        if (n > RANKED_STACK && (v = calloc(n, sizeof(*v))) == NULL) {
            err = RV_ENOMEM;
            goto out;
        }
        /* Only entries whose levels earn a grade are worth showing. */
        for (size_t i = 0; i < n; i++)
            if (matches[i].grade != RV_GRADE_NONE) {
                v[nv].m = &matches[i];
                v[nv].i = i;
                nv++;
            }
        if (nv > 1)
            qsort(v, nv, sizeof(*v), cmp_ranked);
        /* One line per entry: the best-scoring version of it. */
        for (size_t i = 0; i < nv; i++) {
            bool dup = false;
            for (size_t j = 0; j < keep && !dup; j++)
                dup = same_entry(v[j].m, v[i].m);
            if (!dup && i != keep)
                v[keep] = v[i];
            if (!dup)
                keep++;
        }
        nv = keep;
    }

    if (nv > 0 && effective(v[0].m) != RV_GRADE_NONE) {
        size_t shown = 1;
        out->grade = v[0].m->grade;
        out->verdict = out->grade >= RV_GRADE_STRONG ? RV_VERDICT_PERMISSIBLE : RV_VERDICT_REVIEW;
        if (nv > 1 && effective(v[1].m) != RV_GRADE_NONE) {
            out->runner_up = v[1].m->grade;
            out->margin = v[0].m->weight - v[1].m->weight;
        }
        /* Ties at the top grade are all shown; possible matches up to three. */
        while (shown < nv && effective(v[shown].m) == out->grade &&
               (out->grade >= RV_GRADE_STRONG || shown < RV_CHECK_SHOW_MAX) && shown < KEEP_MAX)
            shown++;
        /* Lesser entries add nothing the margin does not already say. */
        nv = shown;
    } else {
        /* Nothing in force: keep entries that matched but were not on the register at the
         * date, so the answer can say why. */
        size_t shown = 0;
        while (shown < nv && shown < RV_CHECK_SHOW_MAX)
            shown++;
        nv = shown;
    }

    if (nv > 0) {
        out->matches = malloc(nv * sizeof(*out->matches));
        if (out->matches == NULL) {
            err = RV_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < nv; i++)
            out->matches[i] = *v[i].m;
        out->nmatches = nv;
    }
out:
    if (v != stack)
        free(v); /* pointers only, no register data */
    return err;
}

void rv_check_answer_unmatched(const char *id, unsigned long line, enum rv_check_verdict verdict,
                               const char *error, struct rv_check_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (id != NULL)
        copy_str(out->id, sizeof(out->id), id);
    if (error != NULL)
        copy_str(out->error, sizeof(out->error), error);
    out->line = line;
    out->verdict = verdict;
    out->grade = RV_GRADE_NONE;
    out->runner_up = RV_GRADE_NONE;
    out->date = RV_DATE_NONE;
}

void rv_check_answer_free(struct rv_check_answer *a)
{
    if (a == NULL)
        return;
    if (a->matches != NULL) {
        sodium_memzero(a->matches, a->nmatches * sizeof(*a->matches));
        free(a->matches);
    }
    sodium_memzero(a, sizeof(*a));
}

/* ---- words --------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t cap, len;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) RV_PRINTF(2, 3);
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->len + 1 >= b->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    b->len += (size_t)n;
    if (b->len >= b->cap) {
        /* Cut: drop a last character whose bytes did not all fit. */
        size_t start = b->cap - 1, need;
        while (start > 0 && ((unsigned char)b->p[start - 1] & 0xC0) == 0x80)
            start--;
        if (start > 0) {
            unsigned char lead = (unsigned char)b->p[start - 1];
            need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            start = (b->cap - 1) - (start - 1) >= need ? b->cap - 1 : start - 1;
        }
        b->len = start;
        b->p[b->len] = '\0';
    }
}

/* Appends n bytes of s: sb_add's result, without formatting when they fit. */
static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 < b->cap) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return;
    }
    sb_add(b, "%.*s", (int)n, s);
}

const char *rv_check_date_text(rv_date day, char buf[11])
{
    int y, m, d;

    if (day == RV_DATE_NONE || day == RV_DATE_FOREVER)
        return rv_date_format(day, buf);
    rv_date_to_ymd(day, &y, &m, &d);
    if (y < 0 || y > 9999)
        return rv_date_format(day, buf);
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + m / 10);
    buf[6] = (char)('0' + m % 10);
    buf[7] = '-';
    buf[8] = (char)('0' + d / 10);
    buf[9] = (char)('0' + d % 10);
    buf[10] = '\0';
    return buf;
}

/* Appends the n strings that follow, as sb_add(b, "%s%s...") would (the same bytes, cut the
 * same way when the buffer is full): joined here, and formatted only to be cut. */
static void sb_cat(struct sbuf *b, unsigned n, ...)
{
    char tmp[1024]; /* the callers' parts: names (under RV_NAME_MAX each) and words */
    size_t len = 0;
    va_list ap;

    va_start(ap, n);
    for (unsigned i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        size_t l = strlen(s);
        if (len + l >= sizeof(tmp)) { /* cannot happen with the callers' parts */
            sb_put(b, tmp, len);
            len = 0;
            if (l >= sizeof(tmp)) {
                sb_put(b, s, l);
                continue;
            }
        }
        memcpy(tmp + len, s, l);
        len += l;
    }
    va_end(ap);
    sb_put(b, tmp, len);
    sodium_memzero(tmp, len);
}

/* The first forename as written, for "Bill <-> William". */
static void first_word(const char *s, char *out, size_t cap)
{
    size_t n = strcspn(s, " ");
    copy_str(out, n + 1 < cap ? n + 1 : cap, s);
}

const char *rv_check_reasons(const struct rv_check_query *q, const struct rv_check_match *m,
                             bool reveal, char *buf, size_t bufsz)
{
    struct sbuf b = {buf, bufsz, 0};
    const struct rv_elector *e = &m->cand.elector;
    char qa[RV_NAME_MAX], ca[RV_NAME_MAX], d1[11], d2[11];
    bool restricted = rv_check_restricted(q, e);

    if (bufsz == 0)
        return buf;
    buf[0] = '\0';
    /* Forenames. */
    if (reveal && m->fn != RV_FN_EXACT && m->fn != RV_FN_ABSENT) {
        if (m->fn == RV_FN_NICKNAME || m->fn == RV_FN_TYPO || m->fn == RV_FN_SIMILAR) {
            first_word(m->sn == RV_SN_SWAPPED ? q->name.surname : q->name.forenames, qa,
                       sizeof(qa));
            first_word(e->name.forenames, ca, sizeof(ca));
        } else {
            copy_str(qa, sizeof(qa), m->sn == RV_SN_SWAPPED ? q->name.surname : q->name.forenames);
            copy_str(ca, sizeof(ca), e->name.forenames);
        }
        sb_cat(&b, 6, qa, " <-> ", ca, ": ", rv_check_fn_level_name(m->fn), "\n");
    } else {
        sb_cat(&b, 3, "forenames: ", rv_check_fn_level_name(m->fn), "\n");
    }
    /* Surname, with its weight. */
    if (reveal && m->sn != RV_SN_EXACT && m->sn != RV_SN_SWAPPED)
        sb_cat(&b, 6, q->name.surname, " <-> ", e->name.surname, ": ",
               rv_check_sn_level_name(m->sn), "\n");
    else
        sb_cat(&b, 3, "surname: ", rv_check_sn_level_name(m->sn), "\n");
    if (m->sn != RV_SN_DIFFERENT)
        sb_add(&b, "surname weight %.1f bits (%s)\n", m->surname_weight,
               m->surname_weight >= 12.0  ? "rare surname"
               : m->surname_weight >= 9.0 ? "uncommon surname"
                                          : "common surname");
    sb_cat(&b, 3, "address: ", rv_check_addr_level_name(m->addr), "\n");

    /* Dates. */
    rv_check_date_text(m->cand.from, d1);
    rv_check_date_text(m->cand.to, d2);
    if (m->in_force) {
        if (q->bequest) {
            sb_cat(&b, 7, "on the register within the five years before the death on ",
                   rv_check_date_text(q->date, qa), " (entry from ", d1, " to ", d2, ")\n");
        } else {
            sb_cat(&b, 7, "on the register on ", rv_check_date_text(q->date, qa),
                   ", the date received (entry from ", d1, " to ", d2, ")\n");
        }
    } else if (m->cand.from >= q->win_to) {
        sb_cat(&b, 7, "entered the register on ", d1, ", after ",
               q->bequest ? "the death" : "the donation was received", " on ",
               rv_check_date_text(q->date, qa), "\n");
    } else {
        sb_cat(&b, 7, "left the register on ", d2, ", ",
               q->bequest ? "more than five years before the death on"
                          : "before the donation was received on",
               " ", rv_check_date_text(q->date, qa), "\n");
    }
    if (restricted)
        sb_add(&b, "this entry cannot be confirmed from the register alone at that date: "
                   "check with the electoral registration office\n");
    if (m->cand.found_by != 0) {
        bool first = true;
        sb_cat(&b, 1, "found by: ");
        for (unsigned bit = 1; bit < (1u << RV_CHECK_BY_NSEARCHES); bit <<= 1)
            if ((m->cand.found_by & bit) != 0) {
                sb_cat(&b, 2, first ? "" : ", ", rv_check_search_name(bit));
                first = false;
            }
        sb_cat(&b, 1, "\n");
    }
    sodium_memzero(qa, sizeof(qa));
    sodium_memzero(ca, sizeof(ca));
    return buf;
}

/* First letter (a whole UTF-8 character) of s into out; returns bytes written. */
static size_t initial_of(const char *s, char *out)
{
    size_t n = 1;
    if (s[0] == '\0')
        return 0;
    while (n < 4 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n++;
    memcpy(out, s, n);
    return n;
}

const char *rv_check_mask(const struct rv_elector *e, char *buf, size_t bufsz)
{
    struct sbuf b = {buf, bufsz, 0};
    struct rv_address_key k;
    const char *lines[RV_ADDR_LINES];
    const char *s = e->name.forenames;
    char ini[8];
    size_t n;

    if (bufsz == 0)
        return buf;
    buf[0] = '\0';
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        if ((n = initial_of(s, ini)) == 0)
            break;
        ini[n] = '\0';
        sb_cat(&b, 2, ini, ". ");
        s += strcspn(s, " ");
    }
    if ((n = initial_of(e->name.surname, ini)) > 0) {
        ini[n] = '\0';
        sb_cat(&b, 2, ini, ".");
    }
    for (unsigned i = 0; i < RV_ADDR_LINES; i++)
        lines[i] = e->address[i];
    memset(&k, 0, sizeof(k));
    if (e->address[0][0] != '\0' && rv_address_key(lines, RV_ADDR_LINES, &k) == 0 &&
        k.number[0] != '\0')
        sb_cat(&b, 2, ", ", k.number);
    if (e->postcode.canon[0] != '\0')
        sb_cat(&b, 2, ", ", e->postcode.canon);
    else if ((e->markers.known & RV_MARK_F) != 0)
        sb_cat(&b, 1, ", overseas elector");
    sodium_memzero(&k, sizeof(k));
    return buf;
}

/* ---- rendering ----------------------------------------------------------------------- */

static bool reveal_of(const struct rv_check_answer *a, const struct rv_check_match *m)
{
    return m->in_force && m->grade >= RV_GRADE_STRONG && a->verdict == RV_VERDICT_PERMISSIBLE;
}

static const char *number_of(const struct rv_check_match *m, char *buf, size_t cap)
{
    return rv_elector_number_format(&m->cand.elector.number, buf, cap);
}

/* "10 High Street, Leeds": the register's lines joined. */
static void address_of(const struct rv_elector *e, char *buf, size_t cap)
{
    struct sbuf b = {buf, cap, 0};
    bool first = true;
    buf[0] = '\0';
    for (unsigned i = 0; i < RV_ADDR_LINES; i++)
        if (e->address[i][0] != '\0') {
            sb_cat(&b, 2, first ? "" : ", ", e->address[i]);
            first = false;
        }
}

static int set_str(json_t *o, const char *k, const char *v)
{
    json_t *s = json_string(v);
    if (s == NULL) /* not UTF-8: never the case for cleaned fields, but refuse quietly */
        s = json_string("");
    return s == NULL ? -1 : json_object_set_new(o, k, s);
}

static json_t *reasons_json(const char *text)
{
    json_t *arr = json_array();
    const char *p = text;
    char line[512];
    while (arr != NULL && *p != '\0') {
        size_t n = strcspn(p, "\n");
        copy_str(line, n + 1 < sizeof(line) ? n + 1 : sizeof(line), p);
        if (n > 0 && json_array_append_new(arr, json_string(line)) != 0) {
            json_decref(arr);
            return NULL;
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    return arr;
}

static json_t *match_json(const struct rv_check_query *q, const struct rv_check_answer *a,
                          const struct rv_check_match *m)
{
    json_t *o = json_object(), *found = json_array(), *r;
    char buf[2048], num[64];
    bool reveal = reveal_of(a, m);
    int bad = o == NULL || found == NULL;

    if (bad)
        goto fail;
    bad |= set_str(o, "grade", rv_check_grade_name(m->in_force ? m->grade : RV_GRADE_NONE));
    bad |= json_object_set_new(o, "in_force", json_boolean(m->in_force));
    bad |= set_str(o, "area", m->cand.elector.area);
    bad |= set_str(o, "edition", m->cand.edition);
    bad |= set_str(o, "elector_number", number_of(m, num, sizeof(num)));
    if (reveal) {
        bad |= set_str(o, "name", rv_name_format(&m->cand.elector.name, buf, sizeof(buf)));
        address_of(&m->cand.elector, buf, sizeof(buf));
        bad |= set_str(o, "address", buf);
        bad |= set_str(o, "postcode", m->cand.elector.postcode.canon);
    } else {
        bad |= set_str(o, "masked", rv_check_mask(&m->cand.elector, buf, sizeof(buf)));
    }
    if (q != NULL) {
        r = reasons_json(rv_check_reasons(q, m, reveal, buf, sizeof(buf)));
        bad |= r == NULL || json_object_set_new(o, "reasons", r) != 0;
    }
    for (unsigned bit = 1; bit < (1u << RV_CHECK_BY_NSEARCHES); bit <<= 1)
        if ((m->cand.found_by & bit) != 0)
            bad |= json_array_append_new(found, json_string(rv_check_search_name(bit)));
    bad |= json_object_set_new(o, "found_by", found);
    found = NULL;
    sodium_memzero(buf, sizeof(buf));
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(found);
    json_decref(o);
    return NULL;
}

int rv_check_answer_json(const struct rv_check_query *q, const struct rv_check_answer *a,
                         json_t **out)
{
    json_t *o = json_object(), *arr = json_array();
    char d[11];
    int bad = o == NULL || arr == NULL;

    *out = NULL;
    if (bad)
        goto fail;
    bad |= set_str(o, "id", a->id);
    if (a->line > 0)
        bad |= json_object_set_new(o, "line", json_integer((json_int_t)a->line));
    bad |= set_str(o, "verdict", rv_check_verdict_name(a->verdict));
    bad |= set_str(o, "grade", rv_check_grade_name(a->grade));
    if (a->date != RV_DATE_NONE)
        bad |= set_str(o, a->bequest ? "death_date" : "date", rv_check_date_text(a->date, d));
    if (a->error[0] != '\0')
        bad |= set_str(o, "error", a->error);
    if (a->note[0] != '\0')
        bad |= set_str(o, "note", a->note);
    if (a->nmatches > 0 && a->matches[0].in_force) {
        const struct rv_check_match *b = &a->matches[0];
        char num[64];
        bad |= set_str(o, "area", b->cand.elector.area);
        bad |= set_str(o, "edition", b->cand.edition);
        bad |= set_str(o, "elector_number", number_of(b, num, sizeof(num)));
    }
    if (a->runner_up != RV_GRADE_NONE) {
        bad |= json_object_set_new(o, "margin", json_real(a->margin));
        bad |= set_str(o, "runner_up", rv_check_grade_name(a->runner_up));
    }
    for (size_t i = 0; i < a->nmatches && !bad; i++) {
        json_t *m = match_json(q, a, &a->matches[i]);
        bad |= m == NULL || json_array_append_new(arr, m) != 0;
    }
    bad |= json_object_set_new(o, "matches", arr);
    arr = NULL;
    if (bad)
        goto fail;
    *out = o;
    return 0;
fail:
    json_decref(arr);
    json_decref(o);
    return RV_ENOMEM;
}

/* ---- JSON text ------------------------------------------------------------------------
 * The same answer as rv_check_answer_json, written straight into one buffer: the daemon
 * answers every check with it, and building and dumping some fifty jansson values per
 * answer cost more than the rest of the rendering. The output is what json_dumps gives for
 * the tree with JSON_COMPACT, byte for byte (keys in the same order, strings escaped as
 * jansson escapes them, reals as jansson prints them); a string that is not valid UTF-8
 * becomes "", as set_str makes it. */
struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Room for n more bytes and a NUL. The old buffer may hold register data: wiped. */
static bool jb_room(struct jbuf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    cap = b->cap;
    while (cap < b->len + n + 1)
        cap *= 2;
    if ((p = malloc(cap)) == NULL) {
        b->oom = true;
        return false;
    }
    memcpy(p, b->p, b->len);
    sodium_memzero(b->p, b->cap);
    free(b->p);
    b->p = p;
    b->cap = cap;
    return true;
}

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (jb_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

#define JB_LIT(b, lit) jb_put((b), (lit), sizeof(lit) - 1)

/* Length of the UTF-8 character at s (n bytes left) by jansson's rules (no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t v;

    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k)
        return 0;
    v = c & (k == 2 ? 0x1Fu : k == 3 ? 0x0Fu : 0x07u);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if ((k == 3 && v < 0x800) || (k == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return k;
}

/* A JSON string of the n bytes at s, escaped as jansson's dump escapes them; "" if they are
 * not valid UTF-8. */
static void jb_strn(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0, k;

    for (i = 0; i < n; i += k)
        if ((k = utf8_len(u + i, n - i)) == 0) {
            JB_LIT(b, "\"\"");
            return;
        }
    if (!jb_room(b, n + 2))
        return;
    b->p[b->len++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = u[i];
        char esc[6];
        size_t elen = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jb_put(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        jb_put(b, esc, elen);
    }
    jb_put(b, s + run, n - run);
    JB_LIT(b, "\"");
}

static void jb_str(struct jbuf *b, const char *s)
{
    jb_strn(b, s, strlen(s));
}

/* ,"key": (the comma unless first); keys are plain ASCII. */
static void jb_key(struct jbuf *b, const char *k, bool *first)
{
    size_t n = strlen(k);
    if (!jb_room(b, n + 4))
        return;
    if (!*first)
        b->p[b->len++] = ',';
    *first = false;
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, k, n);
    b->len += n;
    b->p[b->len++] = '"';
    b->p[b->len++] = ':';
}

static void jb_kstr(struct jbuf *b, const char *k, const char *v, bool *first)
{
    jb_key(b, k, first);
    jb_str(b, v);
}

/* A real as jansson prints it: %.17g, with ".0" when it would read as an integer, and the
 * exponent without a plus sign or leading zeros. false if it is not finite (jansson has
 * no such value). */
static bool jb_real(struct jbuf *b, double v)
{
    char t[64], *e, *from;
    int n;

    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
        return false;
    n = snprintf(t, sizeof(t), "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof(t) - 3)
        return false;
    for (int i = 0; i < n; i++)
        if (t[i] == ',')
            t[i] = '.'; /* a locale's decimal comma */
    if (strchr(t, '.') == NULL && strchr(t, 'e') == NULL) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    if ((e = strchr(t, 'e')) != NULL) {
        char *start = e + 1;
        from = start + 1;
        if (*start == '-')
            start++;
        while (*from == '0')
            from++;
        if (from != start) {
            memmove(start, from, (size_t)(t + n - from) + 1);
            n -= (int)(from - start);
        }
    }
    jb_put(b, t, (size_t)n);
    return true;
}

static void match_text(struct jbuf *b, const struct rv_check_query *q,
                       const struct rv_check_answer *a, const struct rv_check_match *m)
{
    char buf[2048], num[64];
    bool reveal = reveal_of(a, m), first = true, none = true;
    const char *p;

    JB_LIT(b, "{");
    jb_kstr(b, "grade", rv_check_grade_name(m->in_force ? m->grade : RV_GRADE_NONE), &first);
    jb_key(b, "in_force", &first);
    if (m->in_force)
        JB_LIT(b, "true");
    else
        JB_LIT(b, "false");
    jb_kstr(b, "area", m->cand.elector.area, &first);
    jb_kstr(b, "edition", m->cand.edition, &first);
    jb_kstr(b, "elector_number", number_of(m, num, sizeof(num)), &first);
    if (reveal) {
        jb_kstr(b, "name", rv_name_format(&m->cand.elector.name, buf, sizeof(buf)), &first);
        address_of(&m->cand.elector, buf, sizeof(buf));
        jb_kstr(b, "address", buf, &first);
        jb_kstr(b, "postcode", m->cand.elector.postcode.canon, &first);
    } else {
        jb_kstr(b, "masked", rv_check_mask(&m->cand.elector, buf, sizeof(buf)), &first);
    }
    if (q != NULL) {
        /* One string per line, cut at 511 bytes as reasons_json cuts them. */
        jb_key(b, "reasons", &first);
        JB_LIT(b, "[");
        p = rv_check_reasons(q, m, reveal, buf, sizeof(buf));
        while (*p != '\0') {
            size_t n = strcspn(p, "\n"), k = n;
            if (k >= 512) {
                k = 511;
                while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
                    k--;
            }
            if (k > 0) {
                if (!none)
                    JB_LIT(b, ",");
                none = false;
                jb_strn(b, p, k);
            }
            p += n;
            if (*p == '\n')
                p++;
        }
        JB_LIT(b, "]");
    }
    jb_key(b, "found_by", &first);
    JB_LIT(b, "[");
    none = true;
    for (unsigned bit = 1; bit < (1u << RV_CHECK_BY_NSEARCHES); bit <<= 1)
        if ((m->cand.found_by & bit) != 0) {
            if (!none)
                JB_LIT(b, ",");
            none = false;
            jb_str(b, rv_check_search_name(bit));
        }
    JB_LIT(b, "]}");
    sodium_memzero(buf, sizeof(buf));
}

int rv_check_answer_text(const struct rv_check_query *q, const struct rv_check_answer *a,
                         char **out, size_t *len)
{
    struct jbuf b = {malloc(4096), 0, 4096, false};
    bool first = true;
    char d[11], small[32];
    int n;

    *out = NULL;
    *len = 0;
    if (b.p == NULL)
        return RV_ENOMEM;
    JB_LIT(&b, "{");
    jb_kstr(&b, "id", a->id, &first);
    if (a->line > 0) {
        /* as jansson holds it: a signed 64-bit integer */
        n = snprintf(small, sizeof(small), "%lld", (long long)(json_int_t)a->line);
        jb_key(&b, "line", &first);
        if (n > 0 && (size_t)n < sizeof(small))
            jb_put(&b, small, (size_t)n);
        else
            b.oom = true;
    }
    jb_kstr(&b, "verdict", rv_check_verdict_name(a->verdict), &first);
    jb_kstr(&b, "grade", rv_check_grade_name(a->grade), &first);
    if (a->date != RV_DATE_NONE)
        jb_kstr(&b, a->bequest ? "death_date" : "date", rv_check_date_text(a->date, d), &first);
    if (a->error[0] != '\0')
        jb_kstr(&b, "error", a->error, &first);
    if (a->note[0] != '\0')
        jb_kstr(&b, "note", a->note, &first);
    if (a->nmatches > 0 && a->matches[0].in_force) {
        const struct rv_check_match *best = &a->matches[0];
        char num[64];
        jb_kstr(&b, "area", best->cand.elector.area, &first);
        jb_kstr(&b, "edition", best->cand.edition, &first);
        jb_kstr(&b, "elector_number", number_of(best, num, sizeof(num)), &first);
    }
    if (a->runner_up != RV_GRADE_NONE) {
        jb_key(&b, "margin", &first);
        if (!jb_real(&b, a->margin))
            b.oom = true;
        jb_kstr(&b, "runner_up", rv_check_grade_name(a->runner_up), &first);
    }
    jb_key(&b, "matches", &first);
    JB_LIT(&b, "[");
    for (size_t i = 0; i < a->nmatches && !b.oom; i++) {
        if (i > 0)
            JB_LIT(&b, ",");
        match_text(&b, q, a, &a->matches[i]);
    }
    JB_LIT(&b, "]}");
    if (b.oom) {
        sodium_memzero(b.p, b.cap);
        free(b.p);
        return RV_ENOMEM;
    }
    b.p[b.len] = '\0';
    *out = b.p;
    *len = b.len;
    return 0;
}

const char *rv_check_csv_header(void)
{
    return "id,line,verdict,grade,area,edition,elector_number,register_name,register_address,"
           "register_postcode,margin,candidates,reasons,error";
}

/* Appends one RFC 4180 field (quoted when needed; line breaks become "; "). */
static void csv_field(struct sbuf *b, const char *s, bool comma)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ';
    if (comma)
        sb_put(b, ",", 1);
    if (quote)
        sb_put(b, "\"", 1);
    while (*s != '\0') {
        size_t run = strcspn(s, "\"\r\n");
        if (run > 0) {
            sb_put(b, s, run);
            s += run;
            continue;
        }
        if (*s == '"')
            sb_put(b, "\"\"", 2);
        else if (*s == '\n' && s[1] != '\0')
            sb_put(b, "; ", 2);
        s++;
    }
    if (quote)
        sb_put(b, "\"", 1);
}

#define CSV_ROW_MAX 16384

/* A line number in decimal, as "%lu" prints it, into buf (at least 21 bytes). */
static const char *line_text(unsigned long v, char *buf)
{
    char rev[24];
    size_t n = 0;

    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = rev[n - 1 - i];
    buf[n] = '\0';
    return buf;
}

int rv_check_answer_csv(const struct rv_check_query *q, const struct rv_check_answer *a, char **out)
{
    char *row = malloc(CSV_ROW_MAX), *tmp = NULL;
    struct sbuf b = {row, CSV_ROW_MAX, 0};
    const struct rv_check_match *best = a->nmatches > 0 ? &a->matches[0] : NULL;
    bool reveal = best != NULL && reveal_of(a, best);
    char small[64];
    int err = 0;

    *out = NULL;
    if (row == NULL || (tmp = malloc(4096)) == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    row[0] = '\0';
    csv_field(&b, a->id, false);
    csv_field(&b, a->line > 0 ? line_text(a->line, small) : "", true);
    csv_field(&b, rv_check_verdict_name(a->verdict), true);
    csv_field(&b, rv_check_grade_name(a->grade), true);
    csv_field(&b, best != NULL && best->in_force ? best->cand.elector.area : "", true);
    csv_field(&b, best != NULL && best->in_force ? best->cand.edition : "", true);
    csv_field(&b, best != NULL && best->in_force ? number_of(best, small, sizeof(small)) : "",
              true);
    csv_field(&b, reveal ? rv_name_format(&best->cand.elector.name, tmp, 4096) : "", true);
    if (reveal)
        address_of(&best->cand.elector, tmp, 4096);
    csv_field(&b, reveal ? tmp : "", true);
    csv_field(&b, reveal ? best->cand.elector.postcode.canon : "", true);
    if (a->runner_up != RV_GRADE_NONE)
        snprintf(small, sizeof(small), "%.2f", a->margin);
    csv_field(&b, a->runner_up != RV_GRADE_NONE ? small : "", true);
    /* Masked candidates for anything not revealed. */
    {
        struct sbuf c = {tmp, 4096, 0};
        tmp[0] = '\0';
        for (size_t i = 0; i < a->nmatches; i++) {
            char m[256];
            if (reveal_of(a, &a->matches[i]))
                continue;
            sb_cat(&c, 2, c.len > 0 ? " | " : "",
                   rv_check_mask(&a->matches[i].cand.elector, m, sizeof(m)));
        }
        csv_field(&b, tmp, true);
    }
    if (best != NULL && q != NULL)
        rv_check_reasons(q, best, reveal, tmp, 4096);
    else
        tmp[0] = '\0';
    csv_field(&b, tmp, true);
    csv_field(&b, a->error, true);
    *out = row;
    row = NULL;
out:
    if (tmp != NULL) {
        sodium_memzero(tmp, 4096);
        free(tmp);
    }
    if (row != NULL) {
        sodium_memzero(row, CSV_ROW_MAX);
        free(row);
    }
    return err;
}
