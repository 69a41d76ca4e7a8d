/*
 * test_server_sessions.c - bearer sessions with a clock the test turns: the token's form,
 * idle expiry (use keeps a session alive, silence ends it), absolute expiry (use does not
 * help past session_max), revocation (one token, every token of a principal), the
 * password-change restriction, a full table, and attacks: malformed tokens, a token one
 * character off, a token's hash or prefix presented instead, and lookups that must not be
 * faster for a near-miss than for garbage of the same length (constant-time comparison:
 * the table is indexed by a hash, so a near miss lands in an unrelated slot).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static struct rv_sessions *table(size_t cap)
{
    struct rv_sessions *s = NULL;
    assert_int_equal(rv_sessions_new(900, 28800, cap, fake_clock, NULL, &s), 0);
    return s;
}

static void test_token_form(void **state)
{
    struct rv_sessions *s = table(16);
    char a[RV_SESSION_TOKEN_LEN + 1], b[RV_SESSION_TOKEN_LEN + 1];
    struct rv_session_info info;

    (void)state;
    fake_now = 1000000;
    assert_int_equal(rv_sessions_create(s, "alice", "checker", false, a, &info), 0);
    assert_int_equal(rv_sessions_create(s, "alice", "checker", false, b, NULL), 0);
    assert_int_equal(strlen(a), RV_SESSION_TOKEN_LEN);
    assert_int_equal(strncmp(a, "rvs_", 4), 0);
    for (size_t i = 4; i < RV_SESSION_TOKEN_LEN; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    assert_string_not_equal(a, b);
    assert_int_equal(info.expires_ms, fake_now + 900 * 1000);
    assert_string_equal(info.principal, "alice");
    assert_string_equal(info.role, "checker");
    assert_false(info.restricted);
    assert_int_equal(rv_sessions_count(s), 2);
    assert_int_equal(rv_sessions_create(s,
                                        "a-name-far-too-long-for-any-principal-of-this-vault-"
                                        "xxxxxxxxxxxxxxx",
                                        "checker", false, a, NULL),
                     RV_EINVAL);
    rv_sessions_free(s);
}

static void test_idle_and_absolute_expiry(void **state)
{
    struct rv_sessions *s = table(16);
    char t[RV_SESSION_TOKEN_LEN + 1], u[RV_SESSION_TOKEN_LEN + 1];
    struct rv_session_info info;

    (void)state;
    fake_now = 5000000;
    assert_int_equal(rv_sessions_create(s, "alice", "checker", false, t, NULL), 0);
    assert_int_equal(rv_sessions_create(s, "bob", "auditor", false, u, NULL), 0);
    /* Used every 14 minutes: alive; the idle clock restarts at each use. */
    for (int i = 0; i < 34; i++) {
        fake_now += 14 * 60 * 1000;
        assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    }
    /* bob was silent for 8 hours: gone. */
    assert_int_equal(rv_sessions_lookup(s, u, strlen(u), &info), RV_EAUTH);
    /* 34 * 14 min = 7 h 56 min; at 8 h after login alice's session ends however busy. */
    assert_int_equal(info.expires_ms, 5000000 + 28800 * 1000);
    fake_now = 5000000 + 28800 * 1000 - 1;
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    fake_now++;
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_sweep(s), 0);
    /* Idle expiry exactly at 15 minutes. */
    assert_int_equal(rv_sessions_create(s, "carol", "admin", false, t, NULL), 0);
    fake_now += 900 * 1000 - 1;
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    fake_now += 900 * 1000;
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), RV_EAUTH);
    /* A clock that goes back does not revive anything. */
    fake_now -= 3600 * 1000;
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), RV_EAUTH);
    rv_sessions_free(s);
}

static void test_revoke_and_restrict(void **state)
{
    struct rv_sessions *s = table(16);
    char t[RV_SESSION_TOKEN_LEN + 1], t2[RV_SESSION_TOKEN_LEN + 1], o[RV_SESSION_TOKEN_LEN + 1];
    struct rv_session_info info;

    (void)state;
    fake_now = 1;
    assert_int_equal(rv_sessions_create(s, "alice", "checker", true, t, NULL), 0);
    assert_int_equal(rv_sessions_create(s, "alice", "checker", false, t2, NULL), 0);
    assert_int_equal(rv_sessions_create(s, "olga", "auditor", false, o, NULL), 0);
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    assert_true(info.restricted);
    assert_int_equal(rv_sessions_unrestrict(s, t, strlen(t)), 0);
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    assert_false(info.restricted);
    assert_int_equal(rv_sessions_revoke(s, t, strlen(t)), 0);
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_revoke(s, t, strlen(t)), RV_EAUTH);
    assert_int_equal(rv_sessions_revoke_principal(s, "alice"), 1);
    assert_int_equal(rv_sessions_lookup(s, t2, strlen(t2), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_lookup(s, o, strlen(o), &info), 0);
    rv_sessions_free(s);
}

/* After a password change, every other session of the principal ends and the one that
 * changed it goes on; other principals keep theirs; a malformed token to keep ends all. */
static void test_revoke_others(void **state)
{
    struct rv_sessions *s = table(16);
    char a[3][RV_SESSION_TOKEN_LEN + 1], o[RV_SESSION_TOKEN_LEN + 1];
    struct rv_session_info info;

    (void)state;
    fake_now = 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rv_sessions_create(s, "alice", "checker", false, a[i], NULL), 0);
    assert_int_equal(rv_sessions_create(s, "olga", "checker", false, o, NULL), 0);
    assert_int_equal(rv_sessions_revoke_others(s, "alice", a[1], strlen(a[1])), 2);
    assert_int_equal(rv_sessions_lookup(s, a[0], strlen(a[0]), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_lookup(s, a[1], strlen(a[1]), &info), 0);
    assert_int_equal(rv_sessions_lookup(s, a[2], strlen(a[2]), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_lookup(s, o, strlen(o), &info), 0);
    assert_int_equal(rv_sessions_revoke_others(s, "alice", "rvs_short", 9), 1);
    assert_int_equal(rv_sessions_lookup(s, a[1], strlen(a[1]), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_lookup(s, o, strlen(o), &info), 0);
    rv_sessions_free(s);
}

static void test_full_table(void **state)
{
    struct rv_sessions *s = table(8);
    char t[RV_SESSION_TOKEN_LEN + 1], first[RV_SESSION_TOKEN_LEN + 1];

    (void)state;
    fake_now = 1;
    assert_int_equal(rv_sessions_create(s, "p", "checker", false, first, NULL), 0);
    for (int i = 1; i < 8; i++)
        assert_int_equal(rv_sessions_create(s, "p", "checker", false, t, NULL), 0);
    assert_int_equal(rv_sessions_create(s, "p", "checker", false, t, NULL), RV_ELIMIT);
    assert_int_equal(t[0], '\0');
    /* Once they expire there is room again, and old tokens stay dead. */
    fake_now += 901 * 1000;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(rv_sessions_create(s, "p", "checker", false, t, NULL), 0);
        assert_int_equal(rv_sessions_revoke(s, t, strlen(t)), 0);
    }
    assert_int_equal(rv_sessions_lookup(s, first, strlen(first), &(struct rv_session_info){0}),
                     RV_EAUTH);
    rv_sessions_free(s);
}

static void test_forgeries(void **state)
{
    struct rv_sessions *s = table(16);
    char t[RV_SESSION_TOKEN_LEN + 1], bad[RV_SESSION_TOKEN_LEN + 2];
    struct rv_session_info info;
    uint8_t h[32];
    char hex[65];

    (void)state;
    fake_now = 1;
    assert_int_equal(rv_sessions_create(s, "alice", "admin", false, t, NULL), 0);
    /* Each character changed in turn. */
    for (size_t i = 0; i < RV_SESSION_TOKEN_LEN; i++) {
        memcpy(bad, t, sizeof(t));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(rv_sessions_lookup(s, bad, strlen(bad), &info), RV_EAUTH);
    }
    /* Truncated, extended, wrong prefix, a NUL inside, the hash itself. */
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t) - 1, &info), RV_EAUTH);
    memcpy(bad, t, sizeof(t));
    strcat(bad, "A");
    assert_int_equal(rv_sessions_lookup(s, bad, strlen(bad), &info), RV_EAUTH);
    memcpy(bad, t, sizeof(t));
    bad[0] = 'R';
    assert_int_equal(rv_sessions_lookup(s, bad, strlen(bad), &info), RV_EAUTH);
    memcpy(bad, t, sizeof(t));
    bad[10] = '\0';
    assert_int_equal(rv_sessions_lookup(s, bad, RV_SESSION_TOKEN_LEN, &info), RV_EAUTH);
    crypto_generichash(h, 32, (const unsigned char *)t, strlen(t), NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, 32);
    assert_int_equal(rv_sessions_lookup(s, hex, strlen(hex), &info), RV_EAUTH);
    assert_int_equal(rv_sessions_lookup(s, "", 0, &info), RV_EAUTH);
    /* The real one still works. */
    assert_int_equal(rv_sessions_lookup(s, t, strlen(t), &info), 0);
    rv_sessions_free(s);
}

static double time_lookups(struct rv_sessions *s, const char *tok, int n)
{
    struct rv_session_info info;
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        if (rv_sessions_lookup(s, tok, RV_SESSION_TOKEN_LEN, &info) == 0)
            fail();
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

/* A near miss (the right token but its last character) costs what garbage costs. */
static void test_timing(void **state)
{
    struct rv_sessions *s = table(1024);
    char t[RV_SESSION_TOKEN_LEN + 1], near[RV_SESSION_TOKEN_LEN + 1], far[RV_SESSION_TOKEN_LEN + 1];
    double tn = 1e300, tf = 1e300;

    (void)state;
    fake_now = 1;
    for (int i = 0; i < 500; i++)
        assert_int_equal(rv_sessions_create(s, "p", "checker", false, t, NULL), 0);
    memcpy(near, t, sizeof(t));
    near[RV_SESSION_TOKEN_LEN - 1] = near[RV_SESSION_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    memcpy(far, "rvs_", 4);
    memset(far + 4, 'Q', RV_SESSION_TOKEN_LEN - 4);
    far[RV_SESSION_TOKEN_LEN] = '\0';
    for (int round = 0; round < 9; round++) {
        double a = time_lookups(s, near, 20000), b = time_lookups(s, far, 20000);
        tn = a < tn ? a : tn;
        tf = b < tf ? b : tf;
    }
    /* Generous bounds: the point is that a near miss is not systematically slower (a
     * prefix compare would make it so). */
    assert_true(tn < tf * 3.0 && tf < tn * 3.0);
    rv_sessions_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_form),          cmocka_unit_test(test_idle_and_absolute_expiry),
        cmocka_unit_test(test_revoke_and_restrict), cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_forgeries),           cmocka_unit_test(test_timing),
        cmocka_unit_test(test_revoke_others),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
