"""Shared helpers of the PowerOffice GO tests (no tests here)."""

from __future__ import annotations

from samband.sandbox._base import Sandbox, SandboxServer

#: the sandbox's default keys
KEYS = {
    "application_key": "sandbox-application-key",
    "client_key": "sandbox-client-key",
    "subscription_key": "sandbox-subscription-key",
}


def serve(box: Sandbox) -> SandboxServer:
    """Start ``box`` on 127.0.0.1 in a background thread; ``.stop()`` when done."""
    return box.serve()
