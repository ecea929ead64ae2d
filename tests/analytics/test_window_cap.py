"""The documented maximum window: refused everywhere a pair is set, held by the database too."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor

from analytics.models import MAX_WINDOW, Pair


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options,message",
    [
        (["--window", str(10**9)], "window: The window can hold at most 5000 bars"),
        (["--window", str(10**9), "--min-bars", str(10**9)], "min_bars: min_bars can be at most 5000"),
    ],
)
def test_add_pair_refuses_a_window_above_the_maximum(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_pair", "SOLUSDT", "ETHUSDT", "--no-warmup", *options)
    assert not Pair.objects.filter(symbol_a="SOLUSDT").exists()


@pytest.mark.django_db
def test_add_pair_takes_the_maximum_itself():
    call_command("add_pair", "SOLUSDT", "ETHUSDT", "--no-warmup", "--window", str(MAX_WINDOW))
    assert Pair.objects.get(symbol_a="SOLUSDT").window == MAX_WINDOW == 5000


@pytest.mark.django_db
def test_the_database_refuses_a_window_above_the_maximum():
    with pytest.raises(IntegrityError):
        Pair.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", window=MAX_WINDOW + 1, min_bars=100)


@pytest.mark.django_db(transaction=True)
def test_the_migration_clamps_existing_windows_to_the_maximum():
    executor = MigrationExecutor(connection)
    before = [("analytics", "0003_pair_webhook_url")]
    latest = executor.loader.graph.leaf_nodes()  # every app's: going back unapplies those that depend on analytics
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("analytics", "Pair")
    old.objects.create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="1s", window=10**9, min_bars=10**8)
    old.objects.create(symbol_a="XRPUSDT", symbol_b="ETHUSDT", interval="1s", window=300, min_bars=100)
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    pair = Pair.objects.get(symbol_a="SOLUSDT")
    assert (pair.window, pair.min_bars) == (MAX_WINDOW, MAX_WINDOW)
    other = Pair.objects.get(symbol_a="XRPUSDT")
    assert (other.window, other.min_bars) == (300, 100)  # the others are untouched
