/* cli-init.c — `sealmail init DIR`: a ready-to-run embedded installation.
 *
 * Trust boundary: creates key material (TLS key, log signing key, directory
 * key) readable by the invoking user only. Refuses to touch an existing
 * installation. */
#include "cli/cli.h"

#include "crypto/seal.h"
#include "legal/legal.h"
#include "net/net-cert.h"
#include "tlog/tlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char cli_init_conf[] =
    "# sealmail configuration, written by `sealmail init`.\n"
    "# Relative paths are relative to this file's folder. Every key and its\n"
    "# default is described in docs/config.md.\n"
    "\n"
    "[server]\n"
    "hostname = %s\n"
    "domains = %s\n"
    "# serve_regions = eu-ie, us-east   (default: every region below)\n"
    "\n"
    "[tls]\n"
    "cert = tls/cert.pem\n"
    "key = tls/key.pem\n"
    "\n"
    "[smtp]\n"
    "listen = 127.0.0.1:2525\n"
    "max_message_size = 50M\n"
    "\n"
    "[imap]\n"
    "listen = 127.0.0.1:1143\n"
    "listen_tls = 127.0.0.1:1993\n"
    "\n"
    "[store]\n"
    "# record_cipher = auto   (AES-256-GCM where the CPU has AES-NI, else\n"
    "#   XChaCha20-Poly1305; use xchacha20poly1305 when machines without\n"
    "#   AES-NI also serve these stores: docs/format.md)\n"
    "\n"
    "[log]\n"
    "dir = tlog\n"
    "key = keys/log.key\n"
    "origin = %s/sealmail-log\n"
    "\n"
    "# Each region is a jurisdiction with a store of its own. An account's mail\n"
    "# is only ever written to its home region's store.\n"
    "[region eu-ie]\n"
    "jurisdiction = IE\n"
    "store = fs:regions/eu-ie\n"
    "\n"
    "[region us-east]\n"
    "jurisdiction = US\n"
    "store = fs:regions/us-east\n";

static int cli_init_mkdir(const char *base, const char *rel)
{
	char *path = fs_path_join(base, rel);
	int ret = fs_mkdir_p(path, 0700);

	if (ret < 0)
		cli_error("cannot create %s: %s", path, strerror(errno));
	free(path);
	return ret;
}

int cli_init_main(struct cli *cli, int argc, char **argv)
{
	const char *domain = cli_take_option(&argc, argv, "--domain");
	const char *hostname = cli_take_option(&argc, argv, "--hostname");
	static const char *const dirs[] = {"keys", "tls", "tlog", "regions/eu-ie",
					   "regions/us-east"};
	char host_default[300], *conf = NULL, *cert = NULL, *key = NULL, *logkey = NULL;
	char *policy = NULL;
	const char *dir, *error = NULL;
	struct buf text;
	struct stat st;
	int ret = CLI_EX_CANTCREAT;

	(void)cli;
	buf_init(&text);
	if (argc != 2 || argv[1][0] == '-') {
		cli_error("usage: sealmail init DIR [--domain D] [--hostname H]");
		return CLI_EX_USAGE;
	}
	dir = argv[1];
	if (domain == NULL)
		domain = "localhost";
	if (hostname == NULL) {
		if (strcmp(domain, "localhost") == 0)
			snprintf(host_default, sizeof(host_default), "localhost");
		else
			snprintf(host_default, sizeof(host_default), "mail.%s", domain);
		hostname = host_default;
	}
	if (strpbrk(domain, " \t\r\n,") != NULL || strpbrk(hostname, " \t\r\n,") != NULL) {
		cli_error("--domain and --hostname take a single name");
		return CLI_EX_USAGE;
	}
	if (seal_init() < 0) {
		cli_error("cannot initialise libsodium");
		return CLI_EX_SOFTWARE;
	}
	conf = fs_path_join(dir, "sealmail.conf");
	if (stat(conf, &st) == 0) {
		cli_error("%s exists already; refusing to overwrite an installation", conf);
		goto out;
	}
	if (fs_mkdir_p(dir, 0700) < 0) {
		cli_error("cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < N_ELEMENTS(dirs); i++)
		if (cli_init_mkdir(dir, dirs[i]) < 0)
			goto out;
	cert = fs_path_join(dir, "tls/cert.pem");
	key = fs_path_join(dir, "tls/key.pem");
	if (net_cert_selfsigned(cert, key, hostname, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	logkey = fs_path_join(dir, "keys/log.key");
	if (tlog_keygen(logkey, &error) < 0) {
		cli_error("log key: %s", error);
		goto out;
	}
	policy = fs_path_join(dir, "policy.conf");
	if (legal_policy_write_default(policy, &error) < 0) {
		cli_error("legal policy: %s", error);
		goto out;
	}
	if (buf_printf(&text, cli_init_conf, hostname, domain, hostname) < 0 ||
	    fs_write_atomic(conf, text.data, text.len, 0600) < 0) {
		cli_error("cannot write %s: %s", conf, strerror(errno));
		goto out;
	}
	printf("Initialised %s\n"
	       "  configuration   %s\n"
	       "  regions         eu-ie (IE), us-east (US)\n"
	       "  TLS             self-signed certificate for %s\n"
	       "Next: sealmail -c %s user add alice@%s --region eu-ie\n",
	       dir, conf, hostname, conf, domain);
	ret = CLI_EX_OK;
out:
	buf_free(&text);
	free(conf);
	free(cert);
	free(key);
	free(logkey);
	free(policy);
	return ret;
}
