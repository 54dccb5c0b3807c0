#include "autoconf.h"

#include "dcs_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dcsc_set_err(struct pgkeel_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	va_start(ap, fmt);
	if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) >= (int)sizeof(err->msg))
		memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
	va_end(ap);
}

char *dcsc_strdup(const char *s)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		abort();
	return d;
}

void dcsc_set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = dcsc_strdup(src);
}

enum pgkeel_dcs_status dcsc_handle_init(struct dcsc_handle *h, const char *backend,
                                        const struct pgkeel_host *host,
                                        const struct pgkeel_dcs_params *params, bool znode_name,
                                        struct pgkeel_err *err)
{
	if (host == NULL || params == NULL ||
	    params->struct_size < offsetof(struct pgkeel_dcs_params, user_agent) ||
	    params->scope == NULL || params->namespace_ == NULL) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "%s: incomplete parameters", backend);
		return PGKEEL_DCS_INVALID;
	}
	if (!(params->flags & PGKEEL_DCS_CTL) &&
	    (params->name == NULL ||
	     (znode_name && (params->name[0] == '\0' || strchr(params->name, '/') != NULL)))) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "%s: a member handle needs a name%s", backend,
		             znode_name ? " without '/'" : "");
		return PGKEEL_DCS_INVALID;
	}
	if (params->ttl < 1 || params->loop_wait < 1 || params->retry_timeout < 1) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE,
		             "%s: ttl, loop_wait and retry_timeout must be positive", backend);
		return PGKEEL_DCS_INVALID;
	}
	h->host = host;
	h->ctl = (params->flags & PGKEEL_DCS_CTL) != 0;
	h->ttl = params->ttl;
	h->loop_wait = params->loop_wait;
	h->retry_timeout = params->retry_timeout;
	return PGKEEL_DCS_OK;
}

enum pgkeel_dcs_status dcsc_handle_set_timing(struct dcsc_handle *h, const char *backend, int ttl,
                                              int loop_wait, int retry_timeout,
                                              struct pgkeel_err *err)
{
	if (ttl < 1 || loop_wait < 1 || retry_timeout < 1) {
		dcsc_set_err(err, PGKEEL_DCS_D_NONE, "%s: timings must be positive", backend);
		return PGKEEL_DCS_INVALID;
	}
	h->ttl = ttl;
	h->loop_wait = loop_wait;
	h->retry_timeout = retry_timeout;
	return PGKEEL_DCS_OK;
}
