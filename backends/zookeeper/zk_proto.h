/*
 * zk_proto: the ZooKeeper backend's pure parts, testable without a server
 * (tests/unit/test_zk_proto.c): the `zookeeper:` options, the znode paths,
 * version tokens and the mapping of ZooKeeper's return codes onto the DCS
 * statuses.
 *
 * Options are Patroni's `zookeeper:` section (spec/patroni-dcs-and-ha.md
 * §4.3): `hosts` (a list or a comma-separated string of host:port, a missing
 * port is 2181 as in kazoo, an optional /chroot suffix passes through),
 * `use_ssl`, `verify`, `cacert`, `cert`, `key`, `key_password`, `set_acls`
 * and `auth_data` (Patroni 3.3).  Debian's ZooKeeper C client is built
 * without TLS, so `use_ssl: true` is refused with a message that says so,
 * and so is `set_acls` (Patroni writes x509 ACLs, which only a TLS client
 * certificate can satisfy: the nodes would lock this client out).  The
 * certificate options without `use_ssl` are accepted and ignored with a
 * warning, as kazoo ignores them.
 */
#ifndef PGKEEL_ZK_PROTO_H
#define PGKEEL_ZK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/dcs.h>

#include "../common/dcs_common.h"

/* One scheme/credential pair of auth_data, added to every session. */
struct zk_auth {
	char *scheme;
	char *credential;
};

struct zk_options {
	char *hosts; /* the C client's connection string: "h1:2181,h2:2181[/chroot]" */
	bool use_ssl;
	struct zk_auth *auth;
	size_t n_auth;
};

/*
 * Parse the options (JSON text of the section; NULL = {}).  Unknown keys and
 * ignored certificate options are reported through host->log; false with
 * `err` set on invalid options (the caller then frees `o`).
 */
bool zk_options_parse(struct zk_options *o, const struct pgkeel_host *host, const char *json,
                      struct pgkeel_err *err);
void zk_options_free(struct zk_options *o);

/*
 * Patroni's base path: "/" + namespace stripped of slashes + "/" + scope,
 * with no doubled or trailing slash ("/service/" + "batman" ->
 * "/service/batman").  NULL when the scope is empty or contains a '/'.
 */
char *zk_base_path(const char *namespace_, const char *scope);

/* "<base>/<rel>" (malloc'd; aborts on OOM as the other backends do). */
char *zk_path(const char *base, const char *rel);

/* A dataVersion token: a decimal int32 >= 0.  False when it is not one. */
bool zk_parse_version(const char *s, int32_t *out);

/* Decimal text of a session id / zxid / version. */
void zk_fmt_i64(char *buf, size_t len, int64_t v);

/* Return-code classes. */
enum zk_rc_class {
	ZK_RC_OK,
	ZK_RC_TRANSIENT, /* connection loss, operation timeout: retry on the session */
	ZK_RC_SESSION,   /* the session is gone (expired, closing, invalid state) */
	ZK_RC_AUTH,      /* no auth / auth failed */
	ZK_RC_ANSWER,    /* the store said no: no node, exists, bad version, not empty */
	ZK_RC_INVALID,   /* the request itself is wrong (bad arguments, ACL) */
	ZK_RC_OTHER,     /* anything else: the store is not usable */
};
enum zk_rc_class zk_rc_classify(int rc);

/*
 * The status and detail of an rc that a caller did not handle itself:
 * ANSWER -> CONFLICT, INVALID -> INVALID, the rest -> UNAVAILABLE.
 */
enum pgkeel_dcs_status zk_rc_status(int rc, int *detail);

/* The keys load_cluster reads under the base path (besides members/ and optime/). */
extern const char *const zk_cluster_keys[];

#endif
