"""POST /api/{user_id}/tasks"""

import json
import uuid

from support.api import assert_task_shape, create_task, task_url, tasks_url, timestamp


def test_create_answers_201_with_the_task_and_its_location(client, user):
    response = client.post(tasks_url(user), json={"title": "Buy milk", "description": "two litres"})

    assert response.status_code == 201
    task = response.json()
    assert_task_shape(task)
    assert uuid.UUID(task["id"])
    assert task["user_id"] == user
    assert task["title"] == "Buy milk"
    assert task["description"] == "two litres"
    assert task["completed"] is False
    assert response.headers["location"] == task_url(user, task["id"])


def test_the_location_of_a_created_task_serves_that_task(client, user):
    response = client.post(tasks_url(user), json={"title": "Buy milk"})

    fetched = client.get(response.headers["location"])

    assert fetched.status_code == 200
    assert fetched.json() == response.json()


def test_create_without_description_stores_null(client, user):
    task = create_task(client, user, "No details")

    assert task["description"] is None
    assert client.get(task_url(user, task["id"])).json()["description"] is None


def test_create_with_null_description_stores_null(client, user):
    task = create_task(client, user, "No details", description=None)

    assert task["description"] is None


def test_create_accepts_an_empty_description(client, user):
    task = create_task(client, user, "Empty details", description="")

    assert task["description"] == ""
    assert client.get(task_url(user, task["id"])).json()["description"] == ""


def test_create_trims_white_space_around_the_title_only(client, user):
    task = create_task(client, user, " \t Buy  milk \n ")

    assert task["title"] == "Buy  milk"
    assert client.get(task_url(user, task["id"])).json()["title"] == "Buy  milk"


def test_create_stores_the_description_exactly_as_sent(client, user):
    description = "  first line\n\tsecond line  \n"

    task = create_task(client, user, "Spaced", description=description)

    assert task["description"] == description
    assert client.get(task_url(user, task["id"])).json()["description"] == description


def test_create_keeps_non_ascii_text(client, user):
    title = "Café ☕ 日本語 😀"
    description = "Ünïcödé — ß, İ, ﬁ, 🇫🇷"

    task = create_task(client, user, title, description=description)
    response = client.get(task_url(user, task["id"]))

    charset = response.headers["content-type"].partition("charset=")[2].strip().lower()
    assert charset in ("", "utf-8"), response.headers["content-type"]
    assert json.loads(response.content.decode("utf-8")) == task
    assert (task["title"], task["description"]) == (title, description)


def test_create_accepts_a_surrogate_pair_escaped_in_json(client, user):
    body = b'{"title": "smile \\ud83d\\ude00", "description": "\\ud83d\\ude00"}'

    response = client.post(tasks_url(user), content=body, headers={"content-type": "application/json"})

    assert response.status_code == 201
    assert response.json()["title"] == "smile 😀"
    assert response.json()["description"] == "😀"


def test_create_ignores_unknown_fields_and_fields_the_service_owns(client, user, other_user):
    chosen_id = str(uuid.uuid4())
    body = {
        "title": "Mine",
        "id": chosen_id,
        "user_id": other_user,
        "completed": True,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "priority": "high",
    }

    response = client.post(tasks_url(user), json=body)

    assert response.status_code == 201
    task = response.json()
    assert_task_shape(task)
    assert task["id"] != chosen_id
    assert task["user_id"] == user
    assert task["completed"] is False
    assert timestamp(task["created_at"]).year != 2000
    assert client.get(tasks_url(other_user)).json() == []


def test_created_tasks_get_distinct_ids(client, user):
    first = create_task(client, user, "Same")
    second = create_task(client, user, "Same")

    assert first["id"] != second["id"]


def test_a_created_task_is_stored_in_the_database(client, backend, user):
    task = create_task(client, user, " Stored ", description="really")

    row = backend.task_row(task["id"])

    assert row is not None
    assert str(row["user_id"]) == user
    assert row["title"] == "Stored"
    assert row["description"] == "really"
    assert row["completed"] is False


def test_the_first_task_registers_its_user_once(client, backend, user):
    create_task(client, user, "one")
    create_task(client, user, "two")

    assert len(backend.user_rows(user)) == 1


def test_listing_tasks_does_not_register_a_user(client, backend, user):
    assert client.get(tasks_url(user)).status_code == 200

    assert backend.user_rows(user) == []


def test_a_rejected_create_registers_neither_user_nor_task(client, backend, user):
    response = client.post(tasks_url(user), json={"title": "   "})

    assert response.status_code == 400
    assert backend.user_rows(user) == []
    assert client.get(tasks_url(user)).json() == []
