/* mime-bodystructure.c — Content-* header parsing and the IMAP BODYSTRUCTURE
 * and BODY forms of a part tree (RFC 3501 7.4.2, RFC 9051 7.5.2).
 *
 * Trust boundary: header values are untrusted. Media types, subtypes and
 * encodings are uppercased; every other value is given as it appears in the
 * header (RFC 2231 continuations are joined, but encoded values stay encoded,
 * and RFC 2047 words are not decoded). Sizes and line counts are those of the
 * bytes as stored, so that a FETCH of a section slices exactly that much. */
#include "mime/mime-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	H_TYPE,
	H_ENCODING,
	H_ID,
	H_DESCRIPTION,
	H_MD5,
	H_DISPOSITION,
	H_LANGUAGE,
	H_LOCATION,
	H_COUNT
};

/* A string in a part_info arena. */
struct span {
	size_t off, len;
};

struct param {
	struct span name, value;
};

/* What the Content-* headers of one part say. */
struct part_info {
	struct buf arena;      /* every parsed string */
	struct buf params;     /* struct param: Content-Type parameters */
	struct buf dsp_params; /* struct param: Content-Disposition parameters */
	struct buf langs;      /* struct span: Content-Language tags */
	bool has_type, has_dsp;
	struct span type, subtype, dsp;
	struct mime_hdr_field f[H_COUNT];
};

static bool is_token(uint8_t c)
{
	if (c >= 0x80)
		return true; /* tolerated in values: raw 8-bit file names exist */
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static const uint8_t *str_at(const struct part_info *pi, struct span s)
{
	return pi->arena.data != NULL ? pi->arena.data + s.off : (const uint8_t *)"";
}

static bool span_is(const struct part_info *pi, struct span s, const char *word)
{
	return s.len == strlen(word) && strncasecmp((const char *)str_at(pi, s), word, s.len) == 0;
}

/* The end of a header value; NULL for an absent one. */
static const uint8_t *value_end(const struct mime_hdr_field *f)
{
	return f->value != NULL ? f->value + f->len : NULL;
}

static int read_token(const uint8_t **p, const uint8_t *end, struct buf *arena, struct span *s)
{
	const uint8_t *start = *p;

	while (*p < end && is_token(**p))
		(*p)++;
	s->off = arena->len;
	s->len = (size_t)(*p - start);
	return buf_append(arena, start, s->len);
}

/* value := token / quoted-string; a value starting with "=" (unquoted RFC
 * 2047 words, a common mistake) runs to the next ";" or white space. */
static int read_value(const uint8_t **p, const uint8_t *end, struct buf *arena, struct span *s)
{
	const uint8_t *start = *p;

	if (*p < end && **p == '"') {
		s->off = arena->len;
		if (mime_read_quoted(p, end, arena) < 0)
			return -1;
		s->len = arena->len - s->off;
		return 0;
	}
	if (*p >= end || **p != '=')
		return read_token(p, end, arena, s);
	while (*p < end && **p != ';' && **p != ' ' && **p != '\t' && **p != '\r' && **p != '\n')
		(*p)++;
	s->off = arena->len;
	s->len = (size_t)(*p - start);
	return buf_append(arena, start, s->len);
}

/* How a parameter name reads as an RFC 2231 section: "name*", "name*3" or
 * "name*3*" (BASE is the length of "name"; EXT marks a charset-encoded
 * value). DONE is set once the parameter has been output. */
struct section {
	size_t base;
	unsigned idx;
	bool valid, ext, done;
};

static struct section section_of(const uint8_t *name, size_t len)
{
	struct section sec = {0};
	const uint8_t *star = memchr(name, '*', len);
	size_t i, digits = 0;

	if (star == NULL || star == name)
		return sec;
	sec.base = (size_t)(star - name);
	for (i = sec.base + 1; i < len && name[i] >= '0' && name[i] <= '9'; i++) {
		if (++digits > 4)
			return sec;
		sec.idx = sec.idx * 10 + (unsigned)(name[i] - '0');
	}
	sec.ext = i < len && name[i] == '*';
	sec.valid = i + sec.ext == len && (digits > 0 || sec.ext);
	return sec;
}

static int param_add(struct buf *list, struct span name, struct span value)
{
	struct param prm = {name, value};

	return buf_append(list, &prm, sizeof(prm));
}

/* Whether RAW[J] is a pending section of the same parameter as RAW[I]. */
static bool same_param(const struct part_info *pi, const struct param *raw,
		       const struct section *sec, size_t i, size_t j)
{
	return !sec[j].done && sec[j].valid && sec[j].base == sec[i].base &&
	       strncasecmp((const char *)str_at(pi, raw[j].name),
			   (const char *)str_at(pi, raw[i].name), sec[i].base) == 0;
}

/* The one pending section K of the parameter of RAW[I], or N when it is
 * missing or repeated. */
static size_t find_section(const struct part_info *pi, const struct param *raw,
			   const struct section *sec, size_t i, size_t n, unsigned k)
{
	size_t j, found = n;

	for (j = i; j < n; j++) {
		if (!same_param(pi, raw, sec, i, j) || sec[j].idx != k)
			continue;
		if (found != n)
			return n;
		found = j;
	}
	return found;
}

/* Appends the joined value of the COUNT sections of RAW[I]'s parameter. An
 * encoded result starts with a charset'language' prefix, and its plain
 * sections have "%" escaped (RFC 2231 section 4.1). */
static int join_sections(struct part_info *pi, const struct param *raw, struct section *sec,
			 size_t i, size_t n, unsigned count, bool ext)
{
	unsigned k;

	for (k = 0; k < count; k++) {
		size_t j = find_section(pi, raw, sec, i, n, k), b;

		sec[j].done = true;
		if (k == 0 && ext && !sec[j].ext && buf_append(&pi->arena, "''", 2) < 0)
			return -1;
		for (b = 0; b < raw[j].value.len; b++) {
			uint8_t c = str_at(pi, raw[j].value)[b];
			bool escape = ext && !sec[j].ext && c == '%';

			if (buf_append(&pi->arena, escape ? "%25" : (const char *)&c,
				       escape ? 3 : 1) < 0)
				return -1;
		}
	}
	return 0;
}

/* Joins the sections of RFC 2231 parameters: name*0, name*1*... become one
 * "name" (or "name*" when any section is encoded) in the place of the first
 * section. Sections with gaps or duplicates are left as they are. */
static int params_merge(struct part_info *pi, const struct param *raw, size_t n, struct buf *list)
{
	struct section sec[MIME_MAX_PARAMS];
	size_t i, j;

	for (i = 0; i < n; i++)
		sec[i] = section_of(str_at(pi, raw[i].name), raw[i].name.len);
	for (i = 0; i < n; i++) {
		struct span name = {raw[i].name.off, sec[i].base}, value;
		unsigned count = 0, k;
		bool ok = sec[i].valid, ext = false;

		if (sec[i].done)
			continue;
		for (j = i; ok && j < n; j++) {
			if (same_param(pi, raw, sec, i, j)) {
				count++;
				ext |= sec[j].ext;
			}
		}
		for (k = 0; ok && k < count; k++)
			ok = find_section(pi, raw, sec, i, n, k) != n;
		if (!ok) {
			sec[i].done = true;
			if (param_add(list, raw[i].name, raw[i].value) < 0)
				return -1;
			continue;
		}
		if (ext) {
			/* a fresh copy of the base name followed by "*" */
			if (buf_reserve(&pi->arena, sec[i].base + 1) < 0)
				return -1;
			name.off = pi->arena.len;
			name.len = sec[i].base + 1;
			memcpy(pi->arena.data + name.off, str_at(pi, raw[i].name), sec[i].base);
			pi->arena.data[name.off + sec[i].base] = '*';
			pi->arena.len += name.len;
		}
		value.off = pi->arena.len;
		if (join_sections(pi, raw, sec, i, n, count, ext) < 0)
			return -1;
		value.len = pi->arena.len - value.off;
		if (param_add(list, name, value) < 0)
			return -1;
	}
	return 0;
}

/* *(";" attribute "=" value): malformed parameters are skipped. */
static int parse_params(struct part_info *pi, const uint8_t *p, const uint8_t *end,
			struct buf *list)
{
	struct param raw[MIME_MAX_PARAMS];
	size_t n = 0;

	for (;;) {
		struct span name, value;

		if (mime_skip_cfws(&p, end, NULL) < 0)
			return -1;
		if (p >= end)
			break;
		if (*p != ';') {
			p = memchr(p, ';', (size_t)(end - p));
			if (p == NULL)
				break;
		}
		p++;
		if (mime_skip_cfws(&p, end, NULL) < 0 ||
		    read_token(&p, end, &pi->arena, &name) < 0 || mime_skip_cfws(&p, end, NULL) < 0)
			return -1;
		if (name.len == 0 || p >= end || *p != '=')
			continue;
		p++;
		if (mime_skip_cfws(&p, end, NULL) < 0 ||
		    read_value(&p, end, &pi->arena, &value) < 0)
			return -1;
		if (n < MIME_MAX_PARAMS)
			raw[n++] = (struct param){name, value};
	}
	return params_merge(pi, raw, n, list);
}

static int parse_content_type(struct part_info *pi)
{
	const uint8_t *p = pi->f[H_TYPE].value, *end = value_end(&pi->f[H_TYPE]);

	if (p == NULL)
		return 0;
	if (mime_skip_cfws(&p, end, NULL) < 0 || read_token(&p, end, &pi->arena, &pi->type) < 0 ||
	    mime_skip_cfws(&p, end, NULL) < 0)
		return -1;
	if (pi->type.len == 0 || p >= end || *p != '/')
		return 0;
	p++;
	if (mime_skip_cfws(&p, end, NULL) < 0 || read_token(&p, end, &pi->arena, &pi->subtype) < 0)
		return -1;
	if (pi->subtype.len == 0)
		return 0;
	pi->has_type = true;
	return parse_params(pi, p, end, &pi->params);
}

static int parse_disposition(struct part_info *pi)
{
	const uint8_t *p = pi->f[H_DISPOSITION].value, *end = value_end(&pi->f[H_DISPOSITION]);

	if (p == NULL)
		return 0;
	if (mime_skip_cfws(&p, end, NULL) < 0 || read_token(&p, end, &pi->arena, &pi->dsp) < 0)
		return -1;
	if (pi->dsp.len == 0)
		return 0;
	pi->has_dsp = true;
	return parse_params(pi, p, end, &pi->dsp_params);
}

/* Content-Language: 1#Language-tag */
static int parse_language(struct part_info *pi)
{
	const uint8_t *p = pi->f[H_LANGUAGE].value, *end = value_end(&pi->f[H_LANGUAGE]);

	while (p != NULL && p < end) {
		struct span tag;

		if (mime_skip_cfws(&p, end, NULL) < 0 || read_token(&p, end, &pi->arena, &tag) < 0)
			return -1;
		if (tag.len > 0 && buf_append(&pi->langs, &tag, sizeof(tag)) < 0)
			return -1;
		if (tag.len == 0 && p < end)
			p++; /* a comma or junk */
	}
	return 0;
}

static void info_free(struct part_info *pi)
{
	buf_free(&pi->arena);
	buf_free(&pi->params);
	buf_free(&pi->dsp_params);
	buf_free(&pi->langs);
}

static int info_parse(struct part_info *pi, const uint8_t *hdr, size_t len, bool full)
{
	static const char *const names[H_COUNT] = {
	    [H_TYPE] = "Content-Type",
	    [H_ENCODING] = "Content-Transfer-Encoding",
	    [H_ID] = "Content-ID",
	    [H_DESCRIPTION] = "Content-Description",
	    [H_MD5] = "Content-MD5",
	    [H_DISPOSITION] = "Content-Disposition",
	    [H_LANGUAGE] = "Content-Language",
	    [H_LOCATION] = "Content-Location",
	};
	size_t i;

	memset(pi, 0, sizeof(*pi));
	for (i = 0; i < H_COUNT; i++)
		pi->f[i].name = names[i];
	mime_header_scan(hdr, len, pi->f, full ? H_COUNT : 1);
	if (parse_content_type(pi) < 0 ||
	    (full && (parse_disposition(pi) < 0 || parse_language(pi) < 0))) {
		info_free(pi);
		return -1;
	}
	return 0;
}

int mime_content_kind(const uint8_t *hdr, size_t len, bool in_digest, struct mime_ctype_info *ci)
{
	struct part_info pi;
	const struct param *prm;
	size_t i, n;

	memset(ci, 0, sizeof(*ci));
	if (info_parse(&pi, hdr, len, false) < 0)
		return -1;
	if (!pi.has_type) {
		ci->kind = in_digest ? MIME_MESSAGE : MIME_LEAF;
	} else if (span_is(&pi, pi.type, "message") && span_is(&pi, pi.subtype, "rfc822")) {
		ci->kind = MIME_MESSAGE;
	} else if (span_is(&pi, pi.type, "multipart")) {
		ci->kind = MIME_MULTIPART;
		ci->digest = span_is(&pi, pi.subtype, "digest");
		prm = (const struct param *)pi.params.data;
		n = pi.params.len / sizeof(*prm);
		for (i = 0; i < n && ci->boundary == NULL; i++) {
			if (!span_is(&pi, prm[i].name, "boundary") || prm[i].value.len == 0)
				continue;
			ci->boundary = malloc(prm[i].value.len);
			if (ci->boundary == NULL) {
				info_free(&pi);
				return -1;
			}
			memcpy(ci->boundary, str_at(&pi, prm[i].value), prm[i].value.len);
			ci->boundary_len = prm[i].value.len;
		}
	}
	info_free(&pi);
	return 0;
}

/* ---- output ---------------------------------------------------------------- */

static int put_str(struct buf *out, const struct part_info *pi, struct span s)
{
	return mime_imap_string(out, str_at(pi, s), s.len);
}

static int put_upper(struct buf *out, struct part_info *pi, struct span s)
{
	uint8_t *p = pi->arena.data + s.off;
	size_t i;

	for (i = 0; i < s.len; i++) {
		if (p[i] >= 'a' && p[i] <= 'z')
			p[i] = (uint8_t)(p[i] - 'a' + 'A');
	}
	return put_str(out, pi, s);
}

static int put_params(struct buf *out, const struct part_info *pi, const struct buf *list,
		      bool default_charset)
{
	const struct param *prm = (const struct param *)list->data;
	size_t i, n = list->len / sizeof(*prm);

	if (n == 0 && !default_charset)
		return buf_append_str(out, "NIL");
	if (buf_append(out, "(", 1) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((i > 0 && buf_append(out, " ", 1) < 0) || put_str(out, pi, prm[i].name) < 0 ||
		    buf_append(out, " ", 1) < 0 || put_str(out, pi, prm[i].value) < 0)
			return -1;
		if (span_is(pi, prm[i].name, "charset"))
			default_charset = false;
	}
	if (default_charset && buf_append_str(out, n > 0 ? " \"CHARSET\" \"US-ASCII\""
							 : "\"CHARSET\" \"US-ASCII\"") < 0)
		return -1;
	return buf_append(out, ")", 1);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static int put_extension(struct buf *out, const struct part_info *pi)
{
	const struct span *langs = (const struct span *)pi->langs.data;
	size_t i, n = pi->langs.len / sizeof(*langs);

	if (buf_append(out, " ", 1) < 0)
		return -1;
	if (!pi->has_dsp) {
		if (buf_append_str(out, "NIL") < 0)
			return -1;
	} else if (buf_append(out, "(", 1) < 0 || put_str(out, pi, pi->dsp) < 0 ||
		   buf_append(out, " ", 1) < 0 || put_params(out, pi, &pi->dsp_params, false) < 0 ||
		   buf_append(out, ")", 1) < 0) {
		return -1;
	}
	if (buf_append_str(out, n > 0 ? " (" : " NIL") < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((i > 0 && buf_append(out, " ", 1) < 0) || put_str(out, pi, langs[i]) < 0)
			return -1;
	}
	if ((n > 0 && buf_append(out, ")", 1) < 0) || buf_append(out, " ", 1) < 0)
		return -1;
	return mime_imap_nstring(out, pi->f[H_LOCATION].value, pi->f[H_LOCATION].len);
}

static int put_encoding(struct buf *out, struct part_info *pi)
{
	const uint8_t *p = pi->f[H_ENCODING].value, *end = value_end(&pi->f[H_ENCODING]);
	struct span s;

	if (p == NULL)
		return buf_append_str(out, "\"7BIT\"");
	if (mime_skip_cfws(&p, end, NULL) < 0 || read_token(&p, end, &pi->arena, &s) < 0)
		return -1;
	return s.len == 0 ? buf_append_str(out, "\"7BIT\"") : put_upper(out, pi, s);
}

static int put_multipart(struct buf *out, const struct mime_tree *t, const struct mime_node *n,
			 struct part_info *pi, bool extended)
{
	uint32_t c;

	for (c = n->first_child; c != MIME_NONE; c = t->nodes[c].next) {
		if (mime_body_write(out, t, c, extended) < 0)
			return -1;
	}
	/* RFC 3501 wants at least one part: show a multipart without any as
	 * holding one empty text part (as other servers do) */
	if (n->first_child == MIME_NONE &&
	    (buf_append_str(
		 out, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0") < 0 ||
	     (extended && buf_append_str(out, " NIL NIL NIL NIL") < 0) ||
	     buf_append(out, ")", 1) < 0))
		return -1;
	if (buf_append(out, " ", 1) < 0 || put_upper(out, pi, pi->subtype) < 0)
		return -1;
	if (!extended)
		return 0;
	if (buf_append(out, " ", 1) < 0 || put_params(out, pi, &pi->params, false) < 0)
		return -1;
	return put_extension(out, pi);
}

static int put_single(struct buf *out, const struct mime_tree *t, const struct mime_node *n,
		      struct part_info *pi, bool extended)
{
	bool text;
	int ret;

	if (n->kind == MIME_MESSAGE) {
		text = false;
		ret = buf_append_str(out, "\"MESSAGE\" \"RFC822\" ") < 0 ||
		      put_params(out, pi, &pi->params, false) < 0;
	} else if (!pi->has_type || (n->flags & MIME_NODE_OPAQUE)) {
		text = true;
		ret = buf_append_str(out, "\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")");
	} else {
		text = span_is(pi, pi->type, "text");
		ret = put_upper(out, pi, pi->type) < 0 || buf_append(out, " ", 1) < 0 ||
		      put_upper(out, pi, pi->subtype) < 0 || buf_append(out, " ", 1) < 0 ||
		      put_params(out, pi, &pi->params, text) < 0;
	}
	if (ret != 0 || buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, pi->f[H_ID].value, pi->f[H_ID].len) < 0 ||
	    buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, pi->f[H_DESCRIPTION].value, pi->f[H_DESCRIPTION].len) < 0 ||
	    buf_append(out, " ", 1) < 0 || put_encoding(out, pi) < 0 ||
	    buf_printf(out, " %zu", n->end_off - n->body_off) < 0)
		return -1;
	if (text && buf_printf(out, " %zu", n->end_lf - n->body_lf) < 0)
		return -1;
	if (n->kind == MIME_MESSAGE) {
		size_t len;
		const uint8_t *hdr = mime_tree_header(t, n->first_child, &len);

		if (buf_append(out, " ", 1) < 0 || mime_envelope_write(out, hdr, len) < 0 ||
		    buf_append(out, " ", 1) < 0 ||
		    mime_body_write(out, t, n->first_child, extended) < 0 ||
		    buf_printf(out, " %zu", n->end_lf - n->body_lf) < 0)
			return -1;
	}
	if (!extended)
		return 0;
	if (buf_append(out, " ", 1) < 0 ||
	    mime_imap_nstring(out, pi->f[H_MD5].value, pi->f[H_MD5].len) < 0)
		return -1;
	return put_extension(out, pi);
}

int mime_body_write(struct buf *out, const struct mime_tree *t, uint32_t idx, bool extended)
{
	const struct mime_node *n = &t->nodes[idx];
	struct part_info pi;
	size_t len;
	const uint8_t *hdr = mime_tree_header(t, idx, &len);
	int ret;

	if (info_parse(&pi, hdr, len, true) < 0)
		return -1;
	if (buf_append(out, "(", 1) < 0)
		ret = -1;
	else if (n->kind == MIME_MULTIPART)
		ret = put_multipart(out, t, n, &pi, extended);
	else
		ret = put_single(out, t, n, &pi, extended);
	info_free(&pi);
	return ret < 0 ? -1 : buf_append(out, ")", 1);
}
