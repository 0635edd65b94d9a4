"""Migrations: the revisions, the schema they build against the one create_all builds, the
cold start on a current, older, newer or empty database, `python -m todo.migrate`, the
constraints against SQL that bypasses the API, and Alembic staying out of a current cold start.

Real PostgreSQL, and through PgBouncer (transaction mode) where the connection matters. Each
test builds the databases it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url

from conftest import make_app, open_client
from support.api import problem, tasks_url
from support.cold_starts import cold_starts
from support.postgres import fresh_database
from support.python_processes import ProcessesAtOnce, run_python
from support.service_log import service_log
from support.tcp_proxy import TcpProxy

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["postgresql", "pgbouncer"]


# --- databases at a chosen point ------------------------------------------------------------


@pytest.fixture
def new_database(postgres_server_url) -> Iterator[Callable[[], str]]:
    """Makes empty databases of the test's own (postgresql+psycopg URLs), dropped afterwards."""
    with contextlib.ExitStack() as stack:

        def make() -> str:
            url = stack.enter_context(fresh_database(postgres_server_url))
            return url.render_as_string(hide_password=False)

        yield make


def route(request: pytest.FixtureRequest, backend: str, url: str) -> str:
    """The URL the app uses for this database: straight, or through the run's PgBouncer."""
    return request.getfixturevalue("via_pgbouncer")(url) if backend == "pgbouncer" else url


def connect(url: str) -> psycopg.Connection:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def migrate_to(url: str, revision: str) -> None:
    """Run the migrations up to `revision` on the database, as the service does."""
    from alembic import command

    from todo.migrate import alembic_config
    from todo.schema import locked_transaction

    engine = create_engine(url)
    try:
        with locked_transaction(engine, lock_timeout_ms=10_000, statement_timeout_ms=0) as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def made_by_cold_start(url: str) -> None:
    """An empty database, made ready by the first request of an app."""
    app = make_app(url)
    client = open_client(app)
    assert client.get("/health").status_code == 200
    client.close()
    app.state.database.dispose()


def revision_of(url: str) -> list[str]:
    with connect(url) as conn:
        return [version for (version,) in conn.execute("SELECT version_num FROM alembic_version")]


def schema_of(url: str) -> dict[str, list[tuple]]:
    """Every column, constraint (its full definition, and whether it is validated) and index
    of the public schema, as PostgreSQL itself prints them."""
    queries = {
        "columns": "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, "
        "is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' "
        "ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    }
    with connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in queries.items()}


def autogenerate_differences(url: str, metadata) -> list:
    """What `alembic revision --autogenerate` would write to turn the database into `metadata`."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


# --- the revisions -------------------------------------------------------------------------------


def test_the_revisions_the_cold_start_knows_are_the_migrations_folder_in_order():
    from alembic.script import ScriptDirectory

    from todo.migrate import alembic_config
    from todo.schema import BASELINE, HEAD, REVISIONS

    scripts = ScriptDirectory.from_config(alembic_config())
    oldest_first = [script.revision for script in reversed(list(scripts.walk_revisions()))]

    assert tuple(oldest_first) == REVISIONS
    assert scripts.get_heads() == [HEAD] and oldest_first[0] == BASELINE


def test_the_tables_the_cold_start_checks_and_the_columns_the_statements_name_are_the_models():
    from sqlmodel import SQLModel

    from todo import tables
    from todo.repository import COLUMNS
    from todo.schema import TABLES

    assert set(TABLES) == set(SQLModel.metadata.tables)
    assert COLUMNS == tuple(column.name for column in tables.Task.__table__.c)


# --- create_all and the migrations build one schema ----------------------------------------------


def test_create_all_on_a_cold_start_and_the_migrations_build_the_same_schema(new_database):
    from sqlmodel import SQLModel

    from todo import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
    from todo.schema import HEAD

    by_create_all, by_migrations = new_database(), new_database()
    made_by_cold_start(by_create_all)
    migrate_to(by_migrations, "head")

    assert revision_of(by_create_all) == revision_of(by_migrations) == [HEAD]
    # Alembic's comparison, both ways round: the models against the migrated database, and
    # the database create_all made (reflected) against the migrated one.
    assert autogenerate_differences(by_migrations, SQLModel.metadata) == []
    reflected = MetaData()
    reflected.reflect(create_engine(by_create_all))
    assert autogenerate_differences(by_migrations, reflected) == []
    # Alembic does not compare check constraints: PostgreSQL's own catalog does, with every
    # constraint's and index's definition.
    built, migrated = schema_of(by_create_all), schema_of(by_migrations)
    assert built == migrated
    checks = {row[1] for row in built["constraints"] if row[2] == "c" and row[4]}
    assert checks == {
        "ck_tasks_title_length",
        "ck_tasks_title_not_blank",
        "ck_tasks_description_length",
        "ck_tasks_updated_not_before_created",
    }
    assert "ix_tasks_user_id_idempotency_key" in {row[1] for row in built["indexes"]}


def test_the_schema_comparison_sees_a_check_constraint_that_differs(new_database):
    """The comparison above can fail: a check with another expression is told apart."""
    first, second = new_database(), new_database()
    migrate_to(first, "head")
    migrate_to(second, "head")
    with connect(second) as conn:
        conn.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_description_length")
        conn.execute(
            "ALTER TABLE tasks ADD CONSTRAINT ck_tasks_description_length CHECK (char_length(description) <= 10001)"
        )

    assert schema_of(first)["constraints"] != schema_of(second)["constraints"]
    assert schema_of(first)["columns"] == schema_of(second)["columns"]


def run_module(url: str, module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m module args…` from the repository, on the database `url`, as an operator runs it."""
    return run_python(
        ["-m", module, *args], cwd=REPO_ROOT, env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT), **env}
    )


def run_alembic_check(url: str) -> subprocess.CompletedProcess:
    return run_module(url, "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "check")


def test_alembic_check_finds_nothing_to_add_to_the_migrations(new_database):
    """`alembic check`, as CI runs it: the models declare nothing the migrations lack."""
    url = new_database()
    migrate_to(url, "head")

    checked = run_alembic_check(url)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_alembic_check_fails_when_the_models_declare_what_no_migration_made(new_database):
    url = new_database()
    migrate_to(url, "head")
    with connect(url) as conn:
        conn.execute("DROP INDEX ix_tasks_user_id_idempotency_key")

    checked = run_alembic_check(url)

    assert checked.returncode != 0
    assert "ix_tasks_user_id_idempotency_key" in checked.stdout + checked.stderr


# --- the cold start -----------------------------------------------------------------------------

CHILD = r"""
import json, sys, uuid
import handler
imported_with_handler = "alembic" in sys.modules
dialect_with_handler = "sqlalchemy.dialects.postgresql" in sys.modules
tables_with_handler = "todo.tables" in sys.modules
from fastapi.testclient import TestClient
client = TestClient(handler.app, raise_server_exceptions=False)
created = client.post(f"/api/{uuid.uuid4()}/tasks", json={"title": "cold"})
print("RESULT " + json.dumps({
    "status": created.status_code,
    "alembic_with_handler": imported_with_handler,
    "dialect_with_handler": dialect_with_handler,
    "tables_with_handler": tables_with_handler,
    "alembic_after_first_request": "alembic" in sys.modules or "mako" in sys.modules,
    # The SQL toolkit's PostgreSQL dialect and the table classes serve schema changes only.
    "dialect_after_first_request": "sqlalchemy.dialects.postgresql" in sys.modules,
    "tables_after_first_request": "todo.tables" in sys.modules,
}), flush=True)
handler.app.state.database.dispose()
"""


def cold_process(url: str, *, script: str = CHILD, **env: str) -> dict:
    """A new Python process that imports `handler` with DATABASE_URL set and serves."""
    process_env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "INFO", **env}
    done = run_python(["-c", script], cwd=REPO_ROOT, env=process_env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_a_cold_start_on_a_current_schema_never_imports_alembic(new_database):
    url = new_database()
    migrate_to(url, "head")

    result = cold_process(url)

    assert result == {
        "status": 201,
        "alembic_with_handler": False,
        "dialect_with_handler": False,
        "tables_with_handler": False,
        "alembic_after_first_request": False,
        "dialect_after_first_request": False,
        "tables_after_first_request": False,
    }


def test_a_cold_start_that_migrates_imports_alembic_then(new_database):
    """The other side of the test above: the probe does see Alembic when it is used."""
    url = new_database()
    migrate_to(url, "0002_task_constraints")

    result = cold_process(url)

    assert result == {
        "status": 201,
        "alembic_with_handler": False,
        "dialect_with_handler": False,
        "tables_with_handler": False,
        "alembic_after_first_request": True,
        "dialect_after_first_request": True,
        "tables_after_first_request": True,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_schema_check_of_a_cold_start_on_a_current_schema_is_one_round_trip(backend, request, new_database):
    url = new_database()
    migrate_to(url, "head")
    target = make_url(route(request, backend, url))
    with TcpProxy(target=(target.host, target.port)) as proxy:
        through_proxy = target.set(host="127.0.0.1", port=proxy.port)
        # The reference: a bare connection and one statement, through the same proxy.
        with connect(through_proxy.render_as_string(hide_password=False)) as bare:
            bare.execute("SELECT 1").fetchone()
            reference = proxy.stats()
        # Its goodbye passes the proxy after the close returns: wait for it before counting anew.
        wait_until(lambda: proxy.stats()["connections_open"] == 0, "the proxy saw the connection close")
        proxy.reset_counts()
        app = make_app(through_proxy.render_as_string(hide_password=False))
        client = open_client(app)
        try:
            assert client.get("/health").status_code == 200  # connect, check the schema, ping
            cold = proxy.stats()
        finally:
            client.close()
            app.state.database.dispose()

    assert cold["connections_opened"] == reference["connections_opened"] == 1
    assert cold["flights"] - reference["flights"] == 1, (cold, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cold_start_on_an_older_revision_migrates_and_serves(backend, request, new_database):
    from todo.schema import HEAD

    url = new_database()
    migrate_to(url, "0001_baseline")
    app = make_app(route(request, backend, url))
    client = open_client(app)
    user = str(uuid.uuid4())

    with service_log() as logged:
        created = client.post(tasks_url(user), json={"title": "after the upgrade"}, headers={"Idempotency-Key": "k"})
    client.close()
    app.state.database.dispose()

    assert created.status_code == 201, created.text
    assert revision_of(url) == [HEAD]
    assert schema_of(url)["constraints"] == _reference_schema(new_database)["constraints"]
    assert f"the database is at {HEAD}" in logged()


def _reference_schema(new_database) -> dict:
    reference = new_database()
    migrate_to(reference, "head")
    return schema_of(reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_migrate_on_start_off_an_older_schema_answers_503_and_logs_the_needed_revision(
    backend, request, new_database
):
    from todo.schema import HEAD

    url = new_database()
    migrate_to(url, "0002_task_constraints")
    app = make_app(route(request, backend, url), db_migrate_on_start=False)
    client = open_client(app)
    try:
        with service_log() as logged:
            refused = client.post(tasks_url(str(uuid.uuid4())), json={"title": "too early"})
        body = problem(refused, 503)
        assert refused.headers["retry-after"].isdigit()
        assert "0002" not in json.dumps(body) and "alembic" not in refused.text.lower()
        lines = [json.loads(line) for line in logged().splitlines()]
        needs = [line for line in lines if line.get("needed_revision") == HEAD]
        assert len(needs) == 1 and needs[0]["database_revision"] == "0002_task_constraints", lines
        assert HEAD in needs[0]["message"] and "0002_task_constraints" in needs[0]["message"]
        assert revision_of(url) == ["0002_task_constraints"]  # nothing migrated

        # A pipeline runs the migrations; the same process then serves without a restart.
        migrated = run_migrate_command(route(request, backend, url))
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert f"database schema at {HEAD}" in migrated.stdout
        assert client.post(tasks_url(str(uuid.uuid4())), json={"title": "now"}).status_code == 201
    finally:
        client.close()
        app.state.database.dispose()


def test_db_migrate_on_start_false_in_the_environment_keeps_a_fresh_process_from_migrating(new_database):
    url = new_database()
    migrate_to(url, "0001_baseline")

    result = cold_process(url, DB_MIGRATE_ON_START="false")

    assert result["status"] == 503 and result["alembic_after_first_request"] is False
    assert revision_of(url) == ["0001_baseline"]


def run_migrate_command(url: str, *args: str) -> subprocess.CompletedProcess:
    return run_module(url, "todo.migrate", *args, LOG_LEVEL="INFO")


def test_the_migrate_command_makes_an_empty_database_current_and_then_changes_nothing(new_database):
    from todo.schema import HEAD

    url = new_database()
    first = run_migrate_command(url)
    before = schema_of(url)
    second = run_migrate_command(url)

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert revision_of(url) == [HEAD]
    assert schema_of(url) == before == _reference_schema(new_database)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_newer_revision_is_served_with_one_warning_and_never_downgraded(backend, request, new_database):
    url = new_database()
    migrate_to(url, "head")
    with connect(url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_a_later_deploy'")
    app = make_app(route(request, backend, url))
    client = open_client(app)
    user = str(uuid.uuid4())
    try:
        with service_log() as logged:
            answers = [client.post(tasks_url(user), json={"title": f"task {n}"}).status_code for n in range(3)]
            answers.append(client.get(tasks_url(user)).status_code)
    finally:
        client.close()
        app.state.database.dispose()

    assert answers == [201, 201, 201, 200]
    warnings = [json.loads(line) for line in logged().splitlines() if "0099_from_a_later_deploy" in line]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING", warnings
    assert revision_of(url) == ["0099_from_a_later_deploy"]
    migrated = run_migrate_command(url)
    assert migrated.returncode == 0 and revision_of(url) == ["0099_from_a_later_deploy"], migrated.stderr


def test_a_database_with_some_tables_and_no_revision_is_not_touched(new_database):
    url = new_database()
    with connect(url) as conn:
        conn.execute("CREATE TABLE users (id uuid PRIMARY KEY, user_id uuid UNIQUE)")
    app = make_app(url)
    client = open_client(app)
    try:
        problem(client.get("/health"), 503)
    finally:
        client.close()
        app.state.database.dispose()
    with connect(url) as conn:
        assert conn.execute("SELECT to_regclass('tasks'), to_regclass('alembic_version')").fetchone() == (None, None)


# --- cold starts at once on an older database -------------------------------------------------

COLD_START = r"""
import json, sys, uuid
from fastapi.testclient import TestClient
from todo.app import create_app
from todo.settings import Settings

app = create_app(Settings(database_url=sys.argv[1], db_connect_budget=float(sys.argv[2]), log_level="INFO"))
client = TestClient(app, raise_server_exceptions=False)
user = str(uuid.uuid4())
app.state.database.pool
wait_for_go()
created = client.post(f"/api/{user}/tasks", json={"title": "cold start"})
print("RESULT " + json.dumps({"user": user, "status": created.status_code, "body": created.json(),
                              "retry_after": created.headers.get("retry-after")}), flush=True)
app.state.database.dispose()
"""
COLD_STARTS = 4


def finish(processes: ProcessesAtOnce) -> list[tuple[dict, list[dict]]]:
    """Each process's result and its JSON log lines."""
    finished = []
    for process in processes.finish(timeout=90):
        results = [json.loads(line[7:]) for line in process.stdout.splitlines() if line.startswith("RESULT ")]
        assert process.returncode == 0 and results, f"exit {process.returncode}\n{process.stdout}\n{process.stderr}"
        logs = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
        finished.append((results[-1], logs))
    return finished


@contextlib.contextmanager
def schema_lock_held(url: str) -> Iterator[psycopg.Connection]:
    """The schema lock, held by the test: cold starts queue behind it."""
    from todo.schema import SCHEMA_LOCK_KEY

    with connect(url) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            yield conn


def waiting_for_the_lock(url: str) -> int:
    with connect(url) as conn:
        (waiting,) = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return waiting


def wait_until(condition: Callable[[], bool], what: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)  # polling the server's lock table: time is the subject here


def older_database_with_tasks(new_database) -> tuple[str, list[str]]:
    url = new_database()
    migrate_to(url, "0001_baseline")
    owner = uuid.uuid4()
    now = datetime.now(UTC)
    with connect(url) as conn:
        conn.execute("INSERT INTO users (id, user_id) VALUES (%s, %s)", (uuid.uuid4(), owner))
        ids = [uuid.uuid4() for _ in range(3)]
        for number, task_id in enumerate(ids):
            conn.execute(
                "INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at) "
                "VALUES (%s, %s, %s, NULL, false, %s, %s)",
                (task_id, owner, f"older {number}", now, now),
            )
    return url, [str(task_id) for task_id in ids]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cold_starts_at_once_on_an_older_database_wait_for_one_migration(backend, request, new_database):
    from todo.schema import HEAD

    url, ids = older_database_with_tasks(new_database)
    with cold_starts(COLD_START, COLD_STARTS, route(request, backend, url), "30") as processes:
        with schema_lock_held(url):
            processes.go()
            # Every process has checked the schema, found it behind and queued for the lock.
            wait_until(lambda: waiting_for_the_lock(url) == COLD_STARTS, "every cold start waits for the lock")
        finished = finish(processes)

    assert [result["status"] for result, _ in finished] == [201] * COLD_STARTS, finished
    upgrades = [line for _, logs in finished for line in logs if line["message"].startswith("schema upgrade")]
    assert len(upgrades) == 1, upgrades  # one process migrated; the others found it done
    assert revision_of(url) == [HEAD]
    with connect(url) as conn:
        stored = {str(task_id) for (task_id,) in conn.execute("SELECT id FROM tasks")}
    assert stored == set(ids) | {result["body"]["id"] for result, _ in finished}


@pytest.mark.parametrize("backend", BACKENDS)
def test_cold_starts_that_cannot_get_the_schema_lock_within_the_budget_answer_503_and_change_nothing(
    backend, request, new_database
):
    url, ids = older_database_with_tasks(new_database)
    before = schema_of(url)
    with cold_starts(COLD_START, COLD_STARTS, route(request, backend, url), "1.5") as processes:
        with schema_lock_held(url):
            processes.go()
            finished = finish(processes)
            assert waiting_for_the_lock(url) == 0  # gave up: none is left waiting

    for result, _ in finished:
        assert result["status"] == 503, result
        assert result["retry_after"] and result["retry_after"].isdigit()
    assert revision_of(url) == ["0001_baseline"]
    assert schema_of(url) == before

    # The lock is free again: the next cold start migrates.
    assert cold_process(url)["status"] == 201


# --- the constraints, against SQL that bypasses the API -------------------------------------------


@pytest.fixture(scope="module")
def current_database(postgres_server_url) -> Iterator[str]:
    with fresh_database(postgres_server_url) as url:
        rendered = url.render_as_string(hide_password=False)
        migrate_to(rendered, "head")
        yield rendered


def insert_directly(url: str, **values) -> None:
    owner = uuid.uuid4()
    now = datetime.now(UTC)
    row = {"title": "fine", "description": None, "created_at": now, "updated_at": now, **values}
    with connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO users (id, user_id) VALUES (%s, %s)", (uuid.uuid4(), owner))
        conn.execute(
            "INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, false, %s, %s)",
            (uuid.uuid4(), owner, row["title"], row["description"], row["created_at"], row["updated_at"]),
        )


LATER = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"title": ""}, "ck_tasks_title_length"),
        ({"title": "   "}, "ck_tasks_title_not_blank"),
        ({"title": "\t\n\u3000\u00a0\u2028\u200a\u0085"}, "ck_tasks_title_not_blank"),
        ({"description": "x" * 10_001}, "ck_tasks_description_length"),
        ({"created_at": LATER, "updated_at": LATER - timedelta(microseconds=1)}, "ck_tasks_updated_not_before_created"),
    ],
    ids=["empty title", "blank title", "unicode white space title", "long description", "updated before created"],
)
def test_the_database_refuses_rows_the_api_would_refuse(current_database, values, constraint):
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_directly(current_database, **values)

    assert refused.value.diag.constraint_name == constraint


@pytest.mark.parametrize(
    "values",
    [
        {"title": "x"},
        {"title": "é" * 255},
        {"title": " padded "},
        {"title": "\u200b"},  # zero-width space is not White_Space: the API keeps it too
        {"description": "x" * 10_000},
        {"description": ""},
        {"created_at": LATER, "updated_at": LATER},
    ],
    ids=["one character", "255 characters", "padded", "zero width space", "10000 characters", "empty", "equal"],
)
def test_the_database_accepts_rows_at_the_limits(current_database, values):
    insert_directly(current_database, **values)


def test_the_database_and_the_api_agree_on_which_titles_are_blank(current_database):
    """Every character the API trims is one the constraint trims, and no other."""
    from todo.models import TaskWrite

    for code in [*range(0x0, 0x100), 0x1680, *range(0x2000, 0x2030), 0x205F, 0x3000, 0xFEFF, 0x180E]:
        character = chr(code)
        if code == 0:
            continue  # PostgreSQL cannot store NUL; the API refuses it
        try:
            TaskWrite(title=f"{character}")
            api_blank = False
        except ValueError:
            api_blank = True
        try:
            insert_directly(current_database, title=character)
            database_blank = False
        except psycopg.errors.CheckViolation:
            database_blank = True
        assert api_blank == database_blank, f"U+{code:04X}: API blank {api_blank}, database blank {database_blank}"


def test_threads_of_one_cold_process_on_an_older_database_all_serve_after_one_migration(new_database):
    """Requests that arrive together on a cold process each check the schema; the migration
    runs once (the others find it done under the lock) and every answer is 201."""
    from todo.schema import HEAD

    url, _ = older_database_with_tasks(new_database)
    app = make_app(url)
    results: list[int] = []

    def create() -> None:
        client = open_client(app)
        results.append(client.post(tasks_url(str(uuid.uuid4())), json={"title": "thread"}).status_code)
        client.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    app.state.database.dispose()

    assert results == [201] * 4
    assert revision_of(url) == [HEAD]


def test_the_migrate_command_that_cannot_get_the_lock_in_time_fails_and_changes_nothing(new_database):
    url, _ = older_database_with_tasks(new_database)
    before = schema_of(url)
    with schema_lock_held(url):
        refused = run_migrate_command(url, "--lock-timeout", "0.5")

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not migrated" in refused.stderr
    assert revision_of(url) == ["0001_baseline"] and schema_of(url) == before
