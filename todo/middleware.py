"""ASGI middleware: request ids and the access log, the body size limit, and the last-resort
500, in one plain ASGI layer (no extra task or copy per request); and CORS."""

import codecs
import logging
import time
import uuid

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.errors import problem_response
from todo.logs import request_id_var
from todo.metrics import emf_json
from todo.priming import PRIMING_SCOPE_KEY

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


class RequestMiddleware:
    """The one layer every request passes through, outermost:

    - gives every request an id (echoed in X-Request-ID and on every log line) and writes one
      access-log line per request;
    - refuses, before anything parses them, bodies over 64 KiB (declared up front or streamed
      in chunks) and bodies that are not UTF-8 (RFC 8259: JSON between systems is UTF-8; Python
      would otherwise guess UTF-16 or UTF-32 from the first bytes). A NUL byte counts as not
      UTF-8 JSON: JSON text never holds one raw, and UTF-16 text without a BOM is full of them;
    - turns anything unexpected into a 500 problem document, with the full error in the log.

    One layer rather than three: each layer is a call and a wrapped `send` per request. With
    CORS configured, CORS runs between the request id and the body checks, so that its headers
    are on every answer, the body checks' and the 500 too.
    """

    def __init__(self, app: ASGIApp, cors: dict | None = None):
        self.app = app
        self._cold = True
        self._checked_app = ProblemCORSMiddleware(self._checked, **cors) if cors else self._checked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PRIMING_SCOPE_KEY in scope.get("extensions", ()):
            # A priming request is nobody's: no id, no access line, no cold-start flag.
            await self._checked_app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))
        token = request_id_var.set(request_id)
        cold, self._cold = self._cold, False
        started = time.perf_counter()
        status = 500
        body_bytes = 0

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, body_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            else:
                body_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self._checked_app(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            lambda_context = scope.get("aws.context")
            fields = {
                "method": scope["method"],
                "route": getattr(route, "path", None),
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "lambda_request_id": getattr(lambda_context, "aws_request_id", None),
                "cold_start": cold,
                "body_bytes": body_bytes,
            }
            _write_access_line(fields, lambda_context)
            request_id_var.reset(token)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, behind the body checks and the last-resort 500."""
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            except Exception:
                logger.exception("unhandled error")
                raise
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _send_problem(BodyTooLarge(), scope, receive, send)
            return
        received = 0
        utf8 = codecs.getincrementaldecoder("utf-8")()
        response_started = False

        async def checking_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                try:
                    utf8.decode(chunk, final=not message.get("more_body", False))
                except UnicodeDecodeError:
                    raise BodyNotUtf8() from None
                if b"\x00" in chunk:
                    raise BodyNotUtf8()
            return message

        async def watched_send(message: Message) -> None:
            # Once an answer has begun, no other can be sent.
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, checking_receive, watched_send)
        except Exception:
            if PRIMING_SCOPE_KEY in scope.get("extensions", ()):
                raise  # the priming reports it, once (todo.priming)
            # FastAPI answers the body checks' errors itself (they are HTTPExceptions); what
            # reaches here is unexpected.
            logger.exception("unhandled error")
            if response_started:
                raise
            await problem_response(500, "The server failed to answer this request.")(scope, receive, send)


def _write_access_line(fields: dict, lambda_context) -> None:
    """The access line, as `access_log.info` would write it, minus logging's walk up the call
    stack for the caller's file and line (no JSON line carries them; it costs as much as
    formatting the line). On Lambda the line is also a CloudWatch metrics record (todo/metrics.py)."""
    if access_log.isEnabledFor(logging.INFO):
        extra = {"fields": fields}
        if lambda_context is not None:
            extra["json_members"] = emf_json(fields, lambda_context)
        record = access_log.makeRecord(access_log.name, logging.INFO, "", 0, "request", (), None, extra=extra)
        access_log.handle(record)


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")


class BodyNotUtf8(HTTPException):
    def __init__(self) -> None:
        super().__init__(400, "The body is not JSON text in UTF-8.")


async def _send_problem(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(exc.status_code, exc.detail)(scope, receive, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as a problem document."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        cors_headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}
        return problem_response(
            response.status_code, bytes(response.body).decode(), headers={**cors_headers, "Vary": "Origin"}
        )
