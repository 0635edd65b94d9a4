"""Bad input: every case is a 400 (or 413) problem document, and never reaches the database
as an error. Field limits and trimming at their edges."""

import json

import pytest

from support.api import complete_url, create_task, problem, task_url, tasks_url, validation_problem

JSON = {"content-type": "application/json"}
# A valid path value that is never anyone's user or task.
SOME_UUID = "5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c21"


def raw(value) -> bytes:
    """JSON text exactly as given, non-ASCII sent as UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode()


# --- bodies of POST and PUT -----------------------------------------------------------------

NOT_AN_OBJECT = {
    "truncated": b'{"title": "x"',
    "trailing-comma": b'{"title": "x",}',
    "single-quotes": b"{'title': 'x'}",
    "trailing-garbage": b'{"title": "x"} x',
    "empty": b"",
    "invalid-utf8": b'{"title": "\xff\xfe"}',
    "array": b'[{"title": "x"}]',
    "empty-array": b"[]",
    "string": b'"x"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
}

BAD_FIELDS = {
    "no-fields": ({}, "title"),
    "only-description": ({"description": "d"}, "title"),
    "title-null": ({"title": None}, "title"),
    "title-number": ({"title": 5}, "title"),
    "title-float": ({"title": 5.5}, "title"),
    "title-bool": ({"title": True}, "title"),
    "title-array": ({"title": ["x"]}, "title"),
    "title-object": ({"title": {"text": "x"}}, "title"),
    "title-empty": ({"title": ""}, "title"),
    "title-blank": ({"title": "   "}, "title"),
    "title-white-space": ({"title": " \t\n\r "}, "title"),
    "title-256": ({"title": "x" * 256}, "title"),
    "title-256-after-trim": ({"title": "  " + "x" * 256 + "  "}, "title"),
    "title-256-emoji": ({"title": "😀" * 256}, "title"),
    "title-nul": ({"title": "a\u0000b"}, "title"),
    "title-only-nul": ({"title": "\u0000"}, "title"),
    "description-number": ({"title": "ok", "description": 5}, "description"),
    "description-bool": ({"title": "ok", "description": False}, "description"),
    "description-array": ({"title": "ok", "description": ["d"]}, "description"),
    "description-object": ({"title": "ok", "description": {}}, "description"),
    "description-10001": ({"title": "ok", "description": "d" * 10_001}, "description"),
    "description-nul": ({"title": "ok", "description": "line\u0000"}, "description"),
}

# Unpaired surrogates can only be written as JSON escapes: send the JSON text itself.
UNPAIRED_SURROGATES = {
    "title-high": (b'{"title": "a\\ud800b"}', "title"),
    "title-low": (b'{"title": "\\udc00"}', "title"),
    "title-high-at-end": (b'{"title": "smile \\ud83d"}', "title"),
    "title-reversed-pair": (b'{"title": "\\ude00\\ud83d"}', "title"),
    "description-high": (b'{"title": "ok", "description": "\\ud800"}', "description"),
    "description-low": (b'{"title": "ok", "description": "x\\udfffy"}', "description"),
}


@pytest.fixture(params=["POST", "PUT"])
def write(request, client, user):
    """Send a body to create a task, or to replace an existing one; check nothing changed after."""
    existing = create_task(client, user, "Existing", description="as created") if request.param == "PUT" else None

    def send(**kwargs):
        url = tasks_url(user) if existing is None else task_url(user, existing["id"])
        return client.request(request.param, url, **kwargs)

    yield send
    listed = client.get(tasks_url(user)).json()
    assert listed == ([] if existing is None else [existing]), "a rejected write changed the user's tasks"


@pytest.mark.parametrize("body", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_a_body_that_is_not_a_json_object_is_400(write, body):
    found = validation_problem(write(content=body, headers=JSON))

    assert any(error["loc"][:1] == ["body"] for error in found["errors"]), found


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_missing_wrong_typed_or_out_of_range_field_is_400(write, body, field):
    validation_problem(write(content=raw(body), headers=JSON), ["body", field])


@pytest.mark.parametrize(("body", "field"), UNPAIRED_SURROGATES.values(), ids=UNPAIRED_SURROGATES.keys())
def test_text_with_an_unpaired_surrogate_is_400(write, body, field):
    validation_problem(write(content=body, headers=JSON), ["body", field])


def test_a_problem_lists_every_field_problem(client, user):
    response = client.post(tasks_url(user), json={"title": "", "description": 7})

    validation_problem(response, ["body", "title"], ["body", "description"])


ACCEPTED = {
    "title-1": ("x", "x"),
    "title-255": ("x" * 255, "x" * 255),
    "title-255-after-trim": ("  " + "x" * 255 + " \t\n", "x" * 255),
    "title-255-emoji": ("😀" * 255, "😀" * 255),
    "title-255-accented": ("é" * 255, "é" * 255),
}


@pytest.mark.parametrize(("sent", "stored"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_titles_up_to_255_characters_after_trimming_are_accepted(client, user, sent, stored):
    task = create_task(client, user, sent)
    replaced = client.put(task_url(user, task["id"]), json={"title": sent})

    assert task["title"] == stored
    assert replaced.status_code == 200
    assert replaced.json()["title"] == stored
    assert client.get(task_url(user, task["id"])).json()["title"] == stored


@pytest.mark.parametrize("description", ["d" * 10_000, "😀" * 10_000, ""], ids=["10000", "10000-emoji", "empty"])
def test_descriptions_up_to_10000_characters_are_accepted(client, user, description):
    response = client.post(tasks_url(user), content=raw({"title": "t", "description": description}), headers=JSON)
    assert response.status_code == 201
    task = response.json()
    replaced = client.put(task_url(user, task["id"]), content=raw({"title": "t", "description": description}),
                          headers=JSON)

    assert task["description"] == description
    assert replaced.status_code == 200
    assert client.get(task_url(user, task["id"])).json()["description"] == description


# --- path values ----------------------------------------------------------------------------

NOT_UUIDS = ["not-a-uuid", "12345", "5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c2", "5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7c21a",
             "5d0e0a4e-8e0b-4cf4-9a53-0b1f3d5e7czz"]
ENDPOINTS = {
    "create": ("POST", lambda u, t: tasks_url(u), {"title": "x"}),
    "list": ("GET", lambda u, t: tasks_url(u), None),
    "get": ("GET", task_url, None),
    "put": ("PUT", task_url, {"title": "x"}),
    "delete": ("DELETE", task_url, None),
    "complete": ("PATCH", complete_url, {"completed": True}),
}


@pytest.mark.parametrize("bad", NOT_UUIDS)
@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS.values(), ids=ENDPOINTS.keys())
def test_a_user_id_that_is_not_a_uuid_is_400(client, method, url, body, bad):
    validation_problem(client.request(method, url(bad, SOME_UUID), json=body), ["path", "user_id"])


@pytest.mark.parametrize("bad", NOT_UUIDS)
@pytest.mark.parametrize(("method", "url", "body"), list(ENDPOINTS.values())[2:], ids=list(ENDPOINTS)[2:])
def test_a_task_id_that_is_not_a_uuid_is_400(client, user, method, url, body, bad):
    create_task(client, user, "Existing")

    found = validation_problem(client.request(method, url(user, bad), json=body))

    # The contract names this path segment {id}; FastAPI names a location after the parameter.
    assert any(error["loc"][0] == "path" and error["loc"][1] in ("id", "task_id") for error in found["errors"]), found


# --- query parameters -----------------------------------------------------------------------

BAD_QUERIES = {
    "completed": ["True", "TRUE", "1", "0", "yes", "", "true ", "null", "truex"],
    "limit": ["0", "101", "-1", "+1", "1.0", " 1", "1 ", "1_0", "abc", "", "\uff11", "0x10", "1e1",
              "99999999999999999999"],
    "offset": ["-1", "+1", "1.0", " 1", "1_0", "abc", "", "\uff11", "\u0663", "9223372036854775808",
               "99999999999999999999999"],
    "sort": ["bogus", "TITLE", "", "+title", "--title", "title ", "id", "-id", "description", "completed"],
    "q": ["a\u0000b", "\u0000", "x" * 1001],
}


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in BAD_QUERIES.items() for value in values],
    ids=[f"{name}={value[:12]!r}" for name, values in BAD_QUERIES.items() for value in values],
)
def test_a_bad_query_parameter_is_400(client, user, name, value):
    create_task(client, user, "Existing")

    validation_problem(client.get(tasks_url(user), params={name: value}), ["query", name])


@pytest.mark.parametrize(
    ("name", "value"),
    [("completed", "true"), ("completed", "false"), ("limit", "1"), ("limit", "100"), ("offset", "0"),
     ("offset", "9223372036854775807"), ("q", "x" * 1000), ("q", "%_\\")]
    + [("sort", sort) for sort in ("created_at", "-created_at", "updated_at", "-updated_at", "title", "-title")],
)
def test_query_values_at_the_edges_are_accepted(client, user, name, value):
    create_task(client, user, "Existing")

    assert client.get(tasks_url(user), params={name: value}).status_code == 200


# --- body size ------------------------------------------------------------------------------

LIMIT = 64 * 1024


def padded(body: dict, size: int) -> bytes:
    """A JSON object of exactly `size` bytes: white space pads it before the closing brace."""
    text = raw(body)
    assert len(text) <= size
    return text[:-1] + b" " * (size - len(text)) + b"}"


def test_a_body_of_exactly_64_kib_is_accepted(client, user):
    response = client.post(tasks_url(user), content=padded({"title": "big"}, LIMIT), headers=JSON)

    assert response.status_code == 201
    assert response.json()["title"] == "big"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [("POST", lambda u, t: tasks_url(u), {"title": "big"}), ("PUT", task_url, {"title": "big"}),
     ("PATCH", complete_url, {"completed": True})],
    ids=["POST", "PUT", "PATCH"],
)
def test_a_body_over_64_kib_is_413_and_changes_nothing(client, user, method, url, body):
    task = create_task(client, user, "Existing")

    problem(client.request(method, url(user, task["id"]), content=padded(body, LIMIT + 1), headers=JSON), 413)

    assert client.get(tasks_url(user)).json() == [task]


def test_a_body_over_64_kib_is_413_even_when_it_is_not_json(client, user):
    problem(client.post(tasks_url(user), content=b"\x00" * (LIMIT * 16), headers=JSON), 413)


def test_a_streamed_body_over_64_kib_without_content_length_is_413(client, user):
    def chunks():
        yield b'{"title": "big"'
        for _ in range(LIMIT // 1024 + 1):
            yield b" " * 1024
        yield b"}"

    response = client.post(tasks_url(user), content=chunks(), headers=JSON)

    problem(response, 413)
    assert client.get(tasks_url(user)).json() == []
