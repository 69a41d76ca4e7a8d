/*
 * ingest.c - register files into the vault, each as one atomic batch, on two threads;
 * several files in one store transaction (a load).
 *
 * Each file is first hashed (keyed) to see whether it was ingested before. Then a reader
 * thread parses rows, maps them to entries and prepares them (normalised keys, blind-index
 * values, content hash, and for editions the sealed payload), filling fixed-size chunks;
 * the calling thread applies the chunks in file order to the vault batch, which owns the
 * store's write transaction, and while no chunk is ready lets the batch write its sorted
 * open-entry runs (rv_vault_batch_idle), so that they do not wait for the commit with the
 * reader idle. Each thread keeps a small cache of the last household it prepared.
 * Memory is a few chunks, whatever the file's size.
 *
 * A load applies its files' batches one after another in one write transaction, so that
 * the index and list pages that every file touches (keyed hashes spread them over the
 * whole store) are copied and written once per load instead of once per file: the batches
 * hand their index entries and list additions to the load, which merges them into the
 * store in key order at its commit. There are
 * no nested transactions: when a file is refused after its batch began, the load is
 * abandoned and redone without it, the files before it read again. When the store's map
 * fills up, the load is abandoned, the map grown, and the files read again.
 */
#include "ingest/ingest.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_ROWS     512
#define NCHUNKS        4
#define PROGRESS_EVERY 65536
#define IDLE_WRITES    1024 /* deferred writes between looks at the queue */

enum item_kind { ITEM_INVALID = 0, ITEM_ENTRY, ITEM_ANONYMOUS };

struct item {
    enum item_kind what;
    bool unprepared; /* left for the applying thread to prepare */
    uint64_t id;     /* record id it is sealed for */
    enum rv_row_kind kind;
    rv_date eff;
    unsigned long line;
    struct rv_diag diag; /* when invalid */
    struct rv_prepared p;
};

struct chunk {
    size_t n;
    bool last; /* no chunk follows */
    int fatal; /* reading stopped on this error */
    struct rv_diag fatal_diag;
    uint64_t bytes; /* file offset after the chunk */
    struct chunk *next;
    struct item items[CHUNK_ROWS];
};

struct reader {
    struct rv_vault *v;
    const struct rv_ingest_opts *o;
    const char *path;
    struct rv_csv *csv;
    struct rv_ingest_map map;
    const struct rv_vault_sealer *sealer;
    struct rv_vault_prep_cache *cache; /* the reader thread's */
    uint64_t first_id, rowno;
    unsigned long last_err_line;
    int repeat_errs;
    unsigned share; /* of every 8 entries, how many the reader prepares */
    bool done;
};

/* A queue of chunks: full ones flow to the applier, free ones back to the reader. */
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct chunk *free, *full_head, *full_tail;
    bool stop;
};

static void set_file(struct rv_diag *d, const char *path, unsigned long line)
{
    snprintf(d->file, sizeof(d->file), "%s", path);
    d->line = line;
}

/* Normalises, hashes and seals an entry; a failure makes it a refused row. */
static void prepare_item(struct rv_vault *v, struct rv_vault_prep_cache *cache,
                         const struct rv_vault_sealer *sealer, struct item *it)
{
    int rc = rv_vault_prepare_cached(v, cache, &it->p.e, sealer, it->id, &it->p);

    it->unprepared = false;
    if (rc != 0) {
        it->what = ITEM_INVALID;
        it->diag.col = 0;
        snprintf(it->diag.msg, sizeof(it->diag.msg), "the entry could not be prepared (%s)",
                 rv_strerror(rc));
        sodium_memzero(&it->p.e, sizeof(it->p.e));
    }
}

static void fill_chunk(struct reader *r, struct chunk *c)
{
    char **fields;
    size_t nfields;
    struct rv_diag diag;
    int rc;

    c->n = 0;
    c->last = false;
    c->fatal = 0;
    while (c->n < CHUNK_ROWS) {
        struct item *it = &c->items[c->n];
        rv_diag_clear(&diag);
        rc = rv_csv_next(r->csv, &fields, &nfields, &diag);
        if (rc == 0) {
            c->last = true;
            break;
        }
        if (rc < 0) {
            unsigned long line = rv_csv_line(r->csv);
            if (rc != RV_EPARSE && rc != RV_ETOOBIG) {
                c->fatal = rc;
                c->fatal_diag = diag;
                c->last = true;
                break;
            }
            /* A reader that cannot get past a line would loop for ever. */
            if (line == r->last_err_line && ++r->repeat_errs > 2) {
                c->fatal = rc;
                c->fatal_diag = diag;
                c->last = true;
                break;
            }
            r->last_err_line = line;
            it->what = ITEM_INVALID;
            it->diag = diag;
            it->line = diag.line != 0 ? diag.line : line;
            set_file(&it->diag, r->path, it->line);
            c->n++;
            continue;
        }
        r->repeat_errs = 0;
        if (nfields == 1 && fields[0][0] == '\0')
            continue; /* a blank line */
        it->line = rv_csv_line(r->csv);
        it->diag.file[0] = '\0'; /* named when reported */
        it->diag.line = it->line;
        rc = rv_ingest_map_row(&r->map, fields, nfields, r->o->area, &it->p.e, &it->kind, &it->eff,
                               &it->diag);
        r->rowno++;
        if (rc != 0) {
            it->what = ITEM_INVALID;
        } else if (it->kind == RV_ROW_ANONYMOUS) {
            it->what = ITEM_ANONYMOUS;
        } else {
            it->what = ITEM_ENTRY;
            it->id = r->first_id + r->rowno;
            it->unprepared = r->rowno % 8 >= r->share;
            if (!it->unprepared)
                prepare_item(r->v, r->cache, r->sealer, it);
        }
        if (it->what != ITEM_ENTRY)
            sodium_memzero(&it->p.e, sizeof(it->p.e));
        c->n++;
    }
    c->bytes = rv_csv_offset(r->csv);
    if (c->last)
        r->done = true;
}

static struct chunk *queue_take_free(struct queue *q)
{
    struct chunk *c = NULL;

    pthread_mutex_lock(&q->lock);
    while (!q->stop && q->free == NULL)
        pthread_cond_wait(&q->cond, &q->lock);
    if (!q->stop) {
        c = q->free;
        q->free = c->next;
    }
    pthread_mutex_unlock(&q->lock);
    return c;
}

static void queue_put_full(struct queue *q, struct chunk *c)
{
    pthread_mutex_lock(&q->lock);
    c->next = NULL;
    if (q->full_tail != NULL)
        q->full_tail->next = c;
    else
        q->full_head = c;
    q->full_tail = c;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct chunk *queue_take_full(struct queue *q)
{
    struct chunk *c;

    pthread_mutex_lock(&q->lock);
    while (q->full_head == NULL)
        pthread_cond_wait(&q->cond, &q->lock);
    c = q->full_head;
    q->full_head = c->next;
    if (q->full_head == NULL)
        q->full_tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return c;
}

/* A full chunk if one is waiting, else NULL. */
static struct chunk *queue_try_take_full(struct queue *q)
{
    struct chunk *c;

    pthread_mutex_lock(&q->lock);
    c = q->full_head;
    if (c != NULL) {
        q->full_head = c->next;
        if (q->full_head == NULL)
            q->full_tail = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return c;
}

static void queue_put_free(struct queue *q, struct chunk *c)
{
    pthread_mutex_lock(&q->lock);
    c->next = q->free;
    q->free = c;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

struct worker {
    struct reader *r;
    struct queue *q;
};

static void *reader_main(void *arg)
{
    struct worker *w = arg;
    struct chunk *c;

    while (!w->r->done && (c = queue_take_free(w->q)) != NULL) {
        /* Preparing costs more than storing, so the applier prepares some entries itself:
         * three in eight when it has nothing queued, one in eight with one chunk queued. */
        pthread_mutex_lock(&w->q->lock);
        w->r->share = w->q->full_head == NULL ? 5 : w->q->full_head->next == NULL ? 7 : 8;
        pthread_mutex_unlock(&w->q->lock);
        fill_chunk(w->r, c);
        queue_put_full(w->q, c);
    }
    return NULL;
}

/* Hashes the file (keyed) and finds its size. */
static int hash_file(struct rv_vault *v, const char *path, uint8_t hash[32], uint64_t *size)
{
    struct rv_vault_filehash h;
    uint8_t *buf = NULL;
    ssize_t n;
    int fd, rc;

    *size = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
    buf = malloc(1 << 20);
    if (buf == NULL) {
        close(fd);
        return RV_ENOMEM;
    }
    rc = rv_vault_filehash_init(v, &h);
    while (rc == 0 && (n = read(fd, buf, 1 << 20)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = RV_EIO;
            break;
        }
        rv_vault_filehash_update(&h, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    if (rc == 0)
        rv_vault_filehash_final(&h, hash);
    sodium_memzero(buf, 1 << 20);
    free(buf);
    close(fd);
    return rc;
}

static void reject_item(struct rv_ingest_result *res, const struct rv_ingest_opts *o,
                        const char *path, struct rv_diag *d, uint64_t *invalid)
{
    set_file(d, path, d->line);
    if (*invalid == 0)
        res->first_error = *d;
    ++*invalid;
    if (o->on_error != NULL)
        o->on_error(o->ctx, d);
}

static const char *outcome_rule(enum rv_apply a)
{
    switch (a) {
    case RV_APPLIED_DUPLICATE:
        return "Elector Number: appears more than once in this edition";
    case RV_APPLIED_MISSING:
        return "Elector Number: a deletion for an elector number not on the register";
    case RV_APPLIED_EARLY:
        return "the alteration's date is before the entry's current version began";
    default:
        return "the row could not be applied";
    }
}

/* One attempt at the whole file, in load l. Returns 0, or a negative code (RV_ETOOBIG: grow,
 * retry). *began is set once the file's batch began: unless the file was then stored
 * (0, not rejected), the load is dead. */
static int attempt(struct rv_vault *v, struct rv_vault_load *l, const char *path,
                   const struct rv_ingest_opts *o, const uint8_t hash[32], uint64_t size,
                   struct rv_ingest_result *res, bool *began)
{
    struct rv_csv_opts copts = {0, o->enc, 0, 0};
    struct reader r;
    struct queue q;
    struct worker w = {&r, &q};
    struct chunk *chunks = NULL;
    struct rv_vault_batch *b = NULL;
    struct rv_vault_prep_cache *cache = NULL; /* the applying thread's */
    struct rv_ingest_progress prog = {0, 0, size};
    struct rv_diag diag;
    char **fields;
    size_t nfields;
    pthread_t th;
    bool threaded = false, stop = false;
    uint64_t rows = 0, anonymous = 0, invalid = 0, next_progress = PROGRESS_EVERY;
    int rc;

    memset(&r, 0, sizeof(r));
    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.cond, NULL);
    r.v = v;
    r.o = o;
    r.path = path;
    r.share = 8;
    rv_diag_clear(&diag);

    rc = rv_csv_open(path, &copts, &r.csv, &diag);
    if (rc != 0) {
        res->first_error = diag;
        goto out;
    }
    do {
        rc = rv_csv_next(r.csv, &fields, &nfields, &diag);
    } while (rc == 1 && nfields == 1 && fields[0][0] == '\0');
    if (rc <= 0) {
        if (rc == 0)
            rv_diag_set(&diag, path, 1, 0,
                        "the file is empty: a register file starts with a "
                        "header row");
        set_file(&diag, path, diag.line != 0 ? diag.line : 1);
        res->first_error = diag;
        rc = RV_EPARSE;
        goto out;
    }
    rc = rv_ingest_map_header(fields, nfields, o->alterations, &r.map, &diag);
    if (rc != 0) {
        set_file(&diag, path, rv_csv_line(r.csv));
        res->first_error = diag;
        goto out;
    }

    rc = rv_vault_batch_begin_in(l, o->area, o->alterations ? RV_FILE_ALTERATIONS : RV_FILE_EDITION,
                                 o->edition, hash, &b);
    if (rc != 0)
        goto out;
    *began = true;
    if (!o->alterations) {
        rc = rv_vault_batch_presealing(b, size + 1, &r.sealer, &r.first_id);
        if (rc != 0)
            goto out;
    }

    rc = rv_vault_prep_cache_new(&cache);
    if (rc == 0)
        rc = rv_vault_prep_cache_new(&r.cache);
    if (rc != 0)
        goto out;
    chunks = calloc(o->single_thread ? 1 : NCHUNKS, sizeof(*chunks));
    if (chunks == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if (!o->single_thread) {
        for (int i = 0; i < NCHUNKS; i++)
            queue_put_free(&q, &chunks[i]);
        if (pthread_create(&th, NULL, reader_main, &w) != 0) {
            rc = RV_ENOMEM;
            goto out;
        }
        threaded = true;
    }

    while (!stop) {
        struct chunk *c;
        if (threaded) {
            /* While the reader has nothing ready, the batch catches up on deferred writes,
             * so that they do not stop both threads later. */
            int more = 1;
            while ((c = queue_try_take_full(&q)) == NULL && more > 0)
                more = rv_vault_batch_idle(b, IDLE_WRITES);
            if (c == NULL)
                c = queue_take_full(&q);
        } else {
            c = &chunks[0];
            fill_chunk(&r, c);
        }
        for (size_t i = 0; i < c->n && rc == 0 && !stop; i++) {
            struct item *it = &c->items[i];
            enum rv_apply outcome;
            rows++;
            if (it->what == ITEM_ENTRY && it->unprepared)
                prepare_item(v, cache, r.sealer, it);
            if (it->what == ITEM_ANONYMOUS) {
                anonymous++;
                continue;
            }
            if (it->what == ITEM_ENTRY) {
                if (o->alterations)
                    rc = rv_vault_batch_alteration_row(b, &it->p, it->kind == RV_ROW_DELETE,
                                                       it->eff, &outcome);
                else
                    rc = rv_vault_batch_edition_row(b, &it->p, &outcome);
                /* The entry stays in the chunk until the reader overwrites it; chunks are
                 * wiped when the file is done. */
                if (rc != 0)
                    break;
                if (outcome == RV_APPLIED_NEW || outcome == RV_APPLIED_SAME ||
                    outcome == RV_APPLIED_CLOSED)
                    continue;
                it->diag.col = 0;
                snprintf(it->diag.msg, sizeof(it->diag.msg), "%s", outcome_rule(outcome));
            }
            if (it->what == ITEM_INVALID || it->what == ITEM_ENTRY) {
                reject_item(res, o, path, &it->diag, &invalid);
                if (invalid > o->max_errors)
                    stop = true;
            }
        }
        if (c->fatal != 0 && rc == 0) {
            rc = c->fatal;
            res->first_error = c->fatal_diag;
            set_file(&res->first_error, path, c->fatal_diag.line);
        }
        prog.rows = rows;
        prog.bytes = c->bytes;
        if (c->last || rc != 0)
            stop = true;
        if (threaded)
            queue_put_free(&q, c);
        if (o->progress != NULL && (rows >= next_progress || stop)) {
            o->progress(o->ctx, &prog);
            next_progress = rows + PROGRESS_EVERY;
        }
    }
    if (threaded) {
        pthread_mutex_lock(&q.lock);
        q.stop = true;
        pthread_cond_broadcast(&q.cond);
        pthread_mutex_unlock(&q.lock);
        pthread_join(th, NULL);
        threaded = false;
    }
    if (rc != 0)
        goto out;
    if (invalid > o->max_errors) {
        res->rejected = true;
        res->st.rows = rows;
        res->st.anonymous = anonymous;
        res->st.invalid = invalid;
        goto out; /* the batch is abandoned: nothing of the file is stored */
    }
    rv_vault_batch_count(b, rows, anonymous, invalid);
    rc = rv_vault_batch_commit(b, &res->st);
    b = NULL;
out:
    if (threaded) {
        pthread_mutex_lock(&q.lock);
        q.stop = true;
        pthread_cond_broadcast(&q.cond);
        pthread_mutex_unlock(&q.lock);
        pthread_join(th, NULL);
    }
    rv_vault_batch_abort(b);
    if (chunks != NULL) {
        sodium_memzero(chunks, (o->single_thread ? 1 : NCHUNKS) * sizeof(*chunks));
        free(chunks);
    }
    rv_vault_prep_cache_free(r.cache);
    rv_vault_prep_cache_free(cache);
    rv_csv_close(r.csv);
    pthread_cond_destroy(&q.cond);
    pthread_mutex_destroy(&q.lock);
    return rc;
}

/* What a load keeps of each file between its attempts. */
struct load_file {
    uint8_t hash[32];
    uint64_t size;
    bool reported; /* its refused rows were reported by an earlier attempt */
};

/* One attempt at files[0, *limit) in one load. Returns 0 when the load committed (or held
 * nothing to commit), RV_ETOOBIG when the map filled up (grow, redo), another negative code
 * when the load failed, or 1 when a file stopped the load after its batch began. When a
 * file stops the load, *limit becomes its index, its outcome goes to *stop_rc and
 * *stop_res, and *stopped is set; with 1, the load is redone without it. */
static int load_attempt(struct rv_vault *v, struct rv_ingest_file *files, struct load_file *lf,
                        size_t *limit, int *stop_rc, struct rv_ingest_result *stop_res,
                        bool *stopped)
{
    struct rv_vault_load *l = NULL;
    bool any = false;
    int rc;

    rc = rv_vault_load_begin(v, &l);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < *limit; i++) {
        struct rv_ingest_file *f = &files[i];
        struct rv_ingest_opts o = f->o;
        bool began = false;
        memset(&f->res, 0, sizeof(f->res));
        f->rc = 0;
        rc = rv_vault_load_file_seen(l, lf[i].hash, &f->res.st);
        if (rc == 0) {
            f->res.already = true;
            continue;
        }
        if (rc != RV_ENOTFOUND)
            goto out; /* the load's own failure */
        /* A file read again (the load redone) has had its refused rows reported. */
        if (lf[i].reported)
            o.on_error = NULL;
        rc = attempt(v, l, f->path, &o, lf[i].hash, lf[i].size, &f->res, &began);
        if (rc == RV_ETOOBIG && f->res.first_error.msg[0] == '\0')
            goto out; /* the map is full: grow and redo the load */
        lf[i].reported = true;
        if (rc == 0 && !f->res.rejected) {
            any = true;
            continue;
        }
        /* The file stops the load: the files before it are kept, it and those after are
         * not tried. */
        *stop_rc = rc;
        *stop_res = f->res;
        *stopped = true;
        *limit = i;
        if (began) {
            rc = 1; /* its batch wrote to the load: redo the load without it */
            goto out;
        }
        break;
    }
    if (!any) {
        rc = 0; /* nothing to store */
        goto out;
    }
    rc = rv_vault_load_commit(l);
    l = NULL;
out:
    rv_vault_load_abort(l);
    return rc;
}

int rv_ingest_load(struct rv_vault *v, struct rv_ingest_file *files, size_t n, size_t *done)
{
    struct load_file *lf = NULL;
    struct rv_ingest_result stop_res;
    struct rv_file_stats seen;
    size_t limit = n;
    uint64_t reserve = 64ull << 20;
    bool stopped = false;
    int rc = 0, stop_rc = 0;

    *done = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&files[i].res, 0, sizeof(files[i].res));
        files[i].rc = 0;
    }
    if (n == 0)
        return 0;
    lf = calloc(n, sizeof(*lf));
    if (lf == NULL) {
        files[0].rc = RV_ENOMEM;
        *done = 1;
        return RV_ENOMEM;
    }
    /* Each file's keyed hash and size first: a file that cannot be read stops the load
     * before anything is written. */
    for (size_t i = 0; i < n && !stopped; i++) {
        struct rv_ingest_file *f = &files[i];
        memset(&stop_res, 0, sizeof(stop_res));
        if (f->o.area == NULL || f->o.edition == RV_DATE_NONE) {
            stop_rc = RV_EINVAL;
        } else if ((stop_rc = hash_file(v, f->path, lf[i].hash, &lf[i].size)) != 0) {
            rv_diag_set(&stop_res.first_error, f->path, 0, 0, "cannot read the file");
        }
        if (stop_rc != 0) {
            stopped = true;
            limit = i;
            break;
        }
        /* About 12 bytes of store per byte of register file, doubled on each retry; none
         * for a file already stored (the load finds it again in its transaction). */
        if (rv_vault_file_seen(v, lf[i].hash, &seen) != 0)
            reserve += lf[i].size * 12;
    }
    for (int tries = 0; tries < 6;) {
        rc = rv_store_reserve(rv_vault_store(v), reserve);
        if (rc != 0)
            break;
        rc = load_attempt(v, files, lf, &limit, &stop_rc, &stop_res, &stopped);
        if (rc == 1)
            continue; /* redo without the file that stopped it (limit shrank) */
        if (rc != RV_ETOOBIG)
            break;
        reserve *= 2;
        tries++;
    }
    *done = limit;
    if (rc != 0) {
        /* The load failed as a whole: none of its files is stored. */
        for (size_t i = 0; i < limit; i++)
            if (files[i].rc == 0 && !files[i].res.already) {
                memset(&files[i].res, 0, sizeof(files[i].res));
                files[i].rc = rc;
            }
    }
    if (stopped) {
        files[limit].rc = stop_rc;
        files[limit].res = stop_res;
        *done = limit + 1;
    }
    rc = 0;
    for (size_t i = 0; i < *done && rc == 0; i++)
        rc = files[i].rc;
    sodium_memzero(lf, n * sizeof(*lf));
    free(lf);
    return rc;
}

int rv_ingest_file(struct rv_vault *v, const char *path, const struct rv_ingest_opts *o,
                   struct rv_ingest_result *out)
{
    struct rv_ingest_file f;
    size_t done;
    int rc;

    memset(&f, 0, sizeof(f));
    f.path = path;
    f.o = *o;
    rc = rv_ingest_load(v, &f, 1, &done);
    *out = f.res;
    return rc;
}
