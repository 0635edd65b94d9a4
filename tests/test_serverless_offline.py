"""End to end through serverless-offline: `osls offline` on the real serverless.yml, the Python
handler run by this test's interpreter, a fresh PostgreSQL database, and the API driven over HTTP.

serverless-offline runs a Python handler with `python3` from PATH (after $VIRTUAL_ENV/bin when
that is set), so the server gets a PATH that starts with this interpreter. The npm packages are
installed with `npm ci` when node_modules lacks them (``support/npm.py``). Select these tests alone with
`pytest -m offline`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.npm import npm_tool
from support.processes import free_port, wait_until_healthy

# One worker runs it under pytest-xdist, beside tests/test_package.py: osls offline serves the zip
# that the session's package build makes (package.artifact), and one osls offline is enough.
pytestmark = [pytest.mark.offline, pytest.mark.xdist_group("lambda-package")]
pytest_plugins = ["support.lambda_package_fixture"]

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 120
PROBLEM = "application/problem+json"


def _python_first_on_path(bin_dir: Path) -> str:
    """A PATH whose `python3` and `python` are this interpreter, with its directory next."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        wrapper = bin_dir / name
        # exec, not a symlink: a virtual environment's python finds its pyvenv.cfg by its own path.
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
    return os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _stop(process: subprocess.Popen) -> None:
    """Stop osls, the Python handler processes it spawned, and anything else in their group."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; make sure no child of it survived the SIGTERM
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


@pytest.fixture(scope="module")
def offline_url(lambda_package, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    osls = npm_tool("osls")
    work = tmp_path_factory.mktemp("offline")
    http_port, lambda_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=postgres_url,
        PATH=_python_first_on_path(work / "bin"),
        LOG_LEVEL="INFO",
    )
    # serverless-offline would put $VIRTUAL_ENV/bin before PATH: keep whatever venv the shell had
    # activated from taking over from this interpreter.
    env.pop("VIRTUAL_ENV", None)
    log_path = work / "osls-offline.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(osls), "offline", "--host", "127.0.0.1",
             "--httpPort", str(http_port), "--lambdaPort", str(lambda_port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that _stop reaches every child
        )
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        # The first answer also proves the Python handler started and reached PostgreSQL.
        wait_until_healthy(
            process, base_url, name="osls offline", log_path=log_path, timeout_s=STARTUP_TIMEOUT_S,
            poll_s=0.5, request_timeout_s=30,
        )
        yield base_url
    finally:
        _stop(process)


@pytest.fixture
def api(offline_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=offline_url, timeout=30) as client:
        yield client


def _user() -> str:
    return str(uuid.uuid4())


def _create(api: httpx.Client, user: str, title: str, description: str | None = None) -> dict:
    response = api.post(f"/api/{user}/tasks", json={"title": title, "description": description})
    assert response.status_code == 201, response.text
    return response.json()


def _assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


def test_health(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_task_lifecycle(api: httpx.Client) -> None:
    user = _user()
    created = api.post(f"/api/{user}/tasks", json={"title": "  Buy milk  ", "description": "2 litres"})
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres"
    assert task["completed"] is False
    assert task["user_id"] == user
    assert task["created_at"] == task["updated_at"]
    location = f"/api/{user}/tasks/{task['id']}"
    assert created.headers["location"].endswith(location)

    fetched = api.get(location)
    assert fetched.status_code == 200
    assert fetched.json() == task

    # PUT replaces title and description; a description left out becomes null.
    updated = api.put(location, json={"title": "Buy oat milk"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["title"] == "Buy oat milk"
    assert updated.json()["description"] is None
    assert updated.json()["completed"] is False
    assert updated.json()["updated_at"] > task["updated_at"]

    completed = api.patch(location + "/complete", json={"completed": True})
    assert completed.status_code == 200, completed.text
    assert completed.json()["completed"] is True
    assert api.get(location).json()["completed"] is True

    reopened = api.patch(location + "/complete", json={"completed": False})
    assert reopened.status_code == 200 and reopened.json()["completed"] is False

    deleted = api.delete(location)
    assert deleted.status_code == 204
    assert deleted.content == b""
    _assert_problem(api.get(location), 404)
    _assert_problem(api.delete(location), 404)


def test_list_with_paging(api: httpx.Client) -> None:
    user = _user()
    titles = [f"task {n}" for n in range(5)]
    for title in titles:
        _create(api, user, title)

    everything = api.get(f"/api/{user}/tasks")
    assert everything.status_code == 200
    assert [t["title"] for t in everything.json()] == titles[::-1]  # newest first
    assert everything.headers["x-total-count"] == "5"

    first = api.get(f"/api/{user}/tasks", params={"limit": 2})
    assert [t["title"] for t in first.json()] == ["task 4", "task 3"]
    assert first.headers["x-total-count"] == "5"
    assert "next" in first.links and "prev" not in first.links

    # Follow the Link header as a client would, to the end.
    seen = [t["title"] for t in first.json()]
    response = first
    while "next" in response.links:
        response = api.get(response.links["next"]["url"])
        assert response.status_code == 200
        assert response.headers["x-total-count"] == "5"
        assert "prev" in response.links
        seen += [t["title"] for t in response.json()]
    assert seen == titles[::-1]

    middle = api.get(f"/api/{user}/tasks", params={"limit": 2, "offset": 2, "sort": "title"})
    assert [t["title"] for t in middle.json()] == ["task 2", "task 3"]
    assert {"next", "prev"} <= middle.links.keys()

    done = api.get(f"/api/{user}/tasks", params={"completed": "true"})
    assert done.status_code == 200 and done.json() == []
    assert done.headers["x-total-count"] == "0"


def test_another_users_task_is_not_found(api: httpx.Client) -> None:
    owner, stranger = _user(), _user()
    task = _create(api, owner, "mine")
    theirs = f"/api/{stranger}/tasks/{task['id']}"
    _assert_problem(api.get(theirs), 404)
    _assert_problem(api.put(theirs, json={"title": "stolen"}), 404)
    _assert_problem(api.patch(theirs + "/complete", json={"completed": True}), 404)
    _assert_problem(api.delete(theirs), 404)
    listed = api.get(f"/api/{stranger}/tasks")
    assert listed.status_code == 200 and listed.json() == []
    # and the owner's task is untouched
    assert api.get(f"/api/{owner}/tasks/{task['id']}").json() == task


def test_bad_input_is_a_400_problem_document(api: httpx.Client) -> None:
    user = _user()
    problem = _assert_problem(api.post(f"/api/{user}/tasks", json={"title": ""}), 400)
    assert problem["errors"] and all({"loc", "msg", "type"} <= e.keys() for e in problem["errors"])

    malformed = api.post(
        f"/api/{user}/tasks", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    _assert_problem(malformed, 400)
    _assert_problem(api.get("/api/not-a-uuid/tasks"), 400)
    _assert_problem(api.get(f"/api/{user}/tasks", params={"limit": 0}), 400)
    task = _create(api, user, "t")
    _assert_problem(api.patch(f"/api/{user}/tasks/{task['id']}/complete", json={"completed": "yes"}), 400)
    assert api.get(f"/api/{user}/tasks").headers["x-total-count"] == "1"
