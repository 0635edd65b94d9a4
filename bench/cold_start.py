"""A Lambda cold start: import time, first and second invocation, database round trips.

    python bench/cold_start.py [--rtt-ms 10] [--repeat 5] [--database-url URL]

Creates a fresh database on the server at --database-url (dropped at the end) and puts the
project's counting TCP proxy in front of it with the chosen round-trip time. Then, --repeat
times each, it starts a fresh Python process (bench/cold_start_child.py) that

- `handler`: imports `handler` with DATABASE_URL pointing through the proxy and answers one
  API Gateway v2 create event, then a second one, timing the import and each invocation;
  the proxy's counts are reset before the process starts and read after its first answer
  (round trips from process start to first answer) and after the second (round trips of a
  warm invocation);
- `bare`: imports fastapi, sqlmodel, psycopg, mangum and pydantic_settings, the scale for
  the import time.

The tables exist before the measured runs: an unmeasured first run creates them (and warms
the file system cache, so that the runs are alike). Figures are medians over the runs.

Targets, at 10 ms RTT: the import within 1.1x the bare import; at most 10 round
trips from process start to the first answer; the second invocation within 1 round trip +
3 ms. With --importtime the cost of the project's own imports is listed as well.
"""

from __future__ import annotations

import argparse
import compileall
import faulthandler
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import (
    DEFAULT_SERVER_URL,
    ROOT,
    fresh_database,
    machine,
    server_address,
    through_proxy,
    use_repository_paths,
    verdict,
)

use_repository_paths()

from support.tcp_proxy import TcpProxy  # noqa: E402

CHILD = Path(__file__).resolve().parent / "cold_start_child.py"
CHILD_TIMEOUT_S = 60
TIME_LIMIT_S = 600
IMPORT_RATIO_TARGET = 1.1
FIRST_ANSWER_ROUND_TRIPS_TARGET = 10
SLACK_MS = 3.0
BARE_IMPORT = "import fastapi, mangum, psycopg, pydantic_settings, sqlmodel"


class Child:
    """One fresh process of cold_start_child.py, spoken to line by line."""

    def __init__(self, mode: str, database_url: str | None = None):
        env = {**os.environ, "LOG_LEVEL": "WARNING"}
        env.pop("PYTHONPATH", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), mode],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(CHILD_TIMEOUT_S)
            raise SystemExit(f"the child process ended without an answer (exit code {self.process.returncode})")
        return json.loads(line)

    def go_on(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.returncode:
            raise SystemExit(f"the child process failed (exit code {self.process.returncode})")


def run_bare() -> float:
    child = Child("bare")
    figures = child.read()
    child.finish()
    return figures["import_ms"]


def run_handler(app_url: str, proxy: TcpProxy) -> dict:
    proxy.reset_counts()
    child = Child("handler", app_url)
    first = child.read()
    process_to_answer_ms = (time.perf_counter() - child.started) * 1000
    cold = proxy.stats()
    proxy.reset_counts()
    child.go_on()
    second = child.read()
    warm = proxy.stats()
    child.finish()
    for key in ("first_status", "second_status"):
        status = first.get(key, second.get(key))
        if status != 201:
            raise SystemExit(f"a create answered {status}, not 201")
    return {
        **first,
        **second,
        "process_to_answer_ms": process_to_answer_ms,
        "cold_round_trips": cold["flights"],
        "cold_connections": cold["connections_opened"],
        "warm_round_trips": warm["flights"],
        "warm_connections": warm["connections_opened"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=10.0, help="added network round-trip time (default 10)")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes of each kind (default 5)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL, help="a PostgreSQL server (any database on it)")
    parser.add_argument("--importtime", action="store_true", help="also list what the project's imports cost")
    args = parser.parse_args()
    faulthandler.dump_traceback_later(TIME_LIMIT_S, exit=True)  # never hang
    compile_project()

    with fresh_database(args.database_url) as database_url, TcpProxy(
        target=server_address(args.database_url), delay_ms=args.rtt_ms / 2
    ) as proxy:
        app_url = through_proxy(database_url, proxy.port)
        run_handler(app_url, proxy)  # creates the tables (the migrations' schema); not measured
        run_bare()
        bare, runs = [], []
        for _ in range(args.repeat):
            bare.append(run_bare())
            runs.append(run_handler(app_url, proxy))
    ok = report(args, bare, runs)
    if args.importtime:
        print_import_costs()
    return 0 if ok else 1


def compile_project() -> None:
    """Byte-compile the service first, as its Lambda package ships it: the libraries of the bare
    import are compiled when installed, and with PYTHONDONTWRITEBYTECODE set (as on some
    machines) the service would otherwise be compiled anew in every measured process."""
    compileall.compile_dir(ROOT / "todo", quiet=1)
    compileall.compile_file(ROOT / "handler.py", quiet=1)


def report(args: argparse.Namespace, bare: list[float], runs: list[dict]) -> bool:
    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    def spread(values: list[float]) -> str:
        return f"{min(values):.0f}-{max(values):.0f}"

    bare_ms = statistics.median(bare)
    import_ms = median("import_ms")
    ratio = import_ms / bare_ms
    # Noise only ever adds: on a busy machine the fastest runs say more about the code.
    fastest_ratio = min(run["import_ms"] for run in runs) / min(bare)
    cold_trips = [run["cold_round_trips"] for run in runs]
    warm_trips = [run["warm_round_trips"] for run in runs]
    second_ms = median("second_ms")
    second_limit = args.rtt_ms + SLACK_MS

    import_ok = ratio <= IMPORT_RATIO_TARGET
    cold_ok = max(cold_trips) <= FIRST_ANSWER_ROUND_TRIPS_TARGET and not any(run["alembic_loaded"] for run in runs)
    warm_ok = max(warm_trips) <= 1 and second_ms <= second_limit

    print(
        f"Cold start: {args.repeat} fresh processes of each kind, {args.rtt_ms:g} ms added RTT, "
        f"one API Gateway v2 create per invocation, tables already there (medians; range in brackets)"
    )
    print(f"Machine: {machine()}")
    print()
    rows = [
        ("bare import (fastapi, sqlmodel, psycopg, mangum, pydantic_settings)", f"{bare_ms:.0f} ms [{spread(bare)}]", ""),
        (
            "import handler",
            f"{import_ms:.0f} ms [{spread([r['import_ms'] for r in runs])}]",
            f"{ratio:.2f}x bare (fastest runs: {fastest_ratio:.2f}x), target <= {IMPORT_RATIO_TARGET}x: "
            f"{verdict(import_ok)}",
        ),
        ("first invocation", f"{median('first_ms'):.1f} ms [{spread([r['first_ms'] for r in runs])}]", ""),
        (
            "round trips, process start to first answer",
            f"{statistics.median(cold_trips):g} [{min(cold_trips)}-{max(cold_trips)}]",
            f"target <= {FIRST_ANSWER_ROUND_TRIPS_TARGET}: {verdict(cold_ok)}",
        ),
        ("  of which connections opened", f"{median('cold_connections'):g}", ""),
        (
            "processes that imported Alembic (schema current)",
            f"{sum(run['alembic_loaded'] for run in runs)} of {len(runs)}",
            f"target 0: {verdict(not any(run['alembic_loaded'] for run in runs))}",
        ),
        ("process start to first answer (wall)", f"{median('process_to_answer_ms'):.0f} ms", ""),
        (
            "second invocation",
            f"{second_ms:.1f} ms [{spread([r['second_ms'] for r in runs])}]",
            f"target <= {second_limit:g} ms: {verdict(second_ms <= second_limit)}",
        ),
        (
            "  its round trips",
            f"{statistics.median(warm_trips):g} [{min(warm_trips)}-{max(warm_trips)}]",
            f"target <= 1: {verdict(max(warm_trips) <= 1)}",
        ),
    ]
    for label, value, target in rows:
        print(f"{label:<70} {value:>18}  {target}")
    print()
    all_ok = import_ok and cold_ok and warm_ok
    print(f"Targets met: {verdict(all_ok)}")
    return all_ok


def import_times(code: str) -> dict[str, tuple[int, int]]:
    """`python -X importtime -c code`: module -> (self, cumulative) in microseconds."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=True,
    )
    modules = {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            self_us, cumulative_us, name = line[len("import time:") :].split("|")
            modules[name.strip()] = (int(self_us), int(cumulative_us))
    return modules


def print_import_costs(top: int = 15) -> None:
    """What `import handler` loads beyond the bare import, and what each of those costs."""
    bare = import_times(BARE_IMPORT)
    handler = import_times("import handler")
    extra = {name: times for name, times in handler.items() if name not in bare}
    print()
    print(
        f"python -X importtime, one run each: the bare import loads {len(bare)} modules "
        f"({sum(t[0] for t in bare.values()) / 1000:.0f} ms of their own time); `import handler` loads "
        f"{len(extra)} more ({sum(t[0] for t in extra.values()) / 1000:.0f} ms). The costliest of those "
        "(self ms, cumulative ms; a module's self time includes its top-level code, such as create_app() in handler):"
    )
    for name, (self_us, cumulative_us) in sorted(extra.items(), key=lambda item: -item[1][0])[:top]:
        print(f"  {self_us / 1000:7.1f} {cumulative_us / 1000:8.1f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
