/*
 * The REST API server on libmicrohttpd (see rest.h for what it serves).
 *
 * MHD runs a small pool of worker threads polling their connections
 * (MHD_USE_AUTO_INTERNAL_THREAD + MHD_OPTION_THREAD_POOL_SIZE) on a listen
 * socket bound here, as Patroni binds it.  Health checks are answered in the
 * worker from the published state.  Throughput (bench/restbench.py): a
 * health check costs about 10 us of CPU on a kept-alive connection, mostly
 * the kernel's; MHD_USE_TURBO (read, write, accept at once, no shutdown()
 * before close) and the keepalive options set once on the listener instead
 * of on each accepted socket cut a new connection's system calls from about
 * 14 to 9.  A request for the HA loop is put on a bounded FIFO and its
 * connection suspended; the loop answers with
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
 *
 * This file: the request queue and its replies, the scheduled restart and
 * failsafe stores, responses, libmicrohttpd's callbacks, the access settings
 * (swapped whole on a reload), TLS set-up, start and stop.  The endpoints
 * are in rest_handlers.c; the structures both share in rest_server.h.
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
#include "cluster.h"
#include "log.h"
#include "pg_conf_internal.h"
#include "pg_query.h"
#include "rest_server.h"
#include "state.h"
#include "util.h"

/*
 * One worker: with two, both wake for each new connection on the shared
 * listening socket (5 times the context switches, 30% more CPU per
 * connection; bench/README.md).  Nothing on a worker blocks: requests that
 * wait are suspended and served by the HA loop, and the members' addresses
 * for allowlist_include_members are resolved by the resolver thread.
 */
#define DEFAULT_THREADS          1
#define DEFAULT_CONN_TIMEOUT_S   30
#define DEFAULT_MAX_CONNECTIONS  512
#define DEFAULT_PER_IP           128
#define DEFAULT_BACKLOG          128
#define DEFAULT_QUEUE_MAX        16
#define DEFAULT_REPLY_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY         (64 * 1024)

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
int64_t pgkeel_rest_now_epoch_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pgkeel_rest_wake_loop(void)
{
	const struct pgkeel_host *h = pgkeel_host_get();

	if (h != NULL)
		h->post_event(h->ctx, PGKEEL_EVENT_OTHER);
}

/* ------------------------------------------------------------ requests */

static void srv_unref(struct pgkeel_rest *srv);
static struct access *access_get(struct pgkeel_rest *srv);
static void access_unref(struct access *acc);

/* Under srv->mu; returns true when the caller must free r (outside the lock). */
static bool req_unref_locked(struct req *r)
{
	return --r->refs == 0;
}

void pgkeel_rest_req_free(struct req *r)
{
	struct pgkeel_rest *srv;

	if (r == NULL)
		return;
	srv = r->srv;
	pgkeel_rest_failover_req_clear(&r->fo);
	pgkeel_rest_restart_clear(&r->rs);
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

	if (r->st == RQ_TAKEN &&
	    (r->pub.kind == PGKEEL_REST_SWITCHOVER || r->pub.kind == PGKEEL_REST_FAILOVER))
		(void)pgkeel_rest_failover_unknown(r->pub.kind, text, sizeof(text));
	else if (r->st == RQ_TAKEN)
		(void)pgkeel_fmt(text, sizeof(text), "%s status unknown",
		                 pgkeel_rest_kind_name(r->pub.kind));
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

/* ------------------------------------------------------------- member addresses */

#define RESOLVER_POLL_MS   200
#define RESOLVE_MAX_AGE_MS 30000

/* What the members' addresses depend on: their api_urls, in the snapshot's order. */
static char *members_key(const struct pgkeel_cluster *c)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '\n');
	for (size_t i = 0; c != NULL && i < c->n_members; i++) {
		if (c->members[i].d.api_url != NULL)
			pgkeel_sbuf_puts(&b, c->members[i].d.api_url);
		pgkeel_sbuf_putc(&b, '\n');
	}
	return pgkeel_sbuf_finish(&b);
}

/*
 * With allowlist_include_members, every RESOLVER_POLL_MS: resolve the
 * members again when their api_urls changed or aged.  Without it the thread
 * sleeps until a reconfiguration or the stop signals it.
 */
static void *resolver_main(void *arg)
{
	struct pgkeel_rest *srv = arg;

	pthread_mutex_lock(&srv->mu);
	while (!srv->stopping) {
		int64_t at = pgkeel_now_monotonic_ms() + RESOLVER_POLL_MS;
		struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (long)(at % 1000) * 1000000};

		if (srv->acc->allow_members) {
			struct pgkeel_state_view v;
			struct pgkeel_cluster *c = NULL;
			char *key = NULL;

			pthread_mutex_unlock(&srv->mu);
			pgkeel_state_acquire(&v);
			if (v.loop != NULL && v.loop->cluster != NULL) {
				c = pgkeel_cluster_ref(v.loop->cluster);
				key = members_key(c);
			}
			pgkeel_state_release(&v);
			pthread_mutex_lock(&srv->mu);
			if (c != NULL && (srv->members_key == NULL || strcmp(srv->members_key, key) != 0 ||
			                  pgkeel_now_monotonic_ms() - srv->members_resolved_ms >=
			                      RESOLVE_MAX_AGE_MS)) {
				struct pgkeel_rest_net *nets;
				size_t n;

				pthread_mutex_unlock(&srv->mu);
				pgkeel_rest_member_nets(c, &nets, &n); /* may block: no lock held */
				pthread_mutex_lock(&srv->mu);
				free(srv->members_key);
				free(srv->member_nets);
				srv->members_key = key;
				key = NULL;
				srv->member_nets = nets;
				srv->n_member_nets = n;
				srv->members_resolved_ms = pgkeel_now_monotonic_ms();
			}
			free(key);
			pthread_mutex_unlock(&srv->mu);
			pgkeel_cluster_unref(c);
			pthread_mutex_lock(&srv->mu);
			if (srv->stopping)
				break;
			(void)pthread_cond_timedwait(&srv->resolver_cv, &srv->mu, &ts);
		} else {
			/* nothing to resolve: asleep until a reload or the stop wakes it */
			pthread_cond_wait(&srv->resolver_cv, &srv->mu);
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

int pgkeel_rest_member_cached(struct pgkeel_rest *srv, const struct pgkeel_cluster *c,
                              const struct sockaddr *sa)
{
	char *key = members_key(c);
	int r = -1;

	pthread_mutex_lock(&srv->mu);
	if (srv->members_key != NULL && strcmp(srv->members_key, key) == 0)
		r = pgkeel_rest_net_match(srv->member_nets, srv->n_member_nets, sa) ? 1 : 0;
	else
		pthread_cond_signal(&srv->resolver_cv);
	pthread_mutex_unlock(&srv->mu);
	free(key);
	return r;
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
				pgkeel_rest_req_free(to_free);
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
		pgkeel_rest_req_free(r);
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

void pgkeel_rest_req_set_deadline(struct pgkeel_rest_req *pub, int64_t deadline_ms)
{
	struct req *r = (struct req *)pub;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->srv->mu);
	if (r->st != RQ_ANSWERED && pub->deadline_ms > pgkeel_now_monotonic_ms()) {
		pub->deadline_ms = deadline_ms;
		pthread_cond_signal(&r->srv->cv);
	}
	pthread_mutex_unlock(&r->srv->mu);
}

bool pgkeel_rest_take_reload(struct pgkeel_rest *srv)
{
	bool r;

	if (srv == NULL)
		return false;
	pthread_mutex_lock(&srv->mu);
	r = srv->reload_requested;
	srv->reload_requested = false;
	pthread_mutex_unlock(&srv->mu);
	return r;
}

/* ---------------------------------------------------- scheduled restart */

void pgkeel_rest_restart_clear(struct pgkeel_rest_restart *r)
{
	free(r->schedule);
	free(r->postmaster_start_time);
	free(r->role);
	free(r->postgres_version);
	memset(r, 0, sizeof(*r));
	r->timeout_s = -1;
}

bool pgkeel_rest_scheduled_restart(struct pgkeel_rest *srv, struct pgkeel_rest_restart *out)
{
	bool have;

	memset(out, 0, sizeof(*out));
	out->timeout_s = -1;
	if (srv == NULL)
		return false;
	pthread_mutex_lock(&srv->mu);
	have = srv->have_sched;
	if (have) {
		out->generation = srv->sched_gen;
		out->schedule = pgkeel_strdup(srv->sched.schedule);
		out->postmaster_start_time = pgkeel_strdup(srv->sched_pm_start);
		out->role = pgkeel_strdup(srv->sched.role);
		out->postgres_version = pgkeel_strdup(srv->sched.postgres_version);
		out->restart_pending = srv->sched.restart_pending;
		out->timeout_s = srv->sched.timeout_s;
	}
	pthread_mutex_unlock(&srv->mu);
	return have;
}

struct json_object *pgkeel_rest_scheduled_restart_json(struct pgkeel_rest *srv, bool member)
{
	struct json_object *o = NULL;

	if (srv == NULL)
		return NULL;
	pthread_mutex_lock(&srv->mu);
	if (srv->have_sched && json_object_deep_copy(srv->sched_data, &o, NULL) == 0 && member)
		json_object_object_add(o, "postmaster_start_time",
		                       srv->sched_pm_start != NULL
		                           ? json_object_new_string(srv->sched_pm_start)
		                           : NULL);
	pthread_mutex_unlock(&srv->mu);
	return o;
}

/* Under srv->mu. */
void pgkeel_rest_sched_drop_locked(struct pgkeel_rest *srv)
{
	pgkeel_rest_restart_clear(&srv->sched);
	json_object_put(srv->sched_data);
	srv->sched_data = NULL;
	free(srv->sched_pm_start);
	srv->sched_pm_start = NULL;
	srv->have_sched = false;
}

void pgkeel_rest_scheduled_restart_cancel(struct pgkeel_rest *srv, uint64_t generation)
{
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->mu);
	if (srv->have_sched && srv->sched_gen == generation)
		pgkeel_rest_sched_drop_locked(srv);
	pthread_mutex_unlock(&srv->mu);
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
		for (size_t i = 0; i < cc->acc->n_headers; i++)
			(void)MHD_add_response_header(resp, cc->acc->headers[2 * i],
			                              cc->acc->headers[2 * i + 1]);
	}
	ret = MHD_queue_response(c, (unsigned)a->status, resp);
	MHD_destroy_response(resp);
	log_access(c, cc, method, url, version, a->status);
	return ret;
}

void pgkeel_rest_set_text(struct answer *a, int status, const char *text)
{
	a->status = status;
	a->kind = B_NORMAL;
	a->ctype = "text/html";
	a->body = pgkeel_strdup(text);
}

void pgkeel_rest_set_page(struct answer *a, int status)
{
	a->status = status;
	a->kind = B_PAGE;
	a->body = NULL;
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
		cc->acc = access_get(srv);
		cc->start_ms = pgkeel_now_monotonic_ms();
		cc->route = pgkeel_rest_route_of(method, url);
		cc->status_only = strcmp(method, "HEAD") == 0 || strcmp(method, "OPTIONS") == 0;
		*con_cls = cc;
		/* verify_client: required: Python's handshake refuses a client without
		 * a valid certificate, for every endpoint */
		if (srv->tls && srv->verify == VERIFY_REQUIRED && !pgkeel_rest_client_cert_ok(c))
			return MHD_NO;
		cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > srv->max_body) {
			cc->refused = true;
			pgkeel_rest_set_page(&a, 413);
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
			pgkeel_rest_set_page(&a, 413);
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

	if (pgkeel_rest_dispatch(c, cc, url, method, &a))
		return MHD_YES; /* queued for the loop: suspended */
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
			pgkeel_rest_req_free(cc->req);
	}
	access_unref(cc->acc);
	free(cc->body.p);
	free(cc);
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

/*
 * Patroni's TCP keepalive on every accepted connection (enable_keepalive:
 * SO_KEEPALIVE, TCP_USER_TIMEOUT 10 s, idle 3 s, interval 2 s, 3 probes),
 * set once on the listening socket: Linux copies these options to each
 * socket accept() returns, which saves five system calls per connection.
 */
static void keepalive_listener(int fd)
{
	int one = 1, idle = 3, intvl = 2, cnt = 3;
	unsigned int user_timeout = 10000;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
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
	keepalive_listener(fd);
	*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(res);
	free(host);
	return fd;
}

/* ------------------------------------------------------------- access */

static void access_unref(struct access *acc)
{
	if (acc == NULL || __atomic_sub_fetch(&acc->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (acc->auth_key != NULL)
		memset(acc->auth_key, 0, strlen(acc->auth_key));
	free(acc->auth_key);
	for (size_t i = 0; i < 2 * acc->n_headers; i++)
		free(acc->headers[i]);
	free(acc->headers);
	free(acc->allow);
	free(acc);
}

static struct access *access_get(struct pgkeel_rest *srv)
{
	struct access *acc;

	pthread_mutex_lock(&srv->mu);
	acc = srv->acc;
	__atomic_add_fetch(&acc->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&srv->mu);
	return acc;
}

static void add_headers(struct access *acc, const char *const *h, size_t n)
{
	acc->headers =
	    pgkeel_xreallocarray(acc->headers, 2 * (acc->n_headers + n) + 1, sizeof(char *));
	for (size_t i = 0; i < 2 * n; i++)
		acc->headers[2 * acc->n_headers + i] = pgkeel_strdup(h[i] != NULL ? h[i] : "");
	acc->n_headers += n;
}

static struct access *access_new(const struct pgkeel_rest_opts *o, bool tls)
{
	struct access *acc = pgkeel_xcalloc(1, sizeof(*acc));

	acc->refs = 1;
	if (o->auth_username != NULL && o->auth_password != NULL) {
		char *up = pgkeel_asprintf("%s:%s", o->auth_username, o->auth_password);

		acc->auth_key = pgkeel_rest_base64(up, strlen(up));
		memset(up, 0, strlen(up));
		free(up);
	}
	add_headers(acc, o->extra_headers, o->n_extra_headers);
	if (tls)
		add_headers(acc, o->https_extra_headers, o->n_https_extra_headers);
	acc->allow = pgkeel_rest_allowlist_build(o->allowlist, o->n_allowlist, &acc->n_allow);
	acc->allow_members = o->allowlist_include_members;
	return acc;
}

/* What a reload cannot change in place: listen, TLS on or off, the client checks. */
static char *fixed_settings(const struct pgkeel_rest_opts *o)
{
	const char *v[] = {o->listen, o->certfile != NULL ? "tls" : NULL, o->cafile, o->ciphers,
	                   o->verify_client};
	struct pgkeel_sbuf b = {0};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(v); i++) {
		pgkeel_sbuf_puts(&b, v[i] != NULL ? v[i] : "\x01");
		pgkeel_sbuf_putc(&b, '\n');
	}
	return pgkeel_sbuf_finish(&b);
}

void pgkeel_rest_reconfigure(struct pgkeel_rest *srv, const struct pgkeel_rest_opts *o)
{
	struct access *acc, *old;
	char *fixed;

	if (srv == NULL)
		return;
	acc = access_new(o, srv->tls);
	fixed = fixed_settings(o);
	if (strcmp(fixed, srv->fixed) != 0)
		log_warning("REST API: restapi.listen, certfile set or not, cafile, ciphers and "
		            "verify_client take effect when pgkeel restarts");
	free(fixed);
	if (srv->tls && o->certfile != NULL) { /* a renewed certificate: the next handshakes */
		char err[512];
		bool changed;

		if (!pgkeel_rest_tls_load(o->certfile, o->keyfile, o->keyfile_password, &changed,
		                          err, sizeof(err)))
			log_error("REST API: keeping the current certificate: %s", err);
		else if (changed)
			log_info("REST API: reloaded the certificate from %s", o->certfile);
	}
	pthread_mutex_lock(&srv->mu);
	old = srv->acc;
	srv->acc = acc;
	pthread_cond_signal(&srv->resolver_cv); /* allowlist_include_members may have changed */
	pthread_mutex_unlock(&srv->mu);
	access_unref(old);
}

/* ------------------------------------------------------------- server */

static void srv_free(struct pgkeel_rest *srv)
{
	access_unref(srv->acc);
	free(srv->fixed);
	free(srv->version);
	pgkeel_rest_failsafe_clear(&srv->failsafe);
	pthread_mutex_lock(&srv->mu);
	pgkeel_rest_sched_drop_locked(srv);
	pthread_mutex_unlock(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	pthread_cond_destroy(&srv->resolver_cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv->members_key);
	free(srv->member_nets);
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

/*
 * restapi's TLS options: the certificate into rest_tls.c's store (handed to
 * handshakes by the callback), the client CAs (*trust, malloc'd: MHD copies
 * it at start) when clients are verified.
 */
static bool tls_setup(struct pgkeel_rest *srv, const struct pgkeel_rest_opts *o, char **trust,
                      char *err, size_t errlen)
{
	bool changed;

	*trust = NULL;
	srv->verify = VERIFY_NONE;
	if (o->verify_client != NULL) {
		if (strcasecmp(o->verify_client, "required") == 0)
			srv->verify = VERIFY_REQUIRED;
		else if (strcasecmp(o->verify_client, "optional") == 0)
			srv->verify = VERIFY_OPTIONAL;
		else if (strcasecmp(o->verify_client, "none") != 0)
			log_error("Bad value in the \"restapi.verify_client\": %s",
			          o->verify_client);
	}
	if (o->ciphers != NULL)
		log_warning("REST API: restapi.ciphers (OpenSSL syntax) is not applied; GnuTLS "
		            "uses its default priorities");
	if (!pgkeel_rest_tls_load(o->certfile, o->keyfile, o->keyfile_password, &changed, err,
	                          errlen))
		return false;
	if (srv->verify != VERIFY_NONE) {
		/* no cafile: the system's CAs, as ssl.create_default_context loads them */
		*trust = pgkeel_rest_read_file(
		    o->cafile != NULL ? o->cafile : "/etc/ssl/certs/ca-certificates.crt", err,
		    errlen);
		if (*trust == NULL)
			return false;
	}
	return true;
}

struct pgkeel_rest *pgkeel_rest_start(const struct pgkeel_rest_opts *o, char *err, size_t errlen)
{
	struct pgkeel_rest *srv = pgkeel_xcalloc(1, sizeof(*srv));
	pthread_condattr_t ca;
	unsigned threads = or_default(o->threads, DEFAULT_THREADS);
	char *trust = NULL;
	struct MHD_OptionItem ops[8];
	size_t n_ops = 0;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_TURBO |
	                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
	pthread_cond_init(&srv->resolver_cv, &ca);
	pthread_condattr_destroy(&ca);
	srv->tls = o->certfile != NULL && o->certfile[0] != '\0';
	srv->acc = access_new(o, srv->tls);
	srv->fixed = fixed_settings(o);
	srv->queue_max = or_default(o->queue_max, DEFAULT_QUEUE_MAX);
	srv->reply_timeout_ms =
	    o->reply_timeout_ms > 0 ? o->reply_timeout_ms : DEFAULT_REPLY_TIMEOUT_MS;
	srv->switchover_wait_ms = o->switchover_wait_ms;
	srv->max_body = o->max_body != 0 ? o->max_body : DEFAULT_MAX_BODY;
	srv->version =
	    pgkeel_strdup(o->pgkeel_version != NULL ? o->pgkeel_version : PACKAGE_VERSION);
	if (srv->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			(void)pgkeel_fmt(err, errlen,
			                 "REST API: libmicrohttpd was built without TLS");
			srv_free(srv);
			return NULL;
		}
		if (!tls_setup(srv, o, &trust, err, errlen)) {
			free(trust);
			pgkeel_rest_tls_clear();
			srv_free(srv);
			return NULL;
		}
		flags |= MHD_USE_TLS;
		ops[n_ops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		                                       pgkeel_rest_tls_callback()};
		if (trust != NULL)
			ops[n_ops++] =
			    (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, trust};
	}
	ops[n_ops++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	fd = bind_listen(o->listen, or_default(o->backlog, DEFAULT_BACKLOG), &srv->port, err,
	                 errlen);
	if (fd == -1) {
		free(trust);
		pgkeel_rest_tls_clear();
		srv_free(srv);
		return NULL;
	}
	if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
		(void)pgkeel_fmt(err, errlen, "REST API: cannot start a thread");
		close(fd);
		free(trust);
		pgkeel_rest_tls_clear();
		srv_free(srv);
		return NULL;
	}
	srv->reaper_started = true;
	if (pthread_create(&srv->resolver, NULL, resolver_main, srv) != 0) {
		(void)pgkeel_fmt(err, errlen, "REST API: cannot start a thread");
		close(fd);
		free(trust);
		pgkeel_rest_tls_clear();
		pgkeel_rest_stop(srv);
		return NULL;
	}
	srv->resolver_started = true;
	srv->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    or_default(o->connection_timeout_s, DEFAULT_CONN_TIMEOUT_S),
	    MHD_OPTION_CONNECTION_LIMIT, or_default(o->max_connections, DEFAULT_MAX_CONNECTIONS),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, or_default(o->per_ip_connections, DEFAULT_PER_IP),
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
	free(trust);
	if (srv->d == NULL) {
		(void)pgkeel_fmt(err, errlen, "REST API: libmicrohttpd did not start on %s%s",
		                 o->listen, srv->tls ? " (check the certificate and key)" : "");
		close(fd);
		pgkeel_rest_stop(srv);
		return NULL;
	}
	log_info("REST API listening on %s (port %d%s)", o->listen, srv->port,
	         srv->tls ? ", HTTPS" : "");
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
	pthread_cond_signal(&srv->resolver_cv);
	pthread_mutex_unlock(&srv->mu);
	if (srv->reaper_started)
		pthread_join(srv->reaper, NULL);
	if (srv->resolver_started)
		pthread_join(srv->resolver, NULL);
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
			pgkeel_rest_req_free(to_free[i]);
	} while (n == PGKEEL_ARRAY_LEN(to_free));
	if (srv->d != NULL)
		MHD_stop_daemon(srv->d);
	srv->d = NULL;
	if (srv->tls)
		pgkeel_rest_tls_clear(); /* no session uses a certificate any more */
	srv_unref(srv);
}

/* --------------------------------------------------------------- config */

static const char *cfg_string(json_object *root, const char *path)
{
	json_object *v = pgkeel_json_path(root, path);

	return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
	                                                             : NULL;
}

/* name/value pairs of a headers map into strs; the number of pairs. */
static size_t header_pairs(json_object *h, const char **strs, size_t *used, size_t max)
{
	size_t n = 0;

	if (h == NULL || !json_object_is_type(h, json_type_object))
		return 0;
	json_object_object_foreach(h, name, value)
	{
		if (*used + 2 > max)
			break;
		if (value == NULL || !json_object_is_type(value, json_type_string))
			continue;
		strs[(*used)++] = name;
		strs[(*used)++] = json_object_get_string(value);
		n++;
	}
	return n;
}

void pgkeel_rest_opts_from_config(const struct pgkeel_config *c, struct pgkeel_rest_opts *o,
                                  const char **strs, size_t max_strs)
{
	json_object *local = c->local, *v;
	size_t used = 0, max = max_strs;

	memset(o, 0, sizeof(*o));
	o->listen = cfg_string(local, "restapi.listen");
	o->auth_username = cfg_string(local, "restapi.authentication.username");
	o->auth_password = cfg_string(local, "restapi.authentication.password");
	v = pgkeel_json_path(local, "restapi.request_queue_size");
	if (v != NULL && json_object_is_type(v, json_type_int) && json_object_get_int(v) > 0)
		o->backlog = (unsigned)json_object_get_int(v);
	o->certfile = cfg_string(local, "restapi.certfile");
	o->keyfile = cfg_string(local, "restapi.keyfile");
	o->keyfile_password = cfg_string(local, "restapi.keyfile_password");
	o->cafile = cfg_string(local, "restapi.cafile");
	o->ciphers = cfg_string(local, "restapi.ciphers");
	o->verify_client = cfg_string(local, "restapi.verify_client");
	o->extra_headers = strs;
	o->n_extra_headers =
	    header_pairs(pgkeel_json_path(local, "restapi.http_extra_headers"), strs, &used, max);
	o->https_extra_headers = strs + used;
	o->n_https_extra_headers =
	    header_pairs(pgkeel_json_path(local, "restapi.https_extra_headers"), strs, &used, max);
	o->allowlist = strs + used;
	v = pgkeel_json_path(local, "restapi.allowlist");
	for (size_t i = 0; v != NULL && json_object_is_type(v, json_type_array) &&
	                   i < json_object_array_length(v) && used < max;
	     i++) {
		json_object *e = json_object_array_get_idx(v, i);

		if (e != NULL && json_object_is_type(e, json_type_string)) {
			strs[used++] = json_object_get_string(e);
			o->n_allowlist++;
		}
	}
	o->allowlist_include_members =
	    pgkeel_json_truthy(pgkeel_json_path(local, "restapi.allowlist_include_members"));
}
