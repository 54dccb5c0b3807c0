/*
 * Shared by the HA decision's unit test (test_ha.c: the driver and the
 * helpers' tests) and its tables of rows (ha_rows_*.c).  See test_ha.c.
 */
#ifndef PGKEEL_TEST_HA_H
#define PGKEEL_TEST_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha.h"

#define ME          "pg-1"
#define SYSID       "7000000000000000001"
#define OTHER_SYSID "7000000000000000999"
#define WAL         50000000
/* 2026-01-01T00:00:00Z */
#define NOW_WALL 1767225600000LL
#define NOW_MS   1000000000LL

struct mspec {
	const char *name;
	const char *role;
	const char *state;
	const char *tags; /* JSON object text or NULL */
	int64_t timeline;
	bool no_api;
	bool no_conn;
};

struct cspec {
	const char *leader; /* NULL: no leader key */
	struct mspec m[8];
	size_t n;
	const char *initialize; /* NULL: absent */
	const char *config;     /* NULL: absent */
	const char *sync;       /* NULL: absent */
	const char *failover;
	const char *history;
	const char *failsafe;
	int64_t last_lsn; /* 0: no status key */
};

struct peer_spec {
	const char *name;
	bool unreachable;
	bool primary;
	int64_t wal;
	int64_t timeline;
	bool nofailover;
	bool watchdog_failed;
};

struct world {
	struct pgkeel_ha_settings s;
	struct pgkeel_ha_state st;
	struct pgkeel_ha_pg pg;
	struct cspec c;
	struct cspec reload; /* what a reload returns; = c unless reload_custom */
	bool reload_custom;
	bool reload_fails;
	struct cspec old; /* old_cluster; = c unless old_custom */
	bool old_custom;
	bool no_old;
	bool dcs_failed;
	bool is_leader;
	bool wd_running;
	bool wd_healthy;
	const char *task;
	struct pgkeel_ha_failsafe_leader fsl;
	bool have_fsl;
	bool failsafe_active;
	struct pgkeel_ha_scheduled_restart sr;
	bool have_sr;
	int64_t now_ms, now_wall_ms;
	unsigned random;
	struct pgkeel_pg_walsender ws[8];
	size_t n_ws;
	/* answers */
	struct peer_spec peers[8];
	size_t n_peers;
	enum pgkeel_ha_outcome update, acquire, init_race, fs_check, wd_activate;
	enum pgkeel_ha_outcome sync_out[PGKEEL_HA_MAX_SYNC_WRITES];
	enum pgkeel_ha_rewind_check rw[PGKEEL_HA_MAX_REWIND_CHECKS];
	const char *rs_ssn;
	int64_t rs_mark;
	struct pgkeel_pg_walsender rs_ws[8];
	size_t n_rs_ws;
};

struct run;
typedef void (*entry_fn)(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);

struct row {
	const char *name;
	void (*setup)(struct world *w);
	const char *requests;
	const char *effects;
	const char *message;
	void (*check)(struct run *r); /* optional: more about the plan */
	entry_fn entry;               /* NULL: pgkeel_ha_decide */
};

/* world helpers (test_ha.c) */
void world_default(struct world *w);
struct mspec member(const char *name, const char *role);
struct mspec *find_m(struct cspec *c, const char *name);
struct peer_spec *find_peer(struct world *w, const char *name);
/* I hold the lock and run as the primary; pg-2 is a replica now. */
void as_leader(struct world *w);
/* The leader key expired; pg-2 went away (unreachable). */
void no_leader(struct world *w);
void ws_add(struct pgkeel_pg_walsender *ws, size_t *n, const char *name, const char *sync_state,
            int64_t lsn);
/* the plan of a finished run */
const struct pgkeel_ha_plan *run_plan(const struct run *r);
void shutdown_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);
void on_shutdown_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);
void on_demote_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);
/* POST /restart with the world's scheduled restart as the request; POST /reinitialize */
void restart_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);
void reinit_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);
void reinit_force_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);

/* the tables */
extern const struct row ha_rows_cycle[];
extern const size_t ha_rows_cycle_n;
extern const struct row ha_rows_race[];
extern const size_t ha_rows_race_n;
extern const struct row ha_rows_leader[];
extern const size_t ha_rows_leader_n;
extern const struct row ha_rows_sync[];
extern const size_t ha_rows_sync_n;

#endif
