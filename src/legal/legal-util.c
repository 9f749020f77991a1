/* legal-util.c — names, dates, ids, commitments and output helpers of the
 * legal module, and the request store's sealing key.
 *
 * Trust boundary: parses operator input (instrument and scope names, dates,
 * ISO codes, free text) before anything is stored or logged. The sealing key
 * file is created readable by its owner only. */
#include "legal/legal-private.h"

#include "tlog/tlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const legal_instruments[] = {
    [LEGAL_WARRANT] = "warrant",
    [LEGAL_SUBPOENA] = "subpoena",
    [LEGAL_COURT_ORDER] = "court-order",
    [LEGAL_PRESERVATION] = "preservation",
};

static const char *const legal_scopes[] = {
    [LEGAL_SCOPE_CONTENT] = "content",
    [LEGAL_SCOPE_NON_CONTENT] = "non-content",
};

static const char *const legal_decisions[] = {
    [LEGAL_UNDECIDED] = "",        [LEGAL_ACCEPTED] = "accepted", [LEGAL_REFUSED] = "refused",
    [LEGAL_REJECTED] = "rejected", [LEGAL_NO_DATA] = "no-data",
};

const char *legal_instrument_name(enum legal_instrument i)
{
	return (size_t)i < N_ELEMENTS(legal_instruments) ? legal_instruments[i] : "?";
}

int legal_instrument_parse(const char *s, enum legal_instrument *i_r)
{
	for (size_t i = 0; i < N_ELEMENTS(legal_instruments); i++) {
		if (strcmp(s, legal_instruments[i]) == 0) {
			*i_r = (enum legal_instrument)i;
			return 0;
		}
	}
	return -1;
}

const char *legal_scope_name(enum legal_scope s)
{
	return (size_t)s < N_ELEMENTS(legal_scopes) ? legal_scopes[s] : "?";
}

int legal_scope_parse(const char *s, enum legal_scope *s_r)
{
	for (size_t i = 0; i < N_ELEMENTS(legal_scopes); i++) {
		if (strcmp(s, legal_scopes[i]) == 0) {
			*s_r = (enum legal_scope)i;
			return 0;
		}
	}
	return -1;
}

const char *legal_decision_name(enum legal_decision d)
{
	return (size_t)d < N_ELEMENTS(legal_decisions) ? legal_decisions[d] : "?";
}

enum legal_decision legal_decision_parse(const char *s)
{
	for (size_t i = 1; i < N_ELEMENTS(legal_decisions); i++)
		if (strcmp(s, legal_decisions[i]) == 0)
			return (enum legal_decision)i;
	return LEGAL_UNDECIDED;
}

static int legal_digits(const char *s, size_t n, int *v_r)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return 0;
}

int legal_date_parse(const char *s, int end_of_day, int64_t *t_r)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h = 0, mi = 0, sec = 0, bare;
	struct tm tm;
	size_t len = strlen(s);

	if (len != 10 && len != 20)
		return -1;
	bare = len == 10;
	if (legal_digits(s, 4, &y) < 0 || s[4] != '-' || legal_digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || legal_digits(s + 8, 2, &d) < 0)
		return -1;
	if (!bare && (s[10] != 'T' || legal_digits(s + 11, 2, &h) < 0 || s[13] != ':' ||
		      legal_digits(s + 14, 2, &mi) < 0 || s[16] != ':' ||
		      legal_digits(s + 17, 2, &sec) < 0 || s[19] != 'Z'))
		return -1;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || sec > 59)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*t_r = (int64_t)timegm(&tm) + (bare && end_of_day ? 86400 : 0);
	return 0;
}

void legal_time_format(int64_t t, char out[LEGAL_TIME_MAX])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, LEGAL_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void legal_id_format(uint64_t index, char out[LEGAL_ID_MAX])
{
	snprintf(out, LEGAL_ID_MAX, "LR-%llu", (unsigned long long)index);
}

int legal_id_parse(const char *id, uint64_t *index_r)
{
	unsigned long long v;
	char *end;

	if (strncmp(id, "LR-", 3) != 0 || id[3] < '0' || id[3] > '9')
		return -1;
	errno = 0;
	v = strtoull(id + 3, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT64_MAX)
		return -1;
	*index_r = v;
	return 0;
}

void legal_commitment(const char *tag_hex, const char *nonce_hex, char out[LEGAL_HASH_HEX_MAX])
{
	struct seal_sha256_state st;
	uint8_t hash[32];

	seal_sha256_init(&st);
	seal_sha256_update(&st, "sealmail-legal-account\n", 23);
	seal_sha256_update(&st, tag_hex, strlen(tag_hex));
	seal_sha256_update(&st, "\n", 1);
	seal_sha256_update(&st, nonce_hex, strlen(nonce_hex));
	seal_sha256_final(&st, hash);
	legal_hex(hash, sizeof(hash), out);
}

void legal_put(struct buf *b, const char *s)
{
	if (buf_append_str(b, s) < 0)
		log_fatal("out of memory");
}

void legal_putf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_append(b, s, (size_t)n) < 0)
		log_fatal("out of memory");
	free(s);
}

void legal_put_json(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	legal_put(b, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};

		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			esc[2] = '\0';
			legal_put(b, esc);
		} else if (c < 0x20 || c == 0x7f) {
			legal_put(b, esc);
		} else if (buf_append(b, s, 1) < 0) {
			log_fatal("out of memory");
		}
	}
	legal_put(b, "\"");
}

void legal_hex(const void *data, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = '\0';
}

int legal_text_valid(const char *s, size_t max, int multiline)
{
	size_t len = strlen(s);

	if (len == 0 || len > max || !tlog_utf8_valid(s, len))
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
			return 0;
	return 1;
}

int legal_jurisdiction_parse(const char *s, char out[3])
{
	if (strlen(s) != 2)
		return -1;
	for (int i = 0; i < 2; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return -1;
		out[i] = c;
	}
	out[2] = '\0';
	return 0;
}

int legal_key_load(const char *keys_dir, uint8_t key_r[SEAL_KEY_BYTES], const char **error_r)
{
	char *path = fs_path_join(keys_dir, LEGAL_KEY_NAME);
	uint8_t *data = NULL;
	size_t len = 0;
	int ret = -1;

	if (fs_read_all(path, &data, &len) < 0) {
		if (errno != ENOENT) {
			*error_r = str_tfmt("cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (fs_mkdir_p(keys_dir, 0700) < 0) {
			*error_r = str_tfmt("cannot create %s: %s", keys_dir, strerror(errno));
			goto out;
		}
		seal_random(key_r, SEAL_KEY_BYTES);
		if (fs_write_atomic(path, key_r, SEAL_KEY_BYTES, 0600) < 0) {
			*error_r = str_tfmt("cannot write %s: %s", path, strerror(errno));
			mem_wipe(key_r, SEAL_KEY_BYTES);
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (len != SEAL_KEY_BYTES) {
		*error_r = str_tfmt("%s: expected %d bytes", path, SEAL_KEY_BYTES);
		goto out;
	}
	memcpy(key_r, data, SEAL_KEY_BYTES);
	ret = 0;
out:
	if (data != NULL) {
		mem_wipe(data, len);
		free(data);
	}
	free(path);
	return ret;
}
