/*
 * fuzz_principal_record.c - the decoder of principal records (src/policy/principal.c).
 *
 * A record is authenticated (XChaCha20-Poly1305, keyed by the vault) before it is decoded,
 * so only a bug or a stolen key lets an attacker choose these bytes; the decoder must still
 * never read out of bounds, and any bytes must be refused or decode to a record that
 * encodes back to exactly the same bytes (the encoding is canonical).
 */
#include "policy/inner.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = rv_principal_record_roundtrip(data, size);

    if (rc != 0 && rc != RV_ECORRUPT)
        abort();
    return 0;
}
