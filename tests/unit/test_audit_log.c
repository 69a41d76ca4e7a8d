/*
 * test_audit_log.c - the audit log on disk, attacked.
 *
 * Proofs from a real log against a hand-built tree; group commit from many threads;
 * tampering (a flipped byte anywhere in the entry file, index, hash store or checkpoints
 * must make verify fail and name the entry or checkpoint); truncation and rollback against
 * the latest and a trusted checkpoint; checkpoints under another key; kill -9 at random
 * moments during appends (every acknowledged entry must survive and verify must pass); and
 * fail-closed appends when the files cannot be written; asynchronous appends and groups
 * (answered once, only after the entry is durable, failures reported; handed off to the
 * committer thread; held for a durable write of the caller's own).
 *
 * Also a helper for tests/e2e/audit_cli.sh, which cannot create a log through the command:
 *   test_audit_log --make-fixture DIR N    writes a log of N entries into DIR/audit.
 */
#include "audit/audit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "merkle_ref.h"

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const uint8_t SEED[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t OTHER_SEED[32] = {9, 9, 9};
static const uint8_t MAC_KEY[32] = {42};

static char *tmpdir(void)
{
    char *d = rv_test_tmpdir("rv-audit-test");

    assert_non_null(d);
    return d;
}

static void rmtree(const char *dir)
{
    rv_test_rmtree(dir);
}

static char *sub(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);

    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void make_entry(uint64_t i, char params[64], uint8_t subj[2][32], struct rv_audit_entry *e)
{
    snprintf(params, 64, "{\"seq\":%llu}", (unsigned long long)i);
    memset(e, 0, sizeof(*e));
    memset(subj[0], (int)(i % 7), 32);
    memset(subj[1], 0xee, 32);
    e->time_ms = 1700000000000 + (int64_t)i;
    e->principal = "treasurer";
    e->role = "checker";
    e->action = "check";
    e->params = params;
    e->outcome = "ok";
    e->client = "192.0.2.1";
    e->subjects = (const uint8_t(*)[32])subj;
    e->nsubjects = i % 3;
}

static void append_n(struct rv_audit_log *log, uint64_t from, uint64_t n)
{
    for (uint64_t i = from; i < from + n; i++) {
        char params[64];
        uint8_t subj[2][32];
        struct rv_audit_entry e;
        uint64_t idx = UINT64_MAX;
        make_entry(i, params, subj, &e);
        assert_int_equal(rv_audit_append(log, &e, &idx), 0);
        assert_int_equal(idx, i);
    }
}

static struct rv_audit_log *open_log(const char *dir, uint64_t every)
{
    struct rv_audit_opts o = {"regvault.test/audit", every, 0};
    struct rv_audit_log *log = NULL;

    assert_int_equal(rv_audit_open(dir, SEED, &o, &log), 0);
    return log;
}

/* Makes a closed log of n entries in dir. */
static void build(const char *dir, uint64_t n, uint64_t every)
{
    struct rv_audit_log *log = open_log(dir, every);

    append_n(log, 0, n);
    assert_int_equal(rv_audit_close(log), 0);
}

static int verify_dir(const char *dir, const char *vkey, const char *note,
                      struct rv_audit_report *r)
{
    struct rv_audit_log *log = NULL;
    int rc = rv_audit_open_ro(dir, &log);

    memset(r, 0, sizeof(*r));
    r->bad_index = UINT64_MAX;
    r->bad_checkpoint = -1;
    if (rc != 0)
        return rc;
    rc = rv_audit_verify(log, vkey, note, r);
    rv_audit_close(log);
    return rc;
}

static void mth(uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    rv_ref_mth((const uint8_t(*)[32])leaves, n, out);
}

/* ---- behaviour ------------------------------------------------------------------------ */

/* Single appends of every size: a small entry is encoded on the appender's stack, a large
 * one (long parameters, the most subjects) in the heap; both must land whole, in order, with
 * the leaf hash of their canonical encoding, and a bad entry must be refused either way and
 * leave the log usable. */
static void test_append_sizes(void **state)
{
    static const size_t params_len[] = {0, 100, 1900, 2100, 4000, RV_AUDIT_PARAMS_MAX};
    static const size_t subjects[] = {0, 1, 60, 70, RV_AUDIT_SUBJECTS_MAX};
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 1000);
    char *params = malloc(RV_AUDIT_PARAMS_MAX + 1);
    uint8_t(*subj)[32] = calloc(RV_AUDIT_SUBJECTS_MAX, 32);
    uint8_t *enc = malloc(RV_AUDIT_ENTRY_MAX), leaf[32];
    uint64_t idx = 0, want = 0;
    (void)state;

    assert_non_null(params);
    assert_non_null(subj);
    assert_non_null(enc);
    for (size_t i = 0; i < RV_AUDIT_SUBJECTS_MAX; i++)
        memset(subj[i], (int)(i & 0xff), 32);
    for (size_t p = 0; p < sizeof(params_len) / sizeof(params_len[0]); p++)
        for (size_t k = 0; k < sizeof(subjects) / sizeof(subjects[0]); k++) {
            struct rv_audit_entry e;
            struct rv_audit_record rec;
            size_t elen = 0;
            make_entry(want, params, subj, &e);
            memset(params, 'a' + (int)(p + k) % 26, params_len[p]);
            params[params_len[p]] = '\0';
            e.params = params;
            e.subjects = (const uint8_t(*)[32])subj;
            e.nsubjects = subjects[k];
            assert_int_equal(rv_audit_append(log, &e, &idx), 0);
            assert_int_equal(idx, want);
            assert_int_equal(rv_audit_get(log, idx, &rec), 0);
            assert_int_equal(rv_audit_entry_encode(&e, enc, RV_AUDIT_ENTRY_MAX, &elen), 0);
            assert_int_equal(rec.raw_len, elen);
            assert_memory_equal(rec.raw, enc, elen);
            rv_audit_leaf_hash(enc, elen, leaf);
            assert_memory_equal(rec.leaf_hash, leaf, 32);
            assert_int_equal(rec.e.nsubjects, subjects[k]);
            rv_audit_record_free(&rec);
            want++;
            /* The same entry with a control character, small and large: refused, nothing
             * appended. */
            if (params_len[p] > 0) {
                params[0] = '\x01';
                assert_int_equal(rv_audit_append(log, &e, &idx), RV_EINVAL);
                assert_int_equal(rv_audit_size(log), want);
            }
        }
    /* Too long a parameter string is refused, not cut. */
    {
        char *big = malloc(RV_AUDIT_PARAMS_MAX + 2);
        struct rv_audit_entry e;
        assert_non_null(big);
        memset(big, 'b', RV_AUDIT_PARAMS_MAX + 1);
        big[RV_AUDIT_PARAMS_MAX + 1] = '\0';
        make_entry(want, params, subj, &e);
        e.params = big;
        assert_int_equal(rv_audit_append(log, &e, &idx), RV_EINVAL);
        free(big);
    }
    append_n(log, want, 3);
    assert_int_equal(rv_audit_size(log), want + 3);
    assert_int_equal(rv_audit_close(log), 0);
    {
        struct rv_audit_report r;
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
        assert_int_equal(r.size, want + 3);
    }
    free(enc);
    free(subj);
    free(params);
    rmtree(dir);
    free(dir);
}

static void test_append_read_prove(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 10);
    uint8_t leaves[70][32], root[32], want[32];
    struct rv_audit_proof p;
    struct rv_audit_record rec;
    (void)state;

    append_n(log, 0, 70);
    assert_int_equal(rv_audit_size(log), 70);
    for (uint64_t i = 0; i < 70; i++) {
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        assert_int_equal(rec.index, i);
        assert_int_equal(rec.e.nsubjects, i % 3);
        assert_int_equal(rec.e.time_ms, 1700000000000 + (int64_t)i);
        memcpy(leaves[i], rec.leaf_hash, 32);
        rv_audit_record_free(&rec);
    }
    assert_int_equal(rv_audit_get(log, 70, &rec), RV_ENOTFOUND);
    for (uint64_t n = 1; n <= 70; n++) {
        assert_int_equal(rv_audit_root(log, n, root), 0);
        mth(leaves, n, want);
        assert_memory_equal(root, want, 32);
        for (uint64_t i = 0; i < n; i++) {
            assert_int_equal(rv_audit_prove_inclusion(log, i, n, &p), 0);
            assert_memory_equal(p.leaf, leaves[i], 32);
            assert_int_equal(rv_audit_proof_verify(&p), 0);
            /* The proof does not prove the neighbouring leaf. */
            if (n > 1)
                assert_int_not_equal(
                    rv_audit_verify_inclusion(i, n, leaves[(i + 1) % n], p.hashes, p.nhashes, want),
                    0);
        }
        for (uint64_t m = 1; m <= n; m++) {
            uint8_t r1[32];
            assert_int_equal(rv_audit_prove_consistency(log, m, n, &p), 0);
            mth(leaves, m, r1);
            assert_memory_equal(p.root1, r1, 32);
            assert_int_equal(rv_audit_verify_consistency(m, n, r1, want, p.hashes, p.nhashes), 0);
            if (m < n) {
                r1[0] ^= 1;
                assert_int_not_equal(
                    rv_audit_verify_consistency(m, n, r1, want, p.hashes, p.nhashes), 0);
            }
        }
    }
    assert_int_equal(rv_audit_prove_inclusion(log, 70, 70, &p), RV_EINVAL);
    assert_int_equal(rv_audit_prove_consistency(log, 0, 5, &p), RV_EINVAL);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

static void test_checkpoints_and_reopen(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log;
    struct rv_audit_report r;
    struct rv_audit_checkpoint c;
    char note[RV_AUDIT_NOTE_MAX];
    (void)state;

    /* Every 10 entries a checkpoint, signed off the append path. A loaded machine may let the
     * signer lag, so that it last signs at 86, say, and the last 9 entries then wait for the
     * time rule: 200 ms here. Either way the latest checkpoint soon covers all 95. */
    {
        struct rv_audit_opts o = {"regvault.test/audit", 10, 200};
        assert_int_equal(rv_audit_open(dir, SEED, &o, &log), 0);
    }
    append_n(log, 0, 95);
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(rv_audit_latest_note(log, note, sizeof(note)), 0);
        assert_int_equal(rv_audit_checkpoint_open(note, strlen(note), rv_audit_vkey(log), &c), 0);
        if (c.size == 95)
            break;
        usleep(10000);
    }
    assert_int_equal(c.size, 95);
    assert_int_equal(rv_audit_close(log), 0);
    /* Reopen and continue; a second writer is refused; another key is refused. */
    log = open_log(dir, 10);
    {
        struct rv_audit_log *two = NULL;
        assert_int_equal(rv_audit_open(dir, SEED, NULL, &two), RV_EBUSY);
    }
    append_n(log, 95, 10);
    assert_int_equal(rv_audit_close(log), 0);
    {
        struct rv_audit_log *bad = NULL;
        assert_int_equal(rv_audit_open(dir, OTHER_SEED, NULL, &bad), RV_EKEY);
        assert_null(bad);
    }
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    assert_int_equal(r.size, 105);
    assert_int_equal(r.latest_size, 105);
    assert_true(r.checkpoints >= 3); /* the empty tree, one of 95 entries, and 105 */
    /* A read-only handle cannot append. */
    {
        struct rv_audit_log *ro = NULL;
        struct rv_audit_entry e = {1, "a", "b", "c", "", "ok", "local", NULL, 0};
        assert_int_equal(rv_audit_open_ro(dir, &ro), 0);
        assert_int_equal(rv_audit_append(ro, &e, NULL), RV_EUNSUPPORTED);
        rv_audit_close(ro);
    }
    rmtree(dir);
    free(dir);
}

static void test_checkpoint_by_time(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_opts o = {"regvault.test/audit", 1000000, 50};
    struct rv_audit_log *log = NULL;
    struct rv_audit_checkpoint c;
    char note[RV_AUDIT_NOTE_MAX];
    (void)state;

    assert_int_equal(rv_audit_open(dir, SEED, &o, &log), 0);
    append_n(log, 0, 3);
    /* No appends follow: the timer must sign within a few periods. */
    for (int i = 0; i < 500; i++) {
        usleep(20000);
        assert_int_equal(rv_audit_latest_note(log, note, sizeof(note)), 0);
        assert_int_equal(rv_audit_checkpoint_open(note, strlen(note), rv_audit_vkey(log), &c), 0);
        if (c.size == 3)
            break;
    }
    assert_int_equal(c.size, 3);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

struct thr {
    struct rv_audit_log *log;
    int id, n;
    uint64_t *got;
};

static void *appender(void *arg)
{
    struct thr *t = arg;

    for (int i = 0; i < t->n; i++) {
        char params[64];
        uint8_t subj[2][32];
        struct rv_audit_entry e;
        make_entry((uint64_t)(t->id * 100000 + i), params, subj, &e);
        if (rv_audit_append(t->log, &e, &t->got[i]) != 0)
            t->got[i] = UINT64_MAX;
    }
    return NULL;
}

static void test_group_commit_threads(void **state)
{
    enum { NT = 8, PER = 300 };
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 100);
    pthread_t th[NT];
    struct thr t[NT];
    uint8_t *seen = calloc(NT * PER, 1);
    struct rv_audit_report r;
    (void)state;

    for (int i = 0; i < NT; i++) {
        t[i] = (struct thr){log, i, PER, calloc(PER, sizeof(uint64_t))};
        assert_int_equal(pthread_create(&th[i], NULL, appender, &t[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    /* Every append got a distinct number, and the entry there is the one it appended. */
    for (int i = 0; i < NT; i++) {
        for (int j = 0; j < PER; j++) {
            struct rv_audit_record rec;
            char want[64];
            uint64_t x = t[i].got[j];
            assert_true(x < NT * PER);
            assert_int_equal(seen[x], 0);
            seen[x] = 1;
            assert_int_equal(rv_audit_get(log, x, &rec), 0);
            snprintf(want, sizeof(want), "{\"seq\":%d}", i * 100000 + j);
            assert_string_equal(rec.e.params, want);
            rv_audit_record_free(&rec);
        }
        free(t[i].got);
    }
    assert_int_equal(rv_audit_size(log), NT * PER);
    assert_int_equal(rv_audit_verify(log, NULL, NULL, &r), 0);
    assert_int_equal(rv_audit_close(log), 0);
    free(seen);
    rmtree(dir);
    free(dir);
}

/* Many more threads than cores, each appending one entry per call, some of them batches:
 * every call must be answered with a durable number of its own, the numbers must cover the
 * log without a gap, each thread's numbers must rise (an append is numbered after the one
 * it waited for), and each number must hold the entry that call appended. */
struct many {
    struct rv_audit_log *log;
    int id;
    uint64_t got[40];
    int rc;
};

static void *many_appender(void *arg)
{
    struct many *m = arg;

    for (int i = 0; i < 40 && m->rc == 0; i++) {
        char params[64];
        uint8_t subj[2][32];
        struct rv_audit_entry e[3];
        size_t k = (i % 10 == 9) ? 3 : 1; /* now and then a batch of three */
        char bp[2][64];
        uint8_t bs[2][2][32];
        make_entry((uint64_t)(m->id * 1000 + i), params, subj, &e[0]);
        for (size_t j = 1; j < k; j++)
            make_entry((uint64_t)(m->id * 1000 + 500 + i * 2 + (int)j), bp[j - 1], bs[j - 1],
                       &e[j]);
        m->rc = k == 1 ? rv_audit_append(m->log, e, &m->got[i])
                       : rv_audit_append_batch(m->log, e, k, &m->got[i]);
    }
    return NULL;
}

static void test_group_commit_many_threads(void **state)
{
    enum { NT = 96, PER = 40 };
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 500);
    pthread_t th[NT];
    struct many *m = calloc(NT, sizeof(*m));
    uint64_t total = 0;
    uint8_t *seen;
    struct rv_audit_report r;
    (void)state;

    assert_non_null(m);
    for (int i = 0; i < NT; i++) {
        m[i].log = log;
        m[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, many_appender, &m[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) {
        assert_int_equal(m[i].rc, 0);
        for (int j = 0; j < PER; j++)
            total += (j % 10 == 9) ? 3 : 1;
    }
    assert_int_equal(rv_audit_size(log), total);
    seen = calloc(total, 1);
    assert_non_null(seen);
    for (int i = 0; i < NT; i++) {
        for (int j = 0; j < PER; j++) {
            uint64_t x = m[i].got[j], k = (j % 10 == 9) ? 3 : 1;
            struct rv_audit_record rec;
            char want[64];
            assert_true(x + k <= total);
            if (j > 0)
                assert_true(x > m[i].got[j - 1]);
            for (uint64_t q = x; q < x + k; q++) {
                assert_int_equal(seen[q], 0);
                seen[q] = 1;
            }
            assert_int_equal(rv_audit_get(log, x, &rec), 0);
            snprintf(want, sizeof(want), "{\"seq\":%d}", i * 1000 + j);
            assert_string_equal(rec.e.params, want);
            rv_audit_record_free(&rec);
        }
    }
    for (uint64_t q = 0; q < total; q++)
        assert_int_equal(seen[q], 1);
    assert_int_equal(rv_audit_verify(log, NULL, NULL, &r), 0);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    assert_int_equal(r.size, total);
    free(seen);
    free(m);
    rmtree(dir);
    free(dir);
}

static void test_append_batch(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 50);
    struct rv_audit_entry e[100];
    char params[100][64];
    uint8_t subj[100][2][32];
    uint64_t first = 0;
    struct rv_audit_report r;
    (void)state;

    append_n(log, 0, 3);
    for (int i = 0; i < 100; i++)
        make_entry((uint64_t)(3 + i), params[i], subj[i], &e[i]);
    assert_int_equal(rv_audit_append_batch(log, e, 100, &first), 0);
    assert_int_equal(first, 3);
    assert_int_equal(rv_audit_size(log), 103);
    /* One bad entry refuses the whole batch and leaves the log usable. */
    e[50].role = "bad\nrole";
    assert_int_equal(rv_audit_append_batch(log, e, 100, &first), RV_EINVAL);
    assert_int_equal(rv_audit_size(log), 103);
    assert_int_equal(rv_audit_append_batch(log, e, 0, &first), RV_EINVAL);
    append_n(log, 103, 2);
    for (uint64_t i = 0; i < 105; i++) {
        struct rv_audit_record rec;
        char want[64];
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        snprintf(want, sizeof(want), "{\"seq\":%llu}", (unsigned long long)i);
        assert_string_equal(rec.e.params, want);
        rv_audit_record_free(&rec);
    }
    assert_int_equal(rv_audit_verify(log, NULL, NULL, &r), 0);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

/* An auditor verifies while the vault appends and checkpoints: every verify must pass. */
static void test_verify_while_appending(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_opts o = {"regvault.test/audit", 7, 1};
    struct rv_audit_log *log = NULL;
    pthread_t th[2];
    struct thr t[2];
    (void)state;

    assert_int_equal(rv_audit_open(dir, SEED, &o, &log), 0);
    for (int i = 0; i < 2; i++) {
        t[i] = (struct thr){log, i, 1500, calloc(1500, sizeof(uint64_t))};
        assert_int_equal(pthread_create(&th[i], NULL, appender, &t[i]), 0);
    }
    for (int k = 0; k < 30; k++) {
        struct rv_audit_report r;
        int rc = verify_dir(dir, NULL, NULL, &r);
        if (rc != 0)
            fail_msg("verify during appends failed at entry %llu, checkpoint %lld: %s",
                     (unsigned long long)r.bad_index, (long long)r.bad_checkpoint, r.what);
        /* The writer's own handle too. */
        assert_int_equal(rv_audit_verify(log, NULL, NULL, &r), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        for (int j = 0; j < 1500; j++)
            assert_true(t[i].got[j] != UINT64_MAX);
        free(t[i].got);
    }
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

static void test_subject_search(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 1000);
    struct rv_name_key nk;
    struct rv_postcode pc;
    uint8_t id[32], other[32];
    uint64_t *hits = NULL;
    size_t n = 0;
    (void)state;

    memset(&nk, 0, sizeof(nk));
    memset(&pc, 0, sizeof(pc));
    strcpy(nk.surname, "macdonald");
    strcpy(nk.first, "flora");
    strcpy(pc.canon, "IV1 1AA");
    assert_int_equal(rv_audit_subject_id(MAC_KEY, &nk, &pc, id), 0);
    strcpy(nk.first, "fiona");
    assert_int_equal(rv_audit_subject_id(MAC_KEY, &nk, &pc, other), 0);
    for (int i = 0; i < 20; i++) {
        uint8_t s[2][32];
        struct rv_audit_entry e = {0, "t", "checker", "check", "", "ok", "local", NULL, 0};
        memcpy(s[0], i % 5 == 0 ? id : other, 32);
        memcpy(s[1], other, 32);
        e.subjects = (const uint8_t(*)[32])s;
        e.nsubjects = i % 2 ? 2 : 1;
        assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    }
    assert_int_equal(rv_audit_find_subject(log, id, &hits, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[1], 5);
    assert_int_equal(hits[2], 10);
    assert_int_equal(hits[3], 15);
    free(hits);
    assert_int_equal(rv_audit_find_subject(log, other, &hits, &n), 0);
    assert_int_equal(n, 20 - 4 + 2); /* entries 5 and 15 name both */
    free(hits);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

/* ---- tampering ------------------------------------------------------------------------ */

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void flip(const char *path, size_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Which entry a byte of each file belongs to, from the format in docs/audit.md. */
static uint64_t entry_of_offset(const char *dir, size_t off)
{
    char *p = sub(dir, "index");
    uint8_t *idx;
    size_t len;
    uint64_t ans = UINT64_MAX;

    read_file(p, &idx, &len);
    for (uint64_t i = 0; 16 + i * 8 + 8 <= len; i++) {
        uint64_t o = 0;
        for (int j = 0; j < 8; j++)
            o |= (uint64_t)idx[16 + i * 8 + j] << (8 * j);
        if (o <= off)
            ans = i;
    }
    free(idx);
    free(p);
    return ans;
}

static uint64_t entry_of_hash(size_t off)
{
    unsigned level;
    uint64_t n;

    rv_audit_split_stored_hash_index((off - 16) / 32, &level, &n);
    /* A stored hash is written with the last leaf of its subtree. */
    return ((n + 1) << level) - 1;
}

static void test_tamper_every_file(void **state)
{
    enum { N = 40 };
    char *dir = tmpdir(), *copy = tmpdir();
    static const char *files[] = {"entries", "index", "hashes", "checkpoints", "checkpoint"};
    struct rv_audit_report r;
    uint64_t x = 0x1234567;
    (void)state;

    build(dir, N, 7);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *path = sub(dir, files[f]);
        uint8_t *orig;
        size_t len;
        read_file(path, &orig, &len);
        /* Every byte of the small files; a spread of bytes of the larger ones. */
        for (size_t k = 0; k < 120; k++) {
            size_t off;
            int rc;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            off = k < 16 ? k : (size_t)(x % len);
            flip(path, off);
            rc = verify_dir(dir, NULL, NULL, &r);
            if (rc == 0)
                fail_msg("a flipped byte at %zu of %s went unnoticed", off, files[f]);
            if (off >= 16 && strcmp(files[f], "entries") == 0)
                assert_int_equal(r.bad_index, entry_of_offset(dir, off));
            if (off >= 16 && strcmp(files[f], "index") == 0)
                assert_int_equal(r.bad_index, (off - 16) / 8);
            if (off >= 16 && strcmp(files[f], "hashes") == 0)
                assert_int_equal(r.bad_index, entry_of_hash(off));
            if (strcmp(files[f], "checkpoint") == 0 || (off >= 16 && f == 3))
                assert_true(r.bad_checkpoint >= 0);
            write_file(path, orig, len);
        }
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
        free(orig);
        free(path);
    }
    rmtree(copy);
    free(copy);
    rmtree(dir);
    free(dir);
}

static void copy_dir(const char *from, const char *to)
{
    static const char *files[] = {"entries",     "index",      "hashes",
                                  "checkpoints", "checkpoint", "key.pub"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *a = sub(from, files[i]), *b = sub(to, files[i]);
        uint8_t *buf;
        size_t len;
        read_file(a, &buf, &len);
        write_file(b, buf, len);
        free(buf);
        free(a);
        free(b);
    }
}

static void test_truncation_and_rollback(void **state)
{
    char *dir = tmpdir(), *old = tmpdir();
    struct rv_audit_log *log;
    struct rv_audit_report r;
    char trusted[RV_AUDIT_NOTE_MAX], vkey[RV_AUDIT_VKEY_MAX];
    (void)state;

    build(dir, 50, 1000);
    copy_dir(dir, old); /* what an insider might restore later */
    log = open_log(dir, 1000);
    append_n(log, 50, 30);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(rv_audit_open_ro(dir, &log), 0);
    assert_int_equal(rv_audit_latest_note(log, trusted, sizeof(trusted)), 0);
    rv_audit_vkey_format(rv_audit_vkey(log), vkey);
    rv_audit_close(log);
    assert_int_equal(verify_dir(dir, vkey, trusted, &r), 0);

    /* Cutting entries off below the latest checkpoint is detected... */
    {
        char *e = sub(dir, "entries"), *i = sub(dir, "index"), *h = sub(dir, "hashes");
        uint8_t *buf;
        size_t len;
        read_file(e, &buf, &len);
        assert_int_equal(truncate(e, (off_t)(len - 100)), 0);
        assert_int_not_equal(verify_dir(dir, NULL, NULL, &r), 0);
        assert_true(r.bad_index < 80);
        /* ... also when index and hash store are cut consistently ... */
        assert_int_equal(truncate(i, 16 + 70 * 8), 0);
        assert_int_equal(truncate(h, (off_t)(16 + rv_audit_stored_hash_count(70) * 32)), 0);
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), RV_ECORRUPT);
        assert_true(r.bad_checkpoint >= 0 || r.bad_index != UINT64_MAX);
        /* ... and the writer refuses to append on top of it. */
        {
            struct rv_audit_log *w = NULL;
            assert_int_equal(rv_audit_open(dir, SEED, NULL, &w), RV_ECORRUPT);
        }
        write_file(e, buf, len);
        free(buf);
        free(e);
        free(i);
        free(h);
    }
    /* Rolling the whole directory back to an older, self-consistent state verifies on its
     * own, but not against the checkpoint kept elsewhere. */
    assert_int_equal(verify_dir(old, NULL, NULL, &r), 0);
    assert_int_equal(verify_dir(old, vkey, trusted, &r), RV_ECORRUPT);
    assert_non_null(strstr(r.what, "trusted checkpoint"));
    rmtree(old);
    free(old);
    rmtree(dir);
    free(dir);
}

static void test_other_key_rejected(void **state)
{
    char *dir = tmpdir(), *evil = tmpdir();
    struct rv_audit_log *log = NULL;
    struct rv_audit_report r;
    char note[RV_AUDIT_NOTE_MAX], vkey[RV_AUDIT_VKEY_MAX], evil_note[RV_AUDIT_NOTE_MAX];
    struct rv_audit_opts o = {"regvault.test/audit", 1000, 0};
    (void)state;

    build(dir, 20, 1000);
    assert_int_equal(rv_audit_open_ro(dir, &log), 0);
    rv_audit_vkey_format(rv_audit_vkey(log), vkey);
    assert_int_equal(rv_audit_latest_note(log, note, sizeof(note)), 0);
    rv_audit_close(log);
    /* The same entries, logged and signed under another key with the same name. */
    assert_int_equal(rv_audit_open(evil, OTHER_SEED, &o, &log), 0);
    append_n(log, 0, 20);
    assert_int_equal(rv_audit_latest_note(log, evil_note, sizeof(evil_note)), 0);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(verify_dir(evil, NULL, NULL, &r), 0); /* consistent with itself */
    assert_int_equal(verify_dir(evil, vkey, NULL, &r), RV_EKEY);
    assert_int_equal(verify_dir(evil, NULL, note, &r), RV_EKEY);
    /* Its checkpoint planted in the real log is refused, in either file. */
    {
        char *p = sub(dir, "checkpoint");
        uint8_t *orig;
        size_t len;
        read_file(p, &orig, &len);
        write_file(p, (const uint8_t *)evil_note, strlen(evil_note));
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), RV_EKEY);
        assert_true(r.bad_checkpoint >= 0);
        write_file(p, orig, len);
        free(orig);
        free(p);
    }
    assert_int_equal(verify_dir(dir, vkey, evil_note, &r), RV_EKEY);
    assert_int_equal(verify_dir(dir, vkey, note, &r), 0);
    rmtree(evil);
    free(evil);
    rmtree(dir);
    free(dir);
}

/* ---- opening: the latest checkpoint in one read ---------------------------------------- */

/* The starts of the records of a checkpoints file's bytes (starts[n] = the end of the last
 * whole one); returns n. */
static size_t cps_records(const uint8_t *buf, size_t len, size_t *starts, size_t max)
{
    size_t n = 0, off = 16;

    while (n < max && len - off >= 4) {
        uint32_t l = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 |
                     (uint32_t)buf[off + 2] << 16 | (uint32_t)buf[off + 3] << 24;
        if (len - off - 4 < (size_t)l + 8)
            break;
        starts[n++] = off;
        off += 4 + l + 8;
    }
    starts[n] = off;
    return n;
}

/* A checkpoints record of note into out (4 + strlen(note) + 8 bytes); returns its length. */
static size_t cps_record(const char *note, uint8_t *out)
{
    size_t n = strlen(note);
    uint8_t h[32];

    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(n >> (8 * i));
    memcpy(out + 4, note, n);
    crypto_hash_sha256(h, (const uint8_t *)note, n);
    memcpy(out + 4 + n, h, 8);
    return 4 + n + 8;
}

/* Opens dir read-only and returns how many checkpoint records the open read; the latest
 * note goes into note ("" if none is valid), the size into *size. */
static uint64_t ro_open_reads(const char *dir, char note[RV_AUDIT_NOTE_MAX], uint64_t *size)
{
    struct rv_audit_log *log = NULL;
    uint64_t before = rv_audit_test_cps_reads(), reads;
    int rc;

    assert_int_equal(rv_audit_open_ro(dir, &log), 0);
    reads = rv_audit_test_cps_reads() - before;
    note[0] = '\0';
    rc = rv_audit_latest_note(log, note, RV_AUDIT_NOTE_MAX);
    assert_true(rc == 0 || rc == RV_ENOTFOUND);
    *size = rv_audit_size(log);
    rv_audit_close(log);
    return reads;
}

static void read_note(const char *dir, char note[RV_AUDIT_NOTE_MAX])
{
    char *p = sub(dir, "checkpoint");
    uint8_t *buf;
    size_t len;

    read_file(p, &buf, &len);
    assert_true(len < RV_AUDIT_NOTE_MAX);
    memcpy(note, buf, len);
    note[len] = '\0';
    free(buf);
    free(p);
}

static void write_note(const char *dir, const char *note)
{
    char *p = sub(dir, "checkpoint");

    write_file(p, (const uint8_t *)note, strlen(note));
    free(p);
}

/* A vault signs a checkpoint every 10 s while entries arrive, millions over the years:
 * opening its log, read-only or to write, reads one checkpoint record, not all of them. */
static void test_open_reads_one_checkpoint(void **state)
{
    enum { NCPS = 20000 };
    char *dir = tmpdir(), *cps = sub(dir, "checkpoints");
    char note[RV_AUDIT_NOTE_MAX], got[RV_AUDIT_NOTE_MAX];
    struct rv_audit_log *log = NULL;
    uint8_t *buf, *big;
    size_t len, starts[64], n, rlen, pos;
    uint64_t size, before;
    (void)state;

    build(dir, 30, 10);
    read_note(dir, note);
    read_file(cps, &buf, &len);
    n = cps_records(buf, len, starts, 63);
    assert_true(n >= 2);
    assert_int_equal(starts[n], len);
    /* The checkpoints a long-lived vault would hold: its own records, then the latest one
     * many times over (each a whole, genuine record). */
    rlen = len - starts[n - 1];
    big = malloc(starts[n - 1] + (size_t)NCPS * rlen);
    assert_non_null(big);
    memcpy(big, buf, starts[n - 1]);
    pos = starts[n - 1];
    for (size_t i = n - 1; i < NCPS; i++, pos += rlen)
        memcpy(big + pos, buf + starts[n - 1], rlen);
    write_file(cps, big, pos);
    assert_int_equal(ro_open_reads(dir, got, &size), 1);
    assert_string_equal(got, note);
    assert_int_equal(size, 30);
    /* A writer too; it appends after the last record, and the next open finds that one. */
    before = rv_audit_test_cps_reads();
    log = open_log(dir, 1000);
    assert_int_equal(rv_audit_test_cps_reads() - before, 1);
    append_n(log, 30, 5);
    assert_int_equal(rv_audit_close(log), 0);
    read_note(dir, note);
    {
        struct stat st;
        assert_int_equal(stat(cps, &st), 0);
        assert_int_equal((size_t)st.st_size, pos + 4 + strlen(note) + 8);
    }
    assert_int_equal(ro_open_reads(dir, got, &size), 1);
    assert_string_equal(got, note);
    assert_int_equal(size, 35);
    free(big);
    free(buf);
    free(cps);
    rmtree(dir);
    free(dir);
}

/* A crash can leave `checkpoints` with a torn last record, or with a record newer than
 * `checkpoint` (between the append and the replacement); and `checkpoint` can be changed by
 * hand. Each is noticed when the file does not end with `checkpoint`'s record, and the
 * whole file is read as before. */
static void test_open_after_crash(void **state)
{
    char *dir = tmpdir(), *cps = sub(dir, "checkpoints");
    char n20[RV_AUDIT_NOTE_MAX], n25[RV_AUDIT_NOTE_MAX], got[RV_AUDIT_NOTE_MAX];
    struct rv_audit_log *log = NULL;
    struct rv_audit_report r;
    uint8_t *buf, rec[4 + RV_AUDIT_NOTE_MAX + 8];
    size_t len, starts[64], n, rlen;
    uint64_t size, before;
    (void)state;

    build(dir, 20, 1000);
    read_note(dir, n20);
    read_file(cps, &buf, &len);
    n = cps_records(buf, len, starts, 63);
    assert_int_equal(starts[n], len);

    /* Torn while appending the next record: read-only ignores it, a writer cuts it off. */
    rlen = cps_record(n20, rec);
    {
        FILE *f = fopen(cps, "ab");
        assert_non_null(f);
        assert_int_equal(fwrite(rec, 1, rlen / 2, f), rlen / 2);
        fclose(f);
    }
    assert_int_equal(ro_open_reads(dir, got, &size), 1 + n + 1); /* the tail, then all */
    assert_string_equal(got, n20);
    assert_int_equal(size, 20);
    log = open_log(dir, 1000);
    assert_int_equal(rv_audit_close(log), 0);
    {
        uint8_t *now;
        size_t nlen;
        read_file(cps, &now, &nlen);
        assert_int_equal(nlen, len);
        free(now);
    }
    assert_int_equal(ro_open_reads(dir, got, &size), 1);
    assert_string_equal(got, n20);

    /* The latest record itself cut short (whatever the reason): the writer drops it, takes
     * the one before as the latest and signs the entries again. */
    assert_int_equal(truncate(cps, (off_t)(len - 5)), 0);
    assert_int_equal(ro_open_reads(dir, got, &size), 1 + n);
    log = open_log(dir, 1000);
    assert_int_equal(rv_audit_size(log), 20);
    assert_int_equal(rv_audit_latest_note(log, got, sizeof(got)), 0);
    assert_string_equal(got, n20); /* the same tree, signed again (Ed25519 is deterministic) */
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(ro_open_reads(dir, got, &size), 1);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);

    /* A crash after the new record was synced but before `checkpoint` was replaced: the
     * newer record is the latest; a writer puts it into `checkpoint`, so the next open is
     * one read again. */
    log = open_log(dir, 1000);
    append_n(log, 20, 5);
    assert_int_equal(rv_audit_close(log), 0);
    read_note(dir, n25);
    write_note(dir, n20);
    assert_int_equal(ro_open_reads(dir, got, &size), 1 + n + 1);
    assert_string_equal(got, n25);
    assert_int_equal(size, 25);
    log = open_log(dir, 1000);
    assert_int_equal(rv_audit_latest_note(log, got, sizeof(got)), 0);
    assert_string_equal(got, n25);
    assert_int_equal(rv_audit_close(log), 0);
    read_note(dir, got);
    assert_string_equal(got, n25);
    assert_int_equal(ro_open_reads(dir, got, &size), 1);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    /* ... also when the crash came as the log was created and `checkpoint` is missing. */
    {
        char *p = sub(dir, "checkpoint");
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    log = open_log(dir, 1000);
    assert_int_equal(rv_audit_close(log), 0);
    read_note(dir, got);
    assert_string_equal(got, n25);

    /* A changed `checkpoint` is not taken: the file is read, its latest record is the
     * latest, and verify still names the changed file. A writer leaves it as it is. */
    {
        char bad[RV_AUDIT_NOTE_MAX];
        memcpy(bad, n25, strlen(n25) + 1);
        bad[strlen(bad) - 3] ^= 0x01; /* in the signature */
        write_note(dir, bad);
        before = rv_audit_test_cps_reads();
        assert_int_equal(ro_open_reads(dir, got, &size), 1 + n + 1);
        assert_string_equal(got, n25);
        assert_int_not_equal(verify_dir(dir, NULL, NULL, &r), 0);
        assert_true(r.bad_checkpoint >= 0);
        log = open_log(dir, 1000);
        assert_int_equal(rv_audit_close(log), 0);
        read_note(dir, got);
        assert_string_equal(got, bad);
        assert_int_not_equal(verify_dir(dir, NULL, NULL, &r), 0);
        assert_true(rv_audit_test_cps_reads() - before > 2 * (n + 2));
        write_note(dir, n25);
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    }

    /* The same entries signed by another key, put into both files consistently: the one
     * record read is the latest, and its signature is still checked. */
    {
        char *evil = tmpdir(), enote[RV_AUDIT_NOTE_MAX];
        struct rv_audit_opts o = {"regvault.test/audit", 1000, 0};
        uint8_t *orig;
        size_t olen;
        assert_int_equal(rv_audit_open(evil, OTHER_SEED, &o, &log), 0);
        append_n(log, 0, 25);
        assert_int_equal(rv_audit_close(log), 0);
        read_note(evil, enote);
        rmtree(evil);
        free(evil);
        read_file(cps, &orig, &olen);
        rlen = cps_record(enote, rec);
        {
            FILE *f = fopen(cps, "ab");
            assert_non_null(f);
            assert_int_equal(fwrite(rec, 1, rlen, f), rlen);
            fclose(f);
        }
        write_note(dir, enote);
        assert_int_equal(ro_open_reads(dir, got, &size), 1);
        assert_string_equal(got, ""); /* no valid latest checkpoint */
        {
            struct rv_audit_log *w = NULL;
            assert_int_equal(rv_audit_open(dir, SEED, NULL, &w), RV_ECORRUPT);
        }
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), RV_EKEY);
        write_file(cps, orig, olen);
        write_note(dir, n25);
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
        free(orig);
    }
    free(buf);
    free(cps);
    rmtree(dir);
    free(dir);
}

/* A damaged record below the last no longer stops a writer from opening (it never reads
 * it, as it never reads entries below the latest checkpoint); verify reads every record
 * and names it. */
static void test_damaged_old_checkpoint(void **state)
{
    char *dir = tmpdir(), *cps = sub(dir, "checkpoints");
    struct rv_audit_log *log = NULL;
    struct rv_audit_report r;
    uint8_t *buf;
    size_t len, starts[64], n;
    (void)state;

    build(dir, 10, 1000);
    log = open_log(dir, 1000);
    append_n(log, 10, 10);
    assert_int_equal(rv_audit_close(log), 0);
    read_file(cps, &buf, &len);
    n = cps_records(buf, len, starts, 63);
    assert_true(n >= 3); /* the empty tree, 10 and 20 */
    flip(cps, starts[1] + 6);
    log = open_log(dir, 1000);
    append_n(log, 20, 3);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), RV_ECORRUPT);
    assert_int_equal(r.bad_checkpoint, 1);
    assert_non_null(strstr(r.what, "checkpoint record is damaged"));
    free(buf);
    free(cps);
    rmtree(dir);
    free(dir);
}

/* ---- durability ----------------------------------------------------------------------- */

/* The child appends from two threads until killed, reporting each acknowledged
 * (index, seq) pair through the pipe only after rv_audit_append returned 0. */
struct crash_ctx {
    struct rv_audit_log *log;
    int fd;
    int tid;
    unsigned run;
    pthread_mutex_t *mu;
};

static void *crash_appender(void *arg)
{
    struct crash_ctx *c = arg;

    for (uint64_t k = 0;; k++) {
        char params[64];
        uint64_t msg[2], idx;
        struct rv_audit_entry e = {0, "child", "checker", "check", params, "ok", "local", NULL, 0};
        snprintf(params, sizeof(params), "r%u t%d k%llu", c->run, c->tid, (unsigned long long)k);
        if (rv_audit_append(c->log, &e, &idx) != 0)
            _exit(3);
        msg[0] = idx;
        msg[1] = (uint64_t)c->run << 40 | (uint64_t)c->tid << 32 | k;
        pthread_mutex_lock(c->mu);
        if (write(c->fd, msg, sizeof(msg)) != sizeof(msg))
            _exit(4);
        pthread_mutex_unlock(c->mu);
    }
    return NULL;
}

static void test_kill9_durability(void **state)
{
    enum { RUNS = 24 };
    char *dir = tmpdir();
    uint64_t(*acked)[2] = malloc(sizeof(uint64_t[2]) * 2000000);
    size_t nacked = 0;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    (void)state;

    assert_non_null(acked);
    for (unsigned run = 0; run < RUNS; run++) {
        int pfd[2];
        pid_t pid;
        struct rv_audit_log *log = NULL;
        struct rv_audit_report r;
        uint64_t msg[2];
        ssize_t got;
        useconds_t delay;

        assert_int_equal(pipe(pfd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct rv_audit_opts o = {"regvault.test/audit", 1 + run % 13, 5};
            pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
            struct crash_ctx c[2];
            pthread_t t;
            close(pfd[0]);
            if (rv_audit_open(dir, SEED, &o, &log) != 0)
                _exit(2);
            for (int i = 0; i < 2; i++)
                c[i] = (struct crash_ctx){log, pfd[1], i, run, &mu};
            msg[0] = msg[1] = UINT64_MAX; /* open: appending starts now */
            if (write(pfd[1], msg, sizeof(msg)) != sizeof(msg))
                _exit(4);
            pthread_create(&t, NULL, crash_appender, &c[1]);
            crash_appender(&c[0]);
            _exit(0);
        }
        close(pfd[1]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        delay = (useconds_t)(seed % 30000); /* up to 30 ms into the appends */
        assert_int_equal(read(pfd[0], msg, sizeof(msg)), sizeof(msg));
        assert_true(msg[0] == UINT64_MAX);
        usleep(delay);
        kill(pid, SIGKILL);
        {
            int st = 0;
            waitpid(pid, &st, 0);
            if (getenv("RV_AUDIT_DEBUG"))
                print_message("run %u: %s %d after %u us\n", run,
                              WIFSIGNALED(st) ? "killed" : "exited",
                              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), (unsigned)delay);
        }
        while ((got = read(pfd[0], msg, sizeof(msg))) == sizeof(msg)) {
            assert_true(nacked < 2000000);
            acked[nacked][0] = msg[0];
            acked[nacked][1] = msg[1];
            nacked++;
        }
        close(pfd[0]);
        /* Reopen for writing (repairs the tail), then verify read-only. */
        assert_int_equal(rv_audit_open(dir, SEED, NULL, &log), 0);
        assert_int_equal(rv_audit_close(log), 0);
        assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
        assert_int_equal(rv_audit_open_ro(dir, &log), 0);
        for (size_t i = 0; i < nacked; i++) {
            struct rv_audit_record rec;
            char want[64];
            uint64_t s = acked[i][1];
            if (rv_audit_get(log, acked[i][0], &rec) != 0)
                fail_msg("run %u: acknowledged entry %llu is lost", run,
                         (unsigned long long)acked[i][0]);
            snprintf(want, sizeof(want), "r%u t%u k%llu", (unsigned)(s >> 40),
                     (unsigned)(s >> 32 & 0xff), (unsigned long long)(s & 0xffffffffu));
            assert_string_equal(rec.e.params, want);
            rv_audit_record_free(&rec);
        }
        rv_audit_close(log);
    }
    assert_true(nacked > 0);
    print_message("%zu acknowledged entries survived %d kills\n", nacked, RUNS);
    free(acked);
    rmtree(dir);
    free(dir);
}

/* ---- fail-closed ---------------------------------------------------------------------- */

/* The child that failed the log under its appenders (pid) exited 0, and the log in dir
 * reopens with at least min entries, the acknowledged ones, and verifies. */
static void child_ok_then_intact(pid_t pid, const char *dir, uint64_t min)
{
    struct rv_audit_log *log = NULL;
    struct rv_audit_report r;
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rv_audit_open(dir, SEED, NULL, &log), 0);
    assert_true(rv_audit_size(log) >= min);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
}

/* In a child (RLIMIT_FSIZE is per process): the entry file may not grow past its current
 * size plus a little. Appends must fail with RV_EAUDIT, promptly, and keep failing. */
static void test_full_disk_fails_closed(void **state)
{
    char *dir = tmpdir();
    pid_t pid;
    (void)state;

    build(dir, 5, 1000);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rv_audit_log *log = NULL;
        struct rlimit rl;
        struct stat st;
        char *e = sub(dir, "hashes");
        int rc = 0, i;
        signal(SIGXFSZ, SIG_IGN);
        alarm(20); /* a hang fails the test */
        if (rv_audit_open(dir, SEED, NULL, &log) != 0 || stat(e, &st) != 0)
            _exit(10);
        rl.rlim_cur = rl.rlim_max = (rlim_t)st.st_size + 2000;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        for (i = 0; i < 100000 && rc == 0; i++) {
            struct rv_audit_entry en = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
            rc = rv_audit_append(log, &en, NULL);
        }
        if (rc != RV_EAUDIT)
            _exit(12);
        /* Sticky: the next append fails at once, without writing. */
        {
            struct rv_audit_entry en = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
            if (rv_audit_append(log, &en, NULL) != RV_EAUDIT)
                _exit(13);
        }
        if (rv_audit_close(log) != RV_EAUDIT)
            _exit(14);
        _exit(0);
    }
    /* What was acknowledged before the failure is intact after reopening. */
    child_ok_then_intact(pid, dir, 5);
    rmtree(dir);
    free(dir);
}

/* The entry file's descriptor is replaced under the log by a read-only one, while eight
 * threads append: all of them must get RV_EAUDIT and none may hang. */
static void test_closed_fd_fails_closed(void **state)
{
    enum { NT = 8, PER = 200 };
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 1000);
    pthread_t th[NT];
    struct thr t[NT];
    char *entries = sub(dir, "entries"), link[4096], fdpath[64];
    int target = -1, ro;
    unsigned failed = 0;
    (void)state;

    append_n(log, 0, 3);
    for (int fd = 0; fd < 1024 && target < 0; fd++) {
        ssize_t n;
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
        n = readlink(fdpath, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, entries) == 0)
                target = fd;
        }
    }
    assert_true(target >= 0);
    for (int i = 0; i < NT; i++) {
        t[i] = (struct thr){log, i, PER, calloc(PER, sizeof(uint64_t))};
        assert_int_equal(pthread_create(&th[i], NULL, appender, &t[i]), 0);
    }
    usleep(2000);
    ro = open("/dev/null", O_RDONLY);
    assert_int_equal(dup2(ro, target), target);
    close(ro);
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        for (int j = 0; j < PER; j++)
            failed += t[i].got[j] == UINT64_MAX;
        /* Once an append has failed, no later one from this thread succeeded. */
        for (int j = 1; j < PER; j++)
            if (t[i].got[j - 1] == UINT64_MAX)
                assert_true(t[i].got[j] == UINT64_MAX);
        free(t[i].got);
    }
    assert_true(failed > 0);
    {
        struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
        assert_int_equal(rv_audit_append(log, &e, NULL), RV_EAUDIT);
    }
    assert_int_equal(rv_audit_close(log), RV_EAUDIT);
    free(entries);
    rmtree(dir);
    free(dir);
}

/* Appends until one fails, and says how it ended. */
struct until {
    struct rv_audit_log *log;
    int id;
    _Atomic unsigned *ok;
    int rc;
};

static void *append_until_failure(void *arg)
{
    struct until *u = arg;

    for (int i = 0; u->rc == 0; i++) {
        char params[64];
        uint8_t subj[2][32];
        struct rv_audit_entry e;
        make_entry((uint64_t)(u->id * 1000000 + i), params, subj, &e);
        u->rc = rv_audit_append(u->log, &e, NULL);
        if (u->rc == 0)
            atomic_fetch_add(u->ok, 1);
    }
    return NULL;
}

/* A write failure while a hundred threads wait for their group's sync: every one of them
 * must be woken with RV_EAUDIT (none may hang, none may see another answer), later appends
 * must fail at once, and what was acknowledged before must survive a reopen. In a child, so
 * that a hang is caught by alarm() and the descriptors can be swapped freely. */
static void test_failure_wakes_every_waiter(void **state)
{
    enum { NT = 100 };
    char *dir = tmpdir();
    pid_t pid;
    (void)state;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rv_audit_opts o = {"regvault.test/audit", 1000, 0};
        struct rv_audit_log *log = NULL;
        struct until u[NT];
        pthread_t th[NT];
        _Atomic unsigned ok = 0;
        char *entries = sub(dir, "entries"), link[4096], fdpath[64];
        int swapped = 0;
        alarm(30); /* a hang fails the test */
        if (rv_audit_open(dir, SEED, &o, &log) != 0)
            _exit(10);
        for (int i = 0; i < NT; i++) {
            u[i] = (struct until){log, i, &ok, 0};
            if (pthread_create(&th[i], NULL, append_until_failure, &u[i]) != 0)
                _exit(11);
        }
        while (atomic_load(&ok) < 2000)
            usleep(1000);
        /* Every descriptor of the entry file now refuses writes. */
        for (int fd = 0; fd < 4096; fd++) {
            ssize_t n;
            snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
            n = readlink(fdpath, link, sizeof(link) - 1);
            if (n <= 0)
                continue;
            link[n] = '\0';
            if (strcmp(link, entries) == 0) {
                int ro = open("/dev/null", O_RDONLY);
                if (ro < 0 || dup2(ro, fd) != fd)
                    _exit(12);
                close(ro);
                swapped++;
            }
        }
        if (swapped == 0)
            _exit(13);
        for (int i = 0; i < NT; i++) {
            pthread_join(th[i], NULL);
            if (u[i].rc != RV_EAUDIT)
                _exit(14);
        }
        {
            struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
            if (rv_audit_append(log, &e, NULL) != RV_EAUDIT)
                _exit(15);
        }
        if (rv_audit_close(log) != RV_EAUDIT)
            _exit(16);
        free(entries);
        _exit(0);
    }
    child_ok_then_intact(pid, dir, 2000);
    rmtree(dir);
    free(dir);
}

/* ---- asynchronous appends and groups -------------------------------------------------- */

/* What the callbacks of one test saw. */
struct async_seen {
    struct rv_audit_log *log;
    _Atomic unsigned answered, bad;
    _Atomic uint64_t acked; /* highest durable index acknowledged + 1 */
    uint64_t *index;        /* by call number */
    _Atomic int *rc;
};

struct async_call {
    struct async_seen *seen;
    unsigned no;
};

/* The callback of one asynchronous append: it must come only once the entry is durable, so
 * the log's size already counts it, and it must come once. */
static void async_done(void *ctx, int rc, uint64_t index)
{
    struct async_call *c = ctx;
    struct async_seen *v = c->seen;

    if (atomic_exchange(&v->rc[c->no], rc == 0 ? 1 : rc) != 0)
        atomic_fetch_add(&v->bad, 1); /* called twice */
    if (rc == 0) {
        uint64_t a = atomic_load(&v->acked);
        v->index[c->no] = index;
        if (index >= rv_audit_size(v->log))
            atomic_fetch_add(&v->bad, 1); /* answered before it was durable */
        while (a < index + 1 && !atomic_compare_exchange_weak(&v->acked, &a, index + 1))
            ;
    } else if (index != UINT64_MAX) {
        atomic_fetch_add(&v->bad, 1);
    }
    atomic_fetch_add(&v->answered, 1);
}

struct async_thr {
    struct async_seen *seen;
    struct async_call *calls;
    unsigned from, n;
};

/* Every third call waits (rv_audit_append), the others do not. */
static void *async_appender(void *arg)
{
    struct async_thr *t = arg;

    for (unsigned i = t->from; i < t->from + t->n; i++) {
        char params[64];
        uint8_t subj[2][32];
        struct rv_audit_entry e;
        make_entry(i, params, subj, &e);
        t->calls[i] = (struct async_call){t->seen, i};
        if (i % 3 == 0) {
            uint64_t idx = UINT64_MAX;
            if (rv_audit_append(t->seen->log, &e, &idx) != 0)
                atomic_fetch_add(&t->seen->bad, 1);
            t->seen->index[i] = idx;
            atomic_store(&t->seen->rc[i], 1);
            atomic_fetch_add(&t->seen->answered, 1);
        } else if (rv_audit_append_async(t->seen->log, &e, async_done, &t->calls[i]) != 0) {
            atomic_fetch_add(&t->seen->bad, 1);
        }
    }
    return NULL;
}

static void wait_answered(struct async_seen *v, unsigned n)
{
    for (int i = 0; i < 20000 && atomic_load(&v->answered) < n; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&v->answered), n);
}

/* Asynchronous appends from four threads, mixed with appends that wait: each callback comes
 * once, after its entry is durable, with a number of its own that holds that entry; the log
 * verifies. */
static void test_async_appends(void **state)
{
    enum { NT = 4, PER = 600 };
    char *dir = tmpdir();
    struct async_seen v = {0};
    struct async_call *calls = calloc(NT * PER, sizeof(*calls));
    struct async_thr t[NT];
    pthread_t th[NT];
    uint8_t *used = calloc(NT * PER, 1);
    struct rv_audit_report r;
    (void)state;

    v.log = open_log(dir, 100);
    v.index = calloc(NT * PER, sizeof(uint64_t));
    v.rc = calloc(NT * PER, sizeof(*v.rc));
    assert_non_null(calls);
    assert_non_null(v.index);
    assert_non_null(v.rc);
    for (int i = 0; i < NT; i++) {
        t[i] = (struct async_thr){&v, calls, (unsigned)i * PER, PER};
        assert_int_equal(pthread_create(&th[i], NULL, async_appender, &t[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    wait_answered(&v, NT * PER);
    assert_int_equal(atomic_load(&v.bad), 0);
    assert_int_equal(rv_audit_size(v.log), NT * PER);
    for (unsigned i = 0; i < NT * PER; i++) {
        struct rv_audit_record rec;
        char want[64];
        assert_int_equal(atomic_load(&v.rc[i]), 1);
        assert_true(v.index[i] < NT * PER);
        assert_int_equal(used[v.index[i]], 0);
        used[v.index[i]] = 1;
        assert_int_equal(rv_audit_get(v.log, v.index[i], &rec), 0);
        snprintf(want, sizeof(want), "{\"seq\":%u}", i);
        assert_string_equal(rec.e.params, want);
        rv_audit_record_free(&rec);
    }
    /* Queued entries are answered by close at the latest. */
    {
        struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
        struct async_seen w = {0};
        struct async_call c = {&w, 0};
        uint64_t idx = 0;
        _Atomic int rc1 = 0;
        w.log = v.log;
        w.index = &idx;
        w.rc = &rc1;
        assert_int_equal(rv_audit_append_async(v.log, &e, async_done, &c), 0);
        assert_int_equal(rv_audit_close(v.log), 0);
        assert_int_equal(atomic_load(&w.answered), 1);
        assert_int_equal(atomic_load(&rc1), 1);
        assert_int_equal(idx, NT * PER);
    }
    assert_int_equal(verify_dir(dir, NULL, NULL, &r), 0);
    assert_int_equal(r.size, NT * PER + 1);
    free(used);
    free(calls);
    free(v.index);
    free((void *)v.rc);
    rmtree(dir);
    free(dir);
}

/* A bad entry is refused at once, and its callback never comes; a read-only log refuses. */
static void test_async_refusals(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 100), *ro = NULL;
    struct async_seen v = {0};
    struct async_call c = {&v, 0};
    uint64_t idx = 0;
    _Atomic int rc1 = 0;
    struct rv_audit_entry bad = {0, "u", "checker", "check\n", "", "ok", "local", NULL, 0};
    struct rv_audit_entry good = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    (void)state;

    v.log = log;
    v.index = &idx;
    v.rc = &rc1;
    assert_int_equal(rv_audit_append_async(log, &bad, async_done, &c), RV_EINVAL);
    assert_int_equal(rv_audit_close(log), 0);
    assert_int_equal(atomic_load(&v.answered), 0);
    assert_int_equal(rv_audit_open_ro(dir, &ro), 0);
    assert_int_equal(rv_audit_append_async(ro, &good, async_done, &c), RV_EUNSUPPORTED);
    rv_audit_close(ro);
    assert_int_equal(atomic_load(&v.answered), 0);
    rmtree(dir);
    free(dir);
}

/* In a child whose entry file cannot grow: asynchronous appends until the log fails. Every
 * callback after the failure reports it, none reports success for an entry that is not on
 * the disk, appends after it are refused at once, and what was acknowledged is there when
 * the log is reopened. */
static void test_async_fails_closed(void **state)
{
    char *dir = tmpdir();
    pid_t pid;
    (void)state;

    build(dir, 5, 1000);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        enum { N = 100000 };
        struct async_seen v = {0};
        struct async_call *calls = calloc(N, sizeof(*calls));
        struct rv_audit_log *ro = NULL;
        struct rlimit rl;
        struct stat st;
        char *h = sub(dir, "hashes");
        unsigned issued = 0, failed_seen = 0;
        int rc = 0;
        signal(SIGXFSZ, SIG_IGN);
        alarm(30); /* a hang fails the test */
        v.index = calloc(N, sizeof(uint64_t));
        v.rc = calloc(N, sizeof(*v.rc));
        if (calls == NULL || v.index == NULL || v.rc == NULL ||
            rv_audit_open(dir, SEED, NULL, &v.log) != 0 || stat(h, &st) != 0)
            _exit(10);
        rl.rlim_cur = rl.rlim_max = (rlim_t)st.st_size + 2000;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        while (issued < N) {
            struct rv_audit_entry en = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
            calls[issued] = (struct async_call){&v, issued};
            rc = rv_audit_append_async(v.log, &en, async_done, &calls[issued]);
            if (rc != 0)
                break;
            issued++;
        }
        if (rc != RV_EAUDIT)
            _exit(12);
        while (atomic_load(&v.answered) < issued)
            usleep(1000);
        if (atomic_load(&v.bad) != 0)
            _exit(13);
        /* Once one failed, every later one failed too. */
        for (unsigned i = 0; i < issued; i++) {
            int r = atomic_load(&v.rc[i]);
            if (r == RV_EAUDIT)
                failed_seen = 1;
            else if (r != 1 || failed_seen)
                _exit(14);
        }
        if (!failed_seen || rv_audit_close(v.log) != RV_EAUDIT)
            _exit(15);
        if (rv_audit_open_ro(dir, &ro) != 0 || rv_audit_size(ro) < atomic_load(&v.acked))
            _exit(16);
        rv_audit_close(ro);
        _exit(0);
    }
    child_ok_then_intact(pid, dir, 5);
    rmtree(dir);
    free(dir);
}

struct group_seen {
    _Atomic int calls, rc;
};

static void group_done(void *ctx, int rc)
{
    struct group_seen *g = ctx;

    atomic_store(&g->rc, rc);
    atomic_fetch_add(&g->calls, 1);
}

/* Closes g and waits for its answer: 0 or the first failure. fn is called once, or never
 * when close already knew the answer. */
static int group_result(struct rv_audit_group *g, struct group_seen *seen)
{
    int rc = 1;

    if (rv_audit_group_close(g, &rc) == 0) {
        assert_int_equal(atomic_load(&seen->calls), 0);
        return rc;
    }
    for (int i = 0; i < 20000 && atomic_load(&seen->calls) == 0; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&seen->calls), 1);
    return atomic_load(&seen->rc);
}

/* A thread's group: its single appends without an index return at once and are counted;
 * those with an index still wait; the group's answer comes once all are durable; other
 * threads are not affected, and leaving the group restores waiting appends. */
static void test_group_defers_appends(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 100);
    struct rv_audit_group *g = NULL;
    struct group_seen seen = {0};
    struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    uint64_t idx = UINT64_MAX;
    int rc = 1;
    (void)state;

    /* An empty group answers at close, without its callback. */
    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    assert_true(rv_audit_group_settled(g));
    assert_int_equal(rv_audit_group_close(g, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&seen.calls), 0);

    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    assert_null(rv_audit_group_enter(g));
    for (int i = 0; i < 50; i++)
        assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    /* With an index, the call waits, and numbers come in order. */
    assert_int_equal(rv_audit_append(log, &e, &idx), 0);
    assert_int_equal(idx, 50);
    assert_true(rv_audit_size(log) >= 51);
    assert_ptr_equal(rv_audit_group_enter(NULL), g);
    /* Committing on this thread (or leaving it to whoever holds the turn) answers them. */
    rv_audit_group_commit(g);
    assert_int_equal(group_result(g, &seen), 0);
    assert_int_equal(rv_audit_size(log), 51);
    /* A group whose entries are committed on its own thread is settled when that returns,
     * unless the committer thread held the turn; either way its answer is success. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    (void)rv_audit_group_enter(g);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    (void)rv_audit_group_enter(NULL);
    rv_audit_group_commit(g);
    assert_int_equal(group_result(g, &seen), 0);
    assert_int_equal(rv_audit_size(log), 56);
    /* Outside the group, an append waits again. */
    assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    assert_int_equal(rv_audit_size(log), 57);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

/* A group takes the entries of one log: an append to a second log on the group's thread
 * waits as with no group (nothing would rouse a commit of it), and the group still settles
 * with its own log's entries. */
static void test_group_one_log(void **state)
{
    char *da = tmpdir(), *db = tmpdir();
    struct rv_audit_log *a = open_log(da, 100), *b = open_log(db, 100);
    struct rv_audit_group *g = NULL;
    struct group_seen seen = {0};
    struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    (void)state;

    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    (void)rv_audit_group_enter(g);
    assert_int_equal(rv_audit_append(a, &e, NULL), 0);
    assert_int_equal(rv_audit_append(b, &e, NULL), 0);
    assert_int_equal(rv_audit_size(b), 1); /* durable on return */
    assert_int_equal(rv_audit_append(a, &e, NULL), 0);
    (void)rv_audit_group_enter(NULL);
    rv_audit_group_commit(g);
    assert_int_equal(group_result(g, &seen), 0);
    assert_int_equal(rv_audit_size(a), 2);
    assert_int_equal(rv_audit_close(a), 0);
    assert_int_equal(rv_audit_close(b), 0);
    rmtree(da);
    rmtree(db);
    free(da);
    free(db);
}

/* rv_audit_group_wait returns only once every entry of the group is answered, also while
 * other threads hold the commit turn (their own appends, waiting for their syncs): the
 * group is then settled, its callback never runs, and close gives its result at once. */
struct group_wait_run {
    struct rv_audit_log *log;
    _Atomic int stop, bad, rounds;
};

static void *sync_appender(void *arg)
{
    struct group_wait_run *r = arg;
    struct rv_audit_entry e = {0, "s", "checker", "check", "", "ok", "local", NULL, 0};

    while (!atomic_load(&r->stop))
        if (rv_audit_append(r->log, &e, NULL) != 0)
            atomic_store(&r->bad, 1);
    return NULL;
}

static void *group_waiter(void *arg)
{
    struct group_wait_run *r = arg;
    struct rv_audit_entry e = {0, "g", "checker", "check", "", "ok", "local", NULL, 0};

    for (int i = 0; i < 300; i++) {
        struct group_seen seen = {0};
        struct rv_audit_group *g = NULL;
        int rc = 1;
        if (rv_audit_group_new(group_done, &seen, &g) != 0) {
            atomic_store(&r->bad, 2);
            break;
        }
        (void)rv_audit_group_enter(g);
        for (int k = 0; k < 3; k++)
            if (rv_audit_append(r->log, &e, NULL) != 0)
                atomic_store(&r->bad, 3);
        (void)rv_audit_group_enter(NULL);
        rv_audit_group_wait(g);
        if (!rv_audit_group_settled(g))
            atomic_store(&r->bad, 4);
        if (rv_audit_group_close(g, &rc) != 0 || rc != 0 || atomic_load(&seen.calls) != 0)
            atomic_store(&r->bad, 5);
        atomic_fetch_add(&r->rounds, 1);
    }
    return NULL;
}

static void test_group_wait(void **state)
{
    char *dir = tmpdir();
    struct group_wait_run r = {.log = open_log(dir, 100000)};
    struct rv_audit_group *g = NULL;
    struct group_seen seen = {0};
    struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    pthread_t sync_t[3], wait_t[4];
    int rc = 1;
    (void)state;

    /* Alone: the wait commits the entries itself. An empty group returns at once. */
    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    rv_audit_group_wait(g);
    (void)rv_audit_group_enter(g);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rv_audit_append(r.log, &e, NULL), 0);
    (void)rv_audit_group_enter(NULL);
    rv_audit_group_wait(g);
    assert_true(rv_audit_group_settled(g));
    assert_int_equal(rv_audit_size(r.log), 4);
    assert_int_equal(rv_audit_group_close(g, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&seen.calls), 0);

    /* Against threads that keep the turn busy with their own syncs. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&sync_t[i], NULL, sync_appender, &r), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&wait_t[i], NULL, group_waiter, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(wait_t[i], NULL);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(sync_t[i], NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_int_equal(atomic_load(&r.rounds), 4 * 300);
    assert_true(rv_audit_size(r.log) >= 4 + 4 * 300 * 3);
    assert_int_equal(rv_audit_close(r.log), 0);
    rmtree(dir);
    free(dir);
}

/* In a child whose entry file cannot grow: a group's appends keep returning 0 until the log
 * is known to have failed, but the group's answer is the failure, never success. */
static void test_group_fails_closed(void **state)
{
    char *dir = tmpdir();
    pid_t pid;
    (void)state;

    build(dir, 5, 1000);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rv_audit_log *log = NULL;
        struct rv_audit_group *g = NULL;
        struct group_seen seen = {0};
        struct rlimit rl;
        struct stat st;
        char *h = sub(dir, "hashes");
        int rc = 0, i;
        signal(SIGXFSZ, SIG_IGN);
        alarm(30);
        if (rv_audit_open(dir, SEED, NULL, &log) != 0 || stat(h, &st) != 0 ||
            rv_audit_group_new(group_done, &seen, &g) != 0)
            _exit(10);
        rl.rlim_cur = rl.rlim_max = (rlim_t)st.st_size + 2000;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        (void)rv_audit_group_enter(g);
        for (i = 0; i < 100000 && rc == 0; i++) {
            struct rv_audit_entry en = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
            rc = rv_audit_append(log, &en, NULL);
            /* The group's holder writes them (nobody else is roused for them). */
            if (i % 7 == 6)
                rv_audit_group_commit(g);
        }
        (void)rv_audit_group_enter(NULL);
        if (rc != RV_EAUDIT)
            _exit(12);
        rc = 1;
        if (rv_audit_group_close(g, &rc) == 1) {
            while (atomic_load(&seen.calls) == 0)
                usleep(1000);
            rc = atomic_load(&seen.rc);
        }
        if (rc != RV_EAUDIT || atomic_load(&seen.calls) > 1)
            _exit(13);
        if (rv_audit_close(log) != RV_EAUDIT)
            _exit(14);
        _exit(0);
    }
    child_ok_then_intact(pid, dir, 5);
    rmtree(dir);
    free(dir);
}

/* A group handed off is never written on its holder's thread: after one append, close
 * finds the entry still in flight (1), and the callback runs on the log's committer thread
 * with success, once the entry is durable. */
struct handoff_seen {
    _Atomic int calls, rc;
    pthread_t thread;
    uint64_t size;
    struct rv_audit_log *log;
};

static void handoff_done(void *ctx, int rc)
{
    struct handoff_seen *h = ctx;

    h->thread = pthread_self();
    h->size = rv_audit_size(h->log);
    atomic_store(&h->rc, rc);
    atomic_fetch_add(&h->calls, 1);
}

static void test_group_handoff(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 100);
    struct rv_audit_group *g = NULL;
    struct handoff_seen seen = {.log = log};
    struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    int rc = 1;
    (void)state;

    atomic_init(&seen.calls, 0);
    atomic_init(&seen.rc, -1);
    assert_int_equal(rv_audit_group_new(handoff_done, &seen, &g), 0);
    rv_audit_group_handoff(g);
    (void)rv_audit_group_enter(g);
    assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    (void)rv_audit_group_enter(NULL);
    assert_int_equal(rv_audit_group_close(g, &rc), 1);
    for (int i = 0; i < 20000 && atomic_load(&seen.calls) == 0; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_int_equal(atomic_load(&seen.rc), 0);
    assert_false(pthread_equal(seen.thread, pthread_self()));
    assert_int_equal(seen.size, 1);
    assert_int_equal(rv_audit_size(log), 1);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

/* A hold keeps a group unsettled until it is released, entries or none: the callback comes
 * only after the release, with the release's failure if it gives one. */
struct hold_run {
    struct rv_audit_group *g;
    int rc;
};

static void *hold_releaser(void *arg)
{
    struct hold_run *r = arg;

    usleep(20000);
    rv_audit_group_release(r->g, r->rc);
    return NULL;
}

static void test_group_hold(void **state)
{
    char *dir = tmpdir();
    struct rv_audit_log *log = open_log(dir, 100);
    struct rv_audit_group *g = NULL, *h;
    struct group_seen seen = {0};
    struct rv_audit_entry e = {0, "u", "checker", "check", "", "ok", "local", NULL, 0};
    struct hold_run r = {0};
    pthread_t t;
    int rc = 1;
    (void)state;

    /* No group: nothing to hold. */
    assert_null(rv_audit_group_hold());

    /* A held group with no entries: close leaves it to the release. */
    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    (void)rv_audit_group_enter(g);
    assert_ptr_equal((h = rv_audit_group_hold()), g);
    (void)rv_audit_group_enter(NULL);
    assert_false(rv_audit_group_settled(g));
    assert_int_equal(rv_audit_group_close(g, &rc), 1);
    usleep(10000);
    assert_int_equal(atomic_load(&seen.calls), 0);
    rv_audit_group_release(h, 0);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_int_equal(atomic_load(&seen.rc), 0);

    /* With an entry, released on another thread with a failure: the group fails, and
     * rv_audit_group_wait waits for the release. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(rv_audit_group_new(group_done, &seen, &g), 0);
    (void)rv_audit_group_enter(g);
    assert_int_equal(rv_audit_append(log, &e, NULL), 0);
    r.g = rv_audit_group_hold();
    r.rc = RV_EIO;
    (void)rv_audit_group_enter(NULL);
    assert_int_equal(pthread_create(&t, NULL, hold_releaser, &r), 0);
    rv_audit_group_wait(g);
    assert_true(rv_audit_group_settled(g));
    assert_int_equal(rv_audit_group_close(g, &rc), 0);
    assert_int_equal(rc, RV_EIO);
    assert_int_equal(atomic_load(&seen.calls), 0);
    pthread_join(t, NULL);
    assert_int_equal(rv_audit_size(log), 1);
    assert_int_equal(rv_audit_close(log), 0);
    rmtree(dir);
    free(dir);
}

static void test_unwritable_dir(void **state)
{
    struct rv_audit_log *log = NULL;
    (void)state;

    /* A path under a regular file can never be created, even by root. */
    assert_int_equal(rv_audit_open("/dev/null/audit", SEED, NULL, &log), RV_EAUDIT);
    assert_null(log);
    assert_int_equal(rv_audit_open_ro("/nonexistent/audit", &log), RV_ENOTFOUND);
}

/* ---- fixture for tests/e2e/audit_cli.sh ----------------------------------------------- */

static int make_fixture(const char *vault, unsigned long n)
{
    char path[4096];
    struct rv_audit_opts o = {"regvault.test/audit", 16, 0};
    struct rv_audit_log *log = NULL;
    struct rv_name_key nk;
    struct rv_postcode pc;
    uint8_t id[32];

    snprintf(path, sizeof(path), "%s/audit", vault);
    mkdir(vault, 0700);
    if (rv_audit_open(path, SEED, &o, &log) != 0)
        return 1;
    memset(&nk, 0, sizeof(nk));
    memset(&pc, 0, sizeof(pc));
    strcpy(nk.surname, "macdonald");
    strcpy(nk.first, "flora");
    strcpy(pc.canon, "IV1 1AA");
    if (rv_audit_subject_id(MAC_KEY, &nk, &pc, id) != 0)
        return 1;
    for (unsigned long i = 0; i < n; i++) {
        char params[64];
        struct rv_audit_entry e = {1700000000000 + (int64_t)i * 1000,
                                   i % 4 == 0 ? "registrar1" : "treasurer",
                                   i % 4 == 0 ? "registrar" : "checker",
                                   i % 4 == 0 ? "ingest" : "check",
                                   params,
                                   i % 5 == 3 ? "not-found" : "ok",
                                   i % 2 ? "192.0.2.7" : "local",
                                   (const uint8_t(*)[32])id,
                                   i % 4 == 0 ? 0 : 1};
        snprintf(params, sizeof(params), "{\"batch\":%lu}", i / 10);
        if (rv_audit_append(log, &e, NULL) != 0)
            return 1;
    }
    return rv_audit_close(log) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_prove),
        cmocka_unit_test(test_append_sizes),
        cmocka_unit_test(test_checkpoints_and_reopen),
        cmocka_unit_test(test_checkpoint_by_time),
        cmocka_unit_test(test_group_commit_threads),
        cmocka_unit_test(test_group_commit_many_threads),
        cmocka_unit_test(test_append_batch),
        cmocka_unit_test(test_verify_while_appending),
        cmocka_unit_test(test_subject_search),
        cmocka_unit_test(test_tamper_every_file),
        cmocka_unit_test(test_truncation_and_rollback),
        cmocka_unit_test(test_other_key_rejected),
        cmocka_unit_test(test_open_reads_one_checkpoint),
        cmocka_unit_test(test_open_after_crash),
        cmocka_unit_test(test_damaged_old_checkpoint),
        cmocka_unit_test(test_kill9_durability),
        cmocka_unit_test(test_full_disk_fails_closed),
        cmocka_unit_test(test_closed_fd_fails_closed),
        cmocka_unit_test(test_failure_wakes_every_waiter),
        cmocka_unit_test(test_unwritable_dir),
        cmocka_unit_test(test_async_appends),
        cmocka_unit_test(test_async_refusals),
        cmocka_unit_test(test_async_fails_closed),
        cmocka_unit_test(test_group_defers_appends),
        cmocka_unit_test(test_group_one_log),
        cmocka_unit_test(test_group_wait),
        cmocka_unit_test(test_group_fails_closed),
        cmocka_unit_test(test_group_handoff),
        cmocka_unit_test(test_group_hold),
    };

    if (sodium_init() < 0)
        return 1;
    if (argc == 4 && strcmp(argv[1], "--make-fixture") == 0)
        return make_fixture(argv[2], strtoul(argv[3], NULL, 10));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
