/* mime-meta.c — builds (as the message streams in) and reads the metadata
 * blob of a message, and holds
 * the header and IMAP-string helpers shared by the other mime/ files.
 *
 * Trust boundary: the message is untrusted and may be any bytes; the blob
 * given to mime_meta_get() comes from our own sealed store but is still
 * checked field by field. Nothing here logs or keeps message content. */
#include "mime/mime-private.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TLV_HDR 5 /* tag u8 | length u32 big endian */

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init_once(void)
{
	g_mime_init();
}

void mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
}

/* ---- header sections ----------------------------------------------------- */

static size_t line_next(const uint8_t *s, size_t len, size_t pos)
{
	const uint8_t *nl = memchr(s + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - s) + 1 : len;
}

void mime_header_scan(const uint8_t *hdr, size_t len, struct mime_hdr_field *fields, size_t n)
{
	size_t pos = 0, i;

	for (i = 0; i < n; i++) {
		fields[i].value = NULL;
		fields[i].len = 0;
	}
	while (pos < len) {
		size_t start = pos, first_end, name_len, end;
		const uint8_t *colon;

		pos = line_next(hdr, len, pos);
		first_end = pos;
		if (hdr[start] == '\n' ||
		    (hdr[start] == '\r' && start + 1 < len && hdr[start + 1] == '\n'))
			break; /* the blank line ending the section */
		while (pos < len && (hdr[pos] == ' ' || hdr[pos] == '\t'))
			pos = line_next(hdr, len, pos);
		if (hdr[start] == ' ' || hdr[start] == '\t')
			continue; /* a continuation without a field */
		colon = memchr(hdr + start, ':', first_end - start);
		if (colon == NULL)
			continue;
		name_len = (size_t)(colon - hdr) - start;
		while (name_len > 0 &&
		       (hdr[start + name_len - 1] == ' ' || hdr[start + name_len - 1] == '\t'))
			name_len--;
		end = pos;
		if (end > start && hdr[end - 1] == '\n')
			end--;
		if (end > start && hdr[end - 1] == '\r')
			end--;
		for (i = 0; i < n; i++) {
			if (fields[i].value != NULL || strlen(fields[i].name) != name_len ||
			    strncasecmp(fields[i].name, (const char *)hdr + start, name_len) != 0)
				continue;
			fields[i].value = colon + 1;
			fields[i].len =
			    end > (size_t)(colon - hdr) ? end - (size_t)(colon - hdr) - 1 : 0;
		}
	}
}

static bool is_lwsp(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void mime_trim(const uint8_t **s, size_t *len)
{
	while (*len > 0 && is_lwsp((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_lwsp((*s)[*len - 1]))
		(*len)--;
}

/* ---- IMAP strings ---------------------------------------------------------- */

/* A removed line break leaves a space unless white space follows anyway. */
static bool fold_space(const uint8_t *s, size_t len, size_t i)
{
	return i + 1 < len && !is_lwsp(s[i + 1]);
}

static int emit(struct buf *out, const uint8_t *s, size_t len, bool quoted)
{
	static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		uint8_t c = s[i];

		if (c != '\r' && c != '\n' && c != '\0' && (!quoted || (c != '"' && c != '\\')))
			continue;
		if (buf_append(out, s + run, i - run) < 0)
			return -1;
		run = i + 1;
		if (c == '\0') {
			if (buf_append(out, replacement, sizeof(replacement)) < 0)
				return -1;
		} else if (c == '"' || c == '\\') {
			if (buf_append(out, "\\", 1) < 0 || buf_append(out, &c, 1) < 0)
				return -1;
		} else if (fold_space(s, len, i) && buf_append(out, " ", 1) < 0) {
			return -1;
		}
	}
	return buf_append(out, s + run, len - run);
}

int mime_imap_string(struct buf *out, const uint8_t *s, size_t len)
{
	size_t i, n = 0;
	bool literal = false;

	if (len == 0)
		return buf_append_str(out, "\"\"");
	for (i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			n += fold_space(s, len, i);
		} else if (s[i] == '\0') {
			n += 3;
			literal = true;
		} else {
			n++;
			literal |= s[i] >= 0x80;
		}
	}
	if (literal)
		return buf_printf(out, "{%zu}\r\n", n) < 0 ? -1 : emit(out, s, len, false);
	if (buf_append(out, "\"", 1) < 0 || emit(out, s, len, true) < 0)
		return -1;
	return buf_append(out, "\"", 1);
}

int mime_imap_nstring(struct buf *out, const uint8_t *value, size_t len)
{
	if (value == NULL)
		return buf_append_str(out, "NIL");
	mime_trim(&value, &len);
	return mime_imap_string(out, value, len);
}

/* ---- RFC 5322 lexical helpers ---------------------------------------------- */

int mime_skip_cfws(const uint8_t **p, const uint8_t *end, struct buf *comment)
{
	const uint8_t *s = *p;

	while (s < end) {
		unsigned depth = 1;

		if (is_lwsp(*s)) {
			s++;
			continue;
		}
		if (*s != '(')
			break;
		if (comment != NULL)
			buf_reset(comment);
		for (s++; s < end; s++) {
			if (*s == '\\' && s + 1 < end) {
				s++;
			} else if (*s == '(') {
				depth++;
			} else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
			if (comment != NULL && buf_append(comment, s, 1) < 0)
				return -1;
		}
	}
	*p = s;
	return 0;
}

int mime_read_quoted(const uint8_t **p, const uint8_t *end, struct buf *out)
{
	const uint8_t *s = *p + 1, *run = s;

	for (; s < end; s++) {
		if (*s != '"' && *s != '\\' && *s != '\r' && *s != '\n')
			continue;
		if (buf_append(out, run, (size_t)(s - run)) < 0)
			return -1;
		if (*s == '"') {
			*p = s + 1;
			return 0;
		}
		if (*s == '\\' && s + 1 < end)
			s++; /* the escaped byte starts the next run */
		run = *s == '\r' || *s == '\n' ? s + 1 : s;
	}
	*p = end;
	return buf_append(out, run, (size_t)(end - run));
}

/* ---- the metadata blob ------------------------------------------------------ */

static int field_begin(struct buf *out, enum mime_field tag, size_t *pos_r)
{
	static const uint8_t zero[TLV_HDR - 1];
	uint8_t t = (uint8_t)tag;

	*pos_r = out->len;
	if (buf_append(out, &t, 1) < 0 || buf_append(out, zero, sizeof(zero)) < 0)
		return -1;
	return 0;
}

static int field_end(struct buf *out, size_t pos)
{
	size_t n = out->len - pos - TLV_HDR;

	if (n > UINT32_MAX)
		return -1;
	out->data[pos + 1] = (uint8_t)(n >> 24);
	out->data[pos + 2] = (uint8_t)(n >> 16);
	out->data[pos + 3] = (uint8_t)(n >> 8);
	out->data[pos + 4] = (uint8_t)n;
	return 0;
}

static int meta_fields(const struct mime_tree *t, struct buf *out)
{
	size_t pos, hdr_len;
	const uint8_t *hdr = mime_tree_header(t, 0, &hdr_len);

	if (field_begin(out, MIME_FIELD_ENVELOPE, &pos) < 0 ||
	    mime_envelope_write(out, hdr, hdr_len) < 0 || field_end(out, pos) < 0)
		return -1;
	if (field_begin(out, MIME_FIELD_BODYSTRUCTURE, &pos) < 0 ||
	    mime_body_write(out, t, 0, true) < 0 || field_end(out, pos) < 0)
		return -1;
	if (field_begin(out, MIME_FIELD_BODY, &pos) < 0 || mime_body_write(out, t, 0, false) < 0 ||
	    field_end(out, pos) < 0)
		return -1;
	if (field_begin(out, MIME_FIELD_HEADER, &pos) < 0 || buf_append(out, hdr, hdr_len) < 0 ||
	    field_end(out, pos) < 0)
		return -1;
	if (field_begin(out, MIME_FIELD_LINES, &pos) < 0 || buf_printf(out, "%zu", t->lines) < 0 ||
	    field_end(out, pos) < 0)
		return -1;
	return 0;
}

/* ---- the stream --------------------------------------------------------------- */

struct mime_meta_stream {
	struct mime_scan scan;
	bool failed; /* an allocation failed: every later call fails */
};

struct mime_meta_stream *mime_meta_stream_new(void)
{
	struct mime_meta_stream *ms = calloc(1, sizeof(*ms));

	if (ms == NULL)
		return NULL;
	if (mime_scan_init(&ms->scan) < 0) {
		mime_meta_stream_free(&ms);
		return NULL;
	}
	return ms;
}

int mime_meta_stream_write(struct mime_meta_stream *ms, const uint8_t *data, size_t len)
{
	if (ms->failed || mime_scan_write(&ms->scan, data, len) < 0) {
		ms->failed = true;
		return -1;
	}
	return 0;
}

int mime_meta_stream_finish(struct mime_meta_stream *ms, struct buf *out)
{
	size_t start = out->len;
	int ret;

	if (ms->failed || mime_scan_finish(&ms->scan) < 0) {
		ms->failed = true;
		return -1;
	}
	ms->failed = true; /* finished: nothing more may be fed */
	ret = meta_fields(&ms->scan.t, out);
	if (ret < 0 && out->data != NULL) {
		mem_wipe(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return ret;
}

size_t mime_meta_stream_memory(const struct mime_meta_stream *ms)
{
	return sizeof(*ms) + mime_scan_memory(&ms->scan);
}

void mime_meta_stream_free(struct mime_meta_stream **msp)
{
	struct mime_meta_stream *ms = *msp;

	if (ms == NULL)
		return;
	*msp = NULL;
	mime_scan_free(&ms->scan);
	mem_wipe(ms, sizeof(*ms));
	free(ms);
}

int mime_meta_build(const uint8_t *msg, size_t len, struct buf *out)
{
	struct mime_meta_stream *ms = mime_meta_stream_new();
	int ret;

	if (ms == NULL)
		return -1;
	ret = mime_meta_stream_write(ms, msg, len) < 0 ? -1 : mime_meta_stream_finish(ms, out);
	mime_meta_stream_free(&ms);
	return ret;
}

int mime_meta_get(const uint8_t *meta, size_t len, enum mime_field field, const uint8_t **val_r,
		  size_t *val_len_r)
{
	size_t pos = 0;
	int found = 0;

	while (pos < len) {
		size_t n;

		if (len - pos < TLV_HDR)
			return -1;
		n = (size_t)meta[pos + 1] << 24 | (size_t)meta[pos + 2] << 16 |
		    (size_t)meta[pos + 3] << 8 | meta[pos + 4];
		if (n > len - pos - TLV_HDR)
			return -1;
		if (!found && meta[pos] == (uint8_t)field) {
			*val_r = meta + pos + TLV_HDR;
			*val_len_r = n;
			found = 1;
		}
		pos += TLV_HDR + n;
	}
	return found;
}
