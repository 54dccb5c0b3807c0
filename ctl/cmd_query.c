/*
 * pgkeelctl dsn and query: a member's PostgreSQL, found in the DCS the way
 * patronictl 3.0.2 finds it.
 *
 * The member: -m NAME (any role), else the first member -r ROLE selects
 * (default: the leader key's holder), in the order the DCS lists them.  Its
 * address is host and port of `conn_url` (port 5432 when absent), or the
 * `conn_kwargs` object newer Patroni versions publish.
 *
 * dsn prints "host=H port=P".
 *
 * query connects with libpq as patronictl does with psycopg2: those
 * parameters (the database only with -d), user -U, password asked with
 * --password, fallback_application_name "Patroni ctl", connect_timeout 5.
 * For -r primary/master the server must not be in recovery, for -r
 * replica/standby/standby-leader it must be (SELECT pg_is_in_recovery());
 * otherwise "No connection to role=R is available".  The session is in
 * autocommit mode, as Patroni sets psycopg2's: the text is sent as one
 * simple query (several statements run in one implicit transaction) and
 * the last statement's rows are printed.
 *
 * Output: tsv by default (--delimiter, default TAB; a header line of the
 * column names, then one line per row with values as Python's str() of
 * psycopg2's types: True/False, None, 1.5, Decimal, datetime), or pretty,
 * json, yaml.  A failure is a row "<time> ERROR, SQLSTATE: <code or
 * message>" (or "<time> No connection to ... is available") and exit status
 * 1 (patronictl exits 0).  -W / -w S repeats every 2 / S seconds until
 * interrupted, reading the DCS and connecting again each time.
 */
#include "autoconf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "ctl.h"
#include "json.h"
#include "pg_bootstrap.h"

/* ------------------------------------------------------------ the member */

/* Options shared by dsn and query. */
struct target {
	const char *role_name; /* as given (messages); "leader" or "any" by default */
	enum ctl_role role;
	const char *member;
};

/* -r and -m as patronictl resolves them; false after an error. */
static bool target_resolve(const struct ctl_command *cmd, const char *role, const char *member,
                           struct target *t, int *rc)
{
	t->member = member;
	if (member != NULL && role != NULL) {
		*rc = ctl_error("--role and --member are mutually exclusive options");
		return false;
	}
	t->role_name = role != NULL ? role : member != NULL ? "any" : "leader";
	if (!ctl_role_parse(t->role_name, &t->role)) {
		*rc = ctl_usage_error(
		    cmd,
		    "Invalid value for '--role' / '-r': '%s' is not one of 'leader', "
		    "'primary', 'standby-leader', 'replica', 'standby', 'any', "
		    "'master'.",
		    t->role_name);
		return false;
	}
	return true;
}

/* patronictl's get_any_member(); NULL when none fits. */
static const struct pgkeel_member *target_member(const struct pgkeel_cluster *c,
                                                 const struct target *t)
{
	const struct pgkeel_member **sel = NULL, *m = NULL;
	int n = ctl_select_members(c, NULL, 0, t->role, &sel);

	for (int i = 0; i < n && m == NULL; i++)
		if (t->member == NULL || strcmp(sel[i]->name, t->member) == 0)
			m = sel[i];
	free(sel);
	return m;
}

/* A scalar of conn_kwargs as text (Python's str() of a str or an int); NULL otherwise. */
static char *kwarg_text(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return pgkeel_strdup(json_object_get_string(v));
	case json_type_int:
		return pgkeel_asprintf("%lld", (long long)json_object_get_int64(v));
	case json_type_null:
		return pgkeel_strdup("None");
	default:
		return pgkeel_json_compact(v);
	}
}

/*
 * The member's connection parameters (Member.conn_kwargs()): a JSON object
 * {host, port, dbname, ...}.  NULL when the member publishes no usable
 * address.
 */
static json_object *conn_kwargs(const struct pgkeel_member *m)
{
	json_object *kw = NULL, *o;
	struct pgkeel_pg_source src;
	int64_t port;

	if (json_object_object_get_ex(m->data, "conn_kwargs", &kw) &&
	    json_object_is_type(kw, json_type_object) && json_object_object_length(kw) > 0) {
		o = json_object_new_object();
		json_object_object_add(o, "host", NULL);
		json_object_object_add(o, "port", NULL);
		json_object_object_add(o, "dbname", NULL);
		json_object_object_foreach(kw, k, v)
		{
			json_object_object_add(o, k, json_object_get(v));
		}
		return o;
	}
	if (m->d.conn_url == NULL || !pgkeel_pg_source_from_url(m->d.conn_url, &src) ||
	    !pgkeel_parse_int64(src.port, &port))
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "host", json_object_new_string(src.host));
	json_object_object_add(o, "port", json_object_new_int64(port));
	json_object_object_add(o, "dbname", json_object_new_string(src.dbname));
	return o;
}

/* Read the cluster and pick the member; NULL after printing an error (*cluster unref'd). */
static const struct pgkeel_member *find_member(struct ctl *ctl, const char *scope,
                                               const struct target *t,
                                               struct pgkeel_cluster **cluster)
{
	*cluster = NULL;
	if (!ctl_dcs(ctl, scope) || (*cluster = ctl_load(ctl)) == NULL)
		return NULL;
	return target_member(*cluster, t);
}

/* ------------------------------------------------------------ dsn */

static const struct option dsn_options[] = {
    {"role", required_argument, NULL, 'r'},
    {"member", required_argument, NULL, 'm'},
    {0},
};

static int run_dsn(struct ctl *ctl, int argc, char **argv)
{
	const char *role = NULL, *member = NULL, *scope;
	struct pgkeel_cluster *c;
	const struct pgkeel_member *m;
	struct target t;
	json_object *kw;
	int r, rc = CTL_FAIL;

	while ((r = ctl_getopt(&ctl_cmd_dsn, argc, argv, "r:m:")) != -1) {
		if (r == 'r')
			role = optarg;
		else if (r == 'm')
			member = optarg;
		else
			return ctl_getopt_exit(r);
	}
	if (argc - optind > 1)
		return ctl_usage_error(&ctl_cmd_dsn, "Got unexpected extra argument (%s)",
		                       argv[optind + 1]);
	if (!target_resolve(&ctl_cmd_dsn, role, member, &t, &rc))
		return rc;
	if ((scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL)) == NULL)
		return CTL_FAIL;
	m = find_member(ctl, scope, &t, &c);
	if (c == NULL)
		return CTL_FAIL;
	if (m == NULL || (kw = conn_kwargs(m)) == NULL) {
		rc = ctl_error("Can not find a suitable member");
	} else {
		json_object *h = NULL, *p = NULL;
		char *hs, *ps;

		json_object_object_get_ex(kw, "host", &h);
		json_object_object_get_ex(kw, "port", &p);
		hs = kwarg_text(h);
		ps = kwarg_text(p);
		fprintf(ctl->out, "host=%s port=%s\n", hs, ps);
		free(hs);
		free(ps);
		json_object_put(kw);
		rc = CTL_OK;
	}
	pgkeel_cluster_unref(c);
	return rc;
}

const struct ctl_command ctl_cmd_dsn = {
    .name = "dsn",
    .run = run_dsn,
    .args = "[CLUSTER] [-r ROLE | -m MEMBER]",
    .summary = "Generate a dsn for the provided member, defaults to a dsn of the leader",
    .options = dsn_options,
    .help = "  -r, --role ROLE       Give a dsn of any member with this role (leader, primary,\n"
            "                        standby-leader, replica, standby, any, master)\n"
            "  -m, --member MEMBER   Generate a dsn for this member\n",
};

/* ------------------------------------------------------------ values as psycopg2 gives them */

/* PostgreSQL type oids psycopg2 turns into Python types. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_OID = 26,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_DATE = 1082,
	OID_TIME = 1083,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_TIMETZ = 1266,
	OID_NUMERIC = 1700,
};

/* str(Decimal(text)) for numeric's output (digits, '.', sign; NaN, Infinity). */
static char *decimal_str(const char *s)
{
	const char *p = s, *dot;
	struct pgkeel_sbuf b = {0}, digits = {0};
	long exp = 0, adjusted;
	size_t nd;

	if (*p == '-')
		pgkeel_sbuf_putc(&b, *p++);
	if (strspn(p, "0123456789.") != strlen(p) || *p == '\0') {
		free(b.p);
		free(digits.p);
		return pgkeel_strdup(s); /* NaN, Infinity, -Infinity: as Decimal prints them */
	}
	dot = strchr(p, '.');
	for (const char *q = p; *q != '\0'; q++)
		if (*q != '.')
			pgkeel_sbuf_putc(&digits, *q);
	if (dot != NULL)
		exp = -(long)strlen(dot + 1);
	/* the coefficient without leading zeros (at least one digit) */
	{
		size_t lead = 0;

		while (lead + 1 < digits.len && digits.p[lead] == '0')
			lead++;
		memmove(digits.p, digits.p + lead, digits.len - lead + 1);
		digits.len -= lead;
	}
	nd = digits.len;
	adjusted = exp + (long)nd - 1;
	if (exp <= 0 && adjusted >= -6) {
		if (exp == 0) {
			pgkeel_sbuf_put(&b, digits.p, nd);
		} else if ((long)nd > -exp) {
			pgkeel_sbuf_put(&b, digits.p, nd - (size_t)-exp);
			pgkeel_sbuf_putc(&b, '.');
			pgkeel_sbuf_puts(&b, digits.p + nd - (size_t)-exp);
		} else {
			pgkeel_sbuf_puts(&b, "0.");
			for (long i = 0; i < -exp - (long)nd; i++)
				pgkeel_sbuf_putc(&b, '0');
			pgkeel_sbuf_put(&b, digits.p, nd);
		}
	} else {
		pgkeel_sbuf_putc(&b, digits.p[0]);
		if (nd > 1) {
			pgkeel_sbuf_putc(&b, '.');
			pgkeel_sbuf_puts(&b, digits.p + 1);
		}
		pgkeel_sbuf_printf(&b, "E%+ld", adjusted);
	}
	free(digits.p);
	return pgkeel_sbuf_finish(&b);
}

/*
 * str(datetime / time) for PostgreSQL's ISO output: the fraction padded to
 * 6 digits (none when zero), a "+HH" offset as "+HH:MM".  Other texts
 * (infinity, BC, another DateStyle) as they are.
 */
static char *datetime_str(const char *s)
{
	size_t n = strlen(s), i = 0, frac_at, frac_len = 0;
	struct pgkeel_sbuf b = {0};
	bool nonzero = false;

	/* [YYYY-MM-DD ]HH:MM:SS */
	if (n >= 19 && s[4] == '-' && s[10] == ' ')
		i = 11;
	if (n < i + 8 || s[i + 2] != ':' || s[i + 5] != ':' || strspn(s + i, "0123456789:") < 8)
		return pgkeel_strdup(s);
	i += 8;
	pgkeel_sbuf_put(&b, s, i);
	frac_at = i;
	if (s[i] == '.') {
		frac_len = strspn(s + i + 1, "0123456789");
		for (size_t k = 0; k < frac_len; k++)
			nonzero |= s[i + 1 + k] != '0';
		i += 1 + frac_len;
	}
	if (nonzero && frac_len <= 6) {
		pgkeel_sbuf_put(&b, s + frac_at, 1 + frac_len);
		for (size_t k = frac_len; k < 6; k++)
			pgkeel_sbuf_putc(&b, '0');
	}
	if (s[i] == '+' || s[i] == '-') {
		size_t ol = strlen(s + i);

		pgkeel_sbuf_puts(&b, s + i);
		if (ol == 3)
			pgkeel_sbuf_puts(&b, ":00");
	} else if (s[i] != '\0') {
		free(b.p);
		return pgkeel_strdup(s);
	}
	return pgkeel_sbuf_finish(&b);
}

/* Python's repr() of a float, from PostgreSQL's text. */
static json_object *float_value(const char *s)
{
	char *end;
	double d;

	if (strcmp(s, "NaN") == 0)
		return pgkeel_json_new_double(NAN);
	if (strcmp(s, "Infinity") == 0)
		return pgkeel_json_new_double(INFINITY);
	if (strcmp(s, "-Infinity") == 0)
		return pgkeel_json_new_double(-INFINITY);
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0')
		return json_object_new_string(s);
	return pgkeel_json_new_double(d);
}

/* str() of a value as psycopg2 hands it over (bool, None, int, float, Decimal, datetime). */
static char *cell_text(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	json_object *v;
	char *t;

	if (PQgetisnull(res, row, col))
		return pgkeel_strdup("None");
	switch (PQftype(res, col)) {
	case OID_BOOL:
		return pgkeel_strdup(s[0] == 't' ? "True" : "False");
	case OID_NUMERIC:
		return decimal_str(s);
	case OID_TIMESTAMP:
	case OID_TIMESTAMPTZ:
	case OID_TIME:
	case OID_TIMETZ:
		return datetime_str(s);
	case OID_FLOAT4:
	case OID_FLOAT8:
		v = float_value(s);
		t = json_object_is_type(v, json_type_string) ? pgkeel_strdup(s)
		                                             : pgkeel_json_compact(v);
		json_object_put(v);
		if (strcmp(t, "NaN") == 0 || strcmp(t, "Infinity") == 0 ||
		    strcmp(t, "-Infinity") == 0) {
			char *py = pgkeel_strdup(t[0] == 'N'   ? "nan"
			                         : t[0] == '-' ? "-inf"
			                                       : "inf");

			free(t);
			return py;
		}
		return t;
	default:
		return pgkeel_strdup(s);
	}
}

/*
 * The same value for json and yaml: JSON's own types where Python's json
 * and yaml would have them (bool, null, int, float), else the text above.
 */
static json_object *cell_value(const PGresult *res, int row, int col, const char *text)
{
	int64_t v;

	if (PQgetisnull(res, row, col))
		return NULL;
	switch (PQftype(res, col)) {
	case OID_BOOL:
		return json_object_new_boolean(PQgetvalue(res, row, col)[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		if (pgkeel_parse_int64(text, &v))
			return json_object_new_int64(v);
		break;
	case OID_FLOAT4:
	case OID_FLOAT8:
		return float_value(PQgetvalue(res, row, col));
	}
	return json_object_new_string(text);
}

/* ------------------------------------------------------------ query */

struct query_opts {
	struct target t;
	const char *command; /* -c, or the text of -f */
	const char *user, *dbname, *delimiter;
	char *password;
	enum ctl_format format;
	double watch;
};

/*
 * What one round produced: column names (none for a message row), the
 * cells as str() prints them, and as values for json and yaml.
 */
struct result {
	char **columns; /* NULL for a message row */
	size_t n_cols;
	char ***texts; /* n_rows x n_cols */
	size_t n_rows;
	json_object *rows; /* array of arrays of values */
	bool failed;
};

static void result_free(struct result *r)
{
	for (size_t i = 0; r->columns != NULL && i < r->n_cols; i++)
		free(r->columns[i]);
	free(r->columns);
	for (size_t y = 0; y < r->n_rows; y++) {
		for (size_t x = 0; x < r->n_cols; x++)
			free(r->texts[y][x]);
		free(r->texts[y]);
	}
	free(r->texts);
	json_object_put(r->rows);
	memset(r, 0, sizeof(*r));
}

/* The row patronictl prints instead of a result: [timestamp(0), message]. */
static void result_message(struct result *r, const char *fmt, ...) PGKEEL_PRINTF(2, 3);

static void result_message(struct result *r, const char *fmt, ...)
{
	char ts[64], *msg;
	json_object *row = json_object_new_array();
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	msg = pgkeel_xcalloc((size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	ctl_local_timestamp(ts, sizeof(ts));
	ts[19] = '\0';
	r->n_cols = 2;
	r->n_rows = 1;
	r->texts = pgkeel_xcalloc(1, sizeof(*r->texts));
	r->texts[0] = pgkeel_xcalloc(2, sizeof(**r->texts));
	r->texts[0][0] = pgkeel_strdup(ts);
	r->texts[0][1] = msg;
	json_object_array_add(row, json_object_new_string(ts));
	json_object_array_add(row, json_object_new_string(msg));
	r->rows = json_object_new_array();
	json_object_array_add(r->rows, row);
	r->failed = true;
}

/* A failed PGresult or connection: the SQLSTATE, else libpq's message. */
static void result_error(struct result *r, const PGresult *res, PGconn *conn)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	result_message(r, "ERROR, SQLSTATE: %s",
	               state != NULL && state[0] != '\0' ? state : PQerrorMessage(conn));
}

static void result_rows(struct result *r, const PGresult *res)
{
	r->n_cols = (size_t)PQnfields(res);
	r->n_rows = (size_t)PQntuples(res);
	r->columns = pgkeel_xcalloc(r->n_cols + 1, sizeof(*r->columns));
	for (size_t x = 0; x < r->n_cols; x++)
		r->columns[x] = pgkeel_strdup(PQfname(res, (int)x));
	r->texts = pgkeel_xcalloc(r->n_rows + 1, sizeof(*r->texts));
	r->rows = json_object_new_array();
	for (size_t y = 0; y < r->n_rows; y++) {
		json_object *row = json_object_new_array();

		r->texts[y] = pgkeel_xcalloc(r->n_cols + 1, sizeof(**r->texts));
		for (size_t x = 0; x < r->n_cols; x++) {
			r->texts[y][x] = cell_text(res, (int)y, (int)x);
			json_object_array_add(row, cell_value(res, (int)y, (int)x, r->texts[y][x]));
		}
		json_object_array_add(r->rows, row);
	}
}

static PGconn *connect_member(const struct query_opts *o, json_object *kw)
{
	const char *keys[32], *vals[32];
	char *owned[32];
	size_t n = 0, no = 0;
	PGconn *conn;

	json_object_object_foreach(kw, k, v)
	{
		if (n >= 24 || v == NULL || strcmp(k, "dbname") == 0)
			continue;
		keys[n] = k;
		vals[n++] = owned[no++] = kwarg_text(v);
	}
	if (o->dbname != NULL) {
		keys[n] = "dbname";
		vals[n++] = o->dbname;
	}
	if (o->user != NULL) {
		keys[n] = "user";
		vals[n++] = o->user;
	}
	if (o->password != NULL) {
		keys[n] = "password";
		vals[n++] = o->password;
	}
	keys[n] = "fallback_application_name";
	vals[n++] = "Patroni ctl";
	keys[n] = "connect_timeout";
	vals[n++] = "5";
	keys[n] = NULL;
	vals[n] = NULL;
	conn = PQconnectdbParams(keys, vals, 0);
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	return conn;
}

/* Is the role check passed?  -1 after an error (in *r). */
static int role_ok(PGconn *conn, enum ctl_role role, struct result *r)
{
	PGresult *res;
	bool in_recovery;

	if (role == CTL_ROLE_ANY || role == CTL_ROLE_LEADER)
		return 1;
	res = PQexec(conn, "SELECT pg_catalog.pg_is_in_recovery()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		result_error(r, res, conn);
		PQclear(res);
		return -1;
	}
	in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return in_recovery ? role != CTL_ROLE_PRIMARY : role == CTL_ROLE_PRIMARY;
}

/* patronictl's query_member(): connect, check the role, run the text. */
static void query_member(const struct pgkeel_cluster *c, const struct query_opts *o,
                         struct result *r)
{
	const struct pgkeel_member *m = target_member(c, &o->t);
	json_object *kw = m != NULL ? conn_kwargs(m) : NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int ok;

	if (kw == NULL)
		goto unavailable;
	conn = connect_member(o, kw);
	json_object_put(kw);
	if (PQstatus(conn) != CONNECTION_OK) {
		result_error(r, NULL, conn);
		goto out;
	}
	if ((ok = role_ok(conn, o->t.role, r)) < 0)
		goto out;
	if (ok == 0)
		goto unavailable;
	res = PQexec(conn, o->command);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		result_rows(r, res);
		break;
	case PGRES_COMMAND_OK:
		/* psycopg2's fetchall() after a statement without rows */
		result_message(r, "ERROR, SQLSTATE: %s", "no results to fetch");
		break;
	case PGRES_EMPTY_QUERY:
		result_message(r, "ERROR, SQLSTATE: %s", "can't execute an empty query");
		break;
	default:
		result_error(r, res, conn);
		break;
	}
	goto out;
unavailable:
	if (o->t.member != NULL)
		result_message(r, "No connection to member %s is available", o->t.member);
	else
		result_message(r, "No connection to role=%s is available", o->t.role_name);
out:
	PQclear(res);
	if (conn != NULL)
		PQfinish(conn);
}

/* patronictl's print_output(columns, rows, fmt=..., delimiter=...). */
static void print_result(struct ctl *ctl, const struct query_opts *o, const struct result *r)
{
	static const char *const fields[] = {"Field 1", "Field 2"}; /* PrettyTable's defaults */
	const char *const *columns = r->columns ? (const char *const *)r->columns : fields;

	if (o->format == CTL_FMT_JSON || o->format == CTL_FMT_YAML) {
		json_object *out = json_object_new_array();
		char *text;

		for (size_t y = 0; y < r->n_rows; y++) {
			json_object *e = json_object_new_object(), *row;

			row = json_object_array_get_idx(r->rows, y);
			for (size_t x = 0; x < r->n_cols; x++)
				json_object_object_add(
				    e, columns[x],
				    json_object_get(json_object_array_get_idx(row, x)));
			json_object_array_add(out, e);
		}
		text =
		    o->format == CTL_FMT_JSON ? pgkeel_json_spaced(out) : ctl_yaml_dump(out, false);
		fprintf(ctl->out, "%s\n", text);
		free(text);
		json_object_put(out);
	} else if (o->format == CTL_FMT_TSV) {
		if (r->columns != NULL)
			for (size_t x = 0; x < r->n_cols; x++)
				fprintf(ctl->out, "%s%s", x ? o->delimiter : "", columns[x]);
		if (r->columns != NULL)
			fputc('\n', ctl->out);
		for (size_t y = 0; y < r->n_rows; y++) {
			for (size_t x = 0; x < r->n_cols; x++)
				fprintf(ctl->out, "%s%s", x ? o->delimiter : "", r->texts[y][x]);
			fputc('\n', ctl->out);
		}
	} else {
		char *align = pgkeel_xcalloc(r->n_cols + 1, 1);

		memset(align, 'l', r->n_cols);
		ctl_print_table(ctl, columns, align, r->n_cols, r->texts, r->n_rows,
		                CTL_FMT_PRETTY);
		free(align);
	}
	fflush(ctl->out);
}

/* click.prompt('Password', hide_input=True): no echo on a terminal; asks again when empty. */
static char *ask_password(struct ctl *ctl)
{
	struct termios old, quiet;
	bool tty = tcgetattr(fileno(ctl->in), &old) == 0;
	char *pw;

	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(ctl->in), TCSAFLUSH, &quiet);
	}
	do {
		pw = ctl_prompt(ctl, "Password", NULL);
		if (tty)
			fputc('\n', ctl->out);
		if (pw != NULL && pw[0] == '\0') {
			free(pw);
			pw = NULL;
			continue;
		}
		break;
	} while (!feof(ctl->in));
	if (tty)
		tcsetattr(fileno(ctl->in), TCSAFLUSH, &old);
	return pw;
}

static int query(struct ctl *ctl, const char *scope, const struct query_opts *o)
{
	int rc;

	for (;;) {
		struct pgkeel_cluster *c;
		struct result r = {0};

		if (!ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
			return CTL_FAIL;
		query_member(c, o, &r);
		pgkeel_cluster_unref(c);
		print_result(ctl, o, &r);
		rc = r.failed ? CTL_FAIL : CTL_OK;
		result_free(&r);
		if (o->watch <= 0)
			return rc;
		{
			struct timespec ts = {.tv_sec = (time_t)o->watch,
			                      .tv_nsec =
			                          (long)((o->watch - floor(o->watch)) * 1e9)};

			nanosleep(&ts, NULL);
		}
	}
}

static const struct option query_options[] = {
    {"format", required_argument, NULL, 'F'},
    {"file", required_argument, NULL, 'f'},
    {"password", no_argument, NULL, 'P'},
    {"username", required_argument, NULL, 'U'},
    {"watch", required_argument, NULL, 'w'},
    {"role", required_argument, NULL, 'r'},
    {"member", required_argument, NULL, 'm'},
    {"delimiter", required_argument, NULL, 'D'},
    {"command", required_argument, NULL, 'c'},
    {"dbname", required_argument, NULL, 'd'},
    {0},
};

static int run_query(struct ctl *ctl, int argc, char **argv)
{
	struct query_opts o = {.format = CTL_FMT_TSV, .delimiter = "\t"};
	const char *role = NULL, *member = NULL, *file = NULL, *scope;
	bool ask = false;
	char *text = NULL;
	int r, rc = CTL_FAIL;

	while ((r = ctl_getopt(&ctl_cmd_query, argc, argv, "f:U:w:Wr:m:c:d:")) != -1) {
		switch (r) {
		case 'F':
			if (!ctl_format_parse(optarg, &o.format))
				return ctl_usage_error(
				    &ctl_cmd_query,
				    "Invalid value for '--format': '%s' is not one of "
				    "'pretty', 'tsv', 'json', 'yaml'.",
				    optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'P':
			ask = true;
			break;
		case 'U':
			o.user = optarg;
			break;
		case 'w': {
			char *end;

			o.watch = strtod(optarg, &end);
			if (*end != '\0' || !(o.watch > 0) || o.watch > 86400)
				return ctl_usage_error(
				    &ctl_cmd_query,
				    "Invalid value for '-w' / '--watch': '%s' is not a "
				    "valid float.",
				    optarg);
			break;
		}
		case 'W':
			if (o.watch <= 0)
				o.watch = 2;
			break;
		case 'r':
			role = optarg;
			break;
		case 'm':
			member = optarg;
			break;
		case 'D':
			o.delimiter = optarg;
			break;
		case 'c':
			o.command = optarg;
			break;
		case 'd':
			o.dbname = optarg;
			break;
		default:
			return ctl_getopt_exit(r);
		}
	}
	if (argc - optind > 1)
		return ctl_usage_error(&ctl_cmd_query, "Got unexpected extra argument (%s)",
		                       argv[optind + 1]);
	if (file != NULL) {
		FILE *f = fopen(file, "rb");
		struct pgkeel_sbuf b = {0};
		char buf[8192];
		size_t n;

		if (f == NULL)
			return ctl_usage_error(&ctl_cmd_query,
			                       "Invalid value for '--file' / '-f': '%s': %s", file,
			                       strerror(errno));
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			pgkeel_sbuf_put(&b, buf, n);
		fclose(f);
		text = pgkeel_sbuf_finish(&b);
	}
	if (!target_resolve(&ctl_cmd_query, role, member, &o.t, &rc))
		goto out;
	if (file != NULL && o.command != NULL) {
		rc = ctl_error("--file and --command are mutually exclusive options");
		goto out;
	}
	if (file == NULL && o.command == NULL) {
		rc = ctl_error("You need to specify either --command or --file");
		goto out;
	}
	if (text != NULL)
		o.command = text;
	if (ask && (o.password = ask_password(ctl)) == NULL) {
		fflush(ctl->out);
		fputs("Aborted!\n", stderr); /* click's words at the end of the input */
		goto out;
	}
	if ((scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL)) == NULL) {
		rc = CTL_FAIL;
		goto out;
	}
	rc = query(ctl, scope, &o);
out:
	if (o.password != NULL) {
		explicit_bzero(o.password, strlen(o.password));
		free(o.password);
	}
	free(text);
	return rc;
}

const struct ctl_command ctl_cmd_query = {
    .name = "query",
    .run = run_query,
    .args = "[CLUSTER] [-r ROLE | -m MEMBER] (-c SQL | -f FILE) [-U USER] [--password] "
            "[-d DBNAME] [--format pretty|tsv|json|yaml] [--delimiter D] [-W | -w SECONDS]",
    .summary = "Query a Patroni PostgreSQL member",
    .options = query_options,
    .help = "  --format FORMAT       Output format (pretty, tsv, json, yaml); default tsv\n"
            "  -f, --file FILE       Execute the SQL commands from this file\n"
            "  --password            force password prompt\n"
            "  -U, --username USER   database user name\n"
            "  -W                    Auto update the screen every 2 seconds\n"
            "  -w, --watch SECONDS   Auto update the screen every SECONDS seconds\n"
            "  -r, --role ROLE       The role of the query (leader, primary, standby-leader,\n"
            "                        replica, standby, any, master); default leader\n"
            "  -m, --member MEMBER   Query a specific member\n"
            "  --delimiter D         The column delimiter (tsv); default TAB\n"
            "  -c, --command SQL     The SQL commands to execute\n"
            "  -d, --dbname DBNAME   database name to connect to\n",
};
