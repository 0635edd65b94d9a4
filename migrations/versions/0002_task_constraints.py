"""The limits of a task's fields, held by the database.

Revision ID: 0002_task_constraints
Revises: 0001_baseline
Create Date: 2026-12-02

Each constraint is added NOT VALID: from then on every new or changed row is checked, and no
existing row is read or touched. The rows that already break it are then counted and logged
with their ids, and the constraint is validated only when there are none. A constraint that
existing rows break stays NOT VALID: their data is never changed behind anyone's back. Repair
them (the log names them), then `ALTER TABLE tasks VALIDATE CONSTRAINT <name>`.
"""

import logging

import sqlalchemy as sa
from alembic import context, op

revision = "0002_task_constraints"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

logger = logging.getLogger("todo.migrations")

# The characters the API trims from a title: Unicode White_Space. The escapes need UTF8.
_WHITE_SPACE = (
    r"E'\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    r"\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'"
)
CONSTRAINTS = {
    "ck_tasks_title_length": "char_length(title) BETWEEN 1 AND 255",
    "ck_tasks_title_not_blank": f"btrim(title, {_WHITE_SPACE}) <> ''",
    "ck_tasks_description_length": "char_length(description) <= 10000",
    "ck_tasks_updated_not_before_created": "updated_at >= created_at",
}
# Ids named in one log line; the count is always complete.
_IDS_LOGGED = 100


def upgrade() -> None:
    for name, check in CONSTRAINTS.items():
        op.execute(f"ALTER TABLE tasks ADD CONSTRAINT {name} CHECK ({check}) NOT VALID")
    for name, check in CONSTRAINTS.items():
        if context.is_offline_mode():
            op.execute(f"ALTER TABLE tasks VALIDATE CONSTRAINT {name}")
            continue
        # A check that is NULL (no description) passes, as in the constraint itself.
        breaking = op.get_bind().execute(sa.text(f"SELECT id FROM tasks WHERE NOT ({check}) ORDER BY id")).scalars()
        ids = [str(task_id) for task_id in breaking]
        if not ids:
            op.execute(f"ALTER TABLE tasks VALIDATE CONSTRAINT {name}")
            continue
        logger.warning(
            "%d existing task(s) break %s (%s); the constraint is left NOT VALID and the rows unchanged: "
            "repair them, then ALTER TABLE tasks VALIDATE CONSTRAINT %s",
            len(ids),
            name,
            check,
            name,
            extra={"fields": {"constraint": name, "violating_rows": len(ids), "task_ids": ids[:_IDS_LOGGED]}},
        )


def downgrade() -> None:
    for name in CONSTRAINTS:
        op.drop_constraint(name, "tasks", type_="check")
