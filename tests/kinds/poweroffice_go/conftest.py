"""Every PowerOffice GO test starts and ends with no token kept from another; ``server``
serves the module's ``box`` over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samband.kinds.poweroffice_go.connector._auth import forget_tokens
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.sandbox._base import SandboxServer
from tests.support.sandbox import serve


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    forget_tokens()
    yield
    forget_tokens()


@pytest.fixture
def server(box: PowerOfficeSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()
