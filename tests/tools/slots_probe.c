/*
 * slots_probe: drive core/pg_slots.c from a test
 * (tests/integration/test_pg_slots.py).  Reads one JSON document on stdin:
 *
 *   {"conn": {"host": "/sock/dir", "port": 5432, "user": "postgres"},
 *    "name": "pg1", "role": "primary" | "replica" | "standby_leader",
 *    "tags": {...}, "config": {...effective configuration...},
 *    "server_version": 150004,            (optional: the server's)
 *    "cluster": {"<logical key>": <value>, ...},  e.g. "members/pg2": {...},
 *                                          "leader": "pg1", "config": {...}
 *    "apply": true, "deadline_ms": 5000,
 *    "logical": {"pending": {"cdc": null | <primary catalog_xmin>},
 *                "recheck": false},        (readiness state; with "apply")
 *    "copy": {"names": ["cdc"], "install": "/data/dir"},
 *    "promote": true,                      (pgkeel_slots_logical_on_promote)
 *    "last_lsn": 123}                      (with "apply": "status_slots", the
 *                                           leader's /status slots)
 *
 * Without "conn" nothing is read (the plan is made against no slots) and
 * "server_version" must be given.
 *
 * Cluster values that are not strings are written as JSON text, strings as
 * they are (the leader key).  The cluster is built with the real builder.
 * Writes one JSON document on stdout: the desired slots, Patroni's errors,
 * the plan, the result of applying it (with "apply") and the rows of
 * pg_replication_slots afterwards, whether hot_standby_feedback must be on,
 * the readiness state after the pass
 * ("logical"), the slots read from the leader ("copied") and the outcome of
 * installing them ("installed", "install_error").  Log lines go to stderr.  Exit 0 unless
 * the input is unusable.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pg_slots.h"
#include "pg_slots_copy.h"
#include "pg_query.h"
#include "util.h"

static void die(const char *msg)
{
	fprintf(stderr, "slots_probe: %s\n", msg);
	exit(2);
}

static char *read_all(FILE *f)
{
	struct pgkeel_sbuf b = {0};
	char buf[4096];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		pgkeel_sbuf_put(&b, buf, n);
	return pgkeel_sbuf_finish(&b);
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static struct pgkeel_cluster *build_cluster(json_object *spec)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

	if (json_object_is_type(spec, json_type_object)) {
		json_object_object_foreach(spec, key, value)
		{
			char *text = json_object_is_type(value, json_type_string)
			                 ? pgkeel_strdup(json_object_get_string(value))
			                 : pgkeel_json_compact(value);
			struct pgkeel_dcs_entry e = {
			    .key = key,
			    .value = text,
			    .value_len = strlen(text),
			    .version = "1",
			    .modify_version = NULL,
			    .owner = NULL,
			};

			(void)pgkeel_cluster_builder_add(b, &e);
			free(text);
		}
	}
	return pgkeel_cluster_builder_finish(b);
}

static json_object *desired_json(const struct pgkeel_slots_desired *d)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < d->n; i++) {
		const struct pgkeel_slot_want *w = &d->v[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(w->name));
		json_object_object_add(o, "type",
		                       json_object_new_string(pgkeel_slot_type_name(w->type)));
		if (w->database != NULL)
			json_object_object_add(o, "database", json_object_new_string(w->database));
		if (w->plugin != NULL)
			json_object_object_add(o, "plugin", json_object_new_string(w->plugin));
		if (w->member != NULL)
			json_object_object_add(o, "member", json_object_new_string(w->member));
		json_object_object_add(o, "permanent", json_object_new_boolean(w->permanent));
		json_object_object_add(o, "lsn", json_object_new_int64(w->lsn));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *names_json(char *const *names, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(names[i]));
	return a;
}

static json_object *plan_json(const struct pgkeel_slots_plan *p)
{
	json_object *o = json_object_new_object(), *ops = json_object_new_array();

	for (size_t i = 0; i < p->n; i++) {
		const struct pgkeel_slot_op *op = &p->ops[i];
		json_object *x = json_object_new_object();

		json_object_object_add(x, "op",
		                       json_object_new_string(pgkeel_slot_op_name(op->kind)));
		json_object_object_add(x, "name", json_object_new_string(op->name));
		json_object_object_add(x, "type",
		                       json_object_new_string(pgkeel_slot_type_name(op->type)));
		if (op->database != NULL)
			json_object_object_add(x, "database", json_object_new_string(op->database));
		if (op->kind == PGKEEL_SLOT_OP_ADVANCE)
			json_object_object_add(x, "lsn", json_object_new_int64(op->lsn));
		json_object_array_add(ops, x);
	}
	json_object_object_add(o, "ops", ops);
	json_object_object_add(o, "kept_active", names_json(p->kept_active, p->n_kept_active));
	json_object_object_add(o, "ignored", names_json(p->ignored, p->n_ignored));
	json_object_object_add(o, "copy", names_json(p->copy, p->n_copy));
	return o;
}

static json_object *rows_json(const struct pgkeel_slot_rows *r)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < r->n; i++) {
		const struct pgkeel_slot_row *x = &r->v[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(x->name));
		json_object_object_add(o, "type",
		                       json_object_new_string(pgkeel_slot_type_name(x->type)));
		json_object_object_add(o, "database",
		                       x->database ? json_object_new_string(x->database) : NULL);
		json_object_object_add(o, "plugin",
		                       x->plugin ? json_object_new_string(x->plugin) : NULL);
		json_object_object_add(o, "active", json_object_new_boolean(x->active));
		json_object_object_add(o, "restart_lsn", json_object_new_int64(x->restart_lsn));
		json_object_object_add(o, "catalog_xmin", json_object_new_int64(x->catalog_xmin));
		json_object_object_add(o, "confirmed_flush_lsn",
		                       json_object_new_int64(x->confirmed_flush_lsn));
		json_object_array_add(a, o);
	}
	return a;
}

static void logical_from_json(json_object *o, struct pgkeel_slots_logical *l)
{
	json_object *pending = get(o, "pending");

	pgkeel_slots_logical_init(l);
	l->recheck = json_object_get_boolean(get(o, "recheck"));
	if (!json_object_is_type(pending, json_type_object))
		return;
	json_object_object_foreach(pending, name, xmin)
	{
		pgkeel_slots_logical_add(l, name);
		if (xmin != NULL) {
			l->pending[l->n_pending - 1].known = true;
			l->pending[l->n_pending - 1].primary_xmin = json_object_get_int64(xmin);
		}
	}
}

static json_object *logical_json(const struct pgkeel_slots_logical *l)
{
	json_object *o = json_object_new_object(), *pending = json_object_new_object();

	for (size_t i = 0; i < l->n_pending; i++)
		json_object_object_add(
		    pending, l->pending[i].name,
		    l->pending[i].known ? json_object_new_int64(l->pending[i].primary_xmin) : NULL);
	json_object_object_add(o, "pending", pending);
	json_object_object_add(o, "recheck", json_object_new_boolean(l->recheck));
	return o;
}

/* Read names from the leader; install them into a stopped data directory. */
static void do_copy(const struct pgkeel_slots_input *input, json_object *spec,
                    struct pgkeel_slots_logical *logical, int64_t deadline, json_object *out)
{
	json_object *names = get(spec, "names"), *copied = json_object_new_array();
	const char *install = get_str(spec, "install");
	size_t n =
	    json_object_is_type(names, json_type_array) ? json_object_array_length(names) : 0;
	char **v = pgkeel_xcalloc(n + 1, sizeof(*v));
	struct pgkeel_slot_copies copies;
	bool read_ok;

	for (size_t i = 0; i < n; i++)
		v[i] = (char *)json_object_get_string(json_object_array_get_idx(names, i));
	read_ok = pgkeel_slots_copy_read(input, v, n, deadline, &copies);
	json_object_object_add(out, "copy_read_ok", json_object_new_boolean(read_ok));
	for (size_t i = 0; i < copies.n; i++) {
		const struct pgkeel_slot_copy *c = &copies.v[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(c->name));
		json_object_object_add(o, "database", json_object_new_string(c->database));
		json_object_object_add(o, "plugin", json_object_new_string(c->plugin));
		json_object_object_add(o, "catalog_xmin", json_object_new_int64(c->catalog_xmin));
		json_object_object_add(o, "confirmed_flush_lsn",
		                       json_object_new_int64(c->confirmed_flush_lsn));
		json_object_object_add(o, "state_len",
		                       json_object_new_int64((int64_t)c->state_len));
		json_object_array_add(copied, o);
	}
	json_object_object_add(out, "copied", copied);
	if (install != NULL) {
		char err[512] = "";
		bool ok = pgkeel_slots_copy_install(install, &copies, logical, err, sizeof(err));

		json_object_object_add(out, "installed", json_object_new_boolean(ok));
		json_object_object_add(out, "install_error", json_object_new_string(err));
	}
	pgkeel_slot_copies_clear(&copies);
	free(v);
}

int main(void)
{
	char *text = read_all(stdin);
	json_object *in = json_tokener_parse(text), *conn, *out;
	struct pgkeel_pg_params params;
	struct pgkeel_pg *pg;
	struct pgkeel_slots_input input;
	struct pgkeel_slots_desired want;
	struct pgkeel_slot_rows rows;
	struct pgkeel_slots_plan plan;
	struct pgkeel_slots_result res;
	struct pgkeel_slots_logical logical;
	struct pgkeel_diag diag;
	struct pgkeel_cluster *cluster;
	const char *role;
	int64_t deadline, version;
	char *rendered;

	free(text);
	if (!json_object_is_type(in, json_type_object))
		die("stdin is not a JSON object");
	conn = get(in, "conn");
	memset(&params, 0, sizeof(params));
	params.host = get_str(conn, "host");
	params.port = json_object_get_int(get(conn, "port"));
	params.user = get_str(conn, "user");
	params.dbname = get_str(conn, "dbname");
	pg = pgkeel_pg_new(&params);
	deadline = pgkeel_now_monotonic_ms() +
	           (get(in, "deadline_ms") ? json_object_get_int64(get(in, "deadline_ms")) : 10000);

	cluster = build_cluster(get(in, "cluster"));
	memset(&input, 0, sizeof(input));
	input.cluster = cluster;
	input.name = get_str(in, "name");
	role = get_str(in, "role");
	input.role = role == NULL || strcmp(role, "primary") == 0 ? PGKEEL_PG_PRIMARY
	             : strcmp(role, "standby_leader") == 0        ? PGKEEL_PG_STANDBY_LEADER
	                                                          : PGKEEL_PG_REPLICA;
	input.tags = get(in, "tags");
	input.config = get(in, "config");
	version = get(in, "server_version") ? json_object_get_int64(get(in, "server_version")) : 0;
	if (version == 0) {
		struct pgkeel_pg_err err;

		if (pgkeel_pg_connect(pg, deadline, &err) != PGKEEL_PG_OK)
			die(err.msg);
		version = pgkeel_pg_server_version(pg);
	}
	input.server_version = (int)version;
	if (input.name == NULL)
		die("no name");

	logical_from_json(get(in, "logical"), &logical);
	out = json_object_new_object();
	json_object_object_add(out, "server_version", json_object_new_int64(version));
	pgkeel_diag_init(&diag);
	pgkeel_slots_compute_desired(&input, &want, &diag);
	json_object_object_add(out, "managed", json_object_new_boolean(want.managed));
	json_object_object_add(
	    out, "hot_standby_feedback",
	    json_object_new_boolean(pgkeel_slots_need_hot_standby_feedback(&input)));
	json_object_object_add(out, "desired", desired_json(&want));
	json_object_object_add(out, "errors", json_object_get(diag.errors));
	pgkeel_diag_clear(&diag);
	memset(&rows, 0, sizeof(rows));
	if (conn != NULL && !pgkeel_slots_read(pg, deadline, &rows))
		die("cannot read pg_replication_slots");
	pgkeel_slots_make_plan(&want, rows.v, rows.n, input.config, &plan);
	json_object_object_add(out, "plan", plan_json(&plan));
	pgkeel_slot_rows_clear(&rows);
	pgkeel_slots_plan_clear(&plan);
	pgkeel_slots_desired_clear(&want);
	if (json_object_get_boolean(get(in, "apply"))) {
		json_object *r = json_object_new_object();
		bool ok =
		    pgkeel_slots_sync(pg, &params, &input,
		                      get(in, "logical") != NULL ? &logical : NULL, deadline, &res);

		json_object_object_add(r, "ok", json_object_new_boolean(ok));
		json_object_object_add(r, "read_ok", json_object_new_boolean(res.read_ok));
		json_object_object_add(r, "dropped", json_object_new_int(res.dropped));
		json_object_object_add(r, "created", json_object_new_int(res.created));
		json_object_object_add(r, "advanced", json_object_new_int(res.advanced));
		json_object_object_add(r, "failed", json_object_new_int(res.failed));
		json_object_object_add(r, "skipped", json_object_new_int(res.skipped));
		json_object_object_add(r, "copy", names_json(res.copy, res.n_copy));
		if (get(in, "last_lsn") != NULL)
			json_object_object_add(
			    out, "status_slots",
			    pgkeel_slots_status(&input, res.rows.v, res.rows.n,
			                        json_object_get_int64(get(in, "last_lsn"))));
		pgkeel_slots_result_clear(&res);
		json_object_object_add(out, "result", r);
		if (!pgkeel_slots_read(pg, deadline, &rows))
			die("cannot read pg_replication_slots");
		json_object_object_add(out, "after", rows_json(&rows));
		pgkeel_slot_rows_clear(&rows);
	}
	if (get(in, "copy") != NULL)
		do_copy(&input, get(in, "copy"), &logical, deadline, out);
	if (json_object_get_boolean(get(in, "promote")))
		pgkeel_slots_logical_on_promote(&logical);
	json_object_object_add(out, "logical", logical_json(&logical));
	pgkeel_slots_logical_clear(&logical);
	rendered = pgkeel_json_compact(out);
	printf("%s\n", rendered);
	free(rendered);
	json_object_put(out);
	json_object_put(in);
	pgkeel_cluster_unref(cluster);
	pgkeel_pg_free(pg);
	return 0;
}
