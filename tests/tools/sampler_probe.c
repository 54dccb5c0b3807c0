/*
 * sampler_probe: drive core/sampler.c from tests/integration/test_sampler.py.
 * Run as the PostgreSQL user.  Reads one command per line on stdin, answers
 * one JSON line on stdout.  The probe plays the HA loop: it publishes the
 * loop part the sampler reads, and looks at the pg part it publishes.
 *
 *   loop STATE                 publish a loop part with pg_state STATE
 *   start [INTERVAL [TIMEOUT [VALID]]]   start the sampler (ms; 0: default)
 *   sample                     the current pg part: {"have","status","in_recovery",
 *                              "timeline","left_ms" (valid_until - now)}
 *   watch MS                   every part published during MS ms, in order:
 *                              {"parts":[{"t":ms since the command,"status":bool,
 *                              "left_ms":N,"timeline":N}]}
 *   wait-status 0|1 MS         until the current part has (1) or lacks (0) a valid
 *                              status, at most MS: {"ok":bool,"took_ms":N}
 *   suspend MS                 {"closed":bool,"took_ms":N}
 *   resume                     {}
 *   pid                        {"pid":N} (the sampler's backend)
 *   stop [DELAY]               stop (DELAY: DELAY ms after the next publish):
 *                              {"joined":bool,"took_ms":N}
 *   quiet MS                   after stop: was anything published during MS ms?
 *                              {"published":bool}
 *   quit
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "pg_query.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

static void emit(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

static void nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int64_t arg_ms(char **w, size_t n, size_t i, int64_t dflt)
{
	int64_t v;

	return i < n && pgkeel_parse_int64(w[i], &v) ? v : dflt;
}

static json_object *part_json(const struct pgkeel_state_pg *p)
{
	json_object *o = json_object_new_object();
	bool status = p != NULL && p->status != NULL;

	json_object_object_add(o, "have", json_object_new_boolean(p != NULL));
	json_object_object_add(o, "status", json_object_new_boolean(status));
	if (status) {
		json_object_object_add(o, "in_recovery",
		                       json_object_new_boolean(p->status->in_recovery));
		json_object_object_add(o, "timeline", json_object_new_int64(p->timeline));
		json_object_object_add(
		    o, "left_ms",
		    json_object_new_int64(p->valid_until_ms - pgkeel_now_boottime_ms()));
	}
	return o;
}

/* The current part (a reference; NULL when none). */
static struct pgkeel_state_pg *current_part(void)
{
	struct pgkeel_state_view v;
	struct pgkeel_state_pg *p;

	pgkeel_state_acquire(&v);
	p = v.pg;
	v.pg = NULL;
	pgkeel_state_release(&v);
	return p;
}

/*
 * Wait (at most ms) until a part other than *last is published; *last then
 * holds it (the old one released).  Holding a reference keeps its address
 * from being reused by the next part.
 */
static bool next_part(struct pgkeel_state_pg **last, int64_t until)
{
	while (pgkeel_now_monotonic_ms() < until) {
		struct pgkeel_state_pg *p = current_part();

		if (p != *last) {
			pgkeel_state_pg_unref(*last);
			*last = p;
			return true;
		}
		pgkeel_state_pg_unref(p);
		nap_ms(2);
	}
	return false;
}

static void watch(int64_t ms)
{
	int64_t t0 = pgkeel_now_monotonic_ms();
	struct pgkeel_state_pg *last = current_part();
	json_object *o = json_object_new_object(), *parts = json_object_new_array();

	while (next_part(&last, t0 + ms)) {
		json_object *e = part_json(last);

		json_object_object_add(e, "t",
		                       json_object_new_int64(pgkeel_now_monotonic_ms() - t0));
		json_object_array_add(parts, e);
	}
	pgkeel_state_pg_unref(last);
	json_object_object_add(o, "parts", parts);
	emit(o);
}

static void wait_status(bool want, int64_t ms)
{
	int64_t t0 = pgkeel_now_monotonic_ms();
	json_object *o = json_object_new_object();
	bool ok = false;

	while (!ok && pgkeel_now_monotonic_ms() < t0 + ms) {
		struct pgkeel_state_pg *p = current_part();
		bool has =
		    p != NULL && p->status != NULL && pgkeel_now_boottime_ms() < p->valid_until_ms;

		pgkeel_state_pg_unref(p);
		ok = has == want;
		if (!ok)
			nap_ms(5);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "took_ms", json_object_new_int64(pgkeel_now_monotonic_ms() - t0));
	emit(o);
}

static void publish_loop(const char *pg_state)
{
	struct pgkeel_state_loop *l = pgkeel_state_loop_new();

	l->name = pgkeel_strdup("probe");
	l->scope = pgkeel_strdup("probe");
	l->pg_state = pgkeel_strdup(pg_state);
	l->pg_running = true;
	pgkeel_state_publish_loop(l);
}

struct probe {
	struct pgkeel_config *cfg;
	struct pgkeel_sampler *s;
};

static void stop(struct probe *pr, char **w, size_t n)
{
	json_object *o = json_object_new_object();
	int64_t t0;
	bool joined;

	if (n > 1) {
		struct pgkeel_state_pg *last = current_part();

		(void)next_part(&last, pgkeel_now_monotonic_ms() + 5000);
		pgkeel_state_pg_unref(last);
		nap_ms((int)arg_ms(w, n, 1, 0));
	}
	t0 = pgkeel_now_monotonic_ms();
	joined = pgkeel_sampler_stop(pr->s);
	pr->s = NULL;
	json_object_object_add(o, "joined", json_object_new_boolean(joined));
	json_object_object_add(o, "took_ms", json_object_new_int64(pgkeel_now_monotonic_ms() - t0));
	emit(o);
}

static void run_command(struct probe *pr, char *line)
{
	char *w[8], *save = NULL, *tok;
	json_object *o;
	size_t n = 0;

	for (tok = strtok_r(line, " ", &save); tok != NULL && n < PGKEEL_ARRAY_LEN(w);
	     tok = strtok_r(NULL, " ", &save))
		w[n++] = tok;
	if (n == 0)
		return;
	o = json_object_new_object();
	if (strcmp(w[0], "loop") == 0 && n > 1) {
		publish_loop(w[1]);
	} else if (strcmp(w[0], "start") == 0 && pr->s == NULL) {
		struct pgkeel_sampler_opts so = {
		    .cfg = pr->cfg,
		    .interval_ms = (int)arg_ms(w, n, 1, 0),
		    .query_timeout_ms = (int)arg_ms(w, n, 2, 0),
		    .valid_ms = (int)arg_ms(w, n, 3, 0),
		};

		pr->s = pgkeel_sampler_start(&so);
	} else if (strcmp(w[0], "sample") == 0) {
		struct pgkeel_state_pg *p = current_part();

		json_object_put(o);
		o = part_json(p);
		pgkeel_state_pg_unref(p);
	} else if (strcmp(w[0], "watch") == 0 && n > 1) {
		json_object_put(o);
		watch(arg_ms(w, n, 1, 0));
		return;
	} else if (strcmp(w[0], "wait-status") == 0 && n > 2) {
		json_object_put(o);
		wait_status(strcmp(w[1], "1") == 0, arg_ms(w, n, 2, 0));
		return;
	} else if (strcmp(w[0], "suspend") == 0 && pr->s != NULL && n > 1) {
		int64_t t0 = pgkeel_now_monotonic_ms();
		bool closed = pgkeel_sampler_suspend(pr->s, t0 + arg_ms(w, n, 1, 0));

		json_object_object_add(o, "closed", json_object_new_boolean(closed));
		json_object_object_add(o, "took_ms",
		                       json_object_new_int64(pgkeel_now_monotonic_ms() - t0));
	} else if (strcmp(w[0], "resume") == 0 && pr->s != NULL) {
		pgkeel_sampler_resume(pr->s);
	} else if (strcmp(w[0], "pid") == 0 && pr->s != NULL) {
		json_object_object_add(o, "pid",
		                       json_object_new_int(pgkeel_sampler_backend_pid(pr->s)));
	} else if (strcmp(w[0], "stop") == 0 && pr->s != NULL) {
		json_object_put(o);
		stop(pr, w, n);
		return;
	} else if (strcmp(w[0], "quiet") == 0 && n > 1) {
		struct pgkeel_state_pg *last = current_part();
		bool published = next_part(&last, pgkeel_now_monotonic_ms() + arg_ms(w, n, 1, 0));

		pgkeel_state_pg_unref(last);
		json_object_object_add(o, "published", json_object_new_boolean(published));
	} else {
		json_object_object_add(o, "error", json_object_new_string("unknown command"));
	}
	emit(o);
}

int main(int argc, char **argv)
{
	struct pgkeel_config_opts copts = {0};
	struct pgkeel_diag diag;
	struct probe pr = {0};
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (argc != 3 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: sampler_probe --config FILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pgkeel_diag_init(&diag);
	pr.cfg = pgkeel_config_load(argv[2], &copts, &diag);
	if (pr.cfg == NULL) {
		pgkeel_diag_log(&diag);
		pgkeel_diag_clear(&diag);
		return 1;
	}
	pgkeel_diag_clear(&diag);
	while ((len = getline(&line, &cap, stdin)) != -1) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		run_command(&pr, line);
	}
	free(line);
	(void)pgkeel_sampler_stop(pr.s);
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_publish_pg(NULL);
	pgkeel_config_unref(pr.cfg);
	return 0;
}
