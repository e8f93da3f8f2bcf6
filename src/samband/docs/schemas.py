"""Which properties a kind's connector treats as read-only, asked without reaching a system.

Documents and the importer need one fact from the connectors: a property that cannot be
written on one side can only be synchronized the other way.  Only kinds whose schema is
known offline (``describes_offline``) are asked, so generating documents needs no
credentials, no variable and no reachable system; anything else counts as writable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samband.config.model import Config, SystemConfig
from samband.plugin import all_kinds

if TYPE_CHECKING:
    from samband.connectors.base import EntityType

Schema = dict[str, "EntityType"]


def describe_offline(system: SystemConfig) -> Schema:
    """The entity types of ``system`` as its kind's code says, or {} when that needs the
    system itself (or the config is too incomplete to tell)."""
    kind = all_kinds().get(system.kind)
    if kind is None or not kind.describes_offline:
        return {}
    try:
        return kind.connector_class().describe(system)
    except Exception:  # an incomplete config (an import's TODOs): nothing is known
        return {}


def kind_schema(kind: str) -> Schema:
    """The entity types a kind has before anything is configured (for the importer)."""
    return describe_offline(SystemConfig(kind=kind))


def is_read_only(schema: Schema, type_name: str, path: str) -> bool:
    entity = schema.get(type_name)
    if entity is None:
        return False
    if entity.read_only:
        return True
    prop = entity.property(path)
    return prop is not None and prop.read_only


class ReadOnlyProperties:
    """``(system id, type, property) → read-only?`` for the systems of one config."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._schemas: dict[str, Schema] = {}

    def __call__(self, system_id: str, type_name: str, path: str) -> bool:
        if system_id not in self._schemas:
            system = self._config.systems.get(system_id)
            self._schemas[system_id] = describe_offline(system) if system is not None else {}
        return is_read_only(self._schemas[system_id], type_name, path)
