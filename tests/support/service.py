"""What the tests of ``samband serve`` share: Starlette's in-process TestClient and the
CSRF token of a page."""

from __future__ import annotations

import re
import warnings

with warnings.catch_warnings():
    # the TestClient runs the app's lifespan in-process; its httpx backend is deprecated in
    # favour of httpx2, which this project does not use yet
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

__all__ = ["TestClient", "csrf_of"]


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match[1]
