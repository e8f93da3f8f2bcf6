"""The circuit breaker: a run that would delete or rewrite more than a configured share of
a dataflow's linked records writes nothing, unless forced.

It counts what the run would do to *either* side: a mass edit in the target (every name
blanked) rewrites the source as surely as one in the source rewrites the target, and a
newly mapped property whose values differ rewrites one side of every pair.  Cheap counts
of what is queued decide whether the exact count is needed: the queued pairs are then
planned (without writing) and those the plan would write are counted.
"""

from __future__ import annotations

from collections.abc import Iterator

from samband.config.model import Defaults
from samband.engine.model import Flow
from samband.engine.plan import plan_link
from samband.engine.translate import Translator
from samband.errors import CircuitBreakerTripped, ConversionError
from samband.store.rows import Link, Ref, rid_of
from samband.store.store import Store

BATCH = 2000
MIN_LINKS = 10  # below this many links a dataflow is too small for shares to mean much
# ... but from this many links, every linked record of one side deleted at once trips it
MIN_WIPE = 3


_GO_ON = (
    "`samband sync --dry-run --force` shows what it would do, writing nothing; if that is "
    "intended, run `samband sync --force`"
)
_NEXT = {
    "preview": "samband sync --dry-run --force",
    "proceed": "samband sync --force",
}


class CircuitBreaker:
    def __init__(
        self, store: Store, translator: Translator, defaults: Defaults, recovered: set[str]
    ) -> None:
        self.store, self.translator, self.defaults = store, translator, defaults
        # source records of creates recovered at the start of the run: queued, not changes
        self.recovered = recovered

    def check(self, flows: list[Flow]) -> None:
        """Raise :class:`CircuitBreakerTripped` for the first dataflow over its shares."""
        for flow in flows:
            self._check(flow)

    def _check(self, flow: Flow) -> None:
        delete_share = _share(flow.config.max_delete_share, self.defaults.max_delete_share)
        change_share = _share(flow.config.max_change_share, self.defaults.max_change_share)
        queued = self._queued(flow)
        # It trips only above share × links with at least MIN_LINKS links (fewer queued
        # records than that cannot trip it), or when MIN_WIPE or more are all deleted.
        few = queued <= MIN_LINKS * min(delete_share, change_share)
        if few and queued < MIN_WIPE:
            return
        links = self.store.count_links(flow.key)
        if links < MIN_LINKS:
            # Too small for shares to mean much, but every linked record of one side gone
            # at once is an empty answer far more often than a decision.
            if links >= MIN_WIPE and delete_share < 1:
                self._check_deletions(flow, links, delete_share, every=True)
            return
        if few:
            return
        deleted = self.store.count_dirty(*flow.source, deleted=True) + self.store.count_dirty(
            *flow.target, deleted=True
        )
        if deleted > delete_share * links:
            self._check_deletions(flow, links, delete_share)
        if queued <= change_share * links:
            return
        pairs = self._queued_pairs(flow)
        if len(pairs) <= change_share * links:
            return
        to_source, to_target = self._planned_writes(flow, pairs)
        rewritten = len(to_source | to_target)
        if rewritten > change_share * links:
            raise CircuitBreakerTripped(
                f"circuit breaker: dataflow {flow.key} would rewrite {rewritten} of {links} "
                f"linked pairs ({rewritten / links:.0%} > max_change_share "
                f"{change_share:.0%}): {len(to_target)} in {flow.target[0]}.{flow.target[1]}, "
                f"{len(to_source)} in {flow.source[0]}.{flow.source[1]}. Nothing was written; "
                f"the changes are kept for the next run. {_GO_ON} (or raise max_change_share).",
                {
                    "dataflow": flow.key,
                    "check": "max_change_share",
                    "share": rewritten / links,
                    "max_share": change_share,
                    "linked_pairs": links,
                    "would_update": {
                        "target": sorted(pairs[i].target_ref for i in to_target),
                        "source": sorted(pairs[i].source_ref for i in to_source),
                    },
                    "next": _NEXT,
                },
            )

    def _check_deletions(
        self, flow: Flow, links: int, share: float, *, every: bool = False
    ) -> None:
        """Deletions on either side end links (and, by the policy, delete or archive the
        other side): a table emptied for a moment must not unlink everything.  With
        ``every`` (a dataflow too small for shares) it trips only when every linked record
        of one side is deleted at once."""
        if (
            every
            and max(
                self.store.count_dirty(*flow.source, deleted=True),
                self.store.count_dirty(*flow.target, deleted=True),
            )
            < links
        ):
            return
        gone_in_source = self.store.links_by(flow.key, "source", self._deleted_refs(*flow.source))
        gone_in_target = self.store.links_by(flow.key, "target", self._deleted_refs(*flow.target))
        in_source, in_target = len(gone_in_source), len(gone_in_target)
        deleted = in_source + in_target
        if every and max(in_source, in_target) < links:
            return
        if deleted <= share * links:
            return
        policy = flow.config.on_delete
        raise CircuitBreakerTripped(
            f"circuit breaker: dataflow {flow.key} would end {deleted} of {links} links "
            f"({deleted / links:.0%} > max_delete_share {share:.0%}): {in_source} records "
            f"deleted in {flow.source[0]}.{flow.source[1]} (their "
            f"{flow.target[0]}.{flow.target[1]} records would be "
            f"{'unlinked' if policy == 'unlink' else policy + 'd'}), {in_target} deleted in "
            f"{flow.target[0]}.{flow.target[1]}. Nothing was written; the deletions are kept "
            f"for the next run. {_GO_ON} (or raise max_delete_share in the dataflow).",
            {
                "dataflow": flow.key,
                "check": "max_delete_share",
                "share": deleted / links,
                "max_share": share,
                "linked_pairs": links,
                "on_delete": policy,
                "deleted": {
                    "source": sorted(gone_in_source),
                    "target": sorted(gone_in_target),
                },
                # what the run would do to the other side of each
                "would": {
                    "target": {
                        "action": "unlink" if policy == "unlink" else policy,
                        "refs": sorted(lk.target_ref for lk in gone_in_source.values()),
                    },
                    "source": {
                        "action": "unlink",
                        "refs": sorted(lk.source_ref for lk in gone_in_target.values()),
                    },
                },
                "next": _NEXT,
            },
        )

    def _deleted_refs(self, system: str, etype: str) -> list[str]:
        return [Ref.text(system, etype, rid) for rid in self.store.deleted_queued(system, etype)]

    def _queued(self, flow: Flow) -> int:
        """Records queued on either side of the dataflow (an upper bound of its pairs)."""
        prefix = Ref.text(*flow.source, "")
        recovered = sum(1 for ref in self.recovered if ref.startswith(prefix))
        return (
            self.store.count_dirty(*flow.source) - recovered + self.store.count_dirty(*flow.target)
        )

    def _queued_pairs(self, flow: Flow) -> dict[int, Link]:
        """The linked pairs of the dataflow with a queued record on either side."""
        pairs: dict[int, Link] = {}
        for side, key in (("source", flow.source), ("target", flow.target)):
            for refs in self._dirty_refs(*key):
                refs = [ref for ref in refs if ref not in self.recovered]
                for link in self.store.links_by(flow.key, side, refs).values():
                    pairs[link.id] = link
        return pairs

    def _dirty_refs(self, system: str, etype: str) -> Iterator[list[str]]:
        after = None
        while True:
            batch = self.store.dirty_batch(system, etype, after, BATCH)
            if not batch:
                return
            yield [Ref.text(system, etype, rid) for rid, _ in batch]
            after = batch[-1][0]

    def _planned_writes(self, flow: Flow, pairs: dict[int, Link]) -> tuple[set[int], set[int]]:
        """The pairs (link ids) whose plan writes the source, and those it writes the
        target, as the run would plan them now."""
        to_source: set[int] = set()
        to_target: set[int] = set()
        links = list(pairs.values())
        for start in range(0, len(links), BATCH):
            part = links[start : start + BATCH]
            sources = self.store.snapshots(*flow.source, [rid_of(lk.source_ref) for lk in part])
            targets = self.store.snapshots(*flow.target, [rid_of(lk.target_ref) for lk in part])
            for link in part:
                source = sources.get(rid_of(link.source_ref))
                target = targets.get(rid_of(link.target_ref))
                if source is None or target is None or source.deleted or target.deleted:
                    continue
                try:
                    plan = plan_link(flow, link.base, source, target, self.translator)
                except ConversionError:
                    continue  # quarantined when planned, not written
                if plan.to_source:
                    to_source.add(link.id)
                if plan.to_target:
                    to_target.add(link.id)
        return to_source, to_target


def _share(configured: float | None, default: float) -> float:
    """A dataflow's share, or the default; 0 is a share (nothing may change), not unset."""
    return default if configured is None else configured
