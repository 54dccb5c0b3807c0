/*
 * The scenarios of the DCS conformance suite (see dcs_conformance.c and
 * conformance.h).  Each one opens its own handles, drives the backend only
 * through the ABI and checks what load_cluster shows; each must be able to
 * fail.  Timed expectations follow the parameters given (ttl, loop_wait,
 * retry_timeout, slack); every wait polls a condition with a deadline.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pgkeel/dcs.h>

#include "cluster.h"
#include "conformance.h"
#include "host.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Shared bits of the scenarios                                        */

/* A lease granted for about `ttl` seconds (a store may round up). */
static void expect_granted(const struct pgkeel_dcs_lease *l, int ttl, const char *why)
{
	int64_t want = (int64_t)ttl * 1000;
	int64_t g = l->granted_ttl_ms;

	if (g <= 0)
		conf_fail("%s reported granted_ttl_ms %" PRId64 ", expected about %" PRId64
		          " (the TTL the store granted)",
		          conf_last_op.what, g, want);
	if (g < want * 3 / 4 || g > want * 3 / 2 + 1000)
		conf_fail("%s reported granted_ttl_ms %" PRId64 ", not close to the %" PRId64
		          " asked for%s%s",
		          conf_last_op.what, g, want, why ? ": " : "", why ? why : "");
	conf_pass("granted_ttl_ms %" PRId64 " (asked %" PRId64 "), owner '%s'%s%s", g, want,
	          l->owner, why ? ": " : "", why ? why : "");
}

/* The leader's owner in the store is the lease the holder was given. */
static void expect_leader_owner(const struct conf_view *v, const struct pgkeel_dcs_lease *l)
{
	const struct pgkeel_leader *ld = v->c->leader;

	if (ld == NULL)
		conf_fail("suite bug: no leader to compare owners with");
	if (l->owner[0] == '\0' || ld->owner == NULL) {
		conf_note("owner not compared: the lease reported '%s', load_cluster reported %s",
		          l->owner, ld->owner ? ld->owner : "none");
		return;
	}
	if (strcmp(l->owner, ld->owner) != 0)
		conf_fail("the leader key is bound to owner '%s' but the holder's lease is '%s'",
		          ld->owner, l->owner);
	conf_pass("leader owner '%s' is the holder's lease", ld->owner);
}

static void status_must(enum pgkeel_dcs_status got, const struct pgkeel_err *err)
{
	conf_expect(got, ST(PGKEEL_DCS_OK), err, NULL);
}

/* A member value as Patroni 3.0.2 writes it. */
#define MEMBER_JSON(pg_port, api_port, role)                                                       \
	"{\"conn_url\":\"postgres://127.0.0.1:" pg_port "/postgres\",\"api_url\":"                 \
	"\"http://127.0.0.1:" api_port "/patroni\",\"state\":\"running\",\"role\":\"" role         \
	"\",\"version\":\"3.0.2\"}"

/* Write every kind of key of a cluster through `h` (which becomes leader). */
static void populate(struct conf_handle *h, const char *tag)
{
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	char sysid[64];
	char json[256];
	char newv[128];

	(void)pgkeel_fmt(sysid, sizeof(sysid), "7%018d", (int)strlen(tag));
	status_must(conf_initialize(h, true, sysid, &err), &err);
	(void)pgkeel_fmt(json, sizeof(json), "{\"ttl\":30,\"tag\":\"%s\"}", tag);
	status_must(conf_cas_write(h, CAS_CONFIG, json, NULL, NULL, 0, &err), &err);
	status_must(conf_acquire(h, &l, &err), &err);
	(void)pgkeel_fmt(json, sizeof(json), "{\"role\":\"primary\",\"tag\":\"%s\"}", tag);
	status_must(conf_touch(h, json, &err), &err);
	status_must(conf_plain(h, PLAIN_STATUS, "{\"optime\":1234}", &err), &err);
	status_must(
	    conf_plain(h, PLAIN_HISTORY, "[[1,1234,\"no recovery target specified\"]]", &err),
	    &err);
	status_must(
	    conf_plain(h, PLAIN_FAILSAFE, "{\"pg-a\":\"http://127.0.0.1:8008/patroni\"}", &err),
	    &err);
	status_must(conf_cas_write(h, CAS_FAILOVER, "{\"leader\":\"pg-a\"}", NULL, NULL, 0, &err),
	            &err);
	status_must(conf_cas_write(h, CAS_SYNC, "{\"leader\":\"pg-a\",\"sync_standby\":null}", NULL,
	                           newv, sizeof(newv), &err),
	            &err);
}

/* The keys populate() writes. */
static const char *const populated_keys[] = {
    "initialize", "config",   "leader",   "members/pg-a", "status",
    "history",    "failsafe", "failover", "sync",
};

static void expect_populated(const struct conf_view *v, const char *who)
{
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(populated_keys); i++) {
		if (conf_view_get(v, populated_keys[i]) == NULL)
			conf_fail("%s: load_cluster does not show %s", who, populated_keys[i]);
	}
	conf_pass("%s sees all %zu keys written (%zu entries)", who,
	          PGKEEL_ARRAY_LEN(populated_keys), v->n);
}

static void expect_empty(const struct conf_view *v, const char *who)
{
	if (v->n != 0)
		conf_fail("%s: load_cluster shows %zu entries (first: %s), expected none", who,
		          v->n, v->e[0].key);
	if (!pgkeel_cluster_is_empty(v->c))
		conf_fail("%s: the parsed cluster is not empty", who);
	conf_pass("%s sees no keys", who);
}

/* ------------------------------------------------------------------ */
/* race                                                                 */

struct racer {
	struct conf_handle *h;
	pthread_barrier_t *barrier;
	enum pgkeel_dcs_status s;
	struct pgkeel_dcs_lease lease;
	struct pgkeel_err err;
	int64_t start;
	int64_t end;
	int64_t deadline;
};

/* Two handles may be used from two threads at once (one thread per handle). */
static void *racer_main(void *arg)
{
	struct racer *r = arg;

	(void)pthread_barrier_wait(r->barrier);
	r->start = conf_now_ms();
	r->deadline = r->start + conf_op_timeout_ms;
	r->s = conf_plugin->attempt_to_acquire_leader(r->h->dcs, r->deadline, &r->lease, &r->err);
	r->end = conf_now_ms();
	return NULL;
}

static void scenario_race(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct conf_handle *ctl = conf_handle_open(NULL);
	struct racer r[2];
	pthread_barrier_t barrier;
	pthread_t th[2];
	struct pgkeel_err err;
	struct racer *win;
	struct racer *lose;
	struct conf_view v;
	char detail[400];
	char *version;
	int round;
	int i;

	for (round = 1; round <= CONF_RACE_ROUNDS; round++) {
		if (pthread_barrier_init(&barrier, NULL, 2) != 0)
			conf_fail("pthread_barrier_init failed");
		for (i = 0; i < 2; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].h = i == 0 ? a : b;
			r[i].barrier = &barrier;
			conf_lease_init(&r[i].lease);
			if (pthread_create(&th[i], NULL, racer_main, &r[i]) != 0)
				conf_fail("pthread_create failed");
		}
		for (i = 0; i < 2; i++)
			(void)pthread_join(th[i], NULL);
		(void)pthread_barrier_destroy(&barrier);
		for (i = 0; i < 2; i++) {
			(void)pgkeel_fmt(conf_last_op.what, sizeof(conf_last_op.what),
			                 "%s attempt_to_acquire_leader (round %d)", r[i].h->label,
			                 round);
			conf_last_op.elapsed_ms = r[i].end - r[i].start;
			(void)conf_op_end(&(struct conf_call){r[i].start, r[i].deadline}, r[i].s,
			                  &r[i].err);
			conf_lease_check(&r[i].lease);
		}
		if (r[0].s == PGKEEL_DCS_OK && r[1].s == PGKEEL_DCS_CONFLICT) {
			win = &r[0];
			lose = &r[1];
		} else if (r[1].s == PGKEEL_DCS_OK && r[0].s == PGKEEL_DCS_CONFLICT) {
			win = &r[1];
			lose = &r[0];
		} else {
			char d0[400];

			conf_err_text(&r[0].err, d0, sizeof(d0));
			conf_err_text(&r[1].err, detail, sizeof(detail));
			conf_fail(
			    "round %d: concurrent attempt_to_acquire_leader returned %s for %s "
			    "(%s) and %s for %s (%s); expected exactly one OK and one CONFLICT",
			    round, conf_status_name(r[0].s), a->label, d0, conf_status_name(r[1].s),
			    b->label, detail);
		}
		conf_err_text(&lose->err, detail, sizeof(detail));
		conf_pass("round %d: %s won (OK, %" PRId64 " ms), %s lost (CONFLICT, %" PRId64
		          " ms; %s)",
		          round, win->h->label, win->end - win->start, lose->h->label,
		          lose->end - lose->start, detail);

		conf_view_load(ctl, &v);
		conf_expect_leader(&v, win->h->name, "the winner holds the lock");
		expect_leader_owner(&v, &win->lease);
		version = conf_view_version(&v, "leader");
		conf_view_free(&v);

		/* Release for the next round. */
		conf_expect(conf_delete_leader(win->h, version, &err), ST(PGKEEL_DCS_OK), &err,
		            "the holder releases the lock");
		free(version);
		conf_view_load(ctl, &v);
		conf_expect_leader(&v, NULL, "released");
		conf_view_free(&v);
	}
}

/* ------------------------------------------------------------------ */
/* expiry                                                               */

/*
 * Poll `watcher` until the leader key is gone; fails if somebody other than
 * `holder` appears or the deadline passes.  Returns when it went.
 */
static int64_t wait_leader_gone(struct conf_handle *watcher, const char *holder, int64_t limit,
                                char **last_version)
{
	struct conf_view v;
	const char *l;

	for (;;) {
		conf_view_load(watcher, &v);
		l = conf_view_leader(&v);
		if (l == NULL) {
			conf_view_free(&v);
			return conf_now_ms();
		}
		if (strcmp(l, holder) != 0)
			conf_fail(
			    "load_cluster shows leader %s while waiting for %s's lock to expire", l,
			    holder);
		if (last_version != NULL) {
			free(*last_version);
			*last_version = conf_view_version(&v, "leader");
		}
		conf_view_free(&v);
		if (conf_now_ms() >= limit)
			return -1;
		conf_sleep_until(conf_min64(conf_now_ms() + CONF_POLL_MS, limit));
	}
}

static void scenario_expiry(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct pgkeel_dcs_lease la;
	struct pgkeel_dcs_lease lb;
	struct pgkeel_err err;
	char *a_version = NULL;
	char *b_version;
	struct conf_view v;
	int64_t ttl_ms = (int64_t)conf_opt.ttl * 1000;
	int64_t t_acq;
	int64_t limit;
	int64_t gone;

	t_acq = conf_now_ms();
	conf_expect(conf_acquire(a, &la, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	/* Nothing is called on a's handle from here until its update_leader below. */
	limit = t_acq + (la.granted_ttl_ms > ttl_ms ? la.granted_ttl_ms : ttl_ms) +
	        2 * (int64_t)conf_opt.retry_timeout * 1000 + conf_opt.slack_ms;
	gone = wait_leader_gone(b, a->name, limit, &a_version);
	if (gone < 0)
		conf_fail(
		    "pg-a's leader key still there %" PRId64 " ms after it was acquired and never "
		    "renewed (limit: ttl %d s + 2 * retry_timeout %d s + slack %" PRId64 " ms)",
		    conf_now_ms() - t_acq, conf_opt.ttl, conf_opt.retry_timeout, conf_opt.slack_ms);
	if (gone - t_acq < ttl_ms - 1000)
		conf_fail("pg-a's leader key vanished after %" PRId64
		          " ms, well before its ttl of %d s",
		          gone - t_acq, conf_opt.ttl);
	conf_pass("pg-a's unrenewed lock expired after %" PRId64 " ms (ttl %d s, limit %" PRId64
	          " ms)",
	          gone - t_acq, conf_opt.ttl, limit - t_acq);
	if (a_version == NULL)
		conf_fail("suite bug: never saw pg-a's leader version");

	conf_expect(conf_acquire(b, &lb, &err), ST(PGKEEL_DCS_OK), &err, "the lock is free");
	conf_view_load(b, &v);
	b_version = conf_view_version(&v, "leader");
	conf_view_free(&v);

	/* The old holder comes back: it must learn it lost, not take the lock back. */
	conf_expect(conf_update(a, a_version, -1, NULL, NULL, &la, &err), ST(PGKEEL_DCS_CONFLICT),
	            &err, "the expired holder renews with the version it last saw");
	conf_expect(conf_update(a, NULL, -1, NULL, NULL, &la, &err), ST(PGKEEL_DCS_CONFLICT), &err,
	            "the expired holder renews without a version");
	conf_view_load(b, &v);
	conf_expect_leader(&v, b->name, "after pg-a's renewal attempts");
	expect_leader_owner(&v, &lb);
	conf_view_free(&v);

	/* Releasing what it no longer holds must not remove pg-b's key. */
	conf_expect(conf_delete_leader(a, NULL, &err), ST(PGKEEL_DCS_OK) | ST(PGKEEL_DCS_CONFLICT),
	            &err, "not the holder");
	conf_expect(conf_delete_leader(a, a_version, &err),
	            ST(PGKEEL_DCS_OK) | ST(PGKEEL_DCS_CONFLICT), &err,
	            "not the holder, its old version");
	conf_expect(conf_delete_leader(a, b_version, &err),
	            ST(PGKEEL_DCS_OK) | ST(PGKEEL_DCS_CONFLICT), &err,
	            "not the holder, the current version");
	conf_view_load(b, &v);
	conf_expect_leader(&v, b->name, "pg-a's delete_leader left pg-b's key");
	conf_view_free(&v);
	free(a_version);
	free(b_version);
}

/* ------------------------------------------------------------------ */
/* lease, ttl: renewals every loop_wait while another member watches    */

/*
 * `holder` renews every loop_wait until `until`; `watcher` loads every poll
 * and must always see `holder` as leader.  Returns the start time of the last
 * renewal.
 */
static int64_t renew_until(struct conf_handle *holder, struct conf_handle *watcher, int ttl,
                           int64_t first_renewal, int64_t until)
{
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	char *version = NULL;
	int64_t next = first_renewal;
	int64_t last = -1;
	int renewals = 0;
	struct conf_view v;
	int64_t now;

	for (;;) {
		conf_view_load(watcher, &v);
		if (conf_view_leader(&v) == NULL || strcmp(conf_view_leader(&v), holder->name) != 0)
			conf_fail("%s sees leader %s while %s renews every %d s (ttl %d s)",
			          watcher->label,
			          conf_view_leader(&v) ? conf_view_leader(&v) : "(none)",
			          holder->label, conf_opt.loop_wait, ttl);
		free(version);
		version = conf_view_version(&v, "leader");
		conf_view_free(&v);
		now = conf_now_ms();
		if (now >= until)
			break;
		if (now >= next) {
			last = conf_now_ms();
			conf_expect(conf_update(holder, version, -1, NULL, NULL, &l, &err),
			            ST(PGKEEL_DCS_OK), &err, "renewal by the holder");
			expect_granted(&l, ttl, NULL);
			renewals++;
			next += (int64_t)conf_opt.loop_wait * 1000;
			continue;
		}
		conf_sleep_until(conf_min64(conf_min64(now + CONF_POLL_MS * 2, next), until));
	}
	free(version);
	if (renewals < 2)
		conf_fail("suite bug: only %d renewals", renewals);
	conf_pass("%s kept the lock through %d renewals every %d s (ttl %d s)", holder->label,
	          renewals, conf_opt.loop_wait, ttl);
	return last;
}

static void scenario_lease(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	int64_t t_acq;
	int64_t end;

	t_acq = conf_now_ms();
	conf_expect(conf_acquire(a, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	expect_granted(&l, conf_opt.ttl, "the acquired lease");
	end = t_acq + (int64_t)(conf_opt.ttl + conf_opt.loop_wait) * 1000 + 500;
	(void)renew_until(a, b, conf_opt.ttl, t_acq + (int64_t)conf_opt.loop_wait * 1000, end);
	conf_pass("lock held for %" PRId64 " ms > ttl %d s", conf_now_ms() - t_acq, conf_opt.ttl);
}

static void scenario_ttl(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	int new_ttl = conf_opt.ttl / 2;
	struct conf_view v;
	int64_t t_acq;
	int64_t last;
	int64_t gone;
	int64_t limit;
	char why[128];
	char *lv;

	if (conf_opt.ttl < 4)
		conf_fail(
		    "the ttl scenario needs --ttl >= 4 (got %d): with less the new ttl (ttl/2) "
		    "cannot be told from the old one by the time the lock expires",
		    conf_opt.ttl);
	t_acq = conf_now_ms();
	conf_expect(conf_acquire(a, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	expect_granted(&l, conf_opt.ttl, "the acquired lease");

	conf_expect(conf_nonblocking(a, false, NULL, new_ttl, &err), ST(PGKEEL_DCS_OK), &err,
	            "a smaller ttl");
	conf_view_load(b, &v);
	conf_expect_leader(&v, a->name, "set_ttl alone changes nothing in the store");
	conf_view_free(&v);

	conf_view_load(b, &v);
	lv = conf_view_version(&v, "leader");
	conf_view_free(&v);
	conf_expect(conf_update(a, lv, -1, NULL, NULL, &l, &err), ST(PGKEEL_DCS_OK), &err,
	            "the first renewal after set_ttl");
	free(lv);
	(void)pgkeel_fmt(why, sizeof(why), "the lease renewed after set_ttl(%d)", new_ttl);
	expect_granted(&l, new_ttl, why);
	if (l.granted_ttl_ms >= (int64_t)conf_opt.ttl * 1000)
		conf_fail("granted_ttl_ms %" PRId64
		          " after set_ttl(%d) is not below the old ttl of %d s",
		          l.granted_ttl_ms, new_ttl, conf_opt.ttl);

	/* Renew past the old ttl: the key must be bound to whatever is renewed now. */
	last = renew_until(a, b, new_ttl, conf_now_ms() + (int64_t)conf_opt.loop_wait * 1000,
	                   t_acq + (int64_t)(conf_opt.ttl + conf_opt.loop_wait) * 1000 + 500);
	conf_pass("renewals with ttl %d kept the lock past the old ttl of %d s", new_ttl,
	          conf_opt.ttl);

	limit = last + (int64_t)new_ttl * 1000 + conf_opt.slack_ms;
	gone = wait_leader_gone(b, a->name, limit, NULL);
	if (gone < 0)
		conf_fail("the lock still there %" PRId64 " ms after the last renewal with ttl %d "
		          "(limit: new ttl + slack %" PRId64 " ms; the old ttl was %d)",
		          conf_now_ms() - last, new_ttl, conf_opt.slack_ms, conf_opt.ttl);
	if (gone - last < (int64_t)new_ttl * 1000 - 1000)
		conf_fail("the lock vanished %" PRId64
		          " ms after the last renewal, well before the "
		          "new ttl of %d s",
		          gone - last, new_ttl);
	conf_pass("the lock expired %" PRId64 " ms after the last renewal (new ttl %d s, old %d s)",
	          gone - last, new_ttl, conf_opt.ttl);
}

/* ------------------------------------------------------------------ */
/* cas                                                                  */

static void cas_one(struct conf_handle *h, struct conf_handle *reader, enum conf_cas_kind k,
                    const char *const val[4])
{
	const char *key = conf_cas_key[k];
	char nv[4][128]; /* new_version of each sync write */
	struct pgkeel_err err;
	char *v1;
	char *v2;
	char *v3;
	struct conf_view v;
	bool sync = k == CAS_SYNC;
	const struct conf_entry *e;
	size_t nvlen = sync ? sizeof(nv[0]) : 0;

	memset(nv, 0, sizeof(nv));
	conf_expect(conf_cas_write(h, k, val[0], NULL, sync ? nv[0] : NULL, nvlen, &err),
	            ST(PGKEEL_DCS_OK), &err, "unconditional");
	conf_view_load(reader, &v);
	conf_expect_value(&v, key, val[0], NULL);
	v1 = conf_view_version(&v, key);
	conf_view_free(&v);
	if (sync && strcmp(nv[0], v1) != 0)
		conf_note("write_sync_state reported new_version '%s', load_cluster shows '%s'",
		          nv[0], v1);

	if (strcmp(v1, "1") != 0) {
		conf_expect(conf_cas_write(h, k, val[3], "1", sync ? nv[3] : NULL, nvlen, &err),
		            ST(PGKEEL_DCS_CONFLICT), &err, "a made-up version");
		conf_view_load(reader, &v);
		conf_expect_value(&v, key, val[0], "the lost CAS changed nothing");
		conf_view_free(&v);
	}

	conf_expect(conf_cas_write(h, k, val[1], v1, sync ? nv[1] : NULL, nvlen, &err),
	            ST(PGKEEL_DCS_OK), &err, "the current version");
	conf_expect(conf_cas_write(h, k, val[3], v1, sync ? nv[3] : NULL, nvlen, &err),
	            ST(PGKEEL_DCS_CONFLICT), &err, "the version before the last write");
	conf_view_load(reader, &v);
	conf_expect_value(&v, key, val[1], "the lost CAS changed nothing");
	v2 = conf_view_version(&v, key);
	conf_view_free(&v);
	if (strcmp(v1, v2) == 0)
		conf_fail("%s kept version '%s' across a write", key, v1);
	if (sync && strcmp(nv[1], v2) != 0)
		conf_note("write_sync_state reported new_version '%s', load_cluster shows '%s'",
		          nv[1], v2);

	/* Sync: the reported new_version is the next expected version. */
	conf_expect(
	    conf_cas_write(h, k, val[2], sync ? nv[1] : v2, sync ? nv[2] : NULL, nvlen, &err),
	    ST(PGKEEL_DCS_OK), &err,
	    sync ? "the new_version the last write reported" : "the version just loaded");
	conf_view_load(reader, &v);
	conf_expect_value(&v, key, val[2], NULL);
	v3 = conf_view_version(&v, key);
	conf_view_free(&v);

	if (sync) {
		conf_expect(conf_delete_sync(h, v1, &err), ST(PGKEEL_DCS_CONFLICT), &err,
		            "a stale version");
		conf_view_load(reader, &v);
		conf_expect_value(&v, key, val[2], "the lost delete changed nothing");
		conf_view_free(&v);
		conf_expect(conf_delete_sync(h, nv[2], &err), ST(PGKEEL_DCS_OK), &err,
		            "the new_version the last write reported");
		conf_view_load(reader, &v);
		e = conf_view_get(&v, key);
		if (e != NULL && e->value_len != 0 && strcmp(e->value, "{}") != 0) {
			char shown[CONF_SHOW_MAX * 4 + 16];

			conf_show(e->value, e->value_len, shown, sizeof(shown));
			conf_fail(
			    "after delete_sync_state, sync = %s (expected absent, empty or {})",
			    shown);
		}
		if (v.c->sync.leader != NULL)
			conf_fail("after delete_sync_state the parsed sync state names leader %s",
			          v.c->sync.leader);
		conf_pass("sync is %s after delete_sync_state", e == NULL ? "absent" : "empty");
		conf_view_free(&v);
		conf_expect(conf_cas_write(h, k, val[3], v3, nv[3], nvlen, &err),
		            ST(PGKEEL_DCS_CONFLICT), &err, "the version of the deleted sync state");
	}
	free(v1);
	free(v2);
	free(v3);
}

static void scenario_cas(void)
{
	static const char *const config[4] = {
	    "{\"ttl\":30,\"loop_wait\":10,\"retry_timeout\":10,\"maximum_lag_on_failover\":"
	    "1048576}",
	    "{\"ttl\":30,\"loop_wait\":10,\"postgresql\":{\"parameters\":{\"max_connections\":"
	    "100},\"use_pg_rewind\":true}}",
	    "{\"ttl\":20, \"loop_wait\": 5,\n \"check_timeline\": false}",
	    "{\"written\":\"by the loser\"}",
	};
	static const char *const failover[4] = {
	    "{\"leader\":\"pg-a\",\"member\":\"pg-b\"}",
	    "{\"leader\":\"pg-a\"}",
	    "{\"member\":\"pg-b\",\"scheduled_at\":\"2030-01-01T00:00:00+00:00\"}",
	    "{\"leader\":\"loser\"}",
	};
	static const char *const sync[4] = {
	    "{\"leader\":\"pg-a\",\"sync_standby\":\"pg-b\"}",
	    "{\"leader\":\"pg-a\",\"sync_standby\":null}",
	    "{\"leader\":\"pg-a\",\"sync_standby\":\"pg-b,pg-c\"}",
	    "{\"leader\":\"loser\",\"sync_standby\":null}",
	};
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");

	cas_one(a, b, CAS_CONFIG, config);
	cas_one(b, a, CAS_FAILOVER, failover);
	cas_one(a, b, CAS_SYNC, sync);
}

/* ------------------------------------------------------------------ */
/* initialize                                                           */

static void scenario_initialize(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct pgkeel_err err;
	struct conf_view v;

	conf_expect(conf_initialize(a, true, "7000000000000000001", &err), ST(PGKEEL_DCS_OK), &err,
	            "create-if-absent on a new cluster");
	conf_expect(conf_initialize(b, true, "7000000000000000002", &err), ST(PGKEEL_DCS_CONFLICT),
	            &err, "create-if-absent when present");
	conf_view_load(b, &v);
	conf_expect_value(&v, "initialize", "7000000000000000001", "the first one stays");
	conf_view_free(&v);
	conf_expect(conf_initialize(b, false, "7000000000000000003", &err), ST(PGKEEL_DCS_OK), &err,
	            "plain set overwrites");
	conf_view_load(a, &v);
	conf_expect_value(&v, "initialize", "7000000000000000003", NULL);
	if (v.c->initialize == NULL || strcmp(v.c->initialize, "7000000000000000003") != 0)
		conf_fail("the parsed cluster shows initialize %s",
		          v.c->initialize ? v.c->initialize : "(absent)");
	conf_view_free(&v);
	conf_expect(conf_cancel_init(a, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(b, &v);
	conf_expect_value(&v, "initialize", NULL, "after cancel_initialization");
	conf_view_free(&v);
	conf_expect(conf_initialize(b, true, "7000000000000000004", &err), ST(PGKEEL_DCS_OK), &err,
	            "create-if-absent after cancel");
	conf_view_load(a, &v);
	conf_expect_value(&v, "initialize", "7000000000000000004", NULL);
	conf_view_free(&v);
}

/* ------------------------------------------------------------------ */
/* members                                                              */

static void scenario_members(void)
{
	static const char ja1[] = MEMBER_JSON("5432", "8008", "primary");
	static const char ja2[] = "{\"conn_url\":\"postgres://127.0.0.1:5432/postgres\","
	                          "\"api_url\":\"http://127.0.0.1:8008/patroni\",\"state\":"
	                          "\"stopped\",\"role\":\"uninitialized\",\"version\":\"3.0.2\","
	                          "\"tags\":{\"nofailover\":true,\"note\":\"\xc3\xbc \\\"q\\\"\"}}";
	static const char jb1[] = MEMBER_JSON("5433", "8009", "replica");
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	const struct pgkeel_member *ma;
	const struct pgkeel_member *mb;
	struct pgkeel_err err;
	int64_t next_touch;
	int64_t t_a_last;
	int64_t gone = -1;
	int64_t limit;
	int64_t until;
	struct conf_view v;

	conf_expect(conf_touch(a, ja1, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_expect(conf_touch(b, jb1, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	/*
	 * pg-b renews every loop_wait, half a period out of phase with its
	 * first touch: if touches did not refresh its liveness, the key would
	 * expire between two touches (ttl after the first) and a poll would
	 * see it gone, rather than a touch recreating it at that very moment.
	 */
	next_touch = conf_now_ms() + (int64_t)conf_opt.loop_wait * 500;
	conf_view_load(b, &v);
	conf_expect_value(&v, "members/pg-a", ja1, NULL);
	conf_expect_value(&v, "members/pg-b", jb1, NULL);
	ma = pgkeel_cluster_get_member(v.c, "pg-a");
	mb = pgkeel_cluster_get_member(v.c, "pg-b");
	if (ma == NULL || mb == NULL || ma->malformed || mb->malformed)
		conf_fail("the parsed cluster lacks a well-formed pg-a or pg-b");
	if ((ma->owner == NULL) != (mb->owner == NULL))
		conf_fail("one member key has an owner (%s) and the other not (%s)",
		          ma->owner ? ma->owner : "none", mb->owner ? mb->owner : "none");
	if (ma->owner == NULL) {
		conf_note("the backend reports no owner on member keys");
	} else {
		if (strcmp(ma->owner, mb->owner) == 0)
			conf_fail(
			    "pg-a and pg-b have the same owner '%s' (two handles, two leases)",
			    ma->owner);
		conf_pass("member owners: pg-a '%s', pg-b '%s'", ma->owner, mb->owner);
	}
	conf_view_free(&v);

	t_a_last = conf_now_ms();
	conf_expect(conf_touch(a, ja2, &err), ST(PGKEEL_DCS_OK), &err, "a new value");
	conf_view_load(b, &v);
	conf_expect_value(&v, "members/pg-a", ja2, "updated");
	conf_expect_value(&v, "members/pg-b", jb1, "unchanged");
	conf_view_free(&v);

	/* pg-a goes away without a word; pg-b goes on. */
	conf_handle_close(a);
	conf_pass("pg-a's handle finished (fini, no delete)");
	limit = t_a_last + (int64_t)conf_opt.ttl * 1000 + conf_opt.slack_ms;
	until = -1;
	for (;;) {
		if (conf_now_ms() >= next_touch) {
			conf_expect(conf_touch(b, jb1, &err), ST(PGKEEL_DCS_OK), &err,
			            "pg-b's renewal");
			next_touch += (int64_t)conf_opt.loop_wait * 1000;
		}
		conf_view_load(b, &v);
		if (conf_view_get(&v, "members/pg-b") == NULL)
			conf_fail("pg-b's member key vanished %" PRId64
			          " ms after pg-a's last touch "
			          "although pg-b touches every %d s",
			          conf_now_ms() - t_a_last, conf_opt.loop_wait);
		if (gone < 0 && conf_view_get(&v, "members/pg-a") == NULL) {
			gone = conf_now_ms();
			conf_pass("pg-a's member key vanished %" PRId64 " ms after its last touch "
			          "(ttl %d s, limit %" PRId64 " ms)",
			          gone - t_a_last, conf_opt.ttl, limit - t_a_last);
			until = gone + (int64_t)conf_opt.loop_wait * 1000;
		}
		conf_view_free(&v);
		if (gone < 0 && conf_now_ms() >= limit)
			conf_fail("pg-a's member key still there %" PRId64
			          " ms after its handle's last "
			          "touch and fini (ttl %d s + slack %" PRId64 " ms)",
			          conf_now_ms() - t_a_last, conf_opt.ttl, conf_opt.slack_ms);
		if (gone >= 0 && conf_now_ms() >= until)
			break;
		conf_sleep_until(conf_min64(conf_now_ms() + CONF_POLL_MS, next_touch));
	}
	conf_pass("pg-b's member key stayed while pg-b touched every %d s", conf_opt.loop_wait);
}

/* ------------------------------------------------------------------ */
/* watch                                                                */

static void event_text(uint32_t ev, char *buf, size_t len)
{
	(void)pgkeel_fmt(
	    buf, len, "0x%x%s%s%s%s%s", ev, ev & PGKEEL_EVENT_LEADER ? " LEADER" : "",
	    ev & PGKEEL_EVENT_CONFIG ? " CONFIG" : "", ev & PGKEEL_EVENT_STATUS ? " STATUS" : "",
	    ev & PGKEEL_EVENT_SESSION ? " SESSION" : "", ev & PGKEEL_EVENT_OTHER ? " OTHER" : "");
}

static void scenario_watch(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct conf_handle *c = conf_handle_open("pg-c");
	int efd = pgkeel_host_event_fd();
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	char *lv;
	char *lv2;
	struct conf_view v;
	char text[96];
	uint32_t ev;
	int64_t t0;

	if (efd < 0)
		conf_fail("the host has no event fd");
	conf_expect(conf_acquire(a, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(b, &v);
	lv = conf_view_version(&v, "leader");
	conf_view_free(&v);

	(void)pgkeel_host_take_events();
	conf_expect(conf_nonblocking(b, true, lv, 0, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	if (conf_wait_readable(efd, conf_now_ms() + CONF_QUIET_MS)) {
		ev = pgkeel_host_take_events();
		event_text(ev, text, sizeof(text));
		conf_fail("pg-b was woken (events %s) although nothing changed", text);
	}
	conf_pass("no wake-up for %d ms while nothing changed", CONF_QUIET_MS);

	t0 = conf_now_ms();
	conf_expect(conf_delete_leader(a, lv, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_expect(conf_acquire(c, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	if (!conf_wait_readable(efd, t0 + CONF_WAKE_MS))
		conf_fail("pg-b not woken within %d ms of the leader change", CONF_WAKE_MS);
	ev = pgkeel_host_take_events();
	event_text(ev, text, sizeof(text));
	if ((ev & PGKEEL_EVENT_LEADER) == 0)
		conf_fail("pg-b woken %" PRId64
		          " ms after the leader change with events %s, without "
		          "LEADER",
		          conf_now_ms() - t0, text);
	conf_pass("pg-b woken %" PRId64 " ms after the leader change, events %s",
	          conf_now_ms() - t0, text);

	/* A config change with the leader unchanged: CONFIG (soft). */
	conf_view_load(b, &v);
	lv2 = conf_view_version(&v, "leader");
	conf_view_free(&v);
	(void)pgkeel_host_take_events();
	conf_expect(conf_nonblocking(b, true, lv2, 0, &err), ST(PGKEEL_DCS_OK), &err, "re-armed");
	t0 = conf_now_ms();
	conf_expect(conf_cas_write(a, CAS_CONFIG, "{\"ttl\":30}", NULL, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, NULL);
	if (conf_wait_readable(efd, t0 + CONF_WAKE_MS)) {
		ev = pgkeel_host_take_events();
		event_text(ev, text, sizeof(text));
		if (ev & PGKEEL_EVENT_CONFIG)
			conf_pass("pg-b woken %" PRId64 " ms after a config change, events %s",
			          conf_now_ms() - t0, text);
		else
			conf_note("pg-b woken %" PRId64 " ms after a config change with events %s, "
			          "without CONFIG",
			          conf_now_ms() - t0, text);
	} else {
		conf_note(
		    "pg-b not woken within %d ms of a config change (the leader did not change)",
		    CONF_WAKE_MS);
	}

	/* Armed with a version that is already stale: wake at once (soft). */
	(void)pgkeel_host_take_events();
	t0 = conf_now_ms();
	conf_expect(conf_nonblocking(b, true, lv, 0, &err), ST(PGKEEL_DCS_OK), &err,
	            "armed with a stale leader version");
	if (conf_wait_readable(efd, t0 + CONF_WAKE_MS)) {
		ev = pgkeel_host_take_events();
		event_text(ev, text, sizeof(text));
		conf_pass("woken %" PRId64 " ms after arming with a stale version, events %s",
		          conf_now_ms() - t0, text);
	} else {
		conf_note("not woken within %d ms of arming with a stale leader version",
		          CONF_WAKE_MS);
	}
	free(lv);
	free(lv2);
}

/* ------------------------------------------------------------------ */
/* plain                                                                */

static void scenario_plain(void)
{
	static const char *const first[3] = {
	    "{\"optime\":67108960,\"slots\":{\"pg_b\":67108960}}",
	    "[[1,25165984,\"no recovery target specified\",\"2024-01-01T00:00:00+00:00\","
	    "\"pg-a\"]]",
	    "{\"pg-a\":\"http://127.0.0.1:8008/patroni\",\"pg-b\":\"http://127.0.0.1:8009/"
	    "patroni\"}",
	};
	static const char *const second[3] = {
	    "{\n  \"optime\": 83886176,\n  \"slots\": {}\n}",
	    "[[1,25165984,\"no recovery target specified\"],[2,50331744,\"caf\xc3\xa9 "
	    "\\\"quoted\\\" \\u00e9\",\"2024-01-02T00:00:00+00:00\",\"pg-b\"]]",
	    "{}",
	};
	static const char status3[] = "{\"optime\":100663392,\"slots\":{\"pg_b\":100663392}}";
	static const char failsafe3[] = "{\"pg-a\":\"http://127.0.0.1:8008/patroni\"}";
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *b = conf_handle_open("pg-b");
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	struct conf_view v;
	char *lv;
	int k;

	conf_expect(conf_acquire(a, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	for (k = 0; k < 3; k++)
		conf_expect(conf_plain(a, (enum conf_plain_kind)k, first[k], &err),
		            ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(b, &v);
	for (k = 0; k < 3; k++)
		conf_expect_value(&v, conf_plain_key[k], first[k], NULL);
	if (v.c->status.last_lsn != 67108960 || pgkeel_cluster_timeline(v.c) != 2)
		conf_fail("parsed: last_lsn %" PRId64 " timeline %" PRId64
		          ", expected 67108960 and 2",
		          v.c->status.last_lsn, pgkeel_cluster_timeline(v.c));
	conf_view_free(&v);
	for (k = 0; k < 3; k++)
		conf_expect(conf_plain(b, (enum conf_plain_kind)k, second[k], &err),
		            ST(PGKEEL_DCS_OK), &err, "overwrite");
	conf_view_load(a, &v);
	for (k = 0; k < 3; k++)
		conf_expect_value(&v, conf_plain_key[k], second[k], NULL);
	lv = conf_view_version(&v, "leader");
	conf_view_free(&v);

	/* update_leader carries status and failsafe. */
	conf_expect(conf_update(a, lv, 100663392, status3, failsafe3, &l, &err), ST(PGKEEL_DCS_OK),
	            &err, NULL);
	conf_view_load(b, &v);
	conf_expect_value(&v, "status", status3, "written by update_leader");
	conf_expect_value(&v, "failsafe", failsafe3, "written by update_leader");
	conf_view_free(&v);
	conf_expect(conf_update(a, lv, -1, NULL, NULL, &l, &err), ST(PGKEEL_DCS_OK), &err,
	            "last_lsn < 0, no status, no failsafe");
	conf_view_load(b, &v);
	conf_expect_value(&v, "status", status3, "not rewritten");
	conf_expect_value(&v, "failsafe", failsafe3, "not rewritten");
	conf_view_free(&v);
	conf_expect(conf_update(a, lv, 117440608, NULL, NULL, &l, &err), ST(PGKEEL_DCS_OK), &err,
	            "last_lsn only");
	conf_view_load(b, &v);
	if (v.c->status.last_lsn == 117440608)
		conf_pass("last_lsn 117440608 reached the leader's status");
	else
		conf_note(
		    "update_leader(last_lsn 117440608, no status_json) left last_lsn %" PRId64,
		    v.c->status.last_lsn);
	conf_expect_value(&v, "failsafe", failsafe3, "not rewritten");
	conf_view_free(&v);

	if (conf_plugin->write_leader_optime != NULL) {
		struct conf_call c;

		conf_op_begin(&c, &err, a, "write_leader_optime(134217824)");
		conf_expect(conf_op_end(&c,
		                        conf_plugin->write_leader_optime(a->dcs, 134217824,
		                                                         c.deadline, &err),
		                        &err),
		            ST(PGKEEL_DCS_OK), &err, NULL);
		conf_view_load(b, &v);
		if (v.c->status.optime_leader != 134217824)
			conf_fail(
			    "after write_leader_optime(134217824) optime/leader parses as %" PRId64,
			    v.c->status.optime_leader);
		conf_pass("optime/leader is 134217824");
		conf_view_free(&v);
	} else {
		conf_note("write_leader_optime is not provided (optional)");
	}
	free(lv);
}

/* ------------------------------------------------------------------ */
/* ctl                                                                  */

static void scenario_ctl(void)
{
	struct conf_handle *ctl = conf_handle_open(NULL);
	struct conf_handle *a = conf_handle_open("pg-a");
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	struct conf_view v;
	char *v1;
	char *v2;

	conf_view_load(ctl, &v);
	expect_empty(&v, "ctl on a new cluster");
	conf_view_free(&v);
	conf_expect(conf_cas_write(ctl, CAS_CONFIG, "{\"ttl\":30}", NULL, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, "ctl, unconditional");
	conf_view_load(ctl, &v);
	conf_expect_value(&v, "config", "{\"ttl\":30}", NULL);
	v1 = conf_view_version(&v, "config");
	conf_view_free(&v);
	conf_expect(conf_cas_write(ctl, CAS_CONFIG, "{\"ttl\":40}", v1, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, "ctl, CAS on the version read");
	conf_expect(conf_cas_write(ctl, CAS_CONFIG, "{\"ttl\":50}", v1, NULL, 0, &err),
	            ST(PGKEEL_DCS_CONFLICT), &err, "ctl, stale version");
	conf_view_load(a, &v);
	conf_expect_value(&v, "config", "{\"ttl\":40}", "a member sees ctl's write");
	v2 = conf_view_version(&v, "config");
	conf_view_free(&v);
	conf_expect(conf_cas_write(ctl, CAS_FAILOVER, "{\"leader\":\"pg-a\",\"member\":\"pg-b\"}",
	                           NULL, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, "ctl schedules a switchover");

	/* The lease-bound ops. */
	conf_expect(conf_acquire(ctl, &l, &err), ST(PGKEEL_DCS_INVALID), &err, "ctl has no lease");
	conf_expect(conf_update(ctl, NULL, 1, NULL, NULL, &l, &err), ST(PGKEEL_DCS_INVALID), &err,
	            "ctl has no lease");
	conf_expect(conf_take(ctl, &l, &err), ST(PGKEEL_DCS_INVALID), &err, "ctl has no lease");
	conf_expect(conf_delete_leader(ctl, NULL, &err), ST(PGKEEL_DCS_INVALID), &err,
	            "ctl has no lease");
	conf_expect(conf_touch(ctl, "{\"role\":\"replica\"}", &err), ST(PGKEEL_DCS_INVALID), &err,
	            "ctl is no member");
	conf_expect(conf_nonblocking(ctl, true, NULL, 0, &err), ST(PGKEEL_DCS_INVALID), &err,
	            "ctl does not watch");
	conf_view_load(a, &v);
	conf_expect_leader(&v, NULL, "ctl's refused ops wrote nothing");
	if (v.c->n_members != 0)
		conf_fail("a member key appeared: %s", v.c->members[0].name);
	conf_expect_value(&v, "config", "{\"ttl\":40}", NULL);
	conf_view_free(&v);

	/* A ctl read sees a member's lock; ctl's CAS still works next to it. */
	conf_expect(conf_acquire(a, &l, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(ctl, &v);
	conf_expect_leader(&v, a->name, "seen by ctl");
	conf_view_free(&v);
	conf_expect(conf_cas_write(ctl, CAS_CONFIG, "{\"ttl\":60}", v2, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, "ctl, CAS on the current version");
	free(v1);
	free(v2);
}

/* ------------------------------------------------------------------ */
/* delete_cluster, namespace                                            */

static void view_same(const struct conf_view *before, const struct conf_view *after,
                      const char *who)
{
	const struct conf_entry *e;
	size_t i;

	if (before->n != after->n)
		conf_fail("%s: %zu entries before, %zu after", who, before->n, after->n);
	for (i = 0; i < before->n; i++) {
		e = conf_view_get(after, before->e[i].key);
		if (e == NULL || e->value_len != before->e[i].value_len ||
		    memcmp(e->value, before->e[i].value, e->value_len) != 0)
			conf_fail("%s: %s changed or vanished", who, before->e[i].key);
	}
	conf_pass("%s: all %zu keys unchanged", who, before->n);
}

static void scenario_delete_cluster(void)
{
	char other[256];
	struct conf_handle *a;
	struct conf_handle *a2;
	struct conf_handle *ctl;
	struct conf_handle *ctl2;
	struct pgkeel_err err;
	struct conf_view before;
	struct conf_view v;

	if (!pgkeel_fmt(other, sizeof(other), "%s-other", conf_opt.scope))
		conf_fail("scope too long");
	a = conf_handle_open("pg-a");
	a2 = conf_handle_open_in("pg-a", 0, conf_opt.namespace_, other);
	ctl = conf_handle_open(NULL);
	ctl2 = conf_handle_open_in(NULL, PGKEEL_DCS_CTL, conf_opt.namespace_, other);
	populate(a, "mine");
	populate(a2, "other");
	conf_view_load(ctl, &v);
	expect_populated(&v, ctl->label);
	conf_view_free(&v);
	conf_view_load(ctl2, &before);
	expect_populated(&before, ctl2->label);

	conf_expect(conf_delete_cluster(ctl, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(ctl, &v);
	expect_empty(&v, ctl->label);
	conf_view_free(&v);
	conf_view_load(a, &v);
	expect_empty(&v, a->label);
	conf_view_free(&v);
	conf_view_load(ctl2, &v);
	view_same(&before, &v, ctl2->label);
	conf_view_free(&v);
	conf_view_free(&before);

	/* The deleted cluster can be bootstrapped again. */
	conf_expect(conf_initialize(a, true, "7000000000000000009", &err), ST(PGKEEL_DCS_OK), &err,
	            "create-if-absent after delete_cluster");
}

static void scenario_namespace(void)
{
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *ctl = conf_handle_open(NULL);
	struct conf_handle *o_ctl;
	struct conf_handle *o_a;
	struct conf_handle *s_ctl = NULL;
	struct pgkeel_err err;
	struct conf_view before;
	struct conf_view v;

	o_ctl = conf_handle_open_in(NULL, PGKEEL_DCS_CTL, "/other/", conf_opt.scope);
	if (strcmp(conf_opt.namespace_, "/service/") != 0)
		s_ctl = conf_handle_open_in(NULL, PGKEEL_DCS_CTL, "/service/", conf_opt.scope);
	else
		conf_note(
		    "--namespace is /service/: a backend with /service/ hard-coded goes unnoticed");
	populate(a, "db");
	conf_view_load(ctl, &before);
	expect_populated(&before, ctl->label);
	conf_view_load(o_ctl, &v);
	expect_empty(&v, o_ctl->label);
	conf_view_free(&v);
	if (s_ctl != NULL) {
		conf_view_load(s_ctl, &v);
		expect_empty(&v, s_ctl->label);
		conf_view_free(&v);
	}

	/* The same scope and member name in /other/ stay apart both ways. */
	o_a = conf_handle_open_in("pg-a", 0, "/other/", conf_opt.scope);
	conf_expect(conf_touch(o_a, "{\"role\":\"replica\",\"ns\":\"other\"}", &err),
	            ST(PGKEEL_DCS_OK), &err, NULL);
	conf_expect(conf_cas_write(o_a, CAS_CONFIG, "{\"ns\":\"other\"}", NULL, NULL, 0, &err),
	            ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(ctl, &v);
	view_same(&before, &v, ctl->label);
	conf_view_free(&v);
	conf_view_load(o_ctl, &v);
	if (v.n != 2 || conf_view_get(&v, "members/pg-a") == NULL ||
	    conf_view_get(&v, "config") == NULL)
		conf_fail("%s sees %zu entries, expected its own member and config", o_ctl->label,
		          v.n);
	conf_pass("%s sees only its own 2 keys", o_ctl->label);
	conf_view_free(&v);
	conf_expect(conf_delete_cluster(o_ctl, &err), ST(PGKEEL_DCS_OK), &err, NULL);
	conf_view_load(ctl, &v);
	view_same(&before, &v, ctl->label);
	conf_view_free(&v);
	conf_view_free(&before);
}

/* ------------------------------------------------------------------ */
/* unavailable (the driver stopped the store)                           */

static void scenario_unavailable(void)
{
	const unsigned down = ST(PGKEEL_DCS_UNAVAILABLE);
	struct conf_handle *a = conf_handle_open("pg-a");
	struct conf_handle *ctl = conf_handle_open(NULL);
	struct pgkeel_dcs_lease l;
	struct pgkeel_err err;
	char newv[128];
	struct conf_view v;
	int k;

	conf_op_timeout_ms = CONF_OUTAGE_TIMEOUT_MS;
	conf_expect(conf_view_try_load(a, &v, &err), down, &err, NULL);
	conf_view_free(&v);
	conf_expect(conf_view_try_load(ctl, &v, &err), down, &err, NULL);
	conf_view_free(&v);
	conf_expect(conf_acquire(a, &l, &err), down, &err, NULL);
	conf_expect(conf_update(a, NULL, 1, NULL, NULL, &l, &err), down, &err, NULL);
	conf_expect(conf_update(a, "1", 1, "{\"optime\":1}", "{}", &l, &err), down, &err, NULL);
	conf_expect(conf_take(a, &l, &err), down, &err, NULL);
	conf_expect(conf_delete_leader(a, NULL, &err), down, &err, NULL);
	conf_expect(conf_delete_leader(a, "1", &err), down, &err, NULL);
	conf_expect(conf_touch(a, MEMBER_JSON("5432", "8008", "replica"), &err), down, &err, NULL);
	conf_expect(conf_initialize(a, true, "7000000000000000001", &err), down, &err, NULL);
	conf_expect(conf_initialize(a, false, "7000000000000000001", &err), down, &err, NULL);
	conf_expect(conf_cancel_init(a, &err), down, &err, NULL);
	conf_expect(conf_cas_write(a, CAS_CONFIG, "{}", NULL, NULL, 0, &err), down, &err, NULL);
	conf_expect(conf_cas_write(ctl, CAS_CONFIG, "{}", "1", NULL, 0, &err), down, &err, NULL);
	conf_expect(conf_cas_write(a, CAS_FAILOVER, "{}", NULL, NULL, 0, &err), down, &err, NULL);
	conf_expect(conf_cas_write(ctl, CAS_FAILOVER, "{}", "1", NULL, 0, &err), down, &err, NULL);
	conf_expect(conf_cas_write(a, CAS_SYNC, "{}", NULL, newv, sizeof(newv), &err), down, &err,
	            NULL);
	conf_expect(conf_cas_write(a, CAS_SYNC, "{}", "1", newv, sizeof(newv), &err), down, &err,
	            NULL);
	conf_expect(conf_delete_sync(a, NULL, &err), down, &err, NULL);
	conf_expect(conf_delete_sync(a, "1", &err), down, &err, NULL);
	for (k = 0; k < 3; k++)
		conf_expect(conf_plain(a, (enum conf_plain_kind)k, "{}", &err), down, &err, NULL);
	conf_expect(conf_delete_cluster(ctl, &err), down, &err, NULL);
	if (conf_plugin->write_leader_optime != NULL) {
		struct conf_call c;

		conf_op_begin(&c, &err, a, "write_leader_optime(1)");
		conf_expect(
		    conf_op_end(&c, conf_plugin->write_leader_optime(a->dcs, 1, c.deadline, &err),
		                &err),
		    down, &err, NULL);
	}
	/* The two that never block: they must return at once, whatever they say. */
	conf_expect(conf_nonblocking(a, true, NULL, 0, &err), ST(PGKEEL_DCS_OK) | down, &err,
	            "never blocks");
	conf_expect(conf_nonblocking(a, false, NULL, conf_opt.ttl, &err), ST(PGKEEL_DCS_OK), &err,
	            "never blocks");
}

/* ------------------------------------------------------------------ */
/* The table main() runs from                                           */

const struct conf_scenario conf_scenarios[] = {
    {"race", scenario_race, "two members acquire at once: one OK, one CONFLICT"},
    {"expiry", scenario_expiry, "an unrenewed lock expires; the old holder cannot renew"},
    {"lease", scenario_lease, "renewals every loop_wait keep the lock past ttl"},
    {"cas", scenario_cas, "config, failover and sync compare-and-set"},
    {"initialize", scenario_initialize, "initialize create-if-absent, set, cancel"},
    {"members", scenario_members, "member keys: values, owners, expiry after fini"},
    {"ttl", scenario_ttl, "set_ttl: the granted ttl and expiry follow the new ttl"},
    {"watch", scenario_watch, "watch wakes the host on a leader change, not before"},
    {"plain", scenario_plain, "status, history, failsafe byte-identical"},
    {"ctl", scenario_ctl, "a ctl handle reads and CAS-writes, lease ops INVALID"},
    {"delete_cluster", scenario_delete_cluster, "delete_cluster leaves SCOPE-other alone"},
    {"namespace", scenario_namespace, "keys stay under the namespace"},
    {"unavailable", scenario_unavailable, "store down: init OK, every op UNAVAILABLE in time"},
};

const size_t conf_n_scenarios = PGKEEL_ARRAY_LEN(conf_scenarios);
