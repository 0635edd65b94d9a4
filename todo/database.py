"""Connections: a pool of psycopg connections for the requests, the schema step once per
process (`todo.schema`), and a SQLAlchemy engine only for changing the schema.

Every request costs one round trip in steady state: connections run in autocommit (no
BEGIN/COMMIT around single statements), a pooled connection's health is checked without a
ping, and statements are never prepared on the server (PgBouncer's transaction mode would hand
a prepared statement's connection to another client).

The requests' statements go to psycopg as SQL text (`todo.repository`), through SQLAlchemy's
connection pool alone: its engine and PostgreSQL dialect would cost each call more CPU than the
statement does, and importing the dialect alone costs a cold start about 30 ms. Only a
database that must be created or migrated (Alembic) makes an engine.
"""

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from todo import local_database
from todo.exceptions import DatabaseUnavailable
from todo.schema import prepare_schema
from todo.settings import Settings, psycopg_url

logger = logging.getLogger("todo.database")

Result = TypeVar("Result")

registry.register("postgresql.psycopg_startup_facts", "todo.pg_dialect", "PsycopgStartupFactsDialect")


def database_url(settings: Settings) -> str:
    """The URL of the database to serve on, for the psycopg driver (postgresql+psycopg://).
    Without DATABASE_URL (a local run; create_app checked that the package is there), the
    embedded server starts now: on the first request, so that importing the app stays free of it."""
    return settings.database_url or psycopg_url(local_database.start())


def connection_parameters(url: str) -> dict:
    """psycopg's keyword arguments for a database URL, read as SQLAlchemy reads it (and as the
    schema's engine does): a password need not be percent-encoded, and `?host=` may name a
    socket directory or, repeated, several `host:port` to try in turn."""
    parsed = make_url(url)
    parameters = {name: value for name, value in parsed.query.items() if name != "host"}
    hosts = parsed.query.get("host")
    if hosts is None:
        parameters.update(host=parsed.host, port=parsed.port)
    else:
        names, ports = zip(*(_host_and_port(host) for host in ((hosts,) if isinstance(hosts, str) else hosts)))
        parameters["host"] = ",".join(names)
        if any(ports):
            parameters["port"] = ",".join(port or "" for port in ports)
    parameters.update(user=parsed.username, password=parsed.password, dbname=parsed.database)
    return {name: value for name, value in parameters.items() if value is not None}


def _host_and_port(host: str) -> tuple[str, str | None]:
    if host.startswith("/") or ":" not in host:  # a socket directory, or a host without a port
        return host, None
    name, _, port = host.rpartition(":")
    return name.strip("[]"), port


def make_engine(settings: Settings, connection: psycopg.Connection | None = None) -> Engine:
    """An engine for creating and migrating the schema (Alembic speaks SQLAlchemy).

    With `connection`, it runs on that connection alone (a cold start's schema change goes on
    the connection that found it needed) and never closes it: its owner does. Without, it pools
    nothing: schema changes are rare, and its connections are closed as soon as they are done.
    """
    url = make_url(database_url(settings)).set(drivername="postgresql+psycopg_startup_facts")
    if connection is None:
        pooling: dict = {"poolclass": NullPool}
    else:
        pooling = {"poolclass": StaticPool, "creator": lambda: connection}
    engine = create_engine(
        url,
        **pooling,
        isolation_level="AUTOCOMMIT",
        # The dialect would otherwise look for hstore on the first connection: one round trip.
        use_native_hstore=False,
        connect_args=connect_arguments(settings, url.host),
    )
    event.listen(engine, "do_connect", _engine_connect(settings.db_connect_budget))
    return engine


def _engine_connect(budget_seconds: float):
    def connect(dialect, connection_record, cargs, cparams):
        def attempt(arguments: dict) -> psycopg.Connection:
            return dialect.loaded_dbapi.connect(*cargs, **arguments)

        return connect_with_retries(attempt, cparams, budget_seconds)

    return connect


# libpq treats any connect_timeout under 2 s as 2 s.
_SHORTEST_ATTEMPT = 2


def connect_with_retries(
    connect: Callable[[dict], psycopg.Connection], arguments: dict, budget_seconds: float
) -> psycopg.Connection:
    """Retry a failed connect with backoff while the database (say, a Neon compute) wakes up,
    and never past the budget: the last attempt gets only the time that is left."""
    deadline = time.monotonic() + budget_seconds
    attempt_timeout = arguments.get("connect_timeout", _SHORTEST_ATTEMPT)
    delay = 0.1
    while True:
        left = deadline - time.monotonic()
        timeout = max(_SHORTEST_ATTEMPT, min(attempt_timeout, int(left)))
        try:
            return connect({**arguments, "connect_timeout": timeout})
        except psycopg.OperationalError:
            if deadline - time.monotonic() < delay + _SHORTEST_ATTEMPT:
                raise
            logger.info("database not reachable yet; retrying in %.1f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _discard_if_server_hung_up(dbapi_connection, connection_record, connection_proxy):
    # An idle connection has nothing to read unless the server or pooler closed it (or sent
    # the notice that it is about to). A zero-timeout poll sees that without a round trip.
    # The pool then replaces the connection (DisconnectionError at checkout).
    if not hasattr(select, "poll"):  # Windows: a dead connection is found, and retried, on use
        return
    poller = select.poll()
    poller.register(dbapi_connection.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed this connection while it was idle")


def connect_arguments(settings: Settings, host: str | None) -> dict:
    """What psycopg gets for every connection."""
    arguments: dict = {
        "prepare_threshold": None,
        "autocommit": True,
        "connect_timeout": settings.db_connect_timeout,
        "application_name": "todo-api",
        # Bound the wait on a network that silently died while the Lambda was frozen.
        "tcp_user_timeout": settings.db_connect_timeout * 1000,
        "keepalives_idle": 30,
    }
    # Neon's pooled endpoint refuses connections that set parameters in `options`; there the
    # timeout belongs on the role (ALTER ROLE ... SET statement_timeout), see the README.
    if settings.db_statement_timeout_ms and not _is_neon_pooler(host):
        arguments["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return arguments


def _is_neon_pooler(host: str | None) -> bool:
    return bool(host) and "-pooler." in host


class ConnectionLost(Exception):
    """The connection broke under a unit of work (the cause is psycopg's error)."""


class Database:
    """Runs units of work, each on a pooled connection checked out for it, and owns the one-time
    setup: the pool and the schema, made ready on first use so that importing the app does no
    such work."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._pool: QueuePool | None = None
        self._schema_ready = False
        self._pool_lock = threading.Lock()

    @property
    def pool(self) -> QueuePool:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._make_pool()
        return self._pool

    def _make_pool(self) -> QueuePool:
        settings = self._settings
        parameters = connection_parameters(database_url(settings))
        arguments = {**parameters, **connect_arguments(settings, parameters.get("host"))}

        def connect() -> psycopg.Connection:
            return connect_with_retries(
                lambda attempt: psycopg.connect(**attempt), arguments, settings.db_connect_budget
            )

        pool = QueuePool(
            connect,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            # Waiting longer for a free connection than for a new one would make no sense.
            timeout=settings.db_connect_budget,
        )
        event.listen(pool, "checkout", _discard_if_server_hung_up)
        return pool

    def run(self, work: Callable[[psycopg.Connection], Result], *, retry_on_disconnect: bool) -> Result:
        """Run `work` on a connection in autocommit. A connection lost mid-way is replaced and
        the work run once more, but only when the caller says that running it twice is harmless."""
        self.ensure_schema()
        with _unavailable_on_failure():
            try:
                return self._run_once(work)
            except ConnectionLost:
                if not retry_on_disconnect:
                    raise
                logger.info("connection lost; running the work again on a new one")
            return self._run_once(work)

    def _run_once(self, work: Callable[[psycopg.Connection], Result]) -> Result:
        with self.connection() as connection:
            return work(connection)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection, given back afterwards. One that an error left unusable is
        thrown away with the rest of the pool (they are suspect too, as after a failover), and
        the error becomes ConnectionLost."""
        pool = self.pool
        pooled = pool.connect()
        connection = pooled.dbapi_connection
        try:
            yield connection
        except (psycopg.Error, DBAPIError) as error:  # DBAPIError: a schema change's, wrapping psycopg's
            if not connection_lost(connection):
                raise
            pooled.invalidate(error)
            self._replace_pool(pool)
            raise ConnectionLost(str(getattr(error, "orig", error))) from error
        finally:
            pooled.close()

    def _replace_pool(self, pool: QueuePool) -> None:
        with self._pool_lock:
            if self._pool is pool:
                self._pool = pool.recreate()
        pool.dispose()

    def ensure_schema(self) -> None:
        # No lock: requests that arrive together on a cold process may each check (changes are
        # serialised in the database), and while the database is down none of them waits for
        # another's connect budget before spending its own.
        if self._schema_ready:
            return
        budget = self._settings.db_connect_budget
        # Not marked ready when this fails: the next request tries again.
        with _unavailable_on_failure(), self.connection() as connection:
            # Connecting and waiting for another process's migration share the connect budget.
            prepare_schema(
                connection,
                lambda: make_engine(self._settings, connection),
                migrate=self._settings.db_migrate_on_start,
                lock_deadline=time.monotonic() + budget,
                statement_timeout_ms=int(budget * 1000),
            )
        self._schema_ready = True

    def dispose(self) -> None:
        """Close every pooled connection (after a SnapStart restore, or at shutdown)."""
        if self._pool is not None:
            self._pool.dispose()


@contextlib.contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """Errors that mean 'the database is not there, or too slow' become DatabaseUnavailable:
    a lost connection, a failed connect or a cancelled statement (psycopg's OperationalError),
    a pool with no free connection. Others (a broken rule, a bug) go on as they are.
    Schema changes run through SQLAlchemy, whose errors wrap psycopg's."""
    try:
        yield
    except DBAPIError as error:
        if not (error.connection_invalidated or isinstance(error.orig, psycopg.OperationalError)):
            raise
        raise DatabaseUnavailable(type(error.orig).__name__) from error
    except ConnectionLost as lost:
        cause = lost.__cause__
        raise DatabaseUnavailable(type(getattr(cause, "orig", cause)).__name__) from lost
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(type(error).__name__) from error
    except PoolTimeout as timeout:
        raise DatabaseUnavailable("every pooled connection is busy") from timeout


def connection_lost(connection: psycopg.Connection) -> bool:
    """Whether an error left the connection unusable: closed or broken, or stuck in a statement.

    The last case: when a reset makes the socket report an error before its end of stream,
    psycopg raises "connection socket closed" before libpq has marked the connection broken.
    That connection is still in the statement it sent (its status is ACTIVE) and can never run
    another, so it is as lost as a broken one, and a write that is safe to repeat is repeated."""
    if connection.closed or connection.broken:
        return True
    return connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE
