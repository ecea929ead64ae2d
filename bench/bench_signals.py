"""Alert quality: false entries on a random-walk spread, shocks caught on a cointegrated one.

Not a timing benchmark: what the alert rule fires on the offline exchange's own
markets, for the rule in production (``alerts.rules.evaluate``, on the signal z
of docs/analytics.md, "The signal", after ``confirm_bars`` related snapshots) and,
side by side, the rule it replaced (``rule_before``, below: entry on the
in-sample z with ADF p and the returns correlation on the same window).

The bars are 1 s closes of the trades the simulator's scenario generators make
(``ingestion.simulator.make_scenario``, the generators the exchange serves), built
and aligned by the production code (``analytics.bars.build_bars``,
``align_closes``); the snapshots are the production ones, stepped as the
snapshot cycle steps them (``analytics.replay.snapshots_replay``: ``pair_stats``,
``snapshot_build``, the previous snapshot's model and run). Both rules read the
same snapshots in one pass; the statistics are the expensive part (one
``pair_stats`` a bar), spread over the cores a run per process.

The markets are the demo market's (``make demo``'s ``DEMO_MARKET``, which ``make
bench`` passes as ``--demo-market``: 100 trades a second, BTC = alpha + 20 ETH + a
spread of 5 USD with a half-life of 5 s), on the default pair (1 s bars, window
300, ``min_bars`` 100) at the default thresholds (``--confirm-bars`` and
``--max-coint-pvalue`` try the new rule's two others):

1. ``random_walk``: the same market with a spread that wanders (returns still
   correlated, no cointegration), ``--seeds`` seeds of ``--minutes`` of ready
   snapshots each. Every entry is a false one.
2. ``cointegrated`` with shocks of 3, 4.5, 6, 8, 10 and 15 spread sigmas, one of each
   per run (sizes rotated and signs alternated between runs), ``SPACING`` s apart
   (more than a window, so no shock is still in the window the next one is scored
   against). For each shock: did it meet an armed rule and a confirmed relationship
   (the snapshot before the shock ended a run of at least ``confirm_bars`` related
   snapshots), and did an entry in its direction fire within 2 bars of it (on the
   shock's bar or one of the next two)? Entries per hour there are the true-entry
   rate: the relationship is real.
3. The demo market itself, its seed and shocks included, for ``DEMO_SECONDS``:
   when its first entries and exits fire after the market opens.

    python bench/bench_signals.py [--seeds 20] [--minutes 30] [--shock-runs 6] [--workers 2]
                                  [--demo-market "--seed 7 --rate 100 ... --shock-size 3"]
                                  [--confirm-bars 30] [--max-coint-pvalue 0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from common import ROOT  # noqa: F401 - puts the project on the path

from alerts import rules
from analytics.bars import align_closes, build_bars
from analytics.replay import snapshots_replay
from analytics.snapshot import PairSnapshot, Thresholds
from ingestion.simulator import make_scenario

T0 = 1_767_225_600_000  # the market opens on a whole second
#: The Makefile's DEMO_MARKET, when not given.
DEMO_MARKET = "--seed 7 --rate 100 --half-life 5 --spread-sigma 5 --shock-every 60 --shock-size 3"
DEMO_SECONDS = 600
#: The default pair.
PAIR = {"pair": 1, "symbols": ("BTCUSDT", "ETHUSDT"), "interval": "1s", "window": 300, "min_bars": 100}
SHOCK_SIZES = (3.0, 4.5, 6.0, 8.0, 10.0, 15.0)
FIRST_SHOCK = 400  # s: a full window, then more than confirm_bars of it
SPACING = 330  # s: a window and a half-minute (the shock has decayed and left it)
WITHIN = 2  # bars after the shock's own


# -- the rule before this one (the baseline) ------------------------------------------


@dataclasses.dataclass(frozen=True)
class BeforeState:
    armed: bool = True
    open_direction: str | None = None
    breaks: int = 0


def rule_before(
    state: BeforeState, snapshot: PairSnapshot, t: rules.Thresholds
) -> tuple[BeforeState, list[tuple[str, str, str]]]:
    """The rule as it was before the signal: the baseline, not production code.

    Entry on a ready, non-stale snapshot when armed and ADF p < max_adf_pvalue,
    |in-sample zscore| > entry_z and returns correlation >= min_correlation, all on
    that same snapshot; exit when |zscore| < exit_z (re-arms) or when ADF p is at
    or above the threshold (or null) for ``break_after`` snapshots in a row
    (relationship broken, stays disarmed). Events are (kind, direction, reason).
    """
    stats = snapshot.statistics
    z = stats.zscore
    if not snapshot.ready or snapshot.stale or z is None:
        return state, []
    armed, direction, breaks = state.armed, state.open_direction, state.breaks
    events = []
    if abs(z) < t.exit_z:
        if direction is not None:
            events.append(("exit", direction, "reverted"))
        armed, direction, breaks = True, None, 0
    elif direction is not None:
        p = stats.adf_pvalue
        breaks = breaks + 1 if p is None or p >= t.max_adf_pvalue else 0
        if breaks >= t.break_after:
            events.append(("exit", direction, "relationship_broken"))
            direction, breaks = None, 0
    p, r = stats.adf_pvalue, stats.correlation
    gates = p is not None and r is not None and p < t.max_adf_pvalue and abs(z) > t.entry_z and r >= t.min_correlation
    if armed and direction is None and gates:
        direction = rules.direction_of(z)
        events.append(("entry", direction, "entry"))
        armed = False
    return BeforeState(armed, direction, breaks), events


# -- one run: a market, its snapshots, both rules -----------------------------------


def demo_market(text: str) -> dict[str, Any]:
    """The offline exchange's options in ``text`` (``simulate_binance``'s spelling), as scenario options."""
    parser = argparse.ArgumentParser(prog="--demo-market", add_help=False)
    parser.add_argument("--seed", type=int, required=True)
    for name in ("--rate", "--half-life", "--spread-sigma", "--shock-every", "--shock-size"):
        parser.add_argument(name, type=float)
    return {k: v for k, v in vars(parser.parse_args(text.split())).items() if v is not None}


def aligned_bars(scenario: str, seconds: int, **options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pair's aligned 1 s closes over ``seconds`` of the scenario's trades, stamped as the exchange stamps them."""
    market = make_scenario(scenario, **options)
    batch = market.take(float(seconds), 10**9)
    next_id = {spec.symbol: spec.first_id for spec in market.specs}
    ticks = []
    for symbol, offset, price, quantity in zip(
        batch.symbols, batch.offsets, batch.prices, batch.quantities, strict=True
    ):
        ticks.append((int(T0 + offset * 1000), symbol, price, quantity, next_id[symbol]))
        next_id[symbol] += 1
    bars = build_bars(ticks, "1s")
    a, b = ([bar for bar in bars if bar.symbol == symbol] for symbol in PAIR["symbols"])
    series = align_closes(a, b, as_of=None, window=len(bars))
    return series.times, series.y, series.x


def run(task: dict[str, Any]) -> dict[str, Any]:
    """Replay one market through the snapshots and both rules; what each rule fired, and where the shocks fell."""
    started = time.perf_counter()
    shocks: list[tuple[float, float]] = task["options"].get("shocks", [])
    times, y, x = aligned_bars(task["scenario"], task["seconds"], **task["options"])
    shock_bars = {T0 + int(math.ceil(at)) * 1000: size for at, size in shocks}
    gates = task["gates"]  # the pair's confirm_bars and max_coint_pvalue
    thresholds = rules.Thresholds(**gates)
    new, old = rules.RuleState(), BeforeState()
    ready = confirmed = 0
    events: dict[str, list[tuple[int, str, str, str]]] = {"new": [], "old": []}
    at_shock: list[dict[str, Any]] = []
    previous_z: float | None = None
    for snapshot in snapshots_replay(times, y, x, **PAIR, thresholds=Thresholds(**gates)):
        as_of = snapshot.as_of
        assert as_of is not None
        if as_of in shock_bars:
            at_shock.append(
                {
                    "bar": as_of,
                    "size": shock_bars[as_of],
                    "confirmed": new.related_run >= thresholds.confirm_bars,
                    "armed_new": new.armed,
                    "armed_old": old.armed,
                    "signal_z": [previous_z, snapshot.signal_zscore],  # the bar before, the shock's, the next ones
                }
            )
        elif at_shock and len(at_shock[-1]["signal_z"]) < 2 + WITHIN:
            at_shock[-1]["signal_z"].append(snapshot.signal_zscore)
        previous_z = snapshot.signal_zscore
        if snapshot.ready:
            ready += 1
            confirmed += new.related_run >= thresholds.confirm_bars
        new, fired = rules.evaluate(new, snapshot, thresholds)
        events["new"] += [(as_of, e.kind, e.direction, e.reason) for e in fired]
        old, fired_before = rule_before(old, snapshot, thresholds)
        events["old"] += [(as_of, *e) for e in fired_before]
    for shock in at_shock:
        direction = rules.direction_of(shock["size"])
        # Whether the shock carried the spread past the entry threshold, in its direction, on its
        # bar or one of the next two: a shock onto a spread leaning the other way may not.
        sign = math.copysign(1.0, shock["size"])
        shock["past_entry"] = any(z is not None and sign * z > thresholds.entry_z for z in shock["signal_z"][1:])
        for name in ("new", "old"):
            delays = [
                (bar - shock["bar"]) // 1000
                for bar, kind, d, _ in events[name]
                if kind == "entry" and d == direction and 0 <= bar - shock["bar"] <= WITHIN * 1000
            ]
            shock[f"delay_{name}"] = delays[0] if delays else None  # bars after the shock's
            shock[f"alerted_{name}"] = bool(delays)
    return {
        **task,
        "ready": ready,
        "confirmed": confirmed,
        "events": events,
        "at_shock": at_shock,
        "seconds_taken": time.perf_counter() - started,
    }


# -- the runs and the table ----------------------------------------------------------


def tasks(
    seeds: int, minutes: int, shock_runs: int, demo: dict[str, Any], gates: dict[str, Any]
) -> list[dict[str, Any]]:
    """The runs: random-walk seeds, cointegrated runs with shocks (the demo market's spread), the demo market."""
    market = {name: demo[name] for name in ("rate", "half_life", "spread_sigma") if name in demo}
    walk_seconds = PAIR["min_bars"] - 1 + minutes * 60  # the first min_bars - 1 bars warm the window up
    walk = [
        {"kind": "random_walk", "scenario": "random_walk", "seed": seed, "seconds": walk_seconds, "options": market}
        for seed in range(1, seeds + 1)
    ]
    shocked = []
    for j in range(shock_runs):
        sizes = SHOCK_SIZES[j % len(SHOCK_SIZES) :] + SHOCK_SIZES[: j % len(SHOCK_SIZES)]
        sign = 1 if j % 2 == 0 else -1
        shocks = [(FIRST_SHOCK + i * SPACING, size * sign * (-1) ** i) for i, size in enumerate(sizes)]
        seconds = FIRST_SHOCK + len(sizes) * SPACING
        options = market | {"shocks": shocks}
        shocked.append(
            {"kind": "shocks", "scenario": "cointegrated", "seed": 100 + j, "seconds": seconds, "options": options}
        )
    for task in shocked + walk:
        task["options"] = task["options"] | {"seed": task["seed"]}
        task["gates"] = gates
    the_demo = {
        "kind": "demo",
        "scenario": "cointegrated",
        "seed": demo["seed"],
        "seconds": DEMO_SECONDS,
        "options": demo,
        "gates": gates,
    }
    return shocked + [the_demo] + walk  # the long runs first, so the cores finish together


def per_hour(result: dict[str, Any], rule: str) -> float:
    entries = sum(1 for _, kind, _, _ in result["events"][rule] if kind == "entry")
    return entries / (result["ready"] / 3600)


def spread_of(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} (sd {sd:.2f}, {min(values):.1f}-{max(values):.1f})"


def report(results: list[dict[str, Any]], demo_text: str) -> None:
    walk = sorted((r for r in results if r["kind"] == "random_walk"), key=lambda r: r["seed"])
    shocked = [r for r in results if r["kind"] == "shocks"]
    (demo,) = [r for r in results if r["kind"] == "demo"]

    print()
    hours = sum(r["ready"] for r in walk) / 3600
    print(
        f"random_walk, {len(walk)} seeds x {walk[0]['ready'] / 60:.0f} min of ready 1 s snapshots ({hours:.1f} h): "
        "false entries per hour, mean over seeds (sd, min-max)"
    )
    old = [per_hour(r, "old") for r in walk]
    new = [per_hour(r, "new") for r in walk]
    print(f"  rule before (in-sample z, ADF p, correlation on the same snapshot): {spread_of(old)}")
    confirm = walk[0]["gates"]["confirm_bars"]
    print(f"  rule now (signal z after {confirm} related snapshots):        {spread_of(new)}")
    mean_old, mean_new = statistics.fmean(old), statistics.fmean(new)
    ratio = f"{mean_old / mean_new:.1f}x fewer" if mean_new else "no entry at all"
    print(f"  ratio before / now: {ratio}")
    for name in ("old", "new"):
        reasons = Counter(reason for r in walk for _, kind, _, reason in r["events"][name] if kind == "exit")
        label = "before" if name == "old" else "now"
        print(f"  exits, rule {label}: {dict(reasons) or 'none'}")
    share = sum(r["confirmed"] for r in walk) / sum(r["ready"] for r in walk)
    seeds_with = sum(1 for v in new if v > 0)
    print(f"  snapshots after a confirmed relationship: {100 * share:.1f} %; seeds with a new-rule entry: {seeds_with}")

    print()
    hours = sum(r["ready"] for r in shocked) / 3600
    print(
        f"cointegrated with shocks, {len(shocked)} runs ({hours:.1f} h of ready snapshots, a shock every {SPACING} s): "
        f"shocks met by an armed rule and a confirmed relationship / of those, an entry within {WITHIN} bars"
    )
    print(
        f"  {'size':>6} {'shocks':>6} {'before: met':>12} {'alerted (on its bar)':>21} "
        f"{'now: met':>9} {'alerted (on its bar)':>21}  signal z on its bar"
    )
    all_shocks = [s for r in shocked for s in r["at_shock"]]
    for size in SHOCK_SIZES:
        rows = [s for s in all_shocks if abs(s["size"]) == size]
        met_old = [s for s in rows if s["armed_old"] and s["confirmed"]]
        met_new = [s for s in rows if s["armed_new"] and s["confirmed"]]
        zs = [abs(s["signal_z"][1]) for s in rows if s["signal_z"][1] is not None]
        z_text = f"{min(zs):.1f}-{max(zs):.1f}" if zs else "n/a"
        alerted = {
            name: f"{sum(s[f'alerted_{name}'] for s in met)} ({sum(s[f'delay_{name}'] == 0 for s in met)})"
            for name, met in (("old", met_old), ("new", met_new))
        }
        print(
            f"  {size:>5g}σ {len(rows):>6} {len(met_old):>12} {alerted['old']:>21} "
            f"{len(met_new):>9} {alerted['new']:>21}  {z_text}"
        )
    for name, label in (("old", "before"), ("new", "now")):
        for s in all_shocks:
            if s["confirmed"] and s[f"armed_{name}"] and not s[f"alerted_{name}"]:
                path = " ".join("n/a" if z is None else f"{z:+.2f}" for z in s["signal_z"])
                print(f"  missed, rule {label}: {s['size']:+g}σ, signal z the bar before, at the shock, after: {path}")
    for name, label in (("old", "before"), ("new", "now")):
        rates = [per_hour(r, name) for r in shocked]
        near = sum(
            1
            for r in shocked
            for bar, kind, _, _ in r["events"][name]
            if kind == "entry" and any(0 <= (bar - s["bar"]) // 1000 <= WITHIN for s in r["at_shock"])
        )
        total = sum(1 for r in shocked for _, kind, _, _ in r["events"][name] if kind == "entry")
        print(
            f"  true entries per hour, rule {label}: {statistics.fmean(rates):.1f} "
            f"({total} entries, {near} of them at a shock)"
        )
    share = sum(r["confirmed"] for r in shocked) / sum(r["ready"] for r in shocked)
    print(f"  snapshots after a confirmed relationship: {100 * share:.1f} %")
    met = [s for s in all_shocks if s["confirmed"] and s["armed_new"]]
    past = [s for s in met if s["past_entry"]]
    print(
        f"  shocks met by the rule now: {len(met)}, {len(past)} of them carried the spread past entry_z "
        f"(the others landed inside the entry band: no rule on |z| > entry_z fires there)"
    )
    print(
        f"goals, rule now: random-walk entries >= 3x fewer: {'met' if mean_old >= 3 * mean_new else 'NOT met'}; "
        f"<= 1 an hour: {'met' if mean_new <= 1 else 'NOT met'}; every shock met that carried the spread past "
        f"entry_z alerts within {WITHIN} bars: {'met' if all(s['alerted_new'] for s in past) else 'NOT met'} "
        f"({sum(s['alerted_new'] for s in past)} of {len(past)}); every shock met: "
        f"{sum(s['alerted_new'] for s in met)} of {len(met)}"
    )

    print()
    print(f"the demo market ({demo_text}), the first {DEMO_SECONDS // 60} minutes after it opens, rule now:")
    for bar, kind, direction, reason in demo["events"]["new"]:
        print(f"  {(bar - T0) / 1000 + 1:>5.0f} s  {kind:<5} {direction:<12} {reason}")  # when its bar closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="random-walk seeds")
    parser.add_argument("--minutes", type=int, default=30, help="minutes of ready snapshots per random-walk seed")
    parser.add_argument("--shock-runs", type=int, default=6, help="cointegrated runs, one shock of each size in each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--demo-market", default=DEMO_MARKET, help="the demo market's options (the Makefile's)")
    defaults = rules.Thresholds()
    parser.add_argument("--confirm-bars", type=int, default=defaults.confirm_bars, help="the pair's confirm_bars")
    parser.add_argument(
        "--max-coint-pvalue", type=float, default=defaults.max_coint_pvalue, help="the pair's max_coint_pvalue"
    )
    args = parser.parse_args()
    gates = {"confirm_bars": args.confirm_bars, "max_coint_pvalue": args.max_coint_pvalue}
    todo = tasks(args.seeds, args.minutes, args.shock_runs, demo_market(args.demo_market), gates)
    bars = sum(t["seconds"] for t in todo)
    print(f"alert quality: {len(todo)} runs, about {bars:,} snapshots (a pair_stats each) on {args.workers} processes")
    started = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run, task) for task in todo]
        for done, future in enumerate(as_completed(futures), 1):
            r = future.result()
            results.append(r)
            entries = {name: sum(1 for e in r["events"][name] if e[1] == "entry") for name in ("old", "new")}
            print(
                f"  [{done}/{len(todo)}] {r['kind']} seed {r['seed']}: {r['ready']} snapshots, entries before "
                f"{entries['old']} / now {entries['new']} ({r['seconds_taken']:.0f} s; "
                f"{time.perf_counter() - started:.0f} s in all)",
                flush=True,
            )
    report(results, args.demo_market)


if __name__ == "__main__":
    main()
