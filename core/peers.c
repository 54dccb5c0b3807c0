/*
 * peers: see peers.h.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "peers.h"
#include "util.h"

#define STATUS_BODY_MAX (1024u * 1024)
#define FAILSAFE_BODY_MAX (64u * 1024)
#define LIVENESS_RETRIES 3
#define FAILSAFE_RETRIES 1

struct pgkeel_peers {
	CURLM *multi;
	char *auth_user; /* NULL: no basic auth */
	char *auth_password;
	char *certfile;
	char *keyfile;
	char *keyfile_password;
	char *cafile;
	bool verify_peer;
	bool verify_host;
	char *user_agent;
	struct curl_slist *get_headers;
	struct curl_slist *post_headers;
};

/* ------------------------------------------------------------ settings */

/* A non-empty string at path, else NULL (Python's `x or y` skips ""). */
static const char *cfg_str(json_object *root, const char *path)
{
	json_object *v = pgkeel_json_path(root, path);

	if (v == NULL || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return NULL;
	return json_object_get_string(v);
}

/* "username:password" of an authentication map into buf; NULL when incomplete. */
static const char *auth_of(json_object *root, const char *section, char *buf, size_t len)
{
	char path[64];
	const char *user, *password;
	json_object *u, *pw;

	if (!pgkeel_fmt(path, sizeof(path), "%s.authentication", section))
		return NULL;
	u = pgkeel_json_path(pgkeel_json_path(root, path), "username");
	pw = pgkeel_json_path(pgkeel_json_path(root, path), "password");
	if (u == NULL || pw == NULL || !json_object_is_type(u, json_type_string) ||
	    !json_object_is_type(pw, json_type_string))
		return NULL;
	user = json_object_get_string(u);
	password = json_object_get_string(pw);
	if (!pgkeel_fmt(buf, len, "%s:%s", user, password)) {
		log_warning("%s.authentication is too long to be used for requests to other members",
		            section);
		return NULL;
	}
	return buf;
}

void pgkeel_peers_settings_from_config(const struct pgkeel_config *c, int insecure, char *buf,
                                       size_t buflen, struct pgkeel_peers_settings *out)
{
	json_object *root = c->effective != NULL ? c->effective : c->local;
	const char *auth;
	bool skip_verify;

	memset(out, 0, sizeof(*out));
	/* PatroniRequest: ctl.auth (3.3: from ctl.authentication) or restapi.auth,
	 * which restapi.authentication overrides. */
	auth = auth_of(root, "ctl", buf, buflen);
	if (auth == NULL)
		auth = cfg_str(root, "ctl.auth");
	if (auth == NULL)
		auth = auth_of(root, "restapi", buf, buflen);
	if (auth == NULL)
		auth = cfg_str(root, "restapi.auth");
	out->auth = auth;

	if (insecure < 0)
		skip_verify = pgkeel_json_truthy(pgkeel_json_path(root, "ctl.insecure"));
	else
		skip_verify = insecure > 0;
	out->certfile = cfg_str(root, "ctl.certfile");
	if (out->certfile == NULL)
		out->certfile = cfg_str(root, "restapi.certfile");
	if (out->certfile != NULL) {
		/* With a client certificate Patroni always verifies the chain;
		 * "insecure" only drops the host name check. */
		out->keyfile = cfg_str(root, "ctl.keyfile");
		if (out->keyfile == NULL)
			out->keyfile = cfg_str(root, "restapi.keyfile");
		out->keyfile_password = cfg_str(root, "ctl.keyfile_password");
		if (out->keyfile_password == NULL)
			out->keyfile_password = cfg_str(root, "restapi.keyfile_password");
		out->verify_peer = true;
		out->verify_host = !skip_verify;
	} else {
		out->verify_peer = !skip_verify;
		out->verify_host = !skip_verify;
	}
	out->cafile = cfg_str(root, "ctl.cacert");
	if (out->cafile == NULL)
		out->cafile = cfg_str(root, "restapi.cafile");
}

/* ------------------------------------------------------------ context */

static char *dup_or_null(const char *s)
{
	return s != NULL ? pgkeel_strdup(s) : NULL;
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *h, bool *ok)
{
	struct curl_slist *n = curl_slist_append(l, h);

	if (n == NULL) {
		*ok = false;
		return l;
	}
	return n;
}

struct pgkeel_peers *pgkeel_peers_new(const struct pgkeel_peers_settings *s)
{
	struct pgkeel_peers *p = pgkeel_xcalloc(1, sizeof(*p));
	bool ok = true;

	p->multi = curl_multi_init();
	if (p->multi == NULL) {
		log_error("cannot create the HTTP client for requests to other members");
		free(p);
		return NULL;
	}
	curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, 64L);
	if (s->auth != NULL) {
		const char *colon = strchr(s->auth, ':');

		if (colon != NULL) {
			p->auth_user = pgkeel_dup_bytes(s->auth, (size_t)(colon - s->auth));
			p->auth_password = pgkeel_strdup(colon + 1);
		} else {
			p->auth_user = pgkeel_strdup(s->auth);
			p->auth_password = pgkeel_strdup("");
		}
	}
	p->certfile = dup_or_null(s->certfile);
	p->keyfile = dup_or_null(s->keyfile);
	p->keyfile_password = dup_or_null(s->keyfile_password);
	p->cafile = dup_or_null(s->cafile);
	p->verify_peer = s->verify_peer;
	p->verify_host = s->verify_peer && s->verify_host;
	p->user_agent = s->user_agent != NULL ? pgkeel_strdup(s->user_agent)
	                                      : pgkeel_strdup("pgkeel/" PACKAGE_VERSION);
	/* The headers urllib3 sends: no Accept, Accept-Encoding: identity; a
	 * POST without Content-Type, and never "Expect: 100-continue" (Patroni's
	 * HTTP/1.0 server would not answer it and curl would wait a second). */
	p->get_headers = slist_add(NULL, "Accept:", &ok);
	p->get_headers = slist_add(p->get_headers, "Accept-Encoding: identity", &ok);
	p->post_headers = slist_add(NULL, "Accept:", &ok);
	p->post_headers = slist_add(p->post_headers, "Accept-Encoding: identity", &ok);
	p->post_headers = slist_add(p->post_headers, "Content-Type:", &ok);
	p->post_headers = slist_add(p->post_headers, "Expect:", &ok);
	if (!ok)
		pgkeel_oom();
	return p;
}

static void free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void pgkeel_peers_free(struct pgkeel_peers *p)
{
	if (p == NULL)
		return;
	curl_multi_cleanup(p->multi);
	free(p->auth_user);
	free_secret(p->auth_password);
	free(p->certfile);
	free(p->keyfile);
	free_secret(p->keyfile_password);
	free(p->cafile);
	free(p->user_agent);
	curl_slist_free_all(p->get_headers);
	curl_slist_free_all(p->post_headers);
	free(p);
}

/* ------------------------------------------------------------ transfers */

enum retry_rule {
	RETRY_NEVER,   /* GET of the status: retries=0 */
	RETRY_CONNECT, /* POST with urllib3's Retry: no connection / TLS handshake failed */
	RETRY_ANY,     /* GET with urllib3's Retry: any transport failure */
};

struct xfer {
	CURL *easy;
	const char *url;
	const char *post; /* NULL: GET */
	size_t post_len;
	enum retry_rule rule;
	int max_attempts;
	int attempts;
	int64_t try_ms;
	size_t body_max;
	struct pgkeel_sbuf body;
	bool overflow;
	bool active; /* in the multi handle */
	bool done;
	CURLcode rc;
	long code;
	int64_t start_ms;
	int64_t end_ms;
	char errbuf[CURL_ERROR_SIZE];
	char reason[256];
};

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	if (x->body.len + n > x->body_max) {
		x->overflow = true;
		return 0;
	}
	pgkeel_sbuf_put(&x->body, data, n);
	return n;
}

static void xfer_fail(struct xfer *x, const char *fmt, ...) PGKEEL_PRINTF(2, 3);

static void xfer_fail(struct xfer *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(x->reason, sizeof(x->reason), fmt, ap);
	va_end(ap);
	x->done = true;
	x->end_ms = pgkeel_now_monotonic_ms();
}

static bool xfer_setup(struct pgkeel_peers *p, struct xfer *x)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return false;
	x->easy = e;
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, ""); /* urllib3 ignores *_proxy variables */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075700
	/* A transfer given up while its host name is still being resolved
	 * leaves the resolver thread behind instead of waiting for it. */
	curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, p->user_agent);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (p->auth_user != NULL) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, p->auth_user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, p->auth_password);
	}
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, p->verify_peer ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, p->verify_host ? 2L : 0L);
	if (p->cafile != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, p->cafile);
	if (p->certfile != NULL)
		curl_easy_setopt(e, CURLOPT_SSLCERT, p->certfile);
	if (p->keyfile != NULL)
		curl_easy_setopt(e, CURLOPT_SSLKEY, p->keyfile);
	if (p->keyfile_password != NULL)
		curl_easy_setopt(e, CURLOPT_KEYPASSWD, p->keyfile_password);
	if (x->post != NULL) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->post_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->post_headers);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->get_headers);
	}
	return true;
}

/* Start (or restart) one attempt, bounded by its timeout and the deadline. */
static void xfer_start(struct pgkeel_peers *p, struct xfer *x, int64_t deadline_ms)
{
	int64_t now = pgkeel_now_monotonic_ms();
	int64_t budget = deadline_ms - now;

	if (x->start_ms == 0)
		x->start_ms = now;
	if (budget <= 0) {
		xfer_fail(x, "no time left before the deadline");
		return;
	}
	if (budget > x->try_ms)
		budget = x->try_ms;
	if (x->easy == NULL && !xfer_setup(p, x)) {
		xfer_fail(x, "cannot create a curl handle");
		return;
	}
	free(x->body.p);
	memset(&x->body, 0, sizeof(x->body));
	x->overflow = false;
	x->errbuf[0] = '\0';
	x->code = 0;
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)budget);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)budget);
	if (curl_multi_add_handle(p->multi, x->easy) != CURLM_OK) {
		xfer_fail(x, "cannot start the request");
		return;
	}
	x->active = true;
	x->attempts++;
}

static bool is_tls_failure(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return true;
	default:
		return false;
	}
}

/* urllib3's Retry.increment() for the failure of one attempt. */
static bool worth_retry(const struct xfer *x)
{
	curl_off_t connect_us = 0;

	if (x->rc == CURLE_OK || x->attempts >= x->max_attempts)
		return false;
	switch (x->rule) {
	case RETRY_NEVER:
		return false;
	case RETRY_ANY:
		return x->rc != CURLE_WRITE_ERROR && x->rc != CURLE_URL_MALFORMAT &&
		       x->rc != CURLE_UNSUPPORTED_PROTOCOL;
	case RETRY_CONNECT:
		if (x->rc == CURLE_COULDNT_RESOLVE_HOST || x->rc == CURLE_COULDNT_CONNECT ||
		    is_tls_failure(x->rc))
			return true;
		/* A timeout counts as a connect timeout only before the TCP
		 * connection was made; afterwards it is a read timeout, which
		 * urllib3 does not retry for a POST. */
		if (x->rc == CURLE_OPERATION_TIMEDOUT &&
		    curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us) == CURLE_OK)
			return connect_us == 0;
		return false;
	}
	return false;
}

static void xfer_finished(struct pgkeel_peers *p, struct xfer *x, CURLcode rc,
                          int64_t deadline_ms)
{
	curl_multi_remove_handle(p->multi, x->easy);
	x->active = false;
	x->rc = rc;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
	if (rc == CURLE_OK) {
		x->done = true;
		x->reason[0] = '\0';
		x->end_ms = pgkeel_now_monotonic_ms();
		return;
	}
	if (x->overflow)
		(void)pgkeel_fmt(x->reason, sizeof(x->reason), "the answer is longer than %zu bytes",
		                 x->body_max);
	else
		(void)pgkeel_fmt(x->reason, sizeof(x->reason), "%s",
		                 x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
	if (worth_retry(x)) {
		log_warning("Retrying %s %s after: %s", x->post != NULL ? "POST" : "GET", x->url,
		            x->reason);
		xfer_start(p, x, deadline_ms);
		if (x->active)
			return;
	}
	x->done = true;
	x->end_ms = pgkeel_now_monotonic_ms();
}

/* Run every transfer that is not done yet, all by deadline_ms. */
static void run_all(struct pgkeel_peers *p, struct xfer *xs, size_t n, int64_t deadline_ms)
{
	for (size_t i = 0; i < n; i++)
		if (!xs[i].done)
			xfer_start(p, &xs[i], deadline_ms);

	for (;;) {
		int running = 0, left = 0;
		size_t active = 0;
		CURLMsg *msg;
		int64_t now;

		if (curl_multi_perform(p->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
			struct xfer *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			if (x != NULL)
				xfer_finished(p, x, msg->data.result, deadline_ms);
		}
		for (size_t i = 0; i < n; i++)
			active += xs[i].active;
		if (active == 0)
			break;
		now = pgkeel_now_monotonic_ms();
		if (now >= deadline_ms)
			break;
		if (curl_multi_poll(p->multi, NULL, 0,
		                    (int)(deadline_ms - now > INT_MAX ? INT_MAX : deadline_ms - now),
		                    NULL) != CURLM_OK)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (xs[i].active) {
			curl_multi_remove_handle(p->multi, xs[i].easy);
			xs[i].active = false;
			xs[i].rc = CURLE_OPERATION_TIMEDOUT;
			xfer_fail(&xs[i], "no answer before the deadline");
		}
	}
}

static void xfer_release(struct xfer *x)
{
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	x->easy = NULL;
	free(x->body.p);
	memset(&x->body, 0, sizeof(x->body));
}

/* scheme://host:port/<path> of an api_url (urlunparse with a new path); malloc'd. */
static char *endpoint_url(const char *api_url, const char *path, char *err, size_t errlen)
{
	CURLU *u;
	char *s = NULL, *out = NULL;
	CURLUcode rc;

	if (api_url == NULL || api_url[0] == '\0') {
		(void)pgkeel_fmt(err, errlen, "no api_url");
		return NULL;
	}
	u = curl_url();
	if (u == NULL)
		pgkeel_oom();
	rc = curl_url_set(u, CURLUPART_URL, api_url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_PATH, path, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_QUERY, NULL, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &s, 0);
	if (rc != CURLUE_OK)
		(void)pgkeel_fmt(err, errlen, "bad api_url: %s", curl_url_strerror(rc));
	else
		out = pgkeel_strdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* ------------------------------------------------------------ status parsing */

const char *pgkeel_peer_limitation_text(enum pgkeel_peer_limitation l)
{
	switch (l) {
	case PGKEEL_PEER_CAN_PROMOTE:
		return NULL;
	case PGKEEL_PEER_NOT_REACHABLE:
		return "not reachable";
	case PGKEEL_PEER_NOFAILOVER:
		return "not allowed to promote";
	case PGKEEL_PEER_WATCHDOG_FAILED:
		return "not watchdog capable";
	}
	return "not reachable";
}

void pgkeel_peer_status_clear(struct pgkeel_peer_status *st)
{
	json_object_put(st->json);
	memset(st, 0, sizeof(*st));
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_boolean) ||
	       json_object_is_type(v, json_type_double);
}

/* Python's int() of a JSON number (bool, int, finite float); false when it raises. */
static bool py_int(json_object *v, int64_t *out)
{
	double d;

	if (json_object_is_type(v, json_type_boolean)) {
		*out = json_object_get_boolean(v) ? 1 : 0;
		return true;
	}
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	if (!json_object_is_type(v, json_type_double))
		return false;
	d = json_object_get_double(v);
	if (!isfinite(d) || d <= -9.2e18 || d >= 9.2e18)
		return false;
	*out = (int64_t)d; /* truncates toward zero, as int() */
	return true;
}

/* Python's max(a, b): b wins only when strictly greater. */
static json_object *py_max(json_object *a, json_object *b)
{
	if (json_object_is_type(a, json_type_double) || json_object_is_type(b, json_type_double))
		return json_object_get_double(b) > json_object_get_double(a) ? b : a;
	return json_object_get_int64(b) > json_object_get_int64(a) ? b : a;
}

/* Patroni's parse_int for a tag value: an integer or a string holding one. */
static bool tag_int(json_object *v, int64_t *out)
{
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	return json_object_is_type(v, json_type_string) &&
	       pgkeel_parse_int64(json_object_get_string(v), out);
}

static bool parse_fail(struct pgkeel_peer_status *st, const char *fmt, ...) PGKEEL_PRINTF(2, 3);

static bool parse_fail(struct pgkeel_peer_status *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(st->error, sizeof(st->error), fmt, ap);
	va_end(ap);
	st->reachable = false;
	st->in_recovery = false;
	st->wal_position = 0;
	st->timeline = 0;
	st->nofailover = false;
	st->failover_priority = 1;
	st->watchdog_failed = false;
	st->limitation = PGKEEL_PEER_NOT_REACHABLE;
	return false;
}

/* A position field of wal/xlog: absent = 0, else a number. */
static bool position(json_object *wal, const char *key, json_object **out, json_object *zero)
{
	if (!json_object_object_get_ex(wal, key, out)) {
		*out = zero;
		return true;
	}
	return is_number(*out);
}

bool pgkeel_peer_status_parse(const char *body, size_t len, struct pgkeel_peer_status *st)
{
	json_object *root = NULL, *wal = NULL, *v, *tags, *received, *replayed, *zero;
	char err[200];
	bool primary_role = false, ok;

	json_object_put(st->json);
	st->json = NULL;
	st->reachable = false;
	st->dcs_last_seen = 0;
	st->error[0] = '\0';
	if (body == NULL)
		return parse_fail(st, "no answer");
	if (!pgkeel_json_parse(body, len, &root, err, sizeof(err)))
		return parse_fail(st, "not JSON: %s", err);
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return parse_fail(st, "the answer is not a JSON object");
	}
	st->json = root;

	/* wal = json.get('wal') or json['xlog'] */
	if (json_object_object_get_ex(root, "wal", &wal) && pgkeel_json_truthy(wal)) {
		/* a Patroni 4 peer */
	} else if (!json_object_object_get_ex(root, "xlog", &wal)) {
		return parse_fail(st, "no \"xlog\" in the answer");
	}
	if (!json_object_is_type(wal, json_type_object))
		return parse_fail(st, "\"xlog\" is not an object");
	if (json_object_object_get_ex(root, "role", &v) && json_object_is_type(v, json_type_string))
		primary_role = strcmp(json_object_get_string(v), "master") == 0 ||
		               strcmp(json_object_get_string(v), "primary") == 0;
	st->in_recovery = !(pgkeel_json_truthy(json_object_object_get(wal, "location")) ||
	                    primary_role);
	st->wal_position = 0;
	if (st->in_recovery) {
		zero = json_object_new_int(0);
		if (!position(wal, "received_location", &received, zero) ||
		    !position(wal, "replayed_location", &replayed, zero)) {
			json_object_put(zero);
			return parse_fail(st, "received_location/replayed_location is not a number");
		}
		ok = py_int(py_max(received, replayed), &st->wal_position);
		json_object_put(zero);
		if (!ok)
			return parse_fail(st, "the WAL position is not a finite number");
	}

	st->timeline = 0;
	if (json_object_object_get_ex(root, "timeline", &v) && v != NULL &&
	    !py_int(v, &st->timeline))
		return parse_fail(st, "\"timeline\" is not a number");
	if (json_object_object_get_ex(root, "dcs_last_seen", &v) && !py_int(v, &st->dcs_last_seen))
		st->dcs_last_seen = 0;

	st->nofailover = false;
	st->failover_priority = 1;
	if (json_object_object_get_ex(root, "tags", &tags)) {
		json_object *nf = NULL, *prio = NULL;
		int64_t fp = 1;
		bool have_fp;

		if (!json_object_is_type(tags, json_type_object))
			return parse_fail(st, "\"tags\" is not an object");
		json_object_object_get_ex(tags, "nofailover", &nf);
		json_object_object_get_ex(tags, "failover_priority", &prio);
		have_fp = prio != NULL && tag_int(prio, &fp);
		if (nf != NULL)
			st->nofailover = pgkeel_json_truthy(nf);
		else
			st->nofailover = have_fp && fp <= 0;
		st->failover_priority = pgkeel_json_truthy(nf) ? 0 : have_fp ? fp : 1;
	}
	st->watchdog_failed = pgkeel_json_truthy(json_object_object_get(root, "watchdog_failed"));

	st->reachable = true;
	if (st->nofailover)
		st->limitation = PGKEEL_PEER_NOFAILOVER;
	else if (st->watchdog_failed)
		st->limitation = PGKEEL_PEER_WATCHDOG_FAILED;
	else
		st->limitation = PGKEEL_PEER_CAN_PROMOTE;
	return true;
}

bool pgkeel_peer_is_lagging(int64_t cluster_last_lsn, int64_t wal_position,
                            int64_t maximum_lag_on_failover)
{
	return cluster_last_lsn - wal_position > maximum_lag_on_failover;
}

/* ------------------------------------------------------------ GET status */

static const char *name_of(const struct pgkeel_peer_target *t)
{
	return t->name != NULL ? t->name : "";
}

static const char *url_of(const struct pgkeel_peer_target *t)
{
	return t->api_url != NULL ? t->api_url : "";
}

/* Patroni's INFO "Got response from <name> <api_url>: <body>". */
static void log_response(const struct pgkeel_peer_target *t, const struct pgkeel_sbuf *body)
{
	char *text;

	if (pgkeel_log_threshold() < PGKEEL_LOG_INFO)
		return;
	text = pgkeel_sanitize_text(body->p != NULL ? body->p : "", body->len);
	log_info("Got response from %s %s: %s", name_of(t), url_of(t), text);
	free(text);
}

void pgkeel_peers_fetch_status(struct pgkeel_peers *p, const struct pgkeel_peer_target *targets,
                               size_t n, int64_t deadline_ms, struct pgkeel_peer_status *out)
{
	struct xfer *xs;

	if (n == 0)
		return;
	xs = pgkeel_xcalloc(n, sizeof(*xs));
	for (size_t i = 0; i < n; i++) {
		pgkeel_peer_status_clear(&out[i]);
		xs[i].url = targets[i].api_url;
		xs[i].rule = RETRY_NEVER;
		xs[i].max_attempts = 1;
		xs[i].try_ms = PGKEEL_PEERS_STATUS_TIMEOUT_MS;
		xs[i].body_max = STATUS_BODY_MAX;
		if (xs[i].url == NULL || xs[i].url[0] == '\0')
			xfer_fail(&xs[i], "no api_url");
	}
	run_all(p, xs, n, deadline_ms);
	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		struct pgkeel_peer_status *st = &out[i];

		if (x->rc == CURLE_OK && x->reason[0] == '\0' && x->easy != NULL) {
			log_response(&targets[i], &x->body);
			(void)pgkeel_peer_status_parse(x->body.p != NULL ? x->body.p : "", x->body.len,
			                               st);
		} else {
			(void)parse_fail(st, "%s", x->reason);
		}
		st->http_code = x->code;
		st->elapsed_ms = x->start_ms != 0 ? x->end_ms - x->start_ms : 0;
		if (!st->reachable)
			log_warning("Request failed to %s: GET %s (%s)", name_of(&targets[i]),
			            url_of(&targets[i]), st->error);
		xfer_release(x);
	}
	free(xs);
}

/* ------------------------------------------------------------ POST /failsafe */

char *pgkeel_failsafe_msg_body(const struct pgkeel_failsafe_msg *m)
{
	json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "name", m->name != NULL ? json_object_new_string(m->name) : NULL);
	json_object_object_add(o, "conn_url",
	                       m->conn_url != NULL ? json_object_new_string(m->conn_url) : NULL);
	json_object_object_add(o, "api_url",
	                       m->api_url != NULL ? json_object_new_string(m->api_url) : NULL);
	json_object_object_add(o, "slots", json_object_get((json_object *)m->slots));
	s = pgkeel_json_spaced(o);
	json_object_put(o);
	return s;
}

bool pgkeel_peers_post_failsafe(struct pgkeel_peers *p, const struct pgkeel_peer_target *targets,
                                size_t n, const struct pgkeel_failsafe_msg *msg,
                                int64_t deadline_ms, struct pgkeel_peer_post_result *out)
{
	struct xfer *xs;
	char **urls;
	char *body;
	bool all = true;

	if (n == 0)
		return true;
	body = pgkeel_failsafe_msg_body(msg);
	xs = pgkeel_xcalloc(n, sizeof(*xs));
	urls = pgkeel_xcalloc(n, sizeof(*urls));
	for (size_t i = 0; i < n; i++) {
		char err[128];

		urls[i] = endpoint_url(targets[i].api_url, "/failsafe", err, sizeof(err));
		xs[i].url = urls[i];
		xs[i].post = body;
		xs[i].post_len = strlen(body);
		xs[i].rule = RETRY_CONNECT;
		xs[i].max_attempts = 1 + FAILSAFE_RETRIES;
		xs[i].try_ms = PGKEEL_PEERS_FAILSAFE_TIMEOUT_MS;
		xs[i].body_max = FAILSAFE_BODY_MAX;
		if (urls[i] == NULL)
			xfer_fail(&xs[i], "%s", err);
	}
	run_all(p, xs, n, deadline_ms);
	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		struct pgkeel_peer_post_result r;
		bool answered = x->rc == CURLE_OK && x->reason[0] == '\0' && x->easy != NULL;

		memset(&r, 0, sizeof(r));
		r.http_code = x->code;
		r.attempts = x->attempts;
		r.elapsed_ms = x->start_ms != 0 ? x->end_ms - x->start_ms : 0;
		if (answered) {
			size_t blen = x->body.len < sizeof(r.body) - 1 ? x->body.len : sizeof(r.body) - 1;

			if (blen > 0)
				memcpy(r.body, x->body.p, blen);
			r.body[blen] = '\0';
			log_response(&targets[i], &x->body);
			r.accepted = x->code == 200 && x->body.len == 8 &&
			             memcmp(x->body.p, "Accepted", 8) == 0;
		} else {
			(void)pgkeel_fmt(r.error, sizeof(r.error), "%s", x->reason);
			log_warning("Request failed to %s: POST %s (%s)", name_of(&targets[i]),
			            url_of(&targets[i]), x->reason);
		}
		all = all && r.accepted;
		if (out != NULL)
			out[i] = r;
		xfer_release(x);
		free(urls[i]);
	}
	free(urls);
	free(xs);
	free(body);
	return all;
}

/* ------------------------------------------------------------ GET /liveness */

bool pgkeel_peers_alive(struct pgkeel_peers *p, const char *api_url, int64_t deadline_ms,
                        long *http_code)
{
	struct xfer x;
	char err[128];
	char *url = endpoint_url(api_url, "/liveness", err, sizeof(err));
	bool alive;

	if (http_code != NULL)
		*http_code = 0;
	if (url == NULL) {
		log_warning("cannot check whether a member answers at %s: %s",
		            api_url != NULL ? api_url : "", err);
		return false;
	}
	memset(&x, 0, sizeof(x));
	x.url = url;
	x.rule = RETRY_ANY;
	x.max_attempts = 1 + LIVENESS_RETRIES;
	x.try_ms = PGKEEL_PEERS_LIVENESS_TIMEOUT_MS;
	x.body_max = STATUS_BODY_MAX;
	run_all(p, &x, 1, deadline_ms);
	alive = x.rc == CURLE_OK && x.reason[0] == '\0' && x.easy != NULL && x.code > 0;
	if (http_code != NULL)
		*http_code = x.code;
	if (!alive)
		log_debug("GET %s: %s", url, x.reason);
	xfer_release(&x);
	free(url);
	return alive;
}
