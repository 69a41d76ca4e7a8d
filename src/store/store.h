/*
 * store.h - the storage interface under the vault: ordered byte-string keys and values,
 * transactions, prefix scans.
 *
 * The vault keeps everything (sealed records, blind indexes, wrapped data keys, counters)
 * in one ordered key space. This header is all the vault knows about storage, so a second
 * back end (PostgreSQL: one bytea table keyed by bytea) can implement it later without the
 * vault changing. The embedded back end is LMDB: one environment per vault directory, the
 * default durable sync on every commit, and a write-through map so that a large
 * transaction's dirty pages live in the file's page cache rather than in the heap.
 *
 * Rules, as in LMDB: one write transaction at a time per store (others wait); results are
 * borrowed until the transaction that returned them ends; a transaction and its cursors are
 * used by one thread. After any failure inside a write transaction, the only valid calls on
 * it are rv_store_abort and the functions that free cursors (errors are sticky).
 */
#ifndef RV_STORE_H
#define RV_STORE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rv_store;
struct rv_txn;
struct rv_cursor;

/* Opens (creating if absent) the store in directory dir, which must exist. The handle is
 * owned by the caller: free with rv_store_close. RV_EBUSY if another process holds it
 * in a way that prevents opening, RV_ECORRUPT if the files are not a store. */
RV_NODISCARD int rv_store_open(const char *dir, struct rv_store **out) RV_NONNULL(1, 2);
/* How rv_store_open_opts opens a store; all zero is rv_store_open's. */
struct rv_store_opts {
    /* A small store of short, frequent write transactions (the access gate's state): no
     * write-through map, so that a commit writes only its dirty pages and syncs the file,
     * where a write-through map would sync the whole map; and a map of its own size. */
    bool small;
};
/* As rv_store_open, with options (NULL: the defaults). */
RV_NODISCARD int rv_store_open_opts(const char *dir, const struct rv_store_opts *opts,
                                    struct rv_store **out) RV_NONNULL(1, 3);
/* Closes the store. Every transaction must have ended. NULL is allowed. */
void rv_store_close(struct rv_store *s);

/* Makes sure at least `bytes` more can be written before the map is full, growing it if
 * needed. Call outside any transaction of the calling thread (RV_EBUSY otherwise): it waits
 * until the other threads' transactions have ended (a write transaction first, without
 * holding readers back), and holds new ones back while it maps the file again. */
RV_NODISCARD int rv_store_reserve(struct rv_store *s, uint64_t bytes) RV_NONNULL(1);
/* Opens a new, empty scratch file inside the store's directory, for writing and reading,
 * that has no name (it is gone when closed, or when the process dies) and returns its file
 * descriptor in *fd (close it with close). For data a transaction sorts on disk before
 * storing it; what goes into it is the caller's to seal. */
RV_NODISCARD int rv_store_scratch_file(struct rv_store *s, int *fd) RV_NONNULL(1, 2);
/* Bytes of the store currently in use (pages written), for reports. */
uint64_t rv_store_used(struct rv_store *s);

/* Brings the pages in use into the page cache and into this process's map (page tables),
 * on a thread of the store's own (which takes no signal), and returns at once: for a
 * long-running reader (the daemon) at start, so that its first reads neither wait for the
 * disk nor take a page fault each (a check at 10 million electors otherwise faults on two
 * or three pages of the map). The pages are the file's own, shared with the page cache: no
 * memory is allocated for them, though they count in the process's resident size. Only a
 * hint: 1 when started; 0 when there is nothing to do (an empty store, one larger than half
 * the memory this process may use, a prefetch already running, or no /proc to find the
 * map in); RV_ENOMEM when the thread could not start. A growth of the map (which maps the
 * file again) stops it; a later call may start it again. rv_store_prefetch_wait waits until
 * it is done (for a benchmark of the steady state); rv_store_close stops it. */
int rv_store_prefetch(struct rv_store *s) RV_NONNULL(1);
void rv_store_prefetch_wait(struct rv_store *s) RV_NONNULL(1);

/* Begins a transaction: read-only when write is false. The transaction is owned by the
 * caller until rv_store_commit or rv_store_abort, which free it. */
RV_NODISCARD int rv_store_begin(struct rv_store *s, bool write, struct rv_txn **out)
    RV_NONNULL(1, 3);
/* Commits and frees the transaction (durably, for a write transaction: when this returns
 * 0 the data is on disk). On failure nothing of the transaction is stored, and the
 * transaction is freed all the same. RV_ETOOBIG when the map filled up: reserve more and
 * redo the work. */
RV_NODISCARD int rv_store_commit(struct rv_txn *t) RV_NONNULL(1);
/* Abandons and frees the transaction. NULL is allowed. */
void rv_store_abort(struct rv_txn *t);

/* Ends a read-only transaction but keeps it, with its cursors and its reader slot, for
 * rv_store_renew: for a reader that begins many short snapshots (the matcher, one per
 * check), renewing costs less than beginning afresh. Results borrowed from it are invalid
 * from here. Free it with rv_store_abort, reset or not. */
void rv_store_reset(struct rv_txn *t) RV_NONNULL(1);
/* Starts a new snapshot in a transaction that rv_store_reset ended. On failure the
 * transaction stays reset (only rv_store_abort is then valid, or another renew). */
RV_NODISCARD int rv_store_renew(struct rv_txn *t) RV_NONNULL(1);
/* The snapshot's id: two read transactions with the same id see the same committed data
 * (any commit makes a greater one). */
uint64_t rv_store_snapshot_id(struct rv_txn *t) RV_NONNULL(1);

/* Looks key up. On success *val and *vlen point into the store, borrowed until the
 * transaction ends or the next write in it. RV_ENOTFOUND if absent. */
RV_NODISCARD int rv_store_get(struct rv_txn *t, const void *key, size_t klen, const void **val,
                              size_t *vlen) RV_NONNULL(1, 2, 4, 5);
/* Stores key -> val, replacing any previous value. RV_ETOOBIG when the map is full (the
 * transaction is then dead: abort it). Keys are 1..511 bytes. */
RV_NODISCARD int rv_store_put(struct rv_txn *t, const void *key, size_t klen, const void *val,
                              size_t vlen) RV_NONNULL(1, 2);
/* As rv_store_put, but RV_EEXIST (and nothing written) when the key is already present. */
RV_NODISCARD int rv_store_insert(struct rv_txn *t, const void *key, size_t klen, const void *val,
                                 size_t vlen) RV_NONNULL(1, 2);
/* As rv_store_put, for a key greater than every key in the store: much faster for
 * sequential keys. RV_EINVAL if the key is not the greatest. */
RV_NODISCARD int rv_store_append(struct rv_txn *t, const void *key, size_t klen, const void *val,
                                 size_t vlen) RV_NONNULL(1, 2);
/* As rv_store_put, for a run of keys in ascending order interleaved with other writes: the
 * run keeps a position of its own, so each put starts from the page of the one before
 * instead of from the root. Any order is correct; ascending is what makes it fast. */
RV_NODISCARD int rv_store_put_run(struct rv_txn *t, const void *key, size_t klen, const void *val,
                                  size_t vlen) RV_NONNULL(1, 2);
/* As rv_store_get, through the position rv_store_put_run keeps: for keys in ascending
 * order, a key on the page of the one before is found without a descent from the root. A
 * later rv_store_put_run of the same key writes where this found it. */
RV_NODISCARD int rv_store_get_run(struct rv_txn *t, const void *key, size_t klen, const void **val,
                                  size_t *vlen) RV_NONNULL(1, 2, 4, 5);
/* Deletes key. RV_ENOTFOUND if absent. */
RV_NODISCARD int rv_store_del(struct rv_txn *t, const void *key, size_t klen) RV_NONNULL(1, 2);

/* Called for each key starting with the prefix, in key order. Return 0 to go on, a
 * positive value to stop (rv_store_scan then returns 0), or a negative RV_E* code to stop
 * and return it. Key and value are borrowed for the duration of the call; the callback
 * must not write to the transaction. */
typedef int (*rv_store_scan_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                                size_t vlen);
RV_NODISCARD int rv_store_scan(struct rv_txn *t, const void *prefix, size_t plen,
                               rv_store_scan_fn fn, void *ctx) RV_NONNULL(1, 4);

/* A cursor over keys starting with a prefix. Owned by the caller; free with
 * rv_store_cursor_close before the transaction ends. */
RV_NODISCARD int rv_store_cursor_open(struct rv_txn *t, const void *prefix, size_t plen,
                                      struct rv_cursor **out) RV_NONNULL(1, 4);
/* Moves to the next key with the prefix (the first, on the first call). Returns 1 with a
 * key, 0 when there are no more, or a negative code. key/val are borrowed until the next
 * call on the cursor or a write in the transaction. */
RV_NODISCARD int rv_store_cursor_next(struct rv_cursor *c, const uint8_t **key, size_t *klen,
                                      const uint8_t **val, size_t *vlen) RV_NONNULL(1, 2, 3, 4, 5);
/* Deletes the key the cursor is on; the next rv_store_cursor_next returns the key after
 * it. */
RV_NODISCARD int rv_store_cursor_del(struct rv_cursor *c) RV_NONNULL(1);
void rv_store_cursor_close(struct rv_cursor *c);

/* Deletes, in write transaction t, every record whose key starts with prefix, except those
 * keep (NULL: none) keeps: it sees each key and returns true to keep the record. Returns 0
 * or the store's error (the transaction is then the caller's to abort). */
typedef bool (*rv_store_keep_fn)(void *ctx, const uint8_t *key, size_t klen);
RV_NODISCARD int rv_store_del_prefix(struct rv_txn *t, const void *prefix, size_t plen,
                                     rv_store_keep_fn keep, void *ctx) RV_NONNULL(1);

#endif /* RV_STORE_H */
