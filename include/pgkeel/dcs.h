/*
 * pgkeel/dcs.h - the DCS backend ABI.
 *
 * A backend is a shared object `dcs_<name>.so` that exports exactly one
 * function, pgkeel_dcs_plugin_entry(), returning a pointer to a static const
 * struct pgkeel_dcs_plugin.  The host loads it with dlopen(RTLD_NOW |
 * RTLD_LOCAL | RTLD_NODELETE) and never unloads it.
 *
 * The interface is at the level of Patroni's AbstractDCS operations, not raw
 * key/value access: each store enforces liveness its own way (etcd leases,
 * Consul sessions, ZooKeeper ephemeral znodes, Kubernetes annotations timed by
 * the reader) and the backend owns that mapping.  The host sees cluster-level
 * verbs and raw entries; it parses Patroni's JSON values itself, so the cluster
 * model is not part of this ABI.
 *
 * Self-contained: only <stddef.h>, <stdint.h>, <stdbool.h> via host.h.
 *
 * ------------------------------------------------------------------------
 * Versioning
 *   abi_version = major << 16 | minor.  The loader refuses a different major.
 *   struct_size tells which members exist: a member past struct_size is
 *   treated as NULL.  Members are only ever appended (minor bump); any
 *   reorder, removal or change of meaning bumps the major.
 *
 * ABI changelog
 *   1.0  first version.
 *
 * ------------------------------------------------------------------------
 * Statuses
 *   OK           done.
 *   CONFLICT     the store answered "no": a compare-and-set lost, the leader
 *                key is held by somebody else, a create-if-absent found the
 *                key.  The store is healthy.
 *   UNAVAILABLE  the store could not be asked or did not answer in time:
 *                connection refused, timeout, 5xx, no raft leader, auth
 *                refused.  This is the HA loop's "DCS is down" path, so it
 *                must never be reported as CONFLICT, and CONFLICT must never
 *                be reported as UNAVAILABLE.
 *   INVALID      the request itself is wrong (bad option, an op a ctl handle
 *                may not perform, a value the store refuses as malformed).
 *   NOMEM        out of memory.
 *   Finer causes (timeout, auth, not found) go into pgkeel_err, never into
 *   the status.  errno is not part of the contract.
 *
 * Deadlines
 *   Every op takes `deadline_ms`, an absolute time on the host's monotonic
 *   clock (host->now_monotonic_ms).  The op returns by then, whatever the
 *   store does; work that would finish later is abandoned (and its late
 *   completion ignored safely) and UNAVAILABLE is returned.
 *
 * Threads
 *   Every op is called from one host thread at a time per handle (the HA
 *   loop, or pgkeelctl's main thread).  A backend may own threads (a watch
 *   stream, the ZooKeeper mt client); from those threads it may call only
 *   host->log and host->post_event.  fini() joins every backend thread before
 *   it returns.  No mutable globals in a backend: two handles in one process
 *   must not interfere.
 *
 * Memory
 *   Inputs are borrowed for the duration of the call.  Entries handed to the
 *   load_cluster callback are borrowed for the duration of that callback: the
 *   host copies what it keeps.  Nothing allocated on one side is freed on the
 *   other.  A backend never calls exit() and never writes to stdout/stderr.
 *
 * Contract details (what the conformance suite, tests/conformance, checks)
 *   - init() never contacts the store: it validates options and returns, so
 *     a member starts while the DCS is down.  Ops then report UNAVAILABLE.
 *   - An op that returns is done or refused; a deadline overrun of more than
 *     a scheduling hiccup (the suite allows 500 ms) is a bug.
 *   - CAS with a version on an absent key is CONFLICT; a version the backend
 *     cannot parse is INVALID.
 *   - delete_leader on a key that is not ours: CONFLICT, and the key stays.
 *     update_leader when the key names another member: CONFLICT, and the key
 *     stays.  When the key is absent, update_leader may re-create it bound
 *     to our liveness (Patroni >= 3.0.3 does).
 *   - Owners are decimal or opaque strings; the owner reported in
 *     pgkeel_dcs_lease and the owner of the entries written under it are the
 *     same string.  granted_ttl_ms is > 0 for backends that grant a TTL.
 *   - After set_ttl, the next update_leader binds the leader key to the new
 *     liveness token.
 *   - fini() does not release the lease or session: the keys bound to it
 *     expire after the TTL, as when the process dies.  Releasing the lock
 *     is delete_leader's job.
 *   - delete_sync_state leaves the key absent or holding {} (ZooKeeper and
 *     Kubernetes cannot delete conditionally); readers treat both as "no
 *     sync state".
 *   - watch() may wake the loop more than once and spuriously; a wake-up is
 *     a hint.  A leader change must wake it; a config change should.
 *   - A ctl handle has no lease; besides reads it may do the operator's
 *     writes (config, failover, initialize, cancel, delete_cluster).
 *
 * Keys
 *   The host passes identity in pgkeel_dcs_params.  The backend composes the
 *   store path `<namespace>/<scope>/<key>` itself (Kubernetes maps it onto
 *   objects and annotations).  Keys reported to the host are always the
 *   logical ones, relative to the cluster prefix: "leader", "config",
 *   "initialize", "members/<name>", "status", "optime/leader", "sync",
 *   "failover", "history", "failsafe".
 */
#ifndef PGKEEL_DCS_H
#define PGKEEL_DCS_H

#include <pgkeel/host.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PGKEEL_DCS_ABI_MAJOR 1
#define PGKEEL_DCS_ABI_MINOR 0
#define PGKEEL_DCS_ABI_VERSION PGKEEL_ABI_MAKE(PGKEEL_DCS_ABI_MAJOR, PGKEEL_DCS_ABI_MINOR)

/* The one symbol a backend exports. */
#define PGKEEL_DCS_ENTRY_SYMBOL "pgkeel_dcs_plugin_entry"

enum pgkeel_dcs_status {
	PGKEEL_DCS_OK = 0,
	PGKEEL_DCS_CONFLICT = 1,
	PGKEEL_DCS_UNAVAILABLE = 2,
	PGKEEL_DCS_INVALID = 3,
	PGKEEL_DCS_NOMEM = 4,
};

/* Detail codes for pgkeel_err.code (informational; the status decides). */
enum pgkeel_dcs_detail {
	PGKEEL_DCS_D_NONE = 0,
	PGKEEL_DCS_D_TIMEOUT = 1,
	PGKEEL_DCS_D_CONNECT = 2,
	PGKEEL_DCS_D_AUTH = 3,
	PGKEEL_DCS_D_NOT_FOUND = 4,
	PGKEEL_DCS_D_EXISTS = 5,
	PGKEEL_DCS_D_VERSION = 6,
	PGKEEL_DCS_D_SESSION_LOST = 7,
	PGKEEL_DCS_D_SERVER = 8,
	PGKEEL_DCS_D_PROTOCOL = 9,
};

/* Caller-owned error detail: the backend writes a NUL-terminated message. */
#define PGKEEL_ERR_MSG_LEN 256
struct pgkeel_err {
	int code; /* enum pgkeel_dcs_detail */
	char msg[PGKEEL_ERR_MSG_LEN];
};

/* Flags of pgkeel_dcs_params.flags. */
enum pgkeel_dcs_flags {
	/*
	 * A read-only control handle (pgkeelctl, REST writes on behalf of an
	 * operator): no lease or session is created, no member key is written,
	 * reads are linearizable (quorum) rather than served from a cache.  On
	 * such a handle the lease-bound ops (attempt_to_acquire_leader,
	 * update_leader, take_leader, delete_leader, touch_member, watch) return
	 * INVALID.
	 */
	PGKEEL_DCS_CTL = 1u << 0,
};

/* What the host tells a backend at init. */
struct pgkeel_dcs_params {
	uint32_t struct_size;
	uint32_t flags;            /* enum pgkeel_dcs_flags */
	const char *namespace_;    /* normalised, begins and ends with '/': "/service/" */
	const char *scope;         /* cluster name */
	const char *name;          /* this member's name; NULL on a ctl handle */
	int ttl;                   /* seconds: lease/session TTL wanted */
	int loop_wait;             /* seconds */
	int retry_timeout;         /* seconds */
	/*
	 * The backend's own config subtree (the value of the `etcd3:` section,
	 * say) as JSON text, lists and maps included.  The backend validates it
	 * and reports unknown keys through host->log.
	 */
	const char *options_json;
	const char *user_agent;    /* e.g. "pgkeel/0.1.0" */
};

/* One raw entry of the cluster prefix, handed to the host by load_cluster. */
struct pgkeel_dcs_entry {
	const char *key;        /* logical key, e.g. "members/pg-1" (see Keys above) */
	const char *value;      /* bytes as stored; not NUL-terminated in general */
	size_t value_len;
	const char *version;    /* opaque CAS token: etcd mod_revision, Consul ModifyIndex,
	                           ZooKeeper dataVersion, Kubernetes resourceVersion */
	const char *modify_version; /* what tells a config change (ZooKeeper mzxid);
	                               NULL = same as version */
	const char *owner;      /* lease / session / ephemeralOwner; NULL if not bound */
};

/* Return 0 to continue, non-zero to stop (load_cluster then returns NOMEM). */
typedef int (*pgkeel_dcs_entry_cb)(void *arg, const struct pgkeel_dcs_entry *entry);

/*
 * What a backend reports after it obtained or renewed liveness.  The host
 * computes lock validity itself: (time it sent the request) + granted_ttl_ms,
 * on CLOCK_BOOTTIME.  A backend reports what the store actually granted (a
 * ZooKeeper server clamps the session timeout; etcd may grant a longer TTL).
 */
struct pgkeel_dcs_lease {
	uint32_t struct_size;
	int64_t granted_ttl_ms; /* 0 = unknown */
	char owner[64];         /* lease/session id as the store names it */
};

/* Arguments of update_leader (Kubernetes writes all of them in one request). */
struct pgkeel_dcs_leader_update {
	uint32_t struct_size;
	const char *leader_version; /* version of the leader entry last loaded; may be NULL */
	int64_t last_lsn;           /* < 0: unknown */
	const char *status_json;    /* {"optime":..,"slots":..}; NULL: do not write.
	                               Backends write exactly this text; last_lsn is
	                               informational (Kubernetes puts it in an
	                               annotation of its own). */
	const char *failsafe_json;  /* NULL: do not write */
};

struct pgkeel_dcs; /* defined by each backend */

struct pgkeel_dcs_plugin {
	/* --- header: never moves --- */
	uint32_t abi_version; /* PGKEEL_DCS_ABI_VERSION the backend was built with */
	uint32_t struct_size; /* sizeof(struct pgkeel_dcs_plugin) in the backend */
	const char *name;     /* "etcd3" */
	const char *version;  /* backend version string */

	/* --- lifecycle (mandatory) --- */
	enum pgkeel_dcs_status (*init)(const struct pgkeel_host *host,
	                               const struct pgkeel_dcs_params *params,
	                               struct pgkeel_dcs **out, struct pgkeel_err *err);
	void (*fini)(struct pgkeel_dcs *dcs); /* accepts NULL; joins backend threads */

	/* --- reads (mandatory) --- */

	/* Read everything under the cluster prefix; call `cb` once per entry. */
	enum pgkeel_dcs_status (*load_cluster)(struct pgkeel_dcs *dcs, int64_t deadline_ms,
	                                       pgkeel_dcs_entry_cb cb, void *arg,
	                                       struct pgkeel_err *err);

	/* --- leader lock (mandatory) --- */

	/* Create `leader` = name bound to my liveness iff absent. CONFLICT if held. */
	enum pgkeel_dcs_status (*attempt_to_acquire_leader)(struct pgkeel_dcs *dcs,
	                                                    int64_t deadline_ms,
	                                                    struct pgkeel_dcs_lease *lease,
	                                                    struct pgkeel_err *err);
	/* Renew the lock iff it is still mine; then write status/failsafe if given. */
	enum pgkeel_dcs_status (*update_leader)(struct pgkeel_dcs *dcs,
	                                        const struct pgkeel_dcs_leader_update *u,
	                                        int64_t deadline_ms, struct pgkeel_dcs_lease *lease,
	                                        struct pgkeel_err *err);
	/* After a successful bootstrap: make me the leader (may overwrite). */
	enum pgkeel_dcs_status (*take_leader)(struct pgkeel_dcs *dcs, int64_t deadline_ms,
	                                      struct pgkeel_dcs_lease *lease, struct pgkeel_err *err);
	/* Remove `leader` iff it is mine. */
	enum pgkeel_dcs_status (*delete_leader)(struct pgkeel_dcs *dcs, const char *leader_version,
	                                        int64_t deadline_ms, struct pgkeel_err *err);

	/* --- member and cluster keys (mandatory) --- */
	enum pgkeel_dcs_status (*touch_member)(struct pgkeel_dcs *dcs, const char *json,
	                                       int64_t deadline_ms, struct pgkeel_err *err);
	/* create_new: create-if-absent (CONFLICT if present); else plain set. */
	enum pgkeel_dcs_status (*initialize)(struct pgkeel_dcs *dcs, bool create_new,
	                                     const char *sysid, int64_t deadline_ms,
	                                     struct pgkeel_err *err);
	enum pgkeel_dcs_status (*cancel_initialization)(struct pgkeel_dcs *dcs, int64_t deadline_ms,
	                                                struct pgkeel_err *err);
	/* CAS on expect_version; NULL = unconditional.  CONFLICT when it lost. */
	enum pgkeel_dcs_status (*set_config)(struct pgkeel_dcs *dcs, const char *json,
	                                     const char *expect_version, int64_t deadline_ms,
	                                     struct pgkeel_err *err);
	enum pgkeel_dcs_status (*set_failover)(struct pgkeel_dcs *dcs, const char *json,
	                                       const char *expect_version, int64_t deadline_ms,
	                                       struct pgkeel_err *err);
	/* CAS write of `sync`; the new version is written into new_version. */
	enum pgkeel_dcs_status (*write_sync_state)(struct pgkeel_dcs *dcs, const char *json,
	                                           const char *expect_version, char *new_version,
	                                           size_t new_version_len, int64_t deadline_ms,
	                                           struct pgkeel_err *err);
	enum pgkeel_dcs_status (*delete_sync_state)(struct pgkeel_dcs *dcs,
	                                            const char *expect_version,
	                                            int64_t deadline_ms, struct pgkeel_err *err);
	/* Plain writes (no lease). */
	enum pgkeel_dcs_status (*set_history)(struct pgkeel_dcs *dcs, const char *json,
	                                      int64_t deadline_ms, struct pgkeel_err *err);
	enum pgkeel_dcs_status (*write_status)(struct pgkeel_dcs *dcs, const char *json,
	                                       int64_t deadline_ms, struct pgkeel_err *err);
	enum pgkeel_dcs_status (*write_failsafe)(struct pgkeel_dcs *dcs, const char *json,
	                                         int64_t deadline_ms, struct pgkeel_err *err);
	/* Recursive delete of the cluster prefix (pgkeelctl remove). */
	enum pgkeel_dcs_status (*delete_cluster)(struct pgkeel_dcs *dcs, int64_t deadline_ms,
	                                         struct pgkeel_err *err);

	/* --- timing and notification (mandatory) --- */

	/*
	 * New timing.  A ttl change invalidates the liveness token where the
	 * TTL is baked into it (etcd lease, Consul session, ZooKeeper session);
	 * the next acquire/update obtains a new one.  Never blocks.
	 */
	enum pgkeel_dcs_status (*set_ttl)(struct pgkeel_dcs *dcs, int ttl, int loop_wait,
	                                  int retry_timeout, struct pgkeel_err *err);
	/*
	 * Arm a wake-up: when the leader key (version != leader_version, or any
	 * change if NULL) or the config changes, call host->post_event.  Returns
	 * at once; never blocks the caller.
	 */
	enum pgkeel_dcs_status (*watch)(struct pgkeel_dcs *dcs, const char *leader_version,
	                                struct pgkeel_err *err);

	/* --- optional (may be NULL) --- */

	/* Legacy `optime/leader` for peers older than Patroni 2.1. */
	enum pgkeel_dcs_status (*write_leader_optime)(struct pgkeel_dcs *dcs, int64_t lsn,
	                                              int64_t deadline_ms, struct pgkeel_err *err);
};

/*
 * The entry point every backend exports (and nothing else).  Backends are
 * built with -fvisibility=hidden; define the entry as
 *   PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *pgkeel_dcs_plugin_entry(void)
 */
#if defined(__GNUC__)
#define PGKEEL_DCS_EXPORT __attribute__((visibility("default")))
#else
#define PGKEEL_DCS_EXPORT
#endif
typedef const struct pgkeel_dcs_plugin *(*pgkeel_dcs_entry_fn)(void);
PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *pgkeel_dcs_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* PGKEEL_DCS_H */
