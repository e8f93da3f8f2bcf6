"""Create intents are committed durably: synced to disk before the create is sent.

The SQLite store runs WAL at ``synchronous=NORMAL``, where a power loss may undo the last
commits; an intent undone that way after its create was sent would let the next run
create the record again.  Read from the statements SQLite itself executed.
"""

from __future__ import annotations

from pathlib import Path

from samband.kinds.memory.connector import dataset
from tests.support.engine import ACCOUNTS, engine_for


def test_the_intent_commit_is_synced_and_the_others_are_not(tmp_path: Path) -> None:
    dataset("crm").insert("Customer", {"name": "Acme", "org": "1"})
    statements: list[str] = []
    with engine_for(f"sqlite:///{tmp_path / 'state.db'}", ACCOUNTS) as engine:
        raw = engine.store().conn.connection.dbapi_connection
        assert raw is not None
        raw.set_trace_callback(statements.append)
        assert engine.sync().to_dict()["created"] == 1
    intent = next(i for i, sql in enumerate(statements) if "INTO samband_intents" in sql)
    commit = next(i for i, sql in enumerate(statements) if i > intent and sql == "COMMIT")
    begin = max(i for i, sql in enumerate(statements[:intent]) if sql.startswith("BEGIN"))

    def synchronous_at(index: int) -> str:
        settings = [s for s in statements[:index] if s.startswith("PRAGMA synchronous")]
        return settings[-1].split("=")[1] if settings else "NORMAL"

    assert synchronous_at(begin) == "FULL", statements[begin - 3 : commit + 1]
    last_commit = max(i for i, sql in enumerate(statements) if sql == "COMMIT")
    assert synchronous_at(last_commit) == "NORMAL"
