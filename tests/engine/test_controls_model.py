"""The stateful model of the engine's guarantees (tests/support/machines.py) with the
dataflow controls in it: dataflows paused and resumed, writes to a side switched off and
on, full sync off and on, and runs of one dataflow, interleaved with every edit, crash,
failure and config change of the model.  Once the controls are back to their defaults,
one run converges: every link agrees, no duplicates, no orphan, no lost edit, and a
second run writes nothing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from samband.engine.dataflow_actions import DataflowActions
from tests.support.convergence import DERANDOMIZE, PHASES, SCALE
from tests.support.machines import WideSyncMachine


class ControlsMachine(WideSyncMachine):
    def _actions(self) -> DataflowActions:
        return DataflowActions(self.config, self.engine.store(), "model")

    def _key(self, data: st.DataObject) -> str:
        return str(data.draw(st.sampled_from([flow.key for flow in self.config.dataflows])))

    @rule(data=st.data(), paused=st.booleans())
    def pause_or_resume(self, data: st.DataObject, paused: bool) -> None:
        actions, key = self._actions(), self._key(data)
        (actions.pause if paused else actions.resume)(key)

    @rule(data=st.data(), side=st.sampled_from(["source", "target"]), on=st.booleans())
    def share(self, data: st.DataObject, side: str, on: bool) -> None:
        self._actions().share(self._key(data), side, on)

    @rule(data=st.data(), on=st.booleans())
    def full_sync(self, data: st.DataObject, on: bool) -> None:
        self._actions().full_sync(self._key(data), on)

    @rule(data=st.data())
    def run_one_dataflow(self, data: st.DataObject) -> None:
        self._sync(dataflows=[self._key(data)])
        self._check_edits()

    def _before_quiet_runs(self) -> None:
        actions = self._actions()
        for flow in self.config.dataflows:
            actions.resume(flow.key)
            actions.share(flow.key, "source", True)
            actions.share(flow.key, "target", True)
            actions.full_sync(flow.key, True)
        super()._before_quiet_runs()


@pytest.mark.xdist_group("convergence")
def test_convergence_with_the_controls(tmp_path: Any) -> None:
    counter = itertools.count()

    class PerExample(ControlsMachine):
        def __init__(self) -> None:
            self.store_url = f"sqlite:///{tmp_path}/store-{next(counter)}.db"
            from samband.kinds.memory import connector as memory

            memory._DATASETS.clear()
            super().__init__()

    run_state_machine_as_test(
        PerExample,
        settings=settings(
            max_examples=20 * SCALE,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=PHASES,
            derandomize=DERANDOMIZE,
        ),
    )
