/*
 * The etcd v3 backend's internal declarations: the transport (etcd3_http.c),
 * the watch thread (etcd3_watch.c) and the handle (etcd3.c).
 */
#ifndef PGKEEL_ETCD3_H
#define PGKEEL_ETCD3_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include <pgkeel/dcs.h>

#include "../common/dcs_common.h"
#include "etcd3_proto.h"

/* ------------------------------------------------------------------ transport */

struct e3_http {
	const struct pgkeel_host *host;

	pthread_mutex_t lock;   /* endpoints, current, token: the watch thread reads them */
	char **endpoints;       /* base URLs: "http://127.0.0.1:2379" */
	size_t n_endpoints;
	size_t current;
	char **configured;      /* what the configuration named (kept across discovery) */
	size_t n_configured;
	bool use_proxies;       /* no member discovery: talk to what was configured */
	int64_t discovered_ms;  /* last member list, 0 = never */
	char *api;              /* "/v3" (3.4+), "/v3beta" (3.3), "/v3alpha" */
	bool api_known;

	char *username;
	char *password;
	char *token;            /* NULL: none yet or auth not enabled */

	char *cacert;
	char *cert;
	char *key;
	bool https;

	char *user_agent;
	int ttl;
	int loop_wait;
	int retry_timeout;

	CURL *easy;             /* the caller thread's handle (ops) */
};

/* Parse the etcd3: options (JSON text); false + err on invalid options. */
bool e3_http_init(struct e3_http *h, const struct pgkeel_host *host, const char *options_json,
                  const char *user_agent, int ttl, int loop_wait, int retry_timeout,
                  struct pgkeel_err *err);
void e3_http_fini(struct e3_http *h);
void e3_http_set_timing(struct e3_http *h, int ttl, int loop_wait, int retry_timeout);

/*
 * POST <endpoint><api><rpc> with `body`, moving through the members until
 * one answers or the deadline passes.  On OK *resp holds the body (caller
 * frees).  On failure res tells why (res->lease_not_found and the status are
 * what callers branch on); err gets the message.
 */
enum pgkeel_dcs_status e3_call(struct e3_http *h, const char *rpc, const char *body,
                               int64_t deadline_ms, char **resp, size_t *resp_len,
                               struct e3_result *res, struct pgkeel_err *err);

/* The current endpoint and the auth token, copied under the lock (watch thread). */
char *e3_http_endpoint(struct e3_http *h, size_t *index);
char *e3_http_token(struct e3_http *h);
/* Move past endpoint `index` (it failed for the watch thread). */
void e3_http_skip(struct e3_http *h, size_t index);
/* Common options of every easy handle: timeouts, keepalive, TLS, headers. */
void e3_http_setup_easy(struct e3_http *h, CURL *easy, long connect_ms, long total_ms);

/* ------------------------------------------------------------------ watch */

struct e3_watch;

/*
 * Start watching `prefix` (the whole cluster) from start_revision; events on
 * <prefix>leader wake the loop with PGKEEL_EVENT_LEADER, a changed
 * <prefix>config with PGKEEL_EVENT_CONFIG.
 */
struct e3_watch *e3_watch_start(struct e3_http *h, const char *prefix, int64_t start_revision);
/*
 * The loop saw revision `rev` in the store (a key under the prefix with that
 * mod_revision): if the stream has not caught up within a grace period it is
 * stale (a frozen member), and the thread re-establishes it elsewhere.
 */
void e3_watch_expect(struct e3_watch *w, int64_t rev);
bool e3_watch_running(struct e3_watch *w);
void e3_watch_stop(struct e3_watch *w); /* joins the thread; accepts NULL */

#endif
