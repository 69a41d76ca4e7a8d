/*
 * cmd_user.c - `regvault user`: the vault's principals, administered locally by whoever holds
 * the vault's secret (recorded as the OS user acting as admin).
 *
 * add, list, disable, reset, reinstate, budget and passwd call the principals' functions of
 * the access gate (policy.h), which record every change in the audit log. A person added or
 * reset is given a random password, to be changed at first login, and a TOTP secret, shown
 * once as an otpauth:// URI and, on a terminal, as a QR code of it drawn with half blocks.
 * Secrets are printed only to stdout, never to stderr, and wiped from memory after use.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const char *const VERB = "user";
#define PW_MAX 1024

enum cmd { C_NONE, C_ADD, C_LIST, C_DISABLE, C_RESET, C_REINSTATE, C_BUDGET, C_PASSWD };

static const struct {
    const char *name;
    enum cmd cmd;
    int args; /* positional arguments after the command */
    const char *usage;
} CMDS[] = {
    {"add", C_ADD, 1,
     "add NAME --role ROLE [--budget N] [--json] [--qr]\n"
     "       add NAME --role ROLE --service --cert-sha256 HEX [--budget N] [--json]\n\n"
     "Adds a person (password + TOTP) or, with --service, a service that logs in with a\n"
     "client certificate whose SHA-256 fingerprint (of the DER, 64 hex digits; colons are\n"
     "allowed) is pinned. A person is given a random password, which must be changed at\n"
     "first login, and a TOTP secret: both are printed once, with the otpauth:// URI for an\n"
     "authenticator app and, on a terminal or with --qr, a QR code of it.\n"
     "  --role ROLE       admin, registrar, checker, researcher or auditor\n"
     "  --budget N        electors the principal may be shown a day (0: the role's default)\n"
     "  --json            print {name, role, password, totp_uri} for scripts\n"},
    {"list", C_LIST, 0,
     "list [--json]\n\nLists the principals in name order, with their role, kind and state.\n"},
    {"disable", C_DISABLE, 1,
     "disable NAME\n\nDisables a principal: it can no longer log in (reinstate undoes it).\n"},
    {"reset", C_RESET, 1,
     "reset NAME [--json] [--qr]\n\n"
     "Issues a person a new random password and a new TOTP secret (the old ones stop working),\n"
     "to be changed at first login, and clears a lockout.\n"},
    {"reinstate", C_REINSTATE, 1,
     "reinstate NAME\n\n"
     "Lifts a suspension by the probing limits, or a disable, and clears a lockout.\n"},
    {"budget", C_BUDGET, 2,
     "budget NAME N\n\n"
     "Sets the electors the principal may be shown a day (0: the role's default).\n"},
    {"passwd", C_PASSWD, 1,
     "passwd NAME [--password-file F] [--new-password-file F]\n\n"
     "Changes a person's password after checking the current one. Without the files, both\n"
     "are asked on the terminal (the new one twice). A password file holds the password on\n"
     "its first line. The new password needs 12 characters or more, must not contain the\n"
     "user name and must not be a common password.\n"},
};
#define NCMDS (sizeof(CMDS) / sizeof(CMDS[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault user --vault DIR [--passphrase-file F | --key-file F] COMMAND\n\n"
               "Manages the vault's principals: people who log in with a password and a TOTP\n"
               "code, and services that log in with a client certificate. Every change is\n"
               "recorded in the audit log.\n\n"
               "Commands:\n"
               "  add NAME --role ROLE [--budget N] [--json] [--qr]\n"
               "                      add a person; prints an issued password and the TOTP\n"
               "                      enrolment (otpauth:// URI and QR code)\n"
               "  add NAME --role ROLE --service --cert-sha256 HEX [--budget N]\n"
               "                      add a service pinned to a client certificate\n"
               "  list [--json]       list the principals\n"
               "  disable NAME        stop a principal from logging in\n"
               "  reset NAME [--json] [--qr]\n"
               "                      issue a new password and TOTP secret\n"
               "  reinstate NAME      lift a suspension or a disable\n"
               "  budget NAME N       set the daily disclosure budget (0: the role's default)\n"
               "  passwd NAME [--password-file F] [--new-password-file F]\n"
               "                      change a person's password\n\n"
               "Names are 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a\n"
               "letter. Roles: admin, registrar, checker, researcher, auditor.\n"
               "`regvault user COMMAND --help` describes each command.\n"
               "Exit: 0 done, 1 failed (no such principal, name taken), 2 usage, 3 password\n"
               "refused as too weak, 4 wrong vault secret, 5 damaged record, 6 refused (wrong\n"
               "password, locked out, audit log unavailable).\n");
}

/* A fingerprint as 64 hex digits, with or without colons, in lower case into out. */
static bool cert_parse(const char *s, char out[65])
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == ':')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (n == 64 || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == 64;
}

/* ------------------------------------------------------------------------------------------
 * Passwords from files or the terminal, into sodium_malloc memory.
 */

static int read_pw_file(const char *path, char *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    if (fd < 0) {
        rv_cli_err(VERB, "cannot read password file %s: %s", path, strerror(errno));
        return RV_EXIT_FAIL;
    }
    while (len < PW_MAX && (n = read(fd, buf + len, PW_MAX - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len < PW_MAX ? len : PW_MAX] = '\0';
    len = strcspn(buf, "\r\n");
    if (len >= PW_MAX - 1) {
        rv_cli_err(VERB, "password file %s is too long: it should hold one line", path);
        return RV_EXIT_USAGE;
    }
    sodium_memzero(buf + len, PW_MAX + 1 - len);
    if (len == 0) {
        rv_cli_err(VERB, "password file %s is empty: put the password on its first line", path);
        return RV_EXIT_USAGE;
    }
    return RV_EXIT_OK;
}

static int prompt(const char *question, char *buf)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), rc = RV_EXIT_OK;
    bool restore = false;
    size_t len = 0;
    char c = 0;

    if (fd < 0) {
        rv_cli_err(VERB, "no terminal to ask the password on: use --password-file and "
                         "--new-password-file");
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
    while (rc == RV_EXIT_OK && read(fd, &c, 1) == 1 && c != '\n') {
        if (len + 1 >= PW_MAX) {
            rc = RV_EXIT_USAGE;
            break;
        }
        buf[len++] = c;
    }
    buf[len] = '\0';
    c = 0;
    if (restore)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0 && rc == RV_EXIT_OK)
        rc = RV_EXIT_FAIL;
    close(fd);
    if (rc == RV_EXIT_OK && len == 0) {
        rv_cli_err(VERB, "empty password refused");
        rc = RV_EXIT_USAGE;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Output.
 */

/* Draws uri as a QR code (error correction M) with Unicode half blocks, two modules a line,
 * light modules in the terminal's foreground colour (as `qrencode -t UTF8`). */
static void print_qr(const char *uri)
{
    QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    const int margin = 2;

    if (qr == NULL) {
        rv_cli_err(VERB, "could not draw the QR code: enter the URI in the app instead");
        return;
    }
    for (int y = -margin; y < qr->width + margin; y += 2) {
        for (int x = -margin; x < qr->width + margin; x++) {
            bool top = x >= 0 && x < qr->width && y >= 0 && y < qr->width &&
                       (qr->data[y * qr->width + x] & 1);
            bool bot = x >= 0 && x < qr->width && y + 1 >= 0 && y + 1 < qr->width &&
                       (qr->data[(y + 1) * qr->width + x] & 1);
            fputs(!top && !bot ? "\xe2\x96\x88" /* full block */
                  : !top       ? "\xe2\x96\x80" /* upper half */
                  : !bot       ? "\xe2\x96\x84" /* lower half */
                               : " ",
                  stdout);
        }
        fputc('\n', stdout);
    }
    sodium_memzero(qr->data, (size_t)qr->width * (size_t)qr->width);
    QRcode_free(qr);
}

static void print_credentials(const char *name, const char *role, const struct rv_credentials *c,
                              bool json, bool qr, bool reset)
{
    /* Names, roles, issued passwords and the URI need no JSON escaping. */
    if (json) {
        printf("{\"name\": \"%s\", \"role\": \"%s\", \"password\": \"%s\", \"totp_uri\": \"%s\"}\n",
               name, role, c->password, c->totp_uri);
        return;
    }
    printf("%s %s (%s)\n", reset ? "reset" : "added", name, role);
    printf("password: %s\n  (issued: it must be changed at the first login)\n", c->password);
    printf("TOTP enrolment (enter in an authenticator app, or scan the code below):\n  %s\n",
           c->totp_uri);
    if (qr)
        print_qr(c->totp_uri);
    printf("Give these to %s by a trusted channel; they are not shown again.\n", name);
}

struct list_ctx {
    bool json;
    unsigned n;
};

static int list_one(void *arg, const struct rv_principal *p)
{
    struct list_ctx *c = arg;
    char state[64] = "", created[11];
    const char *kind = p->kind == RV_PRINCIPAL_SERVICE ? "service" : "human";

    rv_date_format((rv_date)(p->created / 86400), created);
    if (c->json) {
        printf("%s\n  {\"name\": \"%s\", \"role\": \"%s\", \"kind\": \"%s\", \"disabled\": %s, "
               "\"suspended\": %s, \"must_change\": %s, \"budget\": %u, \"created\": \"%s\"",
               c->n == 0 ? "[" : ",", p->name, p->role, kind, p->disabled ? "true" : "false",
               p->suspended ? "true" : "false", p->must_change ? "true" : "false", p->budget,
               created);
        if (p->kind == RV_PRINCIPAL_SERVICE)
            printf(", \"cert_sha256\": \"%s\"", p->cert_sha256);
        printf("}");
    } else {
        if (c->n == 0)
            printf("%-24s %-10s %-7s %-22s %8s %s\n", "name", "role", "kind", "state", "budget",
                   "created");
        if (p->disabled)
            strcat(state, "disabled,");
        if (p->suspended)
            strcat(state, "suspended,");
        if (p->must_change)
            strcat(state, "must-change,");
        if (state[0] == '\0')
            strcpy(state, "active,");
        state[strlen(state) - 1] = '\0';
        if (p->budget == 0)
            printf("%-24s %-10s %-7s %-22s %8s %s\n", p->name, p->role, kind, state, "default",
                   created);
        else
            printf("%-24s %-10s %-7s %-22s %8u %s\n", p->name, p->role, kind, state, p->budget,
                   created);
    }
    c->n++;
    return 0;
}

/* The message and exit code for a library error on principal name. */
static int fail(const char *dir, const char *name, int err)
{
    switch (err) {
    case RV_EEXIST:
        rv_cli_err(VERB, "a principal named %s already exists: nothing was changed", name);
        return RV_EXIT_FAIL;
    case RV_ENOTFOUND:
        rv_cli_err(VERB, "no principal named %s in the vault (see regvault user list)", name);
        return RV_EXIT_FAIL;
    case RV_EINVAL:
        rv_cli_err(VERB,
                   "refused: %s is not a person (a service has no password to reset or "
                   "change)",
                   name);
        return RV_EXIT_USAGE;
    case RV_EWEAK:
        rv_cli_err(VERB, "the new password is too weak: it needs 12 characters or more, must not "
                         "contain the user name, must not be a common password and must differ "
                         "from the current one; nothing was changed");
        return RV_EXIT_INPUT;
    case RV_EAUTH:
        rv_cli_err(VERB, "the current password is wrong (the failure is recorded, and repeated "
                         "failures lock the principal out for a while)");
        return RV_EXIT_DENIED;
    case RV_ELOCKED:
        rv_cli_err(VERB, "%s is locked out after too many failed attempts: try again later", name);
        return RV_EXIT_DENIED;
    case RV_ESUSPENDED:
        rv_cli_err(VERB, "%s is suspended: an admin must reinstate it first", name);
        return RV_EXIT_DENIED;
    case RV_ECORRUPT:
        rv_cli_err(VERB,
                   "a principal's record in %s failed its integrity check and was refused: "
                   "restore the vault from a backup",
                   dir);
        return RV_EXIT_INTEGRITY;
    default:
        return rv_cli_open_error(VERB, dir, err);
    }
}

/* ------------------------------------------------------------------------------------------
 */

struct opts {
    const char *dir, *role, *cert, *pw_file, *new_pw_file, *budget;
    bool json, qr, service;
    const char *pos[4];
    size_t npos;
};

/* The arguments read so far, so that --help after a command word describes that command. */
static const struct rv_cli_args *help_args;

static void user_usage(FILE *f)
{
    for (size_t c = 0; help_args != NULL && help_args->n > 0 && c < NCMDS; c++)
        if (strcmp(help_args->v[0], CMDS[c].name) == 0) {
            fprintf(f,
                    "usage: regvault user --vault DIR [--passphrase-file F | --key-file F]\n"
                    "       %s",
                    CMDS[c].usage);
            return;
        }
    usage(f);
}

/* Reads the options and the command's words. Returns RV_CLI_GO_ON or the exit code. */
static int parse(int argc, char **argv, struct opts *o, struct rv_unseal_opts *uo)
{
    const struct rv_cli_option opts[] = {
        {"--vault", &o->dir, NULL},
        {"--role", &o->role, NULL},
        {"--cert-sha256", &o->cert, NULL},
        {"--password-file", &o->pw_file, NULL},
        {"--new-password-file", &o->new_pw_file, NULL},
        {"--budget", &o->budget, NULL},
        {"--json", NULL, &o->json},
        {"--qr", NULL, &o->qr},
        {"--service", NULL, &o->service},
    };
    struct rv_cli_args args = {.v = o->pos, .max = sizeof(o->pos) / sizeof(o->pos[0])};
    int rc;

    help_args = &args;
    rc = rv_cli_options_args(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), uo,
                             user_usage, &args);
    help_args = NULL;
    o->npos = args.n;
    return rc;
}

static int run(struct rv_gate *g, const struct opts *o, enum cmd cmd)
{
    struct rv_credentials *cred = NULL;
    char *old = NULL, *pw = NULL, *again = NULL;
    const char *name = o->npos > 1 ? o->pos[1] : "";
    uint64_t budget = 0;
    int err = 0, rc = RV_EXIT_OK;

    if (o->budget != NULL &&
        rv_cli_parse_u64(VERB, "--budget", o->budget, 0, UINT32_MAX, &budget) != 0)
        return RV_EXIT_USAGE;
    switch (cmd) {
    case C_ADD: {
        struct rv_principal p;
        memset(&p, 0, sizeof(p));
        snprintf(p.name, sizeof(p.name), "%s", name);
        snprintf(p.role, sizeof(p.role), "%s", o->role);
        p.kind = o->service ? RV_PRINCIPAL_SERVICE : RV_PRINCIPAL_HUMAN;
        p.budget = (uint32_t)budget;
        if (o->service) {
            (void)cert_parse(o->cert, p.cert_sha256);
            if ((err = rv_policy_user_add(g, &p, NULL)) == 0) {
                if (o->json)
                    printf("{\"name\": \"%s\", \"role\": \"%s\", \"kind\": \"service\", "
                           "\"cert_sha256\": \"%s\"}\n",
                           p.name, p.role, p.cert_sha256);
                else
                    printf("added service %s (%s), pinned to certificate %s\n", p.name, p.role,
                           p.cert_sha256);
            }
            break;
        }
        if ((cred = sodium_malloc(sizeof(*cred))) == NULL) {
            err = RV_ENOMEM;
            break;
        }
        if ((err = rv_policy_user_add(g, &p, cred)) == 0)
            print_credentials(p.name, p.role, cred, o->json,
                              !o->json && (o->qr || isatty(STDOUT_FILENO)), false);
        break;
    }
    case C_LIST: {
        struct list_ctx c = {o->json, 0};
        if ((err = rv_policy_user_list(g, list_one, &c)) == 0) {
            if (o->json)
                printf(c.n == 0 ? "[]\n" : "\n]\n");
            else if (c.n == 0)
                printf("no principals yet: add one with regvault user add\n");
        }
        break;
    }
    case C_DISABLE:
        if ((err = rv_policy_user_disable(g, name)) == 0)
            printf("disabled %s: it can no longer log in\n", name);
        break;
    case C_REINSTATE:
        if ((err = rv_policy_user_reinstate(g, name)) == 0)
            printf("reinstated %s\n", name);
        break;
    case C_BUDGET:
        if (rv_cli_parse_u64(VERB, "the budget", o->pos[2], 0, UINT32_MAX, &budget) != 0)
            return RV_EXIT_USAGE;
        if ((err = rv_policy_user_set_budget(g, name, (uint32_t)budget)) == 0) {
            if (budget == 0)
                printf("%s's budget is the role's default\n", name);
            else
                printf("%s's budget is %llu electors a day\n", name, (unsigned long long)budget);
        }
        break;
    case C_RESET: {
        struct rv_principal p;
        if ((cred = sodium_malloc(sizeof(*cred))) == NULL) {
            err = RV_ENOMEM;
            break;
        }
        if ((err = rv_policy_user_reset(g, name, cred)) == 0 &&
            (err = rv_policy_user_get(g, name, &p)) == 0)
            print_credentials(name, p.role, cred, o->json,
                              !o->json && (o->qr || isatty(STDOUT_FILENO)), true);
        break;
    }
    case C_PASSWD:
        old = sodium_malloc(PW_MAX + 1);
        pw = sodium_malloc(PW_MAX + 1);
        again = sodium_malloc(PW_MAX + 1);
        if (old == NULL || pw == NULL || again == NULL) {
            err = RV_ENOMEM;
            break;
        }
        rc = o->pw_file != NULL ? read_pw_file(o->pw_file, old) : prompt("Current password: ", old);
        if (rc == RV_EXIT_OK && o->new_pw_file != NULL) {
            rc = read_pw_file(o->new_pw_file, pw);
        } else if (rc == RV_EXIT_OK) {
            if ((rc = prompt("New password: ", pw)) == RV_EXIT_OK &&
                (rc = prompt("New password again: ", again)) == RV_EXIT_OK &&
                strcmp(pw, again) != 0) {
                rv_cli_err(VERB, "the two new passwords differ: nothing was changed");
                rc = RV_EXIT_USAGE;
            }
        }
        if (rc != RV_EXIT_OK)
            break;
        if ((err = rv_policy_change_password(g, name, old, pw, "local")) == 0)
            printf("%s's password changed\n", name);
        break;
    default:
        break;
    }
    if (err == RV_ENOMEM) {
        rv_cli_err(VERB, "out of memory");
        rc = RV_EXIT_FAIL;
    } else if (err != 0) {
        rc = fail(rv_policy_dir(g), name, err);
    }
    sodium_free(cred); /* sodium_free wipes */
    sodium_free(old);
    sodium_free(pw);
    sodium_free(again);
    return rc;
}

int rv_cmd_user(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct opts o;
    struct rv_gate *g = NULL;
    size_t c = NCMDS;
    int rc;

    memset(&o, 0, sizeof(o));
    if ((rc = parse(argc, argv, &o, &uo)) != RV_CLI_GO_ON)
        return rc;
    if (o.npos > 0)
        for (c = 0; c < NCMDS && strcmp(o.pos[0], CMDS[c].name) != 0; c++)
            ;
    if (o.npos == 0) {
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (c == NCMDS) {
        rv_cli_err(VERB, "unknown command '%s' (see regvault user --help)", o.pos[0]);
        return RV_EXIT_USAGE;
    }
    if ((int)o.npos - 1 != CMDS[c].args) {
        rv_cli_err(VERB, "%s takes %d argument%s: regvault user %.*s (see regvault user %s --help)",
                   CMDS[c].name, CMDS[c].args, CMDS[c].args == 1 ? "" : "s",
                   (int)strcspn(CMDS[c].usage, "\n"), CMDS[c].usage, CMDS[c].name);
        return RV_EXIT_USAGE;
    }
    if (o.dir == NULL) {
        rv_cli_err(VERB, "--vault DIR is required (see regvault user --help)");
        return RV_EXIT_USAGE;
    }
    /* Options that belong to another command, or that are missing. */
    if ((CMDS[c].cmd != C_ADD && (o.role != NULL || o.service || o.cert != NULL)) ||
        (CMDS[c].cmd != C_ADD && o.budget != NULL) ||
        (CMDS[c].cmd != C_PASSWD && (o.pw_file != NULL || o.new_pw_file != NULL)) ||
        (o.json && CMDS[c].cmd != C_ADD && CMDS[c].cmd != C_LIST && CMDS[c].cmd != C_RESET) ||
        (o.qr && CMDS[c].cmd != C_ADD && CMDS[c].cmd != C_RESET)) {
        rv_cli_err(VERB, "an option given does not apply to %s (see regvault user %s --help)",
                   CMDS[c].name, CMDS[c].name);
        return RV_EXIT_USAGE;
    }
    if (CMDS[c].args > 0 && !rv_principal_name_valid(o.pos[1])) {
        rv_cli_err(VERB,
                   "'%s' is not a valid principal name: names are 1 to 63 characters of "
                   "a-z, 0-9, '.', '_' and '-', starting with a letter",
                   o.pos[1]);
        return RV_EXIT_USAGE;
    }
    if (CMDS[c].cmd == C_ADD) {
        char fp[65];
        if (o.role == NULL || !rv_principal_role_valid(o.role)) {
            rv_cli_err(VERB, "add needs --role with one of admin, registrar, checker, "
                             "researcher, auditor");
            return RV_EXIT_USAGE;
        }
        if (o.service != (o.cert != NULL)) {
            rv_cli_err(VERB, "a service needs --service and --cert-sha256 HEX together; a person "
                             "has neither");
            return RV_EXIT_USAGE;
        }
        if (o.cert != NULL && !cert_parse(o.cert, fp)) {
            rv_cli_err(VERB, "--cert-sha256 wants the certificate's SHA-256 fingerprint: 64 hex "
                             "digits, with or without colons (openssl x509 -noout -fingerprint "
                             "-sha256)");
            return RV_EXIT_USAGE;
        }
    }
    if ((rc = rv_cli_gate_open(VERB, o.dir, &uo, "admin", &g)) != RV_EXIT_OK)
        return rc;
    rc = run(g, &o, CMDS[c].cmd);
    fflush(stdout);
    if (rv_policy_close(g) != 0 && rc == RV_EXIT_OK)
        rc = rv_cli_open_error(VERB, o.dir, RV_EAUDIT);
    return rc;
}
