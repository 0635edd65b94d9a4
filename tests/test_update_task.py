"""PUT /api/{user_id}/tasks/{id}: replaces the title and the description."""

import uuid

from support.api import assert_task_shape, complete_url, create_task, problem, task_url, timestamp


def test_put_replaces_title_and_description(client, user):
    task = create_task(client, user, "Old title", description="old description")

    response = client.put(task_url(user, task["id"]), json={"title": "New title", "description": "new description"})

    assert response.status_code == 200
    updated = response.json()
    assert_task_shape(updated)
    assert (updated["id"], updated["user_id"]) == (task["id"], user)
    assert (updated["title"], updated["description"]) == ("New title", "new description")
    assert client.get(task_url(user, task["id"])).json() == updated


def test_put_without_description_sets_it_to_null(client, user):
    task = create_task(client, user, "Title", description="will be dropped")

    response = client.put(task_url(user, task["id"]), json={"title": "Title"})

    assert response.status_code == 200
    assert response.json()["description"] is None
    assert client.get(task_url(user, task["id"])).json()["description"] is None


def test_put_with_null_description_sets_it_to_null(client, user):
    task = create_task(client, user, "Title", description="will be dropped")

    response = client.put(task_url(user, task["id"]), json={"title": "Title", "description": None})

    assert response.json()["description"] is None


def test_put_trims_the_title_and_keeps_the_description_as_sent(client, user):
    task = create_task(client, user, "Title")

    response = client.put(task_url(user, task["id"]), json={"title": "\t Trimmed  title \n", "description": " as is "})

    assert response.json()["title"] == "Trimmed  title"
    assert response.json()["description"] == " as is "


def test_put_does_not_touch_completed(client, user):
    task = create_task(client, user, "Title")
    client.patch(complete_url(user, task["id"]), json={"completed": True})

    response = client.put(task_url(user, task["id"]), json={"title": "Renamed"})

    assert response.json()["completed"] is True
    assert client.get(task_url(user, task["id"])).json()["completed"] is True


def test_put_ignores_completed_and_other_unknown_fields_in_the_body(client, user, other_user):
    task = create_task(client, user, "Title")

    response = client.put(
        task_url(user, task["id"]),
        json={"title": "Renamed", "completed": True, "id": str(uuid.uuid4()), "user_id": other_user, "colour": "red"},
    )

    assert response.status_code == 200
    assert response.json()["completed"] is False
    assert response.json()["id"] == task["id"]
    assert response.json()["user_id"] == user


def test_put_moves_updated_at_later_and_keeps_created_at(client, user):
    task = create_task(client, user, "Title")

    updated = client.put(task_url(user, task["id"]), json={"title": "Renamed"}).json()

    assert updated["created_at"] == task["created_at"]
    assert timestamp(updated["updated_at"]) > timestamp(task["updated_at"])


def test_put_with_the_same_content_still_counts_as_a_change(client, user):
    task = create_task(client, user, "Title", description="same")

    updated = client.put(task_url(user, task["id"]), json={"title": "Title", "description": "same"}).json()

    assert timestamp(updated["updated_at"]) > timestamp(task["updated_at"])


def test_put_is_stored_in_the_database(client, backend, user):
    task = create_task(client, user, "Title", description="old")

    client.put(task_url(user, task["id"]), json={"title": "Stored title"})

    row = backend.task_row(task["id"])
    assert (row["title"], row["description"], row["completed"]) == ("Stored title", None, False)


def test_put_on_an_unknown_task_is_404_and_creates_nothing(client, user):
    create_task(client, user, "Existing")
    missing = str(uuid.uuid4())

    problem(client.put(task_url(user, missing), json={"title": "Ghost"}), 404)
    problem(client.get(task_url(user, missing)), 404)
