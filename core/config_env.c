/*
 * The PATRONI_* environment overlay, as Patroni 3.0.2 builds it
 * (spec/patroni-interfaces.md §4), plus PGKEEL_* spellings of the same
 * variables (PGKEEL_ wins over PATRONI_ when both are set).  Every variable
 * consumed is removed from the environment, so no child (postmaster,
 * callbacks) ever sees a password that came this way.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"
#include "yaml_load.h"

extern char **environ;

static json_object *cached_overlay;

/* Working copy of the relevant variables: "PATRONI_X" -> value. */
struct envset {
	json_object *vars;
};

static void envset_collect(struct envset *e)
{
	json_object *pgkeel = json_object_new_object();

	e->vars = json_object_new_object();
	for (char **ep = environ; ep != NULL && *ep != NULL; ep++) {
		const char *eq = strchr(*ep, '=');
		char *name;

		if (eq == NULL)
			continue;
		name = strndup(*ep, (size_t)(eq - *ep));
		if (name == NULL)
			continue;
		if (strncmp(name, "PATRONI_", 8) == 0 && strcmp(name, "PATRONI_CONFIGURATION") != 0)
			json_object_object_add(e->vars, name, json_object_new_string(eq + 1));
		else if (strncmp(name, "PGKEEL_", 7) == 0 &&
		         strcmp(name, "PGKEEL_CONFIGURATION") != 0 &&
		         strcmp(name, "PGKEEL_BACKEND_DIR") != 0) {
			char *pname = pgkeel_asprintf("PATRONI_%s", name + 7);

			json_object_object_add(pgkeel, pname, json_object_new_string(eq + 1));
			free(pname);
		}
		free(name);
	}
	json_object_object_foreach(pgkeel, k, v)
	{
		json_object_object_add(e->vars, k, json_object_get(v));
	}
	json_object_put(pgkeel);
}

void pgkeel_env_scrub(const char *name)
{
	char *v = getenv(name);

	/* Wipe the value in place first: the initial environment block stays
	 * readable through /proc/<pid>/environ even after unsetenv(). */
	if (v != NULL)
		explicit_bzero(v, strlen(v));
	unsetenv(name);
}

/* Remove one consumed variable (both spellings) from the environment. */
static void env_consume(const char *patroni_name)
{
	char *alt = pgkeel_asprintf("PGKEEL_%s", patroni_name + 8);

	pgkeel_env_scrub(patroni_name);
	pgkeel_env_scrub(alt);
	free(alt);
}

/* Pop "PATRONI_<suffix>"; returns a malloc'd value or NULL (empty = NULL). */
static char *env_pop(struct envset *e, const char *suffix)
{
	char *name = pgkeel_asprintf("PATRONI_%s", suffix);
	json_object *v;
	char *val = NULL;

	if (json_object_object_get_ex(e->vars, name, &v)) {
		const char *s = json_object_get_string(v);

		if (s != NULL && *s != '\0')
			val = pgkeel_strdup(s);
		json_object_object_del(e->vars, name);
		env_consume(name);
	}
	free(name);
	return val;
}

static json_object *section(json_object *root, const char *name)
{
	json_object *s;

	if (!json_object_object_get_ex(root, name, &s) ||
	    !json_object_is_type(s, json_type_object)) {
		s = json_object_new_object();
		json_object_object_add(root, name, s);
	}
	return s;
}

static char *lower_dup(const char *s)
{
	char *d = pgkeel_strdup(s);

	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static json_object *parse_yaml_value(const char *text)
{
	json_object *out = NULL;
	char err[256];

	if (!pgkeel_yaml_parse(text, strlen(text), "environment", &out, NULL, err, sizeof(err)))
		return NULL;
	return out;
}

json_object *pgkeel_env_parse_list(const char *value)
{
	const char *p = value;
	json_object *o;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-' || strchr(value, '[') != NULL) {
		o = parse_yaml_value(value);
	} else {
		char *wrapped = pgkeel_asprintf("[%s]", value);

		o = parse_yaml_value(wrapped);
		free(wrapped);
	}
	if (o != NULL && !json_object_is_type(o, json_type_array)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *pgkeel_env_parse_dict(const char *value)
{
	const char *p = value;
	json_object *o;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '{') {
		o = parse_yaml_value(value);
	} else {
		char *wrapped = pgkeel_asprintf("{%s}", value);

		o = parse_yaml_value(wrapped);
		free(wrapped);
	}
	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Patroni's parse_bool: true/yes/on/1, false/no/off/0 (any case); else -1. */
static int env_bool(const char *v)
{
	static const char *const t[] = {"true", "yes", "on", "1", NULL};
	static const char *const f[] = {"false", "no", "off", "0", NULL};

	for (int i = 0; t[i] != NULL; i++)
		if (strcasecmp(v, t[i]) == 0)
			return 1;
	for (int i = 0; f[i] != NULL; i++)
		if (strcasecmp(v, f[i]) == 0)
			return 0;
	return -1;
}

enum vtype { V_STR, V_INT, V_BOOL, V_LIST, V_DICT };

/* Convert and store; a value that does not convert is reported and skipped. */
static void put_typed(json_object *sec, const char *key, const char *var, char *val, enum vtype t,
                      struct pgkeel_diag *diag)
{
	json_object *o = NULL;
	int64_t iv;
	int b;

	switch (t) {
	case V_STR:
		o = json_object_new_string(val);
		break;
	case V_INT:
		if (pgkeel_parse_int64(val, &iv))
			o = json_object_new_int64(iv);
		break;
	case V_BOOL:
		b = env_bool(val);
		if (b >= 0)
			o = json_object_new_boolean(b);
		break;
	case V_LIST:
		o = pgkeel_env_parse_list(val);
		break;
	case V_DICT:
		o = pgkeel_env_parse_dict(val);
		break;
	}
	if (o == NULL) {
		static const char *const names[] = {"a string", "an integer", "a boolean", "a list",
		                                    "a map"};

		pgkeel_diag_error(diag, "environment %s: expected %s", var, names[t]);
	} else {
		json_object_object_add(sec, key, o);
	}
	free(val);
}

struct env_key {
	const char *var; /* after PATRONI_ */
	const char *section;
	const char *key;
	enum vtype type;
};

static const struct env_key simple_keys[] = {
    {"LOG_LEVEL", "log", "level", V_STR},
    {"LOG_TRACEBACK_LEVEL", "log", "traceback_level", V_STR},
    {"LOG_FORMAT", "log", "format", V_STR},
    {"LOG_DATEFORMAT", "log", "dateformat", V_STR},
    {"LOG_MAX_QUEUE_SIZE", "log", "max_queue_size", V_INT},
    {"LOG_DIR", "log", "dir", V_STR},
    {"LOG_FILE_NUM", "log", "file_num", V_INT},
    {"LOG_FILE_SIZE", "log", "file_size", V_INT},
    {"LOG_LOGGERS", "log", "loggers", V_DICT},
    {"LOG_TYPE", "log", "type", V_STR},
    {"LOG_STATIC_FIELDS", "log", "static_fields", V_DICT},
    {"LOG_SYSLOG", "log", "syslog", V_STR},
    {"RESTAPI_LISTEN", "restapi", "listen", V_STR},
    {"RESTAPI_CONNECT_ADDRESS", "restapi", "connect_address", V_STR},
    {"RESTAPI_CERTFILE", "restapi", "certfile", V_STR},
    {"RESTAPI_KEYFILE", "restapi", "keyfile", V_STR},
    {"RESTAPI_KEYFILE_PASSWORD", "restapi", "keyfile_password", V_STR},
    {"RESTAPI_CAFILE", "restapi", "cafile", V_STR},
    {"RESTAPI_CIPHERS", "restapi", "ciphers", V_STR},
    {"RESTAPI_VERIFY_CLIENT", "restapi", "verify_client", V_STR},
    {"RESTAPI_HTTP_EXTRA_HEADERS", "restapi", "http_extra_headers", V_DICT},
    {"RESTAPI_HTTPS_EXTRA_HEADERS", "restapi", "https_extra_headers", V_DICT},
    {"RESTAPI_ALLOWLIST", "restapi", "allowlist", V_LIST},
    {"RESTAPI_ALLOWLIST_INCLUDE_MEMBERS", "restapi", "allowlist_include_members", V_BOOL},
    {"RESTAPI_REQUEST_QUEUE_SIZE", "restapi", "request_queue_size", V_INT},
    {"CTL_INSECURE", "ctl", "insecure", V_BOOL},
    {"CTL_CACERT", "ctl", "cacert", V_STR},
    {"CTL_CERTFILE", "ctl", "certfile", V_STR},
    {"CTL_KEYFILE", "ctl", "keyfile", V_STR},
    {"CTL_KEYFILE_PASSWORD", "ctl", "keyfile_password", V_STR},
    {"POSTGRESQL_LISTEN", "postgresql", "listen", V_STR},
    {"POSTGRESQL_CONNECT_ADDRESS", "postgresql", "connect_address", V_STR},
    {"POSTGRESQL_PROXY_ADDRESS", "postgresql", "proxy_address", V_STR},
    {"POSTGRESQL_CONFIG_DIR", "postgresql", "config_dir", V_STR},
    {"POSTGRESQL_DATA_DIR", "postgresql", "data_dir", V_STR},
    {"POSTGRESQL_PGPASS", "postgresql", "pgpass", V_STR},
    {"POSTGRESQL_BIN_DIR", "postgresql", "bin_dir", V_STR},
    {"RAFT_DATA_DIR", "raft", "data_dir", V_STR},
    {"RAFT_SELF_ADDR", "raft", "self_addr", V_STR},
    {"RAFT_PARTNER_ADDRS", "raft", "partner_addrs", V_LIST},
    {"RAFT_PASSWORD", "raft", "password", V_STR},
    {"RAFT_BIND_ADDR", "raft", "bind_addr", V_STR},
};

static const char *const bin_tools[] = {"PG_CTL",   "INITDB",     "PG_CONTROLDATA", "PG_BASEBACKUP",
                                        "POSTGRES", "PG_ISREADY", "PG_REWIND",      NULL};

static const char *const auth_params[] = {"USERNAME",  "PASSWORD",    "SSLMODE",         "SSLCERT",
                                          "SSLKEY",    "SSLPASSWORD", "SSLROOTCERT",     "SSLCRL",
                                          "SSLCRLDIR", "GSSENCMODE",  "CHANNEL_BINDING", NULL};

/* Suffixes of the generic PATRONI_<SECTION>_<SUFFIX> rule, with their types. */
static const struct {
	const char *suffix;
	enum vtype type;
} dcs_suffixes[] = {
    {"HOST", V_STR},
    {"HOSTS", V_LIST},
    {"PORT", V_INT},
    {"USE_PROXIES", V_BOOL},
    {"PROTOCOL", V_STR},
    {"SRV", V_STR},
    {"SRV_SUFFIX", V_STR},
    {"URL", V_STR},
    {"PROXY", V_STR},
    {"CACERT", V_STR},
    {"CERT", V_STR},
    {"KEY", V_STR},
    {"VERIFY", V_BOOL},
    {"TOKEN", V_STR},
    {"CHECKS", V_LIST},
    {"DC", V_STR},
    {"CONSISTENCY", V_STR},
    {"REGISTER_SERVICE", V_BOOL},
    {"SERVICE_CHECK_INTERVAL", V_STR},
    {"SERVICE_CHECK_TLS_SERVER_NAME", V_STR},
    {"SERVICE_TAGS", V_LIST},
    {"NAMESPACE", V_STR},
    {"CONTEXT", V_STR},
    {"USE_ENDPOINTS", V_BOOL},
    {"SCOPE_LABEL", V_STR},
    {"ROLE_LABEL", V_STR},
    {"POD_IP", V_STR},
    {"PORTS", V_LIST},
    {"LABELS", V_DICT},
    {"BYPASS_API_SERVICE", V_BOOL},
    {"RETRIABLE_HTTP_CODES", V_LIST},
    {"KEY_PASSWORD", V_STR},
    {"USE_SSL", V_BOOL},
    {"SET_ACLS", V_DICT},
    {"GROUP", V_INT},
    {"DATABASE", V_STR},
    {"LEADER_LABEL_VALUE", V_STR},
    {"FOLLOWER_LABEL_VALUE", V_STR},
    {"STANDBY_LEADER_LABEL_VALUE", V_STR},
    {"TMP_ROLE_LABEL", V_STR},
    {"AUTH_DATA", V_DICT},
};

static void apply_generic_dcs(struct envset *e, json_object *root, struct pgkeel_diag *diag)
{
	json_object *names = json_object_new_array();

	json_object_object_foreach(e->vars, k0, v0)
	{
		(void)v0;
		json_object_array_add(names, json_object_new_string(k0));
	}
	for (size_t i = 0; i < json_object_array_length(names); i++) {
		const char *var = json_object_get_string(json_object_array_get_idx(names, i));
		const char *rest = var + 8, *us = strchr(rest, '_');
		char *secname, *val;

		if (us == NULL || us == rest)
			continue;
		for (size_t j = 0; j < PGKEEL_ARRAY_LEN(dcs_suffixes); j++) {
			if (strcmp(us + 1, dcs_suffixes[j].suffix) != 0)
				continue;
			secname = strndup(rest, (size_t)(us - rest));
			if (secname == NULL)
				break;
			if (strcmp(secname, "CITUS") == 0 && strcmp(us + 1, "GROUP") != 0 &&
			    strcmp(us + 1, "DATABASE") != 0) {
				free(secname);
				break;
			}
			val = env_pop(e, rest);
			if (val != NULL) {
				char *lsec = lower_dup(secname), *lkey = lower_dup(us + 1);

				put_typed(section(root, lsec), lkey, var, val, dcs_suffixes[j].type,
				          diag);
				free(lsec);
				free(lkey);
			}
			free(secname);
			break;
		}
	}
	json_object_put(names);
}

static json_object *build_overlay(struct pgkeel_diag *diag)
{
	struct envset e;
	json_object *root = json_object_new_object();
	char *v;

	envset_collect(&e);

	static const char *const top[] = {"NAME", "NAMESPACE", "SCOPE", NULL};
	for (int i = 0; top[i] != NULL; i++) {
		v = env_pop(&e, top[i]);
		if (v != NULL) {
			char *k = lower_dup(top[i]);

			json_object_object_add(root, k, json_object_new_string(v));
			free(k);
			free(v);
		}
	}
	/* legacy spellings first, so the current names win */
	static const struct {
		const char *legacy, *key;
	} legacy[] = {
	    {"LOGLEVEL", "level"}, {"LOGFORMAT", "format"}, {"LOG_DATEFMT", "dateformat"}};
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(legacy); i++) {
		v = env_pop(&e, legacy[i].legacy);
		if (v != NULL) {
			json_object_object_add(section(root, "log"), legacy[i].key,
			                       json_object_new_string(v));
			free(v);
		}
	}
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(simple_keys); i++) {
		v = env_pop(&e, simple_keys[i].var);
		if (v != NULL) {
			char *var = pgkeel_asprintf("PATRONI_%s", simple_keys[i].var);

			put_typed(section(root, simple_keys[i].section), simple_keys[i].key, var, v,
			          simple_keys[i].type, diag);
			free(var);
		}
	}
	for (int i = 0; bin_tools[i] != NULL; i++) {
		char *suffix = pgkeel_asprintf("POSTGRESQL_BIN_%s", bin_tools[i]);

		v = env_pop(&e, suffix);
		if (v != NULL) {
			char *k = lower_dup(bin_tools[i]);

			json_object_object_add(section(section(root, "postgresql"), "bin_name"), k,
			                       json_object_new_string(v));
			free(k);
			free(v);
		}
		free(suffix);
	}
	v = env_pop(&e, "RESTAPI_USERNAME");
	if (v != NULL) {
		json_object_object_add(section(section(root, "restapi"), "authentication"),
		                       "username", json_object_new_string(v));
		free(v);
	}
	v = env_pop(&e, "RESTAPI_PASSWORD");
	if (v != NULL) {
		json_object_object_add(section(section(root, "restapi"), "authentication"),
		                       "password", json_object_new_string(v));
		free(v);
	}
	static const char *const users[] = {"REPLICATION", "SUPERUSER", "REWIND", NULL};
	for (int u = 0; users[u] != NULL; u++) {
		for (int p = 0; auth_params[p] != NULL; p++) {
			char *suffix = pgkeel_asprintf("%s_%s", users[u], auth_params[p]);

			v = env_pop(&e, suffix);
			if (v != NULL) {
				char *lu = lower_dup(users[u]), *lp = lower_dup(auth_params[p]);
				json_object *auth =
				    section(section(root, "postgresql"), "authentication");

				json_object_object_add(section(auth, lu), lp,
				                       json_object_new_string(v));
				free(lu);
				free(lp);
				free(v);
			}
			free(suffix);
		}
	}
	apply_generic_dcs(&e, root, diag);
	/* etcd credentials only when that section exists already */
	static const char *const etcds[] = {"etcd", "etcd3", NULL};
	for (int i = 0; etcds[i] != NULL; i++) {
		json_object *sec;
		char *up = pgkeel_asprintf("%s_USERNAME", i == 0 ? "ETCD" : "ETCD3");
		char *pp = pgkeel_asprintf("%s_PASSWORD", i == 0 ? "ETCD" : "ETCD3");

		if (json_object_object_get_ex(root, etcds[i], &sec)) {
			v = env_pop(&e, up);
			if (v != NULL) {
				json_object_object_add(sec, "username", json_object_new_string(v));
				free(v);
			}
			v = env_pop(&e, pp);
			if (v != NULL) {
				json_object_object_add(sec, "password", json_object_new_string(v));
				free(v);
			}
		}
		free(up);
		free(pp);
	}
	/* Remaining PATRONI_<user>_PASSWORD define bootstrap users. */
	{
		json_object *names = json_object_new_array();
		json_object *busers = NULL;

		json_object_object_foreach(e.vars, k1, v1)
		{
			(void)v1;
			json_object_array_add(names, json_object_new_string(k1));
		}
		for (size_t i = 0; i < json_object_array_length(names); i++) {
			const char *var =
			    json_object_get_string(json_object_array_get_idx(names, i));
			size_t n = strlen(var);
			char *uname, *opts_suffix;
			char *pw, *opts;

			if (n <= 8 + 9 || strcmp(var + n - 9, "_PASSWORD") != 0)
				continue;
			uname = strndup(var + 8, n - 8 - 9);
			if (uname == NULL)
				continue;
			pw = env_pop(&e, var + 8);
			opts_suffix = pgkeel_asprintf("%s_OPTIONS", uname);
			opts = env_pop(&e, opts_suffix);
			if (pw != NULL) {
				json_object *u = json_object_new_object();

				json_object_object_add(u, "password", json_object_new_string(pw));
				if (opts != NULL) {
					json_object *l = pgkeel_env_parse_list(opts);

					if (l != NULL && json_object_array_length(l) > 0)
						json_object_object_add(u, "options", l);
					else
						json_object_put(l);
				}
				if (busers == NULL)
					busers = section(section(root, "bootstrap"), "users");
				json_object_object_add(busers, uname, u);
			}
			free(pw);
			free(opts);
			free(opts_suffix);
			free(uname);
		}
		json_object_put(names);
	}
	json_object_put(e.vars);
	return root;
}

json_object *pgkeel_config_env_overlay(struct pgkeel_diag *diag)
{
	if (cached_overlay == NULL)
		cached_overlay = build_overlay(diag);
	return cached_overlay;
}

void pgkeel_config_env_reset(void)
{
	json_object_put(cached_overlay);
	cached_overlay = NULL;
}
