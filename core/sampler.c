/*
 * sampler: see sampler.h.  The thread's loop: wait for the tick (or a
 * suspension, a stop), read what the loop published, sample, publish.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "pg_bootstrap.h"
#include "pg_conf.h"
#include "pg_query.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

#define TL_RETRY_MS  5000 /* a replica's timeline is asked again at most this often */
#define STOP_WAIT_MS 150  /* how long stop waits for the thread before leaving it */
#define MIN_SLACK_MS 50   /* the query deadline ends at least this long before the tick */

struct pgkeel_sampler {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	pthread_t thread;
	int interval_ms;
	int timeout_ms;
	int valid_ms;

	/* under mu */
	struct pgkeel_config *new_cfg; /* from set_config, taken at the next tick */
	bool stop;
	bool suspended;
	bool closed; /* the thread acknowledged the suspension: no connection */
	bool exited; /* the thread left its loop */
	bool orphan; /* stop gave up waiting: the thread frees everything */
	int backend_pid;

	/* the thread's own */
	struct pgkeel_config *cfg;
	struct pgkeel_pg *pg;   /* the local connection; NULL until needed */
	struct pgkeel_pg *repl; /* the replication connection for IDENTIFY_SYSTEM */
	bool failing;           /* the last status query failed (logged once) */
	bool tl_failing;        /* the last IDENTIFY_SYSTEM failed (logged once) */
	int64_t tl_asked_ms;    /* 0: never */
	int64_t tl_cached;      /* <= 0: unknown */
	int64_t tl_asked_status;
};

bool pgkeel_sampler_need_identify(int64_t now_ms, int64_t asked_ms, int64_t cached,
                                  int64_t asked_status_tl, int64_t status_tl, int64_t leader_tl)
{
	if (asked_ms <= 0 || status_tl != asked_status_tl)
		return true;
	if (now_ms - asked_ms < TL_RETRY_MS)
		return false;
	if (cached <= 0)
		return true; /* the last ask failed */
	/* with no leader known, the status query's timeline stands in for the leader's */
	return cached != (leader_tl > 0 ? leader_tl : status_tl);
}

/* ------------------------------------------------------------ connections */

/*
 * Patroni's get_replica_timeline connection: authentication.replication
 * (username as user, the rest as libpq keywords), the local replication
 * address, replication=1.
 */
static struct pgkeel_pg *replication_connection(const struct pgkeel_config *cfg)
{
	json_object *auth =
	    pgkeel_json_path(cfg->effective, "postgresql.authentication.replication");
	struct pgkeel_pg_params p;
	const char *keys[16], *values[16];
	char *texts[18], *host = NULL, *port = NULL;
	size_t n_texts = 0, n = 0;
	int64_t port_num = 0;
	struct pgkeel_pg *pg;

	memset(&p, 0, sizeof(p));
	pgkeel_pg_local_address(cfg, true, &host, &port);
	p.host = host;
	if (pgkeel_parse_int64(port, &port_num) && port_num > 0 && port_num < 65536)
		p.port = (int)port_num;
	p.replication = true;
	if (json_object_is_type(auth, json_type_object)) {
		json_object_object_foreach(auth, k, v)
		{
			char *t;

			if (v == NULL || n_texts >= PGKEEL_ARRAY_LEN(texts))
				continue;
			t = texts[n_texts++] = pgkeel_pg_value_text(v);
			if (strcmp(k, "username") == 0) {
				p.user = t;
			} else if (strcmp(k, "password") == 0) {
				p.password = t;
			} else if (n < PGKEEL_ARRAY_LEN(keys)) {
				keys[n] = k;
				values[n++] = t;
			}
		}
	}
	p.extra_keys = keys;
	p.extra_values = values;
	p.n_extra = n;
	pg = pgkeel_pg_new(&p);
	for (size_t i = 0; i < n_texts; i++) {
		memset(texts[i], 0, strlen(texts[i])); /* a password among them */
		free(texts[i]);
	}
	free(host);
	free(port);
	return pg;
}

static void drop_connections(struct pgkeel_sampler *s)
{
	pgkeel_pg_free(s->pg);
	s->pg = NULL;
	pgkeel_pg_free(s->repl);
	s->repl = NULL;
}

/* ------------------------------------------------------------ one sample */

/* What the sampler reads from the loop's published part. */
struct loop_facts {
	bool queryable;    /* PostgreSQL is running, restarting or starting */
	int64_t leader_tl; /* the leader's timeline from its member data; 0 unknown */
};

static void read_loop_facts(struct loop_facts *f)
{
	static const char *const queried[] = {"running", "restarting", "starting"};
	struct pgkeel_state_view v;
	const struct pgkeel_state_loop *l;

	memset(f, 0, sizeof(*f));
	pgkeel_state_acquire(&v);
	l = v.loop;
	if (l != NULL && l->pg_state != NULL)
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(queried); i++)
			f->queryable = f->queryable || strcmp(l->pg_state, queried[i]) == 0;
	if (l != NULL && l->cluster != NULL && !pgkeel_cluster_is_unlocked(l->cluster)) {
		const struct pgkeel_member *m =
		    pgkeel_cluster_get_member(l->cluster, pgkeel_cluster_leader_name(l->cluster));

		if (m != NULL && m->d.timeline > 0)
			f->leader_tl = m->d.timeline;
	}
	pgkeel_state_release(&v);
}

static void forget_timeline(struct pgkeel_sampler *s)
{
	s->tl_asked_ms = 0;
	s->tl_cached = 0;
	s->tl_asked_status = 0;
}

/* A replica's timeline: the cached IDENTIFY_SYSTEM answer, asked again when due. */
static int64_t replica_timeline(struct pgkeel_sampler *s, const struct pgkeel_pg_status *st,
                                int64_t leader_tl, int64_t deadline)
{
	struct pgkeel_pg_sysinfo si;
	struct pgkeel_pg_err e = {0};
	int64_t now = pgkeel_now_monotonic_ms();

	if (!pgkeel_sampler_need_identify(now, s->tl_asked_ms, s->tl_cached, s->tl_asked_status,
	                                  st->timeline, leader_tl))
		return s->tl_cached;
	if (s->repl == NULL)
		s->repl = replication_connection(s->cfg);
	s->tl_asked_ms = now;
	s->tl_asked_status = st->timeline;
	if (pgkeel_pg_identify_system(s->repl, deadline, &si, &e) == PGKEEL_PG_OK) {
		s->tl_cached = si.timeline;
		s->tl_failing = false;
	} else {
		if (!s->tl_failing)
			log_warning("Can not fetch local timeline and lsn from replication "
			            "connection: %s",
			            e.msg);
		s->tl_failing = true;
		s->tl_cached = 0;
	}
	pgkeel_pg_close(s->repl); /* no walsender stays behind */
	return s->tl_cached;
}

/* One tick's part (never NULL): the sample, or a failed part. */
static struct pgkeel_state_pg *sample(struct pgkeel_sampler *s, int64_t start_mono)
{
	struct pgkeel_state_pg *p = pgkeel_state_pg_new();
	int64_t boot = pgkeel_now_boottime_ms(), deadline = start_mono + s->timeout_ms;
	struct pgkeel_pg_status *st = NULL;
	struct pgkeel_pg_err e = {0};
	struct loop_facts f;

	read_loop_facts(&f);
	if (!f.queryable) {
		drop_connections(s);
		forget_timeline(s);
		s->failing = false;
		return p;
	}
	if (s->pg == NULL)
		s->pg = pgkeel_pg_local_connection(s->cfg);
	if (pgkeel_pg_query_status(s->pg, deadline, &st, &e) != PGKEEL_PG_OK) {
		if (!s->failing)
			log_warning("sampler: the status query failed (%s): %s",
			            pgkeel_pg_rc_name(e.rc), e.msg);
		else
			log_debug("sampler: the status query failed (%s): %s",
			          pgkeel_pg_rc_name(e.rc), e.msg);
		s->failing = true;
		return p;
	}
	if (s->failing)
		log_info("sampler: the status query answers again");
	s->failing = false;
	p->status = st;
	p->valid_until_ms = boot + s->valid_ms;
	if (!st->in_recovery) {
		forget_timeline(s);
		p->timeline = st->timeline;
	} else {
		p->timeline = replica_timeline(s, st, f.leader_tl, deadline);
	}
	return p;
}

/* ------------------------------------------------------------ the thread */

static void sampler_free(struct pgkeel_sampler *s)
{
	drop_connections(s);
	pgkeel_config_unref(s->cfg);
	pgkeel_config_unref(s->new_cfg);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Wait on cv until deadline (CLOCK_MONOTONIC ms); mu held. */
static void wait_until_locked(struct pgkeel_sampler *s, int64_t deadline)
{
	struct timespec ts = {.tv_sec = deadline / 1000,
	                      .tv_nsec = (long)(deadline % 1000) * 1000000};

	(void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Suspended: close the connections once, publish a failed part, then wait. */
static void suspended_locked(struct pgkeel_sampler *s)
{
	if (s->closed) {
		pthread_cond_wait(&s->cv, &s->mu);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	drop_connections(s);
	forget_timeline(s);
	pthread_mutex_lock(&s->mu);
	if (!s->stop)
		pgkeel_state_publish_pg(pgkeel_state_pg_new());
	s->backend_pid = 0;
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
}

static void *sampler_main(void *arg)
{
	struct pgkeel_sampler *s = arg;
	int64_t due = pgkeel_now_monotonic_ms();
	bool orphan;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct pgkeel_state_pg *p;
		int64_t now = pgkeel_now_monotonic_ms();

		if (s->suspended) {
			suspended_locked(s);
			due = pgkeel_now_monotonic_ms(); /* resumed: sample at once */
			continue;
		}
		if (now < due) {
			wait_until_locked(s, due);
			continue;
		}
		if (s->new_cfg != NULL) {
			pgkeel_config_unref(s->cfg);
			s->cfg = s->new_cfg;
			s->new_cfg = NULL;
			pthread_mutex_unlock(&s->mu);
			drop_connections(s);
			pthread_mutex_lock(&s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		p = sample(s, now);
		pthread_mutex_lock(&s->mu);
		if (s->stop || s->suspended) {
			/* stop: nothing is published any more; suspended: the failed part is */
			pgkeel_state_pg_unref(p);
			continue;
		}
		pgkeel_state_publish_pg(p);
		s->backend_pid = s->pg != NULL ? pgkeel_pg_backend_pid(s->pg) : 0;
		due += s->interval_ms;
		now = pgkeel_now_monotonic_ms();
		if (due <= now) {
			log_debug("sampler: a sample took %lld ms, sampling again at once",
			          (long long)(now - due + s->interval_ms));
			due = now;
		}
	}
	s->exited = true;
	orphan = s->orphan;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (orphan)
		sampler_free(s); /* stop() has returned long ago */
	return NULL;
}

/* ------------------------------------------------------------ the owner's side */

struct pgkeel_sampler *pgkeel_sampler_start(const struct pgkeel_sampler_opts *o)
{
	struct pgkeel_sampler *s = pgkeel_xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	s->interval_ms = o->interval_ms > 0 ? o->interval_ms : PGKEEL_SAMPLER_INTERVAL_MS;
	s->timeout_ms = o->query_timeout_ms > 0 ? o->query_timeout_ms : PGKEEL_SAMPLER_TIMEOUT_MS;
	if (s->timeout_ms > s->interval_ms - MIN_SLACK_MS)
		s->timeout_ms = s->interval_ms > 2 * MIN_SLACK_MS ? s->interval_ms - MIN_SLACK_MS
		                                                  : s->interval_ms / 2;
	if (s->timeout_ms < 1)
		s->timeout_ms = 1;
	s->valid_ms = o->valid_ms > 0 ? o->valid_ms : PGKEEL_SAMPLER_VALID_MS;
	s->cfg = pgkeel_config_ref(o->cfg);
	s->closed = true;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, sampler_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_fatal("cannot start the PostgreSQL sampler thread: %s", strerror(rc));
		abort();
	}
	log_debug("sampler: every %d ms, query deadline %d ms, samples valid %d ms", s->interval_ms,
	          s->timeout_ms, s->valid_ms);
	return s;
}

bool pgkeel_sampler_stop(struct pgkeel_sampler *s)
{
	pthread_t thread;
	int64_t until;
	bool exited;

	if (s == NULL)
		return true;
	until = pgkeel_now_monotonic_ms() + STOP_WAIT_MS;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	while (!s->exited && pgkeel_now_monotonic_ms() < until)
		wait_until_locked(s, until);
	exited = s->exited;
	if (!exited)
		s->orphan = true; /* from here on s is the thread's to free */
	thread = s->thread;
	pthread_mutex_unlock(&s->mu);
	if (!exited) {
		log_debug("sampler: still inside a query, left to end by its deadline");
		pthread_detach(thread);
		return false;
	}
	pthread_join(thread, NULL);
	sampler_free(s);
	return true;
}

void pgkeel_sampler_set_config(struct pgkeel_sampler *s, struct pgkeel_config *cfg)
{
	pthread_mutex_lock(&s->mu);
	pgkeel_config_unref(s->new_cfg);
	s->new_cfg = pgkeel_config_ref(cfg);
	pthread_mutex_unlock(&s->mu);
}

bool pgkeel_sampler_suspend(struct pgkeel_sampler *s, int64_t deadline_ms)
{
	bool closed;

	pthread_mutex_lock(&s->mu);
	if (!s->suspended) {
		s->suspended = true;
		s->closed = false;
		pthread_cond_broadcast(&s->cv);
	}
	while (!s->closed && pgkeel_now_monotonic_ms() < deadline_ms)
		wait_until_locked(s, deadline_ms);
	closed = s->closed;
	pthread_mutex_unlock(&s->mu);
	if (!closed)
		log_debug("sampler: still inside a query; its connection closes when it ends");
	return closed;
}

void pgkeel_sampler_resume(struct pgkeel_sampler *s)
{
	pthread_mutex_lock(&s->mu);
	s->suspended = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int pgkeel_sampler_backend_pid(struct pgkeel_sampler *s)
{
	int pid;

	pthread_mutex_lock(&s->mu);
	pid = s->backend_pid;
	pthread_mutex_unlock(&s->mu);
	return pid;
}
