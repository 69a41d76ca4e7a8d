/*
 * merkle_ref.h - an independent reference for the audit tests: the Merkle tree hash of
 * RFC 6962 section 2.1 computed by its recursive definition (MTH), straight from leaf
 * hashes, so the log's stored-hash arithmetic is checked against the plain rule.
 * Header-only (static inline), because each test is built from one source file.
 */
#ifndef RV_MERKLE_REF_H
#define RV_MERKLE_REF_H

#include "audit/audit.h"

#include <stdint.h>
#include <string.h>

/* MTH over n >= 1 leaf hashes: split at the largest power of two below n. */
static inline void rv_ref_mth(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    uint64_t k = 1;
    uint8_t l[32], r[32];

    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    rv_ref_mth(leaves, k, l);
    rv_ref_mth(leaves + k, n - k, r);
    rv_audit_node_hash(l, r, out);
}

#endif /* RV_MERKLE_REF_H */
