/*
 * Loading DCS backends: `dcs_<name>.so` from a trusted directory.
 *
 * Directory: `backend_dir:` in the config, else $PGKEEL_BACKEND_DIR, else
 * PKGLIBDIR.  The file and its directory must not be writable by group or
 * others and must be owned by root or by the effective user.  The file is
 * opened once (O_RDONLY|O_NOFOLLOW|O_CLOEXEC), checked with fstat, and
 * dlopen()ed through /proc/self/fd/N so what was checked is what is loaded;
 * RTLD_NOW|RTLD_LOCAL|RTLD_NODELETE, never dlclose()d.
 */
#ifndef PGKEEL_DCS_LOADER_H
#define PGKEEL_DCS_LOADER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <pgkeel/dcs.h>

struct pgkeel_dcs_module {
	const struct pgkeel_dcs_plugin *plugin;
	char path[PATH_MAX];
};

/* The directory backends are loaded from (config value, env, built-in). */
const char *pgkeel_dcs_backend_dir(const char *configured);

/*
 * Load backend `name` from `dir`.  On failure returns false and writes one
 * line naming the file and the reason into err (file missing, not a shared
 * object, missing entry symbol, foreign ABI major, missing mandatory op,
 * bad permissions).
 */
bool pgkeel_dcs_load(const char *dir, const char *name, struct pgkeel_dcs_module *out,
                     char *err, size_t errlen) PGKEEL_MUSTCHECK;

#endif
