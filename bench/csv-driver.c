/*
 * csv-driver.c - reads a register file through rv_csv_next and nothing else, and prints
 * records, fields, bytes, wall time, rows per second and peak resident memory. Built by
 * bench/csv.sh against the build's libregvault.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "core/core.h"

int main(int argc, char **argv)
{
    struct rv_csv *r = NULL;
    struct rv_diag d;
    struct timespec t0, t1;
    struct rusage ru;
    char **f;
    size_t n;
    unsigned long rows = 0, fields = 0, errors = 0;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: csv-driver FILE\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rv_csv_open(argv[1], NULL, &r, &d) != 0) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 1;
    }
    while ((rc = rv_csv_next(r, &f, &n, &d)) != 0) {
        if (rc < 0) {
            errors++;
            continue;
        }
        rows++;
        fields += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    getrusage(RUSAGE_SELF, &ru);
    printf("rows %lu fields %lu errors %lu bytes %llu seconds %.3f rows/s %.0f MB/s %.0f "
           "maxrss_kib %ld\n",
           rows, fields, errors, (unsigned long long)rv_csv_offset(r), s, (double)rows / s,
           (double)rv_csv_offset(r) / s / 1e6, ru.ru_maxrss);
    rv_csv_close(r);
    return 0;
}
