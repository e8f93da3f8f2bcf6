"""Keeping credentials out of logs: secret header, form, JSON and query-string values are
replaced by ``***``, and so is any credential value the run resolved from the
environment, wherever it appears in a logged line (:func:`remember`, :func:`scrub`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

MASK = "***"

# names (lower case, without _ - and spaces) whose values are secrets wherever they
# appear: a header, a form field, a JSON key, a query-string parameter
_SECRET_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "apikey",
    "cookie",
    "credential",
    "subscriptionkey",
    "clientkey",
    "applicationkey",
    "privatekey",
    "accesskey",
    "signature",
)
_SECRET_NAMES = {"code", "sig", "key", "auth", "pwd", "assertion"}

_known: set[str] = set()
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

# free text: "Bearer xyz", "Basic xyz", and name=value / "name": "value" pairs
_TEXT_PATTERNS = [
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)([\"']?[a-z0-9_-]*(?:token|secret|password|passwd|apikey|api_key|"
        r"subscription-key)[a-z0-9_-]*[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)"
    ),
]


def is_secret_name(name: str) -> bool:
    """Whether a header, field or parameter of this name holds a secret."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    return flat in _SECRET_NAMES or any(part in flat for part in _SECRET_PARTS)


def remember(values: Iterable[object]) -> None:
    """Credential values to mask wherever they appear (short ones would mask too much)."""
    global _pattern
    added = {str(v) for v in values if v is not None and len(str(v)) >= 4}
    with _known_lock:
        if added - _known:
            _known.update(added)
            ordered = sorted(_known, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def scrub(text: str) -> str:
    """``text`` with every remembered secret and every recognisable credential masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _TEXT_PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _TEXT_PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)


def scrub_tree(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_tree(item) for item in value]
    return value


_SECRET_VARIABLE = re.compile(r"KEY|TOKEN|SECRET|PASS|PWD|AUTH|CRED|SIG", re.IGNORECASE)


def is_secret_variable(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (``CRM_API_KEY``)."""
    return bool(_SECRET_VARIABLE.search(name))


def headers(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = items.items() if isinstance(items, Mapping) else items
    return {name: (MASK if is_secret_name(name) else value) for name, value in pairs}


def url(text: str) -> str:
    """A URL with its secret query parameters and any user:password masked."""
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*$,")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def json_value(value: Any) -> Any:
    """A parsed JSON value with the values of secret keys masked, at any depth."""
    if isinstance(value, dict):
        return {
            k: (MASK if is_secret_name(str(k)) and value[k] is not None else json_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def body(content: bytes, content_type: str, limit: int = 2000) -> str:
    """A request or answer body for a log line: JSON and form fields masked, cut at
    ``limit`` characters."""
    if not content:
        return ""
    kind = content_type.lower()
    text: str
    if "json" in kind or content[:1] in (b"{", b"["):
        try:
            text = orjson.dumps(json_value(orjson.loads(content))).decode()
        except orjson.JSONDecodeError:
            text = content.decode("utf-8", "replace")
    elif "x-www-form-urlencoded" in kind:
        pairs = parse_qsl(content.decode("utf-8", "replace"), keep_blank_values=True)
        text = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    else:
        text = content.decode("utf-8", "replace")
    text = scrub(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
