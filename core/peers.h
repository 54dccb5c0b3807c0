/*
 * peers: the HTTP client to the other members' REST APIs, as Patroni
 * 3.0.2's Ha uses them (spec patroni-dcs-and-ha.md §5.1, §5.4.1, §5.9,
 * §5.11; patroni-interfaces.md §1.9, §3.4):
 *
 *   pgkeel_peers_fetch_status   GET <api_url> of every target in parallel,
 *                               2 s each, no retry (fetch_nodes_statuses);
 *   pgkeel_peers_post_failsafe  POST /failsafe to every target in parallel,
 *                               2 s each, one retry (check_failsafe_topology);
 *   pgkeel_peers_alive          GET /liveness, 3 s, any HTTP answer = alive
 *                               (the start-up name-uniqueness check).
 *
 * All requests run on one libcurl multi handle in the calling thread;
 * every call returns by its absolute deadline (CLOCK_MONOTONIC ms,
 * pgkeel_now_monotonic_ms) whatever the peers do, and each request is also
 * bounded by its own timeout.  The handle lives in the context, so kept-
 * alive connections are reused between HA cycles (pgkeel peers keep them;
 * Patroni's server closes every connection).  A kept connection the peer
 * closed meanwhile costs nothing: libcurl checks it before reuse and, when
 * it breaks before any byte of the answer arrived, sends the request again
 * on a fresh connection (within the same timeout).
 *
 * Which failures are retried, as urllib3 1.26's Retry(n) does it for
 * Patroni's PatroniRequest: POST /failsafe (retries=1) only when no
 * connection could be made (refused, unresolvable, connect timeout) or the
 * TLS handshake failed; an HTTP answer, whatever its status, is final, and
 * so is a connection that broke after the request went out.  GET /liveness
 * (urllib3's default Retry(3)) retries any transport failure up to 3 times.
 * GET of the status is never retried.
 *
 * Credentials and TLS, as PatroniRequest (request.py) sets them up:
 *   - basic auth on every request (GET too): ctl.auth (3.3:
 *     ctl.authentication) else restapi.authentication, else restapi.auth,
 *     as "user:password";
 *   - client certificate ctl.certfile else restapi.certfile, with
 *     ctl.keyfile/restapi.keyfile and ctl.keyfile_password /
 *     restapi.keyfile_password;
 *   - CA bundle ctl.cacert else restapi.cafile (else the system's);
 *   - server verification: the daemon creates its PatroniRequest with
 *     insecure=True (pass insecure = 1): no verification at all, unless a
 *     client certificate is configured, which makes Patroni verify the
 *     server's chain (CERT_REQUIRED) but not its host name.  With
 *     insecure = 0 (or -1 and ctl.insecure false: patronictl) the chain and
 *     the host name are verified.
 *
 * Logging as Patroni's: INFO "Got response from <name> <api_url>: <body>",
 * WARNING "Request failed to <name>: GET|POST <api_url> (<reason>)".
 *
 * Threads: a context is used by one thread at a time (the HA loop).  The
 * process calls curl_global_init() before the first context (main.c does).
 */
#ifndef PGKEEL_PEERS_H
#define PGKEEL_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

struct json_object;
struct pgkeel_config;
struct pgkeel_peers;

/* Per-request timeouts (Patroni's). */
#define PGKEEL_PEERS_STATUS_TIMEOUT_MS 2000
#define PGKEEL_PEERS_FAILSAFE_TIMEOUT_MS 2000
#define PGKEEL_PEERS_LIVENESS_TIMEOUT_MS 3000

/* ---- context ---- */

struct pgkeel_peers_settings {
	const char *auth;             /* "user:password" for Authorization: Basic; NULL: none */
	const char *certfile;         /* client certificate (PEM); NULL: none */
	const char *keyfile;          /* its key; NULL: in certfile */
	const char *keyfile_password; /* NULL: key not encrypted */
	const char *cafile;           /* CA bundle for the servers; NULL: the system's */
	bool verify_peer;             /* check the server certificate's chain */
	bool verify_host;             /* ... and that it names the host (only with verify_peer) */
	const char *user_agent;       /* NULL: "pgkeel/<version>" */
};

/*
 * PatroniRequest's settings from a configuration (see above).  insecure:
 * 1 as the daemon (Patroni passes insecure=True), 0 to verify, -1 to take
 * ctl.insecure (patronictl).  The strings point into c, which must outlive
 * *out (pgkeel_peers_new copies them).  auth is built in buf.
 */
void pgkeel_peers_settings_from_config(const struct pgkeel_config *c, int insecure, char *buf,
                                       size_t buflen, struct pgkeel_peers_settings *out);

/* A context with its own multi handle and connection cache; NULL on failure (logged). */
struct pgkeel_peers *pgkeel_peers_new(const struct pgkeel_peers_settings *s);
void pgkeel_peers_free(struct pgkeel_peers *p);

/* ---- GET <api_url>: the peer status probe (§5.4.1) ---- */

struct pgkeel_peer_target {
	const char *name;    /* member name (for the log) */
	const char *api_url; /* as in its member key, e.g. http://10.0.0.2:8008/patroni */
};

/* Patroni's _MemberStatus.failover_limitation(). */
enum pgkeel_peer_limitation {
	PGKEEL_PEER_CAN_PROMOTE = 0,
	PGKEEL_PEER_NOT_REACHABLE,   /* "not reachable" */
	PGKEEL_PEER_NOFAILOVER,      /* "not allowed to promote" */
	PGKEEL_PEER_WATCHDOG_FAILED, /* "not watchdog capable" */
};
/* Patroni's text for a limitation; NULL for PGKEEL_PEER_CAN_PROMOTE. */
const char *pgkeel_peer_limitation_text(enum pgkeel_peer_limitation l);

struct pgkeel_peer_status {
	/* What Patroni distills from the answer (_MemberStatus). */
	bool reachable;          /* answered with a body Patroni's parser accepts */
	bool in_recovery;        /* not a primary: no wal.location and role not master/primary */
	int64_t wal_position;    /* in recovery: max(received, replayed); else 0 */
	int64_t timeline;        /* 0: absent or null */
	int64_t dcs_last_seen;   /* 0: absent */
	bool nofailover;         /* tags.nofailover, or tags.failover_priority <= 0 */
	int64_t failover_priority; /* tags.failover_priority (Patroni 3.2+); 1 when absent,
	                              0 when nofailover */
	bool watchdog_failed;
	enum pgkeel_peer_limitation limitation;

	/* Transport facts. */
	struct json_object *json; /* the parsed body (an object), owned; NULL when none */
	long http_code;           /* 0: no HTTP answer */
	int64_t elapsed_ms;
	char error[256];          /* why not reachable; "" when reachable */
};

/* Free what a status owns and zero it (accepts a zeroed status). */
void pgkeel_peer_status_clear(struct pgkeel_peer_status *st);

/*
 * Interpret a GET /patroni body as Patroni does (pure; no I/O).  Fills
 * everything but the transport facts and returns st->reachable.  Where
 * Patroni's parser raises (not UTF-8, not JSON, not an object, neither a
 * truthy `wal` nor an `xlog` object, received/replayed_location null or not
 * a number), and where Patroni would raise later in the race
 * (timeline or tags of the wrong type, positions given as strings), the
 * peer is not reachable and st->error says why.  `wal` is preferred to
 * `xlog` when truthy (Patroni 4 peers).  A peer reporting role master or
 * primary is not in recovery even without wal.location (the 3.1 fix).
 */
bool pgkeel_peer_status_parse(const char *body, size_t len, struct pgkeel_peer_status *st);

/*
 * GET every target's api_url in parallel, each with a 2 s timeout, no
 * retry, all by deadline_ms.  out[i] (zeroed or cleared by the caller;
 * clear each afterwards) receives target i's status; a target whose
 * api_url is empty or not an http(s) URL is not reachable.  The HTTP
 * status is recorded but not judged (Patroni does not either).
 */
void pgkeel_peers_fetch_status(struct pgkeel_peers *p, const struct pgkeel_peer_target *targets,
                               size_t n, int64_t deadline_ms, struct pgkeel_peer_status *out);

/* Patroni's is_lagging(): last_lsn - wal_position > maximum_lag_on_failover. */
bool pgkeel_peer_is_lagging(int64_t cluster_last_lsn, int64_t wal_position,
                            int64_t maximum_lag_on_failover);

/* ---- POST /failsafe (§5.9) ---- */

struct pgkeel_failsafe_msg {
	const char *name;     /* me */
	const char *conn_url;
	const char *api_url;
	const struct json_object *slots; /* {slot: lsn}; NULL: null (Patroni 3.0.2 sends null
	                                    when it has no slot information) */
};

/* The body Patroni posts: json.dumps({"name", "conn_url", "api_url", "slots"}); malloc'd. */
char *pgkeel_failsafe_msg_body(const struct pgkeel_failsafe_msg *m);

struct pgkeel_peer_post_result {
	bool accepted;   /* HTTP 200 with body exactly "Accepted" */
	long http_code;  /* of the last attempt; 0: no HTTP answer */
	int attempts;    /* requests started: 1 or 2 */
	int64_t elapsed_ms;
	char body[128];  /* the answer's start (NUL bytes cut it short) */
	char error[256]; /* transport failure of the last attempt; "" when answered */
};

/*
 * POST /failsafe (scheme://host:port of each api_url) to every target in
 * parallel: 2 s each, one retry as described above, all by deadline_ms.
 * out[i] (may be NULL) receives target i's outcome.  True iff every target
 * accepted; true for n == 0 (Patroni's single-node case; leaving the own
 * entry out of targets is the caller's part).
 */
bool pgkeel_peers_post_failsafe(struct pgkeel_peers *p, const struct pgkeel_peer_target *targets,
                                size_t n, const struct pgkeel_failsafe_msg *msg,
                                int64_t deadline_ms,
                                struct pgkeel_peer_post_result *out) PGKEEL_MUSTCHECK;

/* ---- GET /liveness (§5.1 step 3) ---- */

/*
 * Is a process answering HTTP at api_url's scheme://host:port?  GET
 * /liveness, 3 s per attempt, up to 3 retries on transport failures, by
 * deadline_ms.  Any HTTP answer (also 503, 401...) means alive; refused,
 * timed out or a failed TLS handshake means not.  *http_code (may be NULL)
 * receives the status, 0 when none.
 */
bool pgkeel_peers_alive(struct pgkeel_peers *p, const char *api_url, int64_t deadline_ms,
                        long *http_code) PGKEEL_MUSTCHECK;

#endif
