/*
 * etcd3 transport: the members to talk to, TLS and auth, and one call that
 * moves through the members until one answers or the deadline passes.
 */
#include "autoconf.h"

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "etcd3.h"

#define E3_MAX_BODY (64u * 1024 * 1024)
#define E3_MIN_ATTEMPT_MS 200

/* ------------------------------------------------------------------ helpers */

static char *xasprintf(const char *fmt, ...) PGKEEL_PRINTF(1, 2);

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static void list_add(char ***l, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*l)[i], s) == 0)
			return;
	*l = realloc(*l, (*n + 1) * sizeof(**l));
	if (*l == NULL)
		abort();
	(*l)[(*n)++] = dcsc_strdup(s);
}

/*
 * "h:p", "h", "http://h:p", "https://h:p/" -> a base URL without the
 * trailing '/'; a bare host gets `port`.
 */
static char *base_url_port(const char *hostport, bool https, const char *port)
{
	char *u;
	size_t n;

	while (*hostport == ' ' || *hostport == '\'' || *hostport == '"')
		hostport++;
	if (strstr(hostport, "://") != NULL)
		u = dcsc_strdup(hostport);
	else if (strchr(hostport, ':') == NULL || (hostport[0] == '[' && strstr(hostport, "]:") == NULL))
		u = xasprintf("%s://%s:%s", https ? "https" : "http", hostport, port);
	else
		u = xasprintf("%s://%s", https ? "https" : "http", hostport);
	n = strlen(u);
	while (n > 0 && (u[n - 1] == '/' || u[n - 1] == ' ' || u[n - 1] == '\'' ||
	                 u[n - 1] == '"'))
		u[--n] = '\0';
	return u;
}

static char *base_url(const char *hostport, bool https)
{
	return base_url_port(hostport, https, "2379");
}

static const char *opt_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int))
		return NULL;
	return json_object_get_string(v);
}

/* DNS SRV: _etcd-client-ssl / _etcd-client / _etcd-ssl / _etcd under _tcp.<domain>. */
static void srv_lookup(struct e3_http *h, const char *domain, const char *suffix)
{
	static const struct {
		const char *service;
		bool https;
	} services[] = {{"_etcd-client-ssl", true},
	                {"_etcd-client", false},
	                {"_etcd-ssl", true},
	                {"_etcd", false}};
	unsigned char answer[4096];

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
		char *q = xasprintf("%s%s%s._tcp.%s", services[s].service, suffix ? "-" : "",
		                    suffix ? suffix : "", domain);
		int len = res_query(q, ns_c_in, ns_t_srv, answer, sizeof(answer));
		ns_msg msg;

		free(q);
		if (len < 0 || ns_initparse(answer, len, &msg) != 0)
			continue;
		for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
			ns_rr rr;
			char target[NS_MAXDNAME];
			const unsigned char *rd;
			unsigned port;

			if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_srv ||
			    ns_rr_rdlen(rr) < 7)
				continue;
			rd = ns_rr_rdata(rr);
			port = ((unsigned)rd[4] << 8) | rd[5];
			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target,
			              sizeof(target)) < 0)
				continue;
			{
				size_t tl = strlen(target);
				char *hp;

				if (tl > 0 && target[tl - 1] == '.')
					target[tl - 1] = '\0';
				hp = xasprintf("%s://%s:%u", services[s].https ? "https" : "http",
				               target, port);
				list_add(&h->configured, &h->n_configured, hp);
				free(hp);
			}
		}
		if (h->n_configured > 0)
			return;
	}
}

static const char *const known_options[] = {
	"host", "hosts", "url", "proxy", "srv", "srv_suffix", "discovery_srv", "srv_domain",
	"protocol", "username", "password", "cacert", "cert", "key", "port",
	"use_proxies", "ttl", "loop_wait", "retry_timeout", NULL};

bool e3_http_init(struct e3_http *h, const struct pgkeel_host *host, const char *options_json,
                  const char *user_agent, int ttl, int loop_wait, int retry_timeout,
                  struct pgkeel_err *err)
{
	json_object *o = json_tokener_parse(options_json ? options_json : "{}");
	json_object *v;
	const char *s, *port = "2379";
	bool ok = false;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->host = host;
	h->api = dcsc_strdup("/v3");
	h->user_agent = dcsc_strdup(user_agent ? user_agent : "pgkeel");
	e3_http_set_timing(h, ttl, loop_wait, retry_timeout);
	if (!json_object_is_type(o, json_type_object)) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "etcd3: the options must be a mapping");
		goto out;
	}
	json_object_object_foreach(o, k, val)
	{
		bool known = false;

		(void)val;
		for (int i = 0; known_options[i] != NULL; i++)
			known |= strcmp(known_options[i], k) == 0;
		if (!known)
			host->log(host->ctx, PGKEEL_LOG_WARNING, "etcd3: ignoring unknown option '%s'",
			          k);
	}
	s = opt_str(o, "protocol");
	if (s != NULL && strcmp(s, "https") != 0 && strcmp(s, "http") != 0) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "etcd3.protocol: expected http or https, not '%s'", s);
		goto out;
	}
	h->https = s != NULL && strcmp(s, "https") == 0;
	port = opt_str(o, "port") ? opt_str(o, "port") : "2379";
	h->username = dcsc_strdup(opt_str(o, "username"));
	h->password = dcsc_strdup(opt_str(o, "password"));
	h->cacert = dcsc_strdup(opt_str(o, "cacert"));
	h->cert = dcsc_strdup(opt_str(o, "cert"));
	h->key = dcsc_strdup(opt_str(o, "key"));
	if (h->cacert != NULL || h->cert != NULL)
		h->https = true;
	if (json_object_object_get_ex(o, "use_proxies", &v))
		h->use_proxies = json_object_get_boolean(v);

	/* sources in Patroni's priority: proxy/url, srv, hosts, host */
	if ((s = opt_str(o, "proxy")) != NULL || (s = opt_str(o, "url")) != NULL) {
		char *u = base_url(s, h->https);
		char *scheme_end = strstr(u, "://"), *at;

		/* http://user:password@host:port: the etcd credentials */
		if (scheme_end != NULL && (at = strchr(scheme_end + 3, '@')) != NULL &&
		    (strchr(scheme_end + 3, '/') == NULL || strchr(scheme_end + 3, '/') > at)) {
			char *cred = strndup(scheme_end + 3, (size_t)(at - scheme_end - 3));
			char *colon = cred ? strchr(cred, ':') : NULL;

			if (cred == NULL)
				abort();
			if (colon != NULL)
				*colon = '\0';
			if (h->username == NULL) {
				h->username = dcsc_strdup(cred);
				free(h->password);
				h->password = dcsc_strdup(colon ? colon + 1 : "");
			}
			explicit_bzero(cred, strlen(cred) + (colon ? strlen(colon + 1) + 1 : 0));
			free(cred);
			memmove(scheme_end + 3, at + 1, strlen(at + 1) + 1);
		}

		list_add(&h->configured, &h->n_configured, u);
		free(u);
		if (opt_str(o, "proxy") != NULL)
			h->use_proxies = true;
	} else if ((s = opt_str(o, "srv")) != NULL || (s = opt_str(o, "discovery_srv")) != NULL ||
	           (s = opt_str(o, "srv_domain")) != NULL) {
		srv_lookup(h, s, opt_str(o, "srv_suffix"));
		if (h->n_configured == 0) {
			dcsc_set_err(err, PGKEEL_DCS_D_CONNECT,
			             "etcd3.srv: no etcd SRV record found under _tcp.%s", s);
			goto out;
		}
	} else if (json_object_object_get_ex(o, "hosts", &v) && v != NULL) {
		if (json_object_is_type(v, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(v); i++) {
				char *u = base_url_port(
					json_object_get_string(json_object_array_get_idx(v, i)), h->https,
					port);

				list_add(&h->configured, &h->n_configured, u);
				free(u);
			}
		} else if (json_object_is_type(v, json_type_string)) {
			char *copy = dcsc_strdup(json_object_get_string(v)), *save = NULL;

			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				char *u = base_url_port(t, h->https, port);

				list_add(&h->configured, &h->n_configured, u);
				free(u);
			}
			free(copy);
		}
	} else if ((s = opt_str(o, "host")) != NULL) {
		char *u = base_url_port(s, h->https, port);

		list_add(&h->configured, &h->n_configured, u);
		free(u);
	}
	if (h->n_configured == 0) {
		/* Patroni's default */
		list_add(&h->configured, &h->n_configured,
		         h->https ? "https://127.0.0.1:2379" : "http://127.0.0.1:2379");
	}
	for (size_t i = 0; i < h->n_configured; i++)
		list_add(&h->endpoints, &h->n_endpoints, h->configured[i]);
	h->easy = curl_easy_init();
	if (h->easy == NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "etcd3: curl_easy_init failed");
		goto out;
	}
	ok = true;
out:
	json_object_put(o);
	return ok;
}

void e3_http_fini(struct e3_http *h)
{
	if (h->easy != NULL)
		curl_easy_cleanup(h->easy);
	free_list(h->endpoints, h->n_endpoints);
	free_list(h->configured, h->n_configured);
	free(h->api);
	free(h->username);
	if (h->password != NULL)
		explicit_bzero(h->password, strlen(h->password));
	free(h->password);
	free(h->token);
	free(h->cacert);
	free(h->cert);
	free(h->key);
	free(h->user_agent);
	pthread_mutex_destroy(&h->lock);
}

void e3_http_set_timing(struct e3_http *h, int ttl, int loop_wait, int retry_timeout)
{
	__atomic_store_n(&h->ttl, ttl, __ATOMIC_RELAXED);
	__atomic_store_n(&h->loop_wait, loop_wait, __ATOMIC_RELAXED);
	__atomic_store_n(&h->retry_timeout, retry_timeout, __ATOMIC_RELAXED);
}

char *e3_http_endpoint(struct e3_http *h, size_t *index)
{
	char *e;

	pthread_mutex_lock(&h->lock);
	*index = h->current % h->n_endpoints;
	e = dcsc_strdup(h->endpoints[*index]);
	pthread_mutex_unlock(&h->lock);
	return e;
}

char *e3_http_token(struct e3_http *h)
{
	char *t;

	pthread_mutex_lock(&h->lock);
	t = dcsc_strdup(h->token);
	pthread_mutex_unlock(&h->lock);
	return t;
}

void e3_http_skip(struct e3_http *h, size_t index)
{
	pthread_mutex_lock(&h->lock);
	if (h->current % h->n_endpoints == index)
		h->current = (index + 1) % h->n_endpoints;
	pthread_mutex_unlock(&h->lock);
}

/* ------------------------------------------------------------------ curl */

/* TCP_USER_TIMEOUT: a member that stops acknowledging is given up after ttl. */
static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct e3_http *h = clientp;
	unsigned timeout_ms = (unsigned)__atomic_load_n(&h->ttl, __ATOMIC_RELAXED) * 1000u;

	if (purpose == CURLSOCKTYPE_IPCXN)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms,
		                 sizeof(timeout_ms));
	return CURL_SOCKOPT_OK;
}

void e3_http_setup_easy(struct e3_http *h, CURL *easy, long connect_ms, long total_ms)
{
	long idle = __atomic_load_n(&h->loop_wait, __ATOMIC_RELAXED) +
	            __atomic_load_n(&h->retry_timeout, __ATOMIC_RELAXED);
	long ttl = __atomic_load_n(&h->ttl, __ATOMIC_RELAXED);
	long intvl = (ttl - idle) / 3;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	if (total_ms > 0)
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, idle > 0 ? idle : 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, intvl > 0 ? intvl : 1L);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, h);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	if (h->cacert != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, h->cacert);
	if (h->cert != NULL)
		curl_easy_setopt(easy, CURLOPT_SSLCERT, h->cert);
	if (h->key != NULL)
		curl_easy_setopt(easy, CURLOPT_SSLKEY, h->key);
}

struct buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n > E3_MAX_BODY) {
		b->overflow = true;
		return 0;
	}
	b->data = realloc(b->data, b->len + n + 1);
	if (b->data == NULL)
		abort();
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* One POST; returns the CURLcode, fills *status and the body. */
static CURLcode post_once(struct e3_http *h, const char *url, const char *body,
                          const char *token, long connect_ms, long total_ms, long *status,
                          struct buf *out)
{
	struct curl_slist *headers = NULL;
	char *auth = NULL;
	CURLcode rc;

	e3_http_setup_easy(h, h->easy, connect_ms, total_ms);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (token != NULL) {
		auth = xasprintf("Authorization: %s", token);
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(h->easy, CURLOPT_URL, url);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, headers);
	if (body != NULL) {
		curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(h->easy);
	*status = 0;
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return rc;
}

static int64_t now_ms(struct e3_http *h)
{
	return h->host->now_monotonic_ms(h->host->ctx);
}

/* The API prefix from GET /version: 3.4+ /v3, 3.3 /v3beta, older /v3alpha. */
static void learn_api(struct e3_http *h, const char *base, long connect_ms, long total_ms)
{
	struct buf b = {0};
	long status = 0;
	char *url = xasprintf("%s/version", base);
	CURLcode rc = post_once(h, url, NULL, NULL, connect_ms, total_ms, &status, &b);

	free(url);
	if (rc == CURLE_OK && status == 200 && b.data != NULL) {
		json_object *o = json_tokener_parse(b.data), *c;
		int major = 0, minor = 0;

		if (json_object_object_get_ex(o, "etcdcluster", &c) &&
		    sscanf(json_object_get_string(c), "%d.%d", &major, &minor) == 2) {
			free(h->api);
			h->api = dcsc_strdup(major > 3 || (major == 3 && minor >= 4) ? "/v3"
			                     : major == 3 && minor == 3              ? "/v3beta"
			                                                             : "/v3alpha");
			h->api_known = true;
			if (major == 3 && minor < 3)
				h->host->log(h->host->ctx, PGKEEL_LOG_WARNING,
				             "etcd3: cluster version %d.%d is older than 3.3; watches "
				             "and auth may not work",
				             major, minor);
		}
		json_object_put(o);
	}
	free(b.data);
}

static bool authenticate(struct e3_http *h, const char *base, long connect_ms, long total_ms,
                         struct e3_result *res)
{
	char *body = e3_req_auth(h->username, h->password ? h->password : "");
	char *url = xasprintf("%s%s/auth/authenticate", base, h->api);
	struct buf b = {0};
	long status = 0;
	CURLcode rc = post_once(h, url, body, NULL, connect_ms, total_ms, &status, &b);
	char *token = NULL, perr[128];
	bool ok = false;

	explicit_bzero(body, strlen(body));
	free(body);
	free(url);
	e3_classify(base, (int)rc, status, b.data, b.len, res);
	if (res->status == PGKEEL_DCS_OK) {
		if (e3_parse_auth(b.data, b.len, &token, perr, sizeof(perr))) {
			pthread_mutex_lock(&h->lock);
			free(h->token);
			h->token = token;
			pthread_mutex_unlock(&h->lock);
			ok = true;
		} else {
			res->status = PGKEEL_DCS_UNAVAILABLE;
			res->detail = PGKEEL_DCS_D_PROTOCOL;
			(void)snprintf(res->msg, sizeof(res->msg), "etcd %s: bad auth answer: %s",
			               base, perr);
		}
	} else if (res->auth_disabled) {
		ok = true; /* go on without a token */
	}
	free(b.data);
	return ok;
}

/* Refresh the member list (unless talking through proxies): best effort. */
static void discover(struct e3_http *h, const char *base, long connect_ms, long total_ms)
{
	char *url = xasprintf("%s%s/cluster/member/list", base, h->api);
	char *token = e3_http_token(h);
	struct buf b = {0};
	long status = 0;
	CURLcode rc = post_once(h, url, "{}", token, connect_ms, total_ms, &status, &b);
	json_object *o, *members;
	char **found = NULL;
	size_t nfound = 0;

	free(url);
	free(token);
	h->discovered_ms = now_ms(h);
	if (rc != CURLE_OK || status != 200 || b.data == NULL) {
		free(b.data);
		return;
	}
	o = json_tokener_parse(b.data);
	if (json_object_object_get_ex(o, "members", &members) &&
	    json_object_is_type(members, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(members); i++) {
			json_object *m = json_object_array_get_idx(members, i), *urls;

			if (!json_object_object_get_ex(m, "clientURLs", &urls) ||
			    !json_object_is_type(urls, json_type_array))
				continue;
			for (size_t j = 0; j < json_object_array_length(urls); j++) {
				char *u = base_url(json_object_get_string(json_object_array_get_idx(urls, j)),
				                   h->https);

				list_add(&found, &nfound, u);
				free(u);
			}
		}
	}
	json_object_put(o);
	free(b.data);
	if (nfound == 0)
		return;
	pthread_mutex_lock(&h->lock);
	{
		char *cur = dcsc_strdup(h->endpoints[h->current % h->n_endpoints]);

		/* the configured members stay reachable even if the list omits them */
		for (size_t i = 0; i < h->n_configured; i++)
			list_add(&found, &nfound, h->configured[i]);
		free_list(h->endpoints, h->n_endpoints);
		h->endpoints = found;
		h->n_endpoints = nfound;
		h->current = 0;
		for (size_t i = 0; i < nfound; i++)
			if (strcmp(found[i], cur) == 0)
				h->current = i;
		free(cur);
	}
	pthread_mutex_unlock(&h->lock);
}

enum pgkeel_dcs_status e3_call(struct e3_http *h, const char *rpc, const char *body,
                               int64_t deadline_ms, char **resp, size_t *resp_len,
                               struct e3_result *res, struct pgkeel_err *err)
{
	size_t tried = 0;
	int auth_attempts = 0;
	char last[PGKEEL_ERR_MSG_LEN] = "no attempt was made";

	*resp = NULL;
	*resp_len = 0;
	memset(res, 0, sizeof(*res));
	for (;;) {
		int64_t remaining = deadline_ms - now_ms(h);
		size_t n, left, idx;
		long share, connect_ms;
		char *base, *url, *token;
		struct buf b = {0};
		long status = 0;
		CURLcode rc;

		if (remaining <= 0)
			break;
		pthread_mutex_lock(&h->lock);
		n = h->n_endpoints;
		pthread_mutex_unlock(&h->lock);
		left = n - (tried % n);
		share = (long)(remaining / (int64_t)left);
		if (share < E3_MIN_ATTEMPT_MS)
			share = (long)(remaining < E3_MIN_ATTEMPT_MS ? remaining : E3_MIN_ATTEMPT_MS);
		connect_ms = share / 2 > 50 ? share / 2 : 50;
		base = e3_http_endpoint(h, &idx);
		if (!h->api_known)
			learn_api(h, base, connect_ms < share / 2 ? connect_ms : share / 2, share / 2);
		if (h->username != NULL && h->token == NULL && auth_attempts < 2) {
			auth_attempts++;
			if (!authenticate(h, base, connect_ms, share, res)) {
				(void)snprintf(last, sizeof(last), "%s", res->msg);
				if (res->detail == PGKEEL_DCS_D_AUTH && !res->next_endpoint) {
					free(base);
					dcsc_set_err(err, PGKEEL_DCS_D_AUTH, "%s", res->msg);
					return PGKEEL_DCS_UNAVAILABLE;
				}
				e3_http_skip(h, idx);
				tried++;
				free(base);
				continue;
			}
		}
		/* what the preliminaries took comes out of this attempt's share */
		remaining = deadline_ms - now_ms(h);
		if (remaining <= 0) {
			free(base);
			break;
		}
		if (share > remaining)
			share = (long)remaining;
		if (connect_ms > share)
			connect_ms = share;
		url = xasprintf("%s%s%s", base, h->api, rpc);
		token = e3_http_token(h);
		rc = post_once(h, url, body, token, connect_ms, share, &status, &b);
		free(url);
		free(token);
		e3_classify(base, (int)rc, status, b.data, b.len, res);
		if (b.overflow) {
			res->status = PGKEEL_DCS_UNAVAILABLE;
			(void)snprintf(res->msg, sizeof(res->msg), "etcd %s: answer larger than %u bytes",
			               base, E3_MAX_BODY);
		}
		if (res->status == PGKEEL_DCS_OK) {
			*resp = b.data;
			*resp_len = b.len;
			if (!h->use_proxies &&
			    (h->discovered_ms == 0 ||
			     now_ms(h) - h->discovered_ms > (int64_t)h->ttl * 10000)) {
				int64_t left_ms = deadline_ms - now_ms(h);

				if (left_ms > 100)
					discover(h, base, left_ms / 2 > 50 ? (long)left_ms / 2 : 50,
					         (long)(left_ms > 1000 ? 1000 : left_ms));
			}
			free(base);
			return PGKEEL_DCS_OK;
		}
		free(b.data);
		(void)snprintf(last, sizeof(last), "%s", res->msg);
		if (res->auth_disabled) {
			pthread_mutex_lock(&h->lock);
			free(h->token);
			h->token = NULL;
			pthread_mutex_unlock(&h->lock);
			free(h->username);
			h->username = NULL;
			free(base);
			continue;
		}
		if (res->reauth && h->username != NULL && auth_attempts < 2) {
			/* an expired or invalid token: the top of the loop authenticates again */
			pthread_mutex_lock(&h->lock);
			free(h->token);
			h->token = NULL;
			pthread_mutex_unlock(&h->lock);
			free(base);
			continue;
		}
		if (res->lease_not_found || res->status != PGKEEL_DCS_UNAVAILABLE) {
			free(base);
			dcsc_set_err(err, res->detail, "%s", res->msg);
			return res->status;
		}
		if (!res->next_endpoint) {
			/* transient on a healthy member (FailedPrecondition...): again, here */
			int64_t rem = deadline_ms - now_ms(h);

			free(base);
			if (rem > 0)
				(void)poll(NULL, 0, (int)(rem < 100 ? rem : 100));
			continue;
		}
		e3_http_skip(h, idx);
		tried++;
		free(base);
		if (tried % n == 0) {
			/* every member failed once: a short pause before the next round */
			int64_t rem = deadline_ms - now_ms(h);

			if (rem > 0)
				(void)poll(NULL, 0, (int)(rem < 100 ? rem : 100));
		}
	}
	res->status = PGKEEL_DCS_UNAVAILABLE;
	if (res->detail == PGKEEL_DCS_D_NONE)
		res->detail = PGKEEL_DCS_D_TIMEOUT;
	dcsc_set_err(err, res->detail, "etcd: no member answered before the deadline (last: %s)",
	             last);
	return PGKEEL_DCS_UNAVAILABLE;
}
