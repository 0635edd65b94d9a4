"""`python -c SCRIPT` and `python -m MODULE` in new processes, run to completion, without paying
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

import contextlib
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRELOADED = ["fastapi", "sqlmodel", "psycopg", "mangum", "pydantic_settings"]
# How long a process of `processes_at_once` may take to reach its `wait_for_go()`.
READY_TIMEOUT_S = 120

_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(PRELOADED)


class _Process:
    """One new process and the files its stdout and stderr go to."""

    def __init__(self, arguments: list[str], cwd: str | Path, env: dict[str, str], output: Path, barrier=None):
        if arguments[0] not in ("-c", "-m"):
            raise ValueError(f"expected -c or -m, got {arguments[0]!r}")
        self.command = [sys.executable, *arguments]
        self.output = output
        output.mkdir(exist_ok=True)
        for name in ("stdout", "stderr"):
            (output / name).touch()
        self.process = _forkserver.Process(target=_run, args=(arguments, str(cwd), dict(env), str(output), barrier))
        self.process.start()

    def finish(self, timeout: float) -> subprocess.CompletedProcess[str]:
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
            raise subprocess.TimeoutExpired(self.command, timeout)
        stdout, stderr = ((self.output / name).read_text() for name in ("stdout", "stderr"))
        return subprocess.CompletedProcess(self.command, self.process.exitcode, stdout, stderr)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


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
    with tempfile.TemporaryDirectory(prefix="python-process-") as output:
        done = _Process(arguments, cwd, env, Path(output)).finish(timeout)
    if check:
        done.check_returncode()
    return done


class ProcessesAtOnce:
    """Processes of one script, each paused in its `wait_for_go()` until `go()`."""

    def __init__(self, processes: list[_Process], go) -> None:
        self._processes, self._go = processes, go

    def go(self) -> None:
        self._go.set()

    def finish(self, timeout: float) -> list[subprocess.CompletedProcess[str]]:
        """How each ended, once all have."""
        return [process.finish(timeout) for process in self._processes]


@contextlib.contextmanager
def processes_at_once(
    script: str, count: int, *arguments: str, cwd: str | Path, env: dict[str, str]
) -> Iterator[ProcessesAtOnce]:
    """`count` processes of `python -c script arguments...`, yielded once each has called
    `wait_for_go()` (a name the script is given) or ended; all are killed if the caller leaves
    before they end."""
    ready, go = _forkserver.Semaphore(0), _forkserver.Event()
    with tempfile.TemporaryDirectory(prefix="python-processes-") as work:
        processes = []
        try:
            for index in range(count):
                output = Path(work) / str(index)
                processes.append(_Process(["-c", script, *arguments], cwd, env, output, (ready, go)))
            for _ in processes:
                assert ready.acquire(timeout=READY_TIMEOUT_S), f"a process was not ready in {READY_TIMEOUT_S} s"
            yield ProcessesAtOnce(processes, go)
        finally:
            for process in processes:
                process.kill()


def _run(arguments: list[str], cwd: str, env: dict[str, str], output: str, barrier) -> None:
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
    if option == "-m":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return
    sys.argv = ["-c", *rest]
    script_globals: dict[str, Any] = {"__name__": "__main__"}
    if barrier is None:
        exec(compile(target, "<string>", "exec"), script_globals)
        return
    ready, go = barrier
    waited = False

    def wait_for_go() -> None:
        nonlocal waited
        waited = True
        ready.release()
        go.wait()

    script_globals["wait_for_go"] = wait_for_go
    try:
        exec(compile(target, "<string>", "exec"), script_globals)
    finally:
        if not waited:
            ready.release()  # ended before it was ready: nobody waits for it
