/*
 * The cluster model: what the DCS holds for one Patroni/pgkeel cluster,
 * parsed from Patroni's values into an immutable, refcounted snapshot, and
 * the encoders that write those values back exactly as Patroni 3.0.2 does.
 *
 * Flow: a backend's load_cluster hands raw entries (logical key, value bytes,
 * version, owner) to pgkeel_cluster_builder_add(); the core then calls
 * pgkeel_cluster_builder_finish() and gets a snapshot.  The builder copies
 * everything it keeps; entries are borrowed only for the call.
 *
 * Bad input (a foreign writer): a value that is not what Patroni writes is
 * logged once per load as a WARNING naming the DCS key, e.g.
 *   ignoring malformed value of DCS key members/pg-2: expected a JSON object
 * recorded in pgkeel_cluster.warnings, and handled the way Patroni handles
 * an unparsable value (documented per field below) -- never a crash and
 * never, by itself, a reason to demote.
 *
 * Threads: a finished snapshot is never modified.  The HA loop publishes it
 * and REST threads read it concurrently after pgkeel_cluster_ref().  The
 * json_object members are shared read-only: readers may walk them with
 * json_object_get_*() / json_object_object_foreach / array access, but must
 * not call json_object_get()/json_object_put() (json-c refcounts are not
 * atomic) nor json_object_to_json_string*() (it caches a buffer inside the
 * object); use pgkeel_json_compact() to render one.
 */
#ifndef PGKEEL_CLUSTER_H
#define PGKEEL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/dcs.h>

#include "json.h"

struct json_object;

/* Patroni's supervisor version "a.b.c" as one comparable number. */
#define PGKEEL_VERSION_NUM(major, minor, patch) \
	((int64_t)(major) * 1000000 + (int64_t)(minor) * 1000 + (int64_t)(patch))

/* checkpoint_after_promote is meaningful by its presence (Patroni's Leader). */
enum pgkeel_tristate {
	PGKEEL_TRI_ABSENT = -1,
	PGKEEL_TRI_FALSE = 0,
	PGKEEL_TRI_TRUE = 1,
};

/*
 * The fields of a member value (`members/<name>`), in the order Patroni
 * 3.0.2 writes them (ha.py touch_member).  In a snapshot the pointers point
 * into pgkeel_member.data and live as long as the snapshot; a caller that
 * fills one for pgkeel_member_data_encode() lends its own pointers.
 * A string field is NULL when absent (or malformed); initialize with
 * pgkeel_member_data_init().
 */
struct pgkeel_member_data {
	const char *conn_url;                  /* postgres://host:port/dbname */
	const char *api_url;                   /* http(s)://host:port/patroni */
	const char *state;                     /* NULL: Patroni's default "unknown" */
	const char *role;                      /* master, replica, standby_leader, ... */
	const char *version;                   /* supervisor version, e.g. "3.0.2" */
	const char *proxy_url;                 /* optional */
	enum pgkeel_tristate checkpoint_after_promote; /* Patroni only ever writes false */
	const struct json_object *tags;        /* object, NULL when absent; order kept */
	bool pending_restart;                  /* written only when true */
	int64_t xlog_location;                 /* -1 when absent */
	const char *replication_state;         /* [>=3.0.4] streaming | in archive recovery */
	int64_t timeline;                      /* 0 when absent (written only when truthy) */
	const struct json_object *scheduled_restart; /* object, NULL when absent; order kept */
	bool pause;                            /* written only when true */
};

void pgkeel_member_data_init(struct pgkeel_member_data *d);

struct pgkeel_member {
	char *name;                   /* from the key members/<name> */
	char *version;                /* CAS token of the member key; NULL if none */
	char *owner;                  /* lease/session the key is bound to; NULL if none */
	struct pgkeel_member_data d;  /* parsed fields, pointing into `data` */
	/*
	 * The whole value as an object, for fields the model does not name
	 * (conn_kwargs, receive_lsn, pending_restart_reason, ...).  An empty
	 * object when the value was malformed: the member is then kept with no
	 * data, as Patroni keeps it (its name still matters, e.g. for its
	 * replication slot on the primary).
	 */
	struct json_object *data;
	bool legacy_url;              /* value was a legacy postgres://...?application_name= URL */
	bool malformed;               /* the value was skipped (see warnings) */
};

struct pgkeel_leader {
	/*
	 * The holder's name; "" when a store reports a leader object without a
	 * holder (Kubernetes), which counts as unlocked.  A value with NUL bytes
	 * or invalid UTF-8 is not dropped (that would look like a free lock):
	 * it is kept with each bad byte replaced by U+FFFD, so it matches no
	 * member and the cluster stays locked.
	 */
	char *name;
	char *version;                        /* CAS token of the leader key */
	char *owner;                          /* lease/session; NULL if none */
	const struct pgkeel_member *member;   /* the member of that name, or NULL */
};

struct pgkeel_cluster_config {
	char *version;          /* CAS token for set_config */
	char *modify_version;   /* what tells a change (ZooKeeper mzxid); = version if not given */
	char *raw;              /* the value as stored, NUL-terminated copy */
	size_t raw_len;
	/*
	 * The parsed object when valid, else NULL.  Patroni turns an unparsable
	 * or non-object config into {} with modify_index 0, i.e. "no valid
	 * config": the HA loop keeps the last good one.
	 */
	struct json_object *data;
	bool valid;
};

struct pgkeel_status {
	bool present;                 /* the status key exists */
	/*
	 * Leader's last known WAL position: status.optime, else (only when
	 * the status key is absent) the legacy optime/leader.  -1 = unknown
	 * (Patroni uses 0 for that).
	 */
	int64_t last_lsn;
	struct json_object *slots;        /* {slot: int}; NULL when absent/empty/malformed */
	struct json_object *retain_slots; /* [4.x] array of slot names; NULL when absent */
	int64_t optime_leader;            /* legacy `optime/leader`; -1 when absent */
};

struct pgkeel_failover {
	char *version;          /* CAS token for set_failover */
	char *leader;           /* switchover from; NULL when absent or empty */
	char *candidate;        /* JSON key "member"; NULL when absent or empty */
	char *scheduled_at;     /* ISO-8601 text as stored; NULL when absent */
	bool legacy;            /* value was the legacy "leader:candidate" text */
};

struct pgkeel_sync {
	bool present;           /* the sync key exists */
	char *version;          /* CAS token; NULL when the key is absent */
	char *leader;           /* NULL = "empty" sync state */
	char **standbys;        /* sync_standby split on ',', stripped, empties dropped */
	size_t n_standbys;
	int64_t quorum;         /* [4.x]; 0 otherwise */
};

struct pgkeel_history_line {
	int64_t timeline;       /* -1 when not an integer */
	int64_t lsn;            /* -1 when not an integer */
	char *reason;           /* NULL when absent */
	char *timestamp;        /* promotion time, ISO-8601; NULL when absent */
	char *new_leader;       /* NULL when absent */
	size_t n_fields;        /* elements of the JSON list (Patroni checks for 5) */
	bool valid;             /* a list starting with two integers */
};

struct pgkeel_history {
	char *version;
	char *raw;              /* the value as stored ("[]" means timeline 1) */
	struct pgkeel_history_line *lines;
	size_t n_lines;
	bool valid;             /* the value was a JSON list */
};

struct pgkeel_failsafe_entry {
	char *name;
	char *api_url;          /* NULL when the value was not a string */
};

struct pgkeel_failsafe {
	struct pgkeel_failsafe_entry *entries;   /* in the order stored */
	size_t n_entries;
};

#define PGKEEL_CLUSTER_MAX_WARNINGS 32

struct pgkeel_cluster {
	int refs_;                          /* private: use pgkeel_cluster_ref/unref */
	char *initialize;                   /* NULL: absent; "": bootstrap running; else sysid */
	struct pgkeel_cluster_config *config;   /* NULL: absent */
	struct pgkeel_leader *leader;       /* NULL: no leader key */
	struct pgkeel_status status;
	struct pgkeel_member *members;      /* in the order the backend reported them */
	size_t n_members;
	struct pgkeel_failover *failover;   /* NULL: absent or legacy text naming nobody */
	struct pgkeel_sync sync;            /* always there; leader NULL = empty */
	struct pgkeel_history *history;     /* NULL: absent */
	struct pgkeel_failsafe *failsafe;   /* NULL: absent or not an object */
	char **warnings;                    /* the first PGKEEL_CLUSTER_MAX_WARNINGS lines logged */
	size_t n_warnings;
	size_t n_warnings_total;            /* all of them, including those not kept */
};

/* ---- snapshot lifetime ---- */

/* An empty cluster (no keys at all), refcount 1. */
struct pgkeel_cluster *pgkeel_cluster_new_empty(void);
/* Take a reference (thread-safe); returns c.  NULL is passed through. */
struct pgkeel_cluster *pgkeel_cluster_ref(struct pgkeel_cluster *c);
/* Drop a reference (thread-safe); the last one frees.  Accepts NULL. */
void pgkeel_cluster_unref(struct pgkeel_cluster *c);

/* ---- building a snapshot from raw entries ---- */

struct pgkeel_cluster_builder;

struct pgkeel_cluster_builder *pgkeel_cluster_builder_new(void);
/*
 * A pgkeel_dcs_entry_cb: `arg` is the builder.  Copies what it keeps.
 * Keys unknown to the model are ignored (DEBUG log); a repeated key replaces
 * the earlier entry.  Always returns 0: a malformed value is skipped, never
 * a reason to abort the load.
 */
int pgkeel_cluster_builder_add(void *arg, const struct pgkeel_dcs_entry *e);
/* Resolve the leader against the members; frees the builder.  Never NULL. */
struct pgkeel_cluster *pgkeel_cluster_builder_finish(struct pgkeel_cluster_builder *b);
/* Abandon a build (load_cluster failed).  Accepts NULL. */
void pgkeel_cluster_builder_free(struct pgkeel_cluster_builder *b);

/* ---- derived facts ---- */

/* No key at all (a wiped or never bootstrapped cluster). */
bool pgkeel_cluster_is_empty(const struct pgkeel_cluster *c);
/* The member with exactly that name, or NULL. */
const struct pgkeel_member *pgkeel_cluster_get_member(const struct pgkeel_cluster *c,
                                                      const char *name);
/* The lock holder's name, or NULL when unlocked. */
const char *pgkeel_cluster_leader_name(const struct pgkeel_cluster *c);
/* No leader key, or one naming nobody. */
bool pgkeel_cluster_is_unlocked(const struct pgkeel_cluster *c);
/*
 * Timeline from the history key (§2.1): [] -> 1, else last line's
 * timeline + 1; absent, not a list, or a last line without an integer
 * timeline -> 0 (unknown).
 */
int64_t pgkeel_cluster_timeline(const struct pgkeel_cluster *c);
/*
 * "a.b.c" (1 to 3 dot-separated decimal parts, each 0..999) into
 * PGKEEL_VERSION_NUM(a, b, c); missing parts count as 0.  False for anything
 * else ("3.0.2rc1", "", NULL), which Patroni also ignores.
 */
bool pgkeel_version_parse(const char *s, int64_t *out) PGKEEL_MUSTCHECK;
/* Lowest parseable member version, or -1 when none is. */
int64_t pgkeel_cluster_min_version(const struct pgkeel_cluster *c);
/*
 * Does `name` appear in the sync state (the standbys, and with
 * include_leader also its leader)?  Case-insensitive (ASCII letters), as
 * Patroni >= 3.0.3 does; 3.0.2 compared case-sensitively.  The project keeps
 * 3.0.2's wire formats but follows the newest fix on HA safety rules: a
 * member whose name differs only in case from the recorded standby must
 * still be recognised as the synchronous one.  NULL name or empty state:
 * false.
 */
bool pgkeel_sync_matches(const struct pgkeel_sync *s, const char *name, bool include_leader);
/* A real request: a leader or a candidate is named (Patroni's len(failover)). */
bool pgkeel_failover_is_request(const struct pgkeel_failover *f);
/* The failsafe entry of that member, or NULL. */
const struct pgkeel_failsafe_entry *pgkeel_failsafe_get(const struct pgkeel_failsafe *fs,
                                                        const char *name);
/* Python truthiness of tags[tag] (nofailover, nosync, clonefrom, noloadbalance). */
bool pgkeel_member_tag_truthy(const struct pgkeel_member_data *d, const char *tag);
/* tags[tag] when it is a string (replicatefrom), else NULL. */
const char *pgkeel_member_tag_string(const struct pgkeel_member_data *d, const char *tag);

/* ---- encoders for the values the core writes (all malloc'd; cluster_encode.c) ---- */

/* members/<name>: conn_url, api_url, state, role, version, then optional fields. */
char *pgkeel_member_data_encode(const struct pgkeel_member_data *d);
/*
 * The tags a member publishes, from the configured `tags:` object (NULL =
 * none): clonefrom, nofailover, noloadbalance and nosync are dropped unless
 * truthy (3.0.2 Patroni.get_tags), then nosync=true is set while the node
 * asks to be released as synchronous standby (Ha.get_effective_tags).  Key
 * order as configured.  A new object the caller puts; empty when no tag
 * remains (the encoder then leaves "tags" out).
 */
struct json_object *pgkeel_member_tags_effective(const struct json_object *configured,
                                                 bool disable_sync);
/* failover: {"leader","member","scheduled_at"}, NULL/empty omitted; {} clears. */
char *pgkeel_failover_encode(const char *leader, const char *candidate, const char *scheduled_at);
/* sync: {"leader":L,"sync_standby":"a,b"} with the names sorted, null when none. */
char *pgkeel_sync_encode(const char *leader, const char *const *standbys, size_t n_standbys);
/* status: {"optime":N} plus "slots":{...} when slots is a non-empty object. */
char *pgkeel_status_encode(int64_t optime, const struct json_object *slots);
/* failsafe: {"name":"api_url",...} in the given order (null for a NULL url). */
char *pgkeel_failsafe_encode(const struct pgkeel_failsafe_entry *entries, size_t n);
/*
 * history: [[tl,lsn,"reason"(,"timestamp"(,"new_leader"))],...]; invalid
 * lines are left out.  A line carries its timestamp when it has one or a
 * new_leader (null fills a missing timestamp then).
 */
char *pgkeel_history_encode(const struct pgkeel_history_line *lines, size_t n);

#endif
