/*
 * fuzz_check_prefilter.c - libFuzzer target that holds the matcher's cheap tests to the full
 * comparisons they stand in for. The input is split at newlines into a donor's name, a
 * listed entry's surname and its forenames.
 *
 * The namesake and no-postcode lists are sifted with rv_check_name_probe_may and
 * rv_check_name_probe_grade before rv_check_name_could_grade, and the postcode's list of
 * surnames with rv_check_surname_close, whose letter counts bound Jaro-Winkler before it is
 * worked out. A cheap test that rules out what the full one would grade hides a registered
 * donor, so any disagreement aborts:
 *   - rv_check_name_could_grade true but rv_check_name_probe_may false;
 *   - rv_check_name_probe_grade different from rv_check_name_could_grade;
 *   - rv_check_surname_close different with and without the letter counts.
 */
#include "check/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPARTS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *part[NPARTS];
    struct rv_check_query q;
    struct rv_check_name_probe np;
    struct rv_check_sn_probe sp, plain;
    struct rv_name entry;
    struct rv_name_key ek;
    struct rv_diag d;
    size_t n = 0;
    bool full, may, grade, close, close_plain;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    part[n++] = buf;
    for (char *p = buf; *p != '\0' && n < NPARTS; p++)
        if (*p == '\n') {
            *p = '\0';
            part[n++] = p + 1;
        }
    while (n < NPARTS)
        part[n++] = (char *)"";

    memset(&d, 0, sizeof(d));
    if (rv_check_query_init(part[0], NULL, "LS1 4AB", rv_date_from_ymd(2026, 1, 15), &q, &d) != 0)
        goto out;
    if (rv_name_from_parts(part[1][0] != '\0' ? part[1] : "Smith", part[2], &entry) != 0 ||
        rv_name_key(&entry, &ek) != 0)
        goto out;

    full = rv_check_name_could_grade(&q, ek.surname_tokens, ek.forenames);
    rv_check_name_probe_init(&q, &np);
    may = rv_check_name_probe_may(&np, ek.surname_tokens, ek.forenames);
    grade = rv_check_name_probe_grade(&np, ek.surname_tokens, ek.forenames);
    if ((full && !may) || grade != full)
        abort();

    rv_check_sn_probe_init(&q, &sp);
    plain = sp;
    plain.key_counted = false;
    plain.alt_counted = false;
    close = rv_check_surname_close(&q, &sp, ek.surname_tokens, strlen(ek.surname_tokens));
    close_plain = rv_check_surname_close(&q, &plain, ek.surname_tokens, strlen(ek.surname_tokens));
    if (close != close_plain)
        abort();
out:
    free(buf);
    return 0;
}
