"""Exact Online webhooks, as ``samband serve`` receives them.

Exact POSTs ``{"Content": {"Topic", "ClientId", "Division", "Action", "Key",
"ExactOnlineEndpoint", "EventCreatedOn"}, "HashCode": "HEX"}`` where ``HashCode`` is the
HMAC-SHA256 of the ``Content`` JSON text *exactly as sent* (the bytes between
``"Content":`` and the comma before ``"HashCode"``), keyed with the app's webhook secret,
in upper-case hex.  The text is checked as received, never re-serialised: a body whose
``Content`` was re-written (other spacing, other key order) does not verify.

When a subscription is made, Exact first POSTs an empty body to the callback URL and
makes the subscription only if that answers 2xx: an empty body is that validation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from samband.plugin.push import PushedChange, PushHooks, Refused

if TYPE_CHECKING:
    from samband.connectors.base import Connector

#: webhook topic → the entity types whose records it announces
TOPICS: dict[str, tuple[str, ...]] = {
    "Accounts": ("Accounts",),
    "Contacts": ("Contacts",),
    "Items": ("Items",),
    "Projects": ("Projects",),
    "SalesOrders": ("SalesOrders", "SalesOrderLines"),
}
_HEX = frozenset("0123456789ABCDEF")


def topic_of(entity_type: str) -> str | None:
    return next((t for t, types in TOPICS.items() if entity_type in types), None)


def top_level_spans(text: str) -> list[tuple[str, int, int]]:
    """The keys of a JSON object with where each value's text starts and ends; raises
    ValueError when ``text`` is not one JSON object."""
    decoder = json.JSONDecoder()
    spans: list[tuple[str, int, int]] = []
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return spans if _skip(text, i + 1) == len(text) else _trailing()
    while True:
        key, i = decoder.raw_decode(text, i)
        if not isinstance(key, str):
            raise ValueError("a key is not a string")
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise ValueError("':' expected")
        start = _skip(text, i + 1)
        _, end = decoder.raw_decode(text, start)
        spans.append((key, start, end))
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
            continue
        if text[i : i + 1] == "}" and _skip(text, i + 1) == len(text):
            return spans
        raise ValueError("',' or '}' expected")


def _trailing() -> list[tuple[str, int, int]]:
    raise ValueError("text after the object")


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def hash_code(secret: str, content: str) -> str:
    return hmac.new(secret.encode(), content.encode(), hashlib.sha256).hexdigest().upper()


def receive(body: bytes, headers: Mapping[str, str], secret: str) -> PushedChange | None:
    if not body.strip():
        return None  # the validation request of a new subscription
    try:
        text = body.decode("utf-8")
        spans = top_level_spans(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Refused("malformed", f"the body is not one JSON object: {exc}") from None
    names = [key for key, _, _ in spans]
    if names.count("Content") != 1 or names.count("HashCode") > 1:
        raise Refused("malformed", "the body needs exactly one Content and one HashCode")
    if "HashCode" not in names:
        raise Refused("unsigned", "the body has no HashCode")
    found = {key: text[start:end] for key, start, end in spans}
    given = json.loads(found["HashCode"])
    if not isinstance(given, str) or len(given) != 64 or not set(given) <= _HEX:
        raise Refused("bad_signature", "the HashCode is not 64 upper-case hex digits")
    content_text = found["Content"]
    if not hmac.compare_digest(hash_code(secret, content_text), given):
        raise Refused("bad_signature", "the HashCode does not match the Content")
    content = json.loads(content_text)
    if not isinstance(content, dict):
        raise Refused("malformed", "Content is not an object")
    topic, key = content.get("Topic"), content.get("Key")
    if topic not in TOPICS or not isinstance(key, str) or not key:
        raise Refused("malformed", f"topic {topic!r} or key {key!r} is not one Samband reads")
    return PushedChange(
        entity_types=TOPICS[str(topic)],
        keys=(key.lower(),),
        digest=hashlib.sha256(content_text.encode()).hexdigest(),
        occurred_at=_when(content.get("EventCreatedOn")),
        action=str(content.get("Action") or ""),
    )


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def subscribe(connector: Connector, callback_url: str, entity_types: list[str]) -> list[str]:
    topics = sorted({t for t in map(topic_of, entity_types) if t is not None})
    subscribe_to = getattr(connector, "subscribe_webhooks", None)
    if subscribe_to is None:
        raise TypeError(f"{connector.system_id}: this connector cannot subscribe to webhooks")
    done: list[str] = subscribe_to(callback_url, topics)
    return done


PUSH = PushHooks(receive=receive, subscribe=subscribe)
