"""``samband check``: can every system be reached, does it take the credentials, and does
each entity type in use answer with the fields the dataflows map?

For each system: connect and authenticate (the connector's own ``check``), then read one
record of every entity type the dataflows use and look up the mapped fields, in the
schema the live system reports and in the record read.  Nothing is written and the store
is not opened.  Each finding says what failed and what to do.

    >>> from samband.check import check_config
    >>> report = check_config("samband.yaml")            # doctest: +SKIP
    >>> report.ok, [s.status for s in report.systems]    # doctest: +SKIP
    (True, ['ok', 'ok'])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from samband.config.loader import LoadedConfig
from samband.config.model import Config
from samband.errors import AuthError, ConfigError, Problem, SambandError, UnreachableError


@dataclass
class TypeCheck:
    """One entity type of a system: ``ok``, ``failed`` or ``skipped`` (its system failed)."""

    entity_type: str
    status: str
    message: str = ""
    hint: str | None = None
    sampled: bool = False  # a record was read (False: the type holds none)
    missing_fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SystemCheck:
    """One system: ``ok`` or ``failed``, and its entity types."""

    system: str
    kind: str
    status: str
    message: str = ""
    hint: str | None = None
    types: list[TypeCheck] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "types": [t.as_dict() for t in self.types]}


@dataclass
class CheckReport:
    systems: list[SystemCheck]

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.systems)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "systems": [s.as_dict() for s in self.systems]}


def check_config(
    config: str | os.PathLike[str] | Config,
    systems: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    state_dir: str | None = None,
) -> CheckReport:
    """Check ``systems`` (default: every system of the config); raise ConfigError when the
    config has errors or names no such system."""
    from samband.config.validate import load_valid

    if isinstance(config, Config):
        loaded = None
        parsed = config
    else:
        loaded = load_valid(config)
        parsed = loaded.config
    chosen = list(systems or parsed.systems)
    unknown = [s for s in chosen if s not in parsed.systems]
    if unknown:
        raise ConfigError([_no_such_system(loaded, parsed, name) for name in unknown])
    from samband.engine.run import Engine

    engine = Engine(parsed, environ=environ, state_dir=state_dir)
    try:
        return CheckReport([_check_system(engine, parsed, name) for name in chosen])
    finally:
        engine.close()


def _no_such_system(loaded: LoadedConfig | None, config: Config, name: str) -> Problem:
    from samband.plugin.settings import closest

    best = closest(name, config.systems)
    hint = f"did you mean {best!r}?" if best else f"systems: {', '.join(config.systems)}"
    message = f"there is no system {name!r}"
    if loaded is not None:
        return loaded.problem(("systems",), message, hint)
    return Problem(config.path or "<config>", 1, 1, message, hint)


def types_in_use(config: Config, system_id: str) -> dict[str, set[str]]:
    """The entity types of ``system_id`` the dataflows use, with the field paths they map."""
    used: dict[str, set[str]] = {}
    for flow in config.dataflows:
        for side in ("source", "target"):
            if getattr(flow, f"{side}_system") != system_id:
                continue
            paths = used.setdefault(getattr(flow, f"{side}_type"), set())
            key = "source" if side == "source" else "target"
            paths.update(getattr(m, key) for m in flow.properties)
            paths.update(getattr(t, key) for combo in flow.match for t in combo)
    if not used:  # a system no dataflow uses yet: the types it configures
        used = {name: set() for name in config.systems[system_id].entity_types}
    return used


def _check_system(engine: Any, config: Config, system_id: str) -> SystemCheck:
    kind = config.systems[system_id].kind
    used = types_in_use(config, system_id)
    result = SystemCheck(system_id, kind, "ok")
    try:
        connector = engine.connector(system_id)
        connector.dry_run = True  # the reads of a check change nothing
        connector.check()
    except SambandError as exc:
        result.status = "failed"
        result.message, result.hint = _words(exc, system_id)
        result.types = [
            TypeCheck(name, "skipped", "not checked: the system failed") for name in used
        ]
        return result
    try:
        schemas = connector.entity_types()
    except SambandError as exc:
        result.status = "failed"
        result.message, result.hint = _words(exc, system_id)
        return result
    for name, paths in used.items():
        checked = _check_type(connector, schemas.get(name), name, paths)
        result.types.append(checked)
    if any(t.status != "ok" for t in result.types):
        result.status = "failed"
        result.message = "some entity types failed"
    return result


def _check_type(connector: Any, etype: Any, name: str, paths: Iterable[str]) -> TypeCheck:
    if etype is None:
        return TypeCheck(
            name,
            "failed",
            f"the system has no entity type {name!r}",
            "check the dataflow's source or target (samband validate lists the types)",
        )
    try:
        record = connector.sample(name)
    except SambandError as exc:
        message, hint = _words(exc, connector.system_id)
        return TypeCheck(name, "failed", f"reading one record failed: {message}", hint)
    missing = sorted(p for p in paths if not _field_exists(etype, record, p))
    if missing:
        return TypeCheck(
            name,
            "failed",
            f"mapped field(s) not found: {', '.join(missing)}",
            "check the spelling in the dataflows' properties and match (the system's "
            "own field names)",
            sampled=record is not None,
            missing_fields=missing,
        )
    said = "read one record" if record is not None else "no records yet (the read works)"
    return TypeCheck(name, "ok", said, sampled=record is not None)


def _field_exists(etype: Any, record: Any, path: str) -> bool:
    """Whether ``path`` names a field of the type: in its schema where that is closed,
    else in the record read (when one was)."""
    if etype.properties and not etype.open_schema:
        return etype.property(path) is not None
    if etype.property(path) is not None:
        return True
    if record is None:
        return True  # nothing to look at: an open schema accepts it
    head = path.split(".", 1)[0]
    return head.lower() in {str(key).lower() for key in record.data}


def _words(exc: SambandError, system_id: str) -> tuple[str, str | None]:
    """An error as (what failed, what to do), without the ``system 'x':`` prefix."""
    text = str(exc).removeprefix(f"system {system_id!r}: ")
    hint: str | None = getattr(exc, "hint", None)
    if hint and text.endswith(f" — {hint}"):
        text = text[: -len(f" — {hint}")]
    if hint is None and isinstance(exc, AuthError):
        hint = "check the credentials (the ${VAR}s under credentials:)"
    if hint is None and isinstance(exc, UnreachableError):
        hint = "check the base URL and that the system is up"
    return text, hint
