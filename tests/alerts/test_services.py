"""Alerts through the real pipeline: ticks -> bars -> snapshots -> rule -> rows, pushes, webhooks."""

from __future__ import annotations

import itertools
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from rest_framework.test import APIClient

from alerts import services as alert_services
from alerts.models import Alert, AlertState, Notification
from analytics import services
from analytics.models import Pair
from ingestion.binance import Tick
from ingestion.services import ticks_store
from ingestion.simulator import make_scenario
from tests.support import T0, make_pair

pytestmark = pytest.mark.django_db(transaction=True)

SHOCK_AT = 150  # seconds


def scenario_ticks(name: str, seconds: int, *, seed: int, **options) -> list[Tick]:
    """The simulator's own scenario, generated offline (no clock), as ticks."""
    scenario = make_scenario(name, rate=40, seed=seed, half_life=5, spread_sigma=10, **options)
    batch = scenario.take(float(seconds), 10**7)
    next_id = {spec.symbol: spec.first_id for spec in scenario.specs}
    ticks = []
    for symbol, offset, price, quantity in zip(
        batch.symbols, batch.offsets, batch.prices, batch.quantities, strict=True
    ):
        ticks.append(Tick(T0 + int(offset * 1000), symbol, price, quantity, next_id[symbol]))
        next_id[symbol] += 1
    return ticks


def run_pipeline(pipeline, ticks: list[Tick], seconds: int, *, after_each=None) -> None:
    """What the beat does every second, on event time: store, resample, snapshot (+ rule)."""
    by_second: dict[int, list[Tick]] = {}
    for tick in ticks:
        by_second.setdefault((tick.timestamp - T0) // 1000, []).append(tick)
    for k in range(seconds):
        if by_second.get(k):
            ticks_store(by_second[k])
        services.bars_resample()
        pipeline.snapshots(now=T0 + (k + 1) * 1000)
        if after_each:
            after_each(k)


def excursion_pair(**fields) -> Pair:
    """A short window, so the tests run fast; on 120 bars Engle-Granger has little power (its p hovers
    around 0.05 on this market), so the confirmation asks for 10 related bars, not the default 30."""
    return make_pair(
        window=120,
        min_bars=60,
        entry_z=2.0,
        exit_z=0.5,
        min_correlation=0.6,
        max_adf_pvalue=0.05,
        max_coint_pvalue=0.05,
        confirm_bars=10,
        **fields,
    )


def first_entry_signal(snapshots: list[dict], pair: Pair) -> int | None:
    """The first bar after the shock where the rule's entry holds (docs/analytics.md): armed by then,
    the previous snapshot ending a run of ``confirm_bars`` related ones, |signal z| > entry_z."""
    previous = None
    for s in snapshots:
        if s is None or s["as_of"] is None:
            continue
        if previous is not None and s["as_of"] >= T0 + SHOCK_AT * 1000 and s["as_of"] != previous["as_of"]:
            confirmed = previous["related_run"] >= pair.confirm_bars
            if confirmed and s["signal_zscore"] is not None and abs(s["signal_zscore"]) > pair.entry_z:
                return s["as_of"]
        previous = s
    return None


@pytest.mark.parametrize("size,direction", [(4.5, "short_spread"), (-4.5, "long_spread")])
def test_a_shock_on_a_cointegrated_pair_alerts_once_in_its_direction_then_exits(size, direction, pipeline):
    pair = excursion_pair()
    snapshots: list[dict] = []
    ticks = scenario_ticks("cointegrated", 200, seed=3, shocks=[(SHOCK_AT, size)])
    run_pipeline(pipeline, ticks, 200, after_each=lambda k: snapshots.append(cache.get(f"pairs:snapshot:{pair.id}")))
    alerts = list(Alert.objects.filter(pair=pair).order_by("bar_time"))
    assert [(a.kind, a.direction) for a in alerts] == [("entry", direction), ("exit", direction)]
    entry, exit_ = alerts
    # In the shock's own bar, or the next one (the bar a shock lands in may close a second later).
    assert first_entry_signal(snapshots, pair) == entry.bar_time <= T0 + (SHOCK_AT + 1) * 1000
    assert abs(entry.signal_zscore) > 2.0 and entry.related_run >= pair.confirm_bars
    assert entry.snapshot["as_of"] == entry.bar_time
    assert entry.snapshot["signal_zscore"] == entry.signal_zscore
    # The shock also spoils the relationship tests of the windows that hold it: the entry closes as the
    # spread reverts, or earlier if break_after of those windows in a row are not related (the rule's words).
    if exit_.reason == "reverted":
        assert abs(exit_.signal_zscore) < 0.5
    else:
        assert exit_.reason == "relationship_broken" and exit_.snapshot["related"] is False
    assert AlertState.objects.get(pair=pair).state["armed"] is True


def test_a_15_sigma_shock_alerts_in_its_own_bar(pipeline):
    """The shock spoils the tests of the window that contains it; the entry rests on the run before it."""
    pair = excursion_pair()
    run_pipeline(pipeline, scenario_ticks("cointegrated", SHOCK_AT + 3, seed=3, shocks=[(SHOCK_AT, 15)]), SHOCK_AT + 3)
    (entry,) = Alert.objects.filter(pair=pair, kind="entry")
    assert entry.bar_time == T0 + SHOCK_AT * 1000
    assert entry.signal_zscore > 10  # scored against the window before it: not diluted


def test_a_random_walk_spread_with_correlated_returns_does_not_alert(pipeline):
    """The simulator's random_walk scenario at the default window (300) for ten minutes.

    The returns correlation and the in-sample z would pass on their own; Engle-Granger
    and the confirmation run keep the rule quiet (the rate over many seeds is
    measured by ``make bench``).
    """
    pair = make_pair(window=300, min_bars=100)
    snapshots: list[dict] = []
    run_pipeline(
        pipeline,
        scenario_ticks("random_walk", 600, seed=3),
        600,
        after_each=lambda k: snapshots.append(cache.get(f"pairs:snapshot:{pair.id}")),
    )
    ready = [s for s in snapshots if s and s["ready"]]
    assert len(ready) > 450
    assert max(s["correlation"] for s in ready) > 0.6  # the returns gate alone would pass
    assert max(abs(s["zscore"]) for s in ready) > 2.0  # and so would the in-sample z
    assert Alert.objects.count() == 0


def test_an_open_entry_is_closed_when_the_relationship_breaks(pipeline):
    """After the entry one leg runs away in steps: the windows stop being related, and the entry is closed."""
    pair = excursion_pair()
    steps = [(SHOCK_AT + k, 25.0) for k in range(2, 40, 2)]
    run_pipeline(
        pipeline, scenario_ticks("cointegrated", SHOCK_AT + 45, seed=3, shocks=[(SHOCK_AT, 4.5), *steps]), SHOCK_AT + 45
    )
    alerts = list(Alert.objects.filter(pair=pair).order_by("bar_time"))
    assert [(a.kind, a.reason) for a in alerts] == [("entry", "entry"), ("exit", "relationship_broken")]
    assert alerts[1].bar_time - alerts[0].bar_time <= 45_000


def test_a_restart_in_the_middle_of_an_excursion_does_not_fire_it_again(pipeline):
    pair = excursion_pair()
    ticks = scenario_ticks("cointegrated", 200, seed=3, shocks=[(SHOCK_AT, 4.5)])
    cut = T0 + (SHOCK_AT + 4) * 1000
    run_pipeline(pipeline, [t for t in ticks if t.timestamp < cut], SHOCK_AT + 4)
    assert Alert.objects.filter(kind="entry").count() == 1
    cache.clear()  # a restart loses the cache; the rule state is in the database
    pipeline.snapshots(now=cut)  # the same bar once more (replayed)
    run_pipeline(pipeline, [t for t in ticks if t.timestamp >= cut], 200)
    assert [(a.kind) for a in Alert.objects.filter(pair=pair).order_by("bar_time")] == ["entry", "exit"]


def test_an_alert_is_pushed_to_the_pairs_group(pipeline):
    pair = excursion_pair()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"pair-{pair.id}", channel)
    messages: list[dict] = []

    def drain(k: int) -> None:  # as a dashboard would, so the channel never fills up
        messages.extend(async_to_sync(_receive_all)(layer, channel))

    run_pipeline(
        pipeline,
        scenario_ticks("cointegrated", SHOCK_AT + 4, seed=3, shocks=[(SHOCK_AT, 4.5)]),
        SHOCK_AT + 4,
        after_each=drain,
    )
    alerts = [m for m in messages if m["type"] == "alert.new"]
    assert [orjson.loads(m["text"])["kind"] for m in alerts] == ["entry"]
    assert orjson.loads(alerts[0]["text"]) == {"type": "alert", **alert_services.alert_payload(Alert.objects.get())}
    assert sum(m["type"] == "snapshot.update" for m in messages) > 100


async def _receive_all(layer, channel) -> list[dict]:
    import asyncio

    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), 0.01))
        except TimeoutError:
            return received


class Hook(BaseHTTPRequestHandler):
    mode = "ok"
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(body)
        if Hook.mode == "hang":
            time.sleep(3)
        status = HTTPStatus.OK if Hook.mode == "ok" else HTTPStatus.INTERNAL_SERVER_ERROR
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch, settings):
    """A receiver on 127.0.0.1: loopback is refused by the egress policy, except where tests allow it."""
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK = True
    settings.ALERT_WEBHOOK_TIMEOUT = 0.5
    monkeypatch.setattr(alert_services, "DELIVERY_RETRY", alert_services.RetryPolicy(3, backoff=1, backoff_max=1))
    monkeypatch.setattr(alert_services.RetryPolicy, "countdown", lambda self, retries: 0.05)  # fast retries
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def wait_for_status(alert_id: int, status: str, timeout: float = 10) -> Notification:
    """The alert's webhook notification, once its status is ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notification = Notification.objects.get(alert_id=alert_id, channel=Notification.Channel.WEBHOOK)
        if notification.status == status:
            return notification
        time.sleep(0.05)
    raise AssertionError(f"webhook status stayed {notification.status}")


def test_a_webhook_receives_the_alert_as_json(webhook, pipeline):
    Hook.mode = "ok"
    excursion_pair(webhook_url=webhook)
    run_pipeline(pipeline, scenario_ticks("cointegrated", SHOCK_AT + 3, seed=3, shocks=[(SHOCK_AT, 4.5)]), SHOCK_AT + 3)
    alert = Alert.objects.get()
    assert wait_for_status(alert.id, "sent").attempts == 1
    import json

    assert json.loads(Hook.received[0]) == alert_services.alert_payload(alert)


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_a_failing_webhook_is_retried_recorded_and_never_slows_the_cycle(webhook, mode, settings, pipeline):
    Hook.mode = mode
    # A hanging hook (3 s) is cut off after 2 s: a delivery made in the cycle would
    # stretch it past 2 s, far from a busy machine's slowest cycle.
    settings.ALERT_WEBHOOK_TIMEOUT = 2.0
    pair = excursion_pair(webhook_url=webhook)
    ticks = scenario_ticks("cointegrated", SHOCK_AT + 6, seed=3, shocks=[(SHOCK_AT, 4.5)])
    durations = []

    def timed(k: int) -> None:
        durations.append(time.monotonic())

    run_pipeline(pipeline, ticks, SHOCK_AT + 6, after_each=timed)
    steps = [b - a for a, b in itertools.pairwise(durations)]
    entry = Alert.objects.get(pair=pair)
    assert max(steps) < 1.5
    notification = wait_for_status(entry.id, "failed")
    assert notification.attempts == 3
    assert notification.error == (
        "attempt 3: HTTP 500 from the receiver" if mode == "error" else "attempt 3: timed out"
    )


def test_alerts_api_is_newest_first_filtered_and_paginated():
    pair = excursion_pair()
    other, _ = Pair.objects.update_or_create(symbol_a="SOLUSDT", symbol_b="ETHUSDT", interval="1s")
    for k in range(5):
        Alert.objects.create(
            pair=pair,
            kind="entry",
            direction="long_spread",
            reason="entry",
            bar_time=k,
            zscore=-2.5,
            message=f"m{k}",
            snapshot={},
        )
    Alert.objects.create(
        pair=other,
        kind="exit",
        direction="short_spread",
        reason="reverted",
        bar_time=1,
        zscore=0.1,
        message="other",
        snapshot={},
    )
    api = APIClient()
    body = api.get("/api/alerts/").json()
    assert [a["message"] for a in body] == ["other", "m4", "m3", "m2", "m1", "m0"]
    assert set(body[0]) >= {
        "id",
        "pair",
        "kind",
        "direction",
        "created_at",
        "bar_time",
        "zscore",
        "adf_pvalue",
        "correlation",
        "hedge_ratio",
        "message",
    }
    page = api.get("/api/alerts/", {"pair": pair.id, "page_size": 2})
    assert [a["message"] for a in page.json()] == ["m4", "m3"]
    assert page["X-Total-Count"] == "5"
    assert 'rel="next"' in page["Link"]
    for bad in ({"pair": "x"}, {"pair": 999}, {"page": 99}):
        response = api.get("/api/alerts/", bad)
        assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND), bad
