#!/usr/bin/env python3
"""delete-stall.py — what deleting large mail costs the deliveries running
beside it.

One sealmail server; COUNT messages of about 2 MB each (records of their
own in records/) go to one account. Then a sender delivers small messages
to another account, one after another, while an IMAP EXPUNGE removes all
the large ones (the store zeroes, syncs and unlinks every freed record).
Prints how long the EXPUNGE took and the delivery latency before and while
it ran.

  /usr/bin/python3 bench/delete-stall.py --bin bin/sealmail --count 150
"""
import argparse
import imaplib
import os
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="bin/sealmail")
    ap.add_argument("--count", type=int, default=150)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="sealmail-delete-stall-")
    srv = bench.Sealmail(os.path.abspath(args.bin), base)
    srv.setup(["big@example.org", "other@example.org"], [])
    srv.start()
    try:
        big = b"Subject: big\r\n\r\n" + b"".join(b"%070d\r\n" % i for i in range(28000))
        with smtplib.SMTP("127.0.0.1", srv.smtp_port) as c:
            for _ in range(args.count):
                c.sendmail("x@example.net", ["big@example.org"], big)
        lat, stop = [], threading.Event()

        def sender():
            with smtplib.SMTP("127.0.0.1", srv.smtp_port) as c:
                while not stop.is_set():
                    t0 = time.monotonic()
                    c.sendmail("x@example.net", ["other@example.org"], b"Subject: s\r\n\r\nhi\r\n")
                    lat.append((t0, time.monotonic() - t0))

        th = threading.Thread(target=sender)
        th.start()
        time.sleep(2)
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
        m.login("big@example.org", bench.PASSWORD)
        m.select("INBOX")
        m.store("1:*", "+FLAGS", "(\\Deleted)")
        t0 = time.monotonic()
        m.expunge()
        t1 = time.monotonic()
        time.sleep(1)
        stop.set()
        th.join()
        m.logout()
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)
    before = [d for t, d in lat if t + d < t0]
    during = [d for t, d in lat if t + d >= t0 and t <= t1]
    print("EXPUNGE of %d messages of 2 MB: %.2f s" % (args.count, t1 - t0))
    print("delivery latency before: median %.1f ms, max %.1f ms" %
          (1000 * statistics.median(before), 1000 * max(before)))
    print("delivery latency during: %d deliveries, median %.1f ms, max %.1f ms" %
          (len(during), 1000 * statistics.median(during), 1000 * max(during)))


if __name__ == "__main__":
    main()
