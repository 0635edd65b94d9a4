"""Fault tests: the database path survives outages, lost connections, cold starts and
concurrency without failing a request it could serve or losing an acknowledged write.

Real PostgreSQL (the run's server), no mocks. Each test builds its own app. Where the fault
is in the network, the app reaches the database through a TCP proxy the test controls
(``support/tcp_proxy.py``). The cases about pooled connections and concurrency run twice:
straight to PostgreSQL, and through PgBouncer in transaction mode (Neon's pooled endpoint).

Time is never asserted to the millisecond. A request that must fail fast is run in a thread
and given ``HANG_LIMIT``: an answer within it proves the wait is bounded; none is a hang.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy.engine import URL, make_url

from todo.database import connection_lost

from support.api import check_error_response, complete_url, media_type, task_url, tasks_url
from support.asgi_client import InProcessClient
from support.cold_starts import cold_starts
from support.pgbouncer import DEFAULT_POOL_SIZE, show
from support.tcp_proxy import TcpProxy

pytest_plugins = ["support.pgbouncer_fixture"]


# Small on purpose: an outage answers within about this long.
CONNECT_BUDGET = 1.5
CONNECT_TIMEOUT = 1
# psycopg (like libpq) waits at least 2 s for a connection attempt whatever connect_timeout says.
EFFECTIVE_CONNECT_TIMEOUT = max(CONNECT_TIMEOUT, 2)
# Longer than any bounded answer (the budget, plus one attempt begun just before it ran out),
# with room for a slow machine: an answer later than this means the request hangs.
HANG_LIMIT = CONNECT_BUDGET + EFFECTIVE_CONNECT_TIMEOUT + 5

APP_NAME = "todo-api"  # the application_name the app connects with
TESTS_APP_NAME = "todo-fault-tests"  # ours, so that terminating the app's backends spares us

ENDPOINTS = ["create", "list", "get", "replace", "complete", "delete", "health"]
BACKENDS = ["postgresql", "pgbouncer"]


# --- the server, databases and routes to them -------------------------------------------------


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str | None
    password: str | None
    admin_database: str

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
            application_name=TESTS_APP_NAME,
        )

    def url(self, database: str, host: str, port: int) -> str:
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password,
            host=host,
            port=port,
            database=database,
        ).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def server(postgres_url: str) -> Server:
    url = make_url(postgres_url)
    return Server(url.host or "127.0.0.1", url.port or 5432, url.username, url.password, url.database)


@contextlib.contextmanager
def new_database(server: Server) -> Iterator[str]:
    """An empty database of its own (no tables: the app creates them), dropped afterwards."""
    name = f"todo_faults_{uuid.uuid4().hex[:12]}"
    with server.connect(server.admin_database) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with server.connect(server.admin_database) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def fault_db(server: Server) -> Iterator[str]:
    """The module's database. Tests share it but not users: each works for fresh user ids.
    Its own database also keeps pg_terminate_backend away from the other tests' apps."""
    with new_database(server) as name:
        yield name


@dataclass(frozen=True)
class Route:
    """Where the app connects: PostgreSQL itself, or a PgBouncer in front of it."""

    name: str
    host: str
    port: int


def route_for(request: pytest.FixtureRequest, server: Server, backend: str) -> Route:
    if backend == "pgbouncer":
        # It serves every database of the server, not only the run's.
        bouncer = make_url(request.getfixturevalue("pgbouncer_url"))
        return Route("pgbouncer", bouncer.host, bouncer.port)
    return Route("postgresql", server.host, server.port)


@pytest.fixture(params=BACKENDS)
def route(request: pytest.FixtureRequest, server: Server) -> Route:
    return route_for(request, server, request.param)


@pytest.fixture
def start_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def start(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(target=(host, port)).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


# --- apps and requests ----------------------------------------------------------------------


class Apps:
    """Builds apps the way the Lambda does (one per container), with a small connect budget,
    and clients on them; closes their pools at the end of the test."""

    def __init__(self) -> None:
        self._apps: list[Any] = []
        self._clients: list[InProcessClient] = []

    def client(self, url: str) -> InProcessClient:
        """A client on a new app whose database is `url`."""
        from todo.app import create_app
        from todo.settings import Settings

        settings = Settings(database_url=url, db_connect_budget=CONNECT_BUDGET, db_connect_timeout=CONNECT_TIMEOUT)
        app = create_app(settings)
        self._apps.append(app)
        return self.another_client(app, url)

    def another_client(self, app: Any, url: str) -> InProcessClient:
        """One more client on the same app (one per thread)."""
        client = InProcessClient(app, raise_server_exceptions=False, follow_redirects=False)
        parsed = make_url(url)
        secrets = [url, *(part for part in (parsed.host, parsed.password, parsed.database) if part)]
        # Every error answer is held to the contract's rules (problem document, no leaks).
        client.event_hooks["response"] = [lambda response: check_error_response(response, secrets)]
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for app in self._apps:
            app.state.database.dispose()


@pytest.fixture
def apps() -> Iterator[Apps]:
    built = Apps()
    yield built
    built.close()


def bounded(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same time, each in a thread; fail if any has not returned within
    HANG_LIMIT (the request hangs) and re-raise what a call raised."""
    results: list[dict] = [{} for _ in calls]

    def run(call: Callable[[], Any], result: dict) -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    threads = [threading.Thread(target=run, args=(call, result), daemon=True) for call, result in zip(calls, results)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + HANG_LIMIT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        pytest.fail(f"a request did not answer within {HANG_LIMIT} s: it hangs instead of answering 503")
    for result in results:
        if "error" in result:
            raise result["error"]
    return [result["value"] for result in results]


def new_user() -> str:
    return str(uuid.uuid4())


def create(client: InProcessClient, user: str, title: str, description: str | None = None) -> dict:
    response = client.post(tasks_url(user), json={"title": title, "description": description})
    assert response.status_code == 201, response.text
    return response.json()


def call_endpoint(client: InProcessClient, endpoint: str, user: str, task_id: str):
    """One request to the endpoint, about `task_id` where it takes one."""
    if endpoint == "create":
        return client.post(tasks_url(user), json={"title": "made after the fault"})
    if endpoint == "list":
        return client.get(tasks_url(user))
    if endpoint == "get":
        return client.get(task_url(user, task_id))
    if endpoint == "replace":
        return client.put(task_url(user, task_id), json={"title": "replaced after the fault", "description": "new"})
    if endpoint == "complete":
        return client.patch(complete_url(user, task_id), json={"completed": True})
    if endpoint == "delete":
        return client.delete(task_url(user, task_id))
    if endpoint == "health":
        return client.get("/health")
    raise AssertionError(endpoint)


def assert_served(endpoint: str, response, user: str, task: dict, stored: Callable[[str], dict]) -> None:
    """The endpoint did its job: the right answer, and (for a write) the right stored rows."""
    body = None if endpoint == "delete" else response.json()
    expected = {"create": 201, "delete": 204}.get(endpoint, 200)
    assert response.status_code == expected, f"{endpoint}: {response.status_code} {response.text}"
    rows = stored(user)
    if endpoint == "create":
        assert body["title"] == "made after the fault"
        assert rows[body["id"]]["title"] == "made after the fault"
        assert len(rows) == 2, rows
    elif endpoint == "list":
        assert [found["id"] for found in body] == [task["id"]]
        assert response.headers["x-total-count"] == "1"
    elif endpoint == "get":
        assert body == task
    elif endpoint == "replace":
        assert (body["id"], body["title"], body["description"]) == (task["id"], "replaced after the fault", "new")
        assert (rows[task["id"]]["title"], rows[task["id"]]["description"]) == ("replaced after the fault", "new")
    elif endpoint == "complete":
        assert body["id"] == task["id"] and body["completed"] is True
        assert rows[task["id"]]["completed"] is True
    elif endpoint == "delete":
        assert response.content == b""
        assert rows == {}
    elif endpoint == "health":
        assert body == {"status": "ok"}


def assert_unavailable(response, what: str = "the request") -> None:
    """A 503 problem document telling the client when to come back."""
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert media_type(response) == "application/problem+json", what
    assert response.json()["status"] == 503, what
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), f"{what}: Retry-After {retry_after!r}"


def stored_tasks(server: Server, database: str) -> Callable[[str], dict]:
    """A user's task rows, read straight from the database: id -> row."""

    def read(user: str) -> dict:
        with server.connect(database) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT id, title, description, completed FROM tasks WHERE user_id = %s", (uuid.UUID(user),))
            return {str(row["id"]): row for row in cur.fetchall()}

    return read


def terminate_app_backends(server: Server, database: str) -> int:
    """Kill, on the server side, every connection the app (or PgBouncer for it) holds."""
    with server.connect(server.admin_database) as conn:
        (killed,) = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = %s",
            (APP_NAME, database),
        ).fetchone()
    return killed


# --- one connection, kept ---------------------------------------------------------------------


def test_one_connection_is_kept_across_requests(server, fault_db, start_proxy, apps):
    proxy = start_proxy(server.host, server.port)
    client = apps.client(server.url(fault_db, *proxy.address))
    user = new_user()
    task = create(client, user, "kept")
    for endpoint in ENDPOINTS:
        response = call_endpoint(client, endpoint, user, task["id"])
        assert response.status_code == {"create": 201, "delete": 204}.get(endpoint, 200), response.text
    # The schema check and every endpoint, one after another: all on the first connection.
    assert proxy.stats()["connections_opened"] == 1, proxy.stats()


# --- connections lost between two requests ----------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_connections_dropped_between_requests_cost_no_failed_request(
    endpoint, route, server, fault_db, start_proxy, apps
):
    """The pooler or the network dropped the connections while the Lambda was frozen."""
    proxy = start_proxy(route.host, route.port)
    client = apps.client(server.url(fault_db, *proxy.address))
    user = new_user()
    task = create(client, user, "before the drop")
    before = proxy.stats()
    assert before["connections_open"] >= 1, "the app kept no connection between requests"

    proxy.drop()
    response = bounded(lambda: call_endpoint(client, endpoint, user, task["id"]))[0]

    assert_served(endpoint, response, user, task, stored_tasks(server, fault_db))
    assert proxy.stats()["connections_opened"] > before["connections_opened"], "the dropped connection was not replaced"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_connection_killed_by_the_server_between_requests_costs_no_failed_request(
    endpoint, route, server, fault_db, apps
):
    client = apps.client(server.url(fault_db, route.host, route.port))
    user = new_user()
    task = create(client, user, "before the kill")

    assert terminate_app_backends(server, fault_db) >= 1, "no backend of the app to terminate"
    response = bounded(lambda: call_endpoint(client, endpoint, user, task["id"]))[0]

    assert_served(endpoint, response, user, task, stored_tasks(server, fault_db))


# --- a write whose answer was lost ------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["create", "replace", "complete"])
def test_a_write_whose_answer_was_lost_is_run_again_with_the_same_effect(
    endpoint, server, fault_db, start_proxy, apps
):
    """The statement committed, then the connection died before its answer arrived: the app
    runs it again on a new connection (safe: a create reuses its id, updates set absolute
    values), and the client gets one success and exactly one stored change."""
    proxy = start_proxy(server.host, server.port)
    client = apps.client(server.url(fault_db, *proxy.address))
    user = new_user()
    task = create(client, user, "before the loss")
    stored = stored_tasks(server, fault_db)
    title = f"lost answer {uuid.uuid4()}"
    requests = {
        "create": lambda: client.post(tasks_url(user), json={"title": title}),
        "replace": lambda: client.put(task_url(user, task["id"]), json={"title": title}),
        "complete": lambda: client.patch(complete_url(user, task["id"]), json={"completed": True}),
    }

    if endpoint == "complete":
        done, params = "SELECT count(*) FROM tasks WHERE user_id = %s AND completed", (uuid.UUID(user),)
    else:
        done, params = "SELECT count(*) FROM tasks WHERE user_id = %s AND title = %s", (uuid.UUID(user), title)

    # Every chunk is held 400 ms in the proxy, the answer too: time to see the commit from
    # outside and cut the connection before the answer gets through.
    proxy.delay_ms = 400
    answer: dict = {}
    sender = threading.Thread(target=lambda: answer.setdefault("response", requests[endpoint]()), daemon=True)
    with server.connect(fault_db) as watcher:
        sender.start()
        deadline = time.monotonic() + 5
        while not watcher.execute(done, params).fetchone()[0]:
            assert time.monotonic() < deadline, "the write never reached the database"
            time.sleep(0.005)  # polling for the commit: here, time is the subject
    proxy.delay_ms = 0
    proxy.drop()
    sender.join(HANG_LIMIT)
    assert not sender.is_alive(), "the request hangs"

    response = answer["response"]
    assert response.status_code == (201 if endpoint == "create" else 200), response.text
    rows = stored(user)
    body = response.json()
    if endpoint == "create":
        assert sorted(row["title"] for row in rows.values()) == sorted(["before the loss", title])
        assert rows[body["id"]]["title"] == title
    else:
        assert list(rows) == [task["id"]] and body["id"] == task["id"]
        assert (rows[task["id"]]["title"], rows[task["id"]]["completed"]) == (body["title"], body["completed"])
    assert proxy.stats()["connections_opened"] == 2, "the answer was not lost after all: the test proved nothing"


def test_a_statement_left_in_flight_by_an_error_means_the_connection_is_lost(server, fault_db):
    """A reset can reach psycopg as "connection socket closed" before libpq has marked the
    connection broken (a race the test above meets now and then on a busy machine). The
    connection is then stuck in the statement it sent: it counts as lost, so that a write safe
    to repeat is repeated. An error the server answered, a cancelled statement, does not."""
    stuck = server.connect(fault_db)
    try:
        stuck.pgconn.send_query(b"SELECT 1")  # sent, and its answer never read
        assert not stuck.broken
        assert connection_lost(stuck)
    finally:
        stuck.close()  # not a `with` block: leaving one would commit, which a stuck connection cannot
    with server.connect(fault_db) as healthy:
        with pytest.raises(psycopg.errors.QueryCanceled):
            healthy.execute("SET statement_timeout = 1; SELECT pg_sleep(1)")
        assert not connection_lost(healthy)
        assert healthy.execute("SELECT 1").fetchone() == (1,)


# --- a keyed create, retried by the client after a fault ---------------------------------------


@pytest.mark.parametrize("fault", ["drop", "cut"])
@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_keyed_create_retried_by_the_client_after_a_fault_makes_the_task_once(
    moment, fault, route, server, fault_db, start_proxy, apps
):
    """The database connection is dropped (the next one works) or cut (an outage) while a
    create with an Idempotency-Key is on its way: before its statement reached the database,
    or after the database committed it and before its answer came back. Whatever the client
    got, it sends the same request again, twice: every retry answers with the same task, and
    the task is stored once."""
    proxy = start_proxy(route.host, route.port)
    client = apps.client(server.url(fault_db, *proxy.address))
    user = new_user()
    create(client, user, "before the fault")  # the schema is checked, a connection is pooled
    key, title = f"fault-{uuid.uuid4()}", f"keyed {uuid.uuid4()}"
    stored = stored_tasks(server, fault_db)

    def send():
        return client.post(tasks_url(user), json={"title": title}, headers={"Idempotency-Key": key})

    def count_stored(conn) -> int:
        query = "SELECT count(*) FROM tasks WHERE user_id = %s AND title = %s"
        return conn.execute(query, (uuid.UUID(user), title)).fetchone()[0]

    proxy.delay_ms = 400  # every chunk is held: time to act before it passes
    proxy.reset_counts()
    answer: dict = {}
    sender = threading.Thread(target=lambda: answer.setdefault("response", send()), daemon=True)
    with server.connect(fault_db) as watcher:
        sender.start()
        deadline = time.monotonic() + 5
        if moment == "before":
            while not proxy.stats()["flights"]:  # the statement is in the proxy, not yet delivered
                assert time.monotonic() < deadline, "the statement was never sent"
                time.sleep(0.005)
            assert count_stored(watcher) == 0
        else:
            while not count_stored(watcher):  # committed; its answer is held in the proxy
                assert time.monotonic() < deadline, "the write never reached the database"
                time.sleep(0.005)
        proxy.delay_ms = 0
        getattr(proxy, fault)()
    sender.join(HANG_LIMIT)
    assert not sender.is_alive(), "the request hangs"
    first = answer["response"]
    if fault == "cut":
        assert_unavailable(first, "the create during the outage")
        proxy.restore()
    else:
        assert first.status_code == 201, first.text  # the service ran it again itself

    retries = [bounded(send)[0] for _ in range(2)]

    assert [retry.status_code for retry in retries] == [201, 201], [retry.text for retry in retries]
    answered = {retry.json()["id"] for retry in retries}
    if first.status_code == 201:
        answered.add(first.json()["id"])
    assert len(answered) == 1, answered
    keyed = [task_id for task_id, row in stored(user).items() if row["title"] == title]
    assert keyed == list(answered)
    assert len(stored(user)) == 2


# --- an outage --------------------------------------------------------------------------------


class Writer(threading.Thread):
    """Creates tasks one after another until stopped, remembering what was acknowledged."""

    def __init__(self, client: InProcessClient, user: str):
        super().__init__(daemon=True)
        self.client, self.user = client, user
        self.acknowledged: list[dict] = []
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            number = 0
            while not self.stop.is_set():
                number += 1
                response = self.client.post(tasks_url(self.user), json={"title": f"written {number}"})
                assert response.status_code in (201, 503), response.text
                with self.changed:
                    self.statuses.append(response.status_code)
                    if response.status_code == 201:
                        self.acknowledged.append(response.json())
                    self.changed.notify_all()
        except BaseException as exc:
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: condition() or self.error is not None, timeout=3 * HANG_LIMIT):
                pytest.fail(f"the writer never {what}")
        if self.error is not None:
            raise self.error


def test_an_outage_answers_503_then_recovers_by_itself_and_loses_no_acknowledged_write(
    server, fault_db, start_proxy, apps
):
    proxy = start_proxy(server.host, server.port)
    url = server.url(fault_db, *proxy.address)
    client = apps.client(url)
    user = new_user()
    stored = stored_tasks(server, fault_db)

    # Acknowledged before the cut: creates, a replace and a completion.
    acknowledged = {task["id"]: task for task in (create(client, user, f"before {n}") for n in range(3))}
    first, second, third = acknowledged
    for response in (
        client.put(task_url(user, first), json={"title": "replaced before the cut"}),
        client.patch(complete_url(user, second), json={"completed": True}),
    ):
        assert response.status_code == 200, response.text
        acknowledged[response.json()["id"]] = response.json()

    writer = Writer(apps.another_client(client.app, url), user)
    writer.start()
    try:
        writer.wait_for(lambda: len(writer.acknowledged) >= 2, "wrote before the cut")
        proxy.cut()
        during = bounded(*(lambda e=endpoint: call_endpoint(client, e, user, third) for endpoint in ENDPOINTS))
        for endpoint, response in zip(ENDPOINTS, during):
            assert_unavailable(response, f"{endpoint} during the cut")
        cut_at = len(writer.statuses)
        writer.wait_for(lambda: 503 in writer.statuses[cut_at:], "tried to write during the cut")

        proxy.restore()
        # The very next request succeeds, on every endpoint: no restart, no warm-up.
        for endpoint in ["health", "list", "get", "replace", "complete", "create", "delete"]:
            response = bounded(lambda: call_endpoint(client, endpoint, user, third))[0]
            expected = {"create": 201, "delete": 204}.get(endpoint, 200)
            assert response.status_code == expected, f"{endpoint} after the outage: {response.text}"
            if endpoint == "create":
                acknowledged[response.json()["id"]] = response.json()
            elif endpoint == "delete":
                del acknowledged[third]
            elif endpoint in ("replace", "complete"):
                acknowledged[third] = response.json()
        restored_at = len(writer.statuses)
        writer.wait_for(lambda: 201 in writer.statuses[restored_at:], "wrote again after the cut")
    finally:
        writer.stop.set()
        writer.join(HANG_LIMIT)
    assert not writer.is_alive() and writer.error is None, writer.error

    for task in writer.acknowledged:
        acknowledged[task["id"]] = task
    rows = stored(user)
    missing = sorted(set(acknowledged) - set(rows))
    assert not missing, f"acknowledged writes lost: {missing}"
    for task_id, task in acknowledged.items():
        row = rows[task_id]
        assert (row["title"], row["description"], row["completed"]) == (
            task["title"],
            task["description"],
            task["completed"],
        ), task_id
    assert third not in rows, "an acknowledged delete was undone"


def test_a_database_that_accepts_but_never_answers_gets_503_within_the_bound(server, apps):
    """A waking compute (or a black hole): the connection opens, then nothing comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # never accepted: the kernel completes the handshake, no one answers
        client = apps.client(server.url("todo", *silent.getsockname()))
        assert_unavailable(bounded(lambda: client.get(tasks_url(new_user())))[0])


def test_a_cold_start_that_cannot_reach_the_database_is_not_poisoned(server, start_proxy, apps):
    with new_database(server) as empty:
        proxy = start_proxy(server.host, server.port)
        proxy.cut()
        client = apps.client(server.url(empty, *proxy.address))
        user = new_user()

        assert_unavailable(bounded(lambda: client.post(tasks_url(user), json={"title": "too early"}))[0])

        proxy.restore()
        task = create(client, user, "after the database came back")
        listed = client.get(tasks_url(user))
        assert listed.status_code == 200 and listed.json() == [task]
        assert list(stored_tasks(server, empty)(user)) == [task["id"]]


# --- cold starts at the same moment -----------------------------------------------------------

COLD_START = r"""
import json, sys, uuid
from fastapi.testclient import TestClient
from todo.app import create_app
from todo.settings import Settings

app = create_app(Settings(database_url=sys.argv[1], db_connect_budget=10, log_level="WARNING"))
client = TestClient(app, raise_server_exceptions=False)
user = str(uuid.uuid4())
# Make the pool now (no connection yet), so that the processes meet at the database: the
# first request then goes straight to connecting and creating the tables.
app.state.database.pool
wait_for_go()  # everyone starts when the test says so
created = client.post(f"/api/{user}/tasks", json={"title": "cold start"})
listed = client.get(f"/api/{user}/tasks")
print("RESULT " + json.dumps({
    "user": user,
    "created": [created.status_code, created.json()],
    "listed": [listed.status_code, listed.json()],
}), flush=True)
app.state.database.dispose()
"""

COLD_STARTS = 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_starting_at_once_on_an_empty_database_all_serve(backend, request, server):
    route = route_for(request, server, backend)
    with new_database(server) as empty:
        url = server.url(empty, route.host, route.port)
        # Imported, each app built, no database touched yet: then all at once.
        with cold_starts(COLD_START, COLD_STARTS, url) as processes:
            processes.go()
            finished = processes.finish(timeout=60)

        results = []
        for process in finished:
            lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
            assert process.returncode == 0 and lines, f"exit {process.returncode}\n{process.stdout}\n{process.stderr}"
            results.append(json.loads(lines[-1][len("RESULT ") :]))
        for result in results:
            (created_status, task), (listed_status, listed) = result["created"], result["listed"]
            assert created_status == 201, task
            assert listed_status == 200 and listed == [task], listed

        with server.connect(empty) as conn:
            tables = conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "ORDER BY relname"
            ).fetchall()
            assert [name for (name,) in tables] == ["alembic_version", "tasks", "users"]
            # Made once, and stamped as the latest revision.
            from todo.schema import HEAD

            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
            (tasks,) = conn.execute("SELECT count(*) FROM tasks").fetchone()
            users = conn.execute("SELECT user_id::text, count(*) FROM users GROUP BY user_id").fetchall()
        assert tasks == COLD_STARTS
        assert sorted(users) == sorted((result["user"], 1) for result in results)


# --- many threads, several users --------------------------------------------------------------

THREADS = 8
USERS = 4
STEPS = 30


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writes_leave_each_user_exactly_the_acknowledged_tasks(
    backend, request, server, fault_db, apps
):
    route = route_for(request, server, backend)
    url = server.url(fault_db, route.host, route.port)
    main_client = apps.client(url)
    app = main_client.app
    users = [new_user() for _ in range(USERS)]
    # What the answers said, per thread: a thread changes only tasks it created, so the last
    # answer it got for a task is that task's final state (None: deleted).
    models: list[dict[str, dict | None]] = [{} for _ in range(THREADS)]
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    class Refused(Exception):
        """An answer other than the one expected (already in `errors`)."""

    def work(number: int) -> None:
        client = apps.another_client(app, url)
        rng = random.Random(number)
        model = models[number]

        def expect(response, status: int, what: str):
            if response.status_code != status:
                errors.append(f"thread {number}, {what}: {response.status_code} {response.text}")
                raise Refused
            return response

        start.wait(timeout=30)
        for step in range(STEPS):
            live = [task_id for task_id, task in model.items() if task is not None]
            action = rng.choice(["create", "create", "replace", "complete", "delete", "get"]) if live else "create"
            if action == "create":
                user = rng.choice(users)
                body = {"title": f"t{number}-{step}", "description": rng.choice([None, f"d{step}"])}
                task = expect(client.post(tasks_url(user), json=body), 201, "create").json()
                model[task["id"]] = task
                continue
            task_id = rng.choice(live)
            user = model[task_id]["user_id"]
            if action == "replace":
                body = {"title": f"t{number}-{step} replaced", "description": f"r{step}"}
                model[task_id] = expect(client.put(task_url(user, task_id), json=body), 200, "replace").json()
            elif action == "complete":
                body = {"completed": not model[task_id]["completed"]}
                model[task_id] = expect(client.patch(complete_url(user, task_id), json=body), 200, "complete").json()
            elif action == "delete":
                expect(client.delete(task_url(user, task_id)), 204, "delete")
                model[task_id] = None
                expect(client.get(task_url(user, task_id)), 404, "get after delete")
            else:
                assert expect(client.get(task_url(user, task_id)), 200, "get").json() == model[task_id]

    def guarded(number: int) -> None:
        try:
            work(number)
        except Refused:
            pass
        except Exception as exc:
            errors.append(f"thread {number}: {exc!r}")

    threads = [threading.Thread(target=guarded, args=(number,), daemon=True) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a worker hangs"
    assert not errors, "\n".join(errors)
    if backend == "pgbouncer":
        # Worth something only if PgBouncer really pooled transactions: THREADS clients at
        # once, over at most DEFAULT_POOL_SIZE server connections.
        (pool,) = [pool for pool in show(url, "POOLS") if pool["database"] == fault_db]
        assert pool["pool_mode"] == "transaction", pool
        servers = [server for server in show(url, "SERVERS") if server["database"] == fault_db]
        assert 0 < len(servers) <= DEFAULT_POOL_SIZE < THREADS, servers

    expected: dict[str, dict[str, dict]] = {user: {} for user in users}
    for model in models:
        for task_id, task in model.items():
            if task is not None:
                expected[task["user_id"]][task_id] = task
    assert sum(map(len, expected.values())) > 0
    stored = stored_tasks(server, fault_db)
    for user in users:
        listed = main_client.get(tasks_url(user), params={"limit": 100})
        assert listed.status_code == 200, listed.text
        assert int(listed.headers["x-total-count"]) == len(expected[user]) <= 100
        assert {task["id"]: task for task in listed.json()} == expected[user]
        rows = stored(user)
        assert {
            task_id: (row["title"], row["description"], row["completed"]) for task_id, row in rows.items()
        } == {
            task_id: (task["title"], task["description"], task["completed"]) for task_id, task in expected[user].items()
        }
