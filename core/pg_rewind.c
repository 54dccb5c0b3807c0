/*
 * pg_rewind decisions (see pg_rewind.h).
 */
#include "autoconf.h"

#include "pg_rewind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

enum pgkeel_rewind_need pgkeel_rewind_decide(const struct pgkeel_rewind_facts *f)
{
	if (f->local_tli <= 0 || f->local_lsn < 0 || f->leader_tli <= 0)
		return PGKEEL_REWIND_UNKNOWN;
	if (f->local_tli > f->leader_tli)
		return PGKEEL_REWIND_NEEDED; /* not always something pg_rewind can fix */
	if (f->local_tli == f->leader_tli)
		return PGKEEL_REWIND_NOT_NEEDED;
	for (size_t i = 0; i < f->n_history; i++) {
		const struct pgkeel_tl_switch *h = &f->history[i];

		if (h->parent_tli == f->local_tli) {
			/*
			 * No rewind when a replica has not replayed past the switch, or
			 * when a former primary's last checkpoint ends exactly where the
			 * new timeline began (a clean shutdown before the promotion).
			 */
			if (f->in_recovery)
				return f->local_lsn > h->switchpoint ? PGKEEL_REWIND_NEEDED
				                                     : PGKEEL_REWIND_NOT_NEEDED;
			if (f->local_lsn >= h->switchpoint)
				return PGKEEL_REWIND_NEEDED;
			return h->switchpoint != f->checkpoint_end ? PGKEEL_REWIND_NEEDED
			                                           : PGKEEL_REWIND_NOT_NEEDED;
		}
		if (h->parent_tli > f->local_tli)
			return PGKEEL_REWIND_NEEDED;
	}
	/* our timeline is not in the leader's history at all */
	return PGKEEL_REWIND_NEEDED;
}

bool pgkeel_rewind_possible(bool use_pg_rewind, json_object *controldata, char *why,
                            size_t whylen)
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
		(void)pgkeel_fmt(why, whylen, "pg_rewind needs wal_log_hints = on or data checksums, "
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
	(void)pgkeel_fmt(lsn8, sizeof(lsn8), "%X/%08X", (unsigned)(u >> 32), (unsigned)(u & 0xffffffffu));
	pgkeel_lsn_format(lsn, plain, sizeof(plain));
	(void)pgkeel_fmt(want_out, sizeof(want_out), ", lsn: %s, prev ", lsn8);
	(void)pgkeel_fmt(pattern, sizeof(pattern),
	                 "error in WAL record at %s: invalid record length at ", plain);
	if (strstr(out, want_out) == NULL || (p = strstr(err, pattern)) == NULL)
		return 0;
	p += strlen(pattern);
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
				argv_add(argv, n, pgkeel_asprintf("--%s", json_object_get_string(o)));
			else
				add_options(argv, n, o);
		}
	}
}

char **pgkeel_rewind_argv(const char *bin_dir, const char *data_dir, const char *source_dsn,
                          bool restore_target_wal, const char *config_file,
                          json_object *extra_options)
{
	char **argv = NULL;
	size_t n = 0;

	argv_add(&argv, &n,
	         bin_dir && *bin_dir ? pgkeel_asprintf("%s/pg_rewind", bin_dir)
	                             : pgkeel_strdup("pg_rewind"));
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
