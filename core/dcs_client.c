/*
 * dcs_client: see dcs_client.h.
 */
#include "autoconf.h"

#include <string.h>

#include "dcs_client.h"
#include "log.h"
#include "util.h"

static const char *const status_names[] = {"ok", "conflict", "unavailable", "invalid", "nomem"};

const char *pgkeel_dcs_status_name(enum pgkeel_dcs_status st)
{
	return (size_t)st < PGKEEL_ARRAY_LEN(status_names) ? status_names[st] : "?";
}

void pgkeel_dcsc_init(struct pgkeel_dcsc *c, const struct pgkeel_dcs_plugin *plugin,
                      struct pgkeel_dcs *dcs, int ttl_s)
{
	memset(c, 0, sizeof(*c));
	c->plugin = plugin;
	c->dcs = dcs;
	c->ttl_s = ttl_s;
}

int64_t pgkeel_dcsc_lock_remaining_ms(const struct pgkeel_dcsc *c)
{
	if (!c->locked)
		return 0;
	return c->lock_until_boot - pgkeel_now_boottime_ms();
}

bool pgkeel_dcsc_lock_valid(const struct pgkeel_dcsc *c)
{
	return pgkeel_dcsc_lock_remaining_ms(c) > 0;
}

int64_t pgkeel_dcsc_lock_deadline_mono(const struct pgkeel_dcsc *c)
{
	if (!c->locked)
		return INT64_MAX;
	return pgkeel_now_monotonic_ms() + pgkeel_dcsc_lock_remaining_ms(c);
}

int64_t pgkeel_dcsc_cap(const struct pgkeel_dcsc *c, int64_t deadline_ms)
{
	int64_t lock;

	/* an expired lock caps nothing: we no longer lead, the call decides what next */
	if (!pgkeel_dcsc_lock_valid(c))
		return deadline_ms;
	lock = pgkeel_dcsc_lock_deadline_mono(c);
	return lock < deadline_ms ? lock : deadline_ms;
}

void pgkeel_dcsc_drop_lock(struct pgkeel_dcsc *c)
{
	c->locked = false;
	c->lock_until_boot = 0;
}

/* After an acquire/update/take answered: the new validity. */
static void lock_result(struct pgkeel_dcsc *c, enum pgkeel_dcs_status st, int64_t sent_boot,
                        const struct pgkeel_dcs_lease *lease)
{
	int64_t ttl_ms;

	if (st == PGKEEL_DCS_OK) {
		ttl_ms = lease->granted_ttl_ms > 0 ? lease->granted_ttl_ms : (int64_t)c->ttl_s * 1000;
		c->last_granted_ms = lease->granted_ttl_ms;
		c->locked = true;
		c->lock_until_boot = sent_boot + ttl_ms;
		(void)pgkeel_fmt(c->owner, sizeof(c->owner), "%s", lease->owner);
	} else if (st == PGKEEL_DCS_CONFLICT) {
		pgkeel_dcsc_drop_lock(c);
	}
	/* UNAVAILABLE: the validity stays what it was and runs out by itself */
}

static void clear_err(struct pgkeel_dcsc *c)
{
	c->err.code = PGKEEL_DCS_D_NONE;
	c->err.msg[0] = '\0';
}

enum pgkeel_dcs_status pgkeel_dcsc_load(struct pgkeel_dcsc *c, int64_t deadline_ms,
                                        struct pgkeel_cluster **out)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	enum pgkeel_dcs_status st;

	clear_err(c);
	*out = NULL;
	st = c->plugin->load_cluster(c->dcs, pgkeel_dcsc_cap(c, deadline_ms),
	                             pgkeel_cluster_builder_add, b, &c->err);
	if (st != PGKEEL_DCS_OK) {
		pgkeel_cluster_builder_free(b);
		return st;
	}
	*out = pgkeel_cluster_builder_finish(b);
	return st;
}

enum pgkeel_dcs_status pgkeel_dcsc_acquire(struct pgkeel_dcsc *c, int64_t deadline_ms)
{
	struct pgkeel_dcs_lease lease = {.struct_size = sizeof(lease)};
	int64_t sent = pgkeel_now_boottime_ms();
	enum pgkeel_dcs_status st;

	clear_err(c);
	st = c->plugin->attempt_to_acquire_leader(c->dcs, deadline_ms, &lease, &c->err);
	lock_result(c, st, sent, &lease);
	return st;
}

enum pgkeel_dcs_status pgkeel_dcsc_update(struct pgkeel_dcsc *c, const char *leader_version,
                                          int64_t last_lsn, const char *status_json,
                                          const char *failsafe_json, int64_t deadline_ms)
{
	struct pgkeel_dcs_lease lease = {.struct_size = sizeof(lease)};
	struct pgkeel_dcs_leader_update u = {
	    .struct_size = sizeof(u),
	    .leader_version = leader_version,
	    .last_lsn = last_lsn,
	    .status_json = status_json,
	    .failsafe_json = failsafe_json,
	};
	int64_t sent = pgkeel_now_boottime_ms();
	enum pgkeel_dcs_status st;

	clear_err(c);
	st = c->plugin->update_leader(c->dcs, &u, pgkeel_dcsc_cap(c, deadline_ms), &lease, &c->err);
	lock_result(c, st, sent, &lease);
	return st;
}

enum pgkeel_dcs_status pgkeel_dcsc_take(struct pgkeel_dcsc *c, int64_t deadline_ms)
{
	struct pgkeel_dcs_lease lease = {.struct_size = sizeof(lease)};
	int64_t sent = pgkeel_now_boottime_ms();
	enum pgkeel_dcs_status st;

	clear_err(c);
	st = c->plugin->take_leader(c->dcs, deadline_ms, &lease, &c->err);
	lock_result(c, st, sent, &lease);
	return st;
}

enum pgkeel_dcs_status pgkeel_dcsc_delete_leader(struct pgkeel_dcsc *c,
                                                 const char *leader_version,
                                                 int64_t deadline_ms)
{
	enum pgkeel_dcs_status st;

	clear_err(c);
	st = c->plugin->delete_leader(c->dcs, leader_version, pgkeel_dcsc_cap(c, deadline_ms),
	                              &c->err);
	/* whatever the answer, we no longer act as the holder */
	pgkeel_dcsc_drop_lock(c);
	return st;
}
