"""Ingestion alone (distributed mode): stream, store, repair gaps, report health."""

from __future__ import annotations

import asyncio
import signal
from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from ingestion.binance import normalize_symbol
from ingestion.listing import symbols_tradable
from ingestion.models import FeedStatus
from ingestion.services import Feed
from pairs_project.common.collector import collector_settle
from pairs_project.common.masking import url_credentials_masked
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime


class Command(BaseCommand):
    help = "Stream Binance USD-M aggregate trades into the database until SIGINT/SIGTERM."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--symbols", default="", help="comma-separated symbols (default: those of the active pairs)"
        )
        parser.add_argument("--name", default=None, help="feed name in the health record (one per process)")
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")

    def handle(
        self, *args: object, symbols: str, name: str | None, max_seconds: float | None, **options: object
    ) -> None:
        try:
            wanted = [normalize_symbol(s) for s in symbols.split(",") if s.strip()]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # What the exchange says it does not trade is refused now; an exchange
        # that cannot be reached is no reason not to start (the feed checks again).
        problems = symbols_tradable(wanted)[1] if wanted else {}
        if problems:
            raise CommandError("; ".join(problems.values()))
        longest = FeedStatus._meta.get_field("name").max_length
        if name is not None and not 0 < len(name) <= longest:
            raise CommandError(f"--name must be 1 to {longest} characters, not {len(name)}")
        # The feed's process: live ticks shared through Redis (distributed mode), no periodic tasks.
        feed = Pipeline(Runtime.build(embedded=False)).feed(symbols=wanted or None, name=name)
        self.shutdown = False
        collector_settle()
        asyncio.run(self.run(feed, max_seconds))
        self.stdout.write(f"stopped; {feed.writer.stored} ticks stored this run")

    async def run(self, feed: Feed, max_seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal, feed, sig)
        if max_seconds:
            loop.call_later(max_seconds, feed.stop)
        self.stdout.write(f"ingesting from {url_credentials_masked(feed.ws_url)} (feed {feed.name}); Ctrl-C to stop")
        await feed.run()

    def on_signal(self, feed: Feed, sig: signal.Signals) -> None:
        """First signal: flush and stop cleanly."""
        self.shutdown = True
        self.stdout.write(f"{sig.name}: flushing pending ticks and stopping")
        feed.stop()
