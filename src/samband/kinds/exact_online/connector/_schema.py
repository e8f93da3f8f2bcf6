"""The entity types Samband offers for Exact Online, built from the documented field lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from samband.connectors.base import EntityType, Property
from samband.errors import ContractError
from samband.kinds.exact_online.fields import FIELDS
from samband.kinds.exact_online.filters import filterable
from samband.kinds.exact_online.settings import ExactOnlineTypeSettings
from samband.kinds.exact_online.sync_fields import sync_lacks
from samband.types import DataType


@dataclass(frozen=True)
class ExactType:
    """How one entity type maps onto Exact endpoints."""

    name: str
    resource: str  # CRUD endpoint under /api/v1/{division}/
    key: str
    sync: str | None = None  # Sync API endpoint, when the type has one
    deleted_type: int | None = None  # EntityType number in sync/Deleted
    read_only: bool = False
    external_ref: str | None = None
    references: dict[str, str] = field(default_factory=dict)


TYPES: dict[str, ExactType] = {
    t.name: t
    for t in (
        ExactType(
            "Accounts",
            "crm/Accounts",
            "ID",
            "sync/CRM/Accounts",
            2,
            references={
                "Parent": "Accounts",
                "InvoiceAccount": "Accounts",
                "Reseller": "Accounts",
                "MainContact": "Contacts",
            },
        ),
        ExactType(
            "Contacts",
            "crm/Contacts",
            "ID",
            "sync/CRM/Contacts",
            5,
            references={"Account": "Accounts"},
        ),
        ExactType(
            "Items",
            "logistics/Items",
            "ID",
            "sync/Logistics/Items",
            9,
            external_ref="FreeTextField_10",
        ),
        ExactType(
            "Projects",
            "project/Projects",
            "ID",
            "sync/Project/Projects",
            21,
            references={"Account": "Accounts", "AccountContact": "Contacts"},
        ),
        ExactType(
            "SalesOrders",
            "salesorder/SalesOrders",
            "OrderID",
            "sync/SalesOrder/SalesOrderHeaders",
            32,
            references={
                "OrderedBy": "Accounts",
                "DeliverTo": "Accounts",
                "InvoiceTo": "Accounts",
                "OrderedByContactPerson": "Contacts",
                "DeliverToContactPerson": "Contacts",
                "InvoiceToContactPerson": "Contacts",
            },
        ),
        ExactType(
            "SalesOrderLines",
            "salesorder/SalesOrderLines",
            "ID",
            "sync/SalesOrder/SalesOrderLines",
            33,
            references={"OrderID": "SalesOrders", "Item": "Items", "Project": "Projects"},
        ),
        ExactType("Departments", "hrm/Departments", "ID", read_only=True),
        ExactType("Divisions", "hrm/Divisions", "Code", read_only=True),
    )
}

#: DateTime fields that hold a calendar date (sent as YYYY-MM-DD, read as a date)
DATE_FIELDS = {
    "StartDate",
    "EndDate",
    "BirthDate",
    "DeliveryDate",
    "OrderDate",
    "EstablishedDate",
    "CustomerSince",
    "ControlledDate",
    "IdentificationDate",
    "ArchiveDate",
    "StatusSince",
    "FreeDateField_01",
    "FreeDateField_02",
    "FreeDateField_03",
    "FreeDateField_04",
    "FreeDateField_05",
}
_INTEGERS = {"Int16", "Int32", "Int64", "Byte"}
_UNSELECTABLE = {"Collection", "Binary", "?"}


def data_type(name: str, exact_type: str, references: dict[str, str]) -> DataType | None:
    if name in references:
        return DataType.REFERENCE
    if exact_type == "Guid" or exact_type.startswith("UTF8"):
        return DataType.STRING
    if exact_type in _INTEGERS:
        return DataType.INTEGER
    if exact_type == "Double":
        return DataType.DECIMAL
    if exact_type == "Boolean":
        return DataType.BOOLEAN
    if exact_type == "DateTime":
        return DataType.DATE if name in DATE_FIELDS else DataType.DATETIME
    return None


def selectable(resource: str) -> list[str]:
    """Fields that may go into ``$select`` (not collections or binary blobs)."""
    return [n for n, (t, _, _) in FIELDS[resource].items() if t not in _UNSELECTABLE]


def sync_selectable(spec: ExactType) -> list[str]:
    """Fields that may go into the ``$select`` of the type's Sync API endpoint."""
    lacks = sync_lacks(spec.sync or "")
    return [name for name in selectable(spec.resource) if name not in lacks]


def _text_fields(spec: ExactType) -> list[str]:
    return [
        name
        for name, (exact_type, read_only, _) in FIELDS[spec.resource].items()
        if exact_type.startswith("UTF8") and not read_only and name != spec.key
    ]


def external_ref_problem(spec: ExactType, field_name: str) -> tuple[str, str] | None:
    """Why ``field_name`` cannot hold the external refs of ``spec`` (message, what to
    do), or None.  A create stamps the ref into the field and an interrupted create is
    found again by it: with ``$filter`` where mandatory filtering allows the field, else
    through the type's Sync API; a field neither way can find is refused."""
    fields = FIELDS[spec.resource]
    usable = [
        name
        for name in _text_fields(spec)
        if filterable(spec.resource, name) or name not in sync_lacks(spec.sync or "")
    ]
    free = [name for name in usable if name.startswith("FreeTextField")]
    hint = (
        f"use a free text field you use for nothing else ({free[0]}–{free[-1]})"
        if free
        else "leave external_ref_field out: the merge criteria find an interrupted create"
    )
    where = f"{spec.name}: external_ref_field {field_name!r}"
    if field_name not in fields:
        return f"{where} is not a field of Exact Online {spec.resource}", hint
    exact_type, read_only, _ = fields[field_name]
    if read_only or field_name == spec.key or not exact_type.startswith("UTF8"):
        return f"{where} is not a writable text field of {spec.resource}", hint
    if filterable(spec.resource, field_name):
        return None
    if spec.sync is None or field_name in sync_lacks(spec.sync):
        return (
            f"{where}: {spec.resource} has mandatory filtering and refuses a $filter on "
            f"{field_name}, and {spec.sync or 'no Sync API'} cannot serve it either, so "
            "an interrupted create could not be found again",
            hint,
        )
    return None


def entity_type(
    spec: ExactType, settings: ExactOnlineTypeSettings, system_id: str = "?"
) -> EntityType:
    fields = FIELDS[spec.resource]
    full_scan = settings.full_scan
    lacks = sync_lacks(spec.sync) if spec.sync is not None and not full_scan else frozenset()
    properties = {
        name: Property(
            name,
            data_type(name, exact_type, spec.references),
            read_only=spec.read_only or read_only or name == spec.key,
            required=required and name != spec.key,
            max_length=18 if (spec.name == "Accounts" and name == "Code") else None,
            references=spec.references.get(name),
            unreadable=(
                f"{spec.sync} (the Sync API the connector reads {spec.name} through) "
                f"does not serve {name}; drop the mapping, or set full_scan: true on "
                f"{spec.name} to read {spec.resource} instead"
            )
            if name in lacks
            else None,
        )
        for name, (exact_type, read_only, required) in fields.items()
        if exact_type not in ("Binary",)
    }
    external_ref = (
        settings.external_ref_field
        if "external_ref_field" in settings.model_fields_set
        else spec.external_ref
    )
    if external_ref is not None and not spec.read_only:
        problem = external_ref_problem(spec, external_ref)
        if problem is not None:
            raise ContractError(system_id, *problem)
    return EntityType(
        name=spec.name,
        id_field=spec.key,
        modified_field="Modified" if "Modified" in fields else None,
        properties=properties,
        incremental=not full_scan,
        reports_deletes=spec.sync is not None and not full_scan,
        read_only=spec.read_only or bool(settings.read_only),
        can_delete=not spec.read_only,
        external_ref_field=external_ref,
        archive=("Blocked", True) if spec.name == "Accounts" else None,
    )
