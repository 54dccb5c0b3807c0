/*
 * pgkeelctl: requests to members' REST APIs (libcurl easy interface, one
 * handle kept for the process so connections are reused).
 *
 * Credentials and TLS as patronictl 3.0.2 sets them up (core/peers.h:
 * pgkeel_peers_settings_from_config with insecure -1 or 1 for -k).
 * Unlike patronictl, every request has a deadline.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "json.h"
#include "peers.h"

#define CONNECT_TIMEOUT_MS 5000
#define MAX_BODY (16 * 1024 * 1024)

struct ctl_http {
	CURL *curl;
	struct pgkeel_peers_settings s;
	char auth[512];
	char agent[64];
};

static struct ctl_http *http(struct ctl *ctl)
{
	struct ctl_http *h = ctl->http;

	if (h != NULL)
		return h;
	h = pgkeel_xcalloc(1, sizeof(*h));
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		free(h);
		return NULL;
	}
	pgkeel_peers_settings_from_config(ctl->cfg, ctl->insecure, h->auth, sizeof(h->auth), &h->s);
	pgkeel_fmt(h->agent, sizeof(h->agent), "pgkeelctl/%s", PACKAGE_VERSION);
	ctl->http = h;
	return h;
}

void ctl_http_close(struct ctl *ctl)
{
	if (ctl->http == NULL)
		return;
	curl_easy_cleanup(ctl->http->curl);
	free(ctl->http);
	ctl->http = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct pgkeel_sbuf *b = arg;

	if (b->len + size * n > MAX_BODY)
		return 0;
	pgkeel_sbuf_put(b, p, size * n);
	return size * n;
}

/* scheme://host:port of an api_url, then endpoint; NULL when it is not an http(s) URL. */
static char *member_url(const char *api_url, const char *endpoint)
{
	const char *p;
	size_t n;

	if (api_url == NULL ||
	    (strncmp(api_url, "http://", 7) != 0 && strncmp(api_url, "https://", 8) != 0))
		return NULL;
	if (endpoint == NULL)
		return pgkeel_strdup(api_url);
	p = strstr(api_url, "://") + 3;
	n = (size_t)(p - api_url) + strcspn(p, "/?#");
	return pgkeel_asprintf("%.*s/%s", (int)n, api_url, endpoint[0] == '/' ? endpoint + 1 : endpoint);
}

void ctl_reply_free(struct ctl_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

bool ctl_request(struct ctl *ctl, const struct pgkeel_member *m, const char *method,
                 const char *endpoint, const char *body, int64_t timeout_ms,
                 struct ctl_reply *r)
{
	struct ctl_http *h = http(ctl);
	char *url = member_url(m->d.api_url, endpoint);
	struct curl_slist *hdrs = NULL;
	struct pgkeel_sbuf b = {0};
	CURLcode rc;
	CURL *c;

	memset(r, 0, sizeof(*r));
	if (url == NULL) {
		pgkeel_fmt(r->error, sizeof(r->error), "member %s has no usable api_url", m->name);
		r->body = pgkeel_strdup("");
		return false;
	}
	if (h == NULL) {
		pgkeel_fmt(r->error, sizeof(r->error), "cannot create an HTTP client");
		r->body = pgkeel_strdup("");
		free(url);
		return false;
	}
	c = h->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, h->s.user_agent ? h->s.user_agent : h->agent);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (h->s.auth != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, h->s.auth);
	}
	if (h->s.certfile != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->s.certfile);
		if (h->s.keyfile != NULL)
			curl_easy_setopt(c, CURLOPT_SSLKEY, h->s.keyfile);
		if (h->s.keyfile_password != NULL)
			curl_easy_setopt(c, CURLOPT_KEYPASSWD, h->s.keyfile_password);
	}
	if (h->s.cafile != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->s.cafile);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->s.verify_peer ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->s.verify_peer && h->s.verify_host ? 2L : 0L);
	/* JSON bodies without Content-Type, as patronictl sends them */
	hdrs = curl_slist_append(hdrs, "Content-Type:");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (body != NULL || strcmp(method, "POST") == 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
		}
	}
	rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	free(url);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	} else {
		pgkeel_fmt(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
		r->code = 0;
	}
	r->body_len = b.len;
	r->body = pgkeel_sbuf_finish(&b);
	if (r->body == NULL)
		r->body = pgkeel_strdup("");
	return r->code != 0;
}
