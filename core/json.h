/*
 * JSON as Patroni reads and writes it: pgkeel_json_parse() accepts what
 * Python's json.loads accepts, the renderers write what Python's json.dumps
 * writes, byte for byte.  Also the helpers underneath (out-of-memory exits,
 * a string builder, UTF-8 checks), shared with the cluster model.
 *
 * Everything that allocates aborts the process on out of memory.
 */
#ifndef PGKEEL_JSON_H
#define PGKEEL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

struct json_object;

/* ---- memory and text helpers ---- */

/* Write "pgkeel: out of memory" to stderr and abort. */
/* realloc() of n * size bytes (at least one); aborts on overflow. */
void *pgkeel_xreallocarray(void *p, size_t n, size_t size);
/* A NUL-terminated copy of p[0..len), which may itself hold NUL bytes. */
char *pgkeel_dup_bytes(const char *p, size_t len);

/*
 * A growable byte buffer, initialized with { 0 }; always NUL-terminated once
 * anything was put.  pgkeel_sbuf_finish() hands over the malloc'd text ("" if
 * nothing was put); without it the caller frees p.
 */
struct pgkeel_sbuf {
	char *p;
	size_t len;
	size_t cap;
};

void pgkeel_sbuf_put(struct pgkeel_sbuf *b, const char *s, size_t n);
void pgkeel_sbuf_puts(struct pgkeel_sbuf *b, const char *s);
void pgkeel_sbuf_putc(struct pgkeel_sbuf *b, char c);
/* For numbers only: aborts when the text would pass 63 bytes. */
void pgkeel_sbuf_printf(struct pgkeel_sbuf *b, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
char *pgkeel_sbuf_finish(struct pgkeel_sbuf *b);
/* Python's repr() of a str: single quotes unless s has ' and no ". */
void pgkeel_sbuf_put_py_repr(struct pgkeel_sbuf *b, const char *s);

/* Offset of the first byte that is not valid UTF-8, or len when all are. */
size_t pgkeel_utf8_invalid_at(const char *s, size_t len);
/* A copy with NUL bytes and invalid UTF-8 replaced by U+FFFD. */
char *pgkeel_sanitize_text(const char *s, size_t len);

/* ---- reading ---- */

/*
 * Parse text the way Python's json.loads accepts it: NUL bytes, invalid
 * UTF-8, control characters inside strings, single-quoted strings, "1." and
 * integers outside int64 (json-c would silently clamp them) are refused.
 * Python would take such integers, but no value Patroni writes holds one
 * and a clamped LSN is worse than a skipped value.
 * On success *out is the value (NULL for JSON null), owned by the caller.
 * On failure returns false and writes the reason into err.
 */
bool pgkeel_json_parse(const char *text, size_t len, struct json_object **out, char *err,
                       size_t errlen) PGKEEL_MUSTCHECK;

/* Python's truth value of a JSON value (NULL, i.e. JSON null, is false). */
bool pgkeel_json_truthy(struct json_object *v);

/* ---- writing ---- */

/*
 * Render obj as Python's json.dumps(obj, separators=(',', ':')) does:
 * ASCII only (\uXXXX, lowercase hex, surrogate pairs above U+FFFF), '/' not
 * escaped, floats as Python's repr (1.0, 1e+16, NaN, Infinity).  NULL renders
 * "null".  Returns a malloc'd string (aborts on out of memory).
 */
char *pgkeel_json_compact(const struct json_object *obj);
/*
 * The same with Python's default separators (', ', ': '): what
 * `patronictl edit-config` writes into the config key (json.dumps(data)),
 * what Patroni caches in patroni.dynamic.json and answers on REST.
 */
char *pgkeel_json_spaced(const struct json_object *obj);

/*
 * A json-c double that prints as Python's repr (0.9, not json-c's
 * 0.90000000000000002), also through json-c's own to-string functions.
 */
struct json_object *pgkeel_json_new_double(double d);

/* Append obj as pgkeel_json_compact() renders it, or with spaced as pgkeel_json_spaced(). */
void pgkeel_json_put(struct pgkeel_sbuf *b, const struct json_object *obj, bool spaced);
/* Append s[0..len) as a JSON string, escaped as above (bytes that are not UTF-8: U+FFFD). */
void pgkeel_json_put_string(struct pgkeel_sbuf *b, const char *s, size_t len);
/* The same for a C string; NULL appends null. */
void pgkeel_json_put_cstring(struct pgkeel_sbuf *b, const char *s);

#endif
