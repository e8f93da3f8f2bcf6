"""Two worker processes share one PostgreSQL store (``Engine.work``, what ``samband
worker`` runs): they read and plan the same dataflow at the same time, and the result is
what one process would have made: every record created or matched once, every link
unique, every edit made meanwhile present in both systems, and a run afterwards writes
nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.sql import demo as pms

pytestmark = pytest.mark.postgres

RECORDS = 400
TURNS = 4

WORKER = """
import json, sys
from samband.engine.run import Engine
with Engine.from_file(sys.argv[1]) as engine:
    for _ in range(int(sys.argv[2])):
        report = engine.work().to_dict()
        print(json.dumps({k: report[k] for k in ("status", "created", "linked", "errors")}))
"""


def _crm(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    meta = MetaData()
    company = Table(
        "company",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("org", String(20)),
        Column("updated", String(40)),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            company.insert(),
            [{"name": f"Firma {i} AS", "org": str(910_000_000 + i)} for i in range(RECORDS)],
        )
    engine.dispose()
    return url


EDITOR = """
import json, random, sqlite3, sys, datetime
db = sqlite3.connect(sys.argv[1], timeout=30)
final = {}
rng = random.Random(7)
for turn in range(int(sys.argv[2])):
    for index in rng.sample(range(1, int(sys.argv[3]) + 1), 20):
        name = f"Edited {turn} {index}"
        now = datetime.datetime.now(datetime.UTC).isoformat()
        db.execute("UPDATE company SET name = ?, updated = ? WHERE id = ?", (name, now, index))
        db.commit()
        final[index] = name
print(json.dumps(final))
"""


def _start(code: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def _output(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def _setup(postgres_url: str, tmp_path: Path, existing: int = 0) -> tuple[Path, str, str]:
    """The config, the CRM's and the PMS's URLs; ``existing`` customers of the CRM are in
    the PMS already (to be matched by organisation number, not created)."""
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    pms.create_pms_schema(pms_url)
    if existing:
        db = create_engine(pms_url)
        now = datetime.now(UTC)
        with db.begin() as conn:
            conn.execute(
                pms.customer.insert(),
                [
                    {"name": f"Firma {i} AS", "org_no": str(910_000_000 + i), "updated_at": now}
                    for i in range(existing)
                ],
            )
        db.dispose()
    crm_url = _crm(tmp_path / "crm.db")
    config = {
        "store": postgres_url,
        "systems": {
            "crm": {
                "kind": "sql",
                "url": crm_url,
                "entity_types": {"Company": {"table": "company", "id": "id"}},
            },
            # small pages: reading the PMS takes long enough for the other worker to be
            # ready to plan meanwhile
            "pms": {
                "kind": "sql",
                "url": pms_url,
                "page_size": 5,
                "entity_types": pms.ENTITY_TYPES,
            },
        },
        "dataflows": [
            {
                "source": "crm.Company",
                "target": "pms.Customer",
                "match": [[{"from": "org", "to": "org_no", "normalize": "digits"}]],
                "properties": [
                    {"from": "name", "to": "name", "type": "string"},
                    {"from": "org", "to": "org_no", "type": "string"},
                ],
            }
        ],
    }
    path = tmp_path / "samband.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, crm_url, pms_url


def _worker_reports(workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    reports = [json.loads(line) for w in workers for line in _output(w).splitlines()]
    assert len(reports) == len(workers) * TURNS
    assert all(r["errors"] == 0 for r in reports), reports
    return reports


def _customers(pms_url: str) -> list[Any]:
    db = create_engine(pms_url)
    with db.connect() as conn:
        rows = conn.execute(select(pms.customer.c.org_no, pms.customer.c.name)).all()
    db.dispose()
    return list(rows)


def _check_links(path: Path) -> None:
    with Engine(parse_config(path.read_text()).config) as engine:
        assert engine.sync().writes == 0
        links = engine.store().all_links()
    assert len(links) == RECORDS
    assert len({link.target_ref for link in links}) == RECORDS


def test_two_worker_processes_on_one_store_create_each_record_once(
    postgres_url: str, tmp_path: Path
) -> None:
    path, _crm_url, pms_url = _setup(postgres_url, tmp_path)
    workers = [_start(WORKER, str(path), str(TURNS), cwd=tmp_path) for _ in range(2)]
    reports = _worker_reports(workers)
    assert sum(r["created"] for r in reports) == RECORDS

    counts: dict[str, int] = {}
    for org, _name in _customers(pms_url):
        counts[org] = counts.get(org, 0) + 1
    assert len(counts) == RECORDS and set(counts.values()) == {1}
    _check_links(path)


def test_two_workers_match_what_exists_and_keep_every_edit_made_meanwhile(
    postgres_url: str, tmp_path: Path
) -> None:
    """Half the customers exist in the PMS already, and a third process edits names in
    the CRM while both workers run: nothing is created twice, and no edit is undone."""
    path, crm_url, pms_url = _setup(postgres_url, tmp_path, existing=RECORDS // 2)
    crm_file = crm_url.removeprefix("sqlite:///")
    workers = [_start(WORKER, str(path), str(TURNS), cwd=tmp_path) for _ in range(2)]
    editor = _start(EDITOR, crm_file, "10", str(RECORDS), cwd=tmp_path)
    final: dict[str, str] = json.loads(_output(editor))
    reports = _worker_reports(workers)
    assert sum(r["created"] for r in reports) <= RECORDS // 2
    with Engine(parse_config(path.read_text()).config) as engine:
        engine.sync()  # what the editor did after the workers' last turns

    customers = _customers(pms_url)
    assert len(customers) == RECORDS
    assert len({org for org, _name in customers}) == RECORDS
    db = create_engine(crm_url)
    with db.connect() as conn:
        crm_names = dict(conn.exec_driver_sql("SELECT id, name FROM company").all())
    db.dispose()
    for index, name in final.items():
        assert crm_names[int(index)] == name, f"the edit of company {index} was undone"
    by_org = dict(customers)
    for index, name in crm_names.items():
        assert by_org[str(910_000_000 + index - 1)] == name
    _check_links(path)
