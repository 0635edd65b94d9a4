"""The shapes of what the API reads and writes.

One place per constraint: the limits of a task's fields live in `TaskFields`, which the
table (`todo.tables`) and the request bodies share.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, StrictBool, StringConstraints
from sqlalchemy import Text
from sqlmodel import Field, SQLModel

TITLE_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000
IDEMPOTENCY_KEY_MAX_LENGTH = 255

# PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
Title = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    AfterValidator(storable_text),
]
Description = Annotated[
    str, StringConstraints(strict=True, max_length=DESCRIPTION_MAX_LENGTH), AfterValidator(storable_text)
]


class TaskFields(SQLModel):
    title: str = Field(max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH, sa_type=Text)


class TaskWrite(SQLModel):
    """The body of a create (POST) and of a replace (PUT)."""

    title: Title
    description: Description | None = None


class TaskCompletion(SQLModel):
    completed: StrictBool


class TaskPublic(TaskFields):
    id: UUID
    user_id: UUID
    completed: bool
    created_at: datetime
    updated_at: datetime


SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]


@dataclass(frozen=True)
class TaskFilter:
    """What a listing asks for: which of the owner's tasks, in which order, which page."""

    completed: bool | None = None
    search: str | None = None
    sort: SortKey = "-created_at"
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class TaskPage:
    """One page of a listing, and how many tasks match in all."""

    tasks: list[TaskPublic]
    total: int
