"""Unknown paths, wrong methods, and the unexpected: all problem documents."""

import uuid

import pytest
from sqlalchemy import create_engine

from conftest import open_client, make_app
from support.api import problem, task_url, tasks_url

TASK = "5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c21"


@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/api", "/api/{u}", "/api/{u}/task", "/api/{u}/tasks/{t}/completed", "/api/{u}/tasks/{t}/x/y",
     "/health/", "/api/{u}/tasks/", "/api/{u}/tasks/{t}/", "/api/{u}/tasks/{t}/complete/", "/API/{u}/tasks"],
)
def test_an_unknown_path_is_a_404_problem(client, user, path):
    problem(client.get(path.format(u=user, t=TASK)), 404)


def test_a_trailing_slash_is_a_different_path_and_not_a_redirect(client, user):
    response = client.post(tasks_url(user) + "/", json={"title": "x"})

    problem(response, 404)
    assert "location" not in response.headers
    assert client.get(tasks_url(user)).json() == []


def allowed(response) -> set[str]:
    assert "allow" in response.headers, response.headers
    methods = {method.strip().upper() for method in response.headers["allow"].split(",")}
    # HEAD and OPTIONS may come with GET or with CORS; the contract's methods must all be there.
    return methods - {"HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/{u}/tasks", {"GET", "POST"}),
        ("PUT", "/api/{u}/tasks", {"GET", "POST"}),
        ("PATCH", "/api/{u}/tasks", {"GET", "POST"}),
        ("POST", "/api/{u}/tasks/{t}", {"GET", "PUT", "DELETE"}),
        ("PATCH", "/api/{u}/tasks/{t}", {"GET", "PUT", "DELETE"}),
        ("GET", "/api/{u}/tasks/{t}/complete", {"PATCH"}),
        ("PUT", "/api/{u}/tasks/{t}/complete", {"PATCH"}),
        ("POST", "/health", {"GET"}),
        ("DELETE", "/health", {"GET"}),
    ],
)
def test_a_wrong_method_is_a_405_problem_that_allows_every_method_of_the_path(client, user, method, path, allow):
    response = client.request(method, path.format(u=user, t=TASK), json={"title": "x"})

    problem(response, 405)
    assert allowed(response) == allow


def test_a_wrong_method_changes_nothing(client, user):
    task = client.post(tasks_url(user), json={"title": "Kept"}).json()

    problem(client.post(task_url(user, task["id"]), json={"title": "Other"}), 405)
    problem(client.delete(tasks_url(user)), 405)

    assert client.get(tasks_url(user)).json() == [task]


def test_an_unexpected_failure_is_a_500_problem_that_shows_nothing_inside(scratch_url):
    from todo.tables import Task

    client = open_client(make_app(scratch_url), [scratch_url])
    user = str(uuid.uuid4())
    assert client.post(tasks_url(user), json={"title": "before"}).status_code == 201
    engine = create_engine(scratch_url)
    Task.__table__.drop(engine)  # the schema breaks under the running app
    engine.dispose()

    response = client.get(tasks_url(user))

    body = problem(response, 500)
    assert "tasks" not in body["detail"]
    client.close()
