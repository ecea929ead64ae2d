"""Backtest a pair's own alert rule over history, with costs (docs/analytics.md, "Backtest")."""

from __future__ import annotations

import sys
from argparse import ArgumentParser, ArgumentTypeError
from datetime import UTC, datetime
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.models import Backtest, Pair
from analytics.services import BacktestError, backtest_json, backtest_params, backtest_run
from pairs_project.common.terminal import progress_bar
from pairs_project.common.times import time_ms
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime


def time_arg(text: str) -> int:
    try:
        return time_ms(text)
    except ValueError as exc:
        raise ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = "Replay a pair's alert rule over history and trade it with fees, slippage and funding."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("pair_id", type=int)
        parser.add_argument("--start", type=time_arg, help="ms since the epoch or an ISO date (UTC)")
        parser.add_argument("--end", type=time_arg, help="ms since the epoch or an ISO date (UTC); default now")
        parser.add_argument("--days", type=float, help="the range's length when --start is not given")
        parser.add_argument("--fee-bps", type=float, default=5.0, help="taker fee per leg and side (default 5)")
        parser.add_argument("--slippage-bps", type=float, default=1.0, help="each fill against the trade (default 1)")
        parser.add_argument("--notional", type=float, default=10_000.0, help="quote currency of A per trade")
        parser.add_argument("--delay-bars", type=int, default=0, help="fill this many bars after the signal")
        parser.add_argument("--no-funding", action="store_true", help="leave funding out")
        parser.add_argument("--grid", action="store_true", help="walk-forward over entry_z x exit_z")
        parser.add_argument("--json", action="store_true", help="print the result object as JSON")

    def handle(self, *args: object, pair_id: int, **options: Any) -> None:
        try:
            pair = Pair.objects.get(pk=pair_id)
        except Pair.DoesNotExist:
            raise CommandError(f"no pair with id {pair_id} (manage.py add_pair creates one)") from None
        try:
            params = backtest_params(
                pair,
                start=options["start"],
                end=options["end"],
                days=options["days"],
                fee_bps=options["fee_bps"],
                slippage_bps=options["slippage_bps"],
                notional=options["notional"],
                delay_bars=options["delay_bars"],
                funding=not options["no_funding"],
                grid=options["grid"],
            )
        except BacktestError as exc:
            raise CommandError(str(exc)) from None
        now = timezone.now()
        backtest = Backtest.objects.create(
            pair=pair, params=params, status=Backtest.Status.RUNNING, started_at=now, updated_at=now
        )
        runtime = Runtime.build(embedded=True, stats_process=False)
        show = self._progress if sys.stderr.isatty() and not options["json"] else None
        try:
            backtest_run(
                backtest,
                rules_of=Pipeline.rules_of,
                rest_url=runtime.exchange.rest_url,
                on_progress=show,
            )
        finally:
            runtime.close()
        if show is not None:
            self.stderr.write("")
        if options["json"]:
            self.stdout.write(orjson.dumps(backtest_json(backtest)).decode())
        else:
            self._report(backtest)
        if backtest.status == Backtest.Status.FAILED:
            raise CommandError(backtest.error)

    def _progress(self, backtest: Backtest) -> None:
        progress_bar(self.stderr, backtest.progress)

    def _report(self, backtest: Backtest) -> None:
        if backtest.summary is None:
            return
        s, p = backtest.summary, backtest.params
        start = datetime.fromtimestamp(p["start"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        end = datetime.fromtimestamp(p["end"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")

        def num(value: float | None, fmt: str = ",.2f") -> str:
            return "n/a" if value is None else format(value, fmt)

        self.stdout.write(
            f"backtest {backtest.pk} of {backtest.pair}: {start} to {end} UTC, {s['bars']:,} bars; "
            f"entry {p['entry_z']:g} / exit {p['exit_z']:g}, fee {p['fee_bps']:g} bps, slippage "
            f"{p['slippage_bps']:g} bps, delay {p['delay_bars']} bars, notional {p['notional']:,.0f}, "
            f"funding {'on' if p['funding'] else 'off'}"
        )
        win_rate = None if s["win_rate"] is None else 100 * s["win_rate"]
        self.stdout.write(
            f"  trades {s['trades']} (wins {s['wins']}, win rate {num(win_rate, '.0f')} %), "
            f"net {num(s['net_pnl'])} = gross {num(s['gross_pnl'])} - fees {num(s['fees'])} - funding "
            f"{num(s['funding'])}; return {num(s['return_pct'])} %, max drawdown {num(s['max_drawdown'])} "
            f"({num(s['max_drawdown_pct'])} %), Sharpe {num(s['sharpe'])}, mean holding "
            f"{num(s['mean_holding_bars'], '.1f')} bars"
        )
        if p["interval"] == "1s":
            self.stdout.write("  note: on 1 s bars, filling at the signal bar's close is optimistic")
        grid = (backtest.result or {}).get("grid")
        if grid:
            best = grid[0]
            out = best["out_of_sample"]
            self.stdout.write(
                f"  walk-forward: best in-sample entry {best['entry_z']:g} / exit {best['exit_z']:g} (Sharpe "
                f"{num(best['in_sample']['sharpe'])}); out of sample: net {num(out['net_pnl'])}, Sharpe "
                f"{num(out['sharpe'])}, {out['trades']} trades"
            )
