/*
 * pgkeel: the daemon's entry point.
 *
 *   pgkeel [--strict] CONFIG               run the supervisor
 *   pgkeel [--strict] --validate-config CONFIG
 *   pgkeel --version | --help
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <curl/curl.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "config_schema.h"
#include "dcs_loader.h"
#include "exit_codes.h"
#include "host.h"
#include "log.h"
#include "loop.h"
#include "util.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: pgkeel [--strict] CONFIG\n"
	        "       pgkeel [--strict] [--offline] --validate-config CONFIG\n"
	        "       pgkeel --version | --help\n"
	        "\n"
	        "A PostgreSQL high-availability supervisor that runs an unchanged patroni.yml.\n"
	        "\n"
	        "CONFIG is a YAML file or a directory of *.yml files merged in name order;\n"
	        "without it the configuration comes from PATRONI_CONFIGURATION, or from the\n"
	        "PATRONI_* / PGKEEL_* variables alone.\n"
	        "\n"
	        "Options:\n"
	        "  --validate-config  check the configuration and exit: 0 valid, 1 not\n"
	        "  --strict           findings about this machine (ports in use, missing\n"
	        "                     binaries, DCS unreachable, backend not loadable) and\n"
	        "                     timing clamps are errors, not warnings\n"
	        "  --offline          with --validate-config: open no network connection\n"
	        "                     (skips the check that the DCS answers)\n"
	        "  --version          print the version and exit\n"
	        "  --help             print this help and exit\n"
	        "\n"
	        "Environment: PGKEEL_BACKEND_DIR (where dcs_<name>.so live, default %s),\n"
	        "PATRONI_CONFIGURATION, PATRONI_* and PGKEEL_* overrides.\n"
	        "Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop.\n"
	        "See pgkeel(8) and pgkeel.yml(5).\n",
	        PKGLIBDIR);
}

static void print_findings(const struct pgkeel_diag *d)
{
	for (size_t i = 0; i < pgkeel_diag_warnings(d); i++)
		fprintf(stderr, "warning: %s\n",
		        json_object_get_string(json_object_array_get_idx(d->warnings, i)));
	for (size_t i = 0; i < pgkeel_diag_errors(d); i++)
		fprintf(stderr, "error: %s\n",
		        json_object_get_string(json_object_array_get_idx(d->errors, i)));
}

static int validate_config(const char *path, bool strict, bool offline)
{
	struct pgkeel_config_opts opts = {
	    .strict = strict, .check_env = true, .offline = offline, .use_environ = true};
	struct pgkeel_diag diag;
	struct pgkeel_config *c;
	int rc;

	pgkeel_diag_init(&diag);
	c = pgkeel_config_load(path, &opts, &diag);
	print_findings(&diag);
	if (c != NULL) {
		printf("%s: configuration is valid (member %s of cluster %s, DCS %s; %zu "
		       "warning%s)\n",
		       c->source, c->name, c->scope, c->dcs_type, pgkeel_diag_warnings(&diag),
		       pgkeel_diag_warnings(&diag) == 1 ? "" : "s");
		rc = PGKEEL_EXIT_OK;
	} else {
		fprintf(stderr, "%s: configuration is not valid (%zu error%s)\n",
		        path ? path : "PATRONI_CONFIGURATION", pgkeel_diag_errors(&diag),
		        pgkeel_diag_errors(&diag) == 1 ? "" : "s");
		rc = PGKEEL_EXIT_FAILURE;
	}
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&diag);
	return rc;
}

/* Every key path the parser knows, one per line (for the man-page check). */
static int list_config_keys(void)
{
	for (size_t i = 0; i < pgkeel_local_keys_len; i++)
		printf("local %s\n", pgkeel_local_keys[i].path);
	for (size_t i = 0; i < pgkeel_dynamic_keys_len; i++)
		printf("dynamic %s\n", pgkeel_dynamic_keys[i].path);
	return PGKEEL_EXIT_OK;
}

struct daemon {
	const char *config_path;
	bool strict;
	struct pgkeel_config *cfg;
	int sigfd;
};

static void service_notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	(void)sd_notify(0, state);
#else
	(void)state;
#endif
}

static int run(struct daemon *d)
{
	struct pgkeel_config_opts opts = {.strict = d->strict, .use_environ = true};
	struct pgkeel_loop_opts lo = {0};
	struct pgkeel_diag diag;
	sigset_t mask;
	char err[512];
	int code;

	/*
	 * Block the signals before anything else, so a SIGHUP or SIGTERM during
	 * start-up waits in the signalfd instead of killing us, and so threads a
	 * backend starts in init() inherit the blocked mask (only the loop
	 * receives signals).  Children must reset the mask before exec.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		log_error("signalfd: %s", strerror(errno));
		return PGKEEL_EXIT_FAILURE;
	}

	pgkeel_diag_init(&diag);
	d->cfg = pgkeel_config_load(d->config_path, &opts, &diag);
	pgkeel_diag_log(&diag);
	pgkeel_diag_clear(&diag);
	if (d->cfg == NULL)
		return PGKEEL_EXIT_FAILURE;
	pgkeel_config_publish(d->cfg);

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		log_error("libcurl initialisation failed");
		return PGKEEL_EXIT_FAILURE;
	}
	if (!pgkeel_log_start(&d->cfg->log, err, sizeof(err))) {
		log_error("log: %s", err);
		return PGKEEL_EXIT_FAILURE;
	}
	lo.cfg = d->cfg;
	lo.config_path = d->config_path;
	lo.strict = d->strict;
	lo.sigfd = d->sigfd;
	lo.notify = service_notify;
	code = pgkeel_loop_run(&lo);
	pgkeel_log_stop();
	pgkeel_config_publish(NULL);
	pgkeel_config_unref(d->cfg);
	close(d->sigfd);
	return code;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"validate-config", no_argument, NULL, 'V'},
	    {"strict", no_argument, NULL, 's'},
	    {"offline", no_argument, NULL, 'o'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"list-config-keys", no_argument, NULL, 'K'},
	    {NULL, 0, NULL, 0},
	};
	struct daemon d = {.sigfd = -1};
	bool validate = false, offline = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'V':
			validate = true;
			break;
		case 's':
			d.strict = true;
			break;
		case 'o':
			offline = true;
			break;
		case 'v':
			printf("pgkeel %s (Patroni %s compatible)\n", PACKAGE_VERSION,
			       PGKEEL_PATRONI_COMPAT_VERSION);
			return PGKEEL_EXIT_OK;
		case 'h':
			usage(stdout);
			return PGKEEL_EXIT_OK;
		case 'K':
			return list_config_keys();
		default:
			usage(stderr);
			return PGKEEL_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "pgkeel: too many arguments\n");
		usage(stderr);
		return PGKEEL_EXIT_USAGE;
	}
	d.config_path = optind < argc ? argv[optind] : NULL;
	/* a peer closing a socket is an error to handle, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	if (validate)
		return validate_config(d.config_path, d.strict, offline);
	return run(&d);
}
