"""The vault through its CLI: accounts in two regions, sealed delivery,
residency, export, password change and recovery, deletion, and an at-rest
scan of every byte under the data folder."""
import hashlib
import os
import re
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import dir_bytes, scan_at_rest
from smtp_helpers import wait_until

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
    ("[server]\nhostname = x\n[store]\nrecord_cipher = aes\n", 4, "record_cipher"),
])
def test_config_errors_name_file_line_key(instance, text, line, key):
    instance.conf.write_text(text)
    r = instance.run(["user", "list"])
    assert r.returncode == EX_CONFIG
    assert "%s:%d: key '%s'" % (instance.conf, line, key) in r.stderr, r.stderr


def record_versions(instance, region, address_count=1):
    """The format version byte of each stored record, in delivery order:
    from the first chunk row of small records, from records.dat for large
    ones."""
    root = instance.region_dir(region)
    con = sqlite3.connect(str(root / "store.sqlite"))
    rows = con.execute(
        "SELECT (SELECT substr(data, 4, 1) FROM chunks c WHERE c.record_id = m.record_id"
        "        ORDER BY seq LIMIT 1), e.off FROM messages m"
        " LEFT JOIN extents e ON e.record_id = m.record_id ORDER BY m.id").fetchall()
    con.close()
    data = (root / "records.dat").read_bytes() if (root / "records.dat").exists() else b""
    return [chunk[0] if chunk is not None else data[off + 3] for chunk, off in rows]


def test_records_of_both_ciphers_read_together(instance, tmp_path):
    """A store written with XChaCha20-Poly1305 (format version 1) and then
    with AES-256-GCM (version 2) serves both kinds side by side: export and
    an IMAP FETCH return every message exactly, small records (chunk rows)
    and large ones (records.dat) alike."""
    import imaplib

    from conftest import Server

    instance.add_user("alice@example.org", "eu-ie")
    msgs = []
    for cipher in ("xchacha20poly1305", "aes256gcm"):
        instance.set_option("store", "record_cipher", cipher)
        for size in (100, 70000, 300000):
            msgs.append(make_message(cipher + secrets.token_hex(4),
                                     os.urandom(size).hex().encode() + b"\r\n"))
            assert instance.deliver("alice@example.org", msgs[-1]).returncode == 0
    assert record_versions(instance, "eu-ie") == [1, 1, 1, 2, 2, 2]
    assert [m[2] for m in instance.export("alice@example.org")["INBOX"]] == msgs
    server = Server(instance).start()
    try:
        # Logged once the stores are open, which is after the ports listen.
        assert wait_until(lambda: "new records sealed with aes256gcm" in server.log_text(),
                          timeout=30), server.log_text()[-2000:]
        c = imaplib.IMAP4("127.0.0.1", instance.imap_port)
        c.login("alice@example.org", "correct horse")
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        assert [item[1] for item in data if isinstance(item, tuple)] == msgs
        c.logout()
    finally:
        assert server.stop() == 0


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


def test_delete_removes_large_records(instance):
    """Records of 32 KiB and more live in records.dat, those past 1 MiB in
    files of their own in records/: an account deletion zeroes them there
    too (and removes the files), and the other account's large records
    survive."""
    instance.add_user("alice@example.org", "eu-ie")
    instance.add_user("bob@example.org", "eu-ie")
    keep = make_message("bob" + secrets.token_hex(4), os.urandom(70000).hex().encode())
    assert instance.deliver("bob@example.org", keep).returncode == 0
    for i in range(3):
        msg = make_message("big%d" % i, os.urandom(50000).hex().encode())
        assert instance.deliver("alice@example.org", msg).returncode == 0
    huge = make_message("huge", os.urandom(700000).hex().encode())
    assert instance.deliver("alice@example.org", huge).returncode == 0
    keep_huge = make_message("bob-huge", os.urandom(600000).hex().encode())
    assert instance.deliver("bob@example.org", keep_huge).returncode == 0
    region = instance.region_dir("eu-ie")
    con = sqlite3.connect(str(region / "store.sqlite"))
    extents = con.execute(
        "SELECT e.off, e.len FROM extents e JOIN messages m ON m.record_id = e.record_id"
        " JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = (SELECT min(id) FROM accounts)").fetchall()
    files = con.execute(
        "SELECT f.name, f.len, b.account_id = (SELECT min(id) FROM accounts) FROM files f"
        " JOIN messages m ON m.record_id = f.record_id"
        " JOIN mailboxes b ON b.id = m.mailbox_id").fetchall()
    assert con.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    con.close()
    assert len(extents) == 3
    assert sorted(alice for _, _, alice in files) == [0, 1]
    data = (region / "records.dat").read_bytes()
    samples = [data[off + 200:off + 264] for off, _ in extents]
    samples += [data[off + length - 64:off + length] for off, length in extents]
    names = {alice: "%016x" % (name & (1 << 64) - 1) for name, _, alice in files}
    for name, length, alice in files:
        blob = (region / "records" / names[alice]).read_bytes()
        assert len(blob) == length > 1 << 20
        if alice:
            samples += [blob[200:264], blob[length // 2:length // 2 + 64], blob[-64:]]
    r = instance.run(["user", "delete", "alice@example.org"])
    assert r.returncode == 0, r.stderr
    assert scan_at_rest(instance.dir, samples) == []
    assert sorted(p.name for p in (region / "records").iterdir()) == [names[0]]
    assert [m[2] for m in instance.export("bob@example.org")["INBOX"]] == [keep, keep_huge]


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


# ---- temporary failures, config lookup, the password prompt ------------------------


def test_deliver_temporary_failures_exit_75(instance, tmp_path):
    """A store that cannot be written, a corrupt store and a missing config
    all make `deliver` exit 75 (EX_TEMPFAIL), so that the MTA keeps the
    message and retries; none of them stores anything or answers 0."""
    instance.add_user("alice@example.org", "eu-ie")
    first = make_message("first" + secrets.token_hex(4))
    assert instance.deliver("alice@example.org", first).returncode == 0
    eu = instance.region_dir("eu-ie")

    # 1. The config is missing: -c names no file, and (no -c, no
    #    $SEALMAIL_CONF) the working folder holds no sealmail.conf.
    r = instance.run(["-c", str(tmp_path / "absent.conf"), "deliver", "alice@example.org"],
                     input=make_message("noconf"), config=False)
    assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)
    r = subprocess.run([instance.bin, "deliver", "alice@example.org"], cwd=str(tmp_path),
                       input=make_message("noconf"), capture_output=True, env=instance.env)
    assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)

    # 2. The region's folder cannot be written (read-only; as root, a
    #    read-only bind mount, since root ignores file modes).
    ro = None
    if os.geteuid() == 0:
        if subprocess.run(["mount", "--bind", str(eu), str(eu)]).returncode == 0:
            ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(eu)])
            if ro.returncode != 0:
                subprocess.run(["umount", str(eu)])
                ro = None
    else:
        os.chmod(eu, 0o500)
        for f in eu.iterdir():
            os.chmod(f, 0o400)
        ro = True
    if ro is not None:
        try:
            r = instance.deliver("alice@example.org", make_message("readonly"))
            assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)
        finally:
            if os.geteuid() == 0:
                subprocess.run(["umount", str(eu)], check=True)
            else:
                os.chmod(eu, 0o700)
                for f in eu.iterdir():
                    os.chmod(f, 0o600)
        assert [m[2] for m in instance.export("alice@example.org")["INBOX"]] == [first]

    # 3. The store's database is corrupt (garbage over the SQLite file).
    db = eu / "store.sqlite"
    saved = {p: p.read_bytes() for p in eu.iterdir() if p.is_file()}
    for p in eu.iterdir():
        if p.name.startswith("store.sqlite-"):
            p.unlink()
    db.write_bytes(b"this is not a database " * 4096)
    r = instance.deliver("alice@example.org", make_message("corrupt"))
    assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)
    for p in eu.iterdir():
        if p.is_file() and p not in saved:
            p.unlink()
    for p, data in saved.items():
        p.write_bytes(data)

    # Once the store is whole again, delivery works and nothing else got in.
    second = make_message("second" + secrets.token_hex(4))
    assert instance.deliver("alice@example.org", second).returncode == 0
    assert [m[2] for m in instance.export("alice@example.org")["INBOX"]] == [first, second]


def test_config_from_working_folder(instance, tmp_path):
    """No -c and no $SEALMAIL_CONF: ./sealmail.conf is read; elsewhere the
    command fails for want of a config."""
    instance.add_user("alice@example.org", "eu-ie")
    env = dict(instance.env)
    env.pop("SEALMAIL_CONF", None)
    r = subprocess.run([instance.bin, "user", "list"], cwd=str(instance.dir), env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["alice@example.org\teu-ie\tIE"]
    r = subprocess.run([instance.bin, "user", "list"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True)
    assert r.returncode == EX_CONFIG, (r.returncode, r.stderr)
    assert "sealmail.conf" in r.stderr


def test_config_option_beats_environment(sealmail_bin, instance, tmp_path):
    """-c FILE wins over $SEALMAIL_CONF, which wins over ./sealmail.conf."""
    from conftest import Instance
    other = Instance(sealmail_bin, tmp_path / "other")
    instance.add_user("alice@example.org", "eu-ie")
    other.add_user("bob@example.org", "us-east")
    env = dict(instance.env, SEALMAIL_CONF=str(other.conf))

    def users(args, cwd):
        r = subprocess.run([instance.bin] + args + ["user", "list"], cwd=str(cwd), env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [line.split("\t")[0] for line in r.stdout.splitlines()]

    assert users(["-c", str(instance.conf)], tmp_path) == ["alice@example.org"]
    assert users([], tmp_path) == ["bob@example.org"]
    # $SEALMAIL_CONF also beats a sealmail.conf in the working folder.
    assert users([], instance.dir) == ["bob@example.org"]
    # -c naming a broken file is not silently replaced by the environment's.
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nbogus = 1\n")
    r = subprocess.run([instance.bin, "-c", str(bad), "user", "list"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == EX_CONFIG and "%s:2: key 'bogus'" % bad in r.stderr, r.stderr


def run_on_tty(argv, env, answers, timeout=60):
    """Runs ARGV with a new pseudo-terminal as its controlling terminal.
    ANSWERS is a list of (prompt, line): each line is typed once PROMPT has
    appeared and the terminal's echo is off (a secret is never typed while
    the terminal would show it). Returns (exit status, transcript bytes)."""
    import pty
    import select
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout

    def read_some(wait):
        nonlocal out
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        try:
            chunk = os.read(fd, 4096)
        except OSError:   # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        out += chunk
        return True

    try:
        for prompt, line in answers:
            while prompt.encode() not in out:
                assert time.monotonic() < deadline, "no prompt %r in %r" % (prompt, out)
                assert read_some(0.1), "exited before %r: %r" % (prompt, out)
            out_len = len(out)
            while termios.tcgetattr(fd)[3] & termios.ECHO:
                assert time.monotonic() < deadline, "echo never turned off at %r" % prompt
                read_some(0.01)
            os.write(fd, line.encode() + b"\r")
            # Let the reply to this line (if any) come back before the next.
            while prompt.encode() in out[out_len:] or len(out) == out_len:
                if not read_some(0.2):
                    break
                if time.monotonic() > deadline:
                    break
        while time.monotonic() < deadline and read_some(0.2):
            pass
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_user_add_prompts_on_the_terminal_without_echo(instance):
    password = "tty-" + secrets.token_hex(8)
    argv = [instance.bin, "-c", str(instance.conf), "user", "add", "carol@example.org",
            "--region", "eu-ie"]
    code, out = run_on_tty(argv, instance.env, [("New password: ", password),
                                                ("Repeat the new password: ", password)])
    assert code == 0, out
    assert password.encode() not in out, "the password was echoed: %r" % out
    m = re.search(rb"([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})", out)
    assert m, out
    recovery = m.group(1).decode()
    # The account works with the typed password, and the printed code recovers it.
    msg = make_message("tty" + secrets.token_hex(4))
    assert instance.deliver("carol@example.org", msg).returncode == 0
    assert [m[2] for m in instance.export("carol@example.org", password)["INBOX"]] == [msg]
    r = instance.run(["user", "recover", "carol@example.org", "--password-stdin"],
                     input=recovery + "\nnew pass\n")
    assert r.returncode == 0, r.stderr
    assert [m[2] for m in instance.export("carol@example.org", "new pass")["INBOX"]] == [msg]
    # Two different answers: refused, no account made.
    argv[5] = "dave@example.org"
    code, out = run_on_tty(argv, instance.env, [("New password: ", "one"),
                                                ("Repeat the new password: ", "two")])
    assert code != 0 and b"do not match" in out, out
    assert instance.run(["user", "show", "dave@example.org"]).returncode == EX_NOUSER
    # No terminal and no --password-stdin: refused, not read from stdin.
    r = subprocess.run(argv[:5] + ["erin@example.org", "--region", "eu-ie"], input=b"pw\npw\n",
                       capture_output=True, env=instance.env, start_new_session=True)
    assert r.returncode != 0 and b"--password-stdin" in r.stderr, r.stderr


# ---- export as other Maildir readers see it ------------------------------------------


def delivered_set(instance, address, n, big_every=3):
    sent = []
    for i in range(n):
        extra = (b"%078d\r\n" % i) * (600 if i % big_every == 0 else 1)
        msg = make_message("mdir%02d%s" % (i, secrets.token_hex(4)), extra)
        assert instance.deliver(address, msg).returncode == 0
        sent.append(msg)
    return sent


def test_export_read_by_python_mailbox_maildir(instance, tmp_path):
    instance.add_user("alice@example.org", "eu-ie")
    sent = delivered_set(instance, "alice@example.org", 7)
    out = tmp_path / "export"
    r = instance.run(["export", "alice@example.org", "--password-stdin", "--out", str(out)],
                     input="correct horse\n")
    assert r.returncode == 0, r.stderr
    import mailbox
    md = mailbox.Maildir(str(out), factory=None, create=False)
    got = sorted(md.get_bytes(key) for key in md.keys())
    assert got == sorted(sent)
    for key in md.keys():
        m = md.get_message(key)
        assert m["Subject"].startswith("report mdir")
        assert m.get_subdir() in ("new", "cur")
    folders = set(md.list_folders())
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= folders, folders
    for name in folders:
        assert len(md.get_folder(name)) == 0


def test_export_read_by_mbsync(instance, tmp_path):
    """mbsync copies the exported Maildir++ tree into another Maildir: it
    accepts the layout and every message arrives intact."""
    import shutil
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync (isync) not installed")
    instance.add_user("alice@example.org", "eu-ie")
    sent = delivered_set(instance, "alice@example.org", 5)
    out, copy = tmp_path / "export", tmp_path / "copy"
    r = instance.run(["export", "alice@example.org", "--password-stdin", "--out", str(out)],
                     input="correct horse\n")
    assert r.returncode == 0, r.stderr
    copy.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "MaildirStore exported\nInbox %s\nSubFolders Maildir++\n\n"
        "MaildirStore copy\nInbox %s\nSubFolders Maildir++\n\n"
        "Channel c\nFar :exported:\nNear :copy:\nPatterns *\nCreate Near\nSync Pull\n"
        "SyncState *\n" % (out, copy))
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    import mailbox
    md = mailbox.Maildir(str(copy), factory=None, create=False)
    # mbsync adds its own X-TUID field while copying; the rest is as sent.
    got = [re.sub(rb"X-TUID: [^\n]*\n", b"", md.get_bytes(k), count=1) for k in md.keys()]
    assert sorted(got) == sorted(sent)
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= set(md.list_folders())


def test_nothing_readable_at_rest_with_large_records(instance):
    """Messages of 32 KiB and more (sealed into records.dat) and the recovery
    code printed at `user add`: no token, password or recovery code appears
    in any file (or file name) under the data folder."""
    password = "pw-" + secrets.token_hex(8)
    code = instance.add_user("alice@example.org", "eu-ie", password=password)
    bob_pw = "pw-" + secrets.token_hex(8)
    bob_code = instance.add_user("bob@example.org", "us-east", password=bob_pw)
    tokens = [password, bob_pw]
    for c in (code, bob_code):
        tokens += [c, c.replace("-", ""), c.split("-")[0] + c.split("-")[1]]
    filler = b"".join(b"line %05d of filler text\r\n" % i for i in range(3000))
    for i in range(6):
        body, subj, frm = ("t%s" % secrets.token_hex(8) for _ in range(3))
        tokens += [body, subj, frm]
        msg = (b"From: " + frm.encode() + b"@example.net\r\nTo: alice@example.org\r\n"
               b"Subject: " + subj.encode() + b"\r\n\r\n" + body.encode() + b"\r\n" +
               filler[: 40000 * (i + 1)] + body.encode() + b"\r\n")
        rcpts = ["alice@example.org"] + (["bob@example.org"] if i % 2 else [])
        assert instance.deliver(rcpts, msg).returncode == 0
    # And one past 1 MiB, which gets a file of its own in records/.
    body = "t%s" % secrets.token_hex(8)
    tokens.append(body)
    msg = (b"From: x@example.net\r\nTo: alice@example.org\r\nSubject: big\r\n\r\n" +
           body.encode() + b"\r\n" + filler * 16 + body.encode() + b"\r\n")
    assert instance.deliver(["alice@example.org"], msg).returncode == 0
    assert len(list((instance.region_dir("eu-ie") / "records").iterdir())) == 1
    for region in ("eu-ie", "us-east"):
        dat = instance.region_dir(region) / "records.dat"
        assert dat.is_file() and dat.stat().st_size >= 6 * 32768 // 2, region
    # The password changes too: neither the old nor the new one lands on disk.
    new_pw = "pw-" + secrets.token_hex(8)
    tokens.append(new_pw)
    r = instance.run(["user", "passwd", "alice@example.org", "--password-stdin"],
                     input=password + "\n" + new_pw + "\n")
    assert r.returncode == 0, r.stderr
    assert len(instance.export("alice@example.org", new_pw)["INBOX"]) == 7
    found = scan_at_rest(instance.dir, tokens)
    assert found == [], found
