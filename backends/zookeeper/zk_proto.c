/*
 * zk_proto: options, paths, versions and return codes (see zk_proto.h).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <zookeeper/zookeeper.h>

#include "zk_proto.h"

const char *const zk_cluster_keys[] = {
    "initialize", "config", "history", "sync", "leader", "status", "failover", "failsafe", NULL,
};

static const char *const known_options[] = {
    "hosts", "use_ssl",      "verify",   "cacert",    "cert",
    "key",   "key_password", "set_acls", "auth_data", NULL,
};

/* Options that only mean something with use_ssl. */
static const char *const tls_options[] = {"verify", "cacert", "cert", "key", "key_password", NULL};

/* Append one host to the connection string; a host without a port gets 2181. */
static bool hosts_add(char **hosts, const char *h, struct pgkeel_err *err)
{
	size_t n = strlen(h);
	const char *colon, *bracket;
	bool port;
	char *out = NULL;

	while (n > 0 && (h[0] == ' ' || h[0] == '\t')) {
		h++;
		n--;
	}
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "zookeeper.hosts: an empty host name");
		return false;
	}
	/* host:port, [v6]:port; a /chroot may follow the last one */
	colon = memrchr(h, ':', n);
	bracket = memrchr(h, ']', n);
	port = colon != NULL && (bracket == NULL || colon > bracket);
	if (!port) {
		const char *slash = memchr(h, '/', n);
		size_t hn = slash != NULL ? (size_t)(slash - h) : n;

		if (asprintf(&out, "%s%s%.*s:2181%.*s", *hosts ? *hosts : "", *hosts ? "," : "",
		             (int)hn, h, (int)(n - hn), h + hn) < 0)
			abort();
	} else if (asprintf(&out, "%s%s%.*s", *hosts ? *hosts : "", *hosts ? "," : "", (int)n, h) <
	           0) {
		abort();
	}
	free(*hosts);
	*hosts = out;
	return true;
}

static bool parse_hosts(struct zk_options *o, json_object *v, struct pgkeel_err *err)
{
	if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (!json_object_is_type(e, json_type_string)) {
				dcsc_set_err(err, PGKEEL_DCS_D_NONE,
				             "zookeeper.hosts[%zu]: expected a host:port string",
				             i);
				return false;
			}
			if (!hosts_add(&o->hosts, json_object_get_string(e), err))
				return false;
		}
	} else if (json_object_is_type(v, json_type_string)) {
		char *copy = dcsc_strdup(json_object_get_string(v));
		char *save = NULL;
		bool ok = true;

		for (char *t = strtok_r(copy, ",", &save); ok && t; t = strtok_r(NULL, ",", &save))
			ok = hosts_add(&o->hosts, t, err);
		free(copy);
		if (!ok)
			return false;
	} else if (v != NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "zookeeper.hosts: expected a list or a comma-separated string");
		return false;
	}
	return true;
}

static bool parse_auth(struct zk_options *o, json_object *v, struct pgkeel_err *err)
{
	if (v == NULL)
		return true;
	if (!json_object_is_type(v, json_type_object)) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "zookeeper.auth_data: expected a mapping of scheme to credential");
		return false;
	}
	json_object_object_foreach(v, scheme, cred)
	{
		struct zk_auth *a;

		if (!json_object_is_type(cred, json_type_string) || scheme[0] == '\0') {
			dcsc_set_err(err, PGKEEL_DCS_D_NONE,
			             "zookeeper.auth_data.%s: expected a credential string",
			             scheme);
			return false;
		}
		a = realloc(o->auth, (o->n_auth + 1) * sizeof(*a));
		if (a == NULL)
			abort();
		o->auth = a;
		a[o->n_auth].scheme = dcsc_strdup(scheme);
		a[o->n_auth].credential = dcsc_strdup(json_object_get_string(cred));
		o->n_auth++;
	}
	return true;
}

bool zk_options_parse(struct zk_options *o, const struct pgkeel_host *host, const char *json,
                      struct pgkeel_err *err)
{
	json_object *root = json_tokener_parse(json != NULL ? json : "{}");
	json_object *v = NULL;
	bool ok = false;

	memset(o, 0, sizeof(*o));
	if (!json_object_is_type(root, json_type_object)) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "zookeeper: the section must be a mapping");
		goto out;
	}
	json_object_object_foreach(root, k, val)
	{
		bool known = false;

		(void)val;
		for (int i = 0; known_options[i] != NULL; i++)
			known |= strcmp(known_options[i], k) == 0;
		if (!known && host != NULL)
			host->log(host->ctx, PGKEEL_LOG_WARNING,
			          "zookeeper: ignoring unknown option '%s'", k);
	}
	if (json_object_object_get_ex(root, "use_ssl", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_boolean)) {
			dcsc_set_err(err, PGKEEL_DCS_D_NONE,
			             "zookeeper.use_ssl: expected true or false");
			goto out;
		}
		o->use_ssl = json_object_get_boolean(v);
	}
	if (o->use_ssl) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "zookeeper.use_ssl: the ZooKeeper C client this backend is built "
		             "with has no TLS support; reach the ensemble over plain TCP (or a "
		             "local TLS tunnel)");
		goto out;
	}
	for (int i = 0; tls_options[i] != NULL; i++) {
		if (json_object_object_get_ex(root, tls_options[i], NULL) && host != NULL)
			host->log(host->ctx, PGKEEL_LOG_WARNING,
			          "zookeeper.%s is ignored: use_ssl is off", tls_options[i]);
	}
	if (json_object_object_get_ex(root, "set_acls", &v) && v != NULL) {
		dcsc_set_err(
		    err, PGKEEL_DCS_D_NONE,
		    "zookeeper.set_acls: Patroni's ACLs are x509 principals, which need "
		    "a TLS client certificate (use_ssl); this backend's ZooKeeper C client "
		    "has no TLS, so the nodes would lock it out");
		goto out;
	}
	v = NULL;
	(void)json_object_object_get_ex(root, "hosts", &v);
	if (!parse_hosts(o, v, err))
		goto out;
	if (o->hosts == NULL)
		o->hosts = dcsc_strdup("127.0.0.1:2181"); /* kazoo's default */
	v = NULL;
	(void)json_object_object_get_ex(root, "auth_data", &v);
	if (!parse_auth(o, v, err))
		goto out;
	ok = true;
out:
	json_object_put(root);
	return ok;
}

void zk_options_free(struct zk_options *o)
{
	if (o == NULL)
		return;
	free(o->hosts);
	for (size_t i = 0; i < o->n_auth; i++) {
		free(o->auth[i].scheme);
		if (o->auth[i].credential != NULL)
			explicit_bzero(o->auth[i].credential, strlen(o->auth[i].credential));
		free(o->auth[i].credential);
	}
	free(o->auth);
	memset(o, 0, sizeof(*o));
}

char *zk_base_path(const char *namespace_, const char *scope)
{
	const char *ns = namespace_ != NULL ? namespace_ : "";
	size_t nl = strlen(ns);
	char *out = NULL;

	if (scope == NULL || scope[0] == '\0' || strchr(scope, '/') != NULL)
		return NULL;
	while (nl > 0 && ns[0] == '/') {
		ns++;
		nl--;
	}
	while (nl > 0 && ns[nl - 1] == '/')
		nl--;
	if (asprintf(&out, "/%.*s%s%s", (int)nl, ns, nl > 0 ? "/" : "", scope) < 0)
		abort();
	/* "a//b" inside the namespace: collapse (ZooKeeper refuses empty path elements) */
	for (char *p = out; *p != '\0'; p++) {
		while (p[0] == '/' && p[1] == '/')
			memmove(p, p + 1, strlen(p + 1) + 1);
	}
	return out;
}

char *zk_path(const char *base, const char *rel)
{
	char *out = NULL;

	if (asprintf(&out, "%s/%s", base, rel) < 0)
		abort();
	return out;
}

bool zk_parse_version(const char *s, int32_t *out)
{
	char *end;
	long long x;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	x = strtoll(s, &end, 10);
	if (*end != '\0' || x < 0 || x > INT32_MAX)
		return false;
	*out = (int32_t)x;
	return true;
}

void zk_fmt_i64(char *buf, size_t len, int64_t v)
{
	(void)snprintf(buf, len, "%" PRId64, v);
}

enum zk_rc_class zk_rc_classify(int rc)
{
	switch (rc) {
	case ZOK:
		return ZK_RC_OK;
	case ZCONNECTIONLOSS:
	case ZOPERATIONTIMEOUT:
	case ZTHROTTLEDOP:
		return ZK_RC_TRANSIENT;
	case ZSESSIONEXPIRED:
	case ZINVALIDSTATE:
	case ZCLOSING:
	case ZSESSIONMOVED:
		return ZK_RC_SESSION;
	case ZNOAUTH:
	case ZAUTHFAILED:
	case ZSESSIONCLOSEDREQUIRESASLAUTH:
		return ZK_RC_AUTH;
	case ZNONODE:
	case ZNODEEXISTS:
	case ZBADVERSION:
	case ZNOTEMPTY:
		return ZK_RC_ANSWER;
	case ZBADARGUMENTS:
	case ZINVALIDACL:
	case ZNOCHILDRENFOREPHEMERALS:
		return ZK_RC_INVALID;
	default:
		return ZK_RC_OTHER;
	}
}

enum pgkeel_dcs_status zk_rc_status(int rc, int *detail)
{
	int d = PGKEEL_DCS_D_SERVER;
	enum pgkeel_dcs_status st = PGKEEL_DCS_UNAVAILABLE;

	switch (zk_rc_classify(rc)) {
	case ZK_RC_OK:
		st = PGKEEL_DCS_OK;
		d = PGKEEL_DCS_D_NONE;
		break;
	case ZK_RC_TRANSIENT:
		d = rc == ZOPERATIONTIMEOUT ? PGKEEL_DCS_D_TIMEOUT : PGKEEL_DCS_D_CONNECT;
		break;
	case ZK_RC_SESSION:
		d = PGKEEL_DCS_D_SESSION_LOST;
		break;
	case ZK_RC_AUTH:
		d = PGKEEL_DCS_D_AUTH;
		break;
	case ZK_RC_ANSWER:
		st = PGKEEL_DCS_CONFLICT;
		d = rc == ZNONODE       ? PGKEEL_DCS_D_NOT_FOUND
		    : rc == ZNODEEXISTS ? PGKEEL_DCS_D_EXISTS
		                        : PGKEEL_DCS_D_VERSION;
		break;
	case ZK_RC_INVALID:
		st = PGKEEL_DCS_INVALID;
		d = PGKEEL_DCS_D_NONE;
		break;
	case ZK_RC_OTHER:
		break;
	}
	if (detail != NULL)
		*detail = d;
	return st;
}
