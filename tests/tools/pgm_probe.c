/*
 * pgm_probe: drive core/pg_manager.c from tests/integration/test_pg_manager.py.
 * Run as the PostgreSQL user.  Reads one command per line on stdin, answers
 * one JSON line on stdout:
 *
 *   refresh [DEADLINE_MS]      the state (see print_state), and how long it took
 *   submit KIND [ARGS]         {"ok":bool,"err":...}; KIND and ARGS:
 *       start primary | start replica [HOST PORT] | stop fast|immediate|smart
 *       | restart | reload | promote | demote MODE [HOST PORT] | follow [HOST PORT]
 *       | bootstrap | post_bootstrap | create_replica [HOST PORT] | reinitialize HOST PORT
 *   busy-refresh MS            refresh every 50 ms while an action runs (at most MS):
 *                              {"refreshes":N,"max_ms":M,"busy_seen":bool}
 *   wait MS                    wait until idle: {"idle":bool,"result":{...}|null}
 *   stopped                    pgkeel_pgm_take_stopped: {"stopped":bool,"lsn":N}
 *   quit
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "pg_manager.h"
#include "util.h"

static void emit(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

static json_object *state_json(const struct pgkeel_pgm_state *s, int64_t took_ms)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "busy", json_object_new_boolean(s->busy));
	json_object_object_add(o, "action", json_object_new_string(s->action));
	json_object_object_add(o, "empty", json_object_new_boolean(s->data_dir_empty));
	json_object_object_add(o, "dir_error", json_object_new_boolean(s->data_dir_error));
	json_object_object_add(o, "sysid", json_object_new_string(s->sysid));
	json_object_object_add(o, "server_version", json_object_new_int(s->server_version));
	json_object_object_add(o, "state", json_object_new_string(s->ctl.state_name));
	json_object_object_add(o, "role",
	                       json_object_new_string(pgkeel_pgctl_role_name(s->ctl.role)));
	json_object_object_add(o, "pid", json_object_new_int(s->ctl.pid));
	json_object_object_add(o, "adopted", json_object_new_boolean(s->ctl.adopted));
	json_object_object_add(o, "running", json_object_new_boolean(s->running));
	json_object_object_add(o, "queried", json_object_new_boolean(s->queried));
	json_object_object_add(o, "query_error", json_object_new_string(s->query_error));
	json_object_object_add(o, "checkpoint_pending",
	                       json_object_new_boolean(s->checkpoint_pending));
	if (s->status != NULL) {
		json_object_object_add(o, "in_recovery",
		                       json_object_new_boolean(s->status->in_recovery));
		json_object_object_add(o, "timeline", json_object_new_int(s->status->timeline));
	}
	json_object_object_add(o, "took_ms", json_object_new_int64(took_ms));
	return o;
}

static json_object *result_json(const struct pgkeel_pgm_result *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(pgkeel_pgm_kind_name(r->kind)));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(o, "timed_out", json_object_new_boolean(r->timed_out));
	json_object_object_add(o, "cancelled", json_object_new_boolean(r->cancelled));
	json_object_object_add(o, "err", json_object_new_string(r->err));
	return o;
}

static const struct {
	const char *name;
	enum pgkeel_pgm_kind kind;
} kinds[] = {
    {"start", PGKEEL_PGM_START},
    {"stop", PGKEEL_PGM_STOP},
    {"restart", PGKEEL_PGM_RESTART},
    {"reload", PGKEEL_PGM_RELOAD},
    {"promote", PGKEEL_PGM_PROMOTE},
    {"demote", PGKEEL_PGM_DEMOTE},
    {"follow", PGKEEL_PGM_FOLLOW},
    {"bootstrap", PGKEEL_PGM_BOOTSTRAP},
    {"post_bootstrap", PGKEEL_PGM_POST_BOOTSTRAP},
    {"create_replica", PGKEEL_PGM_CREATE_REPLICA},
    {"reinitialize", PGKEEL_PGM_REINITIALIZE},
};

/* HOST PORT from words[i], words[i+1] into t (a replica of that address). */
static void upstream_words(char **w, size_t n, size_t i, struct pgkeel_pgm_target *t)
{
	if (i + 1 >= n)
		return;
	t->has_upstream = true;
	(void)pgkeel_fmt(t->host, sizeof(t->host), "%s", w[i]);
	(void)pgkeel_fmt(t->port, sizeof(t->port), "%s", w[i + 1]);
}

static void submit(struct pgkeel_pgm *m, char **w, size_t n)
{
	struct pgkeel_pgm_request r;
	json_object *o = json_object_new_object();
	char err[512] = "";
	size_t i;
	bool ok = false, known = false;

	memset(&r, 0, sizeof(r));
	r.target.role = PGKEEL_PG_REPLICA;
	for (i = 0; n > 1 && i < PGKEEL_ARRAY_LEN(kinds); i++)
		if (strcmp(w[1], kinds[i].name) == 0) {
			r.kind = kinds[i].kind;
			known = true;
		}
	if (!known) {
		(void)pgkeel_fmt(err, sizeof(err), "unknown action");
	} else {
		switch (r.kind) {
		case PGKEEL_PGM_START:
			if (n > 2 && strcmp(w[2], "primary") == 0)
				r.target.role = PGKEEL_PG_PRIMARY;
			upstream_words(w, n, 3, &r.target);
			break;
		case PGKEEL_PGM_STOP:
			if (n < 3 || !pgkeel_pgctl_stop_mode_parse(w[2], &r.stop_mode))
				r.stop_mode = PGKEEL_PGCTL_FAST;
			break;
		case PGKEEL_PGM_RESTART:
		case PGKEEL_PGM_RELOAD:
			if (n > 2 && strcmp(w[2], "primary") == 0)
				r.target.role = PGKEEL_PG_PRIMARY;
			upstream_words(w, n, 3, &r.target);
			break;
		case PGKEEL_PGM_DEMOTE:
			if (n < 3 || !pgkeel_demote_mode_parse(w[2], &r.demote_mode))
				r.demote_mode = PGKEEL_DEMOTE_GRACEFUL;
			upstream_words(w, n, 3, &r.target);
			break;
		case PGKEEL_PGM_BOOTSTRAP:
			r.target.role = PGKEEL_PG_PRIMARY;
			break;
		default:
			upstream_words(w, n, 2, &r.target);
			break;
		}
		ok = pgkeel_pgm_submit(m, &r, err, sizeof(err));
	}
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "err", json_object_new_string(err));
	emit(o);
}

static void busy_refresh(struct pgkeel_pgm *m, int64_t ms)
{
	int64_t end = pgkeel_now_monotonic_ms() + ms, max_ms = 0;
	json_object *o = json_object_new_object();
	bool busy_seen = false;
	int n = 0;
	char buf[64];

	while (pgkeel_now_monotonic_ms() < end && pgkeel_pgm_busy(m, buf, sizeof(buf)) != NULL) {
		struct pgkeel_pgm_state s;
		int64_t t0 = pgkeel_now_monotonic_ms(), took;

		pgkeel_pgm_refresh(m, t0 + 2000, &s);
		took = pgkeel_now_monotonic_ms() - t0;
		if (took > max_ms)
			max_ms = took;
		busy_seen = busy_seen || s.busy;
		pgkeel_pgm_state_clear(&s);
		n++;
		(void)pgkeel_pgm_wait_idle(m, pgkeel_now_monotonic_ms() + 50);
	}
	json_object_object_add(o, "refreshes", json_object_new_int(n));
	json_object_object_add(o, "max_ms", json_object_new_int64(max_ms));
	json_object_object_add(o, "busy_seen", json_object_new_boolean(busy_seen));
	emit(o);
}

static void run_command(struct pgkeel_pgm *m, char *line)
{
	char *w[8], *save = NULL, *tok;
	size_t n = 0;

	for (tok = strtok_r(line, " ", &save); tok != NULL && n < PGKEEL_ARRAY_LEN(w);
	     tok = strtok_r(NULL, " ", &save))
		w[n++] = tok;
	if (n == 0)
		return;
	if (strcmp(w[0], "refresh") == 0) {
		struct pgkeel_pgm_state s;
		int64_t t0 = pgkeel_now_monotonic_ms();

		pgkeel_pgm_refresh(m, t0 + (n > 1 ? atoi(w[1]) : 3000), &s);
		emit(state_json(&s, pgkeel_now_monotonic_ms() - t0));
		pgkeel_pgm_state_clear(&s);
	} else if (strcmp(w[0], "submit") == 0) {
		submit(m, w, n);
	} else if (strcmp(w[0], "stopped") == 0) {
		json_object *o = json_object_new_object();
		int64_t lsn = -1;
		bool stopped = pgkeel_pgm_take_stopped(m, &lsn);

		json_object_object_add(o, "stopped", json_object_new_boolean(stopped));
		json_object_object_add(o, "lsn", json_object_new_int64(lsn));
		emit(o);
	} else if (strcmp(w[0], "busy-refresh") == 0 && n > 1) {
		busy_refresh(m, atoi(w[1]));
	} else if (strcmp(w[0], "wait") == 0 && n > 1) {
		json_object *o = json_object_new_object();
		struct pgkeel_pgm_result r;
		bool idle = pgkeel_pgm_wait_idle(m, pgkeel_now_monotonic_ms() + atoi(w[1]));

		json_object_object_add(o, "idle", json_object_new_boolean(idle));
		json_object_object_add(o, "result",
		                       idle && pgkeel_pgm_take_result(m, &r) ? result_json(&r) : NULL);
		emit(o);
	} else {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string("unknown command"));
		emit(o);
	}
}

int main(int argc, char **argv)
{
	struct pgkeel_config_opts copts = {0};
	struct pgkeel_pgm_opts mopts = {0};
	struct pgkeel_diag diag;
	struct pgkeel_config *cfg;
	struct pgkeel_pgm *m;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (argc != 3 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: pgm_probe --config FILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pgkeel_diag_init(&diag);
	cfg = pgkeel_config_load(argv[2], &copts, &diag);
	if (cfg == NULL) {
		pgkeel_diag_log(&diag);
		pgkeel_diag_clear(&diag);
		return 1;
	}
	pgkeel_diag_clear(&diag);
	mopts.cfg = cfg;
	m = pgkeel_pgm_new(&mopts);
	while ((len = getline(&line, &cap, stdin)) != -1) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		run_command(m, line);
	}
	free(line);
	pgkeel_pgm_free(m, pgkeel_now_monotonic_ms() + 5000);
	pgkeel_config_unref(cfg);
	return 0;
}
