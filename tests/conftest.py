"""Shared fixtures."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

RECORDINGS = Path(__file__).resolve().parent.parent / "ingestion" / "recordings"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database; on PostgreSQL, its stray sessions are ended before it is dropped.

    Worker threads (the tick writer, asgiref's thread for ``sync_to_async``, the
    webhook pool) hold connections of their own, and PostgreSQL will not drop a
    database that is in use.
    """
    yield
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """An empty database for the processes a test starts, on the backend the suite runs on.

    SQLite: a file in ``tmp_path``. PostgreSQL: ``test_<NAME>_processes`` on the
    server of ``DATABASE_URL`` (beside Django's ``test_<NAME>``), dropped afterwards.
    """
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"test_{url.path.lstrip('/')}_processes"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(url.geturl(), dbname="postgres", autocommit=True) as server:
        server.execute(drop)
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(url.geturl(), dbname="postgres", autocommit=True) as server:
            server.execute(drop)


@pytest.fixture(scope="session")
def recorded_frames() -> list[str]:
    """Every real ``@trade`` frame of the 2024-08-08 BTCUSDT+ETHUSDT capture, in trade-time order."""
    with gzip.open(RECORDINGS / "binance-usdm-trades-20240808.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()
