"""The fresh process of bench/vs_floor.py: what the first requests of a new process cost.

    python bench/first_request_child.py service     # DATABASE_URL: import handler, then the calls
    python bench/first_request_child.py floor       # FLOOR_DATABASE_URL: the floor app behind Mangum
    python bench/first_request_child.py snapstart   # the service as SnapStart runs it (see below)

`service` and `floor`: import, answer a first create (a cold start's first request), time one
psycopg connect made the way the service makes it, then the first use of each other endpoint,
then the same calls again, warm. Figures are process CPU in ms, one JSON line on stdout.

`snapstart`: AWS_LAMBDA_INITIALIZATION_TYPE=snap-start during the import (AWS's init phase),
with a stand-in for the runtime's `snapshot_restore_py` that keeps the hooks; then, as after a
restore, the after-restore hooks run, and the first requests follow. The process waits for a
line on stdin before running the after-restore hooks, before the first request after the
restore and after it, so that the parent can read the proxy's counts around that request
alone (a connection that a hook closed still sends its goodbye through the proxy).
"""

import os  # already loaded by the interpreter's start-up, as sys is
import sys
import time
import types

mode = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

restore_hooks: list = []
if mode == "snapstart":
    os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    runtime_hooks = types.ModuleType("snapshot_restore_py")
    runtime_hooks.register_after_restore = lambda hook, *a, **k: restore_hooks.append((hook, a, k))
    runtime_hooks.register_before_snapshot = lambda hook, *a, **k: None
    sys.modules["snapshot_restore_py"] = runtime_hooks

# The service's log lines are written, as in production, but not among the figures on stdout.
figures_out, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115
cpu_started = time.process_time()
if mode == "floor":
    from floor_app import create_floor_app
    from mangum import Mangum

    floor_url = os.environ["FLOOR_DATABASE_URL"]
    handler = Mangum(create_floor_app(floor_url), lifespan="off")
    connect_url = floor_url
else:
    import handler as service

    handler = service.handler
    connect_url = None
import_cpu_ms = (time.process_time() - cpu_started) * 1000

import json  # noqa: E402
import statistics  # noqa: E402
import uuid  # noqa: E402

from common import api_gateway_v2_event, lambda_context  # noqa: E402

WARM_REPEAT = 15


def call(method: str, path: str, body: object = None, status: int = 200) -> tuple[float, float, dict]:
    """(CPU ms, wall ms, answer) of one invocation."""
    event = api_gateway_v2_event(method, path, body)
    context = lambda_context()
    cpu, wall = time.process_time(), time.perf_counter()
    response = handler(event, context)
    cpu, wall = (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
    if response["statusCode"] != status:
        raise SystemExit(f"{method} {path}: expected {status}, got {response}")
    return cpu, wall, response


def create(user: str) -> tuple[float, float, str]:
    cpu, wall, response = call("POST", f"/api/{user}/tasks", {"title": "first", "description": "x"}, 201)
    return cpu, wall, json.loads(response["body"])["id"]


def other_endpoints(user: str, task: str) -> dict[str, tuple[float, float]]:
    """(CPU ms, wall ms) of list (one task), get, PUT, PATCH complete and delete, in that order."""
    path = f"/api/{user}/tasks/{task}"
    calls = {
        "list": ("GET", f"/api/{user}/tasks", None, 200),
        "get": ("GET", path, None, 200),
        "put": ("PUT", path, {"title": "renamed", "description": "y"}, 200),
        "patch": ("PATCH", f"{path}/complete", {"completed": True}, 200),
        "delete": ("DELETE", path, None, 204),
    }
    return {name: call(*arguments)[:2] for name, arguments in calls.items()}


def warm() -> dict[str, dict[str, float]]:
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(WARM_REPEAT):
        user = str(uuid.uuid4())
        cpu, wall, task = create(user)
        runs.setdefault("create", []).append((cpu, wall))
        for name, figures in other_endpoints(user, task).items():
            runs.setdefault(name, []).append(figures)
    return {
        name: {"cpu": statistics.median(f[0] for f in figures), "wall": statistics.median(f[1] for f in figures)}
        for name, figures in runs.items()
    }


def connect_cpu_ms() -> float:
    """CPU of one psycopg connect with the service's connection arguments (median of 3)."""
    import psycopg

    if connect_url is None:
        from todo.database import connect_arguments, connection_parameters

        url = ""
        parameters = connection_parameters(os.environ["DATABASE_URL"])
        arguments = {**parameters, **connect_arguments(service.app.state.database._settings, parameters.get("host"))}
    else:
        url, arguments = connect_url, {"autocommit": True, "prepare_threshold": None}
    figures = []
    for _ in range(3):
        started = time.process_time()
        psycopg.connect(url, **arguments).close()
        figures.append((time.process_time() - started) * 1000)
    return statistics.median(figures)


def emit(figures: dict) -> None:
    print(json.dumps(figures), file=figures_out, flush=True)


if mode == "snapstart":
    emit({"init_cpu_ms": import_cpu_ms})
    sys.stdin.readline()
    for hook, args, kwargs in restore_hooks:
        hook(*args, **kwargs)
    emit({"restore_hooks": len(restore_hooks)})
    sys.stdin.readline()
    user = str(uuid.uuid4())
    first_cpu, first_wall, task = create(user)
    emit({"first_cpu_ms": first_cpu, "first_wall_ms": first_wall})
    sys.stdin.readline()
    second_cpu, second_wall, _ = create(str(uuid.uuid4()))
    emit({"second_cpu_ms": second_cpu, "second_wall_ms": second_wall})
    sys.stdin.readline()
    first_use = other_endpoints(user, task)
    emit({"first_use": first_use, "warm": warm(), "connect_cpu_ms": connect_cpu_ms()})
else:
    user = str(uuid.uuid4())
    first_cpu, first_wall, task = create(user)
    first_use = other_endpoints(user, task)
    emit(
        {
            "import_cpu_ms": import_cpu_ms,
            "first_cpu_ms": first_cpu,
            "first_wall_ms": first_wall,
            "first_use": first_use,
            "warm": warm(),
            "connect_cpu_ms": connect_cpu_ms(),
        }
    )
