/*
 * fuzz_postcode.c - libFuzzer target for rv_postcode_parse and its accessors.
 *
 * Any byte string must either be refused or give a canonical postcode that parses to
 * itself and whose accessors stay inside their buffers.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_postcode pc, again;
    char buf[9];

    if (rv_postcode_parse((const char *)data, size, &pc) != 0)
        return 0;
    if (strlen(pc.canon) != (size_t)pc.out_len + 4 || pc.canon[pc.out_len] != ' ')
        abort();
    if (rv_postcode_parse(pc.canon, strlen(pc.canon), &again) != 0 ||
        strcmp(pc.canon, again.canon) != 0)
        abort();
    rv_postcode_area(&pc, buf);
    rv_postcode_district(&pc, buf);
    rv_postcode_outward(&pc, buf);
    if (strlen(rv_postcode_sector(&pc, buf)) != (size_t)pc.out_len + 2)
        abort();
    return 0;
}
