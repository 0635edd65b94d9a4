"""Real signed tokens for the tests: generated Ed25519, P-256 and RSA key pairs and an HS256
secret, their public JWKS, and a JWKS server on loopback that tests can rotate, slow down and
take down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

SECRET = "a shared secret of more than 32 bytes, for HS256 tests"
ISSUER = "http://localhost:3000"
AUDIENCE = "http://localhost:3000"
LEEWAY = 30


@dataclass
class SigningKey:
    """A key pair of one algorithm with its kid; `public_jwk` is what a JWKS serves."""

    algorithm: str
    private: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def public_jwk(self) -> dict:
        tool = {"EdDSA": OKPAlgorithm, "ES256": ECAlgorithm, "RS256": RSAAlgorithm}[self.algorithm]
        jwk = tool.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def sign(self, claims: dict, **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header})


def new_key(algorithm: str) -> SigningKey:
    if algorithm == "EdDSA":
        return SigningKey(algorithm, ed25519.Ed25519PrivateKey.generate())
    if algorithm == "ES256":
        return SigningKey(algorithm, ec.generate_private_key(ec.SECP256R1()))
    if algorithm == "RS256":
        return SigningKey(algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    raise ValueError(algorithm)


def jwks(*keys: SigningKey) -> dict:
    return {"keys": [key.public_jwk for key in keys]}


def claims(sub: str, *, issuer: str | None = ISSUER, audience: str | None = AUDIENCE, **more: Any) -> dict:
    """The claims of a Better Auth token: sub, iat, exp 15 minutes on, iss and aud."""
    now = int(time.time())
    found: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + 900}
    if issuer is not None:
        found["iss"] = issuer
    if audience is not None:
        found["aud"] = audience
    found.update(more)
    return {name: value for name, value in found.items() if value is not None}


def hs256(claims_: dict, secret: str = SECRET) -> str:
    return jwt.encode(claims_, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class JwksServer:
    """A JWKS over HTTP on 127.0.0.1. `serve(document)` changes what it answers (a rotation),
    `delay` slows each answer, `hold()` holds them until `release()`, `stop()` takes it down; `requests` counts the fetches."""

    def __init__(self, document: dict | None = None):
        self.document: dict | bytes = document or {"keys": []}
        self.status = 200
        self.delay = 0.0
        self.requests = 0
        self.answered = 0
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                with server._lock:
                    server.requests += 1
                time.sleep(server.delay)
                server._released.wait(timeout=30)
                body = server.document if isinstance(server.document, bytes) else json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with server._lock:
                    server.answered += 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/auth/jwks"
        # serve_forever checks for shutdown() every poll_interval: its default, 0.5 s, would be
        # spent at the end of every test that stops a key set.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def serve(self, document: dict | bytes, status: int = 200) -> None:
        self.document, self.status = document, status

    def hold(self) -> None:
        """Answer no fetch until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        """Take the server down: its port refuses connections from now on."""
        self.release()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
