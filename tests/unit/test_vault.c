/*
 * test_vault.c - attacks on the vault: wrong secrets, damaged headers, flipped and swapped
 * record bytes; and the temporal model: editions, alterations, unchanged entries stored
 * once, versions valid on a given date; readers, check tags, surname parts and district
 * lists.
 */
#include "store/store.h"
#include "vault/vault.h"
#include "vault/vault_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "testutil.h"
#include "testvault.h"
#include <sodium.h>

static char dir[256];
static uint8_t keyfile[32], otherkey[32];

static struct rv_vault_secret key_secret(const uint8_t *k)
{
    struct rv_vault_secret s = {NULL, 0, k};
    return s;
}

static int setup(void **state)
{
    (void)state;
    return rv_test_bare_vault_create(dir, sizeof(dir), "rv-test-vault", keyfile, 1000000);
}

static int teardown(void **state)
{
    (void)state;
    rv_test_rmtree(dir);
    return 0;
}

static struct rv_vault *open_vault(void)
{
    return rv_test_bare_vault_open(dir, keyfile);
}

static void mk(struct rv_elector *e, const char *area, const char *prefix, unsigned number,
               const char *name, const char *postcode, const char *addr1, const char *markers)
{
    char num[16];
    memset(e, 0, sizeof(*e));
    snprintf(e->area, sizeof(e->area), "%s", area);
    snprintf(num, sizeof(num), "%u", number);
    assert_int_equal(rv_elector_number_from_parts(prefix, num, "", &e->number), 0);
    assert_int_equal(rv_markers_parse(markers, strlen(markers), &e->markers), 0);
    e->attainment = RV_DATE_NONE;
    assert_int_equal(rv_name_parse(name, strlen(name), &e->name), 0);
    if (postcode[0] != '\0')
        assert_int_equal(rv_postcode_parse(postcode, strlen(postcode), &e->postcode), 0);
    snprintf(e->address[0], sizeof(e->address[0]), "%s", addr1);
    snprintf(e->address[1], sizeof(e->address[1]), "Leeds");
}

static rv_date D(int y, int m, int d)
{
    return rv_date_from_ymd(y, m, d);
}

/* Applies entries as one edition. */
static void edition(struct rv_vault *v, rv_date date, const struct rv_elector *es, size_t n,
                    uint8_t tag, struct rv_file_stats *st)
{
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = malloc(sizeof(*p));
    const struct rv_vault_sealer *sealer = NULL;
    uint64_t first = 0;
    uint8_t hash[32];
    enum rv_apply a;

    memset(hash, tag, sizeof(hash));
    assert_non_null(p);
    assert_int_equal(rv_vault_batch_begin(v, es[0].area, RV_FILE_EDITION, date, hash, &b), 0);
    assert_int_equal(rv_vault_batch_presealing(b, n, &sealer, &first), 0);
    assert_true(sealer->bucket > 0 && sealer->bucket < 100);
    assert_int_equal(sealer->from, date);
    for (size_t i = 0; i < n; i++) {
        /* Half sealed by the worker path, half by the batch. */
        assert_int_equal(rv_vault_prepare(v, &es[i], i % 2 ? sealer : NULL, first + i, p), 0);
        assert_int_equal(p->sealed_len > 0, i % 2);
        assert_int_equal(rv_vault_batch_edition_row(b, p, &a), 0);
        assert_true(a == RV_APPLIED_NEW || a == RV_APPLIED_SAME);
    }
    rv_vault_batch_count(b, n, 0, 0);
    assert_int_equal(rv_vault_batch_commit(b, st), 0);
    free(p);
}

static void alteration(struct rv_vault *v, rv_date ed, const struct rv_elector *e, bool del,
                       rv_date from, uint8_t tag, enum rv_apply want)
{
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = malloc(sizeof(*p));
    uint8_t hash[32];
    enum rv_apply a;

    memset(hash, tag, sizeof(hash));
    assert_int_equal(rv_vault_batch_begin(v, e->area, RV_FILE_ALTERATIONS, ed, hash, &b), 0);
    assert_int_equal(rv_vault_prepare(v, e, NULL, 0, p), 0);
    assert_int_equal(rv_vault_batch_alteration_row(b, p, del, from, &a), 0);
    assert_int_equal(a, want);
    rv_vault_batch_count(b, 1, 0, 0);
    assert_int_equal(rv_vault_batch_commit(b, NULL), 0);
    free(p);
}

static bool on_register(struct rv_vault *v, const char *area, const struct rv_elector_number *n,
                        const struct rv_elector *probe, rv_date d)
{
    /* Through the blind index, as the matcher does: any version of this elector at d. */
    struct rv_name_key nk;
    struct rv_index_query q = {0};
    uint64_t ids[64];
    size_t cnt;
    bool found = false;

    (void)area;
    assert_int_equal(rv_name_key(&probe->name, &nk), 0);
    q.surname = nk.surname;
    q.postcode = probe->postcode.canon;
    assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 64, &cnt), 0);
    assert_true(cnt <= 64);
    for (size_t i = 0; i < cnt; i++) {
        struct rv_version ver;
        assert_int_equal(rv_vault_fetch(v, ids[i], &ver), 0);
        if (strcmp(ver.e.number.prefix, n->prefix) == 0 && ver.e.number.number == n->number &&
            rv_version_valid_at(ver.from, ver.to, d))
            found = true;
        sodium_memzero(&ver, sizeof(ver));
    }
    return found;
}

static void test_create_refuses_existing(void **state)
{
    struct rv_vault_secret s = key_secret(keyfile);
    struct stat st1, st2;
    char path[300];

    (void)state;
    snprintf(path, sizeof(path), "%s/vault.hdr", dir);
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(rv_vault_create(dir, &s, 0), RV_EEXIST);
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_mtime, st2.st_mtime);
    assert_int_equal(st1.st_ino, st2.st_ino);
}

static void test_wrong_key_and_damaged_header(void **state)
{
    struct rv_vault *v = NULL;
    struct rv_vault_secret good = key_secret(keyfile), bad = key_secret(otherkey);
    struct rv_vault_secret pass = {"a passphrase", 12, NULL};
    char path[300];
    uint8_t hdr[176], copy[176];
    FILE *f;

    (void)state;
    assert_int_equal(rv_vault_open(dir, &bad, &v), RV_EKEY);
    assert_null(v);
    /* The other kind of secret is also a wrong key. */
    assert_int_equal(rv_vault_open(dir, &pass, &v), RV_EKEY);

    snprintf(path, sizeof(path), "%s/vault.hdr", dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    /* Every single flipped byte is detected as damage, not as a wrong key. */
    for (size_t i = 0; i < sizeof(hdr); i++) {
        memcpy(copy, hdr, sizeof(hdr));
        copy[i] ^= 0x20;
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(copy, 1, sizeof(copy), f), sizeof(copy));
        fclose(f);
        assert_int_equal(rv_vault_open(dir, &good, &v), RV_ECORRUPT);
        assert_null(v);
    }
    /* Truncated. */
    f = fopen(path, "wb");
    assert_int_equal(fwrite(hdr, 1, 100, f), 100);
    fclose(f);
    assert_int_equal(rv_vault_open(dir, &good, &v), RV_ECORRUPT);
    /* Restored, it opens. */
    f = fopen(path, "wb");
    assert_int_equal(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    assert_int_equal(rv_vault_open(dir, &good, &v), 0);
    rv_vault_close(v);
}

static void test_passphrase_vault(void **state)
{
    char pdir[300];
    struct rv_vault *v = NULL;
    struct rv_vault_secret right = {"correct horse battery", 21, NULL};
    struct rv_vault_secret wrong = {"correct horse batterx", 21, NULL};
    struct rv_vault_secret kf = key_secret(keyfile);

    (void)state;
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    assert_int_equal(rv_vault_create(pdir, &right, 0), 0);
    assert_int_equal(rv_vault_open(pdir, &wrong, &v), RV_EKEY);
    assert_int_equal(rv_vault_open(pdir, &kf, &v), RV_EKEY);
    assert_int_equal(rv_vault_open(pdir, &right, &v), 0);
    /* 50 million planned entries: 24 bits leave about 3 coincidences per value. */
    assert_int_equal(rv_vault_index_bits(v), 24);
    rv_vault_close(v);
}

static void test_subkeys(void **state)
{
    struct rv_vault *v = open_vault(), *v2;
    uint8_t *a = sodium_malloc(32), *b = sodium_malloc(32), *c = sodium_malloc(32);

    (void)state;
    assert_int_equal(rv_vault_subkey(v, RV_SUBKEY_AUDIT_MAC, a), 0);
    assert_int_equal(rv_vault_subkey(v, RV_SUBKEY_AUDIT_SIGN_SEED, b), 0);
    assert_int_not_equal(sodium_memcmp(a, b, 32), 0);
    assert_int_equal(rv_vault_subkey(v, (enum rv_subkey)33, c), RV_EINVAL);
    v2 = open_vault();
    assert_int_equal(rv_vault_subkey(v2, RV_SUBKEY_AUDIT_MAC, c), 0);
    assert_int_equal(sodium_memcmp(a, c, 32), 0);
    rv_vault_close(v2);
    rv_vault_close(v);
    sodium_free(a);
    sodium_free(b);
    sodium_free(c);
}

static void test_round_trip_and_lookup(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_elector es[3];
    struct rv_version ver;
    struct rv_file_stats st;
    struct rv_name_key nk;
    struct rv_address_key ak;
    const char *lines[2];
    struct rv_index_query q = {0};
    uint64_t ids[16], id;
    size_t n;

    (void)state;
    mk(&es[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Smith, Mary", "LS1 4AB", "10 High Street", "A");
    mk(&es[2], "LDS", "AB2", 1, "Wright, Elaine", "", "", "F");
    es[2].address[1][0] = 0;
    edition(v, D(2025, 12, 1), es, 3, 1, &st);
    assert_int_equal(st.stored, 3);
    assert_int_equal(st.on_register, 3);
    assert_int_equal(st.markers[0], 1); /* F */
    assert_int_equal(st.markers[6], 1); /* A */

    assert_int_equal(rv_vault_current(v, "LDS", &es[1].number, &id), 0);
    assert_int_equal(rv_vault_fetch(v, id, &ver), 0);
    assert_string_equal(ver.e.name.surname, "Smith");
    assert_string_equal(ver.e.name.forenames, "Mary");
    assert_string_equal(ver.e.postcode.canon, "LS1 4AB");
    assert_int_equal(ver.from, D(2025, 12, 1));
    assert_int_equal(ver.to, RV_DATE_FOREVER);

    assert_int_equal(rv_name_key(&es[0].name, &nk), 0);
    q.surname = nk.surname;
    q.initial = nk.initial;
    q.postcode = "LS1 4AB";
    assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    assert_true(n >= 2);
    assert_int_equal(rv_vault_lookup(v, RV_IDX_INITIAL_SURNAME_OUTWARD, &q, ids, 16, &n), 0);
    assert_true(n >= 1);
    assert_int_equal(rv_vault_lookup(v, RV_IDX_PHONETIC_POSTCODE, &q, ids, 16, &n), 0);
    assert_true(n >= 2);
    lines[0] = "10 High Street";
    lines[1] = "Leeds";
    assert_int_equal(rv_address_key(lines, 2, &ak), 0);
    q.first_line = ak.first_line;
    assert_int_equal(rv_vault_lookup(v, RV_IDX_ADDRESS_POSTCODE, &q, ids, 16, &n), 0);
    assert_true(n >= 2);
    /* Overseas entries are found by surname alone. */
    assert_int_equal(rv_name_key(&es[2].name, &nk), 0);
    q.surname = nk.surname;
    assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME, &q, ids, 16, &n), 0);
    assert_true(n >= 1);
    /* A family without its fields is refused, not guessed. */
    q.postcode = NULL;
    assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), RV_EINVAL);
    rv_vault_close(v);
}

static void test_tampering_detected(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_elector es[2];
    struct rv_version ver;
    struct rv_txn *t = NULL;
    uint64_t id[2];
    uint8_t key[2][9], *val[2];
    size_t len[2];
    const void *p;

    (void)state;
    mk(&es[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Jones, Mary", "LS1 4AB", "12 High Street", "");
    edition(v, D(2025, 12, 1), es, 2, 1, NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rv_vault_current(v, "LDS", &es[i].number, &id[i]), 0);
        key[i][0] = 0xff;
        for (int b = 0; b < 8; b++)
            key[i][1 + b] = (uint8_t)(id[i] >> (56 - 8 * b));
        assert_int_equal(rv_store_begin(rv_vault_store(v), false, &t), 0);
        assert_int_equal(rv_store_get(t, key[i], 9, &p, &len[i]), 0);
        val[i] = malloc(len[i]);
        memcpy(val[i], p, len[i]);
        rv_store_abort(t);
    }
    /* Every byte of the record, flipped in turn, fails authentication. */
    for (size_t i = 0; i < len[0]; i++) {
        val[0][i] ^= 0x01;
        assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
        assert_int_equal(rv_store_put(t, key[0], 9, val[0], len[0]), 0);
        assert_int_equal(rv_store_commit(t), 0);
        assert_int_equal(rv_vault_fetch(v, id[0], &ver), RV_ECORRUPT);
        val[0][i] ^= 0x01;
    }
    /* Swapping the two records' stored bytes is detected on both. */
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_put(t, key[0], 9, val[1], len[1]), 0);
    assert_int_equal(rv_store_put(t, key[1], 9, val[0], len[0]), 0);
    assert_int_equal(rv_store_commit(t), 0);
    assert_int_equal(rv_vault_fetch(v, id[0], &ver), RV_ECORRUPT);
    assert_int_equal(rv_vault_fetch(v, id[1], &ver), RV_ECORRUPT);
    /* Swapping only the sealed payloads, keeping each record's own metadata, too. */
    if (len[0] == len[1]) {
        uint8_t *a = malloc(len[0]), *b = malloc(len[1]);
        memcpy(a, val[0], 30);
        memcpy(a + 30, val[1] + 30, len[0] - 30);
        memcpy(b, val[1], 30);
        memcpy(b + 30, val[0] + 30, len[1] - 30);
        assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
        assert_int_equal(rv_store_put(t, key[0], 9, a, len[0]), 0);
        assert_int_equal(rv_store_put(t, key[1], 9, b, len[1]), 0);
        assert_int_equal(rv_store_commit(t), 0);
        assert_int_equal(rv_vault_fetch(v, id[0], &ver), RV_ECORRUPT);
        assert_int_equal(rv_vault_fetch(v, id[1], &ver), RV_ECORRUPT);
        free(a);
        free(b);
    }
    /* Restored, both read again. */
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_put(t, key[0], 9, val[0], len[0]), 0);
    assert_int_equal(rv_store_put(t, key[1], 9, val[1], len[1]), 0);
    assert_int_equal(rv_store_commit(t), 0);
    assert_int_equal(rv_vault_fetch(v, id[0], &ver), 0);
    assert_int_equal(rv_vault_fetch(v, id[1], &ver), 0);
    /* Truncated. */
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_put(t, key[0], 9, val[0], 20), 0);
    assert_int_equal(rv_store_commit(t), 0);
    assert_int_equal(rv_vault_fetch(v, id[0], &ver), RV_ECORRUPT);
    free(val[0]);
    free(val[1]);
    rv_vault_close(v);
}

struct count_ctx {
    unsigned n;
};

static int count_valid(void *ctx, uint64_t id, rv_date from, rv_date to)
{
    (void)id;
    (void)from;
    (void)to;
    ((struct count_ctx *)ctx)->n++;
    return 0;
}

static void test_temporal(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_elector ed1[3], ed2[3], c, bdel;
    struct rv_file_stats st;
    struct count_ctx cnt = {0};
    uint64_t id;

    (void)state;
    mk(&ed1[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&ed1[1], "LDS", "AB1", 2, "Jones, Mary", "LS1 4AB", "12 High Street", "");
    mk(&ed1[2], "LDS", "AB1", 3, "Patel, Ravi", "LS2 7DB", "3 Park Lane", "AP");
    ed1[2].attainment = D(2026, 1, 5);
    edition(v, D(2025, 12, 1), ed1, 3, 1, &st);

    /* March alterations create an elector; June alterations delete one. */
    mk(&c, "LDS", "AB1", 9, "Okafor, Chidi", "LS3 1EF", "5 Mill Road", "");
    alteration(v, D(2025, 12, 1), &c, false, D(2026, 3, 1), 2, RV_APPLIED_NEW);
    bdel = ed1[1];
    alteration(v, D(2025, 12, 1), &bdel, true, D(2026, 6, 1), 3, RV_APPLIED_CLOSED);
    /* Deleting again: not on the register any more. */
    {
        struct rv_vault_batch *b = NULL;
        struct rv_prepared *p = malloc(sizeof(*p));
        uint8_t hash[32];
        enum rv_apply a;
        memset(hash, 4, sizeof(hash));
        assert_int_equal(
            rv_vault_batch_begin(v, "LDS", RV_FILE_ALTERATIONS, D(2025, 12, 1), hash, &b), 0);
        assert_int_equal(rv_vault_prepare(v, &bdel, NULL, 0, p), 0);
        assert_int_equal(rv_vault_batch_alteration_row(b, p, true, D(2026, 7, 1), &a), 0);
        assert_int_equal(a, RV_APPLIED_MISSING);
        /* A change dated before the version it replaces is refused. */
        assert_int_equal(rv_vault_prepare(v, &c, NULL, 0, p), 0);
        p->e.address[0][0] = 'X';
        assert_int_equal(rv_vault_prepare(v, &p->e, NULL, 0, p), 0);
        assert_int_equal(rv_vault_batch_alteration_row(b, p, false, D(2026, 2, 1), &a), 0);
        assert_int_equal(a, RV_APPLIED_EARLY);
        rv_vault_batch_abort(b);
        free(p);
    }

    assert_false(on_register(v, "LDS", &c.number, &c, D(2026, 2, 1)));
    assert_true(on_register(v, "LDS", &c.number, &c, D(2026, 4, 1)));
    assert_true(on_register(v, "LDS", &bdel.number, &bdel, D(2026, 5, 31)));
    assert_false(on_register(v, "LDS", &bdel.number, &bdel, D(2026, 7, 1)));
    assert_false(on_register(v, "LDS", &ed1[0].number, &ed1[0], D(2025, 11, 30)));
    assert_true(on_register(v, "LDS", &ed1[0].number, &ed1[0], D(2025, 12, 1)));

    /* Next edition: Smith unchanged, Patel moved, Okafor gone, Jones back. */
    ed2[0] = ed1[0];
    ed2[1] = ed1[2];
    snprintf(ed2[1].address[0], sizeof(ed2[1].address[0]), "4 Park Lane");
    memset(&ed2[1].markers, 0, sizeof(ed2[1].markers));
    ed2[1].attainment = RV_DATE_NONE;
    ed2[2] = ed1[1];
    edition(v, D(2026, 12, 1), ed2, 3, 5, &st);
    assert_int_equal(st.unchanged, 1);
    assert_int_equal(st.stored, 2);
    assert_int_equal(st.closed, 2); /* Patel's old version, and Okafor */
    assert_int_equal(st.on_register, 3);
    /* Counters kept through closings: markers and flags are read back unmasked. */
    for (int i = 0; i < RV_STAT_MARKERS; i++)
        assert_int_equal(st.markers[i], 0);
    assert_int_equal(st.attainers, 0);
    assert_int_equal(st.optout, 0);
    assert_true(on_register(v, "LDS", &c.number, &c, D(2026, 11, 30)));
    assert_false(on_register(v, "LDS", &c.number, &c, D(2026, 12, 1)));
    /* Smith is stored once, valid from the first edition. */
    assert_int_equal(rv_vault_current(v, "LDS", &ed1[0].number, &id), 0);
    {
        rv_date from, to;
        assert_int_equal(rv_vault_span(v, id, &from, &to), 0);
        assert_int_equal(from, D(2025, 12, 1));
        assert_int_equal(to, RV_DATE_FOREVER);
    }
    assert_int_equal(rv_vault_scan_valid(v, D(2026, 4, 1), count_valid, &cnt), 0);
    assert_int_equal(cnt.n, 4);
    cnt.n = 0;
    assert_int_equal(rv_vault_scan_valid(v, D(2027, 1, 1), count_valid, &cnt), 0);
    assert_int_equal(cnt.n, 3);

    /* An edition older than what is stored is refused. */
    {
        struct rv_vault_batch *b = NULL;
        uint8_t hash[32];
        memset(hash, 9, sizeof(hash));
        assert_int_equal(rv_vault_batch_begin(v, "LDS", RV_FILE_EDITION, D(2026, 6, 1), hash, &b),
                         RV_EINVAL);
        /* The same file again is refused inside the batch too. */
        memset(hash, 5, sizeof(hash));
        assert_int_equal(rv_vault_batch_begin(v, "LDS", RV_FILE_EDITION, D(2027, 6, 1), hash, &b),
                         RV_EEXIST);
    }
    rv_vault_close(v);
}

static void test_duplicate_and_abort(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = malloc(sizeof(*p));
    struct rv_elector e;
    uint8_t hash[32];
    enum rv_apply a;
    uint64_t id;
    struct count_ctx cnt = {0};

    (void)state;
    memset(hash, 7, sizeof(hash));
    mk(&e, "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    assert_int_equal(rv_vault_batch_begin(v, "LDS", RV_FILE_EDITION, D(2025, 12, 1), hash, &b), 0);
    assert_int_equal(rv_vault_prepare(v, &e, NULL, 0, p), 0);
    assert_int_equal(rv_vault_batch_edition_row(b, p, &a), 0);
    assert_int_equal(a, RV_APPLIED_NEW);
    assert_int_equal(rv_vault_prepare(v, &e, NULL, 0, p), 0);
    assert_int_equal(rv_vault_batch_edition_row(b, p, &a), 0);
    assert_int_equal(a, RV_APPLIED_DUPLICATE);
    /* A row of another area cannot enter this batch. */
    snprintf(e.area, sizeof(e.area), "YRK");
    assert_int_equal(rv_vault_prepare(v, &e, NULL, 0, p), 0);
    assert_int_equal(rv_vault_batch_edition_row(b, p, &a), RV_EINVAL);
    rv_vault_batch_abort(b);
    /* Nothing of the abandoned batch remains. */
    snprintf(e.area, sizeof(e.area), "LDS");
    assert_int_equal(rv_vault_current(v, "LDS", &e.number, &id), RV_ENOTFOUND);
    assert_int_equal(rv_vault_scan_valid(v, D(2026, 1, 1), count_valid, &cnt), 0);
    assert_int_equal(cnt.n, 0);
    assert_int_equal(rv_vault_file_seen(v, hash, &(struct rv_file_stats){0}), RV_ENOTFOUND);
    free(p);
    rv_vault_close(v);
}

/* The preparing cache gives the same keys, hashes and index values as preparing afresh,
 * for entries that share an address, a surname, both, or nothing with the one before. */
static int add_code(void *ctx, const char *outward)
{
    char *all = ctx;
    strcat(all, outward);
    strcat(all, ",");
    return 0;
}

static int add_surname(void *ctx, uint64_t id, const char *surname, size_t len)
{
    char *all = ctx;
    assert_true(id > 0);
    assert_true(len < RV_VAULT_PC_SURNAME);
    strncat(all, surname, len);
    strcat(all, ",");
    return 0;
}

static int add_nopc(void *ctx, uint64_t id, const char *surname, const char *forenames,
                    bool address)
{
    char *all = ctx;
    assert_true(id > 0);
    strcat(all, surname);
    strcat(all, "/");
    strcat(all, forenames);
    strcat(all, address ? "/1," : "/0,");
    return 0;
}

static int add_namesake(void *ctx, uint64_t id, const char *postcode, const char *surname,
                        const char *forenames)
{
    char *all = ctx;
    assert_true(id > 0);
    assert_non_null(surname);
    assert_non_null(forenames);
    strcat(all, postcode);
    strcat(all, "/");
    strcat(all, surname);
    strcat(all, "/");
    strcat(all, forenames);
    strcat(all, ",");
    return 0;
}

static int find_index_key(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen)
{
    uint8_t *k = ctx;
    (void)val;
    assert_int_equal(vlen, 4); /* format 2: every entry carries its check tag */
    if (k[0] == 0) {
        k[0] = (uint8_t)klen;
        memcpy(k + 1, key, klen);
    }
    return 0;
}

/* A reader's snapshot, the check tags, the parts of double-barrelled surnames and the
 * districts list. */
static void test_reader(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_vault_reader *r = NULL;
    struct rv_elector es[5];
    struct rv_index_query q = {0};
    struct rv_version ver;
    struct rv_txn *t = NULL;
    uint64_t ids[16], ids2[16], gen;
    uint8_t ikey[64] = {0};
    size_t n, n2;
    rv_date from, to;
    char codes[128] = "";

    (void)state;
    mk(&es[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Smith-Jones, Mary", "LS1 4AB", "10 High Street", "");
    mk(&es[2], "LDS", "AB1", 3, "Patel, Ravi", "LS2 7DB", "3 Park Lane", "");
    mk(&es[3], "LDS", "AB1", 4, "Okafor, Chidi", "EC1A 1BB", "5 Mill Road", "");
    mk(&es[4], "LDS", "AB1", 6, "Bray-Ashton, Sian Ann", "", "", "F");
    es[4].address[1][0] = '\0';
    edition(v, D(2025, 12, 1), es, 5, 1, NULL);
    assert_int_equal(rv_vault_reader_open(v, &r), 0);
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME, &q, ids, 16, &n), RV_EINVAL);
    assert_int_equal(rv_vault_reader_begin(r), 0);
    assert_int_equal(rv_vault_reader_begin(r), RV_EINVAL);
    assert_int_equal(rv_vault_reader_generation(r, &gen), 0);
    assert_int_equal(gen, 1);
    q.postcode = "LS1 4AB";
    /* "smith" finds John Smith and, by its part, Mary Smith-Jones; "jones" only her. */
    q.surname = "smith";
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids2, 16, &n2), 0);
    assert_int_equal(n2, 2);
    assert_memory_equal(ids, ids2, 2 * sizeof(ids[0]));
    q.surname = "jones";
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rv_vault_reader_fetch(r, ids[0], &ver), 0);
    assert_string_equal(ver.e.name.surname, "Smith-Jones");
    assert_int_equal(rv_vault_reader_span(r, ids[0], &from, &to), 0);
    assert_int_equal(from, ver.from);
    assert_int_equal(to, RV_DATE_FOREVER);
    sodium_memzero(&ver, sizeof(ver));
    q.surname = "smithjones";
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    assert_int_equal(n, 1);
    /* Nobody else: the tags drop the truncated values' coincidences. */
    q.surname = "wright";
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rv_vault_reader_districts(r, add_code, codes), 0);
    assert_string_equal(codes, "EC1A,LS1,LS2,");
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_postcode(r, "LS1 4AB", add_surname, codes), 0);
    assert_true(strcmp(codes, "smith,smith jones,") == 0 ||
                strcmp(codes, "smith jones,smith,") == 0);
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_postcode(r, "LS9 9ZZ", add_surname, codes), 0);
    assert_string_equal(codes, "");
    assert_int_equal(rv_vault_reader_postcode(r, "", add_surname, codes), RV_EINVAL);
    /* Namesakes: initial + surname + outward code, with postcodes and names. */
    {
        struct rv_index_query nq = {"smith", 'j', "LS1 9ZZ", NULL};
        codes[0] = '\0';
        assert_int_equal(rv_vault_reader_namesakes(r, &nq, add_namesake, codes), 0);
        assert_string_equal(codes, "LS14AB/smith/john,");
        nq.initial = 'm';
        nq.surname = "smithjones";
        codes[0] = '\0';
        assert_int_equal(rv_vault_reader_namesakes(r, &nq, add_namesake, codes), 0);
        assert_string_equal(codes, "LS14AB/smith jones/mary,");
        nq.postcode = "LS2";
        codes[0] = '\0';
        assert_int_equal(rv_vault_reader_namesakes(r, &nq, add_namesake, codes), 0);
        assert_string_equal(codes, "");
        nq.initial = 0;
        assert_int_equal(rv_vault_reader_namesakes(r, &nq, add_namesake, codes), RV_EINVAL);
    }
    /* Entries with no postcode, by surname and by each part, with their forenames. */
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_no_postcode(r, "ashton", add_nopc, codes), 0);
    assert_string_equal(codes, "bray ashton/sian ann/0,");
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_no_postcode(r, "brayashton", add_nopc, codes), 0);
    assert_string_equal(codes, "bray ashton/sian ann/0,");
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_no_postcode(r, "smith", add_nopc, codes), 0);
    assert_string_equal(codes, "");
    rv_vault_reader_end(r);
    rv_vault_reader_end(r); /* a no-op without a snapshot */

    /* A tampered tag hides the entry; a value of the wrong length is damage. */
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_scan(t, "I\x05", 2, find_index_key, ikey), 0);
    rv_store_abort(t);
    assert_true(ikey[0] > 0); /* the overseas entry, by surname alone (and its tag) */
    ikey[0] = 0;
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_scan(t, "I\x01", 2, find_index_key, ikey), 0);
    assert_true(ikey[0] > 0);
    assert_int_equal(rv_store_put(t, ikey + 1, ikey[0], "\0\0\0\0", 4), 0);
    assert_int_equal(rv_store_commit(t), 0);
    {
        size_t found = 0;
        const char *names[] = {"smith", "jones", "smithjones", "patel", "okafor"};
        const char *pcs[] = {"LS1 4AB", "LS1 4AB", "LS1 4AB", "LS2 7DB", "EC1A 1BB"};
        for (int i = 0; i < 5; i++) {
            q.surname = names[i];
            q.postcode = pcs[i];
            assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
            found += n;
        }
        assert_int_equal(found, 5); /* 6 entries, one tag broken (all-zero by chance: 2^-32) */
    }
    assert_int_equal(rv_store_begin(rv_vault_store(v), true, &t), 0);
    assert_int_equal(rv_store_put(t, ikey + 1, ikey[0], "", 0), 0);
    assert_int_equal(rv_store_commit(t), 0);
    {
        bool corrupt = false;
        const char *names[] = {"smith", "jones", "smithjones", "patel", "okafor"};
        const char *pcs[] = {"LS1 4AB", "LS1 4AB", "LS1 4AB", "LS2 7DB", "EC1A 1BB"};
        for (int i = 0; i < 5; i++) {
            q.surname = names[i];
            q.postcode = pcs[i];
            corrupt |= rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n) == RV_ECORRUPT;
        }
        assert_true(corrupt);
    }

    /* A new file: the generation moves on. */
    mk(&es[0], "LDS", "AB1", 5, "Wright, Elaine", "LS9 1AA", "1 Low Road", "");
    edition(v, D(2026, 12, 1), es, 1, 2, NULL);
    assert_int_equal(rv_vault_reader_begin(r), 0);
    assert_int_equal(rv_vault_reader_generation(r, &gen), 0);
    assert_int_equal(gen, 2);
    codes[0] = '\0';
    assert_int_equal(rv_vault_reader_districts(r, add_code, codes), 0);
    assert_string_equal(codes, "EC1A,LS1,LS2,LS9,");
    rv_vault_reader_close(r); /* ends the snapshot too */
    rv_vault_close(v);
}

struct nonces {
    uint8_t n[64][24];
    size_t cnt;
};

static int collect_nonce(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen)
{
    struct nonces *ns = ctx;
    (void)key;
    (void)klen;
    assert_true(vlen > 24 + 16);
    assert_true(ns->cnt < 64);
    memcpy(ns->n[ns->cnt++], val, 24);
    return 0;
}

/* The sealed lists (postcodes, namesakes, no postcode) never share a nonce, within a batch
 * or across batches, though a batch counts its nonces from one random prefix. */
static void test_list_nonces(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_elector es[4];
    struct rv_txn *t = NULL;
    struct nonces ns = {.cnt = 0};
    const char kinds[] = "PQR";

    (void)state;
    mk(&es[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Patel, Ravi", "LS2 7DB", "3 Park Lane", "");
    mk(&es[2], "LDS", "AB1", 3, "Okafor, Chidi", "EC1A 1BB", "5 Mill Road", "");
    mk(&es[3], "LDS", "AB1", 4, "Bray, Sian", "", "", "F");
    edition(v, D(2025, 12, 1), es, 4, 1, NULL);
    mk(&es[0], "YRK", "CD1", 1, "Jones, Ann", "YO1 7HH", "1 Stonegate", "");
    mk(&es[1], "YRK", "CD1", 2, "Khan, Aisha", "YO10 5DD", "2 Heslington Road", "");
    mk(&es[2], "YRK", "CD1", 3, "Lewis, Tom", "", "", "F");
    edition(v, D(2025, 12, 1), es, 3, 2, NULL);
    assert_int_equal(rv_store_begin(rv_vault_store(v), false, &t), 0);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(rv_store_scan(t, &kinds[k], 1, collect_nonce, &ns), 0);
    rv_store_abort(t);
    assert_true(ns.cnt >= 12); /* 5 postcode, 5 namesake and 2 surname lists at least */
    for (size_t i = 0; i < ns.cnt; i++)
        for (size_t j = i + 1; j < ns.cnt; j++)
            assert_memory_not_equal(ns.n[i], ns.n[j], 24);
    rv_vault_close(v);
}

/* One file's rows as a batch of load l. */
static void load_file(struct rv_vault_load *l, struct rv_vault *v, enum rv_file_kind kind,
                      rv_date date, const struct rv_elector *es, size_t n, uint8_t tag)
{
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = malloc(sizeof(*p));
    uint8_t hash[32];
    enum rv_apply a;

    memset(hash, tag, sizeof(hash));
    assert_non_null(p);
    assert_int_equal(rv_vault_batch_begin_in(l, es[0].area, kind, date, hash, &b), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rv_vault_prepare(v, &es[i], NULL, 0, p), 0);
        if (kind == RV_FILE_EDITION)
            assert_int_equal(rv_vault_batch_edition_row(b, p, &a), 0);
        else
            assert_int_equal(rv_vault_batch_alteration_row(b, p, false, date, &a), 0);
        assert_int_equal(a, RV_APPLIED_NEW);
    }
    rv_vault_batch_count(b, n, 0, 0);
    assert_int_equal(rv_vault_batch_commit(b, NULL), 0);
    free(p);
}

/* Files in the store's folder other than LMDB's own. */
static int scratch_names(const char *vault)
{
    char path[512];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/store", vault);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "data.mdb") != 0 &&
            strcmp(de->d_name, "lock.mdb") != 0)
            n++;
    closedir(d);
    return n;
}

/* Three files in one load (an edition, its alterations adding to the same lists, another
 * area's edition with an elector abroad), with the load's deferred writes kept within
 * `budget` bytes of memory; what the lists and indexes then give, into out. With a budget
 * of 0 every run goes to the scratch file, which must hold none of the names or postcodes
 * in a readable form while the load runs. */
static void spill_load(size_t budget, char *out)
{
    struct rv_vault *v = open_vault();
    struct rv_vault_load *l = NULL;
    struct rv_vault_reader *r = NULL;
    struct rv_elector es[3];
    struct rv_index_query q = {"quixotically", 'z', "LS1 4AB", NULL};
    uint64_t ids[16];
    size_t n = 0;

    assert_int_equal(rv_vault_load_begin(v, &l), 0);
    rv_vault_load_spill_budget(l, budget);
    mk(&es[0], "LDS", "AB1", 1, "Quixotically, Zephyrine", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Smith, John", "LS1 4AB", "10 High Street", "");
    load_file(l, v, RV_FILE_EDITION, D(2025, 12, 1), es, 2, 1);
    mk(&es[0], "LDS", "AB1", 3, "Quixotically, Zebedee", "LS1 4AB", "12 High Street", "");
    mk(&es[1], "LDS", "AB1", 4, "Quixotically-Smith, Zara", "LS1 4AB", "14 High Street", "");
    load_file(l, v, RV_FILE_ALTERATIONS, D(2026, 1, 1), es, 2, 2);
    mk(&es[0], "YRK", "CD1", 1, "Quixotically, Zosia", "", "", "F");
    mk(&es[1], "YRK", "CD1", 2, "Jones, Ann", "YO1 7HH", "1 Stonegate", "");
    load_file(l, v, RV_FILE_EDITION, D(2025, 12, 1), es, 2, 3);
    if (budget == 0) {
        static const char *secret[] = {"quixotically", "Quixotically", "QUIXOTICALLY", "zephyrine",
                                       "Zephyrine",    "zebedee",      "zosia",        "LS14AB",
                                       "LS1 4AB",      "YO17HH",       "smith"};
        int fd = rv_vault_load_spill_fd(l);
        uint8_t *buf = malloc(1 << 20);
        ssize_t got;
        assert_true(fd >= 0);
        assert_non_null(buf);
        got = pread(fd, buf, 1 << 20, 0);
        assert_true(got > 1000 && got < (1 << 20));
        for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
            assert_null(memmem(buf, (size_t)got, secret[i], strlen(secret[i])));
        free(buf);
    }
    assert_int_equal(scratch_names(dir), 0); /* the scratch file has no name */
    assert_int_equal(rv_vault_load_commit(l), 0);
    assert_int_equal(scratch_names(dir), 0);

    out[0] = '\0';
    assert_int_equal(rv_vault_reader_open(v, &r), 0);
    assert_int_equal(rv_vault_reader_begin(r), 0);
    assert_int_equal(rv_vault_reader_postcode(r, "LS1 4AB", add_surname, out), 0);
    strcat(out, "|");
    assert_int_equal(rv_vault_reader_namesakes(r, &q, add_namesake, out), 0);
    strcat(out, "|");
    assert_int_equal(rv_vault_reader_no_postcode(r, "quixotically", add_nopc, out), 0);
    strcat(out, "|");
    assert_int_equal(rv_vault_reader_lookup(r, RV_IDX_SURNAME_POSTCODE, &q, ids, 16, &n), 0);
    snprintf(out + strlen(out), 16, "%zu", n);
    rv_vault_reader_close(r);
    rv_vault_close(v);
}

/* A load's deferred index entries and list additions give the same lists and lookups
 * whether they stayed in memory or went through the sealed scratch file, which leaks no
 * names or postcodes and leaves no file behind. */
static void test_load_spill(void **state)
{
    char kept[2048], spilled[2048];

    (void)state;
    spill_load(64u << 20, kept);
    rv_test_rmtree(dir);
    assert_int_equal(setup(NULL), 0);
    spill_load(0, spilled);
    assert_string_equal(kept, spilled);
    /* Each list holds the files' additions in the files' order. */
    assert_string_equal(kept, "quixotically,smith,quixotically,quixotically smith,|"
                              "LS14AB/quixotically/zephyrine,LS14AB/quixotically/zebedee,|"
                              "quixotically/zosia/0,|3");
}

static void test_prepare_cache(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_vault_prep_cache *c = NULL;
    struct rv_prepared *p = malloc(sizeof(*p)), *q = malloc(sizeof(*q));
    struct rv_elector es[6];

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    mk(&es[0], "LDS", "AB1", 1, "Smith, John", "LS1 4AB", "10 High Street", "");
    mk(&es[1], "LDS", "AB1", 2, "Smith, Jane", "LS1 4AB", "10 High Street", "");
    mk(&es[2], "LDS", "AB1", 3, "Jones, Jane", "LS1 4AB", "10 High Street", "");
    mk(&es[3], "LDS", "AB1", 4, "Jones, Alan", "LS1 4AB", "12 High Street", "");
    mk(&es[4], "LDS", "AB1", 5, "Jones, Alan", "LS2 7XY", "12 High Street", "");
    mk(&es[5], "LDS", "AB1", 6, "Smyth, Ann", "", "12 High Street", "");
    snprintf(es[4].address[1], sizeof(es[4].address[1]), "York");
    assert_int_equal(rv_vault_prep_cache_new(&c), 0);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 6; i++) {
            memset(p, 0, sizeof(*p));
            memset(q, 0, sizeof(*q));
            assert_int_equal(rv_vault_prepare_cached(v, c, &es[i], NULL, 0, p), 0);
            assert_int_equal(rv_vault_prepare(v, &es[i], NULL, 0, q), 0);
            assert_memory_equal(p->numkey, q->numkey, sizeof(p->numkey));
            assert_memory_equal(p->chash, q->chash, sizeof(p->chash));
            assert_int_equal(p->idx_present, q->idx_present);
            assert_memory_equal(p->idx, q->idx, sizeof(p->idx));
        }
    }
    rv_vault_prep_cache_free(c);
    free(p);
    free(q);
    rv_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_refuses_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_and_damaged_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passphrase_vault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subkeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_nonces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_spill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temporal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_abort, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(keyfile, sizeof(keyfile));
    randombytes_buf(otherkey, sizeof(otherkey));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
