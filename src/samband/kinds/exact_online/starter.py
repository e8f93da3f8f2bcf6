"""``samband init exact-online``: an Exact Online system and its accounts."""

from __future__ import annotations

from collections.abc import Mapping

from samband.plugin import Starter, env_ref


def _system(sandbox: Mapping[str, str] | None) -> str:
    base = (
        env_ref("EXACT_BASE_URL", sandbox)
        if sandbox
        else ("${EXACT_BASE_URL:-https://start.exactonline.nl}")
    )
    return f"""\
  exact:
    kind: exact-online
    label: Exact Online
    base_url: {base}
    # an app registered in the Exact Online App Center; log in once with
    # `samband auth exact-online exact -c samband.yaml`
    credentials:
      client_id: {env_ref("EXACT_CLIENT_ID", sandbox)}
      client_secret: {env_ref("EXACT_CLIENT_SECRET", sandbox)}
"""


STARTER = Starter(
    system_id="exact",
    entity_type="Accounts",
    name_field="Name",
    org_field="ChamberOfCommerce",
    system=_system,
    sandbox_port=8085,
)
