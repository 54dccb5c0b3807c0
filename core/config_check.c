/*
 * --validate-config: findings about the machine the configuration is meant
 * for.  None of them makes a well-formed file invalid by itself (the file
 * may be checked on another host), so they are warnings unless --strict.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "dcs_loader.h"
#include "util.h"

typedef void (*report_fn)(struct pgkeel_diag *, const char *, ...);

/* Split "host:port" (last colon; [v6]:port allowed).  false if malformed. */
static bool split_hostport(const char *hp, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(hp, ':');
	const char *h = hp;
	size_t n;

	if (colon == NULL || colon == hp)
		return false;
	n = (size_t)(colon - hp);
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n + 1 > hlen || !pgkeel_fmt(port, plen, "%s", colon + 1))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	return true;
}

static bool is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "::1") == 0;
}

/* Try to bind host:port; report EADDRINUSE and addresses not on this host. */
static void check_listen(const char *key, const char *hp, report_fn report,
                         struct pgkeel_diag *diag)
{
	char hosts[256], port[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	char *save = NULL;

	if (hp == NULL || !split_hostport(hp, hosts, sizeof(hosts), port, sizeof(port)))
		return;
	for (char *h = strtok_r(hosts, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
		struct addrinfo *res = NULL;
		const char *node = h;
		int fd, rc;

		while (*node == ' ')
			node++;
		if (strcmp(node, "*") == 0 || *node == '\0')
			node = NULL;
		if (getaddrinfo(node, port, &hints, &res) != 0 || res == NULL) {
			report(diag, "%s: cannot resolve '%s'", key, h);
			continue;
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			int one = 1;

			/* as a server would: TIME_WAIT leftovers are not "in use" */
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			rc = bind(fd, res->ai_addr, res->ai_addrlen);
			if (rc != 0 && errno == EADDRINUSE)
				report(diag, "%s: %s is already in use on this host", key, hp);
			else if (rc != 0 && errno == EADDRNOTAVAIL)
				report(diag, "%s: address %s is not configured on this host", key,
				       h);
			close(fd);
		}
		freeaddrinfo(res);
	}
}

static void check_connect_address(const char *key, const char *hp, report_fn report,
                                  struct pgkeel_diag *diag)
{
	char host[256], port[16];

	if (hp == NULL || !split_hostport(hp, host, sizeof(host), port, sizeof(port)))
		return;
	if (is_loopback(host))
		report(diag,
		       "%s: %s is a loopback address; other members cannot reach it "
		       "(fine for a single-host test cluster)",
		       key, hp);
}

static void check_binaries(const struct pgkeel_config *c, report_fn report,
                           struct pgkeel_diag *diag)
{
	static const char *const tools[] = {"pg_ctl",        "initdb",   "pg_controldata",
	                                    "pg_basebackup", "postgres", "pg_isready",
	                                    "pg_rewind",     NULL};
	json_object *bd = pgkeel_json_path(c->effective, "postgresql.bin_dir");
	const char *bin_dir = bd ? json_object_get_string(bd) : "";

	for (int i = 0; tools[i] != NULL; i++) {
		char *key = pgkeel_asprintf("postgresql.bin_name.%s", tools[i]);
		json_object *alt = pgkeel_json_path(c->effective, key);
		const char *name = alt ? json_object_get_string(alt) : tools[i];
		bool found = false;

		free(key);
		if (bin_dir[0] != '\0') {
			char *p = pgkeel_asprintf("%s/%s", bin_dir, name);

			found = access(p, X_OK) == 0;
			free(p);
		} else {
			const char *path = getenv("PATH");
			char *copy = pgkeel_strdup(path ? path : "/usr/bin:/bin"), *save = NULL;

			for (char *d = strtok_r(copy, ":", &save); d && !found;
			     d = strtok_r(NULL, ":", &save)) {
				char *p = pgkeel_asprintf("%s/%s", d, name);

				found = access(p, X_OK) == 0;
				free(p);
			}
			free(copy);
		}
		if (!found)
			report(diag, "postgresql.bin_dir: %s not found in %s", name,
			       bin_dir[0] ? bin_dir : "PATH");
	}
}

/* A TCP connect with a short timeout: does anything answer there? */
static bool tcp_answers(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	bool ok = false;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return false;
	for (struct addrinfo *ai = res; ai != NULL && !ok; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct pollfd pfd;
		int err = 0;
		socklen_t len = sizeof(err);

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			ok = true;
		} else if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
				ok = true;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

/* Endpoints named by the DCS section: host, hosts (list or comma string), url. */
static void check_dcs_reachable(const struct pgkeel_config *c, report_fn report,
                                struct pgkeel_diag *diag)
{
	json_object *sec = pgkeel_json_path(c->local, c->dcs_type);
	json_object *eps = json_object_new_array();
	bool any = false;
	size_t n;
	static const char *const default_port[][2] = {
	    {"etcd3", "2379"}, {"consul", "8500"}, {"zookeeper", "2181"}, {"kubernetes", "443"}};
	const char *defport = "2379";

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(default_port); i++)
		if (strcmp(default_port[i][0], c->dcs_type) == 0)
			defport = default_port[i][1];
	if (!json_object_is_type(sec, json_type_object)) {
		json_object_put(eps);
		return;
	}
	{
		json_object *h = pgkeel_json_path(sec, "hosts");

		if (json_object_is_type(h, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(h); i++)
				json_object_array_add(
				    eps, json_object_get(json_object_array_get_idx(h, i)));
		} else if (json_object_is_type(h, json_type_string)) {
			char *copy = pgkeel_strdup(json_object_get_string(h)), *save = NULL;

			for (char *t = strtok_r(copy, ",", &save); t;
			     t = strtok_r(NULL, ",", &save))
				json_object_array_add(eps, json_object_new_string(t));
			free(copy);
		}
		if ((h = pgkeel_json_path(sec, "host")) != NULL &&
		    json_object_is_type(h, json_type_string))
			json_object_array_add(eps, json_object_get(h));
		if ((h = pgkeel_json_path(sec, "url")) != NULL &&
		    json_object_is_type(h, json_type_string)) {
			const char *u = json_object_get_string(h), *p = strstr(u, "://");
			char *hp = pgkeel_strdup(p ? p + 3 : u), *slash = strchr(hp, '/');

			if (slash)
				*slash = '\0';
			json_object_array_add(eps, json_object_new_string(hp));
			free(hp);
		}
	}
	n = json_object_array_length(eps);
	for (size_t i = 0; i < n && !any; i++) {
		const char *ep = json_object_get_string(json_object_array_get_idx(eps, i));
		char host[256], port[16];

		while (*ep == ' ' || *ep == '\'')
			ep++;
		if (!split_hostport(ep, host, sizeof(host), port, sizeof(port))) {
			if (!pgkeel_fmt(host, sizeof(host), "%s", ep))
				continue;
			(void)pgkeel_fmt(port, sizeof(port), "%s", defport);
		}
		any = tcp_answers(host, port, 1000);
	}
	if (n > 0 && !any)
		report(diag, "%s: no DCS endpoint answers (%s)", c->dcs_type,
		       json_object_to_json_string_ext(eps, JSON_C_TO_STRING_PLAIN));
	json_object_put(eps);
}

static const char *estr(json_object *root, const char *path)
{
	json_object *o = pgkeel_json_path(root, path);

	return json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

void pgkeel_config_check_environment(const struct pgkeel_config *c, bool strict, bool offline,
                                     struct pgkeel_diag *diag)
{
	report_fn report = strict ? pgkeel_diag_error : pgkeel_diag_warning;
	json_object *e = c->effective;
	struct pgkeel_dcs_module mod;
	char err[512];

	check_listen("restapi.listen", estr(e, "restapi.listen"), report, diag);
	check_listen("postgresql.listen", estr(e, "postgresql.listen"), report, diag);
	check_connect_address("restapi.connect_address", estr(e, "restapi.connect_address"), report,
	                      diag);
	check_connect_address("postgresql.connect_address", estr(e, "postgresql.connect_address"),
	                      report, diag);
	check_binaries(c, report, diag);
	if (c->dcs_type != NULL) {
		if (!pgkeel_dcs_load(pgkeel_dcs_backend_dir(c->backend_dir), c->dcs_type, &mod, err,
		                     sizeof(err)))
			report(diag, "%s", err);
		if (!offline)
			check_dcs_reachable(c, report, diag);
	}
}
