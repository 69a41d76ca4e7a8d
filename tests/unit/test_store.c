/*
 * test_store.c - the LMDB store: what is committed stays, what is aborted vanishes, scans
 * see exactly their prefix, cursors delete as they go, a transaction that fills the
 * map fails cleanly and succeeds once the map is grown, a growth waits for the other
 * threads' transactions (and is refused inside one of its own thread), and a prefetch leaves
 * nothing to fault in.
 */
#include "store/store.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rv-test-store-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_str(struct rv_txn *t, const char *k, const char *v)
{
    assert_int_equal(rv_store_put(t, k, strlen(k), v, strlen(v)), 0);
}

static void test_commit_abort_reopen(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    const void *v;
    size_t vl;

    (void)state;
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "a1", "one");
    put_str(t, "a2", "two");
    assert_int_equal(rv_store_commit(t), 0);

    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "a3", "three");
    assert_int_equal(rv_store_del(t, "a1", 2), 0);
    rv_store_abort(t);
    rv_store_close(s);

    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    assert_int_equal(rv_store_get(t, "a1", 2, &v, &vl), 0);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "one", 3);
    assert_int_equal(rv_store_get(t, "a3", 2, &v, &vl), RV_ENOTFOUND);
    /* A read transaction cannot write. */
    assert_int_equal(rv_store_put(t, "zz", 2, "x", 1), RV_EINVAL);
    rv_store_abort(t);
    rv_store_close(s);
}

struct seen {
    char keys[8][8];
    int n;
};

static int collect(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct seen *s = ctx;
    (void)v;
    (void)vl;
    if (s->n < 8 && kl < 8) {
        memcpy(s->keys[s->n], k, kl);
        s->keys[s->n][kl] = 0;
    }
    s->n++;
    return 0;
}

static int stop_at_two(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    collect(ctx, k, kl, v, vl);
    return ((struct seen *)ctx)->n >= 2 ? 1 : 0;
}

static void test_scan_prefix_and_cursor_delete(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    struct rv_cursor *c = NULL;
    struct seen seen = {0};
    const uint8_t *k, *v;
    size_t kl, vl;
    int rc;

    (void)state;
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "b", "x");
    put_str(t, "ba", "x");
    put_str(t, "bb", "x");
    put_str(t, "bc", "x");
    put_str(t, "c", "x");
    put_str(t, "a", "x");
    assert_int_equal(rv_store_scan(t, "b", 1, collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.keys[0], "b");
    assert_string_equal(seen.keys[3], "bc");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_store_scan(t, "b", 1, stop_at_two, &seen), 0);
    assert_int_equal(seen.n, 2);

    /* Delete every other key while walking. */
    assert_int_equal(rv_store_cursor_open(t, "b", 1, &c), 0);
    int i = 0;
    while ((rc = rv_store_cursor_next(c, &k, &kl, &v, &vl)) == 1) {
        if (i++ % 2 == 0)
            assert_int_equal(rv_store_cursor_del(c), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, 4);
    rv_store_cursor_close(c);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_store_scan(t, "b", 1, collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.keys[0], "ba");
    assert_string_equal(seen.keys[1], "bc");
    /* Appending a key that is not the greatest is refused. */
    assert_int_equal(rv_store_append(t, "b0", 2, "x", 1), RV_EINVAL);
    rv_store_abort(t);
    rv_store_close(s);
}

/* A scan's callback may scan again (the inner scan takes its own cursor, the outer one goes
 * on where it was); scans one after another in a transaction, on a write transaction
 * between puts and in a read-only one, each see their own prefix whole; and
 * rv_store_get_run finds keys as rv_store_get does. */
struct nested {
    struct rv_txn *t;
    int outer, inner;
};

static int count_inner(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    ((struct nested *)ctx)->inner++;
    return 0;
}

static int scan_again(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct nested *n = ctx;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    n->outer++;
    return rv_store_scan(n->t, "c", 1, count_inner, n);
}

static void test_scan_reuse_nested_and_get_run(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    struct seen seen = {0};
    struct nested n = {0};
    const void *v;
    size_t vl;

    (void)state;
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "b1", "x");
    put_str(t, "b2", "x");
    put_str(t, "b3", "x");
    put_str(t, "c1", "x");
    put_str(t, "c2", "x");
    n.t = t;
    assert_int_equal(rv_store_scan(t, "b", 1, scan_again, &n), 0);
    assert_int_equal(n.outer, 3);
    assert_int_equal(n.inner, 6);
    put_str(t, "b0", "x");
    assert_int_equal(rv_store_scan(t, "b", 1, collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.keys[0], "b0");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_store_scan(t, "c", 1, collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(rv_store_get_run(t, "b2", 2, &v, &vl), 0);
    assert_int_equal(vl, 1);
    assert_int_equal(rv_store_get_run(t, "b25", 3, &v, &vl), RV_ENOTFOUND);
    assert_int_equal(rv_store_put_run(t, "b25", 3, "yy", 2), 0);
    assert_int_equal(rv_store_get_run(t, "b25", 3, &v, &vl), 0);
    assert_int_equal(vl, 2);
    assert_int_equal(rv_store_get_run(t, "a", 1, &v, &vl), RV_ENOTFOUND);
    assert_int_equal(rv_store_commit(t), 0);
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    for (int i = 0; i < 3; i++) {
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(rv_store_scan(t, i == 1 ? "c" : "b", 1, collect, &seen), 0);
        assert_int_equal(seen.n, i == 1 ? 2 : 5);
    }
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_store_scan(t, "", 0, collect, &seen), 0);
    assert_int_equal(seen.n, 7);
    rv_store_abort(t);
    rv_store_close(s);
}

/* A run of ascending puts interleaved with appends and ordinary puts (enough to split
 * pages under both cursors) stores every key, and survives the commit. */
static void test_put_run_interleaved(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    uint8_t key[9], val[40];
    const void *v;
    size_t vl;

    (void)state;
    memset(val, 0x5a, sizeof(val));
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    for (uint32_t i = 0; i < 20000; i++) {
        key[0] = 'I';
        for (int j = 0; j < 4; j++)
            key[1 + j] = (uint8_t)(i >> (24 - 8 * j));
        assert_int_equal(rv_store_put_run(t, key, 5, "", 0), 0);
        key[0] = 0xff;
        assert_int_equal(rv_store_append(t, key, 5, val, sizeof(val)), 0);
        key[0] = 'O';
        key[4] = (uint8_t)(i * 7);
        assert_int_equal(rv_store_put(t, key, 5, val, 8), 0);
    }
    assert_int_equal(rv_store_commit(t), 0);
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    for (uint32_t i = 0; i < 20000; i++) {
        key[0] = 'I';
        for (int j = 0; j < 4; j++)
            key[1 + j] = (uint8_t)(i >> (24 - 8 * j));
        assert_int_equal(rv_store_get(t, key, 5, &v, &vl), 0);
        assert_int_equal(vl, 0);
        key[0] = 0xff;
        assert_int_equal(rv_store_get(t, key, 5, &v, &vl), 0);
        assert_int_equal(vl, sizeof(val));
    }
    rv_store_abort(t);
    rv_store_close(s);
}

static void test_map_full_then_grow(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    uint8_t *big = calloc(1, 1 << 20);
    uint8_t key[4] = {'z', 0, 0, 0};
    int rc = 0, i;

    (void)state;
    assert_non_null(big);
    assert_int_equal(rv_store_open(dir, &s), 0);
    /* 200 MiB in one transaction overflows the initial map. */
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    for (i = 0; i < 200 && rc == 0; i++) {
        key[2] = (uint8_t)i;
        rc = rv_store_put(t, key, sizeof(key), big, 1 << 20);
    }
    assert_int_equal(rc, RV_ETOOBIG);
    rv_store_abort(t);
    assert_int_equal(rv_store_reserve(s, 220u << 20), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    for (i = 0; i < 200; i++) {
        key[2] = (uint8_t)i;
        assert_int_equal(rv_store_put(t, key, sizeof(key), big, 1 << 20), 0);
    }
    assert_int_equal(rv_store_commit(t), 0);
    assert_true(rv_store_used(s) >= 200u << 20);
    rv_store_close(s);
    free(big);
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

/* Sums every 512th byte of p[0, n): without the address sanitizer's check, whose shadow
 * memory for a new map would fault in too (half a megabyte per 4 MB mapped) and hide what
 * is measured. */
__attribute__((no_sanitize("address"))) static unsigned touch(const void *p, size_t n, size_t step)
{
    unsigned sum = 0;
    for (size_t j = 0; j < n; j += step)
        sum += ((const volatile uint8_t *)p)[j];
    return sum;
}

/* Page faults of reading every one of n 3 KB values in a freshly opened store, after a
 * prefetch (and its wait) or without one. */
static long faults_reading(unsigned n, bool prefetch)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    const void *v;
    size_t vl;
    unsigned sum = 0;
    long before;
    char k[16];

    assert_int_equal(rv_store_open(dir, &s), 0);
    if (prefetch) {
        assert_int_equal(rv_store_prefetch(s), 1);
        rv_store_prefetch_wait(s);
    }
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    before = minor_faults();
    for (unsigned i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "p%06u", (i * 7919u) % n);
        assert_int_equal(rv_store_get(t, k, strlen(k), &v, &vl), 0);
        assert_int_equal(vl, 3000);
        sum += touch(v, vl, 512);
    }
    before = minor_faults() - before;
    assert_int_equal(sum, (unsigned)n * 6 * 'x');
    rv_store_abort(t);
    rv_store_close(s);
    return before;
}

/* After rv_store_prefetch and rv_store_prefetch_wait, reading the store takes (almost) no
 * page fault: its pages are already in the process's map. Without the prefetch, the same
 * reads fault on many of the thousand pages; closing the store while its prefetch runs
 * stops it. */
static void test_prefetch_maps_the_pages(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    char k[16], val[3000];
    const unsigned n = 4000; /* about 12 MB, 3,000 pages */
    long cold, warm;

    (void)state;
    memset(val, 'x', sizeof(val));
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_reserve(s, 64u << 20), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    for (unsigned i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "p%06u", i);
        assert_int_equal(rv_store_put(t, k, strlen(k), val, sizeof(val)), 0);
    }
    assert_int_equal(rv_store_commit(t), 0);
    rv_store_close(s);

    cold = faults_reading(n, false);
    warm = faults_reading(n, true);
    print_message("page faults reading %u values: %ld without a prefetch, %ld after one\n", n, cold,
                  warm);
    assert_true(cold >= 100);
    assert_true(warm * 20 < cold);

    /* A growth of the map stops a prefetch (the map is made again); a later one starts
     * afresh and maps the new map's pages. Closing at once stops the thread. */
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_prefetch(s), 1);
    assert_int_equal(rv_store_prefetch(s), 0); /* already running: nothing more */
    assert_int_equal(rv_store_reserve(s, 512u << 20), 0);
    rv_store_prefetch_wait(s);
    assert_int_equal(rv_store_prefetch(s), 1);
    rv_store_prefetch_wait(s);
    {
        long before;
        const void *v;
        size_t vl;
        unsigned sum = 0;
        assert_int_equal(rv_store_begin(s, false, &t), 0);
        before = minor_faults();
        for (unsigned i = 0; i < n; i++) {
            snprintf(k, sizeof(k), "p%06u", i);
            assert_int_equal(rv_store_get(t, k, strlen(k), &v, &vl), 0);
            sum += touch((const uint8_t *)v + vl - 1, 1, 1);
        }
        before = minor_faults() - before;
        assert_int_equal(sum, n * 'x');
        rv_store_abort(t);
        assert_true(before * 4 < cold); /* a few faults more under the address sanitizer */
    }
    assert_int_equal(rv_store_prefetch(s), 1); /* once finished, it can run again */
    rv_store_prefetch_wait(s);
    rv_store_close(s);
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_prefetch(s), 1);
    rv_store_close(s);
}

/* A transaction held open on another thread while the map grows: it begins, tells the test,
 * waits a little, then (a reader) reads its value again and ends. */
struct holder {
    struct rv_store *s;
    bool write;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool begun;
    atomic_bool ended; /* set just before its transaction ends */
    int rc;            /* the commit's, for a writer; a failed read's, for a reader */
};

static void *hold_main(void *arg)
{
    struct holder *h = arg;
    struct rv_txn *t = NULL;
    const struct timespec pause = {0, 200 * 1000 * 1000};
    const void *v = NULL;
    size_t vl = 0;

    h->rc = rv_store_begin(h->s, h->write, &t);
    if (h->rc == 0 && h->write)
        h->rc = rv_store_put(t, "w1", 2, "held", 4);
    if (h->rc == 0 && !h->write)
        h->rc = rv_store_get(t, "r1", 2, &v, &vl);
    pthread_mutex_lock(&h->mu);
    h->begun = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->rc != 0) {
        atomic_store(&h->ended, true);
        rv_store_abort(t);
        return NULL;
    }
    nanosleep(&pause, NULL);
    if (h->write) {
        atomic_store(&h->ended, true);
        h->rc = rv_store_commit(t);
        return NULL;
    }
    /* Still mapped where it was: the growth has not made the map again under this reader. */
    if (vl != 4 || memcmp(v, "read", 4) != 0)
        h->rc = RV_ECORRUPT;
    atomic_store(&h->ended, true);
    rv_store_abort(t);
    return NULL;
}

static void hold_start(struct holder *h, pthread_t *th)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->begun = false;
    atomic_init(&h->ended, false);
    h->rc = 0;
    assert_int_equal(pthread_create(th, NULL, hold_main, h), 0);
    pthread_mutex_lock(&h->mu);
    while (!h->begun)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void hold_join(struct holder *h, pthread_t th)
{
    pthread_join(th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

/* Growing the map while another thread of the process holds a transaction waits until that
 * transaction has ended, a write transaction (two ingests at once in the daemon) as well as
 * a read one; a growth asked for inside a transaction of the same thread is refused busy,
 * at once. Without the wait, LMDB refuses a growth while a write transaction is open, and
 * maps the file again under a reader. */
static void test_grow_waits_for_transactions(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    struct holder h;
    pthread_t th;
    const void *v;
    size_t vl;

    (void)state;
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "r1", "read");
    assert_int_equal(rv_store_commit(t), 0);

    /* Inside the thread's own transactions: refused. */
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    assert_int_equal(rv_store_reserve(s, 512u << 20), RV_EBUSY);
    rv_store_abort(t);
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    assert_int_equal(rv_store_reserve(s, 512u << 20), RV_EBUSY);
    rv_store_abort(t);

    /* Another thread's write transaction: the growth waits for its commit. */
    h.s = s;
    h.write = true;
    hold_start(&h, &th);
    assert_int_equal(rv_store_reserve(s, 512u << 20), 0);
    assert_true(atomic_load(&h.ended));
    hold_join(&h, th);
    assert_int_equal(h.rc, 0);
    assert_int_equal(rv_store_begin(s, false, &t), 0);
    assert_int_equal(rv_store_get(t, "w1", 2, &v, &vl), 0);
    assert_int_equal(vl, 4);
    rv_store_abort(t);

    /* Another thread's read transaction: the growth waits for its end. */
    h.write = false;
    hold_start(&h, &th);
    assert_int_equal(rv_store_reserve(s, 1024u << 20), 0);
    assert_true(atomic_load(&h.ended));
    hold_join(&h, th);
    assert_int_equal(h.rc, 0);
    rv_store_close(s);
}

static bool keep_b2(void *ctx, const uint8_t *key, size_t klen)
{
    (*(int *)ctx)++;
    return klen == 2 && key[1] == '2';
}

/* rv_store_del_prefix deletes exactly the prefix's records that keep does not keep. */
static void test_del_prefix(void **state)
{
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    const void *v;
    size_t vl;
    int seen = 0;

    (void)state;
    assert_int_equal(rv_store_open(dir, &s), 0);
    assert_int_equal(rv_store_begin(s, true, &t), 0);
    put_str(t, "a1", "x");
    put_str(t, "b1", "x");
    put_str(t, "b2", "x");
    put_str(t, "b3", "x");
    put_str(t, "c1", "x");
    assert_int_equal(rv_store_del_prefix(t, "b", 1, keep_b2, &seen), 0);
    assert_int_equal(seen, 3);
    assert_int_equal(rv_store_get(t, "b1", 2, &v, &vl), RV_ENOTFOUND);
    assert_int_equal(rv_store_get(t, "b2", 2, &v, &vl), 0);
    assert_int_equal(rv_store_get(t, "b3", 2, &v, &vl), RV_ENOTFOUND);
    assert_int_equal(rv_store_get(t, "a1", 2, &v, &vl), 0);
    assert_int_equal(rv_store_get(t, "c1", 2, &v, &vl), 0);
    assert_int_equal(rv_store_del_prefix(t, "b", 1, NULL, NULL), 0);
    assert_int_equal(rv_store_get(t, "b2", 2, &v, &vl), RV_ENOTFOUND);
    assert_int_equal(rv_store_get(t, "c1", 2, &v, &vl), 0);
    assert_int_equal(rv_store_commit(t), 0);
    rv_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_abort_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix_and_cursor_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_run_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_reuse_nested_and_get_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_then_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grow_waits_for_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefetch_maps_the_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_prefix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
