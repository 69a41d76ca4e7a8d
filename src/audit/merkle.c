/*
 * merkle.c - the Merkle tree arithmetic of the audit log: RFC 6962 hashing, the stored-hash
 * order of Go's sumdb tlog, and the RFC 9162 section 2.1 proof verifiers.
 *
 * Nothing here touches a file. The log (log.c) writes hashes in the order
 * rv_audit_stored_hash_index gives, so that appending leaf n writes 1 + (trailing ones of n)
 * hashes and any complete subtree's hash is one read. The verifiers are transcriptions of
 * RFC 9162 2.1.3.2 and 2.1.4.2, and are checked against the transparency-dev vectors.
 */
#include "audit/audit.h"

#include <sodium.h>
#include <string.h>

void rv_audit_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32])
{
    static const uint8_t zero = 0x00;

    rv_audit_sha256_parts(&zero, 1, data, len, out);
}

void rv_audit_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
    uint8_t buf[65];

    buf[0] = 0x01;
    memcpy(buf + 1, left, 32);
    memcpy(buf + 33, right, 32);
    rv_audit_sha256_parts(buf, sizeof(buf), NULL, 0, out);
}

uint64_t rv_audit_stored_hash_index(unsigned level, uint64_t n)
{
    uint64_t i = 0;

    /* Level L's n'th hash is written right after level L+1's 2n+1'th hash. */
    for (unsigned l = level; l > 0; l--)
        n = 2 * n + 1;
    /* Level 0's n'th hash is written at n + n/2 + n/4 + ... */
    for (; n > 0; n >>= 1)
        i += n;
    return i + level;
}

uint64_t rv_audit_stored_hash_count(uint64_t n)
{
    uint64_t num;

    if (n == 0)
        return 0;
    num = rv_audit_stored_hash_index(0, n - 1) + 1;
    for (uint64_t i = n - 1; (i & 1) != 0; i >>= 1)
        num++;
    return num;
}

void rv_audit_split_stored_hash_index(uint64_t index, unsigned *level, uint64_t *n)
{
    uint64_t k = index / 2;
    uint64_t at = rv_audit_stored_hash_index(0, k);

    /* Each record k adds 1 + trailing zeros of (k+1) hashes. */
    for (;;) {
        uint64_t x = at + 1 + (uint64_t)__builtin_ctzll(k + 1);
        if (x > index)
            break;
        k++;
        at = x;
    }
    *level = (unsigned)(index - at);
    *n = k >> *level;
}

static bool hash_eq(const uint8_t a[32], const uint8_t b[32])
{
    return sodium_memcmp(a, b, 32) == 0;
}

int rv_audit_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
                              const uint8_t (*proof)[32], size_t nproof, const uint8_t root[32])
{
    uint64_t fn, sn;
    uint8_t r[32];

    if (index >= size || (nproof > 0 && proof == NULL))
        return RV_ECORRUPT;
    fn = index;
    sn = size - 1;
    memcpy(r, leaf, 32);
    for (size_t i = 0; i < nproof; i++) {
        if (sn == 0)
            return RV_ECORRUPT;
        if ((fn & 1) != 0 || fn == sn) {
            rv_audit_node_hash(proof[i], r, r);
            if ((fn & 1) == 0)
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            rv_audit_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || !hash_eq(r, root))
        return RV_ECORRUPT;
    return 0;
}

int rv_audit_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[32],
                                const uint8_t root2[32], const uint8_t (*proof)[32], size_t nproof)
{
    uint64_t fn, sn;
    uint8_t fr[32], sr[32];
    size_t start;

    if (size1 == 0 || size2 < size1)
        return RV_ECORRUPT;
    if (size1 == size2)
        return nproof == 0 && hash_eq(root1, root2) ? 0 : RV_ECORRUPT;
    if (nproof == 0 || proof == NULL)
        return RV_ECORRUPT;
    fn = size1 - 1;
    sn = size2 - 1;
    /* A power-of-two first tree is itself the first node of the path. */
    if ((size1 & (size1 - 1)) == 0) {
        memcpy(fr, root1, 32);
        start = 0;
    } else {
        memcpy(fr, proof[0], 32);
        start = 1;
    }
    memcpy(sr, fr, 32);
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    for (size_t i = start; i < nproof; i++) {
        if (sn == 0)
            return RV_ECORRUPT;
        if ((fn & 1) != 0 || fn == sn) {
            rv_audit_node_hash(proof[i], fr, fr);
            rv_audit_node_hash(proof[i], sr, sr);
            if ((fn & 1) == 0)
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            rv_audit_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || !hash_eq(fr, root1) || !hash_eq(sr, root2))
        return RV_ECORRUPT;
    return 0;
}

int rv_audit_proof_verify(const struct rv_audit_proof *p)
{
    if (p->nhashes > RV_AUDIT_PROOF_MAX)
        return RV_ECORRUPT;
    if (p->consistency)
        return rv_audit_verify_consistency(p->size1, p->size2, p->root1, p->root2, p->hashes,
                                           p->nhashes);
    return rv_audit_verify_inclusion(p->index, p->size2, p->leaf, p->hashes, p->nhashes, p->root2);
}
