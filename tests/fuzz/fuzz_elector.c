/*
 * fuzz_elector.c - libFuzzer target for the elector wire form, rv_elector_decode.
 *
 * The bytes vault/ unseals are parsed here, so any input must be refused or decode to a
 * record that re-encodes to exactly the same bytes (the format is canonical). The first
 * byte of the input also drives the elector-number and marker parsers over the rest.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_elector e;
    uint8_t re[RV_ELECTOR_WIRE_MAX];

    if (rv_elector_decode(data, size, &e) == 0) {
        long n = rv_elector_encode(&e, re, sizeof(re));
        if (n < 0 || (size_t)n != size || memcmp(re, data, size) != 0)
            abort();
    }
    if (size > 0) {
        struct rv_elector_number num, again;
        struct rv_markers m;
        char buf[64];
        const char *s = (const char *)data + 1;
        if (rv_elector_number_parse(s, size - 1, &num) == 0) {
            rv_elector_number_format(&num, buf, sizeof(buf));
            if (rv_elector_number_parse(buf, strlen(buf), &again) != 0 ||
                strcmp(again.prefix, num.prefix) != 0 || again.number != num.number ||
                again.suffix != num.suffix)
                abort();
        }
        if (rv_markers_parse(s, size - 1, &m) == 0)
            rv_markers_format(&m, buf, (size_t)data[0] % sizeof(buf));
    }
    return 0;
}
