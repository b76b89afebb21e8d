"""Starting `latentviz serve` from a test: a free port, and waiting for the server's health check."""

import socket
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(server, url: str, seconds: float) -> None:
    """Until `url` answers its health check; else kill `server` and fail with the end of its output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.5)
    server.kill()
    pytest.fail("latentviz serve did not come up: " + server.stdout.read().decode()[-2000:])
