"""Cold starts that meet at the database at the same moment: several processes of the app,
each with its own app, pool and connections, as on separate Lambda containers.

They are forked from one launcher process (support/cold_start_launcher.py) that has imported
the app's modules: a fresh process per cold start would spend about 1 s of CPU on the same
imports, and these tests are about what the processes do at the database, not about imports.
The script each runs calls `wait_for_go()` once its app is built; `go()` lets them all run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LAUNCHER = Path(__file__).with_name("cold_start_launcher.py")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class ColdStarts:
    def __init__(self, launcher: subprocess.Popen) -> None:
        self._launcher = launcher

    def go(self) -> None:
        self._launcher.stdin.write("go\n")
        self._launcher.stdin.flush()

    def finish(self, timeout: float) -> list[Finished]:
        """Each process's exit status and output, once all have ended."""
        stdout, stderr = self._launcher.communicate(timeout=timeout)
        assert self._launcher.returncode == 0 and stdout.strip(), f"the launcher failed:\n{stdout}\n{stderr}"
        return [Finished(**result) for result in json.loads(stdout.strip().splitlines()[-1])]


@contextlib.contextmanager
def cold_starts(script: str, count: int, *arguments: str) -> Iterator[ColdStarts]:
    """`count` processes running `script` with `arguments` as sys.argv[1:], each stopped at its
    `wait_for_go()` when this yields; all are killed if the test leaves before they end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("DATABASE_URL", None)
    launcher = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(count), script, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,  # the launcher and its children: one group to kill
    )
    try:
        line = launcher.stdout.readline()
        assert line.strip() == "READY", f"the cold starts did not start: {line!r} {launcher.stderr.read()}"
        yield ColdStarts(launcher)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
