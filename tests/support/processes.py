"""Servers the tests start as processes of their own: a free port to give them, the wait until
one answers, and stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(
    process: subprocess.Popen, base_url: str, *, name: str, log_path: Path, timeout_s: float, poll_s: float = 0.2,
    request_timeout_s: float = 10,
) -> None:
    """Return once `GET /health` answers 200; fail the test, showing the server's log, if the
    process exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(base_url + "/health", timeout=request_timeout_s).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer in {timeout_s} s:\n{log_path.read_text()}")
        time.sleep(poll_s)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if the process is still there 10 s later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
