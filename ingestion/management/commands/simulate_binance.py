"""Run the offline Binance USD-M exchange on loopback until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ingestion.binance import normalize_symbol
from ingestion.simulator import LISTED_SINCE_MS, SCENARIOS, Simulator, clock_id_offset

logger = logging.getLogger("ingestion.simulator")


def symbol_list(text: str) -> list[str]:
    """``A,B`` as symbols (an argparse type: a bad one is a usage error)."""
    try:
        return [normalize_symbol(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def utc_date(text: str) -> int:
    """``YYYY-MM-DD`` (midnight UTC) as ms since the epoch (an argparse type)."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None
    return int(day.timestamp() * 1000)


class Command(BaseCommand):
    help = "Serve simulated Binance USD-M market data (WebSocket + REST on one port) until SIGINT/SIGTERM."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=9100, help="port for WebSocket and REST (default 9100)")
        parser.add_argument("--scenario", choices=SCENARIOS, default="cointegrated")
        parser.add_argument("--rate", type=float, default=50.0, help="trades a second, both symbols (default 50)")
        parser.add_argument("--seed", type=int, default=None, help="seed: the same trades on every run")
        parser.add_argument("--hedge-ratio", type=float, default=None, help="BTC = alpha + HEDGE_RATIO * ETH + spread")
        parser.add_argument("--half-life", type=float, default=None, help="spread half-life in seconds")
        parser.add_argument("--spread-sigma", type=float, default=None, help="spread standard deviation, USD")
        parser.add_argument("--shock-every", type=float, default=None, help="a spread shock every S seconds")
        parser.add_argument("--shock-size", type=float, default=None, help="shock size in spread sigmas")
        parser.add_argument(
            "--start-on-subscribe",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="open the market on the first whole second after a client subscribes (default), "
            "so runs with the same seed trade the same",
        )
        parser.add_argument("--speed", type=float, default=None, help="replay speed factor (0: as fast as possible)")
        parser.add_argument(
            "--loop", action=argparse.BooleanOptionalAction, default=None, help="replay: start over at the end"
        )
        parser.add_argument("--count", type=int, default=None, help="stop trading after N trades")
        parser.add_argument(
            "--blast", action="store_true", help="benchmark: send --count trades as fast as the first subscriber reads"
        )
        parser.add_argument(
            "--fault",
            dest="faults",
            action="extend",
            nargs="+",
            default=[],
            metavar="SPEC",
            help="scheduled fault, e.g. drop@10 refuse@20:5 malformed@30 rate_limit@5:3[:418[:RETRY]]",
        )
        parser.add_argument("--history", type=int, default=2_000_000, help="trades per symbol REST serves")
        parser.add_argument(
            "--delisted",
            type=symbol_list,
            default=[],
            metavar="A,B",
            help="symbols exchangeInfo lists as delisted (status SETTLING); they never trade",
        )
        parser.add_argument(
            "--silent",
            type=symbol_list,
            default=[],
            metavar="A,B",
            help="symbols exchangeInfo lists as TRADING that never trade",
        )
        parser.add_argument(
            "--listed-since",
            type=utc_date,
            default=LISTED_SINCE_MS,
            metavar="YYYY-MM-DD",
            help="when the symbols were listed (UTC): no kline or funding before it (default 2019-09-25 08:00 UTC)",
        )
        parser.add_argument(
            "--universe",
            type=int,
            default=0,
            metavar="N",
            help="also serve a universe of N USDT perpetuals (the pair first): klines, funding and 24 h tickers, "
            "a few groups cointegrated by construction (default 0: the pair only; make demo: 30)",
        )
        parser.add_argument(
            "--id-offset",
            type=int,
            default=None,
            help="added to every first trade id (default: grows with the clock, so a restart never reuses ids)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scenario: str = options["scenario"]
        extra: dict[str, Any] = {}
        if scenario == "replay":
            for name in ("speed", "loop"):
                if options[name] is not None:
                    extra[name] = options[name]
        else:
            for name in ("hedge_ratio", "half_life", "spread_sigma", "shock_every", "shock_size"):
                if options[name] is not None:
                    extra[name] = options[name]
            offset = options["id_offset"]
            extra["id_offset"] = clock_id_offset() if offset is None else offset
        try:
            simulator = Simulator(
                host=options["host"],
                port=options["port"],
                scenario=scenario,
                rate=options["rate"],
                seed=options["seed"],
                history_limit=options["history"],
                count=options["count"],
                blast=options["blast"],
                faults=options["faults"],
                start_on_subscribe=options["start_on_subscribe"],
                delisted=options["delisted"],
                silent=options["silent"],
                listed_since=options["listed_since"],
                universe=options["universe"],
                **extra,
            )
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        try:
            asyncio.run(self.serve(simulator))
        except OSError as exc:  # most often: the port is taken
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from None

    async def serve(self, simulator: Simulator) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with simulator:
            self.stdout.write(
                f"simulated Binance USD-M ({simulator.scenario_name}): "
                f"ws {simulator.ws_url}  rest {simulator.rest_url}\n"
                f"point the app at it: BINANCE_WS_URL={simulator.ws_url} BINANCE_REST_URL={simulator.rest_url}"
            )
            if simulator.exchange.universe is not None:
                planted = "; ".join(
                    f"{p.symbol_a} = a + {p.hedge_ratio:.4g} {p.symbol_b} + spread (half-life {p.half_life:g} s)"
                    for p in simulator.planted
                )
                self.stdout.write(
                    f"a universe of {len(simulator.exchange.universe_symbols)} symbols, cointegrated by construction:"
                    f" {planted or 'none'}"
                )
            if simulator.blast:
                logger.info("blast mode: %d trades as soon as a client subscribes", simulator.count)
            await stop.wait()
            stats = simulator.exchange.stats()
        self.stdout.write(f"stopped after {stats['generated']} trades and {stats['connections_total']} connection(s)")
