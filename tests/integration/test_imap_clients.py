"""Real IMAP clients against `sealmail serve`: mbsync (isync) pulls and
pushes a mailbox, curl lists and fetches; and a 10,000-message mailbox
filled over IMAP (APPEND with LITERAL+) selects and fetches."""
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from test_imap import PW, SIMPLE, USER, login


@pytest.fixture
def srv(instance, server):
    instance.add_user(USER)
    for i in range(3):
        msg = SIMPLE.replace(b"hello there", b"message %d" % i)
        assert instance.deliver(USER, msg).returncode == 0
    return server


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")
def test_mbsync_pull_and_push(srv, instance, tmp_path):
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount sm
Host 127.0.0.1
Port {instance.imaps_port}
User {USER}
Pass "{PW}"
TLSType IMAPS
CertificateFile {instance.dir / "tls" / "cert.pem"}

IMAPStore remote
Account sm

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
""")
    def run():
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    try:
        run()
    except AssertionError as e:
        if "TLSType" in str(e):  # isync < 1.5 spells it SSLType
            rc.write_text(rc.read_text().replace("TLSType", "SSLType"))
            run()
        else:
            raise
    got = sorted((local / "INBOX" / "new").iterdir()) + sorted((local / "INBOX" / "cur").iterdir())
    assert len(got) == 3
    # mbsync stores LF line ends and adds its X-TUID tracking header.
    pulled = {re.sub(rb"X-TUID: \S+\n", b"", p.read_bytes()) for p in got}
    assert pulled == {SIMPLE.replace(b"hello there", b"message %d" % i).replace(b"\r\n", b"\n")
                      for i in range(3)}
    # Push: a new local message goes up, a local flag change goes up.
    new = local / "Archive" / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / "1700000000.1_1.host").write_bytes(b"Subject: pushed\r\n\r\nfrom maildir\r\n")
    run()
    m = login(instance)
    m.select("Archive")
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert b"Subject: pushed\r\n" in data[0][1] and data[0][1].endswith(b"\r\nfrom maildir\r\n")
    m.logout()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_list_and_fetch(srv, instance):
    base = "imap://127.0.0.1:%d/" % instance.imap_port
    user = "%s:%s" % (USER, PW)
    r = subprocess.run(["curl", "-sS", "--user", user, base], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b'"INBOX"' in r.stdout and b"\\Sent" in r.stdout
    r = subprocess.run(["curl", "-sS", "--user", user, base + "INBOX;UID=2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == SIMPLE.replace(b"hello there", b"message 1")
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--user", user, base + "INBOX",
                        "-X", "SEARCH SUBJECT \"message 2\""], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"SEARCH 3" in r.stdout


def _append_many(port, start, count, body):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'a LOGIN %s "%s"\r\n' % (USER.encode(), PW.encode()))
    while not f.readline().startswith(b"a "):
        pass
    batch = 200
    for first in range(start, start + count, batch):
        out = []
        n = min(batch, start + count - first)
        for i in range(first, first + n):
            msg = body.replace(b"hello there", b"bulk %d" % i)
            out.append(b"b%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(msg), msg))
        s.sendall(b"".join(out))
        done = 0
        while done < n:
            line = f.readline()
            assert line, "connection closed"
            if line.startswith(b"b"):
                assert b" OK " in line, line
                done += 1
    s.close()


@pytest.mark.serial  # SELECT and FETCH time bounds
def test_ten_thousand_messages(instance, server):
    instance.add_user(USER)
    total, conns = 10000, 4
    t0 = time.monotonic()
    threads = [threading.Thread(target=_append_many,
                                args=(instance.imap_port, 1 + i * (total // conns),
                                      total // conns, SIMPLE)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fill = time.monotonic() - t0
    m = login(instance)
    t0 = time.monotonic()
    typ, data = m.select("INBOX")
    select_s = time.monotonic() - t0
    assert data == [b"%d" % total]
    t0 = time.monotonic()
    typ, data = m.fetch("1:*", "(FLAGS ENVELOPE)")
    fetch_s = time.monotonic() - t0
    assert typ == "OK" and len(data) == total
    assert b"bulk " in data[-1]
    t0 = time.monotonic()
    typ, data = m.uid("FETCH", "9990:*", "(BODY.PEEK[])")
    assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) >= 10
    typ, data = m.search(None, "SUBJECT", "bulk 9999")
    assert typ == "OK" and len(data[0].split()) == 1
    print("fill %.1fs select %.3fs fetch-envelope %.2fs" % (fill, select_s, fetch_s))
    assert select_s < 5 and fetch_s < 30
    m.logout()
