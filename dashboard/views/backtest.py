"""A pair's backtest page, its result part (polled while a run is under way) and its CSVs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from analytics.bars import INTERVALS
from analytics.models import Backtest, Pair
from analytics.services import (
    BACKTEST_DEFAULT_DAYS,
    backtest_json,
)

from ..api import BACKTESTS_LISTED
from ..formatting import (
    FILL_EXTRA_DECIMALS,
    datetime_text,
    decimal_text,
    direction_text,
    duration_text,
    iso_utc,
    money_csv,
    number_text,
    price_decimals,
    quote_currency,
    significant_text,
    threshold_text,
    tone,
    utc_text,
)
from ..health import system_health
from ..throttles import CsvRateThrottle, PageRateThrottle, rate_limited
from .base import csv_response, may_run, pair_config

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


def summary_cards(summary: dict[str, Any], interval_ms: int, quote: str = "USDT") -> list[dict[str, str]]:
    """The summary's figures as the page's tiles: value, its unit (money in ``quote``), the line under it, its tone."""
    s = summary
    win_rate = s["win_rate"]
    holding = s["mean_holding_bars"]
    gross, fees, funding = s["gross_pnl"], s["fees"], s["funding"]
    return [
        {
            "key": "net_pnl",
            "label": "Net PnL",
            "value": number_text(s["net_pnl"], 2, signed=True),
            "unit": quote,
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
            "unit": quote,
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
    context: dict[str, Any] = {"pair": pair, "bt": backtest, "can_run": can_run, "quote": quote_currency(pair.symbol_a)}
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
        "asked_text": datetime_text(backtest.created_at),
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
        "cards": summary_cards(backtest.summary, interval_ms, quote_currency(pair.symbol_a)),
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
    can_run = may_run(request)
    config = {
        **pair_config(pair),
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
        backtest_context(pair, backtest, can_run=may_run(request)),
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
    return csv_response(_backtest_filename(pair, backtest, "trades"), TRADES_COLUMNS, rows)


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
    return csv_response(_backtest_filename(pair, backtest, "equity"), EQUITY_COLUMNS, rows)
