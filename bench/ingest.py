#!/usr/bin/env python3
"""ingest.py — sealmail's SMTP ingest alone, for before/after comparisons.

Sets up one sealmail server (like bench.py, without the peer), delivers the
first N messages of the bench corpus at 1, 8 and 64 connections and prints
msg/s, server CPU ms per message and writes per store commit (one fdatasync
of the WAL each; read from the store's statistics line in the server log,
so the server is restarted between levels). With --fill M, M messages go
to one mailbox first and per-level rates show how ingest behaves as that
mailbox grows (ingest then goes to the same mailbox).

  bench/ingest.py --bin build/release/bin/sealmail -n 600 --levels 1,8,64
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import client  # noqa: E402
import corpus  # noqa: E402

STAT = re.compile(r"(\d+) writes in (\d+) commits")


def store_stats(logpath, skip):
    with open(logpath) as f:
        text = f.read()[skip:]
    w = c = 0
    for m in STAT.finditer(text):
        w += int(m.group(1))
        c += int(m.group(2))
    return w, c


def thread_cpu(pid):
    """CPU seconds of each thread of PID: {tid: seconds}."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / bench.CLK
        except OSError:
            pass
    return out


def minor_faults(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(bench.ROOT, "bin/sealmail"))
    ap.add_argument("-n", type=int, default=600, help="messages per level")
    ap.add_argument("--levels", default="1,8,64")
    ap.add_argument("--fill", type=int, default=0, help="messages put in the mailbox first")
    ap.add_argument("--corpus", type=int, default=2000)
    ap.add_argument("--corpus-dir", default="/var/tmp/sealmail-bench-corpus")
    ap.add_argument("--rcpts", type=int, default=20)
    ap.add_argument("--max-bytes", type=int, default=0,
                    help="use only corpus messages smaller than this")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--during", metavar="CMD",
                    help="run CMD ({pid}: the server) during each level, SIGINT after it")
    args = ap.parse_args()

    cdir = os.path.join(args.corpus_dir, "n%d" % args.corpus)
    corpus.generate(cdir, args.corpus)
    paths = [os.path.join(cdir, "%06d.eml" % i) for i in range(args.corpus)]
    if args.max_bytes:
        paths = [p for p in paths if os.path.getsize(p) < args.max_bytes]
    base = tempfile.mkdtemp(prefix="smi-", dir="/tmp")
    os.chmod(base, 0o755)
    rcpts = ["rcpt%02d@example.org" % i for i in range(args.rcpts)]
    srv = bench.Sealmail(args.bin, base)
    results = {}
    try:
        srv.setup(rcpts, [])
        logpath = os.path.join(srv.dir, "server.log")
        if args.fill:
            srv.start()
            t0 = time.monotonic()
            done = 0
            while done < args.fill:
                k = min(len(paths), args.fill - done)
                client.run(client.ingest("127.0.0.1", srv.ingest_port, False, paths[:k],
                                         rcpts[:1], 8))
                done += k
            srv.stop()
            print("fill: %d messages in %.0f s" % (done, time.monotonic() - t0), flush=True)
            rcpts = rcpts[:1]
        for conc in [int(x) for x in args.levels.split(",")]:
            skip = os.path.getsize(logpath) if os.path.exists(logpath) else 0
            srv.start()
            n = min(args.n, len(paths))
            prof = None
            if args.during:
                prof = subprocess.Popen(args.during.format(pid=srv.pid, conc=conc), shell=True)
                time.sleep(1)
            t0 = thread_cpu(srv.pid)
            f0 = minor_faults(srv.pid)
            r = bench.phase_ingest(srv, paths[:n], rcpts, conc)
            t1 = thread_cpu(srv.pid)
            r["minor_faults_per_msg"] = (minor_faults(srv.pid) - f0) / r["messages"]
            per = {t: t1[t] - t0.get(t, 0) for t in t1}
            r["loop_cpu_ms_per_msg"] = 1000 * per.pop(srv.pid, 0) / r["messages"]
            r["busiest_other_thread_ms_per_msg"] = 1000 * max(per.values() or [0]) / r["messages"]
            if prof is not None:
                prof.send_signal(signal.SIGINT)
                prof.wait()
            srv.stop()
            w, c = store_stats(logpath, skip)
            r["writes_per_commit"] = w / c if c else 0
            results["c%d" % conc] = r
            print("c=%-3d %6.1f msg/s  %5.2f ms CPU/msg (loop %.2f, busiest other thread %.2f)  "
                  "%5.1f msg/sync  %.0f faults/msg  peak %.0f MB  (first/last fifth %.0f/%.0f msg/s, client %.2f ms/msg)" % (
                      conc, r["msgs_per_s"], r["cpu_ms_per_msg"], r["loop_cpu_ms_per_msg"],
                      r["busiest_other_thread_ms_per_msg"], r["writes_per_commit"], r["minor_faults_per_msg"], r["peak_pss_mb"],
                      r["first_fifth_msgs_per_s"], r["last_fifth_msgs_per_s"],
                      r["client_cpu_ms_per_msg"]), flush=True)
    finally:
        try:
            srv.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
