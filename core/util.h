/* Small helpers shared by the core: checked formatting, clocks, strings. */
#ifndef PGKEEL_UTIL_H
#define PGKEEL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

#define PGKEEL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* snprintf that reports truncation: true when the whole text fit. */
bool pgkeel_fmt(char *buf, size_t len, const char *fmt, ...) PGKEEL_PRINTF(3, 4);
bool pgkeel_vfmt(char *buf, size_t len, const char *fmt, va_list ap) PGKEEL_PRINTF(3, 0);

/* Write "pgkeel: out of memory" and abort: the one response to a failed allocation. */
void pgkeel_oom(void) __attribute__((noreturn));

/* Allocating printf; aborts the process only on out-of-memory. */
char *pgkeel_asprintf(const char *fmt, ...) PGKEEL_PRINTF(1, 2);
char *pgkeel_strdup(const char *s);
void *pgkeel_xcalloc(size_t n, size_t size);

int64_t pgkeel_now_monotonic_ms(void);
int64_t pgkeel_now_boottime_ms(void);

/* Parse a whole decimal integer; false on junk, overflow or empty input. */
bool pgkeel_parse_int64(const char *s, int64_t *out);

bool pgkeel_str_has_suffix(const char *s, const char *suffix);

/*
 * A date-time as dateutil.parser.parse reads the unambiguous ISO 8601
 * forms: a date, then optionally 'T' (or 't') or ' ' and HH[:MM[:SS[.fraction]]]
 * (fraction kept to microseconds), then optionally 'Z', "UTC", "GMT" or an
 * offset +HH, +HHMM, +HH:MM (a space may precede it); spaces around.  The
 * date must exist (29 February only in leap years) and seconds stop at 59,
 * as Python's datetime wants.  has_tz tells whether a zone was given.
 */
struct pgkeel_time {
	int year, mon, day, hour, min, sec, usec;
	bool has_tz;
	int offset_min; /* east of UTC; 0 without a zone */
};

bool pgkeel_time_parse(const char *s, struct pgkeel_time *t) PGKEEL_MUSTCHECK;
/* Microseconds since the epoch, the offset applied (UTC when there is none). */
int64_t pgkeel_time_epoch_us(const struct pgkeel_time *t);

#endif
