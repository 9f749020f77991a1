/* legal-policy.c — the jurisdiction policy file and the decision it makes.
 *
 * Trust boundary: the policy file is operator input; it is validated
 * completely and every error names the file and the line. The decision is a
 * pure function of the policy, the account's region and the request, so it
 * can be tested as a table and explained in one sentence. */
#include "legal/legal-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEGAL_POLICY_REGIONS_MAX 64
#define LEGAL_PARTNERS_MAX       64
#define LEGAL_POLICY_BYTES_MAX   (1024 * 1024)
#define LEGAL_CHANNEL_TEXT_MAX   200
#define LEGAL_DEFAULT_CHANNEL    "mutual legal assistance"

/* Instruments that may obtain data, as bits (1u << enum legal_instrument). */
#define LEGAL_BIT(i) (1u << (i))

struct legal_policy_region {
	char *name;
	unsigned line;
	char partners[LEGAL_PARTNERS_MAX][3];
	size_t partner_count;
	char *channel; /* NULL: the [policy] channel */
	unsigned seen;
};

struct legal_policy {
	char *path;
	unsigned content;
	unsigned non_content;
	int preservation;
	char *channel;
	unsigned seen;
	struct legal_policy_region regions[LEGAL_POLICY_REGIONS_MAX];
	size_t region_count;
};

struct legal_policy_parser {
	struct legal_policy *policy;
	struct legal_policy_region *region; /* NULL in [policy] */
	int in_section;
	unsigned line;
	const char **error_r;
};

static const char legal_policy_default_text[] =
    "# sealmail legal policy, written by `sealmail init`; docs/legal.md has the format.\n"
    "#\n"
    "# A request is decided for each account it names, by the jurisdiction of the\n"
    "# region that stores the account's data (its home region, in sealmail.conf):\n"
    "#   - that region's own jurisdiction may obtain the data;\n"
    "#   - so may the partner jurisdictions listed for the region (treaties,\n"
    "#     executive agreements);\n"
    "#   - any other jurisdiction is refused and told the channel to use, e.g.\n"
    "#     \"IE via mutual legal assistance\".\n"
    "# Whatever is accepted, only sealed records and index metadata can be handed\n"
    "# over: the server cannot open stored mail.\n"
    "\n"
    "[policy]\n"
    "# Instruments that may obtain message content (sealed records).\n"
    "content = warrant, court-order\n"
    "# Instruments that may obtain non-content (index metadata only).\n"
    "non-content = warrant, court-order, subpoena\n"
    "# Preservation requests disclose nothing; honour them (yes) or refuse (no).\n"
    "preservation = yes\n"
    "# The channel a refused authority is pointed to.\n"
    "channel = " LEGAL_DEFAULT_CHANNEL "\n"
    "\n"
    "[region eu-ie]\n"
    "# partners = GB\n"
    "# channel = mutual legal assistance (Mutual Assistance Division, Department of Justice)\n"
    "\n"
    "[region us-east]\n"
    "# partners =\n";

static int policy_fail(struct legal_policy_parser *p, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int policy_fail(struct legal_policy_parser *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*p->error_r = str_tfmt("%s:%u: %s", p->policy->path, p->line, msg);
	return -1;
}

static int policy_instruments(struct legal_policy_parser *p, const char *key, const char *value,
			      unsigned *bits_r)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	enum legal_instrument i;
	int ret = 0;

	*bits_r = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (legal_instrument_parse(tok, &i) < 0) {
			ret = policy_fail(p,
					  "key '%s': unknown instrument '%s' (use warrant, "
					  "subpoena, court-order)",
					  key, tok);
			break;
		}
		if (i == LEGAL_PRESERVATION) {
			ret = policy_fail(p,
					  "key '%s': preservation discloses nothing; it is set "
					  "with 'preservation = yes|no'",
					  key);
			break;
		}
		*bits_r |= LEGAL_BIT(i);
	}
	free(copy);
	return ret;
}

static int policy_channel(struct legal_policy_parser *p, const char *key, const char *value,
			  char **channel_r)
{
	if (!legal_text_valid(value, LEGAL_CHANNEL_TEXT_MAX, 0))
		return policy_fail(p, "key '%s': expected text of 1 to %d characters", key,
				   LEGAL_CHANNEL_TEXT_MAX);
	free(*channel_r);
	*channel_r = xstrdup(value);
	return 0;
}

static int policy_partners(struct legal_policy_parser *p, const char *value)
{
	struct legal_policy_region *r = p->region;
	char *copy = xstrdup(value), *tok, *save = NULL, code[3];
	int ret = 0;

	r->partner_count = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (legal_jurisdiction_parse(tok, code) < 0) {
			ret = policy_fail(p,
					  "key 'partners': expected ISO 3166-1 alpha-2 codes, "
					  "got '%s'",
					  tok);
			break;
		}
		if (r->partner_count == LEGAL_PARTNERS_MAX) {
			ret = policy_fail(p, "key 'partners': more than %d partners",
					  LEGAL_PARTNERS_MAX);
			break;
		}
		memcpy(r->partners[r->partner_count++], code, 3);
	}
	free(copy);
	return ret;
}

/* Bit of KEY in LIST (to find keys set twice); -1 if unknown. */
static int policy_key_bit(const char *const *list, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], key) == 0)
			return (int)i;
	return -1;
}

static int policy_set(struct legal_policy_parser *p, const char *key, const char *value)
{
	static const char *const policy_keys[] = {"content", "non-content", "preservation",
						  "channel"};
	static const char *const region_keys[] = {"partners", "channel"};
	struct legal_policy *pol = p->policy;
	unsigned *seen;
	int bit;

	if (!p->in_section)
		return policy_fail(p, "key '%s' outside of any section", key);
	if (p->region != NULL) {
		bit = policy_key_bit(region_keys, N_ELEMENTS(region_keys), key);
		seen = &p->region->seen;
		if (bit < 0)
			return policy_fail(p, "unknown key '%s' in [region %s]", key,
					   p->region->name);
	} else {
		bit = policy_key_bit(policy_keys, N_ELEMENTS(policy_keys), key);
		seen = &pol->seen;
		if (bit < 0)
			return policy_fail(p, "unknown key '%s' in [policy]", key);
	}
	if (*seen & (1u << bit))
		return policy_fail(p, "key '%s' set twice", key);
	*seen |= 1u << bit;
	if (p->region != NULL) {
		if (strcmp(key, "partners") == 0)
			return policy_partners(p, value);
		return policy_channel(p, key, value, &p->region->channel);
	}
	if (strcmp(key, "content") == 0)
		return policy_instruments(p, key, value, &pol->content);
	if (strcmp(key, "non-content") == 0)
		return policy_instruments(p, key, value, &pol->non_content);
	if (strcmp(key, "channel") == 0)
		return policy_channel(p, key, value, &pol->channel);
	if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0) {
		pol->preservation = strcmp(value, "yes") == 0;
		return 0;
	}
	return policy_fail(p, "key 'preservation': expected yes or no, got '%s'", value);
}

static int policy_section(struct legal_policy_parser *p, char *line)
{
	struct legal_policy *pol = p->policy;
	size_t len = strlen(line);
	char *name;

	if (line[len - 1] != ']')
		return policy_fail(p, "malformed section header");
	line[len - 1] = '\0';
	name = str_trim(line + 1);
	p->in_section = 1;
	if (strcmp(name, "policy") == 0) {
		p->region = NULL;
		return 0;
	}
	if (strncmp(name, "region", 6) != 0 || (name[6] != ' ' && name[6] != '\t'))
		return policy_fail(p, "unknown section [%s]", name);
	name = str_trim(name + 6);
	if (name[0] == '\0' || strlen(name) > 63 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		strlen(name))
		return policy_fail(p, "region name '%s' may only hold letters, digits, - and _",
				   name);
	for (size_t i = 0; i < pol->region_count; i++)
		if (strcmp(pol->regions[i].name, name) == 0)
			return policy_fail(p, "region '%s' defined twice", name);
	if (pol->region_count == LEGAL_POLICY_REGIONS_MAX)
		return policy_fail(p, "more than %d regions", LEGAL_POLICY_REGIONS_MAX);
	p->region = &pol->regions[pol->region_count++];
	p->region->name = xstrdup(name);
	p->region->line = p->line;
	return 0;
}

int legal_policy_parse(const char *path, const char *text, size_t len,
		       struct legal_policy **policy_r, const char **error_r)
{
	struct legal_policy *pol = xcalloc(1, sizeof(*pol));
	struct legal_policy_parser p = {.policy = pol, .error_r = error_r};
	const char *pos = text, *end = text + len;
	int ret = 0;

	pol->path = xstrdup(path);
	pol->content = LEGAL_BIT(LEGAL_WARRANT) | LEGAL_BIT(LEGAL_COURT_ORDER);
	pol->non_content = pol->content | LEGAL_BIT(LEGAL_SUBPOENA);
	pol->preservation = 1;
	pol->channel = xstrdup(LEGAL_DEFAULT_CHANNEL);
	if (memchr(text, '\0', len) != NULL) {
		p.line = 1;
		ret = policy_fail(&p, "the file holds a NUL byte");
	}
	while (ret == 0 && pos < end) {
		const char *nl = memchr(pos, '\n', (size_t)(end - pos));
		size_t n = nl != NULL ? (size_t)(nl - pos) : (size_t)(end - pos);
		char *raw = xmalloc(n + 1), *line, *eq;

		memcpy(raw, pos, n);
		raw[n] = '\0';
		pos += n + (nl != NULL);
		p.line++;
		line = str_trim(raw);
		if (line[0] == '\0' || line[0] == '#' || line[0] == ';') {
			/* blank or comment */
		} else if (line[0] == '[') {
			ret = policy_section(&p, line);
		} else if ((eq = strchr(line, '=')) == NULL || eq == line) {
			ret = policy_fail(&p, "expected 'key = value'");
		} else {
			*eq = '\0';
			ret = policy_set(&p, str_trim(line), str_trim(eq + 1));
		}
		free(raw);
	}
	if (ret < 0) {
		legal_policy_free(&pol);
		return -1;
	}
	*policy_r = pol;
	return 0;
}

int legal_policy_load(const char *path, struct legal_policy **policy_r, const char **error_r)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int ret;

	if (fs_read_all(path, &data, &len) < 0) {
		*error_r = str_tfmt("cannot read the legal policy %s: %s", path, strerror(errno));
		return -1;
	}
	if (len > LEGAL_POLICY_BYTES_MAX) {
		free(data);
		*error_r = str_tfmt("%s: larger than %d bytes", path, LEGAL_POLICY_BYTES_MAX);
		return -1;
	}
	ret = legal_policy_parse(path, (const char *)data, len, policy_r, error_r);
	free(data);
	return ret;
}

int legal_policy_check(const struct legal_policy *pol, const struct config *cfg,
		       const char **error_r)
{
	for (size_t i = 0; i < pol->region_count; i++) {
		if (config_region_find(cfg, pol->regions[i].name) == NULL) {
			*error_r = str_tfmt("%s:%u: region '%s' is not in the configuration",
					    pol->path, pol->regions[i].line, pol->regions[i].name);
			return -1;
		}
	}
	return 0;
}

static void legal_policy_put_instruments(struct buf *out, const char *key, unsigned bits)
{
	const char *sep = "";

	legal_putf(out, "%s=", key);
	for (unsigned i = LEGAL_WARRANT; i <= LEGAL_PRESERVATION; i++) {
		if (bits & LEGAL_BIT(i)) {
			legal_putf(out, "%s%s", sep,
				   legal_instrument_name((enum legal_instrument)i));
			sep = ",";
		}
	}
	legal_put(out, "; ");
}

void legal_policy_summary(const struct legal_policy *pol, struct buf *out)
{
	legal_policy_put_instruments(out, "content", pol->content);
	legal_policy_put_instruments(out, "non-content", pol->non_content);
	legal_putf(out, "preservation=%s; channel=%s", pol->preservation ? "yes" : "no",
		   pol->channel != NULL ? pol->channel : LEGAL_DEFAULT_CHANNEL);
	for (size_t i = 0; i < pol->region_count; i++) {
		const struct legal_policy_region *r = &pol->regions[i];

		legal_putf(out, "; region %s: partners=", r->name);
		for (size_t j = 0; j < r->partner_count; j++)
			legal_putf(out, "%s%s", j > 0 ? "," : "", r->partners[j]);
		if (r->channel != NULL)
			legal_putf(out, ", channel=%s", r->channel);
	}
}

void legal_policy_hash(const struct legal_policy *pol, char out[LEGAL_HASH_HEX_MAX])
{
	uint8_t hash[32];
	struct buf text;

	buf_init(&text);
	legal_policy_summary(pol, &text);
	seal_sha256(text.data, text.len, hash);
	legal_hex(hash, sizeof(hash), out);
	buf_free(&text);
}

void legal_policy_free(struct legal_policy **polp)
{
	struct legal_policy *pol = *polp;

	if (pol == NULL)
		return;
	*polp = NULL;
	for (size_t i = 0; i < pol->region_count; i++) {
		free(pol->regions[i].name);
		free(pol->regions[i].channel);
	}
	free(pol->channel);
	free(pol->path);
	free(pol);
}

int legal_policy_write_default(const char *path, const char **error_r)
{
	if (access(path, F_OK) == 0) {
		*error_r = str_tfmt("%s exists; refusing to overwrite it", path);
		return -1;
	}
	if (fs_write_atomic(path, legal_policy_default_text, sizeof(legal_policy_default_text) - 1,
			    0600) < 0) {
		*error_r = str_tfmt("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static const struct legal_policy_region *policy_region(const struct legal_policy *pol,
						       const char *name)
{
	for (size_t i = 0; i < pol->region_count; i++)
		if (strcmp(pol->regions[i].name, name) == 0)
			return &pol->regions[i];
	return NULL;
}

static void policy_list(unsigned bits, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < 32; i++) {
		if (!(bits & LEGAL_BIT(i)))
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s%s", n > 0 ? " or " : "",
				      legal_instrument_name((enum legal_instrument)i));
		if (n >= size)
			break;
	}
	if (out[0] == '\0')
		snprintf(out, size, "nothing (this policy discloses none)");
}

void legal_policy_decide(const struct legal_policy *pol, const char *region,
			 const char *data_jurisdiction, const char *issuer,
			 enum legal_instrument instrument, enum legal_scope scope,
			 struct legal_verdict *v)
{
	const struct legal_policy_region *r = policy_region(pol, region);
	const char *channel = r != NULL && r->channel != NULL ? r->channel : pol->channel;
	const char *eligible = NULL;
	unsigned allowed = scope == LEGAL_SCOPE_CONTENT ? pol->content : pol->non_content;

	memset(v, 0, sizeof(*v));
	if (strcmp(issuer, data_jurisdiction) == 0)
		eligible = "same-jurisdiction";
	for (size_t i = 0; eligible == NULL && r != NULL && i < r->partner_count; i++)
		if (strcmp(r->partners[i], issuer) == 0)
			eligible = "partner";
	if (eligible == NULL) {
		v->decision = LEGAL_REFUSED;
		v->reason = "foreign-jurisdiction";
		snprintf(v->channel, sizeof(v->channel), "%s via %s", data_jurisdiction, channel);
		snprintf(v->explanation, sizeof(v->explanation),
			 "%s has no direct access to data stored in %s (region %s); the request "
			 "must come through %s",
			 issuer, data_jurisdiction, region, v->channel);
		return;
	}
	if (instrument == LEGAL_PRESERVATION) {
		v->decision = pol->preservation ? LEGAL_ACCEPTED : LEGAL_REFUSED;
		v->reason = pol->preservation ? "preservation" : "preservation-not-honoured";
		snprintf(v->explanation, sizeof(v->explanation), "%s",
			 pol->preservation
			     ? "a preservation request is recorded; it discloses nothing"
			     : "this policy does not honour preservation requests");
		return;
	}
	if (!(allowed & LEGAL_BIT(instrument))) {
		char list[128];

		policy_list(allowed, list, sizeof(list));
		v->decision = LEGAL_REFUSED;
		v->reason = "instrument";
		snprintf(v->explanation, sizeof(v->explanation),
			 "%s needs a %s; a %s is not enough", legal_scope_name(scope), list,
			 legal_instrument_name(instrument));
		return;
	}
	v->decision = LEGAL_ACCEPTED;
	v->reason = eligible;
	if (strcmp(eligible, "partner") == 0)
		snprintf(v->explanation, sizeof(v->explanation),
			 "%s is a partner jurisdiction for data stored in %s (region %s)", issuer,
			 data_jurisdiction, region);
	else
		snprintf(v->explanation, sizeof(v->explanation),
			 "%s may obtain data stored in %s (region %s)", issuer, data_jurisdiction,
			 region);
}
