/*
 * server.h - the public contract of src/server: the `regvault serve` HTTPS daemon.
 *
 * The daemon is a front end like the regvault command: it never calls vault/, check/ or
 * ingest/ directly, only the access gate (policy.h). It opens one gate at start-up and keeps
 * a pool of views of it (each with its own check context), one per request in flight; the
 * view's actor is set per request from the session (bearer token) or the client
 * certificate. Every request, accepted or refused, is in the audit log before it is
 * answered; when the log cannot be written the answer is 503 and nothing else.
 *
 * Parts (one file each): config.c (the declarative settings table and its `key = value`
 * file), sessions.c (bearer tokens, memory only), handlers.c (routing, JSON validation, the
 * endpoints, driven from bytes so it can be fuzzed and unit-tested without sockets),
 * http.c (libmicrohttpd with GnuTLS), tls.c (the development certificate, client
 * certificate fingerprints), metrics.c (Prometheus counters and the buffered access log).
 *
 * The HTTP API is docs/api.md. Deviations from the product brief, on purpose:
 *  - DELETE /v1/session is allowed to a session that must change its password (logging out
 *    is always allowed); every other endpoint but POST /v1/session/password answers 403
 *    password_change_required for such a session.
 *  - POST /v1/checks/batch and POST /v1/ingest spool the upload to an anonymous file in
 *    memory (memfd, bounded by the endpoint's body cap), never to disk, before checking or
 *    ingesting it, because HTTP/1.1 through libmicrohttpd cannot answer while the upload is
 *    still arriving; the results of a batch then stream back in chunks of 256 rows, each
 *    chunk one rv_policy_check. The first chunk is
 *    checked before the status line, so a refusal of the first chunk (budget, role, audit)
 *    gets its own status; a refusal later ends the stream with an error record (JSON lines)
 *    or a last CSV line "error,<code>,<message>".
 *  - format= on /v1/checks/batch also accepts "auto" (the default), as --format does.
 *  - POST /v1/checks: name and date are required; address, postcode (absent or "" for an
 *    overseas donor) and bequest are optional. The answer is the object `regvault check
 *    --json` prints, written compactly.
 *  - Statuses the brief leaves open: POST /v1/users with a taken name 409 exists; a wrong
 *    current password on POST /v1/session/password 403 bad_credentials, a weak new one 422
 *    weak_password; an ingest whose file is refused 422 rejected; a body on an endpoint
 *    that takes none 413; a client certificate on DELETE /v1/session 400 no_session.
 *    POST /v1/users/NAME/reset answers 200 {name, password, totp_uri}; disable and reset
 *    also end the principal's sessions, and a password change ends its other sessions
 *    (each recorded: "ended N sessions").
 *  - Every answer carries Cache-Control: no-store, X-Content-Type-Options: nosniff and
 *    Strict-Transport-Security.
 *
 * Threading: threads = N (default 4) gives a pool of N threads (epoll) in which no request
 * holds a thread while it waits for the log: the steps of an exchange that only record and
 * compute an answer (refusals, checks, stats, /healthz, /metrics) hand their entries to the
 * log without waiting (an audit group, handed off to the log's committer thread), and a
 * check's charge of the disclosure budget is written by the budget's own writer thread while
 * the group holds the answer; the connection is suspended and resumed once both are durable,
 * and the answer is queued only then, or 503 audit_unavailable if either failed. What hashes
 * a password (Argon2id: logins, password changes, new users, resets) runs on password
 * threads of its own (half the cores, at least one), with its connection suspended, so that
 * a login flood cannot stall the pool; past 8 waiting per password thread it is refused 503
 * busy with Retry-After, recorded. Every other request that waits for the log before it
 * acts or reads for long (a register upload once spooled, each chunk of a batch's rows,
 * audit proofs and checkpoints, alerts, users, a logout) runs on two slow threads of the
 * daemon's own, with its connection suspended, in the order queued; a batch's answer still
 * streams in its rows' order. threads = 0 gives each connection its own thread (512 KiB
 * stack), in which every request waits for its audit entry (the log's group commit gathers
 * them into one fsync): more CPU and context switches per check, but no thread waits on
 * another's request. Measured on the 2-core machine (bench/serve.sh, 1M electors, 256
 * connections, alternating runs) a pool of 2 or 4 answers more checks at 83-125 us of daemon
 * CPU and about one context switch per check or fewer, a thread per connection 118-191 us
 * and 2.6-2.9 switches (docs/benchmarks.md). A pool thread waits on the disk when the vault
 * is larger than half the memory (it is not read ahead then): choose a larger pool, or a
 * thread per connection, for such a vault.
 */
#ifndef RV_SERVER_H
#define RV_SERVER_H

#include "core/core.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------
 * Settings (config.c). One table (name, type, bounds, default, help) serves the config file,
 * the command line and `--check-config`.
 */
#define RV_SERVER_PATH_MAX 1024

struct rv_server_config {
    char vault[RV_SERVER_PATH_MAX];
    char listen[256]; /* "ADDR:PORT", "[v6]:PORT"; port 0 picks a free port */
    char tls_cert[RV_SERVER_PATH_MAX];
    char tls_key[RV_SERVER_PATH_MAX];
    char tls_client_ca[RV_SERVER_PATH_MAX]; /* "" = no client certificates */
    bool dev;                               /* self-signed certificate in <vault>/dev-tls/ */
    char user[64];                          /* "" = the owner of the vault folder */
    uint32_t threads; /* a pool of N (default 4); 0 = a thread per connection */
    uint32_t max_connections;
    uint32_t max_connections_per_client;
    uint32_t header_timeout; /* s */
    uint32_t idle_timeout;   /* s */
    uint64_t body_max_check; /* bytes */
    uint64_t body_max_batch;
    uint64_t body_max_ingest;
    uint64_t body_max_json;
    uint64_t upload_memory_max;        /* bytes of uploads held in memory at once, in all */
    uint32_t session_idle;             /* s */
    uint32_t session_max;              /* s */
    char log_file[RV_SERVER_PATH_MAX]; /* "" = stderr */
    char alert_file[RV_SERVER_PATH_MAX];
    char alert_command[RV_SERVER_PATH_MAX];
    struct rv_policy_config policy; /* alert_file/alert_command point into the arrays above
                                       (rv_server_config_finish) */
    uint64_t set_mask;              /* keys given explicitly (bit = index in the table) */
};

enum rv_server_config_type {
    RV_CFG_STRING = 0,
    RV_CFG_PATH,
    RV_CFG_BOOL,
    RV_CFG_UINT,   /* decimal integer within [min, max] */
    RV_CFG_SIZE,   /* bytes: an integer with an optional k, M or G suffix (1024s) */
    RV_CFG_DOUBLE, /* decimal number within [min, max] */
    RV_CFG_LISTEN, /* ADDR:PORT */
};

/* One row of the table (static). */
struct rv_server_config_key {
    const char *name;
    enum rv_server_config_type type;
    double min, max;     /* numbers: bounds; strings: max is the longest length */
    const char *def;     /* default as written in a config file ("" = none) */
    const char *help;    /* one line */
    size_t offset, size; /* where the value lives in struct rv_server_config */
};

/* The table, and its length in *n. */
const struct rv_server_config_key *rv_server_config_keys(size_t *n) RV_NONNULL(1);
/* A type's name for messages and help ("integer", "size", "path", ...). */
const char *rv_server_config_type_name(enum rv_server_config_type t);
/* Fills c with every default. */
void rv_server_config_defaults(struct rv_server_config *c) RV_NONNULL(1);
/* Sets one key from its text. RV_EINVAL with d->msg saying what is wrong and what to do
 * (unknown key, wrong type, out of bounds); d's file and line are left to the caller. */
RV_NODISCARD int rv_server_config_set(struct rv_server_config *c, const char *key,
                                      const char *value, struct rv_diag *d) RV_NONNULL(1, 2, 3, 4);
/* Parses a config file's text (`key = value` lines, # comments, blank lines; a value may be
 * in double quotes). name is used for diagnostics. Stops at the first error: RV_EINVAL or
 * RV_EPARSE with d = name:line and the message. */
RV_NODISCARD int rv_server_config_parse(struct rv_server_config *c, const char *text, size_t len,
                                        const char *name, struct rv_diag *d) RV_NONNULL(1, 2, 4, 5);
/* Reads and parses the file at path (at most 1 MiB). RV_EIO with d when it cannot be read. */
RV_NODISCARD int rv_server_config_load(struct rv_server_config *c, const char *path,
                                       struct rv_diag *d) RV_NONNULL(1, 2, 3);
/* Checks what no single key can: vault given, certificate and key both given unless dev,
 * the policy settings (rv_policy_config_check), and points c->policy's strings at c's.
 * RV_EINVAL with d->msg. */
RV_NODISCARD int rv_server_config_finish(struct rv_server_config *c, struct rv_diag *d)
    RV_NONNULL(1, 2);

/* ------------------------------------------------------------------------------------------
 * Sessions (sessions.c): bearer tokens in memory only. A token is "rvs_" + base64url (no
 * padding) of 32 random bytes; the table keeps only its BLAKE2b-256 hash, found by the
 * hash's first bytes and compared in full with sodium_memcmp. A session ends after idle
 * seconds without use or max seconds after login, whichever is first.
 */
#define RV_SESSION_TOKEN_LEN 47 /* 4 + 43 */

typedef int64_t (*rv_server_clock_fn)(void *ctx); /* now, UTC milliseconds */

struct rv_session_info {
    char principal[RV_PRINCIPAL_NAME_MAX];
    char role[16];
    bool restricted;    /* the password must be changed first */
    int64_t created_ms; /* login */
    int64_t expires_ms; /* the earlier of idle and absolute expiry, as of this use */
};

struct rv_sessions;

/* A table of at most cap sessions. clock may be NULL (the real clock). Free with
 * rv_sessions_free. */
RV_NODISCARD int rv_sessions_new(uint32_t idle_s, uint32_t max_s, size_t cap,
                                 rv_server_clock_fn clock, void *clock_ctx,
                                 struct rv_sessions **out) RV_NONNULL(6);
void rv_sessions_free(struct rv_sessions *s);
/* Starts a session for principal/role and writes its token (NUL-terminated) to token.
 * RV_ELIMIT when the table is full (after dropping expired sessions). */
RV_NODISCARD int rv_sessions_create(struct rv_sessions *s, const char *principal, const char *role,
                                    bool restricted, char token[RV_SESSION_TOKEN_LEN + 1],
                                    struct rv_session_info *info) RV_NONNULL(1, 2, 3, 5);
/* Finds the session of token (len bytes) and marks it used now. RV_EAUTH for a malformed,
 * unknown, expired or revoked token (an expired one is dropped). */
RV_NODISCARD int rv_sessions_lookup(struct rv_sessions *s, const char *token, size_t len,
                                    struct rv_session_info *out) RV_NONNULL(1, 2, 4);
/* Ends the session of token. RV_EAUTH if there is none. */
RV_NODISCARD int rv_sessions_revoke(struct rv_sessions *s, const char *token, size_t len)
    RV_NONNULL(1, 2);
/* Lifts a session's restriction (after a password change). */
RV_NODISCARD int rv_sessions_unrestrict(struct rv_sessions *s, const char *token, size_t len)
    RV_NONNULL(1, 2);
/* Ends every session of principal (disabled or reset by an admin); returns how many. */
size_t rv_sessions_revoke_principal(struct rv_sessions *s, const char *principal) RV_NONNULL(1, 2);
/* Ends every session of principal but the one of token keep (keep_len bytes; a malformed or
 * empty keep ends them all), after its password changed; returns how many. */
size_t rv_sessions_revoke_others(struct rv_sessions *s, const char *principal, const char *keep,
                                 size_t keep_len) RV_NONNULL(1, 2, 3);
/* Drops expired sessions; returns how many are left. */
size_t rv_sessions_sweep(struct rv_sessions *s) RV_NONNULL(1);
/* Sessions held (including expired ones not yet swept). */
size_t rv_sessions_count(struct rv_sessions *s) RV_NONNULL(1);

/* ------------------------------------------------------------------------------------------
 * The daemon.
 */
struct rv_server;

/* A server over an open gate (borrowed until rv_server_free) with settings c (copied;
 * finished with rv_server_config_finish). clock may be NULL. Nothing listens yet: requests
 * can be handled from bytes (rv_server_handle) for tests and fuzzing. log_fd: where the
 * access log goes (-1: nowhere). Free with rv_server_free. */
RV_NODISCARD int rv_server_new(const struct rv_server_config *c, struct rv_gate *gate, int log_fd,
                               rv_server_clock_fn clock, void *clock_ctx, struct rv_server **out)
    RV_NONNULL(1, 2, 6);
/* Closes the views (the gate stays the caller's) and frees everything. */
void rv_server_free(struct rv_server *s);
/* The session table (borrowed), for tests. */
struct rv_sessions *rv_server_sessions(struct rv_server *s) RV_NONNULL(1);

/* One request, from bytes. headers: nheaders (name, value) pairs. cert_sha256: the client
 * certificate's SHA-256 in hex when a valid one was presented, else NULL. */
struct rv_server_request {
    const char *method;
    const char *url; /* path and optional ?query, percent-encoded */
    const char *client;
    const char *cert_sha256;
    const char *const (*headers)[2];
    size_t nheaders;
    const void *body;
    size_t body_len;
};
/* The answer (free with rv_server_response_free, which wipes the body). A streamed answer
 * (batch) is read to its end into body. */
struct rv_server_response {
    int status;
    char content_type[64];
    char allow[64];      /* Allow, for 405 */
    int64_t retry_after; /* Retry-After seconds, or -1 */
    bool www_authenticate;
    char *body;
    size_t len;
};
RV_NODISCARD int rv_server_handle(struct rv_server *s, const struct rv_server_request *r,
                                  struct rv_server_response *out) RV_NONNULL(1, 2, 3);
void rv_server_response_free(struct rv_server_response *r);

/* Serving over HTTPS (http.c). listen_fd is a bound, listening socket (the caller binds
 * before dropping root); cert/key/ca are PEM text (ca may be NULL), copied. Returns 0 once
 * the daemon accepts connections. */
RV_NODISCARD int rv_server_start(struct rv_server *s, int listen_fd, const char *cert_pem,
                                 const char *key_pem, const char *ca_pem, struct rv_diag *d)
    RV_NONNULL(1, 3, 4, 6);
/* Stops accepting, waits up to wait_ms for requests in flight to finish, then closes every
 * connection and stops the daemon's threads. */
void rv_server_stop(struct rv_server *s, uint32_t wait_ms) RV_NONNULL(1);
/* Periodic work (call about once a second): flushes the access log, drops expired sessions,
 * closes connections past their header deadline. */
void rv_server_tick(struct rv_server *s) RV_NONNULL(1);
/* Binds and listens on "ADDR:PORT" (backlog 1024, SO_REUSEADDR). *port receives the bound
 * port. RV_EINVAL (d says why) or RV_EIO. */
RV_NODISCARD int rv_server_bind(const char *addr, int *fd, int *port, struct rv_diag *d)
    RV_NONNULL(1, 2, 3, 4);

/* ------------------------------------------------------------------------------------------
 * TLS helpers (tls.c).
 */
/* Makes (or reuses) a self-signed ECDSA P-256 certificate for localhost (SAN DNS:localhost,
 * IP:127.0.0.1) in <vault>/dev-tls/{cert.pem,key.pem}, mode 0600, and returns the PEM texts
 * (free with free(); wipe the key first) and the certificate's SHA-256 fingerprint
 * ("AB:CD:..", 96 bytes with NUL). */
RV_NODISCARD int rv_server_dev_cert(const char *vault, char **cert_pem, char **key_pem,
                                    char fingerprint[96], char *cert_path, size_t cert_path_sz,
                                    struct rv_diag *d) RV_NONNULL(1, 2, 3, 4, 5, 7);
/* Reads a whole file (at most 1 MiB) into a NUL-terminated string (free with free()). */
RV_NODISCARD int rv_server_read_file(const char *path, char **out, size_t *len) RV_NONNULL(1, 2);

#endif /* RV_SERVER_H */
