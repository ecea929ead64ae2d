"""The garbage collector of a long-lived process that ingests (``collector_settle``)."""

from __future__ import annotations

import gc

#: The collector's thresholds in a process that ingests: new objects before a young collection, young
#: collections before a middle one, middle ones before a full one (CPython's default: 700, 10, 10).
COLLECTOR_THRESHOLDS = (50_000, 20, 10)


def collector_settle() -> None:
    """Keep the garbage collector off the feed's path; call when the process has started.

    Measured on ``make bench``'s burst of 200,000 trades, the collector took 1.4-1.7 s of
    the embedded system's 6 s, holding the interpreter from the feed:

    - a full collection walks every object the process holds, and Django, pandas, numpy
      and statsmodels leave some 200,000 that live as long as it: ``gc.freeze()`` takes
      them out of its sight for good;
    - every tick is an object the collector tracks (a named tuple; plain tuples of
      numbers are untracked, these are not), living a few seconds in the live buffers,
      the writer's batch and the journal: at a collection per 700 new objects, a burst
      of tens of thousands a second set off full collections over them several times a
      second. Larger thresholds collect as surely, less often.

    With both: 0.1 s of the burst. Reference counting frees nearly everything at once
    as before; only cyclic garbage waits a little longer for its collection. A second
    call first hands back what the first froze, so nothing frozen then is kept for good.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
