"""Screen a universe of USD-M perpetuals for cointegrated pairs (docs/analytics.md, "Screener")."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.models import ScreenerRun
from analytics.services import (
    SCREENER_INTERVALS,
    ScreenerError,
    screener_json,
    screener_request,
    screener_run,
)
from ingestion.services import exchange_configured
from pairs_project.common.terminal import progress_bar


def symbol_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


class Command(BaseCommand):
    help = "Score every pair of a universe for cointegration, with Benjamini-Hochberg q-values."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--symbols", type=symbol_list, metavar="A,B,...", help="the universe (default: top N)")
        parser.add_argument("--top", type=int, help="the N USDT perpetuals with the most 24 h quote volume (30)")
        parser.add_argument("--interval", choices=SCREENER_INTERVALS, default="5m")
        parser.add_argument("--window", type=int, default=1000, help="closed bars per pair (default 1,000)")
        parser.add_argument("--fdr", type=float, default=0.05, help="false-discovery rate (default 0.05)")
        parser.add_argument("--json", action="store_true", help="print the run object as JSON")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            requested = screener_request(
                symbols=options["symbols"],
                top=options["top"],
                interval=options["interval"],
                window=options["window"],
                fdr=options["fdr"],
            )
        except ScreenerError as exc:
            raise CommandError(str(exc)) from None
        now = timezone.now()
        run = ScreenerRun.objects.create(
            requested=requested,
            interval=requested["interval"],
            window=requested["window"],
            fdr=requested["fdr"],
            status=ScreenerRun.Status.RUNNING,
            started_at=now,
            updated_at=now,
        )
        show = self._progress if sys.stderr.isatty() and not options["json"] else None
        screener_run(run, rest_url=exchange_configured().rest_url, on_progress=show)
        if show is not None:
            self.stderr.write("")
        if options["json"]:
            self.stdout.write(orjson.dumps(screener_json(run)).decode())
        else:
            self._report(run)
        if run.status == ScreenerRun.Status.FAILED:
            raise CommandError(run.error)

    def _progress(self, run: ScreenerRun) -> None:
        progress_bar(self.stderr, run.progress)

    def _report(self, run: ScreenerRun) -> None:
        if run.status != ScreenerRun.Status.DONE:
            return
        significant = [p for p in run.pairs if p["significant"]]
        self.stdout.write(
            f"screener run {run.pk}: {len(run.symbols)} symbols, {len(run.pairs):,} pairs on {run.window} closed "
            f"{run.interval} bars in {run.took_ms / 1000:.1f} s; {len(significant)} significant at FDR {run.fdr:g}"
        )
        for symbol, why in run.skipped.items():
            self.stdout.write(f"  left out: {symbol}: {why}")
        self.stdout.write(f"  {'pair':<22}{'q':>10}{'p':>10}{'half-life':>11}{'hedge':>10}{'corr':>7}")
        for pair in run.pairs[:20]:

            def num(value: float | None, fmt: str) -> str:
                return "n/a" if value is None else format(value, fmt)

            self.stdout.write(
                f"  {pair['symbol_a'] + '/' + pair['symbol_b']:<22}{num(pair['qvalue'], '.2e'):>10}"
                f"{num(pair['coint_pvalue'], '.2e'):>10}{num(pair['half_life'], '.1f'):>11}"
                f"{num(pair['hedge_ratio'], '.4g'):>10}{num(pair['correlation'], '.2f'):>7}"
            )
