"""Link: find the counterpart of an unlinked source record by the merge criteria, decide
whether a record may be created (filter and creation rule), and translate references
through the links."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from samband.engine.collect import combination_key
from samband.engine.model import Flow
from samband.errors import ConversionError
from samband.store.store import Link, Store, split_ref
from samband.types import coerce, infer_type


def candidate_keys(flow: Flow, data: dict[str, Any]) -> list[tuple[int, str]]:
    """(combination index, normalised key) for each combination the source record fills."""
    keys = []
    for index, combination in enumerate(flow.match):
        key = combination_key(
            [data.get(t.source) for t in combination], [t.normalizer for t in combination]
        )
        if key is not None:
            keys.append((index, key))
    return keys


def find_matches(
    store: Store, flow: Flow, records: dict[str, dict[str, Any]]
) -> dict[str, set[str]]:
    """Target rids matching each source rid (any combination), before exclusions."""
    wanted: dict[int, dict[str, list[str]]] = {}
    for rid, data in records.items():
        for index, key in candidate_keys(flow, data):
            wanted.setdefault(index, {}).setdefault(key, []).append(rid)
    result: dict[str, set[str]] = {rid: set() for rid in records}
    for index, by_key in wanted.items():
        found = store.lookup_match(flow.match_index(index), by_key)
        for key, target_rids in found.items():
            for source_rid in by_key[key]:
                result[source_rid].update(target_rids)
    return result


_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
    "in": lambda a, b: a in b,
}


_ORDERED = frozenset({"gt", "ge", "lt", "le"})


def passes_filter(flow: Flow, data: dict[str, Any]) -> bool:
    """Whether a source record meets the dataflow's filter (``where``).  Raises
    :class:`ConversionError` when a value cannot be compared as the filter asks (``"ca.
    20"`` greater than 10): the record is quarantined with that reason."""
    rule = flow.config.filter
    if rule is None:
        return True
    for path, condition in rule.where.items():
        value = data.get(flow.source_et.canonical(path))
        tests = condition if isinstance(condition, dict) else {"eq": condition}
        for op, expected in tests.items():
            if op not in _OPS:
                return False
            try:
                if not _OPS[op](_like(value, expected, strict=op in _ORDERED), expected):
                    return False
            except (ConversionError, TypeError):
                raise ConversionError(
                    f"the filter compares {path} ({value!r}) {op} {expected!r}, which it "
                    f"cannot; fix the value (or the filter), then `samband retry`"
                ) from None
    return True


def _like(value: Any, expected: Any, *, strict: bool = False) -> Any:
    """``value`` converted to the type of ``expected`` (so "100" equals 100); with
    ``strict`` a value that cannot be converted raises ConversionError."""
    sample = expected[0] if isinstance(expected, list) and expected else expected
    kind = infer_type(sample)
    if value is None or kind is None:
        return value
    try:
        converted = coerce(value, kind)
    except ConversionError:
        if strict:
            raise
        return value
    if isinstance(sample, float) and isinstance(converted, Decimal):
        return float(converted)
    return converted


class Translator:
    """Finds the counterpart of a record in another system through the links (multi-hop)."""

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

    def neighbours(self, ref: str) -> list[str]:
        if ref not in self._links:
            self.prefetch({ref})
        return self._links[ref]

    def __call__(
        self, system: str, etype: str | None, rid: str, into_system: str, into_type: str | None
    ) -> str | None:
        if etype is None:
            return None
        start = f"{system}:{etype}:{rid}"
        frontier, seen = [start], {start}
        for _ in range(self.MAX_HOPS):
            following: list[str] = []
            for ref in frontier:
                for other in self.neighbours(ref):
                    if other in seen:
                        continue
                    seen.add(other)
                    o_system, o_type, o_rid = split_ref(other)
                    if o_system == into_system and (into_type is None or o_type == into_type):
                        return o_rid
                    following.append(other)
            if not following:
                return None
            frontier = following
        return None


def creation_allowed(flow: Flow, data: dict[str, Any], translator: Translator) -> bool:
    """The dataflow's creation rule: the record is connected to a record of one of the
    ``connected_to`` types that is synchronized into ``synchronized_into``."""
    rule = flow.config.create_when
    if rule is None:
        return True
    system = flow.source[0]
    # "system" or "system.Type"
    into_system, _, into_type = rule.synchronized_into.partition(".")
    paths = rule.via or [
        m.source for m in flow.mappings if m.is_reference and m.source_ref_type in rule.connected_to
    ]
    for index, path in enumerate(paths):
        value = data.get(flow.source_et.canonical(path))
        if value in (None, "", 0):
            continue
        types = (
            [rule.connected_to[index]]
            if rule.via and index < len(rule.connected_to)
            else rule.connected_to
        )
        for connected in types:
            ref = f"{system}:{connected}:{value}"
            for other in translator.neighbours(ref):
                o_system, o_type, _ = split_ref(other)
                if o_system == into_system and (not into_type or o_type == into_type):
                    return True
    return False
