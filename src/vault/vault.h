/*
 * vault.h - the encrypted vault: sealed key hierarchy, record encryption, blind indexes,
 * entry versions over time, and counters that answer statistics without decrypting.
 *
 * A vault is a directory:
 *   <dir>/vault.hdr   magic, format version, key-derivation parameters, the root key
 *                     wrapped (XChaCha20-Poly1305) under a passphrase (Argon2id) or key file
 *   <dir>/store/      the store (store.h): sealed record versions, blind indexes, data keys
 *                     wrapped by the root key, keyed secondary keys, counters
 * Nothing on disk holds a name, address or postcode in the clear. docs/security.md describes
 * the key hierarchy and what each index leaks.
 *
 * An entry version is valid over [from, to). Record ids are opaque 64-bit numbers, unique
 * within a vault. The read functions open their own short read transaction, so they may be
 * called from any thread; one struct rv_vault may be shared by threads for reading. A reader
 * (struct rv_vault_reader, below) does many reads in one snapshot, with its own copies of
 * the keys it needs: it is what a thread that reads a lot (the matcher) should use. Writing
 * goes through a batch per input file, inside a load (one atomic write transaction for one
 * or more files), used by one thread.
 */
#ifndef RV_VAULT_H
#define RV_VAULT_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rv_vault;
struct rv_vault_batch;
struct rv_store;

/* 2: blind-index entries carry a masked check tag, hyphenated surnames are indexed by each
 * part too, each area keeps a sealed list of its postcode districts, each postcode a sealed
 * list of its versions' surnames, each surname a sealed list of the versions with no
 * postcode that bear it, with their forenames, and each forename initial + surname +
 * outward code a sealed list of its versions with their postcodes and names. Vaults of format 1
 * are refused (RV_EVERSION): re-create and re-ingest. */
#define RV_VAULT_FORMAT_VERSION   2
#define RV_VAULT_DEFAULT_EXPECTED 50000000ull

/* ------------------------------------------------------------------------------------------
 * Unsealing material. Exactly one of passphrase and keyfile is set.
 */
struct rv_vault_secret {
    const char *passphrase; /* borrowed; the caller wipes it */
    size_t passphrase_len;
    const uint8_t *keyfile; /* borrowed: exactly 32 bytes */
};

/* Reads a key file: 32 raw bytes, or 64 hex digits with an optional trailing newline.
 * out must be 32 bytes of sodium_malloc memory. RV_EINVAL for any other content,
 * RV_EIO if unreadable. */
RV_NODISCARD int rv_vault_read_keyfile(const char *path, uint8_t out[32]) RV_NONNULL(1, 2);

/* Creates a vault in dir (created if absent; it must not hold a vault or anything else
 * regvault would overwrite: RV_EEXIST, and nothing is changed). expected_electors plans
 * the blind-index width (0 = RV_VAULT_DEFAULT_EXPECTED). */
RV_NODISCARD int rv_vault_create(const char *dir, const struct rv_vault_secret *secret,
                                 uint64_t expected_electors) RV_NONNULL(1, 2);

/* Opens and unseals a vault. RV_EKEY for a wrong passphrase or key file, RV_ECORRUPT for a
 * damaged header, RV_EVERSION for a newer format, RV_ENOTFOUND when dir holds no vault.
 * Nothing on disk changes when it fails. The handle is owned by the caller: free with
 * rv_vault_close, which wipes every key. */
RV_NODISCARD int rv_vault_open(const char *dir, const struct rv_vault_secret *secret,
                               struct rv_vault **out) RV_NONNULL(1, 2, 3);
void rv_vault_close(struct rv_vault *v);

/* The store under the vault (borrowed until rv_vault_close), for modules that keep their
 * own keyed records beside the vault's (their keys must start with a byte in 0x80..0xfe;
 * the vault uses 0x00..0x7f and 0xff). */
struct rv_store *rv_vault_store(struct rv_vault *v) RV_NONNULL(1);
/* The blind-index width in bits, fixed at creation. */
unsigned rv_vault_index_bits(const struct rv_vault *v) RV_NONNULL(1);

/* ------------------------------------------------------------------------------------------
 * Subkeys, derived from the root key with crypto_kdf (context "regvault").
 */
enum rv_subkey {
    RV_SUBKEY_IDX_SURNAME_POSTCODE = 1, /* blind index families (enum rv_index) */
    RV_SUBKEY_IDX_INITIAL_SURNAME_OUTWARD = 2,
    RV_SUBKEY_IDX_PHONETIC_POSTCODE = 3,
    RV_SUBKEY_IDX_ADDRESS_POSTCODE = 4,
    RV_SUBKEY_IDX_SURNAME = 5,
    RV_SUBKEY_AUDIT_MAC = 16,          /* audit log: keyed hashes of personal data */
    RV_SUBKEY_AUDIT_SIGN_SEED = 17,    /* audit log: Ed25519 checkpoint signing seed */
    RV_SUBKEY_EXPORT_FINGERPRINT = 18, /* export: keyed choice of renderings */
    RV_SUBKEY_CANARY = 19,             /* canary electors */
    RV_SUBKEY_POLICY = 20,             /* policy: keyed hashes of principals' secrets */
    /* 32..63 are the vault's own (data-key wrapping, content hashes, record MACs). */
};

/* Derives a 32-byte subkey into out, which must be caller-owned sodium_malloc memory
 * (wipe with sodium_memzero, free with sodium_free). RV_EINVAL for an unknown id. */
RV_NODISCARD int rv_vault_subkey(const struct rv_vault *v, enum rv_subkey id, uint8_t out[32])
    RV_NONNULL(1, 3);

/* ------------------------------------------------------------------------------------------
 * Blind indexes: keyed BLAKE2b over a versioned encoding of normalised fields, truncated to
 * the vault's width. A lookup returns candidate record ids (all versions, any date): decrypt
 * each with rv_vault_fetch and compare. The truncated value is shared with about C other
 * entries by design (the width planner); each entry also stores 32 more bits of the
 * hash masked with a keyed pad unique to the entry (the check tag), so a lookup drops
 * those coincidences without decrypting them, while on disk the tags look random and link
 * nothing. About one coincidence in 2^32 gets through: callers still compare.
 *
 * Surnames of several parts (Smith-Jones, Bray Ashton) are indexed in the surname families
 * under each part of 3 or more letters as well (at most RV_VAULT_PARTS), so a donor who
 * writes one part is found too.
 */
#define RV_VAULT_PARTS 3
/* Each postcode also has a sealed list of the versions stored at it, with their folded
 * surnames (rv_vault_reader_postcode): a donor's mistyped surname is looked for among the
 * handful of surnames at the postcode rather than by guessing index values. Surnames longer
 * than RV_VAULT_PC_SURNAME - 1 bytes are listed cut, with length RV_VAULT_PC_LONG. */
#define RV_VAULT_PC_SURNAME 39
#define RV_VAULT_PC_LONG    255

enum rv_index {
    RV_IDX_SURNAME_POSTCODE = 1,        /* surname + postcode */
    RV_IDX_INITIAL_SURNAME_OUTWARD = 2, /* forename initial + surname + outward code */
    RV_IDX_PHONETIC_POSTCODE = 3,       /* Double Metaphone primary of surname + postcode */
    RV_IDX_ADDRESS_POSTCODE = 4,        /* canonical first address line + postcode */
    RV_IDX_SURNAME = 5,                 /* surname alone: entries with no postcode */
};
#define RV_IDX_COUNT 5

/* Query fields, already normalised with core/ (the same functions ingest uses). Fields a
 * family does not use may be NULL. */
struct rv_index_query {
    const char *surname;    /* rv_name_key.surname: folded, joined ("macdonald") */
    char initial;           /* rv_name_key.initial ('j'), for the initial family */
    const char *postcode;   /* rv_postcode.canon ("SW1A 1AA") */
    const char *first_line; /* rv_address_key.first_line */
};

/* Computes the truncated index value of a family for the query into out (at least
 * RV_VAULT_INDEX_MAX bytes); *outlen gets its length. RV_EINVAL when a field the family
 * needs is missing or empty. */
#define RV_VAULT_INDEX_MAX 8
RV_NODISCARD int rv_vault_index_value(const struct rv_vault *v, enum rv_index family,
                                      const struct rv_index_query *q, uint8_t *out, size_t *outlen)
    RV_NONNULL(1, 3, 4, 5);

/* Looks up candidates: writes up to cap record ids to ids (owned by caller) and the total
 * number found to *n (which may exceed cap: call again with more room). Opens its own read
 * transaction; a reader (below) does the same in its snapshot. */
RV_NODISCARD int rv_vault_lookup(struct rv_vault *v, enum rv_index family,
                                 const struct rv_index_query *q, uint64_t *ids, size_t cap,
                                 size_t *n) RV_NONNULL(1, 3, 6);

/* ------------------------------------------------------------------------------------------
 * Record versions.
 */
struct rv_version {
    uint64_t id;
    rv_date from;        /* first day on the register (the edition or alteration date) */
    rv_date to;          /* first day no longer on it; RV_DATE_FOREVER while current */
    struct rv_elector e; /* e.area names the register area */
};

/* Fetches and decrypts a version into out (owned by caller; it holds personal data: wipe
 * it with sodium_memzero when done). RV_ENOTFOUND for an unknown id, RV_ECORRUPT when the
 * stored bytes fail authentication (tampered, swapped or damaged). */
RV_NODISCARD int rv_vault_fetch(struct rv_vault *v, uint64_t id, struct rv_version *out)
    RV_NONNULL(1, 3);
/* The validity of a version without decrypting it. RV_ECORRUPT if its metadata fails
 * authentication. */
RV_NODISCARD int rv_vault_span(struct rv_vault *v, uint64_t id, rv_date *from, rv_date *to)
    RV_NONNULL(1, 3, 4);
/* True when from <= d < to. */
static inline bool rv_version_valid_at(rv_date from, rv_date to, rv_date d)
{
    return from <= d && d < to;
}
/* Calls fn for every version valid at d, in record-id order, without decrypting. fn returns
 * 0 to go on, >0 to stop, <0 to stop with that error. */
typedef int (*rv_vault_version_fn)(void *ctx, uint64_t id, rv_date from, rv_date to);
RV_NODISCARD int rv_vault_scan_valid(struct rv_vault *v, rv_date d, rv_vault_version_fn fn,
                                     void *ctx) RV_NONNULL(1, 3);
/* The current (open) version of an elector number in an area: RV_ENOTFOUND if none. */
RV_NODISCARD int rv_vault_current(struct rv_vault *v, const char *area,
                                  const struct rv_elector_number *num, uint64_t *id)
    RV_NONNULL(1, 2, 3, 4);

/* ------------------------------------------------------------------------------------------
 * Readers: many reads in one consistent snapshot (one store read transaction), with the
 * data keys a reader has used kept in its own key memory, so that reads take no lock of the
 * shared vault. One reader per thread; any number of readers on one struct rv_vault, from
 * any number of threads at once, while another thread (or process) writes. A reader holds
 * no snapshot between rv_vault_reader_end and the next rv_vault_reader_begin; a snapshot
 * held open keeps the store from reusing pages freed since, so keep it short (one check).
 */
struct rv_vault_reader;

/* Opens a reader on v (borrowed until rv_vault_reader_close, which must come before
 * rv_vault_close). RV_ENOMEM. Free with rv_vault_reader_close, which wipes its keys. */
RV_NODISCARD int rv_vault_reader_open(struct rv_vault *v, struct rv_vault_reader **out)
    RV_NONNULL(1, 2);
/* Ends any snapshot and frees the reader (wiping its key memory). NULL is allowed. */
void rv_vault_reader_close(struct rv_vault_reader *r);
/* Takes a snapshot of the vault as last committed: every read until rv_vault_reader_end
 * sees it. RV_EINVAL if a snapshot is already held; otherwise the store's errors. */
RV_NODISCARD int rv_vault_reader_begin(struct rv_vault_reader *r) RV_NONNULL(1);
/* Releases the snapshot (a no-op without one). Results borrowed from it end here. */
void rv_vault_reader_end(struct rv_vault_reader *r);

/* As rv_vault_lookup, in the snapshot. RV_EINVAL without a snapshot or when a field the
 * family needs is missing. */
RV_NODISCARD int rv_vault_reader_lookup(struct rv_vault_reader *r, enum rv_index family,
                                        const struct rv_index_query *q, uint64_t *ids, size_t cap,
                                        size_t *n) RV_NONNULL(1, 3, 6);
/* As rv_vault_span, in the snapshot. */
RV_NODISCARD int rv_vault_reader_span(struct rv_vault_reader *r, uint64_t id, rv_date *from,
                                      rv_date *to) RV_NONNULL(1, 3, 4);
/* As rv_vault_fetch, in the snapshot (out is owned by the caller and holds personal data:
 * wipe it). */
RV_NODISCARD int rv_vault_reader_fetch(struct rv_vault_reader *r, uint64_t id,
                                       struct rv_version *out) RV_NONNULL(1, 3);
/* The number of files ingested into the vault as of the snapshot: it changes whenever
 * anything the readers see may have changed (a reader's caller can refresh what it derived
 * from the vault, such as the statistics or the districts, when it does). */
RV_NODISCARD int rv_vault_reader_generation(struct rv_vault_reader *r, uint64_t *out)
    RV_NONNULL(1, 2);
/* Calls fn for every postcode outward code ("LS1", "EC1A") of any version ever stored, each
 * once per area that holds it, from the areas' sealed district lists, in the snapshot. The
 * string is borrowed for the call. fn returns 0 to go on, >0 to stop, <0 to stop with that
 * error. RV_ECORRUPT when a list fails authentication. */
typedef int (*rv_vault_district_fn)(void *ctx, const char *outward);
RV_NODISCARD int rv_vault_reader_districts(struct rv_vault_reader *r, rv_vault_district_fn fn,
                                           void *ctx) RV_NONNULL(1, 2);
/* Calls fn for every version ever stored at a postcode (canonical, "LS1 4AB"), with its
 * record id and folded surname words ("smith jones"; len bytes, not NUL-terminated, or
 * RV_VAULT_PC_LONG when the surname was too long to list whole: compare by fetching it),
 * from the postcode's sealed list, in the snapshot. The surname is personal data, borrowed
 * for the call (the reader wipes it after). fn returns 0 to go on, >0 to stop, <0 to stop
 * with that error. 0 when the postcode holds nothing; RV_ECORRUPT when the list fails
 * authentication; RV_EINVAL without a snapshot or for an empty postcode. */
typedef int (*rv_vault_postcode_fn)(void *ctx, uint64_t id, const char *surname, size_t len);
RV_NODISCARD int rv_vault_reader_postcode(struct rv_vault_reader *r, const char *postcode,
                                          rv_vault_postcode_fn fn, void *ctx) RV_NONNULL(1, 2, 3);
/* The versions with no postcode (overseas electors, mostly) whose surname, or a part of it
 * (as for the surname families), is `surname` (joined and folded, rv_name_key.surname): what
 * rv_vault_lookup finds on RV_IDX_SURNAME, but from the surname's sealed list, which also
 * holds each version's folded surname words and forenames (rv_name_key.surname_tokens and
 * .forenames). A caller can thus leave out, without decrypting them, the namesakes whose
 * forenames cannot match: a common surname has hundreds abroad in a national register.
 * fn gets the record id, the two strings (NUL-terminated personal data, borrowed for the
 * call), and whether the version has address lines without the overseas marker (so that
 * its address, not only its name, may agree with a donor's); it returns 0 to go on, >0 to stop, <0
 * to stop with that error. 0 when there are none; RV_ECORRUPT when the list fails authentication;
 * RV_EINVAL without a snapshot or for an empty surname. */
typedef int (*rv_vault_nopc_fn)(void *ctx, uint64_t id, const char *surname_words,
                                const char *forenames, bool address);
RV_NODISCARD int rv_vault_reader_no_postcode(struct rv_vault_reader *r, const char *surname,
                                             rv_vault_nopc_fn fn, void *ctx) RV_NONNULL(1, 2, 3);
/* The versions whose forename initial, surname and postcode outward code are q's (initial,
 * surname, postcode: what rv_vault_lookup finds on RV_IDX_INITIAL_SURNAME_OUTWARD), from
 * their sealed namesake list, which also holds each version's postcode (compact, "LS14AB")
 * and folded surname words and forenames: a caller can leave out, without decrypting them,
 * the namesakes elsewhere in the district whose forenames cannot match (a common name has
 * a hundred in a district of a national register). The names are NULL when too long to be
 * listed whole (RV_VAULT_PC_SURNAME - 1 bytes): compare by fetching. fn gets borrowed
 * strings (personal data) for the call; it returns 0 to go on, >0 to stop, <0 to stop with
 * that error. 0 when there are none; RV_EINVAL without a snapshot or when a field is
 * missing; RV_ECORRUPT when the list fails authentication. */
typedef int (*rv_vault_namesake_fn)(void *ctx, uint64_t id, const char *postcode,
                                    const char *surname_words, const char *forenames);
RV_NODISCARD int rv_vault_reader_namesakes(struct rv_vault_reader *r,
                                           const struct rv_index_query *q, rv_vault_namesake_fn fn,
                                           void *ctx) RV_NONNULL(1, 2, 3);

/* ------------------------------------------------------------------------------------------
 * Statistics: one row per ingested file, kept as counters when it was ingested.
 */
enum rv_file_kind { RV_FILE_EDITION = 1, RV_FILE_ALTERATIONS = 2 };

/* Marker counters: the ten known markers in RV_MARK_* bit order, then "other". */
#define RV_STAT_MARKERS 11
struct rv_file_stats {
    char area[16];
    enum rv_file_kind kind;
    rv_date date;         /* edition date; for alterations, the edition they amend */
    rv_date eff_first;    /* earliest date a row took effect (RV_DATE_NONE: none applied) */
    rv_date eff_last;     /* latest date a row took effect */
    uint32_t seq;         /* ingest order within the vault */
    uint64_t rows;        /* data rows read */
    uint64_t stored;      /* new versions stored */
    uint64_t unchanged;   /* rows identical to the version already in force */
    uint64_t closed;      /* versions ended (left the register or replaced) */
    uint64_t anonymous;   /* anonymous entries: counted, never stored */
    uint64_t invalid;     /* rows refused (tolerated under --max-errors) */
    uint64_t on_register; /* entries in force in the area after this file */
    uint64_t markers[RV_STAT_MARKERS]; /* of those in force, entries carrying each marker */
    uint64_t attainers;                /* of those in force, attainers */
    uint64_t optout;                   /* of those in force, opted out of the open register */
    uint8_t file_hash[32];             /* keyed hash of the file's bytes */
};

/* Calls fn for each ingested file, by area then ingest order. The struct is borrowed for
 * the call. */
typedef int (*rv_vault_stats_fn)(void *ctx, const struct rv_file_stats *st);
RV_NODISCARD int rv_vault_stats(struct rv_vault *v, rv_vault_stats_fn fn, void *ctx)
    RV_NONNULL(1, 2);

/* Looks up a file by its keyed content hash: 0 and *st filled when it was ingested
 * before, RV_ENOTFOUND otherwise. */
RV_NODISCARD int rv_vault_file_seen(struct rv_vault *v, const uint8_t hash[32],
                                    struct rv_file_stats *st) RV_NONNULL(1, 2, 3);
/* The keyed hash ingest records for a file's bytes: init, update over every byte, final. */
struct rv_vault_filehash {
    uint8_t state[384] __attribute__((aligned(64)));
};
RV_NODISCARD int rv_vault_filehash_init(const struct rv_vault *v, struct rv_vault_filehash *h)
    RV_NONNULL(1, 2);
void rv_vault_filehash_update(struct rv_vault_filehash *h, const void *buf, size_t len);
void rv_vault_filehash_final(struct rv_vault_filehash *h, uint8_t out[32]);

/* ------------------------------------------------------------------------------------------
 * Writing. A row is first prepared (pure computation with the vault's keys: safe on any
 * thread, in parallel), then applied inside a batch, in file order, by the batch's thread.
 */
struct rv_prepared {
    struct rv_elector e; /* the entry (personal data: the batch wipes what it uses) */
    uint8_t numkey[16];  /* keyed hash of area + elector number */
    uint8_t chash[16];   /* keyed hash of the entry's content */
    uint8_t idx[RV_IDX_COUNT][RV_VAULT_INDEX_MAX]; /* index values; */
    uint8_t idx_tag[RV_IDX_COUNT][4];              /* their check bits, not yet masked */
    uint8_t idx_present;                           /* bit (family - 1) set when computed */
    uint8_t nparts;                                /* surname parts indexed below */
    uint8_t part_family;                           /* RV_IDX_SURNAME_POSTCODE or _SURNAME */
    uint8_t part[RV_VAULT_PARTS][RV_VAULT_INDEX_MAX];
    uint8_t part_tag[RV_VAULT_PARTS][4];
    uint8_t pc_key[16];                   /* keyed hash of the postcode (has_pc) */
    bool has_pc;                          /* the entry has a postcode and a surname */
    uint8_t pc_len;                       /* bytes of pc_surname, RV_VAULT_PC_LONG if cut */
    char pc_surname[RV_VAULT_PC_SURNAME]; /* folded surname words ("smith jones") */
    bool has_ns;        /* the entry is in a namesake list (initial, surname, outward) */
    uint8_t ns_key[16]; /* that list's keyed name */
    uint8_t ns_flen;    /* bytes of ns_forenames, RV_VAULT_PC_LONG if cut */
    char ns_forenames[RV_VAULT_PC_SURNAME]; /* folded forenames ("john paul") */
    uint32_t sealed_bucket;                 /* bucket the payload below is sealed for, or 0 */
    uint64_t sealed_id;                     /* record id it is sealed for */
    rv_date sealed_from;                    /* from date it is sealed for */
    size_t sealed_len;                      /* bytes of sealed[] in use: the whole stored record */
    bool tags_masked; /* with the seal: idx_tag and part_tag masked for record sealed_id */
    uint8_t idx_mtag[RV_IDX_COUNT][4];
    uint8_t part_mtag[RV_VAULT_PARTS][4];
    uint8_t sealed[30 + 24 + RV_ELECTOR_WIRE_MAX + 16];
};

/* What a worker needs to seal entries while preparing them: handed out by
 * rv_vault_batch_presealing, borrowed until the batch ends. */
struct rv_vault_sealer {
    uint8_t key[32];          /* the bucket's data key */
    uint8_t nonce_prefix[16]; /* random per batch; the record id completes each nonce */
    uint8_t subkey[32];       /* HChaCha20(key, nonce_prefix): XChaCha20's key for them all */
    uint32_t bucket;
    rv_date from; /* the date every version it seals starts */
};

/* Prepares an entry (copied into out). With a sealer, also seals it for record id seal_id;
 * without (NULL), the batch seals it when applying. RV_EINVAL for an entry without a valid
 * area or elector number. */
RV_NODISCARD int rv_vault_prepare(const struct rv_vault *v, const struct rv_elector *e,
                                  const struct rv_vault_sealer *seal, uint64_t seal_id,
                                  struct rv_prepared *out) RV_NONNULL(1, 2, 5);

/* What one preparing thread remembers of the entry it prepared last: its address lines and
 * normalised address, and each blind index's hash input and value. Register files list
 * electors by address, so half the entries share their address with the one before and a
 * third their surname and postcode; those reuse the work instead of redoing it. The cache
 * holds personal data in sodium memory, wiped when freed. One cache per thread; it is not
 * tied to a vault, but must only be used with one vault. */
struct rv_vault_prep_cache;
RV_NODISCARD int rv_vault_prep_cache_new(struct rv_vault_prep_cache **out) RV_NONNULL(1);
void rv_vault_prep_cache_free(struct rv_vault_prep_cache *c);
/* rv_vault_prepare with a cache (borrowed for the call; NULL: none). Same results. */
RV_NODISCARD int rv_vault_prepare_cached(const struct rv_vault *v, struct rv_vault_prep_cache *c,
                                         const struct rv_elector *e,
                                         const struct rv_vault_sealer *seal, uint64_t seal_id,
                                         struct rv_prepared *out) RV_NONNULL(1, 3, 6);

/* A load: one store write transaction in which the batches of several files are applied one
 * after another, so that a page of the blind indexes or the sealed lists is copied once per
 * load rather than once per file (their entries are written, merged, at the commit). Each
 * batch sees what the ones before it wrote (the files' hashes, the areas' latest editions
 * and counters). Nothing of a load is durable until rv_vault_load_commit, and then all of
 * it is: a crash before leaves none of its files, after leaves all of them. There are no
 * nested transactions: a batch that fails or is abandoned once it has begun leaves the load
 * dead (RV_EINVAL from then on), and the caller aborts the load and redoes the files it
 * wants kept in a new one. The load is owned by the caller until rv_vault_load_commit or
 * rv_vault_load_abort, which free it; one thread uses it, with at most one batch open at a
 * time. */
struct rv_vault_load;
RV_NODISCARD int rv_vault_load_begin(struct rv_vault *v, struct rv_vault_load **out)
    RV_NONNULL(1, 2);
/* Looks up a file by its keyed content hash in the load (its own files included), as
 * rv_vault_file_seen. */
RV_NODISCARD int rv_vault_load_file_seen(struct rv_vault_load *l, const uint8_t hash[32],
                                         struct rv_file_stats *st) RV_NONNULL(1, 2, 3);
/* Commits the load durably and frees it. On failure nothing of it is stored: RV_ETOOBIG
 * when the store filled up (reserve more and redo it), RV_EINVAL when a batch left it
 * dead. */
RV_NODISCARD int rv_vault_load_commit(struct rv_vault_load *l) RV_NONNULL(1);
/* Abandons the load (nothing of it is stored) and frees it. NULL is allowed. */
void rv_vault_load_abort(struct rv_vault_load *l);

/* Begins the batch of one file inside a load. Refused before anything is written (the load
 * stays usable): RV_EEXIST when a file of that hash was ingested (before, or earlier in the
 * load), RV_EINVAL for an edition older than the area's latest, or a batch already open. */
RV_NODISCARD int rv_vault_batch_begin_in(struct rv_vault_load *l, const char *area,
                                         enum rv_file_kind kind, rv_date date,
                                         const uint8_t file_hash[32], struct rv_vault_batch **out)
    RV_NONNULL(1, 2, 5, 6);
/* A batch in a load of its own: rv_vault_batch_commit commits it. */
RV_NODISCARD int rv_vault_batch_begin(struct rv_vault *v, const char *area, enum rv_file_kind kind,
                                      rv_date date, const uint8_t file_hash[32],
                                      struct rv_vault_batch **out) RV_NONNULL(1, 2, 5, 6);
/* For workers that seal while preparing: the sealer for the batch's date (borrowed until
 * the batch ends), and a range of n fresh record ids starting at *first_id. Ids a worker
 * does not use are simply never stored. */
RV_NODISCARD int rv_vault_batch_presealing(struct rv_vault_batch *b, uint64_t n,
                                           const struct rv_vault_sealer **seal, uint64_t *first_id)
    RV_NONNULL(1, 3, 4);

/* Outcome of applying one row. */
enum rv_apply {
    RV_APPLIED_NEW = 1,   /* a new entry, or a new version of a changed one */
    RV_APPLIED_SAME,      /* identical to the version in force: nothing stored */
    RV_APPLIED_CLOSED,    /* a deletion ended the version in force */
    RV_APPLIED_DUPLICATE, /* the elector number already appeared in this file: refused */
    RV_APPLIED_MISSING,   /* a deletion for an elector number not on the register: refused */
    RV_APPLIED_EARLY,     /* an effective date before the version in force began: refused */
};
/* An edition row: new, changed or unchanged against the versions in force in the area. */
RV_NODISCARD int rv_vault_batch_edition_row(struct rv_vault_batch *b, struct rv_prepared *p,
                                            enum rv_apply *out) RV_NONNULL(1, 2, 3);
/* An alteration row: create or change (upsert) from date `from`, or, when del is true,
 * end the version in force at `from`. */
RV_NODISCARD int rv_vault_batch_alteration_row(struct rv_vault_batch *b, struct rv_prepared *p,
                                               bool del, rv_date from, enum rv_apply *out)
    RV_NONNULL(1, 2, 5);
/* Does up to max units of deferred writing (open entries of an area's first edition
 * waiting, sorted, to be stored; when none are, it first sorts those buffered so far if
 * there are enough), for the batch's thread to call while it waits for rows. Returns 1 when
 * more is waiting, 0 when nothing is, or a negative RV_E* code (sticky: the batch is dead). */
RV_NODISCARD int rv_vault_batch_idle(struct rv_vault_batch *b, size_t max) RV_NONNULL(1);
/* Counts rows that were read but not applied (anonymous entries, invalid rows), and the
 * total rows read, for the file's statistics. */
void rv_vault_batch_count(struct rv_vault_batch *b, uint64_t rows, uint64_t anonymous,
                          uint64_t invalid) RV_NONNULL(1);
/* Ends the batch: for an edition, versions in force that the file did not contain are
 * closed at the edition date; then its buffers are written and its counters, statistics
 * and hash recorded. A batch begun with rv_vault_batch_begin is then committed durably; one
 * begun in a load waits for the load's commit (and on failure leaves the load dead). The
 * batch is freed whatever the outcome; *st (optional) gets the file's statistics.
 * RV_ETOOBIG when the store filled up: nothing was stored. */
RV_NODISCARD int rv_vault_batch_commit(struct rv_vault_batch *b, struct rv_file_stats *st)
    RV_NONNULL(1);
/* Abandons the batch and frees it: nothing of its file is stored. A batch begun in a load
 * leaves the load dead. NULL is allowed. */
void rv_vault_batch_abort(struct rv_vault_batch *b);

#endif /* RV_VAULT_H */
