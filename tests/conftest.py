"""Shared fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parent.parent / "ingestion" / "recordings"


@pytest.fixture(scope="session")
def recorded_frames() -> list[str]:
    """Every real ``@trade`` frame of the 2024-08-08 BTCUSDT+ETHUSDT capture, in trade-time order."""
    with gzip.open(RECORDINGS / "binance-usdm-trades-20240808.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()


@pytest.fixture(autouse=True)
def fresh_api_throttles():
    """Every test client is 127.0.0.1: each test starts with empty API rate counters."""
    from django.core.cache import caches

    caches["throttle"].clear()
