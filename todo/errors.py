"""The one place where every error becomes an RFC 9457 problem document."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import get_route_path

from todo.exceptions import (
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidToken,
    KeySetUnavailable,
    MissingToken,
    NotTheTokensUser,
    StoredTaskBreaksRule,
    TaskNotFound,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Seconds a client should wait before trying again while the database is unreachable.
RETRY_AFTER_SECONDS = 2

logger = logging.getLogger("todo.errors")


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error answer (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_response(
    status: int, detail: str, *, errors: list[dict] | None = None, headers: dict | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _field_problems(exc: RequestValidationError) -> list[dict]:
    # Only loc, msg and type: pydantic's "input" and "ctx" would echo the client's data back.
    return [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]


def _allowed_methods(request: Request) -> str:
    """Every method that some route accepts on this path. (Starlette's own 405 names only the
    methods of the first route that matched the path.)"""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        if route.path_regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return problem_response(400, "The request is not valid.", errors=_field_problems(exc))


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's own value is right where one route owns the path (/docs, /openapi.json).
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    errors = None
    if exc.status_code == 400:
        # FastAPI's answer to a body it could not decode at all (not UTF-8, say): a field
        # problem like any other, so that every 400 has the same shape.
        detail = "The request is not valid."
        errors = [{"loc": ["body"], "msg": "The body is not JSON text in UTF-8.", "type": "json_invalid"}]
    elif exc.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this path."
    return problem_response(exc.status_code, detail, errors=errors, headers=headers or None)


async def _on_task_not_found(request: Request, exc: TaskNotFound) -> JSONResponse:
    return problem_response(404, "No such task.")


async def _on_idempotency_key_reused(request: Request, exc: IdempotencyKeyReused) -> JSONResponse:
    return problem_response(
        422,
        "This Idempotency-Key was already used for a task with a different title or description; "
        "nothing was changed.",
    )


async def _on_stored_task_breaks_rule(request: Request, exc: StoredTaskBreaksRule) -> JSONResponse:
    if exc.field is None:
        detail = "The stored task breaks one of the rules on a task's fields; nothing was changed."
    else:
        detail = (
            f"The stored task's {exc.field} breaks the rules on that field (it was written before they "
            "existed), so nothing was changed. A PUT with a valid title and description repairs the task."
        )
    return problem_response(409, detail)


async def _on_database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
    logger.warning("database unavailable: %r", exc.__cause__ or exc)
    return problem_response(
        503,
        "The database is unavailable; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _on_missing_token(request: Request, exc: MissingToken) -> JSONResponse:
    return problem_response(
        401, "This API needs a bearer token: send Authorization: Bearer <token>.",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _on_invalid_token(request: Request, exc: InvalidToken) -> JSONResponse:
    return problem_response(
        401, f"The bearer token is not valid: {exc}.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


async def _on_not_the_tokens_user(request: Request, exc: NotTheTokensUser) -> JSONResponse:
    return problem_response(403, "The bearer token is not this user's.")


async def _on_key_set_unavailable(request: Request, exc: KeySetUnavailable) -> JSONResponse:
    return problem_response(
        503,
        "The token issuer's keys are unavailable; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(TaskNotFound, _on_task_not_found)
    app.add_exception_handler(IdempotencyKeyReused, _on_idempotency_key_reused)
    app.add_exception_handler(StoredTaskBreaksRule, _on_stored_task_breaks_rule)
    app.add_exception_handler(DatabaseUnavailable, _on_database_unavailable)
    app.add_exception_handler(MissingToken, _on_missing_token)
    app.add_exception_handler(InvalidToken, _on_invalid_token)
    app.add_exception_handler(NotTheTokensUser, _on_not_the_tokens_user)
    app.add_exception_handler(KeySetUnavailable, _on_key_set_unavailable)
