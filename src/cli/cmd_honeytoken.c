/*
 * cmd_honeytoken.c - `regvault honeytoken create`: makes a decoy credential (user name,
 * password, TOTP secret, API token) and writes it as a realistic credentials file, to be
 * left where an intruder would look. Any use of it raises a high alert with the client's
 * address. The label says where it will be planted; it is never written into the file.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const VERB = "honeytoken";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: regvault honeytoken create --vault DIR --label TEXT [--format env|json|ini]\n"
            "                                  [--url URL] [--out FILE]\n"
            "                                  [--passphrase-file F | --key-file F]\n\n"
            "Makes a decoy credential that belongs to nobody and prints it (or writes it to\n"
            "FILE, mode 0600, never over an existing file) as a credentials file in the format\n"
            "asked for (env by default). Plant it where an intruder would look; using its user\n"
            "name or its token against the daemon raises a high alert (see regvault alerts)\n"
            "whose detail is the label, so say where you plant it: --label \"finance file\n"
            "share\". --url is the daemon's address written into the file (default\n"
            "https://<this host>:8443). Acts as admin; recorded, without the label.\n");
}

static int write_out(const char *path, const char *text)
{
    size_t n = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0)
        return errno == EEXIST ? RV_EEXIST : RV_EIO;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return RV_EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(path);
        return RV_EIO;
    }
    return 0;
}

int rv_cmd_honeytoken(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_gate *g = NULL;
    const char *dir = NULL, *label = NULL, *url = NULL, *out = NULL, *fmt = "env";
    enum rv_honeytoken_format format = RV_HONEYTOKEN_ENV;
    char host[256], defurl[300], *text = NULL;
    int rc, err;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RV_EXIT_USAGE : RV_EXIT_OK;
    }
    if (strcmp(argv[1], "create") != 0) {
        rv_cli_err(VERB, "'%s' is not a honeytoken command (see regvault honeytoken --help)",
                   argv[1]);
        return RV_EXIT_USAGE;
    }
    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL}, {"--label", &label, NULL}, {"--format", &fmt, NULL},
            {"--url", &url, NULL},   {"--out", &out, NULL},
        };
        rc = rv_cli_options(VERB, argc, argv, 2, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
    }
    if (dir == NULL || label == NULL) {
        rv_cli_err(VERB, "--vault DIR and --label TEXT are required (see regvault honeytoken "
                         "--help)");
        return RV_EXIT_USAGE;
    }
    if (strcmp(fmt, "env") == 0)
        format = RV_HONEYTOKEN_ENV;
    else if (strcmp(fmt, "json") == 0)
        format = RV_HONEYTOKEN_JSON;
    else if (strcmp(fmt, "ini") == 0)
        format = RV_HONEYTOKEN_INI;
    else {
        rv_cli_err(VERB, "--format must be env, json or ini");
        return RV_EXIT_USAGE;
    }
    if (url == NULL) {
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(defurl, sizeof(defurl), "https://%s:8443", host);
        url = defurl;
    }
    rc = rv_cli_gate_open(VERB, dir, &uo, "admin", &g);
    if (rc != RV_EXIT_OK)
        return rc;
    err = rv_policy_honeytoken_create(g, label, format, url, &text);
    if (err == RV_EAUDIT || err == RV_EDENIED) {
        rc = rv_cli_open_error(VERB, dir, err);
    } else if (err == RV_EINVAL) {
        rv_cli_err(VERB, "the label must be 1 to 128 characters on one line, and the URL one "
                         "word without quotes");
        rc = RV_EXIT_USAGE;
    } else if (err != 0) {
        rv_cli_err(VERB, "cannot create the honeytoken: %s", rv_strerror(err));
        rc = rv_cli_exit_for(err);
    } else if (out != NULL) {
        err = write_out(out, text);
        if (err == RV_EEXIST) {
            rv_cli_err(VERB,
                       "%s already exists: not overwritten (the decoy is recorded; make "
                       "another with a new --out)",
                       out);
            rc = RV_EXIT_FAIL;
        } else if (err != 0) {
            rv_cli_err(VERB, "cannot write %s: %s", out, strerror(errno));
            rc = RV_EXIT_FAIL;
        } else {
            fprintf(stderr, "regvault honeytoken: decoy credentials written to %s\n", out);
        }
    } else {
        fputs(text, stdout);
    }
    if (text != NULL) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    if (rv_policy_close(g) != 0 && rc == RV_EXIT_OK)
        rc = rv_cli_open_error(VERB, dir, RV_EAUDIT);
    return rc;
}
