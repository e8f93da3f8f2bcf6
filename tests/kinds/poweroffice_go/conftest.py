"""Every PowerOffice GO test starts and ends with no token kept from another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samband.kinds.poweroffice_go.connector._auth import forget_tokens


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    forget_tokens()
    yield
    forget_tokens()
