"""The record of the ticks this process stored, by row id (pure)."""

from __future__ import annotations

from ingestion.binance import Tick
from ingestion.journal import Run, StoredTicks


def run(first_id: int, n: int, symbol: str = "BTCUSDT", database: str = "db") -> Run:
    return Run(database, first_id, symbol, [Tick(1_000 + i, symbol, 1.0, 1.0, first_id + i) for i in range(n)])


def ids(runs: list[Run]) -> list[int]:
    return [i for r in runs for i in range(r.first_id, r.last_id + 1)]


def test_nothing_is_kept_until_someone_asks():
    journal = StoredTicks()
    journal.record([run(1, 5)])
    assert journal.between("db", 0, 5) == []
    journal.record([run(6, 5)])
    assert ids(journal.between("db", 5, 10)) == list(range(6, 11))


def test_it_gives_the_runs_from_the_next_id_on_without_a_hole_and_forgets_those_below():
    journal = StoredTicks()
    journal.between("db", 0, 0)
    journal.record([run(1, 3), run(4, 2, "ETHUSDT")])
    journal.record([run(6, 4)])
    journal.record([run(12, 2)])  # ids 10-11 went to another writer (or a statement with duplicates)
    assert ids(journal.between("db", 0, 20)) == list(range(1, 10))
    assert ids(journal.between("db", 0, 7)) == list(range(1, 6))  # a run past the newest id asked for is left
    assert ids(journal.between("db", 3, 20)) == list(range(4, 10))
    assert journal.between("db", 2, 20) == []  # not from a run's start: those below were forgotten
    assert journal.between("db", 9, 20) == []  # 10 is not here
    assert ids(journal.between("db", 11, 20)) == [12, 13]


def test_ids_not_above_those_kept_mean_another_table_and_another_database_is_not_this_one():
    journal = StoredTicks()
    journal.between("db", 0, 0)
    journal.record([run(1, 5)])
    journal.record([run(1, 3)])  # the table was emptied (a rolled-back or flushed database)
    assert ids(journal.between("db", 0, 10)) == [1, 2, 3]
    journal.record([run(4, 2, database="other")])
    assert ids(journal.between("other", 3, 10)) == [4, 5]
    assert journal.between("db", 3, 10) == []


def test_it_keeps_at_most_max_ticks_dropping_the_oldest():
    journal = StoredTicks(max_ticks=10)
    journal.between("db", 0, 0)
    journal.record([run(1, 4), run(5, 4), run(9, 4)])
    assert journal.between("db", 0, 20) == []
    assert ids(journal.between("db", 4, 20)) == list(range(5, 13))
