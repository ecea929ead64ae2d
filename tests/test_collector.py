"""The garbage collector of an ingesting process: start-up frozen, thresholds raised, nothing kept for good."""

from __future__ import annotations

import gc
import weakref

from pairs_project.common.collector import COLLECTOR_THRESHOLDS, collector_settle


class Node:
    pass


def test_start_up_is_frozen_and_a_second_call_hands_it_back_first():
    before = gc.get_threshold()
    try:
        cycle = Node()
        cycle.me = cycle  # only the collector frees it
        alive = weakref.ref(cycle)
        collector_settle()
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: out of the collector's sight
        collector_settle()
        assert alive() is None  # looked at again, and collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
