/*
 * Unit tests for the REST API's pure parts: the health-check status codes
 * per role, state and query (a table following Patroni 3.0.2's api.py
 * do_GET, row by row), /liveness and /readiness, the status document
 * (byte-equal with what Patroni 3.0.2 answered, tests/data/patroni-3.0.2/
 * rest-patroni-*.json), the switchover/failover request checks and texts,
 * scheduled_at parsing, Python's error page, base64 and restapi.listen.
 */
#include "autoconf.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "json.h"
#include "pg_query.h"
#include "rest_internal.h"
#include "state.h"
#include "util.h"

#include "rest_test.h"

#define NOW 1000000000 /* monotonic ms used as "now" throughout */

/* ------------------------------------------------------------ builders */

/* A status query's answer: a primary at lsn, or a replica that replayed up to lsn. */
static struct pgkeel_pg_status *status_new(bool in_recovery, int64_t lsn)
{
	struct pgkeel_pg_status *st = pgkeel_xcalloc(1, sizeof(*st));

	st->server_version = 150018;
	st->in_recovery = in_recovery;
	(void)pgkeel_fmt(st->postmaster_start_time, sizeof(st->postmaster_start_time), "%s",
	                 in_recovery ? "2026-11-25 23:06:49.550397+00:00"
	                             : "2026-11-25 23:06:46.341123+00:00");
	if (in_recovery) {
		(void)pgkeel_fmt(st->replay_timestamp, sizeof(st->replay_timestamp), "%s",
		                 "2026-11-25 23:06:57.838652+00:00");
		st->replay_lsn = st->receive_lsn = lsn;
	} else {
		st->wal_lsn = lsn;
		st->timeline = 1;
	}
	return st;
}

#define status_primary(lsn) status_new(false, (lsn))
#define status_replica(lsn) status_new(true, (lsn))

static void add_walsender(struct pgkeel_pg_status *st, const char *app, const char *sync_state,
                          int prio)
{
	struct pgkeel_pg_walsender *w;

	st->walsenders =
	    pgkeel_xreallocarray(st->walsenders, st->n_walsenders + 1, sizeof(*st->walsenders));
	w = &st->walsenders[st->n_walsenders++];
	memset(w, 0, sizeof(*w));
	w->usename = pgkeel_strdup("replicator");
	w->application_name = pgkeel_strdup(app);
	w->client_addr = pgkeel_strdup("127.0.0.1");
	w->state = pgkeel_strdup("streaming");
	w->sync_state = pgkeel_strdup(sync_state);
	w->sync_priority = prio;
}

/* ------------------------------------------------- health-check table */

/*
 * A node's situation.  `lag` is last_lsn - replayed (0: none); `sync`
 * puts the node into the sync key with synchronous_mode on.
 */
struct situation {
	const char *role;     /* "master", "replica", "standby_leader" */
	const char *pg_state; /* NULL: running */
	bool lock;            /* holds the leader lock (deadline in the future) */
	bool lock_expired;    /* held it, deadline passed (a stuck loop) */
	bool no_cluster;      /* no cached DCS view */
	bool paused;
	bool standby_cluster;
	bool sync;
	bool noloadbalance;
	int64_t lag;
	bool sample_failed;
};

static void build(const struct situation *s, struct pgkeel_state_view *v)
{
	static const char *const kv_sync[] = {
	    "leader", "pg-1",
	    "status", "{\"optime\": 100000000}",
	    "sync",   "{\"leader\":\"pg-1\",\"sync_standby\":\"me\"}",
	    NULL};
	static const char *const kv[] = {"leader", "pg-1", "status", "{\"optime\": 100000000}",
	                                 NULL};
	struct pgkeel_state_loop *l = pgkeel_state_loop_new();
	struct pgkeel_state_pg *pg = pgkeel_state_pg_new();
	bool replica = strcmp(s->role, "master") != 0;
	struct json_object *tags;

	l->name = pgkeel_strdup("me");
	l->scope = pgkeel_strdup("batman");
	l->pg_state = pgkeel_strdup(s->pg_state != NULL ? s->pg_state : "running");
	l->pg_running = true;
	l->role = strcmp(s->role, "master") == 0           ? PGKEEL_STATE_ROLE_MASTER
	          : strcmp(s->role, "standby_leader") == 0 ? PGKEEL_STATE_ROLE_STANDBY_LEADER
	                                                   : PGKEEL_STATE_ROLE_REPLICA;
	l->ttl = 30;
	l->loop_wait = 10;
	l->next_cycle_ms = NOW;
	l->lock_deadline_ms = s->lock ? NOW + 10000 : s->lock_expired ? NOW - 1 : 0;
	l->paused = s->paused;
	l->standby_cluster = s->standby_cluster;
	l->synchronous_mode = s->sync;
	if (!s->no_cluster) {
		l->cluster = cluster_of(s->sync ? kv_sync : kv);
		l->cluster_valid_ms = NOW + 30000;
	}
	tags = json_of(s->noloadbalance ? "{\"dc\": \"dc1\", \"noloadbalance\": true, \"n\": 5, "
	                                  "\"f\": 1.5, \"b\": true, \"nofailover\": false}"
	                                : "{\"dc\": \"dc1\", \"n\": 5, \"f\": 1.5, \"b\": true, "
	                                  "\"nofailover\": false}");
	pgkeel_state_loop_set_tags(l, tags, false);
	json_object_put(tags);
	if (!s->sample_failed)
		pg->status =
		    replica ? status_replica(100000000 - s->lag) : status_primary(100000000);
	pg->timeline = 1;
	pg->valid_until_ms = NOW + 5000;
	v->loop = l;
	v->pg = pg;
}

struct row {
	int line;
	struct situation s;
	const char *path;
	const char *query; /* "k=v&k=v" */
	int code;
};

/* clang-format off */
#define R(...) {__LINE__, __VA_ARGS__}
#define PRIMARY {.role = "master", .lock = true}
#define ASYNC {.role = "replica"}
#define SYNC {.role = "replica", .sync = true}
#define NOLB {.role = "replica", .noloadbalance = true}
#define LAGGING {.role = "replica", .lag = 2 * 1024 * 1024}
#define SBLEADER {.role = "standby_leader", .lock = true, .standby_cluster = true}
#define SBREPLICA {.role = "replica", .standby_cluster = true}
#define STUCK {.role = "master", .lock_expired = true}
#define DCSDOWN_REPLICA {.role = "replica", .no_cluster = true}
#define DCSDOWN_PRIMARY {.role = "master", .lock = true, .no_cluster = true}
#define PAUSED_NOVIEW_PRIMARY {.role = "master", .no_cluster = true, .paused = true}
#define PAUSED_NOVIEW_REPLICA {.role = "replica", .no_cluster = true, .paused = true}
#define STOPPED_REPLICA {.role = "replica", .pg_state = "stopped"}
#define FAILED_SAMPLE_REPLICA {.role = "replica", .sample_failed = true}

static const struct row rows[] = {
    /* the observed 3.0.2 table (spec §1.4) */
    R(PRIMARY, "/", "", 200), R(ASYNC, "/", "", 503), R(SYNC, "/", "", 503),
    R(PRIMARY, "/primary", "", 200), R(ASYNC, "/primary", "", 503),
    R(PRIMARY, "/master", "", 200), R(SYNC, "/master", "", 503),
    R(PRIMARY, "/read-write", "", 200), R(ASYNC, "/read-write", "", 503),
    R(PRIMARY, "/leader", "", 200), R(ASYNC, "/leader", "", 503), R(SYNC, "/leader", "", 503),
    R(PRIMARY, "/standby-leader", "", 503), R(PRIMARY, "/standby_leader", "", 503),
    R(ASYNC, "/standby-leader", "", 503),
    R(PRIMARY, "/replica", "", 503), R(ASYNC, "/replica", "", 200), R(SYNC, "/replica", "", 200),
    R(NOLB, "/replica", "", 503), R(LAGGING, "/replica", "", 200),
    R(LAGGING, "/replica", "lag=1MB", 503), R(LAGGING, "/replica", "lag=2MB", 200),
    R(LAGGING, "/replica", "lag=2097151", 503), R(LAGGING, "/replica", "lag=2097152", 200),
    R(LAGGING, "/replica", "lag=1.5MB", 503), R(LAGGING, "/replica", "lag=3.5MB", 200),
    R(LAGGING, "/replica", "lag=bogus", 200), R(LAGGING, "/replica", "lag=1mb", 200),
    R(LAGGING, "/replica", "lag=1kB", 503), R(ASYNC, "/replica", "lag=0", 200),
    R(ASYNC, "/replica", "tag_dc=dc1", 200), R(ASYNC, "/replica", "tag_dc=dc2", 503),
    R(ASYNC, "/replica", "tag_dc=DC1", 503), R(ASYNC, "/replica", "tag_zone=a", 503),
    R(ASYNC, "/replica", "tag_n=5", 200), R(ASYNC, "/replica", "tag_f=1.5", 200),
    R(ASYNC, "/replica", "tag_b=true", 200), R(ASYNC, "/replica", "tag_b=True", 503),
    R(ASYNC, "/replica", "tag_nofailover=false", 503), /* falsy built-in tags are dropped */
    R(ASYNC, "/replica", "tag_dc=dc1&tag_n=5", 200),
    R(ASYNC, "/replica", "tag_dc=dc1&tag_n=6", 503),
    R(PRIMARY, "/primary", "tag_dc=nope", 200), R(PRIMARY, "/leader", "tag_dc=nope", 200),
    R(PRIMARY, "/read-only", "tag_dc=nope", 503), R(PRIMARY, "/read-only", "tag_dc=dc1", 200),
    R(PRIMARY, "/read-only", "", 200), R(ASYNC, "/read-only", "", 200),
    R(SYNC, "/read-only", "", 200),
    R(NOLB, "/read-only", "", 503), R(LAGGING, "/read-only", "lag=1MB", 503),
    R(PRIMARY, "/sync", "", 503), R(ASYNC, "/sync", "", 503), R(SYNC, "/sync", "", 200),
    R(SYNC, "/synchronous", "", 200), R(SYNC, "/sync", "lag=0", 200),
    R(PRIMARY, "/async", "", 503), R(ASYNC, "/async", "", 200), R(SYNC, "/async", "", 503),
    R(ASYNC, "/asynchronous", "", 200), R(LAGGING, "/async", "lag=1MB", 503),
    R(PRIMARY, "/read-only-sync", "", 200), R(ASYNC, "/read-only-sync", "", 503),
    R(SYNC, "/read-only-sync", "", 200), R(SYNC, "/read-only-synchronous", "", 200),
    R(PRIMARY, "/health", "", 200), R(ASYNC, "/health", "", 200), R(SYNC, "/health", "", 200),
    R(PRIMARY, "/foo", "", 503), R(ASYNC, "/patroni", "", 503), R(PRIMARY, "/patroni", "", 503),
    R(PRIMARY, "/liveness", "", 503),
    /* substring routing, not exact paths */
    R(PRIMARY, "/leaderfoo", "", 200), R(ASYNC, "/x/replica/y", "", 200),
    R(SYNC, "/sync/", "", 503), R(PRIMARY, "/primary-replica", "", 200),
    R(ASYNC, "/read-only-sync-x", "", 503), R(PRIMARY, "/healthy", "", 200),
    /* a standby cluster */
    R(SBLEADER, "/standby-leader", "", 200), R(SBLEADER, "/standby_leader", "", 200),
    R(SBLEADER, "/leader", "", 200), R(SBLEADER, "/primary", "", 503),
    R(SBLEADER, "/replica", "", 503), R(SBLEADER, "/read-only", "", 200),
    R(SBREPLICA, "/replica", "", 200), R(SBREPLICA, "/standby-leader", "", 503),
    /* a stuck loop: the lock deadline has passed */
    R(STUCK, "/leader", "", 503), R(STUCK, "/primary", "", 503), R(STUCK, "/", "", 503),
    R(STUCK, "/read-only", "", 503), R(STUCK, "/health", "", 200),
    /* DCS down: no cached view */
    R(DCSDOWN_REPLICA, "/replica", "", 200), R(DCSDOWN_REPLICA, "/health", "", 200),
    R(DCSDOWN_REPLICA, "/sync", "", 503), R(DCSDOWN_REPLICA, "/async", "", 503),
    R(DCSDOWN_REPLICA, "/read-only-sync", "", 503), R(DCSDOWN_PRIMARY, "/primary", "", 200),
    R(DCSDOWN_REPLICA, "/replica", "lag=0", 200), /* no view, no optime: never lagging */
    /* paused with no view: roles decide */
    R(PAUSED_NOVIEW_PRIMARY, "/leader", "", 200), R(PAUSED_NOVIEW_PRIMARY, "/primary", "", 200),
    R(PAUSED_NOVIEW_REPLICA, "/leader", "", 503), R(PAUSED_NOVIEW_REPLICA, "/replica", "", 200),
    /* PostgreSQL not running, or its status query failed */
    R(STOPPED_REPLICA, "/replica", "", 503), R(STOPPED_REPLICA, "/health", "", 503),
    R(STOPPED_REPLICA, "/read-only", "", 503), R(FAILED_SAMPLE_REPLICA, "/replica", "", 503),
    R(FAILED_SAMPLE_REPLICA, "/health", "", 503),
};
/* clang-format on */

static size_t parse_query(char *q, struct pgkeel_rest_qparam *out, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	for (char *tok = strtok_r(q, "&", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		out[n].key = tok;
		out[n].value = eq + 1;
		n++;
	}
	return n;
}

static void test_health_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(rows); i++) {
		const struct row *r = &rows[i];
		struct pgkeel_state_view v;
		struct pgkeel_rest_pgview pv;
		struct pgkeel_rest_qparam q[8];
		char qbuf[128];
		size_t nq;
		int code;

		(void)pgkeel_fmt(qbuf, sizeof(qbuf), "%s", r->query);
		nq = parse_query(qbuf, q, PGKEEL_ARRAY_LEN(q));
		build(&r->s, &v);
		pgkeel_rest_pgview_get(&v, NOW, &pv);
		code = pgkeel_rest_health_code(&v, &pv, r->path, q, nq);
		if (code != r->code)
			fail_msg("row at line %d: %s %s?%s -> %d, expected %d", r->line, r->s.role,
			         r->path, r->query, code, r->code);
		pgkeel_state_release(&v);
	}
}

/* Nothing published at all: every check fails, nothing crashes. */
static void test_health_empty(void **state)
{
	struct pgkeel_state_view v = {NULL, NULL};
	struct pgkeel_rest_pgview pv;
	char *doc;

	(void)state;
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	assert_int_equal(pgkeel_rest_health_code(&v, &pv, "/", NULL, 0), 503);
	assert_int_equal(pgkeel_rest_health_code(&v, &pv, "/replica", NULL, 0), 503);
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW), 503);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 503);
	doc = pgkeel_rest_status_json(&v, &pv, NULL);
	assert_string_equal(doc, "{\"state\": \"stopped\", \"role\": \"uninitialized\", "
	                         "\"cluster_unlocked\": true, \"dcs_last_seen\": 0, \"patroni\": "
	                         "{\"version\": \"3.0.2\", \"scope\": null, \"name\": null}}");
	free(doc);
	assert_null(pgkeel_rest_failsafe_json(&v));
}

static void test_liveness_readiness(void **state)
{
	struct situation primary = PRIMARY, replica = ASYNC, down = DCSDOWN_REPLICA;
	struct situation stopped = STOPPED_REPLICA;
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;

	(void)state;
	build(&primary, &v);
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	/* next cycle due at NOW; a primary tolerates ttl (30 s), a replica 2 * ttl */
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 29999), 200);
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 30000), 503);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 200);
	v.loop->paused = true; /* a stuck loop is fine in maintenance mode */
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 999999), 200);
	pgkeel_state_release(&v);

	build(&replica, &v);
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 59999), 200);
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 60000), 503);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 200);
	pgkeel_state_release(&v);

	/* a primary whose postmaster is gone counts as a replica for liveness */
	build(&primary, &v);
	v.loop->pg_running = false;
	assert_int_equal(pgkeel_rest_liveness_code(&v, NOW + 30000), 200);
	pgkeel_state_release(&v);

	build(&down, &v);
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 503);
	pgkeel_state_release(&v);

	build(&stopped, &v);
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 503);
	pgkeel_state_release(&v);

	/* the cluster view expires by itself ttl after the read */
	build(&replica, &v);
	pgkeel_rest_pgview_get(&v, NOW + 30000, &pv);
	assert_false(pv.cluster);
	assert_int_equal(pgkeel_rest_readiness_code(&v, &pv), 503);
	pgkeel_state_release(&v);
}

/* ------------------------------------------------------ status document */

static char *read_data(const char *name)
{
	char path[512], *buf;
	FILE *f;
	long n;

	(void)pgkeel_fmt(path, sizeof(path), "%s/tests/data/patroni-3.0.2/%s", TEST_SRCDIR, name);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = pgkeel_xcalloc((size_t)n + 1, 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return buf;
}

/* Patroni 3.0.2's document with 3.3's "name" added to the patroni object. */
static char *expected_doc(const char *file, const char *name)
{
	char *text = read_data(file), *at, *out;
	const char *scope = "\"scope\": \"prod-pg\"}";

	at = strstr(text, scope);
	assert_non_null(at);
	*at = '\0';
	out = pgkeel_asprintf("%s\"scope\": \"prod-pg\", \"name\": \"%s\"}%s", text, name,
	                      at + strlen(scope));
	free(text);
	return out;
}

static const char *const capture_kv[] = {
    "initialize",
    "7712249454031023488",
    "leader",
    "pg-1",
    "members/pg-1",
    "{\"conn_url\":\"postgres://127.0.0.1:25501/postgres\",\"api_url\":"
    "\"http://127.0.0.1:28101/patroni\",\"state\":\"running\",\"role\":"
    "\"master\",\"version\":\"3.0.2\",\"xlog_location\":67109000,"
    "\"timeline\":1}",
    "status",
    "{\"optime\":67109000}",
    "sync",
    "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-3\"}",
    "config",
    "{\"synchronous_mode\":true}",
    NULL};

static struct pgkeel_state_loop *capture_loop(const char *name, enum pgkeel_state_role role,
                                              const char *tags)
{
	struct pgkeel_state_loop *l = pgkeel_state_loop_new();
	struct json_object *t = json_of(tags);

	l->name = pgkeel_strdup(name);
	l->scope = pgkeel_strdup("prod-pg");
	l->pg_state = pgkeel_strdup("running");
	l->pg_running = true;
	l->role = role;
	l->ttl = 30;
	l->cluster = cluster_of(capture_kv);
	l->cluster_valid_ms = NOW + 30000;
	l->dcs_last_seen = 1795648027;
	l->synchronous_mode = true;
	l->sysid = pgkeel_strdup("7712249454031023488");
	l->lock_deadline_ms = role == PGKEEL_STATE_ROLE_MASTER ? NOW + 30000 : 0;
	pgkeel_state_loop_set_tags(l, t, false);
	json_object_put(t);
	return l;
}

static void check_doc(struct pgkeel_state_view *v, const char *file, const char *name)
{
	struct pgkeel_rest_pgview pv;
	char *got, *want = expected_doc(file, name);

	pgkeel_rest_pgview_get(v, NOW, &pv);
	got = pgkeel_rest_status_json(v, &pv, NULL);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_doc_captured(void **state)
{
	struct pgkeel_state_view v;
	struct pgkeel_pg_status *st;

	(void)state;
	/* the leader, with two walsenders */
	v.loop = capture_loop("pg-1", PGKEEL_STATE_ROLE_MASTER, "{}");
	v.pg = pgkeel_state_pg_new();
	st = status_primary(67109000);
	add_walsender(st, "pg-3", "sync", 1);
	add_walsender(st, "pg-2", "async", 0);
	v.pg->status = st;
	v.pg->timeline = 1;
	v.pg->valid_until_ms = NOW + 1000;
	check_doc(&v, "rest-patroni-leader.json", "pg-1");
	pgkeel_state_release(&v);

	/* the synchronous standby, tagged dc3 */
	v.loop = capture_loop("pg-3", PGKEEL_STATE_ROLE_REPLICA, "{\"dc\": \"dc3\"}");
	v.pg = pgkeel_state_pg_new();
	v.pg->status = status_replica(67109000);
	(void)pgkeel_fmt(v.pg->status->postmaster_start_time,
	                 sizeof(v.pg->status->postmaster_start_time), "%s",
	                 "2026-11-25 23:06:49.575108+00:00");
	v.pg->timeline = 1;
	v.pg->valid_until_ms = NOW + 1000;
	check_doc(&v, "rest-patroni-replica.json", "pg-3");
	pgkeel_state_release(&v);

	/* the asynchronous one, whose falsy built-in tags are dropped */
	v.loop = capture_loop("pg-2", PGKEEL_STATE_ROLE_REPLICA,
	                      "{\"nofailover\": false, \"noloadbalance\": false, "
	                      "\"clonefrom\": false, \"nosync\": false}");
	v.pg = pgkeel_state_pg_new();
	v.pg->status = status_replica(67109000);
	v.pg->timeline = 1;
	v.pg->valid_until_ms = NOW + 1000;
	check_doc(&v, "rest-patroni-replica-async.json", "pg-2");
	pgkeel_state_release(&v);
}

static void test_doc_variants(void **state)
{
	struct pgkeel_state_view v;
	struct pgkeel_rest_pgview pv;
	char *got;

	(void)state;
	/* PostgreSQL stopped in a paused cluster (spec §1.3, observed) */
	v.loop = capture_loop("pg-1", PGKEEL_STATE_ROLE_REPLICA, "{\"dc\": \"dc0\"}");
	free(v.loop->pg_state);
	v.loop->pg_state = pgkeel_strdup("stopped");
	v.loop->pending_restart = true;
	v.loop->paused = true;
	v.loop->dcs_last_seen = 1795641001;
	v.pg = NULL;
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	got = pgkeel_rest_status_json(&v, &pv, "1.2.3");
	assert_string_equal(got,
	                    "{\"state\": \"stopped\", \"role\": \"replica\", \"dcs_last_seen\": "
	                    "1795641001, \"tags\": {\"dc\": \"dc0\"}, "
	                    "\"database_system_identifier\": \"7712249454031023488\", "
	                    "\"pending_restart\": true, \"patroni\": {\"version\": \"3.0.2\", "
	                    "\"scope\": \"prod-pg\", \"name\": \"pg-1\"}, \"pause\": true, "
	                    "\"pgkeel_version\": \"1.2.3\"}");
	free(got);

	/* running, but the sample is stale: "unknown"; no view: cluster_unlocked;
	 * failsafe, watchdog, scheduled restart, the temporary nosync tag */
	free(v.loop->pg_state);
	v.loop->pg_state = pgkeel_strdup("running");
	v.loop->pending_restart = false;
	v.loop->paused = false;
	v.loop->cluster_valid_ms = NOW;
	v.loop->failsafe_active = true;
	v.loop->watchdog_failed = true;
	v.loop->scheduled_restart =
	    json_of("{\"schedule\": \"2031-01-01T00:00:00+00:00\", \"role\": \"replica\"}");
	{
		struct json_object *t = json_of("{\"dc\": \"dc0\"}");

		pgkeel_state_loop_set_tags(v.loop, t, true);
		json_object_put(t);
	}
	v.pg = pgkeel_state_pg_new();
	v.pg->status = status_replica(5);
	v.pg->valid_until_ms = NOW;
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	got = pgkeel_rest_status_json(&v, &pv, NULL);
	assert_string_equal(got,
	                    "{\"state\": \"unknown\", \"role\": \"replica\", \"cluster_unlocked\": "
	                    "true, \"failsafe_mode_is_active\": true, \"dcs_last_seen\": "
	                    "1795641001, \"tags\": {\"dc\": \"dc0\", \"nosync\": true}, "
	                    "\"database_system_identifier\": \"7712249454031023488\", "
	                    "\"patroni\": {\"version\": \"3.0.2\", \"scope\": \"prod-pg\", "
	                    "\"name\": \"pg-1\"}, \"scheduled_restart\": {\"schedule\": "
	                    "\"2031-01-01T00:00:00+00:00\", \"role\": \"replica\"}, "
	                    "\"watchdog_failed\": true}");
	free(got);
	/* the temporary nosync tag is not a tag to match against */
	{
		struct pgkeel_rest_qparam q = {"tag_nosync", "true"};

		v.pg->valid_until_ms = NOW + 1;
		pgkeel_rest_pgview_get(&v, NOW, &pv);
		assert_int_equal(pgkeel_rest_health_code(&v, &pv, "/replica", NULL, 0), 200);
		assert_int_equal(pgkeel_rest_health_code(&v, &pv, "/replica", &q, 1), 503);
	}

	/* a fresh replica sample: unknown timeline, receive LSN 0 (falls back to
	 * the replay LSN), replay paused, no replay timestamp */
	v.pg->status->receive_lsn = 0;
	v.pg->status->replay_paused = true;
	v.pg->status->replay_timestamp[0] = '\0';
	v.pg->timeline = 0;
	v.loop->cluster_valid_ms = NOW + 1;
	v.loop->failsafe_active = false;
	v.loop->watchdog_failed = false;
	json_object_put(v.loop->scheduled_restart);
	v.loop->scheduled_restart = NULL;
	pgkeel_state_loop_set_tags(v.loop, NULL, false);
	free(v.loop->sysid);
	v.loop->sysid = NULL;
	pgkeel_rest_pgview_get(&v, NOW, &pv);
	got = pgkeel_rest_status_json(&v, &pv, NULL);
	assert_string_equal(
	    got, "{\"state\": \"running\", \"postmaster_start_time\": \"2026-11-25 "
	         "23:06:49.550397+00:00\", \"role\": \"replica\", \"server_version\": "
	         "150018, \"xlog\": {\"received_location\": 5, \"replayed_location\": 5, "
	         "\"replayed_timestamp\": null, \"paused\": true}, \"timeline\": null, "
	         "\"dcs_last_seen\": 1795641001, \"patroni\": {\"version\": \"3.0.2\", "
	         "\"scope\": \"prod-pg\", \"name\": \"pg-1\"}}");
	free(got);
	pgkeel_state_release(&v);
}

static void test_failsafe_json(void **state)
{
	static const char *const kv[] = {
	    "failsafe",
	    "{\"pg-1\":\"http://127.0.0.1:28101/patroni\",\"pg-2\":\"http://x/patroni\"}", NULL};
	struct pgkeel_state_view v;
	char *got;

	(void)state;
	v.loop = pgkeel_state_loop_new();
	v.pg = NULL;
	assert_null(pgkeel_rest_failsafe_json(&v));
	v.loop->cluster = cluster_of(kv);
	got = pgkeel_rest_failsafe_json(&v);
	assert_string_equal(got, "{\"pg-1\": \"http://127.0.0.1:28101/patroni\", \"pg-2\": "
	                         "\"http://x/patroni\"}");
	free(got);
	pgkeel_state_release(&v);
}

/* -------------------------------------------------- switchover / failover */

#define EPOCH_2026 INT64_C(1795648027000) /* 2026-11-25T23:07:07Z */

struct parse_row {
	int line;
	enum pgkeel_rest_kind kind;
	const char *body;
	bool paused;
	int status;
	const char *text; /* message, or on success "leader|candidate|scheduled_at" */
};

static const struct parse_row parse_rows[] = {
    {__LINE__, PGKEEL_REST_FAILOVER, "{\"leader\": \"pg-1\"}", false, 400,
     "Failover could be performed only to a specific candidate"},
    {__LINE__, PGKEEL_REST_FAILOVER, "{\"candidate\": \"\"}", false, 400,
     "Failover could be performed only to a specific candidate"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"candidate\": \"pg-2\"}", false, 400,
     "Switchover could be performed only from a specific leader"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": null, \"candidate\": \"pg-2\"}", false, 400,
     "Switchover could be performed only from a specific leader"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\", \"candidate\": \"pg-2\"}", false, 0,
     "pg-1|pg-2|"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\", \"member\": \"pg-2\"}", false, 0,
     "pg-1|pg-2|"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\"}", false, 0, "pg-1||"},
    /* patronictl 3.0.2's failover body */
    {__LINE__, PGKEEL_REST_FAILOVER,
     "{\"leader\": \"pg-1\", \"candidate\": \"pg-2\", \"scheduled_at\": null}", false, 0,
     "pg-1|pg-2|"},
    {__LINE__, PGKEEL_REST_FAILOVER, "{\"candidate\": \"pg-2\", \"scheduled_at\": \"\"}", false, 0,
     "|pg-2|"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-01-01T00:00:00+00:00\"}", false, 0,
     "pg-1||2031-01-01T00:00:00+00:00"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-01-01 12:30Z\"}", false, 0,
     "pg-1||2031-01-01T12:30:00+00:00"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-01-01T12:30:05.25-05:30\"}", false, 0,
     "pg-1||2031-01-01T12:30:05.250000-05:30"},
    {__LINE__, PGKEEL_REST_FAILOVER,
     "{\"candidate\": \"pg-2\", \"scheduled_at\": \"2031-01-01T00:00:00+00:00\"}", false, 400,
     "Scheduled failover is possible only from a specific leader"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-01-01T00:00:00+00:00\"}", true, 400,
     "Can't schedule switchover in the paused state"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-01-01T00:00:00\"}", false, 400,
     "Timezone information is mandatory for the scheduled switchover"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2020-01-01T00:00:00+00:00\"}", false, 422,
     "Cannot schedule switchover in the past"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\", \"scheduled_at\": \"tomorrow\"}",
     false, 422,
     "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\", \"scheduled_at\": 12345}", false,
     422,
     "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
    {__LINE__, PGKEEL_REST_SWITCHOVER,
     "{\"leader\": \"pg-1\", \"scheduled_at\": \"2031-02-30T00:00:00+00:00\"}", false, 422,
     "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\"}", true, 400,
     "Switchover is possible only to a specific candidate in a paused state"},
    {__LINE__, PGKEEL_REST_SWITCHOVER, "{\"leader\": \"pg-1\", \"candidate\": \"pg-2\"}", true, 0,
     "pg-1|pg-2|"},
    {__LINE__, PGKEEL_REST_FAILOVER, "{\"candidate\": \"pg-2\"}", true, 0, "|pg-2|"},
};

static void test_failover_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(parse_rows); i++) {
		const struct parse_row *r = &parse_rows[i];
		struct json_object *body = json_of(r->body);
		struct pgkeel_rest_failover_req out;
		char msg[256] = "", got[512];
		int status;

		status = pgkeel_rest_failover_parse(r->kind, body, r->paused, EPOCH_2026, &out, msg,
		                                    sizeof(msg));
		if (status == 0)
			(void)pgkeel_fmt(got, sizeof(got), "%s|%s|%s", out.leader ? out.leader : "",
			                 out.candidate ? out.candidate : "",
			                 out.scheduled_at ? out.scheduled_at : "");
		else
			(void)pgkeel_fmt(got, sizeof(got), "%s", msg);
		if (status != r->status || strcmp(got, r->text) != 0)
			fail_msg("row at line %d: %d \"%s\", expected %d \"%s\"", r->line, status,
			         got, r->status, r->text);
		pgkeel_rest_failover_req_clear(&out);
		json_object_put(body);
	}
}

static void test_schedule_epoch(void **state)
{
	struct json_object *v = json_object_new_string("2031-01-01T01:00:00.5+01:00");
	char *iso = NULL, msg[128];
	int64_t ms = 0;

	(void)state;
	assert_int_equal(
	    pgkeel_rest_parse_schedule(v, "restart", EPOCH_2026, &iso, &ms, msg, sizeof(msg)), 0);
	/* 2031-01-01T00:00:00Z = 1924992000 */
	assert_int_equal(ms, INT64_C(1924992000500));
	assert_string_equal(iso, "2031-01-01T01:00:00.500000+01:00");
	free(iso);
	json_object_put(v);
}

static const char *const precheck_kv[] = {
    "leader",
    "pg-1",
    "members/pg-1",
    "{\"conn_url\":\"postgres://h:1/p\",\"api_url\":\"http://h:1/patroni\"}",
    "members/pg-2",
    "{\"conn_url\":\"postgres://h:2/p\",\"api_url\":\"http://h:2/patroni\"}",
    "members/pg-3",
    "{\"conn_url\":\"postgres://h:3/p\",\"api_url\":\"http://h:3/patroni\"}",
    "sync",
    "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-3\"}",
    "failover",
    "{\"leader\":\"pg-1\",\"member\":\"pg-2\"}",
    NULL};

static void test_failover_precheck(void **state)
{
	struct pgkeel_cluster *c = cluster_of(precheck_kv);
	const struct pgkeel_member **probe;
	size_t n;
	char buf[160];
	const char *msg;

	(void)state;
	msg = pgkeel_rest_failover_precheck(c, false, PGKEEL_REST_SWITCHOVER, "pg-2", NULL, buf,
	                                    sizeof(buf), &probe, &n);
	assert_string_equal(msg, "leader name does not match");
	msg = pgkeel_rest_failover_precheck(c, true, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-2", buf,
	                                    sizeof(buf), &probe, &n);
	assert_string_equal(msg, "candidate name does not match with sync_standby");
	/* a failover is not bound to the sync standby by this check */
	msg = pgkeel_rest_failover_precheck(c, true, PGKEEL_REST_FAILOVER, NULL, "pg-2", buf,
	                                    sizeof(buf), &probe, &n);
	assert_null(msg);
	assert_int_equal(n, 1);
	assert_string_equal(probe[0]->name, "pg-2");
	free(probe);
	msg = pgkeel_rest_failover_precheck(c, false, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-9", buf,
	                                    sizeof(buf), &probe, &n);
	assert_string_equal(msg, "candidate does not exists");
	/* no candidate, sync mode: the sync standbys */
	msg = pgkeel_rest_failover_precheck(c, true, PGKEEL_REST_SWITCHOVER, "pg-1", NULL, buf,
	                                    sizeof(buf), &probe, &n);
	assert_null(msg);
	assert_int_equal(n, 1);
	assert_string_equal(probe[0]->name, "pg-3");
	free(probe);
	/* no candidate: everyone but the leader */
	msg = pgkeel_rest_failover_precheck(c, false, PGKEEL_REST_SWITCHOVER, "pg-1", NULL, buf,
	                                    sizeof(buf), &probe, &n);
	assert_null(msg);
	assert_int_equal(n, 2);
	free(probe);
	assert_string_equal(
	    pgkeel_rest_failover_no_candidate(PGKEEL_REST_SWITCHOVER, buf, sizeof(buf)),
	    "switchover is not possible: no good candidates have been found");
	pgkeel_cluster_unref(c);

	{
		static const char *const alone[] = {"leader",
		                                    "pg-1",
		                                    "members/pg-1",
		                                    "{\"api_url\":\"http://h:1/patroni\"}",
		                                    "members/pg-2",
		                                    "{\"conn_url\":\"postgres://h:2/p\"}",
		                                    NULL};

		c = cluster_of(alone);
		msg = pgkeel_rest_failover_precheck(c, false, PGKEEL_REST_SWITCHOVER, "pg-1", NULL,
		                                    buf, sizeof(buf), &probe, &n);
		assert_string_equal(msg,
		                    "switchover is not possible: cluster does not have members "
		                    "except leader");
		msg = pgkeel_rest_failover_precheck(c, true, PGKEEL_REST_SWITCHOVER, "pg-1", NULL,
		                                    buf, sizeof(buf), &probe, &n);
		assert_string_equal(msg, "switchover is not possible: can not find sync_standby");
		pgkeel_cluster_unref(c);
	}
}

static void test_failover_poll(void **state)
{
	static const char *const same[] = {"leader", "pg-1", "failover",
	                                   "{\"leader\":\"pg-1\",\"member\":\"pg-2\"}", NULL};
	static const char *const cleared[] = {"leader", "pg-1", "failover", "{}", NULL};
	static const char *const moved[] = {"leader", "pg-2", NULL};
	static const char *const elsewhere[] = {"leader", "pg-3", NULL};
	static const char *const unlocked[] = {"failover", "{\"member\":\"pg-2\"}", NULL};
	struct pgkeel_cluster *c;
	char buf[160];
	int status = 0;

	(void)state;
	c = cluster_of(same);
	assert_false(pgkeel_rest_failover_poll(c, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-2", &status,
	                                       buf, sizeof(buf)));
	pgkeel_cluster_unref(c);
	c = cluster_of(unlocked);
	assert_false(pgkeel_rest_failover_poll(c, PGKEEL_REST_FAILOVER, "pg-1", "pg-2", &status,
	                                       buf, sizeof(buf)));
	pgkeel_cluster_unref(c);
	c = cluster_of(cleared);
	assert_true(pgkeel_rest_failover_poll(c, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-1", &status,
	                                      buf, sizeof(buf)));
	assert_int_equal(status, 503);
	assert_string_equal(buf, "Switchover failed");
	pgkeel_cluster_unref(c);
	c = cluster_of(moved);
	assert_true(pgkeel_rest_failover_poll(c, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-2", &status,
	                                      buf, sizeof(buf)));
	assert_int_equal(status, 200);
	assert_string_equal(buf, "Successfully switched over to \"pg-2\"");
	assert_true(pgkeel_rest_failover_poll(c, PGKEEL_REST_FAILOVER, "pg-1", NULL, &status, buf,
	                                      sizeof(buf)));
	assert_string_equal(buf, "Successfully failed over to \"pg-2\"");
	pgkeel_cluster_unref(c);
	c = cluster_of(elsewhere);
	assert_true(pgkeel_rest_failover_poll(c, PGKEEL_REST_FAILOVER, "pg-1", "pg-2", &status, buf,
	                                      sizeof(buf)));
	assert_string_equal(buf, "Failed over to \"pg-3\" instead of \"pg-2\"");
	assert_true(pgkeel_rest_failover_poll(c, PGKEEL_REST_SWITCHOVER, "pg-1", "pg-2", &status,
	                                      buf, sizeof(buf)));
	assert_string_equal(buf, "Switched over to \"pg-3\" instead of \"pg-2\"");
	pgkeel_cluster_unref(c);
	assert_string_equal(pgkeel_rest_failover_unknown(PGKEEL_REST_FAILOVER, buf, sizeof(buf)),
	                    "Failover status unknown");
	assert_int_equal(pgkeel_rest_failover_wait_ms(2), 20000);
	assert_int_equal(pgkeel_rest_failover_wait_ms(15), 30000);
}

/* ------------------------------------------------------------- plumbing */

static void test_error_page(void **state)
{
	char *p;

	(void)state;
	/* python3.11 -c 'from http.server import *' ... send_error(501, "Unsupported method
	 * ('PUT')") */
	p = pgkeel_rest_error_page(501, "Unsupported method ('PUT')");
	assert_string_equal(p, "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta "
	                       "charset=\"utf-8\">\n        <title>Error response</title>\n    "
	                       "</head>\n    <body>\n        <h1>Error response</h1>\n        "
	                       "<p>Error code: 501</p>\n        <p>Message: Unsupported method "
	                       "('PUT').</p>\n        <p>Error code explanation: 501 - Server does "
	                       "not support this operation.</p>\n    </body>\n</html>\n");
	free(p);
	p = pgkeel_rest_error_page(411, NULL);
	assert_non_null(strstr(p, "<p>Message: Length Required.</p>"));
	assert_non_null(strstr(p, "411 - Client must specify Content-Length."));
	free(p);
	p = pgkeel_rest_error_page(400, "<a & b>");
	assert_non_null(strstr(p, "<p>Message: &lt;a &amp; b&gt;.</p>"));
	free(p);
	assert_string_equal(pgkeel_rest_reason(503), "Service Unavailable");
	assert_string_equal(pgkeel_rest_reason(599), "???");
}

static void test_base64(void **state)
{
	static const char *const in[] = {"",     "f",     "fo",     "foo",
	                                 "foob", "fooba", "foobar", "patroni:secret"};
	static const char *const out[] = {
	    "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "cGF0cm9uaTpzZWNyZXQ="};

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(in); i++) {
		char *b = pgkeel_rest_base64(in[i], strlen(in[i]));

		assert_string_equal(b, out[i]);
		free(b);
	}
}

static void test_split_listen(void **state)
{
	static const struct {
		const char *in;
		bool ok;
		const char *host;
		int port;
	} cases[] = {
	    {"127.0.0.1:8008", true, "127.0.0.1", 8008},
	    {"*:8008", true, "*", 8008},
	    {":8008", true, "", 8008},
	    {"0.0.0.0:0", true, "0.0.0.0", 0},
	    {"[::1]:8008", true, "::1", 8008},
	    {"::1:8008", true, "::1", 8008},
	    {"localhost:65535", true, "localhost", 65535},
	    {"localhost", false, NULL, 0},
	    {"h:65536", false, NULL, 0},
	    {"h:80x", false, NULL, 0},
	    {"h:", false, NULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		char *host = NULL;
		int port = -1;
		bool ok = pgkeel_rest_split_listen(cases[i].in, &host, &port);

		if (ok != cases[i].ok)
			fail_msg("%s: %d", cases[i].in, ok);
		if (ok) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
		free(host);
	}
}

/* Published parts are shared by reference and survive being replaced. */
static void test_publish(void **state)
{
	struct pgkeel_state_loop *l = pgkeel_state_loop_new();
	struct pgkeel_state_view v, w;

	(void)state;
	l->name = pgkeel_strdup("first");
	pgkeel_state_publish_loop(l);
	pgkeel_state_acquire(&v);
	assert_ptr_equal(v.loop, l);
	assert_null(v.pg);
	l = pgkeel_state_loop_new();
	l->name = pgkeel_strdup("second");
	pgkeel_state_publish_loop(l);
	assert_string_equal(v.loop->name, "first"); /* still valid for its reader */
	pgkeel_state_acquire(&w);
	assert_string_equal(w.loop->name, "second");
	pgkeel_state_release(&v);
	pgkeel_state_release(&w);
	assert_null(v.loop);
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_acquire(&v);
	assert_null(v.loop);
	pgkeel_state_release(&v);
}

static struct pgkeel_config *load_yaml(const char *text)
{
	struct pgkeel_config_opts opts = {.use_environ = false};
	char path[] = "/tmp/pgkeel-test-rest-XXXXXX.yml";
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	int fd = mkstemps(path, 4);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	if (c == NULL)
		pgkeel_diag_log(&d);
	pgkeel_diag_clear(&d);
	unlink(path);
	assert_non_null(c);
	return c;
}

#define CONFIG_HEAD                                                                                \
	"scope: batman\nname: pg-1\n"                                                              \
	"etcd3:\n  hosts: 127.0.0.1:2379\n"                                                        \
	"postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n"               \
	"  data_dir: /tmp/pgkeel-nonexistent/data\n"                                               \
	"  authentication:\n    superuser: {username: postgres, password: secret}\n"               \
	"    replication: {username: replicator, password: rep}\n"

static void test_opts_from_config(void **state)
{
	struct pgkeel_config *c;
	struct pgkeel_rest_opts o;
	const char *headers[8];

	(void)state;
	c = load_yaml(CONFIG_HEAD
	              "restapi:\n  listen: '*:8008'\n  connect_address: 127.0.0.1:8008\n"
	              "  authentication: {username: patroni, password: s3cret}\n"
	              "  request_queue_size: 64\n"
	              "  http_extra_headers: {X-Frame-Options: SAMEORIGIN, X-A: b}\n");
	pgkeel_rest_opts_from_config(c, &o, headers, 4);
	assert_string_equal(o.listen, "*:8008");
	assert_string_equal(o.auth_username, "patroni");
	assert_string_equal(o.auth_password, "s3cret");
	assert_int_equal(o.backlog, 64);
	assert_int_equal(o.n_extra_headers, 2);
	assert_string_equal(o.extra_headers[0], "X-Frame-Options");
	assert_string_equal(o.extra_headers[1], "SAMEORIGIN");
	assert_string_equal(o.extra_headers[2], "X-A");
	assert_string_equal(o.extra_headers[3], "b");
	pgkeel_config_unref(c);

	/* the legacy "user:password" form, no headers */
	c = load_yaml(CONFIG_HEAD "restapi:\n  listen: 127.0.0.1:8008\n"
	                          "  connect_address: 127.0.0.1:8008\n  auth: 'u:p:q'\n");
	pgkeel_rest_opts_from_config(c, &o, headers, 4);
	assert_string_equal(o.listen, "127.0.0.1:8008");
	assert_string_equal(o.auth_username, "u");
	assert_string_equal(o.auth_password, "p:q");
	assert_int_equal(o.n_extra_headers, 0);
	assert_int_equal(o.backlog, 0);
	pgkeel_config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health_table),       cmocka_unit_test(test_health_empty),
	    cmocka_unit_test(test_liveness_readiness), cmocka_unit_test(test_doc_captured),
	    cmocka_unit_test(test_doc_variants),       cmocka_unit_test(test_failsafe_json),
	    cmocka_unit_test(test_failover_parse),     cmocka_unit_test(test_schedule_epoch),
	    cmocka_unit_test(test_failover_precheck),  cmocka_unit_test(test_failover_poll),
	    cmocka_unit_test(test_error_page),         cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_split_listen),       cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_opts_from_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
