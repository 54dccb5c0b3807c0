/*
 * Who may call the unsafe endpoints: restapi.allowlist and
 * allowlist_include_members as Patroni 3.0.2's RestApiServer builds and
 * checks them (_build_allowlist, __members_ips, check_access), and the PEM
 * files of restapi's TLS options.
 *
 * One deliberate difference: a client reaching a dual-stack listener over
 * IPv4 shows as an IPv4-mapped IPv6 address, which Python's ipaddress never
 * finds in an IPv4 network (so Patroni refuses it); it is matched as the
 * IPv4 address here.
 */
#include "autoconf.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include "cluster.h"
#include "log.h"
#include "rest_internal.h"
#include "util.h"

/* The address of sa as a /32 or /128 network; IPv4-mapped IPv6 as IPv4. */
static bool net_of_addr(const struct sockaddr *sa, struct pgkeel_rest_net *n)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(n, 0, sizeof(*n));
	if (sa->sa_family == AF_INET) {
		n->family = AF_INET;
		memcpy(n->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		n->prefix = 32;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a =
		    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			n->family = AF_INET;
			memcpy(n->addr, a + 12, 4);
			n->prefix = 32;
		} else {
			n->family = AF_INET6;
			memcpy(n->addr, a, 16);
			n->prefix = 128;
		}
		return true;
	}
	return false;
}

static void add_net(struct pgkeel_rest_net **v, size_t *n, const struct pgkeel_rest_net *x)
{
	*v = pgkeel_xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = *x;
}

/* __resolve_ips(host, port): every address of host (numeric or a name). */
static void resolve(const char *host, int port, struct pgkeel_rest_net **v, size_t *n)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_protocol = IPPROTO_TCP},
	                *res = NULL;
	char service[16];
	int rc;

	(void)pgkeel_fmt(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		log_error("Failed to resolve %s: %s", host, gai_strerror(rc));
		return;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct pgkeel_rest_net x;

		if (net_of_addr(ai->ai_addr, &x))
			add_net(v, n, &x);
	}
	freeaddrinfo(res);
}

/* ip_network(text, strict=False) */
static bool parse_network(const char *text, struct pgkeel_rest_net *out)
{
	const char *slash = strchr(text, '/');
	char *addr = pgkeel_dup_bytes(text, (size_t)(slash - text));
	int64_t prefix;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6;
	free(addr);
	ok = out->family != 0 && pgkeel_parse_int64(slash + 1, &prefix) && prefix >= 0 &&
	     prefix <= (out->family == AF_INET ? 32 : 128);
	if (ok)
		out->prefix = (int)prefix;
	return ok;
}

struct pgkeel_rest_net *pgkeel_rest_allowlist_build(const char *const *entries, size_t n,
                                                    size_t *n_out)
{
	struct pgkeel_rest_net *v = NULL;

	*n_out = 0;
	for (size_t i = 0; i < n; i++) {
		if (entries[i] == NULL)
			continue;
		if (strchr(entries[i], '/') != NULL) {
			struct pgkeel_rest_net x;

			if (parse_network(entries[i], &x))
				add_net(&v, n_out, &x);
			else
				log_error("Invalid value \"%s\" in the allowlist", entries[i]);
		} else {
			resolve(entries[i], 8080, &v, n_out);
		}
	}
	return v;
}

static bool in_net(const struct pgkeel_rest_net *net, const struct pgkeel_rest_net *a)
{
	int bits = net->prefix;

	if (net->family != a->family)
		return false;
	for (int i = 0; bits > 0; i++, bits -= 8) {
		unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));

		if ((net->addr[i] & mask) != (a->addr[i] & mask))
			return false;
	}
	return true;
}

bool pgkeel_rest_net_match(const struct pgkeel_rest_net *nets, size_t n, const struct sockaddr *sa)
{
	struct pgkeel_rest_net a;

	if (sa == NULL || !net_of_addr(sa, &a))
		return false;
	for (size_t i = 0; i < n; i++)
		if (in_net(&nets[i], &a))
			return true;
	return false;
}

bool pgkeel_rest_url_host(const char *url, char **host, int *port)
{
	const char *p = url != NULL ? strstr(url, "://") : NULL, *end, *colon;
	bool https = url != NULL && strncasecmp(url, "https://", 8) == 0;
	char *h;

	*host = NULL;
	if (p == NULL)
		return false;
	p += 3;
	end = p + strcspn(p, "/?#");
	{ /* user:password@ */
		const char *at = memchr(p, '@', (size_t)(end - p));

		if (at != NULL)
			p = at + 1;
	}
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			return false;
		h = pgkeel_dup_bytes(p + 1, (size_t)(close - p - 1));
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		h = pgkeel_dup_bytes(p, (size_t)((colon != NULL ? colon : end) - p));
	}
	*port = https ? 443 : 80;
	if (colon != NULL && colon + 1 < end) {
		char *ps = pgkeel_dup_bytes(colon + 1, (size_t)(end - colon - 1));
		int64_t v;

		if (pgkeel_parse_int64(ps, &v) && v >= 0 && v <= 65535)
			*port = (int)v;
		free(ps);
	}
	if (h[0] == '\0') {
		free(h);
		return false;
	}
	for (char *s = h; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	*host = h;
	return true;
}

void pgkeel_rest_member_nets(const struct pgkeel_cluster *c, struct pgkeel_rest_net **v,
                             size_t *n)
{
	*v = NULL;
	*n = 0;
	for (size_t i = 0; c != NULL && i < c->n_members; i++) {
		char *host;
		int port;

		if (!pgkeel_rest_url_host(c->members[i].d.api_url, &host, &port))
			continue;
		resolve(host, port, v, n);
		free(host);
	}
}

bool pgkeel_rest_member_match(const struct pgkeel_cluster *c, const struct sockaddr *sa)
{
	struct pgkeel_rest_net *v;
	size_t n;
	bool found;

	pgkeel_rest_member_nets(c, &v, &n);
	found = pgkeel_rest_net_match(v, n, sa);
	free(v);
	return found;
}

char *pgkeel_rest_read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *buf;
	size_t n;

	if (f == NULL) {
		(void)pgkeel_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) != 0 || sb.st_size > 16 * 1024 * 1024) {
		(void)pgkeel_fmt(err, errlen, "cannot read %s: %s", path,
		                 sb.st_size > 16 * 1024 * 1024 ? "too large" : strerror(errno));
		fclose(f);
		return NULL;
	}
	buf = pgkeel_xcalloc((size_t)sb.st_size + 1, 1);
	n = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}
