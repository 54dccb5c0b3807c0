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
