"""List pagination that keeps the body a plain JSON list.

Clients that read ``/api/alerts/`` as a list keep working; the next and previous
pages are in the ``Link`` header (RFC 8288, as GitHub's API does) and the total
in ``X-Total-Count``.
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class LinkHeaderPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_paginated_response(self, data: list) -> Response:
        links = []
        if (url := self.get_next_link()) is not None:
            links.append(f'<{url}>; rel="next"')
        if (url := self.get_previous_link()) is not None:
            links.append(f'<{url}>; rel="prev"')
        headers = {"X-Total-Count": str(self.page.paginator.count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """The body is the plain list (the schema generator would otherwise document a wrapper object)."""
        return schema


def next_page_headers(request: Request, **params: object) -> dict[str, str]:
    """A ``Link: <...>; rel="next"`` header for keyset pages (ticks before an id, bars after a time)."""
    url = request.build_absolute_uri()
    for key, value in params.items():
        url = replace_query_param(url, key, value)
    return {"Link": f'<{url}>; rel="next"'}
