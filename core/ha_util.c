/*
 * Pure helpers of the HA decision: names, the typed settings from a config
 * snapshot, a peer's /patroni answer, ISO-8601 times, PostgreSQL version
 * strings, the history value a new primary writes, and the message of a
 * logical slot copy.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "ha_internal.h"
#include "json.h"
#include "util.h"

const char *pgkeel_ha_role_name(enum pgkeel_ha_role r)
{
	switch (r) {
	case PGKEEL_HA_ROLE_UNINITIALIZED:
		return "uninitialized";
	case PGKEEL_HA_ROLE_MASTER:
		return "master";
	case PGKEEL_HA_ROLE_REPLICA:
		return "replica";
	case PGKEEL_HA_ROLE_STANDBY_LEADER:
		return "standby_leader";
	case PGKEEL_HA_ROLE_PROMOTED:
		return "promoted";
	case PGKEEL_HA_ROLE_DEMOTED:
		return "demoted";
	}
	return "unknown";
}

const char *pgkeel_ha_role_callback_name(enum pgkeel_ha_role r)
{
	return r == PGKEEL_HA_ROLE_PROMOTED ? "master" : pgkeel_ha_role_name(r);
}

const char *pgkeel_ha_req_name(enum pgkeel_ha_req k)
{
	static const char *const names[] = {
	    [PGKEEL_HA_REQ_NONE] = "none",
	    [PGKEEL_HA_REQ_PROBE] = "probe",
	    [PGKEEL_HA_REQ_UPDATE_LOCK] = "update_lock",
	    [PGKEEL_HA_REQ_ACQUIRE_LOCK] = "acquire_lock",
	    [PGKEEL_HA_REQ_INITIALIZE_RACE] = "initialize_race",
	    [PGKEEL_HA_REQ_WRITE_SYNC] = "write_sync",
	    [PGKEEL_HA_REQ_RELOAD_CLUSTER] = "reload_cluster",
	    [PGKEEL_HA_REQ_REWIND_CHECK] = "rewind_check",
	    [PGKEEL_HA_REQ_FAILSAFE_CHECK] = "failsafe_check",
	    [PGKEEL_HA_REQ_WATCHDOG_ACTIVATE] = "watchdog_activate",
	    [PGKEEL_HA_REQ_SYNC_RESAMPLE] = "sync_resample",
	};

	return (size_t)k < PGKEEL_ARRAY_LEN(names) && names[k] != NULL ? names[k] : "unknown";
}

const char *pgkeel_ha_fx_name(enum pgkeel_ha_fx k)
{
	static const char *const names[] = {
	    [PGKEEL_HA_FX_TOUCH_MEMBER] = "touch_member",
	    [PGKEEL_HA_FX_INITIALIZE] = "initialize",
	    [PGKEEL_HA_FX_CANCEL_INITIALIZATION] = "cancel_initialization",
	    [PGKEEL_HA_FX_SET_CONFIG] = "set_config",
	    [PGKEEL_HA_FX_TAKE_LEADER] = "take_leader",
	    [PGKEEL_HA_FX_DELETE_LEADER] = "delete_leader",
	    [PGKEEL_HA_FX_WRITE_LEADER_OPTIME] = "write_leader_optime",
	    [PGKEEL_HA_FX_SET_LEADER_VALID] = "set_leader_valid",
	    [PGKEEL_HA_FX_SET_FAILOVER] = "set_failover",
	    [PGKEEL_HA_FX_DELETE_SYNC] = "delete_sync",
	    [PGKEEL_HA_FX_SET_HISTORY] = "set_history",
	    [PGKEEL_HA_FX_FAILSAFE_ACTIVE] = "failsafe_active",
	    [PGKEEL_HA_FX_WATCHDOG_DISABLE] = "watchdog_disable",
	    [PGKEEL_HA_FX_WATCHDOG_KEEPALIVE] = "watchdog_keepalive",
	    [PGKEEL_HA_FX_SET_ROLE] = "set_role",
	    [PGKEEL_HA_FX_SET_STATE] = "set_state",
	    [PGKEEL_HA_FX_CALLBACK] = "callback",
	    [PGKEEL_HA_FX_STOP] = "stop",
	    [PGKEEL_HA_FX_DEMOTE] = "demote",
	    [PGKEEL_HA_FX_PROMOTE] = "promote",
	    [PGKEEL_HA_FX_START] = "start",
	    [PGKEEL_HA_FX_FOLLOW] = "follow",
	    [PGKEEL_HA_FX_HANDLE_PARAMETER_CHANGE] = "handle_parameter_change",
	    [PGKEEL_HA_FX_CRASH_RECOVERY] = "crash_recovery",
	    [PGKEEL_HA_FX_REWIND] = "rewind",
	    [PGKEEL_HA_FX_REINITIALIZE] = "reinitialize",
	    [PGKEEL_HA_FX_BOOTSTRAP] = "bootstrap",
	    [PGKEEL_HA_FX_POST_BOOTSTRAP] = "post_bootstrap",
	    [PGKEEL_HA_FX_CLONE] = "clone",
	    [PGKEEL_HA_FX_RESTART] = "restart",
	    [PGKEEL_HA_FX_CANCEL_TASK] = "cancel_task",
	    [PGKEEL_HA_FX_SET_SSN] = "set_ssn",
	    [PGKEEL_HA_FX_FORCE_WAL] = "force_wal",
	    [PGKEEL_HA_FX_ENSURE_CHECKPOINT] = "ensure_checkpoint",
	    [PGKEEL_HA_FX_SYNC_SLOTS] = "sync_slots",
	    [PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART] = "clear_scheduled_restart",
	    [PGKEEL_HA_FX_SANITY_CHECKS] = "sanity_checks",
	    [PGKEEL_HA_FX_FATAL] = "fatal",
	};

	return (size_t)k < PGKEEL_ARRAY_LEN(names) && names[k] != NULL ? names[k] : "unknown";
}

bool pgkeel_ha_sysid_valid(const char *sysid)
{
	size_t n = 0;

	if (sysid == NULL)
		return false;
	for (const char *p = sysid; *p != '\0'; p++, n++)
		if (!isdigit((unsigned char)*p))
			return false;
	return n >= 10;
}

/* ------------------------------------------------------------------------ */
/* times and versions */

bool pgkeel_ha_parse_time(const char *s, int64_t *ms_out)
{
	struct pgkeel_time t;
	int64_t us;

	/* without a time zone Patroni cannot compare it with now */
	if (!pgkeel_time_parse(s, &t) || !t.has_tz)
		return false;
	us = pgkeel_time_epoch_us(&t);
	*ms_out = us / 1000 - (us % 1000 < 0); /* floor, before 1970 too */
	return true;
}

int64_t pgkeel_ha_pg_version_to_int(const char *s)
{
	int64_t c[3] = {0, 0, 0};
	int n = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (;;) {
		char *end;
		long long v;

		if (n == 3 || !isdigit((unsigned char)*s))
			return -1;
		v = strtoll(s, &end, 10);
		c[n++] = v;
		s = end;
		if (*s == '\0')
			break;
		if (*s++ != '.')
			return -1;
	}
	if (n < 2 || (n == 2 && c[0] < 10))
		return -1;
	if (n == 2)
		return c[0] * 10000 + c[1];
	return c[0] * 10000 + c[1] * 100 + c[2];
}

/* ------------------------------------------------------------------------ */
/* settings */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* Patroni's parse_bool: on/true/yes/1 and off/false/no/0, anything else: None */
static bool parse_bool(struct json_object *v)
{
	const char *s;

	if (v == NULL)
		return false;
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) == 1;
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	return strcasecmp(s, "on") == 0 || strcasecmp(s, "true") == 0 ||
	       strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0;
}

static int64_t int_or(struct json_object *v, int64_t def)
{
	int64_t out;

	if (v == NULL)
		return def;
	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
		return json_object_get_int64(v);
	if (json_object_is_type(v, json_type_string) &&
	    pgkeel_parse_int64(json_object_get_string(v), &out))
		return out;
	return def;
}

/* Can one of these methods create a replica without a leader (no_leader/no_master)? */
static bool methods_without_leader(struct json_object *pgcfg, struct json_object *methods)
{
	size_t n;

	if (methods == NULL || !json_object_is_type(methods, json_type_array))
		return false;
	n = json_object_array_length(methods);
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(methods, i), *opts;
		const char *name;

		if (!json_object_is_type(m, json_type_string))
			continue;
		name = json_object_get_string(m);
		if (strcmp(name, "basebackup") == 0)
			continue;
		opts = get(pgcfg, name);
		if (pgkeel_json_truthy(get(opts, "no_master")) ||
		    pgkeel_json_truthy(get(opts, "no_leader")))
			return true;
	}
	return false;
}

void pgkeel_ha_settings_from_config(const struct pgkeel_config *cfg, struct pgkeel_ha_settings *s)
{
	struct json_object *e = cfg->effective, *pg = get(e, "postgresql");
	struct json_object *sc = get(e, "standby_cluster"), *tags = get(e, "tags"), *methods;
	struct json_object *rf;

	memset(s, 0, sizeof(*s));
	s->name = cfg->name;
	s->ttl = int_or(get(e, "ttl"), 30);
	s->loop_wait = int_or(get(e, "loop_wait"), 10);
	s->retry_timeout = int_or(get(e, "retry_timeout"), 10);
	s->maximum_lag_on_failover = int_or(get(e, "maximum_lag_on_failover"), 1048576);
	s->maximum_lag_on_syncnode = int_or(get(e, "maximum_lag_on_syncnode"), -1);
	s->max_timelines_history = int_or(get(e, "max_timelines_history"), 0);
	s->check_timeline = parse_bool(get(e, "check_timeline"));
	s->synchronous_mode = parse_bool(get(e, "synchronous_mode"));
	s->synchronous_mode_strict = parse_bool(get(e, "synchronous_mode_strict"));
	s->synchronous_node_count = int_or(get(e, "synchronous_node_count"), 1);
	s->failsafe_mode = parse_bool(get(e, "failsafe_mode"));
	s->pause = parse_bool(get(e, "pause"));
	s->standby_cluster_has_conn = sc != NULL && (pgkeel_json_truthy(get(sc, "host")) ||
	                                             pgkeel_json_truthy(get(sc, "port")));
	s->standby_cluster = s->standby_cluster_has_conn ||
	                     (sc != NULL && pgkeel_json_truthy(get(sc, "restore_command")));
	s->primary_start_timeout = int_or(get(e, "primary_start_timeout"), 300);
	s->primary_stop_timeout = int_or(get(e, "primary_stop_timeout"), 0);
	s->remove_data_directory_on_rewind_failure =
	    pgkeel_json_truthy(get(pg, "remove_data_directory_on_rewind_failure"));
	s->remove_data_directory_on_diverged_timelines =
	    pgkeel_json_truthy(get(pg, "remove_data_directory_on_diverged_timelines"));
	s->nofailover = pgkeel_json_truthy(get(tags, "nofailover"));
	s->nosync = pgkeel_json_truthy(get(tags, "nosync"));
	rf = get(tags, "replicatefrom");
	s->replicatefrom = rf != NULL && json_object_is_type(rf, json_type_string)
	                       ? json_object_get_string(rf)
	                       : NULL;
	s->has_bootstrap_section = get(cfg->local, "bootstrap") != NULL;
	methods = get(pg, "create_replica_methods");
	if (!pgkeel_json_truthy(methods))
		methods = get(pg, "create_replica_method");
	s->clone_without_leader = methods_without_leader(pg, methods);
	s->standby_clone_without_leader =
	    methods_without_leader(pg, get(sc, "create_replica_methods"));
}
