"""Run by support/cold_starts.py as a process of its own:

    python cold_start_launcher.py COUNT SCRIPT [ARG ...]

Imports what a cold start of the app imports, then forks COUNT children. Each runs SCRIPT
(with ARGs as sys.argv[1:]) in a process of its own, with its stdout and stderr in files of
its own. SCRIPT calls `wait_for_go()` once it is ready: when every child has, this process
prints READY and waits for a line on stdin, then lets them all go at once. At the end it
prints one JSON line: each child's exit status, stdout and stderr.
"""

import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

# A cold start's imports, paid once here instead of once per child. Not Alembic: a child that
# migrates imports it itself, as a cold start does.
import fastapi.testclient  # noqa: F401
import todo.app  # noqa: F401
import todo.settings  # noqa: F401


def run_child(script: str, arguments: list[str], output: Path, ready_w: int, go_r: int) -> None:
    """In the forked child: run the script, and never return."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(output / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    signalled = False

    def wait_for_go() -> None:
        nonlocal signalled
        signalled = True
        os.write(ready_w, b"r")
        os.read(go_r, 1)  # one byte each, so every child gets exactly one

    status = 0
    try:
        sys.argv = ["-c", *arguments]
        exec(compile(script, "<cold start>", "exec"), {"__name__": "__main__", "wait_for_go": wait_for_go})
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if not signalled:
            os.write(ready_w, b"r")  # failed before it was ready: the launcher must not wait for it
        os._exit(status)


def main() -> None:
    count, script, arguments = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    work = Path(tempfile.mkdtemp(prefix="cold-starts-"))
    children = []
    sys.stdout.flush()
    sys.stderr.flush()
    for index in range(count):
        output = work / str(index)
        output.mkdir()
        pid = os.fork()
        if pid == 0:
            run_child(script, arguments, output, ready_w, go_r)
        children.append((pid, output))

    for _ in range(count):
        os.read(ready_r, 1)
    print("READY", flush=True)
    sys.stdin.readline()
    os.write(go_w, b"g" * count)

    results = []
    for pid, output in children:
        _, wait_status = os.waitpid(pid, 0)
        results.append(
            {
                "returncode": os.waitstatus_to_exitcode(wait_status),
                "stdout": (output / "stdout").read_text(),
                "stderr": (output / "stderr").read_text(),
            }
        )
    shutil.rmtree(work)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
