/*
 * pgboot_probe: drive core/pg_bootstrap.c from a test
 * (tests/integration/test_pg_bootstrap.py).
 *
 *   pgboot_probe --config FILE [--run-as USER] [--slice-ms N] [--timeout-ms N]
 *                [--server-version N] [--retry-ms N] [--pgpass PATH]
 *                [--cancel-after-ms N] COMMAND [ARGS]
 *
 * Commands:
 *   bootstrap                       pgkeel_pg_bootstrap_start, then wait
 *   post-bootstrap                  pgkeel_pg_post_bootstrap_start (own connection), then wait
 *   replica [--source URL] [--methods JSON-ARRAY]
 *                                   pgkeel_pg_create_replica_start, then wait
 *   without-leader [--methods JSON-ARRAY]
 *   local-address [--replication]
 *   empty DIR                       pgkeel_pg_data_dir_empty
 *   remove DIR                      pgkeel_pg_remove_data_dir
 *
 * A task is driven the way the HA loop would: pgkeel_pg_task_wait() with a
 * deadline --slice-ms (default 100) ahead, again and again; how far a wait
 * overran its deadline is measured.  The answer is one JSON object on
 * stdout: result ("succeeded", "failed", "refused"), error, state, argv and
 * env of the last command, commands, elapsed_ms, slices, max_overrun_ms and
 * the command's own fields.  Log lines go to stderr.  Exit code 0 unless
 * the probe itself was misused (2).
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "child.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pg_bootstrap.h"
#include "util.h"

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: pgboot_probe --config FILE [--run-as USER] [--slice-ms N] [--timeout-ms N]\n"
	    "       [--server-version N] [--retry-ms N] [--pgpass PATH] [--cancel-after-ms N]\n"
	    "       bootstrap | post-bootstrap | replica [--source URL] [--methods JSON]\n"
	    "       | without-leader [--methods JSON] | local-address [--replication]\n"
	    "       | empty DIR | remove DIR\n");
	exit(2);
}

static int int_arg(const char *s)
{
	int64_t v;

	if (!pgkeel_parse_int64(s, &v) || v < 0 || v > 1000000000)
		usage();
	return (int)v;
}

static json_object *strings(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static void print(json_object *o)
{
	char *text = pgkeel_json_compact(o);

	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_object_put(o);
}

static const char *status_name(enum pgkeel_pg_task_status st)
{
	switch (st) {
	case PGKEEL_PG_TASK_RUNNING:
		return "running";
	case PGKEEL_PG_TASK_SUCCEEDED:
		return "succeeded";
	case PGKEEL_PG_TASK_FAILED:
		return "failed";
	}
	return "?";
}

/* Drive t to its end in slices; fill o with what the tests look at. */
static void drive(struct pgkeel_pg_task *t, int slice_ms, int timeout_ms, int cancel_after_ms,
                  json_object *o)
{
	int64_t start = pgkeel_now_monotonic_ms(), max_overrun = 0;
	unsigned slices = 0;
	enum pgkeel_pg_task_status st;
	bool cancelled = false;

	for (;;) {
		int64_t deadline = pgkeel_now_monotonic_ms() + slice_ms, now;

		st = pgkeel_pg_task_wait(t, deadline);
		now = pgkeel_now_monotonic_ms();
		slices++;
		if (now - deadline > max_overrun)
			max_overrun = now - deadline;
		if (st != PGKEEL_PG_TASK_RUNNING)
			break;
		if (!cancelled && cancel_after_ms > 0 && now - start >= cancel_after_ms) {
			pgkeel_pg_task_cancel(t, now + 2000);
			cancelled = true;
			continue;
		}
		if (now - start > timeout_ms) {
			fprintf(stderr, "pgboot_probe: task still running after %d ms: cancelled\n",
			        timeout_ms);
			pgkeel_pg_task_cancel(t, now + 2000);
			cancelled = true;
		}
	}
	json_object_object_add(o, "result", json_object_new_string(status_name(st)));
	json_object_object_add(o, "error", json_object_new_string(pgkeel_pg_task_error(t)));
	json_object_object_add(o, "state", str_or_null(pgkeel_pg_task_state(t)));
	json_object_object_add(o, "argv", strings(pgkeel_pg_task_last_argv(t)));
	json_object_object_add(o, "env", strings(pgkeel_pg_task_last_env(t)));
	json_object_object_add(o, "commands", json_object_new_int((int)pgkeel_pg_task_commands(t)));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "slices", json_object_new_int((int)slices));
	json_object_object_add(o, "max_overrun_ms", json_object_new_int64(max_overrun));
	json_object_object_add(o, "cancelled", json_object_new_boolean(cancelled));
}

static json_object *parse_methods(const char *text)
{
	json_object *m = NULL;
	char err[256];

	if (!pgkeel_json_parse(text, strlen(text), &m, err, sizeof(err)) ||
	    !json_object_is_type(m, json_type_array)) {
		fprintf(stderr, "pgboot_probe: --methods: %s\n", err);
		json_object_put(m);
		usage();
	}
	return m;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"run-as", required_argument, NULL, 'u'},
	    {"slice-ms", required_argument, NULL, 's'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"server-version", required_argument, NULL, 'v'},
	    {"retry-ms", required_argument, NULL, 'r'},
	    {"pgpass", required_argument, NULL, 'p'},
	    {"cancel-after-ms", required_argument, NULL, 'k'},
	    {"source", required_argument, NULL, 'S'},
	    {"methods", required_argument, NULL, 'M'},
	    {"replication", no_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *run_as = NULL, *source = NULL, *methods_text = NULL;
	int slice_ms = 100, timeout_ms = 300000, cancel_after_ms = 0, c;
	bool replication = false;
	struct pgkeel_pg_boot_opts opts;
	struct pgkeel_child_user user;
	struct pgkeel_config_opts copts;
	struct pgkeel_diag diag;
	struct pgkeel_config *cfg = NULL;
	json_object *o = json_object_new_object();
	const char *cmd;
	char err[2048];

	memset(&opts, 0, sizeof(opts));
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'u':
			run_as = optarg;
			break;
		case 's':
			slice_ms = int_arg(optarg);
			break;
		case 't':
			timeout_ms = int_arg(optarg);
			break;
		case 'v':
			opts.server_version = int_arg(optarg);
			break;
		case 'r':
			opts.basebackup_retry_ms = int_arg(optarg);
			break;
		case 'p':
			opts.pgpass_path = optarg;
			break;
		case 'k':
			cancel_after_ms = int_arg(optarg);
			break;
		case 'S':
			source = optarg;
			break;
		case 'M':
			methods_text = optarg;
			break;
		case 'R':
			replication = true;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind];

	if (strcmp(cmd, "empty") == 0 || strcmp(cmd, "remove") == 0) {
		if (optind + 1 >= argc)
			usage();
		if (strcmp(cmd, "empty") == 0) {
			json_object_object_add(
			    o, "empty",
			    json_object_new_boolean(pgkeel_pg_data_dir_empty(argv[optind + 1])));
		} else {
			bool ok = pgkeel_pg_remove_data_dir(argv[optind + 1], err, sizeof(err));

			json_object_object_add(o, "ok", json_object_new_boolean(ok));
			json_object_object_add(o, "error", json_object_new_string(ok ? "" : err));
		}
		print(o);
		return 0;
	}

	if (config == NULL)
		usage();
	memset(&copts, 0, sizeof(copts));
	pgkeel_diag_init(&diag);
	cfg = pgkeel_config_load(config, &copts, &diag);
	if (cfg == NULL) {
		pgkeel_diag_log(&diag);
		pgkeel_diag_clear(&diag);
		json_object_put(o);
		return 2;
	}
	pgkeel_diag_clear(&diag);
	opts.cfg = cfg;
	if (run_as != NULL) {
		if (!pgkeel_child_user_lookup(run_as, &user, err, sizeof(err))) {
			fprintf(stderr, "pgboot_probe: %s\n", err);
			return 2;
		}
		opts.user = &user;
	}

	if (strcmp(cmd, "bootstrap") == 0 || strcmp(cmd, "post-bootstrap") == 0 ||
	    strcmp(cmd, "replica") == 0) {
		struct pgkeel_pg_task *t = NULL;
		json_object *methods = methods_text != NULL ? parse_methods(methods_text) : NULL;
		struct pgkeel_pg_source src;
		bool have_src = false;

		if (source != NULL) {
			if (!pgkeel_pg_source_from_url(source, &src)) {
				fprintf(stderr, "pgboot_probe: bad --source %s\n", source);
				return 2;
			}
			have_src = true;
			json_object_object_add(o, "source_host", json_object_new_string(src.host));
			json_object_object_add(o, "source_port", json_object_new_string(src.port));
			json_object_object_add(o, "source_dbname",
			                       json_object_new_string(src.dbname));
		}
		err[0] = '\0';
		if (strcmp(cmd, "bootstrap") == 0)
			t = pgkeel_pg_bootstrap_start(&opts, err, sizeof(err));
		else if (strcmp(cmd, "post-bootstrap") == 0)
			t = pgkeel_pg_post_bootstrap_start(&opts, err, sizeof(err));
		else
			t = pgkeel_pg_create_replica_start(&opts, have_src ? &src : NULL, methods,
			                                   err, sizeof(err));
		if (t == NULL) {
			json_object_object_add(o, "result", json_object_new_string("refused"));
			json_object_object_add(o, "error", json_object_new_string(err));
		} else {
			drive(t, slice_ms, timeout_ms, cancel_after_ms, o);
			if (strcmp(cmd, "bootstrap") == 0) {
				struct pgkeel_pg_bootstrap_info info;

				pgkeel_pg_task_bootstrap_info(t, &info);
				json_object_object_add(o, "custom",
				                       json_object_new_boolean(info.custom));
				json_object_object_add(o, "method", str_or_null(info.method));
				json_object_object_add(
				    o, "keep_existing_recovery_conf",
				    json_object_new_boolean(info.keep_existing_recovery_conf));
				json_object_object_add(o, "recovery_conf",
				                       json_object_get(info.recovery_conf));
			} else if (strcmp(cmd, "replica") == 0) {
				json_object_object_add(
				    o, "method", str_or_null(pgkeel_pg_task_replica_method(t)));
			}
			pgkeel_pg_task_free(t);
		}
		json_object_put(methods);
	} else if (strcmp(cmd, "without-leader") == 0) {
		json_object *methods = methods_text != NULL ? parse_methods(methods_text) : NULL;

		json_object_object_add(
		    o, "without_leader",
		    json_object_new_boolean(pgkeel_pg_replica_without_leader(cfg, methods)));
		json_object_put(methods);
	} else if (strcmp(cmd, "local-address") == 0) {
		char *host, *port;

		pgkeel_pg_local_address(cfg, replication, &host, &port);
		json_object_object_add(o, "host", str_or_null(host));
		json_object_object_add(o, "port", json_object_new_string(port));
		free(host);
		free(port);
	} else {
		usage();
	}
	print(o);
	pgkeel_config_unref(cfg);
	pgkeel_child_reap_abandoned();
	return 0;
}
