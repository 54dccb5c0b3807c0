/*
 * The documents of the informational and configuration endpoints, as
 * Patroni 3.0.2's api.py and utils.py compute them: GET /cluster
 * (cluster_as_json), GET /history, GET /config, GET /metrics, and PATCH /
 * PUT /config (patch_config, deep_compare), DELETE /switchover.  Pure apart
 * from pgkeel_rest_answer_dcs(), which the HA loop calls on a fresh cluster
 * view and which writes through the callbacks it is given.
 */
#include "autoconf.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "json.h"
#include "pg_bootstrap.h"
#include "pg_conf_internal.h"
#include "pg_query.h"
#include "rest_internal.h"
#include "util.h"

/* ------------------------------------------------------ Python's str() */

static void put_py(struct pgkeel_sbuf *b, const struct json_object *v, bool repr)
{
	struct json_object *o = (struct json_object *)(uintptr_t)v;
	size_t i = 0;

	switch (v == NULL ? json_type_null : json_object_get_type(o)) {
	case json_type_null:
		pgkeel_sbuf_puts(b, "None");
		break;
	case json_type_boolean:
		pgkeel_sbuf_puts(b, json_object_get_boolean(o) ? "True" : "False");
		break;
	case json_type_int:
		pgkeel_sbuf_printf(b, "%lld", (long long)json_object_get_int64(o));
		break;
	case json_type_double: {
		double d = json_object_get_double(o);

		if (isnan(d)) {
			pgkeel_sbuf_puts(b, "nan");
		} else if (isinf(d)) {
			pgkeel_sbuf_puts(b, d < 0 ? "-inf" : "inf");
		} else {
			char *t = pgkeel_json_compact(o);

			pgkeel_sbuf_puts(b, t);
			free(t);
		}
		break;
	}
	case json_type_string:
		if (repr)
			pgkeel_sbuf_put_py_repr(b, json_object_get_string(o));
		else
			pgkeel_sbuf_puts(b, json_object_get_string(o));
		break;
	case json_type_array:
		pgkeel_sbuf_putc(b, '[');
		for (i = 0; i < json_object_array_length(o); i++) {
			if (i > 0)
				pgkeel_sbuf_puts(b, ", ");
			put_py(b, json_object_array_get_idx(o, i), true);
		}
		pgkeel_sbuf_putc(b, ']');
		break;
	case json_type_object:
		pgkeel_sbuf_putc(b, '{');
		json_object_object_foreach(o, k, val)
		{
			if (i++ > 0)
				pgkeel_sbuf_puts(b, ", ");
			pgkeel_sbuf_put_py_repr(b, k);
			pgkeel_sbuf_puts(b, ": ");
			put_py(b, val, true);
		}
		pgkeel_sbuf_putc(b, '}');
		break;
	}
}

char *pgkeel_rest_py_str(const struct json_object *v)
{
	struct pgkeel_sbuf b = {0};

	put_py(&b, v, false);
	return pgkeel_sbuf_finish(&b);
}

static bool py_str_equal(const struct json_object *a, const struct json_object *b)
{
	char *x = pgkeel_rest_py_str(a), *y = pgkeel_rest_py_str(b);
	bool eq = strcmp(x, y) == 0;

	free(x);
	free(y);
	return eq;
}

static struct json_object *deep_copy(const struct json_object *v)
{
	struct json_object *c = NULL;

	if (v == NULL || json_object_deep_copy((struct json_object *)(uintptr_t)v, &c, NULL) != 0)
		return NULL;
	return c;
}

static bool is_object(const struct json_object *v)
{
	return v != NULL &&
	       json_object_is_type((struct json_object *)(uintptr_t)v, json_type_object);
}

/* ------------------------------------------------- patch and compare */

bool pgkeel_rest_patch_config(struct json_object *config, const struct json_object *patch)
{
	bool changed = false;

	json_object_object_foreach((struct json_object *)(uintptr_t)patch, name, value)
	{
		struct json_object *cur = NULL;
		bool has = json_object_object_get_ex(config, name, &cur);

		if (value == NULL) {
			/* config.pop(name, None) is not None */
			if (has) {
				changed = changed || cur != NULL;
				json_object_object_del(config, name);
			}
		} else if (has && is_object(value) && is_object(cur)) {
			changed = pgkeel_rest_patch_config(cur, value) || changed;
		} else if (!has || is_object(value) || !py_str_equal(cur, value)) {
			json_object_object_add(config, name, deep_copy(value));
			changed = true;
		}
	}
	return changed;
}

bool pgkeel_rest_deep_compare(const struct json_object *a, const struct json_object *b)
{
	struct json_object *x = (struct json_object *)(uintptr_t)a;
	struct json_object *y = (struct json_object *)(uintptr_t)b;

	if (json_object_object_length(x) != json_object_object_length(y))
		return false;
	json_object_object_foreach(x, k, va)
	{
		struct json_object *vb = NULL;

		if (!json_object_object_get_ex(y, k, &vb))
			return false;
		if (is_object(va)) {
			if (!is_object(vb) || !pgkeel_rest_deep_compare(va, vb))
				return false;
		} else if (!py_str_equal(va, vb)) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ /cluster */

static void key(struct pgkeel_sbuf *b, bool *first, const char *k)
{
	if (!*first)
		pgkeel_sbuf_puts(b, ", ");
	*first = false;
	pgkeel_json_put_cstring(b, k);
	pgkeel_sbuf_puts(b, ": ");
}

static struct json_object *member_value(const struct pgkeel_member *m, const char *k, bool *has)
{
	struct json_object *v = NULL;

	*has = m->data != NULL && json_object_object_get_ex(m->data, k, &v);
	return v;
}

/* Patroni's check_mode: parse_bool(str(config.data.get(mode))). */
static bool config_mode(const struct pgkeel_cluster *c, const char *mode)
{
	struct json_object *v = NULL;
	char *s;
	bool on;

	if (c->config == NULL || c->config->data == NULL ||
	    !json_object_object_get_ex(c->config->data, mode, &v))
		return false;
	s = pgkeel_rest_py_str(v);
	on = pgkeel_pgc_py_parse_bool(s) == 1;
	free(s);
	return on;
}

/* utils.is_standby_cluster(config.get('standby_cluster')) */
static bool standby_config(const struct pgkeel_cluster *c)
{
	static const char *const keys[] = {"host", "port", "restore_command"};
	struct json_object *sc = NULL;

	if (c->config == NULL || !c->config->valid ||
	    !json_object_object_get_ex(c->config->data, "standby_cluster", &sc) || !is_object(sc))
		return false;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(keys); i++) {
		struct json_object *v = NULL;

		if (json_object_object_get_ex(sc, keys[i], &v) && pgkeel_json_truthy(v))
			return true;
	}
	return false;
}

static const char *member_role(const struct pgkeel_cluster *c, const struct pgkeel_member *m,
                               const char *leader)
{
	if (leader != NULL && strcmp(m->name, leader) == 0)
		return standby_config(c) ? "standby_leader" : "leader";
	for (size_t i = 0; i < c->sync.n_standbys; i++)
		if (strcmp(c->sync.standbys[i], m->name) == 0) /* 3.0.2: case-sensitive */
			return "sync_standby";
	return "replica";
}

/* conn_kwargs(): host and port from conn_kwargs, else from the conn_url. */
static void put_host_port(struct pgkeel_sbuf *b, bool *first, const struct pgkeel_member *m)
{
	bool has;
	struct json_object *kw = member_value(m, "conn_kwargs", &has), *h = NULL, *p = NULL;
	struct pgkeel_pg_source src;

	if (is_object(kw) && json_object_object_length(kw) > 0) {
		if (!json_object_object_get_ex(kw, "host", &h) || !pgkeel_json_truthy(h))
			return;
		key(b, first, "host");
		pgkeel_json_put(b, h, true);
		if (json_object_object_get_ex(kw, "port", &p) && pgkeel_json_truthy(p)) {
			int64_t port;
			char *text = pgkeel_rest_py_str(p);

			if (pgkeel_parse_int64(text, &port)) {
				key(b, first, "port");
				pgkeel_sbuf_printf(b, "%lld", (long long)port);
			}
			free(text);
		}
		return;
	}
	if (m->d.conn_url == NULL || !pgkeel_pg_source_from_url(m->d.conn_url, &src) ||
	    src.host[0] == '\0')
		return;
	for (char *s = src.host; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	key(b, first, "host");
	pgkeel_json_put_cstring(b, src.host);
	key(b, first, "port");
	pgkeel_sbuf_puts(b, src.port[0] != '\0' ? src.port : "5432");
}

static void put_member(struct pgkeel_sbuf *b, const struct pgkeel_cluster *c,
                       const struct pgkeel_member *m, const char *leader, int64_t cluster_lsn)
{
	static const char *const optional[] = {"timeline", "pending_restart", "scheduled_restart",
	                                       "tags"};
	bool first = true, has;
	struct json_object *v;

	pgkeel_sbuf_putc(b, '{');
	key(b, &first, "name");
	pgkeel_json_put_cstring(b, m->name);
	key(b, &first, "role");
	pgkeel_json_put_cstring(b, member_role(c, m, leader));
	key(b, &first, "state");
	v = member_value(m, "state", &has);
	if (has)
		pgkeel_json_put(b, v, true);
	else
		pgkeel_sbuf_puts(b, "\"\"");
	key(b, &first, "api_url");
	if (m->legacy_url)
		pgkeel_json_put_cstring(b, m->d.api_url);
	else
		pgkeel_json_put(b, member_value(m, "api_url", &has), true);
	put_host_port(b, &first, m);
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(optional); i++) {
		v = member_value(m, optional[i], &has);
		if (has) {
			key(b, &first, optional[i]);
			pgkeel_json_put(b, v, true);
		}
	}
	if (leader == NULL || strcmp(m->name, leader) != 0) {
		v = member_value(m, "xlog_location", &has);
		key(b, &first, "lag");
		if (v == NULL || !json_object_is_type(v, json_type_int))
			pgkeel_sbuf_puts(b, "\"unknown\"");
		else if (cluster_lsn >= json_object_get_int64(v))
			pgkeel_sbuf_printf(b, "%lld",
			                   (long long)(cluster_lsn - json_object_get_int64(v)));
		else
			pgkeel_sbuf_puts(b, "0");
	}
	pgkeel_sbuf_putc(b, '}');
}

static int by_name(const void *a, const void *b)
{
	const struct pgkeel_member *x = *(const struct pgkeel_member *const *)a;
	const struct pgkeel_member *y = *(const struct pgkeel_member *const *)b;

	return strcmp(x->name, y->name);
}

char *pgkeel_rest_cluster_json(const struct pgkeel_cluster *c)
{
	const char *leader = c->leader != NULL ? c->leader->name : NULL;
	int64_t lsn = c->status.last_lsn > 0 ? c->status.last_lsn : 0;
	const struct pgkeel_member **order = pgkeel_xcalloc(c->n_members + 1, sizeof(*order));
	struct pgkeel_sbuf b = {0};

	for (size_t i = 0; i < c->n_members; i++)
		order[i] = &c->members[i];
	qsort(order, c->n_members, sizeof(*order), by_name);
	pgkeel_sbuf_puts(&b, "{\"members\": [");
	for (size_t i = 0; i < c->n_members; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(&b, ", ");
		put_member(&b, c, order[i], leader, lsn);
	}
	pgkeel_sbuf_putc(&b, ']');
	free(order);
	if (config_mode(c, "pause"))
		pgkeel_sbuf_puts(&b, ", \"pause\": true");
	if (c->failover != NULL && c->failover->scheduled_at != NULL) {
		char *at = pgkeel_rest_isoformat(c->failover->scheduled_at);

		pgkeel_sbuf_puts(&b, ", \"scheduled_switchover\": {\"at\": ");
		pgkeel_json_put_cstring(&b, at != NULL ? at : c->failover->scheduled_at);
		free(at);
		if (c->failover->leader != NULL) {
			pgkeel_sbuf_puts(&b, ", \"from\": ");
			pgkeel_json_put_cstring(&b, c->failover->leader);
		}
		if (c->failover->candidate != NULL) {
			pgkeel_sbuf_puts(&b, ", \"to\": ");
			pgkeel_json_put_cstring(&b, c->failover->candidate);
		}
		pgkeel_sbuf_putc(&b, '}');
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_rest_history_json(const struct pgkeel_cluster *c)
{
	struct json_object *lines = NULL;
	char err[128], *out;

	if (c->history == NULL || c->history->raw == NULL ||
	    !pgkeel_json_parse(c->history->raw, strlen(c->history->raw), &lines, err,
	                       sizeof(err)) ||
	    lines == NULL || !json_object_is_type(lines, json_type_array)) {
		json_object_put(lines);
		return pgkeel_strdup("[]");
	}
	out = pgkeel_json_spaced(lines);
	json_object_put(lines);
	return out;
}

char *pgkeel_rest_config_json(const struct pgkeel_cluster *c)
{
	if (c->config == NULL)
		return NULL;
	if (!c->config->valid || c->config->data == NULL)
		return pgkeel_strdup("{}");
	return pgkeel_json_spaced(c->config->data);
}

/* ------------------------------------------------------------ /metrics */

struct metrics {
	struct pgkeel_sbuf b;
	char label[256];
};

static void metric(struct metrics *m, const char *name, const char *type, const char *help,
                   const char *value)
{
	const char *parts[] = {"# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name,
	                       /* 3.0.2 writes a space before the labels of this one */
	                       strcmp(name, "patroni_postgres_server_version") == 0 ? " " : "",
	                       m->label, " ", value, "\n"};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(parts); i++)
		pgkeel_sbuf_puts(&m->b, parts[i]);
}

static void metric_int(struct metrics *m, const char *name, const char *type, const char *help,
                       int64_t v)
{
	char text[32];

	(void)pgkeel_fmt(text, sizeof(text), "%lld", (long long)v);
	metric(m, name, type, help, text);
}

/* (t - epoch).total_seconds() as Python prints the float; "0" when unknown. */
static void metric_time(struct metrics *m, const char *name, const char *help, const char *t)
{
	int64_t us;

	if (t != NULL && t[0] != '\0' && pgkeel_rest_time_us(t, &us)) {
		struct json_object *d = pgkeel_json_new_double((double)us / 1e6);
		char *text = pgkeel_json_compact(d);

		metric(m, name, "gauge", help, text);
		free(text);
		json_object_put(d);
	} else {
		metric(m, name, "gauge", help, "0");
	}
}

/* "3.0.2" -> "030002" (each component zero-padded to two digits). */
static void padded_semver(const char *v, char *out, size_t len)
{
	struct pgkeel_sbuf b = {0};
	char *s;

	for (const char *p = v;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);

		if (n < 2)
			pgkeel_sbuf_puts(&b, n == 1 ? "0" : "00");
		pgkeel_sbuf_put(&b, p, n);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	s = pgkeel_sbuf_finish(&b);
	(void)pgkeel_fmt(out, len, "%s", s);
	free(s);
}

char *pgkeel_rest_metrics(const struct pgkeel_state_view *v, const struct pgkeel_rest_pgview *pv)
{
	const struct pgkeel_state_loop *l = v->loop;
	const struct pgkeel_pg_status *st = pv->full ? v->pg->status : NULL;
	bool primary = strcmp(pv->role, "master") == 0 || strcmp(pv->role, "primary") == 0;
	bool replica = st != NULL && st->in_recovery;
	struct metrics m = {.b = {0}};
	char version[32], timeline[32];

	pgkeel_sbuf_puts(&m.b, "{scope=\"");
	pgkeel_sbuf_puts(&m.b, l != NULL && l->scope != NULL ? l->scope : "None");
	pgkeel_sbuf_puts(&m.b, "\"}");
	{
		char *label = pgkeel_sbuf_finish(&m.b);

		(void)pgkeel_fmt(m.label, sizeof(m.label), "%s", label);
		free(label);
		memset(&m.b, 0, sizeof(m.b));
	}
	padded_semver(PGKEEL_PATRONI_COMPAT_VERSION, version, sizeof(version));
	metric(&m, "patroni_version", "gauge", "Patroni semver without periods.", version);
	metric_int(&m, "patroni_postgres_running", "gauge",
	           "Value is 1 if Postgres is running, 0 otherwise.",
	           strcmp(pv->state, "running") == 0);
	metric_time(&m, "patroni_postmaster_start_time", "Epoch seconds since Postgres started.",
	            st != NULL ? st->postmaster_start_time : NULL);
	metric_int(&m, "patroni_master", "gauge",
	           "Value is 1 if this node is the leader, 0 otherwise.", primary);
	metric_int(&m, "patroni_primary", "gauge",
	           "Value is 1 if this node is the leader, 0 otherwise.", primary);
	metric_int(&m, "patroni_xlog_location", "counter",
	           "Current location of the Postgres transaction log, 0 if this node is not the "
	           "leader.",
	           st != NULL && !replica ? st->wal_lsn : 0);
	metric_int(&m, "patroni_standby_leader", "gauge",
	           "Value is 1 if this node is the standby_leader, 0 otherwise.",
	           strcmp(pv->role, "standby_leader") == 0);
	metric_int(&m, "patroni_replica", "gauge",
	           "Value is 1 if this node is a replica, 0 otherwise.",
	           strcmp(pv->role, "replica") == 0);
	metric_int(&m, "patroni_sync_standby", "gauge",
	           "Value is 1 if this node is a sync standby replica, 0 otherwise.",
	           pv->sync_standby);
	metric_int(&m, "patroni_xlog_received_location", "counter",
	           "Current location of the received Postgres transaction log, 0 if this node is "
	           "not a replica.",
	           replica ? (st->receive_lsn != 0 ? st->receive_lsn : st->replay_lsn) : 0);
	metric_int(&m, "patroni_xlog_replayed_location", "counter",
	           "Current location of the replayed Postgres transaction log, 0 if this node is "
	           "not a replica.",
	           replica ? st->replay_lsn : 0);
	metric_time(&m, "patroni_xlog_replayed_timestamp",
	            "Current timestamp of the replayed Postgres transaction log, 0 if null.",
	            replica ? st->replay_timestamp : NULL);
	metric_int(&m, "patroni_xlog_paused", "gauge",
	           "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
	           replica && st->replay_paused);
	metric_int(&m, "patroni_postgres_server_version", "gauge",
	           "Version of Postgres (if running), 0 otherwise.",
	           st != NULL ? st->server_version : 0);
	metric_int(&m, "patroni_cluster_unlocked", "gauge",
	           "Value is 1 if the cluster is unlocked, 0 if locked.",
	           !pv->cluster || pgkeel_cluster_is_unlocked(l->cluster));
	metric_int(&m, "patroni_failsafe_mode_is_active", "gauge",
	           "Value is 1 if the cluster is unlocked, 0 if locked.",
	           l != NULL && l->failsafe_active);
	/* 0 when PostgreSQL was not queried; a queried replica whose timeline is
	 * not known yet prints Python's None, as 3.0.2 does (postgres.get('timeline', 0)
	 * finds the key holding None) */
	(void)pgkeel_fmt(timeline, sizeof(timeline), "%lld",
	                 st != NULL ? (long long)v->pg->timeline : 0LL);
	metric(&m, "patroni_postgres_timeline", "counter",
	       "Postgres timeline of this node (if running), 0 otherwise.",
	       st != NULL && v->pg->timeline <= 0 ? "None" : timeline);
	metric_int(&m, "patroni_dcs_last_seen", "gauge",
	           "Epoch timestamp when DCS was last contacted successfully by Patroni.",
	           l != NULL ? l->dcs_last_seen : 0);
	metric_int(&m, "patroni_pending_restart", "gauge",
	           "Value is 1 if the node needs a restart, 0 otherwise.",
	           l != NULL && l->pending_restart);
	metric_int(&m, "patroni_is_paused", "gauge",
	           "Value is 1 if auto failover is disabled, 0 otherwise.", l != NULL && l->paused);
	return pgkeel_sbuf_finish(&m.b);
}

/* ------------------------------------------------- the loop's answers */

void pgkeel_rest_answer_dcs(struct pgkeel_rest_req *req, const struct pgkeel_cluster *c,
                            const struct pgkeel_rest_dcs_ops *ops, bool *changed)
{
	struct json_object *data;
	char *text;

	*changed = false;
	if (c == NULL) { /* Patroni's handler dies with the DCS error: no answer at all */
		pgkeel_rest_reply_error(req, 503);
		return;
	}
	switch (req->kind) {
	case PGKEEL_REST_CLUSTER:
		text = pgkeel_rest_cluster_json(c);
		pgkeel_rest_reply(req, 200, "application/json", text);
		free(text);
		return;
	case PGKEEL_REST_HISTORY:
		text = pgkeel_rest_history_json(c);
		pgkeel_rest_reply(req, 200, "application/json", text);
		free(text);
		return;
	case PGKEEL_REST_CONFIG:
		text = pgkeel_rest_config_json(c);
		if (text == NULL)
			pgkeel_rest_reply_error(req, 502);
		else
			pgkeel_rest_reply(req, 200, "application/json", text);
		free(text);
		return;
	case PGKEEL_REST_PATCH_CONFIG:
		if (c->config == NULL || !c->config->valid || c->config->version == NULL) {
			pgkeel_rest_reply_error(req, 503);
			return;
		}
		data = deep_copy(c->config->data);
		if (pgkeel_rest_patch_config(data, req->body)) {
			text = pgkeel_json_compact(data);
			if (!ops->set_config(ops->arg, text, c->config->version)) {
				free(text);
				json_object_put(data);
				pgkeel_rest_reply_error(req, 409);
				return;
			}
			free(text);
		}
		*changed = true; /* Patroni wakes the HA loop up either way */
		text = pgkeel_json_spaced(data);
		pgkeel_rest_reply(req, 200, "application/json", text);
		free(text);
		json_object_put(data);
		return;
	case PGKEEL_REST_PUT_CONFIG:
		/* 3.0.2 dies without an answer when there is no config key; 3.3 writes it */
		if (c->config == NULL || !c->config->valid ||
		    !pgkeel_rest_deep_compare(req->body, c->config->data)) {
			text = pgkeel_json_compact(req->body);
			*changed = ops->set_config(ops->arg, text, NULL);
			free(text);
			if (!*changed) {
				pgkeel_rest_reply_error(req, 502);
				return;
			}
		}
		text = pgkeel_json_spaced(req->body);
		pgkeel_rest_reply(req, 200, "application/json", text);
		free(text);
		return;
	case PGKEEL_REST_DELETE_SWITCHOVER:
		if (c->failover == NULL || c->failover->scheduled_at == NULL)
			pgkeel_rest_reply(req, 404, NULL, "no switchover is scheduled");
		else if (!ops->set_failover(ops->arg, "{}", c->failover->version))
			pgkeel_rest_reply_error(req, 409);
		else
			pgkeel_rest_reply(req, 200, NULL, "scheduled switchover deleted");
		return;
	default:
		pgkeel_rest_reply_error(req, 501);
		return;
	}
}
