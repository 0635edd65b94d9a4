"""Isolation as a property: random sequences of operations by several users, on PostgreSQL,
checked after every step against an in-memory model of what each user owns.

After every step, for every user:
- the list holds exactly the model's tasks of that user (ids, titles, descriptions,
  completed), and X-Total-Count says how many;
- every task of every other user answers 404 under this user's id on GET, PUT, PATCH and
  DELETE (and, since the lists still match the model afterwards, none of those changed it).

It runs twice: trusting the path's user id, and with authentication on, where every request
carries a bearer token of the path's user, and where a user's token never opens another
user's path (403 on the list and on every task of that user, changing nothing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from support.api import assert_task_shape, complete_url, task_url, tasks_url
from support.asgi_client import InProcessClient
from support.tokens import SECRET, bearer, claims, hs256

USERS = 3

# Titles without white space at either end, so the model needs no copy of the trimming rule
# (test_hostile_input covers trimming); inside, anything storable, spaces included.
_word = st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=12)
titles = st.lists(_word, min_size=1, max_size=4).map(" ".join).filter(lambda title: len(title) <= 255)
# A description is stored as sent: any storable text (no NUL, no lone surrogate), or null.
descriptions = st.none() | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=60)


@dataclass
class ModelTask:
    owner: str
    title: str
    description: str | None
    completed: bool = False


class TokenCarryingClient:
    """A client whose every request carries a bearer token of the user in its path, or of
    `as_user` when given."""

    def __init__(self, client: httpx.Client):
        self._client = client

    def request(self, method: str, url: str, *, as_user: str | None = None, **kwargs):
        user = as_user or url.split("/")[2]
        headers = {**kwargs.pop("headers", {}), **bearer(hs256(claims(user, issuer=None, audience=None)))}
        return self._client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs):
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs):
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs):
        return self.request("DELETE", url, **kwargs)


@pytest.fixture(scope="module", params=["trusting the path", "with tokens"])
def isolation_client(request, postgres_url: str):
    from todo.app import create_app
    from todo.settings import Settings

    with_tokens = request.param == "with tokens"
    app = create_app(Settings(database_url=postgres_url, auth_jwt_secret=SECRET if with_tokens else None))
    with InProcessClient(app) as client:
        yield TokenCarryingClient(client) if with_tokens else client
    app.state.database.dispose()


class UsersAndTasks(RuleBasedStateMachine):
    client: httpx.Client  # set by the test below

    @initialize()
    def new_users(self) -> None:
        # New ids for every example: what earlier examples left in the database is another
        # user's data, and must stay invisible too.
        self.users = [str(uuid.uuid4()) for _ in range(USERS)]
        self.tasks: dict[str, ModelTask] = {}
        self.deleted: set[str] = set()

    # --- helpers ---------------------------------------------------------------------------

    def _owned_by(self, user: str) -> dict[str, ModelTask]:
        return {task_id: task for task_id, task in self.tasks.items() if task.owner == user}

    def _assert_matches(self, body: dict, task_id: str, task: ModelTask) -> None:
        assert_task_shape(body)
        assert body["id"] == task_id
        assert body["user_id"] == task.owner
        assert (body["title"], body["description"], body["completed"]) == (task.title, task.description, task.completed)

    def _pick_task(self, data) -> tuple[str, ModelTask]:
        task_id = data.draw(st.sampled_from(sorted(self.tasks)), label="task")
        return task_id, self.tasks[task_id]

    # --- the operations, each by the owner -------------------------------------------------

    @rule(data=st.data(), title=titles, description=descriptions)
    def create(self, data, title: str, description: str | None) -> None:
        user = data.draw(st.sampled_from(self.users), label="user")
        body = {"title": title} if description is None and data.draw(st.booleans(), label="omit") else {
            "title": title,
            "description": description,
        }
        response = self.client.post(tasks_url(user), json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        task = ModelTask(owner=user, title=title, description=description)
        self._assert_matches(created, created["id"], task)
        assert created["id"] not in self.tasks and created["id"] not in self.deleted
        self.tasks[created["id"]] = task

    @rule(data=st.data(), title=titles, description=descriptions)
    def replace(self, data, title: str, description: str | None) -> None:
        if not self.tasks:
            return
        task_id, task = self._pick_task(data)
        response = self.client.put(task_url(task.owner, task_id), json={"title": title, "description": description})
        assert response.status_code == 200, response.text
        task.title, task.description = title, description
        self._assert_matches(response.json(), task_id, task)

    @rule(data=st.data(), completed=st.booleans())
    def complete(self, data, completed: bool) -> None:
        if not self.tasks:
            return
        task_id, task = self._pick_task(data)
        response = self.client.patch(complete_url(task.owner, task_id), json={"completed": completed})
        assert response.status_code == 200, response.text
        task.completed = completed
        self._assert_matches(response.json(), task_id, task)

    @rule(data=st.data())
    def get(self, data) -> None:
        if not self.tasks:
            return
        task_id, task = self._pick_task(data)
        response = self.client.get(task_url(task.owner, task_id))
        assert response.status_code == 200, response.text
        self._assert_matches(response.json(), task_id, task)

    @rule(data=st.data())
    def delete(self, data) -> None:
        if not self.tasks:
            return
        task_id, task = self._pick_task(data)
        response = self.client.delete(task_url(task.owner, task_id))
        assert response.status_code == 204, response.text
        assert response.content == b""
        del self.tasks[task_id]
        self.deleted.add(task_id)

    @rule(data=st.data())
    def a_deleted_task_is_gone_for_everyone(self, data) -> None:
        if not self.deleted:
            return
        task_id = data.draw(st.sampled_from(sorted(self.deleted)), label="deleted task")
        user = data.draw(st.sampled_from(self.users), label="user")
        self._assert_absent(user, task_id)

    @rule(data=st.data())
    def a_token_never_opens_another_users_path(self, data) -> None:
        if not isinstance(self.client, TokenCarryingClient) or not self.tasks:
            return
        task_id, task = self._pick_task(data)
        intruder = data.draw(st.sampled_from([user for user in self.users if user != task.owner]), label="intruder")
        url = task_url(task.owner, task_id)
        answers = [
            self.client.get(tasks_url(task.owner), as_user=intruder),
            self.client.get(url, as_user=intruder),
            self.client.put(url, as_user=intruder, json={"title": "taken over"}),
            self.client.patch(complete_url(task.owner, task_id), as_user=intruder, json={"completed": True}),
            self.client.delete(url, as_user=intruder),
        ]
        # Refused before anything is read or written: the invariants find every list unchanged.
        assert [answer.status_code for answer in answers] == [403] * 5

    # --- after every step ------------------------------------------------------------------

    def _assert_absent(self, user: str, task_id: str) -> None:
        """Under `user`, `task_id` answers 404 everywhere, as if it did not exist."""
        url = task_url(user, task_id)
        answers = [
            self.client.get(url),
            self.client.put(url, json={"title": "taken over", "description": "by another user"}),
            self.client.patch(complete_url(user, task_id), json={"completed": True}),
            self.client.delete(url),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.method, answer.text)

    @invariant()
    def each_user_sees_exactly_their_own_tasks(self) -> None:
        for user in getattr(self, "users", []):
            response = self.client.get(tasks_url(user), params={"limit": 100})
            assert response.status_code == 200, response.text
            listed = response.json()
            owned = self._owned_by(user)
            assert response.headers["X-Total-Count"] == str(len(owned))
            assert sorted(task["id"] for task in listed) == sorted(owned), "a list differs from the model"
            for body in listed:
                self._assert_matches(body, body["id"], owned[body["id"]])

    @invariant()
    def another_users_task_answers_404(self) -> None:
        for user in getattr(self, "users", []):
            for task_id, task in self.tasks.items():
                if task.owner != user:
                    self._assert_absent(user, task_id)


def test_users_only_ever_see_and_change_their_own_tasks(isolation_client) -> None:
    UsersAndTasks.client = isolation_client
    test_case = UsersAndTasks.TestCase
    test_case.settings = settings(
        max_examples=15,
        stateful_step_count=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    test_case().runTest()
