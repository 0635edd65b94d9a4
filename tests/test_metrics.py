"""The access line as CloudWatch metrics. Through the Lambda handler (the real `handler` module,
imported as Lambda imports it, fed API Gateway events) every access line is a valid Embedded
Metric Format record whose metric values match the answer given, whose dimensions are the route
template and method and never anything a client sent (a user id, a token); a 500 and a 503 come
from real faults (a table dropped under the app, the database cut off by a TCP proxy). Under
uvicorn the same line is plain JSON."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from support.api import complete_url, task_url, tasks_url
from support.emf import check_emf, dimensions, metrics
from support.lambda_events import Answer, LambdaContext, http_api_event, rest_api_event
from support.postgres import fresh_database
from support.service_log import service_log
from support.tcp_proxy import TcpProxy

EVENTS = {"http-api-v2": http_api_event, "rest-api-v1": rest_api_event}
NO_ROUTE = "(no route)"
TASKS = "/api/{user_id}/tasks"
TASK = "/api/{user_id}/tasks/{task_id}"
METRIC_NAMES = {
    "Requests", "Latency", "ClientErrors", "ServerErrors", "DatabaseUnavailable", "ColdStart", "ResponseBodyBytes",
}
METRIC_UNITS = {"Latency": "Milliseconds", "ResponseBodyBytes": "Bytes"}


@dataclass
class Invocation:
    answer: Answer
    record: dict  # the access line, parsed


def access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if json.loads(line).get("logger") == "todo.access"]


@pytest.fixture
def lambda_function(monkeypatch) -> Iterator[Callable[..., Callable[..., Invocation]]]:
    """Loads the real `handler` module on a database (settings from the environment, as on
    Lambda) and returns an invoker: one API Gateway event in, the answer and its access line out."""
    from todo.settings import get_settings

    loaded = []

    def load(database_url: str, **settings: object) -> Callable[..., Invocation]:
        monkeypatch.setenv("DATABASE_URL", database_url)
        for name, value in settings.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()
        sys.modules.pop("handler", None)
        module = importlib.import_module("handler")
        loaded.append(module)

        def invoke(method, path, body=None, headers=None, make_event=http_api_event) -> Invocation:
            payload = json.dumps(body).encode() if body is not None else None
            content = {"content-type": "application/json"} if payload is not None else {}
            event = make_event(method, path, "", payload, {**content, **(headers or {})})
            with service_log() as read:
                answer = Answer(module.handler(event, LambdaContext()))
            lines = access_lines(read())
            assert len(lines) == 1, f"one access line per request, got {lines}"
            return Invocation(answer, check_emf(lines[0]))

        return invoke

    yield load
    for module in loaded:
        module.app.state.database.dispose()
    sys.modules.pop("handler", None)
    get_settings.cache_clear()


def assert_metrics_match(invocation: Invocation, method: str, route: str) -> None:
    """The record's dimensions name this request's route and method, and its metric values are
    this answer's, in the units the README states."""
    record, status = invocation.record, invocation.answer.status
    assert record["status"] == status
    assert dimensions(record) == {"Service": LambdaContext.function_name, "Route": route, "Method": method}
    dimension_sets = [tuple(s) for d in record["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"]]
    # Alarms watch the service as a whole; dashboards break it down per route.
    assert ("Service",) in dimension_sets and ("Service", "Route", "Method") in dimension_sets
    values = {name: value for name, (value, _) in metrics(record).items()}
    assert values == {
        "Requests": 1,
        "Latency": record["latency_ms"],
        "ClientErrors": int(400 <= status < 500),
        "ServerErrors": int(status >= 500),
        "DatabaseUnavailable": int(status == 503),
        "ColdStart": int(record["cold_start"]),
        "ResponseBodyBytes": len(invocation.answer.body),
    }
    assert values["Latency"] > 0
    units = {name: unit for name, (_, unit) in metrics(record).items()}
    assert units == {name: METRIC_UNITS.get(name, "Count") for name in METRIC_NAMES}


# --- success and 4xx ------------------------------------------------------------------------------


@pytest.mark.parametrize("make_event", EVENTS.values(), ids=EVENTS.keys())
def test_every_endpoints_access_line_is_a_valid_emf_record_of_its_answer(lambda_function, postgres_url, make_event):
    invoke = lambda_function(postgres_url)
    user = str(uuid.uuid4())

    def call(method, path, body=None, *, route, status):
        invocation = invoke(method, path, body, make_event=make_event)
        assert invocation.answer.status == status, invocation.answer.text
        assert_metrics_match(invocation, method, route)
        return invocation

    created = call("POST", tasks_url(user), {"title": "measured"}, route=TASKS, status=201).answer.json()
    call("GET", tasks_url(user), route=TASKS, status=200)
    call("GET", task_url(user, created["id"]), route=TASK, status=200)
    call("PUT", task_url(user, created["id"]), {"title": "again"}, route=TASK, status=200)
    call("PATCH", complete_url(user, created["id"]), {"completed": True}, route=TASK + "/complete", status=200)
    deleted = call("DELETE", task_url(user, created["id"]), route=TASK, status=204)
    assert deleted.record["ResponseBodyBytes"] == 0
    call("GET", "/health", route="/health", status=200)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "route"),
    [
        ("POST", "/api/{u}/tasks", {"title": ""}, {}, 400, TASKS),
        ("GET", "/api/{u}/tasks/{t}", None, {}, 404, TASK),
        ("GET", "/api/{u}/nowhere/{t}", None, {}, 404, NO_ROUTE),
        ("DELETE", "/api/{u}/tasks", None, {}, 405, TASKS),
        ("POST", "/api/{u}/tasks", None, {"content-length": "70000"}, 413, NO_ROUTE),
    ],
    ids=["400", "404-task", "404-path", "405", "413-before-routing"],
)
def test_a_4xx_is_a_valid_emf_record_counted_as_a_client_error(
    lambda_function, postgres_url, method, path, body, headers, status, route
):
    invoke = lambda_function(postgres_url)

    invocation = invoke(method, path.format(u=uuid.uuid4(), t=uuid.uuid4()), body, headers)

    assert invocation.answer.status == status
    assert_metrics_match(invocation, method, route)
    assert invocation.record["ClientErrors"] == 1


def test_the_first_request_of_a_container_is_its_cold_start(lambda_function, postgres_url):
    invoke = lambda_function(postgres_url)

    first, second = invoke("GET", "/health"), invoke("GET", "/health")

    assert (first.record["ColdStart"], second.record["ColdStart"]) == (1, 0)


# --- 5xx ------------------------------------------------------------------------------------------


def test_an_unexpected_error_is_a_valid_emf_record_counted_as_a_server_error(lambda_function, postgres_server_url):
    from todo.tables import Task

    with fresh_database(postgres_server_url) as url:
        database_url = url.render_as_string(hide_password=False)
        invoke = lambda_function(database_url)
        user = str(uuid.uuid4())
        assert invoke("POST", tasks_url(user), {"title": "before"}).answer.status == 201
        engine = create_engine(database_url)
        Task.__table__.drop(engine)
        engine.dispose()

        invocation = invoke("GET", tasks_url(user))

    assert invocation.answer.status == 500
    assert_metrics_match(invocation, "GET", TASKS)
    assert (invocation.record["ServerErrors"], invocation.record["DatabaseUnavailable"]) == (1, 0)


def test_a_database_outage_is_a_valid_emf_record_counted_as_database_unavailable(lambda_function, postgres_url):
    target = make_url(postgres_url)
    with TcpProxy(target=(target.host or "127.0.0.1", target.port or 5432)) as proxy:
        through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        invoke = lambda_function(through_proxy, db_connect_budget=1, db_connect_timeout=1)
        user = str(uuid.uuid4())
        assert invoke("POST", tasks_url(user), {"title": "before the outage"}).answer.status == 201
        proxy.cut()

        invocations = [invoke("POST", tasks_url(user), {"title": "during"}), invoke("GET", "/health")]

    for invocation, route in zip(invocations, [TASKS, "/health"]):
        assert invocation.answer.status == 503, invocation.answer.text
        assert_metrics_match(invocation, invocation.record["method"], route)
        assert (invocation.record["ServerErrors"], invocation.record["DatabaseUnavailable"]) == (1, 1)


# --- what dimensions may hold ---------------------------------------------------------------------


def test_no_user_id_task_id_token_or_path_ever_becomes_a_dimension(lambda_function, postgres_url):
    invoke = lambda_function(postgres_url)
    user = str(uuid.uuid4())
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJl"
    secret_headers = {"authorization": f"Bearer {token}", "x-request-id": f"req-{token}", "cookie": f"s={token}"}
    task = invoke("POST", tasks_url(user), {"title": "mine"}, secret_headers).answer.json()
    paths = [
        tasks_url(user), task_url(user, task["id"]), complete_url(user, task["id"]), f"/api/{user}/{token}", f"/{token}",
    ]

    records = [
        invoke(method, path, body, secret_headers).record
        for path in paths
        for method, body in [("GET", None), ("PATCH", {"completed": True}), ("BREW", None)]
    ]

    handler_app = sys.modules["handler"].app
    templates = {route.path for route in handler_app.state.api_routes} | {NO_ROUTE}
    for record in records:
        values = dimensions(record)
        assert values["Service"] == LambdaContext.function_name
        assert values["Route"] in templates
        assert values["Method"] in {"GET", "PATCH", "OTHER"}
        for value in values.values():
            for secret in (user, task["id"], token):
                assert secret not in value, (secret, values)


# --- under uvicorn --------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    stop: Callable[[], None]


@pytest.fixture
def uvicorn_server(postgres_url) -> Iterator[Served]:
    """The app served by a real uvicorn on a free port, in a thread. `stop()` returns once the
    server has finished every request, the access lines written after the answers included."""
    import uvicorn

    from conftest import make_app

    app = make_app(postgres_url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"

    yield Served(f"http://127.0.0.1:{port}", stop)
    stop()
    app.state.database.dispose()


def test_under_uvicorn_the_access_line_is_plain_json_without_metrics(uvicorn_server):
    user = str(uuid.uuid4())
    with service_log() as read:
        with httpx.Client(base_url=uvicorn_server.url) as client:
            created = client.post(tasks_url(user), json={"title": "plain"})
            missing = client.get("/nowhere")
        uvicorn_server.stop()
    lines = access_lines(read())

    assert [created.status_code, missing.status_code] == [201, 404]
    assert len(lines) == 2
    for line, response in zip(lines, [created, missing]):
        entry = json.loads(line)
        assert "_aws" not in entry and not METRIC_NAMES & entry.keys(), entry
        assert {"Service", "Route", "Method"}.isdisjoint(entry), entry
        assert entry["status"] == response.status_code
        assert entry["body_bytes"] == len(response.content)
    assert [json.loads(line)["route"] for line in lines] == [TASKS, None]
