"""The REST contract's optional webhook, as ``samband serve`` receives it.

The system POSTs one change, or a JSON array of changes, to
``https://SAMBAND/hooks/SYSTEM``::

    {"type": "Customer", "id": "42", "action": "updated", "occurred_at": "2026-12-06T10:00:00Z"}

with ``X-Samband-Timestamp: UNIX_SECONDS`` and ``X-Samband-Signature: sha256=HEX``, the
HMAC-SHA256 of ``TIMESTAMP.BODY`` (the raw body bytes) keyed with the secret both sides
share (the system's ``webhook_secret`` credential).  ``type`` is the entity type's name in
the config; ``action`` is ``created``, ``updated`` or ``deleted``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from samband.plugin.push import PushedChange, PushHooks, Refused

TIMESTAMP = "x-samband-timestamp"
SIGNATURE = "x-samband-signature"
ACTIONS = ("created", "updated", "deleted")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def receive(body: bytes, headers: Mapping[str, str], secret: str) -> PushedChange | None:
    timestamp, signature = headers.get(TIMESTAMP), headers.get(SIGNATURE)
    if not timestamp or not signature:
        raise Refused("unsigned", f"{TIMESTAMP} or {SIGNATURE} is missing")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused("malformed", f"{TIMESTAMP} is not Unix seconds")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise Refused("bad_signature", "the signature does not match the body")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused("malformed", "the body is not JSON") from None
    events = data if isinstance(data, list) else [data]
    types: list[str] = []
    keys: list[str] = []
    for event in events:
        if not isinstance(event, dict):
            raise Refused("malformed", "an event is not a JSON object")
        kind, key, action = event.get("type"), event.get("id"), event.get("action")
        if not isinstance(kind, str) or not kind or isinstance(key, bool):
            raise Refused("malformed", "an event has no type")
        if not isinstance(key, str | int) or action not in ACTIONS:
            raise Refused("malformed", f"an event of {kind} has no id or a wrong action")
        if kind not in types:
            types.append(kind)
        keys.append(str(key))
    if not types:
        raise Refused("malformed", "no event in the body")
    return PushedChange(
        entity_types=tuple(types),
        keys=tuple(keys),
        digest=hashlib.sha256(signature.strip().encode()).hexdigest(),
        occurred_at=float(timestamp),
    )


PUSH = PushHooks(receive=receive)
