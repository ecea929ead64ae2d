"""What every page view shares: error answers, CSV downloads, who may start a run."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


def bad_request(errors: dict) -> HttpResponseBadRequest:
    """A 400 naming each bad parameter, as plain text (the client asked for a file)."""
    message = "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in errors.items())
    return HttpResponseBadRequest(message + "\n", content_type="text/plain; charset=utf-8")


def csv_response(filename: str, header: tuple[str, ...], rows: list[list[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return response


def may_run(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)
