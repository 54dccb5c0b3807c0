/*
 * pg_rewind_internal: what pg_rewind_check.c (the check, and the pieces
 * below) and pg_rewind_run.c (the job) share.  Not for use outside those
 * two files; the public interface is pg_rewind_run.h.
 */
#ifndef PGKEEL_PG_REWIND_INTERNAL_H
#define PGKEEL_PG_REWIND_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

#include "child.h"
#include "config.h"
#include "json.h"
#include "pg_bootstrap.h"

struct pollfd;

/* Output kept of each stream of a command, by default. */
#define PGKEEL_RW_OUTPUT_BYTES 65536

/* LANG=C, LC_ALL=C: pg_controldata's and pg_waldump's output is parsed. */
extern const char *const pgkeel_rw_c_env[];

void pgkeel_rw_set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

/* ---- commands ---- */

/*
 * One child with its stdout and stderr read into buffers that keep the
 * last `cap` bytes each, killed at its deadline.
 */
struct pgkeel_rw_cmd {
	struct pgkeel_child child;
	char **argv; /* NULL: nothing started */
	char *what;
	struct pgkeel_sbuf out, err;
	bool out_eof, err_eof;
	size_t cap;
	int64_t deadline;
	bool done; /* ended (or could not start): wstatus / timed_out tell how */
	bool timed_out;
	int wstatus;
};

void pgkeel_rw_cmd_init(struct pgkeel_rw_cmd *c, size_t cap);
/* Kill what still runs, free everything; the command is empty (startable) again. */
void pgkeel_rw_cmd_clear(struct pgkeel_rw_cmd *c);
/* Start argv (taken over) with env overrides as `user`; killed at deadline (monotonic). */
bool pgkeel_rw_cmd_start(struct pgkeel_rw_cmd *c, char **argv, const char *const *env,
                         const struct pgkeel_child_user *user, const char *what, int64_t deadline,
                         char *err, size_t errlen);
/* Has it ended (or been killed at its deadline)?  Reads its output; never waits. */
bool pgkeel_rw_cmd_finished(struct pgkeel_rw_cmd *c);
bool pgkeel_rw_cmd_ok(const struct pgkeel_rw_cmd *c);
/* As Python's returncode: the exit code, -N for a signal N, -1 when unknown or timed out. */
int pgkeel_rw_cmd_exit_code(const struct pgkeel_rw_cmd *c);
/* "exited with code 1", "killed by signal 9 (SIGKILL)", "timed out" */
void pgkeel_rw_cmd_describe(const struct pgkeel_rw_cmd *c, char *buf, size_t len);
/* A buffer's text ("" when nothing was read). */
const char *pgkeel_rw_text(const struct pgkeel_sbuf *b);
/* Log its output as Patroni does (" stdout=...", " stderr=..."). */
void pgkeel_rw_log_output(const struct pgkeel_rw_cmd *c);
/* For poll(): its descriptors appended at fds[*k] (up to n), and when to look regardless. */
void pgkeel_rw_cmd_pollfds(const struct pgkeel_rw_cmd *c, struct pollfd *fds, size_t n, size_t *k);
int64_t pgkeel_rw_cmd_wake_at(const struct pgkeel_rw_cmd *c);
void pgkeel_rw_add_fd(struct pollfd *fds, size_t n, size_t *k, int fd);
/* Sleep in poll() until fds fire or `until` (monotonic). */
void pgkeel_rw_wait_fds(struct pollfd *fds, size_t n, int64_t until);

/* ---- configuration ---- */

json_object *pgkeel_rw_pg_opt(const struct pgkeel_config *cfg, const char *key);
bool pgkeel_rw_pg_flag(const struct pgkeel_config *cfg, const char *key);
/* given, or from PG_VERSION (150000 for 15); 0 when unknown. */
int pgkeel_rw_server_version(const struct pgkeel_config *cfg, int given);
/* Patroni's rewind_credentials: the rewind role on 11+ when configured, else the superuser. */
json_object *pgkeel_rw_rewind_auth(const struct pgkeel_config *cfg, int version);
/*
 * Patroni's Rewind._conn_kwargs (read_write; or Member.conn_kwargs for the
 * replication connection): the leader's address and database, the
 * credentials' non-null entries (username -> user), dbname defaulting to
 * postgresql.database, target_session_attrs=read-write on 10+.
 */
json_object *pgkeel_rw_conn_record(const struct pgkeel_config *cfg,
                                   const struct pgkeel_pg_source *src, json_object *auth,
                                   int version, bool read_write);

/* ---- the leader (each on its own connection, by deadline) ---- */

enum pgkeel_rw_leader_health {
	PGKEEL_RW_LEADER_OK,
	PGKEEL_RW_LEADER_IN_RECOVERY,
	PGKEEL_RW_LEADER_ERROR,
};

/* Patroni's check_leader_is_not_in_recovery; err says why not. */
enum pgkeel_rw_leader_health pgkeel_rw_leader_not_in_recovery(json_object *r, int64_t deadline,
                                                              char *err, size_t errlen);
/* Patroni's check_leader_has_run_checkpoint: NULL when it has, else why not. */
const char *pgkeel_rw_leader_has_run_checkpoint(json_object *r, int64_t deadline);
/* Patroni's Postgresql.checkpoint(conn_kwargs): NULL when it ran, else why not. */
const char *pgkeel_rw_leader_checkpoint(json_object *r, int64_t deadline);

#endif
