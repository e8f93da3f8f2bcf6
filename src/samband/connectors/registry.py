"""Connector kinds by name.  A new system kind is one module plus a line here."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from samband.config.model import SystemConfig
from samband.connectors.base import Connector

KINDS: dict[str, str] = {
    "memory": "samband.kinds.memory.connector:MemoryConnector",
    "sql": "samband.kinds.sql.connector:SqlConnector",
    "rest": "samband.kinds.rest.connector:RestConnector",
    "poweroffice-go": "samband.kinds.poweroffice_go.connector:PowerOfficeConnector",
    "exact-online": "samband.kinds.exact_online.connector:ExactOnlineConnector",
    "webcrm": "samband.kinds.webcrm.connector:WebCrmConnector",
    "crmoffice": "samband.kinds.crmoffice.connector:CrmOfficeConnector",
}


def connector_class(kind: str) -> type[Connector]:
    if kind not in KINDS:
        raise KeyError(kind)
    module_name, _, class_name = KINDS[kind].partition(":")
    module = importlib.import_module(module_name)
    cls: type[Connector] = getattr(module, class_name)
    return cls


def create_connector(
    system_id: str,
    config: SystemConfig,
    credentials: Mapping[str, str],
    **options: object,
) -> Connector:
    return connector_class(config.kind)(system_id, config, credentials, **options)  # type: ignore[arg-type]
