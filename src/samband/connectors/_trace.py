"""``-vv``: every HTTP request and answer logged at debug level on ``samband.http``, with
credentials masked (:mod:`samband.redact`).  Given to each ``httpx.Client`` as event
hooks; with debug logging off a hook is one level check."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from samband import redact

log = logging.getLogger("samband.http")


def _request(request: httpx.Request) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    # a credential sent in a header is masked wherever else it may turn up (an echo)
    redact.remember(
        v.partition(" ")[2] or v for k, v in request.headers.items() if redact.is_secret_name(k)
    )
    try:
        content = request.content
    except httpx.RequestNotRead:
        content = b""
    log.debug(
        "→ %s %s headers=%s%s",
        request.method,
        redact.url(str(request.url)),
        redact.headers(request.headers.items()),
        _body(content, request.headers.get("content-type", "")),
    )


def _response(response: httpx.Response) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    response.read()
    ctype = response.headers.get("content-type", "")
    _remember_tokens(response.content, ctype)
    log.debug(
        "← %s %s %s%s",
        response.status_code,
        response.request.method,
        redact.url(str(response.request.url)),
        _body(response.content, ctype),
    )


def _remember_tokens(content: bytes, content_type: str) -> None:
    """Tokens a token endpoint answers are masked in later lines too (sent back in a
    header or a body of another shape)."""
    if b"token" not in content.lower():
        return
    import orjson

    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return
    if isinstance(value, dict):
        redact.remember(
            v for k, v in value.items() if redact.is_secret_name(str(k)) and isinstance(v, str)
        )


def _body(content: bytes, content_type: str) -> str:
    text = redact.body(content, content_type)
    return f" body={text}" if text else ""


def event_hooks() -> dict[str, list[Any]]:
    """The hooks to give an ``httpx.Client``: ``httpx.Client(event_hooks=event_hooks())``."""
    return {"request": [_request], "response": [_response]}
