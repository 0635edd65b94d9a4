"""Bearer tokens: which user a JWT proves, checked against a key set or a shared secret.

Imported only when authentication is configured (it loads the JWT library and cryptography).
Algorithms come from an allow-list: EdDSA (Ed25519), ES256 and RS256 with a key of that type
from a JWKS; HS256 only with the shared secret. The token's `alg` must be the one its key is
for, so an HS256 token is never checked against a public key, and `none` is never accepted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from jwt import PyJWK

from todo.exceptions import InvalidToken, KeySetUnavailable, MissingToken

# Clock skew allowed on exp, nbf and iat.
LEEWAY_SECONDS = 30
FETCH_TIMEOUT_SECONDS = 2.0
# A token with an unknown key id fetches the key set again, at most this often.
REFETCH_INTERVAL_SECONDS = 60.0
MAX_KEY_SET_BYTES = 1024 * 1024

# JWK type (and curve) -> the one algorithm this service accepts for such a key.
_ALGORITHM_OF_KEY = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256", ("RSA", None): "RS256"}
SECRET_ALGORITHM = "HS256"

logger = logging.getLogger("todo.auth")

# What each refusal of the JWT library means to the client (its own messages may quote the token).
_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.InvalidIssuerError, "it is from another issuer"),
    (jwt.InvalidAudienceError, "it is meant for another audience"),
    (jwt.MissingRequiredClaimError, "it has no sub claim"),
    (jwt.exceptions.InvalidSubjectError, "its sub claim is not a string"),
    (jwt.InvalidAlgorithmError, "its algorithm is not allowed"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
]


class KeySetError(ValueError):
    """A key set that is not a JWKS holding at least one key this service can use."""


def parse_key_set(text: str | bytes, *, source: str) -> list[PyJWK]:
    """The usable keys of a JWKS document. Keys of other types (Ed448, P-384, keys for
    encryption) are left out; a key of a usable type that does not load is an error."""
    try:
        document = json.loads(text)
    except ValueError:
        raise KeySetError(f"{source} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetError(f'{source} is not a JWKS: no "keys" list')
    keys = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        curve = entry.get("crv") if entry.get("kty") != "RSA" else None
        algorithm = _ALGORITHM_OF_KEY.get((entry.get("kty"), curve))
        if algorithm is None or entry.get("alg", algorithm) != algorithm:
            continue
        if not isinstance(entry.get("kid", ""), str):
            raise KeySetError(f"{source} has a key whose kid is not a string")
        try:
            keys.append(PyJWK(entry, algorithm=algorithm))
        except (jwt.PyJWTError, ValueError, TypeError):
            raise KeySetError(f"{source} has a {algorithm} key that does not load") from None
    if not keys:
        raise KeySetError(f"{source} holds no EdDSA (Ed25519), ES256 (P-256) or RS256 key")
    return keys


def find_key(keys: list[PyJWK], kid: str | None, algorithm: str) -> PyJWK | None:
    """The key a token names by its kid; without a kid, the only key for its algorithm."""
    if kid is None:
        candidates = [key for key in keys if key.algorithm_name == algorithm]
        return candidates[0] if len(candidates) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


def fetch_key_set(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """GET the JWKS within `timeout` seconds in all (not per read), following no redirect.
    Raises OSError."""
    import http.client  # loaded on the first fetch only
    from urllib.parse import urlsplit

    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    if parts.scheme == "https":
        import ssl

        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:  # http: only on a loopback host, as the settings checked
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def within_deadline() -> None:
        """What is left of the timeout becomes the socket's timeout for the next step."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the key set took longer than the fetch timeout")
        if connection.sock is not None:  # None once http.client has read the whole body
            connection.sock.settimeout(remaining)

    try:
        connection.connect()
        within_deadline()
        connection.request("GET", target, headers={"Accept": "application/json"})
        within_deadline()
        response = connection.getresponse()
        if response.status != 200:
            raise OSError(f"the key set answered HTTP {response.status}")
        body = b""
        while chunk := response.read1(64 * 1024):
            body += chunk
            if len(body) > MAX_KEY_SET_BYTES:
                raise OSError("the key set is larger than 1 MiB")
            within_deadline()
        return body
    except http.client.HTTPException as exc:
        raise OSError(f"the key set's server broke the HTTP exchange: {exc!r}") from None
    finally:
        connection.close()


class RemoteKeySet:
    """A JWKS fetched from a URL on first need and kept; fetched again for an unknown key id,
    at most once per REFETCH_INTERVAL_SECONDS. `fetch_if_wanted()` blocks: under uvicorn it runs
    in a worker thread, and concurrent callers wait for one fetch and share its outcome."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.clock = clock  # the tests move it on to let a refetch happen
        self._lock = threading.Lock()
        self._keys: list[PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._attempts = 0  # fetches finished so far: tells a waiting caller that one happened

    def cached(self, kid: str | None, algorithm: str) -> PyJWK | None:
        """The key, if it is known now, without any I/O."""
        return find_key(self._keys, kid, algorithm) if self._keys is not None else None

    def wants_fetch(self, kid: str | None, algorithm: str) -> bool:
        """Whether finding this key calls for the network: no key set yet, or an unknown key id
        and the last fetch old enough."""
        if self._keys is None:
            return True
        return kid is not None and find_key(self._keys, kid, algorithm) is None and self._refetch_due()

    def fetch_if_wanted(self, kid: str | None, algorithm: str) -> None:
        """Fetch the key set if this key still calls for it. Raises KeySetUnavailable."""
        attempts_seen = self._attempts
        with self._lock:
            if self._attempts != attempts_seen:
                # Another request fetched while this one waited: take its outcome, fetch no more.
                if self._keys is None:
                    raise KeySetUnavailable()
                return
            if self.wants_fetch(kid, algorithm):
                self._refresh()

    def _refetch_due(self) -> bool:
        return self.clock() - self._fetched_at >= REFETCH_INTERVAL_SECONDS

    def _refresh(self) -> None:
        started = self.clock()
        try:
            keys = parse_key_set(fetch_key_set(self.url), source="the key set")
        except (OSError, ValueError) as exc:
            if self._keys is not None:
                self._fetched_at = started  # the known keys stay; try again after the interval
            logger.warning("the key set could not be fetched: %s", exc)
            raise KeySetUnavailable() from exc
        else:
            self._keys, self._fetched_at = keys, started
        finally:
            # Counted once the outcome is known: whoever started waiting before now shares it.
            self._attempts += 1


class TokenVerifier:
    """Checks a bearer token and answers its subject. Give it one key source: `keys` (an inline
    JWKS), `remote` (a JWKS URL) or `secret` (HS256)."""

    def __init__(
        self,
        *,
        keys: list[PyJWK] | None = None,
        remote: RemoteKeySet | None = None,
        secret: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ):
        self._keys = keys
        self.remote = remote
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.algorithms = (SECRET_ALGORITHM,) if secret is not None else tuple(_ALGORITHM_OF_KEY.values())
        self._decoder = jwt.PyJWT(
            options={"require": ["sub"], "verify_aud": audience is not None, "verify_iss": issuer is not None}
        )

    @staticmethod
    def token_of(authorization: str | None) -> str:
        """The token of an `Authorization: Bearer <token>` header."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise MissingToken()
        token = token.strip(" ")
        if not token:
            raise InvalidToken("it is empty")
        return token

    def header(self, token: str) -> tuple[str, str | None]:
        """The token's algorithm, checked against the allow-list, and its key id: read before
        anything is verified, to choose the key."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("it is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or not isinstance(kid, str | None):
            raise InvalidToken("it is not a well-formed JWT")
        if algorithm not in self.algorithms:
            raise InvalidToken("its algorithm is not allowed")
        return algorithm, kid

    def subject(self, token: str, algorithm: str, kid: str | None) -> str:
        """The `sub` of a token whose signature, algorithm, times, issuer and audience hold.
        No I/O: with a remote key set, call `remote.fetch_if_wanted` first where blocking is fine."""
        key: PyJWK | str | None
        if self._secret is not None:
            key = self._secret
        else:
            key = self.remote.cached(kid, algorithm) if self.remote is not None else find_key(self._keys, kid, algorithm)
            if key is None:
                raise InvalidToken("it is signed with a key this service does not know")
            if key.algorithm_name != algorithm:
                raise InvalidToken("its algorithm is not the one of its key")
        try:
            claims = self._decoder.decode(
                token, key, algorithms=[algorithm], issuer=self._issuer, audience=self._audience, leeway=LEEWAY_SECONDS
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        return claims["sub"]


def _reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "it is not a well-formed JWT with valid claims"


def verifier_from_settings(settings: Any) -> TokenVerifier:
    common = {"issuer": settings.auth_issuer, "audience": settings.auth_audience}
    if settings.auth_jwt_secret is not None:
        return TokenVerifier(secret=settings.auth_jwt_secret.get_secret_value(), **common)
    if settings.auth_jwks is not None:
        return TokenVerifier(keys=parse_key_set(settings.auth_jwks, source="AUTH_JWKS"), **common)
    return TokenVerifier(remote=RemoteKeySet(settings.auth_jwks_url), **common)
