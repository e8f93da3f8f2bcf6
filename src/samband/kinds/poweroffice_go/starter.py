"""``samband init poweroffice-go``: a PowerOffice GO system and its customers."""

from __future__ import annotations

from collections.abc import Mapping

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    base = (
        env_ref("POWEROFFICE_BASE_URL", sandbox)
        if sandbox
        else ("${POWEROFFICE_BASE_URL:-https://goapi.poweroffice.net/v2}")
    )
    return f"""\
  poweroffice:
    kind: poweroffice-go
    label: PowerOffice GO
    base_url: {base}
    # the client's keys from PowerOffice GO (Settings > Integrations)
    credentials:
      application_key: {env_ref("POWEROFFICE_APPLICATION_KEY", sandbox)}
      client_key: {env_ref("POWEROFFICE_CLIENT_KEY", sandbox)}
      subscription_key: {env_ref("POWEROFFICE_SUBSCRIPTION_KEY", sandbox)}
"""


STARTER = Starter(
    system_id="poweroffice",
    entity_type="Customers",
    name_field="Name",
    org_field="OrganizationNumber",
    system=_system,
    sandbox_port=8082,
)
