/*
 * test_server_config.c - the daemon's settings table, key by key: a good value is taken, a
 * value out of bounds and a value of the wrong type are refused with a message naming the
 * key, from a file with FILE:LINE; unknown keys are refused (with a suggestion); defaults are
 * within their own bounds and within the policy's; comments and quotes; the cross-key rules
 * of rv_server_config_finish; and the sample etc/regvault.conf parses and finishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void good_value(const struct rv_server_config_key *k, char *buf, size_t sz)
{
    switch (k->type) {
    case RV_CFG_STRING:
        snprintf(buf, sz, "%s", strcmp(k->name, "user") == 0 ? "regvault" : "run-me --now");
        break;
    case RV_CFG_PATH:
        snprintf(buf, sz, "/tmp/some where/%s", k->name);
        break;
    case RV_CFG_BOOL:
        snprintf(buf, sz, "yes");
        break;
    case RV_CFG_UINT:
    case RV_CFG_SIZE:
        snprintf(buf, sz, "%.0f", k->max);
        break;
    case RV_CFG_DOUBLE:
        snprintf(buf, sz, "%.17g", k->max);
        break;
    case RV_CFG_LISTEN:
        snprintf(buf, sz, "[::1]:0");
        break;
    }
}

static void test_every_key_good(void **state)
{
    const struct rv_server_config_key *keys;
    struct rv_server_config c;
    struct rv_diag d;
    size_t n;
    char v[256];

    (void)state;
    keys = rv_server_config_keys(&n);
    assert_true(n >= 33);
    for (size_t i = 0; i < n; i++) {
        rv_server_config_defaults(&c);
        rv_diag_clear(&d);
        good_value(&keys[i], v, sizeof(v));
        assert_int_equal(rv_server_config_set(&c, keys[i].name, v, &d), 0);
        assert_true((c.set_mask >> i) & 1);
        /* The minimum too. */
        if (keys[i].type == RV_CFG_UINT || keys[i].type == RV_CFG_SIZE) {
            snprintf(v, sizeof(v), "%.0f", keys[i].min);
            assert_int_equal(rv_server_config_set(&c, keys[i].name, v, &d), 0);
        }
        assert_non_null(keys[i].help);
        assert_true(strlen(keys[i].help) > 10);
    }
}

static void test_every_key_bad(void **state)
{
    const struct rv_server_config_key *keys;
    struct rv_server_config c;
    struct rv_diag d;
    size_t n;
    char v[2048], text[2200], fmt[2300];

    (void)state;
    keys = rv_server_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const struct rv_server_config_key *k = &keys[i];
        const char *wrong = NULL;
        bool oob = true;

        switch (k->type) {
        case RV_CFG_UINT:
        case RV_CFG_SIZE:
            snprintf(v, sizeof(v), "%.0f", k->max + 1);
            wrong = "lots";
            break;
        case RV_CFG_DOUBLE:
            snprintf(v, sizeof(v), "%.17g", k->max * 2);
            wrong = "fast";
            break;
        case RV_CFG_BOOL:
            oob = false;
            wrong = "maybe";
            break;
        case RV_CFG_LISTEN:
            snprintf(v, sizeof(v), "127.0.0.1:65536");
            wrong = "localhost";
            break;
        case RV_CFG_STRING:
        case RV_CFG_PATH:
            memset(v, 'a', (size_t)k->max + 1);
            v[(size_t)k->max + 1] = '\0';
            wrong = "tab\there";
            break;
        }
        rv_server_config_defaults(&c);
        if (oob) {
            rv_diag_clear(&d);
            assert_int_equal(rv_server_config_set(&c, k->name, v, &d), RV_EINVAL);
            assert_non_null(strstr(d.msg, k->name));
            /* From a file: FILE:LINE. */
            snprintf(text, sizeof(text), "# a comment\n\n%s = %s\n", k->name, v);
            assert_int_equal(rv_server_config_parse(&c, text, strlen(text), "x.conf", &d),
                             RV_EINVAL);
            assert_string_equal(d.file, "x.conf");
            assert_int_equal(d.line, 3);
            rv_diag_format(&d, fmt, sizeof(fmt));
            assert_int_equal(strncmp(fmt, "x.conf:3", 8), 0);
        }
        rv_diag_clear(&d);
        assert_int_equal(rv_server_config_set(&c, k->name, wrong, &d), RV_EINVAL);
        assert_non_null(strstr(d.msg, k->name));
        /* The minimum's neighbour below, where there is one. */
        if ((k->type == RV_CFG_UINT || k->type == RV_CFG_SIZE) && k->min >= 1) {
            snprintf(v, sizeof(v), "%.0f", k->min - 1);
            assert_int_equal(rv_server_config_set(&c, k->name, v, &d), RV_EINVAL);
            assert_non_null(strstr(d.msg, "out of bounds"));
        }
    }
}

static void test_unknown_and_syntax(void **state)
{
    struct rv_server_config c;
    struct rv_diag d;
    const char *t;

    (void)state;
    rv_server_config_defaults(&c);
    t = "vault = /v\nthread = 4\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), RV_EINVAL);
    assert_int_equal(d.line, 2);
    assert_non_null(strstr(d.msg, "unknown setting 'thread'"));
    assert_non_null(strstr(d.msg, "threads"));
    t = "vault /v\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), RV_EPARSE);
    assert_int_equal(d.line, 1);
    t = " = 4\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), RV_EPARSE);
    t = "vault = \"/v # not a comment\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), RV_EPARSE);
    t = "vault = \"/v\" trailing\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), RV_EPARSE);
    t = "vault = a\0b\n";
    assert_int_equal(rv_server_config_parse(&c, t, 12, "s.conf", &d), RV_EPARSE);
    /* Comments, quotes, CRLF, a BOM, spaces. */
    t = "\xef\xbb\xbf# top\r\n  vault   =   \"/v # kept\"   # gone\r\ntls_cert=/c#x\r\n"
        "dev = On\nbody_max_check = 32k\nbody_max_batch = 1G\nrate_client = 2.5 # c\n";
    assert_int_equal(rv_server_config_parse(&c, t, strlen(t), "s.conf", &d), 0);
    assert_string_equal(c.vault, "/v # kept");
    assert_string_equal(c.tls_cert, "/c#x");
    assert_true(c.dev);
    assert_int_equal(c.body_max_check, 32 * 1024);
    assert_int_equal(c.body_max_batch, 1024ull * 1024 * 1024);
    assert_true(fabs(c.policy.rate_client - 2.5) < 1e-9);
}

static void test_defaults_and_finish(void **state)
{
    const struct rv_server_config_key *keys;
    struct rv_server_config c;
    struct rv_diag d;
    size_t n;

    (void)state;
    keys = rv_server_config_keys(&n);
    rv_server_config_defaults(&c);
    assert_int_equal(c.set_mask, 0);
    for (size_t i = 0; i < n; i++)
        if (keys[i].def[0] != '\0')
            assert_int_equal(rv_server_config_set(&c, keys[i].name, keys[i].def, &d), 0);
    rv_server_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8443");
    assert_int_equal(c.session_idle, 900);
    assert_int_equal(c.session_max, 28800);
    assert_int_equal(c.policy.budget_checker, 300);
    /* Cross-key rules. */
    rv_diag_clear(&d);
    assert_int_equal(rv_server_config_finish(&c, &d), RV_EINVAL);
    assert_non_null(strstr(d.msg, "vault"));
    assert_int_equal(rv_server_config_set(&c, "vault", "/v", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), RV_EINVAL);
    assert_non_null(strstr(d.msg, "tls_cert"));
    assert_int_equal(rv_server_config_set(&c, "tls_cert", "/c.pem", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), RV_EINVAL);
    assert_int_equal(rv_server_config_set(&c, "tls_key", "/k.pem", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), 0);
    assert_int_equal(rv_server_config_set(&c, "session_idle", "30000", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), RV_EINVAL);
    assert_non_null(strstr(d.msg, "session_max"));
    assert_int_equal(rv_server_config_set(&c, "session_idle", "900", &d), 0);
    /* The policy's own rule: an alert file must be absolute. */
    assert_int_equal(rv_server_config_set(&c, "alert_file", "relative.log", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), RV_EINVAL);
    assert_non_null(strstr(d.msg, "alert_file"));
    assert_int_equal(rv_server_config_set(&c, "alert_file", "/var/log/a.log", &d), 0);
    assert_int_equal(rv_server_config_set(&c, "alert_command", "/bin/true", &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), 0);
    assert_string_equal(c.policy.alert_file, "/var/log/a.log");
    assert_string_equal(c.policy.alert_command, "/bin/true");
    /* Every policy key at both ends of its bounds passes the policy's own check. */
    for (size_t i = 0; i < n; i++) {
        char v[64];
        if (keys[i].offset < offsetof(struct rv_server_config, policy) ||
            keys[i].offset >=
                offsetof(struct rv_server_config, policy) + sizeof(struct rv_policy_config) ||
            (keys[i].type != RV_CFG_UINT && keys[i].type != RV_CFG_DOUBLE))
            continue;
        for (int end = 0; end < 2; end++) {
            struct rv_server_config e = c;
            snprintf(v, sizeof(v), "%.17g", end == 0 ? keys[i].min : keys[i].max);
            assert_int_equal(rv_server_config_set(&e, keys[i].name, v, &d), 0);
            rv_diag_clear(&d);
            assert_int_equal(rv_server_config_finish(&e, &d), 0);
        }
    }
}

static void test_sample_config(void **state)
{
    struct rv_server_config c;
    struct rv_diag d;
    char path[1024];
    const char *src = getenv("RV_SOURCE_DIR");

    (void)state;
    snprintf(path, sizeof(path), "%s/etc/regvault.conf", src != NULL ? src : ".");
    rv_server_config_defaults(&c);
    assert_int_equal(rv_server_config_load(&c, path, &d), 0);
    assert_int_equal(rv_server_config_finish(&c, &d), 0);
    assert_int_equal(strncmp(c.listen, "127.0.0.1:", 10), 0);
    assert_int_equal(rv_server_config_load(&c, "/nonexistent/regvault.conf", &d), RV_EIO);
    assert_non_null(strstr(d.msg, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_good),     cmocka_unit_test(test_every_key_bad),
        cmocka_unit_test(test_unknown_and_syntax), cmocka_unit_test(test_defaults_and_finish),
        cmocka_unit_test(test_sample_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
