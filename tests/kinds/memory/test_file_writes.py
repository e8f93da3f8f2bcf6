"""A memory system kept in a file writes the file once per store commit (a chunk of
records), not once per write, and never after the store has recorded a write the file
does not hold."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import MemoryDataset, forget_dataset
from samband.store import schema as s
from samband.store.rows import Ref

CONFIG = """
store: sqlite:///{dir}/state.db
systems:
  crm:
    kind: memory
    path: {dir}/crm.json
    entity_types: {{Customer: {{external_ref: ext}}}}
  erp:
    kind: memory
    path: {dir}/erp.json
    entity_types: {{Account: {{external_ref: ext}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
"""

N = 1200
CHUNK = 500


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    crm = MemoryDataset("crm")
    for number in range(N):
        crm.insert("Customer", {"name": f"Customer {number}"})
    crm.save(str(tmp_path / "crm.json"))
    for name in ("crm", "erp"):
        forget_dataset(name)
    yield tmp_path
    for name in ("crm", "erp"):
        forget_dataset(name)


def _engine(directory: Path) -> Engine:
    return Engine(parse_config(CONFIG.format(dir=directory)).config, chunk_size=CHUNK)


def _accounts(directory: Path) -> dict[str, Any]:
    path = directory / "erp.json"
    if not path.exists():
        return {}
    payload = json.loads(path.read_text())
    return {rid: row for rid, row in payload["types"]["Account"].items() if not row["deleted"]}


def test_n_creates_write_the_file_once_per_chunk(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = str(files / "erp.json")
    writes: list[str] = []
    replace = os.replace

    def counting_replace(src: Any, dst: Any) -> None:
        if str(dst) == target:
            writes.append(str(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    with _engine(files) as engine:
        report = engine.sync()
    assert report.to_dict()["created"] == N
    chunks = -(-N // CHUNK)
    # one write per chunk's commit (a write after every create made it quadratic)
    assert 1 <= len(writes) <= chunks + 1
    assert len(_accounts(files)) == N


def test_the_file_holds_every_write_before_the_store_records_it(files: Path) -> None:
    """Before every store commit, each target the store links (committed or about to be)
    is in the file on disk: a crash right after the commit loses nothing the store
    believes happened."""
    checked: list[int] = []
    with _engine(files) as engine:
        store = engine.store()

        def check_file() -> None:
            linked = {Ref.parse(row["target_ref"]).id for row in store.table_rows(s.links)}
            missing = linked - set(_accounts(files))
            assert not missing, f"the store links {len(missing)} accounts not in the file"
            checked.append(len(linked))

        store.before_commit(check_file)  # after the engine's own flush
        engine.sync()
    assert checked and max(checked) == N
