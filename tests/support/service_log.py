"""Reading what the service logs: it writes JSON lines through its own stream handler on the
"todo" logger. (pytest attaches its capture handlers, StreamHandlers too, to that logger as
well, since it does not propagate: the service's handler is the one with its JSON format.)"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def service_log() -> Iterator[Callable[[], str]]:
    """Send the service's log lines to memory for the duration; yield a reader of them."""
    from todo.logs import JsonFormatter

    captured = io.StringIO()
    handlers = [h for h in logging.getLogger("todo").handlers if isinstance(h.formatter, JsonFormatter)]
    assert handlers, "the service's logger has no JSON handler: no app was made yet"
    previous = [handler.setStream(captured) for handler in handlers]
    try:
        yield captured.getvalue
    finally:
        for handler, stream in zip(handlers, previous):
            handler.setStream(stream)
