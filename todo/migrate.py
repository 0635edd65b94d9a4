"""Alembic, as the service runs it: `python -m todo.migrate` (or `make migrate`) from a deploy
pipeline, and the cold start of a process that finds its database behind (`todo.schema`).

Importing this module imports Alembic; `todo.schema` does so only when a change must be made.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from todo import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from todo.exceptions import SchemaNotReady
from todo.schema import BASELINE, HEAD, Step

# Beside the package, in the repository and in the Lambda package alike.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

logger = logging.getLogger("todo.migrate")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without alembic.ini (which the Lambda package does not ship).
    With a connection, migrations/env.py runs on it, inside its transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def apply(connection: Connection, step: Step) -> None:
    """Bring the database to HEAD, inside the caller's locked transaction."""
    config = alembic_config(connection)
    if step is Step.CREATE:
        # An empty database: the tables as the models declare them (tests prove that this is
        # the schema the migrations build), stamped as the latest revision.
        SQLModel.metadata.create_all(connection)
        command.stamp(config, HEAD)
        return
    if step is Step.ADOPT:
        # Tables that create_all made before there were migrations: the baseline's schema.
        logger.info("adopting a database without alembic_version as %s", BASELINE)
        command.stamp(config, BASELINE)
    command.upgrade(config, HEAD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m todo.migrate",
        description="Bring the database of DATABASE_URL to the schema this code needs, under the "
        "same lock as a cold start. Never downgrades.",
    )
    parser.add_argument(
        "--lock-timeout", type=float, default=10.0, help="seconds to wait for a lock (default 10)"
    )
    parser.add_argument(
        "--statement-timeout", type=float, default=0.0, help="seconds one statement may run (default 0: no limit)"
    )
    args = parser.parse_args(argv)

    from todo.database import ConnectionLost, Database, make_engine
    from todo.logs import configure_logging
    from todo.schema import prepare_schema
    from todo.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    database = Database(settings)
    try:
        with database.connection() as connection:
            revision = prepare_schema(
                connection,
                lambda: make_engine(settings, connection),
                migrate=True,
                lock_deadline=time.monotonic() + args.lock_timeout,
                statement_timeout_ms=int(args.statement_timeout * 1000),
            )
    except (SchemaNotReady, psycopg.OperationalError, ConnectionLost, OperationalError) as exc:
        # Unreachable, a lock not granted in time, or a schema this code does not know: nothing
        # was changed (the transaction rolled back), and the pipeline must stop.
        print(f"the database was not migrated: {exc}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"database schema at {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
