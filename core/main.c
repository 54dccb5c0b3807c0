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
	struct pgkeel_dcs_module backend;
	struct pgkeel_dcs *dcs;
	int sigfd;
};

static bool backend_open(struct daemon *d)
{
	struct pgkeel_config *c = d->cfg;
	struct pgkeel_dcs_params params = {
	    .struct_size = sizeof(params),
	    .namespace_ = c->namespace_,
	    .scope = c->scope,
	    .name = c->name,
	    .ttl = c->ttl,
	    .loop_wait = c->loop_wait,
	    .retry_timeout = c->retry_timeout,
	    .options_json = c->dcs_options_json ? c->dcs_options_json : "{}",
	    .user_agent = "pgkeel/" PACKAGE_VERSION,
	};
	struct pgkeel_err err = {0};
	char msg[1024];
	enum pgkeel_dcs_status st;

	if (!pgkeel_dcs_load(pgkeel_dcs_backend_dir(c->backend_dir), c->dcs_type, &d->backend, msg,
	                     sizeof(msg))) {
		log_error("%s", msg);
		return false;
	}
	st = d->backend.plugin->init(pgkeel_host_get(), &params, &d->dcs, &err);
	if (st != PGKEEL_DCS_OK) {
		log_error("DCS backend %s: initialisation failed: %s", d->backend.path,
		          err.msg[0] ? err.msg : "no detail");
		d->dcs = NULL;
		return false;
	}
	return true;
}

static void reload(struct daemon *d)
{
	struct pgkeel_config_opts opts = {.strict = d->strict, .use_environ = true};
	struct pgkeel_diag diag;
	struct pgkeel_config *n;
	char err[512];

	log_info("received SIGHUP, reloading the configuration from %s", d->cfg->source);
	pgkeel_diag_init(&diag);
	n = pgkeel_config_reload(d->cfg, d->config_path, &opts, &diag);
	pgkeel_diag_log(&diag);
	if (n == NULL) {
		log_error("the new configuration is not valid; keeping the current one");
	} else {
		if (!pgkeel_log_reconfigure(&n->log, err, sizeof(err)))
			log_error("log: %s; keeping the current log settings", err);
		pgkeel_config_publish(n);
		pgkeel_config_unref(d->cfg);
		d->cfg = n;
		log_info("configuration reloaded");
	}
	pgkeel_diag_clear(&diag);
}

static int run(struct daemon *d)
{
	struct pgkeel_config_opts opts = {.strict = d->strict, .use_environ = true};
	struct pgkeel_diag diag;
	sigset_t mask;
	char err[512];
	bool stop = false;

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
	if (!backend_open(d))
		return PGKEEL_EXIT_FAILURE;

	if (!pgkeel_log_start(&d->cfg->log, err, sizeof(err))) {
		log_error("log: %s", err);
		return PGKEEL_EXIT_FAILURE;
	}
	log_info("pgkeel %s starting: member %s of cluster %s, DCS %s (%s), namespace %s",
	         PACKAGE_VERSION, d->cfg->name, d->cfg->scope, d->cfg->dcs_type, d->backend.path,
	         d->cfg->namespace_);
	log_info("this release validates the configuration and loads the DCS backend; it does "
	         "not run the HA loop yet");
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	while (!stop) {
		struct pollfd pfd[2] = {
		    {.fd = d->sigfd, .events = POLLIN},
		    {.fd = pgkeel_host_event_fd(), .events = POLLIN},
		};
		struct signalfd_siginfo si;

		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].fd >= 0 && (pfd[1].revents & POLLIN))
			(void)pgkeel_host_take_events();
		while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				reload(d);
			else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				stop = true;
		}
	}
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	log_info("pgkeel stopping");
	if (d->backend.plugin != NULL)
		d->backend.plugin->fini(d->dcs);
	pgkeel_log_stop();
	pgkeel_config_publish(NULL);
	pgkeel_config_unref(d->cfg);
	close(d->sigfd);
	return PGKEEL_EXIT_OK;
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
