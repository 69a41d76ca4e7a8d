/*
 * audit_bench.c - throughput and latency of the audit log, for bench/audit.sh.
 *
 *   audit_bench append DIR THREADS COUNT [EVERY [BATCH]]
 *                              COUNT entries from THREADS threads, each append waiting for
 *                              durability (group commit); a checkpoint every EVERY entries;
 *                              with BATCH > 1 each call appends BATCH entries at once
 *                              (rv_audit_append_batch, as a batch check would)
 *   audit_bench verify DIR                        full verification of the log in DIR
 *   audit_bench proof DIR COUNT                   COUNT inclusion proofs of random entries
 *                                                 in the whole tree, generated and verified
 *
 * Entries look like a donor check: a principal, role, action, short parameters, outcome,
 * client address and one subject id (about 120 bytes encoded).
 *
 * Besides the wall-clock rate, append prints the process's CPU time (user + system) per
 * entry, which other work on a shared machine disturbs far less.
 */
#include "audit/audit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const uint8_t SEED[32] = {0x62, 0x65, 0x6e, 0x63, 0x68};

/* User and system CPU time of the whole process so far, in seconds. */
static void cpu(double *user, double *sys)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct job {
    struct rv_audit_log *log;
    uint64_t n, batch;
    int id;
    int failed;
};

static void *appender(void *arg)
{
    struct job *j = arg;
    struct rv_audit_entry *e = calloc(j->batch, sizeof(*e));
    uint8_t(*subject)[32] = calloc(j->batch, 32);
    char(*params)[64] = calloc(j->batch, 64);

    if (e == NULL || subject == NULL || params == NULL) {
        j->failed = 1;
        return NULL;
    }
    for (uint64_t i = 0; i < j->n; i += j->batch) {
        size_t k = j->n - i < j->batch ? (size_t)(j->n - i) : (size_t)j->batch;
        for (size_t b = 0; b < k; b++) {
            e[b] = (struct rv_audit_entry){0,    "treasurer-17", "checker", "check", params[b],
                                           "ok", "203.0.113.42", NULL,      1};
            memset(subject[b], (int)((i + b) & 0xff), 32);
            subject[b][0] = (uint8_t)j->id;
            e[b].subjects = (const uint8_t(*)[32])subject[b];
            snprintf(params[b], 64, "{\"batch\":\"q3-2024\",\"row\":%llu}",
                     (unsigned long long)(i + b));
        }
        if (rv_audit_append_batch(j->log, e, k, NULL) != 0) {
            j->failed = 1;
            break;
        }
    }
    free(e);
    free(subject);
    free(params);
    return NULL;
}

static int bench_append(const char *dir, int threads, uint64_t count, uint64_t every,
                        uint64_t batch)
{
    struct rv_audit_opts o = {"regvault.bench/audit", every, 0};
    struct rv_audit_log *log = NULL;
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    struct job *jobs = calloc((size_t)threads, sizeof(*jobs));
    uint64_t before;
    double t0, t1, u0, s0, u1, s1;
    int rc;

    if (th == NULL || jobs == NULL || (rc = rv_audit_open(dir, SEED, &o, &log)) != 0) {
        fprintf(stderr, "cannot open the log in %s\n", dir);
        return 1;
    }
    before = rv_audit_size(log);
    cpu(&u0, &s0);
    t0 = now();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){
            .log = log,
            .n = count / (uint64_t)threads + ((uint64_t)i < count % (uint64_t)threads),
            .batch = batch,
            .id = i,
        };
        if (pthread_create(&th[i], NULL, appender, &jobs[i]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    t1 = now();
    cpu(&u1, &s1);
    for (int i = 0; i < threads; i++)
        if (jobs[i].failed) {
            fprintf(stderr, "an append failed\n");
            return 1;
        }
    rc = rv_audit_close(log);
    printf("append: %llu durable entries from %d threads, %llu per call, in %.3f s = %.0f "
           "entries/s; CPU %.2f us/entry (user %.2f s, sys %.2f s) (log now %llu entries, "
           "checkpoint every %llu, close %s)\n",
           (unsigned long long)count, threads, (unsigned long long)batch, t1 - t0,
           (double)count / (t1 - t0), ((u1 - u0) + (s1 - s0)) * 1e6 / (double)count, u1 - u0,
           s1 - s0, (unsigned long long)(before + count), (unsigned long long)every,
           rc == 0 ? "ok" : "FAILED");
    free(th);
    free(jobs);
    return rc == 0 ? 0 : 1;
}

static int bench_verify(const char *dir)
{
    struct rv_audit_log *log = NULL;
    struct rv_audit_report r;
    double t0, t1;
    int rc;

    if (rv_audit_open_ro(dir, &log) != 0) {
        fprintf(stderr, "cannot open the log in %s\n", dir);
        return 1;
    }
    t0 = now();
    rc = rv_audit_verify(log, NULL, NULL, &r);
    t1 = now();
    printf("verify: %llu entries, %llu checkpoints in %.3f s (%.0f entries/s): %s\n",
           (unsigned long long)r.size, (unsigned long long)r.checkpoints, t1 - t0,
           (double)r.size / (t1 - t0), rc == 0 ? "ok" : r.what);
    rv_audit_close(log);
    return rc == 0 ? 0 : 1;
}

static int bench_proof(const char *dir, uint64_t count)
{
    struct rv_audit_log *log = NULL;
    struct rv_audit_proof p;
    uint64_t n, x = 0x9e3779b97f4a7c15u;
    double t0, t1, t2;
    int bad = 0;

    if (rv_audit_open_ro(dir, &log) != 0 || (n = rv_audit_size(log)) == 0) {
        fprintf(stderr, "cannot open a non-empty log in %s\n", dir);
        return 1;
    }
    t0 = now();
    for (uint64_t i = 0; i < count; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (rv_audit_prove_inclusion(log, x % n, n, &p) != 0)
            bad++;
    }
    t1 = now();
    for (uint64_t i = 0; i < count; i++)
        if (rv_audit_proof_verify(&p) != 0)
            bad++;
    t2 = now();
    printf("proof: %llu inclusion proofs at tree size %llu: %.2f us to generate, "
           "%.2f us to verify (%zu hashes)%s\n",
           (unsigned long long)count, (unsigned long long)n, (t1 - t0) * 1e6 / (double)count,
           (t2 - t1) * 1e6 / (double)count, p.nhashes, bad ? " FAILED" : "");
    rv_audit_close(log);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc >= 5 && strcmp(argv[1], "append") == 0)
        return bench_append(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10),
                            argc > 5 ? strtoull(argv[5], NULL, 10) : 1000,
                            argc > 6 && atoi(argv[6]) > 0 ? strtoull(argv[6], NULL, 10) : 1);
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return bench_verify(argv[2]);
    if (argc == 4 && strcmp(argv[1], "proof") == 0)
        return bench_proof(argv[2], strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: audit_bench append DIR THREADS COUNT [EVERY [BATCH]]\n"
                    "       audit_bench verify DIR\n"
                    "       audit_bench proof DIR COUNT\n");
    return 2;
}
