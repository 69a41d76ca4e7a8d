/*
 * fuzz_check_batch.c - libFuzzer target for the donations batch reader: any bytes as a
 * donations file, in each layout, read to the end; every row that reads is scored against a
 * fixed register entry, decided and rendered as JSON and CSV. Nothing may crash, leak or
 * read out of bounds, and the reader must always reach the end.
 *
 * Run with its dictionary, new inputs going to a scratch folder, not the seed corpus:
 *   build-fuzz/fuzz_check_batch -dict=tests/fuzz/fuzz_check_batch.dict \
 *       /tmp/fuzz_check_batch tests/fuzz/corpus/fuzz_check_batch
 */
#include "check/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fixed_entry(struct rv_check_candidate *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->elector.area, sizeof(c->elector.area), "E07000001");
    snprintf(c->elector.number.prefix, sizeof(c->elector.number.prefix), "AB1");
    c->elector.number.number = 1;
    c->elector.attainment = RV_DATE_NONE;
    if (rv_name_from_parts("Smith", "John Paul", &c->elector.name) != 0)
        abort();
    snprintf(c->elector.address[0], RV_ADDR_LINE_MAX, "Flat 2");
    snprintf(c->elector.address[1], RV_ADDR_LINE_MAX, "10 High Street");
    snprintf(c->elector.address[2], RV_ADDR_LINE_MAX, "Leeds");
    if (rv_postcode_parse("LS1 4AB", 7, &c->elector.postcode) != 0)
        abort();
    c->from = rv_date_from_ymd(2025, 12, 1);
    c->to = RV_DATE_FOREVER;
    c->found_by = RV_CHECK_BY_SURNAME_POSTCODE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum rv_check_layout layouts[] = {RV_CHECK_LAYOUT_AUTO, RV_CHECK_LAYOUT_EC,
                                                   RV_CHECK_LAYOUT_PLAIN};
    struct rv_check_candidate cand;

    fixed_entry(&cand);
    for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++) {
        struct rv_check_batch *b = NULL;
        struct rv_check_row row;
        struct rv_diag d;
        unsigned rows = 0;
        int rc;

        if (rv_check_batch_open_mem((const char *)data, size, "fuzz.csv", layouts[l], &b, &d) != 0)
            continue;
        while ((rc = rv_check_batch_next(b, &row, &d)) == 1) {
            struct rv_check_match m;
            struct rv_check_answer a;
            json_t *j = NULL;
            char *csv = NULL;

            if (++rows > 100000)
                abort(); /* the reader must make progress */
            if (row.status != RV_ROW_OK) {
                rv_check_answer_unmatched(
                    row.q.id, row.q.line,
                    row.status == RV_ROW_OUT_OF_SCOPE ? RV_VERDICT_OUT_OF_SCOPE : RV_VERDICT_REVIEW,
                    row.error, &a);
                if (rv_check_answer_json(NULL, &a, &j) == 0)
                    json_decref(j);
                if (rv_check_answer_csv(NULL, &a, &csv) == 0)
                    free(csv);
                rv_check_answer_free(&a);
                continue;
            }
            rv_check_score(&row.q, &cand, &m);
            if (rv_check_decide(&row.q, &m, 1, &a) != 0)
                continue;
            if (rv_check_answer_json(&row.q, &a, &j) == 0)
                json_decref(j);
            if (rv_check_answer_csv(&row.q, &a, &csv) == 0)
                free(csv);
            rv_check_answer_free(&a);
        }
        rv_check_batch_close(b);
    }
    return 0;
}
