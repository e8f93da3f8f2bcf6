"""Search terms of the records (``samband records find``, the dashboard's records
search): each snapshot's values, folded so that a search finds them whatever their case,
width or spacing, kept with the snapshot in one table indexed by term.  A search is a
range scan of that index (a prefix of a term), so it costs the same on a store of a
thousand records or of millions, and returns at most the records asked for."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from samband.store import schema as s
from samband.store._database import Database, chunks
from samband.store._statements import RowsSql
from samband.store.rows import SnapshotRow

MAX_TERM = 100  # characters of a value kept as its term (a prefix finds longer values)
MAX_TERMS = 40  # terms of one record
MIN_QUERY = 2
_LAST = "\U0010ffff"  # sorts after every character: the end of a prefix's range
_SEPARATORS = str.maketrans("", "", " .-/()+")


def fold(text: str) -> str:
    """``text`` as it is searched: compatibility forms (full-width, ligatures) and case
    folded, runs of spaces made one, cut to :data:`MAX_TERM` characters."""
    ascii_ = text.isascii()
    folded = text.lower() if ascii_ else unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split())[:MAX_TERM]


def digits_of(term: str) -> str | None:
    """The digits of a term of digits and separators (``923 456 789``, ``+47 22-33``), if
    there are enough to be a number someone looks for."""
    digits = term.translate(_SEPARATORS)
    if digits != term and len(digits) >= 4 and digits.isdigit():
        return digits
    return None


def terms_of(data: Mapping[str, Any]) -> set[str]:
    """The terms of a record's values: every text and whole number, folded; and for a
    value of digits and separators, its digits alone (see :func:`digits_of`)."""
    terms: set[str] = set()
    _add_terms(data.values(), terms)
    return terms


def _add_terms(values: Iterable[Any], terms: set[str]) -> None:
    for value in values:
        if len(terms) >= MAX_TERMS:
            return
        if type(value) is str:
            text = fold(value)
        elif type(value) is int:
            text = str(value)
        elif isinstance(value, Mapping):
            _add_terms(value.values(), terms)
            continue
        elif isinstance(value, list):
            _add_terms(value, terms)
            continue
        else:
            continue  # a boolean, a decimal number, nothing: not what a person looks up
        if len(text) < MIN_QUERY:
            continue
        terms.add(text)
        if text[0].isdigit() or text[0] == "+":
            digits = digits_of(text)
            if digits:
                terms.add(digits)


class SearchTerms:
    """The search terms table and its queue.  Writing a snapshot only queues it (one
    narrow row: a run pays next to nothing); :meth:`catch_up` makes the terms of what is
    queued, and a search catches up first, so it never misses a record written."""

    def __init__(self, db: Database) -> None:
        self.db = db
        head = "INSERT INTO samband_search_terms (system, etype, rid, term) "
        # another process may index the same record at once: a term there already is kept
        self._insert = RowsSql(
            head + "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            # the term column's collation is not part of the array's type
            head + "SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::varchar[], "
            "%b::varchar[]) ON CONFLICT DO NOTHING",
        )
        self._queue = db.sql.upsert(
            s.search_queue, ("system", "etype", "rid", "hash"), ("system", "etype", "rid")
        )
        self._forget = db.sql.delete(s.search_terms, ("system", "etype", "rid"))
        self._done = db.sql.delete(s.search_queue, ("system", "etype", "rid", "hash"))

    def queue(self, rows: Iterable[SnapshotRow]) -> None:
        """Queue the snapshots written for their terms (in key order, as they are
        written, so writers lock rows in one order)."""
        keys = sorted({(row.system, row.etype, row.rid): row.hash for row in rows}.items())
        self.db.many(self._queue, [(*key, hash_) for key, hash_ in keys])

    def catch_up(self, batch: int = 2000) -> int:
        """Make the terms of up to ``batch`` queued snapshots; how many were made (0:
        none is queued).  A snapshot written again meanwhile stays queued (its hash)."""
        queued = self.db.rows(
            f"SELECT system, etype, rid FROM samband_search_queue LIMIT {int(batch)}", ()
        )
        if not queued:
            return 0
        by_type: dict[tuple[str, str], list[str]] = {}
        for system, etype, rid in queued:
            by_type.setdefault((system, etype), []).append(rid)
        keys: list[tuple[str, str, str]] = []
        done: list[tuple[str, str, str, str]] = []
        terms: list[tuple[str, str, str, str]] = []
        for (system, etype), rids in sorted(by_type.items()):
            for part in chunks(sorted(rids)):
                rows = self.db.rows(
                    "SELECT rid, hash, data, deleted FROM samband_snapshots"
                    " WHERE system = ? AND etype = ? AND rid IN ",
                    (system, etype),
                    part,
                )
                stored = {rid: (hash_, data, deleted) for rid, hash_, data, deleted in rows}
                for rid in part:
                    keys.append((system, etype, rid))
                    hash_, data, deleted = stored.get(rid, (None, None, True))
                    if hash_ is not None:
                        done.append((system, etype, rid, hash_))
                    if not deleted and data:
                        found = terms_of(orjson.loads(data))
                        terms.extend((system, etype, rid, term) for term in sorted(found))
        self.db.many(self._forget, keys)
        self.db.many(self._insert, terms, "samband_search_terms")
        self.db.many(self._done, done)
        gone = [key for key in keys if key not in {d[:3] for d in done}]
        if gone:  # queued, then the snapshot itself went: nothing to index
            self.db.many(self.db.sql.delete(s.search_queue, ("system", "etype", "rid")), gone)
        return len(keys)

    def find(self, text: str, limit: int) -> list[tuple[str, str, str]]:
        """Up to ``limit`` records (system, etype, rid) with a value that starts with
        ``text`` (folded), those whose value is ``text`` first."""
        query = fold(text)
        if len(query) < MIN_QUERY:
            return []
        variants = [query]
        digits = digits_of(query)
        if digits:
            variants.append(digits)
        found: dict[tuple[str, str, str], None] = {}
        for variant in variants:
            rows = self.db.rows(
                "SELECT system, etype, rid FROM samband_search_terms"
                f" WHERE term >= ? AND term < ? ORDER BY term LIMIT {int(limit) * 4}",
                (variant, variant + _LAST),
            )
            for system, etype, rid in rows:
                found.setdefault((system, etype, rid))
        return list(found)[:limit]
