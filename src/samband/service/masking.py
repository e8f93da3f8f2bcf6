"""What the config page shows: the config file with literal secrets masked."""

from __future__ import annotations

import re

_SECRET_KEY = re.compile(
    r"^(?P<key>\s*-?\s*[\w.-]*(?:password|secret|token|key|pwd)[\w.-]*\s*:\s*)(?P<value>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]+:)(?P<password>[^@\s]+)@")


def mask_secrets(text: str) -> str:
    """YAML text with the values of secret-named keys and URL passwords masked, unless
    they are ``${VAR}`` references (which name a variable, not a secret)."""

    def key(match: re.Match[str]) -> str:
        value = match["value"]
        return match[0] if value.strip().startswith("${") else f"{match['key']}'***'"

    def url(match: re.Match[str]) -> str:
        password = match["password"]
        return match[0] if password.startswith("${") else f"{match['head']}***@"

    return _URL_PASSWORD.sub(url, _SECRET_KEY.sub(key, text))
