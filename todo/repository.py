"""Data access: the only module that speaks SQL. Every query is scoped by the owner.

Each function is one statement, so one round trip on PostgreSQL: writes return the row
with RETURNING, and the list returns its page and its total together.
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
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
from sqlmodel import Session

from todo.models import Task, TaskPublic, User

SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]

_tasks = Task.__table__
_users = User.__table__
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class TaskFilter:
    completed: bool | None = None
    search: str | None = None
    sort: SortKey = "-created_at"
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class TaskPage:
    tasks: list[TaskPublic]
    total: int


def _task(row) -> TaskPublic:
    # A plain model, not the table class: rows need no ORM bookkeeping, and load 3x faster.
    return TaskPublic.model_validate(row._mapping)


def insert_task(session: Session, *, task: TaskPublic, idempotency_key: str | None = None) -> TaskPublic:
    """Insert a task and register its owner in the same statement.

    Inserting a task id that exists for the same owner returns the stored row, so a create
    retried after a lost connection cannot fail or insert twice. With an idempotency key, the
    owner's task that already holds the key is returned instead of inserting one: the caller
    compares it with what it asked for. Either way, one statement.
    """
    task_values = {**task.model_dump(), "idempotency_key": idempotency_key}
    owner_values = {"owner_row_id": uuid4(), "user_id": task.user_id}
    if idempotency_key is not None:
        return _task(session.execute(_keyed_insert_statement(), {**task_values, **owner_values}).one())
    # The statement registers the owner itself, in a data-modifying CTE: one statement, atomic.
    return _task(session.execute(_insert_statement(), {**task_values, **owner_values}).one())


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


def get_task(session: Session, *, owner: UUID, task_id: UUID) -> TaskPublic | None:
    row = session.execute(select(_tasks).where(_tasks.c.id == task_id, _tasks.c.user_id == owner)).first()
    return _task(row) if row else None


def list_tasks(session: Session, *, owner: UUID, task_filter: TaskFilter) -> TaskPage:
    """One page of the owner's matching tasks and the number of all matching tasks."""
    statement = _list_statement(
        by_completed=task_filter.completed is not None, by_search=bool(task_filter.search), sort=task_filter.sort
    )
    values = {"owner": owner, "limit": task_filter.limit, "offset": task_filter.offset}
    if task_filter.completed is not None:
        values["completed"] = task_filter.completed
    if task_filter.search:
        values["pattern"] = f"%{_escape_like(task_filter.search)}%"
    rows = session.execute(statement, values).all()
    tasks = [_task(row) for row in rows if row.id is not None]
    return TaskPage(tasks=tasks, total=rows[0].total)


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


def replace_task(
    session: Session, *, owner: UUID, task_id: UUID, title: str, description: str | None, now
) -> TaskPublic | None:
    return _update(session, owner, task_id, now, title=title, description=description)


def set_completed(session: Session, *, owner: UUID, task_id: UUID, completed: bool, now) -> TaskPublic | None:
    return _update(session, owner, task_id, now, completed=completed)


def _update(session: Session, owner: UUID, task_id: UUID, now, **values) -> TaskPublic | None:
    statement = (
        update(_tasks)
        .where(_tasks.c.id == task_id, _tasks.c.user_id == owner)
        .values(**values, updated_at=_later_than_before(now))
        .returning(*_tasks.c)
    )
    row = session.execute(statement).first()
    return _task(row) if row else None


def _later_than_before(now):
    """`now`, or just after the stored `updated_at` if that is not earlier: a change never
    moves `updated_at` back, whatever the clock of the container that makes it."""
    just_after_stored = _tasks.c.updated_at + literal(_ONE_MICROSECOND, Interval)
    return func.greatest(bindparam("now", now, type_=_tasks.c.updated_at.type), just_after_stored)


def delete_task(session: Session, *, owner: UUID, task_id: UUID) -> bool:
    statement = delete(_tasks).where(_tasks.c.id == task_id, _tasks.c.user_id == owner).returning(_tasks.c.id)
    return session.execute(statement).first() is not None


def ping(session: Session) -> None:
    session.execute(select(1)).one()


def _escape_like(text: str) -> str:
    """Make %, _ and \\ match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ordering(columns, sort: SortKey) -> list:
    """The sort column, then id in the same direction so that pages are stable."""
    descending = sort.startswith("-")
    keys = [columns[sort.lstrip("-")], columns.id]
    return [key.desc() if descending else key.asc() for key in keys]
