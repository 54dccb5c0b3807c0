/*
 * zk_session: sessions, asynchronous requests with timed waits, the keeper
 * thread (see zk_session.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "zk_session.h"

int64_t zk_own_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_time(int64_t own_ms, struct timespec *ts)
{
	ts->tv_sec = own_ms / 1000;
	ts->tv_nsec = (own_ms % 1000) * 1000000;
}

/* Wait on the condition until `until` (own clock); INT64_MAX = no limit.  Called locked. */
static void cv_wait_until(struct zk_conn *c, int64_t until)
{
	struct timespec ts;

	if (until == INT64_MAX) {
		pthread_cond_wait(&c->cv, &c->mu);
		return;
	}
	abs_time(until, &ts);
	(void)pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* ------------------------------------------------------------------ watchers */

/*
 * The C client has no per-handle context for its log callback, and its
 * default is stderr, which a backend must not write to.  Its messages are
 * dropped; the backend logs what matters (sessions, errors) itself.
 */
static void quiet_log(const char *message)
{
	(void)message;
}

static void post(struct zk_conn *c, uint32_t events)
{
	c->host->post_event(c->host->ctx, events);
}

/* The global watcher: session state changes (runs on the completion thread). */
static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_sess *s = ctx;
	struct zk_conn *c = s->c;
	const struct pgkeel_host *h = c->host;

	(void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&c->mu);
	if (state == ZOO_CONNECTED_STATE) {
		const clientid_t *id = zoo_client_id(zh);
		int64_t sid = id != NULL ? id->client_id : 0;

		if (s->id != sid || s->state != ZK_SESS_CONNECTED)
			h->log(h->ctx, s->id == sid ? PGKEEL_LOG_INFO : PGKEEL_LOG_DEBUG,
			       "zookeeper: session 0x%" PRIx64 " %s (timeout %d ms)", (uint64_t)sid,
			       s->id == sid ? "reconnected" : "established", zoo_recv_timeout(zh));
		s->id = sid;
		s->granted_ms = zoo_recv_timeout(zh);
		s->state = ZK_SESS_CONNECTED;
		if (s->granted_ms < s->asked_ms && !s->warned) {
			s->warned = true;
			h->log(
			    h->ctx, PGKEEL_LOG_WARNING,
			    "zookeeper: the server granted a session timeout of %d ms, shorter "
			    "than "
			    "the ttl of %d s (its maxSessionTimeout): the leader lock may vanish "
			    "before ttl",
			    s->granted_ms, s->asked_ms / 1000);
		} else if (s->granted_ms > s->asked_ms && !s->warned) {
			s->warned = true;
			h->log(
			    h->ctx, PGKEEL_LOG_INFO,
			    "zookeeper: the server granted a session timeout of %d ms for the ttl "
			    "of %d s (its minSessionTimeout)",
			    s->granted_ms, s->asked_ms / 1000);
		}
	} else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
		if (s->state != ZK_SESS_DEAD && !s->retired) {
			h->log(h->ctx, PGKEEL_LOG_WARNING, "zookeeper: session 0x%" PRIx64 " %s",
			       (uint64_t)s->id,
			       state == ZOO_EXPIRED_SESSION_STATE
			           ? "expired: its leader and member znodes are gone"
			           : "refused: authentication failed (auth_data)");
			post(c, PGKEEL_EVENT_SESSION);
		}
		s->state = ZK_SESS_DEAD;
	} else if (s->state != ZK_SESS_DEAD) {
		if (s->state == ZK_SESS_CONNECTED && !s->retired) {
			h->log(h->ctx, PGKEEL_LOG_INFO,
			       "zookeeper: lost the connection of session 0x%" PRIx64
			       "; reconnecting within its timeout",
			       (uint64_t)s->id);
			post(c, PGKEEL_EVENT_SESSION);
		}
		s->state = ZK_SESS_CONNECTING;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Data/exists watches on leader and config. */
static void data_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_sess *s = ctx;
	struct zk_conn *c = s->c;
	uint32_t ev;
	bool retired;

	(void)zh;
	(void)state;
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT || path == NULL)
		return;
	ev = ends_with(path, "/leader")   ? PGKEEL_EVENT_LEADER
	     : ends_with(path, "/config") ? PGKEEL_EVENT_CONFIG
	                                  : PGKEEL_EVENT_OTHER;
	pthread_mutex_lock(&c->mu);
	retired = s->retired;
	pthread_mutex_unlock(&c->mu);
	if (!retired)
		post(c, ev);
}

struct zk_cmp {
	const struct pgkeel_host *host;
	uint32_t event;
	bool exists;
	int64_t czxid;
	int64_t mzxid;
};

static void cmp_done(int rc, const struct Stat *st, const void *data)
{
	struct zk_cmp *x = (struct zk_cmp *)data;
	bool changed = false;

	if (rc == ZOK && st != NULL)
		changed = !x->exists || st->czxid != x->czxid || st->mzxid != x->mzxid;
	else if (rc == ZNONODE)
		changed = x->exists;
	if (changed)
		x->host->post_event(x->host->ctx, x->event);
	free(x);
}

void zk_arm_watch(struct zk_conn *c, struct zk_sess *s, const char *path, uint32_t event,
                  bool exists, int64_t czxid, int64_t mzxid)
{
	struct zk_cmp *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return;
	x->host = c->host;
	x->event = event;
	x->exists = exists;
	x->czxid = czxid;
	x->mzxid = mzxid;
	if (zoo_awexists(s->zh, path, data_watcher, s, cmp_done, x) != ZOK)
		free(x);
}

/* ------------------------------------------------------------------ requests */

static void req_free(struct zk_req *r)
{
	if (r == NULL)
		return;
	free(r->data);
	for (int i = 0; i < r->n_children; i++)
		free(r->children[i]);
	free(r->children);
	free(r);
}

/*
 * A completion's prologue: lock and record rc.  NULL when the waiter is gone
 * (the request is then freed and the lock released); otherwise the caller
 * fills the request and calls completion_end().
 */
static struct zk_req *completion_begin(const void *data, int rc)
{
	struct zk_req *r = (struct zk_req *)data;
	struct zk_conn *c = r->c;

	pthread_mutex_lock(&c->mu);
	if (r->abandoned) {
		req_free(r);
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	r->rc = rc;
	r->done = true;
	return r;
}

static void completion_end(struct zk_req *r)
{
	struct zk_conn *c = r->c;

	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void keep_stat(struct zk_req *r, const struct Stat *st)
{
	if (r->rc == ZOK && st != NULL) {
		r->stat = *st;
		r->have_stat = true;
	}
}

static void get_done(int rc, const char *value, int value_len, const struct Stat *st,
                     const void *data)
{
	struct zk_req *r = completion_begin(data, rc);

	if (r == NULL)
		return;
	if (rc == ZOK) {
		r->data_len = value != NULL ? value_len : -1;
		r->data = malloc(value_len > 0 ? (size_t)value_len + 1 : 1);
		if (r->data == NULL)
			abort();
		if (value != NULL && value_len > 0)
			memcpy(r->data, value, (size_t)value_len);
		r->data[value_len > 0 ? value_len : 0] = '\0';
	}
	keep_stat(r, st);
	completion_end(r);
}

static void children_done(int rc, const struct String_vector *v, const void *data)
{
	struct zk_req *r = completion_begin(data, rc);

	if (r == NULL)
		return;
	if (rc == ZOK && v != NULL && v->count > 0) {
		r->children = calloc((size_t)v->count, sizeof(char *));
		if (r->children == NULL)
			abort();
		for (int i = 0; i < v->count; i++) {
			r->children[i] = strdup(v->data[i]);
			if (r->children[i] == NULL)
				abort();
		}
		r->n_children = v->count;
	}
	completion_end(r);
}

static void stat_done(int rc, const struct Stat *st, const void *data)
{
	struct zk_req *r = completion_begin(data, rc);

	if (r == NULL)
		return;
	keep_stat(r, st);
	completion_end(r);
}

static void create_done(int rc, const char *value, const struct Stat *st, const void *data)
{
	(void)value;
	stat_done(rc, st, data);
}

static void void_done(int rc, const void *data)
{
	stat_done(rc, NULL, data);
}

static void string_done(int rc, const char *value, const void *data)
{
	(void)value;
	stat_done(rc, NULL, data);
}

static void multi_done(int rc, const void *data)
{
	struct zk_req *r = completion_begin(data, rc);

	if (r == NULL)
		return;
	keep_stat(r, r->results[1].stat);
	completion_end(r);
}

struct zk_req *zk_submit(struct zk_conn *c, struct zk_sess *s, const struct zk_op *op)
{
	struct zk_req *r = calloc(1, sizeof(*r));
	zhandle_t *zh = s->zh;
	int rc = ZBADARGUMENTS;

	if (r == NULL)
		abort();
	r->c = c;
	r->kind = op->kind;
	r->data_len = -1;
	r->in_client = true;
	switch (op->kind) {
	case ZK_GET:
		rc = zoo_aget(zh, op->path, 0, get_done, r);
		break;
	case ZK_CHILDREN:
		rc = zoo_aget_children(zh, op->path, 0, children_done, r);
		break;
	case ZK_EXISTS:
		rc = zoo_aexists(zh, op->path, 0, stat_done, r);
		break;
	case ZK_CREATE:
		rc = zoo_acreate2(zh, op->path, op->data, op->len, &ZOO_OPEN_ACL_UNSAFE,
		                  op->ephemeral ? ZOO_EPHEMERAL : ZOO_PERSISTENT, create_done, r);
		break;
	case ZK_SET:
		rc = zoo_aset(zh, op->path, op->data, op->len, op->version, stat_done, r);
		break;
	case ZK_DELETE:
		rc = zoo_adelete(zh, op->path, op->version, void_done, r);
		break;
	case ZK_SYNC:
		rc = zoo_async(zh, op->path, string_done, r);
		break;
	case ZK_REBIND:
		zoo_delete_op_init(&r->ops[0], op->path, op->version);
		zoo_create_op_init(&r->ops[1], op->path, op->data, op->len, &ZOO_OPEN_ACL_UNSAFE,
		                   ZOO_EPHEMERAL, r->pathbuf, (int)sizeof(r->pathbuf));
		r->results[1].stat = &r->mstat;
		rc = zoo_amulti(zh, 2, r->ops, r->results, multi_done, r);
		break;
	}
	if (rc != ZOK) {
		/* refused before it was queued: no completion will run */
		r->in_client = false;
		r->done = true;
		r->rc = rc;
	}
	return r;
}

bool zk_wait(struct zk_conn *c, struct zk_req **reqs, int n, int64_t deadline_own)
{
	bool all;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		all = true;
		for (int i = 0; i < n; i++)
			all &= reqs[i] == NULL || reqs[i]->done;
		if (all || zk_own_now() >= deadline_own)
			break;
		cv_wait_until(c, deadline_own);
	}
	pthread_mutex_unlock(&c->mu);
	return all;
}

void zk_req_finish(struct zk_conn *c, struct zk_req *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	if (!r->done) {
		r->abandoned = true; /* the completion frees it */
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	req_free(r);
}

void zk_pause(struct zk_conn *c, int64_t until_own)
{
	pthread_mutex_lock(&c->mu);
	while (zk_own_now() < until_own)
		cv_wait_until(c, until_own);
	pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ sessions */

static void retire_locked(struct zk_conn *c, struct zk_sess *s)
{
	if (s == NULL || s->retired)
		return;
	if (c->cur == s)
		c->cur = NULL;
	if (c->prev == s)
		c->prev = NULL;
	s->retired = true;
	s->next = c->retired;
	c->retired = s;
	pthread_cond_broadcast(&c->cv);
}

void zk_sess_retire(struct zk_conn *c, struct zk_sess *s)
{
	pthread_mutex_lock(&c->mu);
	retire_locked(c, s);
	pthread_mutex_unlock(&c->mu);
}

void zk_sess_retire_id(struct zk_conn *c, int64_t sid)
{
	pthread_mutex_lock(&c->mu);
	if (c->prev != NULL && c->prev->id == sid)
		retire_locked(c, c->prev);
	if (c->cur != NULL && c->cur->id == sid)
		retire_locked(c, c->cur);
	pthread_mutex_unlock(&c->mu);
}

bool zk_sess_alive(struct zk_conn *c, int64_t sid)
{
	bool alive = false;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < 2; i++) {
		struct zk_sess *s = i == 0 ? c->cur : c->prev;

		alive |= s != NULL && s->id == sid && s->state != ZK_SESS_DEAD;
	}
	pthread_mutex_unlock(&c->mu);
	return alive;
}

void zk_sess_renewed(struct zk_conn *c, struct zk_sess *s, int64_t sent_own)
{
	pthread_mutex_lock(&c->mu);
	if (!s->retired && s->granted_ms > 0) {
		int64_t until = sent_own + s->granted_ms;

		if (!s->owns_ephemerals || until > s->live_until)
			s->live_until = until;
		s->owns_ephemerals = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

struct zk_sess *zk_sess_peek(struct zk_conn *c)
{
	struct zk_sess *s;

	pthread_mutex_lock(&c->mu);
	s = c->cur;
	if (s != NULL && s->state == ZK_SESS_DEAD)
		s = NULL;
	if (s != NULL)
		s->refs++;
	pthread_mutex_unlock(&c->mu);
	return s;
}

void zk_sess_put(struct zk_conn *c, struct zk_sess *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	s->refs--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* A new session (not connected yet); NULL with err on failure.  Called unlocked. */
static struct zk_sess *sess_open(struct zk_conn *c, int timeout_ms, struct pgkeel_err *err)
{
	struct zk_sess *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "zookeeper: out of memory");
		return NULL;
	}
	s->c = c;
	s->asked_ms = timeout_ms;
	s->zh = zookeeper_init2(c->opts->hosts, session_watcher, timeout_ms, NULL, s, 0, quiet_log);
	if (s->zh == NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_CONNECT,
		             "zookeeper: cannot open a session to %s: %s", c->opts->hosts,
		             strerror(errno));
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < c->opts->n_auth; i++) {
		const struct zk_auth *a = &c->opts->auth[i];

		(void)zoo_add_auth(s->zh, a->scheme, a->credential, (int)strlen(a->credential),
		                   NULL, NULL);
	}
	return s;
}

enum pgkeel_dcs_status zk_sess_get(struct zk_conn *c, int timeout_ms, int64_t keep_sid,
                                   int64_t deadline_own, struct zk_sess **out,
                                   struct pgkeel_err *err)
{
	struct zk_sess *s;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		if (c->prev != NULL && c->prev->state == ZK_SESS_DEAD)
			retire_locked(c, c->prev);
		s = c->cur;
		if (s != NULL && s->state == ZK_SESS_DEAD) {
			retire_locked(c, s);
			s = NULL;
		}
		if (s != NULL && s->asked_ms != timeout_ms) {
			/* the ttl changed: a new session; the old one keeps the lock until rebound
			 */
			if (keep_sid != 0 && s->id == keep_sid) {
				retire_locked(c, c->prev);
				c->cur = NULL;
				c->prev = s;
			} else {
				retire_locked(c, s);
			}
			s = NULL;
		}
		if (s == NULL) {
			pthread_mutex_unlock(&c->mu);
			s = sess_open(c, timeout_ms, err);
			pthread_mutex_lock(&c->mu);
			if (s == NULL)
				break;
			retire_locked(c, c->cur); /* nobody else creates one; be safe */
			c->cur = s;
		}
		if (s->state == ZK_SESS_CONNECTED) {
			s->refs++;
			*out = s;
			pthread_mutex_unlock(&c->mu);
			return PGKEEL_DCS_OK;
		}
		if (zk_own_now() >= deadline_own) {
			dcsc_set_err(err, PGKEEL_DCS_D_CONNECT,
			             "zookeeper: no server of %s accepted the session in time",
			             c->opts->hosts);
			break;
		}
		cv_wait_until(c, deadline_own);
	}
	pthread_mutex_unlock(&c->mu);
	return PGKEEL_DCS_UNAVAILABLE;
}

/* ------------------------------------------------------------------ keeper */

/*
 * Make the client drop its connection without closeSession: point it at a
 * loopback address other than the server's (the client compares addresses,
 * not ports), port 1, where nothing listens.  Its reconfig path closes the
 * socket at once, so zookeeper_close then finds it disconnected and the
 * server expires the session after its timeout, as when the process dies.
 */
static void drop_connection(zhandle_t *zh)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const char *away = "127.0.0.1:1";

	if (zookeeper_get_connected_host(zh, (struct sockaddr *)&ss, &len) != NULL &&
	    ss.ss_family == AF_INET &&
	    ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) == INADDR_LOOPBACK)
		away = "127.0.0.2:1";
	(void)zoo_set_servers(zh, away);
}

static void *keeper_main(void *arg)
{
	struct zk_conn *c = arg;
	const struct pgkeel_host *h = c->host;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct zk_sess **pp = &c->retired;
		int64_t next = INT64_MAX, now;
		bool acted = false;

		while (*pp != NULL && (*pp)->refs > 0)
			pp = &(*pp)->next;
		if (*pp != NULL) {
			struct zk_sess *s = *pp;

			*pp = s->next;
			pthread_mutex_unlock(&c->mu);
			if (s->abandon)
				drop_connection(s->zh);
			/* completions still pending get ZCLOSING from here */
			(void)zookeeper_close(s->zh);
			free(s);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		if (c->stop) {
			if (c->cur == NULL && c->prev == NULL && c->retired == NULL)
				break;
			if (c->cur != NULL)
				c->cur->abandon = true;
			if (c->prev != NULL)
				c->prev->abandon = true;
			retire_locked(c, c->cur);
			retire_locked(c, c->prev);
			if (c->retired != NULL && c->retired->refs > 0)
				cv_wait_until(c, INT64_MAX);
			continue;
		}
		now = zk_own_now();
		for (int i = 0; i < 2 && !acted; i++) {
			struct zk_sess *s = i == 0 ? c->cur : c->prev;

			if (s == NULL)
				continue;
			if (s->state == ZK_SESS_DEAD) {
				retire_locked(c, s);
				acted = true;
			} else if (c->reap && s->owns_ephemerals) {
				if (now >= s->live_until) {
					h->log(
					    h->ctx, PGKEEL_LOG_WARNING,
					    "zookeeper: no renewal within the session timeout of "
					    "%d "
					    "ms: closing session 0x%" PRIx64
					    " so that its leader and member znodes go, as a lease "
					    "would expire",
					    s->granted_ms, (uint64_t)s->id);
					retire_locked(c, s);
					acted = true;
				} else if (s->live_until < next) {
					next = s->live_until;
				}
			}
		}
		if (!acted)
			cv_wait_until(c, next);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

bool zk_conn_init(struct zk_conn *c, const struct pgkeel_host *host, const struct zk_options *opts,
                  bool reap, struct pgkeel_err *err)
{
	pthread_condattr_t ca;

	memset(c, 0, sizeof(*c));
	c->host = host;
	c->opts = opts;
	c->reap = reap;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->keeper, NULL, keeper_main, c) != 0) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "zookeeper: cannot start the session keeper thread");
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		return false;
	}
	c->keeper_running = true;
	return true;
}

void zk_conn_fini(struct zk_conn *c)
{
	if (!c->keeper_running)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->keeper, NULL);
	c->keeper_running = false;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}
