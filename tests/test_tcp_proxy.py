"""The test TCP proxy itself: it forwards, delays, counts round trips, and cuts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from support.tcp_proxy import TcpProxy


@pytest.fixture
def database(postgres_url: str) -> dict:
    url = make_url(postgres_url)
    return {
        "target": (url.host or "127.0.0.1", url.port or 5432),
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }


@pytest.fixture
def proxy(database: dict) -> Iterator[TcpProxy]:
    with TcpProxy(target=database["target"]) as proxy:
        yield proxy


def connect(proxy: TcpProxy, database: dict) -> psycopg.Connection:
    params = {key: database[key] for key in ("user", "password", "dbname") if database[key]}
    return psycopg.connect(
        host="127.0.0.1", port=proxy.port, connect_timeout=3, autocommit=True, prepare_threshold=None, **params
    )


def test_forwards_both_ways(proxy: TcpProxy, database: dict) -> None:
    with connect(proxy, database) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        # More than one chunk each way, in order.
        payload = "0123456789" * 30_000
        assert conn.execute("SELECT %s::text", (payload,)).fetchone() == (payload,)
        assert proxy.stats()["connections_open"] == 1
    assert proxy.stats()["connections_opened"] == 1


def test_a_statement_on_an_open_connection_is_one_flight(proxy: TcpProxy, database: dict) -> None:
    with connect(proxy, database) as conn:
        proxy.reset_counts()
        conn.execute("SELECT 1").fetchone()
        assert proxy.stats()["flights"] == 1
        conn.execute("SELECT 2").fetchone()
        assert proxy.stats() == {"flights": 2, "connections_opened": 0, "connections_open": 1}


def test_adds_the_delay_in_each_direction(proxy: TcpProxy, database: dict) -> None:
    with connect(proxy, database) as conn:
        proxy.delay_ms = 20
        started = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        elapsed = time.perf_counter() - started
    assert 0.040 <= elapsed < 0.5


def test_cut_breaks_open_connections_and_refuses_new_ones(proxy: TcpProxy, database: dict) -> None:
    conn = connect(proxy, database)
    proxy.cut()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    started = time.perf_counter()
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, database)
    assert time.perf_counter() - started < 2
    assert proxy.stats()["connections_open"] == 0

    proxy.restore()
    with connect(proxy, database) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_drop_breaks_open_connections_and_accepts_new_ones(proxy: TcpProxy, database: dict) -> None:
    conn = connect(proxy, database)
    proxy.drop()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with connect(proxy, database) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_stop_closes_everything(database: dict) -> None:
    proxy = TcpProxy(target=database["target"]).start()
    conn = connect(proxy, database)
    proxy.stop()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        connect(proxy, database)
