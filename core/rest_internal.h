/*
 * REST internals shared by rest.c (the server), rest_status.c (health
 * checks and the status document) and rest_failover.c (switchover and
 * failover requests), exposed for the unit tests.  Everything here is pure:
 * no I/O, the current times are parameters.
 */
#ifndef PGKEEL_REST_INTERNAL_H
#define PGKEEL_REST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rest.h"
#include "state.h"

struct json_object;
struct sockaddr;

/* ---- rest_status.c ---- */

/* What one request sees of the state, derived once (parts A and B of §1.3). */
struct pgkeel_rest_pgview {
	const char *state; /* "running", "unknown", "stopped", ... */
	const char *role;  /* "master", "replica", "standby_leader", ... */
	bool full;         /* the status query's fields are there */
	bool cluster;      /* a cluster view is cached (Patroni's dcs.cluster) */
	bool sync_standby;
	bool is_leader;   /* the leader lock is held (deadline not passed) */
	int64_t replayed; /* xlog.replayed_location, 0 when absent */
	int64_t last_lsn; /* the leader's optime from the cached view, 0 when none */
};

void pgkeel_rest_pgview_get(const struct pgkeel_state_view *v, int64_t now_ms,
                            struct pgkeel_rest_pgview *out);

/* A query parameter as the URL has it (first non-empty value of each key). */
struct pgkeel_rest_qparam {
	const char *key;
	const char *value;
};

/* Patroni's do_GET status code for path (query string removed). */
int pgkeel_rest_health_code(const struct pgkeel_state_view *v, const struct pgkeel_rest_pgview *pv,
                            const char *path, const struct pgkeel_rest_qparam *q, size_t nq);
/* GET /liveness and GET /readiness. */
int pgkeel_rest_liveness_code(const struct pgkeel_state_view *v, int64_t now_ms);
int pgkeel_rest_readiness_code(const struct pgkeel_state_view *v,
                               const struct pgkeel_rest_pgview *pv);

/*
 * The status document (§1.3 parts A, B, C in 3.0.2's key order) as one
 * line with Python's separators; malloc'd.  pgkeel_version NULL: left out.
 */
char *pgkeel_rest_status_json(const struct pgkeel_state_view *v,
                              const struct pgkeel_rest_pgview *pv, const char *pgkeel_version);

/* GET /failsafe: the cached failsafe key as JSON, NULL when there is none (502). */
char *pgkeel_rest_failsafe_json(const struct pgkeel_state_view *v);

/* ---- rest_failover.c ---- */

/* Parsed, validated POST /switchover or /failover body. */
struct pgkeel_rest_failover_req {
	char *leader;
	char *candidate;
	char *scheduled_at; /* normalized; NULL: immediate */
	int64_t scheduled_at_ms;
};
void pgkeel_rest_failover_req_clear(struct pgkeel_rest_failover_req *r);

/*
 * Patroni's checks a-d of do_POST_failover on the request object (already
 * known to be a non-empty JSON object): 0 and *out filled when it may be
 * queued, else the status (400/422) with Patroni's text in msg.
 */
int pgkeel_rest_failover_parse(enum pgkeel_rest_kind kind, const struct json_object *body,
                               bool paused, int64_t now_epoch_ms,
                               struct pgkeel_rest_failover_req *out, char *msg, size_t len);

/*
 * Patroni's parse_schedule: 0 and the normalized text (Python isoformat:
 * "2031-01-01T00:00:00+00:00", microseconds when not zero) and epoch ms,
 * or 400 (no timezone) / 422 (unparsable, in the past) with the text.
 * `value` may be any JSON value (non-strings do not parse).
 */
int pgkeel_rest_parse_schedule(const struct json_object *value, const char *action,
                               int64_t now_epoch_ms, char **iso, int64_t *epoch_ms, char *msg,
                               size_t len);

/* Epoch microseconds of an ISO 8601 time with a zone (as parse_schedule reads it). */
bool pgkeel_rest_time_us(const char *s, int64_t *epoch_us) PGKEEL_MUSTCHECK;
/* dateutil's parse then isoformat(), for a time with a zone; malloc'd, NULL otherwise. */
char *pgkeel_rest_isoformat(const char *s);

/*
 * Patroni's do_POST_restart checks on the body, key by key in the body's
 * order (the first failing key answers): 0 with *out filled and *data the
 * object Patroni keeps (the keys in order, schedule normalized, timeout an
 * integer), or 400/422 with Patroni's text in msg.
 */
int pgkeel_rest_restart_parse(const struct json_object *body, int64_t now_epoch_ms,
                              struct pgkeel_rest_restart *out, struct json_object **data, char *msg,
                              size_t len);

/* ---- rest_docs.c: the documents of GET /cluster, /history, /config, /metrics ---- */

/* Python's str() of a JSON value (None, True, 1.5, 'a' inside containers); malloc'd. */
char *pgkeel_rest_py_str(const struct json_object *v);
/* Patroni's patch_config: null deletes, objects merge, scalars replace when their
 * str() differs; true when config changed. */
bool pgkeel_rest_patch_config(struct json_object *config, const struct json_object *patch);
/* Patroni's deep_compare (the same keys; objects recursively, the rest by str()). */
bool pgkeel_rest_deep_compare(const struct json_object *a, const struct json_object *b);
/* cluster_as_json(c) as json.dumps renders it; malloc'd. */
char *pgkeel_rest_cluster_json(const struct pgkeel_cluster *c);
/* GET /history: the history key's list, or []; malloc'd. */
char *pgkeel_rest_history_json(const struct pgkeel_cluster *c);
/* GET /config: the config key's object ({} when not valid); NULL when absent (502). */
char *pgkeel_rest_config_json(const struct pgkeel_cluster *c);
/* GET /metrics (Patroni 3.0.2's names, order and scope label); malloc'd. */
char *pgkeel_rest_metrics(const struct pgkeel_state_view *v, const struct pgkeel_rest_pgview *pv);

/* ---- rest_access.c: allowlist, TLS files ---- */

/* A network of the allowlist (an address is a /32 or /128). */
struct pgkeel_rest_net {
	int family; /* AF_INET, AF_INET6 */
	unsigned char addr[16];
	int prefix;
};
/*
 * Patroni's _build_allowlist: an entry with '/' is a network (host bits
 * allowed), anything else a host name or address resolved to all its
 * addresses; a bad entry is logged and skipped.  malloc'd array (NULL when
 * empty).
 */
struct pgkeel_rest_net *pgkeel_rest_allowlist_build(const char *const *entries, size_t n,
                                                    size_t *n_out);
/* Is the address (IPv4-mapped IPv6 counts as IPv4) in one of the networks? */
bool pgkeel_rest_net_match(const struct pgkeel_rest_net *nets, size_t n, const struct sockaddr *sa);
/* Is it one of the addresses of a member's api_url host (allowlist_include_members)? */
bool pgkeel_rest_member_match(const struct pgkeel_cluster *c, const struct sockaddr *sa);
/*
 * allowlist_include_members from the resolver thread's cache: 1 the address
 * is a member's, 0 it is not, -1 the cache is not of c's members' api_urls
 * yet (the resolver is woken; the caller resolves itself).
 */
int pgkeel_rest_member_cached(struct pgkeel_rest *srv, const struct pgkeel_cluster *c,
                              const struct sockaddr *sa);
/* Every address of every member's api_url host (a blocking name resolution); malloc'd *v. */
void pgkeel_rest_member_nets(const struct pgkeel_cluster *c, struct pgkeel_rest_net **v,
                             size_t *n);
/*
 * urlparse(url).hostname and .port (default 443 for https, else 80):
 * lowercased, IPv6 brackets dropped.  False when there is no host.
 */
bool pgkeel_rest_url_host(const char *url, char **host, int *port);
/* A whole (PEM) file, NUL-terminated; NULL with the reason in err. */
char *pgkeel_rest_read_file(const char *path, char *err, size_t errlen);

/* ---- rest.c ---- */

/* Python's http.server error page (send_error) for status; malloc'd. */
char *pgkeel_rest_error_page(int status, const char *message);
/* The reason phrase Python uses for status ("???" when unknown). */
const char *pgkeel_rest_reason(int status);
/* Base64 (standard alphabet, padded); malloc'd. */
char *pgkeel_rest_base64(const char *s, size_t len);
/*
 * Split restapi.listen as Patroni's split_host_port: the last ':' separates
 * the port; a host holding ':' loses its brackets.  False when the port is
 * not an integer in 0..65535.  *host is malloc'd ("" for none).
 */
bool pgkeel_rest_split_listen(const char *listen, char **host, int *port);

#endif
