"""A company's own REST API (the "custom CRM" of the seeds), described in the config."""

from samband.kinds.rest.settings import RestSettings, RestTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="rest",
    title="REST API",
    settings=RestSettings,
    entity_type_settings=RestTypeSettings,
    connector="samband.kinds.rest.connector:RestConnector",
    sandbox="samband.kinds.rest.sandbox:CustomCrmSandbox",
    demo="samband.kinds.rest.demo:DEMO",
    starter="samband.kinds.rest.starter:STARTER",
    push="samband.kinds.rest.push:PUSH",
)
