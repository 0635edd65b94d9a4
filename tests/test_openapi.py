"""/openapi.json and /docs describe every endpoint with its real status codes and the problem
document, and never FastAPI's default 422."""

import json
import re

import pytest

from conftest import make_app, open_client

OPERATIONS = {
    ("post", "/api/{}/tasks"): {"201", "400"},
    ("get", "/api/{}/tasks"): {"200", "400"},
    ("get", "/api/{}/tasks/{}"): {"200", "400", "404"},
    ("put", "/api/{}/tasks/{}"): {"200", "400", "404"},
    ("delete", "/api/{}/tasks/{}"): {"204", "400", "404"},
    ("patch", "/api/{}/tasks/{}/complete"): {"200", "400", "404"},
    ("get", "/health"): {"200", "503"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# The documents need no database: the app never connects to this one.
NO_DATABASE = "postgresql://nobody@document-only.invalid/none"


@pytest.fixture(scope="module")
def document():
    client = open_client(make_app(NO_DATABASE))
    response = client.get("/openapi.json")
    client.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                # Parameter names aside ({id} or {task_id}), the path is the contract's.
                yield (method, re.sub(r"\{[^}]+\}", "{}", path)), operation


def resolve(document, schema):
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def test_the_document_lists_exactly_the_seven_operations(document):
    assert {key for key, _ in operations(document)} == set(OPERATIONS)


def test_every_operation_documents_its_real_status_codes(document):
    for key, operation in operations(document):
        assert OPERATIONS[key] <= set(operation["responses"]), (key, sorted(operation["responses"]))


def test_no_operation_promises_a_422(document):
    for key, operation in operations(document):
        assert "422" not in operation["responses"], key
    assert '"422"' not in json.dumps(document)


def test_error_responses_are_problem_documents(document):
    for key, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] not in "45":
                continue
            content = response.get("content", {})
            assert "application/problem+json" in content, (key, status, content)
            assert "application/json" not in content, (key, status)
            schema = resolve(document, content["application/problem+json"]["schema"])
            assert {"title", "status", "detail"} <= set(schema["properties"]), (key, status, schema)


def test_the_400_problem_schema_describes_the_field_errors(document):
    operation = document["paths"][next(p for p in document["paths"] if p.endswith("/tasks"))]["post"]
    schema = resolve(document, operation["responses"]["400"]["content"]["application/problem+json"]["schema"])

    assert "errors" in schema["properties"]


def test_the_interactive_docs_are_served_as_html():
    client = open_client(make_app(NO_DATABASE))

    response = client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text
    client.close()
