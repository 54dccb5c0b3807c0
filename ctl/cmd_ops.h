/*
 * Helpers shared by pgkeelctl's operation commands (cmd_switchover.c,
 * cmd_member.c, cmd_pause.c); defined in cmd_pause.c.
 */
#ifndef PGKEEL_CTL_CMD_OPS_H
#define PGKEEL_CTL_CMD_OPS_H

#include <stdbool.h>

#include "ctl.h"

/* Cluster.is_paused(): the config key's "pause" is true for Patroni's parse_bool. */
bool ctl_ops_paused(const struct pgkeel_cluster *c);

/*
 * A dynamic setting in seconds (ttl, primary_start_timeout): the cluster's
 * config key, then the configuration file's view (bootstrap.dcs), then def.
 * `alias` (NULL: none) is an older name looked at after `key`.
 */
int ctl_ops_config_int(struct ctl *ctl, const struct pgkeel_cluster *c, const char *key,
                       const char *alias, int def);

/*
 * patronictl's get_all_members_leader_first(): the leader (when its member
 * has an api_url), then every other member with an api_url.  Returns the
 * count; *out is malloc'd.
 */
int ctl_ops_leader_first(const struct pgkeel_cluster *c, const struct pgkeel_member ***out);

/* The cluster as `list` prints it by default (pretty). */
void ctl_ops_print_table(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c);

/*
 * patronictl's "When should the <what> take place (e.g. <an hour from now>"
 * + close + " [now]: " prompt.  The answer (malloc'd), NULL at end of input.
 */
char *ctl_ops_ask_when(struct ctl *ctl, const char *what, const char *close);

/* End of input at a prompt: "Aborted!" on stderr as click says it; CTL_FAIL. */
int ctl_ops_aborted(void);

#endif
