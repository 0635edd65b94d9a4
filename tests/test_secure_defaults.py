"""Secure defaults: CORS off unless origins are listed, no framework or server banner, docs
that a setting switches off, the 64 KiB body limit at its edge, and request ids that are
never trusted (or logged) unless they are printable ASCII of at most 128 characters.

(The contract tests cover the rest of X-Request-ID and of the body limit.)
"""

from __future__ import annotations

import json

import pytest

from conftest import make_app, open_client
from support.service_log import service_log
from support.api import problem, tasks_url
from support.asgi_client import InProcessClient

APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"
LIMIT = 64 * 1024


def preflight(client, path: str, origin: str, method: str = "POST"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
    )


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


# --- CORS --------------------------------------------------------------------------------------


def test_without_cors_origins_no_answer_allows_any_origin(backend, user, monkeypatch):
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    client = open_client(make_app(backend.url), backend.secrets())

    for response in (
        client.get(tasks_url(user), headers={"Origin": APP_ORIGIN}),
        client.post(tasks_url(user), json={"title": "x"}, headers={"Origin": APP_ORIGIN}),
        preflight(client, tasks_url(user), APP_ORIGIN),
        client.get("/health", headers={"Origin": "null"}),
    ):
        assert cors_headers(response) == {}, (response.request.method, dict(response.headers))


def test_cors_origins_come_from_the_environment_comma_separated(monkeypatch):
    from todo.settings import Settings

    monkeypatch.setenv("CORS_ORIGINS", f" {APP_ORIGIN} , https://admin.example,")

    assert Settings().cors_origins == [APP_ORIGIN, "https://admin.example"]


@pytest.fixture
def cors_app(backend):
    return make_app(backend.url, cors_origins=[APP_ORIGIN])


@pytest.fixture
def cors_client(cors_app, backend):
    client = open_client(cors_app, backend.secrets())
    yield client
    client.close()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_a_preflight_from_a_listed_origin_is_allowed(cors_client, user, method):
    response = preflight(cors_client, tasks_url(user) + "/5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c21", APP_ORIGIN, method)

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert method in [m.strip() for m in response.headers["access-control-allow-methods"].split(",")]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers and "x-request-id" in allowed_headers
    # Credentials were not asked for, and are not offered.
    assert "access-control-allow-credentials" not in response.headers


def test_a_listed_origin_can_read_the_answer_and_its_headers(cors_client, user):
    response = cors_client.post(tasks_url(user), json={"title": "from the browser"}, headers={"Origin": APP_ORIGIN})

    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"location", "link", "x-total-count", "x-request-id"} <= exposed


@pytest.mark.parametrize("origin", [OTHER_ORIGIN, "http://app.example", APP_ORIGIN + ".evil.example", "null", "*"])
def test_another_origin_is_not_allowed(cors_app, user, origin):
    # A client that does not check the shape of error answers: the refused preflight has a
    # test of its own below.
    client = InProcessClient(cors_app)
    for response in (
        preflight(client, tasks_url(user), origin),
        client.get(tasks_url(user), headers={"Origin": origin}),
    ):
        assert "access-control-allow-origin" not in response.headers, dict(response.headers)


def test_a_refused_preflight_is_a_problem_document(cors_client, user):
    # Every error answer is a problem document (docs/API.md, "Errors"); the client fixture checks
    # the shape of any 4xx it receives, this asserts that a refusal is one.
    response = preflight(cors_client, tasks_url(user), OTHER_ORIGIN)

    assert response.status_code >= 400
    problem(response, response.status_code)


# --- banners -----------------------------------------------------------------------------------

BANNER_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "via", "x-runtime", "x-generator")
FRAMEWORK_NAMES = ("fastapi", "starlette", "uvicorn", "python", "mangum", "pydantic", "sqlmodel")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/health", None), ("GET", "/api/{u}/tasks", None), ("POST", "/api/{u}/tasks", {"title": "x"}),
     ("POST", "/api/{u}/tasks", {"title": ""}), ("GET", "/nowhere", None), ("DELETE", "/api/{u}/tasks", None),
     ("GET", "/openapi.json", None)],
    ids=["health", "list", "create", "400", "404", "405", "openapi"],
)
def test_no_answer_names_the_server_or_framework(client, user, method, path, body):
    response = client.request(method, path.format(u=user), json=body)

    for header in BANNER_HEADERS:
        assert header not in response.headers, (header, response.headers[header])
    for name, value in response.headers.items():
        assert not any(framework in value.lower() for framework in FRAMEWORK_NAMES), (name, value)
    if path != "/openapi.json":
        assert not any(framework in response.text.lower() for framework in FRAMEWORK_NAMES), response.text


# --- docs --------------------------------------------------------------------------------------

DOC_PATHS = ["/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"]


def test_the_docs_are_served_by_default(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"]


@pytest.mark.parametrize("path", DOC_PATHS)
def test_docs_switched_off_are_404(backend, path):
    client = open_client(make_app(backend.url, docs_enabled=False), backend.secrets())

    problem(client.get(path), 404)


def test_docs_are_switched_off_from_the_environment(monkeypatch):
    from todo.settings import Settings

    monkeypatch.setenv("DOCS_ENABLED", "false")

    assert Settings().docs_enabled is False


def test_switching_the_docs_off_leaves_the_api_on(backend, user):
    client = open_client(make_app(backend.url, docs_enabled=False), backend.secrets())

    assert client.post(tasks_url(user), json={"title": "still here"}).status_code == 201
    assert client.get("/health").status_code == 200


# --- the body limit ----------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid task as a JSON object of exactly `size` bytes (white space before the brace)."""
    text = b'{"title": "edge"'
    return text + b" " * (size - len(text) - 1) + b"}"


def streamed(body: bytes, chunk: int = 4096):
    """The body in chunks, without a Content-Length (chunked transfer)."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


@pytest.mark.parametrize("send", ["declared", "streamed"])
def test_64_kib_is_the_last_size_accepted(client, user, send):
    body = padded_body(LIMIT)
    content = body if send == "declared" else streamed(body)

    response = client.post(tasks_url(user), content=content, headers={"content-type": "application/json"})

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("send", ["declared", "streamed"])
def test_one_byte_more_is_413_and_stores_nothing(client, user, send):
    body = padded_body(LIMIT + 1)
    content = body if send == "declared" else streamed(body)

    problem(client.post(tasks_url(user), content=content, headers={"content-type": "application/json"}), 413)
    assert client.get(tasks_url(user)).json() == []


@pytest.mark.parametrize("declared", ["1", "0", "-1", "abc", str(LIMIT)])
def test_a_content_length_that_lies_does_not_lift_the_limit(client, user, declared):
    # The limit counts what arrives, whatever the header says.
    body = padded_body(LIMIT * 2)

    response = client.post(
        tasks_url(user), content=streamed(body), headers={"content-type": "application/json", "content-length": declared}
    )

    assert response.status_code in (400, 413), response.text
    assert client.get(tasks_url(user)).json() == []


# --- request ids -------------------------------------------------------------------------------


@pytest.fixture
def log_text():
    with service_log() as logged:
        yield logged


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [(b"trace-" + b"a" * 122, True), (b"trace-" + b"a" * 123, False), (b"trace- ~!", True), (b"trace-\x7f", False),
     (b"trace-\x1f", False), (b"trace-\xc3\xa9", False), (b"", False)],
    ids=["128", "129", "printable-edges", "delete", "unit-separator", "non-ascii", "empty"],
)
def test_a_request_id_is_used_only_when_printable_ascii_of_at_most_128(client, user, log_text, sent, echoed):
    response = client.get(tasks_url(user), headers=[(b"X-Request-ID", sent)])

    returned = response.headers["x-request-id"]
    entries = [json.loads(line) for line in log_text().splitlines()]
    assert entries and all(entry["request_id"] == returned for entry in entries)
    if echoed:
        assert returned.encode() == sent
    else:
        assert returned.encode() != sent and 0 < len(returned) <= 128
        assert not sent or sent.decode("latin-1") not in log_text()
