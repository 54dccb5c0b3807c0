/*
 * pg_rewind decisions (see pg_rewind.h).
 */
#include "autoconf.h"

#include "pg_rewind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pg_data.h"
#include "util.h"

int pgkeel_tl_history_parse(const char *text, struct pgkeel_tl_switch *out, size_t max)
{
	const char *line = text;
	size_t n = 0;

	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[256], *tab, *tab2, *end;
		long long tli;
		int64_t lsn;

		if (len >= sizeof(buf))
			return -1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl ? nl + 1 : NULL;
		while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' '))
			buf[--len] = '\0';
		if (buf[0] == '\0' || buf[0] == '#')
			continue;
		tab = strchr(buf, '\t');
		if (tab == NULL)
			return -1;
		*tab = '\0';
		tab2 = strchr(tab + 1, '\t');
		if (tab2 != NULL)
			*tab2 = '\0';
		tli = strtoll(buf, &end, 10);
		if (*end != '\0' || tli <= 0 || !pgkeel_lsn_parse(tab + 1, &lsn))
			return -1;
		if (n < max) {
			out[n].parent_tli = tli;
			out[n].switchpoint = lsn;
		}
		n++;
	}
	return n > max ? (int)max : (int)n;
}

const struct pgkeel_tl_switch *pgkeel_rewind_fork_point(const struct pgkeel_rewind_facts *f,
                                                        size_t *index)
{
	for (size_t i = 0; i < f->n_history; i++) {
		if (index != NULL)
			*index = i;
		if (f->history[i].parent_tli == f->local_tli)
			return &f->history[i];
		if (f->history[i].parent_tli > f->local_tli)
			return NULL;
	}
	if (index != NULL)
		*index = f->n_history > 0 ? f->n_history - 1 : 0;
	return NULL;
}

bool pgkeel_rewind_needs_checkpoint_end(const struct pgkeel_rewind_facts *f)
{
	const struct pgkeel_tl_switch *h;

	if (f->in_recovery || f->local_tli <= 0 || f->local_tli >= f->leader_tli)
		return false;
	h = pgkeel_rewind_fork_point(f, NULL);
	return h != NULL && f->local_lsn < h->switchpoint;
}

enum pgkeel_rewind_need pgkeel_rewind_decide(const struct pgkeel_rewind_facts *f)
{
	const struct pgkeel_tl_switch *h;

	if (f->local_tli <= 0 || f->local_lsn < 0 || f->leader_tli <= 0)
		return PGKEEL_REWIND_UNKNOWN;
	if (f->local_tli > f->leader_tli)
		return PGKEEL_REWIND_NEEDED; /* not always something pg_rewind can fix */
	if (f->local_tli == f->leader_tli)
		return PGKEEL_REWIND_NOT_NEEDED;
	h = pgkeel_rewind_fork_point(f, NULL);
	if (h == NULL) /* a later timeline forked first, or ours is not in the history */
		return PGKEEL_REWIND_NEEDED;
	/*
	 * No rewind when a replica has not replayed past the switch, or when a
	 * former primary's last checkpoint ends exactly where the new timeline
	 * began (a clean shutdown before the promotion).
	 */
	if (f->in_recovery)
		return f->local_lsn > h->switchpoint ? PGKEEL_REWIND_NEEDED
		                                     : PGKEEL_REWIND_NOT_NEEDED;
	if (f->local_lsn >= h->switchpoint)
		return PGKEEL_REWIND_NEEDED;
	return h->switchpoint != f->checkpoint_end ? PGKEEL_REWIND_NEEDED
	                                           : PGKEEL_REWIND_NOT_NEEDED;
}

bool pgkeel_rewind_local_from_controldata(json_object *cd, bool *in_recovery, int64_t *tli,
                                          int64_t *lsn)
{
	const char *state = NULL;

	if (!pgkeel_controldata_str(cd, "Database cluster state", &state))
		return false;
	if (strcmp(state, "shut down in recovery") == 0 ||
	    strcmp(state, "in archive recovery") == 0) {
		if (!pgkeel_controldata_lsn(cd, "Minimum recovery ending location", lsn) ||
		    !pgkeel_controldata_int(cd, "Min recovery ending loc's timeline", tli))
			return false;
		if (*lsn != 0 && *tli != 0) {
			*in_recovery = true;
			return true;
		}
		state = "shut down"; /* it was a primary when it stopped */
	}
	if (strcmp(state, "shut down") != 0)
		return false;
	*in_recovery = false;
	return pgkeel_controldata_lsn(cd, "Latest checkpoint location", lsn) &&
	       pgkeel_controldata_int(cd, "Latest checkpoint's TimeLineID", tli);
}

bool pgkeel_rewind_possible(bool use_pg_rewind, json_object *controldata, char *why, size_t whylen)
{
	const char *hints = NULL;
	int64_t checksums = 0;

	if (!use_pg_rewind) {
		if (why != NULL)
			(void)pgkeel_fmt(why, whylen, "postgresql.use_pg_rewind is off");
		return false;
	}
	(void)pgkeel_controldata_str(controldata, "wal_log_hints setting", &hints);
	(void)pgkeel_controldata_int(controldata, "Data page checksum version", &checksums);
	if ((hints != NULL && strcmp(hints, "on") == 0) || checksums != 0)
		return true;
	if (why != NULL)
		(void)pgkeel_fmt(why, whylen,
		                 "pg_rewind needs wal_log_hints = on or data checksums, "
		                 "and this data directory has neither");
	return false;
}

int64_t pgkeel_waldump_checkpoint_end(int64_t lsn, const char *out, const char *err)
{
	char lsn8[32], plain[32], want_out[64], pattern[96];
	const char *p, *q;
	uint64_t u = (uint64_t)lsn;
	char buf[32];
	int64_t end;
	size_t n;

	if (out == NULL || err == NULL)
		return 0;
	/* exactly one line each, as Patroni requires */
	n = strlen(out);
	while (n > 0 && out[n - 1] == '\n')
		n--;
	if (memchr(out, '\n', n) != NULL)
		return 0;
	n = strlen(err);
	while (n > 0 && err[n - 1] == '\n')
		n--;
	if (memchr(err, '\n', n) != NULL)
		return 0;
	(void)pgkeel_fmt(lsn8, sizeof(lsn8), "%X/%08X", (unsigned)(u >> 32),
	                 (unsigned)(u & 0xffffffffu));
	pgkeel_lsn_format(lsn, plain, sizeof(plain));
	(void)pgkeel_fmt(want_out, sizeof(want_out), ", lsn: %s, prev ", lsn8);
	(void)pgkeel_fmt(pattern, sizeof(pattern),
	                 "error in WAL record at %s: invalid record length at ", plain);
	if (strstr(out, want_out) == NULL || (p = strstr(err, pattern)) == NULL)
		return 0;
	p += strlen(pattern);
	q = strstr(p, ": expected at least "); /* 16+ */
	if (q == NULL)
		q = strstr(p, ": wanted ");
	if (q == NULL || (size_t)(q - p) >= sizeof(buf))
		return 0;
	memcpy(buf, p, (size_t)(q - p));
	buf[q - p] = '\0';
	return pgkeel_lsn_parse(buf, &end) ? end : 0;
}

static void argv_add(char ***argv, size_t *n, char *s)
{
	*argv = realloc(*argv, (*n + 2) * sizeof(**argv));
	if (*argv == NULL)
		pgkeel_oom();
	(*argv)[(*n)++] = s;
	(*argv)[*n] = NULL;
}

/* postgresql.rewind-style options: ["opt", {"key": "value"}] or {"key": "value"} */
static void add_options(char ***argv, size_t *n, json_object *opts)
{
	if (json_object_is_type(opts, json_type_object)) {
		json_object_object_foreach(opts, k, v)
		{
			argv_add(argv, n, pgkeel_asprintf("--%s=%s", k, json_object_get_string(v)));
		}
	} else if (json_object_is_type(opts, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(opts); i++) {
			json_object *o = json_object_array_get_idx(opts, i);

			if (json_object_is_type(o, json_type_string))
				argv_add(argv, n,
				         pgkeel_asprintf("--%s", json_object_get_string(o)));
			else
				add_options(argv, n, o);
		}
	}
}

char **pgkeel_rewind_argv(const char *program, const char *data_dir, const char *source_dsn,
                          bool restore_target_wal, const char *config_file,
                          json_object *extra_options)
{
	char **argv = NULL;
	size_t n = 0;

	argv_add(&argv, &n, pgkeel_strdup(program != NULL && *program ? program : "pg_rewind"));
	if (restore_target_wal) {
		argv_add(&argv, &n, pgkeel_strdup("--restore-target-wal"));
		if (config_file != NULL)
			argv_add(&argv, &n, pgkeel_asprintf("--config-file=%s", config_file));
	}
	add_options(&argv, &n, extra_options);
	argv_add(&argv, &n, pgkeel_strdup("-D"));
	argv_add(&argv, &n, pgkeel_strdup(data_dir));
	argv_add(&argv, &n, pgkeel_strdup("--source-server"));
	argv_add(&argv, &n, pgkeel_strdup(source_dsn));
	return argv;
}

void pgkeel_rewind_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

bool pgkeel_rewind_can_restore(int server_version, bool have_restore_command,
                               bool config_in_data_dir, bool *config_file)
{
	bool can = have_restore_command &&
	           (server_version >= 150000 || (server_version >= 130000 && config_in_data_dir));

	*config_file = can && server_version >= 150000 && !config_in_data_dir;
	return can;
}

bool pgkeel_rewind_missing_wal(const char *output, char name[25])
{
	static const char pattern[] = "could not open file \"";
	const char *line = output;

	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		const char *b = memmem(line, len, pattern, sizeof(pattern) - 1);

		if (b != NULL) {
			const char *e, *slash = NULL;

			b += sizeof(pattern) - 1;
			e = memmem(b, len - (size_t)(b - line), "\": ", 3);
			for (const char *p = b; e != NULL && p < e; p++)
				if (*p == '/')
					slash = p;
			/* <dir ending in /pg_wal>/<24 characters> */
			if (slash != NULL && e - slash - 1 == 24 && slash - b >= 7 &&
			    memcmp(slash - 7, "/pg_wal", 7) == 0) {
				memcpy(name, slash + 1, 24);
				name[24] = '\0';
				return true;
			}
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return false;
}

char *pgkeel_rewind_archiver_command(const char *tmpl, const char *wal_dir, const char *wal)
{
	struct pgkeel_sbuf b = {0};
	size_t n = strlen(tmpl);

	for (size_t i = 0; i < n; i++) {
		if (tmpl[i] != '%' || i + 1 >= n) {
			pgkeel_sbuf_putc(&b, tmpl[i]);
			continue;
		}
		switch (tmpl[i + 1]) {
		case 'p':
			pgkeel_sbuf_puts(&b, wal_dir);
			if (wal_dir[0] != '\0' && wal_dir[strlen(wal_dir) - 1] != '/')
				pgkeel_sbuf_putc(&b, '/');
			pgkeel_sbuf_puts(&b, wal);
			break;
		case 'f':
			pgkeel_sbuf_puts(&b, wal);
			break;
		case 'r':
			pgkeel_sbuf_puts(&b, "000000010000000000000001");
			break;
		case '%':
			pgkeel_sbuf_putc(&b, '%');
			break;
		default:
			/* not a placeholder: the % stays, the next character is read as usual */
			pgkeel_sbuf_putc(&b, '%');
			continue;
		}
		i++;
	}
	return pgkeel_sbuf_finish(&b);
}

bool pgkeel_rewind_is_ready_file(const char *name)
{
	for (size_t i = 0; i < 24; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
			return false;
	return strcmp(name + 24, ".ready") == 0 || strcmp(name + 24, ".partial.ready") == 0;
}

json_object *pgkeel_rewind_postmaster_opts(const char *text)
{
	json_object *o = json_object_new_object();
	const char *p = text;

	/* Python: for opt in data.split('" "') */
	while (p != NULL) {
		const char *sep = strstr(p, "\" \"");
		size_t len = sep != NULL ? (size_t)(sep - p) : strlen(p);
		const char *eq = memchr(p, '=', len);

		if (eq != NULL && len >= 2 && p[0] == '-' && p[1] == '-') {
			const char *ns = p, *ne = eq, *ve = p + len;

			while (ns < ne && *ns == '-') /* name.strip('-') */
				ns++;
			while (ne > ns && ne[-1] == '-')
				ne--;
			while (ve > eq + 1 && (ve[-1] == '"' || ve[-1] == '\n')) /* rstrip('"\n') */
				ve--;
			{
				char *name = pgkeel_dup_bytes(ns, (size_t)(ne - ns));
				char *value = pgkeel_dup_bytes(eq + 1, (size_t)(ve - eq - 1));

				json_object_object_add(o, name, json_object_new_string(value));
				free(name);
				free(value);
			}
		}
		p = sep != NULL ? sep + 3 : NULL;
	}
	return o;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char **pgkeel_rewind_single_user_argv(const char *postgres, const char *data_dir,
                                      json_object *postmaster_opts)
{
	json_object *opts = json_object_new_object();
	const char **names;
	char **argv = NULL;
	size_t n = 0, k = 0;

	if (json_object_is_type(postmaster_opts, json_type_object)) {
		json_object_object_foreach(postmaster_opts, key, val)
		{
			json_object_object_add(opts, key, json_object_get(val));
		}
	}
	json_object_object_add(opts, "archive_mode", json_object_new_string("on"));
	json_object_object_add(opts, "archive_command", json_object_new_string("false"));
	names = pgkeel_xcalloc((size_t)json_object_object_length(opts) + 1, sizeof(*names));
	{
		json_object_object_foreach(opts, key, val)
		{
			(void)val;
			names[k++] = key;
		}
	}
	qsort(names, k, sizeof(*names), cmp_str);
	argv_add(&argv, &n, pgkeel_strdup(postgres));
	argv_add(&argv, &n, pgkeel_strdup("--single"));
	argv_add(&argv, &n, pgkeel_strdup("-D"));
	argv_add(&argv, &n, pgkeel_strdup(data_dir));
	for (size_t i = 0; i < k; i++) {
		json_object *v = NULL;

		(void)json_object_object_get_ex(opts, names[i], &v);
		argv_add(&argv, &n, pgkeel_strdup("-c"));
		argv_add(&argv, &n, pgkeel_asprintf("%s=%s", names[i], json_object_get_string(v)));
	}
	argv_add(&argv, &n, pgkeel_strdup("template1"));
	free(names);
	json_object_put(opts);
	return argv;
}
