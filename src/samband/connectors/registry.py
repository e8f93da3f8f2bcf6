"""Connectors by kind, from the kinds' descriptors (:mod:`samband.plugin`).

The engine creates connectors here and talks to them only through
:class:`~samband.connectors.base.Connector`; it never imports a kind.
"""

from __future__ import annotations

from collections.abc import Mapping

from samband.config.model import SystemConfig
from samband.config.todo import TODO_KIND
from samband.connectors.base import Connector
from samband.errors import ConnectorError
from samband.plugin.registry import get_kind


def connector_class(kind: str) -> type[Connector]:
    """The connector class of ``kind`` (KeyError when no installed kind has that name)."""
    return get_kind(kind).connector_class()


def create_connector(
    system_id: str,
    config: SystemConfig,
    credentials: Mapping[str, str],
    **options: object,
) -> Connector:
    if config.kind == TODO_KIND:  # a config built in code; files are refused by load_valid
        raise ConnectorError(
            system_id,
            "has no kind yet (kind: todo, left by `samband docs import`)",
            "choose its kind (`samband validate` says how)",
        )
    return connector_class(config.kind)(system_id, config, credentials, **options)  # type: ignore[arg-type]
