"""The screener page and its result part."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from analytics.bars import INTERVALS
from analytics.models import Pair, ScreenerRun
from analytics.services import (
    SCREENER_INTERVALS,
    screener_latest,
)

from ..formatting import datetime_text, duration_text, number_text, significant_text, utc_text
from ..health import system_health
from ..throttles import PageRateThrottle, rate_limited
from .base import may_run

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
        "universe": run.universe_size,
        "pairs": len(pairs),
        "significant": run.significant_count,
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
            "finished_text": datetime_text(failed.finished_at),
        }
    if shown is None:
        return context
    pairs = shown.pairs or []
    watched = {
        (a, b): pk
        for pk, a, b in Pair.objects.filter(interval=shown.interval).values_list("pk", "symbol_a", "symbol_b")
    }
    tested = sum(1 for p in pairs if p.get("coint_pvalue") is not None)
    context |= {
        "as_of_text": utc_text(shown.as_of),
        "finished_text": datetime_text(shown.finished_at),
        "took_text": duration_text(shown.took_ms / 1000) if shown.took_ms is not None else "—",
        "fdr_text": f"{shown.fdr:g}",
        "requested_text": screen_requested_text(shown.requested or {}),
        "universe": shown.universe_size,
        "pairs_total": len(pairs),
        "tested": tested,
        "significant": shown.significant_count,
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
    can_run = may_run(request)
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
        screener_context(shown, failed=failed, can_run=may_run(request)),
    )
