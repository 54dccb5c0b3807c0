/*
 * Configuration: Patroni's patroni.yml, Patroni's rules.
 *
 * Three trees are kept apart (spec/patroni-interfaces.md §3.1):
 *   local      the file (or directory of *.yml, or PATRONI_CONFIGURATION)
 *              with the PATRONI_* / PGKEEL_* environment merged over it;
 *   dynamic    bootstrap.dcs until the cluster exists, later the DCS
 *              `config` key;
 *   effective  defaults <- dynamic <- local, with Patroni's exceptions
 *              (global-only keys, DCS-only keys such as use_slots, the
 *              controlled PostgreSQL parameters).
 * A struct pgkeel_config is an immutable, refcounted snapshot; SIGHUP
 * builds a new one and swaps it in (pgkeel_config_publish).
 *
 * Threads: a snapshot is shared read-only.  Other threads read the typed
 * fields, and may call json_object_get_string() on string nodes only:
 * json-c's to-string functions (and get_string on non-strings) write a
 * cache inside the object, and its refcounts are not atomic, so never
 * json_object_get/put or render a shared tree outside the loop thread.
 * pgkeel_config_current() returns NULL before the first publish.
 */
#ifndef PGKEEL_CONFIG_H
#define PGKEEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "log.h"

/* Findings of a load: errors make it fail; warnings are reported only. */
struct pgkeel_diag {
	json_object *errors;   /* array of strings */
	json_object *warnings; /* array of strings */
};
void pgkeel_diag_init(struct pgkeel_diag *d);
void pgkeel_diag_clear(struct pgkeel_diag *d);
void pgkeel_diag_error(struct pgkeel_diag *d, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
void pgkeel_diag_warning(struct pgkeel_diag *d, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
size_t pgkeel_diag_errors(const struct pgkeel_diag *d);
size_t pgkeel_diag_warnings(const struct pgkeel_diag *d);
/* Log every finding (errors at ERROR, warnings at WARNING). */
void pgkeel_diag_log(const struct pgkeel_diag *d);

struct pgkeel_config_opts {
	bool strict;      /* warnings about the environment and timing become errors */
	bool check_env;   /* probe ports, binaries, the backend (--validate-config) */
	bool offline;     /* with check_env: no network connection (DCS reachability) */
	bool use_environ; /* merge PATRONI_* / PGKEEL_* (consumes them, once per process) */
	bool ctl;         /* pgkeelctl: only a DCS section is required (no name, restapi,
	                     postgresql), as patronictl reads a daemon's file or a short one */
	json_object *overlay; /* borrowed; deep-merged over the file and the environment
	                         (null deletes): pgkeelctl --dcs-url */
};

struct pgkeel_config {
	int refs;
	char *source; /* file, directory, "PATRONI_CONFIGURATION" or "environment" */
	json_object *local;
	json_object *positions; /* dotted path -> "file:line:col" */
	json_object *dynamic;   /* NULL until known */
	bool dynamic_from_dcs;  /* dynamic came from the DCS, not from bootstrap.dcs */
	json_object *effective;

	/* Typed view of what the core needs everywhere. */
	const char *name;
	const char *scope;
	char *namespace_;       /* normalised: "/service/" */
	const char *dcs_type;   /* "etcd3", "consul", "zookeeper", "kubernetes" */
	char *dcs_options_json; /* the DCS section as JSON text */
	const char *data_dir;
	const char *backend_dir; /* NULL = default */
	int ttl;
	int loop_wait;
	int retry_timeout;
	struct pgkeel_log_config log;
};

/*
 * Load the local configuration from `path` (file or directory; NULL: from
 * PATRONI_CONFIGURATION, or from the PATRONI_* variables alone), validate
 * it, and compute the effective view with bootstrap.dcs as the dynamic
 * configuration.  Returns NULL when diag has errors.
 */
struct pgkeel_config *pgkeel_config_load(const char *path, const struct pgkeel_config_opts *opts,
                                         struct pgkeel_diag *diag);

/*
 * Re-read for SIGHUP: like load, but keys that cannot change at runtime keep
 * the value of `old` (with a warning).  NULL (and `old` stays) on errors.
 */
struct pgkeel_config *pgkeel_config_reload(const struct pgkeel_config *old, const char *path,
                                           const struct pgkeel_config_opts *opts,
                                           struct pgkeel_diag *diag);

/*
 * A new snapshot with `dynamic` (the DCS `config` value, parsed) as the
 * dynamic tree.  Invalid entries are warned about and replaced by defaults.
 */
struct pgkeel_config *pgkeel_config_with_dynamic(const struct pgkeel_config *c,
                                                 json_object *dynamic, struct pgkeel_diag *diag);

struct pgkeel_config *pgkeel_config_ref(struct pgkeel_config *c);
void pgkeel_config_unref(struct pgkeel_config *c);

/* The process-wide current snapshot (threads read it; the loop swaps it). */
struct pgkeel_config *pgkeel_config_current(void);   /* returns a new reference */
void pgkeel_config_publish(struct pgkeel_config *c); /* takes a reference */

/*
 * Findings about the machine rather than the file (--validate-config):
 * ports in use, loopback connect addresses, missing PostgreSQL binaries, a
 * DCS that does not answer, a backend that does not load.  Warnings, or
 * errors when `strict`.  `offline` skips the one check that opens network
 * connections (is the DCS reachable?).  (config_check.c)
 */
void pgkeel_config_check_environment(const struct pgkeel_config *c, bool strict, bool offline,
                                     struct pgkeel_diag *diag);

/* Dotted-path lookup ("postgresql.authentication.superuser"); NULL if absent. */
json_object *pgkeel_json_path(json_object *root, const char *path);

/* Deep merge: keys of `over` win, a null in `over` deletes.  Returns a new tree. */
json_object *pgkeel_json_merge(json_object *base, json_object *over);

/* Compute the effective configuration (exposed for tests). */
json_object *pgkeel_config_effective(json_object *local, json_object *dynamic,
                                     struct pgkeel_diag *diag);

/* Environment overlay (config_env.c): the tree built from PATRONI_* and
 * PGKEEL_* variables; the consumed variables are removed from environ.  The
 * result is computed once per process and cached.  Never NULL. */
json_object *pgkeel_config_env_overlay(struct pgkeel_diag *diag);
/* For tests: forget the cached overlay. */
void pgkeel_config_env_reset(void);

/* Wipe a variable's value in place and remove it from the environment. */
void pgkeel_env_scrub(const char *name);

/* Patroni's list / dict parsing of environment values (YAML flow). */
json_object *pgkeel_env_parse_list(const char *value);
json_object *pgkeel_env_parse_dict(const char *value);

#endif
