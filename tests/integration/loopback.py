"""Loopback ports for servers the tests and the benchmark start themselves."""
import socket
import time

_handed_out = set()


def free_port():
    """A loopback port nothing listens on, never the same one twice in a run.

    The kernel may give a port back as soon as its probe socket is closed, so
    two calls in a row can return the same number; remember every port handed
    out so that one server's listeners never collide."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
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
