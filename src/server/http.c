/*
 * http.c - the daemon on the wire: libmicrohttpd over GnuTLS (TLS 1.3, or 1.2 with ECDHE and
 * AEAD only: tls.c's policy), feeding each request to the exchange of handlers.c and sending
 * back its answer. A small answer goes out as one TLS record (see send_answer).
 *
 * Threading: with threads = 0 (the default) every connection has its own thread with a
 * small stack, so that hundreds of requests can wait on the audit log's group commit at
 * once; with threads = N a pool of N threads polls the connections (epoll), and a request
 * whose answer waits for the log is suspended rather than holding its thread (see "the
 * pool" below), as is one whose work takes long, which runs on threads of its own (see
 * "the pool's work threads"). Each request takes a policy view (with its own check context) from a
 * pool and gives it back once its answer is made.
 *
 * Limits: a total and a per-client connection cap (a client as the rate limits count one:
 * an IPv6 address by its /64; admit_connection), an idle timeout (libmicrohttpd's
 * connection timeout), a header deadline enforced by rv_server_tick (a connection that has
 * not completed its first request's headers header_timeout seconds after it was accepted,
 * or the next request's within idle + header timeout of the last answer, is shut down),
 * and per-endpoint body caps (handlers.c). With a client CA, client certificates are asked
 * for and verified; a verified one's SHA-256 is looked up once per connection.
 */
#include "server/inner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rv_srv_conn {
    struct rv_server *s;
    struct rv_srv_conn *prev, *next;
    int fd;
    bool cert_checked;
    char cert[65]; /* "" = none */
    char client[64];
    char client_key[RV_CLIENT_KEY_MAX]; /* what counts as one client (an IPv6 /64) */
    int64_t deadline_ms;                /* 0 while a request is being handled */
    struct rv_srv_certauth certauth;
    struct req *spare; /* the last request's state, kept for the next one (on_request) */
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void client_text(const struct sockaddr *sa, char *out, size_t outsz)
{
    snprintf(out, outsz, "-");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsz);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outsz);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct rv_server *s = cls;
    struct rv_srv_conn *k = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci;
        if ((k = calloc(1, sizeof(*k))) == NULL)
            return;
        k->s = s;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        client_text(ci != NULL ? ci->client_addr : NULL, k->client, sizeof(k->client));
        rv_client_key(k->client, k->client_key);
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci != NULL ? ci->connect_fd : -1;
        k->deadline_ms = mono_ms() + (int64_t)s->cfg.header_timeout * 1000;
        pthread_mutex_lock(&s->conn_lock);
        k->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = k;
        s->conns = k;
        pthread_mutex_unlock(&s->conn_lock);
        *socket_context = k;
        return;
    }
    if (k == NULL)
        return;
    pthread_mutex_lock(&s->conn_lock);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        s->conns = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&s->conn_lock);
    free(k->spare);
    free(k);
    *socket_context = NULL;
}

/* Admits a new connection while its client (an IPv4 address, or an IPv6 address's /64, as
 * the rate limits count it) holds fewer than max_connections_per_client. libmicrohttpd's
 * own per-address limit would count every address of a /64 apart. The count is read off
 * the list of open connections, which on_connection keeps. */
static enum MHD_Result admit_connection(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct rv_server *s = cls;
    char client[64], key[RV_CLIENT_KEY_MAX];
    uint32_t n = 0;

    (void)len;
    client_text(addr, client, sizeof(client));
    rv_client_key(client, key);
    pthread_mutex_lock(&s->conn_lock);
    for (struct rv_srv_conn *k = s->conns; k != NULL && n < s->cfg.max_connections_per_client;
         k = k->next)
        if (strcmp(k->client_key, key) == 0)
            n++;
    pthread_mutex_unlock(&s->conn_lock);
    return n < s->cfg.max_connections_per_client ? MHD_YES : MHD_NO;
}

static struct rv_srv_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* The verified client certificate's SHA-256 (hex), or NULL. */
static const char *peer_cert(struct rv_server *s, struct MHD_Connection *c, struct rv_srv_conn *k)
{
    const union MHD_ConnectionInfo *ci;
    const gnutls_datum_t *certs;
    unsigned int n = 0, status = 1;
    uint8_t h[32];

    if (s->ca_pem == NULL || k == NULL)
        return NULL;
    if (!k->cert_checked) {
        k->cert_checked = true;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci != NULL && ci->tls_session != NULL &&
            (certs = gnutls_certificate_get_peers(ci->tls_session, &n)) != NULL && n > 0 &&
            gnutls_certificate_verify_peers2(ci->tls_session, &status) == 0 && status == 0) {
            crypto_hash_sha256(h, certs[0].data, certs[0].size);
            sodium_bin2hex(k->cert, sizeof(k->cert), h, sizeof(h));
        }
    }
    return k->cert[0] != '\0' ? k->cert : NULL;
}

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static const char *mhd_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static void wipe_free(void *p)
{
    if (p != NULL) {
        sodium_memzero(p, strlen(p));
        free(p);
    }
}

/* What a pool's work thread does for a request (see "the pool's work threads"). */
enum { WORK_END, WORK_FILL };

struct req {
    struct rv_exchange x;
    bool queued;
    gnutls_session_t corked; /* held back until the answer is whole (see send_answer) */
    /* Pool: the audit entries the answer waits for (see answer). */
    struct MHD_Connection *c;
    struct rv_audit_group *group; /* open while steps may still add entries */
    bool waiting;                 /* the answer is made and waits for the log */
    _Atomic bool orphan;          /* the request ended while its entries were in flight */
    int audit_rc;                 /* the group's result, set before the connection resumes */
    struct req *work_next;        /* in the queue of a pool's work threads */
    unsigned char work;           /* what its work thread does (WORK_END, WORK_FILL) */
    bool filling;                 /* suspended while a work thread checks a batch's chunk */
    bool refused;                 /* the body was refused: the rest is read and dropped */
    uint64_t dropped;             /* bytes of body dropped since */
};

/* libmicrohttpd (0.9) queues no answer while a request's body is still arriving, so a body
 * refused part way (over its cap, which a chunked upload declares nowhere beforehand) is read
 * to its end and dropped, and the refusal answered then; a client that sends more than this
 * beyond the refusal is cut off. */
#define DROP_MAX (64u << 20)

/* An answer of at most this many bytes is sent as one TLS record. */
#define CORK_MAX (12 * 1024)

/* Sends what the TLS session held back, waiting for the socket as long as the idle timeout
 * allows (a thread per connection) or at most POOL_UNCORK_MS (a pool thread, which serves
 * other connections); a client that will not read by then is cut off. The socket is full
 * only for a client that sends requests without reading its answers. */
#define POOL_UNCORK_MS 100
static void uncork(struct rv_server *s, gnutls_session_t t, struct rv_srv_conn *k)
{
    int64_t until =
        mono_ms() + (s->cfg.threads == 0 ? (int64_t)s->cfg.idle_timeout * 1000 : POOL_UNCORK_MS);

    for (;;) {
        int rc = gnutls_record_uncork(t, 0), left, off = 0;
        struct pollfd p;
        if (rc >= 0) {
            /* libmicrohttpd corks the socket for the head it believes it sent ahead of the
             * body, and on Linux keeps it corked, pushing each answer with TCP_NODELAY after
             * its last send; but the record went out only now: push it, every time. The
             * kernel holds corked data for up to 200 ms: skipping this call when the socket
             * was thought uncorked already left about one answer in a hundred waiting that
             * long (the daemon's p99 was 200 ms in every mode; 54 ms with the call). */
            if (k != NULL && k->fd >= 0)
                (void)setsockopt(k->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
            return;
        }
        if ((rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED) || k == NULL || k->fd < 0)
            break;
        left = (int)(until - mono_ms());
        if (left <= 0)
            break;
        p.fd = k->fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, left) < 0 && errno != EINTR)
            break;
    }
    if (k != NULL && k->fd >= 0)
        (void)shutdown(k->fd, SHUT_RDWR);
}

static bool workq_put(struct rv_srv_workq *h, struct req *q, int work);

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *q = cls;
    struct rv_server *s = q->x.s;
    ssize_t n;

    (void)pos;
    if (q->filling) {
        /* Resumed: the chunk is checked (or the stream failed). */
        q->filling = false;
        atomic_fetch_sub(&s->suspended, 1);
    }
    /* With a pool, the rows are checked on a slow thread, the connection suspended meanwhile:
     * 0 bytes now, and libmicrohttpd asks again once it is resumed. */
    if (s->slowq != NULL && rv_srv_stream_pending(&q->x) && workq_put(s->slowq, q, WORK_FILL))
        return 0;
    n = rv_srv_stream(&q->x, buf, max);
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, struct req *q)
{
    struct rv_exchange *x = &q->x;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char ra[32];

    q->queued = true;
    if (x->r.stream)
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_cb, q, NULL);
    else if (x->r.body != NULL) {
        resp = MHD_create_response_from_buffer_with_free_callback_cls(x->r.len, x->r.body,
                                                                      wipe_free, x->r.body);
        if (resp != NULL)
            x->r.body = NULL; /* the response owns it now */
    } else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    /* libmicrohttpd sends the head and the body of an answer as two TLS records, in two
     * system calls, which the client must take apart again. A small answer is held in the
     * session and sent whole as one record when the request completes (on_completed),
     * before the thread reads the connection again. */
    if (!x->r.stream && x->r.len <= CORK_MAX) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci != NULL && ci->tls_session != NULL) {
            q->corked = ci->tls_session;
            gnutls_record_cork(q->corked);
        }
    }
    if (x->r.ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, x->r.ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    if (x->r.retry_after >= 0) {
        snprintf(ra, sizeof(ra), "%lld", (long long)x->r.retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (x->r.www_auth)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"regvault\"");
    if (x->r.allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, x->r.allow);
    ret = MHD_queue_response(c, (unsigned)x->r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- the pool: answers wait for the audit log without holding a thread -----------------
 *
 * With a pool, each step of an exchange that may record (begin, each piece of body, and the
 * end of the endpoints rv_srv_defers names) runs with the thread's audit appends joined to
 * the request's group: the gate's rv_audit_append then returns at once. When the answer is
 * made, the pool thread rouses the log's committer thread for the group (rv_audit_group_commit
 * of a group handed off: a pool thread never writes or syncs the log itself, which would
 * stall every connection it serves for the length of an fdatasync); unless the group is
 * already settled the connection is suspended, and the group's callback (run by the thread
 * that commits its entries, once every one is durable or has failed) resumes it;
 * libmicrohttpd then calls on_request again, which queues the answer, or 503
 * audit_unavailable in its place if an entry failed. So no byte of an answer is queued
 * before its entries are durable, and a pool thread never sleeps on the log. */
/* Resumes q's connection from a thread that is not its pool thread (the log's committer, a
 * work thread). libmicrohttpd marks the connection and then wakes its pool thread, which may
 * meanwhile have resumed it through other traffic and let the suspended count reach 0: the
 * daemon's stop also waits for every resume under way (s->resuming), so that it never
 * stops libmicrohttpd between the two. q may be gone once the call returns. */
static void resume(struct req *q)
{
    struct rv_server *s = q->x.s;

    atomic_fetch_add(&s->resuming, 1);
    MHD_resume_connection(q->c);
    atomic_fetch_sub(&s->resuming, 1);
}

static void group_done(void *ctx, int rc)
{
    struct req *q = ctx;

    if (atomic_load(&q->orphan)) {
        free(q); /* on_completed has already finished the exchange */
        return;
    }
    q->audit_rc = rc;
    resume(q);
}

/* Joins the calling thread's appends to q's group for one step (pool only). */
static void defer_enter(struct rv_server *s, struct req *q)
{
    if (s->cfg.threads == 0)
        return;
    if (q->group == NULL) {
        if (rv_audit_group_new(group_done, q, &q->group) != 0)
            q->group = NULL; /* out of memory: this step's appends wait, as with no pool */
        else
            rv_audit_group_handoff(q->group); /* the log's committer writes and syncs them */
    }
    (void)rv_audit_group_enter(q->group);
}

static void defer_leave(struct rv_server *s)
{
    if (s->cfg.threads != 0)
        (void)rv_audit_group_enter(NULL);
}

/* Waits, committing when the turn is free and otherwise asleep until woken by whoever
 * commits them, until q's group has answered all its entries; ends the group and returns
 * its result. For the requests that hold their thread. */
static int settle(struct req *q)
{
    struct rv_audit_group *g = q->group;
    int rc = 0;

    rv_audit_group_wait(g);
    q->group = NULL;
    if (rv_audit_group_close(g, &rc) != 0)
        return RV_EAUDIT; /* not reached: a settled group has nothing in flight */
    return rc;
}

/* The answer in q->x.r is made: queue it once the request's entries are durable. */
static enum MHD_Result answer(struct MHD_Connection *c, struct req *q)
{
    struct rv_server *s = q->x.s;
    struct rv_audit_group *g = q->group;
    int rc = 0;

    if (g == NULL)
        return send_answer(c, q);
    q->group = NULL;
    rv_audit_group_commit(g); /* rouses the committer unless the turn is held */
    if (rv_audit_group_settled(g)) {
        if (rv_audit_group_close(g, &rc) == 0) {
            if (rc != 0)
                rv_srv_audit_failed(&q->x);
            return send_answer(c, q);
        }
        /* Not reached: a settled group has nothing in flight. */
        return MHD_NO;
    }
    rv_srv_release_view(&q->x);
    /* Counted before the stop's flag is read, which the stop sets before it reads the count
     * (both in the one order of sequentially consistent operations): either the stop waits
     * for this connection, or the connection is not suspended, and this thread waits for the
     * log itself, as with no pool (libmicrohttpd must not be stopped with one suspended). */
    atomic_fetch_add(&s->suspended, 1);
    if (atomic_load(&s->stopping)) {
        atomic_fetch_sub(&s->suspended, 1);
        q->group = g;
        if (settle(q) != 0)
            rv_srv_audit_failed(&q->x);
        return send_answer(c, q);
    }
    q->waiting = true;
    MHD_suspend_connection(c);
    if (rv_audit_group_close(g, &rc) == 0) {
        /* Settled meanwhile: nobody else will resume it. */
        q->audit_rc = rc;
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

/* ---- the pool's work threads -------------------------------------------------------------
 *
 * A pool thread serves many connections, so nothing that takes long may run on it: it would
 * stall every connection that thread polls. Two kinds of work run on threads of their own,
 * each kind with its own threads and queue (a workq), with the connection suspended while
 * its work is queued or under way:
 *
 * - Password checks (Argon2id, 64 MiB, a tenth of a second or more: rv_srv_hashes) run on
 *   the password threads (half the cores, at least one). The pool thread admits the request
 *   (a login takes its address's token first); when HASHQ_PER_THREAD requests per thread are
 *   already waiting, it is refused 503 busy with Retry-After at once, recorded.
 *
 * - Every other request whose end does not defer its entries (rv_srv_defers: an ingest, a
 *   batch, audit proofs and checkpoints, alerts, the users' administration, a logout) runs
 *   on the slow threads (SLOWQ_THREADS): each such end waits for the log (its appends are
 *   durable before it acts), and some read or write for seconds (an ingest, the alerts over
 *   a long log). A batch's answer streams: each further chunk of its rows is checked on a
 *   slow thread too (stream_cb), in turn, so its rows are answered in their order.
 *
 * A work thread waits for the request's earlier entries (rv_audit_group_wait: an earlier one
 * that failed answers 503 audit_unavailable and nothing acts), runs the end of the exchange
 * with its appends waiting as with no pool, and resumes the connection, whose pool thread
 * then sends the answer. The connection is suspended before it is queued, so that its work
 * thread cannot resume it first, and counted in s->suspended, for which the daemon's stop
 * waits; once the stop has closed a queue (workq_close), what it would have taken runs on
 * the pool thread as without one. */
#define HASHQ_PER_THREAD 8
#define SLOWQ_THREADS    2

struct rv_srv_workq {
    pthread_mutex_t mu;
    pthread_cond_t more;
    struct req *head, *tail;
    size_t n, max; /* max 0: no limit but the connections' */
    bool closed;   /* the daemon stops: no more work is taken */
    bool stop;     /* the threads end once the queue is empty */
    int nthreads;
    pthread_t threads[];
};

static void *work_main(void *arg)
{
    struct rv_srv_workq *h = arg;

    for (;;) {
        struct req *q;
        pthread_mutex_lock(&h->mu);
        while (h->head == NULL && !h->stop)
            pthread_cond_wait(&h->more, &h->mu);
        if ((q = h->head) == NULL) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        h->head = q->work_next;
        if (h->head == NULL)
            h->tail = NULL;
        h->n--;
        pthread_mutex_unlock(&h->mu);
        if (q->work == WORK_FILL) {
            rv_srv_stream_fill(&q->x);
        } else {
            /* An earlier entry that failed leaves audit_rc set: nothing acts, the answer is
             * 503 audit_unavailable. */
            if (q->group == NULL || (q->audit_rc = settle(q)) == 0)
                rv_srv_end(&q->x);
            rv_srv_release_view(&q->x);
        }
        resume(q);
    }
    return NULL;
}

/* Takes no more work: what comes later runs on its pool thread (or, a password check, is
 * refused busy). What is queued still runs. */
static void workq_close(struct rv_srv_workq *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    pthread_mutex_unlock(&h->mu);
}

static void workq_stop(struct rv_srv_workq **hp)
{
    struct rv_srv_workq *h = *hp;

    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->closed = h->stop = true;
    pthread_cond_broadcast(&h->more);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);
    pthread_cond_destroy(&h->more);
    pthread_mutex_destroy(&h->mu);
    free(h);
    *hp = NULL;
}

static int workq_start(int n, size_t max, struct rv_srv_workq **hp)
{
    struct rv_srv_workq *h = calloc(1, sizeof(*h) + (size_t)n * sizeof(pthread_t));
    pthread_attr_t attr;

    if (h == NULL)
        return RV_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->more, NULL);
    h->max = max;
    *hp = h;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (; h->nthreads < n; h->nthreads++)
        if (pthread_create(&h->threads[h->nthreads], &attr, work_main, h) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (h->nthreads == 0) {
        workq_stop(hp);
        return RV_ENOMEM;
    }
    return 0;
}

/* Suspends q's connection and queues it for one of h's threads to do work (WORK_END: the
 * rest of the exchange; WORK_FILL: the next chunk of its streamed answer). false, with
 * nothing done, when h is full or closed. */
static bool workq_put(struct rv_srv_workq *h, struct req *q, int work)
{
    struct rv_server *s = q->x.s;

    pthread_mutex_lock(&h->mu);
    if ((h->max != 0 && h->n >= h->max) || h->closed) {
        pthread_mutex_unlock(&h->mu);
        return false;
    }
    q->work = (unsigned char)work;
    if (work == WORK_FILL)
        q->filling = true;
    else
        q->waiting = true;
    atomic_fetch_add(&s->suspended, 1);
    MHD_suspend_connection(q->c);
    q->work_next = NULL;
    if (h->tail != NULL)
        h->tail->work_next = q;
    else
        h->head = q;
    h->tail = q;
    h->n++;
    pthread_cond_signal(&h->more);
    pthread_mutex_unlock(&h->mu);
    return true;
}

/* Half the cores for passwords, at least one: the other half go on serving the pool. */
static int workq_start_all(struct rv_server *s)
{
    int n = s->pwhash_max / 2 < 1 ? 1 : s->pwhash_max / 2;
    int rc = workq_start(n, (size_t)n * HASHQ_PER_THREAD, &s->hashq);

    if (rc == 0 && (rc = workq_start(SLOWQ_THREADS, 0, &s->slowq)) != 0)
        workq_stop(&s->hashq);
    return rc;
}

/* The end of a request that hashes a password, with a pool: admitted and queued for a
 * password thread with its connection suspended, or refused at once. */
static enum MHD_Result hash_later(struct MHD_Connection *c, struct req *q)
{
    struct rv_server *s = q->x.s;
    int rc;

    defer_enter(s, q);
    rc = rv_srv_hash_admit(&q->x);
    defer_leave(s);
    if (rc != 0)
        return answer(c, q);
    if (workq_put(s->hashq, q, WORK_END))
        return MHD_YES;
    defer_enter(s, q);
    rv_srv_hash_busy(&q->x);
    defer_leave(s);
    return answer(c, q);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct rv_server *s = cls;
    struct req *q = *req_cls;
    (void)version;

    if (q == NULL) {
        struct rv_srv_conn *k = conn_of(c);
        struct rv_srv_source src = {mhd_header, mhd_arg, c};
        int rc;
        if (k != NULL && k->spare != NULL) {
            q = k->spare; /* one malloc fewer per request on a kept-alive connection */
            k->spare = NULL;
        } else if ((q = malloc(sizeof(*q))) == NULL) {
            return MHD_NO;
        }
        q->queued = false;
        q->corked = NULL;
        q->c = c;
        q->group = NULL;
        q->waiting = false;
        q->filling = false;
        atomic_init(&q->orphan, false);
        q->audit_rc = 0;
        q->refused = false;
        q->dropped = 0;
        rv_srv_init(&q->x, s);
        *req_cls = q;
        atomic_fetch_add(&s->inflight, 1);
        if (k != NULL) {
            k->deadline_ms = 0;
            q->x.certauth = &k->certauth;
        }
        defer_enter(s, q);
        rc =
            rv_srv_begin(&q->x, method, url, k != NULL ? k->client : "-", peer_cert(s, c, k), &src);
        defer_leave(s);
        return rc != 0 ? answer(c, q) : MHD_YES;
    }
    if (q->waiting) {
        /* Resumed: the request's entries are durable, or the log failed. */
        q->waiting = false;
        atomic_fetch_sub(&s->suspended, 1);
        *upload_data_size = 0;
        if (q->audit_rc != 0)
            rv_srv_audit_failed(&q->x);
        return send_answer(c, q);
    }
    if (*upload_data_size > 0) {
        int rc = 0;
        if (q->refused) {
            q->dropped += *upload_data_size;
            *upload_data_size = 0;
            return q->dropped <= DROP_MAX ? MHD_YES : MHD_NO;
        }
        if (!q->queued) {
            defer_enter(s, q);
            rc = rv_srv_body(&q->x, upload_data, *upload_data_size);
            defer_leave(s);
        }
        *upload_data_size = 0;
        if (rc != 0)
            q->refused = true; /* answered at the end of the body (DROP_MAX) */
        return MHD_YES;
    }
    if (q->queued)
        return MHD_YES;
    if (q->refused)
        return answer(c, q);
    if (rv_srv_defers(&q->x)) {
        defer_enter(s, q);
        rv_srv_end(&q->x);
        defer_leave(s);
    } else if (s->hashq != NULL && rv_srv_hashes(&q->x)) {
        return hash_later(c, q);
    } else if (s->slowq != NULL && workq_put(s->slowq, q, WORK_END)) {
        return MHD_YES; /* a slow thread ends it and resumes the connection */
    } else {
        /* No pool (or its stop has closed the slow threads' queue). A request that changes
         * what is stored acts only once the entries of its earlier steps (its certificate
         * login, say) are durable: a deferred entry can reach the log after a later one of
         * the same thread. A failed one answers 503, and nothing acts. */
        if (q->group != NULL && settle(q) != 0) {
            rv_srv_audit_failed(&q->x);
            return send_answer(c, q);
        }
        rv_srv_end(&q->x);
    }
    return answer(c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rv_server *s = cls;
    struct req *q = *req_cls;
    struct rv_srv_conn *k = conn_of(c);

    if (q == NULL)
        return;
    if (q->corked != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        uncork(s, q->corked, k);
    if (q->waiting || q->filling) {
        /* Resumed, but the client had gone: on_request (or stream_cb) was not called again. */
        q->waiting = q->filling = false;
        atomic_fetch_sub(&s->suspended, 1);
    }
    q->x.cut = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    rv_srv_finish(&q->x);
    *req_cls = NULL;
    if (q->group != NULL) {
        /* Ended before its answer was made (the client went away mid-upload) while entries
         * are in flight: the group's callback frees q. */
        struct rv_audit_group *g = q->group;
        int rc;
        atomic_store(&q->orphan, true);
        if (rv_audit_group_close(g, &rc) == 0)
            free(q);
    } else if (k != NULL && k->spare == NULL) {
        k->spare = q;
    } else {
        free(q);
    }
    atomic_fetch_sub(&s->inflight, 1);
    if (k != NULL)
        k->deadline_ms = mono_ms() + ((int64_t)s->cfg.idle_timeout + s->cfg.header_timeout) * 1000;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    rv_srv_log_msg(cls, "libmicrohttpd: %s", msg);
}

int rv_server_start(struct rv_server *s, int listen_fd, const char *cert_pem, const char *key_pem,
                    const char *ca_pem, struct rv_diag *d)
{
    unsigned int flags =
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[24];
    size_t n = 0;

#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (void *)(p)}
    atomic_store(&s->stopping, false);
    if ((s->cert_pem = strdup(cert_pem)) == NULL || (s->key_pem = strdup(key_pem)) == NULL ||
        (ca_pem != NULL && (s->ca_pem = strdup(ca_pem)) == NULL)) {
        rv_diag_set(d, "", 0, 0, "out of memory");
        return RV_ENOMEM;
    }
    if (s->cfg.threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    else
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s);
    OPT(MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL);
    OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem);
    OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem);
    OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, rv_server_tls_priorities());
    if (s->ca_pem != NULL)
        OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca_pem);
    OPT(MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout, NULL);
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16 * 1024, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, s);
    OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, s);
    OPT(MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL);
    if (s->cfg.threads == 0)
        OPT(MHD_OPTION_THREAD_STACK_SIZE, 512 * 1024, NULL);
    else
        OPT(MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, NULL);
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    if (s->cfg.threads != 0 && workq_start_all(s) != 0) {
        rv_diag_set(d, "", 0, 0,
                    "cannot start the threads that check passwords and run long requests: out "
                    "of memory");
        return RV_ENOMEM;
    }
    s->mhd = MHD_start_daemon(flags, 0, admit_connection, s, on_request, s, MHD_OPTION_ARRAY, opts,
                              MHD_OPTION_END);
    if (s->mhd == NULL) {
        workq_stop(&s->slowq);
        workq_stop(&s->hashq);
        rv_diag_set(d, "", 0, 0,
                    "libmicrohttpd could not start (a bad certificate or key, or too many "
                    "threads): see the log");
        return RV_EIO;
    }
    return 0;
}

void rv_server_stop(struct rv_server *s, uint32_t wait_ms)
{
    int64_t until = mono_ms() + wait_ms;
    MHD_socket fd;

    if (s->mhd == NULL)
        return;
    fd = MHD_quiesce_daemon(s->mhd);
    while (atomic_load(&s->inflight) > 0 && mono_ms() < until) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    /* A suspended connection waits only for the audit log, which answers every entry (or
     * fails them all), or for its work thread; libmicrohttpd must not be stopped while one
     * is suspended. From now on no connection is suspended (answer, workq_put): a pool
     * thread waits for the log itself, the work queues take no more (a batch still
     * streaming checks its next chunks on its pool thread), so that none is suspended once
     * the count is 0. */
    atomic_store(&s->stopping, true);
    workq_close(s->slowq);
    workq_close(s->hashq);
    while (atomic_load(&s->suspended) > 0 || atomic_load(&s->resuming) > 0) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    workq_stop(&s->slowq);
    workq_stop(&s->hashq);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    rv_srv_log_flush(s);
}

void rv_server_tick(struct rv_server *s)
{
    int64_t now = mono_ms();

    rv_srv_log_flush(s);
    (void)rv_sessions_sweep(s->sessions);
    pthread_mutex_lock(&s->conn_lock);
    for (struct rv_srv_conn *k = s->conns; k != NULL; k = k->next)
        if (k->deadline_ms != 0 && now > k->deadline_ms && k->fd >= 0) {
            (void)shutdown(k->fd, SHUT_RDWR);
            k->deadline_ms = 0;
        }
    pthread_mutex_unlock(&s->conn_lock);
}

int rv_server_bind(const char *addr, int *fd, int *port, struct rv_diag *d)
{
    char host[256], *colon;
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int one = 1, rc, sock = -1;

    *fd = -1;
    snprintf(host, sizeof(host), "%s", addr);
    if ((colon = strrchr(host, ':')) == NULL) {
        rv_diag_set(d, "", 0, 0, "listen must be ADDRESS:PORT");
        return RV_EINVAL;
    }
    *colon = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    {
        char *h = host;
        size_t hl = strlen(h);
        if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
            h[hl - 1] = '\0';
            h++;
        }
        rc = getaddrinfo(h, colon + 1, &hints, &ai);
    }
    if (rc != 0 || ai == NULL) {
        rv_diag_set(d, "", 0, 0,
                    "listen address %.64s is not a numeric IPv4 or IPv6 address: write one, "
                    "such as 127.0.0.1:8443",
                    addr);
        return RV_EINVAL;
    }
    if ((sock = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(sock, ai->ai_addr, ai->ai_addrlen) != 0 || listen(sock, 1024) != 0 ||
        getsockname(sock, (struct sockaddr *)&ss, &sl) != 0) {
        rv_diag_set(d, "", 0, 0, "cannot listen on %.64s: %s", addr, strerror(errno));
        if (sock >= 0)
            close(sock);
        freeaddrinfo(ai);
        return RV_EIO;
    }
    freeaddrinfo(ai);
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd = sock;
    return 0;
}
