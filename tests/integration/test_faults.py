"""Store faults under a running server: a full disk (a small tmpfs mounted
over one region's folder; needs root, skipped otherwise) and a store whose
writes and syncs fail with EIO (an LD_PRELOAD shim). SMTP answers 452 (full)
or 451 (other failure) and IMAP answers NO; nothing already stored is
damaged; the other region is unaffected; the server recovers by itself once
space or writability returns."""
import imaplib
import os
import re
import smtplib
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import Server
from smtp_helpers import inbox, make_message, strip_trace

ALICE = "alice@example.org"   # eu-ie: on the small tmpfs
BOB = "bob@example.org"       # us-east: on the ordinary disk
PW = "correct horse"
SENDER = "sender@remote.example"


def sh(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


@pytest.fixture
def small_region(instance):
    d = instance.region_dir("eu-ie")
    d.mkdir(parents=True, exist_ok=True)
    r = sh("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(d))
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): %s" % r.stderr.strip())
    instance.add_user(ALICE, "eu-ie")
    instance.add_user(BOB, "us-east")
    yield d
    r = sh("umount", str(d))
    if r.returncode != 0:
        sh("umount", "-l", str(d))


@pytest.fixture
def srv(instance, small_region):
    s = Server(instance).start()
    yield s
    rc = s.stop()
    log = s.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
    assert rc == 0, log[-4000:]


def send(instance, rcpt, msg):
    """Sends MSG; returns the final reply code (250 or the refusal)."""
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=60) as s:
        try:
            s.sendmail(SENDER, [rcpt], msg)
            return 250
        except smtplib.SMTPDataError as e:
            return e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            return list(e.recipients.values())[0][0]


def fill(path):
    """Fills the file system holding PATH; returns the filler's name."""
    filler = os.path.join(path, "filler")
    chunk = b"\0" * 65536
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    # What is left below one chunk, byte by byte.
    with open(filler, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def imap(instance):
    m = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    assert m.login(ALICE, PW)[0] == "OK"
    return m


def bodies(instance, address):
    return [strip_trace(m)[1] if m.startswith(b"Return-Path:") else m
            for m in inbox(instance, address)]


def check_intact(instance, expected):
    got = bodies(instance, ALICE)
    assert got == expected, "stored mail changed: %d expected, %d found" % (
        len(expected), len(got))


def flags_by_uid(m):
    """{uid: set of flags} of the selected mailbox."""
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK", (typ, data)
    out = {}
    for line in data:
        line = line.decode() if isinstance(line, bytes) else line[0].decode()
        uid = re.search(r"UID (\d+)", line)
        flags = re.search(r"FLAGS \(([^)]*)\)", line)
        assert uid and flags, line
        out[int(uid.group(1))] = set(flags.group(1).split()) - {"\\Recent"}
    return out


def test_disk_full(instance, small_region, srv):
    kept = []
    for i in range(5):
        msg = make_message(uuid.uuid4().hex, body_lines=50)
        assert send(instance, ALICE, msg) == 250
        kept.append(msg)
    m = imap(instance)
    assert m.select("INBOX")[0] == "OK"
    assert m.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert m.store("2", "+FLAGS", "(\\Seen $Label1)")[0] == "OK"
    assert m.store("5", "+FLAGS", "(\\Deleted)")[0] == "OK"  # expunged when full
    flags = flags_by_uid(m)
    uids = sorted(flags)
    assert flags[uids[0]] == {"\\Flagged"} and flags[uids[1]] == {"\\Seen", "$Label1"}
    assert flags[uids[4]] == {"\\Deleted"}

    filler = fill(str(small_region))
    big = make_message(uuid.uuid4().hex, body_lines=2000)
    codes = [send(instance, ALICE, big) for _ in range(3)]
    assert all(c in (451, 452) for c in codes), codes
    assert 452 in codes, codes
    # The other region's store is another disk: still fine.
    assert send(instance, BOB, make_message("bob-ok")) == 250
    # IMAP: writes answer NO, reads still work, the session survives.
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "NO", (typ, data)
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert [strip_trace(b)[1] for b in got] == kept
    assert m.noop()[0] == "OK"
    # Flag changes and expunges on a full disk: NO, or done in full; either
    # way the session goes on and nothing else changes.
    typ, data = m.store("1:3", "+FLAGS", "(\\Answered)")
    assert typ in ("OK", "NO"), (typ, data)
    if typ == "OK":
        for uid in uids[:3]:
            flags[uid].add("\\Answered")
    typ, data = m.expunge()
    assert typ in ("OK", "NO"), (typ, data)
    if typ == "OK":
        del flags[uids[4]]
        kept.pop()
    assert m.noop()[0] == "OK"
    assert flags_by_uid(m) == flags
    assert srv.alive()

    # Space returns: the same server takes mail again, no restart.
    os.unlink(filler)
    after = make_message(uuid.uuid4().hex)
    assert send(instance, ALICE, after) == 250
    assert m.append("INBOX", None, None, after)[0] == "OK"
    assert m.store("1", "+FLAGS", "\\Seen")[0] == "OK"
    flags[uids[0]].add("\\Seen")
    m.logout()
    # Flags as a fresh session sees them: the changes made before and after
    # the disk filled, none lost or invented.
    m = imap(instance)
    assert m.select("INBOX")[0] == "OK"
    now = flags_by_uid(m)
    assert {u: f for u, f in now.items() if u in flags} == flags
    assert len(now) == len(flags) + 2
    m.logout()
    srv.stop()
    check_intact(instance, kept + [after, after])


@pytest.fixture
def faulty_srv(instance, tmp_path):
    # tests/integration/shims/fault.c: writes and syncs into eu-ie's store
    # fail with EIO while the trigger file exists.
    lib = tmp_path / "fault.so"
    r = sh("cc", "-shared", "-fPIC", "-O1", "-o", str(lib),
           str(Path(__file__).resolve().parent / "shims" / "fault.c"), "-ldl")
    if r.returncode != 0:
        pytest.skip("cannot build the fault shim: %s" % r.stderr)
    instance.add_user(ALICE, "eu-ie")
    instance.add_user(BOB, "us-east")
    trigger = tmp_path / "fail-writes"
    instance.env = dict(instance.env, LD_PRELOAD=str(lib),
                        SEALMAIL_FAULT_PATH="/regions/eu-ie/",
                        SEALMAIL_FAULT_TRIGGER=str(trigger))
    # An ASan build wants its runtime first; the shim only wraps libc.
    opts = instance.env.get("ASAN_OPTIONS", "")
    instance.env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "verify_asan_link_order=0"
    s = Server(instance).start()
    for k in ("LD_PRELOAD", "SEALMAIL_FAULT_PATH", "SEALMAIL_FAULT_TRIGGER"):
        instance.env.pop(k)
    s.trigger = trigger
    yield s
    rc = s.stop()
    log = s.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
    assert rc == 0, log[-4000:]


def test_store_failing_writes(instance, faulty_srv):
    srv = faulty_srv
    kept = []
    for i in range(3):
        msg = make_message(uuid.uuid4().hex)
        assert send(instance, ALICE, msg) == 250
        kept.append(msg)
    m = imap(instance)
    assert m.select("INBOX")[0] == "OK"

    srv.trigger.touch()
    try:
        for _ in range(3):
            assert send(instance, ALICE, make_message(uuid.uuid4().hex)) == 451
        assert send(instance, BOB, make_message("bob-ok")) == 250
        assert m.append("INBOX", None, None, make_message("failing"))[0] == "NO"
        assert m.store("1", "+FLAGS", "\\Flagged")[0] == "NO"
        assert m.fetch("1", "(BODY.PEEK[])")[0] == "OK"
        assert srv.alive()
    finally:
        srv.trigger.unlink()

    after = make_message(uuid.uuid4().hex)
    assert send(instance, ALICE, after) == 250
    assert m.append("INBOX", None, None, after)[0] == "OK"
    assert m.store("1", "+FLAGS", "\\Flagged")[0] == "OK"
    m.logout()
    srv.stop()
    check_intact(instance, kept + [after, after])
