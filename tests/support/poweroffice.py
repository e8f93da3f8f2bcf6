"""Shared helpers of the PowerOffice GO tests."""

from __future__ import annotations

from tests.support.sandbox import serve

__all__ = ["KEYS", "serve"]

#: the sandbox's default keys
KEYS = {
    "application_key": "sandbox-application-key",
    "client_key": "sandbox-client-key",
    "subscription_key": "sandbox-subscription-key",
}
