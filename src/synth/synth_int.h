/*
 * synth_int.h - private to src/synth: the random generator, weighted sampling, the name and
 * place tables, the fast file writer, and the in-memory model of one area that the register,
 * alteration and donation writers share.
 *
 * Everything here is sized for ten million electors at a few hundred nanoseconds each: no
 * per-row allocation, fixed-size records, strings kept once in tables and copied into big
 * output buffers.
 */
#ifndef RV_SYNTH_INT_H
#define RV_SYNTH_INT_H

#include "synth/synth.h"

#include <stdio.h>
#include <string.h>

/* ---- random numbers: xoshiro256** seeded through splitmix64 ------------------------------ */
struct sy_rng {
    uint64_t s[4];
};

static inline uint64_t sy_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sy_next(struct sy_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = sy_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sy_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n); n > 0. Lemire's multiply-shift (the tiny bias is irrelevant here). */
static inline uint32_t sy_below(struct sy_rng *r, uint32_t n)
{
    return (uint32_t)(((sy_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static inline double sy_u01(struct sy_rng *r)
{
    return (double)(sy_next(r) >> 11) * 0x1.0p-53;
}

static inline bool sy_chance(struct sy_rng *r, double p)
{
    return sy_u01(r) < p;
}

/* Seeds r from (seed, stream): different streams give independent sequences. */
void sy_rng_seed(struct sy_rng *r, uint64_t seed, uint64_t stream);

/* A quota: picks items so that the picked weight tracks p times the weight seen, within one
 * item, while the positions stay random. Used for shares the statistics must hit. */
struct sy_quota {
    double debt;
};
static inline bool sy_quota_take(struct sy_quota *q, struct sy_rng *r, double p, double weight)
{
    q->debt += p * weight;
    if (sy_u01(r) * weight < q->debt) {
        q->debt -= weight;
        return true;
    }
    return false;
}

/* ---- weighted choice: Vose's alias method ------------------------------------------------- */
struct sy_alias {
    uint32_t n;
    uint32_t *alias;
    uint32_t *cut; /* probability of keeping slot i, scaled to 2^32 */
};
/* Builds from n > 0 non-negative weights. Returns 0 or RV_ENOMEM. */
int sy_alias_build(struct sy_alias *a, const double *w, uint32_t n);
void sy_alias_free(struct sy_alias *a);
static inline uint32_t sy_alias_draw(const struct sy_alias *a, struct sy_rng *r)
{
    uint64_t x = sy_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)a->n) >> 32);
    return (uint32_t)x < a->cut[i] ? i : a->alias[i];
}

/* ---- strings -------------------------------------------------------------------------------- */
/* A name or place as written in UTF-8 and in Windows-1252 (characters 1252 lacks are
 * transliterated: "Ł" -> "L"). For pure ASCII both point to the same bytes. */
struct sy_str {
    const char *u8;
    const char *cp;
    uint16_t u8len, cplen;
    uint8_t flags; /* SY_S_* */
};
#define SY_S_ACCENT     0x01 /* has a non-ASCII letter */
#define SY_S_APOSTROPHE 0x02
#define SY_S_HYPHEN     0x04
#define SY_S_MC         0x08 /* starts Mc or Mac + capital */
#define SY_S_FEMALE     0x10
#define SY_S_CPACCENT   0x20 /* still has a non-ASCII letter in Windows-1252 */

/* ---- tables built once per run ------------------------------------------------------------ */
struct sy_tables {
    struct sy_str *sur; /* surnames: list + extras + hyphenated + generated long tail */
    uint32_t nsur;
    struct sy_alias sur_w;
    struct sy_str *fore; /* forenames; index 0 is the empty name */
    uint32_t nfore;
    struct sy_alias male_w, female_w; /* over fore_m / fore_f */
    uint32_t *fore_m, *fore_f;        /* indexes into fore */
    uint32_t nfore_m, nfore_f;
    struct sy_str *street; /* street names, "Abbey Road" */
    uint32_t nstreet;
    struct sy_str *town;
    uint32_t ntown;
    const char **pc_area; /* postcode areas, "LS" */
    uint32_t npc_area;
    /* nicknames: for forename i, nick_ix[i]..nick_ix[i+1] index nick[] (into fore-like strs) */
    uint32_t *nick_ix;
    struct sy_str *nick;
    uint32_t nnick;
    /* for forename i, a bit per initial letter of the names it can be confused with: itself,
     * its nicknames, and the names it is a nickname of (Sarah: S; William: W, B) */
    uint32_t *fore_rel;
    char *arena; /* owns every string above */
    size_t arena_len, arena_cap;
};
RV_NODISCARD int sy_tables_load(struct sy_tables *t);
void sy_tables_free(struct sy_tables *t);

/* ---- output ------------------------------------------------------------------------------- */
/* Buffered file, written unnamed (O_TMPFILE) or as "<dir>/.<name>.tmp", and given its name
 * by sy_out_close(commit) only when complete. */
struct sy_out {
    char *buf;
    size_t len, cap;
    int fd;
    bool anon; /* O_TMPFILE: no name until committed */
    int err;   /* sticky: first RV_E* */
    uint64_t bytes;
    char tmp[4096], path[4096];
};
RV_NODISCARD int sy_out_open(struct sy_out *o, const char *dir, const char *name);
void sy_out_flush(struct sy_out *o);
/* commit: name the file (replacing one of that name); otherwise drop it. Returns 0 or the
 * first error, with errno kept. */
int sy_out_close(struct sy_out *o, bool commit, struct rv_diag *diag);

static inline void sy_out_room(struct sy_out *o, size_t n)
{
    if (o->len + n > o->cap)
        sy_out_flush(o);
}
static inline void sy_put(struct sy_out *o, const char *s, size_t n)
{
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}
static inline void sy_putc(struct sy_out *o, char c)
{
    o->buf[o->len++] = c;
}
static inline void sy_puts(struct sy_out *o, const char *s)
{
    sy_put(o, s, strlen(s));
}
static inline void sy_putu(struct sy_out *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        o->buf[o->len++] = tmp[--n];
}
/* "dd/mm/yyyy" (iso false) or "YYYY-MM-DD". */
void sy_put_date(struct sy_out *o, rv_date d, bool iso);

/* ---- the area model ------------------------------------------------------------------------ */
#define SY_NONE UINT32_MAX

enum sy_kind { SY_HOUSE = 0, SY_NAMED, SY_FLAT, SY_CARE, SY_HALL };

struct sy_hh { /* one address */
    uint32_t street;
    uint32_t unit;   /* postcode unit */
    uint32_t pd;     /* polling district */
    uint32_t anchor; /* elector whose number new entries here take, with a suffix */
    uint16_t number; /* house or building number; 0 for a named house */
    uint16_t flat;   /* flat or room number, 0 for none */
    uint16_t name;   /* house or establishment name index */
    uint8_t kind;    /* enum sy_kind */
    uint8_t letter;  /* 'a', 'b' after the number, or 0 */
};

struct sy_unit {
    char pc[9]; /* "LS1 1AA" */
    uint8_t len;
    uint32_t first_hh, nhh;
};

struct sy_street {
    uint32_t name; /* into tables.street */
    uint32_t town; /* into tables.town */
};

struct sy_pd {
    char prefix[8];
    uint8_t len;
    uint32_t next; /* next unused elector number */
};

#define SY_F_FEMALE   0x01
#define SY_F_OPTOUT   0x02
#define SY_F_SAMENAME 0x04 /* one of a planted same-name pair */
#define SY_F_MOVED    0x08
#define SY_F_RENAMED  0x10
#define SY_F_CHANGED  0x20 /* any change row (at most one per elector) */

struct sy_el {
    uint32_t hh;  /* address; SY_NONE for F and N */
    uint32_t sur; /* surname */
    uint16_t fore, mid1, mid2;
    uint16_t markers; /* RV_MARK_* */
    uint32_t pd;
    uint32_t num;
    uint8_t suf;
    uint8_t nsuf; /* last suffix handed out at this number */
    uint8_t flags;
    uint8_t pad;
    rv_date attain; /* RV_DATE_NONE unless an attainer */
    rv_date from;   /* on the register from (the edition, or a created alteration) */
    rv_date to;     /* deleted from; RV_DATE_FOREVER */
    rv_date changed_on;
    uint32_t prev_hh, prev_sur; /* before changed_on */
};

enum sy_namecol { SY_NAME_SURFIRST = 0, SY_NAME_FOREFIRST, SY_NAME_SPLIT };

struct sy_area {
    unsigned index;
    char code[16];
    /* layout */
    char delim;
    bool cp1252, bom, crlf, uprn, iso_dates, suffix_zero, optout_n, scottish;
    uint8_t namecol;
    uint8_t alter_date; /* 0 dd/mm/yyyy, 1 YYYY-MM-DD, 2 YYYY-MM */
    double optout_rate;
    uint64_t uprn_base;
    /* model */
    struct sy_el *el;
    size_t nel, capel, nel_edition;
    struct sy_hh *hh;
    size_t nhh, caphh;
    struct sy_unit *unit;
    size_t nunit, capunit;
    struct sy_street *street;
    size_t nstreet, capstreet;
    struct sy_pd *pd;
    size_t npd, cappd;
    struct sy_rng rng;
    /* the postcode and address columns of the last address written, reused by the next
     * elector at the same address */
    uint32_t cache_hh;
    uint16_t cache_len;
    char cache_delim;
    char cache[1024];
};

struct sy_run {
    const struct rv_synth_opts *o;
    const char *dir;
    struct sy_tables t;
    struct rv_synth_stats *st;
    struct rv_diag *diag;
    uint32_t *pool[3]; /* postcode areas of England, Wales, Scotland */
    uint32_t pool_n[3];
    uint32_t pool_next[3];  /* next slot (postcode area x block of districts) of each */
    uint64_t progress_base; /* electors of the areas already generated */
    /* donations collected over all areas, written at the end */
    struct sy_don *don;
    size_t ndon, capdon;
    uint64_t don_done; /* donations assigned to areas so far */
};

/* synth.c */
void sy_area_free(struct sy_area *a);
/* Writes one elector row's common columns (number to UPRN) for the area's layout. date: the
 * state at which names and addresses are taken (RV_DATE_FOREVER for the latest). */
void sy_put_elector(struct sy_run *run, struct sy_area *a, struct sy_out *o, const struct sy_el *e);
const struct sy_str *sy_el_surname(const struct sy_run *run, const struct sy_el *e, rv_date at);
uint32_t sy_el_hh(const struct sy_el *e, rv_date at);

/* synth_don.c */
RV_NODISCARD int sy_donations_area(struct sy_run *run, struct sy_area *a, uint64_t n);
RV_NODISCARD int sy_donations_write(struct sy_run *run);
void sy_donations_free(struct sy_run *run);

#endif /* RV_SYNTH_INT_H */
