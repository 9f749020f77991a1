/* mime-private.h — declarations shared by the files of mime/ only.
 *
 * Trust boundary: everything here works on untrusted message bytes; all
 * functions are bounded by explicit lengths and never read past them.
 * No file outside src/mime/ may include it. */
#ifndef SEALMAIL_MIME_PRIVATE_H
#define SEALMAIL_MIME_PRIVATE_H

#include "mime/mime.h"

#include <stdbool.h>

/* Nesting deeper than this, or more parts than this in one message, is not
 * parsed: such a part is described as an opaque text/plain body. */
#define MIME_MAX_DEPTH 100
#define MIME_MAX_PARTS 10000
/* Parameters kept per Content-Type / Content-Disposition header. */
#define MIME_MAX_PARAMS 64
/* The header sections of all parts together are kept up to this many bytes
 * (less one); past it a section keeps only its lines that fitted whole, and
 * later sections keep nothing (see mime-tree.c). */
#define MIME_HEADERS_MAX_BYTES (1u << 20)

/* ---- header sections and IMAP strings (mime-meta.c) ---------------------- */

/* One wanted header field: NAME is looked up case-insensitively and the first
 * occurrence wins. VALUE is the raw value after the colon, folds included,
 * without the final line end; NULL when the field is absent. */
struct mime_hdr_field {
	const char *name;
	const uint8_t *value;
	size_t len;
};
/* Fills FIELDS[0..N) from the header section HDR in a single pass. */
void mime_header_scan(const uint8_t *hdr, size_t len, struct mime_hdr_field *fields, size_t n);
/* Narrows [*s, *s + *len) by dropping leading and trailing SP, HT, CR, LF. */
void mime_trim(const uint8_t **s, size_t *len);
/* Appends S as an IMAP string: line breaks are unfolded, NUL becomes U+FFFD,
 * and the result is a quoted string when it is 7-bit, else a literal. */
int mime_imap_string(struct buf *out, const uint8_t *s, size_t len) WARN_UNUSED;
/* Like mime_imap_string() on the trimmed value, or NIL when VALUE is NULL. */
int mime_imap_nstring(struct buf *out, const uint8_t *value, size_t len) WARN_UNUSED;
/* Skips white space, line breaks and (nested) comments. When COMMENT is not
 * NULL it receives the text of the last comment skipped. */
int mime_skip_cfws(const uint8_t **p, const uint8_t *end, struct buf *comment) WARN_UNUSED;
/* *P is at a double quote: appends the unescaped, unfolded content to OUT and
 * moves past the closing quote (or to END when it is missing). */
int mime_read_quoted(const uint8_t **p, const uint8_t *end, struct buf *out) WARN_UNUSED;

/* ---- ENVELOPE (mime-envelope.c) ------------------------------------------ */

/* Appends "(date subject from sender reply-to to cc bcc in-reply-to
 * message-id)" for the header section HDR. */
int mime_envelope_write(struct buf *out, const uint8_t *hdr, size_t len) WARN_UNUSED;

/* ---- part tree (mime-tree.c) ---------------------------------------------- */

enum mime_kind { MIME_LEAF, MIME_MULTIPART, MIME_MESSAGE };

#define MIME_NONE           UINT32_MAX
#define MIME_NODE_IN_HEADER 0x01 /* its header section is still being read */
#define MIME_NODE_CLOSED    0x02 /* multipart whose close delimiter was seen */
#define MIME_NODE_OPAQUE    0x04 /* multipart or message not parsed: text/plain */
#define MIME_NODE_DIGEST    0x08 /* multipart/digest: children default to message */

/* A part: its header section is [hdr_off, body_off) and its body
 * [body_off, end_off) in the message; the *_lf fields count the LF bytes
 * before each offset. The header section as kept is [hdr_at, hdr_at +
 * hdr_kept) in the tree's header arena: all of it, unless the arena ran
 * full (hdr_kept < body_off - hdr_off). A message/rfc822 part has one child,
 * the embedded message, whose header starts at the part's body. */
struct mime_node {
	size_t hdr_off, body_off, end_off;
	size_t hdr_lf, body_lf, end_lf;
	size_t hdr_at, hdr_kept;
	uint8_t *boundary;
	size_t boundary_len;
	uint32_t parent, first_child, last_child, next;
	uint16_t depth;
	uint8_t kind;
	uint8_t flags;
};

struct mime_tree {
	struct buf headers;      /* the header arena, below MIME_HEADERS_MAX_BYTES */
	size_t len;              /* bytes in the whole message */
	size_t lines;            /* LF bytes in the whole message */
	struct mime_node *nodes; /* nodes[0] is the message itself */
	uint32_t count, cap;
};

/* The header section of node IDX as kept in the arena. */
const uint8_t *mime_tree_header(const struct mime_tree *t, uint32_t idx, size_t *len_r);

/* The tree built as the message streams in: memory is bounded by the header
 * arena, the part count and the longest boundary, not by the message. */
struct mime_scan {
	struct mime_tree t;
	uint32_t stack[MIME_MAX_DEPTH + 2]; /* open parts, outermost first */
	unsigned sp;
	bool boundaries; /* cleared once MIME_MAX_PARTS is reached */
	bool arena_full; /* no more header bytes are kept */
	bool prev_cr;    /* the line before this one ended in CR LF */
	/* The line being read: it starts at line_off (line_arena in the
	 * arena) and has line_len bytes so far. When it spans writes, LINE
	 * holds its first line_keep bytes and line_space tells whether all
	 * later ones are SP, HT or CR. */
	size_t line_off, line_lf, line_len, line_arena, line_keep;
	struct buf line;
	bool line_space;
	uint8_t line_last;
};

/* Init returns -1 on allocation failure, as do write and finish; after
 * finish, S->t is the complete tree. Free wipes and frees everything (it is
 * safe after a failure, and on a zeroed scan). */
int mime_scan_init(struct mime_scan *s) WARN_UNUSED;
int mime_scan_write(struct mime_scan *s, const uint8_t *data, size_t len) WARN_UNUSED;
int mime_scan_finish(struct mime_scan *s) WARN_UNUSED;
void mime_scan_free(struct mime_scan *s);
/* Bytes allocated by S (its own struct not included). */
size_t mime_scan_memory(const struct mime_scan *s);

/* The scan fed MSG at once; on success the caller frees T. */
int mime_tree_build(struct mime_tree *t, const uint8_t *msg, size_t len) WARN_UNUSED;
void mime_tree_free(struct mime_tree *t);

/* ---- Content-* headers and BODYSTRUCTURE (mime-bodystructure.c) ---------- */

/* What the header section HDR makes of its part: the kind, whether it is a
 * multipart/digest, and for a multipart its boundary (malloc'd, or NULL). */
struct mime_ctype_info {
	enum mime_kind kind;
	bool digest;
	uint8_t *boundary;
	size_t boundary_len;
};
int mime_content_kind(const uint8_t *hdr, size_t len, bool in_digest,
		      struct mime_ctype_info *info) WARN_UNUSED;

/* Appends the BODYSTRUCTURE (EXTENDED) or BODY form of node IDX. */
int mime_body_write(struct buf *out, const struct mime_tree *t, uint32_t idx,
		    bool extended) WARN_UNUSED;

#endif
