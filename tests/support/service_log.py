"""Reading what the service logs: it writes JSON lines to a stream handler on the "todo"
logger (which does not propagate, so pytest's caplog never sees them)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def service_log() -> Iterator[Callable[[], str]]:
    """Send the service's log lines to memory for the duration; yield a reader of them."""
    captured = io.StringIO()
    handlers = [h for h in logging.getLogger("todo").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "the service's logger has no stream handler"
    previous = [handler.setStream(captured) for handler in handlers]
    try:
        yield captured.getvalue
    finally:
        for handler, stream in zip(handlers, previous):
            handler.setStream(stream)
