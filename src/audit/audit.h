/*
 * audit.h - the public contract of src/audit: the tamper-evident audit log.
 *
 * Every access to the register is recorded here before any answer leaves the vault. Entries
 * are the leaves of an RFC 6962 / RFC 9162 Merkle tree (leaf = SHA-256(0x00 || entry),
 * node = SHA-256(0x01 || left || right)). The log periodically signs its root as a C2SP
 * tlog-checkpoint wrapped in a C2SP signed note (Ed25519), so that anyone holding the
 * verifier key can check inclusion and consistency proofs with standard tools, and nobody,
 * not even root on the vault host, can rewrite history below a checkpoint kept elsewhere
 * without it showing.
 *
 * Storage, in a directory the caller names (docs/audit.md has the byte layout):
 *   entries      append-only entry records (magic, version, then length-framed entries)
 *   index        entry number -> offset in entries (8 bytes each)
 *   hashes       the Merkle tree's stored hashes in the order of Go's sumdb tlog
 *                (StoredHashIndex): an append writes about two hashes, a tree hash reads at
 *                most log2(n)
 *   checkpoints  every signed checkpoint ever made, append-only
 *   checkpoint   the latest signed checkpoint note (plain text; written, fsynced, renamed)
 *   key.pub      the verifier key string, so verification needs no secret
 *
 * Durability: rv_audit_append returns 0 only once the entry is on disk (fdatasync). Appends
 * from several threads share one fsync (group commit). Any write error makes the log refuse
 * every later append with RV_EAUDIT (sticky) until it is reopened: the vault fails closed.
 * After a crash, reopening truncates a torn tail consistently across the three files.
 *
 * Thread safety: one struct rv_audit_log may be used from many threads at once, except that
 * rv_audit_close must not race with anything. Only one process may open a log for writing
 * (RV_EBUSY otherwise); any number may open it read-only.
 */
#ifndef RV_AUDIT_H
#define RV_AUDIT_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RV_AUDIT_HASH_LEN     32
#define RV_AUDIT_SEED_LEN     32
#define RV_AUDIT_STR_MAX      255  /* bytes in principal, role, action, outcome, client */
#define RV_AUDIT_PARAMS_MAX   4096 /* bytes in params */
#define RV_AUDIT_SUBJECTS_MAX 1024 /* subject ids per entry */
/* Largest encoded entry: version, time, five short strings, params, subjects. */
#define RV_AUDIT_ENTRY_MAX                                                                         \
    (1 + 8 + 5 * (1 + RV_AUDIT_STR_MAX) + 2 + RV_AUDIT_PARAMS_MAX + 2 +                            \
     RV_AUDIT_SUBJECTS_MAX * RV_AUDIT_HASH_LEN)
#define RV_AUDIT_ORIGIN_MAX 128  /* bytes in an origin (= key name) */
#define RV_AUDIT_VKEY_MAX   256  /* bytes in a verifier key string, with NUL */
#define RV_AUDIT_NOTE_MAX   1024 /* bytes in one of our signed checkpoint notes */
#define RV_AUDIT_PROOF_MAX  128  /* hashes in any proof for a tree of < 2^64 leaves */

/* ------------------------------------------------------------------------------------------
 * Entries.
 */

/* One audit entry as the caller describes it. All strings are NUL-terminated UTF-8 without
 * control characters and borrowed for the duration of the call. Personal data never goes
 * into any field: electors appear only as subject ids (rv_audit_subject_id). */
struct rv_audit_entry {
    int64_t time_ms;       /* UTC milliseconds since 1970; 0 = "now" when appended */
    const char *principal; /* who: the OS user for local commands, else the principal id */
    const char *role;      /* registrar, checker, researcher, auditor, admin, exporter */
    const char *action;    /* what: "check", "ingest", "audit.verify", ... */
    const char *params;    /* parameters without personal data; "" when none */
    const char *outcome;   /* "ok", "denied", "not-found", "error", ... */
    const char *client;    /* "local" or the client's address */
    const uint8_t (*subjects)[RV_AUDIT_HASH_LEN]; /* electors disclosed; may be NULL if 0 */
    size_t nsubjects;
};

/* Encodes e canonically (docs/audit.md) into buf (cap bytes; RV_AUDIT_ENTRY_MAX always
 * suffices) and sets *len. RV_EINVAL for a NULL or over-long field, a control character or
 * invalid UTF-8; RV_ETOOBIG if cap is too small. time_ms 0 is encoded as given (0). */
RV_NODISCARD int rv_audit_entry_encode(const struct rv_audit_entry *e, uint8_t *buf, size_t cap,
                                       size_t *len) RV_NONNULL(1, 2, 4);

/* A decoded entry. Strings and subjects point into memory owned by the record. */
struct rv_audit_record {
    uint64_t index;
    struct rv_audit_entry e;
    uint8_t leaf_hash[RV_AUDIT_HASH_LEN];
    size_t raw_len;
    uint8_t *raw; /* the entry bytes exactly as hashed */
    char *text;   /* private: NUL-terminated copies of the strings */
};

/* Decodes an entry; rejects anything that rv_audit_entry_encode would not produce
 * (RV_ECORRUPT; RV_EVERSION for an unknown version byte). On success rec owns copies of
 * everything: free with rv_audit_record_free. */
/* Checks that buf is a canonical entry, as rv_audit_entry_decode would, without copying. */
RV_NODISCARD int rv_audit_entry_check(const uint8_t *buf, size_t len) RV_NONNULL(1);
RV_NODISCARD int rv_audit_entry_decode(const uint8_t *buf, size_t len, struct rv_audit_record *rec)
    RV_NONNULL(1, 3);
void rv_audit_record_free(struct rv_audit_record *rec);

/* The subject id of an elector: keyed BLAKE2b-256 under the vault's audit MAC key over
 * 0x01 || u16le(len) surname || u16le(len) first forename || u16le(len) postcode, taken from
 * name->surname (folded, joined), name->first and pc->canon. Equal electors give equal ids;
 * without the key an id reveals nothing. key is borrowed for the call. */
RV_NODISCARD int rv_audit_subject_id(const uint8_t key[32], const struct rv_name_key *name,
                                     const struct rv_postcode *pc, uint8_t out[32])
    RV_NONNULL(1, 2, 3, 4);

/* ------------------------------------------------------------------------------------------
 * Merkle tree (RFC 9162 section 2.1) and the stored-hash order of Go's sumdb tlog.
 */
/* SHA-256(a || b). a or b may be NULL when its length is 0. Uses the CPU's SHA extensions
 * when present, else libsodium; the result is the same. */
void rv_audit_sha256_parts(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                           uint8_t out[32]);
void rv_audit_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32]);
void rv_audit_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);
/* Position in the hash store of the n'th hash at the given level (tlog StoredHashIndex). */
uint64_t rv_audit_stored_hash_index(unsigned level, uint64_t n);
/* Number of stored hashes for a tree of n leaves (tlog StoredHashCount). */
uint64_t rv_audit_stored_hash_count(uint64_t n);
/* Inverse of rv_audit_stored_hash_index. */
void rv_audit_split_stored_hash_index(uint64_t index, unsigned *level, uint64_t *n);

/* Verifies an inclusion proof (RFC 9162 2.1.3.2). proof is borrowed; nproof may be 0.
 * Returns 0 if it proves that leaf is entry index of the tree of the given size and root,
 * RV_ECORRUPT otherwise (including index >= size). */
RV_NODISCARD int rv_audit_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
                                           const uint8_t (*proof)[32], size_t nproof,
                                           const uint8_t root[32]) RV_NONNULL(3, 6);
/* Verifies a consistency proof (RFC 9162 2.1.4.2) between trees of size1 <= size2. Equal
 * sizes need an empty proof and equal roots; size1 0 is refused (such a proof proves
 * nothing). Returns 0 or RV_ECORRUPT. */
RV_NODISCARD int rv_audit_verify_consistency(uint64_t size1, uint64_t size2,
                                             const uint8_t root1[32], const uint8_t root2[32],
                                             const uint8_t (*proof)[32], size_t nproof)
    RV_NONNULL(3, 4);

/* A proof as the log hands it out, and as `regvault audit proof|consistency` prints it. */
struct rv_audit_proof {
    bool consistency;  /* false: inclusion of leaf index in tree size2; true: size1 -> size2 */
    uint64_t index;    /* inclusion: the leaf's index */
    uint64_t size1;    /* consistency: the older size */
    uint64_t size2;    /* the tree size the proof is for */
    uint8_t leaf[32];  /* inclusion: the leaf hash */
    uint8_t root1[32]; /* consistency: root at size1 */
    uint8_t root2[32]; /* root at size2 */
    uint8_t hashes[RV_AUDIT_PROOF_MAX][32];
    size_t nhashes;
};

/* JSON forms: inclusion {"leaf_index","tree_size","leaf_hash","root","proof":[...]},
 * consistency {"size1","size2","root1","root2","proof":[...]}, hashes in standard base64.
 * rv_audit_proof_to_json returns a string to free with free(). rv_audit_proof_from_json
 * parses strictly (unknown keys, wrong types or hash lengths give RV_EPARSE) and does not
 * verify; json is borrowed for the call. */
RV_NODISCARD int rv_audit_proof_to_json(const struct rv_audit_proof *p, char **out)
    RV_NONNULL(1, 2);
RV_NODISCARD int rv_audit_proof_from_json(const char *json, size_t len, struct rv_audit_proof *out)
    RV_NONNULL(1, 3);
/* Verifies p on its own terms (the roots it carries). 0 or RV_ECORRUPT. */
RV_NODISCARD int rv_audit_proof_verify(const struct rv_audit_proof *p) RV_NONNULL(1);

/* True if s (n bytes) is made only of the standard base64 alphabet, with correct padding
 * and a length that is a multiple of 4. */
bool rv_audit_b64_alphabet(const char *s, size_t n);

/* ------------------------------------------------------------------------------------------
 * Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519, in the
 * format of golang.org/x/mod/sumdb/note.
 */
struct rv_audit_vkey {
    char name[RV_AUDIT_ORIGIN_MAX];
    uint32_t key_id;
    uint8_t pub[32];
};

/* Parses "<name>+<8 hex key id>+<base64(0x01 || public key)>" strictly, checking that the
 * key id matches. RV_EPARSE otherwise. s is borrowed. */
RV_NODISCARD int rv_audit_vkey_parse(const char *s, size_t len, struct rv_audit_vkey *out)
    RV_NONNULL(1, 3);
/* Formats a verifier key string into out (RV_AUDIT_VKEY_MAX bytes). */
void rv_audit_vkey_format(const struct rv_audit_vkey *k, char out[RV_AUDIT_VKEY_MAX]);
/* Key id = big-endian first 4 bytes of SHA-256(name || 0x0A || 0x01 || pub). */
uint32_t rv_audit_key_id(const char *name, const uint8_t pub[32]);
/* The key pair for a 32-byte seed; secret is 64 bytes (libsodium layout), which the caller
 * keeps in sodium_malloc memory. Fills k with name and public key. */
RV_NODISCARD int rv_audit_keypair(const char *name, const uint8_t seed[32], uint8_t *secret,
                                  struct rv_audit_vkey *k) RV_NONNULL(1, 2, 3, 4);

struct rv_audit_checkpoint {
    char origin[RV_AUDIT_ORIGIN_MAX];
    uint64_t size;
    uint8_t root[32];
};

/* Builds "origin\nsize\nbase64(root)\n" into out (outsz bytes); returns its length or a
 * negative RV_E* code. */
long rv_audit_checkpoint_body(const struct rv_audit_checkpoint *c, char *out, size_t outsz);
/* Signs body (text ending in a newline) as a signed note: body, a blank line, and the line
 * "— <name> <base64(key id || signature)>". secret is borrowed for the call. Returns the
 * note's length or a negative code. */
long rv_audit_note_sign(const char *body, size_t len, const struct rv_audit_vkey *k,
                        const uint8_t *secret, char *out, size_t outsz);
/* Opens a signed note strictly, by the rules of sumdb/note.Open: valid UTF-8, no control
 * characters but newline, signature lines "— name base64" after the last blank line, at
 * most 100. Requires a valid signature by k; a line claiming k's name and key id whose
 * signature fails, or a note with no signature by k, is RV_EKEY; signatures by other keys
 * are ignored; a malformed note is RV_EPARSE. *textlen receives the length of the signed
 * text (the note up to and including the newline before the blank line). */
RV_NODISCARD int rv_audit_note_open(const char *note, size_t len, const struct rv_audit_vkey *k,
                                    size_t *textlen) RV_NONNULL(1, 3, 4);
/* Opens a signed note strictly (the rules of sumdb/note.Open): valid UTF-8, no control
 * characters but newline, signature lines after the last blank line. Requires a valid
 * signature by k; a line claiming k's name and id with a bad signature, or a note with no
 * signature by k, is refused (RV_EKEY); a malformed note is RV_EPARSE. Then parses the
 * body as a tlog-checkpoint (RV_EPARSE if it is not one) whose origin must be k's name
 * (RV_EKEY otherwise). note is borrowed. */
RV_NODISCARD int rv_audit_checkpoint_open(const char *note, size_t len,
                                          const struct rv_audit_vkey *k,
                                          struct rv_audit_checkpoint *out) RV_NONNULL(1, 3, 4);
/* Parses a tlog-checkpoint body only (no signature). */
RV_NODISCARD int rv_audit_checkpoint_parse(const char *body, size_t len,
                                           struct rv_audit_checkpoint *out) RV_NONNULL(1, 3);

/* ------------------------------------------------------------------------------------------
 * The log.
 */
struct rv_audit_log;

struct rv_audit_opts {
    const char *origin;        /* log name, also the key name: "regvault.example/audit";
                                  needed only when the log is created */
    uint64_t checkpoint_every; /* sign a checkpoint at least every this many entries; 0=1000 */
    uint32_t checkpoint_ms;    /* ... or this many milliseconds after an append; 0 = 10000 */
};

/* Opens (creating if absent) the log in dir for appending. seed (32 bytes, borrowed for the
 * call) makes the Ed25519 signing key, held in sodium_malloc memory; an existing log signed
 * by another key is refused (RV_EKEY). Repairs a torn tail left by a crash. RV_EBUSY if
 * another process has it open for writing; RV_ECORRUPT if it holds fewer entries than its
 * latest checkpoint (rollback); RV_EAUDIT if the directory cannot be written. opts may be
 * NULL (defaults; origin "regvault/audit"). Returned handle: free with rv_audit_close. */
RV_NODISCARD int rv_audit_open(const char *dir, const uint8_t seed[32],
                               const struct rv_audit_opts *opts, struct rv_audit_log **out)
    RV_NONNULL(1, 2, 4);
/* Opens the log read-only: no secret needed, nothing written. A torn tail past the last
 * checkpoint is ignored (rv_audit_size counts only consistent entries). Free with
 * rv_audit_close. */
RV_NODISCARD int rv_audit_open_ro(const char *dir, struct rv_audit_log **out) RV_NONNULL(1, 2);
/* Signs a final checkpoint if anything was appended since the last (writable logs), then
 * frees everything and wipes the key. Returns that checkpoint's result; the handle is gone
 * either way. NULL is a no-op. */
int rv_audit_close(struct rv_audit_log *log);

/* Appends e and waits until it is durable. *index (may be NULL) receives its entry number.
 * RV_EINVAL for a bad entry (the log stays usable); RV_EAUDIT if the log cannot be written,
 * now or since an earlier failure (sticky until reopened); RV_EUNSUPPORTED on a read-only
 * handle. */
RV_NODISCARD int rv_audit_append(struct rv_audit_log *log, const struct rv_audit_entry *e,
                                 uint64_t *index) RV_NONNULL(1, 2);
/* Appends n entries (1 <= n <= RV_AUDIT_BATCH_MAX) with consecutive numbers, the first in
 * *first (may be NULL), and waits until all are durable: one fsync for the lot, as for a
 * batch check that records one entry per donor. Either all are appended or, on error, the
 * log refuses further appends as for rv_audit_append (RV_EINVAL for a bad entry leaves the
 * log usable and appends none). e is borrowed for the call. */
#define RV_AUDIT_BATCH_MAX 65536
RV_NODISCARD int rv_audit_append_batch(struct rv_audit_log *log, const struct rv_audit_entry *e,
                                       size_t n, uint64_t *first) RV_NONNULL(1, 2);

/* Asynchronous appends, for a front end that answers from an event loop and must not hold a
 * thread while an entry is made durable. fn is called exactly once, after the group commit
 * that took the entry has fdatasync'd it (rc 0, index its entry number) or has failed (rc
 * RV_EAUDIT or RV_ENOMEM, index UINT64_MAX; the log is then failed as for rv_audit_append),
 * on whichever thread commits it (the log's committer, or a thread committing its own
 * rv_audit_append inline), never inside this call. fn must be quick and must not append to
 * the same log synchronously. Returns 0 when the entry is queued; otherwise (RV_EINVAL, a
 * failed log's RV_EAUDIT at once, RV_ENOMEM, RV_EUNSUPPORTED on a read-only handle) fn is
 * never called. e is borrowed for the call. rv_audit_close answers every queued entry
 * before it returns. */
typedef void (*rv_audit_done_fn)(void *ctx, int rc, uint64_t index);
RV_NODISCARD int rv_audit_append_async(struct rv_audit_log *log, const struct rv_audit_entry *e,
                                       rv_audit_done_fn fn, void *ctx) RV_NONNULL(1, 2, 3);

/* Groups: deferring a thread's synchronous appends. Code above the log (the access gate)
 * records an action with rv_audit_append and acts on its answer; a daemon that withholds the
 * whole answer until its entries are durable can let that call return at once. While a
 * group is the calling thread's group (rv_audit_group_enter), rv_audit_append of one entry
 * with index NULL, on that thread and the group's log (the log of its first entry; an
 * append to any other log waits as before), queues the entry as rv_audit_append_async
 * does and returns 0 (or its immediate error) without waiting; the group counts it. Appends
 * with an index, batches and the other threads' appends wait as before. The holder of the
 * group must send nothing that depends on those entries until the group's result is known,
 * and must treat a failed group as a failed append (nothing but an error answer). */
struct rv_audit_group;
/* fn(ctx, rc) is called once after rv_audit_group_close if entries were still in flight:
 * rc 0 when every entry the group took is durable, else the first failure. *out: ended by
 * rv_audit_group_close (which frees it, at once or after fn). */
typedef void (*rv_audit_group_fn)(void *ctx, int rc);
RV_NODISCARD int rv_audit_group_new(rv_audit_group_fn fn, void *ctx, struct rv_audit_group **out)
    RV_NONNULL(1, 3);
/* Makes g the calling thread's group (NULL: none, appends wait again); returns the one it
 * replaces. g is borrowed until it is left. */
struct rv_audit_group *rv_audit_group_enter(struct rv_audit_group *g);
/* The calling thread's group with a reference taken, or NULL when the thread has none: for
 * code above the log that makes something else durable before the answer may go out (the
 * disclosure budget's electors) and finishes it on another thread. Until the reference is
 * released the group is not settled: rv_audit_group_wait waits for it, and the callback
 * (or rv_audit_group_close's answer) comes only once every entry is durable and every
 * reference is released. */
struct rv_audit_group *rv_audit_group_hold(void);
/* Drops a reference rv_audit_group_hold took, from any thread; a non-zero rc fails the
 * group (its result is the first failure, as for a failed entry). May call the group's
 * callback on the calling thread, so call it with no lock held that the callback takes. */
void rv_audit_group_release(struct rv_audit_group *g, int rc) RV_NONNULL(1);
/* True when every entry g took so far has been answered (durable or failed) and every
 * hold released. */
bool rv_audit_group_settled(struct rv_audit_group *g) RV_NONNULL(1);
/* Commits g's entries on the calling thread if nobody holds the log's commit turn, as an
 * rv_audit_append that finds the turn free does (writing and syncing whatever is queued,
 * and calling the callbacks of other asynchronous appends it answers); returns at once,
 * with nothing done, when the turn is taken (its holder or the committer thread will
 * answer them). So a lightly loaded caller needs no hand-over to another thread. */
void rv_audit_group_commit(struct rv_audit_group *g) RV_NONNULL(1);
/* From now on g's entries are never written on its holder's thread: rv_audit_group_commit,
 * rv_audit_group_wait and rv_audit_group_close rouse the log's committer thread instead of
 * taking a free turn (so a holder that serves other clients from an event loop never waits
 * for a write or a sync). */
void rv_audit_group_handoff(struct rv_audit_group *g) RV_NONNULL(1);
/* Blocks the holder (not inside g: no thread's group may be g) until every entry g took so
 * far has been answered: commits them itself whenever the turn is free, and otherwise
 * sleeps until whoever commits the last of them wakes it (no polling). g's callback is not
 * called for them; rv_audit_group_close then returns 0 with the group's result. For a
 * holder that must know its earlier entries are durable before it acts. */
void rv_audit_group_wait(struct rv_audit_group *g) RV_NONNULL(1);
/* Ends the holder's use of g, which must not be any thread's group any more; first commits
 * its entries as rv_audit_group_commit does (a group's entries rouse no other thread by
 * themselves: they are written by the group's holder or by whoever holds the turn). Returns 0 when
 * nothing is in flight: *rc receives the group's result, fn is never called and g is freed.
 * Returns 1 when entries are still in flight: fn will be called (perhaps already running on
 * another thread) and g freed after it. */
RV_NODISCARD int rv_audit_group_close(struct rv_audit_group *g, int *rc) RV_NONNULL(1, 2);

/* Signs a checkpoint of the current tree now (no-op if the latest already covers it). */
RV_NODISCARD int rv_audit_checkpoint(struct rv_audit_log *log) RV_NONNULL(1);
/* Number of durable entries. */
uint64_t rv_audit_size(struct rv_audit_log *log) RV_NONNULL(1);
/* The log's verifier key (valid for the life of the handle). */
const struct rv_audit_vkey *rv_audit_vkey(const struct rv_audit_log *log) RV_NONNULL(1);
/* Root hash of the tree of the first size entries (size <= rv_audit_size). */
RV_NODISCARD int rv_audit_root(struct rv_audit_log *log, uint64_t size, uint8_t out[32])
    RV_NONNULL(1, 3);
/* The latest signed checkpoint note, NUL-terminated, into out (RV_AUDIT_NOTE_MAX bytes).
 * RV_ENOTFOUND if none has been signed yet. */
RV_NODISCARD int rv_audit_latest_note(struct rv_audit_log *log, char *out, size_t outsz)
    RV_NONNULL(1, 2);
/* Reads entry index. rec: free with rv_audit_record_free. RV_ENOTFOUND past the end. */
RV_NODISCARD int rv_audit_get(struct rv_audit_log *log, uint64_t index, struct rv_audit_record *rec)
    RV_NONNULL(1, 3);
/* Inclusion proof of entry index in the tree of size entries (0 < size <= rv_audit_size). */
RV_NODISCARD int rv_audit_prove_inclusion(struct rv_audit_log *log, uint64_t index, uint64_t size,
                                          struct rv_audit_proof *out) RV_NONNULL(1, 4);
/* Consistency proof between sizes 0 < size1 <= size2 <= rv_audit_size. */
RV_NODISCARD int rv_audit_prove_consistency(struct rv_audit_log *log, uint64_t size1,
                                            uint64_t size2, struct rv_audit_proof *out)
    RV_NONNULL(1, 4);
/* Entry numbers whose subject list contains id, in order. *out: free with free(). */
RV_NODISCARD int rv_audit_find_subject(struct rv_audit_log *log, const uint8_t id[32],
                                       uint64_t **out, size_t *n) RV_NONNULL(1, 2, 3, 4);

/* What rv_audit_verify found. */
struct rv_audit_report {
    uint64_t size;          /* entries checked */
    uint64_t checkpoints;   /* stored checkpoints checked */
    uint64_t latest_size;   /* size of the latest stored checkpoint (0 if none) */
    uint64_t tail_ignored;  /* torn entries past the last checkpoint left out (crash) */
    uint64_t bad_index;     /* first bad entry, or UINT64_MAX */
    int64_t bad_checkpoint; /* first bad stored checkpoint (0-based), or -1 */
    char what[192];         /* the rule that failed; never any entry content */
};

/* Recomputes every leaf and every stored hash, checks every stored checkpoint's signature
 * and root and the consistency of successive checkpoints, and that the log holds at least
 * as many entries as its latest checkpoint. trusted_vkey (may be NULL) is a verifier key
 * string kept elsewhere: key.pub must equal it. trusted_note (may be NULL) is a checkpoint
 * kept elsewhere: it must verify and the log must extend it. Returns 0, RV_ECORRUPT with
 * report->bad_index or bad_checkpoint set, or RV_EKEY when a checkpoint is not signed by
 * the log's (or the trusted) key. Uses up to two threads. */
RV_NODISCARD int rv_audit_verify(struct rv_audit_log *log, const char *trusted_vkey,
                                 const char *trusted_note, struct rv_audit_report *report)
    RV_NONNULL(1, 4);

/* ------------------------------------------------------------------------------------------
 * Tests only.
 */

/* How many checkpoint records this process has read from checkpoints files so far: opening
 * a log reads one (more only to recover from a crash), rv_audit_verify reads them all. */
uint64_t rv_audit_test_cps_reads(void);

#endif /* RV_AUDIT_H */
