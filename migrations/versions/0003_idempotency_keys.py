"""Idempotency keys: a create sent again with the same key finds the task it made.

Revision ID: 0003_idempotency_keys
Revises: 0002_task_constraints
Create Date: 2026-12-02

A nullable column (the code before this revision never writes it) and a unique index on
(user_id, idempotency_key): tasks without a key hold NULL, and NULLs never collide in it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_idempotency_keys"
down_revision = "0002_task_constraints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.create_index("ix_tasks_user_id_idempotency_key", "tasks", ["user_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tasks_user_id_idempotency_key", table_name="tasks")
    op.drop_column("tasks", "idempotency_key")
