"""Links (one row per linked pair of a dataflow, with the agreed base values), the
dataflows they were made for, and the merge-criteria index that finds a counterpart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, func, or_, select

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store.rows import Link, LinkRow, dumps, loads, now_iso

_BY_RID = itemgetter(1)


class Links:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = db.sql.insert(s.links, LinkRow._fields)
        self._set_base = db.sql.update(s.links, ("base",), "id")

    def by(self, dataflow: str, side: str, refs: Iterable[str]) -> dict[str, Link]:
        """The links of ``dataflow`` whose ``side`` (source or target) is one of
        ``refs``, by that ref."""
        column = "source_ref" if side == "source" else "target_ref"
        result: dict[str, Link] = {}
        for part in chunks(list(refs)):
            rows = self.db.rows(
                "SELECT id, dataflow, source_ref, target_ref, base, how FROM samband_links"
                f" WHERE dataflow = ? AND {column} IN ",
                (dataflow,),
                part,
            )
            for row in rows:
                link = _link(row)
                result[link.source_ref if side == "source" else link.target_ref] = link
        return result

    def touching(self, refs: Iterable[str]) -> list[Link]:
        result: list[Link] = []
        for part in chunks(list(set(refs))):
            rows = self.db.conn.execute(
                select(s.links).where(
                    or_(s.links.c.source_ref.in_(part), s.links.c.target_ref.in_(part))
                )
            )
            result.extend(_link(row) for row in rows)
        return result

    def add(self, rows: Iterable[LinkRow | Mapping[str, Any]]) -> None:
        values = [row if type(row) is LinkRow else LinkRow.of(row) for row in rows]
        self.db.many(self._insert, values, "samband_links")  # type: ignore[arg-type]

    def set_bases(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        self.db.many(self._set_base, [(dumps(base), link_id) for link_id, base in rows])

    def delete(self, ids: list[int]) -> None:
        for part in chunks(ids):
            self.db.conn.execute(delete(s.links).where(s.links.c.id.in_(part)))

    def count(self, dataflow: str) -> int:
        return int(
            self.db.conn.execute(
                select(func.count()).where(s.links.c.dataflow == dataflow)
            ).scalar_one()
        )

    def count_by_dataflow(self) -> dict[str, int]:
        """The links of every dataflow, in one pass over the dataflow index."""
        query = select(s.links.c.dataflow, func.count()).group_by(s.links.c.dataflow)
        return {str(flow): int(count) for flow, count in self.db.conn.execute(query)}

    def all(self, dataflow: str | None = None) -> list[Link]:
        query = select(s.links)
        if dataflow is not None:
            query = query.where(s.links.c.dataflow == dataflow)
        return [_link(r) for r in self.db.conn.execute(query.order_by(s.links.c.id))]

    def source_refs(self, dataflow: str) -> list[str]:
        rows = self.db.rows("SELECT source_ref FROM samband_links WHERE dataflow = ?", (dataflow,))
        return [ref for (ref,) in rows]


class Dataflows:
    """The dataflows links were made for, so a renamed or changed one keeps its links."""

    def __init__(self, db: Database, links: Links) -> None:
        self.db, self.links = db, links

    def types(self) -> dict[str, tuple[str, str, str | None]]:
        """key → (source, target, mapping digest), source and target as SYSTEM.TYPE."""
        rows = self.db.conn.execute(select(s.dataflows))
        return {row.key: (row.source, row.target, row.mapping) for row in rows}

    def linking(self) -> dict[str, str | None]:
        """key → digest of what decides which records flow and how they are linked."""
        rows = self.db.conn.execute(select(s.dataflows.c.key, s.dataflows.c.linking))
        return {row.key: row.linking for row in rows}

    def record(
        self, flows: dict[str, tuple[str, str, str]], linking: dict[str, str] | None = None
    ) -> None:
        rows = [
            {
                "key": key,
                "source": source,
                "target": target,
                "mapping": mapping,
                **({"linking": linking.get(key)} if linking is not None else {}),
                "updated_at": now_iso(),
            }
            for key, (source, target, mapping) in flows.items()
        ]
        if rows:
            self.db.upsert(s.dataflows, rows, ["key"])

    def rename(self, old: str, new: str) -> int:
        """Give the links (and what waits, is quarantined or is being created) of
        dataflow ``old`` to ``new``; the number of links."""
        links = self.links.count(old)
        for table in ("samband_links", "samband_waiting", "samband_dead_letters"):
            self.db.query(f"UPDATE {table} SET dataflow = ? WHERE dataflow = ?", (new, old))
        self.db.query("UPDATE samband_intents SET dataflow = ? WHERE dataflow = ?", (new, old))
        self.db.conn.execute(delete(s.dataflows).where(s.dataflows.c.key == old))
        return links


class MatchIndex:
    """Normalised merge-criteria keys of target records, per index (rid → key)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._put = db.sql.upsert(s.match_keys, ("name", "rid", "key"), ("name", "rid"))
        # PostgreSQL text cannot hold NUL: a key with one is stored with it escaped
        self._escape = db.dialect == "postgresql"

    def set_keys(self, name: str, entries: list[tuple[str, str | None]]) -> None:
        """Set (rid → key) of one index; a None key removes the entry."""
        gone = [rid for rid, key in entries if key is None]
        for part in chunks(gone):
            self.db.query(
                "DELETE FROM samband_match_keys WHERE name = ? AND rid IN ", (name,), part
            )
        rows = [(name, rid, self._stored(key)) for rid, key in entries if key is not None]
        rows.sort(key=_BY_RID)  # one lock order for every writer (see Snapshots.put)
        self.db.many(self._put, rows, "samband_match_keys")

    def lookup(self, name: str, keys: Iterable[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        stored = {self._stored(key): key for key in keys}
        for part in chunks(list(stored)):
            rows = self.db.rows(
                'SELECT "key", rid FROM samband_match_keys WHERE name = ? AND "key" IN ',
                (name,),
                part,
            )
            for key, rid in rows:
                result.setdefault(stored[key], []).append(rid)
        return result

    def _stored(self, key: str) -> str:
        """A key as the store holds it: on PostgreSQL a NUL is written U+FFFF "0" (a
        noncharacter no interchanged text holds), and U+FFFF itself U+FFFF "1", so
        distinct keys stay distinct."""
        if not self._escape or ("\x00" not in key and "\uffff" not in key):
            return key
        return key.replace("\uffff", "\uffff1").replace("\x00", "\uffff0")

    def built(self) -> dict[str, str]:
        """The indexes that are complete: name → dataflow."""
        rows = self.db.conn.execute(select(s.match_indexes.c.name, s.match_indexes.c.dataflow))
        return {row.name: row.dataflow for row in rows}

    def mark_built(self, name: str, dataflow: str) -> None:
        row = {"name": name, "dataflow": dataflow, "built_at": now_iso()}
        self.db.upsert(s.match_indexes, [row], ["name"])

    def rebuild(self, name: str, dataflow: str, entries: list[tuple[str, str | None]]) -> None:
        """Replace every entry of one index (rid → key; None: no key) and mark it built."""
        self.db.query("DELETE FROM samband_match_keys WHERE name = ?", (name,))
        self.set_keys(name, entries)
        self.mark_built(name, dataflow)

    def drop(self, name: str) -> None:
        self.db.query("DELETE FROM samband_match_keys WHERE name = ?", (name,))
        self.db.conn.execute(delete(s.match_indexes).where(s.match_indexes.c.name == name))


def _link(row: Any) -> Link:
    from samband.types import from_json

    base = {key: from_json(value) for key, value in (loads(row.base) or {}).items()}
    return Link(int(row.id), row.dataflow, row.source_ref, row.target_ref, base, row.how)
