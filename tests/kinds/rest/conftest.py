"""The REST tests' ``json_api`` fixture: a tiny JSON API (a function of the query parameters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.json_api import Handler, json_apis


@pytest.fixture
def json_api() -> Iterator[Callable[[Handler], str]]:
    """Serve a tiny JSON API (a function of the query parameters) on 127.0.0.1."""
    with json_apis() as serve:
        yield serve
