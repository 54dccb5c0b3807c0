/*
 * The encoders of the cluster model: the values the core writes into the
 * DCS, byte for byte as Patroni 3.0.2 writes them (ha.py touch_member(),
 * get_effective_tags(); dcs/__init__.py manual_failover, sync_state,
 * update_leader; the failsafe and history keys).
 */
#include "autoconf.h"

#include "cluster.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* encoders */

static void put_key(struct pgkeel_sbuf *b, bool *first, const char *key)
{
	if (!*first)
		pgkeel_sbuf_putc(b, ',');
	*first = false;
	pgkeel_json_put_cstring(b, key);
	pgkeel_sbuf_putc(b, ':');
}

static bool json_is_nonempty_object(const struct json_object *o)
{
	struct json_object *m = (struct json_object *)(uintptr_t)o;

	return o != NULL && json_object_is_type(m, json_type_object) &&
	       json_object_object_length(m) > 0;
}

void pgkeel_member_data_init(struct pgkeel_member_data *d)
{
	memset(d, 0, sizeof(*d));
	d->checkpoint_after_promote = PGKEEL_TRI_ABSENT;
	d->xlog_location = -1;
	d->timeline = 0;
}

char *pgkeel_member_data_encode(const struct pgkeel_member_data *d)
{
	struct pgkeel_sbuf b = { 0 };
	bool first = true;

	pgkeel_sbuf_putc(&b, '{');
	put_key(&b, &first, "conn_url");
	pgkeel_json_put_cstring(&b, d->conn_url);
	put_key(&b, &first, "api_url");
	pgkeel_json_put_cstring(&b, d->api_url);
	put_key(&b, &first, "state");
	pgkeel_json_put_cstring(&b, d->state);
	put_key(&b, &first, "role");
	pgkeel_json_put_cstring(&b, d->role);
	put_key(&b, &first, "version");
	pgkeel_json_put_cstring(&b, d->version);
	if (d->proxy_url != NULL && d->proxy_url[0] != '\0') {
		put_key(&b, &first, "proxy_url");
		pgkeel_json_put_cstring(&b, d->proxy_url);
	}
	if (d->checkpoint_after_promote != PGKEEL_TRI_ABSENT) {
		put_key(&b, &first, "checkpoint_after_promote");
		pgkeel_sbuf_puts(&b,
		                 d->checkpoint_after_promote == PGKEEL_TRI_TRUE ? "true" : "false");
	}
	if (json_is_nonempty_object(d->tags)) {
		put_key(&b, &first, "tags");
		pgkeel_json_put(&b, d->tags, false);
	}
	if (d->pending_restart) {
		put_key(&b, &first, "pending_restart");
		pgkeel_sbuf_puts(&b, "true");
	}
	if (d->xlog_location >= 0) {
		put_key(&b, &first, "xlog_location");
		pgkeel_sbuf_printf(&b, "%lld", (long long)d->xlog_location);
	}
	/* >= 3.0.4 writes it between xlog_location and timeline */
	if (d->replication_state != NULL && d->replication_state[0] != '\0') {
		put_key(&b, &first, "replication_state");
		pgkeel_json_put_cstring(&b, d->replication_state);
	}
	if (d->timeline != 0) {
		put_key(&b, &first, "timeline");
		pgkeel_sbuf_printf(&b, "%lld", (long long)d->timeline);
	}
	if (json_is_nonempty_object(d->scheduled_restart)) {
		put_key(&b, &first, "scheduled_restart");
		pgkeel_json_put(&b, d->scheduled_restart, false);
	}
	if (d->pause) {
		put_key(&b, &first, "pause");
		pgkeel_sbuf_puts(&b, "true");
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_failover_encode(const char *leader, const char *candidate, const char *scheduled_at)
{
	struct pgkeel_sbuf b = { 0 };
	bool first = true;

	pgkeel_sbuf_putc(&b, '{');
	if (leader != NULL && leader[0] != '\0') {
		put_key(&b, &first, "leader");
		pgkeel_json_put_cstring(&b, leader);
	}
	if (candidate != NULL && candidate[0] != '\0') {
		put_key(&b, &first, "member");
		pgkeel_json_put_cstring(&b, candidate);
	}
	if (scheduled_at != NULL && scheduled_at[0] != '\0') {
		put_key(&b, &first, "scheduled_at");
		pgkeel_json_put_cstring(&b, scheduled_at);
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *pgkeel_sync_encode(const char *leader, const char *const *standbys, size_t n_standbys)
{
	struct pgkeel_sbuf b = { 0 }, list = { 0 };
	const char **sorted;
	size_t i, n = 0;

	/* Python: ','.join(sorted(sync_standby)) or None; code point order = byte order */
	sorted = pgkeel_xreallocarray(NULL, n_standbys, sizeof(*sorted));
	for (i = 0; i < n_standbys; i++) {
		if (standbys[i] != NULL)
			sorted[n++] = standbys[i];
	}
	qsort(sorted, n, sizeof(*sorted), cmp_cstr);
	for (i = 0; i < n; i++) {
		if (i > 0)
			pgkeel_sbuf_putc(&list, ',');
		pgkeel_sbuf_puts(&list, sorted[i]);
	}
	free(sorted);

	pgkeel_sbuf_puts(&b, "{\"leader\":");
	pgkeel_json_put_cstring(&b, leader);
	pgkeel_sbuf_puts(&b, ",\"sync_standby\":");
	if (list.len > 0)
		pgkeel_json_put_string(&b, list.p, list.len);
	else
		pgkeel_sbuf_puts(&b, "null");
	pgkeel_sbuf_putc(&b, '}');
	free(list.p);
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_status_encode(int64_t optime, const struct json_object *slots)
{
	struct pgkeel_sbuf b = { 0 };

	pgkeel_sbuf_printf(&b, "{\"optime\":%lld", (long long)optime);
	if (json_is_nonempty_object(slots)) {
		pgkeel_sbuf_puts(&b, ",\"slots\":");
		pgkeel_json_put(&b, slots, false);
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_failsafe_encode(const struct pgkeel_failsafe_entry *entries, size_t n)
{
	struct pgkeel_sbuf b = { 0 };
	bool first = true;
	size_t i;

	pgkeel_sbuf_putc(&b, '{');
	for (i = 0; i < n; i++) {
		if (entries[i].name == NULL)
			continue;
		put_key(&b, &first, entries[i].name);
		pgkeel_json_put_cstring(&b, entries[i].api_url);
	}
	pgkeel_sbuf_putc(&b, '}');
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_history_encode(const struct pgkeel_history_line *lines, size_t n)
{
	struct pgkeel_sbuf b = { 0 };
	bool first = true;
	size_t i;

	pgkeel_sbuf_putc(&b, '[');
	for (i = 0; i < n; i++) {
		const struct pgkeel_history_line *l = &lines[i];

		if (!l->valid)
			continue;
		if (!first)
			pgkeel_sbuf_putc(&b, ',');
		first = false;
		pgkeel_sbuf_printf(&b, "[%lld,%lld,", (long long)l->timeline, (long long)l->lsn);
		pgkeel_json_put_cstring(&b, l->reason != NULL ? l->reason : "");
		if (l->timestamp != NULL || l->new_leader != NULL) {
			pgkeel_sbuf_putc(&b, ',');
			pgkeel_json_put_cstring(&b, l->timestamp);
		}
		if (l->new_leader != NULL) {
			pgkeel_sbuf_putc(&b, ',');
			pgkeel_json_put_cstring(&b, l->new_leader);
		}
		pgkeel_sbuf_putc(&b, ']');
	}
	pgkeel_sbuf_putc(&b, ']');
	return pgkeel_sbuf_finish(&b);
}

struct json_object *pgkeel_member_tags_effective(const struct json_object *configured,
                                                 bool disable_sync)
{
	static const char *const flags[] = { "clonefrom", "nofailover", "noloadbalance", "nosync" };
	struct json_object *conf = (struct json_object *)(uintptr_t)configured;
	struct json_object *out = json_object_new_object();
	size_t i;

	if (out == NULL)
		pgkeel_oom();
	if (conf != NULL && json_object_is_type(conf, json_type_object)) {
		json_object_object_foreach(conf, tag, value) {
			bool flag = false;
			struct json_object *copy = NULL;

			for (i = 0; i < PGKEEL_ARRAY_LEN(flags); i++)
				flag = flag || strcmp(tag, flags[i]) == 0;
			if (flag && !pgkeel_json_truthy(value))
				continue;
			/* a deep copy: json-c refcounts are not atomic, share nothing */
			if (value != NULL && json_object_deep_copy(value, &copy, NULL) != 0)
				pgkeel_oom();
			json_object_object_add(out, tag, copy);
		}
	}
	if (disable_sync)
		json_object_object_add(out, "nosync", json_object_new_boolean(1));
	return out;
}
