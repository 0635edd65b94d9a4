"""PATCH /api/{user_id}/tasks/{id}/complete"""

import json
import uuid

import pytest

from support.api import complete_url, create_task, problem, task_url, timestamp, validation_problem


def test_patch_true_completes_the_task(client, user):
    task = create_task(client, user, "Title", description="details")

    response = client.patch(complete_url(user, task["id"]), json={"completed": True})

    assert response.status_code == 200
    done = response.json()
    assert done["completed"] is True
    unchanged = ("id", "user_id", "title", "description", "created_at")
    assert {k: done[k] for k in unchanged} == {k: task[k] for k in unchanged}
    assert timestamp(done["updated_at"]) > timestamp(task["updated_at"])
    assert client.get(task_url(user, task["id"])).json() == done


def test_patch_false_reopens_a_completed_task(client, user):
    task = create_task(client, user, "Title")
    done = client.patch(complete_url(user, task["id"]), json={"completed": True}).json()

    response = client.patch(complete_url(user, task["id"]), json={"completed": False})

    assert response.status_code == 200
    assert response.json()["completed"] is False
    assert timestamp(response.json()["updated_at"]) > timestamp(done["updated_at"])
    assert client.get(task_url(user, task["id"])).json()["completed"] is False


def test_patch_with_the_current_value_still_moves_updated_at(client, user):
    task = create_task(client, user, "Title")
    first = client.patch(complete_url(user, task["id"]), json={"completed": True}).json()

    second = client.patch(complete_url(user, task["id"]), json={"completed": True}).json()

    assert second["completed"] is True
    assert timestamp(second["updated_at"]) > timestamp(first["updated_at"])


def test_patch_false_on_an_open_task_keeps_it_open(client, user):
    task = create_task(client, user, "Title")

    response = client.patch(complete_url(user, task["id"]), json={"completed": False})

    assert response.status_code == 200
    assert response.json()["completed"] is False


def test_patch_ignores_other_fields_in_the_body(client, user):
    task = create_task(client, user, "Title", description="keep")

    response = client.patch(
        complete_url(user, task["id"]), json={"completed": True, "title": "Hacked", "description": None}
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["description"]) == ("Title", "keep")


def test_patch_is_stored_in_the_database(client, backend, user):
    task = create_task(client, user, "Title")

    client.patch(complete_url(user, task["id"]), json={"completed": True})

    assert backend.task_row(task["id"])["completed"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"completed": "true"},
        {"completed": "false"},
        {"completed": 1},
        {"completed": 0},
        {"completed": 1.0},
        {"completed": None},
        {"completed": []},
        {"completed": {}},
        {"completed": "yes"},
        {},
        {"complete": True},
    ],
    ids=lambda body: json.dumps(body),
)
def test_patch_with_anything_but_a_json_boolean_is_400_and_changes_nothing(client, user, body):
    task = create_task(client, user, "Title")

    validation_problem(client.patch(complete_url(user, task["id"]), json=body), ["body", "completed"])

    assert client.get(task_url(user, task["id"])).json() == task


@pytest.mark.parametrize(
    "raw",
    [b"true", b"[true]", b'"true"', b"null", b"1", b"", b'{"completed": tru}', b"{'completed': true}"],
    ids=["bare-true", "array", "string", "null", "number", "empty", "malformed", "single-quotes"],
)
def test_patch_with_a_body_that_is_not_a_json_object_is_400(client, user, raw):
    task = create_task(client, user, "Title")

    response = client.patch(complete_url(user, task["id"]), content=raw, headers={"content-type": "application/json"})

    body = problem(response, 400)
    assert any(error["loc"][:1] == ["body"] for error in body.get("errors", [])), body
    assert client.get(task_url(user, task["id"])).json() == task


def test_patch_on_an_unknown_task_is_404(client, user):
    create_task(client, user, "Existing")

    problem(client.patch(complete_url(user, str(uuid.uuid4())), json={"completed": True}), 404)
