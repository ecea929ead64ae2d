"""Gap and duplicate bookkeeping on aggregate ids."""

from __future__ import annotations

from ingestion.gaps import GapTracker


def test_contiguous_ids_are_new_and_repeats_are_duplicates():
    tracker = GapTracker()
    assert tracker.observe("BTCUSDT", 10) == (True, None)
    assert tracker.observe("BTCUSDT", 11) == (True, None)
    assert tracker.observe("BTCUSDT", 11) == (False, None)
    assert tracker.observe("BTCUSDT", 5) == (False, None)
    assert tracker.high("BTCUSDT") == 11


def test_a_jump_opens_a_gap_that_only_its_missing_ids_fill():
    tracker = GapTracker({"ETHUSDT": 100})
    assert tracker.observe("ETHUSDT", 105) == (True, (101, 104))
    assert tracker.missing_count("ETHUSDT") == 4
    assert tracker.first_missing("ETHUSDT", 101, 104) == 101
    assert tracker.observe("ETHUSDT", 103) == (True, None)  # middle: range splits
    assert tracker.observe("ETHUSDT", 103) == (False, None)
    assert tracker.observe("ETHUSDT", 101) == (True, None)
    assert tracker.first_missing("ETHUSDT", 101, 104) == 102
    assert tracker.observe("ETHUSDT", 104) == (True, None)
    assert tracker.observe("ETHUSDT", 102) == (True, None)
    assert tracker.first_missing("ETHUSDT", 101, 104) is None
    assert tracker.missing_count() == 0


def test_giving_up_forgets_only_the_named_ids():
    tracker = GapTracker({"BTCUSDT": 0})
    tracker.observe("BTCUSDT", 11)  # 1..10 missing
    assert tracker.give_up("BTCUSDT", 3, 6) == 4
    assert tracker.missing_count("BTCUSDT") == 6
    assert tracker.observe("BTCUSDT", 4) == (False, None)
    assert tracker.observe("BTCUSDT", 7) == (True, None)
    assert tracker.give_up("BTCUSDT", 0, 100) == 5
    assert tracker.give_up("ETHUSDT", 0, 100) == 0


def test_symbols_are_independent():
    tracker = GapTracker({"BTCUSDT": 50})
    assert tracker.observe("ETHUSDT", 7) == (True, None)
    assert tracker.observe("BTCUSDT", 52) == (True, (51, 51))
    assert tracker.missing_count("ETHUSDT") == 0
