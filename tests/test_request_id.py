"""X-Request-ID: echoed when valid, made up otherwise, on every response and every log line."""

import io
import json
import logging
import uuid

import pytest
from sqlalchemy import create_engine

from conftest import make_app, open_client
from support.api import tasks_url

PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


def is_valid_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and all(0x20 <= ord(c) <= 0x7E for c in value)


@pytest.mark.parametrize(
    "sent",
    ["abc-123", str(uuid.uuid4()), "x" * 128, PRINTABLE_ASCII, "with inner space"],
    ids=["short", "uuid", "128-chars", "every-printable", "inner-space"],
)
def test_a_valid_request_id_is_echoed(client, user, sent):
    response = client.get(tasks_url(user), headers={"X-Request-ID": sent})

    assert response.headers["x-request-id"] == sent


def test_a_request_without_an_id_gets_a_new_one_each_time(client, user):
    first = client.get(tasks_url(user)).headers["x-request-id"]
    second = client.get(tasks_url(user)).headers["x-request-id"]

    assert is_valid_request_id(first) and is_valid_request_id(second)
    assert first != second


@pytest.mark.parametrize(
    "sent",
    [b"x" * 129, b"bad\x01id", b"tab\tid", b"del\x7fid", "caf\u00e9".encode("latin-1"), "caf\u00e9".encode()],
    ids=["129-chars", "control", "tab", "delete", "latin-1", "utf-8"],
)
def test_an_invalid_request_id_is_replaced(client, user, sent):
    response = client.get(tasks_url(user), headers=[(b"X-Request-ID", sent)])

    replaced = response.headers["x-request-id"]
    assert replaced.encode("latin-1") != sent
    assert is_valid_request_id(replaced)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("POST", "/api/{u}/tasks", {"title": "x"}),
        ("POST", "/api/{u}/tasks", {"title": ""}),
        ("GET", "/api/{u}/tasks/5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c21", None),
        ("GET", "/nowhere", None),
        ("DELETE", "/api/{u}/tasks", None),
        ("POST", "/api/{u}/tasks", "x" * 70_000),
    ],
    ids=["200", "201", "400", "404-task", "404-path", "405", "413"],
)
def test_every_response_carries_the_request_id(client, user, method, path, body):
    response = client.request(method, path.format(u=user), json=body, headers={"X-Request-ID": "trace-me-42"})

    assert response.headers["x-request-id"] == "trace-me-42"


def test_a_503_carries_the_request_id():
    client = open_client(make_app("postgresql://nobody@127.0.0.1:1/none", db_connect_budget=0))

    response = client.get("/health", headers={"X-Request-ID": "trace-me-503"})

    assert response.status_code == 503
    assert response.headers["x-request-id"] == "trace-me-503"


@pytest.fixture
def log_lines():
    """Every line the service logs during the test (it logs JSON lines to a stream)."""
    captured = io.StringIO()
    swapped = []
    for logger in (logging.getLogger("todo"), logging.getLogger()):
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                swapped.append((handler, handler.setStream(captured)))
    assert swapped, "the service's logger has no stream handler to read"
    yield lambda: [line for line in captured.getvalue().splitlines() if line.strip()]
    for handler, stream in swapped:
        handler.setStream(stream)


def test_every_log_line_of_a_request_carries_its_request_id(client, user, log_lines):
    client.post(tasks_url(user), json={"title": "logged"}, headers={"X-Request-ID": "log-me-7"})

    lines = log_lines()
    assert lines, "the request logged nothing"
    for line in lines:
        assert json.loads(line).get("request_id") == "log-me-7", line


def test_an_unexpected_error_goes_to_the_log_in_full_with_the_request_id(scratch_url, log_lines):
    from todo.tables import Task

    client = open_client(make_app(scratch_url), [scratch_url])
    user = str(uuid.uuid4())
    client.post(tasks_url(user), json={"title": "before"})
    engine = create_engine(scratch_url)
    Task.__table__.drop(engine)
    engine.dispose()

    response = client.get(tasks_url(user), headers={"X-Request-ID": "broken-1"})

    assert response.status_code == 500
    entries = [json.loads(line) for line in log_lines()]
    mine = [entry for entry in entries if entry.get("request_id") == "broken-1"]
    assert any("Traceback" in json.dumps(entry) for entry in mine), mine
    client.close()
