"""What the Sync API endpoints cannot serve that their CRUD endpoints can.

The Sync API entities carry fewer fields than the CRUD ones (a ``$select`` naming a field
the sync entity lacks is answered 400, which counts toward Exact's 10-errors-an-hour
block).  The reference field table (``exact-online-fields.txt``) has no sync field lists,
so these are the known differences; every other CRUD field is assumed to be served.
Shared by the connector (what it asks for, what validate refuses) and the sandbox (what
it answers 400 for)."""

from __future__ import annotations

from samband.kinds.exact_online.fields import FIELDS

#: sync endpoint -> (its CRUD endpoint, the CRUD fields it lacks)
SYNC_LACKS: dict[str, tuple[str, frozenset[str]]] = {
    "sync/CRM/Accounts": ("crm/Accounts", frozenset()),
    "sync/CRM/Contacts": ("crm/Contacts", frozenset()),
    "sync/Logistics/Items": (
        "logistics/Items",
        frozenset({"StandardSalesPrice", "IsBatchNumberItem", "IsSerialNumberItem"}),
    ),
    "sync/Project/Projects": ("project/Projects", frozenset()),
    "sync/SalesOrder/SalesOrderHeaders": (
        "salesorder/SalesOrders",
        frozenset({"TaxSchedule", "TaxScheduleCode", "TaxScheduleDescription"}),
    ),
    "sync/SalesOrder/SalesOrderLines": (
        "salesorder/SalesOrderLines",
        frozenset({"TaxSchedule", "TaxScheduleCode", "TaxScheduleDescription", "OrderStatus"}),
    ),
}


def sync_lacks(sync: str) -> frozenset[str]:
    """The CRUD fields the sync endpoint ``sync`` cannot serve."""
    return SYNC_LACKS[sync][1] if sync in SYNC_LACKS else frozenset()


def sync_fields(sync: str) -> set[str]:
    """Every field of the sync endpoint ``sync`` (its ``Timestamp`` included)."""
    resource, lacks = SYNC_LACKS[sync]
    return (set(FIELDS[resource]) - lacks) | {"Timestamp"}
