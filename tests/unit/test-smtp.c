/* test-smtp.c — table-driven tests of the SMTP parser and the DATA decoder.
 *
 * Trust boundary: these functions face the network; the tables hold the
 * hostile and odd inputs as well as the ordinary ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp.h"

/* Expected error: the reply must start with this (code and enhanced code). */
struct line_case {
	const char *line;
	size_t len; /* 0: strlen */
	const char *verb;
	const char *args;
	const char *error;
};

static const struct line_case line_cases[] = {
    {"EHLO mail.example.org", 0, "EHLO", "mail.example.org", NULL},
    {"ehlo x", 0, "EHLO", "x", NULL},
    {"QUIT", 0, "QUIT", "", NULL},
    {"MAIL FROM:<a@b.example>", 0, "MAIL", "FROM:<a@b.example>", NULL},
    {"rCpT TO:<a@b>", 0, "RCPT", "TO:<a@b>", NULL},
    {"NOOP   ", 0, "NOOP", "  ", NULL},
    {"STARTTLS", 0, "STARTTLS", "", NULL},
    {"", 0, NULL, NULL, "500 5.5.2"},
    {" EHLO x", 0, NULL, NULL, "500 5.5.2"},
    {"EHLO\tx", 0, NULL, NULL, "500 5.5.2"},
    {"MAIL\rFROM:<>", 0, NULL, NULL, "500 5.5.2"},
    {"EHLO x\0y", 8, NULL, NULL, "500 5.5.2"},
    {"\x01\x02\x03", 0, NULL, NULL, "500 5.5.2"},
    {"\xff\xfe garbage", 0, NULL, NULL, "500 5.5.2"},
    {"12345 x", 0, NULL, NULL, "500 5.5.2"},
    {"AVERYLONGCOMMANDNAMEXX x", 0, NULL, NULL, "500 5.5.2"},
    {"GET / HTTP/1.1", 0, "GET", "/ HTTP/1.1", NULL},
};

static void test_parse_line(void **state)
{
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		size_t len = c->len ? c->len : strlen(c->line);
		char verb[SMTP_VERB_MAX + 1];
		const char *args = NULL, *error = NULL;
		int r = smtp_parse_line(c->line, len, verb, &args, &error);

		if (c->error == NULL) {
			assert_int_equal(r, 0);
			assert_string_equal(verb, c->verb);
			assert_string_equal(args, c->args);
		} else {
			assert_int_equal(r, -1);
			assert_non_null(error);
			assert_memory_equal(error, c->error, strlen(c->error));
		}
	}
}

struct mail_case {
	const char *args;
	int esmtp;
	const char *address; /* NULL: expect an error */
	uint64_t size;
	int body;
	int smtputf8;
	const char *error;
};

static const struct mail_case mail_cases[] = {
    {"FROM:<alice@example.org>", 1, "alice@example.org", 0, SMTP_BODY_7BIT, 0, NULL},
    {"from:<Alice@Example.ORG>", 1, "Alice@Example.ORG", 0, 0, 0, NULL},
    {"FROM:<>", 1, "", 0, 0, 0, NULL},
    {"FROM: <a@b.example>", 1, "a@b.example", 0, 0, 0, NULL},
    {"FROM:<a@b.example> SIZE=12345", 1, "a@b.example", 12345, 0, 0, NULL},
    {"FROM:<a@b.example> size=0 body=8bitmime", 1, "a@b.example", 0, SMTP_BODY_8BITMIME, 0, NULL},
    {"FROM:<a@b.example> BODY=7BIT", 1, "a@b.example", 0, SMTP_BODY_7BIT, 0, NULL},
    {"FROM:<\"john doe\"@example.org>", 1, "\"john doe\"@example.org", 0, 0, 0, NULL},
    {"FROM:<\"john.doe\"@example.org>", 1, "john.doe@example.org", 0, 0, 0, NULL},
    {"FROM:<\"a\\\"b\"@example.org>", 1, "\"a\\\"b\"@example.org", 0, 0, 0, NULL},
    {"FROM:<\"a\\\\b\"@example.org>", 1, "\"a\\\\b\"@example.org", 0, 0, 0, NULL},
    {"FROM:<@relay.example,@r2.example:a@b.example>", 1, "a@b.example", 0, 0, 0, NULL},
    {"FROM:<a+tag@[192.0.2.1]>", 1, "a+tag@[192.0.2.1]", 0, 0, 0, NULL},
    {"FROM:<a@[IPv6:2001:db8::1]>", 1, "a@[IPv6:2001:db8::1]", 0, 0, 0, NULL},
    {"FROM:<j\xc3\xb6"
     "rg@b\xc3\xbc"
     "cher.example> SMTPUTF8",
     1,
     "j\xc3\xb6"
     "rg@b\xc3\xbc"
     "cher.example",
     0, 0, 1, NULL},
    {"FROM:<a@b.example> SIZE=99999999999999999999", 1, "a@b.example", UINT64_MAX, 0, 0, NULL},
    /* errors */
    {"FROM:a@b.example", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"TO:<a@b.example>", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"FROM:<a@b.example", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<xampITMIMITMIME", 1, NULL, 0, 0, 0, "501 5.1.7"}, /* ran off the end once */
    {"FROM:<a@@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a.@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<.a@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a..b@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@-b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@b-.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@b..example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a b@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<\"unterminated@b.example>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@[300.1.1.1]>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@b.example>junk", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<postmaster>", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a@b.example> SIZE=", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=12x", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=1 SIZE=2", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"FROM:<a@b.example> SMTPUTF8=yes", 1, NULL, 0, 0, 0, "501 5.5.4"},
    {"FROM:<a@b.example> BODY=BINARYMIME", 1, NULL, 0, 0, 0, "555 5.5.4"},
    {"FROM:<a@b.example> RET=FULL", 1, NULL, 0, 0, 0, "555 5.5.4"},
    {"FROM:<a@b.example> SIZE=10", 0, NULL, 0, 0, 0, "555 5.5.4"},
    {"FROM:<j\xc3\xb6"
     "rg@b.example>",
     1, NULL, 0, 0, 0, "553 5.6.7"},
    {"FROM:<j\xc3\x28rg@b.example> SMTPUTF8", 1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<a\xc0\xaf"
     "@b.example> SMTPUTF8",
     1, NULL, 0, 0, 0, "501 5.1.7"},
    {"FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example>", 1, NULL,
     0, 0, 0, "501 5.1.7"},
};

static void test_parse_mail(void **state)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		struct smtp_mail_params mail;
		const char *error = NULL;
		int r = smtp_parse_mail(c->args, c->esmtp, &mail, &error);

		if (c->address != NULL) {
			if (r != 0)
				fail_msg("case %zu '%s': %s", i, c->args, error);
			assert_string_equal(mail.path.address, c->address);
			assert_int_equal(mail.size, c->size);
			assert_int_equal(mail.body, c->body);
			assert_int_equal(mail.smtputf8, c->smtputf8);
		} else {
			if (r != -1)
				fail_msg("case %zu '%s' was accepted", i, c->args);
			if (strncmp(error, c->error, strlen(c->error)) != 0)
				fail_msg("case %zu '%s': got '%s'", i, c->args, error);
		}
	}
}

struct rcpt_case {
	const char *args;
	int smtputf8;
	const char *address;
	int postmaster;
	const char *error;
};

static const struct rcpt_case rcpt_cases[] = {
    {"TO:<bob@example.org>", 0, "bob@example.org", 0, NULL},
    {"to:<BOB@EXAMPLE.ORG>", 0, "BOB@EXAMPLE.ORG", 0, NULL},
    {"TO:<Postmaster>", 0, "Postmaster", 1, NULL},
    {"TO:<postmaster@example.org>", 0, "postmaster@example.org", 0, NULL},
    {"TO:<\"bob\"@example.org>", 0, "bob@example.org", 0, NULL},
    {"TO:<\"b o b\"@example.org>", 0, "\"b o b\"@example.org", 0, NULL},
    {"TO:<b\xc3\xb6"
     "b@example.org>",
     1,
     "b\xc3\xb6"
     "b@example.org",
     0, NULL},
    {"TO:<>", 0, NULL, 0, "501 5.1.3"},
    {"TO:<bob>", 0, NULL, 0, "501 5.1.3"},
    {"TO:bob@example.org", 0, NULL, 0, "501 5.5.4"},
    {"FROM:<bob@example.org>", 0, NULL, 0, "501 5.5.4"},
    {"TO:<bob@example.org> NOTIFY=NEVER", 0, NULL, 0, "555 5.5.4"},
    {"TO:<bob@example.org> =x", 0, NULL, 0, "501 5.5.4"},
    {"TO:<b\xc3\xb6"
     "b@example.org>",
     0, NULL, 0, "553 5.6.7"},
    {"TO:<bob@exa_mple.org>", 0, NULL, 0, "501 5.1.3"},
};

static void test_parse_rcpt(void **state)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		struct smtp_path path;
		const char *error = NULL;
		int r = smtp_parse_rcpt(c->args, c->smtputf8, &path, &error);

		if (c->address != NULL) {
			if (r != 0)
				fail_msg("case %zu '%s': %s", i, c->args, error);
			assert_string_equal(path.address, c->address);
			assert_int_equal(path.postmaster, c->postmaster);
		} else {
			if (r != -1)
				fail_msg("case %zu '%s' was accepted", i, c->args);
			if (strncmp(error, c->error, strlen(c->error)) != 0)
				fail_msg("case %zu '%s': got '%s'", i, c->args, error);
		}
	}
}

static void test_parse_helo(void **state)
{
	static const struct {
		const char *args;
		const char *domain; /* NULL: error */
	} cases[] = {
	    {"mail.example.org", "mail.example.org"},
	    {"localhost", "localhost"},
	    {"[127.0.0.1]", "[127.0.0.1]"},
	    {"[IPv6:::1]", "[IPv6:::1]"},
	    {"host_name.example", "host_name.example"},
	    {"client.example some trailing words", "client.example"},
	    {"", NULL},
	    {"-bad.example", NULL},
	    {"[not-an-ip]", NULL},
	    {"bad!name", NULL},
	    {"a..b", NULL},
	};
	char domain[SMTP_DOMAIN_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *error = NULL;
		int r = smtp_parse_helo(cases[i].args, domain, sizeof(domain), &error);

		if (cases[i].domain != NULL) {
			assert_int_equal(r, 0);
			assert_string_equal(domain, cases[i].domain);
		} else {
			assert_int_equal(r, -1);
			assert_memory_equal(error, "501 5.5.4", 9);
		}
	}
}

static void test_parse_bdat(void **state)
{
	static const struct {
		const char *args;
		int ok;
		uint64_t size;
		int last;
	} cases[] = {
	    {"0", 1, 0, 0},          {"100", 1, 100, 0},
	    {"100 LAST", 1, 100, 1}, {"0 last", 1, 0, 1},
	    {"", 0, 0, 0},           {"x", 0, 0, 0},
	    {"10 LASTX", 0, 0, 0},   {"10  LAST", 0, 0, 0},
	    {"-1", 0, 0, 0},         {"99999999999999999999", 0, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t size = 0;
		int last = -1;
		const char *error = NULL;
		int r = smtp_parse_bdat(cases[i].args, &size, &last, &error);

		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(size, cases[i].size);
			assert_int_equal(last, cases[i].last);
		} else {
			assert_int_equal(r, -1);
			assert_memory_equal(error, "501 5.5.4", 9);
		}
	}
}

struct dot_case {
	const char *in;
	const char *out; /* message bytes up to the terminator */
	int done;
	size_t rest; /* bytes left after the terminator */
	unsigned flags;
	size_t max_line;
	size_t in_len; /* 0: strlen (set for inputs holding a NUL) */
	size_t out_len;
};

static const struct dot_case dot_cases[] = {
    {"hello\r\n.\r\n", "hello\r\n", 1, 0, 0, 1000, 0, 0},
    {".\r\n", "", 1, 0, 0, 1000, 0, 0},
    {"a\r\n..b\r\n.\r\nQUIT\r\n", "a\r\n.b\r\n", 1, 6, 0, 1000, 0, 0},
    {"...\r\n.\r\n", "..\r\n", 1, 0, 0, 1000, 0, 0},
    {".x\r\n.\r\n", "x\r\n", 1, 0, 0, 1000, 0, 0},
    {"a\r\n. \r\n.\r\n", "a\r\n \r\n", 1, 0, 0, 1000, 0, 0},
    {"no end\r\n", "no end\r\n", 0, 0, 0, 1000, 0, 0},
    /* smuggling attempts: none of these end the message */
    {"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 1, 0, SMTP_DOT_BARE_LF, 1000, 0, 0},
    {"a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 1, 0, SMTP_DOT_BARE_LF, 1000, 0, 0},
    {"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 1, 0, SMTP_DOT_BARE_LF, 1000, 0, 0},
    {"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", 1, 0, SMTP_DOT_BARE_CR, 1000, 0, 0},
    {"a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 1, 0, SMTP_DOT_BARE_CR, 1000, 0, 0},
    {"nul\0byte\r\n.\r\n", "nul\0byte\r\n", 1, 0, SMTP_DOT_NUL, 1000, 13, 10},
    {"1234567\r\n.\r\n", "1234567\r\n", 1, 0, SMTP_DOT_LINE_TOO_LONG, 8, 0, 0},
    {"123456\r\n.\r\n", "123456\r\n", 1, 0, 0, 8, 0, 0},
    {"..23456\r\n.\r\n", ".23456\r\n", 1, 0, 0, 8, 0, 0},
    /* whole clean lines first (appended in one piece), then the case */
    {"l1\r\nl2\r\nnul\0x\r\nl4\r\n.\r\n", "l1\r\nl2\r\nnul\0x\r\nl4\r\n", 1, 0, SMTP_DOT_NUL, 1000,
     22, 19},
    {"l1\r\nl2\r\n..x\r\nl4\r\n.\r\nNEXT", "l1\r\nl2\r\n.x\r\nl4\r\n", 1, 4, 0, 1000, 0, 0},
    {"ok\r\n1234567\r\nok\r\n.\r\n", "ok\r\n1234567\r\nok\r\n", 1, 0, SMTP_DOT_LINE_TOO_LONG, 8, 0,
     0},
    {"ok\r\nbare\nlf\r\n.\r\n", "ok\r\nbare\nlf\r\n", 1, 0, SMTP_DOT_BARE_LF, 1000, 0, 0},
    {"ok\r\nbare\rcr\r\n.\r\n", "ok\r\nbare\rcr\r\n", 1, 0, SMTP_DOT_BARE_CR, 1000, 0, 0},
    {"ok\r\n\r\n\r\nend\r\n.\r\n", "ok\r\n\r\n\r\nend\r\n", 1, 0, 0, 1000, 0, 0},
    {"\xff\xfe\x80"
     " 8bit\r\n.\r\n",
     "\xff\xfe\x80"
     " 8bit\r\n",
     1, 0, 0, 1000, 0, 0},
};

static void run_dot_case(const struct dot_case *c, size_t step)
{
	struct smtp_dot_decoder d;
	struct buf out;
	size_t len = c->in_len ? c->in_len : strlen(c->in), pos = 0, used = 0;
	size_t out_len = c->out_len ? c->out_len : strlen(c->out);
	int done = 0;

	buf_init(&out);
	smtp_dot_init(&d, c->max_line);
	while (pos < len && !done) {
		size_t n = len - pos < step ? len - pos : step;

		done = smtp_dot_decode(&d, (const uint8_t *)c->in + pos, n, &out, &used);
		assert_true(used <= n);
		if (!done)
			assert_int_equal(used, n);
		pos += used;
	}
	assert_int_equal(done, c->done);
	assert_int_equal(out.len, out_len);
	assert_memory_equal(out.data, c->out, out_len);
	if (len - pos != c->rest)
		fail_msg("'%s' (step %zu): %zu bytes left, expected %zu", c->in, step, len - pos,
			 c->rest);
	if (d.flags != c->flags)
		fail_msg("'%s' (step %zu): flags %#x, expected %#x", c->in, step, d.flags,
			 c->flags);
	buf_free(&out);
}

static void test_dot_decode(void **state)
{
	for (size_t i = 0; i < sizeof(dot_cases) / sizeof(dot_cases[0]); i++) {
		/* Whole, and split at every byte: the result must not depend on
		 * how the bytes arrive. */
		run_dot_case(&dot_cases[i], (size_t)-1);
		run_dot_case(&dot_cases[i], 1);
		run_dot_case(&dot_cases[i], 3);
	}
}

static void test_dot_decode_discard(void **state)
{
	struct smtp_dot_decoder d;
	size_t used = 0;
	const char *in = "junk\r\nmore\r\n.\r\nNEXT";

	smtp_dot_init(&d, 1000);
	assert_int_equal(smtp_dot_decode(&d, (const uint8_t *)in, strlen(in), NULL, &used), 1);
	assert_int_equal(strlen(in) - used, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_line),         cmocka_unit_test(test_parse_mail),
	    cmocka_unit_test(test_parse_rcpt),         cmocka_unit_test(test_parse_helo),
	    cmocka_unit_test(test_parse_bdat),         cmocka_unit_test(test_dot_decode),
	    cmocka_unit_test(test_dot_decode_discard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
