/* fuzz-smtp.c — the SMTP command parser (smtp-parse.c) and the DATA decoder
 * (smtp_dot_decode) on raw client bytes.
 *
 * Trust boundary: every byte here comes from an unauthenticated client. The
 * input is used three ways: as one command line; as a client's byte stream,
 * split into lines the way the session reads them (at LF, one trailing CR
 * dropped, lines over the command limit skipped), where DATA switches to the
 * dot decoder and BDAT skips its chunk; and as a DATA body. Checked besides
 * memory safety:
 *   - every error is a complete SMTP reply ("5yz x.y.z text");
 *   - an accepted path holds no control bytes, fits SMTP_PATH_MAX with its
 *     brackets, says utf8 exactly when it holds 8-bit bytes, and parses back
 *     to itself (the canonical form is stable);
 *   - the dot decoder ends exactly at the first CRLF "." CRLF (or a leading
 *     "." CRLF), never grows the data, does not depend on how the input is
 *     split, and re-stuffing its output decodes to the same bytes and flags. */
#include "smtp/smtp.h"

#include "fuzz.h"

#include <ctype.h>

#define FUZZ_COMMAND_LINE_MAX 512 /* [smtp] max_command_line default, CRLF included */
#define FUZZ_DATA_LINE_MAX    80
#define FUZZ_STREAM_LINES_MAX 256

static void fuzz_check_reply(const char *reply)
{
	FUZZ_CHECK(reply != NULL);
	FUZZ_CHECK((reply[0] == '4' || reply[0] == '5') && isdigit((unsigned char)reply[1]) &&
		   isdigit((unsigned char)reply[2]) && reply[3] == ' ');
	FUZZ_CHECK(reply[4] == reply[0] && reply[5] == '.');
	for (const char *c = reply; *c != '\0'; c++)
		FUZZ_CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
}

static int fuzz_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static void fuzz_check_path(const struct smtp_path *p, int reverse)
{
	size_t len = strlen(p->address);
	char wire[SMTP_PATH_MAX + 8];
	const char *s = wire;
	struct smtp_path again;

	for (const char *c = p->address; *c != '\0'; c++)
		FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
	FUZZ_CHECK(len + 2 <= SMTP_PATH_MAX);
	FUZZ_CHECK(p->utf8 == (unsigned)fuzz_has_8bit(p->address));
	if (len == 0) {
		FUZZ_CHECK(reverse && !p->postmaster);
	} else if (p->postmaster) {
		FUZZ_CHECK(!reverse && len == 10 && p->local_len == 10);
	} else {
		FUZZ_CHECK(p->local_len > 0 && p->local_len < len &&
			   p->address[p->local_len] == '@');
		FUZZ_CHECK(p->local_len <= SMTP_LOCAL_PART_MAX + 2);
		if (p->address[0] == '"') {
			/* Quoted: only '"' and '\' escaped, nothing after the quote. */
			size_t i;

			for (i = 1; i < p->local_len - 1; i++) {
				if (p->address[i] == '\\')
					FUZZ_CHECK(p->address[++i] == '"' || p->address[i] == '\\');
				else
					FUZZ_CHECK(p->address[i] != '"');
			}
			FUZZ_CHECK(i == p->local_len - 1 && p->address[i] == '"');
		}
	}
	/* The canonical form parses back to itself. */
	snprintf(wire, sizeof(wire), "<%s>", p->address);
	FUZZ_CHECK(smtp_parse_path(&s, reverse, &again) == 0);
	FUZZ_CHECK(*s == '\0');
	FUZZ_CHECK(strcmp(again.address, p->address) == 0);
	FUZZ_CHECK(again.local_len == p->local_len && again.utf8 == p->utf8 &&
		   again.postmaster == p->postmaster);
}

static void fuzz_parse_args(const char *args)
{
	char domain[SMTP_DOMAIN_MAX + 1];
	const char *error = NULL;
	struct smtp_mail_params mail;
	struct smtp_path path;
	uint64_t n;
	int last;

	if (smtp_parse_helo(args, domain, sizeof(domain), &error) == 0) {
		size_t dlen = strlen(domain);

		FUZZ_CHECK(dlen > 0 && dlen <= SMTP_DOMAIN_MAX);
		FUZZ_CHECK(strncmp(args, domain, dlen) == 0);
		FUZZ_CHECK(args[dlen] == '\0' || args[dlen] == ' ');
		FUZZ_CHECK(strchr(domain, ' ') == NULL && strchr(domain, '\t') == NULL);
	} else {
		fuzz_check_reply(error);
	}
	for (int esmtp = 0; esmtp < 2; esmtp++) {
		error = NULL;
		if (smtp_parse_mail(args, esmtp, &mail, &error) == 0) {
			fuzz_check_path(&mail.path, 1);
			FUZZ_CHECK(!mail.path.utf8 || mail.smtputf8);
			FUZZ_CHECK(mail.body == SMTP_BODY_7BIT || mail.body == SMTP_BODY_8BITMIME);
			FUZZ_CHECK(mail.size_given || mail.size == 0);
			if (!esmtp)
				FUZZ_CHECK(!mail.size_given && !mail.smtputf8 &&
					   mail.body == SMTP_BODY_7BIT);
		} else {
			fuzz_check_reply(error);
		}
	}
	for (int utf8 = 0; utf8 < 2; utf8++) {
		error = NULL;
		if (smtp_parse_rcpt(args, utf8, &path, &error) == 0) {
			fuzz_check_path(&path, 0);
			FUZZ_CHECK(path.address[0] != '\0');
			FUZZ_CHECK(utf8 || !path.utf8);
		} else {
			fuzz_check_reply(error);
		}
	}
	error = NULL;
	if (smtp_parse_bdat(args, &n, &last, &error) == 0)
		FUZZ_CHECK(last == 0 || last == 1);
	else
		fuzz_check_reply(error);
}

/* One command line (no line end). Returns the verb's kind for the stream:
 * 1 for DATA, 2 for an accepted BDAT (with *bdat_r), else 0. */
static int fuzz_line(const char *line, size_t len, uint64_t *bdat_r)
{
	char verb[SMTP_VERB_MAX + 1];
	const char *args, *error = NULL;
	const char *bdat_error = NULL;
	int last;

	if (smtp_parse_line(line, len, verb, &args, &error) < 0) {
		fuzz_check_reply(error);
		return 0;
	}
	FUZZ_CHECK(verb[0] != '\0' && strlen(verb) <= SMTP_VERB_MAX);
	for (const char *v = verb; *v != '\0'; v++)
		FUZZ_CHECK(*v >= 'A' && *v <= 'Z');
	FUZZ_CHECK(args >= line + strlen(verb) && args <= line + len);
	FUZZ_CHECK(args == line + len || args[-1] == ' ');
	fuzz_parse_args(args);
	if (strcmp(verb, "DATA") == 0 && args[0] == '\0')
		return 1;
	if (strcmp(verb, "BDAT") == 0 && smtp_parse_bdat(args, bdat_r, &last, &bdat_error) == 0)
		return 2;
	return 0;
}

/* Where the dot decoder must stop in DATA: after the first "." CRLF that
 * starts the data or follows a CRLF; 0 if there is none. */
static size_t fuzz_dot_end(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 3 <= size; i++) {
		if (memcmp(data + i, ".\r\n", 3) == 0 &&
		    (i == 0 || (i >= 2 && data[i - 2] == '\r' && data[i - 1] == '\n')))
			return i + 3;
	}
	return 0;
}

struct fuzz_dot_result {
	struct buf out;
	size_t used;
	unsigned flags;
	int done;
};

static void fuzz_decode(const uint8_t *data, size_t size, size_t step, size_t max_line,
			struct fuzz_dot_result *r)
{
	struct smtp_dot_decoder d;
	size_t used;

	buf_init(&r->out);
	r->used = 0;
	r->done = 0;
	smtp_dot_init(&d, max_line);
	while (r->used < size && !r->done) {
		size_t len = size - r->used < step ? size - r->used : step;

		r->done = smtp_dot_decode(&d, data + r->used, len, &r->out, &used);
		FUZZ_CHECK(used <= len);
		FUZZ_CHECK(r->done || used == len);
		r->used += used;
	}
	r->flags = d.flags;
}

/* Dot-stuffs OUT (every line starting with "." gets another) and appends
 * the end-of-data line. */
static void fuzz_stuff(const struct buf *out, struct buf *wire)
{
	int bol = 1;

	buf_init(wire);
	for (size_t i = 0; i < out->len; i++) {
		if (bol && out->data[i] == '.')
			FUZZ_CHECK(buf_append(wire, ".", 1) == 0);
		FUZZ_CHECK(buf_append(wire, out->data + i, 1) == 0);
		bol = out->data[i] == '\n' && i > 0 && out->data[i - 1] == '\r';
	}
	FUZZ_CHECK(buf_append(wire, ".\r\n", 3) == 0);
}

/* Decodes DATA (SIZE bytes) whole and in pieces; returns the bytes used. */
static size_t fuzz_data(const uint8_t *data, size_t size)
{
	static const size_t steps[] = {1, 7, 4096};
	struct fuzz_dot_result whole, piece, again;
	size_t end = fuzz_dot_end(data, size);
	struct buf wire;

	fuzz_decode(data, size, size ? size : 1, FUZZ_DATA_LINE_MAX, &whole);
	FUZZ_CHECK(whole.done == (end != 0));
	FUZZ_CHECK(whole.used == (end != 0 ? end : size));
	FUZZ_CHECK(whole.out.len <= whole.used);
	for (size_t i = 0; i < N_ELEMENTS(steps); i++) {
		if (steps[i] >= size)
			break;
		fuzz_decode(data, size, steps[i], FUZZ_DATA_LINE_MAX, &piece);
		FUZZ_CHECK(piece.used == whole.used && piece.done == whole.done &&
			   piece.flags == whole.flags);
		FUZZ_CHECK(
		    fuzz_mem_eq(piece.out.data, piece.out.len, whole.out.data, whole.out.len));
		buf_free(&piece.out);
	}
	if (whole.done) {
		/* A complete message ends its last line with CRLF (or is empty). */
		FUZZ_CHECK(whole.out.len == 0 ||
			   (whole.out.len >= 2 && whole.out.data[whole.out.len - 2] == '\r' &&
			    whole.out.data[whole.out.len - 1] == '\n'));
		fuzz_stuff(&whole.out, &wire);
		fuzz_decode(wire.data, wire.len, wire.len, FUZZ_DATA_LINE_MAX, &again);
		FUZZ_CHECK(again.done && again.used == wire.len && again.flags == whole.flags);
		FUZZ_CHECK(
		    fuzz_mem_eq(again.out.data, again.out.len, whole.out.data, whole.out.len));
		buf_free(&again.out);
		buf_free(&wire);
	}
	buf_free(&whole.out);
	return end != 0 ? end : size;
}

/* The input as a client's stream of commands, DATA bodies and BDAT chunks. */
static void fuzz_stream(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	for (unsigned lines = 0; pos < size && lines < FUZZ_STREAM_LINES_MAX; lines++) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len, next;
		uint64_t bdat = 0;
		char *line;
		int kind;

		if (nl == NULL)
			break; /* no complete line: the session waits for more */
		next = (size_t)(nl - data) + 1;
		len = next - pos - 1;
		if (len > 0 && data[pos + len - 1] == '\r')
			len--;
		if (next - pos > FUZZ_COMMAND_LINE_MAX) {
			pos = next; /* "500 Line too long", skipped */
			continue;
		}
		line = xmalloc(len + 1);
		memcpy(line, data + pos, len);
		line[len] = '\0';
		kind = fuzz_line(line, len, &bdat);
		free(line);
		pos = next;
		if (kind == 1)
			pos += fuzz_data(data + pos, size - pos);
		else if (kind == 2)
			pos += bdat < size - pos ? (size_t)bdat : size - pos;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = xmalloc(size + 1);
	uint64_t bdat;

	memcpy(line, data, size);
	line[size] = '\0';
	(void)fuzz_line(line, size, &bdat);
	free(line);
	fuzz_stream(data, size);
	(void)fuzz_data(data, size);
	return 0;
}
