"""Clients generated from /openapi.json, as front-end developers make them, work against the
live service: uvicorn serving `handler:app` on this run's PostgreSQL database.

- TypeScript: openapi-typescript (pinned in package.json) writes the types, `tsc` type-checks
  a program that calls all six task operations by their operationIds
  (support/typescript_client/calls.ts), and node runs it.
- Python: openapi-python-client (pinned in requirements-test.txt) writes a package, and the
  whole CRUD flow runs through it, problem documents included.

Each client is generated once per session, from the document the live server serves.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from support.npm import npm_tool
from support.processes import free_port, stop, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
TYPESCRIPT_PROGRAM = Path(__file__).parent / "support" / "typescript_client" / "calls.ts"
PYTHON_PACKAGE = "todo_api_client"
STARTUP_TIMEOUT_S = 60
TOOL_TIMEOUT_S = 300

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2022",
        "module": "commonjs",
        # fetch and console come from the DOM's declarations, which Node 20 implements.
        "lib": ["es2022", "dom"],
        "types": [],
        "outDir": "out",
        "noEmitOnError": True,
    },
    "files": ["calls.ts"],
}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def live_url(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn serving handler:app, as `make run` does, on this run's database."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    env = dict(os.environ, DATABASE_URL=postgres_url, DOCS_ENABLED="true")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "handler:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base_url, name="uvicorn", log_path=log_path, timeout_s=STARTUP_TIMEOUT_S)
        yield base_url
    finally:
        stop(server)


@pytest.fixture(scope="module")
def openapi_document(live_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    response = httpx.get(live_url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_bytes(response.content)
    return path


@pytest.fixture(scope="module")
def typescript_program(openapi_document: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """calls.ts compiled by tsc against the types generated from the live document."""
    work = tmp_path_factory.mktemp("typescript")
    _run([str(npm_tool("openapi-typescript")), str(openapi_document), "--output", "api.d.ts"], cwd=work)
    shutil.copy(TYPESCRIPT_PROGRAM, work / "calls.ts")
    (work / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    _run([str(npm_tool("tsc")), "--project", "."], cwd=work)
    return work / "out" / "calls.js"


@pytest.fixture(scope="module")
def python_client(openapi_document: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates, imported."""
    work = tmp_path_factory.mktemp("python-client")
    # No post hooks: they would format the code with ruff, which changes nothing it does.
    (work / "config.yml").write_text("post_hooks: []\n")
    _run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(openapi_document),
         "--config", "config.yml", "--meta", "none", "--output-path", PYTHON_PACKAGE],
        cwd=work,
    )
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PYTHON_PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [name for name in sys.modules if name.partition(".")[0] == PYTHON_PACKAGE]:
            del sys.modules[name]


def test_a_typescript_program_typed_by_openapi_typescript_runs_every_operation(
    typescript_program: Path, live_url: str
) -> None:
    user = str(uuid.uuid4())

    result = subprocess.run(
        ["node", str(typescript_program), live_url, user],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
    )

    assert result.returncode == 0, f"the program stopped:\n{result.stdout}\n{result.stderr}"
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    task = seen["task"]
    assert task["user_id"] == user and task["title"] == "Buy milk"
    assert [listed["id"] for listed in seen["page"]] == [task["id"]]
    assert seen["replaced"]["description"] is None and seen["done"]["completed"] is True
    assert seen["gone"]["status"] == 404 and seen["refused"]["status"] == 400
    assert seen["health"] == {"status": "ok"}
    # What the program saw is what the service holds: the task is gone, the other one stays.
    remaining = httpx.get(f"{live_url}/api/{user}/tasks", timeout=10).json()
    assert [listed["title"] for listed in remaining] == ["Walk the dog"]


def test_a_python_client_made_by_openapi_python_client_runs_the_crud_flow(
    python_client: ModuleType, live_url: str
) -> None:
    from todo_api_client.api.health import health
    from todo_api_client.api.tasks import (
        complete_task,
        create_task,
        delete_task,
        get_task,
        list_tasks,
        replace_task,
    )
    from todo_api_client.models import Health, ListTasksSort, Problem, TaskCompletion, TaskPublic, TaskWrite

    user = uuid.uuid4()
    with python_client.Client(base_url=live_url, raise_on_unexpected_status=True) as client:
        assert isinstance(health.sync(client=client), Health)

        created = create_task.sync_detailed(user, client=client, body=TaskWrite(title=" Buy milk ", description="2 l"))
        assert created.status_code == 201
        task = created.parsed
        assert isinstance(task, TaskPublic)
        assert (task.title, task.description, task.completed, task.user_id) == ("Buy milk", "2 l", False, user)
        assert created.headers["location"] == f"/api/{user}/tasks/{task.id}"
        create_task.sync(user, client=client, body=TaskWrite(title="Walk the dog"))

        listed = list_tasks.sync_detailed(user, client=client, sort=ListTasksSort("title"), limit=1)
        assert [found.id for found in listed.parsed] == [task.id]
        assert listed.headers["x-total-count"] == "2"
        assert get_task.sync(user, task.id, client=client).to_dict() == task.to_dict()

        replaced = replace_task.sync(user, task.id, client=client, body=TaskWrite(title="Buy oat milk"))
        assert (replaced.title, replaced.description, replaced.completed) == ("Buy oat milk", None, False)
        assert replaced.updated_at > task.updated_at
        done = complete_task.sync(user, task.id, client=client, body=TaskCompletion(completed=True))
        assert done.completed is True and done.title == "Buy oat milk"

        assert delete_task.sync_detailed(user, task.id, client=client).status_code == 204
        gone = get_task.sync(user, task.id, client=client)
        assert isinstance(gone, Problem) and gone.status == 404 and gone.detail
        not_mine = get_task.sync(uuid.uuid4(), task.id, client=client)
        assert isinstance(not_mine, Problem) and not_mine.status == 404

        refused = create_task.sync(user, client=client, body=TaskWrite(title="   "))
        assert isinstance(refused, Problem) and refused.status == 400
        assert [error.loc for error in refused.errors] == [["body", "title"]]
        assert [found.title for found in list_tasks.sync(user, client=client)] == ["Walk the dog"]
