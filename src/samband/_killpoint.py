"""Crash points for the chaos tests (``tests/chaos``); inert unless a variable is set.

``SAMBAND_KILL_AT=POINT:N`` makes the process kill itself with SIGKILL the N-th time it
reaches ``POINT``, so that a test can crash a real ``samband sync`` at an exact spot:

* ``create`` — a connector create has returned (the record exists in the API) but its
  link is not stored yet;
* ``update`` — a connector update has returned, its snapshot and base are not stored;
* ``commit`` — inside a store transaction, just before its commit.

Without the variable :func:`reached` returns at once and nothing else happens.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("SAMBAND_KILL_AT", "")
_POINT, _, _NTH = _SPEC.partition(":")
_COUNT = {"n": 0}


def reached(point: str) -> None:
    """Count one arrival at ``point``; SIGKILL this process at the configured one."""
    if not _SPEC or point != _POINT:
        return
    _COUNT["n"] += 1
    if _COUNT["n"] >= int(_NTH or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
