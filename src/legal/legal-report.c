/* legal-report.c — the transparency report, computed from log entries only.
 *
 * Trust boundary: the input is the public log; the output is public. No
 * request store, config or key is read, so anyone holding the log (and its
 * checkpoint) gets the same figures: docs/legal.md gives the rules and a
 * short program that recomputes them. The report is stamped with the signed
 * checkpoint of the log size it was computed from.
 *
 * A request counts in the period in which its legal.received entry was
 * logged; its outcomes are every later entry about it up to the checkpoint.
 * A request naming several accounts may count under more than one outcome. */
#include "legal/legal-private.h"

#include "tlog/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum report_flag {
	RF_ACCEPTED = 1 << 0,
	RF_REFUSED = 1 << 1,
	RF_REJECTED = 1 << 2,
	RF_NO_DATA = 1 << 3,
	RF_CONTENT = 1 << 4,
	RF_NON_CONTENT = 1 << 5,
};

struct report_request {
	uint64_t index;
	char jur[3];
	int64_t received;
	int64_t nd_ends;
	uint64_t accounts;
	unsigned flags;
	struct legal_strings channels; /* distinct channels this request was refused with */
	struct legal_strings notified; /* distinct account tags notified */
};

struct report_scan {
	uint64_t size;
	struct report_request *reqs;
	size_t count, cap;
};

const char *const legal_report_names[LEGAL_REPORT_COUNTS] = {
    [LR_REQUESTS] = "requests",
    [LR_ACCOUNTS] = "accounts",
    [LR_ACCEPTED] = "accepted",
    [LR_REFUSED] = "refused",
    [LR_REDIRECTED] = "redirected",
    [LR_REJECTED] = "rejected",
    [LR_NO_DATA] = "no_data",
    [LR_CONTENT] = "content_produced",
    [LR_NON_CONTENT] = "non_content_produced",
    [LR_NOTIFIED] = "owners_notified",
    [LR_ND_ACTIVE] = "nondisclosure_active",
};

/* Adds S unless present; returns its position. */
static size_t report_strings_add(struct legal_strings *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return i;
	if (s->n % 8 == 0) {
		char **bigger = xcalloc(s->n + 8, sizeof(*bigger));

		if (s->v != NULL)
			memcpy(bigger, s->v, s->n * sizeof(*bigger));
		free(s->v);
		s->v = bigger;
	}
	s->v[s->n] = xstrdup(v);
	return s->n++;
}

static void report_strings_free(struct legal_strings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static struct report_request *report_find(struct report_scan *sc, const char *id)
{
	uint64_t index;
	size_t lo = 0, hi = sc->count;

	if (id == NULL || legal_id_parse(id, &index) < 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sc->reqs[mid].index == index)
			return &sc->reqs[mid];
		if (sc->reqs[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void report_received(struct report_scan *sc, uint64_t index, char *const *f, int64_t t)
{
	const char *jur = tlog_json_field(f, "jurisdiction");
	const char *accounts = tlog_json_field(f, "accounts");
	const char *nd = tlog_json_field(f, "nondisclosure_ends");
	struct report_request *r;

	if (jur == NULL || strlen(jur) != 2)
		return;
	if (sc->count == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct report_request *bigger = xcalloc(cap, sizeof(*bigger));

		if (sc->reqs != NULL)
			memcpy(bigger, sc->reqs, sc->count * sizeof(*bigger));
		free(sc->reqs);
		sc->reqs = bigger;
		sc->cap = cap;
	}
	r = &sc->reqs[sc->count++];
	memset(r, 0, sizeof(*r));
	r->index = index;
	memcpy(r->jur, jur, 3);
	r->received = t;
	r->accounts = accounts != NULL ? strtoull(accounts, NULL, 10) : 0;
	if (nd == NULL || legal_date_parse(nd, 0, &r->nd_ends) < 0)
		r->nd_ends = 0;
}

static int report_entry(void *ctx, uint64_t index, const uint8_t *json, size_t len)
{
	struct report_scan *sc = ctx;
	struct report_request *r;
	const char *type, *time, *v, *error;
	char **f = NULL;
	int64_t t;

	if (index >= sc->size)
		return 1;
	if (tlog_json_decode(json, len, &f, &error) < 0)
		return 0;
	type = tlog_json_field(f, "type");
	time = tlog_json_field(f, "time");
	if (type == NULL || time == NULL || strncmp(type, "legal.", 6) != 0 ||
	    legal_date_parse(time, 0, &t) < 0)
		goto out;
	if (strcmp(type, "legal.received") == 0) {
		report_received(sc, index, f, t);
		goto out;
	}
	r = report_find(sc, tlog_json_field(f, "request"));
	if (r == NULL)
		goto out;
	if (strcmp(type, "legal.decided") == 0 && (v = tlog_json_field(f, "decision")) != NULL) {
		switch (legal_decision_parse(v)) {
		case LEGAL_ACCEPTED:
			r->flags |= RF_ACCEPTED;
			break;
		case LEGAL_REFUSED:
			r->flags |= RF_REFUSED;
			if ((v = tlog_json_field(f, "channel")) != NULL)
				report_strings_add(&r->channels, v);
			break;
		case LEGAL_REJECTED:
			r->flags |= RF_REJECTED;
			break;
		case LEGAL_NO_DATA:
			r->flags |= RF_NO_DATA;
			break;
		case LEGAL_UNDECIDED:
			break;
		}
	} else if (strcmp(type, "legal.exported") == 0 && (v = tlog_json_field(f, "scope"))) {
		if (strcmp(v, "content") == 0)
			r->flags |= RF_CONTENT;
		else if (strcmp(v, "non-content") == 0)
			r->flags |= RF_NON_CONTENT;
	} else if (strcmp(type, "legal.notified") == 0 && (v = tlog_json_field(f, "account"))) {
		report_strings_add(&r->notified, v);
	}
out:
	tlog_json_fields_free(&f);
	return 0;
}

static struct legal_report_row *report_row(struct legal_report *rep, const char *jur)
{
	struct legal_report_row *row;

	for (size_t i = 0; i < rep->row_count; i++)
		if (strcmp(rep->rows[i].jur, jur) == 0)
			return &rep->rows[i];
	if (rep->row_count % 16 == 0) {
		struct legal_report_row *bigger = xcalloc(rep->row_count + 16, sizeof(*bigger));

		if (rep->rows != NULL)
			memcpy(bigger, rep->rows, rep->row_count * sizeof(*bigger));
		free(rep->rows);
		rep->rows = bigger;
	}
	row = &rep->rows[rep->row_count++];
	snprintf(row->jur, sizeof(row->jur), "%s", jur);
	return row;
}

static void report_channel(struct legal_report_row *row, const char *channel)
{
	size_t before = row->channels.n, i = report_strings_add(&row->channels, channel);

	if (row->channels.n > before && i % 8 == 0) {
		uint64_t *bigger = xcalloc(i + 8, sizeof(*bigger));

		if (row->channel_counts != NULL)
			memcpy(bigger, row->channel_counts, i * sizeof(*bigger));
		free(row->channel_counts);
		row->channel_counts = bigger;
	}
	row->channel_counts[i]++;
}

static void report_add(struct legal_report_row *row, const struct report_request *r)
{
	static const struct {
		unsigned flag;
		enum legal_report_count count;
	} outcomes[] = {{RF_ACCEPTED, LR_ACCEPTED}, {RF_REFUSED, LR_REFUSED},
			{RF_REJECTED, LR_REJECTED}, {RF_NO_DATA, LR_NO_DATA},
			{RF_CONTENT, LR_CONTENT},   {RF_NON_CONTENT, LR_NON_CONTENT}};

	row->v[LR_REQUESTS]++;
	row->v[LR_ACCOUNTS] += r->accounts;
	for (size_t i = 0; i < N_ELEMENTS(outcomes); i++)
		if (r->flags & outcomes[i].flag)
			row->v[outcomes[i].count]++;
	if (r->channels.n > 0)
		row->v[LR_REDIRECTED]++;
	for (size_t i = 0; i < r->channels.n; i++)
		report_channel(row, r->channels.v[i]);
	row->v[LR_NOTIFIED] += r->notified.n;
}

static int report_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct legal_report_row *)a)->jur,
		      ((const struct legal_report_row *)b)->jur);
}

int legal_report_compute(struct tlog *log, int64_t from, int64_t to, struct legal_report **report_r,
			 const char **error_r)
{
	struct legal_report *rep = xcalloc(1, sizeof(*rep));
	struct report_scan sc = {.size = tlog_size(log)};
	uint8_t root[TLOG_HASH_BYTES];
	int ret = -1;

	rep->from = from;
	rep->to = to;
	rep->size = sc.size;
	rep->origin = xstrdup(tlog_origin(log));
	buf_init(&rep->checkpoint);
	if (tlog_checkpoint_at(log, sc.size, &rep->checkpoint, error_r) < 0 ||
	    tlog_root(log, sc.size, root, error_r) < 0)
		goto out;
	rep->root = seal_base64_encode(root, sizeof(root));
	if (tlog_foreach(log, 0, report_entry, &sc, error_r) < 0)
		goto out;
	for (size_t i = 0; i < sc.count; i++) {
		const struct report_request *r = &sc.reqs[i];

		if (r->received >= from && r->received < to) {
			report_add(report_row(rep, r->jur), r);
			report_add(&rep->totals, r);
		}
		if (r->received < to && r->nd_ends > to) {
			report_row(rep, r->jur)->v[LR_ND_ACTIVE]++;
			rep->totals.v[LR_ND_ACTIVE]++;
		}
	}
	qsort(rep->rows, rep->row_count, sizeof(*rep->rows), report_row_cmp);
	snprintf(rep->totals.jur, sizeof(rep->totals.jur), "all");
	ret = 0;
out:
	for (size_t i = 0; i < sc.count; i++) {
		report_strings_free(&sc.reqs[i].channels);
		report_strings_free(&sc.reqs[i].notified);
	}
	free(sc.reqs);
	if (ret < 0)
		legal_report_free(&rep);
	*report_r = rep;
	return ret;
}

static void report_row_json(struct buf *b, const struct legal_report_row *row)
{
	legal_put(b, "{\"jurisdiction\":");
	legal_put_json(b, row->jur);
	for (int i = 0; i < LEGAL_REPORT_COUNTS; i++) {
		legal_putf(b, ",\"%s\":%llu", legal_report_names[i], (unsigned long long)row->v[i]);
		if (i != LR_REDIRECTED)
			continue;
		legal_put(b, ",\"channels\":[");
		for (size_t c = 0; c < row->channels.n; c++) {
			legal_put(b, c > 0 ? ",{\"channel\":" : "{\"channel\":");
			legal_put_json(b, row->channels.v[c]);
			legal_putf(b, ",\"requests\":%llu}",
				   (unsigned long long)row->channel_counts[c]);
		}
		legal_put(b, "]");
	}
	legal_put(b, "}");
}

void legal_report_json(const struct legal_report *rep, struct buf *b)
{
	char from[LEGAL_TIME_MAX], to[LEGAL_TIME_MAX];

	legal_time_format(rep->from, from);
	legal_time_format(rep->to, to);
	legal_put(b, "{\"format\":\"sealmail-transparency-report/1\",\"origin\":");
	legal_put_json(b, rep->origin);
	legal_putf(b, ",\"period\":{\"start\":\"%s\",\"end\":\"%s\"},", from, to);
	legal_putf(b, "\"checkpoint\":{\"size\":%llu,\"root\":\"%s\",\"note\":",
		   (unsigned long long)rep->size, rep->root);
	legal_put_json(b, buf_cstr((struct buf *)&rep->checkpoint));
	legal_put(b, "},\n\"jurisdictions\":[");
	for (size_t i = 0; i < rep->row_count; i++) {
		legal_put(b, i > 0 ? ",\n" : "\n");
		report_row_json(b, &rep->rows[i]);
	}
	legal_put(b, "\n],\n\"totals\":");
	report_row_json(b, &rep->totals);
	legal_put(b, "}\n");
}

static void report_row_free(struct legal_report_row *row)
{
	report_strings_free(&row->channels);
	free(row->channel_counts);
	row->channel_counts = NULL;
}

void legal_report_free(struct legal_report **repp)
{
	struct legal_report *rep = *repp;

	if (rep == NULL)
		return;
	*repp = NULL;
	for (size_t i = 0; i < rep->row_count; i++)
		report_row_free(&rep->rows[i]);
	report_row_free(&rep->totals);
	free(rep->rows);
	free(rep->origin);
	free(rep->root);
	buf_free(&rep->checkpoint);
	free(rep);
}
