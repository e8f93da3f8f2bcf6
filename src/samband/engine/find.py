"""Finding records (``samband records find``, ``Inspector.find``, the dashboard's records
page): by ref (``system:type:id``), by a bare id in any system, or by a value (a name, an
e-mail, an org number: a prefix of any stored value, case and spacing aside).  Each hit
is shown with its whole link group: every member's stored values, the mapped properties
of each linked pair side by side, and the writes made to the group, newest first.

Every lookup is by index (the snapshots' key, the links' refs, the search terms, the
audit's ref), and the result is bounded: at most ``limit`` groups."""

from __future__ import annotations

from typing import Any

from samband.config.model import Config
from samband.mapping import get_path
from samband.store import schema as s
from samband.store.rows import Link, Ref, loads
from samband.store.store import Store

MAX_LIMIT = 50
MAX_GROUP = 200  # members of one group shown (a group is one thing in a few systems)
HISTORY = 50  # writes shown per group


def find_records(config: Config, store: Store, text: str, limit: int = 10) -> dict[str, Any]:
    """The link groups of the records ``text`` names or holds; ``truncated`` says more
    records matched than ``limit`` groups show."""
    text = text.strip()
    if not text:
        raise ValueError("say what to look for: a ref (system:type:id), an id, or a value")
    limit = max(1, min(int(limit), MAX_LIMIT))
    catch_up(store)
    hits = _refs(config, store, text, limit + 1)
    groups: list[dict[str, Any]] = []
    placed: set[str] = set()
    for ref in hits:
        if ref in placed:
            continue
        if len(groups) == limit:
            return {"query": text, "groups": groups, "truncated": True}
        members, pairs = _group(store, ref)
        placed.update(members)
        groups.append(_describe(config, store, ref, members, pairs))
    return {"query": text, "groups": groups, "truncated": False}


def catch_up(store: Store, batches: int | None = None) -> int:
    """Make the search terms of the records written since the last search (``batches``
    of them at most; None: all); how many were made."""
    made, done = 0, 0
    while batches is None or done < batches:
        with store.tx():
            count = store.snapshot_table.search.catch_up()
        if not count:
            break
        made, done = made + count, done + 1
    return made


def _refs(config: Config, store: Store, text: str, limit: int) -> list[str]:
    """The refs ``text`` names (a ref, an id in any type) then those holding it."""
    found: dict[str, None] = {}
    types = [
        (sid, etype) for sid, system in config.systems.items() for etype in system.entity_types
    ]
    if text.count(":") >= 2:
        system, etype, rid = Ref.parse(text)
        if (system, etype) in types and store.snapshots(system, etype, [rid]):
            found[text] = None
    for system, etype in types:
        if store.snapshots(system, etype, [text]):
            found[Ref.text(system, etype, text)] = None
    for system, etype, rid in store.snapshot_table.search.find(text, limit * 2):
        found.setdefault(Ref.text(system, etype, rid))
    return list(found)


def _group(store: Store, ref: str) -> tuple[list[str], list[Link]]:
    """The members of ``ref``'s link group and the links between them."""
    seen, frontier, pairs = {ref}, [ref], {}
    while frontier and len(seen) < MAX_GROUP:
        following = []
        for link in store.links_touching(frontier):
            pairs[link.id] = link
            for other in (link.source_ref, link.target_ref):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
    return sorted(seen), list(pairs.values())


def _describe(
    config: Config, store: Store, hit: str, members: list[str], pairs: list[Link]
) -> dict[str, Any]:
    snaps = {ref: store.snapshot(ref) for ref in members}
    flows = {flow.key: flow for flow in config.dataflows}
    linked = []
    for link in sorted(pairs, key=lambda p: (p.dataflow, p.source_ref, p.target_ref)):
        flow = flows.get(link.dataflow)
        source, target = snaps.get(link.source_ref), snaps.get(link.target_ref)
        properties = [
            {
                "source_property": prop.source,
                "target_property": prop.target,
                "source_value": get_path(source.data, prop.source) if source else None,
                "target_value": get_path(target.data, prop.target) if target else None,
                "agreed": link.base.get(prop.target),
            }
            for prop in (flow.properties if flow is not None else [])
        ]
        linked.append(
            {
                "dataflow": link.dataflow,
                "source": link.source_ref,
                "target": link.target_ref,
                "how": link.how,
                "properties": properties,
            }
        )
    audit = s.audit.c
    writes = store.table_rows(
        s.audit, where=audit.ref.in_(members), order=audit.id.desc(), limit=HISTORY
    )
    return {
        "found": hit,
        "members": [
            {
                "ref": ref,
                "values": snap.data if snap else None,
                "modified": snap.modified if snap else None,
                "deleted": snap.deleted if snap else None,
            }
            for ref, snap in snaps.items()
        ],
        "links": linked,
        "history": [
            {
                "at": row["at"],
                "run": row["run_id"],
                "ref": row["ref"],
                "op": row["op"],
                "dataflow": row["dataflow"],
                "before": loads(row["before"]),
                "after": loads(row["after"]),
            }
            for row in writes
        ],
    }
