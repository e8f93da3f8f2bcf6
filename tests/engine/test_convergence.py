"""Hypothesis stateful test of the engine's guarantees (DESIGN.md "Guarantees").

Random creates, edits (conflicting ones included), deletes and crashes at any point
inside apply (then a new engine on the same store), interleaved with runs.  After every
quiescent run: every link agrees on every mapped property, no source record has two
counterparts in a target type, no record we created is orphaned or duplicated, every
edit is present or recorded as a lost conflict, and a second run writes nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support.convergence import DERANDOMIZE, PHASES, SCALE
from tests.support.machines import WideSyncMachine


@pytest.mark.xdist_group("convergence")
def test_convergence_sqlite(tmp_path: Any) -> None:
    counter = itertools.count()

    class PerExample(WideSyncMachine):
        def __init__(self) -> None:
            self.store_url = f"sqlite:///{tmp_path}/store-{next(counter)}.db"
            from samband.kinds.memory import connector as memory

            memory._DATASETS.clear()
            super().__init__()

    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        PerExample,
        settings=settings(
            max_examples=30 * SCALE,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=PHASES,
            derandomize=DERANDOMIZE,
        ),
    )


@pytest.mark.postgres
@pytest.mark.xdist_group("convergence")
def test_convergence_postgresql(postgres_server: str) -> None:
    from tests.conftest import _fresh_schema_url

    class PerExample(WideSyncMachine):
        def __init__(self) -> None:
            self._schema = _fresh_schema_url(postgres_server, "postgresql")
            self.store_url = next(self._schema)
            from samband.kinds.memory import connector as memory

            memory._DATASETS.clear()
            super().__init__()

        def teardown(self) -> None:
            super().teardown()
            next(self._schema, None)

    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        PerExample,
        settings=settings(
            max_examples=12 * SCALE,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=PHASES,
            derandomize=DERANDOMIZE,
        ),
    )
