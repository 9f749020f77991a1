/* tlog-json.c — canonical JSON for log entries: flat objects of strings.
 *
 * Trust boundary: the encoder's output is hashed into the log, so it must be
 * a function of the fields alone (sorted keys, one escaping rule, no
 * whitespace). The decoder reads entries back from the database or from a
 * file a user hands us, so it is strict and bounded by TLOG_ENTRY_MAX. */
#include "tlog/tlog.h"

#include <stdlib.h>
#include <string.h>

int tlog_utf8_valid(const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;

	while (p < end) {
		uint32_t cp;
		size_t n, i;

		if (p[0] < 0x80) {
			p++;
			continue;
		} else if ((p[0] & 0xe0) == 0xc0) {
			n = 2;
			cp = p[0] & 0x1f;
		} else if ((p[0] & 0xf0) == 0xe0) {
			n = 3;
			cp = p[0] & 0x0f;
		} else if ((p[0] & 0xf8) == 0xf0) {
			n = 4;
			cp = p[0] & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(end - p) < n)
			return 0;
		for (i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		p += n;
	}
	return 1;
}

static int json_append_string(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (buf_append(out, run, (size_t)(s - run)) < 0)
			return -1;
		if (c < 0x20) {
			if (buf_append(out, esc, sizeof(esc)) < 0)
				return -1;
		} else {
			esc[1] = (char)c;
			if (buf_append(out, esc, 2) < 0)
				return -1;
		}
		run = s + 1;
	}
	return buf_append(out, run, (size_t)(s - run));
}

static int field_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	return strcmp(x[0], y[0]);
}

int tlog_json_encode(const char *const *fields, struct buf *out, const char **error_r)
{
	const char **pairs;
	size_t n = 0, i;
	int ret = -1;

	while (fields[2 * n] != NULL) {
		if (fields[2 * n + 1] == NULL) {
			*error_r = "field without a value";
			return -1;
		}
		n++;
	}
	pairs = xcalloc(2 * n + 1, sizeof(*pairs));
	memcpy(pairs, fields, 2 * n * sizeof(*pairs));
	for (i = 0; i < n; i++) {
		const char *k = pairs[2 * i], *v = pairs[2 * i + 1];

		if (k[0] == '\0' || !tlog_utf8_valid(k, strlen(k)) ||
		    !tlog_utf8_valid(v, strlen(v))) {
			*error_r = "field names must be non-empty UTF-8 and values UTF-8";
			goto out;
		}
	}
	/* Bytewise order of the UTF-8 keys (strcmp compares unsigned chars). */
	qsort(pairs, n, 2 * sizeof(*pairs), field_cmp);
	if (buf_append(out, "{", 1) < 0)
		goto oom;
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(pairs[2 * i - 2], pairs[2 * i]) == 0) {
			*error_r = "duplicate field name";
			goto out;
		}
		if ((i > 0 && buf_append(out, ",", 1) < 0) || buf_append(out, "\"", 1) < 0 ||
		    json_append_string(out, pairs[2 * i]) < 0 || buf_append(out, "\":\"", 3) < 0 ||
		    json_append_string(out, pairs[2 * i + 1]) < 0 || buf_append(out, "\"", 1) < 0)
			goto oom;
	}
	if (buf_append(out, "}", 1) < 0)
		goto oom;
	ret = 0;
	goto out;
oom:
	*error_r = "out of memory";
out:
	free(pairs);
	return ret;
}

struct json_reader {
	const uint8_t *p, *end;
};

static int hex4(const uint8_t *p, uint32_t *v_r)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		uint8_t c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

static int put_utf8(struct buf *b, uint32_t cp)
{
	uint8_t u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* Reads one JSON string at r->p into a malloc'd C string (no NULs). */
static char *json_read_string(struct json_reader *r)
{
	const uint8_t *start;
	struct buf b;
	uint32_t cp, lo;

	buf_init(&b);
	if (r->p >= r->end || *r->p != '"')
		return NULL;
	for (start = ++r->p; r->p < r->end && *r->p != '"'; r->p++) {
		if (*r->p < 0x20)
			goto fail;
		if (*r->p != '\\')
			continue;
		if (buf_append(&b, start, (size_t)(r->p - start)) < 0 || r->end - r->p < 2)
			goto fail;
		r->p++;
		switch (*r->p) {
		case '"':
		case '\\':
		case '/':
			cp = *r->p;
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (r->end - r->p < 5 || hex4(r->p + 1, &cp) < 0)
				goto fail;
			r->p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto fail;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (r->end - r->p < 7 || r->p[1] != '\\' || r->p[2] != 'u' ||
				    hex4(r->p + 3, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					goto fail;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				r->p += 6;
			}
			break;
		default:
			goto fail;
		}
		if (cp == 0 || put_utf8(&b, cp) < 0)
			goto fail;
		start = r->p + 1;
	}
	if (r->p >= r->end || buf_append(&b, start, (size_t)(r->p - start)) < 0)
		goto fail;
	r->p++;
	if (!tlog_utf8_valid(b.data, b.len))
		goto fail;
	buf_cstr(&b);
	return (char *)b.data;
fail:
	buf_free(&b);
	return NULL;
}

static void skip_ws(struct json_reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* A value of a document (tlog_json_decode_doc): a string, a non-negative
 * integer (kept as its digits) or an array of strings without spaces (kept
 * joined by single spaces). */
static char *json_read_doc_value(struct json_reader *r)
{
	const uint8_t *start = r->p;
	struct buf b;
	char *s;

	if (r->p >= r->end || *r->p == '"')
		return json_read_string(r);
	if (*r->p >= '0' && *r->p <= '9') {
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
		if ((start[0] == '0' && r->p - start > 1) || r->p - start > 20)
			return NULL;
		s = xmalloc((size_t)(r->p - start) + 1);
		memcpy(s, start, (size_t)(r->p - start));
		s[r->p - start] = '\0';
		return s;
	}
	if (*r->p++ != '[')
		return NULL;
	buf_init(&b);
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return xstrdup("");
	}
	for (;;) {
		skip_ws(r);
		s = json_read_string(r);
		if (s == NULL || s[0] == '\0' || strchr(s, ' ') != NULL ||
		    (b.len > 0 && buf_append(&b, " ", 1) < 0) || buf_append_str(&b, s) < 0) {
			free(s);
			goto fail;
		}
		free(s);
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			break;
		}
		goto fail;
	}
	buf_cstr(&b);
	return (char *)b.data;
fail:
	buf_free(&b);
	return NULL;
}

void tlog_json_fields_free(char ***fields)
{
	char **f = *fields;
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; f[i] != NULL; i++)
		free(f[i]);
	free(f);
	*fields = NULL;
}

static int json_decode(const void *json, size_t len, int doc, char ***fields_r,
		       const char **error_r)
{
	struct json_reader r = {json, (const uint8_t *)json + len};
	char **f = NULL;
	size_t n = 0, i;

	if (len > TLOG_ENTRY_MAX)
		goto fail;
	skip_ws(&r);
	if (r.p >= r.end || *r.p++ != '{')
		goto fail;
	f = xcalloc(1, sizeof(*f));
	skip_ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
		goto done;
	}
	for (;;) {
		f = reallocarray(f, 2 * n + 3, sizeof(*f));
		if (f == NULL)
			log_fatal("tlog: out of memory decoding an entry");
		f[2 * n] = f[2 * n + 1] = f[2 * n + 2] = NULL;
		skip_ws(&r);
		if ((f[2 * n] = json_read_string(&r)) == NULL)
			goto fail;
		skip_ws(&r);
		if (r.p >= r.end || *r.p++ != ':')
			goto fail;
		skip_ws(&r);
		f[2 * n + 1] = doc ? json_read_doc_value(&r) : json_read_string(&r);
		if (f[2 * n + 1] == NULL)
			goto fail;
		for (i = 0; i < n; i++) {
			if (strcmp(f[2 * i], f[2 * n]) == 0)
				goto fail;
		}
		n++;
		skip_ws(&r);
		if (r.p < r.end && *r.p == ',') {
			r.p++;
			continue;
		}
		if (r.p < r.end && *r.p == '}') {
			r.p++;
			break;
		}
		goto fail;
	}
done:
	skip_ws(&r);
	if (r.p != r.end)
		goto fail;
	*fields_r = f;
	return 0;
fail:
	tlog_json_fields_free(&f);
	*error_r = doc ? "not a flat JSON object of strings, numbers and lists of strings"
		       : "entry is not a flat JSON object of strings";
	return -1;
}

int tlog_json_decode(const void *json, size_t len, char ***fields_r, const char **error_r)
{
	return json_decode(json, len, 0, fields_r, error_r);
}

int tlog_json_decode_doc(const void *json, size_t len, char ***fields_r, const char **error_r)
{
	return json_decode(json, len, 1, fields_r, error_r);
}

const char *tlog_json_field(char *const *fields, const char *key)
{
	size_t i;

	for (i = 0; fields[i] != NULL; i += 2) {
		if (strcmp(fields[i], key) == 0)
			return fields[i + 1];
	}
	return NULL;
}
