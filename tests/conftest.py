"""The one fixture module that owns the databases the tests run on.

- The PostgreSQL server (see ``support/postgres.py`` for how it is found) is started once
  per run by the process that owns the run, before the tests start; with pytest-xdist the
  workers are handed its URL. That process also starts ``npm ci`` in the background when
  node_modules is stale (``support/npm.py``).
- ``postgres_url``: a fresh PostgreSQL database for this run (one per xdist worker),
  dropped at the end.
- ``backend``: one app per database backend for the whole session; ``client`` is a fresh
  in-process client (``support/asgi_client.py``) on it for each test. Tests are isolated by
  using a new random user id each (every query of the API is scoped by user), never by
  another test's leftovers.

To run the API tests on another backend (say PgBouncer in transaction mode), add a fixture
that yields its URL and one entry to ``BACKENDS``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _pytest.nodeid import coerce_node_id
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import URL, make_url

from support.api import check_error_response
from support.asgi_client import InProcessClient
from support.npm import install_in_background
from support.postgres import ServerChoice, choose_server, fresh_database, postgres_server

pytest_plugins = ["support.pgbouncer_fixture"]

# backend id -> the fixture that yields its SQLAlchemy URL
BACKENDS = {
    "postgresql": "postgres_url",
    "pgbouncer": "pgbouncer_url",
}

_SERVER_CHOICE = pytest.StashKey[ServerChoice]()
_SERVER_URL = pytest.StashKey[str]()
# How an xdist worker is told the URL of the server that the controller started.
_WORKER_INPUT_KEY = "todo_postgres_server_url"


def _server_choice(config: pytest.Config) -> ServerChoice:
    if _SERVER_CHOICE not in config.stash:
        config.stash[_SERVER_CHOICE] = choose_server()
    return config.stash[_SERVER_CHOICE]


def pytest_report_header(config: pytest.Config) -> str:
    return f"todo PostgreSQL: {_server_choice(config).description}"


def pytest_configure(config: pytest.Config) -> None:
    """The process that owns the run (the only one, or xdist's controller) starts the server
    once, before any worker exists, and stops it at the very end."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    # `npm ci` (for the Lambda build and serverless-offline) runs while the tests start.
    npm = install_in_background()
    if npm is not None:
        config.add_cleanup(npm.join)  # never leave a half-installed node_modules behind
    server = contextlib.ExitStack()
    config.add_cleanup(server.close)
    url = server.enter_context(postgres_server(_server_choice(config)))
    config.stash[_SERVER_URL] = url.render_as_string(hide_password=False)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist, in the controller: hand each worker the server's URL."""
    node.workerinput[_WORKER_INPUT_KEY] = node.config.stash[_SERVER_URL]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two node ids that pytest 9 leaves as pytest-xdist does not expect:

    - Schemathesis makes one test per API operation, but their node ids leave the operation
      out, so all seven share one id and pytest-xdist would run just one of them. Each gets
      the id its name shows: `test_x[POST /api/{user_id}/tasks]`.
    - `--dist loadgroup` sends the tests of one `xdist_group` to one worker by the group name
      at the end of their node ids, which pytest-xdist writes where pytest 9 no longer reads
      it. Without it the group's tests spread over the workers, and each worker starts
      serverless-offline, or waits for the package another is building.
    """
    group_by_name = getattr(config.option, "loadgroup", False)  # set on pytest-xdist's workers
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and not item.nodeid.endswith(f"[{label}]"):
            item._id = item.parent.id.child(item.originalname).with_params(label)
        groups = sorted({str(mark.args[0]) for mark in item.iter_markers("xdist_group")})
        if group_by_name and groups and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(groups)}")


# --- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> URL:
    """The maintenance database of the PostgreSQL server the run uses."""
    config = request.config
    if hasattr(config, "workerinput"):
        return make_url(config.workerinput[_WORKER_INPUT_KEY])
    return make_url(config.stash[_SERVER_URL])


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: URL) -> Iterator[str]:
    """A SQLAlchemy URL (postgresql+psycopg://) of a database created for this run."""
    with fresh_database(postgres_server_url) as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture(params=list(BACKENDS))
def scratch_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for one test, on each backend: for tests that break it."""
    if request.param == "postgresql":
        with fresh_database(request.getfixturevalue("postgres_server_url")) as url:
            yield url.render_as_string(hide_password=False)
    elif request.param == "pgbouncer":
        with fresh_database(request.getfixturevalue("postgres_server_url")) as url:
            yield request.getfixturevalue("via_pgbouncer")(url)
    else:
        pytest.fail(f"no scratch database for the backend {request.param!r}")


# --- the app on each backend --------------------------------------------------------------


def make_settings(database_url: str, **overrides: Any):
    from todo.settings import Settings

    return Settings(database_url=database_url, **overrides)


def make_app(database_url: str, **overrides: Any):
    from todo.app import create_app

    return create_app(make_settings(database_url, **overrides))


@dataclass
class Backend:
    """An app on one database, and a way to look at that database directly."""

    name: str
    url: str
    app: Any
    engine: Engine

    def task_row(self, task_id: str) -> dict | None:
        """The stored row of a task, read straight from the database."""
        from todo.tables import Task

        table = Task.__table__
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == uuid.UUID(task_id))).first()
        return dict(row._mapping) if row else None

    def user_rows(self, user_id: str) -> list[dict]:
        """The registered user rows for a user id, read straight from the database."""
        from todo.tables import User

        table = User.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c.user_id == uuid.UUID(user_id))).all()
        return [dict(row._mapping) for row in rows]

    def secrets(self) -> list[str]:
        """Strings of the connection that no answer may ever show."""
        url = make_url(self.url)
        found = [self.url, url.render_as_string(hide_password=True)]
        found += [part for part in (url.host, url.password, url.database) if part]
        return found


@pytest.fixture(scope="session", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    url = request.getfixturevalue(BACKENDS[request.param])
    app = make_app(url)
    engine = create_engine(url)
    yield Backend(name=request.param, url=url, app=app, engine=engine)
    engine.dispose()
    database = getattr(app.state, "database", None)
    if database is not None and hasattr(database, "dispose"):
        database.dispose()


def open_client(app: Any, secrets: list[str] = ()):
    """A client that checks every error answer against the contract's rules for errors.

    Like Mangum with lifespan off, no lifespan events run.
    """
    return InProcessClient(
        app,
        raise_server_exceptions=False,
        follow_redirects=False,
        event_hooks={"response": [lambda response: check_error_response(response, secrets)]},
    )


@pytest.fixture
def client(backend: Backend) -> Iterator[Any]:
    client = open_client(backend.app, backend.secrets())
    yield client
    client.close()


@pytest.fixture
def user() -> str:
    """A user id no other test uses."""
    return str(uuid.uuid4())


@pytest.fixture
def other_user() -> str:
    return str(uuid.uuid4())
