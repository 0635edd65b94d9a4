"""The real `handler.handler` behind every front a user may put before the function: API Gateway
HTTP APIs (payload 2.0, on `$default` and on a named stage), REST APIs (payload 1.0, the stage
in the path), Lambda Function URLs and an Application Load Balancer."""

from __future__ import annotations

import base64
import importlib
import json
import sys
import uuid
from urllib.parse import urlencode

import pytest

from support.api import PROBLEM_TYPE, check_problem_document

HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


class LambdaContext:
    aws_request_id = "7c1d2a0e-0000-4000-8000-000000000001"
    function_name = "todo-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:todo-api"


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


def http_api_event(method, path, *, stage="$default", query="", body=None, headers=None, cookies=None, base64_body=False):
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {"host": HOST, "content-type": "application/json", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "domainPrefix": "abc123",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": stage,
            "time": "25/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1795622400000,
        },
        "isBase64Encoded": base64_body,
    }
    if cookies:
        event["cookies"] = cookies
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return event


def function_url_event(method, path, **kwargs):
    event = http_api_event(method, path, **kwargs)
    event["requestContext"]["domainName"] = "xyz.lambda-url.eu-west-1.on.aws"
    event["headers"]["host"] = "xyz.lambda-url.eu-west-1.on.aws"
    return event


def rest_api_event(method, path, *, stage="prod", query=None, body=None, headers=None):
    """A REST API proxy event: `path` without the stage, `requestContext.path` with it."""
    all_headers = {"Host": HOST, "Content-Type": "application/json", **(headers or {})}
    query = query or {}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] if isinstance(values, list) else values for name, values in all_headers.items()},
        "multiValueHeaders": {name: values if isinstance(values, list) else [values] for name, values in all_headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": "req-1",
            "resourcePath": "/{proxy+}",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def alb_event(method, path, *, query=None, body=None, headers=None):
    """An ALB target-group event with multi-value headers turned on."""
    all_headers = {"host": "todo.internal.example", "content-type": "application/json", **(headers or {})}
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/todo/1"}},
        "httpMethod": method,
        "path": path,
        "multiValueQueryStringParameters": query or {},
        "multiValueHeaders": {name: values if isinstance(values, list) else [values] for name, values in all_headers.items()},
        "body": body or "",
        "isBase64Encoded": False,
    }


def body_of(response: dict) -> str:
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def header(response: dict, name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ", ".join(values)
    return None


def test_http_api_default_stage_creates_and_lists(handler):
    user = str(uuid.uuid4())
    created = handler(http_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "  a  "})), LambdaContext())
    assert created["statusCode"] == 201
    task = json.loads(body_of(created))
    assert task["title"] == "a"
    assert header(created, "location") == f"/api/{user}/tasks/{task['id']}"

    listed = handler(http_api_event("GET", f"/api/{user}/tasks", query="limit=1"), LambdaContext())
    assert listed["statusCode"] == 200
    assert [t["id"] for t in json.loads(body_of(listed))] == [task["id"]]
    assert header(listed, "x-total-count") == "1"


def test_http_api_named_stage_keeps_the_stage_in_location_links_and_docs(handler):
    user = str(uuid.uuid4())
    for title in ("one", "two"):
        created = handler(http_api_event("POST", f"/api/{user}/tasks", stage="prod", body=json.dumps({"title": title})), LambdaContext())
        assert created["statusCode"] == 201, body_of(created)
    task_id = json.loads(body_of(created))["id"]
    assert header(created, "location") == f"/prod/api/{user}/tasks/{task_id}"

    listed = handler(http_api_event("GET", f"/api/{user}/tasks", stage="prod", query="limit=1"), LambdaContext())
    assert listed["statusCode"] == 200
    assert header(listed, "link") == f'</prod/api/{user}/tasks?limit=1&offset=1>; rel="next"'

    docs = handler(http_api_event("GET", "/docs", stage="prod"), LambdaContext())
    assert docs["statusCode"] == 200
    assert "'/prod/openapi.json'" in body_of(docs)
    schema = handler(http_api_event("GET", "/openapi.json", stage="prod"), LambdaContext())
    assert schema["statusCode"] == 200
    assert "/api/{user_id}/tasks" in json.loads(body_of(schema))["paths"]


def test_rest_api_stage_in_the_request_context_path(handler):
    user = str(uuid.uuid4())
    created = handler(rest_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "rest"})), LambdaContext())
    assert created["statusCode"] == 201, body_of(created)
    task_id = json.loads(body_of(created))["id"]
    assert header(created, "location") == f"/prod/api/{user}/tasks/{task_id}"

    fetched = handler(rest_api_event("GET", f"/api/{user}/tasks/{task_id}"), LambdaContext())
    assert fetched["statusCode"] == 200
    assert json.loads(body_of(fetched))["title"] == "rest"

    docs = handler(rest_api_event("GET", "/docs"), LambdaContext())
    assert "'/prod/openapi.json'" in body_of(docs)


def test_function_url_event(handler):
    user = str(uuid.uuid4())
    created = handler(function_url_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": "url"})), LambdaContext())
    assert created["statusCode"] == 201
    assert header(created, "location").startswith(f"/api/{user}/tasks/")


def test_alb_event_with_multi_value_headers_and_query(handler):
    user = str(uuid.uuid4())
    for title in ("x", "y", "z"):
        created = handler(alb_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": title})), LambdaContext())
        assert created["statusCode"] == 201, body_of(created)
    # A repeated query parameter reaches the app as repeated; the last value counts.
    listed = handler(alb_event("GET", f"/api/{user}/tasks", query={"limit": ["1", "2"], "sort": ["title"]}), LambdaContext())
    assert listed["statusCode"] == 200
    assert [t["title"] for t in json.loads(body_of(listed))] == ["x", "y"]
    assert header(listed, "x-total-count") == "3"


def test_repeated_query_values_in_an_http_api_event(handler):
    user = str(uuid.uuid4())
    for title in ("b", "a"):
        handler(http_api_event("POST", f"/api/{user}/tasks", body=json.dumps({"title": title})), LambdaContext())
    query = urlencode([("sort", "-title"), ("sort", "title")])
    listed = handler(http_api_event("GET", f"/api/{user}/tasks", query=query), LambdaContext())
    assert [t["title"] for t in json.loads(body_of(listed))] == ["a", "b"]


def test_base64_encoded_body_is_decoded(handler):
    user = str(uuid.uuid4())
    body = json.dumps({"title": "Grüße ✓", "description": "émoji 🎉"}, ensure_ascii=False)
    created = handler(http_api_event("POST", f"/api/{user}/tasks", body=body, base64_body=True), LambdaContext())
    assert created["statusCode"] == 201, body_of(created)
    task = json.loads(body_of(created))
    assert (task["title"], task["description"]) == ("Grüße ✓", "émoji 🎉")


def test_cookies_and_repeated_headers_do_not_disturb_the_request(handler):
    user = str(uuid.uuid4())
    event = http_api_event(
        "POST",
        f"/api/{user}/tasks",
        body=json.dumps({"title": "c"}),
        cookies=["session=abc", "theme=dark"],
        headers={"accept": "application/json,text/plain", "x-request-id": "trace-42"},
    )
    created = handler(event, LambdaContext())
    assert created["statusCode"] == 201
    assert header(created, "x-request-id") == "trace-42"


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
    response = handler(make_event("/api/not-a-uuid/tasks"), LambdaContext())
    assert response["statusCode"] == 400
    assert response["isBase64Encoded"] is False
    assert header(response, "content-type") == PROBLEM_TYPE
    problem = check_problem_document(400, PROBLEM_TYPE, response["body"])
    assert problem["errors"][0]["loc"] == ["path", "user_id"]


def test_unknown_path_and_wrong_method_through_the_handler(handler):
    missing = handler(http_api_event("GET", "/nowhere"), LambdaContext())
    assert missing["statusCode"] == 404
    check_problem_document(404, header(missing, "content-type"), body_of(missing))

    wrong = handler(http_api_event("DELETE", f"/api/{uuid.uuid4()}/tasks"), LambdaContext())
    assert wrong["statusCode"] == 405
    assert set(header(wrong, "allow").replace(" ", "").split(",")) == {"GET", "POST"}
