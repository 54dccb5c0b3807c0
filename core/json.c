/*
 * JSON as Patroni reads and writes it: a parser as strict as Python's
 * json.loads (json-c underneath) and renderers that write what Python's
 * json.dumps writes, byte for byte; with the allocation, string-building and
 * UTF-8 helpers they rest on, which the cluster model shares.
 */
#include "autoconf.h"

#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* memory, text buffers, UTF-8 */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		pgkeel_oom();
	return q;
}

void *pgkeel_xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		pgkeel_oom();
	return xrealloc(p, n * size);
}

char *pgkeel_dup_bytes(const char *p, size_t len)
{
	char *d;

	if (len == SIZE_MAX)
		pgkeel_oom();
	d = xrealloc(NULL, len + 1);
	if (len > 0)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

void pgkeel_sbuf_put(struct pgkeel_sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap - b->len <= n) {
			if (cap > SIZE_MAX / 2)
				pgkeel_oom();
			cap *= 2;
		}
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void pgkeel_sbuf_puts(struct pgkeel_sbuf *b, const char *s)
{
	pgkeel_sbuf_put(b, s, strlen(s));
}

void pgkeel_sbuf_putc(struct pgkeel_sbuf *b, char c)
{
	pgkeel_sbuf_put(b, &c, 1);
}

void pgkeel_sbuf_printf(struct pgkeel_sbuf *b, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort(); /* only used for numbers: cannot happen */
	pgkeel_sbuf_put(b, buf, (size_t)n);
}

char *pgkeel_sbuf_finish(struct pgkeel_sbuf *b)
{
	if (b->p == NULL)
		pgkeel_sbuf_put(b, "", 0);
	return b->p;
}

void pgkeel_sbuf_put_py_repr(struct pgkeel_sbuf *b, const char *s)
{
	char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';

	pgkeel_sbuf_putc(b, q);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\' || *p == (unsigned char)q)
			pgkeel_sbuf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			pgkeel_sbuf_puts(b, "\\n");
		else if (*p == '\r')
			pgkeel_sbuf_puts(b, "\\r");
		else if (*p == '\t')
			pgkeel_sbuf_puts(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			pgkeel_sbuf_printf(b, "\\x%02x", *p);
		else
			pgkeel_sbuf_putc(b, (char)*p);
	}
	pgkeel_sbuf_putc(b, q);
}

/*
 * Decode one UTF-8 sequence at s[0..len).  Returns its length and the code
 * point, or 0 when the bytes are not valid UTF-8 (overlong forms, surrogates
 * and values above U+10FFFF are invalid, as for Python's decoder).
 */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c;
	size_t n, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Offset of the first byte that is not valid UTF-8, or len when all are. */
size_t pgkeel_utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_decode(u + i, len - i, &cp);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

/* A copy with NUL bytes and invalid UTF-8 replaced by U+FFFD. */
char *pgkeel_sanitize_text(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	struct pgkeel_sbuf b = { 0 };
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = utf8_decode(u + i, len - i, &cp);
		if (n == 0 || cp == 0) {
			pgkeel_sbuf_puts(&b, "\xef\xbf\xbd");
			i += n ? n : 1;
		} else {
			pgkeel_sbuf_put(&b, s + i, n);
			i += n;
		}
	}
	return pgkeel_sbuf_finish(&b);
}
/* ------------------------------------------------------------------------ */
/* JSON reading with Python's strictness */

static bool json_int_in_range(const char *digits, size_t nd, bool neg)
{
	static const char max_pos[] = "9223372036854775807";
	static const char max_neg[] = "9223372036854775808";

	while (nd > 1 && *digits == '0') {
		digits++;
		nd--;
	}
	if (nd < 19)
		return true;
	if (nd > 19)
		return false;
	return memcmp(digits, neg ? max_neg : max_pos, 19) <= 0;
}

/*
 * What json-c 0.16 accepts but Python's json.loads does not (or what json-c
 * would silently get wrong): control characters inside strings, single
 * quotes, "1.", integers outside int64 (json-c clamps them to INT64_MAX), and
 * stray control characters between tokens.  The grammar itself is left to
 * json-c; this only walks strings and number tokens.
 */
static bool json_text_check(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"') {
			for (i++; i < len; i++) {
				c = (unsigned char)s[i];
				if (c == '"')
					break;
				if (c == '\\') {
					i++;
					continue;
				}
				if (c < 0x20) {
					(void)pgkeel_fmt(err, errlen, "control character 0x%02x "
					                 "inside a string at offset %zu", c, i);
					return false;
				}
			}
			i++;
			continue;
		}
		if (c == '-' || (c >= '0' && c <= '9')) {
			bool neg = c == '-';
			size_t start = i, ds;

			if (neg)
				i++;
			ds = i;
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i == ds)
				continue; /* "-Infinity" or junk: json-c decides */
			if (i < len && s[i] == '.') {
				if (i + 1 >= len || s[i + 1] < '0' || s[i + 1] > '9') {
					(void)pgkeel_fmt(err, errlen,
					                 "malformed number at offset %zu", start);
					return false;
				}
			} else if (i < len && (s[i] == 'e' || s[i] == 'E')) {
				/* a float: no range question */
			} else if (!json_int_in_range(s + ds, i - ds, neg)) {
				(void)pgkeel_fmt(err, errlen,
				                 "integer out of range at offset %zu", start);
				return false;
			}
			while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
			                   s[i] == 'e' || s[i] == 'E' || s[i] == '+' ||
			                   s[i] == '-'))
				i++;
			continue;
		}
		if (c == '\'') {
			(void)pgkeel_fmt(err, errlen, "single-quoted string at offset %zu", i);
			return false;
		}
		if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			(void)pgkeel_fmt(err, errlen, "control character 0x%02x at offset %zu", c,
			                 i);
			return false;
		}
		i++;
	}
	return true;
}

bool pgkeel_json_parse(const char *text, size_t len, struct json_object **out, char *err,
                       size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	const char *nul;
	char *copy;
	size_t bad, end;

	*out = NULL;
	if (text == NULL)
		text = "";
	nul = memchr(text, '\0', len);
	if (nul != NULL) {
		(void)pgkeel_fmt(err, errlen, "NUL byte at offset %zu", (size_t)(nul - text));
		return false;
	}
	bad = pgkeel_utf8_invalid_at(text, len);
	if (bad < len) {
		(void)pgkeel_fmt(err, errlen, "invalid UTF-8 at offset %zu", bad);
		return false;
	}
	if (len > (size_t)INT32_MAX - 1) {
		(void)pgkeel_fmt(err, errlen, "too large (%zu bytes)", len);
		return false;
	}
	if (!json_text_check(text, len, err, errlen))
		return false;

	tok = json_tokener_new_ex(64);
	if (tok == NULL)
		pgkeel_oom();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* The terminating NUL ends a top-level number or literal. */
	copy = pgkeel_dup_bytes(text, len);
	obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	free(copy);
	if (jerr != json_tokener_success) {
		if (jerr == json_tokener_continue || end >= len)
			(void)pgkeel_fmt(err, errlen, "not JSON: unexpected end of data");
		else
			(void)pgkeel_fmt(err, errlen, "not JSON: %s at offset %zu",
			                 json_tokener_error_desc(jerr), end);
		json_object_put(obj);
		return false;
	}
	/* Only whitespace may follow (strict mode stops at it otherwise). */
	for (; end < len; end++) {
		if (text[end] != ' ' && text[end] != '\t' && text[end] != '\n' &&
		    text[end] != '\r') {
			(void)pgkeel_fmt(err, errlen, "not JSON: extra data at offset %zu", end);
			json_object_put(obj);
			return false;
		}
	}
	*out = obj;
	return true;
}

/* ------------------------------------------------------------------------ */
/* JSON writing as Python's json.dumps(separators=(',', ':')) */

void pgkeel_json_put_string(struct pgkeel_sbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;
	char esc[13];

	pgkeel_sbuf_putc(b, '"');
	while (i < len) {
		size_t run = i;

		/* copy a run of printable ASCII other than '"' and '\\' at once */
		while (run < len && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' &&
		       u[run] != '\\')
			run++;
		if (run > i) {
			pgkeel_sbuf_put(b, s + i, run - i);
			i = run;
			continue;
		}
		n = utf8_decode(u + i, len - i, &cp);
		if (n == 0) {
			/* not UTF-8: Python strings cannot hold it; write U+FFFD */
			cp = 0xfffd;
			n = 1;
		}
		i += n;
		switch (cp) {
		case '"':
			pgkeel_sbuf_puts(b, "\\\"");
			continue;
		case '\\':
			pgkeel_sbuf_puts(b, "\\\\");
			continue;
		case '\n':
			pgkeel_sbuf_puts(b, "\\n");
			continue;
		case '\r':
			pgkeel_sbuf_puts(b, "\\r");
			continue;
		case '\t':
			pgkeel_sbuf_puts(b, "\\t");
			continue;
		case '\b':
			pgkeel_sbuf_puts(b, "\\b");
			continue;
		case '\f':
			pgkeel_sbuf_puts(b, "\\f");
			continue;
		default:
			break;
		}
		if (cp > 0xffff) {
			uint32_t v = cp - 0x10000;
			uint32_t hi = 0xd800 | (v >> 10), lo = 0xdc00 | (v & 0x3ff);

			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = hex[(hi >> 12) & 0xf];
			esc[3] = hex[(hi >> 8) & 0xf];
			esc[4] = hex[(hi >> 4) & 0xf];
			esc[5] = hex[hi & 0xf];
			esc[6] = '\\';
			esc[7] = 'u';
			esc[8] = hex[(lo >> 12) & 0xf];
			esc[9] = hex[(lo >> 8) & 0xf];
			esc[10] = hex[(lo >> 4) & 0xf];
			esc[11] = hex[lo & 0xf];
			pgkeel_sbuf_put(b, esc, 12);
		} else {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = hex[(cp >> 12) & 0xf];
			esc[3] = hex[(cp >> 8) & 0xf];
			esc[4] = hex[(cp >> 4) & 0xf];
			esc[5] = hex[cp & 0xf];
			pgkeel_sbuf_put(b, esc, 6);
		}
	}
	pgkeel_sbuf_putc(b, '"');
}

void pgkeel_json_put_cstring(struct pgkeel_sbuf *b, const char *s)
{
	if (s == NULL)
		pgkeel_sbuf_puts(b, "null");
	else
		pgkeel_json_put_string(b, s, strlen(s));
}

/*
 * Python's float repr: the shortest digits that round-trip; positional when
 * the decimal exponent is in [-4, 16), with ".0" for integral values; else
 * d.ddde+XX with at least two exponent digits.
 */
static void put_python_float(struct pgkeel_sbuf *b, double d)
{
	char buf[40], digits[24];
	int prec, exp10 = 0, decpt, nd = 0, i;
	const char *p;

	if (isnan(d)) {
		pgkeel_sbuf_puts(b, "NaN");
		return;
	}
	if (isinf(d)) {
		pgkeel_sbuf_puts(b, d > 0 ? "Infinity" : "-Infinity");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		if (!pgkeel_fmt(buf, sizeof(buf), "%.*e", prec - 1, d))
			abort();
		if (strtod(buf, NULL) == d)
			break;
	}
	p = buf;
	if (*p == '-') {
		pgkeel_sbuf_putc(b, '-');
		p++;
	}
	for (; *p != '\0' && *p != 'e' && *p != 'E'; p++) {
		if (*p >= '0' && *p <= '9' && nd < (int)sizeof(digits) - 1)
			digits[nd++] = *p;
	}
	if (*p == 'e' || *p == 'E')
		exp10 = (int)strtol(p + 1, NULL, 10);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	decpt = exp10 + 1;
	if (decpt > -4 && decpt <= 16) {
		if (decpt <= 0) {
			pgkeel_sbuf_puts(b, "0.");
			for (i = decpt; i < 0; i++)
				pgkeel_sbuf_putc(b, '0');
			pgkeel_sbuf_put(b, digits, (size_t)nd);
		} else if (decpt >= nd) {
			pgkeel_sbuf_put(b, digits, (size_t)nd);
			for (i = nd; i < decpt; i++)
				pgkeel_sbuf_putc(b, '0');
			pgkeel_sbuf_puts(b, ".0");
		} else {
			pgkeel_sbuf_put(b, digits, (size_t)decpt);
			pgkeel_sbuf_putc(b, '.');
			pgkeel_sbuf_put(b, digits + decpt, (size_t)(nd - decpt));
		}
	} else {
		pgkeel_sbuf_putc(b, digits[0]);
		if (nd > 1) {
			pgkeel_sbuf_putc(b, '.');
			pgkeel_sbuf_put(b, digits + 1, (size_t)(nd - 1));
		}
		pgkeel_sbuf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	}
}

struct json_object *pgkeel_json_new_double(double d)
{
	struct pgkeel_sbuf b = {0};
	struct json_object *o;
	char *text;

	put_python_float(&b, d);
	text = pgkeel_sbuf_finish(&b);
	o = json_object_new_double_s(d, text);
	free(text);
	if (o == NULL)
		pgkeel_oom();
	return o;
}

/* spaced: Python's default separators (', ', ': ') instead of (',', ':') */
void pgkeel_json_put(struct pgkeel_sbuf *b, const struct json_object *obj, bool spaced)
{
	/* json-c's getters take non-const pointers; nothing below modifies obj */
	struct json_object *o = (struct json_object *)(uintptr_t)obj;
	size_t i, n;
	bool first = true;

	switch (json_object_get_type(o)) {
	case json_type_null:
		pgkeel_sbuf_puts(b, "null");
		break;
	case json_type_boolean:
		pgkeel_sbuf_puts(b, json_object_get_boolean(o) ? "true" : "false");
		break;
	case json_type_int: {
		int64_t v = json_object_get_int64(o);

		if (v == INT64_MAX)
			pgkeel_sbuf_printf(b, "%llu",
			                   (unsigned long long)json_object_get_uint64(o));
		else
			pgkeel_sbuf_printf(b, "%lld", (long long)v);
		break;
	}
	case json_type_double:
		put_python_float(b, json_object_get_double(o));
		break;
	case json_type_string:
		pgkeel_json_put_string(b, json_object_get_string(o),
		                       (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		pgkeel_sbuf_putc(b, '[');
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			if (i > 0)
				pgkeel_sbuf_puts(b, spaced ? ", " : ",");
			pgkeel_json_put(b, json_object_array_get_idx(o, i), spaced);
		}
		pgkeel_sbuf_putc(b, ']');
		break;
	case json_type_object: {
		pgkeel_sbuf_putc(b, '{');
		json_object_object_foreach(o, key, val) {
			if (!first)
				pgkeel_sbuf_puts(b, spaced ? ", " : ",");
			first = false;
			pgkeel_json_put_cstring(b, key);
			pgkeel_sbuf_puts(b, spaced ? ": " : ":");
			pgkeel_json_put(b, val, spaced);
		}
		pgkeel_sbuf_putc(b, '}');
		break;
	}
	}
}

char *pgkeel_json_compact(const struct json_object *obj)
{
	struct pgkeel_sbuf b = { 0 };

	pgkeel_json_put(&b, obj, false);
	return pgkeel_sbuf_finish(&b);
}

char *pgkeel_json_spaced(const struct json_object *obj)
{
	struct pgkeel_sbuf b = { 0 };

	pgkeel_json_put(&b, obj, true);
	return pgkeel_sbuf_finish(&b);
}

/* ------------------------------------------------------------------------ */
/* JSON values as Python sees them */

/* Python's truth value of a JSON value. */
bool pgkeel_json_truthy(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return false;
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) != 0 || json_object_get_uint64(v) != 0;
	case json_type_double:
		return json_object_get_double(v) != 0.0;
	case json_type_string:
		return json_object_get_string_len(v) > 0;
	case json_type_array:
		return json_object_array_length(v) > 0;
	case json_type_object:
		return json_object_object_length(v) > 0;
	}
	return false;
}
