"""What API Gateway's stages do to paths, undone for the app.

Mangum passes a named stage through in the path ("/prod/api/..."): HTTP APIs keep it in
`rawPath`, REST APIs keep it in `requestContext.path`. The app must route without it and
link with it, so the stage becomes the ASGI `root_path` — which also makes `/docs` load
`/prod/openapi.json` instead of a URL that does not exist.
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from todo.blocking import run_inline
from todo.priming import prime_endpoints


def stage_prefix(event: dict, path: str) -> str:
    """The part of the client's URL path in front of the app's own paths ("" for none)."""
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if event.get("version") == "2.0":
        # Only the execute-api host puts the stage in the path; a custom domain maps it away.
        on_execute_api = str(context.get("domainName", "")).endswith(".amazonaws.com")
        prefix = f"/{stage}"
        named_stage = stage and stage != "$default"
        return prefix if named_stage and on_execute_api and path.startswith(prefix + "/") else ""
    client_path = context.get("path")
    # REST API: the event's path lacks the stage, requestContext.path (on the default
    # execute-api host) has it; under a custom domain both are the same.
    if stage and isinstance(client_path, str) and client_path.endswith(path) and client_path != path:
        return client_path[: len(client_path) - len(path)]
    return ""


class LambdaEventMiddleware:
    """Between Mangum and the app: the stage becomes the root path, blocking calls run inline
    (a container serves one request at a time), and the first event primes the endpoints."""

    def __init__(self, app: ASGIApp, *, prime_first_event: bool = True):
        # Without SnapStart (whose init phase primes the app), the container's first event first
        # does FastAPI's one-time work for every endpoint, so that no later request pays it.
        self.app = app
        self._prime = prime_first_event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run_inline.set(True)
        if self._prime:
            self._prime = False
            await prime_endpoints(self.app)
        event = scope.get("aws.event")
        if scope["type"] == "http" and event:
            if prefix := stage_prefix(event, scope["path"]):
                full_path = scope["path"] if scope["path"].startswith(prefix + "/") else prefix + scope["path"]
                scope = {**scope, "root_path": prefix, "path": full_path, "raw_path": full_path.encode()}
        await self.app(scope, receive, send)
