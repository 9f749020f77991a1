/* fuzz-mime.c — the metadata of an untrusted message: mime_meta_build,
 * the mime_meta_stream it is made of, mime_meta_get and mime_part_find.
 *
 * Trust boundary: the message is whatever a remote sender put in DATA. Its
 * metadata goes verbatim into IMAP FETCH responses, so checked here besides
 * memory safety:
 *   - building never fails, and every field is present and well formed;
 *   - a stream fed the message in pieces (sizes drawn from the input, from
 *     single bytes up) gives exactly what mime_meta_build() gives;
 *   - ENVELOPE, BODYSTRUCTURE and BODY are each exactly one IMAP value
 *     (RFC 3501 syntax: NIL, numbers, quoted strings without 8-bit bytes or
 *     line breaks, literals without NUL, lists separated by single spaces,
 *     no empty list), and ENVELOPE has the ten fields with address lists of
 *     four-part addresses and well-nested group markers;
 *   - HEADER is the message's header section and LINES its LF count;
 *   - for every part BODY describes, mime_part_find() finds the section with
 *     exactly the size (and for text, the line count) that BODY states, and
 *     agrees on which parts are messages; sections past the last part of a
 *     multipart are not found. */
#include "mime/mime.h"

#include "fuzz.h"

#include <ctype.h>

#define FUZZ_VALUE_DEPTH_MAX   1024
#define FUZZ_PART_LOOKUPS_MAX  64
#define FUZZ_SECTION_DEPTH_MAX 128

/* ---- a strict reader for IMAP values -------------------------------------------- */

enum iv_type { IV_NIL, IV_NUMBER, IV_STRING, IV_LIST };

struct iv {
	enum iv_type type;
	const uint8_t *str; /* IV_STRING: raw bytes (quoted: still escaped) */
	size_t len;
	int quoted;
	uint64_t number;
	struct iv *items; /* IV_LIST */
	size_t count;
	int joined; /* a list item that follows a list without a space */
};

struct iv_reader {
	const uint8_t *p, *end;
};

static void iv_free(struct iv *v)
{
	for (size_t i = 0; i < v->count; i++)
		iv_free(&v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

/* Reads one value; any deviation from the grammar is an invariant failure. */
static void iv_read(struct iv_reader *r, struct iv *v, unsigned depth)
{
	int joined = 0;

	memset(v, 0, sizeof(*v));
	FUZZ_CHECK(depth < FUZZ_VALUE_DEPTH_MAX);
	FUZZ_CHECK(r->p < r->end);
	if (*r->p == '(') {
		r->p++;
		for (;;) {
			v->items = realloc(v->items, (v->count + 1) * sizeof(*v->items));
			FUZZ_CHECK(v->items != NULL);
			iv_read(r, &v->items[v->count], depth + 1);
			v->items[v->count++].joined = joined;
			FUZZ_CHECK(r->p < r->end);
			if (*r->p == ')')
				break;
			if (*r->p == '(' && v->items[v->count - 1].type == IV_LIST) {
				/* 1*body and 1*address: no space between */
				joined = 1;
				continue;
			}
			FUZZ_CHECK(*r->p == ' ');
			r->p++;
			joined = 0;
		}
		r->p++;
		v->type = IV_LIST;
	} else if (*r->p == '"') {
		v->type = IV_STRING;
		v->quoted = 1;
		v->str = ++r->p;
		for (;;) {
			FUZZ_CHECK(r->p < r->end);
			if (*r->p == '"')
				break;
			FUZZ_CHECK(*r->p != '\0' && *r->p != '\r' && *r->p != '\n' && *r->p < 0x80);
			if (*r->p == '\\') {
				r->p++;
				FUZZ_CHECK(r->p < r->end && (*r->p == '"' || *r->p == '\\'));
			}
			r->p++;
		}
		v->len = (size_t)(r->p - v->str);
		r->p++;
	} else if (*r->p == '{') {
		uint64_t n = 0;

		r->p++;
		FUZZ_CHECK(r->p < r->end && isdigit(*r->p));
		FUZZ_CHECK(*r->p != '0' || (r->p + 1 < r->end && r->p[1] == '}'));
		while (r->p < r->end && isdigit(*r->p)) {
			FUZZ_CHECK(n < UINT64_MAX / 10);
			n = n * 10 + (uint64_t)(*r->p++ - '0');
		}
		FUZZ_CHECK(r->end - r->p >= 3 && memcmp(r->p, "}\r\n", 3) == 0);
		r->p += 3;
		FUZZ_CHECK(n <= (uint64_t)(r->end - r->p));
		FUZZ_CHECK(memchr(r->p, '\0', (size_t)n) == NULL);
		v->type = IV_STRING;
		v->str = r->p;
		v->len = (size_t)n;
		r->p += n;
	} else if (isdigit(*r->p)) {
		FUZZ_CHECK(*r->p != '0' || r->p + 1 == r->end || !isdigit(r->p[1]));
		while (r->p < r->end && isdigit(*r->p)) {
			FUZZ_CHECK(v->number <= (UINT64_MAX - 9) / 10);
			v->number = v->number * 10 + (uint64_t)(*r->p++ - '0');
		}
		v->type = IV_NUMBER;
	} else {
		FUZZ_CHECK(r->end - r->p >= 3 && memcmp(r->p, "NIL", 3) == 0);
		r->p += 3;
		v->type = IV_NIL;
	}
}

/* FIELD as exactly one IMAP value. */
static void iv_parse(const uint8_t *field, size_t len, struct iv *v)
{
	struct iv_reader r = {field, field + len};

	iv_read(&r, v, 0);
	FUZZ_CHECK(r.p == r.end);
}

static int iv_is(const struct iv *v, const char *word)
{
	return v->type == IV_STRING && v->quoted && v->len == strlen(word) &&
	       memcmp(v->str, word, v->len) == 0;
}

/* A list whose items are all separated by a space. */
static void check_spaced(const struct iv *v)
{
	for (size_t i = 0; i < v->count; i++)
		FUZZ_CHECK(!v->items[i].joined);
}

static void check_nstring(const struct iv *v)
{
	FUZZ_CHECK(v->type == IV_NIL || v->type == IV_STRING);
}

/* ---- ENVELOPE ---------------------------------------------------------------------- */

static void check_addresses(const struct iv *v)
{
	int in_group = 0;

	if (v->type == IV_NIL)
		return;
	FUZZ_CHECK(v->type == IV_LIST);
	for (size_t i = 0; i < v->count; i++) {
		const struct iv *a = &v->items[i];

		FUZZ_CHECK(a->type == IV_LIST && a->count == 4);
		FUZZ_CHECK(a->joined == (i > 0));
		for (size_t k = 0; k < 4; k++)
			check_nstring(&a->items[k]);
		if (a->items[3].type != IV_NIL) {
			FUZZ_CHECK(a->items[2].type != IV_NIL);
			continue;
		}
		/* Host NIL: a group marker, name and route NIL. */
		FUZZ_CHECK(a->items[0].type == IV_NIL && a->items[1].type == IV_NIL);
		if (a->items[2].type != IV_NIL) {
			FUZZ_CHECK(!in_group);
			in_group = 1;
		} else {
			FUZZ_CHECK(in_group);
			in_group = 0;
		}
	}
	FUZZ_CHECK(!in_group);
}

static void check_envelope(const struct iv *env)
{
	FUZZ_CHECK(env->type == IV_LIST && env->count == 10);
	check_spaced(env);
	check_nstring(&env->items[0]);
	check_nstring(&env->items[1]);
	for (size_t i = 2; i < 8; i++)
		check_addresses(&env->items[i]);
	check_nstring(&env->items[8]);
	check_nstring(&env->items[9]);
	/* Sender and Reply-To fall back to From. */
	if (env->items[2].type != IV_NIL)
		FUZZ_CHECK(env->items[3].type != IV_NIL && env->items[4].type != IV_NIL);
}

/* ---- BODY / BODYSTRUCTURE against mime_part_find ------------------------------------ */

struct fuzz_msg {
	const uint8_t *data;
	size_t len;
	unsigned lookups;
};

static size_t count_lf(const uint8_t *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

static int find_part(struct fuzz_msg *m, const unsigned *path, size_t depth,
		     struct mime_part_range *r)
{
	int ret;

	m->lookups++;
	ret = mime_part_find(m->data, m->len, path, depth, r);
	FUZZ_CHECK(ret == 0 || ret == 1);
	if (ret == 1) {
		FUZZ_CHECK(r->mime_off <= r->body_off && r->body_off <= r->end_off &&
			   r->end_off <= m->len);
		if (r->is_message)
			FUZZ_CHECK(r->body_off <= r->text_off && r->text_off <= r->end_off);
	}
	return ret;
}

static int is_multipart(const struct iv *body)
{
	return body->count > 0 && body->items[0].type == IV_LIST;
}

static void check_part(struct fuzz_msg *m, const struct iv *body, unsigned *path, size_t depth,
		       int extended, int message_body);

/* BODY is the body of a message whose section prefix is PATH[0..DEPTH). */
static void check_message_body(struct fuzz_msg *m, const struct iv *body, unsigned *path,
			       size_t depth, int extended)
{
	FUZZ_CHECK(body->type == IV_LIST);
	if (depth >= FUZZ_SECTION_DEPTH_MAX)
		return;
	if (is_multipart(body)) {
		check_part(m, body, path, depth, extended, 1);
		return;
	}
	path[depth] = 1;
	check_part(m, body, path, depth + 1, extended, 0);
}

/* BODY is the part PATH[0..DEPTH), or with MESSAGE_BODY, the multipart body
 * of the message PATH[0..DEPTH) (whose parts continue its numbering). */
static void check_part(struct fuzz_msg *m, const struct iv *body, unsigned *path, size_t depth,
		       int extended, int message_body)
{
	struct mime_part_range r;
	size_t k;

	FUZZ_CHECK(body->type == IV_LIST);
	if (is_multipart(body)) {
		/* body+ SP subtype [SP params SP dsp SP lang SP loc] */
		for (k = 0; k < body->count && body->items[k].type == IV_LIST; k++)
			;
		FUZZ_CHECK(k >= 1 && body->count == k + (extended ? 5 : 1));
		FUZZ_CHECK(body->items[k].type == IV_STRING && !body->items[k].joined);
		for (size_t i = 1; i < k; i++)
			FUZZ_CHECK(body->items[i].joined);
		if (depth >= FUZZ_SECTION_DEPTH_MAX)
			return;
		if (!message_body && m->lookups < FUZZ_PART_LOOKUPS_MAX) {
			/* A multipart that is a part (not a message's body). */
			FUZZ_CHECK(find_part(m, path, depth, &r) == 1);
			FUZZ_CHECK(!r.is_message);
		}
		for (size_t i = 0; i < k && m->lookups < FUZZ_PART_LOOKUPS_MAX; i++) {
			path[depth] = (unsigned)i + 1;
			check_part(m, &body->items[i], path, depth + 1, extended, 0);
		}
		if (m->lookups < FUZZ_PART_LOOKUPS_MAX) {
			path[depth] = (unsigned)k + 1;
			FUZZ_CHECK(find_part(m, path, depth + 1, &r) == 0);
			path[depth] = 0;
			FUZZ_CHECK(find_part(m, path, depth + 1, &r) == 0);
		}
		return;
	}
	/* type subtype params id desc enc size [envelope body] [lines] [ext] */
	FUZZ_CHECK(body->count >= 7);
	check_spaced(body);
	FUZZ_CHECK(body->items[0].type == IV_STRING && body->items[1].type == IV_STRING);
	FUZZ_CHECK(body->items[2].type == IV_NIL ||
		   (body->items[2].type == IV_LIST && body->items[2].count % 2 == 0));
	check_nstring(&body->items[3]);
	check_nstring(&body->items[4]);
	FUZZ_CHECK(body->items[5].type == IV_STRING);
	FUZZ_CHECK(body->items[6].type == IV_NUMBER);
	if (m->lookups >= FUZZ_PART_LOOKUPS_MAX)
		return;
	FUZZ_CHECK(find_part(m, path, depth, &r) == 1);
	FUZZ_CHECK(body->items[6].number == r.end_off - r.body_off);
	if (iv_is(&body->items[0], "MESSAGE") && iv_is(&body->items[1], "RFC822") &&
	    body->count >= 10 && body->items[7].type == IV_LIST) {
		FUZZ_CHECK(r.is_message);
		check_envelope(&body->items[7]);
		FUZZ_CHECK(body->items[9].type == IV_NUMBER);
		FUZZ_CHECK(body->items[9].number ==
			   count_lf(m->data + r.body_off, r.end_off - r.body_off));
		FUZZ_CHECK(body->count == (extended ? 14u : 10u));
		check_message_body(m, &body->items[8], path, depth, extended);
		return;
	}
	FUZZ_CHECK(!r.is_message);
	if (iv_is(&body->items[0], "TEXT")) {
		FUZZ_CHECK(body->count == (extended ? 12u : 8u));
		FUZZ_CHECK(body->items[7].type == IV_NUMBER);
		FUZZ_CHECK(body->items[7].number ==
			   count_lf(m->data + r.body_off, r.end_off - r.body_off));
	} else {
		FUZZ_CHECK(body->count == (extended ? 11u : 7u));
	}
}

/* ---- the stream in pieces ---------------------------------------------------------- */

/* Feeds DATA to a stream in pieces of 1 to 2^k bytes (k from 0 to 12, drawn
 * with the pieces from a generator seeded by the input) and checks that the
 * result is WHOLE. */
static void check_split(const uint8_t *data, size_t size, const struct buf *whole)
{
	struct mime_meta_stream *ms = mime_meta_stream_new();
	uint64_t st = 0xcbf29ce484222325ULL;
	size_t pos = 0, max;
	struct buf meta;

	for (size_t i = 0; i < size; i++)
		st = (st ^ data[i]) * 0x100000001b3ULL;
	st |= 1;
	FUZZ_CHECK(ms != NULL);
	max = (size_t)1 << (st % 13);
	while (pos < size) {
		size_t n;

		st ^= st << 13;
		st ^= st >> 7;
		st ^= st << 17;
		n = 1 + (size_t)(st % max);
		if (n > size - pos)
			n = size - pos;
		FUZZ_CHECK(mime_meta_stream_write(ms, data + pos, n) == 0);
		pos += n;
	}
	buf_init(&meta);
	FUZZ_CHECK(mime_meta_stream_finish(ms, &meta) == 0);
	mime_meta_stream_free(&ms);
	FUZZ_CHECK(ms == NULL);
	FUZZ_CHECK(fuzz_mem_eq(meta.data, meta.len, whole->data, whole->len));
	buf_free(&meta);
}

/* ---- the fuzz target ---------------------------------------------------------------- */

static void check_field(const struct buf *meta, enum mime_field field, const uint8_t **val_r,
			size_t *len_r)
{
	FUZZ_CHECK(mime_meta_get(meta->data, meta->len, field, val_r, len_r) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned no_path[1];
	struct fuzz_msg m = {data, size, 0};
	unsigned path[FUZZ_SECTION_DEPTH_MAX + 1];
	const uint8_t *val;
	size_t len;
	struct iv env, bs, body;
	struct mime_part_range whole;
	struct buf meta;
	char lines[32];

	buf_init(&meta);
	FUZZ_CHECK(buf_append(&meta, "x", 1) == 0); /* appends, keeps what was there */
	FUZZ_CHECK(mime_meta_build(data, size, &meta) == 0);
	FUZZ_CHECK(meta.data[0] == 'x');
	memmove(meta.data, meta.data + 1, --meta.len);
	check_split(data, size, &meta);

	check_field(&meta, MIME_FIELD_ENVELOPE, &val, &len);
	iv_parse(val, len, &env);
	check_envelope(&env);
	check_field(&meta, MIME_FIELD_BODYSTRUCTURE, &val, &len);
	iv_parse(val, len, &bs);
	check_field(&meta, MIME_FIELD_BODY, &val, &len);
	iv_parse(val, len, &body);
	check_field(&meta, MIME_FIELD_LINES, &val, &len);
	snprintf(lines, sizeof(lines), "%zu", count_lf(data, size));
	FUZZ_CHECK(fuzz_mem_eq(val, len, lines, strlen(lines)));
	check_field(&meta, MIME_FIELD_HEADER, &val, &len);
	FUZZ_CHECK(len <= size && fuzz_mem_eq(val, len, data, len));

	/* Section "" is the whole message; its text follows the header. */
	FUZZ_CHECK(find_part(&m, no_path, 0, &whole) == 1);
	FUZZ_CHECK(whole.mime_off == 0 && whole.body_off == 0 && whole.end_off == size);
	FUZZ_CHECK(whole.is_message && whole.text_off == len);

	check_message_body(&m, &body, path, 0, 0);
	m.lookups = 0;
	check_message_body(&m, &bs, path, 0, 1);

	iv_free(&env);
	iv_free(&bs);
	iv_free(&body);
	buf_free(&meta);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_init();
	return 0;
}
