"""Tables, and the shapes of what the API reads and writes.

One place per constraint: the limits of a task's fields live in `TaskFields`, which the
table and the request bodies share.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, StrictBool, StringConstraints
from sqlalchemy import CheckConstraint, DateTime, Index, Text, TypeDecorator
from sqlmodel import Field, SQLModel

TITLE_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 10_000
IDEMPOTENCY_KEY_MAX_LENGTH = 255

# Unicode White_Space, the characters the API trims from a title (pydantic's strip_whitespace
# is Rust's str::trim), as a PostgreSQL string for btrim(). The escapes need a UTF8 database.
_WHITE_SPACE_SQL = (
    r"E'\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    r"\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'"
)

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
    __table_args__ = (
        # Serves "one user's tasks, newest first" and every lookup by owner.
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        # A key names one task of its user. Tasks created without one hold NULL, and NULLs are
        # distinct in a unique index. (Not a partial index: its postgresql_where would make
        # importing the models import the PostgreSQL dialect, a cost on every cold start.)
        Index("ix_tasks_user_id_idempotency_key", "user_id", "idempotency_key", unique=True),
        # The API's limits, held by the database too, against every other writer. The
        # migrations declare the same constraints (tests compare both schemas).
        CheckConstraint(f"char_length(title) BETWEEN 1 AND {TITLE_MAX_LENGTH}", name="ck_tasks_title_length"),
        CheckConstraint(f"btrim(title, {_WHITE_SPACE_SQL}) <> ''", name="ck_tasks_title_not_blank"),
        CheckConstraint(
            f"char_length(description) <= {DESCRIPTION_MAX_LENGTH}", name="ck_tasks_description_length"
        ),
        CheckConstraint("updated_at >= created_at", name="ck_tasks_updated_not_before_created"),
    )

    id: UUID = Field(primary_key=True)
    user_id: UUID = Field(foreign_key="users.user_id")
    completed: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # The client's Idempotency-Key of the create that made the task; never shown in answers.
    idempotency_key: str | None = Field(default=None, max_length=IDEMPOTENCY_KEY_MAX_LENGTH)


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
