"""The state store: snapshots, links and bases, cursors, intents, runs, audit, conflicts,
dead letters.  SQLite (embedded, WAL) by default; PostgreSQL for shared deployments.

Every method that writes joins the current transaction; :meth:`Store.tx` commits it
(or, in a dry run, keeps it open so that :meth:`Store.close` rolls everything back).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from samband import _killpoint as killpoint
from samband.errors import StoreError
from samband.exactjson import big_ints
from samband.store import schema as s
from samband.store._statements import RowsSql, Statements
from samband.store._statistics import Statistics
from samband.store.migrations import migrate

REFRESH = "refresh"  # snapshot hash meaning "read this record again before planning"

SNAPSHOT_COLUMNS = ("system", "etype", "rid", "hash", "data", "modified", "deleted")
SNAPSHOT_KEY = ("system", "etype", "rid")
LINK_COLUMNS = ("dataflow", "source_ref", "target_ref", "base", "how", "created_run", "created_at")
INTENT_COLUMNS = (
    "key",
    "dataflow",
    "target_system",
    "target_etype",
    "items",
    "run_id",
    "created_at",
)
AUDIT_COLUMNS = ("run_id", "at", "ref", "dataflow", "op", "before", "after")
_SNAPSHOT_HEAD = itemgetter(*SNAPSHOT_COLUMNS[:6])
_LINK_ROW = itemgetter(*LINK_COLUMNS)
_AUDIT_ROW = itemgetter(*AUDIT_COLUMNS)
_BY_KEY = itemgetter(0, 1, 2)
_KEY_OF = itemgetter(*SNAPSHOT_KEY)
_BY_RID = itemgetter(1)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        # an integer orjson cannot write (past 64 bits) is kept as its digits, exactly
        return orjson.dumps(
            big_ints(value, str), default=_default, option=orjson.OPT_SORT_KEYS
        ).decode()


def _default(value: Any) -> Any:
    from samband.types import to_json

    converted = to_json(value)
    if converted is value:
        return str(value)
    return converted


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


@dataclass
class Snapshot:
    system: str
    etype: str
    rid: str
    hash: str
    data: dict[str, Any]
    modified: str | None
    deleted: bool
    # set once: functools.cached_property takes a lock on every first read (Python 3.11),
    # which costs more than the text for a snapshot that is read once
    ref: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.ref = f"{self.system}:{self.etype}:{self.rid}"


@dataclass
class Link:
    id: int
    dataflow: str
    source_ref: str
    target_ref: str
    base: dict[str, Any]
    how: str


def split_ref(ref: str) -> tuple[str, str, str]:
    system, etype, rid = ref.split(":", 2)
    return system, etype, rid


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"


class Store:
    """One connection to the state store."""

    CHUNK = 500  # rows per IN (...) lookup

    def __init__(self, url: str, *, base_dir: str | None = None, dry_run: bool = False) -> None:
        self.url = _resolve_sqlite(url, base_dir)
        self.dry_run = dry_run
        self._discard: str | None = None  # a preview's private copy, removed at close
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(
                f"store {redact_url(self.url)}: use a sqlite:// or postgresql:// store"
            )
        if self.dialect == "postgresql" and make_url(self.url).drivername == "postgresql":
            self.url = str(make_url(self.url).set(drivername="postgresql+psycopg"))
        self.engine: Engine = _create_engine(self.url, self.dialect)
        try:
            self.conn: Connection = self.engine.connect()
            migrate(self.conn)
            self.conn.commit()
        except BaseException as exc:
            # a failed migration must not keep its transaction (and the migration lock)
            self.engine.dispose()
            if isinstance(exc, OperationalError):
                raise StoreError(
                    f"cannot open the store {redact_url(self.url)}: {_db_message(exc)}"
                ) from None
            if isinstance(exc, SQLAlchemyError):
                raise StoreError(
                    f"the store {redact_url(self.url)} cannot be read ({_db_message(exc)}): "
                    "restore it from a backup or move it away (a new one is made); nothing "
                    "in your systems was changed"
                ) from None
            raise
        self._seq = time.time_ns() // 1000
        self.sql = Statements(self.dialect)
        self._statistics = Statistics(self.conn) if self.dialect == "postgresql" else None
        self._put_snapshot = self.sql.upsert(s.snapshots, SNAPSHOT_COLUMNS, SNAPSHOT_KEY)
        self._insert_link = self.sql.insert(s.links, LINK_COLUMNS)
        self._insert_intent = self.sql.insert(s.intents, INTENT_COLUMNS)
        self._intent_chunk: dict[str, str] = {}  # intent key → the key of its chunk's row
        self._insert_audit = self.sql.insert(s.audit, AUDIT_COLUMNS)
        self._put_match_key = self.sql.upsert(s.match_keys, ("name", "rid", "key"), ("name", "rid"))
        self._mark_dirty = self.sql.upsert(s.dirty, (*SNAPSHOT_KEY, "seq"), SNAPSHOT_KEY)
        self._set_base = self.sql.update(s.links, ("base",), "id")
        self._unmark_dirty = self.sql.delete(s.dirty, SNAPSHOT_KEY)
        self._clear_dirty = self.sql.delete(s.dirty, (*SNAPSHOT_KEY, "seq"))

    @classmethod
    def preview(cls, url: str, *, base_dir: str | None = None) -> Store:
        """A store for a dry run: everything it writes is thrown away at :meth:`close`.
        An embedded SQLite store is copied first, so the dry run neither holds the real
        file's write lock (a scheduled run would wait for it) nor creates a store that
        does not exist yet; on PostgreSQL its writes stay in a transaction rolled back."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return cls(url, base_dir=base_dir, dry_run=True)
        path = Path(parsed.database)
        if not path.is_absolute() and base_dir:
            path = Path(base_dir) / path
        fd, copy = tempfile.mkstemp(prefix="samband-preview-", suffix=".db")
        os.close(fd)
        if path.exists():
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        store = cls(str(parsed.set(database=copy)), dry_run=True)
        store._discard = copy
        return store

    # -- transactions -------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A unit of work: committed at the end (kept open in a dry run)."""
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        else:
            if not self.dry_run:
                killpoint.reached("commit")
                try:
                    self.conn.commit()
                    if self._statistics is not None and self._statistics.due():
                        self._statistics.analyze(self.conn)
                except SQLAlchemyError as exc:
                    self.conn.rollback()
                    raise StoreError(
                        f"cannot write the store: {_db_message(exc)}; check the disk (free "
                        "space, permissions) or the database server, then run again — what "
                        "was committed before is kept"
                    ) from None

    @contextmanager
    def durable_tx(self) -> Iterator[Connection]:
        """A unit of work that must survive a power loss once committed: the create
        intents written before an API call.  SQLite's WAL mode at ``synchronous=NORMAL``
        (the store's setting, for speed) may lose the last commits when the machine
        stops; this one is synced to disk before it returns (PostgreSQL syncs every
        commit)."""
        full = self.dialect == "sqlite" and not self.dry_run
        if full:
            # set outside a transaction: a pragma changed inside one does not apply to it
            self.conn.commit()
            self.conn.exec_driver_sql("PRAGMA synchronous=FULL")
        try:
            with self.tx() as conn:
                yield conn
        finally:
            if full:
                # a failed restore must not hide the error that ended the transaction
                with contextlib.suppress(SQLAlchemyError):
                    self.conn.exec_driver_sql("PRAGMA synchronous=NORMAL")

    def commit(self) -> None:
        if not self.dry_run:
            self.conn.commit()

    def close(self) -> None:
        try:
            if self.dry_run:
                self.conn.rollback()
            self.conn.close()
        finally:
            self.engine.dispose()
            if self._discard is not None:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(self._discard + suffix)

    def next_seq(self) -> int:
        """A dirty-sequence value larger than every earlier one (also across processes)."""
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    # -- runs and leases ------------------------------------------------------------
    def begin_run(self, dry_run: bool) -> int:
        with self.tx() as conn:
            self.close_dead_runs()
            result = conn.execute(
                s.runs.insert().values(
                    started_at=now_iso(), status="running", dry_run=dry_run, owner=_owner()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def close_dead_runs(self) -> int:
        """Record as ``interrupted`` the runs left ``running`` by a process of this machine
        that no longer lives (killed, or the machine restarted); how many."""
        host = socket.gethostname()
        dead = []
        for row in self.conn.execute(
            select(s.runs.c.id, s.runs.c.owner).where(s.runs.c.status == "running")
        ):
            owner_host, _, pid = str(row.owner or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                dead.append(row.id)
        if dead:
            self.conn.execute(
                update(s.runs)
                .where(s.runs.c.id.in_(dead))
                .values(status="interrupted", finished_at=now_iso())
            )
        return len(dead)

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        with self.tx() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(finished_at=now_iso(), status=status, stats=dumps(stats))
            )

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) a named lease; False when another live owner holds it."""
        expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat()
        conn = self.conn
        try:
            # one statement: two processes that both find a lease expired cannot both
            # take it (a read, then a write, would let them)
            taken = self._query(
                'INSERT INTO samband_leases (name, "owner", expires_at) VALUES (?, ?, ?)'
                ' ON CONFLICT (name) DO UPDATE SET "owner" = excluded."owner",'
                " expires_at = excluded.expires_at"
                ' WHERE samband_leases."owner" = excluded."owner"'
                " OR samband_leases.expires_at < ?",
                (name, owner, expires, now_iso()),
            ).rowcount
            conn.commit()
            return bool(taken)
        except SQLAlchemyError as exc:
            conn.rollback()
            raise StoreError(
                f"cannot take the run lease in the store: {_db_message(exc)} (is another "
                "program holding the store open for writing?)"
            ) from None

    def release_lease(self, name: str, owner: str) -> None:
        self.conn.execute(
            delete(s.leases).where(and_(s.leases.c.name == name, s.leases.c.owner == owner))
        )
        self.conn.commit()

    def lease_holder(self, name: str) -> tuple[str, str] | None:
        row = self.conn.execute(
            select(s.leases.c.owner, s.leases.c.expires_at).where(s.leases.c.name == name)
        ).first()
        return (row.owner, row.expires_at) if row else None

    # -- cursors ------------------------------------------------------------------
    def get_cursor(self, system: str, etype: str) -> tuple[str | None, str | None]:
        row = self.conn.execute(
            select(s.cursors.c.cursor, s.cursors.c.fields).where(
                and_(s.cursors.c.system == system, s.cursors.c.etype == etype)
            )
        ).first()
        return (row.cursor, row.fields) if row else (None, None)

    def set_cursor(self, system: str, etype: str, cursor: str | None, fields: str) -> None:
        self._upsert(
            s.cursors,
            [
                {
                    "system": system,
                    "etype": etype,
                    "cursor": cursor,
                    "fields": fields,
                    "updated_at": now_iso(),
                }
            ],
            ["system", "etype"],
        )

    def all_cursors(self) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self.conn.execute(select(s.cursors))]

    # -- snapshots ----------------------------------------------------------------
    def snapshot_hashes(
        self, system: str, etype: str, rids: list[str]
    ) -> dict[str, tuple[str, bool]]:
        result: dict[str, tuple[str, bool]] = {}
        for part in _chunks(rids, self.CHUNK):
            rows = self._rows(
                "SELECT rid, hash, deleted FROM samband_snapshots"
                " WHERE system = ? AND etype = ? AND rid IN ",
                (system, etype),
                part,
            )
            for rid, hash_, deleted in rows:
                result[rid] = (hash_, bool(deleted))
        return result

    def snapshots(self, system: str, etype: str, rids: Iterable[str]) -> dict[str, Snapshot]:
        result: dict[str, Snapshot] = {}
        for part in _chunks(list(rids), self.CHUNK):
            rows = self._rows(
                "SELECT rid, hash, data, modified, deleted FROM samband_snapshots"
                " WHERE system = ? AND etype = ? AND rid IN ",
                (system, etype),
                part,
            )
            for rid, hash_, data, modified, deleted in rows:
                result[rid] = Snapshot(
                    system, etype, rid, hash_, loads(data), modified, bool(deleted)
                )
        return result

    def live_snapshots(self, system: str, etype: str) -> dict[str, Snapshot]:
        """Every snapshot of a type that is not deleted (for recovering a create that has
        no other way to be looked up)."""
        c = s.snapshots.c
        rids = [
            row.rid
            for row in self.conn.execute(
                select(c.rid).where(
                    and_(c.system == system, c.etype == etype, c.deleted == false())
                )
            )
        ]
        return self.snapshots(system, etype, rids)

    def snapshot(self, ref: str) -> Snapshot | None:
        system, etype, rid = split_ref(ref)
        return self.snapshots(system, etype, [rid]).get(rid)

    def put_snapshots(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace snapshots (keys: system, etype, rid, hash, data, modified,
        deleted; ``seen_run`` is kept as it is) and set their dirty marks: ``dirty`` > 0
        queues the record for planning, 0 clears its mark, None leaves it as it is."""
        values = [(*_SNAPSHOT_HEAD(r), bool(r["deleted"])) for r in rows]
        # in key order (a stable sort: the last of equal keys still wins), so processes
        # writing the same rows at once lock them in one order and do not deadlock
        values.sort(key=_BY_KEY)
        self._many(self._put_snapshot, values, "samband_snapshots")
        marks = [(*_KEY_OF(r), r["dirty"]) for r in rows if r["dirty"]]
        marks.sort(key=_BY_KEY)
        self._many(self._mark_dirty, marks, "samband_dirty")
        self._many(self._unmark_dirty, sorted(_KEY_OF(r) for r in rows if r["dirty"] == 0))

    def referring(self, system: str, etype: str, path: str, ids: Iterable[str]) -> list[str]:
        """The live records of a type whose ``path`` holds one of ``ids`` (the children of
        those records; a scan of the type, for the rare times a parent goes away)."""
        found: list[str] = []
        wanted = list(ids)
        for part in _chunks(wanted, self.CHUNK):
            if self.dialect == "sqlite":
                # a JSON number and a JSON string of one id are both that id
                values = part + [int(v) for v in part if v.isdigit() and len(v) < 19]
                sql = (
                    "SELECT rid FROM samband_snapshots WHERE system = ? AND etype = ?"
                    " AND deleted = ? AND json_extract(data, ?) IN "
                )
                params: tuple[Any, ...] = (system, etype, False, f'$."{_json_key(path)}"')
            else:
                values = part
                sql = (
                    "SELECT rid FROM samband_snapshots WHERE system = ? AND etype = ?"
                    " AND deleted = ? AND (data::jsonb ->> ?) IN "
                )
                params = (system, etype, False, path)
            found.extend(row[0] for row in self._rows(sql, params, values))
        return found

    def mark_seen(self, system: str, etype: str, rids: list[str], run_id: int) -> None:
        c = s.snapshots.c
        for part in _chunks(rids, self.CHUNK):
            self.conn.execute(
                update(s.snapshots)
                .where(and_(c.system == system, c.etype == etype, c.rid.in_(part)))
                .values(seen_run=run_id)
            )

    def unseen_live(self, system: str, etype: str, run_id: int) -> list[str]:
        c = s.snapshots.c
        rows = self.conn.execute(
            select(c.rid).where(
                and_(
                    c.system == system,
                    c.etype == etype,
                    c.deleted.is_(False),
                    or_(c.seen_run.is_(None), c.seen_run != run_id),
                )
            )
        )
        return [r.rid for r in rows]

    def mark_deleted(self, system: str, etype: str, rids: list[str]) -> None:
        c = s.snapshots.c
        for part in _chunks(rids, self.CHUNK):
            self.conn.execute(
                update(s.snapshots)
                .where(and_(c.system == system, c.etype == etype, c.rid.in_(part)))
                .values(deleted=True, hash="deleted")
            )
            seq = self.next_seq()
            self._many(self._mark_dirty, [(system, etype, rid, seq) for rid in sorted(part)])

    def set_dirty(self, refs: Iterable[str], *, refresh: bool = False) -> int:
        """Queue records for planning; ``refresh`` also makes the engine read them again
        from their system first (``samband retry`` after a fix).  The number of records
        queued (refs never collected are not)."""
        count = 0
        c = s.snapshots.c
        for ref in refs:
            system, etype, rid = split_ref(ref)
            if refresh:
                self.conn.execute(
                    update(s.snapshots)
                    .where(and_(c.system == system, c.etype == etype, c.rid == rid))
                    .values(hash=REFRESH)
                )
            if self._rows(
                "SELECT 1 FROM samband_snapshots WHERE system = ? AND etype = ? AND rid = ?",
                (system, etype, rid),
            ):
                self._many(self._mark_dirty, [(system, etype, rid, self.next_seq())])
                count += 1
        return count

    def dirty_batch(
        self, system: str, etype: str, after: str | None, limit: int
    ) -> list[tuple[str, int]]:
        """Up to ``limit`` queued records of a type, (rid, mark) in rid order after
        ``after``."""
        sql = "SELECT rid, seq FROM samband_dirty WHERE system = ? AND etype = ?"
        params: tuple[Any, ...] = (system, etype)
        if after is not None:
            sql += " AND rid > ?"
            params += (after,)
        rows = self._rows(f"{sql} ORDER BY rid LIMIT {int(limit)}", params)
        return [(rid, int(seq)) for rid, seq in rows]

    def count_dirty(self, system: str, etype: str, *, deleted: bool = False) -> int:
        """Queued records of a type (only the deleted ones with ``deleted``)."""
        if not deleted:
            sql = "SELECT count(*) FROM samband_dirty WHERE system = ? AND etype = ?"
            return int(self._rows(sql, (system, etype))[0][0])
        rows = self._rows(
            "SELECT count(*) FROM samband_dirty d JOIN samband_snapshots n"
            " ON n.system = d.system AND n.etype = d.etype AND n.rid = d.rid"
            " WHERE d.system = ? AND d.etype = ? AND n.deleted = ?",
            (system, etype, True),
        )
        return int(rows[0][0])

    def deleted_queued(self, system: str, etype: str) -> list[str]:
        """The queued records of a type that were deleted."""
        rows = self._rows(
            "SELECT d.rid FROM samband_dirty d JOIN samband_snapshots n"
            " ON n.system = d.system AND n.etype = d.etype AND n.rid = d.rid"
            " WHERE d.system = ? AND d.etype = ? AND n.deleted = ?",
            (system, etype, True),
        )
        return [row[0] for row in rows]

    def has_snapshots(self, system: str, etype: str, *, live: bool = False) -> bool:
        """Whether any record of the type has been read (and, with ``live``, is not
        deleted)."""
        rows = self._rows(
            "SELECT 1 FROM samband_snapshots WHERE system = ? AND etype = ?"
            + (" AND deleted = ?" if live else "")
            + " LIMIT 1",
            (system, etype, False) if live else (system, etype),
        )
        return bool(rows)

    def count_live(self, system: str, etype: str) -> int:
        c = s.snapshots.c
        return int(
            self.conn.execute(
                select(func.count()).where(
                    and_(c.system == system, c.etype == etype, c.deleted.is_(False))
                )
            ).scalar_one()
        )

    def clear_dirty(self, system: str, etype: str, seen: list[tuple[str, int]]) -> None:
        """Clear the dirty mark of refs whose mark did not change since they were read."""
        self._many(self._clear_dirty, [(system, etype, rid, dirty) for rid, dirty in seen])

    # -- links ----------------------------------------------------------------------
    def links_by(self, dataflow: str, side: str, refs: Iterable[str]) -> dict[str, Link]:
        column = "source_ref" if side == "source" else "target_ref"
        result: dict[str, Link] = {}
        for part in _chunks(list(refs), self.CHUNK):
            rows = self._rows(
                "SELECT id, dataflow, source_ref, target_ref, base, how FROM samband_links"
                f" WHERE dataflow = ? AND {column} IN ",
                (dataflow,),
                part,
            )
            for row in rows:
                link = _link(row)
                result[link.source_ref if side == "source" else link.target_ref] = link
        return result

    def links_touching(self, refs: Iterable[str]) -> list[Link]:
        result: list[Link] = []
        for part in _chunks(list(set(refs)), self.CHUNK):
            rows = self.conn.execute(
                select(s.links).where(
                    or_(s.links.c.source_ref.in_(part), s.links.c.target_ref.in_(part))
                )
            )
            result.extend(_link(row) for row in rows)
        return result

    def add_links(self, rows: list[dict[str, Any]]) -> None:
        self._many(self._insert_link, [_LINK_ROW(r) for r in rows], "samband_links")

    def set_bases(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        self._many(self._set_base, [(dumps(base), link_id) for link_id, base in rows])

    def delete_links(self, ids: list[int]) -> None:
        for part in _chunks(ids, self.CHUNK):
            self.conn.execute(delete(s.links).where(s.links.c.id.in_(part)))

    def count_links(self, dataflow: str) -> int:
        return int(
            self.conn.execute(
                select(func.count()).where(s.links.c.dataflow == dataflow)
            ).scalar_one()
        )

    def all_links(self, dataflow: str | None = None) -> list[Link]:
        query = select(s.links)
        if dataflow is not None:
            query = query.where(s.links.c.dataflow == dataflow)
        return [_link(r) for r in self.conn.execute(query.order_by(s.links.c.id))]

    # -- merge criteria index ----------------------------------------------------------
    def set_match_keys(self, name: str, entries: list[tuple[str, str | None]]) -> None:
        """Set (rid → key) of one index; a None key removes the entry."""
        gone = [rid for rid, key in entries if key is None]
        for part in _chunks(gone, self.CHUNK):
            self._query("DELETE FROM samband_match_keys WHERE name = ? AND rid IN ", (name,), part)
        rows = [(name, rid, key) for rid, key in entries if key is not None]
        rows.sort(key=_BY_RID)  # one lock order for every writer (see put_snapshots)
        self._many(self._put_match_key, rows, "samband_match_keys")

    def lookup_match(self, name: str, keys: Iterable[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for part in _chunks(list(set(keys)), self.CHUNK):
            rows = self._rows(
                'SELECT "key", rid FROM samband_match_keys WHERE name = ? AND "key" IN ',
                (name,),
                part,
            )
            for key, rid in rows:
                result.setdefault(key, []).append(rid)
        return result

    def built_match_indexes(self) -> dict[str, str]:
        """The merge-criteria indexes that are complete: name → dataflow."""
        rows = self.conn.execute(select(s.match_indexes.c.name, s.match_indexes.c.dataflow))
        return {row.name: row.dataflow for row in rows}

    def mark_match_index_built(self, name: str, dataflow: str) -> None:
        self._upsert(
            s.match_indexes,
            [{"name": name, "dataflow": dataflow, "built_at": now_iso()}],
            ["name"],
        )

    def rebuild_match_index(
        self, name: str, dataflow: str, entries: list[tuple[str, str | None]]
    ) -> None:
        """Replace every entry of one index (rid → key; None: no key) and mark it built."""
        self._query("DELETE FROM samband_match_keys WHERE name = ?", (name,))
        self.set_match_keys(name, entries)
        self.mark_match_index_built(name, dataflow)

    def drop_match_index(self, name: str) -> None:
        self._query("DELETE FROM samband_match_keys WHERE name = ?", (name,))
        self.conn.execute(delete(s.match_indexes).where(s.match_indexes.c.name == name))

    # -- dataflows ------------------------------------------------------------------
    def dataflow_types(self) -> dict[str, tuple[str, str, str | None]]:
        """The dataflows links were made for: key → (source, target, mapping digest),
        source and target as SYSTEM.TYPE."""
        rows = self.conn.execute(select(s.dataflows))
        return {row.key: (row.source, row.target, row.mapping) for row in rows}

    def record_dataflows(self, flows: dict[str, tuple[str, str, str]]) -> None:
        rows = [
            {
                "key": key,
                "source": source,
                "target": target,
                "mapping": mapping,
                "updated_at": now_iso(),
            }
            for key, (source, target, mapping) in flows.items()
        ]
        if rows:
            self._upsert(s.dataflows, rows, ["key"])

    def queue_linked(self, dataflow: str) -> int:
        """Queue the source record of every link of ``dataflow`` for planning."""
        rows = self._rows("SELECT source_ref FROM samband_links WHERE dataflow = ?", (dataflow,))
        seq = self.next_seq()
        marks = sorted((*split_ref(ref), seq) for (ref,) in rows)
        self._many(self._mark_dirty, marks, "samband_dirty")
        return len(marks)

    def rename_dataflow(self, old: str, new: str) -> int:
        """Give the links (and what waits, is quarantined or is being created) of
        dataflow ``old`` to ``new``; the number of links."""
        links = self.count_links(old)
        for table in ("samband_links", "samband_waiting", "samband_dead_letters"):
            self._query(f"UPDATE {table} SET dataflow = ? WHERE dataflow = ?", (new, old))
        self._query("UPDATE samband_intents SET dataflow = ? WHERE dataflow = ?", (new, old))
        self.conn.execute(delete(s.dataflows).where(s.dataflows.c.key == old))
        return links

    # -- intents --------------------------------------------------------------------
    def add_intents(
        self,
        dataflow: str,
        target: tuple[str, str],
        items: list[dict[str, Any]],
        run_id: int | None,
        created_at: str,
    ) -> None:
        """Record the creates of one chunk about to be sent into ``target`` (system, entity
        type), in one row.  ``items``: one dict per create, with its intent ``key``,
        ``source_ref``, ``external_ref`` and ``values`` (JSON values)."""
        key = uuid.uuid4().hex
        row = (key, dataflow, *target, dumps(items), run_id, created_at)
        self._many(self._insert_intent, [row], "samband_intents")
        self._intent_chunk.update((item["key"], key) for item in items)

    def open_intents(self) -> list[dict[str, Any]]:
        """Every create whose outcome is not known yet, one dict per record (keys as
        :meth:`add_intents` takes them, ``values`` as JSON text)."""
        result = []
        for row, items in self._intent_rows():
            for item in items:
                result.append(
                    {
                        "key": item["key"],
                        "dataflow": row.dataflow,
                        "source_ref": item["source_ref"],
                        "target_system": row.target_system,
                        "target_etype": row.target_etype,
                        "external_ref": item["external_ref"],
                        "values": dumps(item["values"]),
                        "run_id": row.run_id,
                        "created_at": row.created_at,
                    }
                )
        return result

    def _intent_rows(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every chunk row of intents with its items, learning which chunk holds which."""
        rows = []
        for row in self.conn.execute(select(s.intents).order_by(s.intents.c.created_at)):
            items = loads(row.items)
            self._intent_chunk.update((item["key"], row.key) for item in items)
            rows.append((row, items))
        return rows

    def remove_intents(self, keys: list[str]) -> None:
        """Close these intents (their create's outcome is recorded); a chunk's row goes
        with its last one."""
        if not keys:
            return
        if any(key not in self._intent_chunk for key in keys):
            self._intent_rows()  # written by another process: learn their chunks
        gone: dict[str, set[str]] = {}
        for key in keys:
            chunk = self._intent_chunk.pop(key, None)
            if chunk is not None:
                gone.setdefault(chunk, set()).add(key)
        for chunk, closed in gone.items():
            found = self._rows('SELECT items FROM samband_intents WHERE "key" = ?', (chunk,))
            if not found:
                continue
            left = [item for item in loads(found[0][0]) if item["key"] not in closed]
            if left:
                self._query(
                    'UPDATE samband_intents SET items = ? WHERE "key" = ?', (dumps(left), chunk)
                )
            else:
                self._query('DELETE FROM samband_intents WHERE "key" = ?', (chunk,))

    # -- audit, conflicts, dead letters, waiting ------------------------------------------
    def add_audit(self, rows: list[dict[str, Any]]) -> None:
        self._many(self._insert_audit, [_AUDIT_ROW(r) for r in rows], "samband_audit")

    def add_conflicts(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(s.conflicts.insert(), rows)

    def add_dead_letter(
        self, ref: str, dataflow: str, kind: str, reason: str, details: Any, run_id: int | None
    ) -> None:
        now = now_iso()
        c = s.dead_letters.c
        existing = self.conn.execute(
            select(c.id, c.attempts).where(and_(c.ref == ref, c.dataflow == dataflow))
        ).first()
        if existing is None:
            self.conn.execute(
                s.dead_letters.insert().values(
                    ref=ref,
                    dataflow=dataflow,
                    kind=kind,
                    reason=reason,
                    details=dumps(details),
                    attempts=1,
                    first_at=now,
                    last_at=now,
                    run_id=run_id,
                )
            )
        else:
            self.conn.execute(
                update(s.dead_letters)
                .where(c.id == existing.id)
                .values(
                    kind=kind,
                    reason=reason,
                    details=dumps(details),
                    attempts=existing.attempts + 1,
                    last_at=now,
                    run_id=run_id,
                )
            )

    def resolve_dead_letters(self, refs: Iterable[str], dataflow: str) -> None:
        if not self._any_row("samband_dead_letters", dataflow):
            return
        c = s.dead_letters.c
        for part in _chunks(list(refs), self.CHUNK):
            self.conn.execute(
                delete(s.dead_letters).where(and_(c.dataflow == dataflow, c.ref.in_(part)))
            )

    def dead_letters(
        self, refs: list[str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        query = select(s.dead_letters).order_by(s.dead_letters.c.id)
        if refs:
            query = query.where(s.dead_letters.c.ref.in_(refs))
        if limit:
            query = query.limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def remove_dead_letters(self, ids: list[int]) -> None:
        for part in _chunks(ids, self.CHUNK):
            self.conn.execute(delete(s.dead_letters).where(s.dead_letters.c.id.in_(part)))

    def note_waiting(self, dataflow: str, ref: str, parent: str, run_id: int) -> int:
        """Record that ``ref`` waits for ``parent``; return for how many runs it has."""
        c = s.waiting.c
        row = self.conn.execute(
            select(c.runs, c.last_run).where(and_(c.dataflow == dataflow, c.ref == ref))
        ).first()
        if row is None:
            self.conn.execute(
                s.waiting.insert().values(
                    dataflow=dataflow, ref=ref, parent=parent, runs=1, last_run=run_id
                )
            )
            return 1
        runs = row.runs + (1 if row.last_run != run_id else 0)
        self.conn.execute(
            update(s.waiting)
            .where(and_(c.dataflow == dataflow, c.ref == ref))
            .values(runs=runs, last_run=run_id, parent=parent)
        )
        return int(runs)

    def done_waiting(self, dataflow: str, refs: Iterable[str]) -> None:
        if not self._any_row("samband_waiting", dataflow):
            return
        c = s.waiting.c
        for part in _chunks(list(refs), self.CHUNK):
            self.conn.execute(
                delete(s.waiting).where(and_(c.dataflow == dataflow, c.ref.in_(part)))
            )

    def conflicts_rows(self) -> list[dict[str, Any]]:
        return self.table_rows(s.conflicts, order=s.conflicts.c.id)

    # -- generic ------------------------------------------------------------------------
    def _many(self, sql: RowsSql, rows: list[tuple[Any, ...]], grows: str | None = None) -> None:
        """Run ``sql`` for every row, at the driver (see :mod:`samband.store._statements`);
        ``grows`` names the table it adds rows to, for
        :class:`~samband.store._statistics.Statistics`."""
        if not rows:
            return
        if self.dialect == "sqlite":
            self.conn.exec_driver_sql(sql.one, rows)
        else:
            if sql.key:
                last = {tuple(row[i] for i in sql.key): row for row in rows}
                rows = list(last.values())
            columns = tuple(list(column) for column in zip(*rows, strict=True))
            self.conn.exec_driver_sql(sql.bulk, columns)
            if grows is not None and self._statistics is not None:
                self._statistics.wrote(grows, len(rows))

    def _any_row(self, table: str, dataflow: str) -> bool:
        """Whether ``table`` holds a row of ``dataflow`` (a cheap test before a delete by
        hundreds of refs that usually finds nothing)."""
        found = self._query(f"SELECT 1 FROM {table} WHERE dataflow = ? LIMIT 1", (dataflow,))
        return found.first() is not None

    def _rows(
        self, sql: str, params: tuple[Any, ...], members: list[Any] | None = None
    ) -> list[Any]:
        """The rows of a query (see :meth:`_query`), fetched at once."""
        return list(self._query(sql, params, members).fetchall())

    def _query(self, sql: str, params: tuple[Any, ...], members: list[Any] | None = None) -> Any:
        """Run ``sql`` written with ``?`` markers; ``members`` fill a trailing ``IN (…)``."""
        if members is not None:
            sql += self.sql.in_list(len(members))
            params += tuple(members)
        return self.conn.exec_driver_sql(self.sql.sql(sql), params)

    def _upsert(self, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)
        columns = [c for c in rows[0] if c not in keys]
        if columns:
            stmt = insert.on_conflict_do_update(
                index_elements=keys, set_={c: insert.excluded[c] for c in columns}
            )
        else:
            stmt = insert.on_conflict_do_nothing(index_elements=keys)
        self.conn.execute(stmt, rows)

    def table_rows(
        self, table: Any, where: Any = None, order: Any = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        query = select(table)
        if where is not None:
            query = query.where(where)
        if order is not None:
            query = query.order_by(order)
        if limit:
            query = query.limit(limit)
        return [dict(r._mapping) for r in self.conn.execute(query)]


def _link(row: Any) -> Link:
    from samband.types import from_json

    base = {key: from_json(value) for key, value in (loads(row.base) or {}).items()}
    return Link(int(row.id), row.dataflow, row.source_ref, row.target_ref, base, row.how)


def _json_key(path: str) -> str:
    """A key inside a double-quoted SQLite JSON path."""
    return path.replace("\\", "\\\\").replace('"', '\\"')


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def store_message(exc: BaseException) -> str:
    """The database's own first line about a failure (no SQL, no parameters)."""
    return _db_message(exc)


def _db_message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _resolve_sqlite(url: str, base_dir: str | None) -> str:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return url
    path = Path(parsed.database)
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    return str(parsed.set(database=str(path)))


def _create_engine(url: str, dialect: str) -> Engine:
    if dialect == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
