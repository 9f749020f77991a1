/* test-config.c — sealmail.conf parsing: defaults, regions, and errors that
 * name the file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/config.h"

static const char good[] = "# comment\n"
			   "[server]\n"
			   "hostname = mx.example.org\n"
			   "domains = example.org, example.net\n"
			   "\n"
			   "[smtp]\n"
			   "listen = [::1]:25\n"
			   "max_message_size = 10M\n"
			   "timeout_command = 2m\n"
			   "[region eu-ie]\n"
			   "jurisdiction = ie\n"
			   "store = fs:regions/eu\n"
			   "[region us-east]\n"
			   "jurisdiction = US\n"
			   "store = fs:/abs/us\n";

static void test_config_good(void **state)
{
	struct config *cfg = NULL;
	char *error = NULL;

	(void)state;
	assert_int_equal(
	    config_parse("/etc/sealmail/sealmail.conf", good, strlen(good), &cfg, &error), 0);
	assert_string_equal(cfg->hostname, "mx.example.org");
	assert_string_equal(cfg->domains[0], "example.org");
	assert_string_equal(cfg->domains[1], "example.net");
	assert_null(cfg->domains[2]);
	assert_string_equal(cfg->smtp_listen, "[::1]:25");
	assert_int_equal(cfg->smtp_max_message_size, 10 * 1024 * 1024);
	assert_int_equal(cfg->smtp_timeout_command, 120);
	/* defaults */
	assert_string_equal(cfg->imap_listen, "127.0.0.1:1143");
	assert_int_equal(cfg->smtp_max_recipients, 100);
	assert_string_equal(cfg->tls_cert, "/etc/sealmail/tls/cert.pem");
	assert_string_equal(cfg->tlog_origin, "mx.example.org/sealmail-log");
	/* regions: jurisdiction upper-cased, relative store paths resolved */
	assert_int_equal(cfg->region_count, 2);
	assert_string_equal(cfg->regions[0].jurisdiction, "IE");
	assert_string_equal(cfg->regions[0].store, "fs:/etc/sealmail/regions/eu");
	assert_string_equal(cfg->regions[1].store, "fs:/abs/us");
	assert_non_null(config_region_find(cfg, "us-east"));
	assert_null(config_region_find(cfg, "mars"));
	config_free(&cfg);
	assert_null(cfg);
}

static const struct {
	const char *text;
	const char *error;
} bad[] = {
    {"[server]\nhostname = a\n[smtp]\nmax_message_size = lots\n[region r]\n",
     "/x/s.conf:4: key 'max_message_size': expected a size"},
    {"[server]\nnope = 1\n", "/x/s.conf:2: key 'nope': unknown key in [server]"},
    {"hostname = a\n", "/x/s.conf:1: key 'hostname': key outside of any section"},
    {"[server]\nhostname = a\nhostname = b\n", "/x/s.conf:3: key 'hostname': set twice"},
    {"[wat]\n", "/x/s.conf:1: unknown section [wat]"},
    {"[server\n", "/x/s.conf:1: malformed section header"},
    {"[server]\njust words\n", "/x/s.conf:2: expected 'key = value'"},
    {"[region eu]\njurisdiction = IRL\n", "/x/s.conf:2: key 'jurisdiction': expected an ISO"},
    {"[region eu]\njurisdiction = IE\nstore = s3:bucket\n",
     "/x/s.conf:3: key 'store': unknown store type"},
    {"[region eu]\ncolour = red\n", "/x/s.conf:2: key 'colour': unknown key in [region eu]"},
    {"[region eu]\njurisdiction = IE\nstore = fs:a\n[region eu]\n",
     "/x/s.conf:4: region 'eu' defined twice"},
    {"[region e/u]\n", "/x/s.conf:1: region name 'e/u' may only hold"},
    {"[imap]\nlisten = nowhere\n", "/x/s.conf:2: key 'listen': expected HOST:PORT"},
    {"[imap]\nlisten = 127.0.0.1:99999\n", "/x/s.conf:2: key 'listen': expected HOST:PORT"},
    {"[smtp]\nmax_recipients = 5k\n", "/x/s.conf:2: key 'max_recipients': expected a number"},
    {"[smtp]\ntimeout_data = soon\n", "/x/s.conf:2: key 'timeout_data': expected a duration"},
    {"[server]\n", "/x/s.conf:0: no [region NAME] section"},
    {"[region eu]\nstore = fs:a\n", "/x/s.conf:0: key 'jurisdiction': missing in [region eu]"},
    {"[server]\nserve_regions = mars\n[region eu]\njurisdiction = IE\nstore = fs:a\n",
     "/x/s.conf:0: key 'serve_regions': no [region mars]"},
};

static void test_config_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *cfg = NULL;
		char *error = NULL;

		assert_int_equal(
		    config_parse("/x/s.conf", bad[i].text, strlen(bad[i].text), &cfg, &error), -1);
		assert_null(cfg);
		assert_non_null(error);
		if (strncmp(error, bad[i].error, strlen(bad[i].error)) != 0)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, error,
				 bad[i].error);
		free(error);
	}
}

static void test_config_nul_byte(void **state)
{
	static const char text[] = "[server]\nhostname = a\0b\n";
	struct config *cfg = NULL;
	char *error = NULL;

	(void)state;
	assert_int_equal(config_parse("c", text, sizeof(text) - 1, &cfg, &error), -1);
	assert_non_null(strstr(error, "NUL"));
	free(error);
}

/* An error message built from an earlier one (both in str_tfmt's buffer). */
static void test_str_tfmt_of_itself(void **state)
{
	const char *inner = str_tfmt("%s", "not a database");
	const char *outer = str_tfmt("region %s: %s", "eu-ie", inner);

	assert_string_equal(outer, "region eu-ie: not a database");
}

static void test_config_missing_file(void **state)
{
	struct config *cfg = NULL;
	char *error = NULL;

	(void)state;
	assert_int_equal(config_load("/nonexistent/sealmail.conf", &cfg, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/sealmail.conf"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_good),         cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_nul_byte),     cmocka_unit_test(test_str_tfmt_of_itself),
	    cmocka_unit_test(test_config_missing_file),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
