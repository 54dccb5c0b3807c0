/*
 * The cluster model: parsing Patroni's DCS values into a snapshot, and the
 * facts derived from one.  Writing the values back byte for byte as Patroni
 * 3.0.2 does is in cluster_encode.c; the JSON layer both use is in json.c.
 *
 * Reference behaviour: patroni/dcs/__init__.py (Member, Failover,
 * ClusterConfig, SyncState, TimelineHistory, Cluster) and the backends'
 * _cluster_from_nodes() of 3.0.2.
 */
#include "autoconf.h"

#include "cluster.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* small helpers */

/* A key printable in a log line: non-printable bytes as \xNN. */
static void printable_key(const char *key, char *out, size_t outlen)
{
	size_t o = 0;
	const unsigned char *k = (const unsigned char *)(key ? key : "(null)");

	for (; *k != '\0' && o + 5 < outlen; k++) {
		if (*k >= 0x20 && *k < 0x7f) {
			out[o++] = (char)*k;
		} else {
			if (!pgkeel_fmt(out + o, outlen - o, "\\x%02x", *k))
				break;
			o += 4;
		}
	}
	out[o] = '\0';
}

/* ------------------------------------------------------------------------ */
/* snapshot lifetime */

static void member_clear(struct pgkeel_member *m)
{
	free(m->name);
	free(m->version);
	free(m->owner);
	json_object_put(m->data);
	memset(m, 0, sizeof(*m));
}

static void config_free(struct pgkeel_cluster_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->version);
	free(cfg->modify_version);
	free(cfg->raw);
	json_object_put(cfg->data);
	free(cfg);
}

static void leader_free(struct pgkeel_leader *l)
{
	if (l == NULL)
		return;
	free(l->name);
	free(l->version);
	free(l->owner);
	free(l);
}

static void status_clear(struct pgkeel_status *s)
{
	json_object_put(s->slots);
	json_object_put(s->retain_slots);
	s->slots = NULL;
	s->retain_slots = NULL;
	s->present = false;
	s->last_lsn = -1;
}

static void failover_free(struct pgkeel_failover *f)
{
	if (f == NULL)
		return;
	free(f->version);
	free(f->leader);
	free(f->candidate);
	free(f->scheduled_at);
	free(f);
}

static void sync_clear(struct pgkeel_sync *s)
{
	size_t i;

	free(s->version);
	free(s->leader);
	for (i = 0; i < s->n_standbys; i++)
		free(s->standbys[i]);
	free(s->standbys);
	memset(s, 0, sizeof(*s));
}

static void history_free(struct pgkeel_history *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n_lines; i++) {
		free(h->lines[i].reason);
		free(h->lines[i].timestamp);
		free(h->lines[i].new_leader);
	}
	free(h->lines);
	free(h->version);
	free(h->raw);
	free(h);
}

static void failsafe_free(struct pgkeel_failsafe *fs)
{
	size_t i;

	if (fs == NULL)
		return;
	for (i = 0; i < fs->n_entries; i++) {
		free(fs->entries[i].name);
		free(fs->entries[i].api_url);
	}
	free(fs->entries);
	free(fs);
}

static void cluster_free(struct pgkeel_cluster *c)
{
	size_t i;

	free(c->initialize);
	config_free(c->config);
	leader_free(c->leader);
	status_clear(&c->status);
	for (i = 0; i < c->n_members; i++)
		member_clear(&c->members[i]);
	free(c->members);
	failover_free(c->failover);
	sync_clear(&c->sync);
	history_free(c->history);
	failsafe_free(c->failsafe);
	for (i = 0; i < c->n_warnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	free(c);
}

struct pgkeel_cluster *pgkeel_cluster_new_empty(void)
{
	struct pgkeel_cluster *c = pgkeel_xcalloc(1, sizeof(*c));

	c->refs_ = 1;
	c->status.last_lsn = -1;
	c->status.optime_leader = -1;
	return c;
}

struct pgkeel_cluster *pgkeel_cluster_ref(struct pgkeel_cluster *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs_, 1, __ATOMIC_RELAXED);
	return c;
}

void pgkeel_cluster_unref(struct pgkeel_cluster *c)
{
	if (c == NULL)
		return;
	if (__atomic_sub_fetch(&c->refs_, 1, __ATOMIC_ACQ_REL) == 0)
		cluster_free(c);
}

/* ------------------------------------------------------------------------ */
/* the builder */

struct pgkeel_cluster_builder {
	struct pgkeel_cluster *c;
	size_t members_cap;
};

static void warn(struct pgkeel_cluster *c, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
static void warn(struct pgkeel_cluster *c, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		pgkeel_oom();
	log_warning("%s", line);
	c->n_warnings_total++;
	if (c->n_warnings < PGKEEL_CLUSTER_MAX_WARNINGS) {
		c->warnings = pgkeel_xreallocarray(c->warnings, c->n_warnings + 1,
		                                   sizeof(*c->warnings));
		c->warnings[c->n_warnings++] = line;
	} else {
		free(line);
	}
}

/* Everything one value needs while being parsed. */
struct entry_ctx {
	struct pgkeel_cluster *c;
	char key[160];      /* printable key for messages */
	const char *value;
	size_t len;
};

static void warn_value(const struct entry_ctx *x, const char *why)
{
	warn(x->c, "ignoring malformed value of DCS key %s: %s", x->key, why);
}

static void warn_field(const struct entry_ctx *x, const char *field, const char *why)
{
	warn(x->c, "ignoring malformed field %s of DCS key %s: %s", field, x->key, why);
}

/* Parse the value as JSON; on failure warn (naming the key) and return false. */
static bool parse_value(const struct entry_ctx *x, struct json_object **out)
{
	char err[160], why[200];

	if (pgkeel_json_parse(x->value, x->len, out, err, sizeof(err)))
		return true;
	if (!pgkeel_fmt(why, sizeof(why), "%s", err))
		why[sizeof(why) - 1] = '\0';
	warn_value(x, why);
	return false;
}

/* Is the value text (no NUL byte, valid UTF-8)?  If not, why. */
static bool value_is_text(const struct entry_ctx *x, char *why, size_t whylen)
{
	const char *nul = memchr(x->value, '\0', x->len);
	size_t bad;

	if (nul != NULL) {
		(void)pgkeel_fmt(why, whylen, "NUL byte at offset %zu", (size_t)(nul - x->value));
		return false;
	}
	bad = pgkeel_utf8_invalid_at(x->value, x->len);
	if (bad < x->len) {
		(void)pgkeel_fmt(why, whylen, "invalid UTF-8 at offset %zu", bad);
		return false;
	}
	return true;
}

/* The value as a C string if it is text, else NULL + warning. */
static char *plain_value(const struct entry_ctx *x)
{
	char why[80];

	if (!value_is_text(x, why, sizeof(why))) {
		warn_value(x, why);
		return NULL;
	}
	return pgkeel_dup_bytes(x->value, x->len);
}

/*
 * A plain-text value that must not read as absent (leader, initialize):
 * when it is not text, warn and keep it with each bad byte as U+FFFD.
 */
static char *kept_text_value(const struct entry_ctx *x, const char *what)
{
	char why[80], shown[160];
	char *v;

	if (value_is_text(x, why, sizeof(why)))
		return pgkeel_dup_bytes(x->value, x->len);
	v = pgkeel_sanitize_text(x->value, x->len);
	printable_key(v, shown, sizeof(shown));
	warn(x->c, "malformed value of DCS key %s (%s): %s \"%s\"", x->key, why, what, shown);
	return v;
}

static const char *type_name(enum json_type t)
{
	switch (t) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a float";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "a list";
	case json_type_string:
		return "a string";
	}
	return "something else";
}

/* The value as a JSON object; NULL, with a warning, when it is not one. */
static struct json_object *object_value(const struct entry_ctx *x)
{
	struct json_object *obj = NULL;
	char why[80];

	if (!parse_value(x, &obj))
		return NULL;
	if (json_object_is_type(obj, json_type_object))
		return obj;
	(void)pgkeel_fmt(why, sizeof(why), "expected a JSON object, got %s",
	                 type_name(json_object_get_type(obj)));
	warn_value(x, why);
	json_object_put(obj);
	return NULL;
}

/*
 * A string member of obj (NULL when absent or null).  Other types and
 * strings with NUL bytes are reported as `field` of the key.
 */
static const char *get_string(const struct entry_ctx *x, struct json_object *obj, const char *field)
{
	struct json_object *v;
	char why[80];

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		(void)pgkeel_fmt(why, sizeof(why), "expected a string, got %s",
		                 type_name(json_object_get_type(v)));
		warn_field(x, field, why);
		return NULL;
	}
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		warn_field(x, field, "contains a NUL character");
		return NULL;
	}
	return json_object_get_string(v);
}

/* Same for an integer; `def` when absent, null or malformed. */
static int64_t get_int(const struct entry_ctx *x, struct json_object *obj, const char *field,
                       int64_t def)
{
	struct json_object *v;
	char why[80];

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
		return def;
	if (!json_object_is_type(v, json_type_int)) {
		(void)pgkeel_fmt(why, sizeof(why), "expected an integer, got %s",
		                 type_name(json_object_get_type(v)));
		warn_field(x, field, why);
		return def;
	}
	return json_object_get_int64(v);
}

/* Same for a boolean: absent/null -> ABSENT. */
static enum pgkeel_tristate get_bool(const struct entry_ctx *x, struct json_object *obj,
                                     const char *field)
{
	struct json_object *v;
	char why[80];

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
		return PGKEEL_TRI_ABSENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		(void)pgkeel_fmt(why, sizeof(why), "expected a boolean, got %s",
		                 type_name(json_object_get_type(v)));
		warn_field(x, field, why);
		return PGKEEL_TRI_ABSENT;
	}
	return json_object_get_boolean(v) ? PGKEEL_TRI_TRUE : PGKEEL_TRI_FALSE;
}

static struct json_object *get_object(const struct entry_ctx *x, struct json_object *obj,
                                      const char *field)
{
	struct json_object *v;
	char why[80];

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_object)) {
		(void)pgkeel_fmt(why, sizeof(why), "expected an object, got %s",
		                 type_name(json_object_get_type(v)));
		warn_field(x, field, why);
		return NULL;
	}
	return v;
}

/* An owned copy of an optional string field. */
static char *dup_string_field(const struct entry_ctx *x, struct json_object *obj,
                              const char *field)
{
	const char *s = get_string(x, obj, field);

	return s != NULL && s[0] != '\0' ? pgkeel_strdup(s) : NULL;
}

/* An integer that may also come as a decimal string (Python's int()). */
static bool json_to_int64(struct json_object *v, int64_t *out)
{
	if (v == NULL)
		return false;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		if (strlen(s) != (size_t)json_object_get_string_len(v))
			return false;
		return pgkeel_parse_int64(s, out);
	}
	return false;
}

/* ---- members ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Python's unquote_plus for one query component. */
static char *url_unquote_plus(const char *s, size_t len)
{
	struct pgkeel_sbuf b = { 0 };
	size_t i;
	char *raw, *clean;

	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			pgkeel_sbuf_putc(&b, ' ');
		} else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
		           hexval(s[i + 2]) >= 0) {
			pgkeel_sbuf_putc(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
			i += 2;
		} else {
			pgkeel_sbuf_putc(&b, s[i]);
		}
	}
	raw = pgkeel_sbuf_finish(&b);
	/* Python decodes with errors='replace' */
	clean = pgkeel_sanitize_text(raw, b.len);
	free(raw);
	return clean;
}

/*
 * Legacy member value: postgres://user:pw@host:port/db?application_name=<api_url>
 * (Governor).  conn_url = the URL without its query; api_url = the first
 * non-empty application_name parameter (urllib's parse_qsl).
 */
static struct json_object *parse_legacy_url(const char *v, size_t len)
{
	struct json_object *obj = json_object_new_object();
	const char *hash = memchr(v, '#', len);
	size_t end = hash ? (size_t)(hash - v) : len;
	const char *q = memchr(v, '?', end);
	struct pgkeel_sbuf conn = { 0 };
	char *api = NULL;

	if (obj == NULL)
		pgkeel_oom();
	if (q != NULL) {
		const char *p = q + 1, *qend = v + end;

		pgkeel_sbuf_put(&conn, v, (size_t)(q - v));
		if (hash != NULL)
			pgkeel_sbuf_put(&conn, hash, len - end);
		while (p < qend && api == NULL) {
			const char *amp = memchr(p, '&', (size_t)(qend - p));
			const char *pend = amp ? amp : qend;
			const char *eq = memchr(p, '=', (size_t)(pend - p));

			if (eq != NULL && eq + 1 < pend) {
				char *name = url_unquote_plus(p, (size_t)(eq - p));

				if (strcmp(name, "application_name") == 0)
					api = url_unquote_plus(eq + 1, (size_t)(pend - eq - 1));
				free(name);
			}
			p = pend + 1;
		}
	} else {
		pgkeel_sbuf_put(&conn, v, len);
	}
	json_object_object_add(obj, "conn_url", json_object_new_string(pgkeel_sbuf_finish(&conn)));
	json_object_object_add(obj, "api_url", api ? json_object_new_string(api) : NULL);
	free(conn.p);
	free(api);
	return obj;
}

static void member_fill(const struct entry_ctx *x, struct pgkeel_member *m)
{
	struct pgkeel_member_data *d = &m->d;
	struct json_object *o = m->data;
	enum pgkeel_tristate t;

	pgkeel_member_data_init(d);
	d->conn_url = get_string(x, o, "conn_url");
	d->api_url = get_string(x, o, "api_url");
	d->state = get_string(x, o, "state");
	d->role = get_string(x, o, "role");
	d->version = get_string(x, o, "version");
	d->proxy_url = get_string(x, o, "proxy_url");
	d->checkpoint_after_promote = get_bool(x, o, "checkpoint_after_promote");
	d->tags = get_object(x, o, "tags");
	t = get_bool(x, o, "pending_restart");
	d->pending_restart = t == PGKEEL_TRI_TRUE;
	d->xlog_location = get_int(x, o, "xlog_location", -1);
	if (d->xlog_location < -1) {
		warn_field(x, "xlog_location", "negative");
		d->xlog_location = -1;
	}
	d->replication_state = get_string(x, o, "replication_state");
	d->timeline = get_int(x, o, "timeline", 0);
	if (d->timeline < 0) {
		warn_field(x, "timeline", "negative");
		d->timeline = 0;
	}
	d->scheduled_restart = get_object(x, o, "scheduled_restart");
	t = get_bool(x, o, "pause");
	d->pause = t == PGKEEL_TRI_TRUE;
}

static struct pgkeel_member *member_slot(struct pgkeel_cluster_builder *b, const char *name)
{
	struct pgkeel_cluster *c = b->c;
	struct pgkeel_member *m;
	size_t i;

	for (i = 0; i < c->n_members; i++) {
		if (strcmp(c->members[i].name, name) == 0) {
			log_debug("DCS key members/%s reported twice; keeping the last", name);
			member_clear(&c->members[i]);
			return &c->members[i];
		}
	}
	if (c->n_members == b->members_cap) {
		b->members_cap = b->members_cap ? b->members_cap * 2 : 8;
		c->members = pgkeel_xreallocarray(c->members, b->members_cap, sizeof(*c->members));
	}
	m = &c->members[c->n_members++];
	memset(m, 0, sizeof(*m));
	return m;
}

static void add_member(struct pgkeel_cluster_builder *b, const struct entry_ctx *x,
                       const struct pgkeel_dcs_entry *e, const char *name)
{
	struct pgkeel_member *m;
	bool ok = false;

	if (name[0] == '\0') {
		warn(x->c, "ignoring DCS key %s: no member name", x->key);
		return;
	}
	if (pgkeel_utf8_invalid_at(name, strlen(name)) < strlen(name)) {
		warn(x->c, "ignoring DCS key %s: member name is not valid UTF-8", x->key);
		return;
	}
	m = member_slot(b, name);
	m->name = pgkeel_strdup(name);
	m->version = pgkeel_strdup(e->version);
	m->owner = pgkeel_strdup(e->owner);

	if (x->len >= 8 && memcmp(x->value, "postgres", 8) == 0) {
		char *v = plain_value(x);

		if (v != NULL) {
			m->data = parse_legacy_url(v, x->len);
			m->legacy_url = true;
			free(v);
			ok = true;
		}
	} else {
		m->data = object_value(x);
		ok = m->data != NULL;
	}
	if (!ok) {
		/* Patroni: data = {} and the member stays */
		m->data = json_object_new_object();
		if (m->data == NULL)
			pgkeel_oom();
		m->malformed = true;
	}
	member_fill(x, m);
}

/* ---- the other keys ---- */

static void add_leader(struct pgkeel_cluster_builder *b, const struct entry_ctx *x,
                       const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_cluster *c = b->c;
	struct pgkeel_leader *l = pgkeel_xcalloc(1, sizeof(*l));

	/* never read a malformed holder as a free lock */
	l->name = kept_text_value(x, "keeping the lock as held by");
	l->version = pgkeel_strdup(e->version);
	l->owner = pgkeel_strdup(e->owner);
	leader_free(c->leader);
	c->leader = l;
}

static void add_initialize(struct pgkeel_cluster *c, const struct entry_ctx *x)
{
	/* present but not a sysid: matches no data directory, yet is not "absent" */
	char *v = kept_text_value(x, "kept as");

	free(c->initialize);
	c->initialize = v;
}

static void add_config(struct pgkeel_cluster *c, const struct entry_ctx *x,
                       const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_cluster_config *cfg = pgkeel_xcalloc(1, sizeof(*cfg));

	cfg->version = pgkeel_strdup(e->version);
	cfg->modify_version = pgkeel_strdup(e->modify_version ? e->modify_version : e->version);
	cfg->raw = pgkeel_dup_bytes(x->value, x->len);
	cfg->raw_len = x->len;
	cfg->data = object_value(x);
	cfg->valid = cfg->data != NULL;
	config_free(c->config);
	c->config = cfg;
}

/* Keep only {name: int} entries of a slots object; NULL when none is left. */
static struct json_object *clean_slots(const struct entry_ctx *x, struct json_object *v)
{
	struct json_object *out, *parsed = NULL;
	char err[120];

	if (v != NULL && json_object_is_type(v, json_type_string)) {
		/* [4.x] may be a JSON string */
		if (!pgkeel_json_parse(json_object_get_string(v),
		                       (size_t)json_object_get_string_len(v), &parsed, err,
		                       sizeof(err))) {
			warn_field(x, "slots", err);
			return NULL;
		}
		v = parsed;
	}
	if (v == NULL) {
		return NULL;
	}
	if (!json_object_is_type(v, json_type_object)) {
		warn_field(x, "slots", "expected an object");
		json_object_put(parsed);
		return NULL;
	}
	out = json_object_new_object();
	if (out == NULL)
		pgkeel_oom();
	json_object_object_foreach(v, name, lsn) {
		if (lsn == NULL || !json_object_is_type(lsn, json_type_int)) {
			char field[96];

			(void)pgkeel_fmt(field, sizeof(field), "slots.%s", name);
			warn_field(x, field, "expected an integer");
			continue;
		}
		json_object_object_add(out, name,
		                       json_object_new_int64(json_object_get_int64(lsn)));
	}
	json_object_put(parsed);
	if (json_object_object_length(out) == 0) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

static void add_status(struct pgkeel_cluster *c, const struct entry_ctx *x)
{
	struct json_object *obj = NULL, *v;
	int64_t lsn;

	status_clear(&c->status);
	c->status.present = true;
	if (!parse_value(x, &obj))
		return;
	if (json_object_is_type(obj, json_type_int)) {
		/* legacy: a bare number is the optime */
		c->status.last_lsn = json_object_get_int64(obj);
		json_object_put(obj);
		return;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		warn_value(x, "expected a JSON object");
		json_object_put(obj);
		return;
	}
	if (json_object_object_get_ex(obj, "optime", &v) && v != NULL) {
		if (json_to_int64(v, &lsn) && lsn >= 0)
			c->status.last_lsn = lsn;
		else
			warn_field(x, "optime", "expected a non-negative integer");
	}
	if (json_object_object_get_ex(obj, "slots", &v))
		c->status.slots = clean_slots(x, v);
	if (json_object_object_get_ex(obj, "retain_slots", &v) && v != NULL) {
		if (json_object_is_type(v, json_type_array))
			c->status.retain_slots = json_object_get(v);
		else
			warn_field(x, "retain_slots", "expected a list");
	}
	json_object_put(obj);
}

static void add_optime_leader(struct pgkeel_cluster *c, const struct entry_ctx *x)
{
	char *v = plain_value(x);
	int64_t lsn;

	c->status.optime_leader = -1;
	if (v == NULL)
		return;
	if (pgkeel_parse_int64(v, &lsn) && lsn >= 0)
		c->status.optime_leader = lsn;
	else
		warn_value(x, "expected a decimal LSN");
	free(v);
}

/* Python's str.strip() for the ASCII whitespace Python strips. */
static void strip_span(const char **s, size_t *len)
{
	while (*len > 0 && (isspace((unsigned char)**s) || (**s >= 0x1c && **s <= 0x1f))) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && (isspace((unsigned char)(*s)[*len - 1]) ||
	                    ((*s)[*len - 1] >= 0x1c && (*s)[*len - 1] <= 0x1f)))
		(*len)--;
}

static char *dup_stripped(const char *s, size_t len)
{
	strip_span(&s, &len);
	return len > 0 ? pgkeel_dup_bytes(s, len) : NULL;
}

static void add_failover(struct pgkeel_cluster *c, const struct entry_ctx *x,
                         const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_failover *f = pgkeel_xcalloc(1, sizeof(*f));
	struct json_object *obj = NULL;
	char err[160];
	char *text;

	f->version = pgkeel_strdup(e->version);
	failover_free(c->failover);
	c->failover = f;
	if (x->len == 0)
		return; /* "" = no request */
	text = plain_value(x);
	if (text == NULL)
		return; /* warned; keep the version for the CAS that clears it */
	if (!pgkeel_json_parse(text, x->len, &obj, err, sizeof(err))) {
		/* legacy "leader:candidate" */
		const char *colon = strchr(text, ':');

		f->legacy = true;
		f->leader = dup_stripped(text, colon ? (size_t)(colon - text) : x->len);
		if (colon != NULL) {
			const char *cand = colon + 1, *next = strchr(cand, ':');

			f->candidate = dup_stripped(cand, next ? (size_t)(next - cand)
			                                      : strlen(cand));
		}
		free(text);
		if (f->leader == NULL && f->candidate == NULL) {
			/* Patroni: no Failover object at all */
			failover_free(f);
			c->failover = NULL;
		}
		return;
	}
	free(text);
	if (obj == NULL)
		return; /* null: Patroni reads it as {} */
	if (!json_object_is_type(obj, json_type_object)) {
		warn_value(x, "expected a JSON object");
		json_object_put(obj);
		return;
	}
	f->leader = dup_string_field(x, obj, "leader");
	f->candidate = dup_string_field(x, obj, "member");
	f->scheduled_at = dup_string_field(x, obj, "scheduled_at");
	json_object_put(obj);
}

static void add_sync(struct pgkeel_cluster *c, const struct entry_ctx *x,
                     const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_sync *s = &c->sync;
	struct json_object *obj = NULL, *v;
	const char *leader, *list;

	sync_clear(s);
	s->present = true;
	s->version = pgkeel_strdup(e->version);
	if (x->len == 0)
		return;
	if (!parse_value(x, &obj))
		return; /* Patroni: empty state, version kept */
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		if (obj != NULL)
			warn_value(x, "expected a JSON object");
		json_object_put(obj);
		return;
	}
	leader = get_string(x, obj, "leader");
	list = get_string(x, obj, "sync_standby");
	if (json_object_object_get_ex(obj, "sync_standby", &v) && v != NULL && list == NULL) {
		/* a non-string standby list cannot be trusted: empty state */
		json_object_put(obj);
		return;
	}
	if (leader == NULL) {
		/* no leader: the "empty" state, whatever else it lists */
		json_object_put(obj);
		return;
	}
	s->leader = pgkeel_strdup(leader);
	if (list != NULL) {
		const char *p = list;

		while (*p != '\0') {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			char *name = dup_stripped(p, n);

			if (name != NULL) {
				s->standbys = pgkeel_xreallocarray(s->standbys, s->n_standbys + 1,
				                                   sizeof(*s->standbys));
				s->standbys[s->n_standbys++] = name;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}
	s->quorum = get_int(x, obj, "quorum", 0);
	json_object_put(obj);
}

static void history_line(const struct entry_ctx *x, size_t idx, struct json_object *v,
                         struct pgkeel_history_line *l)
{
	static const char *const names[] = { "reason", "timestamp", "new_leader" };
	char *fields[3] = { NULL, NULL, NULL };
	char what[64];
	size_t n, i;

	l->timeline = -1;
	l->lsn = -1;
	if (!json_object_is_type(v, json_type_array)) {
		(void)pgkeel_fmt(what, sizeof(what), "line %zu is not a list", idx);
		warn_value(x, what);
		return;
	}
	n = json_object_array_length(v);
	l->n_fields = n;
	if (n < 1 || !json_to_int64(json_object_array_get_idx(v, 0), &l->timeline) ||
	    l->timeline < 0) {
		l->timeline = -1;
		(void)pgkeel_fmt(what, sizeof(what), "line %zu has no integer timeline", idx);
		warn_value(x, what);
		return;
	}
	if (n < 2 || !json_to_int64(json_object_array_get_idx(v, 1), &l->lsn) || l->lsn < 0) {
		l->lsn = -1;
		(void)pgkeel_fmt(what, sizeof(what), "line %zu has no integer LSN", idx);
		warn_value(x, what);
		return;
	}
	for (i = 0; i < 3 && i + 2 < n; i++) {
		struct json_object *f = json_object_array_get_idx(v, i + 2);

		if (f == NULL)
			continue;
		if (!json_object_is_type(f, json_type_string) ||
		    strlen(json_object_get_string(f)) != (size_t)json_object_get_string_len(f)) {
			(void)pgkeel_fmt(what, sizeof(what), "line %zu: %s is not a string", idx,
			                 names[i]);
			warn_value(x, what);
			continue;
		}
		fields[i] = pgkeel_strdup(json_object_get_string(f));
	}
	l->reason = fields[0];
	l->timestamp = fields[1];
	l->new_leader = fields[2];
	l->valid = true;
}

static void add_history(struct pgkeel_cluster *c, const struct entry_ctx *x,
                        const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_history *h = pgkeel_xcalloc(1, sizeof(*h));
	struct json_object *obj = NULL;
	size_t i, n;

	h->version = pgkeel_strdup(e->version);
	h->raw = pgkeel_sanitize_text(x->value, x->len);
	history_free(c->history);
	c->history = h;
	if (!parse_value(x, &obj))
		return;
	if (obj == NULL || !json_object_is_type(obj, json_type_array)) {
		warn_value(x, "expected a JSON list");
		json_object_put(obj);
		return;
	}
	h->valid = true;
	n = json_object_array_length(obj);
	h->lines = pgkeel_xcalloc(n, sizeof(*h->lines));
	h->n_lines = n;
	for (i = 0; i < n; i++)
		history_line(x, i, json_object_array_get_idx(obj, i), &h->lines[i]);
	json_object_put(obj);
}

static void add_failsafe(struct pgkeel_cluster *c, const struct entry_ctx *x)
{
	struct pgkeel_failsafe *fs;
	struct json_object *obj = NULL;
	size_t i = 0;

	failsafe_free(c->failsafe);
	c->failsafe = NULL;
	if (!parse_value(x, &obj))
		return;
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		warn_value(x, "expected a JSON object");
		json_object_put(obj);
		return;
	}
	fs = pgkeel_xcalloc(1, sizeof(*fs));
	fs->n_entries = (size_t)json_object_object_length(obj);
	fs->entries = pgkeel_xcalloc(fs->n_entries, sizeof(*fs->entries));
	json_object_object_foreach(obj, name, url) {
		fs->entries[i].name = pgkeel_strdup(name);
		/* a member without a usable URL still counts as listed */
		fs->entries[i].api_url = url != NULL ? dup_string_field(x, obj, name) : NULL;
		i++;
	}
	json_object_put(obj);
	c->failsafe = fs;
}

struct pgkeel_cluster_builder *pgkeel_cluster_builder_new(void)
{
	struct pgkeel_cluster_builder *b = pgkeel_xcalloc(1, sizeof(*b));

	b->c = pgkeel_cluster_new_empty();
	return b;
}

int pgkeel_cluster_builder_add(void *arg, const struct pgkeel_dcs_entry *e)
{
	struct pgkeel_cluster_builder *b = arg;
	struct entry_ctx x;
	const char *key;

	if (b == NULL || e == NULL)
		return 0;
	memset(&x, 0, sizeof(x));
	x.c = b->c;
	printable_key(e->key, x.key, sizeof(x.key));
	x.value = e->value != NULL ? e->value : "";
	x.len = e->value != NULL ? e->value_len : 0;
	key = e->key;
	if (key == NULL) {
		warn(b->c, "ignoring a DCS entry without a key");
		return 0;
	}

	if (strcmp(key, "leader") == 0)
		add_leader(b, &x, e);
	else if (strncmp(key, "members/", 8) == 0 && strchr(key + 8, '/') == NULL)
		add_member(b, &x, e, key + 8);
	else if (strcmp(key, "config") == 0)
		add_config(b->c, &x, e);
	else if (strcmp(key, "initialize") == 0)
		add_initialize(b->c, &x);
	else if (strcmp(key, "status") == 0)
		add_status(b->c, &x);
	else if (strcmp(key, "optime/leader") == 0)
		add_optime_leader(b->c, &x);
	else if (strcmp(key, "failover") == 0)
		add_failover(b->c, &x, e);
	else if (strcmp(key, "sync") == 0)
		add_sync(b->c, &x, e);
	else if (strcmp(key, "history") == 0)
		add_history(b->c, &x, e);
	else if (strcmp(key, "failsafe") == 0)
		add_failsafe(b->c, &x);
	else
		log_debug("ignoring DCS key %s: not part of the cluster model", x.key);
	return 0;
}

struct pgkeel_cluster *pgkeel_cluster_builder_finish(struct pgkeel_cluster_builder *b)
{
	struct pgkeel_cluster *c;

	if (b == NULL)
		return pgkeel_cluster_new_empty();
	c = b->c;
	free(b);
	/* Patroni 3.0.2: status when present, else the legacy optime/leader */
	if (!c->status.present && c->status.optime_leader >= 0)
		c->status.last_lsn = c->status.optime_leader;
	if (c->leader != NULL)
		c->leader->member = pgkeel_cluster_get_member(c, c->leader->name);
	return c;
}

void pgkeel_cluster_builder_free(struct pgkeel_cluster_builder *b)
{
	if (b == NULL)
		return;
	pgkeel_cluster_unref(b->c);
	free(b);
}

/* ------------------------------------------------------------------------ */
/* derived facts */

bool pgkeel_cluster_is_empty(const struct pgkeel_cluster *c)
{
	return c->initialize == NULL && c->config == NULL && c->leader == NULL &&
	       !c->status.present && c->status.optime_leader < 0 && c->n_members == 0 &&
	       c->failover == NULL && !c->sync.present && c->history == NULL &&
	       c->failsafe == NULL;
}

const struct pgkeel_member *pgkeel_cluster_get_member(const struct pgkeel_cluster *c,
                                                      const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->n_members; i++) {
		if (strcmp(c->members[i].name, name) == 0)
			return &c->members[i];
	}
	return NULL;
}

const char *pgkeel_cluster_leader_name(const struct pgkeel_cluster *c)
{
	if (c == NULL || c->leader == NULL || c->leader->name == NULL ||
	    c->leader->name[0] == '\0')
		return NULL;
	return c->leader->name;
}

bool pgkeel_cluster_is_unlocked(const struct pgkeel_cluster *c)
{
	return pgkeel_cluster_leader_name(c) == NULL;
}

int64_t pgkeel_cluster_timeline(const struct pgkeel_cluster *c)
{
	const struct pgkeel_history *h = c->history;
	const struct pgkeel_history_line *last;

	if (h == NULL || !h->valid)
		return 0;
	if (h->n_lines == 0) /* Patroni: only the exact text "[]" means timeline 1 */
		return strcmp(h->raw, "[]") == 0 ? 1 : 0;
	last = &h->lines[h->n_lines - 1];
	if (last->timeline < 0 || last->timeline == INT64_MAX)
		return 0;
	return last->timeline + 1;
}

bool pgkeel_version_parse(const char *s, int64_t *out)
{
	int64_t part[3] = { 0, 0, 0 };
	int n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (;;) {
		int64_t v = 0;
		int digits = 0;

		if (n == 3)
			return false;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s - '0');
			if (++digits > 3)
				return false;
			s++;
		}
		if (digits == 0)
			return false;
		part[n++] = v;
		if (*s == '\0')
			break;
		if (*s != '.')
			return false;
		s++;
	}
	*out = PGKEEL_VERSION_NUM(part[0], part[1], part[2]);
	return true;
}

int64_t pgkeel_cluster_min_version(const struct pgkeel_cluster *c)
{
	int64_t min = -1, v;
	size_t i;

	for (i = 0; i < c->n_members; i++) {
		if (pgkeel_version_parse(c->members[i].d.version, &v) && (min < 0 || v < min))
			min = v;
	}
	return min;
}

/* ASCII case-insensitive equality; other bytes must match exactly. */
static bool name_eq_ci(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

bool pgkeel_sync_matches(const struct pgkeel_sync *s, const char *name, bool include_leader)
{
	size_t i;

	if (s == NULL || name == NULL || s->leader == NULL)
		return false;
	if (include_leader && name_eq_ci(s->leader, name))
		return true;
	for (i = 0; i < s->n_standbys; i++) {
		if (name_eq_ci(s->standbys[i], name))
			return true;
	}
	return false;
}

bool pgkeel_failover_is_request(const struct pgkeel_failover *f)
{
	return f != NULL && (f->leader != NULL || f->candidate != NULL);
}

const struct pgkeel_failsafe_entry *pgkeel_failsafe_get(const struct pgkeel_failsafe *fs,
                                                        const char *name)
{
	size_t i;

	if (fs == NULL || name == NULL)
		return NULL;
	for (i = 0; i < fs->n_entries; i++) {
		if (strcmp(fs->entries[i].name, name) == 0)
			return &fs->entries[i];
	}
	return NULL;
}

static struct json_object *tag_value(const struct pgkeel_member_data *d, const char *tag)
{
	struct json_object *tags = (struct json_object *)(uintptr_t)d->tags, *v;

	if (tags == NULL || !json_object_object_get_ex(tags, tag, &v))
		return NULL;
	return v;
}

bool pgkeel_member_tag_truthy(const struct pgkeel_member_data *d, const char *tag)
{
	struct json_object *v = tag_value(d, tag);

	return v != NULL && pgkeel_json_truthy(v);
}

const char *pgkeel_member_tag_string(const struct pgkeel_member_data *d, const char *tag)
{
	struct json_object *v = tag_value(d, tag);

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
