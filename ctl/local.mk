# ctl/: pgkeelctl, the operator's command line (ctl/ctl.h).

bin_PROGRAMS += ctl/pgkeelctl
ctl_pgkeelctl_SOURCES = ctl/ctl.h ctl/main.c ctl/ctl_dcs.c ctl/ctl_http.c ctl/ctl_table.c \
	ctl/ctl_yaml.c ctl/ctl_util.c
ctl_pgkeelctl_SOURCES += ctl/cmd_list.c
ctl_pgkeelctl_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS) $(YAML_CFLAGS) $(LIBPQ_CFLAGS)
ctl_pgkeelctl_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(CURL_LIBS) $(YAML_LIBS) $(LIBPQ_LIBS) -lm
