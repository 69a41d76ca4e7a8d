/*
 * fuzz_check_query.c - libFuzzer target for the query parser and scorer: the input is split
 * at newlines into name, address, postcode and a register entry's forenames, surname and
 * address lines; the query is parsed, scored against the entry (and against itself as an
 * entry), decided and rendered, as a donation and as a bequest. The daemon's JSON text
 * renderer must give the same bytes as jansson's compact dump of the answer's tree.
 */
#include "check/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPARTS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *part[NPARTS];
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_match m[2];
    struct rv_check_answer a;
    struct rv_diag d;
    size_t np = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    part[np++] = buf;
    for (char *p = buf; *p != '\0' && np < NPARTS; p++)
        if (*p == '\n') {
            *p = '\0';
            part[np++] = p + 1;
        }
    while (np < NPARTS)
        part[np++] = (char *)"";

    if (rv_check_query_init(part[0], part[1], part[2], rv_date_from_ymd(2026, 1, 15), &q, &d) != 0)
        goto out;

    memset(&c, 0, sizeof(c));
    snprintf(c.elector.area, sizeof(c.elector.area), "E07000001");
    c.elector.attainment = RV_DATE_NONE;
    if (rv_name_from_parts(part[4][0] != '\0' ? part[4] : "Smith", part[3], &c.elector.name) != 0)
        goto out;
    snprintf(c.elector.address[0], RV_ADDR_LINE_MAX, "%.127s", part[5]);
    snprintf(c.elector.address[1], RV_ADDR_LINE_MAX, "%.127s", part[6]);
    c.elector.postcode = q.postcode;
    c.from = rv_date_from_ymd(2025, 12, 1);
    c.to = RV_DATE_FOREVER;
    c.found_by = 0x1f;
    rv_check_score(&q, &c, &m[0]);
    /* The donor against themself, as the register would hold them. */
    c.elector.name = q.name;
    rv_check_score(&q, &c, &m[1]);
    for (int bequest = 0; bequest < 2; bequest++) {
        json_t *j = NULL;
        char *csv = NULL, reasons[2048], mask[256];
        if (bequest)
            rv_check_query_set_bequest(&q);
        if (rv_check_decide(&q, m, 2, &a) != 0)
            continue;
        for (size_t i = 0; i < a.nmatches; i++) {
            rv_check_reasons(&q, &a.matches[i], true, reasons, sizeof(reasons));
            rv_check_mask(&a.matches[i].cand.elector, mask, sizeof(mask));
        }
        if (rv_check_answer_json(&q, &a, &j) == 0) {
            /* The daemon's renderer must give the very bytes of jansson's compact dump. */
            char *dump = json_dumps(j, JSON_COMPACT), *text = NULL;
            size_t len = 0;
            if (dump != NULL && rv_check_answer_text(&q, &a, &text, &len) == 0 &&
                (len != strlen(dump) || memcmp(text, dump, len) != 0))
                abort();
            free(text);
            free(dump);
            json_decref(j);
        }
        if (rv_check_answer_csv(&q, &a, &csv) == 0)
            free(csv);
        rv_check_answer_free(&a);
    }
out:
    free(buf);
    return 0;
}
