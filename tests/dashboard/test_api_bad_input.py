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

from tests.support import cointegrated_ticks, make_pair, store_and_resample

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
        "/api/health/",
        "/api/symbols/",
        "/api/ticks/",
        "/api/bars/",
        "/api/alerts/",
        "/api/pairs/",
        "/api/pairs/{id}/",
        "/api/pairs/{id}/snapshot/",
        "/api/pairs/{id}/series/",
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
    bodies = [
        {},
        {"symbol_a": None},
        {"window": "x"},
        {"entry_z": "nan"},
        {"interval": 5},
        {"active": "maybe"},
        {"symbol_a": "A" * 100, "symbol_b": "ETHUSDT"},
        {"min_correlation": "1e309"},
        {"max_adf_pvalue": "inf"},
        {"exit_z": "-inf"},
    ]
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


UNPARSEABLE = {
    "2,000-deep array": "[" * 2000 + "]" * 2000,
    "2,000-deep object": '{"a": ' * 2000 + "1" + "}" * 2000,
    "deep value in a field": '{"symbol_a": ' + "[" * 1500 + "]" * 1500 + "}",
    "not UTF-8": b'{"symbol_a": "\xff"}',
    "lone surrogate": '{"symbol_a": "\\ud800"}',
    "NaN": '{"entry_z": NaN}',
    "a number past the float range": '{"entry_z": 1e400}',
    "truncated": '{"symbol_a": "BTC',
    "blank": " ",
}


@pytest.mark.parametrize("body", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_a_body_that_is_not_json_is_a_400_with_a_message(data, body):
    staff = User.objects.create_user("desk", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    for method, url in (("post", "/api/pairs/"), ("patch", f"/api/pairs/{data}/"), ("put", f"/api/pairs/{data}/")):
        response = getattr(api, method)(url, body, content_type="application/json")
        assert response.status_code == HTTPStatus.BAD_REQUEST, (method, response.status_code)
        assert response.json()["detail"].startswith("JSON parse error"), response.json()


def test_a_json_body_nested_deeper_than_32_levels_is_refused_before_any_field_sees_it(data):
    """orjson parses up to 1,024 levels, but DRF's fields recurse on what they get (``str(value)``):
    32 levels is the parser's limit, far above any body the API takes (at most 2)."""
    staff = User.objects.create_user("desk", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    for depth, expected in ((1000, "JSON parse error"), (33, "JSON parse error"), (31, None)):
        body = '{"symbol_a": ' + "[" * depth + "]" * depth + ', "symbol_b": "ETHUSDT"}'
        response = api.post("/api/pairs/", body, content_type="application/json")
        assert response.status_code == HTTPStatus.BAD_REQUEST, depth
        if expected:
            assert response.json()["detail"].startswith(expected), depth
        else:
            assert "symbol_a" in response.json(), depth  # parsed; the field refuses a list


def test_a_json_body_larger_than_the_upload_limit_is_refused(data, settings):
    from io import BytesIO

    from rest_framework.exceptions import APIException

    from dashboard.parsers import JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with pytest.raises(APIException) as refused:
        JSONParser().parse(BytesIO(b'{"symbol_a": "' + b"X" * 2000 + b'"}'))
    assert refused.value.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "1000 bytes" in str(refused.value.detail)
    assert JSONParser().parse(BytesIO(b'{"symbol_a": "XX"}')) == {"symbol_a": "XX"}
    staff = User.objects.create_user("desk", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    response = api.post("/api/pairs/", {"symbol_a": "X" * 2000}, format="json")
    # Django's own guard answers first when something read the body before the parser (the test client does).
    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


def test_a_json_body_in_another_declared_charset_is_read_in_it(data):
    staff = User.objects.create_user("desk", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    body = '{"symbol_a": "SOLUSDT", "symbol_b": "ETHUSDT", "interval": "1m", "window": 120, "min_bars": 60}'
    response = api.post("/api/pairs/", body.encode("utf-16"), content_type="application/json; charset=utf-16")
    assert response.status_code == HTTPStatus.CREATED, response.content
