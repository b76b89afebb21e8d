"""Starting `latentviz serve` from a test or a benchmark: a free port, waiting for the server's
health check, and its resident memory."""

import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(command: list, url: str, seconds: float, health: str = "/_stcore/health", **popen) -> subprocess.Popen:
    """Start `command` and wait until `url` answers its health check (Streamlit's; or any answer at
    `health` when that is not Streamlit's); else kill it and fail with the end of its output. The
    output goes to a file: a pipe read only on failure fills up and stalls a server that talks a lot
    over a long run."""
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = urllib.request.urlopen(f"{url}{health}", timeout=2).read()
            if answer == b"ok" or health != "/_stcore/health":
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    server.wait()
    log.seek(0)
    pytest.fail(f"{command[:3]} did not come up: " + log.read().decode()[-2000:])


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024
