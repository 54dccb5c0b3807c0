/*
 * dcs_client: the HA loop's side of a DCS backend.  Wraps the plugin's ops
 * with what the core owns rather than the backend:
 *
 *  - lock validity.  A successful acquire / update / take_leader makes the
 *    lock valid until (the CLOCK_BOOTTIME time the request was SENT) + (the
 *    TTL the store granted, else the configured ttl).  Boot time keeps
 *    counting while the machine is suspended, so a paused VM wakes up with
 *    its lock expired rather than believing it still leads.  Wall-clock
 *    steps change nothing.  A failed renewal does not shorten the validity
 *    (the old lease lives on in the store until then); CONFLICT drops it.
 *  - deadlines.  Each call gets the loop's deadline (monotonic ms), capped
 *    by the lock validity while we hold it: a leader never waits on the DCS
 *    past the moment its lock may be gone.
 *  - the cluster snapshot: load_cluster into core/cluster.h's builder.
 *
 * Threads: the HA loop's only.
 */
#ifndef PGKEEL_DCS_CLIENT_H
#define PGKEEL_DCS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/dcs.h>

#include "cluster.h"

struct pgkeel_dcsc {
	const struct pgkeel_dcs_plugin *plugin;
	struct pgkeel_dcs *dcs;
	int ttl_s;                /* configured; used when the store reports no TTL */
	bool locked;              /* we hold the lock (as far as the last answer said) */
	int64_t lock_until_boot;  /* CLOCK_BOOTTIME ms; meaningful while locked */
	int64_t last_granted_ms;  /* what the store granted last time */
	char owner[64];           /* lease/session the lock is bound to */
	struct pgkeel_err err;    /* the last call's error detail */
};

void pgkeel_dcsc_init(struct pgkeel_dcsc *c, const struct pgkeel_dcs_plugin *plugin,
                      struct pgkeel_dcs *dcs, int ttl_s);

/* Remaining lock validity in ms (<= 0: not valid), on CLOCK_BOOTTIME. */
int64_t pgkeel_dcsc_lock_remaining_ms(const struct pgkeel_dcsc *c);
/* Is the lock still ours by the clock? (locked and remaining > 0) */
bool pgkeel_dcsc_lock_valid(const struct pgkeel_dcsc *c);
/* The lock's deadline as a monotonic time (INT64_MAX when not locked). */
int64_t pgkeel_dcsc_lock_deadline_mono(const struct pgkeel_dcsc *c);
/* deadline_ms capped by the lock deadline while the lock is held (and valid). */
int64_t pgkeel_dcsc_cap(const struct pgkeel_dcsc *c, int64_t deadline_ms);
/* Forget the lock (we released it or learnt we lost it). */
void pgkeel_dcsc_drop_lock(struct pgkeel_dcsc *c);

/* load_cluster -> a snapshot (*out, refcount 1) on OK. */
enum pgkeel_dcs_status pgkeel_dcsc_load(struct pgkeel_dcsc *c, int64_t deadline_ms,
                                        struct pgkeel_cluster **out);
enum pgkeel_dcs_status pgkeel_dcsc_acquire(struct pgkeel_dcsc *c, int64_t deadline_ms);
enum pgkeel_dcs_status pgkeel_dcsc_update(struct pgkeel_dcsc *c, const char *leader_version,
                                          int64_t last_lsn, const char *status_json,
                                          const char *failsafe_json, int64_t deadline_ms);
enum pgkeel_dcs_status pgkeel_dcsc_take(struct pgkeel_dcsc *c, int64_t deadline_ms);
enum pgkeel_dcs_status pgkeel_dcsc_delete_leader(struct pgkeel_dcsc *c,
                                                 const char *leader_version,
                                                 int64_t deadline_ms);

/* "ok", "conflict", "unavailable", "invalid", "nomem". */
const char *pgkeel_dcs_status_name(enum pgkeel_dcs_status st);

#endif
