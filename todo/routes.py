"""HTTP in and out: parse the request, call the service, shape the answer.

Endpoints are `async def` and hand the (blocking) service call to `run_blocking`: a worker
thread under uvicorn, inline on Lambda. Parsing and serialising then stay on the event loop,
where FastAPI would otherwise send each of them to a thread of its own.
"""

import re
from http import HTTPStatus
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BeforeValidator

from todo.blocking import run_blocking
from todo.identity import Owner
from todo.models import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    SortKey,
    StorableText,
    TaskCompletion,
    TaskFilter,
    TaskPublic,
    TaskWrite,
)
from todo.service import TaskService

MAX_LIMIT = 100
MAX_OFFSET = 2**63 - 1
MAX_SEARCH_LENGTH = 1000


def _tasks(request: Request) -> TaskService:
    # Read from the app, not through a dependency: FastAPI resolves dependencies on every call.
    return request.app.state.tasks


TaskId = Annotated[UUID, Path(description="The task's id.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description="1 to 255 printable ASCII characters, taken as they are. Sent again with the same "
        "title and description, the create makes nothing and answers with the task the key made; "
        "with another title or description it is a 422. A key is kept as long as its task.",
    ),
]


def _ascii_digits(value: object) -> object:
    # int() would also take "+1", " 1", "1_0" and "1.0"; the contract lists plain numbers only.
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,19}", value):
        raise ValueError("must be a whole number written in digits")
    return value


Digits = BeforeValidator(_ascii_digits)


def error_responses(*statuses: int) -> dict:
    # No "model" here: todo.openapi adds the problem schema when the document is first
    # asked for, instead of FastAPI building a validator per status and route at import.
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"], responses=error_responses(400, 413, 500, 503))


# The list's query parameters, declared on the endpoint itself rather than in a dependency of
# their own: FastAPI solves each dependency on every call.
Completed = Annotated[Literal["true", "false"] | None, Query(description="Only done or only open tasks.")]
Search = Annotated[
    StorableText | None,
    Query(max_length=MAX_SEARCH_LENGTH, description="Case-insensitive substring of title or description."),
]
Sort = Annotated[SortKey, Query(description="Sort key; a leading '-' sorts descending.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT), Digits]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET), Digits]


# The model's own serializer: no validator or serializer of its own to build at import.
_task_json = TaskPublic.__pydantic_serializer__.to_json


def _json(content: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An answer of JSON that pydantic has written. The routes still declare their
    `response_model` (the OpenAPI document says what they answer), but return the answer
    themselves: FastAPI would otherwise validate again what the service made, then serialise it."""
    return Response(content, status_code=status_code, headers=headers, media_type="application/json")


def _tasks_json(tasks: list[TaskPublic]) -> bytes:
    return b"[" + b",".join(_task_json(task) for task in tasks) + b"]"


def _public_path(request: Request, path: str) -> str:
    """A path as the client sees it: behind an API Gateway stage, with the stage in front."""
    return request.scope.get("root_path", "") + path


def _page_links(request: Request, owner: UUID, task_filter: TaskFilter, total: int) -> str | None:
    """RFC 8288 links to the next and previous pages, as references relative to the host."""
    links = []
    # Built from the parsed owner: the path may spell the UUID another way ({...}, upper case).
    path = _public_path(request, f"/api/{owner}/tasks")

    def link(offset: int, rel: str) -> str:
        query = request.url.include_query_params(limit=task_filter.limit, offset=offset).query
        return f'<{path}?{query}>; rel="{rel}"'

    if task_filter.offset + task_filter.limit < total:
        links.append(link(task_filter.offset + task_filter.limit, "next"))
    if task_filter.offset > 0:
        links.append(link(max(task_filter.offset - task_filter.limit, 0), "prev"))
    return ", ".join(links) or None


_LIST_HEADERS = {
    "X-Total-Count": {
        "description": "How many tasks match, ignoring limit and offset.",
        "schema": {"type": "integer"},
    },
    "Link": {
        "description": 'RFC 8288 links with rel="next" / rel="prev" where there are such pages.',
        "schema": {"type": "string"},
    },
}


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    responses={
        201: {"headers": {"Location": {"description": "The new task's URL.", "schema": {"type": "string"}}}},
        422: {"description": "The Idempotency-Key was used before with a different title or description."},
    },
)
async def create_task(owner: Owner, draft: TaskWrite, request: Request, idempotency_key: IdempotencyKey = None):
    task = await run_blocking(_tasks(request).create, owner, draft, idempotency_key)
    location = _public_path(request, f"/api/{owner}/tasks/{task.id}")
    return _json(_task_json(task), 201, {"Location": location})


@router.get("", response_model=list[TaskPublic], responses={200: {"headers": _LIST_HEADERS}})
async def list_tasks(
    owner: Owner,
    request: Request,
    completed: Completed = None,
    q: Search = None,
    sort: Sort = "-created_at",
    limit: Limit = MAX_LIMIT,
    offset: Offset = 0,
):
    # Kept short: FastAPI reads an endpoint's source (tokenizing it) on its first call.
    return await _list_answer(request, owner, completed, q, sort, limit, offset)


async def _list_answer(request: Request, owner: UUID, completed, q, sort, limit, offset) -> Response:
    task_filter = TaskFilter(
        completed=None if completed is None else completed == "true", search=q, sort=sort, limit=limit, offset=offset
    )
    page = await run_blocking(_tasks(request).list, owner, task_filter)
    headers = {"X-Total-Count": str(page.total)}
    if links := _page_links(request, owner, task_filter, page.total):
        headers["Link"] = links
    return _json(_tasks_json(page.tasks), headers=headers)


@router.get("/{task_id}", response_model=TaskPublic, responses=error_responses(404))
async def get_task(owner: Owner, task_id: TaskId, request: Request):
    return _json(_task_json(await run_blocking(_tasks(request).get, owner, task_id)))


@router.put("/{task_id}", response_model=TaskPublic, responses=error_responses(404))
async def replace_task(owner: Owner, task_id: TaskId, draft: TaskWrite, request: Request):
    return _json(_task_json(await run_blocking(_tasks(request).replace, owner, task_id, draft)))


@router.delete("/{task_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_task(owner: Owner, task_id: TaskId, request: Request):
    await run_blocking(_tasks(request).delete, owner, task_id)
    return Response(status_code=204)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskPublic,
    responses={
        **error_responses(404),
        409: {"description": "The stored task breaks a rule on its title or description; a PUT repairs it."},
    },
)
async def complete_task(owner: Owner, task_id: TaskId, completion: TaskCompletion, request: Request):
    task = await run_blocking(_tasks(request).set_completed, owner, task_id, completion.completed)
    return _json(_task_json(task))


health_router = APIRouter(tags=["health"])


@health_router.get(
    "/health",
    response_model=dict[Literal["status"], Literal["ok"]],
    responses=error_responses(500, 503),
)
async def health(request: Request):
    await run_blocking(_tasks(request).check_database)
    return {"status": "ok"}
