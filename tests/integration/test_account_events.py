"""Account life-cycle events in the transparency log, as an auditor reads them
with `sealmail log show --json`: created, password changed, recovered, moved
between regions, deleted, and operator access to stored mail. Moving an
account is checked as its owner and as the old region's disk see it: the
same messages, UIDs and flags in the new region, and nothing of the account
left in the old one."""
import imaplib
import json
import os
import re
import secrets
import sqlite3
import subprocess

from conftest import Server, mailbox_state, scan_at_rest
from test_vault import make_message, snapshot

EX_DATAERR, EX_TEMPFAIL = 65, 75
ALICE, BOB = "alice@example.org", "bob@example.org"
PW = "correct horse"


def ok(r):
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr)
    return r.stdout


def entries(inst):
    return [json.loads(line) for line in ok(inst.run(["log", "show", "--json"])).splitlines()]


def tag_of(inst, address):
    return re.search(r"log tag:\s+([0-9a-f]{32})", ok(inst.run(["user", "show", address])))[1]


def region_of(inst, address):
    return re.search(r"region:\s+(\S+)", ok(inst.run(["user", "show", address])))[1]


def test_account_events_are_logged_by_tag(instance):
    code = instance.add_user(ALICE, "eu-ie", PW)
    tag = tag_of(instance, ALICE)
    ok(instance.run(["user", "passwd", ALICE, "--password-stdin"], input=PW + "\nsecond\n"))
    ok(instance.run(["user", "recover", ALICE, "--password-stdin"], input=code + "\nthird\n"))
    ok(instance.run(["user", "delete", ALICE]))
    log = entries(instance)
    assert [e["type"] for e in log] == ["account.created", "account.password_changed",
                                        "account.recovered", "account.deleted"]
    created, passwd, recovered, deleted = log
    assert (created["account"], created["region"], created["jurisdiction"]) == (
        tag, "eu-ie", "IE")
    assert passwd["account"] == tag and recovered["account"] == tag
    assert (deleted["account"], deleted["region"]) == (tag, "eu-ie")
    for e in log:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"])
    text = ok(instance.run(["log", "show", "--json"]))
    assert ALICE not in text and "alice" not in text and "second" not in text
    assert ok(instance.run(["log", "verify"])).strip() == "ok"


def test_export_is_logged_as_operator_access_first(instance, tmp_path):
    instance.add_user(ALICE, "eu-ie", PW)
    tag = tag_of(instance, ALICE)
    instance.export(ALICE, PW, out=tmp_path / "x")
    access = [e for e in entries(instance) if e["type"] == "operator.access"]
    assert len(access) == 1 and access[0]["account"] == tag
    assert access[0]["what"] == "export"
    assert ALICE not in json.dumps(access)
    # A wrong password opens nothing, yet the attempt is on record too:
    # the entry comes before anything is read.
    r = instance.run(["export", ALICE, "--password-stdin", "--out", str(tmp_path / "y")],
                     input="wrong\n")
    assert r.returncode != 0
    assert len([e for e in entries(instance) if e["type"] == "operator.access"]) == 2


def imap_state(inst):
    """{mailbox: (UIDVALIDITY, [(uid, sorted flags, bytes)])} over IMAP."""
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port)
    m.login(ALICE, PW)
    state = {box: mailbox_state(m, box) for box in ("INBOX", "Archive")}
    m.logout()
    return state


def test_move_carries_mail_uids_and_flags_and_leaves_nothing_behind(instance, tmp_path):
    instance.add_user(ALICE, "eu-ie", PW)
    instance.add_user(BOB, "eu-ie", "bob pw")
    keep = make_message("bob" + secrets.token_hex(4))
    ok(instance.deliver(BOB, keep))
    sent = [make_message("move%d-%s" % (i, secrets.token_hex(4)),
                         os.urandom(40000).hex().encode() if i == 1 else b"")
            for i in range(4)]
    for msg in sent:
        ok(instance.deliver(ALICE, msg))
    # Flags, a keyword, a UID gap and a message in another mailbox, over IMAP.
    srv = Server(instance).start()
    try:
        m = imaplib.IMAP4("127.0.0.1", instance.imap_port)
        m.login(ALICE, PW)
        m.select("INBOX")
        assert m.uid("STORE", "1", "+FLAGS", r"(\Seen \Flagged $Important)")[0] == "OK"
        assert m.uid("STORE", "2", "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert m.expunge()[0] == "OK"
        assert m.uid("COPY", "3", "Archive")[0] == "OK"
        m.logout()
        before = imap_state(instance)
    finally:
        srv.stop()
    tag = tag_of(instance, ALICE)
    eu = instance.region_dir("eu-ie")
    con = sqlite3.connect(str(eu / "store.sqlite"))
    alice_id = con.execute("SELECT id FROM accounts WHERE tag = ?",
                           (bytes.fromhex(tag),)).fetchone()[0]
    samples = [bytes(row[0][200:264]) for row in con.execute(
        "SELECT c.data FROM chunks c JOIN messages m ON m.record_id = c.record_id"
        " JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ?", (alice_id,))]
    samples += [bytes(row[0][-48:]) for row in con.execute(
        "SELECT m.meta FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = ?", (alice_id,))]
    samples += [bytes(row[0]) for row in con.execute(
        "SELECT pk FROM accounts WHERE id = ?", (alice_id,))]
    con.close()
    assert len(samples) >= 5

    out = ok(instance.run(["user", "move", ALICE, "--region", "us-east"]))
    assert "us-east" in out and region_of(instance, ALICE) == "us-east"
    assert tag_of(instance, ALICE) == tag

    # The old region keeps nothing of the account: no row, no record, no key.
    con = sqlite3.connect(str(eu / "store.sqlite"))
    assert con.execute("SELECT count(*) FROM accounts").fetchone()[0] == 1
    con.close()
    assert scan_at_rest(eu, samples + [bytes.fromhex(tag)]) == []
    # The owner sees the same mail, UIDs, UIDVALIDITY and flags.
    srv = Server(instance).start()
    try:
        assert imap_state(instance) == before
    finally:
        srv.stop()
    boxes = instance.export(ALICE, PW, out=tmp_path / "after")
    assert [b[2] for b in boxes["INBOX"]] == [sent[0], sent[2], sent[3]]
    assert [b[2] for b in boxes["Archive"]] == [sent[2]]
    # New mail goes to the new region only.
    still = snapshot(eu, tmp_path / "none")
    ok(instance.deliver(ALICE, make_message("after-move")))
    assert snapshot(eu, tmp_path / "none") == still
    assert [b[2] for b in instance.export(BOB, "bob pw", out=tmp_path / "bob")["INBOX"]] == [keep]

    moved = [e for e in entries(instance) if e["type"] == "account.moved"]
    assert moved == [dict(moved[0], account=tag, **{
        "from": "eu-ie", "from_jurisdiction": "IE", "to": "us-east", "to_jurisdiction": "US"})]
    assert ALICE not in ok(instance.run(["log", "show", "--json"]))
    assert ok(instance.run(["log", "verify"])).strip() == "ok"


def test_move_refusals_leave_the_account_in_place(instance):
    instance.add_user(ALICE, "eu-ie", PW)
    ok(instance.deliver(ALICE, make_message("stay")))
    r = instance.run(["user", "move", ALICE, "--region", "eu-ie"])
    assert r.returncode == EX_DATAERR and "already" in r.stderr
    r = instance.run(["user", "move", ALICE, "--region", "mars"])
    assert r.returncode != 0 and "mars" in r.stderr
    rid = ok(instance.run(["legal", "file", "--authority", "High Court", "--jurisdiction",
                           "IE", "--instrument", "preservation", "--reference", "P-1",
                           "--scope", "content", "--account", ALICE])).strip()
    ok(instance.run(["legal", "decide", rid]))
    r = instance.run(["user", "move", ALICE, "--region", "us-east"])
    assert r.returncode == EX_DATAERR and rid in r.stderr and "moved" in r.stderr
    assert region_of(instance, ALICE) == "eu-ie"
    assert not [e for e in entries(instance) if e["type"] == "account.moved"]
    ok(instance.run(["legal", "release", rid]))
    ok(instance.run(["user", "move", ALICE, "--region", "us-east"]))
    assert region_of(instance, ALICE) == "us-east"


def test_nothing_happens_when_the_log_cannot_be_written(instance, tmp_path):
    """Every logged action waits for its entry: with the log's database locked
    by someone else, each command fails and leaves no trace of itself."""
    instance.add_user(ALICE, "eu-ie", PW)
    token = "FAULT-" + secrets.token_hex(4)
    ok(instance.deliver(ALICE, make_message(token)))
    tag = tag_of(instance, ALICE)

    def legal_file(reference):
        return ok(instance.run(["legal", "file", "--authority", "High Court",
                                "--jurisdiction", "IE", "--instrument", "warrant",
                                "--reference", reference, "--scope", "content",
                                "--account", ALICE])).strip()

    accepted = legal_file("F-1")
    ok(instance.run(["legal", "decide", accepted]))
    waiting = legal_file("F-2")
    size = len(entries(instance))

    con = sqlite3.connect(str(instance.dir / "tlog" / "log.db"), isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        bundle = tmp_path / "bundle"
        commands = {
            "export": ["legal", "export", accepted, "--out", str(bundle)],
            "decide": ["legal", "decide", waiting],
            "delete": ["user", "delete", ALICE],
            "passwd": ["user", "passwd", ALICE, "--password-stdin"],
            "move": ["user", "move", ALICE, "--region", "us-east"],
        }
        procs = {name: subprocess.Popen([instance.bin, "-c", str(instance.conf)] + argv,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=instance.env)
                 for name, argv in commands.items()}
        results = {name: p.communicate(input=(PW + "\nnew pw\n").encode(), timeout=120)
                   for name, p in procs.items()}
        for name, p in procs.items():
            assert p.returncode != 0, (name, results[name])
            assert b"locked" in results[name][1], (name, results[name][1])
    finally:
        con.execute("ROLLBACK")
        con.close()

    assert len(entries(instance)) == size
    assert ok(instance.run(["log", "verify"])).strip() == "ok"
    assert not bundle.exists() and not list(tmp_path.glob("bundle*"))
    req = json.loads(ok(instance.run(["legal", "show", accepted, "--json"])))
    assert req["exports"] == []
    assert json.loads(ok(instance.run(["legal", "show", waiting, "--json"])))["status"] == \
        "received"
    # The account is where it was, with its mail and its old password, and
    # the other region holds nothing of it.
    assert region_of(instance, ALICE) == "eu-ie"
    assert scan_at_rest(instance.region_dir("us-east"), [bytes.fromhex(tag)]) == []
    boxes = instance.export(ALICE, PW, out=tmp_path / "after")
    assert any(token.encode() in m[2] for m in boxes["INBOX"])
