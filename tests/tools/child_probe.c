/*
 * child_probe: both ends of the core/child.c tests.
 *
 *   child_probe report
 *       Print what this process inherited: pid, session and group ids,
 *       credentials, working directory, open descriptors (the one used to
 *       list them excluded), the SigBlk/SigIgn lines of /proc/self/status
 *       and the environment, one "key value" line each.
 *
 *   child_probe run [--user NAME] [--cwd DIR] [--env NAME=VALUE]...
 *                   [--out-file PATH] [--timeout-ms N] -- PROGRAM [ARG]...
 *       Start PROGRAM through pgkeel_child_* and print its stdout, then a
 *       line "result: ok|timeout" and "status: <description>".  With
 *       --out-file, stdout and stderr go to PATH (appended) and nothing is
 *       captured.  A start failure prints "error: <message>" on stderr and
 *       exits 3.  Used by tests/integration/test_child.py for the
 *       "as another user" path, which needs root.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

static int report(void)
{
	char cwd[PATH_MAX], line[512];
	gid_t groups[256];
	struct dirent *e;
	FILE *f;
	DIR *d;
	int i, n;

	printf("pid %d\nsid %d\npgid %d\n", (int)getpid(), (int)getsid(0), (int)getpgid(0));
	printf("uid %u\ngid %u\n", (unsigned)getuid(), (unsigned)getgid());
	printf("euid %u\negid %u\ngroups ", (unsigned)geteuid(), (unsigned)getegid());
	n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
	for (i = 0; i < n; i++)
		printf("%s%u", i > 0 ? "," : "", (unsigned)groups[i]);
	printf("\ncwd %s\n", getcwd(cwd, sizeof(cwd)) != NULL ? cwd : "?");

	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 1;
	while ((e = readdir(d)) != NULL) {
		char path[64], target[PATH_MAX];
		ssize_t len;

		if (e->d_name[0] == '.' || strtol(e->d_name, NULL, 10) == dirfd(d))
			continue;
		if (!pgkeel_fmt(path, sizeof(path), "/proc/self/fd/%s", e->d_name))
			return 1;
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		printf("fd %s %s\n", e->d_name, target);
	}
	closedir(d);

	f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SigBlk:", 7) == 0 || strncmp(line, "SigIgn:", 7) == 0)
			fputs(line, stdout);
	}
	fclose(f);
	for (i = 0; environ[i] != NULL; i++)
		printf("env %s\n", environ[i]);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: child_probe report | run [options] -- PROGRAM [ARG]...\n");
	return 2;
}

static int run(int argc, char **argv)
{
	struct pgkeel_child_spec spec;
	struct pgkeel_child_user user;
	const char *env[32];
	size_t nenv = 0;
	int64_t timeout_ms = 10000, deadline;
	char err[512], desc[128];
	int i;

	memset(&spec, 0, sizeof(spec));
	spec.err.mode = PGKEEL_CHILD_OUT_INHERIT;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--user") == 0) {
			if (!pgkeel_child_user_lookup(argv[++i], &user, err, sizeof(err))) {
				fprintf(stderr, "error: %s\n", err);
				return 3;
			}
			spec.user = &user;
		} else if (strcmp(argv[i], "--cwd") == 0) {
			spec.cwd = argv[++i];
		} else if (strcmp(argv[i], "--env") == 0 && nenv + 1 < PGKEEL_ARRAY_LEN(env)) {
			env[nenv++] = argv[++i];
		} else if (strcmp(argv[i], "--out-file") == 0) {
			spec.out.mode = PGKEEL_CHILD_OUT_FILE;
			spec.out.path = argv[++i];
			spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
		} else if (strcmp(argv[i], "--timeout-ms") == 0) {
			if (!pgkeel_parse_int64(argv[++i], &timeout_ms))
				return usage();
		} else {
			return usage();
		}
	}
	if (i + 1 >= argc)
		return usage();
	env[nenv] = NULL;
	spec.env = env;
	spec.argv = (const char *const *)&argv[i + 1];
	deadline = pgkeel_now_monotonic_ms() + timeout_ms;

	if (spec.out.mode == PGKEEL_CHILD_OUT_FILE) {
		struct pgkeel_child c = PGKEEL_CHILD_INIT;
		enum pgkeel_child_state st;

		if (!pgkeel_child_spawn(&spec, &c, err, sizeof(err))) {
			fprintf(stderr, "error: %s\n", err);
			return 3;
		}
		st = pgkeel_child_wait(&c, deadline);
		pgkeel_child_describe(c.reaped ? c.wstatus : 0, desc, sizeof(desc));
		printf("result: %s\nstatus: %s\n", st == PGKEEL_CHILD_EXITED ? "ok" : "timeout",
		       c.reaped ? desc : "still running");
		pgkeel_child_free(&c);
	} else {
		struct pgkeel_child_output out;
		enum pgkeel_child_result r;

		r = pgkeel_child_capture(&spec, deadline, 1 << 20, &out, err, sizeof(err));
		if (r == PGKEEL_CHILD_FAILED) {
			fprintf(stderr, "error: %s\n", err);
			pgkeel_child_output_free(&out);
			return 3;
		}
		pgkeel_child_describe(out.wstatus, desc, sizeof(desc));
		fwrite(out.data, 1, out.len, stdout);
		printf("result: %s\nstatus: %s\n", r == PGKEEL_CHILD_OK ? "ok" : "timeout", desc);
		pgkeel_child_output_free(&out);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return report();
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run(argc - 2, argv + 2);
	return usage();
}
