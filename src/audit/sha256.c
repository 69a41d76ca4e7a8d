/*
 * sha256.c - SHA-256 for the audit log's Merkle tree, using the CPU's SHA extensions when
 * it has them and libsodium's crypto_hash_sha256 otherwise.
 *
 * Verifying a log recomputes two SHA-256 hashes per entry; libsodium's portable code does
 * about two million a second, which puts a full check of a ten-million-entry log well past
 * ten seconds. The x86 SHA-NI instructions are several times faster. The hash is public
 * data (no key, no secret input), so there is no timing concern, and the unit tests check
 * this code against libsodium on every length from 0 to 300 bytes and on random inputs.
 */
#include "audit/audit.h"

#include <sodium.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define RV_HAVE_SHANI 1
#endif

#ifdef RV_HAVE_SHANI
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* Compresses nblocks 64-byte blocks into state (the usual a..h words). */
__attribute__((target("sha,sse4.1,ssse3"))) static void
blocks_shani(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i s0, s1, tmp, msg, x[4], abef, cdgh;

    tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    s1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);  /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);    /* EFGH */
    s0 = _mm_alignr_epi8(tmp, s1, 8);    /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0); /* CDGH */
    while (nblocks-- > 0) {
        abef = s0;
        cdgh = s1;
        for (int j = 0; j < 16; j++) {
            __m128i w;
            if (j < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * j)), mask);
            } else {
                /* W[t..t+3] from W[t-16..t-1]: sigma0 terms, W[t-7..t-4], sigma1 terms. */
                w = _mm_sha256msg1_epu32(x[j & 3], x[(j + 1) & 3]);
                w = _mm_add_epi32(w, _mm_alignr_epi8(x[(j + 3) & 3], x[(j + 2) & 3], 4));
                w = _mm_sha256msg2_epu32(w, x[(j + 3) & 3]);
            }
            x[j & 3] = w;
            msg = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K[4 * j]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);    /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0); /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}

static int have_shani(void)
{
    static int cached = -1;

    if (cached < 0) {
        unsigned a, b, c, d;
        /* Leaf 1: ECX bit 9 SSSE3, bit 19 SSE4.1. Leaf 7: EBX bit 29 SHA. */
        cached = __get_cpuid(1, &a, &b, &c, &d) && (c >> 9 & 1) && (c >> 19 & 1) &&
                 __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 29 & 1);
    }
    return cached;
}
#endif

#ifdef RV_HAVE_SHANI
struct ctx {
    uint32_t st[8];
    uint8_t buf[64];
    size_t buflen;
    uint64_t total;
};

static void ctx_update(struct ctx *c, const uint8_t *p, size_t len)
{
    if (len == 0)
        return;
    c->total += len;
    if (c->buflen > 0) {
        size_t take = 64 - c->buflen < len ? 64 - c->buflen : len;
        memcpy(c->buf + c->buflen, p, take);
        c->buflen += take;
        p += take;
        len -= take;
        if (c->buflen < 64)
            return;
        blocks_shani(c->st, c->buf, 1);
        c->buflen = 0;
    }
    if (len >= 64) {
        blocks_shani(c->st, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    if (len > 0)
        memcpy(c->buf, p, len);
    c->buflen = len;
}

static void ctx_final(struct ctx *c, uint8_t out[32])
{
    uint8_t pad[128] = {0};
    size_t n = c->buflen < 56 ? 64 : 128;
    uint64_t bits = c->total * 8;

    memcpy(pad, c->buf, c->buflen);
    pad[c->buflen] = 0x80;
    for (int i = 0; i < 8; i++)
        pad[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks_shani(c->st, pad, n / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->st[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->st[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->st[i];
    }
}
#endif

void rv_audit_sha256_parts(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                           uint8_t out[32])
{
#ifdef RV_HAVE_SHANI
    if (have_shani()) {
        struct ctx c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                         0x1f83d9ab, 0x5be0cd19},
                        {0},
                        0,
                        0};
        ctx_update(&c, a, alen);
        ctx_update(&c, b, blen);
        ctx_final(&c, out);
        return;
    }
#endif
    {
        crypto_hash_sha256_state s;
        crypto_hash_sha256_init(&s);
        crypto_hash_sha256_update(&s, a, alen);
        crypto_hash_sha256_update(&s, b, blen);
        crypto_hash_sha256_final(&s, out);
    }
}
