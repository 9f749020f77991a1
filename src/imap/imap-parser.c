/* imap-parser.c — IMAP command arguments and sequence sets.
 *
 * Trust boundary: parses bytes straight from the network. No recursion
 * deeper than IMAP_LIST_DEPTH_MAX, no argument count over IMAP_ARGS_MAX,
 * literal sizes checked against the bytes actually present, every number
 * checked for overflow. The caller has already bounded the total size. */
#include "imap/imap-parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct imap_parser {
	const uint8_t *data;
	size_t len, pos;
	size_t args;
	const char *error;
};

/* 8-bit bytes are taken in atoms (UTF-8 search strings sent unquoted). */
static int imap_atom_char(uint8_t c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static void imap_arg_free(struct imap_arg *a)
{
	free(a->str);
	for (size_t i = 0; i < a->count; i++)
		imap_arg_free(&a->list[i]);
	free(a->list);
}

void imap_args_free(struct imap_args *args)
{
	for (size_t i = 0; i < args->count; i++)
		imap_arg_free(&args->list[i]);
	free(args->list);
	args->list = NULL;
	args->count = 0;
}

static int imap_fail(struct imap_parser *p, const char *error)
{
	p->error = error;
	return -1;
}

static char *imap_dup(const uint8_t *s, size_t len)
{
	char *r = xmalloc(len + 1);

	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* An atom; "[...]" sections (BODY[HEADER.FIELDS (A B)]) may hold spaces,
 * parentheses and quoted strings. */
static int imap_parse_atom(struct imap_parser *p, struct imap_arg *a)
{
	size_t start = p->pos;

	while (p->pos < p->len) {
		uint8_t c = p->data[p->pos];

		if (c == '[') {
			int quoted = 0;

			for (p->pos++; p->pos < p->len; p->pos++) {
				c = p->data[p->pos];
				if (c == '\r' || c == '\n' || c == '\0')
					return imap_fail(p, "Invalid character in section");
				if (quoted && c == '\\' && p->pos + 1 < p->len) {
					/* Only \\ and \" are escapes (RFC 3501 quoted). */
					c = p->data[++p->pos];
					if (c != '\\' && c != '"')
						return imap_fail(p, "Invalid escape in section");
				} else if (c == '"')
					quoted = !quoted;
				else if (!quoted && c == '[')
					return imap_fail(p, "Nested section");
				else if (!quoted && c == ']')
					break;
			}
			if (p->pos >= p->len)
				return imap_fail(p, "Missing ']'");
			p->pos++;
			continue;
		}
		if (!imap_atom_char(c))
			break;
		p->pos++;
	}
	if (p->pos == start)
		return imap_fail(p, "Invalid character");
	a->type = IMAP_ARG_ATOM;
	a->len = p->pos - start;
	a->str = imap_dup(p->data + start, a->len);
	return 0;
}

static int imap_parse_quoted(struct imap_parser *p, struct imap_arg *a)
{
	struct buf b;

	buf_init(&b);
	for (p->pos++; p->pos < p->len; p->pos++) {
		uint8_t c = p->data[p->pos];

		if (c == '"') {
			p->pos++;
			a->type = IMAP_ARG_STRING;
			a->len = b.len;
			a->str = imap_dup(b.data ? b.data : (const uint8_t *)"", b.len);
			buf_free(&b);
			return 0;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			break;
		if (c == '\\') {
			if (p->pos + 1 >= p->len ||
			    (p->data[p->pos + 1] != '\\' && p->data[p->pos + 1] != '"'))
				break;
			c = p->data[++p->pos];
		}
		if (buf_append(&b, &c, 1) < 0)
			log_fatal("out of memory");
	}
	buf_free(&b);
	return imap_fail(p, "Invalid quoted string");
}

static int imap_parse_literal(struct imap_parser *p, struct imap_arg *a, int binary)
{
	uint64_t n = 0;
	size_t digits = 0;

	if (binary)
		p->pos++; /* the '~' */
	for (p->pos++; p->pos < p->len && p->data[p->pos] >= '0' && p->data[p->pos] <= '9';
	     p->pos++, digits++) {
		n = n * 10 + (uint64_t)(p->data[p->pos] - '0');
		if (n > UINT32_MAX)
			return imap_fail(p, "Literal too large");
	}
	if (digits == 0)
		return imap_fail(p, "Invalid literal size");
	if (p->pos < p->len && p->data[p->pos] == '+')
		p->pos++;
	if (p->pos + 3 > p->len || memcmp(p->data + p->pos, "}\r\n", 3) != 0)
		return imap_fail(p, "Invalid literal");
	p->pos += 3;
	if (n > p->len - p->pos)
		return imap_fail(p, "Literal shorter than announced");
	a->type = IMAP_ARG_LITERAL;
	a->binary = binary;
	a->len = (size_t)n;
	a->str = imap_dup(p->data + p->pos, a->len);
	p->pos += a->len;
	return 0;
}

static int imap_parse_list(struct imap_parser *p, unsigned depth, struct imap_arg **list_r,
			   size_t *count_r);

static int imap_parse_one(struct imap_parser *p, unsigned depth, struct imap_arg *a)
{
	uint8_t c = p->data[p->pos];

	if (++p->args > IMAP_ARGS_MAX)
		return imap_fail(p, "Too many arguments");
	if (c == '"')
		return imap_parse_quoted(p, a);
	if (c == '{')
		return imap_parse_literal(p, a, 0);
	if (c == '~' && p->pos + 1 < p->len && p->data[p->pos + 1] == '{')
		return imap_parse_literal(p, a, 1);
	if (c == '(') {
		if (depth >= IMAP_LIST_DEPTH_MAX)
			return imap_fail(p, "Lists nested too deeply");
		p->pos++;
		a->type = IMAP_ARG_LIST;
		if (imap_parse_list(p, depth + 1, &a->list, &a->count) < 0)
			return -1;
		if (p->pos >= p->len || p->data[p->pos] != ')')
			return imap_fail(p, "Missing ')'");
		p->pos++;
		return 0;
	}
	if (c == ')')
		return imap_fail(p, "Unexpected ')'");
	return imap_parse_atom(p, a);
}

/* Parses arguments until ')' (not consumed) or the end. */
static int imap_parse_list(struct imap_parser *p, unsigned depth, struct imap_arg **list_r,
			   size_t *count_r)
{
	size_t cap = 0;

	*list_r = NULL;
	*count_r = 0;
	while (p->pos < p->len) {
		if (p->data[p->pos] == ' ') {
			p->pos++;
			continue;
		}
		if (p->data[p->pos] == ')')
			return depth > 0 ? 0 : imap_fail(p, "Unexpected ')'");
		if (*count_r == cap) {
			cap = cap ? cap * 2 : 4;
			*list_r = realloc(*list_r, cap * sizeof(**list_r));
			if (*list_r == NULL)
				log_fatal("out of memory");
		}
		memset(&(*list_r)[*count_r], 0, sizeof(**list_r));
		(*count_r)++;
		if (imap_parse_one(p, depth, &(*list_r)[*count_r - 1]) < 0)
			return -1;
		if (p->pos < p->len && p->data[p->pos] != ' ' && p->data[p->pos] != ')')
			return imap_fail(p, "Missing space between arguments");
	}
	return depth > 0 ? imap_fail(p, "Missing ')'") : 0;
}

int imap_args_parse(const uint8_t *data, size_t len, struct imap_args *args_r, const char **error_r)
{
	struct imap_parser p = {data, len, 0, 0, NULL};

	args_r->list = NULL;
	args_r->count = 0;
	if (imap_parse_list(&p, 0, &args_r->list, &args_r->count) < 0) {
		*error_r = p.error;
		return -1;
	}
	return 0;
}

static int imap_arg_has_literal8(const struct imap_arg *a)
{
	if (a->binary)
		return 1;
	for (size_t i = 0; i < a->count; i++)
		if (imap_arg_has_literal8(&a->list[i]))
			return 1;
	return 0;
}

int imap_args_have_literal8(const struct imap_args *args)
{
	for (size_t i = 0; i < args->count; i++)
		if (imap_arg_has_literal8(&args->list[i]))
			return 1;
	return 0;
}

int imap_command_split(const uint8_t *line, size_t len, char tag_r[IMAP_TAG_MAX], char name_r[32],
		       size_t *rest_r, const char **error_r)
{
	size_t i = 0, n;

	while (i < len && imap_atom_char(line[i]) && line[i] < 0x80 && line[i] != '+' &&
	       line[i] != '*' && line[i] != '%' && line[i] != ']' && line[i] != '\\')
		i++;
	if (i == 0 || i >= IMAP_TAG_MAX || (i < len && line[i] != ' ')) {
		*error_r = "Invalid tag";
		return -1;
	}
	memcpy(tag_r, line, i);
	tag_r[i] = '\0';
	if (i >= len) {
		*error_r = "Missing command";
		return -2;
	}
	i++;
	for (n = 0; i + n < len && line[i + n] != ' '; n++) {
		uint8_t c = line[i + n];

		if (n >= 31 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				 (c >= '0' && c <= '9') || c == '-' || c == '.')) {
			*error_r = "Invalid command name";
			return -2;
		}
		name_r[n] = (char)c;
	}
	name_r[n] = '\0';
	if (n == 0) {
		*error_r = "Missing command";
		return -2;
	}
	*rest_r = i + n < len ? i + n + 1 : len;
	return 0;
}

int imap_literal_tail(const uint8_t *line, size_t len, uint64_t max, uint64_t *size_r,
		      int *nonsync_r)
{
	size_t i;
	uint64_t n = 0;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 2;
	*nonsync_r = 0;
	if (line[i] == '+') {
		*nonsync_r = 1;
		i--;
	}
	while (i > 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (line[i] != '{') {
		/* "{-5}" and "{5x}" are announcements we refuse; "a}" is not one. */
		for (size_t j = i; j > 0 && len - j < 32; j--)
			if (line[j - 1] == '{')
				return -1;
		return 0;
	}
	if (i + 2 + (size_t)*nonsync_r >= len)
		return -1; /* "{}" or "{+}" */
	if (len - i > 24)
		return -1;
	for (size_t j = i + 1; line[j] >= '0' && line[j] <= '9'; j++) {
		uint64_t d = (uint64_t)(line[j] - '0');

		/* Refused as soon as it would pass MAX, so it never wraps. */
		if (d > max || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*size_r = n;
	return 1;
}

const char *imap_arg_string(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST || strlen(arg->str) != arg->len)
		return NULL;
	return arg->str;
}

int imap_arg_is_atom(const struct imap_arg *arg, const char *word)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}

/* ---- sequence sets --------------------------------------------------------- */

static int imap_seq_number(const char **sp, uint32_t star, uint32_t *n_r)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s == '*') {
		*sp = s + 1;
		*n_r = star;
		return star == 0 ? -1 : 0;
	}
	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return -1;
	}
	*sp = s;
	*n_r = (uint32_t)n;
	return 0;
}

static int imap_range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int imap_seqset_parse(const char *s, uint32_t star, struct imap_seqset *set_r, const char **error_r)
{
	size_t cap = 0, n = 0;
	struct imap_range *r = NULL;

	set_r->ranges = NULL;
	set_r->count = 0;
	if (*s == '\0')
		goto fail;
	for (;;) {
		uint32_t lo, hi;

		if (imap_seq_number(&s, star, &lo) < 0)
			goto fail;
		hi = lo;
		if (*s == ':') {
			s++;
			if (imap_seq_number(&s, star, &hi) < 0)
				goto fail;
		}
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (n == cap) {
			if (cap >= 1000000)
				goto fail;
			cap = cap ? cap * 2 : 4;
			r = realloc(r, cap * sizeof(*r));
			if (r == NULL)
				log_fatal("out of memory");
		}
		r[n].lo = lo;
		r[n].hi = hi;
		n++;
		if (*s == '\0')
			break;
		if (*s++ != ',')
			goto fail;
	}
	qsort(r, n, sizeof(*r), imap_range_cmp);
	set_r->count = 0;
	for (size_t i = 0; i < n; i++) {
		struct imap_range *last = set_r->count ? &r[set_r->count - 1] : NULL;

		if (last != NULL && (uint64_t)r[i].lo <= (uint64_t)last->hi + 1) {
			if (r[i].hi > last->hi)
				last->hi = r[i].hi;
		} else {
			r[set_r->count++] = r[i];
		}
	}
	set_r->ranges = r;
	return 0;
fail:
	free(r);
	*error_r = "Invalid sequence set";
	return -1;
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

int imap_seqset_format(const uint32_t *nums, size_t count, struct buf *out)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;

		while (j + 1 < count && nums[j + 1] == nums[j] + 1)
			j++;
		if (buf_printf(out, "%s%u", i ? "," : "", nums[i]) < 0 ||
		    (j > i && buf_printf(out, ":%u", nums[j]) < 0))
			return -1;
		i = j + 1;
	}
	return 0;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}
