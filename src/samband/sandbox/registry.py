"""Sandboxes by kind: ``samband sandbox KIND`` and the demo start them from the descriptors."""

from __future__ import annotations

from typing import Any

from samband.plugin.registry import all_kinds
from samband.sandbox._base import Sandbox


def sandbox_kinds() -> list[str]:
    """The kinds that have a sandbox."""
    return [name for name, kind in all_kinds().items() if kind.sandbox is not None]


def create_sandbox(kind: str, **options: Any) -> Sandbox:
    kinds = all_kinds()
    if kind not in kinds or kinds[kind].sandbox is None:
        raise KeyError(f"no sandbox for kind {kind!r}; known: {', '.join(sandbox_kinds())}")
    return kinds[kind].create_sandbox(**options)
