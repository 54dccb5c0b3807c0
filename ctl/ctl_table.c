/*
 * pgkeelctl: the list table (spec patroni-interfaces.md §2.4), built from
 * the same document GET /cluster serves (pgkeel_rest_cluster_json), the way
 * patronictl 3.0.2's output_members / print_output and PrettyTable 3.6
 * render it: pretty (frame, title painted over the top border, a rule
 * between all rows when a cell has several lines), tsv, json, yaml and
 * topology (members under the member they replicate from).
 */
#include "autoconf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ctl.h"
#include "json.h"
#include "rest_internal.h"

enum col { C_CLUSTER, C_MEMBER, C_HOST, C_ROLE, C_STATE, C_TL, C_LAG, C_PENDING, C_SCHEDULED,
           C_TAGS, N_COLS };

static const char *const col_names[N_COLS] = {
    "Cluster", "Member",          "Host",              "Role", "State", "TL",
    "Lag in MB", "Pending restart", "Scheduled restart", "Tags"};
static const char *const col_keys[N_COLS] = {
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, "pending_restart", "scheduled_restart", "tags"};

bool ctl_format_parse(const char *s, enum ctl_format *out)
{
	if (strcmp(s, "pretty") == 0)
		*out = CTL_FMT_PRETTY;
	else if (strcmp(s, "tsv") == 0)
		*out = CTL_FMT_TSV;
	else if (strcmp(s, "json") == 0)
		*out = CTL_FMT_JSON;
	else if (strcmp(s, "yaml") == 0 || strcmp(s, "yml") == 0)
		*out = CTL_FMT_YAML;
	else
		return false;
	return true;
}

/* ------------------------------------------------------------ a generic table */

struct table {
	size_t n_cols;
	const char *const *headers;
	const char *align; /* 'l' or 'r' per column */
	char ***cells;     /* rows x cols, malloc'd strings */
	size_t n_rows;
};

/* Display width: code points (PrettyTable counts wcwidth; ASCII and most text agree). */
static size_t width_of(const char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			w++;
	return w;
}

static size_t cell_width(const char *s)
{
	size_t w = 0;

	while (*s != '\0') {
		size_t n = strcspn(s, "\n");
		size_t lw = width_of(s, n);

		if (lw > w)
			w = lw;
		s += n;
		if (*s == '\n')
			s++;
	}
	return w;
}

static size_t cell_lines(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void put_rule(struct pgkeel_sbuf *b, const size_t *w, size_t n_cols, const char *title)
{
	struct pgkeel_sbuf r = {0};
	char *line;

	pgkeel_sbuf_putc(&r, '+');
	for (size_t c = 0; c < n_cols; c++) {
		for (size_t i = 0; i < w[c] + 2; i++)
			pgkeel_sbuf_putc(&r, '-');
		pgkeel_sbuf_putc(&r, '+');
	}
	line = pgkeel_sbuf_finish(&r);
	if (title != NULL && title[0] != '\0') {
		/* PatronictlPrettyTable: the title painted from the second character */
		size_t len = strlen(line), tl = strlen(title);

		if (tl > len - 2)
			tl = len - 2;
		memcpy(line + 1, title, tl);
	}
	pgkeel_sbuf_puts(b, line);
	pgkeel_sbuf_putc(b, '\n');
	free(line);
}

/* Line `k` of a multi-line cell. */
static void nth_line(const char *s, size_t k, const char **p, size_t *n)
{
	for (size_t i = 0; i < k && s != NULL; i++) {
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
	if (s == NULL) {
		*p = "";
		*n = 0;
		return;
	}
	*p = s;
	*n = strcspn(s, "\n");
}

static void put_row(struct pgkeel_sbuf *b, const struct table *t, const size_t *w,
                    const char *const *cells)
{
	size_t h = 1;

	for (size_t c = 0; c < t->n_cols; c++)
		if (cell_lines(cells[c]) > h)
			h = cell_lines(cells[c]);
	for (size_t y = 0; y < h; y++) {
		pgkeel_sbuf_putc(b, '|');
		for (size_t c = 0; c < t->n_cols; c++) {
			const char *p;
			size_t n, pad;

			nth_line(cells[c], y, &p, &n);
			pad = w[c] - width_of(p, n);
			pgkeel_sbuf_putc(b, ' ');
			if (t->align[c] == 'r')
				for (size_t i = 0; i < pad; i++)
					pgkeel_sbuf_putc(b, ' ');
			pgkeel_sbuf_put(b, p, n);
			if (t->align[c] != 'r')
				for (size_t i = 0; i < pad; i++)
					pgkeel_sbuf_putc(b, ' ');
			pgkeel_sbuf_puts(b, " |");
		}
		pgkeel_sbuf_putc(b, '\n');
	}
}

/* PrettyTable's get_string() with hrules FRAME (or ALL when a cell has several lines). */
static char *table_pretty(const struct table *t, const char *title)
{
	size_t *w = pgkeel_xcalloc(t->n_cols + 1, sizeof(*w));
	struct pgkeel_sbuf b = {0};
	bool all = false;

	for (size_t c = 0; c < t->n_cols; c++)
		w[c] = cell_width(t->headers[c]);
	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t c = 0; c < t->n_cols; c++) {
			if (cell_width(t->cells[r][c]) > w[c])
				w[c] = cell_width(t->cells[r][c]);
			all |= strchr(t->cells[r][c], '\n') != NULL;
		}
	put_rule(&b, w, t->n_cols, title);
	put_row(&b, t, w, t->headers);
	put_rule(&b, w, t->n_cols, NULL);
	for (size_t r = 0; r < t->n_rows; r++) {
		put_row(&b, t, w, (const char *const *)t->cells[r]);
		if (all && r + 1 < t->n_rows)
			put_rule(&b, w, t->n_cols, NULL);
	}
	put_rule(&b, w, t->n_cols, NULL); /* PrettyTable prints it under an empty table too */
	free(w);
	return pgkeel_sbuf_finish(&b);
}

static void table_free(struct table *t)
{
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols; c++)
			free(t->cells[r][c]);
		free(t->cells[r]);
	}
	free(t->cells);
}

/* Python's str() of a cell value. */
static char *str_of(const struct json_object *v)
{
	if (v == NULL)
		return pgkeel_strdup("");
	if (json_object_is_type(v, json_type_string))
		return pgkeel_strdup(json_object_get_string((struct json_object *)v));
	return pgkeel_rest_py_str(v);
}

/* ------------------------------------------------------------ the cluster's rows */

static json_object *get(const json_object *o, const char *k)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_get_ex((json_object *)o, k, &v);
	return v;
}

static bool ends_with_leader(const char *role)
{
	return role != NULL && pgkeel_str_has_suffix(role, "leader");
}

/* patronictl's topology_sort + generate_topology: a new array, names indented. */
static void topology_add(json_object *out, json_object *members, json_object *m, int level,
                         const char *leader)
{
	const char *name = json_object_get_string(get(m, "name"));
	json_object *copy = NULL;

	if (json_object_deep_copy(m, &copy, NULL) != 0)
		pgkeel_oom();
	if (level > 0) {
		char *n = pgkeel_asprintf("%*s+ %s", (level - 1) * 2, "", name);

		json_object_object_add(copy, "name", json_object_new_string(n));
		free(n);
	}
	if (name != NULL && name[0] != '\0')
		json_object_array_add(out, copy);
	else
		json_object_put(copy);
	for (size_t i = 0; i < json_object_array_length(members); i++) {
		json_object *c = json_object_array_get_idx(members, i);
		const char *cname = json_object_get_string(get(c, "name"));
		const char *role = json_object_get_string(get(c, "role"));
		const char *parent;
		bool known = false;

		if (ends_with_leader(role))
			continue;
		parent = json_object_get_string(get(get(c, "tags"), "replicatefrom"));
		if (parent != NULL && parent[0] != '\0' && strcmp(parent, cname) != 0)
			for (size_t j = 0; j < json_object_array_length(members); j++) {
				json_object *p = json_object_array_get_idx(members, j);

				if (strcmp(json_object_get_string(get(p, "name")), parent) == 0 &&
				    !ends_with_leader(json_object_get_string(get(p, "role"))))
					known = true;
			}
		if (!known)
			parent = leader;
		if (parent != NULL && name != NULL && strcmp(parent, name) == 0 && level < 64)
			topology_add(out, members, c, level + 1, leader);
	}
}

static json_object *topology_order(json_object *members)
{
	json_object *out = json_object_new_array(), *leader = NULL;

	for (size_t i = 0; i < json_object_array_length(members) && leader == NULL; i++) {
		json_object *m = json_object_array_get_idx(members, i);

		if (ends_with_leader(json_object_get_string(get(m, "role"))))
			leader = m;
	}
	if (leader != NULL) {
		topology_add(out, members, leader, 0, json_object_get_string(get(leader, "name")));
	} else {
		/* no leader: Patroni's generate_topology starts from a nameless root */
		json_object *root = json_object_new_object();

		json_object_object_add(root, "name", json_object_new_string(""));
		topology_add(out, members, root, 0, NULL);
		json_object_put(root);
	}
	return out;
}

/* "sync_standby" -> "Sync Standby" (Python's str.title after '_' -> ' '). */
static char *title_case(const char *s)
{
	char *t = pgkeel_strdup(s ? s : "");
	bool start = true;

	for (char *p = t; *p != '\0'; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');

		if (*p == '_')
			*p = ' ';
		if (alpha) {
			if (start && *p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
			else if (!start && *p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		}
		start = !alpha;
	}
	return t;
}

/* One member's values per column (json values; NULL = ''), as output_members builds them. */
static void member_values(const char *scope, json_object *m, bool append_port, json_object **v)
{
	json_object *lag = get(m, "lag"), *sr = get(m, "scheduled_restart");
	const char *host = json_object_get_string(get(m, "host"));
	char *s;

	v[C_CLUSTER] = json_object_new_string(scope);
	v[C_MEMBER] = json_object_get(get(m, "name"));
	if (host != NULL && append_port && host[0] != '\0' && pgkeel_json_truthy(get(m, "port"))) {
		char *p = str_of(get(m, "port"));

		s = pgkeel_asprintf("%s:%s", host, p);
		v[C_HOST] = json_object_new_string(s);
		free(s);
		free(p);
	} else {
		v[C_HOST] = json_object_new_string(host ? host : "");
	}
	s = title_case(json_object_get_string(get(m, "role")));
	v[C_ROLE] = json_object_new_string(s);
	free(s);
	v[C_STATE] = json_object_get(get(m, "state"));
	v[C_TL] = get(m, "timeline") ? json_object_get(get(m, "timeline")) : json_object_new_string("");
	if (json_object_is_type(lag, json_type_int))
		/* Python's round(): half to even, which rint() does in the default mode */
		v[C_LAG] = json_object_new_int64(
		    (int64_t)rint((double)json_object_get_int64(lag) / 1024.0 / 1024.0));
	else
		v[C_LAG] = lag ? json_object_get(lag) : json_object_new_string("");
	v[C_PENDING] = json_object_new_string(pgkeel_json_truthy(get(m, "pending_restart")) ? "*" : "");
	if (sr != NULL) {
		char *sched = str_of(get(sr, "schedule"));

		if (get(sr, "postgres_version") != NULL) {
			char *pv = str_of(get(sr, "postgres_version"));

			s = pgkeel_asprintf("%s if version < %s", sched, pv);
			free(pv);
		} else {
			s = pgkeel_strdup(sched);
		}
		v[C_SCHEDULED] = json_object_new_string(s);
		free(s);
		free(sched);
	} else {
		v[C_SCHEDULED] = json_object_new_string("");
	}
	v[C_TAGS] = get(m, "tags") ? json_object_get(get(m, "tags")) : json_object_new_string("");
}

static void print_service_info(struct ctl *ctl, json_object *doc)
{
	json_object *sw = get(doc, "scheduled_switchover");

	if (pgkeel_json_truthy(get(doc, "pause")))
		fprintf(ctl->out, " Maintenance mode: on\n");
	if (sw != NULL) {
		char *at = str_of(get(sw, "at"));

		fprintf(ctl->out, " Switchover scheduled at: %s", at);
		free(at);
		if (get(sw, "from") != NULL) {
			char *f = str_of(get(sw, "from"));

			fprintf(ctl->out, "\n%24s: %s", "from", f);
			free(f);
		}
		if (get(sw, "to") != NULL) {
			char *f = str_of(get(sw, "to"));

			fprintf(ctl->out, "\n%24s: %s", "to", f);
			free(f);
		}
		fputc('\n', ctl->out);
	}
}

void ctl_print_cluster(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c,
                       const struct ctl_list_opts *o)
{
	char *text = pgkeel_rest_cluster_json(c), err[128];
	json_object *doc = NULL, *members, *rows;
	bool show[N_COLS], append_port = false;
	size_t n_with_host = 0, n;
	char title[512];

	if (!pgkeel_json_parse(text, strlen(text), &doc, err, sizeof(err))) {
		free(text);
		ctl_error("cannot render the cluster: %s", err);
		return;
	}
	free(text);
	members = get(doc, "members");
	if (o->format == CTL_FMT_TOPOLOGY)
		rows = topology_order(members);
	else
		rows = json_object_get(members);
	n = json_object_array_length(members);
	for (int k = 0; k < N_COLS; k++)
		show[k] = k < C_PENDING || o->extended;
	{
		/* only members with a host count, as output_members' all_members */
		char **hosts = pgkeel_xcalloc(n + 1, sizeof(*hosts));
		size_t distinct = 0;

		for (size_t i = 0; i < n; i++) {
			json_object *m = json_object_array_get_idx(members, i);
			const char *h;
			bool seen = false;

			if (get(m, "host") == NULL)
				continue;
			n_with_host++;
			for (int k = C_PENDING; k < N_COLS; k++)
				show[k] |= pgkeel_json_truthy(get(m, col_keys[k]));
			if (get(m, "port") != NULL && (!json_object_is_type(get(m, "port"), json_type_int) ||
			                               json_object_get_int(get(m, "port")) != 5432))
				append_port = true;
			h = json_object_get_string(get(m, "host"));
			for (size_t j = 0; j < distinct && !seen; j++)
				seen = strcmp(hosts[j], h) == 0;
			if (!seen)
				hosts[distinct++] = (char *)h;
		}
		append_port |= distinct < n_with_host;
		free(hosts);
	}
	pgkeel_fmt(title, sizeof(title), " Cluster: %s ", scope);

	{
		struct table t = {0};
		const char *headers[N_COLS];
		char align[N_COLS];
		int cols[N_COLS], nc = 0;
		json_object *elements = json_object_new_array();
		bool pretty = o->format == CTL_FMT_PRETTY || o->format == CTL_FMT_TOPOLOGY;

		for (int k = 0; k < N_COLS; k++)
			if (show[k] && !(pretty && k == C_CLUSTER))
				cols[nc++] = k;
		for (int i = 0; i < nc; i++) {
			headers[i] = col_names[cols[i]];
			align[i] = cols[i] == C_TL || cols[i] == C_LAG ? 'r' : 'l';
		}
		t.n_cols = (size_t)nc;
		t.headers = headers;
		t.align = align;
		t.cells = pgkeel_xcalloc(json_object_array_length(rows) + 1, sizeof(*t.cells));
		for (size_t i = 0; i < json_object_array_length(rows); i++) {
			json_object *v[N_COLS], *el = json_object_new_object();

			member_values(scope, json_object_array_get_idx(rows, i), append_port, v);
			t.cells[t.n_rows] = pgkeel_xcalloc((size_t)nc + 1, sizeof(char *));
			for (int j = 0; j < nc; j++) {
				int k = cols[j];
				char *s;

				if (k == C_TAGS && json_object_is_type(v[k], json_type_object)) {
					s = ctl_yaml_dump(v[k], o->format != CTL_FMT_PRETTY);
					while (s[0] != '\0' && s[strlen(s) - 1] == '\n')
						s[strlen(s) - 1] = '\0';
				} else {
					s = str_of(v[k]);
				}
				if (s[0] != '\0' || (o->format != CTL_FMT_JSON && o->format != CTL_FMT_YAML))
					json_object_object_add(el, col_names[k], json_object_get(v[k]));
				t.cells[t.n_rows][j] = s;
			}
			t.n_rows++;
			json_object_array_add(elements, el);
			for (int k = 0; k < N_COLS; k++)
				json_object_put(v[k]);
		}
		if (o->format == CTL_FMT_JSON) {
			char *s = pgkeel_json_spaced(elements);

			fprintf(ctl->out, "%s\n", s);
			free(s);
		} else if (o->format == CTL_FMT_YAML) {
			char *s = ctl_yaml_dump(elements, false);

			fprintf(ctl->out, "%s\n", s);
			free(s);
		} else if (o->format == CTL_FMT_TSV) {
			for (int j = 0; j < nc; j++)
				fprintf(ctl->out, "%s%s", j ? "\t" : "", headers[j]);
			fputc('\n', ctl->out);
			for (size_t r = 0; r < t.n_rows; r++) {
				for (int j = 0; j < nc; j++)
					fprintf(ctl->out, "%s%s", j ? "\t" : "", t.cells[r][j]);
				fputc('\n', ctl->out);
			}
		} else {
			char *s = table_pretty(&t, title);

			fputs(s, ctl->out);
			free(s);
			print_service_info(ctl, doc);
		}
		json_object_put(elements);
		table_free(&t);
	}
	json_object_put(rows);
	json_object_put(doc);
}

/* ------------------------------------------------------------ other tables */

void ctl_print_table(struct ctl *ctl, const char *const *headers, const char *align,
                     size_t n_cols, char ***cells, size_t n_rows, enum ctl_format fmt)
{
	struct table t = {.n_cols = n_cols, .headers = headers, .align = align, .cells = cells,
	                  .n_rows = n_rows};

	if (fmt == CTL_FMT_TSV) {
		for (size_t j = 0; j < n_cols; j++)
			fprintf(ctl->out, "%s%s", j ? "\t" : "", headers[j]);
		fputc('\n', ctl->out);
		for (size_t r = 0; r < n_rows; r++) {
			for (size_t j = 0; j < n_cols; j++)
				fprintf(ctl->out, "%s%s", j ? "\t" : "", cells[r][j]);
			fputc('\n', ctl->out);
		}
	} else {
		char *s = table_pretty(&t, NULL);

		fputs(s, ctl->out);
		free(s);
	}
}
