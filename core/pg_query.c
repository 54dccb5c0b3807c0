/*
 * pg_query: a libpq connection whose every operation ends by a deadline, and
 * the monitoring queries of Patroni 3.0.2 (see pg_query.h for the contract).
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "json.h"
#include "log.h"
#include "pg_conf.h"
#include "pg_query.h"
#include "util.h"

#define DEFAULT_DBNAME                "postgres"
#define FALLBACK_APPNAME              "Patroni"
#define DEFAULT_CONNECT_TIMEOUT_S     3
#define DEFAULT_STATEMENT_TIMEOUT_MS  2000
#define DEFAULT_KEEPALIVES_IDLE_S     10
#define DEFAULT_KEEPALIVES_INTERVAL_S 3
#define DEFAULT_KEEPALIVES_COUNT      3
#define DEFAULT_TCP_USER_TIMEOUT_MS   10000
#define DEFAULT_CANCEL_RESERVE_MS     250
/* Cancel threads that may be blocked on a stopped postmaster at once. */
#define MAX_CANCEL_THREADS 4

#define SQLSTATE_QUERY_CANCELED "57014"

struct pgkeel_pg {
	char *host;
	char *user;
	char *password;
	char *passfile;
	char *dbname;
	char *application_name;
	char **extra_keys;
	char **extra_values;
	size_t n_extra;
	int port;
	bool replication;
	int connect_timeout_s;
	int statement_timeout_ms;
	int keepalives_idle_s;
	int keepalives_interval_s;
	int keepalives_count;
	int tcp_user_timeout_ms;
	int cancel_reserve_ms;
	PGconn *conn;
};

static atomic_int cancel_threads;

void pgkeel_pg_get_params(const struct pgkeel_pg *pg, struct pgkeel_pg_params *out)
{
	memset(out, 0, sizeof(*out));
	out->host = pg->host;
	out->port = pg->port;
	out->user = pg->user;
	out->password = pg->password;
	out->passfile = pg->passfile;
	out->dbname = pg->dbname;
	out->application_name = pg->application_name;
	out->replication = pg->replication;
	out->connect_timeout_s = pg->connect_timeout_s;
	out->statement_timeout_ms = pg->statement_timeout_ms;
	out->keepalives_idle_s = pg->keepalives_idle_s;
	out->keepalives_interval_s = pg->keepalives_interval_s;
	out->keepalives_count = pg->keepalives_count;
	out->tcp_user_timeout_ms = pg->tcp_user_timeout_ms;
	out->cancel_reserve_ms = pg->cancel_reserve_ms;
	out->extra_keys = (const char *const *)pg->extra_keys;
	out->extra_values = (const char *const *)pg->extra_values;
	out->n_extra = pg->n_extra;
}

const char *pgkeel_pg_rc_name(enum pgkeel_pg_rc rc)
{
	switch (rc) {
	case PGKEEL_PG_OK:
		return "ok";
	case PGKEEL_PG_TIMEOUT:
		return "timeout";
	case PGKEEL_PG_CONNECT:
		return "connect";
	case PGKEEL_PG_LOST:
		return "lost";
	case PGKEEL_PG_SQL:
		return "sql";
	case PGKEEL_PG_BADRESULT:
		return "badresult";
	}
	return "unknown";
}

/* ---- errors ---- */

/* Copy text into buf as one line: newlines and tabs become single spaces. */
static void one_line(char *buf, size_t len, const char *text)
{
	size_t o = 0;
	bool space = false;

	if (len == 0)
		return;
	for (const char *p = text != NULL ? text : ""; *p != '\0' && o + 1 < len; p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
			space = o > 0;
			continue;
		}
		if (space) {
			buf[o++] = ' ';
			space = false;
			if (o + 1 >= len)
				break;
		}
		buf[o++] = *p;
	}
	buf[o] = '\0';
}

static enum pgkeel_pg_rc fail(struct pgkeel_pg_err *err, enum pgkeel_pg_rc rc, const char *fmt, ...)
    PGKEEL_PRINTF(3, 4);

static enum pgkeel_pg_rc fail(struct pgkeel_pg_err *err, enum pgkeel_pg_rc rc, const char *fmt, ...)
{
	char raw[sizeof(err->msg)];
	va_list ap;

	err->rc = rc;
	err->sqlstate[0] = '\0';
	va_start(ap, fmt);
	/* A truncated message is still the best we have. */
	(void)pgkeel_vfmt(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	one_line(err->msg, sizeof(err->msg), raw);
	return rc;
}

static void err_ok(struct pgkeel_pg_err *err)
{
	err->rc = PGKEEL_PG_OK;
	err->sqlstate[0] = '\0';
	err->msg[0] = '\0';
}

/* libpq's text without its trailing newline, for use in a message. */
static const char *conn_error(PGconn *c)
{
	static __thread char buf[256];

	one_line(buf, sizeof(buf), c != NULL ? PQerrorMessage(c) : "no connection");
	return buf[0] != '\0' ? buf : "unknown libpq error";
}

/* "host:port" or "socket dir:port" for messages (never the password). */
static void describe(const struct pgkeel_pg *pg, char *buf, size_t len)
{
	const char *host = pg->host != NULL ? pg->host : "(default)";

	if (pg->port > 0) {
		if (!pgkeel_fmt(buf, len, "%s:%d", host, pg->port))
			(void)pgkeel_fmt(buf, len, "%.40s...:%d", host, pg->port);
	} else if (!pgkeel_fmt(buf, len, "%s", host)) {
		(void)pgkeel_fmt(buf, len, "%.40s...", host);
	}
}

/* ---- handle ---- */

static char *dup_or_null(const char *s)
{
	return s != NULL ? pgkeel_strdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int pick(int v, int def)
{
	return v == 0 ? def : v;
}

static void release_params(struct pgkeel_pg *pg)
{
	free(pg->host);
	free(pg->user);
	wipe_free(pg->password);
	free(pg->passfile);
	free(pg->dbname);
	free(pg->application_name);
	for (size_t i = 0; i < pg->n_extra; i++) {
		free(pg->extra_keys[i]);
		wipe_free(pg->extra_values[i]); /* sslpassword lives here */
	}
	free(pg->extra_keys);
	free(pg->extra_values);
	pg->host = pg->user = pg->password = pg->passfile = NULL;
	pg->dbname = pg->application_name = NULL;
	pg->extra_keys = pg->extra_values = NULL;
	pg->n_extra = 0;
}

static void copy_params(struct pgkeel_pg *pg, const struct pgkeel_pg_params *p)
{
	pg->host = dup_or_null(p->host);
	pg->user = dup_or_null(p->user);
	pg->password = dup_or_null(p->password);
	pg->passfile = dup_or_null(p->passfile);
	pg->dbname = pgkeel_strdup(p->dbname != NULL ? p->dbname : DEFAULT_DBNAME);
	pg->application_name = dup_or_null(p->application_name);
	pg->port = p->port;
	pg->replication = p->replication;
	pg->connect_timeout_s = pick(p->connect_timeout_s, DEFAULT_CONNECT_TIMEOUT_S);
	pg->statement_timeout_ms = pick(p->statement_timeout_ms, DEFAULT_STATEMENT_TIMEOUT_MS);
	pg->keepalives_idle_s = pick(p->keepalives_idle_s, DEFAULT_KEEPALIVES_IDLE_S);
	pg->keepalives_interval_s = pick(p->keepalives_interval_s, DEFAULT_KEEPALIVES_INTERVAL_S);
	pg->keepalives_count = pick(p->keepalives_count, DEFAULT_KEEPALIVES_COUNT);
	pg->tcp_user_timeout_ms = pick(p->tcp_user_timeout_ms, DEFAULT_TCP_USER_TIMEOUT_MS);
	pg->cancel_reserve_ms = pick(p->cancel_reserve_ms, DEFAULT_CANCEL_RESERVE_MS);
	pg->n_extra = 0;
	if (p->n_extra > 0) {
		pg->extra_keys = pgkeel_xcalloc(p->n_extra, sizeof(char *));
		pg->extra_values = pgkeel_xcalloc(p->n_extra, sizeof(char *));
		for (size_t i = 0; i < p->n_extra; i++) {
			if (p->extra_keys[i] == NULL || p->extra_values[i] == NULL)
				continue;
			pg->extra_keys[pg->n_extra] = pgkeel_strdup(p->extra_keys[i]);
			pg->extra_values[pg->n_extra] = pgkeel_strdup(p->extra_values[i]);
			pg->n_extra++;
		}
	}
}

struct pgkeel_pg *pgkeel_pg_new(const struct pgkeel_pg_params *params)
{
	struct pgkeel_pg *pg = pgkeel_xcalloc(1, sizeof(*pg));

	copy_params(pg, params);
	return pg;
}

void pgkeel_pg_close(struct pgkeel_pg *pg)
{
	if (pg == NULL || pg->conn == NULL)
		return;
	/* Non-blocking mode: the Terminate message is sent only if it fits. */
	PQfinish(pg->conn);
	pg->conn = NULL;
	log_info("closed patroni connection to the postgresql cluster");
}

void pgkeel_pg_free(struct pgkeel_pg *pg)
{
	if (pg == NULL)
		return;
	pgkeel_pg_close(pg);
	release_params(pg);
	free(pg);
}

void pgkeel_pg_set_params(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params)
{
	struct pgkeel_pg fresh = {0};

	/* Copy first: params may point into the strings being replaced. */
	copy_params(&fresh, params);
	pgkeel_pg_close(pg);
	release_params(pg);
	fresh.conn = NULL;
	*pg = fresh;
}

bool pgkeel_pg_connected(const struct pgkeel_pg *pg)
{
	return pg != NULL && pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

int pgkeel_pg_server_version(const struct pgkeel_pg *pg)
{
	return pgkeel_pg_connected(pg) ? PQserverVersion(pg->conn) : 0;
}

int pgkeel_pg_backend_pid(const struct pgkeel_pg *pg)
{
	return pgkeel_pg_connected(pg) ? PQbackendPID(pg->conn) : 0;
}

/* ---- waiting ---- */

enum wait_result { WAIT_READY, WAIT_EXPIRED, WAIT_ERROR };

/*
 * poll() one descriptor until deadline.  A descriptor that is ready when the
 * deadline has just passed still counts as ready (one last zero-time poll).
 */
static enum wait_result wait_fd(int fd, short events, int64_t deadline, short *revents)
{
	for (;;) {
		int64_t left = deadline - pgkeel_now_monotonic_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int r;

		if (left < 0)
			left = 0;
		if (left > INT_MAX)
			left = INT_MAX;
		r = poll(&p, 1, (int)left);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return WAIT_ERROR;
		}
		if (r > 0) {
			*revents = p.revents;
			return WAIT_READY;
		}
		if (left == 0)
			return WAIT_EXPIRED;
	}
}

/* ---- connecting ---- */

static void notice_processor(void *arg, const char *message)
{
	char line[512];

	(void)arg;
	one_line(line, sizeof(line), message);
	log_debug("postgres: %s", line);
}

#define MAX_KEYWORDS 24

struct kw_list {
	const char **keys;
	const char **values;
	size_t n;
	size_t cap;
	/* text of the numbers */
	char port[16], connect_timeout[16], options[64], ka_idle[16], ka_interval[16];
	char ka_count[16], tcp_user_timeout[16];
};

static void kw_add(struct kw_list *k, const char *key, const char *value)
{
	if (value == NULL || k->n + 1 >= k->cap)
		return;
	k->keys[k->n] = key;
	k->values[k->n] = value;
	k->n++;
	k->keys[k->n] = NULL;
	k->values[k->n] = NULL;
}

static void kw_add_int(struct kw_list *k, const char *key, char *buf, size_t len, int v)
{
	if (v < 0)
		return;
	if (pgkeel_fmt(buf, len, "%d", v))
		kw_add(k, key, buf);
}

static void build_keywords(const struct pgkeel_pg *pg, struct kw_list *k)
{
	k->cap = MAX_KEYWORDS + pg->n_extra + 1;
	k->keys = pgkeel_xcalloc(k->cap, sizeof(char *));
	k->values = pgkeel_xcalloc(k->cap, sizeof(char *));
	k->n = 0;
	/* Extra keywords first: libpq keeps the last value, so ours win. */
	for (size_t i = 0; i < pg->n_extra; i++)
		kw_add(k, pg->extra_keys[i], pg->extra_values[i]);
	kw_add(k, "host", pg->host);
	if (pg->port > 0)
		kw_add_int(k, "port", k->port, sizeof(k->port), pg->port);
	kw_add(k, "user", pg->user);
	kw_add(k, "password", pg->password);
	kw_add(k, "passfile", pg->passfile);
	kw_add(k, "dbname", pg->dbname);
	kw_add(k, "application_name", pg->application_name);
	kw_add(k, "fallback_application_name", FALLBACK_APPNAME);
	kw_add_int(k, "connect_timeout", k->connect_timeout, sizeof(k->connect_timeout),
	           pg->connect_timeout_s);
	if (pg->statement_timeout_ms > 0 &&
	    pgkeel_fmt(k->options, sizeof(k->options), "-c statement_timeout=%d",
	               pg->statement_timeout_ms))
		kw_add(k, "options", k->options);
	kw_add(k, "keepalives", "1");
	kw_add_int(k, "keepalives_idle", k->ka_idle, sizeof(k->ka_idle), pg->keepalives_idle_s);
	kw_add_int(k, "keepalives_interval", k->ka_interval, sizeof(k->ka_interval),
	           pg->keepalives_interval_s);
	kw_add_int(k, "keepalives_count", k->ka_count, sizeof(k->ka_count), pg->keepalives_count);
	kw_add_int(k, "tcp_user_timeout", k->tcp_user_timeout, sizeof(k->tcp_user_timeout),
	           pg->tcp_user_timeout_ms);
	if (pg->replication)
		kw_add(k, "replication", "1");
}

static void free_keywords(struct kw_list *k)
{
	free(k->keys);
	free(k->values);
	k->keys = k->values = NULL;
}

static enum pgkeel_pg_rc do_connect(struct pgkeel_pg *pg, int64_t deadline,
                                    struct pgkeel_pg_err *err)
{
	int64_t start = pgkeel_now_monotonic_ms();
	int64_t until = deadline;
	struct kw_list k = {0};
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	char where[128];
	PGconn *c;

	describe(pg, where, sizeof(where));
	if (pg->connect_timeout_s > 0 && start + (int64_t)pg->connect_timeout_s * 1000 < until)
		until = start + (int64_t)pg->connect_timeout_s * 1000;
	if (until <= start)
		return fail(err, PGKEEL_PG_TIMEOUT, "no time left to connect to %s", where);

	log_info("establishing a new patroni connection to the postgres cluster");
	build_keywords(pg, &k);
	c = PQconnectStartParams(k.keys, k.values, 0);
	free_keywords(&k);
	if (c == NULL)
		pgkeel_oom();
	if (PQstatus(c) == CONNECTION_BAD) {
		fail(err, PGKEEL_PG_CONNECT, "could not connect to %s: %s", where, conn_error(c));
		PQfinish(c);
		return err->rc;
	}
	while (ps != PGRES_POLLING_OK) {
		enum wait_result w;
		short rev = 0;
		int fd;

		if (ps == PGRES_POLLING_FAILED) {
			fail(err, PGKEEL_PG_CONNECT, "%s", conn_error(c));
			PQfinish(c);
			return err->rc;
		}
		if (ps == PGRES_POLLING_ACTIVE) {
			ps = PQconnectPoll(c);
			continue;
		}
		fd = PQsocket(c);
		if (fd < 0) {
			fail(err, PGKEEL_PG_CONNECT, "could not connect to %s: %s", where,
			     conn_error(c));
			PQfinish(c);
			return err->rc;
		}
		w = wait_fd(fd, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, until, &rev);
		if (w == WAIT_EXPIRED) {
			PQfinish(c);
			fail(err, PGKEEL_PG_TIMEOUT, "connection to %s timed out after %lld ms",
			     where, (long long)(pgkeel_now_monotonic_ms() - start));
			log_warning("%s", err->msg);
			return err->rc;
		}
		if (w == WAIT_ERROR) {
			fail(err, PGKEEL_PG_CONNECT, "could not connect to %s: poll: %s", where,
			     strerror(errno));
			PQfinish(c);
			return err->rc;
		}
		ps = PQconnectPoll(c);
	}
	if (PQsetnonblocking(c, 1) != 0) {
		fail(err, PGKEEL_PG_CONNECT, "could not connect to %s: %s", where, conn_error(c));
		PQfinish(c);
		return err->rc;
	}
	PQsetNoticeProcessor(c, notice_processor, NULL);
	pg->conn = c;
	err_ok(err);
	return PGKEEL_PG_OK;
}

enum pgkeel_pg_rc pgkeel_pg_connect(struct pgkeel_pg *pg, int64_t deadline_ms,
                                    struct pgkeel_pg_err *err)
{
	if (pg->conn != NULL && PQstatus(pg->conn) != CONNECTION_OK)
		pgkeel_pg_close(pg);
	if (pg->conn != NULL) {
		err_ok(err);
		return PGKEEL_PG_OK;
	}
	return do_connect(pg, deadline_ms, err);
}

/* ---- cancel ---- */

struct cancel_job {
	PGcancel *cancel;
};

static void *cancel_main(void *arg)
{
	struct cancel_job *job = arg;
	char errbuf[256];

	/* Blocks until the postmaster has processed the request. */
	if (PQcancel(job->cancel, errbuf, sizeof(errbuf)) == 0)
		log_debug("cancel request failed: %s", errbuf);
	PQfreeCancel(job->cancel);
	free(job);
	atomic_fetch_sub(&cancel_threads, 1);
	return NULL;
}

/* Send a cancel request from a detached thread; false when none was sent. */
static bool start_cancel(PGconn *c)
{
	struct cancel_job *job;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int rc;

	if (atomic_fetch_add(&cancel_threads, 1) >= MAX_CANCEL_THREADS) {
		atomic_fetch_sub(&cancel_threads, 1);
		log_debug("%d cancel requests still pending, not sending another",
		          MAX_CANCEL_THREADS);
		return false;
	}
	job = pgkeel_xcalloc(1, sizeof(*job));
	job->cancel = PQgetCancel(c);
	if (job->cancel == NULL) {
		free(job);
		atomic_fetch_sub(&cancel_threads, 1);
		return false;
	}
	if (pthread_attr_init(&attr) != 0) {
		PQfreeCancel(job->cancel);
		free(job);
		atomic_fetch_sub(&cancel_threads, 1);
		return false;
	}
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The thread takes no signal: SIGPIPE from its send() becomes EPIPE. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&tid, &attr, cancel_main, job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_debug("cannot start the cancel thread: %s", strerror(rc));
		PQfreeCancel(job->cancel);
		free(job);
		atomic_fetch_sub(&cancel_threads, 1);
		return false;
	}
	return true;
}

/* ---- statements ---- */

static enum pgkeel_pg_rc lost(struct pgkeel_pg *pg, struct pgkeel_pg_err *err, const char *what)
{
	fail(err, PGKEEL_PG_LOST, "%s: %s", what, conn_error(pg->conn));
	pgkeel_pg_close(pg);
	return err->rc;
}

static enum pgkeel_pg_rc poll_failed(struct pgkeel_pg *pg, struct pgkeel_pg_err *err)
{
	fail(err, PGKEEL_PG_LOST, "poll: %s", strerror(errno));
	pgkeel_pg_close(pg);
	return err->rc;
}

static enum pgkeel_pg_rc timed_out(struct pgkeel_pg *pg, struct pgkeel_pg_err *err, int64_t start,
                                   bool cancelled)
{
	fail(err, PGKEEL_PG_TIMEOUT, "query timed out after %lld ms%s; connection closed",
	     (long long)(pgkeel_now_monotonic_ms() - start),
	     cancelled ? " (cancel requested)" : "");
	log_warning("%s", err->msg);
	pgkeel_pg_close(pg);
	return err->rc;
}

struct deadlines {
	int64_t start;
	int64_t soft; /* send the cancel request here */
	int64_t hard; /* give up here */
	bool cancel_tried;
	bool cancel_sent;
	bool may_cancel;
};

/*
 * Wait for events on the connection until the current phase deadline; past
 * the soft deadline send the cancel once and go on to the hard one.
 */
static enum wait_result wait_conn(struct pgkeel_pg *pg, short events, struct deadlines *d,
                                  short *rev)
{
	for (;;) {
		enum wait_result w;
		int fd = PQsocket(pg->conn);

		if (fd < 0) {
			errno = EBADF;
			return WAIT_ERROR;
		}
		w = wait_fd(fd, events, d->cancel_tried ? d->hard : d->soft, rev);
		if (w != WAIT_EXPIRED || d->cancel_tried)
			return w;
		d->cancel_tried = true;
		if (d->may_cancel)
			d->cancel_sent = start_cancel(pg->conn);
	}
}

static enum pgkeel_pg_rc finish_results(struct pgkeel_pg *pg, struct deadlines *d, PGresult **res,
                                        struct pgkeel_pg_err *err)
{
	PGresult *keep = NULL, *error = NULL;
	enum pgkeel_pg_rc rc;

	for (;;) {
		PGresult *r;

		while (PQisBusy(pg->conn)) {
			short rev = 0;
			enum wait_result w = wait_conn(pg, POLLIN, d, &rev);

			if (w == WAIT_EXPIRED) {
				PQclear(keep);
				PQclear(error);
				return timed_out(pg, err, d->start, d->cancel_sent);
			}
			if (w == WAIT_ERROR) {
				PQclear(keep);
				PQclear(error);
				return poll_failed(pg, err);
			}
			if (PQconsumeInput(pg->conn) == 0) {
				PQclear(keep);
				PQclear(error);
				return lost(pg, err, "connection lost");
			}
		}
		r = PQgetResult(pg->conn);
		if (r == NULL)
			break;
		switch (PQresultStatus(r)) {
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
		case PGRES_EMPTY_QUERY:
			PQclear(keep);
			keep = r;
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			/* Nothing here starts COPY: give up on this connection. */
			PQclear(r);
			PQclear(keep);
			PQclear(error);
			fail(err, PGKEEL_PG_BADRESULT, "unexpected COPY response");
			pgkeel_pg_close(pg);
			return err->rc;
		default:
			if (error == NULL)
				error = r;
			else
				PQclear(r);
			break;
		}
	}

	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		PQclear(keep);
		PQclear(error);
		return lost(pg, err, "connection lost");
	}
	if (error != NULL) {
		const char *state = PQresultErrorField(error, PG_DIAG_SQLSTATE);
		const char *primary = PQresultErrorField(error, PG_DIAG_MESSAGE_PRIMARY);

		if (primary == NULL)
			primary = PQresultErrorMessage(error);
		if (d->cancel_sent && state != NULL &&
		    strcmp(state, SQLSTATE_QUERY_CANCELED) == 0) {
			PQclear(keep);
			PQclear(error);
			return timed_out(pg, err, d->start, true);
		}
		rc = fail(err, PGKEEL_PG_SQL, "%s", primary);
		if (state != NULL)
			(void)pgkeel_fmt(err->sqlstate, sizeof(err->sqlstate), "%s", state);
		PQclear(keep);
		PQclear(error);
	} else if (keep == NULL) {
		rc = fail(err, PGKEEL_PG_BADRESULT, "no result");
	} else {
		rc = PGKEEL_PG_OK;
		err_ok(err);
		if (res != NULL)
			*res = keep;
		else
			PQclear(keep);
	}
	/* A cancel that has not arrived yet could hit the next statement. */
	if (d->cancel_sent)
		pgkeel_pg_close(pg);
	return rc;
}

static enum pgkeel_pg_rc run_once(struct pgkeel_pg *pg, const char *sql, int nparams,
                                  const char *const *params, int64_t deadline, PGresult **res,
                                  struct pgkeel_pg_err *err)
{
	struct deadlines d = {0};
	int64_t left, reserve;
	int sent;

	d.start = pgkeel_now_monotonic_ms();
	d.hard = deadline;
	left = deadline - d.start;
	reserve = pg->cancel_reserve_ms;
	d.may_cancel = reserve >= 0;
	if (reserve < 0)
		reserve = 0;
	if (reserve > left / 4)
		reserve = left > 0 ? left / 4 : 0;
	d.soft = deadline - reserve;

	if (pg->replication)
		sent = PQsendQuery(pg->conn, sql);
	else
		sent = PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (sent == 0)
		return lost(pg, err, "could not send the query");
	for (;;) {
		short rev = 0;
		enum wait_result w;
		int f = PQflush(pg->conn);

		if (f == 0)
			break;
		if (f == -1)
			return lost(pg, err, "could not send the query");
		w = wait_conn(pg, POLLIN | POLLOUT, &d, &rev);
		if (w == WAIT_EXPIRED)
			return timed_out(pg, err, d.start, d.cancel_sent);
		if (w == WAIT_ERROR)
			return poll_failed(pg, err);
		if ((rev & POLLIN) != 0 && PQconsumeInput(pg->conn) == 0)
			return lost(pg, err, "connection lost");
	}
	return finish_results(pg, &d, res, err);
}

/*
 * Connect if needed and run sql.  With retry_stale, a connection opened by an
 * earlier call that turns out broken (a restarted server) is replaced once.
 */
static enum pgkeel_pg_rc run(struct pgkeel_pg *pg, const char *sql, int nparams,
                             const char *const *params, int64_t deadline, PGresult **res,
                             bool retry_stale, struct pgkeel_pg_err *err)
{
	bool fresh = false;
	enum pgkeel_pg_rc rc;

	if (res != NULL)
		*res = NULL;
	if (pgkeel_now_monotonic_ms() >= deadline)
		return fail(err, PGKEEL_PG_TIMEOUT, "the deadline had passed before the query");
	if (pg->conn != NULL && PQstatus(pg->conn) != CONNECTION_OK)
		pgkeel_pg_close(pg);
	if (pg->conn == NULL) {
		rc = do_connect(pg, deadline, err);
		if (rc != PGKEEL_PG_OK)
			return rc;
		fresh = true;
	}
	rc = run_once(pg, sql, nparams, params, deadline, res, err);
	if (rc == PGKEEL_PG_LOST && retry_stale && !fresh && pgkeel_now_monotonic_ms() < deadline) {
		log_debug("retrying on a new connection: %s", err->msg);
		rc = do_connect(pg, deadline, err);
		if (rc != PGKEEL_PG_OK)
			return rc;
		rc = run_once(pg, sql, nparams, params, deadline, res, err);
	}
	return rc;
}

enum pgkeel_pg_rc pgkeel_pg_exec(struct pgkeel_pg *pg, const char *sql, int nparams,
                                 const char *const *params, int64_t deadline_ms,
                                 struct pg_result **res, struct pgkeel_pg_err *err)
{
	if (pg->replication && nparams > 0) {
		if (res != NULL)
			*res = NULL;
		return fail(err, PGKEEL_PG_BADRESULT,
		            "parameters need the extended protocol, not a replication connection");
	}
	return run(pg, sql, nparams, params, deadline_ms, res, false, err);
}

/* ---- reading results ---- */

static bool shape(const PGresult *r, int min_rows, int max_rows, int cols,
                  struct pgkeel_pg_err *err, const char *what)
{
	int rows = PQntuples(r);

	if (PQnfields(r) != cols || rows < min_rows || (max_rows >= 0 && rows > max_rows)) {
		fail(err, PGKEEL_PG_BADRESULT, "%s: %d rows of %d columns, expected %d columns",
		     what, rows, PQnfields(r), cols);
		return false;
	}
	return true;
}

static char *get_str(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return pgkeel_strdup(PQgetvalue(r, row, col));
}

/* NULL yields null_value; junk is an error. */
static bool get_i64(const PGresult *r, int row, int col, int64_t null_value, int64_t *out)
{
	if (PQgetisnull(r, row, col)) {
		*out = null_value;
		return true;
	}
	return pgkeel_parse_int64(PQgetvalue(r, row, col), out);
}

static bool get_int(const PGresult *r, int row, int col, int null_value, int *out)
{
	int64_t v;

	if (!get_i64(r, row, col, null_value, &v) || v < INT_MIN || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

static bool get_bool(const PGresult *r, int row, int col, bool *out)
{
	const char *v;

	if (PQgetisnull(r, row, col)) {
		*out = false;
		return true;
	}
	v = PQgetvalue(r, row, col);
	if (strcmp(v, "t") == 0)
		*out = true;
	else if (strcmp(v, "f") == 0)
		*out = false;
	else
		return false;
	return true;
}

/*
 * to_char(ts, 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM') as Python's str(datetime):
 * the fraction is left out when it is zero.  Text of another shape (a year
 * past 9999) is passed on as it is.
 */
static bool get_timestamp(const PGresult *r, int row, int col, char *buf, size_t len)
{
	const char *v;

	buf[0] = '\0';
	if (PQgetisnull(r, row, col))
		return true;
	v = PQgetvalue(r, row, col);
	if (strlen(v) >= 26 && v[19] == '.' && strncmp(v + 19, ".000000", 7) == 0)
		return pgkeel_fmt(buf, len, "%.19s%s", v, v + 26);
	return pgkeel_fmt(buf, len, "%s", v);
}

/* ---- status ---- */

#define TS_FORMAT "'YYYY-MM-DD HH24:MI:SS.USTZH:TZM'"

/*
 * Patroni 3.0.2's expressions (Postgresql.TL_LSN, POSTMASTER_START_TIME,
 * the status query of api.py and the receiver part of cluster_info_query),
 * as one row for PostgreSQL 10+.
 */
static const char status_sql[] =
    "SELECT pg_catalog.to_char(pg_catalog.pg_postmaster_start_time(), " TS_FORMAT "), "
    "CASE WHEN pg_catalog.pg_is_in_recovery() THEN 0 "
    "ELSE ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name("
    "pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int END, "
    "CASE WHEN pg_catalog.pg_is_in_recovery() THEN 0 "
    "ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::bigint END, "
    "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_replay_lsn(), '0/0')::bigint, "
    "pg_catalog.pg_wal_lsn_diff(COALESCE(pg_catalog.pg_last_wal_receive_lsn(), '0/0'), "
    "'0/0')::bigint, "
    "pg_catalog.pg_is_in_recovery() AND pg_catalog.pg_is_wal_replay_paused(), "
    "pg_catalog.to_char(pg_catalog.pg_last_xact_replay_timestamp(), " TS_FORMAT "), "
    "pg_catalog.pg_is_in_recovery(), "
    "(SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()), "
    "CASE WHEN latest_end_lsn IS NULL THEN NULL ELSE received_tli END, "
    "status, slot_name, conninfo, "
    "pg_catalog.current_setting('synchronous_commit'), "
    "pg_catalog.current_setting('synchronous_standby_names'), "
    "pg_catalog.current_setting('server_version_num')::int "
    "FROM pg_catalog.pg_stat_get_wal_receiver()";

enum status_col {
	SC_START_TIME,
	SC_TIMELINE,
	SC_WAL_LSN,
	SC_REPLAY_LSN,
	SC_RECEIVE_LSN,
	SC_PAUSED,
	SC_REPLAY_TS,
	SC_IN_RECOVERY,
	SC_CHECKPOINT_TLI,
	SC_RECEIVED_TLI,
	SC_RECEIVER_STATUS,
	SC_SLOT_NAME,
	SC_CONNINFO,
	SC_SYNC_COMMIT,
	SC_SYNC_NAMES,
	SC_VERSION,
	SC_COUNT
};

/*
 * api.py's walsender join, with the LSN columns of cluster_info_query.  The
 * role name comes from pg_roles rather than pg_authid: the same rows, and
 * readable by a role that is not a superuser.
 */
static const char walsenders_sql[] =
    "SELECT w.pid, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = usesysid) AS usename, "
    "application_name, client_addr, w.state, sync_state, sync_priority, "
    "pg_catalog.pg_wal_lsn_diff(sent_lsn, '0/0')::bigint, "
    "pg_catalog.pg_wal_lsn_diff(write_lsn, '0/0')::bigint, "
    "pg_catalog.pg_wal_lsn_diff(flush_lsn, '0/0')::bigint, "
    "pg_catalog.pg_wal_lsn_diff(replay_lsn, '0/0')::bigint "
    "FROM pg_catalog.pg_stat_get_wal_senders() w, pg_catalog.pg_stat_get_activity(w.pid) "
    "ORDER BY w.pid";

#define WALSENDER_COLS 11

static const char pending_names_sql[] =
    "SELECT name FROM pg_catalog.pg_settings WHERE pending_restart ORDER BY name";

static bool parse_status(const PGresult *r, struct pgkeel_pg_status *st, struct pgkeel_pg_err *err)
{
	int64_t v;

	if (!shape(r, 1, 1, SC_COUNT, err, "status query"))
		return false;
	if (!get_timestamp(r, 0, SC_START_TIME, st->postmaster_start_time,
	                   sizeof(st->postmaster_start_time)) ||
	    !get_timestamp(r, 0, SC_REPLAY_TS, st->replay_timestamp,
	                   sizeof(st->replay_timestamp)) ||
	    !get_int(r, 0, SC_TIMELINE, 0, &st->timeline) ||
	    !get_i64(r, 0, SC_WAL_LSN, 0, &st->wal_lsn) ||
	    !get_i64(r, 0, SC_REPLAY_LSN, 0, &st->replay_lsn) ||
	    !get_i64(r, 0, SC_RECEIVE_LSN, 0, &st->receive_lsn) ||
	    !get_bool(r, 0, SC_PAUSED, &st->replay_paused) ||
	    !get_bool(r, 0, SC_IN_RECOVERY, &st->in_recovery) ||
	    !get_int(r, 0, SC_CHECKPOINT_TLI, 0, &st->checkpoint_tli) ||
	    !get_int(r, 0, SC_RECEIVED_TLI, 0, &st->received_tli) ||
	    !get_i64(r, 0, SC_VERSION, 0, &v) || v < 0 || v > INT_MAX) {
		fail(err, PGKEEL_PG_BADRESULT, "status query: unexpected values");
		return false;
	}
	st->server_version = (int)v;
	st->receiver_status = get_str(r, 0, SC_RECEIVER_STATUS);
	st->receiver_slot_name = get_str(r, 0, SC_SLOT_NAME);
	st->receiver_conninfo = get_str(r, 0, SC_CONNINFO);
	st->synchronous_commit = get_str(r, 0, SC_SYNC_COMMIT);
	st->synchronous_standby_names = get_str(r, 0, SC_SYNC_NAMES);
	if (st->in_recovery)
		st->timeline = st->received_tli > 0 ? st->received_tli : st->checkpoint_tli;
	return true;
}

static bool parse_walsenders(const PGresult *r, struct pgkeel_pg_status *st,
                             struct pgkeel_pg_err *err)
{
	int rows = PQntuples(r);

	if (!shape(r, 0, -1, WALSENDER_COLS, err, "walsender query"))
		return false;
	if (rows == 0)
		return true;
	st->walsenders = pgkeel_xcalloc((size_t)rows, sizeof(*st->walsenders));
	for (int i = 0; i < rows; i++) {
		struct pgkeel_pg_walsender *w = &st->walsenders[i];

		st->n_walsenders++;
		w->usename = get_str(r, i, 1);
		w->application_name = get_str(r, i, 2);
		w->client_addr = get_str(r, i, 3);
		w->state = get_str(r, i, 4);
		w->sync_state = get_str(r, i, 5);
		if (!get_int(r, i, 0, 0, &w->pid) || !get_int(r, i, 6, 0, &w->sync_priority) ||
		    !get_i64(r, i, 7, -1, &w->sent_lsn) || !get_i64(r, i, 8, -1, &w->write_lsn) ||
		    !get_i64(r, i, 9, -1, &w->flush_lsn) ||
		    !get_i64(r, i, 10, -1, &w->replay_lsn)) {
			fail(err, PGKEEL_PG_BADRESULT, "walsender query: unexpected values");
			return false;
		}
	}
	return true;
}

static bool parse_pending_names(const PGresult *r, struct pgkeel_pg_status *st,
                                struct pgkeel_pg_err *err)
{
	int rows = PQntuples(r);

	if (!shape(r, 0, -1, 1, err, "pending_restart query"))
		return false;
	if (rows == 0)
		return true;
	st->pending_restart_names = pgkeel_xcalloc((size_t)rows, sizeof(char *));
	for (int i = 0; i < rows; i++) {
		/* Patroni leaves its recovery parameters out (recovery_target_* are
		 * postmaster-context and change on every promotion) */
		if (PQgetisnull(r, i, 0) || pgkeel_pg_is_recovery_param(PQgetvalue(r, i, 0)))
			continue;
		st->pending_restart_names[st->n_pending_restart++] = get_str(r, i, 0);
	}
	st->pending_restart = st->n_pending_restart > 0;
	return true;
}

void pgkeel_pg_status_free(struct pgkeel_pg_status *st)
{
	if (st == NULL)
		return;
	free(st->receiver_status);
	free(st->receiver_slot_name);
	free(st->receiver_conninfo);
	free(st->synchronous_commit);
	free(st->synchronous_standby_names);
	for (size_t i = 0; i < st->n_pending_restart; i++)
		free(st->pending_restart_names[i]);
	free(st->pending_restart_names);
	for (size_t i = 0; i < st->n_walsenders; i++) {
		struct pgkeel_pg_walsender *w = &st->walsenders[i];

		free(w->usename);
		free(w->application_name);
		free(w->client_addr);
		free(w->state);
		free(w->sync_state);
	}
	free(st->walsenders);
	free(st);
}

enum pgkeel_pg_rc pgkeel_pg_query_status(struct pgkeel_pg *pg, int64_t deadline_ms,
                                         struct pgkeel_pg_status **out, struct pgkeel_pg_err *err)
{
	struct pgkeel_pg_status *st;
	PGresult *r = NULL;
	enum pgkeel_pg_rc rc;

	*out = NULL;
	if (pg->replication)
		return fail(err, PGKEEL_PG_BADRESULT, "status needs a normal connection");
	st = pgkeel_xcalloc(1, sizeof(*st));
	rc = run(pg, status_sql, 0, NULL, deadline_ms, &r, true, err);
	if (rc != PGKEEL_PG_OK)
		goto out;
	if (!parse_status(r, st, err)) {
		rc = err->rc;
		goto out;
	}
	PQclear(r);
	r = NULL;
	rc = run(pg, walsenders_sql, 0, NULL, deadline_ms, &r, true, err);
	if (rc != PGKEEL_PG_OK)
		goto out;
	if (!parse_walsenders(r, st, err)) {
		rc = err->rc;
		goto out;
	}
	PQclear(r);
	r = NULL;
	rc = run(pg, pending_names_sql, 0, NULL, deadline_ms, &r, true, err);
	if (rc != PGKEEL_PG_OK)
		goto out;
	if (!parse_pending_names(r, st, err)) {
		rc = err->rc;
		goto out;
	}
	*out = st;
	st = NULL;
out:
	PQclear(r);
	pgkeel_pg_status_free(st);
	return rc;
}

/* ---- settings ---- */

/* A text[] literal of the lower-cased names: {"a","b"}. */
static char *names_array(const char *const *names, size_t n)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			pgkeel_sbuf_putc(&b, ',');
		pgkeel_sbuf_putc(&b, '"');
		for (const char *p = names[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				pgkeel_sbuf_putc(&b, '\\');
			pgkeel_sbuf_putc(&b, (char)tolower((unsigned char)*p));
		}
		pgkeel_sbuf_putc(&b, '"');
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

#define SETTINGS_COLUMNS "name, setting, unit, vartype, context, sourcefile, pending_restart"
#define SETTINGS_COLS    7

static const char read_settings_sql[] =
    "SELECT " SETTINGS_COLUMNS " FROM pg_catalog.pg_settings "
    "WHERE pg_catalog.lower(name) = ANY($1::text[]) ORDER BY name";

static const char pending_restart_sql[] =
    "SELECT " SETTINGS_COLUMNS " FROM pg_catalog.pg_settings "
    "WHERE pg_catalog.lower(name) != ALL($1::text[]) AND pending_restart ORDER BY name";

void pgkeel_pg_settings_free(struct pgkeel_pg_settings *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct pgkeel_pg_setting *it = &s->items[i];

		free(it->name);
		free(it->setting);
		free(it->unit);
		free(it->vartype);
		free(it->context);
		free(it->sourcefile);
	}
	free(s->items);
	free(s);
}

static enum pgkeel_pg_rc settings_query(struct pgkeel_pg *pg, const char *sql,
                                        const char *const *names, size_t n_names, int64_t deadline,
                                        struct pgkeel_pg_settings **out, struct pgkeel_pg_err *err)
{
	struct pgkeel_pg_settings *s;
	const char *params[1];
	char *array;
	PGresult *r = NULL;
	enum pgkeel_pg_rc rc;
	int rows;

	*out = NULL;
	if (pg->replication)
		return fail(err, PGKEEL_PG_BADRESULT, "settings need a normal connection");
	array = names_array(names, n_names);
	params[0] = array;
	rc = run(pg, sql, 1, params, deadline, &r, true, err);
	free(array);
	if (rc != PGKEEL_PG_OK)
		return rc;
	if (!shape(r, 0, -1, SETTINGS_COLS, err, "pg_settings query")) {
		PQclear(r);
		return err->rc;
	}
	rows = PQntuples(r);
	s = pgkeel_xcalloc(1, sizeof(*s));
	if (rows > 0)
		s->items = pgkeel_xcalloc((size_t)rows, sizeof(*s->items));
	for (int i = 0; i < rows; i++) {
		struct pgkeel_pg_setting *it = &s->items[s->n];

		if (PQgetisnull(r, i, 0))
			continue;
		s->n++;
		it->name = get_str(r, i, 0);
		it->setting = get_str(r, i, 1);
		it->unit = get_str(r, i, 2);
		it->vartype = get_str(r, i, 3);
		it->context = get_str(r, i, 4);
		it->sourcefile = get_str(r, i, 5);
		if (!get_bool(r, i, 6, &it->pending_restart)) {
			PQclear(r);
			pgkeel_pg_settings_free(s);
			return fail(err, PGKEEL_PG_BADRESULT,
			            "pg_settings query: unexpected values");
		}
	}
	PQclear(r);
	*out = s;
	return PGKEEL_PG_OK;
}

enum pgkeel_pg_rc pgkeel_pg_read_settings(struct pgkeel_pg *pg, const char *const *names,
                                          size_t n_names, int64_t deadline_ms,
                                          struct pgkeel_pg_settings **out,
                                          struct pgkeel_pg_err *err)
{
	return settings_query(pg, read_settings_sql, names, n_names, deadline_ms, out, err);
}

enum pgkeel_pg_rc pgkeel_pg_pending_restart(struct pgkeel_pg *pg, const char *const *ignore,
                                            size_t n_ignore, int64_t deadline_ms,
                                            struct pgkeel_pg_settings **out,
                                            struct pgkeel_pg_err *err)
{
	return settings_query(pg, pending_restart_sql, ignore, n_ignore, deadline_ms, out, err);
}

const struct pgkeel_pg_setting *pgkeel_pg_settings_find(const struct pgkeel_pg_settings *s,
                                                        const char *name)
{
	if (s == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < s->n; i++) {
		if (strcasecmp(s->items[i].name, name) == 0)
			return &s->items[i];
	}
	return NULL;
}

/* ---- replication connection ---- */

bool pgkeel_pg_parse_lsn(const char *s, int64_t *out)
{
	unsigned long long hi = 0, lo = 0;
	const char *p = s;
	int digits;

	if (s == NULL)
		return false;
	for (digits = 0; isxdigit((unsigned char)*p); p++, digits++)
		hi = hi * 16 + (unsigned long long)(isdigit((unsigned char)*p)
		                                        ? *p - '0'
		                                        : tolower((unsigned char)*p) - 'a' + 10);
	if (digits < 1 || digits > 8 || *p != '/')
		return false;
	p++;
	for (digits = 0; isxdigit((unsigned char)*p); p++, digits++)
		lo = lo * 16 + (unsigned long long)(isdigit((unsigned char)*p)
		                                        ? *p - '0'
		                                        : tolower((unsigned char)*p) - 'a' + 10);
	if (digits < 1 || digits > 8 || *p != '\0' || hi > 0x7fffffffULL)
		return false;
	*out = (int64_t)((hi << 32) | lo);
	return true;
}

enum pgkeel_pg_rc pgkeel_pg_identify_system(struct pgkeel_pg *pg, int64_t deadline_ms,
                                            struct pgkeel_pg_sysinfo *out,
                                            struct pgkeel_pg_err *err)
{
	PGresult *r = NULL;
	enum pgkeel_pg_rc rc;

	memset(out, 0, sizeof(*out));
	if (!pg->replication)
		return fail(err, PGKEEL_PG_BADRESULT,
		            "IDENTIFY_SYSTEM needs a replication connection");
	rc = run(pg, "IDENTIFY_SYSTEM", 0, NULL, deadline_ms, &r, true, err);
	if (rc != PGKEEL_PG_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) < 3 || PQgetisnull(r, 0, 0) ||
	    !pgkeel_fmt(out->systemid, sizeof(out->systemid), "%s", PQgetvalue(r, 0, 0)) ||
	    !get_int(r, 0, 1, 0, &out->timeline) ||
	    !pgkeel_pg_parse_lsn(PQgetvalue(r, 0, 2), &out->xlogpos)) {
		PQclear(r);
		memset(out, 0, sizeof(*out));
		return fail(err, PGKEEL_PG_BADRESULT, "IDENTIFY_SYSTEM: unexpected answer");
	}
	PQclear(r);
	err_ok(err);
	return PGKEEL_PG_OK;
}
