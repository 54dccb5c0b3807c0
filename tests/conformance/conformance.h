/*
 * The DCS conformance suite: the harness (dcs_conformance.c) and the
 * scenarios (scenarios.c) that use it.
 *
 * The harness loads one backend through the core loader, opens handles with
 * plugin->init and wraps every op: each gets an absolute deadline on the
 * host's monotonic clock and must return by it (plus CONF_LATE_MS) with a
 * real status, a NUL-terminated pgkeel_err and a sane lease.  load_cluster
 * results are copied raw (for byte-identical checks) and fed into the core's
 * cluster builder, as the daemon does.
 *
 * Reporting: conf_pass() and conf_note() print one "ok"/"note" line; the
 * first conf_fail() prints "FAIL", finishes every open handle (joining
 * backend threads) and exits 1.  Everything runs on the main thread except
 * the race scenario's two acquiring threads, which call the plugin directly.
 */
#ifndef PGKEEL_CONFORMANCE_H
#define PGKEEL_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/dcs.h>

#include "cluster.h"

#define CONF_MAX_HANDLES       16
#define CONF_POLL_MS           100  /* condition polls */
#define CONF_LATE_MS           500  /* how late past its deadline an op may return */
#define CONF_OP_TIMEOUT_MS     5000 /* the deadline of an ordinary op */
#define CONF_OUTAGE_TIMEOUT_MS 2000
#define CONF_WAKE_MS           2000 /* a watch must wake the host within this */
#define CONF_QUIET_MS          1000 /* ... and stay quiet this long when nothing changes */
#define CONF_RACE_ROUNDS       3
#define CONF_SHOW_MAX          120 /* bytes of a value shown in a message */

/* A set of statuses an op may return: ST(PGKEEL_DCS_OK) | ST(PGKEEL_DCS_CONFLICT). */
#define ST(s) (1u << (s))

#define CONF_NORETURN __attribute__((noreturn))

struct conf_opts {
	const char *backend_dir;
	const char *backend;
	const char *options;
	const char *namespace_;
	const char *scope;
	const char *scenario;
	int ttl;
	int loop_wait;
	int retry_timeout;
	int64_t slack_ms;
};

struct conf_handle {
	struct pgkeel_dcs *dcs;
	char name[64];   /* member name, "" on a ctl handle */
	char label[160]; /* for messages: name or "ctl", and scope/namespace if not the default */
};

/* One entry as load_cluster handed it over, copied. */
struct conf_entry {
	char *key;
	char *value; /* NUL-terminated copy; value_len is authoritative */
	size_t value_len;
	char *version; /* NULL when the backend gave none */
	char *owner;
};

/* What one load_cluster returned: the raw entries and the parsed snapshot. */
struct conf_view {
	struct conf_entry *e;
	size_t n;
	size_t cap;
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c;
	char problem[512]; /* the first ABI violation seen in the callback */
};

/* An op in flight: when it started and its deadline. */
struct conf_call {
	int64_t start;
	int64_t deadline;
};

/* The op last called through the wrappers (main thread only). */
struct conf_last_op {
	char what[256];
	int64_t elapsed_ms;
};

struct conf_scenario {
	const char *name;
	void (*run)(void);
	const char *what;
};

extern struct conf_opts conf_opt;
extern const struct pgkeel_dcs_plugin *conf_plugin;
extern const struct pgkeel_host *conf_host;
extern int64_t conf_op_timeout_ms; /* the deadline the wrappers give an op */
extern struct conf_last_op conf_last_op;

/* scenarios.c */
extern const struct conf_scenario conf_scenarios[];
extern const size_t conf_n_scenarios;

/* ---- reporting ---- */
void conf_pass(const char *fmt, ...) PGKEEL_PRINTF(1, 2);
void conf_note(const char *fmt, ...) PGKEEL_PRINTF(1, 2);
void conf_fail(const char *fmt, ...) PGKEEL_PRINTF(1, 2) CONF_NORETURN;
const char *conf_status_name(int s);
void conf_err_text(const struct pgkeel_err *err, char *buf, size_t len);
/* A value for a message: printable ASCII as is, the rest escaped, cut. */
void conf_show(const char *p, size_t len, char *buf, size_t buflen);
/* The status must be in `want`; prints the op, its time and the detail either way. */
void conf_expect(enum pgkeel_dcs_status got, unsigned want, const struct pgkeel_err *err,
                 const char *why);

/* ---- time ---- */
int64_t conf_now_ms(void);
int64_t conf_min64(int64_t a, int64_t b);
/* Pace a loop (renewals every loop_wait): not a stand-in for a condition. */
void conf_sleep_until(int64_t t);
/* Poll fd until readable or the deadline; true if readable. */
bool conf_wait_readable(int fd, int64_t deadline);

/* ---- handles ---- */
struct conf_handle *conf_handle_open_in(const char *name, uint32_t flags, const char *ns,
                                        const char *scope);
/* A member handle `name`, or a ctl handle for NULL, in the default namespace and scope. */
struct conf_handle *conf_handle_open(const char *name);
void conf_handle_close(struct conf_handle *h);
void conf_close_all(void);

/* ---- ops (the wrappers time them and check the basic contract) ---- */
void conf_op_begin(struct conf_call *c, struct pgkeel_err *err, const struct conf_handle *h,
                   const char *fmt, ...) PGKEEL_PRINTF(4, 5);
enum pgkeel_dcs_status conf_op_end(const struct conf_call *c, enum pgkeel_dcs_status s,
                                   const struct pgkeel_err *err);
void conf_lease_init(struct pgkeel_dcs_lease *l);
void conf_lease_check(const struct pgkeel_dcs_lease *l);

enum pgkeel_dcs_status conf_acquire(struct conf_handle *h, struct pgkeel_dcs_lease *l,
                                    struct pgkeel_err *err);
enum pgkeel_dcs_status conf_update(struct conf_handle *h, const char *leader_version,
                                   int64_t last_lsn, const char *status_json,
                                   const char *failsafe_json, struct pgkeel_dcs_lease *l,
                                   struct pgkeel_err *err);
enum pgkeel_dcs_status conf_take(struct conf_handle *h, struct pgkeel_dcs_lease *l,
                                 struct pgkeel_err *err);
enum pgkeel_dcs_status conf_delete_leader(struct conf_handle *h, const char *version,
                                          struct pgkeel_err *err);
enum pgkeel_dcs_status conf_touch(struct conf_handle *h, const char *json, struct pgkeel_err *err);
enum pgkeel_dcs_status conf_initialize(struct conf_handle *h, bool create_new, const char *sysid,
                                       struct pgkeel_err *err);
enum pgkeel_dcs_status conf_cancel_init(struct conf_handle *h, struct pgkeel_err *err);

/* The CAS keys, one writer for all three (new_version only for sync). */
enum conf_cas_kind { CAS_CONFIG, CAS_FAILOVER, CAS_SYNC };
extern const char *const conf_cas_key[];
enum pgkeel_dcs_status conf_cas_write(struct conf_handle *h, enum conf_cas_kind k, const char *json,
                                      const char *expect, char *newv, size_t newv_len,
                                      struct pgkeel_err *err);
enum pgkeel_dcs_status conf_delete_sync(struct conf_handle *h, const char *expect,
                                        struct pgkeel_err *err);

/* The plain writes (no lease, no CAS). */
enum conf_plain_kind { PLAIN_STATUS, PLAIN_HISTORY, PLAIN_FAILSAFE };
extern const char *const conf_plain_key[];
enum pgkeel_dcs_status conf_plain(struct conf_handle *h, enum conf_plain_kind k, const char *json,
                                  struct pgkeel_err *err);
enum pgkeel_dcs_status conf_delete_cluster(struct conf_handle *h, struct pgkeel_err *err);
/* watch (is_watch) or set_ttl: no deadline, they must return at once. */
enum pgkeel_dcs_status conf_nonblocking(struct conf_handle *h, bool is_watch,
                                        const char *leader_version, int ttl,
                                        struct pgkeel_err *err);

/* ---- load_cluster into a view ---- */
/* load_cluster; the view is filled (and must be freed) whatever the status. */
enum pgkeel_dcs_status conf_view_try_load(struct conf_handle *h, struct conf_view *v,
                                          struct pgkeel_err *err);
/* load_cluster, which must succeed; quiet (the checks on the view speak). */
void conf_view_load(struct conf_handle *h, struct conf_view *v);
void conf_view_free(struct conf_view *v);
const struct conf_entry *conf_view_get(const struct conf_view *v, const char *key);
/* The version of `key`, copied; fails when the key or its version is missing. */
char *conf_view_version(const struct conf_view *v, const char *key);
/* The lock holder, NULL when unlocked. */
const char *conf_view_leader(const struct conf_view *v);
/* The value of `key` is byte-identical to `want` (NULL: the key is absent). */
void conf_expect_value(const struct conf_view *v, const char *key, const char *want,
                       const char *why);
/* The lock holder is `name` (NULL: unlocked). */
void conf_expect_leader(const struct conf_view *v, const char *name, const char *why);

#endif
