/*
 * dcs_mock - a working DCS backend for tests, named "mock".
 *
 * The "store" is a small table of keys, each with a value, a version (a
 * store-wide revision counter, rendered as a decimal string) and an optional
 * lease.  Keys are kept as `<namespace><scope>/<logical key>`, so several
 * clusters can share one store; the host only ever sees the logical keys.
 *
 * Where the store lives (the backend's options, as JSON text):
 *   {}                        a private in-memory store (a memfd) owned by
 *                             the handle: nothing else sees it.
 *   {"store": "/path/file"}   a file shared by every handle, in this process
 *                             or another (pgkeel and pgkeelctl, two members),
 *                             that names it; created at init if missing.
 *                             Each op opens the file, takes flock(LOCK_EX),
 *                             reads the table, applies the op and writes it
 *                             back.  Removing or renaming the file makes
 *                             every op answer UNAVAILABLE, which is how a
 *                             test simulates a DCS outage.  Like a real
 *                             backend, init does not need the store: when it
 *                             cannot create the file (its directory renamed
 *                             away: an outage that outlives a new init) it
 *                             logs a warning and the ops answer UNAVAILABLE.
 * Unknown option keys are reported through host->log and ignored.
 *
 * Semantics, modelled on the etcd3 backend:
 *   - A non-ctl handle owns at most one lease (granted ttl * 1000 ms, timed
 *     on CLOCK_MONOTONIC, the "server's" clock).  acquire/update/take_leader
 *     and touch_member create or refresh it.  When a lease expires, the keys
 *     bound to it (leader, members/<name>) disappear.  set_ttl drops the
 *     handle's lease; the next acquire/update creates a new one and rebinds
 *     the leader key if it is still ours.
 *   - attempt_to_acquire_leader creates `leader` iff absent (CONFLICT
 *     otherwise); update_leader succeeds iff `leader` still holds our name;
 *     delete_leader removes it iff ours (and iff leader_version matches when
 *     given); absent is OK.
 *   - set_config, set_failover, write_sync_state, delete_sync_state are CAS
 *     on expect_version (NULL: unconditional); a lost CAS is CONFLICT, a
 *     non-numeric version INVALID.
 *   - A ctl handle (PGKEEL_DCS_CTL) answers INVALID to the lease-bound ops.
 *   - A deadline already passed, or a store lock not obtained by the
 *     deadline, is UNAVAILABLE (detail TIMEOUT).
 *   - watch() arms a per-handle thread that polls the store every 10 ms and
 *     calls host->post_event once when `leader` or `config` differs from the
 *     armed state (LEADER / CONFIG), then disarms.  fini() joins it.
 *
 * No mutable globals: everything lives in the handle or in the store.
 * Exports only pgkeel_dcs_plugin_entry.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pgkeel/dcs.h>

#ifndef MOCK_NAME
#define MOCK_NAME "mock" /* tests/local.mk also builds it as "etcd3" */
#endif
#define MOCK_VERSION "1.0.0"
#define MOCK_MAGIC "pgkeel-mock-store 1"
#define MOCK_WATCH_POLL_MS 10
#define MOCK_VERSION_LEN 24
#define MOCK_OWNER_LEN 32

#if defined(__GNUC__)
#define MOCK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MOCK_PRINTF(fmt, args)
#endif

struct mock_entry {
	char *key; /* full store key */
	char *value; /* NUL-terminated for convenience; value_len is authoritative */
	size_t value_len;
	uint64_t version;
	uint64_t lease; /* 0: not bound */
};

struct mock_lease {
	uint64_t id;
	int64_t expires_ms; /* CLOCK_MONOTONIC */
};

/* The decoded table, read from the store at the start of each op. */
struct mock_store {
	uint64_t rev;
	uint64_t next_lease;
	struct mock_entry *entries;
	size_t nentries;
	size_t entries_cap;
	struct mock_lease *leases;
	size_t nleases;
	size_t leases_cap;
};

struct pgkeel_dcs {
	const struct pgkeel_host *host;
	bool ctl;
	char *prefix; /* "<namespace><scope>/" */
	char *name;   /* NULL on a ctl handle */
	char *store_path; /* NULL: the private memfd */
	int memfd;
	int ttl;
	int loop_wait;
	int retry_timeout;
	uint64_t lease; /* this handle's lease, 0: none */

	/* Versions seen by the last load_cluster ("" = absent): watch baselines. */
	char loaded_leader_version[MOCK_VERSION_LEN];
	char loaded_config_version[MOCK_VERSION_LEN];

	/* Serialises store access between the ops and the watch thread. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t watcher;
	bool watcher_started;
	bool stop;  /* guarded by mu */
	bool armed; /* guarded by mu */
	char armed_leader[MOCK_VERSION_LEN]; /* guarded by mu */
	char armed_config[MOCK_VERSION_LEN]; /* guarded by mu */
};

/* One op against the store: the lock, the decoded table, whether to write. */
struct mock_txn {
	struct pgkeel_dcs *dcs;
	int fd;
	bool close_fd;
	bool dirty;
	struct mock_store st;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

#define MOCK_INVALID(err, ...) \
	mock_fail((err), PGKEEL_DCS_INVALID, PGKEEL_DCS_D_NONE, __VA_ARGS__)
#define MOCK_NOMEM(err) mock_fail((err), PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE, "out of memory")

static enum pgkeel_dcs_status mock_fail(struct pgkeel_err *err, enum pgkeel_dcs_status status,
                                        int code, const char *fmt, ...) MOCK_PRINTF(4, 5);

static enum pgkeel_dcs_status mock_fail(struct pgkeel_err *err, enum pgkeel_dcs_status status,
                                        int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return status;
	err->code = code;
	n = snprintf(err->msg, sizeof(err->msg), "mock: ");
	if (n < 0 || (size_t)n >= sizeof(err->msg))
		return status;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return status;
}

static void mock_clear_err(struct pgkeel_err *err)
{
	if (err != NULL) {
		err->code = PGKEEL_DCS_D_NONE;
		err->msg[0] = '\0';
	}
}

/* The store's own clock (a real DCS times leases on the server). */
static int64_t mock_server_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *mock_strndup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static char *mock_concat(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	char *d = malloc(la + lb + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, a, la);
	memcpy(d + la, b, lb + 1);
	return d;
}

static bool mock_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

static bool mock_parse_i64(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

static void mock_format_version(char *buf, size_t len, uint64_t version)
{
	(void)snprintf(buf, len, "%" PRIu64, version);
}

/* ------------------------------------------------------------------ */
/* Options: a minimal JSON object scanner (the mock needs one key)     */

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at '"'; copies the decoded text into out (if non-NULL); NULL on error. */
static const char *json_string(const char *p, char *out, size_t outlen)
{
	size_t n = 0;
	char c;

	if (*p != '"')
		return NULL;
	for (p++; *p != '"'; p++) {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			return NULL;
		c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			default: return NULL; /* \u is beyond what the mock needs */
			}
		}
		if (out != NULL) {
			if (n + 1 >= outlen)
				return NULL;
			out[n++] = c;
		}
	}
	if (out != NULL)
		out[n] = '\0';
	return p + 1;
}

/* Skip any JSON value; NULL if malformed. */
static const char *json_skip(const char *p)
{
	int depth = 0;

	p = json_ws(p);
	do {
		if (*p == '"') {
			p = json_string(p, NULL, 0);
			if (p == NULL)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return NULL;
			depth--;
			p++;
		} else if (*p == ',' || *p == ':') {
			if (depth == 0)
				return NULL;
			p++;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
			while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			       *p == '-' || *p == '+' || *p == '.' || *p == 'E')
				p++;
		} else {
			return NULL;
		}
		p = json_ws(p);
	} while (depth > 0);
	return p;
}

static enum pgkeel_dcs_status mock_parse_options(struct pgkeel_dcs *dcs, const char *json,
                                                 struct pgkeel_err *err)
{
	char key[128];
	char path[4096];
	const char *p = json_ws(json);

	if (*p != '{')
		return MOCK_INVALID(err, "options must be a JSON object");
	p = json_ws(p + 1);
	while (*p != '}') {
		p = json_string(p, key, sizeof(key));
		if (p == NULL)
			goto bad;
		p = json_ws(p);
		if (*p != ':')
			goto bad;
		p = json_ws(p + 1);
		if (strcmp(key, "store") == 0) {
			p = json_string(p, path, sizeof(path));
			if (p == NULL || path[0] == '\0')
				return MOCK_INVALID(err, "option 'store' must be a non-empty path");
			free(dcs->store_path);
			dcs->store_path = mock_strndup(path, strlen(path));
			if (dcs->store_path == NULL)
				return MOCK_NOMEM(err);
		} else {
			dcs->host->log(dcs->host->ctx, PGKEEL_LOG_WARNING,
			               "mock: ignoring unknown option '%s'", key);
			p = json_skip(p);
			if (p == NULL)
				goto bad;
		}
		p = json_ws(p);
		if (*p == ',')
			p = json_ws(p + 1);
		else if (*p != '}')
			goto bad;
	}
	if (*json_ws(p + 1) != '\0')
		goto bad;
	return PGKEEL_DCS_OK;
bad:
	return MOCK_INVALID(err, "malformed options JSON");
}

/* ------------------------------------------------------------------ */
/* The table in memory                                                  */

static void mock_store_free(struct mock_store *st)
{
	size_t i;

	for (i = 0; i < st->nentries; i++) {
		free(st->entries[i].key);
		free(st->entries[i].value);
	}
	free(st->entries);
	free(st->leases);
	memset(st, 0, sizeof(*st));
}

static ssize_t mock_find(const struct mock_store *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->nentries; i++) {
		if (strcmp(st->entries[i].key, key) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static void mock_delete_at(struct mock_store *st, size_t i)
{
	free(st->entries[i].key);
	free(st->entries[i].value);
	st->entries[i] = st->entries[st->nentries - 1];
	st->nentries--;
}

/* Insert or replace; takes ownership of key. */
static bool mock_put_owned(struct mock_store *st, char *key, const char *value, size_t len,
                           uint64_t version, uint64_t lease)
{
	struct mock_entry *e;
	char *v;
	ssize_t i;

	v = mock_strndup(value, len);
	if (v == NULL) {
		free(key);
		return false;
	}
	i = mock_find(st, key);
	if (i >= 0) {
		e = &st->entries[i];
		free(key);
		free(e->value);
	} else {
		if (st->nentries == st->entries_cap) {
			size_t cap = st->entries_cap ? st->entries_cap * 2 : 16;
			struct mock_entry *ne = realloc(st->entries, cap * sizeof(*ne));

			if (ne == NULL) {
				free(key);
				free(v);
				return false;
			}
			st->entries = ne;
			st->entries_cap = cap;
		}
		e = &st->entries[st->nentries++];
		e->key = key;
	}
	e->value = v;
	e->value_len = len;
	e->version = version;
	e->lease = lease;
	return true;
}

static ssize_t mock_lease_find(const struct mock_store *st, uint64_t id)
{
	size_t i;

	for (i = 0; i < st->nleases; i++) {
		if (st->leases[i].id == id)
			return (ssize_t)i;
	}
	return -1;
}

static bool mock_lease_add(struct mock_store *st, uint64_t id, int64_t expires_ms)
{
	if (st->nleases == st->leases_cap) {
		size_t cap = st->leases_cap ? st->leases_cap * 2 : 8;
		struct mock_lease *nl = realloc(st->leases, cap * sizeof(*nl));

		if (nl == NULL)
			return false;
		st->leases = nl;
		st->leases_cap = cap;
	}
	st->leases[st->nleases].id = id;
	st->leases[st->nleases].expires_ms = expires_ms;
	st->nleases++;
	return true;
}

/* Drop expired leases and every key bound to them; true if anything went. */
static bool mock_purge_expired(struct mock_store *st, int64_t now_ms)
{
	bool changed = false;
	size_t i = 0;
	size_t j;

	while (i < st->nleases) {
		if (st->leases[i].expires_ms > now_ms) {
			i++;
			continue;
		}
		j = 0;
		while (j < st->nentries) {
			if (st->entries[j].lease == st->leases[i].id)
				mock_delete_at(st, j);
			else
				j++;
		}
		st->leases[i] = st->leases[st->nleases - 1];
		st->nleases--;
		changed = true;
	}
	return changed;
}

/* ------------------------------------------------------------------ */
/* The table on disk                                                    */

static int mock_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode hex text ("-" = empty) into a new NUL-terminated buffer. */
static char *mock_unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	size_t i;
	char *out;
	int hi;
	int lo;

	if (strcmp(hex, "-") == 0)
		n = 0;
	if (n % 2 != 0)
		return NULL;
	out = malloc(n / 2 + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n / 2; i++) {
		hi = mock_hexval(hex[2 * i]);
		lo = mock_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi << 4 | lo);
	}
	out[n / 2] = '\0';
	*len = n / 2;
	return out;
}

static void mock_put_hex(FILE *f, const char *s, size_t len)
{
	size_t i;

	if (len == 0) {
		fputc('-', f);
		return;
	}
	for (i = 0; i < len; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
}

/* Split off the next space-separated field. */
static char *mock_field(char **cursor)
{
	char *start = *cursor;
	char *sp;

	if (start == NULL)
		return NULL;
	sp = strchr(start, ' ');
	if (sp != NULL) {
		*sp = '\0';
		*cursor = sp + 1;
	} else {
		*cursor = NULL;
	}
	return start;
}

static bool mock_parse_line(struct mock_store *st, char *line)
{
	char *cur = line;
	char *tag = mock_field(&cur);
	char *f[4];
	uint64_t a;
	uint64_t b;
	int64_t exp;
	size_t klen;
	size_t vlen;
	char *key;
	char *val;
	bool ok;
	int i;

	if (strcmp(tag, "rev") == 0 || strcmp(tag, "nextlease") == 0) {
		f[0] = mock_field(&cur);
		if (cur != NULL || !mock_parse_u64(f[0], &a))
			return false;
		if (tag[0] == 'r')
			st->rev = a;
		else
			st->next_lease = a;
		return true;
	}
	if (strcmp(tag, "lease") == 0) {
		f[0] = mock_field(&cur);
		f[1] = mock_field(&cur);
		if (cur != NULL || !mock_parse_u64(f[0], &a) || !mock_parse_i64(f[1], &exp))
			return false;
		return mock_lease_add(st, a, exp);
	}
	if (strcmp(tag, "key") != 0)
		return false;
	for (i = 0; i < 4; i++)
		f[i] = mock_field(&cur);
	if (cur != NULL || f[3] == NULL || !mock_parse_u64(f[1], &a) ||
	    !mock_parse_u64(f[2], &b))
		return false;
	key = mock_unhex(f[0], &klen);
	if (key == NULL)
		return false;
	val = mock_unhex(f[3], &vlen);
	if (val == NULL || klen == 0 || strlen(key) != klen) {
		free(key);
		free(val);
		return false;
	}
	ok = mock_put_owned(st, key, val, vlen, a, b);
	free(val);
	return ok;
}

static enum pgkeel_dcs_status mock_read_store(int fd, struct mock_store *st,
                                              struct pgkeel_err *err)
{
	struct stat sb;
	char *buf;
	char *line;
	char *nl;
	ssize_t n;
	size_t got = 0;

	memset(st, 0, sizeof(*st));
	st->next_lease = 1;
	if (fstat(fd, &sb) == -1)
		return mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER,
		                 "cannot stat the store: %s", strerror(errno));
	if (sb.st_size == 0)
		return PGKEEL_DCS_OK;
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL)
		return MOCK_NOMEM(err);
	while (got < (size_t)sb.st_size) {
		n = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	line = buf;
	nl = strchr(line, '\n');
	if (nl == NULL || (size_t)(nl - line) != strlen(MOCK_MAGIC) ||
	    strncmp(line, MOCK_MAGIC, strlen(MOCK_MAGIC)) != 0)
		goto corrupt;
	for (line = nl + 1; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			goto corrupt;
		*nl = '\0';
		if (!mock_parse_line(st, line))
			goto corrupt;
	}
	free(buf);
	return PGKEEL_DCS_OK;
corrupt:
	free(buf);
	mock_store_free(st);
	return mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER, "the store is corrupt");
}

static enum pgkeel_dcs_status mock_write_store(int fd, const struct mock_store *st,
                                               struct pgkeel_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	size_t off = 0;
	ssize_t n;
	FILE *f;
	size_t i;

	f = open_memstream(&buf, &len);
	if (f == NULL)
		return MOCK_NOMEM(err);
	fprintf(f, "%s\nrev %" PRIu64 "\nnextlease %" PRIu64 "\n", MOCK_MAGIC, st->rev,
	        st->next_lease);
	for (i = 0; i < st->nleases; i++)
		fprintf(f, "lease %" PRIu64 " %" PRId64 "\n", st->leases[i].id,
		        st->leases[i].expires_ms);
	for (i = 0; i < st->nentries; i++) {
		const struct mock_entry *e = &st->entries[i];

		fputs("key ", f);
		mock_put_hex(f, e->key, strlen(e->key));
		fprintf(f, " %" PRIu64 " %" PRIu64 " ", e->version, e->lease);
		mock_put_hex(f, e->value, e->value_len);
		fputc('\n', f);
	}
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return MOCK_NOMEM(err);
	}
	while (off < len) {
		n = pwrite(fd, buf + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(buf);
	if (off < len || ftruncate(fd, (off_t)len) == -1)
		return mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER,
		                 "cannot write the store");
	return PGKEEL_DCS_OK;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

static void mock_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Open and lock the store.  With dcs->mu held.  `deadline_ms` is on the
 * host's clock when `host_clock`, else on CLOCK_MONOTONIC (watch thread,
 * which may not call the host's clock).
 */
static enum pgkeel_dcs_status mock_lock_store(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                              bool host_clock, struct mock_txn *t,
                                              struct pgkeel_err *err)
{
	int64_t now;

	t->dcs = dcs;
	t->dirty = false;
	if (dcs->store_path == NULL) {
		t->fd = dcs->memfd;
		t->close_fd = false;
		return PGKEEL_DCS_OK; /* private: dcs->mu is the whole lock */
	}
	t->fd = open(dcs->store_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (t->fd == -1)
		return mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_CONNECT,
		                 "cannot reach the store %s: %s", dcs->store_path, strerror(errno));
	t->close_fd = true;
	for (;;) {
		if (flock(t->fd, LOCK_EX | LOCK_NB) == 0)
			return PGKEEL_DCS_OK;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			(void)mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER,
			                "cannot lock the store %s: %s", dcs->store_path,
			                strerror(errno));
			break;
		}
		now = host_clock ? dcs->host->now_monotonic_ms(dcs->host->ctx) :
		                   mock_server_now_ms();
		if (now >= deadline_ms) {
			(void)mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_TIMEOUT,
			                "timed out waiting for the store lock");
			break;
		}
		mock_sleep_ms(1);
	}
	close(t->fd);
	t->fd = -1;
	return PGKEEL_DCS_UNAVAILABLE;
}

static void mock_unlock_store(struct mock_txn *t)
{
	if (t->close_fd && t->fd != -1)
		close(t->fd); /* releases the flock */
	t->fd = -1;
}

/* Start an op: deadline check, mutex, store lock, read, purge expired leases. */
static enum pgkeel_dcs_status mock_begin(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                         struct mock_txn *t, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	mock_clear_err(err);
	if (dcs->host->now_monotonic_ms(dcs->host->ctx) >= deadline_ms)
		return mock_fail(err, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_TIMEOUT,
		                 "deadline passed before the request was sent");
	(void)pthread_mutex_lock(&dcs->mu);
	s = mock_lock_store(dcs, deadline_ms, true, t, err);
	if (s != PGKEEL_DCS_OK) {
		(void)pthread_mutex_unlock(&dcs->mu);
		return s;
	}
	s = mock_read_store(t->fd, &t->st, err);
	if (s != PGKEEL_DCS_OK) {
		mock_unlock_store(t);
		(void)pthread_mutex_unlock(&dcs->mu);
		return s;
	}
	if (mock_purge_expired(&t->st, mock_server_now_ms()))
		t->dirty = true;
	return PGKEEL_DCS_OK;
}

/* Finish an op: write back if changed, unlock; returns `status` unless the write failed. */
static enum pgkeel_dcs_status mock_end(struct mock_txn *t, enum pgkeel_dcs_status status,
                                       struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = PGKEEL_DCS_OK;

	if (t->dirty)
		s = mock_write_store(t->fd, &t->st, err);
	mock_unlock_store(t);
	mock_store_free(&t->st);
	(void)pthread_mutex_unlock(&t->dcs->mu);
	return s != PGKEEL_DCS_OK ? s : status;
}

/* Write `logical` = value with a new version. */
static enum pgkeel_dcs_status mock_set(struct mock_txn *t, const char *logical,
                                       const char *value, size_t len, uint64_t lease,
                                       struct pgkeel_err *err)
{
	char *key = mock_concat(t->dcs->prefix, logical);

	if (key == NULL || !mock_put_owned(&t->st, key, value, len, t->st.rev + 1, lease))
		return MOCK_NOMEM(err);
	t->st.rev++;
	t->dirty = true;
	return PGKEEL_DCS_OK;
}

/* Index of `logical` in the table, -1 if absent. */
static ssize_t mock_get(const struct mock_txn *t, const char *logical)
{
	size_t plen = strlen(t->dcs->prefix);
	size_t i;

	for (i = 0; i < t->st.nentries; i++) {
		const char *key = t->st.entries[i].key;

		if (strncmp(key, t->dcs->prefix, plen) == 0 && strcmp(key + plen, logical) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static void mock_remove(struct mock_txn *t, ssize_t i)
{
	mock_delete_at(&t->st, (size_t)i);
	t->st.rev++;
	t->dirty = true;
}

/* Create or refresh this handle's lease and report it. */
static enum pgkeel_dcs_status mock_keepalive(struct mock_txn *t, struct pgkeel_dcs_lease *lease,
                                             struct pgkeel_err *err)
{
	struct pgkeel_dcs *dcs = t->dcs;
	int64_t expires = mock_server_now_ms() + (int64_t)dcs->ttl * 1000;
	ssize_t i = dcs->lease != 0 ? mock_lease_find(&t->st, dcs->lease) : -1;

	if (i >= 0) {
		t->st.leases[i].expires_ms = expires;
	} else {
		if (!mock_lease_add(&t->st, t->st.next_lease, expires))
			return MOCK_NOMEM(err);
		dcs->lease = t->st.next_lease++;
	}
	t->dirty = true;
	if (lease != NULL) {
		if (lease->struct_size >= offsetof(struct pgkeel_dcs_lease, granted_ttl_ms) +
		                          sizeof(lease->granted_ttl_ms))
			lease->granted_ttl_ms = (int64_t)dcs->ttl * 1000;
		if (lease->struct_size >= offsetof(struct pgkeel_dcs_lease, owner) +
		                          sizeof(lease->owner))
			(void)snprintf(lease->owner, sizeof(lease->owner), "lease-%" PRIu64,
			               dcs->lease);
	}
	return PGKEEL_DCS_OK;
}

static bool mock_is_mine(const struct pgkeel_dcs *dcs, const struct mock_entry *e)
{
	return strlen(dcs->name) == e->value_len && memcmp(e->value, dcs->name, e->value_len) == 0;
}

static enum pgkeel_dcs_status mock_ctl_refuses(const struct pgkeel_dcs *dcs, const char *op,
                                               struct pgkeel_err *err)
{
	if (dcs == NULL)
		return MOCK_INVALID(err, "%s: no handle", op);
	if (dcs->ctl)
		return MOCK_INVALID(err, "%s is not allowed on a ctl handle", op);
	return PGKEEL_DCS_OK;
}

/* ------------------------------------------------------------------ */
/* Watch thread                                                         */

/* Current version strings of leader and config; with dcs->mu held. */
static bool mock_watch_read(struct pgkeel_dcs *dcs, char *leader, char *config)
{
	struct mock_txn t;
	enum pgkeel_dcs_status s;
	int64_t now = mock_server_now_ms();
	ssize_t i;

	memset(&t, 0, sizeof(t));
	s = mock_lock_store(dcs, now + 100, false, &t, NULL);
	if (s != PGKEEL_DCS_OK)
		return false;
	s = mock_read_store(t.fd, &t.st, NULL);
	mock_unlock_store(&t);
	if (s != PGKEEL_DCS_OK)
		return false;
	/* Read-only: expired keys are treated as gone, the next op purges them. */
	(void)mock_purge_expired(&t.st, now);
	leader[0] = '\0';
	config[0] = '\0';
	i = mock_get(&t, "leader");
	if (i >= 0)
		mock_format_version(leader, MOCK_VERSION_LEN, t.st.entries[i].version);
	i = mock_get(&t, "config");
	if (i >= 0)
		mock_format_version(config, MOCK_VERSION_LEN, t.st.entries[i].version);
	mock_store_free(&t.st);
	return true;
}

static void *mock_watch_main(void *arg)
{
	struct pgkeel_dcs *dcs = arg;
	char leader[MOCK_VERSION_LEN];
	char config[MOCK_VERSION_LEN];
	struct timespec ts;
	uint32_t events;

	(void)pthread_mutex_lock(&dcs->mu);
	while (!dcs->stop) {
		if (!dcs->armed) {
			(void)pthread_cond_wait(&dcs->cond, &dcs->mu);
			continue;
		}
		events = 0;
		if (mock_watch_read(dcs, leader, config)) {
			if (strcmp(leader, dcs->armed_leader) != 0)
				events |= PGKEEL_EVENT_LEADER;
			if (strcmp(config, dcs->armed_config) != 0)
				events |= PGKEEL_EVENT_CONFIG;
		}
		if (events != 0) {
			dcs->armed = false;
			(void)pthread_mutex_unlock(&dcs->mu);
			dcs->host->post_event(dcs->host->ctx, events);
			(void)pthread_mutex_lock(&dcs->mu);
			continue;
		}
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += MOCK_WATCH_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&dcs->cond, &dcs->mu, &ts);
	}
	(void)pthread_mutex_unlock(&dcs->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */

static void mock_fini(struct pgkeel_dcs *dcs)
{
	if (dcs == NULL)
		return;
	if (dcs->watcher_started) {
		(void)pthread_mutex_lock(&dcs->mu);
		dcs->stop = true;
		(void)pthread_cond_signal(&dcs->cond);
		(void)pthread_mutex_unlock(&dcs->mu);
		(void)pthread_join(dcs->watcher, NULL);
	}
	(void)pthread_cond_destroy(&dcs->cond);
	(void)pthread_mutex_destroy(&dcs->mu);
	if (dcs->memfd != -1)
		close(dcs->memfd);
	free(dcs->prefix);
	free(dcs->name);
	free(dcs->store_path);
	free(dcs);
}

static enum pgkeel_dcs_status mock_open_store(struct pgkeel_dcs *dcs, struct pgkeel_err *err)
{
	int fd;

	if (dcs->store_path == NULL) {
		dcs->memfd = memfd_create("pgkeel-dcs-mock", MFD_CLOEXEC);
		if (dcs->memfd == -1)
			return mock_fail(err, PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE,
			                 "cannot create the in-memory store: %s", strerror(errno));
		return PGKEEL_DCS_OK;
	}
	fd = open(dcs->store_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		/* The store is down: that is the ops' business, not init's. */
		dcs->host->log(dcs->host->ctx, PGKEEL_LOG_WARNING,
		               "mock: cannot open the store %s: %s", dcs->store_path,
		               strerror(errno));
		return PGKEEL_DCS_OK;
	}
	close(fd);
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status mock_init(const struct pgkeel_host *host,
                                        const struct pgkeel_dcs_params *params,
                                        struct pgkeel_dcs **out, struct pgkeel_err *err)
{
	pthread_condattr_t ca;
	struct pgkeel_dcs *dcs;
	enum pgkeel_dcs_status s;
	const char *ns;
	size_t nslen;

	mock_clear_err(err);
	if (out == NULL)
		return MOCK_INVALID(err, "init: out is NULL");
	*out = NULL;
	if (host == NULL || PGKEEL_ABI_MAJOR_OF(host->abi_version) != PGKEEL_HOST_ABI_MAJOR ||
	    host->struct_size < offsetof(struct pgkeel_host, post_event) + sizeof(host->post_event))
		return MOCK_INVALID(err, "init: unusable host services");
	if (params == NULL ||
	    params->struct_size < offsetof(struct pgkeel_dcs_params, options_json) +
	                          sizeof(params->options_json))
		return MOCK_INVALID(err, "init: bad params");
	if (params->scope == NULL || params->scope[0] == '\0')
		return MOCK_INVALID(err, "init: no scope");
	if ((params->flags & PGKEEL_DCS_CTL) == 0 &&
	    (params->name == NULL || params->name[0] == '\0'))
		return MOCK_INVALID(err, "init: no member name");
	if (params->ttl <= 0)
		return MOCK_INVALID(err, "init: ttl must be > 0");
	if (params->options_json == NULL)
		return MOCK_INVALID(err, "init: options_json is NULL");

	dcs = calloc(1, sizeof(*dcs));
	if (dcs == NULL)
		return MOCK_NOMEM(err);
	dcs->host = host;
	dcs->memfd = -1;
	dcs->ctl = (params->flags & PGKEEL_DCS_CTL) != 0;
	dcs->ttl = params->ttl;
	dcs->loop_wait = params->loop_wait;
	dcs->retry_timeout = params->retry_timeout;
	(void)pthread_mutex_init(&dcs->mu, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&dcs->cond, &ca);
	(void)pthread_condattr_destroy(&ca);

	ns = params->namespace_ != NULL && params->namespace_[0] != '\0' ? params->namespace_ :
	                                                                     "/service/";
	nslen = strlen(ns);
	dcs->prefix = malloc(nslen + strlen(params->scope) + 3);
	if (!dcs->ctl)
		dcs->name = mock_strndup(params->name, strlen(params->name));
	if (dcs->prefix == NULL || (!dcs->ctl && dcs->name == NULL)) {
		mock_fini(dcs);
		return MOCK_NOMEM(err);
	}
	(void)snprintf(dcs->prefix, nslen + strlen(params->scope) + 3, "%s%s%s/", ns,
	               ns[nslen - 1] == '/' ? "" : "/", params->scope);

	s = mock_parse_options(dcs, params->options_json, err);
	if (s == PGKEEL_DCS_OK)
		s = mock_open_store(dcs, err);
	if (s != PGKEEL_DCS_OK) {
		mock_fini(dcs);
		return s;
	}
	host->log(host->ctx, PGKEEL_LOG_DEBUG, "mock: %s handle for %s on %s",
	          dcs->ctl ? "ctl" : "member", dcs->prefix,
	          dcs->store_path != NULL ? dcs->store_path : "a private store");
	*out = dcs;
	return PGKEEL_DCS_OK;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */

static enum pgkeel_dcs_status mock_load_cluster(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                                pgkeel_dcs_entry_cb cb, void *arg,
                                                struct pgkeel_err *err)
{
	char version[MOCK_VERSION_LEN];
	char owner[MOCK_OWNER_LEN];
	struct pgkeel_dcs_entry entry;
	struct mock_store snap;
	struct mock_txn t;
	enum pgkeel_dcs_status s;
	size_t plen;
	size_t i;
	ssize_t k;

	if (dcs == NULL || cb == NULL)
		return MOCK_INVALID(err, "load_cluster: bad call");
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	k = mock_get(&t, "leader");
	dcs->loaded_leader_version[0] = '\0';
	if (k >= 0)
		mock_format_version(dcs->loaded_leader_version, MOCK_VERSION_LEN,
		                    t.st.entries[k].version);
	k = mock_get(&t, "config");
	dcs->loaded_config_version[0] = '\0';
	if (k >= 0)
		mock_format_version(dcs->loaded_config_version, MOCK_VERSION_LEN,
		                    t.st.entries[k].version);
	/* Write back (expiries), keep the table, release the store: the callback runs unlocked. */
	if (t.dirty)
		s = mock_write_store(t.fd, &t.st, err);
	t.dirty = false;
	snap = t.st;
	memset(&t.st, 0, sizeof(t.st));
	s = mock_end(&t, s, err);
	if (s != PGKEEL_DCS_OK) {
		mock_store_free(&snap);
		return s;
	}

	plen = strlen(dcs->prefix);
	for (i = 0; i < snap.nentries; i++) {
		const struct mock_entry *e = &snap.entries[i];

		if (strncmp(e->key, dcs->prefix, plen) != 0)
			continue;
		mock_format_version(version, sizeof(version), e->version);
		if (e->lease != 0)
			(void)snprintf(owner, sizeof(owner), "lease-%" PRIu64, e->lease);
		entry.key = e->key + plen;
		entry.value = e->value;
		entry.value_len = e->value_len;
		entry.version = version;
		entry.modify_version = NULL;
		entry.owner = e->lease != 0 ? owner : NULL;
		if (cb(arg, &entry) != 0) {
			s = mock_fail(err, PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE,
			              "load_cluster: the callback stopped at %s", entry.key);
			break;
		}
	}
	mock_store_free(&snap);
	return s;
}

/* ------------------------------------------------------------------ */
/* Leader lock                                                          */

static enum pgkeel_dcs_status mock_attempt_to_acquire_leader(struct pgkeel_dcs *dcs,
                                                             int64_t deadline_ms,
                                                             struct pgkeel_dcs_lease *lease,
                                                             struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "attempt_to_acquire_leader", err);
	struct mock_txn t;
	ssize_t i;

	if (s != PGKEEL_DCS_OK)
		return s;
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	s = mock_keepalive(&t, lease, err);
	if (s == PGKEEL_DCS_OK) {
		i = mock_get(&t, "leader");
		if (i >= 0)
			s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_EXISTS,
			              "the leader key is held by %s", t.st.entries[i].value);
		else
			s = mock_set(&t, "leader", dcs->name, strlen(dcs->name), dcs->lease, err);
	}
	return mock_end(&t, s, err);
}

static enum pgkeel_dcs_status mock_update_leader(struct pgkeel_dcs *dcs,
                                                 const struct pgkeel_dcs_leader_update *u,
                                                 int64_t deadline_ms,
                                                 struct pgkeel_dcs_lease *lease,
                                                 struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "update_leader", err);
	const char *status_json = NULL;
	const char *failsafe_json = NULL;
	int64_t last_lsn = -1;
	char optime[64];
	struct mock_txn t;
	ssize_t i;

	if (s != PGKEEL_DCS_OK)
		return s;
	if (u != NULL) {
		if (u->struct_size >= offsetof(struct pgkeel_dcs_leader_update, last_lsn) +
		                      sizeof(u->last_lsn))
			last_lsn = u->last_lsn;
		if (u->struct_size >= offsetof(struct pgkeel_dcs_leader_update, status_json) +
		                      sizeof(u->status_json))
			status_json = u->status_json;
		if (u->struct_size >= offsetof(struct pgkeel_dcs_leader_update, failsafe_json) +
		                      sizeof(u->failsafe_json))
			failsafe_json = u->failsafe_json;
	}
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	i = mock_get(&t, "leader");
	if (i < 0) {
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_NOT_FOUND,
		              "update_leader: there is no leader key");
		return mock_end(&t, s, err);
	}
	if (!mock_is_mine(dcs, &t.st.entries[i])) {
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_EXISTS,
		              "update_leader: the leader key is held by %s", t.st.entries[i].value);
		return mock_end(&t, s, err);
	}
	s = mock_keepalive(&t, lease, err);
	/* A new lease (after set_ttl or expiry): rebind the key that is still ours. */
	if (s == PGKEEL_DCS_OK && t.st.entries[i].lease != dcs->lease)
		s = mock_set(&t, "leader", dcs->name, strlen(dcs->name), dcs->lease, err);
	if (s == PGKEEL_DCS_OK && status_json != NULL) {
		s = mock_set(&t, "status", status_json, strlen(status_json), 0, err);
	} else if (s == PGKEEL_DCS_OK && last_lsn >= 0) {
		(void)snprintf(optime, sizeof(optime), "{\"optime\":%" PRId64 "}", last_lsn);
		s = mock_set(&t, "status", optime, strlen(optime), 0, err);
	}
	if (s == PGKEEL_DCS_OK && failsafe_json != NULL)
		s = mock_set(&t, "failsafe", failsafe_json, strlen(failsafe_json), 0, err);
	return mock_end(&t, s, err);
}

static enum pgkeel_dcs_status mock_take_leader(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                               struct pgkeel_dcs_lease *lease,
                                               struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "take_leader", err);
	struct mock_txn t;

	if (s != PGKEEL_DCS_OK)
		return s;
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	s = mock_keepalive(&t, lease, err);
	if (s == PGKEEL_DCS_OK)
		s = mock_set(&t, "leader", dcs->name, strlen(dcs->name), dcs->lease, err);
	return mock_end(&t, s, err);
}

static enum pgkeel_dcs_status mock_delete_leader(struct pgkeel_dcs *dcs,
                                                 const char *leader_version,
                                                 int64_t deadline_ms, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "delete_leader", err);
	struct mock_txn t;
	uint64_t want;
	ssize_t i;

	if (s != PGKEEL_DCS_OK)
		return s;
	if (leader_version != NULL && !mock_parse_u64(leader_version, &want))
		return MOCK_INVALID(err, "delete_leader: malformed version '%s'", leader_version);
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	i = mock_get(&t, "leader");
	if (i < 0)
		return mock_end(&t, PGKEEL_DCS_OK, err); /* nothing to release */
	if (!mock_is_mine(dcs, &t.st.entries[i]))
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_EXISTS,
		              "delete_leader: the leader key is held by %s", t.st.entries[i].value);
	else if (leader_version != NULL && t.st.entries[i].version != want)
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_VERSION,
		              "delete_leader: version %" PRIu64 " is not %s",
		              t.st.entries[i].version, leader_version);
	else
		mock_remove(&t, i);
	return mock_end(&t, s, err);
}

/* ------------------------------------------------------------------ */
/* Member and cluster keys                                              */

static enum pgkeel_dcs_status mock_touch_member(struct pgkeel_dcs *dcs, const char *json,
                                                int64_t deadline_ms, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "touch_member", err);
	struct mock_txn t;
	char *key;

	if (s != PGKEEL_DCS_OK)
		return s;
	if (json == NULL)
		return MOCK_INVALID(err, "touch_member: no data");
	key = mock_concat("members/", dcs->name);
	if (key == NULL)
		return MOCK_NOMEM(err);
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s == PGKEEL_DCS_OK) {
		s = mock_keepalive(&t, NULL, err);
		if (s == PGKEEL_DCS_OK)
			s = mock_set(&t, key, json, strlen(json), dcs->lease, err);
		s = mock_end(&t, s, err);
	}
	free(key);
	return s;
}

static enum pgkeel_dcs_status mock_initialize(struct pgkeel_dcs *dcs, bool create_new,
                                              const char *sysid, int64_t deadline_ms,
                                              struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct mock_txn t;

	if (dcs == NULL || sysid == NULL)
		return MOCK_INVALID(err, "initialize: bad call");
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	if (create_new && mock_get(&t, "initialize") >= 0)
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_EXISTS,
		              "initialize: the cluster is already being initialized");
	else
		s = mock_set(&t, "initialize", sysid, strlen(sysid), 0, err);
	return mock_end(&t, s, err);
}

/*
 * Write `logical` = json, or delete it (`del`), CAS on expect_version when
 * given (an absent key then loses; NULL: unconditional).  A write reports
 * its new version into new_version when that is non-NULL.
 */
static enum pgkeel_dcs_status mock_cas(struct pgkeel_dcs *dcs, const char *op,
                                       const char *logical, bool del, const char *json,
                                       const char *expect_version, char *new_version,
                                       size_t new_version_len, int64_t deadline_ms,
                                       struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct mock_txn t;
	uint64_t want = 0;
	ssize_t i;

	if (dcs == NULL || (!del && json == NULL))
		return MOCK_INVALID(err, "%s: bad call", op);
	if (expect_version != NULL && !mock_parse_u64(expect_version, &want))
		return MOCK_INVALID(err, "%s: malformed version '%s'", op, expect_version);
	if (new_version != NULL && new_version_len < MOCK_VERSION_LEN)
		return MOCK_INVALID(err, "%s: new_version buffer too small", op);
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	i = mock_get(&t, logical);
	if (expect_version != NULL && i < 0)
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_NOT_FOUND, "%s: %s is absent",
		              op, logical);
	else if (expect_version != NULL && t.st.entries[i].version != want)
		s = mock_fail(err, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_VERSION,
		              "%s: %s is at version %" PRIu64 ", not %s", op, logical,
		              t.st.entries[i].version, expect_version);
	else if (!del)
		s = mock_set(&t, logical, json, strlen(json), 0, err);
	else if (i >= 0)
		mock_remove(&t, i);
	if (s == PGKEEL_DCS_OK && !del && new_version != NULL)
		mock_format_version(new_version, new_version_len, t.st.rev);
	return mock_end(&t, s, err);
}

static enum pgkeel_dcs_status mock_cancel_initialization(struct pgkeel_dcs *dcs,
                                                         int64_t deadline_ms,
                                                         struct pgkeel_err *err)
{
	return mock_cas(dcs, "cancel_initialization", "initialize", true, NULL, NULL, NULL, 0,
	                deadline_ms, err);
}

static enum pgkeel_dcs_status mock_set_config(struct pgkeel_dcs *dcs, const char *json,
                                              const char *expect_version, int64_t deadline_ms,
                                              struct pgkeel_err *err)
{
	return mock_cas(dcs, "set_config", "config", false, json, expect_version, NULL, 0,
	                deadline_ms, err);
}

static enum pgkeel_dcs_status mock_set_failover(struct pgkeel_dcs *dcs, const char *json,
                                                const char *expect_version,
                                                int64_t deadline_ms, struct pgkeel_err *err)
{
	return mock_cas(dcs, "set_failover", "failover", false, json, expect_version, NULL, 0,
	                deadline_ms, err);
}

static enum pgkeel_dcs_status mock_write_sync_state(struct pgkeel_dcs *dcs, const char *json,
                                                    const char *expect_version,
                                                    char *new_version, size_t new_version_len,
                                                    int64_t deadline_ms, struct pgkeel_err *err)
{
	return mock_cas(dcs, "write_sync_state", "sync", false, json, expect_version, new_version,
	                new_version_len, deadline_ms, err);
}

static enum pgkeel_dcs_status mock_delete_sync_state(struct pgkeel_dcs *dcs,
                                                     const char *expect_version,
                                                     int64_t deadline_ms,
                                                     struct pgkeel_err *err)
{
	return mock_cas(dcs, "delete_sync_state", "sync", true, NULL, expect_version, NULL, 0,
	                deadline_ms, err);
}

static enum pgkeel_dcs_status mock_plain_set(struct pgkeel_dcs *dcs, const char *op,
                                             const char *logical, const char *json,
                                             int64_t deadline_ms, struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct mock_txn t;

	if (dcs == NULL || json == NULL)
		return MOCK_INVALID(err, "%s: bad call", op);
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	s = mock_set(&t, logical, json, strlen(json), 0, err);
	return mock_end(&t, s, err);
}

static enum pgkeel_dcs_status mock_set_history(struct pgkeel_dcs *dcs, const char *json,
                                               int64_t deadline_ms, struct pgkeel_err *err)
{
	return mock_plain_set(dcs, "set_history", "history", json, deadline_ms, err);
}

static enum pgkeel_dcs_status mock_write_status(struct pgkeel_dcs *dcs, const char *json,
                                                int64_t deadline_ms, struct pgkeel_err *err)
{
	return mock_plain_set(dcs, "write_status", "status", json, deadline_ms, err);
}

static enum pgkeel_dcs_status mock_write_failsafe(struct pgkeel_dcs *dcs, const char *json,
                                                  int64_t deadline_ms, struct pgkeel_err *err)
{
	return mock_plain_set(dcs, "write_failsafe", "failsafe", json, deadline_ms, err);
}

static enum pgkeel_dcs_status mock_write_leader_optime(struct pgkeel_dcs *dcs, int64_t lsn,
                                                       int64_t deadline_ms,
                                                       struct pgkeel_err *err)
{
	char text[32];

	(void)snprintf(text, sizeof(text), "%" PRId64, lsn);
	return mock_plain_set(dcs, "write_leader_optime", "optime/leader", text, deadline_ms, err);
}

static enum pgkeel_dcs_status mock_delete_cluster(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                                  struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s;
	struct mock_txn t;
	size_t plen;
	size_t i = 0;

	if (dcs == NULL)
		return MOCK_INVALID(err, "delete_cluster: no handle");
	s = mock_begin(dcs, deadline_ms, &t, err);
	if (s != PGKEEL_DCS_OK)
		return s;
	plen = strlen(dcs->prefix);
	while (i < t.st.nentries) {
		if (strncmp(t.st.entries[i].key, dcs->prefix, plen) == 0)
			mock_remove(&t, (ssize_t)i);
		else
			i++;
	}
	return mock_end(&t, PGKEEL_DCS_OK, err);
}

/* ------------------------------------------------------------------ */
/* Timing and notification                                              */

static enum pgkeel_dcs_status mock_set_ttl(struct pgkeel_dcs *dcs, int ttl, int loop_wait,
                                           int retry_timeout, struct pgkeel_err *err)
{
	mock_clear_err(err);
	if (dcs == NULL || ttl <= 0)
		return MOCK_INVALID(err, "set_ttl: ttl must be > 0");
	if (ttl != dcs->ttl)
		dcs->lease = 0; /* the TTL is baked into the lease: the next keepalive renews */
	dcs->ttl = ttl;
	dcs->loop_wait = loop_wait;
	dcs->retry_timeout = retry_timeout;
	return PGKEEL_DCS_OK;
}

static enum pgkeel_dcs_status mock_watch(struct pgkeel_dcs *dcs, const char *leader_version,
                                         struct pgkeel_err *err)
{
	enum pgkeel_dcs_status s = mock_ctl_refuses(dcs, "watch", err);
	int rc;

	if (s != PGKEEL_DCS_OK)
		return s;
	mock_clear_err(err);
	(void)pthread_mutex_lock(&dcs->mu);
	(void)snprintf(dcs->armed_leader, sizeof(dcs->armed_leader), "%s",
	               leader_version != NULL ? leader_version : dcs->loaded_leader_version);
	(void)snprintf(dcs->armed_config, sizeof(dcs->armed_config), "%s",
	               dcs->loaded_config_version);
	dcs->armed = true;
	if (!dcs->watcher_started) {
		rc = pthread_create(&dcs->watcher, NULL, mock_watch_main, dcs);
		if (rc != 0) {
			dcs->armed = false;
			(void)pthread_mutex_unlock(&dcs->mu);
			return mock_fail(err, PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE,
			                 "watch: cannot start the watch thread: %s", strerror(rc));
		}
		dcs->watcher_started = true;
	}
	(void)pthread_cond_signal(&dcs->cond);
	(void)pthread_mutex_unlock(&dcs->mu);
	return PGKEEL_DCS_OK;
}

static const struct pgkeel_dcs_plugin mock_plugin = {
	.abi_version = PGKEEL_DCS_ABI_VERSION,
	.struct_size = sizeof(struct pgkeel_dcs_plugin),
	.name = MOCK_NAME,
	.version = MOCK_VERSION,
	.init = mock_init,
	.fini = mock_fini,
	.load_cluster = mock_load_cluster,
	.attempt_to_acquire_leader = mock_attempt_to_acquire_leader,
	.update_leader = mock_update_leader,
	.take_leader = mock_take_leader,
	.delete_leader = mock_delete_leader,
	.touch_member = mock_touch_member,
	.initialize = mock_initialize,
	.cancel_initialization = mock_cancel_initialization,
	.set_config = mock_set_config,
	.set_failover = mock_set_failover,
	.write_sync_state = mock_write_sync_state,
	.delete_sync_state = mock_delete_sync_state,
	.set_history = mock_set_history,
	.write_status = mock_write_status,
	.write_failsafe = mock_write_failsafe,
	.delete_cluster = mock_delete_cluster,
	.set_ttl = mock_set_ttl,
	.watch = mock_watch,
	.write_leader_optime = mock_write_leader_optime,
};

PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *
pgkeel_dcs_plugin_entry(void)
{
	return &mock_plugin;
}
