/*
 * pg_slots_copy: logical replication slots on replicas -- copying them from
 * the primary and knowing when a copy is safe to use (Patroni 3.x
 * SlotsHandler.copy_logical_slots and check_logical_slots_readiness; spec
 * patroni-dcs-and-ha.md §7.4 and row 16 of §5.2).
 *
 * Copying, in two calls around a stop the caller does:
 *
 *   pgkeel_slots_copy_read()     over a new connection to the leader (its
 *           conn_url, dbname postgresql.database, the rewind credentials on
 *           11+ else the superuser's, connect_timeout 3 s, statement_timeout
 *           2 s), reads slot_name, slot_type, datname, plugin, catalog_xmin,
 *           confirmed_flush_lsn and pg_read_binary_file of
 *           pg_replslot/<name>/state for the names asked for, on a primary
 *           only (NOT pg_is_in_recovery()).  A slot is kept when this node,
 *           as a replica, wants a logical slot of that name, database and
 *           plugin (else Patroni's "Will not copy the logical slot ..."
 *           warning), and its state file passes pgkeel_slot_state_check;
 *   (the caller stops PostgreSQL -- Patroni stops only when something is
 *    to be copied)
 *   pgkeel_slots_copy_install()  refuses a data directory whose postmaster
 *           runs, then for each slot: pg_replslot/<name>.tmp/state written
 *           (O_EXCL, O_NOFOLLOW, fsync), the temporary directory fsynced,
 *           an old pg_replslot/<name> removed, the temporary one renamed to
 *           it and fsynced; pg_replslot fsynced at the end.  Modes are
 *           PostgreSQL's (0700/0600, or 0750/0640 when the data directory
 *           allows group access, as pg_perm), owner and group the data
 *           directory's.  PostgreSQL removes a leftover *.tmp directory at
 *           startup.  Each installed slot becomes pending in `logical`;
 *   (the caller starts PostgreSQL)
 *
 * Readiness.  A copied slot is safe to use after a promotion only once the
 * primary keeps the catalog rows it needs: the primary's physical slot for
 * this node (pgkeel_slots_name_on_primary) must have a catalog_xmin (sent
 * by hot_standby_feedback) with
 *     primary slot's catalog_xmin <= physical catalog_xmin <= local catalog_xmin
 * where "primary slot's" is the logical slot's catalog_xmin on the primary,
 * read once per pending slot.  Until then the slot stays pending ("not
 * ready").  Pending slots: those installed here, and, after
 * pgkeel_slots_logical_recheck() (Patroni's schedule(): a new instance, a
 * restart), every logical slot found at the next read.  The check runs from
 * pgkeel_slots_sync() on replicas, over the same kind of leader connection
 * as the copy; a primary forgets its pending slots.  On promotion
 * pgkeel_slots_logical_on_promote() warns about the slots still pending.
 *
 * Log lines are Patroni's ("Logical slot %s is safe to be used after a
 * failover", "Physical slot %s does not exist on the primary", "Logical
 * slot failover requires \"hot_standby_feedback\". ...").
 *
 * Deviations from Patroni 3.x (deliberate):
 *  - the state file is checked before it is installed (magic, length,
 *    CRC-32C, the slot name inside it): PostgreSQL refuses to start on a
 *    slot file that is corrupt, so a bad copy must never reach the disk;
 *  - a slot directory is replaced by rename of a fully written temporary
 *    directory, never written in place; names that are not valid slot names
 *    are refused (they become paths);
 *  - the install refuses a running postmaster (Patroni trusts its stop);
 *  - member conn_kwargs: only host and port are taken from them.
 *
 * Threads: the HA loop's (or the task running the copy); a struct
 * pgkeel_slots_logical belongs to one thread.
 */
#ifndef PGKEEL_PG_SLOTS_COPY_H
#define PGKEEL_PG_SLOTS_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_query.h"
#include "pg_slots.h"

/* ---- a connection to the leader ---- */

/* Parameters for a connection to the cluster's leader, with their storage. */
struct pgkeel_slots_leader_conn {
	struct pgkeel_pg_params params;
	char leader[128]; /* its member name, for messages */
	char host[256];
	char dbname[64];
	json_object *auth; /* a reference to the credentials object; strings point into it */
	const char **extra_keys;
	const char **extra_values;
};

/*
 * Build from the leader's member (conn_kwargs host/port, else conn_url),
 * postgresql.database (default postgres) and the credentials (Patroni's
 * rewind_credentials: authentication.rewind on 11+ when present, else
 * authentication.superuser; username -> user, password, other keys as
 * libpq keywords).  False (err set) without a leader or a usable URL.
 * Clear it with pgkeel_slots_leader_conn_clear in either case.
 */
bool pgkeel_slots_leader_conn_init(struct pgkeel_slots_leader_conn *c,
                                   const struct pgkeel_cluster *cluster, json_object *config,
                                   int server_version, char *err, size_t errlen) PGKEEL_MUSTCHECK;
void pgkeel_slots_leader_conn_clear(struct pgkeel_slots_leader_conn *c);

/* ---- the state file ---- */

/* PostgreSQL's ReplicationSlotOnDisk: magic, checksum, version, length. */
#define PGKEEL_SLOT_STATE_MAGIC     0x1051CA1u
#define PGKEEL_SLOT_STATE_HEAD_SIZE 16

/* CRC-32C (Castagnoli), PostgreSQL's pg_crc32c: init ~0, final ~. */
uint32_t pgkeel_crc32c(const void *data, size_t len);

/*
 * Is `data` a replication slot state file for `name`, as PostgreSQL reads
 * it (RestoreSlotFromDisk): magic, length = size - 16, CRC-32C over the
 * bytes from offset 8, and the slot name at offset 16?  (Host byte order:
 * primary and replica share the architecture.)  why gets the reason.
 */
bool pgkeel_slot_state_check(const char *name, const unsigned char *data, size_t len, char *why,
                             size_t whylen);

/* ---- copying ---- */

struct pgkeel_slot_copy {
	char name[64];
	char *database;
	char *plugin;
	int64_t catalog_xmin;        /* on the primary; -1 when NULL */
	int64_t confirmed_flush_lsn; /* on the primary; -1 when NULL */
	unsigned char *state;        /* pg_replslot/<name>/state */
	size_t state_len;
};

struct pgkeel_slot_copies {
	struct pgkeel_slot_copy *v;
	size_t n;
};

void pgkeel_slot_copies_clear(struct pgkeel_slot_copies *c);

/*
 * Read the slots `names` (from pgkeel_slots_result.copy) from the leader of
 * in->cluster.  `in` describes this node; it is taken as a replica.  Names
 * that are not valid slot names are skipped.  False when nothing could be
 * read (no leader, connection or query failed: logged as Patroni's "Failed
 * to copy logical slots from the <leader> via postgresql connection");
 * true otherwise, out possibly empty (then there is nothing to stop for).
 */
bool pgkeel_slots_copy_read(const struct pgkeel_slots_input *in, char *const *names, size_t n,
                            int64_t deadline_ms, struct pgkeel_slot_copies *out) PGKEEL_MUSTCHECK;

struct pgkeel_slots_logical;

/*
 * Install the copies into the stopped instance of data_dir (see above).
 * `logical` (optional) gets each installed slot as pending.  False with err
 * on the first failure; slots installed before it stay installed.
 */
bool pgkeel_slots_copy_install(const char *data_dir, const struct pgkeel_slot_copies *copies,
                               struct pgkeel_slots_logical *logical, char *err,
                               size_t errlen) PGKEEL_MUSTCHECK;

/* ---- readiness ---- */

struct pgkeel_slot_pending {
	char name[64];
	bool known;           /* primary_xmin read from the primary */
	int64_t primary_xmin; /* the slot's catalog_xmin on the primary; -1 when NULL */
};

/* Kept by the caller across cycles. */
struct pgkeel_slots_logical {
	struct pgkeel_slot_pending *pending; /* not (yet) safe to use after a failover */
	size_t n_pending;
	bool recheck; /* at the next read every local logical slot becomes pending */
};

/* A state with recheck set (Patroni's SlotsHandler starts that way). */
void pgkeel_slots_logical_init(struct pgkeel_slots_logical *l);
void pgkeel_slots_logical_clear(struct pgkeel_slots_logical *l);
/* PostgreSQL (re)started: check every logical slot again. */
void pgkeel_slots_logical_recheck(struct pgkeel_slots_logical *l);
/* This node is the primary: nothing is pending (recheck consumed too). */
void pgkeel_slots_logical_forget(struct pgkeel_slots_logical *l);
/* Promotion: warn about the slots still pending, then forget them. */
void pgkeel_slots_logical_on_promote(struct pgkeel_slots_logical *l);
/* Is `name` pending? */
bool pgkeel_slots_logical_is_pending(const struct pgkeel_slots_logical *l, const char *name);
/* Add `name` as pending with an unknown primary catalog_xmin. */
void pgkeel_slots_logical_add(struct pgkeel_slots_logical *l, const char *name);

/*
 * The pure step (_ready_logical_slots): drop from the pending list what is
 * ready.  have_physical/physical_xmin: the primary's physical slot for this
 * node and its catalog_xmin (false: not known this cycle, then only slots
 * missing locally are dropped).  rows: the local slots.  Logs "Logical slot
 * %s is safe to be used after a failover" for each existing slot found
 * ready.
 */
void pgkeel_slots_logical_ready(struct pgkeel_slots_logical *l, const struct pgkeel_slot_row *rows,
                                size_t n_rows, bool have_physical, int64_t physical_xmin);

/*
 * One readiness check on a replica (check_logical_slots_readiness): apply
 * recheck to rows, then, when something is pending and the cluster has a
 * leader, ask it for the physical slot of this node and the primary
 * catalog_xmin of the pending slots not known yet; a physical slot without
 * catalog_xmin makes it look at hot_standby_feedback on `pg` (the local
 * connection).  False when the check could not be completed this cycle
 * (logged).
 */
bool pgkeel_slots_check_readiness(struct pgkeel_slots_logical *l, struct pgkeel_pg *pg,
                                  const struct pgkeel_slots_input *in,
                                  const struct pgkeel_slot_row *rows, size_t n_rows,
                                  int64_t deadline_ms);

#endif
