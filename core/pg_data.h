/*
 * Facts about a PostgreSQL data directory, read without talking to the
 * server: is it empty, which major version made it, is its postmaster really
 * running (postmaster.pid checked against the process it names), and what
 * pg_controldata says.  LSN text <-> integer.
 */
#ifndef PGKEEL_PG_DATA_H
#define PGKEEL_PG_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

/* "0/4042B60" -> 67382112; false on junk.  Formatting: "%X/%X". */
bool pgkeel_lsn_parse(const char *s, int64_t *out) PGKEEL_MUSTCHECK;
void pgkeel_lsn_format(int64_t lsn, char *buf, size_t len);

/* true when `dir` does not exist or has no entries (Patroni's data_directory_empty). */
bool pgkeel_pg_dir_empty(const char *dir);

/* The major version from PG_VERSION ("15" -> 15); 0 when absent or unreadable. */
int pgkeel_pg_data_version(const char *data_dir);

/* postmaster.pid, the lines PostgreSQL writes (10+). */
struct pgkeel_pidfile {
	pid_t pid;
	char data_dir[4096];
	int64_t start_time;   /* epoch seconds */
	int port;
	char socket_dir[4096];
	char listen[256];
	char status[32];      /* "ready", "starting", "stopping", "standby" or "" */
};

enum pgkeel_postmaster_state {
	PGKEEL_PM_NOT_RUNNING = 0, /* no postmaster.pid, or its pid is gone */
	PGKEEL_PM_RUNNING = 1,     /* the pid is alive and is this data directory's postmaster */
	PGKEEL_PM_STALE = 2,       /* the pid is alive but is some other process (pid reused) */
};

/* Read <data_dir>/postmaster.pid; false when absent or malformed. */
bool pgkeel_pidfile_read(const char *data_dir, struct pgkeel_pidfile *out);

/*
 * Is the postmaster of `data_dir` running?  A live pid counts only when the
 * process's working directory is the data directory (the postmaster chdirs
 * there) and its start time agrees with postmaster.pid (within a few
 * seconds): a stale postmaster.pid whose pid now belongs to another process
 * is STALE, not RUNNING.  `pf` (optional) receives the pidfile.
 */
enum pgkeel_postmaster_state pgkeel_postmaster_check(const char *data_dir,
                                                     struct pgkeel_pidfile *pf);

/* Start time of a process as epoch seconds (from /proc), -1 if unknown. */
int64_t pgkeel_process_start_time(pid_t pid);

/*
 * pg_controldata output ("Name:   value" lines, LANG=C) as an object
 * name -> value text.  NULL on empty input.
 */
json_object *pgkeel_controldata_parse(const char *text);

/* Convenience readers over a parsed pg_controldata; false when missing/invalid. */
bool pgkeel_controldata_str(json_object *cd, const char *name, const char **out);
bool pgkeel_controldata_int(json_object *cd, const char *name, int64_t *out);
bool pgkeel_controldata_lsn(json_object *cd, const char *name, int64_t *out);

#endif
