/* test-mime.c — unit tests for mime/: ENVELOPE, BODYSTRUCTURE and BODY strings
 * checked byte for byte, section ranges, the metadata blob, and hostile input.
 *
 * Trust boundary: none; the inputs are fixed or generated here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "mime/mime-private.h"

struct fixture {
	const char *name;
	const char *msg;
	const char *envelope;
	const char *bodystructure;
	const char *body; /* NULL when not checked */
};

#define ENV_NIL    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
#define TEXT_EMPTY "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0"

static const struct fixture fixtures[] = {
    {
	/* the header of the RFC 3501 7.4.2 example; RFC 3501's grammar
	 * (env-cc = "(" 1*address ")") has no space between addresses */
	"plain text, RFC 3501 example header",
	"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
	"From: Terry Gray <gray@cac.washington.edu>\r\n"
	"Subject: IMAP4rev1 WG mtg summary and\r\n minutes\r\n"
	"To: imap@cac.washington.edu\r\n"
	"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
	"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	"\r\n"
	"Hello\r\nworld\r\n",
	"(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
	"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	"((NIL NIL \"imap\" \"cac.washington.edu\")) "
	"((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
	"\"MIT.EDU\")) "
	"NIL NIL \"<B27397-0100000@cac.washington.edu>\")",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 2)",
    },
    {
	"no MIME headers at all, LF line ends",
	"Subject: x\n\nline1\nline2\n",
	"(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 2 NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 2)",
    },
    {
	"same message, CRLF line ends",
	"Subject: x\r\n\r\nline1\r\nline2\r\n",
	"(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)",
	NULL,
    },
    {
	"encoded words stay encoded, raw UTF-8 becomes a literal",
	"From: =?UTF-8?Q?Andr=C3=A9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
	"To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>,\n"
	"  \"=?utf-8?B?w6k=?=\" <e@x.org>, J\xc3\xb6rg <j@x.org>\n"
	"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n"
	" =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\n"
	"Cc: Gr\xc3\xbc\xc3\x9f\x65 <g@x.org>\n"
	"\n"
	"body\n",
	"(NIL \"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
	"=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\" "
	"((\"=?UTF-8?Q?Andr=C3=A9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) "
	"((\"=?UTF-8?Q?Andr=C3=A9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) "
	"((\"=?UTF-8?Q?Andr=C3=A9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) "
	"((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"dkuug.dk\")"
	"(\"=?utf-8?B?w6k=?=\" NIL \"e\" \"x.org\")({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x.org\")) "
	"(({7}\r\nGr\xc3\xbc\xc3\x9f\x65 NIL \"g\" \"x.org\")) NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)",
	NULL,
    },
    {
	"8-bit subject is a literal, NUL is replaced",
	"Subject: Gr\xc3\xbc\xc3\x9f\x65\n"
	"Message-ID: <a\"b\\c@x>\n"
	"Date: x\0y\n"
	"\n",
	"({5}\r\nx\xef\xbf\xbdy {7}\r\nGr\xc3\xbc\xc3\x9f\x65 NIL NIL NIL NIL NIL NIL NIL "
	"\"<a\\\"b\\\\c@x>\")",
	TEXT_EMPTY " NIL NIL NIL NIL)",
	NULL,
    },
    {
	/* RFC 5322 A.1.3 */
	"groups",
	"From: Pete <pete@silly.example>\n"
	"To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\n"
	"Cc: Undisclosed recipients:;\n"
	"Bcc: \"empty\" : ; , x@y\n"
	"\n",
	"(NIL NIL ((\"Pete\" NIL \"pete\" \"silly.example\")) "
	"((\"Pete\" NIL \"pete\" \"silly.example\")) "
	"((\"Pete\" NIL \"pete\" \"silly.example\")) "
	"((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")"
	"(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)) "
	"((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) "
	"((NIL NIL \"empty\" NIL)(NIL NIL NIL NIL)(NIL NIL \"x\" \"y\")) NIL NIL)",
	TEXT_EMPTY " NIL NIL NIL NIL)",
	NULL,
    },
    {
	"missing From: Sender kept, empty Reply-To falls back to (absent) From",
	"Sender: s@x.example\n"
	"Reply-To:\n"
	"To: t@x.example\n"
	"\n"
	"hi",
	"(NIL NIL NIL ((NIL NIL \"s\" \"x.example\")) NIL ((NIL NIL \"t\" \"x.example\")) "
	"NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 2 0 NIL NIL NIL NIL)",
	NULL,
    },
    {
	"address oddities",
	"From: john@x.example (John Doe)\n"
	"To: \"Doe, Jane\" <jane@x.example>, \"john doe\"@x.example, <@r1,@r2:u@h>,\n"
	" nodomain, <>, Name <broken@, @only.domain\n"
	"Cc: ,, (comment only) ,\n"
	"Reply-To: John (the) Q. \"Public\" <\"jqp\"@[1.2.3.4]>\n"
	"\n",
	"(NIL NIL ((\"John Doe\" NIL \"john\" \"x.example\")) "
	"((\"John Doe\" NIL \"john\" \"x.example\")) "
	"((\"John Q. Public\" NIL \"jqp\" \"[1.2.3.4]\")) "
	"((\"Doe, Jane\" NIL \"jane\" \"x.example\")"
	"(NIL NIL \"\\\"john doe\\\"\" \"x.example\")"
	"(NIL \"@r1,@r2\" \"u\" \"h\")"
	"(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")"
	"(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	"(\"Name\" NIL \"broken\" \"MISSING_DOMAIN\")"
	"(NIL NIL \"MISSING_MAILBOX\" \"only.domain\")) "
	"NIL NIL NIL NIL)",
	TEXT_EMPTY " NIL NIL NIL NIL)",
	NULL,
    },
    {
	"multipart/alternative",
	"From: a@example.com\n"
	"To: b@example.com\n"
	"Subject: alt\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"plain\n"
	"--b1\n"
	"Content-Type: text/html; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"<p>html</p>\n"
	"\n"
	"--b1--\n",
	"(NIL \"alt\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) "
	"((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL)",
	"((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL)"
	"(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 12 1 NIL NIL NIL "
	"NIL) "
	"\"ALTERNATIVE\" (\"boundary\" \"b1\") NIL NIL NIL)",
	"((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 0)"
	"(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 12 1) "
	"\"ALTERNATIVE\")",
    },
    {
	"multipart/mixed with a base64 attachment",
	"From: \"Doe, John\" <john.doe@example.com>\r\n"
	"To: jane@example.com\r\n"
	"Subject: report\r\n"
	"Message-ID: <1234@example.com>\r\n"
	"In-Reply-To:  <0001@example.com> \r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed;\r\n"
	"\tboundary=\"----=_Part_0\"\r\n"
	"\r\n"
	"This is a multi-part message in MIME format.\r\n"
	"------=_Part_0\r\n"
	"Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	"\r\n"
	"See attached.\r\n"
	"------=_Part_0\r\n"
	"Content-Type: application/pdf; name=\"report.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	"\r\n"
	"JVBERi0xLjQK\r\n"
	"JSVFT0YK\r\n"
	"------=_Part_0--\r\n",
	"(NIL \"report\" ((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
	"((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
	"((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
	"((NIL NIL \"jane\" \"example.com\")) NIL NIL \"<0001@example.com>\" "
	"\"<1234@example.com>\")",
	"((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 13 0 NIL NIL NIL NIL)"
	"(\"APPLICATION\" \"PDF\" (\"name\" \"report.pdf\") NIL NIL \"BASE64\" 22 NIL "
	"(\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL) "
	"\"MIXED\" (\"boundary\" \"----=_Part_0\") NIL NIL NIL)",
	"((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 13 0)"
	"(\"APPLICATION\" \"PDF\" (\"name\" \"report.pdf\") NIL NIL \"BASE64\" 22) \"MIXED\")",
    },
    {
	"nested message/rfc822 with every extension field",
	"From: alice@example.net\n"
	"Date: Mon, 3 Jun 2024 10:00:00 +0000\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"outer\n"
	" part\"\n"
	"\n"
	"Preamble text for non-MIME readers.\n"
	"\n"
	"--outer part\n"
	"Content-Type: text/x-notes; charset=us-ascii; note=\"say \\\"hi\\\"\"\n"
	"Content-ID: <notes@example.net>\n"
	"Content-MD5: bm90IGEgcmVhbCBkaWdlc3Q=\n"
	"Content-Disposition: inline; size=9\n"
	"Content-Description: meeting notes\n"
	"Content-Language: de, en-GB\n"
	"Content-Location: http://example.net/notes.txt\n"
	"\n"
	"notes\n"
	"more\n"
	"\n"
	"--outer part\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: bob@example.org\n"
	"To: carol@example.org, dave@example.org\n"
	"Date: Tue, 4 Jun 2024 11:30:00 +0200\n"
	"Subject: forwarded\n"
	"Content-Type: multipart/alternative; boundary=\"inner\"\n"
	"\n"
	"Inner preamble\n"
	"--inner\n"
	"Content-Type: text/html\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"<b>bold</b>\n"
	"\n"
	"--inner\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: @bogus\n"
	"\n"
	"plain words\n"
	"\n"
	"--inner--\n"
	"Inner epilogue\n"
	"\n"
	"--outer part--\n"
	"Outer epilogue\n",
	"(\"Mon, 3 Jun 2024 10:00:00 +0000\" NIL ((NIL NIL \"alice\" \"example.net\")) "
	"((NIL NIL \"alice\" \"example.net\")) ((NIL NIL \"alice\" \"example.net\")) "
	"NIL NIL NIL NIL NIL)",
	"((\"TEXT\" \"X-NOTES\" (\"charset\" \"us-ascii\" \"note\" \"say \\\"hi\\\"\") "
	"\"<notes@example.net>\" \"meeting notes\" \"7BIT\" 11 2 \"bm90IGEgcmVhbCBkaWdlc3Q=\" "
	"(\"inline\" (\"size\" \"9\")) (\"de\" \"en-GB\") \"http://example.net/notes.txt\")"
	"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 372 "
	"(\"Tue, 4 Jun 2024 11:30:00 +0200\" \"forwarded\" ((NIL NIL \"bob\" \"example.org\")) "
	"((NIL NIL \"bob\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) "
	"((NIL NIL \"carol\" \"example.org\")(NIL NIL \"dave\" \"example.org\")) "
	"NIL NIL NIL NIL) "
	"((\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"8BIT\" 12 1 NIL NIL NIL NIL)"
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL) "
	"\"ALTERNATIVE\" (\"boundary\" \"inner\") NIL NIL NIL) 21 NIL NIL NIL NIL) "
	"\"MIXED\" (\"boundary\" \"outer part\") NIL NIL NIL)",
	"((\"TEXT\" \"X-NOTES\" (\"charset\" \"us-ascii\" \"note\" \"say \\\"hi\\\"\") "
	"\"<notes@example.net>\" \"meeting notes\" \"7BIT\" 11 2)"
	"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 372 "
	"(\"Tue, 4 Jun 2024 11:30:00 +0200\" \"forwarded\" ((NIL NIL \"bob\" \"example.org\")) "
	"((NIL NIL \"bob\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) "
	"((NIL NIL \"carol\" \"example.org\")(NIL NIL \"dave\" \"example.org\")) "
	"NIL NIL NIL NIL) "
	"((\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"8BIT\" 12 1)"
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1) "
	"\"ALTERNATIVE\") 21) \"MIXED\")",
    },
    {
	"RFC 2231 parameters and multipart/digest",
	"Content-Type: multipart/digest; boundary=d\n"
	"\n"
	"--d\n"
	"\n"
	"Subject: in digest\n"
	"\n"
	"one\n"
	"--d\n"
	"Content-Type: application/octet-stream; name*=us-ascii'en'a%20b\n"
	"Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC;\n"
	" filename*1=\"100%.txt\"; size=3; x*1=b; x*0=a; y*1=gap\n"
	"\n"
	"abc\n"
	"--d--\n",
	ENV_NIL,
	"((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 23 "
	"(NIL \"in digest\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0 NIL NIL NIL NIL) 2 "
	"NIL NIL NIL NIL)"
	"(\"APPLICATION\" \"OCTET-STREAM\" (\"name*\" \"us-ascii'en'a%20b\") NIL NIL \"7BIT\" 3 "
	"NIL (\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC100%25.txt\" \"size\" \"3\" "
	"\"x\" \"ab\" \"y*1\" \"gap\")) NIL NIL) "
	"\"DIGEST\" (\"boundary\" \"d\") NIL NIL NIL)",
	NULL,
    },
    {
	"broken MIME: no closing boundary, multipart without boundary inside",
	"Content-Type: multipart/mixed; boundary=\"q\"\n"
	"\n"
	"--q\n"
	"Content-Type: multipart/related\n"
	"\n"
	"opaque\n"
	"--q\n"
	"Content-Type: text/plain\n"
	"\n"
	"last part runs to the end\n",
	ENV_NIL,
	"((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 6 0 NIL NIL NIL NIL)"
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 26 1 NIL NIL NIL NIL) "
	"\"MIXED\" (\"boundary\" \"q\") NIL NIL NIL)",
	NULL,
    },
    {
	"broken MIME: the boundary never appears",
	"Content-Type: multipart/mixed; boundary=nowhere\n\nsome text\n",
	ENV_NIL,
	"(" TEXT_EMPTY " NIL NIL NIL NIL) \"MIXED\" (\"boundary\" \"nowhere\") NIL NIL NIL)",
	"(" TEXT_EMPTY ") \"MIXED\")",
    },
    {
	"no header section, no line end",
	"just some text",
	ENV_NIL,
	TEXT_EMPTY " NIL NIL NIL NIL)",
	NULL,
    },
    {
	"empty header section",
	"\r\nbody only\r\n",
	ENV_NIL,
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL)",
	NULL,
    },
    {
	"lone CR and folded header",
	"Subject: a\rb\r\n\tc\r\nContent-Type: text/plain; format=flowed\r\n\r\nx\ry",
	"(NIL \"a b\tc\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	"(\"TEXT\" \"PLAIN\" (\"format\" \"flowed\" \"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0 "
	"NIL NIL NIL NIL)",
	NULL,
    },
};

/* ---- helpers ---------------------------------------------------------------- */

static void build(const void *msg, size_t len, struct buf *meta)
{
	buf_init(meta);
	assert_int_equal(mime_meta_build(msg, len, meta), 0);
}

static char *field(const struct buf *meta, enum mime_field f)
{
	const uint8_t *v;
	size_t len;
	char *s;

	assert_int_equal(mime_meta_get(meta->data, meta->len, f, &v, &len), 1);
	s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, v, len);
	s[len] = '\0';
	return s;
}

static void assert_field(const struct buf *meta, enum mime_field f, const char *want)
{
	char *got = field(meta, f);

	if (strcmp(got, want) != 0)
		print_error("field %d\n got: %s\nwant: %s\n", (int)f, got, want);
	assert_string_equal(got, want);
	free(got);
}

/* A loose IMAP syntax check: one parenthesised list of NIL, numbers, quoted
 * strings (7-bit, no CR/LF) and literals, separated by single spaces, with
 * balanced parentheses. Returns the number of members of the outer list, or
 * -1. */
static int imap_items(const uint8_t *s, size_t len)
{
	enum { OPEN, CLOSE, SPACE, TOKEN } prev = SPACE;
	size_t i = 0;
	int depth = 0, items = 0;

	if (len == 0 || s[0] != '(')
		return -1;
	while (i < len) {
		uint8_t c = s[i];

		if (c == ' ') {
			if (prev == OPEN || prev == SPACE)
				return -1;
			prev = SPACE;
			i++;
			continue;
		}
		if (c == ')') {
			if (prev == SPACE || --depth < 0)
				return -1;
			prev = CLOSE;
			if (++i, depth == 0)
				return i == len ? items : -1;
			continue;
		}
		if (prev == TOKEN || (prev == CLOSE && c != '('))
			return -1;
		items += depth == 1;
		prev = TOKEN;
		if (c == '(') {
			depth++;
			prev = OPEN;
			i++;
		} else if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < len &&
				    (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				else if (s[i] == '\\' || s[i] == '\r' || s[i] == '\n' ||
					 s[i] == 0 || s[i] >= 0x80)
					return -1;
			}
			if (i++ >= len)
				return -1;
		} else if (c == '{') {
			size_t n = 0, j = i + 1;

			while (j < len && s[j] >= '0' && s[j] <= '9' && n < len)
				n = n * 10 + (size_t)(s[j++] - '0');
			if (j == i + 1 || j + 3 > len || s[j] != '}' || s[j + 1] != '\r' ||
			    s[j + 2] != '\n' || n > len - j - 3 || memchr(s + j + 3, 0, n) != NULL)
				return -1;
			i = j + 3 + n;
		} else if (len - i >= 3 && memcmp(s + i, "NIL", 3) == 0) {
			i += 3;
		} else if (c >= '0' && c <= '9') {
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
		} else {
			return -1;
		}
	}
	return -1;
}

/* Every field of META, built from a message of LEN bytes, is present and well
 * formed; ENVELOPE has ten members. */
static void assert_meta_valid(const struct buf *meta, size_t len)
{
	const uint8_t *v;
	size_t vlen;

	assert_int_equal(mime_meta_get(meta->data, meta->len, MIME_FIELD_ENVELOPE, &v, &vlen), 1);
	assert_int_equal(imap_items(v, vlen), 10);
	assert_int_equal(mime_meta_get(meta->data, meta->len, MIME_FIELD_BODYSTRUCTURE, &v, &vlen),
			 1);
	assert_true(imap_items(v, vlen) > 0);
	assert_int_equal(mime_meta_get(meta->data, meta->len, MIME_FIELD_BODY, &v, &vlen), 1);
	assert_true(imap_items(v, vlen) > 0);
	assert_int_equal(mime_meta_get(meta->data, meta->len, MIME_FIELD_HEADER, &v, &vlen), 1);
	assert_true(vlen <= len);
	assert_int_equal(mime_meta_get(meta->data, meta->len, MIME_FIELD_LINES, &v, &vlen), 1);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t xrnd(uint64_t *st, uint32_t n)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (uint32_t)(*st % n);
}

static uint32_t rnd(uint32_t n)
{
	return xrnd(&rng_state, n);
}

/* Feeds MSG to a stream whole (MAX 0) or in pieces of 1 to MAX bytes. */
static void stream_build(const uint8_t *msg, size_t len, size_t max, struct buf *meta)
{
	struct mime_meta_stream *ms = mime_meta_stream_new();
	size_t pos = 0;

	assert_non_null(ms);
	buf_init(meta);
	while (pos < len) {
		size_t n = max == 0 ? len : 1 + rnd((uint32_t)max);

		if (n > len - pos)
			n = len - pos;
		assert_int_equal(mime_meta_stream_write(ms, msg + pos, n), 0);
		pos += n;
	}
	assert_int_equal(mime_meta_stream_write(ms, msg, 0), 0);
	assert_int_equal(mime_meta_stream_finish(ms, meta), 0);
	mime_meta_stream_free(&ms);
	assert_null(ms);
}

/* The stream gives META for MSG fed whole, byte by byte and in random
 * pieces. */
static void assert_stream_gives(const uint8_t *msg, size_t len, const struct buf *meta)
{
	static const size_t maxes[] = {0, 1, 2, 7, 100, 5000};
	size_t i;

	for (i = 0; i < N_ELEMENTS(maxes); i++) {
		struct buf got;

		stream_build(msg, len, maxes[i], &got);
		assert_int_equal(got.len, meta->len);
		assert_memory_equal(got.data, meta->data, meta->len);
		buf_free(&got);
	}
}

/* META is valid, and what a stream gives fed MSG in any pieces. */
static void assert_valid(const void *msg, size_t len)
{
	struct buf meta;

	build(msg, len, &meta);
	assert_meta_valid(&meta, len);
	assert_stream_gives(msg, len, &meta);
	buf_free(&meta);
}

static size_t count_lf(const char *s, size_t len)
{
	size_t n = 0;

	while (len-- > 0)
		n += *s++ == '\n';
	return n;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_fixtures(void **state)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(fixtures); i++) {
		const struct fixture *f = &fixtures[i];
		size_t len = strlen(f->msg);
		struct buf meta;

		if (strstr(f->name, "NUL") != NULL)
			len += strlen(f->msg + len + 1) + 1; /* the message goes on after a NUL */
		print_message("fixture: %s\n", f->name);
		build(f->msg, len, &meta);
		assert_field(&meta, MIME_FIELD_ENVELOPE, f->envelope);
		assert_field(&meta, MIME_FIELD_BODYSTRUCTURE, f->bodystructure);
		if (f->body != NULL)
			assert_field(&meta, MIME_FIELD_BODY, f->body);
		buf_free(&meta);
		assert_valid(f->msg, len);
	}
}

/* RFC 3501 7.4.2's BODY example, rebuilt from a message of those sizes. */
static void test_rfc3501_body_example(void **state)
{
	struct buf m, meta;
	int i;

	buf_init(&m);
	assert_int_equal(
	    buf_append_str(&m, "MIME-Version: 1.0\r\n"
			       "Content-Type: MULTIPART/MIXED; BOUNDARY=\"x\"\r\n\r\n"
			       "--x\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"),
	    0);
	for (i = 0; i < 23; i++)
		assert_int_equal(buf_printf(&m, "%048d\r\n", i), 0);
	assert_int_equal(
	    buf_append_str(&m, "aa\r\n--x\r\n"
			       "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
			       "Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
			       "Content-Description: Compiler diff\r\n"
			       "Content-Transfer-Encoding: BASE64\r\n\r\n"),
	    0);
	for (i = 0; i < 73; i++)
		assert_int_equal(buf_printf(&m, "%060d\r\n", i), 0);
	assert_int_equal(buf_printf(&m, "%028d\r\n--x--\r\n", 0), 0);

	build(m.data, m.len, &meta);
	assert_field(
	    &meta, MIME_FIELD_BODY,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	    "\"MIXED\")");
	assert_field(
	    &meta, MIME_FIELD_BODYSTRUCTURE,
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 "
	    "NIL NIL NIL NIL)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73 "
	    "NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"x\") NIL NIL NIL)");
	buf_free(&meta);
	buf_free(&m);
}

static void test_header_and_lines(void **state)
{
	const struct fixture *f = &fixtures[0];
	const char *eoh = strstr(f->msg, "\r\n\r\n") + 4;
	struct buf meta;
	char *s, want[32];

	build(f->msg, strlen(f->msg), &meta);
	s = field(&meta, MIME_FIELD_HEADER);
	assert_int_equal(strlen(s), (size_t)(eoh - f->msg));
	assert_memory_equal(s, f->msg, strlen(s));
	free(s);
	assert_field(&meta, MIME_FIELD_LINES, "12");
	buf_free(&meta);

	build("no header", 9, &meta);
	assert_field(&meta, MIME_FIELD_HEADER, "no header");
	assert_field(&meta, MIME_FIELD_LINES, "0");
	buf_free(&meta);

	f = &fixtures[10];
	snprintf(want, sizeof(want), "%zu", count_lf(f->msg, strlen(f->msg)));
	build(f->msg, strlen(f->msg), &meta);
	assert_field(&meta, MIME_FIELD_LINES, want);
	buf_free(&meta);
}

static void assert_range(const char *msg, const unsigned *path, size_t depth, const char *mime,
			 const char *body)
{
	struct mime_part_range r;

	assert_int_equal(mime_part_find((const uint8_t *)msg, strlen(msg), path, depth, &r), 1);
	assert_true(r.mime_off <= r.body_off && r.body_off <= r.end_off);
	assert_int_equal(r.body_off - r.mime_off, strlen(mime));
	assert_memory_equal(msg + r.mime_off, mime, strlen(mime));
	assert_int_equal(r.end_off - r.body_off, strlen(body));
	assert_memory_equal(msg + r.body_off, body, strlen(body));
}

static void test_sections(void **state)
{
	const char *mixed = fixtures[9].msg, *nested = fixtures[10].msg;
	static const unsigned p1[] = {1}, p2[] = {2}, p3[] = {3}, p21[] = {2, 1}, p22[] = {2, 2},
			      p23[] = {2, 3}, p11[] = {1, 1}, p0[] = {0};
	struct mime_part_range r;

	assert_range(mixed, p1, 1, "Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n",
		     "See attached.");
	assert_range(mixed, p2, 1,
		     "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
		     "Content-Transfer-Encoding: base64\r\n"
		     "Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n",
		     "JVBERi0xLjQK\r\nJSVFT0YK");
	assert_int_equal(mime_part_find((const uint8_t *)mixed, strlen(mixed), p3, 1, &r), 0);
	assert_int_equal(mime_part_find((const uint8_t *)mixed, strlen(mixed), p11, 2, &r), 0);
	assert_int_equal(mime_part_find((const uint8_t *)mixed, strlen(mixed), p0, 1, &r), 0);

	/* the whole message */
	assert_int_equal(mime_part_find((const uint8_t *)mixed, strlen(mixed), NULL, 0, &r), 1);
	assert_true(r.is_message);
	assert_int_equal(r.end_off, strlen(mixed));
	assert_memory_equal(mixed + r.text_off, "This is a multi-part", 20);

	/* message/rfc822: the part is a message with its own header and text */
	assert_int_equal(mime_part_find((const uint8_t *)nested, strlen(nested), p2, 1, &r), 1);
	assert_true(r.is_message);
	assert_int_equal(r.end_off - r.body_off, 372);
	assert_memory_equal(nested + r.body_off, "From: bob@example.org\n", 22);
	assert_memory_equal(nested + r.text_off, "Inner preamble\n", 15);
	assert_memory_equal(nested + r.end_off - 16, "\nInner epilogue\n", 16);
	assert_range(nested, p21, 2, "Content-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n",
		     "<b>bold</b>\n");
	assert_range(nested, p22, 2,
		     "Content-Type: text/plain\nContent-Transfer-Encoding: @bogus\n\n",
		     "plain words\n");
	assert_int_equal(mime_part_find((const uint8_t *)nested, strlen(nested), p23, 2, &r), 0);

	/* a single-part message has part 1, its body */
	assert_range(fixtures[1].msg, p1, 1, "Subject: x\n\n", "line1\nline2\n");
	assert_int_equal(
	    mime_part_find((const uint8_t *)fixtures[1].msg, strlen(fixtures[1].msg), p11, 2, &r),
	    0);
	/* a multipart without parts shows one empty part */
	assert_int_equal(
	    mime_part_find((const uint8_t *)fixtures[14].msg, strlen(fixtures[14].msg), p1, 1, &r),
	    1);
	assert_int_equal(r.end_off, r.body_off);
}

static void gmime_leaves(GMimeObject *o, size_t *ranges, size_t *n)
{
	if (GMIME_IS_MULTIPART(o)) {
		int i, count = g_mime_multipart_get_count(GMIME_MULTIPART(o));

		for (i = 0; i < count; i++)
			gmime_leaves(g_mime_multipart_get_part(GMIME_MULTIPART(o), i), ranges, n);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));

		gmime_leaves(g_mime_message_get_mime_part(m), ranges, n);
	} else if (GMIME_IS_PART(o)) {
		GMimeStream *s =
		    g_mime_data_wrapper_get_stream(g_mime_part_get_content(GMIME_PART(o)));

		ranges[(*n)++] = (size_t)s->bound_start;
		ranges[(*n)++] = (size_t)s->bound_end;
	}
}

/* On well-formed messages the part bodies are where GMime finds them too. */
static void test_gmime_agrees(void **state)
{
	static const size_t which[] = {0, 8, 9, 10, 11};
	size_t i;

	for (i = 0; i < N_ELEMENTS(which); i++) {
		const char *msg = fixtures[which[i]].msg;
		size_t len = strlen(msg), theirs[32], ours[32], n = 0, m = 0, k;
		GMimeStream *stream = g_mime_stream_mem_new_with_buffer(msg, len);
		GMimeParser *parser = g_mime_parser_new_with_stream(stream);
		GMimeMessage *gm;
		struct mime_tree t;

		g_mime_parser_set_persist_stream(parser, TRUE);
		gm = g_mime_parser_construct_message(parser, NULL);
		assert_non_null(gm);
		gmime_leaves(g_mime_message_get_mime_part(gm), theirs, &n);
		assert_int_equal(mime_tree_build(&t, (const uint8_t *)msg, len), 0);
		for (k = 0; k < t.count; k++) {
			if (t.nodes[k].kind == MIME_LEAF) {
				ours[m++] = t.nodes[k].body_off;
				ours[m++] = t.nodes[k].end_off;
			}
		}
		mime_tree_free(&t);
		assert_int_equal(n, m);
		assert_memory_equal(ours, theirs, n * sizeof(*ours));
		g_object_unref(gm);
		g_object_unref(parser);
		g_object_unref(stream);
	}
}

static void test_meta_get(void **state)
{
	static const uint8_t blob[] = {9, 0, 0, 0, 3, 'a', 'b', 'c', 1, 0, 0, 0, 2, 'x', 'y'};
	static const uint8_t huge[] = {1, 0xff, 0xff, 0xff, 0xff, 'x'};
	const uint8_t *v;
	size_t len, pos;
	struct buf meta;
	int tag = 0;

	assert_int_equal(mime_meta_get(blob, sizeof(blob), MIME_FIELD_ENVELOPE, &v, &len), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(v, "xy", 2);
	assert_int_equal(mime_meta_get(blob, sizeof(blob), MIME_FIELD_BODY, &v, &len), 0);
	assert_int_equal(mime_meta_get(blob, 0, MIME_FIELD_BODY, &v, &len), 0);
	assert_int_equal(mime_meta_get(blob, sizeof(blob) - 1, MIME_FIELD_ENVELOPE, &v, &len), -1);
	assert_int_equal(mime_meta_get(blob, 3, MIME_FIELD_ENVELOPE, &v, &len), -1);
	assert_int_equal(mime_meta_get(blob, 10, 9, &v, &len), -1);
	assert_int_equal(mime_meta_get(huge, sizeof(huge), MIME_FIELD_ENVELOPE, &v, &len), -1);

	/* a built blob has the five fields in tag order, appended to OUT */
	buf_init(&meta);
	assert_int_equal(buf_append_str(&meta, "keep"), 0);
	assert_int_equal(mime_meta_build((const uint8_t *)"Subject: a\n\nb\n", 14, &meta), 0);
	assert_memory_equal(meta.data, "keep", 4);
	for (pos = 4; pos < meta.len; pos += 5 + len) {
		assert_true(meta.len - pos >= 5);
		assert_int_equal(meta.data[pos], ++tag);
		len = (size_t)meta.data[pos + 1] << 24 | (size_t)meta.data[pos + 2] << 16 |
		      (size_t)meta.data[pos + 3] << 8 | meta.data[pos + 4];
	}
	assert_int_equal(pos, meta.len);
	assert_int_equal(tag, MIME_FIELD_LINES);
	buf_free(&meta);
}

static void assert_sections_sane(const uint8_t *msg, size_t len)
{
	unsigned path[4];
	size_t depth;
	int i;

	for (i = 0; i < 12; i++) {
		struct mime_part_range r;
		int ret;

		depth = rnd(5);
		for (size_t k = 0; k < depth; k++)
			path[k] = 1 + rnd(3);
		ret = mime_part_find(msg, len, path, depth, &r);
		assert_true(ret == 0 || ret == 1);
		if (ret == 0)
			continue;
		assert_true(r.mime_off <= r.body_off && r.body_off <= r.end_off &&
			    r.end_off <= len);
		if (r.is_message)
			assert_true(r.body_off <= r.text_off && r.text_off <= r.end_off);
	}
}

static void test_garbage(void **state)
{
	static const char *const bits[] = {
	    "--",
	    "\n",
	    "\r\n",
	    "\r",
	    "\n\n",
	    "--b\n",
	    "--b--\n",
	    "--b\r\n",
	    "\"",
	    "(",
	    ")",
	    "<",
	    ">",
	    ":",
	    ";",
	    ",",
	    "@",
	    "=?",
	    "\\",
	    "\xff",
	    "\xc3",
	    "Content-Type: multipart/mixed; boundary=b\n",
	    "Content-Type: message/rfc822\n\n",
	    "Content-Type: text/plain\n",
	    "From: ",
	    "To: a:b;\n",
	    " ",
	    "\t",
	    "*0*=",
	    "; name*1=x",
	};
	static const char *const fixed[] = {
	    "",
	    "\n",
	    "\r\n",
	    "\r\n\r\n",
	    "\r\r\r\r",
	    ":",
	    "From:",
	    "From: <",
	    "From: \"",
	    "From: (((",
	    "To: ;;;,,,<<<>>>@@@",
	    "Content-Type: multipart/mixed; boundary=\n\n--\n",
	    "Content-Type: multipart/mixed; boundary=b\n\n--b--\n--b\n",
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n",
	    "Content-Type: message/rfc822\n",
	    "Content-Type: /\n\n",
	    "Content-Type: a/\n\n",
	    "Content-Type: text/plain; ;;=;a=\"\n\n",
	    "\xff\xfe\x00\x01\n\n\x80",
	};
	uint8_t *buf = malloc(4096);
	size_t i, len;
	int iter;

	assert_non_null(buf);
	for (i = 0; i < N_ELEMENTS(fixed); i++) {
		assert_valid(fixed[i], strlen(fixed[i]));
		assert_sections_sane((const uint8_t *)fixed[i], strlen(fixed[i]));
	}
	assert_valid("a\0b\n\0\n\n\0", 8);
	/* random bytes */
	for (iter = 0; iter < 300; iter++) {
		len = rnd(2048);
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd(256);
		assert_valid(buf, len);
		assert_sections_sane(buf, len);
	}
	/* fixtures with pieces of MIME syntax spliced in, or cut short */
	for (iter = 0; iter < 3000; iter++) {
		const char *src = fixtures[rnd(N_ELEMENTS(fixtures))].msg;
		size_t src_len = strlen(src), at;
		int edits = 1 + (int)rnd(6);

		memcpy(buf, src, src_len);
		len = src_len;
		while (edits-- > 0 && len > 0) {
			const char *bit = bits[rnd(N_ELEMENTS(bits))];
			size_t bit_len = strlen(bit);

			at = rnd((uint32_t)len);
			switch (rnd(3)) {
			case 0:
				if (len + bit_len < 4096) {
					memmove(buf + at + bit_len, buf + at, len - at);
					memcpy(buf + at, bit, bit_len);
					len += bit_len;
				}
				break;
			case 1:
				buf[at] = (uint8_t)rnd(256);
				break;
			default:
				len = at;
				break;
			}
		}
		assert_valid(buf, len);
		assert_sections_sane(buf, len);
	}
	free(buf);
}

static int max_paren_depth(const char *s)
{
	int d = 0, max = 0;

	for (; *s != '\0'; s++) {
		if (*s == '"') {
			for (s++; *s != '"'; s++)
				s += *s == '\\';
		} else if (*s == '(' && ++d > max) {
			max = d;
		} else if (*s == ')') {
			d--;
		}
	}
	return max;
}

static void test_deep_nesting(void **state)
{
	unsigned path[MIME_MAX_DEPTH + 1];
	struct mime_part_range r;
	struct buf m, meta;
	char *s;
	int i;

	buf_init(&m);
	for (i = 0; i < 5000; i++)
		assert_int_equal(
		    buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i),
		    0);
	assert_int_equal(buf_append_str(&m, "\nleaf\n"), 0);
	assert_valid(m.data, m.len);
	build(m.data, m.len, &meta);
	s = field(&meta, MIME_FIELD_BODYSTRUCTURE);
	assert_int_equal(max_paren_depth(s), MIME_MAX_DEPTH + 2);
	free(s);
	buf_free(&meta);
	for (i = 0; i <= MIME_MAX_DEPTH; i++)
		path[i] = 1;
	assert_int_equal(mime_part_find(m.data, m.len, path, MIME_MAX_DEPTH, &r), 1);
	assert_int_equal(mime_part_find(m.data, m.len, path, MIME_MAX_DEPTH + 1, &r), 0);

	buf_reset(&m);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_append_str(&m, "Subject: x\nContent-Type: message/rfc822\n\n"),
				 0);
	assert_int_equal(buf_append_str(&m, "Subject: last\n\nbody\n"), 0);
	assert_valid(m.data, m.len);
	buf_free(&m);
}

static void test_many_parts(void **state)
{
	struct buf m, meta;
	const uint8_t *v;
	size_t len;
	int i, items;

	buf_init(&m);
	assert_int_equal(buf_append_str(&m, "Content-Type: multipart/mixed; boundary=b\n\n"), 0);
	for (i = 0; i < 3 * MIME_MAX_PARTS; i++)
		assert_int_equal(buf_append_str(&m, "--b\n\nx\n"), 0);
	assert_int_equal(buf_append_str(&m, "--b--\n"), 0);
	build(m.data, m.len, &meta);
	assert_stream_gives(m.data, m.len, &meta);
	assert_int_equal(mime_meta_get(meta.data, meta.len, MIME_FIELD_BODY, &v, &len), 1);
	items = imap_items(v, len);
	assert_int_equal(items, MIME_MAX_PARTS - 1 + 1);
	buf_free(&meta);
	buf_free(&m);
}

/* A 24 MB attachment: sizes are exact and the whole is parsed in place. */
static void test_large_message(void **state)
{
	const size_t big = 24u << 20;
	struct buf m, meta;
	char want[128];
	size_t i;

	buf_init(&m);
	assert_int_equal(buf_append_str(&m, "Content-Type: multipart/mixed; boundary=z\r\n\r\n"
					    "--z\r\nContent-Type: application/octet-stream\r\n"
					    "Content-Transfer-Encoding: base64\r\n\r\n"),
			 0);
	assert_int_equal(buf_reserve(&m, big + 64), 0);
	for (i = 0; i < big; i += 78) {
		memset(m.data + m.len, 'A', 76);
		memcpy(m.data + m.len + 76, "\r\n", 2);
		m.len += 78;
	}
	m.len -= 2; /* the last line break belongs to the delimiter */
	assert_int_equal(buf_append_str(&m, "\r\n--z--\r\n"), 0);
	build(m.data, m.len, &meta);
	snprintf(want, sizeof(want),
		 "((\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" %zu) \"MIXED\")",
		 (big + 77) / 78 * 78 - 2);
	assert_field(&meta, MIME_FIELD_BODY, want);
	buf_free(&meta);
	buf_free(&m);
}

/* ---- the stream ------------------------------------------------------------------ */

static uint64_t fnv64(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len-- > 0) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Generated messages: nested multiparts, digests, message/rfc822 parts,
 * boundaries of 1 to 1100 bytes with odd characters, delimiters with
 * trailing white space or text, missing close delimiters, long lines and
 * body lines that start with "--". Their own generator, so that the
 * messages do not depend on what other tests draw. */
static uint64_t gen_state;

static void gen_append(struct buf *m, const char *s)
{
	assert_int_equal(buf_append_str(m, s), 0);
}

static void gen_part(struct buf *m, unsigned depth, const char *eol)
{
	static const char *const subtypes[] = {"mixed", "digest", "alternative", "related"};
	static const char *const tails[] = {"", " ", "\t ", "x", "--", "-- \t"};
	static const size_t blens[] = {1, 5, 30, 70, 71, 200, 1100};
	static const char bchars[] = "abcXYZ0-_'()+,./:=? ";
	uint32_t r = xrnd(&gen_state, 100), i, n;
	char bnd[1101];
	size_t blen;

	if (depth > 3 || r < 40) {
		switch (xrnd(&gen_state, 3)) {
		case 0:
			gen_append(m, "Content-Type: text/plain; charset=utf-8");
			break;
		case 1:
			gen_append(m, "Content-Type: application/octet-stream");
			gen_append(m, eol);
			gen_append(m, "Content-Transfer-Encoding: base64");
			break;
		default:
			gen_append(m, "X-No-Type: 1");
		}
		gen_append(m, eol);
		gen_append(m, eol);
		for (i = 0, n = xrnd(&gen_state, 6); i < n; i++) {
			switch (xrnd(&gen_state, 6)) {
			case 0:
				for (size_t k = 0; k < 1500; k += 10)
					gen_append(m, "xxxxxxxxxx");
				break;
			case 1:
				gen_append(m, "--not a delimiter");
				break;
			case 2:
				gen_append(m, "bare\rCR");
				break;
			default:
				assert_int_equal(buf_printf(m, "line %u", i), 0);
			}
			if (i + 1 < n)
				gen_append(m, eol);
		}
		return;
	}
	if (r < 55) {
		gen_append(m, "Content-Type: message/rfc822");
		gen_append(m, eol);
		gen_append(m, eol);
		gen_append(m, "From: x@y.example");
		gen_append(m, eol);
		gen_append(m, "Subject: inner");
		gen_append(m, eol);
		gen_part(m, depth + 1, eol);
		return;
	}
	blen = blens[xrnd(&gen_state, N_ELEMENTS(blens))];
	for (i = 0; i < blen; i++)
		bnd[i] = bchars[xrnd(&gen_state, sizeof(bchars) - 1)];
	bnd[0] = bnd[blen - 1] = 'q';
	bnd[blen] = '\0';
	assert_int_equal(buf_printf(m, "Content-Type: multipart/%s; boundary=\"%s\"%s%spreamble%s",
				    subtypes[xrnd(&gen_state, N_ELEMENTS(subtypes))], bnd, eol, eol,
				    eol),
			 0);
	for (i = 0, n = xrnd(&gen_state, 5); i < n; i++) {
		assert_int_equal(buf_printf(m, "--%s%s%s", bnd,
					    tails[xrnd(&gen_state, N_ELEMENTS(tails) - 2)], eol),
				 0);
		if (xrnd(&gen_state, 4) == 0) {
			gen_append(m, eol); /* no Content-Type: in a digest, a message */
			gen_append(m, "Subject: digest part");
			gen_append(m, eol);
			gen_append(m, eol);
			gen_append(m, "text");
		} else {
			gen_part(m, depth + 1, eol);
		}
		gen_append(m, eol);
	}
	if (xrnd(&gen_state, 5) > 0)
		assert_int_equal(buf_printf(m, "--%s%s%sepilogue%s", bnd,
					    tails[4 + xrnd(&gen_state, 2)], eol, eol),
				 0);
}

static void gen_message(struct buf *m)
{
	const char *eol = xrnd(&gen_state, 2) ? "\r\n" : "\n";

	buf_reset(m);
	gen_append(m, "From: a@b.example");
	gen_append(m, eol);
	gen_append(m, "Subject: s");
	gen_append(m, eol);
	gen_append(m, "MIME-Version: 1.0");
	gen_append(m, eol);
	gen_part(m, 0, eol);
}

/* fnv64 of the metadata blob of each fixture, then of each generated message,
 * as built from the whole message in one buffer before the stream existed. */
static const uint64_t stream_digests[] = {
    0x5b16760f7c0382faULL, 0x80a0f22080d07038ULL, 0x322ac37f7d7b76e6ULL, 0x3f73ea8e6c381358ULL,
    0xcf4c035f18829854ULL, 0x2851d9bd6572b3a6ULL, 0x8e89b55c65ab52f4ULL, 0x31269137f7222abeULL,
    0x60930f7cf1f6b7d9ULL, 0xb40b0c65a0f38150ULL, 0x8fbab022f70f5995ULL, 0x89cec796fce87463ULL,
    0x75eda8a6efa5c67bULL, 0x9ce72a9c4c48c0f6ULL, 0x9ff363148eb820eaULL, 0x8a677c8de3a38742ULL,
    0xa0fa5c9692597a92ULL, 0x57f984a218904c70ULL, 0x201fa68776e476c1ULL, 0x67ed2519bc692526ULL,
    0x1f5d044c242eb3fdULL, 0x405a321c30e3a644ULL, 0x156853049c34e310ULL, 0x37fe6cb8b1e095d3ULL,
    0x68fcb604fcecfbd6ULL, 0xc11138f2aeef4d14ULL, 0x90957703b2d4b199ULL, 0x996a01e799600affULL,
    0xa5e28bba13de5076ULL, 0xc4d811f6df894019ULL, 0x97af98b718cac59aULL, 0xdfb272c5f2652578ULL,
    0x5ed17bab2c61dd3cULL, 0xd4a6b454846c97e6ULL, 0x087da4f5ea50b85dULL, 0xd0229f76bfb3d6a2ULL,
    0x35405bb1444a5d11ULL, 0x3587a49d0a704543ULL, 0x942ee0eea10f350cULL, 0x5c8bb5b66c24f35fULL,
    0x65d25f666729baa3ULL, 0x13700ed301d1d33aULL, 0xecb924152cf679dbULL, 0xad4eedade949b791ULL,
    0x834dce607fa2f91bULL, 0x2d0aee2a104e433cULL, 0x7a82eeb052795559ULL, 0x3587a49d0a704543ULL,
    0x6b21103f56ae9046ULL, 0x1be021bc6785afd5ULL, 0x13d51cce9b142f12ULL, 0x92bfeafefbb87e1eULL,
    0x7d4d47ae3a3e98bfULL, 0xd219314ce190bb60ULL, 0x8bdded65c1530812ULL, 0x7d4fa38beffec831ULL,
    0x5dc40509528b21c6ULL, 0x20f82b49620d220cULL, 0x764dc58fe5fd0715ULL, 0x24bb510a6ed24f24ULL,
    0x7d705d5d90826e7fULL, 0xa5adc043291cb7fcULL, 0x6ee77788fcb6ec0aULL, 0xc1e8ad49507535cdULL,
    0xd2e728281d937563ULL, 0x8f7d8a07edba621dULL, 0x21c4bd4f8edd6581ULL, 0x66b8bad4d6720117ULL,
    0x9d9a8a888ff28b6bULL, 0x13d51cce9b142f12ULL, 0xd1d5a36684bb6d67ULL, 0x7ab6b73b3fae55eeULL,
    0xe24af19145f7826dULL, 0xf3f853c61c79de71ULL, 0x580fc058465f9d1fULL, 0x6774cd6225af2bedULL,
    0xa46a3820791bf147ULL, 0xa7659f47a6575165ULL, 0xf96438de7cc7b984ULL, 0x6c99f9249b98b55dULL,
    0x355440c4b183ec28ULL, 0xad4eedade949b791ULL, 0xc069851314424a32ULL, 0x800b78dbc899bcceULL,
    0x5d918e27bf41e6fbULL, 0x0cffe8d16cefe1bbULL, 0xe8c01048a2aaa886ULL, 0x40962a661d493571ULL,
    0xda22c90af083682bULL, 0xddad2467b93cbb38ULL, 0xa535d310cf25fde2ULL, 0x1b2f2422d2abca6cULL,
    0xa37eecb1ea9feb5aULL, 0xd4b20020c32ea608ULL, 0x9ecb3d37ccfc942fULL, 0x55a19d86b13f5f97ULL,
    0x46b274594e46f846ULL, 0x759ce723f6638f0dULL, 0x3e0701fbfe33b57aULL, 0xdecbe9891f6e749eULL,
    0xe2f24020a1e076e9ULL, 0x1eee334348d0f427ULL, 0x59811a332331cb89ULL, 0x237596d5a723a71bULL,
    0xb7b72cb229d17d5dULL, 0xb4d3badc97f6b0c3ULL, 0xae86d8c8a5efdca8ULL, 0x2eda1d38127cdd06ULL,
    0x04a8850591803649ULL, 0xd6344c73666f9277ULL, 0xfe1654a87b6fcb12ULL, 0xf424d4235a2ad54cULL,
    0x5f6a8970ea49dadbULL};

static void test_stream_splits(void **state)
{
	size_t i, n_fixtures = N_ELEMENTS(fixtures);
	struct buf m, meta;

	gen_state = 0x2545f4914f6cdd1dULL;
	buf_init(&m);
	for (i = 0; i < N_ELEMENTS(stream_digests); i++) {
		if (i < n_fixtures) {
			size_t len = strlen(fixtures[i].msg);

			if (strstr(fixtures[i].name, "NUL") != NULL)
				len += strlen(fixtures[i].msg + len + 1) + 1;
			buf_reset(&m);
			assert_int_equal(buf_append(&m, fixtures[i].msg, len), 0);
		} else {
			gen_message(&m);
		}
		build(m.data, m.len, &meta);
		if (fnv64(meta.data, meta.len) != stream_digests[i])
			print_error("message %zu: %016llx\n", i,
				    (unsigned long long)fnv64(meta.data, meta.len));
		assert_true(fnv64(meta.data, meta.len) == stream_digests[i]);
		assert_stream_gives(m.data, m.len, &meta);
		buf_free(&meta);
	}
	buf_free(&m);
}

/* A delimiter line longer than what the stream keeps of it: "--ab", 2000
 * spaces and "x" is not exactly the outer delimiter, so the inner boundary
 * "a" (a prefix) takes it; with only white space after the spaces it is
 * the outer delimiter. Fed whole and in pieces. */
static void test_stream_long_delimiters(void **state)
{
	static const char *const want[] = {
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0) \"MIXED\") "
	    "\"MIXED\")",
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0) \"MIXED\")"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0) \"MIXED\")",
	};
	static const char *const ends[] = {"x\n", "\t\r\n"};
	struct buf m, meta;
	size_t i;

	buf_init(&m);
	for (i = 0; i < N_ELEMENTS(want); i++) {
		const char *eol = i == 0 ? "\n" : "\r\n";

		buf_reset(&m);
		assert_int_equal(
		    buf_printf(&m,
			       "Content-Type: multipart/mixed; boundary=ab%s%s--ab%s"
			       "Content-Type: multipart/mixed; boundary=a%s%s--a%s%sone%s"
			       "--ab%2000s%s%stwo%s--ab--%s",
			       eol, eol, eol, eol, eol, eol, eol, eol, "", ends[i], eol, eol, eol),
		    0);
		build(m.data, m.len, &meta);
		assert_field(&meta, MIME_FIELD_BODY, want[i]);
		assert_stream_gives(m.data, m.len, &meta);
		buf_free(&meta);
	}
	buf_free(&m);
}

/* A 20 MB message with attachments, fed in 64 KiB pieces: the stream never
 * holds more than a few KiB, and says what the whole message gives. */
static void test_stream_memory(void **state)
{
	const size_t piece = 64u << 10, big = 10u << 20;
	struct mime_meta_stream *ms = mime_meta_stream_new();
	struct buf m, meta, want;
	size_t i, pos, peak = 0;
	char body[512];

	assert_non_null(ms);
	buf_init(&m);
	gen_append(&m, "From: a@b.example\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
		       "Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\n"
		       "--=_outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n");
	for (i = 0; i < 2; i++) {
		gen_append(&m, "--=_outer\r\nContent-Type: application/octet-stream\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\n");
		assert_int_equal(buf_reserve(&m, big + 128), 0);
		for (pos = 0; pos < big; pos += 78) {
			memset(m.data + m.len, 'A' + (int)i, 76);
			memcpy(m.data + m.len + 76, "\r\n", 2);
			m.len += 78;
		}
	}
	gen_append(&m, "--=_outer\r\nContent-Type: message/rfc822\r\n\r\n"
		       "Subject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
		       "--in\r\n\r\nplain\r\n--in--\r\n\r\n--=_outer--\r\n");
	/* one line of 1 MB without a line break: only its first bytes are kept */
	assert_int_equal(buf_reserve(&m, 1u << 20), 0);
	memset(m.data + m.len, '-', 1u << 20);
	m.len += 1u << 20;
	m.data[m.len] = '\0';
	assert_true(m.len > 20u << 20);

	for (pos = 0; pos < m.len; pos += piece) {
		size_t n = m.len - pos < piece ? m.len - pos : piece;

		assert_int_equal(mime_meta_stream_write(ms, m.data + pos, n), 0);
		if (mime_meta_stream_memory(ms) > peak)
			peak = mime_meta_stream_memory(ms);
	}
	buf_init(&meta);
	assert_int_equal(mime_meta_stream_finish(ms, &meta), 0);
	mime_meta_stream_free(&ms);
	print_message("20 MB message: peak stream memory %zu bytes\n", peak);
	assert_true(peak < 8192);
	build(m.data, m.len, &want);
	assert_int_equal(meta.len, want.len);
	assert_memory_equal(meta.data, want.data, want.len);
	snprintf(body, sizeof(body),
		 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 0)"
		 "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" %zu)"
		 "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" %zu)"
		 "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 91 "
		 "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		 "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 0) "
		 "\"ALTERNATIVE\") 7) \"MIXED\")",
		 (big + 77) / 78 * 78 - 2, (big + 77) / 78 * 78 - 2);
	assert_field(&meta, MIME_FIELD_BODY, body);
	buf_free(&want);
	buf_free(&meta);
	buf_free(&m);
}

/* Feeds MSG in 64 KiB pieces; returns the stream's peak memory. META is
 * what mime_meta_build() gives too. */
static size_t stream_peak(const struct buf *m, struct buf *meta)
{
	struct mime_meta_stream *ms = mime_meta_stream_new();
	size_t pos, peak = 0;
	struct buf whole;

	assert_non_null(ms);
	for (pos = 0; pos < m->len; pos += 65536) {
		size_t n = m->len - pos < 65536 ? m->len - pos : 65536;

		assert_int_equal(mime_meta_stream_write(ms, m->data + pos, n), 0);
		if (mime_meta_stream_memory(ms) > peak)
			peak = mime_meta_stream_memory(ms);
	}
	buf_init(meta);
	assert_int_equal(mime_meta_stream_finish(ms, meta), 0);
	mime_meta_stream_free(&ms);
	build(m->data, m->len, &whole);
	assert_int_equal(whole.len, meta->len);
	assert_memory_equal(whole.data, meta->data, meta->len);
	buf_free(&whole);
	return peak;
}

/* Header sections past MIME_HEADERS_MAX_BYTES: memory stays bounded, the
 * HEADER field is the lines that fitted, the output stays valid IMAP and
 * sizes stay exact. */
static void test_stream_header_flood(void **state)
{
	const size_t bound = MIME_HEADERS_MAX_BYTES + (MIME_HEADERS_MAX_BYTES >> 2);
	struct mime_part_range r;
	static const unsigned p2[] = {2};
	struct buf m, meta;
	size_t peak, i;
	char *s;

	/* a 3 MiB root header: the part over the cap is dropped, so is the
	 * Content-Type after it */
	buf_init(&m);
	gen_append(&m, "Subject: flood\r\n");
	for (i = 0; m.len < 3u << 20; i++)
		assert_int_equal(buf_printf(&m, "X-Flood-%zu: %0100zu\r\n", i, i), 0);
	gen_append(&m,
		   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n");
	peak = stream_peak(&m, &meta);
	print_message("3 MiB header: peak stream memory %zu bytes\n", peak);
	assert_true(peak < bound);
	assert_meta_valid(&meta, m.len);
	s = field(&meta, MIME_FIELD_HEADER);
	assert_true(strlen(s) < MIME_HEADERS_MAX_BYTES && strlen(s) > MIME_HEADERS_MAX_BYTES - 200);
	assert_memory_equal(s, m.data, strlen(s));
	assert_memory_equal(s + strlen(s) - 2, "\r\n", 2); /* whole lines */
	free(s);
	assert_field(&meta, MIME_FIELD_ENVELOPE, "(NIL \"flood\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_field(&meta, MIME_FIELD_BODY,
		     "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 19 4)");
	buf_free(&meta);

	/* many parts of 64 KiB headers: the later ones keep no header and are
	 * text/plain, with the sizes mime_part_find gives */
	buf_reset(&m);
	gen_append(&m, "Content-Type: multipart/mixed; boundary=b\n\n");
	for (i = 0; i < 40; i++) {
		gen_append(&m, "--b\nContent-Type: application/pdf\n");
		for (size_t k = 0; k < 64; k++)
			assert_int_equal(buf_printf(&m, "X-Pad: %01015zu\n", k), 0);
		assert_int_equal(buf_printf(&m, "\nbody %zu\n", i), 0);
	}
	gen_append(&m, "--b--\n");
	peak = stream_peak(&m, &meta);
	assert_true(peak < bound);
	assert_meta_valid(&meta, m.len);
	s = field(&meta, MIME_FIELD_BODY);
	assert_non_null(strstr(s, "(\"APPLICATION\" \"PDF\" NIL NIL NIL \"7BIT\" 6)"));
	assert_non_null(strstr(s, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
				  "\"7BIT\" 7 0)"));
	free(s);
	assert_int_equal(mime_part_find(m.data, m.len, p2, 1, &r), 1);
	assert_int_equal(r.end_off - r.body_off, 6);
	buf_free(&meta);

	/* one header line of 3 MiB without a break */
	buf_reset(&m);
	gen_append(&m, "Subject: x\nX-Long: ");
	assert_int_equal(buf_reserve(&m, 3u << 20), 0);
	memset(m.data + m.len, 'y', 3u << 20);
	m.len += 3u << 20;
	m.data[m.len] = '\0';
	peak = stream_peak(&m, &meta);
	assert_true(peak < bound);
	assert_meta_valid(&meta, m.len);
	assert_field(&meta, MIME_FIELD_HEADER, "Subject: x\n");
	buf_free(&meta);
	buf_free(&m);
}

static int group_setup(void **state)
{
	mime_init();
	mime_init();
	return 0;
}

static int group_teardown(void **state)
{
	g_mime_shutdown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixtures),
	    cmocka_unit_test(test_rfc3501_body_example),
	    cmocka_unit_test(test_header_and_lines),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_gmime_agrees),
	    cmocka_unit_test(test_meta_get),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_many_parts),
	    cmocka_unit_test(test_large_message),
	    cmocka_unit_test(test_stream_splits),
	    cmocka_unit_test(test_stream_memory),
	    cmocka_unit_test(test_stream_header_flood),
	    cmocka_unit_test(test_stream_long_delimiters),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
