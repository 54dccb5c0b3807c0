/*
 * loop_internal.h: what core/loop.c (the cycle, start-up, scheduling,
 * publishing, REST requests) and core/loop_act.c (the requests ha.c asks
 * for and the effects it decides) share.  Internal to those two files.
 */
#ifndef PGKEEL_LOOP_INTERNAL_H
#define PGKEEL_LOOP_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "dcs_client.h"
#include "dcs_loader.h"
#include "exit_codes.h"
#include "ha.h"
#include "history.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "loop_rest.h"
#include "member.h"
#include "peers.h"
#include "pg_bootstrap.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_manager.h"
#include "pg_rewind.h"
#include "pg_rewind_run.h"
#include "rest.h"
#include "sampler.h"
#include "state.h"
#include "util.h"
#include "watchdog.h"

#define MAX_PEERS      64
#define DYNAMIC_CACHE  "patroni.dynamic.json"
#define REST_POLL_MS   1000
#define START_RETRY_MS 5000
#define SHMEM_WAIT_MS  3000

/* A switchover/failover waiting for its outcome (Patroni's poll_failover_result). */
struct pending_req {
	struct pgkeel_rest_req *req;
	char *old_leader;
	char *candidate;
	int64_t until_ms;
	struct pending_req *next;
};

struct loop {
	struct pgkeel_config *cfg;
	/* pg_controldata of the stopped data directory, kept while global/pg_control is unchanged */
	struct json_object *cd_cache;
	struct stat cd_stat;
	const char *config_path;
	bool strict;
	int sigfd;
	bool stop;
	bool fatal; /* a FATAL effect ran: nothing after it */
	int exit_code;

	struct pgkeel_dcs_module backend;
	struct pgkeel_dcs *dcs_handle;
	struct pgkeel_dcsc dcs;
	struct pgkeel_pgm *pgm;
	struct pgkeel_pgm_state pg;
	struct pgkeel_callbacks cb;
	struct pgkeel_rest *rest;
	struct pgkeel_peers *peers;
	struct pgkeel_watchdog *wd;
	struct pgkeel_sampler *sampler; /* publishes the PostgreSQL sample for REST */
	char published_state[48];       /* the pg_state last published */

	struct pgkeel_cluster *cluster;     /* last loaded; NULL before the first */
	struct pgkeel_cluster *old_cluster; /* last with a leader (Patroni's old_cluster) */
	char *applied_config;               /* modify_version of the applied config */
	int64_t cluster_read_ms;            /* monotonic time of the last good read */
	int64_t dcs_last_seen;              /* epoch seconds */

	struct pgkeel_ha_state hs;
	enum pgkeel_ha_role role;
	bool failsafe_active;
	char following[320]; /* host:port/slot the recovery configuration points at */
	int64_t next_run_ms;
	int64_t wake_at_ms; /* a scheduled action: -1 none */
	char *last_message;
	struct pending_req *pending;
	struct pgkeel_rest_req *restart_req; /* POST /restart waiting for its task */
	int64_t next_poll_ms;
	void (*notify_fn)(const char *state);
	json_object *status_slots; /* the leader's /status slots, from the last slot sync */
	bool demote_releases;      /* the running demotion releases the leader key */
	bool demoting;             /* a demotion runs: /leader and /primary answer 503 */
	bool params_dirty;         /* the configuration changed: rewrite postgresql.conf, reload */
	char state_word[48];       /* SET_STATE's word for PostgreSQL's state ("" none) */
	char state_word_over[48];  /* ... while pg_ctl's state is still this one */
	char **copy_names;         /* logical slots being copied this cycle */
	size_t n_copy_names;
};

struct cycle {
	struct pgkeel_ha_facts f;
	struct pgkeel_ha_settings settings;
	struct pgkeel_ha_pg hpg;
	struct pgkeel_cluster *cluster; /* references held for the cycle */
	struct pgkeel_cluster *old_cluster;
	struct pgkeel_ha_peer peers[MAX_PEERS];
	char *peer_names[MAX_PEERS];
	size_t n_peers;
	struct pgkeel_cluster *reloads[PGKEEL_HA_MAX_RELOADS];
	char *sync_versions[PGKEEL_HA_MAX_SYNC_WRITES];
	struct pgkeel_pg_status *resample_status;
	char *resample_ssn;
	struct pgkeel_ha_failsafe_leader fsl;
	struct pgkeel_rest_failsafe fsmsg;
	bool have_fsmsg;
	struct pgkeel_rest_restart sched; /* POST /restart {"schedule"} */
	struct pgkeel_ha_scheduled_restart sched_fact;
	char sysid[32];
	char controldata_state[64];
	char task[64];
};

static inline void json_put(json_object **o)
{
	json_object_put(*o);
	*o = NULL;
}

/* Patroni's postgres state for the member key and the REST API. */
static inline const char *pg_state_word(const struct loop *L)
{
	const char *ctl = L->pg.ctl.state_name[0] ? L->pg.ctl.state_name : "stopped";

	if (L->state_word[0] != '\0' && strcmp(L->state_word_over, L->pg.ctl.state_name) == 0)
		return L->state_word;
	return ctl;
}

static inline int64_t now_ms(void)
{
	return pgkeel_now_monotonic_ms();
}

static inline int64_t dcs_deadline(const struct loop *L)
{
	return now_ms() + (int64_t)L->cfg->retry_timeout * 1000;
}

static inline const char *leader_version(const struct loop *L)
{
	return L->cluster != NULL && L->cluster->leader != NULL ? L->cluster->leader->version
	                                                        : NULL;
}

static inline bool is_paused(const struct loop *L)
{
	json_object *p = pgkeel_json_path(L->cfg->effective, "pause");

	return p != NULL && json_object_get_boolean(p);
}

/* loop.c */
void pgkeel_loop_dcs_log_failure(const struct loop *L, const char *what, enum pgkeel_dcs_status st);
void pgkeel_loop_set_cluster(struct loop *L, struct pgkeel_cluster *c);
void pgkeel_loop_publish(struct loop *L, bool with_pg);

/* loop_act.c */
void pgkeel_loop_perform(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq);
void pgkeel_loop_execute(struct loop *L, struct cycle *c, const struct pgkeel_ha_effect *fx);
void pgkeel_loop_task_finished(struct loop *L, const struct pgkeel_pgm_result *res);
void pgkeel_loop_touch_member(struct loop *L);
void pgkeel_loop_apply_parameters(struct loop *L);

#endif
