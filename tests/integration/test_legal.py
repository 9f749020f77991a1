"""Legal requests end to end through the CLI, after the Microsoft Ireland case:
an account homed in eu-ie (IE) receives mail; a US warrant for its content is
refused and pointed to IE through mutual legal assistance; an IE court order
with a non-disclosure order is accepted and exported as sealed records that
only the owner can open; the owner's notice appears only once the order has
ended; the transparency report counts it all and is recomputed here from the
log alone, against its checkpoint."""
import base64
import hashlib
import imaplib
import json
import re
import secrets
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import Server, scan_at_rest

EX_USAGE, EX_DATAERR = 64, 65
ALICE = "alice@example.org"
PASSWORD = "correct horse"


def ok(r):
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr)
    return r.stdout


def mail(token):
    return ("From: Bob <bob@example.net>\r\nTo: Alice <%s>\r\n"
            "Subject: plans %s\r\nMessage-ID: <%s@example.net>\r\n\r\n"
            "The meeting point is %s.\r\n" % (ALICE, token, token, token))


def file_request(inst, jurisdiction, instrument, scope, accounts, reference, nd=None,
                 authority=None):
    args = ["legal", "file", "--authority", authority or "Court of " + jurisdiction,
            "--jurisdiction", jurisdiction, "--instrument", instrument,
            "--reference", reference, "--scope", scope, "--account"] + list(accounts)
    if nd:
        args += ["--nondisclosure-until", nd]
    out = ok(inst.run(args)).strip()
    assert re.fullmatch(r"LR-\d+", out), out
    return out


def show(inst, rid):
    return json.loads(ok(inst.run(["legal", "show", rid, "--json"])))


def log_entries(inst):
    return [json.loads(line) for line in ok(inst.run(["log", "show", "--json"])).splitlines()]


def log_lines(inst):
    return ok(inst.run(["log", "show", "--json"])).encode().splitlines()


def inbox(inst, tmp_path):
    out = tmp_path / secrets.token_hex(4)
    return [m[2] for m in inst.export(ALICE, PASSWORD, out=out)["INBOX"]]


# ---- independent checks (RFC 9162, hashlib only) -----------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


COUNTS = ("requests", "accounts", "accepted", "refused", "redirected", "rejected", "no_data",
          "content_produced", "non_content_produced", "owners_notified",
          "nondisclosure_active")


def recompute(entries, start, end):
    """The report's rules (docs/legal.md), from log entries only."""
    reqs = {}
    for index, e in enumerate(entries):
        kind = e.get("type", "")
        if kind == "legal.received":
            nd = e["nondisclosure_ends"]
            reqs["LR-%d" % index] = {
                "jur": e["jurisdiction"], "t": ts(e["time"]), "accounts": int(e["accounts"]),
                "nd": None if nd == "none" else ts(nd), "out": set(), "channels": set(),
                "notified": set()}
            continue
        r = reqs.get(e.get("request"))
        if r is None or not kind.startswith("legal."):
            continue
        if kind == "legal.decided":
            r["out"].add(e["decision"])
            if e["decision"] == "refused" and "channel" in e:
                r["channels"].add(e["channel"])
        elif kind == "legal.exported":
            r["out"].add(e["scope"])
        elif kind == "legal.notified":
            r["notified"].add(e["account"])
    rows = {}

    def row(jur):
        return rows.setdefault(jur, dict({c: 0 for c in COUNTS}, channels={}))

    for r in reqs.values():
        if start <= r["t"] < end:
            x = row(r["jur"])
            x["requests"] += 1
            x["accounts"] += r["accounts"]
            for name, outcome in (("accepted", "accepted"), ("refused", "refused"),
                                  ("rejected", "rejected"), ("no_data", "no-data"),
                                  ("content_produced", "content"),
                                  ("non_content_produced", "non-content")):
                x[name] += outcome in r["out"]
            x["redirected"] += bool(r["channels"])
            for c in r["channels"]:
                x["channels"][c] = x["channels"].get(c, 0) + 1
            x["owners_notified"] += len(r["notified"])
        if r["t"] < end and r["nd"] is not None and r["nd"] > end:
            row(r["jur"])["nondisclosure_active"] += 1
    return rows


def report_rows(report):
    rows = {}
    for j in report["jurisdictions"]:
        rows[j["jurisdiction"]] = dict({c: j[c] for c in COUNTS},
                                       channels={c["channel"]: c["requests"]
                                                 for c in j["channels"]})
    return rows


def check_bundle(bundle, entries_lines):
    """Checks a bundle with hashlib alone: files against the manifest, the
    manifest against the log entry, the entry against the inclusion proof."""
    manifest_bytes = (bundle / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    log = json.loads((bundle / "log.json").read_text())
    entry = log["entry"].encode()
    index, size = int(log["index"]), int(log["size"])
    assert entry_lines_match(entries_lines, index, entry)
    root = base64.b64decode(log["root"])
    assert isinstance(log["proof"], list) and isinstance(log["index"], int)
    proof = [base64.b64decode(p) for p in log["proof"]]
    assert leaf_hash(entry) == base64.b64decode(log["leaf_hash"])
    assert verify_inclusion(leaf_hash(entry), index, size, proof, root)
    assert log["checkpoint"].split("\n")[1:3] == [str(size), log["root"]]
    e = json.loads(entry)
    assert e["type"] == "legal.exported"
    assert e["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert len(base64.b64decode((bundle / "manifest.sig").read_text())) == 64
    listed = {}
    for acct in manifest["accounts"]:
        for f in acct["files"]:
            listed[f["path"]] = f
    present = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()}
    assert present - {"manifest.json", "manifest.sig", "log.json"} == set(listed)
    for path, f in listed.items():
        data = (bundle / path).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    return manifest, e, index


def entry_lines_match(lines, index, entry):
    return lines[index] == entry


# ---- the scenario ------------------------------------------------------------

def test_microsoft_ireland_end_to_end(instance, tmp_path):
    token = "ZEBRA-" + secrets.token_hex(6)
    instance.add_user(ALICE, region="eu-ie", password=PASSWORD)
    ok(instance.deliver(ALICE, mail(token)))

    # A US warrant for content stored in Ireland: refused, pointed to IE.
    us = file_request(instance, "US", "warrant", "content", [ALICE], "13-MJ-2814",
                      authority="US District Court, S.D.N.Y.")
    ok(instance.run(["legal", "decide", us]))
    req = show(instance, us)
    acct = req["accounts"][0]
    assert (acct["decision"], acct["reason"]) == ("refused", "foreign-jurisdiction")
    assert acct["channel"] == "IE via mutual legal assistance"
    assert acct["data_jurisdiction"] == "IE" and acct["notice"] == "delivered"
    r = instance.run(["legal", "export", us, "--out", str(tmp_path / "us-bundle")])
    assert r.returncode == EX_DATAERR and not (tmp_path / "us-bundle").exists()
    notices = [m for m in inbox(instance, tmp_path) if b"Legal request " + us.encode() in m]
    assert len(notices) == 1 and b"IE via mutual legal assistance" in notices[0]

    # An Irish court order for the same account, under a non-disclosure order.
    ie = file_request(instance, "IE", "court-order", "content", [ALICE], "2026 No. 42 MCA",
                      nd="2031-01-31", authority="High Court of Ireland")
    ok(instance.run(["legal", "decide", ie]))
    req = show(instance, ie)
    assert req["accounts"][0]["decision"] == "accepted"
    assert req["accounts"][0]["notice"] == "pending"
    assert req["nondisclosure_ends"] == "2031-02-01T00:00:00Z"
    bundle = tmp_path / "ie-bundle"
    out = ok(instance.run(["legal", "export", ie, "--out", str(bundle)]))
    assert "1 account" in out and not Path(str(bundle) + ".partial").exists()

    # The bundle: sealed records only, checked independently, and by the CLI.
    assert scan_at_rest(bundle, [token, ALICE, "plans", "meeting point"]) == []
    manifest, entry, index = check_bundle(bundle, log_lines(instance))
    # log.json holds the proof as `log prove-inclusion` prints it.
    log_json = json.loads((bundle / "log.json").read_text())
    proved = json.loads(ok(instance.run(["log", "prove-inclusion", str(index), "--size",
                                         str(log_json["size"])])))
    assert {k: log_json[k] for k in proved} == proved
    tag = manifest["accounts"][0]["account"]
    assert tag == req["accounts"][0]["tag"] and entry["request"] == ie
    assert len(list((bundle / "accounts" / tag / "records").glob("*.smr"))) == 2
    size = int(json.loads((bundle / "log.json").read_text())["size"])
    note = ok(instance.run(["log", "checkpoint", "--size", str(size)]))
    assert json.loads((bundle / "log.json").read_text())["checkpoint"] == note
    assert ok(instance.run(["legal", "verify-bundle", str(bundle)])).startswith("ok")

    # Only the owner can open it, with the real key.
    r = instance.run(["legal", "open-bundle", str(bundle), "--account", ALICE,
                      "--password-stdin", "--out", str(tmp_path / "wrong")],
                     input="not the password\n")
    assert r.returncode != 0
    opened = tmp_path / "opened"
    ok(instance.run(["legal", "open-bundle", str(bundle), "--account", ALICE,
                     "--password-stdin", "--out", str(opened)], input=PASSWORD + "\n"))
    texts = [p.read_bytes() for p in sorted(opened.glob("*.eml"))]
    assert any(token.encode() in t for t in texts)

    # The notice waits for the end of the non-disclosure order.
    assert not any(ie.encode() in m for m in inbox(instance, tmp_path))
    assert "0 notices" in ok(instance.run(["legal", "notify"]))
    # A date to come is refused unless forced (it would tell the owner early).
    r = instance.run(["legal", "notify", "--as-of", "2031-02-01"])
    assert r.returncode == EX_USAGE and "--force" in r.stderr
    assert "0 notices" in ok(instance.run(["legal", "notify", "--as-of", "2031-01-31",
                                           "--force"]))
    assert not any(ie.encode() in m for m in inbox(instance, tmp_path))
    assert "1 notice delivered" in ok(instance.run(["legal", "notify", "--as-of",
                                                    "2031-02-01", "--force"]))
    notices = [m for m in inbox(instance, tmp_path) if b"Legal request " + ie.encode() in m]
    assert len(notices) == 1
    assert b"accepted" in notices[0] and b"High Court of Ireland" in notices[0]
    assert ("legal.exported     entry %d" % index).encode() in notices[0]
    assert "0 notices" in ok(instance.run(["legal", "notify", "--as-of", "2031-02-02",
                                           "--force"]))

    # The log ties the notice to the decision through the revealed nonce.
    entries = log_entries(instance)
    notified = [e for e in entries if e["type"] == "legal.notified" and e["request"] == ie]
    assert len(notified) == 1 and notified[0]["account"] == tag
    decided = entries[int(notified[0]["decided_entry"])]
    commit = hashlib.sha256(("sealmail-legal-account\n%s\n%s" % (
        tag, notified[0]["nonce"])).encode()).hexdigest()
    assert decided["type"] == "legal.decided" and decided["account"] == commit

    # The report counts all of it and is recomputed from the log alone.
    report = json.loads(ok(instance.run(["report", "--from", "2000-01-01", "--to",
                                         "2100-12-31", "--format", "json"])))
    rows = report_rows(report)
    assert rows["US"]["requests"] == 1 and rows["US"]["refused"] == 1
    assert rows["US"]["redirected"] == 1
    assert rows["US"]["channels"] == {"IE via mutual legal assistance": 1}
    assert rows["US"]["content_produced"] == 0 and rows["US"]["owners_notified"] == 1
    assert rows["IE"]["requests"] == 1 and rows["IE"]["accepted"] == 1
    assert rows["IE"]["content_produced"] == 1 and rows["IE"]["owners_notified"] == 1
    assert rows["IE"]["nondisclosure_active"] == 0
    assert report["totals"]["requests"] == 2 and report["totals"]["accounts"] == 2
    lines = log_lines(instance)
    size = report["checkpoint"]["size"]
    assert size == len(lines)
    root = merkle_root([leaf_hash(line) for line in lines[:size]])
    assert base64.b64encode(root).decode() == report["checkpoint"]["root"]
    assert report["checkpoint"]["note"] == ok(instance.run(["log", "checkpoint", "--size",
                                                            str(size)]))
    assert ok(instance.run(["log", "verify"])).strip() == "ok"
    assert recompute([json.loads(x) for x in lines[:size]], ts(report["period"]["start"]),
                     ts(report["period"]["end"])) == rows
    # Seen from a period that ends while the order is in force.
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    during = json.loads(ok(instance.run(["report", "--from", "2000-01-01", "--to", now])))
    assert report_rows(during)["IE"]["nondisclosure_active"] == 1

    # Nothing on disk names the account or holds the mail.
    assert scan_at_rest(instance.dir, [ALICE, token, "13-MJ-2814", "2026 No. 42"]) == []


HTML_COLUMNS = (("Requests", "requests"), ("Accounts", "accounts"), ("Accepted", "accepted"),
                ("Refused", "refused"), ("Redirected", "redirected"), ("Rejected", "rejected"),
                ("No data", "no_data"), ("Sealed content", "content_produced"),
                ("Non-content", "non_content_produced"), ("Owners notified", "owners_notified"),
                ("Gag orders active", "nondisclosure_active"))


class TableReader(HTMLParser):
    """The report's table: header cells, and body and footer rows as lists."""

    def __init__(self):
        super().__init__()
        self.heads, self.rows, self.foot = [], [], []
        self.part, self.row, self.cell = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag in ("thead", "tbody", "tfoot"):
            self.part = tag
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            {"thead": self.heads, "tbody": self.rows, "tfoot": self.foot}[self.part].append(
                self.row)
            self.row = None


def test_report_html_is_self_contained(instance, tmp_path):
    instance.add_user(ALICE, password=PASSWORD)
    ok(instance.deliver(ALICE, mail("HTML-TOKEN")))
    # Enough different outcomes that every column has a figure of its own.
    us = file_request(instance, "US", "warrant", "content", [ALICE], "X-1")
    ok(instance.run(["legal", "decide", us]))
    held = file_request(instance, "IE", "warrant", "content", [ALICE, "ghost@example.org"],
                        "X-2", nd="2099-01-01")
    ok(instance.run(["legal", "decide", held]))
    ok(instance.run(["legal", "export", held, "--out", str(tmp_path / "b1")]))
    meta = file_request(instance, "IE", "subpoena", "non-content", [ALICE], "X-3")
    ok(instance.run(["legal", "decide", meta]))
    ok(instance.run(["legal", "export", meta, "--out", str(tmp_path / "b2")]))
    for _ in range(2):
        rid = file_request(instance, "IE", "warrant", "content", [ALICE], "X-4")
        ok(instance.run(["legal", "reject", rid, "--reason", "overbroad"]))
    ghost = file_request(instance, "FR", "warrant", "content", ["ghost@example.org"], "X-5")
    ok(instance.run(["legal", "decide", ghost]))
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    period = ["--from", "2000-01-01", "--to", today]
    page = tmp_path / "report.html"
    ok(instance.run(["report", "--format", "html", "--out", str(page)] + period))
    report = json.loads(ok(instance.run(["report", "--format", "json"] + period)))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "<svg" in html
    assert 'name="viewport"' in html and "width=device-width" in html
    assert "US &rarr; IE via mutual legal assistance" in html
    assert not re.search(r"(src|href)\s*=|@import|url\(|https?://", html)
    assert not re.search(r"<script|<img|<link|<iframe", html, re.I)
    note = ok(instance.run(["log", "checkpoint"]))
    assert note.split("\n")[2] in html
    assert report["checkpoint"]["root"] == note.split("\n")[2]

    table = TableReader()
    table.feed(html)
    assert table.heads == [["Jurisdiction"] + [head for head, _ in HTML_COLUMNS]]
    want = {j["jurisdiction"]: [str(j[name]) for _, name in HTML_COLUMNS]
            for j in report["jurisdictions"]}
    got = {row[0]: row[1:] for row in table.rows}
    assert got == want and set(got) == {"US", "IE", "FR"}
    assert table.foot == [["All"] + [str(report["totals"][name]) for _, name in HTML_COLUMNS]]
    # The figures differ enough that a swapped column would show.
    ie = dict(zip((name for _, name in HTML_COLUMNS), map(int, got["IE"])))
    assert ie == {"requests": 4, "accounts": 5, "accepted": 2, "refused": 0, "redirected": 0,
                  "rejected": 2, "no_data": 1, "content_produced": 1,
                  "non_content_produced": 1, "owners_notified": 3,
                  "nondisclosure_active": 1}
    assert all(report["totals"][name] > 0 for _, name in HTML_COLUMNS), report["totals"]


def test_partner_subpoena_preservation_and_no_data(instance, tmp_path):
    instance.add_user(ALICE, password=PASSWORD)
    policy = instance.dir / "policy.conf"
    policy.write_text(policy.read_text().replace("# partners = GB", "partners = GB"))
    ok(instance.deliver(ALICE, mail("PARTNER-TOKEN")))
    cases = [
        ("GB", "court-order", "content", [ALICE], ["accepted"], "partner"),
        ("IE", "subpoena", "content", [ALICE], ["refused"], "instrument"),
        ("IE", "subpoena", "non-content", [ALICE], ["accepted"], "same-jurisdiction"),
        ("IE", "preservation", "content", [ALICE], ["accepted"], "preservation"),
        ("FR", "preservation", "content", [ALICE], ["refused"], "foreign-jurisdiction"),
        ("IE", "warrant", "content", ["ghost@example.org"], ["no-data"], "no-account"),
    ]
    ids = {}
    for jur, inst, scope, accts, decisions, reason in cases:
        rid = file_request(instance, jur, inst, scope, accts, "REF-%s-%s" % (jur, inst))
        ok(instance.run(["legal", "decide", rid]))
        got = show(instance, rid)["accounts"]
        assert [a["decision"] for a in got] == decisions, (jur, inst, got)
        assert got[0]["reason"] == reason
        ids[(jur, inst, scope)] = rid
    # A preservation request discloses nothing.
    r = instance.run(["legal", "export", ids[("IE", "preservation", "content")], "--out",
                      str(tmp_path / "p")])
    assert r.returncode == EX_DATAERR and "preservation" in r.stderr
    # Non-content: index metadata only, nothing sealed to open.
    bundle = tmp_path / "nc"
    ok(instance.run(["legal", "export", ids[("IE", "subpoena", "non-content")], "--out",
                     str(bundle)]))
    check_bundle(bundle, log_lines(instance))
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("accounts/")] == [
        f for f in files if f.endswith("index.json")] and len(files) == 4
    index = json.loads(next(bundle.rglob("index.json")).read_text())
    msgs = [m for box in index["mailboxes"] for m in box["messages"]]
    assert msgs and all("record" not in m and m["size"] > 0 for m in msgs)
    r = instance.run(["legal", "open-bundle", str(bundle), "--account", ALICE,
                      "--password-stdin", "--out", str(tmp_path / "o")], input=PASSWORD + "\n")
    assert r.returncode != 0 and "non-content" in r.stderr
    # The partner's content bundle opens for the owner.
    bundle = tmp_path / "gb"
    ok(instance.run(["legal", "export", ids[("GB", "court-order", "content")], "--out",
                     str(bundle)]))
    ok(instance.run(["legal", "open-bundle", str(bundle), "--account", ALICE,
                     "--password-stdin", "--out", str(tmp_path / "gb-open")],
                    input=PASSWORD + "\n"))
    assert any(b"PARTNER-TOKEN" in p.read_bytes() for p in (tmp_path / "gb-open").iterdir())
    rows = report_rows(json.loads(ok(instance.run(["report", "--from", "2000-01-01",
                                                   "--to", "2100-01-01"]))))
    assert rows["GB"]["content_produced"] == 1 and rows["IE"]["no_data"] == 1
    assert rows["IE"]["non_content_produced"] == 1 and rows["IE"]["refused"] == 1
    assert rows["FR"]["channels"] == {"IE via mutual legal assistance": 1}


def test_operator_rejection_is_logged_without_its_text(instance, tmp_path):
    instance.add_user(ALICE, password=PASSWORD)
    reason = "overbroad request naming " + ALICE
    rid = file_request(instance, "IE", "warrant", "content", [ALICE], "REF-REJECT-77")
    r = instance.run(["legal", "reject", rid])
    assert r.returncode == EX_USAGE
    ok(instance.run(["legal", "reject", rid, "--reason", reason]))
    req = show(instance, rid)
    assert req["status"] == "rejected" and req["accounts"][0]["decision"] == "rejected"
    assert req["accounts"][0]["notice"] == "delivered"
    assert instance.run(["legal", "decide", rid]).returncode == EX_DATAERR
    assert instance.run(["legal", "export", rid, "--out",
                         str(tmp_path / "x")]).returncode == EX_DATAERR
    notice = [m for m in inbox(instance, tmp_path) if rid.encode() in m][0]
    assert b"rejected" in notice and b"overbroad request" in notice
    log = ok(instance.run(["log", "show", "--json"]))
    assert "reason\":\"operator" in log
    for secret in (ALICE, "overbroad", "REF-REJECT-77"):
        assert secret not in log
    rows = report_rows(json.loads(ok(instance.run(["report", "--to", "2100-01-01"]))))
    assert rows["IE"]["rejected"] == 1 and rows["IE"]["owners_notified"] == 1
    assert scan_at_rest(instance.dir, [ALICE, "overbroad", "REF-REJECT-77"]) == []


def test_log_never_names_accounts_before_the_owner_may_know(instance, tmp_path):
    instance.add_user(ALICE, password=PASSWORD)
    tag = re.search(r"log tag:\s+([0-9a-f]{32})", ok(instance.run(["user", "show", ALICE])))[1]
    rid = file_request(instance, "IE", "warrant", "content", [ALICE], "NDO-1",
                       nd="2035-01-01")
    ok(instance.run(["legal", "decide", rid]))
    ok(instance.run(["legal", "export", rid, "--out", str(tmp_path / "b")]))
    legal = [line for line in ok(instance.run(["log", "show", "--json"])).splitlines()
             if '"legal.' in line]
    assert len(legal) == 3 and not any(tag in line for line in legal)
    ok(instance.run(["legal", "notify", "--as-of", "2035-01-02", "--force"]))
    legal = [line for line in ok(instance.run(["log", "show", "--json"])).splitlines()
             if '"legal.' in line]
    assert tag in legal[-1] and '"legal.notified"' in legal[-1]
    assert '"legal.nondisclosure_expired"' in legal[-2] and tag in legal[-2]


def test_tampered_bundle_is_refused(instance, tmp_path):
    instance.add_user(ALICE, password=PASSWORD)
    ok(instance.deliver(ALICE, mail("TAMPER")))
    rid = file_request(instance, "IE", "warrant", "content", [ALICE], "T-1")
    ok(instance.run(["legal", "decide", rid]))
    bundle = tmp_path / "b"
    ok(instance.run(["legal", "export", rid, "--out", str(bundle)]))
    assert instance.run(["legal", "export", rid, "--out", str(bundle)]).returncode == EX_DATAERR
    record = sorted(bundle.rglob("*.smr"))[0]
    data = bytearray(record.read_bytes())
    data[-1] ^= 1
    record.write_bytes(bytes(data))
    r = instance.run(["legal", "verify-bundle", str(bundle)])
    assert r.returncode == EX_DATAERR and "changed" in r.stderr
    record.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    ok(instance.run(["legal", "verify-bundle", str(bundle)]))
    manifest = bundle / "manifest.json"
    manifest.write_text(manifest.read_text().replace("High", "Low").replace("IE", "US", 1))
    r = instance.run(["legal", "verify-bundle", str(bundle)])
    assert r.returncode == EX_DATAERR and "manifest" in r.stderr


@pytest.mark.parametrize("text,where", [
    ("[policy]\ncontent = warrant, letter\n", "policy.conf:2: key 'content'"),
    ("[region mars]\n", "policy.conf:1: region 'mars' is not in the configuration"),
    ("[policy]\nwhat\n", "policy.conf:2: expected 'key = value'"),
])
def test_bad_policy_is_named_with_its_line(instance, text, where):
    instance.add_user(ALICE, password=PASSWORD)
    (instance.dir / "policy.conf").write_text(text)
    rid = file_request(instance, "IE", "warrant", "content", [ALICE], "P-1")
    r = instance.run(["legal", "decide", rid])
    assert r.returncode == EX_DATAERR and where in r.stderr
    assert show(instance, rid)["status"] == "received"


@pytest.mark.parametrize("args,message", [
    (["--jurisdiction", "USA"], "ISO 3166-1"),
    (["--instrument", "letter"], "--instrument"),
    (["--scope", "everything"], "--scope"),
    (["--nondisclosure-until", "next year"], "--nondisclosure-until"),
    (["--account", ALICE, ALICE.upper()], "are the same"),
    (["--account", "not-an-address"], "not a mail address"),
])
def test_file_validates_its_input(instance, args, message):
    base = {"--authority": ["Court"], "--jurisdiction": ["IE"], "--instrument": ["warrant"],
            "--reference": ["R-1"], "--scope": ["content"], "--account": [ALICE]}
    base[args[0]] = args[1:]
    argv = ["legal", "file"]
    for k, v in base.items():
        argv += [k] + v
    r = instance.run(argv)
    assert r.returncode in (EX_USAGE, EX_DATAERR) and message in r.stderr, r.stderr
    assert ok(instance.run(["legal", "list"])) == ""


def test_preservation_holds_the_account_until_released(instance):
    instance.add_user(ALICE, password=PASSWORD)
    ok(instance.deliver(ALICE, mail("HELD-TOKEN")))
    warrant = file_request(instance, "IE", "warrant", "content", [ALICE], "REF-W")
    ok(instance.run(["legal", "decide", warrant]))
    rid = file_request(instance, "IE", "preservation", "content", [ALICE], "REF-HOLD")
    # Filed but undecided: no hold yet, and only decided requests release.
    r = instance.run(["legal", "release", rid])
    assert r.returncode == EX_DATAERR and "received" in r.stderr
    ok(instance.run(["legal", "decide", rid]))
    assert "cannot be deleted until" in ok(instance.run(["legal", "show", rid]))

    r = instance.run(["user", "delete", ALICE])
    assert r.returncode == EX_DATAERR, r.stderr
    assert rid in r.stderr and "legal release " + rid in r.stderr
    assert ALICE in ok(instance.run(["user", "list"]))
    # The mail is still there (next to the owner's two notices).
    assert sum(b"HELD-TOKEN" in m for m in inbox(instance, instance.dir)) == 1

    # Only preservation requests hold accounts.
    r = instance.run(["legal", "release", warrant])
    assert r.returncode == EX_DATAERR and "not a preservation request" in r.stderr
    assert instance.run(["legal", "release", "LR-999999"]).returncode == EX_DATAERR

    out = ok(instance.run(["legal", "release", rid]))
    index = int(re.search(r"log entry (\d+)", out).group(1))
    entry = log_entries(instance)[index]
    assert entry["type"] == "legal.released" and entry["request"] == rid
    assert "released, log entry %d" % index in ok(instance.run(["legal", "show", rid]))
    r = instance.run(["legal", "release", rid])
    assert r.returncode == EX_DATAERR and "already" in r.stderr

    ok(instance.run(["user", "delete", ALICE]))
    assert ALICE not in ok(instance.run(["user", "list"]))


def test_policy_changes_are_logged_before_decisions(instance):
    instance.add_user(ALICE, password=PASSWORD)
    policy = instance.dir / "policy.conf"
    first = file_request(instance, "IE", "warrant", "content", [ALICE], "POL-1")
    ok(instance.run(["legal", "decide", first]))
    entries = log_entries(instance)
    changed = [i for i, e in enumerate(entries) if e["type"] == "policy.changed"]
    decided = [i for i, e in enumerate(entries) if e["type"] == "legal.decided"]
    assert len(changed) == 1 and changed[0] < decided[0]
    pol = entries[changed[0]]
    assert pol["previous"] == "none" and "content=warrant,court-order" in pol["policy"]
    assert "region eu-ie: partners=" in pol["policy"]
    assert entries[decided[0]]["policy_sha256"] == pol["policy_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", pol["policy_sha256"])

    # A comment does not change what is decided: nothing new is logged.
    policy.write_text(policy.read_text() + "# reviewed by counsel\n")
    second = file_request(instance, "IE", "warrant", "content", [ALICE], "POL-2")
    ok(instance.run(["legal", "decide", second]))
    assert [e["type"] for e in log_entries(instance)].count("policy.changed") == 1

    # A new partner does, before the decision made under it.
    policy.write_text(policy.read_text().replace("# partners = GB", "partners = GB"))
    third = file_request(instance, "GB", "warrant", "content", [ALICE], "POL-3")
    ok(instance.run(["legal", "decide", third]))
    entries = log_entries(instance)
    changed = [e for e in entries if e["type"] == "policy.changed"]
    assert len(changed) == 2 and changed[1]["previous"] == pol["policy_sha256"]
    assert "region eu-ie: partners=GB" in changed[1]["policy"]
    last = [e for e in entries if e["type"] == "legal.decided"][-1]
    assert last["request"] == third and last["decision"] == "accepted"
    assert last["policy_sha256"] == changed[1]["policy_sha256"]
    assert entries.index(changed[1]) < entries.index(last)


def test_end_of_nondisclosure_is_logged_even_without_a_notice(instance):
    instance.add_user(ALICE, password=PASSWORD)
    tag = re.search(r"log tag:\s+([0-9a-f]{32})", ok(instance.run(["user", "show", ALICE])))[1]
    held = file_request(instance, "IE", "warrant", "content", [ALICE, "ghost@example.org"],
                        "ND-1", nd="2031-01-31")
    ok(instance.run(["legal", "decide", held]))
    nobody = file_request(instance, "IE", "warrant", "content", ["ghost@example.org"], "ND-2",
                          nd="2031-01-31")
    ok(instance.run(["legal", "decide", nobody]))
    # Ended before the decision: logged at once, before the notice.
    past = file_request(instance, "IE", "warrant", "content", [ALICE], "ND-3", nd="2020-01-01")
    ok(instance.run(["legal", "decide", past]))

    def expired():
        return [(i, e) for i, e in enumerate(log_entries(instance))
                if e["type"] == "legal.nondisclosure_expired"]

    got = expired()
    assert [e["request"] for _, e in got] == [past]
    assert got[0][1]["accounts"] == tag and got[0][1]["ended"] == "2020-01-02T00:00:00Z"
    notified = [i for i, e in enumerate(log_entries(instance))
                if e["type"] == "legal.notified" and e["request"] == past]
    assert got[0][0] < notified[0]

    ok(instance.run(["legal", "notify", "--as-of", "2031-01-31", "--force"]))
    assert len(expired()) == 1
    ok(instance.run(["legal", "notify", "--as-of", "2031-02-01", "--force"]))
    got = {e["request"]: (i, e) for i, e in expired()}
    assert set(got) == {past, held, nobody}
    # The order covering only a missing account has no notice, yet its end
    # is on record; the other one names the account it covered, before the
    # notice it held back.
    assert "accounts" not in got[nobody][1]
    assert got[held][1]["accounts"] == tag
    assert got[held][1]["ended"] == "2031-02-01T00:00:00Z"
    entries = log_entries(instance)
    notice = [i for i, e in enumerate(entries)
              if e["type"] == "legal.notified" and e["request"] == held]
    assert len(notice) == 1 and got[held][0] < notice[0]
    # Once only.
    ok(instance.run(["legal", "notify", "--as-of", "2031-03-01", "--force"]))
    assert len(expired()) == 3
    assert ALICE not in ok(instance.run(["log", "show", "--json"]))


def inbox_notices(inst, rid):
    """Subjects of INBOX messages about request RID, over IMAP."""
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port)
    try:
        m.login(ALICE, PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "SUBJECT", '"Legal request %s "' % rid)
        assert typ == "OK"
        return data[0].split()
    finally:
        m.logout()


def wait_for(what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(0.2)
    return what()


def soon(seconds):
    """A non-disclosure end SECONDS from now, as the CLI takes it (whole
    seconds, so it may come up to a second sooner)."""
    t = datetime.fromtimestamp(time.time() + seconds, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sleep_past(nd):
    """Sleeps until the non-disclosure end ND (as soon() made it) has passed."""
    end = datetime.strptime(nd, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    time.sleep(max(0.0, end + 1 - time.time()))


# Filing and deciding a request (two CLI runs) must end before its
# non-disclosure does for the notice to be held back first: allow for a
# sanitizer build on a busy machine.
ND_SECONDS = 8


def test_server_releases_due_notices_and_logs_the_policy_at_start(instance):
    instance.add_user(ALICE, password=PASSWORD)
    # Only the sweep at start can release it: the timer is an hour away.
    instance.set_option("legal", "notify_interval", "1h")
    nd = soon(ND_SECONDS)
    rid = file_request(instance, "IE", "warrant", "content", [ALICE], "AT-START", nd=nd)
    ok(instance.run(["legal", "decide", rid]))
    assert show(instance, rid)["accounts"][0]["notice"] == "pending"
    policy = instance.dir / "policy.conf"
    policy.write_text(policy.read_text().replace("# partners = GB", "partners = GB"))
    sleep_past(nd)
    srv = Server(instance).start()
    try:
        assert len(wait_for(lambda: inbox_notices(instance, rid))) == 1
    finally:
        srv.stop()
    assert show(instance, rid)["accounts"][0]["notice"] == "delivered"
    types = [e["type"] for e in log_entries(instance)]
    assert types.count("legal.nondisclosure_expired") == 1 and types[-1] == "legal.notified"
    changed = [e for e in log_entries(instance) if e["type"] == "policy.changed"]
    assert len(changed) == 2 and "eu-ie: partners=GB" in changed[1]["policy"]
    # Started again with nothing new: nothing more is logged.
    size = len(log_entries(instance))
    srv = Server(instance).start()
    srv.stop()
    assert len(log_entries(instance)) == size


def test_server_releases_notices_on_its_timer(instance):
    instance.add_user(ALICE, password=PASSWORD)
    instance.set_option("legal", "notify_interval", "1s")
    srv = Server(instance).start()
    try:
        rid = file_request(instance, "IE", "warrant", "content", [ALICE], "ON-TIMER",
                           nd=soon(ND_SECONDS))
        ok(instance.run(["legal", "decide", rid]))
        assert inbox_notices(instance, rid) == []
        assert len(wait_for(lambda: inbox_notices(instance, rid), timeout=20)) == 1
        assert show(instance, rid)["accounts"][0]["notice"] == "delivered"
    finally:
        srv.stop()
