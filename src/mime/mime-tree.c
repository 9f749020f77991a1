/* mime-tree.c — splits a message into its MIME parts, recording where each
 * part's header and body lie, and finds IMAP body sections in it.
 *
 * Trust boundary: the message is untrusted. It is read once, line by line
 * (a line ends at LF; CR is an ordinary byte), without recursion; nesting
 * stops at MIME_MAX_DEPTH and the part count at MIME_MAX_PARTS, beyond which
 * the rest is body bytes of the innermost open part. Boundaries follow RFC
 * 2046: a delimiter line starts with "--" and the boundary, and the line break
 * before it belongs to the delimiter, not to the part it ends. */
#include "mime/mime-private.h"

#include <stdlib.h>
#include <string.h>

struct scan {
	struct mime_tree *t;
	uint32_t stack[MIME_MAX_DEPTH + 2]; /* open parts, outermost first */
	unsigned sp;
	bool boundaries; /* cleared once MIME_MAX_PARTS is reached */
};

static int node_add(struct mime_tree *t, uint32_t parent, size_t off, size_t lf)
{
	struct mime_node *n;

	if (t->count == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 16;
		struct mime_node *nodes = realloc(t->nodes, cap * sizeof(*nodes));

		if (nodes == NULL)
			return -1;
		t->nodes = nodes;
		t->cap = cap;
	}
	n = &t->nodes[t->count];
	memset(n, 0, sizeof(*n));
	n->hdr_off = n->body_off = n->end_off = off;
	n->hdr_lf = n->body_lf = n->end_lf = lf;
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

static int push(struct scan *s, uint32_t parent, size_t off, size_t lf)
{
	int idx = node_add(s->t, parent, off, lf);

	if (idx < 0)
		return -1;
	s->stack[s->sp++] = (uint32_t)idx;
	return 0;
}

/* The header of the innermost open part ends: its body starts at OFF. */
static int header_done(struct scan *s, size_t off, size_t lf)
{
	struct mime_tree *t = s->t;
	uint32_t idx = s->stack[s->sp - 1];
	struct mime_node *n = &t->nodes[idx];
	struct mime_ctype_info ci;
	bool in_digest = false, room;

	n->body_off = n->end_off = off;
	n->body_lf = n->end_lf = lf;
	n->flags &= (uint8_t)~MIME_NODE_IN_HEADER;
	if (n->parent != MIME_NONE)
		in_digest = (t->nodes[n->parent].flags & MIME_NODE_DIGEST) != 0;
	if (mime_content_kind(t->msg + n->hdr_off, off - n->hdr_off, in_digest, &ci) < 0)
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
static int close_to(struct scan *s, unsigned keep, size_t off, size_t lf)
{
	while (s->sp > keep) {
		struct mime_node *n = &s->t->nodes[s->stack[s->sp - 1]];

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

/* Finds the open multipart whose delimiter LINE is, innermost first; a line
 * that is exactly a delimiter is preferred over one that merely starts with
 * a boundary. Returns the stack level or -1. */
static int find_boundary(const struct scan *s, const uint8_t *line, size_t len, bool *close_r)
{
	int pass, i;

	for (pass = 0; pass < 2; pass++) {
		for (i = (int)s->sp - 1; i >= 0; i--) {
			const struct mime_node *n = &s->t->nodes[s->stack[i]];
			const uint8_t *rest;
			bool close;

			if (n->kind != MIME_MULTIPART || (n->flags & MIME_NODE_CLOSED) ||
			    len < 2 + n->boundary_len ||
			    memcmp(line + 2, n->boundary, n->boundary_len) != 0)
				continue;
			rest = line + 2 + n->boundary_len;
			close = line + len - rest >= 2 && rest[0] == '-' && rest[1] == '-';
			if (pass == 0 && !only_space(rest + (close ? 2 : 0), line + len))
				continue;
			*close_r = close;
			return i;
		}
	}
	return -1;
}

/* A delimiter of the multipart at stack level LEVEL starts at POS (a line
 * start, after LF bytes LF) and its line ends at NEXT. Returns 1 when it was
 * taken as a delimiter, 0 when it is plain body text. */
static int on_boundary(struct scan *s, unsigned level, bool close, size_t pos, size_t lf,
		       size_t next, size_t next_lf)
{
	const struct mime_node *top = &s->t->nodes[s->stack[s->sp - 1]];
	size_t end = pos - 1, end_lf = lf - 1; /* the LF before the line */

	if (!close && s->t->count >= MIME_MAX_PARTS) {
		s->boundaries = false;
		return 0;
	}
	if (end > 0 && s->t->msg[end - 1] == '\r')
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
		s->t->nodes[s->stack[level]].flags |= MIME_NODE_CLOSED;
		return 1;
	}
	return push(s, s->stack[level], next, next_lf) < 0 ? -1 : 1;
}

int mime_tree_build(struct mime_tree *t, const uint8_t *msg, size_t len)
{
	struct scan s = {.t = t, .sp = 0, .boundaries = true};
	size_t pos = 0, lf = 0;

	memset(t, 0, sizeof(*t));
	t->msg = msg != NULL ? msg : (const uint8_t *)"";
	t->len = len;
	if (push(&s, MIME_NONE, 0, 0) < 0)
		goto fail;
	while (pos < len) {
		const uint8_t *line = t->msg + pos;
		const uint8_t *nl = memchr(line, '\n', len - pos);
		size_t next = nl != NULL ? (size_t)(nl - t->msg) + 1 : len;
		size_t next_lf = lf + (nl != NULL);
		size_t clen = (nl != NULL ? (size_t)(nl - t->msg) : len) - pos;
		bool blank = nl != NULL && (clen == 0 || (clen == 1 && line[0] == '\r'));
		bool close = false;
		int level = -1, ret = 0;

		if (s.boundaries && clen >= 2 && line[0] == '-' && line[1] == '-')
			level = find_boundary(&s, line, clen, &close);
		if (level >= 0)
			ret = on_boundary(&s, (unsigned)level, close, pos, lf, next, next_lf);
		if (ret < 0)
			goto fail;
		if (ret == 0 && blank &&
		    (t->nodes[s.stack[s.sp - 1]].flags & MIME_NODE_IN_HEADER) &&
		    header_done(&s, next, next_lf) < 0)
			goto fail;
		pos = next;
		lf = next_lf;
	}
	t->lines = lf;
	if (close_to(&s, 0, len, lf) < 0)
		goto fail;
	return 0;
fail:
	mime_tree_free(t);
	return -1;
}

void mime_tree_free(struct mime_tree *t)
{
	uint32_t i;

	for (i = 0; i < t->count; i++)
		free(t->nodes[i].boundary);
	free(t->nodes);
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
