"""Authentication (API.md, "Authentication (optional)"): every row of the contract on every
endpoint, under a real uvicorn server and through the Lambda handler, with real tokens signed by
generated Ed25519, P-256 and RSA keys (served as a JWKS by a real HTTP server on loopback) and
an HS256 secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import make_app, open_client
from support.api import assert_no_leak, complete_url, task_url, tasks_url
from support.live_server import uvicorn_server
from support.service_log import service_log
from support.tokens import AUDIENCE, ISSUER, JwksServer, bearer, claims, hs256, jwks, new_key
from support.transports import Reply, Send, http_client_sender, lambda_sender

KEYS = {algorithm: new_key(algorithm) for algorithm in ("EdDSA", "ES256", "RS256")}
ED25519 = KEYS["EdDSA"]
INVALID = 'Bearer error="invalid_token"'


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer(jwks(*KEYS.values())) as server:
        yield server


@pytest.fixture(scope="module")
def jwks_app(postgres_url, jwks_server):
    """The app as Better Auth users run it: keys from a JWKS URL, issuer and audience checked."""
    app = make_app(postgres_url, auth_jwks_url=jwks_server.url, auth_issuer=ISSUER, auth_audience=AUDIENCE)
    yield app
    app.state.database.dispose()


@pytest.fixture(scope="module")
def uvicorn_url(jwks_app) -> Iterator[str]:
    with uvicorn_server(jwks_app) as url:
        yield url


@pytest.fixture(params=["uvicorn", "lambda"])
def send(request, jwks_app) -> Iterator[Send]:
    """One request to the JWKS-configured app, under uvicorn or through the Lambda handler."""
    if request.param == "lambda":
        yield lambda_sender(jwks_app)
        return
    with http_client_sender(request.getfixturevalue("uvicorn_url")) as send_http:
        yield send_http


# --- the endpoints, each with what its owner gets --------------------------------------------

TASK = str(uuid.uuid4())  # no such task: the owner gets 404 on it, still past authentication
ENDPOINTS = {
    "create": ("POST", lambda user: tasks_url(user), {"title": "with a token"}, 201),
    "list": ("GET", lambda user: tasks_url(user), None, 200),
    "read": ("GET", lambda user: task_url(user, TASK), None, 404),
    "replace": ("PUT", lambda user: task_url(user, TASK), {"title": "replaced"}, 404),
    "complete": ("PATCH", lambda user: complete_url(user, TASK), {"completed": True}, 404),
    "delete": ("DELETE", lambda user: task_url(user, TASK), None, 404),
}


def call(send: Send, endpoint: str, user: str, headers: dict | None = None) -> Reply:
    method, path, body, _ = ENDPOINTS[endpoint]
    return send(method, path(user), body, headers)


def token_for(user: str, algorithm: str = "EdDSA", **overrides: Any) -> str:
    return KEYS[algorithm].sign(claims(user, **overrides))


def assert_invalid_token(reply: Reply, token: str | None = None) -> dict:
    assert reply.status == 401, reply.text
    assert reply.headers["www-authenticate"] == INVALID
    body = reply.json()
    if token:
        assert token not in reply.text and all(token not in value for value in reply.headers.values())
    return body


@pytest.fixture(params=list(ENDPOINTS))
def endpoint(request) -> str:
    return request.param


# --- the contract's rows, on every endpoint, under uvicorn and Lambda -------------------------


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
def test_a_valid_token_of_the_paths_user_passes(send, endpoint, user, algorithm):
    reply = call(send, endpoint, user, bearer(token_for(user, algorithm)))

    assert reply.status == ENDPOINTS[endpoint][3], reply.text


def test_no_token_is_401_with_a_bare_bearer_challenge(send, endpoint, user):
    for headers in (None, {"Authorization": "Basic dXNlcjpwYXNz"}):
        reply = call(send, endpoint, user, headers)

        assert reply.status == 401, reply.text
        assert reply.headers["www-authenticate"] == "Bearer"
        assert "token" in reply.json()["detail"]


@pytest.mark.parametrize(
    "case",
    [
        "malformed",
        "empty",
        "wrongly signed",
        "expired",
        "not yet valid",
        "issued in the future",
        "wrong issuer",
        "wrong audience",
        "no sub",
        "a sub that is not a string",
        "alg none",
        "HS256 against the key set",
        "unknown kid",
    ],
)
def test_an_invalid_token_is_401_invalid_token(send, endpoint, user, case):
    now = int(time.time())
    tokens = {
        "malformed": "not.a-jwt",
        "empty": "",
        "wrongly signed": new_key("EdDSA").sign(claims(user), kid=ED25519.kid),
        "expired": token_for(user, exp=now - 60),
        "not yet valid": token_for(user, nbf=now + 60),
        "issued in the future": token_for(user, iat=now + 60),
        "wrong issuer": token_for(user, issuer="https://evil.example"),
        "wrong audience": token_for(user, audience="https://another-api.example"),
        "no sub": ED25519.sign({k: v for k, v in claims(user).items() if k != "sub"}),
        "a sub that is not a string": ED25519.sign({**claims(user), "sub": 12345}),
        "alg none": jwt.encode(claims(user), None, algorithm="none"),
        "HS256 against the key set": hs256(claims(user)),
        "unknown kid": new_key("EdDSA").sign(claims(user)),
    }
    token = tokens[case]
    headers = {"Authorization": f"Bearer {token}" if token else "Bearer"}

    body = assert_invalid_token(call(send, endpoint, user, headers), token)
    assert body["detail"].startswith("The bearer token is not valid")


def test_a_valid_token_of_another_user_is_403_whether_or_not_that_user_has_tasks(send, endpoint, user, other_user):
    stranger_token = token_for(other_user)
    before = call(send, endpoint, user, bearer(stranger_token))
    call(send, "create", user, bearer(token_for(user)))  # now the path's user exists and has a task
    after = call(send, endpoint, user, bearer(stranger_token))

    assert before.status == after.status == 403, (before.text, after.text)
    assert before.json() == after.json()
    assert set(before.headers) - {"date", "x-request-id"} == set(after.headers) - {"date", "x-request-id"}


def test_a_token_whose_sub_is_no_uuid_is_403(send, endpoint, user):
    reply = call(send, endpoint, user, bearer(token_for("kZ3mF8wQx2vB9nL4pR7tY1")))

    assert reply.status == 403, reply.text


def test_the_subject_is_compared_as_a_uuid(send, user):
    spelled_otherwise = "{" + user.upper() + "}"

    assert call(send, "list", spelled_otherwise, bearer(token_for(user))).status == 200
    assert call(send, "list", user, bearer(token_for(user.replace("-", "").upper()))).status == 200


def test_a_non_uuid_user_id_is_still_400_without_a_token(send, endpoint):
    reply = call(send, endpoint, "not-a-uuid")

    assert reply.status == 400, reply.text
    assert reply.json()["errors"][0]["loc"] == ["path", "user_id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "", b'{"title": ', 400),  # not JSON at all: refused before any route runs
        ("POST", "", b'{"title": "\xff"}', 400),  # not UTF-8
        ("POST", "", b'{"title": "' + b"x" * 70_000 + b'"}', 413),
        ("POST", "", b"[1]", 401),  # JSON, just not a task: the token comes first
        ("POST", "", b"{}", 401),
        ("PATCH", f"/{TASK}/complete", b'{"completed": "yes"}', 401),
        ("GET", "?limit=many", None, 401),
        ("GET", "/not-a-task-id", None, 401),
    ],
    ids=["malformed", "not utf-8", "too large", "array", "no title", "bad completed", "bad query", "bad task id"],
)
def test_only_a_body_that_cannot_be_read_is_refused_before_the_missing_token(jwks_app, user, method, path, body, status):
    client = open_client(jwks_app)
    headers = {"Content-Type": "application/json"} if body is not None else {}

    reply = client.request(method, tasks_url(user) + path, content=body, headers=headers)

    assert reply.status_code == status, reply.text
    client.close()


def test_a_token_without_exp_is_accepted(send, user):
    assert call(send, "list", user, bearer(token_for(user, exp=None))).status == 200


def test_health_docs_and_openapi_need_no_token(send):
    assert send("GET", "/health").status == 200
    assert send("GET", "/openapi.json").status == 200
    assert send("GET", "/docs").status == 200


def test_a_token_owner_drives_the_full_crud(send, user):
    headers = bearer(token_for(user, "ES256"))
    created = send("POST", tasks_url(user), {"title": "mine"}, headers)
    assert created.status == 201, created.text
    task_id = created.json()["id"]

    assert send("GET", task_url(user, task_id), None, headers).json()["title"] == "mine"
    assert send("PUT", task_url(user, task_id), {"title": "still mine"}, headers).status == 200
    assert send("PATCH", complete_url(user, task_id), {"completed": True}, headers).json()["completed"] is True
    assert [t["id"] for t in send("GET", tasks_url(user), None, headers).json()] == [task_id]
    assert send("DELETE", task_url(user, task_id), None, headers).status == 204
    assert send("GET", task_url(user, task_id), None, headers).status == 404


# --- leeway, algorithm confusion, key ids -----------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "offset", "status"),
    [
        ("exp", -25, 200),  # expired, but within the 30 s of clock skew
        ("exp", -35, 401),
        ("nbf", 25, 200),  # not valid for another 25 s: within the skew
        ("nbf", 35, 401),
        ("iat", 25, 200),
        ("iat", 35, 401),
    ],
)
def test_times_are_checked_with_30_seconds_of_leeway(send, user, claim, offset, status):
    reply = call(send, "list", user, bearer(token_for(user, **{claim: int(time.time()) + offset})))

    assert reply.status == status, reply.text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_hs256_token_made_with_a_public_key_as_secret_is_refused(send, user):
    # The classic confusion: HMAC keyed with the RSA key's public PEM, naming that key.
    public_pem = KEYS["RS256"].private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEYS["RS256"].kid}).encode())
    payload = _b64url(json.dumps(claims(user)).encode())
    signature = _b64url(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())

    body = assert_invalid_token(call(send, "list", user, bearer(f"{header}.{payload}.{signature}")))
    assert "algorithm" in body["detail"]


def test_a_token_whose_alg_is_not_its_keys_is_refused(send, user):
    # Signed by the P-256 key, but naming the Ed25519 key's id.
    token = KEYS["ES256"].sign(claims(user), kid=ED25519.kid)

    body = assert_invalid_token(call(send, "list", user, bearer(token)))
    assert "algorithm" in body["detail"]


def test_tokens_never_reach_the_log(send, user, other_user):
    tokens = [token_for(user), token_for(user, exp=1), token_for(other_user), "abc.def.ghi"]
    with service_log() as log:
        for token in tokens:
            call(send, "list", user, bearer(token))
    for token in tokens:
        assert token not in log()
        assert token.split(".")[-1] not in log()
    assert_no_leak(log())
