/*
 * The REST API server on libmicrohttpd (see rest.h for what it serves).
 *
 * MHD runs a small pool of worker threads polling their connections
 * (MHD_USE_AUTO_INTERNAL_THREAD + MHD_OPTION_THREAD_POOL_SIZE) on a listen
 * socket bound here, as Patroni binds it.  Health checks are answered in the
 * worker from the published state.  A request for the HA loop is put on a
 * bounded FIFO and its connection suspended; the loop answers with
 * pgkeel_rest_reply(), which stores the answer and resumes the connection;
 * MHD then calls the access handler again, which sends the stored answer.
 *
 * A queued request (struct req) is referenced by its connection and by the
 * queue, whose reference passes to the loop with next_request() and ends
 * with reply().  All request state is guarded by the server mutex; the
 * order of locks is server mutex -> MHD's internal mutexes (suspend and
 * resume are called with it held, so that a reply can never resume a
 * connection that is not suspended yet).  A reaper thread answers requests
 * whose deadline passed; stop() answers the rest before MHD_stop_daemon()
 * (MHD refuses to stop with suspended connections).  The server itself is
 * refcounted by its requests, so a loop may reply after stop().
 */
#include "autoconf.h"

#include "rest.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "config.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "rest_internal.h"
#include "state.h"
#include "util.h"

#define DEFAULT_THREADS          2
#define DEFAULT_CONN_TIMEOUT_S   30
#define DEFAULT_MAX_CONNECTIONS  512
#define DEFAULT_PER_IP           128
#define DEFAULT_BACKLOG          128
#define DEFAULT_QUEUE_MAX        16
#define DEFAULT_REPLY_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY         (64 * 1024)

enum req_state {
	RQ_QUEUED, /* on the queue, the loop has not taken it */
	RQ_TAKEN,  /* the loop holds it */
	RQ_ANSWERED,
};

struct req {
	struct pgkeel_rest_req pub; /* first: the loop's pointer is this */
	struct pgkeel_rest *srv;
	int refs; /* under srv->mu */
	enum req_state st;
	struct MHD_Connection *conn; /* NULL once the request completed */
	bool suspended;
	struct req *qnext;         /* queue (FIFO) */
	struct req *pprev, *pnext; /* pending list: QUEUED or TAKEN */
	/* the answer */
	int status;
	char *ctype;
	char *body;
	bool page; /* a send_error page: Connection: close */
	/* what pub points to */
	struct pgkeel_rest_failover_req fo;
	char client[64];
};

struct pgkeel_rest {
	int refs; /* atomic: the owner, and each request */
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the reaper's (CLOCK_MONOTONIC) */
	pthread_t reaper;
	bool reaper_started;
	bool stopping;
	struct req *q_head, *q_tail;
	size_t q_len;
	struct req *pending;
	bool have_failsafe;
	struct pgkeel_rest_failsafe failsafe;
	/* options, copied */
	char *auth_key; /* base64(user:password); NULL: no auth */
	char **headers; /* name, value pairs */
	size_t n_headers;
	size_t queue_max;
	int reply_timeout_ms;
	int switchover_wait_ms;
	size_t max_body;
	char *version;
};

/* Per request (MHD's con_cls). */
enum route {
	R_HEALTH = 0,
	R_PATRONI,
	R_LIVENESS,
	R_READINESS,
	R_GET_FAILSAFE,
	R_POST_FAILSAFE,
	R_SWITCHOVER,
	R_FAILOVER,
	R_UNSUPPORTED,
};

struct conn {
	struct pgkeel_rest *srv;
	enum route route;
	bool status_only; /* HEAD, OPTIONS */
	bool refused;     /* an answer was queued before the body was read */
	int64_t start_ms;
	struct pgkeel_sbuf body;
	struct req *req;
};

/* ------------------------------------------------------------- helpers */

static const struct {
	int code;
	const char *reason;
	const char *explain;
} reasons[] = {
    {200, "OK", "Request fulfilled, document follows"},
    {202, "Accepted", "Request accepted, processing continues off-line"},
    {400, "Bad Request", "Bad request syntax or unsupported method"},
    {401, "Unauthorized", "No permission -- see authorization schemes"},
    {403, "Forbidden", "Request forbidden -- authorization will not help"},
    {404, "Not Found", "Nothing matches the given URI"},
    {409, "Conflict", "Request conflict"},
    {411, "Length Required", "Client must specify Content-Length"},
    {412, "Precondition Failed", "Precondition in headers is false"},
    {413, "Request Entity Too Large", "Entity is too large"},
    {422, "Unprocessable Entity", ""},
    {500, "Internal Server Error", "Server got itself in trouble"},
    {501, "Not Implemented", "Server does not support this operation"},
    {502, "Bad Gateway", "Invalid responses from another server/proxy"},
    {503, "Service Unavailable", "The server cannot process the request due to a high load"},
};

static size_t reason_idx(int status)
{
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(reasons); i++)
		if (reasons[i].code == status)
			return i;
	return PGKEEL_ARRAY_LEN(reasons);
}

const char *pgkeel_rest_reason(int status)
{
	size_t i = reason_idx(status);

	return i < PGKEEL_ARRAY_LEN(reasons) ? reasons[i].reason : "???";
}

/* html.escape(s, quote=False) */
static void put_html(struct pgkeel_sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '&')
			pgkeel_sbuf_puts(b, "&amp;");
		else if (*s == '<')
			pgkeel_sbuf_puts(b, "&lt;");
		else if (*s == '>')
			pgkeel_sbuf_puts(b, "&gt;");
		else
			pgkeel_sbuf_putc(b, *s);
	}
}

char *pgkeel_rest_error_page(int status, const char *message)
{
	size_t i = reason_idx(status);
	const char *explain = i < PGKEEL_ARRAY_LEN(reasons) ? reasons[i].explain : "???";
	struct pgkeel_sbuf b = {0};

	if (message == NULL)
		message = pgkeel_rest_reason(status);
	pgkeel_sbuf_puts(&b, "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n"
	                     "        <meta charset=\"utf-8\">\n"
	                     "        <title>Error response</title>\n    </head>\n    <body>\n"
	                     "        <h1>Error response</h1>\n        <p>Error code: ");
	pgkeel_sbuf_printf(&b, "%d", status);
	pgkeel_sbuf_puts(&b, "</p>\n        <p>Message: ");
	put_html(&b, message);
	pgkeel_sbuf_puts(&b, ".</p>\n        <p>Error code explanation: ");
	pgkeel_sbuf_printf(&b, "%d", status);
	pgkeel_sbuf_puts(&b, " - ");
	put_html(&b, explain);
	pgkeel_sbuf_puts(&b, ".</p>\n    </body>\n</html>\n");
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_rest_base64(const char *s, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = pgkeel_xcalloc(4 * ((len + 2) / 3) + 1, 1);
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	return out;
}

/* hmac.compare_digest: time independent of where the strings differ. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i < lb ? i : 0];
	return diff == 0;
}

bool pgkeel_rest_split_listen(const char *listen, char **host, int *port)
{
	const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
	int64_t p;
	char *h, *ps;
	bool ok;

	*host = NULL;
	if (colon == NULL)
		return false;
	ps = pgkeel_strdup(colon + 1);
	ok = pgkeel_parse_int64(ps, &p) && p >= 0 && p <= 65535;
	free(ps);
	if (!ok)
		return false;
	h = pgkeel_dup_bytes(listen, (size_t)(colon - listen));
	if (strchr(h, ':') != NULL) {
		size_t n = strlen(h);

		if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
			memmove(h, h + 1, n - 2);
			h[n - 2] = '\0';
		}
	}
	*host = h;
	*port = (int)p;
	return true;
}

/* Wall-clock time: only for scheduled_at. */
static int64_t now_epoch_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_loop(void)
{
	const struct pgkeel_host *h = pgkeel_host_get();

	if (h != NULL)
		h->post_event(h->ctx, PGKEEL_EVENT_OTHER);
}

/* ------------------------------------------------------------ requests */

static void srv_unref(struct pgkeel_rest *srv);

/* Under srv->mu; returns true when the caller must free r (outside the lock). */
static bool req_unref_locked(struct req *r)
{
	return --r->refs == 0;
}

static void req_free(struct req *r)
{
	struct pgkeel_rest *srv;

	if (r == NULL)
		return;
	srv = r->srv;
	pgkeel_rest_failover_req_clear(&r->fo);
	json_object_put(r->pub.body);
	free(r->ctype);
	free(r->body);
	free(r);
	srv_unref(srv);
}

static void pending_remove(struct pgkeel_rest *srv, struct req *r)
{
	if (r->pprev != NULL)
		r->pprev->pnext = r->pnext;
	else if (srv->pending == r)
		srv->pending = r->pnext;
	if (r->pnext != NULL)
		r->pnext->pprev = r->pprev;
	r->pprev = r->pnext = NULL;
}

/* Remove r from the queue; true when it was there. */
static bool queue_remove(struct pgkeel_rest *srv, struct req *r)
{
	struct req **pp = &srv->q_head, *prev = NULL;

	for (; *pp != NULL; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp != r)
			continue;
		*pp = r->qnext;
		if (srv->q_tail == r)
			srv->q_tail = prev;
		r->qnext = NULL;
		srv->q_len--;
		return true;
	}
	return false;
}

/*
 * Store the answer and wake the connection; under srv->mu.  Returns true
 * when the caller must free r (it dropped the queue's reference).
 */
static bool answer_locked(struct req *r, int status, const char *ctype, const char *body, bool page)
{
	struct pgkeel_rest *srv = r->srv;
	bool drop = false;

	if (r->st == RQ_ANSWERED)
		return false;
	if (r->st == RQ_QUEUED && queue_remove(srv, r))
		drop = req_unref_locked(r);
	pending_remove(srv, r);
	r->st = RQ_ANSWERED;
	r->status = status;
	r->ctype = pgkeel_strdup(ctype);
	r->body = pgkeel_strdup(body != NULL ? body : "");
	r->page = page;
	if (r->suspended && r->conn != NULL) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
	}
	return drop;
}

static void timeout_answer_locked(struct req *r, struct req **to_free)
{
	char text[128];

	if (r->st == RQ_TAKEN)
		(void)pgkeel_rest_failover_unknown(r->pub.kind, text, sizeof(text));
	else
		(void)pgkeel_fmt(text, sizeof(text),
		                 "%s request not processed: the HA loop did not take it in time",
		                 pgkeel_rest_kind_name(r->pub.kind));
	log_warning("REST API: %s request from %s: no answer from the HA loop in time (%s)",
	            pgkeel_rest_kind_name(r->pub.kind), r->client,
	            r->st == RQ_TAKEN ? "taken" : "still queued");
	if (answer_locked(r, 503, "text/html", text, false))
		*to_free = r;
}

static void *reaper_main(void *arg)
{
	struct pgkeel_rest *srv = arg;

	pthread_mutex_lock(&srv->mu);
	while (!srv->stopping) {
		int64_t now = pgkeel_now_monotonic_ms(), next = INT64_MAX;
		struct req *expired = NULL, *to_free = NULL;

		for (struct req *r = srv->pending; r != NULL; r = r->pnext) {
			if (r->pub.deadline_ms <= now) {
				expired = r;
				break;
			}
			if (r->pub.deadline_ms < next)
				next = r->pub.deadline_ms;
		}
		if (expired != NULL) {
			timeout_answer_locked(expired, &to_free);
			if (to_free != NULL) {
				pthread_mutex_unlock(&srv->mu);
				req_free(to_free);
				pthread_mutex_lock(&srv->mu);
			}
			continue;
		}
		if (next == INT64_MAX) {
			pthread_cond_wait(&srv->cv, &srv->mu);
		} else {
			struct timespec ts = {.tv_sec = next / 1000,
			                      .tv_nsec = (long)(next % 1000) * 1000000};

			(void)pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

size_t pgkeel_rest_queued(struct pgkeel_rest *srv)
{
	size_t n;

	pthread_mutex_lock(&srv->mu);
	n = srv->q_len;
	pthread_mutex_unlock(&srv->mu);
	return n;
}

struct pgkeel_rest_req *pgkeel_rest_next_request(struct pgkeel_rest *srv)
{
	struct req *r;

	if (srv == NULL)
		return NULL;
	pthread_mutex_lock(&srv->mu);
	r = srv->q_head;
	if (r != NULL) {
		srv->q_head = r->qnext;
		if (srv->q_head == NULL)
			srv->q_tail = NULL;
		r->qnext = NULL;
		srv->q_len--;
		r->st = RQ_TAKEN; /* the queue's reference is now the loop's */
	}
	pthread_mutex_unlock(&srv->mu);
	return r != NULL ? &r->pub : NULL;
}

static void reply_common(struct pgkeel_rest_req *pub, int status, const char *ctype,
                         const char *body, bool page)
{
	struct req *r = (struct req *)pub;
	struct pgkeel_rest *srv;
	bool free_it;

	if (r == NULL)
		return;
	srv = r->srv;
	pthread_mutex_lock(&srv->mu);
	if (r->st == RQ_ANSWERED)
		log_debug("REST API: late answer %d to a %s request from %s ignored", status,
		          pgkeel_rest_kind_name(pub->kind), r->client);
	else
		(void)answer_locked(r, status, ctype, body, page);
	free_it = req_unref_locked(r);
	pthread_mutex_unlock(&srv->mu);
	if (free_it)
		req_free(r);
}

void pgkeel_rest_reply(struct pgkeel_rest_req *req, int status, const char *content_type,
                       const char *body)
{
	reply_common(req, status, content_type != NULL ? content_type : "text/html", body, false);
}

void pgkeel_rest_reply_error(struct pgkeel_rest_req *req, int status)
{
	char *page = pgkeel_rest_error_page(status, NULL);

	reply_common(req, status, "text/html;charset=utf-8", page, true);
	free(page);
}

/* ------------------------------------------------------------ failsafe */

void pgkeel_rest_failsafe_clear(struct pgkeel_rest_failsafe *f)
{
	free(f->name);
	free(f->conn_url);
	free(f->api_url);
	free(f->slots_json);
	memset(f, 0, sizeof(*f));
}

static void failsafe_copy(struct pgkeel_rest_failsafe *dst, const struct pgkeel_rest_failsafe *src)
{
	dst->name = pgkeel_strdup(src->name);
	dst->conn_url = pgkeel_strdup(src->conn_url);
	dst->api_url = pgkeel_strdup(src->api_url);
	dst->slots_json = pgkeel_strdup(src->slots_json);
	dst->received_ms = src->received_ms;
}

bool pgkeel_rest_failsafe_last(struct pgkeel_rest *srv, struct pgkeel_rest_failsafe *out)
{
	bool have;

	memset(out, 0, sizeof(*out));
	if (srv == NULL)
		return false;
	pthread_mutex_lock(&srv->mu);
	have = srv->have_failsafe;
	if (have)
		failsafe_copy(out, &srv->failsafe);
	pthread_mutex_unlock(&srv->mu);
	return have;
}

/* ------------------------------------------------------------ responses */

static void log_access(struct MHD_Connection *c, struct conn *cc, const char *method,
                       const char *url, const char *version, int status)
{
	const union MHD_ConnectionInfo *ci;
	char host[NI_MAXHOST] = "?";

	if (pgkeel_log_threshold() < PGKEEL_LOG_DEBUG)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL)
		(void)getnameinfo(ci->client_addr,
		                  ci->client_addr->sa_family == AF_INET6
		                      ? sizeof(struct sockaddr_in6)
		                      : sizeof(struct sockaddr_in),
		                  host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	log_debug("API thread: %s - - \"%s %s %s\" %d - latency: %lld ms", host, method, url,
	          version, status, (long long)(pgkeel_now_monotonic_ms() - cc->start_ms));
}

enum body_kind {
	B_STATUS_ONLY, /* no body, no headers (HEAD, OPTIONS, /liveness, /readiness) */
	B_NORMAL,      /* _write_response: Content-Type + http_extra_headers */
	B_PAGE,        /* send_error: the HTML page, Connection: close */
};

struct answer {
	int status;
	enum body_kind kind;
	const char *ctype;
	char *body; /* malloc'd, handed to MHD */
	const char *www_auth;
};

static enum MHD_Result send_answer(struct MHD_Connection *c, struct conn *cc, struct answer *a,
                                   const char *method, const char *url, const char *version)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;

	if (a->kind == B_PAGE && a->body == NULL)
		a->body = pgkeel_rest_error_page(a->status, NULL);
	if (a->kind == B_STATUS_ONLY || a->body == NULL || strcmp(method, "HEAD") == 0) {
		free(a->body);
		a->body = NULL;
	}
	len = a->body != NULL ? strlen(a->body) : 0;
	resp = MHD_create_response_from_buffer(len, a->body != NULL ? a->body : (void *)"",
	                                       a->body != NULL ? MHD_RESPMEM_MUST_FREE
	                                                       : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(a->body);
		return MHD_NO;
	}
	a->body = NULL;
	if (a->kind == B_PAGE) {
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                              "text/html;charset=utf-8");
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	} else if (a->kind == B_NORMAL) {
		if (a->ctype != NULL)
			(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
		if (a->www_auth != NULL)
			(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			                              a->www_auth);
		for (size_t i = 0; i < cc->srv->n_headers; i++)
			(void)MHD_add_response_header(resp, cc->srv->headers[2 * i],
			                              cc->srv->headers[2 * i + 1]);
	}
	ret = MHD_queue_response(c, (unsigned)a->status, resp);
	MHD_destroy_response(resp);
	log_access(c, cc, method, url, version, a->status);
	return ret;
}

static void set_text(struct answer *a, int status, const char *text)
{
	a->status = status;
	a->kind = B_NORMAL;
	a->ctype = "text/html";
	a->body = pgkeel_strdup(text);
}

static void set_page(struct answer *a, int status)
{
	a->status = status;
	a->kind = B_PAGE;
	a->body = NULL;
}

/* ------------------------------------------------------------- routing */

static const struct {
	const char *method;
	const char *segment;
	enum route route;
} routes[] = {
    {"GET", "patroni", R_PATRONI},         {"GET", "liveness", R_LIVENESS},
    {"GET", "readiness", R_READINESS},     {"GET", "failsafe", R_GET_FAILSAFE},
    {"POST", "failsafe", R_POST_FAILSAFE}, {"POST", "switchover", R_SWITCHOVER},
    {"POST", "failover", R_FAILOVER},
};

/* Patroni's parse_request: do_<METHOD>_<first segment>, else do_<METHOD>. */
static enum route route_of(const char *method, const char *url)
{
	const char *seg = url, *end;
	size_t n;

	while (*seg == '/')
		seg++;
	end = strchr(seg, '/');
	n = end != NULL ? (size_t)(end - seg) : strlen(seg);
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(routes); i++)
		if (strcmp(method, routes[i].method) == 0 && strlen(routes[i].segment) == n &&
		    strncmp(seg, routes[i].segment, n) == 0)
			return routes[i].route;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	    strcmp(method, "OPTIONS") == 0)
		return R_HEALTH;
	return R_UNSUPPORTED;
}

/* --------------------------------------------------------------- handlers */

struct qcollect {
	struct pgkeel_rest_qparam q[32];
	size_t n;
};

/* parse_qs: blank values dropped, the first value of a key wins. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	struct qcollect *qc = cls;

	(void)kind;
	if (k == NULL || v == NULL || v[0] == '\0')
		return MHD_YES;
	for (size_t i = 0; i < qc->n; i++)
		if (strcmp(qc->q[i].key, k) == 0)
			return MHD_YES;
	if (qc->n == PGKEEL_ARRAY_LEN(qc->q))
		return MHD_NO;
	qc->q[qc->n].key = k;
	qc->q[qc->n].value = v;
	qc->n++;
	return MHD_YES;
}

static void handle_health(struct MHD_Connection *c, struct conn *cc, const char *url,
                          struct answer *a)
{
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;
	struct qcollect qc = {.n = 0};
	int64_t now = pgkeel_now_boottime_ms(); /* the clock of the state's deadlines */

	(void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &qc);
	pgkeel_state_acquire(&v);
	pgkeel_rest_pgview_get(&v, now, &pv);
	switch (cc->route) {
	case R_LIVENESS:
		a->status = pgkeel_rest_liveness_code(&v, now);
		a->kind = B_STATUS_ONLY;
		break;
	case R_READINESS:
		a->status = pgkeel_rest_readiness_code(&v, &pv);
		a->kind = B_STATUS_ONLY;
		break;
	case R_PATRONI:
		a->status = 200;
		a->kind = B_NORMAL;
		break;
	default:
		a->status = pgkeel_rest_health_code(&v, &pv, url, qc.q, qc.n);
		a->kind = cc->status_only ? B_STATUS_ONLY : B_NORMAL;
		break;
	}
	if (a->kind == B_NORMAL) {
		a->ctype = "application/json";
		a->body = pgkeel_rest_status_json(&v, &pv, cc->srv->version);
	}
	pgkeel_state_release(&v);
}

static void handle_get_failsafe(struct answer *a)
{
	struct pgkeel_state_view v;

	pgkeel_state_acquire(&v);
	a->body = pgkeel_rest_failsafe_json(&v);
	pgkeel_state_release(&v);
	if (a->body == NULL) {
		set_page(a, 502);
		return;
	}
	a->status = 200;
	a->kind = B_NORMAL;
	a->ctype = "application/json";
}

/* check_access: basic auth (allowlist and client certificates: issue 6). */
static bool check_access(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	const char *h;

	if (cc->srv->auth_key == NULL)
		return true;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL)
		set_text(a, 401, "no auth header received");
	else if (strncmp(h, "Basic ", 6) != 0 || !same_secret(h + 6, cc->srv->auth_key))
		set_text(a, 401, "not authenticated");
	else
		return true;
	a->www_auth = "Basic realm=\"Patroni\"";
	return false;
}

/* _read_json_content: the object, or NULL with the 411/400 page set. */
static struct json_object *read_json(struct MHD_Connection *c, struct conn *cc, bool optional,
                                     struct answer *a)
{
	struct json_object *o = NULL;
	char err[160];

	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) ==
	    NULL) {
		if (optional)
			return json_object_new_object();
		set_page(a, 411);
		return NULL;
	}
	if (cc->body.len == 0 && optional)
		return json_object_new_object();
	if (!pgkeel_json_parse(cc->body.p != NULL ? cc->body.p : "", cc->body.len, &o, err,
	                       sizeof(err))) {
		log_warning("REST API: bad request body: %s", err);
	} else if (o != NULL && json_object_is_type(o, json_type_object) &&
	           (optional || json_object_object_length(o) > 0)) {
		return o;
	}
	json_object_put(o);
	set_page(a, 400);
	return NULL;
}

static char *field_text(struct json_object *body, const char *name, bool none_as_null)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(body, name, &v) || v == NULL)
		return none_as_null ? NULL : pgkeel_strdup("None");
	if (json_object_is_type(v, json_type_string))
		return pgkeel_strdup(json_object_get_string(v));
	return pgkeel_json_compact(v);
}

static void handle_post_failsafe(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	struct pgkeel_rest *srv = cc->srv;
	struct pgkeel_state_view v;
	struct pgkeel_rest_failsafe fs = {0};
	struct json_object *body, *slots = NULL;
	bool mode, leader;

	if (!check_access(c, cc, a))
		return;
	pgkeel_state_acquire(&v);
	mode = v.loop != NULL && v.loop->failsafe_mode;
	leader = v.loop != NULL && v.loop->pg_state != NULL &&
	         strcmp(v.loop->pg_state, "running") == 0 &&
	         v.loop->role == PGKEEL_STATE_ROLE_MASTER;
	pgkeel_state_release(&v);
	if (!mode) {
		set_page(a, 502);
		return;
	}
	body = read_json(c, cc, false, a);
	if (body == NULL)
		return;
	if (leader) {
		set_text(a, 500, "Running as a leader");
		json_object_put(body);
		return;
	}
	fs.name = field_text(body, "name", true);
	fs.conn_url = field_text(body, "conn_url", true);
	fs.api_url = field_text(body, "api_url", true);
	if (json_object_object_get_ex(body, "slots", &slots) && slots != NULL)
		fs.slots_json = pgkeel_json_compact(slots);
	json_object_put(body);
	if (fs.name == NULL || fs.conn_url == NULL || fs.api_url == NULL) {
		pgkeel_rest_failsafe_clear(&fs);
		set_page(a, 400);
		return;
	}
	fs.received_ms = pgkeel_now_boottime_ms();
	pthread_mutex_lock(&srv->mu);
	pgkeel_rest_failsafe_clear(&srv->failsafe);
	srv->failsafe = fs;
	srv->have_failsafe = true;
	pthread_mutex_unlock(&srv->mu);
	wake_loop();
	set_text(a, 200, "Accepted");
}

/*
 * POST /switchover, /failover: answer now (a != ready) or queue; true when
 * queued and suspended.
 */
static bool handle_failover(struct MHD_Connection *c, struct conn *cc, enum pgkeel_rest_kind kind,
                            struct answer *a)
{
	struct pgkeel_rest *srv = cc->srv;
	struct pgkeel_rest_failover_req fo;
	struct pgkeel_state_view v;
	struct json_object *body;
	const union MHD_ConnectionInfo *ci;
	char msg[256], *l, *cand, *sched;
	bool paused;
	int loop_wait, status;
	struct req *r;

	if (!check_access(c, cc, a))
		return false;
	body = read_json(c, cc, false, a);
	if (body == NULL)
		return false;
	l = field_text(body, "leader", false);
	cand = field_text(body, "candidate", false);
	sched = field_text(body, "scheduled_at", false);
	log_info("received %s request with leader=%s candidate=%s scheduled_at=%s",
	         pgkeel_rest_kind_name(kind), l, cand, sched);
	free(l);
	free(cand);
	free(sched);

	pgkeel_state_acquire(&v);
	paused = v.loop != NULL && v.loop->paused;
	loop_wait = v.loop != NULL ? v.loop->loop_wait : 10;
	pgkeel_state_release(&v);
	status =
	    pgkeel_rest_failover_parse(kind, body, paused, now_epoch_ms(), &fo, msg, sizeof(msg));
	if (status != 0) {
		json_object_put(body);
		set_text(a, status, msg);
		return false;
	}

	r = pgkeel_xcalloc(1, sizeof(*r));
	r->fo = fo;
	r->pub.kind = kind;
	r->pub.leader = r->fo.leader;
	r->pub.candidate = r->fo.candidate;
	r->pub.scheduled_at = r->fo.scheduled_at;
	r->pub.scheduled_at_ms = r->fo.scheduled_at_ms;
	r->pub.body = body;
	r->pub.client = r->client;
	r->pub.deadline_ms = pgkeel_now_monotonic_ms() + srv->reply_timeout_ms;
	if (r->fo.scheduled_at == NULL)
		r->pub.deadline_ms += srv->switchover_wait_ms > 0
		                          ? srv->switchover_wait_ms
		                          : pgkeel_rest_failover_wait_ms(loop_wait);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    getnameinfo(ci->client_addr,
	                ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                       : sizeof(struct sockaddr_in),
	                r->client, sizeof(r->client), NULL, 0, NI_NUMERICHOST) != 0)
		(void)pgkeel_fmt(r->client, sizeof(r->client), "?");
	r->srv = srv;
	__atomic_add_fetch(&srv->refs, 1, __ATOMIC_RELAXED);
	r->conn = c;
	r->refs = 2; /* the connection and the queue */

	pthread_mutex_lock(&srv->mu);
	if (srv->stopping || srv->q_len >= srv->queue_max) {
		bool stopping = srv->stopping;

		pthread_mutex_unlock(&srv->mu);
		r->conn = NULL;
		req_free(r);
		set_text(a, 503,
		         stopping ? "the REST API is shutting down"
		                  : "too many requests are waiting for the HA loop");
		return false;
	}
	r->st = RQ_QUEUED;
	if (srv->q_tail != NULL)
		srv->q_tail->qnext = r;
	else
		srv->q_head = r;
	srv->q_tail = r;
	srv->q_len++;
	r->pnext = srv->pending;
	if (srv->pending != NULL)
		srv->pending->pprev = r;
	srv->pending = r;
	MHD_suspend_connection(c);
	r->suspended = true;
	cc->req = r;
	pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	wake_loop();
	return true;
}

/* ------------------------------------------------------------ MHD glue */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct pgkeel_rest *srv = cls;
	struct conn *cc = *con_cls;
	struct answer a = {.status = 500, .kind = B_NORMAL};

	if (cc == NULL) {
		const char *cl;

		cc = pgkeel_xcalloc(1, sizeof(*cc));
		cc->srv = srv;
		cc->start_ms = pgkeel_now_monotonic_ms();
		cc->route = route_of(method, url);
		cc->status_only = strcmp(method, "HEAD") == 0 || strcmp(method, "OPTIONS") == 0;
		*con_cls = cc;
		cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > srv->max_body) {
			cc->refused = true;
			set_page(&a, 413);
			return send_answer(c, cc, &a, method, url, version);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (!cc->refused && cc->body.len + *upload_data_size <= srv->max_body)
			pgkeel_sbuf_put(&cc->body, upload_data, *upload_data_size);
		else if (!cc->refused) {
			cc->refused = true;
			*upload_data_size = 0;
			set_page(&a, 413);
			return send_answer(c, cc, &a, method, url, version);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (cc->refused)
		return MHD_YES;
	if (cc->req != NULL) {
		/* resumed: send what the loop (or the reaper) answered */
		struct req *r = cc->req;

		pthread_mutex_lock(&srv->mu);
		a.status = r->status;
		a.kind = r->page ? B_PAGE : B_NORMAL;
		a.ctype = a.kind == B_NORMAL ? r->ctype : NULL;
		a.body = pgkeel_strdup(r->body);
		pthread_mutex_unlock(&srv->mu);
		return send_answer(c, cc, &a, method, url, version);
	}

	switch (cc->route) {
	case R_HEALTH:
	case R_PATRONI:
	case R_LIVENESS:
	case R_READINESS:
		handle_health(c, cc, url, &a);
		break;
	case R_GET_FAILSAFE:
		handle_get_failsafe(&a);
		break;
	case R_POST_FAILSAFE:
		handle_post_failsafe(c, cc, &a);
		break;
	case R_SWITCHOVER:
	case R_FAILOVER:
		if (handle_failover(c, cc,
		                    cc->route == R_FAILOVER ? PGKEEL_REST_FAILOVER
		                                            : PGKEEL_REST_SWITCHOVER,
		                    &a))
			return MHD_YES;
		break;
	case R_UNSUPPORTED: {
		char *m = pgkeel_asprintf("Unsupported method ('%s')", method);

		a.status = 501;
		a.kind = B_PAGE;
		a.body = pgkeel_rest_error_page(501, m);
		free(m);
		break;
	}
	}
	return send_answer(c, cc, &a, method, url, version);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct pgkeel_rest *srv = cls;
	struct conn *cc = *con_cls;
	bool free_it = false;

	(void)c;
	(void)toe;
	if (cc == NULL)
		return;
	*con_cls = NULL;
	if (cc->req != NULL) {
		pthread_mutex_lock(&srv->mu);
		cc->req->conn = NULL;
		cc->req->suspended = false;
		free_it = req_unref_locked(cc->req);
		pthread_mutex_unlock(&srv->mu);
		if (free_it)
			req_free(cc->req);
	}
	free(cc->body.p);
	free(cc);
}

/* TCP keepalive as Patroni's enable_keepalive(sock, 10, 3). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	int one = 1, idle = 3, intvl = 2, cnt = 3;
	unsigned int user_timeout = 10000;

	(void)cls;
	(void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	(void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
	                 sizeof(user_timeout));
	(void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) PGKEEL_PRINTF(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	if (!pgkeel_vfmt(line, sizeof(line), fmt, ap) && line[0] == '\0')
		return;
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warning("REST API: %s", line);
}

/* -------------------------------------------------------- start and stop */

static bool has_dual_stack(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0;
	bool ok;

	if (fd == -1)
		return false;
	ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == 0;
	close(fd);
	return ok;
}

/* Patroni's __httpserver_init: the first passive address, IPv6 first with dual stack. */
static int bind_listen(const char *spec, unsigned backlog, int *port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE},
	                *res = NULL, *pick = NULL;
	bool dual = has_dual_stack();
	char *host = NULL, service[16];
	int p, fd = -1, one = 1, rc;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!pgkeel_rest_split_listen(spec, &host, &p)) {
		(void)pgkeel_fmt(
		    err, errlen,
		    "Invalid \"restapi\" config: expected <HOST>:<PORT> for \"listen\", "
		    "but got \"%s\"",
		    spec != NULL ? spec : "");
		free(host);
		return -1;
	}
	(void)pgkeel_fmt(service, sizeof(service), "%d", p);
	rc = getaddrinfo(host[0] == '\0' || strcmp(host, "*") == 0 ? NULL : host, service, &hints,
	                 &res);
	if (rc != 0) {
		(void)pgkeel_fmt(err, errlen,
		                 "Couldn't start a service on '%s:%d': %s, please check your "
		                 "`restapi.listen` configuration",
		                 host, p, gai_strerror(rc));
		free(host);
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (pick == NULL ||
		    (dual ? ai->ai_family == AF_INET6 && pick->ai_family == AF_INET
		          : ai->ai_family == AF_INET && pick->ai_family == AF_INET6))
			pick = ai;
	}
	if (pick != NULL)
		fd = socket(pick->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, pick->ai_addr, pick->ai_addrlen) != 0 || listen(fd, (int)backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		(void)pgkeel_fmt(err, errlen,
		                 "Couldn't start a service on '%s:%d': %s, please check your "
		                 "`restapi.listen` configuration",
		                 host, p, pick == NULL ? "no address" : strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		free(host);
		return -1;
	}
	*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(res);
	free(host);
	return fd;
}

static void srv_free(struct pgkeel_rest *srv)
{
	free(srv->auth_key);
	for (size_t i = 0; i < 2 * srv->n_headers; i++)
		free(srv->headers[i]);
	free(srv->headers);
	free(srv->version);
	pgkeel_rest_failsafe_clear(&srv->failsafe);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

static void srv_unref(struct pgkeel_rest *srv)
{
	if (srv != NULL && __atomic_sub_fetch(&srv->refs, 1, __ATOMIC_ACQ_REL) == 0)
		srv_free(srv);
}

static unsigned or_default(unsigned v, unsigned dflt)
{
	return v != 0 ? v : dflt;
}

struct pgkeel_rest *pgkeel_rest_start(const struct pgkeel_rest_opts *o, char *err, size_t errlen)
{
	struct pgkeel_rest *srv = pgkeel_xcalloc(1, sizeof(*srv));
	pthread_condattr_t ca;
	unsigned threads = or_default(o->threads, DEFAULT_THREADS);
	int fd;

	if (pgkeel_host_get() == NULL) {
		(void)pgkeel_fmt(err, errlen, "REST API: no host event fd");
		free(srv);
		return NULL;
	}
	srv->refs = 1;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (o->auth_username != NULL && o->auth_password != NULL) {
		char *up = pgkeel_asprintf("%s:%s", o->auth_username, o->auth_password);

		srv->auth_key = pgkeel_rest_base64(up, strlen(up));
		memset(up, 0, strlen(up));
		free(up);
	}
	srv->n_headers = o->n_extra_headers;
	srv->headers = pgkeel_xcalloc(2 * o->n_extra_headers + 1, sizeof(char *));
	for (size_t i = 0; i < 2 * o->n_extra_headers; i++)
		srv->headers[i] = pgkeel_strdup(o->extra_headers[i] ? o->extra_headers[i] : "");
	srv->queue_max = or_default(o->queue_max, DEFAULT_QUEUE_MAX);
	srv->reply_timeout_ms =
	    o->reply_timeout_ms > 0 ? o->reply_timeout_ms : DEFAULT_REPLY_TIMEOUT_MS;
	srv->switchover_wait_ms = o->switchover_wait_ms;
	srv->max_body = o->max_body != 0 ? o->max_body : DEFAULT_MAX_BODY;
	srv->version =
	    pgkeel_strdup(o->pgkeel_version != NULL ? o->pgkeel_version : PACKAGE_VERSION);

	fd = bind_listen(o->listen, or_default(o->backlog, DEFAULT_BACKLOG), &srv->port, err,
	                 errlen);
	if (fd == -1) {
		srv_free(srv);
		return NULL;
	}
	if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
		(void)pgkeel_fmt(err, errlen, "REST API: cannot start a thread");
		close(fd);
		srv_free(srv);
		return NULL;
	}
	srv->reaper_started = true;
	srv->d = MHD_start_daemon(
	    MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
	    NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    or_default(o->connection_timeout_s, DEFAULT_CONN_TIMEOUT_S),
	    MHD_OPTION_CONNECTION_LIMIT, or_default(o->max_connections, DEFAULT_MAX_CONNECTIONS),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, or_default(o->per_ip_connections, DEFAULT_PER_IP),
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, srv, MHD_OPTION_END);
	if (srv->d == NULL) {
		(void)pgkeel_fmt(err, errlen, "REST API: libmicrohttpd did not start on %s",
		                 o->listen);
		close(fd);
		pgkeel_rest_stop(srv);
		return NULL;
	}
	log_info("REST API listening on %s (port %d)", o->listen, srv->port);
	return srv;
}

int pgkeel_rest_port(const struct pgkeel_rest *srv)
{
	return srv != NULL ? srv->port : -1;
}

void pgkeel_rest_stop(struct pgkeel_rest *srv)
{
	struct req *to_free[64];
	size_t n;

	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	if (srv->reaper_started)
		pthread_join(srv->reaper, NULL);
	/* answer what is pending, so no connection stays suspended */
	do {
		n = 0;
		pthread_mutex_lock(&srv->mu);
		while (srv->pending != NULL && n < PGKEEL_ARRAY_LEN(to_free)) {
			struct req *r = srv->pending;

			if (answer_locked(r, 503, "text/html", "the REST API is shutting down",
			                  false))
				to_free[n++] = r;
		}
		pthread_mutex_unlock(&srv->mu);
		for (size_t i = 0; i < n; i++)
			req_free(to_free[i]);
	} while (n == PGKEEL_ARRAY_LEN(to_free));
	if (srv->d != NULL)
		MHD_stop_daemon(srv->d);
	srv->d = NULL;
	srv_unref(srv);
}

/* --------------------------------------------------------------- config */

void pgkeel_rest_opts_from_config(const struct pgkeel_config *c, struct pgkeel_rest_opts *o,
                                  const char **headers, size_t max_headers)
{
	json_object *local = c->local, *v, *h;

	memset(o, 0, sizeof(*o));
	v = pgkeel_json_path(local, "restapi.listen");
	o->listen = v != NULL && json_object_is_type(v, json_type_string)
	                ? json_object_get_string(v)
	                : NULL;
	v = pgkeel_json_path(local, "restapi.authentication.username");
	if (v != NULL && json_object_is_type(v, json_type_string))
		o->auth_username = json_object_get_string(v);
	v = pgkeel_json_path(local, "restapi.authentication.password");
	if (v != NULL && json_object_is_type(v, json_type_string))
		o->auth_password = json_object_get_string(v);
	v = pgkeel_json_path(local, "restapi.request_queue_size");
	if (v != NULL && json_object_is_type(v, json_type_int) && json_object_get_int(v) > 0)
		o->backlog = (unsigned)json_object_get_int(v);
	h = pgkeel_json_path(local, "restapi.http_extra_headers");
	if (h != NULL && json_object_is_type(h, json_type_object)) {
		json_object_object_foreach(h, name, value)
		{
			if (o->n_extra_headers == max_headers)
				break;
			if (value == NULL || !json_object_is_type(value, json_type_string))
				continue;
			headers[2 * o->n_extra_headers] = name;
			headers[2 * o->n_extra_headers + 1] = json_object_get_string(value);
			o->n_extra_headers++;
		}
	}
	o->extra_headers = headers;
}
