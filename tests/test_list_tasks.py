"""GET /api/{user_id}/tasks: filter, search, sort, page."""

import uuid
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from support.api import (
    assert_task_shape,
    complete_url,
    create_task,
    links,
    query_of,
    task_url,
    tasks_url,
    timestamp,
)


def listing(client, user, **params):
    response = client.get(tasks_url(user), params=params)
    assert response.status_code == 200, response.text
    return response


def ids(response):
    return [task["id"] for task in response.json()]


def total(response) -> int:
    value = response.headers["x-total-count"]
    assert value.isdigit(), value
    return int(value)


def create_many(client, user, count, title="task"):
    return [create_task(client, user, f"{title} {n:03d}") for n in range(count)]


def sort_key(field):
    def key(task):
        value = timestamp(task[field]) if field.endswith("_at") else task[field]
        return (value, uuid.UUID(task["id"]))

    return key


def expected_order(tasks, sort):
    field = sort.lstrip("-")
    return [task["id"] for task in sorted(tasks, key=sort_key(field), reverse=sort.startswith("-"))]


# --- what a list holds -------------------------------------------------------------------


def test_a_user_without_tasks_gets_200_and_an_empty_list(client, user):
    response = listing(client, user)

    assert response.json() == []
    assert total(response) == 0
    assert links(response) == {}


def test_the_list_holds_exactly_the_users_tasks_in_full(client, user, other_user):
    mine = [create_task(client, user, "one", description="1"), create_task(client, user, "two")]
    create_task(client, other_user, "not mine")

    response = listing(client, user)

    assert response.headers["content-type"].startswith("application/json")
    for task in response.json():
        assert_task_shape(task)
    assert sorted(response.json(), key=lambda t: t["id"]) == sorted(mine, key=lambda t: t["id"])
    assert total(response) == 2


def test_the_default_order_is_newest_first(client, user):
    tasks = create_many(client, user, 4)

    response = listing(client, user)

    assert ids(response) == expected_order(tasks, "-created_at")
    assert ids(response) == ids(listing(client, user, sort="-created_at"))


def test_unknown_query_parameters_are_ignored(client, user):
    create_many(client, user, 3)

    response = listing(client, user, colour="blue", page="7")

    assert ids(response) == ids(listing(client, user))
    assert total(response) == 3


# --- filter ------------------------------------------------------------------------------


@pytest.fixture
def half_done(client, user):
    """Five tasks of which two are completed."""
    tasks = create_many(client, user, 5)
    for task in tasks[1:4:2]:
        assert client.patch(complete_url(user, task["id"]), json={"completed": True}).status_code == 200
    return {"done": {tasks[1]["id"], tasks[3]["id"]}, "open": {tasks[0]["id"], tasks[2]["id"], tasks[4]["id"]}}


def test_completed_true_lists_only_completed_tasks(client, user, half_done):
    response = listing(client, user, completed="true")

    assert set(ids(response)) == half_done["done"]
    assert all(task["completed"] is True for task in response.json())
    assert total(response) == 2


def test_completed_false_lists_only_open_tasks(client, user, half_done):
    response = listing(client, user, completed="false")

    assert set(ids(response)) == half_done["open"]
    assert all(task["completed"] is False for task in response.json())
    assert total(response) == 3


def test_without_completed_both_kinds_are_listed(client, user, half_done):
    response = listing(client, user)

    assert set(ids(response)) == half_done["done"] | half_done["open"]
    assert total(response) == 5


# --- search ------------------------------------------------------------------------------


def test_q_matches_the_title_case_insensitively(client, user):
    hit = create_task(client, user, "Buy MILK today")
    create_task(client, user, "Buy bread")

    assert ids(listing(client, user, q="milk")) == [hit["id"]]
    assert ids(listing(client, user, q="mIlK tO")) == [hit["id"]]


def test_q_matches_the_description_case_insensitively(client, user):
    hit = create_task(client, user, "Shopping", description="Remember the OAT milk")
    create_task(client, user, "Shopping", description="bread")
    create_task(client, user, "Oat fields")  # no description at all

    assert ids(listing(client, user, q="oat MILK")) == [hit["id"]]


def test_q_matches_title_or_description(client, user):
    in_title = create_task(client, user, "Call the plumber")
    in_description = create_task(client, user, "Kitchen", description="ask the Plumber about the sink")
    create_task(client, user, "Garden", description="mow")

    response = listing(client, user, q="plumber")

    assert set(ids(response)) == {in_title["id"], in_description["id"]}
    assert total(response) == 2


def test_q_that_matches_nothing_gives_an_empty_list(client, user):
    create_task(client, user, "Buy milk")

    response = listing(client, user, q="zebra")

    assert response.json() == []
    assert total(response) == 0


LITERAL_TITLES = ["100% done", "1000 done", "snake_case", "snakeXcase", "back\\slash", "backslash", "odd \\% mix",
                  "odd X mix"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", {"100% done", "odd \\% mix"}),
        ("0%", {"100% done"}),
        ("1%0", set()),
        ("_", {"snake_case"}),
        ("e_c", {"snake_case"}),
        ("\\", {"back\\slash", "odd \\% mix"}),
        ("k\\s", {"back\\slash"}),
        ("\\%", {"odd \\% mix"}),
        ("%_", set()),
    ],
    ids=["percent", "digit-percent", "percent-between", "underscore", "letter-underscore", "backslash",
         "letter-backslash", "backslash-percent", "percent-underscore"],
)
def test_q_matches_percent_underscore_and_backslash_literally(client, user, q, expected):
    for title in LITERAL_TITLES:
        create_task(client, user, title)

    response = listing(client, user, q=q)

    assert {task["title"] for task in response.json()} == expected
    assert total(response) == len(expected)


def test_q_combines_with_the_completed_filter(client, user):
    done = create_task(client, user, "Paint the fence")
    create_task(client, user, "Paint the door")
    create_task(client, user, "Fix the fence")
    client.patch(complete_url(user, done["id"]), json={"completed": True})

    response = listing(client, user, q="PAINT", completed="true")

    assert ids(response) == [done["id"]]
    assert total(response) == 1


# --- sort --------------------------------------------------------------------------------


@pytest.fixture
def sortable(client, user):
    """Tasks whose orders by creation, by last change and by title all differ, with ties in the title."""
    tasks = [
        create_task(client, user, "cherry"),
        create_task(client, user, "apple"),
        create_task(client, user, "banana"),
        create_task(client, user, "apple"),
        create_task(client, user, "apple"),
    ]
    # By last change: banana, apple, apple, cherry, apple. By title: apple x3, banana, cherry.
    assert client.put(task_url(user, tasks[0]["id"]), json={"title": "cherry"}).status_code == 200
    assert client.patch(complete_url(user, tasks[1]["id"]), json={"completed": True}).status_code == 200
    current = [client.get(task_url(user, task["id"])).json() for task in tasks]
    orders = {sort: expected_order(current, sort) for sort in ("created_at", "updated_at", "title")}
    # The data must tell the sort keys apart, or the tests below could pass with the wrong key.
    assert orders["created_at"] != orders["updated_at"]
    assert orders["created_at"] != orders["title"]
    assert orders["updated_at"] != orders["title"]
    return current


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"])
def test_sort_orders_by_its_key_then_by_id_in_the_same_direction(client, user, sortable, sort):
    response = listing(client, user, sort=sort)

    assert ids(response) == expected_order(sortable, sort)
    assert total(response) == len(sortable)


def test_identical_titles_are_ordered_by_id_in_the_direction_of_the_sort(client, user):
    tasks = [create_task(client, user, "same title") for _ in range(5)]
    by_id = sorted((task["id"] for task in tasks), key=uuid.UUID)

    assert ids(listing(client, user, sort="title")) == by_id
    assert ids(listing(client, user, sort="-title")) == list(reversed(by_id))


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "updated_at", "-updated_at"])
def test_identical_timestamps_are_ordered_by_id_in_the_direction_of_the_sort(client, backend, user, sort):
    tasks = [create_task(client, user, f"task {n}") for n in range(5)]
    # The API cannot make two tasks at the same instant: give them one in the database.
    from todo.tables import Task

    table = Task.__table__
    instant = timestamp(tasks[0]["created_at"])
    with backend.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id.in_([uuid.UUID(task["id"]) for task in tasks]))
            .values(created_at=instant, updated_at=instant)
        )
    by_id = sorted((task["id"] for task in tasks), key=uuid.UUID)

    response = listing(client, user, sort=sort)

    assert ids(response) == (list(reversed(by_id)) if sort.startswith("-") else by_id)


def test_paging_through_ties_is_stable(client, user):
    tasks = [create_task(client, user, "same title") for _ in range(5)]
    by_id = sorted((task["id"] for task in tasks), key=uuid.UUID)

    pages = [ids(listing(client, user, sort="title", limit="2", offset=str(offset))) for offset in (0, 2, 4)]

    assert pages == [by_id[0:2], by_id[2:4], by_id[4:5]]


# --- paging ------------------------------------------------------------------------------


def test_limit_1_gives_one_task(client, user):
    tasks = create_many(client, user, 3)

    response = listing(client, user, limit="1")

    assert ids(response) == expected_order(tasks, "-created_at")[:1]
    assert total(response) == 3


def test_limit_100_gives_100_tasks(client, user):
    tasks = create_many(client, user, 101)

    response = listing(client, user, limit="100")

    assert ids(response) == expected_order(tasks, "-created_at")[:100]
    assert total(response) == 101


def test_the_default_limit_is_100(client, user):
    tasks = create_many(client, user, 101)

    response = listing(client, user)

    assert ids(response) == expected_order(tasks, "-created_at")[:100]
    assert total(response) == 101
    following = client.get(links(response)["next"])
    assert ids(following) == expected_order(tasks, "-created_at")[100:]


def test_offset_skips_that_many_tasks(client, user):
    tasks = create_many(client, user, 5)

    response = listing(client, user, offset="2", limit="2", sort="created_at")

    assert ids(response) == expected_order(tasks, "created_at")[2:4]


def test_an_offset_beyond_the_end_gives_an_empty_page_with_the_total(client, user):
    create_many(client, user, 3)

    response = listing(client, user, limit="2", offset="10")

    assert response.json() == []
    assert total(response) == 3
    assert "next" not in links(response)
    assert query_of(links(response)["prev"])["offset"] == "8"


def test_the_largest_offset_gives_an_empty_page_with_the_total(client, user):
    create_many(client, user, 2)

    response = listing(client, user, offset="9223372036854775807")

    assert response.json() == []
    assert total(response) == 2


def test_x_total_count_ignores_limit_and_offset_but_not_filters(client, user, half_done):
    assert total(listing(client, user, limit="2", offset="1")) == 5
    assert total(listing(client, user, limit="1", offset="4")) == 5
    assert total(listing(client, user, limit="1", completed="true")) == 2
    assert total(listing(client, user, limit="1", offset="3", completed="false")) == 3


def test_there_is_no_link_header_when_one_page_holds_everything(client, user):
    create_many(client, user, 3)

    assert "link" not in listing(client, user, limit="3").headers
    assert "link" not in listing(client, user).headers


@pytest.mark.parametrize(
    ("offset", "next_offset", "prev_offset"),
    [(0, 2, None), (1, 3, 0), (2, 4, 0), (3, None, 1), (4, None, 2), (5, None, 3)],
)
def test_links_point_to_the_next_and_previous_pages_exactly_when_they_exist(
    client, user, offset, next_offset, prev_offset
):
    create_many(client, user, 5)

    found = links(listing(client, user, limit="2", offset=str(offset)))

    assert set(found) == {rel for rel, at in (("next", next_offset), ("prev", prev_offset)) if at is not None}
    for rel, at in (("next", next_offset), ("prev", prev_offset)):
        if at is not None:
            assert query_of(found[rel])["offset"] == str(at)
            assert query_of(found[rel])["limit"] == "2"


def test_links_are_relative_references_to_the_same_list(client, user):
    create_many(client, user, 3)

    found = links(listing(client, user, limit="1", offset="1"))

    for target in found.values():
        parts = urlsplit(target)
        assert (parts.scheme, parts.netloc) == ("", "")
        assert parts.path == tasks_url(user)


def test_links_keep_the_other_query_parameters(client, user):
    for n in range(5):
        create_task(client, user, f"task {n}", description="50% off & more")

    response = listing(client, user, completed="false", q="50% off & more", sort="title", limit="2", offset="2")

    for rel in ("next", "prev"):
        query = query_of(links(response)[rel])
        assert query["completed"] == "false"
        assert query["q"] == "50% off & more"
        assert query["sort"] == "title"
        assert query["limit"] == "2"


def test_following_next_links_walks_every_task_exactly_once_in_order(client, user):
    tasks = create_many(client, user, 7)
    seen = []
    response = listing(client, user, sort="title", limit="3")
    pages = 1
    while "next" in links(response):
        seen += ids(response)
        response = client.get(links(response)["next"])
        assert response.status_code == 200
        assert total(response) == 7
        pages += 1
        assert pages <= 7, "the next links do not end"
    seen += ids(response)

    assert pages == 3
    assert seen == expected_order(tasks, "title")


def test_following_prev_links_walks_back_to_the_first_page(client, user):
    tasks = create_many(client, user, 7)
    order = expected_order(tasks, "created_at")
    response = listing(client, user, sort="created_at", limit="3", offset="6")
    pages = [ids(response)]
    while "prev" in links(response):
        response = client.get(links(response)["prev"])
        assert response.status_code == 200
        pages.append(ids(response))
        assert len(pages) <= 7, "the prev links do not end"

    assert pages == [order[6:7], order[3:6], order[0:3]]


def test_following_links_keeps_a_search_with_reserved_characters(client, user):
    for n in range(3):
        create_task(client, user, f"#{n} 50% off & more? yes/no +1")
    create_task(client, user, "unrelated")

    response = listing(client, user, q="50% off & more? yes/no +1", limit="2")
    following = client.get(links(response)["next"])

    assert following.status_code == 200
    assert total(following) == 3
    assert len(following.json()) == 1


# --- search, as a property ------------------------------------------------------------------

SEARCH_ALPHABET = "aAbB%_\\"


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    texts=st.lists(
        st.tuples(st.text(SEARCH_ALPHABET + " ", min_size=1, max_size=6).filter(str.strip),
                  st.none() | st.text(SEARCH_ALPHABET + " ", max_size=6)),
        min_size=1,
        max_size=4,
    ),
    q=st.text(SEARCH_ALPHABET, min_size=1, max_size=3),
)
def test_q_finds_exactly_the_tasks_whose_title_or_description_contains_it(client, texts, q):
    user = str(uuid.uuid4())  # a new user per example: examples share the client
    tasks = [create_task(client, user, title, description=description) for title, description in texts]

    response = listing(client, user, q=q)

    def contains(text):
        return text is not None and q.lower() in text.lower()

    expected = {task["id"] for task in tasks if contains(task["title"]) or contains(task["description"])}
    assert set(ids(response)) == expected
    assert total(response) == len(expected)
