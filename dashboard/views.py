"""Server-rendered pages: the pairs overview, the live pair page and its backtests, the screener, plus CSV downloads.

The pages are rendered with the current state (the cached snapshot and series, the
latest alerts, the feed health) so they are useful before the websocket connects;
the page script then keeps them live. Every number comes from the server: the
views only pick, label and format.
"""

from __future__ import annotations

import csv
import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from rest_framework import serializers

from alerts.models import Alert
from alerts.rules import RuleState
from alerts.selectors import alerts_newest, latest_alerts, open_entries, positions_newest
from alerts.services import alert_payload, position_payload
from analytics import selectors as analytics_selectors
from analytics.bars import INTERVALS
from analytics.models import Backtest, Pair, ScreenerRun
from analytics.services import (
    BACKTEST_DEFAULT_DAYS,
    SCREENER_INTERVALS,
    backtest_json,
    pair_current,
    pair_snapshot_current,
    screener_latest,
)
from analytics.snapshot import SOURCE_HISTORY, SOURCE_NONE, PairSnapshot, snapshot_from_json

from .api import BACKTESTS_LISTED, BarListApi, SeriesFilterSerializer
from .health import system_health
from .throttles import CsvRateThrottle, PageRateThrottle, rate_limited

#: Price decimals of the instruments we know (Binance USD-M tick sizes); others by magnitude.
PRICE_DECIMALS = {"BTCUSDT": 1, "ETHUSDT": 2, "BNBUSDT": 2, "SOLUSDT": 2, "XRPUSDT": 4, "DOGEUSDT": 5}

#: Alerts shown on the pair page (the API pages through the rest).
ALERTS_SHOWN = 50

SERIES_COLUMNS = ("t", "price_a", "price_b", "spread", "zscore", "signal_zscore")
BAR_COLUMNS = ("t", "open", "high", "low", "close", "volume", "trades")

# Quality components in display order, with what each one measures.
QUALITY_LABELS = {
    "stationarity": "Stationarity (ADF, EG p)",
    "correlation": "Returns correlation",
    "mean_reversion": "Mean reversion (half-life)",
    "fit": "Fit (R²)",
}


def price_decimals(symbol: str, price: float | None) -> int:
    """Decimals to show a price of ``symbol`` with: its tick size when known, else by magnitude."""
    if symbol in PRICE_DECIMALS:
        return PRICE_DECIMALS[symbol]
    if not price or not math.isfinite(price):
        return 2
    magnitude = math.floor(math.log10(abs(price)))
    if magnitude >= 4:  # 10,000 and up: 0.1
        return 1
    if magnitude >= 2:  # 100 to 9,999: 0.01
        return 2
    return min(8, 4 - magnitude)  # 14.123 -> 3, 2.5 -> 4, 0.45 -> 5


def pvalue_text(value: float | None) -> str:
    """A p-value as the pages show it: 4 decimals, "<0.0001" below that."""
    if value is None:
        return "—"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def signed_text(value: float | None, decimals: int = 2) -> str:
    """A signed number as the page script's ``fmtSigned`` writes it: "+1.23", "-1.23", "0.00"."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{abs(value):.{decimals}f}"
    if float(text) == 0:
        return text
    return ("+" if value > 0 else "-") + text


def threshold_text(value: float) -> str:
    """A threshold as the gates show it: at least 2 decimals, up to 4 ("0.05", "0.60", "2.00", "0.0125")."""
    text = f"{value:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def gate_pvalue_text(value: float) -> str:
    """A p-value in a gate: 3 decimals, "<0.001" below that."""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def alert_z_text(signal_zscore: float | None, zscore: float | None) -> str:
    """The z an alert fired on: its signal z, or the in-sample z of alerts recorded before signals."""
    if signal_zscore is not None:
        return f"signal z {signed_text(signal_zscore)}"
    return f"z {signed_text(zscore)} in-sample"


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
    return render(request, "dashboard/index.html", {"rows": overview_rows(), "health": system_health()})


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
    open_entry = open_entries().get(pair.id)
    decimals_a = price_decimals(pair.symbol_a, snapshot.price_a)
    decimals_b = price_decimals(pair.symbol_b, snapshot.price_b)
    config = {
        "pair": pair.id,
        "symbol_a": pair.symbol_a,
        "symbol_b": pair.symbol_b,
        "interval": pair.interval,
        "interval_ms": INTERVALS[pair.interval],
        "window": pair.window,
        "decimals_a": decimals_a,
        "decimals_b": decimals_b,
        # The spread is in units of A's price: one more decimal than A's tick.
        "decimals_spread": decimals_a + 1,
        "ws_path": f"/ws/pairs/{pair.id}/",
        "alerts_url": f"{reverse('api-alerts')}?pair={pair.id}",
        "open_entry": open_entry.as_dict() if open_entry else None,
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
            "time_text": _stamp(a["created_at"]),
            "direction_text": a["direction"].replace("_", " "),
            "z_text": alert_z_text(a["signal_zscore"], a["zscore"]),
        }
        for a in alerts
    ]
    context = {
        "pair": pair,
        "alerts_display": alerts_display,
        "as_of_text": _stamp(snapshot.as_of),
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
        "half_life_s": snapshot.statistics.half_life_seconds,
        "signal_text": signed_text(snapshot.signal_zscore),
        "zscore_text": signed_text(snapshot.statistics.zscore),
        "zone": _zone(snapshot),
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
            "since": f"{_stamp(p['opened_at'])} UTC",
            "mark": f"{_stamp(p['mark_time'])} UTC" if p["mark_time"] is not None else "not marked yet",
            "hedge_ratio": number_text(p["hedge_ratio"], 4),
            "qty_a": _qty_text(p["qty_a"]),
            "qty_b": _qty_text(p["qty_b"]),
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
                "entry": _stamp(p["opened_at"]),
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
    shown = _stamp(exit_)
    return shown if shown[:5] != _stamp(entry)[:5] else shown[6:]


def _qty_text(quantity: float) -> str:
    """A signed quantity as the trades show it: + bought, - sold, 6 significant digits."""
    return ("+" if quantity > 0 else "") + significant_text(quantity, 6)


def _stamp(ms: int | None) -> str:
    """MM-DD HH:MM:SS (UTC) of a ms timestamp, as the page script shows times."""
    if ms is None:
        return "—"
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _zone(snapshot: PairSnapshot) -> dict[str, str]:
    """Where the signal z stands against the thresholds (as the page script's ``renderSnapshot``)."""
    z, th = snapshot.signal_zscore, snapshot.thresholds
    if z is None:
        return {"key": "none", "label": "no signal yet" if snapshot.ready else "warming up"}
    if abs(z) > th.entry_z:
        return {
            "key": "entry-high" if z > 0 else "entry-low",
            "label": "short-spread zone" if z > 0 else "long-spread zone",
        }
    if abs(z) < th.exit_z:
        return {"key": "exit", "label": "inside exit"}
    return {"key": "between", "label": "between"}


def _warmup_pct(snapshot: PairSnapshot) -> float:
    required = snapshot.warmup.required
    if not required:
        return 0.0
    return min(100.0, 100.0 * (snapshot.warmup.bars or 0) / required)


# -- CSV downloads --------------------------------------------------------------


def _bad_request(errors: dict) -> HttpResponseBadRequest:
    """A 400 naming each bad parameter, as plain text (the client asked for a file)."""
    message = "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in errors.items())
    return HttpResponseBadRequest(message + "\n", content_type="text/plain; charset=utf-8")


def _csv_response(filename: str, header: tuple[str, ...], rows: list[list[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return response


@require_GET
@rate_limited(CsvRateThrottle)
def series_csv(request: HttpRequest, pair_id: int) -> HttpResponse:
    """The window's chart series (as ``/api/pairs/{id}/series/``, ``?limit=N`` too), one row per bar."""
    pair = get_object_or_404(Pair, pk=pair_id)
    params = SeriesFilterSerializer(data=request.GET)
    if not params.is_valid():
        return _bad_request(params.errors)
    _, series = pair_current(pair=pair)
    if (limit := params.validated_data.get("limit")) is not None:
        series = {k: (v[-limit:] if isinstance(v, list) else v) for k, v in series.items()}
    rows = [list(values) for values in zip(*(series[c] for c in SERIES_COLUMNS), strict=True)]
    filename = f"{pair.symbol_a}-{pair.symbol_b}-{pair.interval}-series-{series.get('as_of') or 'empty'}.csv"
    return _csv_response(filename, SERIES_COLUMNS, rows)


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
        return _bad_request(serializer.errors)
    query = serializer.validated_data
    bars = analytics_selectors.bars_for_symbol(**query)
    data = BarListApi.OutputSerializer(bars, many=True).data
    filename = f"{query['symbol']}-{query['interval']}-bars.csv"
    return _csv_response(filename, BAR_COLUMNS, [[bar[c] for c in BAR_COLUMNS] for bar in data])


# -- backtests --------------------------------------------------------------------

#: Trades listed on the backtest page (trades.csv has every one).
TRADES_SHOWN = 500
#: Points of each backtest chart at most: every point, or the lowest and highest of each stretch.
CHART_POINTS = 2000
#: Where the funding a backtest pays comes from (docs/analytics.md, "Backtest").
FUNDING_SOURCE = "Binance fundingRate (/fapi/v1/fundingRate)"
REASON_TEXTS = {
    "reverted": "reverted inside exit",
    "relationship_broken": "relationship broken",
    "end": "end of the range",
}
STATUS_TEXTS = {
    Backtest.Status.QUEUED: "queued: the runner takes one backtest at a time, every 2 s",
    Backtest.Status.RUNNING: "running",
    Backtest.Status.DONE: "done",
    Backtest.Status.FAILED: "failed",
}
TRADES_COLUMNS = (
    "entry_time",
    "entry_time_utc",
    "exit_time",
    "exit_time_utc",
    "direction",
    "reason",
    "hedge_ratio",
    "qty_a",
    "qty_b",
    "entry_price_a",
    "entry_price_b",
    "exit_price_a",
    "exit_price_b",
    "fees",
    "funding",
    "pnl",
)
EQUITY_COLUMNS = ("t", "time_utc", "equity", "drawdown")
#: Decimals a fill has beyond its instrument's tick: a whole bp of slippage moves a price by exactly 4.
FILL_EXTRA_DECIMALS = 4


def utc_text(ms: int | None) -> str:
    """YYYY-MM-DD HH:MM:SS (UTC) of a ms timestamp."""
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def iso_utc(ms: int) -> str:
    """ISO 8601 (UTC, to the second, or to the ms when it has them) of a ms timestamp: 2026-01-01T00:00:00Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def duration_text(seconds: float | None) -> str:
    """A duration as the page script's ``duration`` writes it: "0.4 s", "12 s", "4m 05s", "2h 03m"."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {round(seconds % 60):02d}s"
    if seconds < 86_400 * 2:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86_400)}d {int(seconds % 86_400 // 3600):02d}h"


def number_text(value: float | None, decimals: int = 2, *, signed: bool = False) -> str:
    """A number with thousands separators and fixed decimals ("—" for none); ``signed``: "+1,234.50", "-0.25"."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    if value < 0:
        return "-" + text
    return "+" + text if signed else text


def significant_text(value: float, digits: int = 8) -> str:
    """``value`` to ``digits`` significant digits, written out (never 1e-05): 0.10309278, -2061.8557."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        text = format(Decimal(text), "f")
    return "0" if float(text) == 0 else text


def decimal_text(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals``, without trailing zeros: 97009.80001, 3012.5."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if float(text) == 0 else text


def tone(value: float | None, decimals: int = 2) -> str:
    """ "pos", "neg" or "" for a figure as shown with ``decimals`` (a PnL that shows 0.00 is neither)."""
    if value is None or not math.isfinite(value) or round(value, decimals) == 0:
        return ""
    return "pos" if value > 0 else "neg"


def direction_text(direction: str, symbols: tuple[str, str]) -> str:
    """A trade's direction in words, with the legs it buys and sells."""
    a, b = symbols
    if direction == "long_spread":
        return f"long spread (buy {a}, sell {b})"
    return f"short spread (sell {a}, buy {b})"


def drawdown_of(equity: np.ndarray) -> np.ndarray:
    """``max(0, equity_0..k) - equity_k`` at each grid point: the max drawdown is its largest (docs/analytics.md)."""
    if equity.size == 0:
        return equity
    peak = np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:]
    return peak - equity


def chart_points(t: np.ndarray, values: np.ndarray, limit: int = CHART_POINTS) -> dict[str, list]:
    """At most about ``limit`` points of a line: all of them, or the ends and the lowest and highest of each stretch."""
    n = int(t.size)
    if n <= limit:
        return {"t": t.tolist(), "y": values.tolist()}
    edges = np.linspace(0, n, limit // 2 + 1).astype(int)
    keep = {0, n - 1}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            part = values[lo:hi]
            keep.update((lo + int(np.argmin(part)), lo + int(np.argmax(part))))
    index = np.array(sorted(keep))
    return {"t": t[index].tolist(), "y": values[index].tolist()}


def _datetime_text(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _funding_text(backtest: Backtest) -> str:
    if not backtest.params.get("funding"):
        return "off: none paid or received"
    if backtest.status != Backtest.Status.DONE:
        return f"on · {FUNDING_SOURCE}, where a funding time falls inside a held position"
    source = (backtest.result or {}).get("funding") or {}
    if source.get("error"):
        return f"on, but none could be had: {source['error']}; the run is without funding"
    rates = source.get("rates", 0)
    trades = (backtest.result or {}).get("trades") or []
    if not any(trade["funding"] for trade in trades):
        return f"on · {FUNDING_SOURCE}: {rates} rates in the range, none inside a held position"
    paid = (backtest.summary or {}).get("funding")
    return f"on · {FUNDING_SOURCE}: {rates} rates in the range, {number_text(paid, 2, signed=True)} paid (net)"


def backtest_assumptions(pair: Pair, backtest: Backtest) -> list[dict[str, str]]:
    """What a backtest assumed, in words: its range, the rule as it was, the costs, the fills, funding."""
    p = backtest.params
    interval_ms = INTERVALS[p["interval"]]
    bars = (backtest.summary or {}).get("bars")
    in_range = f"{utc_text(p['start'])} → {utc_text(p['end'])} UTC"
    if bars is not None:
        in_range += f" · {bars:,} {p['interval']} bars"
    in_range += f"; the {p['window']:,} bars before it as history only (nothing fired there is traded)"
    rule = (
        f"the pair's alert rule as it was asked: entry ±{threshold_text(p['entry_z'])}, exit "
        f"±{threshold_text(p['exit_z'])}, window {p['window']}, related for {p['confirm_bars']} bars "
        f"(ADF p < {threshold_text(p['max_adf_pvalue'])}, EG p < {threshold_text(p['max_coint_pvalue'])}, "
        f"correlation ≥ {threshold_text(p['min_correlation'])})"
    )
    delay = p["delay_bars"]
    if delay:
        fills = (
            f"{delay} bar{'s' if delay != 1 else ''} ({duration_text(delay * interval_ms / 1000)}): "
            f"filled at the closes {delay} bar{'s' if delay != 1 else ''} after the signal's"
        )
    else:
        fills = "0 bars: filled at the closes of the bar the signal fired on"
    return [
        {"key": "range", "label": "Range", "text": in_range},
        {"key": "rule", "label": "Rule", "text": rule},
        {
            "key": "notional",
            "label": "Notional",
            "text": f"{number_text(p['notional'], 2)} quote currency of {pair.symbol_a} a trade, "
            f"{pair.symbol_b} hedged by the signal's β",
        },
        {
            "key": "fee",
            "label": "Fee",
            "text": f"{p['fee_bps']:g} bps of each leg's filled notional, at entry and at exit (a taker fee)",
        },
        {
            "key": "slippage",
            "label": "Slippage",
            "text": f"{p['slippage_bps']:g} bps: every fill moved against the trade",
        },
        {"key": "delay", "label": "Fill delay", "text": fills},
        {"key": "funding", "label": "Funding", "text": _funding_text(backtest)},
    ]


def summary_cards(summary: dict[str, Any], interval_ms: int) -> list[dict[str, str]]:
    """The summary's figures as the page's tiles: value, the line under it and its tone."""
    s = summary
    win_rate = s["win_rate"]
    holding = s["mean_holding_bars"]
    gross, fees, funding = s["gross_pnl"], s["fees"], s["funding"]
    return [
        {
            "key": "net_pnl",
            "label": "Net PnL",
            "value": number_text(s["net_pnl"], 2, signed=True),
            "sub": f"gross {number_text(gross, 2, signed=True)} − fees {number_text(fees)} − funding "
            f"{number_text(funding, 2, signed=True)}",
            "tone": tone(s["net_pnl"]),
        },
        {
            "key": "return_pct",
            "label": "Return",
            "value": number_text(s["return_pct"], 2, signed=True),
            "unit": "%",
            "sub": "net PnL over the notional",
            "tone": tone(s["return_pct"]),
        },
        {
            "key": "sharpe",
            "label": "Sharpe",
            "value": number_text(s["sharpe"], 2),
            "sub": "annualised, from each bar's change of equity"
            if s["sharpe"] is not None
            else "none: the equity never moved",
            "tone": tone(s["sharpe"]),
        },
        {
            "key": "max_drawdown",
            "label": "Max drawdown",
            "value": number_text(s["max_drawdown"], 2),
            "sub": f"{number_text(s['max_drawdown_pct'], 2)} % of the notional",
            "tone": "neg" if tone(s["max_drawdown"]) else "",
        },
        {
            "key": "trades",
            "label": "Trades",
            "value": f"{s['trades']:,}",
            "sub": f"{s['wins']:,} won · win rate {number_text(100 * win_rate, 0)} %"
            if win_rate is not None
            else "none in this range",
            "tone": "",
        },
        {
            "key": "mean_holding",
            "label": "Mean holding",
            "value": number_text(holding, 1),
            "unit": "bars" if holding is not None else "",
            "sub": duration_text(holding * interval_ms / 1000) if holding is not None else "no trades",
            "tone": "",
        },
    ]


def trade_rows(trades: list[dict[str, Any]], pair: Pair) -> list[dict[str, Any]]:
    """The first ``TRADES_SHOWN`` trades as the table shows them (times UTC to the second)."""
    rows = []
    for number, t in enumerate(trades[:TRADES_SHOWN], start=1):
        da = price_decimals(pair.symbol_a, t["entry_price_a"]) + 2
        db = price_decimals(pair.symbol_b, t["entry_price_b"]) + 2
        rows.append(
            {
                "number": number,
                "entry": utc_text(t["entry_time"]),
                "exit": utc_text(t["exit_time"]),
                "held": duration_text((t["exit_time"] - t["entry_time"]) / 1000),
                "direction": t["direction"],
                # "long spread" and "(buy A, sell B)": two lines in the table.
                "direction_way": direction_text(t["direction"], pair.symbols).partition(" (")[0],
                "direction_legs": "(" + direction_text(t["direction"], pair.symbols).partition(" (")[2],
                "reason": t["reason"],
                "reason_text": REASON_TEXTS.get(t["reason"], t["reason"].replace("_", " ")),
                "hedge_ratio": number_text(t["hedge_ratio"], 4),
                "qty_a": ("+" if t["qty_a"] > 0 else "") + significant_text(t["qty_a"], 6),
                "qty_b": ("+" if t["qty_b"] > 0 else "") + significant_text(t["qty_b"], 6),
                "entry_a": number_text(t["entry_price_a"], da),
                "entry_b": number_text(t["entry_price_b"], db),
                "exit_a": number_text(t["exit_price_a"], da),
                "exit_b": number_text(t["exit_price_b"], db),
                "fees": number_text(t["fees"], 2),
                "funding": number_text(t["funding"], 2, signed=True),
                "pnl": number_text(t["pnl"], 2, signed=True),
                "tone": tone(t["pnl"]),
            }
        )
    return rows


def _part(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "net": number_text(summary["net_pnl"], 2, signed=True),
        "tone": tone(summary["net_pnl"]),
        "return": number_text(summary["return_pct"], 2, signed=True),
        "sharpe": number_text(summary["sharpe"], 2),
        "has_sharpe": summary["sharpe"] is not None,
        "trades": summary["trades"],
        "bars": summary["bars"],
        "range": f"{utc_text(summary['start'])} → {utc_text(summary['end'])} UTC",
    }


def grid_rows(grid: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The walk-forward rows as listed (best in-sample Sharpe first: the chosen one), the pair's own marked."""
    return [
        {
            "chosen": k == 0,
            "live": (row["entry_z"], row["exit_z"], row["window"])
            == (params["entry_z"], params["exit_z"], params["window"]),
            "entry_z": threshold_text(row["entry_z"]),
            "exit_z": threshold_text(row["exit_z"]),
            "window": row["window"],
            "in_sample": _part(row["in_sample"]),
            "out_of_sample": _part(row["out_of_sample"]),
        }
        for k, row in enumerate(grid)
    ]


def backtest_context(pair: Pair, backtest: Backtest | None, *, can_run: bool) -> dict[str, Any]:
    """What the backtest page's result part shows of ``backtest`` (None: there is none yet)."""
    context: dict[str, Any] = {"pair": pair, "bt": backtest, "can_run": can_run}
    if backtest is None:
        return context
    p = backtest.params
    interval_ms = INTERVALS[p["interval"]]
    took = None
    if backtest.started_at and backtest.finished_at:
        took = duration_text((backtest.finished_at - backtest.started_at).total_seconds())
    context |= {
        "status_text": STATUS_TEXTS.get(backtest.status, backtest.status),
        "progress_pct": round(100 * backtest.progress),
        "asked_text": _datetime_text(backtest.created_at),
        "took_text": took,
        "assumptions": backtest_assumptions(pair, backtest),
        "one_second": p["interval"] == "1s",
        "thresholds_text": f"entry ±{threshold_text(p['entry_z'])} · exit ±{threshold_text(p['exit_z'])}",
    }
    if backtest.status != Backtest.Status.DONE or backtest.summary is None:
        return context
    result = backtest.result or {}
    trades = result.get("trades") or []
    equity = result.get("equity") or {"t": [], "equity": []}
    times = np.asarray(equity["t"], dtype=np.int64)
    values = np.asarray(equity["equity"], dtype=np.float64)
    grid = grid_rows(result["grid"], p) if result.get("grid") else None
    context |= {
        "cards": summary_cards(backtest.summary, interval_ms),
        "trades": trade_rows(trades, pair),
        "trades_total": len(trades),
        "grid": grid,
        "headline": grid[0] if grid else None,
        "chart": {
            "interval_ms": interval_ms,
            "bars": int(times.size),
            "equity": chart_points(times, values),
            "drawdown": chart_points(times, -drawdown_of(values)),
        },
        "csv_trades": reverse("dashboard-backtest-trades-csv", args=[pair.id, backtest.id]),
        "csv_equity": reverse("dashboard-backtest-equity-csv", args=[pair.id, backtest.id]),
    }
    return context


def _can_run(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


def _backtest_of(pair: Pair, backtest_id: int | str) -> Backtest:
    """The pair's backtest ``backtest_id``; 404 for an unknown one or another pair's."""
    if isinstance(backtest_id, str) and not backtest_id.isdigit():
        raise Http404(f"no backtest {backtest_id!r}")
    return get_object_or_404(Backtest, pk=int(backtest_id), pair=pair)


@require_GET
@rate_limited(PageRateThrottle)
@ensure_csrf_cookie
def backtest_page(request: HttpRequest, pair_id: int) -> HttpResponse:
    """A pair's backtests: the form (staff), the one selected (``?run=ID``, else the newest), the earlier ones."""
    pair = get_object_or_404(Pair, pk=pair_id)
    runs = list(Backtest.objects.filter(pair=pair).order_by("-created_at")[:BACKTESTS_LISTED])
    run = request.GET.get("run")
    selected = _backtest_of(pair, run) if run is not None else (runs[0] if runs else None)
    can_run = _can_run(request)
    config = {
        "pair": pair.id,
        "symbol_a": pair.symbol_a,
        "symbol_b": pair.symbol_b,
        "interval": pair.interval,
        "interval_ms": INTERVALS[pair.interval],
        "can_run": can_run,
        "runs_url": reverse("pair-backtests", args=[pair.id]),
        "backtest_url": reverse("api-backtest", args=[0]),
        "result_url": reverse("dashboard-backtest-result", args=[pair.id, 0]),
        "page_url": reverse("dashboard-backtest", args=[pair.id]),
        "selected": selected.id if selected else None,
        "selected_status": selected.status if selected else None,
    }
    context = {
        **backtest_context(pair, selected, can_run=can_run),
        "config": config,
        "runs": [backtest_json(b, full=False) for b in runs],
        "default_days": BACKTEST_DEFAULT_DAYS[pair.interval],
        "login_url": f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}",
        "health": system_health(),
    }
    return render(request, "dashboard/backtest.html", context)


@require_GET
@rate_limited(PageRateThrottle)
def backtest_result_partial(request: HttpRequest, pair_id: int, backtest_id: int) -> HttpResponse:
    """One backtest's part of the page, as rendered there: the page script swaps it in when a run ends."""
    pair = get_object_or_404(Pair, pk=pair_id)
    backtest = _backtest_of(pair, backtest_id)
    return render(
        request,
        "dashboard/partials/backtest_result.html",
        backtest_context(pair, backtest, can_run=_can_run(request)),
    )


def _not_done(backtest: Backtest) -> HttpResponse | None:
    """A 409 that says why a backtest has no trades or equity yet (None once done)."""
    if backtest.status == Backtest.Status.DONE:
        return None
    if backtest.status == Backtest.Status.FAILED:
        message = f"backtest {backtest.pk} failed, so it has no trades or equity: {backtest.error}"
    elif backtest.status == Backtest.Status.RUNNING:
        message = (
            f"backtest {backtest.pk} is still running ({100 * backtest.progress:.0f} %): "
            "its trades and equity are here once it is done"
        )
    else:
        message = f"backtest {backtest.pk} is queued: its trades and equity are here once it has run"
    return HttpResponse(message + "\n", status=409, content_type="text/plain; charset=utf-8")


def _backtest_filename(pair: Pair, backtest: Backtest, what: str) -> str:
    return f"{pair.symbol_a}-{pair.symbol_b}-{backtest.params['interval']}-backtest-{backtest.pk}-{what}.csv"


def money_csv(value: float) -> str:
    """Money in a CSV: 4 decimals (a fee of a few cents keeps its digits)."""
    text = f"{value:.4f}"
    return "0.0000" if float(text) == 0 else text


@require_GET
@rate_limited(CsvRateThrottle)
def backtest_trades_csv(request: HttpRequest, pair_id: int, backtest_id: int) -> HttpResponse:
    """A done backtest's trades, one a row: times as ms and ISO 8601 UTC, quantities signed (+ bought)."""
    pair = get_object_or_404(Pair, pk=pair_id)
    backtest = _backtest_of(pair, backtest_id)
    if (refused := _not_done(backtest)) is not None:
        return refused
    rows = []
    for t in (backtest.result or {}).get("trades") or []:
        da = price_decimals(pair.symbol_a, t["entry_price_a"]) + FILL_EXTRA_DECIMALS
        db = price_decimals(pair.symbol_b, t["entry_price_b"]) + FILL_EXTRA_DECIMALS
        rows.append(
            [
                t["entry_time"],
                iso_utc(t["entry_time"]),
                t["exit_time"],
                iso_utc(t["exit_time"]),
                t["direction"],
                t["reason"],
                significant_text(t["hedge_ratio"]),
                significant_text(t["qty_a"]),
                significant_text(t["qty_b"]),
                decimal_text(t["entry_price_a"], da),
                decimal_text(t["entry_price_b"], db),
                decimal_text(t["exit_price_a"], da),
                decimal_text(t["exit_price_b"], db),
                money_csv(t["fees"]),
                money_csv(t["funding"]),
                money_csv(t["pnl"]),
            ]
        )
    return _csv_response(_backtest_filename(pair, backtest, "trades"), TRADES_COLUMNS, rows)


@require_GET
@rate_limited(CsvRateThrottle)
def backtest_equity_csv(request: HttpRequest, pair_id: int, backtest_id: int) -> HttpResponse:
    """A done backtest's equity at every grid point and its drawdown below the running peak (at least 0)."""
    pair = get_object_or_404(Pair, pk=pair_id)
    backtest = _backtest_of(pair, backtest_id)
    if (refused := _not_done(backtest)) is not None:
        return refused
    equity = (backtest.result or {}).get("equity") or {"t": [], "equity": []}
    values = np.asarray(equity["equity"], dtype=np.float64)
    drawdown = drawdown_of(values)
    rows = [
        [t, iso_utc(t), money_csv(float(v)), money_csv(float(d))]
        for t, v, d in zip(equity["t"], values, drawdown, strict=True)
    ]
    return _csv_response(_backtest_filename(pair, backtest, "equity"), EQUITY_COLUMNS, rows)


# -- the screener ------------------------------------------------------------------

#: Rows of the screener's table (the API has every pair of the run).
SCREEN_ROWS_SHOWN = 500
#: Runs listed beside the form, newest first.
SCREENS_LISTED = 10
#: The table's sort keys and the fields of a screened pair they sort by (the half-life in time sorts as in bars).
SCREEN_SORT_FIELDS = {
    "q": "qvalue",
    "p": "coint_pvalue",
    "hl": "half_life",
    "beta": "hedge_ratio",
    "corr": "correlation",
    "adf": "adf_pvalue",
    "n": "n",
}
SCREEN_STATUS_TEXTS = {
    ScreenerRun.Status.QUEUED: "queued: the runner takes one screen at a time, every 3 s",
    ScreenerRun.Status.RUNNING: "running",
    ScreenerRun.Status.DONE: "done",
    ScreenerRun.Status.FAILED: "failed",
}


def screen_p_text(value: float | None) -> str:
    """A p- or q-value of the screener: 4 decimals, in scientific notation below 0.0001 ("2.8e-28"), "0" at 0.

    The page script's ``fmtQ`` writes the same texts.
    """
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if value < 0.0001:
        mantissa, _, exponent = f"{value:.1e}".partition("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.4f}"


def screen_bands(fdr: float) -> list[dict[str, Any]]:
    """The heatmap's colour bands by q-value, strongest first: significant ones below ``fdr``, then the rest."""
    cuts = [cut for cut in (0.001, 0.01) if cut < fdr] + [fdr]
    bands: list[dict[str, Any]] = [
        {"key": f"sig{k}", "below": cut, "label": f"q < {cut:g}"} for k, cut in enumerate(cuts)
    ]
    if fdr < 0.25:
        bands.append({"key": "near", "below": 0.25, "label": f"{fdr:g} ≤ q < 0.25"})
    bands.append({"key": "far", "below": None, "label": f"q ≥ {max(fdr, 0.25):g}"})
    bands.append({"key": "none", "below": None, "label": "no test"})
    return bands


def screen_requested_text(requested: dict[str, Any]) -> str:
    """What a run was asked to screen, in words."""
    if requested.get("symbols"):
        return f"{len(requested['symbols'])} named symbols"
    return f"the top {requested.get('top')} USDT perpetuals by 24 h quote volume"


def screen_run_item(run: ScreenerRun) -> dict[str, Any]:
    """A run as the list beside the form shows it (the page script writes the same from the API's JSON)."""
    pairs = run.pairs or []
    return {
        "id": run.pk,
        "status": run.status,
        "progress": run.progress,
        "error": run.error or None,
        "interval": run.interval,
        "window": run.window,
        "fdr": run.fdr,
        "requested": run.requested,
        "universe": len(run.symbols or []),
        "pairs": len(pairs),
        "significant": sum(1 for p in pairs if p.get("significant")),
        "created_at": int(run.created_at.timestamp() * 1000) if run.created_at else None,
        "finished_at": int(run.finished_at.timestamp() * 1000) if run.finished_at else None,
    }


def screen_rows(run: ScreenerRun, watched: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """The first ``SCREEN_ROWS_SHOWN`` pairs in rank order, as the table shows them (sort keys as raw numbers)."""
    interval_s = INTERVALS[run.interval] / 1000
    rows = []
    for rank, p in enumerate((run.pairs or [])[:SCREEN_ROWS_SHOWN], start=1):
        half_life = p.get("half_life")
        rows.append(
            {
                "rank": rank,
                "symbol_a": p["symbol_a"],
                "symbol_b": p["symbol_b"],
                "significant": bool(p.get("significant")),
                "tested": p.get("coint_pvalue") is not None,
                "q_text": screen_p_text(p.get("qvalue")),
                "p_text": screen_p_text(p.get("coint_pvalue")),
                "adf_text": screen_p_text(p.get("adf_pvalue")),
                "half_life_text": number_text(half_life, 1),
                "half_life_time": duration_text(half_life * interval_s) if half_life is not None else "—",
                "hedge_ratio_text": significant_text(p["hedge_ratio"], 4) if p.get("hedge_ratio") is not None else "—",
                "correlation_text": number_text(p.get("correlation"), 3),
                "n_text": f"{p['n']:,}" if p.get("n") is not None else "—",
                "watched": watched.get((p["symbol_a"], p["symbol_b"])),
                # The values the table sorts by, written out in full (empty: none).
                "sort": {
                    key: "" if p.get(field) is None else repr(float(p[field]))
                    for key, field in SCREEN_SORT_FIELDS.items()
                },
            }
        )
    return rows


def screen_heat(run: ScreenerRun) -> dict[str, Any]:
    """The heatmap's data: the universe and each pair as [i, j, q, p, half-life, β, ρ, significant, rank]."""
    symbols = list(run.symbols or [])
    index = {s: k for k, s in enumerate(symbols)}
    cells = []
    for rank, p in enumerate(run.pairs or [], start=1):
        i, j = index.get(p["symbol_a"]), index.get(p["symbol_b"])
        if i is None or j is None:
            continue
        cells.append(
            [
                i,
                j,
                p.get("qvalue"),
                p.get("coint_pvalue"),
                p.get("half_life"),
                p.get("hedge_ratio"),
                p.get("correlation"),
                1 if p.get("significant") else 0,
                rank,
            ]
        )
    return {
        "symbols": symbols,
        "interval_ms": INTERVALS[run.interval],
        "fdr": run.fdr,
        "bands": screen_bands(run.fdr),
        "cells": cells,
    }


def screener_context(
    shown: ScreenerRun | None, *, failed: ScreenerRun | None = None, can_run: bool = False
) -> dict[str, Any]:
    """What the screener page's result part shows: the run ``shown`` (None: none has finished), a newer failed one."""
    context: dict[str, Any] = {"sc": shown, "can_run": can_run}
    if failed is not None:
        context["failed"] = {
            "id": failed.pk,
            "error": (failed.error or "no reason was recorded").rstrip("."),
            "finished_text": _datetime_text(failed.finished_at),
        }
    if shown is None:
        return context
    pairs = shown.pairs or []
    watched = {
        (a, b): pk
        for pk, a, b in Pair.objects.filter(interval=shown.interval).values_list("pk", "symbol_a", "symbol_b")
    }
    significant = sum(1 for p in pairs if p.get("significant"))
    tested = sum(1 for p in pairs if p.get("coint_pvalue") is not None)
    context |= {
        "as_of_text": utc_text(shown.as_of),
        "finished_text": _datetime_text(shown.finished_at),
        "took_text": duration_text(shown.took_ms / 1000) if shown.took_ms is not None else "—",
        "fdr_text": f"{shown.fdr:g}",
        "requested_text": screen_requested_text(shown.requested or {}),
        "universe": len(shown.symbols or []),
        "pairs_total": len(pairs),
        "tested": tested,
        "significant": significant,
        "skipped": sorted((shown.skipped or {}).items()),
        "rows": screen_rows(shown, watched),
        "heat": screen_heat(shown),
    }
    return context


def _screen_of(run_id: int | str) -> ScreenerRun:
    if isinstance(run_id, str) and not run_id.isdigit():
        raise Http404(f"no screener run {run_id!r}")
    return get_object_or_404(ScreenerRun, pk=int(run_id))


def _screen_shown(selected: ScreenerRun | None) -> tuple[ScreenerRun | None, ScreenerRun | None]:
    """The run to show and the failed run to name beside it.

    A done run selected is shown; otherwise the newest done one, with the run
    selected if it failed, or else the newest run to finish if it failed after it.
    """
    if selected is not None and selected.status == ScreenerRun.Status.DONE:
        return selected, None
    latest = screener_latest()
    if selected is not None:
        return latest, selected if selected.status == ScreenerRun.Status.FAILED else None
    newest = ScreenerRun.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-pk").first()
    if newest is not None and newest.status == ScreenerRun.Status.FAILED and newest != latest:
        return latest, newest
    return latest, None


@require_GET
@rate_limited(PageRateThrottle)
@ensure_csrf_cookie
def screener_page(request: HttpRequest) -> HttpResponse:
    """The screener: the newest finished run (``?run=ID``: another), its ranked pairs and heatmap, the form (staff)."""
    run = request.GET.get("run")
    shown, failed = _screen_shown(_screen_of(run) if run is not None else None)
    runs = list(ScreenerRun.objects.order_by("-created_at", "-pk")[:SCREENS_LISTED])
    active = (
        ScreenerRun.objects.filter(status__in=[ScreenerRun.Status.QUEUED, ScreenerRun.Status.RUNNING])
        .order_by("-created_at", "-pk")
        .first()
    )
    can_run = _can_run(request)
    config = {
        "can_run": can_run,
        "shown": shown.pk if shown else None,
        "active": active.pk if active else None,
        "runs_url": reverse("api-screener-runs"),
        "run_url": reverse("api-screener-run", args=[0]),
        "result_url": reverse("dashboard-screener-result", args=[0]),
        "page_url": reverse("dashboard-screener"),
        "pairs_url": reverse("pair-list"),
        "pair_page_url": reverse("dashboard-pair", args=[0]),
    }
    context = {
        **screener_context(shown, failed=failed, can_run=can_run),
        "config": config,
        "runs": [screen_run_item(r) for r in runs],
        "active": active,
        "active_pct": round(100 * active.progress) if active else 0,
        "active_text": SCREEN_STATUS_TEXTS.get(active.status, active.status) if active else "",
        "intervals": SCREENER_INTERVALS,
        "defaults": {
            "scheduled": settings.SCREENER_SCHEDULED,
            "top": settings.SCREENER_TOP,
            "interval": settings.SCREENER_INTERVAL,
            "window": settings.SCREENER_WINDOW,
            "fdr": f"{settings.SCREENER_FDR:g}",
        },
        "login_url": f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}",
        "health": system_health(),
    }
    return render(request, "dashboard/screener.html", context)


@require_GET
@rate_limited(PageRateThrottle)
def screener_result_partial(request: HttpRequest, run_id: int) -> HttpResponse:
    """The page's result part once run ``run_id`` has ended: it, if done; else the newest done one and why it failed."""
    shown, failed = _screen_shown(_screen_of(run_id))
    return render(
        request,
        "dashboard/partials/screener_result.html",
        screener_context(shown, failed=failed, can_run=_can_run(request)),
    )
