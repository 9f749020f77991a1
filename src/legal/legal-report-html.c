/* legal-report-html.c — the transparency report as one self-contained page:
 * inline CSS and an inline SVG chart, no scripts, fonts or images to fetch,
 * laid out to read on a phone.
 *
 * Trust boundary: the page is public and built from the report alone. The
 * only text that did not come from this program (log origin, refusal
 * channels from the policy) is HTML-escaped. */
#include "legal/legal-private.h"

#include <stdio.h>
#include <string.h>

#define CHART_WIDTH 400
#define CHART_LABEL 40
#define CHART_ROW   50

static const char report_css[] =
    ":root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;"
    "--req:#8c959f;--ref:#c2410c;--prod:#15803d}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;"
    "--line:#30363d}}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    "main{max-width:60rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0}"
    "h2{font-size:1.15rem;margin:1.5rem 0 .5rem}"
    ".muted{color:var(--muted)}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.5rem}"
    ".card{border:1px solid var(--line);border-radius:.5rem;padding:.5rem .75rem}"
    ".card b{display:block;font-size:1.6rem;font-variant-numeric:tabular-nums}"
    ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}"
    "th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:right;"
    "white-space:nowrap}"
    "th:first-child,td:first-child{text-align:left;position:sticky;left:0;"
    "background:var(--bg)}"
    "tfoot td{font-weight:600}"
    "svg{width:100%;max-width:32rem;height:auto;display:block}"
    ".b-req{fill:var(--req)}.b-ref{fill:var(--ref)}.b-prod{fill:var(--prod)}"
    ".key span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;"
    "border-radius:2px}"
    "pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem;padding:.75rem;"
    "border:1px solid var(--line);border-radius:.5rem}"
    "dt{font-weight:600}dd{margin:0 0 .5rem 0}";

static const struct {
	enum legal_report_count count;
	const char *head;
	const char *meaning;
} report_columns[] = {
    {LR_REQUESTS, "Requests", "requests received in the period (legal.received)"},
    {LR_ACCOUNTS, "Accounts", "accounts the requests named"},
    {LR_ACCEPTED, "Accepted", "requests accepted for at least one account"},
    {LR_REFUSED, "Refused", "requests the policy refused for at least one account"},
    {LR_REDIRECTED, "Redirected", "refused requests pointed to another channel"},
    {LR_REJECTED, "Rejected", "requests the operator rejected"},
    {LR_NO_DATA, "No data", "requests naming an account that does not exist"},
    {LR_CONTENT, "Sealed content", "requests for which sealed records were produced"},
    {LR_NON_CONTENT, "Non-content", "requests for which only index metadata was produced"},
    {LR_NOTIFIED, "Owners notified", "account owners told so far"},
    {LR_ND_ACTIVE, "Gag orders active",
     "non-disclosure orders still in force at the end of the period"},
};

static void html_text(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			legal_put(b, "&amp;");
			break;
		case '<':
			legal_put(b, "&lt;");
			break;
		case '>':
			legal_put(b, "&gt;");
			break;
		case '"':
			legal_put(b, "&quot;");
			break;
		case '\'':
			legal_put(b, "&#39;");
			break;
		default:
			if (buf_append(b, s, 1) < 0)
				log_fatal("out of memory");
		}
	}
}

static void html_bar(struct buf *b, unsigned y, uint64_t value, uint64_t max, const char *cls,
		     const char *what)
{
	unsigned span = CHART_WIDTH - CHART_LABEL - 40;
	unsigned w = max > 0 ? (unsigned)((value * span + max - 1) / max) : 0;

	legal_putf(b,
		   "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"11\" rx=\"2\" class=\"%s\">"
		   "<title>%s: %llu</title></rect>"
		   "<text x=\"%u\" y=\"%u\" font-size=\"12\" fill=\"currentColor\">%llu</text>",
		   CHART_LABEL, y, w, cls, what, (unsigned long long)value, CHART_LABEL + w + 4,
		   y + 10, (unsigned long long)value);
}

/* One row per jurisdiction: requests, refused, data produced. */
static void html_chart(struct buf *b, const struct legal_report *rep)
{
	uint64_t max = 0;
	unsigned height = (unsigned)rep->row_count * CHART_ROW + 8;

	for (size_t i = 0; i < rep->row_count; i++)
		if (rep->rows[i].v[LR_REQUESTS] > max)
			max = rep->rows[i].v[LR_REQUESTS];
	legal_put(b, "<p class=\"key muted\"><span style=\"background:var(--req)\"></span>requests"
		     "<span style=\"background:var(--ref)\"></span>refused"
		     "<span style=\"background:var(--prod)\"></span>data produced</p>");
	legal_putf(b,
		   "<svg viewBox=\"0 0 %u %u\" role=\"img\" aria-label=\"Requests, refusals and "
		   "data produced per jurisdiction\">",
		   CHART_WIDTH, height);
	for (size_t i = 0; i < rep->row_count; i++) {
		const struct legal_report_row *row = &rep->rows[i];
		unsigned y = (unsigned)i * CHART_ROW + 4;
		uint64_t produced = row->v[LR_CONTENT] + row->v[LR_NON_CONTENT];

		legal_putf(b,
			   "<text x=\"0\" y=\"%u\" font-size=\"15\" font-weight=\"600\" "
			   "fill=\"currentColor\">",
			   y + 24);
		html_text(b, row->jur);
		legal_put(b, "</text>");
		html_bar(b, y, row->v[LR_REQUESTS], max, "b-req", "requests");
		html_bar(b, y + 13, row->v[LR_REFUSED], max, "b-ref", "refused");
		html_bar(b, y + 26, produced, max, "b-prod", "data produced");
	}
	legal_put(b, "</svg>");
}

static void html_row(struct buf *b, const struct legal_report_row *row, const char *label)
{
	legal_put(b, "<tr><td>");
	html_text(b, label);
	legal_put(b, "</td>");
	for (size_t c = 0; c < N_ELEMENTS(report_columns); c++)
		legal_putf(b, "<td>%llu</td>", (unsigned long long)row->v[report_columns[c].count]);
	legal_put(b, "</tr>");
}

static void html_card(struct buf *b, const char *what, uint64_t n)
{
	legal_putf(b, "<div class=\"card\"><b>%llu</b>%s</div>", (unsigned long long)n, what);
}

void legal_report_html(const struct legal_report *rep, struct buf *b)
{
	char from[LEGAL_TIME_MAX], to[LEGAL_TIME_MAX];
	const struct legal_report_row *t = &rep->totals;

	legal_time_format(rep->from, from);
	legal_time_format(rep->to, to);
	legal_put(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		     "<title>Transparency report: ");
	html_text(b, rep->origin);
	legal_putf(b,
		   "</title>\n<style>%s</style></head>\n<body><main>\n<h1>Transparency report"
		   "</h1>\n<p class=\"muted\">",
		   report_css);
	html_text(b, rep->origin);
	legal_putf(b,
		   " &middot; requests received from %s up to %s (exclusive) &middot; "
		   "computed from the first %llu log entries</p>\n",
		   from, to, (unsigned long long)rep->size);
	legal_put(b, "<div class=\"cards\">");
	html_card(b, "requests", t->v[LR_REQUESTS]);
	html_card(b, "accounts named", t->v[LR_ACCOUNTS]);
	html_card(b, "refused", t->v[LR_REFUSED]);
	html_card(b, "sealed content produced", t->v[LR_CONTENT]);
	html_card(b, "owners notified", t->v[LR_NOTIFIED]);
	legal_put(b, "</div>\n<p>Stored mail is sealed to each owner's key: whatever was "
		     "produced is ciphertext the operator cannot open.</p>\n");
	legal_put(b, "<h2>By issuing jurisdiction</h2>\n");
	if (rep->row_count > 0)
		html_chart(b, rep);
	legal_put(b, "<div class=\"scroll\"><table><thead><tr><th>Jurisdiction</th>");
	for (size_t c = 0; c < N_ELEMENTS(report_columns); c++)
		legal_putf(b, "<th>%s</th>", report_columns[c].head);
	legal_put(b, "</tr></thead><tbody>");
	for (size_t i = 0; i < rep->row_count; i++)
		html_row(b, &rep->rows[i], rep->rows[i].jur);
	legal_put(b, "</tbody><tfoot>");
	html_row(b, t, "All");
	legal_put(b, "</tfoot></table></div>\n<h2>Refused requests were pointed to</h2>\n<ul>");
	for (size_t i = 0; i < rep->row_count; i++) {
		const struct legal_report_row *row = &rep->rows[i];

		for (size_t c = 0; c < row->channels.n; c++) {
			legal_put(b, "<li>");
			html_text(b, row->jur);
			legal_put(b, " &rarr; ");
			html_text(b, row->channels.v[c]);
			legal_putf(b, ": %llu</li>", (unsigned long long)row->channel_counts[c]);
		}
	}
	if (t->channels.n == 0)
		legal_put(b, "<li class=\"muted\">none</li>");
	legal_put(b, "</ul>\n<h2>What the columns count</h2>\n<dl>");
	for (size_t c = 0; c < N_ELEMENTS(report_columns); c++)
		legal_putf(b, "<dt>%s</dt><dd>%s</dd>", report_columns[c].head,
			   report_columns[c].meaning);
	legal_put(b, "</dl>\n<p>A request counts in the period its <code>legal.received</code> "
		     "entry was logged; a request naming several accounts can count under more "
		     "than one outcome.</p>\n<h2>Check it yourself</h2>\n<p>Every figure is "
		     "computed from the log entries covered by this signed checkpoint. Fetch the "
		     "entries (<code>sealmail log show --json</code>), check them against the "
		     "checkpoint, and recompute the figures with the rules in "
		     "<code>docs/legal.md</code>.</p>\n<pre>");
	html_text(b, buf_cstr((struct buf *)&rep->checkpoint));
	legal_put(b, "</pre>\n</main></body></html>\n");
}
