"""The Lambda package and its CloudFormation template, as `osls package` writes them: built only
when missing or older than their sources (or TODO_REBUILD_PACKAGE=1), one build at a time across
pytest-xdist workers.

scripts/package.sh runs `npm ci` when needed, then `osls package`, whose plugin runs
scripts/build_lambda.py; it needs node, npm, network access to PyPI and a Python of the Lambda
runtime's version (python3.12), but no AWS credentials and no Docker.

Test modules get it through the `lambda_package` fixture (support/lambda_package_fixture.py).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from support.npm import npm_packages


ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE_DIR = ROOT / ".serverless"
ZIP_PATH = PACKAGE_DIR / "todo-api.zip"
TEMPLATE_PATH = PACKAGE_DIR / "cloudformation-template-update-stack.json"
STATE_PATH = PACKAGE_DIR / "serverless-state.json"

# Anything whose source changes makes the zip and the template stale.
BUILD_INPUTS = [
    "handler.py",
    "todo",
    "migrations",
    "requirements.txt",
    "serverless.yml",
    "package-lock.json",
    "scripts/build_lambda.py",
    "scripts/serverless_lambda_build.js",
]


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = ROOT / name
        paths = [p for p in path.rglob("*") if "__pycache__" not in p.parts] if path.is_dir() else [path]
        newest = max([newest, *(p.stat().st_mtime for p in paths if p.is_file())])
    return newest


def _is_stale() -> bool:
    return (
        os.environ.get("TODO_REBUILD_PACKAGE") == "1"
        or not ZIP_PATH.exists()
        or not TEMPLATE_PATH.exists()
        or min(ZIP_PATH.stat().st_mtime, TEMPLATE_PATH.stat().st_mtime) < _newest_input_mtime()
    )


def without_database_url(environ) -> dict:
    return {name: value for name, value in environ.items() if name != "DATABASE_URL"}


def _build_package() -> None:
    npm_packages()  # package.sh would run `npm ci` itself, but not in turn with other processes
    # Built as the README says, with no secret at hand: the template refers to it instead.
    env = without_database_url(os.environ)
    result = subprocess.run(
        [str(ROOT / "scripts" / "package.sh")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"scripts/package.sh failed:\n{result.stdout}\n{result.stderr}"


def ensure_package() -> None:
    """Build the package unless it is newer than its sources; one build at a time, also across
    pytest-xdist workers."""
    (ROOT / "build").mkdir(exist_ok=True)
    with open(ROOT / "build" / ".package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_stale():
            _build_package()
