"""The engine, a pooled connection per unit of work, and the schema step once per process
(`todo.schema`).

Every request costs one round trip in steady state: the PostgreSQL engine runs in autocommit
(no BEGIN/COMMIT around single statements), checks a pooled connection's health without a
ping, and never prepares statements on the server (PgBouncer's transaction mode would hand a
prepared statement's connection to another client).
"""

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import psycopg
from sqlalchemy import Connection, Dialect, Engine, create_engine, event, make_url
from sqlalchemy.dialects import registry
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from todo import local_database
from todo.exceptions import DatabaseUnavailable
from todo.schema import prepare_schema
from todo.settings import Settings, psycopg_url

logger = logging.getLogger("todo.database")

Result = TypeVar("Result")

registry.register("postgresql.psycopg_startup_facts", "todo.pg_dialect", "PsycopgStartupFactsDialect")


def make_engine(settings: Settings) -> Engine:
    # Without DATABASE_URL (a local run; create_app checked that the package is there), the
    # embedded server starts now, on the first request, so that importing the app stays free of it.
    url = make_url(settings.database_url or psycopg_url(local_database.start()))
    if url.drivername == "postgresql+psycopg":
        url = url.set(drivername="postgresql+psycopg_startup_facts")
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # Waiting longer for a free connection than for a new one would make no sense.
        pool_timeout=settings.db_connect_budget,
        # The dialect would otherwise look for hstore on the first connection: one round trip.
        use_native_hstore=False,
        connect_args=connect_arguments(settings, url.host),
    )
    event.listen(engine, "do_connect", _connect_with_retries(settings.db_connect_budget))
    event.listen(engine, "checkout", _discard_if_server_hung_up)
    return engine


# libpq treats any connect_timeout under 2 s as 2 s.
_SHORTEST_ATTEMPT = 2


def _connect_with_retries(budget_seconds: float):
    """Retry a failed connect with backoff while the database (say, a Neon compute) wakes up,
    and never past the budget: the last attempt gets only the time that is left."""

    def connect(dialect, connection_record, cargs, cparams):
        deadline = time.monotonic() + budget_seconds
        attempt_timeout = cparams.get("connect_timeout", _SHORTEST_ATTEMPT)
        delay = 0.1
        while True:
            left = deadline - time.monotonic()
            timeout = max(_SHORTEST_ATTEMPT, min(attempt_timeout, int(left)))
            try:
                return dialect.loaded_dbapi.connect(*cargs, **{**cparams, "connect_timeout": timeout})
            except psycopg.OperationalError:
                if deadline - time.monotonic() < delay + _SHORTEST_ATTEMPT:
                    raise
                logger.info("database not reachable yet; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    return connect


def _discard_if_server_hung_up(dbapi_connection, connection_record, connection_proxy):
    # An idle connection has nothing to read unless the server or pooler closed it (or sent
    # the notice that it is about to). A zero-timeout poll sees that without a round trip.
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
        # From the first statement on: the dialect's first-connect queries then need no ROLLBACK.
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


class Database:
    """Runs units of work, each on a pooled connection checked out for it, and owns the one-time
    setup: the engine and the schema, made ready on first use so that importing the app does no
    such work."""

    def __init__(self, settings: Settings, prepare: Callable[[Dialect], None] | None = None):
        # `prepare` gets the dialect once the engine exists (the first request): one-time work
        # that needs it, such as compiling statements, done before the first statement runs.
        self._settings = settings
        self._prepare = prepare
        self._engine: Engine | None = None
        self._schema_ready = False
        self._engine_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    engine = make_engine(self._settings)
                    if self._prepare is not None:
                        self._prepare(engine.dialect)
                    self._engine = engine
        return self._engine

    def run(self, work: Callable[[Connection], Result], *, retry_on_disconnect: bool) -> Result:
        """Run `work` and commit. A connection lost mid-way is replaced and the work run once
        more, but only when the caller says that running it twice is harmless."""
        try:
            self.ensure_schema()
            try:
                return self._run_once(work)
            except DBAPIError as exc:
                if not (exc.connection_invalidated and retry_on_disconnect):
                    _raise_translated(exc)
                logger.info("connection lost; running the work again on a new one")
            try:
                return self._run_once(work)
            except DBAPIError as exc:
                _raise_translated(exc)
        except PoolTimeout as exc:
            raise DatabaseUnavailable("every pooled connection is busy") from exc

    def _run_once(self, work: Callable[[Connection], Result]) -> Result:
        # A Core connection, not an ORM session: the work is plain statements.
        with self.engine.connect() as connection:
            result = work(connection)
            connection.commit()
            return result

    def ensure_schema(self) -> None:
        # No lock: requests that arrive together on a cold process may each check (changes are
        # serialised in the database), and while the database is down none of them waits for
        # another's connect budget before spending its own.
        if self._schema_ready:
            return
        budget = self._settings.db_connect_budget
        try:
            # Connecting and waiting for another process's migration share the connect budget.
            prepare_schema(
                self.engine,
                migrate=self._settings.db_migrate_on_start,
                lock_deadline=time.monotonic() + budget,
                statement_timeout_ms=int(budget * 1000),
            )
        except DBAPIError as exc:
            # Not marked ready: the next request tries again.
            _raise_translated(exc)
        self._schema_ready = True

    def dispose(self) -> None:
        """Close every pooled connection (after a SnapStart restore, or at shutdown)."""
        if self._engine is not None:
            self._engine.dispose(close=True)




def run_sql(connection: Connection, sql: str, values: dict) -> list[dict]:
    """One statement's rows, as dicts, from the driver itself on the connection's DBAPI connection.

    SQLAlchemy's execution layer (an execution context and a result object per call) costs
    more CPU than the statement does. Its error handling is kept: a lost connection is
    invalidated, with the rest of the pool, and the error is the DBAPIError that says so, as
    `Database.run` expects from any statement.
    """
    dbapi_connection = connection.connection.dbapi_connection
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(sql, values)
            return _rows_as_dicts(cursor)
    except psycopg.Error as error:
        lost = connection_lost(error, dbapi_connection, connection.dialect)
        if lost:
            # As SQLAlchemy does on a disconnect: the pool's other connections are suspect too.
            connection.invalidate(error)
            connection.engine.dispose()
        raise DBAPIError.instance(
            sql, values, error, psycopg.Error, hide_parameters=True, connection_invalidated=lost,
            dialect=connection.dialect,
        ) from error


def connection_lost(error: psycopg.Error, dbapi_connection: psycopg.Connection, dialect: Dialect) -> bool:
    """Whether `error` left the connection unusable. The dialect's test (closed or broken) misses
    one case: when a reset makes the socket report an error before its end of stream, psycopg
    raises "connection socket closed" before libpq has marked the connection broken. That
    connection is still stuck in the statement it sent (its status is ACTIVE) and can never run
    another, so it is as lost as a broken one, and a write that is safe to repeat is repeated."""
    if dialect.is_disconnect(error, dbapi_connection, None):
        return True
    return dbapi_connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE


def _rows_as_dicts(cursor: psycopg.Cursor) -> list[dict]:
    """The rows as dicts by column name. Like psycopg's dict_row, with the names read from the
    result itself: dict_row builds a column description object per column on every call."""
    result = cursor.pgresult
    if result is None or not result.nfields:
        return []
    names = [result.fname(i).decode() for i in range(result.nfields)]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _raise_translated(exc: DBAPIError) -> NoReturn:
    """Errors that mean 'the database is not there, or too slow' become DatabaseUnavailable."""
    if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
        raise DatabaseUnavailable(type(exc.orig).__name__) from exc
    raise exc
