"""``samband init sql``: a SQL database with the custom PMS's ``customer`` table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    url = "${PMS_URL:-sqlite:///pms.db}" if sandbox is not None else env_ref("PMS_URL", None)
    return f"""\
  pms:
    kind: sql
    label: Custom PMS
    # a SQLAlchemy URL: sqlite:///pms.db (beside this file),
    # postgresql+psycopg://user:${{PGPASSWORD}}@host/db, mysql+pymysql://...
    url: {url}
    entity_types:
      Customer: {{table: customer, id: id, updated: updated_at, external_ref: external_ref}}
"""


def _prepare(folder: Path, system_id: str) -> None:
    """The custom PMS's tables in ``<system id>.db`` beside the config."""
    from samband.kinds.sql.demo import create_pms_schema

    create_pms_schema(f"sqlite:///{folder / (system_id + '.db')}")


STARTER = Starter(
    system_id="pms",
    entity_type="Customer",
    name_field="name",
    org_field="org_no",
    system=_system,
    prepare=_prepare,
)
