"""The contract through AWS Lambda: API Gateway HTTP API (payload 2.0) and REST API (payload 1.0)
events fed to Mangum, on every backend; and the real `handler` module as Lambda imports it."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
from mangum import Mangum

from support.api import assert_task_shape, check_problem_document, parse_links, query_of, task_url, tasks_url
from support.lambda_events import Answer, LambdaContext, http_api_event, rest_api_event
from support.service_log import service_log

EVENTS = {"http-api-v2": http_api_event, "rest-api-v1": rest_api_event}


@pytest.fixture(params=list(EVENTS))
def invoke(request, backend):
    """Send one request as an API Gateway event to a Mangum handler of the backend's app."""
    handler = Mangum(backend.app, lifespan="off")
    make_event = EVENTS[request.param]

    def send(method, target, body=None, headers=None, base64_body=False):
        parts = urlsplit(target)
        payload = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        content = {"content-type": "application/json"} if payload is not None else {}
        event = make_event(method, parts.path, parts.query, payload, {**content, **(headers or {})}, base64_body)
        answer = Answer(handler(event, LambdaContext()))
        if answer.status >= 400:
            check_problem_document(answer.status, answer.headers.get("content-type", "").split(";")[0], answer.body.decode())
        return answer

    return send


def test_create_answers_201_with_location_and_the_task(invoke, user):
    answer = invoke("POST", tasks_url(user), {"title": "  From Lambda ", "description": "via API Gateway"})

    assert answer.status == 201
    task = answer.json()
    assert_task_shape(task)
    assert (task["user_id"], task["title"], task["description"]) == (user, "From Lambda", "via API Gateway")
    assert answer.headers["location"].endswith(task_url(user, task["id"]))
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers.get("x-request-id")


def test_a_base64_encoded_body_is_decoded(invoke, user):
    answer = invoke("POST", tasks_url(user), json.dumps({"title": "Café ☕"}).encode(), base64_body=True)

    assert answer.status == 201
    assert answer.json()["title"] == "Café ☕"


def test_a_list_with_a_query_string_has_total_and_links(invoke, user):
    created = [invoke("POST", tasks_url(user), {"title": f"task {n}"}).json() for n in range(5)]
    invoke("PATCH", task_url(user, created[0]["id"]) + "/complete", {"completed": True})

    answer = invoke("GET", f"{tasks_url(user)}?{urlencode({'completed': 'false', 'sort': 'title', 'limit': '2'})}")

    assert answer.status == 200
    assert [task["title"] for task in answer.json()] == ["task 1", "task 2"]
    assert answer.headers["x-total-count"] == "4"
    following = parse_links(answer.headers.get("link"))
    assert set(following) == {"next"}
    assert query_of(following["next"]) == {"completed": "false", "sort": "title", "limit": "2", "offset": "2"}
    target = following["next"]
    # The app's own path, whatever a stage in front of it (the event's path never has one).
    second = invoke("GET", target[target.index("/api/"):])
    assert [task["title"] for task in second.json()] == ["task 3", "task 4"]


def test_a_bad_request_is_a_400_problem_document(invoke, user):
    answer = invoke("POST", tasks_url(user), {"title": ""})

    assert answer.status == 400
    assert answer.headers["content-type"].split(";")[0] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400
    assert ["body", "title"] in [error["loc"] for error in problem["errors"]]


def test_malformed_json_is_a_400_problem_document(invoke, user):
    answer = invoke("POST", tasks_url(user), b'{"title": ')

    assert answer.status == 400


def test_an_unknown_task_is_a_404_problem_document(invoke, user):
    answer = invoke("GET", task_url(user, str(uuid.uuid4())))

    assert answer.status == 404
    assert answer.headers["content-type"].split(";")[0] == "application/problem+json"


def test_a_wrong_method_is_a_405_with_allow(invoke, user):
    answer = invoke("DELETE", tasks_url(user))

    assert answer.status == 405
    assert {"GET", "POST"} <= {m.strip() for m in answer.headers["allow"].split(",")}


def test_delete_answers_204_with_no_body(invoke, user):
    task = invoke("POST", tasks_url(user), {"title": "Doomed"}).json()

    answer = invoke("DELETE", task_url(user, task["id"]))

    assert answer.status == 204
    assert answer.body == b""
    assert invoke("GET", task_url(user, task["id"])).status == 404


def test_a_body_over_64_kib_is_413(invoke, user):
    answer = invoke("POST", tasks_url(user), {"title": "x" * (64 * 1024)})

    assert answer.status == 413


def test_the_request_id_is_echoed(invoke, user):
    answer = invoke("GET", tasks_url(user), headers={"x-request-id": "lambda-req-1"})

    assert answer.headers["x-request-id"] == "lambda-req-1"


# --- the module Lambda really loads ---------------------------------------------------------


@pytest.fixture
def handler_module(monkeypatch, postgres_url):
    """`handler` imported afresh, as Lambda imports it, with DATABASE_URL from the environment."""
    from todo.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    module = importlib.import_module("handler")
    yield module
    sys.modules.pop("handler", None)
    get_settings.cache_clear()


@pytest.mark.parametrize("make_event", EVENTS.values(), ids=EVENTS.keys())
def test_the_real_handler_serves_the_api_from_its_environment(handler_module, postgres_url, make_event):
    user = str(uuid.uuid4())
    created = Answer(
        handler_module.handler(make_event("POST", tasks_url(user), "", b'{"title": "real"}',
                                          {"content-type": "application/json"}), LambdaContext())
    )
    listed = Answer(handler_module.handler(make_event("GET", tasks_url(user), "limit=1"), LambdaContext()))
    health = Answer(handler_module.handler(make_event("GET", "/health"), LambdaContext()))

    assert created.status == 201
    assert stored_titles(postgres_url, user) == ["real"]  # in the database DATABASE_URL names
    assert listed.status == 200
    assert [task["id"] for task in listed.json()] == [created.json()["id"]]
    assert listed.headers["x-total-count"] == "1"
    assert (health.status, health.json()) == (200, {"status": "ok"})


def stored_titles(database_url: str, user: str) -> list[str]:
    from sqlalchemy import create_engine, select

    from todo.tables import Task

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(Task.title).where(Task.user_id == uuid.UUID(user))))
    finally:
        engine.dispose()


def test_a_containers_first_event_first_primes_every_endpoint_without_the_database():
    """Before the first event is served, one request per API route stops at its path (a 400):
    FastAPI's one-time work for each endpoint is then done, with no database (here there is none
    to reach) and no token. Later events prime nothing."""
    from conftest import make_app

    from todo.lambda_events import LambdaEventMiddleware
    from todo.priming import PRIMING_SCOPE_KEY

    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", db_connect_budget=0.5, auth_jwt_secret="s" * 32)
    seen = []

    async def recording(scope, receive, send):
        statuses = []

        async def recorded(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        await app(scope, receive, recorded)
        route = scope.get("route")
        priming = PRIMING_SCOPE_KEY in scope.get("extensions", {})
        seen.append((priming, scope["method"], getattr(route, "path", None), statuses[0]))

    handler = Mangum(LambdaEventMiddleware(recording), lifespan="off")
    health = http_api_event("GET", "/health", "", None, {})
    with service_log() as log:
        assert Answer(handler(health, LambdaContext())).status == 503
        assert Answer(handler(health, LambdaContext())).status == 503

    primed = [(method, path, status) for priming, method, path, status in seen if priming]
    api_routes = {(method, route.path) for route in app.state.api_routes for method in route.methods}
    assert sorted((method, path) for method, path, _ in primed) == sorted(
        (method, path) for method, path in api_routes if path != "/health"
    )
    assert {status for _, _, status in primed} == {400}
    assert [entry for entry in seen if not entry[0]] == [(False, "GET", "/health", 503)] * 2
    # The priming is nobody's request: it logs nothing (the two real requests log theirs).
    lines = [json.loads(line) for line in log().splitlines()]
    assert [line["logger"] for line in lines if line["logger"] == "todo.access"] == ["todo.access"] * 2
    assert not [line for line in lines if line["logger"] == "todo.priming" or line["message"] == "unhandled error"]
