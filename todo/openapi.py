"""The OpenAPI document as the service really answers: errors are problem documents under
`application/problem+json`, and no operation promises FastAPI's default 422. Every operation
has a short name for generated clients, and a summary for /docs."""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from todo.errors import PROBLEM_CONTENT_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


# Endpoint function -> how /docs and generated clients name its operation; every route needs
# an entry. Client generators (openapi-typescript, orval, openapi-python-client) make method
# names of the operationId: FastAPI's own, "create_task_api__user_id__tasks_post", would
# become createTaskApiUserIdTasksPost. Applied when the document is first asked for.
OPERATIONS = {
    "create_task": {
        "operationId": "createTask",
        "summary": "Create a task",
        "description": (
            "Answers 201 with the new task and its URL in `Location`. A user is registered with"
            " their first task. With an `Idempotency-Key`, the same request sent again creates"
            " nothing and gets the first answer; the same key with another body is a 422."
        ),
    },
    "list_tasks": {
        "operationId": "listTasks",
        "summary": "List a user's tasks",
        "description": (
            "Newest first unless `sort` says otherwise. `X-Total-Count` counts every match, whatever"
            " the page; `Link` points at the next and previous pages. A user without tasks gets `[]`."
        ),
    },
    "get_task": {
        "operationId": "getTask",
        "summary": "Read a task",
        "description": "Another user's task is a 404, exactly as if it did not exist.",
    },
    "replace_task": {
        "operationId": "replaceTask",
        "summary": "Replace a task's title and description",
        "description": "A description left out becomes `null`. `completed` stays as it is.",
    },
    "complete_task": {
        "operationId": "completeTask",
        "summary": "Mark a task done or not done",
        "description": "Sets `completed` to the JSON boolean given, and moves `updated_at` forward.",
    },
    "delete_task": {
        "operationId": "deleteTask",
        "summary": "Delete a task",
        "description": "Answers 204 with no body. The task is gone: every later call on it is a 404.",
    },
    "health": {
        "operationId": "health",
        "summary": "Check that the service reaches its database",
        "description": "200 when the database answers; 503 with `Retry-After` when it does not.",
    },
}
_TAGS = [
    {"name": "tasks", "description": "A user's tasks, under `/api/{user_id}/tasks`."},
    {"name": "health", "description": "For load balancers and uptime checks."},
]


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _name_operations(schema, app)
            for path_item in schema["paths"].values():
                for operation in path_item.values():
                    _problem_responses(operation["responses"])
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            _text_rules(schema)
            _absent_not_null(schema)
            _health_answer(schema)
            _task_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def install_bearer_scheme(app: FastAPI) -> None:
    """With authentication on: the bearer scheme, required by every /api operation (so /docs
    has an Authorize button that sends the token), and their 401 and 403 answers."""
    build = app.openapi

    def openapi() -> dict:
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if "bearerAuth" not in schemes:
            schemes["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A JWT whose sub is the user id of the path.",
            }
            for path, path_item in schema["paths"].items():
                if path.startswith("/api/"):
                    for operation in path_item.values():
                        operation["security"] = [{"bearerAuth": []}]
                        operation["responses"].update(_auth_responses())
        return schema

    app.openapi = openapi


def _auth_responses() -> dict:
    problem = {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}
    return {
        "401": {
            "description": "No bearer token, or one that is not valid",
            "headers": {
                "WWW-Authenticate": {
                    "description": 'Bearer, or Bearer error="invalid_token"',
                    "schema": {"type": "string"},
                },
                "X-Request-ID": _REQUEST_ID_HEADER,
            },
            "content": problem,
        },
        "403": {
            "description": "The token's subject is not this user",
            "headers": {"X-Request-ID": _REQUEST_ID_HEADER},
            "content": problem,
        },
    }


_REQUEST_ID_HEADER = {
    "description": "The request's own X-Request-ID when it sent a valid one, else a new id.",
    "schema": {"type": "string", "maxLength": 128},
}
_RETRY_AFTER_HEADER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}


def _name_operations(schema: dict, app: FastAPI) -> None:
    for route in app.state.api_routes:
        for method in route.methods:
            schema["paths"][route.path_format][method.lower()].update(OPERATIONS[route.name])
    schema["tags"] = _TAGS


def _problem_responses(responses: dict) -> None:
    # FastAPI's own 422 (never answered: validation errors are 400s), not one a route declares.
    if responses.get("422", {}).get("description") == "Validation Error":
        del responses["422"]
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _REQUEST_ID_HEADER
        if status[0] in "45":
            response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}
        if status == "503":
            headers["Retry-After"] = _RETRY_AFTER_HEADER


# White space as the title's trimming sees it (Unicode White_Space: pydantic trims with Rust's
# str::trim), spelled out because \s means something else in Python, ECMA-262 and Rust regexes.
_WHITE_SPACE = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# PostgreSQL text cannot hold NUL: any text with one is a 400 (docs/API.md, "Errors").
_STORABLE_TEXT = "^[^\\x00]*$"
# A title is 1 to 255 characters once trimmed, however much white space is sent around it:
# maxLength would count that white space, so the pattern says it all.
_TITLE = f"^[{_WHITE_SPACE}]*[^\\x00{_WHITE_SPACE}](?:[^\\x00]{{0,253}}[^\\x00{_WHITE_SPACE}])?[{_WHITE_SPACE}]*$"


def _text_rules(schema: dict) -> None:
    """The rules for text that the models enforce in validators, which JSON Schema cannot see."""
    title = schema["components"]["schemas"]["TaskWrite"]["properties"]["title"]
    title.pop("maxLength")
    title["pattern"] = _TITLE
    description = schema["components"]["schemas"]["TaskWrite"]["properties"]["description"]
    list_tasks = schema["paths"]["/api/{user_id}/tasks"]["get"]
    search = next(parameter for parameter in list_tasks["parameters"] if parameter["name"] == "q")
    for text in (description, search["schema"]):
        for option in text["anyOf"]:
            if option.get("type") == "string":
                option["pattern"] = _STORABLE_TEXT


def _absent_not_null(schema: dict) -> None:
    """An optional query parameter is left out, never null: a query string cannot say null, and
    a generator would make a type of its own for the "value or null" of each such parameter."""
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                options = parameter["schema"].get("anyOf", [])
                if parameter["in"] == "query" and {"type": "null"} in options and len(options) == 2:
                    value = next(option for option in options if option != {"type": "null"})
                    del parameter["schema"]["anyOf"]
                    parameter["schema"].update(value)


def _health_answer(schema: dict) -> None:
    """`{"status": "ok"}` as an object with one property, which generators turn into a type."""
    schema["components"]["schemas"]["Health"] = {
        "title": "Health",
        "type": "object",
        "properties": {"status": {"type": "string", "const": "ok"}},
        "required": ["status"],
    }
    answer = schema["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]
    answer["schema"] = {"$ref": "#/components/schemas/Health"}


# From any answer that is a task, to every operation on that task.
_TASK_LINKS = {
    "GetTask": "getTask",
    "ReplaceTask": "replaceTask",
    "CompleteTask": "completeTask",
    "DeleteTask": "deleteTask",
}
_TASK_ANSWERS = {"createTask": "201", "getTask": "200", "replaceTask": "200", "completeTask": "200"}


def _task_links(schema: dict) -> None:
    operations = {
        operation["operationId"]: operation
        for path_item in schema["paths"].values()
        for operation in path_item.values()
    }
    links = {
        name: {
            "operationId": operation_id,
            "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
        }
        for name, operation_id in _TASK_LINKS.items()
    }
    for operation_id, status in _TASK_ANSWERS.items():
        operations[operation_id]["responses"][status]["links"] = links
