/*
 * pg_slots_copy: logical slots copied from the primary into a stopped
 * replica, and their readiness (contract and deviations in pg_slots_copy.h).
 *
 * Read alongside Patroni 3.3's postgresql/slots.py: copy_logical_slots,
 * check_logical_slots_readiness, _update_pending_logical_slot_primary,
 * _ready_logical_slots, and PostgreSQL 15's replication/slot.c
 * (ReplicationSlotOnDisk, RestoreSlotFromDisk, StartupReplicationSlots).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "json.h"
#include "log.h"
#include "pg_bootstrap.h"
#include "pg_data.h"
#include "pg_slots_copy.h"
#include "util.h"

/* ------------------------------------------------------------ helpers */

static json_object *obj_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* A scalar as text we own: strings as they are, integers and booleans rendered. */
static char *scalar_text(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return pgkeel_strdup(json_object_get_string(v));
	case json_type_int:
		return pgkeel_asprintf("%" PRId64, json_object_get_int64(v));
	case json_type_boolean:
		return pgkeel_strdup(json_object_get_boolean(v) ? "True" : "False");
	default:
		return NULL;
	}
}

static void wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* '{a,b}': names are valid slot names, so no quoting is needed. */
static char *text_array(char *const *names, size_t n, const char *extra)
{
	struct pgkeel_sbuf b = {0};
	bool first = true;

	pgkeel_sbuf_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		if (!pgkeel_slot_name_valid(names[i]))
			continue;
		pgkeel_sbuf_printf(&b, "%s%s", first ? "" : ",", names[i]);
		first = false;
	}
	if (extra != NULL)
		pgkeel_sbuf_printf(&b, "%s%s", first ? "" : ",", extra);
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

/* ------------------------------------------------ a connection to the leader */

void pgkeel_slots_leader_conn_clear(struct pgkeel_slots_leader_conn *c)
{
	size_t n;

	if (c == NULL)
		return;
	n = c->params.n_extra;
	free((char *)c->params.user);
	wipe_free((char *)c->params.password);
	for (size_t i = 0; i < n; i++) {
		free((char *)c->extra_keys[i]);
		/* sslpassword and the like: wipe every value */
		wipe_free((char *)c->extra_values[i]);
	}
	free(c->extra_keys);
	free(c->extra_values);
	memset(c, 0, sizeof(*c));
}

/* Patroni's rewind_credentials. */
static json_object *rewind_credentials(json_object *config, int server_version)
{
	json_object *auth = pgkeel_json_path(config, "postgresql.authentication");
	json_object *rewind = obj_get(auth, "rewind");

	if (server_version >= 110000 && json_object_is_type(rewind, json_type_object))
		return rewind;
	return obj_get(auth, "superuser");
}

static void add_auth(struct pgkeel_slots_leader_conn *c, json_object *auth)
{
	if (!json_object_is_type(auth, json_type_object))
		return;
	json_object_object_foreach(auth, key, value)
	{
		char *text = scalar_text(value);
		size_t n = c->params.n_extra;

		if (text == NULL)
			continue; /* null (Patroni drops it) or not a scalar */
		if (strcmp(key, "username") == 0 || strcmp(key, "user") == 0) {
			free((char *)c->params.user);
			c->params.user = text;
		} else if (strcmp(key, "password") == 0) {
			wipe_free((char *)c->params.password);
			c->params.password = text;
		} else {
			c->extra_keys = pgkeel_xreallocarray(c->extra_keys, n + 1, sizeof(char *));
			c->extra_values =
			    pgkeel_xreallocarray(c->extra_values, n + 1, sizeof(char *));
			c->extra_keys[n] = pgkeel_strdup(key);
			c->extra_values[n] = text;
			c->params.n_extra = n + 1;
		}
	}
	c->params.extra_keys = c->extra_keys;
	c->params.extra_values = c->extra_values;
}

bool pgkeel_slots_leader_conn_init(struct pgkeel_slots_leader_conn *c,
                                   const struct pgkeel_cluster *cluster, json_object *config,
                                   int server_version, char *err, size_t errlen)
{
	const struct pgkeel_member *m =
	    cluster != NULL && cluster->leader != NULL ? cluster->leader->member : NULL;
	json_object *kwargs, *db;
	int64_t port = 0;

	memset(c, 0, sizeof(*c));
	if (m == NULL) {
		(void)pgkeel_fmt(err, errlen, "no leader");
		return false;
	}
	(void)pgkeel_fmt(c->leader, sizeof(c->leader), "%s", m->name);
	kwargs = obj_get(m->data, "conn_kwargs");
	if (json_object_is_type(kwargs, json_type_object) && obj_get(kwargs, "host") != NULL) {
		char *host = scalar_text(obj_get(kwargs, "host"));
		char *p = scalar_text(obj_get(kwargs, "port"));
		bool ok = host != NULL && pgkeel_fmt(c->host, sizeof(c->host), "%s", host) &&
		          (p == NULL || pgkeel_parse_int64(p, &port));

		free(host);
		free(p);
		if (!ok) {
			(void)pgkeel_fmt(err, errlen, "unusable conn_kwargs of %s", m->name);
			return false;
		}
	} else {
		struct pgkeel_pg_source src;

		if (!pgkeel_pg_source_from_url(m->d.conn_url, &src) ||
		    !pgkeel_parse_int64(src.port, &port) ||
		    !pgkeel_fmt(c->host, sizeof(c->host), "%s", src.host)) {
			(void)pgkeel_fmt(err, errlen, "unusable conn_url of %s", m->name);
			return false;
		}
	}
	if (port < 0 || port > 65535) {
		(void)pgkeel_fmt(err, errlen, "unusable port of %s", m->name);
		return false;
	}
	db = pgkeel_json_path(config, "postgresql.database");
	if (!json_object_is_type(db, json_type_string) || json_object_get_string_len(db) == 0 ||
	    !pgkeel_fmt(c->dbname, sizeof(c->dbname), "%s", json_object_get_string(db)))
		(void)pgkeel_fmt(c->dbname, sizeof(c->dbname), "postgres");
	c->params.host = c->host;
	c->params.port = (int)port;
	c->params.dbname = c->dbname;
	add_auth(c, rewind_credentials(config, server_version));
	return true;
}

/* ------------------------------------------------------------ state file */

uint32_t pgkeel_crc32c(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

bool pgkeel_slot_state_check(const char *name, const unsigned char *data, size_t len, char *why,
                             size_t whylen)
{
	uint32_t magic, checksum, length;
	size_t name_len = name != NULL ? strlen(name) : 0;

	/* the head, then at least the slot's NameData (64 bytes) */
	if (data == NULL || len < PGKEEL_SLOT_STATE_HEAD_SIZE + 64) {
		(void)pgkeel_fmt(why, whylen, "state file too short (%zu bytes)", len);
		return false;
	}
	memcpy(&magic, data, 4);
	memcpy(&checksum, data + 4, 4);
	memcpy(&length, data + 12, 4);
	if (magic != PGKEEL_SLOT_STATE_MAGIC) {
		(void)pgkeel_fmt(why, whylen, "wrong magic number %" PRIu32, magic);
		return false;
	}
	if ((size_t)length != len - PGKEEL_SLOT_STATE_HEAD_SIZE) {
		(void)pgkeel_fmt(why, whylen, "length %" PRIu32 " does not match the file size %zu",
		                 length, len);
		return false;
	}
	if (pgkeel_crc32c(data + 8, len - 8) != checksum) {
		(void)pgkeel_fmt(why, whylen, "checksum mismatch");
		return false;
	}
	if (name_len == 0 || name_len >= 64 || memcmp(data + 16, name, name_len) != 0 ||
	    data[16 + name_len] != '\0') {
		(void)pgkeel_fmt(why, whylen, "the file is not the state of slot %s",
		                 name != NULL ? name : "(null)");
		return false;
	}
	return true;
}

/* --------------------------------------------------------------- copying */

#define COPY_SQL                                                                                   \
	"SELECT slot_name, slot_type, datname, plugin, catalog_xmin::text,"                        \
	" pg_catalog.pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint,"                         \
	" pg_catalog.pg_read_binary_file('pg_replslot/' || slot_name || '/state')"                 \
	" FROM pg_catalog.pg_get_replication_slots() JOIN pg_catalog.pg_database ON datoid = oid"  \
	" WHERE NOT pg_catalog.pg_is_in_recovery() AND slot_name::text = ANY($1::text[])"

void pgkeel_slot_copies_clear(struct pgkeel_slot_copies *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].database);
		free(c->v[i].plugin);
		free(c->v[i].state);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* One row of COPY_SQL into out, when the configuration wants it as it is. */
static void copy_row(PGresult *res, int i, const struct pgkeel_slots_desired *want,
                     struct pgkeel_slot_copies *out)
{
	const char *name = PQgetvalue(res, i, 0);
	const char *database = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
	const char *plugin = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
	const struct pgkeel_slot_want *w = pgkeel_slots_desired_find(want, name);
	struct pgkeel_slot_copy *c;
	unsigned char *bytes;
	size_t len = 0;
	char why[128];

	if (w == NULL)
		return; /* not a slot of the configuration (any more) */
	if (w->type != PGKEEL_SLOT_LOGICAL || strcmp(PQgetvalue(res, i, 1), "logical") != 0 ||
	    database == NULL || plugin == NULL || strcmp(w->database, database) != 0 ||
	    strcmp(w->plugin, plugin) != 0) {
		char *conf = pgkeel_slot_repr(w->type, w->database, w->plugin);
		char *prim = pgkeel_slot_repr(PGKEEL_SLOT_LOGICAL, database, plugin);

		log_warning("Will not copy the logical slot \"%s\" due to the configuration "
		            "mismatch: configuration=%s, slot on the primary=%s",
		            name, conf, prim);
		free(conf);
		free(prim);
		return;
	}
	bytes = PQgetisnull(res, i, 6)
	            ? NULL
	            : PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 6), &len);
	if (!pgkeel_slot_state_check(name, bytes, len, why, sizeof(why))) {
		log_error("Will not copy the logical slot \"%s\": %s", name, why);
		PQfreemem(bytes);
		return;
	}
	out->v = pgkeel_xreallocarray(out->v, out->n + 1, sizeof(*out->v));
	c = &out->v[out->n++];
	memset(c, 0, sizeof(*c));
	(void)pgkeel_fmt(c->name, sizeof(c->name), "%s", name);
	c->database = pgkeel_strdup(database);
	c->plugin = pgkeel_strdup(plugin);
	c->catalog_xmin = pgkeel_slots_cell_int(res, i, 4);
	c->confirmed_flush_lsn = pgkeel_slots_cell_int(res, i, 5);
	c->state = (unsigned char *)pgkeel_dup_bytes((const char *)bytes, len);
	c->state_len = len;
	PQfreemem(bytes);
}

bool pgkeel_slots_copy_read(const struct pgkeel_slots_input *in, char *const *names, size_t n,
                            int64_t deadline_ms, struct pgkeel_slot_copies *out)
{
	struct pgkeel_slots_input as_replica = *in;
	struct pgkeel_slots_desired want;
	struct pgkeel_slots_leader_conn conn;
	struct pgkeel_pg_err err;
	struct pgkeel_pg *pg;
	PGresult *res = NULL;
	char why[256];
	char *array;
	const char *params[1];
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!pgkeel_slots_leader_conn_init(&conn, in->cluster, in->config, in->server_version, why,
	                                   sizeof(why))) {
		log_error("Failed to copy logical slots from the %s via postgresql connection: %s",
		          conn.leader[0] != '\0' ? conn.leader : "leader", why);
		pgkeel_slots_leader_conn_clear(&conn);
		return false;
	}
	as_replica.role = PGKEEL_PG_REPLICA;
	pgkeel_slots_compute_desired(&as_replica, &want, NULL);
	array = text_array(names, n, NULL);
	params[0] = array;
	pg = pgkeel_pg_new(&conn.params);
	if (pgkeel_pg_exec(pg, COPY_SQL, 1, params, deadline_ms, &res, &err) != PGKEEL_PG_OK) {
		log_error("Failed to copy logical slots from the %s via postgresql connection: %s",
		          conn.leader, err.msg);
	} else if (PQnfields(res) != 7) {
		log_error("Failed to copy logical slots from the %s via postgresql connection: "
		          "unexpected answer",
		          conn.leader);
		PQclear(res);
	} else {
		for (int i = 0; i < PQntuples(res); i++) {
			if (!PQgetisnull(res, i, 0) &&
			    pgkeel_slot_name_valid(PQgetvalue(res, i, 0)))
				copy_row(res, i, &want, out);
		}
		PQclear(res);
		ok = true;
	}
	pgkeel_pg_free(pg);
	free(array);
	pgkeel_slots_desired_clear(&want);
	pgkeel_slots_leader_conn_clear(&conn);
	return ok;
}

/* ---------------------------------------------------------------- install */

struct perms {
	uid_t uid;
	gid_t gid;
	mode_t dir_mode;
	mode_t file_mode;
};

static bool fail(char *err, size_t errlen, const char *what, const char *name)
{
	(void)pgkeel_fmt(err, errlen, "%s %s: %s", what, name, strerror(errno));
	return false;
}

/* chown to the data directory's owner when we are someone else (root). */
static bool give(int fd, const struct perms *p, mode_t mode)
{
	if ((p->uid != geteuid() || p->gid != getegid()) && fchown(fd, p->uid, p->gid) == -1)
		return false;
	return fchmod(fd, mode) == 0;
}

static bool write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* fsync a directory; EINVAL (a filesystem that cannot) is fine, as Patroni's fsync_dir. */
static bool fsync_dir(int fd)
{
	return fsync(fd) == 0 || errno == EINVAL;
}

/*
 * Remove pg_replslot/<name>: a slot directory holds only files (state,
 * spill files); anything else there is refused.  Absent is fine.
 */
static bool remove_entry(int rfd, const char *name, char *err, size_t errlen)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int fd;
	bool ok = true;

	if (fstatat(rfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? true : fail(err, errlen, "stat", name);
	if (!S_ISDIR(st.st_mode))
		return unlinkat(rfd, name, 0) == 0 || fail(err, errlen, "unlink", name);
	fd = openat(rfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return fail(err, errlen, "open", name);
	d = fdopendir(fd);
	if (d == NULL) {
		(void)close(fd);
		return fail(err, errlen, "opendir", name);
	}
	while (ok && (errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == -1)
			ok = fail(err, errlen, "unlink a file in", name);
	}
	if (ok && errno != 0)
		ok = fail(err, errlen, "readdir", name);
	(void)closedir(d);
	if (ok && unlinkat(rfd, name, AT_REMOVEDIR) == -1)
		ok = fail(err, errlen, "rmdir", name);
	return ok;
}

static bool install_one(int rfd, const struct pgkeel_slot_copy *c, const struct perms *p, char *err,
                        size_t errlen)
{
	char tmp[80];
	int tfd = -1, ffd = -1;
	bool ok = false;

	if (!pgkeel_fmt(tmp, sizeof(tmp), "%s.tmp", c->name)) {
		(void)pgkeel_fmt(err, errlen, "slot name too long: %s", c->name);
		return false;
	}
	if (!remove_entry(rfd, tmp, err, errlen))
		return false;
	if (mkdirat(rfd, tmp, 0700) == -1)
		return fail(err, errlen, "mkdir", tmp);
	tfd = openat(rfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd == -1 || !give(tfd, p, p->dir_mode)) {
		(void)fail(err, errlen, "set up", tmp);
		goto out;
	}
	ffd = openat(tfd, "state", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ffd == -1 || !give(ffd, p, p->file_mode) || !write_all(ffd, c->state, c->state_len) ||
	    fsync(ffd) == -1) {
		(void)fail(err, errlen, "write the state file in", tmp);
		goto out;
	}
	if (close(ffd) == -1) {
		ffd = -1;
		(void)fail(err, errlen, "close the state file in", tmp);
		goto out;
	}
	ffd = -1;
	if (!fsync_dir(tfd)) {
		(void)fail(err, errlen, "fsync", tmp);
		goto out;
	}
	if (!remove_entry(rfd, c->name, err, errlen))
		goto out;
	if (renameat(rfd, tmp, rfd, c->name) == -1) {
		(void)fail(err, errlen, "rename to", c->name);
		goto out;
	}
	if (!fsync_dir(tfd)) {
		(void)fail(err, errlen, "fsync", c->name);
		goto out;
	}
	ok = true;
out:
	if (ffd != -1)
		(void)close(ffd);
	if (tfd != -1)
		(void)close(tfd);
	return ok;
}

bool pgkeel_slots_copy_install(const char *data_dir, const struct pgkeel_slot_copies *copies,
                               struct pgkeel_slots_logical *logical, char *err, size_t errlen)
{
	struct perms p;
	struct stat st;
	char why[128];
	int dfd, rfd;
	bool ok = true;

	for (size_t i = 0; i < copies->n; i++) {
		const struct pgkeel_slot_copy *c = &copies->v[i];

		if (!pgkeel_slot_name_valid(c->name)) {
			(void)pgkeel_fmt(err, errlen, "invalid replication slot name '%s'",
			                 c->name);
			return false;
		}
		if (!pgkeel_slot_state_check(c->name, c->state, c->state_len, why, sizeof(why))) {
			(void)pgkeel_fmt(err, errlen, "slot %s: %s", c->name, why);
			return false;
		}
	}
	if (copies->n == 0)
		return true;
	if (pgkeel_postmaster_check(data_dir, NULL) == PGKEEL_PM_RUNNING) {
		(void)pgkeel_fmt(err, errlen,
		                 "PostgreSQL is running in %s: slots are only installed into a "
		                 "stopped instance",
		                 data_dir);
		return false;
	}
	dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || fstat(dfd, &st) == -1) {
		(void)fail(err, errlen, "open", data_dir);
		if (dfd != -1)
			(void)close(dfd);
		return false;
	}
	p.uid = st.st_uid;
	p.gid = st.st_gid;
	/* pg_perm: group access when the data directory has it */
	if ((st.st_mode & 0750) == 0750) {
		p.dir_mode = 0750;
		p.file_mode = 0640;
	} else {
		p.dir_mode = 0700;
		p.file_mode = 0600;
	}
	rfd = openat(dfd, "pg_replslot", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	(void)close(dfd);
	if (rfd == -1)
		return fail(err, errlen, "open pg_replslot in", data_dir);
	for (size_t i = 0; i < copies->n && ok; i++) {
		ok = install_one(rfd, &copies->v[i], &p, err, errlen);
		if (ok && logical != NULL)
			pgkeel_slots_logical_add(logical, copies->v[i].name);
	}
	if (!fsync_dir(rfd) && ok)
		ok = fail(err, errlen, "fsync pg_replslot in", data_dir);
	(void)close(rfd);
	return ok;
}

/* -------------------------------------------------------------- readiness */

void pgkeel_slots_logical_init(struct pgkeel_slots_logical *l)
{
	memset(l, 0, sizeof(*l));
	l->recheck = true;
}

void pgkeel_slots_logical_clear(struct pgkeel_slots_logical *l)
{
	if (l == NULL)
		return;
	free(l->pending);
	memset(l, 0, sizeof(*l));
}

void pgkeel_slots_logical_recheck(struct pgkeel_slots_logical *l)
{
	l->recheck = true;
}

void pgkeel_slots_logical_forget(struct pgkeel_slots_logical *l)
{
	l->n_pending = 0;
	l->recheck = false;
}

static struct pgkeel_slot_pending *pending_find(const struct pgkeel_slots_logical *l,
                                                const char *name)
{
	for (size_t i = 0; i < l->n_pending; i++) {
		if (strcmp(l->pending[i].name, name) == 0)
			return &l->pending[i];
	}
	return NULL;
}

bool pgkeel_slots_logical_is_pending(const struct pgkeel_slots_logical *l, const char *name)
{
	return pending_find(l, name) != NULL;
}

void pgkeel_slots_logical_add(struct pgkeel_slots_logical *l, const char *name)
{
	struct pgkeel_slot_pending *p = pending_find(l, name);

	if (p == NULL) {
		l->pending =
		    pgkeel_xreallocarray(l->pending, l->n_pending + 1, sizeof(*l->pending));
		p = &l->pending[l->n_pending++];
		(void)pgkeel_fmt(p->name, sizeof(p->name), "%s", name);
	}
	p->known = false;
	p->primary_xmin = -1;
}

void pgkeel_slots_logical_on_promote(struct pgkeel_slots_logical *l)
{
	struct pgkeel_sbuf b = {0};
	char *text;

	if (l->n_pending > 0) {
		/* Python's repr of a set of names */
		pgkeel_sbuf_putc(&b, '{');
		for (size_t i = 0; i < l->n_pending; i++)
			pgkeel_sbuf_printf(&b, "%s'%s'", i > 0 ? ", " : "", l->pending[i].name);
		pgkeel_sbuf_putc(&b, '}');
		text = pgkeel_sbuf_finish(&b);
		log_warning(
		    "Logical replication slots that might be unsafe to use after promote: %s",
		    text);
		free(text);
	}
	pgkeel_slots_logical_forget(l);
}

void pgkeel_slots_logical_ready(struct pgkeel_slots_logical *l, const struct pgkeel_slot_row *rows,
                                size_t n_rows, bool have_physical, int64_t physical_xmin)
{
	size_t kept = 0;

	for (size_t i = 0; i < l->n_pending; i++) {
		const struct pgkeel_slot_pending *p = &l->pending[i];
		const struct pgkeel_slot_row *r = NULL;
		bool ready;

		for (size_t j = 0; j < n_rows && r == NULL; j++) {
			if (strcmp(rows[j].name, p->name) == 0)
				r = &rows[j];
		}
		/* a slot that is gone is no longer pending, silently */
		ready = r == NULL ||
		        (have_physical && physical_xmin >= 0 && p->known && p->primary_xmin >= 0 &&
		         r->catalog_xmin >= 0 && p->primary_xmin <= physical_xmin &&
		         physical_xmin <= r->catalog_xmin);
		if (!ready) {
			l->pending[kept++] = *p;
			continue;
		}
		if (r != NULL)
			log_info("Logical slot %s is safe to be used after a failover", p->name);
	}
	l->n_pending = kept;
}

#define READY_SQL                                                                                  \
	"SELECT slot_name, catalog_xmin::text FROM pg_catalog.pg_get_replication_slots()"          \
	" WHERE NOT pg_catalog.pg_is_in_recovery() AND slot_name::text = ANY($1::text[])"

#define HSF_SQL "SELECT pg_catalog.current_setting('hot_standby_feedback')::boolean"

/* Physical slot without catalog_xmin: not streaming, or no hot_standby_feedback. */
static void check_hot_standby_feedback(struct pgkeel_pg *pg, int64_t deadline_ms)
{
	struct pgkeel_pg_err err;
	PGresult *res = NULL;

	if (pgkeel_pg_exec(pg, HSF_SQL, 0, NULL, deadline_ms, &res, &err) != PGKEEL_PG_OK) {
		log_error("Failed to check the hot_standby_feedback setting: %s", err.msg);
		return;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		log_error("Logical slot failover requires \"hot_standby_feedback\". Please check "
		          "postgresql.auto.conf");
	PQclear(res);
}

/*
 * Ask the primary for the physical slot of this node (*physical_xmin: its
 * catalog_xmin, -1 when NULL) and the catalog_xmin of the pending slots not
 * known yet (stored in the pending list).  False when that failed (logged).
 */
static bool ask_primary(struct pgkeel_slots_logical *l, const struct pgkeel_slots_input *in,
                        const char *slot, int64_t deadline_ms, int64_t *physical_xmin)
{
	struct pgkeel_slots_leader_conn conn;
	struct pgkeel_pg_err err;
	struct pgkeel_pg *pg;
	PGresult *res = NULL;
	char **unknown = pgkeel_xcalloc(l->n_pending + 1, sizeof(*unknown));
	size_t n_unknown = 0;
	bool found = false, ok = false;
	char why[256];
	char *array;
	const char *params[1];

	if (!pgkeel_slots_leader_conn_init(&conn, in->cluster, in->config, in->server_version, why,
	                                   sizeof(why))) {
		log_error("Failed to check %s physical slot on the primary: %s", slot, why);
		pgkeel_slots_leader_conn_clear(&conn);
		free(unknown);
		return false;
	}
	for (size_t i = 0; i < l->n_pending; i++) {
		if (!l->pending[i].known)
			unknown[n_unknown++] = l->pending[i].name;
	}
	array = text_array(unknown, n_unknown, slot);
	params[0] = array;
	pg = pgkeel_pg_new(&conn.params);
	*physical_xmin = -1;
	if (pgkeel_pg_exec(pg, READY_SQL, 1, params, deadline_ms, &res, &err) != PGKEEL_PG_OK) {
		log_error("Failed to check %s physical slot on the primary: %s", slot, err.msg);
		goto out;
	}
	for (int i = 0; i < PQntuples(res) && PQnfields(res) == 2; i++) {
		if (strcmp(PQgetvalue(res, i, 0), slot) == 0) {
			found = true;
			*physical_xmin = pgkeel_slots_cell_int(res, i, 1);
		}
	}
	if (!found) {
		log_warning("Physical slot %s does not exist on the primary", slot);
		PQclear(res);
		goto out;
	}
	/* _update_pending_logical_slot_primary: only once the physical slot has one */
	for (int i = 0; *physical_xmin >= 0 && i < PQntuples(res); i++) {
		struct pgkeel_slot_pending *p = pending_find(l, PQgetvalue(res, i, 0));

		if (p != NULL && strcmp(p->name, slot) != 0) {
			p->known = true;
			p->primary_xmin = pgkeel_slots_cell_int(res, i, 1);
		}
	}
	PQclear(res);
	ok = true;
out:
	pgkeel_pg_free(pg);
	free(array);
	free(unknown);
	pgkeel_slots_leader_conn_clear(&conn);
	return ok;
}

bool pgkeel_slots_check_readiness(struct pgkeel_slots_logical *l, struct pgkeel_pg *pg,
                                  const struct pgkeel_slots_input *in,
                                  const struct pgkeel_slot_row *rows, size_t n_rows,
                                  int64_t deadline_ms)
{
	int64_t physical_xmin = -1;
	bool have_physical = false;

	if (l->recheck) {
		l->n_pending = 0;
		for (size_t i = 0; i < n_rows; i++) {
			if (rows[i].type == PGKEEL_SLOT_LOGICAL)
				pgkeel_slots_logical_add(l, rows[i].name);
		}
		l->recheck = false;
	}
	if (l->n_pending > 0 && pgkeel_cluster_leader_name(in->cluster) != NULL) {
		char slot[64];

		if (!pgkeel_slots_name_on_primary(in->cluster, in->name, in->tags, slot)) {
			log_warning("Physical slot %s does not exist on the primary", "None");
			return false;
		}
		if (!ask_primary(l, in, slot, deadline_ms, &physical_xmin))
			return false;
		if (physical_xmin < 0) {
			check_hot_standby_feedback(pg, deadline_ms);
			return false;
		}
		have_physical = true;
	}
	pgkeel_slots_logical_ready(l, rows, n_rows, have_physical, physical_xmin);
	return true;
}
