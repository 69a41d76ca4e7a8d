/*
 * fuzz_ingest_map.c - the register-row mapping: header -> columns -> rv_elector.
 *
 * The first input byte chooses edition or alterations columns and the encoding; the rest is
 * read as a register file from memory. Every row is mapped; a crash, a sanitizer report, or
 * a refusal without a message is a defect.
 *
 * Run with its dictionary, new inputs going to a scratch folder, not the seed corpus:
 *   build-fuzz/fuzz_ingest_map -dict=tests/fuzz/fuzz_ingest_map.dict \
 *       /tmp/fuzz_ingest_map tests/fuzz/corpus/fuzz_ingest_map
 */
#include "ingest/ingest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_csv_opts copts = {0, RV_ENC_AUTO, 4096, 64};
    struct rv_csv *csv = NULL;
    struct rv_ingest_map map;
    struct rv_elector e;
    struct rv_diag diag;
    enum rv_row_kind kind;
    rv_date eff;
    char **fields;
    size_t nfields;
    bool alterations;
    int rc, rows = 0;

    if (size < 1)
        return 0;
    alterations = (data[0] & 1) != 0;
    copts.enc = (data[0] & 6) == 2 ? RV_ENC_CP1252 : (data[0] & 6) == 4 ? RV_ENC_UTF8 : RV_ENC_AUTO;
    if (rv_csv_open_mem((const char *)data + 1, size - 1, "fuzz", &copts, &csv) != 0)
        return 0;
    rv_diag_clear(&diag);
    rc = rv_csv_next(csv, &fields, &nfields, &diag);
    if (rc != 1 || rv_ingest_map_header(fields, nfields, alterations, &map, &diag) != 0) {
        rv_csv_close(csv);
        return 0;
    }
    while (rows++ < 10000) {
        rv_diag_clear(&diag);
        rc = rv_csv_next(csv, &fields, &nfields, &diag);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (rc != RV_EPARSE && rc != RV_ETOOBIG)
                break;
            continue;
        }
        rc = rv_ingest_map_row(&map, fields, nfields, "FUZZ", &e, &kind, &eff, &diag);
        if (rc != 0 && diag.msg[0] == '\0')
            abort(); /* every refusal must say why */
        if (rc == 0 && kind != RV_ROW_ANONYMOUS) {
            uint8_t wire[RV_ELECTOR_WIRE_MAX];
            struct rv_elector back;
            long n = rv_elector_encode(&e, wire, sizeof(wire));
            if (n < 0 || rv_elector_decode(wire, (size_t)n, &back) != 0)
                abort(); /* a mapped entry must survive sealing's wire form */
        }
        if (rc == 0 && alterations && kind != RV_ROW_ANONYMOUS && eff == RV_DATE_NONE)
            abort(); /* an alteration always has a date */
    }
    rv_csv_close(csv);
    return 0;
}
