"""The fresh process of bench/auth.py: a Lambda cold start with authentication configured by
the environment (or not), timed from the inside.

    BENCH_USER=<uuid> BENCH_TOKEN=<jwt> python bench/auth_child.py

Only `os`, `sys` and `time` are loaded before the timed import. Prints one JSON line after the
first API Gateway v2 create and one after the second; in between it waits for a line on stdin,
so that the parent can read and reset the proxies' counts.
"""

import os
import sys
import time

started = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import handler  # noqa: E402

import_ms = (time.perf_counter() - started) * 1000

import json  # noqa: E402

from common import api_gateway_v2_event, lambda_context  # noqa: E402

USER = os.environ["BENCH_USER"]
TOKEN = os.environ.get("BENCH_TOKEN")


def create(title: str) -> tuple[float, int]:
    event = api_gateway_v2_event("POST", f"/api/{USER}/tasks", {"title": title})
    if TOKEN:
        event["headers"]["authorization"] = f"Bearer {TOKEN}"
    began = time.perf_counter()
    response = handler.handler(event, lambda_context())
    return (time.perf_counter() - began) * 1000, response["statusCode"]


first_ms, first_status = create("first task after a cold start")
print(json.dumps({"import_ms": import_ms, "first_ms": first_ms, "first_status": first_status}), flush=True)
sys.stdin.readline()
second_ms, second_status = create("second task")
print(json.dumps({"second_ms": second_ms, "second_status": second_status}), flush=True)
