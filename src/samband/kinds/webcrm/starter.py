"""``samband init webcrm``: a WebCRM system and its organisations."""

from __future__ import annotations

from collections.abc import Mapping

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    base = (
        env_ref("WEBCRM_BASE_URL", sandbox)
        if sandbox
        else ("${WEBCRM_BASE_URL:-https://api.webcrm.com}")
    )
    return f"""\
  webcrm:
    kind: webcrm
    label: WebCRM
    base_url: {base}
    # an API token from WebCRM (Configuration > API)
    credentials:
      api_token: {env_ref("WEBCRM_API_TOKEN", sandbox)}
    entity_types:
      Organisations:
        # a custom field you use for nothing else: an interrupted create is found again
        external_ref: OrganisationExtraCustom1
"""


STARTER = Starter(
    system_id="webcrm",
    entity_type="Organisations",
    name_field="OrganisationName",
    org_field="OrganisationVatNumber",
    system=_system,
    sandbox_port=8083,
)
