/* fuzz-tlog-json.c — canonical JSON log entries: tlog_json_decode and
 * tlog_json_encode, and tlog_json_decode_doc for documents around them.
 *
 * Trust boundary: the decoder reads entries from the database and from files
 * users hand us (an exported log to audit); the encoder's output is hashed
 * into the log, so it must be a function of the fields alone. The input is
 * decoded as JSON, and separately split at NUL bytes into key, value, ...
 * strings for the encoder. Checked:
 *   - a decoded entry has unique keys, and keys and values are UTF-8 without
 *     NUL; tlog_json_field finds each value;
 *   - encoding what was decoded fails only for an empty key, and decoding
 *     the encoding gives back the same fields;
 *   - the encoding is canonical: encoding its own decoding gives the same
 *     bytes, whatever order the fields came in;
 *   - the encoder refuses exactly empty keys, duplicate keys and non-UTF-8. */
#include "tlog/tlog.h"

#include "fuzz.h"

#define FUZZ_FIELDS_MAX 32

static size_t count_fields(char *const *f)
{
	size_t n = 0;

	while (f[2 * n] != NULL) {
		FUZZ_CHECK(f[2 * n + 1] != NULL);
		n++;
	}
	return n;
}

/* Same set of key/value pairs (order aside). */
static void check_same_fields(char *const *a, char *const *b)
{
	size_t n = count_fields(a);

	FUZZ_CHECK(count_fields(b) == n);
	for (size_t i = 0; i < n; i++) {
		const char *v = tlog_json_field(b, a[2 * i]);

		FUZZ_CHECK(v != NULL && strcmp(v, a[2 * i + 1]) == 0);
	}
}

/* FIELDS are valid for the encoder: returns 1, or 0 if it must refuse. */
static int encodable(const char *const *fields)
{
	for (size_t i = 0; fields[2 * i] != NULL; i++) {
		const char *k = fields[2 * i], *v = fields[2 * i + 1];

		if (k[0] == '\0' || !tlog_utf8_valid(k, strlen(k)) ||
		    !tlog_utf8_valid(v, strlen(v)))
			return 0;
		for (size_t j = 0; j < i; j++)
			if (strcmp(fields[2 * j], k) == 0)
				return 0;
	}
	return 1;
}

/* Encodes FIELDS; when that works, decoding gives them back and encoding
 * that again gives the same bytes. */
static void check_encode(const char *const *fields)
{
	struct buf out, again;
	char **back = NULL;
	const char *error = NULL;
	int ok;

	buf_init(&out);
	ok = tlog_json_encode(fields, &out, &error) == 0;
	FUZZ_CHECK(ok == encodable(fields));
	if (!ok) {
		FUZZ_CHECK(error != NULL);
		buf_free(&out);
		return;
	}
	FUZZ_CHECK(tlog_utf8_valid(out.data, out.len));
	for (size_t i = 0; i < out.len; i++)
		FUZZ_CHECK(out.data[i] >= 0x20); /* control characters are escaped */
	FUZZ_CHECK(tlog_json_decode(out.data, out.len, &back, &error) == 0);
	check_same_fields((char *const *)fields, back);
	buf_init(&again);
	FUZZ_CHECK(tlog_json_encode((const char *const *)back, &again, &error) == 0);
	FUZZ_CHECK(fuzz_mem_eq(again.data, again.len, out.data, out.len));
	tlog_json_fields_free(&back);
	FUZZ_CHECK(back == NULL);
	buf_free(&again);
	buf_free(&out);
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
	char **f = NULL;
	const char *error = NULL;
	size_t n;

	if (tlog_json_decode(data, size, &f, &error) < 0) {
		FUZZ_CHECK(error != NULL && f == NULL);
		return;
	}
	FUZZ_CHECK(size <= TLOG_ENTRY_MAX);
	n = count_fields(f);
	for (size_t i = 0; i < 2 * n; i++)
		FUZZ_CHECK(tlog_utf8_valid(f[i], strlen(f[i])));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(f[2 * i], f[2 * j]) != 0);
		FUZZ_CHECK(tlog_json_field(f, f[2 * i]) == f[2 * i + 1]);
	}
	check_encode((const char *const *)f);
	tlog_json_fields_free(&f);
}

/* The document decoder (numbers and lists of strings allowed) accepts every
 * entry the strict one does, with the same fields, and its values are UTF-8
 * without NUL. */
static void fuzz_decode_doc(const uint8_t *data, size_t size)
{
	char **f = NULL, **strict = NULL;
	const char *error = NULL;
	int r = tlog_json_decode_doc(data, size, &f, &error);

	if (tlog_json_decode(data, size, &strict, &error) == 0) {
		FUZZ_CHECK(r == 0);
		check_same_fields((char *const *)strict, f);
		tlog_json_fields_free(&strict);
	}
	if (r < 0) {
		FUZZ_CHECK(error != NULL && f == NULL);
		return;
	}
	for (size_t i = 0; f[i] != NULL; i++)
		FUZZ_CHECK(tlog_utf8_valid(f[i], strlen(f[i])));
	tlog_json_fields_free(&f);
}

/* The input split at NUL bytes: key, value, key, value, ... */
static void fuzz_encode(const uint8_t *data, size_t size)
{
	char *copy = xmalloc(size + 1), *fields[2 * FUZZ_FIELDS_MAX + 1];
	size_t n = 0;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy; p < copy + size && n < 2 * FUZZ_FIELDS_MAX; p += strlen(p) + 1)
		fields[n++] = p;
	n &= ~(size_t)1;
	fields[n] = NULL;
	check_encode((const char *const *)fields);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_decode_doc(data, size);
	fuzz_encode(data, size);
	return 0;
}
