"""Link: each queued record's link in each dataflow — found in the store, made by the
merge criteria (one match links; several are reported as ambiguous, nothing is created),
or a create when the filter and the creation rule allow one.  Linked pairs, and what a
deletion ends, are handed to :class:`~samband.engine.apply.Apply`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from samband.engine.apply import Apply
from samband.engine.batch import Batch
from samband.engine.context import RunContext
from samband.engine.create import external_ref
from samband.engine.model import Flow
from samband.engine.records import combination_key, ext_key
from samband.engine.translate import Translator
from samband.errors import ConversionError
from samband.store.rows import DeadLetter, Link, Ref, Snapshot, rid_of
from samband.store.store import Store
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
    store: Store,
    flow: Flow,
    records: dict[str, dict[str, Any]],
    keys_of: dict[str, list[tuple[int, str]]] | None = None,
) -> dict[str, set[str]]:
    """Target rids matching each source rid (any combination), before exclusions; with
    ``keys_of``, each record's merge keys are left there too (computed once per record)."""
    wanted: dict[int, dict[str, list[str]]] = {}
    for rid, data in records.items():
        keys = candidate_keys(flow, data)
        if keys_of is not None:
            keys_of[rid] = keys
        for index, key in keys:
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
            for other in translator.neighbours(Ref.text(system, connected, value)):
                found = Ref.parse(other)
                if found.system == into_system and (not into_type or found.etype == into_type):
                    return True
    return False


class Linker:
    """The link stage of a run: sorts each chunk's records by their links, for the
    dataflows whose source or target their type is."""

    def __init__(self, context: RunContext, apply: Apply) -> None:
        self.context, self.apply = context, apply
        self.store, self.translator, self.ledger = context.store, context.translator, context.ledger
        # in the first round of planning, deletions that would delete or archive a target
        # are held back (see source_side)
        self.hold_deletions = True
        self.held_deletions = False
        # target types that had records before this run created any (see _had_targets)
        self._targets_before: dict[tuple[str, str], bool] = {}

    def _prefetch(self, flow: Flow, snaps: list[Snapshot], side: str) -> None:
        """Load the links of every record the references of ``snaps`` point at."""
        refs: set[str] = set()
        for m in flow.mappings:
            if not m.is_reference:
                continue
            system, etype, path = (
                (flow.source[0], m.source_ref_type, m.source)
                if side == "source"
                else (flow.target[0], m.target_ref_type, m.target)
            )
            if etype is None:
                continue
            for snap in snaps:
                value = snap.data.get(path)
                if value not in (None, "", 0):
                    refs.add(Ref.text(system, etype, value))
        if refs:
            self.translator.prefetch(refs)

    def source_side(self, flow: Flow, chunk: dict[str, Snapshot], batch: Batch) -> None:
        """The chunk's records as sources of ``flow``: linked pairs are synchronized,
        unlinked records linked or created, deleted ones end their link."""
        snaps = batch.current(chunk)
        links = self.store.links_by(flow.key, "source", [snap.ref for snap in snaps])
        self._prefetch(flow, snaps, "source")
        targets = self.store.snapshots(
            *flow.target, [rid_of(link.target_ref) for link in links.values()]
        )
        if targets:
            self._prefetch(flow, list(targets.values()), "target")
        unlinked: dict[str, Snapshot] = {}
        deleted: list[Link] = []
        for snap in snaps:
            if snap.refresh:
                # found edited since the read by a write of this chunk: read again first
                batch.keep_dirty.add(snap.ref)
                continue
            link = links.get(snap.ref)
            if snap.deleted:
                if link is not None:
                    deleted.append(link)
                continue
            if link is None:
                unlinked[snap.rid] = snap
                continue
            target = targets.get(rid_of(link.target_ref))
            if target is None or target.deleted:
                continue  # the target side unlinks it
            self.apply.pair(flow, link, snap, target, batch)
        if unlinked:
            self.link_or_create(flow, unlinked, batch)
        # after linking: a record deleted and entered again since the last run has given
        # its target to the new one (see link_or_create), which its deletion leaves alone.
        # A deletion that deletes or archives its target waits for the first round to end,
        # so a record entered again in a later chunk takes the target over first.
        for link in deleted:
            if link.id in batch.drop_links:
                continue
            if self.hold_deletions and flow.config.on_delete != "unlink":
                self.held_deletions = True
                batch.keep_dirty.add(link.source_ref)
                continue
            self.apply.source_deleted(flow, link, targets.get(rid_of(link.target_ref)), batch)

    def target_side(self, flow: Flow, chunk: dict[str, Snapshot], batch: Batch) -> None:
        """The chunk's records as targets of ``flow``: linked pairs are synchronized,
        deleted ones end their link."""
        snaps = batch.current(chunk)
        links = self.store.links_by(flow.key, "target", [snap.ref for snap in snaps])
        if flow.waits_for_match or self.context.controls.only_new(flow):
            free = [s for s in snaps if s.ref not in links and not s.deleted]
            if free:
                self.wake_waiting(flow, free, batch)
        if not links:
            return
        sources = self.store.snapshots(
            *flow.source, [rid_of(link.source_ref) for link in links.values()]
        )
        self._prefetch(flow, list(sources.values()), "source")
        self._prefetch(flow, snaps, "target")
        for snap in snaps:
            link = links.get(snap.ref)
            if link is None:
                continue
            if snap.deleted:
                self.apply.target_deleted(flow, link, batch)
                continue
            source = sources.get(rid_of(link.source_ref))
            if source is None or source.deleted:
                continue
            self.apply.pair(flow, link, source, snap, batch)

    def link_or_create(self, flow: Flow, unlinked: dict[str, Snapshot], batch: Batch) -> None:
        tsys, ttype = flow.target
        eligible = {}
        for rid, snap in unlinked.items():
            try:
                if passes_filter(flow, snap.data):
                    eligible[rid] = snap
            except ConversionError as exc:
                self.ledger.quarantine(flow, snap.ref, "conversion", str(exc), batch)
        # pairs a user unlinked are never linked again; a source held after it waits for
        # the user's decision (see samband.engine.actions)
        excluded = self.store.unlinked.of(flow.key, [s.ref for s in eligible.values()])
        if excluded:
            eligible = {
                rid: s for rid, s in eligible.items() if not excluded.get(s.ref, ((), False))[1]
            }
        if not eligible:
            return
        keys_of: dict[str, list[tuple[int, str]]] = {}
        matches = (
            find_matches(self.store, flow, {rid: s.data for rid, s in eligible.items()}, keys_of)
            if flow.match
            else {}
        )
        # what the store already knows of each record's counterpart: a target stamped
        # with its ref, and the records of its link group
        stamped = self._stamped(flow, eligible)
        grouped = self._grouped(flow, eligible)
        candidates = sorted(
            {
                c
                for found in (*matches.values(), *stamped.values(), *grouped.values())
                for c in found
            }
        )
        taken, freed = self._taken(flow, candidates, batch)
        targets = self.store.snapshots(tsys, ttype, candidates)

        def free(rids: set[str], never: set[str] | tuple[()] = ()) -> list[str]:
            return [
                c
                for c in sorted(rids)
                if (ref := Ref.text(tsys, ttype, c)) not in taken
                and ref not in batch.claimed
                and ref not in never
                and c in targets
                and not targets[c].deleted
            ]

        if freed:
            eligible = self._reentries_first(flow, eligible, matches, freed)
        # full sync off: the records that existed at the start mark are never created
        existed = (
            self.store.controls.in_baseline(flow.key, [s.ref for s in eligible.values()])
            if self.context.controls.only_new(flow)
            else set()
        )
        creates: list[Snapshot] = []
        waiting: dict[str, Snapshot] = {}  # left unlinked: wait for a match
        linked_here: dict[str, str] = {}  # target ref -> the source ref linked to it here
        # the merge keys of the records of this chunk about to be created: another record
        # with one of them is a duplicate (ref of the first)
        planned: dict[tuple[int, str], str] = {}
        for rid, snap in eligible.items():
            # A target stamped with this record's ref, else the one record of the target
            # type in its link group, is its counterpart: known before any criteria.
            found: list[str] = []
            how = ""
            never = excluded.get(snap.ref, ((), False))[0]
            for way, known in (
                ("external reference", stamped),
                ("link group", grouped),
                ("merge criteria", matches),
            ):
                rids = known.get(rid)
                if not rids:
                    continue
                options = free(rids, never)
                if len(options) > 1:
                    # a record entered again takes over the target of the one it replaces,
                    # even when another record has the same key now
                    again = [c for c in options if Ref.text(tsys, ttype, c) in freed]
                    if len(again) == 1:
                        options = again
                if len(options) == 1:
                    found, how = options, way
                    break
                if options and not found:
                    found, how = options, way  # ambiguous, unless a later way is not
            live = [
                (c, Ref.text(tsys, ttype, c))
                for c in sorted(matches.get(rid, ()))
                if c in targets and not targets[c].deleted and Ref.text(tsys, ttype, c) not in never
            ]
            if len(found) == 1:
                target = targets[found[0]]
                if target.ref in freed:
                    self.release(flow, freed[target.ref], snap.ref, batch)
                linked_here[target.ref] = snap.ref
                self.link_matched(flow, snap, target, batch, how)
            elif len(found) > 1:
                refs = [Ref.text(tsys, ttype, c) for c in found]
                self.ledger.counts(flow).ambiguous += 1
                batch.dead.append(
                    DeadLetter(
                        snap.ref,
                        flow.key,
                        "ambiguous",
                        f"matches {len(found)} {tsys}.{ttype} records by the {how}; "
                        "nothing was linked or created. Make the criteria unique, or link "
                        "by hand, then `samband retry`.",
                        {"candidates": refs},
                    )
                )
                self.ledger.plan_line(
                    f"ambiguous {snap.ref}: {', '.join(refs)}", "ambiguous", flow, snap.ref
                )
            elif live:
                # its match is linked to another record of this type already: two records
                # with one key are one real-world thing entered twice
                refs = [ref for _c, ref in live]
                owners = sorted(
                    {owner for ref in refs if (owner := taken.get(ref) or linked_here.get(ref))}
                )
                self.duplicate(flow, snap, owners or refs, refs, batch)
            elif flow.config.create and snap.ref in existed:
                self.ledger.plan_line(
                    f"not created: {snap.ref} existed before {flow.key}'s start (full sync "
                    "off); it is linked when it matches a record",
                    "skip",
                    flow,
                    snap.ref,
                )
                waiting[rid] = snap
            elif flow.config.create and creation_allowed(flow, snap.data, self.translator):
                keys = keys_of.get(rid, [])
                first = next((planned[key] for key in keys if key in planned), None)
                if first is not None:
                    self.duplicate(flow, snap, [first], [], batch)
                    continue
                planned.update(dict.fromkeys(keys, snap.ref))
                creates.append(snap)
            else:
                waiting[rid] = snap
        if flow.waits_for_match or (existed and flow.match):
            # (full sync off: a record that existed waits for a match, as with creates off)
            self._note_waiting(flow, eligible, waiting, batch)
        if creates:
            self.apply.create(flow, creates, batch)

    def _reentries_first(
        self,
        flow: Flow,
        eligible: dict[str, Snapshot],
        matches: dict[str, set[str]],
        freed: dict[str, Link],
    ) -> dict[str, Snapshot]:
        """``eligible`` with the records whose merge criteria match the target of a source
        deleted since first, the earliest entered (modified) first: the record entered
        again takes its predecessor's target before a record entered after it with the
        same key, which is then its duplicate, whatever order the chunk has them in."""
        tsys, ttype = flow.target
        order = {rid: index for index, rid in enumerate(eligible)}
        reentries = [
            rid
            for rid in eligible
            if any(Ref.text(tsys, ttype, c) in freed for c in matches.get(rid, ()))
        ]
        if not reentries:
            return eligible
        reentries.sort(
            key=lambda rid: (
                eligible[rid].modified is None,
                eligible[rid].modified or "",
                order[rid],
            )
        )
        chosen = set(reentries)
        return {
            **{rid: eligible[rid] for rid in reentries},
            **{rid: snap for rid, snap in eligible.items() if rid not in chosen},
        }

    def duplicate(
        self, flow: Flow, snap: Snapshot, others: list[str], targets: list[str], batch: Batch
    ) -> None:
        """``snap`` has the merge key of ``others`` (records of its own type, linked to
        ``targets`` or being created): reported as ambiguous, nothing linked or created."""
        ssys, stype = flow.source
        into = f" (linked to {', '.join(targets)})" if targets else ""
        self.ledger.counts(flow).ambiguous += 1
        batch.dead.append(
            DeadLetter(
                snap.ref,
                flow.key,
                "ambiguous",
                f"has the merge key of {', '.join(others)}{into}: two {ssys}.{stype} records "
                "with one key are one thing entered twice; nothing was linked or created. "
                "Merge the duplicates (or make the criteria unique), then `samband retry`.",
                {"duplicate_of": others, "candidates": targets},
            )
        )
        self.ledger.plan_line(
            f"ambiguous {snap.ref}: a duplicate of {', '.join(others)}", "ambiguous", flow, snap.ref
        )

    def _note_waiting(
        self,
        flow: Flow,
        eligible: dict[str, Snapshot],
        waiting: dict[str, Snapshot],
        batch: Batch,
    ) -> None:
        """Keep the merge keys of the records left unlinked (no match, no create) in the
        dataflow's waiting index, so a matching target entered later links them (see
        :meth:`wake_waiting`); the others leave it."""
        entries: dict[str, list[tuple[str, str | None]]] = {
            flow.wait_index(index): [] for index in range(len(flow.match))
        }
        for rid, snap in eligible.items():
            keys = dict(candidate_keys(flow, snap.data)) if rid in waiting else {}
            for index in range(len(flow.match)):
                entries[flow.wait_index(index)].append((rid, keys.get(index)))
        for name, pairs in entries.items():
            batch.match.setdefault(name, []).extend(pairs)

    def wake_waiting(self, flow: Flow, snaps: list[Snapshot], batch: Batch) -> None:
        """Target records not linked in ``flow`` (entered, or given their merge keys,
        since): the source records waiting for a match with their keys are planned again,
        and so linked as if the target had been there first."""
        wanted: dict[int, list[str]] = {}
        for snap in snaps:
            for index, combination in enumerate(flow.match):
                key = combination_key(
                    [snap.data.get(t.target) for t in combination],
                    [t.normalizer for t in combination],
                )
                if key is not None:
                    wanted.setdefault(index, []).append(key)
        for index, keys in wanted.items():
            found = self.store.lookup_match(flow.wait_index(index), keys)
            for rids in found.values():
                batch.requeue.update(Ref.text(*flow.source, rid) for rid in rids)
                batch.progress = True

    def _stamped(self, flow: Flow, records: dict[str, Snapshot]) -> dict[str, set[str]]:
        """Target rids whose external reference is each record's ref as creates stamp it
        (a record created for it before: the source restored with its id after a delete,
        the store restored from an older copy).  One lookup for the chunk."""
        name = self.context.uses[flow.target].ext_index
        if name is None or not self._had_targets(flow):
            return {}
        by_key: dict[str, list[str]] = {}
        for rid, snap in records.items():
            key = ext_key(external_ref(flow, snap.ref))
            if key is not None:
                by_key.setdefault(key, []).append(rid)
        result: dict[str, set[str]] = {}
        for key, target_rids in self.store.lookup_match(name, by_key).items():
            for rid in by_key[key]:
                result.setdefault(rid, set()).update(target_rids)
        return result

    def _had_targets(self, flow: Flow) -> bool:
        """Whether the target type had records when the run began planning (else the only
        ones stamped are those this run created, for records it linked them to)."""
        had = self._targets_before.get(flow.target)
        if had is None:
            had = self.store.has_snapshots(*flow.target)
            self._targets_before[flow.target] = had
        return had

    def _grouped(self, flow: Flow, records: dict[str, Snapshot]) -> dict[str, set[str]]:
        """Target rids in each record's link group: the records linked to it through any
        dataflow, transitively (a link group is one real-world thing: a record created
        from it by the reverse dataflow, or reached round a cycle of dataflows).  The
        links are read for the chunk at once, one query per step."""
        if not self.apply.propagates[(flow.source, flow.key)]:
            # the type takes part in this dataflow only: a record unlinked in it is linked
            # to nothing, so its link group is itself
            return {}
        tsys, ttype = flow.target
        prefix = Ref.text(tsys, ttype, "")
        refs = {snap.ref: rid for rid, snap in records.items()}
        result: dict[str, set[str]] = {}
        for ref, members in self.translator.groups(list(refs)).items():
            found = {rid_of(m) for m in members if m.startswith(prefix)}
            if found:
                result[refs[ref]] = found
        return result

    def _taken(
        self, flow: Flow, candidates: list[str], batch: Batch
    ) -> tuple[dict[str, str], dict[str, Link]]:
        """Which candidate targets are linked in this dataflow already, each with its
        source's ref (a target linked by another dataflow is free: a link group is one
        real-world thing, whichever systems it is entered in), and which of those links
        belong to a source deleted since (a record deleted and entered again: its target
        goes to the new one)."""
        links = self.store.links_by(
            flow.key, "target", [Ref.text(*flow.target, c) for c in candidates]
        )
        links = {ref: link for ref, link in links.items() if link.id not in batch.drop_links}
        rids = [rid_of(link.source_ref) for link in links.values()]
        sources = self.store.snapshots(*flow.source, rids) if rids else {}
        freed = {
            ref: link
            for ref, link in links.items()
            if (source := sources.get(rid_of(link.source_ref))) is not None and source.deleted
        }
        return {ref: link.source_ref for ref, link in links.items() if ref not in freed}, freed

    def release(self, flow: Flow, link: Link, new_source: str, batch: Batch) -> None:
        """Unlink a deleted source from its target, which ``new_source`` takes over."""
        self.apply.unlink(batch, flow, link, f"deleted in source; entered again as {new_source}")
        self.ledger.plan_line(
            f"unlink {link.source_ref} ↔ {link.target_ref} (entered again)",
            "unlink",
            flow,
            link.source_ref,
            link.target_ref,
        )

    def link_matched(
        self,
        flow: Flow,
        source: Snapshot,
        target: Snapshot,
        batch: Batch,
        how: str = "merge criteria",
    ) -> None:
        batch.claimed.add(target.ref)
        self.ledger.counts(flow).linked += 1
        batch.progress = True
        self.ledger.plan_line(
            f"link {source.ref} ↔ {target.ref} ({how})", "link", flow, source.ref, target.ref
        )
        link = Link(Link.NEW, flow.key, source.ref, target.ref, {}, "matched")
        self.translator.learn((source.ref, target.ref))
        self.apply.pair(flow, link, source, target, batch)
