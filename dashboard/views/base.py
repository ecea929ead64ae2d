"""What every page view shares: error answers, CSV downloads, who may start a run."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from analytics.bars import INTERVALS
from analytics.models import Pair

from ..formatting import plain_number


def bad_request(errors: dict) -> HttpResponseBadRequest:
    """A 400 naming each bad parameter, as plain text (the client asked for a file)."""
    message = "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in errors.items())
    return HttpResponseBadRequest(message + "\n", content_type="text/plain; charset=utf-8")


def csv_response(filename: str, header: tuple[str, ...], rows: list[list[Any]]) -> HttpResponse:
    """A CSV download: None is an empty cell, a float is written without float noise (``csv_cell``)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return response


def csv_cell(value: Any) -> Any:
    """A value as a CSV writes it: None empty, a float in the shortest text that reads back as the float
    rounded to 12 significant digits (a volume summed to 1.8559999999999997 is 1.856; the JSON API has
    the doubles whole), anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, float):
        return plain_number(value)
    return value


def may_run(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


def pair_config(pair: Pair) -> dict[str, Any]:
    """What a pair's page scripts are told of it, whichever page: its id, legs and bar interval."""
    return {
        "pair": pair.id,
        "symbol_a": pair.symbol_a,
        "symbol_b": pair.symbol_b,
        "interval": pair.interval,
        "interval_ms": INTERVALS[pair.interval],
    }
