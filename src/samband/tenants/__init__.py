"""Tenants: one installation serving many companies, each with its own config,
credentials and store, nothing shared (see docs/many-companies.md)."""

from samband.tenants.registry import (
    Registry as Registry,
)
from samband.tenants.registry import (
    Tenant as Tenant,
)
from samband.tenants.registry import (
    TenantError as TenantError,
)
from samband.tenants.registry import (
    registry_dir as registry_dir,
)
