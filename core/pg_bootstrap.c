/*
 * Bootstrap and post-bootstrap as Patroni 3.0.2 does them, and the driver
 * of every task of pg_bootstrap.h (replica creation is in pg_replica.c,
 * what the tasks share in pg_task.c).  Read against Patroni's
 * patroni/postgresql/bootstrap.py (_initdb, _custom_bootstrap,
 * _post_restore, call_post_bootstrap, create_or_update_role,
 * post_bootstrap), config.py (append_pg_hba, local_connect_kwargs,
 * remove_recovery_conf) and __init__.py (data_directory_empty).
 */
#include "autoconf.h"

#include "pg_bootstrap.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_query.h"
#include "pg_task.h"
#include "util.h"

#define NO_PIDFD_POLL_MS         20
#define PGOPTIONS_POST_BOOTSTRAP "PGOPTIONS=-c synchronous_commit=local -c statement_timeout=0"

/* --------------------------------------------------------- data directory */

bool pgkeel_pg_data_dir_empty(const char *data_dir)
{
	char *ctl = pgkeel_asprintf("%s/global/pg_control", data_dir);
	struct stat st;
	DIR *d;
	struct dirent *de;
	bool empty = true;

	if (stat(ctl, &st) == 0 && S_ISREG(st.st_mode)) {
		free(ctl);
		return false;
	}
	free(ctl);
	d = opendir(data_dir);
	if (d == NULL)
		return errno == ENOENT;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' && strcmp(de->d_name, "lost+found") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

/* ------------------------------------------------------------ connections */

/* The key of obj equal to name ignoring case, or NULL. */
static json_object *ci_get(json_object *obj, const char *name)
{
	if (!json_object_is_type(obj, json_type_object))
		return NULL;
	json_object_object_foreach(obj, k, v)
	{
		if (strcasecmp(k, name) == 0)
			return v;
	}
	return NULL;
}

void pgkeel_pg_local_address(const struct pgkeel_config *cfg, bool replication, char **host,
                             char **port)
{
	struct pgkeel_pg_situation sit = {0};
	struct pgkeel_diag diag;
	json_object *params, *pg = pgkeel_pgt_pg_section(cfg);
	const char *listen, *usd;
	char *tcp = NULL;
	bool unix_socket;

	pgkeel_diag_init(&diag);
	sit.role = PGKEEL_PG_PRIMARY;
	sit.server_version = 150000;
	params = pgkeel_pg_server_params(cfg, &sit, &diag);
	pgkeel_diag_clear(&diag);

	*port = pgkeel_pg_value_text(ci_get(params, "port"));
	listen = pgkeel_pgt_jstr(ci_get(params, "listen_addresses"));
	if (listen == NULL)
		listen = "";
	/* _get_tcp_local_address */
	for (const char *p = listen;;) {
		size_t n = strcspn(p, ",");
		char *a = pgkeel_pgt_trimmed(p, n);

		for (char *q = a; *q != '\0'; q++)
			*q = (char)tolower((unsigned char)*q);
		if (strcmp(a, "*") == 0 || strcmp(a, "0.0.0.0") == 0 ||
		    strcmp(a, "127.0.0.1") == 0 || strcmp(a, "localhost") == 0) {
			free(a);
			free(tcp);
			tcp = pgkeel_strdup("localhost");
			break;
		}
		free(a);
		if (tcp == NULL)
			tcp = pgkeel_pgt_trimmed(p, n);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	unix_socket = pgkeel_json_truthy(
	    pgkeel_pgt_jget(pg, replication ? "use_unix_socket_repl" : "use_unix_socket"));
	*host = NULL;
	if (!unix_socket) {
		*host = tcp;
		tcp = NULL;
	} else if ((usd = pgkeel_pgt_jstr(ci_get(params, "unix_socket_directories"))) != NULL) {
		/* _get_unix_local_address: the first absolute entry, else TCP */
		for (const char *p = usd;;) {
			size_t n = strcspn(p, ",");
			char *d = pgkeel_pgt_trimmed(p, n);

			if (d[0] == '/') {
				*host = d;
				break;
			}
			free(d);
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
		if (*host == NULL) {
			*host = tcp;
			tcp = NULL;
		}
	}
	free(tcp);
	json_object_put(params);
}

/* ------------------------------------------------------------- bootstrap */

static const char *const initdb_forbidden[] = {"pgdata",    "nosync",  "pwfile",
                                               "sync-only", "version", NULL};

static void remove_pwfile(struct pgkeel_pg_task *t)
{
	if (t->pwfile == NULL)
		return;
	if (unlink(t->pwfile) == -1 && errno != ENOENT)
		log_warning("cannot remove %s: %s", t->pwfile, strerror(errno));
	free(t->pwfile);
	t->pwfile = NULL;
}

/* tempfile.mkstemp() with the password, owned by the children's user. */
static bool make_pwfile(struct pgkeel_pg_task *t, const char *password, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char *path =
	    pgkeel_asprintf("%s/pgkeel-pwfile-XXXXXX", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	size_t len = strlen(password), off = 0;
	int fd = mkostemp(path, O_CLOEXEC);

	if (fd == -1) {
		pgkeel_pgt_set_err(err, errlen, "cannot create a password file in %s: %s",
		                   tmp != NULL && tmp[0] == '/' ? tmp : "/tmp", strerror(errno));
		free(path);
		return false;
	}
	t->pwfile = path;
	while (off < len) {
		ssize_t n = write(fd, password + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			pgkeel_pgt_set_err(err, errlen, "cannot write %s: %s", path,
			                   strerror(errno));
			close(fd);
			remove_pwfile(t);
			return false;
		}
		off += (size_t)n;
	}
	if (!pgkeel_pgt_give_to_user(t, fd, path, err, errlen)) {
		close(fd);
		remove_pwfile(t);
		return false;
	}
	close(fd);
	return true;
}

static char **initdb_argv(struct pgkeel_pg_task *t, json_object *boot, char *err, size_t errlen)
{
	const struct pgkeel_pgt_opt_rules rules = {"initdb", "bootstrap.initdb", initdb_forbidden,
	                                           true, false};
	json_object *su = pgkeel_pgt_auth_section(t->cfg, "superuser");
	const char *username = pgkeel_pgt_jstr(pgkeel_pgt_jget(su, "username"));
	const char *password = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(su, "password"));
	struct pgkeel_pgt_strv a = {0};

	pgkeel_pgt_strv_push(&a, pgkeel_pgt_bin_path(t->cfg, "initdb"));
	if (!pgkeel_pgt_user_options(&rules, pgkeel_pgt_jget(boot, "initdb"), &a, err, errlen)) {
		pgkeel_argv_free(pgkeel_pgt_strv_finish(&a));
		return NULL;
	}
	if (username != NULL)
		pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--username=%s", username));
	if (password != NULL) {
		if (!make_pwfile(t, password, err, errlen)) {
			pgkeel_argv_free(pgkeel_pgt_strv_finish(&a));
			return NULL;
		}
		pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--pwfile=%s", t->pwfile));
	}
	pgkeel_pgt_strv_push(&a, pgkeel_strdup(t->data_dir));
	return pgkeel_pgt_strv_finish(&a);
}

static char **custom_bootstrap_argv(struct pgkeel_pg_task *t, json_object *mc, char *err,
                                    size_t errlen)
{
	static const char *const reserved[] = {
	    "command", "no_params", "keep_existing_recovery_conf", "recovery_conf", "scope",
	    "datadir", NULL};
	const char *command = pgkeel_pgt_jstr(pgkeel_pgt_jget(mc, "command"));
	char **words;
	struct pgkeel_pgt_strv a = {0};

	if (command == NULL) {
		pgkeel_pgt_set_err(err, errlen, "bootstrap.%s.command must be a string", t->method);
		return NULL;
	}
	words = pgkeel_pgt_shlex_split(command, err, errlen);
	if (words == NULL || words[0] == NULL) {
		if (words != NULL)
			pgkeel_pgt_set_err(err, errlen, "bootstrap.%s.command is empty", t->method);
		pgkeel_argv_free(words);
		return NULL;
	}
	for (size_t i = 0; words[i] != NULL; i++)
		pgkeel_pgt_strv_push(&a, words[i]);
	free(words);
	if (!pgkeel_json_truthy(pgkeel_pgt_jget(mc, "no_params"))) {
		pgkeel_pgt_strv_push(
		    &a, pgkeel_asprintf("--scope=%s", t->cfg->scope != NULL ? t->cfg->scope : ""));
		pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--datadir=%s", t->data_dir));
	}
	json_object_object_foreach(mc, k, v)
	{
		bool skip = false;
		char *text;

		for (size_t i = 0; reserved[i] != NULL; i++)
			skip = skip || strcmp(k, reserved[i]) == 0;
		if (skip)
			continue;
		text = pgkeel_pg_value_text(v);
		pgkeel_pgt_strv_push(&a, pgkeel_asprintf("--%s=%s", k, text));
		free(text);
	}
	return pgkeel_pgt_strv_finish(&a);
}

struct pgkeel_pg_task *pgkeel_pg_bootstrap_start(const struct pgkeel_pg_boot_opts *opts, char *err,
                                                 size_t errlen)
{
	json_object *boot = pgkeel_json_path(opts->cfg->local, "bootstrap");
	const char *method = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(boot, "method"));
	json_object *mc;
	struct pgkeel_pg_task *t;
	char **argv;
	char what[160];

	if (opts->cfg->data_dir == NULL || opts->cfg->data_dir[0] == '\0') {
		pgkeel_pgt_set_err(err, errlen, "postgresql.data_dir is not set");
		return NULL;
	}
	if (!pgkeel_pg_data_dir_empty(opts->cfg->data_dir)) {
		pgkeel_pgt_set_err(err, errlen, "cannot bootstrap: data directory %s is not empty",
		                   opts->cfg->data_dir);
		return NULL;
	}
	t = pgkeel_pgt_task_new(PGKEEL_PG_TASK_BOOTSTRAP, opts);
	if (method == NULL)
		method = "initdb";
	mc = pgkeel_pgt_jget(boot, method);
	if (strcmp(method, "initdb") != 0 && json_object_is_type(mc, json_type_object) &&
	    pgkeel_pgt_jhas(mc, "command")) {
		t->method = pgkeel_strdup(method);
		t->info.custom = true;
		t->info.keep_existing_recovery_conf =
		    pgkeel_json_truthy(pgkeel_pgt_jget(mc, "keep_existing_recovery_conf"));
		t->info.recovery_conf = pgkeel_pgt_jget(mc, "recovery_conf");
		argv = custom_bootstrap_argv(t, mc, err, errlen);
		t->state = "running custom bootstrap script";
		if (argv != NULL)
			log_info("Running custom bootstrap script: %s",
			         pgkeel_pgt_jstr(pgkeel_pgt_jget(mc, "command")));
		(void)pgkeel_fmt(what, sizeof(what), "bootstrap method %s", method);
	} else {
		t->method = pgkeel_strdup("initdb");
		argv = initdb_argv(t, boot, err, errlen);
		t->state = "initializing new cluster";
		(void)pgkeel_fmt(what, sizeof(what), "initdb");
	}
	t->info.method = t->method;
	if (argv == NULL) {
		pgkeel_pg_task_free(t);
		return NULL;
	}
	if (!pgkeel_pgt_task_spawn(t, argv, NULL, what, err, errlen)) {
		pgkeel_pg_task_free(t);
		return NULL;
	}
	t->step = PGKEEL_PGT_BOOT_RUN;
	return t;
}

static bool unlink_if_exists(const char *path, char *err, size_t errlen)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return true;
	pgkeel_pgt_set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
	return false;
}

/* _post_restore's trigger file and remove_recovery_conf, after a custom bootstrap. */
static bool after_custom_bootstrap(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	int major = pgkeel_pg_data_version(t->data_dir);
	json_object *rc = pgkeel_pgt_jget(pgkeel_pgt_pg_section(t->cfg), "recovery_conf");
	const char *trigger = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(
	    rc, major != 0 && major < 12 ? "trigger_file" : "promote_trigger_file"));
	char *path = pgkeel_pgt_path_join(t->data_dir, trigger != NULL ? trigger : "promote");
	bool ok = unlink_if_exists(path, err, errlen);

	free(path);
	if (!ok)
		return false;
	if (t->info.recovery_conf != NULL || t->info.keep_existing_recovery_conf)
		return true;
	{
		static const char *const files[] = {"recovery.conf", "standby.signal",
		                                    "recovery.signal"};

		for (size_t i = 0; ok && i < PGKEEL_ARRAY_LEN(files); i++) {
			path = pgkeel_pgt_path_join(t->data_dir, files[i]);
			ok = unlink_if_exists(path, err, errlen);
			free(path);
		}
	}
	return ok;
}

/* Patroni's append_pg_hba: bootstrap.pg_hba after initdb's lines. */
static bool append_pg_hba(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	json_object *pg = pgkeel_pgt_pg_section(t->cfg);
	json_object *lines = pgkeel_json_path(t->cfg->local, "bootstrap.pg_hba");
	const char *cd = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(pg, "config_dir"));
	const char *hba_file =
	    pgkeel_pgt_jstr_nonempty(ci_get(pgkeel_pgt_jget(pg, "parameters"), "hba_file"));
	char *config_dir = pgkeel_pgt_abs_path(cd != NULL ? cd : t->data_dir);
	char *path = pgkeel_pgt_path_join(config_dir, "pg_hba.conf");
	struct pgkeel_sbuf b = {0};
	bool ok = true, created;
	struct stat st;
	size_t off = 0;
	int fd;

	free(config_dir);
	if (pgkeel_json_truthy(pgkeel_pgt_jget(pg, "pg_hba"))) {
		free(path);
		return true;
	}
	if (hba_file != NULL) {
		char *hf = pgkeel_pgt_abs_path(hba_file);
		bool elsewhere = strcmp(hf, path) != 0;

		free(hf);
		if (elsewhere) {
			free(path);
			return true;
		}
	}
	pgkeel_sbuf_putc(&b, '\n');
	for (size_t i = 0;
	     json_object_is_type(lines, json_type_array) && i < json_object_array_length(lines);
	     i++) {
		char *l = pgkeel_pg_value_text(json_object_array_get_idx(lines, i));

		if (i > 0)
			pgkeel_sbuf_putc(&b, '\n');
		pgkeel_sbuf_puts(&b, l);
		free(l);
	}
	pgkeel_sbuf_putc(&b, '\n');
	created = lstat(path, &st) == -1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		pgkeel_pgt_set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		ok = false;
	}
	while (ok && off < b.len) {
		ssize_t n = write(fd, b.p + off, b.len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			pgkeel_pgt_set_err(err, errlen, "cannot write %s: %s", path,
			                   strerror(errno));
			ok = false;
			break;
		}
		off += (size_t)n;
	}
	if (ok && created)
		ok = pgkeel_pgt_give_to_user(t, fd, path, err, errlen);
	if (fd != -1 && close(fd) == -1 && ok) {
		pgkeel_pgt_set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
		ok = false;
	}
	free(b.p);
	free(path);
	return ok;
}

static void poll_bootstrap(struct pgkeel_pg_task *t)
{
	char err[1024];

	if (!pgkeel_pgt_child_done(t))
		return;
	remove_pwfile(t);
	if (!pgkeel_pgt_child_ok(t)) {
		char *why = pgkeel_pgt_child_failure(t);

		t->state = t->info.custom ? "custom bootstrap failed" : "initdb failed";
		pgkeel_pgt_task_fail(t, "%s %s", t->what, why);
		free(why);
		return;
	}
	if (t->info.custom && !after_custom_bootstrap(t, err, sizeof(err))) {
		pgkeel_pgt_task_fail(t, "%s", err);
		return;
	}
	if (!append_pg_hba(t, err, sizeof(err))) {
		pgkeel_pgt_task_fail(t, "%s", err);
		return;
	}
	t->status = PGKEEL_PG_TASK_SUCCEEDED;
	t->step = PGKEEL_PGT_DONE;
}

/* -------------------------------------------------------- post-bootstrap */

/* A role to create or alter, or a GRANT to the rewind role. */
struct pgkeel_pgt_role_job {
	char *role;        /* the role (quoted when used) */
	char *password;    /* NULL: no PASSWORD clause */
	char **options;    /* upper-cased, LOGIN added */
	const char *grant; /* GRANT EXECUTE on this function instead */
};

/* psycopg's quote_ident: always double-quoted. */
static char *quote_ident(const char *s)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			pgkeel_sbuf_putc(&b, '"');
		pgkeel_sbuf_putc(&b, *s);
	}
	pgkeel_sbuf_putc(&b, '"');
	return pgkeel_sbuf_finish(&b);
}

/* A string literal that means the same whatever standard_conforming_strings says. */
static char *quote_literal(const char *s)
{
	struct pgkeel_sbuf b = {0};

	if (strchr(s, '\\') != NULL)
		pgkeel_sbuf_putc(&b, 'E');
	pgkeel_sbuf_putc(&b, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'' || *s == '\\')
			pgkeel_sbuf_putc(&b, *s);
		pgkeel_sbuf_putc(&b, *s);
	}
	pgkeel_sbuf_putc(&b, '\'');
	return pgkeel_sbuf_finish(&b);
}

/* DO <tag>body<tag> with a tag that does not occur in body ($$ when possible). */
static char *do_block(const char *body)
{
	char tag[32];

	(void)pgkeel_fmt(tag, sizeof(tag), "$$");
	for (unsigned i = 0; strstr(body, tag) != NULL; i++)
		(void)pgkeel_fmt(tag, sizeof(tag), "$pgkeel%u$", i);
	return pgkeel_asprintf("DO %s%s%s", tag, body, tag);
}

/* A role to create or alter; password: a JSON value (Python's `if password:`). */
static void role_job_add(struct pgkeel_pg_task *t, const char *role, json_object *password,
                         json_object *options, const char *first_option)
{
	struct pgkeel_pgt_role_job *j;
	struct pgkeel_pgt_strv o = {0};
	bool login = false;

	t->jobs = pgkeel_xreallocarray(t->jobs, t->njobs + 1, sizeof(*t->jobs));
	j = &t->jobs[t->njobs++];
	memset(j, 0, sizeof(*j));
	j->role = pgkeel_strdup(role);
	j->password = pgkeel_json_truthy(password) ? pgkeel_pg_value_text(password) : NULL;
	if (first_option != NULL)
		pgkeel_pgt_strv_push(&o, pgkeel_strdup(first_option));
	for (size_t i = 0;
	     json_object_is_type(options, json_type_array) && i < json_object_array_length(options);
	     i++) {
		char *s = pgkeel_pg_value_text(json_object_array_get_idx(options, i));

		for (char *p = s; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		pgkeel_pgt_strv_push(&o, s);
	}
	for (size_t i = 0; i < o.n; i++)
		login = login || strcmp(o.v[i], "LOGIN") == 0 || strcmp(o.v[i], "NOLOGIN") == 0;
	if (!login)
		pgkeel_pgt_strv_push(&o, pgkeel_strdup("LOGIN"));
	j->options = pgkeel_pgt_strv_finish(&o);
}

static void grant_job_add(struct pgkeel_pg_task *t, const char *role, const char *function)
{
	struct pgkeel_pgt_role_job *j;

	t->jobs = pgkeel_xreallocarray(t->jobs, t->njobs + 1, sizeof(*t->jobs));
	j = &t->jobs[t->njobs++];
	memset(j, 0, sizeof(*j));
	j->role = pgkeel_strdup(role);
	j->grant = function;
}

static void jobs_free(struct pgkeel_pg_task *t)
{
	for (size_t i = 0; i < t->njobs; i++) {
		free(t->jobs[i].role);
		if (t->jobs[i].password != NULL) {
			explicit_bzero(t->jobs[i].password, strlen(t->jobs[i].password));
			free(t->jobs[i].password);
		}
		pgkeel_argv_free(t->jobs[i].options);
	}
	free(t->jobs);
	t->jobs = NULL;
	t->njobs = t->job = 0;
}

static bool sql(struct pgkeel_pg_task *t, const char *q, int64_t deadline, char *err, size_t errlen)
{
	struct pgkeel_pg_err e;
	enum pgkeel_pg_rc rc = pgkeel_pg_exec(t->pg, q, 0, NULL, deadline, NULL, &e);

	if (rc == PGKEEL_PG_OK)
		return true;
	/* never the statement: it may hold a password */
	pgkeel_pgt_set_err(err, errlen, "%s (%s)", e.msg, pgkeel_pg_rc_name(rc));
	return false;
}

/* Patroni's create_or_update_role, or one GRANT of the rewind role. */
static bool run_job(struct pgkeel_pg_task *t, const struct pgkeel_pgt_role_job *j, char *err,
                    size_t errlen)
{
	static const char *const before[] = {"SET log_statement TO none",
	                                     "SET log_min_duration_statement TO -1",
	                                     "SET log_min_error_statement TO 'log'",
	                                     "SET pg_stat_statements.track_utility to 'off'"};
	static const char *const after[] = {
	    "RESET log_min_error_statement", "RESET log_min_duration_statement",
	    "RESET log_statement", "RESET pg_stat_statements.track_utility"};
	int64_t deadline = pgkeel_now_monotonic_ms() + t->sql_timeout_ms;
	char *ident = quote_ident(j->role), *lit, *body, *q;
	struct pgkeel_sbuf opts = {0};
	bool ok = true;

	if (j->grant != NULL) {
		body = pgkeel_asprintf("\nBEGIN\n    SET local synchronous_commit = 'local';\n"
		                       "    GRANT EXECUTE ON function pg_catalog.%s TO %s;\nEND;",
		                       j->grant, ident);
		q = do_block(body);
		ok = sql(t, q, deadline, err, errlen);
		free(q);
		free(body);
		free(ident);
		return ok;
	}
	for (size_t i = 0; j->options[i] != NULL; i++) {
		if (i > 0)
			pgkeel_sbuf_putc(&opts, ' ');
		pgkeel_sbuf_puts(&opts, j->options[i]);
	}
	if (j->password != NULL) {
		char *pw = quote_literal(j->password);

		pgkeel_sbuf_puts(&opts, " PASSWORD ");
		pgkeel_sbuf_puts(&opts, pw);
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	lit = quote_literal(j->role);
	body = pgkeel_asprintf("\nBEGIN\n    SET local synchronous_commit = 'local';\n"
	                       "    PERFORM * FROM pg_catalog.pg_authid WHERE rolname = %s;\n"
	                       "    IF FOUND THEN\n        ALTER ROLE %s WITH %s;\n"
	                       "    ELSE\n        CREATE ROLE %s WITH %s;\n    END IF;\nEND;",
	                       lit, ident, opts.p, ident, opts.p);
	q = do_block(body);
	explicit_bzero(opts.p, opts.len);
	explicit_bzero(body, strlen(body));
	free(opts.p);
	free(body);
	free(lit);
	for (size_t i = 0; ok && i < PGKEEL_ARRAY_LEN(before); i++)
		ok = sql(t, before[i], deadline, err, errlen);
	if (ok) {
		bool created = sql(t, q, deadline, err, errlen);

		/* reset even after a failed DO (Patroni's finally), keeping its error */
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(after); i++) {
			char ignored[256];

			if (!sql(t, after[i], deadline, created ? err : ignored,
			         created ? errlen : sizeof(ignored))) {
				if (created)
					ok = false;
				break;
			}
		}
		if (!created)
			ok = false;
	}
	if (!ok) {
		char why[512];

		(void)pgkeel_fmt(why, sizeof(why), "%s", err);
		pgkeel_pgt_set_err(err, errlen, "creating or updating role %s failed: %s", ident,
		                   why);
	}
	explicit_bzero(q, strlen(q));
	free(q);
	free(ident);
	return ok;
}

/* The local connection's record (local_connect_kwargs): address, superuser, dbname. */
static json_object *local_record(const struct pgkeel_config *cfg)
{
	json_object *r = json_object_new_object();
	char *host, *port;

	pgkeel_pg_local_address(cfg, false, &host, &port);
	if (host != NULL)
		json_object_object_add(r, "host", json_object_new_string(host));
	json_object_object_add(r, "port", json_object_new_string(port));
	free(host);
	free(port);
	pgkeel_pgt_add_auth(r, pgkeel_pgt_auth_section(cfg, "superuser"));
	json_object_object_add(r, "dbname", json_object_new_string(pgkeel_pgt_database_name(cfg)));
	return r;
}

struct pgkeel_pg *pgkeel_pg_local_connection(const struct pgkeel_config *cfg)
{
	json_object *r = local_record(cfg);
	struct pgkeel_pg_params p;
	const char *keys[16], *values[16];
	char *port_text = pgkeel_pg_value_text(pgkeel_pgt_jget(r, "port"));
	int64_t port = 0;
	struct pgkeel_pg *pg;
	size_t n = 0;

	memset(&p, 0, sizeof(p));
	p.host = pgkeel_pgt_jstr(pgkeel_pgt_jget(r, "host"));
	if (pgkeel_parse_int64(port_text, &port) && port > 0 && port < 65536)
		p.port = (int)port;
	p.user = pgkeel_pgt_jstr(pgkeel_pgt_jget(r, "user"));
	p.password = pgkeel_pgt_jstr(pgkeel_pgt_jget(r, "password"));
	p.dbname = pgkeel_pgt_jstr(pgkeel_pgt_jget(r, "dbname"));
	json_object_object_foreach(r, k, v)
	{
		if (n < PGKEEL_ARRAY_LEN(keys) && pgkeel_pgt_jstr(v) != NULL &&
		    strcmp(k, "host") != 0 && strcmp(k, "port") != 0 && strcmp(k, "user") != 0 &&
		    strcmp(k, "password") != 0 && strcmp(k, "dbname") != 0) {
			keys[n] = k;
			values[n++] = pgkeel_pgt_jstr(v);
		}
	}
	p.extra_keys = keys;
	p.extra_values = values;
	p.n_extra = n;
	pg = pgkeel_pg_new(&p);
	free(port_text);
	json_object_put(r);
	return pg;
}

struct pgkeel_pg_task *pgkeel_pg_post_bootstrap_start(const struct pgkeel_pg_boot_opts *opts,
                                                      char *err, size_t errlen)
{
	struct pgkeel_pg_task *t;
	json_object *su = pgkeel_pgt_auth_section(opts->cfg, "superuser");
	json_object *boot = pgkeel_json_path(opts->cfg->local, "bootstrap");
	const char *script = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(boot, "post_bootstrap"));

	if (script == NULL)
		script = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(boot, "post_init"));
	if (pgkeel_pgt_jstr(pgkeel_pgt_jget(pgkeel_pgt_auth_section(opts->cfg, "replication"),
	                                    "username")) == NULL) {
		pgkeel_pgt_set_err(err, errlen,
		                   "postgresql.authentication.replication.username is not set");
		return NULL;
	}
	if (script != NULL) {
		char **w = pgkeel_pgt_shlex_split(script, err, errlen);

		if (w == NULL || w[0] == NULL) {
			if (w != NULL)
				pgkeel_pgt_set_err(err, errlen,
				                   "bootstrap.post_bootstrap is empty");
			pgkeel_argv_free(w);
			return NULL;
		}
		pgkeel_argv_free(w);
	}
	t = pgkeel_pgt_task_new(PGKEEL_PG_TASK_POST_BOOTSTRAP, opts);
	t->script = script != NULL ? pgkeel_strdup(script) : NULL;
	if (opts->pg != NULL) {
		t->pg = opts->pg;
	} else {
		t->pg = pgkeel_pg_local_connection(opts->cfg);
		t->own_pg = true;
	}
	if (pgkeel_pgt_jstr(pgkeel_pgt_jget(su, "username")) != NULL &&
	    pgkeel_pgt_jhas(su, "password"))
		role_job_add(t, pgkeel_pgt_jstr(pgkeel_pgt_jget(su, "username")),
		             pgkeel_pgt_jget(su, "password"), NULL, "SUPERUSER");
	t->step = PGKEEL_PGT_PB_FIRST_ROLES;
	return t;
}

static bool start_post_bootstrap_script(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	json_object *r = local_record(t->cfg);
	char *dsn = pgkeel_pgt_format_dsn(r), *pgpass_env = NULL, *env[3] = {NULL, NULL, NULL};
	char **argv = pgkeel_pgt_shlex_split(t->script, err, errlen);
	struct pgkeel_pgt_strv a = {0};
	char what[256];
	bool ok;

	if (!pgkeel_pgt_jhas(r,
	                     "host")) /* localhost matches the default socket directory in pgpass */
		json_object_object_add(r, "host", json_object_new_string("localhost"));
	ok = argv != NULL && pgkeel_pgt_write_pgpass(t, r, &pgpass_env, err, errlen);
	json_object_put(r);
	if (!ok) {
		pgkeel_argv_free(argv);
		free(dsn);
		return false;
	}
	for (size_t i = 0; argv[i] != NULL; i++)
		pgkeel_pgt_strv_push(&a, argv[i]);
	free(argv);
	pgkeel_pgt_strv_push(&a, dsn);
	if (pgpass_env != NULL) {
		env[0] = pgpass_env;
		env[1] = PGOPTIONS_POST_BOOTSTRAP;
	} else {
		env[0] = PGOPTIONS_POST_BOOTSTRAP;
	}
	(void)pgkeel_fmt(what, sizeof(what), "post_bootstrap script %s", t->script);
	ok = pgkeel_pgt_task_spawn(t, pgkeel_pgt_strv_finish(&a), env, what, err, errlen);
	free(pgpass_env);
	return ok;
}

/* The roles after the script: replication, rewind (11+), bootstrap.users. */
static void later_jobs(struct pgkeel_pg_task *t)
{
	static const char *const rewind_functions[] = {
	    "pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)",
	    "pg_read_binary_file(text)", "pg_read_binary_file(text, bigint, bigint, boolean)"};
	json_object *su = pgkeel_pgt_auth_section(t->cfg, "superuser");
	json_object *repl = pgkeel_pgt_auth_section(t->cfg, "replication");
	json_object *rewind = su;
	json_object *users = pgkeel_json_path(t->cfg->local, "bootstrap.users");
	int version = t->server_version;

	if (version == 0)
		version = pgkeel_pg_server_version(t->pg);
	if (version == 0)
		version = pgkeel_pg_data_version(t->data_dir) * 10000;
	if (version >= 110000 &&
	    json_object_is_type(pgkeel_pgt_auth_section(t->cfg, "rewind"), json_type_object))
		rewind = pgkeel_pgt_auth_section(t->cfg, "rewind");
	jobs_free(t);
	role_job_add(t, pgkeel_pgt_jstr(pgkeel_pgt_jget(repl, "username")),
	             pgkeel_pgt_jget(repl, "password"), NULL, "REPLICATION");
	if (!json_object_equal(rewind, su) &&
	    pgkeel_pgt_jstr(pgkeel_pgt_jget(rewind, "username")) != NULL) {
		const char *name = pgkeel_pgt_jstr(pgkeel_pgt_jget(rewind, "username"));

		role_job_add(t, name, pgkeel_pgt_jget(rewind, "password"), NULL, NULL);
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(rewind_functions); i++)
			grant_job_add(t, name, rewind_functions[i]);
	}
	if (json_object_is_type(users, json_type_object)) {
		json_object_object_foreach(users, name, u)
		{
			const char *taken[] = {
			    pgkeel_pgt_jstr(pgkeel_pgt_jget(su, "username")),
			    pgkeel_pgt_jstr(pgkeel_pgt_jget(repl, "username")),
			    pgkeel_pgt_jstr(pgkeel_pgt_jget(rewind, "username"))};
			bool skip = false;

			for (size_t i = 0; i < PGKEEL_ARRAY_LEN(taken); i++)
				skip = skip || (taken[i] != NULL && strcmp(taken[i], name) == 0);
			if (skip)
				continue;
			if (u != NULL && !json_object_is_type(u, json_type_object)) {
				log_warning("bootstrap.users.%s is not a map; not created", name);
				continue;
			}
			role_job_add(t, name, pgkeel_pgt_jget(u, "password"),
			             pgkeel_pgt_jget(u, "options"), NULL);
		}
	}
}

static void poll_post_bootstrap(struct pgkeel_pg_task *t)
{
	char err[1024];

	for (;;) {
		switch (t->step) {
		case PGKEEL_PGT_PB_FIRST_ROLES:
		case PGKEEL_PGT_PB_LATER_ROLES:
			if (t->job < t->njobs) {
				if (!run_job(t, &t->jobs[t->job], err, sizeof(err))) {
					pgkeel_pgt_task_fail(t, "post_bootstrap: %s", err);
					return;
				}
				t->job++;
				/* one role per poll: the caller gets control back in between */
				if (t->job < t->njobs)
					return;
			}
			if (t->step == PGKEEL_PGT_PB_LATER_ROLES) {
				jobs_free(t);
				t->status = PGKEEL_PG_TASK_SUCCEEDED;
				t->step = PGKEEL_PGT_DONE;
				return;
			}
			t->step = PGKEEL_PGT_PB_SCRIPT;
			break;
		case PGKEEL_PGT_PB_SCRIPT:
			if (t->script == NULL) {
				later_jobs(t);
				t->step = PGKEEL_PGT_PB_LATER_ROLES;
				break;
			}
			if (!start_post_bootstrap_script(t, err, sizeof(err))) {
				pgkeel_pgt_task_fail(t, "post_init script %s failed: %s", t->script,
				                     err);
				return;
			}
			t->step = PGKEEL_PGT_PB_SCRIPT_WAIT;
			return;
		case PGKEEL_PGT_PB_SCRIPT_WAIT:
			if (!pgkeel_pgt_child_done(t))
				return;
			if (!pgkeel_pgt_child_ok(t)) {
				char *why = pgkeel_pgt_child_failure(t);

				pgkeel_pgt_task_fail(t, "post_init script %s failed: %s", t->script,
				                     why);
				free(why);
				return;
			}
			later_jobs(t);
			t->step = PGKEEL_PGT_PB_LATER_ROLES;
			return;
		default:
			return;
		}
	}
}

/* ------------------------------------------------------------ task driver */

enum pgkeel_pg_task_status pgkeel_pg_task_poll(struct pgkeel_pg_task *t)
{
	if (t->status != PGKEEL_PG_TASK_RUNNING)
		return t->status;
	switch (t->kind) {
	case PGKEEL_PG_TASK_BOOTSTRAP:
		poll_bootstrap(t);
		break;
	case PGKEEL_PG_TASK_POST_BOOTSTRAP:
		poll_post_bootstrap(t);
		break;
	case PGKEEL_PG_TASK_CREATE_REPLICA:
		pgkeel_pgt_replica_poll(t);
		break;
	}
	return t->status;
}

static void add_pollfd(struct pollfd *fds, size_t n, size_t *k, int fd)
{
	if (*k < n && fd != -1) {
		fds[*k].fd = fd;
		fds[*k].events = POLLIN;
		fds[(*k)++].revents = 0;
	}
}

size_t pgkeel_pg_task_pollfds(const struct pgkeel_pg_task *t, struct pollfd *fds, size_t n)
{
	size_t k = 0;

	if (t->status != PGKEEL_PG_TASK_RUNNING)
		return 0;
	if (t->wipe != NULL)
		add_pollfd(fds, n, &k, pgkeel_pgt_wipe_fd(t));
	if (t->child_running) {
		add_pollfd(fds, n, &k, t->child.pidfd);
		if (!t->out_eof)
			add_pollfd(fds, n, &k, t->child.out_fd);
	}
	return k;
}

int64_t pgkeel_pg_task_wake_at(const struct pgkeel_pg_task *t)
{
	if (t->status != PGKEEL_PG_TASK_RUNNING)
		return 0;
	if (t->step == PGKEEL_PGT_WIPE)
		return INT64_MAX;
	if (t->child_running)
		return t->child.pidfd != -1 ? INT64_MAX
		                            : pgkeel_now_monotonic_ms() + NO_PIDFD_POLL_MS;
	if (t->step == PGKEEL_PGT_RC_BB_SLEEP)
		return t->wake_at;
	return 0;
}

enum pgkeel_pg_task_status pgkeel_pg_task_wait(struct pgkeel_pg_task *t, int64_t deadline_ms)
{
	for (;;) {
		enum pgkeel_pg_task_status st = pgkeel_pg_task_poll(t);
		struct pollfd fds[PGKEEL_PG_TASK_MAX_FDS];
		int64_t now, until;
		size_t n;

		if (st != PGKEEL_PG_TASK_RUNNING)
			return st;
		now = pgkeel_now_monotonic_ms();
		if (now >= deadline_ms)
			return st;
		until = pgkeel_pg_task_wake_at(t);
		if (until <= now)
			continue;
		if (until > deadline_ms)
			until = deadline_ms;
		n = pgkeel_pg_task_pollfds(t, fds, PGKEEL_ARRAY_LEN(fds));
		if (poll(fds, n, (int)(until - now > INT_MAX ? INT_MAX : until - now)) == -1 &&
		    errno != EINTR) {
			/* cannot wait: fall back to short naps */
			struct pollfd none;

			(void)poll(&none, 0, NO_PIDFD_POLL_MS);
		}
	}
}

void pgkeel_pg_task_cancel(struct pgkeel_pg_task *t, int64_t deadline_ms)
{
	if (t->status != PGKEEL_PG_TASK_RUNNING || t->cancelled)
		return;
	t->cancelled = true;
	if (t->child_running) {
		(void)pgkeel_child_stop(&t->child, SIGTERM, deadline_ms);
		pgkeel_pgt_drain_output(t);
		t->child_running = false;
		pgkeel_child_free(&t->child);
	}
	remove_pwfile(t);
	switch (t->kind) {
	case PGKEEL_PG_TASK_BOOTSTRAP:
		pgkeel_pgt_task_fail(t, "bootstrap cancelled");
		break;
	case PGKEEL_PG_TASK_POST_BOOTSTRAP:
		pgkeel_pgt_task_fail(t, "post_bootstrap cancelled");
		break;
	case PGKEEL_PG_TASK_CREATE_REPLICA:
		/* a removal in progress goes on; then (or now) the data directory goes */
		if (t->step == PGKEEL_PGT_WIPE)
			t->after_wipe = PGKEEL_PGT_RC_FAILED;
		else
			pgkeel_pgt_replica_wipe(t, PGKEEL_PGT_RC_FAILED);
		break;
	}
}

void pgkeel_pg_task_free(struct pgkeel_pg_task *t)
{
	if (t == NULL)
		return;
	pgkeel_child_free(&t->child);
	(void)pgkeel_pgt_wipe_finished(t, true);
	remove_pwfile(t);
	if (t->own_pg)
		pgkeel_pg_free(t->pg);
	jobs_free(t);
	pgkeel_config_unref(t->cfg);
	free(t->data_dir);
	free(t->pgpass_path);
	free(t->what);
	pgkeel_argv_free(t->argv);
	pgkeel_argv_free(t->env);
	free(t->tail);
	free(t->error);
	free(t->method);
	free(t->script);
	pgkeel_argv_free(t->methods);
	free(t->connstring);
	pgkeel_argv_free(t->base_env);
	pgkeel_argv_free(t->bb_argv);
	free(t->used_method);
	free(t->last_failure);
	free(t);
}

enum pgkeel_pg_task_kind pgkeel_pg_task_kind(const struct pgkeel_pg_task *t)
{
	return t->kind;
}

enum pgkeel_pg_task_status pgkeel_pg_task_status(const struct pgkeel_pg_task *t)
{
	return t->status;
}

const char *pgkeel_pg_task_error(const struct pgkeel_pg_task *t)
{
	return t->status == PGKEEL_PG_TASK_FAILED && t->error != NULL ? t->error : "";
}

const char *pgkeel_pg_task_state(const struct pgkeel_pg_task *t)
{
	return t->state;
}

const char *const *pgkeel_pg_task_last_argv(const struct pgkeel_pg_task *t)
{
	return (const char *const *)t->argv;
}

const char *const *pgkeel_pg_task_last_env(const struct pgkeel_pg_task *t)
{
	return (const char *const *)t->env;
}

unsigned pgkeel_pg_task_commands(const struct pgkeel_pg_task *t)
{
	return t->commands;
}

void pgkeel_pg_task_bootstrap_info(const struct pgkeel_pg_task *t,
                                   struct pgkeel_pg_bootstrap_info *out)
{
	memset(out, 0, sizeof(*out));
	if (t->kind == PGKEEL_PG_TASK_BOOTSTRAP)
		*out = t->info;
}

const char *pgkeel_pg_task_replica_method(const struct pgkeel_pg_task *t)
{
	return t->status == PGKEEL_PG_TASK_SUCCEEDED ? t->used_method : NULL;
}
