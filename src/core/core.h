/*
 * core.h - the public contract of src/core: errors, diagnostics, dates, text encodings,
 * the elector record model, and the normalisation of names, postcodes and addresses that
 * every other module keys and matches on.
 *
 * core/ depends on nothing in regvault and on no I/O but the CSV reader's. Every function
 * here is pure and thread-safe unless its contract says otherwise. Functions that parse
 * return 0 or a negative RV_E* code and write their result to the last parameter; buffers
 * are owned by the caller unless a contract says "borrowed".
 */
#ifndef RV_CORE_H
#define RV_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RV_NODISCARD    __attribute__((warn_unused_result))
#define RV_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define RV_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ------------------------------------------------------------------------------------------
 * Errors. Every library function returns 0 on success or one of these. The range is
 * reserved so it never collides with errno values or with LMDB's MDB_* codes.
 */
enum rv_err {
    RV_OK = 0,
    RV_EINVAL = -30900, /* invalid argument or option value */
    RV_ENOMEM,          /* out of memory */
    RV_EIO,             /* operating-system I/O error (errno is kept) */
    RV_EPARSE,          /* malformed input; a struct rv_diag says where and why */
    RV_ETOOBIG,         /* a field, file or request exceeds its limit */
    RV_ENOTFOUND,       /* no such key, record, user or file */
    RV_EEXIST,          /* already exists (and is left untouched) */
    RV_ECORRUPT,        /* stored data failed authentication or a structure check */
    RV_EVERSION,        /* unsupported file-format version */
    RV_EKEY,            /* wrong passphrase or key file */
    RV_ECRYPTO,         /* a libsodium primitive failed */
    RV_EDENIED,         /* the principal's role does not allow this */
    RV_EAUTH,           /* authentication failed (password, TOTP, token, certificate) */
    RV_ELIMIT,          /* a budget or rate limit refuses the request */
    RV_EAUDIT,          /* the audit log cannot be written: the vault fails closed */
    RV_EBUSY,           /* the resource is locked by another process */
    RV_EUNSUPPORTED,    /* a feature not available in this build or layout */
    RV_ELOCKED,         /* too many failed logins: locked out for a while (backoff) */
    RV_EWEAK,           /* a new password is too weak */
    RV_ECHANGE,         /* the password must be changed before anything else */
    RV_ESUSPENDED,      /* the principal is suspended or disabled until an admin acts */
    RV_E_END            /* one past the last code */
};

/* A short English description of an RV_E* code, or of an errno value if err > 0.
 * The string is static. Never returns NULL. */
const char *rv_strerror(int err);

/* Where and why an input was refused: "file:line:col: message". Filled by parsers, shown by
 * cli/. Messages never quote personal data: they name the field and the rule, not the value. */
struct rv_diag {
    char file[256];
    unsigned long line; /* 1-based; 0 when not applicable */
    unsigned col;       /* 1-based field or column number; 0 when not applicable */
    char msg[256];
};
void rv_diag_clear(struct rv_diag *d);
void rv_diag_set(struct rv_diag *d, const char *file, unsigned long line, unsigned col,
                 const char *fmt, ...) RV_PRINTF(5, 6);
/* Formats "file:line:col: msg" (omitting empty parts) into buf; returns buf. */
const char *rv_diag_format(const struct rv_diag *d, char *buf, size_t bufsz);

/* ------------------------------------------------------------------------------------------
 * Dates: civil days since 1970-01-01 (proleptic Gregorian). RV_DATE_NONE marks an absent
 * date, RV_DATE_FOREVER an open end of a validity interval.
 */
typedef int32_t rv_date;
#define RV_DATE_NONE    INT32_MIN
#define RV_DATE_FOREVER INT32_MAX

rv_date rv_date_from_ymd(int y, int m, int d);
void rv_date_to_ymd(rv_date day, int *y, int *m, int *d);
/* "YYYY-MM-DD". */
RV_NODISCARD int rv_date_parse_iso(const char *s, rv_date *out) RV_NONNULL(1, 2);
/* "dd/mm/yyyy" (also d/m/yyyy), as in Electoral Commission files. */
RV_NODISCARD int rv_date_parse_dmy(const char *s, rv_date *out) RV_NONNULL(1, 2);
/* Writes "YYYY-MM-DD" (11 bytes with NUL); "-" for RV_DATE_NONE, "open" for FOREVER. */
const char *rv_date_format(rv_date d, char buf[11]);
/* Today's date in UTC. */
rv_date rv_date_today(void);

/* ------------------------------------------------------------------------------------------
 * Text: UTF-8, Windows-1252 and byte-order marks.
 */
enum rv_encoding { RV_ENC_AUTO = 0, RV_ENC_UTF8, RV_ENC_CP1252 };

bool rv_utf8_valid(const char *s, size_t len);
/* Windows-1252 to UTF-8. out must hold 3 * len + 1 bytes; the result is NUL-terminated.
 * Returns the number of bytes written, not counting the NUL. Undefined 1252 bytes
 * (0x81 0x8D 0x8F 0x90 0x9D) become U+FFFD. */
size_t rv_cp1252_to_utf8(const char *in, size_t len, char *out);
/* UTF-8 to Windows-1252, for writing legacy files. Code points 1252 cannot hold become '?'.
 * out must hold len + 1 bytes. Returns bytes written, or RV_EPARSE for invalid UTF-8. */
long rv_utf8_to_cp1252(const char *in, size_t len, char *out);
/* 3 if buf starts with a UTF-8 byte-order mark, else 0. */
size_t rv_bom_len(const char *buf, size_t len);
/* Copies s into out (outsz bytes), replacing control characters (C0, DEL, C1) with spaces,
 * trimming and collapsing white space. Returns RV_EPARSE for invalid UTF-8, RV_ETOOBIG when
 * the result would not fit. */
RV_NODISCARD int rv_text_clean(const char *s, size_t len, char *out, size_t outsz);

/* ------------------------------------------------------------------------------------------
 * Folding: the one normal form every comparison and blind index uses.
 * NFKC, case fold, accents stripped, the extra fold table (ł->l, ø->o, đ->d, æ->ae, þ->th,
 * ß->ss, ...), apostrophes dropped, other punctuation to spaces, white space collapsed.
 * Output is lower-case; letters outside Latin scripts are kept (folded) rather than dropped.
 */
RV_NODISCARD int rv_fold(const char *s, size_t len, char *out, size_t outsz);

/* ------------------------------------------------------------------------------------------
 * Names.
 */
#define RV_NAME_MAX   128 /* bytes, per field, including NUL */
#define RV_TITLE_MAX  32
#define RV_SUFFIX_MAX 64

/* A name as written on the register (display form, cleaned but not folded). */
struct rv_name {
    char title[RV_TITLE_MAX];    /* "Mr", "Dr", "Rev" ... or "" */
    char forenames[RV_NAME_MAX]; /* all forenames, in order */
    char surname[RV_NAME_MAX];   /* as written, hyphens kept */
    char suffix[RV_SUFFIX_MAX];  /* post-nominals and generational: "OBE", "Jr" ... */
};

/* The keyed forms of a name, all folded. */
struct rv_name_key {
    char forenames[RV_NAME_MAX]; /* folded forenames, single spaces: "john paul" */
    char first[RV_NAME_MAX];     /* first forename: "john" */
    char initial; /* first letter of first, or 0 (also when that letter is not ASCII) */
    char surname[RV_NAME_MAX];        /* joined: hyphens and spaces removed, Mc->mac: "macdonald",
                                         "smithjones" */
    char surname_tokens[RV_NAME_MAX]; /* tokens split at hyphens and spaces: "smith jones" */
    unsigned nsurname_tokens;
};

/* Parses a whole name in either order: "Mr John A Smith OBE", "SMITH, John A",
 * "Smith John" is read as forenames-first. Titles and post-nominals go to their fields.
 * RV_EPARSE if no surname remains; RV_ETOOBIG if a part would not fit. */
RV_NODISCARD int rv_name_parse(const char *s, size_t len, struct rv_name *out) RV_NONNULL(1, 3);
/* Builds a name from separate surname and forename fields (either may carry a title or
 * post-nominals, which are split off). */
RV_NODISCARD int rv_name_from_parts(const char *surname, const char *forenames, struct rv_name *out)
    RV_NONNULL(1, 2, 3);
RV_NODISCARD int rv_name_key(const struct rv_name *n, struct rv_name_key *out) RV_NONNULL(1, 2);
/* "Forenames Surname" for display (title and suffix omitted). */
const char *rv_name_format(const struct rv_name *n, char *buf, size_t bufsz);

/* ------------------------------------------------------------------------------------------
 * Postcodes (BS 7666). Lower case and a missing or doubled space are repaired; anything else
 * is refused, never guessed.
 */
struct rv_postcode {
    char canon[9];   /* "SW1A 1AA", NUL-terminated */
    uint8_t out_len; /* length of the outward code: 2..4 */
};
RV_NODISCARD int rv_postcode_parse(const char *s, size_t len, struct rv_postcode *out)
    RV_NONNULL(1, 3);
/* Accessors write a NUL-terminated string into buf (at least 9 bytes) and return buf.
 * area: "SW"; district: "SW1"; outward: "SW1A"; sector: "SW1A 1". */
const char *rv_postcode_area(const struct rv_postcode *p, char *buf);
const char *rv_postcode_district(const struct rv_postcode *p, char *buf);
const char *rv_postcode_outward(const struct rv_postcode *p, char *buf);
const char *rv_postcode_sector(const struct rv_postcode *p, char *buf);

/* ------------------------------------------------------------------------------------------
 * Addresses.
 */
#define RV_ADDR_LINES    6
#define RV_ADDR_LINE_MAX 128

/* The parts of an address that matching compares, all folded. Empty string = absent. */
struct rv_address_key {
    char sub_building[32]; /* flat/apartment/unit designator: "2", "a", "2/1" (Scottish) */
    char number[16];       /* house number: "10" */
    char number_suffix[8]; /* "a" of "10a" */
    char building[RV_ADDR_LINE_MAX];   /* building name when present: "rose cottage" */
    char street[RV_ADDR_LINE_MAX];     /* "high street" (abbreviations expanded; St. before a
                                          name is saint) */
    char locality[RV_ADDR_LINE_MAX];   /* the last non-street line, usually the town */
    char first_line[RV_ADDR_LINE_MAX]; /* canonical first line for blind indexes:
                                          "10a high street", "flat 2 10 high street" */
};

/* Reads register address lines (NULL or "" lines are skipped; up to 16, more is
 * RV_ETOOBIG). Lines are also split at commas, and a postcode ending the last line is
 * dropped. */
RV_NODISCARD int rv_address_key(const char *const *lines, size_t nlines, struct rv_address_key *out)
    RV_NONNULL(3);
/* Reads a free-text address as donors write it ("Flat 2, 10 High St, Leeds"). */
RV_NODISCARD int rv_address_parse(const char *s, size_t len, struct rv_address_key *out)
    RV_NONNULL(1, 3);

/* ------------------------------------------------------------------------------------------
 * Phonetic codes and string similarity, for blind indexes and matching. Phonetic codes read
 * only the letters a-z/A-Z of their input (at most the first 256) and are upper-case ASCII.
 * Jaro-Winkler compares the strings as given, by Unicode code point (at most 256 each), so
 * names in non-Latin scripts, which folding keeps, still compare. Reference values:
 * PostgreSQL's fuzzystrmatch for Double Metaphone, jellyfish's Python version for NYSIIS and
 * Jaro-Winkler (tests/data/phonetic/). */
#define RV_PHONETIC_MAX 16
/* Double Metaphone (Lawrence Philips, 2000), codes truncated to 4 characters as in the
 * reference implementation. alternate is "" when equal to primary. */
void rv_double_metaphone(const char *s, char primary[RV_PHONETIC_MAX],
                         char alternate[RV_PHONETIC_MAX]);
/* NYSIIS (original algorithm, truncated to 6 characters). */
void rv_nysiis(const char *s, char out[RV_PHONETIC_MAX]);
/* Jaro-Winkler similarity in [0, 1], prefix scale 0.1, prefix up to 4. */
double rv_jaro_winkler(const char *a, const char *b);

/* ------------------------------------------------------------------------------------------
 * The elector entry.
 */
#define RV_MARK_F (1u << 0) /* overseas elector: no address on the register */
#define RV_MARK_N (1u << 1) /* anonymous entry: never stored */
#define RV_MARK_L (1u << 2) /* peer: local elections only */
#define RV_MARK_M (1u << 3) /* qualifying foreign national (Scotland) */
#define RV_MARK_G (1u << 4) /* EU citizen before eligibility confirmation */
#define RV_MARK_B (1u << 5) /* EU citizen after eligibility confirmation */
#define RV_MARK_A (1u << 6) /* postal voter */
#define RV_MARK_P (1u << 7) /* proxy */
#define RV_MARK_E (1u << 8) /* historic */
#define RV_MARK_K (1u << 9) /* historic */

struct rv_markers {
    uint16_t known; /* RV_MARK_* bits */
    char other[12]; /* unknown marker letters, verbatim, in order of first appearance */
};
/* Accepts letters with or without separators ("FA", "F,A", "F A"); known letters may be
 * lower case. Unknown letters are kept as written. RV_EPARSE for anything that is not a
 * letter or separator, RV_ETOOBIG past 11 unknowns or for a field over 64 bytes. */
RV_NODISCARD int rv_markers_parse(const char *s, size_t len, struct rv_markers *out)
    RV_NONNULL(1, 3);
/* Known letters in the order F N L M G B A P E K, then the unknown ones: "FA". */
const char *rv_markers_format(const struct rv_markers *m, char *buf, size_t bufsz);

/* ABC1-12/1: polling-district prefix, number, suffix. Odd real prefixes such as "KD-2/2"
 * (giving "KD-2/2-289/1") are kept verbatim. */
struct rv_elector_number {
    char prefix[24];
    uint32_t number;
    uint32_t suffix;
};
/* From the three register columns. The suffix may be empty (0). */
RV_NODISCARD int rv_elector_number_from_parts(const char *prefix, const char *number,
                                              const char *suffix, struct rv_elector_number *out)
    RV_NONNULL(1, 2, 3, 4);
/* From the quoted form "ABC1-12/1", "ABC1-12", "KD-2/2-289/1" (split at the last '-').
 * Without a '-' the prefix is empty ("12/1"). */
RV_NODISCARD int rv_elector_number_parse(const char *s, size_t len, struct rv_elector_number *out)
    RV_NONNULL(1, 3);
/* "ABC1-12/1"; a zero suffix is dropped: "ABC1-12". */
const char *rv_elector_number_format(const struct rv_elector_number *n, char *buf, size_t bufsz);

struct rv_elector {
    char area[16]; /* register (area) code, e.g. "E07000223" or "LDS" */
    struct rv_elector_number number;
    struct rv_markers markers;
    rv_date attainment; /* RV_DATE_NONE if not an attainer */
    struct rv_name name;
    char address[RV_ADDR_LINES][RV_ADDR_LINE_MAX]; /* display lines; empty for F */
    struct rv_postcode postcode;                   /* canon[0] == 0 when absent (overseas) */
    uint64_t uprn;                                 /* 0 when absent */
    bool open_register_optout;                     /* true: not on the open (edited) register */
};

/* Serialises an elector into a compact, versioned byte string (the plaintext that vault/
 * seals). Returns the length written, RV_ETOOBIG if cap is too small (RV_ELECTOR_WIRE_MAX
 * always suffices), or RV_EINVAL for an elector decode would refuse: a string field without
 * its NUL or not valid UTF-8, or a postcode that disagrees with its out_len. */
#define RV_ELECTOR_WIRE_MAX 1536
RV_NODISCARD long rv_elector_encode(const struct rv_elector *e, uint8_t *buf, size_t cap)
    RV_NONNULL(1, 2);
/* The reverse; RV_ECORRUPT for a malformed or truncated buffer, RV_EVERSION for an unknown
 * version byte. */
RV_NODISCARD int rv_elector_decode(const uint8_t *buf, size_t len, struct rv_elector *out)
    RV_NONNULL(1, 3);

/* ------------------------------------------------------------------------------------------
 * CSV and TSV, streaming. One reader serves register files, alteration files and donation
 * batches. Memory is bounded by the longest record, never by the file.
 */
struct rv_csv;

struct rv_csv_opts {
    char delim;           /* ',' or '\t'; 0 = detect from the first line */
    enum rv_encoding enc; /* RV_ENC_AUTO: a field that is not valid UTF-8 is read as 1252 */
    size_t max_field;     /* longest field accepted (bytes); 0 = 16 KiB */
    size_t max_fields;    /* most fields per record; 0 = 256 */
};

/* Opens path for reading ("-" is standard input: it returns once 64 KiB or the end of input
 * has arrived). The name is used in diagnostics. RV_ENOTFOUND for a missing file, RV_EIO for
 * an unreadable one, RV_EINVAL for bad options. Returned reader: free with rv_csv_close. */
RV_NODISCARD int rv_csv_open(const char *path, const struct rv_csv_opts *opts, struct rv_csv **out,
                             struct rv_diag *diag) RV_NONNULL(1, 3);
/* Reads from memory (not copied: buf is borrowed until rv_csv_close). name is for
 * diagnostics. */
RV_NODISCARD int rv_csv_open_mem(const char *buf, size_t len, const char *name,
                                 const struct rv_csv_opts *opts, struct rv_csv **out)
    RV_NONNULL(1, 3, 5);
/* Reads the next record. Returns 1 with a record, 0 at end of input, or a negative code:
 * RV_EPARSE for a stray quote, an unterminated field, a NUL byte or a UTF-16 file,
 * RV_ETOOBIG for an oversized field, with diag naming file, line and field. After RV_EPARSE
 * the reader resynchronises at the next line, so the caller may count the error and go on.
 * Empty physical lines are skipped, never returned as records (a line holding only "" is a
 * record of one empty field). fields[i] are NUL-terminated UTF-8 (converted from 1252 if
 * needed), borrowed until the next call. */
RV_NODISCARD int rv_csv_next(struct rv_csv *r, char ***fields, size_t *nfields,
                             struct rv_diag *diag) RV_NONNULL(1, 2, 3);
/* Line on which the last record returned started (1-based). */
unsigned long rv_csv_line(const struct rv_csv *r);
/* The delimiter in use, and whether any field so far needed 1252 conversion. */
char rv_csv_delim(const struct rv_csv *r);
bool rv_csv_saw_cp1252(const struct rv_csv *r);
/* Bytes consumed so far (for progress). */
uint64_t rv_csv_offset(const struct rv_csv *r);
void rv_csv_close(struct rv_csv *r);

/* ------------------------------------------------------------------------------------------
 * Run-time data compiled into the library from data/ (name lists, nickname table).
 */
struct rv_blob {
    const char *name; /* path under data/, e.g. "nicknames/names.csv" */
    const char *data; /* NUL-terminated */
    size_t len;
};
/* Returns the blob, or NULL. Borrowed for the life of the process. */
const struct rv_blob *rv_data_find(const char *name);

#endif /* RV_CORE_H */
