"""``samband init rest``: a REST API of the Samband contract and its customers."""

from __future__ import annotations

from collections.abc import Mapping

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    return f"""\
  crm:
    kind: rest
    label: Custom CRM
    base_url: {env_ref("CUSTOMCRM_BASE_URL", sandbox)}
    auth: bearer                     # bearer | basic | none
    credentials:
      token: {env_ref("CUSTOMCRM_TOKEN", sandbox)}
    entity_types:
      Customer:
        path: customers
        external_ref: external_ref   # where creates stamp the source record's ref
        properties:                  # the schema (leave out for an open one)
          name: string
          org_no: string
          email: string
"""


STARTER = Starter(
    system_id="crm",
    entity_type="Customer",
    name_field="name",
    org_field="org_no",
    system=_system,
    sandbox_port=8081,
)
