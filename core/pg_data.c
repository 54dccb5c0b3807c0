/*
 * Facts about a PostgreSQL data directory (see pg_data.h).
 */
#include "autoconf.h"

#include "pg_data.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define START_TIME_SLACK 3 /* seconds between fork and the pidfile's timestamp */

bool pgkeel_lsn_parse(const char *s, int64_t *out)
{
	char *end;
	unsigned long long hi, lo;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	hi = strtoull(s, &end, 16);
	if (errno != 0 || end == s || *end != '/' || hi > 0xffffffffULL)
		return false;
	s = end + 1;
	lo = strtoull(s, &end, 16);
	if (errno != 0 || end == s || *end != '\0' || lo > 0xffffffffULL)
		return false;
	if (hi > 0x7fffffffULL)
		return false; /* beyond int64 */
	*out = (int64_t)((hi << 32) | lo);
	return true;
}

void pgkeel_lsn_format(int64_t lsn, char *buf, size_t len)
{
	uint64_t u = (uint64_t)lsn;

	(void)pgkeel_fmt(buf, len, "%" PRIX64 "/%" PRIX64, u >> 32, u & 0xffffffffu);
}

bool pgkeel_pg_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		return errno == ENOENT;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static bool read_small_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

int pgkeel_pg_data_version(const char *data_dir)
{
	char path[PATH_MAX], buf[32];
	int64_t v;
	char *nl;

	if (!pgkeel_fmt(path, sizeof(path), "%s/PG_VERSION", data_dir) ||
	    !read_small_file(path, buf, sizeof(buf)))
		return 0;
	nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	return pgkeel_parse_int64(buf, &v) && v > 0 && v < 1000 ? (int)v : 0;
}

bool pgkeel_pidfile_read(const char *data_dir, struct pgkeel_pidfile *out)
{
	char path[PATH_MAX], buf[8192];
	char *line;
	int n = 0;
	int64_t v;

	memset(out, 0, sizeof(*out));
	if (!pgkeel_fmt(path, sizeof(path), "%s/postmaster.pid", data_dir) ||
	    !read_small_file(path, buf, sizeof(buf)))
		return false;
	/* strtok_r would merge empty lines: split by hand */
	line = buf;
	while (line != NULL && n < 8) {
		char *nl = strchr(line, '\n');

		if (nl != NULL)
			*nl = '\0';
		switch (n) {
		case 0:
			if (!pgkeel_parse_int64(line, &v) || v <= 0 || v > INT_MAX)
				return false;
			out->pid = (pid_t)v;
			break;
		case 1:
			(void)pgkeel_fmt(out->data_dir, sizeof(out->data_dir), "%s", line);
			break;
		case 2:
			if (pgkeel_parse_int64(line, &v))
				out->start_time = v;
			break;
		case 3:
			if (pgkeel_parse_int64(line, &v) && v > 0 && v < 65536)
				out->port = (int)v;
			break;
		case 4:
			(void)pgkeel_fmt(out->socket_dir, sizeof(out->socket_dir), "%s", line);
			break;
		case 5:
			(void)pgkeel_fmt(out->listen, sizeof(out->listen), "%s", line);
			break;
		case 7: {
			/* the status is padded with spaces */
			size_t l = strlen(line);

			while (l > 0 && line[l - 1] == ' ')
				line[--l] = '\0';
			(void)pgkeel_fmt(out->status, sizeof(out->status), "%s", line);
			break;
		}
		default:
			break;
		}
		n++;
		line = nl ? nl + 1 : NULL;
	}
	return out->pid > 0;
}

int64_t pgkeel_process_start_time(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long start_ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	long long btime = -1;
	char line[256];

	if (!pgkeel_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid) ||
	    !read_small_file(path, buf, sizeof(buf)))
		return -1;
	/* the command name may contain spaces and parentheses: skip to the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	p++;
	/* fields after the name start at 3 (state); starttime is field 22 */
	for (int field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p == NULL || sscanf(p + 1, "%llu", &start_ticks) != 1 || hz <= 0)
		return -1;
	f = fopen("/proc/stat", "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	if (btime < 0)
		return -1;
	return btime + (int64_t)(start_ticks / (unsigned long long)hz);
}

/* Does /proc/<pid>/cwd resolve to the same directory as data_dir? */
static bool cwd_is(pid_t pid, const char *data_dir)
{
	char link[64], cwd[PATH_MAX], want[PATH_MAX];
	ssize_t n;

	if (!pgkeel_fmt(link, sizeof(link), "/proc/%d/cwd", (int)pid))
		return false;
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n < 0)
		return false;
	cwd[n] = '\0';
	if (realpath(data_dir, want) == NULL)
		return false;
	return strcmp(cwd, want) == 0;
}

enum pgkeel_postmaster_state pgkeel_postmaster_check(const char *data_dir,
                                                     struct pgkeel_pidfile *pf)
{
	struct pgkeel_pidfile local;
	struct pgkeel_pidfile *p = pf ? pf : &local;
	int64_t started;

	if (!pgkeel_pidfile_read(data_dir, p))
		return PGKEEL_PM_NOT_RUNNING;
	if (kill(p->pid, 0) != 0 && errno == ESRCH)
		return PGKEEL_PM_NOT_RUNNING;
	if (!cwd_is(p->pid, data_dir))
		return PGKEEL_PM_STALE;
	started = pgkeel_process_start_time(p->pid);
	if (p->start_time > 0 && started >= 0 &&
	    (started > p->start_time + START_TIME_SLACK ||
	     started < p->start_time - START_TIME_SLACK))
		return PGKEEL_PM_STALE;
	return PGKEEL_PM_RUNNING;
}

json_object *pgkeel_controldata_parse(const char *text)
{
	json_object *o;
	const char *line = text;

	if (text == NULL || *text == '\0')
		return NULL;
	o = json_object_new_object();
	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *colon = memchr(line, ':', len);

		if (colon != NULL) {
			const char *v = colon + 1;
			size_t vl = len - (size_t)(v - line);
			char *name = strndup(line, (size_t)(colon - line));

			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\r'))
				vl--;
			if (name != NULL)
				json_object_object_add(o, name, json_object_new_string_len(v, (int)vl));
			free(name);
		}
		line = nl ? nl + 1 : NULL;
	}
	return o;
}

bool pgkeel_controldata_str(json_object *cd, const char *name, const char **out)
{
	json_object *v;

	if (cd == NULL || !json_object_object_get_ex(cd, name, &v))
		return false;
	*out = json_object_get_string(v);
	return true;
}

bool pgkeel_controldata_int(json_object *cd, const char *name, int64_t *out)
{
	const char *s;

	return pgkeel_controldata_str(cd, name, &s) && pgkeel_parse_int64(s, out);
}

bool pgkeel_controldata_lsn(json_object *cd, const char *name, int64_t *out)
{
	const char *s;

	return pgkeel_controldata_str(cd, name, &s) && pgkeel_lsn_parse(s, out);
}
