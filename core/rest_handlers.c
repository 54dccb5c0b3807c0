/*
 * The REST endpoints' handlers (rest.h lists them): routing as Patroni's
 * parse_request, the access check (allowlist, client certificate, basic
 * auth), request bodies, and per endpoint either an answer from the
 * published state or a request queued for the HA loop.
 */
#include "autoconf.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "log.h"
#include "pg_conf_internal.h"
#include "pg_query.h"
#include "rest_server.h"
#include "state.h"
#include "util.h"

/* hmac.compare_digest: time independent of where the strings differ. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i < lb ? i : 0];
	return diff == 0;
}

/* ------------------------------------------------------------- routing */

static const struct {
	const char *method;
	const char *segment;
	enum route route;
} routes[] = {
    {"GET", "patroni", R_PATRONI},
    {"GET", "liveness", R_LIVENESS},
    {"GET", "readiness", R_READINESS},
    {"GET", "failsafe", R_GET_FAILSAFE},
    {"POST", "failsafe", R_POST_FAILSAFE},
    {"POST", "switchover", R_SWITCHOVER},
    {"POST", "failover", R_FAILOVER},
    {"GET", "cluster", R_CLUSTER},
    {"GET", "history", R_HISTORY},
    {"GET", "config", R_GET_CONFIG},
    {"GET", "metrics", R_METRICS},
    {"PATCH", "config", R_PATCH_CONFIG},
    {"PUT", "config", R_PUT_CONFIG},
    {"POST", "reload", R_RELOAD},
    {"POST", "restart", R_RESTART},
    {"DELETE", "restart", R_DELETE_RESTART},
    {"POST", "reinitialize", R_REINITIALIZE},
    {"DELETE", "switchover", R_DELETE_SWITCHOVER},
    {"POST", "sigterm", R_SIGTERM},
    {"POST", "citus", R_CITUS},
};

/* Patroni's parse_request: do_<METHOD>_<first segment>, else do_<METHOD>. */
enum route pgkeel_rest_route_of(const char *method, const char *url)
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
		pgkeel_rest_set_page(a, 502);
		return;
	}
	a->status = 200;
	a->kind = B_NORMAL;
	a->ctype = "application/json";
}

/* A valid client certificate was presented (Python's getpeercert() is not empty). */
bool pgkeel_rest_client_cert_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session;
	unsigned int status = 0, n = 0;

	if (ci == NULL || ci->tls_session == NULL)
		return false;
	session = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_get_peers(session, &n) == NULL || n == 0)
		return false;
	return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS &&
	       status == 0;
}

static const struct sockaddr *client_addr(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return ci != NULL ? ci->client_addr : NULL;
}

/*
 * allowlist_include_members: the members of the cached cluster view, their
 * addresses from the resolver thread; resolved here only while its cache is
 * behind (members whose api_urls changed a moment ago).
 */
static bool member_allowed(struct pgkeel_rest *srv, const struct sockaddr *sa)
{
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;
	bool ok = false;

	pgkeel_state_acquire(&v);
	pgkeel_rest_pgview_get(&v, pgkeel_now_boottime_ms(), &pv);
	if (pv.cluster) {
		int r = pgkeel_rest_member_cached(srv, v.loop->cluster, sa);

		ok = r < 0 ? pgkeel_rest_member_match(v.loop->cluster, sa) : r == 1;
	}
	pgkeel_state_release(&v);
	return ok;
}

/* Patroni's check_access: the allowlist, the client certificate, basic auth. */
static bool check_access(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	const struct access *acc = cc->acc;
	const char *h;

	if (acc->n_allow > 0 || acc->allow_members) {
		const struct sockaddr *sa = client_addr(c);

		if (!pgkeel_rest_net_match(acc->allow, acc->n_allow, sa) &&
		    !(acc->allow_members && member_allowed(cc->srv, sa))) {
			pgkeel_rest_set_text(a, 403, "Access is denied");
			return false;
		}
	}
	if (cc->srv->tls && cc->srv->verify != VERIFY_NONE && !pgkeel_rest_client_cert_ok(c)) {
		pgkeel_rest_set_text(a, 403, "client certificate required");
		return false;
	}
	if (acc->auth_key == NULL)
		return true;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL)
		pgkeel_rest_set_text(a, 401, "no auth header received");
	else if (strncmp(h, "Basic ", 6) != 0 || !same_secret(h + 6, acc->auth_key))
		pgkeel_rest_set_text(a, 401, "not authenticated");
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
		pgkeel_rest_set_page(a, 411);
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
	pgkeel_rest_set_page(a, 400);
	return NULL;
}

/* check_access, then _read_json_content: the body, or NULL with the answer set. */
static struct json_object *unsafe_body(struct MHD_Connection *c, struct conn *cc, bool optional,
                                       struct answer *a)
{
	return check_access(c, cc, a) ? read_json(c, cc, optional, a) : NULL;
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
		pgkeel_rest_set_page(a, 502);
		return;
	}
	body = read_json(c, cc, false, a);
	if (body == NULL)
		return;
	if (leader) {
		pgkeel_rest_set_text(a, 500, "Running as a leader");
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
		pgkeel_rest_set_page(a, 400);
		return;
	}
	fs.received_ms = pgkeel_now_boottime_ms();
	pthread_mutex_lock(&srv->mu);
	pgkeel_rest_failsafe_clear(&srv->failsafe);
	srv->failsafe = fs;
	srv->have_failsafe = true;
	pthread_mutex_unlock(&srv->mu);
	pgkeel_rest_wake_loop();
	pgkeel_rest_set_text(a, 200, "Accepted");
}

/* A request for the loop; the connection's reference and the queue's. */
static struct req *req_new(struct pgkeel_rest *srv, struct MHD_Connection *c,
                           enum pgkeel_rest_kind kind, struct json_object *body)
{
	struct req *r = pgkeel_xcalloc(1, sizeof(*r));
	const struct sockaddr *sa = client_addr(c);

	r->pub.kind = kind;
	r->pub.body = body;
	r->pub.client = r->client;
	r->pub.deadline_ms = pgkeel_now_monotonic_ms() + srv->reply_timeout_ms;
	r->pub.timeout_s = -1;
	r->rs.timeout_s = -1;
	if (sa == NULL || getnameinfo(sa,
	                              sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                        : sizeof(struct sockaddr_in),
	                              r->client, sizeof(r->client), NULL, 0, NI_NUMERICHOST) != 0)
		(void)pgkeel_fmt(r->client, sizeof(r->client), "?");
	r->srv = srv;
	__atomic_add_fetch(&srv->refs, 1, __ATOMIC_RELAXED);
	r->conn = c;
	r->refs = 2; /* the connection and the queue */
	return r;
}

/* Queue r and suspend the connection: true; else r is freed and a 503 set. */
static bool enqueue(struct MHD_Connection *c, struct conn *cc, struct req *r, struct answer *a)
{
	struct pgkeel_rest *srv = cc->srv;

	pthread_mutex_lock(&srv->mu);
	if (srv->stopping || srv->q_len >= srv->queue_max) {
		bool stopping = srv->stopping;

		pthread_mutex_unlock(&srv->mu);
		r->conn = NULL;
		pgkeel_rest_req_free(r);
		pgkeel_rest_set_text(a, 503,
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
	pgkeel_rest_wake_loop();
	return true;
}

/* A request with no more than a kind and an optional body: true when queued. */
static bool queue_simple(struct MHD_Connection *c, struct conn *cc, enum pgkeel_rest_kind kind,
                         struct json_object *body, struct answer *a)
{
	return enqueue(c, cc, req_new(cc->srv, c, kind, body), a);
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
	char msg[256], *l, *cand, *sched;
	bool paused;
	int loop_wait, status;
	struct req *r;

	body = unsafe_body(c, cc, false, a);
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
	status = pgkeel_rest_failover_parse(kind, body, paused, pgkeel_rest_now_epoch_ms(), &fo,
	                                    msg, sizeof(msg));
	if (status != 0) {
		json_object_put(body);
		pgkeel_rest_set_text(a, status, msg);
		return false;
	}

	r = req_new(srv, c, kind, body);
	r->fo = fo;
	r->pub.leader = r->fo.leader;
	r->pub.candidate = r->fo.candidate;
	r->pub.scheduled_at = r->fo.scheduled_at;
	r->pub.scheduled_at_ms = r->fo.scheduled_at_ms;
	if (r->fo.scheduled_at == NULL)
		r->pub.deadline_ms += srv->switchover_wait_ms > 0
		                          ? srv->switchover_wait_ms
		                          : pgkeel_rest_failover_wait_ms(loop_wait);
	return enqueue(c, cc, r, a);
}

static void handle_metrics(struct answer *a)
{
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;

	pgkeel_state_acquire(&v);
	pgkeel_rest_pgview_get(&v, pgkeel_now_boottime_ms(), &pv);
	a->body = pgkeel_rest_metrics(&v, &pv);
	pgkeel_state_release(&v);
	a->status = 200;
	a->kind = B_NORMAL;
	a->ctype = "text/plain";
}

/*
 * GET /history, GET /config: from the cached cluster view while it is
 * valid (Patroni's dcs.cluster), else read by the loop.  True when queued.
 */
static bool handle_cached_doc(struct MHD_Connection *c, struct conn *cc, enum pgkeel_rest_kind kind,
                              struct answer *a)
{
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;

	pgkeel_state_acquire(&v);
	pgkeel_rest_pgview_get(&v, pgkeel_now_boottime_ms(), &pv);
	if (pv.cluster)
		a->body = kind == PGKEEL_REST_HISTORY ? pgkeel_rest_history_json(v.loop->cluster)
		                                      : pgkeel_rest_config_json(v.loop->cluster);
	pgkeel_state_release(&v);
	if (!pv.cluster)
		return queue_simple(c, cc, kind, NULL, a);
	if (a->body == NULL) {
		pgkeel_rest_set_page(a, 502);
		return false;
	}
	a->status = 200;
	a->kind = B_NORMAL;
	a->ctype = "application/json";
	return false;
}

/* PATCH /config, PUT /config: true when queued. */
static bool handle_config_write(struct MHD_Connection *c, struct conn *cc,
                                enum pgkeel_rest_kind kind, struct answer *a)
{
	struct json_object *body;

	body = unsafe_body(c, cc, false, a);
	if (body == NULL)
		return false;
	return queue_simple(c, cc, kind, body, a);
}

static bool has_key(struct json_object *o, const char *k)
{
	return json_object_object_get_ex(o, k, NULL);
}

/* POST /restart: validated here; scheduled here; an immediate one queued (true). */
static bool handle_restart(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	struct pgkeel_rest *srv = cc->srv;
	struct pgkeel_state_view v;
	struct pgkeel_rest_restart rs;
	struct json_object *body, *data = NULL;
	char msg[256], *pm_start = NULL;
	bool paused;
	int status;
	struct req *r;

	body = unsafe_body(c, cc, true, a);
	if (body == NULL)
		return false;
	if (json_object_object_length(body) > 0) {
		char *text = pgkeel_json_spaced(body);

		log_debug("received restart request: %s", text);
		free(text);
	}
	pgkeel_state_acquire(&v);
	paused = v.loop != NULL && v.loop->paused;
	if (v.pg != NULL && v.pg->status != NULL &&
	    v.pg->status->postmaster_start_time[0] != '\0' &&
	    pgkeel_now_boottime_ms() < v.pg->valid_until_ms)
		pm_start = pgkeel_strdup(v.pg->status->postmaster_start_time);
	pgkeel_state_release(&v);
	if (paused && has_key(body, "schedule")) {
		pgkeel_rest_set_text(a, 500, "Can't schedule restart in the paused state");
		status = -1;
	} else {
		status = pgkeel_rest_restart_parse(body, pgkeel_rest_now_epoch_ms(), &rs, &data,
		                                   msg, sizeof(msg));
		if (status != 0)
			pgkeel_rest_set_text(a, status, msg);
	}
	if (status != 0) {
		json_object_put(body);
		free(pm_start);
		return false;
	}
	if (rs.schedule != NULL) {
		bool taken;

		json_object_put(body);
		pthread_mutex_lock(&srv->mu);
		taken = srv->have_sched;
		if (!taken) {
			srv->have_sched = true;
			srv->sched = rs;
			srv->sched.generation = ++srv->sched_gen;
			srv->sched_data = data;
			srv->sched_pm_start = pm_start;
			log_info("restart scheduled at %s", rs.schedule);
		}
		pthread_mutex_unlock(&srv->mu);
		if (taken) {
			pgkeel_rest_restart_clear(&rs);
			json_object_put(data);
			free(pm_start);
			pgkeel_rest_set_text(a, 409, "Another restart is already scheduled");
		} else {
			pgkeel_rest_wake_loop(); /* the member key shows it */
			pgkeel_rest_set_text(a, 202, "Restart scheduled");
		}
		return false;
	}
	json_object_put(data);
	free(pm_start);
	r = req_new(srv, c, PGKEEL_REST_RESTART, body);
	r->rs = rs;
	r->pub.role = r->rs.role;
	r->pub.postgres_version = r->rs.postgres_version;
	r->pub.restart_pending = r->rs.restart_pending;
	r->pub.timeout_s = r->rs.timeout_s;
	return enqueue(c, cc, r, a);
}

static void handle_delete_restart(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	struct pgkeel_rest *srv = cc->srv;
	bool had;

	if (!check_access(c, cc, a))
		return;
	pthread_mutex_lock(&srv->mu);
	had = srv->have_sched;
	pgkeel_rest_sched_drop_locked(srv);
	pthread_mutex_unlock(&srv->mu);
	if (had) {
		pgkeel_rest_wake_loop();
		pgkeel_rest_set_text(a, 200, "scheduled restart deleted");
	} else {
		pgkeel_rest_set_text(a, 404, "no restarts are scheduled");
	}
}

/* POST /reinitialize: true when queued. */
static bool handle_reinitialize(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	struct json_object *body, *f = NULL;
	struct req *r;
	char *text;

	body = unsafe_body(c, cc, true, a);
	if (body == NULL)
		return false;
	if (json_object_object_length(body) > 0) {
		text = pgkeel_json_spaced(body);
		log_debug("received reinitialize request: %s", text);
		free(text);
	}
	r = req_new(cc->srv, c, PGKEEL_REST_REINITIALIZE, body);
	(void)json_object_object_get_ex(body, "force", &f);
	text = pgkeel_rest_py_str(f);
	r->pub.force = pgkeel_pgc_py_parse_bool(text) == 1;
	free(text);
	return enqueue(c, cc, r, a);
}

static void handle_reload(struct MHD_Connection *c, struct conn *cc, struct answer *a)
{
	if (!check_access(c, cc, a))
		return;
	pthread_mutex_lock(&cc->srv->mu);
	cc->srv->reload_requested = true;
	pthread_mutex_unlock(&cc->srv->mu);
	pgkeel_rest_wake_loop();
	pgkeel_rest_set_text(a, 202, "reload scheduled");
}

/* ------------------------------------------------------------ dispatch */

bool pgkeel_rest_dispatch(struct MHD_Connection *c, struct conn *cc, const char *url,
                          const char *method, struct answer *a)
{
	struct json_object *body;

	switch (cc->route) {
	case R_HEALTH:
	case R_PATRONI:
	case R_LIVENESS:
	case R_READINESS:
		handle_health(c, cc, url, a);
		return false;
	case R_GET_FAILSAFE:
		handle_get_failsafe(a);
		return false;
	case R_POST_FAILSAFE:
		handle_post_failsafe(c, cc, a);
		return false;
	case R_SWITCHOVER:
		return handle_failover(c, cc, PGKEEL_REST_SWITCHOVER, a);
	case R_FAILOVER:
		return handle_failover(c, cc, PGKEEL_REST_FAILOVER, a);
	case R_CLUSTER:
		return queue_simple(c, cc, PGKEEL_REST_CLUSTER, NULL, a);
	case R_HISTORY:
		return handle_cached_doc(c, cc, PGKEEL_REST_HISTORY, a);
	case R_GET_CONFIG:
		return handle_cached_doc(c, cc, PGKEEL_REST_CONFIG, a);
	case R_METRICS:
		handle_metrics(a);
		return false;
	case R_PATCH_CONFIG:
		return handle_config_write(c, cc, PGKEEL_REST_PATCH_CONFIG, a);
	case R_PUT_CONFIG:
		return handle_config_write(c, cc, PGKEEL_REST_PUT_CONFIG, a);
	case R_RELOAD:
		handle_reload(c, cc, a);
		return false;
	case R_RESTART:
		return handle_restart(c, cc, a);
	case R_DELETE_RESTART:
		handle_delete_restart(c, cc, a);
		return false;
	case R_REINITIALIZE:
		return handle_reinitialize(c, cc, a);
	case R_DELETE_SWITCHOVER:
		return check_access(c, cc, a) &&
		       queue_simple(c, cc, PGKEEL_REST_DELETE_SWITCHOVER, NULL, a);
	case R_SIGTERM: /* a Windows test hook in Patroni: accepted, nothing done */
		if (check_access(c, cc, a))
			pgkeel_rest_set_text(a, 202, "shutdown scheduled");
		return false;
	case R_CITUS: /* only a Citus coordinator acts on it */
		if ((body = unsafe_body(c, cc, false, a)) != NULL) {
			json_object_put(body);
			pgkeel_rest_set_text(a, 200, "OK");
		}
		return false;
	case R_UNSUPPORTED: {
		char *m = pgkeel_asprintf("Unsupported method ('%s')", method);

		a->status = 501;
		a->kind = B_PAGE;
		a->body = pgkeel_rest_error_page(501, m);
		free(m);
		return false;
	}
	}
	return false;
}
