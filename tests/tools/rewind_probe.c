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
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "pg_data.h"
#include "pg_rewind.h"
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
	puts(need == PGKEEL_REWIND_NEEDED ? "NEEDED"
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
	end = pgkeel_waldump_checkpoint_end(lsn_arg(a[3]), out.data ? out.data : "",
	                                    stderr_text);
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
	char **argv = pgkeel_rewind_argv(a[0], a[1], a[2], false, NULL, NULL);
	static const char *const env[] = {"LANG=C", "LC_ALL=C",
	                                  "PGOPTIONS=-c statement_timeout=0", NULL};
	struct pgkeel_child_spec spec = {.argv = (const char *const *)argv, .env = env,
	                                 .name = "pg_rewind"};
	struct pgkeel_child_output out;
	char err[512];
	enum pgkeel_child_result r;

	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	r = pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 120000, 1 << 20, &out, err,
	                         sizeof(err));
	{
		bool ok = r == PGKEEL_CHILD_OK && WIFEXITED(out.wstatus) &&
		          WEXITSTATUS(out.wstatus) == 0;
		char how[128];

		pgkeel_child_describe(out.wstatus, how, sizeof(how));
		printf("%s\n", out.data ? out.data : "");
		printf("result %s\n", ok ? "ok" : r == PGKEEL_CHILD_OK ? how : err);
		pgkeel_child_output_free(&out);
		pgkeel_rewind_argv_free(argv);
		return ok ? 0 : 1;
	}
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "decide") == 0)
		return cmd_decide(argv + 2);
	if (argc == 6 && strcmp(argv[1], "checkpoint-end") == 0)
		return cmd_checkpoint_end(argv + 2);
	if (argc == 4 && strcmp(argv[1], "possible") == 0)
		return cmd_possible(argv + 2);
	if (argc == 5 && strcmp(argv[1], "run") == 0)
		return cmd_run(argv + 2);
	fprintf(stderr, "usage: rewind_probe decide|checkpoint-end|possible|run ...\n");
	return 2;
}
