"""``${VAR}`` references, resolved at run time and never written back: from the environment,
else from the system keyring (service ``samband``, entry ``VAR``), else ``${VAR:-default}``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from samband.errors import ConnectorError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def references(value: str) -> list[str]:
    return [m.group(1) for m in _REFERENCE.finditer(value)]


def is_reference_only(value: str) -> bool:
    return bool(_REFERENCE.fullmatch(value.strip()))


def resolve(value: str, environ: Mapping[str, str] | None = None, *, system: str = "?") -> str:
    """Replace each ``${VAR}`` (or ``${VAR:-default}``) by its environment value."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        from samband.secrets import keyring_credential

        stored = keyring_credential(name)
        if stored is not None:
            return stored
        if default is not None:
            return default
        raise ConnectorError(
            system,
            f"the environment variable {name} is not set",
            f"export {name}=... before running, or store it in the keyring",
        )

    return _REFERENCE.sub(replace, value)


def resolve_all(
    values: Mapping[str, str], environ: Mapping[str, str] | None = None, *, system: str = "?"
) -> dict[str, str]:
    return {key: resolve(str(value), environ, system=system) for key, value in values.items()}


def resolve_settings(
    settings: Mapping[str, object], environ: Mapping[str, str] | None = None, *, system: str = "?"
) -> dict[str, object]:
    """A system's settings with ``${VAR}`` in their text values replaced."""
    return {
        key: resolve(value, environ, system=system) if isinstance(value, str) else value
        for key, value in settings.items()
    }
