"""The OpenAPI document as the service really answers: errors are problem documents under
`application/problem+json`, and no operation promises FastAPI's default 422."""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from todo.errors import PROBLEM_CONTENT_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
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
            _task_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


_REQUEST_ID_HEADER = {
    "description": "The request's own X-Request-ID when it sent a valid one, else a new id.",
    "schema": {"type": "string", "maxLength": 128},
}
_RETRY_AFTER_HEADER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}


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
# PostgreSQL text cannot hold NUL: any text with one is a 400 (API.md, "Errors").
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


# From any answer that is a task, to every operation on that task.
_TASK_LINKS = {
    "GetTask": "get_task",
    "ReplaceTask": "replace_task",
    "CompleteTask": "complete_task",
    "DeleteTask": "delete_task",
}
_TASK_ANSWERS = {"create_task": "201", "get_task": "200", "replace_task": "200", "complete_task": "200"}


def _task_links(schema: dict) -> None:
    operations = {
        operation["operationId"]: operation
        for path_item in schema["paths"].values()
        for operation in path_item.values()
    }

    def operation_id(endpoint: str) -> str:
        # FastAPI names an operation after its endpoint function, then its path and method.
        return next(name for name in operations if name.startswith(endpoint + "_"))

    links = {
        name: {
            "operationId": operation_id(endpoint),
            "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
        }
        for name, endpoint in _TASK_LINKS.items()
    }
    for endpoint, status in _TASK_ANSWERS.items():
        operations[operation_id(endpoint)]["responses"][status]["links"] = links
