/*
 * synth.c - generates synthetic areas: addresses grouped into streets, postcode units,
 * sectors and districts; households of electors with shared surnames; polling districts
 * with sequential elector numbers; the full register of each area in that area's file
 * layout; and the monthly alterations that follow the edition.
 *
 * One area at a time is held in memory as fixed-size records (struct sy_el, struct sy_hh),
 * so the register, its alterations and the donors drawn from it stay consistent with each
 * other. Shares that the statistics must hit (attainers, opt-outs, postal and local-only
 * electors) are drawn with quotas rather than coin flips, so they hold at any size.
 */
#include "synth/synth_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const double hh_shares[6] = RV_SYNTH_HH_SHARES;

static const char *const house_names[] = {"Rose Cottage",        "The Old Rectory",
                                          "Orchard House",       "Ivy Cottage",
                                          "The Willows",         "Holly Lodge",
                                          "Meadow View",         "The Coach House",
                                          "Fern Bank",           "Hillside",
                                          "The Laurels",         "Oak Lodge",
                                          "Greystones",          "The Barn",
                                          "Church Cottage",      "Mill House",
                                          "Brook Cottage",       "The Old School House",
                                          "Sunnyside",           "Woodlands",
                                          "Ash Cottage",         "Beech House",
                                          "The Stables",         "Yew Tree Cottage",
                                          "The Granary",         "Windrush",
                                          "Highfield",           "Springfield",
                                          "The Old Forge",       "Primrose Cottage",
                                          "Elm Lodge",           "The Paddocks",
                                          "Wren Cottage",        "Hawthorns",
                                          "The Old Post Office", "Rowan House",
                                          "Badgers End",         "Larch Cottage",
                                          "Tanglewood",          "The Old Vicarage"};
#define NHOUSE_NAMES (sizeof(house_names) / sizeof(house_names[0]))

static const char *const note_names[RV_SYNTH_NOTE_COUNT] = {
    "exact",           "typo",           "middle-dropped", "middle-as-first",
    "initials",        "nickname",       "title",          "hyphen",
    "mc-mac",          "apostrophe",     "accents",        "swapped",
    "postcode-format", "same-name",      "moved",          "registered-after",
    "left-register",   "not-registered", "organisation"};

const char *rv_synth_note_name(int note)
{
    return note >= 0 && note < RV_SYNTH_NOTE_COUNT ? note_names[note] : "?";
}

const char *rv_synth_area_code(unsigned i, char buf[16])
{
    /* England's districts mostly; every eighth area from the sixth is Welsh, from the
     * seventh Scottish, so several areas give every kind of register. */
    const char *pfx = i % 8 == 5 ? "W06000" : i % 8 == 6 ? "S12000" : "E07000";
    snprintf(buf, 16, "%s%03u", pfx, (i + 1) % 1000u);
    return buf;
}

int rv_synth_check(const struct rv_synth_opts *o, struct rv_diag *diag)
{
    if (o->areas < 1 || o->areas > RV_SYNTH_MAX_AREAS) {
        rv_diag_set(diag, "--areas", 0, 0, "wants 1 to %d areas", RV_SYNTH_MAX_AREAS);
        return RV_EINVAL;
    }
    if (o->electors < 1 || o->electors > RV_SYNTH_MAX_ELECTORS) {
        rv_diag_set(diag, "--electors", 0, 0, "wants 1 to %llu electors",
                    (unsigned long long)RV_SYNTH_MAX_ELECTORS);
        return RV_EINVAL;
    }
    if (o->electors < (uint64_t)RV_SYNTH_MIN_PER_AREA * o->areas) {
        rv_diag_set(
            diag, "--electors", 0, 0, "wants at least %d electors per area (%llu for %u areas)",
            RV_SYNTH_MIN_PER_AREA, (unsigned long long)RV_SYNTH_MIN_PER_AREA * o->areas, o->areas);
        return RV_EINVAL;
    }
    if (o->months > RV_SYNTH_MAX_MONTHS) {
        rv_diag_set(diag, "--months", 0, 0, "wants 0 to %d months", RV_SYNTH_MAX_MONTHS);
        return RV_EINVAL;
    }
    if (o->donations > RV_SYNTH_MAX_DONATIONS) {
        rv_diag_set(diag, "--donations", 0, 0, "wants 0 to %llu donations",
                    (unsigned long long)RV_SYNTH_MAX_DONATIONS);
        return RV_EINVAL;
    }
    int y, m, d;
    if (o->edition == RV_DATE_NONE || o->edition == RV_DATE_FOREVER) {
        rv_diag_set(diag, "--edition", 0, 0, "wants a date YYYY-MM-DD");
        return RV_EINVAL;
    }
    rv_date_to_ymd(o->edition, &y, &m, &d);
    if (y < 1900 || y > 9000) {
        rv_diag_set(diag, "--edition", 0, 0, "wants a year from 1900 to 9000");
        return RV_EINVAL;
    }
    return 0;
}

/* ---- growing arrays ------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / size)
        return RV_ENOMEM;
    void *np = realloc(*p, nc * size);
    if (np == NULL)
        return RV_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}
#define GROW(a, arr, n, need) grow((void **)&(a)->arr, &(a)->cap##arr, (need), sizeof(*(a)->arr))

void sy_area_free(struct sy_area *a)
{
    free(a->el);
    free(a->hh);
    free(a->unit);
    free(a->street);
    free(a->pd);
    memset(a, 0, sizeof(*a));
}

/* ---- the layout of each area's files ------------------------------------------------------- */

static void area_layout(struct sy_area *a, uint64_t seed, unsigned i)
{
    struct sy_rng r;
    sy_rng_seed(&r, seed, 1000 + i);
    a->index = i;
    rv_synth_area_code(i, a->code);
    a->scottish = a->code[0] == 'S';
    a->delim = ',';
    a->namecol = SY_NAME_SURFIRST;
    switch (i) {
    case 0: /* the common export: CSV, UTF-8, "Surname, Forenames", UPRN */
        a->uprn = a->suffix_zero = true;
        break;
    case 1: /* legacy: tab-separated Windows-1252 with CRLF, name in two columns */
        a->delim = '\t';
        a->cp1252 = a->crlf = a->optout_n = true;
        a->namecol = SY_NAME_SPLIT;
        break;
    case 2: /* UTF-8 with a byte-order mark, "Forenames Surname", ISO dates */
        a->bom = a->uprn = a->iso_dates = true;
        a->namecol = SY_NAME_FOREFIRST;
        a->alter_date = 2;
        break;
    case 3: /* CSV in Windows-1252, two name columns */
        a->cp1252 = a->crlf = a->suffix_zero = true;
        a->namecol = SY_NAME_SPLIT;
        a->alter_date = 1;
        break;
    default:
        a->delim = sy_chance(&r, 0.2) ? '\t' : ',';
        a->cp1252 = sy_chance(&r, 0.3);
        a->crlf = a->cp1252 || sy_chance(&r, 0.2);
        a->bom = !a->cp1252 && sy_chance(&r, 0.2);
        a->uprn = sy_chance(&r, 0.5);
        a->iso_dates = sy_chance(&r, 0.3);
        a->suffix_zero = sy_chance(&r, 0.5);
        a->optout_n = sy_chance(&r, 0.4);
        a->namecol = (uint8_t)sy_below(&r, 3);
        a->alter_date = (uint8_t)sy_below(&r, 3);
        break;
    }
    /* Opt-out rates vary by council from 3 % to 84 %, about 55 % on average: a triangular
     * distribution on [0.03, 0.84] with its mode at 0.78 has mean 0.55. Areas come in pairs
     * drawn at u and 1 - u, so a few areas already average near 55 %. */
    if (i == 0) {
        a->optout_rate = 0.55;
    } else {
        const double lo = 0.03, hi = 0.84, mode = 0.78, fm = (mode - lo) / (hi - lo);
        struct sy_rng pr;
        sy_rng_seed(&pr, seed, 5000 + (i + 1) / 2);
        double u = sy_u01(&pr);
        if (i % 2 == 0)
            u = 1 - u;
        a->optout_rate = u < fm ? lo + sqrt(u * (hi - lo) * (mode - lo))
                                : hi - sqrt((1 - u) * (hi - lo) * (hi - mode));
    }
    a->uprn_base = 100000000000ULL + (uint64_t)i * 200000000ULL;
}

/* ---- postcodes ------------------------------------------------------------------------------ */

static const char inward_letters[] = "ABDEFGHJLNPQRSTUWXYZ"; /* 20 letters: 400 units a sector */
#define SY_DISTRICTS_PER_SLOT 24

struct pc_cursor {
    uint32_t country;     /* 0 England, 1 Wales, 2 Scotland: whose postcode areas to use */
    uint32_t pa;          /* postcode area (index into tables.pc_area) */
    uint32_t block;       /* districts block*24+1 .. block*24+24 of that postcode area */
    uint32_t district;    /* 0..23 within the block */
    uint32_t sector;      /* 0..9 */
    uint32_t unit;        /* units used in this sector */
    uint32_t sector_addr; /* addresses in this sector */
    uint32_t sectors_in_dist;
    uint32_t aps, spd; /* targets: addresses per sector, sectors per district */
    uint32_t town;     /* town of the current district */
    uint32_t unit_offset;
    uint32_t serial; /* counts districts, so callers notice a new one */
};

/* Postcode areas by country: Scottish and Welsh registers take their own country's postcode
 * areas while they last, then England's. Each area is split into 4 blocks of 24 districts
 * (a "slot"); an area takes whole slots, so no two registers share a postcode. */
static const char *const scottish_pa[] = {"AB", "DD", "DG", "EH", "FK", "G",  "HS", "IV",
                                          "KA", "KW", "KY", "ML", "PA", "PH", "TD", "ZE"};
static const char *const welsh_pa[] = {"CF", "LD", "LL", "NP", "SA"};
#define SY_BLOCKS 4

/* 0 England, 1 Wales, 2 Scotland, 3 not Great Britain (Northern Ireland has its own
 * registration office; the Crown Dependencies are not in the UK). */
static int country_of(const char *pa)
{
    static const char *const not_gb[] = {"BT", "GY", "JE", "IM"};
    for (size_t i = 0; i < sizeof(not_gb) / sizeof(not_gb[0]); i++)
        if (strcmp(pa, not_gb[i]) == 0)
            return 3;
    for (size_t i = 0; i < sizeof(welsh_pa) / sizeof(welsh_pa[0]); i++)
        if (strcmp(pa, welsh_pa[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(scottish_pa) / sizeof(scottish_pa[0]); i++)
        if (strcmp(pa, scottish_pa[i]) == 0)
            return 2;
    return 0;
}

static int build_pools(struct sy_run *run)
{
    const uint32_t n = run->t.npc_area;
    for (int k = 0; k < 3; k++) {
        run->pool[k] = calloc(n, sizeof(uint32_t));
        if (run->pool[k] == NULL)
            return RV_ENOMEM;
    }
    /* a fixed shuffle (37 is coprime with 124), so neighbouring registers differ */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pa = (uint32_t)((uint64_t)i * 37 % n);
        int k = country_of(run->t.pc_area[pa]);
        if (k < 3)
            run->pool[k][run->pool_n[k]++] = pa;
    }
    return 0;
}

static int pc_take_slot(struct sy_run *run, struct pc_cursor *c)
{
    for (uint32_t k = c->country;; k = 0) {
        uint32_t n = run->pool_n[k];
        if (n > 0 && run->pool_next[k] < n * SY_BLOCKS) {
            uint32_t idx = run->pool_next[k]++;
            c->pa = run->pool[k][idx % n];
            c->block = idx / n;
            c->district = 0;
            return 0;
        }
        if (k == 0)
            return RV_ETOOBIG;
    }
}

static int pc_new_district(struct sy_run *run, struct pc_cursor *c, struct sy_rng *r, bool first)
{
    int err;
    if (!first && ++c->district == SY_DISTRICTS_PER_SLOT && (err = pc_take_slot(run, c)) != 0)
        return err;
    c->serial++;
    c->sector = sy_below(r, 4);
    c->sectors_in_dist = 0;
    c->unit = 0;
    c->sector_addr = 0;
    c->town = sy_below(r, run->t.ntown);
    c->unit_offset = sy_below(r, 400);
    return 0;
}

static int pc_next_sector(struct sy_run *run, struct pc_cursor *c, struct sy_rng *r)
{
    c->sectors_in_dist++;
    c->sector++;
    c->unit = 0;
    c->sector_addr = 0;
    c->unit_offset = sy_below(r, 400);
    if (c->sectors_in_dist >= c->spd || c->sector > 9)
        return pc_new_district(run, c, r, false);
    return 0;
}

/* Writes the unit postcode for the cursor's next unit. */
static void pc_format(struct sy_run *run, const struct pc_cursor *c, struct sy_unit *u)
{
    uint32_t dnum = c->block * SY_DISTRICTS_PER_SLOT + c->district + 1;
    uint32_t k = (c->unit * 7 + c->unit_offset) % 400;
    int n = snprintf(u->pc, sizeof(u->pc), "%s%u %u%c%c", run->t.pc_area[c->pa], dnum, c->sector,
                     inward_letters[k / 20], inward_letters[k % 20]);
    u->len = (uint8_t)n;
}

/* ---- polling districts ----------------------------------------------------------------------- */

static void pd_prefix(uint32_t k, struct sy_pd *p)
{
    uint32_t w = k / 9, d = k % 9 + 1;
    int n = 0;
    if (w < 26 * 26) {
        p->prefix[n++] = (char)('A' + w / 26);
        p->prefix[n++] = (char)('A' + w % 26);
    } else {
        w -= 26 * 26;
        p->prefix[n++] = (char)('A' + (w / 676) % 26);
        p->prefix[n++] = (char)('A' + (w / 26) % 26);
        p->prefix[n++] = (char)('A' + w % 26);
    }
    p->prefix[n++] = (char)('0' + d);
    p->prefix[n] = '\0';
    p->len = (uint8_t)n;
    p->next = 1;
}

/* ---- people ------------------------------------------------------------------------------- */

struct gen {
    struct sy_run *run;
    struct sy_area *a;
    struct sy_rng *r;
    struct sy_quota q_att, q_local, q_postal, q_opt, q_large;
    double p_att, p_local, p_postal;
    double size_debt[6];
    uint32_t cur_pd;
    bool fresh_pd;
};

static uint16_t draw_fore(const struct sy_tables *t, struct sy_rng *r, bool female)
{
    return (uint16_t)(female ? t->fore_f[sy_alias_draw(&t->female_w, r)]
                             : t->fore_m[sy_alias_draw(&t->male_w, r)]);
}

static void name_person(const struct sy_tables *t, struct sy_rng *r, struct sy_el *e)
{
    bool female = e->flags & SY_F_FEMALE;
    e->fore = draw_fore(t, r, female);
    e->mid1 = e->mid2 = 0;
    double u = sy_u01(r);
    if (u < 0.45) {
        e->mid1 = draw_fore(t, r, female);
        if (e->mid1 == e->fore)
            e->mid1 = 0;
        else if (u < 0.06) {
            e->mid2 = draw_fore(t, r, female);
            if (e->mid2 == e->fore || e->mid2 == e->mid1)
                e->mid2 = 0;
        }
    }
}

static struct sy_el *new_el(struct gen *g, int *err)
{
    struct sy_area *a = g->a;
    if ((*err = GROW(a, el, a->nel, a->nel + 1)) != 0)
        return NULL;
    struct sy_el *e = &a->el[a->nel++];
    memset(e, 0, sizeof(*e));
    e->hh = SY_NONE;
    e->pd = g->cur_pd;
    e->num = a->pd[g->cur_pd].next++;
    e->attain = RV_DATE_NONE;
    e->from = g->run->o->edition;
    e->to = RV_DATE_FOREVER;
    e->changed_on = RV_DATE_FOREVER;
    e->prev_hh = SY_NONE;
    e->prev_sur = SY_NONE;
    return e;
}

static void count_el(struct rv_synth_stats *st, const struct sy_el *e)
{
    st->electors++;
    st->overseas += (e->markers & RV_MARK_F) != 0;
    st->anonymous += (e->markers & RV_MARK_N) != 0;
    st->attainers += e->attain != RV_DATE_NONE;
    st->optout += (e->flags & SY_F_OPTOUT) != 0;
    st->local_only += (e->markers & (RV_MARK_G | RV_MARK_B | RV_MARK_M | RV_MARK_L)) != 0;
    st->postal += (e->markers & RV_MARK_A) != 0;
}

static uint16_t local_marker(struct gen *g)
{
    if (g->a->scottish)
        return RV_MARK_M;
    return sy_chance(g->r, 0.7) ? RV_MARK_B : RV_MARK_G;
}

/* Electors who are not at an address: overseas (F) and anonymous (N) entries, listed at the
 * end of their polling district. */
static int add_unplaced(struct gen *g, uint64_t nf, uint64_t nn)
{
    int err = 0;
    for (uint64_t i = 0; i < nf; i++) {
        struct sy_el *e = new_el(g, &err);
        if (e == NULL)
            return err;
        e->markers = RV_MARK_F;
        if (sy_chance(g->r, 0.3))
            e->markers |= RV_MARK_A;
        else if (sy_chance(g->r, 0.1))
            e->markers |= RV_MARK_P;
        if (sy_chance(g->r, 0.52))
            e->flags |= SY_F_FEMALE;
        if (sy_quota_take(&g->q_opt, g->r, g->a->optout_rate, 1))
            e->flags |= SY_F_OPTOUT;
        e->sur = sy_alias_draw(&g->run->t.sur_w, g->r);
        name_person(&g->run->t, g->r, e);
        count_el(g->run->st, e);
    }
    for (uint64_t i = 0; i < nn; i++) {
        struct sy_el *e = new_el(g, &err);
        if (e == NULL)
            return err;
        e->markers = RV_MARK_N;
        e->sur = 0;
        count_el(g->run->st, e);
    }
    return 0;
}

/* One household of s electors at address h. */
static int add_household(struct gen *g, uint32_t h, uint32_t s, bool large)
{
    const struct sy_tables *t = &g->run->t;
    struct sy_rng *r = g->r;
    int err = 0;
    bool share = !large && s >= 3 && sy_chance(r, 0.12); /* a house share: unrelated */
    bool local = false, postal = false, samename = false;
    uint32_t sur = sy_alias_draw(&t->sur_w, r), sur2 = sur;
    bool head_female = sy_chance(r, 0.45);
    struct sy_el *head = NULL;
    size_t first = g->a->nel;

    if (!large) {
        local = sy_quota_take(&g->q_local, r, g->p_local, s);
        postal = sy_quota_take(&g->q_postal, r, g->p_postal, s);
        samename = s >= 3 && !head_female && !share && sy_chance(r, 0.01);
    }
    for (uint32_t j = 0; j < s; j++) {
        struct sy_el *e = new_el(g, &err);
        if (e == NULL)
            return err;
        head = &g->a->el[first];
        e->hh = h;
        bool female;
        if (large || share)
            female = sy_chance(r, large ? 0.6 : 0.5);
        else if (j == 0)
            female = head_female;
        else if (j == 1)
            female = sy_chance(r, 0.9) ? !head_female : head_female;
        else
            female = sy_chance(r, 0.5);
        if (female)
            e->flags |= SY_F_FEMALE;
        if (large || share || j == 0)
            e->sur = large || share ? sy_alias_draw(&t->sur_w, r) : sur;
        else if (j == 1) {
            e->sur = sy_chance(r, 0.78) ? sur : sy_alias_draw(&t->sur_w, r);
            sur2 = e->sur;
        } else
            e->sur =
                sy_chance(r, 0.85) ? (sy_chance(r, 0.8) ? sur : sur2) : sy_alias_draw(&t->sur_w, r);
        name_person(t, r, e);
        if (samename && j == 2) {
            /* father and son of one name at one address */
            e->flags &= (uint8_t)~SY_F_FEMALE;
            e->fore = head->fore;
            e->sur = head->sur;
            e->mid1 = e->mid2 = 0;
            head->mid1 = head->mid2 = 0;
            e->flags |= SY_F_SAMENAME;
            head->flags |= SY_F_SAMENAME;
            g->run->st->same_name++;
        }
        if (large) {
            if (sy_quota_take(&g->q_local, r, g->p_local, 1))
                e->markers |= local_marker(g);
            if (sy_quota_take(&g->q_postal, r, g->p_postal, 1))
                e->markers |= RV_MARK_A;
        } else {
            if (local)
                e->markers |= local_marker(g);
            if (postal)
                e->markers |= RV_MARK_A;
        }
        if (!(e->markers & RV_MARK_A) && sy_chance(r, 0.01))
            e->markers |= RV_MARK_P;
        if (sy_chance(r, 0.0002)) {
            e->markers &= (uint16_t) ~(RV_MARK_G | RV_MARK_B | RV_MARK_M);
            e->markers |= RV_MARK_L;
        }
        if (sy_quota_take(&g->q_opt, r, g->a->optout_rate, 1))
            e->flags |= SY_F_OPTOUT;
        count_el(g->run->st, e);
    }
    /* An attainer: the youngest of a family, turning 18 within the year. */
    g->q_att.debt += g->p_att * s;
    if (!large && !share && s >= 2 && sy_u01(r) < g->q_att.debt) {
        struct sy_el *e = &g->a->el[g->a->nel - 1];
        if (!(e->flags & SY_F_SAMENAME) && !(e->markers & RV_MARK_L)) {
            g->q_att.debt -= 1;
            e->attain = g->run->o->edition + 1 + (rv_date)sy_below(r, 365);
            g->run->st->attainers++;
        }
    }
    return 0;
}

/* The number of electors at the next address. Sizes are drawn in proportion to how far each
 * is behind its share, so the distribution holds at any size while the order stays random. */
static uint32_t draw_size(struct sy_rng *r, struct sy_quota *q_large, double debt[6], bool *large)
{
    double u, total = 0;
    uint32_t s = 0;
    *large = sy_quota_take(q_large, r, RV_SYNTH_SHARE_LARGE, 1);
    if (*large) {
        double v = sy_u01(r);
        return 10 + (uint32_t)(190.0 * v * v * v);
    }
    for (int k = 0; k < 6; k++) {
        debt[k] +=
            (hh_shares[k] - (k == 5 ? RV_SYNTH_SHARE_LARGE : 0)) / (1.0 - RV_SYNTH_SHARE_LARGE);
        total += debt[k] > 0 ? debt[k] : 0;
    }
    u = sy_u01(r) * total;
    for (s = 0; s < 5; s++) {
        double w = debt[s] > 0 ? debt[s] : 0;
        if (u < w)
            break;
        u -= w;
    }
    debt[s] -= 1;
    if (s < 5)
        return s;
    u = sy_u01(r);
    return u < 0.6 ? 5 : u < 0.85 ? 6 : u < 0.95 ? 7 : 8;
}

/* Mean electors per address under draw_size, for planning postcode districts and the
 * shares of the attainer and local-only quotas. */
static double mean_size(void)
{
    double m5 = 5 * 0.6 + 6 * 0.25 + 7 * 0.1 + 8 * 0.05, mlarge = 10 + 190.0 / 4;
    double base =
        hh_shares[1] + 2 * hh_shares[2] + 3 * hh_shares[3] + 4 * hh_shares[4] + hh_shares[5] * m5;
    return (1 - RV_SYNTH_SHARE_LARGE) * base + RV_SYNTH_SHARE_LARGE * mlarge;
}

static int new_pd(struct gen *g)
{
    struct sy_area *a = g->a;
    int err = GROW(a, pd, a->npd, a->npd + 1);
    if (err != 0)
        return err;
    pd_prefix((uint32_t)a->npd, &a->pd[a->npd]);
    g->cur_pd = (uint32_t)a->npd++;
    return 0;
}

static int gen_area(struct sy_run *run, struct sy_area *a, uint64_t n)
{
    struct sy_rng *r = &a->rng;
    struct gen g = {.run = run, .a = a, .r = r};
    struct pc_cursor pc = {0};
    struct rv_synth_stats *st = run->st;
    int err;
    uint64_t nf = (uint64_t)llround((double)n * RV_SYNTH_SHARE_OVERSEAS);
    uint64_t nn = (uint64_t)llround((double)n * RV_SYNTH_SHARE_ANONYMOUS);
    uint64_t done = 0, nf_done = 0, nn_done = 0, pd_count = 0, pd_target;
    double esize = mean_size();
    uint8_t *used = NULL; /* street names taken in the current postcode district */
    uint32_t used_serial = 0;

    if (nf < 1)
        nf = 1;
    if (nn < 1)
        nn = 1;
    const uint64_t nres = n - nf - nn;
    /* Shares among residents so that the share among all electors is the target. */
    g.p_att = RV_SYNTH_SHARE_ATTAINER * (double)n / (double)nres;
    g.p_local = RV_SYNTH_SHARE_LOCAL * (double)n / (double)nres;
    g.p_postal = RV_SYNTH_SHARE_POSTAL;

    /* Plan postcode districts: about 8,000 addresses each, more (up to 60,000) so that an
     * area fits in the 24 districts of one slot where it can. */
    double addrs = (double)nres / esize;
    double apd = addrs / SY_DISTRICTS_PER_SLOT > 8000 ? addrs / SY_DISTRICTS_PER_SLOT : 8000;
    if (apd > 60000)
        apd = 60000;
    if (apd > addrs)
        apd = addrs;
    pc.spd = (uint32_t)(apd / 2500);
    pc.spd = pc.spd < 1 ? 1 : pc.spd > 6 ? 6 : pc.spd;
    pc.aps = (uint32_t)(apd / pc.spd) + 1;
    /* reserve the arrays once: growing them by doubling would copy gigabytes */
    if ((err = GROW(a, el, 0, n + (size_t)((double)n * 0.012 * run->o->months) + 64)) != 0 ||
        (err = GROW(a, hh, 0, (size_t)(addrs * 1.05) + 64)) != 0 ||
        (err = GROW(a, unit, 0, (size_t)(addrs / 12) + 64)) != 0 ||
        (err = GROW(a, street, 0, (size_t)(addrs / 30) + 64)) != 0)
        goto out;
    a->cache_hh = SY_NONE;
    pc.country = a->code[0] == 'W' ? 1 : a->code[0] == 'S' ? 2 : 0;
    if ((err = pc_take_slot(run, &pc)) != 0 || (err = pc_new_district(run, &pc, r, true)) != 0 ||
        (err = new_pd(&g)) != 0)
        goto out;
    used = calloc(run->t.nstreet, 1);
    if (used == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    pd_target = 600 + sy_below(r, 2400);

    while (done < nres) {
        /* a street */
        if ((err = GROW(a, street, a->nstreet, a->nstreet + 1)) != 0)
            goto out;
        struct sy_street *sp = &a->street[a->nstreet];
        uint32_t sid = (uint32_t)a->nstreet++;
        uint32_t len = 4 + (uint32_t)(-log(1.0 - sy_u01(r)) * 45.0);
        bool rural = sy_chance(r, 0.15);
        uint32_t number = 0, flats_left = 0, block = 0, flatno = 0, unit_left = 0, named = 0;
        uint32_t name0 = sy_below(r, (uint32_t)NHOUSE_NAMES);
        if (len > 400)
            len = 400;
        /* a street stays in one sector: start a new one if this street might not fit */
        if (pc.unit + len / 8 + 1 > 400 || pc.sector_addr >= pc.aps)
            if ((err = pc_next_sector(run, &pc, r)) != 0)
                goto out;
        sp->town = pc.town;
        /* street names are unique within a postcode district */
        if (pc.serial != used_serial) {
            memset(used, 0, run->t.nstreet);
            used_serial = pc.serial;
        }
        sp->name = sy_below(r, run->t.nstreet);
        for (int tries = 0; used[sp->name] && tries < 64; tries++)
            sp->name = sy_below(r, run->t.nstreet);
        used[sp->name] = 1;
        for (uint32_t k = 0; k < len && done < nres; k++) {
            if (unit_left == 0) {
                if (pc.unit >= 400 && (err = pc_next_sector(run, &pc, r)) != 0)
                    goto out;
                if ((err = GROW(a, unit, a->nunit, a->nunit + 1)) != 0)
                    goto out;
                struct sy_unit *u = &a->unit[a->nunit++];
                pc_format(run, &pc, u);
                u->first_hh = (uint32_t)a->nhh;
                u->nhh = 0;
                pc.unit++;
                unit_left = 8 + sy_below(r, 19);
            }
            unit_left--;
            if ((err = GROW(a, hh, a->nhh, a->nhh + 1)) != 0)
                goto out;
            struct sy_hh *h = &a->hh[a->nhh];
            memset(h, 0, sizeof(*h));
            h->street = sid;
            h->unit = (uint32_t)a->nunit - 1;
            h->pd = g.cur_pd;
            a->unit[h->unit].nhh++;
            pc.sector_addr++;
            bool large;
            uint32_t s = draw_size(r, &g.q_large, g.size_debt, &large);
            if (flats_left > 0) {
                h->kind = SY_FLAT;
                h->number = (uint16_t)block;
                h->flat = (uint16_t)++flatno;
                flats_left--;
            } else if (large) {
                h->kind = sy_chance(r, 0.6) ? SY_CARE : SY_HALL;
                h->number = (uint16_t)++number;
                h->name = (uint16_t)sy_below(r, 500);
            } else if (named < NHOUSE_NAMES && sy_chance(r, rural ? 0.5 : 0.02)) {
                /* names are unique within a street: the first at a random place in the list */
                h->kind = SY_NAMED;
                h->name = (uint16_t)((name0 + named++) % NHOUSE_NAMES);
            } else if (!rural && sy_chance(r, 0.03)) {
                block = ++number;
                flats_left = 1 + sy_below(r, 11);
                flatno = 1;
                h->kind = SY_FLAT;
                h->number = (uint16_t)block;
                h->flat = 1;
            } else {
                h->kind = SY_HOUSE;
                h->number = (uint16_t)++number;
                if (sy_chance(r, 0.015))
                    h->letter = 'a';
            }
            if (s > nres - done)
                s = (uint32_t)(nres - done);
            st->addresses++;
            st->by_size[s < 5 ? s : 5]++;
            if (large) {
                st->large++;
                st->large_electors += s;
            }
            uint32_t hid = (uint32_t)a->nhh++;
            if ((err = add_household(&g, hid, s, large)) != 0)
                goto out;
            a->hh[hid].anchor = a->nel > 0 && a->el[a->nel - 1].pd == g.cur_pd &&
                                        !(a->el[a->nel - 1].markers & (RV_MARK_F | RV_MARK_N))
                                    ? (uint32_t)a->nel - 1
                                    : SY_NONE;
            done += s;
            pd_count += s;
            if (run->o->progress != NULL && (done & 0xffff) < s)
                run->o->progress(run->o->progress_ctx, 2 * run->progress_base + done,
                                 2 * run->o->electors);
        }
        /* close the polling district at a street's end */
        if (pd_count >= pd_target || done >= nres) {
            uint64_t want_f = done >= nres ? nf : nf * done / nres;
            uint64_t want_n = done >= nres ? nn : nn * done / nres;
            if ((err = add_unplaced(&g, want_f - nf_done, want_n - nn_done)) != 0)
                goto out;
            nf_done = want_f;
            nn_done = want_n;
            if (done < nres) {
                if ((err = new_pd(&g)) != 0)
                    goto out;
                pd_count = 0;
                pd_target = 600 + sy_below(r, 2400);
            }
        }
    }
    a->nel_edition = a->nel;
    err = 0;
out:
    free(used);
    return err;
}

/* ---- writing rows ------------------------------------------------------------------------- */

static void put_str(struct sy_out *o, const struct sy_area *a, const struct sy_str *s)
{
    if (a->cp1252)
        sy_put(o, s->cp, s->cplen);
    else
        sy_put(o, s->u8, s->u8len);
}

static void put_forenames(struct sy_out *o, const struct sy_run *run, const struct sy_area *a,
                          const struct sy_el *e)
{
    const struct sy_str *f = run->t.fore;
    put_str(o, a, &f[e->fore]);
    if (e->mid1) {
        sy_putc(o, ' ');
        put_str(o, a, &f[e->mid1]);
    }
    if (e->mid2) {
        sy_putc(o, ' ');
        put_str(o, a, &f[e->mid2]);
    }
}

uint32_t sy_el_hh(const struct sy_el *e, rv_date at)
{
    return (e->flags & SY_F_MOVED) && at < e->changed_on ? e->prev_hh : e->hh;
}

const struct sy_str *sy_el_surname(const struct sy_run *run, const struct sy_el *e, rv_date at)
{
    uint32_t s = (e->flags & SY_F_RENAMED) && at < e->changed_on ? e->prev_sur : e->sur;
    return &run->t.sur[s];
}

/* "12a Abbey Road", or the street alone for a named house. */
static void put_street_line(struct sy_out *o, const struct sy_run *run, const struct sy_area *a,
                            const struct sy_hh *h)
{
    const struct sy_str *sn = &run->t.street[a->street[h->street].name];
    if (h->kind != SY_NAMED) {
        sy_putu(o, h->number);
        if (h->letter)
            sy_putc(o, (char)h->letter);
        sy_putc(o, ' ');
    }
    sy_put(o, sn->u8, sn->u8len);
}

/* The six address columns. */
static void put_address(struct sy_out *o, const struct sy_run *run, const struct sy_area *a,
                        const struct sy_hh *h)
{
    const char d = a->delim;
    const struct sy_str *town = &run->t.town[a->street[h->street].town];
    int nl = 0;

    switch (h->kind) {
    case SY_FLAT:
        sy_put(o, "Flat ", 5);
        if (a->scottish) {
            /* tenement style: floor/position, "0/1" is the ground floor, first door */
            sy_putu(o, (uint64_t)(h->flat - 1) / 2);
            sy_putc(o, '/');
            sy_putu(o, (uint64_t)(h->flat - 1) % 2 + 1);
        } else {
            sy_putu(o, h->flat);
        }
        sy_putc(o, d);
        nl++;
        break;
    case SY_NAMED:
        sy_puts(o, house_names[h->name]);
        sy_putc(o, d);
        nl++;
        break;
    case SY_CARE:
    case SY_HALL:
        put_str(o, a, &run->t.sur[h->name]);
        sy_puts(o, h->kind == SY_CARE ? " House Care Home" : " Hall");
        sy_putc(o, d);
        nl++;
        break;
    default:
        break;
    }
    put_street_line(o, run, a, h);
    sy_putc(o, d);
    put_str(o, a, town);
    nl += 2;
    for (; nl < 6; nl++)
        sy_putc(o, d);
}

void sy_put_elector(struct sy_run *run, struct sy_area *a, struct sy_out *o, const struct sy_el *e)
{
    const char d = a->delim;
    const struct sy_pd *pd = &a->pd[e->pd];
    sy_out_room(o, 2048);
    sy_put(o, pd->prefix, pd->len);
    sy_putc(o, d);
    sy_putu(o, e->num);
    sy_putc(o, d);
    if (e->suf != 0 || a->suffix_zero)
        sy_putu(o, e->suf);
    sy_putc(o, d);
    {
        static const char letters[] = "FNLMGBAPEK";
        for (int i = 0; i < 10; i++)
            if (e->markers & (1u << i))
                sy_putc(o, letters[i]);
    }
    sy_putc(o, d);
    if (e->attain != RV_DATE_NONE)
        sy_put_date(o, e->attain, a->iso_dates);
    sy_putc(o, d);
    if (e->markers & RV_MARK_N) {
        /* number only: name, postcode and address are withheld */
        for (int i = 0; i < (a->namecol == SY_NAME_SPLIT ? 8 : 7); i++)
            sy_putc(o, d);
    } else {
        const struct sy_str *sur = &run->t.sur[e->sur];
        switch (a->namecol) {
        case SY_NAME_SURFIRST:
            if (d == ',')
                sy_putc(o, '"');
            put_str(o, a, sur);
            sy_put(o, ", ", 2);
            put_forenames(o, run, a, e);
            if (d == ',')
                sy_putc(o, '"');
            break;
        case SY_NAME_FOREFIRST:
            put_forenames(o, run, a, e);
            sy_putc(o, ' ');
            put_str(o, a, sur);
            break;
        default:
            put_str(o, a, sur);
            sy_putc(o, d);
            put_forenames(o, run, a, e);
            break;
        }
        sy_putc(o, d);
        if (e->hh == SY_NONE) {
            for (int i = 0; i < 6; i++)
                sy_putc(o, d);
        } else if (e->hh == a->cache_hh && a->cache_delim == d) {
            sy_put(o, a->cache, a->cache_len);
        } else {
            const struct sy_hh *h = &a->hh[e->hh];
            const struct sy_unit *u = &a->unit[h->unit];
            size_t start = o->len;
            sy_put(o, u->pc, u->len);
            sy_putc(o, d);
            put_address(o, run, a, h);
            if (o->len - start <= sizeof(a->cache)) {
                memcpy(a->cache, o->buf + start, o->len - start);
                a->cache_len = (uint16_t)(o->len - start);
                a->cache_hh = e->hh;
                a->cache_delim = d;
            }
        }
    }
    sy_putc(o, d);
    if (!(e->markers & RV_MARK_N)) {
        if (e->flags & SY_F_OPTOUT)
            sy_putc(o, 'Y');
        else if (a->optout_n)
            sy_putc(o, 'N');
    }
    if (a->uprn) {
        sy_putc(o, d);
        if (e->hh != SY_NONE)
            sy_putu(o, a->uprn_base + e->hh);
    }
}

static void put_header(struct sy_out *o, const struct sy_area *a, bool alterations)
{
    const char d = a->delim;
    static const char *const cols1[] = {"Elector Number Prefix", "Elector Number",
                                        "Elector Number Suffix", "Elector Markers", "Elector DOB"};
    if (a->bom)
        sy_put(o, "\xef\xbb\xbf", 3);
    for (int i = 0; i < 5; i++) {
        sy_puts(o, cols1[i]);
        sy_putc(o, d);
    }
    if (a->namecol == SY_NAME_SPLIT) {
        sy_puts(o, "Elector Surname");
        sy_putc(o, d);
        sy_puts(o, "Elector Forename");
    } else
        sy_puts(o, "Elector Name");
    sy_putc(o, d);
    sy_puts(o, "PostCode");
    for (int i = 1; i <= 6; i++) {
        sy_putc(o, d);
        sy_puts(o, "Address");
        sy_putu(o, (uint64_t)i);
    }
    sy_putc(o, d);
    sy_puts(o, "Opt Out");
    if (a->uprn) {
        sy_putc(o, d);
        sy_puts(o, "UPRN");
    }
    if (alterations) {
        sy_putc(o, d);
        sy_puts(o, "ElectorCreatedMonth");
        sy_putc(o, d);
        sy_puts(o, "ElectorChangedMonth");
        sy_putc(o, d);
        sy_puts(o, "ElectorDeletedMonth");
    }
}

static void put_eol(struct sy_out *o, const struct sy_area *a)
{
    if (a->crlf)
        sy_putc(o, '\r');
    sy_putc(o, '\n');
}

static int write_full(struct sy_run *run, struct sy_area *a, const char *adir)
{
    struct sy_out o;
    char name[64], ed[11];
    int err;

    snprintf(name, sizeof(name), "full-%s.csv", rv_date_format(run->o->edition, ed));
    if ((err = sy_out_open(&o, adir, name)) != 0) {
        rv_diag_set(run->diag, adir, 0, 0, "cannot create a file in the folder");
        return err;
    }
    put_header(&o, a, false);
    put_eol(&o, a);
    for (size_t i = 0; i < a->nel; i++) {
        sy_put_elector(run, a, &o, &a->el[i]);
        put_eol(&o, a);
        if (run->o->progress != NULL && (i & 0xffff) == 0xffff)
            run->o->progress(run->o->progress_ctx, 2 * run->progress_base + a->nel + i,
                             2 * run->o->electors);
    }
    err = sy_out_close(&o, true, run->diag);
    run->st->bytes += o.bytes;
    return err;
}

/* ---- monthly alterations ----------------------------------------------------------------- */

static rv_date add_months(rv_date d, unsigned k)
{
    int y, m, dd;
    rv_date_to_ymd(d, &y, &m, &dd);
    m += (int)k;
    y += (m - 1) / 12;
    m = (m - 1) % 12 + 1;
    return rv_date_from_ymd(y, m, 1);
}

static void put_alter_date(struct sy_out *o, const struct sy_area *a, rv_date d)
{
    if (a->alter_date == 2) {
        sy_put_date(o, d, true);
        o->len -= 3; /* YYYY-MM */
    } else
        sy_put_date(o, d, a->alter_date == 1);
}

/* A random live entry that this month has not touched yet; SY_NONE if none was found. */
static uint32_t pick_live(struct sy_area *a, rv_date eff, bool changeable)
{
    for (int tries = 0; tries < 64; tries++) {
        uint32_t i = sy_below(&a->rng, (uint32_t)a->nel);
        struct sy_el *e = &a->el[i];
        if (e->to != RV_DATE_FOREVER || e->from >= eff || (e->markers & RV_MARK_N) ||
            e->changed_on == eff)
            continue;
        if (changeable && ((e->flags & SY_F_CHANGED) || (e->markers & RV_MARK_F)))
            continue;
        return i;
    }
    return SY_NONE;
}

static int create_entry(struct sy_run *run, struct sy_area *a, rv_date eff)
{
    struct sy_rng *r = &a->rng;
    int err = GROW(a, el, a->nel, a->nel + 1);
    if (err != 0)
        return err;
    struct sy_el *e = &a->el[a->nel];
    memset(e, 0, sizeof(*e));
    e->attain = RV_DATE_NONE;
    e->from = eff;
    e->to = RV_DATE_FOREVER;
    e->changed_on = RV_DATE_FOREVER;
    e->prev_hh = e->prev_sur = SY_NONE;
    e->hh = SY_NONE;
    if (sy_chance(r, 0.52))
        e->flags |= SY_F_FEMALE;
    e->sur = sy_alias_draw(&run->t.sur_w, r);
    if (sy_chance(r, 0.05)) {
        /* a new overseas elector, at the end of a polling district */
        e->pd = sy_below(r, (uint32_t)a->npd);
        e->num = a->pd[e->pd].next++;
        e->markers = RV_MARK_F | (sy_chance(r, 0.3) ? RV_MARK_A : 0);
    } else {
        /* at an address, numbered after its neighbour with a suffix */
        uint32_t h = SY_NONE;
        for (int tries = 0; tries < 64 && h == SY_NONE; tries++) {
            uint32_t c = sy_below(r, (uint32_t)a->nhh);
            uint32_t an = a->hh[c].anchor;
            if (an != SY_NONE && a->el[an].nsuf < 250)
                h = c;
        }
        if (h == SY_NONE)
            return 0;
        struct sy_el *an = &a->el[a->hh[h].anchor];
        e->hh = h;
        e->pd = an->pd;
        e->num = an->num;
        e->suf = ++an->nsuf;
        if (an->hh == h && an->to == RV_DATE_FOREVER && sy_chance(r, 0.6))
            e->sur = an->sur;
        if (sy_chance(r, 0.2))
            e->markers |= RV_MARK_A;
        if (sy_chance(r, 0.05))
            e->markers |= a->scottish ? RV_MARK_M : RV_MARK_B;
        if (sy_chance(r, 0.1))
            e->attain = eff + 1 + (rv_date)sy_below(r, 365);
    }
    if (sy_chance(r, a->optout_rate))
        e->flags |= SY_F_OPTOUT;
    name_person(&run->t, r, e);
    a->nel++;
    return 1;
}

static void change_entry(struct sy_run *run, struct sy_area *a, struct sy_el *e, rv_date eff)
{
    struct sy_rng *r = &a->rng;
    double u = sy_u01(r);
    e->flags |= SY_F_CHANGED;
    e->changed_on = eff;
    if (u < 0.55 && a->nhh > 1) {
        /* moved house within the area */
        uint32_t h = sy_below(r, (uint32_t)a->nhh);
        if (h == e->hh)
            h = (h + 1) % (uint32_t)a->nhh;
        e->prev_hh = e->hh;
        e->hh = h;
        e->flags |= SY_F_MOVED;
        run->st->moves++;
    } else if (u < 0.63 && (e->flags & SY_F_FEMALE)) {
        /* a new surname on marriage */
        e->prev_sur = e->sur;
        e->sur = sy_alias_draw(&run->t.sur_w, r);
        if (e->sur == e->prev_sur)
            e->sur = (e->sur + 1) % run->t.nsur;
        e->flags |= SY_F_RENAMED;
        run->st->renames++;
    } else {
        /* a marker: postal vote taken up or given up, EU status confirmed, opt-out */
        double v = sy_u01(r);
        if (v < 0.5)
            e->markers ^= RV_MARK_A;
        else if (v < 0.65 && (e->markers & RV_MARK_G))
            e->markers = (uint16_t)((e->markers & ~RV_MARK_G) | RV_MARK_B);
        else
            e->flags ^= SY_F_OPTOUT;
    }
}

static int write_alterations(struct sy_run *run, struct sy_area *a, const char *adir,
                             uint64_t n_area, unsigned month)
{
    struct sy_out o;
    char name[64];
    int err, y, m, d;
    rv_date eff = add_months(run->o->edition, month);
    uint64_t ncre = (uint64_t)llround((double)n_area * RV_SYNTH_MONTHLY_CREATED);
    uint64_t ndel = (uint64_t)llround((double)n_area * RV_SYNTH_MONTHLY_DELETED);
    uint64_t nchg = (uint64_t)llround((double)n_area * RV_SYNTH_MONTHLY_CHANGED);
    const char dl = a->delim;

    rv_date_to_ymd(eff, &y, &m, &d);
    snprintf(name, sizeof(name), "alterations-%04d-%02d.csv", y, m);
    if ((err = sy_out_open(&o, adir, name)) != 0) {
        rv_diag_set(run->diag, adir, 0, 0, "cannot create a file in the folder");
        return err;
    }
    put_header(&o, a, true);
    put_eol(&o, a);
    for (uint64_t i = 0; i < ndel; i++) {
        uint32_t k = pick_live(a, eff, false);
        if (k == SY_NONE)
            continue;
        struct sy_el *e = &a->el[k];
        e->to = eff;
        sy_put_elector(run, a, &o, e);
        sy_putc(&o, dl);
        sy_putc(&o, dl);
        sy_putc(&o, dl);
        put_alter_date(&o, a, eff);
        put_eol(&o, a);
        run->st->deleted++;
    }
    for (uint64_t i = 0; i < nchg; i++) {
        uint32_t k = pick_live(a, eff, true);
        if (k == SY_NONE)
            continue;
        struct sy_el *e = &a->el[k];
        change_entry(run, a, e, eff);
        sy_put_elector(run, a, &o, e);
        sy_putc(&o, dl);
        sy_putc(&o, dl);
        put_alter_date(&o, a, eff);
        sy_putc(&o, dl);
        put_eol(&o, a);
        run->st->changed++;
    }
    for (uint64_t i = 0; i < ncre; i++) {
        int rc = create_entry(run, a, eff);
        if (rc < 0) {
            err = rc;
            goto out;
        }
        if (rc == 0)
            continue;
        sy_put_elector(run, a, &o, &a->el[a->nel - 1]);
        sy_putc(&o, dl);
        put_alter_date(&o, a, eff);
        sy_putc(&o, dl);
        sy_putc(&o, dl);
        put_eol(&o, a);
        run->st->created++;
    }
out:
    if (err != 0) {
        (void)sy_out_close(&o, false, NULL);
        return err;
    }
    err = sy_out_close(&o, true, run->diag);
    run->st->bytes += o.bytes;
    return err;
}

/* ---- the run ----------------------------------------------------------------------------- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    return RV_EIO;
}

int rv_synth_run(const struct rv_synth_opts *o, const char *dir, struct rv_synth_stats *st,
                 struct rv_diag *diag)
{
    struct sy_run run = {.o = o, .dir = dir, .st = st, .diag = diag};
    struct sy_area a = {0};
    uint64_t *sizes = NULL, done = 0;
    double *w = NULL, wsum = 0, optsum = 0;
    bool tables = false;
    int err;

    memset(st, 0, sizeof(*st));
    rv_diag_clear(diag);
    if ((err = rv_synth_check(o, diag)) != 0)
        goto out;
    err = RV_ENOMEM;
    sizes = calloc(o->areas, sizeof(*sizes));
    w = calloc(o->areas, sizeof(*w));
    if (sizes == NULL || w == NULL)
        goto out;
    if ((err = sy_tables_load(&run.t)) != 0) {
        rv_diag_set(diag, "data/names", 0, 0, "cannot load the compiled-in name lists");
        goto out;
    }
    tables = true;
    if ((err = build_pools(&run)) != 0)
        goto out;
    /* Area sizes vary by a factor of three; each gets at least the minimum. */
    {
        struct sy_rng r;
        uint64_t spare = o->electors - (uint64_t)RV_SYNTH_MIN_PER_AREA * o->areas, given = 0;
        double acc = 0;
        sy_rng_seed(&r, o->seed, 1);
        for (unsigned i = 0; i < o->areas; i++)
            wsum += w[i] = 0.5 + sy_u01(&r);
        for (unsigned i = 0; i < o->areas; i++) {
            acc += w[i];
            uint64_t upto = i + 1 == o->areas ? spare : (uint64_t)((double)spare * acc / wsum);
            sizes[i] = RV_SYNTH_MIN_PER_AREA + (upto - given);
            given = upto;
        }
    }
    for (unsigned i = 0; i < o->areas; i++) {
        char adir[4096];
        memset(&a, 0, sizeof(a));
        area_layout(&a, o->seed, i);
        sy_rng_seed(&a.rng, o->seed, 2000 + i);
        if ((size_t)snprintf(adir, sizeof(adir), "%s/%s", dir, a.code) >= sizeof(adir)) {
            err = RV_ETOOBIG;
            rv_diag_set(diag, dir, 0, 0, "folder name too long");
            goto out;
        }
        if ((err = make_dir(adir)) != 0) {
            rv_diag_set(diag, adir, 0, 0, "cannot create the area folder");
            goto out;
        }
        if ((err = gen_area(&run, &a, sizes[i])) != 0) {
            if (err == RV_ETOOBIG)
                rv_diag_set(diag, "--areas", 0, 0, "too many addresses for the postcode space");
            goto out;
        }
        optsum += a.optout_rate * (double)sizes[i];
        st->cp1252_areas += a.cp1252;
        st->tsv_areas += a.delim == '\t';
        st->split_name_areas += a.namecol == SY_NAME_SPLIT;
        st->uprn_areas += a.uprn;
        if ((err = write_full(&run, &a, adir)) != 0)
            goto out;
        for (unsigned m = 1; m <= o->months; m++)
            if ((err = write_alterations(&run, &a, adir, sizes[i], m)) != 0)
                goto out;
        run.progress_base += sizes[i];
        if (o->donations > 0) {
            done += sizes[i];
            uint64_t upto = o->donations * done / o->electors; /* no overflow: both capped */
            if ((err = sy_donations_area(&run, &a, upto - run.don_done)) != 0)
                goto out;
            run.don_done = upto;
        }
        sy_area_free(&a);
    }
    st->optout_target = optsum / (double)o->electors;
    if (o->donations > 0 && (err = sy_donations_write(&run)) != 0)
        goto out;
    err = 0;
out:
    sy_area_free(&a);
    sy_donations_free(&run);
    if (tables)
        sy_tables_free(&run.t);
    for (int k = 0; k < 3; k++)
        free(run.pool[k]);
    free(sizes);
    free(w);
    return err;
}
