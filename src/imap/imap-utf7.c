/* imap-utf7.c — mailbox names: modified UTF-7 (RFC 3501 5.1.3), UTF-8
 * validation, and the checks that keep a client's name inside its account.
 *
 * Trust boundary: names come from the network. Broken encodings (bad base64,
 * unpaired surrogates, non-zero padding bits, encoded printable ASCII,
 * missing '-') are refused rather than repaired, so one name has one
 * spelling. A name is only ever a key in the account's own sealed name
 * table, never a path, but "..", empty components and control characters
 * are refused all the same. */
#include "imap/imap-parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char imap_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int imap_b64_value(char c)
{
	const char *p = c != '\0' ? strchr(imap_b64, c) : NULL;

	return p != NULL ? (int)(p - imap_b64) : -1;
}

static int imap_put_utf8(struct buf *out, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | (cp >> 6));
		b[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | (cp >> 12));
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | (cp >> 18));
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

int imap_utf7_to_utf8(const char *in, struct buf *out)
{
	const char *p = in;

	while (*p != '\0') {
		uint32_t bits = 0, hi = 0;
		unsigned nbits = 0, units = 0;

		if ((uint8_t)*p < 0x20 || (uint8_t)*p > 0x7e)
			return -1;
		if (*p != '&') {
			if (buf_append(out, p++, 1) < 0)
				return -1;
			continue;
		}
		p++;
		if (*p == '-') {
			if (buf_append(out, "&", 1) < 0)
				return -1;
			p++;
			continue;
		}
		for (; *p != '-'; p++) {
			int v = imap_b64_value(*p);

			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			units++;
			if (hi != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				if (imap_put_utf8(out, 0x10000 + ((hi - 0xd800) << 10) +
							   (u - 0xdc00)) < 0)
					return -1;
				hi = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				hi = u;
			} else if ((u >= 0xdc00 && u <= 0xdfff) || u <= 0x7e ||
				   (u >= 0x7f && u <= 0x9f)) {
				/* A lone low surrogate, ASCII that needs no encoding,
				 * or a control character (NUL would cut the name). */
				return -1;
			} else if (imap_put_utf8(out, u) < 0) {
				return -1;
			}
		}
		/* "&-" handled above; "&...-" must encode something, end on a
		 * whole unit and leave only zero padding bits. */
		if (units == 0 || hi != 0 || nbits >= 6 || bits != 0)
			return -1;
		p++;
		if (*p == '&' && p[1] != '-')
			return -1; /* two encoded runs back to back */
	}
	return 0;
}

/* Decodes one UTF-8 sequence; -1 if invalid (overlong, surrogate, > 10FFFF). */
static int imap_utf8_next(const uint8_t *s, size_t len, size_t *pos, uint32_t *cp_r)
{
	uint8_t c = s[*pos];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80) {
		*cp_r = c;
		(*pos)++;
		return 0;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 1;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3;
		cp = c & 0x07;
	} else {
		return -1;
	}
	if (*pos + n >= len)
		return -1;
	for (i = 1; i <= n; i++) {
		if ((s[*pos + i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*pos + i] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pos += n + 1;
	*cp_r = cp;
	return 0;
}

int imap_utf8_valid(const uint8_t *s, size_t len)
{
	size_t pos = 0;
	uint32_t cp;

	while (pos < len)
		if (imap_utf8_next(s, len, &pos, &cp) < 0)
			return -1;
	return 0;
}

static int imap_utf7_flush(struct buf *out, const uint16_t *units, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;

	if (buf_append(out, "&", 1) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		bits = (bits << 16) | units[i];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			if (buf_append(out, &imap_b64[(bits >> nbits) & 0x3f], 1) < 0)
				return -1;
		}
		bits &= (1u << nbits) - 1;
	}
	if (nbits > 0 && buf_append(out, &imap_b64[(bits << (6 - nbits)) & 0x3f], 1) < 0)
		return -1;
	return buf_append(out, "-", 1);
}

int imap_utf8_to_utf7(const char *in, struct buf *out)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t len = strlen(in), pos = 0, n = 0;
	uint16_t *units = xmalloc((len + 1) * 2 * sizeof(*units));
	int ret = -1;

	while (pos < len) {
		uint32_t cp;

		if (imap_utf8_next(s, len, &pos, &cp) < 0)
			goto out;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			goto out; /* no control characters in mailbox names */
		if (cp <= 0x7e) {
			if (n > 0 && imap_utf7_flush(out, units, n) < 0)
				goto out;
			n = 0;
			if (buf_append(out, cp == '&' ? "&-" : (const char *)&s[pos - 1],
				       cp == '&' ? 2 : 1) < 0)
				goto out;
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			units[n++] = (uint16_t)(0xd800 + (cp >> 10));
			units[n++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			units[n++] = (uint16_t)cp;
		}
	}
	if (n > 0 && imap_utf7_flush(out, units, n) < 0)
		goto out;
	ret = 0;
out:
	free(units);
	return ret;
}

int imap_mailbox_name_check(const char *name, char **canon_r, const char **error_r)
{
	size_t len = strlen(name);
	const char *p;

	*error_r = "Invalid mailbox name";
	if (len == 0 || len > IMAP_MAILBOX_NAME_MAX ||
	    imap_utf8_valid((const uint8_t *)name, len) < 0)
		return -1;
	for (p = name; *p != '\0'; p++)
		if ((uint8_t)*p < 0x20 || *p == 0x7f || *p == '*' || *p == '%')
			return -1;
	for (p = name;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -1;
		p += n;
		if (*p == '\0')
			break;
		p++;
	}
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/')) {
		char *c = xstrdup(name);

		memcpy(c, "INBOX", 5);
		*canon_r = c;
		return 0;
	}
	*canon_r = xstrdup(name);
	return 0;
}
