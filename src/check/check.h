/*
 * check.h - the public contract of src/check: permissibility matching of donors against
 * register entries (PPERA 2000 s.54).
 *
 * A donation of more than £500 from an individual is permissible only if the donor was on
 * an electoral register on the date the party received it. Donors write their names and
 * addresses in their own way, so the matcher compares each field at graded levels
 * (exact, middle name, nickname, initial, typo, phonetic; same property, same building,
 * same postcode, ...), decides a grade from a rule table over those levels (docs/matching.md),
 * and says why in words. It never quietly says no: anything short of a clear answer is
 * "needs review", and an entry that matches but was not in force at the date is reported
 * with its dates.
 *
 * The flow: parse a query (rv_check_query_init, or rv_check_batch_next for a file), then
 * rv_check_run, which fetches candidate entries from the vault through its blind indexes
 * only, scores each one (rv_check_score) and decides (rv_check_decide); then render
 * (rv_check_answer_json, rv_check_answer_csv). check/ does no I/O but the batch reader's
 * and the vault's, and never logs.
 *
 * Candidates and answers hold plaintext register data: they are wiped by
 * rv_check_answer_free and should be wiped by callers with sodium_memzero.
 */
#ifndef RV_CHECK_H
#define RV_CHECK_H

#include "core/core.h"

#include <jansson.h>

/* ------------------------------------------------------------------------------------------
 * Levels, listed roughly from best agreement to none; the rule table, not the order,
 * decides what each is worth.
 */
enum rv_check_fn_level {
    RV_FN_EXACT = 0,   /* all forenames agree */
    RV_FN_MIDDLE,      /* first forenames agree, middle names missing or different, or the
                          register's first forename is among the donor's later ones */
    RV_FN_NICKNAME,    /* the nickname table (never treated as exact) */
    RV_FN_MIDDLE_ONLY, /* the donor's first forename is (a nickname of) a middle name on the
                          register, not its first: John Paul <- Paul */
    RV_FN_INITIAL,     /* the donor gave initials consistent with the register's forenames */
    RV_FN_TYPO,        /* Jaro-Winkler >= 0.92, and not two distinct known forenames */
    RV_FN_SIMILAR,     /* Jaro-Winkler >= 0.88, or Double Metaphone codes equal */
    RV_FN_ABSENT,      /* the donor gave no forename */
    RV_FN_DIFFERENT,
    RV_FN_NLEVELS
};

enum rv_check_sn_level {
    RV_SN_EXACT = 0, /* surnames agree (after folding, Mc/Mac and hyphen joining) */
    RV_SN_HYPHEN,    /* one is part of the other: Smith <-> Smith-Jones */
    RV_SN_SWAPPED,   /* forename and surname written the other way round */
    RV_SN_TYPO,      /* Jaro-Winkler >= 0.88, or one keystroke apart (4+ letters), unless
                        both are distinct listed surnames */
    RV_SN_PHONETIC,  /* Double Metaphone codes equal */
    RV_SN_DIFFERENT,
    RV_SN_NLEVELS
};

enum rv_check_addr_level {
    RV_ADDR_PROPERTY = 0,  /* same property, flat included */
    RV_ADDR_BUILDING,      /* same building; flat missing or written differently */
    RV_ADDR_POSTCODE,      /* same postcode; the donor gave no street address to compare */
    RV_ADDR_POSTCODE_ONLY, /* same postcode, but the street address given differs */
    RV_ADDR_SECTOR,        /* same postcode sector */
    RV_ADDR_TOWN,          /* same town or postcode district */
    RV_ADDR_AREA,          /* same postcode area, another district (the donor may have moved) */
    RV_ADDR_OVERSEAS,      /* an overseas elector: no address on the register */
    RV_ADDR_DIFFERENT,
    RV_ADDR_NLEVELS
};

enum rv_check_grade {
    RV_GRADE_NONE = 0, /* no match */
    RV_GRADE_POSSIBLE,
    RV_GRADE_STRONG,
    RV_GRADE_EXACT,
};

enum rv_check_verdict {
    RV_VERDICT_PERMISSIBLE = 0, /* an exact or strong match in force at the date */
    RV_VERDICT_REVIEW,       /* a possible match, an ambiguity, or a row that could not be read */
    RV_VERDICT_NOT_FOUND,    /* no entry in force at the date matches */
    RV_VERDICT_OUT_OF_SCOPE, /* not an individual's donation: not matched */
};

/* Which blind-index searches found a candidate (bits of rv_check_candidate.found_by). */
#define RV_CHECK_BY_SURNAME_POSTCODE  (1u << 0)
#define RV_CHECK_BY_INITIAL_OUTWARD   (1u << 1)
#define RV_CHECK_BY_PHONETIC_POSTCODE (1u << 2)
#define RV_CHECK_BY_LINE_POSTCODE     (1u << 3)
#define RV_CHECK_BY_SURNAME           (1u << 4)
#define RV_CHECK_BY_SWAPPED           (1u << 5) /* first forename as surname + postcode */
#define RV_CHECK_BY_VARIANT           (1u << 6) /* a close surname at the postcode (typo) */
#define RV_CHECK_BY_NEARBY            (1u << 7) /* initial + surname in the area's other districts */
#define RV_CHECK_BY_NSEARCHES         8

/* "Bill <-> William: nickname table", "same property", ... */
const char *rv_check_fn_level_name(enum rv_check_fn_level l);
const char *rv_check_sn_level_name(enum rv_check_sn_level l);
const char *rv_check_addr_level_name(enum rv_check_addr_level l);
/* "exact", "strong", "possible", "no match". */
const char *rv_check_grade_name(enum rv_check_grade g);
/* "permissible", "needs review", "not found", "out of scope". */
const char *rv_check_verdict_name(enum rv_check_verdict v);
/* "surname+postcode", "initial+surname+outward", ... */
const char *rv_check_search_name(unsigned bit);

/* ------------------------------------------------------------------------------------------
 * Queries.
 */
#define RV_CHECK_ID_MAX 64

struct rv_check_query {
    char id[RV_CHECK_ID_MAX]; /* the row's id (ECRef or id), "" when absent */
    unsigned long line;       /* input line, 0 for a single query */
    struct rv_name name;      /* as the donor wrote it, cleaned */
    struct rv_name_key key;
    struct rv_name_key alt;  /* a second reading, the last forename joined to the surname
                                ("Leonard O Hara", "Ian Mc Kenzie", "Sian Bray Ashton");
                                alt.surname[0] == 0 when there is none */
    struct rv_name_key swap; /* the name read surname first without a comma ("SMITH John
                                Paul"): surname "smith", forenames "john paul"; or empty */
    bool has_address;        /* a street address was given */
    struct rv_address_key addr;
    bool has_postcode;
    struct rv_postcode postcode;
    rv_date date;     /* donation received (or, for a bequest, the date of death) */
    bool bequest;     /* judge over the five years before death, not on one day */
    rv_date win_from; /* the window an entry must overlap: [win_from, win_to) */
    rv_date win_to;
    char note[128]; /* a remark about how the row was read ("accepted date used"), or "" */
};

/* Fills q from a donor's name, free-text address (NULL or "" for none) and postcode (NULL or
 * "" for none, as for an overseas donor), for a donation received on date. On failure
 * returns RV_EPARSE or RV_ETOOBIG and diag->msg names the field and the rule (never the
 * value). Strings are borrowed for the call only. */
RV_NODISCARD int rv_check_query_init(const char *name, const char *address, const char *postcode,
                                     rv_date date, struct rv_check_query *q, struct rv_diag *diag)
    RV_NONNULL(1, 5, 6);
/* Turns q into a bequest query: an entry counts if it was in force at any time in the five
 * years up to and including the date of death (q->date). */
void rv_check_query_set_bequest(struct rv_check_query *q) RV_NONNULL(1);
/* The bequest window for a death date: [death - 5 years, death + 1 day). 29 February maps to
 * 28 February five years earlier. */
void rv_check_bequest_window(rv_date death, rv_date *from, rv_date *to) RV_NONNULL(2, 3);
/* True when an entry version valid over [from, to) was on the register at some time in the
 * five years before death (the bequest predicate). */
bool rv_check_bequest_registered(rv_date from, rv_date to, rv_date death);

/* ------------------------------------------------------------------------------------------
 * Candidates and scores.
 */
struct rv_check_candidate {
    struct rv_elector elector; /* plaintext: wipe after use */
    rv_date from;              /* this version is valid over [from, to) */
    rv_date to;                /* RV_DATE_FOREVER when still in force */
    char edition[48];          /* the edition in force: "2025-12-01 + alterations to 2026-02-01" */
    unsigned found_by;         /* RV_CHECK_BY_* bits */
};

struct rv_check_match {
    struct rv_check_candidate cand; /* a copy of the scored candidate */
    enum rv_check_fn_level fn;
    enum rv_check_sn_level sn;
    enum rv_check_addr_level addr;
    enum rv_check_grade grade; /* the grade the levels earn if the entry was in force */
    bool in_force;             /* valid at the date (or within the bequest window) */
    bool fn_both_known;        /* the two forenames are distinct known names */
    double weight;             /* tie-breaking score: higher is better agreement */
    double surname_weight;     /* the surname's rarity in bits */
};

/* Scores one candidate against a query. Never fails on odd data: a field that cannot be
 * compared scores as different. out is filled completely (cand is copied). */
void rv_check_score(const struct rv_check_query *q, const struct rv_check_candidate *cand,
                    struct rv_check_match *out) RV_NONNULL(1, 2, 3);
/* The rule table of docs/matching.md: the grade earned by a combination of levels. */
enum rv_check_grade rv_check_grade_for(enum rv_check_fn_level fn, enum rv_check_sn_level sn,
                                       enum rv_check_addr_level addr, double surname_weight);

/* ------------------------------------------------------------------------------------------
 * Answers.
 */
#define RV_CHECK_SHOW_MAX 3 /* possible matches shown, masked */

struct rv_check_answer {
    char id[RV_CHECK_ID_MAX];
    unsigned long line;
    enum rv_check_verdict verdict;
    enum rv_check_grade grade; /* of the best match in force */
    char error[256];           /* why the row could not be checked, or "" */
    char note[128];            /* copied from the query */
    rv_date date;
    bool bequest;
    double margin;                  /* best weight minus the runner-up's (0 when alone) */
    enum rv_check_grade runner_up;  /* grade of the best other entry */
    struct rv_check_match *matches; /* sorted best first; owned */
    size_t nmatches;
};

/* Decides the answer for q from its scored candidates. matches (n entries) is copied; the
 * caller keeps and wipes its own array. Returns 0 or RV_ENOMEM. Free out with
 * rv_check_answer_free. */
RV_NODISCARD int rv_check_decide(const struct rv_check_query *q,
                                 const struct rv_check_match *matches, size_t n,
                                 struct rv_check_answer *out) RV_NONNULL(1, 4);
/* An answer for a row that was not matched: verdict out of scope, or needs review with
 * error (may be NULL) saying why. */
void rv_check_answer_unmatched(const char *id, unsigned long line, enum rv_check_verdict verdict,
                               const char *error, struct rv_check_answer *out) RV_NONNULL(5);
/* Wipes and frees the matches; a zeroed answer is safe. */
void rv_check_answer_free(struct rv_check_answer *a);

/* The reasons for one match, in words, one per line ("Bill <-> William: nickname table\n").
 * When reveal is false, register values are not quoted (possible matches). Returns buf. */
const char *rv_check_reasons(const struct rv_check_query *q, const struct rv_check_match *m,
                             bool reveal, char *buf, size_t bufsz) RV_NONNULL(1, 2, 4);
/* Masked form of a register entry for a possible match: "J. S., 10, LS1 4AB". Returns buf. */
const char *rv_check_mask(const struct rv_elector *e, char *buf, size_t bufsz) RV_NONNULL(1, 2);

/* The answer as a JSON object (owned by caller, release with json_decref). q may be NULL
 * for unmatched rows. Returns 0 or RV_ENOMEM. */
RV_NODISCARD int rv_check_answer_json(const struct rv_check_query *q,
                                      const struct rv_check_answer *a, json_t **out)
    RV_NONNULL(2, 3);
/* The answer as compact JSON text, the same bytes as json_dumps(rv_check_answer_json(q, a),
 * JSON_COMPACT), written straight into one buffer without building a tree (the daemon's
 * answer to every check). *out is malloc'ed and NUL-terminated, *len its length; it may hold
 * register data, so wipe it before free(). q may be NULL as for rv_check_answer_json.
 * Returns 0 or RV_ENOMEM. */
RV_NODISCARD int rv_check_answer_text(const struct rv_check_query *q,
                                      const struct rv_check_answer *a, char **out, size_t *len)
    RV_NONNULL(2, 3, 4);
/* The CSV header matching rv_check_answer_csv, without a newline. Static. */
const char *rv_check_csv_header(void);
/* One CSV row (RFC 4180 quoting, no newline) into a malloc'ed string (free with free(); it
 * may hold register data, so wipe first). Returns 0 or RV_ENOMEM. */
RV_NODISCARD int rv_check_answer_csv(const struct rv_check_query *q,
                                     const struct rv_check_answer *a, char **out) RV_NONNULL(2, 3);

/* ------------------------------------------------------------------------------------------
 * Checking against the vault. Candidates are found through the blind indexes only (never by
 * decrypting the register), then decrypted and scored.
 */
struct rv_vault;
struct rv_check_ctx;

/* A checking context over an unsealed vault (borrowed until rv_check_ctx_close, which must
 * come before rv_vault_close). It reads the vault's per-file statistics (to name the
 * edition in force at each date) and its district lists, and reads them again at the first
 * check after a file is ingested. Free with rv_check_ctx_close.
 *
 * Threads: a context is used by one thread at a time. Any number of contexts may be open on
 * one struct rv_vault and used by as many threads at once (each reads through its own
 * vault reader, in its own snapshot; the only state they share is the vault's data-key
 * cache, which takes a lock), also while ingest writes to the vault. */
RV_NODISCARD int rv_check_ctx_open(struct rv_vault *v, struct rv_check_ctx **out) RV_NONNULL(1, 2);
void rv_check_ctx_close(struct rv_check_ctx *c);
/* Lets rv_check_run_many use up to n threads (the caller's and n - 1 helpers, each with a
 * context of its own, opened at the first call that needs them; one that cannot be opened,
 * or whose thread cannot start, leaves its share to the others). 1, the default, runs
 * every check on the caller's thread. RV_EINVAL for 0 or more than RV_CHECK_THREADS_MAX. */
#define RV_CHECK_THREADS_MAX 64
RV_NODISCARD int rv_check_ctx_set_threads(struct rv_check_ctx *c, unsigned n) RV_NONNULL(1);
/* Checks one donor: searches, decrypts the candidates, scores and decides. out is filled
 * (free with rv_check_answer_free). Errors: RV_ENOMEM, RV_ECORRUPT (a candidate failed
 * authentication), or the store's. Call only through the access gate (policy/), which
 * authorises and records the check first. */
RV_NODISCARD int rv_check_run(struct rv_check_ctx *c, const struct rv_check_query *q,
                              struct rv_check_answer *out) RV_NONNULL(1, 2, 3);
/* rv_check_run for qs[0, n) into out[0, n), spread over the context's threads
 * (rv_check_ctx_set_threads); the answers are the same as one by one, in the same order.
 * On failure (the first error any check met) every answer is freed and zeroed. Call only
 * through the access gate, as rv_check_run. */
RV_NODISCARD int rv_check_run_many(struct rv_check_ctx *c, const struct rv_check_query *const *qs,
                                   size_t n, struct rv_check_answer *out) RV_NONNULL(1);

/* ------------------------------------------------------------------------------------------
 * Batches: Electoral Commission donations layout and the plain layout (docs/formats.md).
 */
enum rv_check_layout { RV_CHECK_LAYOUT_AUTO = 0, RV_CHECK_LAYOUT_EC, RV_CHECK_LAYOUT_PLAIN };

enum rv_check_row_status {
    RV_ROW_OK = 0,       /* query is ready to match */
    RV_ROW_OUT_OF_SCOPE, /* DonorStatus is not Individual */
    RV_ROW_INVALID,      /* the row could not be read: error says why, with the line */
};

struct rv_check_row {
    enum rv_check_row_status status;
    struct rv_check_query q; /* id and line are set for every status */
    char error[256];         /* for RV_ROW_INVALID: "line 12: ReceivedDate is not a date
                                (dd/mm/yyyy or YYYY-MM-DD)" */
    long long value_pence;   /* the Value column in pence, or -1 when absent or unreadable */
};

struct rv_check_batch;

/* Opens a donations file ("-" is standard input) and reads its header. The layout is
 * detected from the header when RV_CHECK_LAYOUT_AUTO. RV_EPARSE with diag when the header
 * has neither layout's columns. Free with rv_check_batch_close. */
RV_NODISCARD int rv_check_batch_open(const char *path, enum rv_check_layout layout,
                                     struct rv_check_batch **out, struct rv_diag *diag)
    RV_NONNULL(1, 3, 4);
/* The same over memory (borrowed until close); name is for diagnostics. */
RV_NODISCARD int rv_check_batch_open_mem(const char *buf, size_t len, const char *name,
                                         enum rv_check_layout layout, struct rv_check_batch **out,
                                         struct rv_diag *diag) RV_NONNULL(1, 3, 5, 6);
/* The layout in use. */
enum rv_check_layout rv_check_batch_layout(const struct rv_check_batch *b) RV_NONNULL(1);
/* Reads the next row into out. Returns 1 with a row (of any status), 0 at the end, or a
 * negative code for an I/O failure (diag says where). A malformed row never fails the batch:
 * it comes back as RV_ROW_INVALID. */
RV_NODISCARD int rv_check_batch_next(struct rv_check_batch *b, struct rv_check_row *out,
                                     struct rv_diag *diag) RV_NONNULL(1, 2, 3);
/* Bytes of the file read so far (for progress). */
uint64_t rv_check_batch_offset(const struct rv_check_batch *b) RV_NONNULL(1);
void rv_check_batch_close(struct rv_check_batch *b);

#endif /* RV_CHECK_H */
