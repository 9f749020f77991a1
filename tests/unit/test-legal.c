/* test-legal.c — the legal policy: parsing (errors name the file and line),
 * and the decision table (same jurisdiction, foreign with its channel,
 * partners, instruments by scope, preservation); plus dates, request ids
 * and account commitments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/seal.h"
#include "legal/legal.h"
#include "lib/config.h"
#include "region/region.h"
#include "tlog/tlog.h"

static const char policy_text[] = "# test policy\n"
				  "[policy]\n"
				  "content = warrant, court-order\n"
				  "non-content = warrant court-order subpoena\n"
				  "preservation = yes\n"
				  "channel = mutual legal assistance\n"
				  "\n"
				  "[region eu-ie]\n"
				  "partners = gb, CA\n"
				  "channel = MLAT (Department of Justice)\n"
				  "[region us-east]\n";

static const char strict_text[] = "[policy]\n"
				  "content =\n"
				  "non-content = court-order\n"
				  "preservation = no\n";

enum { P_TEST, P_STRICT, P_EMPTY };

static const struct {
	int policy;
	const char *region, *data, *issuer;
	enum legal_instrument instrument;
	enum legal_scope scope;
	enum legal_decision decision;
	const char *reason;
	const char *channel;
} decisions[] = {
    /* the region's own jurisdiction */
    {P_TEST, "eu-ie", "IE", "IE", LEGAL_COURT_ORDER, LEGAL_SCOPE_CONTENT, LEGAL_ACCEPTED,
     "same-jurisdiction", ""},
    {P_TEST, "us-east", "US", "US", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_ACCEPTED,
     "same-jurisdiction", ""},
    /* foreign: refused and pointed to the channel (region's, else the default) */
    {P_TEST, "eu-ie", "IE", "US", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "IE via MLAT (Department of Justice)"},
    {P_TEST, "us-east", "US", "IE", LEGAL_COURT_ORDER, LEGAL_SCOPE_NON_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "US via mutual legal assistance"},
    {P_EMPTY, "eu-ie", "IE", "US", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "IE via mutual legal assistance"},
    /* a region the policy does not list follows the default rules */
    {P_TEST, "ap-sg", "SG", "US", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "SG via mutual legal assistance"},
    {P_TEST, "ap-sg", "SG", "SG", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_ACCEPTED,
     "same-jurisdiction", ""},
    /* partners of one region only */
    {P_TEST, "eu-ie", "IE", "GB", LEGAL_COURT_ORDER, LEGAL_SCOPE_CONTENT, LEGAL_ACCEPTED, "partner",
     ""},
    {P_TEST, "eu-ie", "IE", "CA", LEGAL_WARRANT, LEGAL_SCOPE_NON_CONTENT, LEGAL_ACCEPTED, "partner",
     ""},
    {P_TEST, "us-east", "US", "GB", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "US via mutual legal assistance"},
    /* content needs a warrant or a court order */
    {P_TEST, "eu-ie", "IE", "IE", LEGAL_SUBPOENA, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED, "instrument",
     ""},
    {P_TEST, "eu-ie", "IE", "GB", LEGAL_SUBPOENA, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED, "instrument",
     ""},
    {P_TEST, "eu-ie", "IE", "IE", LEGAL_SUBPOENA, LEGAL_SCOPE_NON_CONTENT, LEGAL_ACCEPTED,
     "same-jurisdiction", ""},
    {P_EMPTY, "eu-ie", "IE", "IE", LEGAL_SUBPOENA, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED, "instrument",
     ""},
    /* jurisdiction first: a foreign subpoena is redirected, not just refused */
    {P_TEST, "eu-ie", "IE", "US", LEGAL_SUBPOENA, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "IE via MLAT (Department of Justice)"},
    /* preservation discloses nothing: accepted if the issuer may ask at all */
    {P_TEST, "eu-ie", "IE", "IE", LEGAL_PRESERVATION, LEGAL_SCOPE_CONTENT, LEGAL_ACCEPTED,
     "preservation", ""},
    {P_TEST, "eu-ie", "IE", "GB", LEGAL_PRESERVATION, LEGAL_SCOPE_NON_CONTENT, LEGAL_ACCEPTED,
     "preservation", ""},
    {P_TEST, "eu-ie", "IE", "US", LEGAL_PRESERVATION, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "foreign-jurisdiction", "IE via MLAT (Department of Justice)"},
    {P_STRICT, "eu-ie", "IE", "IE", LEGAL_PRESERVATION, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "preservation-not-honoured", ""},
    /* a strict policy: no content at all, non-content by court order only */
    {P_STRICT, "eu-ie", "IE", "IE", LEGAL_COURT_ORDER, LEGAL_SCOPE_CONTENT, LEGAL_REFUSED,
     "instrument", ""},
    {P_STRICT, "eu-ie", "IE", "IE", LEGAL_WARRANT, LEGAL_SCOPE_NON_CONTENT, LEGAL_REFUSED,
     "instrument", ""},
    {P_STRICT, "eu-ie", "IE", "IE", LEGAL_COURT_ORDER, LEGAL_SCOPE_NON_CONTENT, LEGAL_ACCEPTED,
     "same-jurisdiction", ""},
};

static struct legal_policy *parse(const char *text)
{
	struct legal_policy *p = NULL;
	const char *error = NULL;

	if (legal_policy_parse("/x/policy.conf", text, strlen(text), &p, &error) < 0)
		fail_msg("policy did not parse: %s", error);
	return p;
}

static void test_decisions(void **state)
{
	struct legal_policy *policies[] = {parse(policy_text), parse(strict_text), parse("")};

	(void)state;
	for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++) {
		struct legal_verdict v;

		legal_policy_decide(policies[decisions[i].policy], decisions[i].region,
				    decisions[i].data, decisions[i].issuer, decisions[i].instrument,
				    decisions[i].scope, &v);
		if (v.decision != decisions[i].decision ||
		    strcmp(v.reason, decisions[i].reason) != 0 ||
		    strcmp(v.channel, decisions[i].channel) != 0)
			fail_msg("row %zu: got %s/%s/'%s' (%s)", i, legal_decision_name(v.decision),
				 v.reason, v.channel, v.explanation);
		assert_true(v.explanation[0] != '\0');
	}
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		legal_policy_free(&policies[i]);
	assert_null(policies[0]);
}

static const struct {
	const char *text;
	const char *error;
} bad[] = {
    {"[policy]\ncontent = warrant, letter\n",
     "/x/policy.conf:2: key 'content': unknown instrument 'letter'"},
    {"[policy]\nnon-content = preservation\n",
     "/x/policy.conf:2: key 'non-content': preservation discloses nothing"},
    {"[policy]\nfoo = 1\n", "/x/policy.conf:2: unknown key 'foo' in [policy]"},
    {"content = warrant\n", "/x/policy.conf:1: key 'content' outside of any section"},
    {"# c\n[policy]\nchannel = a\n\nchannel = b\n", "/x/policy.conf:5: key 'channel' set twice"},
    {"[policy]\ncontent = warrant\n[policy]\ncontent = warrant\n",
     "/x/policy.conf:4: key 'content' set twice"},
    {"[wat]\n", "/x/policy.conf:1: unknown section [wat]"},
    {"[region eu-ie\n", "/x/policy.conf:1: malformed section header"},
    {"[region]\n", "/x/policy.conf:1: unknown section [region]"},
    {"[region eu-ie]\npartners = GB, USA\n",
     "/x/policy.conf:2: key 'partners': expected ISO 3166-1 alpha-2 codes, got 'USA'"},
    {"[region eu-ie]\n[region us]\n[region eu-ie]\n",
     "/x/policy.conf:3: region 'eu-ie' defined twice"},
    {"[region e/u]\n", "/x/policy.conf:1: region name 'e/u' may only hold"},
    {"[policy]\njust words\n", "/x/policy.conf:2: expected 'key = value'"},
    {"[policy]\n= value\n", "/x/policy.conf:2: expected 'key = value'"},
    {"[policy]\npreservation = maybe\n",
     "/x/policy.conf:2: key 'preservation': expected yes or no, got 'maybe'"},
    {"[region eu-ie]\ncolour = red\n", "/x/policy.conf:2: unknown key 'colour' in [region eu-ie]"},
    {"[region eu-ie]\npartners = GB\ncontent = warrant\n",
     "/x/policy.conf:3: unknown key 'content' in [region eu-ie]"},
    {"[policy]\nchannel =\n", "/x/policy.conf:2: key 'channel': expected text"},
};

static void test_bad_policies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct legal_policy *p = NULL;
		const char *error = NULL;

		if (legal_policy_parse("/x/policy.conf", bad[i].text, strlen(bad[i].text), &p,
				       &error) == 0)
			fail_msg("bad policy %zu parsed", i);
		assert_null(p);
		if (strncmp(error, bad[i].error, strlen(bad[i].error)) != 0)
			fail_msg("bad policy %zu: got '%s', want '%s'", i, error, bad[i].error);
	}
}

static void test_policy_check(void **state)
{
	static const char conf[] = "[region eu-ie]\njurisdiction = IE\nstore = fs:/r/ie\n";
	struct legal_policy *ok = parse("[region eu-ie]\npartners = GB\n");
	struct legal_policy *mars = parse("[policy]\n\n[region eu-ie]\n[region mars]\n");
	struct config *cfg = NULL;
	const char *error = NULL;
	char *cerr = NULL;

	(void)state;
	assert_int_equal(config_parse("/x/sealmail.conf", conf, strlen(conf), &cfg, &cerr), 0);
	assert_int_equal(legal_policy_check(ok, cfg, &error), 0);
	assert_int_equal(legal_policy_check(mars, cfg, &error), -1);
	assert_string_equal(error, "/x/policy.conf:4: region 'mars' is not in the configuration");
	legal_policy_free(&ok);
	legal_policy_free(&mars);
	config_free(&cfg);
}

static void test_default_policy(void **state)
{
	char dir[] = "/tmp/test-legal-XXXXXX", path[64];
	struct legal_policy *p = NULL;
	struct legal_verdict v;
	const char *error = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policy.conf", dir);
	assert_int_equal(legal_policy_write_default(path, &error), 0);
	assert_int_equal(legal_policy_write_default(path, &error), -1);
	assert_int_equal(legal_policy_load(path, &p, &error), 0);
	legal_policy_decide(p, "eu-ie", "IE", "US", LEGAL_WARRANT, LEGAL_SCOPE_CONTENT, &v);
	assert_int_equal(v.decision, LEGAL_REFUSED);
	assert_string_equal(v.channel, "IE via mutual legal assistance");
	legal_policy_decide(p, "eu-ie", "IE", "IE", LEGAL_COURT_ORDER, LEGAL_SCOPE_CONTENT, &v);
	assert_int_equal(v.decision, LEGAL_ACCEPTED);
	legal_policy_free(&p);
	unlink(path);
	rmdir(dir);
}

static const struct {
	const char *text;
	int end_of_day;
	int64_t want; /* -1: rejected */
} dates[] = {
    {"2030-06-30", 1, 1909094400},
    {"2030-07-01", 0, 1909094400},
    {"2028-02-29T12:30:00Z", 1, 1835440200},
    {"1970-01-01", 0, 0},
    {"2030-02-29", 0, -1},
    {"2030-6-30", 0, -1},
    {"2030-06-31", 0, -1},
    {"2030-06-30T24:00:00Z", 0, -1},
    {"2030-06-30T12:00:00", 0, -1},
    {"30-06-2030", 0, -1},
    {"", 0, -1},
};

static void test_dates(void **state)
{
	char out[LEGAL_TIME_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		int64_t t = -1;
		int r = legal_date_parse(dates[i].text, dates[i].end_of_day, &t);

		if (dates[i].want < 0 ? r == 0 : (r != 0 || t != dates[i].want))
			fail_msg("date %zu '%s': r=%d t=%lld", i, dates[i].text, r, (long long)t);
	}
	legal_time_format(1909094400, out);
	assert_string_equal(out, "2030-07-01T00:00:00Z");
}

static void test_ids_and_names(void **state)
{
	static const char *const bad_ids[] = {"LR-", "LR-1x", "17", "lr-17", "LR--1", ""};
	enum legal_instrument inst;
	enum legal_scope scope;
	char id[LEGAL_ID_MAX];
	uint64_t index = 0;

	(void)state;
	legal_id_format(17, id);
	assert_string_equal(id, "LR-17");
	assert_int_equal(legal_id_parse(id, &index), 0);
	assert_int_equal(index, 17);
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		assert_int_equal(legal_id_parse(bad_ids[i], &index), -1);
	assert_int_equal(legal_instrument_parse("court-order", &inst), 0);
	assert_int_equal(inst, LEGAL_COURT_ORDER);
	assert_int_equal(legal_instrument_parse("letter", &inst), -1);
	assert_int_equal(legal_scope_parse("non-content", &scope), 0);
	assert_int_equal(scope, LEGAL_SCOPE_NON_CONTENT);
	assert_int_equal(legal_decision_parse("no-data"), LEGAL_NO_DATA);
	assert_int_equal(legal_decision_parse("maybe"), LEGAL_UNDECIDED);
}

static void test_commitment(void **state)
{
	char out[LEGAL_HASH_HEX_MAX];

	(void)state;
	/* hashlib.sha256(b"sealmail-legal-account\n" + TAG + b"\n" + NONCE) */
	legal_commitment("00112233445566778899aabbccddeeff", "0f0e0d0c0b0a09080706050403020100",
			 out);
	assert_string_equal(out,
			    "ce9b3351bc4ed216018d6f9e9f2e76c3db94a9da531e9a8bb55be129bd97ad7c");
}

/* The hash that names a policy in the log: what decides, not how the file
 * is written. */
static void test_policy_hash(void **state)
{
	static const struct {
		const char *text;
		int same; /* hashes like the first */
	} cases[] = {
	    {"[policy]\ncontent = warrant, court-order\n[region eu-ie]\n", 1},
	    {"# a comment\n[policy]\ncontent = court-order warrant\n\n[region eu-ie]\n", 1},
	    {"[policy]\ncontent = warrant\n[region eu-ie]\n", 0},
	    {"[policy]\ncontent = warrant, court-order\n[region eu-ie]\npartners = GB\n", 0},
	    {"[policy]\ncontent = warrant, court-order\n[region eu-ie]\nchannel = MLAT\n", 0},
	    {"[policy]\ncontent = warrant, court-order\npreservation = no\n[region eu-ie]\n", 0},
	    {"[policy]\ncontent = warrant, court-order\n", 0},
	};
	char first[LEGAL_HASH_HEX_MAX], hash[LEGAL_HASH_HEX_MAX];
	struct buf summary;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct legal_policy *p = parse(cases[i].text);

		legal_policy_hash(p, i == 0 ? first : hash);
		if (i > 0 && (strcmp(first, hash) == 0) != cases[i].same)
			fail_msg("policy %zu: hash %s the first's", i,
				 cases[i].same ? "differs from" : "equals");
		if (i == 3) {
			buf_init(&summary);
			legal_policy_summary(p, &summary);
			assert_string_equal(buf_cstr(&summary),
					    "content=warrant,court-order; "
					    "non-content=warrant,subpoena,court-order; "
					    "preservation=yes; channel=mutual legal assistance; "
					    "region eu-ie: partners=GB");
			buf_free(&summary);
		}
		legal_policy_free(&p);
	}
}

/* Account changes are logged or do not happen: without a log set on the
 * router, creating, re-keying and deleting fail and change nothing. */
static void test_account_events_need_the_log(void **state)
{
	static const char conf[] = "[region eu-ie]\njurisdiction = IE\nstore = fs:eu\n";
	char dir[] = "/tmp/sealmail-test-legal-XXXXXX", *path, *key, *logdir;
	char code[64];
	struct config *cfg = NULL;
	struct router *router = NULL;
	struct account *acct = NULL;
	struct tlog *log = NULL;
	struct seal_keypair *kp = NULL;
	const char *error = NULL;
	char *cerr = NULL;

	(void)state;
	setenv("SEALMAIL_ARGON2_OPS", "1", 1);
	setenv("SEALMAIL_ARGON2_MEM", "8192", 1);
	assert_non_null(mkdtemp(dir));
	path = fs_path_join(dir, "sealmail.conf");
	key = fs_path_join(dir, "log.key");
	logdir = fs_path_join(dir, "tlog");
	assert_int_equal(config_parse(path, conf, strlen(conf), &cfg, &cerr), 0);
	assert_int_equal(router_open(cfg, &router, &error), 0);

	assert_int_equal(router_account_create(router, "a@example.org", "eu-ie", "pw", code,
					       sizeof(code), &error),
			 -1);
	assert_non_null(strstr(error, "transparency log is not open"));
	assert_int_equal(router_account_find(router, "a@example.org", &acct, &error), 0);

	assert_int_equal(tlog_keygen(key, &error), 0);
	assert_int_equal(tlog_open(logdir, "test/log", key, &log, &error), 0);
	router_set_tlog(router, log);
	assert_int_equal(router_account_create(router, "a@example.org", "eu-ie", "pw", code,
					       sizeof(code), &error),
			 0);
	assert_int_equal(tlog_size(log), 1);
	assert_int_equal(router_account_find(router, "a@example.org", &acct, &error), 1);

	router_set_tlog(router, NULL);
	assert_int_equal(router_account_passwd(router, acct, "pw", "new", &error), -1);
	assert_int_equal(router_account_delete(router, acct, &error), -1);
	router_account_free(&acct);
	assert_int_equal(router_account_find(router, "a@example.org", &acct, &error), 1);
	assert_int_equal(router_account_unlock(router, acct, "pw", &kp, &error), 0);
	seal_keypair_free(&kp);
	assert_int_equal(tlog_size(log), 1);

	router_account_free(&acct);
	router_close(&router);
	tlog_close(&log);
	config_free(&cfg);
	assert_int_equal(fs_remove_tree(dir), 0);
	free(path);
	free(key);
	free(logdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decisions),
	    cmocka_unit_test(test_bad_policies),
	    cmocka_unit_test(test_policy_check),
	    cmocka_unit_test(test_default_policy),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_ids_and_names),
	    cmocka_unit_test(test_commitment),
	    cmocka_unit_test(test_policy_hash),
	    cmocka_unit_test(test_account_events_need_the_log),
	};

	if (seal_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
