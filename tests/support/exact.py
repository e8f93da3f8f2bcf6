"""Helpers of the Exact Online tests: start a sandbox in-process."""

from __future__ import annotations

from tests.support.sandbox import serve

__all__ = ["serve"]
