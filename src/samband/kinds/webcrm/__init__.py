"""WebCRM (CRM): REST API v1 with an application token."""

from samband.kinds.webcrm.settings import WebCrmSettings, WebCrmTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="webcrm",
    title="WebCRM",
    settings=WebCrmSettings,
    entity_type_settings=WebCrmTypeSettings,
    connector="samband.kinds.webcrm.connector:WebCrmConnector",
    sandbox="samband.kinds.webcrm.sandbox:WebCrmSandbox",
    credentials=("api_token",),
    label_aliases=("webcrm",),
    # a document that leaves the system's label empty but names these types means WebCRM
    entity_type_names=frozenset(
        {"Organisations", "Persons", "Products", "Quotationline", "Opportunities", "Users"}
    ),
    telling_entity_types=frozenset({"Organisations", "Persons"}),
    demo="samband.kinds.webcrm.demo:DEMO",
    starter="samband.kinds.webcrm.starter:STARTER",
)
