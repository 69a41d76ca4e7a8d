/*
 * ingest.h - loading register files into a vault: full editions and monthly alterations,
 * as electoral management software exports them (docs/formats.md).
 *
 * A file is read as a stream (memory does not grow with it), its header mapped to columns
 * by name, each row turned into an rv_elector, and the whole file applied to the vault in
 * one atomic batch: it is wholly stored or not at all. Several files can share one store
 * transaction (a load, rv_ingest_load): each is still wholly stored or not at all, and
 * they become durable together. Anonymous entries are counted and
 * never stored. Rows that cannot be read are reported by file, line and rule (never by
 * value), and the file is refused once they exceed the caller's limit. A file already
 * ingested (same keyed content hash) changes nothing.
 *
 * Reading and normalising run on a second thread while the calling thread seals and
 * stores, so an ingest uses two cores.
 */
#ifndef RV_INGEST_H
#define RV_INGEST_H

#include "core/core.h"
#include "vault/vault.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------
 * Column mapping: header -> columns -> rv_elector. Pure functions, used by the fuzz target.
 */
enum rv_col {
    RV_COL_PREFIX,
    RV_COL_NUMBER,
    RV_COL_SUFFIX,
    RV_COL_MARKERS,
    RV_COL_DOB,
    RV_COL_NAME,
    RV_COL_SURNAME,
    RV_COL_FORENAME,
    RV_COL_POSTCODE,
    RV_COL_ADDR1, /* ... RV_COL_ADDR1 + 5 */
    RV_COL_OPTOUT = RV_COL_ADDR1 + RV_ADDR_LINES,
    RV_COL_UPRN,
    RV_COL_CREATED,
    RV_COL_CHANGED,
    RV_COL_DELETED,
    RV_COL_CHANGE,
    RV_COL_EFFECTIVE,
    RV_COL_COUNT
};

struct rv_ingest_map {
    int col[RV_COL_COUNT]; /* field index of each column, or -1 */
    size_t nfields;        /* fields in the header */
    bool alterations;      /* the file carries alteration columns */
};

/* Maps a header row. RV_EPARSE with diag (column named, line 1) when a required column is
 * missing: the elector number, a name (Elector Name, or Elector Surname), and for
 * alterations either the three ...Month columns or Change + Effective Date. */
RV_NODISCARD int rv_ingest_map_header(char *const *fields, size_t nfields, bool alterations,
                                      struct rv_ingest_map *out, struct rv_diag *diag)
    RV_NONNULL(4, 5);

/* What a row asks for. */
enum rv_row_kind {
    RV_ROW_ENTRY = 1, /* an edition row */
    RV_ROW_CREATE,
    RV_ROW_CHANGE,
    RV_ROW_DELETE,
    RV_ROW_ANONYMOUS, /* an N entry: count it, store nothing */
};

/* Maps one data row to an entry of `area`. *kind says what it is; *effective is the
 * alteration's date (RV_DATE_NONE for edition rows). RV_EPARSE with diag (file and line
 * left for the caller; col and a message naming the column and the rule, never the value)
 * when the row cannot be used. out holds personal data: the caller wipes it. */
RV_NODISCARD int rv_ingest_map_row(const struct rv_ingest_map *m, char *const *fields,
                                   size_t nfields, const char *area, struct rv_elector *out,
                                   enum rv_row_kind *kind, rv_date *effective, struct rv_diag *diag)
    RV_NONNULL(1, 4, 5, 6, 7, 8);

/* ------------------------------------------------------------------------------------------
 * Files.
 */
struct rv_ingest_progress {
    uint64_t rows;        /* rows read so far */
    uint64_t bytes;       /* bytes read so far */
    uint64_t total_bytes; /* size of the file */
};
typedef void (*rv_ingest_progress_fn)(void *ctx, const struct rv_ingest_progress *p);
/* Called for each refused row, in file order. The diag
 * never carries personal data. */
typedef void (*rv_ingest_error_fn)(void *ctx, const struct rv_diag *diag);

struct rv_ingest_opts {
    const char *area;               /* register area code (1..15 of A-Z a-z 0-9 _ -) */
    rv_date edition;                /* the edition date; for alterations, the edition amended */
    bool alterations;               /* the file holds monthly alterations */
    enum rv_encoding enc;           /* RV_ENC_AUTO, RV_ENC_UTF8 or RV_ENC_CP1252 */
    uint64_t max_errors;            /* refused rows tolerated; one more rejects the file */
    bool single_thread;             /* do everything on the calling thread */
    rv_ingest_progress_fn progress; /* optional, called about every 64k rows */
    rv_ingest_error_fn on_error;    /* optional */
    void *ctx;                      /* passed to both callbacks */
};

struct rv_ingest_result {
    bool already;               /* the same file was ingested before: nothing changed */
    bool rejected;              /* more refused rows than max_errors: nothing was stored */
    struct rv_file_stats st;    /* the file's statistics (also when already ingested) */
    struct rv_diag first_error; /* the first refused row, when any */
};

/* Ingests one file into the vault. Returns 0 with *out filled (check out->rejected and
 * out->already), or a negative code: RV_EPARSE (with out->first_error) when the file cannot
 * be read as a register at all (no header, missing columns), RV_EINVAL for a bad area or an
 * edition older than the area's latest, RV_EIO, RV_ECORRUPT. Only a return of 0 with
 * rejected and already false changed the vault. */
RV_NODISCARD int rv_ingest_file(struct rv_vault *v, const char *path,
                                const struct rv_ingest_opts *o, struct rv_ingest_result *out)
    RV_NONNULL(1, 2, 3, 4);

/* One file of a load: what to ingest, and what became of it. */
struct rv_ingest_file {
    const char *path;            /* borrowed for the call */
    struct rv_ingest_opts o;     /* the file's area, edition and kind, and the other options */
    int rc;                      /* out: as rv_ingest_file returns */
    struct rv_ingest_result res; /* out: as rv_ingest_file fills it */
};

/* Ingests files[0..n) in order in one store write transaction (a load), so that the pages
 * of the blind indexes and sealed lists that every file touches are written once for all
 * of them. Each file is applied as rv_ingest_file would, and sees the files before it: the
 * same content twice is `already` the second time, an edition older than an earlier one of
 * its area is refused, and alterations amend the edition loaded before them. The load
 * stops at the first file that fails (rc != 0) or is rejected: the files before it are
 * stored (the load is redone without it, reading them again), it and those after are not.
 * The files stored become durable together when the load commits, at the end; a crash
 * before leaves none of them. When the store fills up, the map is grown and the load
 * redone. Memory stays that of one file.
 *
 * *done gets the number of files with an outcome in files[].rc and .res: n, or the files
 * up to and including the one that stopped the load. Returns 0 when every one of those has
 * rc 0 (stored, already ingested, or rejected: see .res), else the first nonzero rc; a
 * failure of the load's own commit is the rc of every file it held. Only files with rc 0,
 * neither already nor rejected, changed the vault. */
RV_NODISCARD int rv_ingest_load(struct rv_vault *v, struct rv_ingest_file *files, size_t n,
                                size_t *done) RV_NONNULL(1, 2, 4);

#endif /* RV_INGEST_H */
