/*
 * core/peers.c without a network: Patroni's reading of GET /patroni bodies
 * (recorded from Patroni 3.0.2 in tests/data/patroni-3.0.2/rest/, plus odd
 * and malformed ones), the POST /failsafe body compared byte for byte with
 * what Patroni sent, and PatroniRequest's choice of credentials and TLS
 * settings from a configuration.  The HTTP side is tested against live
 * servers in tests/integration/test_peers.py.
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
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "peers.h"
#include "util.h"

#define REST TEST_SRCDIR "/tests/data/patroni-3.0.2/rest"
#define CAPTURED TEST_SRCDIR "/tests/data/patroni-3.0.2"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("missing test data %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

static bool parse_file(const char *path, struct pgkeel_peer_status *st)
{
	size_t len;
	char *body = slurp(path, &len);
	bool ok = pgkeel_peer_status_parse(body, len, st);

	free(body);
	return ok;
}

static bool parse_str(const char *body, struct pgkeel_peer_status *st)
{
	return pgkeel_peer_status_parse(body, strlen(body), st);
}

/* ---- bodies Patroni 3.0.2 answered ---- */

static void test_captured_primary(void **state)
{
	struct pgkeel_peer_status st = { 0 };

	(void)state;
	assert_true(parse_file(REST "/patroni-primary.json", &st));
	assert_true(st.reachable);
	assert_false(st.in_recovery);
	assert_int_equal(st.wal_position, 0);
	assert_int_equal(st.timeline, 1);
	assert_int_equal(st.dcs_last_seen, 1795657598);
	assert_false(st.nofailover);
	assert_int_equal(st.failover_priority, 1);
	assert_false(st.watchdog_failed);
	assert_int_equal(st.limitation, PGKEEL_PEER_CAN_PROMOTE);
	assert_string_equal(st.error, "");
	assert_non_null(st.json);
	assert_string_equal(json_object_get_string(json_object_object_get(st.json, "state")),
	                    "running");
	pgkeel_peer_status_clear(&st);
	assert_null(st.json);
	/* the earlier capture's leader (two walsenders, one sync) */
	assert_true(parse_file(CAPTURED "/rest-patroni-leader.json", &st));
	assert_false(st.in_recovery);
	pgkeel_peer_status_clear(&st);
}

static void test_captured_replicas(void **state)
{
	struct pgkeel_peer_status st = { 0 };

	(void)state;
	assert_true(parse_file(REST "/patroni-replica.json", &st));
	assert_true(st.in_recovery);
	assert_int_equal(st.wal_position, 67108864);
	assert_int_equal(st.timeline, 1);
	assert_int_equal(st.limitation, PGKEEL_PEER_CAN_PROMOTE);

	assert_true(parse_file(REST "/patroni-replica-nofailover.json", &st));
	assert_true(st.in_recovery);
	assert_true(st.nofailover);
	assert_int_equal(st.failover_priority, 0);
	assert_int_equal(st.limitation, PGKEEL_PEER_NOFAILOVER);
	assert_string_equal(pgkeel_peer_limitation_text(st.limitation), "not allowed to promote");

	assert_true(parse_file(CAPTURED "/rest-patroni-replica.json", &st));
	assert_true(st.in_recovery);
	assert_int_equal(st.wal_position, 67109000);
	assert_true(parse_file(CAPTURED "/rest-patroni-replica-async.json", &st));
	assert_int_equal(st.wal_position, 67109000);
	pgkeel_peer_status_clear(&st);
}

/* PostgreSQL stopped: no xlog, so Patroni's peers count the node unreachable. */
static void test_captured_stopped(void **state)
{
	struct pgkeel_peer_status st = { 0 };

	(void)state;
	assert_false(parse_file(REST "/patroni-stopped.json", &st));
	assert_false(st.reachable);
	assert_int_equal(st.limitation, PGKEEL_PEER_NOT_REACHABLE);
	assert_string_equal(pgkeel_peer_limitation_text(st.limitation), "not reachable");
	assert_non_null(strstr(st.error, "xlog"));
	pgkeel_peer_status_clear(&st);
}

/* ---- odd bodies: what Python's _MemberStatus.from_api_response makes of them ---- */

struct odd {
	const char *body;
	bool reachable;
	bool in_recovery;
	int64_t wal;
	int64_t timeline;
	enum pgkeel_peer_limitation lim;
};

static void test_odd_bodies(void **state)
{
	static const struct odd cases[] = {
		/* not an object Patroni can read */
		{ "", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "<html>Bad Gateway</html>", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"location\": 1}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "[\"xlog\"]", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "\"xlog\"", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "null", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"state\": \"running\", \"role\": \"master\"}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": null}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": [1]}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": \"0/3000000\"}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		/* wal (Patroni 4) before xlog, when truthy */
		{ "{\"wal\": {\"location\": 5}}", true, false, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"wal\": {}, \"xlog\": {\"received_location\": 7}}", true, true, 7, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"wal\": null, \"xlog\": {\"replayed_location\": 8}}", true, true, 8, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"wal\": {\"received_location\": 3}, \"xlog\": {\"location\": 9}}", true, true, 3,
		  0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"wal\": {}}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		/* primary: a truthy location, or role master/primary (the 3.1 fix) */
		{ "{\"xlog\": {}, \"role\": \"master\"}", true, false, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {}, \"role\": \"primary\"}", true, false, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"received_location\": 4}, \"role\": \"primary\"}", true, false, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {}, \"role\": \"replica\"}", true, true, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {}, \"role\": \"standby_leader\"}", true, true, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {}, \"role\": [\"master\"]}", true, true, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 0}}", true, true, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": null, \"received_location\": 6}}", true, true, 6, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": \"abc\"}}", true, false, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		/* positions: max of the two, numbers only */
		{ "{\"xlog\": {\"received_location\": 10, \"replayed_location\": 12}}", true, true, 12,
		  0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"received_location\": 5.7, \"replayed_location\": 3}}", true, true, 5,
		  0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"received_location\": true}}", true, true, 1, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"received_location\": \"5\", \"replayed_location\": 3}}", false, false,
		  0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"received_location\": \"5\", \"replayed_location\": \"6\"}}", false,
		  false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"received_location\": null}}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"replayed_location\": {}}}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"received_location\": 1e300}}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		/* a primary's garbage positions are never looked at */
		{ "{\"xlog\": {\"location\": 9, \"received_location\": \"x\"}}", true, false, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		/* timeline */
		{ "{\"xlog\": {\"location\": 9}, \"timeline\": 3}", true, false, 0, 3,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 9}, \"timeline\": null}", true, false, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 9}, \"timeline\": 2.0}", true, false, 0, 2,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 9}, \"timeline\": \"2\"}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"location\": 9}, \"timeline\": [2]}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		/* tags, watchdog */
		{ "{\"xlog\": {\"location\": 9}, \"tags\": []}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"location\": 9}, \"tags\": null}", false, false, 0, 0,
		  PGKEEL_PEER_NOT_REACHABLE },
		{ "{\"xlog\": {\"location\": 9}, \"tags\": {\"nofailover\": \"false\"}}", true, false,
		  0, 0, PGKEEL_PEER_NOFAILOVER },
		{ "{\"xlog\": {\"location\": 9}, \"tags\": {\"nofailover\": 0}}", true, false, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 9}, \"watchdog_failed\": true}", true, false, 0, 0,
		  PGKEEL_PEER_WATCHDOG_FAILED },
		{ "{\"xlog\": {\"location\": 9}, \"watchdog_failed\": false}", true, false, 0, 0,
		  PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 9}, \"watchdog_failed\": true, \"tags\": "
		  "{\"nofailover\": true}}",
		  true, false, 0, 0, PGKEEL_PEER_NOFAILOVER },
		/* the last of duplicate keys wins, as in Python */
		{ "{\"xlog\": {\"location\": 1}, \"xlog\": {\"received_location\": 9}}", true, true, 9,
		  0, PGKEEL_PEER_CAN_PROMOTE },
		/* surrounding whitespace is fine; a trailing second value is not */
		{ " \n{\"xlog\": {\"location\": 1}}\n", true, false, 0, 0, PGKEEL_PEER_CAN_PROMOTE },
		{ "{\"xlog\": {\"location\": 1}} {}", false, false, 0, 0, PGKEEL_PEER_NOT_REACHABLE },
	};
	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		const struct odd *c = &cases[i];
		struct pgkeel_peer_status st = { 0 };
		bool ok = parse_str(c->body, &st);

		if (ok != c->reachable || st.reachable != c->reachable ||
		    st.in_recovery != c->in_recovery || st.wal_position != c->wal ||
		    st.timeline != c->timeline || st.limitation != c->lim)
			fail_msg("case %zu %s: reachable %d in_recovery %d wal %lld timeline %lld "
			         "limitation %d (%s)",
			         i, c->body, st.reachable, st.in_recovery, (long long)st.wal_position,
			         (long long)st.timeline, st.limitation, st.error);
		assert_true(c->reachable ? st.error[0] == '\0' : st.error[0] != '\0');
		pgkeel_peer_status_clear(&st);
	}
}

static void test_bytes_python_refuses(void **state)
{
	static const char bad_utf8[] = "{\"xlog\": {\"location\": 1}, \"state\": \"r\xff\"}";
	static const char nul[] = "{\"xlog\": {\"location\": 1}}\0";
	struct pgkeel_peer_status st = { 0 };

	(void)state;
	assert_false(pgkeel_peer_status_parse(bad_utf8, sizeof(bad_utf8) - 1, &st));
	assert_false(pgkeel_peer_status_parse(nul, sizeof(nul) - 1, &st));
	assert_false(pgkeel_peer_status_parse(NULL, 0, &st));
	assert_int_equal(st.limitation, PGKEEL_PEER_NOT_REACHABLE);
	/* a status reused for another answer forgets the previous one */
	assert_true(parse_str("{\"xlog\": {\"received_location\": 3}, \"tags\": "
	                      "{\"nofailover\": true}}",
	                      &st));
	assert_true(st.nofailover);
	assert_true(parse_str("{\"xlog\": {\"location\": 3}}", &st));
	assert_false(st.nofailover);
	assert_false(st.in_recovery);
	pgkeel_peer_status_clear(&st);
}

/* failover_priority (Patroni 3.2+ peers): nofailover when <= 0 unless nofailover is set. */
static void test_failover_priority(void **state)
{
	static const struct {
		const char *tags;
		bool nofailover;
		int64_t prio;
	} cases[] = {
		{ "{}", false, 1 },
		{ "{\"failover_priority\": 3}", false, 3 },
		{ "{\"failover_priority\": \"4\"}", false, 4 },
		{ "{\"failover_priority\": 0}", true, 0 },
		{ "{\"failover_priority\": -2}", true, -2 },
		{ "{\"failover_priority\": \"junk\"}", false, 1 },
		{ "{\"nofailover\": false, \"failover_priority\": 0}", false, 0 },
		{ "{\"nofailover\": true, \"failover_priority\": 5}", true, 0 },
		{ "{\"nofailover\": null, \"failover_priority\": 0}", true, 0 },
	};
	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		struct pgkeel_peer_status st = { 0 };
		char *body = pgkeel_asprintf("{\"xlog\": {\"received_location\": 1}, \"tags\": %s}",
		                             cases[i].tags);

		assert_true(parse_str(body, &st));
		if (st.nofailover != cases[i].nofailover || st.failover_priority != cases[i].prio)
			fail_msg("tags %s: nofailover %d priority %lld", cases[i].tags, st.nofailover,
			         (long long)st.failover_priority);
		free(body);
		pgkeel_peer_status_clear(&st);
	}
}

static void test_is_lagging(void **state)
{
	(void)state;
	assert_false(pgkeel_peer_is_lagging(1000, 1000, 0));
	assert_true(pgkeel_peer_is_lagging(1001, 1000, 0));
	assert_false(pgkeel_peer_is_lagging(2048576, 1000000, 1048576));
	assert_true(pgkeel_peer_is_lagging(2048577, 1000000, 1048576));
	assert_false(pgkeel_peer_is_lagging(0, 5000, 0));
	assert_null(pgkeel_peer_limitation_text(PGKEEL_PEER_CAN_PROMOTE));
	assert_string_equal(pgkeel_peer_limitation_text(PGKEEL_PEER_WATCHDOG_FAILED),
	                    "not watchdog capable");
}

/* ---- POST /failsafe body ---- */

static void test_failsafe_body_as_patroni(void **state)
{
	size_t len;
	char *raw = slurp(REST "/sent-post-failsafe.http", &len);
	const char *sent = strstr(raw, "\r\n\r\n");
	json_object *sent_json;
	char err[128];
	struct pgkeel_failsafe_msg m = { 0 };
	char *ours;

	(void)state;
	assert_non_null(sent);
	sent += 4;
	/* the same values as the capture's primary sent */
	assert_true(pgkeel_json_parse(sent, strlen(sent), &sent_json, err, sizeof(err)));
	m.name = json_object_get_string(json_object_object_get(sent_json, "name"));
	m.conn_url = json_object_get_string(json_object_object_get(sent_json, "conn_url"));
	m.api_url = json_object_get_string(json_object_object_get(sent_json, "api_url"));
	m.slots = NULL;
	ours = pgkeel_failsafe_msg_body(&m);
	assert_string_equal(ours, sent);
	free(ours);
	json_object_put(sent_json);
	free(raw);
}

static void test_failsafe_body_slots(void **state)
{
	json_object *slots = json_object_new_object();
	struct pgkeel_failsafe_msg m = { .name = "pg-1\xc3\xa9",
		                         .conn_url = "postgres://10.0.0.1:5432/postgres",
		                         .api_url = "https://10.0.0.1:8008/patroni",
		                         .slots = slots };
	char *s;

	(void)state;
	json_object_object_add(slots, "pg_2", json_object_new_int64(67109000));
	json_object_object_add(slots, "logical_1", json_object_new_int64(5));
	s = pgkeel_failsafe_msg_body(&m);
	assert_string_equal(s, "{\"name\": \"pg-1\\u00e9\", \"conn_url\": "
	                       "\"postgres://10.0.0.1:5432/postgres\", \"api_url\": "
	                       "\"https://10.0.0.1:8008/patroni\", \"slots\": {\"pg_2\": 67109000, "
	                       "\"logical_1\": 5}}");
	free(s);
	/* the caller's object is untouched */
	assert_int_equal(json_object_object_length(slots), 2);
	json_object_put(slots);
}

/* ---- PatroniRequest's settings ---- */

static void settings_of(const char *effective_json, int insecure,
                        struct pgkeel_peers_settings *s, char *buf, size_t len,
                        struct pgkeel_config *c)
{
	char err[128];

	memset(c, 0, sizeof(*c));
	assert_true(pgkeel_json_parse(effective_json, strlen(effective_json), &c->effective, err,
	                              sizeof(err)));
	pgkeel_peers_settings_from_config(c, insecure, buf, len, s);
}

static bool same(const char *got, const char *want)
{
	return got == NULL || want == NULL ? got == want : strcmp(got, want) == 0;
}

static void test_settings(void **state)
{
	static const struct {
		const char *cfg;
		int insecure;
		const char *auth, *cert, *key, *keypw, *ca;
		bool verify_peer, verify_host;
	} cases[] = {
		/* the daemon (insecure) with nothing configured: no verification */
		{ "{\"restapi\": {\"listen\": \"127.0.0.1:8008\"}}", 1, NULL, NULL, NULL, NULL, NULL,
		  false, false },
		{ "{}", 0, NULL, NULL, NULL, NULL, NULL, true, true },
		/* basic auth: restapi.authentication, restapi.auth, ctl.auth, ctl.authentication */
		{ "{\"restapi\": {\"authentication\": {\"username\": \"u\", \"password\": \"p:w\"}}}",
		  1, "u:p:w", NULL, NULL, NULL, NULL, false, false },
		{ "{\"restapi\": {\"auth\": \"a:b\"}}", 1, "a:b", NULL, NULL, NULL, NULL, false,
		  false },
		{ "{\"restapi\": {\"auth\": \"a:b\", \"authentication\": {\"username\": \"u\", "
		  "\"password\": \"p\"}}}",
		  1, "u:p", NULL, NULL, NULL, NULL, false, false },
		{ "{\"restapi\": {\"authentication\": {\"username\": \"u\", \"password\": \"p\"}}, "
		  "\"ctl\": {\"auth\": \"c:d\"}}",
		  1, "c:d", NULL, NULL, NULL, NULL, false, false },
		{ "{\"restapi\": {\"authentication\": {\"username\": \"u\", \"password\": \"p\"}}, "
		  "\"ctl\": {\"auth\": \"c:d\", \"authentication\": {\"username\": \"e\", "
		  "\"password\": \"f\"}}}",
		  1, "e:f", NULL, NULL, NULL, NULL, false, false },
		{ "{\"restapi\": {\"authentication\": {\"username\": \"u\"}}}", 1, NULL, NULL, NULL,
		  NULL, NULL, false, false },
		{ "{\"restapi\": {\"auth\": \"\"}}", 1, NULL, NULL, NULL, NULL, NULL, false, false },
		/* the server's certificate doubles as the client certificate; with a client
		 * certificate the chain is verified even when insecure, the host name not */
		{ "{\"restapi\": {\"certfile\": \"/s.crt\", \"keyfile\": \"/s.key\", "
		  "\"keyfile_password\": \"kp\", \"cafile\": \"/ca.crt\"}}",
		  1, NULL, "/s.crt", "/s.key", "kp", "/ca.crt", true, false },
		{ "{\"restapi\": {\"certfile\": \"/s.crt\", \"keyfile\": \"/s.key\"}, \"ctl\": "
		  "{\"certfile\": \"/c.crt\", \"cacert\": \"/ctlca.crt\"}}",
		  1, NULL, "/c.crt", "/s.key", NULL, "/ctlca.crt", true, false },
		{ "{\"restapi\": {\"certfile\": \"/s.crt\"}, \"ctl\": {\"certfile\": \"/c.crt\", "
		  "\"keyfile\": \"/c.key\", \"keyfile_password\": \"ckp\"}}",
		  0, NULL, "/c.crt", "/c.key", "ckp", NULL, true, true },
		{ "{\"ctl\": {\"certfile\": \"\", \"keyfile\": \"/c.key\"}, \"restapi\": "
		  "{\"cafile\": \"/ca.crt\"}}",
		  1, NULL, NULL, NULL, NULL, "/ca.crt", false, false },
		/* insecure from ctl.insecure (patronictl) */
		{ "{\"ctl\": {\"insecure\": true}}", -1, NULL, NULL, NULL, NULL, NULL, false, false },
		{ "{\"ctl\": {\"insecure\": false}}", -1, NULL, NULL, NULL, NULL, NULL, true, true },
		{ "{\"ctl\": {\"insecure\": true, \"certfile\": \"/c.crt\"}}", -1, NULL, "/c.crt",
		  NULL, NULL, NULL, true, false },
		/* the daemon ignores ctl.insecure, as Patroni (insecure=True) */
		{ "{\"ctl\": {\"insecure\": false}}", 1, NULL, NULL, NULL, NULL, NULL, false, false },
	};
	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		struct pgkeel_peers_settings s;
		struct pgkeel_config c;
		char buf[128];

		settings_of(cases[i].cfg, cases[i].insecure, &s, buf, sizeof(buf), &c);
		if (!same(s.auth, cases[i].auth) || !same(s.certfile, cases[i].cert) ||
		    !same(s.keyfile, cases[i].key) || !same(s.keyfile_password, cases[i].keypw) ||
		    !same(s.cafile, cases[i].ca) || s.verify_peer != cases[i].verify_peer ||
		    s.verify_host != cases[i].verify_host)
			fail_msg("case %zu %s (insecure %d): auth %s cert %s key %s keypw %s ca %s "
			         "verify_peer %d verify_host %d",
			         i, cases[i].cfg, cases[i].insecure, s.auth, s.certfile, s.keyfile,
			         s.keyfile_password, s.cafile, s.verify_peer, s.verify_host);
		json_object_put(c.effective);
	}
}

/* The same through a real patroni.yml, so the keys are where the config module puts them. */
static void test_settings_from_file(void **state)
{
	struct pgkeel_config_opts opts = { 0 };
	struct pgkeel_peers_settings s;
	struct pgkeel_config *c;
	struct pgkeel_diag d;
	char path[] = "/tmp/pgkeel-test-peers-XXXXXX";
	char buf[128];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("scope: s\nname: pg-1\n"
	      "restapi:\n  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n"
	      "  certfile: /etc/ssl/s.pem\n  keyfile: /etc/ssl/s.key\n  cafile: /etc/ssl/ca.pem\n"
	      "  authentication:\n    username: patroni\n    password: rest-secret\n"
	      "ctl:\n  keyfile_password: kp\n"
	      "etcd3:\n  hosts: 127.0.0.1:2379\n"
	      "postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n"
	      "  data_dir: /tmp/nonexistent-pgkeel\n"
	      "  authentication:\n    superuser: {username: postgres, password: x}\n"
	      "    replication: {username: r, password: y}\n",
	      f);
	fclose(f);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	unlink(path);
	if (c == NULL) {
		pgkeel_diag_log(&d);
		fail_msg("config did not load");
	}
	pgkeel_diag_clear(&d);
	pgkeel_peers_settings_from_config(c, 1, buf, sizeof(buf), &s);
	assert_string_equal(s.auth, "patroni:rest-secret");
	assert_string_equal(s.certfile, "/etc/ssl/s.pem");
	assert_string_equal(s.keyfile, "/etc/ssl/s.key");
	assert_string_equal(s.keyfile_password, "kp");
	assert_string_equal(s.cafile, "/etc/ssl/ca.pem");
	assert_true(s.verify_peer);
	assert_false(s.verify_host);
	pgkeel_config_unref(c);
}

/* ---- the client without a network: inputs refused at once ---- */

static void test_client_bad_targets(void **state)
{
	struct pgkeel_peers_settings set = { 0 };
	struct pgkeel_peers *p = pgkeel_peers_new(&set);
	struct pgkeel_peer_target t[] = {
		{ "pg-2", "" },
		{ "pg-3", NULL },
		{ "pg-4", "ftp://127.0.0.1:1/patroni" },
		{ "pg-5", "not a url" },
	};
	struct pgkeel_peer_status st[4];
	struct pgkeel_peer_post_result r[4];
	struct pgkeel_failsafe_msg m = { .name = "pg-1" };
	int64_t start = pgkeel_now_monotonic_ms();

	(void)state;
	assert_non_null(p);
	memset(st, 0, sizeof(st));
	pgkeel_peers_fetch_status(p, t, 4, start + 5000, st);
	for (size_t i = 0; i < 4; i++) {
		assert_false(st[i].reachable);
		assert_int_equal(st[i].limitation, PGKEEL_PEER_NOT_REACHABLE);
		assert_int_equal(st[i].http_code, 0);
		assert_true(st[i].error[0] != '\0');
		pgkeel_peer_status_clear(&st[i]);
	}
	assert_false(pgkeel_peers_post_failsafe(p, t, 4, &m, start + 5000, r));
	for (size_t i = 0; i < 4; i++) {
		assert_false(r[i].accepted);
		assert_true(r[i].error[0] != '\0');
	}
	/* no other member: Patroni's single-node case */
	assert_true(pgkeel_peers_post_failsafe(p, t, 0, &m, start + 5000, NULL));
	assert_false(pgkeel_peers_alive(p, "", start + 5000, NULL));
	assert_false(pgkeel_peers_alive(p, NULL, start + 5000, NULL));
	/* none of that waited for anything */
	assert_true(pgkeel_now_monotonic_ms() - start < 1000);
	/* a deadline already past: nothing is sent */
	memset(st, 0, sizeof(st));
	pgkeel_peers_fetch_status(p, (struct pgkeel_peer_target[]){ { "x", "http://127.0.0.1:9/" } },
	                          1, start - 1, st);
	assert_false(st[0].reachable);
	pgkeel_peer_status_clear(&st[0]);
	pgkeel_peers_free(p);
	pgkeel_peers_free(NULL);
}

static int setup(void **state)
{
	(void)state;
	return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured_primary),
		cmocka_unit_test(test_captured_replicas),
		cmocka_unit_test(test_captured_stopped),
		cmocka_unit_test(test_odd_bodies),
		cmocka_unit_test(test_bytes_python_refuses),
		cmocka_unit_test(test_failover_priority),
		cmocka_unit_test(test_is_lagging),
		cmocka_unit_test(test_failsafe_body_as_patroni),
		cmocka_unit_test(test_failsafe_body_slots),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_settings_from_file),
		cmocka_unit_test(test_client_bad_targets),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
