/*
 * dcs_etcd3: the etcd v3 backend, over etcd's JSON gateway.
 *
 * Layout and semantics as Patroni's etcd3 backend (spec/patroni-dcs-and-ha.md
 * §4.1): everything under <namespace>/<scope>/; one lease per member shared
 * by `leader` and `members/<name>`; `initialize` created in a txn; config,
 * failover and sync written with a compare on mod_revision.  The leader
 * refresh follows Patroni 3.0.3 and later (3.0.2 overwrote the key
 * unconditionally when its lease differed): it never takes another member's
 * key.
 *
 * Reads are linearizable (served through the raft leader), so a member cut
 * off from the quorum answers "no leader" or times out instead of serving a
 * stale view.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd3.h"

#define E3_VERSION PACKAGE_VERSION

struct pgkeel_dcs {
	struct dcsc_handle c; /* host, ctl, timings */
	struct e3_http http;
	char *prefix;   /* "/service/batman/" */
	char *name;     /* NULL on a ctl handle */

	int64_t lease;  /* 0 = none */
	int64_t lease_ttl;
	int64_t lease_refreshed_ms;

	/* what the last load (or our own writes) showed */
	bool have_leader;
	char *leader_value;
	int64_t leader_lease;
	bool have_member;
	char *member_value;
	int64_t member_lease;
	int64_t revision;

	struct e3_watch *watch;
};

/* ------------------------------------------------------------------ helpers */

static char *key_of(struct pgkeel_dcs *d, const char *rel)
{
	char *k = NULL;

	if (asprintf(&k, "%s%s", d->prefix, rel) < 0)
		abort();
	return k;
}

static int64_t now_ms(struct pgkeel_dcs *d)
{
	return d->c.host->now_monotonic_ms(d->c.host->ctx);
}

static enum pgkeel_dcs_status ctl_refused(struct pgkeel_dcs *d, const char *op,
                                          struct pgkeel_err *err)
{
	(void)d;
	dcsc_set_err(err, PGKEEL_DCS_D_NONE, "etcd3: %s is not allowed on a read-only ctl handle",
	             op);
	return PGKEEL_DCS_INVALID;
}

/* One RPC; on OK *resp is the body (freed by the caller). */
static enum pgkeel_dcs_status call(struct pgkeel_dcs *d, const char *rpc, char *body,
                                   int64_t deadline_ms, char **resp, size_t *len,
                                   struct e3_result *res, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status st;

	st = e3_call(&d->http, rpc, body, deadline_ms, resp, len, res, err);
	free(body);
	return st;
}

static enum pgkeel_dcs_status protocol_error(struct pgkeel_err *err, const char *rpc,
                                             const char *why)
{
	dcsc_set_err(err, PGKEEL_DCS_D_PROTOCOL, "etcd3: unexpected answer to %s: %s", rpc, why);
	return PGKEEL_DCS_UNAVAILABLE;
}

/* ------------------------------------------------------------------ lease */

static void lease_report(struct pgkeel_dcs *d, struct pgkeel_dcs_lease *out)
{
	if (out == NULL || out->struct_size < sizeof(*out))
		return;
	out->granted_ttl_ms = d->lease_ttl * 1000;
	(void)snprintf(out->owner, sizeof(out->owner), "%" PRId64, d->lease);
}

static enum pgkeel_dcs_status lease_grant(struct pgkeel_dcs *d, int64_t deadline_ms,
                                          struct pgkeel_err *err)
{
	struct e3_result res;
	char *resp, perr[128];
	size_t len;
	int64_t id, ttl;
	int64_t sent = now_ms(d);
	enum pgkeel_dcs_status st = call(d, "/lease/grant", e3_req_lease_grant(d->c.ttl),
	                                 deadline_ms, &resp, &len, &res, err);

	if (st != PGKEEL_DCS_OK)
		return st;
	if (!e3_parse_lease_grant(resp, len, &id, &ttl, perr, sizeof(perr)) || id == 0) {
		free(resp);
		return protocol_error(err, "lease/grant", perr);
	}
	free(resp);
	d->lease = id;
	d->lease_ttl = ttl;
	d->lease_refreshed_ms = sent;
	if (ttl < d->c.ttl)
		d->c.host->log(d->c.host->ctx, PGKEEL_LOG_WARNING,
		               "etcd3: asked for a %d s lease, etcd granted %" PRId64 " s",
		               d->c.ttl, ttl);
	return PGKEEL_DCS_OK;
}

/*
 * Make sure this member holds a live lease: keep the current one alive when
 * `force` or when the last refresh is older than loop_wait, grant a new one
 * when there is none or etcd forgot it.
 */
static enum pgkeel_dcs_status ensure_lease(struct pgkeel_dcs *d, bool force, int64_t deadline_ms,
                                           struct pgkeel_err *err)
{
	struct e3_result res;
	char *resp, perr[128];
	size_t len;
	int64_t ttl, sent;
	enum pgkeel_dcs_status st;

	if (d->lease != 0 && !force &&
	    now_ms(d) - d->lease_refreshed_ms < (int64_t)d->c.loop_wait * 1000)
		return PGKEEL_DCS_OK;
	if (d->lease == 0)
		return lease_grant(d, deadline_ms, err);
	sent = now_ms(d);
	st = call(d, "/lease/keepalive", e3_req_lease_keepalive(d->lease), deadline_ms, &resp, &len,
	          &res, err);
	if (st != PGKEEL_DCS_OK) {
		if (!res.lease_not_found)
			return st;
		ttl = 0;
	} else {
		bool ok = e3_parse_lease_keepalive(resp, len, &ttl, perr, sizeof(perr));

		free(resp);
		if (!ok)
			return protocol_error(err, "lease/keepalive", perr);
	}
	if (ttl <= 0) {
		d->c.host->log(d->c.host->ctx, PGKEEL_LOG_WARNING,
		               "etcd3: lease %" PRId64 " has expired; asking for a new one",
		               d->lease);
		d->lease = 0;
		return lease_grant(d, deadline_ms, err);
	}
	d->lease_ttl = ttl;
	d->lease_refreshed_ms = sent;
	return PGKEEL_DCS_OK;
}

/* ------------------------------------------------------------------ writes */

/* put; `lease` 0 = none.  Retries once with a new lease if etcd forgot ours. */
static enum pgkeel_dcs_status put_key(struct pgkeel_dcs *d, const char *rel, const char *value,
                                      bool with_lease, int64_t deadline_ms, int64_t *revision,
                                      struct pgkeel_err *err)
{
	char *key = key_of(d, rel), *resp, perr[128];
	size_t len;
	struct e3_result res;
	enum pgkeel_dcs_status st;
	int64_t rev = 0;

	for (int attempt = 0;; attempt++) {
		st = call(d, "/kv/put",
		          e3_req_put(key, value, strlen(value), with_lease ? d->lease : 0), deadline_ms,
		          &resp, &len, &res, err);
		if (st == PGKEEL_DCS_OK || !res.lease_not_found || attempt > 0)
			break;
		d->lease = 0;
		st = ensure_lease(d, true, deadline_ms, err);
		if (st != PGKEEL_DCS_OK)
			break;
	}
	free(key);
	if (st != PGKEEL_DCS_OK)
		return st;
	if (!e3_parse_revision(resp, len, &rev, perr, sizeof(perr))) {
		free(resp);
		return protocol_error(err, "kv/put", perr);
	}
	free(resp);
	if (revision != NULL)
		*revision = rev;
	return PGKEEL_DCS_OK;
}

/*
 * A txn: *succeeded tells whether the compare held (false = CONFLICT for the
 * caller).  *lease_gone (optional) is set when etcd no longer knows our lease.
 */
static enum pgkeel_dcs_status txn_ex(struct pgkeel_dcs *d, char *body, int64_t deadline_ms,
                                     bool *succeeded, bool *nested, int64_t *revision,
                                     bool *lease_gone, struct pgkeel_err *err)
{
	struct e3_result res;
	char *resp, perr[128];
	size_t len;
	bool ok, n = false;
	int64_t rev = 0;
	enum pgkeel_dcs_status st = call(d, "/kv/txn", body, deadline_ms, &resp, &len, &res, err);

	if (lease_gone != NULL)
		*lease_gone = st != PGKEEL_DCS_OK && res.lease_not_found;
	if (st != PGKEEL_DCS_OK)
		return st;
	ok = e3_parse_txn(resp, len, succeeded, &n, &rev, perr, sizeof(perr));
	free(resp);
	if (!ok)
		return protocol_error(err, "kv/txn", perr);
	if (nested != NULL)
		*nested = n;
	if (revision != NULL)
		*revision = rev;
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status txn(struct pgkeel_dcs *d, char *body, int64_t deadline_ms,
                                  bool *succeeded, bool *nested, int64_t *revision,
                                  struct pgkeel_err *err)
{
	return txn_ex(d, body, deadline_ms, succeeded, nested, revision, NULL, err);
}

/*
 * The leader-key txns, bound to our lease: create-if-absent (acquire) or
 * Patroni >= 3.0.3's rebind.  When etcd no longer knows the lease (it
 * expired), grant a new one and try once more.
 */
static enum pgkeel_dcs_status leader_txn(struct pgkeel_dcs *d, bool rebind, int64_t deadline_ms,
                                         bool *succeeded, bool *nested, struct pgkeel_err *err)
{
	char *key = key_of(d, "leader");
	enum pgkeel_dcs_status st;

	for (int attempt = 0;; attempt++) {
		bool lease_gone = false;
		char *body = rebind ? e3_req_txn_leader_rebind(key, d->name, d->lease)
		                    : e3_req_txn_create(key, d->name, strlen(d->name), d->lease);

		st = txn_ex(d, body, deadline_ms, succeeded, nested, NULL, &lease_gone, err);
		if (!lease_gone || attempt > 0)
			break;
		d->lease = 0;
		st = ensure_lease(d, true, deadline_ms, err);
		if (st != PGKEEL_DCS_OK)
			break;
	}
	free(key);
	return st;
}

static enum pgkeel_dcs_status delete_range(struct pgkeel_dcs *d, const char *key,
                                           const char *range_end, int64_t deadline_ms,
                                           struct pgkeel_err *err)
{
	struct e3_result res;
	char *resp;
	size_t len;
	enum pgkeel_dcs_status st = call(d, "/kv/deleterange", e3_req_deleterange(key, range_end),
	                                 deadline_ms, &resp, &len, &res, err);

	if (st == PGKEEL_DCS_OK)
		free(resp);
	return st;
}

static bool parse_version(const char *v, int64_t *out)
{
	char *end;
	long long x;

	if (v == NULL || *v == '\0')
		return false;
	x = strtoll(v, &end, 10);
	if (*end != '\0' || x < 0)
		return false;
	*out = x;
	return true;
}

/* CAS on mod_revision (NULL = unconditional put). */
static enum pgkeel_dcs_status cas_put(struct pgkeel_dcs *d, const char *rel, const char *value,
                                      const char *expect, int64_t deadline_ms, int64_t *revision,
                                      struct pgkeel_err *err)
{
	int64_t ver;
	char *key;
	bool succeeded = false;
	enum pgkeel_dcs_status st;

	if (expect == NULL)
		return put_key(d, rel, value, false, deadline_ms, revision, err);
	if (!parse_version(expect, &ver)) {
		dcsc_set_err(err, PGKEEL_DCS_D_VERSION, "etcd3: '%s' is not a mod_revision",
		             expect);
		return PGKEEL_DCS_INVALID;
	}
	key = key_of(d, rel);
	st = txn(d, e3_req_txn_mod_put(key, value, strlen(value), ver), deadline_ms, &succeeded,
	         NULL, revision, err);
	free(key);
	if (st == PGKEEL_DCS_OK && !succeeded) {
		dcsc_set_err(err, PGKEEL_DCS_D_VERSION, "etcd3: %s changed since version %s", rel,
		             expect);
		return PGKEEL_DCS_CONFLICT;
	}
	return st;
}

/* ------------------------------------------------------------------ ops */

static enum pgkeel_dcs_status e3_init(const struct pgkeel_host *host,
                                      const struct pgkeel_dcs_params *params,
                                      struct pgkeel_dcs **out, struct pgkeel_err *err)
{
	struct dcsc_handle c;
	struct pgkeel_dcs *d;

	*out = NULL;
	if (dcsc_handle_init(&c, "etcd3", host, params, false, err) != PGKEEL_DCS_OK)
		return PGKEEL_DCS_INVALID;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return PGKEEL_DCS_NOMEM;
	d->c = c;
	d->name = params->name ? strdup(params->name) : NULL;
	/* <namespace>/<scope>/ with single slashes, as Patroni's base path */
	{
		size_t nl = strlen(params->namespace_);
		bool slash = nl > 0 && params->namespace_[nl - 1] == '/';

		if (asprintf(&d->prefix, "%s%s%s/", params->namespace_, slash ? "" : "/",
		             params->scope) < 0)
			abort();
	}
	if (!e3_http_init(&d->http, host, params->options_json, params->user_agent, d->c.ttl,
	                  d->c.loop_wait, d->c.retry_timeout, err)) {
		free(d->prefix);
		free(d->name);
		e3_http_fini(&d->http);
		free(d);
		return PGKEEL_DCS_INVALID;
	}
	*out = d;
	return PGKEEL_DCS_OK;
}

static void e3_fini(struct pgkeel_dcs *d)
{
	if (d == NULL)
		return;
	e3_watch_stop(d->watch);
	e3_http_fini(&d->http);
	free(d->prefix);
	free(d->name);
	free(d->leader_value);
	free(d->member_value);
	free(d);
}

struct load_ctx {
	struct pgkeel_dcs *d;
	pgkeel_dcs_entry_cb cb;
	void *arg;
	int64_t max_mod;
	bool stopped;
};

static int load_kv(void *arg, const struct e3_kv *kv)
{
	struct load_ctx *x = arg;
	struct pgkeel_dcs *d = x->d;
	size_t pl = strlen(d->prefix);
	char version[24], owner[24];
	struct pgkeel_dcs_entry e;
	int rc;

	if (strncmp(kv->key, d->prefix, pl) != 0 || kv->key[pl] == '\0')
		return 0;
	(void)snprintf(version, sizeof(version), "%" PRId64, kv->mod_revision);
	(void)snprintf(owner, sizeof(owner), "%" PRId64, kv->lease);
	e.key = kv->key + pl;
	e.value = kv->value;
	e.value_len = kv->value_len;
	e.version = version;
	e.modify_version = NULL;
	e.owner = kv->lease != 0 ? owner : NULL;
	if (kv->mod_revision > x->max_mod)
		x->max_mod = kv->mod_revision;
	if (strcmp(e.key, "leader") == 0) {
		d->have_leader = true;
		dcsc_set_str(&d->leader_value, kv->value);
		d->leader_lease = kv->lease;
	} else if (d->name != NULL && strncmp(e.key, "members/", 8) == 0 &&
	           strcmp(e.key + 8, d->name) == 0) {
		d->have_member = true;
		dcsc_set_str(&d->member_value, kv->value);
		d->member_lease = kv->lease;
	}
	rc = x->cb(x->arg, &e);
	if (rc != 0)
		x->stopped = true;
	return rc;
}

static enum pgkeel_dcs_status e3_load_cluster(struct pgkeel_dcs *d, int64_t deadline_ms,
                                              pgkeel_dcs_entry_cb cb, void *arg,
                                              struct pgkeel_err *err)
{
	struct load_ctx x = {.d = d, .cb = cb, .arg = arg};
	struct e3_result res;
	char *end = e3_prefix_end(d->prefix), *resp, perr[128];
	size_t len;
	int64_t revision = 0;
	enum pgkeel_dcs_status st;
	bool ok;

	st = call(d, "/kv/range", e3_req_range(d->prefix, end, false), deadline_ms, &resp, &len,
	          &res, err);
	free(end);
	if (st != PGKEEL_DCS_OK)
		return st;
	d->have_leader = false;
	d->have_member = false;
	ok = e3_parse_range(resp, len, load_kv, &x, &revision, perr, sizeof(perr));
	free(resp);
	if (x.stopped) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "etcd3: the host stopped reading the cluster");
		return PGKEEL_DCS_NOMEM;
	}
	if (!ok)
		return protocol_error(err, "kv/range", perr);
	d->revision = revision;
	if (d->watch != NULL)
		e3_watch_expect(d->watch, x.max_mod);
	return PGKEEL_DCS_OK;
}

static void remember_leader(struct pgkeel_dcs *d)
{
	d->have_leader = true;
	dcsc_set_str(&d->leader_value, d->name);
	d->leader_lease = d->lease;
}

static enum pgkeel_dcs_status e3_acquire(struct pgkeel_dcs *d, int64_t deadline_ms,
                                         struct pgkeel_dcs_lease *lease, struct pgkeel_err *err)
{
	bool succeeded = false;
	enum pgkeel_dcs_status st;

	if (d->c.ctl)
		return ctl_refused(d, "attempt_to_acquire_leader", err);
	st = ensure_lease(d, false, deadline_ms, err);
	if (st != PGKEEL_DCS_OK)
		return st;
	st = leader_txn(d, false, deadline_ms, &succeeded, NULL, err);
	if (st != PGKEEL_DCS_OK)
		return st;
	if (!succeeded) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
		             "etcd3: the leader key is held by another member");
		return PGKEEL_DCS_CONFLICT;
	}
	remember_leader(d);
	lease_report(d, lease);
	return PGKEEL_DCS_OK;
}

static void write_side_key(struct pgkeel_dcs *d, const char *rel, const char *json,
                           int64_t deadline_ms)
{
	struct pgkeel_err e = {0};

	if (json != NULL && put_key(d, rel, json, false, deadline_ms, NULL, &e) != PGKEEL_DCS_OK)
		d->c.host->log(d->c.host->ctx, PGKEEL_LOG_WARNING, "etcd3: could not write %s: %s",
		               rel, e.msg);
}

static enum pgkeel_dcs_status e3_update_leader(struct pgkeel_dcs *d,
                                               const struct pgkeel_dcs_leader_update *u,
                                               int64_t deadline_ms,
                                               struct pgkeel_dcs_lease *lease,
                                               struct pgkeel_err *err)
{
	enum pgkeel_dcs_status st;

	if (d->c.ctl)
		return ctl_refused(d, "update_leader", err);
	st = ensure_lease(d, true, deadline_ms, err);
	if (st != PGKEEL_DCS_OK)
		return st;
	if (!d->have_leader || d->leader_value == NULL || strcmp(d->leader_value, d->name) != 0 ||
	    d->leader_lease != d->lease) {
		/* rebind to our current lease, but only a key that is ours or absent */
		bool succeeded = false, nested = false;

		st = leader_txn(d, true, deadline_ms, &succeeded, &nested, err);
		if (st != PGKEEL_DCS_OK)
			return st;
		if (!succeeded && !nested) {
			d->have_leader = false;
			dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
			             "etcd3: the leader key is held by another member");
			return PGKEEL_DCS_CONFLICT;
		}
		remember_leader(d);
	}
	if (u != NULL && u->struct_size >= sizeof(*u)) {
		write_side_key(d, "status", u->status_json, deadline_ms);
		write_side_key(d, "failsafe", u->failsafe_json, deadline_ms);
	}
	lease_report(d, lease);
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status e3_take_leader(struct pgkeel_dcs *d, int64_t deadline_ms,
                                             struct pgkeel_dcs_lease *lease,
                                             struct pgkeel_err *err)
{
	enum pgkeel_dcs_status st;

	if (d->c.ctl)
		return ctl_refused(d, "take_leader", err);
	st = ensure_lease(d, false, deadline_ms, err);
	if (st == PGKEEL_DCS_OK)
		st = put_key(d, "leader", d->name, true, deadline_ms, NULL, err);
	if (st != PGKEEL_DCS_OK)
		return st;
	remember_leader(d);
	lease_report(d, lease);
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status e3_delete_leader(struct pgkeel_dcs *d, const char *leader_version,
                                               int64_t deadline_ms, struct pgkeel_err *err)
{
	char *key;
	bool succeeded = false;
	enum pgkeel_dcs_status st;

	(void)leader_version;
	if (d->c.ctl)
		return ctl_refused(d, "delete_leader", err);
	key = key_of(d, "leader");
	st = txn(d, e3_req_txn_value_delete(key, d->name), deadline_ms, &succeeded, NULL, NULL,
	         err);
	free(key);
	if (st != PGKEEL_DCS_OK)
		return st;
	d->have_leader = false;
	if (!succeeded) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS, "etcd3: the leader key is not ours");
		return PGKEEL_DCS_CONFLICT;
	}
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status e3_touch_member(struct pgkeel_dcs *d, const char *json,
                                              int64_t deadline_ms, struct pgkeel_err *err)
{
	char *rel;
	enum pgkeel_dcs_status st;

	if (d->c.ctl)
		return ctl_refused(d, "touch_member", err);
	st = ensure_lease(d, false, deadline_ms, err);
	if (st != PGKEEL_DCS_OK)
		return st;
	if (d->have_member && d->member_value != NULL && strcmp(d->member_value, json) == 0 &&
	    d->member_lease == d->lease)
		return PGKEEL_DCS_OK;
	if (asprintf(&rel, "members/%s", d->name) < 0)
		abort();
	st = put_key(d, rel, json, true, deadline_ms, NULL, err);
	free(rel);
	if (st == PGKEEL_DCS_OK) {
		d->have_member = true;
		dcsc_set_str(&d->member_value, json);
		d->member_lease = d->lease;
	}
	return st;
}

static enum pgkeel_dcs_status e3_initialize(struct pgkeel_dcs *d, bool create_new,
                                            const char *sysid, int64_t deadline_ms,
                                            struct pgkeel_err *err)
{
	char *key;
	bool succeeded = false;
	enum pgkeel_dcs_status st;

	if (!create_new)
		return put_key(d, "initialize", sysid, false, deadline_ms, NULL, err);
	key = key_of(d, "initialize");
	st = txn(d, e3_req_txn_create(key, sysid, strlen(sysid), 0), deadline_ms, &succeeded, NULL,
	         NULL, err);
	free(key);
	if (st == PGKEEL_DCS_OK && !succeeded) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS, "etcd3: the cluster is already initialized");
		return PGKEEL_DCS_CONFLICT;
	}
	return st;
}

static enum pgkeel_dcs_status e3_cancel_initialization(struct pgkeel_dcs *d, int64_t deadline_ms,
                                                       struct pgkeel_err *err)
{
	char *key = key_of(d, "initialize");
	enum pgkeel_dcs_status st = delete_range(d, key, NULL, deadline_ms, err);

	free(key);
	return st;
}

static enum pgkeel_dcs_status e3_set_config(struct pgkeel_dcs *d, const char *json,
                                            const char *expect_version, int64_t deadline_ms,
                                            struct pgkeel_err *err)
{
	return cas_put(d, "config", json, expect_version, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_set_failover(struct pgkeel_dcs *d, const char *json,
                                              const char *expect_version, int64_t deadline_ms,
                                              struct pgkeel_err *err)
{
	return cas_put(d, "failover", json, expect_version, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_write_sync_state(struct pgkeel_dcs *d, const char *json,
                                                  const char *expect_version, char *new_version,
                                                  size_t new_version_len, int64_t deadline_ms,
                                                  struct pgkeel_err *err)
{
	int64_t rev = 0;
	enum pgkeel_dcs_status st = cas_put(d, "sync", json, expect_version, deadline_ms, &rev, err);

	if (st == PGKEEL_DCS_OK && new_version != NULL && new_version_len > 0)
		(void)snprintf(new_version, new_version_len, "%" PRId64, rev);
	return st;
}

static enum pgkeel_dcs_status e3_delete_sync_state(struct pgkeel_dcs *d,
                                                   const char *expect_version,
                                                   int64_t deadline_ms, struct pgkeel_err *err)
{
	char *key = key_of(d, "sync");
	int64_t ver;
	bool succeeded = false;
	enum pgkeel_dcs_status st;

	if (expect_version == NULL) {
		st = delete_range(d, key, NULL, deadline_ms, err);
	} else if (!parse_version(expect_version, &ver)) {
		dcsc_set_err(err, PGKEEL_DCS_D_VERSION, "etcd3: '%s' is not a mod_revision",
		             expect_version);
		st = PGKEEL_DCS_INVALID;
	} else {
		st = txn(d, e3_req_txn_mod_delete(key, ver), deadline_ms, &succeeded, NULL, NULL, err);
		if (st == PGKEEL_DCS_OK && !succeeded) {
			dcsc_set_err(err, PGKEEL_DCS_D_VERSION,
			             "etcd3: sync changed since version %s", expect_version);
			st = PGKEEL_DCS_CONFLICT;
		}
	}
	free(key);
	return st;
}

static enum pgkeel_dcs_status e3_set_history(struct pgkeel_dcs *d, const char *json,
                                             int64_t deadline_ms, struct pgkeel_err *err)
{
	return put_key(d, "history", json, false, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_write_status(struct pgkeel_dcs *d, const char *json,
                                              int64_t deadline_ms, struct pgkeel_err *err)
{
	return put_key(d, "status", json, false, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_write_failsafe(struct pgkeel_dcs *d, const char *json,
                                                int64_t deadline_ms, struct pgkeel_err *err)
{
	return put_key(d, "failsafe", json, false, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_write_leader_optime(struct pgkeel_dcs *d, int64_t lsn,
                                                     int64_t deadline_ms, struct pgkeel_err *err)
{
	char v[24];

	(void)snprintf(v, sizeof(v), "%" PRId64, lsn);
	return put_key(d, "optime/leader", v, false, deadline_ms, NULL, err);
}

static enum pgkeel_dcs_status e3_delete_cluster(struct pgkeel_dcs *d, int64_t deadline_ms,
                                                struct pgkeel_err *err)
{
	char *end = e3_prefix_end(d->prefix);
	enum pgkeel_dcs_status st = delete_range(d, d->prefix, end, deadline_ms, err);

	free(end);
	return st;
}

static enum pgkeel_dcs_status e3_set_ttl(struct pgkeel_dcs *d, int ttl, int loop_wait,
                                         int retry_timeout, struct pgkeel_err *err)
{
	int old_ttl = d->c.ttl;

	if (dcsc_handle_set_timing(&d->c, "etcd3", ttl, loop_wait, retry_timeout, err) !=
	    PGKEEL_DCS_OK)
		return PGKEEL_DCS_INVALID;
	if (ttl != old_ttl) {
		/* the TTL is baked into the lease: the next refresh grants a new one and
		 * update_leader rebinds the leader key to it */
		d->lease = 0;
		d->have_member = false;
	}
	e3_http_set_timing(&d->http, ttl, loop_wait, retry_timeout);
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status e3_watch(struct pgkeel_dcs *d, const char *leader_version,
                                       struct pgkeel_err *err)
{
	(void)leader_version;
	if (d->c.ctl)
		return ctl_refused(d, "watch", err);
	if (d->watch == NULL) {
		d->watch = e3_watch_start(&d->http, d->prefix, d->revision + 1);
		if (d->watch == NULL) {
			dcsc_set_err(err, PGKEEL_DCS_D_NONE,
			             "etcd3: could not start the watch thread");
			return PGKEEL_DCS_NOMEM;
		}
	}
	return PGKEEL_DCS_OK;
}

static const struct pgkeel_dcs_plugin etcd3_plugin = {
	.abi_version = PGKEEL_DCS_ABI_VERSION,
	.struct_size = sizeof(struct pgkeel_dcs_plugin),
	.name = "etcd3",
	.version = E3_VERSION,
	.init = e3_init,
	.fini = e3_fini,
	.load_cluster = e3_load_cluster,
	.attempt_to_acquire_leader = e3_acquire,
	.update_leader = e3_update_leader,
	.take_leader = e3_take_leader,
	.delete_leader = e3_delete_leader,
	.touch_member = e3_touch_member,
	.initialize = e3_initialize,
	.cancel_initialization = e3_cancel_initialization,
	.set_config = e3_set_config,
	.set_failover = e3_set_failover,
	.write_sync_state = e3_write_sync_state,
	.delete_sync_state = e3_delete_sync_state,
	.set_history = e3_set_history,
	.write_status = e3_write_status,
	.write_failsafe = e3_write_failsafe,
	.delete_cluster = e3_delete_cluster,
	.set_ttl = e3_set_ttl,
	.watch = e3_watch,
	.write_leader_optime = e3_write_leader_optime,
};

PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *pgkeel_dcs_plugin_entry(void)
{
	return &etcd3_plugin;
}
