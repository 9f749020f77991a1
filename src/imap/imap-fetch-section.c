/* imap-fetch-section.c — FETCH attribute syntax and body sections:
 * BODY[...] with part numbers, HEADER, HEADER.FIELDS[.NOT], TEXT, MIME and
 * partials; BINARY[...] (RFC 3516) decoding base64 and quoted-printable.
 *
 * Trust boundary: the attribute text is untrusted (bounded: at most
 * IMAP_FETCH_ITEMS_MAX items, IMAP_SECTION_DEPTH_MAX part levels,
 * IMAP_HEADER_FIELDS_MAX field names). Sections are cut from plaintext the
 * caller opened, with the same MIME parse that computed BODYSTRUCTURE
 * (mime_part_find), so sizes agree. */
#include "imap/imap-fetch.h"

#include "mime/mime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_fetch_spec_free(struct imap_fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		free(spec->items[i].name);
		for (size_t j = 0; j < spec->items[i].field_count; j++)
			free(spec->items[i].fields[j]);
		free(spec->items[i].fields);
	}
	spec->count = 0;
}

static int imap_section_fields(struct imap_fetch_item *it, const char *p, const char *end)
{
	struct imap_args args = {NULL, 0}; /* freed on every path, parsed or not */
	const char *error;
	int ret = -1;

	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '(' ||
	    imap_args_parse((const uint8_t *)p, (size_t)(end - p), &args, &error) < 0 ||
	    args.count != 1 || args.list[0].type != IMAP_ARG_LIST || args.list[0].count == 0 ||
	    args.list[0].count > IMAP_HEADER_FIELDS_MAX)
		goto out;
	it->fields = xcalloc(args.list[0].count, sizeof(*it->fields));
	for (size_t i = 0; i < args.list[0].count; i++) {
		const char *f = imap_arg_string(&args.list[0].list[i]);

		if (f == NULL || f[0] == '\0' || strpbrk(f, ": ") != NULL)
			goto out;
		it->fields[it->field_count++] = xstrdup(f);
	}
	ret = 0;
out:
	imap_args_free(&args);
	return ret;
}

/* SEC is the text between the brackets. */
static int imap_section_parse(struct imap_fetch_item *it, const char *sec, size_t len)
{
	const char *p = sec, *end = sec + len;

	while (p < end && isdigit((unsigned char)*p)) {
		unsigned long n = 0;

		if (it->depth >= IMAP_SECTION_DEPTH_MAX || *p == '0')
			return -1;
		while (p < end && isdigit((unsigned char)*p)) {
			n = n * 10 + (unsigned long)(*p++ - '0');
			if (n > 100000)
				return -1;
		}
		it->path[it->depth++] = (unsigned)n;
		if (p == end)
			return 0;
		if (*p++ != '.')
			return -1;
	}
	if (p == end)
		return p == sec ? 0 : -1; /* "1." is not a section */
	if (it->binary)
		return -1;
	if ((size_t)(end - p) == 6 && strncasecmp(p, "HEADER", 6) == 0) {
		it->part = IMAP_SECTION_HEADER;
	} else if ((size_t)(end - p) == 4 && strncasecmp(p, "TEXT", 4) == 0) {
		it->part = IMAP_SECTION_TEXT;
	} else if ((size_t)(end - p) == 4 && strncasecmp(p, "MIME", 4) == 0 && it->depth > 0) {
		it->part = IMAP_SECTION_MIME;
	} else if ((size_t)(end - p) > 17 && strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0) {
		it->part = IMAP_SECTION_HEADER_FIELDS_NOT;
		return imap_section_fields(it, p + 17, end);
	} else if ((size_t)(end - p) > 13 && strncasecmp(p, "HEADER.FIELDS", 13) == 0 &&
		   (p[13] == ' ' || p[13] == '(')) {
		it->part = IMAP_SECTION_HEADER_FIELDS;
		return imap_section_fields(it, p + 13, end);
	} else {
		return -1;
	}
	return 0;
}

static int imap_partial_parse(struct imap_fetch_item *it, const char *p)
{
	unsigned long long off, count;
	int n = 0;

	if (*p == '\0')
		return 0;
	if (sscanf(p, "<%llu.%llu>%n", &off, &count, &n) != 2 || p[n] != '\0' || p[1] == '-' ||
	    strchr(p, '-') != NULL || strchr(p, '+') != NULL || count == 0)
		return -1;
	it->partial = 1;
	it->offset = off;
	it->count = count;
	return 0;
}

static const struct {
	const char *name;
	enum imap_fetch_kind kind;
} imap_fetch_simple[] = {
    {"FLAGS", IMAP_FETCH_FLAGS},
    {"UID", IMAP_FETCH_UID},
    {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FETCH_SIZE},
    {"ENVELOPE", IMAP_FETCH_ENVELOPE},
    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
    {"BODY", IMAP_FETCH_BODY},
    {"MODSEQ", IMAP_FETCH_MODSEQ},
};

static int imap_fetch_item_parse(struct imap_fetch_spec *spec, const char *s)
{
	struct imap_fetch_item *it;
	const char *open, *close;
	size_t prefix;

	if (spec->count >= IMAP_FETCH_ITEMS_MAX)
		return -1;
	it = &spec->items[spec->count];
	memset(it, 0, sizeof(*it));
	for (size_t i = 0; i < N_ELEMENTS(imap_fetch_simple); i++) {
		if (strcasecmp(s, imap_fetch_simple[i].name) == 0) {
			it->kind = imap_fetch_simple[i].kind;
			spec->count++;
			if (it->kind == IMAP_FETCH_ENVELOPE ||
			    it->kind == IMAP_FETCH_BODYSTRUCTURE || it->kind == IMAP_FETCH_BODY)
				spec->need_meta = 1;
			return 0;
		}
	}
	it->kind = IMAP_FETCH_SECTION;
	if (strcasecmp(s, "RFC822") == 0 || strcasecmp(s, "RFC822.TEXT") == 0 ||
	    strcasecmp(s, "RFC822.HEADER") == 0) {
		it->name = xstrdup(s);
		for (char *c = it->name; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		it->part = s[6] == '\0'                          ? IMAP_SECTION_ALL
			   : toupper((unsigned char)s[7]) == 'T' ? IMAP_SECTION_TEXT
								 : IMAP_SECTION_HEADER;
		it->peek = it->part == IMAP_SECTION_HEADER;
		goto done;
	}
	open = strchr(s, '[');
	close = open != NULL ? strchr(open, ']') : NULL;
	if (close == NULL)
		return -1;
	prefix = (size_t)(open - s);
	if (prefix == 4 && strncasecmp(s, "BODY", 4) == 0) {
	} else if (prefix == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0) {
		it->peek = 1;
	} else if (prefix == 6 && strncasecmp(s, "BINARY", 6) == 0) {
		it->binary = 1;
	} else if (prefix == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0) {
		it->binary = it->peek = 1;
	} else if (prefix == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0) {
		it->binary = it->peek = 1;
		it->kind = IMAP_FETCH_BINARY_SIZE;
	} else {
		return -1;
	}
	if (imap_section_parse(it, open + 1, (size_t)(close - open - 1)) < 0 ||
	    imap_partial_parse(it, close + 1) < 0 ||
	    (it->kind == IMAP_FETCH_BINARY_SIZE && it->partial)) {
		spec->count++; /* so that the fields are freed */
		return -1;
	}
	{
		struct buf name;

		buf_init(&name);
		if (buf_printf(&name, "%s[%.*s]",
			       it->kind == IMAP_FETCH_BINARY_SIZE ? "BINARY.SIZE"
			       : it->binary                       ? "BINARY"
								  : "BODY",
			       (int)(close - open - 1), open + 1) < 0 ||
		    (it->partial &&
		     buf_printf(&name, "<%llu>", (unsigned long long)it->offset) < 0))
			log_fatal("out of memory");
		it->name = (char *)buf_cstr(&name);
	}
done:
	spec->count++;
	if (!it->peek)
		spec->sets_seen = 1;
	if (it->depth == 0 &&
	    (it->part == IMAP_SECTION_HEADER || it->part == IMAP_SECTION_HEADER_FIELDS ||
	     it->part == IMAP_SECTION_HEADER_FIELDS_NOT))
		spec->need_meta = 1;
	else
		spec->need_body = 1;
	return 0;
}

int imap_fetch_spec_parse(const struct imap_arg *arg, struct imap_fetch_spec *spec,
			  const char **error_r)
{
	static const char *const macros[][5] = {
	    {"ALL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	    {"FAST", "FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL},
	    {"FULL", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	};

	memset(spec, 0, sizeof(*spec));
	*error_r = "Invalid fetch attribute";
	if (arg->type == IMAP_ARG_ATOM) {
		for (size_t m = 0; m < N_ELEMENTS(macros); m++) {
			if (strcasecmp(arg->str, macros[m][0]) != 0)
				continue;
			for (size_t i = 1; i < 5 && macros[m][i] != NULL; i++)
				if (imap_fetch_item_parse(spec, macros[m][i]) < 0)
					return -1;
			if (m == 2 && imap_fetch_item_parse(spec, "BODY") < 0)
				return -1;
			return 0;
		}
		return imap_fetch_item_parse(spec, arg->str);
	}
	if (arg->type != IMAP_ARG_LIST || arg->count == 0)
		return -1;
	for (size_t i = 0; i < arg->count; i++)
		if (arg->list[i].type != IMAP_ARG_ATOM ||
		    imap_fetch_item_parse(spec, arg->list[i].str) < 0)
			return -1;
	return 0;
}

/* ---- extraction ------------------------------------------------------------- */

/* Offset just past the header's blank line (or LEN if there is none). */
static size_t imap_header_end(const uint8_t *msg, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(msg + pos, '\n', len - pos);
		size_t line_len;

		if (nl == NULL)
			return len;
		line_len = (size_t)(nl - (msg + pos));
		if (line_len == 0 || (line_len == 1 && msg[pos] == '\r'))
			return pos + line_len + 1;
		pos += line_len + 1;
	}
	return len;
}

static int imap_field_listed(const struct imap_fetch_item *it, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < it->field_count; i++)
		if (strlen(it->fields[i]) == len &&
		    strncasecmp(it->fields[i], (const char *)name, len) == 0)
			return 1;
	return 0;
}

static void imap_header_filter(const struct imap_fetch_item *it, const uint8_t *hdr, size_t len,
			       struct buf *out)
{
	size_t pos = 0;

	buf_reset(out);
	while (pos < len) {
		size_t start = pos, end;
		const uint8_t *colon;
		int keep;

		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n'))
			break;
		do {
			const uint8_t *nl = memchr(hdr + pos, '\n', len - pos);

			pos = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		} while (pos < len && (hdr[pos] == ' ' || hdr[pos] == '\t'));
		end = pos;
		colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL)
			continue;
		keep = imap_field_listed(it, hdr + start, (size_t)(colon - (hdr + start)));
		if (it->part == IMAP_SECTION_HEADER_FIELDS_NOT)
			keep = !keep;
		if (keep && buf_append(out, hdr + start, end - start) < 0)
			log_fatal("out of memory");
	}
	if (buf_append(out, "\r\n", 2) < 0)
		log_fatal("out of memory");
}

static int imap_b64v(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int imap_hexv(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)toupper(c);
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes the part body per the Content-Transfer-Encoding in MIMEHDR. */
static void imap_binary_decode(const uint8_t *mimehdr, size_t hlen, const uint8_t *body,
			       size_t blen, struct buf *out)
{
	struct imap_fetch_item cte = {.part = IMAP_SECTION_HEADER_FIELDS};
	char *fields[1] = {(char *)"Content-Transfer-Encoding"};
	struct buf h;
	const char *v;
	uint32_t acc = 0;
	int bits = 0;

	cte.fields = fields;
	cte.field_count = 1;
	buf_init(&h);
	imap_header_filter(&cte, mimehdr, hlen, &h);
	v = strchr(buf_cstr(&h), ':');
	buf_reset(out);
	if (v != NULL && strcasestr(v, "base64") != NULL) {
		for (size_t i = 0; i < blen; i++) {
			int d = imap_b64v(body[i]);

			if (d < 0)
				continue;
			acc = (acc << 6) | (uint32_t)d;
			bits += 6;
			if (bits >= 8) {
				uint8_t c = (uint8_t)(acc >> (bits - 8));

				bits -= 8;
				if (buf_append(out, &c, 1) < 0)
					log_fatal("out of memory");
			}
		}
	} else if (v != NULL && strcasestr(v, "quoted-printable") != NULL) {
		for (size_t i = 0; i < blen; i++) {
			uint8_t c = body[i];

			if (c == '=' && i + 2 < blen + 0 && imap_hexv(body[i + 1]) >= 0 &&
			    imap_hexv(body[i + 2]) >= 0) {
				c = (uint8_t)(imap_hexv(body[i + 1]) * 16 + imap_hexv(body[i + 2]));
				i += 2;
			} else if (c == '=' && i + 1 < blen &&
				   (body[i + 1] == '\r' || body[i + 1] == '\n')) {
				i += body[i + 1] == '\r' && i + 2 < blen && body[i + 2] == '\n' ? 2
												: 1;
				continue;
			}
			if (buf_append(out, &c, 1) < 0)
				log_fatal("out of memory");
		}
	} else if (buf_append(out, body, blen) < 0) {
		log_fatal("out of memory");
	}
	buf_free(&h);
}

int imap_fetch_section(const struct imap_fetch_item *it, const uint8_t *msg, size_t msg_len,
		       const uint8_t *hdr, size_t hdr_len, struct buf *scratch,
		       const uint8_t **data_r, size_t *len_r)
{
	struct mime_part_range r;
	const uint8_t *d;
	size_t len;

	memset(&r, 0, sizeof(r));
	if (it->depth == 0) {
		if (msg != NULL) {
			r.end_off = msg_len;
			r.text_off = imap_header_end(msg, msg_len);
			hdr = msg;
			hdr_len = r.text_off;
		}
		r.is_message = 1;
	} else {
		if (msg == NULL || mime_part_find(msg, msg_len, it->path, it->depth, &r) <= 0)
			return -1;
		if (it->part != IMAP_SECTION_ALL && it->part != IMAP_SECTION_MIME) {
			if (!r.is_message)
				return -1;
			hdr = msg + r.body_off;
			hdr_len = r.text_off - r.body_off;
		}
	}
	switch (it->part) {
	case IMAP_SECTION_ALL:
		d = msg + r.body_off;
		len = r.end_off - r.body_off;
		if (it->binary) {
			size_t mo = it->depth > 0 ? r.mime_off : 0;
			size_t me = it->depth > 0 ? r.body_off : r.text_off;

			if (it->depth == 0) {
				d = msg + r.text_off;
				len = msg_len - r.text_off;
			}
			imap_binary_decode(msg + mo, me - mo, d, len, scratch);
			if (it->depth == 0) {
				/* BINARY[]: the header stays, the text is decoded. */
				struct buf whole;

				buf_init(&whole);
				if (buf_append(&whole, msg, r.text_off) < 0 ||
				    buf_append(&whole, scratch->data, scratch->len) < 0)
					log_fatal("out of memory");
				buf_free(scratch);
				*scratch = whole;
			}
			d = scratch->data;
			len = scratch->len;
		}
		break;
	case IMAP_SECTION_MIME:
		d = msg + r.mime_off;
		len = r.body_off - r.mime_off;
		break;
	case IMAP_SECTION_HEADER:
		d = hdr;
		len = hdr_len;
		break;
	case IMAP_SECTION_TEXT:
		if (msg == NULL)
			return -1;
		d = msg + r.text_off;
		len = r.end_off - r.text_off;
		break;
	default:
		imap_header_filter(it, hdr, hdr_len, scratch);
		d = scratch->data;
		len = scratch->len;
		break;
	}
	if (it->partial) {
		uint64_t off = it->offset < len ? it->offset : len;

		d += off;
		len -= (size_t)off;
		if (len > it->count)
			len = (size_t)it->count;
	}
	*data_r = d;
	*len_r = len;
	return 0;
}
