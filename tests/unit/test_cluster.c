/*
 * The cluster model against values captured from a real Patroni 3.0.2
 * cluster (tests/data/patroni-3.0.2/), Python's json.dumps output
 * (tests/data/cluster/json-compact.tsv) and a table of malformed values.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "cluster.h"
#include "util.h"

#define CAPTURED TEST_SRCDIR "/tests/data/patroni-3.0.2"
#define OURDATA TEST_SRCDIR "/tests/data/cluster"

/* ------------------------------------------------------------------------ */
/* helpers */

/* The whole file, NUL-terminated (the length excludes it); NULL if missing. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static char *must_slurp(const char *path, size_t *len)
{
	char *s = slurp(path, len);

	if (s == NULL)
		fail_msg("missing test data %s", path);
	return s;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void add_raw(struct pgkeel_cluster_builder *b, const char *key, const char *value,
                    size_t len, const char *version, const char *owner)
{
	struct pgkeel_dcs_entry e = {
		.key = key, .value = value, .value_len = len, .version = version,
		.modify_version = NULL, .owner = owner,
	};

	assert_int_equal(pgkeel_cluster_builder_add(b, &e), 0);
}

static void add(struct pgkeel_cluster_builder *b, const char *key, const char *value)
{
	add_raw(b, key, value, strlen(value), "1", NULL);
}

/* One entry whose value is a captured file; false when the file is absent. */
static bool add_file(struct pgkeel_cluster_builder *b, const char *key, const char *path,
                     const char *version)
{
	size_t len;
	char *v = slurp(path, &len);

	if (v == NULL)
		return false;
	add_raw(b, key, v, len, version, NULL);
	free(v);
	return true;
}

/* Build a snapshot from a captured directory (the key files Patroni's DCS holds). */
static struct pgkeel_cluster *build_dir(const char *dir)
{
	static const struct {
		const char *file, *key;
	} keys[] = {
		{ "config.json", "config" },     { "initialize", "initialize" },
		{ "leader", "leader" },          { "status.json", "status" },
		{ "sync.json", "sync" },         { "failover.json", "failover" },
		{ "history.json", "history" },   { "failsafe.json", "failsafe" },
	};
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	char path[512], key[256], version[16];
	struct dirent *de;
	DIR *d;
	size_t i;
	int v = 10;

	for (i = 0; i < PGKEEL_ARRAY_LEN(keys); i++) {
		assert_true(pgkeel_fmt(path, sizeof(path), "%s/%s", dir, keys[i].file));
		assert_true(pgkeel_fmt(version, sizeof(version), "%d", v++));
		(void)add_file(b, keys[i].key, path, version);
	}
	assert_true(pgkeel_fmt(path, sizeof(path), "%s/members", dir));
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		assert_true(pgkeel_fmt(key, sizeof(key), "members/%.*s", (int)(n - 5), de->d_name));
		assert_true(pgkeel_fmt(path, sizeof(path), "%s/members/%s", dir, de->d_name));
		assert_true(pgkeel_fmt(version, sizeof(version), "%d", v++));
		assert_true(add_file(b, key, path, version));
	}
	closedir(d);
	return pgkeel_cluster_builder_finish(b);
}

static bool has_warning(const struct pgkeel_cluster *c, const char *a, const char *b)
{
	size_t i;

	for (i = 0; i < c->n_warnings; i++) {
		if (strstr(c->warnings[i], a) != NULL && (b == NULL || strstr(c->warnings[i], b)))
			return true;
	}
	return false;
}

static void print_warnings(const struct pgkeel_cluster *c)
{
	size_t i;

	for (i = 0; i < c->n_warnings; i++)
		print_message("  warning: %s\n", c->warnings[i]);
}

static struct json_object *parse_ok(const char *text)
{
	struct json_object *o = NULL;
	char err[160];

	if (!pgkeel_json_parse(text, strlen(text), &o, err, sizeof(err)))
		fail_msg("cannot parse %s: %s", text, err);
	return o;
}

/* ------------------------------------------------------------------------ */
/* the captured 3.0.2 cluster */

static void test_captured_bootstrap(void **state)
{
	struct pgkeel_cluster *c = build_dir(CAPTURED);
	const struct pgkeel_member *m1, *m2, *m3;
	struct json_object *ttl;
	char *initialize;

	(void)state;
	print_warnings(c);
	assert_int_equal(c->n_warnings_total, 0);
	assert_false(pgkeel_cluster_is_empty(c));

	/* leader, resolved against the members */
	assert_false(pgkeel_cluster_is_unlocked(c));
	assert_string_equal(pgkeel_cluster_leader_name(c), "pg-1");
	assert_non_null(c->leader->member);
	assert_string_equal(c->leader->member->name, "pg-1");
	assert_string_equal(c->leader->version, "12");

	/* members */
	assert_int_equal(c->n_members, 3);
	m1 = pgkeel_cluster_get_member(c, "pg-1");
	m2 = pgkeel_cluster_get_member(c, "pg-2");
	m3 = pgkeel_cluster_get_member(c, "pg-3");
	assert_non_null(m1);
	assert_non_null(m2);
	assert_non_null(m3);
	assert_null(pgkeel_cluster_get_member(c, "pg-4"));
	assert_ptr_equal(c->leader->member, m1);
	assert_string_equal(m1->d.role, "master");
	assert_string_equal(m2->d.role, "replica");
	assert_string_equal(m3->d.role, "replica");
	assert_string_equal(m1->d.state, "running");
	assert_string_equal(m1->d.conn_url, "postgres://127.0.0.1:25501/postgres");
	assert_string_equal(m2->d.api_url, "http://127.0.0.1:28102/patroni");
	assert_string_equal(m1->d.version, "3.0.2");
	assert_int_equal(m1->d.xlog_location, 67109000);
	assert_int_equal(m2->d.xlog_location, 67109000);
	assert_int_equal(m3->d.timeline, 1);
	assert_int_equal(m1->d.checkpoint_after_promote, PGKEEL_TRI_ABSENT);
	assert_null(m1->d.tags);
	assert_string_equal(pgkeel_member_tag_string(&m3->d, "dc"), "dc3");
	assert_false(pgkeel_member_tag_truthy(&m3->d, "nofailover"));
	assert_false(m2->malformed);
	assert_int_equal(pgkeel_cluster_min_version(c), PGKEEL_VERSION_NUM(3, 0, 2));

	/* status, sync, config, initialize */
	assert_true(c->status.present);
	assert_int_equal(c->status.last_lsn, 67109000);
	assert_null(c->status.slots);
	assert_true(c->sync.present);
	assert_string_equal(c->sync.leader, "pg-1");
	assert_int_equal(c->sync.n_standbys, 1);
	assert_string_equal(c->sync.standbys[0], "pg-3");
	assert_true(pgkeel_sync_matches(&c->sync, "pg-3", false));
	assert_true(pgkeel_sync_matches(&c->sync, "PG-3", false)); /* >= 3.0.3 rule */
	assert_false(pgkeel_sync_matches(&c->sync, "pg-2", true));
	assert_false(pgkeel_sync_matches(&c->sync, "pg-1", false));
	assert_true(pgkeel_sync_matches(&c->sync, "pg-1", true));
	assert_non_null(c->config);
	assert_true(c->config->valid);
	assert_true(json_object_object_get_ex(c->config->data, "ttl", &ttl));
	assert_int_equal(json_object_get_int64(ttl), 30);
	assert_string_equal(c->config->modify_version, c->config->version);
	initialize = must_slurp(CAPTURED "/initialize", NULL);
	assert_string_equal(c->initialize, initialize);
	free(initialize);

	/* nothing else at bootstrap */
	assert_null(c->failover);
	assert_null(c->history);
	assert_null(c->failsafe);
	assert_int_equal(pgkeel_cluster_timeline(c), 0);
	pgkeel_cluster_unref(c);
}

static void test_captured_after_switchover(void **state)
{
	struct pgkeel_cluster *c;
	char *leader;
	size_t i;

	(void)state;
	if (!exists(CAPTURED "/after-switchover/leader"))
		skip();
	c = build_dir(CAPTURED "/after-switchover");
	print_warnings(c);
	assert_int_equal(c->n_warnings_total, 0);
	leader = must_slurp(CAPTURED "/after-switchover/leader", NULL);
	assert_string_equal(pgkeel_cluster_leader_name(c), leader);
	assert_string_not_equal(leader, "pg-1"); /* the switchover moved the lock */
	assert_non_null(c->leader->member);
	assert_string_equal(c->leader->member->d.role, "master");
	for (i = 0; i < c->n_members; i++) {
		if (strcmp(c->members[i].name, leader) != 0) {
			assert_string_not_equal(c->members[i].d.role, "master");
		}
	}
	/* the switchover request was cleared by writing {} */
	assert_non_null(c->failover);
	assert_false(pgkeel_failover_is_request(c->failover));
	assert_null(c->failover->leader);
	assert_null(c->failover->candidate);
	assert_non_null(c->failover->version);
	/* one promotion: history has one line, timeline 2 */
	assert_non_null(c->history);
	assert_true(c->history->valid);
	assert_true(c->history->n_lines >= 1);
	assert_true(c->history->lines[c->history->n_lines - 1].valid);
	assert_int_equal(pgkeel_cluster_timeline(c),
	                 c->history->lines[c->history->n_lines - 1].timeline + 1);
	assert_int_equal(pgkeel_cluster_timeline(c), 2);
	assert_string_equal(c->history->lines[0].new_leader, leader);
	/* sync follows the new leader */
	assert_string_equal(c->sync.leader, leader);
	assert_int_equal(c->leader->member->d.timeline, 2);
	free(leader);
	pgkeel_cluster_unref(c);
}

static void test_captured_after_failsafe(void **state)
{
	struct pgkeel_cluster *c;
	const struct pgkeel_failsafe_entry *e;
	struct json_object *fm;
	size_t i;

	(void)state;
	if (!exists(CAPTURED "/after-failsafe/failsafe.json"))
		skip();
	{
		struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

		assert_true(add_file(b, "failsafe", CAPTURED "/after-failsafe/failsafe.json", "3"));
		assert_true(add_file(b, "config", CAPTURED "/after-failsafe/config.json", "4"));
		c = pgkeel_cluster_builder_finish(b);
	}
	print_warnings(c);
	assert_int_equal(c->n_warnings_total, 0);
	assert_non_null(c->failsafe);
	assert_true(c->failsafe->n_entries >= 2);
	for (i = 0; i < c->failsafe->n_entries; i++) {
		e = &c->failsafe->entries[i];
		assert_non_null(e->api_url);
		assert_non_null(strstr(e->api_url, "/patroni"));
		assert_ptr_equal(pgkeel_failsafe_get(c->failsafe, e->name), e);
	}
	assert_null(pgkeel_failsafe_get(c->failsafe, "no-such-member"));
	assert_true(c->config->valid);
	assert_true(json_object_object_get_ex(c->config->data, "failsafe_mode", &fm));
	assert_true(json_object_get_boolean(fm));
	pgkeel_cluster_unref(c);
}

/* ---- etcd range responses: keys and values base64, versions and leases ---- */

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

static char *b64decode(const char *in, size_t *outlen)
{
	size_t n = strlen(in), o = 0, i;
	char *out = malloc(n + 1);
	uint32_t acc = 0;
	int bits = 0, v;

	assert_non_null(out);
	for (i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		v = b64val((unsigned char)in[i]);
		assert_true(v >= 0);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* A field of a kv as decimal text (etcdctl writes numbers, the gateway strings). */
static const char *kv_text(struct json_object *kv, const char *field)
{
	struct json_object *v;

	if (!json_object_object_get_ex(kv, field, &v) || v == NULL)
		return NULL;
	return json_object_get_string(v);
}

static void check_etcd_range(const char *path)
{
	struct json_object *root, *top, *kvs, *kv;
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	const char *leader_rev = NULL, *leader_lease = NULL, *leader_val = NULL;
	char *text, *prefix = NULL, *leader_name = NULL;
	size_t len, i, n, plen = 0, members = 0;

	print_message("  %s\n", path);
	text = must_slurp(path, &len);
	/* json-c directly: etcd's uint64 cluster_id is beyond what DCS values may hold */
	root = json_tokener_parse(text);
	assert_non_null(root);
	free(text);
	if (!json_object_object_get_ex(root, "result", &top)) /* a watch-style wrapper */
		top = root;
	assert_true(json_object_object_get_ex(top, "kvs", &kvs));
	n = json_object_array_length(kvs);
	/* the cluster prefix: whatever precedes "initialize" */
	for (i = 0; i < n && prefix == NULL; i++) {
		size_t kl;
		char *k = b64decode(kv_text(json_object_array_get_idx(kvs, i), "key"), &kl);

		if (kl > 10 && strcmp(k + kl - 10, "initialize") == 0) {
			prefix = k;
			plen = kl - 10;
		} else {
			free(k);
		}
	}
	assert_non_null(prefix);
	for (i = 0; i < n; i++) {
		size_t kl, vl;
		const char *lease, *rev;
		char *k, *v;

		kv = json_object_array_get_idx(kvs, i);
		k = b64decode(kv_text(kv, "key"), &kl);
		v = b64decode(kv_text(kv, "value") ? kv_text(kv, "value") : "", &vl);
		rev = kv_text(kv, "mod_revision");
		lease = kv_text(kv, "lease");
		assert_true(kl > plen && memcmp(k, prefix, plen) == 0);
		add_raw(b, k + plen, v, vl, rev, lease);
		if (strcmp(k + plen, "leader") == 0) {
			leader_rev = rev;
			leader_lease = lease;
			leader_name = strdup(v);
			leader_val = leader_name;
		}
		if (strncmp(k + plen, "members/", 8) == 0)
			members++;
		free(k);
		free(v);
	}
	c = pgkeel_cluster_builder_finish(b);
	print_warnings(c);
	assert_int_equal(c->n_warnings_total, 0);
	assert_int_equal(c->n_members, members);
	assert_non_null(c->initialize);
	assert_true(strlen(c->initialize) >= 10);
	if (leader_val != NULL) {
		assert_string_equal(pgkeel_cluster_leader_name(c), leader_val);
		assert_string_equal(c->leader->version, leader_rev);
		assert_non_null(leader_lease);
		assert_string_equal(c->leader->owner, leader_lease);
		assert_non_null(c->leader->member);
		/* the leader's member key is bound to the same lease */
		assert_string_equal(c->leader->member->owner, leader_lease);
	}
	for (i = 0; i < n; i++) {
		size_t kl;
		char *k;

		kv = json_object_array_get_idx(kvs, i);
		k = b64decode(kv_text(kv, "key"), &kl);
		if (strncmp(k + plen, "members/", 8) == 0) {
			const struct pgkeel_member *m = pgkeel_cluster_get_member(c, k + plen + 8);

			assert_non_null(m);
			assert_string_equal(m->version, kv_text(kv, "mod_revision"));
			assert_non_null(m->d.api_url);
			assert_false(m->malformed);
		}
		if (strcmp(k + plen, "config") == 0) {
			assert_non_null(c->config);
			assert_true(c->config->valid);
			assert_string_equal(c->config->version, kv_text(kv, "mod_revision"));
		}
		free(k);
	}
	free(prefix);
	free(leader_name);
	json_object_put(root);
	pgkeel_cluster_unref(c);
}

static void test_captured_etcd_ranges(void **state)
{
	DIR *d = opendir(CAPTURED);
	struct dirent *de;
	char path[512];
	int seen = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, "range") == NULL ||
		    !pgkeel_str_has_suffix(de->d_name, ".json"))
			continue;
		assert_true(pgkeel_fmt(path, sizeof(path), "%s/%s", CAPTURED, de->d_name));
		check_etcd_range(path);
		seen++;
	}
	closedir(d);
	assert_true(seen >= 1);
}

/* ---- round trip: decode what Patroni wrote, encode it, compare bytes ---- */

/* Decode one value as its key, encode it back with the encoder the core uses. */
static char *reencode(const char *key, const char *value, size_t len, bool spaced)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	char *out = NULL;

	add_raw(b, key, value, len, "7", NULL);
	c = pgkeel_cluster_builder_finish(b);
	print_warnings(c);
	assert_int_equal(c->n_warnings_total, 0);
	if (strncmp(key, "members/", 8) == 0) {
		assert_int_equal(c->n_members, 1);
		out = pgkeel_member_data_encode(&c->members[0].d);
	} else if (strcmp(key, "sync") == 0) {
		out = pgkeel_sync_encode(c->sync.leader, (const char *const *)c->sync.standbys,
		                         c->sync.n_standbys);
	} else if (strcmp(key, "status") == 0) {
		out = pgkeel_status_encode(c->status.last_lsn, c->status.slots);
	} else if (strcmp(key, "failover") == 0) {
		assert_non_null(c->failover);
		out = pgkeel_failover_encode(c->failover->leader, c->failover->candidate,
		                             c->failover->scheduled_at);
	} else if (strcmp(key, "failsafe") == 0) {
		assert_non_null(c->failsafe);
		out = pgkeel_failsafe_encode(c->failsafe->entries, c->failsafe->n_entries);
	} else if (strcmp(key, "history") == 0) {
		assert_non_null(c->history);
		out = pgkeel_history_encode(c->history->lines, c->history->n_lines);
	} else if (strcmp(key, "config") == 0) {
		assert_true(c->config->valid);
		out = spaced ? pgkeel_json_spaced(c->config->data)
		             : pgkeel_json_compact(c->config->data);
	} else {
		fail_msg("no encoder for %s", key);
	}
	pgkeel_cluster_unref(c);
	return out;
}

/* config_spaced: the config key was last written by patronictl edit-config */
static int roundtrip_dir(const char *dir, bool config_spaced)
{
	static const struct {
		const char *file, *key;
	} keys[] = {
		{ "status.json", "status" },     { "sync.json", "sync" },
		{ "failover.json", "failover" }, { "failsafe.json", "failsafe" },
		{ "history.json", "history" },   { "config.json", "config" },
	};
	char path[512], key[256];
	struct dirent *de;
	DIR *d;
	size_t i, len;
	int done = 0;

	for (i = 0; i < PGKEEL_ARRAY_LEN(keys); i++) {
		char *v, *out;

		assert_true(pgkeel_fmt(path, sizeof(path), "%s/%s", dir, keys[i].file));
		v = slurp(path, &len);
		if (v == NULL)
			continue;
		out = reencode(keys[i].key, v, len, config_spaced);
		print_message("  %s: %s\n", path, out);
		assert_string_equal(out, v);
		assert_int_equal(strlen(out), len);
		free(out);
		free(v);
		done++;
	}
	assert_true(pgkeel_fmt(path, sizeof(path), "%s/members", dir));
	d = opendir(path);
	if (d == NULL)
		return done;
	while ((de = readdir(d)) != NULL) {
		char *v, *out;
		size_t n = strlen(de->d_name);

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		assert_true(pgkeel_fmt(key, sizeof(key), "members/%.*s", (int)(n - 5), de->d_name));
		assert_true(pgkeel_fmt(path, sizeof(path), "%s/members/%s", dir, de->d_name));
		v = must_slurp(path, &len);
		out = reencode(key, v, len, false);
		print_message("  %s: %s\n", path, out);
		assert_string_equal(out, v);
		assert_int_equal(strlen(out), len);
		free(out);
		free(v);
		done++;
	}
	closedir(d);
	return done;
}

static void test_captured_roundtrip(void **state)
{
	(void)state;
	/* bootstrap: 3 members + status, sync, config (compact: written by the bootstrap) */
	assert_int_equal(roundtrip_dir(CAPTURED, false), 6);
	/* + failover {} and history; config unchanged */
	assert_int_equal(roundtrip_dir(CAPTURED "/after-switchover", false), 8);
	/* failsafe, and config as `patronictl edit-config` wrote it: json.dumps default spacing */
	assert_int_equal(roundtrip_dir(CAPTURED "/after-failsafe", true), 2);
}

/* Patroni's other JSON, rendered with default spacing: dynamic.json and REST answers. */
static void test_captured_spaced(void **state)
{
	static const char *const files[] = {
		CAPTURED "/dynamic.json",
		CAPTURED "/after-failsafe/dynamic.json",
		CAPTURED "/rest-patroni-leader.json",
		CAPTURED "/rest-patroni-replica.json",
		CAPTURED "/rest-patroni-replica-async.json",
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < PGKEEL_ARRAY_LEN(files); i++) {
		char *v = must_slurp(files[i], &len), *out;
		struct json_object *o = parse_ok(v);

		out = pgkeel_json_spaced(o);
		assert_string_equal(out, v);
		free(out);
		out = pgkeel_json_compact(o);
		assert_string_not_equal(out, v);
		free(out);
		json_object_put(o);
		free(v);
	}
}

/* ------------------------------------------------------------------------ */
/* JSON as Python writes it */

static void test_json_compact_python_table(void **state)
{
	FILE *f = fopen(OURDATA "/json-compact.tsv", "rb");
	char line[4096];
	int cases = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tab = strchr(line, '\t'), *tab2, *nl, *out;
		struct json_object *o;

		assert_non_null(tab);
		*tab = '\0';
		tab2 = strchr(tab + 1, '\t');
		assert_non_null(tab2);
		*tab2 = '\0';
		nl = strchr(tab2 + 1, '\n');
		assert_non_null(nl);
		*nl = '\0';
		o = parse_ok(line);
		out = pgkeel_json_compact(o);
		if (strcmp(out, tab + 1) != 0)
			fail_msg("input %s\n  python %s\n  pgkeel %s", line, tab + 1, out);
		free(out);
		out = pgkeel_json_spaced(o);
		if (strcmp(out, tab2 + 1) != 0)
			fail_msg("input %s\n  python %s\n  pgkeel %s", line, tab2 + 1, out);
		free(out);
		json_object_put(o);
		cases++;
	}
	fclose(f);
	assert_true(cases >= 20);
}

static void test_json_compact_not_parsed(void **state)
{
	struct json_object *o = json_object_new_object();
	char *out;

	(void)state;
	/* objects built in C, not parsed: strings with NUL, raw non-UTF-8, uint64 */
	json_object_object_add(o, "nul", json_object_new_string_len("a\0b", 3));
	json_object_object_add(o, "bad", json_object_new_string("\xff"));
	json_object_object_add(o, "u64", json_object_new_uint64(18446744073709551615ULL));
	json_object_object_add(o, "i64", json_object_new_int64(INT64_MAX));
	json_object_object_add(o, "d", json_object_new_double(2.0));
	json_object_object_add(o, "n", NULL);
	out = pgkeel_json_compact(o);
	assert_string_equal(out, "{\"nul\":\"a\\u0000b\",\"bad\":\"\\ufffd\","
	                         "\"u64\":18446744073709551615,\"i64\":9223372036854775807,"
	                         "\"d\":2.0,\"n\":null}");
	free(out);
	json_object_put(o);
	out = pgkeel_json_compact(NULL);
	assert_string_equal(out, "null");
	free(out);
}

static void test_json_parse_strictness(void **state)
{
	static const struct {
		const char *text;
		size_t len;
		const char *err;
	} bad[] = {
		{ "", 0, "unexpected end" },
		{ "   ", 3, "unexpected end" },
		{ "{", 1, "unexpected end" },
		{ "{} x", 4, "unexpected character at offset 3" },
		{ "{}\n\n}", 5, "at offset 4" },
		{ "[1,]", 4, "not JSON" },
		{ "{'a':1}", 7, "single-quoted" },
		{ "\"a\tb\"", 5, "control character" },
		{ "[1.]", 4, "malformed number" },
		{ "99999999999999999999", 20, "out of range" },
		{ "[-9223372036854775809]", 22, "out of range" },
		{ "{\"a\":9223372036854775808}", 25, "out of range" },
		{ "{\"a\":1}\0", 8, "NUL byte at offset 7" },
		{ "\"\xc3\x28\"", 4, "invalid UTF-8 at offset 1" },
		{ "\"\xed\xa0\x80\"", 5, "invalid UTF-8" }, /* encoded surrogate */
		{ "\"\xc0\xaf\"", 4, "invalid UTF-8" },     /* overlong '/' */
		{ "nan", 3, "not JSON" },
		{ "True", 4, "not JSON" },
		{ "/* c */ 1", 9, "not JSON" },
		{ "01", 2, "not JSON" },
		{ "\"\\x41\"", 6, "not JSON" },
		{ "[1]\v", 4, "control character" },
	};
	static const char *const good[] = {
		"9223372036854775807", "-9223372036854775808", "1e400", "-0", "NaN",
		" {\"a\" : [ ] }\r\n", "\"\\ud800\"", "null",
	};
	struct json_object *o;
	char err[160];
	size_t i;

	(void)state;
	for (i = 0; i < PGKEEL_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		o = (struct json_object *)0x1;
		if (pgkeel_json_parse(bad[i].text, bad[i].len, &o, err, sizeof(err)))
			fail_msg("accepted %s", bad[i].text);
		assert_null(o);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("%s: error \"%s\", expected \"%s\"", bad[i].text, err, bad[i].err);
	}
	for (i = 0; i < PGKEEL_ARRAY_LEN(good); i++) {
		if (!pgkeel_json_parse(good[i], strlen(good[i]), &o, err, sizeof(err)))
			fail_msg("refused %s: %s", good[i], err);
		json_object_put(o);
	}
}

/* ------------------------------------------------------------------------ */
/* encoders against Python's output (see the report of gen-json-compact.py) */

static void test_encode_member(void **state)
{
	struct pgkeel_member_data d;
	struct json_object *tags = parse_ok("{\"nofailover\":false,\"dc\":\"\xc3\xa9\"}");
	struct json_object *sr =
		parse_ok("{\"schedule\":\"2026-11-25T10:00:00+00:00\","
		         "\"postmaster_start_time\":\"2026-11-25 09:00:00.123+00:00\"}");
	struct json_object *empty = parse_ok("{}");
	char *out;

	(void)state;
	pgkeel_member_data_init(&d);
	d.conn_url = "postgres://h:5432/postgres";
	d.api_url = "http://h:8008/patroni";
	d.state = "running";
	d.role = "master";
	d.version = "3.0.2";
	d.proxy_url = "postgres://p:6432/postgres";
	d.checkpoint_after_promote = PGKEEL_TRI_FALSE;
	d.tags = tags;
	d.pending_restart = true;
	d.xlog_location = 50331744;
	d.timeline = 2;
	d.scheduled_restart = sr;
	d.pause = true;
	out = pgkeel_member_data_encode(&d);
	assert_string_equal(out,
	        "{\"conn_url\":\"postgres://h:5432/postgres\","
	        "\"api_url\":\"http://h:8008/patroni\","
	        "\"state\":\"running\",\"role\":\"master\",\"version\":\"3.0.2\","
	        "\"proxy_url\":\"postgres://p:6432/postgres\",\"checkpoint_after_promote\":false,"
	        "\"tags\":{\"nofailover\":false,\"dc\":\"\\u00e9\"},\"pending_restart\":true,"
	        "\"xlog_location\":50331744,\"timeline\":2,"
	        "\"scheduled_restart\":{\"schedule\":\"2026-11-25T10:00:00+00:00\","
	        "\"postmaster_start_time\":\"2026-11-25 09:00:00.123+00:00\"},\"pause\":true}");
	free(out);

	/* Patroni always writes the first five, null when unknown; empty tags are left out */
	pgkeel_member_data_init(&d);
	d.state = "stopped";
	d.role = "uninitialized";
	d.version = "3.0.2";
	d.tags = empty;
	out = pgkeel_member_data_encode(&d);
	assert_string_equal(out, "{\"conn_url\":null,\"api_url\":null,\"state\":\"stopped\","
	                         "\"role\":\"uninitialized\",\"version\":\"3.0.2\"}");
	free(out);

	/* >= 3.0.4 field order: replication_state between xlog_location and timeline */
	pgkeel_member_data_init(&d);
	d.xlog_location = 0;
	d.replication_state = "streaming";
	d.timeline = 1;
	out = pgkeel_member_data_encode(&d);
	assert_non_null(strstr(out, "\"xlog_location\":0,\"replication_state\":\"streaming\","
	                            "\"timeline\":1}"));
	free(out);
	json_object_put(tags);
	json_object_put(sr);
	json_object_put(empty);
}

/* The tags a member publishes; what the capture's pg-2 and pg-3 were configured with. */
static void test_tags_effective(void **state)
{
	static const struct {
		const char *configured;
		bool disable_sync;
		const char *published;
	} cases[] = {
		/* pg-2 of the capture: all falsy, so its member value has no tags */
		{ "{\"nofailover\":false,\"noloadbalance\":false,\"clonefrom\":false,"
		  "\"nosync\":false}", false, "{}" },
		{ "{\"dc\":\"dc3\"}", false, "{\"dc\":\"dc3\"}" },
		{ "{\"nofailover\":true,\"dc\":\"x\",\"custom\":false,\"replicatefrom\":\"a\"}",
		  false,
		  "{\"nofailover\":true,\"dc\":\"x\",\"custom\":false,\"replicatefrom\":\"a\"}" },
		{ "{\"nosync\":false,\"dc\":\"x\"}", true, "{\"dc\":\"x\",\"nosync\":true}" },
		{ "{\"nosync\":1,\"dc\":\"x\"}", true, "{\"nosync\":true,\"dc\":\"x\"}" },
		{ "{\"clonefrom\":\"false\",\"noloadbalance\":0}", false,
		  "{\"clonefrom\":\"false\"}" },
		{ NULL, true, "{\"nosync\":true}" },
		{ NULL, false, "{}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		struct json_object *conf =
			cases[i].configured ? parse_ok(cases[i].configured) : NULL;
		struct json_object *eff = pgkeel_member_tags_effective(conf, cases[i].disable_sync);
		char *out = pgkeel_json_compact(eff);

		json_object_put(conf); /* the result shares nothing with it */
		if (strcmp(out, cases[i].published) != 0)
			fail_msg("tags %s: published %s, expected %s", cases[i].configured, out,
			         cases[i].published);
		free(out);
		json_object_put(eff);
	}
}

/* Encode pg-2 and pg-3 of the capture from their configuration, as a node would. */
static void test_encode_captured_members_from_config(void **state)
{
	static const struct {
		const char *file, *configured_tags, *conn_url, *api_url, *role;
	} nodes[] = {
		{ CAPTURED "/members/pg-2.json",
		  "{\"nofailover\":false,\"noloadbalance\":false,\"clonefrom\":false,"
		  "\"nosync\":false}",
		  "postgres://127.0.0.1:25502/postgres", "http://127.0.0.1:28102/patroni",
		  "replica" },
		{ CAPTURED "/members/pg-3.json", "{\"dc\":\"dc3\"}",
		  "postgres://127.0.0.1:25503/postgres", "http://127.0.0.1:28103/patroni",
		  "replica" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < PGKEEL_ARRAY_LEN(nodes); i++) {
		struct json_object *conf = parse_ok(nodes[i].configured_tags);
		struct json_object *tags = pgkeel_member_tags_effective(conf, false);
		struct pgkeel_member_data d;
		char *want = must_slurp(nodes[i].file, NULL), *out;

		pgkeel_member_data_init(&d);
		d.conn_url = nodes[i].conn_url;
		d.api_url = nodes[i].api_url;
		d.state = "running";
		d.role = nodes[i].role;
		d.version = "3.0.2";
		d.tags = tags;
		d.xlog_location = 67109000;
		d.timeline = 1;
		out = pgkeel_member_data_encode(&d);
		assert_string_equal(out, want);
		free(out);
		free(want);
		json_object_put(tags);
		json_object_put(conf);
	}
}

static void test_encode_others(void **state)
{
	const char *standbys[] = { "pg-3", "pg-10", "PG-2" };
	const char *one[] = { "pg-2" };
	struct pgkeel_failsafe_entry fs[] = {
		{ .name = "pg-1", .api_url = "http://127.0.0.1:8008/patroni" },
		{ .name = "pg-2", .api_url = "http://127.0.0.1:8009/patroni" },
	};
	struct pgkeel_history_line lines[] = {
		{ .timeline = 1, .lsn = 25165984, .reason = "no recovery target specified",
		  .timestamp = "2026-11-25T21:04:47.207305+00:00", .new_leader = "pg-2",
		  .n_fields = 5, .valid = true },
		{ .timeline = 7, .lsn = 1, .valid = false },
		{ .timeline = 2, .lsn = 50331744, .reason = "no recovery target specified",
		  .n_fields = 3, .valid = true },
	};
	struct json_object *slots = parse_ok("{\"logical_slot\":67108000,\"pg_2\":67109000}");
	struct json_object *noslots = parse_ok("{}");
	char *out;

	(void)state;
	out = pgkeel_failover_encode(NULL, NULL, NULL);
	assert_string_equal(out, "{}");
	free(out);
	out = pgkeel_failover_encode("", "pg-2", "");
	assert_string_equal(out, "{\"member\":\"pg-2\"}");
	free(out);
	out = pgkeel_failover_encode("pg-1", "pg-2", "2026-11-25T22:00:00+00:00");
	assert_string_equal(out, "{\"leader\":\"pg-1\",\"member\":\"pg-2\","
	                         "\"scheduled_at\":\"2026-11-25T22:00:00+00:00\"}");
	free(out);

	out = pgkeel_sync_encode("pg-1", standbys, 3);
	assert_string_equal(out, "{\"leader\":\"pg-1\",\"sync_standby\":\"PG-2,pg-10,pg-3\"}");
	free(out);
	out = pgkeel_sync_encode("pg-1", one, 1);
	assert_string_equal(out, "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}");
	free(out);
	out = pgkeel_sync_encode("pg-1", NULL, 0);
	assert_string_equal(out, "{\"leader\":\"pg-1\",\"sync_standby\":null}");
	free(out);
	out = pgkeel_sync_encode(NULL, NULL, 0);
	assert_string_equal(out, "{\"leader\":null,\"sync_standby\":null}");
	free(out);

	out = pgkeel_status_encode(67109000, NULL);
	assert_string_equal(out, "{\"optime\":67109000}");
	free(out);
	out = pgkeel_status_encode(67109000, noslots);
	assert_string_equal(out, "{\"optime\":67109000}");
	free(out);
	out = pgkeel_status_encode(67109000, slots);
	assert_string_equal(out, "{\"optime\":67109000,"
	                         "\"slots\":{\"logical_slot\":67108000,\"pg_2\":67109000}}");
	free(out);

	out = pgkeel_failsafe_encode(fs, 2);
	assert_string_equal(out, "{\"pg-1\":\"http://127.0.0.1:8008/patroni\","
	                         "\"pg-2\":\"http://127.0.0.1:8009/patroni\"}");
	free(out);
	out = pgkeel_failsafe_encode(NULL, 0);
	assert_string_equal(out, "{}");
	free(out);

	out = pgkeel_history_encode(lines, 3);
	assert_string_equal(out, "[[1,25165984,\"no recovery target specified\","
	                         "\"2026-11-25T21:04:47.207305+00:00\",\"pg-2\"],"
	                         "[2,50331744,\"no recovery target specified\"]]");
	free(out);
	out = pgkeel_history_encode(NULL, 0);
	assert_string_equal(out, "[]");
	free(out);
	json_object_put(slots);
	json_object_put(noslots);
}

/* ------------------------------------------------------------------------ */
/* parsing rules and derived facts */

static struct pgkeel_cluster *one(const char *key, const char *value)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

	add(b, key, value);
	return pgkeel_cluster_builder_finish(b);
}

static void test_timeline(void **state)
{
	static const struct {
		const char *history;
		int64_t timeline;
	} cases[] = {
		{ "[]", 1 },
		{ "[[1,25165984,\"no recovery target specified\"]]", 2 },
		{ "[[1,25165984,\"r\"],"
		  "[2,50331744,\"r\",\"2026-11-25T21:04:47+00:00\",\"pg-2\"]]", 3 },
		{ "[[\"4\",\"50331744\",\"r\"]]", 5 },  /* Python's int() takes numeric strings */
		{ "[[1,\"x\",\"r\"]]", 2 },              /* the timeline alone decides */
		{ " [ ]", 0 },                           /* only the exact text [] is timeline 1 */
		{ "[[\"a\"]]", 0 },
		{ "[[]]", 0 },
		{ "[5]", 0 },
		{ "{}", 0 },
		{ "garbage", 0 },
	};
	struct pgkeel_cluster *c;
	size_t i;

	(void)state;
	for (i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		c = one("history", cases[i].history);
		if (pgkeel_cluster_timeline(c) != cases[i].timeline)
			fail_msg("history %s: timeline %lld, expected %lld",
			         cases[i].history, (long long)pgkeel_cluster_timeline(c),
			         (long long)cases[i].timeline);
		pgkeel_cluster_unref(c);
	}
	c = pgkeel_cluster_new_empty();
	assert_int_equal(pgkeel_cluster_timeline(c), 0);
	pgkeel_cluster_unref(c);
}

static void test_versions(void **state)
{
	static const char *const bad[] = { "", "3.0.2rc1", "1.2.3.4", "1000.0", "3..2", ".3",
		                           "3.", "v3", "3.0.2 ", "-1" };
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c;
	int64_t v = -7;
	size_t i;

	(void)state;
	assert_true(pgkeel_version_parse("3.0.2", &v));
	assert_int_equal(v, 3000002);
	assert_true(pgkeel_version_parse("2.1", &v));
	assert_int_equal(v, PGKEEL_VERSION_NUM(2, 1, 0));
	assert_true(pgkeel_version_parse("10", &v));
	assert_int_equal(v, PGKEEL_VERSION_NUM(10, 0, 0));
	assert_true(PGKEEL_VERSION_NUM(1, 5, 6) < PGKEEL_VERSION_NUM(1, 6, 0));
	for (i = 0; i < PGKEEL_ARRAY_LEN(bad); i++) {
		v = -7;
		if (pgkeel_version_parse(bad[i], &v))
			fail_msg("accepted version \"%s\"", bad[i]);
		assert_int_equal(v, -7);
	}
	assert_false(pgkeel_version_parse(NULL, &v));

	b = pgkeel_cluster_builder_new();
	add(b, "members/a", "{\"version\":\"3.0.2\"}");
	add(b, "members/b", "{\"version\":\"junk\"}");
	add(b, "members/c", "{\"version\":\"2.0.1\"}");
	add(b, "members/d", "{}");
	c = pgkeel_cluster_builder_finish(b);
	assert_int_equal(pgkeel_cluster_min_version(c), PGKEEL_VERSION_NUM(2, 0, 1));
	pgkeel_cluster_unref(c);
	c = one("members/a", "{\"version\":\"x\"}");
	assert_int_equal(pgkeel_cluster_min_version(c), -1);
	pgkeel_cluster_unref(c);
}

static void test_sync_rules(void **state)
{
	struct pgkeel_cluster *c;

	(void)state;
	c = one("sync", "{\"leader\":\"pg-1\",\"sync_standby\":\" pg-2, PG-3 ,,\"}");
	assert_int_equal(c->sync.n_standbys, 2);
	assert_string_equal(c->sync.standbys[0], "pg-2");
	assert_string_equal(c->sync.standbys[1], "PG-3");
	assert_string_equal(c->sync.version, "1");
	assert_true(pgkeel_sync_matches(&c->sync, "pg-3", false));
	assert_true(pgkeel_sync_matches(&c->sync, "Pg-2", false));
	assert_false(pgkeel_sync_matches(&c->sync, "pg-2x", false));
	assert_false(pgkeel_sync_matches(&c->sync, "pg-", false));
	assert_false(pgkeel_sync_matches(&c->sync, "PG-1", false));
	assert_true(pgkeel_sync_matches(&c->sync, "PG-1", true));
	assert_false(pgkeel_sync_matches(&c->sync, NULL, true));
	pgkeel_cluster_unref(c);

	c = one("sync", "{\"leader\":\"pg-1\",\"sync_standby\":null}");
	assert_string_equal(c->sync.leader, "pg-1");
	assert_int_equal(c->sync.n_standbys, 0);
	assert_false(pgkeel_sync_matches(&c->sync, "pg-2", false));
	assert_true(pgkeel_sync_matches(&c->sync, "pg-1", true));
	pgkeel_cluster_unref(c);

	/* empty state (no leader) matches nothing, but keeps its version for the CAS */
	c = one("sync", "{}");
	assert_true(c->sync.present);
	assert_null(c->sync.leader);
	assert_string_equal(c->sync.version, "1");
	assert_false(pgkeel_sync_matches(&c->sync, "pg-1", true));
	pgkeel_cluster_unref(c);

	/* standbys without a leader are still the empty state */
	c = one("sync", "{\"sync_standby\":\"pg-2\"}");
	assert_null(c->sync.leader);
	assert_int_equal(c->sync.n_standbys, 0);
	assert_false(pgkeel_sync_matches(&c->sync, "pg-2", false));
	pgkeel_cluster_unref(c);

	/* [4.x] quorum */
	c = one("sync", "{\"leader\":\"a\",\"quorum\":1,\"sync_standby\":\"b,c\"}");
	assert_int_equal(c->sync.quorum, 1);
	assert_int_equal(c->sync.n_standbys, 2);
	pgkeel_cluster_unref(c);

	c = pgkeel_cluster_new_empty();
	assert_false(c->sync.present);
	assert_null(c->sync.version);
	assert_false(pgkeel_sync_matches(&c->sync, "pg-1", true));
	pgkeel_cluster_unref(c);
}

static void test_failover_rules(void **state)
{
	struct pgkeel_cluster *c;

	(void)state;
	c = one("failover", "{}");
	assert_non_null(c->failover);
	assert_false(pgkeel_failover_is_request(c->failover));
	assert_string_equal(c->failover->version, "1");
	pgkeel_cluster_unref(c);

	c = one("failover", "");
	assert_non_null(c->failover);
	assert_false(pgkeel_failover_is_request(c->failover));
	pgkeel_cluster_unref(c);

	c = one("failover", "{\"scheduled_at\":\"2026-11-25T22:00:00+00:00\"}");
	assert_false(pgkeel_failover_is_request(c->failover));
	assert_string_equal(c->failover->scheduled_at, "2026-11-25T22:00:00+00:00");
	pgkeel_cluster_unref(c);

	c = one("failover", "{\"leader\":\"\",\"member\":\"pg-2\"}");
	assert_true(pgkeel_failover_is_request(c->failover));
	assert_null(c->failover->leader);
	assert_string_equal(c->failover->candidate, "pg-2");
	assert_false(c->failover->legacy);
	pgkeel_cluster_unref(c);

	c = one("failover", "{\"leader\":\"pg-1\"}");
	assert_true(pgkeel_failover_is_request(c->failover));
	assert_null(c->failover->candidate);
	pgkeel_cluster_unref(c);

	/* legacy "leader:candidate" */
	c = one("failover", " pg-1 : pg-2 :x");
	assert_true(c->failover->legacy);
	assert_string_equal(c->failover->leader, "pg-1");
	assert_string_equal(c->failover->candidate, "pg-2");
	assert_int_equal(c->n_warnings_total, 0);
	pgkeel_cluster_unref(c);
	c = one("failover", "pg-1");
	assert_string_equal(c->failover->leader, "pg-1");
	assert_null(c->failover->candidate);
	pgkeel_cluster_unref(c);
	c = one("failover", ":pg-2");
	assert_null(c->failover->leader);
	assert_string_equal(c->failover->candidate, "pg-2");
	pgkeel_cluster_unref(c);
	c = one("failover", " : ");
	assert_null(c->failover); /* Patroni: no Failover object */
	pgkeel_cluster_unref(c);
	/* JSON but not an object: {} */
	c = one("failover", "null");
	assert_non_null(c->failover);
	assert_false(pgkeel_failover_is_request(c->failover));
	pgkeel_cluster_unref(c);
}

static void test_member_rules(void **state)
{
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c;
	const struct pgkeel_member *m;

	(void)state;
	/* legacy Governor connection URL */
	c = one("members/old", "postgres://u:p@10.0.0.1:5432/postgres?application_name="
	                       "http%3A%2F%2F10.0.0.1%3A8008%2Fpatroni");
	m = pgkeel_cluster_get_member(c, "old");
	assert_non_null(m);
	assert_true(m->legacy_url);
	assert_string_equal(m->d.conn_url, "postgres://u:p@10.0.0.1:5432/postgres");
	assert_string_equal(m->d.api_url, "http://10.0.0.1:8008/patroni");
	assert_null(m->d.state);
	assert_int_equal(c->n_warnings_total, 0);
	pgkeel_cluster_unref(c);
	c = one("members/old", "postgres://u:p@10.0.0.1:5432/postgres?x=1&application_name="
	                       "&application_name=http://a+b:1/patroni#frag");
	m = pgkeel_cluster_get_member(c, "old");
	assert_string_equal(m->d.conn_url, "postgres://u:p@10.0.0.1:5432/postgres#frag");
	assert_string_equal(m->d.api_url, "http://a b:1/patroni");
	pgkeel_cluster_unref(c);
	c = one("members/old", "postgresql://10.0.0.1:5432/postgres");
	m = pgkeel_cluster_get_member(c, "old");
	assert_string_equal(m->d.conn_url, "postgresql://10.0.0.1:5432/postgres");
	assert_null(m->d.api_url);
	pgkeel_cluster_unref(c);

	/* unknown fields stay reachable through data */
	c = one("members/n", "{\"conn_url\":\"postgres://h:1/p\",\"receive_lsn\":5,"
	                     "\"tags\":{\"nofailover\":true,\"replicatefrom\":\"pg-1\","
	                     "\"clonefrom\":0,\"nosync\":\"\"},\"checkpoint_after_promote\":false,"
	                     "\"pending_restart\":true,\"pause\":true}");
	m = pgkeel_cluster_get_member(c, "n");
	{
		struct json_object *v;

		assert_true(json_object_object_get_ex(m->data, "receive_lsn", &v));
		assert_int_equal(json_object_get_int64(v), 5);
	}
	assert_true(pgkeel_member_tag_truthy(&m->d, "nofailover"));
	assert_false(pgkeel_member_tag_truthy(&m->d, "clonefrom"));
	assert_false(pgkeel_member_tag_truthy(&m->d, "nosync"));
	assert_false(pgkeel_member_tag_truthy(&m->d, "absent"));
	assert_string_equal(pgkeel_member_tag_string(&m->d, "replicatefrom"), "pg-1");
	assert_null(pgkeel_member_tag_string(&m->d, "nofailover"));
	assert_int_equal(m->d.checkpoint_after_promote, PGKEEL_TRI_FALSE);
	assert_true(m->d.pending_restart);
	assert_true(m->d.pause);
	assert_int_equal(m->d.xlog_location, -1);
	assert_int_equal(m->d.timeline, 0);
	pgkeel_cluster_unref(c);

	/* a repeated key replaces; members/<a>/<b> and unknown keys are ignored */
	b = pgkeel_cluster_builder_new();
	add(b, "members/x", "{\"role\":\"replica\"}");
	add(b, "members/x", "{\"role\":\"master\"}");
	add(b, "members/x/extra", "{}");
	add(b, "foo", "bar");
	add(b, "optime/other", "1");
	add(b, "membersx", "{}");
	c = pgkeel_cluster_builder_finish(b);
	assert_int_equal(c->n_members, 1);
	assert_string_equal(c->members[0].d.role, "master");
	assert_int_equal(c->n_warnings_total, 0);
	pgkeel_cluster_unref(c);
}

static void test_leader_rules(void **state)
{
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c;

	(void)state;
	/* a leader with no member key is still the leader */
	c = one("leader", "pg-9");
	assert_false(pgkeel_cluster_is_unlocked(c));
	assert_string_equal(pgkeel_cluster_leader_name(c), "pg-9");
	assert_null(c->leader->member);
	pgkeel_cluster_unref(c);

	/* Kubernetes: a leader object naming nobody is unlocked */
	c = one("leader", "");
	assert_non_null(c->leader);
	assert_true(pgkeel_cluster_is_unlocked(c));
	assert_null(pgkeel_cluster_leader_name(c));
	pgkeel_cluster_unref(c);

	c = pgkeel_cluster_new_empty();
	assert_true(pgkeel_cluster_is_unlocked(c));
	assert_true(pgkeel_cluster_is_empty(c));
	assert_int_equal(pgkeel_cluster_min_version(c), -1);
	pgkeel_cluster_unref(c);

	/* leader before its member key: resolved at finish; owner and version copied */
	b = pgkeel_cluster_builder_new();
	add_raw(b, "leader", "pg-2", 4, "41", "lease-7");
	add_raw(b, "members/pg-2", "{\"role\":\"master\"}", 17, "40", "lease-7");
	c = pgkeel_cluster_builder_finish(b);
	assert_non_null(c->leader->member);
	assert_string_equal(c->leader->member->d.role, "master");
	assert_string_equal(c->leader->owner, "lease-7");
	assert_string_equal(c->leader->version, "41");
	assert_string_equal(c->leader->member->version, "40");
	pgkeel_cluster_unref(c);
}

static void test_status_rules(void **state)
{
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c;
	struct json_object *v;

	(void)state;
	/* legacy optime/leader when there is no status key */
	c = one("optime/leader", "123");
	assert_int_equal(c->status.last_lsn, 123);
	assert_int_equal(c->status.optime_leader, 123);
	assert_false(c->status.present);
	pgkeel_cluster_unref(c);

	/* status wins over optime/leader, in either order */
	b = pgkeel_cluster_builder_new();
	add(b, "status", "{\"optime\":456}");
	add(b, "optime/leader", "123");
	c = pgkeel_cluster_builder_finish(b);
	assert_int_equal(c->status.last_lsn, 456);
	pgkeel_cluster_unref(c);

	c = one("status", "789"); /* bare number */
	assert_int_equal(c->status.last_lsn, 789);
	pgkeel_cluster_unref(c);

	c = one("status", "{\"optime\":\"1000\"}"); /* numeric string, as int() */
	assert_int_equal(c->status.last_lsn, 1000);
	pgkeel_cluster_unref(c);

	c = one("status",
	        "{\"optime\":5,\"slots\":{\"s1\":4,\"s2\":3},\"retain_slots\":[\"pg_2\"]}");
	assert_non_null(c->status.slots);
	assert_true(json_object_object_get_ex(c->status.slots, "s2", &v));
	assert_int_equal(json_object_get_int64(v), 3);
	assert_non_null(c->status.retain_slots);
	assert_int_equal(json_object_array_length(c->status.retain_slots), 1);
	pgkeel_cluster_unref(c);

	c = one("status", "{\"optime\":5,\"slots\":\"{\\\"s1\\\":4}\"}"); /* [4.x] JSON string */
	assert_non_null(c->status.slots);
	assert_true(json_object_object_get_ex(c->status.slots, "s1", &v));
	pgkeel_cluster_unref(c);

	c = one("status", "{\"optime\":5,\"slots\":{}}");
	assert_null(c->status.slots);
	pgkeel_cluster_unref(c);
}

static void test_config_rules(void **state)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_dcs_entry e = {
		.key = "config", .value = "{\"ttl\":20}", .value_len = 10, .version = "5",
		.modify_version = "77", .owner = NULL,
	};
	struct pgkeel_cluster *c;

	(void)state;
	assert_int_equal(pgkeel_cluster_builder_add(b, &e), 0);
	c = pgkeel_cluster_builder_finish(b);
	assert_true(c->config->valid);
	assert_string_equal(c->config->version, "5");
	assert_string_equal(c->config->modify_version, "77");
	assert_string_equal(c->config->raw, "{\"ttl\":20}");
	assert_int_equal(c->config->raw_len, 10);
	pgkeel_cluster_unref(c);
}

static void test_refcount_and_abandon(void **state)
{
	/* the builder is handed to load_cluster as is: the types must match exactly */
	pgkeel_dcs_entry_cb cb = pgkeel_cluster_builder_add;
	struct pgkeel_dcs_entry e = { .key = "leader", .value = "pg-1", .value_len = 4 };
	struct pgkeel_cluster_builder *b;
	struct pgkeel_cluster *c, *r;

	(void)state;
	b = pgkeel_cluster_builder_new();
	assert_int_equal(cb(b, &e), 0);
	c = pgkeel_cluster_builder_finish(b);
	assert_string_equal(pgkeel_cluster_leader_name(c), "pg-1");
	assert_null(c->leader->version);
	pgkeel_cluster_unref(c);

	c = one("members/a", "{\"role\":\"replica\"}");
	r = pgkeel_cluster_ref(c);
	assert_ptr_equal(r, c);
	assert_ptr_equal(pgkeel_cluster_ref(c), c);
	pgkeel_cluster_unref(c);
	pgkeel_cluster_unref(c);
	assert_string_equal(r->members[0].d.role, "replica"); /* still alive */
	pgkeel_cluster_unref(r);
	pgkeel_cluster_unref(NULL);
	assert_null(pgkeel_cluster_ref(NULL));

	b = pgkeel_cluster_builder_new();
	add(b, "members/a", "{}");
	add(b, "config", "{}");
	pgkeel_cluster_builder_free(b); /* load_cluster failed half way */
	pgkeel_cluster_builder_free(NULL);
	assert_int_equal(pgkeel_cluster_builder_add(NULL, NULL), 0);

	c = pgkeel_cluster_builder_finish(NULL);
	assert_true(pgkeel_cluster_is_empty(c));
	pgkeel_cluster_unref(c);
}

/* ------------------------------------------------------------------------ */
/* malformed values from a foreign writer */

struct bad_case {
	const char *key;
	const char *value;
	size_t len;              /* 0: strlen(value) */
	const char *shown_key;   /* as named in the warning; NULL = key */
	const char *warn;        /* expected in that warning */
	void (*check)(const struct pgkeel_cluster *c);
};

/* the baseline cluster every malformed value is dropped into */
static const struct {
	const char *key, *value;
} baseline[] = {
	{ "leader", "pg-1" },
	{ "initialize", "7712249454031023488" },
	{ "config", "{\"ttl\":30,\"loop_wait\":10}" },
	{ "members/pg-1", "{\"conn_url\":\"postgres://127.0.0.1:25501/postgres\","
	                  "\"api_url\":\"http://127.0.0.1:28101/patroni\",\"state\":\"running\","
	                  "\"role\":\"master\",\"version\":\"3.0.2\",\"xlog_location\":67109000,"
	                  "\"timeline\":2}" },
	{ "members/pg-2", "{\"conn_url\":\"postgres://127.0.0.1:25502/postgres\","
	                  "\"api_url\":\"http://127.0.0.1:28102/patroni\",\"state\":\"running\","
	                  "\"role\":\"replica\",\"version\":\"3.0.2\",\"xlog_location\":67109000,"
	                  "\"timeline\":2}" },
	{ "status", "{\"optime\":67109000}" },
	{ "sync", "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}" },
	{ "history", "[[1,25165984,\"no recovery target specified\"]]" },
	{ "failover", "{\"leader\":\"pg-1\",\"member\":\"pg-2\"}" },
	{ "failsafe", "{\"pg-1\":\"http://127.0.0.1:28101/patroni\","
	              "\"pg-2\":\"http://127.0.0.1:28102/patroni\"}" },
};

/* The parts of the baseline a malformed value of another key must not disturb. */
static void check_rest_intact(const struct pgkeel_cluster *c, const char *bad_key)
{
	if (strcmp(bad_key, "leader") != 0) {
		assert_string_equal(pgkeel_cluster_leader_name(c), "pg-1");
		assert_non_null(c->leader->member);
	}
	if (strcmp(bad_key, "members/pg-1") != 0) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(c, "pg-1");

		assert_non_null(m);
		assert_string_equal(m->d.role, "master");
	}
	assert_non_null(pgkeel_cluster_get_member(c, "pg-2")); /* never dropped */
	if (strcmp(bad_key, "config") != 0)
		assert_true(c->config->valid);
	if (strcmp(bad_key, "history") != 0)
		assert_int_equal(pgkeel_cluster_timeline(c), 2);
}

static const struct pgkeel_member *pg2(const struct pgkeel_cluster *c)
{
	const struct pgkeel_member *m = pgkeel_cluster_get_member(c, "pg-2");

	assert_non_null(m);
	return m;
}

static void member_skipped(const struct pgkeel_cluster *c)
{
	const struct pgkeel_member *m = pg2(c);

	/* kept by name, with no data, as Patroni does */
	assert_true(m->malformed);
	assert_null(m->d.api_url);
	assert_null(m->d.role);
	assert_int_equal(m->d.xlog_location, -1);
	assert_int_equal(json_object_object_length(m->data), 0);
	assert_string_equal(m->version, "9");
}

static void member_xlog_dropped(const struct pgkeel_cluster *c)
{
	const struct pgkeel_member *m = pg2(c);

	assert_false(m->malformed);
	assert_int_equal(m->d.xlog_location, -1);
	assert_string_equal(m->d.role, "replica"); /* the rest of the value is used */
}

static void member_tags_dropped(const struct pgkeel_cluster *c)
{
	assert_null(pg2(c)->d.tags);
	assert_false(pgkeel_member_tag_truthy(&pg2(c)->d, "nofailover"));
	assert_string_equal(pg2(c)->d.role, "replica");
}

static void member_timeline_dropped(const struct pgkeel_cluster *c)
{
	assert_int_equal(pg2(c)->d.timeline, 0);
	assert_string_equal(pg2(c)->d.role, "replica");
}

static void member_conn_dropped(const struct pgkeel_cluster *c)
{
	assert_null(pg2(c)->d.conn_url);
	assert_string_equal(pg2(c)->d.api_url, "http://x/patroni");
}

static void member_surrogate_ok(const struct pgkeel_cluster *c)
{
	assert_false(pg2(c)->malformed);
	assert_string_equal(pg2(c)->d.state, "\xef\xbf\xbd");
}

static void config_invalid(const struct pgkeel_cluster *c)
{
	assert_non_null(c->config);
	assert_false(c->config->valid);
	assert_null(c->config->data);
	assert_string_equal(c->config->version, "9"); /* CAS still possible */
}

static void history_tl0(const struct pgkeel_cluster *c)
{
	assert_non_null(c->history);
	assert_int_equal(pgkeel_cluster_timeline(c), 0);
}

static void history_tl2_last_ok(const struct pgkeel_cluster *c)
{
	assert_int_equal(c->history->n_lines, 2);
	assert_false(c->history->lines[0].valid);
	assert_true(c->history->lines[1].valid);
	assert_int_equal(pgkeel_cluster_timeline(c), 2);
}

static void history_reason_dropped(const struct pgkeel_cluster *c)
{
	assert_true(c->history->lines[0].valid);
	assert_null(c->history->lines[0].reason);
	assert_int_equal(pgkeel_cluster_timeline(c), 2);
}

static void status_unknown(const struct pgkeel_cluster *c)
{
	assert_true(c->status.present);
	assert_int_equal(c->status.last_lsn, -1);
	assert_null(c->status.slots);
}

static void status_bad_slot_dropped(const struct pgkeel_cluster *c)
{
	struct json_object *v;

	assert_int_equal(c->status.last_lsn, 1);
	assert_non_null(c->status.slots);
	assert_false(json_object_object_get_ex(c->status.slots, "a", &v));
	assert_true(json_object_object_get_ex(c->status.slots, "b", &v));
	assert_int_equal(json_object_object_length(c->status.slots), 1);
}

static void optime_unknown(const struct pgkeel_cluster *c)
{
	assert_int_equal(c->status.optime_leader, -1);
	assert_int_equal(c->status.last_lsn, 67109000); /* status key still decides */
}

static void sync_empty(const struct pgkeel_cluster *c)
{
	assert_true(c->sync.present);
	assert_null(c->sync.leader);
	assert_int_equal(c->sync.n_standbys, 0);
	assert_string_equal(c->sync.version, "9"); /* for the CAS that rewrites it */
	assert_false(pgkeel_sync_matches(&c->sync, "pg-2", true));
}

static void failover_no_request(const struct pgkeel_cluster *c)
{
	assert_non_null(c->failover);
	assert_false(pgkeel_failover_is_request(c->failover));
	assert_string_equal(c->failover->version, "9");
}

static void failover_member_only(const struct pgkeel_cluster *c)
{
	assert_null(c->failover->leader);
	assert_string_equal(c->failover->candidate, "pg-2");
}

static void failsafe_absent(const struct pgkeel_cluster *c)
{
	assert_null(c->failsafe);
}

static void failsafe_url_dropped(const struct pgkeel_cluster *c)
{
	const struct pgkeel_failsafe_entry *e = pgkeel_failsafe_get(c->failsafe, "pg-1");

	/* still listed (the race rule counts names), without a URL */
	assert_non_null(e);
	assert_null(e->api_url);
	assert_non_null(pgkeel_failsafe_get(c->failsafe, "pg-2")->api_url);
}

static void leader_kept_nul(const struct pgkeel_cluster *c)
{
	/* a malformed holder must never read as a free lock */
	assert_false(pgkeel_cluster_is_unlocked(c));
	assert_string_equal(pgkeel_cluster_leader_name(c), "pg\xef\xbf\xbd-1");
	assert_null(c->leader->member);
}

static void leader_kept_utf8(const struct pgkeel_cluster *c)
{
	assert_false(pgkeel_cluster_is_unlocked(c));
	assert_string_equal(pgkeel_cluster_leader_name(c), "\xef\xbf\xbd");
}

static void initialize_kept(const struct pgkeel_cluster *c)
{
	assert_non_null(c->initialize);
	assert_string_equal(c->initialize, "12\xef\xbf\xbd");
}

static void nothing_added(const struct pgkeel_cluster *c)
{
	assert_int_equal(c->n_members, 2);
}

static const struct bad_case bad_cases[] = {
	/* member values */
	{ "members/pg-2", "not json", 0, NULL, "not JSON", member_skipped },
	{ "members/pg-2", "[1,2]", 0, NULL, "expected a JSON object, got a list", member_skipped },
	{ "members/pg-2", "\"str\"", 0, NULL, "expected a JSON object, got a string",
	  member_skipped },
	{ "members/pg-2", "null", 0, NULL, "expected a JSON object, got null", member_skipped },
	{ "members/pg-2", "42", 0, NULL, "expected a JSON object, got an integer", member_skipped },
	{ "members/pg-2", "", 0, NULL, "unexpected end", member_skipped },
	{ "members/pg-2", "{\"conn_url\":", 0, NULL, "unexpected end", member_skipped },
	{ "members/pg-2", "{\"role\":\"replica\"} x", 0, NULL, "unexpected character at offset 19",
	  member_skipped },
	{ "members/pg-2", "{\"role\":\"re\0plica\"}", 19, NULL, "NUL byte at offset 11",
	  member_skipped },
	{ "members/pg-2", "{\"role\":\"replica\"}\0", 19, NULL, "NUL byte", member_skipped },
	{ "members/pg-2", "{\"role\":\"r\xff\"}", 0, NULL, "invalid UTF-8 at offset 10",
	  member_skipped },
	{ "members/pg-2", "{\"role\":\"a\nb\"}", 0, NULL, "control character 0x0a",
	  member_skipped },
	{ "members/pg-2", "{'role':'replica'}", 0, NULL, "single-quoted", member_skipped },
	{ "members/pg-2", "{\"xlog_location\":1.}", 0, NULL, "malformed number", member_skipped },
	{ "members/pg-2", "{\"role\":\"replica\",\"xlog_location\":99999999999999999999999}", 0,
	  NULL, "integer out of range", member_skipped },
	{ "members/pg-2", "{\"role\":\"replica\",\"xlog_location\":18446744073709551615}", 0,
	  NULL, "integer out of range", member_skipped },
	{ "members/pg-2",
	  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]"
	  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 0, NULL, "not JSON",
	  member_skipped },
	{ "members/pg-2", "{\"role\":\"replica\",\"xlog_location\":\"67109000\"}", 0, NULL,
	  "field xlog_location of DCS key members/pg-2: expected an integer, got a string",
	  member_xlog_dropped },
	{ "members/pg-2", "{\"role\":\"replica\",\"xlog_location\":6.7e7}", 0, NULL,
	  "expected an integer, got a float", member_xlog_dropped },
	{ "members/pg-2", "{\"role\":\"replica\",\"xlog_location\":-5}", 0, NULL,
	  "field xlog_location", member_xlog_dropped },
	{ "members/pg-2", "{\"role\":\"replica\",\"tags\":\"nofailover\"}", 0, NULL,
	  "field tags of DCS key members/pg-2: expected an object, got a string",
	  member_tags_dropped },
	{ "members/pg-2", "{\"role\":\"replica\",\"tags\":[\"nofailover\"]}", 0, NULL,
	  "field tags", member_tags_dropped },
	{ "members/pg-2", "{\"role\":\"replica\",\"timeline\":true}", 0, NULL,
	  "field timeline of DCS key members/pg-2: expected an integer, got a boolean",
	  member_timeline_dropped },
	{ "members/pg-2", "{\"conn_url\":5,\"api_url\":\"http://x/patroni\"}", 0, NULL,
	  "field conn_url of DCS key members/pg-2: expected a string, got an integer",
	  member_conn_dropped },
	{ "members/pg-2", "{\"conn_url\":\"a\\u0000b\",\"api_url\":\"http://x/patroni\"}", 0,
	  NULL, "field conn_url of DCS key members/pg-2: contains a NUL", member_conn_dropped },
	{ "members/pg-2", "postgres://h:5432/db?application_name=\xff", 0, NULL,
	  "invalid UTF-8", member_skipped },
	/* not an error: a lone surrogate escape decodes to U+FFFD */
	{ "members/pg-2", "{\"state\":\"\\ud800\"}", 0, NULL, NULL, member_surrogate_ok },
	{ "members/", "{}", 0, NULL, "no member name", nothing_added },
	{ "members/\xff", "{}", 0, "members/\\xff", "not valid UTF-8", nothing_added },
	{ NULL, "{}", 0, "", "without a key", nothing_added },

	/* config: present but invalid */
	{ "config", "{\"ttl\":30", 0, NULL, "not JSON", config_invalid },
	{ "config", "[1]", 0, NULL, "expected a JSON object, got a list", config_invalid },
	{ "config", "{\"ttl\":30}\0{}", 12, NULL, "NUL byte at offset 10", config_invalid },
	{ "config", "{\"ttl\":1e99999999999999999999}", 0, NULL, NULL, NULL },

	/* history */
	{ "history", "[[1,25165984,\"r\"],\"oops\"]", 0, NULL, "line 1 is not a list",
	  history_tl0 },
	{ "history", "[\"oops\",[1,25165984,\"r\"]]", 0, NULL, "line 0 is not a list",
	  history_tl2_last_ok },
	{ "history", "{}", 0, NULL, "expected a JSON list", history_tl0 },
	{ "history", "[[\"a\"]]", 0, NULL, "line 0 has no integer timeline", history_tl0 },
	{ "history", "[[true,1,\"r\"]]", 0, NULL, "no integer timeline", history_tl0 },
	{ "history", "[[1,25165984,7]]", 0, NULL, "line 0: reason is not a string",
	  history_reason_dropped },
	{ "history", "[[1,25165984,\"r\"]", 0, NULL, "not JSON", history_tl0 },

	/* status / optime */
	{ "status", "{\"optime\":\"abc\"}", 0, NULL, "field optime", status_unknown },
	{ "status", "{\"optime\":-1}", 0, NULL, "field optime", status_unknown },
	{ "status", "garbage", 0, NULL, "not JSON", status_unknown },
	{ "status", "[67109000]", 0, NULL, "expected a JSON object", status_unknown },
	{ "status", "{\"optime\":1,\"slots\":{\"a\":\"x\",\"b\":5}}", 0, NULL,
	  "field slots.a of DCS key status", status_bad_slot_dropped },
	{ "optime/leader", "abc", 0, NULL, "expected a decimal LSN", optime_unknown },

	/* sync: empty state, version kept */
	{ "sync", "{\"leader\":5,\"sync_standby\":\"pg-2\"}", 0, NULL,
	  "field leader of DCS key sync", sync_empty },
	{ "sync", "nope", 0, NULL, "not JSON", sync_empty },
	{ "sync", "[\"pg-1\"]", 0, NULL, "expected a JSON object", sync_empty },
	{ "sync", "{\"leader\":\"pg-1\",\"sync_standby\":[\"pg-2\"]}", 0, NULL,
	  "field sync_standby of DCS key sync: expected a string, got a list", sync_empty },

	/* failover: no request, version kept */
	{ "failover", "\xff\xfe", 0, NULL, "invalid UTF-8 at offset 0", failover_no_request },
	{ "failover", "{\"leader\":\"pg-1\0\"}", 18, NULL, "NUL byte", failover_no_request },
	{ "failover", "[\"pg-1\"]", 0, NULL, "expected a JSON object", failover_no_request },
	{ "failover", "{\"leader\":[1],\"member\":\"pg-2\"}", 0, NULL,
	  "field leader of DCS key failover", failover_member_only },

	/* failsafe */
	{ "failsafe", "[1]", 0, NULL, "expected a JSON object", failsafe_absent },
	{ "failsafe", "{\"pg-1\"", 0, NULL, "not JSON", failsafe_absent },
	{ "failsafe", "{\"pg-1\":5,\"pg-2\":\"http://127.0.0.1:28102/patroni\"}", 0, NULL,
	  "field pg-1 of DCS key failsafe", failsafe_url_dropped },

	/* plain-text keys: kept, never read as absent */
	{ "leader", "pg\0-1", 5, NULL, "NUL byte at offset 2", leader_kept_nul },
	{ "leader", "\xff", 0, NULL, "invalid UTF-8", leader_kept_utf8 },
	{ "initialize", "12\xff", 0, NULL, "invalid UTF-8", initialize_kept },
};

static void run_bad_case(const struct bad_case *bc)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	char shown[128];
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(baseline); i++)
		add(b, baseline[i].key, baseline[i].value);
	add_raw(b, bc->key, bc->value, bc->len ? bc->len : strlen(bc->value), "9", NULL);
	c = pgkeel_cluster_builder_finish(b);
	if (bc->warn != NULL) {
		const char *name = bc->shown_key ? bc->shown_key : bc->key;

		/* the warning names the key (a key-less entry has none to name) */
		if (bc->key != NULL)
			assert_true(pgkeel_fmt(shown, sizeof(shown), "DCS key %s", name));
		else
			assert_true(pgkeel_fmt(shown, sizeof(shown), "%s", bc->warn));
		if (!has_warning(c, shown, bc->warn)) {
			print_warnings(c);
			fail_msg("%s: no warning with \"%s\" and \"%s\"", name ? name : "(null)",
			         shown, bc->warn);
		}
		assert_true(c->n_warnings_total >= 1);
	} else {
		print_warnings(c);
		assert_int_equal(c->n_warnings_total, 0);
	}
	if (bc->check != NULL)
		bc->check(c);
	check_rest_intact(c, bc->key ? bc->key : "");
	pgkeel_cluster_unref(c);
}

static void test_malformed_table(void **state)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	size_t i;

	(void)state;
	/* the baseline alone is clean, so every warning below comes from its bad value */
	for (i = 0; i < PGKEEL_ARRAY_LEN(baseline); i++)
		add(b, baseline[i].key, baseline[i].value);
	c = pgkeel_cluster_builder_finish(b);
	assert_int_equal(c->n_warnings_total, 0);
	check_rest_intact(c, "");
	assert_true(pgkeel_failover_is_request(c->failover));
	assert_int_equal(c->failsafe->n_entries, 2);
	pgkeel_cluster_unref(c);

	for (i = 0; i < PGKEEL_ARRAY_LEN(bad_cases); i++) {
		print_message("case %zu: %s\n", i, bad_cases[i].key ? bad_cases[i].key : "(null)");
		run_bad_case(&bad_cases[i]);
	}
}

static void test_warnings_bounded(void **state)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	char key[32];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		assert_true(pgkeel_fmt(key, sizeof(key), "members/m%d", i));
		add(b, key, "{");
	}
	add_raw(b, "members/x", NULL, 7, NULL, NULL); /* a backend bug: no value bytes */
	c = pgkeel_cluster_builder_finish(b);
	assert_int_equal(c->n_members, 101);
	assert_int_equal(c->n_warnings_total, 101);
	assert_int_equal(c->n_warnings, PGKEEL_CLUSTER_MAX_WARNINGS);
	assert_true(has_warning(c, "DCS key members/m0:", "not JSON"));
	pgkeel_cluster_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured_bootstrap),
		cmocka_unit_test(test_captured_after_switchover),
		cmocka_unit_test(test_captured_after_failsafe),
		cmocka_unit_test(test_captured_etcd_ranges),
		cmocka_unit_test(test_captured_roundtrip),
		cmocka_unit_test(test_captured_spaced),
		cmocka_unit_test(test_json_compact_python_table),
		cmocka_unit_test(test_json_compact_not_parsed),
		cmocka_unit_test(test_json_parse_strictness),
		cmocka_unit_test(test_encode_member),
		cmocka_unit_test(test_tags_effective),
		cmocka_unit_test(test_encode_captured_members_from_config),
		cmocka_unit_test(test_encode_others),
		cmocka_unit_test(test_timeline),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_sync_rules),
		cmocka_unit_test(test_failover_rules),
		cmocka_unit_test(test_member_rules),
		cmocka_unit_test(test_leader_rules),
		cmocka_unit_test(test_status_rules),
		cmocka_unit_test(test_config_rules),
		cmocka_unit_test(test_refcount_and_abandon),
		cmocka_unit_test(test_malformed_table),
		cmocka_unit_test(test_warnings_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
