/*
 * pg_demote: demotion of the local primary in Patroni's modes (spec
 * patroni-dcs-and-ha.md §5.7) and switching a running replica to another
 * upstream.  A demoted primary always comes back as a replica (standby.signal
 * and, with an upstream, primary_conninfo written through pg_conf), never as
 * a primary made read-only through a setting.
 *
 *   mode              stop       CHECKPOINT first  then
 *   graceful          fast       yes               start as a replica of upstream
 *   immediate         immediate  no                start as a replica of upstream
 *   immediate-nolock  immediate  no                start as a replica of upstream
 *   offline           fast       no                start as a replica, no upstream
 *
 * Every stop escalates to SIGKILL at stop_deadline_ms (pgkeel_pgctl_stop);
 * for immediate-nolock that is the lock deadline.  What happens to the
 * leader key, the callbacks, the watchdog and the rewind check belongs to
 * the HA loop.  Nothing here waits past the deadlines in the options.
 *
 * Threads: the pgctl and pg_query handles' thread.
 */
#ifndef PGKEEL_PG_DEMOTE_H
#define PGKEEL_PG_DEMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

#include "pg_conf.h"
#include "pg_ctl.h"

struct pgkeel_config;
struct pgkeel_pg;

enum pgkeel_demote_mode {
	PGKEEL_DEMOTE_GRACEFUL = 0,
	PGKEEL_DEMOTE_IMMEDIATE,
	PGKEEL_DEMOTE_IMMEDIATE_NOLOCK,
	PGKEEL_DEMOTE_OFFLINE,
};

/* "graceful", "immediate", "immediate-nolock", "offline". */
const char *pgkeel_demote_mode_name(enum pgkeel_demote_mode m);
bool pgkeel_demote_mode_parse(const char *s, enum pgkeel_demote_mode *out) PGKEEL_MUSTCHECK;

struct pgkeel_demote_opts {
	const struct pgkeel_config *cfg; /* required: what pgkeel_pgctl_write_config needs */
	struct pgkeel_pgctl *ctl;        /* required: the local PostgreSQL */
	struct pgkeel_pg *pg; /* the local connection: CHECKPOINT, follow's version; may be NULL
	                         (graceful then skips the CHECKPOINT) */
	/* The member to follow (host NULL or upstream NULL: none); ignored by offline. */
	const struct pgkeel_pg_upstream *upstream;
	/* pg_controldata values for the replica rule; NULL: none. */
	const struct pgkeel_pg_controldata *controldata;
	int server_version;             /* 0: PG_VERSION (write), the connection (follow) */
	bool hot_standby_feedback;      /* force it on (permanent logical slots, pg_slots.h) */
	int64_t checkpoint_deadline_ms; /* graceful's CHECKPOINT (monotonic, absolute) */
	int64_t stop_deadline_ms;       /* SIGKILL at this time (the lock deadline) */
	int64_t ready_deadline_ms;      /* the start's ready deadline (not waited for) */
};

struct pgkeel_demote_result {
	bool checkpoint_ok; /* graceful: the CHECKPOINT succeeded (a failure does not stop the
	                       demotion) */
	enum pgkeel_pgctl_stop_result stop;
	bool started;   /* the start as a replica began (poll/wait_ready for the rest) */
	bool reloaded;  /* follow: applied by a reload, without restart */
	bool restarted; /* follow: applied by a restart */
	char err[512];  /* why not started / not followed; the checkpoint error otherwise */
};

/*
 * The first half: (graceful) CHECKPOINT, then the stop of the mode.  The
 * pg_query connection is closed first (a smart/fast stop must not wait for
 * it).  Logs "Demoting self (<mode>)".  True when PostgreSQL is down (stop
 * DONE, NOT_RUNNING or KILLED); false with res->err otherwise.
 */
bool pgkeel_demote_stop(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                        struct pgkeel_demote_result *res) PGKEEL_MUSTCHECK;

/*
 * The second half: write the replica configuration (offline: without an
 * upstream) and start PostgreSQL as a replica; returns once the start has
 * begun (res->started), the ready deadline is opts->ready_deadline_ms.
 */
bool pgkeel_demote_start(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                         struct pgkeel_demote_result *res) PGKEEL_MUSTCHECK;

/* pgkeel_demote_stop then, when it succeeded, pgkeel_demote_start.  True when started. */
bool pgkeel_demote(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                   struct pgkeel_demote_result *res) PGKEEL_MUSTCHECK;

/*
 * A running replica follows opts->upstream (none when NULL or host NULL):
 * the configuration is rewritten; on PostgreSQL 13+ (primary_conninfo and
 * primary_slot_name are reloadable) the postmaster is reloaded (SIGHUP, same
 * postmaster), before 13 restarted (fast stop with SIGKILL at
 * stop_deadline_ms, start with ready_deadline_ms).  True when applied.
 */
bool pgkeel_demote_follow(const struct pgkeel_demote_opts *opts,
                          struct pgkeel_demote_result *res) PGKEEL_MUSTCHECK;

#endif
