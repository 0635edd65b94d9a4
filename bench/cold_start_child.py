"""The fresh process of bench/cold_start.py: a Lambda cold start, timed from the inside.

    python bench/cold_start_child.py handler   # import handler, answer two creates
    python bench/cold_start_child.py bare      # import the libraries only, for scale

Only `os`, `sys` and `time` are loaded before the timed import, so that it pays for everything it
needs. Each figure is printed as one JSON line on stdout; in `handler` mode the process
waits for a line on stdin between the first and the second invocation, so that the parent
can read and reset the proxy's counts in between.
"""

import os  # already loaded by the interpreter's start-up, as sys is
import sys
import time

started = time.perf_counter()
mode = sys.argv[1]
# The repository: handler.py and the todo package (this directory is on the path already).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if mode == "bare":
    import fastapi, mangum, psycopg, pydantic_settings, sqlmodel  # noqa: E401, F401, I001

    import_ms = (time.perf_counter() - started) * 1000
    print(f'{{"import_ms": {import_ms:.3f}}}', flush=True)
    sys.exit(0)

import handler  # noqa: E402

import_ms = (time.perf_counter() - started) * 1000

import json  # noqa: E402
import uuid  # noqa: E402

from common import api_gateway_v2_event, lambda_context  # noqa: E402


def create(title: str) -> tuple[float, int]:
    event = api_gateway_v2_event("POST", f"/api/{uuid.uuid4()}/tasks", {"title": title})
    began = time.perf_counter()
    response = handler.handler(event, lambda_context())
    return (time.perf_counter() - began) * 1000, response["statusCode"]


alembic_after_import = "alembic" in sys.modules
first_ms, first_status = create("first task after a cold start")
print(
    json.dumps(
        {
            "import_ms": import_ms,
            "first_ms": first_ms,
            "first_status": first_status,
            # Migrations are imported only when the schema must change, never on this path.
            "alembic_loaded": alembic_after_import or "alembic" in sys.modules,
        }
    ),
    flush=True,
)
sys.stdin.readline()
second_ms, second_status = create("second task")
print(json.dumps({"second_ms": second_ms, "second_status": second_status}), flush=True)
