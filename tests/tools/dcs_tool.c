/*
 * dcs_tool: drive a DCS backend from the command line, for the
 * compatibility tests against real Patroni.
 *
 *   dcs_tool OPTIONS dump          print every entry of the cluster as JSON
 *   dcs_tool OPTIONS seed-patroni  write a two-member cluster the way Patroni
 *                                  3.0.2 would (member JSON from the cluster
 *                                  encoders), for patronictl to read
 *   dcs_tool OPTIONS watch-wait=MS behave like the HA loop of a replica: load,
 *                                  arm the watch, sleep on the host's event fd
 *                                  for loop_wait, reload; print "armed" once,
 *                                  then exit 0 when a leader change wakes it
 *                                  (printing how long it took), 1 after MS
 *
 * OPTIONS: --backend-dir DIR --backend NAME --options JSON --namespace NS
 *          --scope SCOPE [--ttl N]
 */
#include "autoconf.h"

#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cluster.h"
#include "dcs_loader.h"
#include "host.h"
#include "json.h"

struct tool {
	const struct pgkeel_dcs_plugin *p;
	struct pgkeel_dcs_params params;
	const struct pgkeel_host *host;
};

static int64_t deadline(const struct tool *t, int ms)
{
	return t->host->now_monotonic_ms(t->host->ctx) + ms;
}

static struct pgkeel_dcs *open_handle(struct tool *t, const char *name, bool ctl)
{
	struct pgkeel_dcs_params params = t->params;
	struct pgkeel_dcs *d = NULL;
	struct pgkeel_err err = {0};

	params.name = name;
	params.flags = ctl ? PGKEEL_DCS_CTL : 0;
	if (t->p->init(t->host, &params, &d, &err) != PGKEEL_DCS_OK) {
		fprintf(stderr, "dcs_tool: init: %s\n", err.msg);
		exit(1);
	}
	return d;
}

static void check(enum pgkeel_dcs_status st, const char *what, const struct pgkeel_err *err)
{
	if (st != PGKEEL_DCS_OK) {
		fprintf(stderr, "dcs_tool: %s: status %d: %s\n", what, (int)st, err->msg);
		exit(1);
	}
}

struct dump {
	json_object *raw;
	struct pgkeel_cluster_builder *builder;
};

static int dump_entry(void *arg, const struct pgkeel_dcs_entry *e)
{
	struct dump *x = arg;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "value", json_object_new_string_len(e->value, (int)e->value_len));
	json_object_object_add(o, "version", e->version ? json_object_new_string(e->version) : NULL);
	json_object_object_add(o, "owner", e->owner ? json_object_new_string(e->owner) : NULL);
	json_object_object_add(x->raw, e->key, o);
	return pgkeel_cluster_builder_add(x->builder, e);
}

static json_object *jstr_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* What the core's cluster model made of the entries. */
static json_object *summary(const struct pgkeel_cluster *c)
{
	json_object *o = json_object_new_object(), *members = json_object_new_object();
	json_object *warnings = json_object_new_array();

	json_object_object_add(o, "leader", jstr_or_null(pgkeel_cluster_leader_name(c)));
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		json_object *j = json_object_new_object();
		json_object *tags = NULL;

		json_object_object_add(j, "role", jstr_or_null(m->d.role));
		json_object_object_add(j, "state", jstr_or_null(m->d.state));
		json_object_object_add(j, "version", jstr_or_null(m->d.version));
		json_object_object_add(j, "api_url", jstr_or_null(m->d.api_url));
		json_object_object_add(j, "conn_url", jstr_or_null(m->d.conn_url));
		if (m->d.tags != NULL) {
			char *t = pgkeel_json_compact(m->d.tags);

			tags = json_tokener_parse(t);
			free(t);
		}
		json_object_object_add(j, "tags", tags);
		json_object_object_add(j, "xlog_location", json_object_new_int64(m->d.xlog_location));
		json_object_object_add(j, "timeline", json_object_new_int64(m->d.timeline));
		json_object_object_add(members, m->name, j);
	}
	json_object_object_add(o, "members", members);
	if (c->config != NULL && c->config->valid) {
		char *t = pgkeel_json_compact(c->config->data);

		json_object_object_add(o, "config", json_tokener_parse(t));
		free(t);
	}
	json_object_object_add(o, "optime", json_object_new_int64(c->status.last_lsn));
	json_object_object_add(o, "initialize", jstr_or_null(c->initialize));
	json_object_object_add(o, "timeline", json_object_new_int64(pgkeel_cluster_timeline(c)));
	for (size_t i = 0; i < c->n_warnings; i++)
		json_object_array_add(warnings, json_object_new_string(c->warnings[i]));
	json_object_object_add(o, "warnings", warnings);
	return o;
}

/* Line 1: every entry as the backend returned it; line 2: the core's model. */
static int cmd_dump(struct tool *t)
{
	struct pgkeel_dcs *d = open_handle(t, NULL, true);
	struct pgkeel_err err = {0};
	struct dump x = {.raw = json_object_new_object(), .builder = pgkeel_cluster_builder_new()};
	struct pgkeel_cluster *c;
	json_object *sum;
	char *text;

	check(t->p->load_cluster(d, deadline(t, 10000), dump_entry, &x, &err), "load_cluster",
	      &err);
	c = pgkeel_cluster_builder_finish(x.builder);
	text = pgkeel_json_compact(x.raw);
	puts(text);
	free(text);
	sum = summary(c);
	text = pgkeel_json_compact(sum);
	puts(text);
	free(text);
	json_object_put(sum);
	pgkeel_cluster_unref(c);
	json_object_put(x.raw);
	t->p->fini(d);
	return 0;
}

static char *member_json(const char *name, const char *role, int port, int api_port,
                         int64_t lsn, const char *tags_json)
{
	struct pgkeel_member_data md;
	json_object *tags = tags_json ? json_tokener_parse(tags_json) : NULL;
	char conn[128], api[128];
	char *s;

	pgkeel_member_data_init(&md);
	(void)snprintf(conn, sizeof(conn), "postgres://127.0.0.1:%d/postgres", port);
	(void)snprintf(api, sizeof(api), "http://127.0.0.1:%d/patroni", api_port);
	md.conn_url = conn;
	md.api_url = api;
	md.state = "running";
	md.role = role;
	md.version = PGKEEL_PATRONI_COMPAT_VERSION;
	md.tags = tags;
	md.xlog_location = lsn;
	md.timeline = 2;
	s = pgkeel_member_data_encode(&md);
	json_object_put(tags);
	(void)name;
	return s;
}

/* A cluster as Patroni 3.0.2 leaves it after one switchover (pg-1 -> pg-2). */
static int cmd_seed(struct tool *t)
{
	struct pgkeel_dcs *a = open_handle(t, "pg-2", false);
	struct pgkeel_dcs *b = open_handle(t, "pg-1", false);
	struct pgkeel_dcs *ctl = open_handle(t, NULL, true);
	struct pgkeel_dcs_lease lease = {.struct_size = sizeof(lease)};
	struct pgkeel_err err = {0};
	const char *standbys[] = {"pg-1"};
	char *m, *s;
	char ver[32];

	check(t->p->initialize(ctl, true, "7300000000000000001", deadline(t, 5000), &err),
	      "initialize", &err);
	check(t->p->set_config(ctl,
	                       "{\"ttl\":30,\"loop_wait\":10,\"retry_timeout\":10,"
	                       "\"maximum_lag_on_failover\":1048576,\"synchronous_mode\":true,"
	                       "\"postgresql\":{\"use_pg_rewind\":true,\"use_slots\":true,"
	                       "\"parameters\":{\"max_connections\":200}}}",
	                       NULL, deadline(t, 5000), &err),
	      "set_config", &err);
	m = member_json("pg-2", "master", 25432, 28008, 83886432, NULL);
	check(t->p->touch_member(a, m, deadline(t, 5000), &err), "touch_member pg-2", &err);
	free(m);
	m = member_json("pg-1", "replica", 25431, 28007, 83886432, "{\"dc\":\"a\"}");
	check(t->p->touch_member(b, m, deadline(t, 5000), &err), "touch_member pg-1", &err);
	free(m);
	check(t->p->attempt_to_acquire_leader(a, deadline(t, 5000), &lease, &err), "acquire",
	      &err);
	s = pgkeel_status_encode(83886432, NULL);
	check(t->p->write_status(a, s, deadline(t, 5000), &err), "write_status", &err);
	free(s);
	check(t->p->set_history(a, "[[1,83886240,\"no recovery target specified\","
	                           "\"2026-11-25T23:07:10.944457+00:00\",\"pg-2\"]]",
	                        deadline(t, 5000), &err),
	      "set_history", &err);
	s = pgkeel_sync_encode("pg-2", standbys, 1);
	check(t->p->write_sync_state(a, s, NULL, ver, sizeof(ver), deadline(t, 5000), &err),
	      "write_sync_state", &err);
	free(s);
	s = pgkeel_failover_encode(NULL, NULL, NULL);
	check(t->p->set_failover(ctl, s, NULL, deadline(t, 5000), &err), "set_failover", &err);
	free(s);
	printf("seeded (leader lease %s, granted %lld ms)\n", lease.owner,
	       (long long)lease.granted_ttl_ms);
	/* the handles are left open on purpose until exit: leases live for ttl */
	t->p->fini(ctl);
	t->p->fini(b);
	t->p->fini(a);
	return 0;
}

static int count_entry(void *arg, const struct pgkeel_dcs_entry *e)
{
	char **leader = arg;

	if (strcmp(e->key, "leader") == 0) {
		free(*leader);
		*leader = strndup(e->value, e->value_len);
	}
	return 0;
}

static int cmd_watch_wait(struct tool *t, long limit_ms)
{
	struct pgkeel_dcs *d = open_handle(t, "pg-watch", false);
	struct pgkeel_err err = {0};
	char *leader = NULL, *first = NULL;
	int64_t start, armed_at = 0;
	int fd = pgkeel_host_event_fd();

	start = t->host->now_monotonic_ms(t->host->ctx);
	check(t->p->load_cluster(d, deadline(t, 5000), count_entry, &leader, &err), "load", &err);
	first = leader ? strdup(leader) : NULL;
	check(t->p->watch(d, NULL, &err), "watch", &err);
	printf("armed leader=%s\n", first ? first : "(none)");
	fflush(stdout);
	armed_at = t->host->now_monotonic_ms(t->host->ctx);
	while (t->host->now_monotonic_ms(t->host->ctx) - start < limit_ms) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int rc = poll(&pfd, 1, t->params.loop_wait * 1000);
		uint32_t ev = rc > 0 ? pgkeel_host_take_events() : 0;
		enum pgkeel_dcs_status st;

		/* a cycle: reload (as the loop does on a wake-up or a timeout), re-arm */
		st = t->p->load_cluster(d, deadline(t, t->params.retry_timeout * 1000), count_entry,
		                        &leader, &err);
		if (st != PGKEEL_DCS_OK)
			printf("cycle: load_cluster status %d: %s\n", (int)st, err.msg);
		(void)t->p->watch(d, NULL, &err);
		if ((ev & PGKEEL_EVENT_LEADER) && leader != NULL &&
		    (first == NULL || strcmp(leader, first) != 0)) {
			printf("woken after %lld ms leader=%s events=0x%x\n",
			       (long long)(t->host->now_monotonic_ms(t->host->ctx) - armed_at), leader,
			       ev);
			fflush(stdout);
			t->p->fini(d);
			free(leader);
			free(first);
			return 0;
		}
		if (ev != 0)
			printf("wake-up 0x%x, leader=%s\n", ev, leader ? leader : "(none)");
		fflush(stdout);
	}
	printf("no leader change reported within %ld ms\n", limit_ms);
	fflush(stdout);
	t->p->fini(d);
	free(leader);
	free(first);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"backend-dir", required_argument, NULL, 'd'},
		{"backend", required_argument, NULL, 'b'},
		{"options", required_argument, NULL, 'o'},
		{"namespace", required_argument, NULL, 'n'},
		{"scope", required_argument, NULL, 's'},
		{"ttl", required_argument, NULL, 't'},
		{"loop-wait", required_argument, NULL, 'l'},
		{"retry-timeout", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *backend = NULL;
	struct tool t = {0};
	struct pgkeel_dcs_module mod;
	char msg[512];
	int opt;

	t.params.struct_size = sizeof(t.params);
	t.params.namespace_ = "/service/";
	t.params.options_json = "{}";
	t.params.ttl = 30;
	t.params.loop_wait = 10;
	t.params.retry_timeout = 10;
	t.params.user_agent = "pgkeel-dcs-tool";
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 'b':
			backend = optarg;
			break;
		case 'o':
			t.params.options_json = optarg;
			break;
		case 'n':
			t.params.namespace_ = optarg;
			break;
		case 's':
			t.params.scope = optarg;
			break;
		case 't':
			t.params.ttl = (int)strtol(optarg, NULL, 10);
			break;
		case 'l':
			t.params.loop_wait = (int)strtol(optarg, NULL, 10);
			break;
		case 'r':
			t.params.retry_timeout = (int)strtol(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (backend == NULL || t.params.scope == NULL || optind != argc - 1) {
		fprintf(stderr, "usage: dcs_tool --backend NAME --scope S [...] dump|seed-patroni\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_ALL);
	if (!pgkeel_dcs_load(pgkeel_dcs_backend_dir(dir), backend, &mod, msg, sizeof(msg))) {
		fprintf(stderr, "dcs_tool: %s\n", msg);
		return 1;
	}
	t.p = mod.plugin;
	t.host = pgkeel_host_get();
	if (strcmp(argv[optind], "dump") == 0)
		return cmd_dump(&t);
	if (strcmp(argv[optind], "seed-patroni") == 0)
		return cmd_seed(&t);
	if (strncmp(argv[optind], "watch-wait=", 11) == 0)
		return cmd_watch_wait(&t, strtol(argv[optind] + 11, NULL, 10));
	fprintf(stderr, "dcs_tool: unknown command %s\n", argv[optind]);
	return 2;
}
