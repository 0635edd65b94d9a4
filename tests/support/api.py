"""Small helpers that speak the contract: URLs, creating tasks, reading problem documents,
links and timestamps. They assert only what docs/API.md says."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROBLEM_TYPE = "application/problem+json"

# What no error answer may show (docs/API.md, "Errors"): stack traces, SQL, driver messages.
_LEAKS_CASE_SENSITIVE = ("Traceback", 'File "', "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "RETURNING")
_LEAKS_ANY_CASE = ("psycopg", "sqlalchemy", "pydantic", "OperationalError", "postgresql+")


def tasks_url(user_id: str) -> str:
    return f"/api/{user_id}/tasks"


def task_url(user_id: str, task_id: str) -> str:
    return f"/api/{user_id}/tasks/{task_id}"


def complete_url(user_id: str, task_id: str) -> str:
    return f"/api/{user_id}/tasks/{task_id}/complete"


def create_task(client, user_id: str, title: str = "Buy milk", description: Any = ..., **more: Any) -> dict:
    body: dict[str, Any] = {"title": title, **more}
    if description is not ...:
        body["description"] = description
    response = client.post(tasks_url(user_id), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def media_type(response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def assert_no_leak(text: str, secrets: list[str] | tuple[str, ...] = ()) -> None:
    for needle in _LEAKS_CASE_SENSITIVE:
        assert needle not in text, f"an error answer shows {needle!r}: {text[:500]}"
    lowered = text.lower()
    for needle in _LEAKS_ANY_CASE:
        assert needle.lower() not in lowered, f"an error answer shows {needle!r}: {text[:500]}"
    for secret in secrets:
        assert secret not in text, f"an error answer shows a connection detail {secret!r}: {text[:500]}"


def check_problem_document(status: int, content_type: str, body_text: str) -> dict:
    """The rules every error answer follows: an RFC 9457 problem document."""
    assert content_type == PROBLEM_TYPE, f"{status} answered with {content_type!r}: {body_text[:300]}"
    body = json.loads(body_text)
    assert isinstance(body, dict), body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert type(body.get("status")) is int and body["status"] == status, body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    # Problems of this API have no type of their own: "about:blank", titled by the HTTP status.
    assert body.get("type") == "about:blank", body
    assert body["title"] == HTTPStatus(status).phrase, body
    if "errors" in body:
        assert isinstance(body["errors"], list) and body["errors"], body
        for error in body["errors"]:
            assert isinstance(error, dict), body
            assert isinstance(error.get("loc"), list), body
            assert isinstance(error.get("msg"), str), body
            assert isinstance(error.get("type"), str), body
    return body


def check_error_response(response, secrets: list[str] | tuple[str, ...] = ()) -> None:
    """httpx response hook: every error answer of every test is held to the contract."""
    if response.status_code < 400:
        return
    response.read()
    assert_no_leak(response.text, secrets)
    for value in response.headers.values():
        assert_no_leak(value, secrets)
    check_problem_document(response.status_code, media_type(response), response.text)


def problem(response, status: int) -> dict:
    """Assert the answer is a problem document with this status; return its body."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    return check_problem_document(status, media_type(response), response.text)


def validation_problem(response, *locs: list) -> dict:
    """A 400 problem document whose `errors` name each of the given locations."""
    body = problem(response, 400)
    assert "errors" in body, body
    found = [error["loc"] for error in body["errors"]]
    for loc in locs:
        assert list(loc) in found, f"no error at {loc}: {found}"
    return body


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def links(response) -> dict[str, str]:
    """The targets of a response's Link header by relation."""
    return parse_links(response.headers.get("link"))


def parse_links(header: str | None) -> dict[str, str]:
    """The targets of a Link header value by relation."""
    if header is None:
        return {}
    found: dict[str, str] = {}
    for target, rel in _LINK.findall(header):
        for name in rel.split():
            assert name not in found, f"rel={name} twice in {header!r}"
            found[name] = target
    return found


def query_of(target: str) -> dict[str, str]:
    params = parse_qs(urlsplit(target).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in params.values()), target
    return {name: values[0] for name, values in params.items()}


_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


def timestamp(value: str) -> datetime:
    """Parse an ISO 8601 date-time in UTC with an explicit offset, asserting that format."""
    assert isinstance(value, str) and _ISO_UTC.match(value), f"not ISO 8601 UTC with Z or +00:00: {value!r}"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    return parsed


TASK_FIELDS = {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"}


def assert_task_shape(task: Any) -> None:
    assert isinstance(task, dict) and set(task) == TASK_FIELDS, task
    assert isinstance(task["id"], str) and isinstance(task["user_id"], str)
    assert isinstance(task["title"], str)
    assert task["description"] is None or isinstance(task["description"], str)
    assert type(task["completed"]) is bool
    timestamp(task["created_at"])
    timestamp(task["updated_at"])
