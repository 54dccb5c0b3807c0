/*
 * rest_probe: the REST server (core/rest.c) with a state set from outside
 * and a stand-in for the HA loop, for tests/integration/test_rest.py.
 *
 *   rest_probe [--listen HOST:PORT] [--auth USER:PASSWORD] [--header NAME:VALUE]...
 *              [--reply-timeout-ms N] [--switchover-wait-ms N] [--queue-max N]
 *              [--threads N] [--per-ip N] [--max-body N] [--conn-timeout-s N]
 *              [--https-header NAME:VALUE]... [--certfile F] [--keyfile F]
 *              [--keyfile-password P] [--cafile F] [--verify-client MODE]
 *              [--allow ENTRY]... [--allow-members]
 *
 * Prints "port <n>" once listening (default listen 127.0.0.1:0), then reads
 * commands on stdin, one per line, and answers each with one line:
 *
 *   state <json>       publish a state (see below)                  -> ok
 *   mode answer|hold|ignore
 *                      how queued requests are served: answer at once with
 *                      the reply below, take and hold them, or leave them
 *                      queued (a dead loop)                          -> ok
 *   reply <status> <text>
 *                      the fixed answer; without one the answer is 200 and
 *                      a JSON object of the parsed request
 *                      {"kind","leader","candidate","scheduled_at","client"}
 *                                                                    -> ok
 *   queued             -> the number of requests waiting in the queue
 *   held               -> the number of requests held
 *   release            answer every held request                     -> released <n>
 *   failsafe           -> the last POST /failsafe message as JSON, or none
 *   dcs <json>|none    what the loop reads from the DCS for the requests it
 *                      answers from a fresh read (GET /cluster, PATCH/PUT
 *                      /config, ...), the same format as the state's
 *                      cluster; none: the read fails; default: the state's
 *                      cluster                                       -> ok
 *   cas ok|fail|down   whether the loop's writes succeed (fail: those with a
 *                      CAS version; down: all)                        -> ok
 *   writes             -> the writes since the last call, a JSON list of
 *                      {"key": "config"|"failover", "value", "version"}
 *   sched              -> the scheduled restart as the member key shows it, or none
 *   sched_cancel       cancel it as the loop does                    -> ok
 *   reload             -> 1 when POST /reload was accepted since, else 0
 *   reconfigure        pgkeel_rest_reconfigure() with the command line's
 *                      options (the TLS files read again)           -> ok
 *   quit               stop the server and exit                      -> bye
 *
 * The state is one JSON object; every key is optional:
 *   name, scope, pg_state (strings), pg_running, paused, standby_cluster,
 *   synchronous_mode, failsafe_mode, failsafe_active, pending_restart,
 *   watchdog_failed, disable_sync (booleans), role ("master", "replica",
 *   ...), sysid, dcs_last_seen, ttl, loop_wait, tags, scheduled_restart;
 *   times relative to now in ms: lock_ms (absent: not the holder),
 *   next_cycle_ms (default 0), cluster_valid_ms (default 30000), pg_valid_ms
 *   (default one day);
 *   cluster: {"<DCS key>": value, ...} loaded through the cluster builder
 *   (a string value is taken as stored, anything else rendered compact);
 *   absent: no cluster was ever read;
 *   pg: the status query's answer {in_recovery, server_version,
 *   postmaster_start_time, wal_lsn, replay_lsn, receive_lsn,
 *   replay_timestamp, replay_paused, timeline, walsenders: [{usename,
 *   application_name, client_addr, state, sync_state, sync_priority}]};
 *   null: the query failed; absent: nothing sampled.
 *
 * In mode answer, requests the loop answers from the DCS (rest.h's
 * pgkeel_rest_answer_dcs) are answered so, on the `dcs` cluster; the others
 * get the echo above, with "role", "postgres_version", "restart_pending",
 * "timeout_s" and "force" added.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster.h"
#include "host.h"
#include "json.h"
#include "pg_query.h"
#include "rest.h"
#include "state.h"
#include "util.h"

enum mode { M_ANSWER, M_HOLD, M_IGNORE };

static enum mode mode = M_ANSWER;
static int reply_status; /* 0: echo the request */
static char *reply_text;
static struct pgkeel_rest_req **held;
static size_t n_held;
static struct pgkeel_cluster *state_cluster; /* of the last state */
static struct pgkeel_cluster *dcs_cluster;   /* set by `dcs` */
static bool dcs_set, cas_ok = true, dcs_down;
static json_object *writes;
static const struct pgkeel_rest_opts *opts; /* the command line's */

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static bool has(json_object *o, const char *k)
{
	return json_object_object_get_ex(o, k, NULL);
}

static char *str_of(json_object *o, const char *k)
{
	json_object *v = get(o, k);

	return v != NULL && json_object_is_type(v, json_type_string)
	           ? pgkeel_strdup(json_object_get_string(v))
	           : NULL;
}

static bool bool_of(json_object *o, const char *k)
{
	return json_object_get_boolean(get(o, k)) != 0;
}

static int64_t int_of(json_object *o, const char *k, int64_t dflt)
{
	return has(o, k) ? json_object_get_int64(get(o, k)) : dflt;
}

static json_object *copy_of(json_object *v)
{
	json_object *c = NULL;

	if (v == NULL || json_object_deep_copy(v, &c, NULL) != 0)
		return NULL;
	return c;
}

static enum pgkeel_state_role role_of(const char *s)
{
	static const enum pgkeel_state_role all[] = {
	    PGKEEL_STATE_ROLE_UNINITIALIZED,  PGKEEL_STATE_ROLE_MASTER,  PGKEEL_STATE_ROLE_REPLICA,
	    PGKEEL_STATE_ROLE_STANDBY_LEADER, PGKEEL_STATE_ROLE_DEMOTED, PGKEEL_STATE_ROLE_PROMOTED,
	};

	for (size_t i = 0; s != NULL && i < PGKEEL_ARRAY_LEN(all); i++)
		if (strcmp(s, pgkeel_state_role_name(all[i])) == 0)
			return all[i];
	return PGKEEL_STATE_ROLE_UNINITIALIZED;
}

static struct pgkeel_cluster *cluster_of(json_object *kv)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

	json_object_object_foreach(kv, k, v)
	{
		char *text = json_object_is_type(v, json_type_string)
		                 ? pgkeel_strdup(json_object_get_string(v))
		                 : pgkeel_json_compact(v);
		struct pgkeel_dcs_entry e = {
		    .key = k, .value = text, .value_len = strlen(text), .version = "1"};

		(void)pgkeel_cluster_builder_add(b, &e);
		free(text);
	}
	return pgkeel_cluster_builder_finish(b);
}

static void copy_text(char *dst, size_t len, json_object *o, const char *k)
{
	char *s = str_of(o, k);

	(void)pgkeel_fmt(dst, len, "%s", s != NULL ? s : "");
	free(s);
}

static struct pgkeel_pg_status *status_of(json_object *o)
{
	struct pgkeel_pg_status *st = pgkeel_xcalloc(1, sizeof(*st));
	json_object *ws = get(o, "walsenders");

	st->in_recovery = bool_of(o, "in_recovery");
	st->server_version = (int)int_of(o, "server_version", 150000);
	copy_text(st->postmaster_start_time, sizeof(st->postmaster_start_time), o,
	          "postmaster_start_time");
	copy_text(st->replay_timestamp, sizeof(st->replay_timestamp), o, "replay_timestamp");
	st->wal_lsn = int_of(o, "wal_lsn", 0);
	st->replay_lsn = int_of(o, "replay_lsn", 0);
	st->receive_lsn = int_of(o, "receive_lsn", 0);
	st->replay_paused = bool_of(o, "replay_paused");
	st->timeline = (int)int_of(o, "timeline", 0);
	if (ws != NULL && json_object_is_type(ws, json_type_array)) {
		st->n_walsenders = json_object_array_length(ws);
		st->walsenders = pgkeel_xcalloc(st->n_walsenders, sizeof(*st->walsenders));
		for (size_t i = 0; i < st->n_walsenders; i++) {
			json_object *w = json_object_array_get_idx(ws, i);
			struct pgkeel_pg_walsender *d = &st->walsenders[i];

			d->usename = str_of(w, "usename");
			d->application_name = str_of(w, "application_name");
			d->client_addr = str_of(w, "client_addr");
			d->state = str_of(w, "state");
			d->sync_state = str_of(w, "sync_state");
			d->sync_priority = (int)int_of(w, "sync_priority", 0);
		}
	}
	return st;
}

static bool publish(const char *text)
{
	int64_t now = pgkeel_now_boottime_ms();
	struct pgkeel_state_loop *l;
	char err[160];
	json_object *o = NULL;
	char *role;

	if (!pgkeel_json_parse(text, strlen(text), &o, err, sizeof(err)) ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return false;
	}
	l = pgkeel_state_loop_new();
	l->name = str_of(o, "name");
	l->scope = str_of(o, "scope");
	l->pg_state = str_of(o, "pg_state");
	l->pg_running = bool_of(o, "pg_running");
	role = str_of(o, "role");
	l->role = role_of(role);
	free(role);
	l->lock_deadline_ms = has(o, "lock_ms") ? now + int_of(o, "lock_ms", 0) : 0;
	l->next_cycle_ms = now + int_of(o, "next_cycle_ms", 0);
	l->ttl = (int)int_of(o, "ttl", 30);
	l->loop_wait = (int)int_of(o, "loop_wait", 10);
	l->paused = bool_of(o, "paused");
	l->standby_cluster = bool_of(o, "standby_cluster");
	l->synchronous_mode = bool_of(o, "synchronous_mode");
	l->failsafe_mode = bool_of(o, "failsafe_mode");
	l->failsafe_active = bool_of(o, "failsafe_active");
	l->pending_restart = bool_of(o, "pending_restart");
	l->watchdog_failed = bool_of(o, "watchdog_failed");
	l->sysid = str_of(o, "sysid");
	l->dcs_last_seen = int_of(o, "dcs_last_seen", 0);
	pgkeel_state_loop_set_tags(l, get(o, "tags"), bool_of(o, "disable_sync"));
	l->scheduled_restart = copy_of(get(o, "scheduled_restart"));
	pgkeel_cluster_unref(state_cluster);
	state_cluster = NULL;
	if (get(o, "cluster") != NULL) {
		l->cluster = cluster_of(get(o, "cluster"));
		l->cluster_valid_ms = now + int_of(o, "cluster_valid_ms", 30000);
		state_cluster = pgkeel_cluster_ref(l->cluster);
	}
	pgkeel_state_publish_loop(l);
	if (has(o, "pg")) {
		struct pgkeel_state_pg *pg = pgkeel_state_pg_new();

		if (get(o, "pg") != NULL) {
			pg->status = status_of(get(o, "pg"));
			pg->timeline = int_of(get(o, "pg"), "timeline", 0);
		}
		pg->valid_until_ms = now + int_of(o, "pg_valid_ms", 86400000);
		pgkeel_state_publish_pg(pg);
	} else {
		pgkeel_state_publish_pg(NULL);
	}
	json_object_put(o);
	return true;
}

static bool record_write(const char *key, const char *value, const char *version)
{
	json_object *w = json_object_new_object();
	bool ok = !dcs_down && (cas_ok || version == NULL);

	json_object_object_add(w, "key", json_object_new_string(key));
	json_object_object_add(w, "value", json_object_new_string(value));
	json_object_object_add(w, "version", version ? json_object_new_string(version) : NULL);
	json_object_object_add(w, "ok", json_object_new_boolean(ok));
	json_object_array_add(writes, w);
	return ok;
}

static bool write_config(void *arg, const char *value, const char *version)
{
	(void)arg;
	return record_write("config", value, version);
}

static bool write_failover(void *arg, const char *value, const char *version)
{
	(void)arg;
	return record_write("failover", value, version);
}

static bool answer_dcs(struct pgkeel_rest_req *r)
{
	struct pgkeel_rest_dcs_ops ops = {
	    .arg = NULL, .set_config = write_config, .set_failover = write_failover};
	bool changed;

	switch (r->kind) {
	case PGKEEL_REST_CLUSTER:
	case PGKEEL_REST_HISTORY:
	case PGKEEL_REST_CONFIG:
	case PGKEEL_REST_PATCH_CONFIG:
	case PGKEEL_REST_PUT_CONFIG:
	case PGKEEL_REST_DELETE_SWITCHOVER:
		pgkeel_rest_answer_dcs(r, dcs_set ? dcs_cluster : state_cluster, &ops, &changed);
		return true;
	default:
		return false;
	}
}

static void answer(struct pgkeel_rest_req *r)
{
	struct pgkeel_sbuf b = {0};
	char *body;

	if (reply_status != 0) {
		pgkeel_rest_reply(r, reply_status, NULL, reply_text);
		return;
	}
	if (answer_dcs(r))
		return;
	pgkeel_sbuf_puts(&b, "{\"kind\": ");
	pgkeel_json_put_cstring(&b, pgkeel_rest_kind_name(r->kind));
	pgkeel_sbuf_puts(&b, ", \"leader\": ");
	pgkeel_json_put_cstring(&b, r->leader);
	pgkeel_sbuf_puts(&b, ", \"candidate\": ");
	pgkeel_json_put_cstring(&b, r->candidate);
	pgkeel_sbuf_puts(&b, ", \"scheduled_at\": ");
	pgkeel_json_put_cstring(&b, r->scheduled_at);
	pgkeel_sbuf_puts(&b, ", \"client\": ");
	pgkeel_json_put_cstring(&b, r->client);
	pgkeel_sbuf_puts(&b, ", \"role\": ");
	pgkeel_json_put_cstring(&b, r->role);
	pgkeel_sbuf_puts(&b, ", \"postgres_version\": ");
	pgkeel_json_put_cstring(&b, r->postgres_version);
	pgkeel_sbuf_puts(&b, r->restart_pending ? ", \"restart_pending\": true"
	                                        : ", \"restart_pending\": false");
	pgkeel_sbuf_printf(&b, ", \"timeout_s\": %lld", (long long)r->timeout_s);
	pgkeel_sbuf_puts(&b, r->force ? ", \"force\": true" : ", \"force\": false");
	pgkeel_sbuf_putc(&b, '}');
	body = pgkeel_sbuf_finish(&b);
	pgkeel_rest_reply(r, 200, "application/json", body);
	free(body);
}

static void serve(struct pgkeel_rest *srv)
{
	struct pgkeel_rest_req *r;

	(void)pgkeel_host_take_events();
	if (mode == M_IGNORE)
		return;
	while ((r = pgkeel_rest_next_request(srv)) != NULL) {
		if (mode == M_ANSWER) {
			answer(r);
		} else {
			held = pgkeel_xreallocarray(held, n_held + 1, sizeof(*held));
			held[n_held++] = r;
		}
	}
}

static void print_failsafe(struct pgkeel_rest *srv)
{
	struct pgkeel_rest_failsafe f;
	struct pgkeel_sbuf b = {0};
	char *s;

	if (!pgkeel_rest_failsafe_last(srv, &f)) {
		printf("none\n");
		return;
	}
	pgkeel_sbuf_puts(&b, "{\"name\": ");
	pgkeel_json_put_cstring(&b, f.name);
	pgkeel_sbuf_puts(&b, ", \"conn_url\": ");
	pgkeel_json_put_cstring(&b, f.conn_url);
	pgkeel_sbuf_puts(&b, ", \"api_url\": ");
	pgkeel_json_put_cstring(&b, f.api_url);
	pgkeel_sbuf_puts(&b, ", \"slots\": ");
	pgkeel_sbuf_puts(&b, f.slots_json != NULL ? f.slots_json : "null");
	pgkeel_sbuf_putc(&b, '}');
	s = pgkeel_sbuf_finish(&b);
	printf("%s\n", s);
	free(s);
	pgkeel_rest_failsafe_clear(&f);
}

/* One command; false to quit. */
static bool command(struct pgkeel_rest *srv, char *line)
{
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(line, "state") == 0) {
		printf(arg != NULL && publish(arg) ? "ok\n" : "error: bad state\n");
	} else if (strcmp(line, "mode") == 0 && arg != NULL) {
		mode = strcmp(arg, "hold") == 0     ? M_HOLD
		       : strcmp(arg, "ignore") == 0 ? M_IGNORE
		                                    : M_ANSWER;
		serve(srv);
		printf("ok\n");
	} else if (strcmp(line, "reply") == 0 && arg != NULL) {
		char *text = strchr(arg, ' ');

		if (text != NULL)
			*text++ = '\0';
		reply_status = (int)strtol(arg, NULL, 10);
		free(reply_text);
		reply_text = pgkeel_strdup(text != NULL ? text : "");
		printf("ok\n");
	} else if (strcmp(line, "queued") == 0) {
		printf("%zu\n", pgkeel_rest_queued(srv));
	} else if (strcmp(line, "held") == 0) {
		printf("%zu\n", n_held);
	} else if (strcmp(line, "release") == 0) {
		size_t n = n_held;

		for (size_t i = 0; i < n_held; i++)
			answer(held[i]);
		n_held = 0;
		printf("released %zu\n", n);
	} else if (strcmp(line, "failsafe") == 0) {
		print_failsafe(srv);
	} else if (strcmp(line, "dcs") == 0 && arg != NULL) {
		json_object *kv = NULL;
		char err[160];

		pgkeel_cluster_unref(dcs_cluster);
		dcs_cluster = NULL;
		dcs_set = true;
		if (strcmp(arg, "none") == 0) {
			printf("ok\n");
		} else if (pgkeel_json_parse(arg, strlen(arg), &kv, err, sizeof(err)) &&
		           json_object_is_type(kv, json_type_object)) {
			dcs_cluster = cluster_of(kv);
			printf("ok\n");
		} else {
			printf("error: bad cluster\n");
		}
		json_object_put(kv);
	} else if (strcmp(line, "cas") == 0 && arg != NULL) {
		cas_ok = strcmp(arg, "ok") == 0;
		dcs_down = strcmp(arg, "down") == 0;
		printf("ok\n");
	} else if (strcmp(line, "writes") == 0) {
		char *text = pgkeel_json_compact(writes);

		printf("%s\n", text);
		free(text);
		json_object_put(writes);
		writes = json_object_new_array();
	} else if (strcmp(line, "sched") == 0) {
		json_object *o = pgkeel_rest_scheduled_restart_json(srv, true);
		char *text = o != NULL ? pgkeel_json_compact(o) : NULL;

		printf("%s\n", text != NULL ? text : "none");
		free(text);
		json_object_put(o);
	} else if (strcmp(line, "sched_cancel") == 0) {
		struct pgkeel_rest_restart rr;

		if (pgkeel_rest_scheduled_restart(srv, &rr))
			pgkeel_rest_scheduled_restart_cancel(srv, rr.generation);
		pgkeel_rest_restart_clear(&rr);
		printf("ok\n");
	} else if (strcmp(line, "reconfigure") == 0) {
		pgkeel_rest_reconfigure(srv, opts);
		printf("ok\n");
	} else if (strcmp(line, "reload") == 0) {
		printf("%d\n", pgkeel_rest_take_reload(srv) ? 1 : 0);
	} else if (strcmp(line, "quit") == 0) {
		return false;
	} else {
		printf("error: unknown command %s\n", line);
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"auth", required_argument, NULL, 'a'},
	    {"header", required_argument, NULL, 'H'},
	    {"reply-timeout-ms", required_argument, NULL, 'r'},
	    {"switchover-wait-ms", required_argument, NULL, 's'},
	    {"queue-max", required_argument, NULL, 'q'},
	    {"threads", required_argument, NULL, 't'},
	    {"per-ip", required_argument, NULL, 'p'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"conn-timeout-s", required_argument, NULL, 'c'},
	    {"https-header", required_argument, NULL, 'S'},
	    {"certfile", required_argument, NULL, 'C'},
	    {"keyfile", required_argument, NULL, 'K'},
	    {"keyfile-password", required_argument, NULL, 'P'},
	    {"cafile", required_argument, NULL, 'A'},
	    {"verify-client", required_argument, NULL, 'V'},
	    {"allow", required_argument, NULL, 'w'},
	    {"allow-members", no_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	struct pgkeel_rest_opts o = {.listen = "127.0.0.1:0"};
	const char *headers[32], *https_headers[32], *allow[16];
	struct pgkeel_rest *srv;
	char err[512], line[65536];
	size_t used = 0;
	int opt;
	bool run = true;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *sep;

		switch (opt) {
		case 'l':
			o.listen = optarg;
			break;
		case 'a':
			sep = strchr(optarg, ':');
			if (sep == NULL)
				return 2;
			*sep = '\0';
			o.auth_username = optarg;
			o.auth_password = sep + 1;
			break;
		case 'H':
			sep = strchr(optarg, ':');
			if (sep == NULL || o.n_extra_headers == 16)
				return 2;
			*sep = '\0';
			headers[2 * o.n_extra_headers] = optarg;
			headers[2 * o.n_extra_headers + 1] = sep + 1;
			o.n_extra_headers++;
			break;
		case 'r':
			o.reply_timeout_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 's':
			o.switchover_wait_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 'q':
			o.queue_max = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.per_ip_connections = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o.max_body = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.connection_timeout_s = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			sep = strchr(optarg, ':');
			if (sep == NULL || o.n_https_extra_headers == 16)
				return 2;
			*sep = '\0';
			https_headers[2 * o.n_https_extra_headers] = optarg;
			https_headers[2 * o.n_https_extra_headers + 1] = sep + 1;
			o.n_https_extra_headers++;
			break;
		case 'C':
			o.certfile = optarg;
			break;
		case 'K':
			o.keyfile = optarg;
			break;
		case 'P':
			o.keyfile_password = optarg;
			break;
		case 'A':
			o.cafile = optarg;
			break;
		case 'V':
			o.verify_client = optarg;
			break;
		case 'w':
			if (o.n_allowlist == PGKEEL_ARRAY_LEN(allow))
				return 2;
			allow[o.n_allowlist++] = optarg;
			break;
		case 'm':
			o.allowlist_include_members = true;
			break;
		default:
			return 2;
		}
	}
	o.extra_headers = headers;
	o.https_extra_headers = https_headers;
	o.allowlist = allow;
	o.pgkeel_version = "0.0.0-probe";
	writes = json_object_new_array();
	opts = &o;
	setvbuf(stdout, NULL, _IOLBF, 0);
	srv = pgkeel_rest_start(&o, err, sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, "error: %s\n", err);
		return 1;
	}
	printf("port %d\n", pgkeel_rest_port(srv));
	while (run) {
		struct pollfd pfd[2] = {{.fd = 0, .events = POLLIN},
		                        {.fd = pgkeel_host_event_fd(), .events = POLLIN}};

		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents & POLLIN)
			serve(srv);
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			ssize_t got = read(0, line + used, sizeof(line) - 1 - used);
			char *nl;

			if (got <= 0)
				break;
			used += (size_t)got;
			line[used] = '\0';
			/* every complete line is a command */
			while (run && (nl = strchr(line, '\n')) != NULL) {
				size_t len = (size_t)(nl - line);

				*nl = '\0';
				if (len > 0 && line[len - 1] == '\r')
					line[len - 1] = '\0';
				run = command(srv, line);
				memmove(line, nl + 1, used - len - 1);
				used -= len + 1;
				line[used] = '\0';
			}
			if (used == sizeof(line) - 1)
				break; /* a line longer than the buffer */
		}
	}
	for (size_t i = 0; i < n_held; i++)
		pgkeel_rest_reply(held[i], 503, NULL, "probe exiting");
	free(held);
	pgkeel_rest_stop(srv);
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_publish_pg(NULL);
	pgkeel_cluster_unref(state_cluster);
	pgkeel_cluster_unref(dcs_cluster);
	json_object_put(writes);
	free(reply_text);
	printf("bye\n");
	return 0;
}
