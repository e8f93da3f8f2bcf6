"""CRMOffice (CRM): REST API, OAuth2 authorization-code login against the tenant."""

from samband.kinds.crmoffice.settings import CrmOfficeSettings, CrmOfficeTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="crmoffice",
    title="CRMOffice",
    settings=CrmOfficeSettings,
    entity_type_settings=CrmOfficeTypeSettings,
    connector="samband.kinds.crmoffice.connector:CrmOfficeConnector",
    sandbox="samband.kinds.crmoffice.sandbox:CrmOfficeSandbox",
    credentials=("client_id", "client_secret"),
    label_aliases=("crmoffice",),
    importer_lines=("auth_url: https://TENANT.crmoffice.no  # TODO: your tenant's address",),
    login=True,
    demo="samband.kinds.crmoffice.demo:DEMO",
    starter="samband.kinds.crmoffice.starter:STARTER",
)
