"""Priming: the one-time work of the first requests, done in Lambda SnapStart's init phase.

With SnapStart, Lambda runs the init phase (the import of `handler`) once, snapshots the
process, and starts every container from that snapshot. What the init phase did, no
restored container pays again. AWS sets AWS_LAMBDA_INITIALIZATION_TYPE=snap-start during that
init phase; then `handler` primes the app:

- the database: the pool and its connection, the table check, and every statement shape
  run once (psycopg's adapters for each of their values and columns) in a transaction that is
  rolled back, so nothing is written;
- the HTTP side: one request per route that changes nothing (a 404, an empty list, a 400),
  so FastAPI builds its per-route state and pydantic its first validations.

The after-restore hook closes the connection this leaves in the pool. Without SnapStart the
import stays free of this work (and of I/O). The container's first event then does the HTTP
side's share that needs no I/O (`prime_endpoints`, called by `todo.lambda_events`) before it
is answered, and the first statements do the rest. A priming request is nobody's request: it
writes no access line and leaves the cold-start flag to the first real request.
"""

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from typing import get_args
from uuid import uuid4

from fastapi import FastAPI

from todo import repository
from todo.blocking import run_inline
from todo.models import SortKey, TaskFilter, TaskPublic

logger = logging.getLogger("todo.priming")

PRIMING_SCOPE_KEY = "todo.priming"


def in_snapstart_init() -> bool:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"


def prime(app: FastAPI) -> None:
    try:
        prime_statements(app)
    except Exception:
        # Best effort: whatever was not primed, the first request after a restore does.
        logger.warning("could not prime the database statements", exc_info=True)
    # A loop of its own, left unset as the current loop: Mangum gets or makes its own later.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_prime_routes(app))
    except Exception:
        logger.warning("could not prime the routes", exc_info=True)
    finally:
        loop.close()


def prime_statements(app: FastAPI) -> None:
    """Run every statement shape once, in a transaction that is rolled back."""
    database = app.state.database
    database.ensure_schema()
    owner, now = uuid4(), datetime.now(UTC)
    task = TaskPublic(
        id=uuid4(), user_id=owner, title="priming", description=None, completed=False, created_at=now, updated_at=now
    )
    with database.connection() as connection, connection.transaction(force_rollback=True):
        repository.insert_task(connection, task=task)
        for by_completed in (False, True):
            for search in ("", "priming"):
                for sort in get_args(SortKey):
                    task_filter = TaskFilter(
                        completed=True if by_completed else None, search=search or None, sort=sort
                    )
                    repository.list_tasks(connection, owner=owner, task_filter=task_filter)
        repository.get_task(connection, owner=owner, task_id=task.id)
        repository.replace_task(connection, owner=owner, task_id=task.id, title="t", description=None, now=now)
        repository.set_completed(connection, owner=owner, task_id=task.id, completed=True, now=now)
        repository.delete_task(connection, owner=owner, task_id=task.id)
        repository.ping(connection)


async def _prime_routes(app: FastAPI) -> None:
    run_inline.set(True)
    owner, task = uuid4(), uuid4()
    tasks = f"/api/{owner}/tasks"
    requests = [
        ("POST", tasks, {}),  # 400: the body is checked before anything is written
        ("GET", tasks, None),  # an owner without tasks: []
        ("GET", f"{tasks}/{task}", None),  # 404 from here on: no such task
        ("PUT", f"{tasks}/{task}", {"title": "priming"}),
        ("PATCH", f"{tasks}/{task}/complete", {"completed": True}),
        ("DELETE", f"{tasks}/{task}", None),
        ("GET", "/health", None),
    ]
    for method, path, body in requests:
        await _request(app, method, path, body)


async def prime_endpoints(app: FastAPI) -> None:
    """FastAPI's one-time work for each task endpoint (on its first call it reads the endpoint's
    source, for its error messages), done by one request per task route that stops at its path:
    the owner is not a UUID, so each is a 400 before any token, database or network is touched.
    (Not /health: every call of it reaches the database.)"""
    tasks, task = "/api/-/tasks", "/api/-/tasks/-"
    requests = [
        ("POST", tasks, {}),
        ("GET", tasks, None),
        ("GET", task, None),
        ("PUT", task, {}),
        ("PATCH", f"{task}/complete", {}),
        ("DELETE", task, None),
    ]
    try:
        statuses = [await _request(app, method, path, body) for method, path, body in requests]
    except Exception:
        # Best effort: an endpoint not primed does its one-time work on its first call.
        logger.warning("could not prime the endpoints", exc_info=True)
        return
    if set(statuses) != {400}:
        # Something now runs before the path is checked: the priming may have done I/O.
        logger.warning("priming the endpoints got %s, not 400s", statuses)


async def _request(app: FastAPI, method: str, path: str, body: object) -> int:
    """Send one request through the app; its status."""
    content = b"" if body is None else json.dumps(body).encode()
    headers = [(b"host", b"priming"), (b"content-type", b"application/json")] if body is not None else []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(content)).encode())],
        "client": None,
        "server": None,
        "extensions": {PRIMING_SCOPE_KEY: True},
    }
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": content, "more_body": False}

    status = 0

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status

