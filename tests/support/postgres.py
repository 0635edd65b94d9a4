"""Where the tests find a PostgreSQL server, and a fresh database on it for each run.

Servers, in order of preference:

1. ``TEST_DATABASE_URL``: a server you already run (any database on it that the
   user may connect to; a new database is created beside it).
2. Testcontainers, when a Docker engine answers.
3. A throwaway server started from the local PostgreSQL binaries through
   pytest-postgresql's ``PostgreSQLExecutor``. PostgreSQL refuses to run as
   root, so when the tests run as root the server runs as an unprivileged system
   user (``postgres`` if it exists, else ``nobody``) in a temporary directory
   that user owns.

Whatever the server, each test run creates its own uniquely named database and
drops it at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ENV_VAR = "TEST_DATABASE_URL"
CONTAINER_IMAGE = "postgres:16-alpine"
# A throwaway server need not survive a crash: trade durability for speed.
THROWAWAY_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass(frozen=True)
class ServerChoice:
    kind: str  # "env", "docker" or "local"
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
    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        return ServerChoice("local", "no PostgreSQL found: set TEST_DATABASE_URL, start Docker, or install PostgreSQL")
    user = _unprivileged_user().pw_name if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    return ServerChoice(
        "local",
        f"throwaway server from {Path(pg_ctl).parent} via pytest-postgresql, running as user {user!r}",
    )


@contextlib.contextmanager
def postgres_server(choice: ServerChoice) -> Iterator[URL]:
    """Yield the URL of a server's maintenance database for the chosen kind."""
    if choice.kind == "env":
        yield _server_url(os.environ[ENV_VAR])
    elif choice.kind == "docker":
        with _container_server() as url:
            yield url
    else:
        with _local_server() as url:
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


# --- Local binaries --------------------------------------------------------------------------


def find_pg_ctl() -> str | None:
    """The pg_ctl of the local PostgreSQL installation, newest first."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(os.path.join(bindir, "pg_ctl"))

    def major(path: str) -> int:
        version = Path(path).parent.parent.name
        return int(version) if version.isdigit() else 0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=major, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _write_pg_ctl_wrapper(path: Path, pg_ctl: str, workdir: Path, user: pwd.struct_passwd) -> None:
    """A pg_ctl that drops root: pytest-postgresql runs it in place of the real one."""
    if shutil.which("setpriv"):
        switch = f"setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups --"
    elif shutil.which("runuser"):
        switch = f"runuser -u {user.pw_name} --"
    else:
        raise RuntimeError("running as root, and neither setpriv nor runuser is there to drop privileges")
    # The server user cannot read root's working directory; initdb needs a readable one.
    path.write_text(f'#!/bin/sh\ncd "{workdir}" || exit 1\nexec {switch} "{pg_ctl}" "$@"\n')
    path.chmod(stat.S_IRWXU)


def _throwaway_executor_class():
    from pytest_postgresql.executors import PostgreSQLExecutor

    class ThrowawayExecutor(PostgreSQLExecutor):
        """Skips initdb's final fsync: about a second saved on a server that lives for one run.
        (Hooks a helper of the pinned pytest-postgresql; with another version it is simply unused.)"""

        def _build_initdb_command(self, initdb_options: list[str], pgdata: str | None = None) -> list[str]:
            return super()._build_initdb_command([*initdb_options, "--no-sync"], pgdata)

    return ThrowawayExecutor


@contextlib.contextmanager
def _local_server() -> Iterator[URL]:
    from port_for import get_port

    pg_ctl = find_pg_ctl()
    if pg_ctl is None:
        raise RuntimeError(
            "No PostgreSQL for the tests: set TEST_DATABASE_URL, start a Docker engine, "
            "or install the PostgreSQL server binaries (pg_ctl)."
        )
    workdir = Path(tempfile.mkdtemp(prefix="todo-test-pg-"))
    wrapper_dir = Path(tempfile.mkdtemp(prefix="todo-test-pgctl-"))
    try:
        executable = pg_ctl
        if os.geteuid() == 0:
            user = _unprivileged_user()
            os.chown(workdir, user.pw_uid, user.pw_gid)
            executable = str(wrapper_dir / "pg_ctl")
            _write_pg_ctl_wrapper(Path(executable), pg_ctl, workdir, user)
        port = get_port(None)
        executor = _throwaway_executor_class()(
            executable=executable,
            host="127.0.0.1",
            port=port,
            datadir=str(workdir / "data"),
            unixsocketdir=str(workdir),
            logfile=str(workdir / "postgresql.log"),
            startparams="-w",
            dbname="postgres",
            user="postgres",
            postgres_options=THROWAWAY_SERVER_OPTIONS,
            timeout=60,
        )
        executor.start()
        try:
            # mirakuru returns once the port is open; the server may still be starting up then.
            # `pg_ctl start -w` exits only when the server accepts connections: wait for it.
            launcher = executor.process
            if launcher is not None and launcher.wait(timeout=60) != 0:
                log = workdir / "postgresql.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
                raise RuntimeError(f"pg_ctl start failed:\n{tail}")
            yield URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port, database="postgres")
        finally:
            executor.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(wrapper_dir, ignore_errors=True)
