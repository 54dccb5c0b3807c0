/*
 * What the tasks of pg_bootstrap.h share (pg_task.h): configuration
 * lookups, Patroni's process_user_options, format_dsn and write_pgpass, and
 * a task's child -- spawned, its output's tail kept and logged, its exit
 * judged.  Read against Patroni's patroni/postgresql/bootstrap.py
 * (process_user_options) and config.py (format_dsn, _pgpass_line).
 */
#include "autoconf.h"

#include "pg_task.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "util.h"

#define DEFAULT_SQL_TIMEOUT_MS 10000
#define DEFAULT_TAIL_BYTES     4096
#define ERROR_TAIL_BYTES       1500

/* ------------------------------------------------------------------ helpers */

void pgkeel_pgt_strv_push(struct pgkeel_pgt_strv *s, char *owned)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap != 0 ? s->cap * 2 : 8;
		s->v = pgkeel_xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
}

/* The array (never NULL: an empty one when nothing was pushed). */
char **pgkeel_pgt_strv_finish(struct pgkeel_pgt_strv *s)
{
	if (s->v == NULL)
		s->v = pgkeel_xcalloc(1, sizeof(*s->v));
	return s->v;
}

const char *pgkeel_pgt_jstr(json_object *v)
{
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A non-empty string value, else NULL. */
const char *pgkeel_pgt_jstr_nonempty(json_object *v)
{
	const char *s = pgkeel_pgt_jstr(v);

	return s != NULL && s[0] != '\0' ? s : NULL;
}

json_object *pgkeel_pgt_pg_section(const struct pgkeel_config *cfg)
{
	return pgkeel_json_path(cfg->effective, "postgresql");
}

/* The value of key in obj (an object), or NULL. */
json_object *pgkeel_pgt_jget(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

bool pgkeel_pgt_jhas(json_object *obj, const char *key)
{
	return json_object_is_type(obj, json_type_object) &&
	       json_object_object_get_ex(obj, key, NULL);
}

/* os.path.join(a, b) for two parts. */
char *pgkeel_pgt_path_join(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (b[0] == '/' || n == 0)
		return pgkeel_strdup(b);
	return pgkeel_asprintf("%s%s%s", a, a[n - 1] == '/' ? "" : "/", b);
}

/* An absolute path (relative ones against the working directory; not normalised). */
char *pgkeel_pgt_abs_path(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return pgkeel_strdup(path);
	return pgkeel_pgt_path_join(cwd, path);
}

static char *home_dir(void)
{
	const char *h = getenv("HOME");

	return pgkeel_strdup(h != NULL && h[0] != '\0' ? h : "/");
}

/* <bin_dir>/<bin_name.tool or tool>; without bin_dir just the name (PATH lookup). */
char *pgkeel_pgt_bin_path(const struct pgkeel_config *cfg, const char *tool)
{
	json_object *pg = pgkeel_pgt_pg_section(cfg);
	const char *dir = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(pg, "bin_dir"));
	const char *name =
	    pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(pgkeel_pgt_jget(pg, "bin_name"), tool));

	if (name == NULL)
		name = tool;
	return dir != NULL ? pgkeel_pgt_path_join(dir, name) : pgkeel_strdup(name);
}

const char *pgkeel_pgt_database_name(const struct pgkeel_config *cfg)
{
	const char *db =
	    pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(pgkeel_pgt_pg_section(cfg), "database"));

	return db != NULL ? db : "postgres";
}

json_object *pgkeel_pgt_auth_section(const struct pgkeel_config *cfg, const char *who)
{
	return pgkeel_pgt_jget(pgkeel_pgt_jget(pgkeel_pgt_pg_section(cfg), "authentication"), who);
}

void pgkeel_pgt_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	/* a truncated message is still the message */
	(void)pgkeel_vfmt(err, errlen, fmt, ap);
	va_end(ap);
}

char *pgkeel_pgt_trimmed(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return pgkeel_dup_bytes(s, n);
}

/* ------------------------------------------------------------------ shlex */

/* Python's shlex.split (pg_callbacks.h); NULL with its message in err. */
char **pgkeel_pgt_shlex_split(const char *s, char *err, size_t errlen)
{
	char **argv = NULL;
	size_t argc;

	if (!pgkeel_shell_split(s, &argv, &argc, err, errlen))
		return NULL;
	return argv;
}

/* Patroni 4's unquote(): a value that shlex splits into one word becomes that word. */
static char *unquote(const char *s)
{
	char **w = pgkeel_pgt_shlex_split(s, NULL, 0);
	char *out;

	if (w != NULL && w[0] != NULL && w[1] == NULL)
		out = pgkeel_strdup(w[0]);
	else
		out = pgkeel_strdup(s);
	pgkeel_argv_free(w);
	return out;
}

/* ------------------------------------------------------------------ options */

static bool opt_allowed(const struct pgkeel_pgt_opt_rules *r, const char *name, const char *value)
{
	size_t n = strcspn(name, "=");

	if (r->compress_server_ok && n == 8 && strncmp(name, "compress", 8) == 0) {
		if (value == NULL && name[n] == '=')
			value = name + n + 1;
		if (value != NULL && strncmp(value, "server-", 7) == 0)
			return true;
	}
	for (const char *const *f = r->forbidden; *f != NULL; f++)
		if (strlen(*f) == n && strncmp(*f, name, n) == 0)
			return false;
	return true;
}

static bool opt_problem(const struct pgkeel_pgt_opt_rules *r, char *err, size_t errlen,
                        const char *fmt, ...) PGKEEL_PRINTF(4, 5);
static bool opt_problem(const struct pgkeel_pgt_opt_rules *r, char *err, size_t errlen,
                        const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->strict) {
		pgkeel_pgt_set_err(err, errlen, "%s: %s", r->key, msg);
		return false;
	}
	log_error("%s: %s", r->key, msg);
	return true;
}

/* Patroni's process_user_options (pg_task.h). */
bool pgkeel_pgt_user_options(const struct pgkeel_pgt_opt_rules *r, json_object *opts,
                             struct pgkeel_pgt_strv *out, char *err, size_t errlen)
{
	if (opts == NULL)
		return true;
	if (json_object_is_type(opts, json_type_object)) {
		json_object_object_foreach(opts, k, v)
		{
			char *text, *uq;

			if (k[0] == '\0' || !pgkeel_json_truthy(v))
				continue;
			text = pgkeel_pg_value_text(v);
			uq = json_object_is_type(v, json_type_string) ? unquote(text) : NULL;
			if (!opt_allowed(r, k, uq != NULL ? uq : text)) {
				bool ok = opt_problem(
				    r, err, errlen, "%s option for %s is not allowed", k, r->tool);

				free(text);
				free(uq);
				if (!ok)
					return false;
				continue;
			}
			pgkeel_pgt_strv_push(out,
			                     pgkeel_asprintf("--%s=%s", k, uq != NULL ? uq : text));
			free(text);
			free(uq);
		}
		return true;
	}
	if (!json_object_is_type(opts, json_type_array))
		return opt_problem(r, err, errlen, "%s options must be list or dict", r->tool);
	for (size_t i = 0; i < json_object_array_length(opts); i++) {
		json_object *o = json_object_array_get_idx(opts, i);

		if (json_object_is_type(o, json_type_string)) {
			const char *s = json_object_get_string(o);

			if (!opt_allowed(r, s, NULL)) {
				if (!opt_problem(r, err, errlen,
				                 "%.*s option for %s is not allowed",
				                 (int)strcspn(s, "="), s, r->tool))
					return false;
				continue;
			}
			pgkeel_pgt_strv_push(out, pgkeel_asprintf("--%s", s));
		} else if (json_object_is_type(o, json_type_object) &&
		           json_object_object_length(o) > 0) {
			struct json_object_iterator it = json_object_iter_begin(o);
			const char *k = json_object_iter_peek_name(&it);
			json_object *v = json_object_iter_peek_value(&it);
			char *uq;

			if (json_object_object_length(o) != 1 ||
			    !json_object_is_type(v, json_type_string)) {
				char *t = pgkeel_pg_value_text(v);
				bool ok = opt_problem(
				    r, err, errlen,
				    "Error when parsing %s key-value option %s: only one "
				    "key-value is allowed and value should be a string",
				    r->tool, t);

				free(t);
				if (!ok)
					return false;
				continue;
			}
			uq = unquote(json_object_get_string(v));
			if (!opt_allowed(r, k, uq)) {
				bool ok = opt_problem(
				    r, err, errlen, "%s option for %s is not allowed", k, r->tool);

				free(uq);
				if (!ok)
					return false;
				continue;
			}
			pgkeel_pgt_strv_push(out, pgkeel_asprintf("--%s=%s", k, uq));
			free(uq);
		} else {
			char *t = pgkeel_pg_value_text(o);
			bool ok = opt_problem(r, err, errlen,
			                      "Error when parsing %s option %s: value should be "
			                      "string value or a single key-value pair",
			                      r->tool, t);

			free(t);
			if (!ok)
				return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ connections */

char *pgkeel_pgt_format_dsn(json_object *r)
{
	return pgkeel_pg_format_dsn(r, true);
}

/* auth's non-null entries into r, username as user (Member.conn_kwargs). */
void pgkeel_pgt_add_auth(json_object *r, json_object *auth)
{
	if (!json_object_is_type(auth, json_type_object))
		return;
	json_object_object_foreach(auth, k, v)
	{
		if (v == NULL)
			continue;
		json_object_object_add(r, strcmp(k, "username") == 0 ? "user" : k,
		                       json_object_get(v));
	}
}

/* ------------------------------------------------------------------- task */

void pgkeel_pgt_task_fail(struct pgkeel_pg_task *t, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(t->error);
	t->error = pgkeel_strdup(msg);
	t->status = PGKEEL_PG_TASK_FAILED;
	t->step = PGKEEL_PGT_DONE;
}

struct pgkeel_pg_task *pgkeel_pgt_task_new(enum pgkeel_pg_task_kind kind,
                                           const struct pgkeel_pg_boot_opts *o)
{
	struct pgkeel_pg_task *t = pgkeel_xcalloc(1, sizeof(*t));
	json_object *pg = pgkeel_pgt_pg_section(o->cfg);
	const char *pgpass = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(pg, "pgpass"));

	t->kind = kind;
	t->status = PGKEEL_PG_TASK_RUNNING;
	t->cfg = pgkeel_config_ref(o->cfg);
	if (o->user != NULL) {
		t->user = *o->user;
		t->have_user = true;
	}
	t->data_dir = pgkeel_strdup(o->cfg->data_dir != NULL ? o->cfg->data_dir : "");
	if (o->pgpass_path != NULL) {
		t->pgpass_path = pgkeel_pgt_abs_path(o->pgpass_path);
	} else if (pgpass != NULL) {
		t->pgpass_path = pgkeel_pgt_abs_path(pgpass);
	} else {
		char *home = home_dir();

		t->pgpass_path = pgkeel_pgt_path_join(home, "pgpass");
		free(home);
	}
	t->server_version = o->server_version;
	t->sql_timeout_ms = o->sql_timeout_ms > 0 ? o->sql_timeout_ms : DEFAULT_SQL_TIMEOUT_MS;
	t->retry_ms =
	    o->basebackup_retry_ms > 0 ? o->basebackup_retry_ms : PGKEEL_PG_BASEBACKUP_RETRY_MS;
	t->tail_cap = o->output_tail_bytes > 0 ? (size_t)o->output_tail_bytes : DEFAULT_TAIL_BYTES;
	t->tail = pgkeel_xcalloc(2 * t->tail_cap + 1, 1);
	pgkeel_child_init(&t->child);
	t->env = pgkeel_pgt_strv_finish(&(struct pgkeel_pgt_strv){0});
	return t;
}

/* Keep the last tail_cap bytes of the child's output. */
static void tail_add(struct pgkeel_pg_task *t, const char *p, size_t n)
{
	if (n >= t->tail_cap) {
		memcpy(t->tail, p + n - t->tail_cap, t->tail_cap);
		t->tail_len = t->tail_cap;
	} else {
		if (t->tail_len + n > 2 * t->tail_cap) {
			size_t keep = t->tail_cap - n;

			memmove(t->tail, t->tail + t->tail_len - keep, keep);
			t->tail_len = keep;
		}
		memcpy(t->tail + t->tail_len, p, n);
		t->tail_len += n;
	}
	t->tail[t->tail_len] = '\0';
}

void pgkeel_pgt_drain_output(struct pgkeel_pg_task *t)
{
	char buf[4096];

	while (t->child.out_fd != -1 && !t->out_eof) {
		ssize_t n = read(t->child.out_fd, buf, sizeof(buf));

		if (n > 0) {
			tail_add(t, buf, (size_t)n);
		} else if (n == 0) {
			t->out_eof = true;
		} else if (errno != EINTR) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				t->out_eof = true;
			break;
		}
	}
}

/* The end of the output, at most max bytes, whitespace trimmed. */
static char *output_tail(const struct pgkeel_pg_task *t, size_t max)
{
	size_t start = t->tail_len > max ? t->tail_len - max : 0;

	return pgkeel_pgt_trimmed(t->tail + start, t->tail_len - start);
}

static void log_output(const struct pgkeel_pg_task *t)
{
	const char *p = t->tail;

	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		if (n > 0)
			log_info("%s: %.*s", t->what, (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static char *argv_text(char *const *argv)
{
	struct pgkeel_sbuf b = {0};

	for (size_t i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			pgkeel_sbuf_putc(&b, ' ');
		pgkeel_sbuf_puts(&b, argv[i]);
	}
	return pgkeel_sbuf_finish(&b);
}

/* Start argv (taken over) with env overrides (copied; NULL: none) as `what`. */
bool pgkeel_pgt_task_spawn(struct pgkeel_pg_task *t, char **argv, char *const *env,
                           const char *what, char *err, size_t errlen)
{
	struct pgkeel_child_spec spec;
	struct pgkeel_pgt_strv e = {0};
	char *text;

	pgkeel_argv_free(t->argv);
	pgkeel_argv_free(t->env);
	t->argv = argv;
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		pgkeel_pgt_strv_push(&e, pgkeel_strdup(env[i]));
	t->env = pgkeel_pgt_strv_finish(&e);
	free(t->what);
	t->what = pgkeel_strdup(what);
	t->tail_len = 0;
	t->tail[0] = '\0';
	t->out_eof = false;
	pgkeel_child_free(&t->child);

	memset(&spec, 0, sizeof(spec));
	spec.argv = (const char *const *)t->argv;
	spec.env = (const char *const *)t->env;
	spec.out.mode = PGKEEL_CHILD_OUT_PIPE;
	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	spec.user = t->have_user ? &t->user : NULL;
	text = argv_text(t->argv);
	log_debug("calling: %s", text);
	free(text);
	if (!pgkeel_child_spawn(&spec, &t->child, err, errlen))
		return false;
	t->commands++;
	t->child_running = true;
	return true;
}

/* Has the child ended?  Never waits; collects its output. */
bool pgkeel_pgt_child_done(struct pgkeel_pg_task *t)
{
	pgkeel_pgt_drain_output(t);
	if (pgkeel_child_poll(&t->child) == PGKEEL_CHILD_RUNNING)
		return false;
	pgkeel_pgt_drain_output(t);
	t->last_wstatus = t->child.wstatus;
	t->child_running = false;
	log_output(t);
	pgkeel_child_free(&t->child);
	return true;
}

bool pgkeel_pgt_child_ok(const struct pgkeel_pg_task *t)
{
	return t->last_wstatus != -1 && WIFEXITED(t->last_wstatus) &&
	       WEXITSTATUS(t->last_wstatus) == 0;
}

/* "exited with code 1: <output tail>" */
char *pgkeel_pgt_child_failure(const struct pgkeel_pg_task *t)
{
	char how[128];
	char *tail = output_tail(t, ERROR_TAIL_BYTES), *out;

	pgkeel_child_describe(t->last_wstatus, how, sizeof(how));
	out = tail[0] != '\0' ? pgkeel_asprintf("%s: %s", how, tail) : pgkeel_strdup(how);
	free(tail);
	return out;
}

/* fchown fd to user (NULL: nothing to do). */
static bool chown_to(const struct pgkeel_child_user *user, int fd, const char *path, char *err,
                     size_t errlen)
{
	if (user == NULL || fchown(fd, user->uid, user->gid) == 0)
		return true;
	pgkeel_pgt_set_err(err, errlen, "cannot chown %s: %s", path, strerror(errno));
	return false;
}

/* Give a file we created to the children's user. */
bool pgkeel_pgt_give_to_user(const struct pgkeel_pg_task *t, int fd, const char *path, char *err,
                             size_t errlen)
{
	return chown_to(t->have_user ? &t->user : NULL, fd, path, err, errlen);
}

bool pgkeel_pgt_pgpass_write_record(const char *path, const struct pgkeel_child_user *user,
                                    json_object *r, char **env_out, char *err, size_t errlen)
{
	char *host = NULL, *port = NULL, *user_name = NULL, *pw, *line;
	bool ww = false, ok;
	int fd;

	*env_out = NULL;
	if (!pgkeel_pgt_jhas(r, "password"))
		return true;
	pw = pgkeel_pg_value_text(pgkeel_pgt_jget(r, "password"));
	if (pgkeel_json_truthy(pgkeel_pgt_jget(r, "host")))
		host = pgkeel_pg_value_text(pgkeel_pgt_jget(r, "host"));
	if (pgkeel_json_truthy(pgkeel_pgt_jget(r, "port")))
		port = pgkeel_pg_value_text(pgkeel_pgt_jget(r, "port"));
	if (pgkeel_json_truthy(pgkeel_pgt_jget(r, "user")))
		user_name = pgkeel_pg_value_text(pgkeel_pgt_jget(r, "user"));
	line = pgkeel_pg_pgpass_text(host, port, user_name, pw); /* "" is written as * */
	explicit_bzero(pw, strlen(pw));
	free(pw);
	free(host);
	free(port);
	free(user_name);
	ok = pgkeel_pg_pgpass_write(path, line, &ww, err, errlen);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!ok)
		return false;
	if (ww)
		log_warning("The directory of %s is writable by others", path);
	if (user != NULL) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			pgkeel_pgt_set_err(err, errlen, "cannot open %s: %s", path,
			                   strerror(errno));
			return false;
		}
		ok = chown_to(user, fd, path, err, errlen);
		close(fd);
		if (!ok)
			return false;
	}
	*env_out = pgkeel_asprintf("PGPASSFILE=%s", path);
	return true;
}

bool pgkeel_pgt_write_pgpass(struct pgkeel_pg_task *t, json_object *r, char **env_out, char *err,
                             size_t errlen)
{
	return pgkeel_pgt_pgpass_write_record(t->pgpass_path, t->have_user ? &t->user : NULL, r,
	                                      env_out, err, errlen);
}

/* ------------------------------------------------------------------- wiper */

struct pgkeel_pgt_wiper {
	pthread_t thread;
	bool running; /* a thread was started and not joined yet */
	int fds[2];
	char *path;
	bool ok;
	char err[512];
};

static void *wiper_main(void *arg)
{
	struct pgkeel_pgt_wiper *w = arg;
	char byte = 1;

	w->ok = pgkeel_pg_remove_data_dir(w->path, w->err, sizeof(w->err));
	while (write(w->fds[1], &byte, 1) == -1 && errno == EINTR)
		;
	return NULL;
}

/* The removal is over: say so when it failed. */
static void wiper_over(const struct pgkeel_pgt_wiper *w)
{
	if (!w->ok)
		log_error("Could not remove data directory %s: %s", w->path, w->err);
}

struct pgkeel_pgt_wiper *pgkeel_pgt_wiper_start(const char *path)
{
	struct pgkeel_pgt_wiper *w = pgkeel_xcalloc(1, sizeof(*w));

	w->path = pgkeel_strdup(path);
	w->fds[0] = w->fds[1] = -1;
	w->ok = true;
	w->running = pipe2(w->fds, O_CLOEXEC | O_NONBLOCK) == 0 &&
	             pthread_create(&w->thread, NULL, wiper_main, w) == 0;
	if (!w->running) {
		log_warning("cannot start a thread to remove %s: removing it now", path);
		w->ok = pgkeel_pg_remove_data_dir(w->path, w->err, sizeof(w->err));
		wiper_over(w);
	}
	return w;
}

bool pgkeel_pgt_wiper_done(struct pgkeel_pgt_wiper *w, bool block)
{
	char byte;

	if (w == NULL || !w->running)
		return true;
	if (!block && read(w->fds[0], &byte, 1) != 1)
		return false;
	pthread_join(w->thread, NULL);
	w->running = false;
	wiper_over(w);
	return true;
}

int pgkeel_pgt_wiper_fd(const struct pgkeel_pgt_wiper *w)
{
	return w != NULL && w->running ? w->fds[0] : -1;
}

const char *pgkeel_pgt_wiper_error(const struct pgkeel_pgt_wiper *w)
{
	return w->ok ? NULL : w->err;
}

void pgkeel_pgt_wiper_free(struct pgkeel_pgt_wiper *w)
{
	if (w == NULL)
		return;
	(void)pgkeel_pgt_wiper_done(w, true);
	if (w->fds[0] != -1)
		close(w->fds[0]);
	if (w->fds[1] != -1)
		close(w->fds[1]);
	free(w->path);
	free(w);
}
