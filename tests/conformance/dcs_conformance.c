/*
 * dcs_conformance - the DCS backend conformance suite.
 *
 * Written once against the backend ABI (include/pgkeel/dcs.h), never against
 * a store: it loads `dcs_<name>.so` with the core loader, opens member and
 * ctl handles through plugin->init, runs one scenario (scenarios.c) and
 * reads the results back through load_cluster, fed into the core's cluster
 * builder as the daemon does.  The same program runs on the mock, etcd3,
 * ZooKeeper, Consul and Kubernetes; a driver per backend
 * (tests/integration/test_dcs_<backend>.py over dcs_suite.py) starts the
 * store, stops it for the "unavailable" scenario, and runs every scenario.
 *
 *   dcs_conformance --backend-dir DIR --backend NAME --options JSON
 *                   --namespace /db/ --scope SCOPE --ttl N --loop-wait N
 *                   --retry-timeout N [--slack-ms N] --scenario NAME|list
 *
 * One line per check on stdout ("ok", "note" for a soft finding, "FAIL");
 * exit 0 when every check passed, 1 at the first failed check (the handles
 * are finished first, so backend threads are joined), 2 on a usage error.
 * The backend's own log records go to stderr.
 *
 * This file is the harness (see conformance.h): reporting, handles, the op
 * wrappers with their deadlines, load_cluster views, and main.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pgkeel/dcs.h>

#include "cluster.h"
#include "conformance.h"
#include "dcs_loader.h"
#include "host.h"
#include "json.h"
#include "util.h"

struct conf_opts conf_opt = {
    .namespace_ = "/db/",
    .options = "{}",
    .ttl = 3,
    .loop_wait = 1,
    .retry_timeout = 1,
    .slack_ms = 1500,
};

const struct pgkeel_dcs_plugin *conf_plugin;
const struct pgkeel_host *conf_host;
int64_t conf_op_timeout_ms = CONF_OP_TIMEOUT_MS;
struct conf_last_op conf_last_op;

static const char *scenario_name = "-";
static struct conf_handle *handles[CONF_MAX_HANDLES];

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

void conf_close_all(void)
{
	size_t i;

	for (i = 0; i < CONF_MAX_HANDLES; i++) {
		if (handles[i] != NULL)
			conf_handle_close(handles[i]);
	}
}

static void say(const char *tag, const char *fmt, va_list ap) PGKEEL_PRINTF(2, 0);

static void say(const char *tag, const char *fmt, va_list ap)
{
	char line[2048];

	(void)pgkeel_vfmt(line, sizeof(line), fmt, ap); /* a cut line is still useful */
	printf("%-4s %s: %s\n", tag, scenario_name, line);
	fflush(stdout);
}

void conf_pass(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("ok", fmt, ap);
	va_end(ap);
}

/* A soft finding: reported, not a failure. */
void conf_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("note", fmt, ap);
	va_end(ap);
}

void conf_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("FAIL", fmt, ap);
	va_end(ap);
	conf_close_all();
	exit(1);
}

const char *conf_status_name(int s)
{
	switch (s) {
	case PGKEEL_DCS_OK:
		return "OK";
	case PGKEEL_DCS_CONFLICT:
		return "CONFLICT";
	case PGKEEL_DCS_UNAVAILABLE:
		return "UNAVAILABLE";
	case PGKEEL_DCS_INVALID:
		return "INVALID";
	case PGKEEL_DCS_NOMEM:
		return "NOMEM";
	default:
		return "<not a status>";
	}
}

static const char *detail_name(int code)
{
	static const char *const names[] = {
	    "NONE",   "TIMEOUT", "CONNECT",      "AUTH",   "NOT_FOUND",
	    "EXISTS", "VERSION", "SESSION_LOST", "SERVER", "PROTOCOL",
	};

	if (code < 0 || (size_t)code >= PGKEEL_ARRAY_LEN(names))
		return "?";
	return names[code];
}

/* "OK or CONFLICT" */
static void mask_text(unsigned mask, char *buf, size_t len)
{
	size_t used = 0;
	int s;

	buf[0] = '\0';
	for (s = PGKEEL_DCS_OK; s <= PGKEEL_DCS_NOMEM; s++) {
		if ((mask & ST(s)) == 0)
			continue;
		if (!pgkeel_fmt(buf + used, len - used, "%s%s", used ? " or " : "",
		                conf_status_name(s)))
			return;
		used = strlen(buf);
	}
}

/* "detail EXISTS: mock: the leader key is held by pg-a" */
void conf_err_text(const struct pgkeel_err *err, char *buf, size_t len)
{
	(void)pgkeel_fmt(buf, len, "detail %s (%d): %s", detail_name(err->code), err->code,
	                 err->msg[0] != '\0' ? err->msg : "(no message)");
}

/* A value for a message: printable ASCII as is, the rest escaped, cut. */
void conf_show(const char *p, size_t len, char *buf, size_t buflen)
{
	size_t o = 0;
	size_t i;

	if (p == NULL) {
		(void)pgkeel_fmt(buf, buflen, "(absent)");
		return;
	}
	buf[o++] = '\'';
	for (i = 0; i < len && i < CONF_SHOW_MAX && o + 6 < buflen; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			buf[o++] = (char)ch;
		} else {
			(void)pgkeel_fmt(buf + o, buflen - o, "\\x%02x", ch);
			o += 4;
		}
	}
	if (i < len && o + 4 < buflen) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
}

/* ------------------------------------------------------------------ */
/* Time                                                                */

int64_t conf_now_ms(void)
{
	return conf_host->now_monotonic_ms(conf_host->ctx);
}

int64_t conf_min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Pace a loop (renewals every loop_wait): not a stand-in for a condition. */
void conf_sleep_until(int64_t t)
{
	struct timespec ts;
	int64_t left;

	while ((left = t - conf_now_ms()) > 0) {
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		(void)nanosleep(&ts, NULL);
	}
}

/* Poll the host's event fd until readable or the deadline; true if readable. */
bool conf_wait_readable(int fd, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int64_t left;
	int rc;

	for (;;) {
		left = deadline - conf_now_ms();
		rc = poll(&p, 1, left > 0 ? (int)left : 0);
		if (rc == 1)
			return true;
		if (rc == -1 && errno != EINTR)
			conf_fail("poll on the host event fd: %s", strerror(errno));
		if (rc == 0 && left <= 0)
			return false;
	}
}

/* ------------------------------------------------------------------ */
/* Handles                                                             */

struct conf_handle *conf_handle_open_in(const char *name, uint32_t flags, const char *ns,
                                        const char *scope)
{
	struct pgkeel_dcs_params params;
	struct conf_handle *h;
	struct pgkeel_err err;
	struct pgkeel_dcs *dcs = NULL;
	enum pgkeel_dcs_status s;
	char detail[400];
	int64_t t0;
	size_t slot;

	for (slot = 0; slot < CONF_MAX_HANDLES && handles[slot] != NULL; slot++)
		;
	if (slot == CONF_MAX_HANDLES)
		conf_fail("suite bug: more than %d handles", CONF_MAX_HANDLES);
	h = pgkeel_xcalloc(1, sizeof(*h));
	(void)pgkeel_fmt(h->name, sizeof(h->name), "%s", name != NULL ? name : "");
	(void)pgkeel_fmt(h->label, sizeof(h->label), "%s%s%s%s%s", name != NULL ? name : "ctl",
	                 strcmp(scope, conf_opt.scope) != 0 ? "@" : "",
	                 strcmp(scope, conf_opt.scope) != 0 ? scope : "",
	                 strcmp(ns, conf_opt.namespace_) != 0 ? " in " : "",
	                 strcmp(ns, conf_opt.namespace_) != 0 ? ns : "");

	memset(&params, 0, sizeof(params));
	params.struct_size = sizeof(params);
	params.flags = flags;
	params.namespace_ = ns;
	params.scope = scope;
	params.name = name;
	params.ttl = conf_opt.ttl;
	params.loop_wait = conf_opt.loop_wait;
	params.retry_timeout = conf_opt.retry_timeout;
	params.options_json = conf_opt.options;
	params.user_agent = "pgkeel-conformance/" PACKAGE_VERSION;
	memset(&err, 0, sizeof(err));
	t0 = conf_now_ms();
	s = conf_plugin->init(conf_host, &params, &dcs, &err);
	if (s != PGKEEL_DCS_OK || dcs == NULL) {
		conf_err_text(&err, detail, sizeof(detail));
		conf_fail("init of the %s handle returned %s%s, expected OK (%s)", h->label,
		          conf_status_name(s), s == PGKEEL_DCS_OK ? " and no handle" : "", detail);
	}
	h->dcs = dcs;
	handles[slot] = h;
	conf_pass("init %s handle -> OK (%" PRId64 " ms)", h->label, conf_now_ms() - t0);
	return h;
}

struct conf_handle *conf_handle_open(const char *name)
{
	return conf_handle_open_in(name, name == NULL ? PGKEEL_DCS_CTL : 0, conf_opt.namespace_,
	                           conf_opt.scope);
}

void conf_handle_close(struct conf_handle *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < CONF_MAX_HANDLES; i++) {
		if (handles[i] == h)
			handles[i] = NULL;
	}
	conf_plugin->fini(h->dcs);
	free(h);
}

/* ------------------------------------------------------------------ */
/* Ops: each with a deadline, timed, checked for the basic contract     */

void conf_op_begin(struct conf_call *c, struct pgkeel_err *err, const struct conf_handle *h,
                   const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(what, sizeof(what), fmt, ap);
	va_end(ap);
	(void)pgkeel_fmt(conf_last_op.what, sizeof(conf_last_op.what), "%s %s", h->label, what);
	memset(err, 0, sizeof(*err));
	c->start = conf_now_ms();
	c->deadline = c->start + conf_op_timeout_ms;
}

enum pgkeel_dcs_status conf_op_end(const struct conf_call *c, enum pgkeel_dcs_status s,
                                   const struct pgkeel_err *err)
{
	int64_t end = conf_now_ms();

	conf_last_op.elapsed_ms = end - c->start;
	if ((int)s < PGKEEL_DCS_OK || (int)s > PGKEEL_DCS_NOMEM)
		conf_fail("%s returned %d, which is not an enum pgkeel_dcs_status",
		          conf_last_op.what, (int)s);
	if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
		conf_fail("%s left pgkeel_err.msg without a terminating NUL", conf_last_op.what);
	if (end > c->deadline + CONF_LATE_MS)
		conf_fail("%s returned %s after %" PRId64 " ms, %" PRId64
		          " ms past its deadline (an op must return by its deadline)",
		          conf_last_op.what, conf_status_name(s), conf_last_op.elapsed_ms,
		          end - c->deadline);
	return s;
}

void conf_lease_init(struct pgkeel_dcs_lease *l)
{
	memset(l, 0, sizeof(*l));
	l->struct_size = sizeof(*l);
}

void conf_lease_check(const struct pgkeel_dcs_lease *l)
{
	if (memchr(l->owner, '\0', sizeof(l->owner)) == NULL)
		conf_fail("%s left pgkeel_dcs_lease.owner without a terminating NUL",
		          conf_last_op.what);
	if (l->granted_ttl_ms < 0)
		conf_fail("%s reported granted_ttl_ms %" PRId64, conf_last_op.what,
		          l->granted_ttl_ms);
}

enum pgkeel_dcs_status conf_acquire(struct conf_handle *h, struct pgkeel_dcs_lease *l,
                                    struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct conf_call c;

	conf_op_begin(&c, err, h, "attempt_to_acquire_leader");
	conf_lease_init(l);
	s = conf_op_end(&c, conf_plugin->attempt_to_acquire_leader(h->dcs, c.deadline, l, err),
	                err);
	conf_lease_check(l);
	return s;
}

enum pgkeel_dcs_status conf_update(struct conf_handle *h, const char *leader_version,
                                   int64_t last_lsn, const char *status_json,
                                   const char *failsafe_json, struct pgkeel_dcs_lease *l,
                                   struct pgkeel_err *err)
{
	struct pgkeel_dcs_leader_update u;
	enum pgkeel_dcs_status s;
	struct conf_call c;

	memset(&u, 0, sizeof(u));
	u.struct_size = sizeof(u);
	u.leader_version = leader_version;
	u.last_lsn = last_lsn;
	u.status_json = status_json;
	u.failsafe_json = failsafe_json;
	conf_op_begin(&c, err, h, "update_leader(version %s, last_lsn %" PRId64 "%s%s)",
	              leader_version != NULL ? leader_version : "NULL", last_lsn,
	              status_json ? ", status" : "", failsafe_json ? ", failsafe" : "");
	conf_lease_init(l);
	s = conf_op_end(&c, conf_plugin->update_leader(h->dcs, &u, c.deadline, l, err), err);
	conf_lease_check(l);
	return s;
}

enum pgkeel_dcs_status conf_take(struct conf_handle *h, struct pgkeel_dcs_lease *l,
                                 struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct conf_call c;

	conf_op_begin(&c, err, h, "take_leader");
	conf_lease_init(l);
	s = conf_op_end(&c, conf_plugin->take_leader(h->dcs, c.deadline, l, err), err);
	conf_lease_check(l);
	return s;
}

enum pgkeel_dcs_status conf_delete_leader(struct conf_handle *h, const char *version,
                                          struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "delete_leader(version %s)", version != NULL ? version : "NULL");
	return conf_op_end(&c, conf_plugin->delete_leader(h->dcs, version, c.deadline, err), err);
}

enum pgkeel_dcs_status conf_touch(struct conf_handle *h, const char *json, struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "touch_member");
	return conf_op_end(&c, conf_plugin->touch_member(h->dcs, json, c.deadline, err), err);
}

enum pgkeel_dcs_status conf_initialize(struct conf_handle *h, bool create_new, const char *sysid,
                                       struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "initialize(create_new=%s, %s)", create_new ? "true" : "false",
	              sysid);
	return conf_op_end(&c, conf_plugin->initialize(h->dcs, create_new, sysid, c.deadline, err),
	                   err);
}

enum pgkeel_dcs_status conf_cancel_init(struct conf_handle *h, struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "cancel_initialization");
	return conf_op_end(&c, conf_plugin->cancel_initialization(h->dcs, c.deadline, err), err);
}

const char *const conf_cas_key[] = {"config", "failover", "sync"};

enum pgkeel_dcs_status conf_cas_write(struct conf_handle *h, enum conf_cas_kind k, const char *json,
                                      const char *expect, char *newv, size_t newv_len,
                                      struct pgkeel_err *err)
{
	static const char *const ops[] = {"set_config", "set_failover", "write_sync_state"};
	enum pgkeel_dcs_status s = PGKEEL_DCS_INVALID;
	struct conf_call c;

	conf_op_begin(&c, err, h, "%s(expect %s)", ops[k], expect != NULL ? expect : "NULL");
	switch (k) {
	case CAS_CONFIG:
		s = conf_plugin->set_config(h->dcs, json, expect, c.deadline, err);
		break;
	case CAS_FAILOVER:
		s = conf_plugin->set_failover(h->dcs, json, expect, c.deadline, err);
		break;
	case CAS_SYNC:
		if (newv != NULL)
			memset(newv, 0, newv_len);
		s = conf_plugin->write_sync_state(h->dcs, json, expect, newv, newv_len, c.deadline,
		                                  err);
		break;
	}
	s = conf_op_end(&c, s, err);
	if (newv != NULL && memchr(newv, '\0', newv_len) == NULL)
		conf_fail("%s left new_version without a terminating NUL", conf_last_op.what);
	return s;
}

enum pgkeel_dcs_status conf_delete_sync(struct conf_handle *h, const char *expect,
                                        struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "delete_sync_state(expect %s)", expect != NULL ? expect : "NULL");
	return conf_op_end(&c, conf_plugin->delete_sync_state(h->dcs, expect, c.deadline, err),
	                   err);
}

const char *const conf_plain_key[] = {"status", "history", "failsafe"};

enum pgkeel_dcs_status conf_plain(struct conf_handle *h, enum conf_plain_kind k, const char *json,
                                  struct pgkeel_err *err)
{
	static const char *const ops[] = {"write_status", "set_history", "write_failsafe"};
	enum pgkeel_dcs_status s = PGKEEL_DCS_INVALID;
	struct conf_call c;

	conf_op_begin(&c, err, h, "%s", ops[k]);
	switch (k) {
	case PLAIN_STATUS:
		s = conf_plugin->write_status(h->dcs, json, c.deadline, err);
		break;
	case PLAIN_HISTORY:
		s = conf_plugin->set_history(h->dcs, json, c.deadline, err);
		break;
	case PLAIN_FAILSAFE:
		s = conf_plugin->write_failsafe(h->dcs, json, c.deadline, err);
		break;
	}
	return conf_op_end(&c, s, err);
}

enum pgkeel_dcs_status conf_delete_cluster(struct conf_handle *h, struct pgkeel_err *err)
{
	struct conf_call c;

	conf_op_begin(&c, err, h, "delete_cluster");
	return conf_op_end(&c, conf_plugin->delete_cluster(h->dcs, c.deadline, err), err);
}

/* set_ttl and watch take no deadline: they must never block. */
enum pgkeel_dcs_status conf_nonblocking(struct conf_handle *h, bool is_watch,
                                        const char *leader_version, int ttl, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct conf_call c;

	if (is_watch)
		conf_op_begin(&c, err, h, "watch(%s)",
		              leader_version != NULL ? leader_version : "NULL");
	else
		conf_op_begin(&c, err, h, "set_ttl(%d)", ttl);
	c.deadline = c.start; /* "returns at once" */
	if (is_watch)
		s = conf_plugin->watch(h->dcs, leader_version, err);
	else
		s = conf_plugin->set_ttl(h->dcs, ttl, conf_opt.loop_wait, conf_opt.retry_timeout,
		                         err);
	return conf_op_end(&c, s, err);
}

/* The check of an op's status against the statuses allowed. */
void conf_expect(enum pgkeel_dcs_status got, unsigned want, const struct pgkeel_err *err,
                 const char *why)
{
	char want_text[64];
	char detail[400];

	conf_err_text(err, detail, sizeof(detail));
	if ((want & ST(got)) == 0) {
		mask_text(want, want_text, sizeof(want_text));
		conf_fail("%s returned %s, expected %s (%" PRId64 " ms; %s)%s%s", conf_last_op.what,
		          conf_status_name(got), want_text, conf_last_op.elapsed_ms, detail,
		          why ? ": " : "", why ? why : "");
	}
	if (got == PGKEEL_DCS_OK)
		conf_pass("%s -> OK (%" PRId64 " ms)%s%s", conf_last_op.what,
		          conf_last_op.elapsed_ms, why ? ": " : "", why ? why : "");
	else
		conf_pass("%s -> %s (%" PRId64 " ms; %s)%s%s", conf_last_op.what,
		          conf_status_name(got), conf_last_op.elapsed_ms, detail, why ? ": " : "",
		          why ? why : "");
}

/* ------------------------------------------------------------------ */
/* load_cluster into a view                                            */

static bool key_is_logical(const char *key)
{
	static const char *const fixed[] = {
	    "leader", "config",   "initialize", "status",   "optime/leader",
	    "sync",   "failover", "history",    "failsafe",
	};
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(fixed); i++) {
		if (strcmp(key, fixed[i]) == 0)
			return true;
	}
	return strncmp(key, "members/", 8) == 0 && key[8] != '\0' && strchr(key + 8, '/') == NULL;
}

static int view_cb(void *arg, const struct pgkeel_dcs_entry *e)
{
	struct conf_view *v = arg;
	struct conf_entry *r;
	size_t i;

	if (v->problem[0] == '\0') {
		if (e == NULL || e->key == NULL)
			(void)pgkeel_fmt(v->problem, sizeof(v->problem), "an entry without a key");
		else if (!key_is_logical(e->key))
			(void)pgkeel_fmt(v->problem, sizeof(v->problem),
			                 "key '%.200s' is not a logical key (leader, config, "
			                 "members/<name>, ...; relative to the cluster prefix)",
			                 e->key);
		else if (e->value == NULL && e->value_len > 0)
			(void)pgkeel_fmt(v->problem, sizeof(v->problem),
			                 "key %s: value NULL with value_len %zu", e->key,
			                 e->value_len);
	}
	if (e == NULL || e->key == NULL)
		return 0;
	for (i = 0; i < v->n; i++) {
		if (strcmp(v->e[i].key, e->key) == 0 && v->problem[0] == '\0')
			(void)pgkeel_fmt(v->problem, sizeof(v->problem),
			                 "key %s reported twice in one load", e->key);
	}
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->e = pgkeel_xreallocarray(v->e, v->cap, sizeof(*v->e));
	}
	r = &v->e[v->n++];
	r->key = pgkeel_strdup(e->key);
	r->value = pgkeel_dup_bytes(e->value != NULL ? e->value : "", e->value_len);
	r->value_len = e->value != NULL ? e->value_len : 0;
	r->version = e->version != NULL ? pgkeel_strdup(e->version) : NULL;
	r->owner = e->owner != NULL ? pgkeel_strdup(e->owner) : NULL;
	return pgkeel_cluster_builder_add(v->b, e);
}

void conf_view_free(struct conf_view *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		free(v->e[i].key);
		free(v->e[i].value);
		free(v->e[i].version);
		free(v->e[i].owner);
	}
	free(v->e);
	pgkeel_cluster_builder_free(v->b);
	pgkeel_cluster_unref(v->c);
	memset(v, 0, sizeof(*v));
}

/* load_cluster; the view is filled (and must be freed) whatever the status. */
enum pgkeel_dcs_status conf_view_try_load(struct conf_handle *h, struct conf_view *v,
                                          struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct conf_call c;

	memset(v, 0, sizeof(*v));
	v->b = pgkeel_cluster_builder_new();
	conf_op_begin(&c, err, h, "load_cluster");
	s = conf_op_end(&c, conf_plugin->load_cluster(h->dcs, c.deadline, view_cb, v, err), err);
	if (v->problem[0] != '\0')
		conf_fail("%s: %s", conf_last_op.what, v->problem);
	if (s == PGKEEL_DCS_OK)
		v->c = pgkeel_cluster_builder_finish(v->b);
	else
		pgkeel_cluster_builder_free(v->b);
	v->b = NULL;
	return s;
}

/* load_cluster, which must succeed; quiet (the checks on the view speak). */
void conf_view_load(struct conf_handle *h, struct conf_view *v)
{
	struct pgkeel_err err;
	enum pgkeel_dcs_status s = conf_view_try_load(h, v, &err);

	if (s != PGKEEL_DCS_OK)
		conf_expect(s, ST(PGKEEL_DCS_OK), &err, NULL);
}

const struct conf_entry *conf_view_get(const struct conf_view *v, const char *key)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		if (strcmp(v->e[i].key, key) == 0)
			return &v->e[i];
	}
	return NULL;
}

/* The value of `key` is exactly `want` (NULL: the key is absent). */
void conf_expect_value(const struct conf_view *v, const char *key, const char *want,
                       const char *why)
{
	const struct conf_entry *e = conf_view_get(v, key);
	char got_text[CONF_SHOW_MAX * 4 + 16];
	char want_text[CONF_SHOW_MAX * 4 + 16];

	if (want == NULL && e == NULL) {
		conf_pass("%s is absent%s%s", key, why ? ": " : "", why ? why : "");
		return;
	}
	conf_show(e ? e->value : NULL, e ? e->value_len : 0, got_text, sizeof(got_text));
	conf_show(want, want ? strlen(want) : 0, want_text, sizeof(want_text));
	if (e == NULL || want == NULL || e->value_len != strlen(want) ||
	    memcmp(e->value, want, e->value_len) != 0)
		conf_fail("load_cluster shows %s = %s, expected %s%s%s", key, got_text, want_text,
		          why ? ": " : "", why ? why : "");
	conf_pass("%s = %s (byte-identical)%s%s", key, got_text, why ? ": " : "", why ? why : "");
}

/* The version of `key`, copied; fails when the key or its version is missing. */
char *conf_view_version(const struct conf_view *v, const char *key)
{
	const struct conf_entry *e = conf_view_get(v, key);

	if (e == NULL)
		conf_fail("load_cluster does not show %s", key);
	if (e->version == NULL || e->version[0] == '\0')
		conf_fail("load_cluster shows %s without a version (the CAS token)", key);
	return pgkeel_strdup(e->version);
}

const char *conf_view_leader(const struct conf_view *v)
{
	return pgkeel_cluster_leader_name(v->c);
}

void conf_expect_leader(const struct conf_view *v, const char *name, const char *why)
{
	const char *got = conf_view_leader(v);

	if ((got == NULL) != (name == NULL) || (got != NULL && strcmp(got, name) != 0))
		conf_fail("load_cluster shows leader %s, expected %s%s%s", got ? got : "(none)",
		          name ? name : "(none)", why ? ": " : "", why ? why : "");
	conf_pass("leader is %s%s%s", name ? name : "(none)", why ? ": " : "", why ? why : "");
}

/* ------------------------------------------------------------------ */
/* main                                                                 */

static void usage(FILE *f)
{
	fprintf(f, "usage: dcs_conformance --backend-dir DIR --backend NAME [--options JSON]\n"
	           "         [--namespace /db/] --scope SCOPE [--ttl N] [--loop-wait N]\n"
	           "         [--retry-timeout N] [--slack-ms N] --scenario NAME|list\n");
}

static bool parse_int_arg(const char *name, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	if (!pgkeel_parse_int64(s, out) || *out < lo || *out > hi) {
		fprintf(stderr,
		        "dcs_conformance: %s must be an integer in %" PRId64 "..%" PRId64
		        ", not '%s'\n",
		        name, lo, hi, s);
		return false;
	}
	return true;
}

static bool parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"backend-dir", required_argument, NULL, 'd'},
	    {"backend", required_argument, NULL, 'b'},
	    {"options", required_argument, NULL, 'o'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"scope", required_argument, NULL, 's'},
	    {"ttl", required_argument, NULL, 't'},
	    {"loop-wait", required_argument, NULL, 'l'},
	    {"retry-timeout", required_argument, NULL, 'r'},
	    {"slack-ms", required_argument, NULL, 'k'},
	    {"scenario", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int64_t n;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			conf_opt.backend_dir = optarg;
			break;
		case 'b':
			conf_opt.backend = optarg;
			break;
		case 'o':
			conf_opt.options = optarg;
			break;
		case 'n':
			conf_opt.namespace_ = optarg;
			break;
		case 's':
			conf_opt.scope = optarg;
			break;
		case 'S':
			conf_opt.scenario = optarg;
			break;
		case 't':
			if (!parse_int_arg("--ttl", optarg, 1, 3600, &n))
				return false;
			conf_opt.ttl = (int)n;
			break;
		case 'l':
			if (!parse_int_arg("--loop-wait", optarg, 1, 3600, &n))
				return false;
			conf_opt.loop_wait = (int)n;
			break;
		case 'r':
			if (!parse_int_arg("--retry-timeout", optarg, 1, 3600, &n))
				return false;
			conf_opt.retry_timeout = (int)n;
			break;
		case 'k':
			if (!parse_int_arg("--slack-ms", optarg, 0, 600000, &conf_opt.slack_ms))
				return false;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	if (optind != argc || conf_opt.scenario == NULL) {
		usage(stderr);
		return false;
	}
	if (strcmp(conf_opt.scenario, "list") == 0)
		return true;
	if (conf_opt.backend_dir == NULL || conf_opt.backend == NULL || conf_opt.scope == NULL ||
	    conf_opt.scope[0] == '\0') {
		usage(stderr);
		return false;
	}
	if (conf_opt.namespace_[0] != '/' || !pgkeel_str_has_suffix(conf_opt.namespace_, "/")) {
		fprintf(stderr, "dcs_conformance: --namespace must begin and end with '/'\n");
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	const struct conf_scenario *sc = NULL;
	struct pgkeel_dcs_module mod;
	char msg[1024];
	int64_t t0;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!parse_args(argc, argv))
		return 2;
	if (strcmp(conf_opt.scenario, "list") == 0) {
		for (i = 0; i < conf_n_scenarios; i++)
			printf("%s\n", conf_scenarios[i].name);
		return 0;
	}
	for (i = 0; i < conf_n_scenarios; i++) {
		if (strcmp(conf_scenarios[i].name, conf_opt.scenario) == 0)
			sc = &conf_scenarios[i];
	}
	if (sc == NULL) {
		fprintf(stderr, "dcs_conformance: no scenario '%s' (--scenario list)\n",
		        conf_opt.scenario);
		return 2;
	}
	scenario_name = sc->name;

	conf_host = pgkeel_host_get();
	if (conf_host == NULL)
		conf_fail("the host services are not available (no eventfd)");
	if (!pgkeel_dcs_load(conf_opt.backend_dir, conf_opt.backend, &mod, msg, sizeof(msg)))
		conf_fail("loading the backend: %s", msg);
	conf_plugin = mod.plugin;
	conf_pass("loaded %s %s from %s; scope %s, namespace %s, ttl %d, loop_wait %d, "
	          "retry_timeout %d, slack %" PRId64 " ms",
	          conf_plugin->name, conf_plugin->version ? conf_plugin->version : "?", mod.path,
	          conf_opt.scope, conf_opt.namespace_, conf_opt.ttl, conf_opt.loop_wait,
	          conf_opt.retry_timeout, conf_opt.slack_ms);
	conf_pass("%s", sc->what);

	t0 = conf_now_ms();
	sc->run();
	conf_close_all();
	conf_pass("scenario passed in %" PRId64 " ms", conf_now_ms() - t0);
	return 0;
}
