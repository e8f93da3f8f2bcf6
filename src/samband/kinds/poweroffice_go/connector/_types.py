"""The entity types of PowerOffice GO v2: paths, schemas, external references.

The names are the ones the seed documents use (``Customers``, ``Contactperson``,
``Suppliers person`` ...).  Property names are the API's PascalCase; the engine also
accepts them in camelCase (:meth:`EntityType.canonical`), as seed 003 writes them.

``Projectactivity`` and ``Timetrackingactivity`` (seed 003) are the v2 time-tracking
activity catalogue, ``/TimeTracking/ActivityTime`` (see :data:`ACTIVITY_EVIDENCE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from samband.connectors.base import EntityType, Property
from samband.types import DataType

S, INT, D, B = DataType.STRING, DataType.INTEGER, DataType.DECIMAL, DataType.BOOLEAN
DT, DAY, REF = DataType.DATETIME, DataType.DATE, DataType.REFERENCE

MODIFIED = "LastChangedDateTimeOffset"
ADDRESS_FIELDS = ("AddressLine1", "AddressLine2", "City", "ZipCode", "CountryCode")


@dataclass(frozen=True)
class ApiType:
    """How one seed entity type maps onto the v2 API."""

    name: str
    path: str
    properties: tuple[Property, ...]
    id_is_uuid: bool = False
    external_ref_field: str | None = None
    # query parameter that filters on the external reference (None: scan with Fields)
    external_filter: str | None = None
    # the API has ``lastChangedDateTimeOffsetGreaterThan`` on this path
    change_filter: bool = True
    archive: tuple[str, Any] | None = None
    # top-level fields every read asks for, whatever the dataflows need
    always: tuple[str, ...] = ("Id", MODIFIED)
    # values every create sends (Suppliers person: IsPerson = true)
    fixed: dict[str, Any] = field(default_factory=dict)
    # only records with these values belong to the type (Suppliers person)
    only: dict[str, Any] = field(default_factory=dict)
    # the record has a MailAddress whose changes do not move the record's timestamp
    has_address: bool = False
    create_path: str | None = None
    # ``POST /Products`` answers 200 instead of 201; nothing depends on it but the tests
    create_status: int = 201
    # query parameters every list read of the path sends
    list_params: dict[str, str] = field(default_factory=dict)


def _p(name: str, kind: DataType | None = None, **options: Any) -> Property:
    return Property(name, kind, **options)


def _address(prefix: str = "MailAddress") -> tuple[Property, ...]:
    limits = {"AddressLine1": 200, "AddressLine2": 200, "City": 100, "ZipCode": 50}
    fields = [_p(f"{prefix}.{name}", S, max_length=limits.get(name)) for name in ADDRESS_FIELDS]
    return (*fields, _p(f"{prefix}.{MODIFIED}", DT, read_only=True))


_COMMON_RO = (
    _p("Id", INT, read_only=True),
    _p(MODIFIED, DT, read_only=True),
)

_CONTACT = (
    *_COMMON_RO,
    _p("Number", INT),
    _p("Name", S),
    _p("FirstName", S),
    _p("LastName", S),
    _p("IsPerson", B),
    _p("LegalName", S),
    _p("OrganizationNumber", S),
    _p("EmailAddress", S),
    _p("PhoneNumber", S),
    _p("WebsiteUrl", S),
    _p("CurrencyCode", S),
    _p("DateOfBirth", DAY),
    _p("IsArchived", B),
    _p("IsActive", B, read_only=True),
    _p("ExternalImportReference", S, max_length=50),
    _p("ExternalNumber", INT),
    _p("ContactCreatedDateTimeOffset", DT, read_only=True),
    *_address(),
)

CUSTOMERS = ApiType(
    "Customers",
    "/Customers",
    (
        *_CONTACT,
        _p("InvoiceEmailAddress", S),
        _p("CustomerSince", DAY),
        _p("DepartmentId", REF, references="Departments"),
        _p("SalesPersonEmployeeId", REF, references="Employees"),
        _p("CustomerCreatedDateTimeOffset", DT, read_only=True),
    ),
    external_ref_field="ExternalImportReference",
    external_filter="externalImportReference",
    archive=("IsArchived", True),
    has_address=True,
)

SUPPLIERS = ApiType(
    "Suppliers",
    "/Suppliers",
    (*_CONTACT, _p("SupplierCreatedDateTimeOffset", DT, read_only=True)),
    external_ref_field="ExternalImportReference",
    external_filter="externalImportReference",
    archive=("IsArchived", True),
    has_address=True,
)

SUPPLIERS_PERSON = ApiType(
    "Suppliers person",
    "/Suppliers",
    (
        *_COMMON_RO,
        _p("Number", INT),
        _p("FirstName", S),
        _p("LastName", S),
        _p("EmailAddress", S),
        _p("PhoneNumber", S),
        _p("DateOfBirth", DAY),
        _p("IsPerson", B, read_only=True),
        _p("IsArchived", B),
        _p("ExternalImportReference", S, max_length=50),
        _p("ExternalNumber", INT),
        *_address(),
    ),
    external_ref_field="ExternalImportReference",
    external_filter="externalImportReference",
    archive=("IsArchived", True),
    always=("Id", MODIFIED, "IsPerson"),
    fixed={"IsPerson": True},
    only={"IsPerson": True},
    has_address=True,
)

CONTACT_PERSON = ApiType(
    "Contactperson",
    "/ContactPersons",
    (
        *_COMMON_RO,
        # The customer or supplier (one id space) the person belongs to; set on create
        # (``POST /ContactPersons/{contactId}``), fixed afterwards.
        _p("ContactId", REF, references="Customers"),
        _p("FirstName", S, required=True),
        _p("LastName", S, required=True),
        _p("EmailAddress", S),
        _p("PhoneNumber", S),
        _p("Title", S),
        _p("IsActive", B),
        _p("IsDefault", B),
        _p("ExternalCode", S, max_length=50),
        _p("CreatedDateTimeOffset", DT, read_only=True),
        *_address()[:-1],
    ),
    external_ref_field="ExternalCode",
    external_filter="externalCodes",
    archive=("IsActive", False),
    always=("Id", MODIFIED, "ContactId"),
)

DEPARTMENTS = ApiType(
    "Departments",
    "/Departments",
    (
        *_COMMON_RO,
        _p("Code", S),
        _p("Name", S, required=True),
        _p("IsActive", B),
        _p("ManagerEmployeeId", REF, read_only=True, references="Employees"),
        _p("CreatedDateTimeOffset", DT, read_only=True),
    ),
    archive=("IsActive", False),
)

PROJECTS = ApiType(
    "Projects",
    "/Projects",
    (
        *_COMMON_RO,
        _p("Code", S),
        _p("Name", S, required=True),
        _p("CustomerId", REF, references="Customers"),
        _p("CustomerNo", INT, read_only=True),
        _p("ContactPersonId", REF, references="Contactperson"),
        _p("DepartmentId", REF, references="Departments"),
        _p("ProjectManagerEmployeeId", REF, references="Employees"),
        _p("ParentProjectId", REF, references="Projects"),
        _p("ProjectStatus", S),
        _p("StartDate", DAY),
        _p("EndDate", DAY),
        _p("IsActive", B),
        _p("IsBillable", B),
        _p("IsInternal", B),
        _p("BillableRate", D),
        _p("BudgetedHours", D),
        _p("FixedPrice", D),
        _p("Progress", INT),
        _p("ContractNo", S),
        _p("PurchaseOrderNo", S),
        _p("ExternalNumber", INT),
        _p("CreatedDateTimeOffset", DT, read_only=True),
    ),
    external_ref_field="ExternalNumber",
    archive=("IsActive", False),
)

PRODUCTS = ApiType(
    "Product",
    "/Products",
    (
        *_COMMON_RO,
        _p("Code", S, max_length=100),
        _p("Name", S, required=True, max_length=400),
        _p("Description", S),
        _p("ProductType", S),
        _p("UnitPrice", D),
        _p("UnitCost", D),
        _p("UnitOfMeasureCode", S),
        _p("Gtin", S),
        _p("IsStockItem", B),
        _p("StockOnHand", D),
        _p("StockAvailable", D, read_only=True),
        _p("ProductGroupId", REF, references="Productgroup"),
        _p("IsArchived", B),
        _p("CreatedDateTimeOffset", DT, read_only=True),
    ),
    archive=("IsArchived", True),
    create_status=200,
)

PRODUCT_GROUPS = ApiType(
    "Productgroup",
    "/ProductGroups",
    (
        *_COMMON_RO,
        _p("Code", S, max_length=200),
        _p("Name", S, required=True, max_length=400),
        _p("Description", S),
        _p("UnitPrice", D),
        _p("UnitCost", D),
        _p("IsArchived", B),
        _p("CreatedDateTimeOffset", DT, read_only=True),
    ),
    archive=("IsArchived", True),
)

SALES_ORDERS = ApiType(
    "Salesorders",
    "/SalesOrders",
    (
        _p("Id", S, read_only=True),
        _p(MODIFIED, DT, read_only=True),
        _p("SalesOrderNo", INT, read_only=True),
        _p("SalesOrderStatus", S),
        _p("CustomerId", REF, references="Customers"),
        _p("CustomerNo", INT, read_only=True),
        _p("SalesOrderDate", DAY),
        _p("DeliveryDate", DAY),
        _p("CurrencyCode", S),
        _p("CustomerReference", S),
        _p("PurchaseOrderReference", S),
        _p("ContractNo", S),
        _p("DepartmentId", REF, references="Departments"),
        _p("ProjectId", REF, references="Projects"),
        _p("SalesPersonEmployeeId", REF, references="Employees"),
        _p("ExternalImportReference", S),
        _p("CustomerReferenceContactPersonId", REF, references="Contactperson"),
        _p("RelatedInvoiceNo", S),
        _p("NetAmount", D, read_only=True),
        _p("TotalAmount", D, read_only=True),
        _p("LineCount", INT, read_only=True),
        _p("IsCreatedByCurrentIntegration", B, read_only=True),
        _p("CreatedDateTimeOffset", DT, read_only=True),
        # The lines, as a list of SalesOrderLine objects (ProductId, Description,
        # Quantity, ProductUnitPrice, ...); read through /SalesOrders/{id}/Complete only
        # when a dataflow maps them.
        _p("SalesOrderLines"),
    ),
    id_is_uuid=True,
    external_ref_field="ExternalImportReference",
    create_path="/SalesOrders/Complete",
)

EMPLOYEES = ApiType(
    "Employees",
    "/Employees",
    (
        *_COMMON_RO,
        _p("Number", INT),
        _p("FirstName", S, required=True),
        _p("LastName", S, required=True),
        _p("EmailAddress", S),
        _p("PhoneNumber", S),
        _p("JobTitle", S),
        _p("DepartmentId", REF, references="Departments"),
        _p("ManagerEmployeeId", REF, references="Employees"),
        _p("DateOfBirth", DAY),
        _p("HiredDate", DAY),
        _p("StartDate", DAY),
        _p("EndDate", DAY),
        _p("IsArchived", B),
        _p("ExternalImportReference", S, max_length=50),
        _p("ExternalNumber", INT),
        *_address(),
    ),
    external_ref_field="ExternalImportReference",
    external_filter="externalImportReference",
    archive=("IsArchived", True),
    has_address=True,
)

ACTIVITY_EVIDENCE = """\
The v2 time-tracking area is not in the merged OpenAPI file the sandbox is checked against
(``shared/reference/poweroffice-go-v2-openapi.yaml`` has no ``/TimeTracking`` path; its
``ProjectDto.AllowAllActivities`` only names "the ProjectActivities method" of v1).  What is
known comes from a public v2 client verified against the demo environment,
sjurebass/Poweroffice-mcp-extended (``src/tools/time-tracking.ts``, ``POWEROFFICE-API.md``:
a ``timetracking`` spec area on swagger.poweroffice.net):

* ``GET /TimeTracking/ActivityTime`` (also ``ActivityItem``, ``EntryTime``, ``EntryItem``)
  with ``lastChangedDateTimeOffsetGreaterThan``, ``includeInactive`` ("activity catalogues
  only"), ``PageNumber``, ``PageSize``; ``GET``/``DELETE /TimeTracking/ActivityTime/{id}``;
* ``POST /TimeTracking/ActivityTime`` with ``Name``, ``IsActive``, ``ProductId``,
  ``ProjectId``; ``PATCH`` is JSON Patch, as on every v2 path;
* ``GET /TimeTracking/HourType`` (hour types, id 0 is "Regular hours"); time entries are
  ``/TimeTracking/EntryTime`` (``EmployeeId``, ``ActivityTimeId``, ``Date``, ...).

v1's ``TimeTracking/Activity`` (``code, name, hourlyRate, productCode, isActive``) and
``Project/{projectId}/Activity`` have no v2 route.  Both seed types are therefore the
``ActivityTime`` catalogue; a project activity is an activity with ``ProjectId``.
Assumed: ``Id`` and ``LastChangedDateTimeOffset`` (the change filter compares it) as on
every v2 DTO, and that a list leaves inactive activities out unless ``includeInactive=true``
(which every read sends, so that a full scan never takes an archived activity for a
deleted one).  ``Code``, ``HourlyRate``, ``ProductCode`` and ``RequireProject`` are not
modelled: no public v2 source names them.
"""

_ACTIVITY = (
    *_COMMON_RO,
    _p("Name", S, required=True),
    _p("IsActive", B),
    _p("ProductId", REF, references="Product"),
    _p("ProjectId", REF, references="Projects"),
)
_ACTIVITY_PATH = "/TimeTracking/ActivityTime"

PROJECT_ACTIVITY = ApiType(
    "Projectactivity",
    _ACTIVITY_PATH,
    _ACTIVITY,
    archive=("IsActive", False),
    list_params={"includeInactive": "true"},
)

TIME_TRACKING_ACTIVITY = ApiType(
    "Timetrackingactivity",
    _ACTIVITY_PATH,
    _ACTIVITY,
    archive=("IsActive", False),
    list_params={"includeInactive": "true"},
)

API_TYPES: dict[str, ApiType] = {
    t.name: t
    for t in (
        CUSTOMERS,
        SUPPLIERS,
        CONTACT_PERSON,
        SUPPLIERS_PERSON,
        DEPARTMENTS,
        PROJECTS,
        PRODUCTS,
        PRODUCT_GROUPS,
        SALES_ORDERS,
        EMPLOYEES,
        PROJECT_ACTIVITY,
        TIME_TRACKING_ACTIVITY,
    )
}


def entity_type(api: ApiType, *, incremental: bool = True) -> EntityType:
    """The engine's view of an API type."""
    return EntityType(
        name=api.name,
        id_field="Id",
        modified_field=MODIFIED,
        properties={p.name: p for p in api.properties},
        incremental=incremental,
        reports_deletes=False,
        read_only=False,
        can_delete=True,
        external_ref_field=api.external_ref_field,
        archive=api.archive,
    )
