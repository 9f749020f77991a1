/* imap-parser.h — pure IMAP syntax: command arguments, sequence sets,
 * modified UTF-7 and mailbox names.
 *
 * Trust boundary: every input here comes straight from the network. The
 * functions hold no state, do no I/O, bound their recursion and allocation,
 * and fail with an error string instead of guessing (unit-tested and
 * fuzzable in isolation). */
#ifndef SEALMAIL_IMAP_PARSER_H
#define SEALMAIL_IMAP_PARSER_H

#include "lib/lib.h"

#define IMAP_LIST_DEPTH_MAX   16     /* nested parenthesised lists */
#define IMAP_ARGS_MAX         100000 /* arguments in one command */
#define IMAP_TAG_MAX          64
#define IMAP_MAILBOX_NAME_MAX 1000 /* bytes of UTF-8 */

enum imap_arg_type {
	IMAP_ARG_ATOM,    /* also NIL, flags (\Seen), sequence sets, BODY[...]<..> */
	IMAP_ARG_STRING,  /* quoted */
	IMAP_ARG_LITERAL, /* {N} / {N+}, or ~{N} / ~{N+} (literal8, RFC 3516:
			   * BINARY set); any byte, NUL included (a command
			   * decides whether a NUL is acceptable) */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	char *str; /* NUL-terminated (LEN is authoritative for literals) */
	size_t len;
	struct imap_arg *list; /* IMAP_ARG_LIST */
	size_t count;
	int binary; /* a literal8 */
};

struct imap_args {
	struct imap_arg *list;
	size_t count;
};

/* Parses the arguments of a command (the bytes after "tag SP name"), in wire
 * form: a literal is "{N}" or "{N+}" CRLF followed by N bytes, a literal8
 * "~{N}" or "~{N+}" CRLF and N bytes. 0 or -1 with *error_r. Free with
 * imap_args_free even on failure. */
int imap_args_parse(const uint8_t *data, size_t len, struct imap_args *args_r,
		    const char **error_r) WARN_UNUSED;
void imap_args_free(struct imap_args *args);

/* Splits "tag SP command[ SP rest]" from LINE: TAG_R and NAME_R are
 * NUL-terminated copies, *REST_R the offset of the arguments. -1 if there is
 * no valid tag (the reply is then untagged "* BAD"). */
int imap_command_split(const uint8_t *line, size_t len, char tag_r[IMAP_TAG_MAX], char name_r[32],
		       size_t *rest_r, const char **error_r) WARN_UNUSED;

/* 1 if a literal8 occurs anywhere in ARGS (RFC 3516 allows it in APPEND
 * only). */
int imap_args_have_literal8(const struct imap_args *args);

/* If LINE ends with a literal announcement "{N}" / "{N+}" (or "~{N}" /
 * "~{N+}"), returns 1 with
 * *size_r and *nonsync_r; 0 when it does not; -1 for a malformed or
 * negative one, or one over MAX. */
int imap_literal_tail(const uint8_t *line, size_t len, uint64_t max, uint64_t *size_r,
		      int *nonsync_r) WARN_UNUSED;

/* A string argument (atom, quoted or literal) as C string; NULL for lists
 * and strings holding a NUL. */
const char *imap_arg_string(const struct imap_arg *arg);
int imap_arg_is_atom(const struct imap_arg *arg, const char *word);

/* ---- sequence sets ---------------------------------------------------------- */
struct imap_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_range *ranges; /* sorted, merged */
	size_t count;
};
/* Parses a sequence set; "*" stands for STAR (the largest number in use;
 * 0 for an empty mailbox). Numbers must be 1..4294967295. */
int imap_seqset_parse(const char *s, uint32_t star, struct imap_seqset *set_r,
		      const char **error_r) WARN_UNUSED;
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Writes SET as "1:3,7" into OUT (for COPYUID / APPENDUID). */
int imap_seqset_format(const uint32_t *nums, size_t count, struct buf *out) WARN_UNUSED;
void imap_seqset_free(struct imap_seqset *set);

/* ---- mailbox names ------------------------------------------------------------ */
/* Modified UTF-7 (RFC 3501 5.1.3) to UTF-8 and back; -1 on broken input. */
int imap_utf7_to_utf8(const char *in, struct buf *out) WARN_UNUSED;
int imap_utf8_to_utf7(const char *in, struct buf *out) WARN_UNUSED;
/* 0 if the UTF-8 string is well formed. */
int imap_utf8_valid(const uint8_t *s, size_t len);
/* Checks and canonicalises a UTF-8 mailbox name (hierarchy separator "/"):
 * refuses empty components, "." and "..", control characters and over-long
 * names; "inbox" in any case becomes "INBOX". Result malloc'd. */
int imap_mailbox_name_check(const char *name, char **canon_r, const char **error_r) WARN_UNUSED;

#endif
