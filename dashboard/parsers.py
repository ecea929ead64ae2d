"""The API's JSON parser: every body that is not JSON is a 400 with a message, never a 500.

DRF's own parser uses the standard library, which recurses once per nesting level:
a 2,000-deep body raised ``RecursionError`` (a 500). orjson parses without Python
recursion and refuses invalid UTF-8, lone surrogates, NaN and numbers past the float
range, each as a ``JSONDecodeError`` that becomes a 400. It parses up to 1,024
levels, but DRF's fields recurse on what they are given (``str(value)``), so the
parser refuses more than ``MAX_DEPTH`` levels itself. Integers beyond 64 bits are
read as floats (the API takes none). The body is read
up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django's limit for form bodies), and a
larger one is a 413.
"""

from __future__ import annotations

import codecs
from typing import Any

import orjson
from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

#: Nesting levels a body may have: far above what any endpoint takes (at most 2), far
#: below what recursion in the fields could fail on.
MAX_DEPTH = 32


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "body_too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise BodyTooLarge(f"Request body larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            if codecs.lookup(encoding).name != "utf-8":  # JSON is UTF-8 (RFC 8259) unless the client said otherwise
                body = body.decode(encoding)
            data = orjson.loads(body)
        except (LookupError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, (dict, list)) and deeper_than(data, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        return data
