"""Create or update a pair from the command line and print its id."""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from analytics.bars import INTERVALS
from analytics.services import pair_upsert, pair_warmup_from_klines


class Command(BaseCommand):
    help = "Create (or update) the pair A/B and print its id; 1m/5m pairs are warmed up from klines."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("symbol_a", help="y leg, e.g. BTCUSDT")
        parser.add_argument("symbol_b", help="x leg, e.g. ETHUSDT")
        parser.add_argument("--interval", choices=list(INTERVALS), default="1s")
        parser.add_argument("--window", type=int)
        parser.add_argument("--min-bars", type=int)
        parser.add_argument("--entry-z", type=float)
        parser.add_argument("--exit-z", type=float)
        parser.add_argument("--min-correlation", type=float)
        parser.add_argument("--max-adf-pvalue", type=float)
        parser.add_argument("--max-coint-pvalue", type=float, help="Engle-Granger gate: coint p must be below this")
        parser.add_argument("--confirm-bars", type=int, help="related snapshots in a row an entry needs (1 to window)")
        parser.add_argument("--no-warmup", action="store_true", help="do not fetch klines now")

    def handle(
        self, *args: object, symbol_a: str, symbol_b: str, interval: str, no_warmup: bool, **options: object
    ) -> None:
        fields = {
            name: options[name]
            for name in (
                "window",
                "min_bars",
                "entry_z",
                "exit_z",
                "min_correlation",
                "max_adf_pvalue",
                "max_coint_pvalue",
                "confirm_bars",
            )
            if options.get(name) is not None
        }
        try:
            pair, created = pair_upsert(symbol_a=symbol_a, symbol_b=symbol_b, interval=interval, **fields)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        if not no_warmup and pair.interval != "1s":
            try:
                stored = pair_warmup_from_klines(pair=pair)
                self.stderr.write(f"warmed up {pair} with {stored} klines")
            except Exception as exc:  # the periodic warm-up retries
                self.stderr.write(f"klines warm-up failed ({exc}); it will be retried by the scheduler")
        self.stderr.write(f"{'created' if created else 'updated'} pair {pair}")
        self.stdout.write(str(pair.id))
