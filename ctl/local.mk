# ctl/: pgkeelctl, the operator's command line (ctl/ctl.h).

# the shared parts, also linked into the unit tests
noinst_LTLIBRARIES += ctl/libpgkeelctl.la
ctl_libpgkeelctl_la_SOURCES = ctl/ctl.h ctl/ctl_cli.c ctl/ctl_dcs.c ctl/ctl_http.c \
	ctl/ctl_table.c ctl/ctl_yaml.c ctl/ctl_util.c
ctl_libpgkeelctl_la_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS) $(YAML_CFLAGS)
ctl_libpgkeelctl_la_LIBADD = $(JSONC_LIBS) $(CURL_LIBS) $(YAML_LIBS) -lm

bin_PROGRAMS += ctl/pgkeelctl
ctl_pgkeelctl_SOURCES = ctl/main.c
ctl_pgkeelctl_SOURCES += ctl/cmd_list.c
ctl_pgkeelctl_SOURCES += ctl/cmd_config.c ctl/cmd_remove.c ctl/cmd_query.c
ctl_pgkeelctl_SOURCES += ctl/cmd_switchover.c ctl/cmd_member.c ctl/cmd_pause.c ctl/cmd_ops.h
ctl_pgkeelctl_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS) $(YAML_CFLAGS) $(LIBPQ_CFLAGS)
ctl_pgkeelctl_LDADD = ctl/libpgkeelctl.la core/libpgkeelcore.la $(JSONC_LIBS) $(CURL_LIBS) $(YAML_LIBS) $(LIBPQ_LIBS) -lm
