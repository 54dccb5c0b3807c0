/*
 * pgkeelctl: what every command shares from the command line -- option
 * parsing with patronictl's (click's) messages, errors, usage.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_FAIL;
}

static void command_usage(FILE *f, const struct ctl_command *cmd)
{
	fprintf(f, "Usage: pgkeelctl %s %s\n", cmd->name, cmd->args ? cmd->args : "");
}

int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	command_usage(stderr, cmd);
	fprintf(stderr, "Try 'pgkeelctl %s --help' for help.\n\nError: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_USAGE;
}

void ctl_getopt_reset(void)
{
	optind = 0; /* glibc: 0 re-initialises getopt completely */
	opterr = 0;
}

int ctl_getopt(const struct ctl_command *cmd, int argc, char **argv, const char *shortopts)
{
	static const struct option help_only[] = {{"help", no_argument, NULL, 0x100}, {0}};
	struct option all[64];
	size_t n = 0;
	char shorts[128];
	int r;

	for (const struct option *o = cmd->options; o && o->name && n < PGKEEL_ARRAY_LEN(all) - 2;
	     o++)
		all[n++] = *o;
	all[n++] = help_only[0];
	all[n] = help_only[1];
	/* '+': stop at the first operand? no: options may follow operands, as click allows */
	pgkeel_fmt(shorts, sizeof(shorts), ":%s", shortopts ? shortopts : "");
	r = getopt_long(argc, argv, shorts, all, NULL);
	if (r == 0x100) {
		command_usage(stdout, cmd);
		printf("\n  %s\n\n", cmd->summary);
		if (cmd->help && cmd->help[0])
			printf("Options:\n%s", cmd->help);
		printf("  --help  Show this message and exit.\n");
		return -2;
	}
	if (r == '?') {
		if (optopt)
			ctl_usage_error(cmd, "No such option: -%c", optopt);
		else
			ctl_usage_error(cmd, "No such option: %s", argv[optind - 1]);
		return -3;
	}
	if (r == ':') {
		if (optopt)
			ctl_usage_error(cmd, "Option '-%c' requires an argument.", optopt);
		else
			ctl_usage_error(cmd, "Option '%s' requires an argument.", argv[optind - 1]);
		return -3;
	}
	return r;
}

int ctl_getopt_exit(int r)
{
	return r == -2 ? CTL_OK : CTL_USAGE;
}

