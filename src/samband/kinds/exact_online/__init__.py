"""Exact Online (accounting/ERP): REST/OData API, OAuth2 authorization-code login."""

from samband.kinds.exact_online.settings import ExactOnlineSettings, ExactOnlineTypeSettings
from samband.plugin import KindDescriptor

KIND = KindDescriptor(
    name="exact-online",
    title="Exact Online",
    settings=ExactOnlineSettings,
    entity_type_settings=ExactOnlineTypeSettings,
    connector="samband.kinds.exact_online.connector:ExactOnlineConnector",
    sandbox="samband.kinds.exact_online.sandbox:ExactOnlineSandbox",
    credentials=("client_id", "client_secret"),
    label_aliases=("exact",),
    login=True,
    demo="samband.kinds.exact_online.demo:DEMO",
    starter="samband.kinds.exact_online.starter:STARTER",
    push="samband.kinds.exact_online.push:PUSH",
)
