/* mime-envelope.c — the IMAP ENVELOPE of a header section (RFC 3501 7.4.2).
 *
 * Trust boundary: the header section is untrusted. Strings are returned as
 * they appear in the header (unfolded, RFC 2047 words left encoded, the way
 * IMAP servers traditionally do); addresses are parsed with an RFC 5322
 * parser that accepts the obsolete syntax and never fails: whatever cannot be
 * parsed is skipped or reported with the MISSING_MAILBOX / MISSING_DOMAIN
 * placeholders, so that a host is NIL only in group markers. */
#include "mime/mime-private.h"

#include <string.h>

enum env_field {
	F_DATE,
	F_SUBJECT,
	F_FROM,
	F_SENDER,
	F_REPLY_TO,
	F_TO,
	F_CC,
	F_BCC,
	F_IN_REPLY_TO,
	F_MESSAGE_ID,
	F_COUNT
};

/* The address being parsed; a buffer is unused when its flag is false. */
struct addr {
	struct buf name, route, mailbox, domain, comment;
	bool has_name, has_route, has_mailbox, has_domain;
};

struct cursor {
	const uint8_t *p, *end;
};

static bool is_atext(uint8_t c)
{
	if (c >= 0x80)
		return true; /* raw UTF-8 (RFC 6532) and other 8-bit text */
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static int skip(struct cursor *c, struct buf *comment)
{
	return mime_skip_cfws(&c->p, c->end, comment);
}

static bool at(const struct cursor *c, uint8_t ch)
{
	return c->p < c->end && *c->p == ch;
}

/* phrase = 1*word / obs-phrase: the words joined by single spaces, quoted
 * strings unquoted. Stores the number of words in *WORDS_R. */
static int read_phrase(struct cursor *c, struct buf *out, size_t *words_r)
{
	size_t words = 0;

	buf_reset(out);
	while (c->p < c->end && (*c->p == '"' || *c->p == '.' || is_atext(*c->p))) {
		if (words++ > 0 && buf_append(out, " ", 1) < 0)
			return -1;
		if (*c->p == '"') {
			if (mime_read_quoted(&c->p, c->end, out) < 0)
				return -1;
		} else {
			const uint8_t *s = c->p;

			while (c->p < c->end && (*c->p == '.' || is_atext(*c->p)))
				c->p++;
			if (buf_append(out, s, (size_t)(c->p - s)) < 0)
				return -1;
		}
		if (skip(c, NULL) < 0)
			return -1;
	}
	*words_r = words;
	return 0;
}

static bool is_dot_atom(const struct buf *b)
{
	size_t i;

	if (b->len == 0 || b->data[0] == '.' || b->data[b->len - 1] == '.')
		return false;
	for (i = 0; i < b->len; i++) {
		if (b->data[i] == '.' ? b->data[i - 1] == '.' : !is_atext(b->data[i]))
			return false;
	}
	return true;
}

/* Replaces the content of M with its quoted-string form. */
static int requote(struct buf *m)
{
	struct buf q;
	size_t i;

	buf_init(&q);
	if (buf_append(&q, "\"", 1) < 0)
		goto fail;
	for (i = 0; i < m->len; i++) {
		if ((m->data[i] == '"' || m->data[i] == '\\') && buf_append(&q, "\\", 1) < 0)
			goto fail;
		if (buf_append(&q, &m->data[i], 1) < 0)
			goto fail;
	}
	if (buf_append(&q, "\"", 1) < 0)
		goto fail;
	buf_free(m);
	*m = q;
	return 0;
fail:
	buf_free(&q);
	return -1;
}

/* local-part = word *("." word); a result that is not a dot-atom is given
 * back as a quoted string, so that mailbox@host stays a valid address. */
static int read_local_part(struct cursor *c, struct addr *a)
{
	struct buf *m = &a->mailbox;
	size_t words = 0;

	buf_reset(m);
	for (;;) {
		if (at(c, '"')) {
			if (mime_read_quoted(&c->p, c->end, m) < 0)
				return -1;
		} else if (c->p < c->end && is_atext(*c->p)) {
			const uint8_t *s = c->p;

			while (c->p < c->end && is_atext(*c->p))
				c->p++;
			if (buf_append(m, s, (size_t)(c->p - s)) < 0)
				return -1;
		} else {
			break;
		}
		words++;
		if (skip(c, &a->comment) < 0)
			return -1;
		if (!at(c, '.'))
			break;
		c->p++;
		if (buf_append(m, ".", 1) < 0 || skip(c, &a->comment) < 0)
			return -1;
	}
	a->has_mailbox = words > 0;
	if (!a->has_mailbox || is_dot_atom(m))
		return 0;
	return requote(m);
}

/* After "@": domain = dot-atom / domain-literal / obs-domain. */
static int read_domain(struct cursor *c, struct buf *out, struct buf *comment)
{
	buf_reset(out);
	if (skip(c, comment) < 0)
		return -1;
	if (at(c, '[')) {
		const uint8_t *s = c->p;

		while (c->p < c->end && *c->p != ']') {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			c->p++;
		}
		if (c->p < c->end)
			c->p++;
		return buf_append(out, s, (size_t)(c->p - s)) < 0 ? -1 : skip(c, comment);
	}
	while (c->p < c->end && is_atext(*c->p)) {
		const uint8_t *s = c->p;

		while (c->p < c->end && is_atext(*c->p))
			c->p++;
		if (buf_append(out, s, (size_t)(c->p - s)) < 0 || skip(c, comment) < 0)
			return -1;
		if (!at(c, '.'))
			break;
		c->p++;
		if (buf_append(out, ".", 1) < 0 || skip(c, comment) < 0)
			return -1;
	}
	return 0;
}

static int write_field(struct buf *out, bool has, const struct buf *b, const char *missing)
{
	if (has)
		return mime_imap_string(out, b->data, b->len);
	return missing != NULL ? buf_printf(out, "\"%s\"", missing) : buf_append_str(out, "NIL");
}

/* (name adl mailbox host); a group start marker has a NIL host. */
static int write_addr(struct buf *out, const struct addr *a, bool group)
{
	if (buf_append(out, "(", 1) < 0 || write_field(out, a->has_name, &a->name, NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_field(out, a->has_route, &a->route, NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    write_field(out, a->has_mailbox, &a->mailbox, "MISSING_MAILBOX") < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    write_field(out, a->has_domain, &a->domain, group ? NULL : "MISSING_DOMAIN") < 0)
		return -1;
	return buf_append(out, ")", 1);
}

/* obs-route = "@" domain *("," [CFWS] ["@" domain]) ":", kept as "@a,@b". */
static int read_route(struct cursor *c, struct addr *a)
{
	struct buf d;
	int ret = -1;

	buf_init(&d);
	buf_reset(&a->route);
	while (at(c, '@')) {
		c->p++;
		if (read_domain(c, &d, NULL) < 0 ||
		    (a->route.len > 0 && buf_append(&a->route, ",", 1) < 0) ||
		    buf_append(&a->route, "@", 1) < 0 || buf_append(&a->route, d.data, d.len) < 0)
			goto out;
		while (at(c, ',')) {
			c->p++;
			if (skip(c, NULL) < 0)
				goto out;
		}
	}
	if (at(c, ':')) {
		c->p++;
		a->has_route = a->route.len > 0;
	}
	ret = skip(c, NULL);
out:
	buf_free(&d);
	return ret;
}

/* mailbox = name-addr / addr-spec. Returns 1 when an address was written,
 * 0 when nothing could be read here. */
static int parse_mailbox(struct cursor *c, struct addr *a, struct buf *out, size_t *count)
{
	struct cursor start = *c;
	size_t words;

	a->has_name = a->has_route = a->has_mailbox = a->has_domain = false;
	if (read_phrase(c, &a->name, &words) < 0)
		return -1;
	if (at(c, '<')) {
		/* name-addr = [display-name] "<" [obs-route] addr-spec ">" */
		a->has_name = words > 0;
		c->p++;
		if (skip(c, NULL) < 0 || (at(c, '@') && read_route(c, a) < 0) ||
		    read_local_part(c, a) < 0)
			return -1;
		if (at(c, '@')) {
			c->p++;
			if (read_domain(c, &a->domain, NULL) < 0)
				return -1;
			a->has_domain = true;
		}
		while (c->p < c->end && *c->p != '>' && *c->p != ',')
			c->p++; /* junk inside the brackets */
		if (at(c, '>'))
			c->p++;
	} else {
		*c = start;
		buf_reset(&a->comment);
		if (read_local_part(c, a) < 0)
			return -1;
		if (at(c, '@')) {
			c->p++;
			if (read_domain(c, &a->domain, &a->comment) < 0)
				return -1;
			a->has_domain = true;
		}
		if (c->p == start.p)
			return 0;
		if (a->comment.len > 0) {
			/* "user@host (Full Name)": the comment names the address */
			buf_reset(&a->name);
			if (buf_append(&a->name, a->comment.data, a->comment.len) < 0)
				return -1;
			a->has_name = true;
		}
	}
	if (a->has_domain && a->domain.len == 0)
		a->has_domain = false;
	if (skip(c, NULL) < 0 || write_addr(out, a, false) < 0)
		return -1;
	(*count)++;
	return 1;
}

/* group = display-name ":" [group-list] ";": a start marker holding the
 * group name as its mailbox, the members, and an end marker. Returns 1 for a
 * group, 0 when the input here is not one. */
static int parse_group(struct cursor *c, struct addr *a, struct buf *out, size_t *count)
{
	struct cursor start = *c;
	size_t words;

	if (read_phrase(c, &a->mailbox, &words) < 0)
		return -1;
	if (words == 0 || !at(c, ':')) {
		*c = start;
		return 0;
	}
	c->p++;
	a->has_name = a->has_route = a->has_domain = false;
	a->has_mailbox = true;
	if (write_addr(out, a, true) < 0 || skip(c, NULL) < 0)
		return -1;
	(*count)++;
	while (c->p < c->end) {
		int ret;

		if (*c->p == ';') {
			c->p++;
			break;
		}
		if (*c->p == ',') {
			c->p++;
		} else {
			ret = parse_mailbox(c, a, out, count);
			if (ret < 0)
				return -1;
			if (ret == 0)
				c->p++; /* a stray special: drop it */
		}
		if (skip(c, NULL) < 0)
			return -1;
	}
	(*count)++;
	return buf_append_str(out, "(NIL NIL NIL NIL)") < 0 || skip(c, NULL) < 0 ? -1 : 1;
}

/* Appends the address list in VALUE as ((...)(...)), or NIL when it holds
 * no address; *COUNT_R tells how many entries were written. */
static int write_addresses(struct buf *out, const uint8_t *value, size_t len, size_t *count_r)
{
	struct cursor c = {value, value + len};
	struct addr a;
	size_t start = out->len, count = 0;
	int ret = -1;

	memset(&a, 0, sizeof(a));
	if (buf_append(out, "(", 1) < 0 || skip(&c, NULL) < 0)
		goto out;
	while (c.p < c.end) {
		int r;

		if (*c.p == ',') {
			c.p++; /* obs-addr-list allows empty elements */
		} else {
			r = parse_group(&c, &a, out, &count);
			if (r == 0)
				r = parse_mailbox(&c, &a, out, &count);
			if (r < 0)
				goto out;
			/* anything up to the next comma is junk */
			while (c.p < c.end && *c.p != ',') {
				if (*c.p == '"') {
					struct cursor q = c;

					buf_reset(&a.comment);
					if (mime_read_quoted(&q.p, q.end, &a.comment) < 0)
						goto out;
					c = q;
				} else {
					c.p++;
				}
			}
		}
		if (skip(&c, NULL) < 0)
			goto out;
	}
	if (count == 0) {
		out->len = start;
		ret = buf_append_str(out, "NIL");
	} else {
		ret = buf_append(out, ")", 1);
	}
	*count_r = count;
out:
	buf_free(&a.name);
	buf_free(&a.route);
	buf_free(&a.mailbox);
	buf_free(&a.domain);
	buf_free(&a.comment);
	return ret;
}

/* Sender and Reply-To fall back to From when absent or empty (RFC 3501). */
static int write_address_field(struct buf *out, const struct mime_hdr_field *f,
			       const struct mime_hdr_field *from)
{
	size_t start = out->len, count = 0;

	if (f->value != NULL && write_addresses(out, f->value, f->len, &count) < 0)
		return -1;
	if (count > 0 || from == NULL)
		return f->value != NULL ? 0 : buf_append_str(out, "NIL");
	out->len = start;
	if (from->value == NULL)
		return buf_append_str(out, "NIL");
	return write_addresses(out, from->value, from->len, &count);
}

int mime_envelope_write(struct buf *out, const uint8_t *hdr, size_t len)
{
	struct mime_hdr_field f[F_COUNT] = {
	    [F_DATE] = {"Date", NULL, 0},
	    [F_SUBJECT] = {"Subject", NULL, 0},
	    [F_FROM] = {"From", NULL, 0},
	    [F_SENDER] = {"Sender", NULL, 0},
	    [F_REPLY_TO] = {"Reply-To", NULL, 0},
	    [F_TO] = {"To", NULL, 0},
	    [F_CC] = {"Cc", NULL, 0},
	    [F_BCC] = {"Bcc", NULL, 0},
	    [F_IN_REPLY_TO] = {"In-Reply-To", NULL, 0},
	    [F_MESSAGE_ID] = {"Message-ID", NULL, 0},
	};

	mime_header_scan(hdr, len, f, F_COUNT);
	if (buf_append(out, "(", 1) < 0 ||
	    mime_imap_nstring(out, f[F_DATE].value, f[F_DATE].len) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, f[F_SUBJECT].value, f[F_SUBJECT].len) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_address_field(out, &f[F_FROM], NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_address_field(out, &f[F_SENDER], &f[F_FROM]) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    write_address_field(out, &f[F_REPLY_TO], &f[F_FROM]) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_address_field(out, &f[F_TO], NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_address_field(out, &f[F_CC], NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 || write_address_field(out, &f[F_BCC], NULL) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, f[F_IN_REPLY_TO].value, f[F_IN_REPLY_TO].len) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, f[F_MESSAGE_ID].value, f[F_MESSAGE_ID].len) < 0)
		return -1;
	return buf_append(out, ")", 1);
}
