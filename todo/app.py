"""Builds the FastAPI application: routes, error mapping, middleware and OpenAPI."""

from fastapi import FastAPI

from todo import local_database
from todo.database import Database
from todo.errors import install_error_handlers
from todo.identity import token_verifier
from todo.logs import configure_logging
from todo.middleware import RequestMiddleware
from todo.openapi import install_bearer_scheme, install_openapi
from todo.routes import health_router, router
from todo.service import TaskService
from todo.settings import MissingDatabaseUrl, Settings, get_settings

DESCRIPTION = "A multi-user todo list. Every error is an RFC 9457 problem document."


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url and not local_database.available():
        raise MissingDatabaseUrl()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Todo API",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        redoc_url=None,
        # "/tasks/" is not "/tasks": an unknown path answers 404 rather than a redirect.
        redirect_slashes=False,
    )
    database = Database(settings)
    app.state.database = database
    app.state.tasks = TaskService(database)
    app.state.token_verifier = token_verifier(settings)
    # The routers' routes themselves, not include_router(): these routes already carry their
    # prefix, tags and responses, and an included router builds every route's state a second
    # time on the first request and adds a matching layer to every call.
    app.state.api_routes = [*router.routes, *health_router.routes]
    app.router.routes.extend(app.state.api_routes)
    install_error_handlers(app)
    install_openapi(app)
    if app.state.token_verifier is not None:
        install_bearer_scheme(app)
    # One layer: request id and access line, CORS (when configured), the body checks, the
    # last-resort 500, in that order.
    cors = None
    if settings.cors_origins:
        cors = {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
            "allow_headers": ["Content-Type", "Authorization", "X-Request-ID", "Idempotency-Key"],
            "expose_headers": ["Location", "Link", "X-Total-Count", "X-Request-ID", "Retry-After", "Allow"],
        }
    app.add_middleware(RequestMiddleware, cors=cors)
    return app
