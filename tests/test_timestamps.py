"""created_at and updated_at: ISO 8601 in UTC with an explicit offset; equal on creation,
later after every change."""

from datetime import UTC, datetime, timedelta

from support.api import complete_url, create_task, task_url, tasks_url, timestamp

# Generous: this only catches a clock in the wrong time zone, never measures speed.
CLOCK_SLACK = timedelta(minutes=2)


def test_timestamps_are_iso_8601_utc_with_an_explicit_offset_everywhere(client, user):
    task = create_task(client, user, "Timed")
    answers = [
        task,
        client.get(task_url(user, task["id"])).json(),
        client.get(tasks_url(user)).json()[0],
        client.put(task_url(user, task["id"]), json={"title": "Timed"}).json(),
        client.patch(complete_url(user, task["id"]), json={"completed": True}).json(),
    ]

    for answer in answers:
        timestamp(answer["created_at"])
        timestamp(answer["updated_at"])


def test_created_at_equals_updated_at_on_creation(client, user):
    task = create_task(client, user, "New")

    assert timestamp(task["created_at"]) == timestamp(task["updated_at"])


def test_created_at_is_the_current_time_in_utc(client, user):
    before = datetime.now(UTC)
    task = create_task(client, user, "Now")
    after = datetime.now(UTC)

    assert before - CLOCK_SLACK <= timestamp(task["created_at"]) <= after + CLOCK_SLACK


def test_every_change_moves_updated_at_later_and_never_created_at(client, user):
    task = create_task(client, user, "Changing")
    changes = [
        lambda: client.put(task_url(user, task["id"]), json={"title": "Changed"}),
        lambda: client.patch(complete_url(user, task["id"]), json={"completed": True}),
        lambda: client.put(task_url(user, task["id"]), json={"title": "Changed again", "description": "d"}),
        lambda: client.patch(complete_url(user, task["id"]), json={"completed": False}),
    ]
    previous = task
    for change in changes:
        current = change().json()
        assert current["created_at"] == task["created_at"]
        assert timestamp(current["updated_at"]) > timestamp(previous["updated_at"])
        previous = current


def test_timestamps_read_back_unchanged(client, user):
    task = create_task(client, user, "Stable")

    again = client.get(task_url(user, task["id"])).json()

    assert (again["created_at"], again["updated_at"]) == (task["created_at"], task["updated_at"])


def test_stored_timestamps_are_the_ones_answered(client, backend, user):
    task = create_task(client, user, "Stored")

    row = backend.task_row(task["id"])

    assert row["created_at"].astimezone(UTC) == timestamp(task["created_at"])
    assert row["updated_at"].astimezone(UTC) == timestamp(task["updated_at"])
