/*
 * check_bench.c - times single checks in process: opens a vault with a key file, opens a
 * check context, reads the individuals' rows of a donations file (synth's, either layout),
 * and times rv_check_run for N donors drawn at random (with a fixed seed), one call each,
 * straight after a warm-up pass over the first few. This is the matcher alone: no access
 * gate and no audit fsync, which bench/check.sh measures through the real command. It
 * times them twice: in a fresh process (each page of the vault's map faults in on first
 * use), then, with other donors, after faulting the whole store into the map as the daemon
 * does at start (rv_store_prefetch): a long-running process's steady state.
 *
 *   check_bench VAULT KEYFILE DONATIONS.csv [N] [THREADS]
 *
 * Prints the median, 99th percentile, mean and maximum in microseconds, the CPU time and
 * page faults per check, and the verdict counts. Then, with THREADS (default 2) threads, it checks
 * every donor of the file once through rv_check_run_many in chunks of 256 (as the access gate would
 * hand them over): the matcher's batch rate without the gate's audit and without reading or writing
 * files (THREADS 0 leaves this pass out). Never prints a name.
 */
#include "check/check.h"
#include "store/store.h"
#include "vault/vault.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* CPU time of this process (user and system), which the machine's other load does not
 * inflate as it does wall time. */
static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Page faults of this process so far: a fresh process faults in each page of the vault's map
 * it touches for the first time, which a long-running daemon pays only once. */
static long faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times rv_check_run for n donors drawn at random from qs (seeded), one call each, and
 * prints the figures under the label. */
static int time_singles(struct rv_check_ctx *c, const struct rv_check_query *qs, size_t nq,
                        size_t n, double *t, unsigned seed, const char *label)
{
    unsigned long verdicts[4] = {0};
    double sum = 0, cpu0 = cpu_us();
    long flt0 = faults();
    int err;

    srand(seed);
    for (size_t i = 0; i < n; i++) {
        struct rv_check_answer a;
        const struct rv_check_query *q = &qs[(size_t)rand() % nq];
        double t0 = now_us();
        err = rv_check_run(c, q, &a);
        t[i] = now_us() - t0;
        if (err != 0)
            return err;
        sum += t[i];
        verdicts[a.verdict & 3]++;
        rv_check_answer_free(&a);
    }
    cpu0 = cpu_us() - cpu0;
    flt0 = faults() - flt0;
    qsort(t, n, sizeof(*t), cmp_double);
    printf("%s: %zu of %zu donors: median %.1f us, p99 %.1f us, mean %.1f us, max %.1f "
           "us (%.0f checks/s on one thread)\n",
           label, n, nq, t[n / 2], t[n * 99 / 100], sum / (double)n, t[n - 1],
           (double)n * 1e6 / sum);
    printf("cpu time: %.1f us per check (%.2f page faults per check)\n", cpu0 / (double)n,
           (double)flt0 / (double)n);
    printf("verdicts: permissible %lu, needs review %lu, not found %lu\n", verdicts[0], verdicts[1],
           verdicts[2]);
    return 0;
}

int main(int argc, char **argv)
{
    struct rv_vault_secret secret = {0};
    struct rv_vault *v = NULL;
    struct rv_check_ctx *c = NULL;
    struct rv_check_batch *b = NULL;
    struct rv_check_query *qs = NULL;
    struct rv_check_row *row = NULL;
    struct rv_diag diag;
    uint8_t *key = NULL;
    double *t = NULL;
    size_t nq = 0, cap = 0, n = argc > 4 ? strtoul(argv[4], NULL, 10) : 10000;
    unsigned threads = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 2;
    const struct rv_check_query **qp = NULL;
    struct rv_check_answer *as = NULL;
    int err, rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: check_bench VAULT KEYFILE DONATIONS.csv [N] [THREADS]\n");
        return 2;
    }
    if (sodium_init() < 0 || (key = sodium_malloc(32)) == NULL ||
        (row = calloc(1, sizeof(*row))) == NULL)
        goto out;
    memset(&diag, 0, sizeof(diag));
    if ((err = rv_vault_read_keyfile(argv[2], key)) != 0)
        goto fail;
    secret.keyfile = key;
    if ((err = rv_vault_open(argv[1], &secret, &v)) != 0 || (err = rv_check_ctx_open(v, &c)) != 0)
        goto fail;
    if ((err = rv_check_batch_open(argv[3], RV_CHECK_LAYOUT_AUTO, &b, &diag)) != 0)
        goto fail;
    while ((err = rv_check_batch_next(b, row, &diag)) == 1) {
        if (row->status != RV_ROW_OK)
            continue;
        if (nq == cap) {
            cap = cap != 0 ? cap * 2 : 1024;
            struct rv_check_query *nqs = realloc(qs, cap * sizeof(*qs));
            if (nqs == NULL)
                goto out;
            qs = nqs;
        }
        qs[nq++] = row->q;
    }
    if (err < 0)
        goto fail;
    if (nq == 0 || (t = calloc(n, sizeof(*t))) == NULL)
        goto out;
    for (size_t i = 0; i < 200 && i < nq; i++) { /* warm the caches and the tables */
        struct rv_check_answer a;
        if ((err = rv_check_run(c, &qs[i], &a)) != 0)
            goto fail;
        rv_check_answer_free(&a);
    }
    if ((err = time_singles(c, qs, nq, n, t, 42, "single checks")) != 0)
        goto fail;
    /* The daemon's steady state: it has the store's pages faulted into its map at start. */
    {
        struct rv_store *st = rv_vault_store(v);
        double w0 = now_us();
        int started = rv_store_prefetch(st);
        if (started < 0) {
            err = started;
            goto fail;
        }
        rv_store_prefetch_wait(st);
        if (started == 0)
            printf(
                "prefetch: not done (store larger than half the memory, or its map not found)\n");
        else
            printf("prefetch (as the daemon does at start): %.0f MB in %.2f s\n",
                   (double)rv_store_used(st) / 1e6, (now_us() - w0) / 1e6);
    }
    if ((err = time_singles(c, qs, nq, n, t, 4242, "prefetched single checks")) != 0)
        goto fail;

    /* Every donor once, in chunks of 256, over the context's threads. */
    if (threads == 0) {
        rc = 0;
        goto out;
    }
    if ((qp = calloc(nq, sizeof(*qp))) == NULL || (as = calloc(256, sizeof(*as))) == NULL)
        goto out;
    for (size_t i = 0; i < nq; i++)
        qp[i] = &qs[i];
    if ((err = rv_check_ctx_set_threads(c, threads)) != 0)
        goto fail;
    {
        double w0 = now_us(), c0 = cpu_us(), w, cpu;
        for (size_t i = 0; i < nq; i += 256) {
            size_t k = nq - i < 256 ? nq - i : 256;
            if ((err = rv_check_run_many(c, qp + i, k, as)) != 0)
                goto fail;
            for (size_t j = 0; j < k; j++)
                rv_check_answer_free(&as[j]);
        }
        w = now_us() - w0;
        cpu = cpu_us() - c0;
        printf("in-process batch: %zu donors on %u threads in %.2f s (%.0f checks/s), cpu %.1f us "
               "per check\n",
               nq, threads, w / 1e6, (double)nq * 1e6 / w, cpu / (double)nq);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "check_bench: %s %s\n", rv_strerror(err), diag.msg);
out:
    if (qs != NULL) {
        sodium_memzero(qs, cap * sizeof(*qs));
        free(qs);
    }
    if (row != NULL) {
        sodium_memzero(row, sizeof(*row));
        free(row);
    }
    free(t);
    free(qp);
    free(as);
    rv_check_batch_close(b);
    rv_check_ctx_close(c);
    rv_vault_close(v);
    sodium_free(key);
    return rc;
}
