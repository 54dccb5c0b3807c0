/*
 * pg_rewind: when it is needed, whether it is possible, and how it is run
 * (spec/patroni-dcs-and-ha.md §5.7, Patroni's rewind.py) -- the pure half.
 * pg_rewind_run.h has the half with I/O (the check against the leader and
 * the rewind job), built on these functions.
 *
 * The decision is a pure function of facts the caller gathers: the local
 * timeline and LSN (pg_controldata when PostgreSQL is stopped, the status
 * query when it runs), the leader's timeline (IDENTIFY_SYSTEM on a
 * replication connection to the leader) and the leader's timeline history
 * (TIMELINE_HISTORY <leader timeline>), and for a former primary the end of
 * its last checkpoint record (pg_waldump, parsed here).  The rest reads and
 * writes the texts the job deals with: pg_controldata, pg_waldump and
 * pg_rewind output, archive_status names, archive/restore command
 * templates, postmaster.opts, and the argv of pg_rewind and of the
 * single-user crash recovery.
 */
#ifndef PGKEEL_PG_REWIND_H
#define PGKEEL_PG_REWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

struct pgkeel_tl_switch {
	int64_t parent_tli;  /* the timeline that ended */
	int64_t switchpoint; /* LSN where the next one began */
};

/*
 * Parse a timeline history file ("1\t0/3000060\tno recovery target
 * specified" per line; comments and blank lines skipped).  Returns the
 * number of entries stored (at most max), -1 on a malformed line.
 */
int pgkeel_tl_history_parse(const char *text, struct pgkeel_tl_switch *out, size_t max);

enum pgkeel_rewind_need {
	PGKEEL_REWIND_UNKNOWN = 0, /* not enough facts (no local timeline/LSN) */
	PGKEEL_REWIND_NOT_NEEDED = 1,
	PGKEEL_REWIND_NEEDED = 2,
};

struct pgkeel_rewind_facts {
	int64_t local_tli;      /* <= 0: unknown */
	int64_t local_lsn;      /* replica: replayed / min recovery end; former primary:
	                           latest checkpoint location */
	bool in_recovery;       /* the local instance was a replica (standby.signal) */
	int64_t checkpoint_end; /* former primary: end of its checkpoint record + 1,
	                           0 = unknown (then the checkpoint location decides) */
	int64_t leader_tli;     /* from IDENTIFY_SYSTEM */
	const struct pgkeel_tl_switch *history; /* the leader's history (TIMELINE_HISTORY) */
	size_t n_history;
};

/* Patroni's _check_timeline_and_lsn. */
enum pgkeel_rewind_need pgkeel_rewind_decide(const struct pgkeel_rewind_facts *f);

/*
 * The entry of the leader's history that decides (the one whose parent
 * timeline is ours), NULL when none does (a later timeline comes first, or
 * ours is absent).  Its index (for Patroni's history log line) in *index.
 */
const struct pgkeel_tl_switch *pgkeel_rewind_fork_point(const struct pgkeel_rewind_facts *f,
                                                        size_t *index);

/*
 * Does the decision depend on the end of the former primary's checkpoint
 * record (pg_waldump)?  True for a former primary whose checkpoint lies
 * before the switch point of its timeline.
 */
bool pgkeel_rewind_needs_checkpoint_end(const struct pgkeel_rewind_facts *f);

/*
 * Patroni's _get_local_timeline_lsn_from_controldata: from a stopped data
 * directory's pg_controldata, "shut down in recovery" / "in archive
 * recovery" give the minimum recovery end (a replica; a 0/0 or timeline 0
 * there means it was a primary when it stopped), "shut down" the latest
 * checkpoint (a former primary).  False for any other state (a crashed
 * primary: crash recovery first) or missing fields.
 */
bool pgkeel_rewind_local_from_controldata(json_object *controldata, bool *in_recovery, int64_t *tli,
                                          int64_t *lsn);

/*
 * Can pg_rewind work on this data directory?  use_pg_rewind set, and
 * pg_controldata (parsed with pgkeel_controldata_parse) shows wal_log_hints
 * on or data checksums.  (That `pg_rewind --help` runs is the caller's
 * check: it needs the child module.)  why (optional) gets the reason when not.
 */
bool pgkeel_rewind_possible(bool use_pg_rewind, json_object *controldata, char *why, size_t whylen);

/*
 * The end of the checkpoint record at `lsn` from `pg_waldump -t TLI -s LSN
 * -n 2` output (stdout, stderr), as Patroni reads it: one record line that
 * names `lsn`, and the error "invalid record length at X: wanted ..."
 * (before 16) or "...: expected at least ..." (16+) whose X is the end.  0
 * when the output does not have that shape.
 */
int64_t pgkeel_waldump_checkpoint_end(int64_t lsn, const char *out, const char *err);

/*
 * argv for pg_rewind (NULL-terminated, malloc'd; free with
 * pgkeel_rewind_argv_free): <program> [--restore-target-wal
 * [--config-file=<conf>]] <extra options> -D <data_dir> --source-server
 * <dsn>.  program NULL: "pg_rewind" from PATH.  extra_options: list or map
 * form, as basebackup's (NULL: none; Patroni 3 has none).
 */
char **pgkeel_rewind_argv(const char *program, const char *data_dir, const char *source_dsn,
                          bool restore_target_wal, const char *config_file,
                          json_object *extra_options);
void pgkeel_rewind_argv_free(char **argv);

/*
 * Patroni's rule for pg_rewind's own WAL restore: --restore-target-wal when
 * a restore_command is set and the version is 15+, or 13/14 with
 * postgresql.conf inside the data directory (before 15 pg_rewind could not
 * be told where it is).  *config_file: also pass --config-file (15+ with
 * the configuration elsewhere).
 */
bool pgkeel_rewind_can_restore(int server_version, bool have_restore_command,
                               bool config_in_data_dir, bool *config_file);

/*
 * The WAL file pg_rewind could not find, from its output: a line
 * `could not open file "<dir>/pg_wal/<24 characters>": ...` (Patroni's
 * _find_missing_wal).  False when there is none.
 */
bool pgkeel_rewind_missing_wal(const char *output, char name[25]);

/*
 * Patroni's _buid_archiver_command: %p -> <wal_dir>/<wal>, %f -> <wal>,
 * %r -> 000000010000000000000001, %% -> %; any other %x and a trailing %
 * stay as they are.  Malloc'd.
 */
char *pgkeel_rewind_archiver_command(const char *tmpl, const char *wal_dir, const char *wal);

/* Is name an archive_status entry to archive: ^[0-9A-F]{24}(\.partial)?\.ready$ */
bool pgkeel_rewind_is_ready_file(const char *name);

/*
 * Patroni's read_postmaster_opts: the `--name=value` words of a
 * postmaster.opts text (`/path/postgres "-D" "/data" "--port=5432"`) as an
 * object name -> value (dashes stripped from both ends of the name).
 */
json_object *pgkeel_rewind_postmaster_opts(const char *text);

/*
 * The single-user run of Patroni's ensure_clean_shutdown:
 * <postgres> --single -D <data_dir> [-c name=value ...] template1 with the
 * options of postmaster.opts (may be NULL) plus archive_mode=on and
 * archive_command=false (nothing is archived by the crash recovery), sorted
 * by name.  Free with pgkeel_rewind_argv_free.
 */
char **pgkeel_rewind_single_user_argv(const char *postgres, const char *data_dir,
                                      json_object *postmaster_opts);

#endif
