/*
 * synth_don.c - synthetic donations in the Electoral Commission layout, with ground truth.
 *
 * Donors are drawn from the areas just generated, so the truth file can name the register
 * entry each donor really is. They are written the way people write themselves on donation
 * reports (the corruption model of data/names/SOURCE.md: typos on neighbouring keys, middle
 * names dropped or used instead of the first, initials, nicknames, titles, hyphen and Mc/Mac
 * changes, apostrophes and accents dropped, names swapped, postcodes in lower case or without
 * the space), plus the cases that depend on dates: donors who moved after the edition, who
 * registered only after giving, or who had left the register; people on no register; and
 * organisations. The note column records which.
 */
#include "synth/synth_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ST_INDIVIDUAL = 0, ST_COMPANY, ST_UNION, ST_UNINC, ST_LLP, ST_TRUST, ST_FRIENDLY };
static const char *const status_name[] = {"Individual",
                                          "Company",
                                          "Trade Union",
                                          "Unincorporated Association",
                                          "Limited Liability Partnership",
                                          "Trust",
                                          "Friendly Society"};

/* Made-up party names: none is a registered party. */
static const char *const entity_name[] = {
    "Progressive Alliance Party", "Unity and Renewal", "Civic Forward",
    "Hearth and Home Party",      "New Commons",       "Coastal Independents"};
#define NENTITY (sizeof(entity_name) / sizeof(entity_name[0]))

static const char *const donation_type[] = {"Cash", "Non Cash", "Visit"};

struct sy_don {
    rv_date received, accepted;
    uint32_t seq;
    uint8_t status, note, entity, type;
    uint64_t pence;
    char name[192];
    char postcode[16];
    char area[16];
    char number[40];
};

/* ---- text helpers ---------------------------------------------------------------------- */

struct nm {
    char title[16];
    char fore[RV_NAME_MAX], mid[RV_NAME_MAX], sur[RV_NAME_MAX];
    char post[8];
};

static void cpy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* Latin letters with accents to plain ASCII (Zoë -> Zoe, Łukasz -> Lukasz). */
static void strip_accents(char *s)
{
    static const char latin1[] = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";
    static const struct {
        uint16_t cp;
        char c;
    } ext[] = {{0x141, 'L'}, {0x142, 'l'}, {0x15a, 'S'}, {0x15b, 's'}, {0x106, 'C'},
               {0x107, 'c'}, {0x143, 'N'}, {0x144, 'n'}, {0x179, 'Z'}, {0x17a, 'z'},
               {0x17b, 'Z'}, {0x17c, 'z'}, {0x104, 'A'}, {0x105, 'a'}, {0x118, 'E'},
               {0x119, 'e'}, {0x131, 'i'}, {0x15e, 'S'}, {0x15f, 's'}, {0x160, 'S'},
               {0x161, 's'}, {0x17d, 'Z'}, {0x17e, 'z'}, {0x11f, 'g'}, {0x151, 'o'}};
    unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;
    while (*r) {
        uint32_t cp;
        if (*r < 0x80) {
            *w++ = *r++;
            continue;
        }
        if ((*r & 0xe0) == 0xc0 && r[1]) {
            cp = ((uint32_t)(r[0] & 0x1f) << 6) | (r[1] & 0x3f);
            r += 2;
        } else {
            r++;
            while ((*r & 0xc0) == 0x80)
                r++;
            *w++ = '?';
            continue;
        }
        char c = '?';
        if (cp >= 0xc0 && cp <= 0xff)
            c = latin1[cp - 0xc0];
        else
            for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
                if (ext[i].cp == cp)
                    c = ext[i].c;
        *w++ = (unsigned char)c;
    }
    *w = '\0';
}

static const char *const qwerty[3] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};

static char neighbour(struct sy_rng *r, char c)
{
    bool up = c >= 'A' && c <= 'Z';
    char lc = up ? (char)(c + 32) : c;
    for (int row = 0; row < 3; row++) {
        const char *p = strchr(qwerty[row], lc);
        if (p == NULL)
            continue;
        int i = (int)(p - qwerty[row]), n = (int)strlen(qwerty[row]);
        char cand[4];
        int k = 0;
        if (i > 0)
            cand[k++] = qwerty[row][i - 1];
        if (i + 1 < n)
            cand[k++] = qwerty[row][i + 1];
        if (row > 0 && i < (int)strlen(qwerty[row - 1]))
            cand[k++] = qwerty[row - 1][i];
        if (row < 2 && i < (int)strlen(qwerty[row + 1]))
            cand[k++] = qwerty[row + 1][i];
        char out = cand[sy_below(r, (uint32_t)k)];
        return up ? (char)(out - 32) : out;
    }
    return c;
}

/* One typing error in an ASCII letter after the first: a neighbouring key, two letters
 * swapped, one dropped, or one doubled. */
static void typo(struct sy_rng *r, char *s, size_t cap)
{
    size_t n = strlen(s), pos[RV_NAME_MAX], np = 0;
    for (size_t i = 1; i < n && np < RV_NAME_MAX; i++)
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
            pos[np++] = i;
    if (np == 0)
        return;
    size_t i = pos[sy_below(r, (uint32_t)np)];
    double u = sy_u01(r);
    if (u < 0.6) {
        s[i] = neighbour(r, s[i]);
    } else if (u < 0.75 && i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z' && s[i] != s[i + 1]) {
        char t = s[i];
        s[i] = s[i + 1];
        s[i + 1] = t;
    } else if (u < 0.9 && n > 3) {
        memmove(s + i, s + i + 1, n - i);
    } else if (n + 1 < cap) {
        memmove(s + i + 1, s + i, n - i + 1);
    } else {
        s[i] = neighbour(r, s[i]);
    }
}

/* ---- who lives where: (postcode unit, surname) -> initials of the forenames there -------
 * A made-up donor on no register must not be confusable with someone registered at the same
 * postcode: no shared surname with a forename of the same initial or a nickname relation
 * (Sarah and Sally Jeantwick at one postcode would be a fair match, not a near-miss). */

struct nameset {
    uint64_t *key;
    uint32_t *mask;  /* initials of the forenames (see sy_tables.fore_rel) */
    uint32_t *count; /* electors ever registered there with that surname */
    size_t cap_mask; /* slots - 1 */
};

static uint64_t ns_key(uint32_t unit, uint32_t sur)
{
    uint64_t x = ((uint64_t)unit << 32) ^ sur;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x | 1;
}

static void ns_add(struct nameset *s, uint32_t unit, uint32_t sur, uint32_t mask)
{
    uint64_t k = ns_key(unit, sur);
    size_t i = (size_t)k & s->cap_mask;
    while (s->key[i] != 0 && s->key[i] != k)
        i = (i + 1) & s->cap_mask;
    s->key[i] = k;
    s->mask[i] |= mask;
    s->count[i]++;
}

/* The initials mask at (unit, sur); *count gets how many electors it covers. */
static uint32_t ns_get(const struct nameset *s, uint32_t unit, uint32_t sur, uint32_t *count)
{
    uint64_t k = ns_key(unit, sur);
    size_t i = (size_t)k & s->cap_mask;
    while (s->key[i] != 0) {
        if (s->key[i] == k) {
            *count = s->count[i];
            return s->mask[i];
        }
        i = (i + 1) & s->cap_mask;
    }
    *count = 0;
    return 0;
}

static int ns_build(struct nameset *s, const struct sy_area *a, const uint32_t *rel)
{
    size_t n = 1024;
    while (n < 2 * a->nel + 2 * a->nel / 8)
        n *= 2;
    s->key = calloc(n, sizeof(*s->key));
    s->mask = calloc(n, sizeof(*s->mask));
    s->count = calloc(n, sizeof(*s->count));
    if (s->key == NULL || s->mask == NULL || s->count == NULL)
        return RV_ENOMEM;
    s->cap_mask = n - 1;
    for (size_t i = 0; i < a->nel; i++) {
        const struct sy_el *e = &a->el[i];
        uint32_t m = rel[e->fore];
        if (e->hh == SY_NONE)
            continue;
        ns_add(s, a->hh[e->hh].unit, e->sur, m);
        if (e->prev_hh != SY_NONE)
            ns_add(s, a->hh[e->prev_hh].unit, e->sur, m);
        if (e->prev_sur != SY_NONE) {
            ns_add(s, a->hh[e->hh].unit, e->prev_sur, m);
            if (e->prev_hh != SY_NONE)
                ns_add(s, a->hh[e->prev_hh].unit, e->prev_sur, m);
        }
    }
    return 0;
}

static void ns_free(struct nameset *s)
{
    free(s->key);
    free(s->mask);
    free(s->count);
}

/* ---- donors ------------------------------------------------------------------------------ */

struct dctx {
    struct sy_run *run;
    struct sy_area *a;
    struct sy_rng rng;
    struct nameset ns;
    rv_date start, end; /* received dates fall in [start, end) */
};

static bool live_at(const struct sy_el *e, rv_date d)
{
    return e->from <= d && d < e->to && !(e->markers & RV_MARK_N);
}

static bool has_nickname(const struct sy_tables *t, const struct sy_el *e)
{
    return t->nick_ix[e->fore + 1] > t->nick_ix[e->fore];
}

/* Does the elector suit the note (has a middle name for middle-dropped, and so on)? */
static bool suits(const struct dctx *c, const struct sy_el *e, int note, rv_date d)
{
    const struct sy_tables *t = &c->run->t;
    const struct sy_str *sur = sy_el_surname(c->run, e, d);
    switch (note) {
    case RV_SYNTH_NOTE_MIDDLE_DROPPED:
    case RV_SYNTH_NOTE_MIDDLE_AS_FIRST:
        return e->mid1 != 0;
    case RV_SYNTH_NOTE_NICKNAME:
        return has_nickname(t, e);
    case RV_SYNTH_NOTE_HYPHEN:
        return sur->flags & SY_S_HYPHEN;
    case RV_SYNTH_NOTE_MC_MAC:
        return sur->flags & SY_S_MC;
    case RV_SYNTH_NOTE_APOSTROPHE:
        return sur->flags & SY_S_APOSTROPHE;
    case RV_SYNTH_NOTE_ACCENTS: /* an accent the register shows, in its encoding */
        return (sur->flags | t->fore[e->fore].flags | t->fore[e->mid1].flags |
                t->fore[e->mid2].flags) &
               (c->a->cp1252 ? SY_S_CPACCENT : SY_S_ACCENT);
    case RV_SYNTH_NOTE_SAME_NAME:
        return e->flags & SY_F_SAMENAME;
    default:
        return true;
    }
}

static void number_of(const struct sy_area *a, const struct sy_el *e, char *buf, size_t cap)
{
    if (e->suf)
        snprintf(buf, cap, "%s-%u/%u", a->pd[e->pd].prefix, e->num, e->suf);
    else
        snprintf(buf, cap, "%s-%u", a->pd[e->pd].prefix, e->num);
}

static void postcode_of(const struct sy_area *a, uint32_t hh, char *buf, size_t cap)
{
    if (hh == SY_NONE)
        buf[0] = '\0';
    else
        cpy(buf, cap, a->unit[a->hh[hh].unit].pc);
}

/* Appends the parts, separated by single spaces, skipping empty ones. */
static void join(char *dst, size_t cap, const char *const *parts, int n)
{
    size_t len = 0;
    dst[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        if (l == 0)
            continue;
        if (len > 0 && len + 1 < cap)
            dst[len++] = ' ';
        if (len + l >= cap)
            l = cap - len - 1;
        memcpy(dst + len, parts[i], l);
        len += l;
        dst[len] = '\0';
    }
}

static void render(struct sy_don *d, const struct nm *n, bool swapped)
{
    const char *sw[] = {n->title, n->sur, n->fore, n->mid};
    const char *st[] = {n->title, n->fore, n->mid, n->sur, n->post};
    if (swapped)
        join(d->name, sizeof(d->name), sw, 4);
    else
        join(d->name, sizeof(d->name), st, 5);
}

static void corrupt_postcode(struct sy_rng *r, char *pc)
{
    size_t n = strlen(pc);
    double u = sy_u01(r);
    if (n == 0)
        return;
    if (u < 0.4) {
        for (size_t i = 0; i < n; i++)
            if (pc[i] >= 'A' && pc[i] <= 'Z')
                pc[i] = (char)(pc[i] + 32);
    } else if (u < 0.8) {
        char *sp = strchr(pc, ' ');
        if (sp)
            memmove(sp, sp + 1, strlen(sp));
    } else {
        char *sp = strchr(pc, ' ');
        if (sp && n + 2 < 16)
            memmove(sp + 1, sp, strlen(sp) + 1);
    }
}

static void apply(struct dctx *c, const struct sy_el *e, int note, struct nm *n, bool *swapped)
{
    struct sy_rng *r = &c->rng;
    const struct sy_tables *t = &c->run->t;
    bool female = e->flags & SY_F_FEMALE;
    switch (note) {
    case RV_SYNTH_NOTE_TYPO:
        if (sy_chance(r, 0.7))
            typo(r, n->sur, sizeof(n->sur));
        else
            typo(r, n->fore, sizeof(n->fore));
        break;
    case RV_SYNTH_NOTE_MIDDLE_DROPPED:
        n->mid[0] = '\0';
        break;
    case RV_SYNTH_NOTE_MIDDLE_AS_FIRST:
        cpy(n->fore, sizeof(n->fore), t->fore[e->mid1].u8);
        n->mid[0] = '\0';
        break;
    case RV_SYNTH_NOTE_INITIALS: {
        char ini[16];
        size_t k = 0;
        bool dots = sy_chance(r, 0.3);
        ini[k++] = n->fore[0];
        if (dots)
            ini[k++] = '.';
        if (e->mid1 && sy_chance(r, 0.5)) {
            ini[k++] = ' ';
            ini[k++] = t->fore[e->mid1].u8[0];
            if (dots)
                ini[k++] = '.';
        }
        ini[k] = '\0';
        cpy(n->fore, sizeof(n->fore), ini);
        n->mid[0] = '\0';
        break;
    }
    case RV_SYNTH_NOTE_NICKNAME: {
        uint32_t lo = t->nick_ix[e->fore], hi = t->nick_ix[e->fore + 1];
        cpy(n->fore, sizeof(n->fore), t->nick[lo + sy_below(r, hi - lo)].u8);
        n->mid[0] = '\0';
        break;
    }
    case RV_SYNTH_NOTE_TITLE: {
        static const char *const mt[] = {"Mr", "Mr", "Mr", "Dr", "Sir", "Rev", "Lord"};
        static const char *const ft[] = {"Mrs", "Ms", "Miss", "Dr", "Dame", "Lady", "Mrs"};
        cpy(n->title, sizeof(n->title), (female ? ft : mt)[sy_below(r, 7)]);
        if (sy_chance(r, 0.1))
            cpy(n->post, sizeof(n->post), sy_chance(r, 0.5) ? "OBE" : "MBE");
        if (sy_chance(r, 0.5))
            n->mid[0] = '\0';
        break;
    }
    case RV_SYNTH_NOTE_HYPHEN: {
        char *h = strchr(n->sur, '-');
        double u = sy_u01(r);
        if (h == NULL)
            break;
        if (u < 0.4)
            *h = ' ';
        else if (u < 0.6)
            memmove(h, h + 1, strlen(h));
        else if (u < 0.8)
            *h = '\0'; /* first part only */
        else
            memmove(n->sur, h + 1, strlen(h)); /* second part only */
        break;
    }
    case RV_SYNTH_NOTE_MC_MAC: {
        char tmp[RV_NAME_MAX];
        if (strncmp(n->sur, "Mac", 3) == 0)
            snprintf(tmp, sizeof(tmp), "Mc%s", n->sur + 3);
        else if (sy_chance(r, 0.7))
            snprintf(tmp, sizeof(tmp), "Mac%s", n->sur + 2);
        else
            snprintf(tmp, sizeof(tmp), "Mc %s", n->sur + 2);
        cpy(n->sur, sizeof(n->sur), tmp);
        break;
    }
    case RV_SYNTH_NOTE_APOSTROPHE: {
        char *q = strchr(n->sur, '\'');
        if (q == NULL)
            break;
        if (sy_chance(r, 0.6))
            memmove(q, q + 1, strlen(q));
        else
            *q = ' ';
        break;
    }
    case RV_SYNTH_NOTE_ACCENTS:
        strip_accents(n->fore);
        strip_accents(n->mid);
        strip_accents(n->sur);
        break;
    case RV_SYNTH_NOTE_SWAPPED:
        *swapped = true;
        if (sy_chance(r, 0.5))
            for (char *p = n->sur; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 32);
        break;
    default:
        break;
    }
}

/* The note for a registered donor, by the mix of how people write themselves. */
static int draw_note(struct dctx *c)
{
    static const struct {
        uint8_t note;
        uint8_t weight;
    } mix[] = {
        {RV_SYNTH_NOTE_EXACT, 22},          {RV_SYNTH_NOTE_TYPO, 8},
        {RV_SYNTH_NOTE_MIDDLE_DROPPED, 10}, {RV_SYNTH_NOTE_MIDDLE_AS_FIRST, 4},
        {RV_SYNTH_NOTE_INITIALS, 6},        {RV_SYNTH_NOTE_NICKNAME, 8},
        {RV_SYNTH_NOTE_TITLE, 8},           {RV_SYNTH_NOTE_HYPHEN, 3},
        {RV_SYNTH_NOTE_MC_MAC, 3},          {RV_SYNTH_NOTE_APOSTROPHE, 3},
        {RV_SYNTH_NOTE_ACCENTS, 3},         {RV_SYNTH_NOTE_SWAPPED, 5},
        {RV_SYNTH_NOTE_POSTCODE_FORMAT, 7}, {RV_SYNTH_NOTE_SAME_NAME, 2},
        {RV_SYNTH_NOTE_MOVED, 6},           {RV_SYNTH_NOTE_REGISTERED_AFTER, 4},
        {RV_SYNTH_NOTE_LEFT_REGISTER, 4},
    };
    uint32_t total = 0, k;
    for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++)
        total += mix[i].weight;
    k = sy_below(&c->rng, total);
    for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
        if (k < mix[i].weight)
            return mix[i].note;
        k -= mix[i].weight;
    }
    return RV_SYNTH_NOTE_EXACT;
}

static rv_date date_in(struct sy_rng *r, rv_date lo, rv_date hi)
{
    return hi > lo ? lo + (rv_date)sy_below(r, (uint32_t)(hi - lo)) : lo;
}

/* True if nobody else with the elector's surname was ever registered at its postcode: a
 * donor who was not on the register on the date must not look like a housemate who was. */
static bool alone(const struct dctx *c, const struct sy_el *e)
{
    uint32_t cnt;
    if (e->prev_hh != SY_NONE || e->prev_sur != SY_NONE)
        return false;
    (void)ns_get(&c->ns, c->a->hh[e->hh].unit, e->sur, &cnt);
    return cnt == 1;
}

/* Picks the elector and the date received for a registered donor; may change the note
 * (to exact) when the area has nobody who suits it. */
static uint32_t pick_donor(struct dctx *c, int *note, rv_date *when)
{
    struct sy_area *a = c->a;
    struct sy_rng *r = &c->rng;
    for (int tries = 0; tries < 4000; tries++) {
        uint32_t i = sy_below(r, (uint32_t)a->nel);
        const struct sy_el *e = &a->el[i];
        if (e->markers & RV_MARK_N)
            continue;
        switch (*note) {
        case RV_SYNTH_NOTE_MOVED:
            if (!(e->flags & SY_F_MOVED) || e->changed_on <= c->start)
                continue;
            *when = date_in(r, e->from > c->start ? e->from : c->start, e->changed_on);
            if (!live_at(e, *when))
                continue;
            return i;
        case RV_SYNTH_NOTE_REGISTERED_AFTER:
            if (e->from <= c->start || e->hh == SY_NONE || !alone(c, e))
                continue;
            *when = date_in(r, c->start, e->from);
            return i;
        case RV_SYNTH_NOTE_LEFT_REGISTER:
            if (e->to == RV_DATE_FOREVER || e->to >= c->end || e->hh == SY_NONE || !alone(c, e))
                continue;
            *when = date_in(r, e->to, c->end);
            return i;
        default:
            *when = date_in(r, c->start, c->end);
            if (!live_at(e, *when) || !suits(c, e, *note, *when))
                continue;
            if (tries > 3000)
                *note = RV_SYNTH_NOTE_EXACT; /* nobody suits: give up on the note */
            return i;
        }
    }
    return SY_NONE;
}

static void org_name(struct dctx *c, int status, char *buf, size_t cap)
{
    static const char *const trade[] = {"Engineering", "Holdings", "Properties", "Logistics",
                                        "Consulting",  "Farms",    "Motors",     "Brewery",
                                        "Software",    "Builders"};
    static const char *const workers[] = {"Rail Workers", "Teachers", "Nurses", "Shopworkers",
                                          "Engineers",    "Drivers",  "Carers", "Postal Workers"};
    const struct sy_tables *t = &c->run->t;
    struct sy_rng *r = &c->rng;
    const char *s1 = t->sur[sy_below(r, 500)].u8, *s2 = t->sur[sy_below(r, 500)].u8;
    const char *town = t->town[sy_below(r, t->ntown)].u8;
    switch (status) {
    case ST_COMPANY:
        if (sy_chance(r, 0.5))
            snprintf(buf, cap, "%s %s %s", s1, trade[sy_below(r, 10)],
                     sy_chance(r, 0.5) ? "Ltd" : "Limited");
        else
            snprintf(buf, cap, "%s %s plc", town, trade[sy_below(r, 10)]);
        break;
    case ST_UNION:
        snprintf(buf, cap, "National Union of %s", workers[sy_below(r, 8)]);
        break;
    case ST_UNINC:
        snprintf(buf, cap, "%s %s", town, sy_chance(r, 0.5) ? "Business Club" : "Supporters Club");
        break;
    case ST_LLP:
        snprintf(buf, cap, "%s & %s LLP", s1, s2);
        break;
    case ST_TRUST:
        snprintf(buf, cap, "The %s Charitable Trust", s1);
        break;
    default:
        snprintf(buf, cap, "%s Mutual Society", town);
        break;
    }
}

static uint64_t draw_pence(struct sy_rng *r)
{
    double u1 = sy_u01(r), u2 = sy_u01(r);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
    double pounds = exp(7.6 + 1.1 * z);
    if (sy_chance(r, 0.05))
        pounds = 50 + 450 * sy_u01(r); /* a few at or under the threshold */
    else if (pounds < 500.01)
        pounds = 500.01 + 1500 * sy_u01(r);
    if (pounds > 5e6)
        pounds = 5e6;
    uint64_t p = (uint64_t)(pounds * 100);
    if (sy_chance(r, 0.8))
        p = p / 100 * 100; /* whole pounds */
    if (sy_chance(r, 0.5))
        p = p / 10000 * 10000; /* round hundreds */
    return p < 5000 ? 5000 : p;
}

static int don_new(struct sy_run *run, struct sy_don **out)
{
    if (run->ndon == run->capdon) {
        size_t cap = run->capdon ? run->capdon * 2 : 1024;
        struct sy_don *nd = realloc(run->don, cap * sizeof(*nd));
        if (nd == NULL)
            return RV_ENOMEM;
        run->don = nd;
        run->capdon = cap;
    }
    *out = &run->don[run->ndon];
    memset(*out, 0, sizeof(**out));
    (*out)->seq = (uint32_t)run->ndon++;
    return 0;
}

static int one_donation(struct dctx *c)
{
    struct sy_run *run = c->run;
    struct sy_area *a = c->a;
    struct sy_rng *r = &c->rng;
    const struct sy_tables *t = &run->t;
    struct sy_don *d;
    int err, note;
    double u = sy_u01(r);

    if ((err = don_new(run, &d)) != 0)
        return err;
    d->entity = (uint8_t)sy_below(r, (uint32_t)NENTITY);
    d->type = (uint8_t)(sy_chance(r, 0.85) ? 0 : sy_chance(r, 0.8) ? 1 : 2);
    d->pence = draw_pence(r);
    d->received = date_in(r, c->start, c->end);
    d->status = ST_INDIVIDUAL;
    cpy(d->area, sizeof(d->area), a->code);

    if (u < 0.2) {
        /* an organisation, at a postcode in the area */
        double v = sy_u01(r);
        d->status = (uint8_t)(v < 0.55   ? ST_COMPANY
                              : v < 0.7  ? ST_UNION
                              : v < 0.85 ? ST_UNINC
                              : v < 0.92 ? ST_LLP
                              : v < 0.97 ? ST_TRUST
                                         : ST_FRIENDLY);
        org_name(c, d->status, d->name, sizeof(d->name));
        cpy(d->postcode, sizeof(d->postcode), a->unit[sy_below(r, (uint32_t)a->nunit)].pc);
        note = RV_SYNTH_NOTE_ORGANISATION;
        d->area[0] = '\0';
    } else if (u < 0.33) {
        /* on no register: a near-miss at a real postcode, often a registered elector's
         * household surname with another forename */
        uint32_t unit = sy_below(r, (uint32_t)a->nunit), sur, fore, cnt;
        bool female = sy_chance(r, 0.5);
        int tries = 0;
        uint32_t k = sy_below(r, (uint32_t)a->nel);
        const struct sy_el *e = &a->el[k];
        bool household = sy_chance(r, 0.4) && e->hh != SY_NONE;
        if (household)
            unit = a->hh[e->hh].unit;
        do {
            sur = household ? e->sur : sy_alias_draw(&t->sur_w, r);
            fore = female ? t->fore_f[sy_alias_draw(&t->female_w, r)]
                          : t->fore_m[sy_alias_draw(&t->male_w, r)];
        } while ((ns_get(&c->ns, unit, sur, &cnt) & t->fore_rel[fore]) != 0 && ++tries < 100);
        if (tries >= 100) {
            run->ndon--;
            return 0; /* the caller tries again */
        }
        snprintf(d->name, sizeof(d->name), "%s%s %s", sy_chance(r, 0.2) ? "Mr " : "",
                 t->fore[fore].u8, t->sur[sur].u8);
        if (female && strncmp(d->name, "Mr ", 3) == 0)
            memmove(d->name, d->name + 3, strlen(d->name + 3) + 1);
        cpy(d->postcode, sizeof(d->postcode), a->unit[unit].pc);
        note = RV_SYNTH_NOTE_NOT_REGISTERED;
        d->area[0] = '\0';
    } else {
        struct nm n;
        bool swapped = false;
        rv_date when = d->received;
        note = draw_note(c);
        if (run->o->months == 0 && note >= RV_SYNTH_NOTE_MOVED)
            note = RV_SYNTH_NOTE_EXACT; /* no alterations: nobody moved, came or went */
        uint32_t k = pick_donor(c, &note, &when);
        if (k == SY_NONE) {
            note = RV_SYNTH_NOTE_EXACT;
            k = pick_donor(c, &note, &when);
        }
        if (k == SY_NONE) {
            run->ndon--;
            return 0;
        }
        const struct sy_el *e = &a->el[k];
        d->received = when;
        memset(&n, 0, sizeof(n));
        cpy(n.fore, sizeof(n.fore), t->fore[e->fore].u8);
        if (e->mid1 && e->mid2)
            snprintf(n.mid, sizeof(n.mid), "%s %s", t->fore[e->mid1].u8, t->fore[e->mid2].u8);
        else if (e->mid1)
            cpy(n.mid, sizeof(n.mid), t->fore[e->mid1].u8);
        cpy(n.sur, sizeof(n.sur), sy_el_surname(run, e, when)->u8);
        apply(c, e, note, &n, &swapped);
        render(d, &n, swapped);
        /* the postcode of the address on the date received; a mover gives the new one */
        postcode_of(a, note == RV_SYNTH_NOTE_MOVED ? e->hh : sy_el_hh(e, when), d->postcode,
                    sizeof(d->postcode));
        if (note == RV_SYNTH_NOTE_POSTCODE_FORMAT)
            corrupt_postcode(r, d->postcode);
        if (note == RV_SYNTH_NOTE_REGISTERED_AFTER || note == RV_SYNTH_NOTE_LEFT_REGISTER)
            d->area[0] = '\0';
        else
            number_of(a, e, d->number, sizeof(d->number));
    }
    d->note = (uint8_t)note;
    d->accepted = d->received + (rv_date)(sy_chance(r, 0.8) ? sy_below(r, 6) : sy_below(r, 28));
    return 1;
}

int sy_donations_area(struct sy_run *run, struct sy_area *a, uint64_t n)
{
    struct dctx c = {.run = run, .a = a};
    unsigned w = run->o->months > 12 ? run->o->months : 12;
    int err = 0;
    int y, m, dd;

    if (n == 0)
        return 0;
    sy_rng_seed(&c.rng, run->o->seed, 3000 + a->index);
    /* received over the edition's year, and over every alteration month */
    c.start = run->o->edition;
    rv_date_to_ymd(c.start, &y, &m, &dd);
    m += (int)w;
    y += (m - 1) / 12;
    m = (m - 1) % 12 + 1;
    c.end = rv_date_from_ymd(y, m, dd > 28 ? 28 : dd);
    if ((err = ns_build(&c.ns, a, run->t.fore_rel)) != 0)
        goto out;
    for (uint64_t i = 0, guard = 0; i < n && guard < 100 * n + 1000; guard++) {
        int rc = one_donation(&c);
        if (rc < 0) {
            err = rc;
            goto out;
        }
        i += (uint64_t)rc;
    }
out:
    ns_free(&c.ns);
    return err;
}

static int don_cmp(const void *x, const void *y)
{
    const struct sy_don *a = x, *b = y;
    if (a->received != b->received)
        return a->received < b->received ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A CSV field, quoted when it holds a comma or a quote. */
static void put_field(struct sy_out *o, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        sy_puts(o, s);
        return;
    }
    sy_putc(o, '"');
    for (; *s; s++) {
        if (*s == '"')
            sy_putc(o, '"');
        sy_putc(o, *s);
    }
    sy_putc(o, '"');
}

static void put_pounds(struct sy_out *o, uint64_t pence)
{
    char digits[24], out[40];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)(pence / 100)), k = 0;
    out[k++] = '"';
    memcpy(out + k, "\xc2\xa3", 2); /* £ */
    k += 2;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    k += snprintf(out + k, sizeof(out) - (size_t)k, ".%02u\"", (unsigned)(pence % 100));
    sy_put(o, out, (size_t)k);
}

int sy_donations_write(struct sy_run *run)
{
    struct sy_out o, tr;
    int err;
    bool open_o = false, open_t = false;

    qsort(run->don, run->ndon, sizeof(*run->don), don_cmp);
    if ((err = sy_out_open(&o, run->dir, "donations.csv")) != 0) {
        rv_diag_set(run->diag, run->dir, 0, 0, "cannot create donations.csv in the folder");
        goto out;
    }
    open_o = true;
    if ((err = sy_out_open(&tr, run->dir, "donations-truth.csv")) != 0) {
        rv_diag_set(run->diag, run->dir, 0, 0, "cannot create donations-truth.csv in the folder");
        goto out;
    }
    open_t = true;
    sy_puts(&o, "ECRef,RegulatedEntityName,Value,AcceptedDate,ReceivedDate,DonorName,DonorStatus,"
                "Postcode,DonationType\n");
    sy_puts(&tr, "ECRef,area,elector_number,note\n");
    for (size_t i = 0; i < run->ndon; i++) {
        const struct sy_don *d = &run->don[i];
        char ref[16];
        snprintf(ref, sizeof(ref), "C%07zu", 500001 + i);
        sy_out_room(&o, 1024);
        sy_out_room(&tr, 256);
        sy_puts(&o, ref);
        sy_putc(&o, ',');
        put_field(&o, entity_name[d->entity]);
        sy_putc(&o, ',');
        put_pounds(&o, d->pence);
        sy_putc(&o, ',');
        sy_put_date(&o, d->accepted, false);
        sy_putc(&o, ',');
        sy_put_date(&o, d->received, false);
        sy_putc(&o, ',');
        put_field(&o, d->name);
        sy_putc(&o, ',');
        put_field(&o, status_name[d->status]);
        sy_putc(&o, ',');
        put_field(&o, d->postcode);
        sy_putc(&o, ',');
        put_field(&o, donation_type[d->type]);
        sy_putc(&o, '\n');
        sy_puts(&tr, ref);
        sy_putc(&tr, ',');
        sy_puts(&tr, d->area);
        sy_putc(&tr, ',');
        if (d->area[0])
            sy_puts(&tr, d->number);
        sy_putc(&tr, ',');
        sy_puts(&tr, rv_synth_note_name(d->note));
        sy_putc(&tr, '\n');
        run->st->donations++;
        run->st->by_note[d->note]++;
    }
    open_o = false;
    if ((err = sy_out_close(&o, true, run->diag)) != 0)
        goto out;
    run->st->bytes += o.bytes;
    open_t = false;
    err = sy_out_close(&tr, true, run->diag);
    run->st->bytes += tr.bytes;
out:
    if (open_o)
        (void)sy_out_close(&o, false, NULL);
    if (open_t)
        (void)sy_out_close(&tr, false, NULL);
    return err;
}

void sy_donations_free(struct sy_run *run)
{
    free(run->don);
    run->don = NULL;
    run->ndon = run->capdon = 0;
}
