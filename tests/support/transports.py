"""One request, sent two ways: to a real uvicorn server over HTTP, or as an API Gateway HTTP API
event through Mangum, as `handler.py` wraps the app. Both give a `Reply`, and hold every error
answer to the contract's rules for errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from support.api import check_error_response
from support.lambda_events import Answer, LambdaContext, http_api_event
from support.live_server import uvicorn_server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


Send = Callable[..., Reply]  # send(method, path, body=None, headers=None)


def lambda_sender(app: Any) -> Send:
    from todo.errors import PROBLEM_CONTENT_TYPE
    from todo.lambda_events import LambdaEventMiddleware

    handler = Mangum(
        LambdaEventMiddleware(app), lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_CONTENT_TYPE]
    )

    def send(method: str, path: str, body: Any = None, headers: dict | None = None) -> Reply:
        payload = json.dumps(body) if body is not None else None
        content = {"content-type": "application/json"} if payload is not None else {}
        event = http_api_event(method, path, "", payload, {**content, **(headers or {})})
        answer = Answer(handler(event, LambdaContext()))
        check_error_response(httpx.Response(answer.status, headers=answer.headers, text=answer.text))
        return Reply(answer.status, answer.headers, answer.text)

    return send


@contextlib.contextmanager
def http_client_sender(base_url: str) -> Iterator[Send]:
    with httpx.Client(base_url=base_url, event_hooks={"response": [check_error_response]}, timeout=30) as client:

        def send(method: str, path: str, body: Any = None, headers: dict | None = None) -> Reply:
            response = client.request(method, path, json=body, headers=headers)
            return Reply(response.status_code, dict(response.headers), response.text)

        yield send


@contextlib.contextmanager
def uvicorn_sender(app: Any) -> Iterator[Send]:
    with uvicorn_server(app) as base_url, http_client_sender(base_url) as send:
        yield send


@contextlib.contextmanager
def sender(transport: str, app: Any) -> Iterator[Send]:
    """"uvicorn" or "lambda"."""
    if transport == "lambda":
        yield lambda_sender(app)
    else:
        with uvicorn_sender(app) as send:
            yield send


TRANSPORTS = ["uvicorn", "lambda"]
