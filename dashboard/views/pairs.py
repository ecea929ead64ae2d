"""The pairs overview, the live pair page and its CSV downloads.

The pages are rendered with the current state (the cached snapshot and series, the
latest alerts, the feed health) so they are useful before the websocket connects;
the page script then keeps them live. Every number comes from the server: the
views only pick, label and format.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from rest_framework import serializers

from alerts.models import Alert
from alerts.rules import RuleState, direction_of
from alerts.selectors import alerts_newest, latest_alerts, open_entries, positions_newest, rule_state
from alerts.services import alert_payload, position_payload
from analytics import selectors as analytics_selectors
from analytics.bars import INTERVALS
from analytics.models import Pair
from analytics.services import (
    pair_current,
    pair_snapshot_current,
)
from analytics.snapshot import SOURCE_HISTORY, SOURCE_NONE, PairSnapshot, snapshot_from_json

from ..api import BarListApi, SeriesFilterSerializer
from ..formatting import (
    alert_z_text,
    bar_span_text,
    direction_text,
    duration_text,
    gate_pvalue_text,
    iso_utc,
    number_text,
    price_decimals,
    pvalue_text,
    qty_text,
    quote_currency,
    signed_text,
    stamp_text,
    threshold_text,
    tone,
)
from ..health import system_health
from ..throttles import CsvRateThrottle, PageRateThrottle, rate_limited
from .base import bad_request, csv_response, pair_config

#: Alerts shown on the pair page (the API pages through the rest).
ALERTS_SHOWN = 50


#: The CSVs' columns: the API's, with each time also in ISO 8601 UTC beside it (``time_utc``) and, in the series,
#: the hedge ratio its spread is computed with, last.
SERIES_COLUMNS = ("t", "time_utc", "price_a", "price_b", "spread", "zscore", "signal_zscore", "hedge_ratio")


BAR_COLUMNS = ("t", "time_utc", "open", "high", "low", "close", "volume", "trades")


# Quality components in display order, with what each one measures.
QUALITY_LABELS = {
    "stationarity": "Stationarity (ADF, EG p)",
    "correlation": "Returns correlation",
    "mean_reversion": "Mean reversion (half-life)",
    "fit": "Fit (R²)",
}


def entry_gates(snapshot: PairSnapshot) -> list[dict[str, Any]]:
    """The entry's checklist: each relationship gate with its value and threshold, the confirmation, the signal.

    ``ok`` is True/False on a ready snapshot (a missing value fails its gate, as in
    the rule) and None before. The page script writes the same texts
    (``renderGates``). An entry needs the previous snapshot's run to reach
    ``confirm_bars``: the run shown is this snapshot's, the one the next bar needs.
    """
    stats, th, ready = snapshot.statistics, snapshot.thresholds, snapshot.ready

    def check(value: float | None, passes: bool) -> bool | None:
        if not ready:
            return None
        return value is not None and passes

    def p_gate(key: str, label: str, value: float | None, limit: float) -> dict[str, Any]:
        shown = "—" if value is None else gate_pvalue_text(value)
        return {
            "key": key,
            "text": f"{label} {shown} < {threshold_text(limit)}",
            "ok": check(value, value is not None and value < limit),
        }

    corr, z = stats.correlation, snapshot.signal_zscore
    run, need = snapshot.related_run, th.confirm_bars
    return [
        p_gate("adf", "ADF p", stats.adf_pvalue, th.max_adf_pvalue),
        p_gate("coint", "EG p", stats.coint_pvalue, th.max_coint_pvalue),
        {
            "key": "corr",
            "text": f"correlation {'—' if corr is None else f'{corr:.2f}'} ≥ {threshold_text(th.min_correlation)}",
            "ok": check(corr, corr is not None and corr >= th.min_correlation),
        },
        {
            "key": "run",
            "text": f"related {run}/{need}",
            "ok": check(run, run >= need),
            "pct": min(100.0, 100.0 * run / need) if need else 0.0,
        },
        {
            "key": "z",
            "text": f"|signal z| {'—' if z is None else f'{abs(z):.2f}'} > {threshold_text(th.entry_z)}",
            "ok": None if not ready or z is None else abs(z) > th.entry_z,
        },
    ]


def pair_state(pair: Pair, snapshot: PairSnapshot, open_entry: RuleState | None) -> dict[str, Any]:
    """The state of a pair and its label: inactive, not computed yet, alerting (an entry is open),
    warming up, stale or ready.

    A leg that has stopped trading is named in the label ("stale: ETHUSDT"), during warm-up too.
    """
    if not pair.active:
        return {"key": "inactive", "label": "inactive"}
    if snapshot.source == SOURCE_NONE:
        return {"key": "pending", "label": "not computed yet"}
    if open_entry is not None:
        side = (open_entry.open_direction or "").replace("_", " ")
        return {"key": "alerting", "label": f"alerting: {side}"}
    stale = ", ".join(snapshot.stale_legs) if snapshot.stale else ""
    if not snapshot.ready:
        label = f"warming up {snapshot.warmup.bars or 0}/{snapshot.warmup.required}"
        return {"key": "warming", "label": f"{label} · stale: {stale}" if stale else label}
    if stale:
        return {"key": "stale", "label": f"stale: {stale}"}
    return {"key": "ready", "label": "ready"}


def overview_rows() -> list[dict[str, Any]]:
    pairs = list(Pair.objects.order_by("-active", "id"))
    entries = open_entries()
    alerts = latest_alerts([p.id for p in pairs])
    rows = []
    for pair in pairs:
        shown = pair_snapshot_current(pair=pair)  # an inactive pair's: its last recorded one
        snapshot = snapshot_from_json(shown)
        signal = snapshot.signal_zscore
        alert = alerts.get(pair.id)
        rows.append(
            {
                "pair": pair,
                "snapshot": shown,
                "state": pair_state(pair, snapshot, entries.get(pair.id)),
                "alert": alert,
                "alert_z_text": alert_z_text(alert.signal_zscore, alert.zscore) if alert else "",
                "alert_direction_text": alert.direction.replace("_", " ") if alert else "",
                "quote_a": quote_currency(pair.symbol_a),
                "quote_b": quote_currency(pair.symbol_b),
                "decimals_a_fmt": f"{price_decimals(pair.symbol_a, snapshot.price_a)}g",
                "decimals_b_fmt": f"{price_decimals(pair.symbol_b, snapshot.price_b)}g",
                "entry_z": pair.entry_z,
                "signal_text": signed_text(signal),
                "hot": signal is not None and abs(signal) > pair.entry_z,
                "adf_pvalue_text": pvalue_text(snapshot.statistics.adf_pvalue),
            }
        )
    return rows


def source_note(snapshot: PairSnapshot) -> str:
    """What the page says when the snapshot it shows is not the cycle's live one."""
    if snapshot.source == SOURCE_HISTORY:
        return "last recorded snapshot, not live: the snapshot cycle has not published a newer one yet"
    if snapshot.source == SOURCE_NONE:
        return "not computed yet: the snapshot cycle has not run for this pair"
    return ""


@require_GET
@rate_limited(PageRateThrottle)
def index(request: HttpRequest) -> HttpResponse:
    """Every pair at a glance."""
    health = system_health()
    # The feed as its colour says it (as the page script's health handler): ok, degraded or down.
    feed_word = health["status"] if health["feed"].get("connected") else "down"
    return render(request, "dashboard/index.html", {"rows": overview_rows(), "health": health, "feed_word": feed_word})


@require_GET
@rate_limited(PageRateThrottle)
def overview_rows_partial(request: HttpRequest) -> HttpResponse:
    """The overview table's rows, rendered as on the page; the index page refreshes them with it."""
    return render(request, "dashboard/partials/pair_rows.html", {"rows": overview_rows()})


@require_GET
@rate_limited(PageRateThrottle)
def pair_detail(request: HttpRequest, pair_id: int) -> HttpResponse:
    """The live page of one pair."""
    pair = get_object_or_404(Pair, pk=pair_id)
    shown, series = pair_current(pair=pair)
    snapshot = snapshot_from_json(shown)
    alerts = [alert_payload(a) for a in alerts_newest(pair_id=pair.id)[:ALERTS_SHOWN]]
    health = system_health()
    rule = rule_state(pair_id=pair.id)
    open_entry = rule if rule.open_direction is not None else None
    previous_run = (
        analytics_selectors.related_run_before(pair_id=pair.id, as_of=snapshot.as_of) if snapshot.as_of else 0
    )
    decimals_a = price_decimals(pair.symbol_a, snapshot.price_a)
    decimals_b = price_decimals(pair.symbol_b, snapshot.price_b)
    config = {
        **pair_config(pair),
        "window": pair.window,
        "decimals_a": decimals_a,
        "decimals_b": decimals_b,
        # The spread is in units of A's price: one more decimal than A's tick.
        "decimals_spread": decimals_a + 1,
        "quote": quote_currency(pair.symbol_a),
        "ws_path": f"/ws/pairs/{pair.id}/",
        "alerts_url": f"{reverse('api-alerts')}?pair={pair.id}",
        "open_entry": open_entry.as_dict() if open_entry else None,
        "rule_armed": rule.armed,
        "previous_run": previous_run,
        "alerts_shown": ALERTS_SHOWN,
        "positions_url": f"{reverse('api-positions')}?{urlencode({'pair': pair.id})}",
        "positions_closed_shown": POSITIONS_CLOSED_SHOWN,
    }
    positions = [position_payload(row) for row in positions_newest(pair_id=pair.id)[:POSITIONS_FETCHED]]
    quality = snapshot.statistics.quality or {}
    last_tick_at = health["feed"].get("last_tick_at")
    alerts_display = [
        {
            **a,
            "time_text": stamp_text(a["created_at"]),
            "direction_text": a["direction"].replace("_", " "),
            "z_text": alert_z_text(a["signal_zscore"], a["zscore"]),
        }
        for a in alerts
    ]
    context = {
        "pair": pair,
        "alerts_display": alerts_display,
        "as_of_text": stamp_text(snapshot.as_of),
        "as_of_span": bar_span_text(snapshot.as_of, INTERVALS[pair.interval]),
        "snapshot": shown,
        "series": series,
        "alerts": alerts,
        "health": health,
        "tick_age_s": (time.time() * 1000 - last_tick_at) / 1000 if last_tick_at else None,
        "config": config,
        "state": pair_state(pair, snapshot, open_entry),
        "source_note": source_note(snapshot),
        # floatformat arguments: fixed decimals with thousands separators
        "decimals_a_fmt": f"{decimals_a}g",
        "decimals_b_fmt": f"{decimals_b}g",
        "decimals_spread_fmt": f"{decimals_a + 1}g",
        "half_life_text": half_life_text(snapshot),
        "signal_text": signed_text(snapshot.signal_zscore),
        "zscore_text": signed_text(snapshot.statistics.zscore),
        "zone": zone_of(snapshot, rule, previous_run),
        "entry_z_text": threshold_text(snapshot.thresholds.entry_z),
        "exit_z_text": threshold_text(snapshot.thresholds.exit_z),
        "warmup_text": warmup_text(snapshot, INTERVALS[pair.interval]),
        "quote": quote_currency(pair.symbol_a),
        "gates": entry_gates(snapshot),
        "thresholds": snapshot.thresholds,
        "warmup_pct": _warmup_pct(snapshot),
        "quality_rows": [
            {"key": key, "label": label, **quality[key], "max_points": 100 * quality[key]["weight"]}
            for key, label in QUALITY_LABELS.items()
            if key in quality
        ],
        "bars_symbols": pair.symbols,
        "positions": positions,
        "position": position_card(positions, pair, decimals_a, decimals_b),
    }
    return render(request, "dashboard/pair.html", context)


#: The closed paper positions the pair page lists (the API pages through the rest), and the newest
#: positions it reads for them and the open one.
POSITIONS_CLOSED_SHOWN = 5


POSITIONS_FETCHED = 50


POSITION_REASONS = {str(value): str(label) for value, label in Alert.Reason.choices}


def position_card(positions: list[dict[str, Any]], pair: Pair, decimals_a: int, decimals_b: int) -> dict[str, Any]:
    """The pair page's paper position card: the open position in words and figures, the last closed ones.

    ``positions`` are the API's (``position_payload``), newest first; the page
    script writes the same texts from ``/api/positions/`` (``renderPosition``).
    Fills with two decimals more than the instrument's tick, the own spread with
    the spread's decimals.
    """
    open_one = next((p for p in positions if p["open"]), None)
    closed = [p for p in positions if not p["open"]][:POSITIONS_CLOSED_SHOWN]
    card: dict[str, Any] = {"open": None, "closed": []}
    if open_one is not None:
        p = open_one
        way, _, legs = direction_text(p["direction"], pair.symbols).partition(" (")
        card["open"] = {
            "id": p["id"],
            "direction": p["direction"],
            "way": way,
            "legs": f"({legs}",
            "since": f"{stamp_text(p['opened_at'])} UTC",
            "mark": f"{stamp_text(p['mark_time'])} UTC" if p["mark_time"] is not None else "not marked yet",
            "hedge_ratio": number_text(p["hedge_ratio"], 4),
            "qty_a": qty_text(p["qty_a"]),
            "qty_b": qty_text(p["qty_b"]),
            "entry_a": number_text(p["entry_price_a"], decimals_a + 2),
            "entry_b": number_text(p["entry_price_b"], decimals_b + 2),
            "spread": number_text(p["spread"], decimals_a + 1),
            "unrealised": number_text(p["unrealised_pnl"], 2, signed=True),
            "unrealised_pct": number_text(p["unrealised_pct"], 2, signed=True),
            "tone": tone(p["unrealised_pnl"]),
            "notional": number_text(p["notional"], 2),
            "entry_fees": number_text(p["entry_fees"], 2),
        }
    for p in closed:
        card["closed"].append(
            {
                "id": p["id"],
                "direction": p["direction"],
                "way": p["direction"].split("_")[0],
                "entry": stamp_text(p["opened_at"]),
                "exit": _exit_stamp(p["opened_at"], p["closed_at"]),
                "held": duration_text((p["closed_at"] - p["opened_at"]) / 1000),
                "reason": POSITION_REASONS.get(p["reason"], p["reason"].replace("_", " ")),
                "pnl": number_text(p["realised_pnl"], 2, signed=True),
                "tone": tone(p["realised_pnl"]),
            }
        )
    return card


def _exit_stamp(entry: int, exit_: int) -> str:
    """An exit's time beside its entry's: HH:MM:SS, with MM-DD when it is another day."""
    shown = stamp_text(exit_)
    return shown if shown[:5] != stamp_text(entry)[:5] else shown[6:]


def zone_of(snapshot: PairSnapshot, rule: RuleState | None = None, previous_run: int = 0) -> dict[str, str]:
    """Where the signal z stands and what the pair's rule does about it, in a trader's words
    (as the page script's ``zoneOf``).

    ``rule``: the pair's alert-rule state (an open entry, armed or not);
    ``previous_run``: the ``related_run`` of the snapshot before this one, which an
    entry on this one needs (docs/analytics.md, "Alert rule"). Beyond the entry line
    the trade is named only when it is open or the rule would enter on this snapshot;
    otherwise the words say why not.
    """
    z, th = snapshot.signal_zscore, snapshot.thresholds
    if z is None:
        return {"key": "none", "label": "no signal yet" if snapshot.ready else "warming up"}
    side = "high" if z > 0 else "low"
    trade = "short the spread" if z > 0 else "long the spread"
    held = rule.open_direction if rule is not None else None
    if held is not None:
        position = held.replace("_", " ")
        unusable = _unusable(snapshot)
        if unusable is not None:  # the rule acts on nothing until the snapshot is usable again
            return {"key": "hold", "label": f"{position} open, {unusable}"}
        if abs(z) < th.exit_z:
            return {"key": "exit", "label": f"back at the mean: exit the {position}"}
        if abs(z) > th.entry_z and held == direction_of(z):
            return {"key": f"entry-{side}", "label": f"stretched {side}: {position} open"}
        return {"key": "hold", "label": f"{position} open, exit inside ±{threshold_text(th.exit_z)}"}
    if abs(z) > th.entry_z:
        why = _no_entry_reason(snapshot, rule, previous_run)
        if why is None:
            return {"key": f"entry-{side}", "label": f"stretched {side}: {trade}"}
        return {"key": "unrelated", "label": f"stretched {side}, no trade: {why}"}
    if abs(z) < th.exit_z:
        return {"key": "exit", "label": "back at the mean"}
    return {"key": "between", "label": f"leaning {side}, inside ±{threshold_text(th.entry_z)}"}


def _unusable(snapshot: PairSnapshot) -> str | None:
    """Why the rule fires nothing on this snapshot whatever its z (warming up, a silent leg), or None."""
    if not snapshot.ready:
        return "warming up"
    if snapshot.stale:
        return f"{', '.join(snapshot.stale_legs)} silent"
    return None


def _no_entry_reason(snapshot: PairSnapshot, rule: RuleState | None, previous_run: int) -> str | None:
    """Why the rule would not enter on this snapshot beyond the entry line, or None when it would."""
    unusable = _unusable(snapshot)
    if unusable is not None:
        return unusable
    if rule is not None and not rule.armed:
        return "this move was traded; waits for the mean"
    # The confirmation is the run before this snapshot: exactly one less than its own when it is related.
    before = snapshot.related_run - 1 if snapshot.related and snapshot.related_run > 0 else previous_run
    need = snapshot.thresholds.confirm_bars
    if before < need:
        return f"related {before}/{need} bars before this one"
    return None


def warmup_text(snapshot: PairSnapshot, interval_ms: int) -> str:
    """What the warm-up tile promises: the bars to go and, only while both legs trade, how long that takes."""
    if snapshot.ready:
        return f"{snapshot.n}/{snapshot.window} bars in the window"
    togo = max(0, snapshot.warmup.required - (snapshot.warmup.bars or 0))
    if snapshot.stale:
        # A silent leg closes no bars: no time can be promised until it trades again.
        return f"{togo} bars to go · waiting for {', '.join(snapshot.stale_legs)} to trade"
    return f"{togo} bars to go · ~{duration_text(togo * interval_ms / 1000)} if both legs keep trading"


def half_life_text(snapshot: PairSnapshot) -> str:
    """The half-life in bars and as a duration (as the page script writes it): "12.3 bars · 2m 28s"."""
    stats = snapshot.statistics
    if stats.half_life is None:
        return "— (not reverting)" if snapshot.ready else "—"
    return f"{number_text(stats.half_life, 1)} bars · {duration_text(stats.half_life_seconds)}"


def _warmup_pct(snapshot: PairSnapshot) -> float:
    required = snapshot.warmup.required
    if not required:
        return 0.0
    return min(100.0, 100.0 * (snapshot.warmup.bars or 0) / required)


@require_GET
@rate_limited(CsvRateThrottle)
def series_csv(request: HttpRequest, pair_id: int) -> HttpResponse:
    """The window's chart series (as ``/api/pairs/{id}/series/``, ``?limit=N`` too), one row per bar, with the
    hedge ratio of the window's model: the spread of every row is ``price_a - hedge_ratio * price_b``."""
    pair = get_object_or_404(Pair, pk=pair_id)
    params = SeriesFilterSerializer(data=request.GET)
    if not params.is_valid():
        return bad_request(params.errors)
    snapshot, series = pair_current(pair=pair)
    if snapshot.get("as_of") != series.get("as_of"):  # the cycle cached a new bar between the two reads
        snapshot, series = pair_current(pair=pair)
    if (limit := params.validated_data.get("limit")) is not None:
        series = {k: (v[-limit:] if isinstance(v, list) else v) for k, v in series.items()}
    hedge_ratio = snapshot.get("hedge_ratio")
    rows = [
        [t, iso_utc(t), price_a, price_b, spread, zscore, signal, None if spread is None else hedge_ratio]
        for t, price_a, price_b, spread, zscore, signal in zip(
            *(series[c] for c in ("t", "price_a", "price_b", "spread", "zscore", "signal_zscore")), strict=True
        )
    ]
    filename = f"{pair.symbol_a}-{pair.symbol_b}-{pair.interval}-series-{series.get('as_of') or 'empty'}.csv"
    return csv_response(filename, SERIES_COLUMNS, rows)


class BarsCsvFilter(BarListApi.FilterSerializer):
    """The API's bar filter, with the symbol restricted to the pair's legs."""

    symbol = serializers.CharField()

    def validate_symbol(self, value: str) -> str:
        pair = self.context["pair"]
        symbol = value.strip().upper()
        if symbol not in pair.symbols:
            raise serializers.ValidationError(f"must be one of the pair's legs: {pair.symbol_a} or {pair.symbol_b}")
        return symbol


@require_GET
@rate_limited(CsvRateThrottle)
def bars_csv(request: HttpRequest, pair_id: int) -> HttpResponse:
    """Bars of one leg of the pair, as ``/api/bars/`` gives them: ``?symbol=`` (default leg A),
    ``interval`` (default the pair's), ``start``, ``end``, ``limit`` (default the window)."""
    pair = get_object_or_404(Pair, pk=pair_id)
    params = {
        "symbol": pair.symbol_a,
        "interval": pair.interval,
        "limit": min(pair.window, 5000),
        **{k: v for k, v in request.GET.items() if k in ("symbol", "interval", "start", "end", "limit")},
    }
    serializer = BarsCsvFilter(data=params, context={"pair": pair})
    if not serializer.is_valid():
        return bad_request(serializer.errors)
    query = serializer.validated_data
    bars = analytics_selectors.bars_for_symbol(**query)
    data = BarListApi.OutputSerializer(bars, many=True).data
    filename = f"{query['symbol']}-{query['interval']}-bars.csv"
    rows = [[bar["t"], iso_utc(bar["t"]), *(bar[c] for c in BAR_COLUMNS[2:])] for bar in data]
    return csv_response(filename, BAR_COLUMNS, rows)
