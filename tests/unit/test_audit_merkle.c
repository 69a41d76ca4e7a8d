/*
 * test_audit_merkle.c - the Merkle tree arithmetic of src/audit against outside references.
 *
 * Runs every RFC 9162 vector in tests/data/merkle-vectors (transparency-dev/merkle): each
 * happy path must verify and every corrupted proof must be rejected. Checks the tlog
 * stored-hash order against values computed by hand from Go's sumdb/tlog definitions, the
 * empty-tree and one-leaf hashes of RFC 6962, and that the verifiers reject every single-bit
 * flip of proofs generated from a real tree.
 */
#include "audit/audit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "merkle_ref.h"

#include <dirent.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char vec_root[4096];

/* Decodes a vector hash. Empty strings are refused (*ok false): a verifier cannot be called
 * with a missing hash. Short non-empty placeholders ("don't care 1") are zero-padded to 32
 * bytes, which keeps equal placeholders equal and different ones different. */
static void vec_hash(json_t *v, uint8_t out[32], bool *ok)
{
    const char *s = json_string_value(v);
    size_t len = 0;

    memset(out, 0, 32);
    if (s == NULL || s[0] == '\0' ||
        sodium_base642bin(out, 32, s, strlen(s), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len == 0)
        *ok = false;
}

static unsigned n_happy, n_bad;

/* Sizes go up to 2^64 - 1, past what jansson's integers hold: read them from the text. */
static uint64_t vec_u64(const char *path, const char *key)
{
    char buf[8192], pat[64];
    FILE *f = fopen(path, "r");
    size_t n;
    const char *p;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(buf, pat);
    assert_non_null(p);
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return strtoull(p, NULL, 10);
}

static void run_vector(const char *path)
{
    json_error_t err;
    json_t *o = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    json_t *pr;
    uint8_t(*proof)[32] = NULL;
    size_t np;
    bool ok = true, want_err;
    int rc;

    if (o == NULL)
        fail_msg("%s: %s", path, err.text);
    want_err = json_is_true(json_object_get(o, "wantErr"));
    pr = json_object_get(o, "proof");
    np = json_is_array(pr) ? json_array_size(pr) : 0;
    proof = calloc(np + 1, 32);
    assert_non_null(proof);
    for (size_t i = 0; i < np; i++)
        vec_hash(json_array_get(pr, i), proof[i], &ok);
    if (json_object_get(o, "leafIdx") != NULL) {
        uint8_t leaf[32], root[32];
        vec_hash(json_object_get(o, "leafHash"), leaf, &ok);
        vec_hash(json_object_get(o, "root"), root, &ok);
        rc = !ok ? RV_EPARSE
                 : rv_audit_verify_inclusion(vec_u64(path, "leafIdx"), vec_u64(path, "treeSize"),
                                             leaf, (const uint8_t(*)[32])proof, np, root);
    } else {
        uint8_t r1[32], r2[32];
        vec_hash(json_object_get(o, "root1"), r1, &ok);
        vec_hash(json_object_get(o, "root2"), r2, &ok);
        rc = !ok ? RV_EPARSE
                 : rv_audit_verify_consistency(vec_u64(path, "size1"), vec_u64(path, "size2"), r1,
                                               r2, (const uint8_t(*)[32])proof, np);
    }
    if (want_err && rc == 0)
        fail_msg("%s: a corrupted proof verified", path);
    if (!want_err && rc != 0)
        fail_msg("%s: a good proof was rejected", path);
    if (want_err)
        n_bad++;
    else
        n_happy++;
    free(proof);
    json_decref(o);
}

static void walk(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        assert_int_equal(stat(p, &st), 0);
        if (S_ISDIR(st.st_mode))
            walk(p);
        else if (strstr(e->d_name, ".json") != NULL)
            run_vector(p);
    }
    closedir(d);
}

static void test_rfc9162_vectors(void **state)
{
    (void)state;
    n_happy = n_bad = 0;
    walk(vec_root);
    /* The folder holds 12 happy paths and 184 corrupted proofs: all must have run. */
    assert_int_equal(n_happy, 12);
    assert_int_equal(n_bad, 184);
}

/* StoredHashIndex values from the definition in sumdb/tlog: level 0 hashes at
 * n + n/2 + n/4 + ..., level L's n'th right after level L+1... */
static void test_stored_hash_index(void **state)
{
    (void)state;
    /* Leaves 0..7 and their completed subtrees, in write order:
     * 0:L0 1:L1 2:N(0,1) 3:L2 4:L3 5:N(2,3) 6:N(0..3) 7:L4 8:L5 9:N(4,5) 10:L6 11:L7 ... */
    assert_int_equal(rv_audit_stored_hash_index(0, 0), 0);
    assert_int_equal(rv_audit_stored_hash_index(0, 1), 1);
    assert_int_equal(rv_audit_stored_hash_index(1, 0), 2);
    assert_int_equal(rv_audit_stored_hash_index(0, 2), 3);
    assert_int_equal(rv_audit_stored_hash_index(0, 3), 4);
    assert_int_equal(rv_audit_stored_hash_index(1, 1), 5);
    assert_int_equal(rv_audit_stored_hash_index(2, 0), 6);
    assert_int_equal(rv_audit_stored_hash_index(0, 4), 7);
    assert_int_equal(rv_audit_stored_hash_index(3, 0), 14);
    assert_int_equal(rv_audit_stored_hash_count(0), 0);
    assert_int_equal(rv_audit_stored_hash_count(1), 1);
    assert_int_equal(rv_audit_stored_hash_count(2), 3);
    assert_int_equal(rv_audit_stored_hash_count(3), 4);
    assert_int_equal(rv_audit_stored_hash_count(4), 7);
    assert_int_equal(rv_audit_stored_hash_count(8), 15);
    /* Split is the inverse, and every index is used exactly once. */
    for (uint64_t i = 0; i < 5000; i++) {
        unsigned level;
        uint64_t n;
        rv_audit_split_stored_hash_index(i, &level, &n);
        assert_int_equal(rv_audit_stored_hash_index(level, n), i);
    }
    for (uint64_t n = 1; n < 3000; n++)
        assert_int_equal(rv_audit_stored_hash_count(n),
                         rv_audit_stored_hash_count(n - 1) + 1 +
                             (uint64_t)__builtin_ctzll(n)); /* 1 + trailing ones of n-1 */
    /* About two hashes per entry at scale. */
    assert_true(rv_audit_stored_hash_count(10000000) < 20000000);
}

static void test_rfc6962_hashes(void **state)
{
    uint8_t h[32], want[32];
    size_t len;
    (void)state;

    /* RFC 6962 test vector: the empty leaf hashes to 6e340b9c... */
    rv_audit_leaf_hash((const uint8_t *)"", 0, h);
    assert_int_equal(
        sodium_hex2bin(want, 32, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                       64, NULL, &len, NULL),
        0);
    assert_memory_equal(h, want, 32);
    /* The first vector's happy path is made of exactly this leaf. */
    assert_int_equal(rv_audit_verify_inclusion(0, 1, h, NULL, 0, h), 0);
    /* A node is not a leaf: domain separation. */
    rv_audit_node_hash(h, h, want);
    assert_memory_not_equal(h, want, 32);
}

/* The accelerated SHA-256 against libsodium's, on every length up to 300 and every split
 * of the input into two parts, and on larger random inputs. */
static void test_sha256_matches_libsodium(void **state)
{
    uint8_t buf[5000], want[32], got[32];
    (void)state;

    randombytes_buf(buf, sizeof(buf));
    for (size_t n = 0; n <= 300; n++) {
        crypto_hash_sha256(want, buf, n);
        for (size_t cut = 0; cut <= n; cut++) {
            rv_audit_sha256_parts(buf, cut, buf + cut, n - cut, got);
            if (memcmp(got, want, 32) != 0)
                fail_msg("SHA-256 differs from libsodium at length %zu split %zu", n, cut);
        }
    }
    for (int i = 0; i < 200; i++) {
        size_t n = randombytes_uniform(sizeof(buf)), cut = randombytes_uniform((uint32_t)n + 1);
        crypto_hash_sha256(want, buf, n);
        rv_audit_sha256_parts(buf, cut, buf + cut, n - cut, got);
        assert_memory_equal(got, want, 32);
    }
    /* FIPS 180-2 "abc". */
    rv_audit_sha256_parts((const uint8_t *)"ab", 2, (const uint8_t *)"c", 1, got);
    assert_int_equal(
        sodium_hex2bin(want, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                       64, NULL, NULL, NULL),
        0);
    assert_memory_equal(got, want, 32);
}

/* Builds trees by hand (recursive MTH) and checks that flipping any bit of any proof
 * element, or using the neighbour's leaf, is rejected. */
static void mth(uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    rv_ref_mth((const uint8_t(*)[32])leaves, n, out);
}

static void test_bit_flips_rejected(void **state)
{
    uint8_t leaves[13][32], root[32], proof[8][32];
    (void)state;

    for (int i = 0; i < 13; i++) {
        uint8_t b = (uint8_t)i;
        rv_audit_leaf_hash(&b, 1, leaves[i]);
    }
    mth(leaves, 13, root);
    /* Inclusion proof of leaf 6 in 13, by hand: siblings 7, [4,6), [0,4), [8,13). */
    memcpy(proof[0], leaves[7], 32);
    mth(leaves + 4, 2, proof[1]);
    mth(leaves, 4, proof[2]);
    mth(leaves + 8, 5, proof[3]);
    assert_int_equal(
        rv_audit_verify_inclusion(6, 13, leaves[6], (const uint8_t(*)[32])proof, 4, root), 0);
    assert_int_not_equal(
        rv_audit_verify_inclusion(7, 13, leaves[6], (const uint8_t(*)[32])proof, 4, root), 0);
    assert_int_not_equal(
        rv_audit_verify_inclusion(6, 13, leaves[7], (const uint8_t(*)[32])proof, 4, root), 0);
    /* Sizes that change the shape of the path (13 and 14 share it: the size is bound by the
     * signed checkpoint, not by the proof). */
    assert_int_not_equal(
        rv_audit_verify_inclusion(6, 8, leaves[6], (const uint8_t(*)[32])proof, 4, root), 0);
    assert_int_not_equal(
        rv_audit_verify_inclusion(6, 17, leaves[6], (const uint8_t(*)[32])proof, 4, root), 0);
    assert_int_not_equal(
        rv_audit_verify_inclusion(6, 13, leaves[6], (const uint8_t(*)[32])proof, 3, root), 0);
    for (int e = 0; e < 4; e++)
        for (int bit = 0; bit < 256; bit++) {
            proof[e][bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_not_equal(
                rv_audit_verify_inclusion(6, 13, leaves[6], (const uint8_t(*)[32])proof, 4, root),
                0);
            proof[e][bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
}

static void test_proof_json(void **state)
{
    struct rv_audit_proof p, q;
    char *js = NULL;
    (void)state;

    memset(&p, 0, sizeof(p));
    p.index = 3;
    p.size2 = 9;
    p.nhashes = 2;
    p.leaf[0] = 1;
    p.root2[31] = 2;
    p.hashes[1][5] = 7;
    assert_int_equal(rv_audit_proof_to_json(&p, &js), 0);
    assert_non_null(strstr(js, "\"leaf_index\":3"));
    assert_int_equal(rv_audit_proof_from_json(js, strlen(js), &q), 0);
    assert_false(q.consistency);
    assert_int_equal(q.index, 3);
    assert_int_equal(q.size2, 9);
    assert_int_equal(q.nhashes, 2);
    assert_memory_equal(q.hashes, p.hashes, 64);
    free(js);
    /* Strictness: unknown key, short hash, negative size, duplicate key, not JSON. */
    static const char *bad[] = {
        "{\"leaf_index\":1,\"tree_size\":2,\"leaf_hash\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"root\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"proof\":[],\"x\":1}",
        "{\"leaf_index\":1,\"tree_size\":2,\"leaf_hash\":\"AAAA\","
        "\"root\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"proof\":[]}",
        "{\"leaf_index\":-1,\"tree_size\":2,\"leaf_hash\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"root\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"proof\":[]}",
        "{\"leaf_index\":1,\"leaf_index\":1,\"leaf_hash\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"root\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"proof\":[]}",
        "{\"size1\":1,\"size2\":2,\"root1\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
        "\"root2\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"proof\":[1]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rv_audit_proof_from_json(bad[i], strlen(bad[i]), &q), RV_EPARSE);
}

int main(void)
{
    const char *data = getenv("RV_TEST_DATA");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9162_vectors),    cmocka_unit_test(test_stored_hash_index),
        cmocka_unit_test(test_rfc6962_hashes),     cmocka_unit_test(test_sha256_matches_libsodium),
        cmocka_unit_test(test_bit_flips_rejected), cmocka_unit_test(test_proof_json),
    };

    if (sodium_init() < 0)
        return 1;
    snprintf(vec_root, sizeof(vec_root), "%s/merkle-vectors", data != NULL ? data : "tests/data");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
