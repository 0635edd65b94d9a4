"""Who is calling: decided here and nowhere else.

Without authentication configured, the caller is the user named in the path. With it, the
caller proves who they are with a bearer token (see todo/tokens.py), and may act only under
their own user id: routes, services and queries take the owner from this dependency and need
no change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from fastapi import Depends, Path, Request

from todo.blocking import run_blocking
from todo.exceptions import NotTheTokensUser

if TYPE_CHECKING:
    from todo.settings import Settings
    from todo.tokens import TokenVerifier


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier of bearer tokens, or None when authentication is off. The JWT library is
    imported only here, and only when authentication is on."""
    if not settings.auth_enabled:
        return None
    from todo.tokens import verifier_from_settings

    return verifier_from_settings(settings)


async def current_owner(
    user_id: Annotated[UUID, Path(description="The owner of the tasks.")], request: Request
) -> UUID:
    # async: without I/O to wait for, FastAPI need not hop to a worker thread to call it.
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is None:
        return user_id
    token = verifier.token_of(request.headers.get("authorization"))
    algorithm, kid = verifier.header(token)
    if verifier.remote is not None and verifier.remote.wants_fetch(kid, algorithm):
        # Fetching the key set blocks: a worker thread under uvicorn, inline on Lambda.
        await run_blocking(verifier.remote.fetch_if_wanted, kid, algorithm)
    if _as_uuid(verifier.subject(token, algorithm, kid)) != user_id:
        raise NotTheTokensUser()
    return user_id


def _as_uuid(subject: object) -> UUID | None:
    try:
        return UUID(subject) if isinstance(subject, str) else None
    except ValueError:
        return None


Owner = Annotated[UUID, Depends(current_owner)]
