/*
 * loop_rest: see loop_rest.h.
 */
#include "autoconf.h"

#include <string.h>

#include "cluster.h"
#include "dcs_client.h"
#include "ha.h"
#include "log.h"
#include "loop_rest.h"
#include "pg_manager.h"
#include "rest.h"

struct write_ctx {
	struct pgkeel_dcsc *dcs;
	int64_t deadline_ms;
};

static bool write_key(struct write_ctx *w, bool config, const char *value, const char *version)
{
	const struct pgkeel_dcs_plugin *p = w->dcs->plugin;
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st =
	    config ? p->set_config(w->dcs->dcs, value, version, w->deadline_ms, &e)
	           : p->set_failover(w->dcs->dcs, value, version, w->deadline_ms, &e);

	if (st != PGKEEL_DCS_OK)
		log_warning("REST API: writing the %s key failed (%s): %s",
		            config ? "config" : "failover", pgkeel_dcs_status_name(st),
		            e.msg[0] ? e.msg : "no detail");
	return st == PGKEEL_DCS_OK;
}

static bool write_config(void *arg, const char *value, const char *version)
{
	return write_key(arg, true, value, version);
}

static bool write_failover(void *arg, const char *value, const char *version)
{
	return write_key(arg, false, value, version);
}

struct pgkeel_cluster *pgkeel_loop_rest_dcs(struct pgkeel_dcsc *dcs, int64_t deadline_ms,
                                            struct pgkeel_rest_req *req, bool *changed)
{
	struct write_ctx w = {.dcs = dcs, .deadline_ms = deadline_ms};
	struct pgkeel_rest_dcs_ops ops = {
	    .arg = &w, .set_config = write_config, .set_failover = write_failover};
	struct pgkeel_cluster *c = NULL;
	enum pgkeel_dcs_status st = pgkeel_dcsc_load(dcs, deadline_ms, &c);

	if (st != PGKEEL_DCS_OK) {
		log_warning("REST API: %s request from %s: reading the DCS failed (%s)",
		            pgkeel_rest_kind_name(req->kind), req->client,
		            pgkeel_dcs_status_name(st));
		c = NULL;
	}
	pgkeel_rest_answer_dcs(req, c, &ops, changed);
	return c;
}

void pgkeel_loop_rest_restart_fact(const struct pgkeel_rest_restart *r,
                                   struct pgkeel_ha_scheduled_restart *h)
{
	memset(h, 0, sizeof(*h));
	h->schedule = r->schedule;
	h->postmaster_start_time = r->postmaster_start_time;
	h->role = r->role;
	h->postgres_version = r->postgres_version;
	h->restart_pending = r->restart_pending;
	h->timeout_s = r->timeout_s;
}

void pgkeel_loop_rest_request_fact(const struct pgkeel_rest_req *req,
                                   struct pgkeel_ha_scheduled_restart *h)
{
	memset(h, 0, sizeof(*h));
	h->role = req->role;
	h->postgres_version = req->postgres_version;
	h->restart_pending = req->restart_pending;
	h->timeout_s = req->timeout_s;
}

void pgkeel_loop_rest_restart_done(struct pgkeel_rest_req *req, const struct pgkeel_pgm_result *res)
{
	if (res->ok)
		pgkeel_rest_reply(req, 200, NULL, "restarted successfully");
	else if (res->timed_out)
		pgkeel_rest_reply(req, 503, NULL, "postgres is still starting");
	else
		pgkeel_rest_reply(req, 503, NULL, "restart failed");
}
