/*
 * etcd3_proto against responses recorded from a real etcd 3.4 JSON gateway
 * (tests/data/etcd3/, see README.md there) and against synthetic failures
 * and malformed bodies.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "etcd3_proto.h"

#define DATA TEST_SRCDIR "/tests/data/etcd3"
/* a string literal and its length */
#define LIT(s) s, sizeof(s) - 1

/* ------------------------------------------------------------------------ */
/* helpers */

/* The whole file, NUL-terminated (the length excludes it); fails the test if missing. */
static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, n = 0, got;
	int w = snprintf(path, sizeof(path), "%s/%s", DATA, name);

	assert_true(w > 0 && (size_t)w < sizeof(path));
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("missing test data %s", path);
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

/* "<name>.json" */
static char *fixture(const char *name, size_t *len)
{
	char file[128];
	int w = snprintf(file, sizeof(file), "%s.json", name);

	assert_true(w > 0 && (size_t)w < sizeof(file));
	return slurp(file, len);
}

/* One row of index.tsv: name, curl exit ("-" for streams), HTTP status, RPC, request. */
struct index_row {
	char name[64];
	int curl_code;
	long http;
	char rpc[64];
	char *request;
};

static bool index_lookup(const char *name, struct index_row *row)
{
	char *text = slurp("index.tsv", NULL), *line, *next, *f[5];
	bool found = false;
	int i;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		f[0] = line;
		for (i = 1; i < 5; i++) {
			f[i] = f[i - 1] != NULL ? strchr(f[i - 1], '\t') : NULL;
			if (f[i] != NULL)
				*f[i]++ = '\0';
		}
		assert_non_null(f[4]);
		if (strcmp(f[0], name) != 0)
			continue;
		assert_true(strlen(f[0]) < sizeof(row->name) && strlen(f[3]) < sizeof(row->rpc));
		memcpy(row->name, f[0], strlen(f[0]) + 1);
		memcpy(row->rpc, f[3], strlen(f[3]) + 1);
		row->curl_code = (int)strtol(f[1], NULL, 10);
		row->http = strtol(f[2], NULL, 10);
		row->request = strdup(f[4]);
		assert_non_null(row->request);
		found = true;
		break;
	}
	free(text);
	if (!found)
		fail_msg("%s is not in index.tsv", name);
	return found;
}

static struct json_object *parse(const char *text)
{
	struct json_object *o;

	assert_non_null(text);
	o = json_tokener_parse(text);
	if (o == NULL)
		fail_msg("not JSON: %s", text);
	return o;
}

/* Walk "a.0.b": object members by name, array items by index; NULL if absent. */
static struct json_object *at(struct json_object *o, const char *path)
{
	char buf[256], *seg, *save = NULL;
	struct json_object *v = o;

	assert_true(strlen(path) < sizeof(buf));
	memcpy(buf, path, strlen(path) + 1);
	for (seg = strtok_r(buf, ".", &save); seg != NULL && v != NULL;
	     seg = strtok_r(NULL, ".", &save)) {
		if (seg[0] >= '0' && seg[0] <= '9') {
			if (!json_object_is_type(v, json_type_array))
				return NULL;
			v = json_object_array_get_idx(v, (size_t)strtoul(seg, NULL, 10));
		} else if (!json_object_is_type(v, json_type_object) ||
		           !json_object_object_get_ex(v, seg, &v)) {
			return NULL;
		}
	}
	return v;
}

static void assert_str_at(struct json_object *o, const char *path, const char *want)
{
	struct json_object *v = at(o, path);

	if (v == NULL || !json_object_is_type(v, json_type_string))
		fail_msg("%s: no string at %s", json_object_to_json_string(o), path);
	assert_string_equal(json_object_get_string(v), want);
}

/* The base64 string at path decodes to want[0..len). */
static void assert_b64_at(struct json_object *o, const char *path, const char *want, size_t len)
{
	struct json_object *v = at(o, path);
	char *dec;
	size_t dlen;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		fail_msg("%s: no string at %s", json_object_to_json_string(o), path);
	assert_true(e3_b64_decode(json_object_get_string(v), &dec, &dlen));
	assert_int_equal(dlen, len);
	assert_memory_equal(dec, want, len);
	free(dec);
}

static void assert_absent(struct json_object *o, const char *path)
{
	if (at(o, path) != NULL)
		fail_msg("%s: unexpected %s", json_object_to_json_string(o), path);
}

static void assert_nkeys(struct json_object *o, const char *path, int n)
{
	struct json_object *v = path[0] ? at(o, path) : o;

	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_object));
	assert_int_equal(json_object_object_length(v), n);
}

static void assert_len_at(struct json_object *o, const char *path, size_t n)
{
	struct json_object *v = at(o, path);

	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_array));
	assert_int_equal(json_object_array_length(v), n);
}

/* ------------------------------------------------------------------------ */
/* base64, prefix_end */

static void test_b64_vectors(void **state)
{
	/* RFC 4648 section 10 */
	static const char *const vec[][2] = {
		{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	size_t i, len;
	char *enc, *dec;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(*vec); i++) {
		enc = e3_b64_encode(vec[i][0], strlen(vec[i][0]));
		assert_non_null(enc);
		assert_string_equal(enc, vec[i][1]);
		free(enc);
		/* DecodeBlock reports 3 bytes per quad; the padding must come off */
		assert_true(e3_b64_decode(vec[i][1], &dec, &len));
		assert_int_equal(len, strlen(vec[i][0]));
		assert_memory_equal(dec, vec[i][0], len);
		assert_int_equal(dec[len], '\0');
		free(dec);
	}
	enc = e3_b64_encode(NULL, 0);
	assert_non_null(enc);
	assert_string_equal(enc, "");
	free(enc);
	assert_null(e3_b64_encode(NULL, 1));
}

static void test_b64_binary(void **state)
{
	char all[256], *enc, *dec;
	size_t n, len, i;

	(void)state;
	for (i = 0; i < sizeof(all); i++)
		all[i] = (char)(255 - i); /* ends in a NUL byte */
	/* every length 0..256: all three padding cases, NUL bytes inside and at the end */
	for (n = 0; n <= sizeof(all); n++) {
		enc = e3_b64_encode(all + sizeof(all) - n, n);
		assert_non_null(enc);
		assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
		assert_true(e3_b64_decode(enc, &dec, &len));
		assert_int_equal(len, n);
		assert_memory_equal(dec, all + sizeof(all) - n, n);
		assert_int_equal(dec[len], '\0');
		free(dec);
		free(enc);
	}
	/* a value whose last bytes are zero: the padding is not part of the data */
	assert_true(e3_b64_decode("AAA=", &dec, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(dec, "\0\0", 2);
	free(dec);
	assert_true(e3_b64_decode("YQD/Cno=", &dec, &len));
	assert_int_equal(len, 5);
	assert_memory_equal(dec, "a\0\377\nz", 5);
	free(dec);
}

static void test_b64_bad(void **state)
{
	static const char *const bad[] = {
		"Zg",      /* no padding */
		"Zg=",     /* short padding */
		"Zm9",     /* length not a multiple of 4 */
		"Z===",    /* too much padding */
		"====",    /* only padding */
		"Zg==Zg==", /* padding in the middle */
		"Z=g=",    /* padding in the middle of a quad */
		"Zm9v\n",  /* whitespace DecodeBlock would skip */
		" Zm9v",   /* leading whitespace */
		"Zm 9v",   /* whitespace inside */
		"Zm9-",    /* URL-safe alphabet */
		"Zm9_",    /* URL-safe alphabet */
		"Zm9v!!!!", /* junk */
		"\xc3\xa9\xc3\xa9", /* non-ASCII */
	};
	size_t i, len = 7;
	char *dec = (char *)&len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (e3_b64_decode(bad[i], &dec, &len))
			fail_msg("decoded bad base64 \"%s\"", bad[i]);
		assert_null(dec);
		assert_int_equal(len, 0);
	}
	assert_false(e3_b64_decode(NULL, &dec, &len));
}

static void test_prefix_end(void **state)
{
	static const char *const cases[][2] = {
		{"/db/batman/", "/db/batman0"},
		{"/service/batman/", "/service/batman0"},
		{"a", "b"},
		{"/a\xff", "/b"},          /* a 0xff last byte is dropped, the one before grows */
		{"ab\xff\xff", "ac"},
		{"a\x7f", "a\x80"},        /* signed char pitfall */
		{"a\xfe", "a\xff"},
	};
	size_t i;
	char *e;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		e = e3_prefix_end(cases[i][0]);
		assert_non_null(e);
		assert_string_equal(e, cases[i][1]);
		free(e);
	}
	/* no finite end */
	assert_null(e3_prefix_end(""));
	assert_null(e3_prefix_end("\xff"));
	assert_null(e3_prefix_end("\xff\xff"));
	assert_null(e3_prefix_end(NULL));
}

/* ------------------------------------------------------------------------ */
/* request builders */

static void test_req_range_put_delete(void **state)
{
	struct json_object *o;
	char *s;

	(void)state;
	s = e3_req_range("/service/batman/", "/service/batman0", true);
	o = parse(s);
	assert_nkeys(o, "", 3);
	assert_b64_at(o, "key", "/service/batman/", 16);
	assert_b64_at(o, "range_end", "/service/batman0", 16);
	assert_true(json_object_get_boolean(at(o, "serializable")));
	assert_true(json_object_is_type(at(o, "serializable"), json_type_boolean));
	json_object_put(o);
	free(s);

	s = e3_req_range("/service/batman/leader", NULL, false);
	o = parse(s);
	assert_nkeys(o, "", 1); /* linearizable: no serializable field at all */
	assert_b64_at(o, "key", "/service/batman/leader", 22);
	json_object_put(o);
	free(s);

	s = e3_req_put("/k", "a\0\377b", 4, 0);
	o = parse(s);
	assert_nkeys(o, "", 2); /* no lease */
	assert_b64_at(o, "key", "/k", 2);
	assert_b64_at(o, "value", "a\0\377b", 4);
	json_object_put(o);
	free(s);

	s = e3_req_put("/k", "v", 1, 7587869876543210123LL);
	o = parse(s);
	assert_nkeys(o, "", 3);
	assert_str_at(o, "lease", "7587869876543210123"); /* int64 as a decimal string */
	json_object_put(o);
	free(s);

	s = e3_req_put("/k", NULL, 0, 0);
	o = parse(s);
	assert_str_at(o, "value", "");
	json_object_put(o);
	free(s);

	s = e3_req_deleterange("/service/batman/", "/service/batman0");
	o = parse(s);
	assert_nkeys(o, "", 2);
	assert_b64_at(o, "key", "/service/batman/", 16);
	assert_b64_at(o, "range_end", "/service/batman0", 16);
	json_object_put(o);
	free(s);

	s = e3_req_deleterange("/service/batman/initialize", NULL);
	o = parse(s);
	assert_nkeys(o, "", 1);
	json_object_put(o);
	free(s);

	/* JSON-special and non-ASCII bytes travel inside base64 only */
	s = e3_req_put("/k\"\\/", "\"\xc3\xa9\n", 4, 0);
	o = parse(s);
	assert_b64_at(o, "key", "/k\"\\/", 5);
	assert_b64_at(o, "value", "\"\xc3\xa9\n", 4);
	json_object_put(o);
	free(s);

	assert_null(e3_req_range(NULL, NULL, false));
	assert_null(e3_req_put(NULL, "v", 1, 0));
	assert_null(e3_req_put("/k", NULL, 3, 0));
	assert_null(e3_req_put("/k", "v", 1, -1));
	assert_null(e3_req_deleterange(NULL, NULL));
}

static void test_req_txn(void **state)
{
	struct json_object *o;
	char *s;

	(void)state;
	s = e3_req_txn_create("/s/b/leader", "pg-1", 4, 42);
	o = parse(s);
	assert_nkeys(o, "", 2);
	assert_len_at(o, "compare", 1);
	assert_nkeys(o, "compare.0", 3);
	assert_b64_at(o, "compare.0.key", "/s/b/leader", 11);
	assert_str_at(o, "compare.0.target", "CREATE");
	assert_str_at(o, "compare.0.create_revision", "0");
	assert_absent(o, "compare.0.result"); /* EQUAL */
	assert_len_at(o, "success", 1);
	assert_nkeys(o, "success.0.request_put", 3);
	assert_b64_at(o, "success.0.request_put.key", "/s/b/leader", 11);
	assert_b64_at(o, "success.0.request_put.value", "pg-1", 4);
	assert_str_at(o, "success.0.request_put.lease", "42");
	assert_absent(o, "failure");
	json_object_put(o);
	free(s);

	s = e3_req_txn_create("/s/b/initialize", "7300", 4, 0);
	o = parse(s);
	assert_absent(o, "success.0.request_put.lease");
	json_object_put(o);
	free(s);

	s = e3_req_txn_mod_put("/s/b/config", "{}", 2, 1234567890123LL);
	o = parse(s);
	assert_nkeys(o, "", 2);
	assert_nkeys(o, "compare.0", 3);
	assert_str_at(o, "compare.0.target", "MOD");
	assert_str_at(o, "compare.0.mod_revision", "1234567890123");
	assert_b64_at(o, "compare.0.key", "/s/b/config", 11);
	assert_nkeys(o, "success.0.request_put", 2);
	assert_b64_at(o, "success.0.request_put.value", "{}", 2);
	json_object_put(o);
	free(s);

	s = e3_req_txn_mod_delete("/s/b/sync", 9);
	o = parse(s);
	assert_str_at(o, "compare.0.target", "MOD");
	assert_str_at(o, "compare.0.mod_revision", "9");
	assert_nkeys(o, "success.0", 1);
	assert_nkeys(o, "success.0.request_delete_range", 1);
	assert_b64_at(o, "success.0.request_delete_range.key", "/s/b/sync", 9);
	json_object_put(o);
	free(s);

	s = e3_req_txn_value_delete("/s/b/leader", "pg-1");
	o = parse(s);
	assert_nkeys(o, "compare.0", 3);
	assert_str_at(o, "compare.0.target", "VALUE");
	assert_b64_at(o, "compare.0.value", "pg-1", 4);
	assert_b64_at(o, "success.0.request_delete_range.key", "/s/b/leader", 11);
	assert_absent(o, "failure");
	json_object_put(o);
	free(s);

	s = e3_req_txn_leader_rebind("/s/b/leader", "pg-1", 77);
	o = parse(s);
	assert_nkeys(o, "", 3);
	assert_str_at(o, "compare.0.target", "VALUE");
	assert_b64_at(o, "compare.0.value", "pg-1", 4);
	assert_b64_at(o, "success.0.request_put.key", "/s/b/leader", 11);
	assert_b64_at(o, "success.0.request_put.value", "pg-1", 4);
	assert_str_at(o, "success.0.request_put.lease", "77");
	assert_len_at(o, "failure", 1);
	assert_nkeys(o, "failure.0", 1);
	assert_nkeys(o, "failure.0.request_txn", 2); /* no nested failure branch */
	assert_str_at(o, "failure.0.request_txn.compare.0.target", "CREATE");
	assert_str_at(o, "failure.0.request_txn.compare.0.create_revision", "0");
	assert_b64_at(o, "failure.0.request_txn.compare.0.key", "/s/b/leader", 11);
	assert_b64_at(o, "failure.0.request_txn.success.0.request_put.key", "/s/b/leader", 11);
	assert_b64_at(o, "failure.0.request_txn.success.0.request_put.value", "pg-1", 4);
	assert_str_at(o, "failure.0.request_txn.success.0.request_put.lease", "77");
	json_object_put(o);
	free(s);

	assert_null(e3_req_txn_create(NULL, "v", 1, 0));
	assert_null(e3_req_txn_mod_put("/k", "v", 1, -1));
	assert_null(e3_req_txn_mod_delete(NULL, 1));
	assert_null(e3_req_txn_value_delete("/k", NULL));
	assert_null(e3_req_txn_leader_rebind("/k", NULL, 1));
}

static void test_req_lease_watch_auth(void **state)
{
	struct json_object *o;
	char *s;

	(void)state;
	s = e3_req_lease_grant(30);
	o = parse(s);
	assert_nkeys(o, "", 1);
	assert_str_at(o, "TTL", "30");
	json_object_put(o);
	free(s);

	s = e3_req_lease_keepalive(INT64_MAX);
	o = parse(s);
	assert_nkeys(o, "", 1);
	assert_str_at(o, "ID", "9223372036854775807");
	json_object_put(o);
	free(s);

	s = e3_req_lease_revoke(4111120246106627590LL);
	o = parse(s);
	assert_nkeys(o, "", 1);
	assert_str_at(o, "ID", "4111120246106627590");
	json_object_put(o);
	free(s);

	s = e3_req_watch_create("/service/batman/", "/service/batman0", 15);
	o = parse(s);
	assert_nkeys(o, "", 1);
	assert_nkeys(o, "create_request", 3);
	assert_b64_at(o, "create_request.key", "/service/batman/", 16);
	assert_b64_at(o, "create_request.range_end", "/service/batman0", 16);
	assert_str_at(o, "create_request.start_revision", "15");
	json_object_put(o);
	free(s);

	s = e3_req_watch_create("/service/batman/leader", NULL, 0);
	o = parse(s);
	assert_nkeys(o, "create_request", 1); /* from now on: no start_revision */
	json_object_put(o);
	free(s);

	s = e3_req_auth("root", "p\"w/\\");
	o = parse(s);
	assert_nkeys(o, "", 2);
	assert_str_at(o, "name", "root");
	assert_str_at(o, "password", "p\"w/\\");
	json_object_put(o);
	free(s);

	assert_null(e3_req_lease_grant(0));
	assert_null(e3_req_lease_keepalive(0));
	assert_null(e3_req_lease_revoke(0));
	assert_null(e3_req_lease_keepalive(-5));
	assert_null(e3_req_watch_create(NULL, NULL, 0));
	assert_null(e3_req_watch_create("/k", NULL, -1));
	assert_null(e3_req_auth(NULL, "x"));
}

/* The builders write exactly the requests etcd answered in the recordings. */
static void assert_builds_recorded(const char *name, char *built)
{
	struct index_row row;
	struct json_object *want, *got;

	assert_true(index_lookup(name, &row));
	want = parse(row.request);
	got = parse(built);
	if (!json_object_equal(want, got))
		fail_msg("%s: built %s, recorded %s", name, built, row.request);
	json_object_put(want);
	json_object_put(got);
	free(row.request);
	free(built);
}

/* int64 at path of the recorded request of name */
static int64_t recorded_i64(const char *name, const char *path)
{
	struct index_row row;
	struct json_object *o;
	int64_t v;

	assert_true(index_lookup(name, &row));
	o = parse(row.request);
	assert_non_null(at(o, path));
	v = strtoll(json_object_get_string(at(o, path)), NULL, 10);
	json_object_put(o);
	free(row.request);
	return v;
}

static void test_req_match_recordings(void **state)
{
	const char *init = "7300000000000000001";
	int64_t lease = recorded_i64("put_leader", "lease"), start;

	(void)state;
	assert_builds_recorded("range_empty",
	                       e3_req_range("/service/batman/", "/service/batman0", true));
	assert_builds_recorded("put_leader",
	                       e3_req_put("/service/batman/leader", "pg-1", 4, lease));
	assert_builds_recorded("put_binary",
	                       e3_req_put("/service/batman/x-bin", "a\0\377\nz", 5, 0));
	assert_builds_recorded("deleterange", e3_req_deleterange("/service/batman/x-bin", NULL));
	assert_builds_recorded("deleterange_none", e3_req_deleterange("/service/batman/absent",
	                                                              "/service/batman/absenu"));
	assert_builds_recorded("txn_create_ok", e3_req_txn_create("/service/batman/initialize",
	                                                          init, strlen(init), 0));
	assert_builds_recorded(
	        "txn_mod_put_ok",
	        e3_req_txn_mod_put("/service/batman/config", "{\"ttl\":20}", 10,
	                           recorded_i64("txn_mod_put_ok", "compare.0.mod_revision")));
	assert_builds_recorded("txn_mod_delete_ok",
	                       e3_req_txn_mod_delete("/service/batman/sync",
	                                             recorded_i64("txn_mod_delete_ok",
	                                                          "compare.0.mod_revision")));
	assert_builds_recorded("txn_value_delete_ok",
	                       e3_req_txn_value_delete("/service/batman/leader", "pg-1"));
	assert_builds_recorded("txn_rebind_ok",
	                       e3_req_txn_leader_rebind("/service/batman/leader", "pg-1", lease));
	assert_builds_recorded("txn_rebind_nested_fail",
	                       e3_req_txn_leader_rebind("/service/batman/leader", "pg-1", lease));
	assert_builds_recorded("lease_grant", e3_req_lease_grant(30));
	assert_builds_recorded("lease_keepalive", e3_req_lease_keepalive(lease));
	assert_builds_recorded("lease_revoke_unknown", e3_req_lease_revoke(12345));
	start = recorded_i64("watch", "create_request.start_revision");
	assert_builds_recorded("watch",
	                       e3_req_watch_create("/service/batman/", "/service/batman0", start));
	assert_builds_recorded("auth_ok", e3_req_auth("root", "secret"));
}

/* ------------------------------------------------------------------------ */
/* classification */

struct expect {
	enum pgkeel_dcs_status status;
	int detail;
	bool next_endpoint, reauth, auth_disabled, lease_not_found;
};

#define OK_ { PGKEEL_DCS_OK, PGKEEL_DCS_D_NONE, false, false, false, false }
/* unavailable, try the next member */
#define DOWN(d) { PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_##d, true, false, false, false }
/* unavailable, but another member would not help */
#define DOWN_HERE(d) { PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_##d, false, false, false, false }
#define REAUTH { PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH, false, true, false, false }
#define LEASE_GONE { PGKEEL_DCS_INVALID, PGKEEL_DCS_D_SESSION_LOST, false, false, false, true }
#define BAD(d) { PGKEEL_DCS_INVALID, PGKEEL_DCS_D_##d, false, false, false, false }
#define AUTH_OFF { PGKEEL_DCS_INVALID, PGKEEL_DCS_D_AUTH, false, false, true, false }
#define NOMEM_ { PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE, false, false, false, false }

static void check_result(const char *what, const struct e3_result *r, const struct expect *e)
{
	if (r->status != e->status || r->detail != e->detail ||
	    r->next_endpoint != e->next_endpoint || r->reauth != e->reauth ||
	    r->auth_disabled != e->auth_disabled || r->lease_not_found != e->lease_not_found)
		fail_msg("%s: got status %d detail %d next %d reauth %d authoff %d lease %d (%s); "
		         "want %d %d %d %d %d %d",
		         what, r->status, r->detail, r->next_endpoint, r->reauth, r->auth_disabled,
		         r->lease_not_found, r->msg, e->status, e->detail, e->next_endpoint,
		         e->reauth, e->auth_disabled, e->lease_not_found);
	if (strncmp(r->msg, "etcd 127.0.0.1:2379: ", 21) != 0 || strchr(r->msg, '\n') != NULL ||
	    strlen(r->msg) <= 21)
		fail_msg("%s: bad message \"%s\"", what, r->msg);
}

static void test_classify_recorded(void **state)
{
	static const struct {
		const char *file;
		struct expect e;
	} cases[] = {
		{"version", OK_},
		{"range_empty", OK_},
		{"range_kvs", OK_},
		{"put", OK_},
		{"put_leader", OK_},
		{"put_binary", OK_},
		{"deleterange", OK_},
		{"deleterange_none", OK_},
		{"txn_create_ok", OK_},
		/* a compare that did not hold is a 200: never an error here */
		{"txn_create_fail", OK_},
		{"txn_mod_put_ok", OK_},
		{"txn_mod_put_fail", OK_},
		{"txn_mod_delete_ok", OK_},
		{"txn_mod_delete_fail", OK_},
		{"txn_value_delete_ok", OK_},
		{"txn_value_delete_fail", OK_},
		{"txn_rebind_ok", OK_},
		{"txn_rebind_nested_ok", OK_},
		{"txn_rebind_nested_fail", OK_},
		{"lease_grant", OK_},
		{"lease_grant_short", OK_},
		{"lease_keepalive", OK_},
		/* 3.4: an unknown/expired lease's keepalive is a 200 without TTL */
		{"lease_keepalive_unknown", OK_},
		{"lease_keepalive_revoked", OK_},
		{"lease_keepalive_expired", OK_},
		{"lease_revoke", OK_},
		{"lease_revoke_unknown", LEASE_GONE},
		{"put_lease_unknown", LEASE_GONE},
		{"txn_create_lease_unknown", LEASE_GONE},
		{"bad_json", BAD(NONE)},
		{"bad_base64", BAD(NONE)},
		{"key_missing", BAD(NONE)},
		/* the gateway answers a broken watch request with 500 Unknown */
		{"watch_bad_request", DOWN(SERVER)},
		{"auth_not_enabled",
		 AUTH_OFF},
		{"auth_ok", OK_},
		{"auth_range_ok", OK_},
		{"auth_wrong_password", DOWN_HERE(AUTH)},
		{"auth_no_token", REAUTH},
		{"auth_invalid_token", REAUTH},
		{"auth_permission_denied", DOWN_HERE(AUTH)},
		{"lease_grant_auth_no_token", OK_},
		{"lease_keepalive_auth_no_token", OK_},
		{"conn_refused", DOWN(CONNECT)},
		{"noleader_put", DOWN(TIMEOUT)},
		{"noleader_range", DOWN(TIMEOUT)},
		{"noleader_keepalive", DOWN(SERVER)},
		{"noleader_lease_grant", DOWN(TIMEOUT)},
		{"noleader_authenticate", DOWN(TIMEOUT)},
	};
	struct index_row row;
	struct e3_result r;
	size_t i, len;
	char *body;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_true(index_lookup(cases[i].file, &row));
		free(row.request);
		body = fixture(cases[i].file, &len);
		e3_classify("127.0.0.1:2379", row.curl_code, row.http, body, len, &r);
		check_result(cases[i].file, &r, &cases[i].e);
		free(body);
	}
}

static void test_classify_synthetic(void **state)
{
	static const struct {
		int curl;
		long http;
		const char *body;
		struct expect e;
	} cases[] = {
		/* transport failures */
		{7, 0, NULL, DOWN(CONNECT)},   /* CURLE_COULDNT_CONNECT */
		{28, 0, NULL, DOWN(TIMEOUT)},  /* CURLE_OPERATION_TIMEDOUT */
		{6, 0, NULL, DOWN(CONNECT)},   /* CURLE_COULDNT_RESOLVE_HOST */
		{56, 0, NULL, DOWN(CONNECT)},  /* CURLE_RECV_ERROR */
		{52, 0, NULL, DOWN(CONNECT)},  /* CURLE_GOT_NOTHING */
		{35, 0, NULL, DOWN(CONNECT)},  /* CURLE_SSL_CONNECT_ERROR */
		/* cut off in the middle of the body */
		{28, 200, "{\"header\":{\"revision\":\"1\"}}", DOWN(TIMEOUT)},
		{27, 0, NULL, NOMEM_},
		{0, 0, NULL, DOWN(PROTOCOL)},
		/* 5xx, with and without an etcd body */
		{0, 500, "", DOWN(SERVER)},
		{0, 503, "<html>Service Unavailable</html>", DOWN(SERVER)},
		{0, 502, "Bad Gateway\n", DOWN(SERVER)},
		{0, 500, "{\"error\":\"something odd\",\"code\":2}", DOWN(SERVER)},
		{0, 503, "{\"error\":\"etcdserver: leader changed\",\"message\":"
		         "\"etcdserver: leader changed\",\"code\":14}", DOWN(SERVER)},
		{0, 503, "{\"error\":\"etcdserver: request timed out, possibly due to previous "
		         "leader failure\",\"code\":14}", DOWN(TIMEOUT)},
		{0, 500, "{\"error\":\"etcdserver: not a primary lessor\",\"code\":2}",
		 DOWN(SERVER)},
		{0, 504, "{\"error\":\"deadline\",\"code\":4}", DOWN(TIMEOUT)},
		/* the message decides even when the status alone would say INVALID */
		{0, 400, "{\"error\":\"etcdserver: no leader\",\"code\":2}", DOWN(SERVER)},
		{0, 400, "{\"error\":\"etcdserver: leader changed\"}", DOWN(SERVER)},
		{0, 400, "{\"error\":\"etcdserver: request timed out\"}", DOWN(TIMEOUT)},
		{0, 400, "{\"error\":\"not a primary lessor\",\"code\":2}", DOWN(SERVER)},
		{0, 429, "{\"error\":\"etcdserver: too many requests\",\"code\":8}", DOWN(SERVER)},
		/* the gRPC code decides on a 4xx */
		{0, 400, "{\"error\":\"x\",\"code\":14}", DOWN(SERVER)},
		{0, 400, "{\"error\":\"x\",\"code\":4}", DOWN(TIMEOUT)},
		{0, 412, "{\"error\":\"etcdserver: something\",\"code\":9}", DOWN_HERE(SERVER)},
		/* auth */
		{0, 400, "{\"error\":\"etcdserver: revision of auth store is old\",\"code\":3}",
		 REAUTH},
		{0, 401, "{\"error\":\"x\",\"code\":16}", REAUTH},
		{0, 200, "{\"error\":{\"grpc_code\":16,\"http_code\":401,\"message\":"
		         "\"etcdserver: invalid auth token\"}}", REAUTH},
		{0, 400, "{\"error\":\"etcdserver: authentication failed, invalid user ID or "
		         "password\",\"code\":3}", DOWN_HERE(AUTH)},
		{0, 403, "", DOWN_HERE(AUTH)},
		{0, 401, "Unauthorized", DOWN_HERE(AUTH)},
		{0, 412, "{\"error\":\"etcdserver: authentication is not enabled\",\"code\":9}",
		 AUTH_OFF},
		/* stream errors after a 200 header */
		{0, 200, "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
		         "\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}",
		 DOWN(SERVER)},
		{0, 200, "{\"error\":{\"grpc_code\":3,\"http_code\":400,\"message\":\"bad\"}}",
		 BAD(NONE)},
		{0, 200, "{\"error\":{}}", DOWN(PROTOCOL)},
		/* 2xx that is not a JSON object */
		{0, 200, "not json", DOWN(PROTOCOL)},
		{0, 200, "", DOWN(PROTOCOL)},
		{0, 200, NULL, DOWN(PROTOCOL)},
		{0, 200, "null", DOWN(PROTOCOL)},
		{0, 200, "[1,2]", DOWN(PROTOCOL)},
		{0, 200, "{\"header\":{}", DOWN(PROTOCOL)},
		{0, 200, "{} {}", DOWN(PROTOCOL)},
		/* a LeaseGrantResponse's own empty "error" field is no error */
		{0, 200, "{\"header\":{\"revision\":\"1\"},\"ID\":\"5\",\"TTL\":\"5\","
		         "\"error\":\"\"}",
		 OK_},
		/* a failed compare: 200 and succeeded absent */
		{0, 200, "{\"header\":{\"revision\":\"9\"}}", OK_},
		/* other 4xx */
		/* an answer that is not etcd's: a proxy, a wrong port, a wrong API prefix */
		{0, 404, "404 page not found\n", DOWN(PROTOCOL)},
		{0, 400, "<html>Bad Request</html>", DOWN(PROTOCOL)},
		{0, 400, "{}", DOWN(PROTOCOL)},
		{0, 404, "{\"error\":\"etcdserver: key not found\",\"code\":5}", BAD(NOT_FOUND)},
		{0, 400, "{\"error\":\"etcdserver: duplicate key given in txn request\","
		         "\"code\":3}",
		 BAD(NONE)},
		{0, 408, "", DOWN(TIMEOUT)},
		{0, 301, "", DOWN(PROTOCOL)},
		{0, 101, "", DOWN(PROTOCOL)},
	};
	struct e3_result r;
	char what[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		memset(&r, 0x5a, sizeof(r)); /* every field must be written */
		e3_classify("127.0.0.1:2379", cases[i].curl, cases[i].http, cases[i].body,
		            cases[i].body != NULL ? strlen(cases[i].body) : 0, &r);
		assert_true(snprintf(what, sizeof(what), "synthetic case %zu", i) > 0);
		check_result(what, &r, &cases[i].e);
	}
}

static void test_classify_message(void **state)
{
	static const char nl[] = "{\"error\":\"etcdserver: no\\nleader\\u0007\",\"code\":14}";
	struct e3_result r;
	char body[1200], endpoint[400];

	(void)state;
	/* the server text is in the message, on one line */
	e3_classify("127.0.0.1:2379", 0, 503, nl, sizeof(nl) - 1, &r);
	assert_string_equal(r.msg, "etcd 127.0.0.1:2379: HTTP 503, gRPC code 14: etcdserver: no "
	                           "leader ");
	e3_classify("127.0.0.1:2379", 7, 0, NULL, 0, &r);
	assert_string_equal(r.msg, "etcd 127.0.0.1:2379: could not connect (curl error 7)");
	e3_classify(NULL, 28, 0, NULL, 0, &r);
	assert_non_null(strstr(r.msg, "timed out (curl error 28)"));
	e3_classify("h:1", 0, 502, "Bad\r\nGateway", 12, &r);
	assert_string_equal(r.msg, "etcd h:1: HTTP 502: Bad  Gateway");

	/* long texts are cut, never overflow */
	memset(body, 'x', sizeof(body));
	memcpy(body, "{\"error\":\"", 10);
	memcpy(body + sizeof(body) - 13, "\",\"code\":14}", 12);
	body[sizeof(body) - 1] = '\0';
	memset(endpoint, 'e', sizeof(endpoint) - 1);
	endpoint[sizeof(endpoint) - 1] = '\0';
	e3_classify("127.0.0.1:2379", 0, 503, body, strlen(body), &r);
	assert_int_equal(r.status, PGKEEL_DCS_UNAVAILABLE);
	assert_true(strlen(r.msg) < sizeof(r.msg));
	assert_non_null(strstr(r.msg, "..."));
	e3_classify(endpoint, 0, 503, body, strlen(body), &r);
	assert_int_equal(strlen(r.msg), sizeof(r.msg) - 1);
	assert_string_equal(r.msg + sizeof(r.msg) - 4, "...");
}

/* ------------------------------------------------------------------------ */
/* response parsers on recorded bodies */

struct kv_seen {
	int n;
	int stop_after;
	char keys[8][64];
	char values[8][64];
	size_t value_len[8];
	int64_t mod[8], create[8], version[8], lease[8];
};

static int collect_kv(void *arg, const struct e3_kv *kv)
{
	struct kv_seen *s = arg;

	assert_true(s->n < 8);
	assert_true(strlen(kv->key) < 64 && kv->value_len < 64);
	memcpy(s->keys[s->n], kv->key, strlen(kv->key) + 1);
	memcpy(s->values[s->n], kv->value, kv->value_len + 1);
	s->value_len[s->n] = kv->value_len;
	s->mod[s->n] = kv->mod_revision;
	s->create[s->n] = kv->create_revision;
	s->version[s->n] = kv->version;
	s->lease[s->n] = kv->lease;
	s->n++;
	return s->stop_after > 0 && s->n >= s->stop_after;
}

static int64_t revision_of(const char *name)
{
	char *body, err[128];
	size_t len;
	int64_t rev = 0;

	body = fixture(name, &len);
	if (!e3_parse_revision(body, len, &rev, err, sizeof(err)))
		fail_msg("%s: %s", name, err);
	free(body);
	return rev;
}

static void test_parse_range(void **state)
{
	struct kv_seen s;
	char *body, err[128];
	size_t len;
	int64_t rev = -1, lease_id = 0, ttl = 0;

	(void)state;
	body = fixture("range_empty", &len);
	memset(&s, 0, sizeof(s));
	assert_true(e3_parse_range(body, len, collect_kv, &s, &rev, err, sizeof(err)));
	assert_int_equal(s.n, 0);
	assert_int_equal(rev, 1);
	free(body);

	body = fixture("lease_grant", &len);
	assert_true(e3_parse_lease_grant(body, len, &lease_id, &ttl, err, sizeof(err)));
	free(body);

	body = fixture("range_kvs", &len);
	memset(&s, 0, sizeof(s));
	assert_true(e3_parse_range(body, len, collect_kv, &s, &rev, err, sizeof(err)));
	assert_int_equal(rev, revision_of("put_binary"));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "/service/batman/config");
	assert_string_equal(s.values[0], "{\"ttl\":30,\"loop_wait\":10}");
	assert_int_equal(s.value_len[0], strlen(s.values[0]));
	assert_int_equal(s.mod[0], revision_of("put"));
	assert_int_equal(s.create[0], revision_of("put"));
	assert_int_equal(s.version[0], 1);
	assert_int_equal(s.lease[0], 0);
	assert_string_equal(s.keys[1], "/service/batman/leader");
	assert_string_equal(s.values[1], "pg-1");
	assert_int_equal(s.mod[1], revision_of("put_leader"));
	assert_int_equal(s.lease[1], lease_id); /* the lease-bound key */
	assert_true(lease_id > 0);
	assert_string_equal(s.keys[2], "/service/batman/x-bin");
	assert_int_equal(s.value_len[2], 5);
	assert_memory_equal(s.values[2], "a\0\377\nz", 6); /* and NUL-terminated */

	/* the callback stops the walk */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	err[0] = '\0';
	assert_false(e3_parse_range(body, len, collect_kv, &s, &rev, err, sizeof(err)));
	assert_int_equal(s.n, 2);
	assert_true(err[0] != '\0');
	/* no callback, no revision pointer, no err buffer */
	assert_true(e3_parse_range(body, len, NULL, NULL, NULL, NULL, 0));
	free(body);

	body = fixture("auth_range_ok", &len);
	memset(&s, 0, sizeof(s));
	assert_true(e3_parse_range(body, len, collect_kv, &s, &rev, err, sizeof(err)));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[1], "/service/batman/initialize");
	assert_string_equal(s.values[1], "7300000000000000001");
	free(body);

	/* error bodies are not range responses */
	body = fixture("auth_no_token", &len);
	assert_false(e3_parse_range(body, len, collect_kv, &s, &rev, err, sizeof(err)));
	free(body);
}

static void test_parse_revision(void **state)
{
	char *body, err[128];
	size_t len;
	int64_t rev;

	(void)state;
	assert_int_equal(revision_of("put_leader"), 2);
	assert_int_equal(revision_of("put"), 3);
	assert_int_equal(revision_of("put_binary"), 4);
	assert_int_equal(revision_of("deleterange"), 5);
	assert_int_equal(revision_of("deleterange_none"), 5); /* nothing deleted, no new revision */
	assert_true(revision_of("lease_revoke") > 0);
	body = fixture("noleader_put", &len);
	err[0] = '\0';
	assert_false(e3_parse_revision(body, len, &rev, err, sizeof(err)));
	assert_true(err[0] != '\0');
	free(body);
}

static void test_parse_txn(void **state)
{
	static const struct {
		const char *file;
		bool succeeded, nested;
	} cases[] = {
		{"txn_create_ok", true, false},
		{"txn_create_fail", false, false},
		{"txn_mod_put_ok", true, false},
		{"txn_mod_put_fail", false, false},
		{"txn_mod_delete_ok", true, false},
		{"txn_mod_delete_fail", false, false},
		{"txn_value_delete_ok", true, false},
		{"txn_value_delete_fail", false, false},
		{"txn_rebind_ok", true, false},
		{"txn_rebind_nested_ok", false, true},
		{"txn_rebind_nested_fail", false, false},
	};
	size_t i, len;
	char *body, err[128];
	bool ok, nested;
	int64_t rev;
	struct json_object *o;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		body = fixture(cases[i].file, &len);
		ok = !cases[i].succeeded;
		nested = !cases[i].nested;
		rev = 0;
		if (!e3_parse_txn(body, len, &ok, &nested, &rev, err, sizeof(err)))
			fail_msg("%s: %s", cases[i].file, err);
		if (ok != cases[i].succeeded || nested != cases[i].nested)
			fail_msg("%s: succeeded %d nested %d", cases[i].file, ok, nested);
		assert_true(rev > 0);
		/* the nested result is optional */
		assert_true(e3_parse_txn(body, len, &ok, NULL, NULL, err, sizeof(err)));
		free(body);
	}
	/* the revision of a successful txn is the one the write got */
	body = fixture("txn_rebind_nested_ok", &len);
	assert_true(e3_parse_txn(body, len, &ok, &nested, &rev, err, sizeof(err)));
	o = parse(body);
	assert_int_equal(rev, strtoll(json_object_get_string(at(o, "responses.0.response_txn."
	                                                        "responses.0.response_put.header."
	                                                        "revision")),
	                              NULL, 10));
	json_object_put(o);
	free(body);
	/* a lease that is gone is an error body, not a failed compare */
	body = fixture("txn_create_lease_unknown", &len);
	assert_false(e3_parse_txn(body, len, &ok, &nested, &rev, err, sizeof(err)));
	free(body);
}

static void test_parse_lease(void **state)
{
	static const struct {
		const char *file;
		int64_t ttl;
	} keepalive[] = {
		{"lease_keepalive", 30},
		{"lease_keepalive_auth_no_token", 30},
		{"lease_keepalive_unknown", 0},
		{"lease_keepalive_revoked", 0},
		{"lease_keepalive_expired", 0},
	};
	char *body, err[128];
	size_t i, len;
	int64_t id = 0, ttl = -1;

	(void)state;
	body = fixture("lease_grant", &len);
	assert_true(e3_parse_lease_grant(body, len, &id, &ttl, err, sizeof(err)));
	assert_int_equal(ttl, 30);
	assert_non_null(strstr(body, "\"ID\":\""));
	assert_int_equal(id, strtoll(strstr(body, "\"ID\":\"") + 6, NULL, 10));
	assert_true(id > (int64_t)1 << 40); /* needs all 64 bits */
	free(body);
	body = fixture("lease_grant_short", &len);
	assert_true(e3_parse_lease_grant(body, len, &id, &ttl, err, sizeof(err)));
	assert_int_equal(ttl, 2); /* etcd raised the TTL of 1 we asked for */
	free(body);
	body = fixture("noleader_lease_grant", &len);
	assert_false(e3_parse_lease_grant(body, len, &id, &ttl, err, sizeof(err)));
	free(body);

	for (i = 0; i < sizeof(keepalive) / sizeof(*keepalive); i++) {
		body = fixture(keepalive[i].file, &len);
		ttl = -1;
		if (!e3_parse_lease_keepalive(body, len, &ttl, err, sizeof(err)))
			fail_msg("%s: %s", keepalive[i].file, err);
		assert_int_equal(ttl, keepalive[i].ttl);
		free(body);
	}
	body = fixture("noleader_keepalive", &len);
	err[0] = '\0';
	assert_false(e3_parse_lease_keepalive(body, len, &ttl, err, sizeof(err)));
	assert_non_null(strstr(err, "etcdserver: no leader"));
	free(body);
	body = fixture("lease_revoke_unknown", &len);
	assert_false(e3_parse_lease_keepalive(body, len, &ttl, err, sizeof(err)));
	free(body);
	body = fixture("lease_grant", &len); /* no result wrapper */
	assert_false(e3_parse_lease_keepalive(body, len, &ttl, err, sizeof(err)));
	free(body);
}

static void test_parse_auth(void **state)
{
	char *body, *token = NULL, err[128];
	size_t len;

	(void)state;
	body = fixture("auth_ok", &len);
	assert_true(e3_parse_auth(body, len, &token, err, sizeof(err)));
	assert_non_null(token);
	assert_non_null(strstr(body, token));
	assert_true(strlen(token) > 8);
	free(token);
	free(body);
	body = fixture("auth_wrong_password", &len);
	token = (char *)body;
	assert_false(e3_parse_auth(body, len, &token, err, sizeof(err)));
	assert_null(token);
	free(body);
}

/* ------------------------------------------------------------------------ */
/* response parsers on malformed bodies */

static const char *const garbage[] = {
	"",
	"not json",
	"null",
	"[]",
	"\"x\"",
	"17",
	"{",
	"{\"header\":",
	"{\"header\":{\"revision\":\"5\"}} trailing",
	"{\"header\":{\"revision\":\"5\"},}",
	"{'header':{}}",
	"{}",
	"{\"header\":[]}",
	"{\"header\":{}}",
	"{\"header\":{\"revision\":5}}",
	"{\"header\":{\"revision\":\"\"}}",
	"{\"header\":{\"revision\":\"abc\"}}",
	"{\"header\":{\"revision\":\" 5\"}}",
	"{\"header\":{\"revision\":\"+5\"}}",
	"{\"header\":{\"revision\":\"5 \"}}",
	"{\"header\":{\"revision\":\"0x5\"}}",
	"{\"header\":{\"revision\":\"1e3\"}}",
	"{\"header\":{\"revision\":\"-\"}}",
	"{\"header\":{\"revision\":\"0\"}}",
	"{\"header\":{\"revision\":\"-5\"}}",
	"{\"header\":{\"revision\":\"9223372036854775808\"}}",
	"{\"header\":{\"revision\":\"99999999999999999999\"}}",
	"{\"header\":{\"revision\":\"-9223372036854775809\"}}",
	"{\"header\":{\"revision\":\"123456789012345678901234567890\"}}",
	"{\"header\":{\"revision\":\"5\\u00007\"}}",
	"{\"header\":{\"revision\":true}}",
	"{\"header\":\"5\"}",
};

/* Bodies with a valid header that are wrong for one parser only. */
#define H "{\"header\":{\"revision\":\"5\"},"
static const char *const bad_range[] = {
	H "\"kvs\":{}}",
	H "\"kvs\":\"x\"}",
	H "\"kvs\":[1]}",
	H "\"kvs\":[null]}",
	H "\"kvs\":[{}]}",
	H "\"kvs\":[{\"mod_revision\":\"3\"}]}",                          /* no key */
	H "\"kvs\":[{\"key\":\"\",\"mod_revision\":\"3\"}]}",             /* empty key */
	H "\"kvs\":[{\"key\":\"YQA=\",\"mod_revision\":\"3\"}]}",         /* key with a NUL */
	H "\"kvs\":[{\"key\":\"!!!!\",\"mod_revision\":\"3\"}]}",
	H "\"kvs\":[{\"key\":\"YQ\",\"mod_revision\":\"3\"}]}",
	H "\"kvs\":[{\"key\":5,\"mod_revision\":\"3\"}]}",
	H "\"kvs\":[{\"key\":\"YQ==\"}]}",                                /* no mod_revision */
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":3}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\",\"value\":\"YQ=\"}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\",\"value\":[]}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\",\"lease\":\"x\"}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\",\"version\":{}}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\",\"create_revision\":\"1.5\"}]}",
	H "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\"},{\"key\":\"Y\"}]}",
};
static const char *const bad_txn[] = {
	H "\"succeeded\":\"true\"}",
	H "\"succeeded\":1}",
	H "\"responses\":{}}",
	H "\"responses\":[1]}",
	H "\"responses\":[{\"response_txn\":[]}]}",
	H "\"responses\":[{\"response_txn\":{\"succeeded\":\"yes\"}}]}",
};
static const char *const bad_grant[] = {
	H "\"TTL\":\"30\"}",
	H "\"ID\":\"7\"}",
	H "\"ID\":\"0\",\"TTL\":\"30\"}",
	H "\"ID\":\"-7\",\"TTL\":\"30\"}",
	H "\"ID\":\"7\",\"TTL\":\"0\"}",
	H "\"ID\":\"7\",\"TTL\":\"-1\"}",
	H "\"ID\":7,\"TTL\":\"30\"}",
	H "\"ID\":\"7\",\"TTL\":\"30\",\"error\":\"lease refused\"}",
	H "\"ID\":\"7\",\"TTL\":\"30\",\"error\":5}",
};
static const char *const bad_keepalive[] = {
	"{}",
	"{\"result\":null}",
	"{\"result\":[]}",
	"{\"result\":{\"TTL\":30}}",
	"{\"result\":{\"TTL\":\"-5\"}}",
	"{\"result\":{\"TTL\":\"30s\"}}",
	"{\"result\":{\"TTL\":\"30\"}}\n{\"result\":{}}",
	"{\"error\":\"x\"}",
	"{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}",
	"{\"result\":{\"TTL\":\"30\"},\"error\":{}}",
};
static const char *const bad_auth[] = {
	"{\"header\":{}}",
	"{\"token\":5}",
	"{\"token\":\"\"}",
	"{\"token\":null}",
	"{\"token\":\"a\\u0000b\"}",
	"{\"token\":[\"x\"]}",
};
#undef H

/* Run parser j (0..5) over a body; with err == NULL also without the optional outputs. */
static bool run_parser(size_t j, const char *g, size_t len, char *err, size_t errlen,
                       struct kv_seen *s, char **token)
{
	int64_t a, b;
	bool x, y;

	switch (j) {
	case 0:
		return err ? e3_parse_range(g, len, collect_kv, s, &a, err, errlen)
		           : e3_parse_range(g, len, NULL, NULL, NULL, NULL, 0);
	case 1:
		return e3_parse_revision(g, len, err ? &a : NULL, err, errlen);
	case 2:
		return err ? e3_parse_txn(g, len, &x, &y, &a, err, errlen)
		           : e3_parse_txn(g, len, &x, NULL, NULL, NULL, 0);
	case 3:
		return err ? e3_parse_lease_grant(g, len, &a, &b, err, errlen)
		           : e3_parse_lease_grant(g, len, NULL, NULL, NULL, 0);
	case 4:
		return e3_parse_lease_keepalive(g, len, err ? &a : NULL, err, errlen);
	default:
		return e3_parse_auth(g, len, token, err, errlen);
	}
}

static void test_parse_malformed(void **state)
{
	char err[96];
	size_t i, j;
	int64_t a, b;
	bool x, y;
	char *token;
	struct kv_seen s;
	char with_nul[] = "{\"header\":{\"revision\":\"5\"}}\0";

	(void)state;
	for (i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
		const char *g = garbage[i];
		size_t len = strlen(g);

		for (j = 0; j < 6; j++) {
			bool ok;

			err[0] = '\0';
			memset(&s, 0, sizeof(s));
			token = NULL;
			ok = run_parser(j, g, len, err, sizeof(err), &s, &token);
			if (ok)
				fail_msg("parser %zu accepted \"%s\"", j, g);
			if (err[0] == '\0')
				fail_msg("parser %zu gave no reason for \"%s\"", j, g);
			assert_null(token);
			assert_int_equal(s.n, 0);
			/* and without an err buffer */
			assert_false(run_parser(j, g, len, NULL, 0, NULL, &token));
			assert_null(token);
		}
	}
	/* what the parsers accept, so that the tables above test what they say */
	assert_true(e3_parse_revision(LIT("{\"header\":{\"revision\":\"5\"}}"), &a, err,
	                              sizeof(err)));
	assert_int_equal(a, 5);
	assert_true(e3_parse_revision(
	        LIT("{\"header\":{\"revision\":\"9223372036854775807\"}}\r\n"), &a, err,
	        sizeof(err)));
	assert_int_equal(a, INT64_MAX);
	assert_true(e3_parse_range(LIT("{\"header\":{\"revision\":\"5\"},"
	                               "\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\"}]}"),
	                           NULL, NULL, &a, err, sizeof(err)));
	assert_true(e3_parse_lease_grant(
	        LIT("{\"header\":{\"revision\":\"5\"},\"ID\":\"7\",\"TTL\":\"3\"}"), &a, &b, err,
	        sizeof(err)));
	assert_int_equal(a, 7);
	assert_int_equal(b, 3);
	assert_true(e3_parse_lease_keepalive(LIT("{\"result\":{}}"), &a, err, sizeof(err)));
	assert_int_equal(a, 0);
	assert_true(e3_parse_auth(LIT("{\"token\":\"t\"}"), &token, err, sizeof(err)));
	assert_string_equal(token, "t");
	free(token);

	/* a NUL byte inside the declared length */
	assert_false(e3_parse_revision(with_nul, sizeof(with_nul) - 1, &a, err, sizeof(err)));
	/* the length, not the NUL, ends the body */
	assert_false(e3_parse_revision("{\"header\":{\"revision\":\"5\"}}", 20, &a, err,
	                               sizeof(err)));

	for (i = 0; i < sizeof(bad_range) / sizeof(*bad_range); i++) {
		memset(&s, 0, sizeof(s));
		err[0] = '\0';
		if (e3_parse_range(bad_range[i], strlen(bad_range[i]), collect_kv, &s, &a, err,
		                   sizeof(err)))
			fail_msg("range accepted %s", bad_range[i]);
		assert_true(err[0] != '\0');
		/* the good first kv of the last case was reported before the bad one */
		assert_true(s.n <= 1);
	}
	for (i = 0; i < sizeof(bad_txn) / sizeof(*bad_txn); i++) {
		if (e3_parse_txn(bad_txn[i], strlen(bad_txn[i]), &x, &y, &a, err, sizeof(err)))
			fail_msg("txn accepted %s", bad_txn[i]);
	}
	for (i = 0; i < sizeof(bad_grant) / sizeof(*bad_grant); i++) {
		if (e3_parse_lease_grant(bad_grant[i], strlen(bad_grant[i]), &a, &b, err,
		                         sizeof(err)))
			fail_msg("lease grant accepted %s", bad_grant[i]);
	}
	for (i = 0; i < sizeof(bad_keepalive) / sizeof(*bad_keepalive); i++) {
		if (e3_parse_lease_keepalive(bad_keepalive[i], strlen(bad_keepalive[i]), &a, err,
		                             sizeof(err)))
			fail_msg("keepalive accepted %s", bad_keepalive[i]);
	}
	for (i = 0; i < sizeof(bad_auth) / sizeof(*bad_auth); i++) {
		token = NULL;
		if (e3_parse_auth(bad_auth[i], strlen(bad_auth[i]), &token, err, sizeof(err)))
			fail_msg("auth accepted %s", bad_auth[i]);
		assert_null(token);
	}
	/* a tiny err buffer is cut, not overrun */
	assert_false(e3_parse_revision("{}", 2, &a, err, 5));
	assert_int_equal(strlen(err), 4);
	assert_string_equal(err, "m...");
}

/* ------------------------------------------------------------------------ */
/* the watch stream */

/* Each message rendered as one line, so that feeds can be compared. */
struct watch_log {
	char text[8192];
	size_t len;
	int n;
};

static void log_msg(void *arg, const struct e3_watch_msg *m)
{
	struct watch_log *l = arg;
	size_t i;
	int w;

	w = snprintf(l->text + l->len, sizeof(l->text) - l->len,
	             "created=%d canceled=%d error=%d reason=%s rev=%lld compact=%lld events=",
	             m->created, m->canceled, m->error, m->reason ? m->reason : "-",
	             (long long)m->revision, (long long)m->compact_revision);
	assert_true(w > 0 && (size_t)w < sizeof(l->text) - l->len);
	l->len += (size_t)w;
	for (i = 0; i < m->n_events; i++) {
		w = snprintf(l->text + l->len, sizeof(l->text) - l->len, "[%s %s %lld]",
		             m->events[i].type == E3_EV_PUT ? "PUT" : "DELETE", m->events[i].key,
		             (long long)m->events[i].mod_revision);
		assert_true(w > 0 && (size_t)w < sizeof(l->text) - l->len);
		l->len += (size_t)w;
	}
	assert_true(l->len + 1 < sizeof(l->text));
	l->text[l->len++] = '\n';
	l->text[l->len] = '\0';
	l->n++;
}

/* Feed data in pieces of the given sizes (cycled), all must be accepted. */
static void feed_split(const char *data, size_t len, const size_t *sizes, size_t nsizes,
                       struct watch_log *l)
{
	struct e3_watch_parser *p = e3_watch_parser_new(log_msg, l);
	size_t off = 0, k = 0, n;

	assert_non_null(p);
	memset(l, 0, sizeof(*l));
	while (off < len) {
		n = sizes[k++ % nsizes];
		if (n > len - off)
			n = len - off;
		assert_true(e3_watch_parser_feed(p, data + off, n));
		off += n;
	}
	e3_watch_parser_free(p);
}

static void feed_all(const char *data, size_t len, struct watch_log *l)
{
	size_t all = len;

	feed_split(data, len, &all, 1, l);
}

/* The body of an HTTP/1.1 chunked transfer, and where its chunks began. */
static char *dechunk(const char *raw, size_t rawlen, size_t *len, size_t *bounds,
                     size_t *nbounds, size_t maxbounds)
{
	char *out = malloc(rawlen + 1), *end;
	size_t pos = 0, n = 0, size;

	assert_non_null(out);
	*nbounds = 0;
	while (pos < rawlen) {
		size = strtoul(raw + pos, &end, 16);
		assert_true(end > raw + pos && (size_t)(end - raw) + 2 <= rawlen);
		assert_memory_equal(end, "\r\n", 2);
		pos = (size_t)(end - raw) + 2;
		if (size == 0)
			break;
		assert_true(pos + size + 2 <= rawlen);
		assert_true(*nbounds < maxbounds);
		bounds[(*nbounds)++] = size;
		memcpy(out + n, raw + pos, size);
		n += size;
		pos += size;
		assert_memory_equal(raw + pos, "\r\n", 2);
		pos += 2;
	}
	out[n] = '\0';
	*len = n;
	return out;
}

/* every way of cutting the stream gives the same messages */
static void check_stream(const char *name, const char *expect, int nmsg)
{
	char file[128], *stream, *raw, *body;
	size_t len, rawlen, bodylen, i, bounds[64], nbounds, one = 1, sizes[16];
	struct watch_log whole, l;
	unsigned seed;

	assert_true(snprintf(file, sizeof(file), "%s.stream", name) > 0);
	stream = slurp(file, &len);
	feed_all(stream, len, &whole);
	if (strcmp(whole.text, expect) != 0)
		fail_msg("%s:\n%s\nwant:\n%s", name, whole.text, expect);
	assert_int_equal(whole.n, nmsg);

	feed_split(stream, len, &one, 1, &l);
	assert_string_equal(l.text, whole.text);

	for (seed = 1; seed <= 200; seed++) {
		unsigned x = seed * 2654435761u;

		for (i = 0; i < 16; i++) {
			x = x * 1103515245u + 12345u;
			sizes[i] = 1 + (x >> 16) % (seed % 4 == 0 ? 400 : 40);
		}
		feed_split(stream, len, sizes, 16, &l);
		assert_string_equal(l.text, whole.text);
	}

	/* the recorded chunks, framing removed: the same bytes, fed chunk by chunk */
	assert_true(snprintf(file, sizeof(file), "%s.raw", name) > 0);
	raw = slurp(file, &rawlen);
	body = dechunk(raw, rawlen, &bodylen, bounds, &nbounds, 64);
	assert_int_equal(bodylen, len);
	assert_memory_equal(body, stream, len);
	assert_true(nbounds >= (size_t)nmsg);
	feed_split(body, bodylen, bounds, nbounds, &l);
	assert_string_equal(l.text, whole.text);
	free(body);
	free(raw);
	free(stream);
}

static void test_watch_recorded(void **state)
{
	struct index_row row;
	char expect[2048];
	int64_t start;
	long long last;

	(void)state;
	assert_true(index_lookup("watch", &row));
	free(row.request);
	start = recorded_i64("watch", "create_request.start_revision");
	/* created at start - 1, then a put, a put of the leader, a delete */
	assert_true(snprintf(expect, sizeof(expect),
	                     "created=1 canceled=0 error=0 reason=- rev=%lld compact=0 events=\n"
	                     "created=0 canceled=0 error=0 reason=- rev=%lld compact=0 events="
	                     "[PUT /service/batman/members/pg-1 %lld]\n"
	                     "created=0 canceled=0 error=0 reason=- rev=%lld compact=0 events="
	                     "[PUT /service/batman/leader %lld]\n"
	                     "created=0 canceled=0 error=0 reason=- rev=%lld compact=0 events="
	                     "[DELETE /service/batman/members/pg-1 %lld]\n",
	                     (long long)start - 1, (long long)start, (long long)start,
	                     (long long)start + 1, (long long)start + 1, (long long)start + 2,
	                     (long long)start + 2) > 0);
	check_stream("watch", expect, 4);

	/*
	 * Compacted at the last revision (start + 2), then watched from 2:
	 * canceled without a reason, with compact_revision and no header.revision.
	 */
	last = (long long)start + 2;
	assert_true(snprintf(expect, sizeof(expect),
	                     "created=1 canceled=0 error=0 reason=- rev=%lld compact=0 events=\n"
	                     "created=0 canceled=1 error=0 reason=- rev=0 compact=%lld events=\n",
	                     last, last) > 0);
	check_stream("watch_compacted", expect, 2);

	/* auth enabled, no token / bad token: created and canceled at once, with a reason */
	assert_true(snprintf(expect, sizeof(expect),
	                     "created=1 canceled=1 error=1 reason=rpc error: "
	                     "code = InvalidArgument desc = etcdserver: user name is empty "
	                     "rev=%lld compact=0 events=\n",
	                     last) > 0);
	check_stream("watch_auth_no_token", expect, 1);
	assert_true(snprintf(expect, sizeof(expect),
	                     "created=1 canceled=1 error=1 reason=rpc error: "
	                     "code = Unauthenticated desc = etcdserver: invalid auth token "
	                     "rev=%lld compact=0 events=\n",
	                     last) > 0);
	check_stream("watch_auth_invalid_token", expect, 1);

	/* a leader-requiring watch when the leader is lost: an {"error":...} message, no newline */
	check_stream("noleader_watch",
	             "created=1 canceled=0 error=0 reason=- rev=1 compact=0 events=\n"
	             "created=0 canceled=0 error=1 reason=etcdserver: no leader rev=0 compact=0 "
	             "events=\n",
	             2);
}

static void test_watch_synthetic(void **state)
{
	static const char joined[] =
	        "{\"result\":{\"header\":{\"revision\":\"7\"},\"created\":true}}\n"
	        "{\"result\":{\"header\":{\"revision\":\"8\"},\"events\":[{\"type\":\"PUT\","
	        "\"kv\":{\"key\":\"L2E=\",\"mod_revision\":\"8\",\"value\":\"eA==\"}},"
	        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2I=\",\"mod_revision\":\"8\"}}]}}\r\n"
	        "\n{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
	        "leader\",\"http_status\":\"Service Unavailable\"}}{\"result\":{\"header\":{},"
	        "\"canceled\":true,\"compact_revision\":\"6\",\"cancel_reason\":\"\"}}\n"
	        "{\"error\":{}}\n"
	        "{\"result\":{\"header\":{\"revision\":\"9\"}}}\n";
	static const char expect[] =
	        "created=1 canceled=0 error=0 reason=- rev=7 compact=0 events=\n"
	        "created=0 canceled=0 error=0 reason=- rev=8 compact=0 events=[PUT /a 8][DELETE /b "
	        "8]\n"
	        "created=0 canceled=0 error=1 reason=etcdserver: no leader rev=0 compact=0 "
	        "events=\n"
	        "created=0 canceled=1 error=0 reason=- rev=0 compact=6 events=\n"
	        "created=0 canceled=0 error=1 reason=watch stream error rev=0 compact=0 events=\n"
	        "created=0 canceled=0 error=0 reason=- rev=9 compact=0 events=\n";
	struct watch_log l;
	size_t one = 1, three[] = {3, 1, 7};
	struct e3_watch_parser *p;

	(void)state;
	feed_all(joined, sizeof(joined) - 1, &l);
	assert_string_equal(l.text, expect);
	feed_split(joined, sizeof(joined) - 1, &one, 1, &l);
	assert_string_equal(l.text, expect);
	feed_split(joined, sizeof(joined) - 1, three, 3, &l);
	assert_string_equal(l.text, expect);

	/* nothing complete yet: no message; whitespace alone is fine */
	memset(&l, 0, sizeof(l));
	p = e3_watch_parser_new(log_msg, &l);
	assert_non_null(p);
	assert_true(e3_watch_parser_feed(p, "\r\n \n", 4));
	assert_true(e3_watch_parser_feed(p, "{\"result\":{\"header\":{\"revi", 26));
	assert_true(e3_watch_parser_feed(p, "", 0));
	assert_int_equal(l.n, 0);
	assert_true(e3_watch_parser_feed(p, "sion\":\"3\"}}}", 12));
	assert_int_equal(l.n, 1);
	e3_watch_parser_free(p);
	e3_watch_parser_free(NULL);
	assert_null(e3_watch_parser_new(NULL, NULL));
}

static void test_watch_malformed(void **state)
{
	static const char *const bad[] = {
		"garbage\n",
		"null\n",
		"[1]\n",
		"17\n",
		"\"x\"\n",
		"{\"neither\":1}\n",
		"{\"result\":[]}\n",
		"{\"result\":{\"header\":[]}}\n",
		"{\"result\":{\"header\":{\"revision\":7}}}\n",
		"{\"result\":{\"header\":{\"revision\":\"99999999999999999999\"}}}\n",
		"{\"result\":{\"created\":\"yes\"}}\n",
		"{\"result\":{\"canceled\":1}}\n",
		"{\"result\":{\"compact_revision\":\"x\"}}\n",
		"{\"result\":{\"cancel_reason\":5}}\n",
		"{\"result\":{\"events\":{}}}\n",
		"{\"result\":{\"events\":[1]}}\n",
		"{\"result\":{\"events\":[{}]}}\n",
		"{\"result\":{\"events\":[{\"type\":\"BOGUS\",\"kv\":{\"key\":\"L2E=\","
		"\"mod_revision\":\"8\"}}]}}\n",
		"{\"result\":{\"events\":[{\"type\":5,\"kv\":{\"key\":\"L2E=\","
		"\"mod_revision\":\"8\"}}]}}\n",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2E\",\"mod_revision\":\"8\"}}]}}\n",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"\",\"mod_revision\":\"8\"}}]}}\n",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2E=\"}}]}}\n",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2E=\",\"mod_revision\":\"8\","
		"\"value\":\"!\"}}]}}\n",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2E=\",\"mod_revision\":\"8\"}},"
		"{\"kv\":5}]}}\n",
		"{\"result\":{},}\n",
		"}\n",
	};
	struct watch_log l;
	struct e3_watch_parser *p;
	size_t i;
	static const char good[] = "{\"result\":{\"header\":{\"revision\":\"3\"}}}\n";

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memset(&l, 0, sizeof(l));
		p = e3_watch_parser_new(log_msg, &l);
		assert_non_null(p);
		assert_true(e3_watch_parser_feed(p, good, sizeof(good) - 1));
		if (e3_watch_parser_feed(p, bad[i], strlen(bad[i])))
			fail_msg("watch accepted %s", bad[i]);
		assert_int_equal(l.n, 1);
		/* once broken, always broken: the caller reconnects */
		assert_false(e3_watch_parser_feed(p, good, sizeof(good) - 1));
		assert_int_equal(l.n, 1);
		e3_watch_parser_free(p);
	}
	/* a NUL byte, even between messages */
	memset(&l, 0, sizeof(l));
	p = e3_watch_parser_new(log_msg, &l);
	assert_non_null(p);
	assert_false(e3_watch_parser_feed(p, "\n\0\n", 3));
	e3_watch_parser_free(p);
	assert_false(e3_watch_parser_feed(NULL, good, sizeof(good) - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_binary),
		cmocka_unit_test(test_b64_bad),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_req_range_put_delete),
		cmocka_unit_test(test_req_txn),
		cmocka_unit_test(test_req_lease_watch_auth),
		cmocka_unit_test(test_req_match_recordings),
		cmocka_unit_test(test_classify_recorded),
		cmocka_unit_test(test_classify_synthetic),
		cmocka_unit_test(test_classify_message),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_parse_revision),
		cmocka_unit_test(test_parse_txn),
		cmocka_unit_test(test_parse_lease),
		cmocka_unit_test(test_parse_auth),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_watch_recorded),
		cmocka_unit_test(test_watch_synthetic),
		cmocka_unit_test(test_watch_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
