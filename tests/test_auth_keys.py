"""Where the keys come from: a JWKS URL fetched on first need and kept, fetched again for an
unknown key id at most once a minute, shared by concurrent first requests, and a 503 with
Retry-After when it cannot be had; an inline JWKS (no fetch at all); an HS256 secret."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import make_app
from support.api import tasks_url
from support.live_server import uvicorn_server
from support.tokens import SECRET, JwksServer, bearer, claims, hs256, jwks, new_key
from support.transports import TRANSPORTS, Reply, Send, sender
from todo.tokens import REFETCH_INTERVAL_SECONDS

ED25519 = new_key("EdDSA")
RSA = new_key("RS256")


@contextlib.contextmanager
def app_with(postgres_url: str, **auth) -> Iterator:
    app = make_app(postgres_url, **auth)
    try:
        yield app
    finally:
        app.state.database.dispose()


def list_tasks(send: Send, user: str, key=ED25519, **claim_overrides) -> Reply:
    return send("GET", tasks_url(user), None, bearer(key.sign(claims(user, issuer=None, audience=None, **claim_overrides))))


def a_minute_later() -> float:
    """The key set's clock, moved past the refetch interval."""
    return time.monotonic() + REFETCH_INTERVAL_SECONDS + 1


def assert_503(reply: Reply) -> None:
    assert reply.status == 503, reply.text
    assert reply.headers["retry-after"] == "2"
    assert "127.0.0.1" not in reply.text and "jwks" not in reply.text.lower()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_key_set_is_fetched_on_first_need_and_kept(postgres_url, transport, user):
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        assert server.requests == 0  # starting the app fetched nothing
        with sender(transport, app) as send:
            assert send("GET", "/health").status == 200
            assert server.requests == 0  # nor does a request that needs no token
            for _ in range(3):
                assert list_tasks(send, user).status == 200
        assert server.requests == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_unknown_kid_fetches_again_at_most_once_a_minute(postgres_url, transport, user):
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        remote = app.state.token_verifier.remote
        with sender(transport, app) as send:
            assert list_tasks(send, user).status == 200
            rotated = new_key("EdDSA")
            server.serve(jwks(ED25519, rotated))
            # Within the minute after the last fetch: no refetch, the unknown key is refused.
            for _ in range(3):
                assert list_tasks(send, user, key=rotated).status == 401
            assert server.requests == 1

            remote.clock = a_minute_later
            assert list_tasks(send, user, key=rotated).status == 200
            assert list_tasks(send, user, key=ED25519).status == 200
            assert server.requests == 2
            # A made-up kid right after: refused without another fetch.
            assert list_tasks(send, user, key=new_key("EdDSA")).status == 401
            assert server.requests == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_unreachable_key_set_is_503_and_the_next_request_tries_again(postgres_url, transport, user):
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        server.stop()
        with sender(transport, app) as send:
            assert_503(list_tasks(send, user))
            assert_503(list_tasks(send, user))
            with JwksServer(jwks(ED25519)) as back:
                app.state.token_verifier.remote.url = back.url  # the issuer is back (on a new port)
                assert list_tasks(send, user).status == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("document", "status"),
    [
        (b"<html>not json</html>", 200),
        (b'{"keys": "none"}', 200),
        (b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', 200),  # a symmetric key: never from a JWKS
        (b'{"keys": []}', 500),
    ],
    ids=["not-json", "no-key-list", "only-a-symmetric-key", "server-error"],
)
def test_an_invalid_key_set_is_503(postgres_url, transport, user, document, status):
    with JwksServer() as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        server.serve(document, status)
        with sender(transport, app) as send:
            assert_503(list_tasks(send, user))


def test_a_key_set_slower_than_two_seconds_is_503(postgres_url, user):
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        server.delay = 3.0
        with sender("lambda", app) as send:
            assert_503(list_tasks(send, user))


def test_a_failed_refetch_for_an_unknown_kid_is_503_and_known_keys_still_work(postgres_url, user):
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        with sender("lambda", app) as send:
            assert list_tasks(send, user).status == 200
            server.stop()
            app.state.token_verifier.remote.clock = a_minute_later
            assert_503(list_tasks(send, user, key=new_key("EdDSA")))
            assert list_tasks(send, user).status == 200


def test_concurrent_first_requests_under_uvicorn_share_one_fetch_and_the_loop_keeps_serving(postgres_url):
    users = [str(uuid.uuid4()) for _ in range(8)]
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        with uvicorn_server(app) as base:
            with httpx.Client(base_url=base, timeout=30) as client:
                assert client.get("/health").status_code == 200  # the database is connected
            server.hold()
            statuses: dict[str, int] = {}

            def first_request(user: str) -> None:
                with httpx.Client(base_url=base, timeout=30) as client:
                    token = ED25519.sign(claims(user, issuer=None, audience=None))
                    statuses[user] = client.get(tasks_url(user), headers=bearer(token)).status_code

            threads = [threading.Thread(target=first_request, args=(user,)) for user in users]
            for thread in threads:
                thread.start()
            while server.requests == 0:  # the fetch has begun; the key set holds its answer
                time.sleep(0.01)
            with httpx.Client(base_url=base, timeout=10) as client:
                # The fetch blocks a worker thread, not the event loop: /health answers meanwhile.
                assert client.get("/health").status_code == 200
            assert server.answered == 0
            server.release()
            for thread in threads:
                thread.join(timeout=30)

    assert statuses == {user: 200 for user in users}
    assert server.requests == 1


# --- an inline JWKS and a shared secret ---------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_inline_jwks_needs_no_fetch(postgres_url, transport, user):
    document = json.dumps(jwks(ED25519, RSA))
    with app_with(postgres_url, auth_jwks=document) as app, sender(transport, app) as send:
        assert app.state.token_verifier.remote is None
        assert list_tasks(send, user).status == 200
        assert list_tasks(send, user, key=RSA).status == 200
        assert list_tasks(send, user, key=new_key("EdDSA")).status == 401


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_with_a_secret_only_hs256_tokens_pass(postgres_url, transport, user, other_user):
    with app_with(postgres_url, auth_jwt_secret=SECRET) as app, sender(transport, app) as send:
        assert send("GET", tasks_url(user), None, bearer(hs256(claims(user)))).status == 200
        assert send("GET", tasks_url(user), None, bearer(hs256(claims(other_user)))).status == 403
        assert send("GET", tasks_url(user), None, bearer(hs256(claims(user), SECRET + "x"))).status == 401
        refused = send("GET", tasks_url(user), None, bearer(ED25519.sign(claims(user))))
        assert refused.status == 401 and "algorithm" in refused.json()["detail"]
        assert send("GET", tasks_url(user)).headers["www-authenticate"] == "Bearer"


def test_concurrent_first_requests_share_a_failed_fetch_too(postgres_url):
    users = [str(uuid.uuid4()) for _ in range(4)]
    with JwksServer(jwks(ED25519)) as server, app_with(postgres_url, auth_jwks_url=server.url) as app:
        server.serve(b"{}", status=500)
        with uvicorn_server(app) as base:
            statuses: dict[str, int] = {}

            def first_request(user: str) -> None:
                with httpx.Client(base_url=base, timeout=30) as client:
                    token = ED25519.sign(claims(user, issuer=None, audience=None))
                    statuses[user] = client.get(tasks_url(user), headers=bearer(token)).status_code

            server.hold()
            threads = [threading.Thread(target=first_request, args=(user,)) for user in users]
            for thread in threads:
                thread.start()
            while server.requests == 0:
                time.sleep(0.01)
            time.sleep(1.0)  # let the other requests reach the wait for that fetch
            server.release()
            for thread in threads:
                thread.join(timeout=30)

    # One failed fetch answers every request that waited for it: no queue of 2-second retries.
    assert statuses == {user: 503 for user in users}
    assert server.requests == 1
