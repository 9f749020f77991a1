/* smtp-parse.c — pure parsing of SMTP command lines, paths and parameters.
 *
 * Trust boundary: input is an untrusted client's command line. Nothing here
 * does I/O or keeps state, so it can be unit-tested and fuzzed. Grammar:
 * RFC 5321 4.1.2 (paths), 4.5.3.1 (length limits), RFC 1870 (SIZE),
 * RFC 6152 (BODY=8BITMIME), RFC 6531 (SMTPUTF8), RFC 3030 (BDAT). Anything
 * accepted here is safe to copy into a header field: no control bytes, no
 * CR or LF, no unbalanced quotes. */
#include "smtp/smtp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMTP_LABEL_MAX       63
#define SMTP_PARAM_VALUE_MAX 128

static const char *const smtp_err_mail_syntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char *const smtp_err_rcpt_syntax = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char *const smtp_err_sender = "501 5.1.7 Bad sender address syntax";
static const char *const smtp_err_recipient = "501 5.1.3 Bad recipient address syntax";
static const char *const smtp_err_param_syntax = "501 5.5.4 Bad parameter syntax";
static const char *const smtp_err_param = "555 5.5.4 Unsupported parameter";
static const char *const smtp_err_utf8 = "553 5.6.7 Non-ASCII address requires SMTPUTF8";

static int smtp_is_atext(unsigned char c)
{
	/* c != 0: strchr() would find the string's own terminator. */
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of the well-formed UTF-8 sequence at S (non-ASCII lead byte), 0 if
 * it is not one: no overlongs, surrogates or code points past U+10FFFF. */
static size_t smtp_utf8_len(const unsigned char *s)
{
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

int smtp_parse_line(const char *line, size_t len, char verb[SMTP_VERB_MAX + 1], const char **args_r,
		    const char **error_r)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = "500 5.5.2 Syntax error: control character in command";
			return -1;
		}
	}
	for (i = 0; i < len && isalpha((unsigned char)line[i]); i++) {
		if (n == SMTP_VERB_MAX)
			goto bad;
		verb[n++] = (char)toupper((unsigned char)line[i]);
	}
	verb[n] = '\0';
	if (n == 0 || (i < len && line[i] != ' '))
		goto bad;
	if (i < len)
		i++;
	*args_r = line + i;
	return 0;
bad:
	verb[0] = '\0';
	*error_r = "500 5.5.2 Syntax error: command unrecognized";
	return -1;
}

/* Domain (RFC 5321 4.1.2: sub-domain *("." sub-domain)), with U-labels when
 * UTF8 is set. Returns bytes used or 0. LENIENT also admits '_' (seen in
 * real EHLO names). */
static size_t smtp_scan_domain(const char *s, int utf8, int lenient, int *utf8_r)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t label = 0, total = 0, u;
	unsigned char prev = '.';

	for (;;) {
		unsigned char c = p[total];

		if (c == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if (isalnum(c) || (lenient && c == '_')) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return 0;
			label++;
		} else if (c >= 0x80 && utf8 && (u = smtp_utf8_len(p + total)) > 0) {
			label += u;
			total += u;
			prev = 'a';
			*utf8_r = 1;
			if (label > SMTP_LABEL_MAX)
				return 0;
			continue;
		} else {
			break;
		}
		if (label > SMTP_LABEL_MAX)
			return 0;
		prev = c;
		total++;
	}
	if (total == 0 || label == 0 || prev == '-' || total > SMTP_DOMAIN_MAX)
		return 0;
	return total;
}

/* "[1.2.3.4]" or "[IPv6:...]"; returns bytes used or 0. */
static size_t smtp_scan_address_literal(const char *s)
{
	const char *end = strchr(s, ']');
	char tmp[64];
	unsigned char addr[16];
	size_t len;

	if (s[0] != '[' || end == NULL)
		return 0;
	len = (size_t)(end - s - 1);
	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s + 1, len);
	tmp[len] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, tmp + 5, addr) != 1)
			return 0;
	} else if (inet_pton(AF_INET, tmp, addr) != 1) {
		return 0;
	}
	return len + 2;
}

int smtp_parse_helo(const char *args, char *domain_r, size_t size, const char **error_r)
{
	int utf8 = 0;
	size_t n =
	    args[0] == '[' ? smtp_scan_address_literal(args) : smtp_scan_domain(args, 1, 1, &utf8);

	/* Trailing text after the name is tolerated (some clients add it). */
	if (n == 0 || (args[n] != '\0' && args[n] != ' ') || n >= size) {
		*error_r = "501 5.5.4 Syntax: EHLO hostname";
		return -1;
	}
	memcpy(domain_r, args, n);
	domain_r[n] = '\0';
	return 0;
}

/* Local part at S: a dot-string or a quoted string. Writes its canonical
 * form to OUT (unquoted when possible). Returns bytes of S used or 0. */
static size_t smtp_scan_local(const char *s, char *out, size_t out_size, size_t *out_len_r,
			      int *utf8_r)
{
	const unsigned char *p = (const unsigned char *)s;
	char content[SMTP_LOCAL_PART_MAX * 2 + 4];
	size_t i = 0, n = 0, u;
	int dot_ok = 1;
	unsigned char prev = '.';

	if (p[0] != '"') {
		for (;; i++) {
			if (p[i] == '.' && prev != '.') {
			} else if (smtp_is_atext(p[i])) {
			} else if (p[i] >= 0x80 && (u = smtp_utf8_len(p + i)) > 0) {
				*utf8_r = 1;
				i += u - 1;
			} else {
				break;
			}
			prev = p[i];
		}
		if (i == 0 || prev == '.' || i > SMTP_LOCAL_PART_MAX || i >= out_size)
			return 0;
		memcpy(out, s, i);
		*out_len_r = i;
		return i;
	}
	/* Quoted-string: qtextSMTP / "\" %d32-126 */
	for (i = 1; p[i] != '"'; i++) {
		unsigned char c = p[i];

		if (c == '\\') {
			c = p[++i];
			if (c < 32 || c > 126)
				return 0;
		} else if (c >= 0x80 && (u = smtp_utf8_len(p + i)) > 0) {
			*utf8_r = 1;
			if (n + u >= sizeof(content))
				return 0;
			memcpy(content + n, p + i, u);
			n += u;
			i += u - 1;
			prev = 'a';
			continue;
		} else if (c < 32 || c > 126) {
			return 0;
		}
		if (n + 1 >= sizeof(content))
			return 0;
		if (!(smtp_is_atext(c) || (c == '.' && prev != '.' && n > 0)))
			dot_ok = 0;
		prev = c;
		content[n++] = (char)c;
	}
	if (n == 0 || prev == '.')
		dot_ok = 0;
	i++; /* closing quote */
	if (dot_ok) {
		if (n > SMTP_LOCAL_PART_MAX || n >= out_size)
			return 0;
		memcpy(out, content, n);
		*out_len_r = n;
		return i;
	}
	/* Re-quote, escaping only '"' and '\'. */
	{
		size_t o = 0;

		out[o++] = '"';
		for (size_t k = 0; k < n; k++) {
			if (content[k] == '"' || content[k] == '\\')
				out[o++] = '\\';
			out[o++] = content[k];
			/* At most SMTP_LOCAL_PART_MAX + 2 with the closing quote. */
			if (o + 3 >= out_size || o + 1 > SMTP_LOCAL_PART_MAX + 2)
				return 0;
		}
		out[o++] = '"';
		*out_len_r = o;
	}
	return i;
}

int smtp_parse_path(const char **sp, int reverse, struct smtp_path *path)
{
	const char *s = *sp;
	size_t n, local_len = 0, dlen;
	int utf8 = 0;

	memset(path, 0, sizeof(*path));
	if (*s++ != '<')
		return -1;
	if (*s == '>') {
		if (!reverse)
			return -1;
		*sp = s + 1;
		return 0;
	}
	/* Source route "@a,@b:" is accepted and ignored (RFC 5321 4.1.2). */
	if (*s == '@') {
		for (;;) {
			s++;
			n = smtp_scan_domain(s, 0, 0, &utf8);
			if (n == 0)
				return -1;
			s += n;
			if (*s == ':')
				break;
			if (s[0] != ',' || s[1] != '@')
				return -1;
			s++;
		}
		s++;
	}
	n = smtp_scan_local(s, path->address, sizeof(path->address), &local_len, &utf8);
	if (n == 0)
		return -1;
	s += n;
	if (*s == '>' && !reverse && strncasecmp(path->address, "postmaster", local_len) == 0 &&
	    local_len == 10) {
		/* RCPT TO:<Postmaster> (RFC 5321 4.1.1.3): no domain. */
		path->local_len = local_len;
		path->address[local_len] = '\0';
		path->postmaster = 1;
		*sp = s + 1;
		return 0;
	}
	if (*s++ != '@')
		return -1;
	dlen = s[0] == '[' ? smtp_scan_address_literal(s) : smtp_scan_domain(s, 1, 0, &utf8);
	if (dlen == 0 || s[dlen] != '>')
		return -1;
	if (local_len + 1 + dlen + 2 > SMTP_PATH_MAX)
		return -1;
	path->address[local_len] = '@';
	memcpy(path->address + local_len + 1, s, dlen);
	path->address[local_len + 1 + dlen] = '\0';
	path->local_len = local_len;
	path->utf8 = utf8 ? 1 : 0;
	*sp = s + dlen + 1;
	return 0;
}

/* Skips "FROM:" / "TO:" and optional spaces (tolerated after the colon). */
static int smtp_skip_prefix(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(*s, prefix, n) != 0)
		return -1;
	*s += n;
	while (**s == ' ')
		(*s)++;
	return 0;
}

/* Next "KEYWORD[=VALUE]" at *S (esmtp-param, RFC 5321 4.1.2). 1 found, 0 at
 * the end, -1 bad syntax. */
static int smtp_next_param(const char **sp, char *key, size_t key_size, char *value,
			   size_t value_size, int *has_value_r)
{
	const char *s = *sp;
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return 0;
	if (!isalnum((unsigned char)*s))
		return -1;
	while (isalnum((unsigned char)*s) || *s == '-') {
		if (n + 1 >= key_size)
			return -1;
		key[n++] = (char)toupper((unsigned char)*s++);
	}
	key[n] = '\0';
	*has_value_r = 0;
	value[0] = '\0';
	if (*s == '=') {
		s++;
		n = 0;
		while (*s > 32 && *s < 127 && *s != '=') {
			if (n + 1 >= value_size)
				return -1;
			value[n++] = *s++;
		}
		if (n == 0)
			return -1;
		value[n] = '\0';
		*has_value_r = 1;
	}
	if (*s != ' ' && *s != '\0')
		return -1;
	*sp = s;
	return 1;
}

int smtp_parse_mail(const char *args, int esmtp, struct smtp_mail_params *mail,
		    const char **error_r)
{
	char key[32], value[SMTP_PARAM_VALUE_MAX];
	int has_value, r, seen_size = 0, seen_body = 0;

	memset(mail, 0, sizeof(*mail));
	if (smtp_skip_prefix(&args, "FROM:") < 0 || args[0] != '<') {
		*error_r = smtp_err_mail_syntax;
		return -1;
	}
	if (smtp_parse_path(&args, 1, &mail->path) < 0 || (*args != ' ' && *args != '\0')) {
		*error_r = smtp_err_sender;
		return -1;
	}
	while ((r = smtp_next_param(&args, key, sizeof(key), value, sizeof(value), &has_value)) >
	       0) {
		if (!esmtp) {
			*error_r = smtp_err_param;
			return -1;
		}
		if (strcmp(key, "SIZE") == 0 && has_value && !seen_size) {
			char *end;

			if (!isdigit((unsigned char)value[0]) || strlen(value) > 20)
				goto bad;
			errno = 0;
			mail->size = strtoull(value, &end, 10);
			if (*end != '\0')
				goto bad;
			if (errno == ERANGE)
				mail->size = UINT64_MAX;
			mail->size_given = 1;
			seen_size = 1;
		} else if (strcmp(key, "BODY") == 0 && has_value && !seen_body) {
			if (strcasecmp(value, "7BIT") == 0)
				mail->body = SMTP_BODY_7BIT;
			else if (strcasecmp(value, "8BITMIME") == 0)
				mail->body = SMTP_BODY_8BITMIME;
			else {
				*error_r = "555 5.5.4 Unsupported BODY type";
				return -1;
			}
			seen_body = 1;
		} else if (strcmp(key, "SMTPUTF8") == 0 && !has_value && !mail->smtputf8) {
			mail->smtputf8 = 1;
		} else if (strcmp(key, "SIZE") == 0 || strcmp(key, "BODY") == 0 ||
			   strcmp(key, "SMTPUTF8") == 0) {
			goto bad;
		} else {
			*error_r = smtp_err_param;
			return -1;
		}
	}
	if (r < 0)
		goto bad;
	if (mail->path.utf8 && !mail->smtputf8) {
		*error_r = smtp_err_utf8;
		return -1;
	}
	return 0;
bad:
	*error_r = smtp_err_param_syntax;
	return -1;
}

int smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_path *path, const char **error_r)
{
	char key[32], value[SMTP_PARAM_VALUE_MAX];
	int has_value, r;

	if (smtp_skip_prefix(&args, "TO:") < 0 || args[0] != '<') {
		*error_r = smtp_err_rcpt_syntax;
		return -1;
	}
	if (smtp_parse_path(&args, 0, path) < 0 || (*args != ' ' && *args != '\0')) {
		*error_r = smtp_err_recipient;
		return -1;
	}
	r = smtp_next_param(&args, key, sizeof(key), value, sizeof(value), &has_value);
	if (r != 0) {
		*error_r = r < 0 ? smtp_err_param_syntax : smtp_err_param;
		return -1;
	}
	if (path->utf8 && !smtputf8) {
		*error_r = smtp_err_utf8;
		return -1;
	}
	return 0;
}

int smtp_parse_bdat(const char *args, uint64_t *size_r, int *last_r, const char **error_r)
{
	const char *s = args;
	uint64_t size = 0;
	size_t digits = 0;

	while (isdigit((unsigned char)*s)) {
		if (++digits > 19)
			goto bad;
		size = size * 10 + (uint64_t)(*s++ - '0');
	}
	if (digits == 0)
		goto bad;
	*last_r = 0;
	if (*s == ' ') {
		s++;
		if (strcasecmp(s, "LAST") != 0)
			goto bad;
		*last_r = 1;
	} else if (*s != '\0') {
		goto bad;
	}
	*size_r = size;
	return 0;
bad:
	*error_r = "501 5.5.4 Syntax: BDAT size [LAST]";
	return -1;
}
