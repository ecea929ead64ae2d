"""Shared fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
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

RECORDINGS = Path(__file__).resolve().parent.parent / "ingestion" / "recordings"


@pytest.fixture(scope="session")
def recorded_frames() -> list[str]:
    """Every real ``@trade`` frame of the 2024-08-08 BTCUSDT+ETHUSDT capture, in trade-time order."""
    with gzip.open(RECORDINGS / "binance-usdm-trades-20240808.jsonl.gz", "rt") as fh:
        return fh.read().splitlines()
