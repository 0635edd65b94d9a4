"""The pinned npm tools of package.json, installed with `npm ci` when node_modules lacks one.

`make test` runs `npm ci` first; this covers a bare `pytest` on a fresh clone or on a
node_modules older than package-lock.json. One install at a time, also across pytest-xdist
workers and the Lambda package build.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def npm_tool(name: str) -> Path:
    """The path of node_modules/.bin/<name>, installing the npm packages if it is missing."""
    tool = ROOT / "node_modules" / ".bin" / name
    (ROOT / "build").mkdir(exist_ok=True)
    with open(ROOT / "build" / ".package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tool.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=ROOT, check=True, timeout=600,
            )
    assert tool.exists(), f"npm ci did not install {name}: is it in package.json?"
    return tool
