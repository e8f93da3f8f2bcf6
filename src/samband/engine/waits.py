"""Waiting for a parent: a record whose reference points at a record with no
counterpart yet is planned again later — or set aside when the parent does not exist,
or has waited too many runs."""

from __future__ import annotations

from samband.engine.batch import Batch
from samband.engine.context import RunContext
from samband.engine.model import Flow
from samband.store.rows import DeadLetter, Ref, Snapshot


def wait_for_parent(
    context: RunContext, flow: Flow, snap: Snapshot, parent: str, batch: Batch
) -> None:
    """``snap`` refers to ``parent``, which has no counterpart yet: wait for it — or,
    when the parent does not exist (deleted, never synchronized), quarantine."""
    if not _parent_exists(context, parent):
        context.ledger.quarantine(
            flow,
            snap.ref,
            "reference",
            f"refers to {parent}, which does not exist (deleted?) or is not synchronized "
            "by any dataflow; the reference is left as it is",
            batch,
            {"parent": parent},
        )
        return
    batch.keep_dirty.add(snap.ref)
    context.ledger.waits(flow, snap.ref)
    if context.dry_run:
        context.ledger.plan_line(
            f"wait {snap.ref}: parent {parent} is not linked yet", "wait", flow, snap.ref
        )
        return
    runs = context.store.note_waiting(flow.key, snap.ref, parent, context.pass_id or context.run_id)
    if runs > context.config.defaults.max_parent_wait_runs:
        # a source reference waits for a counterpart in the target, a target
        # reference (flowing back) for one in the source
        waits_in_target = Ref.parse(parent).system == flow.target[0]
        other = flow.source[0] if waits_in_target else flow.target[0]
        batch.dead.append(
            DeadLetter(
                snap.ref,
                flow.key,
                "waiting",
                f"has waited {runs} runs for its parent {parent}, which has no "
                f"counterpart in {other}; check that the parent is synchronized "
                f"(`samband links {parent}` shows its links)",
                {"parent": parent},
            )
        )


def _parent_exists(context: RunContext, parent: str) -> bool:
    ref = Ref.parse(parent)
    if ref.etype == "?" or (ref.system, ref.etype) not in context.uses:
        return False
    snap = context.store.snapshot(parent)
    return snap is not None and not snap.deleted
