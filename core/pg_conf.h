/*
 * PostgreSQL configuration files and command line, as Patroni 3.0.2 writes
 * them (spec/patroni-interfaces.md §3.7, §3.11, §3.12; Patroni's
 * patroni/postgresql/config.py).  Pure functions: nothing here starts,
 * stops or queries PostgreSQL; the only I/O is pgkeel_pg_file_write().
 *
 * The flow, as Patroni's ConfigHandler does it:
 *
 *   params = pgkeel_pg_server_params(cfg, &sit, diag);
 *       the server parameters: postgresql.parameters of the effective
 *       configuration plus listen_addresses, port, cluster_name, the
 *       synchronous_standby_names decision, the wal_level and
 *       wal_keep_segments/wal_keep_size conversions by version, hba_file
 *       and ident_file made absolute.
 *   pgkeel_pg_classify(params, previous, rows, n, ..., &changes)
 *       (PostgreSQL running, configuration changed) compares them with
 *       pg_settings: what changed, restart or reload, Patroni's log lines;
 *       drops from params what PostgreSQL refused as invalid.
 *   pgkeel_pg_render(cfg, &sit, params, &files, diag)
 *       postgresql.conf (with the `# recovery.conf` block on 12+, or a
 *       recovery.conf text before 12), pg_hba.conf / pg_ident.conf when
 *       managed, the pgpass content and path, and the postgres argv.  With
 *       sit.controldata (a start as a non-primary) the replica rule raises
 *       max_connections & co. to the pg_controldata values and sets
 *       files.pending_restart.
 *
 * Values keep their YAML types in the JSON trees and are turned into text
 * as Python's str() does (true -> "True", 0.9 -> "0.9"), because that is
 * what Patroni writes and logs.
 *
 * Deviations from Patroni 3.0.2 (documented in pg_conf.c too):
 *  - no per-version GUC list: parameters unknown to the PostgreSQL version
 *    are written, not dropped with "Removing unexpected parameter"; their
 *    values are not clamped to the GUC's range.  Only the version rules of
 *    the controlled parameters (cluster_name 9.5+, wal_keep_size 13+ ...)
 *    and of the recovery parameters apply.
 *  - no custom-bootstrap special cases (hba_file, hot_standby=off).
 *  - member names with non-ASCII upper-case letters: only ASCII is lowered
 *    before the slot-name mapping (Python lowers all of Unicode).
 */
#ifndef PGKEEL_PG_CONF_H
#define PGKEEL_PG_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config.h"

enum pgkeel_pg_role {
	PGKEEL_PG_PRIMARY,
	PGKEEL_PG_REPLICA,
	PGKEEL_PG_STANDBY_LEADER,
};

/* The "... setting:" values of pg_controldata; -1 when absent from its output. */
struct pgkeel_pg_controldata {
	long long max_connections;
	long long max_prepared_xacts;
	long long max_locks_per_xact;
	long long max_worker_processes;
	long long max_wal_senders;
};

/* The member to stream from (Patroni's primary_conninfo source). */
struct pgkeel_pg_upstream {
	const char *host; /* NULL: nothing to follow, no primary_conninfo */
	const char *port; /* NULL: "5432" */
	const char *slot; /* primary_slot_name; NULL: none (see pgkeel_pg_wanted_slot) */
	const char *application_name; /* NULL: the member name */
	/* the primary of another cluster (standby_cluster): with a slot,
	 * target_session_attrs=read-write on 10+; standby_cluster's
	 * restore_command, archive_cleanup_command, recovery_min_apply_delay win */
	bool remote;
};

struct pgkeel_pg_situation {
	enum pgkeel_pg_role role;
	int server_version; /* PostgreSQL version number: 150000 for 15 */
	/* Only for a start: the pg_controldata values of the data directory.
	 * NULL: no replica rule (Patroni applies it only when starting). */
	const struct pgkeel_pg_controldata *controldata;
	bool recovery; /* write the recovery parameters (a standby) */
	struct pgkeel_pg_upstream upstream;
	/* With synchronous_mode: the value Patroni manages; NULL removes the
	 * parameter ('*' with synchronous_mode_strict).  Ignored without
	 * synchronous_mode (the configured value, if any, stays). */
	const char *synchronous_standby_names;
	bool hot_standby_feedback; /* permanent logical slots exist: force it on */
};

/* What pgkeel_pg_render produces; release with pgkeel_pg_files_clear(). */
struct pgkeel_pg_files {
	char *postgresql_conf;      /* the whole file */
	char *postgresql_conf_path; /* <config_dir>/<config_base_name>.conf */
	char *recovery_conf; /* < 12 with recovery: <data_dir>/recovery.conf text (mode 0600) */
	char *pg_hba;        /* NULL: not managed (no postgresql.pg_hba, or hba_file set) */
	char *pg_ident;      /* NULL: not managed */
	char *pgpass;        /* content to write to pgpass_path, NULL: nothing to write */
	char *pgpass_path;   /* absolute postgresql.pgpass (default ~/pgpass) */
	char **argv;         /* postgres command line, NULL-terminated */
	size_t argc;
	bool pending_restart; /* the replica rule raised a value above the configured one */
	bool standby_signal;  /* 12+ with recovery: standby.signal (else recovery.signal) */
};

/*
 * Is name one of the recovery parameters Patroni writes (primary_conninfo,
 * recovery_target_*, restore_command...)?  Case-insensitive.  Patroni leaves
 * them out of pending_restart.
 */
bool pgkeel_pg_is_recovery_param(const char *name);

/* Patroni's slot name of a member (spec patroni-dcs-and-ha.md §1.5); out gets at most 63 chars. */
void pgkeel_pg_slot_name(const char *member, char out[64]);

/*
 * The primary_slot_name a non-primary uses, as Patroni decides: NULL
 * without postgresql.use_slots (or before 9.4), the standby_cluster's
 * primary_slot_name mapped for a remote upstream (NULL if unset), else
 * the slot name of this member.  out: at least 64 bytes.
 */
const char *pgkeel_pg_wanted_slot(const struct pgkeel_config *cfg, int server_version, bool remote,
                                  char out[64]);

/*
 * The fields from pg_controldata as pg_data.c parses it (pgkeel_controldata_parse);
 * fields not found stay -1.  False if none was found.  The _parse variant takes the text.
 */
bool pgkeel_pg_controldata_from(json_object *cd, struct pgkeel_pg_controldata *out);
bool pgkeel_pg_controldata_parse(const char *text, struct pgkeel_pg_controldata *out);

/*
 * The server parameters (a new object, caller owns; names unique
 * case-insensitively).  A postgresql.listen without a valid port is an
 * error in diag (Patroni would not start); the object is still returned.
 */
json_object *pgkeel_pg_server_params(const struct pgkeel_config *cfg,
                                     const struct pgkeel_pg_situation *sit,
                                     struct pgkeel_diag *diag);

/*
 * Render everything for `params` (from pgkeel_pg_server_params, possibly
 * trimmed by pgkeel_pg_classify).  Warnings (values Patroni drops or
 * clamps, pg_controldata fields missing) go to diag.  False, with an error
 * in diag, only when the configuration lacks something needed (data_dir,
 * a non-numeric max_connections with a replica rule...).
 */
bool pgkeel_pg_render(const struct pgkeel_config *cfg, const struct pgkeel_pg_situation *sit,
                      json_object *params, struct pgkeel_pg_files *out,
                      struct pgkeel_diag *diag) PGKEEL_MUSTCHECK;
void pgkeel_pg_files_clear(struct pgkeel_pg_files *f);

/* ---- escaping and single pieces ---- */

/* "name = 'value'" quoting of postgresql.conf: ' and \ doubled.  Malloc'd. */
char *pgkeel_pg_conf_quote(const char *value);
/* conninfo value escaping of primary_conninfo: ', \ and space get a backslash.  Malloc'd. */
char *pgkeel_pg_conninfo_escape(const char *value);
/*
 * pgpass lines for a record (NULL fields -> '*'), one per comma-separated
 * host, ':' and '\' escaped, no trailing newline.  NULL when password is NULL.
 */
char *pgkeel_pg_pgpass_text(const char *host, const char *port, const char *user,
                            const char *password);
/* A JSON value as Python's str() renders it (NULL: "None").  Malloc'd. */
char *pgkeel_pg_value_text(json_object *v);
/*
 * Patroni's format_dsn(params, include_dbname): the libpq keywords it knows,
 * in its order, escaped.  With include_dbname, dbname and no password nor
 * passfile; without, passfile (when params has a truthy one) or password and
 * no dbname.  Malloc'd ("" when none is there).
 */
char *pgkeel_pg_format_dsn(json_object *params, bool include_dbname);

/*
 * Write content to path through a temp file in the same directory (created
 * with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and `mode`), fsync, rename, fsync
 * the directory.  A symlink at path is replaced, never followed.
 * *dir_world_writable (may be NULL) says the directory is writable by
 * others, which the caller should warn about.  False with err on failure.
 */
bool pgkeel_pg_file_write(const char *path, const char *content, unsigned mode,
                          bool *dir_world_writable, char *err, size_t errlen) PGKEEL_MUSTCHECK;
/* The pgpass file: pgkeel_pg_file_write with mode 0600. */
bool pgkeel_pg_pgpass_write(const char *path, const char *content, bool *dir_world_writable,
                            char *err, size_t errlen) PGKEEL_MUSTCHECK;

/* ---- classification against pg_settings ---- */

/* One row of `SELECT name, setting, unit, vartype, context FROM pg_settings`. */
struct pgkeel_pg_conf_setting {
	const char *name;
	const char *setting;
	const char *unit; /* NULL or "" when none */
	const char *vartype;
	const char *context;
};

struct pgkeel_pg_change {
	char *name;
	char *old_value; /* pg_settings.setting, or the previous value of a dotted parameter */
	char *new_value; /* Python str() of the wanted value; "None" when removed */
	bool restart;    /* context postmaster */
};

struct pgkeel_pg_changes {
	struct pgkeel_pg_change *v; /* in pg_settings row order, then dotted parameters */
	size_t n;
	bool changed;               /* postgresql.conf must be rewritten and reloaded */
	bool pending_restart;       /* some postmaster parameter changed */
	bool local_address_changed; /* listen_addresses / port (/ unix_socket_directories) */
	json_object *log_lines;     /* array of strings: Patroni's INFO "Changed ..." texts */
	json_object *warnings;      /* array of strings: its WARNING texts */
	json_object *removed;       /* array of names dropped from `wanted` as invalid */
};

/*
 * Compare `wanted` (server parameters) with what PostgreSQL runs, as
 * Patroni's reload_config does: parameters of `previous` (the server
 * parameters in force, may be NULL) missing from `wanted` count as removed;
 * recovery parameters are skipped; rows with context internal are ignored;
 * values are compared by vartype (units, booleans, case-insensitive enums).
 * Names not found in rows: dotted ones are compared with `previous`, the
 * others are removed from `wanted` ("Removing invalid parameter").
 * `rows` may be all of pg_settings; for wal_buffers it must include
 * shared_buffers, wal_segment_size and wal_block_size.  With
 * use_unix_socket, unix_socket_directories counts as a local address.
 */
void pgkeel_pg_classify(json_object *wanted, json_object *previous,
                        const struct pgkeel_pg_conf_setting *rows, size_t nrows,
                        bool use_unix_socket, struct pgkeel_pg_changes *out);
void pgkeel_pg_changes_clear(struct pgkeel_pg_changes *c);

/*
 * Patroni's compare_values(vartype, unit, old, new): true when equal.
 * old is a pg_settings setting, new a wanted value (any JSON scalar).
 */
bool pgkeel_pg_value_equal(const char *vartype, const char *unit, const char *old_value,
                           json_object *new_value);

#endif
