/*
 * pgkeelctl pause / resume: maintenance mode on and off (spec
 * patroni-interfaces.md §2.2), as patronictl 3.0.2 does it: refuse when the
 * cluster is already in that state, then PATCH /config {"pause": true} (or
 * {"pause": null}) to the leader first, then to the other members, stopping
 * at the first member that answers at all.
 *
 * With --wait, unlike patronictl (which gives up after loop_wait + 1 s and
 * blames only members that rewrote their key meanwhile), pgkeelctl polls
 * the DCS until every member key shows the new state, for at most
 * ttl + 2 * loop_wait seconds (a dead member's key expires within ttl),
 * printing a dot per second, then prints the cluster table.  A member that
 * never shows it is named and the exit status is 1.
 *
 * This file also holds the helpers of cmd_ops.h, shared with the other
 * operation commands (cmd_switchover.c, cmd_member.c).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "cmd_ops.h"
#include "ctl.h"

/* PATCH /config is queued to the member's HA loop: give it a few cycles. */
#define PAUSE_REST_TIMEOUT_MS 30000

/* ------------------------------------------------------------ shared helpers */

/* Patroni's parse_bool(str(value)) is true: true, 1, "on", "yes", "true", "1". */
static bool py_parse_bool_true(json_object *v)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	const char *s;

	if (v == NULL)
		return false;
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) == 1;
	case json_type_string:
		s = json_object_get_string(v);
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(yes); i++)
			if (strcasecmp(s, yes[i]) == 0)
				return true;
		return false;
	default:
		return false;
	}
}

bool ctl_ops_paused(const struct pgkeel_cluster *c)
{
	json_object *v;

	if (c == NULL || c->config == NULL || !c->config->valid ||
	    !json_object_object_get_ex(c->config->data, "pause", &v))
		return false;
	return py_parse_bool_true(v);
}

/* A positive integer from a JSON value (int, or a string of digits); 0 otherwise. */
static int positive_int(json_object *v)
{
	int64_t n = 0;

	if (v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_int))
		n = json_object_get_int64(v);
	else if (json_object_is_type(v, json_type_double))
		n = (int64_t)json_object_get_double(v);
	else if (!json_object_is_type(v, json_type_string) ||
	         !pgkeel_parse_int64(json_object_get_string(v), &n))
		return 0;
	return n > 0 && n <= 86400 * 7 ? (int)n : 0;
}

int ctl_ops_config_int(struct ctl *ctl, const struct pgkeel_cluster *c, const char *key,
                       const char *alias, int def)
{
	const char *keys[] = {key, alias};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(keys); i++) {
		int n;

		if (keys[i] == NULL)
			continue;
		if (c != NULL && c->config != NULL && c->config->valid &&
		    (n = positive_int(pgkeel_json_path(c->config->data, keys[i]))) > 0)
			return n;
		if (ctl->cfg != NULL && ctl->cfg->effective != NULL &&
		    (n = positive_int(pgkeel_json_path(ctl->cfg->effective, keys[i]))) > 0)
			return n;
	}
	return def;
}

int ctl_ops_leader_first(const struct pgkeel_cluster *c, const struct pgkeel_member ***out)
{
	const struct pgkeel_member **sel = pgkeel_xcalloc(c->n_members + 1, sizeof(*sel));
	const struct pgkeel_member *lm = c->leader != NULL ? c->leader->member : NULL;
	const char *leader = NULL;
	int n = 0;

	if (lm != NULL && lm->d.api_url != NULL) {
		leader = lm->name;
		sel[n++] = lm;
	}
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];

		if (m->d.api_url != NULL && (leader == NULL || strcmp(m->name, leader) != 0))
			sel[n++] = m;
	}
	*out = sel;
	return n;
}

void ctl_ops_print_table(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c)
{
	struct ctl_list_opts o = {.format = CTL_FMT_PRETTY};

	ctl_print_cluster(ctl, scope, c, &o);
}

char *ctl_ops_ask_when(struct ctl *ctl, const char *what, const char *close)
{
	char next_hour[32], q[128];
	time_t t = time(NULL) + 3600;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(next_hour, sizeof(next_hour), "%Y-%m-%dT%H:%M", &tm);
	pgkeel_fmt(q, sizeof(q), "When should the %s take place (e.g. %s%s", what, next_hour, close);
	return ctl_prompt(ctl, q, "now");
}

int ctl_ops_aborted(void)
{
	fflush(stdout);
	fputs("Aborted!\n", stderr);
	return CTL_FAIL;
}

/* ------------------------------------------------------------ pause / resume */

struct pause_wait {
	bool paused;
	char **names; /* the members that had an api_url when the request was sent */
	size_t n_names;
};

/* Every member still in the DCS that was there before shows the new state. */
static bool pause_applied(const struct pgkeel_cluster *c, void *arg)
{
	const struct pause_wait *w = arg;

	for (size_t i = 0; i < w->n_names; i++) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(c, w->names[i]);

		if (m != NULL && m->d.pause != w->paused)
			return false;
	}
	return true;
}

static int wait_until_applied(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *old,
                              bool paused)
{
	struct pause_wait w = {.paused = paused};
	const struct pgkeel_member **ms = NULL;
	int n = ctl_ops_leader_first(old, &ms);
	int loop_wait = ctl_loop_wait(ctl, old);
	int timeout = ctl_ops_config_int(ctl, old, "ttl", NULL, 30) + 2 * loop_wait;
	struct pgkeel_cluster *c;
	struct pgkeel_sbuf left = {0};
	bool met;
	int rc = CTL_OK;

	fprintf(ctl->out, "'%s' request sent, waiting until it is recognized by all nodes\n",
	        paused ? "pause" : "resume");
	fflush(ctl->out);
	w.names = pgkeel_xcalloc((size_t)n + 1, sizeof(*w.names));
	for (int i = 0; i < n; i++)
		w.names[w.n_names++] = ms[i]->name;
	free(ms);
	if (timeout < loop_wait + 1)
		timeout = loop_wait + 1;
	if (timeout > 600)
		timeout = 600;
	c = ctl_wait(ctl, timeout, true, pause_applied, &w, &met);
	if (c == NULL) {
		rc = ctl_error("the DCS did not answer while waiting for the %s state",
		               paused ? "pause" : "resume");
	} else if (met) {
		fprintf(ctl->out, "Success: cluster management is %s\n", paused ? "paused" : "resumed");
		ctl_ops_print_table(ctl, scope, c);
	} else {
		for (size_t i = 0; i < w.n_names; i++) {
			const struct pgkeel_member *m = pgkeel_cluster_get_member(c, w.names[i]);

			if (m != NULL && m->d.pause != paused) {
				if (left.len > 0)
					pgkeel_sbuf_puts(&left, ", ");
				pgkeel_sbuf_puts(&left, m->name);
			}
		}
		fprintf(ctl->out, "%s members didn't recognized pause state after %d seconds\n",
		        left.p ? left.p : "", timeout);
		rc = CTL_FAIL;
	}
	free(left.p);
	free(w.names);
	pgkeel_cluster_unref(c);
	return rc;
}

static int toggle_pause(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv,
                        bool paused)
{
	static const char *const body_on = "{\"pause\": true}", *const body_off = "{\"pause\": null}";
	const char *action = paused ? "pause" : "resume";
	const struct pgkeel_member **ms = NULL;
	struct pgkeel_cluster *c;
	const char *scope;
	bool wait = false;
	int r, n, rc = -1;

	while ((r = ctl_getopt(cmd, argc, argv, "")) != -1) {
		if (r < -1)
			return ctl_getopt_exit(r);
		if (r == 'w')
			wait = true;
	}
	if (argc - optind > 1)
		return ctl_usage_error(cmd, "Got unexpected extra argument (%s)", argv[optind + 1]);
	scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL);
	if (scope == NULL || !ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	if (ctl_ops_paused(c) == paused) {
		pgkeel_cluster_unref(c);
		return ctl_error("Cluster is %s paused", paused ? "already" : "not");
	}
	n = ctl_ops_leader_first(c, &ms);
	for (int i = 0; i < n && rc < 0; i++) {
		struct ctl_reply rep;

		if (!ctl_request(ctl, ms[i], "PATCH", "/config", paused ? body_on : body_off,
		                 PAUSE_REST_TIMEOUT_MS, &rep)) {
			fprintf(stderr, "Warning: %s\nWarning: Member %s is not accessible\n", rep.error,
			        ms[i]->name);
			ctl_reply_free(&rep);
			continue;
		}
		if (rep.code == 200 && wait) {
			rc = wait_until_applied(ctl, scope, c, paused);
		} else if (rep.code == 200) {
			fprintf(ctl->out, "Success: cluster management is %s\n",
			        paused ? "paused" : "resumed");
			rc = CTL_OK;
		} else {
			fprintf(ctl->out, "Failed: %s cluster management status code=%ld, (%s)\n", action,
			        rep.code, rep.body);
			rc = CTL_FAIL;
		}
		ctl_reply_free(&rep);
	}
	free(ms);
	pgkeel_cluster_unref(c);
	if (rc < 0)
		return ctl_error("Can not find accessible cluster member");
	return rc;
}

static const struct option pause_options[] = {
    {"wait", no_argument, NULL, 'w'},
    {0},
};

static int run_pause(struct ctl *ctl, int argc, char **argv)
{
	return toggle_pause(ctl, &ctl_cmd_pause, argc, argv, true);
}

static int run_resume(struct ctl *ctl, int argc, char **argv)
{
	return toggle_pause(ctl, &ctl_cmd_resume, argc, argv, false);
}

const struct ctl_command ctl_cmd_pause = {
    .name = "pause",
    .run = run_pause,
    .args = "[CLUSTER] [--wait]",
    .summary = "Disable auto failover",
    .options = pause_options,
    .help = "  --wait  Wait until pause is applied on all nodes (polls the DCS for at most\n"
            "          ttl + 2 * loop_wait seconds, then prints the cluster)\n",
};

const struct ctl_command ctl_cmd_resume = {
    .name = "resume",
    .run = run_resume,
    .args = "[CLUSTER] [--wait]",
    .summary = "Resume auto failover",
    .options = pause_options,
    .help = "  --wait  Wait until pause is cleared on all nodes (polls the DCS for at most\n"
            "          ttl + 2 * loop_wait seconds, then prints the cluster)\n",
};
