/*
 * The REST server's private parts, shared by rest.c (requests, responses,
 * libmicrohttpd glue, start and stop) and rest_handlers.c (routing and the
 * endpoints' handlers).  Nothing outside core/rest*.c includes this.
 *
 * A request's life: rest.c's on_request() creates the struct conn, reads
 * the body, then calls pgkeel_rest_dispatch(), which fills an answer (sent
 * by rest.c) or queues a struct req for the loop and suspends the
 * connection (true).  Locking and references: see rest.c.
 */
#ifndef PGKEEL_REST_SERVER_H
#define PGKEEL_REST_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "json.h"
#include "rest.h"
#include "rest_internal.h"

enum req_state {
	RQ_QUEUED, /* on the queue, the loop has not taken it */
	RQ_TAKEN,  /* the loop holds it */
	RQ_ANSWERED,
};

struct req {
	struct pgkeel_rest_req pub; /* first: the loop's pointer is this */
	struct pgkeel_rest *srv;
	int refs; /* under srv->mu */
	enum req_state st;
	struct MHD_Connection *conn; /* NULL once the request completed */
	bool suspended;
	struct req *qnext;         /* queue (FIFO) */
	struct req *pprev, *pnext; /* pending list: QUEUED or TAKEN */
	/* the answer */
	int status;
	char *ctype;
	char *body;
	bool page; /* a send_error page: Connection: close */
	/* what pub points to */
	struct pgkeel_rest_failover_req fo;
	struct pgkeel_rest_restart rs;
	char client[64];
};

/*
 * What the access check and the responses use: swapped whole by
 * pgkeel_rest_reconfigure(); each connection holds a reference while it
 * is served.
 */
struct access {
	int refs;       /* atomic */
	char *auth_key; /* base64(user:password); NULL: no auth */
	char **headers; /* name, value pairs: http_extra_headers, then https_ ones with TLS */
	size_t n_headers;
	struct pgkeel_rest_net *allow; /* restapi.allowlist, resolved */
	size_t n_allow;
	bool allow_members; /* allowlist_include_members */
};

enum verify_client { VERIFY_NONE, VERIFY_OPTIONAL, VERIFY_REQUIRED };

struct pgkeel_rest {
	int refs; /* atomic: the owner, and each request */
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the reaper's (CLOCK_MONOTONIC) */
	pthread_t reaper;
	bool reaper_started;
	bool stopping;
	struct req *q_head, *q_tail;
	size_t q_len;
	struct req *pending;
	bool have_failsafe;
	struct pgkeel_rest_failsafe failsafe;
	bool reload_requested;
	/* POST /restart {"schedule": ...} */
	bool have_sched;
	struct pgkeel_rest_restart sched;
	struct json_object *sched_data; /* the request's keys as Patroni keeps them */
	char *sched_pm_start;           /* postmaster_start_time when scheduled */
	uint64_t sched_gen;
	/* options, copied */
	struct access *acc; /* under mu */
	char *fixed;        /* listen and TLS settings (reconfigure compares) */
	bool tls;
	enum verify_client verify;
	size_t queue_max;
	int reply_timeout_ms;
	int switchover_wait_ms;
	size_t max_body;
	char *version;
	/*
	 * allowlist_include_members: the members' addresses, resolved by the
	 * resolver thread when the members' api_urls change (and every
	 * RESOLVE_MAX_AGE_MS), so that no worker waits on name resolution
	 * (member_allowed() resolves itself only while the cache is behind).
	 */
	pthread_t resolver;
	bool resolver_started;
	pthread_cond_t resolver_cv;           /* CLOCK_MONOTONIC */
	char *members_key;                    /* under mu: the api_urls the nets come from */
	int64_t members_resolved_ms;          /* under mu: when (monotonic) */
	struct pgkeel_rest_net *member_nets;  /* under mu */
	size_t n_member_nets;
};

/* Per request (MHD's con_cls). */
enum route {
	R_HEALTH = 0,
	R_PATRONI,
	R_LIVENESS,
	R_READINESS,
	R_GET_FAILSAFE,
	R_POST_FAILSAFE,
	R_SWITCHOVER,
	R_FAILOVER,
	R_CLUSTER,
	R_HISTORY,
	R_GET_CONFIG,
	R_METRICS,
	R_PATCH_CONFIG,
	R_PUT_CONFIG,
	R_RELOAD,
	R_RESTART,
	R_DELETE_RESTART,
	R_REINITIALIZE,
	R_DELETE_SWITCHOVER,
	R_SIGTERM,
	R_CITUS,
	R_UNSUPPORTED,
};

struct conn {
	struct pgkeel_rest *srv;
	struct access *acc;
	enum route route;
	bool status_only; /* HEAD, OPTIONS */
	bool refused;     /* an answer was queued before the body was read */
	int64_t start_ms;
	struct pgkeel_sbuf body;
	struct req *req;
};

enum body_kind {
	B_STATUS_ONLY, /* no body, no headers (HEAD, OPTIONS, /liveness, /readiness) */
	B_NORMAL,      /* _write_response: Content-Type + http_extra_headers */
	B_PAGE,        /* send_error: the HTML page, Connection: close */
};

struct answer {
	int status;
	enum body_kind kind;
	const char *ctype;
	char *body; /* malloc'd, handed to MHD */
	const char *www_auth;
};

/* ---- rest.c ---- */

/* Wall-clock time (only for scheduled_at and schedule). */
int64_t pgkeel_rest_now_epoch_ms(void);
/* Tell the loop something is waiting for it. */
void pgkeel_rest_wake_loop(void);
/* Free a request nobody references any more (not under srv->mu). */
void pgkeel_rest_req_free(struct req *r);
/* Drop the scheduled restart; under srv->mu. */
void pgkeel_rest_sched_drop_locked(struct pgkeel_rest *srv);
/* A plain answer (text/html, the extra headers) and a send_error page. */
void pgkeel_rest_set_text(struct answer *a, int status, const char *text);
void pgkeel_rest_set_page(struct answer *a, int status);

/* ---- rest_tls.c: the server certificate (one REST server per process) ---- */

/*
 * Load certfile and keyfile (NULL: the key is in certfile; password for an
 * encrypted key) as the certificate the next handshakes get.  *changed:
 * they differ from the current ones.  False with the reason in err (the
 * current certificate stays).
 */
bool pgkeel_rest_tls_load(const char *certfile, const char *keyfile, const char *password,
                          bool *changed, char *err, size_t errlen);
/* Free every certificate loaded (after MHD_stop_daemon). */
void pgkeel_rest_tls_clear(void);
/* The value of MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *pgkeel_rest_tls_callback(void);

/* ---- rest_handlers.c ---- */

/* Patroni's parse_request: do_<METHOD>_<first segment>, else do_<METHOD>. */
enum route pgkeel_rest_route_of(const char *method, const char *url);
/* A valid client certificate was presented (Python's getpeercert() is not empty). */
bool pgkeel_rest_client_cert_ok(struct MHD_Connection *c);
/* Answer the request into a, or queue it for the loop and suspend (true). */
bool pgkeel_rest_dispatch(struct MHD_Connection *c, struct conn *cc, const char *url,
                          const char *method, struct answer *a);

#endif
