"""The tenants registry: a folder with one folder per tenant.

::

    tenants/
      ACME/samband.yaml      the tenant's config (its systems, dataflows and store)
      ACME/tenant.yaml       optional: ``every: 5m`` (its scheduled runs' interval),
                             ``turn: 2m`` (how long one of its runs may hold a worker)
      ACME/.env              optional: VAR=value lines, the tenant's own environment

A tenant's ``${VAR}`` is resolved from its own environment only: the variables
``SAMBAND_TENANT_<NAME>__VAR`` of the process (NAME upper-cased, ``-`` as ``_``), then its
``.env`` file, then the keyring service ``samband/<NAME>``.  A tenant never sees another
tenant's variables, nor the process's own.  Its store is its config's ``store:``; the
default (``sqlite:///samband.db``) is a file in the tenant's own folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from samband.config.env import ScopedEnviron
from samband.durations import parse_interval
from samband.errors import SambandError

ENV_VAR = "SAMBAND_TENANTS"  # the registry folder, when not given
DEFAULT_DIR = "tenants"
CONFIG_NAME = "samband.yaml"
SETTINGS_NAME = "tenant.yaml"
DEFAULT_EVERY = 300.0
# words joined by single separators: a name never ends in one nor holds two together, so
# no tenant's variable prefix (``SAMBAND_TENANT_A__``) is the start of another's
_NAME = re.compile(r"(?=.{1,63}$)[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class TenantError(SambandError):
    """An unknown tenant, a bad name, a broken registry entry."""


def registry_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The registry folder: ``given``, else ``$SAMBAND_TENANTS``, else ``./tenants``."""
    if given:
        return Path(given)
    return Path(os.environ.get(ENV_VAR, "").strip() or DEFAULT_DIR)


def env_prefix(name: str) -> str:
    return f"SAMBAND_TENANT_{name.upper().replace('-', '_')}__"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TenantError(
            f"{name!r} is not a tenant name: use letters and digits, words joined by one - "
            "or _ (at most 63 characters; not at the end, never two together)"
        )
    return name


@dataclass(frozen=True)
class Tenant:
    name: str
    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_NAME

    def environ(self, process: Mapping[str, str] | None = None) -> ScopedEnviron:
        """The tenant's environment: its ``.env`` file, overridden by the process's
        ``SAMBAND_TENANT_<NAME>__*`` variables (prefix removed); nothing else."""
        process = os.environ if process is None else process
        values = dict(_read_env_file(self.directory / ".env"))
        prefix = env_prefix(self.name)
        values.update({k[len(prefix) :]: v for k, v in process.items() if k.startswith(prefix)})
        return ScopedEnviron(values, keyring_service=f"samband/{self.name}")

    def every(self) -> float:
        """Seconds between the tenant's scheduled runs (``tenant.yaml``'s ``every``)."""
        every = self._interval("every")
        return DEFAULT_EVERY if every is None else every

    def turn(self) -> float | None:
        """``tenant.yaml``'s ``turn``: how long one run of the tenant may hold a worker
        before it yields (None: the worker's ``--turn``)."""
        return self._interval("turn")

    def _interval(self, key: str) -> float | None:
        path = self.directory / SETTINGS_NAME
        if not path.is_file():
            return None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            value = data.get(key)
            return None if value is None else parse_interval(str(value))
        except (yaml.YAMLError, ValueError, AttributeError) as exc:
            raise TenantError(
                f"{path}: {exc}; write e.g. `{key}: 5m` (seconds s, minutes m, hours h)"
            ) from None


def _read_env_file(path: Path) -> Iterator[tuple[str, str]]:
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise TenantError(f"{path}:{number}: not VAR=value (the value is not shown)")
        yield key.strip(), value.strip().strip("'\"")


class Registry:
    """The tenants of one installation (a folder; see the module's text)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = registry_dir(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and _FOLDER.fullmatch(entry.name) and (entry / CONFIG_NAME).is_file()
        )

    def tenants(self) -> list[Tenant]:
        return [Tenant(name, self.root / name) for name in self.names()]

    def get(self, name: str) -> Tenant:
        check_name(name)
        tenant = Tenant(name, self.root / name)
        if not tenant.config_path.is_file():
            known = ", ".join(self.names()) or "none"
            raise TenantError(
                f"no tenant {name!r} in {self.root} (tenants: {known}); add it with "
                f"`samband tenants add {name} --config FILE`"
            )
        self._check_own_prefix(name)
        return tenant

    def _check_own_prefix(self, name: str) -> None:
        """Two tenants whose variables have one prefix (``acme-a``, ``ACME_A``) would each
        be given the other's: neither runs until one is renamed."""
        others = [
            other
            for other in self.names()
            if other != name and env_prefix(other) == env_prefix(name)
        ]
        if others:
            raise TenantError(
                f"tenants {name!r} and {others[0]!r} in {self.root} both read the variables "
                f"{env_prefix(name)}*: rename one of the two folders"
            )

    def add(self, name: str, config: Path, every: str | None = None) -> Tenant:
        check_name(name)
        tenant = Tenant(name, self.root / name)
        if tenant.directory.exists():
            raise TenantError(f"tenant {name!r} exists already ({tenant.directory})")
        for other in self.names():
            if env_prefix(other) == env_prefix(name):
                raise TenantError(
                    f"tenant {other!r} reads the variables {env_prefix(name)}* already: "
                    f"give {name!r} a name that differs in more than case, - and _"
                )
        if not config.is_file():
            raise TenantError(f"{config}: no such config file")
        if every is not None:
            try:
                parse_interval(every)
            except ValueError as exc:
                raise TenantError(f"--every {every}: {exc}") from None
        tenant.directory.mkdir(parents=True)
        shutil.copyfile(config, tenant.config_path)
        if every is not None:
            (tenant.directory / SETTINGS_NAME).write_text(f"every: {every}\n", encoding="utf-8")
        return tenant

    def remove(self, name: str) -> Path:
        """Take a tenant out of the registry.  Its folder (config and state) is kept
        under ``.removed/`` — deleting a company's sync state is a decision of its own."""
        tenant = self.get(name)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.root / ".removed" / f"{name}.{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        tenant.directory.rename(target)
        return target
