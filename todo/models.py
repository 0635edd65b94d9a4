"""Tables, and the shapes of what the API reads and writes.

One place per constraint: the limits of a task's fields live in `TaskFields`, which the
table and the request bodies share.
"""

import re
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, StrictBool, StringConstraints
from sqlalchemy import DateTime, Index, Text, TypeDecorator
from sqlmodel import Field, SQLModel

TITLE_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000

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


class UTCDateTime(TypeDecorator):
    """A timestamp that always comes back timezone-aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: UUID = Field(primary_key=True)
    user_id: UUID = Field(unique=True)


class TaskFields(SQLModel):
    title: str = Field(max_length=TITLE_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH, sa_type=Text)


class Task(TaskFields, table=True):
    __tablename__ = "tasks"
    # Serves "one user's tasks, newest first" and every lookup by owner.
    __table_args__ = (Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),)

    id: UUID = Field(primary_key=True)
    user_id: UUID = Field(foreign_key="users.user_id")
    completed: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


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
