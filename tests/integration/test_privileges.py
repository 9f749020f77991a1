"""Least privilege, for real: started as root with [server] user set, the
daemon binds its ports (SMTP and IMAP on ports below 1024, which only root
can bind: serving there afterwards proves the bind came first), reads the
TLS key, then runs as that user (checked in /proc/PID/status) and still
serves SMTP and IMAP. A logged-in account's key is in locked memory
(VmLck), with RLIMIT_MEMLOCK raised before the switch. It never writes a core
file and is not dumpable, so not even its own user can read its memory or
environment through /proc or ptrace (unless [server] core_dumps = 1)."""
import imaplib
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Instance, Server, is_asan
from smtp_helpers import make_message, tls_context, wait_until

# One worker runs them all (pytest-xdist --dist loadgroup): low_ports probes
# ports below 1024 outside the loopback module's per-process blocks, and the
# tests add and remove the same system user.
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to drop privileges)"),
              pytest.mark.xdist_group("privileges")]

USER = "alice@example.org"
PW = "correct horse"
SYSUSER = "sealmail-test"


@pytest.fixture(scope="module")
def sysuser():
    """A system user for the daemon: made for these tests and removed after
    (an existing one is used and kept); `nobody` if useradd is missing."""
    try:
        yield pwd.getpwnam(SYSUSER)
        return
    except KeyError:
        pass
    made = subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s",
                           "/usr/sbin/nologin", SYSUSER], capture_output=True).returncode == 0
    try:
        yield pwd.getpwnam(SYSUSER)
    except KeyError:
        yield pwd.getpwnam("nobody")
    finally:
        if made:
            subprocess.run(["userdel", SYSUSER], capture_output=True)


@pytest.fixture
def rootdir():
    """A folder the unprivileged user can reach (pytest's tmp_path is 0700
    under root's)."""
    d = tempfile.mkdtemp(prefix="sealmail-priv-", dir="/tmp")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def proc_status(pid):
    fields = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.split()
    return fields


def core_limit(pid):
    for line in Path("/proc/%d/limits" % pid).read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError("no core limit line")


def read_as(uid, gid, path):
    """Reads PATH as UID:GID (no supplementary groups); returns the exit code."""
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                           "--clear-groups", "cat", str(path)],
                          capture_output=True).returncode


def start(inst):
    """Starts the server and waits for the end of start-up: the ports are
    bound (and answered by the kernel) before the privileges are dropped."""
    srv = Server(inst).start()
    assert wait_until(lambda: "sealmail started" in srv.log_text()), srv.log_text()
    return srv


def low_ports(n):
    """N free TCP ports on 127.0.0.1 below 1024 (600-1023)."""
    found = []
    for port in range(1023, 599, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            found.append(port)
        except OSError:
            continue
        finally:
            s.close()
        if len(found) == n:
            return found
    pytest.skip("no free ports below 1024")


def memlock_limit(pid):
    for line in Path("/proc/%d/limits" % pid).read_text().splitlines():
        if line.startswith("Max locked memory"):
            return line.split()[3:5]
    raise AssertionError("no locked memory line")


def make_instance(sealmail_bin, rootdir, sysuser, low=False, **server_opts):
    inst = Instance(sealmail_bin, rootdir / "data")
    if low:
        inst.smtp_port, inst.imap_port = low_ports(2)
        inst.set_option("smtp", "listen", "127.0.0.1:%d" % inst.smtp_port)
        inst.set_option("imap", "listen", "127.0.0.1:%d" % inst.imap_port)
    inst.add_user(USER)
    inst.set_option("server", "user", sysuser.pw_name)
    for k, v in server_opts.items():
        inst.set_option("server", k, str(v))
    chown_tree(inst.dir, sysuser.pw_uid, sysuser.pw_gid)
    # The TLS key stays root's: it is read before the switch.
    os.chown(inst.dir / "tls" / "key.pem", 0, 0)
    os.chmod(inst.dir / "tls" / "key.pem", 0o600)
    return inst


def test_drops_to_user_and_serves(sealmail_bin, rootdir, sysuser):
    inst = make_instance(sealmail_bin, rootdir, sysuser, low=True)
    assert inst.smtp_port < 1024 and inst.imap_port < 1024
    srv = start(inst)
    try:
        st = proc_status(srv.pid)
        uid, gid = str(sysuser.pw_uid), str(sysuser.pw_gid)
        assert st["Uid"] == [uid] * 4, st["Uid"]
        assert st["Gid"] == [gid] * 4, st["Gid"]
        assert "0" not in st.get("Groups", []), st.get("Groups")
        assert st["CapEff"] == ["0000000000000000"], st["CapEff"]
        assert "running as user %s" % sysuser.pw_name in srv.log_text()

        # SMTP with STARTTLS (the key was read as root) and IMAP both work
        # on their ports below 1024, bound before the switch, writing the
        # store as the unprivileged user.
        msg = make_message("privtoken")
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=30) as s:
            s.starttls(context=tls_context())
            assert s.sendmail("sender@remote.example", [USER], msg) == {}
        m = imaplib.IMAP4_SSL("127.0.0.1", inst.imaps_port, ssl_context=tls_context())
        m.login(USER, PW)
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY[])")
        assert typ == "OK" and data[0][1].endswith(msg)
        # The same on the plain IMAP port below 1024; while the session is
        # logged in, the account's unlocked key is in locked memory.
        # RLIMIT_MEMLOCK was raised to 64 MB before the switch, or (root
        # without CAP_SYS_RESOURCE, as in some containers) the daemon said
        # how far keys stay locked.
        soft = memlock_limit(srv.pid)[0]
        assert soft == "unlimited" or int(soft) >= 64 * 1024 * 1024 or \
            "RLIMIT_MEMLOCK is %d kB" % (int(soft) // 1024) in srv.log_text(), soft
        m.logout()

        def locked_kb():
            return int(proc_status(srv.pid)["VmLck"][0])

        time.sleep(0.5)
        before = locked_kb()
        p = imaplib.IMAP4("127.0.0.1", inst.imap_port)
        p.starttls(ssl_context=tls_context())
        p.login(USER, PW)
        assert p.select("INBOX")[0] == "OK"
        # (AddressSanitizer turns mlock() into a no-op: nothing to see there.)
        asan = is_asan(sealmail_bin)
        assert asan or locked_kb() > before, (locked_kb(), before)
        p.logout()
        # The account's last session ended: its key is wiped and unlocked.
        assert wait_until(lambda: locked_kb() == before), (locked_kb(), before)
        for root, dirs, files in os.walk(inst.region_dir("eu-ie")):
            for f in files:
                assert os.stat(os.path.join(root, f)).st_uid == sysuser.pw_uid, f

        # Not dumpable: /proc/PID files belong to root, and the daemon's own
        # user cannot read its environment. No core file either.
        assert os.stat("/proc/%d/environ" % srv.pid).st_uid == 0
        assert read_as(sysuser.pw_uid, sysuser.pw_gid, "/proc/%d/environ" % srv.pid) != 0
        assert core_limit(srv.pid) == ["0", "0"]
    finally:
        rc = srv.stop()
    assert rc == 0, srv.log_text()[-3000:]


def test_core_dumps_option_for_debugging(sealmail_bin, rootdir, sysuser):
    inst = make_instance(sealmail_bin, rootdir, sysuser, core_dumps=1)
    srv = start(inst)
    try:
        assert os.stat("/proc/%d/environ" % srv.pid).st_uid == sysuser.pw_uid
        assert read_as(sysuser.pw_uid, sysuser.pw_gid, "/proc/%d/environ" % srv.pid) == 0
    finally:
        srv.stop()


def test_root_without_user_still_not_dumpable(instance):
    srv = start(instance)
    try:
        assert core_limit(srv.pid) == ["0", "0"]
        assert "running as root" in srv.log_text()
    finally:
        srv.stop()


def test_unknown_user_refuses_to_start(instance):
    instance.set_option("server", "user", "no-such-user-sealmail")
    r = subprocess.run([instance.bin, "-c", str(instance.conf), "serve"], capture_output=True,
                       env=instance.env, timeout=30)
    assert r.returncode != 0
    assert b"no-such-user-sealmail" in r.stderr + r.stdout
