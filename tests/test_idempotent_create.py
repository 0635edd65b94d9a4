"""POST /api/{user_id}/tasks with an Idempotency-Key: each sentence of the contract's section
"Idempotent creates", in its order, then the header's form and the cost in round trips."""

from __future__ import annotations

import threading
import uuid

import pytest

from conftest import make_app, open_client
from support.api import assert_task_shape, problem, task_url, tasks_url, validation_problem
from support.tcp_proxy import TcpProxy


def keyed_post(client, user: str, key: str, title: str = "Buy milk", description=...):
    body: dict = {"title": title}
    if description is not ...:
        body["description"] = description
    return client.post(tasks_url(user), json=body, headers={"Idempotency-Key": key})


def listed(client, user: str) -> list[dict]:
    response = client.get(tasks_url(user))
    assert response.status_code == 200, response.text
    return response.json()


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


# "The first request with a key creates the task as usual."


def test_the_first_request_with_a_key_creates_the_task_as_usual(client, user, backend):
    key = new_key()

    response = keyed_post(client, user, key, "Buy milk", "two litres")

    assert response.status_code == 201, response.text
    task = response.json()
    assert_task_shape(task)  # the key is not a field of the task
    assert (task["title"], task["description"], task["completed"]) == ("Buy milk", "two litres", False)
    assert response.headers["location"] == task_url(user, task["id"])
    assert listed(client, user) == [task]
    assert backend.task_row(task["id"])["idempotency_key"] == key


# "A later request of the same user with the same key and the same body (the same title after
# trimming, the same description) creates nothing and answers exactly as the first did: 201,
# the same task, the same Location."


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (("Buy milk", "two litres"), ("Buy milk", "two litres")),
        (("Buy milk", ...), ("  Buy milk\t", ...)),
        (("Buy milk", None), ("Buy milk\u3000", ...)),
        (("Buy milk", ""), ("Buy milk", "")),
    ],
    ids=["same body", "title trimmed the same", "description null or left out", "empty description"],
)
def test_the_same_key_and_body_again_creates_nothing_and_answers_as_the_first_did(client, user, first, again):
    key = new_key()
    original = keyed_post(client, user, key, *first)
    assert original.status_code == 201, original.text

    replay = keyed_post(client, user, key, *again)

    assert replay.status_code == 201, replay.text
    assert replay.json() == original.json()
    assert replay.headers["location"] == original.headers["location"]
    assert listed(client, user) == [original.json()]


# "The same key with a different body is a 422 problem document, and changes nothing."


@pytest.mark.parametrize(
    "again",
    [("Buy bread", "two litres"), ("Buy milk", "three litres"), ("Buy milk", None), ("Buy milk", "")],
    ids=["another title", "another description", "no description", "empty description"],
)
def test_the_same_key_with_another_body_is_422_and_changes_nothing(client, user, backend, again):
    key = new_key()
    original = keyed_post(client, user, key, "Buy milk", "two litres").json()
    row_before = backend.task_row(original["id"])

    response = keyed_post(client, user, key, *again)

    body = problem(response, 422)
    assert "Idempotency-Key" in body["detail"]
    assert listed(client, user) == [original]
    assert backend.task_row(original["id"]) == row_before


def test_a_key_whose_task_was_replaced_answers_422_to_the_original_body(client, user):
    """The replay is compared with the task as stored (README): a PUT that changed the title
    makes the original body a different one."""
    key = new_key()
    original = keyed_post(client, user, key, "Buy milk").json()
    replaced = client.put(task_url(user, original["id"]), json={"title": "Buy oat milk"})
    assert replaced.status_code == 200

    problem(keyed_post(client, user, key, "Buy milk"), 422)
    assert listed(client, user) == [replaced.json()]


def test_a_replay_answers_with_the_task_as_it_is_now(client, user):
    key = new_key()
    original = keyed_post(client, user, key, "Buy milk").json()
    completed = client.patch(f"{task_url(user, original['id'])}/complete", json={"completed": True}).json()

    replay = keyed_post(client, user, key, "Buy milk")

    assert replay.status_code == 201
    assert replay.json() == completed


# "Keys are per user: two users may use the same key."


def test_two_users_may_use_the_same_key(client, user, other_user):
    key = new_key()

    mine = keyed_post(client, user, key, "Mine")
    theirs = keyed_post(client, other_user, key, "Theirs")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert listed(client, user) == [mine.json()]
    assert listed(client, other_user) == [theirs.json()]


def test_another_users_key_neither_finds_nor_reveals_the_task(client, user, other_user):
    key = new_key()
    mine = keyed_post(client, user, key, "Mine").json()

    theirs = keyed_post(client, other_user, key, "Something else")

    assert theirs.status_code == 201  # not 422: nothing of the first user's task shows
    assert theirs.json()["id"] != mine["id"]


# "A key is remembered as long as its task exists."


def test_a_key_is_remembered_while_its_task_exists(client, user):
    key = new_key()
    original = keyed_post(client, user, key).json()
    for _ in range(3):
        client.post(tasks_url(user), json={"title": "other work"})

    replay = keyed_post(client, user, key)

    assert replay.status_code == 201 and replay.json()["id"] == original["id"]


def test_after_its_task_is_deleted_the_key_creates_a_new_task(client, user):
    key = new_key()
    original = keyed_post(client, user, key, "Buy milk").json()
    assert client.delete(task_url(user, original["id"])).status_code == 204

    again = keyed_post(client, user, key, "Buy milk")
    different = keyed_post(client, user, key, "Buy bread")

    assert again.status_code == 201, again.text
    assert again.json()["id"] != original["id"]
    assert client.get(task_url(user, original["id"])).status_code == 404
    problem(different, 422)  # the key now names the new task
    assert listed(client, user) == [again.json()]


# "Two requests with the same new key at the same moment create one task; both answer with it."

CONCURRENT_REQUESTS = 8


def test_concurrent_requests_with_one_new_key_create_one_task_and_all_answer_with_it(backend, user):
    key = new_key()
    start = threading.Barrier(CONCURRENT_REQUESTS)
    answers: list = [None] * CONCURRENT_REQUESTS

    def send(number: int) -> None:
        client = open_client(backend.app, backend.secrets())
        try:
            start.wait(timeout=30)
            answers[number] = keyed_post(client, user, key, "At once", "the same body")
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(number,)) for number in range(CONCURRENT_REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a request hangs"

    assert [answer.status_code for answer in answers] == [201] * CONCURRENT_REQUESTS, [a.text for a in answers]
    bodies = {answer.text for answer in answers}
    assert len(bodies) == 1, bodies
    assert {answer.headers["location"] for answer in answers} == {answers[0].headers["location"]}
    client = open_client(backend.app)
    assert listed(client, user) == [answers[0].json()]
    client.close()


# "Without the header, every POST creates a new task."


def test_without_the_header_every_post_creates_a_new_task(client, user):
    first = client.post(tasks_url(user), json={"title": "Same"})
    second = client.post(tasks_url(user), json={"title": "Same"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert len(listed(client, user)) == 2


def test_a_keyed_create_and_unkeyed_ones_with_the_same_body_are_different_tasks(client, user):
    keyed = keyed_post(client, user, new_key(), "Same").json()
    unkeyed = client.post(tasks_url(user), json={"title": "Same"}).json()

    assert keyed["id"] != unkeyed["id"]
    assert len(listed(client, user)) == 2


# "1 to 255 printable ASCII characters; anything else is a 400."


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 255, "with space inside", '"quoted"', "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", str(uuid.uuid4())],
    ids=["one character", "255 characters", "space", "quotes", "punctuation", "uuid"],
)
def test_any_1_to_255_printable_ascii_characters_are_a_key(client, user, key):
    first = keyed_post(client, user, key, "Keyed")
    replay = keyed_post(client, user, key, "Keyed")

    assert (first.status_code, replay.status_code) == (201, 201), first.text
    assert replay.json() == first.json()


@pytest.mark.parametrize(
    "raw_key",
    [b"", b"x" * 256, "café".encode("latin-1"), "caf\u00e9".encode(), b"tab\there", b"\x7f"],
    ids=["empty", "256 characters", "latin-1", "utf-8", "tab", "DEL"],
)
def test_a_key_that_is_not_1_to_255_printable_ascii_characters_is_400(client, user, raw_key):
    response = client.post(
        tasks_url(user), json={"title": "Never made"}, headers=[(b"Idempotency-Key", raw_key)]
    )

    validation_problem(response, ["header", "Idempotency-Key"])
    assert listed(client, user) == []


# One statement, one round trip.


@pytest.fixture
def counted(backend):
    """An app whose database connection goes through a counting proxy, warmed up."""
    from sqlalchemy.engine import make_url

    url = make_url(backend.url)
    with TcpProxy(target=(url.host or "127.0.0.1", url.port or 5432)) as proxy:
        app = make_app(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        client = open_client(app)
        client.get("/health")
        yield client, proxy
        client.close()
        app.state.database.dispose()


def flights(proxy: TcpProxy, call) -> int:
    proxy.reset_counts()
    response = call()
    stats = proxy.stats()
    assert stats["connections_opened"] == 0, stats
    return response, stats["flights"]


def test_a_keyed_create_its_replay_and_its_422_each_take_one_round_trip(counted, user):
    client, proxy = counted
    key = new_key()

    created, created_trips = flights(proxy, lambda: keyed_post(client, user, key, "Counted"))
    replayed, replayed_trips = flights(proxy, lambda: keyed_post(client, user, key, "Counted"))
    refused, refused_trips = flights(proxy, lambda: keyed_post(client, user, key, "Another"))

    assert (created.status_code, replayed.status_code, refused.status_code) == (201, 201, 422)
    assert (created_trips, replayed_trips, refused_trips) == (1, 1, 1)


def test_a_browser_may_send_the_key_when_cors_is_on(backend, user):
    origin = "https://app.example.com"
    app = make_app(backend.url, cors_origins=origin)
    client = open_client(app, backend.secrets())
    try:
        preflight = client.options(
            tasks_url(user),
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, idempotency-key",
            },
        )
        created = keyed_post(client, user, new_key(), "From the browser")
    finally:
        client.close()
        app.state.database.dispose()

    assert preflight.status_code == 200, preflight.text
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert created.status_code == 201
