"""``${VAR}`` references, resolved at run time and never written back: from the environment,
else from the system keyring (service ``samband``, entry ``VAR``), else ``${VAR:-default}``.

A tenant (:mod:`samband.tenants`) resolves them from a :class:`ScopedEnviron` of its own:
its variables only, and its own keyring service.  ``samband --tenant`` makes that the
process's default (:func:`use_scope`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from samband.errors import ConnectorError


class ScopedEnviron(dict[str, str]):
    """An environment of its own (a tenant's), with the keyring service its credentials
    are stored under."""

    def __init__(self, values: Mapping[str, str], *, keyring_service: str) -> None:
        super().__init__(values)
        self.keyring_service = keyring_service


_scope: ScopedEnviron | None = None


def use_scope(environ: ScopedEnviron | None) -> None:
    """Make ``environ`` what ``${VAR}`` resolves from when no environment is given (the
    ``--tenant`` of a CLI command: one tenant per process)."""
    global _scope
    _scope = environ


def default_environ() -> Mapping[str, str]:
    return os.environ if _scope is None else _scope


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def references(value: str) -> list[str]:
    return [m.group(1) for m in _REFERENCE.finditer(value)]


def is_reference_only(value: str) -> bool:
    return bool(_REFERENCE.fullmatch(value.strip()))


def resolve(value: str, environ: Mapping[str, str] | None = None, *, system: str = "?") -> str:
    """Replace each ``${VAR}`` (or ``${VAR:-default}``) by its environment value."""
    env = default_environ() if environ is None else environ
    service = getattr(env, "keyring_service", None)

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        from samband.secrets import keyring_credential

        stored = keyring_credential(name, service) if service else keyring_credential(name)
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
