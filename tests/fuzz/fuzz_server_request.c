/*
 * fuzz_server_request.c - libFuzzer target for the daemon's request handling: routing,
 * header and query parsing, authentication, JSON validation, every endpoint, driven from
 * bytes through rv_server_handle on a real (small) vault made at the first input.
 *
 * Input: a request line "METHOD URL", header lines "Name: value", a blank line, the body.
 * An Authorization value "@ROLE" (admin, checker, registrar, auditor, researcher) is
 * replaced by a live session token of that role, so that the fuzzer reaches past the 401.
 * The fuzzer can log its own sessions out or disable their principals (DELETE /v1/session,
 * POST /v1/users/fz-ROLE/disable); after every request a role whose session has ended is
 * reinstated and given a new one, or the rest of the run would stop at the 401.
 * Checked: nothing crashes, the status is one the API uses, an error body is JSON, and no
 * answer ever carries a session token that the request did not.
 *
 * Run with its dictionary, new inputs going to a scratch folder, not the seed corpus:
 *   build-fuzz/fuzz_server_request -dict=tests/fuzz/fuzz_server_request.dict \
 *       /tmp/fuzz_server_request tests/fuzz/corpus/fuzz_server_request
 */
#include "policy/policy.h"
#include "server/server.h"

#include <dirent.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NROLES 5
static const char *const roles[NROLES] = {"admin", "checker", "registrar", "auditor", "researcher"};
static char tokens[NROLES][RV_SESSION_TOKEN_LEN + 1];
static char top[64];
static struct rv_gate *gate;
static struct rv_server *srv;
static uint8_t *key;

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char p[512];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void)
{
    rv_server_free(srv);
    (void)rv_policy_close(gate);
    rmtree(top);
    sodium_free(key);
}

static void init(void)
{
    struct rv_actor admin = {"fuzzer", "admin", "local"};
    struct rv_vault_secret sec = {0};
    struct rv_server_config c;
    struct rv_diag d;
    char dir[128];

    if (sodium_init() < 0)
        abort();
    snprintf(top, sizeof(top), "/tmp/rv-fuzz-server-XXXXXX");
    if (mkdtemp(top) == NULL)
        abort();
    snprintf(dir, sizeof(dir), "%s/vault", top);
    key = sodium_malloc(32);
    randombytes_buf(key, 32);
    sec.keyfile = key;
    if (rv_policy_create(dir, &sec, 1000, &admin) != 0 ||
        rv_policy_open(dir, &sec, &admin, &gate) != 0)
        abort();
    rv_server_config_defaults(&c);
    snprintf(c.vault, sizeof(c.vault), "%s", dir);
    c.dev = true;
    c.body_max_ingest = 1 << 20;
    c.body_max_batch = 1 << 20;
    c.policy.rate_principal = c.policy.rate_client = 1e6;
    c.policy.burst_principal = c.policy.burst_client = 1000000;
    c.policy.budget_checker = 10000000;
    c.policy.alert_syslog = false;
    rv_diag_clear(&d);
    if (rv_server_config_finish(&c, &d) != 0 || rv_policy_configure(gate, &c.policy, &d) != 0 ||
        rv_server_new(&c, gate, -1, NULL, NULL, &srv) != 0)
        abort();
    for (int i = 0; i < NROLES; i++) {
        struct rv_principal p;
        char name[32];
        memset(&p, 0, sizeof(p));
        snprintf(name, sizeof(name), "fz-%s", roles[i]);
        snprintf(p.name, sizeof(p.name), "%s", name);
        snprintf(p.role, sizeof(p.role), "%s", roles[i]);
        p.kind = RV_PRINCIPAL_SERVICE;
        snprintf(p.cert_sha256, sizeof(p.cert_sha256), "%064x", i + 1);
        if (rv_policy_user_add(gate, &p, NULL) != 0)
            abort();
        if (rv_sessions_create(rv_server_sessions(srv), name, roles[i], false, tokens[i], NULL) !=
            0)
            abort();
    }
    atexit(cleanup);
}

static bool known_status(int st)
{
    static const int ok[] = {200, 201, 204, 400, 401, 403, 404, 405,
                             409, 413, 415, 422, 429, 500, 503};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (st == ok[i])
            return true;
    return false;
}

/* Gives each role a live session again if the last request ended it. */
static void keep_sessions(void)
{
    for (int i = 0; i < NROLES; i++) {
        struct rv_session_info info;
        char name[32];
        if (rv_sessions_lookup(rv_server_sessions(srv), tokens[i], strlen(tokens[i]), &info) == 0)
            continue;
        snprintf(name, sizeof(name), "fz-%s", roles[i]);
        (void)!rv_policy_user_reinstate(gate, name);
        if (rv_sessions_create(rv_server_sessions(srv), name, roles[i], false, tokens[i], NULL) !=
            0)
            abort();
    }
}

#define MAXH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    char *buf = malloc(size + 1), *p, *line, *sp, *body = NULL;
    const char *h[MAXH][2];
    char auth[MAXH][96];
    size_t nh = 0;
    struct rv_server_request r;
    struct rv_server_response out;

    if (buf == NULL)
        return 0;
    if (!ready) {
        init();
        ready = true;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    memset(&r, 0, sizeof(r));
    r.client = "198.51.100.1";
    /* Request line. */
    line = buf;
    p = strchr(line, '\n');
    if (p != NULL)
        *p++ = '\0';
    sp = strchr(line, ' ');
    if (sp != NULL)
        *sp++ = '\0';
    r.method = line;
    r.url = sp != NULL ? sp : "/";
    /* Headers until a blank line. */
    while (p != NULL && *p != '\0' && *p != '\n' && nh < MAXH) {
        char *next = strchr(p, '\n'), *colon;
        if (next != NULL)
            *next++ = '\0';
        if ((colon = strchr(p, ':')) != NULL) {
            *colon++ = '\0';
            while (*colon == ' ')
                colon++;
            h[nh][0] = p;
            h[nh][1] = colon;
            if (strcasecmp(p, "Authorization") == 0 && colon[0] == '@')
                for (int i = 0; i < NROLES; i++)
                    if (strcmp(colon + 1, roles[i]) == 0) {
                        if (snprintf(auth[nh], sizeof(auth[nh]), "Bearer %s", tokens[i]) < 0)
                            auth[nh][0] = '\0';
                        h[nh][1] = auth[nh];
                    }
            nh++;
        }
        p = next;
    }
    if (p != NULL && *p == '\n')
        p++;
    body = p;
    r.headers = (const char *const(*)[2])h;
    r.nheaders = nh;
    r.body = body;
    r.body_len = body != NULL ? size - (size_t)(body - buf) : 0;
    if (rv_server_handle(srv, &r, &out) == 0) {
        if (!known_status(out.status))
            abort();
        if (out.status >= 400 && out.status != 503 && out.body != NULL &&
            strncmp(out.content_type, "application/json", 16) == 0 &&
            (out.len == 0 || out.body[0] != '{'))
            abort();
        /* A token the request itself carries (the fuzzer learns them from this very
         * comparison) may be echoed back, in an error naming an unknown field. */
        for (int i = 0; i < NROLES && out.body != NULL; i++)
            if (memmem(out.body, out.len, tokens[i] + 4, 20) != NULL &&
                memmem(data, size, tokens[i] + 4, 20) == NULL)
                abort();
    }
    rv_server_response_free(&out);
    free(buf);
    keep_sessions();
    return 0;
}
