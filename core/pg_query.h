/*
 * pg_query: the HA loop's own libpq connection to the local PostgreSQL, and
 * the monitoring queries Patroni 3.0.2 runs on it.
 *
 * Every operation returns by an absolute deadline on CLOCK_MONOTONIC
 * (milliseconds, as pgkeel_now_monotonic_ms()), whatever the server does: a
 * SIGSTOPped postmaster, a backend that never answers, a listener that accepts
 * and stays silent.  Connecting uses PQconnectStartParams + PQconnectPoll and
 * queries PQsendQueryParams + PQconsumeInput/PQisBusy, all waiting in poll()
 * on PQsocket() with the time left.
 *
 * Deadline and cancel.  A query waits for its result until deadline minus a
 * cancel reserve (params.cancel_reserve_ms, at most a quarter of the time
 * left).  Then a cancel request is sent and the result is awaited for the
 * rest of the time: a busy server answers "canceling statement due to user
 * request" and the call returns PGKEEL_PG_TIMEOUT by the deadline.  libpq 15
 * has no non-blocking cancel (PQcancelStart is libpq 17) and PQcancel()
 * itself opens a connection and then waits for the postmaster to close it,
 * with no timeout: against a stopped postmaster it would block forever.  So
 * PQcancel() runs on a short-lived detached thread that owns its PGcancel
 * copy (no pointer into the connection, all signals blocked) and nobody waits
 * for it: it ends when the postmaster processes or refuses the request.  At
 * most a few such threads exist at a time; beyond that the cancel is skipped
 * (the server's statement_timeout still ends the statement once it runs).
 * Whenever a cancel was sent, or the deadline passed, or the connection broke,
 * the connection is closed; the next operation connects again.  (A cancel
 * that arrives late could otherwise hit the next statement on the same
 * backend.)
 *
 * Connecting is bounded by min(deadline, start + connect_timeout).  A few
 * steps of libpq run synchronously outside our poll(): reading the passfile,
 * the user lookup, and name resolution (a blocking getaddrinfo() inside
 * PQconnectPoll).  Measured overrun with a socket directory: under 10 ms.
 * Pass a socket directory or a numeric address (Patroni's local connection
 * uses "localhost", answered from /etc/hosts), never a name that needs DNS.
 * Extra keywords cannot override the named parameters (ours come last).
 *
 * Connection parameters (as Patroni's local connection, spec 3.7):
 * dbname=postgres, fallback_application_name=Patroni (so pg_stat_activity
 * shows "Patroni"), connect_timeout=3, options='-c statement_timeout=2000',
 * plus keepalives=1 with idle/interval/count and tcp_user_timeout (TCP only).
 * The password is copied, wiped when freed, never logged; a passfile may be
 * given instead.  expand_dbname is off: dbname is never parsed as a conninfo.
 *
 * Logging: connecting and closing log Patroni's INFO lines ("establishing a
 * new patroni connection to the postgres cluster", "closed patroni connection
 * to the postgresql cluster"); a deadline that expires logs one WARNING.
 * Everything else goes only into struct pgkeel_pg_err for the caller.
 *
 * Threads: a struct pgkeel_pg belongs to one thread (the HA loop).
 */
#ifndef PGKEEL_PG_QUERY_H
#define PGKEEL_PG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

/* libpq's PGresult, without making every includer find libpq-fe.h. */
struct pg_result;

enum pgkeel_pg_rc {
	PGKEEL_PG_OK = 0,
	PGKEEL_PG_TIMEOUT = 1,   /* the deadline passed (mid-statement: connection closed) */
	PGKEEL_PG_CONNECT = 2,   /* could not connect: refused, no socket, auth, starting up */
	PGKEEL_PG_LOST = 3,      /* the connection broke during the operation; closed */
	PGKEEL_PG_SQL = 4,       /* the server refused the statement; sqlstate set; kept open */
	PGKEEL_PG_BADRESULT = 5, /* the answer did not have the expected shape */
};

/* "ok", "timeout", "connect", "lost", "sql", "badresult". */
const char *pgkeel_pg_rc_name(enum pgkeel_pg_rc rc);

struct pgkeel_pg_err {
	enum pgkeel_pg_rc rc;
	char sqlstate[6]; /* PGKEEL_PG_SQL: the server's SQLSTATE, else "" */
	char msg[256];    /* one line, no password */
};

struct pgkeel_pg_params {
	const char *host;             /* socket directory or host; NULL: libpq default */
	int port;                     /* 0: libpq default */
	const char *user;             /* NULL: libpq default */
	const char *password;         /* NULL: none or from the passfile */
	const char *passfile;         /* NULL: libpq default (~/.pgpass, PGPASSFILE) */
	const char *dbname;           /* NULL: "postgres" */
	const char *application_name; /* NULL: fallback_application_name=Patroni applies */
	bool replication;             /* replication=1: walsender (IDENTIFY_SYSTEM) */
	int connect_timeout_s;        /* 0: 3 */
	int statement_timeout_ms;     /* 0: 2000; < 0: no options at all */
	int keepalives_idle_s;        /* 0: 10; < 0: the OS default */
	int keepalives_interval_s;    /* 0: 3; < 0: the OS default */
	int keepalives_count;         /* 0: 3; < 0: the OS default */
	int tcp_user_timeout_ms;      /* 0: 10000; < 0: the OS default */
	int cancel_reserve_ms;        /* 0: 250; < 0: never cancel, just close */
	/* More libpq keywords (sslmode, sslcert, sslrootcert, gssencmode, ...). */
	const char *const *extra_keys;
	const char *const *extra_values;
	size_t n_extra;
};

struct pgkeel_pg;

/* A handle with a copy of params; not connected yet.  Aborts on OOM. */
struct pgkeel_pg *pgkeel_pg_new(const struct pgkeel_pg_params *params);
/* Close the connection and wipe the copied password.  NULL is fine. */
void pgkeel_pg_free(struct pgkeel_pg *pg);
/* Replace the parameters (config reload); closes an open connection. */
void pgkeel_pg_set_params(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params);

/* The handle's parameters (pointers into pg: valid while it lives, unchanged). */
void pgkeel_pg_get_params(const struct pgkeel_pg *pg, struct pgkeel_pg_params *out);

/* Connect now unless connected.  Queries connect on their own as well. */
enum pgkeel_pg_rc pgkeel_pg_connect(struct pgkeel_pg *pg, int64_t deadline_ms,
                                    struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;
void pgkeel_pg_close(struct pgkeel_pg *pg);
bool pgkeel_pg_connected(const struct pgkeel_pg *pg);
/* server_version_num of the open connection, 0 when closed. */
int pgkeel_pg_server_version(const struct pgkeel_pg *pg);
/* pid of the backend serving the open connection, 0 when closed. */
int pgkeel_pg_backend_pid(const struct pgkeel_pg *pg);

/*
 * One statement with text parameters ($1..), connecting first if needed.
 * On PGKEEL_PG_OK and res != NULL, *res is the PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK result, freed by the caller with PQclear().  No retry: a
 * statement that may have run is never sent twice.  On a replication
 * connection the simple query protocol is used (and nparams must be 0).
 */
enum pgkeel_pg_rc pgkeel_pg_exec(struct pgkeel_pg *pg, const char *sql, int nparams,
                                 const char *const *params, int64_t deadline_ms,
                                 struct pg_result **res,
                                 struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;

/* ---- monitoring (read-only; a stale connection is reconnected once) ---- */

/* One walsender: pg_stat_get_wal_senders() joined with pg_stat_get_activity(). */
struct pgkeel_pg_walsender {
	int pid;
	char *usename; /* NULL if unknown */
	char *application_name;
	char *client_addr; /* NULL for a unix-socket client */
	char *state;       /* startup, catchup, streaming, backup, stopping */
	char *sync_state;  /* async, potential, sync, quorum */
	int sync_priority;
	int64_t sent_lsn; /* bytes from 0/0; -1 when NULL */
	int64_t write_lsn;
	int64_t flush_lsn;
	int64_t replay_lsn;
};

struct pgkeel_pg_status {
	int server_version; /* server_version_num, e.g. 150018 */
	/* Patroni's rendering: "2026-11-25 21:04:36.943404+00:00", the fraction
	 * left out when zero; replay_timestamp is "" when NULL. */
	char postmaster_start_time[48];
	char replay_timestamp[48];
	bool in_recovery;
	/* Primary: the timeline of the current WAL file (Patroni's expression).
	 * Replica: received_tli when the WAL receiver has one, else
	 * checkpoint_tli.  (Patroni's status document asks IDENTIFY_SYSTEM on a
	 * replication connection instead: pgkeel_pg_identify_system().) */
	int timeline;
	int64_t wal_lsn;    /* primary: pg_current_wal_lsn() - '0/0'; replica: 0 */
	int64_t replay_lsn; /* pg_last_wal_replay_lsn() - '0/0'; 0 when NULL */
	/* COALESCE(pg_last_wal_receive_lsn(), '0/0') - '0/0'.  Patroni reports
	 * received_location = receive_lsn or, when 0, replay_lsn. */
	int64_t receive_lsn;
	bool replay_paused;       /* in recovery and pg_is_wal_replay_paused() */
	int checkpoint_tli;       /* pg_control_checkpoint().timeline_id */
	int received_tli;         /* WAL receiver's, 0 when none or nothing received */
	char *receiver_status;    /* pg_stat_get_wal_receiver().status, NULL: none */
	char *receiver_slot_name; /* its slot_name, NULL: none */
	char *receiver_conninfo;  /* its conninfo (password shown as ********) */
	char *synchronous_commit;
	char *synchronous_standby_names;
	bool pending_restart;         /* some pg_settings row has pending_restart */
	char **pending_restart_names; /* those names, sorted */
	size_t n_pending_restart;
	struct pgkeel_pg_walsender *walsenders; /* ordered by pid */
	size_t n_walsenders;
};

/* Run the status queries (three statements, one deadline). */
enum pgkeel_pg_rc pgkeel_pg_query_status(struct pgkeel_pg *pg, int64_t deadline_ms,
                                         struct pgkeel_pg_status **out,
                                         struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;
void pgkeel_pg_status_free(struct pgkeel_pg_status *st);

/* A pg_settings row; unit and sourcefile may be NULL. */
struct pgkeel_pg_setting {
	char *name;
	char *setting;
	char *unit;
	char *vartype; /* bool, enum, integer, real, string */
	char *context; /* internal, postmaster, sighup, superuser-backend, ... */
	char *sourcefile;
	bool pending_restart;
};

struct pgkeel_pg_settings {
	struct pgkeel_pg_setting *items; /* ordered by name */
	size_t n;
};

/*
 * pg_settings rows whose lower(name) is one of names (compared
 * case-insensitively, as Patroni's _get_pg_settings).  Unknown names are
 * simply absent from the answer.
 */
enum pgkeel_pg_rc pgkeel_pg_read_settings(struct pgkeel_pg *pg, const char *const *names,
                                          size_t n_names, int64_t deadline_ms,
                                          struct pgkeel_pg_settings **out,
                                          struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;
/*
 * The rows with pending_restart, except those named in ignore
 * (case-insensitive; Patroni passes its recovery parameters).  Patroni's
 * check after a reload is "any row" = out->n > 0.
 */
enum pgkeel_pg_rc pgkeel_pg_pending_restart(struct pgkeel_pg *pg, const char *const *ignore,
                                            size_t n_ignore, int64_t deadline_ms,
                                            struct pgkeel_pg_settings **out,
                                            struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;
/* The row named name (case-insensitive), or NULL. */
const struct pgkeel_pg_setting *pgkeel_pg_settings_find(const struct pgkeel_pg_settings *s,
                                                        const char *name);
void pgkeel_pg_settings_free(struct pgkeel_pg_settings *s);

/*
 * IDENTIFY_SYSTEM on a replication connection (params.replication): the
 * system identifier, the timeline and the current WAL position.  On a
 * standby the timeline is the one being replayed: what Patroni publishes as
 * a replica's timeline.
 */
struct pgkeel_pg_sysinfo {
	char systemid[32];
	int timeline;
	int64_t xlogpos;
};
enum pgkeel_pg_rc pgkeel_pg_identify_system(struct pgkeel_pg *pg, int64_t deadline_ms,
                                            struct pgkeel_pg_sysinfo *out,
                                            struct pgkeel_pg_err *err) PGKEEL_MUSTCHECK;

/* "16/B374D848" -> bytes from 0/0.  False on anything else. */
bool pgkeel_pg_parse_lsn(const char *s, int64_t *out);

#endif
