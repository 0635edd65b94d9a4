"""Database round trips and latency per API call, with a network between app and database.

    python bench/round_trips.py [--rtt-ms 10] [--iterations 30] [--database-url URL]

Creates a fresh database on the server at --database-url (dropped at the end), puts the
project's counting TCP proxy with half the chosen round-trip time in each direction in front
of it, and drives the Lambda entry point (`handler.handler`, Mangum) in this process with
API Gateway v2 events, as Lambda does. After a warm-up, each of the six task endpoints, a
create with an Idempotency-Key and the same create again (a replay), and `GET /health` is
called --iterations times; per call it counts the proxy's flights (client
sends after the server last spoke: network round trips) and times the invocation.

Target: every call takes exactly 1 round trip, and its median latency is within
3 ms of the round-trip time. Beside each call the bench times a bare psycopg `SELECT 1`
through the same proxy (the floor: one round trip, no app); "over floor" is what the app and
the statement add to it, and stays meaningful on a busy machine, where the wake-ups of every
process in the path get slower and the absolute figures grow. "CPU ms" is the median processor
time this process spent on a call (the app, and the proxy's thread passing its bytes on).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from common import (
    DEFAULT_SERVER_URL,
    api_gateway_v2_event,
    fresh_database,
    lambda_context,
    machine,
    percentile,
    server_address,
    through_proxy,
    use_repository_paths,
    verdict,
)

use_repository_paths()

from support.tcp_proxy import TcpProxy  # noqa: E402

SLACK_MS = 3.0
TIME_LIMIT_S = 300


@dataclass
class Endpoint:
    name: str
    expected_status: int
    # Builds the event of the i-th call (the ids of the tasks created by the create calls).
    event: Callable[[int], dict]
    check: Callable[[dict], None] = lambda response: None
    flights: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=10.0, help="added network round-trip time (default 10)")
    parser.add_argument("--iterations", type=int, default=30, help="calls per endpoint (default 30)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL, help="a PostgreSQL server (any database on it)")
    args = parser.parse_args()
    faulthandler.dump_traceback_later(TIME_LIMIT_S, exit=True)  # never hang

    with fresh_database(args.database_url) as database_url, TcpProxy(
        target=server_address(args.database_url), delay_ms=args.rtt_ms / 2
    ) as proxy:
        app_url = through_proxy(database_url, proxy.port)
        with psycopg.connect(app_url, autocommit=True, prepare_threshold=None, connect_timeout=10) as floor:
            endpoints = measure(app_url, proxy, args.iterations, floor)
    return report(endpoints, args)


def measure(app_url: str, proxy: TcpProxy, iterations: int, floor: psycopg.Connection) -> list[Endpoint]:
    # The Lambda entry point exactly as deployed, configured through the environment.
    os.environ["DATABASE_URL"] = app_url
    os.environ["LOG_LEVEL"] = "WARNING"
    import handler

    def invoke(event: dict) -> dict:
        return handler.handler(event, lambda_context())

    def warm_up(user: str) -> None:
        base = f"/api/{user}/tasks"
        for _ in range(3):
            task = _json(invoke(api_gateway_v2_event("POST", base, {"title": "warm-up"})))
            keyed = {"Idempotency-Key": uuid.uuid4().hex}
            invoke(api_gateway_v2_event("POST", base, {"title": "warm-up"}, headers=keyed))
            path = f"{base}/{task['id']}"
            invoke(api_gateway_v2_event("GET", base, query="limit=10"))
            invoke(api_gateway_v2_event("GET", path))
            invoke(api_gateway_v2_event("PUT", path, {"title": "warm-up again", "description": "x"}))
            invoke(api_gateway_v2_event("PATCH", f"{path}/complete", {"completed": True}))
            invoke(api_gateway_v2_event("DELETE", path))
            invoke(api_gateway_v2_event("GET", "/health"))

    warm_up(str(uuid.uuid4()))

    user = str(uuid.uuid4())
    base = f"/api/{user}/tasks"
    ids: list[str] = []

    def created(response: dict) -> None:
        ids.append(_json(response)["id"])

    def has_total(response: dict) -> None:
        headers = {name.lower(): value for name, value in response["headers"].items()}
        if "x-total-count" not in headers:
            raise SystemExit("the list answered without X-Total-Count")

    def keyed_create(i: int) -> dict:
        # The same key and body for the i-th call of both keyed rows: the second one replays.
        body = {"title": f"keyed task {i}", "description": "bench"}
        return api_gateway_v2_event("POST", base, body, headers={"Idempotency-Key": f"bench-{user}-{i}"})

    endpoints = [
        Endpoint(
            "POST   /api/{user_id}/tasks",
            201,
            lambda i: api_gateway_v2_event("POST", base, {"title": f"task {i}", "description": "bench"}),
            created,
        ),
        Endpoint("POST   /api/{user_id}/tasks (Idempotency-Key)", 201, keyed_create),
        Endpoint("POST   /api/{user_id}/tasks (same key again)", 201, keyed_create),
        Endpoint("GET    /api/{user_id}/tasks", 200, lambda i: api_gateway_v2_event("GET", base, query="limit=10"), has_total),
        Endpoint("GET    /api/{user_id}/tasks/{id}", 200, lambda i: api_gateway_v2_event("GET", f"{base}/{ids[i]}")),
        Endpoint(
            "PUT    /api/{user_id}/tasks/{id}",
            200,
            lambda i: api_gateway_v2_event("PUT", f"{base}/{ids[i]}", {"title": f"task {i} renamed"}),
        ),
        Endpoint(
            "PATCH  /api/{user_id}/tasks/{id}/complete",
            200,
            lambda i: api_gateway_v2_event("PATCH", f"{base}/{ids[i]}/complete", {"completed": True}),
        ),
        Endpoint("DELETE /api/{user_id}/tasks/{id}", 204, lambda i: api_gateway_v2_event("DELETE", f"{base}/{ids[i]}")),
        Endpoint("GET    /health", 200, lambda i: api_gateway_v2_event("GET", "/health")),
    ]
    for endpoint in endpoints:
        for i in range(iterations):
            event = endpoint.event(i)
            proxy.reset_counts()
            cpu_started = time.process_time()
            started = time.perf_counter()
            response = invoke(event)
            elapsed_ms = (time.perf_counter() - started) * 1000
            endpoint.cpu_ms.append((time.process_time() - cpu_started) * 1000)
            stats = proxy.stats()
            if response["statusCode"] != endpoint.expected_status:
                raise SystemExit(f"{endpoint.name}: expected {endpoint.expected_status}, got {response}")
            endpoint.check(response)
            endpoint.flights.append(stats["flights"])
            endpoint.latencies_ms.append(elapsed_ms)
            if stats["connections_opened"]:
                print(f"note: {endpoint.name} call {i} opened a new database connection", file=sys.stderr)
            started = time.perf_counter()
            floor.execute("SELECT 1").fetchone()
            endpoint.floor_ms.append((time.perf_counter() - started) * 1000)
    handler.app.state.database.dispose()
    return endpoints


def report(endpoints: list[Endpoint], args: argparse.Namespace) -> int:
    limit_ms = args.rtt_ms + SLACK_MS
    print(
        f"Round trips per call: {args.iterations} calls each, {args.rtt_ms:g} ms added RTT "
        f"({args.rtt_ms / 2:g} ms each way), through Mangum with API Gateway v2 events"
    )
    print(f"Machine: {machine()}")
    print()
    header = (
        f"{'endpoint':<48} {'round trips':>11} {'median ms':>10} {'p95 ms':>7} {'floor ms':>9} {'over floor':>10}"
        f" {'CPU ms':>7}  target"
    )
    print(header)
    print("-" * len(header))
    all_ok = True
    floors: list[float] = []
    for endpoint in endpoints:
        low, high = min(endpoint.flights), max(endpoint.flights)
        trips = f"{low}" if low == high else f"{low}-{high}"
        median = statistics.median(endpoint.latencies_ms)
        floor_ms = statistics.median(endpoint.floor_ms)
        floors.append(floor_ms)
        ok = low == high == 1 and median <= limit_ms
        all_ok &= ok
        print(
            f"{endpoint.name:<48} {trips:>11} {median:>10.1f} {percentile(endpoint.latencies_ms, 0.95):>7.1f}"
            f" {floor_ms:>9.1f} {median - floor_ms:>+10.1f} {statistics.median(endpoint.cpu_ms):>7.1f}  {verdict(ok)}"
        )
    print()
    print(
        f"Target: 1 round trip and a median within {limit_ms:g} ms (RTT + {SLACK_MS:g} ms) for every call: "
        f"{verdict(all_ok)}"
    )
    if statistics.median(floors) > args.rtt_ms + 1:
        print(
            f"Note: the floor (a bare SELECT 1) itself took {statistics.median(floors):.1f} ms, over "
            f"{args.rtt_ms + 1:g} ms: this machine is busy, so every absolute figure is inflated; "
            "read the 'over floor' column."
        )
    return 0 if all_ok else 1


def _json(response: dict) -> dict:
    import json

    return json.loads(response["body"])


if __name__ == "__main__":
    sys.exit(main())
