"""The backtest: a pair's own alert rule replayed over history, its alerts traded with costs (pure).

No Django, no I/O. The snapshots are the production ones (``replay.snapshots_replay``:
the snapshot builder and statistics the snapshot cycle runs, one grid point at a
time, so no statistic sees a later bar); the rule is handed in by the caller (the
live alert rule, ``alerts.rules.evaluate``, bound to the pair's thresholds: this
module sits below the alerts and does not import them). Its entries and exits are
booked as docs/analytics.md ("Backtest") says: quantities from the signal bar's
close and the signal's hedge ratio, fills at the closes ``delay_bars`` later moved
against the trade by the slippage, a taker fee on each leg's filled notional,
funding at each funding time a position is held, equity marked at every grid
point, and the metrics of that equity. A live paper position is booked by the
same two functions (``position_open``, ``position_close``).

A walk-forward grid (``walk_forward``) computes each window's snapshots once and
runs only the rule again for every pair of thresholds: the statistics do not depend
on entry_z or exit_z.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from .bars import parse_interval
from .replay import StatsOf, snapshots_replay
from .snapshot import PairSnapshot, Thresholds
from .stats import pair_stats

__all__ = [
    "Costs",
    "Funding",
    "Position",
    "Result",
    "Signal",
    "Trade",
    "backtest",
    "book",
    "position_close",
    "position_mark",
    "position_open",
    "signals_of",
    "snapshots_of",
    "summary_of",
    "walk_forward",
]

SECONDS_A_YEAR = 365 * 86_400
#: How many grid points between two calls of a ``progress`` callback, at most.
PROGRESS_EVERY = 500


@dataclasses.dataclass(frozen=True)
class Costs:
    """What trading costs and how big a trade is (docs/analytics.md, "Backtest")."""

    fee_bps: float = 5.0  # a taker fee, of each leg's filled notional, at entry and at exit
    slippage_bps: float = 1.0  # each leg's fill moved against the trade
    notional: float = 10_000.0  # quote currency of symbol A bought or sold at entry
    delay_bars: int = 0  # fills at the closes of the grid point this many bars after the signal's

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.fee_bps) and self.fee_bps >= 0):
            problems.append(f"fee_bps must be >= 0, not {self.fee_bps}")
        if not (math.isfinite(self.slippage_bps) and 0 <= self.slippage_bps < 10_000):
            problems.append(f"slippage_bps must be >= 0 and below 10,000, not {self.slippage_bps}")
        if not (math.isfinite(self.notional) and self.notional > 0):
            problems.append(f"notional must be > 0, not {self.notional}")
        if self.delay_bars < 0:
            problems.append(f"delay_bars must be >= 0, not {self.delay_bars}")
        if problems:
            raise ValueError("; ".join(problems))


class Funding(NamedTuple):
    """A funding time of one leg (ms) and its rate (a fraction: 0.0001 is 0.01 %)."""

    time: int
    rate: float


class Signal(NamedTuple):
    """What the rule fired at a grid point: an entry (with the hedge ratio of its signal) or an exit."""

    at: int  # the signal bar's grid index
    kind: str  # "entry" or "exit"
    direction: str  # "long_spread" or "short_spread"
    reason: str  # "entry", "reverted", "relationship_broken"
    hedge_ratio: float | None = None  # beta' of the entry's signal (the previous window's model)


@dataclasses.dataclass(frozen=True)
class Position:
    """An open trade: signed quantities (+ long, - short) and its entry fills."""

    direction: str
    hedge_ratio: float
    entry_time: int  # the signal bar's grid time (ms)
    qty_a: float  # signed
    qty_b: float  # signed
    entry_price_a: float  # fills, slippage included
    entry_price_b: float
    entry_fees: float


@dataclasses.dataclass(frozen=True)
class Trade:
    """A closed trade, as the backtest result and a closed paper position report it."""

    entry_time: int
    exit_time: int
    direction: str
    reason: str
    hedge_ratio: float
    qty_a: float  # signed: + bought, - sold at entry
    qty_b: float
    entry_price_a: float
    entry_price_b: float
    exit_price_a: float
    exit_price_b: float
    fees: float
    funding: float  # paid (+) or received (-)
    pnl: float  # net: gross - fees - funding
    bars: int  # held, in grid points from the entry signal to the exit signal

    @property
    def gross(self) -> float:
        return self.pnl + self.fees + self.funding

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bars"}


def _fill(price: float, side: float, costs: Costs) -> float:
    """The fill of a buy (side > 0) or a sell (side < 0) at ``price``, moved against the trade."""
    slip = costs.slippage_bps / 10_000
    return price * (1 + slip) if side > 0 else price * (1 - slip)


def _fees(qty_a: float, price_a: float, qty_b: float, price_b: float, costs: Costs) -> float:
    return costs.fee_bps / 10_000 * (abs(qty_a) * price_a + abs(qty_b) * price_b)


def position_open(
    *,
    direction: str,
    hedge_ratio: float,
    entry_time: int,
    signal_price_a: float,
    close_a: float,
    close_b: float,
    costs: Costs,
) -> Position:
    """Book an entry: q_a = notional / the signal bar's close of A, q_b = beta' q_a, filled at ``close_a/b``.

    ``long_spread`` buys A and sells B, ``short_spread`` the opposite.
    """
    sign = 1.0 if direction == "long_spread" else -1.0
    qty_a = sign * costs.notional / signal_price_a
    qty_b = -sign * hedge_ratio * costs.notional / signal_price_a
    price_a, price_b = _fill(close_a, qty_a, costs), _fill(close_b, qty_b, costs)
    return Position(
        direction=direction,
        hedge_ratio=hedge_ratio,
        entry_time=entry_time,
        qty_a=qty_a,
        qty_b=qty_b,
        entry_price_a=price_a,
        entry_price_b=price_b,
        entry_fees=_fees(qty_a, price_a, qty_b, price_b, costs),
    )


def position_mark(position: Position, close_a: float, close_b: float, funding: float = 0.0) -> float:
    """Unrealised PnL at the closes: no exit costs, the entry's fees and the funding so far paid."""
    gross = position.qty_a * (close_a - position.entry_price_a) + position.qty_b * (close_b - position.entry_price_b)
    return gross - position.entry_fees - funding


def position_close(
    position: Position,
    *,
    exit_time: int,
    reason: str,
    close_a: float,
    close_b: float,
    funding: float,
    costs: Costs,
    bars: int,
) -> Trade:
    """Book an exit of ``position`` filled at ``close_a/b`` (each leg's sell or buy back), with ``funding`` paid."""
    price_a, price_b = _fill(close_a, -position.qty_a, costs), _fill(close_b, -position.qty_b, costs)
    fees = position.entry_fees + _fees(position.qty_a, price_a, position.qty_b, price_b, costs)
    gross = position.qty_a * (price_a - position.entry_price_a) + position.qty_b * (price_b - position.entry_price_b)
    return Trade(
        entry_time=position.entry_time,
        exit_time=exit_time,
        direction=position.direction,
        reason=reason,
        hedge_ratio=position.hedge_ratio,
        qty_a=position.qty_a,
        qty_b=position.qty_b,
        entry_price_a=position.entry_price_a,
        entry_price_b=position.entry_price_b,
        exit_price_a=price_a,
        exit_price_b=price_b,
        fees=fees,
        funding=funding,
        pnl=gross - fees - funding,
        bars=bars,
    )


# -- the rule over the snapshots -------------------------------------------------


class RuleEvent(Protocol):
    kind: Any
    direction: Any
    reason: Any


#: ``rule(state, snapshot) -> (state, events)``: the alert rule bound to its thresholds.
Rule = Callable[[Any, PairSnapshot], tuple[Any, Sequence[RuleEvent]]]


def signals_of(snapshots: Iterable[PairSnapshot], rule: Rule, state: Any) -> list[Signal]:
    """The rule stepped over ``snapshots`` (grid order) from ``state``: what it fired, by grid index.

    An entry carries the hedge ratio its signal z was scored with (the snapshot's
    ``signal_hedge_ratio``: the previous grid point's model, docs/analytics.md).
    """
    signals: list[Signal] = []
    for index, snapshot in enumerate(snapshots):
        state, events = rule(state, snapshot)
        for event in events:
            beta = snapshot.signal_hedge_ratio if event.kind == "entry" else None
            signals.append(Signal(index, str(event.kind), str(event.direction), str(event.reason), beta))
    return signals


def _stepped(snapshots: Sequence[PairSnapshot], rule: Rule, state: Any) -> Any:
    """The rule's state after ``snapshots`` (what it fires on them is dropped)."""
    for snapshot in snapshots:
        state, _ = rule(state, snapshot)
    return state


# -- booking -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Result:
    """A backtest's trades, its equity at every grid point, and their metrics (docs/analytics.md)."""

    trades: list[Trade]
    times: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    summary: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "trades": [t.as_json() for t in self.trades],
            "equity": {"t": self.times.tolist(), "equity": self.equity.tolist()},
        }


def _funding_between(
    leg_qty: tuple[float, float],
    funding: tuple[Sequence[Funding], Sequence[Funding]],
    times: npt.NDArray[np.int64],
    closes: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    held_from: int,
    held_to: int,
) -> list[tuple[int, float]]:
    """Each funding payment (when, amount paid) of a position held over ``[held_from, held_to)`` (ms).

    A leg pays ``qty * mark * rate`` (a long leg pays a positive rate, a short leg
    receives it), the mark being the leg's close of the grid point at or just
    before the funding time.
    """
    payments = []
    for qty, rates, close in zip(leg_qty, funding, closes, strict=True):
        for when, rate in rates:
            if held_from <= when < held_to:
                k = int(np.searchsorted(times, when, side="right")) - 1
                if k >= 0:
                    payments.append((when, qty * float(close[k]) * rate))
    return payments


def book(
    times: npt.ArrayLike,
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    signals: Iterable[Signal],
    *,
    interval: str,
    costs: Costs,
    funding_a: Sequence[Funding] = (),
    funding_b: Sequence[Funding] = (),
) -> Result:
    """Trade ``signals`` on the closes ``y`` (A) and ``x`` (B) at grid ``times``; the trades, equity and metrics.

    An entry fills at grid point ``index + delay_bars`` (none when that is past
    the end, or without a hedge ratio); an exit likewise, or at the last grid point
    when later; a position still open at the end closes there with reason ``end``.
    A position is held from its entry fill (the close of its grid point) to its
    exit fill: a funding time in between is paid.
    """
    t = np.asarray(times, dtype=np.int64)
    ya = np.asarray(y, dtype=np.float64)
    xb = np.asarray(x, dtype=np.float64)
    n = t.size
    interval_ms = parse_interval(interval)
    closes = (ya, xb)
    rates = (funding_a, funding_b)
    trades: list[Trade] = []
    # Equity = realised + the open position's mark; built from per-trade pieces.
    realised_at = np.zeros(n, dtype=np.float64)  # realised PnL added at a grid point (its exit fill)
    marks = np.zeros(n, dtype=np.float64)  # the open position's mark at each grid point
    open_: tuple[Position, int, int] | None = None  # the position, its signal index, its fill index

    def close(position: Position, signal_index: int, fill_index: int, exit_index: int, fill: int, reason: str) -> None:
        held_from, held_to = int(t[fill_index]) + interval_ms, int(t[fill]) + interval_ms
        payments = _funding_between((position.qty_a, position.qty_b), rates, t, closes, held_from, held_to)
        trade = position_close(
            position,
            exit_time=int(t[exit_index]),
            reason=reason,
            close_a=float(ya[fill]),
            close_b=float(xb[fill]),
            funding=sum(amount for _, amount in payments),
            costs=costs,
            bars=exit_index - signal_index,
        )
        trades.append(trade)
        # Marks while open (from the entry fill to the grid point before the exit fill).
        span = slice(fill_index, fill)
        gross = position.qty_a * (ya[span] - position.entry_price_a) + position.qty_b * (
            xb[span] - position.entry_price_b
        )
        paid = np.zeros(fill - fill_index)
        for when, amount in payments:  # paid from the first grid point whose close is at or after it
            first = int(np.searchsorted(t[span] + interval_ms, when, side="left"))
            paid[first:] += amount
        marks[span] += gross - position.entry_fees - paid
        realised_at[fill] += trade.pnl

    for signal in signals:
        if signal.kind == "entry":
            fill = signal.at + costs.delay_bars
            if open_ is not None or fill >= n or signal.hedge_ratio is None:
                continue
            position = position_open(
                direction=signal.direction,
                hedge_ratio=signal.hedge_ratio,
                entry_time=int(t[signal.at]),
                signal_price_a=float(ya[signal.at]),
                close_a=float(ya[fill]),
                close_b=float(xb[fill]),
                costs=costs,
            )
            open_ = (position, signal.at, fill)
        elif signal.kind == "exit" and open_ is not None:
            position, signal_index, fill_index = open_
            fill = max(min(signal.at + costs.delay_bars, n - 1), fill_index)
            close(position, signal_index, fill_index, signal.at, fill, signal.reason)
            open_ = None
    if open_ is not None:
        position, signal_index, fill_index = open_
        close(position, signal_index, fill_index, n - 1, n - 1, "end")
    equity = np.cumsum(realised_at) + marks
    return Result(trades, t, equity, summary_of(trades, t, equity, interval_ms=interval_ms, notional=costs.notional))


def summary_of(
    trades: Sequence[Trade],
    times: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    *,
    interval_ms: int,
    notional: float,
) -> dict[str, Any]:
    """The metrics of docs/analytics.md ("Backtest") of ``trades`` and the ``equity`` at each grid point."""
    wins = sum(1 for trade in trades if trade.pnl > 0)
    net = float(sum(trade.pnl for trade in trades))
    peak = np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:]
    drawdown = float(np.max(peak - equity)) if equity.size else 0.0
    changes = np.diff(np.concatenate([[0.0], equity]))
    sharpe = None
    if changes.size > 1:
        std = float(np.std(changes, ddof=1))
        if std > 0:
            sharpe = float(np.mean(changes)) / std * math.sqrt(SECONDS_A_YEAR / (interval_ms / 1000))
    return {
        "start": int(times[0]) if times.size else None,
        "end": int(times[-1]) if times.size else None,
        "bars": int(times.size),
        "trades": len(trades),
        "wins": wins,
        "win_rate": wins / len(trades) if trades else None,
        "gross_pnl": float(sum(trade.gross for trade in trades)),
        "fees": float(sum(trade.fees for trade in trades)),
        "funding": float(sum(trade.funding for trade in trades)),
        "net_pnl": net,
        "return_pct": 100 * net / notional,
        "max_drawdown": drawdown,
        "max_drawdown_pct": 100 * drawdown / notional,
        "sharpe": sharpe,
        "mean_holding_bars": float(np.mean([trade.bars for trade in trades])) if trades else None,
    }


# -- the whole run -------------------------------------------------------------------


class PairSettings(NamedTuple):
    """What of a pair the snapshots depend on."""

    pair: int
    symbols: tuple[str, str]
    interval: str
    window: int
    min_bars: int
    thresholds: Thresholds


def snapshots_of(
    times: npt.ArrayLike,
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    settings: PairSettings,
    *,
    stats_of: StatsOf = pair_stats,
    progress: Callable[[float], None] | None = None,
    share: tuple[float, float] = (0.0, 1.0),
) -> list[PairSnapshot]:
    """The pair's snapshot at every grid point (``replay.snapshots_replay``), the cost of a backtest.

    A caller that runs both ``backtest`` and ``walk_forward`` on one range computes
    them once and hands them to both. ``progress`` hears ``share``'s part of the
    way (its start and width).
    """
    snapshots = []
    first, width = share
    replay_times = np.asarray(times, dtype=np.int64)
    replay = snapshots_replay(
        replay_times,
        y,
        x,
        pair=settings.pair,
        symbols=settings.symbols,
        interval=settings.interval,
        window=settings.window,
        min_bars=settings.min_bars,
        thresholds=settings.thresholds,
        stats_of=stats_of,
    )
    for k, snapshot in enumerate(replay):
        snapshots.append(snapshot)
        if progress is not None and k % PROGRESS_EVERY == 0:
            progress(first + width * k / max(1, len(replay_times)))
    return snapshots


def backtest(
    times: npt.ArrayLike,
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    settings: PairSettings,
    rule: Rule,
    state: Any,
    costs: Costs,
    funding_a: Sequence[Funding] = (),
    funding_b: Sequence[Funding] = (),
    stats_of: StatsOf = pair_stats,
    progress: Callable[[float], None] | None = None,
    trade_from: int = 0,
    snapshots: Sequence[PairSnapshot] | None = None,
) -> Result:
    """The pair's rule (``rule`` from ``state``) over its snapshots of the aligned closes, traded with ``costs``.

    The grid points before ``trade_from`` are history only: the windows of the
    first traded points look back into them (so the range starts ready, as a pair
    that has run for a while is), the rule steps over them (its confirmation run
    carries on), and nothing it fires there is traded. ``snapshots``: those of
    ``snapshots_of`` for these closes and ``settings``, when the caller has them.
    """
    t = np.asarray(times, dtype=np.int64)
    ya, xb = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if snapshots is None:
        snapshots = snapshots_of(t, ya, xb, settings, stats_of=stats_of, progress=progress)
    state = _stepped(snapshots[:trade_from], rule, state)
    traded = slice(trade_from, t.size)
    signals = signals_of(snapshots[traded], rule, state)
    result = book(
        t[traded],
        ya[traded],
        xb[traded],
        signals,
        interval=settings.interval,
        costs=costs,
        funding_a=funding_a,
        funding_b=funding_b,
    )
    if progress is not None:
        progress(1.0)
    return result


#: ``rule_for(entry_z, exit_z) -> (rule, initial state)``: the alert rule at other thresholds.
RuleFor = Callable[[float, float], tuple[Rule, Any]]


def walk_forward(
    times: npt.ArrayLike,
    y: npt.ArrayLike,
    x: npt.ArrayLike,
    *,
    settings: PairSettings,
    rule_for: RuleFor,
    entry_zs: Sequence[float],
    exit_zs: Sequence[float],
    windows: Sequence[int] = (),
    costs: Costs,
    in_sample: float = 0.5,
    funding_a: Sequence[Funding] = (),
    funding_b: Sequence[Funding] = (),
    stats_of: StatsOf = pair_stats,
    progress: Callable[[float], None] | None = None,
    trade_from: int = 0,
    snapshots: Sequence[PairSnapshot] | None = None,
) -> list[dict[str, Any]]:
    """Every (entry_z, exit_z[, window]) scored in-sample and out-of-sample; the best in-sample first.

    The traded range (from ``trade_from``, see ``backtest``) splits at
    ``in_sample`` of its grid points. Each part is traded on its own (the rule
    steps over everything before it without trading; a position open at the end of
    the in-sample part closes there), on the snapshots of the whole range, so the
    out-of-sample windows look back into the in-sample bars as live operation
    would, never forward. Each window's snapshots are computed once (those at the
    pair's own window not at all when ``snapshots`` are handed in, see ``backtest``). Rows with
    entry_z <= exit_z are skipped. Sorted by in-sample Sharpe (none last), the
    first row being the choice whose out-of-sample figures are the headline.
    """
    if not 0 < in_sample < 1:
        raise ValueError(f"in_sample must be between 0 and 1, not {in_sample}")
    t = np.asarray(times, dtype=np.int64)
    ya, xb = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    traded = t.size - trade_from
    split = trade_from + int(traded * in_sample)
    if not trade_from < split < t.size:
        raise ValueError(f"{traded} grid points cannot be split into an in-sample and an out-of-sample part")
    parts = (slice(trade_from, split), slice(split, t.size))
    rows: list[dict[str, Any]] = []
    sizes = list(windows) or [settings.window]
    for w, window in enumerate(sizes):
        mine = settings._replace(window=window, min_bars=min(settings.min_bars, window))
        share = (w / len(sizes), 1 / len(sizes))
        if snapshots is not None and window == settings.window:
            at_window = snapshots
        else:
            at_window = snapshots_of(t, ya, xb, mine, stats_of=stats_of, progress=progress, share=share)
        for entry_z in entry_zs:
            for exit_z in exit_zs:
                if not entry_z > exit_z:
                    continue
                scored = []
                for part in parts:
                    rule, state = rule_for(entry_z, exit_z)
                    state = _stepped(at_window[: part.start], rule, state)
                    signals = signals_of(at_window[part], rule, state)
                    scored.append(
                        book(
                            t[part],
                            ya[part],
                            xb[part],
                            signals,
                            interval=settings.interval,
                            costs=costs,
                            funding_a=funding_a,
                            funding_b=funding_b,
                        ).summary
                    )
                rows.append(
                    {
                        "entry_z": entry_z,
                        "exit_z": exit_z,
                        "window": window,
                        "in_sample": scored[0],
                        "out_of_sample": scored[1],
                    }
                )
    if progress is not None:
        progress(1.0)
    rows.sort(
        key=lambda row: -math.inf if row["in_sample"]["sharpe"] is None else row["in_sample"]["sharpe"], reverse=True
    )
    return rows
