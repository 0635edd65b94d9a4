"""The floor: the least a FastAPI + psycopg service with this API's routes can cost per call.

A bare FastAPI app with the service's routes. Each call makes one psycopg statement on one
kept connection (a SELECT for reads; a committed one-row UPDATE ... RETURNING for writes,
autocommit) and answers fixed JSON: no models, no parameters read, no middleware, no ORM,
no log line. The
benchmarks run it beside the service, in the same harness, and print the service's figures
as ratios to it.

    create_floor_app(conninfo, mode="inline")   # in-process, behind Mangum
    uvicorn floor_app:app --app-dir bench       # FLOOR_DATABASE_URL, FLOOR_MODE from the environment

`mode` says where the blocking statement runs: "inline" (an `async def` route calls psycopg
on the event loop), "to_thread" (an `async def` route hands it to `anyio.to_thread`), or
"threadpool" (a plain `def` route, which FastAPI runs in its own thread pool).

The table it reads and writes is `bench_floor` (one row), made by `create_floor_table`.
"""

from __future__ import annotations

import inspect
import os
import re
import threading
from uuid import UUID

import psycopg
from anyio import to_thread
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

TASK = {
    "id": "00000000-0000-4000-8000-000000000001",
    "user_id": "00000000-0000-4000-8000-000000000002",
    "title": "floor",
    "description": None,
    "completed": False,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}
READ = "SELECT id, n FROM bench_floor WHERE id = 1"
WRITE = "UPDATE bench_floor SET n = n + 1 WHERE id = 1 RETURNING id, n"


def create_floor_table(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_floor (id integer PRIMARY KEY, n bigint NOT NULL)")
        connection.execute("INSERT INTO bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING")


class _Connection:
    """One psycopg connection, opened by the first statement (as the service connects on its
    first request), with the service's connection settings."""

    def __init__(self, conninfo: str):
        self._conninfo = conninfo
        self._connection: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def one(self, statement: str) -> tuple:
        with self._lock:
            if self._connection is None:
                self._connection = psycopg.connect(self._conninfo, autocommit=True, prepare_threshold=None)
            return self._connection.execute(statement).fetchone()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def create_floor_app(conninfo: str, mode: str = "inline", path_params: bool = False) -> FastAPI:
    """`path_params`: the routes declare their path parameters (UUIDs, which FastAPI then
    parses on every call); without, they read no parameter at all."""
    database = _Connection(conninfo)
    app = FastAPI(redirect_slashes=False)
    app.state.database = database

    if mode == "threadpool":

        def route(statement: str, status: int, body: object):
            def endpoint(**path: UUID) -> Response:
                database.one(statement)
                return _answer(status, body)

            return endpoint

    else:

        def route(statement: str, status: int, body: object):
            async def endpoint(**path: UUID) -> Response:
                if mode == "to_thread":
                    await to_thread.run_sync(database.one, statement)
                else:
                    database.one(statement)
                return _answer(status, body)

            return endpoint

    def add(path: str, endpoint, method: str) -> None:
        names = re.findall(r"{(\w+)}", path) if path_params else []
        parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=UUID) for name in names]
        endpoint.__signature__ = inspect.Signature(parameters, return_annotation=Response)
        app.add_api_route(path, endpoint, methods=[method])

    base = "/api/{user_id}/tasks"
    add(base, route(WRITE, 201, TASK), "POST")
    add(base, route(READ, 200, [TASK]), "GET")
    add(base + "/{task_id}", route(READ, 200, TASK), "GET")
    add(base + "/{task_id}", route(WRITE, 200, TASK), "PUT")
    add(base + "/{task_id}/complete", route(WRITE, 200, TASK), "PATCH")
    add(base + "/{task_id}", route(WRITE, 204, None), "DELETE")
    add("/health", route(READ, 200, {"status": "ok"}), "GET")
    return app


def _answer(status: int, body: object) -> Response:
    if body is None:
        return Response(status_code=status)
    return JSONResponse(body, status_code=status)


if os.environ.get("FLOOR_DATABASE_URL"):  # under uvicorn
    app = create_floor_app(os.environ["FLOOR_DATABASE_URL"], os.environ.get("FLOOR_MODE", "inline"))
