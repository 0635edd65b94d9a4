"""Cold starts that meet at the database at the same moment: several processes of the app,
each with its own app, pool and connections, as on separate Lambda containers.

The script each runs (support/python_processes.py, `processes_at_once`) builds its app, then
calls `wait_for_go()`; `go()` lets them all run at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from support.python_processes import ProcessesAtOnce, processes_at_once

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@contextlib.contextmanager
def cold_starts(script: str, count: int, *arguments: str) -> Iterator[ProcessesAtOnce]:
    """`count` processes of `script`, from the repository, with no DATABASE_URL of the test run's."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("DATABASE_URL", None)
    with processes_at_once(script, count, *arguments, cwd=REPO_ROOT, env=env) as processes:
        yield processes
