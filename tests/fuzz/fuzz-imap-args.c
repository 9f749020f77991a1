/* fuzz-imap-args.c — the IMAP command arguments parsed past imap-parser.c:
 * FETCH attributes with body sections and partials (imap_fetch_spec_parse,
 * imap_section_parse, imap_partial_parse), flag lists (imap_flags_parse),
 * APPEND's date-time (imap_date_time_parse) and SELECT's QRESYNC parameter
 * (imap_qresync_parse).
 *
 * Trust boundary: every argument comes from a logged-in IMAP client.
 * imap-cmd-append.c and imap-cmd-select.c are compiled into this harness
 * (their parsers are static); the rest of the IMAP module is linked.
 *
 * Input: the first byte picks the parser, the rest is its argument text.
 * Checked besides memory safety and leaks:
 *   fetch     at most IMAP_FETCH_ITEMS_MAX items, part paths within
 *             IMAP_SECTION_DEPTH_MAX of numbers 1..100000, header field lists
 *             of 1..IMAP_HEADER_FIELDS_MAX names without ':' or space, a
 *             partial has a non-zero count, every section item has the
 *             name it is answered with; BINARY has no HEADER/TEXT/MIME part;
 *   flags     the keywords are space-separated atoms of 1..100 characters
 *             without list or quoting specials, and only known system flags
 *             are set;
 *   date      an accepted date-time is exactly "dd-Mon-yyyy hh:mm:ss +zzzz"
 *             (day may be " d" or "d") with every field in range, and formatting
 *             its time back in that zone gives the same fields;
 *   qresync   an accepted parameter has a non-zero UIDVALIDITY and modseq. */
#include "../../src/imap/imap-cmd-append.c"
#include "../../src/imap/imap-cmd-select.c"
#include "imap/imap-fetch.h"

#include "fuzz.h"

#include <ctype.h>

static void fuzz_fetch(const struct imap_args *args)
{
	struct imap_fetch_spec spec;
	const char *error = NULL;

	for (size_t a = 0; a < args->count; a++) {
		if (imap_fetch_spec_parse(&args->list[a], &spec, &error) < 0) {
			FUZZ_CHECK(error != NULL);
			imap_fetch_spec_free(&spec);
			continue;
		}
		FUZZ_CHECK(spec.count > 0 && spec.count <= IMAP_FETCH_ITEMS_MAX);
		for (size_t i = 0; i < spec.count; i++) {
			const struct imap_fetch_item *it = &spec.items[i];

			FUZZ_CHECK(it->depth <= IMAP_SECTION_DEPTH_MAX);
			for (size_t d = 0; d < it->depth; d++)
				FUZZ_CHECK(it->path[d] >= 1 && it->path[d] <= 100000);
			if (it->kind != IMAP_FETCH_SECTION && it->kind != IMAP_FETCH_BINARY_SIZE) {
				FUZZ_CHECK(it->name == NULL && it->field_count == 0);
				continue;
			}
			FUZZ_CHECK(it->name != NULL);
			FUZZ_CHECK(strncmp(it->name, "BODY[", 5) == 0 ||
				   strncmp(it->name, "BINARY[", 7) == 0 ||
				   strncmp(it->name, "BINARY.SIZE[", 12) == 0 ||
				   strncmp(it->name, "RFC822", 6) == 0);
			if (it->binary)
				FUZZ_CHECK(it->part == IMAP_SECTION_ALL);
			if (it->part == IMAP_SECTION_MIME)
				FUZZ_CHECK(it->depth > 0);
			if (it->part == IMAP_SECTION_HEADER_FIELDS ||
			    it->part == IMAP_SECTION_HEADER_FIELDS_NOT) {
				FUZZ_CHECK(it->field_count >= 1 &&
					   it->field_count <= IMAP_HEADER_FIELDS_MAX);
				for (size_t f = 0; f < it->field_count; f++)
					FUZZ_CHECK(it->fields[f][0] != '\0' &&
						   strpbrk(it->fields[f], ": ") == NULL);
			} else {
				FUZZ_CHECK(it->field_count == 0);
			}
			if (it->partial)
				FUZZ_CHECK(it->count > 0 && it->kind == IMAP_FETCH_SECTION);
		}
		imap_fetch_spec_free(&spec);
	}
}

static void fuzz_flags(const struct imap_args *args)
{
	const uint32_t known = STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | STORE_FLAG_DELETED |
			       STORE_FLAG_SEEN | STORE_FLAG_DRAFT;

	for (size_t a = 0; a < args->count; a++) {
		const char *error = NULL;
		char *kw = (char *)"unset";
		uint32_t flags = ~0u;

		if (imap_flags_parse(&args->list[a], &flags, &kw, &error) < 0) {
			FUZZ_CHECK(error != NULL);
			continue;
		}
		FUZZ_CHECK((flags & ~known) == 0);
		if (kw == NULL)
			continue;
		FUZZ_CHECK(kw[0] != '\0');
		for (char *w = kw, *end; *w != '\0'; w = *end ? end + 1 : end) {
			end = strchr(w, ' ');
			if (end == NULL)
				end = w + strlen(w);
			FUZZ_CHECK(end > w && end - w <= 100);
			for (const char *c = w; c < end; c++)
				FUZZ_CHECK(strchr("()[]{%*\"\\", *c) == NULL &&
					   (unsigned char)*c > 0x20 && *c != 0x7f);
		}
		free(kw);
	}
}

static void fuzz_date(const char *s)
{
	char fixed[64];
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t t = 0, local;
	struct tm tm;
	int zone, sign;
	char back[64];

	if (imap_date_time_parse(s, &t) < 0)
		return;
	/* A one-digit day may also come without its space. */
	if (s[0] != '\0' && s[1] == '-') {
		snprintf(fixed, sizeof(fixed), " %.40s", s);
		s = fixed;
	}
	/* "dd-Mon-yyyy hh:mm:ss +zzzz": 26 bytes, digits where digits go. */
	FUZZ_CHECK(strlen(s) == 26);
	for (size_t i = 0; i < 26; i++) {
		const char *shape = "dd-Mmm-dddd dd:dd:dd sdddd";

		if (shape[i] == 'd')
			FUZZ_CHECK(isdigit((unsigned char)s[i]) || (i == 0 && s[i] == ' '));
		else if (shape[i] == 's')
			FUZZ_CHECK(s[i] == '+' || s[i] == '-');
		else if (shape[i] != 'M' && shape[i] != 'm')
			FUZZ_CHECK(s[i] == shape[i]);
	}
	zone = atoi(s + 22);
	sign = s[21] == '-' ? -1 : 1;
	FUZZ_CHECK(zone % 100 <= 59);
	local = t + sign * (int64_t)((zone / 100) * 3600 + (zone % 100) * 60);
	{
		time_t tt = (time_t)local;

		FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL);
	}
	snprintf(back, sizeof(back), "%02d-%.3s-%04d %02d:%02d:%02d", tm.tm_mday,
		 months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	/* A leap second (":60") moves on to the next minute; otherwise the
	 * fields come back as written (the day's leading space as a zero). */
	if (strncmp(s + 18, "60", 2) != 0) {
		FUZZ_CHECK(strncasecmp(back + 3, s + 3, 17) == 0);
		FUZZ_CHECK(back[1] == s[1] && (back[0] == s[0] || (s[0] == ' ' && back[0] == '0')));
	}
}

static void fuzz_qresync(const struct imap_args *args)
{
	for (size_t a = 0; a < args->count; a++) {
		struct imap_qresync q;

		memset(&q, 0, sizeof(q));
		if (imap_qresync_parse(&args->list[a], &q) == 0)
			FUZZ_CHECK(q.uidvalidity != 0 && q.modseq != 0 && q.modseq <= INT64_MAX);
		/* What imap_select_common does on both paths. */
		imap_seqset_free(&q.known);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_args args;
	const char *error = NULL;
	uint8_t mode;

	if (size == 0)
		return 0;
	mode = data[0] % 4;
	data++;
	size--;
	if (mode == 2) {
		char *s = xmalloc(size + 1);

		memcpy(s, data, size);
		s[size] = '\0';
		fuzz_date(s);
		free(s);
		return 0;
	}
	if (imap_args_parse(data, size, &args, &error) < 0) {
		imap_args_free(&args);
		return 0;
	}
	if (mode == 0)
		fuzz_fetch(&args);
	else if (mode == 1)
		fuzz_flags(&args);
	else
		fuzz_qresync(&args);
	/* Dates arrive as quoted strings: try every string argument too. */
	for (size_t a = 0; a < args.count; a++)
		if (args.list[a].type != IMAP_ARG_LIST && imap_arg_string(&args.list[a]) != NULL)
			fuzz_date(args.list[a].str);
	imap_args_free(&args);
	return 0;
}
