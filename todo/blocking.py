"""Where blocking work (the database) runs.

Under uvicorn one event loop serves many requests, so a blocking call goes to a worker
thread. A Lambda container serves one request at a time: there a thread hop only adds
latency (and anyio starts a new worker thread for every invocation, since each invocation is
a new task), so the Lambda adapter asks for blocking calls to run inline.
"""

from collections.abc import Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from anyio import to_thread

Params = ParamSpec("Params")
Result = TypeVar("Result")

run_inline: ContextVar[bool] = ContextVar("run_inline", default=False)


async def run_blocking(function: Callable[Params, Result], *args: Params.args, **kwargs: Params.kwargs) -> Result:
    if run_inline.get():
        return function(*args, **kwargs)
    return await to_thread.run_sync(lambda: function(*args, **kwargs))
