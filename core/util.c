#include "autoconf.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool pgkeel_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, len, fmt, ap);

	return n >= 0 && (size_t)n < len;
}

bool pgkeel_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = pgkeel_vfmt(buf, len, fmt, ap);
	va_end(ap);
	return ok;
}

void pgkeel_oom(void)
{
	static const char msg[] = "pgkeel: out of memory\n";

	if (fwrite(msg, 1, sizeof(msg) - 1, stderr) == 0)
		abort();
	abort();
}

char *pgkeel_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		pgkeel_oom();
	return s;
}

char *pgkeel_strdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		pgkeel_oom();
	return d;
}

void *pgkeel_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		pgkeel_oom();
	return p;
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pgkeel_now_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t pgkeel_now_boottime_ms(void)
{
	return clock_ms(CLOCK_BOOTTIME);
}

bool pgkeel_parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool pgkeel_str_has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* ------------------------------------------------------------ date-times */

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* n digits exactly at *p into *out. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* [HH[:MM[:SS[.fraction]]]] after the date's 'T' or ' ' */
static bool parse_clock(const char **pp, struct pgkeel_time *t)
{
	const char *p = *pp;

	if (!digits(&p, 2, &t->hour))
		return false;
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &t->min))
			return false;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &t->sec))
				return false;
			if (*p == '.' || *p == ',') {
				int n = 0;

				p++;
				if (!isdigit((unsigned char)*p))
					return false;
				for (; isdigit((unsigned char)*p); p++, n++)
					if (n < 6)
						t->usec = t->usec * 10 + (*p - '0');
				for (; n < 6; n++)
					t->usec *= 10;
			}
		}
	}
	*pp = p;
	return t->hour <= 23 && t->min <= 59 && t->sec <= 59;
}

/* 'Z', "UTC", "GMT", +HH, +HHMM, +HH:MM or nothing */
static bool parse_zone(const char **pp, struct pgkeel_time *t)
{
	const char *p = *pp;

	if (*p == 'Z' || *p == 'z') {
		p++;
		t->has_tz = true;
	} else if (strncmp(p, "UTC", 3) == 0 || strncmp(p, "GMT", 3) == 0) {
		p += 3;
		t->has_tz = true;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, hh, mm = 0;

		if (!digits(&p, 2, &hh))
			return false;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && !digits(&p, 2, &mm))
			return false;
		if (hh > 23 || mm > 59)
			return false;
		t->has_tz = true;
		t->offset_min = sign * (hh * 60 + mm);
	}
	*pp = p;
	return true;
}

bool pgkeel_time_parse(const char *s, struct pgkeel_time *t)
{
	const char *p = s;

	memset(t, 0, sizeof(*t));
	if (p == NULL)
		return false;
	while (isspace((unsigned char)*p))
		p++;
	if (!digits(&p, 4, &t->year) || *p++ != '-' || !digits(&p, 2, &t->mon) || *p++ != '-' ||
	    !digits(&p, 2, &t->day))
		return false;
	if (t->year < 1 || t->mon < 1 || t->mon > 12 || t->day < 1 ||
	    t->day > days_in_month(t->year, t->mon))
		return false;
	if ((*p == 'T' || *p == 't' || *p == ' ') && isdigit((unsigned char)p[1])) {
		p++;
		if (!parse_clock(&p, t))
			return false;
	}
	while (*p == ' ')
		p++;
	if (!parse_zone(&p, t))
		return false;
	while (isspace((unsigned char)*p))
		p++;
	return *p == '\0';
}

int64_t pgkeel_time_epoch_us(const struct pgkeel_time *t)
{
	int64_t secs = days_from_civil(t->year, t->mon, t->day) * 86400 + t->hour * 3600 +
	               t->min * 60 + t->sec - (int64_t)t->offset_min * 60;

	return secs * 1000000 + t->usec;
}
