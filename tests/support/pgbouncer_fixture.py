"""Fixtures for a PgBouncer in transaction mode in front of the run's PostgreSQL server,
started once per run (see ``support/pgbouncer.py``).

- ``pgbouncer_url``: the run's database (``postgres_url``) through PgBouncer.
- ``via_pgbouncer``: maps the URL of any database on the same server to that database
  through the same PgBouncer (it serves every database name).

Load them with ``pytest_plugins = ["support.pgbouncer_fixture"]`` (in the root conftest, or
in a test module that needs them). Where the ``pgbouncer`` binary is absent it is installed
(root with apt-get); where it cannot be, every test that uses them fails with the command
to run. None is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import URL, make_url

from support.pgbouncer import PgBouncerError, ensure_pgbouncer, pgbouncer


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """A postgresql+psycopg:// URL of the run's database, through PgBouncer (pool_mode = transaction)."""
    try:
        ensure_pgbouncer()
    except PgBouncerError as missing:
        pytest.fail(str(missing), pytrace=False)
    with pgbouncer(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def via_pgbouncer(pgbouncer_url: str) -> Callable[[str | URL], str]:
    """url -> the same database, user and password, through the run's PgBouncer."""
    bouncer = make_url(pgbouncer_url)

    def via(url: str | URL) -> str:
        url = make_url(url) if isinstance(url, str) else url
        return url.set(host=bouncer.host, port=bouncer.port).render_as_string(hide_password=False)

    return via
