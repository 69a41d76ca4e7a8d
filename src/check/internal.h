/*
 * internal.h - helpers shared by the files of src/check and by nothing else: the name tables
 * (nicknames, surname frequencies, known forenames) built once from the embedded data.
 */
#ifndef RV_CHECK_INTERNAL_H
#define RV_CHECK_INTERNAL_H

#include "check/check.h"

/* Loads the tables on first use (thread-safe). Returns 0, or RV_ENOMEM / RV_ECORRUPT when the
 * embedded data is missing; every lookup below then answers "not listed". */
int rv_check_tables_init(void);
/* True when folded forenames a and b are a nickname pair (either way round, or two
 * nicknames of one name where one extends the other: bill/billy), after the addendum's
 * exclusions. */
bool rv_check_nickname(const char *a, const char *b);
/* The names b for which rv_check_nickname(a, b) holds: *n of them, the table's (never
 * freed), or NULL and 0 for a name without nicknames. */
struct rv_check_nick {
    const char *s;
    size_t len;
};
const struct rv_check_nick *rv_check_nicknames_of(const char *a, size_t *n);
/* True when a folded forename is a known given name or nickname. */
bool rv_check_known_forename(const char *a);
/* Surname rarity (bits) from which an exact name alone, without an address to agree, is
 * worth a strong grade for an overseas elector or a review at another address: names not
 * in the frequency list (all listed names are 0.03 % of people or more, under 11.7 bits). */
#define RV_CHECK_RARE_BITS 12.0

/* The rarity of a joined, folded surname in bits (-log2 of its population share). Names not
 * in the list count as rare. */
double rv_check_surname_weight(const char *joined);
/* True when one folded forename is only in the male given-name list and the other only in
 * the female one (Jane, John): such names are never a typo or sound-alike of each other. */
bool rv_check_sex_differs(const char *a, const char *b);
/* True when the joined surname is in the frequency list. */
bool rv_check_known_surname(const char *joined);

/* rv_check_score for the matcher: the same levels, grade and weight, but the address is not
 * compared when the names alone rule a match out. Returns true when the candidate earns a
 * grade, with out filled; false leaves out untouched (and free of register data). */
bool rv_check_score_graded(const struct rv_check_query *q, const struct rv_check_candidate *cand,
                           struct rv_check_match *out);

/* The donor's surnames' Double Metaphone codes, worked out once for many
 * rv_check_surname_close calls. */
struct rv_check_sn_probe {
    char key[2][RV_PHONETIC_MAX]; /* primary, alternate */
    char alt[2][RV_PHONETIC_MAX];
    uint8_t key_letters[32], alt_letters[32]; /* letters counted by their low 5 bits */
    bool key_counted, alt_counted;            /* ASCII and short enough to be counted */
};
void rv_check_sn_probe_init(const struct rv_check_query *q, struct rv_check_sn_probe *p);
/* True when a register surname, given as folded words ("smith jones", len bytes, not
 * NUL-terminated), is close to the donor's in either reading of the name (one part of the
 * other, a typo, or sounding alike) without being equal: a candidate worth decrypting for
 * the typo search. p is q's probe. A surname len >= RV_NAME_MAX cannot be judged and counts
 * as close. */
bool rv_check_surname_close(const struct rv_check_query *q, const struct rv_check_sn_probe *p,
                            const char *words, size_t len);

/* True when an entry with no postcode, whose folded surname words and forenames are given
 * (rv_name_key.surname_tokens and .forenames), can earn a grade against q in some reading
 * of the donor's name: without a postcode its address is at best overseas or town, where
 * only full, variant and partial names are graded. False means scoring it would reject it,
 * so it need not be decrypted. Too long a name cannot be judged and counts as true. */
bool rv_check_name_could_grade(const struct rv_check_query *q, const char *surname_words,
                               const char *forenames);

/* The donor's forenames in each reading of the name (as written, surname first, and with
 * the last forename joined to the surname), split into words once for the many listed
 * names rv_check_name_probe_grade judges. Points into q, which must outlive it. */
#define RV_CHECK_PROBE_WORDS 8
struct rv_check_name_probe {
    const struct rv_check_query *q;
    struct {
        const char *w[RV_CHECK_PROBE_WORDS];
        size_t len[RV_CHECK_PROBE_WORDS];
        unsigned n;       /* 0: no such reading, or no forenames in it */
        bool first_again; /* its first word is an earlier reading's */
        int8_t same_as;   /* the first earlier reading with that first word, or -1 */
        char first[RV_NAME_MAX];
        bool first_ascii;
        uint8_t letters[32]; /* first's bytes counted by their low 5 bits, when ASCII */
        const struct rv_check_nick *nick; /* rv_check_nicknames_of(first) */
        size_t nnick;
        uint64_t nick_mask; /* bit (first byte % 64) of each of them */
    } r[3];                 /* as written, surname first (swap), last forename joined (alt) */
};
void rv_check_name_probe_init(const struct rv_check_query *q, struct rv_check_name_probe *p);
/* rv_check_name_could_grade(p->q, surname_words, forenames), the same answer, but most
 * listed names, whose forenames share nothing with any reading of the donor's (no word in
 * common, no nickname, not close enough in spelling to be a typo), are ruled out by a
 * cheap test that never rules out a name the full comparison would grade. */
bool rv_check_name_probe_grade(const struct rv_check_name_probe *p, const char *surname_words,
                               const char *forenames);
/* The cheap test alone: false only when rv_check_name_could_grade is false. */
bool rv_check_name_probe_may(const struct rv_check_name_probe *p, const char *surname_words,
                             const char *forenames);

/* True when the entry is an attainer not yet of age during the query's window: such an entry
 * is never graded above possible, and its reasons never say why (nothing about the age of
 * young electors is disclosed). */
bool rv_check_restricted(const struct rv_check_query *q, const struct rv_elector *e);

/* rv_date_format without the formatting library, the same text ("2025-12-01", "-",
 * "open") into buf; returns buf. */
const char *rv_check_date_text(rv_date day, char buf[11]);

#endif /* RV_CHECK_INTERNAL_H */
