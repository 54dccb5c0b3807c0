/*
 * Replica creation as Patroni 3.0.2 does it (pg_bootstrap.h), and the
 * removal of a data directory it needs.  Read against Patroni's
 * patroni/postgresql/bootstrap.py (create_replica, basebackup),
 * __init__.py (remove_data_directory) and Member.conn_kwargs.
 */
#include "autoconf.h"

#include "pg_bootstrap.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_task.h"
#include "util.h"

/* --------------------------------------------------------- data directory */

/* rm -rf of at/name (name itself included); symlinks are removed, never followed. */
static bool rm_tree_at(int at, const char *name, const char *path, int depth, char *err,
                       size_t errlen)
{
	struct stat st;
	DIR *d;
	int fd;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return true;
		pgkeel_pgt_set_err(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(at, name, 0) == -1 && errno != ENOENT) {
			pgkeel_pgt_set_err(err, errlen, "cannot remove %s: %s", path,
			                   strerror(errno));
			return false;
		}
		return true;
	}
	if (depth > 64) {
		pgkeel_pgt_set_err(err, errlen, "cannot remove %s: nested too deep", path);
		return false;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		pgkeel_pgt_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return false;
	}
	for (;;) {
		struct dirent *de;
		bool removed = false;

		while ((de = readdir(d)) != NULL) {
			char *sub;
			bool ok;

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			sub = pgkeel_asprintf("%s/%s", path, de->d_name);
			ok = rm_tree_at(dirfd(d), de->d_name, sub, depth + 1, err, errlen);
			free(sub);
			if (!ok) {
				closedir(d);
				return false;
			}
			removed = true;
		}
		if (!removed)
			break;
		/* entries removed while reading: look again until a pass finds none */
		rewinddir(d);
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) == -1 && errno != ENOENT) {
		pgkeel_pgt_set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool rm_tree(const char *path, char *err, size_t errlen)
{
	return rm_tree_at(AT_FDCWD, path, path, 0, err, errlen);
}

static bool is_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* rmtree(realpath(link)) when link is a symlink. */
static void rm_link_target(const char *link, bool ignore_errors, bool *ok, char *err, size_t errlen)
{
	struct stat st;
	char real[PATH_MAX];

	if (lstat(link, &st) == -1 || !S_ISLNK(st.st_mode) || realpath(link, real) == NULL)
		return;
	log_info("Removing %s directory: %s", ignore_errors ? "user defined tablespace" : "WAL",
	         real);
	if (!rm_tree(real, err, errlen) && !ignore_errors)
		*ok = false;
}

bool pgkeel_pg_remove_data_dir(const char *data_dir, char *err, size_t errlen)
{
	struct stat st;
	bool ok = true;

	log_info("Removing data directory: %s", data_dir);
	if (lstat(data_dir, &st) == -1) {
		if (errno == ENOENT)
			return true;
		pgkeel_pgt_set_err(err, errlen, "cannot stat %s: %s", data_dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(data_dir) == -1 && errno != ENOENT) {
			pgkeel_pgt_set_err(err, errlen, "cannot remove %s: %s", data_dir,
			                   strerror(errno));
			return false;
		}
		return true;
	}
	{
		static const char *const wal[] = {"pg_xlog", "pg_wal"};

		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(wal); i++) {
			char *p = pgkeel_asprintf("%s/%s", data_dir, wal[i]);

			rm_link_target(p, false, &ok, err, errlen);
			free(p);
		}
	}
	{
		char *ts = pgkeel_asprintf("%s/pg_tblspc", data_dir);
		DIR *d = opendir(ts);
		struct dirent *de;

		while (d != NULL && (de = readdir(d)) != NULL) {
			if (is_digits(de->d_name)) {
				char *p = pgkeel_asprintf("%s/%s", ts, de->d_name);
				char ignored[256];

				rm_link_target(p, true, &ok, ignored, sizeof(ignored));
				free(p);
			}
		}
		if (d != NULL)
			closedir(d);
		free(ts);
	}
	if (!ok)
		return false;
	return rm_tree(data_dir, err, errlen);
}

/* ----------------------------------------------------------------- source */

bool pgkeel_pg_source_from_url(const char *conn_url, struct pgkeel_pg_source *out)
{
	const char *p = strstr(conn_url != NULL ? conn_url : "", "://");
	const char *netloc, *end, *at, *h, *hend, *portp = NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return false;
	netloc = p + 3;
	end = netloc + strcspn(netloc, "/?#");
	/* user:password@ */
	for (at = end; at > netloc && at[-1] != '@'; at--)
		;
	h = at;
	if (*h == '[') {
		hend = memchr(h, ']', (size_t)(end - h));
		if (hend == NULL)
			return false;
		h++;
		if (hend + 1 < end) {
			if (hend[1] != ':')
				return false;
			portp = hend + 2;
		}
	} else {
		hend = memchr(h, ':', (size_t)(end - h));
		if (hend != NULL)
			portp = hend + 1;
		else
			hend = end;
	}
	n = (size_t)(hend - h);
	if (n == 0 || n >= sizeof(out->host))
		return false;
	for (size_t i = 0; i < n; i++)
		out->host[i] = (char)tolower((unsigned char)h[i]);
	if (portp != NULL && portp < end) {
		char buf[16];
		int64_t v;

		n = (size_t)(end - portp);
		if (n >= sizeof(buf))
			return false;
		memcpy(buf, portp, n);
		buf[n] = '\0';
		if (!is_digits(buf) || !pgkeel_parse_int64(buf, &v) || v < 0 || v > 65535)
			return false;
		(void)pgkeel_fmt(out->port, sizeof(out->port), "%d", (int)v);
	} else {
		(void)pgkeel_fmt(out->port, sizeof(out->port), "5432");
	}
	if (*end == '/') {
		n = strcspn(end + 1, "?#");
		if (n >= sizeof(out->dbname))
			return false;
		memcpy(out->dbname, end + 1, n);
		out->dbname[n] = '\0';
	}
	return true;
}

/* --------------------------------------------------------------- replicas */

static const char *const basebackup_forbidden[] = {
    "pgdata", "format", "wal-method", "xlog-method", "gzip",     "version", "compress",
    "dbname", "host",   "port",       "username",    "password", NULL};

static json_object *configured_methods(const struct pgkeel_config *cfg)
{
	json_object *pg = pgkeel_pgt_pg_section(cfg);
	json_object *m = pgkeel_pgt_jget(pg, "create_replica_methods");

	if (!pgkeel_json_truthy(m))
		m = pgkeel_pgt_jget(pg, "create_replica_method");
	return m;
}

static bool works_without_leader(const struct pgkeel_config *cfg, const char *method)
{
	json_object *mc = pgkeel_pgt_jget(pgkeel_pgt_pg_section(cfg), method);

	return strcmp(method, "basebackup") != 0 &&
	       (pgkeel_json_truthy(pgkeel_pgt_jget(mc, "no_master")) ||
	        pgkeel_json_truthy(pgkeel_pgt_jget(mc, "no_leader")));
}

bool pgkeel_pg_replica_without_leader(const struct pgkeel_config *cfg, json_object *methods)
{
	if (methods == NULL)
		methods = configured_methods(cfg);
	for (size_t i = 0;
	     json_object_is_type(methods, json_type_array) && i < json_object_array_length(methods);
	     i++) {
		const char *m = pgkeel_pgt_jstr(json_object_array_get_idx(methods, i));

		if (m != NULL && works_without_leader(cfg, m))
			return true;
	}
	return false;
}

/* Start removing the data directory; the task goes on at `after` once it is gone. */
void pgkeel_pgt_replica_wipe(struct pgkeel_pg_task *t, enum pgkeel_pgt_step after)
{
	struct pgkeel_pgt_wiper *w = pgkeel_pgt_wiper_start(t->data_dir);

	t->after_wipe = after;
	if (pgkeel_pgt_wiper_fd(w) == -1) { /* no thread: it was done here */
		pgkeel_pgt_wiper_free(w);
		t->step = after;
		return;
	}
	t->wipe = w;
	t->step = PGKEEL_PGT_WIPE;
}

/* Is the removal over?  Never waits, unless `block` (pgkeel_pg_task_free). */
bool pgkeel_pgt_wipe_finished(struct pgkeel_pg_task *t, bool block)
{
	if (!pgkeel_pgt_wiper_done(t->wipe, block))
		return false;
	pgkeel_pgt_wiper_free(t->wipe);
	t->wipe = NULL;
	return true;
}

int pgkeel_pgt_wipe_fd(const struct pgkeel_pg_task *t)
{
	return pgkeel_pgt_wiper_fd(t->wipe);
}

/* A method failed: remember why (the error of the whole task if it was the last). */
static void rc_method_failed(struct pgkeel_pg_task *t, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
static void rc_method_failed(struct pgkeel_pg_task *t, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	free(t->last_failure);
	t->last_failure = pgkeel_strdup(msg);
	t->mi++;
	t->step = PGKEEL_PGT_RC_NEXT;
}

/* postgresql.<m> as (key, value text) pairs plus Patroni's default parameters. */
static char **custom_replica_argv(struct pgkeel_pg_task *t, const char *m, char *err, size_t errlen)
{
	static const char *const dropped[] = {"no_params", "no_master", "no_leader", "keep_data"};
	json_object *mc = pgkeel_pgt_jget(pgkeel_pgt_pg_section(t->cfg), m);
	bool no_params = pgkeel_json_truthy(pgkeel_pgt_jget(mc, "no_params"));
	const char *command = m;
	struct pgkeel_pgt_strv keys = {0}, vals = {0}, a = {0};
	const char *defaults[4][2] = {{"scope", t->cfg->scope != NULL ? t->cfg->scope : ""},
	                              {"role", "replica"},
	                              {"datadir", t->data_dir},
	                              {"connstring", t->connstring}};
	char **words;

	if (json_object_is_type(mc, json_type_object)) {
		json_object_object_foreach(mc, k, v)
		{
			bool skip = false;

			if (strcmp(k, "command") == 0) {
				if (pgkeel_pgt_jstr(v) == NULL) {
					pgkeel_pgt_set_err(err, errlen,
					                   "postgresql.%s.command must be a string",
					                   m);
					pgkeel_argv_free(pgkeel_pgt_strv_finish(&keys));
					pgkeel_argv_free(pgkeel_pgt_strv_finish(&vals));
					return NULL;
				}
				command = pgkeel_pgt_jstr(v);
				continue;
			}
			for (size_t i = 0; no_params && i < PGKEEL_ARRAY_LEN(dropped); i++)
				skip = skip || strcmp(k, dropped[i]) == 0;
			if (skip)
				continue;
			pgkeel_pgt_strv_push(&keys, pgkeel_strdup(k));
			pgkeel_pgt_strv_push(&vals, pgkeel_pg_value_text(v));
		}
	}
	pgkeel_pgt_strv_finish(&keys);
	pgkeel_pgt_strv_finish(&vals);
	if (!no_params) {
		/* dict.update(): existing keys keep their place, new ones go last */
		for (size_t d = 0; d < PGKEEL_ARRAY_LEN(defaults); d++) {
			size_t i;

			for (i = 0; i < keys.n && strcmp(keys.v[i], defaults[d][0]) != 0; i++)
				;
			if (i < keys.n) {
				free(vals.v[i]);
				vals.v[i] = pgkeel_strdup(defaults[d][1]);
			} else {
				pgkeel_pgt_strv_push(&keys, pgkeel_strdup(defaults[d][0]));
				pgkeel_pgt_strv_push(&vals, pgkeel_strdup(defaults[d][1]));
			}
		}
	}
	words = pgkeel_pgt_shlex_split(command, err, errlen);
	if (words != NULL && words[0] == NULL) {
		pgkeel_pgt_set_err(err, errlen, "the command of replica method %s is empty", m);
		pgkeel_argv_free(words);
		words = NULL;
	}
	if (words != NULL) {
		for (size_t i = 0; words[i] != NULL; i++)
			pgkeel_pgt_strv_push(&a, words[i]);
		free(words);
		for (size_t i = 0; i < keys.n; i++)
			pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--%s=%s", keys.v[i], vals.v[i]));
	}
	pgkeel_argv_free(keys.v);
	pgkeel_argv_free(vals.v);
	return words != NULL ? pgkeel_pgt_strv_finish(&a) : NULL;
}

/* pg_basebackup --pgdata=<data_dir> -X stream --dbname=<dsn> <postgresql.basebackup> */
static char **basebackup_argv(struct pgkeel_pg_task *t)
{
	const struct pgkeel_pgt_opt_rules rules = {"basebackup", "postgresql.basebackup",
	                                           basebackup_forbidden, false,
	                                           t->server_version >= 150000};
	struct pgkeel_pgt_strv a = {0};

	pgkeel_pgt_strv_push(&a, pgkeel_pgt_bin_path(t->cfg, "pg_basebackup"));
	pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--pgdata=%s", t->data_dir));
	pgkeel_pgt_strv_push(&a, pgkeel_strdup("-X"));
	pgkeel_pgt_strv_push(&a, pgkeel_strdup("stream"));
	pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--dbname=%s", t->connstring));
	/* not strict: problems are logged and the option dropped */
	(void)pgkeel_pgt_user_options(
	    &rules, pgkeel_pgt_jget(pgkeel_pgt_pg_section(t->cfg), "basebackup"), &a, NULL, 0);
	return pgkeel_pgt_strv_finish(&a);
}

static void rc_next(struct pgkeel_pg_task *t)
{
	const char *m;

	if (t->mi >= t->nmethods) {
		pgkeel_pgt_replica_wipe(t, PGKEEL_PGT_RC_FAILED);
		return;
	}
	m = t->methods[t->mi];
	if (strcmp(m, "basebackup") == 0) {
		if (t->bb_argv == NULL)
			t->bb_argv = basebackup_argv(t);
		t->attempt = 0;
		t->step = PGKEEL_PGT_RC_BB_START;
		return;
	}
	t->keep_data = pgkeel_json_truthy(
	    pgkeel_pgt_jget(pgkeel_pgt_jget(pgkeel_pgt_pg_section(t->cfg), m), "keep_data"));
	t->step = PGKEEL_PGT_RC_CUSTOM_START;
	if (!pgkeel_pg_data_dir_empty(t->data_dir)) {
		if (t->keep_data)
			log_info("Leaving data directory uncleaned");
		else
			pgkeel_pgt_replica_wipe(t, PGKEEL_PGT_RC_CUSTOM_START);
	}
}

static void rc_custom_start(struct pgkeel_pg_task *t)
{
	const char *m = t->methods[t->mi];
	char err[1024], what[256];
	char **argv = custom_replica_argv(t, m, err, sizeof(err));

	(void)pgkeel_fmt(what, sizeof(what), "replica method %s", m);
	if (argv == NULL || !pgkeel_pgt_task_spawn(t, argv, t->base_env, what, err, sizeof(err))) {
		if (argv == NULL)
			log_error("replica method %s: %s", m, err);
		rc_method_failed(t, "Error creating replica using method %s: %s", m, err);
		return;
	}
	t->step = PGKEEL_PGT_RC_CUSTOM_WAIT;
}

static void rc_succeeded(struct pgkeel_pg_task *t, const char *m)
{
	log_info("replica has been created using %s", m);
	t->used_method = pgkeel_strdup(m);
	t->state = "stopped";
	t->status = PGKEEL_PG_TASK_SUCCEEDED;
	t->step = PGKEEL_PGT_DONE;
}

/* An attempt failed: retry after the pause, or give the method up. */
static void rc_bb_attempt_failed(struct pgkeel_pg_task *t, const char *why)
{
	t->attempt++;
	if (t->attempt < PGKEEL_PG_BASEBACKUP_ATTEMPTS) {
		log_error("Error when fetching backup: %s", why);
		log_warning("Trying again in %d seconds", (t->retry_ms + 999) / 1000);
		t->wake_at = pgkeel_now_monotonic_ms() + t->retry_ms;
		t->step = PGKEEL_PGT_RC_BB_SLEEP;
		return;
	}
	rc_method_failed(t, "Error when fetching backup: %s", why);
}

static void rc_bb_spawn(struct pgkeel_pg_task *t)
{
	struct pgkeel_pgt_strv a = {0};
	char err[1024];

	for (size_t i = 0; t->bb_argv[i] != NULL; i++)
		pgkeel_pgt_strv_push(&a, pgkeel_strdup(t->bb_argv[i]));
	if (!pgkeel_pgt_task_spawn(t, pgkeel_pgt_strv_finish(&a), t->base_env, "pg_basebackup", err,
	                           sizeof(err))) {
		rc_bb_attempt_failed(t, err);
		return;
	}
	t->step = PGKEEL_PGT_RC_BB_WAIT;
}

void pgkeel_pgt_replica_poll(struct pgkeel_pg_task *t)
{
	for (;;) {
		switch (t->step) {
		case PGKEEL_PGT_WIPE:
			if (!pgkeel_pgt_wipe_finished(t, false))
				return;
			t->step = t->after_wipe;
			break;
		case PGKEEL_PGT_RC_NEXT:
			rc_next(t);
			break;
		case PGKEEL_PGT_RC_CUSTOM_START:
			rc_custom_start(t);
			break;
		case PGKEEL_PGT_RC_CUSTOM_WAIT:
			if (!pgkeel_pgt_child_done(t))
				return;
			if (pgkeel_pgt_child_ok(t)) {
				rc_succeeded(t, t->methods[t->mi]);
				return;
			} else {
				char *why = pgkeel_pgt_child_failure(t);
				bool keep = t->keep_data;

				rc_method_failed(t, "Error creating replica using method %s: %s",
				                 t->methods[t->mi], why);
				free(why);
				if (!keep)
					pgkeel_pgt_replica_wipe(t, PGKEEL_PGT_RC_NEXT);
			}
			break;
		case PGKEEL_PGT_RC_BB_START:
			t->step = PGKEEL_PGT_RC_BB_SPAWN;
			if (!pgkeel_pg_data_dir_empty(t->data_dir))
				pgkeel_pgt_replica_wipe(t, PGKEEL_PGT_RC_BB_SPAWN);
			break;
		case PGKEEL_PGT_RC_BB_SPAWN:
			rc_bb_spawn(t);
			break;
		case PGKEEL_PGT_RC_BB_WAIT:
			if (!pgkeel_pgt_child_done(t))
				return;
			if (pgkeel_pgt_child_ok(t)) {
				rc_succeeded(t, "basebackup");
				return;
			} else {
				char *why = pgkeel_pgt_child_failure(t);
				char *msg = pgkeel_asprintf("pg_basebackup %s", why);

				rc_bb_attempt_failed(t, msg);
				free(msg);
				free(why);
			}
			break;
		case PGKEEL_PGT_RC_BB_SLEEP:
			if (pgkeel_now_monotonic_ms() < t->wake_at)
				return;
			t->step = PGKEEL_PGT_RC_BB_START;
			break;
		case PGKEEL_PGT_RC_FAILED:
			t->state = "stopped";
			if (t->cancelled)
				pgkeel_pgt_task_fail(t, "create replica cancelled");
			else
				pgkeel_pgt_task_fail(t, "failed to create a replica: %s",
				                     t->last_failure != NULL ? t->last_failure
				                                             : "no method to try");
			return;
		default:
			return;
		}
	}
}

struct pgkeel_pg_task *pgkeel_pg_create_replica_start(const struct pgkeel_pg_boot_opts *opts,
                                                      const struct pgkeel_pg_source *src,
                                                      json_object *methods, char *err,
                                                      size_t errlen)
{
	struct pgkeel_pg_task *t;
	struct pgkeel_pgt_strv ms = {0};
	json_object *r = NULL;
	char *pgpass_env = NULL;

	if (opts->cfg->data_dir == NULL || opts->cfg->data_dir[0] == '\0') {
		pgkeel_pgt_set_err(err, errlen, "postgresql.data_dir is not set");
		return NULL;
	}
	if (methods == NULL)
		methods = configured_methods(opts->cfg);
	for (size_t i = 0;
	     json_object_is_type(methods, json_type_array) && i < json_object_array_length(methods);
	     i++) {
		const char *m = pgkeel_pgt_jstr(json_object_array_get_idx(methods, i));

		if (m == NULL || m[0] == '\0') {
			log_warning("create_replica_methods: ignoring a method that is not a name");
			continue;
		}
		if (src == NULL && !works_without_leader(opts->cfg, m))
			continue;
		pgkeel_pgt_strv_push(&ms, pgkeel_strdup(m));
	}
	if (ms.n == 0 && src != NULL)
		pgkeel_pgt_strv_push(&ms, pgkeel_strdup("basebackup"));
	if (ms.n == 0) {
		pgkeel_pgt_set_err(err, errlen,
		                   "no replica creation method works without a leader");
		pgkeel_argv_free(pgkeel_pgt_strv_finish(&ms));
		return NULL;
	}

	t = pgkeel_pgt_task_new(PGKEEL_PG_TASK_CREATE_REPLICA, opts);
	t->methods = pgkeel_pgt_strv_finish(&ms);
	t->nmethods = ms.n;
	if (src != NULL) {
		r = json_object_new_object();
		json_object_object_add(r, "host", json_object_new_string(src->host));
		json_object_object_add(r, "port", json_object_new_string(src->port));
		json_object_object_add(
		    r, "dbname",
		    json_object_new_string(src->dbname[0] != '\0'
		                               ? src->dbname
		                               : pgkeel_pgt_database_name(opts->cfg)));
		pgkeel_pgt_add_auth(r, pgkeel_pgt_auth_section(opts->cfg, "replication"));
		if (!pgkeel_pgt_write_pgpass(t, r, &pgpass_env, err, errlen)) {
			json_object_put(r);
			pgkeel_pg_task_free(t);
			return NULL;
		}
		t->connstring = pgkeel_pgt_format_dsn(r);
		json_object_put(r);
	} else {
		t->connstring = pgkeel_strdup("");
	}
	{
		struct pgkeel_pgt_strv e = {0};

		if (pgpass_env != NULL)
			pgkeel_pgt_strv_push(&e, pgpass_env);
		t->base_env = pgkeel_pgt_strv_finish(&e);
	}
	t->state = "creating replica";
	t->step = PGKEEL_PGT_RC_NEXT;
	/* start the first command now: the caller's first wait finds it running */
	pgkeel_pgt_replica_poll(t);
	return t;
}
