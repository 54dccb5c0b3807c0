/*
 * The REST API's server certificate, handed to each TLS handshake by
 * libmicrohttpd's certificate callback, so that a reload (SIGHUP, POST
 * /reload) puts a renewed certificate in force for the next connections
 * without closing the listener (Patroni recreates its listener when the
 * certificate's serial number changed; the effect for clients is the same).
 *
 * One REST server per process: the store is process-wide.  A replaced
 * certificate stays allocated until pgkeel_rest_tls_clear() (at stop),
 * because sessions that were handed it may still use it.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "rest_server.h"
#include "util.h"

#define MAX_CHAIN 16

struct certset {
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned int n;
	gnutls_privkey_t key;
	char *pem; /* certificate and key text, to tell a change */
	struct certset *older;
};

static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;
static struct certset *current;

static void certset_free(struct certset *cs)
{
	for (unsigned int i = 0; i < cs->n; i++)
		gnutls_pcert_deinit(&cs->pcerts[i]);
	if (cs->key != NULL)
		gnutls_privkey_deinit(cs->key);
	if (cs->pem != NULL)
		memset(cs->pem, 0, strlen(cs->pem));
	free(cs->pem);
	free(cs);
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	int rc = -1;

	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	pthread_mutex_lock(&store_mu);
	if (current != NULL) {
		*pcert = current->pcerts;
		*pcert_length = current->n;
		*pkey = current->key;
		rc = 0;
	}
	pthread_mutex_unlock(&store_mu);
	return rc;
}

void *pgkeel_rest_tls_callback(void)
{
	gnutls_certificate_retrieve_function2 *fn = retrieve;

	return (void *)(uintptr_t)fn;
}

bool pgkeel_rest_tls_load(const char *certfile, const char *keyfile, const char *password,
                          bool *changed, char *err, size_t errlen)
{
	char *cert = pgkeel_rest_read_file(certfile, err, errlen), *key, *pem;
	struct certset *cs;
	gnutls_datum_t d;
	int rc;

	*changed = false;
	if (cert == NULL)
		return false;
	key = pgkeel_rest_read_file(keyfile != NULL ? keyfile : certfile, err, errlen);
	if (key == NULL) {
		free(cert);
		return false;
	}
	pem = pgkeel_asprintf("%s\n%s\n%s", cert, key, password != NULL ? password : "");
	pthread_mutex_lock(&store_mu);
	if (current != NULL && strcmp(current->pem, pem) == 0) {
		pthread_mutex_unlock(&store_mu);
		memset(key, 0, strlen(key));
		memset(pem, 0, strlen(pem));
		free(cert);
		free(key);
		free(pem);
		return true; /* the same files */
	}
	pthread_mutex_unlock(&store_mu);
	cs = pgkeel_xcalloc(1, sizeof(*cs));
	cs->pem = pem;
	cs->n = MAX_CHAIN;
	d.data = (unsigned char *)cert;
	d.size = (unsigned int)strlen(cert);
	rc = gnutls_pcert_list_import_x509_raw(cs->pcerts, &cs->n, &d, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || cs->n == 0) {
		(void)pgkeel_fmt(err, errlen, "%s: %s", certfile,
		                 rc < 0 ? gnutls_strerror(rc) : "no certificate");
		cs->n = 0;
	} else if ((rc = gnutls_privkey_init(&cs->key)) < 0 ||
	           (d.data = (unsigned char *)key, d.size = (unsigned int)strlen(key),
	            rc = gnutls_privkey_import_x509_raw(cs->key, &d, GNUTLS_X509_FMT_PEM, password,
	                                                0)) < 0) {
		(void)pgkeel_fmt(err, errlen, "%s: %s", keyfile != NULL ? keyfile : certfile,
		                 gnutls_strerror(rc));
	}
	memset(key, 0, strlen(key));
	free(cert);
	free(key);
	if (rc < 0 || cs->n == 0) {
		certset_free(cs);
		return false;
	}
	pthread_mutex_lock(&store_mu);
	cs->older = current;
	current = cs;
	pthread_mutex_unlock(&store_mu);
	*changed = true;
	return true;
}

void pgkeel_rest_tls_clear(void)
{
	struct certset *cs;

	pthread_mutex_lock(&store_mu);
	cs = current;
	current = NULL;
	pthread_mutex_unlock(&store_mu);
	while (cs != NULL) {
		struct certset *older = cs->older;

		certset_free(cs);
		cs = older;
	}
}
