/*
 * history: see history.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "pg_data.h"
#include "util.h"

bool pgkeel_history_needs_update(const struct pgkeel_history *old, int64_t timeline)
{
	const struct pgkeel_history_line *last;
	size_t n = old != NULL ? old->n_lines : 0;

	if (timeline == 1)
		return n > 0;
	if (n == 0)
		return true;
	last = &old->lines[n - 1];
	return last->timeline != timeline - 1 || last->n_fields != 5;
}

void pgkeel_history_isotime(int64_t sec, int64_t usec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char base[32], zone[8];
	long off;

	localtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff;
	(void)pgkeel_fmt(zone, sizeof(zone), "%c%02ld:%02ld", off < 0 ? '-' : '+',
	                 labs(off) / 3600, (labs(off) % 3600) / 60);
	if (usec != 0)
		(void)pgkeel_fmt(buf, len, "%s.%06lld%s", base, (long long)usec, zone);
	else
		(void)pgkeel_fmt(buf, len, "%s%s", base, zone);
}

/* The old line for (tl, lsn) with a timestamp, or NULL. */
static const struct pgkeel_history_line *old_line(const struct pgkeel_history *old, int64_t tl,
                                                  int64_t lsn)
{
	size_t i;

	/* Patroni keys the old lines by timeline: the last one of a timeline wins */
	for (i = old != NULL ? old->n_lines : 0; i-- > 0;)
		if (old->lines[i].valid && old->lines[i].timeline == tl)
			return old->lines[i].n_fields >= 4 && old->lines[i].lsn == lsn ? &old->lines[i]
			                                                             : NULL;
	return NULL;
}

char *pgkeel_history_update(const struct pgkeel_history *old, int64_t timeline,
                            const char *file_text, int64_t mtime_s, int64_t mtime_us,
                            const char *my_name, int64_t max_timelines_history)
{
	struct pgkeel_history_line *lines = NULL;
	size_t n = 0, cap = 0, first = 0, i;
	char *copy, *line, *save = NULL, stamp[48];
	char *out;

	if (!pgkeel_history_needs_update(old, timeline))
		return NULL;
	if (timeline == 1)
		return pgkeel_strdup("[]");
	if (file_text == NULL)
		return NULL;
	copy = pgkeel_strdup(file_text);
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *p = line, *tab;
		size_t nf = 0;
		int64_t tl, lsn;

		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		/* str.strip().split('\t'): exactly three fields */
		for (tab = p; nf < 4;) {
			f[nf++] = tab;
			tab = strchr(tab, '\t');
			if (tab == NULL)
				break;
			*tab++ = '\0';
		}
		if (nf != 3 || !pgkeel_parse_int64(f[0], &tl) || !pgkeel_lsn_parse(f[1], &lsn))
			continue;
		for (tab = f[2] + strlen(f[2]); tab > f[2] && (tab[-1] == ' ' || tab[-1] == '\r' ||
		                                              tab[-1] == '\t');)
			*--tab = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			lines = realloc(lines, cap * sizeof(*lines));
			if (lines == NULL)
				pgkeel_oom();
		}
		memset(&lines[n], 0, sizeof(lines[n]));
		lines[n].timeline = tl;
		lines[n].lsn = lsn;
		lines[n].reason = pgkeel_strdup(f[2]);
		lines[n].n_fields = 3;
		lines[n].valid = true;
		n++;
	}
	free(copy);
	if (max_timelines_history > 0 && n > (size_t)max_timelines_history)
		first = n - (size_t)max_timelines_history;
	for (i = first; i < n; i++) {
		const struct pgkeel_history_line *o = old_line(old, lines[i].timeline, lines[i].lsn);

		if (o != NULL) {
			lines[i].timestamp = o->timestamp;
			lines[i].n_fields = 4;
			if (o->n_fields == 5) {
				lines[i].new_leader = o->new_leader;
				lines[i].n_fields = 5;
			}
		}
	}
	if (n > first && lines[n - 1].timeline == timeline - 1) {
		/* get_history stamps the line that led to my timeline; the enrichment
		 * above may have given it the old values first, as in Patroni */
		pgkeel_history_isotime(mtime_s, mtime_us, stamp, sizeof(stamp));
		lines[n - 1].timestamp = stamp;
		lines[n - 1].new_leader = (char *)my_name;
		lines[n - 1].n_fields = 5;
	}
	out = n > first ? pgkeel_history_encode(lines + first, n - first) : NULL;
	for (i = 0; i < n; i++)
		free(lines[i].reason);
	free(lines);
	return out;
}
