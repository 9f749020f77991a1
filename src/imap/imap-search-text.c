/* imap-search-text.c — the text SEARCH compares: header fields decoded from
 * RFC 2047 and body parts decoded to UTF-8 (GMime), case-folded.
 *
 * Trust boundary: works on plaintext the session opened for one message
 * and returns it case-folded in memory; callers wipe and free it. GMime
 * parses untrusted MIME here exactly as it does for the metadata part. */
#include "imap/imap-search.h"

#include <gmime/gmime.h>
#include <string.h>
#include <strings.h>

/* Case folding maps each character on its own, so ASCII bytes are folded
 * here (the bulk of mail text) and only runs of other characters go
 * through glib, one call per run rather than per character. */
char *imap_search_fold(const char *s, size_t len)
{
	char *valid = NULL;
	const unsigned char *p;
	struct buf out;
	size_t i = 0;
	char *ret;

	if (!g_utf8_validate(s, (gssize)len, NULL)) {
		valid = g_utf8_make_valid(s, (gssize)len);
		s = valid;
		len = strlen(valid);
	}
	p = (const unsigned char *)s;
	buf_init(&out);
	if (buf_reserve(&out, len) < 0)
		log_fatal("out of memory");
	while (i < len) {
		size_t j = i;

		while (j < len && p[j] < 0x80)
			j++;
		for (; i < j; i++)
			out.data[out.len++] =
			    (uint8_t)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] | 0x20 : p[i]);
		while (j < len && p[j] >= 0x80)
			j++;
		if (j > i) {
			char *folded = g_utf8_casefold(s + i, (gssize)(j - i));
			size_t n = strlen(folded);

			if (buf_append(&out, folded, n) < 0)
				log_fatal("out of memory");
			mem_wipe(folded, n);
			g_free(folded);
			i = j;
		}
	}
	out.data[out.len] = '\0';
	ret = (char *)out.data; /* malloc'd; the caller wipes and frees it */
	if (valid != NULL) {
		mem_wipe(valid, len);
		g_free(valid);
	}
	return ret;
}

static void imap_text_add(struct buf *out, const char *s)
{
	if (buf_append_str(out, s) < 0 || buf_append(out, "\n", 1) < 0)
		log_fatal("out of memory");
}

char *imap_search_header_text(const uint8_t *hdr, size_t len, const char *name, int *present_r)
{
	struct buf acc, field;
	size_t pos = 0;
	char *ret;

	buf_init(&acc);
	buf_init(&field);
	*present_r = 0;
	while (pos < len) {
		size_t start = pos, name_len;
		const uint8_t *colon;

		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n'))
			break;
		do {
			const uint8_t *nl = memchr(hdr + pos, '\n', len - pos);

			pos = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		} while (pos < len && (hdr[pos] == ' ' || hdr[pos] == '\t'));
		colon = memchr(hdr + start, ':', pos - start);
		if (colon == NULL)
			continue;
		name_len = (size_t)(colon - (hdr + start));
		if (name != NULL && (strlen(name) != name_len ||
				     strncasecmp(name, (const char *)hdr + start, name_len) != 0))
			continue;
		*present_r = 1;
		/* Unfold, then decode encoded words. */
		buf_reset(&field);
		for (const uint8_t *p = colon + 1; p < hdr + pos; p++)
			if (*p != '\r' && *p != '\n' && buf_append(&field, p, 1) < 0)
				log_fatal("out of memory");
		{
			char *dec = g_mime_utils_header_decode_text(NULL, buf_cstr(&field));

			if (name == NULL && (buf_append(&acc, hdr + start, name_len) < 0 ||
					     buf_append(&acc, ": ", 2) < 0))
				log_fatal("out of memory");
			imap_text_add(&acc, dec != NULL ? dec : buf_cstr(&field));
			if (dec != NULL) {
				mem_wipe(dec, strlen(dec));
				g_free(dec);
			}
		}
	}
	ret = imap_search_fold(acc.data ? (const char *)acc.data : "", acc.len);
	buf_free(&acc);
	buf_free(&field);
	return ret;
}

static void imap_body_part_cb(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct buf *acc = data;

	if (GMIME_IS_TEXT_PART(part)) {
		char *text = g_mime_text_part_get_text((GMimeTextPart *)part);

		if (text != NULL) {
			imap_text_add(acc, text);
			mem_wipe(text, strlen(text));
			g_free(text);
		}
	} else if (GMIME_IS_MESSAGE_PART(part)) {
		GMimeMessage *m = g_mime_message_part_get_message((GMimeMessagePart *)part);

		if (m != NULL)
			g_mime_message_foreach(m, imap_body_part_cb, acc);
	}
}

char *imap_search_body_text(const uint8_t *msg, size_t len)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
	struct buf acc;
	char *ret;

	buf_init(&acc);
	if (m != NULL) {
		if (GMIME_IS_TEXT_PART(m->mime_part))
			imap_body_part_cb(NULL, m->mime_part, &acc);
		else
			g_mime_message_foreach(m, imap_body_part_cb, &acc);
		g_object_unref(m);
	}
	g_object_unref(parser);
	g_object_unref(stream);
	ret = imap_search_fold(acc.data ? (const char *)acc.data : "", acc.len);
	buf_free(&acc);
	return ret;
}

int imap_search_date_header(const uint8_t *hdr, size_t len, int64_t *t_r)
{
	struct buf field;
	int present;
	char *v;
	GDateTime *dt;
	size_t pos = 0;

	/* The folded text is lower case; parse the raw value instead. */
	v = imap_search_header_text(hdr, len, "Date", &present);
	free(v);
	if (!present)
		return -1;
	buf_init(&field);
	while (pos < len) {
		size_t start = pos;
		const uint8_t *nl = memchr(hdr + pos, '\n', len - pos);

		pos = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		if (pos - start > 5 && strncasecmp((const char *)hdr + start, "Date:", 5) == 0) {
			if (buf_append(&field, hdr + start + 5, pos - start - 5) < 0)
				log_fatal("out of memory");
			break;
		}
	}
	dt = g_mime_utils_header_decode_date(buf_cstr(&field));
	buf_free(&field);
	if (dt == NULL)
		return -1;
	*t_r = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return 0;
}
