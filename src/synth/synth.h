/*
 * synth.h - the synthetic register generator behind `regvault synth`.
 *
 * No real register data may ever be used, so every test, benchmark and demo runs on files
 * made here: full registers per area in the layouts of docs/formats.md (CSV or TSV, UTF-8 or
 * Windows-1252, name in one column or two, with or without UPRN), monthly alteration files,
 * and a donations file in the Electoral Commission layout with a ground-truth file saying
 * which register entry each donor really is and how the donor's details were corrupted.
 *
 * The output is a pure function of the options: the same options give byte-identical files
 * (a private xoshiro256** generator seeded through splitmix64; no time, locale or threads).
 * Shares of markers, household sizes and churn follow data/names/SOURCE.md; the targets are
 * the RV_SYNTH_* constants below, and struct rv_synth_stats reports what was generated.
 */
#ifndef RV_SYNTH_H
#define RV_SYNTH_H

#include "core/core.h"

/* Targets (fractions). Electors are every row of a full register, F and N included. */
#define RV_SYNTH_SHARE_OVERSEAS  0.004  /* marker F, no address */
#define RV_SYNTH_SHARE_ANONYMOUS 0.0001 /* marker N, at least one per area */
#define RV_SYNTH_SHARE_ATTAINER  0.0065 /* date of attainment in the coming year */
#define RV_SYNTH_SHARE_LOCAL     0.05   /* local-government only: G, B, M or L */
#define RV_SYNTH_SHARE_POSTAL    0.20   /* marker A */
#define RV_SYNTH_SHARE_OPTOUT    0.55   /* mean of the per-area open-register opt-out rates */
/* Share of all addresses with 0, 1, 2, 3, 4 and 5 or more electors. */
#define RV_SYNTH_HH_SHARES                                                                         \
    {                                                                                              \
        0.08, 0.36, 0.38, 0.11, 0.05, 0.02                                                         \
    }
#define RV_SYNTH_SHARE_LARGE 0.0005 /* addresses with 10-200 electors (care homes, halls) */
/* Monthly alterations, as fractions of the area's electors per month. */
#define RV_SYNTH_MONTHLY_CREATED 0.01
#define RV_SYNTH_MONTHLY_DELETED 0.01
#define RV_SYNTH_MONTHLY_CHANGED 0.0065

#define RV_SYNTH_MAX_ELECTORS  100000000ULL
#define RV_SYNTH_MAX_AREAS     400
#define RV_SYNTH_MAX_MONTHS    36
#define RV_SYNTH_MAX_DONATIONS 1000000ULL
/* Each area needs room for its household mix, one anonymous entry and one overseas elector. */
#define RV_SYNTH_MIN_PER_AREA 20

struct rv_synth_opts {
    uint64_t electors;  /* total over all areas, >= RV_SYNTH_MIN_PER_AREA * areas */
    unsigned areas;     /* 1..RV_SYNTH_MAX_AREAS */
    uint64_t seed;      /* any value */
    rv_date edition;    /* date of the revised register, normally a 1 December */
    unsigned months;    /* monthly alteration files after the edition, 0..RV_SYNTH_MAX_MONTHS */
    uint64_t donations; /* rows of donations.csv, 0..RV_SYNTH_MAX_DONATIONS */
    /* Optional: called now and then with the work done so far and the total (in rows
     * generated plus rows written), from the calling thread. The output does not depend on
     * it. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

/* Donation kinds, as written in the note column of donations-truth.csv. */
enum rv_synth_note {
    RV_SYNTH_NOTE_EXACT = 0,
    RV_SYNTH_NOTE_TYPO,
    RV_SYNTH_NOTE_MIDDLE_DROPPED,
    RV_SYNTH_NOTE_MIDDLE_AS_FIRST,
    RV_SYNTH_NOTE_INITIALS,
    RV_SYNTH_NOTE_NICKNAME,
    RV_SYNTH_NOTE_TITLE,
    RV_SYNTH_NOTE_HYPHEN,
    RV_SYNTH_NOTE_MC_MAC,
    RV_SYNTH_NOTE_APOSTROPHE,
    RV_SYNTH_NOTE_ACCENTS,
    RV_SYNTH_NOTE_SWAPPED,
    RV_SYNTH_NOTE_POSTCODE_FORMAT,
    RV_SYNTH_NOTE_SAME_NAME,
    RV_SYNTH_NOTE_MOVED,
    RV_SYNTH_NOTE_REGISTERED_AFTER,
    RV_SYNTH_NOTE_LEFT_REGISTER,
    RV_SYNTH_NOTE_NOT_REGISTERED,
    RV_SYNTH_NOTE_ORGANISATION,
    RV_SYNTH_NOTE_COUNT
};
/* "exact", "typo", ... ; "?" for an out-of-range value. Static. */
const char *rv_synth_note_name(int note);

struct rv_synth_stats {
    uint64_t electors;    /* rows of all full registers */
    uint64_t overseas;    /* F */
    uint64_t anonymous;   /* N */
    uint64_t attainers;   /* with a date of attainment */
    uint64_t optout;      /* Opt Out = Y */
    uint64_t local_only;  /* G, B, M or L */
    uint64_t postal;      /* A */
    uint64_t same_name;   /* planted father-and-son pairs with one name at one address */
    double optout_target; /* electorate-weighted mean of the per-area rates */
    uint64_t addresses;   /* residential addresses, empty ones included */
    uint64_t by_size[6];  /* addresses with 0, 1, 2, 3, 4, 5+ electors */
    uint64_t large;       /* addresses with 10 or more electors */
    uint64_t large_electors;
    uint64_t cp1252_areas, tsv_areas, split_name_areas, uprn_areas;
    uint64_t created, changed, deleted; /* alteration rows */
    uint64_t moves, renames;            /* kinds of changed rows */
    uint64_t donations;
    uint64_t by_note[RV_SYNTH_NOTE_COUNT];
    uint64_t bytes; /* written, all files */
};

/* Area code of area i (0-based) as written in folder names and donations-truth.csv:
 * ONS-like, "E07000001"; Welsh areas "W06000...", Scottish "S12000...". buf holds 16 bytes. */
const char *rv_synth_area_code(unsigned i, char buf[16]);

/* Checks opts against the limits above. RV_EINVAL with a message in diag (which option and
 * which rule) when one is out of range. */
RV_NODISCARD int rv_synth_check(const struct rv_synth_opts *opts, struct rv_diag *diag)
    RV_NONNULL(1, 2);

/*
 * Generates everything into the folder dir (borrowed), which must exist; area folders are
 * created in it and files of the same names are replaced. Every file is written unnamed
 * (O_TMPFILE) and named only when complete, so even a run killed with SIGKILL leaves no
 * partial file; on filesystems without O_TMPFILE a hidden ".<name>.tmp" is renamed instead.
 * stats (owned by the caller) is filled on success. Returns 0, RV_EINVAL (options, with diag
 * set), RV_ENOMEM, or RV_EIO (errno kept; diag names the file).
 */
RV_NODISCARD int rv_synth_run(const struct rv_synth_opts *opts, const char *dir,
                              struct rv_synth_stats *stats, struct rv_diag *diag)
    RV_NONNULL(1, 2, 3, 4);

#endif /* RV_SYNTH_H */
