"""ASGI middleware: request ids and the access log, the body size limit, and the last-resort
500. Plain ASGI rather than BaseHTTPMiddleware: no extra task or copy per request."""

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.errors import problem_response
from todo.logs import request_id_var

MAX_BODY_BYTES = 64 * 1024
MAX_REQUEST_ID_LENGTH = 128

access_log = logging.getLogger("todo.access")
logger = logging.getLogger("todo.errors")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _client_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID if it is printable ASCII of at most 128 characters."""
    value = _header(scope, b"x-request-id")
    if value and len(value) <= MAX_REQUEST_ID_LENGTH and all(0x20 <= byte <= 0x7E for byte in value):
        return value.decode("ascii")
    return None


class RequestContextMiddleware:
    """Gives every request an id (echoed in X-Request-ID and on every log line), writes one
    access-log line per request, and turns anything unexpected into a 500 problem document."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._cold = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        cold, self._cold = self._cold, False
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error")
            if not response_started:
                response = problem_response(500, "The server failed to answer this request.")
                await response(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            lambda_context = scope.get("aws.context")
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "route": getattr(route, "path", None),
                        "status": status,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                        "lambda_request_id": getattr(lambda_context, "aws_request_id", None),
                        "cold_start": cold,
                    }
                },
            )
            request_id_var.reset(token)


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")


class BodySizeLimitMiddleware:
    """Refuses bodies over 64 KiB before anything parses them, whether the client declares
    the length up front or streams the body in chunks."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLarge()
        await problem_response(exc.status_code, exc.detail)(scope, receive, send)
