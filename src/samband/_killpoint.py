"""Crash points for the chaos tests (``tests/chaos``); inert unless a variable is set.

``SAMBAND_KILL_AT=POINT:N`` makes the process kill itself with SIGKILL the N-th time it
reaches ``POINT``, so that a test can crash a real ``samband sync`` at an exact spot:

* ``create`` — a connector create has returned (the record exists in the API) but its
  link is not stored yet;
* ``update`` — a connector update has returned, its snapshot and base are not stored;
* ``commit`` — inside a store transaction, just before its commit.

``SAMBAND_STOP_AT=POINT:N`` instead stops the process (SIGSTOP) there: a test that sees
it stopped (``waitpid`` with ``WUNTRACED``) sends the signal it means to test, e.g.
SIGTERM, then SIGCONT, and the process meets that signal at that exact spot.

``SAMBAND_FAIL_AT=POINT:N`` raises :class:`InjectedDefect` there: an error no code
expects, as a defect would raise (the CLI's last-resort handler is tested with it).

Without the variables :func:`reached` returns at once and nothing else happens.
"""

from __future__ import annotations

import os
import signal

_SPECS = {
    signal.SIGKILL: os.environ.get("SAMBAND_KILL_AT", ""),
    signal.SIGSTOP: os.environ.get("SAMBAND_STOP_AT", ""),
}
_FAIL = os.environ.get("SAMBAND_FAIL_AT", "")
_ACTIVE = {sig: spec.partition(":") for sig, spec in _SPECS.items() if spec}
_COUNT: dict[signal.Signals, int] = {}
_FAILS = {"n": 0}


class InjectedDefect(RuntimeError):
    """The error ``SAMBAND_FAIL_AT`` raises."""


def reached(point: str) -> None:
    """Count one arrival at ``point``; SIGKILL (or SIGSTOP) this process at the
    configured one."""
    if _FAIL:
        _fail(point)
    if not _ACTIVE:
        return
    for sig, (where, _, nth) in _ACTIVE.items():
        if point != where:
            continue
        _COUNT[sig] = _COUNT.get(sig, 0) + 1
        if sig == signal.SIGSTOP and _COUNT[sig] != int(nth or "1"):
            continue  # stopped once, at the N-th arrival only
        if _COUNT[sig] >= int(nth or "1"):
            os.kill(os.getpid(), sig)


def _fail(point: str) -> None:
    where, _, nth = _FAIL.partition(":")
    if point == where:
        _FAILS["n"] += 1
        if _FAILS["n"] == int(nth or "1"):
            raise InjectedDefect(f"injected at {point} (SAMBAND_FAIL_AT)")
