"""How Alembic reaches the database.

When the service migrates (at cold start, or `python -m todo.migrate`), it hands over its own
connection, already inside the transaction that holds the schema lock and its timeouts: every
pending revision then commits together, or none does. The `alembic` command (new revisions,
`alembic check`) connects with the service's settings and takes the same lock.
"""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

from todo import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_on(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    from todo.settings import get_settings

    context.configure(url=get_settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_from_the_command_line() -> None:
    from todo.database import make_engine
    from todo.schema import locked_transaction
    from todo.settings import get_settings

    engine = make_engine(get_settings())
    try:
        with locked_transaction(engine, lock_timeout_ms=10_000, statement_timeout_ms=0) as connection:
            run_on(connection)
    finally:
        engine.dispose()


if config.attributes.get("connection") is not None:
    run_on(config.attributes["connection"])
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    if context.is_offline_mode():
        run_offline()
    else:
        run_from_the_command_line()
