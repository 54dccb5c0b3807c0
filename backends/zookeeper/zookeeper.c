/*
 * dcs_zookeeper: the ZooKeeper backend, over the multi-threaded C client.
 *
 * Layout and semantics as Patroni's ZooKeeper backend (spec/patroni-dcs-
 * and-ha.md §4.3): znodes under /<namespace>/<scope>/ (leader, members/<name>,
 * config, initialize, status, optime/leader, sync, failover, history,
 * failsafe), parents created persistent with empty data; `leader` and
 * `members/<name>` are EPHEMERAL znodes of this member's session, whose
 * timeout is ttl; config, failover and sync are written with the znode's
 * dataVersion as the compare-and-set token.
 *
 * Where this differs from Patroni 3.0.2, on purpose:
 *  - a CAS on version 0 is a CAS (Patroni's `version or -1` turns 0 into an
 *    unconditional write);
 *  - update_leader rebinds a leader znode of a previous session only when it
 *    carries our name, in one multi (delete on its version + create), never
 *    another member's; after our own session was lost it answers CONFLICT so
 *    that the core learns it lost the lock;
 *  - delete_leader deletes the znode on its version and then closes the
 *    session (Patroni only restarts the session), so the key is gone when
 *    the op returns; a key that is not ours is left alone (CONFLICT);
 *  - a session that owns znodes and is not renewed within its timeout is
 *    closed (zk_session.h: the core's lock validity is a lease's);
 *  - load_cluster issues a sync first, so a read after a write through
 *    another server of the ensemble sees it.
 *
 * Every op waits for its requests with the host's deadline (zk_session.h):
 * a request the deadline overran is abandoned, the op answers UNAVAILABLE.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zk_proto.h"
#include "zk_session.h"

#define ZK_VERSION PACKAGE_VERSION

struct pgkeel_dcs {
	struct dcsc_handle c; /* host, ctl, timings */
	struct zk_options opts;
	struct zk_conn conn;
	bool conn_up;
	char *base; /* "/service/batman" */
	char *leader_path;
	char *config_path;
	char *member_path; /* NULL on a ctl handle */
	char *name;

	int64_t lock_sid; /* the session our leader znode was created under; 0 = none */

	/* what the last load showed */
	bool seen_leader;
	int64_t leader_czxid;
	int64_t leader_mzxid;
	char leader_version[16];
	bool seen_config;
	int64_t config_czxid;
	int64_t config_mzxid;
	bool have_member;
	char *member_value;
	int64_t member_owner;
};

/* The result of one request (run()). */
struct res {
	int rc;
	struct Stat stat;
	bool have_stat;
	char *data;
	int data_len;
	bool retried;   /* sent more than once (a lost answer may hide our own write) */
	int64_t sid;    /* the session it ran on */
	int granted_ms; /* that session's timeout */
	int64_t sent;   /* own clock, when the last attempt was sent */
};

enum run_flags {
	RUN_RENEW = 1 << 0,       /* success proves the session alive (it owns znodes) */
	RUN_NEW_SESSION = 1 << 1, /* a lost session is replaced and the request re-sent */
};

/* ------------------------------------------------------------------ helpers */

/* The host's deadline on our own monotonic clock. */
static int64_t own_deadline(struct pgkeel_dcs *d, int64_t deadline_ms)
{
	return zk_own_now() + (deadline_ms - d->c.host->now_monotonic_ms(d->c.host->ctx));
}

static enum pgkeel_dcs_status ctl_refused(const char *op, struct pgkeel_err *err)
{
	dcsc_set_err(err, PGKEEL_DCS_D_NONE,
	             "zookeeper: %s is not allowed on a read-only ctl handle", op);
	return PGKEEL_DCS_INVALID;
}

/* The status of an answer no caller branch handled. */
static enum pgkeel_dcs_status rc_fail(int rc, const char *what, const char *path,
                                      struct pgkeel_err *err)
{
	int detail;
	enum pgkeel_dcs_status st = zk_rc_status(rc, &detail);

	dcsc_set_err(err, detail, "zookeeper: %s %s: %s", what, path, zerror(rc));
	return st;
}

static void res_clear(struct res *r)
{
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static const char *kind_name(enum zk_kind k)
{
	static const char *const names[] = {"get", "get_children", "exists", "create",
	                                    "set", "delete",       "sync",   "rebind"};

	return names[k];
}

/*
 * One request: a connected session, submit, wait by the deadline.  Connection
 * loss and operation timeouts are retried on the session (the client
 * reconnects to another server within the session) until the deadline; a
 * lost session is replaced only with RUN_NEW_SESSION.  OK means the store
 * answered: out->rc says what (ZOK, ZNONODE, ...).
 */
static enum pgkeel_dcs_status run(struct pgkeel_dcs *d, const struct zk_op *op, int64_t dl,
                                  unsigned flags, struct res *out, struct pgkeel_err *err)
{
	struct zk_conn *c = &d->conn;
	int attempts = 0;

	res_clear(out);
	for (;;) {
		struct zk_sess *s;
		struct zk_req *r;
		enum zk_rc_class cls;
		int64_t sent;
		enum pgkeel_dcs_status st =
		    zk_sess_get(c, d->c.ttl * 1000, d->lock_sid, dl, &s, err);

		if (st != PGKEEL_DCS_OK)
			return st;
		sent = zk_own_now();
		r = zk_submit(c, s, op);
		attempts++;
		if (!zk_wait(c, &r, 1, dl)) {
			zk_req_finish(c, r);
			zk_sess_put(c, s);
			dcsc_set_err(err, PGKEEL_DCS_D_TIMEOUT,
			             "zookeeper: no answer to %s %s in time (%d attempt%s)",
			             kind_name(op->kind), op->path, attempts,
			             attempts > 1 ? "s" : "");
			return PGKEEL_DCS_UNAVAILABLE;
		}
		cls = zk_rc_classify(r->rc);
		if ((cls == ZK_RC_TRANSIENT ||
		     (cls == ZK_RC_SESSION && (flags & RUN_NEW_SESSION))) &&
		    zk_own_now() < dl) {
			zk_req_finish(c, r);
			zk_sess_put(c, s);
			out->retried = true;
			zk_pause(c, zk_own_now() + 50 < dl ? zk_own_now() + 50 : dl);
			continue;
		}
		out->rc = r->rc;
		out->stat = r->stat;
		out->have_stat = r->have_stat;
		out->data = r->data;
		out->data_len = r->data_len;
		r->data = NULL;
		out->sid = s->id;
		out->granted_ms = s->granted_ms;
		out->sent = sent;
		if (r->rc == ZOK && (flags & RUN_RENEW))
			zk_sess_renewed(c, s, sent);
		zk_req_finish(c, r);
		zk_sess_put(c, s);
		return PGKEEL_DCS_OK;
	}
}

/* Create the persistent parents of `path` below the root (makepath). */
static enum pgkeel_dcs_status make_parents(struct pgkeel_dcs *d, const char *path, int64_t dl,
                                           struct pgkeel_err *err)
{
	char *p = strdup(path);
	enum pgkeel_dcs_status st = PGKEEL_DCS_OK;
	struct res r = {0};

	if (p == NULL)
		abort();
	for (char *slash = strchr(p + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		struct zk_op op = {.kind = ZK_CREATE, .path = p, .data = "", .len = 0};

		*slash = '\0';
		st = run(d, &op, dl, RUN_NEW_SESSION, &r, err);
		*slash = '/';
		if (st != PGKEEL_DCS_OK)
			break;
		if (r.rc != ZOK && r.rc != ZNODEEXISTS) {
			st = rc_fail(r.rc, "create", p, err);
			break;
		}
	}
	res_clear(&r);
	free(p);
	return st;
}

/* create (makepath): out->rc is ZOK or what the store said. */
static enum pgkeel_dcs_status create_node(struct pgkeel_dcs *d, const char *path, const char *value,
                                          bool ephemeral, int64_t dl, struct res *out,
                                          struct pgkeel_err *err)
{
	struct zk_op op = {.kind = ZK_CREATE,
	                   .path = path,
	                   .data = value,
	                   .len = (int)strlen(value),
	                   .ephemeral = ephemeral};
	enum pgkeel_dcs_status st;
	bool retried = false;

	for (int i = 0; i < 3; i++) {
		st = run(d, &op, dl, ephemeral ? RUN_RENEW : RUN_NEW_SESSION, out, err);
		retried |= out->retried;
		if (st != PGKEEL_DCS_OK || out->rc != ZNONODE)
			break;
		st = make_parents(d, path, dl, err);
		if (st != PGKEEL_DCS_OK)
			break;
	}
	out->retried |= retried;
	return st;
}

/*
 * set (version -1 = any), or create when absent and no version was given.
 * `create_absent` false: an absent node with no version is left absent.
 * *new_version gets the dataVersion written.
 */
static enum pgkeel_dcs_status set_or_create(struct pgkeel_dcs *d, const char *rel,
                                            const char *value, const char *expect,
                                            bool create_absent, int64_t dl, int32_t *new_version,
                                            struct pgkeel_err *err)
{
	char *path = zk_path(d->base, rel);
	int32_t version = -1;
	struct res r = {0};
	enum pgkeel_dcs_status st = PGKEEL_DCS_OK;
	struct zk_op op = {.kind = ZK_SET, .path = path, .data = value, .len = (int)strlen(value)};

	if (expect != NULL && !zk_parse_version(expect, &version)) {
		dcsc_set_err(err, PGKEEL_DCS_D_VERSION, "zookeeper: '%s' is not a znode version",
		             expect);
		free(path);
		return PGKEEL_DCS_INVALID;
	}
	op.version = version;
	for (int i = 0; i < 3; i++) {
		st = run(d, &op, dl, RUN_NEW_SESSION, &r, err);
		if (st != PGKEEL_DCS_OK)
			break;
		if (r.rc == ZOK) {
			if (new_version != NULL)
				*new_version = r.stat.version;
			break;
		}
		if (r.rc == ZNONODE && expect == NULL) {
			if (!create_absent)
				break;
			st = create_node(d, path, value, false, dl, &r, err);
			if (st != PGKEEL_DCS_OK)
				break;
			if (r.rc == ZOK) {
				if (new_version != NULL)
					*new_version = 0;
				break;
			}
			if (r.rc == ZNODEEXISTS)
				continue; /* created meanwhile: set it */
			st = rc_fail(r.rc, "create", path, err);
			break;
		}
		if (r.rc == ZBADVERSION && r.retried) {
			/* the answer to our first attempt was lost: did it land? */
			struct zk_op get = {.kind = ZK_GET, .path = path};
			struct res g = {0};

			st = run(d, &get, dl, RUN_NEW_SESSION, &g, err);
			if (st == PGKEEL_DCS_OK && g.rc == ZOK && g.stat.version == version + 1 &&
			    g.data_len == (int)strlen(value) &&
			    memcmp(g.data, value, strlen(value)) == 0) {
				if (new_version != NULL)
					*new_version = g.stat.version;
				res_clear(&g);
				break;
			}
			res_clear(&g);
			if (st != PGKEEL_DCS_OK)
				break;
		}
		if (r.rc == ZBADVERSION || r.rc == ZNONODE) {
			dcsc_set_err(err, PGKEEL_DCS_D_VERSION, "zookeeper: %s %s since version %s",
			             rel, r.rc == ZNONODE ? "is gone" : "changed",
			             expect ? expect : "-1");
			st = PGKEEL_DCS_CONFLICT;
			break;
		}
		st = rc_fail(r.rc, "set", path, err);
		break;
	}
	res_clear(&r);
	free(path);
	return st;
}

/* An answer on session `sid` sent at `sent` proved it alive (it owns znodes). */
static void renew_if_current(struct pgkeel_dcs *d, int64_t sid, int64_t sent)
{
	struct zk_sess *s = zk_sess_peek(&d->conn);

	if (s != NULL && s->id == sid)
		zk_sess_renewed(&d->conn, s, sent);
	zk_sess_put(&d->conn, s);
}

static void lease_report(struct pgkeel_dcs_lease *out, int64_t sid, int granted_ms)
{
	if (out == NULL || out->struct_size < sizeof(*out))
		return;
	out->granted_ttl_ms = granted_ms;
	zk_fmt_i64(out->owner, sizeof(out->owner), sid);
}

/* ------------------------------------------------------------------ init/fini */

static enum pgkeel_dcs_status zk_init(const struct pgkeel_host *host,
                                      const struct pgkeel_dcs_params *params,
                                      struct pgkeel_dcs **out, struct pgkeel_err *err)
{
	struct dcsc_handle c;
	struct pgkeel_dcs *d;

	*out = NULL;
	if (dcsc_handle_init(&c, "zookeeper", host, params, true, err) != PGKEEL_DCS_OK)
		return PGKEEL_DCS_INVALID;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return PGKEEL_DCS_NOMEM;
	d->c = c;
	d->base = zk_base_path(params->namespace_, params->scope);
	if (d->base == NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "zookeeper: the scope '%s' is not a znode name", params->scope);
		free(d);
		return PGKEEL_DCS_INVALID;
	}
	if (!zk_options_parse(&d->opts, host, params->options_json, err)) {
		zk_options_free(&d->opts);
		free(d->base);
		free(d);
		return PGKEEL_DCS_INVALID;
	}
	d->leader_path = zk_path(d->base, "leader");
	d->config_path = zk_path(d->base, "config");
	if (!d->c.ctl) {
		char *rel = NULL;

		dcsc_set_str(&d->name, params->name);
		if (asprintf(&rel, "members/%s", params->name) < 0)
			abort();
		d->member_path = zk_path(d->base, rel);
		free(rel);
	}
	/* the session is opened by the first op: init never contacts the store */
	if (!zk_conn_init(&d->conn, host, &d->opts, !d->c.ctl, err)) {
		zk_options_free(&d->opts);
		free(d->base);
		free(d->leader_path);
		free(d->config_path);
		free(d->member_path);
		free(d->name);
		free(d);
		return PGKEEL_DCS_NOMEM;
	}
	d->conn_up = true;
	*out = d;
	return PGKEEL_DCS_OK;
}

static void zk_fini(struct pgkeel_dcs *d)
{
	if (d == NULL)
		return;
	/* the sessions are abandoned, not closed: their znodes expire (zk_session.h) */
	if (d->conn_up)
		zk_conn_fini(&d->conn);
	zk_options_free(&d->opts);
	free(d->base);
	free(d->leader_path);
	free(d->config_path);
	free(d->member_path);
	free(d->name);
	free(d->member_value);
	free(d);
}

/* ------------------------------------------------------------------ load */

struct node {
	char *key; /* logical */
	struct zk_req *req;
};

static void nodes_free(struct zk_conn *c, struct node *n, int count)
{
	for (int i = 0; i < count; i++) {
		free(n[i].key);
		zk_req_finish(c, n[i].req);
	}
	free(n);
}

static struct node *nodes_add(struct node *n, int *count, const char *key)
{
	struct node *m = realloc(n, (size_t)(*count + 1) * sizeof(*m));

	if (m == NULL)
		abort();
	m[*count].key = strdup(key);
	m[*count].req = NULL;
	if (m[*count].key == NULL)
		abort();
	(*count)++;
	return m;
}

/* A request of a load batch failed in a way that ends this attempt. */
static bool batch_failed(struct node *n, int count, int *rc)
{
	for (int i = 0; i < count; i++) {
		if (n[i].req == NULL)
			continue;
		if (n[i].req->rc != ZOK && n[i].req->rc != ZNONODE) {
			*rc = n[i].req->rc;
			return true;
		}
	}
	return false;
}

static bool has_child(const struct zk_req *r, const char *name)
{
	for (int i = 0; i < r->n_children; i++)
		if (strcmp(r->children[i], name) == 0)
			return true;
	return false;
}

/* Hand the entries read to the host; remember what the watch compares with. */
static int deliver(struct pgkeel_dcs *d, struct node *n, int count, pgkeel_dcs_entry_cb cb,
                   void *arg)
{
	for (int i = 0; i < count; i++) {
		struct zk_req *r = n[i].req;
		struct pgkeel_dcs_entry e;
		char version[16], mzxid[24], owner[24];

		if (r == NULL || r->kind != ZK_GET || r->rc != ZOK || !r->have_stat)
			continue;
		zk_fmt_i64(version, sizeof(version), r->stat.version);
		zk_fmt_i64(mzxid, sizeof(mzxid), r->stat.mzxid);
		zk_fmt_i64(owner, sizeof(owner), r->stat.ephemeralOwner);
		e.key = n[i].key;
		e.value = r->data;
		e.value_len = r->data_len > 0 ? (size_t)r->data_len : 0;
		e.version = version;
		e.modify_version = mzxid;
		e.owner = r->stat.ephemeralOwner != 0 ? owner : NULL;
		if (strcmp(e.key, "leader") == 0) {
			d->seen_leader = true;
			d->leader_czxid = r->stat.czxid;
			d->leader_mzxid = r->stat.mzxid;
			memcpy(d->leader_version, version, sizeof(version));
		} else if (strcmp(e.key, "config") == 0) {
			d->seen_config = true;
			d->config_czxid = r->stat.czxid;
			d->config_mzxid = r->stat.mzxid;
		} else if (d->name != NULL && strncmp(e.key, "members/", 8) == 0 &&
		           strcmp(e.key + 8, d->name) == 0) {
			d->have_member = true;
			dcsc_set_str(&d->member_value, r->data);
			d->member_owner = r->stat.ephemeralOwner;
		}
		if (cb(arg, &e) != 0)
			return -1;
	}
	return 0;
}

/*
 * One attempt: sync + children of the base, then every known key (and the
 * members' list), then each member.  *rc is the failing return code when
 * the attempt did not complete (0 when the deadline passed).
 */
static bool load_once(struct pgkeel_dcs *d, struct zk_sess *s, int64_t dl, struct node **out,
                      int *count, int *rc)
{
	struct zk_conn *c = &d->conn;
	struct zk_op op = {.kind = ZK_SYNC, .path = d->base};
	struct zk_req *top[2];
	struct node *n = NULL;
	int cnt = 0, members = -1, first_member;
	bool ok = false;

	*rc = 0;
	top[0] = zk_submit(c, s, &op);
	op.kind = ZK_CHILDREN;
	top[1] = zk_submit(c, s, &op);
	if (!zk_wait(c, top, 2, dl))
		goto out;
	if (top[1]->rc == ZNONODE) { /* no cluster at all */
		ok = true;
		goto out;
	}
	if (top[1]->rc != ZOK || (top[0]->rc != ZOK && top[0]->rc != ZNONODE)) {
		*rc = top[1]->rc != ZOK ? top[1]->rc : top[0]->rc;
		goto out;
	}
	for (int i = 0; zk_cluster_keys[i] != NULL; i++) {
		if (!has_child(top[1], zk_cluster_keys[i]))
			continue;
		n = nodes_add(n, &cnt, zk_cluster_keys[i]);
	}
	if (has_child(top[1], "optime"))
		n = nodes_add(n, &cnt, "optime/leader");
	if (has_child(top[1], "members")) {
		n = nodes_add(n, &cnt, "members");
		members = cnt - 1;
	}
	for (int i = 0; i < cnt; i++) {
		char *path = zk_path(d->base, n[i].key);

		op.kind = i == members ? ZK_CHILDREN : ZK_GET;
		op.path = path;
		n[i].req = zk_submit(c, s, &op);
		free(path);
	}
	for (int i = 0; i < cnt; i++)
		if (!zk_wait(c, &n[i].req, 1, dl))
			goto out;
	if (batch_failed(n, cnt, rc))
		goto out;
	first_member = cnt;
	if (members >= 0) {
		struct zk_req *mr = n[members].req;

		for (int i = 0; i < mr->n_children; i++) {
			char key[512];

			if (snprintf(key, sizeof(key), "members/%s", mr->children[i]) >=
			    (int)sizeof(key))
				continue;
			n = nodes_add(n, &cnt, key);
		}
		for (int i = first_member; i < cnt; i++) {
			char *path = zk_path(d->base, n[i].key);

			op.kind = ZK_GET;
			op.path = path;
			n[i].req = zk_submit(c, s, &op);
			free(path);
		}
		for (int i = first_member; i < cnt; i++)
			if (!zk_wait(c, &n[i].req, 1, dl))
				goto out;
		if (batch_failed(n, cnt, rc))
			goto out;
	}
	ok = true;
out:
	zk_req_finish(c, top[0]);
	zk_req_finish(c, top[1]);
	if (!ok) {
		nodes_free(c, n, cnt);
		n = NULL;
		cnt = 0;
	}
	*out = n;
	*count = cnt;
	return ok;
}

static enum pgkeel_dcs_status zk_load_cluster(struct pgkeel_dcs *d, int64_t deadline_ms,
                                              pgkeel_dcs_entry_cb cb, void *arg,
                                              struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	struct zk_conn *c = &d->conn;

	for (int attempt = 1;; attempt++) {
		struct zk_sess *s;
		struct node *n = NULL;
		int count = 0, rc = 0;
		bool ok;
		enum pgkeel_dcs_status st =
		    zk_sess_get(c, d->c.ttl * 1000, d->lock_sid, dl, &s, err);

		if (st != PGKEEL_DCS_OK)
			return st;
		ok = load_once(d, s, dl, &n, &count, &rc);
		zk_sess_put(c, s);
		if (ok) {
			int stop;

			d->seen_leader = false;
			d->seen_config = false;
			d->have_member = false;
			stop = deliver(d, n, count, cb, arg);
			nodes_free(c, n, count);
			if (stop != 0) {
				dcsc_set_err(err, PGKEEL_DCS_D_NONE,
				             "zookeeper: the host stopped reading the cluster");
				return PGKEEL_DCS_NOMEM;
			}
			return PGKEEL_DCS_OK;
		}
		if (rc == 0) {
			dcsc_set_err(
			    err, PGKEEL_DCS_D_TIMEOUT,
			    "zookeeper: reading %s took longer than the deadline (%d attempt%s)",
			    d->base, attempt, attempt > 1 ? "s" : "");
			return PGKEEL_DCS_UNAVAILABLE;
		}
		if ((zk_rc_classify(rc) == ZK_RC_TRANSIENT ||
		     zk_rc_classify(rc) == ZK_RC_SESSION) &&
		    zk_own_now() < dl) {
			zk_pause(c, zk_own_now() + 50 < dl ? zk_own_now() + 50 : dl);
			continue;
		}
		return rc_fail(rc, "read", d->base, err);
	}
}

/* ------------------------------------------------------------------ leader */

static void remember_leader(struct pgkeel_dcs *d, const struct res *r)
{
	d->lock_sid = r->sid;
	if (r->have_stat) {
		d->seen_leader = true;
		d->leader_czxid = r->stat.czxid;
		d->leader_mzxid = r->stat.mzxid;
		zk_fmt_i64(d->leader_version, sizeof(d->leader_version), r->stat.version);
	}
}

/* Read the leader znode: out->rc ZOK (data, stat) or ZNONODE. */
static enum pgkeel_dcs_status get_leader(struct pgkeel_dcs *d, int64_t dl, unsigned flags,
                                         struct res *out, struct pgkeel_err *err)
{
	struct zk_op op = {.kind = ZK_GET, .path = d->leader_path};
	enum pgkeel_dcs_status st = run(d, &op, dl, flags, out, err);

	if (st == PGKEEL_DCS_OK && out->rc != ZOK && out->rc != ZNONODE)
		return rc_fail(out->rc, "get", d->leader_path, err);
	return st;
}

static bool is_mine(const struct pgkeel_dcs *d, const struct res *r)
{
	return r->data != NULL && strcmp(r->data, d->name) == 0;
}

static enum pgkeel_dcs_status acquire(struct pgkeel_dcs *d, int64_t deadline_ms,
                                      struct pgkeel_dcs_lease *lease, struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	struct res r = {0};
	enum pgkeel_dcs_status st = create_node(d, d->leader_path, d->name, true, dl, &r, err);

	if (st == PGKEEL_DCS_OK && r.rc == ZNODEEXISTS && r.retried) {
		/* our first create may have landed before its answer was lost */
		struct res g = {0};

		st = get_leader(d, dl, 0, &g, err);
		if (st == PGKEEL_DCS_OK && g.rc == ZOK && is_mine(d, &g) &&
		    g.stat.ephemeralOwner == g.sid) {
			res_clear(&r);
			r = g;
			r.rc = ZOK;
			renew_if_current(d, r.sid, r.sent);
		} else {
			res_clear(&g);
		}
	}
	if (st != PGKEEL_DCS_OK) {
		res_clear(&r);
		return st;
	}
	if (r.rc == ZNODEEXISTS) {
		res_clear(&r);
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
		             "zookeeper: the leader key is held by another member");
		return PGKEEL_DCS_CONFLICT;
	}
	if (r.rc != ZOK) {
		st = rc_fail(r.rc, "create", d->leader_path, err);
		res_clear(&r);
		return st;
	}
	remember_leader(d, &r);
	lease_report(lease, r.sid, r.granted_ms);
	res_clear(&r);
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status zk_acquire(struct pgkeel_dcs *d, int64_t deadline_ms,
                                         struct pgkeel_dcs_lease *lease, struct pgkeel_err *err)
{
	if (d->c.ctl)
		return ctl_refused("attempt_to_acquire_leader", err);
	return acquire(d, deadline_ms, lease, err);
}

/* take_leader is the acquire, as in Patroni's ZooKeeper backend. */
static enum pgkeel_dcs_status zk_take_leader(struct pgkeel_dcs *d, int64_t deadline_ms,
                                             struct pgkeel_dcs_lease *lease, struct pgkeel_err *err)
{
	if (d->c.ctl)
		return ctl_refused("take_leader", err);
	return acquire(d, deadline_ms, lease, err);
}

static void write_side_key(struct pgkeel_dcs *d, const char *rel, const char *json, int64_t dl)
{
	struct pgkeel_err e = {0};

	if (json != NULL && set_or_create(d, rel, json, NULL, true, dl, NULL, &e) != PGKEEL_DCS_OK)
		d->c.host->log(d->c.host->ctx, PGKEEL_LOG_WARNING,
		               "zookeeper: could not write %s: %s", rel, e.msg);
}

static enum pgkeel_dcs_status zk_update_leader(struct pgkeel_dcs *d,
                                               const struct pgkeel_dcs_leader_update *u,
                                               int64_t deadline_ms, struct pgkeel_dcs_lease *lease,
                                               struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	struct res r = {0};
	enum pgkeel_dcs_status st;

	if (d->c.ctl)
		return ctl_refused("update_leader", err);
	if (d->lock_sid != 0 && !zk_sess_alive(&d->conn, d->lock_sid)) {
		dcsc_set_err(err, PGKEEL_DCS_D_SESSION_LOST,
		             "zookeeper: session 0x%" PRIx64
		             ", which held the leader lock, is gone "
		             "(expired or closed): the lock with it",
		             (uint64_t)d->lock_sid);
		d->lock_sid = 0;
		return PGKEEL_DCS_CONFLICT;
	}
	st = get_leader(d, dl, d->lock_sid == 0 ? RUN_NEW_SESSION : 0, &r, err);
	if (st != PGKEEL_DCS_OK)
		goto out;
	if (r.rc == ZNONODE) {
		/* gone although our session lives (deleted by hand): take it again */
		st = create_node(d, d->leader_path, d->name, true, dl, &r, err);
		if (st != PGKEEL_DCS_OK)
			goto out;
		if (r.rc == ZNODEEXISTS) {
			dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
			             "zookeeper: the leader key was taken by another member");
			st = PGKEEL_DCS_CONFLICT;
			goto out;
		}
		if (r.rc != ZOK) {
			st = rc_fail(r.rc, "create", d->leader_path, err);
			goto out;
		}
	} else if (!is_mine(d, &r)) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS, "zookeeper: the leader key is held by %s",
		             r.data != NULL ? r.data : "another member");
		d->lock_sid = 0;
		st = PGKEEL_DCS_CONFLICT;
		goto out;
	} else if (r.stat.ephemeralOwner != r.sid) {
		/* ours by name under an older session: move it to this one, atomically */
		int64_t old = r.stat.ephemeralOwner;
		struct zk_op op = {.kind = ZK_REBIND,
		                   .path = d->leader_path,
		                   .data = d->name,
		                   .len = (int)strlen(d->name),
		                   .version = r.stat.version};

		d->c.host->log(d->c.host->ctx, PGKEEL_LOG_INFO,
		               "zookeeper: moving the leader znode from session 0x%" PRIx64
		               " to 0x%" PRIx64,
		               (uint64_t)old, (uint64_t)r.sid);
		st = run(d, &op, dl, RUN_RENEW, &r, err);
		if (st != PGKEEL_DCS_OK)
			goto out;
		if (r.rc != ZOK && r.retried && zk_rc_classify(r.rc) == ZK_RC_ANSWER) {
			/* the answer to a multi that landed may have been lost: look */
			int64_t sid = r.sid;

			st = get_leader(d, dl, 0, &r, err);
			if (st != PGKEEL_DCS_OK)
				goto out;
			if (r.rc == ZOK && is_mine(d, &r) && r.stat.ephemeralOwner == sid &&
			    r.sid == sid)
				renew_if_current(d, r.sid, r.sent);
			else if (r.rc == ZOK)
				r.rc = ZBADVERSION;
		}
		if (r.rc != ZOK) {
			if (zk_rc_classify(r.rc) == ZK_RC_ANSWER) {
				dcsc_set_err(
				    err, PGKEEL_DCS_D_EXISTS,
				    "zookeeper: the leader key changed while it was rebound: %s",
				    zerror(r.rc));
				st = PGKEEL_DCS_CONFLICT;
			} else {
				st = rc_fail(r.rc, "rebind", d->leader_path, err);
			}
			goto out;
		}
		r.have_stat = false;
		if (old != r.sid && zk_sess_alive(&d->conn, old))
			zk_sess_retire_id(&d->conn, old);
	} else {
		/* the read proved the session alive: the lock holds */
		renew_if_current(d, r.sid, r.sent);
	}
	remember_leader(d, &r);
	if (u != NULL && u->struct_size >= sizeof(*u)) {
		write_side_key(d, "status", u->status_json, dl);
		write_side_key(d, "failsafe", u->failsafe_json, dl);
	}
	lease_report(lease, r.sid, r.granted_ms);
out:
	res_clear(&r);
	return st;
}

static enum pgkeel_dcs_status zk_delete_leader(struct pgkeel_dcs *d, const char *leader_version,
                                               int64_t deadline_ms, struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	struct res r = {0};
	enum pgkeel_dcs_status st;
	int64_t owner;

	(void)leader_version;
	if (d->c.ctl)
		return ctl_refused("delete_leader", err);
	st = get_leader(d, dl, RUN_NEW_SESSION, &r, err);
	if (st != PGKEEL_DCS_OK)
		goto out;
	owner = r.stat.ephemeralOwner;
	if (r.rc == ZNONODE || !is_mine(d, &r) ||
	    (owner != r.sid && !zk_sess_alive(&d->conn, owner))) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS, "zookeeper: the leader key is not ours");
		if (r.rc == ZNONODE || !is_mine(d, &r))
			d->lock_sid = 0;
		st = PGKEEL_DCS_CONFLICT;
		goto out;
	}
	{
		struct zk_op op = {
		    .kind = ZK_DELETE, .path = d->leader_path, .version = r.stat.version};

		st = run(d, &op, dl, 0, &r, err);
	}
	if (st != PGKEEL_DCS_OK)
		goto out;
	if (r.rc == ZNONODE && r.retried)
		r.rc = ZOK; /* our first delete landed; its answer was lost */
	if (r.rc == ZNONODE || r.rc == ZBADVERSION) {
		dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
		             "zookeeper: the leader key changed meanwhile");
		st = PGKEEL_DCS_CONFLICT;
		goto out;
	}
	if (r.rc != ZOK) {
		st = rc_fail(r.rc, "delete", d->leader_path, err);
		goto out;
	}
	/* Patroni releases by restarting the session: its member znode goes too */
	d->lock_sid = 0;
	d->seen_leader = false;
	d->have_member = false;
	zk_sess_retire_id(&d->conn, owner);
out:
	res_clear(&r);
	return st;
}

/* ------------------------------------------------------------------ members */

static enum pgkeel_dcs_status zk_touch_member(struct pgkeel_dcs *d, const char *json,
                                              int64_t deadline_ms, struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	struct zk_op op = {
	    .kind = ZK_SET, .path = NULL, .data = json, .len = (int)strlen(json), .version = -1};
	struct res r = {0};
	enum pgkeel_dcs_status st = PGKEEL_DCS_OK;
	struct zk_sess *s;

	if (d->c.ctl)
		return ctl_refused("touch_member", err);
	op.path = d->member_path;
	/* unchanged and bound to the live session: nothing to write */
	s = zk_sess_peek(&d->conn);
	if (s != NULL && d->have_member && d->member_value != NULL &&
	    strcmp(d->member_value, json) == 0 && s->state == ZK_SESS_CONNECTED &&
	    s->id == d->member_owner) {
		zk_sess_renewed(&d->conn, s, zk_own_now());
		zk_sess_put(&d->conn, s);
		return PGKEEL_DCS_OK;
	}
	zk_sess_put(&d->conn, s);
	for (int i = 0; i < 3; i++) {
		st = run(d, &op, dl, RUN_NEW_SESSION, &r, err);
		if (st != PGKEEL_DCS_OK)
			break;
		if (r.rc == ZOK && r.stat.ephemeralOwner == r.sid)
			break;
		if (r.rc == ZOK) {
			/* bound to another (older) session: re-create it under ours */
			struct zk_op del = {
			    .kind = ZK_DELETE, .path = d->member_path, .version = r.stat.version};

			st = run(d, &del, dl, RUN_NEW_SESSION, &r, err);
			if (st != PGKEEL_DCS_OK)
				break;
			if (r.rc != ZOK && r.rc != ZNONODE && r.rc != ZBADVERSION) {
				st = rc_fail(r.rc, "delete", d->member_path, err);
				break;
			}
			r.rc = ZNONODE;
		}
		if (r.rc != ZNONODE) {
			st = rc_fail(r.rc, "set", d->member_path, err);
			break;
		}
		st = create_node(d, d->member_path, json, true, dl, &r, err);
		if (st != PGKEEL_DCS_OK || r.rc == ZOK)
			break;
		if (r.rc != ZNODEEXISTS) {
			st = rc_fail(r.rc, "create", d->member_path, err);
			break;
		}
	}
	if (st == PGKEEL_DCS_OK && r.rc == ZOK) {
		renew_if_current(d, r.sid, r.sent);
		d->have_member = true;
		dcsc_set_str(&d->member_value, json);
		d->member_owner = r.sid;
	} else if (st == PGKEEL_DCS_OK) {
		st = rc_fail(r.rc, "write", d->member_path, err);
	}
	res_clear(&r);
	return st;
}

/* ------------------------------------------------------------------ cluster keys */

static enum pgkeel_dcs_status zk_initialize(struct pgkeel_dcs *d, bool create_new,
                                            const char *sysid, int64_t deadline_ms,
                                            struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	char *path;
	struct res r = {0};
	enum pgkeel_dcs_status st;

	if (!create_new)
		return set_or_create(d, "initialize", sysid, NULL, true, dl, NULL, err);
	path = zk_path(d->base, "initialize");
	st = create_node(d, path, sysid, false, dl, &r, err);
	if (st == PGKEEL_DCS_OK && r.rc == ZNODEEXISTS) {
		struct zk_op get = {.kind = ZK_GET, .path = path};
		bool landed = false;

		if (r.retried) { /* was it our own create whose answer was lost? */
			st = run(d, &get, dl, RUN_NEW_SESSION, &r, err);
			landed = st == PGKEEL_DCS_OK && r.rc == ZOK && r.data != NULL &&
			         strcmp(r.data, sysid) == 0 && r.stat.version == 0;
		}
		if (st == PGKEEL_DCS_OK && !landed) {
			dcsc_set_err(err, PGKEEL_DCS_D_EXISTS,
			             "zookeeper: the cluster is already initialized");
			st = PGKEEL_DCS_CONFLICT;
		}
	} else if (st == PGKEEL_DCS_OK && r.rc != ZOK) {
		st = rc_fail(r.rc, "create", path, err);
	}
	res_clear(&r);
	free(path);
	return st;
}

static enum pgkeel_dcs_status zk_cancel_initialization(struct pgkeel_dcs *d, int64_t deadline_ms,
                                                       struct pgkeel_err *err)
{
	int64_t dl = own_deadline(d, deadline_ms);
	char *path = zk_path(d->base, "initialize");
	struct res r = {0};
	enum pgkeel_dcs_status st = PGKEEL_DCS_OK;

	/* Patroni: get, then delete on the version read */
	for (int i = 0; i < 5; i++) {
		struct zk_op get = {.kind = ZK_GET, .path = path};
		struct zk_op del = {.kind = ZK_DELETE, .path = path};

		st = run(d, &get, dl, RUN_NEW_SESSION, &r, err);
		if (st != PGKEEL_DCS_OK || r.rc == ZNONODE)
			break;
		if (r.rc != ZOK) {
			st = rc_fail(r.rc, "get", path, err);
			break;
		}
		del.version = r.stat.version;
		st = run(d, &del, dl, RUN_NEW_SESSION, &r, err);
		if (st != PGKEEL_DCS_OK || r.rc == ZOK || r.rc == ZNONODE)
			break;
		if (r.rc != ZBADVERSION) {
			st = rc_fail(r.rc, "delete", path, err);
			break;
		}
	}
	res_clear(&r);
	free(path);
	return st;
}

static enum pgkeel_dcs_status zk_set_config(struct pgkeel_dcs *d, const char *json,
                                            const char *expect_version, int64_t deadline_ms,
                                            struct pgkeel_err *err)
{
	return set_or_create(d, "config", json, expect_version, true, own_deadline(d, deadline_ms),
	                     NULL, err);
}

static enum pgkeel_dcs_status zk_set_failover(struct pgkeel_dcs *d, const char *json,
                                              const char *expect_version, int64_t deadline_ms,
                                              struct pgkeel_err *err)
{
	return set_or_create(d, "failover", json, expect_version, true,
	                     own_deadline(d, deadline_ms), NULL, err);
}

static enum pgkeel_dcs_status zk_write_sync_state(struct pgkeel_dcs *d, const char *json,
                                                  const char *expect_version, char *new_version,
                                                  size_t new_version_len, int64_t deadline_ms,
                                                  struct pgkeel_err *err)
{
	int32_t v = 0;
	enum pgkeel_dcs_status st = set_or_create(d, "sync", json, expect_version, true,
	                                          own_deadline(d, deadline_ms), &v, err);

	if (st == PGKEEL_DCS_OK && new_version != NULL && new_version_len > 0)
		zk_fmt_i64(new_version, new_version_len, v);
	return st;
}

/* ZooKeeper cannot delete on a version and keep the key's history: write {} (Patroni). */
static enum pgkeel_dcs_status zk_delete_sync_state(struct pgkeel_dcs *d, const char *expect_version,
                                                   int64_t deadline_ms, struct pgkeel_err *err)
{
	return set_or_create(d, "sync", "{}", expect_version, false, own_deadline(d, deadline_ms),
	                     NULL, err);
}

static enum pgkeel_dcs_status zk_set_history(struct pgkeel_dcs *d, const char *json,
                                             int64_t deadline_ms, struct pgkeel_err *err)
{
	return set_or_create(d, "history", json, NULL, true, own_deadline(d, deadline_ms), NULL,
	                     err);
}

static enum pgkeel_dcs_status zk_write_status(struct pgkeel_dcs *d, const char *json,
                                              int64_t deadline_ms, struct pgkeel_err *err)
{
	return set_or_create(d, "status", json, NULL, true, own_deadline(d, deadline_ms), NULL,
	                     err);
}

static enum pgkeel_dcs_status zk_write_failsafe(struct pgkeel_dcs *d, const char *json,
                                                int64_t deadline_ms, struct pgkeel_err *err)
{
	return set_or_create(d, "failsafe", json, NULL, true, own_deadline(d, deadline_ms), NULL,
	                     err);
}

static enum pgkeel_dcs_status zk_write_leader_optime(struct pgkeel_dcs *d, int64_t lsn,
                                                     int64_t deadline_ms, struct pgkeel_err *err)
{
	char v[24];

	zk_fmt_i64(v, sizeof(v), lsn);
	return set_or_create(d, "optime/leader", v, NULL, true, own_deadline(d, deadline_ms), NULL,
	                     err);
}

/* Depth-first delete of `path` and everything below it. */
static enum pgkeel_dcs_status delete_tree(struct pgkeel_dcs *d, const char *path, int64_t dl,
                                          int depth, struct pgkeel_err *err)
{
	struct zk_op op = {.kind = ZK_CHILDREN, .path = path};
	struct zk_conn *c = &d->conn;
	enum pgkeel_dcs_status st = PGKEEL_DCS_OK;

	if (depth > 16) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "zookeeper: %s is nested too deep to delete",
		             path);
		return PGKEEL_DCS_INVALID;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		struct zk_sess *s;
		struct zk_req *r;
		struct res del = {0};
		struct zk_op dop = {.kind = ZK_DELETE, .path = path, .version = -1};

		st = zk_sess_get(c, d->c.ttl * 1000, d->lock_sid, dl, &s, err);
		if (st != PGKEEL_DCS_OK)
			return st;
		r = zk_submit(c, s, &op);
		if (!zk_wait(c, &r, 1, dl)) {
			zk_req_finish(c, r);
			zk_sess_put(c, s);
			dcsc_set_err(err, PGKEEL_DCS_D_TIMEOUT,
			             "zookeeper: no answer listing %s in time", path);
			return PGKEEL_DCS_UNAVAILABLE;
		}
		zk_sess_put(c, s);
		if (r->rc == ZNONODE) {
			zk_req_finish(c, r);
			return PGKEEL_DCS_OK;
		}
		if (r->rc != ZOK) {
			int rc = r->rc;

			zk_req_finish(c, r);
			if (zk_rc_classify(rc) == ZK_RC_TRANSIENT && zk_own_now() < dl)
				continue;
			return rc_fail(rc, "get_children", path, err);
		}
		for (int i = 0; i < r->n_children && st == PGKEEL_DCS_OK; i++) {
			char *child = zk_path(path, r->children[i]);

			st = delete_tree(d, child, dl, depth + 1, err);
			free(child);
		}
		zk_req_finish(c, r);
		if (st != PGKEEL_DCS_OK)
			return st;
		st = run(d, &dop, dl, RUN_NEW_SESSION, &del, err);
		if (st != PGKEEL_DCS_OK) {
			res_clear(&del);
			return st;
		}
		if (del.rc == ZOK || del.rc == ZNONODE) {
			res_clear(&del);
			return PGKEEL_DCS_OK;
		}
		if (del.rc != ZNOTEMPTY) { /* a child appeared meanwhile: list again */
			st = rc_fail(del.rc, "delete", path, err);
			res_clear(&del);
			return st;
		}
		res_clear(&del);
	}
	dcsc_set_err(err, PGKEEL_DCS_D_NONE, "zookeeper: %s kept getting new children", path);
	return PGKEEL_DCS_CONFLICT;
}

static enum pgkeel_dcs_status zk_delete_cluster(struct pgkeel_dcs *d, int64_t deadline_ms,
                                                struct pgkeel_err *err)
{
	return delete_tree(d, d->base, own_deadline(d, deadline_ms), 0, err);
}

/* ------------------------------------------------------------------ timing, watch */

static enum pgkeel_dcs_status zk_set_ttl(struct pgkeel_dcs *d, int ttl, int loop_wait,
                                         int retry_timeout, struct pgkeel_err *err)
{
	/*
	 * The session timeout is fixed when a session is created: the next op
	 * opens one with the new ttl (zk_sess_get); the old session keeps the
	 * leader znode until update_leader moved it.
	 */
	return dcsc_handle_set_timing(&d->c, "zookeeper", ttl, loop_wait, retry_timeout, err);
}

static enum pgkeel_dcs_status zk_watch(struct pgkeel_dcs *d, const char *leader_version,
                                       struct pgkeel_err *err)
{
	struct zk_sess *s;

	if (d->c.ctl)
		return ctl_refused("watch", err);
	if (leader_version != NULL &&
	    (!d->seen_leader || strcmp(leader_version, d->leader_version) != 0))
		d->c.host->post_event(d->c.host->ctx, PGKEEL_EVENT_LEADER); /* already stale */
	s = zk_sess_peek(&d->conn);
	if (s == NULL)
		return PGKEEL_DCS_OK; /* the next load opens a session; its watch follows */
	zk_arm_watch(&d->conn, s, d->leader_path, PGKEEL_EVENT_LEADER, d->seen_leader,
	             d->leader_czxid, d->leader_mzxid);
	zk_arm_watch(&d->conn, s, d->config_path, PGKEEL_EVENT_CONFIG, d->seen_config,
	             d->config_czxid, d->config_mzxid);
	zk_sess_put(&d->conn, s);
	return PGKEEL_DCS_OK;
}

static const struct pgkeel_dcs_plugin zookeeper_plugin = {
    .abi_version = PGKEEL_DCS_ABI_VERSION,
    .struct_size = sizeof(struct pgkeel_dcs_plugin),
    .name = "zookeeper",
    .version = ZK_VERSION,
    .init = zk_init,
    .fini = zk_fini,
    .load_cluster = zk_load_cluster,
    .attempt_to_acquire_leader = zk_acquire,
    .update_leader = zk_update_leader,
    .take_leader = zk_take_leader,
    .delete_leader = zk_delete_leader,
    .touch_member = zk_touch_member,
    .initialize = zk_initialize,
    .cancel_initialization = zk_cancel_initialization,
    .set_config = zk_set_config,
    .set_failover = zk_set_failover,
    .write_sync_state = zk_write_sync_state,
    .delete_sync_state = zk_delete_sync_state,
    .set_history = zk_set_history,
    .write_status = zk_write_status,
    .write_failsafe = zk_write_failsafe,
    .delete_cluster = zk_delete_cluster,
    .set_ttl = zk_set_ttl,
    .watch = zk_watch,
    .write_leader_optime = zk_write_leader_optime,
};

PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *pgkeel_dcs_plugin_entry(void)
{
	return &zookeeper_plugin;
}
