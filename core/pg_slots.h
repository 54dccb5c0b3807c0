/*
 * pg_slots: the replication slots of this node, managed as Patroni does
 * before 4.0 (spec/patroni-dcs-and-ha.md §1.5, §7.4; Patroni 3.x
 * Cluster.get_replication_slots and SlotsHandler.sync_replication_slots).
 *
 * Three steps, the first two pure (no I/O, no logging):
 *
 *   pgkeel_slots_compute_desired()  the slots this node must have, from the
 *           cluster snapshot, its name, role, tags, the effective
 *           configuration and the PostgreSQL version;
 *   pgkeel_slots_make_plan()  compared with the rows of pg_replication_slots:
 *           what to drop, create and advance;
 *   pgkeel_slots_apply()  runs the plan through pg_query by a deadline and
 *           logs Patroni's lines.
 * pgkeel_slots_sync() does read + desired + plan + apply, once per HA cycle.
 *
 * The rules (Patroni 3.x, member_slots_ttl does not exist yet):
 *  - member slots (physical), only with postgresql.use_slots, never for me nor
 *    for a member tagged nostream: on a primary or standby leader, for every
 *    member whose replicatefrom is unset, names me, or names no member; on a
 *    replica, for the members whose replicatefrom names me, the leader
 *    excepted.  Names via pgkeel_pg_slot_name(); two members mapping to one
 *    name are reported.
 *  - permanent slots (`permanent_replication_slots`, `permanent_slots` or
 *    `slots`, the first non-empty one): none without use_slots or when I am
 *    tagged nofailover (or failover_priority <= 0).  In a standby cluster, or
 *    when my chain of replicatefrom reaches a nostream member or loops, only
 *    the physical ones, and only on 11+ or as standby leader.  Otherwise all
 *    of them on 11+ (replicas keep physical permanent slots and advance them),
 *    before 11 all on the primary and only the logical ones elsewhere (which
 *    11- then rejects).  A value that is empty/null is a physical slot; an
 *    object without type is logical when it has database and plugin.  Names
 *    not matching ^[a-z0-9_]{1,63}$ are rejected; a physical permanent slot
 *    named like me is skipped; a logical one named like a member slot is
 *    rejected; a physical one named like a member slot replaces it.
 *  - a permanent slot carries the position to advance to: the larger of
 *    /status.slots[name] and (physical only) the xlog_location of a member
 *    whose slot has that name.
 *  - plan: slots not desired are dropped unless paused or matched by an
 *    ignore_slots entry ({name, type, database, plugin}, absent or empty
 *    fields match anything); active ones are left for a later cycle (the
 *    drop statement also refuses active slots, so a race is harmless).
 *    Desired slots whose type, database or plugin differ are dropped and
 *    created again.  Missing physical slots are created (reserving WAL at
 *    once); on 11+ existing physical slots are advanced to their known
 *    position when it is ahead of restart_lsn.  Missing logical slots are
 *    created on the primary only, in their database.
 *  - logical slots on a replica (PostgreSQL 11+; _ensure_logical_slots_replica):
 *    an existing one whose confirmed_flush_lsn is behind its /status position
 *    is advanced with pg_replication_slot_advance in its own database; a
 *    missing one with a /status position is listed in plan.copy (and
 *    result.copy), to be copied from the primary by pg_slots_copy.h (Patroni's
 *    copy_logical_slots); one without a position waits.  An advance that
 *    fails with 58P01 (the WAL it needs is gone) also lists the slot for a
 *    copy.  Logical slots no longer wanted are dropped like any unknown slot.
 *  - readiness (check_logical_slots_readiness): with a struct
 *    pgkeel_slots_logical passed to pgkeel_slots_sync, a replica asks the
 *    primary whether its physical slot's catalog_xmin protects the copied
 *    slots (pg_slots_copy.h); the primary forgets that state.
 *
 * Deviations from Patroni 3.x (deliberate, see pg_slots.c):
 *  - logical slots on replicas are advanced by the HA loop within its
 *    deadline, one statement each on a connection to the slot's database
 *    (Patroni hands them to a thread with statement_timeout=0): a slot whose
 *    backlog cannot be decoded in the statement timeout stays behind until a
 *    later cycle has less to decode; an active slot is not advanced.
 *  - hot_standby_feedback: pgkeel_slots_need_hot_standby_feedback() says
 *    when Patroni would force it on; pg_manager asks it every cycle and has
 *    pg_conf write it (pgkeel_pgm_set_hot_standby_feedback); the readiness
 *    check only reports it missing.
 *  - an active physical slot, or one without restart_lsn, is not advanced
 *    (PostgreSQL would refuse; Patroni logs the error every cycle).
 *  - pg_replication_slots is read every cycle (Patroni caches it between
 *    changes).
 *  - PostgreSQL 10 or later (the status query of pg_query needs it too).
 *  - a creation logs "Trying to create ... replication slot" (Patroni is
 *    silent there); value reprs in log lines are Patroni's for slot
 *    attributes and JSON for bad permanent slot values.
 *  - Patroni 3.0.2 itself had no nostream tag, no physical permanent slots
 *    on replicas and no advancing of physical slots; those are from 3.1-3.3,
 *    the pre-4.x rules the spec describes.
 *
 * Threads: the HA loop's.  Results own their memory (the _clear functions).
 */
#ifndef PGKEEL_PG_SLOTS_H
#define PGKEEL_PG_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "pg_conf.h"

struct pg_result;
struct pgkeel_pg;
struct pgkeel_pg_params;

/* Patroni needs 11 to advance slots (pg_replication_slot_advance). */
#define PGKEEL_SLOT_ADVANCE_VERSION 110000

enum pgkeel_slot_type {
	PGKEEL_SLOT_PHYSICAL,
	PGKEEL_SLOT_LOGICAL,
};

/* "physical", "logical". */
const char *pgkeel_slot_type_name(enum pgkeel_slot_type t);

/* ^[a-z0-9_]{1,63}$, the names Patroni accepts for permanent slots. */
bool pgkeel_slot_name_valid(const char *name);

/* Patroni's repr of slot attributes: {'type': 'logical', 'database': 'd', 'plugin': 'p'}. */
char *pgkeel_slot_repr(enum pgkeel_slot_type type, const char *database, const char *plugin);

/* One slot this node must have. */
struct pgkeel_slot_want {
	char name[64];
	enum pgkeel_slot_type type;
	char *database; /* logical only, else NULL */
	char *plugin;   /* logical only, else NULL */
	char *member;   /* the member streaming through it (a member slot), else NULL */
	bool permanent; /* from the permanent slots configuration */
	int64_t lsn;    /* permanent: known position to advance to; 0 when none */
};

struct pgkeel_slots_input {
	const struct pgkeel_cluster *cluster;
	const char *name; /* my member name */
	enum pgkeel_pg_role role;
	json_object *tags;   /* my configured tags (object) or NULL */
	json_object *config; /* the effective configuration tree */
	int server_version;  /* server_version_num, e.g. 150004 */
};

struct pgkeel_slots_desired {
	/*
	 * false: leave every slot alone this cycle -- no `config` key in the DCS
	 * (Patroni's `if cluster.config`: a wiped DCS must not drop slots) or a
	 * server before 10 (Patroni: 9.4; pgkeel's queries need 10).
	 */
	bool managed;
	bool paused; /* pause: nothing is dropped */
	enum pgkeel_pg_role role;
	int server_version;
	/* members first (cluster order), then permanent slots (config order) */
	struct pgkeel_slot_want *v;
	size_t n;
};

/*
 * Compute the slots of this node.  Patroni's ERROR lines (invalid permanent
 * slot names, members sharing a slot name, conflicts, bad values, logical
 * slots before 11) go into diag as errors, each distinct line once; they do
 * not make the result unusable.  Always fills out (clear it with
 * pgkeel_slots_desired_clear).
 */
void pgkeel_slots_compute_desired(const struct pgkeel_slots_input *in,
                                  struct pgkeel_slots_desired *out, struct pgkeel_diag *diag);
void pgkeel_slots_desired_clear(struct pgkeel_slots_desired *d);
const struct pgkeel_slot_want *pgkeel_slots_desired_find(const struct pgkeel_slots_desired *d,
                                                         const char *name);

/* A row of pg_replication_slots (non-temporary slots). */
struct pgkeel_slot_row {
	char *name;
	enum pgkeel_slot_type type;
	char *database; /* logical; NULL otherwise */
	char *plugin;   /* logical; NULL otherwise */
	bool active;
	int64_t restart_lsn;         /* bytes from 0/0; -1 when NULL */
	int64_t xmin;                /* -1 when NULL */
	int64_t catalog_xmin;        /* -1 when NULL */
	int64_t confirmed_flush_lsn; /* -1 when NULL */
};

struct pgkeel_slot_rows {
	struct pgkeel_slot_row *v;
	size_t n;
};

void pgkeel_slot_rows_clear(struct pgkeel_slot_rows *r);

/*
 * Does an ignore_slots list (array of {name, type, database, plugin}) match
 * this slot?  Patroni's rule: a matcher without name (or null) matches any
 * name; type, database and plugin match when absent or empty.
 */
bool pgkeel_slots_ignored(json_object *ignore_slots, const struct pgkeel_slot_row *row);

enum pgkeel_slot_op_kind {
	PGKEEL_SLOT_OP_DROP,         /* unknown slot: "Dropped unknown replication slot" */
	PGKEEL_SLOT_OP_DROP_CHANGED, /* desired, but type/database/plugin differ */
	PGKEEL_SLOT_OP_CREATE,
	PGKEEL_SLOT_OP_ADVANCE, /* pg_replication_slot_advance to lsn (logical: replicas only) */
};

/* "drop", "drop_changed", "create", "advance". */
const char *pgkeel_slot_op_name(enum pgkeel_slot_op_kind k);

struct pgkeel_slot_op {
	enum pgkeel_slot_op_kind kind;
	char name[64];
	enum pgkeel_slot_type type; /* CREATE: of the new slot; drops: of the existing one */
	char *database;             /* logical CREATE/ADVANCE: the slot's database */
	char *plugin;               /* CREATE logical */
	int64_t lsn;                /* ADVANCE: target; else 0 */
	int64_t from_lsn;           /* ADVANCE: restart_lsn (logical: confirmed_flush_lsn) now */
	bool after_drop;            /* CREATE: only if the DROP_CHANGED before it succeeded */
	char *old_repr;             /* DROP_CHANGED: Patroni's repr of the existing slot */
	char *new_repr;             /* DROP_CHANGED: ... and of the wanted one */
};

struct pgkeel_slots_plan {
	struct pgkeel_slot_op *ops; /* in execution order: drops, then creates/advances */
	size_t n;
	char **kept_active; /* unknown but active: not dropped this cycle */
	size_t n_kept_active;
	char **ignored; /* unknown, matched by ignore_slots (or paused) */
	size_t n_ignored;
	char **copy; /* logical, wanted on this replica, missing, with a position: copy them */
	size_t n_copy;
};

/* Compare; `config` gives ignore_slots.  Always fills out (may be empty). */
void pgkeel_slots_make_plan(const struct pgkeel_slots_desired *d,
                            const struct pgkeel_slot_row *rows, size_t n_rows, json_object *config,
                            struct pgkeel_slots_plan *out);
void pgkeel_slots_plan_clear(struct pgkeel_slots_plan *p);

/* ---- I/O through pg_query ---- */

struct pgkeel_slots_result {
	unsigned dropped;
	unsigned created;
	unsigned advanced;
	unsigned failed;  /* statements that failed (logged) */
	unsigned skipped; /* operations not attempted: deadline passed, or drop failed first */
	bool read_ok;     /* pg_replication_slots could be read (sync only) */
	/* logical slots to copy from the primary: plan.copy, then those whose
	 * advance failed with 58P01 */
	char **copy;
	size_t n_copy;
	/* sync: the rows read this cycle, before any change (for pgkeel_slots_status) */
	struct pgkeel_slot_rows rows;
};

/* Free the copy list and rows; counters back to 0.  NULL is fine. */
void pgkeel_slots_result_clear(struct pgkeel_slots_result *res);

/* A bigint or xid cell as an integer; -1 for NULL or junk. */
int64_t pgkeel_slots_cell_int(const struct pg_result *res, int row, int col);

/* Read pg_replication_slots (non-temporary).  Logs and returns false on failure. */
bool pgkeel_slots_read(struct pgkeel_pg *pg, int64_t deadline_ms,
                       struct pgkeel_slot_rows *out) PGKEEL_MUSTCHECK;

/*
 * Run a plan: statements on `pg` (the HA loop's connection), logical slots
 * created over a new connection per database with `params` (the same
 * parameters as pg with dbname replaced; NULL: logical creation fails).
 * Nothing is started after deadline_ms; what is left is counted as skipped
 * and done by a later cycle.  Logs Patroni's lines.  Adds to res (zero it
 * first; clear it with pgkeel_slots_result_clear).
 */
void pgkeel_slots_apply(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params,
                        const struct pgkeel_slots_plan *plan, int64_t deadline_ms,
                        struct pgkeel_slots_result *res);

struct pgkeel_slots_logical; /* pg_slots_copy.h */

/*
 * One HA-cycle pass: read, compute (logging diag's errors as Patroni does,
 * every cycle), readiness of copied logical slots when `logical` is given
 * (a replica checks it against the primary, a primary forgets it), plan,
 * apply.  False when the slots could not be read or a statement failed
 * (details logged).  res->copy: the logical slots the caller should copy
 * from the primary (pg_slots_copy.h) when a leader exists and no promotion
 * runs, as Patroni's "Copying logical slots [...] from the primary".
 * Always clear res with pgkeel_slots_result_clear.
 */
bool pgkeel_slots_sync(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params,
                       const struct pgkeel_slots_input *in, struct pgkeel_slots_logical *logical,
                       int64_t deadline_ms, struct pgkeel_slots_result *res);

/*
 * What a leader publishes as /status "slots" (Patroni 3.3 update_lock with
 * filter_permanent_slots and process_permanent_slots): for each permanent
 * slot of the configuration (as any replica would want it) that exists in
 * rows with the same attributes, its position -- restart_lsn for a physical
 * slot, confirmed_flush_lsn for a logical one (not when named like a
 * member's slot) -- and the physical slot named like this node (in->name)
 * at last_lsn when that one is permanent.  Nothing before 11 (no advancing
 * there) or without a configuration.  A new object, possibly empty: pass it
 * to pgkeel_status_encode, then json_object_put it.
 */
json_object *pgkeel_slots_status(const struct pgkeel_slots_input *in,
                                 const struct pgkeel_slot_row *rows, size_t n_rows,
                                 int64_t last_lsn);

/*
 * Must hot_standby_feedback be on here (Patroni 3.3
 * should_enforce_hot_standby_feedback, for postgresql.conf)?  When this node,
 * as a replica, has permanent logical slots, or (with use_slots) a member
 * other than the leader that cascades from it needs it, recursively.  Never
 * in a standby cluster, before 11, or without a `config` key.
 */
bool pgkeel_slots_need_hot_standby_feedback(const struct pgkeel_slots_input *in);

/*
 * The physical slot that carries this node's WAL on the primary
 * (get_slot_name_on_primary): the slot of the last member along the
 * replicatefrom chain.  False when a member on the way is tagged nostream or
 * the chain loops.
 */
bool pgkeel_slots_name_on_primary(const struct pgkeel_cluster *c, const char *name,
                                  const json_object *tags, char out[64]);

#endif
