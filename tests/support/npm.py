"""The pinned npm packages of package.json, installed once per checkout.

``make test`` does not wait for ``npm ci``: the process that owns the test run starts it in
the background (``install_in_background``) while the tests run, and the few fixtures that
need node_modules call ``npm_packages()``, which waits for that install (or runs it, if it
has not started). A lock file makes every process of the run, and any parallel run in the
same checkout, take turns, so ``npm ci`` runs once and nobody sees a half-installed tree.
"""

from __future__ import annotations

import fcntl
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Written by npm at the end of an install: what make's rule for node_modules also checks.
INSTALLED_MARKER = ROOT / "node_modules" / ".package-lock.json"
LOCK = ROOT / "build" / ".npm.lock"


def up_to_date() -> bool:
    lock_file = ROOT / "package-lock.json"
    return INSTALLED_MARKER.exists() and INSTALLED_MARKER.stat().st_mtime >= lock_file.stat().st_mtime


def npm_packages() -> None:
    """Return once node_modules matches package-lock.json, running `npm ci` if needed."""
    if up_to_date():
        return
    LOCK.parent.mkdir(exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if up_to_date():
            return
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci failed with status {done.returncode}:\n{done.stdout}\n{done.stderr}")


def install_in_background() -> threading.Thread | None:
    """Start `npm_packages()` in a thread when node_modules is missing or stale; a failure is
    left for the fixtures that need the packages to report."""
    if up_to_date():
        return None

    def install() -> None:
        try:
            npm_packages()
        except Exception:  # noqa: BLE001 (reported by the fixtures that call npm_packages())
            pass

    thread = threading.Thread(target=install, name="npm ci", daemon=True)
    thread.start()
    return thread


def npm_tool(name: str) -> Path:
    """The path of node_modules/.bin/<name>, once the pinned packages are installed."""
    npm_packages()
    tool = ROOT / "node_modules" / ".bin" / name
    assert tool.exists(), f"npm ci did not install {name}: is it in package.json?"
    return tool
