"""Two worker processes share one PostgreSQL store (``Engine.work``, what ``samband
worker`` runs): they read and plan the same dataflow at the same time, and the result is
what one process would have made: every record created once, every link unique, and a
run afterwards writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select

from samband import pms
from samband.config import parse_config
from samband.engine.run import Engine

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


def test_two_worker_processes_on_one_store_create_each_record_once(
    postgres_url: str, tmp_path: Path
) -> None:
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    pms.create_pms_schema(pms_url)
    config = {
        "store": postgres_url,
        "systems": {
            "crm": {
                "kind": "sql",
                "url": _crm(tmp_path / "crm.db"),
                "entity_types": {"Company": {"table": "company", "id": "id"}},
            },
            "pms": {"kind": "sql", "url": pms_url, "entity_types": pms.ENTITY_TYPES},
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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(TURNS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for _ in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        reports.extend(json.loads(line) for line in out.splitlines())
    assert len(reports) == 2 * TURNS
    assert all(r["errors"] == 0 for r in reports), reports
    assert sum(r["created"] for r in reports) == RECORDS

    db = create_engine(pms_url)
    with db.connect() as conn:
        customer = Table("customer", MetaData(), autoload_with=conn)
        rows = conn.execute(select(customer.c.org_no, func.count()).group_by(customer.c.org_no))
        counts = dict(rows.all())
    db.dispose()
    assert len(counts) == RECORDS and set(counts.values()) == {1}

    with Engine(parse_config(path.read_text()).config) as engine:
        assert engine.sync().writes == 0
        links = engine.store().all_links()
    assert len(links) == RECORDS
    assert len({link.target_ref for link in links}) == RECORDS
