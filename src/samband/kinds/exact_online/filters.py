"""Exact Online's mandatory filtering.

Since July 2021 every CRUD and bulk endpoint that has a Sync API counterpart refuses a
collection GET whose ``$filter`` names none of the endpoint's allowed fields (400, "This
endpoint has mandatory filtering applied. A GET request for this endpoint must have a
$filter parameter with one of the following fields in the url: …"), and these endpoints
filter only on the allowed fields ("This API allows to filter only on specific fields",
Exact's endpoint pages; "Filtering on these fields is not supported: …" on the bulk ones).

Evidence for the lists (see docs/systems/exact.md, "Faithful, and assumed"):

* ``crm/Accounts``: the full list in Exact's own error message, quoted in
  picqer/exact-php-client issue #591 (2022) and on the Invantive forum ("Coping with
  mandatory filtering on Exact Online").
* ``logistics/Items``: the same issue quotes the Items message, cut off after
  ``FreeBoolField_05``; only that part is taken (plus the key ``ID``, assumed).
* ``crm/Contacts``, ``project/Projects``, ``salesorder/SalesOrders``,
  ``salesorder/SalesOrderLines``: no public list was found; only the key is taken (the
  safe assumption: filtering on the key is how Exact's pages show a single record read).

Shared by the connector (what it filters on), ``validate`` (via the connector's schema)
and the sandbox (what it refuses)."""

from __future__ import annotations

_ACCOUNTS = (
    "Accountant,AccountManager,AddressLine1,AddressLine2,AddressLine3,Blocked,BRIN,BSN,"
    "ChamberOfCommerce,City,Classification1,Classification2,Classification3,"
    "Classification4,Classification5,Classification6,Classification7,Classification8,"
    "Classification,Code,CodeAtSupplier,Country,Created,Email,EndDate,Fax,ID,"
    "InvoiceAccount,IsAccountant,IsReseller,IsSales,IsSupplier,MainContact,Modified,Name,"
    "Parent,Phone,Postcode,PriceList,Reseller,RSIN,SearchCode,StartDate,Status,Type,"
    "VATNumber"
)
_ITEMS = (
    "Barcode,Class_01,Class_02,Class_03,Class_04,Class_05,Class_06,Class_07,Class_08,"
    "Class_09,Class_10,Code,CostPriceNew,Created,Description,EndDate,ExtraDescription,"
    "FreeBoolField_01,FreeBoolField_02,FreeBoolField_03,FreeBoolField_04,FreeBoolField_05,"
    "ID"
)

#: CRUD endpoint -> the fields its ``$filter`` may name (endpoints with a Sync API only)
MANDATORY_FILTER_FIELDS: dict[str, frozenset[str]] = {
    "crm/Accounts": frozenset(_ACCOUNTS.split(",")),
    "logistics/Items": frozenset(_ITEMS.split(",")),
    "crm/Contacts": frozenset({"ID"}),
    "project/Projects": frozenset({"ID"}),
    "salesorder/SalesOrders": frozenset({"OrderID"}),
    "salesorder/SalesOrderLines": frozenset({"ID"}),
}


def has_mandatory_filter(resource: str) -> bool:
    """Whether a collection GET on ``resource`` must carry an allowed ``$filter``."""
    return resource in MANDATORY_FILTER_FIELDS


def filterable(resource: str, field: str) -> bool:
    """Whether ``$filter`` on ``resource`` may name ``field``."""
    allowed = MANDATORY_FILTER_FIELDS.get(resource)
    return allowed is None or field in allowed


def mandatory_filter_message(resource: str) -> str:
    """Exact's (English) answer to a GET on ``resource`` without an allowed filter."""
    fields = ",".join(sorted(MANDATORY_FILTER_FIELDS[resource], key=str.lower))
    return (
        "This endpoint has mandatory filtering applied. A GET request for this endpoint "
        f"must have a $filter parameter with one of the following fields in the url:{fields}."
    )
