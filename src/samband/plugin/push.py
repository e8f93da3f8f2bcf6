"""What a kind tells the service about pushed changes (``samband serve``'s receivers).

A kind whose system can push declares :class:`PushHooks` in its descriptor:

* ``receive(body, headers, secret)`` checks one signed HTTP request (its raw body, its
  headers, the system's ``webhook_secret`` credential) and says what changed, or raises
  :class:`Refused`.  It returns None for a request that carries no change (a vendor's
  validation call when a subscription is made).
* ``subscribe(connector, callback_url, entity_types)`` asks the system to send its
  changes of those types to ``callback_url``; returns what it did, one line each.
* ``listen(system_id, config, environ, on_change, stop, connected)`` waits for the
  system's notifications until ``stop`` is set, calling ``on_change(entity_types)``;
  it returns or raises when the connection is lost (the service reconnects) and calls
  ``connected()`` each time it is listening.

This module is neutral: it imports no kind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samband.config.model import SystemConfig
    from samband.connectors.base import Connector

#: Why a pushed request was refused (a bounded set: they are metric labels)
REFUSALS = ("unsigned", "bad_signature", "malformed", "replayed", "stale", "too_large")


class Refused(Exception):
    """A pushed request that is not acted on; ``reason`` is one of :data:`REFUSALS`,
    the message says more for the operator's log (never for the caller)."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REFUSALS, reason
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PushedChange:
    """What one verified request says changed."""

    entity_types: tuple[str, ...]
    keys: tuple[str, ...]
    #: identifies the event for the replay check (the same event twice has the same one)
    digest: str
    #: Unix time the system says the event was made (None: it does not say)
    occurred_at: float | None = None
    action: str = ""


Receive = Callable[[bytes, Mapping[str, str], str], "PushedChange | None"]
Subscribe = Callable[["Connector", str, list[str]], list[str]]
Listen = Callable[
    [
        str,
        "SystemConfig",
        Mapping[str, str],
        Callable[[list[str]], None],
        threading.Event,
        Callable[[], None],
    ],
    None,
]


@dataclass(frozen=True)
class PushHooks:
    receive: Receive | None = None
    subscribe: Subscribe | None = None
    listen: Listen | None = None
    #: the credential holding the secret that signs pushed requests
    secret_credential: str = "webhook_secret"
