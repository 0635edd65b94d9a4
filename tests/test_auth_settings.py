"""Authentication settings: off unless a key source is set; a broken or contradictory setting
stops the service at start with one clear line (never an open service by mistake); the OpenAPI
document declares the bearer scheme only when it is on; with it off nothing new is imported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import make_app, open_client
from support.tokens import SECRET, jwks, new_key
from support.python_processes import run_python
from todo.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
JWKS = json.dumps(jwks(new_key("EdDSA")))
AUTH_VARIABLES = ("AUTH_JWKS_URL", "AUTH_JWKS", "AUTH_JWT_SECRET", "AUTH_ISSUER", "AUTH_AUDIENCE")


@pytest.fixture(autouse=True)
def no_auth_in_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


BROKEN = {
    "two key sources": ({"AUTH_JWKS_URL": "https://auth.example/api/auth/jwks", "AUTH_JWT_SECRET": SECRET}, "choose one key source"),
    "three key sources": ({"AUTH_JWKS_URL": "https://a.example/jwks", "AUTH_JWKS": JWKS, "AUTH_JWT_SECRET": SECRET}, "choose one"),
    "a short secret": ({"AUTH_JWT_SECRET": "s3cr3t-but-only-25-bytes!"}, "AUTH_JWT_SECRET has 25 bytes: at least 32"),
    "an inline JWKS that is not JSON": ({"AUTH_JWKS": "{keys: [}"}, "AUTH_JWKS is not JSON"),
    "an inline JWKS without keys": ({"AUTH_JWKS": '{"keys": []}'}, "AUTH_JWKS holds no EdDSA"),
    "an inline JWKS with a broken key": ({"AUTH_JWKS": '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": 5}]}'}, "does not load"),
    "a plain http URL off loopback": ({"AUTH_JWKS_URL": "http://auth.example/api/auth/jwks"}, "must be an https:// URL"),
    "a URL without a host": ({"AUTH_JWKS_URL": "https:///jwks"}, "must be an https:// URL"),
    "not a URL": ({"AUTH_JWKS_URL": "auth.example/jwks"}, "must be an https:// URL"),
    "an issuer but no keys": ({"AUTH_ISSUER": "https://auth.example"}, "AUTH_ISSUER is set but no key source"),
    "an audience but no keys": ({"AUTH_AUDIENCE": "https://auth.example"}, "AUTH_AUDIENCE is set but no key source"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_auth_setting_is_refused(monkeypatch, case):
    environment, message = BROKEN[case]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=message):
        Settings()


@pytest.mark.parametrize("case", ["two key sources", "a short secret", "an inline JWKS that is not JSON", "an issuer but no keys"])
@pytest.mark.parametrize("entry", ["import handler", "uvicorn"])
def test_the_service_does_not_start_on_a_broken_auth_setting_and_says_why_in_one_line(case, entry):
    environment, message = BROKEN[case]
    env = {name: value for name, value in os.environ.items() if name not in AUTH_VARIABLES}
    arguments = ["-c", "import handler"]
    if entry == "uvicorn":
        arguments = ["-m", "uvicorn", "handler:app", "--port", "0", "--log-level", "warning"]
    result = run_python(arguments, cwd=ROOT, env={**env, **environment}, timeout=60)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "does not start" in lines[0]
    for value in environment.values():
        assert value not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "environment",
    [
        {"AUTH_JWKS_URL": "https://auth.example/api/auth/jwks", "AUTH_ISSUER": "https://auth.example"},
        {"AUTH_JWKS_URL": "http://localhost:3000/api/auth/jwks"},
        {"AUTH_JWKS_URL": "http://127.0.0.1:3000/api/auth/jwks"},
        {"AUTH_JWKS_URL": "http://[::1]:3000/api/auth/jwks"},
        {"AUTH_JWKS": JWKS, "AUTH_AUDIENCE": "https://api.example"},
        {"AUTH_JWT_SECRET": SECRET, "AUTH_JWKS_URL": ""},
    ],
)
def test_one_key_source_turns_authentication_on(monkeypatch, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert Settings().auth_enabled


def test_without_a_key_source_authentication_is_off_and_empty_values_count_as_unset(monkeypatch):
    assert not Settings().auth_enabled
    for name in AUTH_VARIABLES:
        monkeypatch.setenv(name, "")
    assert not Settings().auth_enabled


def test_the_secret_is_never_shown_by_the_settings():
    settings = Settings(auth_jwt_secret=SECRET)

    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


# --- OpenAPI, CORS ----------------------------------------------------------------------------


def openapi_of(**settings) -> dict:
    client = open_client(make_app("postgresql+psycopg://nowhere.invalid/db", **settings))
    document = client.get("/openapi.json").json()
    client.close()
    return document


def test_with_auth_on_every_api_operation_requires_the_bearer_scheme_and_documents_401_and_403():
    document = openapi_of(auth_jwt_secret=SECRET)

    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/"):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert {"401", "403", "503"} <= set(operation["responses"]), (method, path)
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
            else:
                assert "security" not in operation, (method, path)


def test_with_auth_off_the_document_has_no_security_scheme():
    document = openapi_of()

    assert "securitySchemes" not in document.get("components", {})
    assert '"401"' not in json.dumps(document) and "security" not in json.dumps(document)


def test_the_docs_page_works_with_auth_on():
    client = open_client(make_app("postgresql+psycopg://nowhere.invalid/db", auth_jwt_secret=SECRET))
    page = client.get("/docs")
    client.close()

    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_cors_lets_a_browser_send_the_authorization_header():
    app = make_app("postgresql+psycopg://nowhere.invalid/db", auth_jwt_secret=SECRET, cors_origins=["https://app.example"])
    client = open_client(app)
    preflight = client.options(
        "/api/0b6a3b1e-4d1f-4a6e-9a51-6e1c2b1d7f00/tasks",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    client.close()

    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


# --- cold start -------------------------------------------------------------------------------

_LOADED = "import sys, handler; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography', 'cffi') or m == 'todo.tokens'))"


def _import_environment() -> dict:
    """The test process's environment without authentication, and a database that importing the
    handler never contacts (it does no I/O), but that it needs in order to start."""
    env = {name: value for name, value in os.environ.items() if name not in AUTH_VARIABLES}
    env["DATABASE_URL"] = "postgresql://nobody@import-only.invalid/none"
    return env


def test_with_auth_off_importing_the_handler_loads_no_jwt_library():
    env = _import_environment()
    result = run_python(["-c", _LOADED], cwd=ROOT, env=env, timeout=60, check=True)

    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_with_auth_on_the_jwt_library_is_loaded_at_import_not_on_the_first_request():
    env = _import_environment()
    env["AUTH_JWT_SECRET"] = SECRET
    result = run_python(["-c", _LOADED], cwd=ROOT, env=env, timeout=60, check=True)

    assert "'jwt'" in result.stdout and "'todo.tokens'" in result.stdout
