"""The API against its own OpenAPI schema, with inputs generated from it (schemathesis).

Every operation of ``/api/schema/`` is called with valid and invalid parameters
and bodies; no answer may be a 5xx, and the documented answers must match the
schema. The database holds a pair with ticks, bars, a snapshot and an alert, so
the endpoints answer real rows, not only empty lists and 404s.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from analytics.models import Pair
from tests.support import cointegrated_ticks, make_alert, make_pair, store_and_resample

pytestmark = pytest.mark.django_db


class TestTransactionApp(WSGIHandler):
    """The WSGI app inside the test's transaction, as Django's test client runs it.

    A plain ``WSGIHandler`` closes the connection after each request (the
    ``close_old_connections`` signal handlers), which would end the test's
    transaction and lose the fixture rows.
    """

    __test__ = False  # not a test class

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            return super().__call__(environ, start_response)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


APP = TestTransactionApp()
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)


# Random strings and ids almost never name a stored symbol or pair, and random pair
# settings almost never pass validation, which would leave the answers with rows
# untested: the hooks mix the real ones in with what the schema generates. They read
# constants only (never the database), so a write cannot change what is generated.

#: What exists: the ``data`` fixture puts the pair's id here.
KNOWN: dict[str, list] = {"id": [], "pair": [], "symbol": ["BTCUSDT", "ethusdt"]}
VALID_PAIRS = [
    {"symbol_a": "solusdt", "symbol_b": "ETHUSDT", "interval": "1m", "window": 120, "min_bars": 60},
    {
        "symbol_a": "BTCUSDT",
        "symbol_b": "ETHUSDT",
        "interval": "5m",
        "window": 2**63 - 1,  # the schema's maximum
        "min_bars": 3,
        "entry_z": 1e308,
        "exit_z": 0.0,
        "min_correlation": -1.0,
        "max_adf_pvalue": 1.0,
        "active": False,
    },
]


def mixed_in(values: dict | None) -> st.SearchStrategy:
    """``values`` as generated, or with one known parameter put in."""
    if not values:
        return st.just(values)
    choices = [values]
    for name, known in KNOWN.items():
        if name in values:
            choices += [{**values, name: value} for value in known]
    return st.sampled_from(choices)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    return mixed_in(path_parameters)


@schema.hook
def flatmap_query(context, query):
    return mixed_in(query)


@schema.hook
def flatmap_body(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, *VALID_PAIRS])


# A few dozen generated cases per operation (besides the boundary cases schemathesis
# derives from the schema); the same ones on every run (the "pairs" profile, conftest.py).
FUZZ = settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Forbidden, or a token that is no token; 404 where the URL names no pair (the router wants digits).
REFUSED = {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]


@pytest.fixture(autouse=True)
def data(pipeline) -> Iterator[int]:
    """A ready pair with 70 s of ticks, their bars, a recorded snapshot and an alert."""
    cache.clear()
    pair = make_pair(window=60, min_bars=30)
    KNOWN["id"][:] = KNOWN["pair"][:] = [pair.id]
    ticks = cointegrated_ticks(70)
    store_and_resample(ticks)
    snapshots = pipeline.snapshots(now=ticks[-1].timestamp + 10_000, force=True)
    assert snapshots and snapshots[0].ready
    make_alert(pair, bar_time=snapshots[0].as_of)
    yield pair.id
    cache.clear()


@pytest.fixture
def staff_token() -> str:
    staff = User.objects.create_user("desk", is_staff=True)
    return Token.objects.create(user=staff).key


@schema.include(method="GET").parametrize()
@FUZZ
def test_reads_answer_every_input_without_a_server_error_and_as_documented(case):
    case.call_and_validate(checks=CHECKS)


@schema.exclude(method="GET").parametrize()
@FUZZ
def test_anonymous_writes_are_refused_without_a_server_error(case):
    before = list(Pair.objects.values())
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    # The generator also tries methods the path does not have (OPTIONS, TRACE): only writes must fail.
    if response.request.method in WRITES:
        assert response.status_code in REFUSED, (response.request.method, response.status_code, response.text)
    assert list(Pair.objects.values()) == before


@schema.exclude(method="GET").parametrize()
@FUZZ
def test_staff_writes_answer_every_input_without_a_server_error_and_as_documented(case, staff_token):
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS)
