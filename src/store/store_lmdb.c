/*
 * store_lmdb.c - the embedded back end of store.h, on LMDB.
 *
 * One environment per vault directory holding a single ordered database. The environment
 * uses a write-through map (MDB_WRITEMAP): a write transaction's dirty pages are the file's
 * own pages in the page cache, so a transaction that loads a whole register edition does
 * not hold hundreds of megabytes of heap. A small store (rv_store_opts.small: many short
 * commits of a few pages) does without it: LMDB then writes the dirty pages with pwrite and
 * syncs the file, instead of syncing the whole map at each commit. Sync is LMDB's default
 * (data, fsync, then meta page), so a committed transaction survives a crash and an
 * uncommitted one leaves no trace. The map starts small and grows on demand
 * (rv_store_reserve, or after MDB_MAP_FULL the caller reserves more and redoes the
 * transaction). A long-running reader can have the pages in use faulted into its map on a
 * thread of the store's (rv_store_prefetch).
 *
 * Growing the map maps the file again at another address, so no transaction of this process
 * may be open meanwhile (LMDB leaves that to the caller, and refuses while a write
 * transaction is open): transactions are counted, and a growth first waits until no write
 * transaction is open (readers go on meanwhile: an ingest's may last minutes), then holds
 * new transactions back and waits until none is open (set_mapsize). A thread that already
 * holds a transaction of the store is never held back (it would wait for itself), and a
 * growth asked for by such a thread is refused. What reads LMDB's meta pages outside a
 * transaction (the size in use, the map's size) does so under the same lock as the growth.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAP_INITIAL  (64ull << 20)
#define MAP_STEP_MIN (256ull << 20)
#define SCRATCH_NAME "scratch."
/* A small store's map: without a write-through map the file grows only as pages are
 * written, and the map is address space alone, so it can be roomy. */
#define MAP_SMALL (1ull << 30)

/* How much of the map the prefetch thread faults in per call, between looks at its stop flag. */
#define PREFETCH_STEP (32ull << 20)

struct rv_store {
    MDB_env *env;
    MDB_dbi dbi;
    pthread_mutex_t prefetch_lock; /* over prefetcher and prefetching */
    pthread_t prefetcher;          /* while prefetching */
    bool prefetching;              /* prefetcher is to be joined */
    atomic_bool prefetch_stop;     /* asks it to stop */
    atomic_bool prefetch_done;     /* it has stopped */
    uint8_t *map;                  /* the map's first byte, found for the prefetch */
    uint64_t map_used;             /* the bytes of it to prefetch */
    pthread_mutex_t map_lock;      /* over readers, writers and growing */
    pthread_cond_t map_cond;       /* readers or writers reached 0, or a growth ended */
    unsigned readers;              /* read transactions open (begun or renewed, not reset) */
    unsigned writers;              /* write transactions open or waiting for LMDB's lock */
    unsigned growing;              /* set_mapsize calls under way or waiting */
};

struct rv_txn {
    struct rv_store *s;
    MDB_txn *txn;
    MDB_cursor *wc; /* write cursor: puts near the previous one skip the descent from root */
    MDB_cursor *rc; /* the same for rv_store_put_run */
    MDB_cursor *sc; /* rv_store_scan's, opened once per transaction: a reader scans often */
    bool sc_busy;   /* a scan is using sc (a callback that scans again opens its own) */
    bool write;
    bool counted; /* open, counted in s->readers or s->writers */
};

struct rv_cursor {
    MDB_cursor *cur;
    uint8_t prefix[64];
    size_t plen;
    bool started;
};

static void prefetch_join(struct rv_store *s, bool stop);

/* ---- transactions and growing the map ------------------------------------------------ */

/* The transactions this thread holds, per store (a thread rarely reads more than two stores
 * at once; past HELD_MAX it counts as holding one, so it is never held back). */
#define HELD_MAX 4
static _Thread_local struct {
    const struct rv_store *s;
    unsigned n;
} held[HELD_MAX];

static unsigned *held_of(const struct rv_store *s, bool add)
{
    for (size_t i = 0; i < HELD_MAX; i++)
        if (held[i].s == s && held[i].n > 0)
            return &held[i].n;
    if (add)
        for (size_t i = 0; i < HELD_MAX; i++)
            if (held[i].n == 0) {
                held[i].s = s;
                return &held[i].n;
            }
    return NULL;
}

/* Before a transaction begins (or a read transaction is renewed): waits while the map grows,
 * unless this thread holds one already (the growth waits for it). */
static void txn_enter(struct rv_store *s, bool write)
{
    unsigned *h = held_of(s, true);

    pthread_mutex_lock(&s->map_lock);
    if (h != NULL && *h == 0)
        while (s->growing > 0)
            pthread_cond_wait(&s->map_cond, &s->map_lock);
    if (write)
        s->writers++;
    else
        s->readers++;
    pthread_mutex_unlock(&s->map_lock);
    if (h != NULL)
        (*h)++;
}

/* After a transaction ends (or a read transaction is reset, or either failed to begin). */
static void txn_leave(struct rv_store *s, bool write)
{
    unsigned *h = held_of(s, false);
    bool wake;

    pthread_mutex_lock(&s->map_lock);
    if (write)
        s->writers--;
    else
        s->readers--;
    /* A growth waits for the writers first, with growing still 0 (set_mapsize). */
    wake = (write && s->writers == 0) || (s->readers == 0 && s->growing > 0);
    if (wake)
        pthread_cond_broadcast(&s->map_cond);
    pthread_mutex_unlock(&s->map_lock);
    if (h != NULL)
        (*h)--;
}

/* The bytes in use and the map's size. LMDB reads them from the meta pages, inside the map:
 * under map_lock, which a growth holds while it maps the file again. */
static int used_of(struct rv_store *s, uint64_t *used, uint64_t *mapsize)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc;

    pthread_mutex_lock(&s->map_lock);
    if ((rc = mdb_env_info(s->env, &info)) == 0 && (rc = mdb_env_stat(s->env, &st)) == 0) {
        *used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
        *mapsize = info.me_mapsize;
    }
    pthread_mutex_unlock(&s->map_lock);
    return rc;
}

static int map_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return RV_ENOTFOUND;
    case MDB_KEYEXIST:
        return RV_EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return RV_ETOOBIG;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return RV_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return RV_EVERSION;
    case MDB_BAD_VALSIZE:
    case MDB_BAD_TXN:
    case MDB_INCOMPATIBLE:
        return RV_EINVAL;
    case MDB_READERS_FULL:
    case EAGAIN:
    case EBUSY:
        return RV_EBUSY;
    case ENOMEM:
        return RV_ENOMEM;
    default:
        if (rc > 0)
            errno = rc;
        return RV_EIO;
    }
}

/* Removes the named scratch files a crash left (only where the file system cannot make a
 * file without a name, and only in the instant between its creation and its unlinking:
 * such a file is empty). */
static void remove_scratch(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4096];

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, SCRATCH_NAME, strlen(SCRATCH_NAME)) == 0 &&
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
            (void)unlink(path);
    closedir(d);
}

int rv_store_scratch_file(struct rv_store *s, int *fd)
{
    const char *dir = NULL;
    char path[4096];
    int f;

    *fd = -1;
    if (mdb_env_get_path(s->env, &dir) != 0 || dir == NULL)
        return RV_EIO;
#ifdef O_TMPFILE
    f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (f >= 0) {
        *fd = f;
        return 0;
    }
#endif
    if (snprintf(path, sizeof(path), "%s/" SCRATCH_NAME "XXXXXX", dir) >= (int)sizeof(path))
        return RV_EINVAL;
    f = mkostemp(path, O_CLOEXEC);
    if (f < 0)
        return RV_EIO;
    if (unlink(path) != 0 && errno != ENOENT) { /* another opener may have removed it */
        close(f);
        return RV_EIO;
    }
    *fd = f;
    return 0;
}

int rv_store_open(const char *dir, struct rv_store **out)
{
    return rv_store_open_opts(dir, NULL, out);
}

int rv_store_open_opts(const char *dir, const struct rv_store_opts *opts, struct rv_store **out)
{
    bool small = opts != NULL && opts->small;
    uint64_t initial = small ? MAP_SMALL : MAP_INITIAL;
    struct rv_store *s = NULL;
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return RV_ENOMEM;
    if (pthread_mutex_init(&s->prefetch_lock, NULL) != 0) {
        free(s);
        return RV_ENOMEM;
    }
    if (pthread_mutex_init(&s->map_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->prefetch_lock);
        free(s);
        return RV_ENOMEM;
    }
    if (pthread_cond_init(&s->map_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->map_lock);
        pthread_mutex_destroy(&s->prefetch_lock);
        free(s);
        return RV_ENOMEM;
    }
    remove_scratch(dir);
    rc = mdb_env_create(&s->env);
    if (rc != 0)
        goto out;
    rc = mdb_env_set_maxreaders(s->env, 256);
    if (rc != 0)
        goto out;
    /* An existing store keeps its map size (read from its meta page). */
    rc = mdb_env_open(s->env, dir, (small ? 0u : MDB_WRITEMAP) | MDB_NOTLS | MDB_NORDAHEAD, 0600);
    if (rc != 0)
        goto out;
    rc = mdb_env_info(s->env, &info);
    if (rc != 0)
        goto out;
    if (info.me_mapsize < initial) {
        rc = mdb_env_set_mapsize(s->env, (size_t)initial);
        if (rc != 0)
            goto out;
    }
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_dbi_open(txn, NULL, 0, &s->dbi);
    if (rc != 0)
        goto out;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto out;
    *out = s;
    s = NULL;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (s != NULL) {
        if (s->env != NULL)
            mdb_env_close(s->env);
        pthread_cond_destroy(&s->map_cond);
        pthread_mutex_destroy(&s->map_lock);
        pthread_mutex_destroy(&s->prefetch_lock);
        free(s);
    }
    return map_err(rc);
}

void rv_store_close(struct rv_store *s)
{
    if (s == NULL)
        return;
    prefetch_join(s, true);
    pthread_mutex_destroy(&s->prefetch_lock);
    mdb_env_close(s->env);
    pthread_cond_destroy(&s->map_cond);
    pthread_mutex_destroy(&s->map_lock);
    free(s);
}

uint64_t rv_store_used(struct rv_store *s)
{
    uint64_t used, mapsize;

    return used_of(s, &used, &mapsize) == 0 ? used : 0;
}

/* The first byte of this process's map of the store's data file, and in *len how many bytes
 * of it are mapped: LMDB tells the address only for a fixed map (MDB_envinfo.me_mapaddr is
 * NULL otherwise), so it is found from a pointer LMDB hands out into the map (the first
 * record's) and the line of /proc/self/maps that holds it, whose file offset gives the
 * start. NULL when the store is empty or the line is not found (no /proc). */
static uint8_t *map_base(struct rv_store *s, uint64_t *len)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    uintptr_t p = 0;
    uint8_t *base = NULL;
    char line[512];
    FILE *f;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return NULL;
    if (mdb_cursor_open(txn, s->dbi, &c) == 0 && mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0)
        p = (uintptr_t)v.mv_data;
    if (c != NULL)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (p == 0 || (f = fopen("/proc/self/maps", "re")) == NULL)
        return NULL;
    while (base == NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long lo, hi, off;
        if (strchr(line, '\n') == NULL) { /* a long path: skip the rest of the line */
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
        }
        if (sscanf(line, "%llx-%llx %*s %llx", &lo, &hi, &off) == 3 && lo <= p && p < hi &&
            off <= lo) {
            base = (uint8_t *)(uintptr_t)(lo - off);
            *len = hi - (lo - off);
        }
    }
    fclose(f);
    return base;
}

/* The memory this process may use: the machine's, or its control group's limit when lower
 * (cgroup v2 memory.max, or v1 memory.limit_in_bytes). 0 when unknown. */
static uint64_t memory_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    char line[512], path[700];
    FILE *f = fopen("/proc/self/cgroup", "re");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *nl = strchr(line, '\n'), *group;
        unsigned long long limit;
        FILE *g;
        int n;
        if (nl != NULL)
            *nl = '\0';
        if (strncmp(line, "0::", 3) == 0) {
            group = line + 3;
            n = snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", group);
        } else if ((group = strstr(line, ":memory:")) != NULL) {
            n = snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                         group + 8);
        } else {
            continue;
        }
        if (n < 0 || (size_t)n >= sizeof(path) || (g = fopen(path, "re")) == NULL)
            continue;
        if (fscanf(g, "%llu", &limit) == 1 && limit > 0 && (mem == 0 || limit < mem))
            mem = limit; /* "max" (no limit) does not scan */
        fclose(g);
    }
    if (f != NULL)
        fclose(f);
    return mem;
}

/* The prefetch thread: asks for the next step's pages to be read ahead into the page cache
 * (the map is opened MDB_NORDAHEAD, so faults alone would read them a page at a time), then
 * faults the current step into the map. Stops at the stop flag (set before the map is ever
 * remapped), or when the kernel refuses a range. */
static void *prefetch_main(void *arg)
{
    struct rv_store *s = arg;
    bool populate = true;
    int fd = -1;

    if (mdb_env_get_fd(s->env, &fd) != 0)
        fd = -1;
    for (uint64_t off = 0; off < s->map_used && !atomic_load(&s->prefetch_stop);
         off += PREFETCH_STEP) {
        uint64_t n = s->map_used - off < PREFETCH_STEP ? s->map_used - off : PREFETCH_STEP;
        uint64_t next = off + n;
        if (fd >= 0 && next < s->map_used)
            (void)posix_fadvise(
                fd, (off_t)next,
                (off_t)(s->map_used - next < PREFETCH_STEP ? s->map_used - next : PREFETCH_STEP),
                POSIX_FADV_WILLNEED);
#ifdef MADV_POPULATE_READ
        if (populate && madvise(s->map + off, (size_t)n, MADV_POPULATE_READ) == 0)
            continue;
        if (populate && errno != EINVAL)
            break; /* a page could not be read */
#endif
        /* A kernel without MADV_POPULATE_READ (before 5.14): the page cache only. */
        populate = false;
        if (madvise(s->map + off, (size_t)n, MADV_WILLNEED) != 0)
            break;
    }
    atomic_store(&s->prefetch_done, true);
    return NULL;
}

/* Stops the prefetch, if one runs, and waits for its thread (stop) or lets it finish. */
static void prefetch_join(struct rv_store *s, bool stop)
{
    pthread_mutex_lock(&s->prefetch_lock);
    if (s->prefetching) {
        if (stop)
            atomic_store(&s->prefetch_stop, true);
        pthread_join(s->prefetcher, NULL);
        s->prefetching = false;
    }
    pthread_mutex_unlock(&s->prefetch_lock);
}

/* mdb_env_set_mapsize, which maps the file again (size 0: adopt the size another process
 * set; otherwise never smaller than it is): it waits until no write transaction is open,
 * then the prefetch stops, new transactions wait, and it waits until those open have ended.
 * EBUSY when this thread holds a transaction of the store (it cannot wait for itself). */
static int set_mapsize(struct rv_store *s, size_t size)
{
    unsigned *h = held_of(s, false);
    MDB_envinfo info;
    bool large = false;
    int rc = 0;

    if (h != NULL && *h > 0)
        return EBUSY;
    pthread_mutex_lock(&s->map_lock);
    /* Without holding readers back: a write transaction (an ingest's) may last minutes. New
     * writers are held back from the moment growing is set, under the same lock. */
    while (s->writers > 0)
        pthread_cond_wait(&s->map_cond, &s->map_lock);
    s->growing++;
    pthread_mutex_unlock(&s->map_lock);
    /* After growing is set, so that no new prefetch starts (rv_store_prefetch). */
    prefetch_join(s, true);
    pthread_mutex_lock(&s->map_lock);
    /* A writer whose thread holds a read transaction is not held back: wait for it too. */
    while (s->readers > 0 || s->writers > 0)
        pthread_cond_wait(&s->map_cond, &s->map_lock);
    /* Two growths asked at once: the larger stands. */
    if (size != 0 && (rc = mdb_env_info(s->env, &info)) == 0)
        large = info.me_mapsize >= size;
    if (rc == 0 && !large)
        rc = mdb_env_set_mapsize(s->env, size);
    s->growing--;
    pthread_cond_broadcast(&s->map_cond);
    pthread_mutex_unlock(&s->map_lock);
    return rc;
}

int rv_store_prefetch(struct rv_store *s)
{
    uint64_t used = rv_store_used(s), mapped = 0, mem = memory_limit();
    sigset_t all, old;
    bool growing;
    int rc = 0;

    pthread_mutex_lock(&s->prefetch_lock);
    if (s->prefetching && atomic_load(&s->prefetch_done)) {
        pthread_join(s->prefetcher, NULL);
        s->prefetching = false;
    }
    /* A store larger than half the memory this process may use would only push its own
     * pages (and everyone else's) out of the page cache as it went: leave it to fault. */
    pthread_mutex_lock(&s->map_lock);
    growing = s->growing > 0; /* a growth would only stop it: the caller asks again after */
    pthread_mutex_unlock(&s->map_lock);
    if (growing || s->prefetching || used == 0 || (mem > 0 && used > mem / 2) ||
        (s->map = map_base(s, &mapped)) == NULL)
        goto out;
    s->map_used = used < mapped ? used : mapped;
    atomic_store(&s->prefetch_stop, false);
    atomic_store(&s->prefetch_done, false);
    /* The thread takes no signal: a daemon's SIGTERM is the main thread's to wait for. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&s->prefetcher, NULL, prefetch_main, s) == 0) {
        s->prefetching = true;
        rc = 1;
    } else {
        rc = RV_ENOMEM;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
    pthread_mutex_unlock(&s->prefetch_lock);
    return rc;
}

void rv_store_prefetch_wait(struct rv_store *s)
{
    prefetch_join(s, false);
}

int rv_store_reserve(struct rv_store *s, uint64_t bytes)
{
    uint64_t used, mapsize, need, size;
    int rc;

    /* Setting the map size maps the whole file again, and every page of it then faults in
     * afresh: do it only to grow. */
    rc = used_of(s, &used, &mapsize);
    if (rc != 0)
        return map_err(rc);
    need = used + bytes + (bytes / 4) + (16ull << 20);
    if (need <= mapsize)
        return 0;
    /* Another process may have grown the map: adopt its size first. */
    rc = set_mapsize(s, 0);
    if (rc != 0)
        return map_err(rc);
    rc = used_of(s, &used, &mapsize);
    if (rc != 0)
        return map_err(rc);
    need = used + bytes + (bytes / 4) + (16ull << 20);
    if (need <= mapsize)
        return 0;
    size = mapsize;
    while (size < need)
        size += size < MAP_STEP_MIN ? MAP_STEP_MIN : size / 2;
    size = (size + (1ull << 20) - 1) & ~((1ull << 20) - 1);
    return map_err(set_mapsize(s, (size_t)size));
}

int rv_store_begin(struct rv_store *s, bool write, struct rv_txn **out)
{
    struct rv_txn *t;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return RV_ENOMEM;
    t->s = s;
    t->write = write;
    txn_enter(s, write);
    rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map; adopt its size and retry once. */
        txn_leave(s, write);
        rc = set_mapsize(s, 0);
        txn_enter(s, write);
        if (rc == 0)
            rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    }
    if (rc != 0) {
        txn_leave(s, write);
        free(t);
        return map_err(rc);
    }
    t->counted = true;
    *out = t;
    return 0;
}

int rv_store_commit(struct rv_txn *t)
{
    int rc;

    if (t->sc != NULL)
        mdb_cursor_close(t->sc);
    if (t->rc != NULL)
        mdb_cursor_close(t->rc);
    if (t->wc != NULL)
        mdb_cursor_close(t->wc);
    rc = mdb_txn_commit(t->txn);
    if (t->counted)
        txn_leave(t->s, t->write);
    free(t);
    return map_err(rc);
}

void rv_store_abort(struct rv_txn *t)
{
    if (t == NULL)
        return;
    if (t->sc != NULL)
        mdb_cursor_close(t->sc);
    if (t->rc != NULL)
        mdb_cursor_close(t->rc);
    if (t->wc != NULL)
        mdb_cursor_close(t->wc);
    mdb_txn_abort(t->txn);
    if (t->counted)
        txn_leave(t->s, t->write);
    free(t);
}

void rv_store_reset(struct rv_txn *t)
{
    if (t->write || !t->counted)
        return;
    mdb_txn_reset(t->txn);
    t->counted = false;
    txn_leave(t->s, false);
}

int rv_store_renew(struct rv_txn *t)
{
    int rc;

    if (t->write)
        return RV_EINVAL;
    if (t->counted) /* renewed without a reset: LMDB refuses it, as before */
        return map_err(mdb_txn_renew(t->txn));
    txn_enter(t->s, false);
    rc = mdb_txn_renew(t->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map; adopt its size and retry once. */
        txn_leave(t->s, false);
        rc = set_mapsize(t->s, 0);
        txn_enter(t->s, false);
        if (rc == 0)
            rc = mdb_txn_renew(t->txn);
    }
    /* A read-only transaction's cursors outlive a reset, to be renewed with it. */
    if (rc == 0 && t->sc != NULL)
        rc = mdb_cursor_renew(t->txn, t->sc);
    if (rc == 0 && t->rc != NULL)
        rc = mdb_cursor_renew(t->txn, t->rc);
    if (rc != 0) {
        mdb_txn_reset(t->txn);
        txn_leave(t->s, false);
        return map_err(rc);
    }
    t->counted = true;
    return 0;
}

uint64_t rv_store_snapshot_id(struct rv_txn *t)
{
    return (uint64_t)mdb_txn_id(t->txn);
}

int rv_store_get(struct rv_txn *t, const void *key, size_t klen, const void **val, size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->txn, t->s->dbi, &k, &v);

    if (rc != 0)
        return map_err(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

static int put_with(struct rv_txn *t, MDB_cursor **c, const void *key, size_t klen, const void *val,
                    size_t vlen, unsigned flags)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

    int rc;

    if (!t->write || klen == 0 || klen > 511)
        return RV_EINVAL;
    if (*c == NULL && (rc = mdb_cursor_open(t->txn, t->s->dbi, c)) != 0)
        return map_err(rc);
    return map_err(mdb_cursor_put(*c, &k, &v, flags));
}

static int put(struct rv_txn *t, const void *key, size_t klen, const void *val, size_t vlen,
               unsigned flags)
{
    return put_with(t, &t->wc, key, klen, val, vlen, flags);
}

int rv_store_put_run(struct rv_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return put_with(t, &t->rc, key, klen, val, vlen, 0);
}

int rv_store_get_run(struct rv_txn *t, const void *key, size_t klen, const void **val, size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc;

    if (klen == 0 || klen > 511)
        return RV_EINVAL;
    if (t->rc == NULL && (rc = mdb_cursor_open(t->txn, t->s->dbi, &t->rc)) != 0)
        return map_err(rc);
    rc = mdb_cursor_get(t->rc, &k, &v, MDB_SET_KEY);
    if (rc != 0)
        return map_err(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int rv_store_put(struct rv_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return put(t, key, klen, val, vlen, 0);
}

int rv_store_insert(struct rv_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return put(t, key, klen, val, vlen, MDB_NOOVERWRITE);
}

int rv_store_append(struct rv_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    int rc = put(t, key, klen, val, vlen, MDB_APPEND);
    return rc == RV_EEXIST ? RV_EINVAL : rc;
}

int rv_store_del(struct rv_txn *t, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};

    if (!t->write)
        return RV_EINVAL;
    return map_err(mdb_del(t->txn, t->s->dbi, &k, NULL));
}

int rv_store_cursor_open(struct rv_txn *t, const void *prefix, size_t plen, struct rv_cursor **out)
{
    struct rv_cursor *c;
    int rc;

    *out = NULL;
    if (plen > sizeof(c->prefix))
        return RV_EINVAL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return RV_ENOMEM;
    rc = mdb_cursor_open(t->txn, t->s->dbi, &c->cur);
    if (rc != 0) {
        free(c);
        return map_err(rc);
    }
    if (plen > 0)
        memcpy(c->prefix, prefix, plen);
    c->plen = plen;
    *out = c;
    return 0;
}

int rv_store_cursor_next(struct rv_cursor *c, const uint8_t **key, size_t *klen,
                         const uint8_t **val, size_t *vlen)
{
    MDB_val k = {c->plen, c->prefix}, v;
    int rc;

    if (!c->started) {
        c->started = true;
        rc = c->plen > 0 ? mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE)
                         : mdb_cursor_get(c->cur, &k, &v, MDB_FIRST);
    } else {
        rc = mdb_cursor_get(c->cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return map_err(rc);
    if (k.mv_size < c->plen || memcmp(k.mv_data, c->prefix, c->plen) != 0)
        return 0;
    *key = k.mv_data;
    *klen = k.mv_size;
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 1;
}

int rv_store_cursor_del(struct rv_cursor *c)
{
    return map_err(mdb_cursor_del(c->cur, 0));
}

void rv_store_cursor_close(struct rv_cursor *c)
{
    if (c == NULL)
        return;
    mdb_cursor_close(c->cur);
    free(c);
}

int rv_store_del_prefix(struct rv_txn *t, const void *prefix, size_t plen, rv_store_keep_fn keep,
                        void *ctx)
{
    struct rv_cursor *c = NULL;
    const uint8_t *k, *v;
    size_t klen, vlen;
    int rc;

    if ((rc = rv_store_cursor_open(t, prefix, plen, &c)) != 0)
        return rc;
    while ((rc = rv_store_cursor_next(c, &k, &klen, &v, &vlen)) == 1)
        if ((keep == NULL || !keep(ctx, k, klen)) && (rc = rv_store_cursor_del(c)) != 0)
            break;
    rv_store_cursor_close(c);
    return rc;
}

int rv_store_scan(struct rv_txn *t, const void *prefix, size_t plen, rv_store_scan_fn fn, void *ctx)
{
    MDB_cursor *cur = NULL;
    MDB_val k = {plen, (void *)prefix}, v;
    bool own = t->sc_busy;
    int rc;

    if (plen > 511)
        return RV_EINVAL;
    if (own || t->sc == NULL) {
        rc = mdb_cursor_open(t->txn, t->s->dbi, &cur);
        if (rc != 0)
            return map_err(rc);
        if (!own)
            t->sc = cur;
    } else {
        cur = t->sc;
    }
    if (!own)
        t->sc_busy = true;
    rc = plen > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (;;) {
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) {
            rc = map_err(rc);
            break;
        }
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (rc != 0) {
            if (rc > 0)
                rc = 0;
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (own)
        mdb_cursor_close(cur);
    else
        t->sc_busy = false;
    return rc;
}
