"""Embedded mode: the whole system in one process and one event loop.

daphne serves the ASGI app (HTTP + websockets); the ingestion feed and the
periodic tasks run as tasks on the same asyncio loop (Twisted's asyncio reactor),
all on one ``Runtime``. On SIGINT/SIGTERM the reactor's shutdown waits for the
feed to flush its pending ticks.
"""

from __future__ import annotations

# daphne.server installs Twisted's asyncio reactor; it must be imported first.
from daphne.server import Server  # isort:skip

import asyncio
import logging
from argparse import ArgumentParser, ArgumentTypeError

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from twisted.internet import defer, reactor

from ingestion.binance import Exchange
from ingestion.buffers import RollingBuffers
from ingestion.management.commands.simulate_binance import symbol_list
from ingestion.services import Feed, live_buffers, simulation_resume_options
from ingestion.simulator.faults import parse_fault_spec
from pairs_project.asgi import application_for
from pairs_project.beat import EmbeddedBeat
from pairs_project.common.collector import collector_settle
from pairs_project.common.masking import url_credentials_masked
from pairs_project.pipeline import Pipeline
from pairs_project.runtime import Runtime

logger = logging.getLogger("pairs")


def fault_spec(text: str) -> str:
    """A fault as ``--sim-fault`` takes it, checked before anything starts."""
    try:
        parse_fault_spec(text)
    except ValueError as exc:
        raise ArgumentTypeError(str(exc)) from None
    return text


class Command(BaseCommand):
    help = "Run web server, ingestion and periodic tasks in one process (embedded mode)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulate", action="store_true", help="feed from the built-in offline exchange")
        parser.add_argument("--sim-scenario", default="cointegrated", help="simulator scenario (with --simulate)")
        parser.add_argument("--sim-rate", type=float, default=100.0, help="simulated trades per second")
        parser.add_argument("--sim-seed", type=int, default=7)
        parser.add_argument("--sim-half-life", type=float, default=None, help="spread half-life in seconds")
        parser.add_argument("--sim-spread-sigma", type=float, default=None, help="spread standard deviation, USD")
        parser.add_argument("--sim-shock-every", type=float, default=None, help="a spread shock every S seconds")
        parser.add_argument("--sim-shock-size", type=float, default=None, help="shock size in spread sigmas")
        parser.add_argument(
            "--sim-delisted", type=symbol_list, default=[], metavar="A,B", help="symbols listed as delisted (no trades)"
        )
        parser.add_argument(
            "--sim-silent", type=symbol_list, default=[], metavar="A,B", help="symbols listed as trading (no trades)"
        )
        parser.add_argument(
            "--sim-universe",
            type=int,
            default=0,
            metavar="N",
            help="a universe of N USDT perpetuals with klines and 24 h tickers (default 0: the pair only)",
        )
        parser.add_argument(
            "--sim-fault",
            dest="sim_faults",
            action="append",
            type=fault_spec,
            default=[],
            metavar="KIND@SECONDS[:ARGS]",
            help="a scheduled fault of the offline exchange, as simulate_binance --fault (e.g. refuse@30:20)",
        )

    def handle(self, *args: object, host: str, port: int, simulate: bool, **options: object) -> None:
        if simulate and options["sim_universe"]:
            from ingestion.simulator.universe import UNIVERSE_LIMIT

            if not 2 <= int(options["sim_universe"]) <= UNIVERSE_LIMIT:
                raise CommandError(
                    f"--sim-universe is 0 (off) or 2 to {UNIVERSE_LIMIT} symbols, not {options['sim_universe']}"
                )
        self.simulate = simulate
        self.options = options
        self.simulator = None
        self.runtime: Runtime | None = None
        self.feed: Feed | None = None
        self.feed_task: asyncio.Task | None = None
        self.beat: EmbeddedBeat | None = None
        self.beat_task: asyncio.Task | None = None
        # The live ticks the feed keeps are the ones the pages read: one set, made here.
        buffers = live_buffers()
        server = Server(
            application_for(buffers),
            endpoints=[f"tcp:port={port}:interface={host}"],
            signal_handlers=True,
            verbosity=0,
        )
        reactor.callWhenRunning(lambda: asyncio.ensure_future(self.start(buffers)))
        reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: defer.Deferred.fromFuture(asyncio.ensure_future(self.stop()))
        )
        self.stdout.write(
            f"pairs on http://{host}:{port}/ (embedded mode, "
            f"{'simulated exchange' if simulate else url_credentials_masked(settings.BINANCE_WS_URL)})"
        )
        server.run()

    async def start(self, buffers: RollingBuffers) -> None:
        exchange = None
        if self.simulate:
            from ingestion.simulator import Simulator

            self.simulator = Simulator(
                host="127.0.0.1",
                port=0,
                scenario=self.options["sim_scenario"],
                rate=self.options["sim_rate"],
                seed=self.options["sim_seed"],
                start_on_subscribe=True,  # the same seed trades the same as `simulate_binance`
                delisted=self.options["sim_delisted"],
                silent=self.options["sim_silent"],
                universe=self.options["sim_universe"],
                faults=self.options["sim_faults"],
                **self.scenario_options(),
                **await sync_to_async(simulation_resume_options)(),
            )
            await self.simulator.start()
            # What this process follows is the simulator (the settings stay as they are).
            exchange = Exchange(self.simulator.ws_url, self.simulator.rest_url)
            logger.info("simulated exchange at %s", self.simulator.ws_url)
        self.runtime = await sync_to_async(Runtime.build)(
            exchange=exchange, buffers=buffers, stats_process=settings.EMBEDDED_STATS_PROCESS
        )
        pipeline = Pipeline(self.runtime)
        self.feed = pipeline.feed()
        self.feed_task = asyncio.ensure_future(self.feed.run())
        self.beat = EmbeddedBeat(pipeline)
        self.beat_task = asyncio.ensure_future(self.beat.run())
        collector_settle()  # everything start-up built lives as long as the process

    def scenario_options(self) -> dict[str, float]:
        names = {
            "sim_half_life": "half_life",
            "sim_spread_sigma": "spread_sigma",
            "sim_shock_every": "shock_every",
            "sim_shock_size": "shock_size",
        }
        return {names[k]: v for k, v in self.options.items() if k in names and v is not None}

    async def stop(self) -> None:
        logger.info("shutting down: flushing pending ticks")
        if self.beat_task is not None:
            self.beat_task.cancel()
            await asyncio.gather(self.beat_task, return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(None, self.beat.shutdown)
        if self.feed is not None and self.feed_task is not None:
            self.feed.stop()
            await asyncio.gather(self.feed_task, return_exceptions=True)
        if self.runtime is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.runtime.close)
        if self.simulator is not None:
            await self.simulator.stop()
