/*
 * The REST API server: Patroni 3.0.2's endpoints, status codes, bodies and
 * messages (spec/patroni-interfaces.md §1), on libmicrohttpd.
 *
 * Served in the server's own threads, from the published state (state.h)
 * and never waiting for the HA loop:
 *   GET/HEAD/OPTIONS health checks: /, /primary, /master, /read-write,
 *       /leader, /standby-leader, /standby_leader, /replica (?lag=,
 *       ?tag_<key>=<value>), /read-only, /read-only-sync, /sync,
 *       /synchronous, /async, /asynchronous, /health, and any other path
 *       (503 and, for GET, the status document, as Patroni);
 *   GET /patroni (the status document, 200), GET /liveness, GET /readiness
 *       (status line only), GET /failsafe, GET /metrics (Prometheus text,
 *       Patroni 3.0.2's names and scope label);
 *   GET /history, GET /config: from the cached cluster view while it is
 *       valid (Patroni's dcs.cluster), else queued for a read;
 *   POST /failsafe: Patroni answers it at once from memory, and so does
 *       pgkeel: a peer primary posts it with a 2 s timeout while the DCS is
 *       down, exactly when the HA loop may be blocked on DCS calls, and a
 *       late answer would make that primary demote.  The last accepted
 *       message is kept for the loop (pgkeel_rest_failsafe_last) and the
 *       loop is woken.
 *   POST /restart with a schedule (202, 409), DELETE /restart (200, 404):
 *       the scheduled restart is kept here (pgkeel_rest_scheduled_restart);
 *   POST /reload: 202 at once, the loop reloads (pgkeel_rest_take_reload);
 *   POST /sigterm (202, nothing done), POST /citus (200 OK, no Citus).
 * Queued to the HA loop (the connection is suspended meanwhile, so health
 * checks never wait behind them):
 *   POST /switchover, POST /failover: body parsed and checked here (401,
 *       411, 400 pages; Patroni's 400/422 texts for missing leader or
 *       candidate, scheduled_at and pause); the loop does the rest
 *       (feasibility 412s, the failover key, polling) and answers with
 *       pgkeel_rest_reply().
 *   GET /cluster (a fresh read, as Patroni forces one), PATCH /config,
 *       PUT /config, DELETE /switchover: answered on a fresh read by
 *       pgkeel_rest_answer_dcs() (rest_docs.c);
 *   POST /restart without a schedule: its filters checked here (Patroni's
 *       400/422 texts, key by key); the loop runs ha.c's restart request and
 *       answers when PostgreSQL is up again (the deadline moved to the start
 *       timeout), so the client waits as with Patroni;
 *   POST /reinitialize: force read here, the decision is the loop's.
 * Any other method/path combination: 501 "Unsupported method ('X')", the
 * page whose text patronictl looks for ("Server does not support this
 * operation").
 *
 * Unsafe endpoints (POST/PUT/PATCH/DELETE) pass Patroni's access check
 * first: restapi.allowlist / allowlist_include_members (403 "Access is
 * denied"), a client certificate when TLS verifies clients (403 "client
 * certificate required"), then basic auth when restapi.authentication is
 * set: 401 "no auth header received" / "not authenticated" with
 * WWW-Authenticate: Basic realm="Patroni".  With verify_client: required a
 * client without a valid certificate gets no answer at all (Python's
 * handshake refuses it).
 *
 * The loop's side:
 *   1. the server posts PGKEEL_EVENT_OTHER through the host (host.h) when a
 *      request is queued or a failsafe message arrived;
 *   2. the loop drains pgkeel_rest_next_request() until NULL;
 *   3. it passes every request it got to pgkeel_rest_reply() exactly once,
 *      when it has the answer (possibly cycles later).
 * Every queued request has a reply deadline (req->deadline_ms): when the
 * loop has not answered by then the server answers 503 itself ("... status
 * unknown" once the loop took it, "... was not processed" before), so a
 * stuck loop never hangs a client.  A reply after that is ignored.
 *
 * Threads: start/stop from one thread (the daemon's main thread);
 * next_request/reply/failsafe_last from the HA loop; everything else
 * internal.
 */
#ifndef PGKEEL_REST_H
#define PGKEEL_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

struct json_object;
struct pgkeel_cluster;
struct pgkeel_config;
struct pgkeel_member;

struct pgkeel_rest_opts {
	const char *listen; /* restapi.listen "host:port" ("*:8008", "[::1]:8008"); port 0: any */
	const char *auth_username; /* restapi.authentication; NULL: none */
	const char *auth_password;
	/* restapi.http_extra_headers: name/value pairs, 2 * n_extra_headers strings */
	const char *const *extra_headers;
	size_t n_extra_headers;
	/* restapi.https_extra_headers, added to the above when TLS is on */
	const char *const *https_extra_headers;
	size_t n_https_extra_headers;
	/* TLS: on when certfile is set (PEM files; keyfile NULL: the key is in certfile) */
	const char *certfile;
	const char *keyfile;
	const char *keyfile_password;
	const char *cafile;        /* client certificates are verified against it */
	const char *ciphers;       /* OpenSSL syntax: not applied (logged) */
	const char *verify_client; /* "none" (NULL), "optional", "required"; case-insensitive */
	/* restapi.allowlist (hosts, addresses, CIDRs) and allowlist_include_members */
	const char *const *allowlist;
	size_t n_allowlist;
	bool allowlist_include_members;
	unsigned threads;              /* worker threads; 0: 1 */
	unsigned connection_timeout_s; /* idle connection timeout; 0: 30 */
	unsigned max_connections;      /* 0: 512 */
	unsigned per_ip_connections;   /* connections per client address; 0: 128 */
	unsigned backlog;              /* listen backlog (restapi.request_queue_size); 0: 128 */
	unsigned queue_max;            /* requests waiting for the loop; 0: 16 */
	int reply_timeout_ms;          /* loop reply deadline; 0: 10000 */
	/* Added to the deadline of an immediate switchover/failover, which the
	 * loop polls for (Patroni: 2 * max(10, loop_wait) s); 0: that. */
	int switchover_wait_ms;
	size_t max_body; /* request body limit; 0: 64 KiB (larger: 413) */
	/* Reported next to Patroni's version in /patroni; NULL: PACKAGE_VERSION. */
	const char *pgkeel_version;
};

/*
 * restapi.* from a configuration snapshot (listen, authentication,
 * http(s)_extra_headers, TLS, allowlist, request_queue_size).  The strings
 * point into c, which must outlive pgkeel_rest_start() (the server copies
 * what it keeps).  `strs` receives up to max_strs pointers (header names and
 * values, allowlist entries); what does not fit is left out.
 */
void pgkeel_rest_opts_from_config(const struct pgkeel_config *c, struct pgkeel_rest_opts *o,
                                  const char **strs, size_t max_strs);

struct pgkeel_rest;

/*
 * Bind restapi.listen as Patroni does (host "" or "*": all addresses, IPv6
 * dual stack when the system has it; a name: its first passive address,
 * IPv6 first when dual stack is available) and start the worker threads.
 * NULL with a message in err on failure.
 */
struct pgkeel_rest *pgkeel_rest_start(const struct pgkeel_rest_opts *opts, char *err,
                                      size_t errlen) PGKEEL_MUSTCHECK;
/* The bound port (useful with port 0). */
int pgkeel_rest_port(const struct pgkeel_rest *srv);
/*
 * A reload (SIGHUP, POST /reload): authentication, extra headers and the
 * allowlist take effect for the next connections.  A changed listen
 * address or TLS setting needs a restart of the daemon (logged).
 */
void pgkeel_rest_reconfigure(struct pgkeel_rest *srv, const struct pgkeel_rest_opts *opts);
/*
 * Answer every pending request 503, stop the threads, close the socket.
 * Requests the loop still holds stay valid until it replies to them.
 * NULL is fine.
 */
void pgkeel_rest_stop(struct pgkeel_rest *srv);

enum pgkeel_rest_kind {
	PGKEEL_REST_SWITCHOVER = 1,    /* POST /switchover */
	PGKEEL_REST_FAILOVER,          /* POST /failover */
	PGKEEL_REST_CLUSTER,           /* GET /cluster: a fresh read (Patroni forces one) */
	PGKEEL_REST_HISTORY,           /* GET /history while no cluster view is cached */
	PGKEEL_REST_CONFIG,            /* GET /config while no cluster view is cached */
	PGKEEL_REST_PATCH_CONFIG,      /* PATCH /config: body is the patch */
	PGKEEL_REST_PUT_CONFIG,        /* PUT /config: body is the new configuration */
	PGKEEL_REST_DELETE_SWITCHOVER, /* DELETE /switchover */
	PGKEEL_REST_RESTART,           /* POST /restart without a schedule: restart filters */
	PGKEEL_REST_REINITIALIZE,      /* POST /reinitialize: force */
};

/* "switchover", "failover", "cluster", "restart", ... (for logs and texts). */
const char *pgkeel_rest_kind_name(enum pgkeel_rest_kind kind);

/* A request for the loop; fields are read-only and live until the reply. */
struct pgkeel_rest_req {
	enum pgkeel_rest_kind kind;
	/* SWITCHOVER / FAILOVER: NULL when absent (null, "" and other falsy values) */
	const char *leader;
	const char *candidate; /* "candidate", else "member" */
	const char
	    *scheduled_at;       /* normalized ISO 8601 with offset (Python isoformat), NULL: now */
	int64_t scheduled_at_ms; /* the same as epoch milliseconds */
	struct json_object *body; /* the parsed request body; NULL when none */
	const char *client;       /* client address, for logs */
	int64_t deadline_ms;      /* monotonic: after it the server answers by itself */
	/* RESTART: the filters of the body (NULL / false when absent), timeout_s -1
	 * when absent (primary_start_timeout) */
	const char *role;
	const char *postgres_version;
	bool restart_pending; /* the key is present (its value does not matter) */
	int64_t timeout_s;
	bool force; /* REINITIALIZE: parse_bool(body.force) */
};

/* How many requests wait for the loop to take them (for monitoring and tests). */
size_t pgkeel_rest_queued(struct pgkeel_rest *srv);

/* The next queued request, or NULL.  The loop now owns a reference. */
struct pgkeel_rest_req *pgkeel_rest_next_request(struct pgkeel_rest *srv);

/*
 * Answer a request and release it (req is invalid afterwards).  body is
 * copied; content_type NULL means "text/html" (Patroni's type for its plain
 * messages).  Ignored (but still released) when the server already
 * answered it (deadline, shutdown).
 */
void pgkeel_rest_reply(struct pgkeel_rest_req *req, int status, const char *content_type,
                       const char *body);
/* Answer with Python's error page for status (send_error: 409, 502, 503, ...). */
void pgkeel_rest_reply_error(struct pgkeel_rest_req *req, int status);
/*
 * Move the reply deadline of a request the loop holds (a restart waits for
 * PostgreSQL up to its start timeout); a deadline already passed stays passed.
 */
void pgkeel_rest_req_set_deadline(struct pgkeel_rest_req *req, int64_t deadline_ms);

/*
 * POST /reload was accepted (answered 202 at once, as Patroni schedules its
 * SIGHUP handler): true once per request, for the loop to reload as on SIGHUP.
 */
bool pgkeel_rest_take_reload(struct pgkeel_rest *srv);

/*
 * The restart scheduled through POST /restart {"schedule": ...} (Patroni's
 * patroni.scheduled_restart), kept by the server: POST answers 202 or 409
 * at once, DELETE /restart 200 or 404, and the loop is woken to show it in
 * the member key.  The loop reads it every cycle (for ha.h's
 * scheduled_restart), cancels it when the decision clears it, and publishes
 * it in the status document.
 */
struct pgkeel_rest_restart {
	uint64_t generation;         /* which scheduling this is (for _cancel) */
	char *schedule;              /* isoformat, with the time zone */
	char *postmaster_start_time; /* when it was scheduled; NULL: PostgreSQL was down */
	char *role;                  /* NULL: any */
	char *postgres_version;      /* NULL: any */
	bool restart_pending;
	int64_t timeout_s; /* -1: primary_start_timeout */
};
bool pgkeel_rest_scheduled_restart(struct pgkeel_rest *srv, struct pgkeel_rest_restart *out);
void pgkeel_rest_restart_clear(struct pgkeel_rest_restart *r);
/*
 * As the member key shows it (member: the request's keys in order with the
 * schedule normalized, then postmaster_start_time) or the status document
 * (without postmaster_start_time); a new object, NULL when none.
 */
struct json_object *pgkeel_rest_scheduled_restart_json(struct pgkeel_rest *srv, bool member);
/* Drop it, unless it was replaced since generation was read. */
void pgkeel_rest_scheduled_restart_cancel(struct pgkeel_rest *srv, uint64_t generation);

/* ---- helpers for the loop's part of the configuration and cluster requests (rest_docs.c) ---- */

/*
 * Answer a CLUSTER, HISTORY, CONFIG, PATCH_CONFIG, PUT_CONFIG or
 * DELETE_SWITCHOVER request on the cluster just read (NULL: the read
 * failed), writing through the callbacks when the request says so.
 * Patroni's codes and bodies (do_GET_cluster, do_PATCH_config, ...).  Any
 * other kind is answered 501.  *changed: the configuration key was written
 * (Patroni wakes the HA loop up).
 */
struct pgkeel_rest_dcs_ops {
	void *arg;
	/* set_config: CAS on version (NULL: unconditional); true when written */
	bool (*set_config)(void *arg, const char *value, const char *version);
	/* set_failover: CAS on version; true when written */
	bool (*set_failover)(void *arg, const char *value, const char *version);
};
void pgkeel_rest_answer_dcs(struct pgkeel_rest_req *req, const struct pgkeel_cluster *c,
                            const struct pgkeel_rest_dcs_ops *ops, bool *changed);

/* The last message a leader posted to POST /failsafe (Patroni's Failsafe.update). */
struct pgkeel_rest_failsafe {
	char *name;
	char *conn_url;
	char *api_url;
	char *slots_json;    /* "slots" rendered compact; NULL when absent */
	int64_t received_ms; /* when it was accepted (CLOCK_BOOTTIME ms, as the lock) */
};
/* Copy of the last accepted message; false when none yet.  Free with _clear. */
bool pgkeel_rest_failsafe_last(struct pgkeel_rest *srv, struct pgkeel_rest_failsafe *out);
void pgkeel_rest_failsafe_clear(struct pgkeel_rest_failsafe *f);

/* ---- helpers for the loop's part of /switchover and /failover (rest_failover.c) ---- */

/*
 * Patroni's is_failover_possible() up to the peer probe, on a freshly read
 * cluster: NULL when the request may go on, else the 412 text (static or
 * written into buf).  When it may go on, *probe / *n_probe list the members
 * whose GET /patroni must be asked (malloc'd array of pointers into c; free
 * it): the request is possible when at least one of them answers and is
 * not tagged nofailover nor reports watchdog_failed; otherwise answer 412
 * pgkeel_rest_failover_no_candidate().
 */
const char *pgkeel_rest_failover_precheck(const struct pgkeel_cluster *c, bool synchronous_mode,
                                          enum pgkeel_rest_kind kind, const char *leader,
                                          const char *candidate, char *buf, size_t len,
                                          const struct pgkeel_member ***probe, size_t *n_probe);
/* "<action> is not possible: no good candidates have been found" into buf. */
const char *pgkeel_rest_failover_no_candidate(enum pgkeel_rest_kind kind, char *buf, size_t len);

/*
 * One step of Patroni's poll_failover_result on a freshly read cluster:
 * true when finished, with *status and the text in buf ("Successfully
 * switched over to "pg-2"", "Switchover failed", ...); false to poll again
 * (every second, until pgkeel_rest_failover_wait_ms(), then 503
 * pgkeel_rest_failover_unknown()).
 */
bool pgkeel_rest_failover_poll(const struct pgkeel_cluster *c, enum pgkeel_rest_kind kind,
                               const char *old_leader, const char *candidate, int *status,
                               char *buf, size_t len);
const char *pgkeel_rest_failover_unknown(enum pgkeel_rest_kind kind, char *buf, size_t len);
/* 2 * max(10, loop_wait) seconds, in milliseconds. */
int64_t pgkeel_rest_failover_wait_ms(int loop_wait);

#endif
