/*
 * pg_rewind: when it is needed, whether it is possible, and how it is run
 * (spec/patroni-dcs-and-ha.md §5.7, Patroni 3.0.2's rewind.py).
 *
 * The decision is a pure function of facts the caller gathers: the local
 * timeline and LSN (pg_controldata when PostgreSQL is stopped, the status
 * query when it runs), the leader's timeline (IDENTIFY_SYSTEM on a
 * replication connection to the leader) and the leader's timeline history
 * (TIMELINE_HISTORY <leader timeline>), and for a former primary the end of
 * its last checkpoint record (pg_waldump, parsed here).
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
	PGKEEL_REWIND_UNKNOWN = 0,  /* not enough facts (no local timeline/LSN) */
	PGKEEL_REWIND_NOT_NEEDED = 1,
	PGKEEL_REWIND_NEEDED = 2,
};

struct pgkeel_rewind_facts {
	int64_t local_tli;        /* <= 0: unknown */
	int64_t local_lsn;        /* replica: replayed / min recovery end; former primary:
	                             latest checkpoint location */
	bool in_recovery;         /* the local instance was a replica (standby.signal) */
	int64_t checkpoint_end;   /* former primary: end of its checkpoint record + 1,
	                             0 = unknown (then the checkpoint location decides) */
	int64_t leader_tli;       /* from IDENTIFY_SYSTEM */
	const struct pgkeel_tl_switch *history; /* the leader's history (TIMELINE_HISTORY) */
	size_t n_history;
};

/* Patroni's _check_timeline_and_lsn. */
enum pgkeel_rewind_need pgkeel_rewind_decide(const struct pgkeel_rewind_facts *f);

/*
 * Can pg_rewind work on this data directory?  use_pg_rewind set, and
 * pg_controldata (parsed with pgkeel_controldata_parse) shows wal_log_hints
 * on or data checksums.  (That `pg_rewind --help` runs is the caller's
 * check: it needs the child module.)  why (optional) gets the reason when not.
 */
bool pgkeel_rewind_possible(bool use_pg_rewind, json_object *controldata, char *why,
                            size_t whylen);

/*
 * The end of the checkpoint record at `lsn` from `pg_waldump -t TLI -s LSN
 * -n 1` output (stdout + stderr), as Patroni reads it: one record line that
 * names `lsn`, and the error "invalid record length at X: wanted ..." whose X
 * is the end.  0 when the output does not have that shape.
 */
int64_t pgkeel_waldump_checkpoint_end(int64_t lsn, const char *out, const char *err);

/*
 * argv for pg_rewind (NULL-terminated, malloc'd; free with
 * pgkeel_rewind_argv_free): <bin_dir>/pg_rewind -D <data_dir>
 * --source-server <dsn> [--restore-target-wal --config-file=<conf>] plus
 * options from postgresql.rewind (list or map form, as basebackup's).
 */
char **pgkeel_rewind_argv(const char *bin_dir, const char *data_dir, const char *source_dsn,
                          bool restore_target_wal, const char *config_file,
                          json_object *extra_options);
void pgkeel_rewind_argv_free(char **argv);

#endif
