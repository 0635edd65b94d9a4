"""An httpx client that calls the ASGI app in the test's own thread.

Starlette's TestClient runs the app on an event loop in another thread and crosses to it for
every ASGI message: about 3 ms of CPU per request here, against about 1 ms for the request
itself. The suite sends tens of thousands of requests, so the tests use this client instead.
It builds the same ASGI scope as TestClient (host "testserver", client ("testclient", 50000),
the path percent-decoded) and runs the app to completion on an event loop of the calling
thread (each thread that sends gets a loop of its own), with the app's blocking work (the
database) run inline, as the Lambda adapter runs it. The tests under uvicorn cover the worker
thread that an ASGI server uses instead.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import unquote

import httpx

from todo.blocking import run_inline

CLIENT_ADDRESS = ("testclient", 50000)
DEFAULT_PORTS = {"http": 80, "https": 443}


class InProcessTransport(httpx.BaseTransport):
    """Sends each request through the app on this thread's own event loop.

    An exception the app raises is raised here when `raise_server_exceptions`; otherwise the
    answer the app sent before it (an ASGI server's 500 page, say) is returned, or an empty
    500 when it sent none, as TestClient does.
    """

    def __init__(self, app: Any, *, raise_server_exceptions: bool) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._this_thread = threading.local()

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._this_thread, "loop", None)
        if loop is None:
            loop = self._this_thread.loop = asyncio.new_event_loop()
            self._loops.append(loop)
        return loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        headers = [(name.lower().encode(), value.encode()) for name, value in request.headers.multi_items()]
        if "host" not in request.headers:
            headers.insert(0, (b"host", url.netloc))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": "",
            "query_string": url.query,
            "headers": headers,
            "client": CLIENT_ADDRESS,
            "server": [url.host, url.port or DEFAULT_PORTS[url.scheme]],
            "extensions": {},
            "state": {},
        }
        body = request.read()
        body_sent = False
        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict:
            nonlocal body_sent
            if body_sent:
                return {"type": "http.disconnect"}
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert not answer, "the app started its answer twice"
                answer["status_code"] = message["status"]
                answer["headers"] = [(name.decode(), value.decode()) for name, value in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                assert answer, "the app sent a body before starting its answer"
                chunks.append(bytes(message.get("body", b"")))

        inline = run_inline.set(True)
        try:
            self._loop().run_until_complete(self.app(scope, receive, send))
        except Exception:
            if self.raise_server_exceptions:
                raise
        finally:
            run_inline.reset(inline)
        if not answer:
            if self.raise_server_exceptions:
                raise AssertionError("the app sent no answer")
            answer = {"status_code": 500, "headers": []}
        content = b"" if request.method == "HEAD" else b"".join(chunks)
        return httpx.Response(**answer, content=content, request=request)

    def close(self) -> None:
        for loop in self._loops:
            loop.close()


class InProcessClient(httpx.Client):
    """A client for `app` at http://testserver, like TestClient(app) without its lifespan."""

    def __init__(self, app: Any, *, raise_server_exceptions: bool = True, **options: Any) -> None:
        self.app = app
        transport = InProcessTransport(app, raise_server_exceptions=raise_server_exceptions)
        super().__init__(transport=transport, base_url="http://testserver", **options)
