"""Shared fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

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


@pytest.fixture(scope="session")
def recorded_frames() -> list[str]:
    """Every real ``@trade`` frame of the 2024-08-08 BTCUSDT+ETHUSDT capture, in trade-time order."""
    with gzip.open(RECORDINGS / "binance-usdm-trades-20240808.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()
