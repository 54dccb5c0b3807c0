/*
 * pgkeelctl: prompts, member selection, waiting on the DCS, times.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ctl.h"

/* ------------------------------------------------------------ prompts */

static char *read_line(struct ctl *ctl)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, ctl->in);

	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

char *ctl_prompt(struct ctl *ctl, const char *question, const char *def)
{
	char *line;

	if (def != NULL)
		fprintf(ctl->out, "%s [%s]: ", question, def);
	else
		fprintf(ctl->out, "%s: ", question);
	fflush(ctl->out);
	line = read_line(ctl);
	if (line == NULL) {
		fputc('\n', ctl->out);
		return NULL;
	}
	if (line[0] == '\0' && def != NULL) {
		free(line);
		return pgkeel_strdup(def);
	}
	return line;
}

bool ctl_confirm(struct ctl *ctl, bool force, const char *question)
{
	bool yes = false;

	if (force)
		return true;
	for (int tries = 0; tries < 10; tries++) {
		char *line;

		fprintf(ctl->out, "%s [y/N]: ", question);
		fflush(ctl->out);
		line = read_line(ctl);
		if (line == NULL) {
			fputc('\n', ctl->out);
			return false;
		}
		if (line[0] == '\0' || strcasecmp(line, "n") == 0 || strcasecmp(line, "no") == 0) {
			free(line);
			return false;
		}
		yes = strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
		free(line);
		if (yes)
			return true;
		fprintf(ctl->out, "Error: invalid input\n");
	}
	return false;
}

/* ------------------------------------------------------------ members */

bool ctl_role_parse(const char *s, enum ctl_role *out)
{
	static const struct {
		const char *name;
		enum ctl_role role;
	} roles[] = {
	    {"leader", CTL_ROLE_LEADER},   {"primary", CTL_ROLE_PRIMARY},
	    {"master", CTL_ROLE_PRIMARY},  {"standby-leader", CTL_ROLE_STANDBY_LEADER},
	    {"replica", CTL_ROLE_REPLICA}, {"standby", CTL_ROLE_REPLICA},
	    {"any", CTL_ROLE_ANY},
	};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(roles); i++)
		if (strcmp(s, roles[i].name) == 0) {
			*out = roles[i].role;
			return true;
		}
	return false;
}

/* patronictl's get_all_members(): who a role filter selects. */
static bool role_selects(const struct pgkeel_cluster *c, const struct pgkeel_member *m,
                         enum ctl_role role)
{
	const char *leader = pgkeel_cluster_leader_name(c);
	bool is_leader = leader != NULL && leader[0] != '\0' && c->leader->member == m;
	const char *lrole = m->d.role ? m->d.role : "";

	switch (role) {
	case CTL_ROLE_ANY:
		return true;
	case CTL_ROLE_LEADER:
		return is_leader;
	case CTL_ROLE_PRIMARY:
		return is_leader && strcmp(lrole, "standby_leader") != 0;
	case CTL_ROLE_STANDBY_LEADER:
		return is_leader && strcmp(lrole, "master") != 0;
	case CTL_ROLE_REPLICA:
		return leader == NULL || strcmp(m->name, leader) != 0;
	}
	return false;
}

int ctl_select_members(const struct pgkeel_cluster *c, char **names, int n_names,
                       enum ctl_role role, const struct pgkeel_member ***out)
{
	const struct pgkeel_member **sel = pgkeel_xcalloc(c->n_members + 1, sizeof(*sel));
	int n = 0;

	for (int i = 0; i < n_names; i++)
		if (pgkeel_cluster_get_member(c, names[i]) == NULL) {
			free(sel);
			ctl_error("%s is not a member of cluster", names[i]);
			return -1;
		}
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		bool named = n_names == 0;

		for (int j = 0; j < n_names && !named; j++)
			named = strcmp(names[j], m->name) == 0;
		if (named && role_selects(c, m, role))
			sel[n++] = m;
	}
	*out = sel;
	return n;
}

/* ------------------------------------------------------------ waiting */

struct pgkeel_cluster *ctl_wait(struct ctl *ctl, int timeout_s, bool progress,
                                bool (*cond)(const struct pgkeel_cluster *c, void *arg),
                                void *arg, bool *met)
{
	int64_t start = pgkeel_now_monotonic_ms(), end = start + (int64_t)timeout_s * 1000;
	int64_t next_dot = start + 1000;
	struct pgkeel_cluster *last = NULL;
	bool dots = false;

	*met = false;
	/* bounded: one load per 0.5 s until the deadline */
	for (int i = 0; i < timeout_s * 2 + 2; i++) {
		struct pgkeel_err err = {0};
		struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
		int64_t now;

		if (ctl->plugin->load_cluster(ctl->dcs, ctl_deadline(), pgkeel_cluster_builder_add, b,
		                              &err) == PGKEEL_DCS_OK) {
			pgkeel_cluster_unref(last);
			last = pgkeel_cluster_builder_finish(b);
			if (cond(last, arg)) {
				*met = true;
				break;
			}
		} else {
			pgkeel_cluster_builder_free(b);
		}
		now = pgkeel_now_monotonic_ms();
		if (now >= end)
			break;
		if (progress && now >= next_dot) {
			fputc('.', ctl->out);
			fflush(ctl->out);
			dots = true;
			next_dot += 1000;
		}
		{
			int64_t nap = end - now < 500 ? end - now : 500;
			struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)nap * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
	if (dots)
		fputc('\n', ctl->out);
	return last;
}

/* ------------------------------------------------------------ times */

void ctl_local_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char base[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
	pgkeel_fmt(buf, len, "%s.%06ld", base, (long)tv.tv_usec);
}

bool ctl_parse_schedule(const char *s, char **out)
{
	struct pgkeel_time t;
	int off;
	char text[64];

	*out = NULL;
	if (s == NULL || strcmp(s, "now") == 0)
		return true;
	/* the core's reading of dateutil's forms, as patronictl parses it */
	if (!pgkeel_time_parse(s, &t))
		goto bad;
	off = t.offset_min;
	if (!t.has_tz) {
		/* the local time zone, as patronictl localizes a naive time */
		struct tm tm = {.tm_year = t.year - 1900, .tm_mon = t.mon - 1, .tm_mday = t.day,
		                .tm_hour = t.hour, .tm_min = t.min, .tm_sec = t.sec, .tm_isdst = -1};

		if (mktime(&tm) == (time_t)-1)
			goto bad;
		off = (int)(tm.tm_gmtoff / 60);
	}
	/* Python's isoformat(): microseconds only when there are some */
	if (t.usec != 0)
		pgkeel_fmt(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06d%c%02d:%02d", t.year,
		           t.mon, t.day, t.hour, t.min, t.sec, t.usec, off < 0 ? '-' : '+',
		           abs(off) / 60, abs(off) % 60);
	else
		pgkeel_fmt(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", t.year, t.mon,
		           t.day, t.hour, t.min, t.sec, off < 0 ? '-' : '+', abs(off) / 60,
		           abs(off) % 60);
	*out = pgkeel_strdup(text);
	return true;
bad:
	ctl_error("Unable to parse scheduled timestamp (%s). It should be in an unambiguous format "
	          "(e.g. ISO 8601)",
	          s);
	return false;
}
