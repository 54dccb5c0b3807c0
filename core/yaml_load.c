/*
 * libyaml events -> json-c tree, with PyYAML (YAML 1.1) scalar resolution.
 */
#include "autoconf.h"

#include "yaml_load.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "json.h"
#include "util.h"

#define YL_MAX_DEPTH       64
#define YL_MAX_ALIAS_NODES 100000 /* bounds "billion laughs" expansion */
#define YL_MAX_FILE        (16 * 1024 * 1024)

struct yl {
	yaml_parser_t parser;
	const char *file;
	json_object *positions; /* may be NULL */
	json_object *anchors;   /* name -> node (owned refs) */
	long alias_nodes;
	char *err;
	size_t errlen;
};

/* ------------------------------------------------------------------ scalars */

static bool all_chars(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (strchr(set, s[i]) == NULL || s[i] == '\0')
			return false;
	return true;
}

static bool str_in(const char *s, size_t n, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strlen(*words) == n && memcmp(*words, s, n) == 0)
			return true;
	return false;
}

/* Copy without underscores into buf; false if it does not fit. */
static bool strip_underscores(const char *s, size_t n, char *buf, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_')
			continue;
		if (j + 1 >= len)
			return false;
		buf[j++] = s[i];
	}
	buf[j] = '\0';
	return true;
}

/* "[0-5]?[0-9]" groups after ':' */
static bool sexagesimal_tail(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return false;
	while (i < n) {
		size_t start;

		if (s[i] != ':')
			return false;
		i++;
		start = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i - start == 0 || i - start > 2)
			return false;
		if (i - start == 2 && s[start] > '5')
			return false;
	}
	return true;
}

/* Matches PyYAML's int regex; on match stores the value. */
static bool match_int(const char *s, size_t n, bool *overflow, int64_t *val)
{
	const char *p = s;
	size_t m = n;
	bool neg = false;
	char buf[128];
	int base = 10;
	const char *digits;
	size_t dn;
	char *end;
	unsigned long long u;

	*overflow = false;
	if (m > 0 && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
		m--;
	}
	if (m == 0)
		return false;
	if (m > 2 && p[0] == '0' && p[1] == 'b' && all_chars(p + 2, m - 2, "01_")) {
		base = 2;
		digits = p + 2;
		dn = m - 2;
	} else if (m > 2 && p[0] == '0' && p[1] == 'x' &&
	           all_chars(p + 2, m - 2, "0123456789abcdefABCDEF_")) {
		base = 16;
		digits = p + 2;
		dn = m - 2;
	} else if (m > 1 && p[0] == '0' && all_chars(p + 1, m - 1, "01234567_")) {
		base = 8;
		digits = p + 1;
		dn = m - 1;
	} else if (m == 1 && p[0] == '0') {
		*val = 0;
		return true;
	} else if (p[0] >= '1' && p[0] <= '9') {
		size_t i = 1;

		while (i < m && ((p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			i++;
		if (i < m) {
			/* sexagesimal: 1:30 = 90 */
			int64_t acc = 0;
			const char *q;

			if (!sexagesimal_tail(p + i, m - i))
				return false;
			if (!strip_underscores(p, i, buf, sizeof(buf)))
				return false;
			errno = 0;
			acc = strtoll(buf, NULL, 10);
			if (errno == ERANGE) {
				*overflow = true;
				return true;
			}
			q = p + i;
			while (q < p + m) {
				q++; /* ':' */
				if (__builtin_mul_overflow(acc, 60, &acc) ||
				    __builtin_add_overflow(acc, strtol(q, &end, 10), &acc)) {
					*overflow = true;
					return true;
				}
				q = end;
			}
			*val = neg ? -acc : acc;
			return true;
		}
		digits = p;
		dn = m;
	} else {
		return false;
	}
	if (!strip_underscores(digits, dn, buf, sizeof(buf))) {
		*overflow = true;
		return true;
	}
	if (buf[0] == '\0') {
		*val = 0; /* "0_" and friends: PyYAML yields 0 */
		return true;
	}
	errno = 0;
	u = strtoull(buf, &end, base);
	if (errno == ERANGE || u > (unsigned long long)INT64_MAX + (neg ? 1u : 0u)) {
		*overflow = true;
		return true;
	}
	*val = neg ? (int64_t)(0 - u) : (int64_t)u;
	return true;
}

static bool match_float(const char *s, size_t n, double *val)
{
	static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
	static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
	const char *p = s;
	size_t m = n, i = 0;
	bool neg = false;
	char buf[128];

	if (str_in(s, n, nans)) {
		*val = NAN;
		return true;
	}
	if (m > 0 && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		p++;
		m--;
	}
	if (str_in(p, m, infs)) {
		*val = neg ? -INFINITY : INFINITY;
		return true;
	}
	if (m == 0)
		return false;
	if (p[0] == '.') {
		/* \.[0-9][0-9_]*(exp)?  -- no sign allowed */
		if (p != s || m < 2 || p[1] < '0' || p[1] > '9')
			return false;
		i = 2;
	} else {
		if (p[0] < '0' || p[0] > '9')
			return false;
		while (i < m && ((p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			i++;
		if (i < m && p[i] == ':') {
			/* sexagesimal float: 1:30.5 */
			size_t j = i;
			double acc;
			char *end;

			while (j < m && p[j] != '.')
				j++;
			if (j == m || !sexagesimal_tail(p + i, j - i) ||
			    !all_chars(p + j + 1, m - j - 1, "0123456789_") ||
			    !strip_underscores(p, m, buf, sizeof(buf)))
				return false;
			acc = strtod(buf, &end);
			while (*end == ':') {
				double part = strtod(end + 1, &end);

				acc = acc * 60 + part;
			}
			*val = neg ? -acc : acc;
			return true;
		}
		if (i == m || p[i] != '.')
			return false;
		i++;
	}
	while (i < m && ((p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
		i++;
	if (i < m) {
		/* exponent: [eE][-+][0-9]+ */
		if ((p[i] != 'e' && p[i] != 'E') || i + 2 >= m + 0 ||
		    (p[i + 1] != '-' && p[i + 1] != '+'))
			return false;
		if (i + 2 >= m || !all_chars(p + i + 2, m - i - 2, "0123456789"))
			return false;
	}
	if (!strip_underscores(s, n, buf, sizeof(buf)))
		return false;
	*val = strtod(buf, NULL);
	return true;
}

json_object *pgkeel_yaml_resolve_plain(const char *s, size_t len)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"yes",  "Yes", "YES", "true", "True",
	                                    "TRUE", "on",  "On",  "ON",   NULL};
	static const char *const falses[] = {"no",    "No",  "NO",  "false", "False",
	                                     "FALSE", "off", "Off", "OFF",   NULL};
	int64_t iv;
	double dv;
	bool overflow;

	if (str_in(s, len, nulls))
		return NULL;
	if (str_in(s, len, trues))
		return json_object_new_boolean(1);
	if (str_in(s, len, falses))
		return json_object_new_boolean(0);
	if (match_int(s, len, &overflow, &iv)) {
		if (!overflow)
			return json_object_new_int64(iv);
		return json_object_new_string_len(s, (int)len);
	}
	if (match_float(s, len, &dv))
		return pgkeel_json_new_double(dv);
	return json_object_new_string_len(s, (int)len);
}

/* ------------------------------------------------------------------ parser */

static bool yl_fail(struct yl *y, const yaml_mark_t *m, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

static bool yl_fail(struct yl *y, const yaml_mark_t *m, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (m != NULL)
		(void)pgkeel_fmt(y->err, y->errlen, "%s:%zu:%zu: %s", y->file, m->line + 1,
		                 m->column + 1, what);
	else
		(void)pgkeel_fmt(y->err, y->errlen, "%s: %s", y->file, what);
	return false;
}

static bool yl_next(struct yl *y, yaml_event_t *ev)
{
	if (yaml_parser_parse(&y->parser, ev))
		return true;
	if (y->parser.problem_mark.line || y->parser.problem_mark.column ||
	    y->parser.problem != NULL) {
		const char *ctx = y->parser.context;

		return yl_fail(y, &y->parser.problem_mark, "invalid YAML: %s%s%s%s",
		               y->parser.problem ? y->parser.problem : "syntax error",
		               ctx ? " (" : "", ctx ? ctx : "", ctx ? ")" : "");
	}
	return yl_fail(y, NULL, "invalid YAML");
}

static void yl_record(struct yl *y, const char *path, const yaml_mark_t *m)
{
	char pos[PATH_MAX + 64];

	if (y->positions == NULL || path[0] == '\0')
		return;
	if (!pgkeel_fmt(pos, sizeof(pos), "%s:%zu:%zu", y->file, m->line + 1, m->column + 1))
		return;
	json_object_object_add(y->positions, path, json_object_new_string(pos));
}

static char *path_join(const char *base, const char *key)
{
	return base[0] ? pgkeel_asprintf("%s.%s", base, key) : pgkeel_strdup(key);
}

static bool yl_node(struct yl *y, yaml_event_t *ev, const char *path, int depth, json_object **out);

static bool tag_is(const yaml_char_t *tag, const char *name)
{
	static const char prefix[] = "tag:yaml.org,2002:";

	return tag != NULL && strncmp((const char *)tag, prefix, sizeof(prefix) - 1) == 0 &&
	       strcmp((const char *)tag + sizeof(prefix) - 1, name) == 0;
}

static bool yl_scalar(struct yl *y, yaml_event_t *ev, json_object **out)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const yaml_char_t *tag = ev->data.scalar.tag;
	json_object *o;

	if (memchr(v, '\0', n) != NULL)
		return yl_fail(y, &ev->start_mark, "NUL character in a scalar");
	if (tag == NULL || strcmp((const char *)tag, "!") == 0) {
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == NULL)
			*out = pgkeel_yaml_resolve_plain(v, n);
		else
			*out = json_object_new_string_len(v, (int)n);
		return true;
	}
	if (tag_is(tag, "str")) {
		*out = json_object_new_string_len(v, (int)n);
		return true;
	}
	o = pgkeel_yaml_resolve_plain(v, n);
	if ((tag_is(tag, "null") && o == NULL) ||
	    (tag_is(tag, "bool") && json_object_is_type(o, json_type_boolean)) ||
	    (tag_is(tag, "int") && json_object_is_type(o, json_type_int)) ||
	    (tag_is(tag, "float") &&
	     (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)))) {
		if (tag_is(tag, "float") && json_object_is_type(o, json_type_int)) {
			double d = (double)json_object_get_int64(o);

			json_object_put(o);
			o = pgkeel_json_new_double(d);
		}
		*out = o;
		return true;
	}
	json_object_put(o);
	return yl_fail(y, &ev->start_mark, "cannot use tag %s for value '%.*s'", (const char *)tag,
	               (int)(n > 60 ? 60 : n), v);
}

static void anchor_store(struct yl *y, const yaml_char_t *anchor, json_object *node)
{
	if (anchor == NULL)
		return;
	/* a redefined anchor was refused when its node started (yl_node) */
	json_object_object_add(y->anchors, (const char *)anchor,
	                       node ? json_object_get(node) : NULL);
}

static long count_nodes(json_object *o)
{
	long n = 1;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			n += count_nodes(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			n += count_nodes(json_object_array_get_idx(o, i));
	}
	return n;
}

/*
 * Apply `<<` as PyYAML does: the merged pairs come first (for a list of
 * mappings, the later ones first so that earlier ones win), then the
 * explicit pairs; a later pair overrides an earlier one in place.
 */
static bool add_pairs(struct yl *y, json_object *out, json_object *m, const yaml_mark_t *mark)
{
	if (!json_object_is_type(m, json_type_object))
		return yl_fail(y, mark, "merge key '<<' needs a mapping or a list of mappings");
	json_object_object_foreach(m, k, v)
	{
		json_object *copy = NULL;

		if (v != NULL && json_object_deep_copy(v, &copy, NULL) != 0)
			return yl_fail(y, mark, "out of memory");
		json_object_object_add(out, k, copy);
	}
	return true;
}

static bool apply_merges(struct yl *y, json_object **map, json_object *merges,
                         const yaml_mark_t *mark)
{
	json_object *out = json_object_new_object();

	for (size_t i = 0; i < json_object_array_length(merges); i++) {
		json_object *src = json_object_array_get_idx(merges, i);

		if (json_object_is_type(src, json_type_array)) {
			for (size_t j = json_object_array_length(src); j > 0; j--)
				if (!add_pairs(y, out, json_object_array_get_idx(src, j - 1), mark))
					goto fail;
		} else if (!add_pairs(y, out, src, mark)) {
			goto fail;
		}
	}
	json_object_object_foreach(*map, k, v)
	{
		json_object_object_add(out, k, json_object_get(v));
	}
	json_object_put(*map);
	*map = out;
	return true;
fail:
	json_object_put(out);
	return false;
}

static bool yl_mapping(struct yl *y, yaml_event_t *start, const char *path, int depth,
                       json_object **out)
{
	json_object *map = json_object_new_object();
	json_object *merges = NULL;
	json_object *keypos = json_object_new_object();
	yaml_char_t *anchor =
	    start->data.mapping_start.anchor
	        ? (yaml_char_t *)pgkeel_strdup((const char *)start->data.mapping_start.anchor)
	        : NULL;
	yaml_mark_t start_mark = start->start_mark;
	bool ok = true;

	for (;;) {
		yaml_event_t kev, vev;
		char *key, *sub;
		json_object *val = NULL;
		bool is_merge;

		if (!yl_next(y, &kev)) {
			ok = false;
			break;
		}
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			ok = yl_fail(y, &kev.start_mark, "mapping keys must be scalars");
			yaml_event_delete(&kev);
			break;
		}
		if (memchr(kev.data.scalar.value, '\0', kev.data.scalar.length) != NULL) {
			ok = yl_fail(y, &kev.start_mark, "NUL character in a key");
			yaml_event_delete(&kev);
			break;
		}
		key = pgkeel_strdup((const char *)kev.data.scalar.value);
		is_merge =
		    kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(key, "<<") == 0;
		if (!is_merge && json_object_object_get_ex(map, key, NULL)) {
			json_object *first = json_object_object_get(keypos, key);

			ok = yl_fail(y, &kev.start_mark, "duplicate key '%s'%s%s%s", key,
			             path[0] ? " in '" : "", path, path[0] ? "'" : "");
			if (first != NULL) {
				size_t l = strlen(y->err);

				(void)pgkeel_fmt(y->err + l, y->errlen - l, " (first at %s)",
				                 json_object_get_string(first));
			}
			yaml_event_delete(&kev);
			free(key);
			break;
		}
		{
			char p[PATH_MAX + 64];

			if (pgkeel_fmt(p, sizeof(p), "%s:%zu:%zu", y->file, kev.start_mark.line + 1,
			               kev.start_mark.column + 1))
				json_object_object_add(keypos, key, json_object_new_string(p));
			if (y->positions != NULL) {
				char *at =
				    pgkeel_asprintf("@%s%s%s", path, path[0] ? "." : "", key);

				yl_record(y, at, &kev.start_mark);
				free(at);
			}
		}
		yaml_event_delete(&kev);
		sub = path_join(path, key);
		if (!yl_next(y, &vev)) {
			free(key);
			free(sub);
			ok = false;
			break;
		}
		ok = yl_node(y, &vev, sub, depth + 1, &val);
		free(sub);
		if (!ok) {
			free(key);
			break;
		}
		if (is_merge) {
			if (merges == NULL)
				merges = json_object_new_array();
			json_object_array_add(merges, val);
		} else {
			json_object_object_add(map, key, val);
		}
		free(key);
	}
	if (ok && merges != NULL)
		ok = apply_merges(y, &map, merges, &start_mark);
	json_object_put(merges);
	json_object_put(keypos);
	if (!ok) {
		json_object_put(map);
		free(anchor);
		return false;
	}
	anchor_store(y, anchor, map);
	free(anchor);
	*out = map;
	return true;
}

static bool yl_sequence(struct yl *y, yaml_event_t *start, const char *path, int depth,
                        json_object **out)
{
	json_object *arr = json_object_new_array();
	char *anchor = start->data.sequence_start.anchor
	                   ? pgkeel_strdup((const char *)start->data.sequence_start.anchor)
	                   : NULL;
	bool ok = true;

	for (size_t i = 0;; i++) {
		yaml_event_t ev;
		json_object *val = NULL;
		char *sub;

		if (!yl_next(y, &ev)) {
			ok = false;
			break;
		}
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		sub = pgkeel_asprintf("%s[%zu]", path, i);
		ok = yl_node(y, &ev, sub, depth + 1, &val);
		free(sub);
		if (!ok)
			break;
		json_object_array_add(arr, val);
	}
	if (!ok) {
		json_object_put(arr);
		free(anchor);
		return false;
	}
	anchor_store(y, (const yaml_char_t *)anchor, arr);
	free(anchor);
	*out = arr;
	return true;
}

/* Consumes `ev` (deletes it). */
static bool yl_node(struct yl *y, yaml_event_t *ev, const char *path, int depth, json_object **out)
{
	bool ok;

	*out = NULL;
	if (depth > YL_MAX_DEPTH) {
		ok = yl_fail(y, &ev->start_mark, "nesting deeper than %d levels", YL_MAX_DEPTH);
		yaml_event_delete(ev);
		return ok;
	}
	yl_record(y, path, &ev->start_mark);
	{
		const yaml_char_t *anchor =
		    ev->type == YAML_SCALAR_EVENT           ? ev->data.scalar.anchor
		    : ev->type == YAML_MAPPING_START_EVENT  ? ev->data.mapping_start.anchor
		    : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
		                                            : NULL;

		if (anchor != NULL &&
		    json_object_object_get_ex(y->anchors, (const char *)anchor, NULL)) {
			ok = yl_fail(y, &ev->start_mark, "found duplicate anchor '&%s'",
			             (const char *)anchor);
			yaml_event_delete(ev);
			return ok;
		}
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		ok = yl_scalar(y, ev, out);
		if (ok && ev->data.scalar.anchor != NULL)
			anchor_store(y, ev->data.scalar.anchor, *out);
		break;
	case YAML_MAPPING_START_EVENT:
		ok = yl_mapping(y, ev, path, depth, out);
		break;
	case YAML_SEQUENCE_START_EVENT:
		ok = yl_sequence(y, ev, path, depth, out);
		break;
	case YAML_ALIAS_EVENT: {
		json_object *target;
		const char *name = (const char *)ev->data.alias.anchor;

		if (!json_object_object_get_ex(y->anchors, name, &target)) {
			ok = yl_fail(y, &ev->start_mark, "unknown alias '*%s'", name);
			break;
		}
		y->alias_nodes += target ? count_nodes(target) : 1;
		if (y->alias_nodes > YL_MAX_ALIAS_NODES) {
			ok = yl_fail(y, &ev->start_mark, "aliases expand to too many nodes");
			break;
		}
		ok = target == NULL || json_object_deep_copy(target, out, NULL) == 0;
		if (!ok)
			yl_fail(y, &ev->start_mark, "out of memory");
		break;
	}
	default:
		ok = yl_fail(y, &ev->start_mark, "unexpected YAML event");
		break;
	}
	yaml_event_delete(ev);
	return ok;
}

bool pgkeel_yaml_parse(const char *text, size_t len, const char *filename, json_object **out,
                       json_object *positions, char *err, size_t errlen)
{
	struct yl y = {.file = filename, .positions = positions, .err = err, .errlen = errlen};
	yaml_event_t ev;
	json_object *root = NULL;
	bool ok = false, have_doc = false;

	*out = NULL;
	if (!yaml_parser_initialize(&y.parser))
		return yl_fail(&y, NULL, "out of memory");
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	y.anchors = json_object_new_object();

	for (;;) {
		if (!yl_next(&y, &ev))
			goto done;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			if (have_doc) {
				yl_fail(&y, &ev.start_mark,
				        "expected a single document, found a second one");
				yaml_event_delete(&ev);
				goto done;
			}
			have_doc = true;
			yaml_event_delete(&ev);
			if (!yl_next(&y, &ev))
				goto done;
			if (ev.type == YAML_DOCUMENT_END_EVENT) {
				yaml_event_delete(&ev);
				continue;
			}
			if (!yl_node(&y, &ev, "", 0, &root))
				goto done;
			continue;
		}
		yl_fail(&y, &ev.start_mark, "unexpected YAML event");
		yaml_event_delete(&ev);
		goto done;
	}
	*out = root;
	root = NULL;
	ok = true;
done:
	json_object_put(root);
	json_object_put(y.anchors);
	yaml_parser_delete(&y.parser);
	return ok;
}

bool pgkeel_yaml_load_file(const char *path, json_object **out, json_object *positions, char *err,
                           size_t errlen)
{
	/* O_NONBLOCK: a FIFO named as the config must not hang us (refused below) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;
	size_t have = 0;
	bool ok;

	*out = NULL;
	if (fd < 0) {
		(void)pgkeel_fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		(void)pgkeel_fmt(err, errlen, "%s: not a regular file", path);
		close(fd);
		return false;
	}
	if (st.st_size > YL_MAX_FILE) {
		(void)pgkeel_fmt(err, errlen, "%s: file too large (%lld bytes)", path,
		                 (long long)st.st_size);
		close(fd);
		return false;
	}
	buf = pgkeel_xcalloc((size_t)st.st_size + 1, 1);
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)pgkeel_fmt(err, errlen, "%s: cannot read: %s", path,
			                 n < 0 ? strerror(errno) : "unexpected end of file");
			close(fd);
			free(buf);
			return false;
		}
		have += (size_t)n;
	}
	close(fd);
	ok = pgkeel_yaml_parse(buf, have, path, out, positions, err, errlen);
	free(buf);
	return ok;
}

const char *pgkeel_yaml_position(json_object *positions, const char *path)
{
	json_object *p;

	if (positions == NULL || !json_object_object_get_ex(positions, path, &p))
		return NULL;
	return json_object_get_string(p);
}
