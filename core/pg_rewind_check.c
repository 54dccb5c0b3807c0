/*
 * The rewind check against the leader (pg_rewind_run.h), and what the job
 * shares with it (pg_rewind_internal.h): commands with their output, the
 * credentials, the leader's SQL.  Read against Patroni's
 * patroni/postgresql/rewind.py (3.0.2, with the fixes up to 3.3.1) and
 * Postgresql.checkpoint / waldump / controldata in postgresql/__init__.py.
 */
#include "autoconf.h"

#include "pg_rewind_run.h"
#include "pg_rewind_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "json.h"
#include "log.h"
#include "pg_bootstrap.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_query.h"
#include "pg_task.h"
#include "util.h"

#define NO_PIDFD_POLL_MS 50
#define HISTORY_MAX      4096 /* timeline switches read from the leader's history */

const char *const pgkeel_rw_c_env[] = {"LANG=C", "LC_ALL=C", NULL};

void pgkeel_rw_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	(void)pgkeel_vfmt(err, errlen, fmt, ap); /* a truncated message is still the message */
	va_end(ap);
}

static char *lsn_text(int64_t lsn, char *buf, size_t len)
{
	pgkeel_lsn_format(lsn, buf, len);
	return buf;
}

/* ---------------------------------------------------------------- commands */

void pgkeel_rw_cmd_init(struct pgkeel_rw_cmd *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	pgkeel_child_init(&c->child);
	c->cap = cap;
}

void pgkeel_rw_cmd_clear(struct pgkeel_rw_cmd *c)
{
	size_t cap = c->cap;

	pgkeel_child_free(&c->child);
	pgkeel_argv_free(c->argv);
	free(c->what);
	free(c->out.p);
	free(c->err.p);
	pgkeel_rw_cmd_init(c, cap);
}

bool pgkeel_rw_cmd_start(struct pgkeel_rw_cmd *c, char **argv, const char *const *env,
                         const struct pgkeel_child_user *user, const char *what, int64_t deadline,
                         char *err, size_t errlen)
{
	struct pgkeel_child_spec spec;

	pgkeel_rw_cmd_clear(c);
	c->argv = argv;
	c->what = pgkeel_strdup(what);
	c->deadline = deadline;
	memset(&spec, 0, sizeof(spec));
	spec.argv = (const char *const *)argv;
	spec.env = env;
	spec.out.mode = PGKEEL_CHILD_OUT_PIPE;
	spec.err.mode = PGKEEL_CHILD_OUT_PIPE;
	spec.user = user;
	spec.name = what;
	if (!pgkeel_child_spawn(&spec, &c->child, err, errlen)) {
		c->done = true;
		c->wstatus = -1;
		return false;
	}
	return true;
}

static void keep_tail(struct pgkeel_sbuf *b, size_t cap)
{
	if (b->len > cap) {
		memmove(b->p, b->p + b->len - cap, cap);
		b->len = cap;
		b->p[cap] = '\0';
	}
}

static void drain_fd(int fd, bool *eof, struct pgkeel_sbuf *b, size_t cap)
{
	char buf[4096];

	while (fd != -1 && !*eof) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			pgkeel_sbuf_put(b, buf, (size_t)n);
			keep_tail(b, cap);
		} else if (n == 0) {
			*eof = true;
		} else if (errno != EINTR) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				*eof = true;
			break;
		}
	}
}

/* Has it ended (or been killed at its deadline)?  Never waits longer than a SIGKILL takes. */
bool pgkeel_rw_cmd_finished(struct pgkeel_rw_cmd *c)
{
	if (c->done)
		return true;
	drain_fd(c->child.out_fd, &c->out_eof, &c->out, c->cap);
	drain_fd(c->child.err_fd, &c->err_eof, &c->err, c->cap);
	if (pgkeel_child_poll(&c->child) == PGKEEL_CHILD_RUNNING) {
		if (pgkeel_now_monotonic_ms() < c->deadline)
			return false;
		log_warning("%s still running at its deadline: killed", c->what);
		(void)pgkeel_child_stop(&c->child, SIGKILL, pgkeel_now_monotonic_ms());
		c->timed_out = true;
	}
	drain_fd(c->child.out_fd, &c->out_eof, &c->out, c->cap);
	drain_fd(c->child.err_fd, &c->err_eof, &c->err, c->cap);
	c->wstatus = c->child.reaped ? c->child.wstatus : -1;
	pgkeel_child_free(&c->child);
	c->done = true;
	return true;
}

bool pgkeel_rw_cmd_ok(const struct pgkeel_rw_cmd *c)
{
	return !c->timed_out && c->wstatus != -1 && WIFEXITED(c->wstatus) &&
	       WEXITSTATUS(c->wstatus) == 0;
}

/* As Python's returncode: the exit code, -N for a signal N, -1 when unknown or timed out. */
int pgkeel_rw_cmd_exit_code(const struct pgkeel_rw_cmd *c)
{
	if (c->timed_out || c->wstatus == -1)
		return -1;
	if (WIFEXITED(c->wstatus))
		return WEXITSTATUS(c->wstatus);
	return WIFSIGNALED(c->wstatus) ? -WTERMSIG(c->wstatus) : -1;
}

const char *pgkeel_rw_text(const struct pgkeel_sbuf *b)
{
	return b->p != NULL ? b->p : "";
}

/* "exited with code 1", "killed by signal 9 (SIGKILL)", "timed out" */
void pgkeel_rw_cmd_describe(const struct pgkeel_rw_cmd *c, char *buf, size_t len)
{
	if (c->timed_out)
		(void)pgkeel_fmt(buf, len, "timed out");
	else
		pgkeel_child_describe(c->wstatus, buf, len);
}

void pgkeel_rw_add_fd(struct pollfd *fds, size_t n, size_t *k, int fd)
{
	if (*k < n && fd != -1) {
		fds[*k].fd = fd;
		fds[*k].events = POLLIN;
		fds[(*k)++].revents = 0;
	}
}

void pgkeel_rw_cmd_pollfds(const struct pgkeel_rw_cmd *c, struct pollfd *fds, size_t n, size_t *k)
{
	if (c->argv == NULL || c->done)
		return;
	pgkeel_rw_add_fd(fds, n, k, c->child.pidfd);
	if (!c->out_eof)
		pgkeel_rw_add_fd(fds, n, k, c->child.out_fd);
	if (!c->err_eof)
		pgkeel_rw_add_fd(fds, n, k, c->child.err_fd);
}

int64_t pgkeel_rw_cmd_wake_at(const struct pgkeel_rw_cmd *c)
{
	if (c->argv == NULL || c->done)
		return 0;
	if (c->child.pidfd == -1) {
		int64_t nap = pgkeel_now_monotonic_ms() + NO_PIDFD_POLL_MS;

		return nap < c->deadline ? nap : c->deadline;
	}
	return c->deadline;
}

/* Sleep in poll() until fds fire or `until`. */
void pgkeel_rw_wait_fds(struct pollfd *fds, size_t n, int64_t until)
{
	int64_t now = pgkeel_now_monotonic_ms();
	int64_t ms = until > now ? until - now : 0;

	if (poll(fds, n, (int)(ms > INT_MAX ? INT_MAX : ms)) == -1 && errno != EINTR) {
		struct pollfd none;

		(void)poll(&none, 0, NO_PIDFD_POLL_MS); /* cannot wait: a short nap instead */
	}
}

/* Wait until a started command has ended (or was killed at its deadline). */
static void cmd_wait(struct pgkeel_rw_cmd *c)
{
	while (!pgkeel_rw_cmd_finished(c)) {
		struct pollfd fds[3];
		size_t k = 0;

		pgkeel_rw_cmd_pollfds(c, fds, PGKEEL_ARRAY_LEN(fds), &k);
		pgkeel_rw_wait_fds(fds, k, pgkeel_rw_cmd_wake_at(c));
	}
}

/* Run to completion or the deadline (the check's commands); false with err unless exit 0. */
static bool cmd_run(struct pgkeel_rw_cmd *c, char **argv, const char *const *env,
                    const struct pgkeel_child_user *user, const char *what, int64_t deadline,
                    char *err, size_t errlen)
{
	if (!pgkeel_rw_cmd_start(c, argv, env, user, what, deadline, err, errlen))
		return false;
	cmd_wait(c);
	if (!pgkeel_rw_cmd_ok(c)) {
		char how[128];

		pgkeel_rw_cmd_describe(c, how, sizeof(how));
		pgkeel_rw_set_err(err, errlen, "%s %s: %.300s", what, how, pgkeel_rw_text(&c->err));
		return false;
	}
	return true;
}

/* Log a child's output as Patroni does (" stdout=...", " stderr=..."). */
void pgkeel_rw_log_output(const struct pgkeel_rw_cmd *c)
{
	log_info(" stdout=%s", pgkeel_rw_text(&c->out));
	log_info(" stderr=%s", pgkeel_rw_text(&c->err));
}

/* ------------------------------------------------------------ configuration */

json_object *pgkeel_rw_pg_opt(const struct pgkeel_config *cfg, const char *key)
{
	return pgkeel_pgt_jget(pgkeel_pgt_pg_section(cfg), key);
}

bool pgkeel_rw_pg_flag(const struct pgkeel_config *cfg, const char *key)
{
	return pgkeel_json_truthy(pgkeel_rw_pg_opt(cfg, key));
}

int pgkeel_rw_server_version(const struct pgkeel_config *cfg, int given)
{
	int major;

	if (given > 0)
		return given;
	major = pgkeel_pg_data_version(cfg->data_dir != NULL ? cfg->data_dir : "");
	return major >= 10 ? major * 10000 : 0;
}

/* Patroni's rewind_credentials: the rewind role on 11+ when configured, else the superuser. */
json_object *pgkeel_rw_rewind_auth(const struct pgkeel_config *cfg, int version)
{
	json_object *r = pgkeel_pgt_auth_section(cfg, "rewind");

	return version >= 110000 && r != NULL ? r : pgkeel_pgt_auth_section(cfg, "superuser");
}

/*
 * Patroni's Rewind._conn_kwargs (or, read_write false, Member.conn_kwargs
 * for the replication connection): the leader's address and database, the
 * credentials' non-null entries (username -> user), dbname defaulting to
 * postgresql.database, target_session_attrs=read-write on 10+.
 */
json_object *pgkeel_rw_conn_record(const struct pgkeel_config *cfg,
                                   const struct pgkeel_pg_source *src, json_object *auth,
                                   int version, bool read_write)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "host", json_object_new_string(src->host));
	json_object_object_add(r, "port", json_object_new_string(src->port));
	json_object_object_add(r, "dbname", json_object_new_string(src->dbname));
	pgkeel_pgt_add_auth(r, auth);
	if (!read_write)
		return r;
	if (!pgkeel_json_truthy(pgkeel_pgt_jget(r, "dbname")))
		json_object_object_add(r, "dbname",
		                       json_object_new_string(pgkeel_pgt_database_name(cfg)));
	if (version >= 100000)
		json_object_object_add(r, "target_session_attrs",
		                       json_object_new_string("read-write"));
	return r;
}

/* A connection (not made yet) from a record: Patroni's connect_timeout=3 and options. */
static struct pgkeel_pg *record_connection(json_object *r, bool replication,
                                           int statement_timeout_ms)
{
	struct pgkeel_pg_params p;
	const char *keys[32], *values[32];
	char *texts[32];
	struct pgkeel_pg *pg;
	size_t n = 0, m = 0;

	memset(&p, 0, sizeof(p));
	p.replication = replication;
	p.statement_timeout_ms = statement_timeout_ms;
	json_object_object_foreach(r, k, v)
	{
		char *t;
		int64_t port;

		if (v == NULL || n >= PGKEEL_ARRAY_LEN(texts))
			continue;
		t = texts[n++] = pgkeel_pg_value_text(v); /* YAML numbers too: str() */
		if (strcmp(k, "host") == 0) {
			p.host = t[0] != '\0' ? t : NULL;
		} else if (strcmp(k, "port") == 0) {
			if (pgkeel_parse_int64(t, &port) && port > 0 && port < 65536)
				p.port = (int)port;
		} else if (strcmp(k, "user") == 0) {
			p.user = t;
		} else if (strcmp(k, "password") == 0) {
			p.password = t;
		} else if (strcmp(k, "dbname") == 0) {
			p.dbname = t[0] != '\0' ? t : NULL;
		} else {
			keys[m] = k; /* sslmode, target_session_attrs, ... */
			values[m++] = t;
		}
	}
	p.extra_keys = keys;
	p.extra_values = values;
	p.n_extra = m;
	pg = pgkeel_pg_new(&p);
	for (size_t i = 0; i < n; i++) {
		explicit_bzero(texts[i], strlen(texts[i]));
		free(texts[i]);
	}
	return pg;
}

/* One boolean (first column of the first row) on a fresh connection. */
static bool query_bool(json_object *r, const char *sql, int64_t deadline, bool *value, char *err,
                       size_t errlen)
{
	struct pgkeel_pg *pg = record_connection(r, false, 0);
	struct pgkeel_pg_err e;
	PGresult *res = NULL;
	bool ok = false;

	if (pgkeel_pg_exec(pg, sql, 0, NULL, deadline, &res, &e) != PGKEEL_PG_OK) {
		pgkeel_rw_set_err(err, errlen, "%s", e.msg);
	} else if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
		*value = false; /* Patroni: `not row or not row[0]` */
		ok = true;
	} else {
		*value = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		ok = true;
	}
	PQclear(res);
	pgkeel_pg_free(pg);
	return ok;
}

/* Patroni's check_leader_is_not_in_recovery. */
enum pgkeel_rw_leader_health pgkeel_rw_leader_not_in_recovery(json_object *r, int64_t deadline,
                                                              char *err, size_t errlen)
{
	bool in_recovery = false;

	if (!query_bool(r, "SELECT pg_catalog.pg_is_in_recovery()", deadline, &in_recovery, err,
	                errlen)) {
		log_error("Exception when working with leader: %s", err);
		return PGKEEL_RW_LEADER_ERROR;
	}
	if (!in_recovery)
		return PGKEEL_RW_LEADER_OK;
	log_info("Leader is still in_recovery and therefore can't be used for rewind");
	pgkeel_rw_set_err(err, errlen,
	                  "Leader is still in_recovery and therefore can't be used for rewind");
	return PGKEEL_RW_LEADER_IN_RECOVERY;
}

/* Patroni's check_leader_has_run_checkpoint: NULL when it has, else why not. */
const char *pgkeel_rw_leader_has_run_checkpoint(json_object *r, int64_t deadline)
{
	bool done = false;
	char err[256];

	if (!query_bool(r,
	                "SELECT NOT pg_catalog.pg_is_in_recovery()"
	                " AND ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name("
	                " pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int = timeline_id"
	                " FROM pg_catalog.pg_control_checkpoint()",
	                deadline, &done, err, sizeof(err))) {
		log_error("Exception when working with leader: %s", err);
		return "not accessible or not healty";
	}
	return done ? NULL : "leader has not run a checkpoint yet";
}

/* Patroni's Postgresql.checkpoint(conn_kwargs): NULL when it ran, else why not. */
const char *pgkeel_rw_leader_checkpoint(json_object *r, int64_t deadline)
{
	struct pgkeel_pg *pg = record_connection(r, false, -1);
	struct pgkeel_pg_err e;
	PGresult *res = NULL;
	const char *why = "not accessible or not healty";

	if (pgkeel_pg_exec(pg, "SET statement_timeout = 0", 0, NULL, deadline, NULL, &e) ==
	        PGKEEL_PG_OK &&
	    pgkeel_pg_exec(pg, "SELECT pg_catalog.pg_is_in_recovery()", 0, NULL, deadline, &res,
	                   &e) == PGKEEL_PG_OK) {
		if (PQntuples(res) < 1 || strcmp(PQgetvalue(res, 0, 0), "f") != 0)
			why = "is_in_recovery=true";
		else if (pgkeel_pg_exec(pg, "CHECKPOINT", 0, NULL, deadline, NULL, &e) ==
		         PGKEEL_PG_OK)
			why = NULL;
	}
	if (why != NULL && strcmp(why, "is_in_recovery=true") != 0)
		log_error("Exception during CHECKPOINT: %s", e.msg);
	PQclear(res);
	pgkeel_pg_free(pg);
	return why;
}

/* ------------------------------------------------------------------- check */

static void check_set(struct pgkeel_rewind_check_result *out, enum pgkeel_rewind_need need,
                      const char *fmt, ...) PGKEEL_PRINTF(3, 4);
static void check_set(struct pgkeel_rewind_check_result *out, enum pgkeel_rewind_need need,
                      const char *fmt, ...)
{
	va_list ap;

	out->need = need;
	va_start(ap, fmt);
	(void)pgkeel_vfmt(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* pg_controldata of data_dir, parsed (NULL with err). */
static json_object *run_controldata(const struct pgkeel_config *cfg,
                                    const struct pgkeel_child_user *user, int64_t deadline,
                                    char *err, size_t errlen)
{
	struct pgkeel_rw_cmd c;
	char **argv = pgkeel_xcalloc(3, sizeof(*argv));
	json_object *cd = NULL;

	pgkeel_rw_cmd_init(&c, PGKEEL_RW_OUTPUT_BYTES);
	argv[0] = pgkeel_pgt_bin_path(cfg, "pg_controldata");
	argv[1] = pgkeel_strdup(cfg->data_dir);
	if (cmd_run(&c, argv, pgkeel_rw_c_env, user, "pg_controldata", deadline, err, errlen)) {
		cd = pgkeel_controldata_parse(pgkeel_rw_text(&c.out));
		if (cd == NULL)
			pgkeel_rw_set_err(err, errlen, "pg_controldata printed nothing");
	}
	pgkeel_rw_cmd_clear(&c);
	return cd;
}

/* Patroni's _get_checkpoint_end (pg_waldump -t TLI -s LSN -n 2). */
static int64_t checkpoint_end(const struct pgkeel_config *cfg, const struct pgkeel_child_user *user,
                              int64_t tli, int64_t lsn, int64_t deadline)
{
	struct pgkeel_rw_cmd c;
	char **argv = pgkeel_xcalloc(8, sizeof(*argv));
	char lsn_buf[32], err[512];
	char *pgdata = pgkeel_asprintf("PGDATA=%s", cfg->data_dir);
	const char *env[] = {"LANG=C", "LC_ALL=C", pgdata, NULL};
	int64_t end = 0;

	pgkeel_rw_cmd_init(&c, PGKEEL_RW_OUTPUT_BYTES);
	argv[0] = pgkeel_pgt_bin_path(cfg, "pg_waldump");
	argv[1] = pgkeel_strdup("-t");
	argv[2] = pgkeel_asprintf("%lld", (long long)tli);
	argv[3] = pgkeel_strdup("-s");
	argv[4] = pgkeel_strdup(lsn_text(lsn, lsn_buf, sizeof(lsn_buf)));
	argv[5] = pgkeel_strdup("-n");
	argv[6] = pgkeel_strdup("2");
	/* pg_waldump exits 1 when it cannot read the second record: that is the point */
	if (!pgkeel_rw_cmd_start(&c, argv, env, user, "pg_waldump", deadline, err, sizeof(err))) {
		log_error("Failed to execute pg_waldump: %s", err);
	} else {
		cmd_wait(&c);
		if (!c.timed_out)
			end = pgkeel_waldump_checkpoint_end(lsn, pgkeel_rw_text(&c.out),
			                                    pgkeel_rw_text(&c.err));
		if (end == 0) {
			log_error("Failed to parse pg_waldump output");
			log_error(" stdout=%s", pgkeel_rw_text(&c.out));
			log_error(" stderr=%s", pgkeel_rw_text(&c.err));
		}
	}
	pgkeel_rw_cmd_clear(&c);
	free(pgdata);
	return end;
}

/* Patroni's _log_primary_history: a few lines around the decisive one, and the last. */
static void log_history(const struct pgkeel_tl_switch *h, size_t n, size_t i)
{
	struct pgkeel_sbuf b = {0};
	size_t start = i > 3 ? i - 3 : 0, end = i + 4 >= n ? n : i + 2;
	char lsn[32];

	if (n == 0)
		return;
	for (size_t k = start; k < end; k++) {
		if (k > start)
			pgkeel_sbuf_putc(&b, '\n');
		pgkeel_sbuf_printf(&b, "%lld\t", (long long)h[k].parent_tli);
		pgkeel_sbuf_puts(&b, lsn_text(h[k].switchpoint, lsn, sizeof(lsn)));
	}
	if (end < n) {
		pgkeel_sbuf_puts(&b, "\n...\n");
		pgkeel_sbuf_printf(&b, "%lld\t", (long long)h[n - 1].parent_tli);
		pgkeel_sbuf_puts(&b, lsn_text(h[n - 1].switchpoint, lsn, sizeof(lsn)));
	}
	{
		char *text = pgkeel_sbuf_finish(&b);

		log_info("primary: history=%s", text);
		free(text);
	}
}

/* IDENTIFY_SYSTEM (and TIMELINE_HISTORY when we are behind) on the leader. */
static bool leader_timeline(json_object *repl, int64_t local_tli, int64_t deadline,
                            int64_t *leader_tli, char **history, char *err, size_t errlen)
{
	struct pgkeel_pg *pg = record_connection(repl, true, 0);
	struct pgkeel_pg_sysinfo si;
	struct pgkeel_pg_err e;
	PGresult *res = NULL;
	bool ok = false;

	*history = NULL;
	if (pgkeel_pg_identify_system(pg, deadline, &si, &e) != PGKEEL_PG_OK) {
		pgkeel_rw_set_err(err, errlen, "%s", e.msg);
		goto out;
	}
	*leader_tli = si.timeline;
	log_info("primary_timeline=%d", si.timeline);
	if (local_tli < si.timeline && si.timeline > 1) {
		char sql[64];

		(void)pgkeel_fmt(sql, sizeof(sql), "TIMELINE_HISTORY %d", si.timeline);
		if (pgkeel_pg_exec(pg, sql, 0, NULL, deadline, &res, &e) != PGKEEL_PG_OK) {
			pgkeel_rw_set_err(err, errlen, "%s", e.msg);
			goto out;
		}
		if (PQntuples(res) >= 1 && PQnfields(res) >= 2 && !PQgetisnull(res, 0, 1)) {
			*history =
			    pgkeel_dup_bytes(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
			log_debug("primary: history=%s", *history);
		}
	}
	ok = true;
out:
	PQclear(res);
	pgkeel_pg_free(pg);
	return ok;
}

enum pgkeel_rewind_need pgkeel_rewind_check(const struct pgkeel_rewind_check_opts *o,
                                            struct pgkeel_rewind_check_result *out)
{
	const struct pgkeel_config *cfg = o->cfg;
	const struct pgkeel_rewind_leader *l = o->leader;
	int version = pgkeel_rw_server_version(cfg, o->server_version);
	struct pgkeel_pg_source src;
	struct pgkeel_rewind_facts f;
	struct pgkeel_tl_switch *hist = NULL;
	const struct pgkeel_tl_switch *fork;
	json_object *auth, *rec = NULL, *repl = NULL;
	char err[512], lsn[32], sw[32];
	char *history = NULL;
	size_t index = 0;
	int nh = 0;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	out->need = PGKEEL_REWIND_UNKNOWN;
	if (l == NULL || l->conn_url == NULL || l->name == NULL) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "no leader with a conn_url to compare with");
		return out->need;
	}
	if (cfg->name != NULL && strcmp(l->name, cfg->name) == 0) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "the leader is this node");
		return out->need;
	}
	if (!pgkeel_pg_source_from_url(l->conn_url, &src)) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "the leader's conn_url is not usable");
		return out->need;
	}

	/* the local facts */
	if (o->running) {
		f.in_recovery = true;
		f.local_tli = o->running_tli;
		f.local_lsn = o->running_lsn;
	} else {
		json_object *cd = run_controldata(cfg, o->user, o->deadline_ms, err, sizeof(err));

		if (cd == NULL) {
			check_set(out, PGKEEL_REWIND_UNKNOWN, "%s", err);
			return out->need;
		}
		if (!pgkeel_rewind_local_from_controldata(cd, &f.in_recovery, &f.local_tli,
		                                          &f.local_lsn)) {
			const char *state = "?";

			(void)pgkeel_controldata_str(cd, "Database cluster state", &state);
			check_set(out, PGKEEL_REWIND_UNKNOWN,
			          "no local timeline and lsn: database cluster state \"%s\"",
			          state);
			json_object_put(cd);
			log_info("Local timeline=None lsn=None");
			return out->need;
		}
		json_object_put(cd);
	}
	out->in_recovery = f.in_recovery;
	out->local_tli = f.local_tli;
	out->local_lsn = f.local_lsn;
	log_info("Local timeline=%lld lsn=%s", (long long)f.local_tli,
	         lsn_text(f.local_lsn, lsn, sizeof(lsn)));
	if (f.local_tli <= 0 || f.local_lsn <= 0) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "no local timeline and lsn");
		return out->need;
	}

	if (!l->remote && (l->role == NULL ||
	                   (strcmp(l->role, "master") != 0 && strcmp(l->role, "primary") != 0))) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "the leader's role is %s, not primary",
		          l->role != NULL ? l->role : "unknown");
		return out->need;
	}

	/* the leader must be a primary: with the rewind credentials (replication ones before 11
	 * when only remove_data_directory_on_diverged_timelines is on) */
	auth = !pgkeel_rw_pg_flag(cfg, "use_pg_rewind") &&
	               pgkeel_rw_pg_flag(cfg, "remove_data_directory_on_diverged_timelines") &&
	               version < 110000
	           ? pgkeel_pgt_auth_section(cfg, "replication")
	           : pgkeel_rw_rewind_auth(cfg, version);
	rec = pgkeel_rw_conn_record(cfg, &src, auth, version, true);
	if (pgkeel_rw_leader_not_in_recovery(rec, o->deadline_ms, err, sizeof(err)) !=
	    PGKEEL_RW_LEADER_OK) {
		check_set(out, PGKEEL_REWIND_UNKNOWN, "%s", err);
		goto out;
	}

	repl = pgkeel_rw_conn_record(cfg, &src, pgkeel_pgt_auth_section(cfg, "replication"),
	                             version, false);
	if (!leader_timeline(repl, f.local_tli, o->deadline_ms, &f.leader_tli, &history, err,
	                     sizeof(err))) {
		log_error("Exception when working with primary via replication connection: %s",
		          err);
		check_set(out, PGKEEL_REWIND_UNKNOWN,
		          "Exception when working with primary via replication connection: %s",
		          err);
		goto out;
	}
	out->leader_tli = f.leader_tli;
	if (f.local_tli < f.leader_tli) {
		if (history == NULL) { /* Patroni: no history, no decision -> no rewind */
			check_set(out, PGKEEL_REWIND_NOT_NEEDED,
			          "the leader sent no history for timeline %lld",
			          (long long)f.leader_tli);
			goto out;
		}
		hist = pgkeel_xcalloc(HISTORY_MAX, sizeof(*hist));
		nh = pgkeel_tl_history_parse(history, hist, HISTORY_MAX);
		if (nh < 0) {
			check_set(out, PGKEEL_REWIND_UNKNOWN,
			          "the leader's timeline history is malformed");
			goto out;
		}
		f.history = hist;
		f.n_history = (size_t)nh;
		fork = pgkeel_rewind_fork_point(&f, &index);
		if (fork != NULL)
			out->switchpoint = fork->switchpoint;
		if (pgkeel_rewind_needs_checkpoint_end(&f))
			f.checkpoint_end =
			    checkpoint_end(cfg, o->user, f.local_tli, f.local_lsn, o->deadline_ms);
		out->checkpoint_end = f.checkpoint_end;
		log_history(hist, f.n_history, index);
	}
	out->need = pgkeel_rewind_decide(&f);
	check_set(out, out->need,
	          "local timeline %lld lsn %s (%s), leader timeline %lld, switch point %s: %s",
	          (long long)f.local_tli, lsn_text(f.local_lsn, lsn, sizeof(lsn)),
	          f.in_recovery ? "replica" : "former primary", (long long)f.leader_tli,
	          out->switchpoint != 0 ? lsn_text(out->switchpoint, sw, sizeof(sw)) : "none",
	          out->need == PGKEEL_REWIND_NEEDED ? "rewind needed" : "no rewind needed");
out:
	free(history);
	free(hist);
	json_object_put(rec);
	json_object_put(repl);
	return out->need;
}
