"""What the benchmarks share: API Gateway v2 events, a fresh database, the proxy, statistics.

Importing this module loads only the standard library (the cold-start child imports it
before it times `import handler`); psycopg and SQLAlchemy are imported where they are used.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def use_repository_paths() -> None:
    """Make `handler`, `todo` and the tests' `support` package importable."""
    for path in (ROOT, ROOT / "tests"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


# --- Lambda --------------------------------------------------------------------------------


def api_gateway_v2_event(
    method: str, path: str, body: object = None, query: str = "", headers: dict[str, str] | None = None
) -> dict:
    """An HTTP API (payload format 2.0) event on the `$default` stage, as Lambda receives it."""
    now = time.time()
    extra_headers = {name.lower(): value for name, value in (headers or {}).items()}
    headers = {
        "accept": "application/json",
        "host": "bench.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "todo-bench",
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **extra_headers,
    }
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": headers["host"],
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers["user-agent"],
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(part.partition("=")[::2] for part in query.split("&"))
    if body is not None:
        headers["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    return event


def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="todo-api-bench",
        function_version="$LATEST",
        memory_limit_in_mb=1024,
        aws_request_id=str(uuid.uuid4()),
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:todo-api-bench",
        get_remaining_time_in_millis=lambda: 30_000,
    )


# --- PostgreSQL ------------------------------------------------------------------------------


def server_address(server_url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    return url.host or "127.0.0.1", url.port or 5432


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database on the server, yield its URL, drop it."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"todo_bench_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def through_proxy(database_url: str, proxy_port: int) -> str:
    """The same database, reached through the proxy listening on 127.0.0.1."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(host="127.0.0.1", port=proxy_port).render_as_string(hide_password=False)


# --- figures ---------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def machine() -> str:
    """How busy the machine is: latency figures mean little on a saturated one."""
    import os

    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs, load average {load:.1f} over the last minute"


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"
