"""Every API endpoint answers bad input with a 4xx and a message, never a 500.

The endpoints are walked from the OpenAPI schema, so a new endpoint is covered
the day it is added.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.analytics.test_services import cointegrated_ticks, make_pair, store_and_resample

pytestmark = pytest.mark.django_db

JUNK = ["", "x", "-1", "0", "1e309", "99999999999999999999999", "nan", "%00", "' OR 1=1 --", "BTCUSDT", "1m", "[]"]


def endpoints() -> list[tuple[str, str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            found.append((method.upper(), path, names))
    return found


@pytest.fixture
def data() -> int:
    pair = make_pair(window=60, min_bars=30)
    store_and_resample(cointegrated_ticks(70))
    return pair.id


def test_the_schema_covers_every_endpoint_of_the_contract():
    paths = {path for _, path, _ in endpoints()}
    assert paths >= {
        "/api/health/", "/api/symbols/", "/api/ticks/", "/api/bars/", "/api/alerts/", "/api/pairs/",
        "/api/pairs/{id}/", "/api/pairs/{id}/snapshot/", "/api/pairs/{id}/series/",
    }


def test_the_schema_gives_the_alerts_as_the_plain_list_they_are_with_their_page_headers(data):
    """The paginator keeps the body a list; the schema once described DRF's {count, results} object."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    answer = schema["paths"]["/api/alerts/"]["get"]["responses"]["200"]
    body = answer["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert body == {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
    assert set(answer["headers"]) == {"Link", "X-Total-Count"}
    for path in ("/api/ticks/", "/api/bars/"):
        assert set(schema["paths"][path]["get"]["responses"]["200"]["headers"]) == {"Link"}
    assert isinstance(APIClient().get("/api/alerts/").json(), list)


def test_every_get_endpoint_answers_junk_parameters_without_a_500(data):
    api = APIClient()
    checked = 0
    for method, path, names in endpoints():
        if method != "GET":
            continue
        for pk in (str(data), "0", "abc", "999999"):
            url = path.replace("{id}", pk)
            for name in names:
                for junk in JUNK:
                    response = api.get(url, {name: junk})
                    assert response.status_code < 500, (url, name, junk, response.status_code)
                    if response.status_code == HTTPStatus.BAD_REQUEST:
                        assert response.json(), (url, name, junk)
                    checked += 1
            if "{id}" not in path:
                break
    assert checked > 150


def test_staff_writes_answer_junk_bodies_with_400s(data):
    staff = User.objects.create_user("desk", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    bodies = [{}, {"symbol_a": None}, {"window": "x"}, {"entry_z": "nan"}, {"interval": 5}, {"active": "maybe"},
              {"symbol_a": "A" * 100, "symbol_b": "ETHUSDT"}, {"min_correlation": "1e309"}, {"max_adf_pvalue": "inf"}, {"exit_z": "-inf"}]
    for body in bodies:
        created = api.post("/api/pairs/", body, format="json")
        assert created.status_code == HTTPStatus.BAD_REQUEST, (body, created.status_code)
        patched = api.patch(f"/api/pairs/{data}/", body, format="json")
        assert patched.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST), (body, patched.status_code)
        if any(v in ("nan", "inf", "-inf", "1e309") for v in body.values()):
            assert patched.status_code == HTTPStatus.BAD_REQUEST, body
    assert api.post("/api/pairs/", "not json", content_type="application/json").status_code == HTTPStatus.BAD_REQUEST


def test_ticks_and_bars_page_with_a_link_header(data):
    api = APIClient()
    first = api.get("/api/ticks/", {"symbol": "BTCUSDT", "limit": 50})
    assert len(first.json()) == 50 and 'rel="next"' in first["Link"]
    next_url = first["Link"].split(";")[0].strip("<>")
    second = api.get(next_url)
    ids = [t["trade_id"] for t in first.json() + second.json()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 100
    bars = api.get("/api/bars/", {"symbol": "ETHUSDT", "interval": "1s", "start": 0, "limit": 40})
    more = api.get(bars["Link"].split(";")[0].strip("<>")).json()
    times = [b["t"] for b in bars.json() + more]
    assert times == sorted(times) and len(times) == len(set(times)) == 70
