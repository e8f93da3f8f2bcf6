"""``--chaos-long``: the long chaos runs (``make chaos``); without it each chaos test runs
a short version that fits in ``make test``."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="run the long chaos versions (many kills, long faults, a PostgreSQL restart)",
    )


@pytest.fixture
def chaos_long(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--chaos-long"))
