"""The load run: many users on uvicorn with several workers on PostgreSQL, then a check that
the database holds every write the service acknowledged.

    python loadtest/run.py [--seconds 60] [--users 50] [--workers 4] [--pool-size 5]

Loopback only, bounded in time (--seconds) and in requests (--max-requests). The PostgreSQL
server is found as the tests find it (TEST_DATABASE_URL, or --server-url, else Docker, else a
throwaway local server); a fresh database is created for the run and dropped at the end.

Each simulated user has a user id of its own and works sequentially (create 30 %, list 30 %,
get 15 %, update 10 %, complete 10 %, delete 5 %), so the last acknowledged value of each of its
tasks is well defined. Reads are checked against what the user was told (read your writes);
at the end the tasks table is read directly and compared with every acknowledged write.

Exit status 1 on any 5xx, failed request, lost or wrong write, or read that disagrees.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.common import machine, percentile  # noqa: E402

MIX = {"create": 30, "list": 30, "get": 15, "update": 10, "complete": 10, "delete": 5}
LIST_PAGE = 20  # what a client shows at once
WORDS = (
    "buy milk call mum fix bike write report pay rent book flight water plants renew passport "
    "café naïve 日本語 emoji 🚀 ünïcödé review PR deploy backup clean desk"
).split()


@dataclass
class Known:
    """What the service last acknowledged about one task."""

    title: str
    description: str | None
    completed: bool = False


@dataclass
class UserLog:
    user_id: str
    tasks: dict[str, Known] = field(default_factory=dict)  # acknowledged and not deleted
    deleted: set[str] = field(default_factory=set)  # acknowledged deletes
    uncertain: set[str] = field(default_factory=set)  # a write to it was not answered
    uncertain_creates: int = 0  # creates that got no answer: a row may or may not exist
    problems: list[str] = field(default_factory=list)
    acknowledged: collections.Counter = field(default_factory=collections.Counter)  # writes by kind


@dataclass
class Totals:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter = field(default_factory=collections.Counter)
    failures: collections.Counter = field(default_factory=collections.Counter)

    def take_ticket(self, limit: int) -> bool:
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def record(self, operation: str, seconds: float, status: int | None, failure: str | None = None) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            if status is not None:
                self.statuses[status] += 1
            if failure is not None:
                self.failures[failure] += 1


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def simulate_user(base_url: str, log: UserLog, totals: Totals, stop: threading.Event, limit: int, seed: int) -> None:
    import httpx

    rng = random.Random(seed)
    operations, weights = zip(*MIX.items())
    tasks_path = f"/api/{log.user_id}/tasks"
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set() and totals.take_ticket(limit):
            operation = rng.choices(operations, weights)[0]
            live = [task_id for task_id in log.tasks if task_id not in log.uncertain]
            if operation in ("get", "update", "complete", "delete") and not live:
                operation = "create"
            task_id = rng.choice(live) if operation in ("get", "update", "complete", "delete") else None
            title, description = text(rng, rng.randint(1, 5)), rng.choice([None, text(rng, rng.randint(0, 30))])
            completed = rng.random() < 0.5
            if operation == "create":
                request = ("POST", tasks_path, {"title": title, "description": description})
            elif operation == "list":
                request = ("GET", f"{tasks_path}?limit={LIST_PAGE}", None)
            elif operation == "get":
                request = ("GET", f"{tasks_path}/{task_id}", None)
            elif operation == "update":
                request = ("PUT", f"{tasks_path}/{task_id}", {"title": title, "description": description})
            elif operation == "complete":
                request = ("PATCH", f"{tasks_path}/{task_id}/complete", {"completed": completed})
            else:
                request = ("DELETE", f"{tasks_path}/{task_id}", None)
            method, url, body = request
            started = time.perf_counter()
            try:
                response = client.request(method, url, json=body)
            except httpx.HTTPError as exc:
                totals.record(operation, time.perf_counter() - started, None, type(exc).__name__)
                if operation == "create":
                    log.uncertain_creates += 1
                elif task_id is not None:
                    log.uncertain.add(task_id)
                continue
            totals.record(operation, time.perf_counter() - started, response.status_code)
            _learn(log, operation, task_id, response, title, description, completed)


def _learn(log: UserLog, operation: str, task_id, response, title, description, completed) -> None:
    """Take in an answer: remember acknowledged writes, check reads against them."""
    status = response.status_code
    expected = {"create": 201, "list": 200, "get": 200, "update": 200, "complete": 200, "delete": 204}[operation]
    if status != expected:
        if status >= 500 and operation == "create":
            log.uncertain_creates += 1
        elif status >= 500 and task_id is not None:
            log.uncertain.add(task_id)
        log.problems.append(f"{operation} {task_id or ''} answered {status}: {response.text[:200]}")
        return
    if operation not in ("list", "get"):
        log.acknowledged[operation] += 1
    if operation == "create":
        created = response.json()
        log.tasks[created["id"]] = Known(title, description)
        if (created["title"], created["description"], created["completed"]) != (title, description, False):
            log.problems.append(f"create answered {created}, sent {(title, description)}")
    elif operation == "update":
        log.tasks[task_id].title, log.tasks[task_id].description = title, description
    elif operation == "complete":
        log.tasks[task_id].completed = completed
    elif operation == "delete":
        del log.tasks[task_id]
        log.deleted.add(task_id)
    if operation in ("update", "complete", "get"):
        got = response.json()
        known = log.tasks[task_id]
        if (got["title"], got["description"], got["completed"]) != (known.title, known.description, known.completed):
            log.problems.append(f"{operation} {task_id} answered {got}, last acknowledged {known}")
    if operation == "list":
        listed = {task["id"] for task in response.json()}
        total = int(response.headers["x-total-count"])
        if total != len(log.tasks) or not listed <= set(log.tasks):
            log.problems.append(f"list: {total} tasks, {len(listed)} listed; acknowledged {len(log.tasks)}")


def check_database(database_url: str, logs: list[UserLog]) -> tuple[int, int, list[str]]:
    """Compare the tasks table with every acknowledged write. Returns (checked, bad, details)."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT id::text, user_id::text, title, description, completed FROM tasks WHERE user_id = ANY(%s::uuid[])",
            ([log.user_id for log in logs],),
        ).fetchall()
    stored = {row[0]: row[1:] for row in rows}
    checked, details = 0, []
    for log in logs:
        for task_id, known in log.tasks.items():
            checked += 1
            if task_id in log.uncertain:
                continue
            row = stored.get(task_id)
            if row is None:
                details.append(f"lost: acknowledged task {task_id} of {log.user_id} is not in the database")
            elif row != (log.user_id, known.title, known.description, known.completed):
                details.append(f"wrong: {task_id} holds {row}, last acknowledged {known}")
        for task_id in log.deleted:
            checked += 1
            if task_id in stored:
                details.append(f"resurrected: {task_id} was acknowledged deleted and is still there")
        owned = {task_id for task_id, row in stored.items() if row[0] == log.user_id}
        unexplained = owned - set(log.tasks) - log.uncertain
        if len(unexplained) > log.uncertain_creates:
            details.append(f"phantom: {len(unexplained)} rows of {log.user_id} that no acknowledged create made")
    return checked, len(details), details


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database_url: str, args, log_file) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DB_POOL_SIZE": str(args.pool_size),
        "LOG_LEVEL": args.log_level,
    }
    if args.plain_uvicorn:
        command = [
            sys.executable, "-m", "uvicorn", "handler:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers), "--no-server-header", "--no-access-log",
        ]  # fmt: skip
    else:
        command = [sys.executable, str(ROOT / "loadtest" / "serve.py"), "--port", str(port), "--workers", str(args.workers)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    _wait_until_healthy(server, base_url)
    return server, base_url


def _wait_until_healthy(server: subprocess.Popen, base_url: str, seconds: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited with status {server.returncode} before it answered")
        try:
            if httpx.get(base_url + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("uvicorn did not answer /health in time")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run(args) -> int:
    from support.postgres import ENV_VAR, choose_server, fresh_database, postgres_server

    if args.server_url:
        os.environ[ENV_VAR] = args.server_url
    choice = choose_server()
    print(f"PostgreSQL: {choice.description}")
    print(f"machine: {machine()}")
    with postgres_server(choice) as server, fresh_database(server) as url, tempfile.TemporaryFile() as server_log:
        database_url = url.render_as_string(hide_password=False)
        uvicorn, base_url = start_server(database_url, args, server_log)
        try:
            logs = [UserLog(str(uuid.uuid4())) for _ in range(args.users)]
            totals = Totals()
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=simulate_user, args=(base_url, log, totals, stop, args.max_requests, args.seed + i), daemon=True
                )
                for i, log in enumerate(logs)
            ]
            print(
                f"{args.users} users for {args.seconds:g} s (at most {args.max_requests} requests) on uvicorn "
                f"({'command line, no TCP_NODELAY' if args.plain_uvicorn else 'loadtest/serve.py, TCP_NODELAY'}), "
                f"{args.workers} workers, pool {args.pool_size} + {args.pool_size} per worker, at {base_url}"
            )
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            stop.wait(args.seconds)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            elapsed = time.perf_counter() - started
        finally:
            stop_server(uvicorn)
        server_log.seek(0)
        server_errors = [line for line in server_log.read().decode(errors="replace").splitlines() if '"ERROR"' in line or "Traceback" in line]
        checked, bad, details = check_database(database_url, logs)
    return report(args, totals, logs, elapsed, checked, bad, details, server_errors)


def report(args, totals: Totals, logs, elapsed, checked, bad, details, server_errors) -> int:
    everything = [seconds for values in totals.latencies.values() for seconds in values]
    answered = sum(totals.statuses.values())
    server_5xx = sum(count for status, count in totals.statuses.items() if status >= 500)
    failed = sum(totals.failures.values())
    read_problems = [problem for log in logs for problem in log.problems]

    def ms(values: list[float], fraction: float) -> str:
        return f"{percentile(values, fraction) * 1000:7.1f}"

    print()
    print(f"requests: {len(everything)} in {elapsed:.1f} s = {len(everything) / elapsed:.0f} req/s")
    print(f"{'operation':<10} {'count':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for operation in [*MIX, "all"]:
        values = everything if operation == "all" else totals.latencies.get(operation, [])
        if values:
            print(f"{operation:<10} {len(values):>7} {ms(values, 0.50)} {ms(values, 0.95)} {ms(values, 0.99)}")
    print(f"statuses: {dict(sorted(totals.statuses.items()))} ({answered} answered)")
    print(f"5xx: {server_5xx}   requests without an answer: {failed} {dict(totals.failures) or ''}")
    print(f"reads that disagreed with acknowledged writes or unexpected statuses: {len(read_problems)}")
    for problem in read_problems[:10]:
        print("   ", problem)
    writes = sum((log.acknowledged for log in logs), collections.Counter())
    tasks_left = sum(len(log.tasks) for log in logs)
    print(f"acknowledged writes: {dict(writes)}")
    print(
        f"database check: {checked} tasks ({tasks_left} with their last acknowledged values, "
        f"{writes['delete']} acknowledged deleted): {bad} lost or wrong"
    )
    for detail in details[:10]:
        print("   ", detail)
    print(f"error lines in the server log: {len(server_errors)}")
    for line in server_errors[:5]:
        print("   ", line[:300])
    ok = not (server_5xx or failed or read_problems or bad or server_errors)
    print("verdict:", "pass" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the users work (default 60)")
    parser.add_argument("--users", type=int, default=50, help="simulated users, one thread each (default 50)")
    parser.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn worker processes (default 4)")
    parser.add_argument("--pool-size", type=int, default=5, help="DB_POOL_SIZE of each worker (default 5)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the service (default INFO: access log on)")
    parser.add_argument(
        "--plain-uvicorn",
        action="store_true",
        help="start the uvicorn command line as it is, without TCP_NODELAY (see loadtest/serve.py)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the users' choices")
    parser.add_argument("--server-url", help="a PostgreSQL server to use (else as the tests find one)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600 or not 1 <= args.users <= 1000:
        parser.error("--seconds must be 1..3600 and --users 1..1000")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
