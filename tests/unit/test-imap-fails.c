/* test-imap-fails.c — the failed-login tables of imap-server.c: IPv6
 * clients count by /64, IPv4 by address, and failures from many addresses
 * never evict an account's entry. (The same seen by a client, over IPv4
 * loopback, is in tests/integration/test_abuse.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap-private.h"

static const char conf[] = "[imap]\n"
			   "auth_fail_lockout = 3\n"
			   "auth_fail_window = 5m\n"
			   "[region eu-ie]\n"
			   "jurisdiction = IE\n"
			   "store = fs:regions/eu\n";

struct fixture {
	struct config *cfg;
	struct event_base *base;
	struct imap_server *server;
	struct region region;
	struct account acct;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *error = NULL;

	assert_non_null(f);
	assert_int_equal(config_parse("test.conf", conf, strlen(conf), &f->cfg, &error), 0);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->server = imap_server_create(f->base, f->cfg, NULL, NULL);
	f->region.name = "eu-ie";
	f->acct.region = &f->region;
	f->acct.st.id = 42;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	imap_server_free(&f->server);
	event_base_free(f->base);
	config_free(&f->cfg);
	free(f);
	return 0;
}

static void fail_n(struct imap_server *server, const char *peer, const struct account *acct, int n)
{
	for (int i = 0; i < n; i++)
		imap_fail_record(server, peer, acct);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = NULL;
	char *error = NULL;
	const char *minimal = "[region a]\njurisdiction = IE\nstore = fs:a\n";

	(void)f;
	assert_int_equal(config_parse("m.conf", minimal, strlen(minimal), &cfg, &error), 0);
	assert_int_equal(cfg->imap_max_connections_per_ip, 50);
	assert_int_equal(cfg->smtp_max_commands_per_second, 100);
	config_free(&cfg);
}

static void test_ipv6_by_64(void **state)
{
	struct fixture *f = *state;

	fail_n(f->server, "2001:db8:1:2::10", NULL, 2);
	fail_n(f->server, "2001:db8:1:2:ffff:0:0:1", NULL, 1);
	/* Three failures from one /64: every address in it is locked. */
	assert_true(imap_fail_locked(f->server, "2001:db8:1:2::9", NULL));
	assert_true(imap_fail_locked(f->server, "2001:DB8:1:2:abcd::", NULL));
	/* The neighbouring /64 is not. */
	assert_false(imap_fail_locked(f->server, "2001:db8:1:3::10", NULL));
	/* IPv4, and IPv4-mapped IPv6, by address. */
	fail_n(f->server, "192.0.2.1", NULL, 3);
	assert_true(imap_fail_locked(f->server, "192.0.2.1", NULL));
	assert_false(imap_fail_locked(f->server, "192.0.2.2", NULL));
	fail_n(f->server, "::ffff:198.51.100.1", NULL, 3);
	assert_true(imap_fail_locked(f->server, "::ffff:198.51.100.1", NULL));
	assert_false(imap_fail_locked(f->server, "::ffff:198.51.100.2", NULL));
}

static void test_account_survives_address_flood(void **state)
{
	struct fixture *f = *state;
	char peer[64];

	fail_n(f->server, "203.0.113.1", &f->acct, 3);
	assert_true(imap_fail_locked(f->server, "203.0.113.99", &f->acct));
	/* Far more fresh addresses than the table holds, v4 and v6 alike. */
	for (int i = 0; i < 3000; i++) {
		if (i % 2)
			snprintf(peer, sizeof(peer), "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
				 i & 255);
		else
			snprintf(peer, sizeof(peer), "2001:db8:%x::1", i);
		imap_fail_record(f->server, peer, NULL);
	}
	assert_true(imap_fail_locked(f->server, "203.0.113.99", &f->acct));
	/* A successful login clears it. */
	imap_fail_clear(f->server, &f->acct);
	assert_false(imap_fail_locked(f->server, "203.0.113.99", &f->acct));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6_by_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_account_survives_address_flood, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
