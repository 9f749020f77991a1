"""Ingest and fetch through a real sealmail server on the fs and the rados
store, side by side: N messages of SIZE bytes by SMTP over C connections,
then one IMAP FETCH of every body.

    /usr/bin/python3 bench/store-backends.py CEPH_CONF [N] [SIZE] [C]

CEPH_CONF is a cluster from scripts/ceph-test-cluster (memstore OSDs: the
rados numbers measure the protocol and round trips, not disks). Prints the
date, commit and machine load, then a Markdown table for docs/performance.md
(the median of BENCH_RUNS runs per backend, default 3)."""
import imaplib
import os
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import Instance, Server  # noqa: E402

USER, PW = "bench@example.org", "correct horse"


def run(binary, conf, backend, n, size, conns):
    with tempfile.TemporaryDirectory() as tmp:
        inst = Instance(binary, Path(tmp) / "data")
        if backend == "rados":
            uri = "conf=%s,id=sealmail,namespace=bench%d" % (conf, time.time_ns())
            inst.set_option("region eu-ie", "store", "rados:pool=mail-eu," + uri)
            inst.set_option("server", "directory", "rados:pool=sealmail-dir," + uri)
        inst.add_user(USER, password=PW)
        srv = Server(inst).start()
        body = ("x" * 76 + "\r\n") * (size // 78)
        msg = ("From: b@example.net\r\nTo: %s\r\nSubject: bench\r\n\r\n%s" % (USER, body)).encode()

        def sender(k):
            with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=60) as s:
                for _ in range(k):
                    s.sendmail("b@example.net", [USER], msg)

        start = time.monotonic()
        th = [threading.Thread(target=sender, args=(n // conns,)) for _ in range(conns)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        ingest = time.monotonic() - start
        m = imaplib.IMAP4("127.0.0.1", inst.imap_port)
        m.login(USER, PW)
        m.select("INBOX")
        start = time.monotonic()
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        fetch = time.monotonic() - start
        got = sum(1 for d in data if isinstance(d, tuple))
        m.logout()
        srv.stop()
        assert got == n // conns * conns, got
        return got / ingest, got / fetch


def describe(n, size, conns, runs):
    """Date, commit and machine load of this run, as Markdown lines."""
    import datetime
    import subprocess
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "-uno"],
                           capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    return ["- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "- commit: %s%s" % (commit, " (with uncommitted changes)" if dirty else ""),
            "- machine: %d cores, load average %.2f %.2f %.2f at the start" % ((os.cpu_count(),) + load),
            "- %d messages of %d bytes, SMTP over %d connections, IMAP FETCH of every body over 1; "
            "median of %d runs per backend" % (n, size, conns, runs)]


def main():
    conf = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    binary = os.environ.get("SEALMAIL_BIN", str(ROOT / "bin" / "sealmail"))
    for line in describe(n, size, conns, runs):
        print(line)
    print()
    print("| backend | ingest msg/s (SMTP, %d conns) | fetch msg/s (IMAP, 1 conn) | runs (ingest/fetch) |"
          % conns)
    print("| --- | --: | --: | --- |")
    for backend in ("fs", "rados"):
        results = [run(binary, conf, backend, n, size, conns) for _ in range(runs)]
        ingest = sorted(r[0] for r in results)[runs // 2]
        fetch = sorted(r[1] for r in results)[runs // 2]
        each = ", ".join("%.0f/%.0f" % r for r in results)
        print("| %s | %.0f | %.0f | %s |" % (backend, ingest, fetch, each), flush=True)
    print()
    print("- load average at the end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
