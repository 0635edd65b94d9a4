"""SQLAlchemy's psycopg dialect for schema changes, minus four round trips on a cold start.

On its first connection the stock dialect asks the server for its version, the current
schema, `standard_conforming_strings` and the default isolation level: four queries, each a
round trip that a Lambda cold start pays. The server already sent the first and third while
the connection started up, and the other two change nothing for this service.

Loaded by name (see `todo.database.make_engine`) so that importing the app stays free of the
PostgreSQL dialect until the first request needs it.
"""

from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg


class PsycopgStartupFactsDialect(PGDialect_psycopg):
    # Compiles exactly as its parent, so SQLAlchemy may cache the compiled statements.
    supports_statement_cache = True

    def _get_server_version_info(self, connection):
        number = connection.connection.dbapi_connection.info.server_version  # e.g. 150019
        return (number // 10000, number % 10000)

    def _get_default_schema_name(self, connection):
        # Used only to reflect tables; creating ours works from the search path either way.
        return "public"

    def _set_backslash_escapes(self, connection):
        info = connection.connection.dbapi_connection.info
        self._backslash_escapes = info.parameter_status("standard_conforming_strings") == "off"

    def on_connect(self):
        # The stock hook also adds a handler for server notices to every connection it is
        # given. A cold start's schema change borrows the pool's connection, through a new
        # engine per attempt, so each attempt would add one more. Notices are logged at INFO,
        # which the service does not output for SQLAlchemy anyway.
        if self.isolation_level is None:
            return None

        def set_isolation_level(dbapi_connection):
            self.set_isolation_level(dbapi_connection, self.isolation_level)

        return set_isolation_level

    def get_default_isolation_level(self, dbapi_conn):
        # PostgreSQL's default. The engine runs in autocommit, and the one transaction this
        # service opens (creating the tables) names its level.
        return "READ COMMITTED"
