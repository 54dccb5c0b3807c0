/*
 * Patroni's reload_config as pg_conf.h describes it: the wanted server
 * parameters against pg_settings, and the value comparison it rests on.
 * Read against Patroni's patroni/postgresql/config.py (reload_config,
 * _handle_wal_buffers) and utils.py (strtol, strtod, convert_to_base_unit,
 * parse_int, parse_real, parse_bool, compare_values).
 */
#include "autoconf.h"

#include "pg_conf.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "pg_conf_internal.h"
#include "util.h"

/* --------------------------------------------------------- Python numbers */

static const char *skip_space(const char *s)
{
	while (*s != '\0' && isspace((unsigned char)*s))
		s++;
	return s;
}

/* str.strip(): a copy without leading and trailing whitespace. */
char *pgkeel_pgc_strip_dup(const char *s)
{
	const char *b = skip_space(s);
	size_t n = strlen(b);

	while (n > 0 && isspace((unsigned char)b[n - 1]))
		n--;
	return pgkeel_dup_bytes(b, n);
}

/*
 * Patroni's strtol(value, strict): the longest prefix matching its HEX, OCT
 * or DEC regex (in that order), on the stripped text.  *rest points into s.
 */
static bool py_strtol(const char *s, double *val, const char **rest)
{
	const char *p = s;
	bool neg = false;
	const char *d;
	long long v = 0;
	int base;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && p[1] == 'x' && isxdigit((unsigned char)p[2])) {
		base = 16;
		d = p + 2;
	} else if (p[0] == '0') {
		base = 8;
		d = p + 1;
	} else if (p[0] >= '1' && p[0] <= '9') {
		base = 10;
		d = p;
	} else {
		return false;
	}
	for (;; d++) {
		int digit;

		if (base == 16 && isxdigit((unsigned char)*d))
			digit = isdigit((unsigned char)*d) ? *d - '0'
			                                   : tolower((unsigned char)*d) - 'a' + 10;
		else if (base == 8 && *d >= '0' && *d <= '7')
			digit = *d - '0';
		else if (base == 10 && isdigit((unsigned char)*d))
			digit = *d - '0';
		else
			break;
		if (v > (LLONG_MAX - digit) / base)
			v = LLONG_MAX; /* far beyond any parameter */
		else
			v = v * base + digit;
	}
	*val = neg ? -(double)v : (double)v;
	*rest = d;
	return true;
}

/* Patroni's strtod: regex ^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? on the stripped text. */
static bool py_strtod(const char *s, double *val, const char **rest)
{
	const char *p = s, *end;
	size_t d1;
	char *num;

	if (*p == '+' || *p == '-')
		p++;
	for (d1 = 0; isdigit((unsigned char)p[d1]); d1++)
		;
	if (p[d1] == '.' && isdigit((unsigned char)p[d1 + 1])) {
		end = p + d1 + 1;
		while (isdigit((unsigned char)*end))
			end++;
	} else if (d1 > 0) {
		end = p + d1;
	} else {
		return false;
	}
	if (*end == 'e' || *end == 'E') {
		const char *e = end + 1;

		if (*e == '+' || *e == '-')
			e++;
		if (isdigit((unsigned char)*e)) {
			while (isdigit((unsigned char)*e))
				e++;
			end = e;
		}
	}
	num = pgkeel_dup_bytes(s, (size_t)(end - s));
	*val = strtod(num, NULL);
	free(num);
	*rest = end;
	return true;
}

/* Python's round-half-even rint. */
static double py_rint(double x)
{
	double t, diff;

	if (!(x < 4e18 && x > -4e18))
		return x;
	t = (double)(long long)x; /* toward zero */
	if (x < 0) {
		if (t != x)
			t -= 1; /* floor */
	}
	diff = x - t;
	if (diff > 0.5)
		return t + 1;
	if (diff < 0.5)
		return t;
	return (long long)t % 2 == 0 ? t : t + 1;
}

struct unit_factor {
	const char *unit;
	double factor; /* in the base unit of its family */
	const char *round_to;
};

/* Patroni's convert[base][unit] is factor(unit) / factor(base). */
static const struct unit_factor mem_units[] = {
    {"B", 1, NULL},
    {"kB", 1024.0, "B"},
    {"MB", 1024.0 * 1024, "kB"},
    {"GB", 1024.0 * 1024 * 1024, "MB"},
    {"TB", 1024.0 * 1024 * 1024 * 1024, "GB"},
};
/* in microseconds, so that every factor is exact and each quotient rounds once, as Python's */
static const struct unit_factor time_units[] = {
    {"us", 1, NULL},   {"ms", 1e3, "us"},   {"s", 1e6, "ms"},
    {"min", 6e7, "s"}, {"h", 3.6e9, "min"}, {"d", 8.64e10, "h"},
};

static const struct unit_factor *unit_find(const struct unit_factor *tab, size_t n, const char *u)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].unit, u) == 0)
			return &tab[i];
	return NULL;
}

/* value in `unit` expressed in base unit bu (B, kB, MB, ms, s, min) divided by base_value. */
static bool convert_known(double value, const char *unit, const char *bu, double base_value,
                          double *out)
{
	const struct unit_factor *tab = mem_units, *b, *u;
	size_t n = PGKEEL_ARRAY_LEN(mem_units);

	if (unit_find(tab, n, bu) == NULL) {
		tab = time_units;
		n = PGKEEL_ARRAY_LEN(time_units);
	}
	b = unit_find(tab, n, bu);
	u = unit_find(tab, n, unit);
	if (b == NULL || u == NULL ||
	    (strcmp(bu, "us") == 0 || strcmp(bu, "h") == 0 || strcmp(bu, "d") == 0 ||
	     strcmp(bu, "GB") == 0 || strcmp(bu, "TB") == 0))
		return false; /* Patroni's table has no such base unit */
	if (base_value == 0)
		return false;
	value *= (u->factor / b->factor) / base_value;
	if (u->round_to != NULL) {
		const struct unit_factor *r = unit_find(tab, n, u->round_to);
		double mult = r->factor / b->factor;

		value = py_rint(value / mult) * mult;
	}
	*out = value;
	return true;
}

/*
 * Patroni's convert_to_base_unit: value in `unit` expressed in base_unit,
 * which may carry a multiplier ("8kB", "16MB").  False when not convertible.
 */
static bool py_convert(double value, const char *unit, const char *base_unit, double *out)
{
	char *st;
	const char *rest;
	double bv = 1;
	bool ok;

	if (base_unit == NULL || base_unit[0] == '\0')
		return false;
	if (unit_find(mem_units, PGKEEL_ARRAY_LEN(mem_units), base_unit) != NULL ||
	    unit_find(time_units, PGKEEL_ARRAY_LEN(time_units), base_unit) != NULL)
		return convert_known(value, unit, base_unit, 1, out);
	/* strtol(base_unit, strict=False): the number, or 1 and the whole (stripped) text */
	st = pgkeel_pgc_strip_dup(base_unit);
	if (!py_strtol(st, &bv, &rest)) {
		bv = 1;
		rest = st;
	}
	ok = convert_known(value, unit, rest, bv, out);
	free(st);
	return ok;
}

/* Patroni's parse_int(value, base_unit). */
bool pgkeel_pgc_py_parse_int(const char *value, const char *base_unit, double *out)
{
	char *s = pgkeel_pgc_strip_dup(value);
	const char *rest = s;
	double v;
	bool ok = py_strtol(s, &v, &rest);
	char *unit;

	if ((!ok && rest[0] == '.') || (rest[0] == '.' || rest[0] == 'e' || rest[0] == 'E')) {
		rest = s;
		ok = py_strtod(s, &v, &rest);
	}
	if (!ok) {
		free(s);
		return false;
	}
	unit = pgkeel_pgc_strip_dup(rest);
	free(s);
	if (unit[0] == '\0') {
		*out = py_rint(v);
	} else if (py_convert(v, unit, base_unit, &v)) {
		*out = py_rint(v);
	} else {
		ok = false;
	}
	free(unit);
	return ok;
}

/* Patroni's parse_real(value, base_unit). */
static bool py_parse_real(const char *value, const char *base_unit, double *out)
{
	char *s = pgkeel_pgc_strip_dup(value);
	const char *rest;
	double v;
	char *unit;
	bool ok;

	if (!py_strtod(s, &v, &rest)) {
		free(s);
		return false;
	}
	unit = pgkeel_pgc_strip_dup(rest);
	free(s);
	ok = unit[0] == '\0' ? (*out = v, true) : py_convert(v, unit, base_unit, out);
	free(unit);
	return ok;
}

/* Patroni's parse_bool: 1 true, 0 false, -1 neither. */
int pgkeel_pgc_py_parse_bool(const char *s)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static bool str_equal_lower(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool pgkeel_pg_value_equal(const char *vartype, const char *unit, const char *old_value,
                           json_object *new_value)
{
	char *nv;
	bool eq = false;
	double a, b;

	if (old_value == NULL || new_value == NULL)
		return false;
	if (unit != NULL && unit[0] == '\0')
		unit = NULL;
	nv = pgkeel_pg_value_text(new_value);
	if (vartype == NULL)
		vartype = "string";
	if (strcmp(vartype, "bool") == 0) {
		int x = pgkeel_pgc_py_parse_bool(old_value), y = pgkeel_pgc_py_parse_bool(nv);

		eq = x >= 0 && y >= 0 && x == y;
	} else if (strcmp(vartype, "integer") == 0) {
		eq = pgkeel_pgc_py_parse_int(old_value, NULL, &a) &&
		     pgkeel_pgc_py_parse_int(nv, unit, &b) && a == b;
	} else if (strcmp(vartype, "real") == 0) {
		eq = py_parse_real(old_value, NULL, &a) && py_parse_real(nv, unit, &b) && a == b;
	} else if (strcmp(vartype, "enum") == 0) {
		eq = str_equal_lower(old_value, nv);
	} else {
		eq = strcmp(old_value, nv) == 0;
	}
	free(nv);
	return eq;
}

/* ------------------------------------------------------------ classification */

static void change_add(struct pgkeel_pg_changes *c, const char *name, const char *old_value,
                       const char *new_value, bool restart)
{
	struct pgkeel_pg_change *ch;
	char *line;

	c->v = pgkeel_xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	ch = &c->v[c->n++];
	ch->name = pgkeel_strdup(name);
	ch->old_value = pgkeel_strdup(old_value);
	ch->new_value = pgkeel_strdup(new_value);
	ch->restart = restart;
	line = pgkeel_asprintf("Changed %s from %s to %s%s", name, old_value, new_value,
	                       restart ? " (restart might be required)" : "");
	json_object_array_add(c->log_lines, json_object_new_string(line));
	free(line);
}

static const struct pgkeel_pg_conf_setting *row_find(const struct pgkeel_pg_conf_setting *rows,
                                                     size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].name != NULL && strcasecmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

static bool parse_int_text(const char *s, const char *unit, double *out)
{
	return s != NULL &&
	       pgkeel_pgc_py_parse_int(s, unit != NULL && unit[0] != '\0' ? unit : NULL, out);
}

/*
 * _handle_wal_buffers: -1 means the default computed from shared_buffers
 * and the segment size; a wanted value equal to the running one is no change.
 */
static void handle_wal_buffers(const struct pgkeel_pg_conf_setting *rows, size_t nrows,
                               json_object *changes)
{
	const struct pgkeel_pg_conf_setting *bs = row_find(rows, nrows, "wal_block_size");
	const struct pgkeel_pg_conf_setting *ss = row_find(rows, nrows, "wal_segment_size");
	const struct pgkeel_pg_conf_setting *sb = row_find(rows, nrows, "shared_buffers");
	const struct pgkeel_pg_conf_setting *wb = row_find(rows, nrows, "wal_buffers");
	double block, seg, seg_unit = 1, shared, def, nv, ov;
	json_object *want;
	char *t;
	bool ok;

	if (bs == NULL || ss == NULL || sb == NULL || wb == NULL || wb->setting == NULL ||
	    !parse_int_text(bs->setting, NULL, &block) || block == 0 ||
	    !parse_int_text(ss->setting, NULL, &seg) || !parse_int_text(sb->setting, NULL, &shared))
		return;
	if (ss->unit != NULL && isdigit((unsigned char)ss->unit[0]) &&
	    !parse_int_text(ss->unit, "B", &seg_unit))
		return;
	seg = seg * seg_unit / block;
	def = shared / 32 > 8 ? shared / 32 : 8;
	if (seg < def)
		def = seg;
	want = pgkeel_pgc_ci_get(changes, "wal_buffers");
	t = pgkeel_json_truthy(want) ? pgkeel_pg_value_text(want) : pgkeel_strdup("-1");
	if (strcmp(t, "-1") == 0) {
		nv = def;
		ok = true;
	} else {
		ok = parse_int_text(t, wb->unit, &nv);
	}
	free(t);
	if (strcmp(wb->setting, "-1") == 0)
		ov = def;
	else if (!parse_int_text(wb->setting, wb->unit, &ov))
		return;
	if (ok && nv == ov)
		pgkeel_pgc_ci_del(changes, "wal_buffers");
}

void pgkeel_pg_classify(json_object *wanted, json_object *previous,
                        const struct pgkeel_pg_conf_setting *rows, size_t nrows,
                        bool use_unix_socket, struct pgkeel_pg_changes *out)
{
	json_object *changes = json_object_new_object();

	memset(out, 0, sizeof(*out));
	out->log_lines = json_object_new_array();
	out->warnings = json_object_new_array();
	out->removed = json_object_new_array();

	json_object_object_foreach(wanted, wk, wv)
	{
		if (!pgkeel_pgc_is_recovery_param(wk))
			json_object_object_add(changes, wk, pgkeel_pgc_jdup(wv));
	}
	if (json_object_is_type(previous, json_type_object)) {
		json_object_object_foreach(previous, pk, pv)
		{
			(void)pv;
			if (!pgkeel_pgc_ci_has(changes, pk) && !pgkeel_pgc_is_recovery_param(pk))
				json_object_object_add(changes, pk, NULL);
		}
	}
	if (json_object_object_length(changes) == 0)
		goto done;
	if (pgkeel_pgc_ci_has(changes, "wal_buffers"))
		handle_wal_buffers(rows, nrows, changes);

	for (size_t i = 0; i < nrows; i++) {
		const struct pgkeel_pg_conf_setting *r = &rows[i];
		const char *key;
		json_object *nv;
		char *nt;
		bool restart;

		if (r->name == NULL || (r->context != NULL && strcmp(r->context, "internal") == 0))
			continue;
		key = pgkeel_pgc_ci_key(changes, r->name);
		if (key == NULL)
			continue;
		nv = json_object_get(json_object_object_get(changes, key));
		json_object_object_del(changes, key);
		if (nv != NULL && pgkeel_pg_value_equal(r->vartype, r->unit, r->setting, nv)) {
			json_object_put(nv);
			continue;
		}
		nt = pgkeel_pg_value_text(nv);
		json_object_put(nv);
		restart = r->context != NULL && strcmp(r->context, "postmaster") == 0;
		out->changed = true;
		if (restart) {
			out->pending_restart = true;
			if ((use_unix_socket && strcmp(r->name, "unix_socket_directories") == 0) ||
			    strcmp(r->name, "listen_addresses") == 0 ||
			    strcmp(r->name, "port") == 0)
				out->local_address_changed = true;
		}
		change_add(out, r->name, r->setting ? r->setting : "None", nt, restart);
		free(nt);
	}

	/* not in pg_settings: custom (dotted) parameters, or invalid ones */
	{
		size_t n = (size_t)json_object_object_length(changes), i = 0;
		const char **keys = pgkeel_xcalloc(n + 1, sizeof(*keys));

		json_object_object_foreach(changes, ck, cv)
		{
			(void)cv;
			keys[i++] = ck;
		}
		for (i = 0; i < n; i++) {
			const char *param = keys[i];
			json_object *value = json_object_object_get(changes, param);
			bool is_removed = value == NULL; /* removed, or wanted as null */

			if (strchr(param, '.') != NULL) {
				json_object *old = pgkeel_pgc_ci_get(previous, param);
				char *vt = is_removed ? pgkeel_strdup("None")
				                      : pgkeel_pg_value_text(value);
				char *ot = pgkeel_pgc_ci_has(previous, param)
				               ? pgkeel_pg_value_text(old)
				               : pgkeel_strdup("None");

				if (is_removed || !pgkeel_pgc_ci_has(previous, param) ||
				    strcmp(vt, ot) != 0) {
					change_add(out, param, ot, vt, false);
					out->changed = true;
				}
				free(vt);
				free(ot);
			} else if (pgkeel_pgc_ci_has(wanted, param)) {
				char *w = pgkeel_asprintf(
				    "Removing invalid parameter `%s` from postgresql.parameters",
				    param);

				json_object_array_add(out->warnings, json_object_new_string(w));
				free(w);
				json_object_array_add(out->removed, json_object_new_string(param));
				pgkeel_pgc_ci_del(wanted, param);
			}
		}
		free(keys);
	}
done:
	json_object_put(changes);
}

void pgkeel_pg_changes_clear(struct pgkeel_pg_changes *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].name);
		free(c->v[i].old_value);
		free(c->v[i].new_value);
	}
	free(c->v);
	json_object_put(c->log_lines);
	json_object_put(c->warnings);
	json_object_put(c->removed);
	memset(c, 0, sizeof(*c));
}
