#!/usr/bin/env python3
"""bench.py — sealmail against Dovecot 2.3 + mail_crypt, side by side.

Started by bench/run (which installs the peer and builds everything); see
docs/performance.md. Both servers run in one temporary folder on loopback
ports, on the same corpus, driven by the same client (bench/client.py). Each
run goes through the phases in turn, and inside a phase the two servers take
turns (the order swaps from one run to the next). The report gives the
median over the runs and the sealmail/peer ratios.
"""
import argparse
import asyncio
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
import datetime
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "integration"))
import client  # noqa: E402
import corpus  # noqa: E402
from loopback import free_port, wait_port  # noqa: E402  (shared with the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-Password-7"
FAST_ARGON2 = {"SEALMAIL_ARGON2_OPS": "1", "SEALMAIL_ARGON2_MEM": "8192"}
CLK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ------------------------------------------------------------ process trees


def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid):
    """User+system CPU of PID, its live descendants, and the children it
    has reaped (a Dovecot master reaps its service processes)."""
    total = 0.0
    for p in tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        ut, stt, cut, cst = (int(x) for x in fields[11:15])
        total += ut + stt + (cut + cst if p == pid else 0)
    return total / CLK


def pss_bytes(pid):
    """Proportional set size of PID and its descendants (shared pages are
    split between the processes sharing them, so the sum is fair to
    multi-process servers), without LazyFree: memory freed with
    MADV_FREE, which the kernel takes back as soon as it wants the pages
    but which PSS still counts until it does."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                    elif line.startswith("LazyFree:"):
                        total -= int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Sampler:
    """Peak PSS of a process tree, sampled every INTERVAL seconds."""

    def __init__(self, pid, interval=0.25):
        self.pid, self.interval, self.peak = pid, interval, 0
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            self.peak = max(self.peak, pss_bytes(self.pid))
            self.stop_ev.wait(self.interval)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        self.th.join()
        self.peak = max(self.peak, pss_bytes(self.pid))


# ------------------------------------------------------------ servers


def set_option(conf, section, key, value):
    lines = open(conf).read().splitlines()
    out, in_sec, done = [], False, False
    for line in lines:
        if line.startswith("["):
            if in_sec and not done:
                out.append("%s = %s" % (key, value))
                done = True
            in_sec = line.strip() == "[%s]" % section
        elif in_sec and re.match(r"\s*%s\s*=" % re.escape(key), line):
            line, done = "%s = %s" % (key, value), True
        out.append(line)
    if not done:
        if not in_sec:
            out.append("[%s]" % section)
        out.append("%s = %s" % (key, value))
    open(conf, "w").write("\n".join(out) + "\n")


class Server:
    """What both servers share: the process started by start()."""
    proc = None

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid


class Sealmail(Server):
    name = "sealmail"
    lmtp = False

    def __init__(self, binary, base):
        self.bin, self.dir = binary, os.path.join(base, "sealmail")
        self.conf = os.path.join(self.dir, "sealmail.conf")
        self.proc = None

    def _cli(self, args, inp=None, fast=False):
        env = dict(os.environ)
        env.pop("SEALMAIL_CONF", None)
        for k in FAST_ARGON2:
            env.pop(k, None)
        if fast:
            env.update(FAST_ARGON2)
        r = subprocess.run([self.bin, "-c", self.conf] + args, input=inp, env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("sealmail %s: %s" % (" ".join(args), r.stderr))
        return r

    def setup(self, fast_users, slow_users):
        subprocess.run([self.bin, "init", self.dir, "--domain", "example.org"], check=True,
                       capture_output=True)
        self.smtp_port, self.imap_port = free_port(), free_port()
        text = open(self.conf).read()
        text = text.replace("127.0.0.1:2525", "127.0.0.1:%d" % self.smtp_port)
        text = text.replace("127.0.0.1:1143", "127.0.0.1:%d" % self.imap_port)
        text = text.replace("127.0.0.1:1993", "127.0.0.1:%d" % free_port())
        open(self.conf, "w").write(text)
        set_option(self.conf, "smtp", "max_connections_per_ip", "1000")
        set_option(self.conf, "imap", "max_connections", "30000")
        set_option(self.conf, "imap", "max_connections_per_ip", "30000")
        for u in fast_users:
            self._cli(["user", "add", u, "--region", "eu-ie", "--password-stdin"],
                      PASSWORD + "\n", fast=True)
        for u in slow_users:  # libsodium's interactive Argon2id limits, the default
            self._cli(["user", "add", u, "--region", "eu-ie", "--password-stdin"],
                      PASSWORD + "\n")
        self.ingest_port = self.smtp_port

    def start(self, idle=False):
        if self.proc is not None:
            return
        env = dict(os.environ)
        for k in FAST_ARGON2:
            env.pop(k, None)
        logf = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"], stdout=logf,
                                     stderr=subprocess.STDOUT, env=env)
        logf.close()
        wait_port(self.smtp_port, timeout=30, proc=self.proc)
        wait_port(self.imap_port, timeout=30, proc=self.proc)

    def disk_bytes(self):
        return dir_bytes(os.path.join(self.dir, "regions"))

    def drop_caches(self):
        pass  # sealmail keeps no plaintext cache on disk


DOVECOT_CONF = """\
# Dovecot 2.3 + mail_crypt for the benchmark (written by bench/bench.py)
base_dir = {d}/run
state_dir = {d}/state
instance_name = sealmail-bench
log_path = {d}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:~/Maildir
mail_attribute_dict = file:%h/dovecot-attributes
mail_fsync = optimized
mail_plugins = $mail_plugins mail_crypt
default_process_limit = 2000
default_client_limit = 40000
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {d}/passwd
  override_fields = userdb_mail_crypt_private_password=%{{password}}
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
  default_fields = uid={uid} gid={gid} home={d}/home/%u
}}
plugin {{
  mail_crypt_curve = prime256v1
  mail_crypt_save_version = 2
  mail_crypt_require_encrypted_user_key = yes
}}
protocol imap {{
  mail_max_userip_connections = 40000
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = 20000
}}
service imap {{
  service_count = {imap_service_count}
  client_limit = {imap_client_limit}
  process_limit = 20000
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
  process_limit = 200
}}
service auth {{
  client_limit = 40000
}}
service anvil {{
  client_limit = 40000
}}
"""


class Dovecot(Server):
    name = "dovecot"
    lmtp = True

    def __init__(self, base):
        self.dir = os.path.join(base, "dovecot")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.proc = None
        self.mode = None
        self.idle_shared = True

    def write_conf(self, idle):
        import pwd
        nobody = pwd.getpwnam("nobody")
        # Read tests: one imap process per connection (Dovecot's default).
        # Idle test with --dovecot-idle shared (the default): up to 100
        # connections per long-lived imap process (service_count = 0),
        # Dovecot's lowest-memory setting; "process" keeps the default.
        shared = idle and self.idle_shared
        text = DOVECOT_CONF.format(d=self.dir, uid=nobody.pw_uid, gid=nobody.pw_gid,
                                   imap_port=self.imap_port, lmtp_port=self.lmtp_port,
                                   imap_client_limit=100 if shared else 1,
                                   imap_service_count=0 if shared else 1)
        open(self.conf, "w").write(text)
        self.mode = idle

    def setup(self, fast_users, slow_users):
        import pwd
        nobody = pwd.getpwnam("nobody")
        os.makedirs(os.path.join(self.dir, "home"))
        os.chmod(os.path.dirname(self.dir), 0o755)
        os.chmod(self.dir, 0o755)
        os.chown(os.path.join(self.dir, "home"), nobody.pw_uid, nobody.pw_gid)
        self.imap_port, self.lmtp_port = free_port(), free_port()
        self.write_conf(False)
        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for u in list(fast_users) + list(slow_users):
                f.write("%s:{SHA512-CRYPT}%s::::::\n" % (u, hashed))
        os.chmod(os.path.join(self.dir, "passwd"), 0o644)
        # Per-user EC keys, private key encrypted with the login password
        # (doveadm -A lists the users through the running auth service).
        self.start()
        r = subprocess.run(["doveadm", "-f", "flow", "-c", self.conf, "-o",
                            "plugin/mail_crypt_private_password=" + PASSWORD,
                            "mailbox", "cryptokey", "generate", "-A", "-U"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("doveadm cryptokey generate: " + r.stderr + r.stdout)
        self.ingest_port = self.lmtp_port

    def start(self, idle=False):
        if self.proc is not None and self.mode == idle:
            return
        self.stop()
        self.write_conf(idle)
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.imap_port, timeout=30, proc=self.proc)
        wait_port(self.lmtp_port, timeout=30, proc=self.proc)
        time.sleep(0.5)

    def disk_bytes(self):
        return dir_bytes(os.path.join(self.dir, "home"))

    def drop_caches(self, user):
        """Removes the reader's dovecot.index.cache so that the first
        ENVELOPE fetch of each run is a cold one (Dovecot keeps ENVELOPE in
        that plaintext cache after a first fetch)."""
        for root, _, files in os.walk(os.path.join(self.dir, "home", user)):
            for f in files:
                if f.startswith("dovecot.index.cache"):
                    os.unlink(os.path.join(root, f))


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


# ------------------------------------------------------------ phases


def cpu_busy(seconds):
    """The share of the machine's CPU time that was busy over SECONDS."""
    def sample():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(f), f[3] + f[4]  # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def settle(limit=0.10, max_wait=20.0):
    """Waits until the machine is quiet (at most LIMIT of its CPU busy over
    half a second, or MAX_WAIT): the servers take turns, and what one still
    does after its own measurement (writing caches, closing sessions) must
    not count against the other."""
    t0 = time.monotonic()
    busy = cpu_busy(0.5)
    first = busy
    while busy > limit and time.monotonic() - t0 < max_wait:
        busy = cpu_busy(0.5)
    if time.monotonic() - t0 > 1.0:
        log("waited %.1f s for the machine to settle (%.0f%% busy, then %.0f%%)"
            % (time.monotonic() - t0, 100 * first, 100 * busy))


def measure(srv, fn):
    """Runs FN() and returns (its result, server CPU seconds, peak PSS),
    once the machine is quiet. The benchmark's own CPU time (client and
    sampler) goes to measure.client_cpu, to show when the client rather than
    the server is the limit."""
    settle()
    c0, t0 = cpu_seconds(srv.pid), os.times()
    with Sampler(srv.pid) as s:
        res = fn()
    t1 = os.times()
    measure.client_cpu = (t1.user - t0.user) + (t1.system - t0.system)
    return res, cpu_seconds(srv.pid) - c0, s.peak


def phase_ingest(srv, paths, rcpts, conc):
    res, cpu, peak = measure(srv, lambda: client.run(
        client.ingest("127.0.0.1", srv.ingest_port, srv.lmtp, paths, rcpts, conc)))
    n, secs = res["messages"], res["seconds"]
    done = sorted(res["done"])
    k = max(1, n // 5)
    first = k / done[k - 1] if done[k - 1] > 0 else 0
    last = k / (done[-1] - done[-k - 1]) if n > k and done[-1] > done[-k - 1] else 0
    return {"msgs_per_s": n / secs, "mb_per_s": res["bytes"] / MB / secs,
            "cpu_ms_per_msg": 1000 * cpu / n, "peak_pss_mb": peak / MB, "seconds": secs,
            "client_cpu_ms_per_msg": 1000 * measure.client_cpu / n,
            "messages": n, "first_fifth_msgs_per_s": first, "last_fifth_msgs_per_s": last,
            "pipelining": 1 if res["pipelining"] else 0}


READ_OPS = [
    ("flags", "FETCH {set} (FLAGS)"),
    ("envelope_first", "FETCH {set} (ENVELOPE)"),
    ("envelope_repeat", "FETCH {set} (ENVELOPE)"),
    ("full", "FETCH {set} (BODY.PEEK[])"),
    ("search_body", "SEARCH {set} BODY %s" % corpus.NEEDLE),
]


def phase_read(srv, user, mbox_count, clients):
    """Each operation over the whole mailbox: with one client, one command
    over 1:*; with CLIENTS clients, each takes an equal slice of the
    sequence numbers and all run at once (aggregate throughput)."""
    out = {}
    if clients == 1 and srv.name == "dovecot":
        srv.drop_caches(user)
    clients = max(1, min(clients, mbox_count))
    sets = ["1:*"] if clients == 1 else [
        "%d:%d" % (k * mbox_count // clients + 1, (k + 1) * mbox_count // clients)
        for k in range(clients)]
    for name, cmd in READ_OPS:
        if clients > 1 and name == "envelope_first":
            continue
        cmds = [cmd.format(set=x) for x in sets]
        res, cpu, peak = measure(srv, lambda: client.run(client.read_op(
            "127.0.0.1", srv.imap_port, user, PASSWORD, "INBOX", cmds, clients,
            raw=b"SEARCH" if name == "search_body" else None)))
        msgs = mbox_count
        r = {"seconds": res["seconds"], "msgs_per_s": msgs / res["seconds"],
             "cpu_ms_per_msg": 1000 * cpu / msgs, "peak_pss_mb": peak / MB,
             "client_cpu_ms_per_msg": 1000 * measure.client_cpu / msgs,
             "mb_per_s": res["literal_bytes"] / MB / res["seconds"]}
        if name == "search_body":
            r["hits"] = sum(len(k.split()) - 2 for k in res["kept"])
        else:
            r["responses"] = res["responses"]
        out[name] = r
    return out


def phase_logins(srv, slow_users, fast_users, total):
    out = {}
    for key, users, hold, n in (("cold_interactive", slow_users, False, len(slow_users)),
                                ("cold_minimum", fast_users, False, total),
                                ("warm", slow_users, True, total)):
        c0 = [0.0]

        def start():
            c0[0] = cpu_seconds(srv.pid)
        res = client.run(client.logins("127.0.0.1", srv.imap_port, users, PASSWORD, n, 8,
                                       hold, on_start=start))
        res["cpu_ms_per_login"] = 1000 * (cpu_seconds(srv.pid) - c0[0]) / n
        out[key] = res
    return out


def phase_idle(srv, users, count):
    srv.start(idle=True)
    time.sleep(1)
    before = pss_bytes(srv.pid)
    sessions = []

    async def go():
        nonlocal sessions
        t0 = time.monotonic()
        sessions = await client.idle_open("127.0.0.1", srv.imap_port, users, PASSWORD, count)
        opened = time.monotonic() - t0
        await asyncio.sleep(2)
        after = pss_bytes(srv.pid)
        nprocs = len(tree(srv.pid))
        await client.idle_close(sessions)
        return opened, after, nprocs

    opened, after, nprocs = asyncio.run(go())
    return {"connections": count, "accounts": len(users), "open_seconds": opened,
            "pss_before_mb": before / MB, "pss_after_mb": after / MB,
            "kb_per_connection": (after - before) / 1024 / count, "processes": nprocs}


# ------------------------------------------------------------ perf


def perf_profile(srv, fn, out_path, top=25):
    rec = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(srv.pid),
                            "-o", out_path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        fn()
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait()
    r = subprocess.run(["perf", "report", "-i", out_path, "--stdio", "--no-children",
                        "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.7"],
                       capture_output=True, text=True)
    rows = [re.sub(r"(\s+-)+\s*$", "", line) for line in r.stdout.splitlines()
            if line.strip() and not line.startswith("#")]
    return rows[:top]


# ------------------------------------------------------------ ceiling


def ceiling(bench_seal):
    if not bench_seal or not os.path.exists(bench_seal):
        return {}
    r = subprocess.run([bench_seal, "1"], capture_output=True, text=True,
                       cwd=tempfile.gettempdir())
    rows = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(.*?)\s{2,}([\d.]+)\s+(\S.*)$", line)
        if m:
            rows[m.group(1).strip()] = {"value": float(m.group(2)), "unit": m.group(3).strip()}
    return rows


# ------------------------------------------------------------ main


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (int, float)):
            out[key] = v
    return out


# (metric, label, higher is better, target ratio or None)
TABLE = [
    ("ingest.c1.msgs_per_s", "ingest, 1 connection (msg/s)", True, None),
    ("ingest.c8.msgs_per_s", "ingest, 8 connections (msg/s)", True, 5),
    ("ingest.c64.msgs_per_s", "ingest, 64 connections (msg/s)", True, 5),
    ("ingest.c64.mb_per_s", "ingest, 64 connections (MB/s)", True, None),
    ("ingest.c8.cpu_ms_per_msg", "ingest CPU per message, 8 conn (ms)", False, None),
    ("ingest.c64.peak_pss_mb", "ingest peak memory, 64 conn (MB PSS)", False, None),
    ("read1.full.msgs_per_s", "full fetch BODY.PEEK[], 1 client (msg/s)", True, 10),
    ("read16.full.msgs_per_s", "full fetch, 16 clients (msg/s)", True, 10),
    ("read1.envelope_first.msgs_per_s", "ENVELOPE first fetch, 1 client (msg/s)", True, 10),
    ("read1.envelope_repeat.msgs_per_s", "ENVELOPE repeat fetch, 1 client (msg/s)", True, 1),
    ("read16.envelope_repeat.msgs_per_s", "ENVELOPE repeat fetch, 16 clients (msg/s)", True, 1),
    ("read1.flags.msgs_per_s", "FLAGS fetch, 1 client (msg/s)", True, None),
    ("read16.flags.msgs_per_s", "FLAGS fetch, 16 clients (msg/s)", True, None),
    ("read1.search_body.msgs_per_s", "body SEARCH, 1 client (msg/s)", True, 3),
    ("read16.search_body.msgs_per_s", "body SEARCH, 16 clients (msg/s)", True, 3),
    ("read1.full.cpu_ms_per_msg", "full fetch CPU per message (ms)", False, None),
    ("read1.search_body.cpu_ms_per_msg", "body SEARCH CPU per message (ms)", False, None),
    ("idle.kb_per_connection", "idle IMAP connection (KB PSS each)", False, None),
    ("logins.cold_interactive.per_second", "logins/s, cold (sealmail: Argon2id interactive)", True, None),
    ("logins.cold_minimum.per_second", "logins/s, cold (sealmail: Argon2id minimum)", True, None),
    ("logins.warm.per_second", "logins/s, warm (account already open)", True, None),
]


def report(results, args, ceil, meta):
    med = {}
    for srv in ("sealmail", "dovecot"):
        runs = [flatten(r) for r in results[srv]]
        keys = set().union(*runs) if runs else set()
        med[srv] = {k: median([r.get(k) for r in runs]) for k in sorted(keys)}
    rows = []
    for key, label, higher, target in TABLE:
        s, d = med["sealmail"].get(key), med["dovecot"].get(key)
        ratio = None
        if s and d:
            ratio = s / d if higher else d / s
        met = None
        if target is not None and ratio is not None:
            met = ratio >= target
        paired = []
        for rs, rd in zip(results["sealmail"], results["dovecot"]):
            a, b = flatten(rs).get(key), flatten(rd).get(key)
            if a and b:
                paired.append(a / b if higher else b / a)
        rows.append({"metric": key, "label": label, "sealmail": s, "dovecot": d,
                     "advantage": ratio, "per_run": paired, "target": target, "met": met})
    idle_kb = med["sealmail"].get("idle.kb_per_connection")
    out = {"meta": meta, "ceiling": ceil, "median": med, "table": rows, "runs": results}

    def fmt(v):
        if v is None:
            return "–"
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    md = ["# sealmail vs Dovecot 2.3 + mail_crypt — %s" % meta["date"], "",
          "Median of %d runs. Ingest %d messages per concurrency level, mailbox of %d "
          "messages, %d idle connections. Load average at start %s, at end %s "
          "(%d cores)." % (meta["runs"], meta["ingest_messages"], meta["mailbox_messages"],
                           meta["idle_connections"], meta["loadavg_start"],
                           meta["loadavg_end"], os.cpu_count()), "",
          "`advantage` is how many times better sealmail is (rate ratio sealmail/peer; for "
          "costs, peer/sealmail).", "",
          "| measurement | sealmail | Dovecot + mail_crypt | advantage | per run | target | met |",
          "| --- | ---: | ---: | ---: | --- | ---: | :---: |"]
    for r in rows:
        if r["sealmail"] is None and r["dovecot"] is None:
            continue
        md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["label"], fmt(r["sealmail"]), fmt(r["dovecot"]),
            (fmt(r["advantage"]) + "×") if r["advantage"] else "–",
            " ".join(fmt(x) for x in r["per_run"]),
            ("≥%g×" % r["target"]) if r["target"] else "",
            {True: "yes", False: "**no**", None: ""}[r["met"]]))
    if idle_kb is not None:
        md += ["", "Idle connection target (≤ 64 KB each): sealmail %.1f KB — %s." % (
            idle_kb, "met" if idle_kb <= 64 else "**missed**")]
    s1 = med["sealmail"].get("ingest.c1.msgs_per_s")
    s8 = med["sealmail"].get("ingest.c8.msgs_per_s")
    s64 = med["sealmail"].get("ingest.c64.msgs_per_s")
    if s1 and s8 and s64:
        md.append("Ingest scaling (sealmail msg/s): 1 → 8 → 64 connections: %.0f → %.0f → %.0f."
                  % (s1, s8, s64))
    cs = med["sealmail"].get("ingest.c8.client_cpu_ms_per_msg")
    cd = med["dovecot"].get("ingest.c8.client_cpu_ms_per_msg")
    if cs and cd:
        md.append("Benchmark client CPU per message, ingest at 8 connections: %.2f ms "
                  "(sealmail run), %.2f ms (peer run)." % (cs, cd))
    ps = med["sealmail"].get("ingest.c8.pipelining")
    pd = med["dovecot"].get("ingest.c8.pipelining")
    if ps is not None and pd is not None:
        md.append("The client pipelined MAIL, RCPT and DATA (RFC 2920): sealmail %s, peer %s."
                  % ("yes" if ps else "no", "yes" if pd else "no"))
    ff = med["sealmail"].get("ingest.c8.first_fifth_msgs_per_s")
    lf = med["sealmail"].get("ingest.c8.last_fifth_msgs_per_s")
    if ff and lf:
        md.append("Ingest at 8 connections, first fifth vs last fifth of the messages: "
                  "%.0f vs %.0f msg/s." % (ff, lf))
    if ceil:
        md += ["", "## This machine's ceiling (bench/bench-seal.c, one core)", "",
               "| operation | value | unit |", "| --- | ---: | --- |"]
        for k, v in ceil.items():
            md.append("| %s | %s | %s |" % (k, fmt(v["value"]), v["unit"]))
    if meta.get("profile"):
        md += ["", "## Profile (perf, sealmail server)", ""]
        for name, prow in meta["profile"].items():
            md += ["%s:" % name, "", "```"] + prow + ["```", ""]
    return out, "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, about 5 minutes per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ingest", type=int, help="messages per ingest level (default 20000)")
    ap.add_argument("--mailbox", type=int, help="messages in the read mailbox (default 10000)")
    ap.add_argument("--idle", type=int, help="idle IMAP connections (default 10000)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bench/bin/sealmail"))
    ap.add_argument("--bench-seal", default=os.path.join(ROOT, "build/bench/bench-seal"))
    ap.add_argument("--corpus-dir", default="/var/tmp/sealmail-bench-corpus")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--phases", default="ingest,read,logins,idle")
    ap.add_argument("--perf", action="store_true",
                    help="also profile sealmail (perf record) during ingest and full fetch")
    ap.add_argument("--dovecot-idle", choices=("shared", "process"), default="shared",
                    help="peer's imap processes in the idle test: 100 connections each "
                    "(shared) or one per connection (process, Dovecot's default)")
    ap.add_argument("--report", metavar="JSON",
                    help="only re-render the Markdown of an earlier results file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            old = json.load(f)
        _, md = report(old["runs"], args, old["ceiling"], old["meta"])
        with open(re.sub(r"\.json$", "", args.report) + ".md", "w") as f:
            f.write(md)
        print(md)
        return
    n_ingest = args.ingest or (2000 if args.quick else 20000)
    n_mbox = args.mailbox or (2000 if args.quick else 10000)
    n_idle = args.idle or (1000 if args.quick else 10000)
    phases = args.phases.split(",")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n_idle + 4096, soft)  # the client holds every idle connection
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        log("could not raise the open file limit to %d (have %d)" % (want, soft))

    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "runs": args.runs, "ingest_messages": n_ingest, "mailbox_messages": n_mbox,
            "idle_connections": n_idle, "loadavg_start": loadavg(), "cores": os.cpu_count(),
            "quick": args.quick, "sealmail_binary_mtime": time.strftime(
                "%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(args.bin))),
            "built_from": os.environ.get("SEALMAIL_BENCH_REV", "working tree"),
            "git": subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                  capture_output=True, text=True).stdout.strip(),
            "dovecot": subprocess.run(["dovecot", "--version"],
                                                           capture_output=True, text=True).stdout.strip()}
    log("load average", meta["loadavg_start"])
    ncorpus = max(n_ingest, n_mbox)
    man = corpus.generate(os.path.join(args.corpus_dir, "n%d" % ncorpus), ncorpus)
    cdir = os.path.join(args.corpus_dir, "n%d" % ncorpus)
    paths = [os.path.join(cdir, "%06d.eml" % i) for i in range(ncorpus)]
    meta["corpus"] = {"messages": ncorpus, "bytes": man["bytes"], "seed": man["seed"]}
    log("corpus: %d messages, %.0f MB" % (ncorpus, man["bytes"] / MB))
    ceil = ceiling(args.bench_seal)

    base = tempfile.mkdtemp(prefix="smb-", dir="/tmp")
    os.chmod(base, 0o755)
    rcpts = ["rcpt%02d@example.org" % i for i in range(20)]
    reader = "reader@example.org"
    idle_users = ["idle%04d@example.org" % i for i in range(max(50, n_idle // 20))]
    slow_users = ["login%02d@example.org" % i for i in range(16)]
    fast_users = rcpts + [reader] + idle_users
    servers = [Sealmail(args.bin, base), Dovecot(base)]
    servers[1].idle_shared = args.dovecot_idle == "shared"
    meta["dovecot_idle_processes"] = args.dovecot_idle
    results = {"sealmail": [], "dovecot": []}
    try:
        for s in servers:
            log("setting up", s.name)
            s.setup(fast_users, slow_users)
            s.start()
            log("filling the read mailbox of %s (%d messages, 8 connections)" % (s.name, n_mbox))
            res = client.run(client.ingest("127.0.0.1", s.ingest_port, s.lmtp,
                                           paths[:n_mbox], [reader], 8))
            assert res["messages"] == n_mbox
        needles = sum(1 for i in man["needles"] if i < n_mbox)
        for run in range(args.runs):
            order = servers if run % 2 == 0 else servers[::-1]
            per = {s.name: {} for s in servers}
            if "ingest" in phases:
                per_ing = {s.name: {} for s in servers}
                for conc in (1, 8, 64):
                    for s in order:
                        s.start()
                        r = phase_ingest(s, paths[:n_ingest], rcpts, conc)
                        per_ing[s.name]["c%d" % conc] = r
                        log("run %d %s ingest c=%d: %.0f msg/s, %.1f MB/s, %.2f ms CPU/msg, "
                            "peak %.0f MB" % (run + 1, s.name, conc, r["msgs_per_s"],
                                              r["mb_per_s"], r["cpu_ms_per_msg"],
                                              r["peak_pss_mb"]))
                for s in servers:
                    per[s.name]["ingest"] = per_ing[s.name]
            if "read" in phases:
                for clients in (1, 16):
                    for s in order:
                        s.start()
                        r = phase_read(s, reader, n_mbox, clients)
                        per[s.name]["read%d" % clients] = r
                        log("run %d %s read x%d: %s" % (run + 1, s.name, clients, ", ".join(
                            "%s %.0f msg/s" % (k, v["msgs_per_s"]) for k, v in r.items())))
                        sr = r.get("search_body", {}).get("hits")
                        if sr is not None and sr != needles:
                            log("WARNING: %s body SEARCH found %d, expected %d" % (s.name, sr, needles))
            if "logins" in phases:
                for s in order:
                    s.start()
                    r = phase_logins(s, slow_users, rcpts, 48 if args.quick else 160)
                    per[s.name]["logins"] = r
                    log("run %d %s logins/s: %s" % (run + 1, s.name, ", ".join(
                        "%s %.1f" % (k, v["per_second"]) for k, v in r.items())))
            if "idle" in phases:
                for s in order:
                    r = phase_idle(s, idle_users, n_idle)
                    per[s.name]["idle"] = r
                    log("run %d %s idle: %.1f KB/connection (%d processes)"
                        % (run + 1, s.name, r["kb_per_connection"], r["processes"]))
                    s.start(idle=False)
            for s in servers:
                results[s.name].append(per[s.name])
        if args.perf:
            prof = {}
            sm = servers[0]
            sm.start()
            prof["ingest, 8 connections"] = perf_profile(
                sm, lambda: phase_ingest(sm, paths[:n_ingest], rcpts, 8),
                os.path.join(base, "perf-ingest.data"))
            prof["full fetch, 1 client"] = perf_profile(
                sm, lambda: phase_read_one(sm, reader, "FETCH 1:* (BODY.PEEK[])"),
                os.path.join(base, "perf-fetch.data"))
            prof["body SEARCH, 1 client"] = perf_profile(
                sm, lambda: phase_read_one(sm, reader, READ_OPS[-1][1].format(set="1:*")),
                os.path.join(base, "perf-search.data"))
            prof["ENVELOPE fetch, 1 client"] = perf_profile(
                sm, lambda: phase_read_one(sm, reader, "FETCH 1:* (ENVELOPE)"),
                os.path.join(base, "perf-envelope.data"))
            meta["profile"] = prof
        meta["disk_bytes"] = {s.name: s.disk_bytes() for s in servers}
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # keep going: the other server must stop too
                log("stopping %s: %s" % (s.name, e))
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log("kept", base)
    meta["loadavg_end"] = loadavg()
    out, md = report(results, args, ceil, meta)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M") + ("-quick" if args.quick else "")
    with open(os.path.join(args.out, stamp + ".json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    with open(os.path.join(args.out, stamp + ".md"), "w") as f:
        f.write(md)
    print(md)
    log("wrote", os.path.join(args.out, stamp + ".json"), "and .md")


def phase_read_one(srv, user, cmd):
    return client.run(client.read_op("127.0.0.1", srv.imap_port, user, PASSWORD, "INBOX", cmd, 1))


if __name__ == "__main__":
    main()
