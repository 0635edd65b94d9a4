"""What can go wrong, in the service's words. Nothing here knows HTTP: `todo.errors` maps each
of these to a problem document, in one place."""


class TaskNotFound(Exception):
    """No task with this id belongs to this user (whether or not another user has one)."""


class DatabaseUnavailable(Exception):
    """The database could not be reached, or did not answer in time."""


class SchemaNotReady(DatabaseUnavailable):
    """The database's schema is not one this code can serve (yet): a 503, like an outage."""


class IdempotencyKeyReused(Exception):
    """A create's Idempotency-Key names a task of this user with another title or description."""


class MissingToken(Exception):
    """Authentication is on and the request carries no bearer token."""


class InvalidToken(Exception):
    """The bearer token does not prove anything; the message says why, never quoting it."""


class NotTheTokensUser(Exception):
    """A valid token whose subject is not the user of the path."""


class KeySetUnavailable(Exception):
    """The token issuer's key set could not be fetched, or is not a usable JWKS."""


class StoredTaskBreaksRule(Exception):
    """The database refused a change because the stored task breaks a rule on its fields: a row
    written before the rule existed, which the migration left as it was. `field` names the
    field (None when the rule is not about one the client can send)."""

    def __init__(self, field: str | None):
        super().__init__(field)
        self.field = field
