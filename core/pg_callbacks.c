/*
 * pg_callbacks: Patroni's callback commands (contract in pg_callbacks.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "pg_callbacks.h"
#include "util.h"

/* ------------------------------------------------------------ shell words */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void push_word(char ***v, size_t *n, struct pgkeel_sbuf *b)
{
	*v = pgkeel_xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = b->p != NULL ? pgkeel_sbuf_finish(b) : pgkeel_strdup("");
	(*v)[*n] = NULL;
	memset(b, 0, sizeof(*b));
}

bool pgkeel_shell_split(const char *s, char ***argv, size_t *argc, char *err, size_t errlen)
{
	enum { SPACE, WORD, SQUOTE, DQUOTE } state = SPACE;
	struct pgkeel_sbuf b = {0};
	char **v = pgkeel_xcalloc(1, sizeof(*v));
	size_t n = 0;
	const char *msg = NULL;

	for (const char *p = s != NULL ? s : "";; p++) {
		char c = *p;

		if (state == SQUOTE || state == DQUOTE) {
			if (c == '\0') {
				msg = "No closing quotation";
				break;
			}
			if (c == (state == SQUOTE ? '\'' : '"')) {
				state = WORD;
			} else if (state == DQUOTE && c == '\\') {
				if (p[1] == '\0') {
					msg = "No escaped character";
					break;
				}
				/* inside "...", only \" and \\ are escapes */
				if (p[1] != '\\' && p[1] != '"')
					pgkeel_sbuf_putc(&b, '\\');
				pgkeel_sbuf_putc(&b, *++p);
			} else {
				pgkeel_sbuf_putc(&b, c);
			}
			continue;
		}
		if (c == '\0') {
			if (state == WORD)
				push_word(&v, &n, &b);
			break;
		}
		if (is_space(c)) {
			if (state == WORD)
				push_word(&v, &n, &b);
			state = SPACE;
			continue;
		}
		state = WORD;
		if (c == '\'') {
			state = SQUOTE;
		} else if (c == '"') {
			state = DQUOTE;
		} else if (c == '\\') {
			if (p[1] == '\0') {
				msg = "No escaped character";
				break;
			}
			pgkeel_sbuf_putc(&b, *++p);
		} else {
			pgkeel_sbuf_putc(&b, c);
		}
	}
	free(b.p);
	if (msg != NULL) {
		if (err != NULL && errlen > 0 && !pgkeel_fmt(err, errlen, "%s", msg))
			err[errlen - 1] = '\0';
		pgkeel_argv_free(v);
		*argv = NULL;
		*argc = 0;
		return false;
	}
	*argv = v;
	*argc = n;
	return true;
}

void pgkeel_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/* ['cmd', 'on_start', 'master', 'batman'] */
static char *argv_repr(char *const *argv)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '[');
	for (size_t i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(&b, ", ");
		pgkeel_sbuf_put_py_repr(&b, argv[i]);
	}
	pgkeel_sbuf_putc(&b, ']');
	return pgkeel_sbuf_finish(&b);
}

/* -------------------------------------------------------------- callbacks */

const char *pgkeel_cb_action_name(enum pgkeel_cb_action a)
{
	switch (a) {
	case PGKEEL_CB_ON_START:
		return "on_start";
	case PGKEEL_CB_ON_STOP:
		return "on_stop";
	case PGKEEL_CB_ON_RESTART:
		return "on_restart";
	case PGKEEL_CB_ON_RELOAD:
		return "on_reload";
	case PGKEEL_CB_ON_ROLE_CHANGE:
		return "on_role_change";
	}
	return "?";
}

const char *pgkeel_cb_role_name(const char *role)
{
	if (role == NULL)
		return "None";
	if (strcmp(role, "primary") == 0 || strcmp(role, "promoted") == 0)
		return "master";
	return role;
}

void pgkeel_callbacks_init(struct pgkeel_callbacks *cb)
{
	memset(cb, 0, sizeof(*cb));
	pgkeel_child_slot_init(&cb->main);
	pgkeel_child_slot_init(&cb->reload);
}

/* Log how a slot's callback ended, once. */
static void report(struct pgkeel_child_slot *slot, char **desc, bool *pending)
{
	char how[96];

	if (!*pending || pgkeel_child_slot_busy(slot))
		return;
	*pending = false;
	pgkeel_child_describe(slot->child.wstatus, how, sizeof(how));
	if (pgkeel_child_succeeded(&slot->child))
		log_info("callback %s %s", *desc != NULL ? *desc : "?", how);
	else
		log_warning("callback %s %s", *desc != NULL ? *desc : "?", how);
	free(*desc);
	*desc = NULL;
}

enum pgkeel_cb_fire pgkeel_callbacks_fire(struct pgkeel_callbacks *cb, const char *command,
                                          enum pgkeel_cb_action action, const char *role,
                                          const char *scope)
{
	const char *action_name = pgkeel_cb_action_name(action);
	const char *role_name = pgkeel_cb_role_name(role);
	bool on_reload = action == PGKEEL_CB_ON_RELOAD;
	struct pgkeel_child_slot *slot = on_reload ? &cb->reload : &cb->main;
	char **desc = on_reload ? &cb->reload_desc : &cb->main_desc;
	bool *pending = on_reload ? &cb->reload_pending : &cb->main_pending;
	struct pgkeel_child_spec spec;
	char **argv = NULL, err[256], name[64];
	size_t argc = 0;
	unsigned replaced;

	if (cb->bootstrapping)
		return PGKEEL_CB_BOOTSTRAPPING;
	if (!on_reload)
		cb->called = true;
	if (command == NULL)
		return PGKEEL_CB_NOT_CONFIGURED;
	if (!pgkeel_shell_split(command, &argv, &argc, err, sizeof(err))) {
		log_error("callback %s %s %s %s failed: %s", command, action_name, role_name,
		          scope != NULL ? scope : "None", err);
		return PGKEEL_CB_FAILED;
	}
	if (argc == 0) {
		pgkeel_argv_free(argv);
		log_debug("callback %s is empty: nothing to run", action_name);
		return PGKEEL_CB_NOT_CONFIGURED;
	}
	argv = pgkeel_xreallocarray(argv, argc + 4, sizeof(*argv));
	argv[argc++] = pgkeel_strdup(action_name);
	argv[argc++] = pgkeel_strdup(role_name);
	argv[argc++] = pgkeel_strdup(scope != NULL ? scope : "None");
	argv[argc] = NULL;

	/* the previous command of this slot: report it if it ended by itself */
	report(slot, desc, pending);
	memset(&spec, 0, sizeof(spec));
	spec.argv = (const char *const *)argv;
	spec.out.mode = cb->quiet ? PGKEEL_CHILD_OUT_NULL : PGKEEL_CHILD_OUT_INHERIT;
	spec.err.mode = cb->quiet ? PGKEEL_CHILD_OUT_NULL : PGKEEL_CHILD_OUT_INHERIT;
	if (!pgkeel_fmt(name, sizeof(name), "%s callback", action_name))
		name[0] = '\0';
	spec.name = name[0] != '\0' ? name : NULL;
	replaced = slot->replaced;
	if (!pgkeel_child_slot_start(slot, &spec, err, sizeof(err))) {
		char *repr = argv_repr(argv);

		if (slot->replaced != replaced && *desc != NULL)
			log_warning("Killed %s because it was still running", *desc);
		log_error("Failed to execute %s: %s", repr, err);
		free(repr);
		free(*desc);
		*desc = NULL;
		*pending = false;
		pgkeel_argv_free(argv);
		return PGKEEL_CB_FAILED;
	}
	if (slot->replaced != replaced && *desc != NULL)
		log_warning("Killed %s because it was still running", *desc);
	free(*desc);
	*desc = argv_repr(argv);
	*pending = true;
	log_debug("started callback %s (pid %d)", *desc, (int)slot->child.pid);
	pgkeel_argv_free(argv);
	return PGKEEL_CB_STARTED;
}

enum pgkeel_cb_fire pgkeel_callbacks_fire_config(struct pgkeel_callbacks *cb,
                                                 const struct pgkeel_config *cfg,
                                                 enum pgkeel_cb_action action, const char *role)
{
	json_object *cbs = pgkeel_json_path(cfg->effective, "postgresql.callbacks");
	json_object *cmd = NULL;

	if (json_object_is_type(cbs, json_type_object))
		(void)json_object_object_get_ex(cbs, pgkeel_cb_action_name(action), &cmd);
	return pgkeel_callbacks_fire(
	    cb, json_object_is_type(cmd, json_type_string) ? json_object_get_string(cmd) : NULL,
	    action, role, cfg->scope);
}

void pgkeel_callbacks_poll(struct pgkeel_callbacks *cb)
{
	report(&cb->main, &cb->main_desc, &cb->main_pending);
	report(&cb->reload, &cb->reload_desc, &cb->reload_pending);
}

pid_t pgkeel_callbacks_pid(struct pgkeel_callbacks *cb, bool reload_slot)
{
	struct pgkeel_child_slot *slot = reload_slot ? &cb->reload : &cb->main;

	return pgkeel_child_slot_busy(slot) ? slot->child.pid : 0;
}

static void shutdown_slot(struct pgkeel_child_slot *slot, char **desc, bool *pending,
                          int64_t deadline_ms)
{
	if (pgkeel_child_wait(&slot->child, deadline_ms) == PGKEEL_CHILD_RUNNING) {
		log_warning("callback %s still running at shutdown: killing it",
		            *desc != NULL ? *desc : "?");
		(void)pgkeel_child_stop(&slot->child, SIGKILL, pgkeel_now_monotonic_ms());
	}
	report(slot, desc, pending);
	pgkeel_child_slot_free(slot);
	free(*desc);
	*desc = NULL;
	*pending = false;
}

void pgkeel_callbacks_shutdown(struct pgkeel_callbacks *cb, int64_t deadline_ms)
{
	shutdown_slot(&cb->main, &cb->main_desc, &cb->main_pending, deadline_ms);
	shutdown_slot(&cb->reload, &cb->reload_desc, &cb->reload_pending, deadline_ms);
}

/* ------------------------------------------------------------- pre_promote */

#define PRE_PROMOTE_POLL_MS 100

enum pgkeel_pre_promote pgkeel_pre_promote_run(const char *command, int64_t deadline_ms,
                                               bool (*cancelled)(void *arg), void *arg, char *err,
                                               size_t errlen)
{
	struct pgkeel_child child = PGKEEL_CHILD_INIT;
	struct pgkeel_child_spec spec;
	enum pgkeel_pre_promote ret = PGKEEL_PRE_PROMOTE_FAILED;
	char **argv = NULL, msg[256];
	size_t argc = 0;
	int code;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (command == NULL)
		return PGKEEL_PRE_PROMOTE_PASSED;
	if (!pgkeel_shell_split(command, &argv, &argc, msg, sizeof(msg))) {
		log_error("pre_promote script `%s` cannot be run: %s", command, msg);
		(void)pgkeel_fmt(err, errlen, "pre_promote script: %s", msg);
		return PGKEEL_PRE_PROMOTE_FAILED;
	}
	if (argc == 0) {
		pgkeel_argv_free(argv);
		return PGKEEL_PRE_PROMOTE_PASSED;
	}
	memset(&spec, 0, sizeof(spec));
	spec.argv = (const char *const *)argv;
	spec.out.mode = PGKEEL_CHILD_OUT_INHERIT;
	spec.err.mode = PGKEEL_CHILD_OUT_INHERIT;
	spec.name = "pre_promote script";
	if (!pgkeel_child_spawn(&spec, &child, msg, sizeof(msg))) {
		char *repr = argv_repr(argv);

		log_error("Failed to execute %s: %s", repr, msg);
		(void)pgkeel_fmt(err, errlen, "pre_promote script: %s", msg);
		free(repr);
		pgkeel_argv_free(argv);
		return PGKEEL_PRE_PROMOTE_FAILED;
	}
	log_info("running pre_promote script `%s` (pid %d)", command, (int)child.pid);
	for (;;) {
		int64_t now = pgkeel_now_monotonic_ms(), until = now + PRE_PROMOTE_POLL_MS;

		if (pgkeel_child_wait(&child, until < deadline_ms ? until : deadline_ms) ==
		    PGKEEL_CHILD_EXITED)
			break;
		if (cancelled != NULL && cancelled(arg)) {
			(void)pgkeel_child_stop(&child, SIGKILL, pgkeel_now_monotonic_ms());
			log_warning("Killed pre_promote script `%s` because the promotion was "
			            "cancelled",
			            command);
			(void)pgkeel_fmt(err, errlen, "pre_promote script cancelled");
			ret = PGKEEL_PRE_PROMOTE_CANCELLED;
			goto out;
		}
		if (pgkeel_now_monotonic_ms() >= deadline_ms) {
			(void)pgkeel_child_stop(&child, SIGKILL, pgkeel_now_monotonic_ms());
			log_warning("pre_promote script `%s` still running at its deadline: killed",
			            command);
			(void)pgkeel_fmt(err, errlen, "pre_promote script timed out");
			goto out;
		}
	}
	if (child.wstatus == -1) { /* reaped by someone else: no verdict, no promotion */
		log_warning("pre_promote script `%s`: exit status unknown", command);
		(void)pgkeel_fmt(err, errlen, "pre_promote script: exit status unknown");
		goto out;
	}
	/* Python's returncode: the exit code, or -N for a signal */
	code =
	    WIFSIGNALED(child.wstatus) ? -WTERMSIG(child.wstatus) : pgkeel_child_exit_code(&child);
	log_info("pre_promote script `%s` exited with %d", command, code);
	if (code == 0)
		ret = PGKEEL_PRE_PROMOTE_PASSED;
	else
		(void)pgkeel_fmt(err, errlen, "pre_promote script exited with %d", code);
out:
	pgkeel_child_free(&child);
	pgkeel_argv_free(argv);
	return ret;
}
