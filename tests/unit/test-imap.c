/* test-imap.c — the pure IMAP syntax of imap-parser.c and imap-utf7.c:
 * arguments (atoms, quoted strings, literals incl. LITERAL+, lists and their
 * depth limit), command splitting, literal announcements, sequence sets and
 * modified UTF-7, with broken input of each kind. */
#include "imap/imap-parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *s, struct imap_args *a)
{
	const char *error;

	return imap_args_parse((const uint8_t *)s, strlen(s), a, &error);
}

static void test_args_basic(void **state)
{
	struct imap_args a;

	assert_int_equal(parse("abc \"q\\\"x\" NIL (1 (2 \"\")) \\Seen", &a), 0);
	assert_int_equal(a.count, 5);
	assert_int_equal(a.list[0].type, IMAP_ARG_ATOM);
	assert_string_equal(a.list[0].str, "abc");
	assert_int_equal(a.list[1].type, IMAP_ARG_STRING);
	assert_string_equal(a.list[1].str, "q\"x");
	assert_true(imap_arg_is_atom(&a.list[2], "nil"));
	assert_int_equal(a.list[3].type, IMAP_ARG_LIST);
	assert_int_equal(a.list[3].count, 2);
	assert_int_equal(a.list[3].list[1].list[1].len, 0);
	assert_string_equal(a.list[4].str, "\\Seen");
	imap_args_free(&a);

	assert_int_equal(parse("BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.10> UID", &a), 0);
	assert_int_equal(a.count, 2);
	assert_string_equal(a.list[0].str, "BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.10>");
	imap_args_free(&a);

	assert_int_equal(parse("", &a), 0);
	assert_int_equal(a.count, 0);
	imap_args_free(&a);
}

static void test_args_literals(void **state)
{
	struct imap_args a;
	const char *error;
	static const uint8_t wire[] = "x {3}\r\na\377b {2+}\r\n)( y";
	static const uint8_t nul[] = "x {3}\r\na\0b";

	assert_int_equal(imap_args_parse(wire, sizeof(wire) - 1, &a, &error), 0);
	assert_int_equal(a.count, 4);
	assert_int_equal(a.list[1].type, IMAP_ARG_LITERAL);
	assert_false(a.list[1].binary);
	assert_int_equal(a.list[1].len, 3);
	assert_memory_equal(a.list[1].str, "a\377b", 3);
	assert_int_equal(a.list[2].len, 2);
	assert_memory_equal(a.list[2].str, ")(", 2);
	assert_false(imap_args_have_literal8(&a));
	imap_args_free(&a);

	/* A NUL in a plain literal parses (commands decide; APPEND refuses
	 * it), and makes the argument no C string. */
	assert_int_equal(imap_args_parse(nul, sizeof(nul) - 1, &a, &error), 0);
	assert_false(a.list[1].binary);
	assert_null(imap_arg_string(&a.list[1]));
	imap_args_free(&a);

	/* Shorter than announced, missing CRLF, bad size. */
	assert_int_equal(parse("{10}\r\nabc", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("{3}abc", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("{-1}\r\n", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("{99999999999}\r\n", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("{}\r\n", &a), -1);
	imap_args_free(&a);
}

/* RFC 3516 literal8: "~{n}" and "~{n+}", any byte. */
static void test_args_literal8(void **state)
{
	struct imap_args a;
	const char *error;
	static const uint8_t wire[] = "INBOX (\\Seen) ~{4}\r\na\0\200b";
	static const uint8_t nonsync[] = "INBOX ~{3+}\r\n\0\0\0";
	static const uint8_t nested[] = "(a ~{1}\r\nz)";

	assert_int_equal(imap_args_parse(wire, sizeof(wire) - 1, &a, &error), 0);
	assert_int_equal(a.count, 3);
	assert_int_equal(a.list[2].type, IMAP_ARG_LITERAL);
	assert_true(a.list[2].binary);
	assert_int_equal(a.list[2].len, 4);
	assert_memory_equal(a.list[2].str, "a\0\200b", 4);
	assert_null(imap_arg_string(&a.list[2])); /* holds a NUL */
	assert_true(imap_args_have_literal8(&a));
	imap_args_free(&a);

	assert_int_equal(imap_args_parse(nonsync, sizeof(nonsync) - 1, &a, &error), 0);
	assert_int_equal(a.count, 2);
	assert_true(a.list[1].binary);
	assert_int_equal(a.list[1].len, 3);
	imap_args_free(&a);

	assert_int_equal(imap_args_parse(nested, sizeof(nested) - 1, &a, &error), 0);
	assert_true(imap_args_have_literal8(&a));
	imap_args_free(&a);

	/* Broken: no brace, short, bad size, "~" alone is an atom. */
	assert_int_equal(parse("~{3}abc", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("~{10}\r\nabc", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("~{x}\r\n", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("~{}\r\n", &a), -1);
	imap_args_free(&a);
	assert_int_equal(parse("~ a", &a), 0);
	assert_int_equal(a.list[0].type, IMAP_ARG_ATOM);
	assert_false(imap_args_have_literal8(&a));
	imap_args_free(&a);
}

static void test_args_broken(void **state)
{
	static const char *const bad[] = {
	    "(a",   "a)",     "((a)",        "\"abc",      "\"a\\b\"", "\"a\rb\"",
	    "a\"b", "(a)(b)", "BODY[HEADER", "BODY[a[b]]", "\"x\"y",
	};
	struct imap_args a;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		assert_int_equal(parse(bad[i], &a), -1);
		imap_args_free(&a);
	}
}

static void test_args_depth(void **state)
{
	char deep[200];
	struct imap_args a;
	size_t n;

	for (n = 0; n < IMAP_LIST_DEPTH_MAX; n++)
		deep[n] = '(';
	for (size_t i = 0; i < IMAP_LIST_DEPTH_MAX; i++)
		deep[n++] = ')';
	deep[n] = '\0';
	assert_int_equal(parse(deep, &a), 0);
	imap_args_free(&a);
	for (n = 0; n <= IMAP_LIST_DEPTH_MAX; n++)
		deep[n] = '(';
	for (size_t i = 0; i <= IMAP_LIST_DEPTH_MAX; i++)
		deep[n++] = ')';
	deep[n] = '\0';
	assert_int_equal(parse(deep, &a), -1);
	imap_args_free(&a);
}

static void test_command_split(void **state)
{
	char tag[IMAP_TAG_MAX], name[32];
	const char *error;
	size_t rest;

	assert_int_equal(
	    imap_command_split((const uint8_t *)"a1 FETCH 1 FLAGS", 16, tag, name, &rest, &error),
	    0);
	assert_string_equal(tag, "a1");
	assert_string_equal(name, "FETCH");
	assert_int_equal(rest, 9);
	assert_int_equal(
	    imap_command_split((const uint8_t *)"a1 NOOP", 7, tag, name, &rest, &error), 0);
	assert_int_equal(rest, 7);
	assert_int_equal(imap_command_split((const uint8_t *)"+ x", 3, tag, name, &rest, &error),
			 -1);
	assert_int_equal(imap_command_split((const uint8_t *)"* x", 3, tag, name, &rest, &error),
			 -1);
	assert_int_equal(imap_command_split((const uint8_t *)"a1", 2, tag, name, &rest, &error),
			 -2);
	assert_int_equal(imap_command_split((const uint8_t *)"a1 F(X", 6, tag, name, &rest, &error),
			 -2);
}

static void test_literal_tail(void **state)
{
	uint64_t size;
	int nonsync;

#define LT(s, max) imap_literal_tail((const uint8_t *)(s), strlen(s), (max), &size, &nonsync)
	assert_int_equal(LT("a LOGIN {5}", 100), 1);
	assert_int_equal(size, 5);
	assert_int_equal(nonsync, 0);
	assert_int_equal(LT("a APPEND x {12+}", 100), 1);
	assert_int_equal(size, 12);
	assert_int_equal(nonsync, 1);
	assert_int_equal(LT("a LOGIN x", 100), 0);
	assert_int_equal(LT("a NOOP }", 100), 0);
	assert_int_equal(LT("a LOGIN {101}", 100), -1);
	assert_int_equal(LT("a LOGIN {-1}", 100), -1);
	assert_int_equal(LT("a LOGIN {1x}", 100), -1);
	assert_int_equal(LT("a LOGIN {}", 100), -1);
	assert_int_equal(LT("a LOGIN {+}", 100), -1);
	assert_int_equal(LT("a APPEND x ~{7}", 100), 1);
	assert_int_equal(size, 7);
	assert_int_equal(nonsync, 0);
	assert_int_equal(LT("a APPEND x ~{8+}", 100), 1);
	assert_int_equal(size, 8);
	assert_int_equal(nonsync, 1);
	assert_int_equal(LT("a {99999999999999999999999}", UINT32_MAX), -1);
#undef LT
}

static void test_seqset(void **state)
{
	struct imap_seqset set;
	const char *error;
	uint32_t nums[] = {1, 2, 3, 7, 9, 10};
	struct buf b;

	assert_int_equal(imap_seqset_parse("1:3,7,5:4,*", 10, &set, &error), 0);
	assert_int_equal(set.count, 3); /* 1:5, 7, 10 merged and sorted */
	assert_true(imap_seqset_contains(&set, 4));
	assert_true(imap_seqset_contains(&set, 10));
	assert_false(imap_seqset_contains(&set, 6));
	assert_false(imap_seqset_contains(&set, 11));
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("3:*", 2, &set, &error), 0);
	assert_true(imap_seqset_contains(&set, 2));
	assert_true(imap_seqset_contains(&set, 3));
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("4294967295", 1, &set, &error), 0);
	imap_seqset_free(&set);

	static const char *const bad[] = {"",    "0",  "1,",         ",1",  "1::2", "a",
					  "1:b", "-1", "4294967296", "1 2", "*",    "1:*:3"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(imap_seqset_parse(bad[i], i == 10 ? 0 : 5, &set, &error), -1);

	buf_init(&b);
	assert_int_equal(imap_seqset_format(nums, N_ELEMENTS(nums), &b), 0);
	assert_string_equal(buf_cstr(&b), "1:3,7,9:10");
	buf_free(&b);
}

static void test_utf7(void **state)
{
	static const struct {
		const char *utf7, *utf8;
	} ok[] = {
	    {"INBOX", "INBOX"},
	    {"Reisef&APw-hrer", "Reiseführer"},
	    {"&-", "&"},
	    {"a&-b", "a&b"},
	    {"&ZeVnLIqe-", "日本語"},
	    {"&2D3eAA-", "\xf0\x9f\x98\x80"}, /* surrogate pair */
	    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"},
	};
	static const char *const bad[] = {
	    "&",          "&Jjo",  "&AGE-", "&Jjo!-",
	    "&2D0-",      "&3gA-", "a\x80", "&ZeVnLIqe-&ZeVnLIqe-",
	    "&AGEAYgBj-", "\t",
	};
	struct buf b;

	for (size_t i = 0; i < N_ELEMENTS(ok); i++) {
		buf_init(&b);
		assert_int_equal(imap_utf7_to_utf8(ok[i].utf7, &b), 0);
		assert_string_equal(buf_cstr(&b), ok[i].utf8);
		buf_free(&b);
		buf_init(&b);
		assert_int_equal(imap_utf8_to_utf7(ok[i].utf8, &b), 0);
		assert_string_equal(buf_cstr(&b), ok[i].utf7);
		buf_free(&b);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		buf_init(&b);
		assert_int_equal(imap_utf7_to_utf8(bad[i], &b), -1);
		buf_free(&b);
	}
	buf_init(&b);
	assert_int_equal(imap_utf8_to_utf7("\xc3\x28", &b), -1); /* invalid UTF-8 */
	buf_free(&b);
}

static void test_mailbox_names(void **state)
{
	static const char *const bad[] = {"",     "a/../b", "..", "a/./b", "/abs",    "a/",
					  "a//b", "a\tb",   "a*", "b%",    "\xc3\x28"};
	const char *error;
	char *canon;

	assert_int_equal(imap_mailbox_name_check("inbox", &canon, &error), 0);
	assert_string_equal(canon, "INBOX");
	free(canon);
	assert_int_equal(imap_mailbox_name_check("Inbox/Sub", &canon, &error), 0);
	assert_string_equal(canon, "INBOX/Sub");
	free(canon);
	assert_int_equal(imap_mailbox_name_check("Inboxes", &canon, &error), 0);
	assert_string_equal(canon, "Inboxes");
	free(canon);
	assert_int_equal(imap_mailbox_name_check("Reiseführer/2024", &canon, &error), 0);
	free(canon);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(imap_mailbox_name_check(bad[i], &canon, &error), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_basic),    cmocka_unit_test(test_args_literals),
	    cmocka_unit_test(test_args_literal8), cmocka_unit_test(test_args_broken),
	    cmocka_unit_test(test_args_depth),    cmocka_unit_test(test_command_split),
	    cmocka_unit_test(test_literal_tail),  cmocka_unit_test(test_seqset),
	    cmocka_unit_test(test_utf7),          cmocka_unit_test(test_mailbox_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
