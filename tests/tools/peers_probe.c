/*
 * peers_probe: drive core/peers.c from a test (tests/integration/test_peers.py).
 * One context lives for the whole run, so kept-alive connections are reused
 * from one command to the next, as between two HA cycles.
 *
 *   peers_probe [--auth USER:PASSWORD] [--certfile F] [--keyfile F]
 *               [--keyfile-password P] [--cafile F] [--verify-peer] [--verify-host]
 *   peers_probe --config patroni.yml [--insecure -1|0|1]
 *
 * Commands on stdin, one per line; each answers one JSON line on stdout:
 *   status MS NAME=URL...    pgkeel_peers_fetch_status, deadline MS from now
 *   msg JSON                 the failsafe message for the next `failsafe`
 *                            ({"name", "conn_url", "api_url", "slots"})
 *   failsafe MS NAME=URL...  pgkeel_peers_post_failsafe
 *   alive MS URL             pgkeel_peers_alive
 *   settings                 the settings the context was made from
 *   quit
 * Every answer has "cmd" and "elapsed_ms" (the whole call).  Log lines go
 * to stderr.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "peers.h"
#include "util.h"

#define MAX_ARGS 64

static void usage(void)
{
	fprintf(stderr, "usage: peers_probe [--auth USER:PASSWORD] [--certfile F] [--keyfile F]\n"
	                "       [--keyfile-password P] [--cafile F] [--verify-peer] [--verify-host]\n"
	                "   or: peers_probe --config FILE [--insecure -1|0|1]   < commands\n");
	exit(2);
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static void answer(json_object *o)
{
	char *s = pgkeel_json_compact(o);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_object_put(o);
}

static void answer_error(const char *cmd, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	json_object_object_add(o, "error", json_object_new_string(msg));
	answer(o);
}

/* NAME=URL arguments into targets (pointing into the argument strings). */
static bool parse_targets(char **args, size_t n, struct pgkeel_peer_target *t)
{
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(args[i], '=');

		if (eq == NULL)
			return false;
		*eq = '\0';
		t[i].name = args[i];
		t[i].api_url = eq + 1;
	}
	return true;
}

static json_object *status_json(const struct pgkeel_peer_target *t,
                                const struct pgkeel_peer_status *st)
{
	json_object *o = json_object_new_object();
	const char *lim = pgkeel_peer_limitation_text(st->limitation);

	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "reachable", json_object_new_boolean(st->reachable));
	json_object_object_add(o, "in_recovery", json_object_new_boolean(st->in_recovery));
	json_object_object_add(o, "wal_position", json_object_new_int64(st->wal_position));
	json_object_object_add(o, "timeline", json_object_new_int64(st->timeline));
	json_object_object_add(o, "nofailover", json_object_new_boolean(st->nofailover));
	json_object_object_add(o, "failover_priority",
	                       json_object_new_int64(st->failover_priority));
	json_object_object_add(o, "watchdog_failed", json_object_new_boolean(st->watchdog_failed));
	json_object_object_add(o, "limitation", str_or_null(lim));
	json_object_object_add(o, "http_code", json_object_new_int64(st->http_code));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(st->elapsed_ms));
	json_object_object_add(o, "error", json_object_new_string(st->error));
	json_object_object_add(o, "json", json_object_get(st->json));
	return o;
}

static void cmd_status(struct pgkeel_peers *p, int64_t ms, char **args, size_t n)
{
	struct pgkeel_peer_target *t = pgkeel_xcalloc(n > 0 ? n : 1, sizeof(*t));
	struct pgkeel_peer_status *st = pgkeel_xcalloc(n > 0 ? n : 1, sizeof(*st));
	json_object *o, *peers;
	int64_t start;

	if (!parse_targets(args, n, t)) {
		answer_error("status", "targets are NAME=URL");
		goto out;
	}
	start = pgkeel_now_monotonic_ms();
	pgkeel_peers_fetch_status(p, t, n, start + ms, st);
	o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string("status"));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	peers = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(peers, status_json(&t[i], &st[i]));
	json_object_object_add(o, "peers", peers);
	answer(o);
out:
	for (size_t i = 0; i < n; i++)
		pgkeel_peer_status_clear(&st[i]);
	free(st);
	free(t);
}

static void cmd_failsafe(struct pgkeel_peers *p, int64_t ms, json_object *msg, char **args,
                         size_t n)
{
	struct pgkeel_peer_target *t = pgkeel_xcalloc(n > 0 ? n : 1, sizeof(*t));
	struct pgkeel_peer_post_result *r = pgkeel_xcalloc(n > 0 ? n : 1, sizeof(*r));
	struct pgkeel_failsafe_msg m = { 0 };
	json_object *o, *peers, *v;
	int64_t start;
	bool all;
	char *body;

	if (!parse_targets(args, n, t)) {
		answer_error("failsafe", "targets are NAME=URL");
		goto out;
	}
	if (json_object_object_get_ex(msg, "name", &v))
		m.name = json_object_get_string(v);
	if (json_object_object_get_ex(msg, "conn_url", &v))
		m.conn_url = json_object_get_string(v);
	if (json_object_object_get_ex(msg, "api_url", &v))
		m.api_url = json_object_get_string(v);
	if (json_object_object_get_ex(msg, "slots", &v))
		m.slots = v;
	start = pgkeel_now_monotonic_ms();
	all = pgkeel_peers_post_failsafe(p, t, n, &m, start + ms, r);
	o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string("failsafe"));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "accepted", json_object_new_boolean(all));
	body = pgkeel_failsafe_msg_body(&m);
	json_object_object_add(o, "body", json_object_new_string(body));
	free(body);
	peers = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(t[i].name));
		json_object_object_add(e, "accepted", json_object_new_boolean(r[i].accepted));
		json_object_object_add(e, "http_code", json_object_new_int64(r[i].http_code));
		json_object_object_add(e, "attempts", json_object_new_int(r[i].attempts));
		json_object_object_add(e, "elapsed_ms", json_object_new_int64(r[i].elapsed_ms));
		json_object_object_add(e, "body", json_object_new_string(r[i].body));
		json_object_object_add(e, "error", json_object_new_string(r[i].error));
		json_object_array_add(peers, e);
	}
	json_object_object_add(o, "peers", peers);
	answer(o);
out:
	free(r);
	free(t);
}

static void cmd_alive(struct pgkeel_peers *p, int64_t ms, const char *url)
{
	json_object *o = json_object_new_object();
	int64_t start = pgkeel_now_monotonic_ms();
	long code = 0;
	bool alive = pgkeel_peers_alive(p, url, start + ms, &code);

	json_object_object_add(o, "cmd", json_object_new_string("alive"));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "alive", json_object_new_boolean(alive));
	json_object_object_add(o, "http_code", json_object_new_int64(code));
	answer(o);
}

static void cmd_settings(const struct pgkeel_peers_settings *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cmd", json_object_new_string("settings"));
	json_object_object_add(o, "auth", str_or_null(s->auth));
	json_object_object_add(o, "certfile", str_or_null(s->certfile));
	json_object_object_add(o, "keyfile", str_or_null(s->keyfile));
	json_object_object_add(o, "keyfile_password", str_or_null(s->keyfile_password));
	json_object_object_add(o, "cafile", str_or_null(s->cafile));
	json_object_object_add(o, "verify_peer", json_object_new_boolean(s->verify_peer));
	json_object_object_add(o, "verify_host", json_object_new_boolean(s->verify_host));
	answer(o);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "auth", required_argument, NULL, 'a' },
		{ "certfile", required_argument, NULL, 'c' },
		{ "keyfile", required_argument, NULL, 'k' },
		{ "keyfile-password", required_argument, NULL, 'P' },
		{ "cafile", required_argument, NULL, 'C' },
		{ "verify-peer", no_argument, NULL, 'v' },
		{ "verify-host", no_argument, NULL, 'h' },
		{ "config", required_argument, NULL, 'f' },
		{ "insecure", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct pgkeel_peers_settings s = { 0 };
	struct pgkeel_config *cfg = NULL;
	struct pgkeel_peers *p;
	const char *config_path = NULL;
	json_object *msg = NULL;
	char authbuf[512];
	char *line = NULL;
	size_t cap = 0;
	int64_t insecure = 1;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': s.auth = optarg; break;
		case 'c': s.certfile = optarg; break;
		case 'k': s.keyfile = optarg; break;
		case 'P': s.keyfile_password = optarg; break;
		case 'C': s.cafile = optarg; break;
		case 'v': s.verify_peer = true; break;
		case 'h': s.verify_host = true; break;
		case 'f': config_path = optarg; break;
		case 'i':
			if (!pgkeel_parse_int64(optarg, &insecure) || insecure < -1 || insecure > 1)
				usage();
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "peers_probe: curl_global_init failed\n");
		return 1;
	}
	if (config_path != NULL) {
		struct pgkeel_config_opts copts = { 0 };
		struct pgkeel_diag diag;

		pgkeel_diag_init(&diag);
		cfg = pgkeel_config_load(config_path, &copts, &diag);
		pgkeel_diag_log(&diag);
		pgkeel_diag_clear(&diag);
		if (cfg == NULL)
			return 1;
		pgkeel_peers_settings_from_config(cfg, (int)insecure, authbuf, sizeof(authbuf), &s);
	}
	p = pgkeel_peers_new(&s);
	if (p == NULL)
		return 1;

	while (getline(&line, &cap, stdin) != -1) {
		char *args[MAX_ARGS];
		char *save = NULL, *tok;
		size_t n = 0;
		int64_t ms = 0;

		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "msg ", 4) == 0) {
			char err[128];

			json_object_put(msg);
			msg = NULL;
			if (!pgkeel_json_parse(line + 4, strlen(line + 4), &msg, err, sizeof(err)))
				answer_error("msg", err);
			else
				answer_error("msg", "");
			continue;
		}
		for (tok = strtok_r(line, " ", &save); tok != NULL && n < MAX_ARGS;
		     tok = strtok_r(NULL, " ", &save))
			args[n++] = tok;
		if (n == 0)
			continue;
		if (strcmp(args[0], "quit") == 0)
			break;
		if (strcmp(args[0], "settings") == 0) {
			cmd_settings(&s);
			continue;
		}
		if (n < 2 || !pgkeel_parse_int64(args[1], &ms)) {
			answer_error(args[0], "usage: CMD MS ARGS...");
			continue;
		}
		if (strcmp(args[0], "status") == 0)
			cmd_status(p, ms, args + 2, n - 2);
		else if (strcmp(args[0], "failsafe") == 0)
			cmd_failsafe(p, ms, msg, args + 2, n - 2);
		else if (strcmp(args[0], "alive") == 0 && n == 3)
			cmd_alive(p, ms, args[2]);
		else
			answer_error(args[0], "unknown command");
	}
	free(line);
	json_object_put(msg);
	pgkeel_peers_free(p);
	pgkeel_config_unref(cfg);
	curl_global_cleanup();
	return 0;
}
