/*
 * log.c - the audit log on disk: group-committed appends, crash recovery, checkpoints,
 * proofs, subject search and full verification.
 *
 * Durability order. An append batch writes its entry records, their index slots and their
 * stored hashes, then fdatasyncs the entry file only, and only then acknowledges. The entry
 * file is the record of truth: each record carries a prefix of its own leaf hash, so a torn
 * record is recognised. A checkpoint first fdatasyncs the index and hash store, then
 * appends the signed note to the checkpoints file and syncs it, then replaces `checkpoint`
 * (write, fsync, rename). So everything up to the latest checkpoint is durable in all three
 * files, and on reopen the log rebuilds the index and hashes of the records after it from
 * the entry file, and cuts the files back to the last whole record. Opening finds the latest
 * checkpoint with one read, as the record at the end of `checkpoints` that `checkpoint`
 * repeats; only when they differ (a crash between the two writes) is the whole file read.
 *
 * Group commit. Appenders encode and hash their entry on their own thread, then push a
 * small waiter (on their own stack) onto a lock-free queue. Whoever holds the commit turn
 * takes the whole queue at once, writes it (records, index slots, hashes), syncs it,
 * answers every waiter it took and wakes exactly those threads, with one futex call;
 * appends that arrive during the sync join the next queue. An appender that finds the turn
 * free takes it and commits inline until its own call is answered (a lone or lightly
 * loaded appender thus pays no hand-over); if work is left when it gives the turn up, it
 * rouses the log's committer thread, which keeps the turn for as long as the queue refills
 * during each sync. Under load an append so costs its caller one sleep and one wake-up,
 * and no thread ever waits for a lock held across a write. There are two queues, by
 * parity of a generation number, each with its own futex word, so a wake-up reaches only
 * the threads whose entries are durable. An asynchronous append (rv_audit_append_async)
 * pushes a waiter of its own in the heap, rouses the committer if nobody holds the turn, and
 * returns; the commit that answers it calls its callback after waking the sleepers, and
 * frees it. A thread's group (rv_audit_group_enter) turns its single appends into
 * asynchronous ones counted by the group, and code above the log may hold the group
 * (rv_audit_group_hold) for a durable write of its own that it finishes on another thread:
 * the group answers once its entries are durable and every hold is released. Checkpoints are signed
 * by a separate thread, so they never hold up an append. Any write or sync failure sets a sticky
 * RV_EAUDIT: every waiting and later append fails, and nothing more is written until the log is
 * reopened.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN        16
#define FORMAT_VERSION 1
#define TRAILER_LEN    8 /* leading bytes of the leaf hash after each entry record */
#define REC_OVERHEAD   (4 + TRAILER_LEN)
#define PREALLOC_BYTES (4u << 20) /* entries file grows in zero-filled steps of this */
#define DEFAULT_EVERY  1000
#define DEFAULT_MS     10000
#define DEFAULT_ORIGIN "regvault/audit"

static const char MAGIC_ENT[8] = "RVAUDENT";
static const char MAGIC_IDX[8] = "RVAUDIDX";
static const char MAGIC_HSH[8] = "RVAUDHSH";
static const char MAGIC_CPS[8] = "RVAUDCPS";

struct batch {
    uint8_t *buf; /* framed records */
    size_t len, cap;
    uint8_t (*leaf)[32];
    size_t n, ncap;
};

/* One call's entries, on its caller's stack until a commit has answered it. The caller
 * fills it before pushing it; the commit that takes it reads it, sets first and then state,
 * and never touches it after that (the caller may return at once). */
struct waiter {
    struct waiter *next;
    const uint8_t *recs; /* framed records */
    size_t len, n;
    const uint8_t (*leaves)[32];
    uint64_t first;    /* entry number of the first of them */
    _Atomic int state; /* 0 while waiting, then 1 (durable) or a negative RV_E* code */
    /* An asynchronous append (rv_audit_append_async): the waiter and its records live in
     * one heap block that the commit answering it hands to done and then frees; nobody
     * waits on state. NULL for a caller that sleeps until state is set. */
    rv_audit_done_fn done;
    void *done_ctx;
};

struct rv_audit_log {
    char *dir;
    bool writable;
    int fd_ent, fd_idx, fd_hash, fd_cps, fd_lock;
    struct rv_audit_vkey vkey;
    uint8_t *sk; /* sodium_malloc, 64 bytes */
    uint64_t every;
    uint32_t every_ms;

    pthread_mutex_t mu;
    pthread_mutex_t cpmu;              /* one checkpoint at a time */
    _Atomic(struct waiter *) queue[2]; /* by parity of qgen: appends not yet taken, newest
                                          first */
    _Atomic uint32_t qgen;             /* new appends join queue[qgen & 1] */
    _Atomic uint32_t epoch[2];         /* by parity: bumped and futex-woken once every append
                                          taken from that queue has its answer */
    _Atomic int busy;                  /* the commit turn: only its holder takes a queue */
    _Atomic uint32_t kick;             /* bumped and futex-woken to rouse the committer */
    _Atomic bool cstop;                /* the committer should end once the queues are empty */
    _Atomic uint64_t durable;          /* = size, readable without mu */
    _Atomic int failed;                /* = err != 0, readable without mu */
    uint64_t size;                     /* durable entries */
    int err;                           /* sticky RV_EAUDIT */
    pthread_t committer;
    bool committer_started;

    /* Used only by the holder of the commit turn (busy), handed on with it. */
    struct batch flush;
    uint64_t end_off;   /* end of the last durable record in entries */
    uint64_t alloc_end; /* entries is zero-filled up to here */
    uint64_t cps_end;   /* end of the last checkpoint record */
    uint8_t frontier[64][32];
    uint8_t *hbuf;
    size_t hcap;
    uint64_t *ibuf;
    size_t icap;

    /* The latest checkpoint (under mu). */
    uint64_t cp_size;
    int64_t cp_time_ms;
    char cp_note[RV_AUDIT_NOTE_MAX];
    size_t cp_len;
    uint64_t tail_ignored;

    /* Read-only logs: what the checkpoint files held when opened, before the entries were
     * counted, so that a writer running meanwhile cannot make verify see a checkpoint
     * newer than the entries it counted. */
    uint64_t cps_snap;
    char *cpfile;
    size_t cpfile_len;
    int cpfile_rc;

    const uint8_t *hmap; /* read-only logs: the hash store, mapped */
    size_t hmap_len;

    pthread_t ticker;
    bool ticker_started, stop;
    pthread_cond_t tick;
};

static int64_t now_ms(void);

/* Sleeps while *w still holds seen (or until a signal or spurious wake-up). */
static void futex_wait(_Atomic uint32_t *w, uint32_t seen)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_bump(_Atomic uint32_t *w, int nwake)
{
    atomic_fetch_add(w, 1);
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, nwake, NULL, NULL, 0);
}

/* Makes the failure sticky: appends fail at once, and every commit after this answers its
 * waiters with RV_EAUDIT without writing. Called with mu held. */
static void fail_all(struct rv_audit_log *log)
{
    atomic_store(&log->failed, 1);
    futex_bump(&log->kick, 1);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RV_EIO;
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RV_EIO;
        if (r == 0)
            return RV_ECORRUPT;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint64_t file_size(int fd)
{
    struct stat st;

    if (fstat(fd, &st) != 0 || st.st_size < 0)
        return 0;
    return (uint64_t)st.st_size;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Largest power of two <= n (n > 0), and its log2. */
static uint64_t pow2_floor(uint64_t n, unsigned *lg)
{
    unsigned l = 63 - (unsigned)__builtin_clzll(n);

    *lg = l;
    return (uint64_t)1 << l;
}

/* Largest power of two < n (n > 1). */
static uint64_t split_point(uint64_t n)
{
    unsigned l;

    return pow2_floor(n - 1, &l);
}

static int read_hash(struct rv_audit_log *log, uint64_t idx, uint8_t out[32])
{
    /* A read-only log maps the hash store once: a proof is then a few dozen loads. */
    if (log->hmap != NULL && HDR_LEN + (idx + 1) * 32 <= log->hmap_len) {
        memcpy(out, log->hmap + HDR_LEN + idx * 32, 32);
        return 0;
    }
    return pread_all(log->fd_hash, out, 32, HDR_LEN + idx * 32);
}

/* MTH(D[lo:hi]) from the hash store; lo must be a multiple of a power of two >= hi - lo,
 * which holds for every range RFC 9162 proofs ask for. At most log2 reads. */
static int subtree_hash(struct rv_audit_log *log, uint64_t lo, uint64_t hi, uint8_t out[32])
{
    uint8_t parts[64][32];
    int np = 0, rc;

    if (hi == lo) {
        crypto_hash_sha256(out, NULL, 0);
        return 0;
    }
    while (lo < hi) {
        unsigned lg;
        uint64_t k = pow2_floor(hi - lo, &lg);
        if ((lo & (k - 1)) != 0)
            return RV_EINVAL;
        rc = read_hash(log, rv_audit_stored_hash_index(lg, lo >> lg), parts[np++]);
        if (rc != 0)
            return rc;
        lo += k;
    }
    if (np == 0)
        return RV_EINVAL;
    memcpy(out, parts[np - 1], 32);
    for (int i = np - 2; i >= 0; i--)
        rv_audit_node_hash(parts[i], out, out);
    return 0;
}

/* Adds leaf h to the frontier of a tree of n leaves; writes the stored hashes it completes
 * (1 + trailing ones of n) to out and returns how many. */
static size_t frontier_add(uint8_t frontier[64][32], uint64_t n, const uint8_t h[32],
                           uint8_t (*out)[32])
{
    uint8_t cur[32];
    size_t k = 0;
    unsigned l = 0;

    memcpy(cur, h, 32);
    memcpy(out[k++], cur, 32);
    while (((n >> l) & 1) != 0) {
        rv_audit_node_hash(frontier[l], cur, cur);
        memcpy(out[k++], cur, 32);
        l++;
    }
    memcpy(frontier[l], cur, 32);
    return k;
}

static int load_frontier(struct rv_audit_log *log, uint64_t n)
{
    for (unsigned l = 0; l < 64; l++) {
        if (((n >> l) & 1) == 0)
            continue;
        uint64_t lo = (n >> (l + 1)) << (l + 1);
        int rc = read_hash(log, rv_audit_stored_hash_index(l, lo >> l), log->frontier[l]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int write_header(int fd, const char magic[8])
{
    uint8_t h[HDR_LEN] = {0};

    memcpy(h, magic, 8);
    put_u32(h + 8, FORMAT_VERSION);
    return pwrite_all(fd, h, HDR_LEN, 0);
}

static int check_header(int fd, const char magic[8])
{
    uint8_t h[HDR_LEN];

    static const uint8_t zero[4] = {0};

    if (pread_all(fd, h, HDR_LEN, 0) != 0 || memcmp(h, magic, 8) != 0 ||
        memcmp(h + 12, zero, 4) != 0)
        return RV_ECORRUPT;
    if (get_u32(h + 8) != FORMAT_VERSION)
        return RV_EVERSION;
    return 0;
}

/* Writes data to dir/name via a temporary file: write, fsync, rename. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = path_join(dir, name), *tmp = NULL;
    int fd = -1, rc = RV_ENOMEM;

    if (path == NULL)
        goto out;
    tmp = malloc(strlen(path) + 5);
    if (tmp == NULL)
        goto out;
    sprintf(tmp, "%s.tmp", path);
    rc = RV_EIO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    if (pwrite_all(fd, data, len, 0) != 0 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp != NULL)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

static int read_small_file(const char *dir, const char *name, char *buf, size_t cap, size_t *len)
{
    char *path = path_join(dir, name);
    int fd = -1, rc = RV_ENOMEM;
    ssize_t r;

    if (path == NULL)
        goto out;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
        goto out;
    }
    r = read(fd, buf, cap - 1);
    if (r < 0) {
        rc = RV_EIO;
        goto out;
    }
    if ((size_t)r == cap - 1) {
        rc = RV_ETOOBIG;
        goto out;
    }
    buf[r] = '\0';
    *len = (size_t)r;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Checkpoints file: records of u32le length, the note, and 8 bytes of SHA-256(note).
 */

/* Checkpoint records read from checkpoints files in this process (for the tests). */
static _Atomic uint64_t cps_reads;

uint64_t rv_audit_test_cps_reads(void)
{
    return atomic_load(&cps_reads);
}

/* Reads checkpoint record at *off. 1 with a record, 0 at a clean end, RV_ECORRUPT for a
 * bad record (torn is true if it runs past the end of the file). */
static int cps_read(int fd, uint64_t fsize, uint64_t *off, char *note, size_t *len, bool *torn)
{
    uint8_t lenb[4], trailer[TRAILER_LEN], h[32];
    uint32_t n;

    *torn = false;
    if (*off == fsize)
        return 0;
    atomic_fetch_add_explicit(&cps_reads, 1, memory_order_relaxed);
    if (fsize - *off < 4) {
        *torn = true;
        return RV_ECORRUPT;
    }
    if (pread_all(fd, lenb, 4, *off) != 0)
        return RV_ECORRUPT;
    n = get_u32(lenb);
    if (n == 0 || n >= RV_AUDIT_NOTE_MAX)
        return RV_ECORRUPT;
    if (fsize - *off < 4 + (uint64_t)n + TRAILER_LEN) {
        *torn = true;
        return RV_ECORRUPT;
    }
    if (pread_all(fd, note, n, *off + 4) != 0 ||
        pread_all(fd, trailer, TRAILER_LEN, *off + 4 + n) != 0)
        return RV_ECORRUPT;
    crypto_hash_sha256(h, (const uint8_t *)note, n);
    if (memcmp(h, trailer, TRAILER_LEN) != 0)
        return RV_ECORRUPT;
    note[n] = '\0';
    *len = n;
    *off += 4 + n + TRAILER_LEN;
    return 1;
}

/* True when the bytes of the checkpoints file before end finish with the whole record of
 * note (len bytes): its length, the note, its trailer. One read, whatever the file's size. */
static bool cps_ends_with(int fd, uint64_t end, const char *note, size_t len)
{
    uint8_t rec[4 + RV_AUDIT_NOTE_MAX + TRAILER_LEN], h[32];
    uint64_t rlen = 4 + (uint64_t)len + TRAILER_LEN;

    if (len == 0 || len >= RV_AUDIT_NOTE_MAX || end < HDR_LEN + rlen)
        return false;
    atomic_fetch_add_explicit(&cps_reads, 1, memory_order_relaxed);
    if (pread_all(fd, rec, (size_t)rlen, end - rlen) != 0 || get_u32(rec) != len ||
        memcmp(rec + 4, note, len) != 0)
        return false;
    crypto_hash_sha256(h, rec + 4, len);
    return memcmp(h, rec + 4 + len, TRAILER_LEN) == 0;
}

/* Signs a checkpoint of the durable tree unless the latest already covers it. Takes cpmu,
 * so checkpoints are made one at a time; appends go on meanwhile. Mutex mu not held. */
static int do_checkpoint(struct rv_audit_log *log)
{
    struct rv_audit_checkpoint c;
    char body[RV_AUDIT_NOTE_MAX], note[RV_AUDIT_NOTE_MAX];
    uint8_t rec[4 + RV_AUDIT_NOTE_MAX + TRAILER_LEN], h[32];
    uint64_t size;
    long blen, nlen;
    int rc = RV_EAUDIT;

    pthread_mutex_lock(&log->cpmu);
    pthread_mutex_lock(&log->mu);
    size = log->size;
    rc = log->err;
    if (rc == 0 && size == log->cp_size && log->cp_len > 0)
        rc = 1;
    pthread_mutex_unlock(&log->mu);
    if (rc != 0) {
        rc = rc == 1 ? 0 : RV_EAUDIT;
        goto out;
    }
    rc = RV_EAUDIT;
    /* Everything the checkpoint covers must be durable in the index and hash store too:
     * recovery trusts them below the latest checkpoint. */
    if (fdatasync(log->fd_idx) != 0 || fdatasync(log->fd_hash) != 0)
        goto out;
    memset(&c, 0, sizeof(c));
    memcpy(c.origin, log->vkey.name, sizeof(c.origin));
    c.size = size;
    if (subtree_hash(log, 0, size, c.root) != 0)
        goto out;
    blen = rv_audit_checkpoint_body(&c, body, sizeof(body));
    if (blen < 0)
        goto out;
    nlen = rv_audit_note_sign(body, (size_t)blen, &log->vkey, log->sk, note, sizeof(note));
    if (nlen < 0)
        goto out;
    put_u32(rec, (uint32_t)nlen);
    memcpy(rec + 4, note, (size_t)nlen);
    crypto_hash_sha256(h, (const uint8_t *)note, (size_t)nlen);
    memcpy(rec + 4 + nlen, h, TRAILER_LEN);
    if (pwrite_all(log->fd_cps, rec, 4 + (size_t)nlen + TRAILER_LEN, log->cps_end) != 0 ||
        fdatasync(log->fd_cps) != 0)
        goto out;
    log->cps_end += 4 + (uint64_t)nlen + TRAILER_LEN;
    if (write_atomic(log->dir, "checkpoint", note, (size_t)nlen) != 0)
        goto out;
    pthread_mutex_lock(&log->mu);
    log->cp_size = size;
    log->cp_time_ms = now_ms();
    memcpy(log->cp_note, note, (size_t)nlen + 1);
    log->cp_len = (size_t)nlen;
    pthread_mutex_unlock(&log->mu);
    rc = 0;
out:
    if (rc != 0) {
        pthread_mutex_lock(&log->mu);
        log->err = RV_EAUDIT;
        fail_all(log);
        pthread_mutex_unlock(&log->mu);
    }
    pthread_mutex_unlock(&log->cpmu);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Appends.
 */

static int batch_reserve(struct batch *b, size_t bytes, size_t n)
{
    if (b->len + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        uint8_t *p;
        while (cap < b->len + bytes)
            cap *= 2;
        p = realloc(b->buf, cap);
        if (p == NULL)
            return RV_ENOMEM;
        b->buf = p;
        b->cap = cap;
    }
    if (b->n + n > b->ncap) {
        size_t ncap = b->ncap ? b->ncap : 1024;
        uint8_t(*p)[32];
        while (ncap < b->n + n)
            ncap *= 2;
        p = realloc(b->leaf, ncap * 32);
        if (p == NULL)
            return RV_ENOMEM;
        b->leaf = p;
        b->ncap = ncap;
    }
    return 0;
}

/* Writes log->flush (entries n0 ...) and syncs it. Holder of the commit turn only, mutex not
 * held. */
static int flush_batch(struct rv_audit_log *log, uint64_t n0)
{
    struct batch *b = &log->flush;
    uint64_t h0 = rv_audit_stored_hash_count(n0);
    uint64_t nh = rv_audit_stored_hash_count(n0 + b->n) - h0;
    uint64_t off = log->end_off;
    size_t k = 0, pos = 0;

    if (nh > log->hcap) {
        uint8_t *p = realloc(log->hbuf, (size_t)nh * 2 * 32);
        if (p == NULL)
            return RV_ENOMEM;
        log->hbuf = p;
        log->hcap = (size_t)nh * 2;
    }
    if (b->n > log->icap) {
        uint64_t *p = realloc(log->ibuf, b->n * 2 * sizeof(uint64_t));
        if (p == NULL)
            return RV_ENOMEM;
        log->ibuf = p;
        log->icap = b->n * 2;
    }
    for (size_t i = 0; i < b->n; i++) {
        uint32_t len = get_u32(b->buf + pos);
        uint64_t o = off + pos;
        uint8_t *ib = (uint8_t *)&log->ibuf[i];
        for (int j = 0; j < 8; j++)
            ib[j] = (uint8_t)(o >> (8 * j));
        pos += REC_OVERHEAD + len;
        k += frontier_add(log->frontier, n0 + i, b->leaf[i], (uint8_t(*)[32])(log->hbuf + k * 32));
    }
    /* Writing into blocks that already exist lets fdatasync skip the inode: grow the file
     * ahead of the records, with real zeros (recovery stops at a zero length). */
    if (off + b->len > log->alloc_end) {
        static const uint8_t zeros[65536];
        uint64_t end = (off + b->len + PREALLOC_BYTES - 1) / PREALLOC_BYTES * PREALLOC_BYTES;
        for (uint64_t z = log->alloc_end; z < end;) {
            size_t w = end - z < sizeof(zeros) ? (size_t)(end - z) : sizeof(zeros);
            if (pwrite_all(log->fd_ent, zeros, w, z) != 0)
                return RV_EAUDIT;
            z += w;
        }
        log->alloc_end = end;
    }
    if (pwrite_all(log->fd_ent, b->buf, b->len, off) != 0 ||
        pwrite_all(log->fd_idx, log->ibuf, b->n * 8, HDR_LEN + n0 * 8) != 0 ||
        pwrite_all(log->fd_hash, log->hbuf, k * 32, HDR_LEN + h0 * 32) != 0 ||
        fdatasync(log->fd_ent) != 0)
        return RV_EAUDIT;
    log->end_off = off + b->len;
    return 0;
}

static bool checkpoint_due(struct rv_audit_log *log)
{
    if (log->size == log->cp_size)
        return false;
    return log->size - log->cp_size >= log->every ||
           now_ms() - log->cp_time_ms >= (int64_t)log->every_ms;
}

/* Answers the appends of one queue (list, oldest first), taken from queue[p]: numbers
 * them, writes and syncs them as one batch unless the log has failed, publishes the new
 * size, sets every waiter's state and wakes their threads. Holder of the commit turn
 * only. */
static void commit(struct rv_audit_log *log, struct waiter *list, uint32_t p)
{
    struct batch *b = &log->flush;
    struct waiter *w, *nx, *async = NULL;
    uint64_t n0 = log->size; /* only the turn's holder changes it */
    size_t bytes = 0, n = 0;
    int rc = atomic_load(&log->failed) ? RV_EAUDIT : 0, state;

    for (w = list; w != NULL; w = w->next) {
        bytes += w->len;
        n += w->n;
    }
    b->len = 0;
    b->n = 0;
    if (rc == 0)
        rc = batch_reserve(b, bytes, n);
    if (rc == 0) {
        for (w = list; w != NULL; w = w->next) {
            memcpy(b->buf + b->len, w->recs, w->len);
            b->len += w->len;
            memcpy(b->leaf + b->n, w->leaves, w->n * 32);
            w->first = n0 + b->n;
            b->n += w->n;
        }
        if (flush_batch(log, n0) != 0)
            rc = RV_EAUDIT;
    }
    pthread_mutex_lock(&log->mu);
    if (rc == RV_EAUDIT && log->err == 0) {
        log->err = RV_EAUDIT;
        atomic_store(&log->failed, 1);
    }
    if (rc == 0)
        log->size = n0 + b->n;
    atomic_store(&log->durable, log->size);
    if (rc == 0 && log->err != 0)
        rc = RV_EAUDIT; /* durable, but the log failed meanwhile: fail closed */
    if (log->err == 0 && log->size - log->cp_size >= log->every)
        pthread_cond_signal(&log->tick);
    pthread_mutex_unlock(&log->mu);
    /* A waiter may return as soon as its state is set: read next first. Asynchronous
     * appends are kept aside and answered after the sleepers are woken. */
    state = rc == 0 ? 1 : rc;
    for (w = list; w != NULL; w = nx) {
        nx = w->next;
        if (w->done != NULL) {
            w->next = async;
            async = w;
            continue;
        }
        atomic_store_explicit(&w->state, state, memory_order_release);
    }
    futex_bump(&log->epoch[p], INT_MAX);
    for (w = async; w != NULL; w = nx) {
        nx = w->next;
        w->done(w->done_ctx, rc == 0 ? 0 : rc, rc == 0 ? w->first : UINT64_MAX);
        free(w);
    }
}

/* Takes the current queue (new appends then join the other one) and commits it. False if
 * both queues were empty. Holder of the commit turn only. */
static bool commit_next(struct rv_audit_log *log)
{
    uint32_t g = atomic_load(&log->qgen), p = g & 1;
    struct waiter *w, *list = NULL, *nx;

    /* An append that read qgen just before this and still pushes here is taken next time
     * round but one. */
    atomic_store(&log->qgen, g + 1);
    w = atomic_exchange(&log->queue[p], NULL);
    if (w == NULL)
        return atomic_load(&log->queue[p ^ 1]) != NULL;
    for (; w != NULL; w = nx) {
        nx = w->next;
        w->next = list;
        list = w;
    }
    commit(log, list, p);
    return true;
}

static bool queued(struct rv_audit_log *log)
{
    return atomic_load(&log->queue[0]) != NULL || atomic_load(&log->queue[1]) != NULL;
}

static bool take_turn(struct rv_audit_log *log)
{
    int zero = 0;

    return atomic_load(&log->busy) == 0 && atomic_compare_exchange_strong(&log->busy, &zero, 1);
}

/* The committer thread: takes the turn whenever appends are queued and nobody holds it,
 * and keeps it until the queue stays empty through a commit; ends when asked to, once the
 * queues are empty.
 *
 * No append is left behind: whoever gives up the turn (store busy = 0) then looks at the
 * queues, and an appender pushes, then tries to take the turn. So either the one leaving
 * sees the entry (the committer loops; an inline leader kicks the committer), or the
 * appender takes the turn itself. The committer sleeps only after reading kick, so a kick
 * after that read is never missed. */
static void *committer_main(void *arg)
{
    struct rv_audit_log *log = arg;

    for (;;) {
        uint32_t seen = atomic_load(&log->kick);

        if (queued(log)) {
            if (take_turn(log)) {
                while (commit_next(log))
                    ;
                atomic_store(&log->busy, 0);
                continue;
            }
        } else if (atomic_load(&log->cstop)) {
            break;
        }
        futex_wait(&log->kick, seen);
    }
    return NULL;
}

static void committer_stop(struct rv_audit_log *log)
{
    if (!log->committer_started)
        return;
    atomic_store(&log->cstop, true);
    futex_bump(&log->kick, 1);
    pthread_join(log->committer, NULL);
    log->committer_started = false;
}

/* One entry of up to this many bytes (a check's, with its few subjects) is encoded on the
 * stack; a larger one, or a batch, in the heap. */
#define SMALL_ENTRY 2048

/* Pushes w onto the current queue; returns its parity. */
static uint32_t push(struct rv_audit_log *log, struct waiter *w)
{
    uint32_t q = atomic_load(&log->qgen) & 1;

    w->next = atomic_load(&log->queue[q]);
    while (!atomic_compare_exchange_weak(&log->queue[q], &w->next, w))
        ;
    return q;
}

/* rv_audit_append_async; kick: rouse the committer unless the turn is held. A group's
 * entries are not kicked: their holder commits them (rv_audit_group_commit) or, finding the
 * turn held, leaves them to its holder, who looks at the queues when it gives the turn up;
 * so a lone daemon thread pays no wake-up of the committer per entry. */
static int append_async(struct rv_audit_log *log, const struct rv_audit_entry *e,
                        rv_audit_done_fn fn, void *ctx, bool kick)
{
    uint8_t small[REC_OVERHEAD + SMALL_ENTRY], *big = NULL, *src = small, *recs, *leaf;
    struct rv_audit_entry copy = *e;
    struct waiter *w = NULL;
    size_t elen = 0, len;
    int rc;

    if (!log->writable)
        return RV_EUNSUPPORTED;
    if (copy.time_ms == 0)
        copy.time_ms = now_ms();
    rc = rv_audit_entry_encode(&copy, small + 4, SMALL_ENTRY, &elen);
    if (rc == RV_ETOOBIG) {
        if ((big = malloc(REC_OVERHEAD + RV_AUDIT_ENTRY_MAX)) == NULL)
            return RV_ENOMEM;
        src = big;
        rc = rv_audit_entry_encode(&copy, big + 4, RV_AUDIT_ENTRY_MAX, &elen);
    }
    if (rc != 0)
        goto out;
    if (atomic_load(&log->failed)) {
        rc = RV_EAUDIT; /* sticky: refuse at once, without writing */
        goto out;
    }
    /* The waiter, the leaf hash and the framed record in one block, freed by the commit. */
    len = REC_OVERHEAD + elen;
    if ((w = malloc(sizeof(*w) + 32 + len)) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    leaf = (uint8_t *)(w + 1);
    recs = leaf + 32;
    put_u32(recs, (uint32_t)elen);
    memcpy(recs + 4, src + 4, elen);
    rv_audit_leaf_hash(recs + 4, elen, leaf);
    memcpy(recs + 4 + elen, leaf, TRAILER_LEN);
    w->recs = recs;
    w->len = len;
    w->leaves = (const uint8_t(*)[32])leaf;
    w->n = 1;
    w->first = 0;
    atomic_init(&w->state, 0);
    w->done = fn;
    w->done_ctx = ctx;
    (void)push(log, w);
    /* The committer thread writes it: rouse it unless someone holds the turn, who then looks
     * at the queues again after giving the turn up (see committer_main). */
    if (kick && atomic_load(&log->busy) == 0)
        futex_bump(&log->kick, 1);
out:
    if (big != NULL) {
        sodium_memzero(big, REC_OVERHEAD + RV_AUDIT_ENTRY_MAX);
        free(big);
    }
    return rc;
}

int rv_audit_append_async(struct rv_audit_log *log, const struct rv_audit_entry *e,
                          rv_audit_done_fn fn, void *ctx)
{
    return append_async(log, e, fn, ctx, true);
}

/* ------------------------------------------------------------------------------------------
 * Groups: a thread's single appends that join a group do not wait (rv_audit_group_enter).
 */
struct rv_audit_group {
    /* One per entry in flight, one per hold (rv_audit_group_hold) not yet released, one for
     * the creator until close; also the futex word that rv_audit_group_wait sleeps on. */
    _Atomic uint32_t refs;
    _Atomic bool waiting;     /* the holder sleeps in rv_audit_group_wait */
    _Atomic int rc;           /* the first failure, or 0 */
    bool handoff;             /* never commit on the holder's thread (rv_audit_group_handoff) */
    struct rv_audit_log *log; /* the log of the latest entry taken (creator's thread only) */
    rv_audit_group_fn fn;
    void *ctx;
};

static _Thread_local struct rv_audit_group *thread_group;

int rv_audit_group_new(rv_audit_group_fn fn, void *ctx, struct rv_audit_group **out)
{
    struct rv_audit_group *g = malloc(sizeof(*g));

    *out = NULL;
    if (g == NULL)
        return RV_ENOMEM;
    atomic_init(&g->refs, 1);
    atomic_init(&g->waiting, false);
    atomic_init(&g->rc, 0);
    g->handoff = false;
    g->log = NULL;
    g->fn = fn;
    g->ctx = ctx;
    *out = g;
    return 0;
}

struct rv_audit_group *rv_audit_group_enter(struct rv_audit_group *g)
{
    struct rv_audit_group *old = thread_group;

    thread_group = g;
    return old;
}

bool rv_audit_group_settled(struct rv_audit_group *g)
{
    return atomic_load(&g->refs) == 1;
}

void rv_audit_group_handoff(struct rv_audit_group *g)
{
    g->handoff = true;
}

void rv_audit_group_commit(struct rv_audit_group *g)
{
    struct rv_audit_log *log = g->log;

    if (log == NULL || rv_audit_group_settled(g))
        return;
    if (g->handoff) {
        /* The committer thread writes them: rouse it unless the turn is held, whose holder
         * looks at the queues again when it gives the turn up (see committer_main). */
        if (atomic_load(&log->busy) == 0)
            futex_bump(&log->kick, 1);
        return;
    }
    if (!take_turn(log))
        return;
    /* As an inline rv_audit_append: commit until the group's entries are answered (they
     * were queued before the turn was taken), then hand any work left to the committer. */
    while (!rv_audit_group_settled(g) && commit_next(log))
        ;
    atomic_store(&log->busy, 0);
    if (queued(log))
        futex_bump(&log->kick, 1);
}

static void group_drop(struct rv_audit_group *g)
{
    bool waiting = atomic_load(&g->waiting);
    uint32_t was = atomic_fetch_sub(&g->refs, 1);

    if (was == 1) {
        g->fn(g->ctx, atomic_load(&g->rc));
        free(g);
    } else if (was == 2 && waiting) {
        /* Settled: wake the holder. It may close and free g as soon as refs is 1, so the
         * word is not written again; a wake-up at a freed address only wakes nobody (as
         * with a mutex unlocked just before it is destroyed). */
        syscall(SYS_futex, &g->refs, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static void group_one_done(void *ctx, int rc, uint64_t index)
{
    struct rv_audit_group *g = ctx;
    int zero = 0;

    (void)index;
    if (rc != 0)
        (void)atomic_compare_exchange_strong(&g->rc, &zero, rc);
    group_drop(g);
}

struct rv_audit_group *rv_audit_group_hold(void)
{
    struct rv_audit_group *g = thread_group;

    if (g != NULL)
        atomic_fetch_add(&g->refs, 1);
    return g;
}

void rv_audit_group_release(struct rv_audit_group *g, int rc)
{
    group_one_done(g, rc, UINT64_MAX);
}

void rv_audit_group_wait(struct rv_audit_group *g)
{
    uint32_t refs;

    /* waiting is set before refs is read: an entry answered after that read changes refs,
     * so the futex call returns at once, or its answerer saw waiting and wakes this one. */
    atomic_store(&g->waiting, true);
    for (;;) {
        rv_audit_group_commit(g);
        if ((refs = atomic_load(&g->refs)) == 1)
            break;
        futex_wait(&g->refs, refs);
    }
    atomic_store(&g->waiting, false);
}

int rv_audit_group_close(struct rv_audit_group *g, int *rc)
{
    uint32_t one = 1;

    /* Nobody has roused the committer for the group's entries: commit them here, or leave
     * them to the holder of the turn. */
    rv_audit_group_commit(g);
    /* Last reference: nothing in flight, so answer here and never call fn. */
    if (atomic_compare_exchange_strong(&g->refs, &one, 0)) {
        *rc = atomic_load(&g->rc);
        free(g);
        return 0;
    }
    group_drop(g);
    return 1;
}

int rv_audit_append_batch(struct rv_audit_log *log, const struct rv_audit_entry *e, size_t n,
                          uint64_t *first)
{
    uint8_t small[REC_OVERHEAD + SMALL_ENTRY], small_leaf[32];
    uint8_t *recs = NULL, (*leaves)[32] = NULL;
    size_t len = 0, cap;
    struct waiter w;
    uint32_t q;
    int64_t now = 0;
    int rc;

    if (!log->writable)
        return RV_EUNSUPPORTED;
    if (n == 0 || n > RV_AUDIT_BATCH_MAX)
        return RV_EINVAL;
    /* A group takes the entries of one log (the first it is given): an append to another
     * log waits as with no group, so that nothing is left that no commit would rouse. */
    if (thread_group != NULL && n == 1 && first == NULL &&
        (thread_group->log == NULL || thread_group->log == log)) {
        struct rv_audit_group *g = thread_group;
        atomic_fetch_add(&g->refs, 1);
        if ((rc = append_async(log, e, group_one_done, g, false)) != 0)
            atomic_fetch_sub(&g->refs, 1); /* never the last: the creator holds one */
        else
            g->log = log;
        return rc;
    }
    /* Encode and hash on the caller's thread, outside the lock. */
    if (n == 1) {
        struct rv_audit_entry copy = e[0];
        size_t elen = 0;
        if (copy.time_ms == 0)
            copy.time_ms = now_ms();
        rc = rv_audit_entry_encode(&copy, small + 4, SMALL_ENTRY, &elen);
        if (rc == 0) {
            recs = small;
            leaves = (uint8_t(*)[32])small_leaf;
            put_u32(recs, (uint32_t)elen);
            rv_audit_leaf_hash(recs + 4, elen, leaves[0]);
            memcpy(recs + 4 + elen, leaves[0], TRAILER_LEN);
            len = REC_OVERHEAD + elen;
            goto queue;
        }
        if (rc != RV_ETOOBIG)
            return rc;
    }
    cap = n * REC_OVERHEAD + (n == 1 ? RV_AUDIT_ENTRY_MAX : 4096);
    recs = malloc(cap);
    leaves = malloc(n * 32);
    if (recs == NULL || leaves == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct rv_audit_entry copy = e[i];
        size_t elen = 0;
        if (copy.time_ms == 0)
            copy.time_ms = now != 0 ? now : (now = now_ms());
        if (cap - len < REC_OVERHEAD + RV_AUDIT_ENTRY_MAX) {
            uint8_t *p = realloc(recs, cap * 2 + RV_AUDIT_ENTRY_MAX);
            if (p == NULL) {
                rc = RV_ENOMEM;
                goto out;
            }
            recs = p;
            cap = cap * 2 + RV_AUDIT_ENTRY_MAX;
        }
        rc = rv_audit_entry_encode(&copy, recs + len + 4, RV_AUDIT_ENTRY_MAX, &elen);
        if (rc != 0)
            goto out;
        put_u32(recs + len, (uint32_t)elen);
        rv_audit_leaf_hash(recs + len + 4, elen, leaves[i]);
        memcpy(recs + len + 4 + elen, leaves[i], TRAILER_LEN);
        len += REC_OVERHEAD + elen;
    }

queue:
    if (atomic_load(&log->failed)) {
        rc = RV_EAUDIT; /* sticky: refuse at once, without writing */
        goto out;
    }
    w.recs = recs;
    w.len = len;
    w.leaves = (const uint8_t(*)[32])leaves;
    w.n = n;
    w.first = 0;
    atomic_init(&w.state, 0);
    w.done = NULL;
    w.done_ctx = NULL;
    q = push(log, &w);
    if (take_turn(log)) {
        /* Commit inline until this call is answered, then hand any work left over to the
         * committer thread. */
        while (atomic_load_explicit(&w.state, memory_order_acquire) == 0)
            (void)commit_next(log);
        atomic_store(&log->busy, 0);
        if (queued(log))
            futex_bump(&log->kick, 1);
    }
    /* Sleep until a commit has answered; only the wake-up for our queue reaches us. */
    for (;;) {
        uint32_t seen = atomic_load(&log->epoch[q]);
        rc = atomic_load_explicit(&w.state, memory_order_acquire);
        if (rc != 0)
            break;
        futex_wait(&log->epoch[q], seen);
    }
    if (rc == 1) {
        rc = 0;
        if (first != NULL)
            *first = w.first;
    }
out:
    if (recs != small) {
        free(leaves);
        free(recs);
    }
    return rc;
}

int rv_audit_append(struct rv_audit_log *log, const struct rv_audit_entry *e, uint64_t *index)
{
    return rv_audit_append_batch(log, e, 1, index);
}

int rv_audit_checkpoint(struct rv_audit_log *log)
{
    if (!log->writable)
        return RV_EUNSUPPORTED;
    return do_checkpoint(log);
}

/* Signs checkpoints off the append path: when the committer finds one due by count, and when
 * entries have waited checkpoint_ms without one. */
static void *ticker_main(void *arg)
{
    struct rv_audit_log *log = arg;

    pthread_mutex_lock(&log->mu);
    while (!log->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += log->every_ms / 1000;
        ts.tv_nsec += (long)(log->every_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (log->err != 0 || !checkpoint_due(log))
            pthread_cond_timedwait(&log->tick, &log->mu, &ts);
        if (log->stop || log->err != 0 || !checkpoint_due(log))
            continue;
        pthread_mutex_unlock(&log->mu);
        (void)do_checkpoint(log); /* a failure is sticky in log->err */
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Open, recovery, close.
 */

static int open_file(struct rv_audit_log *log, const char *name, const char magic[8], bool create,
                     int *fd)
{
    char *path = path_join(log->dir, name);
    int rc = RV_ENOMEM;

    *fd = -1;
    if (path == NULL)
        return rc;
    *fd = open(path, (log->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (*fd < 0 && errno == ENOENT && create) {
        *fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (*fd < 0 || write_header(*fd, magic) != 0 || fsync(*fd) != 0) {
            rc = RV_EAUDIT;
            goto out;
        }
    }
    if (*fd < 0) {
        rc = errno == ENOENT ? RV_ENOTFOUND : (log->writable ? RV_EAUDIT : RV_EIO);
        goto out;
    }
    rc = check_header(*fd, magic);
out:
    free(path);
    return rc;
}

/* Reads the record at off: 0 and its entry length if whole and its trailer matches the
 * entry's leaf hash (written to leaf), RV_ECORRUPT otherwise. */
static int read_record(int fd, uint64_t fsize, uint64_t off, uint8_t *buf, uint32_t *len,
                       uint8_t leaf[32])
{
    uint8_t lenb[4];
    uint32_t n;

    if (off + 4 > fsize || pread_all(fd, lenb, 4, off) != 0)
        return RV_ECORRUPT;
    n = get_u32(lenb);
    if (n < 9 || n > RV_AUDIT_ENTRY_MAX || off + REC_OVERHEAD + n > fsize)
        return RV_ECORRUPT;
    if (pread_all(fd, buf, n + TRAILER_LEN, off + 4) != 0)
        return RV_ECORRUPT;
    rv_audit_leaf_hash(buf, n, leaf);
    if (memcmp(leaf, buf + n, TRAILER_LEN) != 0)
        return RV_ECORRUPT;
    *len = n;
    return 0;
}

static int read_index(struct rv_audit_log *log, uint64_t i, uint64_t *off)
{
    uint8_t b[8];
    int rc = pread_all(log->fd_idx, b, 8, HDR_LEN + i * 8);

    *off = 0;
    for (int j = 0; j < 8; j++)
        *off |= (uint64_t)b[j] << (8 * j);
    return rc;
}

/* Finds the durable size and, for a writable log, rebuilds the index and hashes of the
 * records after the latest checkpoint from the entry file and truncates all three files to
 * the last whole record. A read-only log instead stops at the first entry whose index slot,
 * record or stored hashes do not agree, and ignores the rest. */
static int recover(struct rv_audit_log *log)
{
    uint64_t ent_size = file_size(log->fd_ent), idx_size = file_size(log->fd_idx);
    uint64_t hash_size = file_size(log->fd_hash);
    uint64_t ni = idx_size >= HDR_LEN ? (idx_size - HDR_LEN) / 8 : 0;
    uint64_t nhash = hash_size >= HDR_LEN ? (hash_size - HDR_LEN) / 32 : 0;
    uint64_t s = log->cp_size, off, n;
    uint8_t *buf = NULL, leaf[32], hashes[65][32], stored[32];
    uint32_t len;
    int rc;

    buf = malloc(RV_AUDIT_ENTRY_MAX + TRAILER_LEN);
    if (buf == NULL)
        return RV_ENOMEM;
    if (ni < s || nhash < rv_audit_stored_hash_count(s)) {
        /* Fewer entries than the latest checkpoint covers: the log was cut back. */
        if (log->writable) {
            rc = RV_ECORRUPT;
            goto out;
        }
        s = ni;
        while (s > 0 && nhash < rv_audit_stored_hash_count(s))
            s--;
    }
    off = HDR_LEN;
    if (s > 0) {
        rc = read_index(log, s - 1, &off);
        if (rc == 0)
            rc = read_record(log->fd_ent, ent_size, off, buf, &len, leaf);
        if (rc != 0) {
            if (log->writable)
                goto out;
            s = 0; /* verify will name the bad entry */
            off = HDR_LEN;
        } else {
            off += REC_OVERHEAD + len;
        }
    }
    rc = load_frontier(log, s);
    if (rc != 0)
        goto out;
    n = s;
    for (;;) {
        size_t k;
        if (!log->writable) {
            uint64_t ioff;
            if (n >= ni || rv_audit_stored_hash_count(n + 1) > nhash)
                break;
            if (read_index(log, n, &ioff) != 0 || ioff != off)
                break;
        }
        if (read_record(log->fd_ent, ent_size, off, buf, &len, leaf) != 0)
            break;
        k = frontier_add(log->frontier, n, leaf, hashes);
        if (log->writable) {
            uint8_t ib[8];
            for (int j = 0; j < 8; j++)
                ib[j] = (uint8_t)(off >> (8 * j));
            if (pwrite_all(log->fd_idx, ib, 8, HDR_LEN + n * 8) != 0 ||
                pwrite_all(log->fd_hash, hashes, k * 32,
                           HDR_LEN + rv_audit_stored_hash_index(0, n) * 32) != 0) {
                rc = RV_EAUDIT;
                goto out;
            }
        } else {
            bool same = true;
            for (size_t j = 0; j < k && same; j++)
                same = read_hash(log, rv_audit_stored_hash_index(0, n) + j, stored) == 0 &&
                       memcmp(stored, hashes[j], 32) == 0;
            if (!same)
                break;
        }
        off += REC_OVERHEAD + len;
        n++;
    }
    if (log->writable) {
        if (ftruncate(log->fd_ent, (off_t)off) != 0 ||
            ftruncate(log->fd_idx, (off_t)(HDR_LEN + n * 8)) != 0 ||
            ftruncate(log->fd_hash, (off_t)(HDR_LEN + rv_audit_stored_hash_count(n) * 32)) != 0 ||
            fdatasync(log->fd_ent) != 0 || fdatasync(log->fd_idx) != 0 ||
            fdatasync(log->fd_hash) != 0) {
            rc = RV_EAUDIT;
            goto out;
        }
    } else {
        log->tail_ignored = ni > n ? ni - n : 0;
    }
    log->size = n;
    atomic_store(&log->durable, n);
    log->end_off = off;
    log->alloc_end = log->writable ? off : ent_size;
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Loads the latest checkpoint, in time that does not grow with the number of checkpoints.
 * A checkpoint appends its record to `checkpoints` and syncs it before it replaces
 * `checkpoint`, so normally the file ends with exactly the record of the note in
 * `checkpoint`: then that is the latest, found with one read. Otherwise (a crash cut the
 * last record short, or came between the append and the replacement, or a file was
 * changed) the whole file is walked, and a writable log cuts off a torn last record, refuses
 * any other bad one, and puts the latest note back into a `checkpoint` that is missing or
 * one behind, so that the next open is quick again. Records before the last are not read on
 * the quick path: the writer never uses them, as it never reads entries below the latest
 * checkpoint, and rv_audit_verify checks every one. The latest note's signature is checked
 * on both paths. */
static int load_checkpoints(struct rv_audit_log *log)
{
    uint64_t fsize = file_size(log->fd_cps), off = HDR_LEN, good = HDR_LEN, last = HDR_LEN;
    char note[RV_AUDIT_NOTE_MAX], own[RV_AUDIT_NOTE_MAX];
    const char *cpf = log->cpfile;
    size_t cpf_len = log->cpfile_len;
    int cpf_rc = log->cpfile_rc;
    struct rv_audit_checkpoint c;
    size_t len = 0;
    bool torn = false, repair = false;
    int r;

    log->cp_size = 0;
    log->cp_len = 0;
    log->cps_snap = fsize;
    if (cpf == NULL) {
        /* A writer: read-only logs read `checkpoint` before they looked at the size. */
        cpf_rc = read_small_file(log->dir, "checkpoint", own, sizeof(own), &cpf_len);
        cpf = own;
    }
    if (cpf_rc == 0 && cps_ends_with(log->fd_cps, fsize, cpf, cpf_len)) {
        memcpy(log->cp_note, cpf, cpf_len);
        log->cp_note[cpf_len] = '\0';
        log->cp_len = cpf_len;
        good = fsize;
    } else {
        /* Records are framed and hashed; only the last one's signature matters here
         * (verify checks them all). */
        while ((r = cps_read(log->fd_cps, fsize, &off, note, &len, &torn)) == 1) {
            memcpy(log->cp_note, note, len + 1);
            log->cp_len = len;
            last = good;
            good = off;
        }
        if (r < 0 && log->writable) {
            /* Only a record cut short by a crash may be dropped. */
            if (!torn)
                return RV_ECORRUPT;
            if (ftruncate(log->fd_cps, (off_t)good) != 0 || fdatasync(log->fd_cps) != 0)
                return RV_EAUDIT;
        }
        repair = log->writable && log->cp_len > 0 &&
                 (cpf_rc == RV_ENOTFOUND ||
                  (cpf_rc == 0 && cps_ends_with(log->fd_cps, last, cpf, cpf_len)));
    }
    log->cps_end = good;
    if (log->cp_len > 0) {
        if (rv_audit_checkpoint_open(log->cp_note, log->cp_len, &log->vkey, &c) != 0) {
            if (log->writable)
                return RV_ECORRUPT;
            log->cp_len = 0;
            return 0;
        }
        log->cp_size = c.size;
    }
    if (repair && write_atomic(log->dir, "checkpoint", log->cp_note, log->cp_len) != 0)
        return RV_EAUDIT;
    return 0;
}

static int log_new(const char *dir, bool writable, struct rv_audit_log **out)
{
    struct rv_audit_log *log = calloc(1, sizeof(*log));

    *out = NULL;
    if (log == NULL)
        return RV_ENOMEM;
    log->dir = strdup(dir);
    log->writable = writable;
    log->fd_ent = log->fd_idx = log->fd_hash = log->fd_cps = log->fd_lock = -1;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->cpmu, NULL);
    pthread_cond_init(&log->tick, NULL);
    *out = log;
    return log->dir != NULL ? 0 : RV_ENOMEM;
}

static void log_free(struct rv_audit_log *log)
{
    int *fds[] = {&log->fd_ent, &log->fd_idx, &log->fd_hash, &log->fd_cps, &log->fd_lock};

    if (log->hmap != NULL)
        munmap((void *)log->hmap, log->hmap_len);
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    if (log->sk != NULL)
        sodium_free(log->sk); /* sodium_free wipes */
    free(log->flush.buf);
    free(log->flush.leaf);
    free(log->hbuf);
    free(log->ibuf);
    free(log->cpfile);
    free(log->dir);
    pthread_cond_destroy(&log->tick);
    pthread_mutex_destroy(&log->cpmu);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

static int load_vkey(struct rv_audit_log *log)
{
    char buf[RV_AUDIT_VKEY_MAX + 2];
    size_t len = 0;
    int rc = read_small_file(log->dir, "key.pub", buf, sizeof(buf), &len);

    if (rc != 0)
        return rc == RV_ETOOBIG ? RV_ECORRUPT : rc;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    return rv_audit_vkey_parse(buf, len, &log->vkey) == 0 ? 0 : RV_ECORRUPT;
}

int rv_audit_open(const char *dir, const uint8_t seed[32], const struct rv_audit_opts *opts,
                  struct rv_audit_log **out)
{
    struct rv_audit_log *log = NULL;
    struct rv_audit_vkey mine;
    const char *origin = opts != NULL && opts->origin != NULL ? opts->origin : NULL;
    char *path = NULL;
    int rc;

    *out = NULL;
    rc = log_new(dir, true, &log);
    if (rc != 0)
        goto out;
    log->every =
        opts != NULL && opts->checkpoint_every > 0 ? opts->checkpoint_every : DEFAULT_EVERY;
    log->every_ms = opts != NULL && opts->checkpoint_ms > 0 ? opts->checkpoint_ms : DEFAULT_MS;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = RV_EAUDIT;
        goto out;
    }
    path = path_join(dir, "lock");
    if (path == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    log->fd_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (log->fd_lock < 0) {
        rc = RV_EAUDIT;
        goto out;
    }
    if (flock(log->fd_lock, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? RV_EBUSY : RV_EAUDIT;
        goto out;
    }
    log->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (log->sk == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    rc = load_vkey(log);
    if (rc == RV_ENOTFOUND) {
        char line[RV_AUDIT_VKEY_MAX + 1];
        rc = rv_audit_keypair(origin != NULL ? origin : DEFAULT_ORIGIN, seed, log->sk, &log->vkey);
        if (rc != 0)
            goto out;
        rv_audit_vkey_format(&log->vkey, line);
        strcat(line, "\n");
        if (write_atomic(dir, "key.pub", line, strlen(line)) != 0) {
            rc = RV_EAUDIT;
            goto out;
        }
    } else if (rc != 0) {
        goto out;
    } else {
        if (origin != NULL && strcmp(origin, log->vkey.name) != 0) {
            rc = RV_EINVAL;
            goto out;
        }
        rc = rv_audit_keypair(log->vkey.name, seed, log->sk, &mine);
        if (rc != 0)
            goto out;
        if (sodium_memcmp(mine.pub, log->vkey.pub, 32) != 0) {
            rc = RV_EKEY;
            goto out;
        }
    }
    if ((rc = open_file(log, "entries", MAGIC_ENT, true, &log->fd_ent)) != 0 ||
        (rc = open_file(log, "index", MAGIC_IDX, true, &log->fd_idx)) != 0 ||
        (rc = open_file(log, "hashes", MAGIC_HSH, true, &log->fd_hash)) != 0 ||
        (rc = open_file(log, "checkpoints", MAGIC_CPS, true, &log->fd_cps)) != 0)
        goto out;
    if ((rc = load_checkpoints(log)) != 0 || (rc = recover(log)) != 0)
        goto out;
    /* Make the files' names durable too (they may have just been created). */
    {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            if (dfd >= 0)
                close(dfd);
            rc = RV_EAUDIT;
            goto out;
        }
        close(dfd);
    }
    log->cp_time_ms = now_ms();
    /* A new log starts with a signed checkpoint of the empty tree. */
    if (log->cp_len == 0 || log->size > log->cp_size) {
        rc = do_checkpoint(log);
        if (rc != 0)
            goto out;
    }
    if (pthread_create(&log->committer, NULL, committer_main, log) != 0) {
        rc = RV_ENOMEM;
        goto out;
    }
    log->committer_started = true;
    if (pthread_create(&log->ticker, NULL, ticker_main, log) != 0) {
        committer_stop(log);
        rc = RV_ENOMEM;
        goto out;
    }
    log->ticker_started = true;
    *out = log;
    log = NULL;
out:
    free(path);
    if (log != NULL)
        log_free(log);
    return rc;
}

int rv_audit_open_ro(const char *dir, struct rv_audit_log **out)
{
    struct rv_audit_log *log = NULL;
    int rc;

    *out = NULL;
    rc = log_new(dir, false, &log);
    if (rc != 0)
        goto out;
    if ((rc = load_vkey(log)) != 0)
        goto out;
    log->cpfile = malloc(RV_AUDIT_NOTE_MAX);
    if (log->cpfile == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    log->cpfile_rc =
        read_small_file(dir, "checkpoint", log->cpfile, RV_AUDIT_NOTE_MAX, &log->cpfile_len);
    if ((rc = open_file(log, "entries", MAGIC_ENT, false, &log->fd_ent)) != 0 ||
        (rc = open_file(log, "index", MAGIC_IDX, false, &log->fd_idx)) != 0 ||
        (rc = open_file(log, "hashes", MAGIC_HSH, false, &log->fd_hash)) != 0 ||
        (rc = open_file(log, "checkpoints", MAGIC_CPS, false, &log->fd_cps)) != 0)
        goto out;
    if ((rc = load_checkpoints(log)) != 0 || (rc = recover(log)) != 0)
        goto out;
    log->hmap_len = (size_t)(HDR_LEN + rv_audit_stored_hash_count(log->size) * 32);
    if (log->size > 0) {
        void *p = mmap(NULL, log->hmap_len, PROT_READ, MAP_SHARED, log->fd_hash, 0);
        if (p != MAP_FAILED)
            log->hmap = p;
    }
    *out = log;
    log = NULL;
out:
    if (log != NULL)
        log_free(log);
    return rc;
}

int rv_audit_close(struct rv_audit_log *log)
{
    int rc = 0;

    if (log == NULL)
        return 0;
    if (log->ticker_started) {
        pthread_mutex_lock(&log->mu);
        log->stop = true;
        pthread_cond_broadcast(&log->tick);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->ticker, NULL);
    }
    committer_stop(log);
    if (log->writable) {
        if (log->err != 0)
            rc = RV_EAUDIT;
        else if (log->size > log->cp_size)
            rc = do_checkpoint(log);
        /* Leave no zero tail behind. */
        if (rc == 0 && log->alloc_end > log->end_off &&
            (ftruncate(log->fd_ent, (off_t)log->end_off) != 0 || fdatasync(log->fd_ent) != 0))
            rc = RV_EAUDIT;
    }
    log_free(log);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Reading.
 */

uint64_t rv_audit_size(struct rv_audit_log *log)
{
    uint64_t n;

    pthread_mutex_lock(&log->mu);
    n = log->size;
    pthread_mutex_unlock(&log->mu);
    return n;
}

const struct rv_audit_vkey *rv_audit_vkey(const struct rv_audit_log *log)
{
    return &log->vkey;
}

int rv_audit_root(struct rv_audit_log *log, uint64_t size, uint8_t out[32])
{
    if (size > rv_audit_size(log))
        return RV_EINVAL;
    return subtree_hash(log, 0, size, out);
}

int rv_audit_latest_note(struct rv_audit_log *log, char *out, size_t outsz)
{
    int rc = RV_ENOTFOUND;

    pthread_mutex_lock(&log->mu);
    if (log->cp_len > 0) {
        rc = RV_ETOOBIG;
        if (log->cp_len < outsz) {
            memcpy(out, log->cp_note, log->cp_len + 1);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int rv_audit_get(struct rv_audit_log *log, uint64_t index, struct rv_audit_record *rec)
{
    uint8_t *buf = NULL, leaf[32];
    uint64_t off;
    uint32_t len = 0;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (index >= rv_audit_size(log))
        return RV_ENOTFOUND;
    buf = malloc(RV_AUDIT_ENTRY_MAX + TRAILER_LEN);
    if (buf == NULL)
        return RV_ENOMEM;
    rc = read_index(log, index, &off);
    if (rc == 0)
        rc = read_record(log->fd_ent, file_size(log->fd_ent), off, buf, &len, leaf);
    if (rc == 0)
        rc = rv_audit_entry_decode(buf, len, rec);
    if (rc == 0)
        rec->index = index;
    free(buf);
    return rc;
}

static int inclusion_path(struct rv_audit_log *log, uint64_t m, uint64_t lo, uint64_t hi,
                          struct rv_audit_proof *p)
{
    uint64_t k;
    int rc;

    if (hi - lo <= 1)
        return 0;
    k = split_point(hi - lo);
    if (m < k) {
        rc = inclusion_path(log, m, lo, lo + k, p);
        if (rc == 0)
            rc = subtree_hash(log, lo + k, hi, p->hashes[p->nhashes++]);
    } else {
        rc = inclusion_path(log, m - k, lo + k, hi, p);
        if (rc == 0)
            rc = subtree_hash(log, lo, lo + k, p->hashes[p->nhashes++]);
    }
    return rc;
}

static int consistency_path(struct rv_audit_log *log, uint64_t m, uint64_t lo, uint64_t hi, bool b,
                            struct rv_audit_proof *p)
{
    uint64_t k;
    int rc;

    if (m == hi - lo)
        return b ? 0 : subtree_hash(log, lo, hi, p->hashes[p->nhashes++]);
    k = split_point(hi - lo);
    if (m <= k) {
        rc = consistency_path(log, m, lo, lo + k, b, p);
        if (rc == 0)
            rc = subtree_hash(log, lo + k, hi, p->hashes[p->nhashes++]);
    } else {
        rc = consistency_path(log, m - k, lo + k, hi, false, p);
        if (rc == 0)
            rc = subtree_hash(log, lo, lo + k, p->hashes[p->nhashes++]);
    }
    return rc;
}

int rv_audit_prove_inclusion(struct rv_audit_log *log, uint64_t index, uint64_t size,
                             struct rv_audit_proof *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (size == 0 || index >= size || size > rv_audit_size(log))
        return RV_EINVAL;
    out->index = index;
    out->size2 = size;
    rc = read_hash(log, rv_audit_stored_hash_index(0, index), out->leaf);
    if (rc == 0)
        rc = subtree_hash(log, 0, size, out->root2);
    if (rc == 0)
        rc = inclusion_path(log, index, 0, size, out);
    return rc;
}

int rv_audit_prove_consistency(struct rv_audit_log *log, uint64_t size1, uint64_t size2,
                               struct rv_audit_proof *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (size1 == 0 || size1 > size2 || size2 > rv_audit_size(log))
        return RV_EINVAL;
    out->consistency = true;
    out->size1 = size1;
    out->size2 = size2;
    rc = subtree_hash(log, 0, size1, out->root1);
    if (rc == 0)
        rc = subtree_hash(log, 0, size2, out->root2);
    if (rc == 0 && size1 < size2)
        rc = consistency_path(log, size1, 0, size2, true, out);
    return rc;
}

/* A read-only mapping of a whole file (NULL for an empty one). */
struct map {
    const uint8_t *p;
    size_t len;
};

static int map_file(int fd, struct map *m)
{
    uint64_t n = file_size(fd);

    m->p = NULL;
    m->len = (size_t)n;
    if (n == 0)
        return 0;
    void *p = mmap(NULL, (size_t)n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return RV_EIO;
    madvise(p, (size_t)n, MADV_SEQUENTIAL);
    m->p = p;
    return 0;
}

static void unmap_file(struct map *m)
{
    if (m->p != NULL)
        munmap((void *)m->p, m->len);
    m->p = NULL;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int j = 0; j < 8; j++)
        v |= (uint64_t)p[j] << (8 * j);
    return v;
}

int rv_audit_find_subject(struct rv_audit_log *log, const uint8_t id[32], uint64_t **out, size_t *n)
{
    struct map ent = {0}, idx = {0};
    uint64_t size = rv_audit_size(log), *res = NULL;
    size_t nres = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = map_file(log->fd_ent, &ent)) != 0 || (rc = map_file(log->fd_idx, &idx)) != 0)
        goto out;
    rc = RV_ECORRUPT;
    if (idx.len < HDR_LEN + size * 8)
        goto out;
    for (uint64_t i = 0; i < size; i++) {
        uint64_t off = get_u64(idx.p + HDR_LEN + i * 8);
        uint32_t len;
        struct rv_audit_record rec;
        bool hit = false;
        if (off + 4 > ent.len)
            goto out;
        len = get_u32(ent.p + off);
        if (len > RV_AUDIT_ENTRY_MAX || off + 4 + len > ent.len)
            goto out;
        if (rv_audit_entry_decode(ent.p + off + 4, len, &rec) != 0)
            goto out;
        for (size_t j = 0; j < rec.e.nsubjects && !hit; j++)
            hit = sodium_memcmp(rec.e.subjects[j], id, 32) == 0;
        rv_audit_record_free(&rec);
        if (!hit)
            continue;
        if (nres == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *p = realloc(res, ncap * sizeof(*p));
            if (p == NULL) {
                rc = RV_ENOMEM;
                goto out;
            }
            res = p;
            cap = ncap;
        }
        res[nres++] = i;
    }
    *out = res;
    *n = nres;
    res = NULL;
    rc = 0;
out:
    free(res);
    unmap_file(&idx);
    unmap_file(&ent);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Verification.
 */

struct vjob {
    const struct map *ent, *idx, *hsh;
    uint64_t lo, hi, n;
    uint64_t bad; /* first bad entry in [lo, hi), or UINT64_MAX */
    const char *why;
};

static void *verify_range(void *arg)
{
    struct vjob *j = arg;
    const uint8_t *hs = j->hsh->p + HDR_LEN;
    uint8_t h[32];

    j->bad = UINT64_MAX;
    for (uint64_t i = j->lo; i < j->hi; i++) {
        uint64_t off = get_u64(j->idx->p + HDR_LEN + i * 8), end;
        uint32_t len;
        if ((i == 0 && off != HDR_LEN) || off < HDR_LEN || off > j->ent->len - 4) {
            j->why = "index slot does not point at its record";
            goto bad;
        }
        len = get_u32(j->ent->p + off);
        end = off + REC_OVERHEAD + (uint64_t)len;
        if (len > RV_AUDIT_ENTRY_MAX || end > j->ent->len) {
            j->why = "record length runs past the entry file";
            goto bad;
        }
        if (i > 0) {
            uint64_t prev = get_u64(j->idx->p + HDR_LEN + (i - 1) * 8);
            if (prev > j->ent->len - 4 ||
                prev + REC_OVERHEAD + (uint64_t)get_u32(j->ent->p + prev) != off) {
                j->why = "index slot does not follow the record before it";
                goto bad;
            }
        }
        if (rv_audit_entry_check(j->ent->p + off + 4, len) != 0) {
            j->why = "entry is not canonically encoded";
            goto bad;
        }
        rv_audit_leaf_hash(j->ent->p + off + 4, len, h);
        if (memcmp(h, j->ent->p + off + 4 + len, TRAILER_LEN) != 0) {
            j->why = "record trailer does not match the entry";
            goto bad;
        }
        if (memcmp(h, hs + rv_audit_stored_hash_index(0, i) * 32, 32) != 0) {
            j->why = "stored leaf hash does not match the entry";
            goto bad;
        }
        for (unsigned l = 1; ((i >> (l - 1)) & 1) != 0; l++) {
            uint64_t k = i >> l;
            rv_audit_node_hash(hs + rv_audit_stored_hash_index(l - 1, 2 * k) * 32,
                               hs + rv_audit_stored_hash_index(l - 1, 2 * k + 1) * 32, h);
            if (memcmp(h, hs + rv_audit_stored_hash_index(l, k) * 32, 32) != 0) {
                j->why = "stored node hash does not match its children";
                goto bad;
            }
        }
        continue;
    bad:
        j->bad = i;
        return NULL;
    }
    return NULL;
}

static void set_what(struct rv_audit_report *r, const char *what)
{
    snprintf(r->what, sizeof(r->what), "%s", what);
}

/* Checks one stored or trusted checkpoint against the verified tree. */
static int check_note(struct rv_audit_log *log, const struct rv_audit_vkey *k, const char *note,
                      size_t len, uint64_t n, struct rv_audit_checkpoint *c,
                      struct rv_audit_report *r)
{
    uint8_t root[32];
    int rc = rv_audit_checkpoint_open(note, len, k, c);

    if (rc == RV_EKEY) {
        set_what(r, "checkpoint is not signed by the log's key");
        return RV_EKEY;
    }
    if (rc != 0) {
        set_what(r, "checkpoint is not a well-formed signed note");
        return RV_ECORRUPT;
    }
    if (c->size > n) {
        snprintf(r->what, sizeof(r->what),
                 "checkpoint covers %llu entries but the log holds %llu: entries were removed",
                 (unsigned long long)c->size, (unsigned long long)n);
        r->bad_index = n;
        return RV_ECORRUPT;
    }
    rc = subtree_hash(log, 0, c->size, root);
    if (rc != 0 || sodium_memcmp(root, c->root, 32) != 0) {
        set_what(r, "checkpoint root differs from the log's tree: history was rewritten");
        return RV_ECORRUPT;
    }
    return 0;
}

int rv_audit_verify(struct rv_audit_log *log, const char *trusted_vkey, const char *trusted_note,
                    struct rv_audit_report *r)
{
    struct map ent = {0}, idx = {0}, hsh = {0};
    struct vjob jobs[2];
    struct rv_audit_vkey tk;
    const struct rv_audit_vkey *k = &log->vkey;
    struct rv_audit_checkpoint prev = {0}, c;
    char *note = NULL;
    uint64_t n, off = HDR_LEN, fsize, limit;
    size_t len = 0;
    int njobs, rc, r1;
    bool torn = false;

    /* A writer's checkpoints wait while we look, so none can cover more than n. */
    if (log->writable)
        pthread_mutex_lock(&log->cpmu);
    n = rv_audit_size(log);
    memset(r, 0, sizeof(*r));
    r->bad_index = UINT64_MAX;
    r->bad_checkpoint = -1;
    r->size = n;
    r->tail_ignored = log->tail_ignored;
    if (trusted_vkey != NULL) {
        if (rv_audit_vkey_parse(trusted_vkey, strlen(trusted_vkey), &tk) != 0) {
            set_what(r, "the trusted verifier key is malformed");
            rc = RV_EINVAL;
            goto out;
        }
        if (strcmp(tk.name, log->vkey.name) != 0 || tk.key_id != log->vkey.key_id ||
            sodium_memcmp(tk.pub, log->vkey.pub, 32) != 0) {
            set_what(r, "key.pub differs from the trusted verifier key");
            rc = RV_EKEY;
            goto out;
        }
        k = &tk;
    }
    if ((rc = map_file(log->fd_ent, &ent)) != 0 || (rc = map_file(log->fd_idx, &idx)) != 0 ||
        (rc = map_file(log->fd_hash, &hsh)) != 0)
        goto out;
    rc = RV_ECORRUPT;
    if (idx.len < HDR_LEN + n * 8 || hsh.len < HDR_LEN + rv_audit_stored_hash_count(n) * 32 ||
        ent.len < HDR_LEN + (n > 0 ? 4 : 0)) {
        set_what(r, "a log file is shorter than the log");
        r->bad_index = 0;
        goto out;
    }
    /* Every entry and stored hash, on two threads for large logs. */
    njobs = n >= 65536 ? 2 : 1;
    for (int i = 0; i < njobs; i++) {
        jobs[i] = (struct vjob){&ent,
                                &idx,
                                &hsh,
                                n * (uint64_t)i / (uint64_t)njobs,
                                n * (uint64_t)(i + 1) / (uint64_t)njobs,
                                n,
                                UINT64_MAX,
                                NULL};
    }
    {
        pthread_t t;
        bool threaded = njobs == 2 && pthread_create(&t, NULL, verify_range, &jobs[1]) == 0;
        verify_range(&jobs[0]);
        if (threaded)
            pthread_join(t, NULL);
        else if (njobs == 2)
            verify_range(&jobs[1]);
    }
    for (int i = 0; i < njobs; i++)
        if (jobs[i].bad != UINT64_MAX) {
            r->bad_index = jobs[i].bad;
            set_what(r, jobs[i].why);
            goto out;
        }
    /* Every stored checkpoint: signature, root, and consistency with the one before. */
    note = malloc(RV_AUDIT_NOTE_MAX);
    if (note == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    fsize = file_size(log->fd_cps);
    limit = log->writable ? fsize : log->cps_snap;
    for (int64_t ci = 0;; ci++) {
        if (off >= limit)
            break; /* records begun after the entries were counted are not ours to judge */
        r1 = cps_read(log->fd_cps, fsize, &off, note, &len, &torn);
        if (r1 == 0)
            break;
        if (r1 < 0) {
            r->bad_checkpoint = ci;
            set_what(r, "checkpoint record is damaged");
            goto out;
        }
        rc = check_note(log, k, note, len, n, &c, r);
        if (rc != 0) {
            r->bad_checkpoint = ci;
            goto out;
        }
        rc = RV_ECORRUPT;
        if (c.size < prev.size) {
            r->bad_checkpoint = ci;
            set_what(r, "checkpoint is smaller than the one before it");
            goto out;
        }
        if (prev.size > 0) {
            struct rv_audit_proof p;
            if (rv_audit_prove_consistency(log, prev.size, c.size, &p) != 0 ||
                rv_audit_verify_consistency(prev.size, c.size, prev.root, c.root, p.hashes,
                                            p.nhashes) != 0) {
                r->bad_checkpoint = ci;
                set_what(r, "checkpoint is not consistent with the one before it");
                goto out;
            }
        }
        prev = c;
        r->checkpoints++;
    }
    r->latest_size = prev.size;
    /* The latest-checkpoint file, which outside tools read. */
    if (log->writable) {
        rc = read_small_file(log->dir, "checkpoint", note, RV_AUDIT_NOTE_MAX, &len);
    } else {
        rc = log->cpfile_rc;
        len = log->cpfile_len;
        if (rc == 0)
            memcpy(note, log->cpfile, len + 1);
    }
    if (rc == 0) {
        rc = check_note(log, k, note, len, n, &c, r);
        if (rc != 0) {
            char tmp[sizeof(r->what)];
            r->bad_checkpoint = (int64_t)r->checkpoints;
            snprintf(tmp, sizeof(tmp), "latest-checkpoint file: %.160s", r->what);
            set_what(r, tmp);
            goto out;
        }
        if (c.size > r->latest_size)
            r->latest_size = c.size;
    } else if (rc != RV_ENOTFOUND || r->checkpoints > 0) {
        rc = RV_ECORRUPT;
        set_what(r, "the latest-checkpoint file is missing or unreadable");
        goto out;
    }
    if (r->checkpoints == 0) {
        rc = RV_ECORRUPT;
        set_what(r, "the log has no signed checkpoint");
        goto out;
    }
    if (trusted_note != NULL) {
        rc = check_note(log, k, trusted_note, strlen(trusted_note), n, &c, r);
        if (rc != 0) {
            char tmp[sizeof(r->what)];
            snprintf(tmp, sizeof(tmp), "trusted checkpoint: %.160s", r->what);
            set_what(r, tmp);
            goto out;
        }
    }
    rc = 0;
out:
    if (log->writable)
        pthread_mutex_unlock(&log->cpmu);
    free(note);
    unmap_file(&hsh);
    unmap_file(&idx);
    unmap_file(&ent);
    return rc;
}
