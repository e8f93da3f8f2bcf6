"""``samband init crmoffice``: a CRMOffice system and its companies."""

from __future__ import annotations

from collections.abc import Mapping

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    if sandbox:
        base, auth = env_ref("CRMOFFICE_BASE_URL", sandbox), env_ref("CRMOFFICE_AUTH_URL", sandbox)
    else:
        base = "${CRMOFFICE_BASE_URL:-https://api.crmoffice.no}"
        auth = "${CRMOFFICE_AUTH_URL:-https://TENANT.crmoffice.no}  # your tenant's address"
    return f"""\
  crmoffice:
    kind: crmoffice
    label: CRMOffice
    base_url: {base}
    auth_url: {auth}
    # an OAuth2 client of your tenant; log in once with
    # `samband auth crmoffice crmoffice -c samband.yaml`
    credentials:
      client_id: {env_ref("CRMOFFICE_CLIENT_ID", sandbox)}
      client_secret: {env_ref("CRMOFFICE_CLIENT_SECRET", sandbox)}
"""


STARTER = Starter(
    system_id="crmoffice",
    entity_type="Companies",
    name_field="name",
    org_field="orgNr",
    system=_system,
    sandbox_port=8084,
)
