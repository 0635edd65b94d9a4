"""What the access log line costs per request in processor time, plain and as a metrics record.

    python bench/access_log.py [--rounds 30] [--calls 60] [--database-url URL]

Drives the Lambda entry point (`handler.handler`, Mangum) in this process with API Gateway v2
events, LOG_LEVEL=INFO and the log going to /dev/null, on a fresh database (no added network
delay: only this process's processor time is measured, with `time.process_time()` around each
invocation). Three ways of writing the access line take turns, in a rotating order, for
--rounds rounds of --calls calls each (a get, a list, a 404 and /health in turn):

- `EMF line`: the service as it is: on Lambda the access line is also a CloudWatch Embedded
  Metric Format record (todo/metrics.py);
- `plain line`: the same line without the metrics members, as before they existed;
- `no line`: the access logger turned off, for scale.

It prints the median CPU per call of each, the EMF line's extra cost over the plain line (the
median over rounds of the per-round difference, with the spread of those differences), and the
size of each line. Then, with timeit, the formatting step alone: the plain line, the line with
its metrics members, and building the members alone (`todo.metrics.emf_json`).
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import logging
import os
import statistics
import sys
import time
import timeit
import uuid

from common import (
    DEFAULT_SERVER_URL,
    api_gateway_v2_event,
    fresh_database,
    lambda_context,
    machine,
    use_repository_paths,
)

use_repository_paths()

TIME_LIMIT_S = 600
VARIANTS = ("EMF line", "plain line", "no line")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of each variant (default 30)")
    parser.add_argument("--calls", type=int, default=60, help="calls per variant per round (default 60)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL, help="a PostgreSQL server (any database on it)")
    args = parser.parse_args()
    faulthandler.dump_traceback_later(TIME_LIMIT_S, exit=True)  # never hang

    with fresh_database(args.database_url) as database_url:
        os.environ["DATABASE_URL"] = database_url
        os.environ["LOG_LEVEL"] = "INFO"
        import handler
        import todo.middleware
        from todo.logs import JsonFormatter

        service_handlers = [h for h in logging.getLogger("todo").handlers if isinstance(h.formatter, JsonFormatter)]
        with open(os.devnull, "w") as devnull:
            for log_handler in service_handlers:
                log_handler.setStream(devnull)
            try:
                cpu_us, sizes = measure(handler, todo.middleware, args.rounds, args.calls)
            finally:
                handler.app.state.database.dispose()
    report(cpu_us, sizes, args)
    report_metrics_step()
    return 0


def measure(handler, middleware, rounds: int, calls: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    access_log = logging.getLogger("todo.access")
    with_metrics = middleware.emf_json
    user = str(uuid.uuid4())
    base = f"/api/{user}/tasks"

    def invoke(event: dict) -> dict:
        return handler.handler(event, lambda_context())

    task = json.loads(invoke(api_gateway_v2_event("POST", base, {"title": "bench"}))["body"])
    events = [
        lambda: api_gateway_v2_event("GET", f"{base}/{task['id']}"),
        lambda: api_gateway_v2_event("GET", base, query="limit=10"),
        lambda: api_gateway_v2_event("GET", f"{base}/{uuid.uuid4()}"),
        lambda: api_gateway_v2_event("GET", "/health"),
    ]

    def use(variant: str) -> None:
        middleware.emf_json = with_metrics if variant == "EMF line" else (lambda access, context: "")
        access_log.disabled = variant == "no line"

    sizes = {}
    for variant in VARIANTS:
        use(variant)
        sizes[variant] = len(_one_line(invoke, events[0]()))

    # per variant, per round: the median CPU per call in microseconds
    per_round: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for warm_up in range(3):
        for event in events:
            invoke(event())
    for round_number in range(rounds):
        shift = round_number % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            use(variant)
            samples = []
            for i in range(calls):
                event = events[i % len(events)]()
                started = time.process_time()
                invoke(event)
                samples.append((time.process_time() - started) * 1e6)
            per_round[variant].append(statistics.median(samples))
    use("EMF line")
    return per_round, sizes


def _one_line(invoke, event: dict) -> str:
    """The access line that one invocation writes."""
    from todo.logs import JsonFormatter

    captured = io.StringIO()
    log_handlers = [h for h in logging.getLogger("todo").handlers if isinstance(h.formatter, JsonFormatter)]
    previous = [h.setStream(captured) for h in log_handlers]
    try:
        invoke(event)
    finally:
        for log_handler, stream in zip(log_handlers, previous):
            log_handler.setStream(stream)
    lines = [line for line in captured.getvalue().splitlines() if '"todo.access"' in line]
    return lines[-1] if lines else ""


def report(per_round: dict[str, list[float]], sizes: dict[str, int], args: argparse.Namespace) -> None:
    print(
        f"Access line CPU per call: {args.rounds} rounds x {args.calls} calls per variant, interleaved, "
        "through Mangum with API Gateway v2 events, log to /dev/null"
    )
    print(f"Machine: {machine()}")
    print()
    header = f"{'variant':<12} {'CPU us/call (median of rounds)':>31} {'line bytes':>11}"
    print(header)
    print("-" * len(header))
    for variant in VARIANTS:
        print(f"{variant:<12} {statistics.median(per_round[variant]):>31.1f} {sizes[variant]:>11}")
    print()
    for other in ("plain line", "no line"):
        differences = [emf - base for emf, base in zip(per_round["EMF line"], per_round[other])]
        quartiles = statistics.quantiles(differences, n=4)
        print(
            f"EMF line - {other}: {statistics.median(differences):+.1f} us per call "
            f"(per-round differences: quartiles {quartiles[0]:+.1f} / {quartiles[2]:+.1f} us)"
        )


def report_metrics_step() -> None:
    """The metrics step alone: building the members and serialising the whole line."""
    from todo.logs import JsonFormatter
    from todo.metrics import emf_json

    access = {
        "method": "GET",
        "route": "/api/{user_id}/tasks/{task_id}",
        "status": 200,
        "latency_ms": 1.23,
        "lambda_request_id": str(uuid.uuid4()),
        "cold_start": False,
        "body_bytes": 180,
    }
    context = lambda_context()
    record = logging.LogRecord("todo.access", logging.INFO, __file__, 0, "request", None, None)
    formatter = JsonFormatter()

    def plain() -> str:
        record.fields = dict(access)
        return formatter.format(record)

    def with_metrics() -> str:
        record.fields = dict(access)
        record.json_members = emf_json(record.fields, context)
        line = formatter.format(record)
        del record.json_members
        return line

    # They take turns, 15 times; the best of each is the least disturbed by the machine.
    number, rounds = 20_000, 15
    cases = {"plain line": plain, "EMF line": with_metrics, "emf_json only": lambda: emf_json(access, context)}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, function in cases.items():
            best[name] = min(best[name], timeit.timeit(function, number=number) / number * 1e6)
    print()
    print(f"The formatting step alone (timeit, best of {rounds} rounds of {number:,} taking turns):")
    for name, microseconds in best.items():
        print(f"  {name:<14} {microseconds:6.1f} us")


if __name__ == "__main__":
    sys.exit(main())
