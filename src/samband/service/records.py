"""The records page and ``/api/records?q=``: a record found by ref, id or value with its
link group (see :mod:`samband.engine.find`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from samband.errors import SambandError
from samband.service.service import Service

DEFAULT_LIMIT = 10


def query(request: Request) -> tuple[str, int]:
    """The search text and the number of groups asked for."""
    text = request.query_params.get("q", "")
    try:
        limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = DEFAULT_LIMIT
    return text, limit


def search(service: Service, request: Request) -> dict[str, Any]:
    """What the page shows: the query, the groups found, or why there are none."""
    text, limit = query(request)
    if not text.strip():
        return {"query": "", "groups": [], "truncated": False}
    try:
        found: dict[str, Any] = service.read("find", text, limit)
    except (SambandError, ValueError) as exc:
        return {"query": text, "groups": [], "truncated": False, "error": str(exc)}
    return found


def api(service: Service, request: Request) -> Any:
    text, limit = query(request)
    return service.read("find", text, limit)
