"""The real `handler.handler` behind every front a user may put before the function: API Gateway
HTTP APIs (payload 2.0, on `$default` and on a named stage), REST APIs (payload 1.0, the stage
in the path), Lambda Function URLs and an Application Load Balancer."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from urllib.parse import urlencode

import pytest

from support.api import PROBLEM_TYPE, check_problem_document
from support.lambda_events import (
    Answer,
    LambdaContext,
    alb_event,
    function_url_event,
    http_api_event,
    rest_api_event,
)

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def handler(postgres_url, monkeypatch_module):
    """The module Lambda loads, imported as Lambda imports it: settings from the environment."""
    monkeypatch_module.setenv("DATABASE_URL", postgres_url)
    monkeypatch_module.setenv("LOG_LEVEL", "WARNING")
    from todo.settings import get_settings

    get_settings.cache_clear()
    sys.modules.pop("handler", None)
    module = importlib.import_module("handler")
    yield module.handler
    module.app.state.database.dispose()
    sys.modules.pop("handler", None)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_http_api_default_stage_creates_and_lists(handler):
    user = str(uuid.uuid4())
    created = Answer(handler(http_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "  a  "}), headers=JSON), LambdaContext()))
    assert created.status == 201
    task = created.json()
    assert task["title"] == "a"
    assert created.headers.get("location") == f"/api/{user}/tasks/{task['id']}"

    listed = Answer(handler(http_api_event("GET", f"/api/{user}/tasks", query="limit=1"), LambdaContext()))
    assert listed.status == 200
    assert [t["id"] for t in listed.json()] == [task["id"]]
    assert listed.headers.get("x-total-count") == "1"


def test_http_api_named_stage_keeps_the_stage_in_location_links_and_docs(handler):
    user = str(uuid.uuid4())
    for title in ("one", "two"):
        created = Answer(handler(http_api_event("POST", f"/api/{user}/tasks", stage="prod", body=json.dumps({"title": title}), headers=JSON), LambdaContext()))
        assert created.status == 201, created.text
    task_id = created.json()["id"]
    assert created.headers.get("location") == f"/prod/api/{user}/tasks/{task_id}"

    listed = Answer(handler(http_api_event("GET", f"/api/{user}/tasks", stage="prod", query="limit=1"), LambdaContext()))
    assert listed.status == 200
    assert listed.headers.get("link") == f'</prod/api/{user}/tasks?limit=1&offset=1>; rel="next"'

    docs = Answer(handler(http_api_event("GET", "/docs", stage="prod"), LambdaContext()))
    assert docs.status == 200
    assert "'/prod/openapi.json'" in docs.text
    schema = Answer(handler(http_api_event("GET", "/openapi.json", stage="prod"), LambdaContext()))
    assert schema.status == 200
    assert "/api/{user_id}/tasks" in schema.json()["paths"]


def test_rest_api_stage_in_the_request_context_path(handler):
    user = str(uuid.uuid4())
    created = Answer(handler(rest_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "rest"}), headers=JSON), LambdaContext()))
    assert created.status == 201, created.text
    task_id = created.json()["id"]
    assert created.headers.get("location") == f"/prod/api/{user}/tasks/{task_id}"

    fetched = Answer(handler(rest_api_event("GET", f"/api/{user}/tasks/{task_id}"), LambdaContext()))
    assert fetched.status == 200
    assert fetched.json()["title"] == "rest"

    docs = Answer(handler(rest_api_event("GET", "/docs"), LambdaContext()))
    assert "'/prod/openapi.json'" in docs.text


def test_function_url_event(handler):
    user = str(uuid.uuid4())
    created = Answer(handler(function_url_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "url"}), headers=JSON), LambdaContext()))
    assert created.status == 201
    assert created.headers.get("location").startswith(f"/api/{user}/tasks/")


def test_alb_event_with_multi_value_headers_and_query(handler):
    user = str(uuid.uuid4())
    for title in ("x", "y", "z"):
        created = Answer(handler(alb_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": title}), headers=JSON), LambdaContext()))
        assert created.status == 201, created.text
    # A repeated query parameter reaches the app as repeated; the last value counts.
    listed = Answer(handler(alb_event("GET", f"/api/{user}/tasks", query="limit=1&limit=2&sort=title"), LambdaContext()))
    assert listed.status == 200
    assert [t["title"] for t in listed.json()] == ["x", "y"]
    assert listed.headers.get("x-total-count") == "3"


def test_repeated_query_values_in_an_http_api_event(handler):
    user = str(uuid.uuid4())
    for title in ("b", "a"):
        Answer(handler(http_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": title}), headers=JSON), LambdaContext()))
    query = urlencode([("sort", "-title"), ("sort", "title")])
    listed = Answer(handler(http_api_event("GET", f"/api/{user}/tasks", query=query), LambdaContext()))
    assert [t["title"] for t in listed.json()] == ["a", "b"]


def test_base64_encoded_body_is_decoded(handler):
    user = str(uuid.uuid4())
    body = json.dumps({"title": "Grüße ✓", "description": "émoji 🎉"}, ensure_ascii=False)
    created = Answer(handler(http_api_event("POST", f"/api/{user}/tasks", body=body, headers=JSON, base64_body=True), LambdaContext()))
    assert created.status == 201, created.text
    task = created.json()
    assert (task["title"], task["description"]) == ("Grüße ✓", "émoji 🎉")


def test_cookies_and_repeated_headers_do_not_disturb_the_request(handler):
    user = str(uuid.uuid4())
    event = http_api_event(
        "POST",
        f"/api/{user}/tasks",
        body=json.dumps({"title": "c"}),
        cookies=["session=abc", "theme=dark"],
        headers={**JSON, "accept": "application/json,text/plain", "x-request-id": "trace-42"},
    )
    created = Answer(handler(event, LambdaContext()))
    assert created.status == 201
    assert created.headers.get("x-request-id") == "trace-42"


@pytest.mark.parametrize(
    "make_event",
    [
        lambda path: http_api_event("GET", path),
        lambda path: http_api_event("GET", path, stage="prod"),
        lambda path: rest_api_event("GET", path),
        lambda path: function_url_event("GET", path),
        lambda path: alb_event("GET", path),
    ],
    ids=["http-api", "http-api-stage", "rest-api", "function-url", "alb"],
)
def test_errors_are_problem_documents_in_plain_text_on_every_front(handler, make_event):
    response = Answer(handler(make_event("/api/not-a-uuid/tasks"), LambdaContext()))
    assert response.status == 400
    assert response.base64_encoded is False
    assert response.headers.get("content-type") == PROBLEM_TYPE
    problem = check_problem_document(400, PROBLEM_TYPE, response.text)
    assert problem["errors"][0]["loc"] == ["path", "user_id"]


def test_unknown_path_and_wrong_method_through_the_handler(handler):
    missing = Answer(handler(http_api_event("GET", "/nowhere"), LambdaContext()))
    assert missing.status == 404
    check_problem_document(404, missing.headers.get("content-type"), missing.text)

    wrong = Answer(handler(http_api_event("DELETE", f"/api/{uuid.uuid4()}/tasks"), LambdaContext()))
    assert wrong.status == 405
    assert set(wrong.headers.get("allow").replace(" ", "").split(",")) == {"GET", "POST"}
