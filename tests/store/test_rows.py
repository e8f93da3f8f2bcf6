"""The store's many-row writes (snapshots, dirty marks, merge keys, links, audit) give the
same rows on SQLite, one statement per row, and on PostgreSQL, every row in one
statement: the last of rows with the same key wins, empty values stay empty, and a
delete takes exactly the rows named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from samband.store import schema
from samband.store.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    store = Store(url)
    yield store
    store.close()


def _snapshot(rid: str, name: str, dirty: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "system": "crm",
        "etype": "Company",
        "rid": rid,
        "hash": f"h-{name}",
        "data": f'{{"name": "{name}", "note": "tab\\t, quote \\" and {{braces}}"}}',
        "modified": None,
        "deleted": False,
        "dirty": dirty,
        **extra,
    }


def test_the_last_of_rows_with_one_key_wins_and_marks_follow(db: Store) -> None:
    with db.tx():
        db.put_snapshots(
            [
                _snapshot("1", "first", 5),
                _snapshot("2", "two", 6, modified="2026-11-22T08:00:00+00:00"),
                _snapshot("1", "second", 7),  # same key again in the same call
                _snapshot("3", "three", None, deleted=True),
            ]
        )
    snaps = db.snapshots("crm", "Company", ["1", "2", "3"])
    assert snaps["1"].hash == "h-second" and snaps["1"].data["name"] == "second"
    assert snaps["1"].data["note"] == 'tab\t, quote " and {braces}'
    assert snaps["2"].modified == "2026-11-22T08:00:00+00:00" and snaps["1"].modified is None
    assert snaps["3"].deleted and not snaps["2"].deleted
    assert dict(db.dirty_batch("crm", "Company", None, 10)) == {"1": 7, "2": 6}

    # a mark cleared only where it is still the one that was read
    with db.tx():
        db.clear_dirty("crm", "Company", [("1", 5), ("2", 6)])
    assert dict(db.dirty_batch("crm", "Company", None, 10)) == {"1": 7}
    with db.tx():
        db.put_snapshots([_snapshot("1", "third", 0), _snapshot("2", "two", 0)])
    assert db.dirty_batch("crm", "Company", None, 10) == []
    assert db.snapshots("crm", "Company", ["1"])["1"].hash == "h-third"


def test_merge_keys_links_and_audit_rows(db: Store) -> None:
    with db.tx():
        db.set_match_keys("flow|0", [("1", "a"), ("2", "b"), ("1", "c"), ("3", "d")])
        db.set_match_keys("flow|0", [("3", None)])
    assert db.lookup_match("flow|0", ["a", "b", "c", "d"]) == {"b": ["2"], "c": ["1"]}

    rows = [
        {
            "dataflow": "flow",
            "source_ref": f"crm:Company:{n}",
            "target_ref": f"erp:Customer:{n}",
            "base": "{}" if n == 1 else '{"name": "x"}',
            "how": "created",
            "created_run": None,
            "created_at": "2026-11-22T08:00:00+00:00",
        }
        for n in (1, 2)
    ]
    with db.tx():
        db.add_links(rows)
        db.add_audit(
            [
                {
                    "run_id": None,
                    "at": "2026-11-22T08:00:00+00:00",
                    "ref": "erp:Customer:1",
                    "dataflow": "flow",
                    "op": "create",
                    "before": None,
                    "after": '{"name": "\\u00c6gir \\\\ AS"}',
                }
            ]
        )
    links = db.links_by("flow", "source", ["crm:Company:1", "crm:Company:2"])
    assert links["crm:Company:1"].base == {} and links["crm:Company:2"].base == {"name": "x"}
    (audit,) = db.conn.execute(select(schema.audit)).mappings()
    assert audit["after"] == '{"name": "\\u00c6gir \\\\ AS"}' and audit["before"] is None
    first, second = links["crm:Company:1"].id, links["crm:Company:2"].id
    with db.tx():
        db.set_bases([(first, {"name": "old"}), (second, {"name": "y"}), (first, {"name": "new"})])
    links = db.links_by("flow", "source", ["crm:Company:1", "crm:Company:2"])
    assert links["crm:Company:1"].base == {"name": "new"}
    assert links["crm:Company:2"].base == {"name": "y"}
