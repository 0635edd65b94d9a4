"""/openapi.json and /docs describe every endpoint with its real status codes and the problem
document, and never FastAPI's default 422 (the only 422 is a reused Idempotency-Key's)."""

import json
import re

import pytest

from conftest import make_app, open_client

OPERATIONS = {
    ("post", "/api/{}/tasks"): {"201", "400", "422"},
    ("get", "/api/{}/tasks"): {"200", "400"},
    ("get", "/api/{}/tasks/{}"): {"200", "400", "404"},
    ("put", "/api/{}/tasks/{}"): {"200", "400", "404"},
    ("delete", "/api/{}/tasks/{}"): {"204", "400", "404"},
    ("patch", "/api/{}/tasks/{}/complete"): {"200", "400", "404", "409"},
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


def test_only_the_create_promises_a_422_and_only_for_a_reused_idempotency_key(document):
    for key, operation in operations(document):
        if key == ("post", "/api/{}/tasks"):
            assert "Idempotency-Key" in operation["responses"]["422"]["description"]
        else:
            assert "422" not in operation["responses"], key
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and "Validation Error" not in text


def test_the_create_documents_the_idempotency_key_header(document):
    operation = document["paths"][next(p for p in document["paths"] if p.endswith("/tasks"))]["post"]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert header.get("required", False) is False
    schema = next(option for option in header["schema"]["anyOf"] if option.get("type") == "string")
    assert (schema["minLength"], schema["maxLength"]) == (1, 255)
    assert re.fullmatch(schema["pattern"], "abc-123 ~") and not re.fullmatch(schema["pattern"], "caf\u00e9")
    assert "422" in header["description"]


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


OPERATION_IDS = {
    ("post", "/api/{}/tasks"): "createTask",
    ("get", "/api/{}/tasks"): "listTasks",
    ("get", "/api/{}/tasks/{}"): "getTask",
    ("put", "/api/{}/tasks/{}"): "replaceTask",
    ("patch", "/api/{}/tasks/{}/complete"): "completeTask",
    ("delete", "/api/{}/tasks/{}"): "deleteTask",
    ("get", "/health"): "health",
}


def test_every_operation_has_the_short_id_that_generated_clients_name_their_methods_after(document):
    assert {key: operation["operationId"] for key, operation in operations(document)} == OPERATION_IDS


def test_every_operation_has_a_summary_and_a_described_tag(document):
    described_tags = {tag["name"] for tag in document["tags"] if tag.get("description")}
    for key, operation in operations(document):
        summary = operation["summary"]
        # FastAPI's default summary is the function name in title case ("Get Task").
        assert summary[0].isupper() and not summary.istitle(), (key, summary)
        assert operation["description"], key
        assert len(operation["tags"]) == 1 and operation["tags"][0] in described_tags, key


def test_links_from_a_task_answer_name_existing_operations(document):
    create = document["paths"]["/api/{user_id}/tasks"]["post"]
    linked = {link["operationId"] for link in create["responses"]["201"]["links"].values()}
    assert linked == {"getTask", "replaceTask", "completeTask", "deleteTask"}
    assert linked <= set(OPERATION_IDS.values())


def test_optional_query_parameters_are_left_out_never_null(document):
    for key, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                assert "null" not in json.dumps(parameter["schema"]), (key, parameter)


def test_the_health_answer_is_an_object_with_its_status(document):
    answer = document["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = resolve(document, answer["schema"])
    assert schema["required"] == ["status"]
    assert schema["properties"]["status"]["const"] == "ok"
