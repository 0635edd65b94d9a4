"""GET /api/{user_id}/tasks/{id}"""

import uuid

from support.api import complete_url, create_task, problem, task_url


def test_get_answers_200_with_the_task(client, user):
    task = create_task(client, user, "Read me", description="slowly")

    response = client.get(task_url(user, task["id"]))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == task


def test_get_shows_the_latest_state(client, user):
    task = create_task(client, user, "Read me")
    client.patch(complete_url(user, task["id"]), json={"completed": True})

    response = client.get(task_url(user, task["id"]))

    assert response.json()["completed"] is True


def test_get_of_an_unknown_task_is_404(client, user):
    create_task(client, user, "Another one")

    problem(client.get(task_url(user, str(uuid.uuid4()))), 404)


def test_get_of_a_task_for_a_user_without_tasks_is_404(client, user):
    problem(client.get(task_url(user, str(uuid.uuid4()))), 404)
