"""What AWS Lambda Powertools' Metrics and Logger would add, against todo/metrics.py.

    pip install aws-lambda-powertools==3.37.0   # not a dependency of the service
    python bench/powertools.py [--repeat 7]

1. Import: fresh processes, taking turns, that import `handler` and then either nothing or
   `aws_lambda_powertools`' Metrics and Logger (what a handler using them would import);
   medians of --repeat runs of each.
2. Per request, the access line with its metrics as each way writes it (timeit, the best of 15
   rounds in which the cases take turns,
   output to /dev/null): the service's own JSON line with the EMF members of todo/metrics.py;
   the plain line plus a Powertools `Metrics` record (service and route+method dimension sets,
   the same seven metrics, flushed as its own line); a Powertools `Logger` line plus that record.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import timeit
import uuid

from common import ROOT, lambda_context, machine, use_repository_paths

use_repository_paths()

IMPORT_CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ["DATABASE_URL"] = "postgresql://placeholder@127.0.0.1:1/todo"
started = time.perf_counter()
import handler
handler_done = time.perf_counter()
if {with_powertools!r}:
    from aws_lambda_powertools import Logger, Metrics
print((handler_done - started) * 1000, (time.perf_counter() - handler_done) * 1000)
"""


def import_times(with_powertools: bool) -> tuple[float, float]:
    code = IMPORT_CHILD.format(root=str(ROOT), with_powertools=with_powertools)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    handler_ms, extra_ms = map(float, out.split())
    return handler_ms, extra_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    try:
        import aws_lambda_powertools
    except ImportError:
        print("aws-lambda-powertools is not installed: pip install aws-lambda-powertools==3.37.0")
        return 2

    print(f"Powertools {aws_lambda_powertools.__version__ if hasattr(aws_lambda_powertools, '__version__') else ''}")
    print(f"Machine: {machine()}")
    import_times(True)  # warm the file system cache and byte code
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.repeat):
        for with_powertools in (False, True):
            runs[with_powertools].append(import_times(with_powertools))
    handler_ms = statistics.median(run[0] for run in runs[False])
    extra_ms = statistics.median(run[1] for run in runs[True])
    print()
    print(f"import handler:                              {handler_ms:6.1f} ms (median of {args.repeat})")
    print(f"then import Powertools' Logger and Metrics:  {extra_ms:+6.1f} ms ({extra_ms / handler_ms:+.0%})")

    print()
    print("Per request, the access line and its metrics (timeit, best of 15 rounds taking turns):")
    for name, microseconds in per_request().items():
        print(f"  {name:<46} {microseconds:6.1f} us")
    return 0


def per_request() -> dict[str, float]:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from todo.logs import JsonFormatter
    from todo.metrics import emf_json

    context = lambda_context()
    access = {
        "method": "GET",
        "route": "/api/{user_id}/tasks/{task_id}",
        "status": 200,
        "latency_ms": 1.23,
        "lambda_request_id": str(uuid.uuid4()),
        "cold_start": False,
        "body_bytes": 180,
    }
    record = logging.LogRecord("todo.access", logging.INFO, __file__, 0, "request", None, None)
    formatter = JsonFormatter()
    devnull = open(os.devnull, "w")

    def own_line() -> None:
        record.fields = dict(access)
        record.json_members = emf_json(record.fields, context)
        devnull.write(formatter.format(record) + "\n")

    def plain_line() -> None:
        record.fields = dict(access)
        record.json_members = None
        devnull.write(formatter.format(record) + "\n")

    metrics = Metrics(namespace="TodoApi", service=context.function_name)
    status = access["status"]

    def powertools_metrics() -> None:
        metrics.add_dimensions(service=context.function_name, Route=access["route"], Method=access["method"])
        metrics.add_metric("Requests", MetricUnit.Count, 1)
        metrics.add_metric("Latency", MetricUnit.Milliseconds, access["latency_ms"])
        metrics.add_metric("ClientErrors", MetricUnit.Count, int(400 <= status < 500))
        metrics.add_metric("ServerErrors", MetricUnit.Count, int(status >= 500))
        metrics.add_metric("DatabaseUnavailable", MetricUnit.Count, int(status == 503))
        metrics.add_metric("ColdStart", MetricUnit.Count, int(access["cold_start"]))
        metrics.add_metric("ResponseBodyBytes", MetricUnit.Bytes, access["body_bytes"])
        metrics.flush_metrics()

    powertools_logger = Logger(service=context.function_name, logger_handler=logging.StreamHandler(devnull))

    def plain_line_and_powertools_metrics() -> None:
        plain_line()
        powertools_metrics()

    def powertools_logger_and_metrics() -> None:
        powertools_logger.info("request", extra=access)
        powertools_metrics()

    cases = {
        "own line with EMF members (todo/metrics.py)": own_line,
        "own plain line (no metrics)": plain_line,
        "own plain line + Powertools Metrics record": plain_line_and_powertools_metrics,
        "Powertools Logger line + Metrics record": powertools_logger_and_metrics,
    }
    # The cases take turns, 15 times; the best of each is the least disturbed by the machine.
    number, rounds = 5_000, 15
    best = dict.fromkeys(cases, float("inf"))
    with contextlib.redirect_stdout(devnull):  # Metrics prints its record
        for _ in range(rounds):
            for name, case in cases.items():
                best[name] = min(best[name], timeit.timeit(case, number=number) / number * 1e6)
    return best


if __name__ == "__main__":
    sys.exit(main())
