"""Data access: the only module that speaks SQL. Every query is scoped by the owner.

Each function is one statement, so one round trip: writes return the row with RETURNING,
and the list returns its page and its total together. The statements are SQL text with bound
values, for psycopg itself on the connection of the unit of work (`todo.database`): a call
binds its values and sends the text, with no SQL toolkit in between. A test holds their
column list to the table (`todo.tables`), which requests do not import.
"""

from datetime import UTC
from functools import lru_cache
from uuid import UUID, uuid4

import psycopg

from todo.exceptions import StoredTaskBreaksRule
from todo.models import SortKey, TaskFilter, TaskPage, TaskPublic

# The columns of the tasks table, in its order.
COLUMNS = ("title", "description", "id", "user_id", "completed", "created_at", "updated_at", "idempotency_key")
_RETURNED = ", ".join(COLUMNS)


def _task(row: dict) -> TaskPublic:
    """The answer's model of a stored row, as it is stored. Not validated: the columns' types
    are the model's, and a row written before one of the API's rules existed (a description
    too long, a blank title) must still be readable, so that its owner can repair it. Time
    stamps in UTC whatever the server's TimeZone. Other columns of the row (the idempotency key,
    the list's total) are left out."""
    row["created_at"] = row["created_at"].astimezone(UTC)
    row["updated_at"] = row["updated_at"].astimezone(UTC)
    return TaskPublic.model_construct(**row)


def _rows(connection: psycopg.Connection, sql: str, values: dict) -> list[dict]:
    """One statement's rows, as dicts by column name. Like psycopg's dict_row, with the names
    read from the result itself: dict_row builds a column description object per column on
    every call."""
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        result = cursor.pgresult
        if result is None or not result.nfields:
            return []
        names = [result.fname(i).decode() for i in range(result.nfields)]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


# Registers the task's owner in the same statement as the task (a data-modifying CTE): one
# statement, atomic.
_REGISTER_OWNER = (
    "WITH owner AS (INSERT INTO users (id, user_id) VALUES (%(owner_row_id)s, %(user_id)s) "
    "ON CONFLICT (user_id) DO NOTHING) "
)
_NEW_TASK = f"INSERT INTO tasks ({_RETURNED}) VALUES ({', '.join(f'%({name})s' for name in COLUMNS)}) "

# A task id that exists for the same owner returns the stored row (the update changes
# nothing), so a create retried after a lost connection cannot fail or insert twice.
_INSERT = (
    _REGISTER_OWNER
    + _NEW_TASK
    + "ON CONFLICT (id) DO UPDATE SET id = excluded.id WHERE tasks.user_id = excluded.user_id "
    + f"RETURNING {_RETURNED}"
)

# A conflict on the owner's key updates the stored row to itself: unlike DO NOTHING, DO UPDATE
# returns the row that holds the key, also when another request committed it after this
# statement began (two requests with a new key at once both get the one task). A retry of the
# same create after a lost connection conflicts on the key too.
_KEYED_INSERT = (
    _REGISTER_OWNER
    + _NEW_TASK
    + "ON CONFLICT (user_id, idempotency_key) DO UPDATE SET idempotency_key = excluded.idempotency_key "
    + f"RETURNING {_RETURNED}"
)


def insert_task(
    connection: psycopg.Connection, *, task: TaskPublic, idempotency_key: str | None = None
) -> TaskPublic:
    """Insert a task and register its owner, in one statement.

    With an idempotency key, the owner's task that already holds the key is returned instead of
    inserting one: the caller compares it with what it asked for.
    """
    values = {**task.model_dump(), "idempotency_key": idempotency_key, "owner_row_id": uuid4()}
    statement = _INSERT if idempotency_key is None else _KEYED_INSERT
    return _task(_rows(connection, statement, values)[0])


# The one task of an owner: the condition of every statement on a single task.
_THIS_TASK = "WHERE id = %(task_id)s AND user_id = %(owner)s"
_GET = f"SELECT {_RETURNED} FROM tasks {_THIS_TASK}"
_DELETE = f"DELETE FROM tasks {_THIS_TASK} RETURNING id"


def get_task(connection: psycopg.Connection, *, owner: UUID, task_id: UUID) -> TaskPublic | None:
    rows = _rows(connection, _GET, {"task_id": task_id, "owner": owner})
    return _task(rows[0]) if rows else None


def list_tasks(connection: psycopg.Connection, *, owner: UUID, task_filter: TaskFilter) -> TaskPage:
    """One page of the owner's matching tasks and the number of all matching tasks."""
    statement = list_statement(
        by_completed=task_filter.completed is not None, by_search=bool(task_filter.search), sort=task_filter.sort
    )
    values = {"owner": owner, "limit": task_filter.limit, "offset": task_filter.offset}
    if task_filter.completed is not None:
        values["completed"] = task_filter.completed
    if task_filter.search:
        values["pattern"] = f"%{_escape_like(task_filter.search)}%"
    rows = _rows(connection, statement, values)
    tasks = [_task(row) for row in rows if row["id"] is not None]
    return TaskPage(tasks=tasks, total=rows[0]["total"])


@lru_cache(maxsize=None)
def list_statement(*, by_completed: bool, by_search: bool, sort: SortKey) -> str:
    """The list query of one shape (24 in all), written once; the values are bound per call.

    The count is joined to the page (an outer join, so a page past the end still knows the
    total): one statement instead of a separate COUNT query.
    """
    conditions = ["user_id = %(owner)s"]
    if by_completed:
        conditions.append("completed = %(completed)s")
    if by_search:
        conditions.append("(title ILIKE %(pattern)s ESCAPE '\\' OR description ILIKE %(pattern)s ESCAPE '\\')")
    page_columns = ", ".join(f"page.{name}" for name in COLUMNS)
    return (
        f"WITH matching AS (SELECT {_RETURNED} FROM tasks WHERE {' AND '.join(conditions)}) "
        f"SELECT counted.total, {page_columns} "
        "FROM (SELECT count(*) AS total FROM matching) AS counted "
        f"LEFT JOIN (SELECT {_RETURNED} FROM matching ORDER BY {_ordering('matching', sort)} "
        "LIMIT %(limit)s OFFSET %(offset)s) AS page ON true "
        f"ORDER BY {_ordering('page', sort)}"
    )


def replace_task(
    connection: psycopg.Connection, *, owner: UUID, task_id: UUID, title: str, description: str | None, now
) -> TaskPublic | None:
    return _update(connection, _REPLACE, owner, task_id, now, {"title": title, "description": description})


def set_completed(
    connection: psycopg.Connection, *, owner: UUID, task_id: UUID, completed: bool, now
) -> TaskPublic | None:
    return _update(connection, _SET_COMPLETED, owner, task_id, now, {"completed": completed})


def _update_statement(assignments: str) -> str:
    """The UPDATE of some columns and of `updated_at`: `now`, or just after the stored
    `updated_at` if that is not earlier, so that a change never moves `updated_at` back,
    whatever the clock of the container that makes it. Nor before `created_at`, which a row
    written before that rule existed may hold in the future."""
    later_than_before = "greatest(%(now)s, updated_at + interval '1 microsecond', created_at)"
    return f"UPDATE tasks SET {assignments}, updated_at = {later_than_before} {_THIS_TASK} RETURNING {_RETURNED}"


# PUT and PATCH .../complete.
_REPLACE = _update_statement("title = %(title)s, description = %(description)s")
_SET_COMPLETED = _update_statement("completed = %(completed)s")

# The field that each of the table's rules is about, as a client can name and repair it.
_FIELD_OF_CONSTRAINT = {
    "ck_tasks_title_length": "title",
    "ck_tasks_title_not_blank": "title",
    "ck_tasks_description_length": "description",
}


def _update(
    connection: psycopg.Connection, statement: str, owner: UUID, task_id: UUID, now, values: dict
) -> TaskPublic | None:
    try:
        rows = _rows(connection, statement, {**values, "task_id": task_id, "owner": owner, "now": now})
    except psycopg.errors.CheckViolation as exc:
        # The request's values are valid (the API checked them), so a broken rule is the stored
        # row's: one written before the rule existed (its constraint is still NOT VALID).
        raise StoredTaskBreaksRule(_FIELD_OF_CONSTRAINT.get(exc.diag.constraint_name)) from exc
    return _task(rows[0]) if rows else None


def delete_task(connection: psycopg.Connection, *, owner: UUID, task_id: UUID) -> bool:
    return bool(_rows(connection, _DELETE, {"task_id": task_id, "owner": owner}))


def ping(connection: psycopg.Connection) -> None:
    _rows(connection, "SELECT 1", {})


def _escape_like(text: str) -> str:
    """Make %, _ and \\ match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ordering(relation: str, sort: SortKey) -> str:
    """The sort column, then id in the same direction so that pages are stable."""
    direction = "DESC" if sort.startswith("-") else "ASC"
    column = sort.lstrip("-")
    if column not in COLUMNS:
        raise ValueError(f"not a column to sort by: {column}")
    return f"{relation}.{column} {direction}, {relation}.id {direction}"
