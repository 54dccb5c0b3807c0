/*
 * The effective configuration (pgkeel_config_effective, config.h): Patroni's
 * defaults, then the dynamic configuration's keys that Patroni takes from
 * the DCS, then the local file, with the parameters pgkeel controls
 * checked and the authentication entries filtered.
 */
#include "autoconf.h"

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "config_schema.h"
#include "util.h"
#include "yaml_load.h"

/* An integer from the dynamic configuration, cast as Patroni's int() does. */
static int64_t dyn_int(json_object *o, const char *key, int64_t def, const char *where_,
                       struct pgkeel_diag *diag)
{
	int64_t v;

	if (o == NULL)
		return def;
	if (json_object_is_type(o, json_type_int))
		return json_object_get_int64(o);
	if (json_object_is_type(o, json_type_double)) {
		double d = json_object_get_double(o);

		if (isfinite(d) && d > -9.0e18 && d < 9.0e18)
			return (int64_t)d;
	} else if (json_object_is_type(o, json_type_string) &&
	           pgkeel_parse_int64(json_object_get_string(o), &v)) {
		return v;
	}
	pgkeel_diag_warning(diag, "%s: %s: expected an integer, using the default %lld", where_,
	                    key, (long long)def);
	return def;
}

static bool param_is_controlled(const char *name, const struct pgkeel_controlled_param **out)
{
	for (size_t i = 0; i < pgkeel_controlled_params_len; i++) {
		if (strcasecmp(pgkeel_controlled_params[i].name, name) == 0) {
			*out = &pgkeel_controlled_params[i];
			return true;
		}
	}
	return false;
}

static bool parse_size_mb(const char *s, int64_t *mb)
{
	char *end;
	long long v, mul = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s)
		return false;
	while (*end == ' ')
		end++;
	if (*end == '\0' || strcasecmp(end, "MB") == 0)
		mul = 1;
	else if (strcasecmp(end, "GB") == 0)
		mul = 1024;
	else if (strcasecmp(end, "TB") == 0)
		mul = 1024 * 1024;
	else if (strcasecmp(end, "kB") == 0)
		mul = 0;
	else
		return false;
	if (mul == 0) {
		*mb = v / 1024;
		return true;
	}
	return !__builtin_mul_overflow(v, mul, mb);
}

static bool bool_text(json_object *v, bool *out)
{
	const char *s = json_object_get_string(v);

	if (json_object_is_type(v, json_type_boolean)) {
		*out = json_object_get_boolean(v);
		return true;
	}
	if (s == NULL || !pgkeel_cfg_str_is_bool(s))
		return false;
	*out = strcasecmp(s, "on") == 0 || strcasecmp(s, "true") == 0 ||
	       strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0;
	return true;
}

/* A value pgkeel would pick anyway ("hot_standby: on" read by YAML as true). */
static bool same_as_default(const struct pgkeel_controlled_param *p, json_object *val)
{
	json_object *def;
	bool a, b, same;

	if (p->def == NULL)
		return false;
	def = pgkeel_yaml_resolve_plain(p->def, strlen(p->def));
	same = json_object_equal(def, val) ||
	       (bool_text(def, &a) && bool_text(val, &b) && a == b) ||
	       strcmp(json_object_get_string(def), json_object_get_string(val)) == 0;
	json_object_put(def);
	return same;
}

/* A DCS value for a controlled parameter: the value to use, or NULL if invalid. */
static json_object *controlled_from_dcs(const struct pgkeel_controlled_param *p, json_object *val)
{
	const char *s = json_object_get_string(val);
	int64_t iv;

	switch (p->check) {
	case PGKEEL_CP_NEVER:
		return NULL;
	case PGKEEL_CP_INT_MIN:
		if (json_object_is_type(val, json_type_int))
			iv = json_object_get_int64(val);
		else if (!pgkeel_parse_int64(s, &iv))
			return NULL;
		return iv >= p->min ? json_object_new_int64(iv) : NULL;
	case PGKEEL_CP_BOOL:
		if (json_object_is_type(val, json_type_boolean) || pgkeel_cfg_str_is_bool(s))
			return pgkeel_cfg_jcopy(val);
		return NULL;
	case PGKEEL_CP_ENUM: {
		/* "|a|b|c|": an exact, case-insensitive match of one choice */
		const char *c = p->choices;
		size_t n = strlen(s);

		while (c != NULL && (c = strchr(c, '|')) != NULL && c[1] != '\0') {
			const char *next = strchr(c + 1, '|');

			if (next != NULL && (size_t)(next - c - 1) == n && n > 0 &&
			    strncasecmp(c + 1, s, n) == 0) {
				char *lower = pgkeel_strdup(s);

				for (char *q = lower; *q; q++)
					*q = (char)tolower((unsigned char)*q);
				val = json_object_new_string(lower);
				free(lower);
				return val;
			}
			c = next;
		}
		return NULL;
	}
	case PGKEEL_CP_SIZE_MIN_MB:
		if (json_object_is_type(val, json_type_int))
			iv = json_object_get_int64(val);
		else if (!parse_size_mb(s, &iv))
			return NULL;
		return iv >= p->min ? pgkeel_cfg_jcopy(val) : NULL;
	}
	return NULL;
}

static json_object *default_parameters(void)
{
	json_object *params = json_object_new_object();

	for (size_t i = 0; i < pgkeel_controlled_params_len; i++) {
		const struct pgkeel_controlled_param *p = &pgkeel_controlled_params[i];

		if (p->def == NULL || strcmp(p->name, "wal_keep_segments") == 0 ||
		    strcmp(p->name, "wal_keep_size") == 0)
			continue;
		int64_t iv;

		json_object_object_add(params, p->name,
		                       pgkeel_parse_int64(p->def, &iv)
		                           ? json_object_new_int64(iv)
		                           : json_object_new_string(p->def));
	}
	return params;
}

static json_object *process_parameters(json_object *params, bool is_local, struct pgkeel_diag *diag)
{
	json_object *out = json_object_new_object();

	if (!json_object_is_type(params, json_type_object))
		return out;
	json_object_object_foreach(params, k, v)
	{
		const struct pgkeel_controlled_param *p;

		if (!param_is_controlled(k, &p)) {
			json_object_object_add(out, k, pgkeel_cfg_jcopy(v));
		} else if (is_local) {
			pgkeel_diag_warning(diag,
			                    "postgresql.parameters.%s in the local configuration "
			                    "is ignored: it is controlled by pgkeel, set it in the "
			                    "dynamic configuration (bootstrap.dcs or edit-config)",
			                    k);
		} else if (v != NULL) {
			json_object *ok = controlled_from_dcs(p, v);

			if (ok != NULL)
				json_object_object_add(out, p->name, ok);
			else if (!same_as_default(p, v))
				pgkeel_diag_warning(
				    diag,
				    "dynamic configuration: postgresql.parameters.%s="
				    "%s is not valid, using the default",
				    k, json_object_to_json_string(v));
		}
	}
	return out;
}

/* PostgreSQL parameter names are case-insensitive: a later spelling replaces an earlier one. */
static void params_update(json_object *target, json_object *params)
{
	json_object_object_foreach(params, k, v)
	{
		const char *same = NULL;

		json_object_object_foreach(target, tk, tv)
		{
			(void)tv;
			if (strcasecmp(tk, k) == 0 && strcmp(tk, k) != 0)
				same = tk;
		}
		if (same != NULL)
			json_object_object_del(target, same);
		json_object_object_add(target, k, json_object_get(v));
	}
}

static const char *const local_only_pg[] = {
    "connect_address", "proxy_address", "listen",         "config_dir",
    "data_dir",        "pgpass",        "authentication", NULL};
static const char *const standby_keys[] = {"create_replica_methods",
                                           "host",
                                           "port",
                                           "primary_slot_name",
                                           "restore_command",
                                           "archive_cleanup_command",
                                           "recovery_min_apply_delay",
                                           NULL};
static const char *const auth_allowed[] = {"username",  "password",    "sslmode",         "sslcert",
                                           "sslkey",    "sslpassword", "sslrootcert",     "sslcrl",
                                           "sslcrldir", "gssencmode",  "channel_binding", NULL};

static bool in_list(const char *const *l, const char *s)
{
	for (; *l != NULL; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

static const struct {
	const char *key;
	const char *def;
	bool is_bool;
} globals[] = {
    {"ttl", "30", false},
    {"loop_wait", "10", false},
    {"retry_timeout", "10", false},
    {"maximum_lag_on_failover", "1048576", false},
    {"maximum_lag_on_syncnode", "-1", false},
    {"max_timelines_history", "0", false},
    {"check_timeline", "false", true},
    {"primary_start_timeout", "300", false},
    {"primary_stop_timeout", "0", false},
    {"synchronous_mode", "false", true},
    {"synchronous_mode_strict", "false", true},
    {"synchronous_node_count", "1", false},
    {"failsafe_mode", "false", true},
};

static const char *const dcs_only[] = {
    "pause", "slots", "permanent_slots", "permanent_replication_slots", "ignore_slots", NULL};

/* 1: a global boolean, 0: a global integer, -1: not a global key */
static int global_is_bool(const char *key)
{
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(globals); i++)
		if (strcmp(globals[i].key, key) == 0)
			return globals[i].is_bool ? 1 : 0;
	return -1;
}

json_object *pgkeel_config_effective(json_object *local, json_object *dynamic,
                                     struct pgkeel_diag *diag)
{
	json_object *cfg = json_object_new_object();
	json_object *pg, *sc, *params, *auth;

	/* defaults */
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(globals); i++)
		json_object_object_add(
		    cfg, globals[i].key,
		    pgkeel_yaml_resolve_plain(globals[i].def, strlen(globals[i].def)));
	sc = json_object_new_object();
	for (int i = 0; standby_keys[i] != NULL; i++)
		json_object_object_add(sc, standby_keys[i], json_object_new_string(""));
	json_object_object_add(cfg, "standby_cluster", sc);
	pg = json_object_new_object();
	json_object_object_add(pg, "bin_dir", json_object_new_string(""));
	json_object_object_add(pg, "use_slots", json_object_new_boolean(1));
	params = default_parameters();
	json_object_object_add(pg, "parameters", params);
	json_object_object_add(cfg, "postgresql", pg);
	{
		json_object *wd = json_object_new_object();

		json_object_object_add(wd, "mode", json_object_new_string("automatic"));
		json_object_object_add(cfg, "watchdog", wd);
	}

	/* dynamic over defaults: only the keys Patroni takes from the DCS */
	if (json_object_is_type(dynamic, json_type_object)) {
		json_object_object_foreach(dynamic, k, v)
		{
			const char *key = k;

			/* the old names count only when the new one is absent */
			if (strcmp(k, "master_start_timeout") == 0) {
				if (json_object_object_get_ex(dynamic, "primary_start_timeout",
				                              NULL))
					continue;
				key = "primary_start_timeout";
			} else if (strcmp(k, "master_stop_timeout") == 0) {
				if (json_object_object_get_ex(dynamic, "primary_stop_timeout",
				                              NULL))
					continue;
				key = "primary_stop_timeout";
			}
			if (strcmp(k, "postgresql") == 0) {
				if (!json_object_is_type(v, json_type_object))
					continue;
				json_object_object_foreach(v, pk, pv)
				{
					if (strcmp(pk, "parameters") == 0) {
						json_object *p =
						    process_parameters(pv, false, diag);

						params_update(params, p);
						json_object_put(p);
					} else if (!in_list(local_only_pg, pk)) {
						json_object_object_add(pg, pk,
						                       pgkeel_cfg_jcopy(pv));
					}
				}
			} else if (strcmp(k, "standby_cluster") == 0) {
				if (!json_object_is_type(v, json_type_object))
					continue;
				json_object_object_foreach(v, sk, sv)
				{
					if (in_list(standby_keys, sk))
						json_object_object_add(sc, sk,
						                       pgkeel_cfg_jcopy(sv));
				}
			} else if (global_is_bool(key) >= 0) {
				if (global_is_bool(key) == 1) {
					json_object_object_add(cfg, key, pgkeel_cfg_jcopy(v));
				} else {
					int64_t def =
					    json_object_get_int64(json_object_object_get(cfg, key));

					json_object_object_add(
					    cfg, key,
					    json_object_new_int64(
					        dyn_int(v, k, def, "dynamic configuration", diag)));
				}
			} else if (in_list(dcs_only, k)) {
				/* read from the DCS by the HA logic */
				json_object_object_add(cfg, k, pgkeel_cfg_jcopy(v));
			}
		}
	}

	/* local over that, but never the global-only and DCS-only keys */
	json_object_object_foreach(local, k, v)
	{
		if (strcmp(k, "postgresql") == 0) {
			if (!json_object_is_type(v, json_type_object))
				continue;
			json_object_object_foreach(v, pk, pv)
			{
				if (strcmp(pk, "parameters") == 0) {
					json_object *p = process_parameters(pv, true, diag);

					params_update(params, p);
					json_object_put(p);
				} else if (strcmp(pk, "use_slots") != 0) {
					json_object_object_add(pg, pk, pgkeel_cfg_jcopy(pv));
				}
			}
		} else if (strcmp(k, "citus") == 0 || strcmp(k, "standby_cluster") == 0 ||
		           global_is_bool(k) >= 0 || in_list(dcs_only, k) ||
		           strcmp(k, "master_start_timeout") == 0 ||
		           strcmp(k, "master_stop_timeout") == 0) {
			continue;
		} else {
			json_object_object_add(cfg, k,
			                       v ? pgkeel_cfg_jcopy(v) : json_object_new_object());
		}
	}

	/* authentication: only the connection parameters Patroni passes on */
	auth = pgkeel_json_path(pg, "authentication");
	if (json_object_is_type(auth, json_type_object)) {
		json_object_object_foreach(auth, uk, uv)
		{
			json_object *f = json_object_new_object();

			if (json_object_is_type(uv, json_type_object)) {
				json_object_object_foreach(uv, ak, av)
				{
					if (in_list(auth_allowed, ak))
						json_object_object_add(f, ak, pgkeel_cfg_jcopy(av));
				}
			}
			json_object_object_add(auth, uk, f);
		}
	}
	/* copied down into the postgresql sub-config, as Patroni 3.0.2 does */
	{
		static const char *const down[] = {"name",
		                                   "scope",
		                                   "retry_timeout",
		                                   "synchronous_mode",
		                                   "synchronous_mode_strict",
		                                   "synchronous_node_count",
		                                   "maximum_lag_on_syncnode",
		                                   NULL};

		for (int i = 0; down[i] != NULL; i++) {
			json_object *dv;

			if (json_object_object_get_ex(cfg, down[i], &dv))
				json_object_object_add(pg, down[i], pgkeel_cfg_jcopy(dv));
		}
	}
	return cfg;
}
