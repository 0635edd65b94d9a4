"""A task is visible and changeable only under its owner's user_id: any other user gets 404
for it on every endpoint, exactly as if it did not exist, and never sees it in a list."""

import uuid

import pytest

from support.api import complete_url, create_task, problem, task_url, tasks_url

ATTEMPTS = [
    ("GET", task_url, None),
    ("PUT", task_url, {"title": "Taken over", "description": "mine now"}),
    ("PATCH", complete_url, {"completed": True}),
    ("DELETE", task_url, None),
]
ATTEMPT_IDS = [method for method, _, _ in ATTEMPTS]


@pytest.mark.parametrize(("method", "path", "body"), ATTEMPTS, ids=ATTEMPT_IDS)
def test_another_user_gets_404_exactly_as_for_a_missing_task(client, user, other_user, method, path, body):
    task = create_task(client, user, "Private", description="secret")
    create_task(client, other_user, "The other user's own task")

    foreign = client.request(method, path(other_user, task["id"]), json=body)
    missing = client.request(method, path(other_user, str(uuid.uuid4())), json=body)

    assert problem(foreign, 404) == problem(missing, 404)


@pytest.mark.parametrize(("method", "path", "body"), ATTEMPTS, ids=ATTEMPT_IDS)
def test_another_users_attempt_leaves_the_owners_task_unchanged(client, backend, user, other_user, method, path, body):
    task = create_task(client, user, "Private", description="secret")
    row_before = backend.task_row(task["id"])

    client.request(method, path(other_user, task["id"]), json=body)

    assert client.get(task_url(user, task["id"])).json() == task
    assert backend.task_row(task["id"]) == row_before


def test_another_user_never_sees_the_task_in_a_list(client, user, other_user):
    task = create_task(client, user, "Private needle", description="secret")
    client.patch(complete_url(user, task["id"]), json={"completed": True})
    theirs = create_task(client, other_user, "Their own")

    for params in ({}, {"q": "needle"}, {"q": "secret"}, {"completed": "true"}, {"sort": "title"}):
        response = client.get(tasks_url(other_user), params=params)
        assert task["id"] not in [t["id"] for t in response.json()]
        assert response.headers["x-total-count"] == ("1" if params in ({}, {"sort": "title"}) else "0")
    assert [t["id"] for t in client.get(tasks_url(other_user)).json()] == [theirs["id"]]


def test_a_user_without_tasks_gets_an_empty_list_while_others_have_tasks(client, user, other_user):
    create_task(client, user, "Private")

    response = client.get(tasks_url(other_user))

    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"


def test_the_owner_still_reaches_the_task_after_another_users_attempts(client, user, other_user):
    task = create_task(client, user, "Private")
    for method, path, body in ATTEMPTS:
        client.request(method, path(other_user, task["id"]), json=body)

    assert client.get(task_url(user, task["id"])).json() == task
    assert client.delete(task_url(user, task["id"])).status_code == 204
