"""PowerOffice GO (accounting): API v2, client-credentials login per client."""

from samband.kinds.poweroffice_go.settings import PowerOfficeSettings, PowerOfficeTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="poweroffice-go",
    title="PowerOffice GO",
    settings=PowerOfficeSettings,
    entity_type_settings=PowerOfficeTypeSettings,
    connector="samband.kinds.poweroffice_go.connector:PowerOfficeConnector",
    sandbox="samband.kinds.poweroffice_go.sandbox:PowerOfficeSandbox",
    credentials=("application_key", "client_key", "subscription_key"),
    label_aliases=("poweroffice",),
    demo="samband.kinds.poweroffice_go.demo:DEMO",
    starter="samband.kinds.poweroffice_go.starter:STARTER",
)
