/*
 * Health checks and the status document (spec/patroni-interfaces.md
 * §1.3-1.5), computed from the published state as Patroni 3.0.2's
 * RestApiHandler does (api.py: get_postgresql_status, do_GET,
 * _write_status_response, do_GET_liveness, do_GET_readiness).
 */
#include "autoconf.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "json.h"
#include "pg_conf_internal.h"
#include "pg_query.h"
#include "rest_internal.h"
#include "util.h"

static bool str_in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

void pgkeel_rest_pgview_get(const struct pgkeel_state_view *v, int64_t now_ms,
                            struct pgkeel_rest_pgview *out)
{
	static const char *const queried[] = {"running", "restarting", "starting"};
	const struct pgkeel_state_loop *l = v->loop;
	const struct pgkeel_state_pg *pg = v->pg;
	const char *pg_state = l != NULL && l->pg_state != NULL ? l->pg_state : "stopped";
	const char *cached_role =
	    pgkeel_state_role_name(l ? l->role : PGKEEL_STATE_ROLE_UNINITIALIZED);

	memset(out, 0, sizeof(*out));
	out->cluster = l != NULL && l->cluster != NULL && now_ms < l->cluster_valid_ms;
	out->is_leader = l != NULL && now_ms < l->lock_deadline_ms;
	if (out->cluster && l->cluster->status.last_lsn > 0)
		out->last_lsn = l->cluster->status.last_lsn;

	if (str_in(pg_state, queried, PGKEEL_ARRAY_LEN(queried)) && pg != NULL &&
	    pg->status != NULL && now_ms < pg->valid_until_ms) {
		const struct pgkeel_pg_status *st = pg->status;

		out->full = true;
		out->state = pg_state;
		out->role = st->in_recovery ? "replica" : "master";
		if (st->in_recovery) {
			out->replayed = st->replay_lsn;
			if (l != NULL && l->standby_cluster)
				out->role = cached_role;
		}
		if (strcmp(out->role, "replica") == 0 && out->cluster && l->synchronous_mode &&
		    pgkeel_sync_matches(&l->cluster->sync, l->name, false))
			out->sync_standby = true;
	} else {
		/* not queried, or the query failed (a stale sample counts as failed) */
		out->state = strcmp(pg_state, "running") == 0 ? "unknown" : pg_state;
		out->role = cached_role;
	}
}

/* ------------------------------------------------------------ health codes */

static int code_of(bool ok)
{
	return ok ? 200 : 503;
}

/* Python's str(value).lower() for a tag that is not a string. */
static char *tag_text(const struct json_object *v)
{
	char *s;

	if (json_object_is_type(v, json_type_string))
		return pgkeel_strdup(json_object_get_string((struct json_object *)(uintptr_t)v));
	s = pgkeel_json_compact(v);
	for (char *p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* True when every ?tag_<key>=<value> matches a configured tag. */
static bool tags_match(const struct pgkeel_state_loop *l, const struct pgkeel_rest_qparam *q,
                       size_t nq)
{
	for (size_t i = 0; i < nq; i++) {
		struct json_object *v = NULL;
		bool eq;
		char *t;

		if (strncmp(q[i].key, "tag_", 4) != 0)
			continue;
		if (l == NULL || l->tags == NULL ||
		    !json_object_object_get_ex(l->tags, q[i].key + 4, &v) || v == NULL)
			return false; /* tag not registered for the instance */
		t = tag_text(v);
		eq = strcmp(t, q[i].value) == 0;
		free(t);
		if (!eq)
			return false;
	}
	return true;
}

/* ?lag=: Patroni's parse_int(value, 'B'); anything unparsable means no limit. */
static double max_lag(const struct pgkeel_rest_qparam *q, size_t nq)
{
	double lag;

	for (size_t i = 0; i < nq; i++)
		if (strcmp(q[i].key, "lag") == 0)
			return pgkeel_pgc_py_parse_int(q[i].value, "B", &lag) ? rint(lag)
			                                                      : INFINITY;
	return INFINITY;
}

int pgkeel_rest_health_code(const struct pgkeel_state_view *v, const struct pgkeel_rest_pgview *pv,
                            const char *path, const struct pgkeel_rest_qparam *q, size_t nq)
{
	static const char *const primary_roles[] = {"master", "primary"};
	static const char *const leader_roles[] = {"master", "primary", "standby_leader"};
	static const char *const sbleader_roles[] = {"replica", "standby_leader"};
	const struct pgkeel_state_loop *l = v->loop;
	bool noloadbalance = false, lagging, replica_ok;
	bool leader_ok = false, primary_ok = false, sbleader_ok = false;
	bool paused = l != NULL && l->paused;
	bool ignore_tags = false;
	int code = 503;

	if (strcmp(path, "/") == 0)
		path = "/primary";
	if (l != NULL && l->tags != NULL) {
		struct json_object *nlb = NULL;

		if (json_object_object_get_ex(l->tags, "noloadbalance", &nlb))
			noloadbalance = pgkeel_json_truthy(nlb);
	}
	/* last_lsn > replayed + max_lag, without overflowing int64 */
	lagging = pv->last_lsn != 0 && (double)(pv->last_lsn - pv->replayed) > max_lag(q, nq);
	replica_ok = !noloadbalance && !lagging && strcmp(pv->role, "replica") == 0 &&
	             strcmp(pv->state, "running") == 0;

	if (!pv->cluster && paused) {
		leader_ok = str_in(pv->role, leader_roles, PGKEEL_ARRAY_LEN(leader_roles));
		primary_ok = str_in(pv->role, primary_roles, PGKEEL_ARRAY_LEN(primary_roles));
		sbleader_ok = strcmp(pv->role, "standby_leader") == 0;
	} else if (pv->is_leader) {
		leader_ok = true;
		if (l->standby_cluster) {
			primary_ok = replica_ok = false;
			sbleader_ok =
			    str_in(pv->role, sbleader_roles, PGKEEL_ARRAY_LEN(sbleader_roles));
		} else {
			primary_ok = true;
		}
	}

	if (strstr(path, "standby_leader") != NULL || strstr(path, "standby-leader") != NULL) {
		code = code_of(sbleader_ok);
		ignore_tags = true;
	} else if (strstr(path, "leader") != NULL) {
		code = code_of(leader_ok);
		ignore_tags = true;
	} else if (strstr(path, "master") != NULL || strstr(path, "primary") != NULL ||
	           strstr(path, "read-write") != NULL) {
		code = code_of(primary_ok);
		ignore_tags = true;
	} else if (strstr(path, "replica") != NULL) {
		code = code_of(replica_ok);
	} else if (strstr(path, "read-only") != NULL && strstr(path, "sync") == NULL) {
		code = code_of(primary_ok || sbleader_ok || replica_ok);
	} else if (strstr(path, "health") != NULL) {
		code = code_of(strcmp(pv->state, "running") == 0);
	} else if (pv->cluster) {
		bool sync = pv->sync_standby;

		if ((strcmp(path, "/sync") == 0 || strcmp(path, "/synchronous") == 0) && sync)
			code = code_of(replica_ok);
		else if ((strcmp(path, "/async") == 0 || strcmp(path, "/asynchronous") == 0) &&
		         !sync)
			code = code_of(replica_ok);
		else if (strcmp(path, "/read-only-sync") == 0 ||
		         strcmp(path, "/read-only-synchronous") == 0)
			code = primary_ok || sbleader_ok ? 200 : sync ? code_of(replica_ok) : 503;
	}

	if (!ignore_tags && code == 200 && !tags_match(l, q, nq))
		code = 503;
	return code;
}

int pgkeel_rest_liveness_code(const struct pgkeel_state_view *v, int64_t now_ms)
{
	const struct pgkeel_state_loop *l = v->loop;
	int64_t threshold_ms;

	if (l == NULL)
		return 503;
	if (l->paused)
		return 200;
	/* a primary tolerates a stuck loop only until the lock would expire */
	threshold_ms =
	    (int64_t)l->ttl * 1000 * (l->role == PGKEEL_STATE_ROLE_MASTER && l->pg_running ? 1 : 2);
	return code_of(l->next_cycle_ms + threshold_ms > now_ms);
}

int pgkeel_rest_readiness_code(const struct pgkeel_state_view *v,
                               const struct pgkeel_rest_pgview *pv)
{
	const struct pgkeel_state_loop *l = v->loop;

	if (pv->is_leader)
		return 200;
	if (l != NULL && l->pg_state != NULL && strcmp(l->pg_state, "running") == 0)
		return code_of(pv->cluster);
	return 503;
}

/* -------------------------------------------------------- status document */

static void key(struct pgkeel_sbuf *b, const char *k)
{
	if (b->len > 1)
		pgkeel_sbuf_puts(b, ", ");
	pgkeel_json_put_cstring(b, k);
	pgkeel_sbuf_puts(b, ": ");
}

static void put_int(struct pgkeel_sbuf *b, const char *k, int64_t n)
{
	key(b, k);
	pgkeel_sbuf_printf(b, "%lld", (long long)n);
}

static void put_str(struct pgkeel_sbuf *b, const char *k, const char *s)
{
	key(b, k);
	pgkeel_json_put_cstring(b, s);
}

static void put_true(struct pgkeel_sbuf *b, const char *k)
{
	key(b, k);
	pgkeel_sbuf_puts(b, "true");
}

static bool nonempty_object(const struct json_object *o)
{
	return o != NULL && json_object_is_type(o, json_type_object) &&
	       json_object_object_length(o) > 0;
}

static void put_xlog(struct pgkeel_sbuf *b, const struct pgkeel_pg_status *st)
{
	key(b, "xlog");
	if (!st->in_recovery) {
		pgkeel_sbuf_puts(b, "{\"location\": ");
		pgkeel_sbuf_printf(b, "%lld}", (long long)st->wal_lsn);
		return;
	}
	pgkeel_sbuf_puts(b, "{\"received_location\": ");
	pgkeel_sbuf_printf(b, "%lld",
	                   (long long)(st->receive_lsn != 0 ? st->receive_lsn : st->replay_lsn));
	pgkeel_sbuf_puts(b, ", \"replayed_location\": ");
	pgkeel_sbuf_printf(b, "%lld", (long long)st->replay_lsn);
	pgkeel_sbuf_puts(b, ", \"replayed_timestamp\": ");
	pgkeel_json_put_cstring(b, st->replay_timestamp[0] != '\0' ? st->replay_timestamp : NULL);
	pgkeel_sbuf_puts(b, st->replay_paused ? ", \"paused\": true}" : ", \"paused\": false}");
}

static void put_replication(struct pgkeel_sbuf *b, const struct pgkeel_pg_status *st)
{
	key(b, "replication");
	pgkeel_sbuf_putc(b, '[');
	for (size_t i = 0; i < st->n_walsenders; i++) {
		const struct pgkeel_pg_walsender *w = &st->walsenders[i];

		pgkeel_sbuf_puts(b, i ? ", {\"usename\": " : "{\"usename\": ");
		pgkeel_json_put_cstring(b, w->usename);
		pgkeel_sbuf_puts(b, ", \"application_name\": ");
		pgkeel_json_put_cstring(b, w->application_name);
		pgkeel_sbuf_puts(b, ", \"client_addr\": ");
		pgkeel_json_put_cstring(b, w->client_addr);
		pgkeel_sbuf_puts(b, ", \"state\": ");
		pgkeel_json_put_cstring(b, w->state);
		pgkeel_sbuf_puts(b, ", \"sync_state\": ");
		pgkeel_json_put_cstring(b, w->sync_state);
		pgkeel_sbuf_puts(b, ", \"sync_priority\": ");
		pgkeel_sbuf_printf(b, "%d}", w->sync_priority);
	}
	pgkeel_sbuf_putc(b, ']');
}

char *pgkeel_rest_status_json(const struct pgkeel_state_view *v,
                              const struct pgkeel_rest_pgview *pv, const char *pgkeel_version)
{
	const struct pgkeel_state_loop *l = v->loop;
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '{');
	/* A: PostgreSQL */
	put_str(&b, "state", pv->state);
	if (pv->full) {
		const struct pgkeel_pg_status *st = v->pg->status;

		put_str(&b, "postmaster_start_time", st->postmaster_start_time);
		put_str(&b, "role", pv->role);
		put_int(&b, "server_version", st->server_version);
		put_xlog(&b, st);
		if (pv->sync_standby)
			put_true(&b, "sync_standby");
		if (v->pg->timeline > 0) {
			put_int(&b, "timeline", v->pg->timeline);
		} else { /* a replica whose timeline is not known yet */
			key(&b, "timeline");
			pgkeel_sbuf_puts(&b, "null");
		}
		if (st->n_walsenders > 0)
			put_replication(&b, st);
	} else {
		put_str(&b, "role", pv->role);
	}
	/* B: the cluster */
	if (!pv->cluster || pgkeel_cluster_is_unlocked(l->cluster))
		put_true(&b, "cluster_unlocked");
	if (l != NULL && l->failsafe_active)
		put_true(&b, "failsafe_mode_is_active");
	put_int(&b, "dcs_last_seen", l != NULL ? l->dcs_last_seen : 0);
	/* C: this node */
	if (l != NULL && nonempty_object(l->tags_effective)) {
		key(&b, "tags");
		pgkeel_json_put(&b, l->tags_effective, true);
	}
	if (l != NULL && l->sysid != NULL)
		put_str(&b, "database_system_identifier", l->sysid);
	if (l != NULL && l->pending_restart)
		put_true(&b, "pending_restart");
	key(&b, "patroni");
	pgkeel_sbuf_puts(&b, "{\"version\": ");
	pgkeel_json_put_cstring(&b, PGKEEL_PATRONI_COMPAT_VERSION);
	pgkeel_sbuf_puts(&b, ", \"scope\": ");
	pgkeel_json_put_cstring(&b, l != NULL ? l->scope : NULL);
	pgkeel_sbuf_puts(&b, ", \"name\": ");
	pgkeel_json_put_cstring(&b, l != NULL ? l->name : NULL);
	pgkeel_sbuf_putc(&b, '}');
	if (l != NULL && nonempty_object(l->scheduled_restart)) {
		key(&b, "scheduled_restart");
		pgkeel_json_put(&b, l->scheduled_restart, true);
	}
	if (l != NULL && l->watchdog_failed)
		put_true(&b, "watchdog_failed");
	if (l != NULL && l->paused)
		put_true(&b, "pause");
	if (pgkeel_version != NULL)
		put_str(&b, "pgkeel_version", pgkeel_version);
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_rest_failsafe_json(const struct pgkeel_state_view *v)
{
	const struct pgkeel_failsafe *fs;
	struct pgkeel_sbuf b = {0};

	if (v->loop == NULL || v->loop->cluster == NULL || v->loop->cluster->failsafe == NULL)
		return NULL;
	fs = v->loop->cluster->failsafe;
	pgkeel_sbuf_putc(&b, '{');
	for (size_t i = 0; i < fs->n_entries; i++) {
		key(&b, fs->entries[i].name);
		pgkeel_json_put_cstring(&b, fs->entries[i].api_url);
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}
