/*
 * pgkeelctl: global options and the command table (see ctl.h).
 *
 *   pgkeelctl [-c CONFIG] [-d|--dcs-url URL] [-k|--insecure] COMMAND [ARGS]
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "log.h"

/* commands: one line each, in the order --help lists them */
static const struct ctl_command *const commands[] = {
    &ctl_cmd_list,
    &ctl_cmd_topology,
    &ctl_cmd_history,
    &ctl_cmd_show_config,
    &ctl_cmd_edit_config,
    &ctl_cmd_switchover,
    &ctl_cmd_failover,
    &ctl_cmd_restart,
    &ctl_cmd_reload,
    &ctl_cmd_reinit,
    &ctl_cmd_flush,
    &ctl_cmd_pause,
    &ctl_cmd_resume,
    &ctl_cmd_remove,
    &ctl_cmd_dsn,
    &ctl_cmd_query,
    &ctl_cmd_version,
    &ctl_cmd_why,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: pgkeelctl [OPTIONS] COMMAND [ARGS]...\n"
	           "\n"
	           "  The command line of pgkeel, a PostgreSQL high-availability supervisor;\n"
	           "  works like patronictl on pgkeel and Patroni clusters.\n"
	           "\n"
	           "Options:\n"
	           "  -c, --config-file FILE  configuration file (default: $PATRONICTL_CONFIG_FILE,\n"
	           "                          else ~/.config/patroni/patronictl.yaml)\n"
	           "  -d, --dcs-url, --dcs URL  the DCS to use instead of the configuration's,\n"
	           "                          e.g. etcd3://127.0.0.1:2379 (default: $DCS_URL)\n"
	           "  -k, --insecure          do not verify the REST API's certificates\n"
	           "  --version               print the version and exit\n"
	           "  --list-commands         print every command and its options and exit\n"
	           "  --help                  print this help and exit\n"
	           "\n"
	           "Commands:\n");
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n"
	           "Run 'pgkeelctl COMMAND --help' for a command's options.\n"
	           "Exit status: 0 done, 1 refused or failed, 2 usage error.  See pgkeelctl(1).\n");
}

static void list_commands(void)
{
	static const char *const global[] = {"--config-file", "--dcs-url", "--dcs", "--insecure",
	                                     "--version", "--list-commands", "--help", NULL};

	for (int i = 0; global[i] != NULL; i++)
		printf("pgkeelctl %s\n", global[i]);
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(commands); i++) {
		printf("%s\n", commands[i]->name);
		for (const struct option *o = commands[i]->options; o && o->name; o++)
			printf("%s --%s\n", commands[i]->name, o->name);
	}
}

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

/* ------------------------------------------------------------ main */

/* Backend and configuration messages: stderr at WARNING ($LOGLEVEL as patronictl). */
static void start_log(void)
{
	static const char *const vars[] = {"LOGLEVEL", "PATRONI_LOGLEVEL", "PATRONI_LOG_LEVEL",
	                                   NULL};
	struct pgkeel_log_config lc;
	char err[256];

	pgkeel_log_config_defaults(&lc);
	lc.level = PGKEEL_LOG_WARNING;
	lc.ident = "pgkeelctl";
	for (int i = 0; vars[i] != NULL; i++) {
		const char *v = getenv(vars[i]);

		if (v != NULL && v[0] != '\0') {
			if (!pgkeel_log_level_parse(v, &lc.level))
				fprintf(stderr, "warning: %s: unknown log level '%s'\n", vars[i], v);
			break;
		}
	}
	if (!pgkeel_log_start(&lc, err, sizeof(err)))
		fprintf(stderr, "warning: %s\n", err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config-file", required_argument, NULL, 'c'},
	    {"dcs-url", required_argument, NULL, 'd'},
	    {"dcs", required_argument, NULL, 'd'},
	    {"insecure", no_argument, NULL, 'k'},
	    {"version", no_argument, NULL, 'V'},
	    {"list-commands", no_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct ctl ctl = {.insecure = -1, .in = stdin, .out = stdout};
	const struct ctl_command *cmd;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:d:kh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctl.config_path = optarg;
			break;
		case 'd':
			ctl.dcs_url = optarg;
			break;
		case 'k':
			ctl.insecure = 1;
			break;
		case 'V':
			printf("pgkeelctl %s\n", PACKAGE_VERSION);
			return CTL_OK;
		case 'L':
			list_commands();
			return CTL_OK;
		case 'h':
			usage(stdout);
			return CTL_OK;
		case ':':
			fprintf(stderr, "Error: option '%s' requires an argument.\n", argv[optind - 1]);
			return CTL_USAGE;
		default:
			fprintf(stderr, "Error: no such option: %s\n", argv[optind - 1]);
			usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 < argc && (cmd = find_command(argv[optind + 1])) != NULL) {
			char *hv[] = {argv[optind + 1], (char *)"--help", NULL};

			ctl_getopt_reset();
			return cmd->run(&ctl, 2, hv);
		}
		usage(stdout);
		return CTL_OK;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "Error: no such command '%s'.\n", argv[optind]);
		usage(stderr);
		return CTL_USAGE;
	}
	start_log();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return ctl_error("cannot initialise libcurl");
	{
		int first = optind;

		ctl_getopt_reset();
		rc = cmd->run(&ctl, argc - first, argv + first);
	}
	fflush(stdout);
	ctl_close(&ctl);
	curl_global_cleanup();
	pgkeel_log_stop();
	return rc;
}
