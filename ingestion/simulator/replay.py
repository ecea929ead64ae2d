"""The recorded market: real Binance trades replayed as aggTrades, re-stamped to now."""

from __future__ import annotations

import bisect
import dataclasses
import gzip
import math
from pathlib import Path

import orjson

from .market import Batch
from .symbols import SymbolSpec, symbol_spec

RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "binance-usdm-trades-20240808.jsonl.gz"


class _Recording:
    """The recorded ``@trade`` frames, column-wise, in recorded order."""

    def __init__(self, path: Path) -> None:
        self.symbols: list[str] = []
        self.times: list[int] = []
        self.prices: list[float] = []
        self.qtys: list[float] = []
        self.ids: list[int] = []
        with gzip.open(path, "rb") as fh:
            for line in fh:
                data = orjson.loads(line)["data"]
                self.symbols.append(data["s"])
                self.times.append(int(data["T"]))
                self.prices.append(float(data["p"]))
                self.qtys.append(float(data["q"]))
                self.ids.append(int(data["t"]))
        if not self.times:
            raise ValueError("the recording is empty")

    def id_ranges(self) -> dict[str, tuple[int, int]]:
        """Per symbol (in order of first appearance), its first and last recorded id."""
        firsts: dict[str, int] = {}
        lasts: dict[str, int] = {}
        for sym, tid in zip(self.symbols, self.ids, strict=True):
            firsts.setdefault(sym, tid)
            lasts[sym] = tid
        return {sym: (first, lasts[sym]) for sym, first in firsts.items()}


class ReplayScenario:
    """Replays the recorded ``@trade`` frames as aggTrades with their original ids.

    Trade times are re-stamped to the simulator's clock: offset = (recorded time
    - first recorded time) / ``speed`` (``speed=0``: as fast as possible, stamped
    "now"). With ``loop`` the recording starts over after a one-second pause
    (recorded time), ids continuing contiguously where the last pass ended.
    """

    def __init__(self, *, speed: float = 1.0, loop: bool = True, path: str | Path | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = float(speed)
        self.loop = loop
        self.unpaced = speed == 0
        recording = _Recording(Path(path) if path else RECORDING)
        t0 = recording.times[0]
        self._symbols = recording.symbols
        self._rec_offsets = [(t - t0) / 1000.0 for t in recording.times]
        self._prices = recording.prices
        self._qtys = recording.qtys
        self._ids = recording.ids
        ranges = recording.id_ranges()
        self._span = {sym: last - first + 1 for sym, (first, last) in ranges.items()}
        self._cycle = self._rec_offsets[-1] + 1.0
        specs: list[SymbolSpec] = []
        for sym, (first, _) in ranges.items():
            specs.append(dataclasses.replace(symbol_spec(sym), first_id=first))
        self.specs = tuple(specs)
        self._pos = 0
        self._pass = 0

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._pos >= len(self._rec_offsets)

    def take(self, until: float, limit: int) -> Batch:
        ids: list[int] = []
        out = Batch([], [], [], [], ids)
        n = len(self._rec_offsets)
        while limit > 0 and not self.exhausted:
            if self._pos >= n:
                self._pos = 0
                self._pass += 1
            end = self._due_end(until, limit)
            if end == self._pos:
                break
            self._append(out, ids, self._pos, end)
            limit -= end - self._pos
            self._pos = end
        return out

    def _due_end(self, until: float, limit: int) -> int:
        """End (exclusive) of the recorded trades of this pass due by ``until``, at most ``limit`` of them."""
        n = len(self._rec_offsets)
        if self.unpaced or math.isinf(until):
            return min(n, self._pos + limit)
        recorded_until = until * self.speed - self._pass * self._cycle
        return bisect.bisect_right(self._rec_offsets, recorded_until, self._pos, min(n, self._pos + limit))

    def _append(self, out: Batch, ids: list[int], pos: int, end: int) -> None:
        """Add recorded trades ``pos``..``end - 1`` of this pass to ``out``, re-stamped and re-numbered."""
        k = self._pass
        shift = k * self._cycle
        speed = self.speed or 1.0
        out.symbols.extend(self._symbols[pos:end])
        out.offsets.extend((shift + off) / speed for off in self._rec_offsets[pos:end])
        out.prices.extend(self._prices[pos:end])
        out.quantities.extend(self._qtys[pos:end])
        if k:
            span = self._span
            pairs = zip(self._symbols[pos:end], self._ids[pos:end], strict=True)
            ids.extend(tid + k * span[sym] for sym, tid in pairs)
        else:
            ids.extend(self._ids[pos:end])
