/*
 * wd_probe: drive core/watchdog.c against a device (the fake one in
 * tests/integration/test_watchdog.py: run under fake_watchdog_preload.so).
 *
 *   wd_probe CONFIG.yml
 *
 * The settings come from the configuration file as the daemon reads it
 * (watchdog section, ttl and loop_wait from bootstrap.dcs).  Commands are
 * read from stdin, one a line; each answers one line on stdout:
 *   activate              "activate ok" | "activate fail"
 *   keepalive             "keepalive"
 *   feed MS EVERY_MS      keepalive every EVERY_MS for MS: "fed N"
 *   disable               "disable"
 *   status                "status running=0|1 healthy=0|1 timeout=N"
 *   reload CONFIG.yml     "reload" (or "error ..." when it does not load)
 *   spawn                 fork a child that sleeps in this process group:
 *                         "spawn pid=N"
 *   exit (or end of input) free the watchdog (left running if it runs) and
 *                         exit 0
 * The module's log lines go to stderr.  Exit 2: usage or configuration.
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util.h"
#include "watchdog.h"

static bool load_settings(const char *path, struct pgkeel_watchdog_settings *s)
{
	struct pgkeel_config_opts opts = {0};
	struct pgkeel_config *c;
	struct pgkeel_diag d;

	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	pgkeel_diag_log(&d);
	pgkeel_diag_clear(&d);
	if (c == NULL)
		return false;
	pgkeel_watchdog_settings_from_config(c, s);
	pgkeel_config_unref(c);
	return true;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1)
		;
}

int main(int argc, char **argv)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;
	char line[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: wd_probe CONFIG.yml < commands\n");
		return 2;
	}
	if (!load_settings(argv[1], &s))
		return 2;
	w = pgkeel_watchdog_new(&s);
	if (w == NULL)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char arg[4096];
		long a = 0, b = 0;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "activate") == 0) {
			printf("activate %s\n", pgkeel_watchdog_activate(w) ? "ok" : "fail");
		} else if (strcmp(line, "keepalive") == 0) {
			pgkeel_watchdog_keepalive(w);
			printf("keepalive\n");
		} else if (sscanf(line, "feed %ld %ld", &a, &b) == 2 && b > 0) {
			int64_t until = pgkeel_now_monotonic_ms() + a;
			int n = 0;

			while (pgkeel_now_monotonic_ms() < until) {
				pgkeel_watchdog_keepalive(w);
				n++;
				sleep_ms(b);
			}
			printf("fed %d\n", n);
		} else if (strcmp(line, "disable") == 0) {
			pgkeel_watchdog_disable(w);
			printf("disable\n");
		} else if (strcmp(line, "status") == 0) {
			printf("status running=%d healthy=%d timeout=%d\n",
			       pgkeel_watchdog_is_running(w) ? 1 : 0,
			       pgkeel_watchdog_is_healthy(w) ? 1 : 0,
			       pgkeel_watchdog_running_timeout(w));
		} else if (sscanf(line, "reload %4095s", arg) == 1) {
			if (load_settings(arg, &s)) {
				pgkeel_watchdog_reload(w, &s);
				printf("reload\n");
			} else {
				printf("error %s does not load\n", arg);
			}
		} else if (strcmp(line, "spawn") == 0) {
			pid_t pid;

			fflush(stdout);
			pid = fork();
			if (pid == 0) {
				close_range(3, ~0U, 0); /* not the device: it would stay open */
				for (;;)
					pause();
			}
			printf("spawn pid=%d\n", (int)pid);
		} else if (strcmp(line, "exit") == 0) {
			break;
		} else {
			printf("error unknown command: %s\n", line);
		}
	}
	pgkeel_watchdog_free(w);
	return 0;
}
