/*
 * pgkeelctl restart / reload / reinit / flush: commands that act on
 * members through their REST API (spec patroni-interfaces.md §2.2), with
 * patronictl 3.0.2's selection, prompts, bodies and messages:
 *
 *   restart CLUSTER [MEMBER...] [-r ROLE] [--any] [--scheduled TS|now]
 *           [--pg-version V] [--pending] [--timeout T] [--force]
 *       POST /restart {"restart_pending": true, "postgres_version": V,
 *       "schedule": TS, "timeout": T} (only the options given); with
 *       --scheduled and --force a member's earlier schedule is deleted
 *       first (DELETE /restart).
 *   reload CLUSTER [MEMBER...] [-r ROLE] [--force]      POST /reload
 *   reinit CLUSTER [MEMBER...] [--force] [--wait]       POST /reinitialize
 *       {"force": bool}; asks whether to cancel a running action and retry
 *       with force.
 *   flush CLUSTER [MEMBER...] restart|switchover [-r ROLE] [--force]
 *       DELETE /restart on members with a scheduled restart; or DELETE
 *       /switchover on the leader first, then the others, and when none
 *       answers the failover key is cleared with CAS on its version.
 *
 * Selection (patronictl's get_members): the members of the role (default
 * any; reinit: replicas), the table printed, then narrowed to the named
 * ones.  Unlike patronictl, a name that is no member at all is an error
 * ("X is not a member of cluster") instead of being dropped silently.
 *
 * Beyond patronictl: every REST call has a timeout (an immediate restart's
 * is primary_start_timeout, or --timeout, plus a margin: the member answers
 * when PostgreSQL is up); an immediate restart then waits until the DCS
 * shows the restarted members running and prints the table; reinit --wait
 * follows the member keys in the DCS (busy, then running with a WAL
 * position) for at most an hour instead of asking /patroni forever.  Exit
 * status 1 when any member failed.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd_ops.h"
#include "ctl.h"
#include "ha.h"
#include "json.h"


#define REST_TIMEOUT_MS 30000   /* requests the member answers at once (or after one cycle) */
#define RESTART_MARGIN_S 60     /* stopping PostgreSQL, on top of the start timeout */
#define REINIT_WAIT_S 3600      /* reinit --wait: a base backup can take long */

enum {
	OPT_ROLE = 'r',
	OPT_FORCE = 0x101,
	OPT_ANY,
	OPT_SCHEDULED,
	OPT_PG_VERSION,
	OPT_PENDING,
	OPT_TIMEOUT,
	OPT_WAIT,
};

static const char ROLE_CHOICES[] =
    "'leader', 'primary', 'standby-leader', 'replica', 'standby', 'any', 'master'";

/* ------------------------------------------------------------ shared steps */

struct sel {
	const struct pgkeel_member **ms;
	int n;
};

/* The options of restart, reload, reinit and flush (each table allows its own). */
struct mopts {
	const char *scope;
	const char *role_s; /* as given, for "No <role> among provided members" */
	enum ctl_role role;
	const char *scheduled, *version, *timeout;
	bool force, any, pending, wait;
	char **names; /* the operands after CLUSTER */
	int n_names;
};

/*
 * Parse the options, then CLUSTER (required) and the member names.  -1 to
 * go on, else the exit status (help, usage error).
 */
static int parse_opts(const struct ctl_command *cmd, int argc, char **argv, struct mopts *o)
{
	int r;

	o->role_s = "any";
	o->role = CTL_ROLE_ANY;
	while ((r = ctl_getopt(cmd, argc, argv, "r:")) != -1) {
		switch (r) {
		case OPT_ROLE:
			o->role_s = optarg;
			break;
		case OPT_ANY:
			o->any = true;
			break;
		case OPT_SCHEDULED:
			o->scheduled = optarg;
			break;
		case OPT_PG_VERSION:
			o->version = optarg;
			break;
		case OPT_PENDING:
			o->pending = true;
			break;
		case OPT_TIMEOUT:
			o->timeout = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_WAIT:
			o->wait = true;
			break;
		default:
			return ctl_getopt_exit(r);
		}
	}
	if (!ctl_role_parse(o->role_s, &o->role))
		return ctl_usage_error(cmd, "Invalid value for '--role' / '-r': '%s' is not one of %s.",
		                       o->role_s, ROLE_CHOICES);
	if (optind >= argc)
		return ctl_usage_error(cmd, "Missing argument 'CLUSTER_NAME'.");
	o->scope = argv[optind];
	o->names = argv + optind + 1;
	o->n_names = argc - optind - 1;
	return -1;
}

static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static void names_of(const struct sel *s, struct pgkeel_sbuf *b)
{
	for (int i = 0; i < s->n; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(b, ", ");
		pgkeel_sbuf_puts(b, s->ms[i]->name);
	}
	if (b->p == NULL)
		pgkeel_sbuf_puts(b, "");
}

/* patronictl's confirm_members_action(); scheduled_at: ISO text or NULL. */
static int confirm_members(struct ctl *ctl, const struct sel *s, bool force, const char *action,
                           const char *scheduled_at)
{
	struct pgkeel_sbuf names = {0};
	char *q;
	bool yes;

	if (force)
		return CTL_OK;
	names_of(s, &names);
	if (scheduled_at != NULL) {
		/* Python's str(datetime): a space between date and time */
		char at[64];

		pgkeel_fmt(at, sizeof(at), "%s", scheduled_at);
		if (strlen(at) > 10 && at[10] == 'T')
			at[10] = ' ';
		q = pgkeel_asprintf("Are you sure you want to schedule %s of members %s at %s?", action,
		                    names.p, at);
	} else {
		q = pgkeel_asprintf("Are you sure you want to %s members %s?", action, names.p);
	}
	yes = ctl_confirm(ctl, false, q);
	free(q);
	free(names.p);
	if (!yes)
		return ctl_error("Aborted %s%s", scheduled_at ? "scheduled " : "", action);
	return CTL_OK;
}

/*
 * patronictl's get_members(): CTL_OK with s filled (possibly empty), else
 * the exit status after the message.
 */
static int get_members(struct ctl *ctl, const struct pgkeel_cluster *c, const struct mopts *o,
                       const char *action, bool ask, struct sel *s)
{
	const struct pgkeel_member **cands = NULL;
	int n = ctl_select_members(c, NULL, 0, o->role, &cands);

	s->ms = NULL;
	s->n = 0;
	if (n < 0)
		return CTL_FAIL;
	if (o->n_names == 0 && n == 0) {
		free(cands);
		return ctl_error("%s cluster doesn't have any members", o->scope);
	}
	ctl_ops_print_table(ctl, o->scope, c);
	if (o->n_names > 0) {
		free(cands);
		n = ctl_select_members(c, o->names, o->n_names, o->role, &s->ms);
		if (n < 0)
			return CTL_FAIL;
		s->n = n;
		if (n == 0)
			return ctl_error("No %s among provided members", o->role_s);
	} else if (strcmp(action, "reinitialize") != 0) {
		s->ms = cands;
		s->n = n;
	} else if (!o->force) {
		struct sel all = {cands, n};
		struct pgkeel_sbuf q = {0};
		char *name;
		const struct pgkeel_member *m = NULL;

		pgkeel_sbuf_puts(&q, "Which member do you want to reinitialize [");
		names_of(&all, &q);
		pgkeel_sbuf_puts(&q, "]?");
		name = ctl_prompt(ctl, q.p, "");
		free(q.p);
		if (name == NULL) {
			free(cands);
			return ctl_ops_aborted();
		}
		for (int i = 0; i < n && m == NULL; i++)
			if (strcmp(cands[i]->name, name) == 0)
				m = cands[i];
		free(cands);
		if (m == NULL) {
			ctl_error("%s is not a member of cluster", name);
			free(name);
			return CTL_FAIL;
		}
		free(name);
		s->ms = pgkeel_xcalloc(1, sizeof(*s->ms));
		s->ms[0] = m;
		s->n = 1;
	} else {
		free(cands);
		return ctl_error("No member to reinitialize given (name one with --force)");
	}
	return ask ? confirm_members(ctl, s, o->force, action, NULL) : CTL_OK;
}

/*
 * patronictl's check_response(): "Failed: ..." for an error status (or no
 * answer), "Success: <action> for member X" unless silent.  True on success.
 */
static bool check_response(struct ctl *ctl, bool answered, const struct ctl_reply *r,
                           const char *member, const char *action, bool silent)
{
	if (!answered) {
		fprintf(ctl->out, "Failed: %s for member %s, no answer (%s)\n", action, member, r->error);
		return false;
	}
	if (r->code >= 400) {
		fprintf(ctl->out, "Failed: %s for member %s, status code=%ld, (%s)\n", action, member,
		        r->code, r->body);
		return false;
	}
	if (!silent)
		fprintf(ctl->out, "Success: %s for member %s\n", action, member);
	return true;
}

/* ------------------------------------------------------------ restart */

/* Patroni's postgres_version_to_int() check; NULL when valid, else its message. */
static char *pg_version_error(const char *v)
{
	const char *p = v;

	if (pgkeel_ha_pg_version_to_int(v) >= 0)
		return NULL;
	for (;;) { /* every part an integer: then it is the format that is wrong */
		if (!isdigit((unsigned char)*p))
			return pgkeel_asprintf("Invalid PostgreSQL version: %s", v);
		while (isdigit((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		if (*p++ != '.')
			return pgkeel_asprintf("Invalid PostgreSQL version: %s", v);
	}
	return pgkeel_asprintf("Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: %s", v);
}

/* A --timeout value in seconds as the member reads it ("30", "30s", "1min"); 0 if not. */
static int timeout_seconds(const char *s)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"min", 60000}, {"h", 3600000},
	             {"d", 86400000}};
	char *end;
	long long v;

	if (s == NULL)
		return 0;
	v = strtoll(s, &end, 10);
	if (end == s || v <= 0 || v > 86400LL * 7)
		return 0;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(units); i++)
		if (strcmp(end, units[i].unit) == 0)
			return (int)((v * units[i].ms + 999) / 1000);
	return 0;
}

struct running_wait {
	const char **names;
	int n;
};

static bool members_running(const struct pgkeel_cluster *c, void *arg)
{
	const struct running_wait *w = arg;

	for (int i = 0; i < w->n; i++) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(c, w->names[i]);

		if (m == NULL || !same(m->d.state, "running"))
			return false;
	}
	return true;
}

/* After immediate restarts: the DCS shows them running; the table. */
static int wait_running(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c0,
                        const char **names, int n)
{
	struct running_wait w = {names, n};
	int timeout = ctl_ops_config_int(ctl, c0, "ttl", NULL, 30) + 2 * ctl_loop_wait(ctl, c0);
	struct pgkeel_cluster *c;
	bool met;
	int rc = CTL_OK;

	c = ctl_wait(ctl, timeout, true, members_running, &w, &met);
	if (c == NULL)
		return ctl_error("the DCS did not answer after the restart");
	ctl_ops_print_table(ctl, scope, c);
	if (!met) {
		for (int i = 0; i < n; i++) {
			const struct pgkeel_member *m = pgkeel_cluster_get_member(c, names[i]);

			if (m == NULL || !same(m->d.state, "running"))
				ctl_error("member %s does not show state running in the DCS after %d s (%s)",
				          names[i], timeout,
				          m == NULL ? "no member key" : m->d.state ? m->d.state : "no state");
		}
		rc = CTL_FAIL;
	}
	pgkeel_cluster_unref(c);
	return rc;
}

static void body_member(struct pgkeel_sbuf *b, const char *key)
{
	pgkeel_sbuf_puts(b, b->len > 1 ? ", " : "");
	pgkeel_json_put_cstring(b, key);
	pgkeel_sbuf_puts(b, ": ");
}

static int run_restart(struct ctl *ctl, int argc, char **argv)
{
	struct mopts o = {0};
	struct pgkeel_cluster *c = NULL;
	struct sel s = {0};
	struct pgkeel_sbuf body = {0};
	char *scheduled = NULL, *sched_at = NULL, *version = NULL, *err;
	const char **ok = NULL;
	int rc, n_ok = 0, failed = 0;
	int64_t timeout_ms;

	if ((rc = parse_opts(&ctl_cmd_restart, argc, argv, &o)) >= 0)
		return rc;
	if (!ctl_dcs(ctl, o.scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	rc = get_members(ctl, c, &o, "restart", false, &s);
	if (rc != CTL_OK)
		goto out;

	if (o.scheduled != NULL) {
		scheduled = pgkeel_strdup(o.scheduled);
	} else if (!o.force && (scheduled = ctl_ops_ask_when(ctl, "restart", ") ")) == NULL) {
		rc = ctl_ops_aborted();
		goto out;
	}
	rc = CTL_FAIL;
	if (scheduled != NULL && scheduled[0] != '\0' && !ctl_parse_schedule(scheduled, &sched_at))
		goto out;
	if ((rc = confirm_members(ctl, &s, o.force, "restart", sched_at)) != CTL_OK)
		goto out;
	if (o.any && s.n > 1) {
		srandom((unsigned)(pgkeel_now_monotonic_ms() ^ (int64_t)getpid()));
		s.ms[0] = s.ms[random() % s.n];
		s.n = 1;
	}
	if (o.version != NULL) {
		version = pgkeel_strdup(o.version);
	} else if (!o.force) {
		version = ctl_prompt(ctl, "Restart if the PostgreSQL version is less than provided "
		                          "(e.g. 9.5.2) ",
		                     "");
		if (version == NULL) {
			rc = ctl_ops_aborted();
			goto out;
		}
	}

	/* the body, in patronictl's key order */
	rc = CTL_FAIL;
	pgkeel_sbuf_puts(&body, "{");
	if (o.pending) {
		body_member(&body, "restart_pending");
		pgkeel_sbuf_puts(&body, "true");
	}
	if (version != NULL && version[0] != '\0') {
		if ((err = pg_version_error(version)) != NULL) {
			ctl_error("%s", err);
			free(err);
			goto out;
		}
		body_member(&body, "postgres_version");
		pgkeel_json_put_cstring(&body, version);
	}
	if (sched_at != NULL) {
		if (ctl_ops_paused(c)) {
			ctl_error("Can't schedule restart in the paused state");
			goto out;
		}
		body_member(&body, "schedule");
		pgkeel_json_put_cstring(&body, sched_at);
	}
	if (o.timeout != NULL) {
		body_member(&body, "timeout");
		pgkeel_json_put_cstring(&body, o.timeout);
	}
	pgkeel_sbuf_puts(&body, "}");

	if (sched_at != NULL) {
		timeout_ms = REST_TIMEOUT_MS;
	} else {
		int t = timeout_seconds(o.timeout);

		if (t == 0)
			t = ctl_ops_config_int(ctl, c, "primary_start_timeout", "master_start_timeout",
			                       300);
		timeout_ms = (int64_t)(t + RESTART_MARGIN_S) * 1000;
	}
	ok = pgkeel_xcalloc((size_t)s.n + 1, sizeof(*ok));
	for (int i = 0; i < s.n; i++) {
		const struct pgkeel_member *m = s.ms[i];
		struct ctl_reply rep;
		bool answered;

		if (sched_at != NULL && o.force && m->d.scheduled_restart != NULL) {
			answered = ctl_request(ctl, m, "DELETE", "/restart", NULL, REST_TIMEOUT_MS, &rep);
			check_response(ctl, answered, &rep, m->name, "flush scheduled restart", true);
			ctl_reply_free(&rep);
		}
		if (!ctl_request(ctl, m, "POST", "/restart", body.p, timeout_ms, &rep)) {
			fprintf(ctl->out, "Failed: restart for member %s, no answer (%s)\n", m->name,
			        rep.error);
			failed++;
		} else if (rep.code == 200) {
			fprintf(ctl->out, "Success: restart on member %s\n", m->name);
			ok[n_ok++] = m->name;
		} else if (rep.code == 202) {
			fprintf(ctl->out, "Success: restart scheduled on member %s\n", m->name);
		} else if (rep.code == 409) {
			fprintf(ctl->out, "Failed: another restart is already scheduled on member %s\n",
			        m->name);
			failed++;
		} else {
			fprintf(ctl->out, "Failed: restart for member %s, status code=%ld, (%s)\n",
			        m->name, rep.code, rep.body);
			failed++;
		}
		ctl_reply_free(&rep);
	}
	rc = failed ? CTL_FAIL : CTL_OK;
	if (n_ok > 0 && wait_running(ctl, o.scope, c, ok, n_ok) != CTL_OK)
		rc = CTL_FAIL;
out:
	free(ok);
	free(body.p);
	free(version);
	free(sched_at);
	free(scheduled);
	free(s.ms);
	pgkeel_cluster_unref(c);
	return rc;
}

/* ------------------------------------------------------------ reload */

static int run_reload(struct ctl *ctl, int argc, char **argv)
{
	struct mopts o = {0};
	struct pgkeel_cluster *c;
	struct sel s = {0};
	json_object *lw = NULL;
	int rc, failed = 0;

	if ((rc = parse_opts(&ctl_cmd_reload, argc, argv, &o)) >= 0)
		return rc;
	if (!ctl_dcs(ctl, o.scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	rc = get_members(ctl, c, &o, "reload", true, &s);
	if (c->config != NULL && c->config->valid)
		lw = pgkeel_json_path(c->config->data, "loop_wait");
	for (int i = 0; rc == CTL_OK && i < s.n; i++) {
		const struct pgkeel_member *m = s.ms[i];
		struct ctl_reply rep;

		if (!ctl_request(ctl, m, "POST", "/reload", NULL, REST_TIMEOUT_MS, &rep)) {
			fprintf(ctl->out, "Failed: reload for member %s, no answer (%s)\n", m->name,
			        rep.error);
			failed++;
		} else if (rep.code == 200) {
			fprintf(ctl->out, "No changes to apply on member %s\n", m->name);
		} else if (rep.code == 202) {
			/* Python's str() of the config's loop_wait: None when absent */
			fprintf(ctl->out,
			        "Reload request received for member %s and will be processed within %s "
			        "seconds\n",
			        m->name, lw == NULL ? "None" : json_object_get_string(lw));
		} else {
			fprintf(ctl->out, "Failed: reload for member %s, status code=%ld, (%s)\n", m->name,
			        rep.code, rep.body);
			failed++;
		}
		ctl_reply_free(&rep);
	}
	free(s.ms);
	pgkeel_cluster_unref(c);
	return rc != CTL_OK ? rc : failed ? CTL_FAIL : CTL_OK;
}

/* ------------------------------------------------------------ reinit */

struct reinit_wait {
	struct ctl *ctl;
	const char **names;
	char **started_before; /* GET /patroni's postmaster_start_time before the request */
	bool *busy_seen; /* the member key showed the reinitialization going on */
	bool *done;
	int n;
};

/* The member's postmaster_start_time and state from GET /patroni (2 s); malloc'd or NULL. */
static char *postmaster_start(struct ctl *ctl, const struct pgkeel_member *m, bool *running)
{
	struct ctl_reply rep;
	json_object *doc = NULL, *v = NULL;
	char err[128], *out = NULL;

	*running = false;
	if (m != NULL && ctl_request(ctl, m, "GET", NULL, NULL, 2000, &rep) && rep.code == 200 &&
	    pgkeel_json_parse(rep.body, rep.body_len, &doc, err, sizeof(err)) &&
	    json_object_is_type(doc, json_type_object)) {
		if (json_object_object_get_ex(doc, "postmaster_start_time", &v) && v != NULL)
			out = pgkeel_strdup(json_object_get_string(v));
		*running = json_object_object_get_ex(doc, "state", &v) &&
		           same(json_object_get_string(v), "running");
	}
	json_object_put(doc);
	if (m != NULL)
		ctl_reply_free(&rep);
	return out;
}

static bool member_running(const struct pgkeel_member *m)
{
	return m != NULL && same(m->d.state, "running") && m->d.xlog_location >= 0;
}

/* Every member seen busy (not running, or no WAL position) and then running again. */
static bool reinit_done(const struct pgkeel_cluster *c, void *arg)
{
	struct reinit_wait *w = arg;
	bool all = true;

	for (int i = 0; i < w->n; i++) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(c, w->names[i]);

		if (w->done[i])
			continue;
		if (!member_running(m)) {
			w->busy_seen[i] = true;
		} else if (w->busy_seen[i]) {
			w->done[i] = true;
		} else {
			/* a reinitialization quicker than a member-key update: PostgreSQL
			 * running again under a new postmaster */
			bool running;
			char *now = postmaster_start(w->ctl, m, &running);

			w->done[i] = running && now != NULL && w->started_before[i] != NULL &&
			             strcmp(now, w->started_before[i]) != 0;
			free(now);
		}
		all = all && w->done[i];
	}
	return all;
}

static int wait_reinit(struct ctl *ctl, const char *scope, const char **names,
                       char **started_before, int n)
{
	struct reinit_wait w = {ctl, names, started_before, pgkeel_xcalloc((size_t)n, sizeof(bool)),
	                        pgkeel_xcalloc((size_t)n, sizeof(bool)), n};
	struct pgkeel_sbuf list = {0};
	struct pgkeel_cluster *c;
	bool met;
	int rc = CTL_OK;

	for (int i = 0; i < n; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(&list, ", ");
		pgkeel_sbuf_puts(&list, names[i]);
	}
	fprintf(ctl->out, "Waiting for reinitialize to complete on: %s\n", list.p);
	fflush(ctl->out);
	free(list.p);
	c = ctl_wait(ctl, REINIT_WAIT_S, true, reinit_done, &w, &met);
	for (int i = 0; i < n; i++) {
		const struct pgkeel_member *m = c ? pgkeel_cluster_get_member(c, names[i]) : NULL;

		if (w.done[i]) {
			fprintf(ctl->out, "Reinitialize is completed on: %s\n", names[i]);
			continue;
		}
		rc = ctl_error("reinitialize not completed on %s after %d s (%s)", names[i],
		               REINIT_WAIT_S,
		               c == NULL   ? "the DCS did not answer"
		               : m == NULL ? "no member key"
		               : m->d.state ? m->d.state
		                            : "no state");
	}
	if (c != NULL)
		ctl_ops_print_table(ctl, scope, c);
	pgkeel_cluster_unref(c);
	free(w.busy_seen);
	free(w.done);
	return rc;
}

static int run_reinit(struct ctl *ctl, int argc, char **argv)
{
	struct mopts o = {0};
	struct pgkeel_cluster *c;
	struct sel s = {0};
	const char **waiting = NULL;
	char **before = NULL;
	int rc, n_wait = 0, failed = 0;

	if ((rc = parse_opts(&ctl_cmd_reinit, argc, argv, &o)) >= 0)
		return rc;
	o.role_s = "replica";
	o.role = CTL_ROLE_REPLICA;
	if (!ctl_dcs(ctl, o.scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	rc = get_members(ctl, c, &o, "reinitialize", true, &s);
	waiting = pgkeel_xcalloc((size_t)s.n + 1, sizeof(*waiting));
	before = pgkeel_xcalloc((size_t)s.n + 1, sizeof(*before));
	for (int i = 0; rc == CTL_OK && i < s.n; i++) {
		const struct pgkeel_member *m = s.ms[i];
		bool body_force = o.force, started = false, running;
		char *start = o.wait ? postmaster_start(ctl, m, &running) : NULL;

		for (int attempt = 0; attempt < 2; attempt++) {
			struct ctl_reply rep;
			bool answered, retry;

			answered = ctl_request(ctl, m, "POST", "/reinitialize",
			                       body_force ? "{\"force\": true}" : "{\"force\": false}",
			                       REST_TIMEOUT_MS, &rep);
			started = check_response(ctl, answered, &rep, m->name, "reinitialize", false);
			retry = answered && !started && !body_force && !o.force &&
			        pgkeel_str_has_suffix(rep.body, " already in progress") &&
			        ctl_confirm(ctl, false, "Do you want to cancel it and reinitialize anyway?");
			ctl_reply_free(&rep);
			if (!retry)
				break;
			body_force = true;
		}
		if (!started) {
			failed++;
			free(start);
		} else if (o.wait) {
			before[n_wait] = start;
			waiting[n_wait++] = m->name;
		}
	}
	if (n_wait > 0 && wait_reinit(ctl, o.scope, waiting, before, n_wait) != CTL_OK)
		failed++;
	for (int i = 0; i < n_wait; i++)
		free(before[i]);
	free(before);
	free(waiting);
	free(s.ms);
	pgkeel_cluster_unref(c);
	return rc != CTL_OK ? rc : failed ? CTL_FAIL : CTL_OK;
}

/* ------------------------------------------------------------ flush */

static int flush_switchover(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c)
{
	const struct pgkeel_member **ms = NULL;
	struct pgkeel_err err = {0};
	enum pgkeel_dcs_status st;
	char ts[64];
	int n;

	if (c->failover == NULL || c->failover->scheduled_at == NULL) {
		fprintf(ctl->out, "No pending scheduled switchover\n");
		return CTL_OK;
	}
	n = ctl_ops_leader_first(c, &ms);
	for (int i = 0; i < n; i++) {
		struct ctl_reply rep;

		if (!ctl_request(ctl, ms[i], "DELETE", "/switchover", NULL, REST_TIMEOUT_MS, &rep)) {
			fprintf(stderr, "Warning: %s\nWarning: Member %s is not accessible\n", rep.error,
			        ms[i]->name);
			ctl_reply_free(&rep);
			continue;
		}
		if (rep.code == 200 || rep.code == 404) {
			int rc = rep.code == 200 ? CTL_OK : CTL_FAIL;

			fprintf(ctl->out, "%s: %s\n", rep.code == 200 ? "Success" : "Failed", rep.body);
			ctl_reply_free(&rep);
			free(ms);
			return rc;
		}
		fprintf(ctl->out, "Failed: member=%s, status_code=%ld, (%s)\n", ms[i]->name, rep.code,
		        rep.body);
		ctl_reply_free(&rep);
	}
	free(ms);
	ctl_local_timestamp(ts, sizeof(ts));
	fprintf(ctl->out, "%s Could not find any accessible member of cluster %s\n", ts, scope);
	st = ctl->plugin->set_failover(ctl->dcs, "{}", c->failover->version, ctl_deadline(), &err);
	if (st != PGKEEL_DCS_OK)
		return ctl_dcs_error("clearing the failover key", st, &err);
	return CTL_OK;
}

static int run_flush(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *cmd = &ctl_cmd_flush;
	struct mopts o = {0};
	struct pgkeel_cluster *c;
	struct sel s = {0};
	const char *target;
	int rc, failed = 0;

	if ((rc = parse_opts(cmd, argc, argv, &o)) >= 0)
		return rc;
	if (o.n_names == 0)
		return ctl_usage_error(cmd, "Missing argument 'TARGET'. Choose from:\n\trestart,\n"
		                            "\tswitchover.");
	o.n_names--; /* the last operand is the target */
	target = argv[argc - 1];
	if (strcmp(target, "restart") != 0 && strcmp(target, "switchover") != 0)
		return ctl_usage_error(cmd,
		                       "Invalid value for 'TARGET': '%s' is not one of 'restart', "
		                       "'switchover'.",
		                       target);
	if (!ctl_dcs(ctl, o.scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	if (strcmp(target, "switchover") == 0) {
		rc = flush_switchover(ctl, o.scope, c);
		pgkeel_cluster_unref(c);
		return rc;
	}
	rc = get_members(ctl, c, &o, "flush", true, &s);
	for (int i = 0; rc == CTL_OK && i < s.n; i++) {
		const struct pgkeel_member *m = s.ms[i];
		struct ctl_reply rep;
		bool answered;

		if (m->d.scheduled_restart == NULL) {
			fprintf(ctl->out, "No scheduled restart for member %s\n", m->name);
			continue;
		}
		answered = ctl_request(ctl, m, "DELETE", "/restart", NULL, REST_TIMEOUT_MS, &rep);
		if (!check_response(ctl, answered, &rep, m->name, "flush scheduled restart", false))
			failed++;
		ctl_reply_free(&rep);
	}
	free(s.ms);
	pgkeel_cluster_unref(c);
	return rc != CTL_OK ? rc : failed ? CTL_FAIL : CTL_OK;
}

/* ------------------------------------------------------------ the commands */

static const struct option restart_options[] = {
    {"role", required_argument, NULL, OPT_ROLE},
    {"any", no_argument, NULL, OPT_ANY},
    {"scheduled", required_argument, NULL, OPT_SCHEDULED},
    {"pg-version", required_argument, NULL, OPT_PG_VERSION},
    {"pending", no_argument, NULL, OPT_PENDING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"force", no_argument, NULL, OPT_FORCE},
    {0},
};

static const struct option reload_options[] = {
    {"role", required_argument, NULL, OPT_ROLE},
    {"force", no_argument, NULL, OPT_FORCE},
    {0},
};

static const struct option reinit_options[] = {
    {"force", no_argument, NULL, OPT_FORCE},
    {"wait", no_argument, NULL, OPT_WAIT},
    {0},
};

const struct ctl_command ctl_cmd_restart = {
    .name = "restart",
    .run = run_restart,
    .args = "CLUSTER [MEMBER...] [-r ROLE] [--any] [--scheduled TIME] [--pg-version V] "
            "[--pending] [--timeout T] [--force]",
    .summary = "Restart cluster member",
    .options = restart_options,
    .help = "  -r, --role ROLE   Restart only members with this role: leader, primary,\n"
            "                    standby-leader, replica, standby, any (default), master\n"
            "  --any             Restart a single member only\n"
            "  --scheduled TIME  Timestamp of a scheduled restart in unambiguous format\n"
            "                    (e.g. ISO 8601), or now\n"
            "  --pg-version V    Restart if the PostgreSQL version is less than provided\n"
            "                    (e.g. 9.5.2)\n"
            "  --pending         Restart if pending\n"
            "  --timeout T       Return error and fail over if necessary when restarting\n"
            "                    takes longer than this\n"
            "  --force           Do not ask for confirmation at any point\n",
};

const struct ctl_command ctl_cmd_reload = {
    .name = "reload",
    .run = run_reload,
    .args = "CLUSTER [MEMBER...] [-r ROLE] [--force]",
    .summary = "Reload cluster member configuration",
    .options = reload_options,
    .help = "  -r, --role ROLE  Reload only members with this role (default any)\n"
            "  --force          Do not ask for confirmation at any point\n",
};

const struct ctl_command ctl_cmd_reinit = {
    .name = "reinit",
    .run = run_reinit,
    .args = "CLUSTER [MEMBER...] [--force] [--wait]",
    .summary = "Reinitialize cluster member",
    .options = reinit_options,
    .help = "  --force  Do not ask for confirmation at any point (and cancel a running\n"
            "           action of the member)\n"
            "  --wait   Wait until reinitialization completes (followed in the DCS, at\n"
            "           most an hour)\n",
};

const struct ctl_command ctl_cmd_flush = {
    .name = "flush",
    .run = run_flush,
    .args = "CLUSTER [MEMBER...] {restart|switchover} [-r ROLE] [--force]",
    .summary = "Discard scheduled events",
    .options = reload_options,
    .help = "  -r, --role ROLE  Flush only members with this role (default any)\n"
            "  --force          Do not ask for confirmation at any point\n",
};
