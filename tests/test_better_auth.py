"""End to end with the real `better-auth` npm package: a Better Auth server (its jwt() plugin,
UUID user ids, the test PostgreSQL) signs users up through its own HTTP API and hands out their
tokens; this service, configured as the README says, lets each user drive their own tasks and
refuses the other user with 403. Needs Node.js and `npm ci` (which `make test` runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from conftest import make_app
from support.api import check_error_response, complete_url, task_url, tasks_url
from support.live_server import uvicorn_server
from support.npm import npm_packages
from support.postgres import fresh_database
from support.processes import stop
from support.tokens import bearer
from support.transports import lambda_sender

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = ROOT / "tests" / "better_auth" / "server.mjs"
SECRET = "better-auth-secret-" + uuid.uuid4().hex  # BETTER_AUTH_SECRET, also the HS256 key


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the Better Auth tests need Node.js 20+")
    npm_packages()  # the run's `npm ci` may still be unpacking them
    return node


@pytest.fixture(scope="module", params=["eddsa", "hs256"])
def better_auth(request, postgres_server_url) -> Iterator[tuple[str, str]]:
    """A running Better Auth server: (its mode, its base URL)."""
    with fresh_database(postgres_server_url) as url:
        database_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        process = subprocess.Popen(
            [_node(), str(SERVER_SCRIPT), request.param],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url, "BETTER_AUTH_SECRET": SECRET},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first_line: list[str] = []
            reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout=60)
            if not first_line or not first_line[0].strip():
                process.kill()
                pytest.fail(f"the Better Auth server did not start: {process.stderr.read()[-2000:]}")
            yield request.param, json.loads(first_line[0])["url"]
        finally:
            stop(process)


def sign_up_and_get_token(base_url: str, name: str) -> tuple[str, str]:
    """Sign up through Better Auth's HTTP API, then ask its jwt() plugin for a token, as
    `authClient.token()` does: (user id, token)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        signed_up = client.post(
            "/api/auth/sign-up/email",
            json={"email": f"{name}-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery staple", "name": name},
        )
        assert signed_up.status_code == 200, signed_up.text
        user_id = signed_up.json()["user"]["id"]
        token = client.get("/api/auth/token")  # the session cookie from the sign-up goes along
        assert token.status_code == 200, token.text
        return user_id, token.json()["token"]


@pytest.fixture(scope="module")
def service(better_auth, postgres_url):
    """This service, configured for that Better Auth server as the README says."""
    mode, base_url = better_auth
    if mode == "eddsa":
        auth = {"auth_jwks_url": f"{base_url}/api/auth/jwks", "auth_issuer": base_url, "auth_audience": base_url}
    else:
        auth = {"auth_jwt_secret": SECRET, "auth_issuer": base_url, "auth_audience": base_url}
    app = make_app(postgres_url, **auth)
    yield app
    app.state.database.dispose()


def test_better_auth_user_ids_are_uuids_and_its_tokens_name_them(better_auth):
    mode, base_url = better_auth
    user_id, token = sign_up_and_get_token(base_url, "ada")

    assert str(uuid.UUID(user_id)) == user_id
    assert jwt.get_unverified_header(token)["alg"] == {"eddsa": "EdDSA", "hs256": "HS256"}[mode]
    token_claims = jwt.decode(token, options={"verify_signature": False})
    assert (token_claims["sub"], token_claims["iss"], token_claims["aud"]) == (user_id, base_url, base_url)


def test_a_better_auth_user_drives_the_full_crud_and_another_gets_403(better_auth, service):
    _, base_url = better_auth
    ada, ada_token = sign_up_and_get_token(base_url, "ada")
    bob, bob_token = sign_up_and_get_token(base_url, "bob")
    ada_auth, bob_auth = bearer(ada_token), bearer(bob_token)

    with uvicorn_server(service) as base, httpx.Client(
        base_url=base, event_hooks={"response": [check_error_response]}, timeout=30
    ) as api:
        created = api.post(tasks_url(ada), json={"title": "Write the report"}, headers=ada_auth)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert created.json()["user_id"] == ada
        assert api.get(task_url(ada, task_id), headers=ada_auth).json()["title"] == "Write the report"
        replaced = api.put(task_url(ada, task_id), json={"title": "Send the report"}, headers=ada_auth)
        assert replaced.status_code == 200 and replaced.json()["title"] == "Send the report"
        completed = api.patch(complete_url(ada, task_id), json={"completed": True}, headers=ada_auth)
        assert completed.status_code == 200 and completed.json()["completed"] is True
        assert [task["id"] for task in api.get(tasks_url(ada), headers=ada_auth).json()] == [task_id]

        # Bob, signed in to the same Better Auth, cannot touch Ada's path: 403 everywhere.
        assert api.get(tasks_url(ada), headers=bob_auth).status_code == 403
        assert api.get(task_url(ada, task_id), headers=bob_auth).status_code == 403
        assert api.put(task_url(ada, task_id), json={"title": "mine now"}, headers=bob_auth).status_code == 403
        assert api.patch(complete_url(ada, task_id), json={"completed": False}, headers=bob_auth).status_code == 403
        assert api.delete(task_url(ada, task_id), headers=bob_auth).status_code == 403
        assert api.post(tasks_url(ada), json={"title": "planted"}, headers=bob_auth).status_code == 403
        # Bob's own path works, and is empty; without a token nothing does.
        assert api.get(tasks_url(bob), headers=bob_auth).json() == []
        assert api.get(tasks_url(ada)).status_code == 401

        assert api.delete(task_url(ada, task_id), headers=ada_auth).status_code == 204
        assert api.get(task_url(ada, task_id), headers=ada_auth).status_code == 404


def test_better_auth_tokens_work_through_the_lambda_handler(better_auth, service):
    _, base_url = better_auth
    ada, ada_token = sign_up_and_get_token(base_url, "ada")
    _, bob_token = sign_up_and_get_token(base_url, "bob")
    send = lambda_sender(service)

    assert send("POST", tasks_url(ada), {"title": "from Lambda"}, bearer(ada_token)).status == 201
    assert [t["title"] for t in send("GET", tasks_url(ada), None, bearer(ada_token)).json()] == ["from Lambda"]
    assert send("GET", tasks_url(ada), None, bearer(bob_token)).status == 403
