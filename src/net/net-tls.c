/* net-tls.c — server TLS contexts for STARTTLS and implicit TLS.
 *
 * Trust boundary: the certificate and key are operator files; the peers that
 * handshake with the context are untrusted. The context allows TLS 1.2 and
 * 1.3 only, forward-secret AEAD cipher suites only, and no renegotiation.
 * A reload builds a whole new context and swaps it in only if it is valid;
 * OpenSSL reference-counts contexts, so open connections keep theirs. */
#include "net/net-private.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* TLS 1.2 suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305. */
#define NET_TLS12_CIPHERS                                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct net_tls {
	char *cert_path;
	char *key_path;
	SSL_CTX *ctx;
};

static const char *net_tls_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[160];

	ERR_clear_error();
	if (e == 0)
		return str_tfmt("%s", what);
	ERR_error_string_n(e, reason, sizeof(reason));
	return str_tfmt("%s: %s", what, reason);
}

static SSL_CTX *net_tls_ctx_new(const char *cert_path, const char *key_path, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		*error_r = net_tls_error("cannot create a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, NET_TLS12_CIPHERS) != 1) {
		*error_r = net_tls_error("cannot restrict TLS versions or ciphers");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = net_tls_error(str_tfmt("cannot load certificate %s", cert_path));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		*error_r = net_tls_error(str_tfmt("cannot load key %s", key_path));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = net_tls_error("the key does not match the certificate");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int net_tls_create(const char *cert_path, const char *key_path, struct net_tls **tls_r,
		   const char **error_r)
{
	struct net_tls *tls;
	SSL_CTX *ctx = net_tls_ctx_new(cert_path, key_path, error_r);

	if (ctx == NULL)
		return -1;
	tls = xcalloc(1, sizeof(*tls));
	tls->cert_path = xstrdup(cert_path);
	tls->key_path = xstrdup(key_path);
	tls->ctx = ctx;
	*tls_r = tls;
	return 0;
}

int net_tls_reload(struct net_tls *tls, const char **error_r)
{
	SSL_CTX *ctx = net_tls_ctx_new(tls->cert_path, tls->key_path, error_r);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(tls->ctx);
	tls->ctx = ctx;
	return 0;
}

void net_tls_free(struct net_tls **tlsp)
{
	struct net_tls *tls = *tlsp;

	if (tls == NULL)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls->cert_path);
	free(tls->key_path);
	free(tls);
	*tlsp = NULL;
}

SSL *net_tls_ssl_new(struct net_tls *tls)
{
	SSL *ssl = SSL_new(tls->ctx);

	if (ssl == NULL)
		ERR_clear_error();
	return ssl;
}
