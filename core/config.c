/*
 * Configuration loading and validation (see config.h); the effective view
 * is computed in config_effective.c.
 */
#include "autoconf.h"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_internal.h"
#include "config_schema.h"
#include "json.h"
#include "util.h"
#include "yaml_load.h"

/* ------------------------------------------------------------- diagnostics */

void pgkeel_diag_init(struct pgkeel_diag *d)
{
	d->errors = json_object_new_array();
	d->warnings = json_object_new_array();
}

void pgkeel_diag_clear(struct pgkeel_diag *d)
{
	json_object_put(d->errors);
	json_object_put(d->warnings);
	d->errors = NULL;
	d->warnings = NULL;
}

static void diag_add(json_object *arr, const char *fmt, va_list ap) PGKEEL_PRINTF(2, 0);

static void diag_add(json_object *arr, const char *fmt, va_list ap)
{
	char buf[1024];

	if (arr == NULL)
		return;
	if (!pgkeel_vfmt(buf, sizeof(buf), fmt, ap))
		memcpy(buf + sizeof(buf) - 4, "...", 4);
	/* the same finding twice (a directory of files, a reload) is noise */
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), buf) == 0)
			return;
	json_object_array_add(arr, json_object_new_string(buf));
}

void pgkeel_diag_error(struct pgkeel_diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(d->errors, fmt, ap);
	va_end(ap);
}

void pgkeel_diag_warning(struct pgkeel_diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(d->warnings, fmt, ap);
	va_end(ap);
}

size_t pgkeel_diag_errors(const struct pgkeel_diag *d)
{
	return d->errors ? json_object_array_length(d->errors) : 0;
}

size_t pgkeel_diag_warnings(const struct pgkeel_diag *d)
{
	return d->warnings ? json_object_array_length(d->warnings) : 0;
}

void pgkeel_diag_log(const struct pgkeel_diag *d)
{
	for (size_t i = 0; i < pgkeel_diag_warnings(d); i++)
		log_warning("%s",
		            json_object_get_string(json_object_array_get_idx(d->warnings, i)));
	for (size_t i = 0; i < pgkeel_diag_errors(d); i++)
		log_error("%s", json_object_get_string(json_object_array_get_idx(d->errors, i)));
}

/* ------------------------------------------------------------ json helpers */

json_object *pgkeel_json_path(json_object *root, const char *path)
{
	char *copy = pgkeel_strdup(path), *save = NULL;
	json_object *cur = root;

	for (char *seg = strtok_r(copy, ".", &save); seg != NULL && cur != NULL;
	     seg = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;

		if (!json_object_is_type(cur, json_type_object) ||
		    !json_object_object_get_ex(cur, seg, &next))
			cur = NULL;
		else
			cur = next;
	}
	free(copy);
	return cur;
}

json_object *pgkeel_cfg_jcopy(json_object *o)
{
	json_object *c = NULL;

	if (o == NULL)
		return NULL;
	if (json_object_deep_copy(o, &c, NULL) != 0) {
		fputs("pgkeel: out of memory\n", stderr);
		abort();
	}
	return c;
}

json_object *pgkeel_json_merge(json_object *base, json_object *over)
{
	json_object *out;

	if (!json_object_is_type(base, json_type_object) ||
	    !json_object_is_type(over, json_type_object))
		return pgkeel_cfg_jcopy(over);
	out = pgkeel_cfg_jcopy(base);
	json_object_object_foreach(over, k, v)
	{
		json_object *cur;

		if (v == NULL) {
			json_object_object_del(out, k);
		} else if (json_object_object_get_ex(out, k, &cur) &&
		           json_object_is_type(cur, json_type_object) &&
		           json_object_is_type(v, json_type_object)) {
			json_object_object_add(out, k, pgkeel_json_merge(cur, v));
		} else {
			json_object_object_add(out, k, pgkeel_cfg_jcopy(v));
		}
	}
	return out;
}

static const char *jstr(json_object *root, const char *path)
{
	json_object *o = pgkeel_json_path(root, path);

	return json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

/* Set root.a.b = v, creating maps on the way (takes ownership of v). */
static void jset(json_object *root, const char *path, json_object *v)
{
	char *copy = pgkeel_strdup(path), *dot;
	json_object *cur = root;
	char *seg = copy;

	while ((dot = strchr(seg, '.')) != NULL) {
		json_object *next;

		*dot = '\0';
		if (!json_object_object_get_ex(cur, seg, &next) ||
		    !json_object_is_type(next, json_type_object)) {
			next = json_object_new_object();
			json_object_object_add(cur, seg, next);
		}
		cur = next;
		seg = dot + 1;
	}
	json_object_object_add(cur, seg, v);
	free(copy);
}

/* ---------------------------------------------------------------- sources */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
	/* as Patroni: every *.yml / *.yaml, hidden ones included */
	return pgkeel_str_has_suffix(n, ".yml") || pgkeel_str_has_suffix(n, ".yaml");
}

/* A directory: every *.yml / *.yaml regular file, in name order, deep-merged. */
static json_object *load_dir(const char *dir, json_object *positions, struct pgkeel_diag *diag)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	json_object *acc = json_object_new_object();
	bool ok = true;

	if (d == NULL) {
		pgkeel_diag_error(diag, "%s: cannot open directory: %s", dir, strerror(errno));
		json_object_put(acc);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_yaml_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				abort();
		}
		names[n++] = pgkeel_strdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char *p = pgkeel_asprintf("%s/%s", dir, names[i]);
		struct stat st;
		json_object *doc = NULL, *merged;
		char err[1024];

		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			if (!pgkeel_yaml_load_file(p, &doc, positions, err, sizeof(err))) {
				pgkeel_diag_error(diag, "%s", err);
				ok = false;
			} else if (doc != NULL && !json_object_is_type(doc, json_type_object)) {
				pgkeel_diag_error(diag, "%s: the configuration must be a mapping",
				                  p);
				ok = false;
			} else if (doc != NULL) {
				merged = pgkeel_json_merge(acc, doc);
				json_object_put(acc);
				acc = merged;
			}
			json_object_put(doc);
		}
		free(p);
		free(names[i]);
	}
	free(names);
	if (n == 0)
		pgkeel_diag_error(diag, "%s: the directory holds no *.yml or *.yaml file", dir);
	if (!ok || n == 0) {
		json_object_put(acc);
		return NULL;
	}
	return acc;
}

static json_object *load_source(const char *path, const struct pgkeel_config_opts *opts,
                                json_object *positions, char **source, bool *merge_env,
                                struct pgkeel_diag *diag)
{
	json_object *doc = NULL;
	char err[1024];
	struct stat st;

	*merge_env = opts->use_environ;
	const char *env = getenv("PGKEEL_CONFIGURATION");

	if (env == NULL || *env == '\0')
		env = getenv("PATRONI_CONFIGURATION");
	if (env != NULL && *env == '\0')
		env = NULL; /* empty: as unset, as in Patroni */
	/* As Patroni: no file argument, or a file that does not exist, with the
	 * whole YAML in the environment. */
	if (path == NULL || (env != NULL && stat(path, &st) != 0 && errno == ENOENT)) {
		if (env != NULL) {
			*source = pgkeel_strdup("PATRONI_CONFIGURATION");
			*merge_env = false; /* as Patroni: no other variable is merged then */
			bool parsed = pgkeel_yaml_parse(env, strlen(env), "PATRONI_CONFIGURATION",
			                                &doc, positions, err, sizeof(err));

			pgkeel_env_scrub("PATRONI_CONFIGURATION");
			pgkeel_env_scrub("PGKEEL_CONFIGURATION");
			env = NULL;
			if (!parsed) {
				pgkeel_diag_error(diag, "%s", err);
				return NULL;
			}
		} else {
			*source = pgkeel_strdup("environment");
			doc = json_object_new_object();
		}
	} else if (stat(path, &st) != 0) {
		*source = pgkeel_strdup(path);
		pgkeel_diag_error(diag, "%s: cannot read the configuration: %s", path,
		                  strerror(errno));
		return NULL;
	} else if (S_ISDIR(st.st_mode)) {
		*source = pgkeel_strdup(path);
		return load_dir(path, positions, diag);
	} else {
		*source = pgkeel_strdup(path);
		if (!pgkeel_yaml_load_file(path, &doc, positions, err, sizeof(err))) {
			pgkeel_diag_error(diag, "%s", err);
			return NULL;
		}
	}
	if (doc == NULL) {
		pgkeel_diag_error(diag, "%s: the configuration is empty", *source);
		return NULL;
	}
	if (!json_object_is_type(doc, json_type_object)) {
		pgkeel_diag_error(diag, "%s: the configuration must be a mapping of keys", *source);
		json_object_put(doc);
		return NULL;
	}
	return doc;
}

/* ----------------------------------------------------------- normalisation */

static void move_key(json_object *from, const char *key, json_object *to, const char *newkey)
{
	json_object *v;

	if (!json_object_object_get_ex(from, key, &v))
		return;
	if (!json_object_object_get_ex(to, newkey, NULL))
		json_object_object_add(to, newkey, json_object_get(v));
	json_object_object_del(from, key);
}

/* Patroni's legacy forms, rewritten into the current ones. */
static void normalise_local(json_object *local, const char *source, struct pgkeel_diag *diag)
{
	json_object *pg = pgkeel_json_path(local, "postgresql");
	json_object *zk = pgkeel_json_path(local, "zookeeper");

	if (json_object_is_type(pg, json_type_object)) {
		json_object *auth = NULL, *v;
		bool has_auth = json_object_object_get_ex(pg, "authentication", &auth);

		/*
		 * Patroni 3.0.2: without `authentication`, the old top-level
		 * `replication` and `superuser` maps are the credentials and
		 * `use_pg_rewind` follows the presence of `pg_rewind`; and a
		 * missing superuser is taken from `pg_rewind`.
		 */
		if (!has_auth && (json_object_object_get_ex(pg, "replication", NULL) ||
		                  json_object_object_get_ex(pg, "superuser", NULL) ||
		                  json_object_object_get_ex(pg, "pg_rewind", NULL))) {
			auth = json_object_new_object();
			json_object_object_add(pg, "authentication", auth);
			if (!json_object_object_get_ex(pg, "use_pg_rewind", NULL))
				json_object_object_add(
				    pg, "use_pg_rewind",
				    json_object_new_boolean(
				        json_object_object_get_ex(pg, "pg_rewind", NULL)));
			for (int i = 0; i < 2; i++) {
				const char *u = i == 0 ? "replication" : "superuser";

				if (!json_object_object_get_ex(pg, u, NULL))
					continue;
				pgkeel_diag_warning(diag,
				                    "%s: postgresql.%s is deprecated; use "
				                    "postgresql.authentication.%s",
				                    source, u, u);
				move_key(pg, u, auth, u);
			}
		}
		if (json_object_is_type(auth, json_type_object) &&
		    !json_object_object_get_ex(auth, "superuser", NULL) &&
		    json_object_object_get_ex(pg, "pg_rewind", &v)) {
			pgkeel_diag_warning(diag,
			                    "%s: postgresql.pg_rewind is deprecated; it is used "
			                    "as postgresql.authentication.superuser",
			                    source);
			move_key(pg, "pg_rewind", auth, "superuser");
		}
		if (json_object_object_get_ex(pg, "create_replica_method", NULL))
			move_key(pg, "create_replica_method", pg, "create_replica_methods");
		if (!json_object_object_get_ex(local, "name", NULL) &&
		    json_object_object_get_ex(pg, "name", NULL))
			move_key(pg, "name", local, "name");
	}
	if (json_object_is_type(zk, json_type_object) &&
	    json_object_object_get_ex(zk, "exhibitor", NULL))
		move_key(zk, "exhibitor", local, "exhibitor");
	/* restapi.auth: "user:password" (legacy) */
	{
		json_object *rest = pgkeel_json_path(local, "restapi");
		const char *auth = jstr(local, "restapi.auth");
		const char *colon = auth ? strchr(auth, ':') : NULL;

		if (colon != NULL && pgkeel_json_path(local, "restapi.authentication") == NULL) {
			json_object *a = json_object_new_object();

			json_object_object_add(
			    a, "username", json_object_new_string_len(auth, (int)(colon - auth)));
			json_object_object_add(a, "password", json_object_new_string(colon + 1));
			json_object_object_add(rest, "authentication", a);
		}
	}
}

/* --------------------------------------------------------------- validation */

struct vctx {
	const struct pgkeel_conf_key *tab;
	size_t tablen;
	json_object *positions;
	const char *source;
	const char *prefix; /* path prefix in the file for dynamic keys ("bootstrap.dcs") */
	json_object *local; /* for custom-method exceptions */
	struct pgkeel_diag *diag;
};

/* Position of the value at `path`, or of its key when `key` is set. */
static char *where_ex(const struct vctx *v, const char *path, bool key)
{
	char *full = v->prefix ? pgkeel_asprintf("%s%s.%s", key ? "@" : "", v->prefix, path)
	                       : pgkeel_asprintf("%s%s", key ? "@" : "", path);
	const char *pos = pgkeel_yaml_position(v->positions, full);
	char *w = pgkeel_strdup(pos ? pos : v->source);

	free(full);
	return w;
}

static char *where(const struct vctx *v, const char *path)
{
	return where_ex(v, path, false);
}

static char *display(const struct vctx *v, const char *path)
{
	return v->prefix ? pgkeel_asprintf("%s.%s", v->prefix, path) : pgkeel_strdup(path);
}

bool pgkeel_cfg_str_is_bool(const char *s)
{
	static const char *const words[] = {"on", "off", "true", "false", "yes",
	                                    "no", "1",   "0",    NULL};

	for (int i = 0; words[i] != NULL; i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static bool valid_port(const char *s)
{
	int64_t p;

	return pgkeel_parse_int64(s, &p) && p > 0 && p < 65536;
}

/* NULL when `o` fits `t`, else what was expected. */
static const char *type_mismatch(enum pgkeel_ctype t, json_object *o)
{
	enum json_type jt = json_object_get_type(o);
	int64_t iv;

	if (o == NULL)
		return NULL; /* null = not set */
	switch (t) {
	case PGKEEL_CT_STRING:
		return (jt == json_type_string || jt == json_type_int || jt == json_type_double)
		           ? NULL
		           : "expected a string";
	case PGKEEL_CT_INT:
		if (jt == json_type_int)
			return NULL;
		if (jt == json_type_string && pgkeel_parse_int64(json_object_get_string(o), &iv))
			return NULL;
		return "expected an integer";
	case PGKEEL_CT_BOOL:
		if (jt == json_type_boolean)
			return NULL;
		if (jt == json_type_string && pgkeel_cfg_str_is_bool(json_object_get_string(o)))
			return NULL;
		return "expected a boolean (true/false, on/off, yes/no)";
	case PGKEEL_CT_NUMBER:
		if (jt == json_type_int || jt == json_type_double)
			return NULL;
		return "expected a number";
	case PGKEEL_CT_HOSTPORT: {
		const char *s, *colon;

		if (jt != json_type_string)
			return "expected a string of the form host:port";
		s = json_object_get_string(o);
		colon = strrchr(s, ':');
		/* an empty host (":8008") means every address, as Patroni binds it */
		(void)s;
		if (colon == NULL || !valid_port(colon + 1))
			return "expected host:port with a port between 1 and 65535";
		return NULL;
	}
	case PGKEEL_CT_MAP:
	case PGKEEL_CT_FREEMAP:
		return jt == json_type_object ? NULL : "expected a mapping";
	case PGKEEL_CT_LIST:
		return jt == json_type_array ? NULL : "expected a list";
	case PGKEEL_CT_STRLIST:
		return (jt == json_type_array || jt == json_type_string)
		           ? NULL
		           : "expected a list or a comma-separated string";
	case PGKEEL_CT_LIST_OR_MAP:
		return (jt == json_type_array || jt == json_type_object)
		           ? NULL
		           : "expected a list or a mapping";
	case PGKEEL_CT_SCALAR:
		return (jt == json_type_array || jt == json_type_object) ? "expected a scalar value"
		                                                         : NULL;
	case PGKEEL_CT_ANY:
		return NULL;
	}
	return NULL;
}

static bool list_has_string(json_object *list, const char *s)
{
	if (json_object_is_type(list, json_type_string))
		return strcmp(json_object_get_string(list), s) == 0;
	if (!json_object_is_type(list, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i);

		if (json_object_is_type(e, json_type_string) &&
		    strcmp(json_object_get_string(e), s) == 0)
			return true;
	}
	return false;
}

/* Custom bootstrap / replica-method sections are user-named. */
static bool is_custom_section(const struct vctx *v, const char *path)
{
	const char *m;

	if (v->prefix != NULL || v->local == NULL)
		return false;
	if (strncmp(path, "bootstrap.", 10) == 0 && strchr(path + 10, '.') == NULL) {
		m = jstr(v->local, "bootstrap.method");
		return m != NULL && strcmp(m, path + 10) == 0;
	}
	if (strncmp(path, "postgresql.", 11) == 0 && strchr(path + 11, '.') == NULL) {
		return list_has_string(
		           pgkeel_json_path(v->local, "postgresql.create_replica_methods"),
		           path + 11) ||
		       list_has_string(pgkeel_json_path(v->local, "bootstrap.dcs.standby_cluster."
		                                                  "create_replica_methods"),
		                       path + 11);
	}
	return false;
}

static void validate_map(const struct vctx *v, json_object *map, const char *path);

static void validate_value(const struct vctx *v, const char *path, json_object *val)
{
	const struct pgkeel_conf_key *row = pgkeel_conf_key_find(v->tab, v->tablen, path);
	const char *bad;
	char *w, *d;

	/* rows under bootstrap.* / postgresql.* describe user-named method sections */
	if (row != NULL && v->prefix == NULL &&
	    ((strncmp(row->path, "bootstrap.*", 11) == 0 && strchr(".", row->path[11])) ||
	     (strncmp(row->path, "postgresql.*", 12) == 0 && strchr(".", row->path[12])))) {
		const char *dot = strchr(path, '.');
		const char *end = dot ? strchr(dot + 1, '.') : NULL;
		char *sec = end ? strndup(path, (size_t)(end - path)) : pgkeel_strdup(path);

		if (sec == NULL || !is_custom_section(v, sec))
			row = NULL;
		free(sec);
		if (row == NULL && end != NULL)
			return; /* the section itself was reported */
	}
	if (row == NULL) {
		w = where_ex(v, path, true);
		d = display(v, path);
		pgkeel_diag_warning(v->diag, "%s: unknown key '%s' (ignored)", w, d);
		free(w);
		free(d);
		return;
	}
	w = where(v, path);
	d = display(v, path);
	if (row->flags & PGKEEL_CF_UNSUPPORTED) {
		/* sections handled by the DCS selection report themselves */
	} else if ((bad = type_mismatch(row->type, val)) != NULL) {
		pgkeel_diag_error(v->diag, "%s: %s: %s", w, d, bad);
	} else if (row->flags & PGKEEL_CF_IGNORED) {
		free(w);
		w = where_ex(v, path, true);
		pgkeel_diag_warning(v->diag, "%s: %s is ignored here%s%s", w, d,
		                    row->doc ? ": " : "", row->doc ? row->doc : "");
	} else if ((row->flags & PGKEEL_CF_DEPRECATED) && row->alias_of != NULL) {
		pgkeel_diag_warning(v->diag, "%s: %s is deprecated; use %s", w, d, row->alias_of);
	}
	if (row->type == PGKEEL_CT_MAP && json_object_is_type(val, json_type_object) &&
	    !(row->flags & PGKEEL_CF_UNSUPPORTED))
		validate_map(v, val, path);
	free(w);
	free(d);
}

/* Python's str() of a number, for a string key given as a number (`name: 1`). */
static json_object *stringify(json_object *val)
{
	char *text = pgkeel_json_compact(val);
	json_object *o = json_object_new_string(text);

	free(text);
	return o;
}

static void validate_map(const struct vctx *v, json_object *map, const char *path)
{
	json_object *fix = json_object_new_object();

	json_object_object_foreach(map, k, val)
	{
		char *sub = path[0] ? pgkeel_asprintf("%s.%s", path, k) : pgkeel_strdup(k);
		const struct pgkeel_conf_key *row;

		if (strchr(k, '.') != NULL) {
			/* "log.level: DEBUG" at the top is not log: {level: DEBUG} */
			char *w = where_ex(v, sub, true);

			pgkeel_diag_warning(v->diag,
			                    "%s: unknown key '%s' (ignored; a dotted name is "
			                    "not a nested key)",
			                    w, k);
			free(w);
		} else if (v->prefix == NULL && strcmp(sub, "bootstrap.dcs") == 0) {
			/* checked against the dynamic table below */
			if (val != NULL && !json_object_is_type(val, json_type_object)) {
				char *w = where(v, sub);

				pgkeel_diag_error(v->diag, "%s: bootstrap.dcs: expected a mapping",
				                  w);
				free(w);
			}
		} else {
			validate_value(v, sub, val);
			row = pgkeel_conf_key_find(v->tab, v->tablen, sub);
			if (row != NULL && row->type == PGKEEL_CT_STRING &&
			    (json_object_is_type(val, json_type_int) ||
			     json_object_is_type(val, json_type_double)))
				json_object_object_add(fix, k, stringify(val));
		}
		free(sub);
	}
	json_object_object_foreach(fix, fk, fv)
	{
		json_object_object_add(map, fk, json_object_get(fv));
	}
	json_object_put(fix);
}

static void check_required(const struct vctx *v, json_object *root)
{
	for (size_t i = 0; i < v->tablen; i++) {
		const struct pgkeel_conf_key *row = &v->tab[i];
		const char *dot;
		char *parent;
		json_object *pv;

		if (!(row->flags & PGKEEL_CF_REQUIRED) || strchr(row->path, '*') != NULL)
			continue;
		dot = strrchr(row->path, '.');
		parent = dot ? strndup(row->path, (size_t)(dot - row->path)) : NULL;
		pv = parent ? pgkeel_json_path(root, parent) : root;
		if (pv != NULL && json_object_is_type(pv, json_type_object) &&
		    pgkeel_json_path(root, row->path) == NULL) {
			char *d = display(v, row->path);

			pgkeel_diag_error(v->diag, "%s: missing required key '%s'", v->source, d);
			free(d);
		}
		free(parent);
	}
}

/* ------------------------------------------------------------ DCS choice */

static const char *const dcs_order[] = {"consul",     "etcd", "etcd3",     "exhibitor",
                                        "kubernetes", "raft", "zookeeper", NULL};

static const char *select_dcs(json_object *local, const char *source, json_object *positions,
                              struct pgkeel_diag *diag)
{
	const char *chosen = NULL;
	char found[128] = "";
	size_t nfound = 0;

	for (int i = 0; dcs_order[i] != NULL; i++) {
		json_object *sec = pgkeel_json_path(local, dcs_order[i]);

		if (!json_object_is_type(sec, json_type_object))
			continue;
		if (chosen == NULL)
			chosen = dcs_order[i];
		nfound++;
		if (found[0])
			strncat(found, ", ", sizeof(found) - strlen(found) - 1);
		strncat(found, dcs_order[i], sizeof(found) - strlen(found) - 1);
	}
	if (chosen == NULL) {
		pgkeel_diag_error(diag,
		                  "%s: no DCS section: add one of etcd3:, consul:, zookeeper: "
		                  "or kubernetes:",
		                  source);
		return NULL;
	}
	if (nfound > 1)
		pgkeel_diag_warning(diag,
		                    "%s: several DCS sections (%s); using %s, as Patroni "
		                    "does",
		                    source, found, chosen);
	if (strcmp(chosen, "etcd") == 0 || strcmp(chosen, "exhibitor") == 0 ||
	    strcmp(chosen, "raft") == 0) {
		char *at = pgkeel_asprintf("@%s", chosen);
		const char *pos = pgkeel_yaml_position(positions, at);
		const char *hint =
		    strcmp(chosen, "etcd") == 0
		        ? "the etcd v2 API is not supported; use an etcd3: section (note that "
		          "etcd's v2 and v3 keyspaces are disjoint: a cluster stored through v2 "
		          "is not visible through v3, so migrate it rather than just renaming "
		          "the section)"
		    : strcmp(chosen, "exhibitor") == 0
		        ? "Exhibitor is not supported; list the ZooKeeper servers in a "
		          "zookeeper: section instead"
		        : "Patroni's built-in raft DCS is not supported; use etcd3:, consul: "
		          "or zookeeper:";

		pgkeel_diag_error(diag, "%s: %s: %s", pos ? pos : source, chosen, hint);
		free(at);
		return NULL;
	}
	return chosen;
}

/* ------------------------------------------------------------ timing */

struct timing {
	int64_t ttl, loop_wait, retry_timeout;
};

#define TIMING_MAX 1000000 /* seconds; anything larger is a typo */

/*
 * loop_wait + 2 * retry_timeout <= ttl, as newer Patroni enforces it:
 * loop_wait is reduced first, then retry_timeout.  ttl 10 / loop_wait 2 /
 * retry_timeout 3 is fine.
 */
static void check_timing(struct timing *t, bool strict, const char *where_,
                         struct pgkeel_diag *diag)
{
	void (*report)(struct pgkeel_diag *, const char *, ...) =
	    strict ? pgkeel_diag_error : pgkeel_diag_warning;

	if (t->ttl < 2) {
		pgkeel_diag_error(diag, "%s: ttl=%lld is too small", where_, (long long)t->ttl);
		return;
	}
	if (t->ttl > TIMING_MAX || t->loop_wait > TIMING_MAX || t->retry_timeout > TIMING_MAX) {
		pgkeel_diag_error(diag,
		                  "%s: ttl, loop_wait and retry_timeout must not exceed %d "
		                  "seconds",
		                  where_, TIMING_MAX);
		return;
	}
	if (t->loop_wait < 1) {
		report(diag, "%s: loop_wait=%lld can't be smaller than 1, using 1", where_,
		       (long long)t->loop_wait);
		t->loop_wait = 1;
	}
	if (t->retry_timeout < 1) {
		report(diag, "%s: retry_timeout=%lld can't be smaller than 1, using 1", where_,
		       (long long)t->retry_timeout);
		t->retry_timeout = 1;
	}
	if (t->loop_wait + 2 * t->retry_timeout <= t->ttl)
		return;
	{
		int64_t lw = t->loop_wait, rt = t->retry_timeout;

		if (t->ttl - 2 * rt >= 1) {
			lw = t->ttl - 2 * rt;
		} else {
			lw = 1;
			rt = (t->ttl - 1) / 2;
			if (rt < 1)
				rt = 1;
		}
		report(diag,
		       "%s: loop_wait (%lld) + 2*retry_timeout (%lld) > ttl (%lld): the leader "
		       "lock could expire before a renewal; using loop_wait=%lld "
		       "retry_timeout=%lld",
		       where_, (long long)t->loop_wait, (long long)t->retry_timeout,
		       (long long)t->ttl, (long long)lw, (long long)rt);
		t->loop_wait = lw;
		t->retry_timeout = rt;
	}
}

/* ------------------------------------------------------------ typed view */

static char *normalise_namespace(const char *ns)
{
	char *out = pgkeel_xcalloc(strlen(ns ? ns : "") + 3, 1);
	size_t j = 0;

	out[j++] = '/';
	for (const char *p = ns ? ns : ""; *p; p++) {
		if (*p == '/' && out[j - 1] == '/')
			continue;
		out[j++] = *p;
	}
	if (out[j - 1] != '/')
		out[j++] = '/';
	out[j] = '\0';
	return out;
}

static const char *pos_or_source(const struct pgkeel_config *c, const char *path)
{
	const char *p = pgkeel_yaml_position(c->positions, path);

	return p ? p : c->source;
}

/* An integer log setting within [min, max]; false (and an error) otherwise. */
static bool log_int(const struct pgkeel_config *c, json_object *logsec, const char *key,
                    int64_t min, int64_t max, int64_t *out, struct pgkeel_diag *diag)
{
	json_object *o = pgkeel_json_path(logsec, key);
	char *path = pgkeel_asprintf("log.%s", key);
	int64_t v;
	bool ok = true;

	if (o != NULL) {
		if (json_object_is_type(o, json_type_int))
			v = json_object_get_int64(o);
		else if (!pgkeel_parse_int64(json_object_get_string(o), &v))
			v = min - 1;
		if (v < min || v > max) {
			pgkeel_diag_error(diag, "%s: %s: expected an integer from %lld to %lld",
			                  pos_or_source(c, path), path, (long long)min,
			                  (long long)max);
			ok = false;
		} else {
			*out = v;
		}
	}
	free(path);
	return ok;
}

static void fill_log(struct pgkeel_config *c, json_object *logsec, struct pgkeel_diag *diag)
{
	json_object *o;
	int64_t v;

	pgkeel_log_config_defaults(&c->log);
	if (!json_object_is_type(logsec, json_type_object))
		return;
	if ((o = pgkeel_json_path(logsec, "level")) != NULL &&
	    !pgkeel_log_level_parse(json_object_get_string(o), &c->log.level))
		pgkeel_diag_error(diag,
		                  "%s: log.level: unknown level '%s' (DEBUG, INFO, WARNING, "
		                  "ERROR, CRITICAL)",
		                  pos_or_source(c, "log.level"), json_object_get_string(o));
	if ((o = pgkeel_json_path(logsec, "type")) != NULL) {
		const char *t = json_object_get_string(o);

		if (strcmp(t, "json") == 0)
			c->log.format = PGKEEL_LOG_JSON;
		else if (strcmp(t, "plain") != 0)
			pgkeel_diag_error(diag, "%s: log.type: expected plain or json, not '%s'",
			                  pos_or_source(c, "log.type"), t);
	}
	c->log.dateformat = jstr(logsec, "dateformat");
	c->log.dir = jstr(logsec, "dir");
	c->log.syslog_facility = jstr(logsec, "syslog");
	v = c->log.file_num;
	if (log_int(c, logsec, "file_num", 0, 1000, &v, diag))
		c->log.file_num = (int)v;
	v = c->log.file_size;
	if (log_int(c, logsec, "file_size", 4096, INT64_C(1) << 40, &v, diag))
		c->log.file_size = v;
	v = c->log.max_queue_size;
	if (log_int(c, logsec, "max_queue_size", 1, 1000000, &v, diag))
		c->log.max_queue_size = (int)v;
}

static bool fill_typed(struct pgkeel_config *c, const struct pgkeel_config_opts *opts,
                       struct pgkeel_diag *diag)
{
	json_object *eff = c->effective;
	json_object *sec;
	struct timing t;

	c->name = jstr(eff, "name");
	c->scope = jstr(eff, "scope");
	free(c->namespace_);
	c->namespace_ =
	    normalise_namespace(jstr(eff, "namespace") ? jstr(eff, "namespace") : "/service/");
	c->data_dir = jstr(eff, "postgresql.data_dir");
	c->backend_dir = jstr(c->local, "backend_dir");
	t.ttl = json_object_get_int64(pgkeel_json_path(eff, "ttl"));
	t.loop_wait = json_object_get_int64(pgkeel_json_path(eff, "loop_wait"));
	t.retry_timeout = json_object_get_int64(pgkeel_json_path(eff, "retry_timeout"));
	check_timing(&t, opts->strict,
	             c->dynamic_from_dcs ? "dynamic configuration"
	             : c->dynamic        ? pos_or_source(c, "bootstrap.dcs")
	                                 : c->source,
	             diag);
	c->ttl = (int)t.ttl;
	c->loop_wait = (int)t.loop_wait;
	c->retry_timeout = (int)t.retry_timeout;
	/* the effective view carries the clamped values, copied down as Patroni does */
	json_object_object_add(eff, "loop_wait", json_object_new_int64(t.loop_wait));
	json_object_object_add(eff, "retry_timeout", json_object_new_int64(t.retry_timeout));
	if (json_object_is_type(pgkeel_json_path(eff, "postgresql"), json_type_object))
		json_object_object_add(pgkeel_json_path(eff, "postgresql"), "retry_timeout",
		                       json_object_new_int64(t.retry_timeout));
	free(c->dcs_options_json);
	c->dcs_options_json = NULL;
	if (c->dcs_type != NULL && (sec = pgkeel_json_path(c->local, c->dcs_type)) != NULL)
		c->dcs_options_json = pgkeel_json_compact(sec);
	fill_log(c, pgkeel_json_path(c->local, "log"), diag);
	return pgkeel_diag_errors(diag) == 0;
}

/* ------------------------------------------------------------ public API */

static void config_free(struct pgkeel_config *c)
{
	if (c == NULL)
		return;
	free(c->source);
	json_object_put(c->local);
	json_object_put(c->positions);
	json_object_put(c->dynamic);
	json_object_put(c->effective);
	free(c->namespace_);
	free(c->dcs_options_json);
	free(c);
}

struct pgkeel_config *pgkeel_config_ref(struct pgkeel_config *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void pgkeel_config_unref(struct pgkeel_config *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

static void validate_local(struct pgkeel_config *c, const struct pgkeel_config_opts *opts,
                           struct pgkeel_diag *diag)
{
	struct vctx v = {
	    .tab = pgkeel_local_keys,
	    .tablen = pgkeel_local_keys_len,
	    .positions = c->positions,
	    .source = c->source,
	    .local = c->local,
	    .diag = diag,
	};
	json_object *dcs = pgkeel_json_path(c->local, "bootstrap.dcs");

	validate_map(&v, c->local, "");
	if (!opts->ctl)
		check_required(&v, c->local);
	if (json_object_is_type(dcs, json_type_object)) {
		struct vctx dv = v;

		dv.tab = pgkeel_dynamic_keys;
		dv.tablen = pgkeel_dynamic_keys_len;
		dv.prefix = "bootstrap.dcs";
		validate_map(&dv, dcs, "");
	}
	if (json_object_is_type(pgkeel_json_path(c->local, "citus"), json_type_object)) {
		const char *pos = pgkeel_yaml_position(c->positions, "@citus");

		pgkeel_diag_error(diag, "%s: citus: Citus clusters are not supported by pgkeel",
		                  pos ? pos : c->source);
	}
	c->dcs_type = select_dcs(c->local, c->source, c->positions, diag);
	(void)opts;
}

static struct pgkeel_config *config_build(json_object *local, json_object *positions, char *source,
                                          json_object *dynamic, bool from_dcs,
                                          const struct pgkeel_config_opts *opts,
                                          struct pgkeel_diag *diag)
{
	struct pgkeel_config *c = pgkeel_xcalloc(1, sizeof(*c));

	c->refs = 1;
	c->dynamic_from_dcs = from_dcs;
	c->source = source;
	c->local = local;
	c->positions = positions;
	c->dynamic = dynamic;
	validate_local(c, opts, diag);
	if (c->dynamic == NULL) {
		json_object *bdcs = pgkeel_json_path(local, "bootstrap.dcs");

		c->dynamic =
		    json_object_is_type(bdcs, json_type_object) ? pgkeel_cfg_jcopy(bdcs) : NULL;
	}
	c->effective = pgkeel_config_effective(c->local, c->dynamic, diag);
	if (!fill_typed(c, opts, diag)) {
		config_free(c);
		return NULL;
	}
	if (opts->check_env)
		pgkeel_config_check_environment(c, opts->strict, opts->offline, diag);
	if (pgkeel_diag_errors(diag) > 0) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* Values that came from the environment are reported as such, not at the file line. */
static void mark_env_positions(json_object *env, const char *prefix, json_object *positions)
{
	json_object_object_foreach(env, k, v)
	{
		char *path = prefix[0] ? pgkeel_asprintf("%s.%s", prefix, k) : pgkeel_strdup(k);
		char *at = pgkeel_asprintf("@%s", path);

		json_object_object_add(positions, path, json_object_new_string("environment"));
		json_object_object_add(positions, at, json_object_new_string("environment"));
		if (json_object_is_type(v, json_type_object))
			mark_env_positions(v, path, positions);
		free(at);
		free(path);
	}
}

struct pgkeel_config *pgkeel_config_load(const char *path, const struct pgkeel_config_opts *opts,
                                         struct pgkeel_diag *diag)
{
	json_object *positions = json_object_new_object();
	char *source = NULL;
	bool merge_env;
	json_object *local = load_source(path, opts, positions, &source, &merge_env, diag);

	/* the variables are consumed (and wiped) even when they are not merged */
	if (opts->use_environ)
		(void)pgkeel_config_env_overlay(diag);
	if (local == NULL) {
		free(source);
		json_object_put(positions);
		return NULL;
	}
	if (merge_env) {
		json_object *env = pgkeel_config_env_overlay(diag);
		json_object *merged = pgkeel_json_merge(local, env);

		mark_env_positions(env, "", positions);
		json_object_put(local);
		local = merged;
	}
	if (opts->overlay != NULL) {
		json_object *merged = pgkeel_json_merge(local, opts->overlay);

		json_object_put(local);
		local = merged;
	}
	normalise_local(local, source, diag);
	return config_build(local, positions, source, NULL, false, opts, diag);
}

/* Keep `old`'s value of `path` in `c` (with a warning) when a reload changed it. */
static bool keep_fixed(struct pgkeel_config *c, const struct pgkeel_config *old, const char *path,
                       struct pgkeel_diag *diag)
{
	json_object *ov = pgkeel_json_path(old->local, path);
	json_object *nv = pgkeel_json_path(c->local, path);

	if (json_object_equal(ov, nv))
		return false;
	pgkeel_diag_warning(diag,
	                    "%s cannot change at runtime; keeping '%s' (restart pgkeel to "
	                    "change it)",
	                    path, ov ? json_object_get_string(ov) : "");
	jset(c->local, path, pgkeel_cfg_jcopy(ov));
	return true;
}

struct pgkeel_config *pgkeel_config_reload(const struct pgkeel_config *old, const char *path,
                                           const struct pgkeel_config_opts *opts,
                                           struct pgkeel_diag *diag)
{
	static const char *const fixed[] = {
	    "name", "scope", "namespace", "postgresql.data_dir", "backend_dir", NULL};
	struct pgkeel_config *c;
	bool changed = false;

	/* As Patroni: a configuration that came from the environment is not re-read. */
	if (strcmp(old->source, "PATRONI_CONFIGURATION") == 0 ||
	    strcmp(old->source, "environment") == 0) {
		pgkeel_diag_warning(diag,
		                    "the configuration came from %s, which is read once at "
		                    "start; nothing to reload",
		                    old->source);
		return pgkeel_config_ref((struct pgkeel_config *)old);
	}
	c = pgkeel_config_load(path, opts, diag);
	if (c == NULL)
		return NULL;
	for (int i = 0; fixed[i] != NULL; i++)
		changed |= keep_fixed(c, old, fixed[i], diag);
	if (old->dcs_type != NULL &&
	    (c->dcs_type == NULL || strcmp(old->dcs_type, c->dcs_type) != 0)) {
		pgkeel_diag_warning(diag,
		                    "the DCS type cannot change at runtime; keeping %s (restart "
		                    "pgkeel to change it)",
		                    old->dcs_type);
		for (int i = 0; dcs_order[i] != NULL; i++)
			json_object_object_del(c->local, dcs_order[i]);
		json_object_object_add(
		    c->local, old->dcs_type,
		    pgkeel_cfg_jcopy(pgkeel_json_path(old->local, old->dcs_type)));
		for (int i = 0; dcs_order[i] != NULL; i++)
			if (strcmp(dcs_order[i], old->dcs_type) == 0)
				c->dcs_type = dcs_order[i];
		changed = true;
	} else if (old->dcs_type != NULL &&
	           !json_object_equal(pgkeel_json_path(old->local, old->dcs_type),
	                              pgkeel_json_path(c->local, c->dcs_type))) {
		pgkeel_diag_warning(diag,
		                    "the %s section cannot change at runtime; keeping the "
		                    "current one (restart pgkeel to change it)",
		                    old->dcs_type);
		json_object_object_add(
		    c->local, old->dcs_type,
		    pgkeel_cfg_jcopy(pgkeel_json_path(old->local, old->dcs_type)));
		changed = true;
	}
	/* a dynamic configuration read from the DCS outlives a file reload */
	if (old->dynamic_from_dcs) {
		json_object_put(c->dynamic);
		c->dynamic = pgkeel_cfg_jcopy(old->dynamic);
		c->dynamic_from_dcs = true;
		changed = true;
	}
	if (changed) {
		json_object_put(c->effective);
		c->effective = pgkeel_config_effective(c->local, c->dynamic, diag);
		if (!fill_typed(c, opts, diag)) {
			pgkeel_config_unref(c);
			return NULL;
		}
	}
	return c;
}

struct pgkeel_config *pgkeel_config_with_dynamic(const struct pgkeel_config *c,
                                                 json_object *dynamic, struct pgkeel_diag *diag)
{
	struct pgkeel_config_opts opts = {0};

	return config_build(pgkeel_cfg_jcopy(c->local), pgkeel_cfg_jcopy(c->positions),
	                    pgkeel_strdup(c->source), pgkeel_cfg_jcopy(dynamic), true, &opts, diag);
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pgkeel_config *current;

struct pgkeel_config *pgkeel_config_current(void)
{
	struct pgkeel_config *c;

	pthread_mutex_lock(&current_lock);
	c = pgkeel_config_ref(current);
	pthread_mutex_unlock(&current_lock);
	return c;
}

void pgkeel_config_publish(struct pgkeel_config *c)
{
	struct pgkeel_config *old;

	pgkeel_config_ref(c);
	pthread_mutex_lock(&current_lock);
	old = current;
	current = c;
	pthread_mutex_unlock(&current_lock);
	pgkeel_config_unref(old);
}
