"""Data access: the only module that speaks SQL. Every query is scoped by the owner.

Each function is one statement, so one round trip: writes return the row with RETURNING,
and the list returns its page and its total together. Every statement is built once per
shape with bound values and compiled once; a call only binds its values and hands the SQL to
the driver (`_execute`). The functions take a Core connection: the ORM's session would add
its bookkeeping to every call, and these statements need none of it.
"""

from datetime import UTC, timedelta
from functools import lru_cache
from uuid import UUID, uuid4

import psycopg
from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Interval,
    String,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError

from todo.database import run_sql
from todo.exceptions import StoredTaskBreaksRule
from todo.models import SortKey, Task, TaskFilter, TaskPage, TaskPublic, User

_tasks = Task.__table__
_users = User.__table__
_ONE_MICROSECOND = timedelta(microseconds=1)


def _task(row: dict) -> TaskPublic:
    # A plain model, not the table class: rows need no ORM bookkeeping, and load 3x faster.
    # Timestamps in UTC whatever the server's TimeZone (rows straight from the driver are not
    # processed by the column types).
    values = dict(row)
    values["created_at"] = values["created_at"].astimezone(UTC)
    values["updated_at"] = values["updated_at"].astimezone(UTC)
    return TaskPublic.model_validate(values)


def _execute(session: Connection, statement, values: dict) -> list:
    """Run a statement built once per shape; its rows, as mappings. Its SQL, compiled once,
    goes straight to the driver (`run_sql`): no cache key per call, no execution context or
    result object, and its compiling can be done before the first call (`compile_statements`)."""
    sql, fixed_values = _compiled(statement, session.dialect)
    return run_sql(session, sql, {**fixed_values, **values})


@lru_cache(maxsize=None)
def _compiled(statement, dialect) -> tuple[str, dict]:
    """The statement's SQL for the dialect, and the values fixed in it (such as literals)."""
    compiled = statement.compile(dialect=dialect)
    return compiled.string, {name: value for name, value in compiled.params.items() if value is not None}


def compile_statements(dialect) -> None:
    """Compile the statement of every endpoint's usual shape ahead of its first call (the
    list without filters; other list shapes compile on first use). Called when the engine
    is made: the PostgreSQL dialect is loaded by then (it is not, at import)."""
    usual_list = _list_statement(by_completed=False, by_search=False, sort=TaskFilter.sort)
    updates = [_update_statement(columns) for columns in _UPDATE_SHAPES]
    inserts = (_insert_statement(), _keyed_insert_statement())
    for statement in (*inserts, _GET, _DELETE, _PING, usual_list, *updates):
        _compiled(statement, dialect)


def insert_task(session: Connection, *, task: TaskPublic, idempotency_key: str | None = None) -> TaskPublic:
    """Insert a task and register its owner in the same statement.

    Inserting a task id that exists for the same owner returns the stored row, so a create
    retried after a lost connection cannot fail or insert twice. With an idempotency key, the
    owner's task that already holds the key is returned instead of inserting one: the caller
    compares it with what it asked for. Either way, one statement.
    """
    task_values = {**task.model_dump(), "idempotency_key": idempotency_key}
    owner_values = {"owner_row_id": uuid4(), "user_id": task.user_id}
    statement = _insert_statement() if idempotency_key is None else _keyed_insert_statement()
    # The statement registers the owner itself, in a data-modifying CTE: one statement, atomic.
    return _task(_execute(session, statement, {**task_values, **owner_values})[0])


def _register_owner(insert):
    return (
        insert(_users)
        .values(id=bindparam("owner_row_id"), user_id=bindparam("user_id"))
        .on_conflict_do_nothing(index_elements=[_users.c.user_id])
    )


def _new_task(insert):
    return insert(_tasks).values({column.name: bindparam(column.name) for column in _tasks.c})


@lru_cache(maxsize=None)
def _insert_statement():
    """The insert of a task, carrying the registration of its owner as a CTE; built once."""
    # Imported here, on first use: the engine has loaded its dialect by then, and importing
    # the service (a Lambda cold start) stays free of it.
    from sqlalchemy.dialects.postgresql import insert

    register_owner = _register_owner(insert)
    new_task = _new_task(insert)
    new_task = new_task.on_conflict_do_update(
        index_elements=[_tasks.c.id],
        set_={"id": new_task.excluded.id},
        where=_tasks.c.user_id == new_task.excluded.user_id,
    ).returning(*_tasks.c)
    return new_task.add_cte(register_owner.cte("owner"))


@lru_cache(maxsize=1)
def _keyed_insert_statement():
    """The insert of a create with an idempotency key (PostgreSQL), built once.

    A conflict on the owner's key updates the stored row to itself: unlike DO NOTHING, DO
    UPDATE returns the row that holds the key, also when another request committed it after
    this statement began (two requests with a new key at once both get the one task). A
    retry of the same create after a lost connection conflicts on the key too.
    """
    from sqlalchemy.dialects.postgresql import insert

    register_owner = _register_owner(insert)
    new_task = _new_task(insert)
    new_task = new_task.on_conflict_do_update(
        index_elements=[_tasks.c.user_id, _tasks.c.idempotency_key],
        set_={"idempotency_key": new_task.excluded.idempotency_key},
    ).returning(*_tasks.c)
    return new_task.add_cte(register_owner.cte("owner"))


# The one task of an owner: the condition of every statement on a single task.
_THIS_TASK = (_tasks.c.id == bindparam("task_id"), _tasks.c.user_id == bindparam("owner"))
_GET = select(_tasks).where(*_THIS_TASK)
_DELETE = delete(_tasks).where(*_THIS_TASK).returning(_tasks.c.id)


def get_task(session: Connection, *, owner: UUID, task_id: UUID) -> TaskPublic | None:
    rows = _execute(session, _GET, {"task_id": task_id, "owner": owner})
    return _task(rows[0]) if rows else None


def list_tasks(session: Connection, *, owner: UUID, task_filter: TaskFilter) -> TaskPage:
    """One page of the owner's matching tasks and the number of all matching tasks."""
    statement = _list_statement(
        by_completed=task_filter.completed is not None, by_search=bool(task_filter.search), sort=task_filter.sort
    )
    values = {"owner": owner, "limit": task_filter.limit, "offset": task_filter.offset}
    if task_filter.completed is not None:
        values["completed"] = task_filter.completed
    if task_filter.search:
        values["pattern"] = f"%{_escape_like(task_filter.search)}%"
    rows = _execute(session, statement, values)
    tasks = [_task(row) for row in rows if row["id"] is not None]
    return TaskPage(tasks=tasks, total=rows[0]["total"])


@lru_cache(maxsize=None)
def _list_statement(*, by_completed: bool, by_search: bool, sort: SortKey):
    """The list query of one shape (24 in all), built once; the values are bound per call.

    The count is joined to the page (an outer join, so a page past the end still knows the
    total): one statement instead of a separate COUNT query.
    """
    conditions = [_tasks.c.user_id == bindparam("owner")]
    if by_completed:
        conditions.append(_tasks.c.completed == bindparam("completed"))
    if by_search:
        pattern = bindparam("pattern", type_=String)
        conditions.append(
            or_(_tasks.c.title.ilike(pattern, escape="\\"), _tasks.c.description.ilike(pattern, escape="\\"))
        )
    matching = select(_tasks).where(*conditions).cte("matching")
    page = (
        select(matching)
        .order_by(*_ordering(matching.c, sort))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=BigInteger))
        .subquery("page")
    )
    counted = select(func.count().label("total")).select_from(matching).subquery("counted")
    return (
        select(counted.c.total, *page.c)
        .select_from(counted.outerjoin(page, true()))
        .order_by(*_ordering(page.c, sort))
    )


# The columns that PUT and PATCH .../complete change (besides updated_at).
_UPDATE_SHAPES = (("title", "description"), ("completed",))


def replace_task(
    session: Connection, *, owner: UUID, task_id: UUID, title: str, description: str | None, now
) -> TaskPublic | None:
    values = {"title": title, "description": description}
    return _update(session, owner, task_id, now, values)


def set_completed(session: Connection, *, owner: UUID, task_id: UUID, completed: bool, now) -> TaskPublic | None:
    return _update(session, owner, task_id, now, {"completed": completed})


# The field that each of the table's rules is about, as a client can name and repair it.
_FIELD_OF_CONSTRAINT = {
    "ck_tasks_title_length": "title",
    "ck_tasks_title_not_blank": "title",
    "ck_tasks_description_length": "description",
}


def _update(session: Connection, owner: UUID, task_id: UUID, now, values: dict) -> TaskPublic | None:
    statement = _update_statement(tuple(values))
    try:
        rows = _execute(session, statement, {**values, "task_id": task_id, "owner": owner, "now": now})
    except DBAPIError as exc:
        # The request's values are valid (the API checked them), so a broken rule is the stored
        # row's: one written before the rule existed (its constraint is still NOT VALID).
        if isinstance(exc.orig, psycopg.errors.CheckViolation):
            raise StoredTaskBreaksRule(_FIELD_OF_CONSTRAINT.get(exc.orig.diag.constraint_name)) from exc
        raise
    return _task(rows[0]) if rows else None


@lru_cache(maxsize=None)
def _update_statement(columns: tuple[str, ...]):
    """The UPDATE of these columns and `updated_at`, built once per shape."""
    changes = {column: bindparam(column, type_=_tasks.c[column].type) for column in columns}
    return (
        update(_tasks)
        .where(*_THIS_TASK)
        .values(**changes, updated_at=_later_than_before())
        .returning(*_tasks.c)
    )


def _later_than_before():
    """`now`, or just after the stored `updated_at` if that is not earlier: a change never
    moves `updated_at` back, whatever the clock of the container that makes it. Nor before
    `created_at`, which a row written before that rule existed may hold in the future."""
    now = bindparam("now", type_=_tasks.c.updated_at.type)
    just_after_stored = _tasks.c.updated_at + literal(_ONE_MICROSECOND, Interval)
    return func.greatest(now, just_after_stored, _tasks.c.created_at)


def delete_task(session: Connection, *, owner: UUID, task_id: UUID) -> bool:
    return bool(_execute(session, _DELETE, {"task_id": task_id, "owner": owner}))


_PING = select(1)


def ping(session: Connection) -> None:
    _execute(session, _PING, {})


def _escape_like(text: str) -> str:
    """Make %, _ and \\ match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ordering(columns, sort: SortKey) -> list:
    """The sort column, then id in the same direction so that pages are stable."""
    descending = sort.startswith("-")
    keys = [columns[sort.lstrip("-")], columns.id]
    return [key.desc() if descending else key.asc() for key in keys]
