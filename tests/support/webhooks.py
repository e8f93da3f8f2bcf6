"""Signed webhook requests, as a system sends them to ``samband serve``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

REST_SECRET = "rest-webhook-secret-0123456789"


def rest_request(
    events: object, *, secret: str = REST_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/json",
        "X-Samband-Timestamp": stamp,
        "X-Samband-Signature": "sha256=" + signature.hexdigest(),
    }
