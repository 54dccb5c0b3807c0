# core/: the internal library shared by the daemon, pgkeelctl and the tests.

noinst_LTLIBRARIES += core/libpgkeelcore.la
core_libpgkeelcore_la_SOURCES = \
	core/util.c core/util.h \
	core/exit_codes.h \
	core/yaml_load.c core/yaml_load.h \
	core/config_schema.c core/config_schema.h \
	core/config_env.c \
	core/config_check.c \
	core/config.c core/config.h \
	core/config_effective.c core/config_internal.h \
	core/log.c core/log.h \
	core/host.c core/host.h \
	core/dcs_loader.c core/dcs_loader.h \
	core/json.c core/json.h \
	core/cluster.c core/cluster.h \
	core/cluster_encode.c \
	core/child.c core/child.h \
	core/pg_conf.c core/pg_conf.h \
	core/pg_conf_classify.c core/pg_conf_internal.h \
	core/pg_query.c core/pg_query.h \
	core/pg_data.c core/pg_data.h \
	core/pg_task.c core/pg_task.h \
	core/pg_bootstrap.c core/pg_bootstrap.h \
	core/pg_replica.c \
	core/pg_ctl.c core/pg_ctl.h \
	core/pg_demote.c core/pg_demote.h \
	core/pg_slots.c core/pg_slots.h \
	core/pg_slots_copy.c core/pg_slots_copy.h \
	core/pg_callbacks.c core/pg_callbacks.h \
	core/pg_rewind.c core/pg_rewind.h \
	core/pg_rewind_run.c core/pg_rewind_run.h \
	core/pg_rewind_check.c core/pg_rewind_internal.h \
	core/pg_manager.c core/pg_manager.h \
	core/dcs_client.c core/dcs_client.h \
	core/member.c core/member.h \
	core/history.c core/history.h \
	core/loop.c core/loop.h core/loop_act.c core/loop_internal.h \
	core/state.c core/state.h \
	core/rest.c core/rest.h core/rest_internal.h \
	core/rest_status.c core/rest_failover.c
core_libpgkeelcore_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS) \
	$(LIBPQ_CFLAGS)
core_libpgkeelcore_la_LIBADD = $(YAML_LIBS) $(JSONC_LIBS) $(CURL_LIBS) $(LIBPQ_LIBS) -lpthread
# the REST API (core/rest*.c) runs on libmicrohttpd
core_libpgkeelcore_la_CFLAGS += $(MHD_CFLAGS) $(GNUTLS_CFLAGS)
core_libpgkeelcore_la_LIBADD += $(MHD_LIBS)
# the rest of the REST API: documents, allowlist and TLS (GnuTLS: libmicrohttpd's)
core_libpgkeelcore_la_SOURCES += core/rest_docs.c core/rest_access.c core/loop_rest.c \
	core/loop_rest.h core/rest_handlers.c core/rest_server.h core/rest_tls.c
core_libpgkeelcore_la_LIBADD += $(GNUTLS_LIBS)

# the HTTP client to the other members' REST APIs
core_libpgkeelcore_la_SOURCES += core/peers.c core/peers.h

# the PostgreSQL sampler thread (the REST API's samples, core/sampler.h)
core_libpgkeelcore_la_SOURCES += core/sampler.c core/sampler.h

# the HA decision (pure): the cycle, the race, synchronous replication, settings
core_libpgkeelcore_la_SOURCES += core/ha.c core/ha.h core/ha_internal.h core/ha_engine.c \
	core/ha_race.c core/ha_sync.c core/ha_util.c

bin_PROGRAMS += core/pgkeel
core_pgkeel_SOURCES = core/main.c
core_pgkeel_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS) $(SYSTEMD_CFLAGS)
core_pgkeel_LDADD = core/libpgkeelcore.la $(SYSTEMD_LIBS)

# the watchdog device (armed while leader)
core_libpgkeelcore_la_SOURCES += core/watchdog.c core/watchdog.h
