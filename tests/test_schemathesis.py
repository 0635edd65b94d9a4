"""Schemathesis against the app's own OpenAPI document, on PostgreSQL.

Every operation is fuzzed with data that fits the document and with data that does not, and
every answer goes through all of Schemathesis's built-in checks (no server error, documented
status codes, content types, headers and bodies, negative data rejected, positive data
accepted, unsupported methods answered 405 with Allow, ...) plus one of ours: an error
answer is a problem document that shows nothing of the internals. Then the stateful run
follows the links between create, get, update, complete and delete.

The example budget is fixed and the generation deterministic, so CI runs the same cases
every time and stays fast.
"""

from __future__ import annotations

import uuid

import hypothesis
import pytest
import schemathesis
from schemathesis import Config

from support.api import assert_no_leak, check_problem_document
from support.postgres import fresh_database

# Per operation, in the fuzzing phase; the examples and coverage phases add their own
# (deterministic) cases on top.
MAX_EXAMPLES = 50
SEED = 20_250_501
STATEFUL_SCENARIOS = 40
STATEFUL_STEPS = 10

CONFIG = {
    "seed": SEED,
    # "all": data that fits the document and data that does not. No example database: a
    # run does not depend on what an earlier run found.
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {
        # What docs/API.md answers to a request it refuses: 400 (invalid), 404 (no such path),
        # 405 (method), 413 (body over 64 KiB). Narrower than Schemathesis's default list,
        # which would also let a 422 or 415 pass.
        "negative_data_rejection": {"expected-statuses": [400, 404, 405, 413]},
    },
    "operations": [
        {
            # Valid data for a create may reuse an Idempotency-Key with another body: a 422.
            "include-name": "POST /api/{user_id}/tasks",
            "checks": {"positive_data_acceptance": {"expected-statuses": [201, 422]}},
        }
    ],
}

# What the stateful run must reach with success: each operation on an existing task.
TASK_OPERATIONS = {
    "GET /api/{user_id}/tasks/{task_id}",
    "PUT /api/{user_id}/tasks/{task_id}",
    "DELETE /api/{user_id}/tasks/{task_id}",
    "PATCH /api/{user_id}/tasks/{task_id}/complete",
}


@pytest.fixture(scope="module")
def fuzzed_app(postgres_server_url):
    """The app on a database of its own: the stateful walk empties it between scenarios."""
    from todo.app import create_app
    from todo.settings import Settings

    with fresh_database(postgres_server_url) as url:
        app = create_app(Settings(database_url=url.render_as_string(hide_password=False)))
        yield app
        app.state.database.dispose()


def _load_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=Config.from_dict(CONFIG))


# pytest collects one test per operation, so the document is needed at import time, before
# any fixture (schemathesis.pytest.from_fixture, the lazy way, fails on pytest 9: it sets
# the removed `Node._nodeid`). It is the same document: create_app builds it without a
# database. Only /openapi.json is read through this app; every case is sent to
# `fuzzed_app` on PostgreSQL (`app=` below). A case sent here by mistake would fail the
# run: the database named here does not exist and cannot be reached.
def _document_app():
    from todo.app import create_app
    from todo.settings import Settings

    return create_app(
        Settings(
            database_url="postgresql+psycopg://nobody@document-only.invalid/none",
            docs_enabled=True,
            db_connect_budget=0,
            db_connect_timeout=1,
        )
    )


schema = _load_schema(_document_app())


def _connection_strings(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return [url, parsed.render_as_string(hide_password=True)] + [
        part for part in (parsed.host, parsed.password, parsed.database) if part
    ]


@pytest.fixture(scope="module")
def problem_documents_leak_nothing(postgres_url: str):
    """Our check on top of the built-ins: every error answer is an RFC 9457 problem document
    (docs/API.md, "Errors") that shows no stack trace, SQL, driver message or connection detail."""
    secrets = _connection_strings(postgres_url)

    def problem_documents_leak_nothing(ctx, response, case) -> bool | None:
        if response.status_code < 400:
            return None
        text = response.content.decode("utf-8", errors="replace")
        assert_no_leak(text, secrets)
        for values in response.headers.values():
            for value in values:
                assert_no_leak(value, secrets)
        content_type = ",".join(response.headers.get("content-type", []))
        check_problem_document(response.status_code, content_type.split(";")[0].strip().lower(), text)
        return True

    return problem_documents_leak_nothing


# One test per operation, each building its Hypothesis test when it runs. Schemathesis's own
# `schema.parametrize()` builds them while collecting, examples and coverage cases included:
# about 9 s of CPU in every xdist worker, for tests that only one of them runs.
OPERATIONS = [result.ok().label for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_answers_as_documented(operation, fuzzed_app, problem_documents_leak_nothing):
    def call_and_validate(case):
        case.call_and_validate(app=fuzzed_app, additional_checks=[problem_documents_leak_nothing])

    _run_every_phase(schema.find_operation_by_label(operation), call_and_validate)


def _run_every_phase(operation, test) -> None:
    """What `schema.parametrize()` runs for one operation (its examples, coverage and fuzzing
    phases), with failures reported the way its pytest plugin reports them."""
    from schemathesis.checks import load_all_checks
    from schemathesis.core.failures import FailureGroup, as_reported_failure
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.pytest._test_builder import build_operation_test
    from schemathesis.python._constants.orchestrator import make_constants_value_source

    load_all_checks()
    hypothesis_test = build_operation_test(
        config=schema.config,
        operation=operation,
        test_func=test,
        given_kwargs={},
        feedback=FeedbackSources(constants_value_source=make_constants_value_source(schema)),
    )
    try:
        hypothesis_test()
    except FailureGroup as failures:
        raise as_reported_failure(failures) from None


# Text at the edges of the rules for a task's fields and for `q`: the document must accept
# exactly what the app accepts, or the fuzzing above can only pass by the luck of its seed.
TITLES = {
    "plain": "Buy milk",
    "padded": "  padded  ",
    "255 characters": "x" * 255,
    "255 once trimmed of ASCII white space": "\n" + "x" * 255 + "\t",
    "255 once trimmed of an ideographic space": "\u3000" + "x" * 255,
    "zero-width no-break space (not white space)": "\ufeff",
    "zero-width space (not white space)": "\u200b",
    "information separator (not white space)": "\x1c",
    "inner em space": "a\u2003b",
    "empty": "",
    "a space": " ",
    "ASCII white space only": "\t\r\n",
    "Unicode white space only": "\u3000\u2003\xa0",
    "256 characters": "x" * 256,
    "256 once trimmed": " " + "x" * 256 + " ",
    "inner NUL": "a\x00b",
    "NUL only": "\x00",
}
DESCRIPTIONS = {
    "null": None,
    "empty": "",
    "10000 characters": "x" * 10_000,
    "padded (kept as is)": " lead and trail ",
    "10001 characters": "x" * 10_001,
    "inner NUL": "a\x00b",
}
SEARCHES = {
    "plain": "milk",
    "1000 characters": "x" * 1000,
    "1001 characters": "x" * 1001,
    "inner NUL": "a\x00b",
    "LIKE wildcards": "%_\\",
}


def _document_accepts(schema: dict, value) -> bool:
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema).is_valid(value)


def _write_schema(document: dict) -> dict:
    return document["components"]["schemas"]["TaskWrite"]


def _q_schema(document: dict) -> dict:
    parameters = document["paths"]["/api/{user_id}/tasks"]["get"]["parameters"]
    return next(parameter["schema"] for parameter in parameters if parameter["name"] == "q")


@pytest.mark.parametrize("title", TITLES.values(), ids=TITLES.keys())
def test_the_document_accepts_exactly_the_titles_the_app_accepts(fuzzed_app, title):
    _agree_on_body(fuzzed_app, {"title": title})


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
def test_the_document_accepts_exactly_the_descriptions_the_app_accepts(fuzzed_app, description):
    _agree_on_body(fuzzed_app, {"title": "t", "description": description})


@pytest.mark.parametrize("q", SEARCHES.values(), ids=SEARCHES.keys())
def test_the_document_accepts_exactly_the_searches_the_app_accepts(fuzzed_app, q):
    from fastapi.testclient import TestClient

    with TestClient(fuzzed_app) as client:
        document = client.get("/openapi.json").json()
        answer = client.get(f"/api/{uuid.uuid4()}/tasks", params={"q": q})
    assert answer.status_code in (200, 400), answer.text
    assert _document_accepts(_q_schema(document), q) == (answer.status_code == 200), answer.text


def _agree_on_body(app, body: dict) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        answer = client.post(f"/api/{uuid.uuid4()}/tasks", json=body)
    assert answer.status_code in (201, 400), answer.text
    assert _document_accepts(_write_schema(document), body) == (answer.status_code == 201), answer.text


def test_stateful_walk_over_the_links(fuzzed_app, problem_documents_leak_nothing):
    """Scenarios that follow the document's links (explicit, or inferred by Schemathesis from
    the shapes of the answers): create a task, then read, replace, complete and delete it."""
    succeeded: set[str] = set()

    class Workflow(_load_schema(fuzzed_app).as_state_machine()):
        def after_call(self, response, case):
            super().after_call(response, case)
            if response.status_code < 300:
                succeeded.add(case.operation.label)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            checks = [problem_documents_leak_nothing, *(additional_checks or [])]
            super().validate_response(response, case, additional_checks=checks, **kwargs)

        def teardown(self):
            # Every scenario starts from an empty database: Hypothesis runs a scenario again to
            # explore and to shrink it, and the second run must meet what the first one met.
            with fuzzed_app.state.database.connection() as connection:
                connection.execute("TRUNCATE tasks, users")
            super().teardown()

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    # A made-up task id answers 404: a success on a task's own path means the walk reached
    # it through a link from an answer that held a real task.
    assert TASK_OPERATIONS <= succeeded, f"never reached through a link: {TASK_OPERATIONS - succeeded}"
