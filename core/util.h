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

#endif
