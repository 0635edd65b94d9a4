"""Lambda SnapStart: the init phase (the import of `handler` with
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) primes the app, and a restored copy serves on a
connection of its own. Priming writes nothing and is nobody's request."""

from __future__ import annotations

import importlib
import json
import sys
import types
import uuid

import pytest
from sqlalchemy import create_engine, text

from support.lambda_events import Answer, LambdaContext, http_api_event
from support.postgres import fresh_database
from support.service_log import service_log


@pytest.fixture
def database_url(postgres_server_url):
    with fresh_database(postgres_server_url) as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def snapstart_init(monkeypatch, database_url):
    """Import `handler` as SnapStart's init phase does; yield (module, after-restore hooks)."""
    from todo.settings import get_settings

    hooks: list = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = hooks.append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    module = importlib.import_module("handler")
    yield module, hooks
    module.app.state.database.dispose()
    sys.modules.pop("handler", None)
    get_settings.cache_clear()


def rows(database_url: str, table: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def test_priming_creates_the_tables_and_writes_no_task_or_user(snapstart_init, database_url):
    assert rows(database_url, "tasks") == 0
    assert rows(database_url, "users") == 0


def test_after_restore_the_first_request_is_served_on_a_new_connection_and_logged_cold(snapstart_init):
    module, hooks = snapstart_init
    pooled_before = module.app.state.database.pool.checkedin()
    assert pooled_before == 1  # priming left its connection in the pool, as a snapshot would hold it

    for hook in hooks:
        hook()
    assert module.app.state.database.pool.checkedin() == 0

    user = str(uuid.uuid4())
    with service_log() as log:
        created = Answer(
            module.handler(
                http_api_event("POST", f"/api/{user}/tasks", "", b'{"title": "after restore"}',
                               {"content-type": "application/json"}),
                LambdaContext(),
            )
        )
    assert created.status == 201
    access_lines = [json.loads(line) for line in log().splitlines() if '"request"' in line]
    assert [(line["status"], line["cold_start"]) for line in access_lines] == [(201, True)]
