/*
 * test_policy_prefetch.c - the store's prefetch after an ingest through the access gate.
 *
 * A daemon asks the gate for a prefetch (rv_policy_prefetch) so that its checks neither wait
 * on the disk nor take a page fault each. An ingest may grow the store's map, which maps the
 * file again: the pages stored before it are then out of the process's map, and the gate
 * must prefetch again after each ingest (one file, or a load of several) for the checks
 * that follow to stay free of faults. The ingest grows the map before it writes, so the
 * pages it writes are in the new map already; what it leaves out are the pages stored
 * before it. Here the test grows the map itself just before a small ingest, as a large
 * ingest would, and counts the page faults of reading the whole store afterwards
 * (getrusage, as test_store does), against a fresh map's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "testvault.h"

#include "policy/inner.h"
#include "store/store.h"
#include "synth/synth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define EDITION_Y 2025

struct fixture {
    struct rv_test_vault tv;
    char big[700];   /* a register of 30,000 electors */
    char small[700]; /* registers of 200 electors */
};

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rv_synth_opts so = {
        .electors = 30000, .areas = 1, .seed = 5, .edition = rv_date_from_ymd(EDITION_Y, 12, 1)};
    struct rv_synth_stats st;
    struct rv_diag d;
    char syn[600], area[16];

    if (f == NULL || sodium_init() < 0 || rv_test_vault_create(&f->tv, "rv-prefetch", 20000) != 0)
        return -1;
    snprintf(syn, sizeof(syn), "%s/big", f->tv.tmp);
    if (mkdir(syn, 0700) != 0 || rv_synth_run(&so, syn, &st, &d) != 0)
        return -1;
    snprintf(f->big, sizeof(f->big), "%s/%s/full-2025-12-01.csv", syn, rv_synth_area_code(0, area));
    so.electors = 200;
    so.seed = 6;
    snprintf(syn, sizeof(syn), "%s/small", f->tv.tmp);
    if (mkdir(syn, 0700) != 0 || rv_synth_run(&so, syn, &st, &d) != 0)
        return -1;
    snprintf(f->small, sizeof(f->small), "%s/%s/full-2025-12-01.csv", syn,
             rv_synth_area_code(0, area));
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;

    rv_test_vault_remove(&f->tv);
    free(f);
    return 0;
}

static long faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

/* Sums every 512th byte of p[0, n), outside the address sanitizer's checks (its shadow
 * memory of a new map would fault in too). */
__attribute__((no_sanitize("address"))) static unsigned touch(const void *p, size_t n)
{
    unsigned sum = 0;
    for (size_t j = 0; j < n; j += 512)
        sum += ((const volatile uint8_t *)p)[j];
    if (n > 0)
        sum += ((const volatile uint8_t *)p)[n - 1];
    return sum;
}

/* Page faults of reading every record of the vault's store, keys and values. */
static long faults_reading(struct rv_store *s)
{
    struct rv_txn *t = NULL;
    struct rv_cursor *c = NULL;
    const uint8_t *k, *v;
    size_t klen, vlen, n = 0;
    unsigned sum = 0;
    long before;
    int rc;

    assert_int_equal(rv_store_begin(s, false, &t), 0);
    assert_int_equal(rv_store_cursor_open(t, "", 0, &c), 0);
    before = faults();
    while ((rc = rv_store_cursor_next(c, &k, &klen, &v, &vlen)) == 1) {
        sum += touch(k, klen) + touch(v, vlen);
        n++;
    }
    before = faults() - before;
    assert_int_equal(rc, 0);
    assert_true(n > 1000);
    (void)sum;
    rv_store_cursor_close(c);
    rv_store_abort(t);
    return before;
}

static struct rv_gate *open_registrar(struct fixture *f)
{
    static struct rv_actor who = {"rita", "registrar", "local"};
    struct rv_gate *g = NULL;

    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &who, &g), 0);
    return g;
}

/* The size of the vault's store file, which its write-through map keeps at the map's size. */
static long long store_file_size(struct fixture *f)
{
    char path[700];
    struct stat st;

    snprintf(path, sizeof(path), "%s/store/data.mdb", f->tv.dir);
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_size;
}

/* Grows the store's map, which maps its file again, as a large ingest does. */
static void grow_map(struct fixture *f, struct rv_store *s)
{
    static uint64_t more = 256u << 20;
    long long before = store_file_size(f);

    assert_int_equal(rv_store_reserve(s, more), 0);
    assert_true(store_file_size(f) > before);
    more *= 2; /* the next call grows it again */
}

/* After a prefetch and an ingest that finds the map made again, the gate prefetches again:
 * reading the whole store then takes a small part of the faults that a fresh map takes; the
 * same after a load of several files. */
static void test_prefetch_after_ingest(void **state)
{
    struct fixture *f = *state;
    struct rv_ingest_opts o = {.area = "E07000001", .edition = rv_date_from_ymd(EDITION_Y, 12, 1)};
    struct rv_ingest_result res;
    struct rv_ingest_file files[1];
    struct rv_gate *g;
    struct rv_store *s;
    long cold, after_ingest, after_load;
    size_t done = 0;

    /* The register, then a fresh map's faults. */
    g = open_registrar(f);
    assert_int_equal(rv_policy_ingest(g, f->big, &o, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(rv_policy_close(g), 0);
    g = open_registrar(f);
    cold = faults_reading(rv_vault_store(g->sh->vault));
    assert_int_equal(rv_policy_close(g), 0);

    /* The daemon's way: a prefetch, then ingests, each after the map was made again. */
    g = open_registrar(f);
    s = rv_vault_store(g->sh->vault);
    rv_policy_prefetch(g);
    rv_store_prefetch_wait(s);
    grow_map(f, s);
    o.area = "TESTSMALL1";
    assert_int_equal(rv_policy_ingest(g, f->small, &o, &res), 0);
    assert_false(res.rejected);
    rv_store_prefetch_wait(s);
    after_ingest = faults_reading(s);

    grow_map(f, s);
    memset(files, 0, sizeof(files));
    files[0].path = f->small;
    files[0].o = o;
    files[0].o.area = "TESTSMALL2";
    assert_int_equal(rv_policy_ingest_load(g, files, 1, &done), 0);
    assert_int_equal(done, 1);
    assert_int_equal(files[0].rc, 0);
    rv_store_prefetch_wait(s);
    after_load = faults_reading(s);
    assert_int_equal(rv_policy_close(g), 0);

    print_message("page faults reading the store: %ld on a fresh map, %ld after an ingest, %ld "
                  "after a load\n",
                  cold, after_ingest, after_load);
    assert_true(cold >= 100);
    assert_true(after_ingest * 4 < cold);
    assert_true(after_load * 4 < cold);
}

/* Without a prefetch asked for, an ingest starts none: the same reads fault as on a fresh
 * map (which also shows that the test's growth leaves the old pages out of the map). */
static void test_no_prefetch_unasked(void **state)
{
    struct fixture *f = *state;
    struct rv_ingest_opts o = {.area = "TESTSMALL3", .edition = rv_date_from_ymd(EDITION_Y, 12, 1)};
    struct rv_ingest_result res;
    struct rv_gate *g;
    struct rv_store *s;
    long cold, after;

    g = open_registrar(f);
    s = rv_vault_store(g->sh->vault);
    cold = faults_reading(s);
    grow_map(f, s);
    assert_int_equal(rv_policy_ingest(g, f->small, &o, &res), 0);
    rv_store_prefetch_wait(s);
    after = faults_reading(s);
    assert_int_equal(rv_policy_close(g), 0);
    print_message("page faults reading the store: %ld on a fresh map, %ld after an ingest "
                  "without a prefetch\n",
                  cold, after);
    assert_true(cold >= 100);
    assert_true(after * 2 > cold);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_after_ingest),
        cmocka_unit_test(test_no_prefetch_unasked),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
