"""GET /health, and what every endpoint answers while the database is unreachable."""

import re
import uuid

import pytest
from sqlalchemy import create_engine, select

from conftest import make_app, open_client
from support.api import complete_url, problem, task_url, tasks_url

# Nothing listens on port 1. The credentials and names are distinctive, so that a leak shows.
UNREACHABLE = {
    "ip": "postgresql://leaky_user:s3cr3t-pw@127.0.0.1:1/secret_db_name",
    "hostname": "postgresql://leaky_user:s3cr3t-pw@localhost:1/secret_db_name",
}
SECRETS = ["leaky_user", "s3cr3t-pw", "secret_db_name", "127.0.0.1", "localhost", ":1/"]


def test_health_is_200_ok_when_the_database_answers(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


@pytest.fixture(params=list(UNREACHABLE))
def cut_off(request):
    """A client of an app whose database cannot be reached (and that gives up at once)."""
    app = make_app(UNREACHABLE[request.param], db_connect_budget=0, db_connect_timeout=1)
    client = open_client(app, SECRETS)
    yield client
    client.close()


def test_health_is_503_after_retrying_within_the_connect_budget(request):
    app = make_app(UNREACHABLE["ip"], db_connect_budget=0.5, db_connect_timeout=1)
    client = open_client(app, SECRETS)
    request.addfinalizer(client.close)

    assert_unavailable(client.get("/health"))


def assert_unavailable(response):
    problem(response, 503)
    assert re.fullmatch(r"\d+", response.headers.get("retry-after", "")), response.headers


def test_health_is_503_with_retry_after_when_the_database_is_unreachable(cut_off):
    assert_unavailable(cut_off.get("/health"))


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", lambda u, t: tasks_url(u), {"title": "x"}),
        ("GET", lambda u, t: tasks_url(u), None),
        ("GET", task_url, None),
        ("PUT", task_url, {"title": "x"}),
        ("DELETE", task_url, None),
        ("PATCH", complete_url, {"completed": True}),
    ],
    ids=["create", "list", "get", "put", "delete", "complete"],
)
def test_every_endpoint_is_503_with_retry_after_when_the_database_is_unreachable(cut_off, method, url, body):
    assert_unavailable(cut_off.request(method, url(str(uuid.uuid4()), str(uuid.uuid4())), json=body))


def test_bad_input_is_still_400_when_the_database_is_unreachable(cut_off):
    problem(cut_off.post(tasks_url(str(uuid.uuid4())), json={"title": ""}), 400)


def test_a_statement_that_times_out_is_503_with_retry_after(postgres_url):
    from todo.tables import Task

    client = open_client(make_app(postgres_url, db_statement_timeout_ms=200), [postgres_url])
    user = str(uuid.uuid4())
    task = client.post(tasks_url(user), json={"title": "Locked"}).json()
    table = Task.__table__
    engine = create_engine(postgres_url)
    with engine.connect() as locker:
        # Hold a lock on the task's row, so that the app's update waits until its timeout.
        locker.execute(select(table.c.id).where(table.c.id == uuid.UUID(task["id"])).with_for_update())
        response = client.put(task_url(user, task["id"]), json={"title": "Changed"})
        locker.rollback()
    engine.dispose()

    assert_unavailable(response)
    assert client.get(task_url(user, task["id"])).json()["title"] == "Locked"
    client.close()
