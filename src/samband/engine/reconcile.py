"""Reconcile the store with the config before a run links anything.

A config changes between runs: a dataflow gets an ``id`` (its key changes), a merge
combination gets another property or normalisation, or loses a combination before it.
Links belong to a dataflow's key, and merge-criteria indexes hold keys of one
combination: without this step a renamed dataflow would link (or create) everything
again, and a changed combination would look its records up in an index of another shape.

* A dataflow whose key the store does not know takes over the links of the one key the
  store knows for the same source and target that the config no longer has.
* A dataflow whose mapped properties changed has every linked pair planned again: a
  property newly mapped is agreed on (or is a conflict) at once, not at the next edit.
* A dataflow that is new, or whose filter, creation rule or merge criteria changed, has
  every live source record planned again: a record synced (or left out) under the old
  rules is linked, created or matched under the new ones, not only at its next edit.
* Merge-criteria indexes are named after what they hold (see :meth:`Flow.match_index`);
  one that is not built yet is built from the stored snapshots, once everything is read.
"""

from __future__ import annotations

from typing import NamedTuple

from samband.engine.model import Flow, TypeKey, TypeUse
from samband.engine.records import combination_key, ext_key
from samband.errors import StoreError
from samband.store.store import Store


def reconcile_dataflows(store: Store, flows: list[Flow]) -> list[str]:
    """Move the links of renamed dataflows to their new key, and queue every linked pair
    of a dataflow whose mapped properties changed (a property newly mapped is agreed on
    by the next plan, even when nothing it reads changed); a message for each."""
    stored = store.dataflow_types()
    linking = store.dataflow_linking()
    current = {
        flow.key: (_name(flow.source), _name(flow.target), flow.mapping_digest) for flow in flows
    }
    messages = []
    # a rename deletes the old key's row: the new key must be recorded, even though the
    # copy of what is stored (renamed in memory below) says nothing changed
    renamed = False
    for key, (source, target, mapping) in current.items():
        if key not in stored:
            before = [
                old
                for old, was in stored.items()
                if was[:2] == (source, target) and old not in current
            ]
            now = [
                new
                for new, is_ in current.items()
                if is_[:2] == (source, target) and new not in stored
            ]
            if len(before) == 1 and len(now) == 1:
                links = store.rename_dataflow(before[0], key)
                messages.append(f"dataflow {before[0]} is now {key}: its {links} link(s) are kept")
                stored[key] = stored.pop(before[0])
                renamed = True
                linking[key] = linking.pop(before[0], None)
        was = stored.get(key)
        if was is not None and was[2] is not None and was[2] != mapping:
            queued = store.queue_linked(key)
            messages.append(
                f"dataflow {key} maps other properties now: its {queued} linked pair(s) are "
                "planned again"
            )
    decides = {flow.key: flow.linking_digest for flow in flows}
    for flow in flows:
        if flow.key in stored and linking.get(flow.key) in (None, flow.linking_digest):
            continue  # unchanged (or recorded by a store that kept no digest yet)
        queued = store.queue_live(*flow.source)
        if queued:
            what = "is new" if flow.key not in stored else "links or filters otherwise now"
            messages.append(
                f"dataflow {flow.key} {what}: its {queued} source record(s) are planned again"
            )
    if (
        renamed
        or any(stored.get(key) != value for key, value in current.items())
        or any(linking.get(key) != value for key, value in decides.items())
    ):
        store.record_dataflows(current, decides)
    return messages


def check_same_config(store: Store, flows: list[Flow]) -> None:
    """Refuse a config that shares no dataflow with the ones the store serves: two configs
    on one store would each consume the changes the other needs (snapshots, change
    cursors and queued records are kept per entity type).  A config that keeps one of the
    store's dataflows (by key, or by source and target: a renamed one) is the same config
    edited, and may add or remove others."""
    stored = store.dataflow_types()
    if not stored or not flows:
        return
    pairs = {(source, target) for source, target, _ in stored.values()}
    for flow in flows:
        if flow.key in stored or (_name(flow.source), _name(flow.target)) in pairs:
            return
    names = sorted(stored)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise StoreError(
        f"this store belongs to another config (its dataflows: {shown}); this config shares "
        "none of them, and two configs on one store each take the changes the other needs: "
        "give this config its own store: (the `store:` setting); if it replaces that "
        "config, keep one of its dataflows in it, start from a new store, or run once with "
        "--force"
    )


def renamed_systems(store: Store, systems: list[str], uses: dict[TypeKey, TypeUse]) -> str | None:
    """Why a run must not start, when a system looks renamed in the config: the store has
    links of a system the config no longer has, and a system the store has never seen
    uses the same entity types.  Every record of it would have a new ref, and be created
    again in the other systems (None: nothing looks renamed)."""
    stored = store.dataflow_types()
    known: dict[str, set[str]] = {}  # system → its types, in the store's dataflows
    for source, target, _mapping in stored.values():
        for name in (source, target):
            system, _, etype = name.partition(".")
            known.setdefault(system, set()).add(etype)
    gone = [
        system
        for system in sorted(known)
        if system not in systems
        and any(
            store.count_links(key) > 0
            for key, (source, target, _m) in stored.items()
            if system in (source.partition(".")[0], target.partition(".")[0])
        )
    ]
    if not gone:
        return None
    read = {row["system"] for row in store.all_cursors()}
    for old in gone:
        for new in systems:
            if new in known or new in read:
                continue  # not new: the store has seen it
            types = {etype for system, etype in uses if system == new}
            if known[old] <= types:
                return (
                    f"system {new!r} is new to the store, and {old!r}, whose links the store "
                    f"keeps, is no longer in the config; both have {', '.join(sorted(known[old]))}."
                    f" If {old!r} was renamed, put its key back (the key names every record's "
                    f"ref), or every record would be created again; if {new!r} is another "
                    "system, run with --force. Nothing was written."
                )
    return None


class Unbuilt(NamedTuple):
    """An index to build from the stored snapshots of ``use``'s type: a dataflow's
    merge-criteria index (kind ``match``), the type's external-reference index (``ext``,
    no dataflow), or a dataflow's index of the sources waiting for a match (``waiting``)."""

    kind: str
    name: str
    use: TypeUse
    flow: Flow | None
    combination: int


def unbuilt_indexes(store: Store, uses: dict[TypeKey, TypeUse]) -> list[Unbuilt]:
    """The indexes not built yet.  Indexes of a type never read are complete once it is
    read: they are marked so now.  Indexes no dataflow uses any more are dropped."""
    built = store.built_match_indexes()
    wanted: set[str] = set()
    missing: list[Unbuilt] = []
    for use in uses.values():
        indexes = [
            Unbuilt("match", flow.match_index(combination), use, flow, combination)
            for flow in use.as_target
            for combination in range(len(flow.match))
        ]
        if use.ext_index is not None:
            indexes.append(Unbuilt("ext", use.ext_index, use, None, -1))
        indexes.extend(
            Unbuilt("waiting", flow.wait_index(combination), use, flow, combination)
            for flow in use.as_source
            if flow.waits_for_match
            for combination in range(len(flow.match))
        )
        for item in indexes:
            wanted.add(item.name)
            if item.name in built:
                continue
            if store.has_snapshots(*use.key):
                missing.append(item)
            else:
                store.mark_match_index_built(item.name, item.flow.key if item.flow else "")
    for name in built.keys() - wanted:
        store.drop_match_index(name)
    return missing


def build_index(store: Store, item: Unbuilt) -> None:
    """Fill one index from the stored snapshots of its type (see :class:`Unbuilt`)."""
    use, flow = item.use, item.flow
    entries: list[tuple[str, str | None]] = []
    snaps = store.live_snapshots(*use.key)
    if flow is None:
        path = use.entity_type.external_ref_field
        assert path
        for rid, snap in snaps.items():
            key = ext_key(snap.data.get(path))
            if key is not None:
                entries.append((rid, key))
        store.rebuild_match_index(item.name, "", entries)
        return
    terms = flow.match[item.combination]
    normalizers = [t.normalizer for t in terms]
    if item.kind == "waiting":
        # the sources left unlinked before the index was kept (a store of an older
        # version): a target entered later links them too
        linked = set(store.linked_sources(flow.key))
        for rid, snap in snaps.items():
            if snap.ref in linked:
                continue
            key = combination_key([snap.data.get(t.source) for t in terms], normalizers)
            if key is not None:
                entries.append((rid, key))
    else:
        for rid, snap in snaps.items():
            key = combination_key([snap.data.get(t.target) for t in terms], normalizers)
            if key is not None:
                entries.append((rid, key))
    store.rebuild_match_index(item.name, flow.key, entries)


def _name(key: TypeKey) -> str:
    return f"{key[0]}.{key[1]}"
