/*
 * The published state: what the REST API answers from, written by the
 * threads that know it and read by REST threads without ever blocking them.
 *
 * Two parts, each an immutable refcounted snapshot swapped under one short
 * mutex, so that each writer publishes at its own pace:
 *
 *   struct pgkeel_state_loop  written by the HA loop once per cycle and on
 *       every change it makes (lock taken or lost, role, pause, ...): the
 *       cluster view, identity, Patroni's cached PostgreSQL state and role,
 *       the flags of the status document, and *deadlines* rather than
 *       booleans, so that a loop that stops publishing turns /leader,
 *       /primary and /liveness 503 by itself:
 *         lock_deadline_ms    this node holds the leader lock only while
 *                             now < lock_deadline_ms (Patroni's
 *                             Ha._is_leader = time of the last successful
 *                             update + ttl);
 *         cluster_valid_ms    the cached cluster view counts as present only
 *                             while now < cluster_valid_ms (Patroni's
 *                             dcs.cluster: read time + ttl, dropped at once
 *                             on a failed read: the loop publishes 0);
 *         next_cycle_ms       when the next HA cycle is due (Patroni's
 *                             next_run, for /liveness).
 *   struct pgkeel_state_pg  written by whoever samples PostgreSQL (the
 *       sampler thread; the HA loop until it exists): the status query's
 *       answer, or NULL when it failed, valid until valid_until_ms, after
 *       which it counts as failed (state "unknown", as Patroni reports a
 *       status query that fails).
 *
 * All times named *_ms are CLOCK_BOOTTIME milliseconds
 * (pgkeel_now_boottime_ms(), the clock of the lock: a suspended machine
 * must find its deadlines passed on waking), except dcs_last_seen (epoch
 * seconds, as
 * Patroni reports it).
 *
 * Ownership: a writer allocates a part with pgkeel_state_loop_new() /
 * pgkeel_state_pg_new(), fills the public fields (every pointer is owned by
 * the part: malloc'd strings, a cluster reference, json objects nobody else
 * holds), and hands it to pgkeel_state_publish_*(), which takes it over.
 * From then on it is never modified.  Readers call pgkeel_state_acquire(),
 * which takes a reference to both current parts at once, walk them (json
 * objects read-only: json_object_get_*, foreach; never json_object_get/put
 * nor json-c's to-string functions, see cluster.h), and release them.
 *
 * Threads: publish, acquire and release may be called from any thread.
 */
#ifndef PGKEEL_STATE_H
#define PGKEEL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct pgkeel_cluster;
struct pgkeel_pg_status;

/* Patroni's cached postgresql.role (3.x spelling: the primary is "master"). */
enum pgkeel_state_role {
	PGKEEL_STATE_ROLE_UNINITIALIZED = 0,
	PGKEEL_STATE_ROLE_MASTER,
	PGKEEL_STATE_ROLE_REPLICA,
	PGKEEL_STATE_ROLE_STANDBY_LEADER,
	PGKEEL_STATE_ROLE_DEMOTED,
	PGKEEL_STATE_ROLE_PROMOTED,
};

/* "uninitialized", "master", "replica", "standby_leader", "demoted", "promoted". */
const char *pgkeel_state_role_name(enum pgkeel_state_role role);

struct pgkeel_state_loop {
	int refs_; /* private */

	char *name;  /* this member */
	char *scope; /* the cluster */

	/* The last cluster view read from the DCS (NULL: never read). */
	struct pgkeel_cluster *cluster;
	int64_t cluster_valid_ms; /* the view counts only while now < this */
	int64_t dcs_last_seen;    /* epoch seconds of the last successful DCS read; 0: never */

	/*
	 * Patroni's postgresql.state: "running", "starting", "stopped",
	 * "stopping", "restarting", "crashed", "creating replica", ...  NULL
	 * reads as "stopped".
	 */
	char *pg_state;
	bool pg_running;             /* the postmaster is alive (Postgresql.is_running) */
	enum pgkeel_state_role role; /* the cached role */

	int64_t lock_deadline_ms; /* leader lock held while now < this; 0: not the holder */
	int64_t next_cycle_ms;    /* when the next HA cycle is due */
	int ttl;                  /* seconds (liveness threshold) */
	int loop_wait;            /* seconds (how long a switchover is polled) */

	/* From the cached dynamic configuration. */
	bool paused;           /* maintenance mode */
	bool standby_cluster;  /* standby_cluster is configured */
	bool synchronous_mode; /* the cluster's config has synchronous_mode on */
	bool failsafe_mode;    /* failsafe_mode on: POST /failsafe is served */

	bool failsafe_active; /* failsafe mode currently keeps the primary alive */
	bool pending_restart;
	bool watchdog_failed; /* watchdog required/used but unhealthy */

	char *sysid; /* database system identifier; NULL: unknown */

	/*
	 * Tags as Patroni.tags: the configured tags with clonefrom, nofailover,
	 * noloadbalance and nosync dropped unless truthy (what ?tag_x= and
	 * noloadbalance are checked against), and as published in the status
	 * document (the same plus nosync=true while the node asks to be released
	 * from synchronous duty).  Set both with pgkeel_state_loop_set_tags().
	 * NULL or empty: no tags.
	 */
	struct json_object *tags;
	struct json_object *tags_effective;

	/* A scheduled restart as the status document shows it; NULL: none. */
	struct json_object *scheduled_restart;
};

struct pgkeel_state_pg {
	int refs_; /* private */
	/* The answer of the status query; NULL: it failed (or none was run). */
	struct pgkeel_pg_status *status;
	/* What the document reports as timeline: the primary's from the status
	 * query; a replica's from IDENTIFY_SYSTEM (<= 0: unknown, rendered null). */
	int64_t timeline;
	int64_t valid_until_ms; /* after it the sample counts as failed */
};

/* What a reader holds: either part may be NULL (nothing published yet). */
struct pgkeel_state_view {
	struct pgkeel_state_loop *loop;
	struct pgkeel_state_pg *pg;
};

/* A zeroed part with refcount 1 (aborts on out of memory). */
struct pgkeel_state_loop *pgkeel_state_loop_new(void);
struct pgkeel_state_pg *pgkeel_state_pg_new(void);

/*
 * Set tags and tags_effective from the configured `tags:` object (borrowed,
 * deep-copied; NULL = none) and whether nosync is added temporarily.
 */
void pgkeel_state_loop_set_tags(struct pgkeel_state_loop *s, const struct json_object *configured,
                                bool disable_sync);

/* Drop a reference; the last one frees everything the part owns.  NULL is fine. */
void pgkeel_state_loop_unref(struct pgkeel_state_loop *s);
void pgkeel_state_pg_unref(struct pgkeel_state_pg *s);

/*
 * Make s the current part (takes over the caller's reference; NULL
 * unpublishes).  The previous part is released once its readers are done.
 */
void pgkeel_state_publish_loop(struct pgkeel_state_loop *s);
void pgkeel_state_publish_pg(struct pgkeel_state_pg *s);

/* References to both current parts (never blocks for long). */
void pgkeel_state_acquire(struct pgkeel_state_view *v);
/* Drop them; v is zeroed. */
void pgkeel_state_release(struct pgkeel_state_view *v);

#endif
