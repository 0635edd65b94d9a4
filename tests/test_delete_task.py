"""DELETE /api/{user_id}/tasks/{id}: a deleted task is gone."""

import uuid

import pytest

from support.api import complete_url, create_task, problem, task_url, tasks_url


def test_delete_answers_204_with_an_empty_body(client, user):
    task = create_task(client, user, "Doomed")

    response = client.delete(task_url(user, task["id"]))

    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", task_url, None),
        ("PUT", task_url, {"title": "Back again"}),
        ("PATCH", complete_url, {"completed": True}),
        ("DELETE", task_url, None),
    ],
    ids=["GET", "PUT", "PATCH", "DELETE"],
)
def test_every_endpoint_answers_404_for_a_deleted_task(client, user, method, path, body):
    task = create_task(client, user, "Doomed")
    client.delete(task_url(user, task["id"]))

    problem(client.request(method, path(user, task["id"]), json=body), 404)


def test_a_deleted_task_leaves_the_list_and_the_count(client, user):
    kept = create_task(client, user, "Kept")
    doomed = create_task(client, user, "Doomed")

    client.delete(task_url(user, doomed["id"]))

    response = client.get(tasks_url(user))
    assert [task["id"] for task in response.json()] == [kept["id"]]
    assert response.headers["x-total-count"] == "1"


def test_delete_removes_the_row_from_the_database(client, backend, user):
    task = create_task(client, user, "Doomed")

    client.delete(task_url(user, task["id"]))

    assert backend.task_row(task["id"]) is None


def test_delete_leaves_the_users_other_tasks_alone(client, user):
    kept = create_task(client, user, "Kept")
    doomed = create_task(client, user, "Doomed")

    client.delete(task_url(user, doomed["id"]))

    assert client.get(task_url(user, kept["id"])).json() == kept


def test_delete_of_an_unknown_task_is_404(client, user):
    create_task(client, user, "Existing")

    problem(client.delete(task_url(user, str(uuid.uuid4()))), 404)
