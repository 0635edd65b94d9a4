"""Structured logging: one JSON object per line, carrying the id of the request it belongs to."""

import json
import logging
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str)
        # Members already written as JSON text (the metrics of todo/metrics.py) join the object.
        if json_members := getattr(record, "json_members", None):
            line = f"{line[:-1]}, {json_members}}}"
        return line


def configure_logging(level: str) -> None:
    """Send the service's logs to stdout (CloudWatch on Lambda) as JSON lines."""
    logger = logging.getLogger("todo")
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Lambda's runtime puts its own handler on the root logger: one line per event is enough.
    logger.propagate = False
