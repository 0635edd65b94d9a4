"""Rows written before a rule existed: the migration leaves such a row as it was and its
constraint NOT VALID (README, "Schema changes"). A change the database then refuses is a 409
that names the field, never a 500; a PUT with valid values repairs the row."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from support.api import complete_url, problem, task_url, tasks_url, timestamp


@contextmanager
def legacy_task(client, backend, constraint: str, **values) -> Iterator[tuple[str, str]]:
    """A task stored with values that break `constraint`, which is then NOT VALID, as the
    migration leaves it; (user id, task id). Afterwards the row is gone and the constraint
    validated again, so the other tests on this database meet the schema as migrated."""
    assert client.get("/health").status_code == 200  # the service has made its schema
    owner, task_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    row = {"title": "fine", "description": None, "created_at": now, "updated_at": now, **values}
    with backend.engine.begin() as conn:
        definition = conn.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"), {"name": constraint}
        ).scalar_one()
        conn.execute(text(f"ALTER TABLE tasks DROP CONSTRAINT {constraint}"))
        conn.execute(text("INSERT INTO users (id, user_id) VALUES (:id, :owner)"), {"id": uuid.uuid4(), "owner": owner})
        conn.execute(
            text(
                "INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at) "
                "VALUES (:id, :owner, :title, :description, false, :created_at, :updated_at)"
            ),
            {"id": task_id, "owner": owner, **row},
        )
        conn.execute(text(f"ALTER TABLE tasks ADD CONSTRAINT {constraint} {definition} NOT VALID"))
    try:
        yield str(owner), str(task_id)
    finally:
        with backend.engine.begin() as conn:
            conn.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": task_id})
            conn.execute(text(f"ALTER TABLE tasks VALIDATE CONSTRAINT {constraint}"))


BROKEN_ROWS = pytest.mark.parametrize(
    ("constraint", "values", "field"),
    [
        ("ck_tasks_title_not_blank", {"title": "   "}, "title"),
        ("ck_tasks_description_length", {"description": "x" * 10_001}, "description"),
    ],
    ids=["blank title", "long description"],
)


@BROKEN_ROWS
def test_a_task_whose_stored_field_breaks_a_rule_is_read_as_it_is_stored(client, backend, constraint, values, field):
    """Reading it is how a client finds what to repair: the answer shows the row, never a 500."""
    with legacy_task(client, backend, constraint, **values) as (user, task_id):
        read = client.get(task_url(user, task_id))
        listed = client.get(tasks_url(user))

        assert read.status_code == 200, read.text
        assert read.json()[field] == values[field]
        assert listed.status_code == 200, listed.text
        assert [task[field] for task in listed.json()] == [values[field]]


@BROKEN_ROWS
def test_completing_a_task_whose_stored_field_breaks_a_rule_is_409_naming_the_field(
    client, backend, constraint, values, field
):
    with legacy_task(client, backend, constraint, **values) as (user, task_id):
        before = backend.task_row(task_id)

        response = client.patch(complete_url(user, task_id), json={"completed": True})

        body = problem(response, 409)
        assert f"task's {field} " in body["detail"] and "PUT" in body["detail"]
        for internal in (constraint, "ck_", "CHECK", "constraint", "violat", "tasks"):
            assert internal not in response.text
        assert backend.task_row(task_id) == before


@BROKEN_ROWS
def test_a_put_with_valid_values_repairs_a_task_that_breaks_a_rule(client, backend, constraint, values, field):
    with legacy_task(client, backend, constraint, **values) as (user, task_id):
        response = client.put(task_url(user, task_id), json={"title": "Repaired", "description": "short"})

        assert response.status_code == 200
        assert (response.json()["title"], response.json()["description"]) == ("Repaired", "short")
        stored = backend.task_row(task_id)
        assert (stored["title"], stored["description"]) == ("Repaired", "short")
        completed = client.patch(complete_url(user, task_id), json={"completed": True})
        assert completed.status_code == 200 and completed.json()["completed"] is True


def test_a_change_to_a_task_stored_with_created_at_in_the_future_moves_updated_at_up_to_it(client, backend):
    future = datetime.now(UTC) + timedelta(days=365)
    legacy = {"created_at": future, "updated_at": future - timedelta(days=400)}
    with legacy_task(client, backend, "ck_tasks_updated_not_before_created", **legacy) as (user, task_id):
        response = client.patch(complete_url(user, task_id), json={"completed": True})

        assert response.status_code == 200
        assert timestamp(response.json()["updated_at"]) == timestamp(response.json()["created_at"]) == future
