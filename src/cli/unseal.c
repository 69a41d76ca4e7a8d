/*
 * unseal.c - how every verb gets the vault's secret and unseals it: one place, one set of
 * options, one set of messages and exit codes.
 *
 * Order: --key-file F, --passphrase-file F, the file named by REGVAULT_PASSPHRASE_FILE, and
 * last a passphrase typed on the controlling terminal with echo off (twice at init). A
 * passphrase file holds the passphrase, and one trailing newline is ignored. Secrets are
 * read into sodium_malloc memory and wiped after use.
 */
#include "cli/cli.h"
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASS_MAX 1024

int rv_cli_unseal_option(const char *verb, int argc, char **argv, int *i, struct rv_unseal_opts *o)
{
    static const char *const names[] = {"--passphrase-file", "--key-file"};
    const char *a = argv[*i];

    for (int n = 0; n < 2; n++) {
        size_t len = strlen(names[n]);
        const char *val = NULL;
        if (strncmp(a, names[n], len) != 0)
            continue;
        if (a[len] == '=') {
            val = a + len + 1;
        } else if (a[len] == '\0') {
            if (*i + 1 >= argc) {
                rv_cli_err(verb, "%s needs a file name (see regvault %s --help)", names[n], verb);
                return -1;
            }
            val = argv[++*i];
        } else {
            continue;
        }
        if (val[0] == '\0') {
            rv_cli_err(verb, "%s needs a file name (see regvault %s --help)", names[n], verb);
            return -1;
        }
        if (n == 0)
            o->passphrase_file = val;
        else
            o->key_file = val;
        ++*i;
        return 1;
    }
    return 0;
}

static int read_pass_file(const char *verb, const char *path, char *buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    *len = 0;
    if (fd < 0) {
        rv_cli_err(verb, "cannot read passphrase file %s: %s", path, strerror(errno));
        return RV_EXIT_FAIL;
    }
    while (*len < PASS_MAX && (n = read(fd, buf + *len, PASS_MAX - *len)) > 0)
        *len += (size_t)n;
    close(fd);
    if (*len >= PASS_MAX) {
        rv_cli_err(verb, "passphrase file %s is longer than %d bytes: it should hold one line",
                   path, PASS_MAX - 1);
        return RV_EXIT_USAGE;
    }
    if (*len > 0 && buf[*len - 1] == '\n')
        --*len;
    if (*len > 0 && buf[*len - 1] == '\r')
        --*len;
    if (*len == 0) {
        rv_cli_err(verb, "passphrase file %s is empty: put the passphrase on its first line", path);
        return RV_EXIT_USAGE;
    }
    return RV_EXIT_OK;
}

/* Reads one line from the terminal with echo off. */
static int prompt(const char *verb, const char *question, char *buf, size_t *len)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), rc = RV_EXIT_OK;
    bool restore = false;
    char c;
    ssize_t n;

    *len = 0;
    if (fd < 0) {
        rv_cli_err(verb, "no passphrase given and no terminal to ask on: use --passphrase-file, "
                         "--key-file or REGVAULT_PASSPHRASE_FILE");
        return RV_EXIT_USAGE;
    }
    if (write(fd, question, strlen(question)) < 0)
        rc = RV_EXIT_FAIL;
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    while (rc == RV_EXIT_OK && (n = read(fd, &c, 1)) == 1 && c != '\n') {
        if (*len + 1 >= PASS_MAX) {
            rc = RV_EXIT_USAGE;
            break;
        }
        buf[(*len)++] = c;
    }
    c = 0;
    if (restore)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0)
        rc = rc == RV_EXIT_OK ? RV_EXIT_FAIL : rc;
    close(fd);
    if (rc == RV_EXIT_OK && *len == 0) {
        rv_cli_err(verb, "empty passphrase refused");
        rc = RV_EXIT_USAGE;
    }
    return rc;
}

int rv_cli_secret(const char *verb, const struct rv_unseal_opts *o, bool confirm,
                  struct rv_vault_secret *sec)
{
    char *pass = NULL, *again = NULL;
    uint8_t *key = NULL;
    const char *env = getenv("REGVAULT_PASSPHRASE_FILE");
    size_t len = 0, len2 = 0;
    int rc = RV_EXIT_OK, err;

    memset(sec, 0, sizeof(*sec));
    if (sodium_init() < 0) {
        rv_cli_err(verb, "libsodium failed to initialise");
        return RV_EXIT_FAIL;
    }
    if (o->key_file != NULL && o->passphrase_file != NULL) {
        rv_cli_err(verb, "give either --key-file or --passphrase-file, not both");
        return RV_EXIT_USAGE;
    }
    if (o->key_file != NULL) {
        key = sodium_malloc(32);
        if (key == NULL)
            return RV_EXIT_FAIL;
        err = rv_vault_read_keyfile(o->key_file, key);
        if (err != 0) {
            if (err == RV_EINVAL)
                rv_cli_err(verb,
                           "key file %s must hold exactly 32 bytes, or 64 hex digits: make one "
                           "with 'head -c 32 /dev/urandom > FILE'",
                           o->key_file);
            else
                rv_cli_err(verb, "cannot read key file %s: %s", o->key_file, rv_strerror(err));
            sodium_free(key);
            return err == RV_EINVAL ? RV_EXIT_USAGE : RV_EXIT_FAIL;
        }
        sec->keyfile = key;
        return RV_EXIT_OK;
    }
    pass = sodium_malloc(PASS_MAX);
    if (pass == NULL)
        return RV_EXIT_FAIL;
    if (o->passphrase_file != NULL) {
        rc = read_pass_file(verb, o->passphrase_file, pass, &len);
    } else if (env != NULL && env[0] != '\0') {
        rc = read_pass_file(verb, env, pass, &len);
    } else {
        rc = prompt(verb, "Vault passphrase: ", pass, &len);
        if (rc == RV_EXIT_OK && confirm) {
            again = sodium_malloc(PASS_MAX);
            if (again == NULL) {
                rc = RV_EXIT_FAIL;
            } else {
                rc = prompt(verb, "Same passphrase again: ", again, &len2);
                if (rc == RV_EXIT_OK && (len2 != len || sodium_memcmp(pass, again, len) != 0)) {
                    rv_cli_err(verb, "the two passphrases differ: nothing was created");
                    rc = RV_EXIT_USAGE;
                }
                sodium_memzero(again, PASS_MAX);
                sodium_free(again);
            }
        }
    }
    if (rc != RV_EXIT_OK) {
        sodium_memzero(pass, PASS_MAX);
        sodium_free(pass);
        return rc;
    }
    sec->passphrase = pass;
    sec->passphrase_len = len;
    return RV_EXIT_OK;
}

void rv_cli_secret_free(struct rv_vault_secret *sec)
{
    if (sec->passphrase != NULL) {
        sodium_memzero((void *)sec->passphrase, PASS_MAX);
        sodium_free((void *)sec->passphrase);
    }
    if (sec->keyfile != NULL) {
        sodium_memzero((void *)sec->keyfile, 32);
        sodium_free((void *)sec->keyfile);
    }
    memset(sec, 0, sizeof(*sec));
}
