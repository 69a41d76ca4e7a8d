/*
 * inner.h - what the files of src/server share and nobody else sees: the server's layout,
 * one request's state (an exchange), the routes, and the metrics. Included first by every
 * .c of src/server but config.c and sessions.c, which need only server.h.
 *
 * An exchange is driven in three steps by whoever has the bytes: rv_srv_begin with the
 * method, path, headers and query (routing, authentication, rate limits, role, content
 * type and length), rv_srv_body for each piece of the body, rv_srv_end; then the response
 * in x->r is sent, streamed (rv_srv_stream) for a batch, and rv_srv_finish logs and
 * releases it. http.c drives it from libmicrohttpd; rv_server_handle drives it from bytes.
 */
#ifndef RV_SERVER_INNER_H
#define RV_SERVER_INNER_H

#include "server/server.h"

#include "audit/audit.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

enum rv_op {
    OP_NONE = 0, /* no such path: 404 */
    OP_LOGIN,
    OP_LOGOUT,
    OP_PASSWORD,
    OP_CHECK,
    OP_BATCH,
    OP_INGEST,
    OP_STATS,
    OP_CHECKPOINT,
    OP_PROOF,
    OP_CONSISTENCY,
    OP_USERS_LIST,
    OP_USERS_ADD,
    OP_USER_DISABLE,
    OP_USER_RESET,
    OP_USER_REINSTATE,
    OP_USER_BUDGET,
    OP_ALERTS,
    OP_HEALTHZ,
    OP_METRICS,
    OP_COUNT
};

/* "POST /v1/checks", "POST /v1/users/{name}/disable", "other" for OP_NONE. */
const char *rv_srv_op_label(enum rv_op op);

/* Statuses counted apart in the metrics; others fall in the last slot. */
#define RV_SRV_NSTATUS 17
int rv_srv_status_slot(int status);
int rv_srv_status_of_slot(int slot); /* 0 for "other" */
#define RV_SRV_NBUCKETS 14
extern const double rv_srv_buckets[RV_SRV_NBUCKETS]; /* seconds, upper bounds */

enum {
    LOGIN_OK = 0,
    LOGIN_CHANGE,
    LOGIN_BAD,
    LOGIN_LOCKED,
    LOGIN_SUSPENDED,
    LOGIN_ERROR,
    LOGIN_CERT,
    LOGIN_NOUTCOMES
};

struct rv_srv_metrics {
    _Atomic uint64_t requests[OP_COUNT][RV_SRV_NSTATUS];
    _Atomic uint64_t latency[OP_COUNT][RV_SRV_NBUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t latency_sum_us[OP_COUNT];
    _Atomic uint64_t verdicts[4];
    _Atomic uint64_t logins[LOGIN_NOUTCOMES];
    _Atomic uint64_t audit_failures;
};

struct rv_srv_view {
    struct rv_gate *g;
    struct rv_srv_view *next;
    uint64_t gen; /* the server's view generation when made */
};

struct rv_server {
    struct rv_server_config cfg;
    struct rv_gate *gate;
    struct rv_sessions *sessions;
    struct rv_srv_metrics m;
    pthread_mutex_t pool_lock;
    struct rv_srv_view *free_views;
    size_t nviews;
    /* Bumped by an ingest: a view's check context reads the vault's file statistics when it
     * opens, so views older than an ingest are closed rather than reused. */
    _Atomic uint64_t view_gen;
    /* keys the hash by which an unknown path is recorded (handlers.c path_label) */
    uint8_t path_key[32];
    /* password hashes (Argon2id) in progress, and how many may run at once (the cores) */
    _Atomic int pwhash_busy;
    int pwhash_max;
    /* access log: a buffer written out when full and by rv_server_tick */
    int log_fd;
    pthread_mutex_t log_lock;
    char *logbuf;
    size_t loglen;
    rv_server_clock_fn clock;
    void *clock_ctx;
    /* http.c */
    void *mhd;
    _Atomic long inflight;
    _Atomic long suspended; /* pool: connections whose answer waits (the log, a work queue) */
    _Atomic long resuming;  /* pool: resumes under way from other threads (http.c resume) */
    _Atomic bool stopping;  /* the stop waits for the suspended: no more may be suspended */
    _Atomic uint64_t upload_bytes; /* bytes of uploads held in memory now, in all */
    pthread_mutex_t conn_lock;
    struct rv_srv_conn *conns;
    struct rv_srv_workq *hashq; /* pool: the password threads and their queue */
    struct rv_srv_workq *slowq; /* pool: the threads of long requests and their queue */
    char *cert_pem, *key_pem, *ca_pem;
};

/* Where a request's headers and query come from (libmicrohttpd, or bytes). Values are
 * borrowed for the exchange; names are matched without regard to case. */
struct rv_srv_source {
    const char *(*header)(void *ctx, const char *name);
    const char *(*arg)(void *ctx, const char *name);
    void *ctx;
};

struct rv_srv_resp {
    int status;
    const char *ctype; /* static */
    char *body;        /* malloc'ed; wiped and freed with the exchange */
    size_t len;
    int64_t retry_after; /* -1 none */
    bool www_auth;
    const char *allow; /* static, for 405 */
    bool stream;       /* the body continues through rv_srv_stream */
};

struct rv_srv_batch; /* handlers.c */

/* A connection's client certificate, once looked up: the service principal it is pinned
 * to, kept for the connection's later requests (its suspension or disabling is still seen
 * by rv_policy_admit on every request). */
struct rv_srv_certauth {
    bool looked_up, ok;
    char principal[RV_PRINCIPAL_NAME_MAX];
    char role[16];
};

struct rv_exchange {
    struct rv_server *s;
    enum rv_op op;
    char method[8];
    char path[256];
    char params[320]; /* "METHOD PATH" as recorded */
    char client[64];
    char principal[RV_PRINCIPAL_NAME_MAX];
    char role[16];
    char target[RV_PRINCIPAL_NAME_MAX]; /* NAME in /v1/users/NAME/... */
    char token[RV_SESSION_TOKEN_LEN + 1];
    bool authed, restricted, via_cert, ndjson, recorded;
    bool admitted; /* a login past its address's rate (rv_srv_hash_admit) */
    bool cut;      /* the connection ended before the answer was sent whole (access log) */
    struct rv_srv_view *view;
    struct rv_srv_certauth *certauth; /* the connection's, or NULL (requests from bytes) */
    /* query */
    char area[32];
    rv_date edition;
    bool alterations;
    int layout;
    uint64_t q_index, q_size, q_from, q_to, q_max_errors;
    bool has_size, has_to;
    int64_t since_ms;
    uint64_t q_after, q_limit; /* GET /v1/alerts: after this entry index (has_after), at most */
    bool has_after;
    /* body */
    uint64_t cap, got;
    uint64_t spooled; /* bytes of this upload counted in s->upload_bytes */
    bool declared;    /* spooled is its declared Content-Length, counted before the body */
    char *buf;        /* inbuf, or malloc'ed once the body outgrows it */
    size_t len, bufcap;
    char inbuf[1024]; /* a small body (a check's), without a malloc */
    int spool_fd;
    char spool_path[RV_SERVER_PATH_MAX + 64];
    struct rv_srv_batch *batch;
    /* answer */
    struct rv_srv_resp r;
    int64_t t0_us;
};

/* handlers.c */
void rv_srv_init(struct rv_exchange *x, struct rv_server *s);
/* Returns 0 to read a body, 1 when x->r is ready (a refusal, or an answer needing no
 * body). cert_sha256: a verified client certificate's fingerprint, or NULL. */
int rv_srv_begin(struct rv_exchange *x, const char *method, const char *path, const char *client,
                 const char *cert_sha256, const struct rv_srv_source *src);
/* 0 to go on, 1 when x->r is ready (the body was refused). */
int rv_srv_body(struct rv_exchange *x, const char *data, size_t len);
void rv_srv_end(struct rv_exchange *x);
/* The next piece of a streamed body into buf: bytes written, 0 at the end, -1 on an error
 * that must cut the connection (the audit log failed). Checks the next chunk of a batch's
 * rows first when all that was checked is sent (rv_srv_stream_fill). */
ssize_t rv_srv_stream(struct rv_exchange *x, char *buf, size_t max);
/* Whether the next rv_srv_stream would check rows (a batch's chunk, recorded and made
 * durable on the log first): all that was checked is sent and the batch has more. A pool
 * runs rv_srv_stream_fill on a thread of its own before it asks for the next piece. */
bool rv_srv_stream_pending(const struct rv_exchange *x);
/* Checks the next chunk of a batch's rows into the stream (when rv_srv_stream_pending), or
 * notes the failure that ends the stream. Its audit appends wait as with no pool. */
void rv_srv_stream_fill(struct rv_exchange *x);
/* Whether the end of this exchange may run with its audit appends deferred (http.c's pool):
 * true for the endpoints whose gate action, once recorded, only computes the answer, which
 * nothing sees until the entries are durable (checks, stats, /healthz, /metrics, refusals);
 * false for those that act on the vault or the sessions, read the log, or stream. */
bool rv_srv_defers(const struct rv_exchange *x);
/* Whether the end of this exchange hashes a password (Argon2id, 64 MiB: a login, a password
 * change, a new user or a reset), which a pool runs on its password threads (http.c). */
bool rv_srv_hashes(const struct rv_exchange *x);
/* What a login does on the pool's thread before it waits for a password thread: takes a
 * token from its address's bucket, or refuses it 429 (recorded; a decoy's credentials still
 * raise the alarm). 0 to go on, 1 when x->r is ready. Nothing for other endpoints. */
int rv_srv_hash_admit(struct rv_exchange *x);
/* Refuses the exchange 503 busy with Retry-After 1, recorded ("503 password hashing busy"):
 * no password can be checked now. A decoy's credentials still raise the alarm. */
void rv_srv_hash_busy(struct rv_exchange *x);
/* Gives the exchange's view back to the pool once a whole (not streamed) answer is made,
 * so that requests waiting for the audit log hold no view (nor its store reader). */
void rv_srv_release_view(struct rv_exchange *x);
/* An entry of this exchange could not be made durable: its answer is wiped and replaced by
 * 503 audit_unavailable. */
void rv_srv_audit_failed(struct rv_exchange *x);
/* Counts, logs, releases the view, wipes and frees the exchange's buffers (not x). */
void rv_srv_finish(struct rv_exchange *x);
int64_t rv_srv_now_us(void);

/* tls.c: the GnuTLS priority string of the daemon's TLS (static): TLS 1.3 preferred, TLS 1.2
 * only with ECDHE and AES-GCM or ChaCha20-Poly1305. */
const char *rv_server_tls_priorities(void);

/* metrics.c */
void rv_srv_metrics_count(struct rv_server *s, enum rv_op op, int status, int64_t us);
RV_NODISCARD int rv_srv_metrics_render(struct rv_server *s, char **out, size_t *len);
void rv_srv_log_request(struct rv_server *s, const struct rv_exchange *x, int64_t us);
void rv_srv_log_flush(struct rv_server *s);
/* A line in the daemon's own log (start-up, shutdown, failures); no personal data. */
void rv_srv_log_msg(struct rv_server *s, const char *fmt, ...) RV_PRINTF(2, 3);

#endif /* RV_SERVER_INNER_H */
