"""The alerts page: every alert, newest first, filtered and paged, with where it was sent; and its CSV.

The filters live in the query string (``pair``, ``kind``, ``direction``, ``reason``,
``from``, ``to``, ``page``), so a filtered page is a link to share and the CSV
download takes the same query. Bad values are refused by field, as the API refuses
them: on the page in words (400), in the CSV as plain text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from rest_framework import serializers

from alerts.models import Alert
from alerts.selectors import alerts_filtered
from analytics.models import Pair
from pairs_project.common.times import time_ms

from ..formatting import direction_text, iso_utc, number_text, pvalue_text, signed_text, significant_text, utc_text
from ..health import system_health
from ..throttles import CsvRateThrottle, PageRateThrottle, rate_limited
from .base import bad_request, csv_response

#: Alerts on one page.
ALERTS_PER_PAGE = 50

#: The query parameters the page reads; ``page`` is the page's own, the CSV has every row.
FILTERS = ("pair", "kind", "direction", "reason", "from", "to")

CSV_COLUMNS = (
    "id",
    "pair",
    "symbol_a",
    "symbol_b",
    "interval",
    "kind",
    "direction",
    "reason",
    "created_at",
    "created_at_utc",
    "bar_time",
    "bar_time_utc",
    "signal_zscore",
    "zscore",
    "adf_pvalue",
    "coint_pvalue",
    "correlation",
    "related_run",
    "hedge_ratio",
    "message",
    "notifications",
)


def bound_end(text: str) -> int:
    """The first ms after the time ``text`` names, taken as a whole: a date is its day, a time its
    minute or second, ms since the epoch that ms (so ``to=2026-01-02`` covers all of that day)."""
    start = time_ms(text)
    text = text.strip()
    if text.isdigit():
        return start + 1
    _, sep, clock = text.replace(" ", "T", 1).partition("T")
    clock = re.split(r"[Z+-]", clock)[0]
    if not sep or not clock:
        return start + 86_400_000
    if "." in clock or "," in clock:
        return start + 1
    return start + {0: 3_600_000, 1: 60_000}.get(clock.count(":"), 1000)


class TimeBound(serializers.Field):
    """A time filter: ms since the epoch, or an ISO 8601 date or date-time, UTC unless it says."""

    def __init__(self, *, end: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end = end

    def to_internal_value(self, data: object) -> int:
        if not isinstance(data, str):
            raise serializers.ValidationError("a time is ms since the epoch or an ISO date such as 2026-11-01")
        try:
            ms = bound_end(data) if self.end else time_ms(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if _moment(ms, safe=True) is None:
            raise serializers.ValidationError(f"{data.strip()!r} is out of range: a time is before the year 10000")
        return ms


class AlertFilter(serializers.Serializer):
    """The page's filters (and the CSV's); each bad value is refused with a message of its own."""

    pair = serializers.PrimaryKeyRelatedField(
        queryset=Pair.objects.all(),
        required=False,
        error_messages={
            "does_not_exist": "there is no pair {pk_value}",
            "incorrect_type": "a pair is given by its id, a whole number",
        },
    )
    kind = serializers.ChoiceField(
        choices=Alert.Kind.choices, required=False, error_messages={"invalid_choice": '"{input}" is not entry or exit'}
    )
    direction = serializers.ChoiceField(
        choices=Alert.Direction.choices,
        required=False,
        error_messages={"invalid_choice": '"{input}" is not long_spread or short_spread'},
    )
    reason = serializers.ChoiceField(
        choices=Alert.Reason.choices,
        required=False,
        error_messages={"invalid_choice": '"{input}" is not entry, reverted or relationship_broken'},
    )
    page = serializers.IntegerField(min_value=1, required=False, default=1)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "from" is a keyword: these two cannot be declared as attributes.
        fields["from"] = TimeBound(required=False)
        fields["to"] = TimeBound(required=False, end=True)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "from" in attrs and "to" in attrs and attrs["to"] <= attrs["from"]:
            raise serializers.ValidationError({"to": ["must be after from"]})
        return attrs


def alerts_of(query: dict[str, Any]) -> QuerySet[Alert]:
    """The alerts a valid query names, newest first."""
    pair = query.get("pair")
    return alerts_filtered(
        pair_id=pair.pk if pair is not None else None,
        kind=query.get("kind"),
        direction=query.get("direction"),
        reason=query.get("reason"),
        created_from=_moment(query.get("from")),
        created_before=_moment(query.get("to")),
    )


def _moment(ms: int | None, *, safe: bool = False) -> datetime | None:
    """``ms`` as a UTC datetime (None for None; with ``safe``, None for ms no datetime can hold too)."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        if safe:
            return None
        raise


def _created_ms(alert: Alert) -> int:
    return int(alert.created_at.timestamp() * 1000)


REASONS = {str(value): str(label) for value, label in Alert.Reason.choices}


def notification_items(alert: Alert) -> list[dict[str, str]]:
    """Each channel the alert was sent through and how it went, in words."""
    return [
        {
            "channel": n.get_channel_display(),
            "status": n.status,
            "error": n.error,
            "text": n.state_text,
        }
        for n in alert.notifications.all()
    ]


def alert_row(alert: Alert) -> dict[str, Any]:
    """An alert as the page's table shows it."""
    pair = alert.pair
    way, _, legs = direction_text(alert.direction, pair.symbols).partition(" (")
    return {
        "id": alert.pk,
        "time": utc_text(_created_ms(alert)),
        "bar": utc_text(alert.bar_time),
        "pair": pair,
        "pair_url": reverse("dashboard-pair", args=[pair.pk]),
        "kind": alert.kind,
        "reason": REASONS.get(alert.reason, alert.reason) if alert.kind == Alert.Kind.EXIT else "",
        "direction": alert.direction,
        "way": way,
        "legs": legs.rstrip(")"),
        "signal_z": signed_text(alert.signal_zscore),
        "zscore": signed_text(alert.zscore),
        "coint_pvalue": pvalue_text(alert.coint_pvalue),
        "hedge_ratio": number_text(alert.hedge_ratio, 4),
        "message": alert.message,
        "notifications": notification_items(alert),
    }


def _choices(choices: list[tuple[str, str]], chosen: str) -> list[dict[str, Any]]:
    return [{"value": value, "label": label, "selected": value == chosen} for value, label in choices]


def _input_time(text: str, *, end: bool = False) -> str:
    """A time filter as a ``datetime-local`` input shows it (2026-01-01T10:15:07), or as typed if it is none.

    ``end``: the last second the bound covers (``to=2026-01-02`` shows 23:59:59), so that sending the
    form again filters the same alerts.
    """
    try:
        ms = bound_end(text) - 1 if end else time_ms(text)
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return text


def _page_url(filters: dict[str, str], page: int) -> str:
    query = {**filters, "page": str(page)} if page > 1 else filters
    return f"{reverse('dashboard-alerts')}?{urlencode(query)}" if query else reverse("dashboard-alerts")


@require_GET
@rate_limited(PageRateThrottle)
def alerts_page(request: HttpRequest) -> HttpResponse:
    """Every alert, newest first, filtered by the query and paged; a bad filter is said on the page (400)."""
    given = {key: request.GET[key] for key in (*FILTERS, "page") if key in request.GET}
    filled = {key: value for key, value in given.items() if value.strip()}
    if filled != given:  # a form sent with fields left empty: the same filters in a clean URL
        return HttpResponseRedirect(_page_url({k: v for k, v in filled.items() if k != "page"}, 1))
    filters = {key: value for key, value in filled.items() if key != "page"}
    params = AlertFilter(data=filled)
    errors: dict[str, str] = {}
    page: Page | None = None
    if params.is_valid():
        query = params.validated_data
        paginator = Paginator(alerts_of(query), ALERTS_PER_PAGE)
        if query["page"] > paginator.num_pages:
            pages = paginator.num_pages
            errors["page"] = f"there {'is only 1 page' if pages == 1 else f'are only {pages} pages'} of alerts"
        else:
            page = paginator.page(query["page"])
    else:
        errors = {field: " ".join(str(m) for m in messages) for field, messages in params.errors.items()}
    pairs = list(Pair.objects.order_by("symbol_a", "symbol_b", "interval"))
    context = {
        "rows": [alert_row(a) for a in page.object_list] if page is not None else [],
        "page": page,
        "errors": errors,
        "values": {
            **{key: filled.get(key, "") for key in FILTERS},
            "from": _input_time(filled["from"]) if "from" in filled else "",
            "to": _input_time(filled["to"], end=True) if "to" in filled else "",
        },
        "pairs": [{"value": str(p.pk), "label": str(p), "selected": str(p.pk) == filled.get("pair")} for p in pairs],
        "kinds": _choices(Alert.Kind.choices, filled.get("kind", "")),
        "directions": _choices(Alert.Direction.choices, filled.get("direction", "")),
        "reasons": _choices(Alert.Reason.choices, filled.get("reason", "")),
        "filtered": bool(filters),
        "newer_url": _page_url(filters, page.previous_page_number()) if page and page.has_previous() else None,
        "older_url": _page_url(filters, page.next_page_number()) if page and page.has_next() else None,
        "csv_url": f"{reverse('dashboard-alerts-csv')}{'?' + urlencode(filters) if filters else ''}",
        "api_url": reverse("api-alerts"),
        "health": system_health(),
    }
    return render(request, "dashboard/alerts.html", context, status=400 if errors else 200)


def _csv_number(value: float | None) -> str | None:
    """A statistic written out to 8 significant digits: the float's own noise (2.4137000000000004) left out."""
    return None if value is None else significant_text(value)


@require_GET
@rate_limited(CsvRateThrottle)
def alerts_csv(request: HttpRequest) -> HttpResponse:
    """The alerts the page's query names (every page), times as ms and ISO 8601 UTC."""
    given = {key: request.GET[key] for key in FILTERS if request.GET.get(key, "").strip()}
    params = AlertFilter(data=given)
    if not params.is_valid():
        return bad_request(params.errors)
    rows = []
    for alert in alerts_of(params.validated_data).iterator(chunk_size=1000):
        pair = alert.pair
        created = _created_ms(alert)
        rows.append(
            [
                alert.pk,
                pair.pk,
                pair.symbol_a,
                pair.symbol_b,
                pair.interval,
                alert.kind,
                alert.direction,
                alert.reason,
                created,
                iso_utc(created),
                alert.bar_time,
                iso_utc(alert.bar_time),
                _csv_number(alert.signal_zscore),
                _csv_number(alert.zscore),
                _csv_number(alert.adf_pvalue),
                _csv_number(alert.coint_pvalue),
                _csv_number(alert.correlation),
                alert.related_run,
                _csv_number(alert.hedge_ratio),
                alert.message,
                "; ".join(n["text"] for n in notification_items(alert)),
            ]
        )
    return csv_response("alerts.csv", CSV_COLUMNS, rows)
