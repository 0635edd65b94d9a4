"""The rules of the service, in the domain's words: who owns what, what a change does to a
task, and which work is safe to run again after a lost connection."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from todo import repository
from todo.database import Database
from todo.exceptions import IdempotencyKeyReused, TaskNotFound
from todo.models import TaskFilter, TaskPage, TaskPublic, TaskWrite


def _now() -> datetime:
    return datetime.now(UTC)


class TaskService:
    def __init__(self, database: Database):
        self._database = database

    def create(self, owner: UUID, draft: TaskWrite, idempotency_key: str | None = None) -> TaskPublic:
        """A new task; with an idempotency key, the owner's task made with that key if there is
        one and it has the same title and description (else IdempotencyKeyReused)."""
        now = _now()
        # The id is chosen here, not by the database, so that a retried insert is the same insert.
        task = TaskPublic(
            id=uuid4(),
            user_id=owner,
            title=draft.title,
            description=draft.description,
            completed=False,
            created_at=now,
            updated_at=now,
        )
        stored = self._database.run(
            lambda s: repository.insert_task(s, task=task, idempotency_key=idempotency_key),
            retry_on_disconnect=True,
        )
        if (stored.title, stored.description) != (draft.title, draft.description):
            # Only a key can find a task made by another request.
            raise IdempotencyKeyReused()
        return stored

    def list(self, owner: UUID, task_filter: TaskFilter) -> TaskPage:
        return self._database.run(
            lambda s: repository.list_tasks(s, owner=owner, task_filter=task_filter), retry_on_disconnect=True
        )

    def get(self, owner: UUID, task_id: UUID) -> TaskPublic:
        return _found(
            self._database.run(
                lambda s: repository.get_task(s, owner=owner, task_id=task_id), retry_on_disconnect=True
            )
        )

    def replace(self, owner: UUID, task_id: UUID, draft: TaskWrite) -> TaskPublic:
        """PUT: title and description become exactly what was sent; `completed` stays."""
        now = _now()
        return _found(
            self._database.run(
                lambda s: repository.replace_task(
                    s, owner=owner, task_id=task_id, title=draft.title, description=draft.description, now=now
                ),
                # Absolute values: running it twice leaves the same title and description
                # (updated_at moves on by a microsecond at most).
                retry_on_disconnect=True,
            )
        )

    def set_completed(self, owner: UUID, task_id: UUID, completed: bool) -> TaskPublic:
        now = _now()
        return _found(
            self._database.run(
                lambda s: repository.set_completed(s, owner=owner, task_id=task_id, completed=completed, now=now),
                retry_on_disconnect=True,
            )
        )

    def delete(self, owner: UUID, task_id: UUID) -> None:
        # Not retried: had the first attempt deleted the task, the second would answer 404.
        deleted = self._database.run(
            lambda s: repository.delete_task(s, owner=owner, task_id=task_id), retry_on_disconnect=False
        )
        if not deleted:
            raise TaskNotFound()

    def check_database(self) -> None:
        self._database.run(repository.ping, retry_on_disconnect=True)


def _found(task: TaskPublic | None) -> TaskPublic:
    if task is None:
        raise TaskNotFound()
    return task
