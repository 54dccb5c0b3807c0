/*
 * backends/common: what every DCS backend does the same way -- the error
 * detail, string copies, init's parameters and set_ttl's timings.  Compiled into
 * each backend .so (the backends' local.mk list these files); hidden like
 * the rest of a backend, which exports only pgkeel_dcs_plugin_entry.  Only
 * the public ABI header here, never a core one: a backend talks to the
 * daemon through pgkeel/dcs.h alone.
 */
#ifndef PGKEEL_DCS_COMMON_H
#define PGKEEL_DCS_COMMON_H

#include <stdbool.h>

#include <pgkeel/dcs.h>

/* err->code and err->msg (cut with "..." when too long); nothing when err is NULL. */
void dcsc_set_err(struct pgkeel_err *err, int code, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

/* strdup that aborts on out-of-memory; NULL stays NULL. */
char *dcsc_strdup(const char *s);
/* *dst replaced by a copy of src (NULL: none), the old one freed. */
void dcsc_set_str(char **dst, const char *src);

/* What every backend keeps of init's parameters and of set_ttl's timings. */
struct dcsc_handle {
	const struct pgkeel_host *host;
	bool ctl; /* PGKEEL_DCS_CTL: a pgkeelctl handle, which writes nothing */
	int ttl;
	int loop_wait;
	int retry_timeout;
};

/*
 * The checks every backend's init makes on its parameters, in this order
 * and with "<backend>: ..." texts: host and params given, params as large
 * as up to user_agent, scope and namespace set; a member handle (not
 * PGKEEL_DCS_CTL) named -- with znode_name, a non-empty name without '/';
 * ttl, loop_wait and retry_timeout positive.  Then h is filled in:
 * PGKEEL_DCS_OK, or PGKEEL_DCS_INVALID with err (h untouched).
 */
enum pgkeel_dcs_status dcsc_handle_init(struct dcsc_handle *h, const char *backend,
                                        const struct pgkeel_host *host,
                                        const struct pgkeel_dcs_params *params, bool znode_name,
                                        struct pgkeel_err *err);
/* set_ttl: the new timings into h, or "<backend>: timings must be positive". */
enum pgkeel_dcs_status dcsc_handle_set_timing(struct dcsc_handle *h, const char *backend, int ttl,
                                              int loop_wait, int retry_timeout,
                                              struct pgkeel_err *err);

#endif
