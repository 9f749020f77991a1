"""Loopback ports for servers the tests and the benchmark start themselves."""
import fcntl
import os
import socket
import tempfile
import time

# Ports are handed out from blocks below the kernel's ephemeral range
# (32768-60999 on Linux), so that no client socket's local port and no
# port another process got with bind(0) can take one between the probe
# and the server's bind. Each process claims a block of its own by holding
# an exclusive lock on the block's file for as long as it lives, so that
# concurrent test processes (pytest-xdist workers, two runs at once) never
# hand out the same port.
PORT_FIRST = 20000
PORT_LAST = 32767
BLOCK_SIZE = 100
LOCK_DIR = os.path.join(tempfile.gettempdir(), "sealmail-test-ports")

_handed_out = set()
_blocks = []        # (lock file, first port) of each block this process holds
_next = None        # next port to probe in the newest block


def _claim_block():
    os.makedirs(LOCK_DIR, exist_ok=True)
    held = {first for _, first in _blocks}
    for first in range(PORT_FIRST, PORT_LAST - BLOCK_SIZE + 2, BLOCK_SIZE):
        if first in held:
            continue
        f = open(os.path.join(LOCK_DIR, "block-%d.lock" % first), "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _blocks.append((f, first))   # kept open: the lock lasts as long as the process
        return first
    raise RuntimeError("no free block of loopback ports in %d-%d" % (PORT_FIRST, PORT_LAST))


def free_port():
    """A loopback port nothing listens on, never the same one twice in a run
    and never one another process holding a block has."""
    global _next
    while True:
        if _next is None or _next >= _blocks[-1][1] + BLOCK_SIZE:
            _next = _claim_block()
        port = _next
        _next += 1
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue     # in use by something else (or in TIME_WAIT)
        _handed_out.add(port)
        return port


def wait_port(port, timeout=10.0, proc=None):
    """Waits until PORT accepts connections; fails early if PROC exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("port %d not listening" % port)
