/*
 * POST /switchover and POST /failover as Patroni 3.0.2's do_POST_failover:
 * the checks on the request made in the REST thread (parse), and the pure
 * parts the HA loop runs on a fresh cluster view (is_failover_possible up to
 * the peer probe, one step of poll_failover_result), with Patroni's texts.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "json.h"
#include "pg_conf_internal.h"
#include "rest_internal.h"
#include "util.h"

const char *pgkeel_rest_kind_name(enum pgkeel_rest_kind kind)
{
	switch (kind) {
	case PGKEEL_REST_SWITCHOVER:
		break;
	case PGKEEL_REST_FAILOVER:
		return "failover";
	case PGKEEL_REST_CLUSTER:
		return "cluster";
	case PGKEEL_REST_HISTORY:
		return "history";
	case PGKEEL_REST_CONFIG:
	case PGKEEL_REST_PATCH_CONFIG:
	case PGKEEL_REST_PUT_CONFIG:
		return "config";
	case PGKEEL_REST_DELETE_SWITCHOVER:
		return "scheduled switchover";
	case PGKEEL_REST_RESTART:
		return "restart";
	case PGKEEL_REST_REINITIALIZE:
		return "reinitialize";
	}
	return "switchover";
}

/* action.title(): "Switchover", "Failover" */
static const char *kind_title(enum pgkeel_rest_kind kind)
{
	return kind == PGKEEL_REST_FAILOVER ? "Failover" : "Switchover";
}

void pgkeel_rest_failover_req_clear(struct pgkeel_rest_failover_req *r)
{
	free(r->leader);
	free(r->candidate);
	free(r->scheduled_at);
	memset(r, 0, sizeof(*r));
}

/* request.get(name) when truthy, as text; NULL when absent or falsy. */
static char *truthy_field(const struct json_object *body, const char *name)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex((struct json_object *)(uintptr_t)body, name, &v) ||
	    !pgkeel_json_truthy(v))
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return pgkeel_strdup(json_object_get_string(v));
	return pgkeel_json_compact(v);
}

/* ----------------------------------------------------------- timestamps */

/* datetime.isoformat() of a parsed time with a zone. */
static char *ts_isoformat(const struct pgkeel_time *t)
{
	int off = t->offset_min < 0 ? -t->offset_min : t->offset_min;
	char frac[16] = "";

	if (t->usec != 0)
		(void)pgkeel_fmt(frac, sizeof(frac), ".%06d", t->usec);
	return pgkeel_asprintf("%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", t->year, t->mon,
	                       t->day, t->hour, t->min, t->sec, frac, t->offset_min < 0 ? '-' : '+',
	                       off / 60, off % 60);
}

bool pgkeel_rest_time_us(const char *s, int64_t *epoch_us)
{
	struct pgkeel_time t;

	if (!pgkeel_time_parse(s, &t) || !t.has_tz)
		return false;
	*epoch_us = pgkeel_time_epoch_us(&t);
	return true;
}

char *pgkeel_rest_isoformat(const char *s)
{
	struct pgkeel_time t;

	if (!pgkeel_time_parse(s, &t) || !t.has_tz)
		return NULL;
	return ts_isoformat(&t);
}

int pgkeel_rest_parse_schedule(const struct json_object *value, const char *action,
                               int64_t now_epoch_ms, char **iso, int64_t *epoch_ms, char *msg,
                               size_t len)
{
	struct pgkeel_time t;
	int64_t us;

	*iso = NULL;
	if (!json_object_is_type(value, json_type_string) ||
	    !pgkeel_time_parse(json_object_get_string((struct json_object *)(uintptr_t)value),
	                       &t)) {
		(void)pgkeel_fmt(msg, len,
		                 "Unable to parse scheduled timestamp. It should be in an "
		                 "unambiguous format, e.g. ISO 8601");
		return 422;
	}
	if (!t.has_tz) {
		(void)pgkeel_fmt(msg, len, "Timezone information is mandatory for the scheduled %s",
		                 action);
		return 400;
	}
	us = pgkeel_time_epoch_us(&t);
	*epoch_ms = us / 1000;
	if (us < now_epoch_ms * 1000) {
		(void)pgkeel_fmt(msg, len, "Cannot schedule %s in the past", action);
		return 422;
	}
	*iso = ts_isoformat(&t);
	return 0;
}

/* -------------------------------------------------------- the request */

int pgkeel_rest_failover_parse(enum pgkeel_rest_kind kind, const struct json_object *body,
                               bool paused, int64_t now_epoch_ms,
                               struct pgkeel_rest_failover_req *out, char *msg, size_t len)
{
	const char *action = pgkeel_rest_kind_name(kind);
	struct json_object *sched = NULL;
	int status = 400;

	memset(out, 0, sizeof(*out));
	out->leader = truthy_field(body, "leader");
	out->candidate = truthy_field(body, "candidate");
	if (out->candidate == NULL)
		out->candidate = truthy_field(body, "member");
	if (kind == PGKEEL_REST_FAILOVER && out->candidate == NULL) {
		(void)pgkeel_fmt(msg, len,
		                 "Failover could be performed only to a specific candidate");
		goto fail;
	}
	if (kind == PGKEEL_REST_SWITCHOVER && out->leader == NULL) {
		(void)pgkeel_fmt(msg, len,
		                 "Switchover could be performed only from a specific leader");
		goto fail;
	}
	if (json_object_object_get_ex((struct json_object *)(uintptr_t)body, "scheduled_at",
	                              &sched) &&
	    pgkeel_json_truthy(sched)) {
		if (out->leader == NULL) {
			(void)pgkeel_fmt(msg, len,
			                 "Scheduled %s is possible only from a specific leader",
			                 action);
			goto fail;
		}
		if (paused) {
			(void)pgkeel_fmt(msg, len, "Can't schedule %s in the paused state", action);
			goto fail;
		}
		status = pgkeel_rest_parse_schedule(sched, action, now_epoch_ms, &out->scheduled_at,
		                                    &out->scheduled_at_ms, msg, len);
		if (status != 0)
			goto fail;
		status = 400;
	}
	if (paused && out->candidate == NULL) {
		(void)pgkeel_fmt(msg, len,
		                 "%s is possible only to a specific candidate in a paused state",
		                 kind_title(kind));
		goto fail;
	}
	return 0;
fail:
	pgkeel_rest_failover_req_clear(out);
	return status;
}

/* ------------------------------------------------------ the loop's part */

const char *pgkeel_rest_failover_precheck(const struct pgkeel_cluster *c, bool synchronous_mode,
                                          enum pgkeel_rest_kind kind, const char *leader,
                                          const char *candidate, char *buf, size_t len,
                                          const struct pgkeel_member ***probe, size_t *n_probe)
{
	const char *action = pgkeel_rest_kind_name(kind);
	const char *holder = pgkeel_cluster_leader_name(c);
	const struct pgkeel_member **list;
	size_t n = 0;

	*probe = NULL;
	*n_probe = 0;
	if (leader != NULL && (holder == NULL || strcmp(holder, leader) != 0))
		return "leader name does not match";
	if (candidate != NULL && kind == PGKEEL_REST_SWITCHOVER && synchronous_mode &&
	    !pgkeel_sync_matches(&c->sync, candidate, false))
		return "candidate name does not match with sync_standby";

	list = pgkeel_xcalloc(c->n_members + 1, sizeof(*list));
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		bool take;

		if (candidate != NULL)
			take = strcmp(m->name, candidate) == 0;
		else if (synchronous_mode)
			take = pgkeel_sync_matches(&c->sync, m->name, false);
		else
			take = (holder == NULL || strcmp(m->name, holder) != 0) &&
			       m->d.api_url != NULL && m->d.api_url[0] != '\0';
		if (take)
			list[n++] = m;
	}
	if (n == 0) {
		free(list);
		if (candidate != NULL)
			return "candidate does not exists";
		if (synchronous_mode)
			(void)pgkeel_fmt(buf, len, "%s is not possible: can not find sync_standby",
			                 action);
		else
			(void)pgkeel_fmt(
			    buf, len,
			    "%s is not possible: cluster does not have members except leader",
			    action);
		return buf;
	}
	*probe = list;
	*n_probe = n;
	return NULL;
}

const char *pgkeel_rest_failover_no_candidate(enum pgkeel_rest_kind kind, char *buf, size_t len)
{
	(void)pgkeel_fmt(buf, len, "%s is not possible: no good candidates have been found",
	                 pgkeel_rest_kind_name(kind));
	return buf;
}

bool pgkeel_rest_failover_poll(const struct pgkeel_cluster *c, enum pgkeel_rest_kind kind,
                               const char *old_leader, const char *candidate, int *status,
                               char *buf, size_t len)
{
	const char *holder = pgkeel_cluster_leader_name(c);
	/* action[:-4] + "ed": "switched", "failed" */
	const char *done = kind == PGKEEL_REST_FAILOVER ? "failed" : "switched";
	const char *done_title = kind == PGKEEL_REST_FAILOVER ? "Failed" : "Switched";

	if (holder != NULL && (old_leader == NULL || strcmp(holder, old_leader) != 0)) {
		*status = 200;
		if (candidate == NULL || strcmp(candidate, holder) == 0)
			(void)pgkeel_fmt(buf, len, "Successfully %s over to \"%s\"", done, holder);
		else
			(void)pgkeel_fmt(buf, len, "%s over to \"%s\" instead of \"%s\"",
			                 done_title, holder, candidate);
		return true;
	}
	if (c->failover == NULL || !pgkeel_failover_is_request(c->failover)) {
		*status = 503;
		(void)pgkeel_fmt(buf, len, "%s failed", kind_title(kind));
		return true;
	}
	return false;
}

const char *pgkeel_rest_failover_unknown(enum pgkeel_rest_kind kind, char *buf, size_t len)
{
	(void)pgkeel_fmt(buf, len, "%s status unknown", kind_title(kind));
	return buf;
}

int64_t pgkeel_rest_failover_wait_ms(int loop_wait)
{
	return 2 * (int64_t)(loop_wait > 10 ? loop_wait : 10) * 1000;
}

/* ------------------------------------------------------ POST /restart */

/* One component of postgres_version_to_int: Python's int() of the text. */
static bool py_int_text(const char *s, size_t n)
{
	size_t i = 0, digits_seen = 0;

	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < n && (isdigit((unsigned char)s[i]) || s[i] == '_'); i++) {
		if (s[i] == '_' &&
		    (digits_seen == 0 || i + 1 >= n || !isdigit((unsigned char)s[i + 1])))
			return false;
		digits_seen += s[i] != '_';
	}
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	return digits_seen > 0 && i == n;
}

/* postgres_version_to_int's checks: NULL when valid, else its message. */
static char *pg_version_error(const char *v)
{
	size_t n = 0;
	int64_t first = -1;

	for (const char *p = v;; p++) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);

		if (!py_int_text(p, len))
			return pgkeel_asprintf("Invalid PostgreSQL version: %s", v);
		if (n++ == 0) { /* int(): sign, digits and '_' (checked above) */
			first = 0;
			for (const char *q = p; q < p + len; q++)
				if (isdigit((unsigned char)*q) && first < 1000000)
					first = first * 10 + (*q - '0');
			if (memchr(p, '-', len) != NULL)
				first = -first;
		}
		if (dot == NULL)
			break;
		p = dot;
	}
	if (n < 2 || (n == 2 && first < 10) || n > 3)
		return pgkeel_asprintf(
		    "Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: %s", v);
	return NULL;
}

int pgkeel_rest_restart_parse(const struct json_object *body, int64_t now_epoch_ms,
                              struct pgkeel_rest_restart *out, struct json_object **data, char *msg,
                              size_t len)
{
	struct json_object *d = json_object_new_object();
	int status = 0;

	memset(out, 0, sizeof(*out));
	out->timeout_s = -1;
	*data = NULL;
	json_object_object_foreach((struct json_object *)(uintptr_t)body, k, v)
	{
		struct json_object *keep = NULL;

		if (strcmp(k, "schedule") == 0) {
			int64_t ms;

			status = pgkeel_rest_parse_schedule(v, "restart", now_epoch_ms,
			                                    &out->schedule, &ms, msg, len);
			if (status != 0)
				break;
			keep = json_object_new_string(out->schedule);
		} else if (strcmp(k, "role") == 0) {
			const char *r = json_object_is_type(v, json_type_string)
			                    ? json_object_get_string(v)
			                    : NULL;

			if (r == NULL || (strcmp(r, "master") != 0 && strcmp(r, "primary") != 0 &&
			                  strcmp(r, "replica") != 0)) {
				(void)pgkeel_fmt(
				    msg, len,
				    "PostgreSQL role should be either primary or replica");
				status = 400;
				break;
			}
			out->role = pgkeel_strdup(r);
		} else if (strcmp(k, "postgres_version") == 0) {
			char *text = pgkeel_rest_py_str(v);
			char *err = pg_version_error(text);

			if (err != NULL) {
				(void)pgkeel_fmt(msg, len, "%s", err);
				free(err);
				free(text);
				status = 400;
				break;
			}
			out->postgres_version = text;
		} else if (strcmp(k, "timeout") == 0) {
			char *text = pgkeel_rest_py_str(v);
			double t;
			bool ok = pgkeel_pgc_py_parse_int(text, "s", &t) && t > 0 && t < 1e12;

			free(text);
			if (!ok) {
				(void)pgkeel_fmt(msg, len,
				                 "Timeout should be a positive number of seconds");
				status = 400;
				break;
			}
			out->timeout_s = (int64_t)t;
			keep = json_object_new_int64(out->timeout_s);
		} else if (strcmp(k, "restart_pending") == 0) {
			out->restart_pending = true;
		} else {
			(void)pgkeel_fmt(msg, len, "Unknown filter for the scheduled restart: %s",
			                 k);
			status = 400;
			break;
		}
		if (keep == NULL && json_object_deep_copy(v, &keep, NULL) != 0)
			keep = NULL;
		json_object_object_add(d, k, keep);
	}
	if (status != 0) {
		json_object_put(d);
		pgkeel_rest_restart_clear(out);
		out->timeout_s = -1;
		return status;
	}
	*data = d;
	return 0;
}
