"""Chart series sent as deltas: the full window once, then what each new snapshot changes.

Pure functions, no Django. A snapshot moves the window by its new bars: the prices
of the points that stay do not change, new points are appended, the oldest drop
out; nor does the signal z of a point (recorded when its bar closed). The spread
and z-score of *every* point do change (the hedge ratio, mean and std are
re-estimated on each window), so a delta carries the new points and the window's
model, and the page rescales: ``spread = price_a - hedge_ratio *
price_b`` and ``zscore = (spread - spread_mean) / spread_std``, the very IEEE
operations numpy performs for the full series. The server only sends a delta after
checking that applying it (``series_delta_apply``, which the page script mirrors)
gives exactly the series it computed; otherwise it sends the full series.
"""

from __future__ import annotations

import math
from typing import Any

#: What a point keeps once it is in the window: its time, prices and the signal z recorded when its bar closed.
POINT_KEYS = ("t", "price_a", "price_b", "signal_zscore")
SERIES_KEYS = ("t", "price_a", "price_b", "spread", "zscore", "signal_zscore")


def series_delta(
    previous: dict[str, Any] | None, current: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any] | None:
    """The delta turning ``previous`` into ``current`` under ``model`` (a snapshot), or None when there is none.

    Returns
    -------
    dict or None
        ``{pair, as_of, base_as_of, drop, t, price_a, price_b, signal_zscore,
        hedge_ratio, spread_mean, spread_std}``: drop ``drop`` points from the front,
        append the points of ``t``/``price_a``/``price_b``/``signal_zscore``, recompute
        the spread and z-score.
        None when ``previous`` is missing or not an older window of the same pair,
        or when applying the delta would not give ``current`` exactly.
    """
    if previous is None or previous.get("pair") != current.get("pair"):
        return None
    old_t, new_t = previous.get("t") or [], current.get("t") or []
    if not old_t or not new_t or previous.get("as_of") is None or previous["as_of"] >= current.get("as_of", 0):
        return None
    drop = next((k for k, t in enumerate(old_t) if t >= new_t[0]), len(old_t))
    kept = len(old_t) - drop
    if kept > len(new_t):
        return None
    delta = {
        "pair": current["pair"],
        "as_of": current["as_of"],
        "base_as_of": previous["as_of"],
        "drop": drop,
        **{key: current[key][kept:] for key in POINT_KEYS},
        "hedge_ratio": model.get("hedge_ratio") if model.get("ready") else None,
        "spread_mean": model.get("spread_mean") if model.get("ready") else None,
        "spread_std": model.get("spread_std") if model.get("ready") else None,
    }
    try:
        applied = series_delta_apply(previous, delta)
    except (TypeError, ValueError, IndexError, KeyError):  # KeyError: a series cached by older code
        return None
    return delta if all(applied[key] == current[key] for key in SERIES_KEYS) else None


def series_delta_apply(previous: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``previous`` moved by ``delta`` (what the page script does, operation for operation)."""
    series: dict[str, Any] = {"pair": delta["pair"], "as_of": delta["as_of"]}
    for key in POINT_KEYS:
        series[key] = list(previous[key][delta["drop"] :]) + list(delta[key])
    beta, mean, std = delta["hedge_ratio"], delta["spread_mean"], delta["spread_std"]
    spread: list[float | None] = []
    zscore: list[float | None] = []
    for a, b in zip(series["price_a"], series["price_b"], strict=True):
        s = a - beta * b if beta is not None and a is not None and b is not None else None
        s = s if s is not None and math.isfinite(s) else None
        spread.append(s)
        z = None
        if s is not None and mean is not None and std is not None and std > 0:
            z = (s - mean) / std
            z = z if math.isfinite(z) else None
        zscore.append(z)
    series["spread"], series["zscore"] = spread, zscore
    return series
