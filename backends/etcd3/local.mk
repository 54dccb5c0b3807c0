# backends/etcd3: the etcd v3 DCS backend, dcs_etcd3.so.
if BUILD_DCS_ETCD3
pkglib_LTLIBRARIES += backends/etcd3/dcs_etcd3.la
backends_etcd3_dcs_etcd3_la_SOURCES = \
	backends/etcd3/etcd3.c backends/etcd3/etcd3.h \
	backends/etcd3/etcd3_http.c \
	backends/etcd3/etcd3_watch.c \
	backends/etcd3/etcd3_proto.c backends/etcd3/etcd3_proto.h \
	backends/common/dcs_common.c backends/common/dcs_common.h
backends_etcd3_dcs_etcd3_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JSONC_CFLAGS) $(CRYPTO_CFLAGS)
backends_etcd3_dcs_etcd3_la_LIBADD = $(CURL_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS) -lresolv -lpthread
backends_etcd3_dcs_etcd3_la_LDFLAGS = $(DCS_MODULE_FLAGS)
endif
