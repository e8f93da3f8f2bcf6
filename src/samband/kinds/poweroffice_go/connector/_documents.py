"""What the field's documents name for PowerOffice GO, against this connector's schema.

``shared/reference/field-properties.tsv`` lists every property the discontinued service's
dataflow documents name for ``poweroffice-go``.  Each one is readable here (writable where
the v2 API lets a client write it), or explained below; a test reads the file and holds the
connector to it, and docs/systems/poweroffice.md repeats these lists.

The documents mix v2 names (``Customers.MailAddress.City``) with v1 names (``Contactperson
.address1``, ``Product.costPrice``): the service read some types through v1.  A v1 name
that has a v2 counterpart is in :data:`RENAMED`; map the v2 name.
"""

from __future__ import annotations

import re

#: The documents' split views of one type ("Customers (human data)") → the entity type.
DOCUMENT_TYPES: dict[str, str] = {
    "Customers (classification data)": "Customers",
    "Customers (human data)": "Customers",
    "Customers (location data)": "Customers",
    "Customers (organisation data)": "Customers",
    "Suppliers (human data)": "Suppliers person",
}

#: Types the documents name that the connector does not offer, and why.
UNSUPPORTED_TYPES: dict[str, str] = {
    "Location": (
        "v2 `/Locations` holds `Code`, `Name` and `IsActive` only; the documents' `city` and "
        "`countryCode` belong to no v2 location (they were an Exact address mapped onto v1)"
    ),
    "Quote": "the v2 API has no quotes (no `/Quotes` path in the OpenAPI file)",
    "Vatcodes": (
        "`/VatCodes` is read-only reference data (GET only, every field read-only, no change "
        "timestamp): nothing to synchronize into; map the code where a record uses it"
    ),
    "Salesorderlines": (
        "lines are not a type of their own: they are `Salesorders.SalesOrderLines`, a list "
        "of line objects (`ProductId`, `Description`, `Quantity`, `ProductUnitPrice`, "
        "`ProductUnitCost`, `Allowance`, `SortOrder`; `TotalAmount` and `VatRate` are "
        "read-only), written through `POST /SalesOrders/Complete`; `sesam_SalesOrderId` was "
        "the service's own link to the order"
    ),
}

#: (entity type, v1 name in the documents) → the v2 property that holds it.
RENAMED: dict[tuple[str, str], str] = {
    ("Contactperson", "address1"): "MailAddress.AddressLine1",
    ("Contactperson", "address2"): "MailAddress.AddressLine2",
    ("Contactperson", "city"): "MailAddress.City",
    ("Contactperson", "zipCode"): "MailAddress.ZipCode",
    ("Contactperson", "partyId"): "ContactId",
    ("Employees", "MailAddress.Address1"): "MailAddress.AddressLine1",
    ("Employees", "MailAddress.Address2"): "MailAddress.AddressLine2",
    ("Product", "availableStock"): "StockAvailable",
    ("Product", "costPrice"): "UnitCost",
    ("Product", "salesPrice"): "UnitPrice",
    ("Product", "type"): "ProductType",
}

#: (entity type, property) the documents name that no v2 source has, and why.
ABSENT: dict[tuple[str, str], str] = {
    ("Contactperson", "SocialSecurityNumber"): (
        "v1 only; a v2 contact person has no national identity number"
    ),
    ("Contactperson", "dateOfBirth"): "v1 only; `ContactPersonDto` has no date of birth",
    ("Contactperson", "residenceCountryCode"): (
        "v1 only; a v2 contact person's country is `MailAddress.CountryCode`"
    ),
    ("Product", "vatCode"): (
        "v1 only; a v2 product carries sales accounts (`StandardSalesAccountId`), not a VAT code"
    ),
    ("Timetrackingactivity", "code"): (
        "v1 `TimeTracking/Activity` field; no public v2 source names a code on "
        "`/TimeTracking/ActivityTime`"
    ),
    ("Timetrackingactivity", "requireProject"): (
        "no public v2 source names it on `/TimeTracking/ActivityTime` (a project activity "
        "carries `ProjectId` instead)"
    ),
}

#: Properties the documents name that the API lets no client write, and why.
READ_ONLY: dict[tuple[str, str], str] = {
    ("*", "Id"): "assigned by PowerOffice GO on create",
    ("Salesorders", "NetAmount"): "computed from the lines (`readOnly` in `SalesOrderDto`)",
    ("Product", "StockAvailable"): "computed from stock (`readOnly` in `ProductDto`)",
}

_CONDITION = re.compile(r"\s*\(Dependant on .*\)\s*$")


def document_property(name: str) -> str:
    """The property a document names, without its condition: ``OrganizationNumber
    (Dependant on having NO in MailAddress.CountryCode)`` → ``OrganizationNumber``."""
    return _CONDITION.sub("", name)
