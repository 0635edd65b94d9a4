"""The upgrade of a database that the service made before it had migrations.

The service of that commit (taken from this repository's history) creates the tables with
create_all and tasks through its own API; rows that break the new constraints are then
written with plain SQL, as another writer could have. The current code then starts on that
database: it adopts it (the baseline), applies both migrations, keeps every task byte for
byte, reports the rows that break a constraint and changes none of them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from conftest import make_app, open_client
from support.api import tasks_url
from support.postgres import fresh_database
from support.python_processes import run_python
from support.service_log import service_log

REPO_ROOT = Path(__file__).resolve().parent.parent
# The last commit whose service made its tables with create_all only.
BEFORE_MIGRATIONS = "4d9ff216b7ee0582b7389d41172299c633232d6e"

OLD_SERVICE = r"""
import json, sys, uuid
from fastapi.testclient import TestClient
from todo.app import create_app
from todo.settings import Settings

app = create_app(Settings(database_url=sys.argv[1], log_level="WARNING"))
client = TestClient(app, raise_server_exceptions=False)
users = [str(uuid.uuid4()), str(uuid.uuid4())]

def post(user, body):
    response = client.post(f"/api/{user}/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()

post(users[0], {"title": "Buy milk", "description": "two litres"})
post(users[0], {"title": "  padded  ", "description": ""})
post(users[0], {"title": "\u00e9" * 255, "description": "x" * 10000})
post(users[1], {"title": "\u65e5\u672c\u8a9e \u2713 \u200b", "description": "line\nline\t\u00a0"})
changed = post(users[1], {"title": "to be replaced"})
replaced = client.put(f"/api/{users[1]}/tasks/{changed['id']}", json={"title": "replaced", "description": "new"})
assert replaced.status_code == 200
assert client.patch(f"/api/{users[1]}/tasks/{changed['id']}/complete", json={"completed": True}).status_code == 200
lists = {user: client.get(f"/api/{user}/tasks").text for user in users}
print("RESULT " + json.dumps({"users": users, "lists": lists}), flush=True)
app.state.database.dispose()
"""


@pytest.fixture(scope="module")
def old_service(tmp_path_factory) -> Path:
    """The service's code as it was before migrations, from git."""
    archived = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", BEFORE_MIGRATIONS, "handler.py", "todo"],
        capture_output=True,
        timeout=60,
    )
    if archived.returncode != 0:
        pytest.fail(
            f"this test needs the commit {BEFORE_MIGRATIONS} of the repository's history "
            f"(a full clone, or `git fetch --unshallow`): {archived.stderr.decode(errors='replace')}"
        )
    target = tmp_path_factory.mktemp("before_migrations")
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as archive:
        archive.extractall(target, filter="data")
    return target


def run_old_service(code: Path, url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("DATABASE_URL", None)
    done = run_python(["-c", OLD_SERVICE, url], cwd=code, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def connect(url: str) -> psycopg.Connection:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


# Rows another writer could have stored before the database held the API's limits, and the
# constraints each of them breaks.
CREATED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BREAKING = [
    ({"title": "   "}, {"ck_tasks_title_not_blank"}),
    ({"title": ""}, {"ck_tasks_title_length", "ck_tasks_title_not_blank"}),
    ({"title": "\u3000\u00a0"}, {"ck_tasks_title_not_blank"}),
    ({"description": "d" * 10_001}, {"ck_tasks_description_length"}),
    ({"updated_at": CREATED - timedelta(seconds=1)}, {"ck_tasks_updated_not_before_created"}),
]


def write_breaking_rows(url: str) -> dict[str, set[str]]:
    """constraint name -> ids of the rows written here that break it."""
    owner = uuid.uuid4()
    breaking: dict[str, set[str]] = {}
    with connect(url) as conn:
        conn.execute("INSERT INTO users (id, user_id) VALUES (%s, %s)", (uuid.uuid4(), owner))
        for values, constraints in BREAKING:
            row = {"title": "fine", "description": None, "updated_at": CREATED, **values}
            task_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, false, %s, %s)",
                (task_id, owner, row["title"], row["description"], CREATED, row["updated_at"]),
            )
            for name in constraints:
                breaking.setdefault(name, set()).add(str(task_id))
    return breaking


def stored_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of both tables, as PostgreSQL prints each value, and the bytes of the text."""
    with connect(url) as conn:
        return {
            "tasks": conn.execute(
                "SELECT id::text, user_id::text, title, description, completed, created_at::text, "
                "updated_at::text, convert_to(title, 'UTF8'), convert_to(description, 'UTF8') FROM tasks ORDER BY id"
            ).fetchall(),
            "users": conn.execute("SELECT id::text, user_id::text FROM users ORDER BY id").fetchall(),
        }


@pytest.mark.parametrize("backend", ["postgresql", "pgbouncer"])
def test_a_database_made_before_migrations_is_adopted_upgraded_and_keeps_every_task(
    backend, request, postgres_server_url, old_service
):
    from todo.schema import HEAD

    with fresh_database(postgres_server_url) as database:
        url = database.render_as_string(hide_password=False)
        old = run_old_service(old_service, url)
        breaking = write_breaking_rows(url)
        before = stored_rows(url)
        with connect(url) as conn:
            assert conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,)

        app_url = request.getfixturevalue("via_pgbouncer")(url) if backend == "pgbouncer" else url
        app = make_app(app_url)
        client = open_client(app)
        try:
            with service_log() as logged:
                lists = {user: client.get(tasks_url(user)) for user in old["users"]}
            log = [json.loads(line) for line in logged().splitlines()]

            # Every task the old service answered is answered the same, byte for byte.
            for user, old_text in old["lists"].items():
                assert lists[user].status_code == 200
                assert lists[user].text == old_text
            # Every stored value, the breaking rows included, is untouched.
            assert stored_rows(url) == before
            with connect(url) as conn:
                assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
                validated = dict(
                    conn.execute(
                        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'tasks'::regclass "
                        "AND contype = 'c'"
                    ).fetchall()
                )
            # A constraint that rows break is in place for every new write, not yet validated.
            assert validated == {name: name not in breaking for name in validated}
            assert set(validated) == {
                "ck_tasks_title_length",
                "ck_tasks_title_not_blank",
                "ck_tasks_description_length",
                "ck_tasks_updated_not_before_created",
            }
            # The report: per constraint, how many rows break it and which.
            reports = {line["constraint"]: line for line in log if "violating_rows" in line}
            assert set(reports) == set(breaking)
            for name, ids in breaking.items():
                assert reports[name]["level"] == "WARNING"
                assert reports[name]["violating_rows"] == len(ids)
                assert set(reports[name]["task_ids"]) == ids
                assert "NOT VALID" in reports[name]["message"]
            assert any("adopting" in line["message"] for line in log), log

            # The upgraded database serves new work, keyed creates included.
            user = str(uuid.uuid4())
            keyed = {"headers": {"Idempotency-Key": "after-upgrade"}, "json": {"title": "new"}}
            first, replay = client.post(tasks_url(user), **keyed), client.post(tasks_url(user), **keyed)
            assert (first.status_code, replay.status_code) == (201, 201)
            assert first.json() == replay.json()
        finally:
            client.close()
            app.state.database.dispose()
