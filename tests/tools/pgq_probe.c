/*
 * pgq_probe: drive core/pg_query.c from a test.  One struct pgkeel_pg lives
 * for the whole run, so a test can stop the server between two commands and
 * watch the same handle time out, drop and reconnect.
 *
 *   pgq_probe [--host H] [--port N] [--user U] [--password P] [--passfile F]
 *             [--dbname D] [--appname A] [--replication] [--connect-timeout S]
 *             [--statement-timeout MS] [--cancel-reserve MS] [--extra KEY=VALUE]...
 *
 * Commands on stdin, one per line; each answers one JSON line on stdout:
 *   connect MS            connect with a deadline MS from now
 *   status MS             pgkeel_pg_query_status
 *   settings MS NAME...   pgkeel_pg_read_settings
 *   pending MS [IGNORE]...pgkeel_pg_pending_restart
 *   exec MS SQL...        pgkeel_pg_exec; rows as arrays of strings (null for NULL)
 *   identify MS           pgkeel_pg_identify_system
 *   connected             is the handle connected (and to which backend pid)
 *   close                 pgkeel_pg_close
 *   quit
 * Every answer has "cmd", "rc", "msg", "sqlstate", "elapsed_ms", "connected".
 */
#include "autoconf.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "pg_query.h"
#include "util.h"

#define MAX_ARGS 64

static void usage(void)
{
	fprintf(stderr, "usage: pgq_probe [--host H] [--port N] [--user U] [--password P]\n"
	                "       [--passfile F] [--dbname D] [--appname A] [--replication]\n"
	                "       [--connect-timeout S] [--statement-timeout MS]\n"
	                "       [--cancel-reserve MS] [--extra KEY=VALUE]... < commands\n");
	exit(2);
}

static int int_arg(const char *s)
{
	int64_t v;

	if (!pgkeel_parse_int64(s, &v) || v < -1000000000 || v > 1000000000)
		usage();
	return (int)v;
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *status_json(const struct pgkeel_pg_status *st)
{
	json_object *o = json_object_new_object();
	json_object *names = json_object_new_array();
	json_object *ws = json_object_new_array();

	json_object_object_add(o, "server_version", json_object_new_int(st->server_version));
	json_object_object_add(o, "postmaster_start_time",
	                       json_object_new_string(st->postmaster_start_time));
	json_object_object_add(
	    o, "replay_timestamp",
	    st->replay_timestamp[0] != '\0' ? json_object_new_string(st->replay_timestamp) : NULL);
	json_object_object_add(o, "in_recovery", json_object_new_boolean(st->in_recovery));
	json_object_object_add(o, "timeline", json_object_new_int(st->timeline));
	json_object_object_add(o, "wal_lsn", json_object_new_int64(st->wal_lsn));
	json_object_object_add(o, "replay_lsn", json_object_new_int64(st->replay_lsn));
	json_object_object_add(o, "receive_lsn", json_object_new_int64(st->receive_lsn));
	json_object_object_add(o, "replay_paused", json_object_new_boolean(st->replay_paused));
	json_object_object_add(o, "checkpoint_tli", json_object_new_int(st->checkpoint_tli));
	json_object_object_add(o, "received_tli", json_object_new_int(st->received_tli));
	json_object_object_add(o, "receiver_status", str_or_null(st->receiver_status));
	json_object_object_add(o, "receiver_slot_name", str_or_null(st->receiver_slot_name));
	json_object_object_add(o, "receiver_conninfo", str_or_null(st->receiver_conninfo));
	json_object_object_add(o, "synchronous_commit", str_or_null(st->synchronous_commit));
	json_object_object_add(o, "synchronous_standby_names",
	                       str_or_null(st->synchronous_standby_names));
	json_object_object_add(o, "pending_restart", json_object_new_boolean(st->pending_restart));
	for (size_t i = 0; i < st->n_pending_restart; i++)
		json_object_array_add(names, json_object_new_string(st->pending_restart_names[i]));
	json_object_object_add(o, "pending_restart_names", names);
	for (size_t i = 0; i < st->n_walsenders; i++) {
		const struct pgkeel_pg_walsender *w = &st->walsenders[i];
		json_object *wo = json_object_new_object();

		json_object_object_add(wo, "pid", json_object_new_int(w->pid));
		json_object_object_add(wo, "usename", str_or_null(w->usename));
		json_object_object_add(wo, "application_name", str_or_null(w->application_name));
		json_object_object_add(wo, "client_addr", str_or_null(w->client_addr));
		json_object_object_add(wo, "state", str_or_null(w->state));
		json_object_object_add(wo, "sync_state", str_or_null(w->sync_state));
		json_object_object_add(wo, "sync_priority", json_object_new_int(w->sync_priority));
		json_object_object_add(wo, "sent_lsn", json_object_new_int64(w->sent_lsn));
		json_object_object_add(wo, "write_lsn", json_object_new_int64(w->write_lsn));
		json_object_object_add(wo, "flush_lsn", json_object_new_int64(w->flush_lsn));
		json_object_object_add(wo, "replay_lsn", json_object_new_int64(w->replay_lsn));
		json_object_array_add(ws, wo);
	}
	json_object_object_add(o, "replication", ws);
	return o;
}

static json_object *settings_json(const struct pgkeel_pg_settings *s)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < s->n; i++) {
		const struct pgkeel_pg_setting *it = &s->items[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", str_or_null(it->name));
		json_object_object_add(o, "setting", str_or_null(it->setting));
		json_object_object_add(o, "unit", str_or_null(it->unit));
		json_object_object_add(o, "vartype", str_or_null(it->vartype));
		json_object_object_add(o, "context", str_or_null(it->context));
		json_object_object_add(o, "sourcefile", str_or_null(it->sourcefile));
		json_object_object_add(o, "pending_restart",
		                       json_object_new_boolean(it->pending_restart));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *rows_json(const PGresult *r)
{
	json_object *rows = json_object_new_array();

	for (int i = 0; i < PQntuples(r); i++) {
		json_object *row = json_object_new_array();

		for (int j = 0; j < PQnfields(r); j++)
			json_object_array_add(row, PQgetisnull(r, i, j) ? NULL
			                                                : json_object_new_string(
			                                                      PQgetvalue(r, i, j)));
		json_object_array_add(rows, row);
	}
	return rows;
}

/* Split line into at most MAX_ARGS words (in place). */
static int split(char *line, char **argv)
{
	int n = 0;
	char *p = line;

	while (*p != '\0' && n < MAX_ARGS) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		argv[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

static void answer(json_object *o, const char *cmd, enum pgkeel_pg_rc rc,
                   const struct pgkeel_pg_err *err, int64_t start, const struct pgkeel_pg *pg)
{
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	json_object_object_add(o, "rc", json_object_new_string(pgkeel_pg_rc_name(rc)));
	json_object_object_add(o, "msg",
	                       json_object_new_string(rc == PGKEEL_PG_OK ? "" : err->msg));
	json_object_object_add(o, "sqlstate",
	                       json_object_new_string(rc == PGKEEL_PG_OK ? "" : err->sqlstate));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "connected", json_object_new_boolean(pgkeel_pg_connected(pg)));
	json_object_object_add(o, "backend_pid", json_object_new_int(pgkeel_pg_backend_pid(pg)));
	json_object_object_add(o, "server_version_num",
	                       json_object_new_int(pgkeel_pg_server_version(pg)));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

/* The text after the first two words of line, or NULL. */
static const char *after_two_words(const char *line)
{
	const char *p = line;

	for (int w = 0; w < 2; w++) {
		while (*p == ' ' || *p == '\t')
			p++;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return *p != '\0' ? p : NULL;
}

static void run_command(struct pgkeel_pg *pg, char *line)
{
	char *whole = pgkeel_strdup(line);
	const char *rest = after_two_words(whole);
	char *argv[MAX_ARGS];
	int argc = split(line, argv);
	struct pgkeel_pg_err err = {0};
	json_object *o = json_object_new_object();
	enum pgkeel_pg_rc rc = PGKEEL_PG_OK;
	int64_t start = pgkeel_now_monotonic_ms();
	int64_t deadline;
	const char *cmd;

	if (argc == 0) {
		json_object_put(o);
		free(whole);
		return;
	}
	cmd = argv[0];
	if (strcmp(cmd, "connected") == 0 || strcmp(cmd, "close") == 0) {
		if (strcmp(cmd, "close") == 0)
			pgkeel_pg_close(pg);
		answer(o, cmd, rc, &err, start, pg);
		free(whole);
		return;
	}
	if (argc < 2) {
		json_object_object_add(o, "error", json_object_new_string("missing deadline"));
		answer(o, cmd, PGKEEL_PG_BADRESULT, &err, start, pg);
		free(whole);
		return;
	}
	deadline = start + int_arg(argv[1]);
	if (strcmp(cmd, "connect") == 0) {
		rc = pgkeel_pg_connect(pg, deadline, &err);
	} else if (strcmp(cmd, "status") == 0) {
		struct pgkeel_pg_status *st = NULL;

		rc = pgkeel_pg_query_status(pg, deadline, &st, &err);
		if (rc == PGKEEL_PG_OK)
			json_object_object_add(o, "status", status_json(st));
		pgkeel_pg_status_free(st);
	} else if (strcmp(cmd, "settings") == 0 || strcmp(cmd, "pending") == 0) {
		struct pgkeel_pg_settings *s = NULL;
		const char *const *names = (const char *const *)&argv[2];

		if (strcmp(cmd, "settings") == 0)
			rc = pgkeel_pg_read_settings(pg, names, (size_t)(argc - 2), deadline, &s,
			                             &err);
		else
			rc = pgkeel_pg_pending_restart(pg, names, (size_t)(argc - 2), deadline, &s,
			                               &err);
		if (rc == PGKEEL_PG_OK)
			json_object_object_add(o, "settings", settings_json(s));
		pgkeel_pg_settings_free(s);
	} else if (strcmp(cmd, "exec") == 0 && rest != NULL) {
		PGresult *r = NULL;

		rc = pgkeel_pg_exec(pg, rest, 0, NULL, deadline, &r, &err);
		if (rc == PGKEEL_PG_OK)
			json_object_object_add(o, "rows", rows_json(r));
		PQclear(r);
	} else if (strcmp(cmd, "identify") == 0) {
		struct pgkeel_pg_sysinfo si;

		rc = pgkeel_pg_identify_system(pg, deadline, &si, &err);
		if (rc == PGKEEL_PG_OK) {
			json_object_object_add(o, "systemid", json_object_new_string(si.systemid));
			json_object_object_add(o, "timeline", json_object_new_int(si.timeline));
			json_object_object_add(o, "xlogpos", json_object_new_int64(si.xlogpos));
		}
	} else {
		json_object_object_add(o, "error", json_object_new_string("unknown command"));
		rc = PGKEEL_PG_BADRESULT;
	}
	answer(o, cmd, rc, &err, start, pg);
	free(whole);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"user", required_argument, NULL, 'U'},
	    {"password", required_argument, NULL, 'W'},
	    {"passfile", required_argument, NULL, 'F'},
	    {"dbname", required_argument, NULL, 'd'},
	    {"appname", required_argument, NULL, 'a'},
	    {"replication", no_argument, NULL, 'R'},
	    {"connect-timeout", required_argument, NULL, 'c'},
	    {"statement-timeout", required_argument, NULL, 's'},
	    {"cancel-reserve", required_argument, NULL, 'r'},
	    {"extra", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	struct pgkeel_pg_params params = {0};
	const char *keys[16], *values[16];
	char *extra[16];
	struct pgkeel_pg *pg;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int c;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			params.host = optarg;
			break;
		case 'p':
			params.port = int_arg(optarg);
			break;
		case 'U':
			params.user = optarg;
			break;
		case 'W':
			params.password = optarg;
			break;
		case 'F':
			params.passfile = optarg;
			break;
		case 'd':
			params.dbname = optarg;
			break;
		case 'a':
			params.application_name = optarg;
			break;
		case 'R':
			params.replication = true;
			break;
		case 'c':
			params.connect_timeout_s = int_arg(optarg);
			break;
		case 's':
			params.statement_timeout_ms = int_arg(optarg);
			break;
		case 'r':
			params.cancel_reserve_ms = int_arg(optarg);
			break;
		case 'x': {
			char *eq = strchr(optarg, '=');

			if (eq == NULL || params.n_extra >= PGKEEL_ARRAY_LEN(keys))
				usage();
			extra[params.n_extra] = pgkeel_strdup(optarg);
			eq = extra[params.n_extra] + (eq - optarg);
			*eq = '\0';
			keys[params.n_extra] = extra[params.n_extra];
			values[params.n_extra] = eq + 1;
			params.n_extra++;
			break;
		}
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	params.extra_keys = keys;
	params.extra_values = values;

	pg = pgkeel_pg_new(&params);
	while ((len = getline(&line, &cap, stdin)) != -1) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		run_command(pg, line);
	}
	free(line);
	pgkeel_pg_free(pg);
	for (size_t i = 0; i < params.n_extra; i++)
		free(extra[i]);
	return 0;
}
