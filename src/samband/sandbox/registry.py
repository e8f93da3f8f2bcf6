"""Sandbox kinds by name: ``samband sandbox KIND`` and the demo start them from here."""

from __future__ import annotations

import importlib
from typing import Any

from samband.sandbox._base import Sandbox

SANDBOXES: dict[str, str] = {
    "poweroffice-go": "samband.kinds.poweroffice_go.sandbox:PowerOfficeSandbox",
    "exact-online": "samband.kinds.exact_online.sandbox:ExactOnlineSandbox",
    "webcrm": "samband.kinds.webcrm.sandbox:WebCrmSandbox",
    "crmoffice": "samband.kinds.crmoffice.sandbox:CrmOfficeSandbox",
    "rest": "samband.kinds.rest.sandbox:CustomCrmSandbox",
}


def create_sandbox(kind: str, **options: Any) -> Sandbox:
    if kind not in SANDBOXES:
        raise KeyError(f"no sandbox for kind {kind!r}; known: {', '.join(sorted(SANDBOXES))}")
    module_name, _, class_name = SANDBOXES[kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    sandbox: Sandbox = cls(**options)
    return sandbox
