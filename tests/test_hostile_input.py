"""Hostile input beyond docs/API.md's table: none of it gives a 5xx or shows anything inside.

Every error answer of these tests goes through the `client` fixture's check (a problem
document, no stack trace, SQL, driver message or connection detail); each test also asserts
the status the contract gives. Text that is valid comes back, and is stored, exactly as
sent (a title trimmed of white space at its ends, a description untouched).
"""

from __future__ import annotations

import json

import pytest

from support.service_log import service_log
from support.api import assert_task_shape, complete_url, create_task, problem, task_url, tasks_url

JSON = {"content-type": "application/json"}
LIMIT = 64 * 1024


def raw(value) -> bytes:
    """JSON text exactly as given, non-ASCII as UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode()


def refused(response, status: int = 400) -> dict:
    assert response.status_code < 500, response.text
    return problem(response, status)


# --- size and shape ---------------------------------------------------------------------------


def test_a_title_of_a_megabyte_is_413(client, user):
    refused(client.post(tasks_url(user), json={"title": "x" * 1024 * 1024}), 413)
    assert client.get(tasks_url(user)).json() == []


def test_a_title_of_255_four_byte_characters_is_255_characters(client, user):
    title = "\U0001d54b" * 255  # 𝕋: 4 bytes in UTF-8, 2 code units in UTF-16, 1 character
    assert create_task(client, user, title)["title"] == title
    refused(client.post(tasks_url(user), json={"title": title + "\U0001d54b"}))


DEEP = 30_000  # two bytes a level: still under the 64 KiB limit, far past any recursion limit


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"a":' * (DEEP // 3) + b"1" + b"}" * (DEEP // 3),
        b'{"title":' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"title":"x","description":' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"title":"x","extra":' + b'{"a":' * (DEEP // 3) + b"1" + b"}" * (DEEP // 3) + b"}",
        # Unclosed: the parser must give up, not recurse until it fails.
        b'{"title":' + b"[" * (LIMIT - 20),
    ],
    ids=["arrays", "objects", "in-title", "in-description", "in-unknown-field", "unclosed"],
)
def test_deeply_nested_json_is_400(client, user, body):
    assert len(body) <= LIMIT
    refused(client.post(tasks_url(user), content=body, headers=JSON))
    assert client.get(tasks_url(user)).json() == []


@pytest.mark.parametrize("depth", [50, 500])
def test_moderately_nested_json_where_a_string_belongs_is_400(client, user, depth):
    body = {"title": "x", "description": json.loads("[" * depth + "]" * depth)}
    refused(client.post(tasks_url(user), json=body))


def test_a_duplicate_key_is_refused_or_the_last_one_wins(client, user):
    # RFC 8259 leaves duplicate names to the parser. Whatever it does, the task must be
    # the one thing or the other, never a 5xx or a mix.
    response = client.post(tasks_url(user), content=b'{"title":"first","title":"last"}', headers=JSON)

    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        assert response.json()["title"] == "last"
        assert [task["title"] for task in client.get(tasks_url(user)).json()] == ["last"]
    else:
        assert client.get(tasks_url(user)).json() == []


def test_a_duplicate_completed_key_is_refused_or_the_last_one_wins(client, user):
    task = create_task(client, user, "Twice")
    response = client.patch(
        complete_url(user, task["id"]), content=b'{"completed":true,"completed":false}', headers=JSON
    )

    assert response.status_code in (200, 400), response.text
    stored = client.get(task_url(user, task["id"])).json()
    assert stored["completed"] is False  # the last value, or (refused) unchanged


# --- bytes that are not UTF-8 ----------------------------------------------------------------

NOT_UTF8 = {
    "lone-continuation-byte": b'{"title":"\x80"}',
    "invalid-start-byte": b'{"title":"\xff"}',
    "overlong-slash": b'{"title":"\xc0\xaf"}',
    "overlong-nul": b'{"title":"\xc0\x80"}',
    "encoded-surrogate": b'{"title":"\xed\xa0\x80"}',
    "truncated-sequence": b'{"title":"\xe2\x82"}',
    "beyond-u10ffff": b'{"title":"\xf4\x90\x80\x80"}',
    "latin-1": '{"title":"caf\u00e9"}'.encode("latin-1"),
    "in-a-key": b'{"\xff":"x","title":"x"}',
    "utf-16-with-bom": '{"title":"x"}'.encode("utf-16"),
    "utf-16-le": '{"title":"x"}'.encode("utf-16-le"),
    "utf-32": '{"title":"x"}'.encode("utf-32"),
}


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_body_that_is_not_utf8_is_400(client, user, body):
    refused(client.post(tasks_url(user), content=body, headers=JSON))
    assert client.get(tasks_url(user)).json() == []


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_replacement_that_is_not_utf8_is_400_and_changes_nothing(client, user, body):
    task = create_task(client, user, "Unchanged")
    refused(client.put(task_url(user, task["id"]), content=body, headers=JSON))
    assert client.get(task_url(user, task["id"])).json() == task


# --- numbers -----------------------------------------------------------------------------------

HUGE_NUMBERS = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "10^5000": b"1" + b"0" * 5000,
    "-10^5000": b"-1" + b"0" * 5000,
    "tiny": b"1e-400",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "long-fraction": b"0." + b"1" * 5000,
}


@pytest.mark.parametrize("number", HUGE_NUMBERS.values(), ids=HUGE_NUMBERS.keys())
def test_a_number_as_title_or_description_is_400(client, user, number):
    refused(client.post(tasks_url(user), content=b'{"title":' + number + b"}", headers=JSON))
    refused(client.post(tasks_url(user), content=b'{"title":"x","description":' + number + b"}", headers=JSON))
    assert client.get(tasks_url(user)).json() == []


@pytest.mark.parametrize("number", [*HUGE_NUMBERS.values(), b"1", b"0", b"1.0"], ids=[*HUGE_NUMBERS, "1", "0", "1.0"])
def test_a_number_as_completed_is_400_and_changes_nothing(client, user, number):
    task = create_task(client, user, "Open")
    refused(client.patch(complete_url(user, task["id"]), content=b'{"completed":' + number + b"}", headers=JSON))
    assert client.get(task_url(user, task["id"])).json() == task


def test_a_huge_number_in_an_unknown_field_is_no_5xx(client, user):
    response = client.post(tasks_url(user), content=b'{"title":"x","n":1' + b"0" * 5000 + b"}", headers=JSON)
    assert response.status_code in (201, 400), response.text


# --- text that must come back exactly as sent --------------------------------------------------

TEXTS = {
    "right-to-left": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "bidi-override": "\u202egnp.exe\u202c file",
    "bidi-marks-and-isolates": "a\u200fb\u200ec\u2066d\u2069",
    "zero-width": "in\u200bvis\u200cib\u200dle\u2060",
    "zero-width-at-the-ends": "\u200bedges\ufeff",
    "emoji": "\U0001f600 \U0001f44d\U0001f3fd \U0001f1fa\U0001f1f3",
    "emoji-zwj-family": "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "combining": "e\u0301 a\u0308 Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f",
    "not-normalised": "\u212b \u0041\u030a \u00c5",  # three spellings of Å, each kept as sent
    "astral": "\U0001d54b\U0001d556\U0001d564\U0001d565 \U00020000",
    "private-use-and-noncharacters": "\ue000\uf8ff\ufdd0\ufffe\U0010ffff",
    "controls": "bell\x07 esc\x1b[31m del\x7f sep\x1c",
    "sql": "'; DROP TABLE tasks; -- Robert'); DELETE FROM users; /* \" OR 1=1 --",
    "sql-like-wildcards": "100% of a_b \\ c",
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>&amp;&lt;",
    "json-looking": '{"title": "nested", "id": null}\\"}',
    "format-strings": "%s %d %x %n {0} {title} ${HOME} $(id) `id`",
    "crlf-and-tabs": "line one\r\nline\ttwo",
    "replacement-char": "\ufffd\ufffd",
}

# Unicode White_Space at the ends of a title is trimmed (U+200B and U+FEFF are not white space).
PADDING = " \t\u00a0\u3000\u2003\n"


def _assert_stored_as_sent(client, backend, user, task_id, title, description):
    for body in (client.get(task_url(user, task_id)).json(), *client.get(tasks_url(user)).json()):
        if body["id"] == task_id:
            assert_task_shape(body)
            assert (body["title"], body["description"]) == (title, description)
    row = backend.task_row(task_id)
    assert (row["title"], row["description"]) == (title, description)


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_text_is_stored_and_returned_exactly_as_sent(client, backend, user, text):
    description = PADDING + text + PADDING
    response = client.post(tasks_url(user), json={"title": PADDING + text + PADDING, "description": description})

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["title"], created["description"]) == (text, description)
    response.content.decode("utf-8")  # the answer itself is UTF-8
    _assert_stored_as_sent(client, backend, user, created["id"], text, description)

    replaced = client.put(task_url(user, created["id"]), json={"title": "re: " + text, "description": text})
    assert replaced.status_code == 200, replaced.text
    _assert_stored_as_sent(client, backend, user, created["id"], "re: " + text, text)


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_hostile_text_is_searched_for_literally(client, user, text):
    task = create_task(client, user, "needle " + text)
    create_task(client, user, "haystack")

    response = client.get(tasks_url(user), params={"q": text})

    assert response.status_code == 200, response.text
    assert [found["id"] for found in response.json()] == [task["id"]]


# --- headers -----------------------------------------------------------------------------------

BAD_REQUEST_IDS = {
    "8-kib": b"hostile-" + b"x" * 8192,
    "129-characters": b"hostile-" + b"y" * 121,
    "nul": b"hostile-\x00-id",
    "newline-log-injection": b'hostile-\n{"level": "ERROR", "message": "forged"}',
    "carriage-return": b"hostile-\r-id",
    "ansi-escape": b"hostile-\x1b[2J\x1b[31m-id",
    "utf-8": "hostile-\u00e9\u202e-id".encode(),
    "latin-1": "hostile-caf\u00e9".encode("latin-1"),
    "invalid-utf-8": b"hostile-\xff\xfe-id",
}


@pytest.fixture
def log_text():
    with service_log() as logged:
        yield logged


@pytest.mark.parametrize("sent", BAD_REQUEST_IDS.values(), ids=BAD_REQUEST_IDS.keys())
def test_a_hostile_request_id_is_replaced_and_never_logged(client, user, log_text, sent):
    responses = [
        client.get(tasks_url(user), headers=[(b"X-Request-ID", sent)]),
        client.post(tasks_url(user), json={"title": ""}, headers=[(b"X-Request-ID", sent)]),
    ]

    for response in responses:
        replaced = response.headers["x-request-id"]
        assert 0 < len(replaced) <= 128 and all(0x20 <= ord(c) <= 0x7E for c in replaced), replaced
        assert "hostile" not in replaced
    logged = log_text()
    assert logged, "the requests logged nothing"
    for line in logged.splitlines():
        entry = json.loads(line)  # one JSON object a line: nothing forged a line of its own
        assert entry["request_id"] in {r.headers["x-request-id"] for r in responses}, line
    assert "hostile" not in logged


def test_many_request_id_headers_give_one_id(client, user):
    response = client.get(tasks_url(user), headers=[(b"X-Request-ID", b"first"), (b"X-Request-ID", b"second")])

    assert response.status_code == 200
    assert len(response.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=utf-16", "application/json; charset=" + "x" * 4000, "\x7f/\x00"],
)
def test_an_odd_content_type_is_no_5xx(client, user, content_type):
    response = client.post(tasks_url(user), content=b'{"title":"typed"}', headers={"content-type": content_type})
    assert response.status_code in (201, 400, 415), response.text


# --- query strings -----------------------------------------------------------------------------


def test_a_search_of_1000_characters_is_fine_and_of_1001_is_400(client, user):
    assert client.get(tasks_url(user), params={"q": "q" * 1000}).status_code == 200
    refused(client.get(tasks_url(user), params={"q": "q" * 1001}))
    refused(client.get(tasks_url(user), params={"q": "\U0001f600" * 1001}))


@pytest.mark.parametrize("query", ["q=%00", "q=a%00b", "q=%00" * 1000, "completed=%00", "sort=%00title", "limit=1%00"])
def test_a_nul_in_a_query_value_is_400(client, user, query):
    refused(client.get(f"{tasks_url(user)}?{query}"))


@pytest.mark.parametrize(
    "query",
    ["q=%", "q=%zz", "q=%ff", "q=%C0%80", "q=%ED%A0%80", "q=%%%", "q=%25%5F%5C", "q=a+b", "q=%2B", "=x", "&&&", "q",
     "q=" + "%41" * 1000, "x=" + "y" * 60_000],
)
def test_odd_percent_escapes_and_shapes_are_no_5xx(client, user, query):
    response = client.get(f"{tasks_url(user)}?{query}")
    assert response.status_code in (200, 400), response.text


def test_percent_escapes_are_decoded_once_and_matched_literally(client, user):
    percent = create_task(client, user, "100% done")
    create_task(client, user, "1000 done")
    create_task(client, user, "%25 not decoded twice")

    found = client.get(f"{tasks_url(user)}?q=0%25%20d").json()

    assert [task["id"] for task in found] == [percent["id"]]


@pytest.mark.parametrize(
    ("query", "allowed"),
    [("limit=1&limit=2", {1, 2}), ("completed=true&completed=false", None), ("sort=title&sort=-title", None)],
)
def test_a_repeated_parameter_is_refused_or_one_value_holds(client, user, query, allowed):
    for title in ("a", "b", "c"):
        create_task(client, user, title)

    response = client.get(f"{tasks_url(user)}?{query}")

    assert response.status_code in (200, 400), response.text
    if response.status_code == 200 and allowed:
        assert len(response.json()) in allowed


@pytest.mark.parametrize(
    "query",
    ["limit=" + "9" * 30, "offset=" + "9" * 30, "offset=9223372036854775808", "limit=-0", "limit=1e2",
     "limit=0x10", "limit=%EF%BC%91", "offset=%D9%A1"],
)
def test_numbers_out_of_range_or_form_in_the_query_are_400(client, user, query):
    refused(client.get(f"{tasks_url(user)}?{query}"))


# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/" + "a" * 20_000 + "/tasks", "/api/%00/tasks", "/api/..%2F..%2Fetc%2Fpasswd/tasks",
     "/api/{u}/tasks/%27%20OR%201%3D1--", "/api/{u}/tasks/" + "\u0661" * 36, "/api/{u}/tasks/%ff"],
)
def test_hostile_path_values_are_400_or_404(client, user, path):
    response = client.get(path.replace("{u}", user))
    assert response.status_code in (400, 404), response.text
