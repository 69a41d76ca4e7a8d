/*
 * test_audit_note.c - signed checkpoints, verifier keys and the entry encoding.
 *
 * Known answers from outside: the PeterNeumann key and note of golang.org/x/mod/sumdb/note's
 * own tests must come out byte for byte, and that package's malformed notes must be refused.
 * Golden files (tests/data/audit/) pin our own formats: the checkpoint body, the signed note
 * and the verifier key for a fixed seed and a fixed tree, and the encoding of fixed entries.
 * Set RV_AUDIT_REGEN=1 to rewrite the golden files after a deliberate format change.
 * Attacks: forged, re-keyed, truncated and padded notes, and non-canonical entries.
 */
#include "audit/audit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char data_dir[4096];

/* The reference key and note of golang.org/x/mod/sumdb/note (note_test.go). */
#define GO_VKEY     "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define GO_TEXT                                                                                    \
    "If you think cryptography is the answer to your problem,\n"                                   \
    "then you don't know what your problem is.\n"
#define GO_SIG                                                                                     \
    "\xe2\x80\x94 PeterNeumann "                                                                   \
    "x08go/ZJkuBS9UG/"                                                                             \
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

static void go_key(uint8_t *sk, struct rv_audit_vkey *k)
{
    uint8_t raw[33];
    size_t len = 0;

    assert_int_equal(sodium_base642bin(raw, sizeof(raw), GO_SKEY_B64, strlen(GO_SKEY_B64), NULL,
                                       &len, NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, 33);
    assert_int_equal(raw[0], 1);
    assert_int_equal(rv_audit_keypair("PeterNeumann", raw + 1, sk, k), 0);
}

static void test_go_known_answer(void **state)
{
    uint8_t sk[64];
    struct rv_audit_vkey k, parsed;
    char vkey[RV_AUDIT_VKEY_MAX], note[1024];
    size_t textlen = 0;
    long n;
    (void)state;

    go_key(sk, &k);
    rv_audit_vkey_format(&k, vkey);
    assert_string_equal(vkey, GO_VKEY);
    assert_int_equal(rv_audit_vkey_parse(GO_VKEY, strlen(GO_VKEY), &parsed), 0);
    assert_int_equal(parsed.key_id, 0xc74f20a3u);
    assert_memory_equal(parsed.pub, k.pub, 32);
    n = rv_audit_note_sign(GO_TEXT, strlen(GO_TEXT), &k, sk, note, sizeof(note));
    assert_true(n > 0);
    assert_string_equal(note, GO_TEXT "\n" GO_SIG);
    assert_int_equal(rv_audit_note_open(note, (size_t)n, &parsed, &textlen), 0);
    assert_int_equal(textlen, strlen(GO_TEXT));
    sodium_memzero(sk, sizeof(sk));
}

static void test_vkey_manglings_refused(void **state)
{
    struct rv_audit_vkey k;
    char b[128];
    size_t n = strlen(GO_VKEY);
    (void)state;

    /* As in note_test.go: every proper substring, and every single-character change that
     * Go refuses, is refused. */
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i + 1; j <= n; j++) {
            if (i == 0 && j == n)
                continue;
            memcpy(b, GO_VKEY + i, j - i);
            assert_int_not_equal(rv_audit_vkey_parse(b, j - i, &k), 0);
        }
    strcpy(b, GO_VKEY);
    b[13] = 'd'; /* key id */
    assert_int_not_equal(rv_audit_vkey_parse(b, n, &k), 0);
    strcpy(b, GO_VKEY);
    b[0] = 'p'; /* name (the key id covers it) */
    assert_int_not_equal(rv_audit_vkey_parse(b, n, &k), 0);
    strcpy(b, GO_VKEY);
    b[23] = 'A'; /* algorithm byte */
    assert_int_not_equal(rv_audit_vkey_parse(b, n, &k), 0);
}

static void test_malformed_notes_refused(void **state)
{
    struct rv_audit_vkey k;
    size_t tl;
    char big[16384];
    static const char *bad[] = {
        "",
        "\n",
        GO_TEXT,                  /* no signatures */
        GO_TEXT GO_SIG,           /* no blank line */
        GO_TEXT "\n",             /* empty signature block */
        GO_TEXT "\n" GO_SIG "\n", /* blank line after the signatures */
        GO_TEXT "\n" GO_SIG "x",  /* no final newline */
        GO_TEXT "\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
                "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n", /* hyphen, not em dash */
        GO_TEXT "\n\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIu"
                "GUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnA=\n", /* bad base64 */
        GO_TEXT "\n\xe2\x80\x94 Peter Neumann x08go/ZJ\n",        /* space in name */
        GO_TEXT "\n\xe2\x80\x94 PeterNeumann AAAA\n",             /* signature too short */
        "If you \x01think\n\n" GO_SIG,                            /* control character */
        "If you \xc0\xafthink\n\n" GO_SIG,                        /* overlong UTF-8 */
        "If you \xed\xa0\x80think\n\n" GO_SIG,                    /* surrogate */
        "If you think\r\n\n" GO_SIG,                              /* carriage return */
    };
    (void)state;

    assert_int_equal(rv_audit_vkey_parse(GO_VKEY, strlen(GO_VKEY), &k), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_not_equal(rv_audit_note_open(bad[i], strlen(bad[i]), &k, &tl), 0);
    /* 101 signatures by unknown keys are too many, even with a good one. */
    strcpy(big, GO_TEXT "\n" GO_SIG);
    for (int i = 0; i < 100; i++)
        strcat(big, "\xe2\x80\x94 other AAAAAAAA\n");
    assert_int_equal(rv_audit_note_open(big, strlen(big), &k, &tl), RV_EPARSE);
    /* Unknown signers are ignored while there are at most 100 signatures. */
    strcpy(big, GO_TEXT "\n\xe2\x80\x94 other AAAAAAAA\n" GO_SIG);
    assert_int_equal(rv_audit_note_open(big, strlen(big), &k, &tl), 0);
}

static void test_forgeries_refused(void **state)
{
    struct rv_audit_vkey k, other;
    uint8_t sk[64], osk[64], seed[32];
    char note[1024], forged[1024];
    size_t tl;
    long n;
    (void)state;

    assert_int_equal(rv_audit_vkey_parse(GO_VKEY, strlen(GO_VKEY), &k), 0);
    /* Text changed under the signature. */
    strcpy(forged, GO_TEXT "\n" GO_SIG);
    forged[3] = 'U';
    assert_int_equal(rv_audit_note_open(forged, strlen(forged), &k, &tl), RV_EKEY);
    /* Every single-bit flip anywhere in the note is refused. */
    strcpy(note, GO_TEXT "\n" GO_SIG);
    n = (long)strlen(note);
    for (long i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(forged, note, (size_t)n + 1);
            forged[i] = (char)(forged[i] ^ (1 << bit));
            if (forged[i] == '\0')
                continue;
            assert_int_not_equal(rv_audit_note_open(forged, (size_t)n, &k, &tl), 0);
        }
    /* A key with the same name but another secret: its notes are not ours. */
    memset(seed, 7, sizeof(seed));
    assert_int_equal(rv_audit_keypair("PeterNeumann", seed, osk, &other), 0);
    n = rv_audit_note_sign(GO_TEXT, strlen(GO_TEXT), &other, osk, note, sizeof(note));
    assert_true(n > 0);
    assert_int_equal(rv_audit_note_open(note, (size_t)n, &k, &tl), RV_EKEY);
    /* ... even when the forger claims our key id. */
    go_key(sk, &k);
    other.key_id = k.key_id;
    n = rv_audit_note_sign(GO_TEXT, strlen(GO_TEXT), &other, osk, note, sizeof(note));
    assert_int_equal(rv_audit_note_open(note, (size_t)n, &k, &tl), RV_EKEY);
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(osk, sizeof(osk));
}

static void test_checkpoint_body_strict(void **state)
{
    struct rv_audit_checkpoint c;
    static const char *bad[] = {
        "",
        "origin\n",
        "origin\n5\n",
        "origin\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", /* leading zero */
        "origin\n+5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",    /* no padding */
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n",   /* non-canonical */
        "origin\n5\nAAAA\n",                                           /* short hash */
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", /* empty extension */
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",     /* no newline */
        "\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",         /* empty origin */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rv_audit_checkpoint_parse(bad[i], strlen(bad[i]), &c), RV_EPARSE);
    const char *ok = "origin\n18446744073709551615\n"
                     "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextension line\n";
    assert_int_equal(rv_audit_checkpoint_parse(ok, strlen(ok), &c), 0);
    assert_string_equal(c.origin, "origin");
    assert_true(c.size == UINT64_MAX);
}

/* ---- golden files --------------------------------------------------------------------- */

static bool regen(void)
{
    const char *r = getenv("RV_AUDIT_REGEN");
    return r != NULL && r[0] == '1';
}

static void golden(const char *name, const char *got, size_t len)
{
    char path[4200], *want;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/audit/%s", data_dir, name);
    if (regen()) {
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(got, 1, len, f), len);
        fclose(f);
        return;
    }
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("golden file %s is missing (RV_AUDIT_REGEN=1 makes it)", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    want = malloc((size_t)n + 1);
    assert_non_null(want);
    assert_int_equal(fread(want, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    if ((size_t)n != len || memcmp(want, got, len) != 0)
        fail_msg("%s differs from the golden file", name);
    free(want);
}

/* The fixed tree: five entries with fixed times and subjects. */
static size_t fixed_entry(int i, uint8_t *buf)
{
    static const char *actions[] = {"ingest", "check", "check", "audit.verify", "export"};
    static const char *roles[] = {"registrar", "checker", "checker", "auditor", "exporter"};
    uint8_t subjects[2][32];
    struct rv_audit_entry e = {0};
    char params[64];
    size_t len = 0;

    memset(subjects[0], 0xa0 + i, 32);
    memset(subjects[1], 0x50 + i, 32);
    snprintf(params, sizeof(params), "{\"n\":%d}", i);
    e.time_ms = 1700000000000 + i * 1000;
    e.principal = i == 0 ? "registrar1" : "treasurer";
    e.role = roles[i];
    e.action = actions[i];
    e.params = params;
    e.outcome = i == 2 ? "not-found" : "ok";
    e.client = i % 2 ? "192.0.2.7" : "local";
    e.subjects = (const uint8_t(*)[32])subjects;
    e.nsubjects = (size_t)(i % 3);
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), 0);
    return len;
}

static void test_golden_checkpoint(void **state)
{
    uint8_t seed[32], sk[64], leaves[5][32], l01[32], l23[32], l03[32];
    uint8_t *buf = malloc(RV_AUDIT_ENTRY_MAX);
    struct rv_audit_vkey k, parsed;
    struct rv_audit_checkpoint c = {0}, back;
    char body[512], note[1024], vkey[RV_AUDIT_VKEY_MAX + 1], hex[2 * 600 + 2];
    char entries[8192] = "";
    long bl, nl;
    size_t tl;
    (void)state;

    assert_non_null(buf);
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    assert_int_equal(rv_audit_keypair("regvault.example/audit", seed, sk, &k), 0);
    for (int i = 0; i < 5; i++) {
        size_t len = fixed_entry(i, buf);
        rv_audit_leaf_hash(buf, len, leaves[i]);
        sodium_bin2hex(hex, sizeof(hex), buf, len);
        strcat(entries, hex);
        strcat(entries, "\n");
    }
    golden("entries.hex", entries, strlen(entries));
    /* MTH of five leaves: ((0,1),(2,3)),4. */
    rv_audit_node_hash(leaves[0], leaves[1], l01);
    rv_audit_node_hash(leaves[2], leaves[3], l23);
    rv_audit_node_hash(l01, l23, l03);
    strcpy(c.origin, "regvault.example/audit");
    c.size = 5;
    rv_audit_node_hash(l03, leaves[4], c.root);
    bl = rv_audit_checkpoint_body(&c, body, sizeof(body));
    assert_true(bl > 0);
    golden("checkpoint-body.txt", body, (size_t)bl);
    nl = rv_audit_note_sign(body, (size_t)bl, &k, sk, note, sizeof(note));
    assert_true(nl > 0);
    golden("checkpoint.note", note, (size_t)nl);
    rv_audit_vkey_format(&k, vkey);
    strcat(vkey, "\n");
    golden("verifier-key.txt", vkey, strlen(vkey));
    /* And it all reads back. */
    assert_int_equal(rv_audit_vkey_parse(vkey, strlen(vkey) - 1, &parsed), 0);
    assert_int_equal(rv_audit_checkpoint_open(note, (size_t)nl, &parsed, &back), 0);
    assert_int_equal(back.size, 5);
    assert_memory_equal(back.root, c.root, 32);
    assert_int_equal(rv_audit_note_open(note, (size_t)nl, &parsed, &tl), 0);
    assert_int_equal(tl, (size_t)bl);
    /* A checkpoint for another origin, signed by a key of that name, is not ours. */
    sodium_memzero(sk, sizeof(sk));
    free(buf);
}

static void test_entry_roundtrip_and_strictness(void **state)
{
    uint8_t *buf = malloc(RV_AUDIT_ENTRY_MAX), subj[3][32];
    struct rv_audit_entry e = {1234, "alice", "checker", "check", "", "ok", "local", NULL, 0};
    struct rv_audit_record rec;
    size_t len = 0;
    (void)state;

    assert_non_null(buf);
    memset(subj, 9, sizeof(subj));
    e.subjects = (const uint8_t(*)[32])subj;
    e.nsubjects = 3;
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), 0);
    assert_int_equal(rv_audit_entry_decode(buf, len, &rec), 0);
    assert_string_equal(rec.e.principal, "alice");
    assert_string_equal(rec.e.params, "");
    assert_int_equal(rec.e.nsubjects, 3);
    assert_int_equal(rec.e.time_ms, 1234);
    rv_audit_record_free(&rec);
    /* Every truncation and every extension is refused. */
    for (size_t i = 0; i < len; i++)
        assert_int_not_equal(rv_audit_entry_check(buf, i), 0);
    buf[len] = 0;
    assert_int_not_equal(rv_audit_entry_check(buf, len + 1), 0);
    /* Unknown version. */
    buf[0] = 2;
    assert_int_equal(rv_audit_entry_decode(buf, len, &rec), RV_EVERSION);
    /* Control characters and invalid UTF-8 cannot get in (log injection). */
    e.params = "a\nb";
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), RV_EINVAL);
    e.params = "\x1b[2J";
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), RV_EINVAL);
    e.params = "\xff";
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), RV_EINVAL);
    e.params = "caf\xc3\xa9";
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), 0);
    e.principal = NULL;
    assert_int_equal(rv_audit_entry_encode(&e, buf, RV_AUDIT_ENTRY_MAX, &len), RV_EINVAL);
    free(buf);
}

static void test_subject_id(void **state)
{
    uint8_t key[32], key2[32], a[32], b[32];
    struct rv_name_key n1, n2;
    struct rv_postcode p;
    (void)state;

    memset(key, 1, 32);
    memset(key2, 2, 32);
    memset(&n1, 0, sizeof(n1));
    strcpy(n1.surname, "smithjones");
    strcpy(n1.first, "john");
    memset(&p, 0, sizeof(p));
    strcpy(p.canon, "SW1A 1AA");
    p.out_len = 4;
    n2 = n1;
    assert_int_equal(rv_audit_subject_id(key, &n1, &p, a), 0);
    assert_int_equal(rv_audit_subject_id(key, &n2, &p, b), 0);
    assert_memory_equal(a, b, 32);
    /* Another key gives an unrelated id. */
    assert_int_equal(rv_audit_subject_id(key2, &n1, &p, b), 0);
    assert_memory_not_equal(a, b, 32);
    /* Length prefixes: moving letters between fields changes the id. */
    strcpy(n2.surname, "smithjonesj");
    strcpy(n2.first, "ohn");
    assert_int_equal(rv_audit_subject_id(key, &n2, &p, b), 0);
    assert_memory_not_equal(a, b, 32);
    /* Only the folded joined surname, first forename and postcode count. */
    n2 = n1;
    strcpy(n2.forenames, "john paul");
    assert_int_equal(rv_audit_subject_id(key, &n2, &p, b), 0);
    assert_memory_equal(a, b, 32);
}

int main(void)
{
    const char *data = getenv("RV_TEST_DATA");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_known_answer),
        cmocka_unit_test(test_vkey_manglings_refused),
        cmocka_unit_test(test_malformed_notes_refused),
        cmocka_unit_test(test_forgeries_refused),
        cmocka_unit_test(test_checkpoint_body_strict),
        cmocka_unit_test(test_golden_checkpoint),
        cmocka_unit_test(test_entry_roundtrip_and_strictness),
        cmocka_unit_test(test_subject_id),
    };

    if (sodium_init() < 0)
        return 1;
    snprintf(data_dir, sizeof(data_dir), "%s", data != NULL ? data : "tests/data");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
