/*
 * pgkeelctl: the operator's command line (spec patroni-interfaces.md §2).
 *
 * It reads the cluster straight from the DCS through the same backend .so
 * the daemon loads, opened as a read-only ctl handle (PGKEEL_DCS_CTL: no
 * lease, no member key), and talks to members through their REST API, the
 * way patronictl 3.0.2 does.  One process, one thread, one command.
 *
 * Layout:
 *   ctl/main.c        global options, the command table, usage, exit codes
 *   ctl/ctl_dcs.c     configuration (ctl mode), the backend, cluster loads
 *   ctl/ctl_http.c    requests to members' REST APIs (libcurl)
 *   ctl/ctl_table.c   the list table: pretty, tsv, json, yaml; topology
 *   ctl/ctl_yaml.c    YAML rendering of JSON values (libyaml's emitter)
 *   ctl/ctl_util.c    prompts, member selection, waiting, timestamps
 *   ctl/cmd_*.c       the commands, one struct ctl_command each
 *
 * Output: results on stdout; errors on stderr as "Error: <message>" (as
 * patronictl's click does).  Exit status: 0 done, 1 refused or failed,
 * 2 usage (unknown command or option, missing argument).
 */
#ifndef PGKEEL_CTL_H
#define PGKEEL_CTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <pgkeel/dcs.h>

#include "cluster.h"
#include "config.h"
#include "util.h"

struct json_object;

enum ctl_exit {
	CTL_OK = 0,
	CTL_FAIL = 1,  /* refused (bad input, nothing to do, not confirmed) or failed */
	CTL_USAGE = 2, /* unknown command/option, missing argument */
};

/* Deadline of one DCS operation from pgkeelctl (ms). */
#define CTL_DCS_TIMEOUT_MS 10000

struct ctl {
	/* global options */
	const char *config_path; /* -c; NULL: $PATRONICTL_CONFIG_FILE, else the default file */
	const char *dcs_url;     /* --dcs-url; NULL: $DCS_URL, else the config's section */
	int insecure;            /* -k: 1; else -1 (ctl.insecure decides) */

	/* set up lazily by ctl_config() / ctl_dcs() */
	struct pgkeel_config *cfg;
	const struct pgkeel_dcs_plugin *plugin;
	struct pgkeel_dcs *dcs;
	char *dcs_scope; /* the scope the handle was opened for */
	struct ctl_http *http;

	FILE *in;  /* prompts read from here (stdin) */
	FILE *out; /* stdout */
};

/* ---- commands ---- */

struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv); /* argv[0] = command name */
	const char *args;    /* usage after the name, e.g. "[CLUSTER] [-e] [-t]" */
	const char *summary; /* one line for `pgkeelctl --help` */
	const struct option *options; /* getopt_long table ending with {0}; for --list-commands */
	const char *help;    /* the options' help text (printed by COMMAND --help) */
};

/*
 * Parse a command's options: getopt_long from argv[1] with `shortopts`
 * and the command's table.  Handles --help (prints the usage, returns -2)
 * and unknown options (prints "Error: ..." and usage to stderr, returns
 * -3).  Otherwise returns what getopt_long returns; -1 at the end, optind
 * then indexes the first operand.  Call ctl_getopt_reset() first.
 */
void ctl_getopt_reset(void);
int ctl_getopt(const struct ctl_command *cmd, int argc, char **argv, const char *shortopts);
/* The exit status for ctl_getopt's -2 (help: 0) and -3 (usage: 2). */
int ctl_getopt_exit(int r);

/* "Error: <msg>" on stderr; returns CTL_FAIL. */
int ctl_error(const char *fmt, ...) PGKEEL_PRINTF(1, 2);
/* "Usage: pgkeelctl <cmd> <args>\nError: <msg>" on stderr; returns CTL_USAGE. */
int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...) PGKEEL_PRINTF(2, 3);

/* ---- configuration and DCS (ctl_dcs.c) ---- */

/*
 * Load the configuration once (ctl mode: only a DCS section is required;
 * name, restapi, postgresql are optional).  A missing default file is
 * tolerated when --dcs-url or $DCS_URL gives the DCS.  NULL after printing
 * the errors.
 */
struct pgkeel_config *ctl_config(struct ctl *ctl);

/*
 * The cluster name to use: `given` (an operand) else the config's scope;
 * NULL after printing "Error: ..." when there is neither.
 */
const char *ctl_scope(struct ctl *ctl, const char *given);

/* Open the backend for `scope` (once; reopened for another scope).  false after an error. */
bool ctl_dcs(struct ctl *ctl, const char *scope);

/* Close the DCS handle and the HTTP client (main does it at exit). */
void ctl_close(struct ctl *ctl);

/* Load the cluster of the open handle; NULL after printing the error. */
struct pgkeel_cluster *ctl_load(struct ctl *ctl);

/* A deadline CTL_DCS_TIMEOUT_MS from now (monotonic ms). */
int64_t ctl_deadline(void);

/* Print "Error: <what>: <status> (<detail>)" for a failed DCS op; returns CTL_FAIL. */
int ctl_dcs_error(const char *what, enum pgkeel_dcs_status st, const struct pgkeel_err *err);

/* The configured loop_wait (dynamic config from the cluster if valid, else the file's). */
int ctl_loop_wait(struct ctl *ctl, const struct pgkeel_cluster *c);

/* ---- REST (ctl_http.c) ---- */

struct ctl_reply {
	long code;        /* HTTP status; 0: no answer (see error) */
	char *body;       /* NUL-terminated, owned; "" when none */
	size_t body_len;
	char error[256];  /* transport failure; "" when answered */
};

/*
 * One request to a member's REST API: scheme://host:port from its
 * api_url, path replaced by `endpoint` ("/restart"; NULL: the api_url as
 * is), with the credentials and TLS settings patronictl uses (ctl.*,
 * falling back to restapi.*).  body NULL: none (POST sends Content-Length:
 * 0); JSON bodies go without Content-Type as patronictl sends them.
 * timeout_ms bounds the whole request (connect: 5 s).  Returns true when
 * an HTTP answer arrived.  Free with ctl_reply_free().
 */
bool ctl_request(struct ctl *ctl, const struct pgkeel_member *m, const char *method,
                 const char *endpoint, const char *body, int64_t timeout_ms,
                 struct ctl_reply *r);
void ctl_reply_free(struct ctl_reply *r);
/* Close the HTTP client (ctl_close does it). */
void ctl_http_close(struct ctl *ctl);

/* ---- output (ctl_table.c, ctl_yaml.c) ---- */

enum ctl_format { CTL_FMT_PRETTY, CTL_FMT_TSV, CTL_FMT_JSON, CTL_FMT_YAML, CTL_FMT_TOPOLOGY };

struct ctl_list_opts {
	enum ctl_format format;
	bool extended;  /* -e: every optional column */
	bool timestamp; /* -t: print the time first */
	bool why;       /* -e also adds pgkeel's "Failover" column (why a member can or cannot) */
};

/* "pretty" "tsv" "json" "yaml" -> format; false when unknown. */
bool ctl_format_parse(const char *s, enum ctl_format *out);

/*
 * Print the cluster as `patronictl list` does (spec §2.4), from the same
 * document GET /cluster serves.  With several clusters (list A B) call it
 * once per cluster; json/yaml print one array per call.
 */
void ctl_print_cluster(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c,
                       const struct ctl_list_opts *o);

/*
 * A plain table as print_output renders one without a title: pretty (the
 * frame) or tsv (header line first).  align: 'l' or 'r' per column.
 */
void ctl_print_table(struct ctl *ctl, const char *const *headers, const char *align,
                     size_t n_cols, char ***cells, size_t n_rows, enum ctl_format fmt);

/* A JSON value as YAML: block style (flow = false) or one-line flow style.  malloc'd. */
char *ctl_yaml_dump(const struct json_object *v, bool flow);

/* ---- helpers (ctl_util.c) ---- */

/*
 * Ask `question` (with " [y/N]: ") on stdout and read a line; true on y/yes.
 * With force, true without asking.  EOF: false.
 */
bool ctl_confirm(struct ctl *ctl, bool force, const char *question);

/*
 * Ask for a value: prints "<question> [<def>]: " (no brackets when def is
 * NULL) and reads a line; an empty line takes def.  malloc'd; NULL at EOF.
 */
char *ctl_prompt(struct ctl *ctl, const char *question, const char *def);

/* Role filters of -r/--role (spec §2.2). */
enum ctl_role { CTL_ROLE_ANY, CTL_ROLE_LEADER, CTL_ROLE_PRIMARY, CTL_ROLE_STANDBY_LEADER,
                CTL_ROLE_REPLICA };
bool ctl_role_parse(const char *s, enum ctl_role *out);

/*
 * The members a command acts on: the named ones (an unknown name is an
 * error: "<name> is not a member of cluster"), or all members when none
 * are named, filtered by role.  Returns the count; *out (malloc'd array of
 * pointers into c) must be freed.  -1 after printing an error.
 */
int ctl_select_members(const struct pgkeel_cluster *c, char **names, int n_names,
                       enum ctl_role role, const struct pgkeel_member ***out);

/*
 * Poll the DCS every 0.5 s until cond(cluster, arg) is true or timeout_s
 * passed, printing a dot per second of waiting when progress is set.
 * Returns the last cluster loaded (caller unrefs; may be NULL when the DCS
 * never answered) and sets *met.
 */
struct pgkeel_cluster *ctl_wait(struct ctl *ctl, int timeout_s, bool progress,
                                bool (*cond)(const struct pgkeel_cluster *c, void *arg),
                                void *arg, bool *met);

/* Local time as patronictl prints it: "2026-11-26 10:00:00.123456". */
void ctl_local_timestamp(char *buf, size_t len);

/*
 * Parse a --scheduled value: "now" → *out = NULL (immediate); otherwise an
 * ISO-8601 time; without an offset the local time zone is added (as
 * patronictl).  On success *out is the ISO text with offset, malloc'd.
 * false after printing an error.
 */
bool ctl_parse_schedule(const char *s, char **out);

/* ---- the commands ---- */

extern const struct ctl_command ctl_cmd_list, ctl_cmd_topology, ctl_cmd_history,
    ctl_cmd_show_config, ctl_cmd_edit_config, ctl_cmd_switchover, ctl_cmd_failover,
    ctl_cmd_restart, ctl_cmd_reload, ctl_cmd_reinit, ctl_cmd_pause, ctl_cmd_resume,
    ctl_cmd_flush, ctl_cmd_remove, ctl_cmd_dsn, ctl_cmd_query, ctl_cmd_version, ctl_cmd_why;

#endif
