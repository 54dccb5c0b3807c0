/*
 * ha_internal: what the files of the HA decision share (ha.c: the engine and
 * the cycle; ha_engine.c: the engine below; ha_race.c: leader-race
 * eligibility, manual failover, is the failover possible; ha_sync.c:
 * synchronous replication; ha_util.c: pure helpers and settings).  Not for use outside core/ha*.c.
 *
 * The engine.  A call of pgkeel_ha_decide() walks Patroni's cycle with a
 * struct ha: a working copy of everything the cycle changes (the loop's
 * memory, the cluster view after reloads, the role, the running task...).
 * A step that needs an answer the facts do not hold yet fills the request,
 * sets h->stop and returns; every caller returns at once when h->stop is set
 * (HA_CHECK), so the call unwinds with the request.  A DCS error sets
 * h->dcs_error (and stop): the cycle unwinds and §5.9 runs.  A fatal exit
 * sets h->fatal.  Because the walk is deterministic and the answers are
 * appended, the next call reaches the same point and finds its answer.
 */
#ifndef PGKEEL_HA_INTERNAL_H
#define PGKEEL_HA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "ha.h"
#include "util.h"

/* A member as the race sees it: a cluster member or a failsafe entry. */
struct ha_member {
	const char *name;
	const char *api_url;
	bool nofailover; /* the member's tag in the DCS */
};

/* A growable list of ha_member, deduplicated by name (the last one wins). */
struct ha_members {
	struct ha_member *v;
	size_t n, cap;
};

struct ha {
	const struct pgkeel_ha_facts *f;
	const struct pgkeel_ha_settings *s;
	const struct pgkeel_ha_pg *pg;
	struct pgkeel_ha_decision *d;

	struct pgkeel_ha_state st; /* working copy: becomes plan.state */

	/* Patroni's self.cluster after load_cluster_from_dcs (failsafe leader injected) */
	const struct pgkeel_cluster *c;
	const char *leader;          /* holder's name; NULL: unlocked */
	const char *leader_conn_url; /* from its member data (or the failsafe ping) */
	bool leader_injected;        /* the failsafe leader stands in for an empty key */
	int64_t leader_timeline;     /* its member's timeline; 0: unknown */

	bool is_leader;           /* Patroni's is_leader() as the cycle goes */
	bool is_primary;          /* PostgreSQL runs as a primary (until demoted here) */
	enum pgkeel_ha_role role; /* the manager's role as the cycle sets it */
	enum pgkeel_pgctl_state pg_state;
	const char *task; /* running or started task; NULL: none */

	size_t n_probes, n_reloads, n_sync_writes, n_rewind_checks;
	bool stop; /* unwind: a request was made, or dcs_error / fatal */
	bool dcs_error;
	bool fatal;
	bool pg_error; /* "Error communicating with PostgreSQL" */
	const char *fatal_message;
	bool paused; /* as at the start of the cycle */
};

#define HA_CHECK(h)                                                                                \
	do {                                                                                       \
		if ((h)->stop)                                                                     \
			return NULL;                                                               \
	} while (0)

/* ---- engine (ha_engine.c) ---- */

/* p (malloc'd) is freed with the decision; returns p. */
void *ha_own(struct ha *h, void *p);
/* A copy owned by the decision (freed with it). */
const char *ha_strdup(struct ha *h, const char *s);
/* printf into text the decision owns */
#define ha_printf(h, ...) ((const char *)ha_own((h), pgkeel_asprintf(__VA_ARGS__)))
/* a line Patroni logs here (plan.notes); text (malloc'd) is taken over */
void ha_note_text(struct ha *h, bool warning, char *text);
#define ha_note(h, warning, ...) ha_note_text((h), (warning), pgkeel_asprintf(__VA_ARGS__))
/* Append an effect of that kind with neutral arguments (lsn -1, timeouts -1). */
struct pgkeel_ha_effect *ha_fx(struct ha *h, enum pgkeel_ha_fx kind);
/* Ask for a request of that kind: fills d->request, sets stop; the caller fills the rest. */
struct pgkeel_ha_request *ha_request(struct ha *h, enum pgkeel_ha_req kind);

bool ha_streq(const char *a, const char *b);
/* load_cluster_from_dcs: the view of c (the failsafe leader injected), is_leader. */
void ha_load_view(struct ha *h, const struct pgkeel_cluster *c);
/* Patroni's has_lock(): the (possibly injected) leader is me. */
bool ha_has_lock(const struct ha *h);
bool ha_is_standby_cluster(const struct ha *h);
/* is_synchronous_mode(): on, and not a standby cluster [>=3.2.0]. */
bool ha_sync_mode(const struct ha *h);
/* sync_mode_is_active(): sync mode and the sync key names a leader. */
bool ha_sync_active(const struct ha *h);
bool ha_failover_set(const struct ha *h);
int64_t ha_cluster_timeline(const struct ha *h);
/* is_lagging(wal): the leader's last LSN - wal > maximum_lag_on_failover. */
bool ha_is_lagging(const struct ha *h, int64_t wal);
/* should_run_scheduled_action: ok to run now; due in the future sets wake_in_ms. */
bool ha_scheduled_due(struct ha *h, const char *action, const char *scheduled_at, bool *cleanup);
/* the rewind state: executed (SUCCESS/FAILED), is_needed (CHECK/NEED), and
 * can_rewind_or_reinitialize_allowed */
bool ha_rewind_executed(const struct ha *h);
bool ha_rewind_is_needed(const struct ha *h);
bool ha_rewind_allowed(const struct ha *h);
/* trigger_check_diverged_lsn */
void ha_rewind_trigger(struct ha *h);
/* release_leader_key_voluntarily / _delete_leader */
void ha_delete_leader(struct ha *h, int64_t lsn, bool touch);
/* demote(mode) as an effect; async for graceful from manual failover */
void ha_demote(struct ha *h, enum pgkeel_demote_mode mode, const char *task);
/* SET_ROLE / SET_STATE when it changes anything */
void ha_set_role(struct ha *h, enum pgkeel_ha_role role);
void ha_set_state(struct ha *h, enum pgkeel_pgctl_state state);
/* CALLBACK action with the current role */
void ha_callback(struct ha *h, const char *action);
/* Start an async task (try_run_async): the effect, named. */
struct pgkeel_ha_effect *ha_task(struct ha *h, enum pgkeel_ha_fx kind, const char *name);
/* End the cycle with a fatal exit / "Error communicating with PostgreSQL" (unwinds). */
const char *ha_fatal(struct ha *h, const char *message);
const char *ha_pg_error(struct ha *h);

/* ---- answers (ha_engine.c): each asks when the answer is missing (stop set) ---- */

/* load_cluster_from_dcs after delay_ms; false when asked or the load failed */
bool ha_reload(struct ha *h, int64_t delay_ms);
/* update_lock(with_status); OK also feeds the watchdog; ERROR unwinds to §5.9 */
enum pgkeel_ha_outcome ha_update_lock(struct ha *h, bool with_status);
enum pgkeel_ha_outcome ha_acquire_lock(struct ha *h);
bool ha_watchdog_activate(struct ha *h);

/* ---- upstreams (ha_engine.c) ---- */

struct pgkeel_ha_upstream ha_up_none(void);
struct pgkeel_ha_upstream ha_up_remote(void);
struct pgkeel_ha_upstream ha_up_leader(const struct ha *h);
struct pgkeel_ha_upstream ha_up_member(const struct pgkeel_member *m);
/* Patroni's leader.conn_url test */
bool ha_up_has_conn(const struct ha *h, const struct pgkeel_ha_upstream *u);
/* _get_node_to_follow */
struct pgkeel_ha_upstream ha_node_to_follow(const struct ha *h);

/* ---- race (ha_race.c) ---- */

void ha_members_add(struct ha_members *l, const char *name, const char *api_url, bool nofailover);
void ha_members_add_cluster(struct ha_members *l, const struct pgkeel_cluster *c);
void ha_members_free(struct ha_members *l);
/*
 * The peers' answers for these members (those with an api_url, not me);
 * NULL after asking for the missing ones.  out[i] matches l->v[i] (NULL for
 * members not probed).  The caller frees *out.
 */
const struct pgkeel_ha_peer **ha_probe(struct ha *h, const struct ha_members *l);
/* is_healthiest_node() (§5.4.2); stop set when a request was made. */
bool ha_is_healthiest_node(struct ha *h);
/* is_failover_possible(cluster_lsn, exclude_failover_candidate) (§5.5). */
bool ha_is_failover_possible(struct ha *h, int64_t cluster_lsn, bool exclude_candidate);
/* process_manual_failover_from_leader (§5.6): a message, or NULL (also when stopped). */
const char *ha_manual_failover_from_leader(struct ha *h);

/* ---- synchronous replication (ha_sync.c) ---- */

/* process_sync_replication on the primary (§6.3). */
void ha_process_sync(struct ha *h);
/* process_sync_replication_prepromote (§6.4): false when the sync key CAS failed. */
bool ha_sync_prepromote(struct ha *h);
/* Request a CAS write of the sync key; the answer, or PENDING after asking. */
enum pgkeel_ha_outcome ha_write_sync(struct ha *h, const char *const *standbys, size_t n,
                                     const char *version, const char **new_version);
/* SET_SSN for these names (n == 0: empty); "*" is spelled as a name. */
void ha_set_ssn(struct ha *h, const char *const *names, size_t n);
/* SET_SSN NULL: sync mode does not manage it (the configured value). */
void ha_set_ssn_user(struct ha *h);

#endif
