"""What the config page shows: the config file with literal secrets masked."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SECRET_WORDS = r"(?:password|passwd|passphrase|secret|token|key|pwd)"
_SECRET_KEY = re.compile(
    rf"^(?P<key>[ \t]*-?[ \t]*[\w.-]*{_SECRET_WORDS}[\w.-]*[ \t]*:[ \t]*)(?P<value>\S.*)$",
    re.IGNORECASE | re.MULTILINE,
)
# the same keys inside a flow mapping: {password: hunter2, api_key: "x"}
_FLOW_SECRET_KEY = re.compile(
    rf"(?P<key>[{{,][ \t]*[\w.-]*{_SECRET_WORDS}[\w.-]*[ \t]*:[ \t]*)"
    r"(?P<value>[\"']?\$\{[^}\n]*\}[^,{}\n]*|[^\s,{}][^,{}\n]*)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]+:)(?P<password>[^@\s]+)@")
MASK = "'***'"


def mask_secrets(text: str, literals: Iterable[str] = ()) -> str:
    """YAML text with the values of secret-named keys and URL passwords masked, unless
    they are ``${VAR}`` references (which name a variable, not a secret); and every one
    of ``literals`` (the credential values written in the config) wherever it stands."""

    def key(match: re.Match[str]) -> str:
        value = match["value"]
        return match[0] if value.strip().strip("\"'").startswith("${") else f"{match['key']}{MASK}"

    def url(match: re.Match[str]) -> str:
        password = match["password"]
        return match[0] if password.startswith("${") else f"{match['head']}***@"

    text = _URL_PASSWORD.sub(url, _FLOW_SECRET_KEY.sub(key, _SECRET_KEY.sub(key, text)))
    # longest first, so a secret that contains another is masked whole
    for literal in sorted({v for v in literals if len(v) >= 4 and "${" not in v}, key=len)[::-1]:
        text = text.replace(literal, "***")
    return text
