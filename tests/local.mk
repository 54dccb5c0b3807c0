# tests/: cmocka unit tests, deliberately broken backends, doc checks.

TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; \
	export top_srcdir top_builddir;

# Backends for the loader tests: one good, the others broken on purpose.
# -rpath makes libtool build real shared objects for check_LTLIBRARIES.
TEST_MODULE_FLAGS = -module -avoid-version -shared -rpath /nowhere
check_LTLIBRARIES += tests/plugins/dcs_mock.la tests/plugins/dcs_badabi.la \
	tests/plugins/dcs_noentry.la tests/plugins/dcs_missingop.la
tests_plugins_dcs_mock_la_SOURCES = tests/plugins/dcs_mock.c
tests_plugins_dcs_mock_la_LDFLAGS = $(TEST_MODULE_FLAGS) \
	-export-symbols-regex '^pgkeel_dcs_plugin_entry$$'
# The same mock under the name etcd3, so the daemon can run with a config
# that has an etcd3: section before the real backend exists.
check_LTLIBRARIES += tests/plugins/mock-etcd3/dcs_etcd3.la
tests_plugins_mock_etcd3_dcs_etcd3_la_SOURCES = tests/plugins/dcs_mock.c
tests_plugins_mock_etcd3_dcs_etcd3_la_CPPFLAGS = $(AM_CPPFLAGS) -DMOCK_NAME='"etcd3"'
tests_plugins_mock_etcd3_dcs_etcd3_la_LDFLAGS = $(TEST_MODULE_FLAGS) \
	-export-symbols-regex '^pgkeel_dcs_plugin_entry$$'
tests_plugins_dcs_badabi_la_SOURCES = tests/plugins/dcs_badabi.c
tests_plugins_dcs_badabi_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_dcs_noentry_la_SOURCES = tests/plugins/dcs_noentry.c
tests_plugins_dcs_noentry_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_dcs_missingop_la_SOURCES = tests/plugins/dcs_missingop.c
tests_plugins_dcs_missingop_la_LDFLAGS = $(TEST_MODULE_FLAGS)

# etcd3_proto against recorded etcd responses (tests/data/etcd3/); no core library.
if HAVE_CMOCKA
if BUILD_DCS_ETCD3
check_PROGRAMS += tests/unit/test_etcd3_proto
tests_unit_test_etcd3_proto_SOURCES = tests/unit/test_etcd3_proto.c \
	backends/etcd3/etcd3_proto.c backends/etcd3/etcd3_proto.h
tests_unit_test_etcd3_proto_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/backends/etcd3
tests_unit_test_etcd3_proto_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS) \
	$(CRYPTO_CFLAGS) -DTEST_SRCDIR='"$(abs_top_srcdir)"' -DTEST_BUILDDIR='"$(abs_top_builddir)"'
tests_unit_test_etcd3_proto_LDADD = $(CMOCKA_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)
TESTS += tests/unit/test_etcd3_proto
endif
endif

# zk_proto (backends/zookeeper): options, paths, versions, return codes; no server.
if HAVE_CMOCKA
if BUILD_DCS_ZOOKEEPER
check_PROGRAMS += tests/unit/test_zk_proto
tests_unit_test_zk_proto_SOURCES = tests/unit/test_zk_proto.c \
	backends/zookeeper/zk_proto.c backends/zookeeper/zk_proto.h
tests_unit_test_zk_proto_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/backends/zookeeper
tests_unit_test_zk_proto_SOURCES += backends/common/dcs_common.c backends/common/dcs_common.h
tests_unit_test_zk_proto_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_zk_proto_LDADD = $(CMOCKA_LIBS) $(JSONC_LIBS)
TESTS += tests/unit/test_zk_proto
endif
endif

# backends/common: the error detail and init's parameter checks; no server.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_dcs_common
tests_unit_test_dcs_common_SOURCES = tests/unit/test_dcs_common.c \
	backends/common/dcs_common.c backends/common/dcs_common.h
tests_unit_test_dcs_common_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/backends/common
tests_unit_test_dcs_common_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_dcs_common_LDADD = $(CMOCKA_LIBS)
TESTS += tests/unit/test_dcs_common
endif

# rewind_probe: drive core/pg_rewind.c on real timelines (test_pg_rewind.py).
check_PROGRAMS += tests/tools/rewind_probe
tests_tools_rewind_probe_SOURCES = tests/tools/rewind_probe.c
tests_tools_rewind_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_rewind_probe_LDADD = core/libpgkeelcore.la

# dcs_tool: drive a backend from the command line (Patroni compatibility tests).
check_PROGRAMS += tests/tools/dcs_tool
tests_tools_dcs_tool_SOURCES = tests/tools/dcs_tool.c
tests_tools_dcs_tool_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS)
tests_tools_dcs_tool_LDADD = core/libpgkeelcore.la $(CURL_LIBS)

# pgq_probe: drive core/pg_query.c (tests/integration/test_pg_query.py).
check_PROGRAMS += tests/tools/pgq_probe
tests_tools_pgq_probe_SOURCES = tests/tools/pgq_probe.c
tests_tools_pgq_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBPQ_CFLAGS)
tests_tools_pgq_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(LIBPQ_LIBS)

# pgboot_probe: drive core/pg_bootstrap.c (tests/integration/test_pg_bootstrap.py).
check_PROGRAMS += tests/tools/pgboot_probe
tests_tools_pgboot_probe_SOURCES = tests/tools/pgboot_probe.c
tests_tools_pgboot_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_pgboot_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS)

# pgctl_probe: drive core/pg_ctl.c (tests/integration/test_pg_ctl.py).
check_PROGRAMS += tests/tools/pgctl_probe
tests_tools_pgctl_probe_SOURCES = tests/tools/pgctl_probe.c
tests_tools_pgctl_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBPQ_CFLAGS)
tests_tools_pgctl_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(LIBPQ_LIBS)

# pgm_probe: drive core/pg_manager.c (tests/integration/test_pg_manager.py).
check_PROGRAMS += tests/tools/pgm_probe
tests_tools_pgm_probe_SOURCES = tests/tools/pgm_probe.c
tests_tools_pgm_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBPQ_CFLAGS)
tests_tools_pgm_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(LIBPQ_LIBS)

# sampler_probe: drive core/sampler.c (tests/integration/test_sampler.py).
check_PROGRAMS += tests/tools/sampler_probe
tests_tools_sampler_probe_SOURCES = tests/tools/sampler_probe.c
tests_tools_sampler_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_sampler_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS)
# core/sampler.c without a server: the timeline rule and the thread's life.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_sampler
tests_unit_test_sampler_SOURCES = tests/unit/test_sampler.c
tests_unit_test_sampler_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_sampler_LDADD = core/libpgkeelcore.la $(CMOCKA_LIBS)
TESTS += tests/unit/test_sampler
endif

if HAVE_CMOCKA
UNIT_CC_FLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS) $(YAML_CFLAGS) \
	-DTEST_SRCDIR='"$(abs_top_srcdir)"' -DTEST_BUILDDIR='"$(abs_top_builddir)"'
UNIT_LIBS = core/libpgkeelcore.la $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_yaml tests/unit/test_config tests/unit/test_log \
	tests/unit/test_loader tests/unit/test_cluster tests/unit/test_pg_data \
	tests/unit/test_pg_rewind
tests_unit_test_yaml_SOURCES = tests/unit/test_yaml.c
tests_unit_test_yaml_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_yaml_LDADD = $(UNIT_LIBS)
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_config_LDADD = $(UNIT_LIBS)
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_log_LDADD = $(UNIT_LIBS)
tests_unit_test_loader_SOURCES = tests/unit/test_loader.c
tests_unit_test_loader_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_loader_LDADD = $(UNIT_LIBS)
tests_unit_test_pg_rewind_SOURCES = tests/unit/test_pg_rewind.c
tests_unit_test_pg_rewind_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_pg_rewind_LDADD = $(UNIT_LIBS)
tests_unit_test_pg_data_SOURCES = tests/unit/test_pg_data.c
tests_unit_test_pg_data_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_pg_data_LDADD = $(UNIT_LIBS)
tests_unit_test_cluster_SOURCES = tests/unit/test_cluster.c
tests_unit_test_cluster_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_cluster_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_yaml tests/unit/test_config tests/unit/test_log \
	tests/unit/test_loader tests/unit/test_cluster tests/unit/test_pg_data \
	tests/unit/test_pg_rewind
# core/pg_conf.c against files Patroni 3.0.2 wrote (tests/data/patroni-3.0.2/pgconf/).
check_PROGRAMS += tests/unit/test_pg_conf
tests_unit_test_pg_conf_SOURCES = tests/unit/test_pg_conf.c
tests_unit_test_pg_conf_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_pg_conf_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_pg_conf

check_PROGRAMS += tests/unit/test_member
tests_unit_test_member_SOURCES = tests/unit/test_member.c
tests_unit_test_member_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_member_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_member

check_PROGRAMS += tests/unit/test_history
tests_unit_test_history_SOURCES = tests/unit/test_history.c
tests_unit_test_history_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_history_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_history
# core/pg_slots.c (desired slots, ignore_slots, plan) and core/pg_callbacks.c.
check_PROGRAMS += tests/unit/test_pg_slots tests/unit/test_pg_callbacks
tests_unit_test_pg_slots_SOURCES = tests/unit/test_pg_slots.c
tests_unit_test_pg_slots_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_pg_slots_LDADD = $(UNIT_LIBS)
tests_unit_test_pg_callbacks_SOURCES = tests/unit/test_pg_callbacks.c
tests_unit_test_pg_callbacks_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_pg_callbacks_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_pg_slots tests/unit/test_pg_callbacks
endif

# slots_probe: drive core/pg_slots.c (tests/integration/test_pg_slots.py).
check_PROGRAMS += tests/tools/slots_probe
tests_tools_slots_probe_SOURCES = tests/tools/slots_probe.c
tests_tools_slots_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBPQ_CFLAGS)
tests_tools_slots_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(LIBPQ_LIBS)

# core/child.c.  child_probe reports what a child inherited, and drives
# pgkeel_child_* for tests/integration/test_child.py.
check_PROGRAMS += tests/tools/child_probe
tests_tools_child_probe_SOURCES = tests/tools/child_probe.c
tests_tools_child_probe_LDADD = core/libpgkeelcore.la
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_child
tests_unit_test_child_SOURCES = tests/unit/test_child.c
tests_unit_test_child_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_child_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_child
endif

# The DCS conformance suite: one program written against the backend ABI,
# run on every backend by tests/integration/dcs_suite.py (pytest drivers
# test_dcs_<backend>.py start the store; see there).
check_PROGRAMS += tests/conformance/dcs_conformance
tests_conformance_dcs_conformance_SOURCES = tests/conformance/dcs_conformance.c \
	tests/conformance/conformance.h tests/conformance/scenarios.c
tests_conformance_dcs_conformance_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_conformance_dcs_conformance_LDADD = core/libpgkeelcore.la -lpthread
EXTRA_DIST += tests/conformance/dcs_conformance.c

# Script tests: the daemon's command line, man-page drift, roff lint, house rules.
CLI_TESTS = tests/cli/validate.sh tests/cli/loader.sh tests/cli/man-keys.sh \
	tests/cli/man-lint.sh tests/cli/banned.sh
TESTS += $(CLI_TESTS)
# In a VPATH build the logs of source-tree scripts need their folder.
tests/cli/.dirstamp:
	@$(MKDIR_P) tests/cli
	@: > $@
$(CLI_TESTS:.sh=.log): tests/cli/.dirstamp
DISTCLEANFILES = tests/cli/.dirstamp
EXTRA_DIST += $(CLI_TESTS) tests/cli/lib.sh tests/plugins/not-a-library.so.txt tests/local.mk
# contrib/pgkeel.service: the unit's settings and systemd-analyze verify.
CLI_TESTS += tests/cli/systemd-verify.sh
tests/cli/systemd-verify.log: tests/cli/.dirstamp

# rest_probe: the REST server with a state set from stdin (tests/integration/test_rest.py).
check_PROGRAMS += tests/tools/rest_probe
tests_tools_rest_probe_SOURCES = tests/tools/rest_probe.c
tests_tools_rest_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_rest_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS)
# core/rest*.c and core/state.c: health-check codes, the status document, request checks.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_rest
tests_unit_test_rest_SOURCES = tests/unit/test_rest.c tests/unit/rest_test.h
tests_unit_test_rest_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_rest_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_rest
# core/rest_docs.c, rest_access.c and the /restart checks: the rest of the REST API.
check_PROGRAMS += tests/unit/test_rest_api
tests_unit_test_rest_api_SOURCES = tests/unit/test_rest_api.c tests/unit/rest_test.h
tests_unit_test_rest_api_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_rest_api_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_rest_api
endif

# peers_probe: drive core/peers.c (tests/integration/test_peers.py).
check_PROGRAMS += tests/tools/peers_probe
tests_tools_peers_probe_SOURCES = tests/tools/peers_probe.c
tests_tools_peers_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(CURL_CFLAGS)
tests_tools_peers_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS) $(CURL_LIBS)
# core/peers.c: Patroni's reading of GET /patroni bodies (tests/data/patroni-3.0.2/rest/).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_peers
tests_unit_test_peers_SOURCES = tests/unit/test_peers.c
tests_unit_test_peers_CFLAGS = $(UNIT_CC_FLAGS) $(CURL_CFLAGS)
tests_unit_test_peers_LDADD = $(UNIT_LIBS) $(CURL_LIBS)
TESTS += tests/unit/test_peers
endif

# core/ha*.c: the HA decision, a table of rows per spec section (tests/unit/ha_rows_*.c).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_ha
tests_unit_test_ha_SOURCES = tests/unit/test_ha.c tests/unit/ha_test.h \
	tests/unit/ha_rows_cycle.c tests/unit/ha_rows_race.c tests/unit/ha_rows_leader.c \
	tests/unit/ha_rows_sync.c
tests_unit_test_ha_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_ha_LDADD = $(UNIT_LIBS)
TESTS += tests/unit/test_ha
endif

# core/watchdog.c against a simulated device: its open/ioctl/write/close/access
# and log calls are redirected to the test (--wrap).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_watchdog
tests_unit_test_watchdog_SOURCES = tests/unit/test_watchdog.c
tests_unit_test_watchdog_CFLAGS = $(UNIT_CC_FLAGS)
tests_unit_test_watchdog_LDADD = $(UNIT_LIBS)
tests_unit_test_watchdog_LDFLAGS = -Wl,--wrap=open,--wrap=ioctl,--wrap=write,--wrap=close \
	-Wl,--wrap=access,--wrap=pgkeel_log
TESTS += tests/unit/test_watchdog
endif

# The fake watchdog device (tests/fakes/fake_watchdog.py): the shim that makes a
# unix socket look like /dev/watchdog, the server that kills an unfed node, and
# wd_probe, which drives core/watchdog.c (tests/integration/test_watchdog.py).
# The shim is not built with the sanitizers: it is preloaded into other programs.
check_LTLIBRARIES += tests/fakes/fake_watchdog_preload.la
tests_fakes_fake_watchdog_preload_la_SOURCES = tests/fakes/fake_watchdog_preload.c \
	tests/fakes/fake_watchdog.h
tests_fakes_fake_watchdog_preload_la_CFLAGS = $(WARN_CFLAGS)
tests_fakes_fake_watchdog_preload_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_fakes_fake_watchdog_preload_la_LIBADD = -ldl
check_PROGRAMS += tests/fakes/fake-watchdog
tests_fakes_fake_watchdog_SOURCES = tests/fakes/fake_watchdog.c tests/fakes/fake_watchdog.h
check_PROGRAMS += tests/tools/wd_probe
tests_tools_wd_probe_SOURCES = tests/tools/wd_probe.c
tests_tools_wd_probe_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_tools_wd_probe_LDADD = core/libpgkeelcore.la $(JSONC_LIBS)

# pgkeelctl's shared parts (ctl/)
check_PROGRAMS += tests/unit/test_ctl
tests_unit_test_ctl_SOURCES = tests/unit/test_ctl.c
tests_unit_test_ctl_CFLAGS = $(UNIT_CC_FLAGS) -I$(top_srcdir)/ctl
tests_unit_test_ctl_LDADD = ctl/libpgkeelctl.la $(UNIT_LIBS) -lm
TESTS += tests/unit/test_ctl

# pgkeelctl(1) documents every command and option (pgkeelctl --list-commands)
CLI_TESTS += tests/cli/ctl-man.sh
tests/cli/ctl-man.log: tests/cli/.dirstamp
