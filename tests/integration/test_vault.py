"""The vault through its CLI: accounts in two regions, sealed delivery,
residency, export, password change and recovery, deletion, and an at-rest
scan of every byte under the data folder."""
import hashlib
import os
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import dir_bytes, scan_at_rest

EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 65, 67, 75, 77, 78


def make_message(token, body_extra=b"", sender="Sender <s@example.net>"):
    return (
        b"From: " + sender.encode() + b"\r\n"
        b"To: Alice <alice@example.org>\r\n"
        b"Subject: report " + token.encode() + b"\r\n"
        b"Message-ID: <" + token.encode() + b"@example.net>\r\n"
        b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        b"\r\n"
        b"Body line with " + token.encode() + b"\r\n" + body_extra
    )


def snapshot(path, exclude):
    """sha256 of every file under PATH except those under EXCLUDE."""
    result = {}
    for root, _, files in os.walk(path):
        if Path(root).resolve().is_relative_to(Path(exclude).resolve()):
            continue
        for f in files:
            p = os.path.join(root, f)
            result[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return result


def test_init_layout_and_refuses_overwrite(instance):
    d = instance.dir
    for p in ("sealmail.conf", "tls/cert.pem", "tls/key.pem", "keys/log.key"):
        assert (d / p).is_file(), p
    assert (d / "regions/eu-ie").is_dir() and (d / "regions/us-east").is_dir()
    assert oct((d / "tls/key.pem").stat().st_mode & 0o777) == "0o600"
    conf = instance.conf.read_text()
    assert "[region eu-ie]" in conf and "jurisdiction = IE" in conf
    assert "[region us-east]" in conf and "jurisdiction = US" in conf
    r = instance.run(["init", str(d)], config=False)
    assert r.returncode != 0 and "refusing" in r.stderr
    # The certificate is a real one openssl can read.
    out = subprocess.run(["openssl", "x509", "-in", str(d / "tls/cert.pem"), "-noout",
                          "-subject"], capture_output=True, text=True)
    assert out.returncode == 0 and "mail.example.org" in out.stdout


@pytest.mark.parametrize("text,line,key", [
    ("[server]\nhostname = x\n[smtp]\nmax_message_size = lots\n", 4, "max_message_size"),
    ("[server]\nbogus = 1\n", 2, "bogus"),
    ("[region eu]\njurisdiction = IRL\nstore = fs:x\n", 2, "jurisdiction"),
    ("[imap]\nlisten = nowhere\n", 2, "listen"),
])
def test_config_errors_name_file_line_key(instance, text, line, key):
    instance.conf.write_text(text)
    r = instance.run(["user", "list"])
    assert r.returncode == EX_CONFIG
    assert "%s:%d: key '%s'" % (instance.conf, line, key) in r.stderr, r.stderr


def test_config_from_environment(instance):
    env = dict(instance.env, SEALMAIL_CONF=str(instance.conf))
    r = subprocess.run([instance.bin, "user", "list"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_accounts_in_both_regions(instance):
    instance.add_user("alice@example.org", "eu-ie")
    instance.add_user("Bob@Example.ORG", "us-east")
    r = instance.run(["user", "list"])
    assert r.returncode == 0
    lines = sorted(r.stdout.splitlines())
    assert lines == ["alice@example.org\teu-ie\tIE", "bob@example.org\tus-east\tUS"]
    r = instance.run(["user", "show", "alice@example.org"])
    assert r.returncode == 0 and "region:       eu-ie" in r.stdout and "log tag:" in r.stdout
    # Duplicates, unknown regions, foreign domains and bad addresses are refused.
    for args in (["alice@example.org", "--region", "us-east"],
                 ["carol@example.org", "--region", "mars"],
                 ["carol@elsewhere.net", "--region", "eu-ie"],
                 ["not-an-address", "--region", "eu-ie"]):
        r = instance.run(["user", "add"] + args + ["--password-stdin"], input="pw\n")
        assert r.returncode != 0, args
    r = instance.run(["user", "show", "nobody@example.org"])
    assert r.returncode == EX_NOUSER
    # The global directory holds only what routing needs.
    con = sqlite3.connect(str(instance.dir / "directory.sqlite"))
    cols = [row[1] for row in con.execute("PRAGMA table_info(accounts)")]
    rows = con.execute("SELECT region FROM accounts ORDER BY region").fetchall()
    con.close()
    assert cols == ["addr_hash", "region", "created"]
    assert rows == [("eu-ie",), ("us-east",)]


def test_40_messages_stay_in_home_region_and_export_exactly(instance):
    instance.add_user("alice@example.org", "eu-ie")
    eu = instance.region_dir("eu-ie")
    before_eu = dir_bytes(eu)
    before_rest = snapshot(instance.dir, eu)
    sent = []
    for i in range(40):
        extra = os.urandom(i * 97) .hex().encode() + b"\r\n" if i % 3 else b""
        msg = make_message("tok%02d%s" % (i, secrets.token_hex(4)), extra)
        r = instance.deliver("alice@example.org", msg)
        assert r.returncode == 0, r.stderr
        sent.append(msg)
    assert dir_bytes(eu) > before_eu
    assert snapshot(instance.dir, eu) == before_rest, "bytes changed outside eu-ie"
    boxes = instance.export("alice@example.org")
    assert [m[2] for m in boxes["INBOX"]] == sent
    assert [m[0] for m in boxes["INBOX"]] == list(range(1, 41))
    for special in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert boxes[special] == []


def test_deliver_to_recipients_in_two_regions(instance):
    instance.add_user("alice@example.org", "eu-ie")
    instance.add_user("bob@example.org", "us-east")
    msg = make_message("both" + secrets.token_hex(4))
    r = instance.deliver(["alice@example.org", "bob@example.org", "ALICE@example.org"], msg)
    assert r.returncode == 0, r.stderr
    assert [m[2] for m in instance.export("alice@example.org")["INBOX"]] == [msg]
    assert [m[2] for m in instance.export("bob@example.org")["INBOX"]] == [msg]


def test_large_and_odd_messages_round_trip(instance):
    instance.add_user("alice@example.org", "eu-ie")
    msgs = [
        b"",
        b"x",
        b"no header at all, just bytes\n\x00\x01\xff\xfe",
        make_message("lf", b"bare\nlf\nlines\n").replace(b"\r\n", b"\n"),
        make_message("big", os.urandom(64 * 1024 * 3 + 1)),
        make_message("ten", os.urandom(10 * 1024 * 1024)),
    ]
    for m in msgs:
        r = instance.deliver("alice@example.org", m)
        assert r.returncode == 0, r.stderr
    got = [m[2] for m in instance.export("alice@example.org")["INBOX"]]
    assert got == msgs


def test_deliver_exit_codes(instance):
    instance.add_user("alice@example.org", "eu-ie")
    eu = instance.region_dir("eu-ie")
    r = instance.deliver(["alice@example.org", "nobody@example.org"], make_message("x"))
    assert r.returncode == EX_NOUSER
    assert instance.export("alice@example.org")["INBOX"] == []
    instance.set_option("smtp", "max_message_size", "1k")
    r = instance.deliver("alice@example.org", make_message("big", b"y" * 4096))
    assert r.returncode == EX_DATAERR, r.stderr
    assert instance.export("alice@example.org")["INBOX"] == []
    assert eu.is_dir()
    r = instance.run(["deliver"])
    assert r.returncode == 64


def test_export_wrong_password_fails(instance, tmp_path):
    instance.add_user("alice@example.org", "eu-ie")
    instance.deliver("alice@example.org", make_message("secret"))
    out = tmp_path / "wrong"
    r = instance.run(["export", "alice@example.org", "--password-stdin", "--out", str(out)],
                     input="not the password\n")
    assert r.returncode == EX_NOPERM
    assert "wrong password" in r.stderr
    assert not out.exists() or not any(out.rglob("*.sealmail*"))


def test_password_change_and_recovery_keep_mail(instance):
    code = instance.add_user("alice@example.org", "eu-ie", password="first")
    msg = make_message("keep" + secrets.token_hex(4))
    instance.deliver("alice@example.org", msg)
    r = instance.run(["user", "passwd", "alice@example.org", "--password-stdin"],
                     input="wrong\nsecond\n")
    assert r.returncode == EX_NOPERM
    r = instance.run(["user", "passwd", "alice@example.org", "--password-stdin"],
                     input="first\nsecond\n")
    assert r.returncode == 0, r.stderr
    assert [m[2] for m in instance.export("alice@example.org", "second")["INBOX"]] == [msg]
    r = instance.run(["export", "alice@example.org", "--password-stdin", "--out",
                      str(instance.dir.parent / "x")], input="first\n")
    assert r.returncode == EX_NOPERM
    # Recovery: a wrong code fails; the right one (typed sloppily) works once.
    r = instance.run(["user", "recover", "alice@example.org", "--password-stdin"],
                     input="AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA\nthird\n")
    assert r.returncode == EX_NOPERM
    sloppy = code.lower().replace("-", " ")
    r = instance.run(["user", "recover", "alice@example.org", "--password-stdin"],
                     input=sloppy + "\nthird\n")
    assert r.returncode == 0, r.stderr
    assert [m[2] for m in instance.export("alice@example.org", "third")["INBOX"]] == [msg]
    r = instance.run(["user", "recover", "alice@example.org", "--password-stdin"],
                     input=code + "\nfourth\n")
    assert r.returncode == EX_NOPERM, "a recovery code must be single-use"


def test_delete_removes_every_stored_byte(instance):
    instance.add_user("alice@example.org", "eu-ie")
    instance.add_user("bob@example.org", "eu-ie")
    keep = make_message("bob" + secrets.token_hex(4))
    instance.deliver("bob@example.org", keep)
    for i in range(5):
        instance.deliver("alice@example.org", make_message("gone%d" % i, os.urandom(5000)))
    db = instance.region_dir("eu-ie") / "store.sqlite"
    con = sqlite3.connect(str(db))
    samples = [bytes(row[0][200:264]) for row in con.execute(
        "SELECT c.data FROM chunks c JOIN messages m ON m.record_id = c.record_id"
        " JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id"
        " WHERE a.id = (SELECT min(id) FROM accounts)")]
    metas = [bytes(row[0][-48:]) for row in con.execute(
        "SELECT m.meta FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = (SELECT min(id) FROM accounts)")]
    con.close()
    assert len(samples) == 5 and len(metas) == 5
    r = instance.run(["user", "delete", "alice@example.org"])
    assert r.returncode == 0, r.stderr
    assert instance.run(["user", "show", "alice@example.org"]).returncode == EX_NOUSER
    assert instance.deliver("alice@example.org", b"x").returncode == EX_NOUSER
    leftovers = scan_at_rest(instance.dir, samples + metas)
    assert leftovers == [], leftovers
    assert [m[2] for m in instance.export("bob@example.org")["INBOX"]] == [keep]


def test_delete_removes_large_records_from_records_dat(instance):
    """Records of 32 KiB and more live in records.dat: an account deletion
    zeroes them there too, and the other account's large record survives."""
    instance.add_user("alice@example.org", "eu-ie")
    instance.add_user("bob@example.org", "eu-ie")
    keep = make_message("bob" + secrets.token_hex(4), os.urandom(70000).hex().encode())
    assert instance.deliver("bob@example.org", keep).returncode == 0
    for i in range(3):
        msg = make_message("big%d" % i, os.urandom(50000).hex().encode())
        assert instance.deliver("alice@example.org", msg).returncode == 0
    region = instance.region_dir("eu-ie")
    con = sqlite3.connect(str(region / "store.sqlite"))
    extents = con.execute(
        "SELECT e.off, e.len FROM extents e JOIN messages m ON m.record_id = e.record_id"
        " JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = (SELECT min(id) FROM accounts)").fetchall()
    assert con.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    con.close()
    assert len(extents) == 3
    data = (region / "records.dat").read_bytes()
    samples = [data[off + 200:off + 264] for off, _ in extents]
    samples += [data[off + length - 64:off + length] for off, length in extents]
    r = instance.run(["user", "delete", "alice@example.org"])
    assert r.returncode == 0, r.stderr
    assert scan_at_rest(instance.dir, samples) == []
    assert [m[2] for m in instance.export("bob@example.org")["INBOX"]] == [keep]


def test_nothing_readable_at_rest(instance):
    password = "pw-" + secrets.token_hex(8)
    instance.add_user("alice@example.org", "eu-ie", password=password)
    tokens = [password]
    for i in range(10):
        body, subj, frm = (secrets.token_hex(8) for _ in range(3))
        tokens += [body, subj, frm]
        msg = (b"From: " + frm.encode() + b"@example.net\r\nTo: alice@example.org\r\n"
               b"Subject: " + subj.encode() + b"\r\n\r\n" + body.encode() + b"\r\n")
        assert instance.deliver("alice@example.org", msg).returncode == 0
    tokens.append("alice@example.org")
    found = scan_at_rest(instance.dir, tokens)
    # The address appears only in the operator's own config (domains) and
    # nowhere in stores, the directory or the log.
    assert found == [], found
