"""The event loop is never stalled by CPU-heavy work: while one client sends
a 40 MB message to two accounts (sealed twice, its MIME structure parsed,
committed into two stores), other SMTP and IMAP sessions on the same server
keep answering NOOP promptly, through the upload and through the commit."""
import imaplib
import threading
import time

import pytest

from conftest import Server
from smtp_helpers import Raw, check_clean_stop, inbox, strip_trace

ALICE = "alice@example.org"   # eu-ie
BOB = "bob@example.org"       # us-east
SENDER = "sender@remote.example"
PW = "correct horse"
BIG_BYTES = 40 << 20
# A NOOP round trip on loopback takes well under a millisecond when the loop
# is free; on a loaded 2-core machine scheduling alone can stretch one to
# ~100 ms, hence the floor of 200 ms. The commit (after the final dot: MIME
# parsing, sealing 40 MB twice, two store writes) takes several hundred
# milliseconds of CPU; a loop that did that work itself would hold a NOOP
# sent at the start of the commit for about the whole commit. So no round
# trip may take a third of the commit, or 200 ms if that is more (the
# timings are printed, and shown on failure).
MAX_NOOP_SECONDS = 0.2


@pytest.fixture
def srv(instance):
    instance.add_user(ALICE, "eu-ie", password=PW)
    instance.add_user(BOB, "us-east", password=PW)
    instance.set_option("smtp", "max_message_size", "64M")
    s = Server(instance).start()
    yield s
    check_clean_stop(s)


def big_message():
    head = (b"From: Sender <sender@remote.example>\r\nTo: alice@example.org\r\n"
            b"Subject: large\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
    line = b"%076d\r\n"
    n = (BIG_BYTES - len(head)) // 78
    return head + b"".join(line % i for i in range(n))


@pytest.mark.serial  # NOOP latency bound
def test_large_message_does_not_stall_other_sessions(instance, srv):
    msg = big_message()
    imap = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    assert imap.login(ALICE, PW)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    pinger = Raw(instance.smtp_port)
    pinger.expect("EHLO pinger.example", 250)

    big = Raw(instance.smtp_port, timeout=300)
    big.expect("EHLO big.example", 250)
    big.expect("MAIL FROM:<%s> SIZE=%d" % (SENDER, len(msg)), 250)
    big.expect("RCPT TO:<%s>" % ALICE, 250)
    big.expect("RCPT TO:<%s>" % BOB, 250)
    big.expect("DATA", 354)

    marks = {}
    done = threading.Event()

    def upload():
        marks["start"] = time.monotonic()
        big.send(msg + b".\r\n")
        marks["sent"] = time.monotonic()
        marks["reply"] = big.reply()
        marks["end"] = time.monotonic()
        done.set()

    smtp_rtts, imap_rtts = [], []   # (time sent, round trip)

    def ping_imap():
        while not done.is_set():
            t = time.monotonic()
            assert imap.noop()[0] == "OK"
            imap_rtts.append((t, time.monotonic() - t))
            time.sleep(0.002)

    up = threading.Thread(target=upload)
    ip = threading.Thread(target=ping_imap)
    up.start()
    ip.start()
    while not done.is_set():
        t = time.monotonic()
        pinger.expect("NOOP", 250)
        smtp_rtts.append((t, time.monotonic() - t))
        time.sleep(0.002)
    up.join(timeout=300)
    ip.join(timeout=30)

    assert marks["reply"][0] == 250, marks["reply"]
    commit = marks["end"] - marks["sent"]
    info = "upload %.2fs, commit %.3fs, %d SMTP and %d IMAP NOOPs" % (
        marks["sent"] - marks["start"], commit, len(smtp_rtts), len(imap_rtts))
    # The pings covered the commit, not only the upload.
    in_commit = [r for t, r in smtp_rtts if marks["sent"] <= t <= marks["end"]]
    assert in_commit or commit < 0.02, "no NOOP during the commit: " + info
    worst_smtp = max(r for _, r in smtp_rtts)
    worst_imap = max(r for _, r in imap_rtts)
    limit = max(MAX_NOOP_SECONDS, commit / 3)
    print(info + "; worst NOOP: SMTP %.1f ms, IMAP %.1f ms" % (worst_smtp * 1e3,
                                                              worst_imap * 1e3))
    assert worst_smtp < limit, "SMTP NOOP took %.0f ms; %s" % (worst_smtp * 1e3, info)
    assert worst_imap < limit, "IMAP NOOP took %.0f ms; %s" % (worst_imap * 1e3, info)
    imap.logout()
    pinger.close()
    big.close()
    got = inbox(instance, BOB)
    assert len(got) == 1 and strip_trace(got[0])[1] == msg
