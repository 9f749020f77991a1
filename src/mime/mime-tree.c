/* mime-tree.c — splits a message into its MIME parts as it streams in,
 * recording where each part's header and body lie and keeping a copy of each
 * header section, and finds IMAP body sections in a message.
 *
 * Trust boundary: the message is untrusted. It is read once, line by line
 * (a line ends at LF; CR is an ordinary byte; a line may span writes),
 * without recursion; nesting stops at MIME_MAX_DEPTH and the part count at
 * MIME_MAX_PARTS, beyond which the rest is body bytes of the innermost open
 * part. Boundaries follow RFC 2046: a delimiter line starts with "--" and the
 * boundary, and the line break before it belongs to the delimiter, not to the
 * part it ends.
 *
 * Memory: body bytes are counted, not kept. Of a line that spans writes only
 * its first bytes are kept, as many as a delimiter of the longest open
 * boundary needs, and whether the rest is white space. Header sections are
 * copied into one arena of less than MIME_HEADERS_MAX_BYTES; when a section
 * does not fit, it keeps the lines that fitted whole and every later section
 * keeps nothing. Such a part is described from what was kept (a missing
 * Content-Type makes it text/plain, a missing Subject a NIL), so the output
 * stays valid IMAP; sizes and line counts stay exact. In all a scan holds
 * at most about 4 MiB whatever the message: the arena, MIME_MAX_PARTS nodes
 * (about 1 MB), the boundaries (no longer than the headers they come from)
 * and the first bytes of one line; a few KiB for ordinary mail. */
#include "mime/mime-private.h"

#include <stdlib.h>
#include <string.h>

static int node_add(struct mime_tree *t, uint32_t parent, size_t off, size_t lf)
{
	struct mime_node *n;

	if (t->count == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		struct mime_node *nodes;

		if (cap > MIME_MAX_PARTS && t->cap < MIME_MAX_PARTS)
			cap = MIME_MAX_PARTS; /* the count never passes it */
		nodes = realloc(t->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return -1;
		t->nodes = nodes;
		t->cap = cap;
	}
	n = &t->nodes[t->count];
	memset(n, 0, sizeof(*n));
	n->hdr_off = n->body_off = n->end_off = off;
	n->hdr_lf = n->body_lf = n->end_lf = lf;
	n->hdr_at = t->headers.len;
	n->parent = parent;
	n->first_child = n->last_child = n->next = MIME_NONE;
	n->kind = MIME_LEAF;
	n->flags = MIME_NODE_IN_HEADER;
	if (parent != MIME_NONE) {
		struct mime_node *p = &t->nodes[parent];

		n->depth = p->depth + 1;
		if (p->last_child == MIME_NONE)
			p->first_child = t->count;
		else
			t->nodes[p->last_child].next = t->count;
		p->last_child = t->count;
	}
	return (int)t->count++;
}

static int push(struct mime_scan *s, uint32_t parent, size_t off, size_t lf)
{
	int idx = node_add(&s->t, parent, off, lf);

	if (idx < 0)
		return -1;
	s->stack[s->sp++] = (uint32_t)idx;
	return 0;
}

const uint8_t *mime_tree_header(const struct mime_tree *t, uint32_t idx, size_t *len_r)
{
	const struct mime_node *n = &t->nodes[idx];

	*len_r = n->hdr_kept;
	return n->hdr_kept > 0 ? t->headers.data + n->hdr_at : (const uint8_t *)"";
}

/* The header of the innermost open part ends: its body starts at OFF. What
 * the arena holds past the section (a line break and delimiter) is dropped. */
static int header_done(struct mime_scan *s, size_t off, size_t lf)
{
	struct mime_tree *t = &s->t;
	uint32_t idx = s->stack[s->sp - 1];
	struct mime_node *n = &t->nodes[idx];
	struct mime_ctype_info ci;
	const uint8_t *hdr;
	bool in_digest = false, room;
	size_t len;

	n->body_off = n->end_off = off;
	n->body_lf = n->end_lf = lf;
	n->flags &= (uint8_t)~MIME_NODE_IN_HEADER;
	n->hdr_kept = t->headers.len - n->hdr_at;
	if (n->hdr_kept > off - n->hdr_off)
		n->hdr_kept = off - n->hdr_off;
	t->headers.len = n->hdr_at + n->hdr_kept;
	if (n->parent != MIME_NONE)
		in_digest = (t->nodes[n->parent].flags & MIME_NODE_DIGEST) != 0;
	hdr = mime_tree_header(t, idx, &len);
	if (mime_content_kind(hdr, len, in_digest, &ci) < 0)
		return -1;
	room = n->depth < MIME_MAX_DEPTH && t->count < MIME_MAX_PARTS;
	if (ci.kind == MIME_MULTIPART && ci.boundary != NULL && room) {
		n->kind = MIME_MULTIPART;
		n->boundary = ci.boundary;
		n->boundary_len = ci.boundary_len;
		if (ci.digest)
			n->flags |= MIME_NODE_DIGEST;
		return 0;
	}
	if (ci.boundary != NULL)
		mem_wipe(ci.boundary, ci.boundary_len);
	free(ci.boundary);
	if (ci.kind == MIME_MESSAGE && room) {
		n->kind = MIME_MESSAGE;
		return push(s, idx, off, lf);
	}
	if (ci.kind != MIME_LEAF)
		n->flags |= MIME_NODE_OPAQUE;
	return 0;
}

/* Ends every open part above stack level KEEP at offset OFF. */
static int close_to(struct mime_scan *s, unsigned keep, size_t off, size_t lf)
{
	while (s->sp > keep) {
		struct mime_node *n = &s->t.nodes[s->stack[s->sp - 1]];

		if (n->flags & MIME_NODE_IN_HEADER) {
			if (header_done(s, off, lf) < 0)
				return -1;
			continue; /* it may have opened an embedded message */
		}
		n->end_off = off;
		n->end_lf = lf;
		s->sp--;
	}
	return 0;
}

static bool only_space(const uint8_t *p, const uint8_t *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	}
	return true;
}

/* A line of LEN bytes (line break excluded) of which LINE holds the first
 * KEPT; SPACE tells whether the rest are all SP, HT or CR. */
struct line {
	const uint8_t *p;
	size_t kept, len;
	bool space;
	bool lf; /* it ends in LF (else the message ends) */
};

/* Finds the open multipart whose delimiter LINE is, innermost first; a line
 * that is exactly a delimiter is preferred over one that merely starts with
 * a boundary. Returns the stack level or -1. KEPT covers 4 bytes more than
 * any open boundary, or the whole line. */
static int find_boundary(const struct mime_scan *s, const struct line *l, bool *close_r)
{
	int pass, i;

	for (pass = 0; pass < 2; pass++) {
		for (i = (int)s->sp - 1; i >= 0; i--) {
			const struct mime_node *n = &s->t.nodes[s->stack[i]];
			const uint8_t *rest;
			bool close;

			if (n->kind != MIME_MULTIPART || (n->flags & MIME_NODE_CLOSED) ||
			    l->len < 2 + n->boundary_len ||
			    memcmp(l->p + 2, n->boundary, n->boundary_len) != 0)
				continue;
			rest = l->p + 2 + n->boundary_len;
			close =
			    l->len - n->boundary_len - 2 >= 2 && rest[0] == '-' && rest[1] == '-';
			if (pass == 0 &&
			    (!l->space || !only_space(rest + (close ? 2 : 0), l->p + l->kept)))
				continue;
			*close_r = close;
			return i;
		}
	}
	return -1;
}

/* A delimiter of the multipart at stack level LEVEL starts at the current
 * line, which ends at NEXT. Returns 1 when it was taken as a delimiter, 0
 * when it is plain body text. */
static int on_boundary(struct mime_scan *s, unsigned level, bool close, size_t next, size_t next_lf)
{
	const struct mime_node *top = &s->t.nodes[s->stack[s->sp - 1]];
	size_t end = s->line_off - 1, end_lf = s->line_lf - 1; /* the LF before the line */

	if (!close && s->t.count >= MIME_MAX_PARTS) {
		s->boundaries = false;
		return 0;
	}
	if (s->prev_cr)
		end--;
	if (top->flags & MIME_NODE_IN_HEADER) {
		if (end < top->hdr_off) {
			end = top->hdr_off;
			end_lf = top->hdr_lf;
		}
	} else if (end < top->body_off) {
		end = top->body_off;
		end_lf = top->body_lf;
	}
	if (close_to(s, level + 1, end, end_lf) < 0)
		return -1;
	if (close) {
		s->t.nodes[s->stack[level]].flags |= MIME_NODE_CLOSED;
		return 1;
	}
	return push(s, s->stack[level], next, next_lf) < 0 ? -1 : 1;
}

/* The current line is complete: a delimiter, the blank line ending a header
 * section, or nothing to act on. Moves on to the next line. */
static int line_done(struct mime_scan *s, const struct line *l)
{
	size_t next = s->line_off + l->len + l->lf, next_lf = s->line_lf + l->lf;
	bool blank = l->lf && (l->len == 0 || (l->len == 1 && l->p[0] == '\r'));
	bool close = false;
	int level = -1, ret = 0;

	if (s->boundaries && l->len >= 2 && l->p[0] == '-' && l->p[1] == '-')
		level = find_boundary(s, l, &close);
	if (level >= 0)
		ret = on_boundary(s, (unsigned)level, close, next, next_lf);
	if (ret < 0)
		return -1;
	if (ret == 0 && blank && (s->t.nodes[s->stack[s->sp - 1]].flags & MIME_NODE_IN_HEADER) &&
	    header_done(s, next, next_lf) < 0)
		return -1;
	s->prev_cr = l->len > 0 && (l->kept == l->len ? l->p[l->len - 1] : s->line_last) == '\r';
	s->line_off = next;
	s->line_lf = next_lf;
	s->line_len = 0;
	s->line_arena = s->t.headers.len;
	buf_reset(&s->line);
	return 0;
}

/* Copies header bytes of the innermost open part into the arena; once it
 * would reach MIME_HEADERS_MAX_BYTES, the line being read is taken out again
 * and nothing more is kept. */
static int header_keep(struct mime_scan *s, const uint8_t *p, size_t len)
{
	struct buf *a = &s->t.headers;

	if (s->arena_full || len == 0)
		return 0;
	if (len >= MIME_HEADERS_MAX_BYTES - a->len) {
		s->arena_full = true;
		a->len = s->line_arena;
		return 0;
	}
	return buf_append(a, p, len);
}

/* Keeps the first line_keep bytes of a line that spans writes. */
static int line_stash(struct mime_scan *s, const uint8_t *p, size_t len)
{
	size_t n = 0;
	uint32_t i;

	if (len == 0)
		return 0;
	if (s->line_len == 0) {
		s->line_keep = 4;
		for (i = 0; i < s->sp; i++) {
			const struct mime_node *m = &s->t.nodes[s->stack[i]];

			if (m->kind == MIME_MULTIPART && m->boundary_len + 4 > s->line_keep)
				s->line_keep = m->boundary_len + 4;
		}
		s->line_space = true;
	}
	if (s->line.len < s->line_keep) {
		n = s->line_keep - s->line.len < len ? s->line_keep - s->line.len : len;
		if (buf_append(&s->line, p, n) < 0)
			return -1;
	}
	if (s->line_space && n < len)
		s->line_space = only_space(p + n, p + len);
	s->line_len += len;
	s->line_last = p[len - 1];
	return 0;
}

int mime_scan_init(struct mime_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->boundaries = true;
	buf_init(&s->t.headers);
	buf_init(&s->line);
	return push(s, MIME_NONE, 0, 0);
}

int mime_scan_write(struct mime_scan *s, const uint8_t *data, size_t len)
{
	while (len > 0) {
		const uint8_t *nl = memchr(data, '\n', len);
		size_t seg = nl != NULL ? (size_t)(nl - data) + 1 : len;
		struct line l = {.space = true, .lf = true};

		if ((s->t.nodes[s->stack[s->sp - 1]].flags & MIME_NODE_IN_HEADER) &&
		    header_keep(s, data, seg) < 0)
			return -1;
		if (nl != NULL && s->line_len == 0) {
			/* the whole line is here: no copy */
			l.p = data;
			l.kept = l.len = seg - 1;
		} else {
			if (line_stash(s, data, seg - (nl != NULL)) < 0)
				return -1;
			l.p = s->line.data;
			l.kept = s->line.len;
			l.len = s->line_len;
			l.space = s->line_space;
		}
		if (nl != NULL && line_done(s, &l) < 0)
			return -1;
		data += seg;
		len -= seg;
	}
	return 0;
}

int mime_scan_finish(struct mime_scan *s)
{
	struct line l = {s->line.data, s->line.len, s->line_len, s->line_space, false};
	size_t len = s->line_off + s->line_len, lf = s->line_lf;

	if (s->line_len > 0 && line_done(s, &l) < 0)
		return -1;
	s->t.len = len;
	s->t.lines = lf;
	return close_to(s, 0, len, lf);
}

void mime_scan_free(struct mime_scan *s)
{
	mime_tree_free(&s->t);
	buf_free(&s->line);
}

size_t mime_scan_memory(const struct mime_scan *s)
{
	size_t n = s->t.headers.cap + s->line.cap + s->t.cap * sizeof(*s->t.nodes);
	uint32_t i;

	for (i = 0; i < s->t.count; i++)
		n += s->t.nodes[i].boundary_len;
	return n;
}

int mime_tree_build(struct mime_tree *t, const uint8_t *msg, size_t len)
{
	struct mime_scan s;

	if (mime_scan_init(&s) < 0 || mime_scan_write(&s, msg, len) < 0 ||
	    mime_scan_finish(&s) < 0) {
		mime_scan_free(&s);
		memset(t, 0, sizeof(*t));
		return -1;
	}
	buf_free(&s.line);
	*t = s.t;
	return 0;
}

void mime_tree_free(struct mime_tree *t)
{
	uint32_t i;

	for (i = 0; i < t->count; i++) {
		if (t->nodes[i].boundary != NULL)
			mem_wipe(t->nodes[i].boundary, t->nodes[i].boundary_len);
		free(t->nodes[i].boundary);
	}
	free(t->nodes);
	buf_free(&t->headers);
	memset(t, 0, sizeof(*t));
}

/* ---- IMAP section numbers ---------------------------------------------------- */

static uint32_t nth_child(const struct mime_tree *t, uint32_t idx, unsigned k)
{
	uint32_t c = t->nodes[idx].first_child;

	while (c != MIME_NONE && --k > 0)
		c = t->nodes[c].next;
	return c;
}

static void part_range(const struct mime_tree *t, uint32_t idx, struct mime_part_range *r)
{
	const struct mime_node *n = &t->nodes[idx];

	r->mime_off = n->hdr_off;
	r->body_off = n->body_off;
	r->end_off = n->end_off;
	r->is_message = n->kind == MIME_MESSAGE;
	r->text_off = r->is_message ? t->nodes[n->first_child].body_off : n->body_off;
}

/* Section numbering (RFC 3501 6.4.5): the parts of a multipart are numbered
 * from 1; a message that is not multipart has the single part 1, its body;
 * the parts of a message/rfc822 part are those of the embedded message. */
static int locate(const struct mime_tree *t, const unsigned *path, size_t depth,
		  struct mime_part_range *r)
{
	uint32_t idx = 0;
	bool in_message = true; /* IDX is a message, not yet one of its parts */
	size_t i;

	for (i = 0; i < depth; i++) {
		const struct mime_node *n = &t->nodes[idx];
		unsigned k = path[i];

		if (k == 0)
			return 0;
		if (!in_message && n->kind == MIME_MESSAGE) {
			idx = n->first_child;
			n = &t->nodes[idx];
		} else if (!in_message && n->kind != MIME_MULTIPART) {
			return 0;
		}
		in_message = false;
		if (n->kind != MIME_MULTIPART) {
			if (k != 1)
				return 0;
			continue;
		}
		if (n->first_child == MIME_NONE && k == 1 && i + 1 == depth) {
			/* a multipart without parts shows one empty part */
			r->mime_off = r->body_off = r->end_off = r->text_off = n->end_off;
			r->is_message = 0;
			return 1;
		}
		idx = nth_child(t, idx, k);
		if (idx == MIME_NONE)
			return 0;
	}
	if (in_message) {
		r->mime_off = r->body_off = 0;
		r->end_off = t->len;
		r->is_message = 1;
		r->text_off = t->nodes[0].body_off;
		return 1;
	}
	part_range(t, idx, r);
	return 1;
}

int mime_part_find(const uint8_t *msg, size_t len, const unsigned *path, size_t depth,
		   struct mime_part_range *r)
{
	struct mime_tree t;
	int ret;

	if (mime_tree_build(&t, msg, len) < 0)
		return -1;
	ret = locate(&t, path, depth, r);
	mime_tree_free(&t);
	return ret;
}
