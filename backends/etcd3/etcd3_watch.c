/*
 * The etcd3 watch thread: one streaming POST /v3/watch on the cluster
 * prefix, driven by curl multi with a short poll timeout so the thread can
 * notice a stop request and a stale stream.
 *
 * A frozen member (SIGSTOP, a stuck disk) keeps the TCP connection alive:
 * the kernel still acknowledges keepalive probes, so TCP alone never notices.
 * The HA loop therefore tells the thread which revision it saw through a
 * quorum read (e3_watch_expect); when the stream has not reached it within
 * a grace period, the thread drops the stream, moves to the next member,
 * resumes from the last revision it saw, and wakes the loop.
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd3.h"

#define WATCH_POLL_MS 200
#define WATCH_STALE_MS 1500
#define WATCH_RETRY_MS 500

struct e3_watch {
	struct e3_http *http;
	char *prefix;
	size_t prefix_len;
	pthread_t thread;
	CURLM *multi;

	/* shared with the loop thread */
	int stop;                 /* atomic */
	int64_t expect_rev;       /* atomic: a revision the loop saw */
	int64_t expect_since_ms;  /* atomic: when it was first not yet seen */

	/* the thread's own */
	int64_t seen_rev;         /* every change up to this revision was delivered */
	bool created;
	bool restart;
	struct e3_watch_parser *parser;
};

static int64_t now_ms(struct e3_watch *w)
{
	return w->http->host->now_monotonic_ms(w->http->host->ctx);
}

static void wake(struct e3_watch *w, uint32_t events)
{
	w->http->host->post_event(w->http->host->ctx, events);
}

static void on_msg(void *arg, const struct e3_watch_msg *m)
{
	struct e3_watch *w = arg;
	uint32_t events = 0;

	if (m->error || m->canceled) {
		w->http->host->log(w->http->host->ctx, PGKEEL_LOG_WARNING,
		                   "etcd3: watch %s: %s", m->canceled ? "canceled" : "error",
		                   m->reason ? m->reason : "no reason given");
		if (m->compact_revision > 0 && m->compact_revision > w->seen_rev) {
			/* history is gone: resume from the present, and have the loop reload */
			w->seen_rev = m->compact_revision - 1;
			events |= PGKEEL_EVENT_OTHER;
		}
		w->restart = true;
	}
	if (m->created)
		w->created = true;
	for (size_t i = 0; i < m->n_events; i++) {
		const char *k = m->events[i].key;

		if (strncmp(k, w->prefix, w->prefix_len) != 0)
			continue;
		k += w->prefix_len;
		if (strcmp(k, "leader") == 0)
			events |= PGKEEL_EVENT_LEADER;
		else if (strcmp(k, "config") == 0 && m->events[i].type == E3_EV_PUT)
			events |= PGKEEL_EVENT_CONFIG;
		if (m->events[i].mod_revision > w->seen_rev)
			w->seen_rev = m->events[i].mod_revision;
	}
	/* a created or progress message covers everything up to its header revision */
	if (!m->error && !m->canceled && m->revision > w->seen_rev &&
	    (m->created || m->n_events > 0))
		w->seen_rev = m->revision;
	if (events != 0)
		wake(w, events);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct e3_watch *w = userdata;

	if (!e3_watch_parser_feed(w->parser, ptr, size * nmemb)) {
		w->restart = true;
		return 0; /* abort the transfer */
	}
	return size * nmemb;
}

/* The loop saw a revision the stream has not delivered for too long? */
static bool stale(struct e3_watch *w)
{
	int64_t expect = __atomic_load_n(&w->expect_rev, __ATOMIC_ACQUIRE);
	int64_t since = __atomic_load_n(&w->expect_since_ms, __ATOMIC_ACQUIRE);

	return expect > w->seen_rev && since > 0 && now_ms(w) - since > WATCH_STALE_MS;
}

/* One stream: returns when it ends, fails, goes stale, or stop is asked. */
static void run_stream(struct e3_watch *w)
{
	size_t idx;
	char *base = e3_http_endpoint(w->http, &idx);
	char *token = e3_http_token(w->http);
	char *url = NULL, *end = e3_prefix_end(w->prefix), *body, *auth = NULL;
	CURL *easy = curl_easy_init();
	struct curl_slist *headers = NULL;
	long connect_ms = (long)__atomic_load_n(&w->http->retry_timeout, __ATOMIC_RELAXED) * 500;
	bool failed = false;

	if (easy == NULL) {
		free(base);
		free(token);
		free(end);
		return;
	}
	if (asprintf(&url, "%s%s/watch", base, w->http->api) < 0)
		abort();
	/* resume after what was delivered; with nothing seen yet, from now */
	body = e3_req_watch_create(w->prefix, end, w->seen_rev > 0 ? w->seen_rev + 1 : 0);
	w->parser = e3_watch_parser_new(on_msg, w);
	w->created = false;
	w->restart = false;
	/* a new stream gets its own grace period to catch up */
	if (__atomic_load_n(&w->expect_rev, __ATOMIC_ACQUIRE) > w->seen_rev)
		__atomic_store_n(&w->expect_since_ms, now_ms(w), __ATOMIC_RELEASE);
	e3_http_setup_easy(w->http, easy, connect_ms > 0 ? connect_ms : 1000, 0);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (token != NULL) {
		if (asprintf(&auth, "Authorization: %s", token) < 0)
			abort();
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, w);
	curl_multi_add_handle(w->multi, easy);

	for (;;) {
		int running = 0, numfds = 0;
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(w->multi, &running) != CURLM_OK) {
			failed = true;
			break;
		}
		while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				long status = 0;

				curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
				if (msg->data.result != CURLE_OK || status != 200)
					w->http->host->log(
						w->http->host->ctx, PGKEEL_LOG_WARNING,
						"etcd3: watch stream on %s ended: %s (HTTP %ld)", base,
						curl_easy_strerror(msg->data.result), status);
				failed = true;
			}
		}
		if (failed || running == 0 || w->restart)
			break;
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
			break;
		if (stale(w)) {
			w->http->host->log(w->http->host->ctx, PGKEEL_LOG_WARNING,
			                   "etcd3: watch stream on %s is stale (it has not delivered "
			                   "revision %lld); moving to another member",
			                   base,
			                   (long long)__atomic_load_n(&w->expect_rev,
			                                              __ATOMIC_RELAXED));
			failed = true;
			/* the loop may have missed a change: let it look */
			wake(w, PGKEEL_EVENT_LEADER | PGKEEL_EVENT_OTHER);
			break;
		}
		curl_multi_poll(w->multi, NULL, 0, WATCH_POLL_MS, &numfds);
	}
	if (failed || w->restart)
		e3_http_skip(w->http, idx);
	curl_multi_remove_handle(w->multi, easy);
	curl_easy_cleanup(easy);
	curl_slist_free_all(headers);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	e3_watch_parser_free(w->parser);
	w->parser = NULL;
	free(url);
	free(body);
	free(end);
	free(base);
	free(token);
}

static void *watch_main(void *arg)
{
	struct e3_watch *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		int numfds = 0;

		run_stream(w);
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
			break;
		/* a pause before the next attempt, interruptible by stop */
		curl_multi_poll(w->multi, NULL, 0, WATCH_RETRY_MS, &numfds);
	}
	return NULL;
}

struct e3_watch *e3_watch_start(struct e3_http *h, const char *prefix, int64_t start_revision)
{
	struct e3_watch *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	if (w == NULL)
		return NULL;
	w->http = h;
	w->prefix = strdup(prefix);
	w->prefix_len = strlen(prefix);
	w->seen_rev = start_revision > 0 ? start_revision - 1 : 0;
	w->multi = curl_multi_init();
	if (w->prefix == NULL || w->multi == NULL) {
		free(w->prefix);
		if (w->multi != NULL)
			curl_multi_cleanup(w->multi);
		free(w);
		return NULL;
	}
	/* the thread takes no signals: they belong to the HA loop */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		curl_multi_cleanup(w->multi);
		free(w->prefix);
		free(w);
		return NULL;
	}
	return w;
}

void e3_watch_expect(struct e3_watch *w, int64_t rev)
{
	int64_t cur = __atomic_load_n(&w->expect_rev, __ATOMIC_ACQUIRE);

	if (rev <= cur)
		return;
	__atomic_store_n(&w->expect_since_ms, now_ms(w), __ATOMIC_RELEASE);
	__atomic_store_n(&w->expect_rev, rev, __ATOMIC_RELEASE);
}

bool e3_watch_running(struct e3_watch *w)
{
	return w != NULL && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
}

void e3_watch_stop(struct e3_watch *w)
{
	if (w == NULL)
		return;
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	curl_multi_cleanup(w->multi);
	free(w->prefix);
	free(w);
}
