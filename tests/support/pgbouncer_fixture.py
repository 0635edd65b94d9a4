"""Fixtures for a PgBouncer in transaction mode in front of the run's PostgreSQL server,
started once per run (see ``support/pgbouncer.py``).

- ``pgbouncer_url``: the run's database (``postgres_url``) through PgBouncer.
- ``via_pgbouncer``: maps the URL of any database on the same server to that database
  through the same PgBouncer (it serves every database name).

Load them with ``pytest_plugins = ["support.pgbouncer_fixture"]`` (in the root conftest, or
in a test module that needs them). Where the ``pgbouncer`` binary is absent, every test
that uses them is skipped with the reason; it is never counted as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import URL, make_url

from support.pgbouncer import INSTALL_HINT, find_pgbouncer, pgbouncer


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """A postgresql+psycopg:// URL of the run's database, through PgBouncer (pool_mode = transaction)."""
    if find_pgbouncer() is None:
        pytest.skip(f"PgBouncer pass skipped: no `pgbouncer` binary on this machine; {INSTALL_HINT}")
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
