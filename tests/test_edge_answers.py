"""Answers at the edges: where the request is odd, the process is cold, or a browser asks."""

from __future__ import annotations

import uuid

import pytest

from conftest import make_app, open_client
from support.api import problem, tasks_url
from support.lambda_events import Answer, LambdaContext, http_api_event

ORIGIN = "https://app.example"


def test_a_cold_process_whose_pool_is_exhausted_answers_503_not_500(postgres_url):
    app = make_app(postgres_url, db_pool_size=1, db_connect_budget=0.5)
    pool = app.state.database.pool
    held = [pool.connect(), pool.connect()]  # the pool and its overflow, both busy
    try:
        response = open_client(app).get(tasks_url(str(uuid.uuid4())))
        problem(response, 503)
        assert response.headers["retry-after"].isdigit()
    finally:
        for connection in held:
            connection.close()
        app.state.database.dispose()


@pytest.fixture
def cors_client(backend):
    client = open_client(make_app(backend.url, cors_origins=[ORIGIN]), backend.secrets())
    yield client
    client.close()


def test_a_body_declared_too_large_is_readable_by_a_listed_origin(cors_client, user):
    response = cors_client.post(
        tasks_url(user),
        content=b"{}",
        headers={"Origin": ORIGIN, "Content-Type": "application/json", "Content-Length": str(64 * 1024 + 1)},
    )
    problem(response, 413)
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_a_listed_origin_may_read_retry_after_and_allow(cors_client, user):
    response = cors_client.delete(tasks_url(user), headers={"Origin": ORIGIN})
    problem(response, 405)
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "allow", "x-request-id", "x-total-count", "link", "location"} <= exposed


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_a_wrong_method_on_the_docs_names_the_allowed_ones(client, path):
    response = client.post(path)
    problem(response, 405)
    assert "GET" in {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    "spelling", [str.upper, lambda u: u.replace("-", ""), lambda u: "{" + u + "}"], ids=["upper", "no-hyphens", "braces"]
)
def test_links_use_the_canonical_uuid_whatever_the_path_spelled(client, user, spelling):
    for title in ("a", "b"):
        assert client.post(tasks_url(user), json={"title": title}).status_code == 201
    response = client.get(tasks_url(spelling(user)), params={"limit": 1})
    assert response.status_code == 200
    assert response.headers["link"] == f'</api/{user}/tasks?limit=1&offset=1>; rel="next"'


def test_a_stage_named_like_the_path_is_kept_behind_a_custom_domain(postgres_url):
    """On a custom domain the stage is mapped away: a stage called "api" must not eat "/api"."""
    from mangum import Mangum

    from todo.lambda_events import LambdaEventMiddleware

    handler = Mangum(LambdaEventMiddleware(make_app(postgres_url)), lifespan="off")
    user = str(uuid.uuid4())
    event = http_api_event("GET", tasks_url(user), domain="todo.example.com")
    event["requestContext"]["stage"] = "api"
    answer = Answer(handler(event, LambdaContext()))
    assert answer.status == 200, answer.text
    assert answer.json() == []


def test_a_change_from_a_container_whose_clock_is_behind_still_moves_updated_at_forward(postgres_url, monkeypatch):
    from datetime import UTC, datetime

    client = open_client(make_app(postgres_url))
    user = str(uuid.uuid4())
    task = client.post(tasks_url(user), json={"title": "first"}).json()
    monkeypatch.setattr("todo.service._now", lambda: datetime(2001, 1, 1, tzinfo=UTC))

    replaced = client.put(f"{tasks_url(user)}/{task['id']}", json={"title": "second"}).json()
    completed = client.patch(f"{tasks_url(user)}/{task['id']}/complete", json={"completed": True}).json()

    def instant(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert instant(task["updated_at"]) < instant(replaced["updated_at"]) < instant(completed["updated_at"])
    assert replaced["created_at"] == task["created_at"]
