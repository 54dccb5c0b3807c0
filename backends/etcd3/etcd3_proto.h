/*
 * etcd3_proto: the request bodies and response parsing of etcd's v3 JSON
 * gateway (grpc-gateway), and the classification of every failure into the
 * ABI statuses.  No I/O here, so all of it is unit-tested against recorded
 * responses (tests/unit/test_etcd3_proto.c, tests/data/etcd3/).
 *
 * Gateway conventions: keys and values are base64 (standard alphabet,
 * padded); int64 fields are decimal strings in responses ("mod_revision":
 * "42"); zero, false and empty fields are omitted from responses.
 *
 * All returned strings are malloc'd; the caller frees them.
 */
#ifndef PGKEEL_ETCD3_PROTO_H
#define PGKEEL_ETCD3_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/dcs.h>

/* ---- encoding helpers ---- */

char *e3_b64_encode(const char *data, size_t len);
/* Decode; false on malformed input.  *out is NUL-terminated (len excludes it). */
bool e3_b64_decode(const char *b64, char **out, size_t *outlen);
/* range_end for a prefix read: the prefix with its last byte below 0xff incremented. */
char *e3_prefix_end(const char *prefix);

/* ---- requests (JSON text) ---- */

char *e3_req_range(const char *key, const char *range_end, bool serializable);
/* lease 0 = no lease */
char *e3_req_put(const char *key, const char *value, size_t vlen, int64_t lease);
char *e3_req_deleterange(const char *key, const char *range_end);
/* txn: CREATE(key) == 0 -> put */
char *e3_req_txn_create(const char *key, const char *value, size_t vlen, int64_t lease);
/* txn: MOD(key) == mod_revision -> put */
char *e3_req_txn_mod_put(const char *key, const char *value, size_t vlen, int64_t mod_revision);
/* txn: MOD(key) == mod_revision -> delete */
char *e3_req_txn_mod_delete(const char *key, int64_t mod_revision);
/* txn: VALUE(key) == value -> delete */
char *e3_req_txn_value_delete(const char *key, const char *value);
/*
 * The leader refresh of Patroni >= 3.0.3: VALUE(key) == name -> put(key,
 * name, lease), failure branch: txn { CREATE(key) == 0 -> put(key, name,
 * lease) }.  Never overwrites another member's key.
 */
char *e3_req_txn_leader_rebind(const char *key, const char *name, int64_t lease);
char *e3_req_lease_grant(int64_t ttl);
char *e3_req_lease_keepalive(int64_t id);
char *e3_req_lease_revoke(int64_t id);
char *e3_req_watch_create(const char *key, const char *range_end, int64_t start_revision);
char *e3_req_auth(const char *user, const char *password);

/* ---- classification ---- */

struct e3_result {
	enum pgkeel_dcs_status status; /* OK, UNAVAILABLE, INVALID (never CONFLICT: see txn) */
	int detail;                    /* enum pgkeel_dcs_detail */
	bool next_endpoint;            /* this member is unhealthy: try the next one */
	bool reauth;                   /* the auth token is invalid/expired: authenticate again */
	bool auth_disabled;            /* "authentication is not enabled": go on without a token */
	bool lease_not_found;          /* "requested lease not found" */
	char msg[PGKEEL_ERR_MSG_LEN];  /* one line for the log: "etcd 127.0.0.1:2379: ..." */
};

/*
 * Classify one HTTP exchange.  curl_code is libcurl's CURLcode (0 = the
 * request completed), http_status the response code (0 if none), body the
 * response body.  endpoint names the member in msg.
 *
 * UNAVAILABLE (+ next_endpoint) for: connection refused/reset, DNS failure,
 * timeouts, HTTP 5xx, gRPC Unavailable(14)/DeadlineExceeded(4)/Unknown with
 * "etcdserver: no leader", "leader changed", "request timed out", "not a
 * primary lessor", "too many requests", a body that is not JSON.
 * UNAVAILABLE + detail AUTH for "authentication failed" and permission
 * denied; reauth for invalid/empty/old auth tokens.  A compare that did not
 * hold is NOT an error at this level: the txn parses as succeeded=false and
 * the caller returns CONFLICT.  Other 4xx: INVALID.
 */
void e3_classify(const char *endpoint, int curl_code, long http_status, const char *body,
                 size_t len, struct e3_result *r);

/* ---- responses ---- */

struct e3_kv {
	const char *key;      /* decoded, NUL-terminated */
	const char *value;    /* decoded, NUL-terminated (may contain NULs: use value_len) */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;        /* 0 = none */
};
typedef int (*e3_kv_cb)(void *arg, const struct e3_kv *kv); /* non-zero stops */

/* header.revision and kvs[]; false + err on malformed input or a cb stop. */
bool e3_parse_range(const char *body, size_t len, e3_kv_cb cb, void *arg, int64_t *revision,
                    char *err, size_t errlen);
/* header.revision of a put / deleterange */
bool e3_parse_revision(const char *body, size_t len, int64_t *revision, char *err,
                       size_t errlen);
/*
 * txn: succeeded (absent = false) and header.revision; for the rebind txn
 * also the nested responses[0].response_txn.succeeded of the failure branch.
 */
bool e3_parse_txn(const char *body, size_t len, bool *succeeded, bool *nested_succeeded,
                  int64_t *revision, char *err, size_t errlen);
bool e3_parse_lease_grant(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
                          size_t errlen);
/* keepalive: result.TTL; *ttl = 0 when the lease is gone. */
bool e3_parse_lease_keepalive(const char *body, size_t len, int64_t *ttl, char *err,
                              size_t errlen);
bool e3_parse_auth(const char *body, size_t len, char **token, char *err, size_t errlen);

/* ---- the watch stream ---- */

/*
 * The gateway streams one JSON object per message, {"result": {...}} or
 * {"error": {...}}, separated by newlines (in HTTP chunks that may split or
 * join them).  Feed the raw bytes as they come; complete messages are
 * reported through the callback.
 */
enum e3_event_type { E3_EV_PUT = 0, E3_EV_DELETE = 1 };
struct e3_watch_event {
	enum e3_event_type type;
	const char *key;    /* decoded */
	int64_t mod_revision;
};
struct e3_watch_msg {
	bool created;
	bool canceled;
	bool error;             /* an {"error":...} message or a cancel with a reason */
	const char *reason;     /* cancel_reason / error message, or NULL */
	int64_t revision;       /* header.revision */
	int64_t compact_revision;
	const struct e3_watch_event *events;
	size_t n_events;
};
typedef void (*e3_watch_cb)(void *arg, const struct e3_watch_msg *msg);

struct e3_watch_parser;
struct e3_watch_parser *e3_watch_parser_new(e3_watch_cb cb, void *arg);
/* false when the stream is malformed beyond recovery (the caller reconnects) */
bool e3_watch_parser_feed(struct e3_watch_parser *p, const char *data, size_t len);
void e3_watch_parser_free(struct e3_watch_parser *p);

#endif
