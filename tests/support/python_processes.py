"""`python -c SCRIPT` and `python -m MODULE`, run to completion in a new process, without paying
for the service's third-party imports each time.

A fresh interpreter spends about 1 s of CPU importing FastAPI, SQLAlchemy, psycopg and the rest
before the first line of the service runs, and the suite starts dozens of them. Here each
process is forked from one server per test process (multiprocessing's forkserver) that has
imported those packages once: the same ones bench/cold_start.py times as the bare imports, all
of which `import handler` loads anyway. Everything of the service itself (`handler`, `todo`, its
settings and environment, and whatever it imports lazily: Alembic, PyJWT, the SQLAlchemy
dialect, the embedded PostgreSQL) is imported in the new process, so the tests that look at
what a start loads see what a fresh interpreter would.

The new process gets the given environment, working directory and command-line arguments, a
`sys.path` built as the interpreter builds it ('' then PYTHONPATH then the installed packages),
no stdin, and its own stdout and stderr, returned as text like `subprocess.run(...,
capture_output=True, text=True)`.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOADED = ["fastapi", "sqlmodel", "psycopg", "mangum", "pydantic_settings"]

_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(PRELOADED)


def run_python(
    arguments: list[str],
    *,
    cwd: str | Path,
    env: dict[str, str],
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Like `subprocess.run([sys.executable, *arguments], cwd=cwd, env=env, capture_output=True,
    text=True, timeout=timeout, check=check)`, for `arguments` of `-c SCRIPT ...` or `-m MODULE ...`."""
    if arguments[0] not in ("-c", "-m"):
        raise ValueError(f"expected -c or -m, got {arguments[0]!r}")
    command = [sys.executable, *arguments]
    with tempfile.TemporaryDirectory(prefix="python-process-") as output:
        for name in ("stdout", "stderr"):
            (Path(output) / name).touch()
        process = _forkserver.Process(target=_run, args=(arguments, str(cwd), dict(env), output))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        stdout, stderr = ((Path(output) / name).read_text() for name in ("stdout", "stderr"))
    done = subprocess.CompletedProcess(command, process.exitcode, stdout, stderr)
    if check:
        done.check_returncode()
    return done


def _run(arguments: list[str], cwd: str, env: dict[str, str], output: str) -> None:
    """In the new process: set it up as the interpreter would, then run the script or module.
    An exit status, a SystemExit's message and an uncaught exception's traceback reach the
    parent as they would from `python` itself (multiprocessing reports the last two on stderr)."""
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(os.path.join(output, name), os.O_WRONLY), fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    installed = [path for path in sys.path if path.startswith((sys.prefix, sys.base_prefix))]
    sys.path[:] = ["", *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *installed]
    option, target, *rest = arguments
    if option == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    else:
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
