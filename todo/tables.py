"""The tables, as SQLAlchemy and Alembic see them.

Imported only where the schema itself is the subject: creating or migrating it (`todo.migrate`,
`migrations/env.py`) and the tests. Requests never need them (the statements are SQL text in
`todo.repository`, the schema check names the tables in `todo.schema`; tests hold both to
these classes), so a cold start does not pay for building them.
"""

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, Index, TypeDecorator
from sqlmodel import Field, SQLModel

from todo.models import (
    DESCRIPTION_MAX_LENGTH,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    TaskFields,
)

# Unicode White_Space, the characters the API trims from a title (pydantic's strip_whitespace
# is Rust's str::trim), as a PostgreSQL string for btrim(). The escapes need a UTF8 database.
_WHITE_SPACE_SQL = (
    r"E'\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    r"\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'"
)


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


class Task(TaskFields, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # Serves "one user's tasks, newest first" and every lookup by owner.
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        # A key names one task of its user. Tasks created without one hold NULL, and NULLs are
        # distinct in a unique index, so it needs no WHERE to leave them out.
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
