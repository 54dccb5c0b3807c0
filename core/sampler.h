/*
 * sampler: the PostgreSQL sampler thread.  It keeps the published
 * PostgreSQL sample (state.h, struct pgkeel_state_pg) fresh, so that
 * /patroni and the health checks answer from a sample at most about one
 * interval old without ever running SQL on the request path.
 *
 * One thread with connections of its own (never the loop's):
 *   - Patroni's local connection (pgkeel_pg_local_connection(): the
 *     superuser, fallback_application_name=Patroni, statement_timeout=2000),
 *     kept open between samples;
 *   - for a replica, a replication connection (Patroni's
 *     get_replica_timeline: authentication.replication, the local
 *     replication address, replication=1) opened for one IDENTIFY_SYSTEM and
 *     closed at once, so no walsender slot stays taken and no idle walsender
 *     shows in the primary-side views.
 *
 * Every interval_ms (default 1000) it runs pgkeel_pg_query_status with a
 * client deadline of query_timeout_ms (default 800, always shorter than the
 * interval) and publishes exactly one part:
 *   - the answer, with valid_until_ms = CLOCK_BOOTTIME at the start of the
 *     sample + valid_ms (default 2500): a sampler that stops publishing (a
 *     stuck thread, a suspended machine) leaves a sample that turns into
 *     "failed" by itself;
 *   - or a failed part (status NULL) when the query failed or timed out, or
 *     when the sample was not taken (below).
 * A SIGSTOPped postgres therefore costs one query deadline per tick: the
 * published part is "failed" at most interval + query_timeout after the
 * freeze, and the cadence does not change (ticks are due every interval from
 * the previous one; a tick that overran starts the next one at once).
 *
 * timeline: a primary's is the status query's.  A replica's (and a standby
 * leader's) is the one IDENTIFY_SYSTEM reports, as Patroni's status document
 * shows it, cached and asked again (pgkeel_sampler_need_identify) at once
 * when the replica's own timeline in the status query (received_tli, else
 * checkpoint_tli) moved, and at most every 5 s while the answer is unknown
 * (the ask failed) or differs from the leader's timeline (Patroni's
 * replica_cached_timeline rule; the leader's is read from the cluster view
 * in the published loop part), or, with no leader known, from the status
 * query's.  Patroni asks on every request where the leader's timeline is
 * unknown or different; once every 5 s spares the walsender forks (and a
 * replica whose replay has not reached the new timeline yet is asked again
 * until it has).  Until known the timeline is published as 0 (rendered
 * null).
 *
 * When a sample is taken.  Only when the published loop part says
 * PostgreSQL is "running", "restarting" or "starting" (the states in which
 * Patroni's get_postgresql_status queries at all), and the sampler is not
 * suspended.  Otherwise the tick closes any connection the sampler holds and
 * publishes a failed part: a stopped or crashed PostgreSQL is never polled,
 * and the REST API renders the loop's state as Patroni does.
 *
 * Contract with the HA loop (core/loop.c):
 *   1. Start it once the PostgreSQL manager exists (pgkeel_sampler_start with
 *      the loop's configuration).  From then on the loop no longer publishes
 *      the pg part itself (publish() without its pg half); only at the very
 *      end, after pgkeel_sampler_stop(), does it unpublish it
 *      (pgkeel_state_publish_pg(NULL)).
 *   2. On a configuration reload call pgkeel_sampler_set_config(): the
 *      connections are rebuilt at the next tick.
 *   3. Around any action that must not see a client connection -- above all
 *      a smart shutdown, which waits for every client to disconnect (a
 *      STOP/RESTART/DEMOTE in smart mode); it is harmless for the others --
 *      call pgkeel_sampler_suspend() before submitting the action and
 *      pgkeel_sampler_resume() once its result has been collected.  Suspend
 *      returns when the sampler's connections are closed: while the sampler
 *      is between samples that is immediate; when it is inside a query it
 *      takes until that query ends, at most query_timeout_ms (pass a
 *      deadline at least that far, now + 1000, where the closing matters,
 *      as for a smart stop; before a fast or immediate stop, which ends the
 *      sampler's backend anyway, a deadline of now does not block the
 *      loop).  Suspended, the sampler publishes one failed part and
 *      neither connects nor samples, however long the action lasts, until
 *      resume; then it samples at once.  Suspend/resume do not nest (a
 *      bool, not a count).
 *   4. On shutdown call pgkeel_sampler_stop() before unpublishing: it
 *      returns within ~150 ms even when PostgreSQL is frozen mid-query (the
 *      thread is then detached and ends by its query deadline, closing its
 *      connection and freeing itself), and nothing is published after it
 *      returns.
 *
 * Threads: start, set_config, suspend, resume, backend_pid and stop are
 * called from one owner thread (the HA loop); the sampler runs on its own,
 * with all signals blocked.
 */
#ifndef PGKEEL_SAMPLER_H
#define PGKEEL_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include <pgkeel/host.h>

struct pgkeel_config;

#define PGKEEL_SAMPLER_INTERVAL_MS 1000
#define PGKEEL_SAMPLER_TIMEOUT_MS  800
#define PGKEEL_SAMPLER_VALID_MS    2500

struct pgkeel_sampler_opts {
	struct pgkeel_config *cfg; /* a reference is taken */
	int interval_ms;           /* 0: PGKEEL_SAMPLER_INTERVAL_MS */
	int query_timeout_ms;      /* 0: PGKEEL_SAMPLER_TIMEOUT_MS; capped at interval - 50 */
	int valid_ms;              /* 0: PGKEEL_SAMPLER_VALID_MS */
};

struct pgkeel_sampler;

/* Start the thread (it samples at once).  Aborts when no thread can be started. */
struct pgkeel_sampler *pgkeel_sampler_start(const struct pgkeel_sampler_opts *opts);

/*
 * Stop the thread; see the contract above.  True when the thread was joined,
 * false when it was left to finish its query by its deadline.  NULL is fine.
 */
bool pgkeel_sampler_stop(struct pgkeel_sampler *s);

/* Use cfg (a reference is taken) from the next tick on. */
void pgkeel_sampler_set_config(struct pgkeel_sampler *s, struct pgkeel_config *cfg);

/*
 * Stop sampling and close the connections; true once they are closed, false
 * when deadline_ms (CLOCK_MONOTONIC) came first (the sampler still closes
 * them as soon as its query ends, and stays suspended).
 */
bool pgkeel_sampler_suspend(struct pgkeel_sampler *s, int64_t deadline_ms);
/* Sample again, starting now. */
void pgkeel_sampler_resume(struct pgkeel_sampler *s);

/* The backend pid of the sampler's open local connection; 0 when closed. */
int pgkeel_sampler_backend_pid(struct pgkeel_sampler *s);

/*
 * Whether a replica's timeline must be asked (IDENTIFY_SYSTEM) at now_ms:
 * asked_ms is when it was last asked (0: never), cached the answer (<= 0:
 * unknown or failed), asked_status_tl the status query's timeline then,
 * status_tl the current one, leader_tl the leader's (<= 0: unknown).
 * Exposed for the tests.
 */
bool pgkeel_sampler_need_identify(int64_t now_ms, int64_t asked_ms, int64_t cached,
                                  int64_t asked_status_tl, int64_t status_tl, int64_t leader_tl);

#endif
