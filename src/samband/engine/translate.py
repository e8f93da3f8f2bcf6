"""The counterpart of a record in another system, found through the links (multi-hop):
what references are translated by, and what the creation rule asks."""

from __future__ import annotations

from samband.store.rows import Link, Ref
from samband.store.store import Store


class Translator:
    """Finds the counterpart of a record in another system through the links."""

    MAX_HOPS = 4

    def __init__(self, store: Store) -> None:
        self.store = store
        self._links: dict[str, list[str]] = {}
        # links made or dropped in this chunk and not stored yet: a ref loaded from the
        # store before the chunk commits still sees them
        self._learned: dict[str, set[str]] = {}
        self._forgotten: set[tuple[str, str]] = set()

    def prefetch(self, refs: set[str]) -> None:
        missing = {ref for ref in refs if ref not in self._links}
        if not missing:
            return
        for ref in missing:
            self._links[ref] = []
        for link in self.store.links_touching(missing):
            if (link.source_ref, link.target_ref) not in self._forgotten:
                self._add(link.source_ref, link.target_ref)
        for ref in missing:
            for other in self._learned.get(ref, ()):
                self._add(ref, other)

    def _add(self, a: str, b: str) -> None:
        for x, y in ((a, b), (b, a)):
            if x in self._links and y not in self._links[x]:
                self._links[x].append(y)

    def learn(self, link: Link | tuple[str, str]) -> None:
        a, b = (link.source_ref, link.target_ref) if isinstance(link, Link) else link
        self._learned.setdefault(a, set()).add(b)
        self._learned.setdefault(b, set()).add(a)
        self._forgotten.discard((a, b))
        self._add(a, b)

    def settled(self) -> None:
        """The links learned and forgotten so far are in the store now (their chunk is
        committed): a later read of the store sees them."""
        self._learned.clear()
        self._forgotten.clear()

    def forget(self, a: str, b: str) -> None:
        self._forgotten.add((a, b))
        for x, y in ((a, b), (b, a)):
            self._learned.get(x, set()).discard(y)
            if x in self._links and y in self._links[x]:
                self._links[x].remove(y)

    def groups(self, refs: list[str], depth: int = 8) -> dict[str, set[str]]:
        """The link group of each of ``refs``: the refs linked to it through any dataflow,
        transitively (up to ``depth`` links away), without itself.  The links of each
        step are read for every ref at once (one store query per step, not per record)."""
        found: dict[str, set[str]] = {ref: set() for ref in refs}
        frontiers: dict[str, list[str]] = {ref: [ref] for ref in refs}
        for _ in range(depth):
            wanted = {ref for frontier in frontiers.values() for ref in frontier}
            if not wanted:
                break
            self.prefetch(wanted)
            following: dict[str, list[str]] = {}
            for start, frontier in frontiers.items():
                seen = found[start]
                step = []
                for ref in frontier:
                    for other in self._links[ref]:
                        if other != start and other not in seen:
                            seen.add(other)
                            step.append(other)
                if step:
                    following[start] = step
            frontiers = following
        return found

    def neighbours(self, ref: str) -> list[str]:
        if ref not in self._links:
            self.prefetch({ref})
        return self._links[ref]

    def __call__(
        self, system: str, etype: str | None, rid: str, into_system: str, into_type: str | None
    ) -> str | None:
        if etype is None:
            return None
        start = Ref.text(system, etype, rid)
        frontier, seen = [start], {start}
        for _ in range(self.MAX_HOPS):
            following: list[str] = []
            for ref in frontier:
                for other in self.neighbours(ref):
                    if other in seen:
                        continue
                    seen.add(other)
                    found = Ref.parse(other)
                    if found.system == into_system and (
                        into_type is None or found.etype == into_type
                    ):
                        return found.id
                    following.append(other)
            if not following:
                return None
            frontier = following
        return None
