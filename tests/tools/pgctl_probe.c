/*
 * pgctl_probe: drive core/pg_ctl.c from tests/integration/test_pg_ctl.py.
 * One struct pgkeel_pgctl (and one pg_query handle for readiness and SQL)
 * lives for the whole run, so a test can kill the probe and let a new one
 * adopt the postmaster.
 *
 *   pgctl_probe --data-dir D [--bin-dir B] [--config YML] [--log PATH]
 *               [--log-max BYTES] [--host H] [--port N] [--user U]
 *
 * Like the daemon, the probe blocks SIGHUP/SIGTERM/SIGINT/SIGCHLD/SIGUSR1
 * and ignores SIGPIPE/SIGWINCH/SIGTSTP, and it holds a socket and an
 * eventfd opened without close-on-exec: a postmaster must inherit none of
 * that (command `fds`).
 *
 * Commands on stdin, one per line; each answers one JSON line on stdout
 * with "cmd", "ok", "err", "elapsed_ms" and "status" (the pgctl status):
 *   fds                        the probe's own extra descriptors
 *   config YML                 load another configuration
 *   write ROLE [HOST PORT]     pgkeel_pgctl_write_config (needs --config); ROLE
 *                              primary|replica (replica: recovery, upstream HOST:PORT)
 *   start MS [ROLE]            pgkeel_pgctl_start with the written argv, ready deadline MS
 *   startx MS ROLE ARG...      the same with this command line
 *   wait MS                    pgkeel_pgctl_wait_ready
 *   poll                       pgkeel_pgctl_poll (connection deadline 2 s)
 *   adopt                      pgkeel_pgctl_adopt
 *   running                    pgkeel_pgctl_is_running
 *   status
 *   stop MODE MS               pgkeel_pgctl_stop, SIGKILL deadline MS from now
 *   stop-begin MODE / stop-wait MS / kill
 *   restart STOP_MS READY_MS   pgkeel_pgctl_restart (written argv)
 *   reload
 *   promote MS                 pgkeel_pgctl_promote + wait_promoted, deadline MS
 *   sql MS SQL...              the first column of the first row (null for none)
 *   pending MS                 names with pending_restart (pg_query)
 *   close                      close the pg_query connection
 *   reason PID TEXT            pgkeel_pgctl_log_reason on TEXT (\n for newlines)
 *   demote MODE CKPT_MS STOP_MS READY_MS [HOST PORT]
 *                              pgkeel_demote (core/pg_demote.c): deadlines from now,
 *                              upstream HOST:PORT (none without)
 *   demote-stop MODE CKPT_MS STOP_MS    pgkeel_demote_stop
 *   demote-start MODE READY_MS [HOST PORT]  pgkeel_demote_start
 *   follow STOP_MS READY_MS [HOST PORT] pgkeel_demote_follow
 *   quit                       exit, leaving PostgreSQL as it is
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "config.h"
#include "pg_conf.h"
#include "pg_ctl.h"
#include "pg_demote.h"
#include "pg_query.h"
#include "util.h"

#define MAX_ARGS 64

struct probe {
	struct pgkeel_pgctl *ctl;
	struct pgkeel_pg *pg;
	struct pgkeel_config *cfg;
	struct pgkeel_pg_files files;
	bool have_files;
	int sock_fd;
	int event_fd;
};

static void usage(void)
{
	fprintf(stderr,
	        "usage: pgctl_probe --data-dir D [--bin-dir B] [--config YML] [--log PATH]\n"
	        "       [--log-max BYTES] [--host H] [--port N] [--user U] < commands\n");
	exit(2);
}

static int64_t int_arg(const char *s)
{
	int64_t v;

	if (s == NULL || !pgkeel_parse_int64(s, &v) || v < -1000000000 || v > 1000000000)
		return -1;
	return v;
}

static int split(char *line, char **argv)
{
	int n = 0;
	char *p = line;

	while (*p != '\0' && n < MAX_ARGS - 1) {
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
	argv[n] = NULL;
	return n;
}

/* The text after the first n words of line ("" when none). */
static const char *after_words(const char *line, int n)
{
	const char *p = line;

	for (int w = 0; w < n; w++) {
		while (*p == ' ' || *p == '\t')
			p++;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static json_object *status_json(const struct pgkeel_pgctl *ctl)
{
	const struct pgkeel_pgctl_status *st = pgkeel_pgctl_status(ctl);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "state", json_object_new_string(st->state_name));
	json_object_object_add(o, "role", json_object_new_string(pgkeel_pgctl_role_name(st->role)));
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "start_time", json_object_new_int64(st->start_time));
	json_object_object_add(o, "adopted", json_object_new_boolean(st->adopted));
	json_object_object_add(o, "timed_out", json_object_new_boolean(st->timed_out));
	json_object_object_add(o, "pidfile_left", json_object_new_boolean(st->pidfile_left));
	json_object_object_add(o, "exit_status", json_object_new_int(st->exit_status));
	json_object_object_add(o, "pidfile_status", json_object_new_string(st->pidfile_status));
	json_object_object_add(o, "reason", json_object_new_string(st->reason));
	json_object_object_add(o, "log_path", json_object_new_string(pgkeel_pgctl_log_path(ctl)));
	return o;
}

static void answer(struct probe *p, json_object *o, const char *cmd, bool ok, const char *err,
                   int64_t start)
{
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "err", json_object_new_string(err != NULL ? err : ""));
	json_object_object_add(o, "elapsed_ms",
	                       json_object_new_int64(pgkeel_now_monotonic_ms() - start));
	json_object_object_add(o, "status", status_json(p->ctl));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

static json_object *diag_json(const struct pgkeel_diag *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "errors", json_object_get(d->errors));
	json_object_object_add(o, "warnings", json_object_get(d->warnings));
	return o;
}

static bool cmd_write(struct probe *p, int argc, char **argv, json_object *o, char *err,
                      size_t errlen)
{
	struct pgkeel_pg_situation sit;
	struct pgkeel_diag d;
	json_object *args;
	bool ok;

	if (p->cfg == NULL) {
		(void)pgkeel_fmt(err, errlen, "no --config");
		return false;
	}
	memset(&sit, 0, sizeof(sit));
	if (argc >= 2 && strcmp(argv[1], "replica") == 0) {
		sit.role = PGKEEL_PG_REPLICA;
		sit.recovery = true;
		if (argc >= 4) {
			sit.upstream.host = argv[2];
			sit.upstream.port = argv[3];
		}
	} else {
		sit.role = PGKEEL_PG_PRIMARY;
	}
	if (p->have_files)
		pgkeel_pg_files_clear(&p->files);
	pgkeel_diag_init(&d);
	ok = pgkeel_pgctl_write_config(p->cfg, &sit, NULL, &p->files, &d);
	p->have_files = ok;
	json_object_object_add(o, "diag", diag_json(&d));
	if (!ok) {
		(void)pgkeel_fmt(
		    err, errlen, "%s",
		    json_object_array_length(d.errors) > 0
		        ? json_object_get_string(json_object_array_get_idx(d.errors, 0))
		        : "write failed");
		pgkeel_pg_files_clear(&p->files);
	} else {
		args = json_object_new_array();
		for (size_t i = 0; i < p->files.argc; i++)
			json_object_array_add(args, json_object_new_string(p->files.argv[i]));
		json_object_object_add(o, "argv", args);
		json_object_object_add(o, "conf_path",
		                       json_object_new_string(p->files.postgresql_conf_path));
		json_object_object_add(o, "standby_signal",
		                       json_object_new_boolean(p->files.standby_signal));
		json_object_object_add(
		    o, "pgpass_path",
		    p->files.pgpass_path ? json_object_new_string(p->files.pgpass_path) : NULL);
	}
	pgkeel_diag_clear(&d);
	return ok;
}

static bool load_config(struct probe *p, const char *path, char *err, size_t errlen)
{
	struct pgkeel_config_opts co = {0};
	struct pgkeel_config *cfg;
	struct pgkeel_diag d;

	pgkeel_diag_init(&d);
	cfg = pgkeel_config_load(path, &co, &d);
	if (cfg == NULL)
		(void)pgkeel_fmt(err, errlen, "%s: %s", path, json_object_to_json_string(d.errors));
	pgkeel_diag_clear(&d);
	if (cfg == NULL)
		return false;
	pgkeel_config_unref(p->cfg);
	p->cfg = cfg;
	return true;
}

static bool role_arg(const char *s, enum pgkeel_pgctl_role *out)
{
	if (s == NULL || strcmp(s, "primary") == 0)
		*out = PGKEEL_PGCTL_ROLE_PRIMARY;
	else if (strcmp(s, "replica") == 0)
		*out = PGKEEL_PGCTL_ROLE_REPLICA;
	else if (strcmp(s, "unknown") == 0)
		*out = PGKEEL_PGCTL_ROLE_UNKNOWN;
	else
		return false;
	return true;
}

static void demote_json(json_object *o, const struct pgkeel_demote_result *r)
{
	json_object_object_add(o, "checkpoint_ok", json_object_new_boolean(r->checkpoint_ok));
	json_object_object_add(o, "result",
	                       json_object_new_string(pgkeel_pgctl_stop_result_name(r->stop)));
	json_object_object_add(o, "started", json_object_new_boolean(r->started));
	json_object_object_add(o, "reloaded", json_object_new_boolean(r->reloaded));
	json_object_object_add(o, "restarted", json_object_new_boolean(r->restarted));
	json_object_object_add(o, "demote_err", json_object_new_string(r->err));
}

/* demote / demote-stop / demote-start / follow */
static bool cmd_demote(struct probe *p, int argc, char **argv, int64_t start, json_object *o,
                       char *err, size_t errlen)
{
	const char *cmd = argv[0];
	enum pgkeel_demote_mode mode = PGKEEL_DEMOTE_GRACEFUL;
	struct pgkeel_demote_opts opts;
	struct pgkeel_demote_result r;
	struct pgkeel_pg_upstream up;
	int64_t ms[3] = {0, 0, 0};
	int nms, first, host_at;
	bool ok;

	first = strcmp(cmd, "follow") == 0 ? 1 : 2;
	if (strcmp(cmd, "demote") == 0)
		nms = 3;
	else if (strcmp(cmd, "demote-start") == 0)
		nms = 1;
	else
		nms = 2;
	host_at = first + nms;
	if (p->cfg == NULL || argc < host_at || (argc != host_at && argc != host_at + 2) ||
	    (first == 2 && !pgkeel_demote_mode_parse(argv[1], &mode))) {
		(void)pgkeel_fmt(err, errlen, "bad arguments (or no --config)");
		return false;
	}
	for (int i = 0; i < nms; i++) {
		ms[i] = int_arg(argv[first + i]);
		if (ms[i] < 0) {
			(void)pgkeel_fmt(err, errlen, "bad deadline");
			return false;
		}
	}
	memset(&opts, 0, sizeof(opts));
	memset(&up, 0, sizeof(up));
	opts.cfg = p->cfg;
	opts.ctl = p->ctl;
	opts.pg = p->pg;
	if (argc == host_at + 2) {
		up.host = argv[host_at];
		up.port = argv[host_at + 1];
		opts.upstream = &up;
	}
	if (strcmp(cmd, "demote") == 0) {
		opts.checkpoint_deadline_ms = start + ms[0];
		opts.stop_deadline_ms = start + ms[1];
		opts.ready_deadline_ms = start + ms[2];
		ok = pgkeel_demote(mode, &opts, &r);
	} else if (strcmp(cmd, "demote-stop") == 0) {
		opts.checkpoint_deadline_ms = start + ms[0];
		opts.stop_deadline_ms = start + ms[1];
		ok = pgkeel_demote_stop(mode, &opts, &r);
	} else if (strcmp(cmd, "demote-start") == 0) {
		memset(&r, 0, sizeof(r));
		opts.ready_deadline_ms = start + ms[0];
		ok = pgkeel_demote_start(mode, &opts, &r);
	} else {
		opts.checkpoint_deadline_ms = start + 5000;
		opts.stop_deadline_ms = start + ms[0];
		opts.ready_deadline_ms = start + ms[1];
		ok = pgkeel_demote_follow(&opts, &r);
	}
	demote_json(o, &r);
	if (!ok)
		(void)pgkeel_fmt(err, errlen, "%s", r.err);
	return ok;
}

static void run_command(struct probe *p, char *line)
{
	char copy[4096], err[1024] = "";
	char *argv[MAX_ARGS];
	int argc;
	int64_t start = pgkeel_now_monotonic_ms(), ms;
	json_object *o = json_object_new_object();
	const char *cmd;
	bool ok = true;

	(void)pgkeel_fmt(copy, sizeof(copy), "%s", line);
	argc = split(line, argv);
	if (argc == 0) {
		json_object_put(o);
		return;
	}
	cmd = argv[0];
	ms = argc >= 2 ? int_arg(argv[1]) : -1;

	if (strcmp(cmd, "fds") == 0) {
		struct stat sb;
		char link[64], target[256];
		ssize_t n;

		json_object_object_add(o, "socket_fd", json_object_new_int(p->sock_fd));
		json_object_object_add(o, "eventfd_fd", json_object_new_int(p->event_fd));
		if (fstat(p->sock_fd, &sb) == 0)
			json_object_object_add(o, "socket_inode",
			                       json_object_new_int64((int64_t)sb.st_ino));
		if (pgkeel_fmt(link, sizeof(link), "/proc/self/fd/%d", p->event_fd) &&
		    (n = readlink(link, target, sizeof(target) - 1)) > 0) {
			target[n] = '\0';
			json_object_object_add(o, "eventfd_link", json_object_new_string(target));
		}
		json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	} else if (strcmp(cmd, "config") == 0 && argc >= 2) {
		ok = load_config(p, argv[1], err, sizeof(err));
	} else if (strcmp(cmd, "write") == 0) {
		ok = cmd_write(p, argc, argv, o, err, sizeof(err));
	} else if ((strcmp(cmd, "start") == 0 || strcmp(cmd, "startx") == 0) && ms >= 0) {
		enum pgkeel_pgctl_role role;
		const char *const *args;

		if (!role_arg(argc >= 3 ? argv[2] : NULL, &role)) {
			ok = false;
			(void)pgkeel_fmt(err, sizeof(err), "bad role");
		} else {
			if (strcmp(cmd, "startx") == 0)
				args = (const char *const *)&argv[3];
			else
				args = p->have_files ? (const char *const *)p->files.argv : NULL;
			ok = pgkeel_pgctl_start(p->ctl, args, role, start + ms, err, sizeof(err));
		}
	} else if (strcmp(cmd, "wait") == 0 && ms >= 0) {
		enum pgkeel_pgctl_state s = pgkeel_pgctl_wait_ready(p->ctl, p->pg, start + ms);

		ok = s == PGKEEL_PGCTL_RUNNING;
	} else if (strcmp(cmd, "poll") == 0) {
		(void)pgkeel_pgctl_poll(p->ctl, p->pg, start + 2000);
	} else if (strcmp(cmd, "adopt") == 0) {
		enum pgkeel_pgctl_adopt_result r = pgkeel_pgctl_adopt(p->ctl);

		json_object_object_add(o, "result",
		                       json_object_new_string(r == PGKEEL_PGCTL_ADOPTED ? "adopted"
		                                              : r == PGKEEL_PGCTL_ADOPT_STALE
		                                                  ? "stale"
		                                                  : "none"));
		ok = r == PGKEEL_PGCTL_ADOPTED;
	} else if (strcmp(cmd, "running") == 0) {
		ok = pgkeel_pgctl_is_running(p->ctl);
	} else if (strcmp(cmd, "status") == 0) {
		/* just the status */
	} else if ((strcmp(cmd, "stop") == 0 || strcmp(cmd, "stop-begin") == 0) && argc >= 2) {
		enum pgkeel_pgctl_stop_mode mode;
		enum pgkeel_pgctl_stop_result r;
		int64_t kill_ms = argc >= 3 ? int_arg(argv[2]) : -1;

		if (!pgkeel_pgctl_stop_mode_parse(argv[1], &mode) ||
		    (strcmp(cmd, "stop") == 0 && kill_ms < 0)) {
			ok = false;
			(void)pgkeel_fmt(err, sizeof(err), "bad arguments");
		} else {
			r = strcmp(cmd, "stop") == 0
			        ? pgkeel_pgctl_stop(p->ctl, mode, start + kill_ms)
			        : pgkeel_pgctl_stop_begin(p->ctl, mode);
			json_object_object_add(
			    o, "result", json_object_new_string(pgkeel_pgctl_stop_result_name(r)));
			ok = r != PGKEEL_PGCTL_STOP_ERROR;
		}
	} else if (strcmp(cmd, "stop-wait") == 0 && ms >= 0) {
		enum pgkeel_pgctl_stop_result r = pgkeel_pgctl_stop_wait(p->ctl, start + ms);

		json_object_object_add(o, "result",
		                       json_object_new_string(pgkeel_pgctl_stop_result_name(r)));
		ok = r != PGKEEL_PGCTL_STOP_ERROR;
	} else if (strcmp(cmd, "kill") == 0) {
		enum pgkeel_pgctl_stop_result r = pgkeel_pgctl_kill(p->ctl);

		json_object_object_add(o, "result",
		                       json_object_new_string(pgkeel_pgctl_stop_result_name(r)));
		ok = r != PGKEEL_PGCTL_STOP_ERROR;
	} else if (strcmp(cmd, "restart") == 0 && ms >= 0 && argc >= 3 && int_arg(argv[2]) >= 0) {
		ok = pgkeel_pgctl_restart(p->ctl,
		                          p->have_files ? (const char *const *)p->files.argv : NULL,
		                          pgkeel_pgctl_status(p->ctl)->role, start + ms,
		                          start + int_arg(argv[2]), err, sizeof(err));
	} else if (strcmp(cmd, "reload") == 0) {
		ok = pgkeel_pgctl_reload(p->ctl, err, sizeof(err));
	} else if (strcmp(cmd, "promote") == 0 && ms >= 0) {
		ok = pgkeel_pgctl_promote(p->ctl, start + ms, err, sizeof(err)) &&
		     pgkeel_pgctl_wait_promoted(p->ctl, p->pg, start + ms, err, sizeof(err));
	} else if (strcmp(cmd, "sql") == 0 && ms >= 0) {
		struct pgkeel_pg_err e;
		struct pg_result *res = NULL;
		const char *sql = after_words(copy, 2);

		if (pgkeel_pg_exec(p->pg, sql, 0, NULL, start + ms, &res, &e) != PGKEEL_PG_OK) {
			ok = false;
			(void)pgkeel_fmt(err, sizeof(err), "%s", e.msg);
		} else {
			json_object_object_add(o, "value",
			                       PQntuples(res) > 0 && PQnfields(res) > 0 &&
			                               !PQgetisnull(res, 0, 0)
			                           ? json_object_new_string(PQgetvalue(res, 0, 0))
			                           : NULL);
			PQclear(res);
		}
	} else if (strcmp(cmd, "pending") == 0 && ms >= 0) {
		struct pgkeel_pg_err e;
		struct pgkeel_pg_settings *s = NULL;

		if (pgkeel_pg_pending_restart(p->pg, NULL, 0, start + ms, &s, &e) != PGKEEL_PG_OK) {
			ok = false;
			(void)pgkeel_fmt(err, sizeof(err), "%s", e.msg);
		} else {
			json_object *names = json_object_new_array();

			for (size_t i = 0; i < s->n; i++)
				json_object_array_add(names,
				                      json_object_new_string(s->items[i].name));
			json_object_object_add(o, "names", names);
			pgkeel_pg_settings_free(s);
		}
	} else if (strcmp(cmd, "demote") == 0 || strcmp(cmd, "demote-stop") == 0 ||
	           strcmp(cmd, "demote-start") == 0 || strcmp(cmd, "follow") == 0) {
		ok = cmd_demote(p, argc, argv, start, o, err, sizeof(err));
	} else if (strcmp(cmd, "close") == 0) {
		pgkeel_pg_close(p->pg);
	} else if (strcmp(cmd, "reason") == 0 && argc >= 2) {
		char text[4096], out[512];
		const char *in = after_words(copy, 2);
		size_t j = 0;

		for (size_t i = 0; in[i] != '\0' && j + 1 < sizeof(text); i++) {
			if (in[i] == '\\' && in[i + 1] == 'n') {
				text[j++] = '\n';
				i++;
			} else {
				text[j++] = in[i];
			}
		}
		text[j] = '\0';
		pgkeel_pgctl_log_reason(text, (pid_t)int_arg(argv[1]), out, sizeof(out));
		json_object_object_add(o, "reason", json_object_new_string(out));
	} else {
		ok = false;
		(void)pgkeel_fmt(err, sizeof(err), "unknown command or bad arguments: %s", copy);
	}
	answer(p, o, cmd, ok, err, start);
}

/* What the daemon does to its own signals, and descriptors nobody marked close-on-exec. */
static void daemon_like(struct probe *p)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	p->sock_fd = socket(AF_INET, SOCK_STREAM, 0);
	p->event_fd = eventfd(0, 0);
	if (p->sock_fd == -1 || p->event_fd == -1) {
		perror("pgctl_probe: socket/eventfd");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data-dir", required_argument, NULL, 'D'},
	    {"bin-dir", required_argument, NULL, 'b'},
	    {"config", required_argument, NULL, 'c'},
	    {"log", required_argument, NULL, 'l'},
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"user", required_argument, NULL, 'U'},
	    {"log-max", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	struct pgkeel_pgctl_opts copts = {0};
	struct pgkeel_pg_params params = {0};
	const char *config = NULL;
	struct probe p;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int c;

	memset(&p, 0, sizeof(p));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			copts.data_dir = optarg;
			break;
		case 'b':
			copts.bin_dir = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'l':
			copts.log_path = optarg;
			break;
		case 'h':
			params.host = optarg;
			break;
		case 'p':
			if (int_arg(optarg) <= 0)
				usage();
			params.port = (int)int_arg(optarg);
			break;
		case 'U':
			params.user = optarg;
			break;
		case 'm':
			if (int_arg(optarg) <= 0)
				usage();
			copts.log_max_bytes = int_arg(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || copts.data_dir == NULL)
		usage();
	daemon_like(&p);
	if (config != NULL) {
		char err[2048];

		if (!load_config(&p, config, err, sizeof(err))) {
			fprintf(stderr, "pgctl_probe: %s\n", err);
			return 1;
		}
	}
	p.ctl = pgkeel_pgctl_new(&copts);
	p.pg = pgkeel_pg_new(&params);
	while ((len = getline(&line, &cap, stdin)) != -1) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		run_command(&p, line);
	}
	free(line);
	if (p.have_files)
		pgkeel_pg_files_clear(&p.files);
	pgkeel_pg_free(p.pg);
	pgkeel_pgctl_free(p.ctl);
	pgkeel_config_unref(p.cfg);
	close(p.sock_fd);
	close(p.event_fd);
	return 0;
}
