"""Shared fixtures."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection
from hypothesis import settings

# Property tests run the same examples on every run (a failure reproduces as is) and
# keep no example database; a test sets its own (modest) max_examples.
settings.register_profile("pairs", derandomize=True, database=None, deadline=None)
settings.load_profile("pairs")


@pytest.fixture(scope="session", autouse=True)
def hypothesis_prints_failing_examples():
    """Put back the printer schemathesis swaps for a no-op when it loads (a speed-up for big schemas).

    Without it a failing property test shows its example blank (``n=,``). Done
    once the tests are collected, after anything that imports schemathesis.
    """
    from hypothesis import core
    from hypothesis.vendor import pretty

    core.RepresentationPrinter = pretty.RepresentationPrinter


#: Tests use their own Redis database, flushed as they need.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
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
def databases(tmp_path) -> Iterator:
    """Make empty databases for the processes a test starts, on the backend the suite runs on.

    ``databases(name)`` returns a URL. SQLite: a file in ``tmp_path``. PostgreSQL:
    ``test_<NAME>_<name>`` on the server of ``DATABASE_URL`` (beside Django's
    ``test_<NAME>``), dropped afterwards.
    """
    made: list[str] = []
    if connection.vendor != "postgresql":
        yield lambda name: f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    url = urlsplit(os.environ["DATABASE_URL"])

    def drop(name: str) -> None:
        with psycopg.connect(url.geturl(), dbname="postgres", autocommit=True) as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def make(name: str) -> str:
        name = f"test_{url.path.lstrip('/')}_{name}"
        drop(name)
        with psycopg.connect(url.geturl(), dbname="postgres", autocommit=True) as server:
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return url._replace(path=f"/{name}").geturl()

    try:
        yield make
    finally:
        for name in made:
            drop(name)


@pytest.fixture
def database_url(databases) -> str:
    """One empty database for the processes a test starts (see ``databases``)."""
    return databases("processes")


@pytest.fixture(scope="session")
def recorded_frames() -> list[str]:
    """Every real ``@trade`` frame of the 2024-08-08 BTCUSDT+ETHUSDT capture, in trade-time order."""
    with gzip.open(RECORDINGS / "binance-usdm-trades-20240808.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()


@pytest.fixture
def runtime():
    """This process's runtime as embedded mode builds it, statistics computed in the test's own process."""
    from pairs_project.runtime import Runtime

    built = Runtime.build(stats_process=False)
    yield built
    built.close()


@pytest.fixture
def pipeline(runtime):
    """The data path on ``runtime``: what the periodic tasks and the feed run."""
    from pairs_project.pipeline import Pipeline

    return Pipeline(runtime)


@pytest.fixture
def redis_url() -> str:
    """A Redis that answers; skips with the reason if none does, fails instead when REQUIRE_REDIS=1."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but no Redis answers at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}); set REQUIRE_REDIS=1 to make this a failure")
    return REDIS_URL


class FakeBinance:
    """Binance's ``exchangeInfo`` as the tests see it: no test reaches the real exchange.

    The answer is the offline exchange's, listing ``traded`` as TRADING perpetuals
    and ``listed`` (symbol -> (status, contractType)) besides. Set ``failure`` to
    an exception to make the exchange unreachable; ``requests`` counts the fetches.
    Loopback URLs (a ``Simulator`` a test runs) are fetched for real.
    """

    TRADED = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "1000PEPEUSDT")
    LISTED = {"LUNAUSDT": ("SETTLING", "PERPETUAL"), "BTCUSDT_260327": ("TRADING", "CURRENT_QUARTER")}

    def __init__(self, fetch) -> None:
        self._fetch = fetch
        self.traded = list(self.TRADED)
        self.listed = dict(self.LISTED)
        self.failure: Exception | None = None
        self.requests = 0

    def __call__(self, rest_url: str):
        if urlsplit(rest_url).hostname in ("127.0.0.1", "localhost", "::1"):
            return self._fetch(rest_url)
        from ingestion.binance import parse_exchange_info
        from ingestion.simulator import Exchange, symbol_spec

        self.requests += 1
        if self.failure is not None:
            raise self.failure
        return parse_exchange_info(Exchange([symbol_spec(s) for s in self.traded], listed=self.listed).exchange_info())

    def forget(self) -> None:
        """Drop the app's cached copy of the list (as if never fetched)."""
        from django.conf import settings as django_settings
        from django.core.cache import cache

        from ingestion import listing

        cache.delete_many(list(listing._keys(django_settings.BINANCE_REST_URL)))


@pytest.fixture(autouse=True)
def fake_binance(monkeypatch) -> Iterator[FakeBinance]:
    """Every test gets ``FakeBinance`` in place of the exchange's symbol list, and no cached copy of it."""
    from ingestion import listing

    fake = FakeBinance(listing.exchange_info_fetch)
    monkeypatch.setattr(listing, "exchange_info_fetch", fake)
    fake.forget()
    yield fake
    fake.forget()


@pytest.fixture
def api():
    """The JSON API's test client, anonymous (``rest_framework.test.APIClient``)."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def staff_api():
    """The JSON API's test client, authenticated as a new staff user ``desk``."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.create_user("desk", is_staff=True))
    return client


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Every test starts and ends with an empty cache: the snapshots, series and lists it reads, it made."""
    from django.core.cache import cache, caches

    cache.clear()
    caches["process"].clear()
    yield
    cache.clear()
    caches["process"].clear()


@pytest.fixture(autouse=True)
def fresh_api_throttles():
    """Every test client is 127.0.0.1: each test starts with empty API rate counters."""
    from django.core.cache import caches

    caches["throttle"].clear()


@pytest.fixture(autouse=True)
def fresh_health(settings):
    """A test sees the health of the state it made, not a record made a moment before."""
    settings.HEALTH_CACHE_SECONDS = 0
