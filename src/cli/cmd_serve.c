/*
 * cmd_serve.c - `regvault serve`: the HTTPS daemon's front door. Reads the settings (the
 * config file, then the command line), makes or reads the TLS certificate, binds, drops
 * root, unseals the vault through the access gate exactly as the other verbs do, and
 * serves (src/server/) until SIGTERM or SIGINT, when it stops accepting, lets the requests
 * in flight finish, and closes the gate, which signs a final checkpoint.
 *
 * Hardening: no core dumps (RLIMIT_CORE 0, PR_SET_DUMPABLE 0) from the start, JSON buffers
 * wiped when freed, keys only in the gate's sodium_malloc memory, and when started as root
 * it runs as the vault's owner (or `user`) after binding, and checks that root cannot be
 * regained.
 */
#include "cli/cli.h"
#include "policy/policy.h"
#include "server/server.h"
#include "vault/vault.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static const char *const VERB = "serve";

static void usage(FILE *f)
{
    const struct rv_server_config_key *k;
    size_t n;

    fprintf(f,
            "usage: regvault serve --vault DIR [--listen ADDR:PORT] [--dev] [--config FILE]\n"
            "                      [--passphrase-file F | --key-file F] [--KEY VALUE ...]\n"
            "       regvault serve --check-config [--config FILE] [--KEY VALUE ...]\n"
            "\n"
            "Serves the HTTPS API (docs/api.md) on the vault until SIGTERM or SIGINT. The vault\n"
            "is unsealed at start (passphrase asked on the terminal, or --passphrase-file,\n"
            "--key-file, REGVAULT_PASSPHRASE_FILE). --dev makes a self-signed certificate for\n"
            "localhost in DIR/dev-tls/ (reused) and prints its fingerprint; with --listen\n"
            "127.0.0.1:0 a free port is chosen and printed ('listening on https://...').\n"
            "\n"
            "  --config FILE    read settings from FILE (key = value, # comments)\n"
            "  --check-config   check the settings and exit (0 good, 3 bad)\n"
            "  --KEY VALUE      any setting below (--dev alone means dev = yes)\n"
            "\n"
            "Settings (config key, type, default):\n");
    k = rv_server_config_keys(&n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-27s %-12s %-15s %s\n", k[i].name, rv_server_config_type_name(k[i].type),
                k[i].def[0] != '\0' ? k[i].def : "-", k[i].help);
    fprintf(f, "\nExit codes: 0 stopped cleanly, 1 failure, 2 usage, 3 bad settings, 4 wrong\n"
               "passphrase or key, 5 the vault failed an integrity check, 6 the audit log\n"
               "could not be written.\n");
}

/* ---- hardening ------------------------------------------------------------------------ */

/* jansson's buffers hold passwords and register data: wipe them when freed. Plain malloc
 * underneath, so that memory jansson hands out (json_dumps) may still be released with
 * free() by code that does not know about this. */
static void *json_wipe_malloc(size_t n)
{
    return malloc(n);
}

static void json_wipe_free(void *p)
{
    if (p == NULL)
        return;
    sodium_memzero(p, malloc_usable_size(p));
    free(p);
}

static int no_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        rv_cli_err(VERB, "cannot turn core dumps off: %s", strerror(errno));
        return RV_EXIT_FAIL;
    }
    return RV_EXIT_OK;
}

/* The user the daemon runs as when started as root: user, or the vault folder's owner. */
static int target_user(const char *user, const char *vault, uid_t *uidp, gid_t *gidp)
{
    uid_t uid;
    gid_t gid;

    if (user[0] != '\0') {
        struct passwd *pw = getpwnam(user);
        if (pw == NULL) {
            rv_cli_err(VERB, "no such user '%s' to run as: set user = NAME to an existing user",
                       user);
            return RV_EXIT_USAGE;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    } else {
        struct stat st;
        if (stat(vault, &st) != 0) {
            rv_cli_err(VERB, "cannot read %s: %s", vault, strerror(errno));
            return RV_EXIT_FAIL;
        }
        uid = st.st_uid;
        gid = st.st_gid;
    }
    *uidp = uid;
    *gidp = gid;
    return RV_EXIT_OK;
}

/* A development certificate made by root belongs to the user the daemon will run as, so
 * that a later start without root can read it. */
static void give_dev_tls(const char *user, const char *vault)
{
    char p[RV_SERVER_PATH_MAX + 32];
    struct stat st;
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0 || target_user(user, vault, &uid, &gid) != RV_EXIT_OK || uid == 0)
        return;

    /* lchown, and never a folder that is a link: the vault's owner controls dev-tls/, and
     * root following a planted link would hand any file to that owner. */
    snprintf(p, sizeof(p), "%s/dev-tls", vault);
    if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    (void)!lchown(p, uid, gid);
    snprintf(p, sizeof(p), "%s/dev-tls/cert.pem", vault);
    (void)!lchown(p, uid, gid);
    snprintf(p, sizeof(p), "%s/dev-tls/key.pem", vault);
    (void)!lchown(p, uid, gid);
}

/* When root: become user (or the vault folder's owner) and check root is gone for good. */
static int drop_root(const char *user, const char *vault)
{
    uid_t uid;
    gid_t gid;
    int rc;

    if (geteuid() != 0 && getuid() != 0)
        return RV_EXIT_OK;
    if ((rc = target_user(user, vault, &uid, &gid)) != RV_EXIT_OK)
        return rc;
    if (uid == 0) {
        /* The vault's owner is root (or user = root): there is nobody to become. */
        fprintf(stderr,
                "regvault serve: warning: running as root, because %s belongs to %s; give the "
                "vault to an unprivileged user (or set user = NAME) so that the daemon drops "
                "root after binding\n",
                user[0] != '\0' ? "user" : vault, user[0] != '\0' ? "root" : "root");
        return RV_EXIT_OK;
    }
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        rv_cli_err(VERB, "cannot drop root privileges: %s", strerror(errno));
        return RV_EXIT_FAIL;
    }
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
        getgid() != gid || getegid() != gid) {
        rv_cli_err(VERB, "root privileges could be regained after dropping them: refusing to "
                         "serve");
        return RV_EXIT_FAIL;
    }
    /* setuid resets the dumpable flag. */
    return no_core_dumps();
}

/* Uploads are held in memory now, but a daemon of an earlier version spooled them under
 * <vault>/tmp, and one that crashed may have left register or donor data there: remove such
 * files and the folder, which nothing creates any more. */
static void clean_old_uploads(const char *vault)
{
    char dir[RV_SERVER_PATH_MAX + 8], path[RV_SERVER_PATH_MAX + 300];
    struct dirent *e;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/tmp", vault);
    if ((d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "batch-", 6) == 0 || strncmp(e->d_name, "ingest-", 7) == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    (void)rmdir(dir);
}

/* ---- settings ------------------------------------------------------------------------- */

static int config_error(const struct rv_diag *d)
{
    char buf[700];
    rv_cli_err(VERB, "%s", rv_diag_format(d, buf, sizeof(buf)));
    return RV_EXIT_INPUT;
}

/* Applies --KEY VALUE options (and --dev alone); skips those handled elsewhere. */
static int apply_options(int argc, char **argv, struct rv_server_config *c,
                         struct rv_unseal_opts *uo, const char **config, bool *check)
{
    struct rv_diag d;
    int i = 1;

    while (i < argc) {
        const char *o = argv[i];
        char key[64], *eq;
        const char *val = NULL;
        int u = rv_cli_unseal_option(VERB, argc, argv, &i, uo);
        size_t n, nk;
        const struct rv_server_config_key *keys = rv_server_config_keys(&nk), *k = NULL;

        if (u < 0)
            return RV_EXIT_USAGE;
        if (u > 0)
            continue;
        if (strcmp(o, "--check-config") == 0) {
            *check = true;
            i++;
            continue;
        }
        if (strcmp(o, "--config") == 0 || strncmp(o, "--config=", 9) == 0) {
            if (o[8] == '=')
                *config = o + 9;
            else if (i + 1 < argc)
                *config = argv[++i];
            else {
                rv_cli_err(VERB, "--config needs a file name");
                return RV_EXIT_USAGE;
            }
            i++;
            continue;
        }
        if (strncmp(o, "--", 2) != 0) {
            rv_cli_err(VERB, "unexpected argument '%s' (see regvault serve --help)", o);
            return RV_EXIT_USAGE;
        }
        snprintf(key, sizeof(key), "%s", o + 2);
        if ((eq = strchr(key, '=')) != NULL) {
            *eq = '\0';
            val = strchr(o, '=') + 1;
        }
        for (char *p = key; *p != '\0'; p++)
            if (*p == '-')
                *p = '_';
        for (n = 0; n < nk; n++)
            if (strcmp(keys[n].name, key) == 0)
                k = &keys[n];
        if (k == NULL) {
            rv_cli_err(VERB, "unknown option '%s' (see regvault serve --help)", o);
            return RV_EXIT_USAGE;
        }
        if (val == NULL) {
            if (k->type == RV_CFG_BOOL)
                val = "yes";
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                rv_cli_err(VERB, "%s needs a value (see regvault serve --help)", o);
                return RV_EXIT_USAGE;
            }
        }
        rv_diag_clear(&d);
        snprintf(d.file, sizeof(d.file), "command line");
        if (rv_server_config_set(c, key, val, &d) != 0)
            return config_error(&d);
        i++;
    }
    return RV_EXIT_OK;
}

/* ---- serving -------------------------------------------------------------------------- */

static int read_pem(const char *what, const char *path, char **out)
{
    int rc = rv_server_read_file(path, out, NULL);
    if (rc != 0) {
        rv_cli_err(VERB, "cannot read the %s %s: %s", what, path,
                   rc == RV_EIO ? strerror(errno) : rv_strerror(rc));
        return RV_EXIT_FAIL;
    }
    return RV_EXIT_OK;
}

int rv_cmd_serve(int argc, char **argv)
{
    struct rv_server_config cfg, cli;
    struct rv_unseal_opts uo = {0};
    struct rv_vault_secret sec;
    struct rv_actor who;
    struct rv_diag d;
    struct rv_server *srv = NULL;
    struct rv_gate *gate = NULL;
    const char *config = NULL;
    char *cert = NULL, *key = NULL, *ca = NULL, fp[96], cert_path[RV_SERVER_PATH_MAX + 32],
         hdr[RV_SERVER_PATH_MAX + 16], host[256];
    bool check = false, have_sec = false;
    int rc = RV_EXIT_OK, err, fd = -1, port = 0, log_fd = -1;
    sigset_t sigs;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return RV_EXIT_OK;
        }
    json_set_alloc_funcs(json_wipe_malloc, json_wipe_free);
    if (sodium_init() < 0) {
        rv_cli_err(VERB, "libsodium failed to initialise");
        return RV_EXIT_FAIL;
    }
    if ((rc = no_core_dumps()) != RV_EXIT_OK)
        return rc;

    /* The file first, then the command line over it: options are read twice, the first
     * time only to find --config. */
    rv_server_config_defaults(&cli);
    if ((rc = apply_options(argc, argv, &cli, &uo, &config, &check)) != RV_EXIT_OK)
        return rc;
    rv_server_config_defaults(&cfg);
    if (config != NULL && (err = rv_server_config_load(&cfg, config, &d)) != 0)
        return config_error(&d);
    memset(&uo, 0, sizeof(uo));
    if ((rc = apply_options(argc, argv, &cfg, &uo, &config, &check)) != RV_EXIT_OK)
        return rc;
    rv_diag_clear(&d);
    snprintf(d.file, sizeof(d.file), "%s", config != NULL ? config : "command line");
    if (rv_server_config_finish(&cfg, &d) != 0) {
        if (d.file[0] == '\0')
            snprintf(d.file, sizeof(d.file), "%s", config != NULL ? config : "command line");
        return config_error(&d);
    }
    if (check) {
        fprintf(stderr, "regvault serve: %s: the settings are good\n",
                config != NULL ? config : "command line");
        return RV_EXIT_OK;
    }

    snprintf(hdr, sizeof(hdr), "%s/vault.hdr", cfg.vault);
    if (access(hdr, F_OK) != 0)
        return rv_cli_open_error(VERB, cfg.vault, RV_ENOTFOUND);
    if (cfg.tls_cert[0] != '\0') {
        if ((rc = read_pem("certificate", cfg.tls_cert, &cert)) != RV_EXIT_OK ||
            (rc = read_pem("private key", cfg.tls_key, &key)) != RV_EXIT_OK)
            goto out;
    } else {
        rv_diag_clear(&d);
        if (rv_server_dev_cert(cfg.vault, &cert, &key, fp, cert_path, sizeof(cert_path), &d) != 0) {
            rc = config_error(&d);
            goto out;
        }
        give_dev_tls(cfg.user, cfg.vault);
        fprintf(stderr,
                "regvault serve: development certificate %s\n"
                "regvault serve: SHA-256 fingerprint %s\n"
                "regvault serve: (curl --cacert %s https://localhost:PORT/healthz)\n",
                cert_path, fp, cert_path);
    }
    if (cfg.tls_client_ca[0] != '\0' &&
        (rc = read_pem("client CA file", cfg.tls_client_ca, &ca)) != RV_EXIT_OK)
        goto out;
    rv_diag_clear(&d);
    if (rv_server_bind(cfg.listen, &fd, &port, &d) != 0) {
        rv_cli_err(VERB, "%s", d.msg);
        rc = RV_EXIT_FAIL;
        goto out;
    }
    /* The secret is read before root is dropped: a passphrase typed on a terminal that only
     * root may open, or a key file only root may read. */
    if ((rc = rv_cli_secret(VERB, &uo, false, &sec)) != RV_EXIT_OK)
        goto out;
    have_sec = true;
    if ((rc = drop_root(cfg.user, cfg.vault)) != RV_EXIT_OK)
        goto out;
    if (cfg.log_file[0] != '\0') {
        if ((log_fd = open(cfg.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
            rv_cli_err(VERB, "cannot open the log file %s: %s", cfg.log_file, strerror(errno));
            rc = RV_EXIT_FAIL;
            goto out;
        }
    } else if ((log_fd = fcntl(2, F_DUPFD_CLOEXEC, 3)) < 0) {
        rc = RV_EXIT_FAIL;
        goto out;
    }
    clean_old_uploads(cfg.vault);

    /* Every thread started from here on (the audit log's, the store's prefetch,
     * libmicrohttpd's) inherits this mask: only the main thread takes these signals, with
     * sigtimedwait, so that a SIGTERM always ends in an orderly stop with a final
     * checkpoint (one that came while the vault was opening waits for the main loop). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    rv_cli_actor("admin", &who);
    err = rv_policy_open(cfg.vault, &sec, &who, &gate);
    rv_cli_secret_free(&sec);
    have_sec = false;
    if (err != 0) {
        gate = NULL;
        rc = rv_cli_open_error(VERB, cfg.vault, err);
        goto out;
    }
    rv_policy_prefetch(gate);
    rv_diag_clear(&d);
    if ((err = rv_policy_configure(gate, &cfg.policy, &d)) != 0) {
        rc = config_error(&d);
        goto out;
    }
    if ((err = rv_server_new(&cfg, gate, log_fd, NULL, NULL, &srv)) != 0) {
        rv_cli_err(VERB, "cannot start: %s", rv_strerror(err));
        rc = RV_EXIT_FAIL;
        goto out;
    }
    {
        char params[320];
        snprintf(params, sizeof(params), "serve listen=%.200s port=%d", cfg.listen, port);
        if (rv_policy_record(gate, RV_ACT_REQUEST, params, "started", NULL, 0) != 0) {
            rc = rv_cli_open_error(VERB, cfg.vault, RV_EAUDIT);
            goto out;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (ulimit -f) must fail the write, and so the audit log (every answer
     * then 503), rather than kill the daemon. */
    signal(SIGXFSZ, SIG_IGN);
    rv_diag_clear(&d);
    if (rv_server_start(srv, fd, cert, key, ca, &d) != 0) {
        rv_cli_err(VERB, "%s", d.msg);
        rc = RV_EXIT_FAIL;
        goto out;
    }
    fd = -1; /* libmicrohttpd's now */
    snprintf(host, sizeof(host), "%s", cfg.listen);
    host[strlen(host) - strlen(strrchr(host, ':'))] = '\0';
    fprintf(stderr, "regvault serve: listening on https://%s:%d\n", host, port);
    for (;;) {
        struct timespec t = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &t);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        rv_server_tick(srv);
    }
    fprintf(stderr, "regvault serve: stopping\n");
    rv_server_stop(srv, 10000);
    if (rv_policy_record(gate, RV_ACT_REQUEST, "serve stop", "stopped", NULL, 0) != 0 &&
        rc == RV_EXIT_OK) {
        rv_cli_err(VERB, "the audit log could not record the stop");
        rc = RV_EXIT_DENIED;
    }
out:
    if (have_sec)
        rv_cli_secret_free(&sec);
    rv_server_free(srv);
    if (gate != NULL && (err = rv_policy_close(gate)) != 0) {
        rv_cli_err(VERB, "the audit log's closing checkpoint could not be signed: %s",
                   rv_strerror(err));
        if (rc == RV_EXIT_OK)
            rc = RV_EXIT_DENIED;
    }
    if (fd >= 0)
        close(fd);
    if (log_fd >= 0)
        close(log_fd);
    if (key != NULL) {
        sodium_memzero(key, strlen(key));
        free(key);
    }
    free(cert);
    free(ca);
    return rc;
}
