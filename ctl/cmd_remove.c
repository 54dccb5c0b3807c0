/*
 * pgkeelctl remove CLUSTER: wipe a cluster's keys from the DCS, with
 * patronictl 3.0.2's three questions: the cluster table first, then
 *   Please confirm the cluster name to remove: <CLUSTER>
 *   You are about to remove all information in DCS for <CLUSTER>, please
 *   type: "Yes I am aware": Yes I am aware
 * and, when the cluster has a leader,
 *   This cluster currently is healthy. Please specify the leader name to
 *   continue: <leader>
 * Any other answer stops with "Error: ..." (the end of the input with
 * "Aborted!") and exit 1 before anything is deleted.  An empty answer asks again, as
 * click's prompt does.  Then the backend's delete_cluster removes the whole
 * <namespace>/<scope>/ prefix.  There is no --force: that is the point.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* A non-empty answer; NULL at the end of the input (after click's "Aborted!"). */
static char *ask(struct ctl *ctl, const char *question)
{
	for (;;) {
		char *a = ctl_prompt(ctl, question, NULL);

		if (a == NULL) {
			fflush(ctl->out);
			fputs("Aborted!\n", stderr);
			return NULL;
		}
		if (a[0] != '\0')
			return a;
		free(a);
	}
}

/* Ask `question`; true when the answer is exactly `want`, else prints `refusal`. */
static bool answered(struct ctl *ctl, const char *question, const char *want, const char *refusal)
{
	char *a = ask(ctl, question);
	bool ok;

	if (a == NULL)
		return false;
	ok = strcmp(a, want) == 0;
	free(a);
	if (!ok)
		ctl_error("%s", refusal);
	return ok;
}

static int remove_cluster(struct ctl *ctl, const char *scope, const struct ctl_list_opts *lo)
{
	struct pgkeel_cluster *c;
	struct pgkeel_err err = {0};
	enum pgkeel_dcs_status st;
	const char *leader;
	char *q;
	bool ok;

	if (!ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	ctl_print_cluster(ctl, scope, c, lo);
	if (!answered(ctl, "Please confirm the cluster name to remove", scope,
	              "Cluster names specified do not match"))
		goto refused;
	q = pgkeel_asprintf("You are about to remove all information in DCS for %s, please type: "
	                    "\"Yes I am aware\"",
	                    scope);
	ok = answered(ctl, q, "Yes I am aware", "You did not exactly type \"Yes I am aware\"");
	free(q);
	if (!ok)
		goto refused;
	leader = pgkeel_cluster_leader_name(c);
	if (leader != NULL && leader[0] != '\0' &&
	    !answered(ctl,
	              "This cluster currently is healthy. Please specify the leader name to "
	              "continue",
	              leader, "You did not specify the current leader of the cluster"))
		goto refused;
	pgkeel_cluster_unref(c);
	st = ctl->plugin->delete_cluster(ctl->dcs, ctl_deadline(), &err);
	if (st != PGKEEL_DCS_OK)
		return ctl_dcs_error("removing the cluster from the DCS", st, &err);
	return CTL_OK;
refused:
	pgkeel_cluster_unref(c);
	return CTL_FAIL;
}

static int run_remove(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_list_opts lo = {.format = CTL_FMT_PRETTY};
	int r;

	while ((r = ctl_getopt(&ctl_cmd_remove, argc, argv, "f:")) != -1) {
		if (r == 'f') {
			if (!ctl_format_parse(optarg, &lo.format))
				return ctl_usage_error(
				    &ctl_cmd_remove,
				    "Invalid value for '--format' / '-f': '%s' is not "
				    "one of 'pretty', 'tsv', 'json', 'yaml'.",
				    optarg);
			continue;
		}
		return ctl_getopt_exit(r);
	}
	if (optind >= argc)
		return ctl_usage_error(&ctl_cmd_remove, "Missing argument 'CLUSTER_NAME'.");
	if (argc - optind > 1)
		return ctl_usage_error(&ctl_cmd_remove, "Got unexpected extra argument (%s)",
		                       argv[optind + 1]);
	if (ctl_config(ctl) == NULL)
		return CTL_FAIL;
	return remove_cluster(ctl, argv[optind], &lo);
}

static const struct option remove_options[] = {
    {"format", required_argument, NULL, 'f'},
    {0},
};

const struct ctl_command ctl_cmd_remove = {
    .name = "remove",
    .run = run_remove,
    .args = "CLUSTER [-f pretty|tsv|json|yaml]",
    .summary = "Remove cluster from DCS",
    .options = remove_options,
    .help = "  -f, --format FORMAT   Output format of the cluster table (pretty, tsv, json,\n"
            "                        yaml)\n",
};
