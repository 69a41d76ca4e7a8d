/*
 * test_policy_client_v6.c - an IPv6 client is limited by its /64, not by its exact address:
 * one subscriber holds a whole /64 and can send each request from a new address in it. The
 * address bucket (rv_policy_admit_client, rv_policy_admit) and the address lockout of
 * failed logins must both count the /64 as one client, and a neighbouring /64 apart;
 * IPv4-mapped addresses count as their IPv4 address. And a spread of many prefixes cannot
 * grow the table of buckets without bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "testvault.h"

#include "policy/inner.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_key(void **state)
{
    char k[RV_CLIENT_KEY_MAX];
    (void)state;

    rv_client_key("2001:db8:1:2:aaaa:bbbb:cccc:1", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    rv_client_key("2001:DB8:1:2::ffff", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    rv_client_key("2001:db8:1:3::1", k);
    assert_string_equal(k, "2001:db8:1:3::/64");
    rv_client_key("::ffff:192.0.2.1", k);
    assert_string_equal(k, "192.0.2.1");
    rv_client_key("192.0.2.1", k);
    assert_string_equal(k, "192.0.2.1");
    rv_client_key("local", k);
    assert_string_equal(k, "local");
    rv_client_key("not:an:address", k);
    assert_string_equal(k, "not:an:address");
}

struct fixture {
    struct rv_test_vault tv;
    struct rv_gate *g;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rv_actor admin = {"tester", "admin", "local"};
    struct rv_policy_config c;
    struct rv_diag d;

    if (f == NULL || sodium_init() < 0 || rv_test_vault_create(&f->tv, "rv-v6", 1000) != 0)
        return -1;
    if (rv_policy_open(f->tv.dir, &f->tv.secret, &admin, &f->g) != 0)
        return -1;
    rv_policy_config_defaults(&c);
    c.rate_client = 0.001; /* one token in 1000 s: no refill during the test */
    c.burst_client = 3;
    c.alert_syslog = false;
    if (rv_policy_configure(f->g, &c, &d) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    (void)rv_policy_close(f->g);
    rv_test_vault_remove(&f->tv);
    free(f);
    return 0;
}

static int admit_from(struct fixture *f, const char *client, bool with_principal)
{
    struct rv_actor who = {with_principal ? "v6user" : "-", "checker", client};
    int64_t retry = 0;

    rv_policy_set_actor(f->g, &who);
    return with_principal ? rv_policy_admit(f->g, &retry) : rv_policy_admit_client(f->g, &retry);
}

static void test_bucket_per_64(void **state)
{
    struct fixture *f = *state;

    /* Three tokens for the /64, whichever of its addresses asks. */
    assert_int_equal(admit_from(f, "2001:db8:1:2::1", false), 0);
    assert_int_equal(admit_from(f, "2001:db8:1:2::2", true), 0);
    assert_int_equal(admit_from(f, "2001:db8:1:2:ffff:ffff:ffff:fffe", false), 0);
    assert_int_equal(admit_from(f, "2001:db8:1:2:1234:5678:9abc:def0", false), RV_ELIMIT);
    assert_int_equal(admit_from(f, "2001:db8:1:2::77", true), RV_ELIMIT);
    /* The next /64 is another client. */
    assert_int_equal(admit_from(f, "2001:db8:1:3::1", false), 0);
    /* An IPv4-mapped address is its IPv4 address. */
    assert_int_equal(admit_from(f, "192.0.2.9", false), 0);
    assert_int_equal(admit_from(f, "::ffff:192.0.2.9", false), 0);
    assert_int_equal(admit_from(f, "192.0.2.9", false), 0);
    assert_int_equal(admit_from(f, "::ffff:192.0.2.9", false), RV_ELIMIT);
}

/* Addresses past the table's room (a spread attack from a large prefix) share one bucket
 * rather than each getting a new one. */
static void test_table_full(void **state)
{
    struct fixture *f = *state;
    char addr[64];
    int ok = 0;

    for (unsigned i = 0; i < 65536; i++) {
        snprintf(addr, sizeof(addr), "2001:db8:%x:%x::1", i >> 8, i & 0xff);
        assert_int_equal(admit_from(f, addr, false), 0);
    }
    for (unsigned i = 0; i < 10; i++) {
        snprintf(addr, sizeof(addr), "2001:db9:%x::1", i);
        ok += admit_from(f, addr, false) == 0;
    }
    assert_int_equal(ok, 3);
    /* Addresses already known keep their own buckets. */
    assert_int_equal(admit_from(f, "2001:db8:0:5::1", false), 0);
}

/* Failed logins from a new address of one /64 each time lock the whole /64 out. */
static void test_lockout_per_64(void **state)
{
    struct fixture *f = *state;
    struct rv_principal out;
    int64_t retry = 0;
    int rc = 0, i;
    char addr[64], name[32];

    for (i = 0; i < 40 && rc != RV_ELOCKED; i++) {
        snprintf(addr, sizeof(addr), "2001:db8:9:9::%x", i + 1);
        snprintf(name, sizeof(name), "nobody%d", i);
        rc = rv_policy_login(f->g, name, "wrong-password", "123456", addr, &out, &retry);
    }
    assert_int_equal(rc, RV_ELOCKED);
    assert_true(i <= 21);
    /* Another address of the /64, another name: still locked. */
    assert_int_equal(rv_policy_login(f->g, "someone-else", "wrong-password", "123456",
                                     "2001:db8:9:9:abcd::1", &out, &retry),
                     RV_ELOCKED);
    /* The neighbouring /64 is not. */
    assert_int_equal(rv_policy_login(f->g, "someone-else", "wrong-password", "123456",
                                     "2001:db8:9:a::1", &out, &retry),
                     RV_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test_setup_teardown(test_bucket_per_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_per_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
