"""The service's own cost per call, beside the floor's (bench/floor_app.py), measured in one run.

    python bench/vs_floor.py [--calls 300] [--http-calls 40] [--rtt-ms 10] [--repeat 3] [--database-url URL]
                             [--only cpu,uvicorn,first,snapstart]

Creates a fresh database (dropped at the end) and measures, service and floor interleaved
call by call in the same harness:

cpu        Process CPU per call through the Lambda entry point (`handler.handler`) and through
           the floor's Mangum handler, in this process, with API Gateway v2 events and a direct
           local connection: per endpoint the median over --calls calls, the better of two
           interleaved runs. Target: at most 1.3x the floor. For scale, also the floor whose
           routes declare their path parameters (what FastAPI's parsing of them costs).
uvicorn    Latency per call under uvicorn (one process each, the project's TCP proxy adding
           --rtt-ms of round trip to the database), over HTTP keep-alive, median of --http-calls
           per endpoint, the better of two runs. Beside the floor whose routes call psycopg inline
           in `async def`, the same floor with `anyio.to_thread` and with `def` routes (FastAPI's
           thread pool). Target: within the inline floor + 1 ms.
first      Fresh processes (bench/first_request_child.py), --repeat of each, medians: the CPU of
           the first request (a create) beyond its warm cost and beyond one connect; the first
           use of each other endpoint against its warm cost. Targets: at most 30 ms; at most 2x.
snapstart  Fresh processes that import the handler as SnapStart's init phase does, run the
           after-restore hooks, then answer: the first request after the restore against a warm
           one. Target: within 1.2x a warm request plus the round trips of a reconnect.

Process CPU is the figure to compare: absolute times on a shared machine vary from day to day,
ratios to a floor measured in the same run much less. Exit code 0 when every target is met.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from common import (
    DEFAULT_SERVER_URL,
    ROOT,
    api_gateway_v2_event,
    fresh_database,
    lambda_context,
    machine,
    server_address,
    through_proxy,
    use_repository_paths,
    verdict,
)

use_repository_paths()

from floor_app import create_floor_app, create_floor_table  # noqa: E402
from support.tcp_proxy import TcpProxy  # noqa: E402

BENCH = Path(__file__).resolve().parent
CHILD = BENCH / "first_request_child.py"
TIME_LIMIT_S = 900
CPU_RATIO_TARGET = 1.3
UVICORN_SLACK_MS = 1.0
ONE_TIME_TARGET_MS = 30.0
FIRST_USE_RATIO_TARGET = 2.0
RESTORE_RATIO_TARGET = 1.2
ENDPOINTS = ("create", "list", "get", "put", "patch", "delete")
FLOOR_MODES = ("inline", "to_thread", "threadpool")


class Calls:
    """The requests of one endpoint: (method, path, body, expected status) for the i-th call,
    on tasks that the create calls made (one user) and on a user with exactly one task."""

    def __init__(self) -> None:
        self.user = str(uuid.uuid4())
        self.list_user = str(uuid.uuid4())
        self.ids: list[str] = []

    def request(self, endpoint: str, i: int) -> tuple[str, str, object, int]:
        base = f"/api/{self.user}/tasks"
        if endpoint == "create":
            return "POST", base, {"title": f"task {i}", "description": "bench"}, 201
        if endpoint == "list":
            return "GET", f"/api/{self.list_user}/tasks", None, 200
        path = f"{base}/{self.ids[i]}"
        return {
            "get": ("GET", path, None, 200),
            "put": ("PUT", path, {"title": f"task {i} renamed", "description": "again"}, 200),
            "patch": ("PATCH", f"{path}/complete", {"completed": True}, 200),
            "delete": ("DELETE", path, None, 204),
        }[endpoint]


# --- cpu: through the Lambda handlers, in this process ----------------------------------------


def lambda_handlers(database_url: str) -> tuple[Callable, Callable, Callable]:
    """(service, floor, floor with path parameters): the deployed entry point and the floors
    behind Mangum, in this process. The service's log lines are written, as in production,
    but to /dev/null."""
    from mangum import Mangum

    os.environ["DATABASE_URL"] = database_url
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 (kept for the run)
    try:
        import handler
    finally:
        sys.stdout = stdout
    floor_url = database_url.replace("postgresql+psycopg://", "postgresql://")
    create_floor_table(floor_url)
    floor = Mangum(create_floor_app(floor_url), lifespan="off")
    typed_floor = Mangum(create_floor_app(floor_url, path_params=True), lifespan="off")
    return handler.handler, floor, typed_floor


def cpu_per_call(handlers: dict[str, Callable], calls_per_endpoint: int) -> dict[str, dict[str, float]]:
    """Median process CPU (ms) per call of each endpoint on each handler (the first is the
    service), interleaved call by call."""

    def invoke(handler: Callable, method: str, path: str, body: object, status: int) -> tuple[float, dict]:
        event = api_gateway_v2_event(method, path, body)
        context = lambda_context()
        started = time.process_time()
        response = handler(event, context)
        cpu_ms = (time.process_time() - started) * 1000
        if response["statusCode"] != status:
            raise SystemExit(f"{method} {path}: expected {status}, got {response}")
        return cpu_ms, response

    names = list(handlers)
    calls = Calls()
    invoke(handlers["service"], "POST", f"/api/{calls.list_user}/tasks", {"title": "the one task"}, 201)
    figures: dict[str, dict[str, float]] = {}
    for endpoint in ENDPOINTS:
        samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(calls_per_endpoint):
            request = calls.request(endpoint, i)
            # Rotate who goes first, so that none always finds the caches another left.
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                cpu_ms, response = invoke(handlers[name], *request)
                samples[name].append(cpu_ms)
                if name == "service" and endpoint == "create":
                    calls.ids.append(json.loads(response["body"])["id"])
        figures[endpoint] = {name: statistics.median(values) for name, values in samples.items()}
    return figures


def best_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        endpoint: {who: min(run[endpoint][who] for run in runs) for who in runs[0][endpoint]}
        for endpoint in runs[0]
    }


# --- uvicorn: latency over HTTP, with network delay to the database -----------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(app: str, env: dict[str, str]) -> Iterator[http.client.HTTPConnection]:
    """A uvicorn process serving `app`; yields a keep-alive connection to it."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(BENCH), "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--no-server-header", "--timeout-keep-alive", "600"]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/health")
                connection.getresponse().read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"uvicorn {app} did not start: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.1)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield connection
        connection.close()
    finally:
        process.terminate()
        process.wait(10)


def http_call(connection: http.client.HTTPConnection, method: str, path: str, body: object, status: int) -> tuple:
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    started = time.perf_counter()
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    elapsed_ms = (time.perf_counter() - started) * 1000
    if response.status != status:
        raise SystemExit(f"{method} {path}: expected {status}, got {response.status} {data[:300]!r}")
    return elapsed_ms, data


def latency_per_call(servers: dict[str, http.client.HTTPConnection], calls_per_endpoint: int) -> dict:
    """Median latency (ms) per call of each endpoint on each server, interleaved call by call."""
    calls = Calls()
    http_call(servers["service"], "POST", f"/api/{calls.list_user}/tasks", {"title": "the one task"}, 201)
    names = list(servers)
    figures: dict[str, dict[str, float]] = {}
    for endpoint in ENDPOINTS:
        samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(calls_per_endpoint):
            request = calls.request(endpoint, i)
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed_ms, data = http_call(servers[name], *request)
                samples[name].append(elapsed_ms)
                if name == "service" and endpoint == "create":
                    calls.ids.append(json.loads(data)["id"])
        figures[endpoint] = {name: statistics.median(values) for name, values in samples.items()}
    return figures


def measure_uvicorn(database_url: str, proxy: TcpProxy, calls_per_endpoint: int) -> dict:
    app_url = through_proxy(database_url, proxy.port)
    floor_url = app_url.replace("postgresql+psycopg://", "postgresql://")
    with contextlib.ExitStack() as stack:
        servers = {"service": stack.enter_context(uvicorn_server("handler:app", {"DATABASE_URL": app_url}))}
        for mode in FLOOR_MODES:
            env = {"FLOOR_DATABASE_URL": floor_url, "FLOOR_MODE": mode}
            servers[f"floor {mode}"] = stack.enter_context(uvicorn_server("floor_app:app", env))
        latency_per_call(servers, 10)  # warm-up
        return best_of([latency_per_call(servers, calls_per_endpoint) for _ in range(2)])


# --- first requests of fresh processes ---------------------------------------------------------


def child(mode: str, env: dict[str, str]) -> subprocess.Popen:
    environment = {**os.environ, **env}
    environment.pop("PYTHONPATH", None)
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode], cwd=ROOT, env=environment, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )


def read_line(process: subprocess.Popen) -> dict:
    line = process.stdout.readline()
    if not line:
        process.wait(60)
        raise SystemExit(f"a fresh process ended without an answer (exit code {process.returncode})")
    return json.loads(line)


def finish(process: subprocess.Popen) -> None:
    process.stdin.close()
    process.wait(60)
    if process.returncode:
        raise SystemExit(f"a fresh process failed (exit code {process.returncode})")


def first_requests(mode: str, env: dict[str, str]) -> dict:
    process = child(mode, env)
    figures = read_line(process)
    finish(process)
    return figures


def reconnect_cost(database_url: str, proxy: TcpProxy) -> tuple[int, float]:
    """Round trips and median wall time (ms) of opening one connection through the proxy, as
    a container restored from a snapshot must: it includes the server starting a backend."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    times = []
    for _ in range(5):
        time.sleep(0.05)  # the goodbye of the previous connection passes the proxy first
        proxy.reset_counts()
        started = time.perf_counter()
        connection = psycopg.connect(url, connect_timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        flights = proxy.stats()["flights"]
        connection.close()
    return flights, statistics.median(times)


def snapstart_run(app_url: str, proxy: TcpProxy) -> dict:
    process = child("snapstart", {"DATABASE_URL": app_url})
    figures = read_line(process)
    process.stdin.write("\n")  # run the after-restore hooks
    process.stdin.flush()
    figures |= read_line(process)
    time.sleep(0.1)  # the proxy passes on, late, the goodbye of a connection a hook closed
    proxy.reset_counts()
    process.stdin.write("\n")
    process.stdin.flush()
    figures |= read_line(process)
    figures["first_round_trips"] = proxy.stats()["flights"]
    proxy.reset_counts()
    process.stdin.write("\n")
    process.stdin.flush()
    figures |= read_line(process)
    figures["second_round_trips"] = proxy.stats()["flights"]
    process.stdin.write("\n")
    process.stdin.flush()
    figures |= read_line(process)
    finish(process)
    return figures


def median_of(runs: list[dict], *keys: str) -> float:
    def pick(run: dict) -> float:
        for key in keys:
            run = run[key]
        return run

    return statistics.median(pick(run) for run in runs)


# --- report -----------------------------------------------------------------------------------


def print_cpu(figures: dict, calls: int) -> bool:
    print(f"[cpu] Process CPU per call through the Lambda handler (median of {calls} calls, better of 2 runs)")
    print(
        f"  {'endpoint':<10} {'service ms':>10} {'floor ms':>9} {'ratio':>6}  target <= {CPU_RATIO_TARGET}x"
        f"   {'floor with UUID path params ms':>30} {'ratio':>6}"
    )
    ok = True
    for endpoint, row in figures.items():
        ratio = row["service"] / row["floor"]
        ok &= ratio <= CPU_RATIO_TARGET
        print(
            f"  {endpoint:<10} {row['service']:>10.3f} {row['floor']:>9.3f} {ratio:>5.2f}x  "
            f"{verdict(ratio <= CPU_RATIO_TARGET):<14} {row['typed floor']:>30.3f} "
            f"{row['service'] / row['typed floor']:>5.2f}x"
        )
    return ok


def print_uvicorn(figures: dict, calls: int, rtt_ms: float) -> bool:
    print(
        f"[uvicorn] Latency per call under uvicorn, {rtt_ms:g} ms added RTT to the database "
        f"(median of {calls} calls, better of 2 runs)"
    )
    modes = [f"floor {mode}" for mode in FLOOR_MODES]
    print(
        f"  {'endpoint':<10} {'service ms':>10} " + " ".join(f"{m:>16}" for m in modes)
        + f" {'service - floor inline':>23}  target <= +{UVICORN_SLACK_MS:g} ms"
    )
    ok = True
    for endpoint, row in figures.items():
        over = row["service"] - row["floor inline"]
        ok &= over <= UVICORN_SLACK_MS
        print(
            f"  {endpoint:<10} {row['service']:>10.2f} " + " ".join(f"{row[m]:>16.2f}" for m in modes)
            + f" {over:>+20.2f} ms  {verdict(over <= UVICORN_SLACK_MS)}"
        )
    return ok


def print_first(service_runs: list[dict], floor_runs: list[dict]) -> bool:
    print(
        f"[first] The first requests of a fresh process (process CPU ms, medians of {len(service_runs)} processes)"
    )

    def one_time(runs: list[dict]) -> float:
        return statistics.median(
            run["first_cpu_ms"] - run["warm"]["create"]["cpu"] - run["connect_cpu_ms"] for run in runs
        )

    service_one_time, floor_one_time = one_time(service_runs), one_time(floor_runs)
    ok = service_one_time <= ONE_TIME_TARGET_MS
    print(f"  {'':<34} {'service':>9} {'floor':>9}")
    rows = [
        ("import", ("import_cpu_ms",), 1),
        ("first request (a create)", ("first_cpu_ms",), 1),
        ("  of which one connect", ("connect_cpu_ms",), 1),
        ("  and a warm create", ("warm", "create", "cpu"), 2),
    ]
    for label, keys, digits in rows:
        service_ms, floor_ms = median_of(service_runs, *keys), median_of(floor_runs, *keys)
        print(f"  {label:<34} {service_ms:>9.{digits}f} {floor_ms:>9.{digits}f}")
    print(
        f"  {'  one-time work beyond those':<34} {service_one_time:>9.1f} {floor_one_time:>9.1f}  "
        f"target <= {ONE_TIME_TARGET_MS:g} ms: {verdict(ok)}"
    )
    print(
        "  first use of each other endpoint: CPU ms, and the ratio to its warm cost "
        f"(target <= {FIRST_USE_RATIO_TARGET:g}x)"
    )
    print(
        f"  {'endpoint':<10} {'service first':>13} {'warm':>6} {'ratio':>6} {'floor first':>12} {'warm':>6} "
        f"{'ratio':>6}"
    )
    for endpoint in ENDPOINTS[1:]:
        s_first = median_of(service_runs, "first_use", endpoint, 0)
        s_warm = median_of(service_runs, "warm", endpoint, "cpu")
        f_first = median_of(floor_runs, "first_use", endpoint, 0)
        f_warm = median_of(floor_runs, "warm", endpoint, "cpu")
        ratio = s_first / s_warm
        ok &= ratio <= FIRST_USE_RATIO_TARGET
        print(
            f"  {endpoint:<10} {s_first:>13.2f} {s_warm:>6.2f} {ratio:>5.2f}x {f_first:>12.2f} {f_warm:>6.2f} "
            f"{f_first / f_warm:>5.2f}x  {verdict(ratio <= FIRST_USE_RATIO_TARGET)}"
        )
    return ok


def print_snapstart(runs: list[dict], floor_runs: list[dict], reconnect: tuple[int, float], rtt_ms: float) -> bool:
    print(
        f"[snapstart] Init with AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, after-restore hooks run, then the "
        f"first request (a create), {rtt_ms:g} ms added RTT (medians of {len(runs)} processes)"
    )
    first_wall, warm_wall = median_of(runs, "first_wall_ms"), median_of(runs, "warm", "create", "wall")
    first_cpu, warm_cpu = median_of(runs, "first_cpu_ms"), median_of(runs, "warm", "create", "cpu")
    first_trips, second_trips = median_of(runs, "first_round_trips"), median_of(runs, "second_round_trips")
    reconnect_trips, reconnect_ms = reconnect
    limit = RESTORE_RATIO_TARGET * warm_wall + reconnect_ms
    ok = first_wall <= limit
    print(f"  init (import, with any priming): {median_of(runs, 'init_cpu_ms'):.1f} ms CPU")
    print(
        f"  first request after restore: {first_wall:.1f} ms, {first_trips:g} round trips; warm create "
        f"{warm_wall:.1f} ms, {second_trips:g} round trip(s); target <= {RESTORE_RATIO_TARGET}x warm + "
        f"a reconnect ({reconnect_trips} round trips, {reconnect_ms:.1f} ms) = {limit:.1f} ms: {verdict(ok)}"
    )
    connect = median_of(runs, "connect_cpu_ms")
    print(
        f"  CPU: first after restore {first_cpu:.2f} ms = {(first_cpu - connect) / warm_cpu:.2f}x a warm create "
        f"({warm_cpu:.2f} ms; floor {median_of(floor_runs, 'warm', 'create', 'cpu'):.2f} ms) beyond one connect "
        f"({connect:.2f} ms)"
    )
    print("  first use after restore, CPU ms (ratio to warm):", end="")
    for endpoint in ENDPOINTS[1:]:
        first, warm = median_of(runs, "first_use", endpoint, 0), median_of(runs, "warm", endpoint, "cpu")
        print(f"  {endpoint} {first:.2f} ({first / warm:.2f}x)", end="")
    print()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per endpoint for [cpu] (default 300)")
    parser.add_argument("--http-calls", type=int, default=40, help="calls per endpoint for [uvicorn] (default 40)")
    parser.add_argument("--rtt-ms", type=float, default=10.0, help="added round trip for [uvicorn], [snapstart]")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes for [first], [snapstart] (default 3)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL, help="a PostgreSQL server (any database on it)")
    parser.add_argument("--only", default="cpu,uvicorn,first,snapstart", help="which parts to run")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    faulthandler.dump_traceback_later(TIME_LIMIT_S, exit=True)  # never hang
    results: list[bool] = []
    print(f"Service beside the floor (bench/floor_app.py), measured in one run. Machine: {machine()}")
    with fresh_database(args.database_url) as database_url:
        app_url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        service_env = {"DATABASE_URL": app_url, "LOG_LEVEL": "INFO"}
        floor_env = {"FLOOR_DATABASE_URL": database_url}
        if "cpu" in parts:
            service, floor, typed_floor = lambda_handlers(app_url)
            handlers = {"service": service, "floor": floor, "typed floor": typed_floor}
            cpu_per_call(handlers, 20)  # warm-up
            figures = best_of([cpu_per_call(handlers, args.calls) for _ in range(2)])
            print()
            results.append(print_cpu(figures, args.calls))
        else:
            create_floor_table(database_url)
        first_runs: list[dict] = []
        floor_first_runs: list[dict] = []
        if parts & {"first", "snapstart"}:
            first_requests("service", service_env)  # creates the tables; not counted
            for _ in range(args.repeat):
                first_runs.append(first_requests("service", service_env))
                floor_first_runs.append(first_requests("floor", floor_env))
        if "first" in parts:
            print()
            results.append(print_first(first_runs, floor_first_runs))
        if parts & {"uvicorn", "snapstart"}:
            with TcpProxy(target=server_address(args.database_url), delay_ms=args.rtt_ms / 2) as proxy:
                if "uvicorn" in parts:
                    figures = measure_uvicorn(app_url, proxy, args.http_calls)
                    print()
                    results.append(print_uvicorn(figures, args.http_calls, args.rtt_ms))
                if "snapstart" in parts:
                    proxied = through_proxy(app_url, proxy.port)
                    runs = [snapstart_run(proxied, proxy) for _ in range(args.repeat)]
                    reconnect = reconnect_cost(proxied, proxy)
                    print()
                    results.append(print_snapstart(runs, floor_first_runs, reconnect, args.rtt_ms))
    print()
    print(f"Targets met: {verdict(all(results))}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
