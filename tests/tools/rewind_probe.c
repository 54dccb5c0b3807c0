/*
 * rewind_probe: drive core/pg_rewind.c (and core/child.c for the programs it
 * runs) from the rewind integration test.
 *
 *   rewind_probe decide LOCAL_TLI LOCAL_LSN IN_RECOVERY(0|1) CHECKPOINT_END LEADER_TLI HISTFILE
 *       prints NEEDED, NOT_NEEDED or UNKNOWN (CHECKPOINT_END "0/0" = unknown,
 *       HISTFILE "-" = no history)
 *   rewind_probe checkpoint-end BIN_DIR DATA_DIR TLI LSN
 *       runs pg_waldump -n 2 and prints the end of the checkpoint record
 *   rewind_probe possible DATA_DIR BIN_DIR   prints yes / no: reason
 *   rewind_probe run BIN_DIR DATA_DIR SOURCE_DSN
 *       runs pg_rewind as Patroni does (LANG=C, PGOPTIONS) and prints its exit
 *
 * core/pg_rewind_run.c, with a configuration file (pgkeel.yml) for this node:
 *   rewind_probe check --config FILE LEADER_OPTIONS [--running TLI LSN]
 *                [--server-version N] [--timeout-ms N] [--run-as USER]
 *       pgkeel_rewind_check; prints one JSON object: need (NEEDED, NOT_NEEDED,
 *       UNKNOWN), reason and the facts found
 *   rewind_probe job --config FILE LEADER_OPTIONS [--checkpoint-after-promote
 *                true|false|absent] [--no-restore-target-wal] [--pgpass PATH]
 *                [--slice-ms N] [--timeout-ms N] [--cancel-after-ms N] [--run-as USER]
 *       pgkeel_rewind_job_start, then pgkeel_rewind_job_wait in slices of
 *       --slice-ms (default 100) as the HA loop would; prints one JSON object:
 *       status, result, error, what the job did, pg_rewind's argv and env,
 *       elapsed_ms, slices, max_overrun_ms (how far a wait overran its slice)
 *   LEADER_OPTIONS: --leader-name NAME --leader-url postgres://h:p/db
 *                   [--leader-role ROLE (default master)] [--remote]
 * Log lines go to stderr.  Exit code 0 unless the probe was misused (2).
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "config.h"
#include "json.h"
#include "pg_data.h"
#include "pg_rewind.h"
#include "pg_rewind_run.h"
#include "util.h"

static int64_t lsn_arg(const char *s)
{
	int64_t v;

	if (!pgkeel_lsn_parse(s, &v)) {
		fprintf(stderr, "rewind_probe: bad LSN %s\n", s);
		exit(2);
	}
	return v;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = pgkeel_xcalloc(1, 65536);
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "rewind_probe: cannot read %s\n", path);
		exit(2);
	}
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int cmd_decide(char **a)
{
	struct pgkeel_tl_switch h[64];
	struct pgkeel_rewind_facts f = {0};
	int n = 0;
	enum pgkeel_rewind_need need;

	if (strcmp(a[5], "-") != 0) {
		char *text = slurp(a[5]);

		n = pgkeel_tl_history_parse(text, h, 64);
		free(text);
		if (n < 0) {
			fprintf(stderr, "rewind_probe: malformed history\n");
			return 2;
		}
	}
	f.local_tli = strtoll(a[0], NULL, 10);
	f.local_lsn = lsn_arg(a[1]);
	f.in_recovery = strcmp(a[2], "1") == 0;
	f.checkpoint_end = lsn_arg(a[3]);
	f.leader_tli = strtoll(a[4], NULL, 10);
	f.history = h;
	f.n_history = (size_t)n;
	need = pgkeel_rewind_decide(&f);
	puts(need == PGKEEL_REWIND_NEEDED       ? "NEEDED"
	     : need == PGKEEL_REWIND_NOT_NEEDED ? "NOT_NEEDED"
	                                        : "UNKNOWN");
	return 0;
}

static const char *const c_env[] = {"LANG=C", "LC_ALL=C", NULL};

static int cmd_checkpoint_end(char **a)
{
	char *bin = pgkeel_asprintf("%s/pg_waldump", a[0]);
	char *waldir = pgkeel_asprintf("%s/pg_wal", a[1]);
	const char *argv[] = {bin, "-t", a[2], "-s", a[3], "-n", "2", "-p", waldir, NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .env = c_env, .name = "pg_waldump"};
	struct pgkeel_child_output out;
	char err[512], *stderr_text;
	char path[] = "/tmp/pgkeel-waldump-err-XXXXXX";
	int fd = mkstemp(path);
	enum pgkeel_child_result r;
	int64_t end;
	char buf[32];

	if (fd < 0)
		return 2;
	spec.err.mode = PGKEEL_CHILD_OUT_FD;
	spec.err.fd = fd;
	r = pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 30000, 65536, &out, err,
	                         sizeof(err));
	if (r != PGKEEL_CHILD_OK) {
		fprintf(stderr, "rewind_probe: pg_waldump: %s\n", err);
		return 1;
	}
	stderr_text = slurp(path);
	unlink(path);
	end = pgkeel_waldump_checkpoint_end(lsn_arg(a[3]), out.data ? out.data : "", stderr_text);
	pgkeel_lsn_format(end, buf, sizeof(buf));
	puts(buf);
	pgkeel_child_output_free(&out);
	free(stderr_text);
	free(bin);
	free(waldir);
	return 0;
}

static int cmd_possible(char **a)
{
	char *bin = pgkeel_asprintf("%s/pg_controldata", a[1]);
	const char *argv[] = {bin, a[0], NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .env = c_env, .name = "pg_controldata"};
	struct pgkeel_child_output out;
	char err[512], why[256];
	json_object *cd;

	if (pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 30000, 65536, &out, err,
	                         sizeof(err)) != PGKEEL_CHILD_OK) {
		fprintf(stderr, "rewind_probe: pg_controldata: %s\n", err);
		return 1;
	}
	cd = pgkeel_controldata_parse(out.data);
	if (pgkeel_rewind_possible(true, cd, why, sizeof(why)))
		puts("yes");
	else
		printf("no: %s\n", why);
	json_object_put(cd);
	pgkeel_child_output_free(&out);
	free(bin);
	return 0;
}

static int cmd_run(char **a)
{
	char *prog = pgkeel_asprintf("%s/pg_rewind", a[0]);
	char **argv = pgkeel_rewind_argv(prog, a[1], a[2], false, NULL, NULL);
	static const char *const env[] = {"LANG=C", "LC_ALL=C", "PGOPTIONS=-c statement_timeout=0",
	                                  NULL};
	struct pgkeel_child_spec spec = {
	    .argv = (const char *const *)argv, .env = env, .name = "pg_rewind"};
	struct pgkeel_child_output out;
	char err[512];
	enum pgkeel_child_result r;

	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	r = pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 120000, 1 << 20, &out, err,
	                         sizeof(err));
	{
		bool ok =
		    r == PGKEEL_CHILD_OK && WIFEXITED(out.wstatus) && WEXITSTATUS(out.wstatus) == 0;
		char how[128];

		pgkeel_child_describe(out.wstatus, how, sizeof(how));
		printf("%s\n", out.data ? out.data : "");
		printf("result %s\n", ok ? "ok" : r == PGKEEL_CHILD_OK ? how : err);
		pgkeel_child_output_free(&out);
		pgkeel_rewind_argv_free(argv);
		free(prog);
		return ok ? 0 : 1;
	}
}

/* ---- check and job ---- */

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr, "usage: rewind_probe decide|checkpoint-end|possible|run ...\n"
	                "       rewind_probe check|job --config FILE --leader-name N "
	                "--leader-url URL [options]\n");
	exit(2);
}

static int64_t num_arg(const char *s)
{
	int64_t v;

	if (!pgkeel_parse_int64(s, &v) || v < 0)
		usage();
	return v;
}

static json_object *strings(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *lsn_json(int64_t lsn)
{
	char buf[32];

	pgkeel_lsn_format(lsn, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static void print(json_object *o)
{
	char *text = pgkeel_json_compact(o);

	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_object_put(o);
}

static const char *need_name(enum pgkeel_rewind_need need)
{
	return need == PGKEEL_REWIND_NEEDED       ? "NEEDED"
	       : need == PGKEEL_REWIND_NOT_NEEDED ? "NOT_NEEDED"
	                                          : "UNKNOWN";
}

static const char *result_name(enum pgkeel_rewind_result r)
{
	switch (r) {
	case PGKEEL_REWIND_RESULT_NONE:
		return "none";
	case PGKEEL_REWIND_SUCCESS:
		return "success";
	case PGKEEL_REWIND_RETRY:
		return "retry";
	case PGKEEL_REWIND_FAILED:
		return "failed";
	case PGKEEL_REWIND_REMOVED:
		return "removed";
	}
	return "?";
}

static void drive(struct pgkeel_rewind_job *j, int64_t slice_ms, int64_t timeout_ms,
                  int64_t cancel_after_ms, json_object *o)
{
	int64_t start = pgkeel_now_monotonic_ms(), max_overrun = 0;
	enum pgkeel_rewind_job_status st;
	struct pgkeel_rewind_job_info info;
	unsigned slices = 0;
	bool cancelled = false;

	for (;;) {
		int64_t deadline = pgkeel_now_monotonic_ms() + slice_ms, now;

		st = pgkeel_rewind_job_wait(j, deadline);
		now = pgkeel_now_monotonic_ms();
		slices++;
		if (now - deadline > max_overrun)
			max_overrun = now - deadline;
		if (st != PGKEEL_REWIND_JOB_RUNNING)
			break;
		if (!cancelled && ((cancel_after_ms > 0 && now - start >= cancel_after_ms) ||
		                   now - start > timeout_ms)) {
			pgkeel_rewind_job_cancel(j, now + 2000);
			cancelled = true;
		}
	}
	pgkeel_rewind_job_info(j, &info);
	json_object_object_add(
	    o, "status",
	    json_object_new_string(st == PGKEEL_REWIND_JOB_SUCCEEDED ? "succeeded" : "failed"));
	json_object_object_add(o, "result",
	                       json_object_new_string(result_name(pgkeel_rewind_job_result(j))));
	json_object_object_add(o, "error", json_object_new_string(pgkeel_rewind_job_error(j)));
	json_object_object_add(o, "crash_recovery", json_object_new_boolean(info.crash_recovery));
	json_object_object_add(o, "archived", json_object_new_int((int)info.archived));
	json_object_object_add(o, "wal_fetched", json_object_new_int((int)info.wal_fetched));
	json_object_object_add(o, "rewind_runs", json_object_new_int((int)info.rewind_runs));
	json_object_object_add(o, "argv", strings(info.rewind_argv));
	json_object_object_add(o, "env", strings(info.rewind_env));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "slices", json_object_new_int((int)slices));
	json_object_object_add(o, "max_overrun_ms", json_object_new_int64(max_overrun));
	json_object_object_add(o, "cancelled", json_object_new_boolean(cancelled));
}

static int cmd_check_or_job(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"run-as", required_argument, NULL, 'u'},
	    {"leader-name", required_argument, NULL, 'n'},
	    {"leader-url", required_argument, NULL, 'U'},
	    {"leader-role", required_argument, NULL, 'r'},
	    {"remote", no_argument, NULL, 'R'},
	    {"running", required_argument, NULL, 'x'},
	    {"server-version", required_argument, NULL, 'v'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"slice-ms", required_argument, NULL, 's'},
	    {"cancel-after-ms", required_argument, NULL, 'k'},
	    {"checkpoint-after-promote", required_argument, NULL, 'C'},
	    {"no-restore-target-wal", no_argument, NULL, 'W'},
	    {"pgpass", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = argv[1], *config = NULL, *run_as = NULL, *pgpass = NULL;
	struct pgkeel_rewind_leader leader = {.role = "master",
	                                      .checkpoint_after_promote = PGKEEL_TRI_ABSENT};
	int64_t timeout_ms = 60000, slice_ms = 100, cancel_after_ms = 0, running_lsn = 0;
	int64_t running_tli = 0, version = 0;
	bool running = false, no_restore = false;
	struct pgkeel_child_user user;
	struct pgkeel_config_opts copts;
	struct pgkeel_diag diag;
	struct pgkeel_config *cfg;
	json_object *o = json_object_new_object();
	char err[1024];
	int c;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'u':
			run_as = optarg;
			break;
		case 'n':
			leader.name = optarg;
			break;
		case 'U':
			leader.conn_url = optarg;
			break;
		case 'r':
			leader.role = optarg;
			break;
		case 'R':
			leader.remote = true;
			break;
		case 'x':
			/* --running TLI LSN */
			if (optind >= argc)
				usage();
			running = true;
			running_tli = num_arg(optarg);
			running_lsn = lsn_arg(argv[optind++]);
			break;
		case 'v':
			version = num_arg(optarg);
			break;
		case 't':
			timeout_ms = num_arg(optarg);
			break;
		case 's':
			slice_ms = num_arg(optarg);
			break;
		case 'k':
			cancel_after_ms = num_arg(optarg);
			break;
		case 'C':
			leader.checkpoint_after_promote =
			    strcmp(optarg, "true") == 0    ? PGKEEL_TRI_TRUE
			    : strcmp(optarg, "false") == 0 ? PGKEEL_TRI_FALSE
			                                   : PGKEEL_TRI_ABSENT;
			break;
		case 'W':
			no_restore = true;
			break;
		case 'p':
			pgpass = optarg;
			break;
		default:
			usage();
		}
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
	if (run_as != NULL && !pgkeel_child_user_lookup(run_as, &user, err, sizeof(err))) {
		fprintf(stderr, "rewind_probe: %s\n", err);
		return 2;
	}

	if (strcmp(cmd, "check") == 0) {
		struct pgkeel_rewind_check_opts co = {
		    .cfg = cfg,
		    .user = run_as != NULL ? &user : NULL,
		    .leader = leader.name != NULL ? &leader : NULL,
		    .server_version = (int)version,
		    .running = running,
		    .running_tli = running_tli,
		    .running_lsn = running_lsn,
		    .deadline_ms = pgkeel_now_monotonic_ms() + timeout_ms,
		};
		struct pgkeel_rewind_check_result r;
		int64_t start = pgkeel_now_monotonic_ms();

		json_object_object_add(
		    o, "need", json_object_new_string(need_name(pgkeel_rewind_check(&co, &r))));
		json_object_object_add(o, "elapsed_ms",
		                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
		json_object_object_add(o, "reason", json_object_new_string(r.reason));
		json_object_object_add(o, "in_recovery", json_object_new_boolean(r.in_recovery));
		json_object_object_add(o, "local_tli", json_object_new_int64(r.local_tli));
		json_object_object_add(o, "local_lsn", lsn_json(r.local_lsn));
		json_object_object_add(o, "leader_tli", json_object_new_int64(r.leader_tli));
		json_object_object_add(o, "switchpoint", lsn_json(r.switchpoint));
		json_object_object_add(o, "checkpoint_end", lsn_json(r.checkpoint_end));
	} else {
		struct pgkeel_rewind_job_opts jo = {
		    .cfg = cfg,
		    .user = run_as != NULL ? &user : NULL,
		    .pgpass_path = pgpass,
		    .leader = &leader,
		    .server_version = (int)version,
		    .no_restore_target_wal = no_restore,
		};
		struct pgkeel_rewind_job *j = pgkeel_rewind_job_start(&jo, err, sizeof(err));

		if (j == NULL) {
			json_object_object_add(o, "status", json_object_new_string("refused"));
			json_object_object_add(o, "error", json_object_new_string(err));
		} else {
			drive(j, slice_ms, timeout_ms, cancel_after_ms, o);
			pgkeel_rewind_job_free(j);
		}
	}
	pgkeel_config_unref(cfg);
	print(o);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "check") == 0 || strcmp(argv[1], "job") == 0))
		return cmd_check_or_job(argc, argv);
	if (argc == 8 && strcmp(argv[1], "decide") == 0)
		return cmd_decide(argv + 2);
	if (argc == 6 && strcmp(argv[1], "checkpoint-end") == 0)
		return cmd_checkpoint_end(argv + 2);
	if (argc == 4 && strcmp(argv[1], "possible") == 0)
		return cmd_possible(argv + 2);
	if (argc == 5 && strcmp(argv[1], "run") == 0)
		return cmd_run(argv + 2);
	usage();
}
