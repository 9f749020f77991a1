/* fuzz-imap.c — the pure IMAP syntax of imap-parser.c and imap-utf7.c:
 * command lines, arguments with literals and lists, literal announcements,
 * sequence sets, modified UTF-7 and mailbox names.
 *
 * Trust boundary: every byte comes from an IMAP client, before or after
 * login. The first line of the input is a command line ("tag SP name SP
 * args"), the arguments run on to the end (literals span lines); the input
 * up to its first NUL is also used as a sequence set, a mailbox name and a
 * UTF-7 / UTF-8 name. Checked besides memory safety:
 *   - parsed arguments are within the depth and count limits, and writing
 *     them back in canonical wire form parses to the same arguments;
 *   - a literal announcement is reported only for "{N}" / "{N+}" at the end
 *     of the line, with N exactly the digits' value and at most the limit;
 *   - a sequence set comes out sorted, merged and within 1..2^32-1, and
 *     imap_seqset_contains / imap_seqset_format agree with its ranges;
 *   - modified UTF-7 has one spelling per name: whatever decodes encodes back
 *     to the same bytes, whatever encodes decodes back;
 *   - a canonical mailbox name is the name (INBOX upper-cased), and checking
 *     it again gives itself. */
#include "imap/imap-parser.h"

#include "fuzz.h"

#include <strings.h>

#define FUZZ_LITERAL_LIMIT  (64 * 1024)
#define FUZZ_SEQ_FORMAT_MAX 4096

/* ---- arguments ------------------------------------------------------------------------ */

static void write_args(const struct imap_arg *list, size_t count, struct buf *out)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &list[i];

		if (i > 0)
			FUZZ_CHECK(buf_append(out, " ", 1) == 0);
		switch (a->type) {
		case IMAP_ARG_ATOM:
			FUZZ_CHECK(buf_append(out, a->str, a->len) == 0);
			break;
		case IMAP_ARG_STRING:
			FUZZ_CHECK(buf_append(out, "\"", 1) == 0);
			for (size_t k = 0; k < a->len; k++) {
				if (a->str[k] == '"' || a->str[k] == '\\')
					FUZZ_CHECK(buf_append(out, "\\", 1) == 0);
				FUZZ_CHECK(buf_append(out, &a->str[k], 1) == 0);
			}
			FUZZ_CHECK(buf_append(out, "\"", 1) == 0);
			break;
		case IMAP_ARG_LITERAL:
			FUZZ_CHECK(buf_printf(out, "{%zu}\r\n", a->len) == 0);
			FUZZ_CHECK(buf_append(out, a->str, a->len) == 0);
			break;
		case IMAP_ARG_LIST:
			FUZZ_CHECK(buf_append(out, "(", 1) == 0);
			write_args(a->list, a->count, out);
			FUZZ_CHECK(buf_append(out, ")", 1) == 0);
			break;
		}
	}
}

/* Checks the arguments' shape; returns how many there are in all. */
static size_t check_args(const struct imap_arg *list, size_t count, unsigned depth)
{
	size_t total = count;

	FUZZ_CHECK(depth <= IMAP_LIST_DEPTH_MAX);
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &list[i];

		if (a->type == IMAP_ARG_LIST) {
			FUZZ_CHECK(a->str == NULL);
			FUZZ_CHECK(imap_arg_string(a) == NULL);
			total += check_args(a->list, a->count, depth + 1);
			continue;
		}
		FUZZ_CHECK(a->str != NULL && a->str[a->len] == '\0' && a->count == 0);
		if (a->type == IMAP_ARG_ATOM) {
			FUZZ_CHECK(a->len > 0);
			FUZZ_CHECK(memchr(a->str, '\r', a->len) == NULL &&
				   memchr(a->str, '\n', a->len) == NULL &&
				   memchr(a->str, '\0', a->len) == NULL);
		} else if (a->type == IMAP_ARG_STRING) {
			FUZZ_CHECK(memchr(a->str, '\r', a->len) == NULL &&
				   memchr(a->str, '\n', a->len) == NULL &&
				   memchr(a->str, '\0', a->len) == NULL);
		}
		FUZZ_CHECK((imap_arg_string(a) != NULL) == (strlen(a->str) == a->len));
	}
	return total;
}

static int same_args(const struct imap_arg *x, size_t nx, const struct imap_arg *y, size_t ny)
{
	if (nx != ny)
		return 0;
	for (size_t i = 0; i < nx; i++) {
		if (x[i].type != y[i].type)
			return 0;
		if (x[i].type == IMAP_ARG_LIST) {
			if (!same_args(x[i].list, x[i].count, y[i].list, y[i].count))
				return 0;
		} else if (!fuzz_mem_eq(x[i].str, x[i].len, y[i].str, y[i].len)) {
			return 0;
		}
	}
	return 1;
}

static void fuzz_args(const uint8_t *data, size_t size)
{
	struct imap_args args, again;
	const char *error = NULL;
	struct buf wire;

	if (imap_args_parse(data, size, &args, &error) < 0) {
		FUZZ_CHECK(error != NULL);
		imap_args_free(&args);
		return;
	}
	FUZZ_CHECK(check_args(args.list, args.count, 0) <= IMAP_ARGS_MAX);
	buf_init(&wire);
	write_args(args.list, args.count, &wire);
	FUZZ_CHECK(imap_args_parse(wire.data, wire.len, &again, &error) == 0);
	FUZZ_CHECK(same_args(args.list, args.count, again.list, again.count));
	imap_args_free(&again);
	imap_args_free(&args);
	FUZZ_CHECK(args.list == NULL && args.count == 0);
	buf_free(&wire);
}

/* ---- command lines and literal announcements --------------------------------------------- */

static void fuzz_literal_tail(const uint8_t *line, size_t len, uint64_t max)
{
	uint64_t n = 0, want = 0;
	int nonsync = -1, r = imap_literal_tail(line, len, max, &n, &nonsync);
	size_t end, i;

	FUZZ_CHECK(r >= -1 && r <= 1);
	if (r != 1)
		return;
	FUZZ_CHECK(len >= 3 && line[len - 1] == '}');
	end = len - 1;
	FUZZ_CHECK(nonsync == (line[end - 1] == '+'));
	if (nonsync)
		end--;
	for (i = end; i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9'; i--)
		;
	FUZZ_CHECK(i > 0 && line[i - 1] == '{' && i < end);
	for (size_t k = i; k < end; k++) {
		uint64_t d = (uint64_t)(line[k] - '0');

		/* The announced size is the number written, never a wrapped one. */
		FUZZ_CHECK(want <= (UINT64_MAX - d) / 10);
		want = want * 10 + d;
	}
	FUZZ_CHECK(n == want && n <= max);
}

static void fuzz_command(const uint8_t *data, size_t size)
{
	const uint8_t *crlf = memmem(data, size, "\r\n", 2);
	size_t len = crlf != NULL ? (size_t)(crlf - data) : size, rest = 0;
	char tag[IMAP_TAG_MAX], name[32];
	const char *error = NULL;
	int r;

	fuzz_literal_tail(data, len, FUZZ_LITERAL_LIMIT);
	fuzz_literal_tail(data, len, UINT64_MAX);
	r = imap_command_split(data, len, tag, name, &rest, &error);
	if (r < 0) {
		FUZZ_CHECK(error != NULL && (r == -1 || r == -2));
		return;
	}
	FUZZ_CHECK(tag[0] != '\0' && strlen(tag) < IMAP_TAG_MAX);
	FUZZ_CHECK(strncmp((const char *)data, tag, strlen(tag)) == 0);
	FUZZ_CHECK(strpbrk(tag, " (){\"%*]\\+") == NULL);
	FUZZ_CHECK(name[0] != '\0' && strlen(name) < sizeof(name));
	for (const char *c = name; *c != '\0'; c++)
		FUZZ_CHECK((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			   (*c >= '0' && *c <= '9') || *c == '-' || *c == '.');
	FUZZ_CHECK(rest <= len);
	/* The arguments run on past the line (literals). */
	fuzz_args(data + rest, size - rest);
}

/* ---- sequence sets ---------------------------------------------------------------------- */

static void fuzz_seqset(const char *s, uint32_t star)
{
	struct imap_seqset set, again;
	const char *error = NULL;
	uint64_t total = 0;

	if (imap_seqset_parse(s, star, &set, &error) < 0) {
		FUZZ_CHECK(error != NULL && set.ranges == NULL && set.count == 0);
		return;
	}
	FUZZ_CHECK(set.count > 0);
	for (size_t i = 0; i < set.count; i++) {
		const struct imap_range *r = &set.ranges[i];

		FUZZ_CHECK(r->lo >= 1 && r->lo <= r->hi);
		if (i > 0)
			FUZZ_CHECK((uint64_t)r->lo > (uint64_t)set.ranges[i - 1].hi + 1);
		FUZZ_CHECK(imap_seqset_contains(&set, r->lo) && imap_seqset_contains(&set, r->hi));
		FUZZ_CHECK(!imap_seqset_contains(&set, r->lo - 1));
		if (r->hi < UINT32_MAX)
			FUZZ_CHECK(!imap_seqset_contains(&set, r->hi + 1));
		total += (uint64_t)r->hi - r->lo + 1;
	}
	if (total <= FUZZ_SEQ_FORMAT_MAX) {
		uint32_t *nums = xmalloc((size_t)total * sizeof(*nums));
		struct buf out;
		size_t n = 0;

		for (size_t i = 0; i < set.count; i++)
			for (uint64_t v = set.ranges[i].lo; v <= set.ranges[i].hi; v++)
				nums[n++] = (uint32_t)v;
		buf_init(&out);
		FUZZ_CHECK(imap_seqset_format(nums, n, &out) == 0);
		FUZZ_CHECK(imap_seqset_parse(buf_cstr(&out), star, &again, &error) == 0);
		FUZZ_CHECK(again.count == set.count &&
			   memcmp(again.ranges, set.ranges, set.count * sizeof(*set.ranges)) == 0);
		imap_seqset_free(&again);
		buf_free(&out);
		free(nums);
	}
	imap_seqset_free(&set);
}

/* ---- mailbox names ----------------------------------------------------------------------- */

static void fuzz_names(const char *s)
{
	struct buf utf8, utf7, back;
	const char *error = NULL;
	char *canon = NULL, *again = NULL;
	size_t len = strlen(s);

	buf_init(&utf8);
	buf_init(&utf7);
	buf_init(&back);
	if (imap_utf7_to_utf8(s, &utf8) == 0) {
		FUZZ_CHECK(imap_utf8_valid(utf8.data, utf8.len) == 0);
		FUZZ_CHECK(strlen(buf_cstr(&utf8)) == utf8.len);
		FUZZ_CHECK(imap_utf8_to_utf7(buf_cstr(&utf8), &back) == 0);
		FUZZ_CHECK(fuzz_mem_eq(back.data, back.len, s, len));
	}
	buf_reset(&back);
	if (imap_utf8_to_utf7(s, &utf7) == 0) {
		FUZZ_CHECK(imap_utf8_valid((const uint8_t *)s, len) == 0);
		for (size_t i = 0; i < utf7.len; i++)
			FUZZ_CHECK(utf7.data[i] >= 0x20 && utf7.data[i] <= 0x7e);
		FUZZ_CHECK(imap_utf7_to_utf8(buf_cstr(&utf7), &back) == 0);
		FUZZ_CHECK(fuzz_mem_eq(back.data, back.len, s, len));
	} else {
		/* Refused: not UTF-8, or it holds a C0/C1 control character. */
		int control = 0;

		for (size_t i = 0; i < len; i++)
			if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] == 0x7f ||
			    ((uint8_t)s[i] == 0xc2 && i + 1 < len && (uint8_t)s[i + 1] >= 0x80 &&
			     (uint8_t)s[i + 1] <= 0x9f))
				control = 1;
		FUZZ_CHECK(control || imap_utf8_valid((const uint8_t *)s, len) < 0);
	}
	if (imap_mailbox_name_check(s, &canon, &error) == 0) {
		FUZZ_CHECK(strlen(canon) == len && len > 0 && len <= IMAP_MAILBOX_NAME_MAX);
		if (strncasecmp(s, "INBOX", 5) == 0 && (s[5] == '\0' || s[5] == '/'))
			FUZZ_CHECK(strncmp(canon, "INBOX", 5) == 0 &&
				   strcmp(canon + 5, s + 5) == 0);
		else
			FUZZ_CHECK(strcmp(canon, s) == 0);
		FUZZ_CHECK(imap_mailbox_name_check(canon, &again, &error) == 0);
		FUZZ_CHECK(strcmp(again, canon) == 0);
		free(again);
		free(canon);
	} else {
		FUZZ_CHECK(error != NULL);
	}
	buf_free(&utf8);
	buf_free(&utf7);
	buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_command(data, size);
	fuzz_args(data, size);
	fuzz_seqset(s, size > 0 ? (uint32_t)data[size - 1] * 1000003u : 0);
	fuzz_names(s);
	free(s);
	return 0;
}
