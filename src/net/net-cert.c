/* net-cert.c — a self-signed certificate for the embedded default.
 *
 * Trust boundary: writes a new private key (mode 0600) and certificate for
 * loopback use and first runs; production installs point [tls] at a real
 * certificate. */
#include "net/net-cert.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int net_cert_add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ret;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ret = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return ret;
}

int net_cert_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
			const char **error_r)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	FILE *f = NULL;
	char san[512];
	int ret = -1;

	pkey = EVP_EC_gen("P-256");
	cert = X509_new();
	if (pkey == NULL || cert == NULL) {
		*error_r = "cannot generate a TLS key";
		goto out;
	}
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3650L * 24 * 3600);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1,
				   -1, 0);
	X509_set_issuer_name(cert, name);
	snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
	if (net_cert_add_ext(cert, NID_subject_alt_name, san) < 0 ||
	    net_cert_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    X509_sign(cert, pkey, EVP_sha256()) == 0) {
		*error_r = "cannot sign the TLS certificate";
		goto out;
	}
	f = fopen(key_path, "wx");
	if (f == NULL) {
		*error_r = "cannot create the TLS key file (does it exist already?)";
		goto out;
	}
	chmod(key_path, 0600);
	if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0) {
		f = NULL;
		*error_r = "cannot write the TLS key";
		goto out;
	}
	f = fopen(cert_path, "wx");
	if (f == NULL) {
		*error_r = "cannot create the TLS certificate file";
		goto out;
	}
	if (PEM_write_X509(f, cert) != 1 || fclose(f) != 0) {
		f = NULL;
		*error_r = "cannot write the TLS certificate";
		goto out;
	}
	f = NULL;
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return ret;
}
