"""The schema at cold start: one query tells whether it is current, and only a database that
is behind (or empty) costs more. Alembic is imported only then (`todo.migrate`), never on the
way of a process that finds its schema current.

The revisions are listed here, oldest first, so that the check needs no Alembic, and the tables
by name, so that it needs no table classes (`todo.tables`); tests hold both lists to the
migrations folder and to the models.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

import psycopg
from psycopg.errors import UndefinedTable
from sqlalchemy import Connection, Engine, text

from todo.exceptions import SchemaNotReady

logger = logging.getLogger("todo.schema")

REVISIONS = ("0001_baseline", "0002_task_constraints", "0003_idempotency_keys")
TABLES = ("users", "tasks")
BASELINE, HEAD = REVISIONS[0], REVISIONS[-1]

# Any constant shared by every process of this service: it serialises schema changes.
SCHEMA_LOCK_KEY = 7_246_551_002

# How many of the tables exist, and the revision(s) in alembic_version. PostgreSQL resolves
# table names before it runs anything, so the query fails when alembic_version does not exist:
# that happens only on an empty database or one made before migrations, which then costs a
# second query (_TABLES). A current schema is one query, one round trip.
_STATE = (
    "SELECT (SELECT count(to_regclass(name)) FROM unnest(CAST(%(names)s AS text[])) AS name), "
    "ARRAY(SELECT version_num FROM alembic_version)"
)
_TABLES = "SELECT count(to_regclass(name)) FROM unnest(CAST(%(names)s AS text[])) AS name"


class Step(Enum):
    CURRENT = "current"
    NEWER = "newer"  # a revision this code does not know: a later deploy's, rolled back
    CREATE = "create"  # an empty database
    ADOPT = "adopt"  # tables made by create_all before migrations existed
    UPGRADE = "upgrade"
    UNKNOWN = "unknown"  # some tables and no revision, or a revision and missing tables


@dataclass(frozen=True)
class SchemaState:
    tables: int
    revisions: tuple[str, ...] | None  # None: there is no alembic_version table

    @property
    def revision(self) -> str | None:
        return self.revisions[0] if self.revisions and len(self.revisions) == 1 else None

    def next_step(self) -> Step:
        every_table = self.tables == len(TABLES)
        if self.revisions is None:
            if self.tables == 0:
                return Step.CREATE
            return Step.ADOPT if every_table else Step.UNKNOWN
        if self.revision is None:
            return Step.UNKNOWN
        if self.revision not in REVISIONS:
            return Step.NEWER
        if self.revision != HEAD:
            return Step.UPGRADE
        return Step.CURRENT if every_table else Step.UNKNOWN


def read_state(connection: psycopg.Connection) -> SchemaState:
    names = {"names": list(TABLES)}
    in_transaction = connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    try:
        # In a transaction (the schema lock's), a savepoint keeps a failed query from ending it.
        # Outside one (autocommit), a failed query leaves nothing to roll back.
        with connection.transaction() if in_transaction else contextlib.nullcontext():
            tables, revisions = connection.execute(_STATE, names).fetchone()
        return SchemaState(tables, tuple(revisions))
    except UndefinedTable:
        pass
    return SchemaState(connection.execute(_TABLES, names).fetchone()[0], None)


def prepare_schema(
    connection: psycopg.Connection,
    open_engine: Callable[[], Engine],
    *,
    migrate: bool,
    lock_deadline: float,
    statement_timeout_ms: int,
) -> str:
    """Make the schema usable by this code; return the revision the database is at.

    One query on `connection` when it is current (or newer). Otherwise, when `migrate` is on,
    an engine from `open_engine` (SQLAlchemy, for Alembic) runs the one transaction that holds the schema lock: it
    creates the tables (an empty database), adopts a database made by create_all, or applies
    the pending migrations, and all of it commits, or none. Processes that start together wait
    for that lock until `lock_deadline` (a time.monotonic() value), then give up
    (LockNotAvailable) having changed nothing.
    """
    state = read_state(connection)
    if _usable(state):
        return state.revision
    if not migrate:
        needed = f"the database schema is at {state.revision or 'no revision'}; this code needs {HEAD}"
        logger.error(
            "%s: run the migrations (python -m todo.migrate) or set DB_MIGRATE_ON_START=true",
            needed,
            extra={"fields": {"database_revision": state.revision, "needed_revision": HEAD}},
        )
        raise SchemaNotReady(needed)
    lock_timeout_ms = max(1, int((lock_deadline - time.monotonic()) * 1000))
    engine = open_engine()
    with locked_transaction(engine, lock_timeout_ms=lock_timeout_ms, statement_timeout_ms=statement_timeout_ms) as (
        locked
    ):
        # Another process may have done it while this one waited for the lock.
        state = read_state(locked.connection.dbapi_connection)
        if _usable(state):
            return state.revision
        from todo.migrate import apply  # Alembic: only a database that needs a change pays for it

        apply(locked, state.next_step())
    logger.info("schema %s: the database is at %s", state.next_step().value, HEAD)
    return HEAD


def _usable(state: SchemaState) -> bool:
    step = state.next_step()
    if step is Step.NEWER:
        # Migrations are written expand-then-contract: code one revision behind still works.
        logger.warning(
            "the database schema is at %s, newer than this code knows (%s); serving it as it is, "
            "never downgrading",
            state.revision,
            HEAD,
        )
    elif step is Step.UNKNOWN:
        logger.error("the database holds %d of the tables and revision(s) %s", state.tables, state.revisions)
        raise SchemaNotReady("the database schema is neither empty nor one this code knows")
    return step in (Step.CURRENT, Step.NEWER)


@contextlib.contextmanager
def locked_transaction(engine: Engine, *, lock_timeout_ms: int, statement_timeout_ms: int) -> Iterator[Connection]:
    """A transaction holding the schema lock. The timeouts are SET LOCAL, and the lock is
    transaction-scoped: both end with the transaction, so PgBouncer's transaction mode is safe."""
    with engine.connect().execution_options(isolation_level="READ COMMITTED") as connection:
        with connection.begin():
            # SET cannot take bind parameters; these are integers.
            connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
            connection.execute(text(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            yield connection
