"""A throwaway PgBouncer in transaction mode in front of the test PostgreSQL server.

Production talks to Neon's pooled endpoint: PgBouncer with ``pool_mode = transaction``. The
tests run the API through Debian's ``pgbouncer`` (1.18, older and stricter than Neon's), so
that server-side prepared statements, session state or session-scoped locks would fail here
before they fail in production.

- ``find_pgbouncer()``: the binary, or None.
- ``ensure_pgbouncer()``: the binary, installed first with apt-get where it is absent and the
  tests may install it (root on Debian or Ubuntu); else ``PgBouncerError`` with the command
  to run. A missing PgBouncer fails the tests that need it; it never skips them.
- ``pgbouncer(server_url)``: a context manager that starts one on a free port and yields a
  ``postgresql+psycopg://`` URL through it; the process is stopped on exit.
- ``show(url, "POOLS")``: a SHOW command of its admin console, as a list of dicts.

The pool is small (``default_pool_size = 5``) so that the app's connections really are
multiplexed over fewer server connections.

PgBouncer refuses to run as root. When the tests run as root it runs as an unprivileged
system user (``postgres`` if it exists, else ``nobody``), with its configuration, log and pid
files in a temporary directory that user owns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from support.processes import free_port, stop

INSTALL_COMMAND = "sudo apt-get install -y pgbouncer"
DEFAULT_POOL_SIZE = 5
START_TIMEOUT = 15.0


class PgBouncerError(RuntimeError):
    """PgBouncer could not be started; the message carries the tail of its log."""


def find_pgbouncer() -> str | None:
    """The pgbouncer binary: on PATH, or where Debian installs it (/usr/sbin may not be on
    an unprivileged user's PATH)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_pgbouncer() -> str:
    """The pgbouncer binary. Where it is absent, root installs Debian's package (once per
    machine: parallel test processes take turns on a lock file); anyone else is told how."""
    found = find_pgbouncer()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PgBouncerError(
            f"No `pgbouncer` binary on this machine, and the tests cannot install it themselves. "
            f"Run `{INSTALL_COMMAND}` (macOS: `brew install pgbouncer`), then the tests again."
        )
    lock_path = Path(tempfile.gettempdir()) / "todo-tests-pgbouncer-install.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if find_pgbouncer() is None:
            _apt_install("pgbouncer")
    found = find_pgbouncer()
    if found is None:
        raise PgBouncerError(f"apt-get installed pgbouncer, yet no binary was found; run `{INSTALL_COMMAND}`")
    return found


def _apt_install(package: str) -> None:
    def run(command: list[str]) -> subprocess.CompletedProcess:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)

    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    # A fresh machine may have no package lists yet: refresh them once if the install fails.
    if run(install).returncode != 0:
        for command in (["apt-get", "update", "-qq"], install):
            done = run(command)
            if done.returncode != 0:
                raise PgBouncerError(
                    f"`{' '.join(command)}` failed with status {done.returncode}:\n{done.stderr[-2000:]}\n"
                    f"Install PgBouncer and run the tests again: `{INSTALL_COMMAND}`"
                )
    # Debian's package starts its own service on port 6432; the tests start their own.
    if shutil.which("service"):
        subprocess.run(["service", package, "stop"], stdin=subprocess.DEVNULL, capture_output=True)


@contextlib.contextmanager
def pgbouncer(server_url: str | URL, *, pool_size: int = DEFAULT_POOL_SIZE, max_client_conn: int = 200) -> Iterator[str]:
    """Start PgBouncer in transaction mode in front of `server_url`'s server and yield the
    same URL (same database, user and password) pointing through it."""
    binary = find_pgbouncer()
    if binary is None:
        raise PgBouncerError(f"no pgbouncer binary found; install it: `{INSTALL_COMMAND}`")
    server = make_url(server_url) if isinstance(server_url, str) else server_url
    workdir = Path(tempfile.mkdtemp(prefix="todo-test-pgbouncer-"))
    try:
        run_as = _unprivileged_user() if os.geteuid() == 0 else None
        if run_as is not None:
            os.chown(workdir, run_as.pw_uid, run_as.pw_gid)
        # A free port can be taken between choosing it and PgBouncer binding it: try again.
        last_error: PgBouncerError | None = None
        for _attempt in range(3):
            port = free_port()
            config = _write_config(workdir, server, port, pool_size, max_client_conn, run_as)
            process = subprocess.Popen(
                [*_drop_root(run_as), binary, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
            )
            url = server.set(host="127.0.0.1", port=port, drivername="postgresql+psycopg")
            try:
                _wait_until_serving(process, url, workdir)
            except PgBouncerError as exc:
                stop(process)
                last_error = exc
                continue
            try:
                yield url.render_as_string(hide_password=False)
            finally:
                stop(process)
            return
        raise last_error or PgBouncerError("PgBouncer did not start")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def show(url: str | URL, what: str) -> list[dict]:
    """Run `SHOW <what>` (POOLS, SERVERS, CLIENTS, ...) on the admin console of the PgBouncer
    that `url` goes through."""
    url = make_url(url) if isinstance(url, str) else url
    if not what.replace("_", "").isalpha():
        raise ValueError(f"not a SHOW subject: {what!r}")
    # The console speaks only the simple query protocol: a client-side cursor uses it.
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname="pgbouncer",
        autocommit=True,
        connect_timeout=5,
        cursor_factory=psycopg.ClientCursor,
    ) as conn:
        cursor = conn.execute(f"SHOW {what}")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _write_config(
    workdir: Path, server: URL, port: int, pool_size: int, max_client_conn: int, run_as: pwd.struct_passwd | None
) -> Path:
    user = server.username or "postgres"
    # Every client database name goes to the same server; the server login is forced to the
    # URL's user and password, so PgBouncer itself can trust its clients.
    target = [f"host={_ini_value(server.host or '127.0.0.1')}", f"port={server.port or 5432}", f"user={_ini_value(user)}"]
    if server.password:
        target.append(f"password={_ini_value(str(server.password))}")
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"* = {' '.join(target)}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                # No Unix socket: it would default to /tmp/.s.PGSQL.<port>, shared with others.
                "unix_socket_dir =",
                "auth_type = trust",
                # The admin console (database "pgbouncer"), for SHOW POOLS and the like.
                f"admin_users = {user}",
                f"auth_file = {workdir / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                f"max_client_conn = {max_client_conn}",
                # PgBouncer 1.18 refuses a client that sends the `options` startup parameter
                # ("FATAL: unsupported startup parameter: options"), and the app sends
                # `options=-c statement_timeout=N`. Ignoring it lets the app connect, but the
                # statement timeout is then NOT applied through PgBouncer.
                "ignore_startup_parameters = options",
                # Do not wait the default 15 s before logging in to the server again.
                "server_login_retry = 1",
                "query_wait_timeout = 30",
                # Keep application_name as the client sent it (tests find backends by it).
                "application_name_add_host = 0",
                f"logfile = {workdir / 'pgbouncer.log'}",
                f"pidfile = {workdir / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    userlist = workdir / "userlist.txt"
    # auth_type = trust still wants the user names listed.
    userlist.write_text(f'"{user.replace(chr(34), chr(34) * 2)}" ""\n')
    for path in (config, userlist):
        path.chmod(0o644)
        if run_as is not None:
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    return config


def _ini_value(value: str) -> str:
    """A value of PgBouncer's [databases] connection string: quoted, with a quote doubled
    (PgBouncer knows no backslash escapes there)."""
    if value and all(c.isalnum() or c in "._-/" for c in value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PgBouncerError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PgBouncer")


def _drop_root(user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return []
    # setpriv execs PgBouncer in place, so signals sent to our child reach PgBouncer itself.
    if shutil.which("setpriv"):
        return [shutil.which("setpriv"), f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]
    if shutil.which("runuser"):
        return [shutil.which("runuser"), "-u", user.pw_name, "--"]
    raise PgBouncerError("running as root, and neither setpriv nor runuser is there to drop privileges")


def _wait_until_serving(process: subprocess.Popen, url: URL, workdir: Path) -> None:
    """Wait until a query goes through PgBouncer to the server, or fail with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PgBouncerError(f"PgBouncer exited with status {process.returncode}:\n{_log_tail(workdir)}")
        try:
            with psycopg.connect(
                host=url.host,
                port=url.port,
                user=url.username,
                password=url.password,
                dbname=url.database,
                connect_timeout=2,
                autocommit=True,
            ) as conn:
                conn.execute("SELECT 1").fetchone()
            return
        except psycopg.OperationalError as exc:
            last_error = exc
            time.sleep(0.05)
    raise PgBouncerError(f"PgBouncer did not serve within {START_TIMEOUT} s ({last_error}):\n{_log_tail(workdir)}")


def _log_tail(workdir: Path, lines: int = 30) -> str:
    try:
        return "\n".join((workdir / "pgbouncer.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


