/*
 * pgkeelctl show-config and edit-config: the dynamic configuration (the
 * DCS key `config`), as patronictl 3.0.2 shows and edits it.
 *
 * show-config prints yaml.safe_dump(config, default_flow_style=False) plus
 * the newline click.echo adds.
 *
 * edit-config builds the new configuration the way patronictl does:
 *   --replace F   the file's mapping replaces the configuration (patched
 *                 onto {}: top-level nulls dropped);
 *   --apply F     the file's mapping is patched onto it (Patroni's
 *                 patch_config: null deletes, mappings merge, a scalar is
 *                 replaced only when Python's str() of it differs);
 *   -s k.k=v      v parsed as a YAML document and set at the dotted path
 *                 (below postgresql.parameters the rest of the path is one
 *                 GUC name, dots included); an empty v deletes, and a
 *                 mapping left empty by a deletion goes too;
 *   -p guc=v      is -s postgresql.parameters.guc=v;
 * in that order; with none of them $EDITOR (else `editor`, else `vi`,
 * found in PATH and run as one word, as patronictl) edits the YAML in a
 * temporary file.  Equal to the stored configuration (Python's ==, so 1 ==
 * 1.0 == true): "Not changed".  Otherwise the unified diff of the two YAML
 * texts (difflib's, reproduced here line for line: SequenceMatcher with its
 * autojunk rule, 3 lines of context, empty file names; colored on a tty),
 * the "Apply these changes?" question unless --force (a file read from
 * stdin cannot be confirmed: "Use --force option to apply changes"), then
 * one compare-and-set of `config` := json.dumps(config) against the version
 * that was read.  A concurrent change makes it fail: "Config modification
 * aborted due to concurrent changes", exit 1, the other change kept.
 *
 * Beyond patronictl (which raises a traceback): a value, file or edit that
 * is not valid YAML, a file or edit that is not a mapping, and a cluster
 * without a `config` key are refused with a message naming where, before
 * anything is written.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl.h"
#include "json.h"
#include "rest_internal.h"
#include "yaml_load.h"

/* ------------------------------------------------------------ Python's view of values */

static bool is_number(json_object *v)
{
	json_type t = json_object_get_type(v);

	return t == json_type_int || t == json_type_double || t == json_type_boolean;
}

static double number_of(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v) ? 1.0 : 0.0;
	case json_type_int:
		return (double)json_object_get_int64(v);
	default:
		return json_object_get_double(v);
	}
}

/* Python's == on values loaded from JSON or YAML (True == 1 == 1.0). */
static bool py_equal(json_object *a, json_object *b)
{
	json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

	if (is_number(a) && is_number(b)) {
		if (ta != json_type_double && tb != json_type_double)
			return (ta == json_type_boolean ? (int64_t)json_object_get_boolean(a)
			                                : json_object_get_int64(a)) ==
			       (tb == json_type_boolean ? (int64_t)json_object_get_boolean(b)
			                                : json_object_get_int64(b));
		return number_of(a) == number_of(b);
	}
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_null:
		return true;
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b),
		              (size_t)json_object_get_string_len(a)) == 0;
	case json_type_array: {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!py_equal(json_object_array_get_idx(a, i),
			              json_object_array_get_idx(b, i)))
				return false;
		return true;
	}
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, k, va)
		{
			json_object *vb;

			if (!json_object_object_get_ex(b, k, &vb) || !py_equal(va, vb))
				return false;
		}
		return true;
	}
	default:
		return false;
	}
}

/* A deep copy the caller owns (through the text: doubles keep their repr). */
static json_object *copy_value(json_object *v)
{
	char *t = pgkeel_json_compact(v);
	json_object *c = NULL;
	char err[128];

	if (!pgkeel_json_parse(t, strlen(t), &c, err, sizeof(err)))
		c = NULL; /* cannot happen: our own rendering */
	free(t);
	return c;
}

/* ------------------------------------------------------------ building the new configuration */

/* Where set_path_value() is: at the root, in `postgresql`, in `postgresql.parameters`. */
enum path_prefix { AT_ROOT, AT_POSTGRESQL, AT_PARAMETERS, AT_OTHER };

/* patronictl's set_path_value: path[0..n) in config := value (NULL deletes). */
static void set_path_value(json_object *config, char **path, size_t n, json_object *value,
                           enum path_prefix where)
{
	json_object *sub;
	char *joined = NULL;
	enum path_prefix next = AT_OTHER;

	if (where == AT_PARAMETERS && n > 1) { /* a GUC name may contain dots */
		struct pgkeel_sbuf b = {0};

		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				pgkeel_sbuf_putc(&b, '.');
			pgkeel_sbuf_puts(&b, path[i]);
		}
		joined = pgkeel_sbuf_finish(&b);
		path = &joined;
		n = 1;
	}
	if (n == 1) {
		if (value == NULL)
			json_object_object_del(config, path[0]);
		else
			json_object_object_add(config, path[0], copy_value(value));
		free(joined);
		return;
	}
	if (!json_object_object_get_ex(config, path[0], &sub) ||
	    !json_object_is_type(sub, json_type_object)) {
		sub = json_object_new_object();
		json_object_object_add(config, path[0], sub);
	}
	if (where == AT_ROOT && strcmp(path[0], "postgresql") == 0)
		next = AT_POSTGRESQL;
	else if (where == AT_POSTGRESQL && strcmp(path[0], "parameters") == 0)
		next = AT_PARAMETERS;
	set_path_value(sub, path + 1, n - 1, value, next);
	if (json_object_object_length(sub) == 0)
		json_object_object_del(config, path[0]);
}

/* ------------------------------------------------------------ difflib's unified diff */

/* Lines of a text as difflib sees them after patronictl's listify(). */
struct lines {
	char **v;
	size_t n;
};

static void lines_split(const char *text, struct lines *l)
{
	size_t len = strlen(text), start = 0;

	while (len > 0 && text[len - 1] == '\n') /* str.rstrip('\n') */
		len--;
	l->v = NULL;
	l->n = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || text[i] == '\n') {
			l->v = pgkeel_xreallocarray(l->v, l->n + 1, sizeof(*l->v));
			l->v[l->n++] = pgkeel_dup_bytes(text + start, i - start);
			start = i + 1;
		}
	}
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/*
 * SequenceMatcher(None, a, b): every line gets the id of its first equal
 * line in b (-1 when b lacks it); b2j[id] lists where it occurs in b,
 * emptied for "popular" lines (autojunk: b of 200 lines or more, a line
 * seen more than len(b) / 100 + 1 times).
 */
struct matcher {
	const struct lines *a, *b;
	long *ida, *idb;
	size_t **b2j; /* per id: positions in b */
	size_t *nb2j;
	int *j2len, *newj2len; /* per position in b, for find_longest_match */
	size_t *touched, *newtouched;
};

struct match {
	size_t i, j, k;
};

struct opcode {
	char tag; /* 'e'qual, 'r'eplace, 'd'elete, 'i'nsert */
	size_t i1, i2, j1, j2;
};

static long line_id(const struct lines *b, size_t upto, const char *s)
{
	for (size_t j = 0; j < upto; j++)
		if (strcmp(b->v[j], s) == 0)
			return (long)j;
	return -1;
}

static void matcher_init(struct matcher *m, const struct lines *a, const struct lines *b)
{
	size_t nb = b->n;

	m->a = a;
	m->b = b;
	m->idb = pgkeel_xcalloc(nb + 1, sizeof(long));
	m->ida = pgkeel_xcalloc(a->n + 1, sizeof(long));
	m->b2j = pgkeel_xcalloc(nb + 1, sizeof(*m->b2j));
	m->nb2j = pgkeel_xcalloc(nb + 1, sizeof(size_t));
	m->j2len = pgkeel_xcalloc(nb + 1, sizeof(int));
	m->newj2len = pgkeel_xcalloc(nb + 1, sizeof(int));
	m->touched = pgkeel_xcalloc(nb + 1, sizeof(size_t));
	m->newtouched = pgkeel_xcalloc(nb + 1, sizeof(size_t));
	for (size_t j = 0; j < nb; j++) {
		long id = line_id(b, j, b->v[j]);

		if (id < 0)
			id = (long)j;
		m->idb[j] = id;
		m->b2j[id] = pgkeel_xreallocarray(m->b2j[id], m->nb2j[id] + 1, sizeof(size_t));
		m->b2j[id][m->nb2j[id]++] = j;
	}
	if (nb >= 200) {
		size_t ntest = nb / 100 + 1;

		for (size_t id = 0; id < nb; id++)
			if (m->nb2j[id] > ntest)
				m->nb2j[id] = 0;
	}
	for (size_t i = 0; i < a->n; i++) {
		long id = line_id(b, nb, a->v[i]);

		m->ida[i] = id < 0 ? -1 : m->idb[id];
	}
}

static void matcher_free(struct matcher *m)
{
	for (size_t j = 0; j < m->b->n; j++)
		free(m->b2j[j]);
	free(m->b2j);
	free(m->nb2j);
	free(m->ida);
	free(m->idb);
	free(m->j2len);
	free(m->newj2len);
	free(m->touched);
	free(m->newtouched);
}

static struct match find_longest_match(struct matcher *m, size_t alo, size_t ahi, size_t blo,
                                       size_t bhi)
{
	size_t besti = alo, bestj = blo, bestsize = 0, nt = 0;

	for (size_t i = alo; i < ahi; i++) {
		size_t nnew = 0;
		long id = m->ida[i];
		int *swap;
		size_t *tswap;

		for (size_t x = 0; id >= 0 && x < m->nb2j[id]; x++) {
			size_t j = m->b2j[id][x];
			int k;

			if (j < blo)
				continue;
			if (j >= bhi)
				break;
			k = (j > 0 ? m->j2len[j - 1] : 0) + 1;
			m->newj2len[j] = k;
			m->newtouched[nnew++] = j;
			if ((size_t)k > bestsize) {
				besti = i + 1 - (size_t)k;
				bestj = j + 1 - (size_t)k;
				bestsize = (size_t)k;
			}
		}
		for (size_t x = 0; x < nt; x++)
			m->j2len[m->touched[x]] = 0;
		swap = m->j2len;
		m->j2len = m->newj2len;
		m->newj2len = swap;
		tswap = m->touched;
		m->touched = m->newtouched;
		m->newtouched = tswap;
		nt = nnew;
	}
	for (size_t x = 0; x < nt; x++)
		m->j2len[m->touched[x]] = 0;
	/* extend over lines left out of b2j (popular ones): they are not junk */
	while (besti > alo && bestj > blo && m->ida[besti - 1] >= 0 &&
	       m->ida[besti - 1] == m->idb[bestj - 1]) {
		besti--;
		bestj--;
		bestsize++;
	}
	while (besti + bestsize < ahi && bestj + bestsize < bhi && m->ida[besti + bestsize] >= 0 &&
	       m->ida[besti + bestsize] == m->idb[bestj + bestsize])
		bestsize++;
	return (struct match){besti, bestj, bestsize};
}

static int by_position(const void *x, const void *y)
{
	const struct match *a = x, *b = y;

	if (a->i != b->i)
		return a->i < b->i ? -1 : 1;
	if (a->j != b->j)
		return a->j < b->j ? -1 : 1;
	return a->k < b->k ? -1 : a->k > b->k;
}

/* get_matching_blocks(): sorted, adjacent ones joined, ending with (la, lb, 0). */
static struct match *matching_blocks(struct matcher *m, size_t *count)
{
	struct {
		size_t alo, ahi, blo, bhi;
	} *queue = NULL;
	size_t nq = 0, nblocks = 0, nout = 0;
	struct match *blocks = NULL, *out, cur = {0, 0, 0};

	queue = pgkeel_xreallocarray(queue, 1, sizeof(*queue));
	queue[nq].alo = 0;
	queue[nq].ahi = m->a->n;
	queue[nq].blo = 0;
	queue[nq++].bhi = m->b->n;
	while (nq > 0) {
		size_t alo = queue[nq - 1].alo, ahi = queue[nq - 1].ahi;
		size_t blo = queue[nq - 1].blo, bhi = queue[nq - 1].bhi;
		struct match x = find_longest_match(m, alo, ahi, blo, bhi);

		nq--;
		if (x.k == 0)
			continue;
		blocks = pgkeel_xreallocarray(blocks, nblocks + 1, sizeof(*blocks));
		blocks[nblocks++] = x;
		queue = pgkeel_xreallocarray(queue, nq + 2, sizeof(*queue));
		if (alo < x.i && blo < x.j) {
			queue[nq].alo = alo;
			queue[nq].ahi = x.i;
			queue[nq].blo = blo;
			queue[nq++].bhi = x.j;
		}
		if (x.i + x.k < ahi && x.j + x.k < bhi) {
			queue[nq].alo = x.i + x.k;
			queue[nq].ahi = ahi;
			queue[nq].blo = x.j + x.k;
			queue[nq++].bhi = bhi;
		}
	}
	free(queue);
	if (nblocks > 1)
		qsort(blocks, nblocks, sizeof(*blocks), by_position);
	out = pgkeel_xcalloc(nblocks + 1, sizeof(*out));
	for (size_t x = 0; x < nblocks; x++) {
		if (cur.i + cur.k == blocks[x].i && cur.j + cur.k == blocks[x].j) {
			cur.k += blocks[x].k;
		} else {
			if (cur.k > 0)
				out[nout++] = cur;
			cur = blocks[x];
		}
	}
	if (cur.k > 0)
		out[nout++] = cur;
	out[nout++] = (struct match){m->a->n, m->b->n, 0};
	free(blocks);
	*count = nout;
	return out;
}

/* get_opcodes() */
static struct opcode *opcodes(struct matcher *m, size_t *count)
{
	size_t nb, n = 0, i = 0, j = 0;
	struct match *mb = matching_blocks(m, &nb);
	struct opcode *ops = pgkeel_xcalloc(2 * nb + 1, sizeof(*ops));

	for (size_t x = 0; x < nb; x++) {
		char tag = 0;

		if (i < mb[x].i && j < mb[x].j)
			tag = 'r';
		else if (i < mb[x].i)
			tag = 'd';
		else if (j < mb[x].j)
			tag = 'i';
		if (tag)
			ops[n++] = (struct opcode){tag, i, mb[x].i, j, mb[x].j};
		i = mb[x].i + mb[x].k;
		j = mb[x].j + mb[x].k;
		if (mb[x].k > 0)
			ops[n++] = (struct opcode){'e', mb[x].i, i, mb[x].j, j};
	}
	free(mb);
	*count = n;
	return ops;
}

static size_t min_z(size_t a, size_t b)
{
	return a < b ? a : b;
}

static size_t max_z(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* _format_range_unified() */
static void put_range(struct pgkeel_sbuf *b, size_t start, size_t stop)
{
	size_t beginning = start + 1, length = stop - start;

	if (length == 1) {
		pgkeel_sbuf_printf(b, "%zu", beginning);
		return;
	}
	if (length == 0)
		beginning--;
	pgkeel_sbuf_printf(b, "%zu,%zu", beginning, length);
}

/* Add one group of get_grouped_opcodes(3) to the diff. */
static void put_hunk(struct pgkeel_sbuf *out, const struct lines *a, const struct lines *b,
                     const struct opcode *g, size_t ng)
{
	pgkeel_sbuf_puts(out, "@@ -");
	put_range(out, g[0].i1, g[ng - 1].i2);
	pgkeel_sbuf_puts(out, " +");
	put_range(out, g[0].j1, g[ng - 1].j2);
	pgkeel_sbuf_puts(out, " @@\n");
	for (size_t x = 0; x < ng; x++) {
		if (g[x].tag == 'e') {
			for (size_t i = g[x].i1; i < g[x].i2; i++) {
				pgkeel_sbuf_putc(out, ' ');
				pgkeel_sbuf_puts(out, a->v[i]);
				pgkeel_sbuf_putc(out, '\n');
			}
			continue;
		}
		if (g[x].tag == 'r' || g[x].tag == 'd')
			for (size_t i = g[x].i1; i < g[x].i2; i++) {
				pgkeel_sbuf_putc(out, '-');
				pgkeel_sbuf_puts(out, a->v[i]);
				pgkeel_sbuf_putc(out, '\n');
			}
		if (g[x].tag == 'r' || g[x].tag == 'i')
			for (size_t j = g[x].j1; j < g[x].j2; j++) {
				pgkeel_sbuf_putc(out, '+');
				pgkeel_sbuf_puts(out, b->v[j]);
				pgkeel_sbuf_putc(out, '\n');
			}
	}
}

/*
 * difflib.unified_diff(listify(before), listify(after)) as patronictl
 * prints it: "--- " and "+++ " (no file names), hunks with 3 lines of
 * context.  "" when the texts have the same lines.
 */
static char *unified_diff(const char *before, const char *after)
{
	const size_t n = 3;
	struct lines a, b;
	struct matcher m;
	struct opcode *ops, *group;
	size_t nops, ng = 0;
	struct pgkeel_sbuf out = {0};
	bool started = false;

	lines_split(before, &a);
	lines_split(after, &b);
	matcher_init(&m, &a, &b);
	ops = opcodes(&m, &nops);
	if (nops == 0) {
		ops[0] = (struct opcode){'e', 0, 1, 0, 1};
		nops = 1;
	}
	if (ops[0].tag == 'e') {
		ops[0].i1 = ops[0].i2 > n ? max_z(ops[0].i1, ops[0].i2 - n) : ops[0].i1;
		ops[0].j1 = ops[0].j2 > n ? max_z(ops[0].j1, ops[0].j2 - n) : ops[0].j1;
	}
	if (ops[nops - 1].tag == 'e') {
		ops[nops - 1].i2 = min_z(ops[nops - 1].i2, ops[nops - 1].i1 + n);
		ops[nops - 1].j2 = min_z(ops[nops - 1].j2, ops[nops - 1].j1 + n);
	}
	group = pgkeel_xcalloc(nops + 1, sizeof(*group));
	for (size_t x = 0; x < nops; x++) {
		struct opcode o = ops[x];

		if (o.tag == 'e' && o.i2 - o.i1 > 2 * n) {
			group[ng++] = (struct opcode){'e', o.i1, min_z(o.i2, o.i1 + n), o.j1,
			                              min_z(o.j2, o.j1 + n)};
			if (!started)
				pgkeel_sbuf_puts(&out, "--- \n+++ \n");
			started = true;
			put_hunk(&out, &a, &b, group, ng);
			ng = 0;
			o.i1 = max_z(o.i1, o.i2 - n);
			o.j1 = max_z(o.j1, o.j2 - n);
		}
		group[ng++] = o;
	}
	if (ng > 0 && !(ng == 1 && group[0].tag == 'e')) {
		if (!started)
			pgkeel_sbuf_puts(&out, "--- \n+++ \n");
		put_hunk(&out, &a, &b, group, ng);
	}
	free(group);
	free(ops);
	matcher_free(&m);
	lines_free(&a);
	lines_free(&b);
	return pgkeel_sbuf_finish(&out);
}

/* patronictl's show_diff: plain, or colored as its ydiff/cdiff does on a tty. */
static void show_diff(struct ctl *ctl, const char *before, const char *after)
{
	char *diff = unified_diff(before, after);
	bool tty = isatty(fileno(ctl->out));

	for (char *line = diff, *nl; *line != '\0'; line = nl + 1) {
		const char *color = NULL;

		nl = strchr(line, '\n');
		*nl = '\0';
		if (tty) {
			if (strncmp(line, "--- ", 4) == 0 || strncmp(line, "+++ ", 4) == 0)
				color = "\x1b[33m";
			else if (strncmp(line, "@@ ", 3) == 0)
				color = "\x1b[1;34m";
			else if (line[0] == '-')
				color = "\x1b[1;31m";
			else if (line[0] == '+')
				color = "\x1b[1;32m";
			else
				color = "\x1b[0m";
		}
		fprintf(ctl->out, "%s%s%s\n", color ? color : "", line, color ? "\x1b[0m" : "");
	}
	free(diff);
}

/* ------------------------------------------------------------ input */

/* The whole stream, NUL-terminated (the text may not hold a NUL: YAML refuses it). */
static char *read_stream(FILE *f, size_t *len)
{
	struct pgkeel_sbuf b = {0};
	char buf[8192];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		pgkeel_sbuf_put(&b, buf, n);
	*len = b.len;
	return ferror(f) ? (free(b.p), NULL) : pgkeel_sbuf_finish(&b);
}

/*
 * Parse YAML text into *out.  `what` names the text in messages
 * ("--set 'a=b'", "the file x.yaml"); `where` is the name the parser puts
 * before line:col.  false after printing "Error: ...".
 */
static bool parse_yaml(const char *text, size_t len, const char *what, const char *where,
                       json_object **out)
{
	char err[1024];
	size_t wl = strlen(where);
	unsigned long line, col;
	int used = 0;

	*out = NULL;
	if (pgkeel_yaml_parse(text, len, where, out, NULL, err, sizeof(err)))
		return true;
	if (strncmp(err, where, wl) == 0 && err[wl] == ':' &&
	    sscanf(err + wl + 1, "%lu:%lu: %n", &line, &col, &used) == 2 && used > 0) {
		const char *why = err + wl + 1 + used;

		if (strncmp(why, "invalid YAML: ", 14) == 0)
			why += 14;
		ctl_error("%s is not valid YAML: line %lu, column %lu: %s", what, line, col, why);
	} else {
		ctl_error("%s is not valid YAML: %s", what,
		          strncmp(err, where, wl) == 0 && err[wl] == ':' ? err + wl + 2 : err);
	}
	return false;
}

/* A YAML file (or stdin for "-") that must hold a mapping; NULL after an error. */
static json_object *load_mapping_file(struct ctl *ctl, const char *opt, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? ctl->in : fopen(path, "r");
	char *text, *what;
	size_t len;
	json_object *v = NULL;

	if (f == NULL) {
		ctl_error("%s %s: cannot open: %s", opt, path, strerror(errno));
		return NULL;
	}
	text = read_stream(f, &len);
	if (f != ctl->in)
		fclose(f);
	if (text == NULL) {
		ctl_error("%s %s: cannot read: %s", opt, path, strerror(errno));
		return NULL;
	}
	what = pgkeel_asprintf("%s %s", opt, strcmp(path, "-") == 0 ? "- (stdin)" : path);
	if (parse_yaml(text, len, what, "input", &v) && !json_object_is_type(v, json_type_object)) {
		ctl_error("%s does not hold a mapping of configuration keys", what);
		json_object_put(v);
		v = NULL;
	}
	free(what);
	free(text);
	return v;
}

/* patronictl's apply_config_changes for one "k.k=v"; false after an error. */
static bool apply_pair(json_object *config, const char *opt, const char *pair)
{
	const char *eq = strchr(pair, '=');
	char *what, *key, *p, **path = NULL;
	size_t n = 0, kl;
	json_object *value;
	bool ok;

	if (pair[0] == '\0' || eq == NULL) {
		ctl_error("Invalid parameter setting %s", pair);
		return false;
	}
	what = pgkeel_asprintf("the value of %s '%s'", opt, pair);
	ok = parse_yaml(eq + 1, strlen(eq + 1), what, "value", &value);
	free(what);
	if (!ok)
		return false;
	/* key_path.strip().split(".") */
	kl = (size_t)(eq - pair);
	while (kl > 0 && strchr(" \t\n\r\v\f", pair[kl - 1]) != NULL)
		kl--;
	while (kl > 0 && strchr(" \t\n\r\v\f", pair[0]) != NULL) {
		pair++;
		kl--;
	}
	key = pgkeel_dup_bytes(pair, kl);
	for (p = key;; p++) {
		char *dot = strchr(p, '.');

		path = pgkeel_xreallocarray(path, n + 1, sizeof(*path));
		path[n++] = p;
		if (dot == NULL)
			break;
		*dot = '\0';
		p = dot;
	}
	set_path_value(config, path, n, value, AT_ROOT);
	free(path);
	free(key);
	json_object_put(value);
	return true;
}

/* ------------------------------------------------------------ the editor */

/* $EDITOR, else `editor` or `vi` found in PATH (shutil.which); NULL when none. */
static char *find_editor(void)
{
	static const char *const fallbacks[] = {"editor", "vi"};
	const char *e = getenv("EDITOR"), *path = getenv("PATH");

	if (e != NULL && e[0] != '\0')
		return pgkeel_strdup(e);
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(fallbacks); i++) {
		const char *dir = path ? path : "/bin:/usr/bin";

		for (;;) {
			size_t dl = strcspn(dir, ":");
			char *cand =
			    pgkeel_asprintf("%.*s%s%s", (int)dl, dl ? dir : ".", "/", fallbacks[i]);
			struct stat st;

			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
				return cand;
			free(cand);
			if (dir[dl] == '\0')
				break;
			dir += dl + 1;
		}
	}
	return NULL;
}

/*
 * Run `editor file` on our terminal and wait (SIGINT and SIGQUIT ignored
 * meanwhile, as system() does).  Returns the exit code as Python's
 * subprocess.call reports it (-signal when killed); false after an error.
 */
static bool run_editor(const char *editor, const char *file, int *code)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	int pfd[2], status, child_errno = 0;
	pid_t pid, w;
	ssize_t r;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		ctl_error("cannot run the editor: pipe: %s", strerror(errno));
		return false;
	}
	fflush(NULL);
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid = fork();
	if (pid == 0) {
		const char *argv[] = {editor, file, NULL};

		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		close(pfd[0]);
		execvp(editor, (char *const *)argv);
		child_errno = errno;
		if (write(pfd[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	if (pid == -1) {
		ctl_error("cannot run the editor: fork: %s", strerror(errno));
		close(pfd[0]);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		return false;
	}
	do
		r = read(pfd[0], &child_errno, sizeof(child_errno));
	while (r == -1 && errno == EINTR);
	close(pfd[0]);
	do
		w = waitpid(pid, &status, 0);
	while (w == -1 && errno == EINTR);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (r == (ssize_t)sizeof(child_errno)) {
		ctl_error("cannot run the editor %s: %s", editor, strerror(child_errno));
		return false;
	}
	if (w == -1) {
		ctl_error("waiting for the editor: %s", strerror(errno));
		return false;
	}
	*code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	return true;
}

/*
 * patronictl's invoke_editor: the YAML in <tmp>/<cluster>-config-XXXXXX.yaml,
 * the editor, the text read back (*after) and parsed (*data, which must be a
 * mapping).  false after an error; the file is removed in every case.
 */
static bool invoke_editor(const char *before, const char *scope, char **after, json_object **data)
{
	const char *tmpdir = getenv("TMPDIR");
	char *editor = find_editor(), *file, *text;
	size_t len, blen = strlen(before);
	int fd, code;
	FILE *f;
	bool ok = false;

	*after = NULL;
	*data = NULL;
	if (editor == NULL) {
		ctl_error("EDITOR environment variable is not set. editor or vi are not available");
		return false;
	}
	file = pgkeel_asprintf("%s/%s-config-XXXXXX.yaml", tmpdir && tmpdir[0] ? tmpdir : "/tmp",
	                       scope);
	fd = mkstemps(file, 5);
	if (fd == -1) {
		ctl_error("cannot create a temporary file %s: %s", file, strerror(errno));
		free(file);
		free(editor);
		return false;
	}
	if (write(fd, before, blen) != (ssize_t)blen || close(fd) != 0) {
		ctl_error("cannot write %s: %s", file, strerror(errno));
		goto out;
	}
	if (!run_editor(editor, file, &code))
		goto out;
	if (code != 0) {
		ctl_error("Editor exited with return code %d", code);
		goto out;
	}
	if ((f = fopen(file, "r")) == NULL) {
		ctl_error("cannot read %s back: %s", file, strerror(errno));
		goto out;
	}
	text = read_stream(f, &len);
	fclose(f);
	if (text == NULL) {
		ctl_error("cannot read %s back: %s", file, strerror(errno));
		goto out;
	}
	if (!parse_yaml(text, len, "The edited configuration", "edited", data)) {
		free(text);
		goto out;
	}
	if (!json_object_is_type(*data, json_type_object)) {
		ctl_error("The edited configuration is %s, not a mapping of configuration keys",
		          *data == NULL ? "empty" : "a single value or a list");
		json_object_put(*data);
		*data = NULL;
		free(text);
		goto out;
	}
	*after = text;
	ok = true;
out:
	unlink(file);
	free(file);
	free(editor);
	return ok;
}

/* ------------------------------------------------------------ the commands */

/*
 * The cluster's stored configuration (a copy, {} when the value is not a
 * JSON object, as Patroni reads it) and its CAS version.  NULL after an
 * error (no `config` key: the cluster name is probably wrong).
 */
static json_object *load_config(struct ctl *ctl, const char *scope, char **version)
{
	struct pgkeel_cluster *c;
	json_object *data;

	if (!ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return NULL;
	if (c->config == NULL) {
		ctl_error("cluster %s has no configuration in the DCS (is the cluster name right?)",
		          scope);
		pgkeel_cluster_unref(c);
		return NULL;
	}
	data = c->config->valid && c->config->data != NULL ? copy_value(c->config->data)
	                                                   : json_object_new_object();
	if (version != NULL)
		*version = c->config->version ? pgkeel_strdup(c->config->version) : NULL;
	pgkeel_cluster_unref(c);
	return data;
}

static int run_show_config(struct ctl *ctl, int argc, char **argv)
{
	const char *scope;
	json_object *data;
	char *text;
	int r;

	while ((r = ctl_getopt(&ctl_cmd_show_config, argc, argv, "")) != -1)
		if (r < 0)
			return ctl_getopt_exit(r);
	if (argc - optind > 1)
		return ctl_usage_error(&ctl_cmd_show_config, "Got unexpected extra argument (%s)",
		                       argv[optind + 1]);
	if ((scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL)) == NULL)
		return CTL_FAIL;
	if ((data = load_config(ctl, scope, NULL)) == NULL)
		return CTL_FAIL;
	text = ctl_yaml_dump(data, false);
	fprintf(ctl->out, "%s\n", text);
	free(text);
	json_object_put(data);
	return CTL_OK;
}

static const struct option show_config_options[] = {{0}};

const struct ctl_command ctl_cmd_show_config = {
    .name = "show-config",
    .run = run_show_config,
    .args = "[CLUSTER]",
    .summary = "Show cluster configuration",
    .options = show_config_options,
    .help = "",
};

struct edit_pair {
	const char *opt; /* "--set" or "--pg", for messages */
	char *pair;      /* k.k=v; -p guc=v as postgresql.parameters.guc=v */
};

struct edit_opts {
	bool quiet, force;
	struct edit_pair *pairs; /* the -s ones, then the -p ones (patronictl's order) */
	size_t npairs;
	const char *apply, *replace;
};

static void add_pair(struct edit_opts *o, const char *pair, bool pg)
{
	struct edit_pair *p;

	o->pairs = pgkeel_xreallocarray(o->pairs, o->npairs + 1, sizeof(*o->pairs));
	p = &o->pairs[o->npairs++];
	p->opt = pg ? "--pg" : "--set";
	if (!pg) {
		p->pair = pgkeel_strdup(pair);
		return;
	}
	while (*pair == ' ' || (*pair >= '\t' && *pair <= '\r')) /* v.lstrip() */
		pair++;
	p->pair = pgkeel_asprintf("postgresql.parameters.%s", pair);
}

/*
 * The new configuration from the options or the editor: *after is its
 * YAML as the diff shows it.  NULL after an error.
 */
static json_object *edited_config(struct ctl *ctl, const struct edit_opts *o, const char *scope,
                                  json_object *stored, const char *before, char **after)
{
	json_object *changed = copy_value(stored), *file;
	bool by_options = false;

	*after = NULL;
	if (o->replace != NULL) {
		if ((file = load_mapping_file(ctl, "--replace", o->replace)) == NULL)
			goto fail;
		json_object_put(changed);
		changed = json_object_new_object();
		(void)pgkeel_rest_patch_config(changed, file);
		json_object_put(file);
		by_options = true;
	}
	if (o->apply != NULL) {
		if ((file = load_mapping_file(ctl, "--apply", o->apply)) == NULL)
			goto fail;
		(void)pgkeel_rest_patch_config(changed, file);
		json_object_put(file);
		by_options = true;
	}
	for (size_t i = 0; i < o->npairs; i++) {
		if (!apply_pair(changed, o->pairs[i].opt, o->pairs[i].pair))
			goto fail;
		by_options = true;
	}
	if (by_options) {
		*after = ctl_yaml_dump(changed, false);
		return changed;
	}
	json_object_put(changed);
	if (!invoke_editor(before, scope, after, &changed))
		return NULL;
	return changed;
fail:
	json_object_put(changed);
	return NULL;
}

static int edit_config(struct ctl *ctl, const struct edit_opts *o, const char *scope)
{
	char *version = NULL, *before = NULL, *after = NULL, *json = NULL;
	json_object *stored, *changed = NULL;
	struct pgkeel_err err = {0};
	enum pgkeel_dcs_status st;
	int rc = CTL_FAIL;

	if ((stored = load_config(ctl, scope, &version)) == NULL)
		return CTL_FAIL;
	before = ctl_yaml_dump(stored, false);
	if ((changed = edited_config(ctl, o, scope, stored, before, &after)) == NULL)
		goto out;
	if (py_equal(stored, changed)) {
		if (!o->quiet)
			fprintf(ctl->out, "Not changed\n");
		rc = CTL_OK;
		goto out;
	}
	if (!o->quiet)
		show_diff(ctl, before, after);
	if (((o->apply && strcmp(o->apply, "-") == 0) ||
	     (o->replace && strcmp(o->replace, "-") == 0)) &&
	    !o->force) {
		fprintf(ctl->out, "Use --force option to apply changes\n");
		goto out;
	}
	if (!ctl_confirm(ctl, o->force, "Apply these changes?"))
		goto out;
	json = pgkeel_json_spaced(changed);
	st = ctl->plugin->set_config(ctl->dcs, json, version, ctl_deadline(), &err);
	if (st == PGKEEL_DCS_CONFLICT) {
		ctl_error("Config modification aborted due to concurrent changes");
		goto out;
	}
	if (st != PGKEEL_DCS_OK) {
		ctl_dcs_error("writing the configuration", st, &err);
		goto out;
	}
	fprintf(ctl->out, "Configuration changed\n");
	rc = CTL_OK;
out:
	free(json);
	free(after);
	free(before);
	free(version);
	json_object_put(changed);
	json_object_put(stored);
	return rc;
}

static const struct option edit_config_options[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"set", required_argument, NULL, 's'},
    {"pg", required_argument, NULL, 'p'},
    {"apply", required_argument, NULL, 'A'},
    {"replace", required_argument, NULL, 'R'},
    {"force", no_argument, NULL, 'F'},
    {0},
};

static int run_edit_config(struct ctl *ctl, int argc, char **argv)
{
	struct edit_opts o = {0};
	const char **sets = NULL, **pgs = NULL;
	size_t nsets = 0, npgs = 0;
	const char *scope;
	int r, rc = CTL_USAGE;

	while ((r = ctl_getopt(&ctl_cmd_edit_config, argc, argv, "qs:p:")) != -1) {
		switch (r) {
		case 'q':
			o.quiet = true;
			break;
		case 's':
			sets = pgkeel_xreallocarray(sets, nsets + 1, sizeof(*sets));
			sets[nsets++] = optarg;
			break;
		case 'p':
			pgs = pgkeel_xreallocarray(pgs, npgs + 1, sizeof(*pgs));
			pgs[npgs++] = optarg;
			break;
		case 'A':
			o.apply = optarg;
			break;
		case 'R':
			o.replace = optarg;
			break;
		case 'F':
			o.force = true;
			break;
		default:
			rc = ctl_getopt_exit(r);
			goto out;
		}
	}
	if (argc - optind > 1) {
		rc = ctl_usage_error(&ctl_cmd_edit_config, "Got unexpected extra argument (%s)",
		                     argv[optind + 1]);
		goto out;
	}
	for (size_t i = 0; i < nsets; i++)
		add_pair(&o, sets[i], false);
	for (size_t i = 0; i < npgs; i++)
		add_pair(&o, pgs[i], true);
	if ((scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL)) == NULL)
		rc = CTL_FAIL;
	else
		rc = edit_config(ctl, &o, scope);
out:
	for (size_t i = 0; i < o.npairs; i++)
		free(o.pairs[i].pair);
	free(o.pairs);
	free(sets);
	free(pgs);
	return rc;
}

const struct ctl_command ctl_cmd_edit_config = {
    .name = "edit-config",
    .run = run_edit_config,
    .args = "[CLUSTER] [-q] [-s KEY=VALUE]... [-p GUC=VALUE]... [--apply FILE|-] "
            "[--replace FILE|-] [--force]",
    .summary = "Edit cluster configuration",
    .options = edit_config_options,
    .help = "  -q, --quiet               Do not show changes\n"
            "  -s, --set KEY=VALUE       Set specific configuration value (KEY a dotted path,\n"
            "                            VALUE read as YAML, empty to remove). Can be\n"
            "                            specified multiple times\n"
            "  -p, --pg GUC=VALUE        Set specific PostgreSQL parameter value. Shorthand\n"
            "                            for -s postgresql.parameters.GUC=VALUE. Can be\n"
            "                            specified multiple times\n"
            "  --apply FILE              Apply configuration from file. Use - for stdin.\n"
            "  --replace FILE            Apply configuration from file, replacing existing\n"
            "                            configuration. Use - for stdin.\n"
            "  --force                   Do not ask for confirmation at any point\n",
};
