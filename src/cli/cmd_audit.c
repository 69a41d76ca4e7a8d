/*
 * cmd_audit.c - `regvault audit`: verify and read the tamper-evident audit log.
 *
 * Everything here reads DIR/audit/ without unsealing the vault: the log keeps its verifier
 * key beside it, so an auditor needs no secret to check it. Proofs and checkpoints are
 * printed in standard formats (RFC 9162 hashes in base64, C2SP signed notes) so that they
 * can be checked again elsewhere with independent tools. Exit codes: 0 success, 1 failure,
 * 2 usage, 5 the log failed verification.
 */
#include "audit/audit.h"
#include "cli/cli.h"
#include "policy/policy.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VERB "audit"

struct opts {
    const char *vault;
    const char *key;                                    /* verify: trusted verifier key string */
    const char *key_file;                               /* verify: file holding it */
    const char *vault_passphrase_file, *vault_key_file; /* subject: how to unseal */
    const char *checkpoint;                             /* verify: trusted checkpoint file */
    const char *name, *postcode;
    const char *index, *size, *from, *to;
    bool json;
};

static const char *const usage_text =
    "usage: regvault audit <command> --vault DIR [options]\n"
    "\n"
    "Reads and verifies the vault's audit log (DIR/audit/) without unsealing anything.\n"
    "\n"
    "Commands:\n"
    "  verify       recompute every entry, hash and checkpoint; exit 5 naming the first bad\n"
    "               entry or checkpoint\n"
    "      --trusted-key VKEY | --trusted-key-file FILE\n"
    "                                     the verifier key kept elsewhere (trusted copy)\n"
    "      --checkpoint FILE              a signed checkpoint kept elsewhere; the log must\n"
    "                                     extend it\n"
    "  checkpoint   print the latest signed checkpoint (C2SP signed note)\n"
    "  key          print the verifier key (name+keyid+base64 key)\n"
    "  proof        --index N [--size M]: inclusion proof of entry N in the tree of M entries\n"
    "               (default: the latest checkpoint's size), as JSON\n"
    "  consistency  --from A --to B: consistency proof between tree sizes A and B, as JSON\n"
    "  show         [--from A] [--to B] [--json]: list entries A (default 0) up to B\n"
    "               (exclusive; default the end), as a table or JSON lines\n"
    "  subject      --name NAME --postcode PC: entries that disclosed this elector, for a\n"
    "               subject access request (unseals the vault: --passphrase-file F or\n"
    "               --key-file F; the search is itself recorded)\n"
    "\n"
    "Every command takes --help. Exit codes: 0 success, 1 failure, 2 usage error,\n"
    "5 the log failed verification (tampering or corruption).\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "regvault audit: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see regvault audit --help)\n");
    return RV_EXIT_USAGE;
}

/* The help of the command being read, for rv_cli_options' --help. */
static const char *cmd_help;

static void cmd_usage(FILE *f)
{
    fputs(cmd_help, f);
}

/* Parses the options after the command word: --vault and those the command allows (the words
 * in allowed, each between spaces). Returns RV_CLI_GO_ON, or the exit code to return. */
static int parse(int argc, char **argv, struct opts *o, const char *allowed, const char *help)
{
    const struct {
        const char *word;
        struct rv_cli_option opt;
    } all[] = {
        {"vault", {"--vault", &o->vault, NULL}},
        {"trusted-key", {"--trusted-key", &o->key, NULL}},
        {"trusted-key-file", {"--trusted-key-file", &o->key_file, NULL}},
        {"passphrase-file", {"--passphrase-file", &o->vault_passphrase_file, NULL}},
        {"key-file", {"--key-file", &o->vault_key_file, NULL}},
        {"checkpoint", {"--checkpoint", &o->checkpoint, NULL}},
        {"name", {"--name", &o->name, NULL}},
        {"postcode", {"--postcode", &o->postcode, NULL}},
        {"index", {"--index", &o->index, NULL}},
        {"size", {"--size", &o->size, NULL}},
        {"from", {"--from", &o->from, NULL}},
        {"to", {"--to", &o->to, NULL}},
        {"json", {"--json", NULL, &o->json}},
    };
    struct rv_cli_option opts[sizeof(all) / sizeof(all[0])];
    size_t n = 0;
    char word[32];

    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
        snprintf(word, sizeof(word), " %s ", all[k].word);
        if (k == 0 || strstr(allowed, word) != NULL)
            opts[n++] = all[k].opt;
    }
    cmd_help = help;
    return rv_cli_options(VERB, argc, argv, 2, opts, n, NULL, cmd_usage);
}

static int open_log(const struct opts *o, struct rv_audit_log **log)
{
    char path[4096];
    int rc;

    if (o->vault == NULL)
        return usage_error("%s", "--vault DIR is required");
    if ((size_t)snprintf(path, sizeof(path), "%s/audit", o->vault) >= sizeof(path))
        return usage_error("%s", "--vault path is too long");
    rc = rv_audit_open_ro(path, log);
    if (rc == RV_ENOTFOUND) {
        rv_cli_err(VERB, "%s holds no audit log (is --vault the vault's directory?)", path);
        return RV_EXIT_FAIL;
    }
    if (rc == RV_ECORRUPT || rc == RV_EVERSION) {
        rv_cli_err(VERB, "%s: a log file has a bad header or key: %s", path, rv_strerror(rc));
        return RV_EXIT_INTEGRITY;
    }
    if (rc != 0) {
        rv_cli_err(VERB, "cannot open %s: %s", path, rv_strerror(rc));
        return RV_EXIT_FAIL;
    }
    return -1;
}

/* Reads a small text file whole; returns NULL (with a message) on failure. */
static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        rv_cli_err(VERB, "cannot read %s", path);
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf != NULL) {
        n = fread(buf, 1, max + 1, f);
        if (n > max) {
            rv_cli_err(VERB, "%s is larger than %zu bytes: is it a checkpoint or key?", path, max);
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int cmd_verify(struct rv_audit_log *log, const struct opts *o)
{
    struct rv_audit_report r;
    char *vkey = NULL, *note = NULL;
    int rc, ex = RV_EXIT_FAIL;

    if (o->key != NULL && o->key_file != NULL)
        return usage_error("%s", "give --trusted-key or --trusted-key-file, not both");
    if (o->key != NULL)
        vkey = strdup(o->key);
    else if (o->key_file != NULL && (vkey = slurp(o->key_file, RV_AUDIT_VKEY_MAX)) == NULL)
        goto out;
    if (vkey != NULL)
        vkey[strcspn(vkey, "\r\n")] = '\0';
    if (o->checkpoint != NULL && (note = slurp(o->checkpoint, RV_AUDIT_NOTE_MAX)) == NULL)
        goto out;
    rc = rv_audit_verify(log, vkey, note, &r);
    if (rc == RV_EINVAL) {
        ex = usage_error("%s", "the --trusted-key value is not a verifier key (name+keyid+key)");
        goto out;
    }
    if (rc == RV_ENOMEM || rc == RV_EIO) {
        rv_cli_err(VERB, "could not read the log: %s", rv_strerror(rc));
        goto out;
    }
    if (rc != 0) {
        if (r.bad_index != UINT64_MAX && r.bad_checkpoint >= 0)
            rv_cli_err(VERB, "verification FAILED at entry %llu (checkpoint %lld): %s",
                       (unsigned long long)r.bad_index, (long long)r.bad_checkpoint, r.what);
        else if (r.bad_index != UINT64_MAX)
            rv_cli_err(VERB, "verification FAILED at entry %llu: %s",
                       (unsigned long long)r.bad_index, r.what);
        else if (r.bad_checkpoint >= 0)
            rv_cli_err(VERB, "verification FAILED at checkpoint %lld: %s",
                       (long long)r.bad_checkpoint, r.what);
        else
            rv_cli_err(VERB, "verification FAILED: %s", r.what);
        ex = RV_EXIT_INTEGRITY;
        goto out;
    }
    printf("audit log verified: %llu entries, %llu checkpoints, latest checkpoint at %llu",
           (unsigned long long)r.size, (unsigned long long)r.checkpoints,
           (unsigned long long)r.latest_size);
    if (note != NULL)
        printf(", extends the trusted checkpoint");
    if (r.tail_ignored > 0)
        printf(", %llu unrepaired entries after a crash left out",
               (unsigned long long)r.tail_ignored);
    printf("\n");
    ex = RV_EXIT_OK;
out:
    free(vkey);
    free(note);
    return ex;
}

static int latest_size(struct rv_audit_log *log, uint64_t *size)
{
    char note[RV_AUDIT_NOTE_MAX];
    struct rv_audit_checkpoint c;

    if (rv_audit_latest_note(log, note, sizeof(note)) != 0 ||
        rv_audit_checkpoint_open(note, strlen(note), rv_audit_vkey(log), &c) != 0) {
        rv_cli_err(VERB, "the log has no valid checkpoint; run 'regvault audit verify'");
        return RV_EXIT_INTEGRITY;
    }
    *size = c.size;
    return -1;
}

static int print_proof(const struct rv_audit_proof *p)
{
    char *js = NULL;

    if (rv_audit_proof_to_json(p, &js) != 0) {
        rv_cli_err(VERB, "out of memory");
        return RV_EXIT_FAIL;
    }
    printf("%s\n", js);
    free(js);
    return RV_EXIT_OK;
}

static int cmd_proof(struct rv_audit_log *log, const struct opts *o)
{
    struct rv_audit_proof p;
    uint64_t n = rv_audit_size(log), index, size;
    int ex, rc;

    if (o->index == NULL)
        return usage_error("%s", "proof needs --index N");
    if (n == 0) {
        rv_cli_err(VERB, "the log is empty: there is nothing to prove");
        return RV_EXIT_FAIL;
    }
    if (rv_cli_parse_u64(VERB, "--index", o->index, 0, n - 1, &index) != 0)
        return RV_EXIT_USAGE;
    if (o->size != NULL) {
        if (rv_cli_parse_u64(VERB, "--size", o->size, index + 1, n, &size) != 0)
            return RV_EXIT_USAGE;
    } else {
        if ((ex = latest_size(log, &size)) >= 0)
            return ex;
        if (size <= index) {
            rv_cli_err(VERB, "entry %llu is after the latest checkpoint (size %llu); give --size",
                       (unsigned long long)index, (unsigned long long)size);
            return RV_EXIT_USAGE;
        }
    }
    rc = rv_audit_prove_inclusion(log, index, size, &p);
    if (rc != 0) {
        rv_cli_err(VERB, "cannot build the proof: %s", rv_strerror(rc));
        return rv_cli_exit_for(rc);
    }
    return print_proof(&p);
}

static int cmd_consistency(struct rv_audit_log *log, const struct opts *o)
{
    struct rv_audit_proof p;
    uint64_t n = rv_audit_size(log), a, b;
    int rc;

    if (o->from == NULL || o->to == NULL)
        return usage_error("%s", "consistency needs --from A --to B");
    if (n == 0) {
        rv_cli_err(VERB, "the log is empty: there is nothing to prove");
        return RV_EXIT_FAIL;
    }
    if (rv_cli_parse_u64(VERB, "--to", o->to, 1, n, &b) != 0 ||
        rv_cli_parse_u64(VERB, "--from", o->from, 1, b, &a) != 0)
        return RV_EXIT_USAGE;
    rc = rv_audit_prove_consistency(log, a, b, &p);
    if (rc != 0) {
        rv_cli_err(VERB, "cannot build the proof: %s", rv_strerror(rc));
        return rv_cli_exit_for(rc);
    }
    return print_proof(&p);
}

static void fmt_time(int64_t ms, char buf[80])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int show_one(const struct rv_audit_record *rec, bool json)
{
    char when[80], hex[65];
    const struct rv_audit_entry *e = &rec->e;

    fmt_time(e->time_ms, when);
    if (json) {
        json_t *o = json_object(), *subj = json_array();
        char *s;
        for (size_t i = 0; i < e->nsubjects; i++) {
            sodium_bin2hex(hex, sizeof(hex), e->subjects[i], 32);
            json_array_append_new(subj, json_string(hex));
        }
        sodium_bin2hex(hex, sizeof(hex), rec->leaf_hash, 32);
        json_object_set_new(o, "index", json_integer((json_int_t)rec->index));
        json_object_set_new(o, "time", json_string(when));
        json_object_set_new(o, "principal", json_string(e->principal));
        json_object_set_new(o, "role", json_string(e->role));
        json_object_set_new(o, "action", json_string(e->action));
        json_object_set_new(o, "params", json_string(e->params));
        json_object_set_new(o, "outcome", json_string(e->outcome));
        json_object_set_new(o, "client", json_string(e->client));
        json_object_set_new(o, "subjects", subj);
        json_object_set_new(o, "leaf_hash", json_string(hex));
        s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(o);
        if (s == NULL)
            return RV_ENOMEM;
        printf("%s\n", s);
        free(s);
    } else {
        printf("%-8llu %s  %-12s %-10s %-14s %-10s %-15s %3zu  %s\n",
               (unsigned long long)rec->index, when, e->principal, e->role, e->action, e->outcome,
               e->client, e->nsubjects, e->params);
    }
    return 0;
}

static int cmd_show(struct rv_audit_log *log, const struct opts *o)
{
    uint64_t n = rv_audit_size(log), a = 0, b = n;

    if (o->to != NULL && rv_cli_parse_u64(VERB, "--to", o->to, 0, n, &b) != 0)
        return RV_EXIT_USAGE;
    if (o->from != NULL && rv_cli_parse_u64(VERB, "--from", o->from, 0, b, &a) != 0)
        return RV_EXIT_USAGE;
    if (!o->json)
        printf("%-8s %-24s  %-12s %-10s %-14s %-10s %-15s %3s  %s\n", "index", "time (UTC)",
               "principal", "role", "action", "outcome", "client", "sub", "params");
    for (uint64_t i = a; i < b; i++) {
        struct rv_audit_record rec;
        int rc = rv_audit_get(log, i, &rec);
        if (rc != 0) {
            rv_cli_err(VERB, "entry %llu cannot be read: %s; run 'regvault audit verify'",
                       (unsigned long long)i, rv_strerror(rc));
            return rc == RV_ECORRUPT ? RV_EXIT_INTEGRITY : RV_EXIT_FAIL;
        }
        rc = show_one(&rec, o->json);
        rv_audit_record_free(&rec);
        if (rc != 0)
            return RV_EXIT_FAIL;
    }
    return RV_EXIT_OK;
}

/* Subject access: which recorded accesses disclosed this elector. */
static int cmd_subject(const struct opts *o)
{
    struct rv_unseal_opts uo = {o->vault_passphrase_file, o->vault_key_file};
    struct rv_gate *g = NULL;
    struct rv_diag d;
    uint64_t *hits = NULL;
    size_t n = 0;
    char msg[512];
    int ex, rc;

    if ((ex = rv_cli_gate_open(VERB, o->vault, &uo, "auditor", &g)) != RV_EXIT_OK)
        return ex;
    rv_diag_clear(&d);
    rc = rv_policy_subject(g, o->name, o->postcode, &hits, &n, &d);
    if (rc == RV_EPARSE || rc == RV_ETOOBIG) {
        rv_cli_err(VERB, "%s", rv_diag_format(&d, msg, sizeof(msg)));
        ex = RV_EXIT_USAGE;
        goto out;
    }
    if (rc != 0) {
        ex = rv_cli_open_error(VERB, o->vault, rc);
        goto out;
    }
    if (!o->json)
        printf("%-8s %-24s  %-12s %-10s %-14s %-10s %-15s %3s  %s\n", "index", "time (UTC)",
               "principal", "role", "action", "outcome", "client", "sub", "params");
    for (size_t i = 0; i < n; i++) {
        struct rv_audit_record rec;
        if ((rc = rv_audit_get(rv_policy_audit(g), hits[i], &rec)) != 0) {
            ex = rv_cli_open_error(VERB, o->vault, rc);
            goto out;
        }
        rc = show_one(&rec, o->json);
        rv_audit_record_free(&rec);
        if (rc != 0) {
            ex = RV_EXIT_FAIL;
            goto out;
        }
    }
    if (!o->json)
        fprintf(stderr, "regvault audit: %zu recorded access%s disclosed this elector\n", n,
                n == 1 ? "" : "es");
    ex = RV_EXIT_OK;
out:
    free(hits);
    if (rv_policy_close(g) != 0 && ex == RV_EXIT_OK)
        ex = rv_cli_open_error(VERB, o->vault, RV_EAUDIT);
    return ex;
}

int rv_cmd_audit(int argc, char **argv)
{
    static const struct {
        const char *name, *allowed, *help;
    } cmds[] = {
        {"verify", " trusted-key trusted-key-file checkpoint ",
         "usage: regvault audit verify --vault DIR [--trusted-key VKEY | --trusted-key-file F]\n"
         "                             [--checkpoint FILE]\n"
         "Recomputes every entry's leaf hash and every stored hash, checks every stored\n"
         "checkpoint's signature and root and the consistency between successive ones, and\n"
         "that no entry below the latest checkpoint is missing. With --trusted-key, key.pub must "
         "equal\n"
         "that trusted key; with --checkpoint, the log must extend that trusted checkpoint.\n"
         "Exit 0 with a one-line summary, or 5 naming the first bad entry or checkpoint.\n"},
        {"checkpoint", " ",
         "usage: regvault audit checkpoint --vault DIR\n"
         "Prints the latest signed checkpoint (a C2SP tlog-checkpoint in a signed note).\n"
         "Keep a copy elsewhere and pass it to 'verify --checkpoint' later.\n"},
        {"key", " ",
         "usage: regvault audit key --vault DIR\n"
         "Prints the verifier key: <name>+<key id>+<base64 Ed25519 key>, the format of\n"
         "golang.org/x/mod/sumdb/note.\n"},
        {"proof", " index size ",
         "usage: regvault audit proof --vault DIR --index N [--size M]\n"
         "Prints an RFC 9162 inclusion proof of entry N in the tree of the first M entries\n"
         "(default: the latest checkpoint's size) as JSON:\n"
         "{\"leaf_index\",\"tree_size\",\"leaf_hash\",\"root\",\"proof\":[...]} (base64).\n"},
        {"consistency", " from to ",
         "usage: regvault audit consistency --vault DIR --from A --to B\n"
         "Prints an RFC 9162 consistency proof between tree sizes A <= B as JSON:\n"
         "{\"size1\",\"size2\",\"root1\",\"root2\",\"proof\":[...]} (base64).\n"},
        {"show", " from to json ",
         "usage: regvault audit show --vault DIR [--from A] [--to B] [--json]\n"
         "Lists entries A (default 0) up to but not including B (default: all), as a table\n"
         "or, with --json, one JSON object per line. Electors appear only as subject ids.\n"},
        {"subject", " name postcode json passphrase-file key-file ",
         "usage: regvault audit subject --vault DIR --name NAME --postcode PC [--json]\n"
         "                              [--passphrase-file F | --key-file F]\n"
         "Lists every recorded access that disclosed this elector (name and postcode as on\n"
         "the register): the answer to \"who has looked me up?\". It unseals the vault to\n"
         "compute the elector's keyed subject id, and the search itself is recorded (by a\n"
         "prefix of that id, never the name).\n"},
    };
    struct opts o = {0};
    struct rv_audit_log *log = NULL;
    size_t c;
    int ex;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? RV_EXIT_USAGE : RV_EXIT_OK;
    }
    for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
        if (strcmp(argv[1], cmds[c].name) == 0)
            break;
    if (c == sizeof(cmds) / sizeof(cmds[0]))
        return usage_error("'%s' is not an audit command", argv[1]);
    if ((ex = parse(argc, argv, &o, cmds[c].allowed, cmds[c].help)) != RV_CLI_GO_ON)
        return ex;
    if (strcmp(cmds[c].name, "subject") == 0) {
        if (o.vault == NULL || o.name == NULL || o.postcode == NULL)
            return usage_error("%s", "subject needs --vault DIR --name NAME --postcode PC");
        return cmd_subject(&o);
    }
    if ((ex = open_log(&o, &log)) >= 0)
        return ex;
    if (strcmp(cmds[c].name, "verify") == 0) {
        ex = cmd_verify(log, &o);
    } else if (strcmp(cmds[c].name, "checkpoint") == 0) {
        char note[RV_AUDIT_NOTE_MAX];
        if (rv_audit_latest_note(log, note, sizeof(note)) != 0) {
            rv_cli_err(VERB, "the log has no checkpoint; run 'regvault audit verify'");
            ex = RV_EXIT_INTEGRITY;
        } else {
            fputs(note, stdout);
            ex = RV_EXIT_OK;
        }
    } else if (strcmp(cmds[c].name, "key") == 0) {
        char vkey[RV_AUDIT_VKEY_MAX];
        rv_audit_vkey_format(rv_audit_vkey(log), vkey);
        printf("%s\n", vkey);
        ex = RV_EXIT_OK;
    } else if (strcmp(cmds[c].name, "proof") == 0) {
        ex = cmd_proof(log, &o);
    } else if (strcmp(cmds[c].name, "consistency") == 0) {
        ex = cmd_consistency(log, &o);
    } else {
        ex = cmd_show(log, &o);
    }
    rv_audit_close(log);
    return ex;
}
