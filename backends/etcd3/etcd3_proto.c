/*
 * etcd3_proto: request bodies, response parsing and failure classification
 * for etcd's v3 JSON gateway (grpc-gateway).  No I/O; see etcd3_proto.h.
 *
 * Written against etcd 3.4 as recorded in tests/data/etcd3/ (README.md there
 * says how).  Facts the code relies on, all visible in those recordings:
 *   - int64 fields are decimal strings, int32 fields (error codes) numbers;
 *     zero, false and empty fields are left out ("succeeded" of a failed
 *     txn, "TTL" of a keepalive for a lease that is gone).
 *   - A unary error is HTTP >= 400 with {"error":msg,"message":msg,"code":n};
 *     an error of a streaming RPC (watch, lease keepalive) is
 *     {"error":{"grpc_code":n,"http_code":n,"message":msg,"http_status":s}},
 *     with the HTTP status as its own when nothing was streamed before it,
 *     and inside a 200 stream otherwise.
 *   - Stream messages are JSON objects followed by "\n", except a final
 *     {"error":...}, which has no newline.
 *
 * Nothing here depends on the core library: this file is linked into the
 * backend shared object, which must not abort the host on out of memory, so
 * every allocation failure is returned (NULL / false) instead.
 */
#include "autoconf.h"

#include "etcd3_proto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

/* json_tokener_get_parse_end() and JSON_TOKENER_ALLOW_TRAILING_CHARS */
#if !defined(JSON_C_VERSION_NUM) || JSON_C_VERSION_NUM < ((0 << 16) | (15 << 8))
#error "the etcd3 backend needs json-c 0.15 or later"
#endif

/* A watch message larger than this is refused (etcd's default request limit is 1.5 MiB). */
#define E3_WATCH_MAX_MSG (64u * 1024u * 1024u)

/* ------------------------------------------------------------------------ */
/* small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

/* Write a diagnostic; a message too long for err is cut and ends in "...". */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
	else if ((size_t)n >= errlen && errlen > 4)
		memcpy(err + errlen - 4, "...", 4);
}

static char *dup_bytes(const char *p, size_t len)
{
	char *d;

	if (len == SIZE_MAX)
		return NULL;
	d = malloc(len + 1);
	if (d == NULL)
		return NULL;
	if (len > 0)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

static bool is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A new tokener as we use it everywhere: strict JSON, more input may follow. */
static struct json_tokener *new_tokener(void)
{
	struct json_tokener *tok = json_tokener_new();

	if (tok != NULL)
		json_tokener_set_flags(tok,
		                       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	return tok;
}

/*
 * Parse a whole response body: exactly one JSON value, optionally followed
 * by whitespace (the keepalive answer ends in "\n").  NUL bytes are refused.
 */
static bool parse_body(const char *body, size_t len, struct json_object **out, char *err,
                       size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	*out = NULL;
	if (body == NULL || len == 0) {
		set_err(err, errlen, "empty response body");
		return false;
	}
	if (len > INT_MAX) {
		set_err(err, errlen, "response body too large (%zu bytes)", len);
		return false;
	}
	if (memchr(body, '\0', len) != NULL) {
		set_err(err, errlen, "response body contains a NUL byte");
		return false;
	}
	tok = new_tokener();
	if (tok == NULL) {
		set_err(err, errlen, "out of memory");
		return false;
	}
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (obj == NULL) {
		/* "null" parses to NULL with success: not a response either */
		set_err(err, errlen, "response is not JSON: %s",
		        jerr == json_tokener_continue ? "truncated"
		        : jerr == json_tokener_success ? "null"
		                                       : json_tokener_error_desc(jerr));
		return false;
	}
	for (; end < len; end++) {
		if (!is_json_ws(body[end])) {
			json_object_put(obj);
			set_err(err, errlen, "response has data after the JSON value");
			return false;
		}
	}
	*out = obj;
	return true;
}

/* Parse a body that must be a JSON object. */
static bool parse_object(const char *body, size_t len, struct json_object **out, char *err,
                         size_t errlen)
{
	if (!parse_body(body, len, out, err, errlen))
		return false;
	if (!json_object_is_type(*out, json_type_object)) {
		set_err(err, errlen, "response is not a JSON object");
		json_object_put(*out);
		*out = NULL;
		return false;
	}
	return true;
}

static struct json_object *member(struct json_object *o, const char *name)
{
	struct json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, name, &v))
		return NULL;
	return v; /* JSON null reads as absent, like the gateway's omitted fields */
}

/* A decimal int64 as the gateway writes it: optional '-', digits, nothing else. */
static bool parse_i64_text(const char *s, size_t len, int64_t *out)
{
	char *end;
	long long v;
	size_t i = 0;

	if (len == 0 || len > 20 || strlen(s) != len)
		return false;
	if (s[0] == '-')
		i = 1;
	if (i == len)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	errno = 0;
	v = strtoll(s, &end, 10); /* long long is 64 bits wherever json-c builds */
	if (errno != 0 || end != s + len)
		return false;
	*out = (int64_t)v;
	return true;
}

/*
 * The member `name` of o, which must have type t (`what` names it in the
 * error): *out = it, or NULL when absent -- an error when required.
 */
static bool get_typed(struct json_object *o, const char *name, bool required, enum json_type t,
                      const char *what, struct json_object **out, char *err, size_t errlen)
{
	struct json_object *v = member(o, name);

	*out = NULL;
	if (v == NULL) {
		if (required)
			set_err(err, errlen, "missing \"%s\"", name);
		return !required;
	}
	if (!json_object_is_type(v, t)) {
		set_err(err, errlen, "\"%s\" is not %s", name, what);
		return false;
	}
	*out = v;
	return true;
}

/* An int64 field (a decimal string); absent = 0 unless required. */
static bool get_i64(struct json_object *o, const char *name, bool required, int64_t *out, char *err,
                    size_t errlen)
{
	struct json_object *v;

	*out = 0;
	if (!get_typed(o, name, required, json_type_string, "an int64 string", &v, err, errlen))
		return false;
	if (v != NULL && !parse_i64_text(json_object_get_string(v),
	                                 (size_t)json_object_get_string_len(v), out)) {
		set_err(err, errlen, "\"%s\" is not an int64 string", name);
		return false;
	}
	return true;
}

/* A bool field; absent = false. */
static bool get_bool(struct json_object *o, const char *name, bool *out, char *err, size_t errlen)
{
	struct json_object *v;

	*out = false;
	if (!get_typed(o, name, false, json_type_boolean, "a boolean", &v, err, errlen))
		return false;
	*out = v != NULL && json_object_get_boolean(v) != 0;
	return true;
}

/* A string field, borrowed from o; absent = NULL unless required. */
static bool get_string(struct json_object *o, const char *name, bool required, const char **out,
                       char *err, size_t errlen)
{
	struct json_object *v;

	*out = NULL;
	if (!get_typed(o, name, required, json_type_string, "a string", &v, err, errlen))
		return false;
	if (v != NULL)
		*out = json_object_get_string(v);
	return true;
}

/* A base64 bytes field, decoded into a malloc'd copy; absent = "" unless required. */
static bool get_b64(struct json_object *o, const char *name, bool required, char **out,
                    size_t *outlen, char *err, size_t errlen)
{
	struct json_object *v;

	*out = NULL;
	*outlen = 0;
	if (!get_typed(o, name, required, json_type_string, "a string", &v, err, errlen))
		return false;
	if (v == NULL) {
		*out = dup_bytes("", 0);
		if (*out == NULL) {
			set_err(err, errlen, "out of memory");
			return false;
		}
		return true;
	}
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v) ||
	    !e3_b64_decode(json_object_get_string(v), out, outlen)) {
		set_err(err, errlen, "\"%s\" is not valid base64", name);
		return false;
	}
	return true;
}

/* A member that, when present, must be an object (absent = NULL). */
static bool get_object(struct json_object *o, const char *name, bool required,
                       struct json_object **out, char *err, size_t errlen)
{
	return get_typed(o, name, required, json_type_object, "an object", out, err, errlen);
}

static bool get_array(struct json_object *o, const char *name, struct json_object **out,
                      char *err, size_t errlen)
{
	return get_typed(o, name, false, json_type_array, "an array", out, err, errlen);
}

/* header.revision of a unary response: both required. */
static bool get_header_revision(struct json_object *root, int64_t *revision, char *err,
                                size_t errlen)
{
	struct json_object *header;
	int64_t rev;

	if (!get_object(root, "header", true, &header, err, errlen))
		return false;
	if (!get_i64(header, "revision", true, &rev, err, errlen))
		return false;
	if (rev <= 0) {
		set_err(err, errlen, "header.revision %lld is not positive", (long long)rev);
		return false;
	}
	if (revision != NULL)
		*revision = rev;
	return true;
}

/* ------------------------------------------------------------------------ */
/* encoding helpers */

char *e3_b64_encode(const char *data, size_t len)
{
	char *out;
	int n;

	if (data == NULL && len > 0)
		return NULL;
	/* EVP_EncodeBlock takes an int and writes 4 * ceil(len / 3) bytes + NUL */
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	if (len == 0) {
		out[0] = '\0';
		return out;
	}
	n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
	if (n < 0 || (size_t)n != (len + 2) / 3 * 4) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Strict standard base64 with padding, as the gateway writes it.
 * EVP_DecodeBlock would skip surrounding whitespace and returns the length
 * *including* the zero bytes that '=' padding stands for; we check the
 * input ourselves and subtract the padding.
 */
bool e3_b64_decode(const char *b64, char **out, size_t *outlen)
{
	size_t len, pad = 0, i, cap;
	unsigned char *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	if (b64 == NULL)
		return false;
	len = strlen(b64);
	if (len % 4 != 0 || len > INT_MAX)
		return false;
	if (len > 0 && b64[len - 1] == '=')
		pad++;
	if (len > 1 && b64[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++) {
		if (!is_b64_char(b64[i]))
			return false;
	}
	cap = len / 4 * 3;
	buf = malloc(cap + 1);
	if (buf == NULL)
		return false;
	if (len > 0) {
		n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
		if (n < 0 || (size_t)n != cap) {
			free(buf);
			return false;
		}
	}
	buf[cap - pad] = '\0';
	*out = (char *)buf;
	*outlen = cap - pad;
	return true;
}

/*
 * etcd's GetPrefixRangeEnd: drop the trailing 0xff bytes, increment the last
 * byte left.  An empty or all-0xff prefix has no such end (etcd would use
 * "\0", "every key from here", which a C string cannot carry): NULL.
 */
char *e3_prefix_end(const char *prefix)
{
	size_t len;
	char *end;

	if (prefix == NULL)
		return NULL;
	len = strlen(prefix);
	while (len > 0 && (unsigned char)prefix[len - 1] == 0xff)
		len--;
	if (len == 0)
		return NULL;
	end = dup_bytes(prefix, len);
	if (end == NULL)
		return NULL;
	end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
	return end;
}

/* ------------------------------------------------------------------------ */
/* requests */

/* Add v under k; takes v over, also when it fails. */
static bool add(struct json_object *o, const char *k, struct json_object *v)
{
	if (o == NULL || v == NULL) {
		json_object_put(v);
		return false;
	}
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static struct json_object *new_b64(const char *data, size_t len)
{
	char *s = e3_b64_encode(data, len);
	struct json_object *v;

	if (s == NULL)
		return NULL;
	v = json_object_new_string(s);
	free(s);
	return v;
}

static struct json_object *new_i64(int64_t n)
{
	char buf[24];
	int w = snprintf(buf, sizeof(buf), "%lld", (long long)n);

	if (w < 0 || (size_t)w >= sizeof(buf))
		return NULL;
	return json_object_new_string(buf);
}

/* [v]; takes v over */
static struct json_object *array_of(struct json_object *v)
{
	struct json_object *a;

	if (v == NULL)
		return NULL;
	a = json_object_new_array();
	if (a == NULL || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		json_object_put(a);
		return NULL;
	}
	return a;
}

/* Render and release o; NULL if o is NULL or on out of memory. */
static char *finish(struct json_object *o)
{
	const char *s;
	char *copy = NULL;

	if (o == NULL)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                          JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL)
		copy = dup_bytes(s, strlen(s));
	json_object_put(o);
	return copy;
}

/* {"key":b64[,"range_end":b64]} plus nothing else */
static struct json_object *key_range(const char *key, const char *range_end)
{
	struct json_object *o;

	if (key == NULL)
		return NULL;
	o = json_object_new_object();
	if (!add(o, "key", new_b64(key, strlen(key))) ||
	    (range_end != NULL && !add(o, "range_end", new_b64(range_end, strlen(range_end))))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *put_body(const char *key, const char *value, size_t vlen,
                                    int64_t lease)
{
	struct json_object *o = key_range(key, NULL);

	if (o == NULL || (value == NULL && vlen > 0) || lease < 0) {
		json_object_put(o);
		return NULL;
	}
	if (!add(o, "value", new_b64(value != NULL ? value : "", vlen)) ||
	    (lease != 0 && !add(o, "lease", new_i64(lease)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* {"<name>": body}; takes body over */
static struct json_object *wrap(const char *name, struct json_object *body)
{
	struct json_object *o;

	if (body == NULL)
		return NULL;
	o = json_object_new_object();
	if (!add(o, name, body)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *op_put(const char *key, const char *value, size_t vlen, int64_t lease)
{
	return wrap("request_put", put_body(key, value, vlen, lease));
}

static struct json_object *op_delete(const char *key)
{
	return wrap("request_delete_range", key_range(key, NULL));
}

/* {"key":b64,"target":target,"<field>":v}, one compare of a txn; takes v over (NULL: none). */
static struct json_object *compare(const char *key, const char *target, const char *field,
                                   struct json_object *v)
{
	struct json_object *o = key_range(key, NULL);

	if (v == NULL || !add(o, "target", json_object_new_string(target))) {
		json_object_put(v);
		json_object_put(o);
		return NULL;
	}
	if (!add(o, field, v)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* target CREATE: create_revision == 0, i.e. the key does not exist */
static struct json_object *cmp_create(const char *key)
{
	return compare(key, "CREATE", "create_revision", new_i64(0));
}

static struct json_object *cmp_mod(const char *key, int64_t mod_revision)
{
	return compare(key, "MOD", "mod_revision",
	               mod_revision >= 0 ? new_i64(mod_revision) : NULL);
}

static struct json_object *cmp_value(const char *key, const char *value)
{
	return compare(key, "VALUE", "value", value != NULL ? new_b64(value, strlen(value)) : NULL);
}

/* {"compare":[cmp],"success":[success][,"failure":[failure]]}; takes all three over */
static struct json_object *txn_object(struct json_object *cmp, struct json_object *success,
                                      struct json_object *failure, bool has_failure)
{
	struct json_object *o;

	if (cmp == NULL || success == NULL || (has_failure && failure == NULL)) {
		json_object_put(cmp);
		json_object_put(success);
		json_object_put(failure);
		return NULL;
	}
	o = json_object_new_object();
	if (!add(o, "compare", array_of(cmp))) {
		json_object_put(success);
		json_object_put(failure);
		json_object_put(o);
		return NULL;
	}
	if (!add(o, "success", array_of(success))) {
		json_object_put(failure);
		json_object_put(o);
		return NULL;
	}
	if (has_failure && !add(o, "failure", array_of(failure))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *e3_req_range(const char *key, const char *range_end, bool serializable)
{
	struct json_object *o = key_range(key, range_end);

	if (serializable && !add(o, "serializable", json_object_new_boolean(1))) {
		json_object_put(o);
		return NULL;
	}
	return finish(o);
}

char *e3_req_put(const char *key, const char *value, size_t vlen, int64_t lease)
{
	return finish(put_body(key, value, vlen, lease));
}

char *e3_req_deleterange(const char *key, const char *range_end)
{
	return finish(key_range(key, range_end));
}

char *e3_req_txn_create(const char *key, const char *value, size_t vlen, int64_t lease)
{
	return finish(txn_object(cmp_create(key), op_put(key, value, vlen, lease), NULL, false));
}

char *e3_req_txn_mod_put(const char *key, const char *value, size_t vlen, int64_t mod_revision)
{
	return finish(
	        txn_object(cmp_mod(key, mod_revision), op_put(key, value, vlen, 0), NULL, false));
}

char *e3_req_txn_mod_delete(const char *key, int64_t mod_revision)
{
	return finish(txn_object(cmp_mod(key, mod_revision), op_delete(key), NULL, false));
}

char *e3_req_txn_value_delete(const char *key, const char *value)
{
	return finish(txn_object(cmp_value(key, value), op_delete(key), NULL, false));
}

char *e3_req_txn_leader_rebind(const char *key, const char *name, int64_t lease)
{
	struct json_object *inner;
	size_t nlen;

	if (key == NULL || name == NULL)
		return NULL;
	nlen = strlen(name);
	inner = txn_object(cmp_create(key), op_put(key, name, nlen, lease), NULL, false);
	return finish(txn_object(cmp_value(key, name), op_put(key, name, nlen, lease),
	                         wrap("request_txn", inner), true));
}

/* {"<field>":"<n>"} */
static char *one_i64(const char *field, int64_t n)
{
	struct json_object *o = json_object_new_object();

	if (!add(o, field, new_i64(n))) {
		json_object_put(o);
		return NULL;
	}
	return finish(o);
}

char *e3_req_lease_grant(int64_t ttl)
{
	if (ttl <= 0)
		return NULL;
	return one_i64("TTL", ttl);
}

char *e3_req_lease_keepalive(int64_t id)
{
	if (id <= 0)
		return NULL;
	return one_i64("ID", id);
}

char *e3_req_lease_revoke(int64_t id)
{
	if (id <= 0)
		return NULL;
	return one_i64("ID", id);
}

char *e3_req_watch_create(const char *key, const char *range_end, int64_t start_revision)
{
	struct json_object *o = key_range(key, range_end);

	if (start_revision < 0 ||
	    (start_revision > 0 && !add(o, "start_revision", new_i64(start_revision)))) {
		json_object_put(o);
		return NULL;
	}
	return finish(wrap("create_request", o));
}

char *e3_req_auth(const char *user, const char *password)
{
	struct json_object *o;

	if (user == NULL || password == NULL)
		return NULL;
	o = json_object_new_object();
	if (!add(o, "name", json_object_new_string(user)) ||
	    !add(o, "password", json_object_new_string(password))) {
		json_object_put(o);
		return NULL;
	}
	return finish(o);
}

/* ------------------------------------------------------------------------ */
/* classification */

/* gRPC status codes */
enum {
	GRPC_CANCELED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/* Transport failures worth a name in the log (CURLcode values). */
static const struct {
	int code;
	const char *text;
} curl_texts[] = {
	{ 1, "unsupported protocol" },
	{ 3, "malformed URL" },
	{ 5, "could not resolve proxy" },
	{ 6, "could not resolve host" },
	{ 7, "could not connect" },
	{ 27, "out of memory" },
	{ 28, "timed out" },
	{ 35, "TLS handshake failed" },
	{ 47, "too many redirects" },
	{ 52, "empty reply from server" },
	{ 55, "send error" },
	{ 56, "receive error" },
	{ 58, "bad client certificate" },
	{ 60, "server certificate not trusted" },
	{ 77, "cannot read CA certificates" },
};

static const char *curl_code_text(int code)
{
	size_t i;

	for (i = 0; i < sizeof(curl_texts) / sizeof(*curl_texts); i++) {
		if (curl_texts[i].code == code)
			return curl_texts[i].text;
	}
	return "transfer failed";
}

/* Messages (etcd's rpctypes error strings) that mean: ask another member, or later. */
static const char *const transient_msgs[] = {
	"etcdserver: no leader",
	"etcdserver: leader changed",
	"etcdserver: request timed out", /* also "..., possibly due to ..." */
	"etcdserver: not leader",
	"etcdserver: server stopped",
	"etcdserver: unhealthy cluster",
	"etcdserver: not enough started members",
	"etcdserver: too many requests",
	"etcdserver: mvcc: database space exceeded",
	"not a primary lessor",
	"context deadline exceeded",
	"transport is closing",
};

/* Messages that call for a new token. */
static const char *const reauth_msgs[] = {
	"etcdserver: invalid auth token",
	"etcdserver: user name is empty",
	"etcdserver: revision of auth store is old",
};

static bool contains_any(const char *msg, const char *const *list, size_t n)
{
	size_t i;

	if (msg == NULL)
		return false;
	for (i = 0; i < n; i++) {
		if (strstr(msg, list[i]) != NULL)
			return true;
	}
	return false;
}

static bool contains(const char *msg, const char *what)
{
	return msg != NULL && strstr(msg, what) != NULL;
}

/*
 * r->msg = "etcd <endpoint>: <what>[: <server text>]", one line: control
 * characters of the server text become spaces, a cut line ends in "...".
 */
static void result_msg(struct e3_result *r, const char *endpoint, const char *what,
                       const char *text, size_t textlen)
{
	char clean[160];
	size_t i, n = 0;
	int w;

	if (text != NULL) {
		for (i = 0; i < textlen && n < sizeof(clean) - 4; i++) {
			unsigned char c = (unsigned char)text[i];

			clean[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
		}
		if (i < textlen) {
			memcpy(clean + n, "...", 3);
			n += 3;
		}
	}
	clean[n] = '\0';
	w = snprintf(r->msg, sizeof(r->msg), "etcd %s: %s%s%s", endpoint ? endpoint : "(unknown)",
	             what, text != NULL ? ": " : "", clean);
	if (w < 0)
		r->msg[0] = '\0';
	else if ((size_t)w >= sizeof(r->msg))
		memcpy(r->msg + sizeof(r->msg) - 4, "...", 4);
}

static void set_result(struct e3_result *r, enum pgkeel_dcs_status status, int detail,
                       bool next_endpoint)
{
	r->status = status;
	r->detail = detail;
	r->next_endpoint = next_endpoint;
}

/*
 * The error fields of a response body: the unary form {"error":msg,
 * "message":msg,"code":n} or the stream form {"error":{"grpc_code":n,
 * "http_code":n,"message":msg}}.  False if obj carries no error.
 */
static bool error_fields(struct json_object *obj, const char **msg, int *grpc_code,
                         long *http_code)
{
	struct json_object *e = member(obj, "error"), *v;

	*msg = NULL;
	*grpc_code = -1;
	*http_code = 0;
	if (e == NULL)
		return false;
	if (json_object_is_type(e, json_type_object)) {
		v = member(e, "message");
		if (v != NULL && json_object_is_type(v, json_type_string))
			*msg = json_object_get_string(v);
		v = member(e, "grpc_code");
		if (v != NULL && json_object_is_type(v, json_type_int))
			*grpc_code = json_object_get_int(v);
		v = member(e, "http_code");
		if (v != NULL && json_object_is_type(v, json_type_int))
			*http_code = json_object_get_int(v);
		return true;
	}
	if (json_object_is_type(e, json_type_string)) {
		*msg = json_object_get_string(e);
		/* a LeaseGrantResponse has a (never set) "error" string of its own */
		if ((*msg)[0] == '\0')
			*msg = NULL;
	}
	v = member(obj, "message");
	if (*msg == NULL && v != NULL && json_object_is_type(v, json_type_string))
		*msg = json_object_get_string(v);
	v = member(obj, "code");
	if (v != NULL && json_object_is_type(v, json_type_int))
		*grpc_code = json_object_get_int(v);
	return *msg != NULL || *grpc_code >= 0;
}

/*
 * An error with its message, gRPC code (-1 unknown) and HTTP status.
 * from_etcd: the body was an etcd error object; an answer that was not is
 * from something else (a proxy, a wrong port) and never INVALID.
 */
static void classify_error(struct e3_result *r, const char *msg, int code, long http,
                           bool from_etcd)
{
	if (contains(msg, "authentication is not enabled")) {
		set_result(r, PGKEEL_DCS_INVALID, PGKEEL_DCS_D_AUTH, false);
		r->auth_disabled = true;
	} else if (contains_any(msg, reauth_msgs, sizeof(reauth_msgs) / sizeof(*reauth_msgs)) ||
	           code == GRPC_UNAUTHENTICATED) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH, false);
		r->reauth = true;
	} else if (contains(msg, "authentication failed") ||
	           contains(msg, "etcdserver: permission denied") ||
	           code == GRPC_PERMISSION_DENIED) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH, false);
	} else if (contains(msg, "requested lease not found")) {
		set_result(r, PGKEEL_DCS_INVALID, PGKEEL_DCS_D_SESSION_LOST, false);
		r->lease_not_found = true;
	} else if (contains_any(msg, transient_msgs,
	                        sizeof(transient_msgs) / sizeof(*transient_msgs))) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE,
		           contains(msg, "timed out") || contains(msg, "deadline exceeded")
		                   ? PGKEEL_DCS_D_TIMEOUT
		                   : PGKEEL_DCS_D_SERVER,
		           true);
	} else if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
	           code == GRPC_RESOURCE_EXHAUSTED || code == GRPC_CANCELED) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE,
		           code == GRPC_DEADLINE_EXCEEDED ? PGKEEL_DCS_D_TIMEOUT
		                                          : PGKEEL_DCS_D_SERVER,
		           true);
	} else if (code == GRPC_FAILED_PRECONDITION || code == GRPC_ABORTED) {
		/* transient, but not this member's fault: retry in place */
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER, false);
	} else if (http >= 500) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER, true);
	} else if (http == 408) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_TIMEOUT, true);
	} else if (http == 429) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER, true);
	} else if (http == 401 || http == 403) {
		/* a proxy's refusal, no etcd code */
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH, false);
	} else if (http >= 400 && from_etcd) {
		set_result(r, PGKEEL_DCS_INVALID,
		           code == GRPC_NOT_FOUND ? PGKEEL_DCS_D_NOT_FOUND : PGKEEL_DCS_D_NONE,
		           false);
	} else {
		/* not etcd's answer: 1xx, 3xx, a 4xx without an etcd error, an empty error */
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_PROTOCOL, true);
	}
}

void e3_classify(const char *endpoint, int curl_code, long http_status, const char *body,
                 size_t len, struct e3_result *r)
{
	struct json_object *obj = NULL;
	const char *msg;
	int code;
	long http_code;
	char what[64];
	int w;

	memset(r, 0, sizeof(*r));
	if (body == NULL)
		len = 0;
	if (curl_code != 0) {
		if (curl_code == 27)
			set_result(r, PGKEEL_DCS_NOMEM, PGKEEL_DCS_D_NONE, false);
		else if (curl_code == 28)
			set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_TIMEOUT, true);
		else
			set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_CONNECT, true);
		w = snprintf(what, sizeof(what), "%s (curl error %d)", curl_code_text(curl_code),
		             curl_code);
		if (w < 0 || (size_t)w >= sizeof(what))
			what[0] = '\0';
		result_msg(r, endpoint, what, NULL, 0);
		return;
	}
	if (http_status <= 0) {
		set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_PROTOCOL, true);
		result_msg(r, endpoint, "no HTTP response", NULL, 0);
		return;
	}

	if (!parse_body(body, len, &obj, NULL, 0))
		obj = NULL;
	else if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}

	if (http_status >= 200 && http_status < 300) {
		if (obj == NULL) {
			set_result(r, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_PROTOCOL, true);
			w = snprintf(what, sizeof(what), "HTTP %ld, body not a JSON object",
			             http_status);
			if (w < 0 || (size_t)w >= sizeof(what))
				what[0] = '\0';
			result_msg(r, endpoint, what, body, len < 80 ? len : 80);
			return;
		}
		if (!error_fields(obj, &msg, &code, &http_code)) {
			set_result(r, PGKEEL_DCS_OK, PGKEEL_DCS_D_NONE, false);
			result_msg(r, endpoint, "ok", NULL, 0);
			json_object_put(obj);
			return;
		}
		/* a stream that ended in an error after a 200 header */
		classify_error(r, msg, code, http_code >= 400 ? http_code : http_status, true);
	} else if (obj != NULL && error_fields(obj, &msg, &code, &http_code)) {
		classify_error(r, msg, code, http_status, true);
	} else {
		msg = NULL;
		code = -1;
		classify_error(r, NULL, -1, http_status, false);
	}

	if (code >= 0)
		w = snprintf(what, sizeof(what), "HTTP %ld, gRPC code %d", http_status, code);
	else
		w = snprintf(what, sizeof(what), "HTTP %ld", http_status);
	if (w < 0 || (size_t)w >= sizeof(what))
		what[0] = '\0';
	if (msg != NULL)
		result_msg(r, endpoint, what, msg, strlen(msg));
	else if (len > 0)
		result_msg(r, endpoint, what, body, len < 80 ? len : 80);
	else
		result_msg(r, endpoint, what, NULL, 0);
	json_object_put(obj);
}

/* ------------------------------------------------------------------------ */
/* responses */

bool e3_parse_range(const char *body, size_t len, e3_kv_cb cb, void *arg, int64_t *revision,
                    char *err, size_t errlen)
{
	struct json_object *root, *kvs, *item;
	struct e3_kv kv;
	char *key = NULL, *value = NULL;
	size_t i, n, klen;
	bool ok = false;

	if (!parse_object(body, len, &root, err, errlen))
		return false;
	if (!get_header_revision(root, revision, err, errlen) ||
	    !get_array(root, "kvs", &kvs, err, errlen))
		goto out;
	n = kvs != NULL ? json_object_array_length(kvs) : 0;
	for (i = 0; i < n; i++) {
		item = json_object_array_get_idx(kvs, i);
		memset(&kv, 0, sizeof(kv));
		if (item == NULL || !json_object_is_type(item, json_type_object)) {
			set_err(err, errlen, "kvs[%zu] is not an object", i);
			goto out;
		}
		if (!get_b64(item, "key", true, &key, &klen, err, errlen) ||
		    !get_b64(item, "value", false, &value, &kv.value_len, err, errlen) ||
		    !get_i64(item, "create_revision", false, &kv.create_revision, err, errlen) ||
		    !get_i64(item, "mod_revision", true, &kv.mod_revision, err, errlen) ||
		    !get_i64(item, "version", false, &kv.version, err, errlen) ||
		    !get_i64(item, "lease", false, &kv.lease, err, errlen))
			goto out;
		if (klen == 0 || strlen(key) != klen) {
			set_err(err, errlen, "kvs[%zu] has an empty key or one with a NUL byte", i);
			goto out;
		}
		kv.key = key;
		kv.value = value;
		if (cb != NULL && cb(arg, &kv) != 0) {
			set_err(err, errlen, "stopped by the callback");
			goto out;
		}
		free(key);
		free(value);
		key = value = NULL;
	}
	ok = true;
out:
	free(key);
	free(value);
	json_object_put(root);
	return ok;
}

bool e3_parse_revision(const char *body, size_t len, int64_t *revision, char *err, size_t errlen)
{
	struct json_object *root;
	bool ok;

	if (!parse_object(body, len, &root, err, errlen))
		return false;
	ok = get_header_revision(root, revision, err, errlen);
	json_object_put(root);
	return ok;
}

bool e3_parse_txn(const char *body, size_t len, bool *succeeded, bool *nested_succeeded,
                  int64_t *revision, char *err, size_t errlen)
{
	struct json_object *root, *responses, *first, *inner;
	bool ok = false, outer, nested = false;

	if (!parse_object(body, len, &root, err, errlen))
		return false;
	if (!get_header_revision(root, revision, err, errlen) ||
	    !get_bool(root, "succeeded", &outer, err, errlen) ||
	    !get_array(root, "responses", &responses, err, errlen))
		goto out;
	if (responses != NULL && json_object_array_length(responses) > 0) {
		first = json_object_array_get_idx(responses, 0);
		if (first == NULL || !json_object_is_type(first, json_type_object)) {
			set_err(err, errlen, "responses[0] is not an object");
			goto out;
		}
		if (!get_object(first, "response_txn", false, &inner, err, errlen))
			goto out;
		if (inner != NULL && !get_bool(inner, "succeeded", &nested, err, errlen))
			goto out;
	}
	if (succeeded != NULL)
		*succeeded = outer;
	if (nested_succeeded != NULL)
		*nested_succeeded = nested;
	ok = true;
out:
	json_object_put(root);
	return ok;
}

bool e3_parse_lease_grant(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
                          size_t errlen)
{
	struct json_object *root;
	const char *refusal;
	int64_t i, t;
	bool ok = false;

	if (!parse_object(body, len, &root, err, errlen))
		return false;
	if (!get_string(root, "error", false, &refusal, err, errlen) ||
	    !get_i64(root, "ID", true, &i, err, errlen) ||
	    !get_i64(root, "TTL", true, &t, err, errlen))
		goto out;
	if (refusal != NULL && refusal[0] != '\0') {
		set_err(err, errlen, "lease grant refused: %s", refusal);
		goto out;
	}
	if (i <= 0 || t <= 0) {
		set_err(err, errlen, "lease grant without a positive ID and TTL");
		goto out;
	}
	if (id != NULL)
		*id = i;
	if (ttl != NULL)
		*ttl = t;
	ok = true;
out:
	json_object_put(root);
	return ok;
}

bool e3_parse_lease_keepalive(const char *body, size_t len, int64_t *ttl, char *err,
                              size_t errlen)
{
	struct json_object *root, *result, *e;
	int64_t t;
	bool ok = false;

	if (!parse_object(body, len, &root, err, errlen))
		return false;
	e = member(root, "error");
	if (e != NULL) {
		const char *msg = NULL;
		int code;
		long http;

		(void)error_fields(root, &msg, &code, &http);
		set_err(err, errlen, "keepalive failed: %s", msg != NULL ? msg : "(no message)");
		goto out;
	}
	if (!get_object(root, "result", true, &result, err, errlen) ||
	    !get_i64(result, "TTL", false, &t, err, errlen))
		goto out;
	if (t < 0) {
		set_err(err, errlen, "negative TTL in keepalive");
		goto out;
	}
	if (ttl != NULL)
		*ttl = t;
	ok = true;
out:
	json_object_put(root);
	return ok;
}

bool e3_parse_auth(const char *body, size_t len, char **token, char *err, size_t errlen)
{
	struct json_object *root;
	const char *t;
	bool ok = false;

	*token = NULL;
	if (!parse_object(body, len, &root, err, errlen))
		return false;
	if (!get_string(root, "token", true, &t, err, errlen))
		goto out;
	if (t[0] == '\0' ||
	    strlen(t) != (size_t)json_object_get_string_len(member(root, "token"))) {
		set_err(err, errlen, "empty or malformed token");
		goto out;
	}
	*token = dup_bytes(t, strlen(t));
	if (*token == NULL) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	ok = true;
out:
	json_object_put(root);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* the watch stream */

struct e3_watch_parser {
	e3_watch_cb cb;
	void *arg;
	struct json_tokener *tok;
	size_t msg_bytes; /* bytes of the message being assembled */
	bool failed;
};

struct e3_watch_parser *e3_watch_parser_new(e3_watch_cb cb, void *arg)
{
	struct e3_watch_parser *p;

	if (cb == NULL)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->cb = cb;
	p->arg = arg;
	p->tok = new_tokener();
	if (p->tok == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void e3_watch_parser_free(struct e3_watch_parser *p)
{
	if (p == NULL)
		return;
	json_tokener_free(p->tok);
	free(p);
}

/* One complete stream message: report it, or false if it is malformed. */
static bool watch_message(struct e3_watch_parser *p, struct json_object *obj)
{
	struct e3_watch_msg m;
	struct e3_watch_event *events = NULL;
	char **keys = NULL;
	struct json_object *result, *header, *arr, *ev, *kv;
	const char *type, *reason;
	size_t i, n = 0, klen, vlen;
	char *value;
	bool ok = false;
	int code;
	long http;

	memset(&m, 0, sizeof(m));
	if (!json_object_is_type(obj, json_type_object))
		return false;
	if (member(obj, "error") != NULL) {
		m.error = true;
		(void)error_fields(obj, &m.reason, &code, &http);
		if (m.reason == NULL)
			m.reason = "watch stream error";
		p->cb(p->arg, &m);
		return true;
	}
	if (!get_object(obj, "result", true, &result, NULL, 0) ||
	    !get_object(result, "header", false, &header, NULL, 0) ||
	    !get_i64(header, "revision", false, &m.revision, NULL, 0) ||
	    !get_bool(result, "created", &m.created, NULL, 0) ||
	    !get_bool(result, "canceled", &m.canceled, NULL, 0) ||
	    !get_i64(result, "compact_revision", false, &m.compact_revision, NULL, 0) ||
	    !get_string(result, "cancel_reason", false, &reason, NULL, 0) ||
	    !get_array(result, "events", &arr, NULL, 0))
		return false;
	if (reason != NULL && reason[0] != '\0') {
		m.reason = reason;
		if (m.canceled)
			m.error = true;
	}
	n = arr != NULL ? json_object_array_length(arr) : 0;
	if (n > 0) {
		events = calloc(n, sizeof(*events));
		keys = calloc(n, sizeof(*keys));
		if (events == NULL || keys == NULL)
			goto out;
	}
	for (i = 0; i < n; i++) {
		ev = json_object_array_get_idx(arr, i);
		if (ev == NULL || !json_object_is_type(ev, json_type_object) ||
		    !get_string(ev, "type", false, &type, NULL, 0) ||
		    !get_object(ev, "kv", true, &kv, NULL, 0))
			goto out;
		if (type == NULL || strcmp(type, "PUT") == 0)
			events[i].type = E3_EV_PUT;
		else if (strcmp(type, "DELETE") == 0)
			events[i].type = E3_EV_DELETE;
		else
			goto out;
		if (!get_b64(kv, "key", true, &keys[i], &klen, NULL, 0) ||
		    !get_i64(kv, "mod_revision", true, &events[i].mod_revision, NULL, 0))
			goto out;
		if (klen == 0 || strlen(keys[i]) != klen)
			goto out;
		/* the value is not reported, but a broken one means a broken stream */
		if (!get_b64(kv, "value", false, &value, &vlen, NULL, 0))
			goto out;
		free(value);
		events[i].key = keys[i];
	}
	m.events = events;
	m.n_events = n;
	p->cb(p->arg, &m);
	ok = true;
out:
	if (keys != NULL) {
		for (i = 0; i < n; i++)
			free(keys[i]);
	}
	free(keys);
	free(events);
	return ok;
}

bool e3_watch_parser_feed(struct e3_watch_parser *p, const char *data, size_t len)
{
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t chunk, used;
	bool ok;

	if (p == NULL || p->failed)
		return false;
	if (len > 0 && (data == NULL || memchr(data, '\0', len) != NULL)) {
		p->failed = true;
		return false;
	}
	while (len > 0) {
		chunk = len < (size_t)INT_MAX ? len : (size_t)INT_MAX;
		obj = json_tokener_parse_ex(p->tok, data, (int)chunk);
		jerr = json_tokener_get_error(p->tok);
		if (jerr == json_tokener_continue) {
			p->msg_bytes += chunk;
			if (p->msg_bytes > E3_WATCH_MAX_MSG) {
				p->failed = true;
				return false;
			}
			data += chunk;
			len -= chunk;
			continue;
		}
		if (jerr != json_tokener_success || obj == NULL) {
			/* a syntax error, or a JSON null */
			p->failed = true;
			return false;
		}
		used = json_tokener_get_parse_end(p->tok);
		if (used == 0 || used > chunk) {
			json_object_put(obj);
			p->failed = true;
			return false;
		}
		json_tokener_reset(p->tok);
		p->msg_bytes = 0;
		ok = watch_message(p, obj);
		json_object_put(obj);
		if (!ok) {
			p->failed = true;
			return false;
		}
		data += used;
		len -= used;
	}
	return true;
}
