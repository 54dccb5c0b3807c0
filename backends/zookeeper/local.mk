# backends/zookeeper: the ZooKeeper DCS backend, dcs_zookeeper.so (the mt C client).
if BUILD_DCS_ZOOKEEPER
pkglib_LTLIBRARIES += backends/zookeeper/dcs_zookeeper.la
backends_zookeeper_dcs_zookeeper_la_SOURCES = \
	backends/zookeeper/zookeeper.c \
	backends/zookeeper/zk_session.c backends/zookeeper/zk_session.h \
	backends/zookeeper/zk_proto.c backends/zookeeper/zk_proto.h \
	backends/common/dcs_common.c backends/common/dcs_common.h
backends_zookeeper_dcs_zookeeper_la_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) -DTHREADED
backends_zookeeper_dcs_zookeeper_la_LIBADD = $(ZOOKEEPER_LIBS) $(JSONC_LIBS) -lpthread
backends_zookeeper_dcs_zookeeper_la_LDFLAGS = $(DCS_MODULE_FLAGS)
endif

# its integration tests (real ZooKeeper 3.8 started by the tests)
EXTRA_DIST += tests/integration/zk_cluster.py tests/integration/test_dcs_zookeeper.py \
	tests/integration/test_zookeeper_patroni_compat.py tests/integration/test_ha_zookeeper.py
