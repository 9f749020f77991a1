#!/usr/bin/python3
"""Does the cost per message stay flat as a mailbox grows?

Fills one sealmail mailbox over SMTP (8 connections, durable 250s) to 1,000,
10,000 and 100,000 messages (--sizes), and at each size measures, on the
mailbox as it is:

  ingest   ms per message over the last 1,000 deliveries
  select   SELECT INBOX (median of 5)
  flags    UID FETCH of the newest 100 messages (FLAGS), per message
  envelope UID FETCH of the newest 100 (ENVELOPE), per message
  body     UID FETCH of the newest 100 (BODY.PEEK[]), per message
  store    UID STORE +FLAGS (\\Flagged) on the newest 100, per message
  append   APPEND of 50 messages, per message
  rss      the server's resident memory (PSS, MB) after the step

The messages are small (the 2-8 KB class of the corpus, cycled) so that the
mailbox, not the message size, is what grows. The last column of the table is
the largest size over the smallest: 1.00 is perfectly flat.

  bench/run builds what this needs; then:
  /usr/bin/python3 bench/growth.py [--sizes 1000,10000,100000]
Results: bench/results/<date>-growth.json and .md.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import client  # noqa: E402
import corpus  # noqa: E402

USER = "grow@example.org"
STEP_MEASURED = 1000
NEWEST = 100
APPENDS = 50


def small_messages(corpus_dir, want=1000):
    man = corpus.generate(corpus_dir, 2000)
    paths = [os.path.join(corpus_dir, "%06d.eml" % i) for i, size in enumerate(man["sizes"])
             if size <= 8192]
    return paths[:want]


def deliver(srv, paths, start, count):
    """Delivers COUNT messages (cycling over PATHS) and returns seconds."""
    batch = [paths[(start + i) % len(paths)] for i in range(count)]
    res = client.run(client.ingest("127.0.0.1", srv.smtp_port, False, batch, [USER], 8))
    if res["messages"] != count:
        raise RuntimeError("delivered %d of %d" % (res["messages"], count))
    return res["seconds"]


async def imap_step(port, total, sample):
    s = await (await client.Imap().connect("127.0.0.1", port)).login(USER, bench.PASSWORD)
    out = {}
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        await s.command("SELECT INBOX")
        times.append(time.monotonic() - t0)
    out["select_ms"] = 1000 * statistics.median(times)
    first = max(1, total - NEWEST + 1)
    rng = "%d:*" % first
    for name, cmd in (("flags", "FETCH %s (FLAGS)"), ("envelope", "FETCH %s (ENVELOPE)"),
                      ("body", "FETCH %s (BODY.PEEK[])"),
                      ("store", "STORE %s +FLAGS.SILENT (\\Flagged)")):
        t0 = time.monotonic()
        await s.command(cmd % rng)  # sequence numbers: the newest messages
        out[name + "_us_per_msg"] = 1e6 * (time.monotonic() - t0) / NEWEST
    t0 = time.monotonic()
    for i in range(APPENDS):
        await s.append("INBOX", sample[i % len(sample)])
    out["append_us_per_msg"] = 1e6 * (time.monotonic() - t0) / APPENDS
    await s.logout()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--bin", default=os.path.join(bench.ROOT, "build/bench/bin/sealmail"))
    ap.add_argument("--corpus-dir", default="/var/tmp/sealmail-bench-corpus-growth")
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "bench/results"))
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    paths = small_messages(args.corpus_dir)
    sample = [open(p, "rb").read() for p in paths[:APPENDS]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="sealmail-growth-", dir="/var/tmp") as base:
        srv = bench.Sealmail(args.bin, base)
        srv.setup([USER], [])
        srv.start()
        try:
            have = 0
            for size in sizes:
                bulk = size - have - min(STEP_MEASURED, size - have)
                if bulk > 0:
                    bench.log("filling to %d messages" % (have + bulk))
                    deliver(srv, paths, have, bulk)
                    have += bulk
                n = size - have
                secs = deliver(srv, paths, have, n)
                have += n
                row = {"messages": size, "ingest_ms_per_msg": 1000 * secs / n}
                row.update(client.run(imap_step(srv.imap_port, have, sample)))
                have += APPENDS
                row["rss_mb"] = bench.pss_bytes(srv.pid) / bench.MB
                bench.log(json.dumps(row))
                rows.append(row)
        finally:
            srv.stop()
    keys = [k for k in rows[0] if k != "messages"]
    md = ["# sealmail: cost per message as one mailbox grows — %s" %
          time.strftime("%Y-%m-%d %H:%M"), "",
          "Messages of 2-8 KB over SMTP (8 connections); IMAP on the newest %d. "
          "Load average at the end: %s (2 cores)." % (NEWEST, bench.loadavg()), "",
          "| measurement | " + " | ".join("%d msgs" % r["messages"] for r in rows) +
          " | largest / smallest |", "| --- |" + " ---: |" * (len(rows) + 1)]
    for k in keys:
        vals = [r[k] for r in rows]
        md.append("| %s | %s | %.2f |" % (k, " | ".join("%.3g" % v for v in vals),
                                          vals[-1] / vals[0] if vals[0] else 0))
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, time.strftime("%Y-%m-%d-%H%M") + "-growth")
    with open(stem + ".json", "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
