/*
 * Bootstrap, post-bootstrap and replica creation as Patroni 3.0.2 does them;
 * see pg_bootstrap.h.  Read against Patroni's patroni/postgresql/bootstrap.py
 * (process_user_options, _initdb, _custom_bootstrap, _post_restore,
 * call_post_bootstrap, create_replica, basebackup, create_or_update_role,
 * post_bootstrap), config.py (append_pg_hba, format_dsn, _pgpass_line,
 * local_connect_kwargs, remove_recovery_conf) and __init__.py
 * (data_directory_empty, remove_data_directory).
 */
#include "autoconf.h"

#include "pg_bootstrap.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_query.h"
#include "util.h"

#define DEFAULT_SQL_TIMEOUT_MS   10000
#define DEFAULT_TAIL_BYTES       4096
#define ERROR_TAIL_BYTES         1500
#define NO_PIDFD_POLL_MS         20
#define PGOPTIONS_POST_BOOTSTRAP "PGOPTIONS=-c synchronous_commit=local -c statement_timeout=0"

/* ------------------------------------------------------------------ helpers */

/* A growable NULL-terminated array of malloc'd strings. */
struct strv {
	char **v;
	size_t n;
	size_t cap;
};

static void strv_push(struct strv *s, char *owned)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap != 0 ? s->cap * 2 : 8;
		s->v = pgkeel_xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
}

/* The array (never NULL: an empty one when nothing was pushed). */
static char **strv_finish(struct strv *s)
{
	if (s->v == NULL)
		s->v = pgkeel_xcalloc(1, sizeof(*s->v));
	return s->v;
}

static void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

static const char *jstr(json_object *v)
{
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A non-empty string value, else NULL. */
static const char *jstr_nonempty(json_object *v)
{
	const char *s = jstr(v);

	return s != NULL && s[0] != '\0' ? s : NULL;
}

static json_object *pg_section(const struct pgkeel_config *cfg)
{
	return pgkeel_json_path(cfg->effective, "postgresql");
}

/* The value of key in obj (an object), or NULL. */
static json_object *jget(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

static bool jhas(json_object *obj, const char *key)
{
	return json_object_is_type(obj, json_type_object) &&
	       json_object_object_get_ex(obj, key, NULL);
}

/* os.path.join(a, b) for two parts. */
static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (b[0] == '/' || n == 0)
		return pgkeel_strdup(b);
	return pgkeel_asprintf("%s%s%s", a, a[n - 1] == '/' ? "" : "/", b);
}

/* An absolute path (relative ones against the working directory; not normalised). */
static char *abs_path(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return pgkeel_strdup(path);
	return path_join(cwd, path);
}

static char *home_dir(void)
{
	const char *h = getenv("HOME");

	return pgkeel_strdup(h != NULL && h[0] != '\0' ? h : "/");
}

/* <bin_dir>/<bin_name.tool or tool>; without bin_dir just the name (PATH lookup). */
static char *bin_path(const struct pgkeel_config *cfg, const char *tool)
{
	json_object *pg = pg_section(cfg);
	const char *dir = jstr_nonempty(jget(pg, "bin_dir"));
	const char *name = jstr_nonempty(jget(jget(pg, "bin_name"), tool));

	if (name == NULL)
		name = tool;
	return dir != NULL ? path_join(dir, name) : pgkeel_strdup(name);
}

static const char *database_name(const struct pgkeel_config *cfg)
{
	const char *db = jstr_nonempty(jget(pg_section(cfg), "database"));

	return db != NULL ? db : "postgres";
}

static json_object *auth_section(const struct pgkeel_config *cfg, const char *who)
{
	return jget(jget(pg_section(cfg), "authentication"), who);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	/* a truncated message is still the message */
	(void)pgkeel_vfmt(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ shlex */

/* Python's shlex.split (pg_callbacks.h); NULL with its message in err. */
static char **shlex_split(const char *s, char *err, size_t errlen)
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
	char **w = shlex_split(s, NULL, 0);
	char *out;

	if (w != NULL && w[0] != NULL && w[1] == NULL)
		out = pgkeel_strdup(w[0]);
	else
		out = pgkeel_strdup(s);
	strv_free(w);
	return out;
}

/* ------------------------------------------------------------------ options */

/*
 * Patroni's process_user_options: `flag` -> --flag, {key: value} -> --key=value
 * (list form), {key: value, ...} -> --key=value for truthy values (map form).
 * Forbidden names are refused in both forms.  strict (initdb): the first
 * problem fails with err; otherwise (pg_basebackup) problems are logged and
 * the option is dropped, as Patroni does.
 */
struct opt_rules {
	const char *tool;
	const char *key;              /* configuration key, for messages */
	const char *const *forbidden; /* NULL-terminated */
	bool strict;
	bool compress_server_ok; /* pg_basebackup on 15+: --compress=server-... */
};

static bool opt_allowed(const struct opt_rules *r, const char *name, const char *value)
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

static bool opt_problem(const struct opt_rules *r, char *err, size_t errlen, const char *fmt, ...)
    PGKEEL_PRINTF(4, 5);
static bool opt_problem(const struct opt_rules *r, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->strict) {
		set_err(err, errlen, "%s: %s", r->key, msg);
		return false;
	}
	log_error("%s: %s", r->key, msg);
	return true;
}

static bool user_options(const struct opt_rules *r, json_object *opts, struct strv *out, char *err,
                         size_t errlen)
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
			strv_push(out, pgkeel_asprintf("--%s=%s", k, uq != NULL ? uq : text));
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
			strv_push(out, pgkeel_asprintf("--%s", s));
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
			strv_push(out, pgkeel_asprintf("--%s=%s", k, uq));
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
		set_err(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(at, name, 0) == -1 && errno != ENOENT) {
			set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			return false;
		}
		return true;
	}
	if (depth > 64) {
		set_err(err, errlen, "cannot remove %s: nested too deep", path);
		return false;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
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
		set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
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
		set_err(err, errlen, "cannot stat %s: %s", data_dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(data_dir) == -1 && errno != ENOENT) {
			set_err(err, errlen, "cannot remove %s: %s", data_dir, strerror(errno));
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

static char *trimmed(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return pgkeel_dup_bytes(s, n);
}

void pgkeel_pg_local_address(const struct pgkeel_config *cfg, bool replication, char **host,
                             char **port)
{
	struct pgkeel_pg_situation sit = {0};
	struct pgkeel_diag diag;
	json_object *params, *pg = pg_section(cfg);
	const char *listen, *usd;
	char *tcp = NULL;
	bool unix_socket;

	pgkeel_diag_init(&diag);
	sit.role = PGKEEL_PG_PRIMARY;
	sit.server_version = 150000;
	params = pgkeel_pg_server_params(cfg, &sit, &diag);
	pgkeel_diag_clear(&diag);

	*port = pgkeel_pg_value_text(ci_get(params, "port"));
	listen = jstr(ci_get(params, "listen_addresses"));
	if (listen == NULL)
		listen = "";
	/* _get_tcp_local_address */
	for (const char *p = listen;;) {
		size_t n = strcspn(p, ",");
		char *a = trimmed(p, n);

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
			tcp = trimmed(p, n);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	unix_socket =
	    pgkeel_json_truthy(jget(pg, replication ? "use_unix_socket_repl" : "use_unix_socket"));
	*host = NULL;
	if (!unix_socket) {
		*host = tcp;
		tcp = NULL;
	} else if ((usd = jstr(ci_get(params, "unix_socket_directories"))) != NULL) {
		/* _get_unix_local_address: the first absolute entry, else TCP */
		for (const char *p = usd;;) {
			size_t n = strcspn(p, ",");
			char *d = trimmed(p, n);

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

/*
 * Patroni's format_dsn(params, include_dbname=True): the libpq keywords it
 * knows, in its order, without password/passfile.
 */
static char *format_dsn(json_object *r)
{
	static const char *const keywords[] = {"dbname",
	                                       "user",
	                                       "host",
	                                       "port",
	                                       "sslmode",
	                                       "sslcompression",
	                                       "sslcert",
	                                       "sslkey",
	                                       "sslpassword",
	                                       "sslrootcert",
	                                       "sslcrl",
	                                       "sslcrldir",
	                                       "application_name",
	                                       "krbsrvname",
	                                       "gssencmode",
	                                       "channel_binding",
	                                       "target_session_attrs"};
	struct pgkeel_sbuf b = {0};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(keywords); i++) {
		json_object *v = jget(r, keywords[i]);
		char *t, *e;

		if (v == NULL)
			continue;
		t = pgkeel_pg_value_text(v);
		e = pgkeel_pg_conninfo_escape(t);
		if (b.len > 0)
			pgkeel_sbuf_putc(&b, ' ');
		pgkeel_sbuf_puts(&b, keywords[i]);
		pgkeel_sbuf_putc(&b, '=');
		pgkeel_sbuf_puts(&b, e);
		free(e);
		free(t);
	}
	return pgkeel_sbuf_finish(&b);
}

/* auth's non-null entries into r, username as user (Member.conn_kwargs). */
static void add_auth(json_object *r, json_object *auth)
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

/* ------------------------------------------------------------------- task */

enum step {
	ST_DONE,
	ST_BOOT_RUN,       /* initdb or the custom command runs */
	ST_PB_FIRST_ROLES, /* the superuser role */
	ST_PB_SCRIPT,      /* start post_bootstrap */
	ST_PB_SCRIPT_WAIT,
	ST_PB_LATER_ROLES,  /* replication, rewind, bootstrap.users */
	ST_RC_NEXT,         /* the next replica method */
	ST_RC_CUSTOM_START, /* a custom method: start its command */
	ST_RC_CUSTOM_WAIT,
	ST_RC_BB_START, /* a pg_basebackup attempt: wipe, then spawn */
	ST_RC_BB_SPAWN,
	ST_RC_BB_WAIT,
	ST_RC_BB_SLEEP, /* between attempts */
	ST_RC_FAILED,   /* every method failed (or cancelled); the data directory is gone */
	ST_WIPE,        /* the data directory is being removed; then after_wipe */
};

struct role_job {
	char *role;        /* the role (quoted when used) */
	char *password;    /* NULL: no PASSWORD clause */
	char **options;    /* upper-cased, LOGIN added */
	const char *grant; /* GRANT EXECUTE on this function instead */
};

struct pgkeel_pg_task {
	enum pgkeel_pg_task_kind kind;
	enum pgkeel_pg_task_status status;
	enum step step;
	struct pgkeel_config *cfg;
	struct pgkeel_child_user user;
	bool have_user;
	char *data_dir;
	char *pgpass_path;
	int server_version;
	int sql_timeout_ms;
	int retry_ms;
	size_t tail_cap;

	/* the current child */
	struct pgkeel_child child;
	bool child_running;
	bool out_eof;
	int last_wstatus;
	char *what; /* "initdb", "pg_basebackup", "post_bootstrap script x"... */
	char **argv;
	char **env;
	unsigned commands;
	char *tail;
	size_t tail_len;

	const char *state;
	char *error;
	int64_t wake_at;

	/* bootstrap */
	char *pwfile;
	char *method;
	struct pgkeel_pg_bootstrap_info info;

	/* post-bootstrap */
	struct pgkeel_pg *pg;
	bool own_pg;
	struct role_job *jobs;
	size_t njobs;
	size_t job;
	char *script;

	/* replica */
	char **methods;
	size_t nmethods;
	size_t mi;
	int attempt;
	char *connstring;
	char **base_env; /* PGPASSFILE when a password was written */
	char **bb_argv;
	bool keep_data;
	bool cancelled;
	char *used_method;
	char *last_failure;
	struct wiper *wipe; /* a removal in progress */
	enum step after_wipe;
};

static void task_fail(struct pgkeel_pg_task *t, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
static void task_fail(struct pgkeel_pg_task *t, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(t->error);
	t->error = pgkeel_strdup(msg);
	t->status = PGKEEL_PG_TASK_FAILED;
	t->step = ST_DONE;
}

static struct pgkeel_pg_task *task_new(enum pgkeel_pg_task_kind kind,
                                       const struct pgkeel_pg_boot_opts *o)
{
	struct pgkeel_pg_task *t = pgkeel_xcalloc(1, sizeof(*t));
	json_object *pg = pg_section(o->cfg);
	const char *pgpass = jstr_nonempty(jget(pg, "pgpass"));

	t->kind = kind;
	t->status = PGKEEL_PG_TASK_RUNNING;
	t->cfg = pgkeel_config_ref(o->cfg);
	if (o->user != NULL) {
		t->user = *o->user;
		t->have_user = true;
	}
	t->data_dir = pgkeel_strdup(o->cfg->data_dir != NULL ? o->cfg->data_dir : "");
	if (o->pgpass_path != NULL) {
		t->pgpass_path = abs_path(o->pgpass_path);
	} else if (pgpass != NULL) {
		t->pgpass_path = abs_path(pgpass);
	} else {
		char *home = home_dir();

		t->pgpass_path = path_join(home, "pgpass");
		free(home);
	}
	t->server_version = o->server_version;
	t->sql_timeout_ms = o->sql_timeout_ms > 0 ? o->sql_timeout_ms : DEFAULT_SQL_TIMEOUT_MS;
	t->retry_ms =
	    o->basebackup_retry_ms > 0 ? o->basebackup_retry_ms : PGKEEL_PG_BASEBACKUP_RETRY_MS;
	t->tail_cap = o->output_tail_bytes > 0 ? (size_t)o->output_tail_bytes : DEFAULT_TAIL_BYTES;
	t->tail = pgkeel_xcalloc(2 * t->tail_cap + 1, 1);
	pgkeel_child_init(&t->child);
	t->env = strv_finish(&(struct strv){0});
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

static void drain_output(struct pgkeel_pg_task *t)
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

	return trimmed(t->tail + start, t->tail_len - start);
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
static bool task_spawn(struct pgkeel_pg_task *t, char **argv, char *const *env, const char *what,
                       char *err, size_t errlen)
{
	struct pgkeel_child_spec spec;
	struct strv e = {0};
	char *text;

	strv_free(t->argv);
	strv_free(t->env);
	t->argv = argv;
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		strv_push(&e, pgkeel_strdup(env[i]));
	t->env = strv_finish(&e);
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
static bool child_done(struct pgkeel_pg_task *t)
{
	drain_output(t);
	if (pgkeel_child_poll(&t->child) == PGKEEL_CHILD_RUNNING)
		return false;
	drain_output(t);
	t->last_wstatus = t->child.wstatus;
	t->child_running = false;
	log_output(t);
	pgkeel_child_free(&t->child);
	return true;
}

static bool child_ok(const struct pgkeel_pg_task *t)
{
	return t->last_wstatus != -1 && WIFEXITED(t->last_wstatus) &&
	       WEXITSTATUS(t->last_wstatus) == 0;
}

/* "exited with code 1: <output tail>" */
static char *child_failure(const struct pgkeel_pg_task *t)
{
	char how[128];
	char *tail = output_tail(t, ERROR_TAIL_BYTES), *out;

	pgkeel_child_describe(t->last_wstatus, how, sizeof(how));
	out = tail[0] != '\0' ? pgkeel_asprintf("%s: %s", how, tail) : pgkeel_strdup(how);
	free(tail);
	return out;
}

/* Give a file we created to the children's user. */
static bool give_to_user(const struct pgkeel_pg_task *t, int fd, const char *path, char *err,
                         size_t errlen)
{
	if (!t->have_user || fchown(fd, t->user.uid, t->user.gid) == 0)
		return true;
	set_err(err, errlen, "cannot chown %s: %s", path, strerror(errno));
	return false;
}

/*
 * Patroni's write_pgpass: the record's line (host default *, one line per
 * comma-separated host) into the pgpass file; *env_out gets
 * "PGPASSFILE=<path>".  Nothing is written without a password.
 */
static bool write_pgpass(struct pgkeel_pg_task *t, json_object *r, char **env_out, char *err,
                         size_t errlen)
{
	char *host = NULL, *port = NULL, *user = NULL, *pw, *line;
	bool ww = false, ok;
	int fd;

	*env_out = NULL;
	if (!jhas(r, "password"))
		return true;
	pw = pgkeel_pg_value_text(jget(r, "password"));
	if (jget(r, "host") != NULL && pgkeel_json_truthy(jget(r, "host")))
		host = pgkeel_pg_value_text(jget(r, "host"));
	if (jget(r, "port") != NULL && pgkeel_json_truthy(jget(r, "port")))
		port = pgkeel_pg_value_text(jget(r, "port"));
	if (jget(r, "user") != NULL && pgkeel_json_truthy(jget(r, "user")))
		user = pgkeel_pg_value_text(jget(r, "user"));
	line = pgkeel_pg_pgpass_text(host, port, user, pw[0] != '\0' ? pw : NULL);
	if (line == NULL) /* Python's `or '*'`: an empty password is written as * */
		line = pgkeel_pg_pgpass_text(host, port, user, "*");
	explicit_bzero(pw, strlen(pw));
	free(pw);
	free(host);
	free(port);
	free(user);
	ok = pgkeel_pg_pgpass_write(t->pgpass_path, line, &ww, err, errlen);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!ok)
		return false;
	if (ww)
		log_warning("The directory of %s is writable by others", t->pgpass_path);
	if (t->have_user) {
		fd = open(t->pgpass_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			set_err(err, errlen, "cannot open %s: %s", t->pgpass_path, strerror(errno));
			return false;
		}
		ok = give_to_user(t, fd, t->pgpass_path, err, errlen);
		close(fd);
		if (!ok)
			return false;
	}
	*env_out = pgkeel_asprintf("PGPASSFILE=%s", t->pgpass_path);
	return true;
}

static void remove_pwfile(struct pgkeel_pg_task *t)
{
	if (t->pwfile == NULL)
		return;
	if (unlink(t->pwfile) == -1 && errno != ENOENT)
		log_warning("cannot remove %s: %s", t->pwfile, strerror(errno));
	free(t->pwfile);
	t->pwfile = NULL;
}

/* ------------------------------------------------------------- bootstrap */

static const char *const initdb_forbidden[] = {"pgdata",    "nosync",  "pwfile",
                                               "sync-only", "version", NULL};
static const char *const basebackup_forbidden[] = {
    "pgdata", "format", "wal-method", "xlog-method", "gzip",     "version", "compress",
    "dbname", "host",   "port",       "username",    "password", NULL};

/* tempfile.mkstemp() with the password, owned by the children's user. */
static bool make_pwfile(struct pgkeel_pg_task *t, const char *password, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char *path =
	    pgkeel_asprintf("%s/pgkeel-pwfile-XXXXXX", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	size_t len = strlen(password), off = 0;
	int fd = mkostemp(path, O_CLOEXEC);

	if (fd == -1) {
		set_err(err, errlen, "cannot create a password file in %s: %s",
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
			set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
			close(fd);
			remove_pwfile(t);
			return false;
		}
		off += (size_t)n;
	}
	if (!give_to_user(t, fd, path, err, errlen)) {
		close(fd);
		remove_pwfile(t);
		return false;
	}
	close(fd);
	return true;
}

static char **initdb_argv(struct pgkeel_pg_task *t, json_object *boot, char *err, size_t errlen)
{
	const struct opt_rules rules = {"initdb", "bootstrap.initdb", initdb_forbidden, true,
	                                false};
	json_object *su = auth_section(t->cfg, "superuser");
	const char *username = jstr(jget(su, "username"));
	const char *password = jstr_nonempty(jget(su, "password"));
	struct strv a = {0};

	strv_push(&a, bin_path(t->cfg, "initdb"));
	if (!user_options(&rules, jget(boot, "initdb"), &a, err, errlen)) {
		strv_free(strv_finish(&a));
		return NULL;
	}
	if (username != NULL)
		strv_push(&a, pgkeel_asprintf("--username=%s", username));
	if (password != NULL) {
		if (!make_pwfile(t, password, err, errlen)) {
			strv_free(strv_finish(&a));
			return NULL;
		}
		strv_push(&a, pgkeel_asprintf("--pwfile=%s", t->pwfile));
	}
	strv_push(&a, pgkeel_strdup(t->data_dir));
	return strv_finish(&a);
}

static char **custom_bootstrap_argv(struct pgkeel_pg_task *t, json_object *mc, char *err,
                                    size_t errlen)
{
	static const char *const reserved[] = {
	    "command", "no_params", "keep_existing_recovery_conf", "recovery_conf", "scope",
	    "datadir", NULL};
	const char *command = jstr(jget(mc, "command"));
	char **words;
	struct strv a = {0};

	if (command == NULL) {
		set_err(err, errlen, "bootstrap.%s.command must be a string", t->method);
		return NULL;
	}
	words = shlex_split(command, err, errlen);
	if (words == NULL || words[0] == NULL) {
		if (words != NULL)
			set_err(err, errlen, "bootstrap.%s.command is empty", t->method);
		strv_free(words);
		return NULL;
	}
	for (size_t i = 0; words[i] != NULL; i++)
		strv_push(&a, words[i]);
	free(words);
	if (!pgkeel_json_truthy(jget(mc, "no_params"))) {
		strv_push(
		    &a, pgkeel_asprintf("--scope=%s", t->cfg->scope != NULL ? t->cfg->scope : ""));
		strv_push(&a, pgkeel_asprintf("--datadir=%s", t->data_dir));
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
		strv_push(&a, pgkeel_asprintf("--%s=%s", k, text));
		free(text);
	}
	return strv_finish(&a);
}

struct pgkeel_pg_task *pgkeel_pg_bootstrap_start(const struct pgkeel_pg_boot_opts *opts, char *err,
                                                 size_t errlen)
{
	json_object *boot = pgkeel_json_path(opts->cfg->local, "bootstrap");
	const char *method = jstr_nonempty(jget(boot, "method"));
	json_object *mc;
	struct pgkeel_pg_task *t;
	char **argv;
	char what[160];

	if (opts->cfg->data_dir == NULL || opts->cfg->data_dir[0] == '\0') {
		set_err(err, errlen, "postgresql.data_dir is not set");
		return NULL;
	}
	if (!pgkeel_pg_data_dir_empty(opts->cfg->data_dir)) {
		set_err(err, errlen, "cannot bootstrap: data directory %s is not empty",
		        opts->cfg->data_dir);
		return NULL;
	}
	t = task_new(PGKEEL_PG_TASK_BOOTSTRAP, opts);
	if (method == NULL)
		method = "initdb";
	mc = jget(boot, method);
	if (strcmp(method, "initdb") != 0 && json_object_is_type(mc, json_type_object) &&
	    jhas(mc, "command")) {
		t->method = pgkeel_strdup(method);
		t->info.custom = true;
		t->info.keep_existing_recovery_conf =
		    pgkeel_json_truthy(jget(mc, "keep_existing_recovery_conf"));
		t->info.recovery_conf = jget(mc, "recovery_conf");
		argv = custom_bootstrap_argv(t, mc, err, errlen);
		t->state = "running custom bootstrap script";
		if (argv != NULL)
			log_info("Running custom bootstrap script: %s", jstr(jget(mc, "command")));
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
	if (!task_spawn(t, argv, NULL, what, err, errlen)) {
		pgkeel_pg_task_free(t);
		return NULL;
	}
	t->step = ST_BOOT_RUN;
	return t;
}

static bool unlink_if_exists(const char *path, char *err, size_t errlen)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return true;
	set_err(err, errlen, "cannot remove %s: %s", path, strerror(errno));
	return false;
}

/* _post_restore's trigger file and remove_recovery_conf, after a custom bootstrap. */
static bool after_custom_bootstrap(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	int major = pgkeel_pg_data_version(t->data_dir);
	json_object *rc = jget(pg_section(t->cfg), "recovery_conf");
	const char *trigger = jstr_nonempty(
	    jget(rc, major != 0 && major < 12 ? "trigger_file" : "promote_trigger_file"));
	char *path = path_join(t->data_dir, trigger != NULL ? trigger : "promote");
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
			path = path_join(t->data_dir, files[i]);
			ok = unlink_if_exists(path, err, errlen);
			free(path);
		}
	}
	return ok;
}

/* Patroni's append_pg_hba: bootstrap.pg_hba after initdb's lines. */
static bool append_pg_hba(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	json_object *pg = pg_section(t->cfg);
	json_object *lines = pgkeel_json_path(t->cfg->local, "bootstrap.pg_hba");
	const char *cd = jstr_nonempty(jget(pg, "config_dir"));
	const char *hba_file = jstr_nonempty(ci_get(jget(pg, "parameters"), "hba_file"));
	char *config_dir = abs_path(cd != NULL ? cd : t->data_dir);
	char *path = path_join(config_dir, "pg_hba.conf");
	struct pgkeel_sbuf b = {0};
	bool ok = true, created;
	struct stat st;
	size_t off = 0;
	int fd;

	free(config_dir);
	if (pgkeel_json_truthy(jget(pg, "pg_hba"))) {
		free(path);
		return true;
	}
	if (hba_file != NULL) {
		char *hf = abs_path(hba_file);
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
		set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		ok = false;
	}
	while (ok && off < b.len) {
		ssize_t n = write(fd, b.p + off, b.len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
			ok = false;
			break;
		}
		off += (size_t)n;
	}
	if (ok && created)
		ok = give_to_user(t, fd, path, err, errlen);
	if (fd != -1 && close(fd) == -1 && ok) {
		set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
		ok = false;
	}
	free(b.p);
	free(path);
	return ok;
}

static void poll_bootstrap(struct pgkeel_pg_task *t)
{
	char err[1024];

	if (!child_done(t))
		return;
	remove_pwfile(t);
	if (!child_ok(t)) {
		char *why = child_failure(t);

		t->state = t->info.custom ? "custom bootstrap failed" : "initdb failed";
		task_fail(t, "%s %s", t->what, why);
		free(why);
		return;
	}
	if (t->info.custom && !after_custom_bootstrap(t, err, sizeof(err))) {
		task_fail(t, "%s", err);
		return;
	}
	if (!append_pg_hba(t, err, sizeof(err))) {
		task_fail(t, "%s", err);
		return;
	}
	t->status = PGKEEL_PG_TASK_SUCCEEDED;
	t->step = ST_DONE;
}

/* -------------------------------------------------------- post-bootstrap */

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
	struct role_job *j;
	struct strv o = {0};
	bool login = false;

	t->jobs = pgkeel_xreallocarray(t->jobs, t->njobs + 1, sizeof(*t->jobs));
	j = &t->jobs[t->njobs++];
	memset(j, 0, sizeof(*j));
	j->role = pgkeel_strdup(role);
	j->password = pgkeel_json_truthy(password) ? pgkeel_pg_value_text(password) : NULL;
	if (first_option != NULL)
		strv_push(&o, pgkeel_strdup(first_option));
	for (size_t i = 0;
	     json_object_is_type(options, json_type_array) && i < json_object_array_length(options);
	     i++) {
		char *s = pgkeel_pg_value_text(json_object_array_get_idx(options, i));

		for (char *p = s; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		strv_push(&o, s);
	}
	for (size_t i = 0; i < o.n; i++)
		login = login || strcmp(o.v[i], "LOGIN") == 0 || strcmp(o.v[i], "NOLOGIN") == 0;
	if (!login)
		strv_push(&o, pgkeel_strdup("LOGIN"));
	j->options = strv_finish(&o);
}

static void grant_job_add(struct pgkeel_pg_task *t, const char *role, const char *function)
{
	struct role_job *j;

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
		strv_free(t->jobs[i].options);
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
	set_err(err, errlen, "%s (%s)", e.msg, pgkeel_pg_rc_name(rc));
	return false;
}

/* Patroni's create_or_update_role, or one GRANT of the rewind role. */
static bool run_job(struct pgkeel_pg_task *t, const struct role_job *j, char *err, size_t errlen)
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
		set_err(err, errlen, "creating or updating role %s failed: %s", ident, why);
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
	add_auth(r, auth_section(cfg, "superuser"));
	json_object_object_add(r, "dbname", json_object_new_string(database_name(cfg)));
	return r;
}

static struct pgkeel_pg *own_connection(const struct pgkeel_config *cfg)
{
	json_object *r = local_record(cfg);
	struct pgkeel_pg_params p;
	const char *keys[16], *values[16];
	char *port_text = pgkeel_pg_value_text(jget(r, "port"));
	int64_t port = 0;
	struct pgkeel_pg *pg;
	size_t n = 0;

	memset(&p, 0, sizeof(p));
	p.host = jstr(jget(r, "host"));
	if (pgkeel_parse_int64(port_text, &port) && port > 0 && port < 65536)
		p.port = (int)port;
	p.user = jstr(jget(r, "user"));
	p.password = jstr(jget(r, "password"));
	p.dbname = jstr(jget(r, "dbname"));
	json_object_object_foreach(r, k, v)
	{
		if (n < PGKEEL_ARRAY_LEN(keys) && jstr(v) != NULL && strcmp(k, "host") != 0 &&
		    strcmp(k, "port") != 0 && strcmp(k, "user") != 0 &&
		    strcmp(k, "password") != 0 && strcmp(k, "dbname") != 0) {
			keys[n] = k;
			values[n++] = jstr(v);
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
	json_object *su = auth_section(opts->cfg, "superuser");
	json_object *boot = pgkeel_json_path(opts->cfg->local, "bootstrap");
	const char *script = jstr_nonempty(jget(boot, "post_bootstrap"));

	if (script == NULL)
		script = jstr_nonempty(jget(boot, "post_init"));
	if (jstr(jget(auth_section(opts->cfg, "replication"), "username")) == NULL) {
		set_err(err, errlen, "postgresql.authentication.replication.username is not set");
		return NULL;
	}
	if (script != NULL) {
		char **w = shlex_split(script, err, errlen);

		if (w == NULL || w[0] == NULL) {
			if (w != NULL)
				set_err(err, errlen, "bootstrap.post_bootstrap is empty");
			strv_free(w);
			return NULL;
		}
		strv_free(w);
	}
	t = task_new(PGKEEL_PG_TASK_POST_BOOTSTRAP, opts);
	t->script = script != NULL ? pgkeel_strdup(script) : NULL;
	if (opts->pg != NULL) {
		t->pg = opts->pg;
	} else {
		t->pg = own_connection(opts->cfg);
		t->own_pg = true;
	}
	if (jstr(jget(su, "username")) != NULL && jhas(su, "password"))
		role_job_add(t, jstr(jget(su, "username")), jget(su, "password"), NULL,
		             "SUPERUSER");
	t->step = ST_PB_FIRST_ROLES;
	return t;
}

static bool start_post_bootstrap_script(struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	json_object *r = local_record(t->cfg);
	char *dsn = format_dsn(r), *pgpass_env = NULL, *env[3] = {NULL, NULL, NULL};
	char **argv = shlex_split(t->script, err, errlen);
	struct strv a = {0};
	char what[256];
	bool ok;

	if (!jhas(r, "host")) /* localhost matches the default socket directory in pgpass */
		json_object_object_add(r, "host", json_object_new_string("localhost"));
	ok = argv != NULL && write_pgpass(t, r, &pgpass_env, err, errlen);
	json_object_put(r);
	if (!ok) {
		strv_free(argv);
		free(dsn);
		return false;
	}
	for (size_t i = 0; argv[i] != NULL; i++)
		strv_push(&a, argv[i]);
	free(argv);
	strv_push(&a, dsn);
	if (pgpass_env != NULL) {
		env[0] = pgpass_env;
		env[1] = PGOPTIONS_POST_BOOTSTRAP;
	} else {
		env[0] = PGOPTIONS_POST_BOOTSTRAP;
	}
	(void)pgkeel_fmt(what, sizeof(what), "post_bootstrap script %s", t->script);
	ok = task_spawn(t, strv_finish(&a), env, what, err, errlen);
	free(pgpass_env);
	return ok;
}

/* The roles after the script: replication, rewind (11+), bootstrap.users. */
static void later_jobs(struct pgkeel_pg_task *t)
{
	static const char *const rewind_functions[] = {
	    "pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)",
	    "pg_read_binary_file(text)", "pg_read_binary_file(text, bigint, bigint, boolean)"};
	json_object *su = auth_section(t->cfg, "superuser");
	json_object *repl = auth_section(t->cfg, "replication");
	json_object *rewind = su;
	json_object *users = pgkeel_json_path(t->cfg->local, "bootstrap.users");
	int version = t->server_version;

	if (version == 0)
		version = pgkeel_pg_server_version(t->pg);
	if (version == 0)
		version = pgkeel_pg_data_version(t->data_dir) * 10000;
	if (version >= 110000 &&
	    json_object_is_type(auth_section(t->cfg, "rewind"), json_type_object))
		rewind = auth_section(t->cfg, "rewind");
	jobs_free(t);
	role_job_add(t, jstr(jget(repl, "username")), jget(repl, "password"), NULL, "REPLICATION");
	if (!json_object_equal(rewind, su) && jstr(jget(rewind, "username")) != NULL) {
		const char *name = jstr(jget(rewind, "username"));

		role_job_add(t, name, jget(rewind, "password"), NULL, NULL);
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(rewind_functions); i++)
			grant_job_add(t, name, rewind_functions[i]);
	}
	if (json_object_is_type(users, json_type_object)) {
		json_object_object_foreach(users, name, u)
		{
			const char *taken[] = {jstr(jget(su, "username")),
			                       jstr(jget(repl, "username")),
			                       jstr(jget(rewind, "username"))};
			bool skip = false;

			for (size_t i = 0; i < PGKEEL_ARRAY_LEN(taken); i++)
				skip = skip || (taken[i] != NULL && strcmp(taken[i], name) == 0);
			if (skip)
				continue;
			if (u != NULL && !json_object_is_type(u, json_type_object)) {
				log_warning("bootstrap.users.%s is not a map; not created", name);
				continue;
			}
			role_job_add(t, name, jget(u, "password"), jget(u, "options"), NULL);
		}
	}
}

static void poll_post_bootstrap(struct pgkeel_pg_task *t)
{
	char err[1024];

	for (;;) {
		switch (t->step) {
		case ST_PB_FIRST_ROLES:
		case ST_PB_LATER_ROLES:
			if (t->job < t->njobs) {
				if (!run_job(t, &t->jobs[t->job], err, sizeof(err))) {
					task_fail(t, "post_bootstrap: %s", err);
					return;
				}
				t->job++;
				/* one role per poll: the caller gets control back in between */
				if (t->job < t->njobs)
					return;
			}
			if (t->step == ST_PB_LATER_ROLES) {
				jobs_free(t);
				t->status = PGKEEL_PG_TASK_SUCCEEDED;
				t->step = ST_DONE;
				return;
			}
			t->step = ST_PB_SCRIPT;
			break;
		case ST_PB_SCRIPT:
			if (t->script == NULL) {
				later_jobs(t);
				t->step = ST_PB_LATER_ROLES;
				break;
			}
			if (!start_post_bootstrap_script(t, err, sizeof(err))) {
				task_fail(t, "post_init script %s failed: %s", t->script, err);
				return;
			}
			t->step = ST_PB_SCRIPT_WAIT;
			return;
		case ST_PB_SCRIPT_WAIT:
			if (!child_done(t))
				return;
			if (!child_ok(t)) {
				char *why = child_failure(t);

				task_fail(t, "post_init script %s failed: %s", t->script, why);
				free(why);
				return;
			}
			later_jobs(t);
			t->step = ST_PB_LATER_ROLES;
			return;
		default:
			return;
		}
	}
}

/* --------------------------------------------------------------- replicas */

static json_object *configured_methods(const struct pgkeel_config *cfg)
{
	json_object *pg = pg_section(cfg);
	json_object *m = jget(pg, "create_replica_methods");

	if (!pgkeel_json_truthy(m))
		m = jget(pg, "create_replica_method");
	return m;
}

static bool works_without_leader(const struct pgkeel_config *cfg, const char *method)
{
	json_object *mc = jget(pg_section(cfg), method);

	return strcmp(method, "basebackup") != 0 && (pgkeel_json_truthy(jget(mc, "no_master")) ||
	                                             pgkeel_json_truthy(jget(mc, "no_leader")));
}

bool pgkeel_pg_replica_without_leader(const struct pgkeel_config *cfg, json_object *methods)
{
	if (methods == NULL)
		methods = configured_methods(cfg);
	for (size_t i = 0;
	     json_object_is_type(methods, json_type_array) && i < json_object_array_length(methods);
	     i++) {
		const char *m = jstr(json_object_array_get_idx(methods, i));

		if (m != NULL && works_without_leader(cfg, m))
			return true;
	}
	return false;
}

/*
 * Removing a data directory can take long (a big database): a thread does
 * it and writes one byte into a pipe when done, which the task polls.
 */
struct wiper {
	pthread_t thread;
	int fds[2];
	char *path;
	bool ok;
	char err[512];
};

static void *wiper_main(void *arg)
{
	struct wiper *w = arg;
	char byte = 1;

	w->ok = pgkeel_pg_remove_data_dir(w->path, w->err, sizeof(w->err));
	while (write(w->fds[1], &byte, 1) == -1 && errno == EINTR)
		;
	return NULL;
}

static void wiper_free(struct wiper *w)
{
	if (!w->ok)
		log_error("Could not remove data directory %s: %s", w->path, w->err);
	if (w->fds[0] != -1)
		close(w->fds[0]);
	if (w->fds[1] != -1)
		close(w->fds[1]);
	free(w->path);
	free(w);
}

/* Start removing the data directory; the task goes on at `after` once it is gone. */
static void rc_wipe(struct pgkeel_pg_task *t, enum step after)
{
	struct wiper *w = pgkeel_xcalloc(1, sizeof(*w));
	int rc = -1;

	w->path = pgkeel_strdup(t->data_dir);
	w->fds[0] = w->fds[1] = -1;
	w->ok = true;
	t->after_wipe = after;
	if (pipe2(w->fds, O_CLOEXEC | O_NONBLOCK) == 0)
		rc = pthread_create(&w->thread, NULL, wiper_main, w);
	if (rc != 0) {
		/* no thread: do it here */
		log_warning("cannot start a thread to remove %s: removing it now", t->data_dir);
		w->ok = pgkeel_pg_remove_data_dir(w->path, w->err, sizeof(w->err));
		wiper_free(w);
		t->step = after;
		return;
	}
	t->wipe = w;
	t->step = ST_WIPE;
}

/* Is the removal over?  Never waits, unless `block` (pgkeel_pg_task_free). */
static bool wipe_finished(struct pgkeel_pg_task *t, bool block)
{
	char byte;

	if (t->wipe == NULL)
		return true;
	if (!block && read(t->wipe->fds[0], &byte, 1) != 1)
		return false;
	pthread_join(t->wipe->thread, NULL);
	wiper_free(t->wipe);
	t->wipe = NULL;
	return true;
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
	t->step = ST_RC_NEXT;
}

/* postgresql.<m> as (key, value text) pairs plus Patroni's default parameters. */
static char **custom_replica_argv(struct pgkeel_pg_task *t, const char *m, char *err, size_t errlen)
{
	static const char *const dropped[] = {"no_params", "no_master", "no_leader", "keep_data"};
	json_object *mc = jget(pg_section(t->cfg), m);
	bool no_params = pgkeel_json_truthy(jget(mc, "no_params"));
	const char *command = m;
	struct strv keys = {0}, vals = {0}, a = {0};
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
				if (jstr(v) == NULL) {
					set_err(err, errlen,
					        "postgresql.%s.command must be a string", m);
					strv_free(strv_finish(&keys));
					strv_free(strv_finish(&vals));
					return NULL;
				}
				command = jstr(v);
				continue;
			}
			for (size_t i = 0; no_params && i < PGKEEL_ARRAY_LEN(dropped); i++)
				skip = skip || strcmp(k, dropped[i]) == 0;
			if (skip)
				continue;
			strv_push(&keys, pgkeel_strdup(k));
			strv_push(&vals, pgkeel_pg_value_text(v));
		}
	}
	strv_finish(&keys);
	strv_finish(&vals);
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
				strv_push(&keys, pgkeel_strdup(defaults[d][0]));
				strv_push(&vals, pgkeel_strdup(defaults[d][1]));
			}
		}
	}
	words = shlex_split(command, err, errlen);
	if (words != NULL && words[0] == NULL) {
		set_err(err, errlen, "the command of replica method %s is empty", m);
		strv_free(words);
		words = NULL;
	}
	if (words != NULL) {
		for (size_t i = 0; words[i] != NULL; i++)
			strv_push(&a, words[i]);
		free(words);
		for (size_t i = 0; i < keys.n; i++)
			strv_push(&a, pgkeel_asprintf("--%s=%s", keys.v[i], vals.v[i]));
	}
	strv_free(keys.v);
	strv_free(vals.v);
	return words != NULL ? strv_finish(&a) : NULL;
}

/* pg_basebackup --pgdata=<data_dir> -X stream --dbname=<dsn> <postgresql.basebackup> */
static char **basebackup_argv(struct pgkeel_pg_task *t)
{
	const struct opt_rules rules = {"basebackup", "postgresql.basebackup", basebackup_forbidden,
	                                false, t->server_version >= 150000};
	struct strv a = {0};

	strv_push(&a, bin_path(t->cfg, "pg_basebackup"));
	strv_push(&a, pgkeel_asprintf("--pgdata=%s", t->data_dir));
	strv_push(&a, pgkeel_strdup("-X"));
	strv_push(&a, pgkeel_strdup("stream"));
	strv_push(&a, pgkeel_asprintf("--dbname=%s", t->connstring));
	/* not strict: problems are logged and the option dropped */
	(void)user_options(&rules, jget(pg_section(t->cfg), "basebackup"), &a, NULL, 0);
	return strv_finish(&a);
}

static void rc_next(struct pgkeel_pg_task *t)
{
	const char *m;

	if (t->mi >= t->nmethods) {
		rc_wipe(t, ST_RC_FAILED);
		return;
	}
	m = t->methods[t->mi];
	if (strcmp(m, "basebackup") == 0) {
		if (t->bb_argv == NULL)
			t->bb_argv = basebackup_argv(t);
		t->attempt = 0;
		t->step = ST_RC_BB_START;
		return;
	}
	t->keep_data = pgkeel_json_truthy(jget(jget(pg_section(t->cfg), m), "keep_data"));
	t->step = ST_RC_CUSTOM_START;
	if (!pgkeel_pg_data_dir_empty(t->data_dir)) {
		if (t->keep_data)
			log_info("Leaving data directory uncleaned");
		else
			rc_wipe(t, ST_RC_CUSTOM_START);
	}
}

static void rc_custom_start(struct pgkeel_pg_task *t)
{
	const char *m = t->methods[t->mi];
	char err[1024], what[256];
	char **argv = custom_replica_argv(t, m, err, sizeof(err));

	(void)pgkeel_fmt(what, sizeof(what), "replica method %s", m);
	if (argv == NULL || !task_spawn(t, argv, t->base_env, what, err, sizeof(err))) {
		if (argv == NULL)
			log_error("replica method %s: %s", m, err);
		rc_method_failed(t, "Error creating replica using method %s: %s", m, err);
		return;
	}
	t->step = ST_RC_CUSTOM_WAIT;
}

static void rc_succeeded(struct pgkeel_pg_task *t, const char *m)
{
	log_info("replica has been created using %s", m);
	t->used_method = pgkeel_strdup(m);
	t->state = "stopped";
	t->status = PGKEEL_PG_TASK_SUCCEEDED;
	t->step = ST_DONE;
}

/* An attempt failed: retry after the pause, or give the method up. */
static void rc_bb_attempt_failed(struct pgkeel_pg_task *t, const char *why)
{
	t->attempt++;
	if (t->attempt < PGKEEL_PG_BASEBACKUP_ATTEMPTS) {
		log_error("Error when fetching backup: %s", why);
		log_warning("Trying again in %d seconds", (t->retry_ms + 999) / 1000);
		t->wake_at = pgkeel_now_monotonic_ms() + t->retry_ms;
		t->step = ST_RC_BB_SLEEP;
		return;
	}
	rc_method_failed(t, "Error when fetching backup: %s", why);
}

static void rc_bb_spawn(struct pgkeel_pg_task *t)
{
	struct strv a = {0};
	char err[1024];

	for (size_t i = 0; t->bb_argv[i] != NULL; i++)
		strv_push(&a, pgkeel_strdup(t->bb_argv[i]));
	if (!task_spawn(t, strv_finish(&a), t->base_env, "pg_basebackup", err, sizeof(err))) {
		rc_bb_attempt_failed(t, err);
		return;
	}
	t->step = ST_RC_BB_WAIT;
}

static void poll_replica(struct pgkeel_pg_task *t)
{
	for (;;) {
		switch (t->step) {
		case ST_WIPE:
			if (!wipe_finished(t, false))
				return;
			t->step = t->after_wipe;
			break;
		case ST_RC_NEXT:
			rc_next(t);
			break;
		case ST_RC_CUSTOM_START:
			rc_custom_start(t);
			break;
		case ST_RC_CUSTOM_WAIT:
			if (!child_done(t))
				return;
			if (child_ok(t)) {
				rc_succeeded(t, t->methods[t->mi]);
				return;
			} else {
				char *why = child_failure(t);
				bool keep = t->keep_data;

				rc_method_failed(t, "Error creating replica using method %s: %s",
				                 t->methods[t->mi], why);
				free(why);
				if (!keep)
					rc_wipe(t, ST_RC_NEXT);
			}
			break;
		case ST_RC_BB_START:
			t->step = ST_RC_BB_SPAWN;
			if (!pgkeel_pg_data_dir_empty(t->data_dir))
				rc_wipe(t, ST_RC_BB_SPAWN);
			break;
		case ST_RC_BB_SPAWN:
			rc_bb_spawn(t);
			break;
		case ST_RC_BB_WAIT:
			if (!child_done(t))
				return;
			if (child_ok(t)) {
				rc_succeeded(t, "basebackup");
				return;
			} else {
				char *why = child_failure(t);
				char *msg = pgkeel_asprintf("pg_basebackup %s", why);

				rc_bb_attempt_failed(t, msg);
				free(msg);
				free(why);
			}
			break;
		case ST_RC_BB_SLEEP:
			if (pgkeel_now_monotonic_ms() < t->wake_at)
				return;
			t->step = ST_RC_BB_START;
			break;
		case ST_RC_FAILED:
			t->state = "stopped";
			if (t->cancelled)
				task_fail(t, "create replica cancelled");
			else
				task_fail(t, "failed to create a replica: %s",
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
	struct strv ms = {0};
	json_object *r = NULL;
	char *pgpass_env = NULL;

	if (opts->cfg->data_dir == NULL || opts->cfg->data_dir[0] == '\0') {
		set_err(err, errlen, "postgresql.data_dir is not set");
		return NULL;
	}
	if (methods == NULL)
		methods = configured_methods(opts->cfg);
	for (size_t i = 0;
	     json_object_is_type(methods, json_type_array) && i < json_object_array_length(methods);
	     i++) {
		const char *m = jstr(json_object_array_get_idx(methods, i));

		if (m == NULL || m[0] == '\0') {
			log_warning("create_replica_methods: ignoring a method that is not a name");
			continue;
		}
		if (src == NULL && !works_without_leader(opts->cfg, m))
			continue;
		strv_push(&ms, pgkeel_strdup(m));
	}
	if (ms.n == 0 && src != NULL)
		strv_push(&ms, pgkeel_strdup("basebackup"));
	if (ms.n == 0) {
		set_err(err, errlen, "no replica creation method works without a leader");
		strv_free(strv_finish(&ms));
		return NULL;
	}

	t = task_new(PGKEEL_PG_TASK_CREATE_REPLICA, opts);
	t->methods = strv_finish(&ms);
	t->nmethods = ms.n;
	if (src != NULL) {
		r = json_object_new_object();
		json_object_object_add(r, "host", json_object_new_string(src->host));
		json_object_object_add(r, "port", json_object_new_string(src->port));
		json_object_object_add(r, "dbname",
		                       json_object_new_string(src->dbname[0] != '\0'
		                                                  ? src->dbname
		                                                  : database_name(opts->cfg)));
		add_auth(r, auth_section(opts->cfg, "replication"));
		if (!write_pgpass(t, r, &pgpass_env, err, errlen)) {
			json_object_put(r);
			pgkeel_pg_task_free(t);
			return NULL;
		}
		t->connstring = format_dsn(r);
		json_object_put(r);
	} else {
		t->connstring = pgkeel_strdup("");
	}
	{
		struct strv e = {0};

		if (pgpass_env != NULL)
			strv_push(&e, pgpass_env);
		t->base_env = strv_finish(&e);
	}
	t->state = "creating replica";
	t->step = ST_RC_NEXT;
	/* start the first command now: the caller's first wait finds it running */
	poll_replica(t);
	return t;
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
		poll_replica(t);
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
		add_pollfd(fds, n, &k, t->wipe->fds[0]);
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
	if (t->step == ST_WIPE)
		return INT64_MAX;
	if (t->child_running)
		return t->child.pidfd != -1 ? INT64_MAX
		                            : pgkeel_now_monotonic_ms() + NO_PIDFD_POLL_MS;
	if (t->step == ST_RC_BB_SLEEP)
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
		drain_output(t);
		t->child_running = false;
		pgkeel_child_free(&t->child);
	}
	remove_pwfile(t);
	switch (t->kind) {
	case PGKEEL_PG_TASK_BOOTSTRAP:
		task_fail(t, "bootstrap cancelled");
		break;
	case PGKEEL_PG_TASK_POST_BOOTSTRAP:
		task_fail(t, "post_bootstrap cancelled");
		break;
	case PGKEEL_PG_TASK_CREATE_REPLICA:
		/* a removal in progress goes on; then (or now) the data directory goes */
		if (t->step == ST_WIPE)
			t->after_wipe = ST_RC_FAILED;
		else
			rc_wipe(t, ST_RC_FAILED);
		break;
	}
}

void pgkeel_pg_task_free(struct pgkeel_pg_task *t)
{
	if (t == NULL)
		return;
	pgkeel_child_free(&t->child);
	(void)wipe_finished(t, true);
	remove_pwfile(t);
	if (t->own_pg)
		pgkeel_pg_free(t->pg);
	jobs_free(t);
	pgkeel_config_unref(t->cfg);
	free(t->data_dir);
	free(t->pgpass_path);
	free(t->what);
	strv_free(t->argv);
	strv_free(t->env);
	free(t->tail);
	free(t->error);
	free(t->method);
	free(t->script);
	strv_free(t->methods);
	free(t->connstring);
	strv_free(t->base_env);
	strv_free(t->bb_argv);
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
