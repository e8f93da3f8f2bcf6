"""What the field's documents name for Exact Online that Samband does not offer, and why.

``field-properties.tsv`` (the project's shared reference) lists every property the
discontinued service's dataflow documents name for ``exact-online``; a test checks each row
against the connector's schema or these lists, and docs/systems/exact.md explains them.
The documents spell entity types in their own case (``Salesorders``); the schema's
(``SalesOrders``) is compared without regard to case."""

from __future__ import annotations

_NOT_IN_REFERENCE = (
    "not among the endpoints of the reference field lists (exact-online-fields.txt), so "
    "there are no documented fields, keys or mandatory fields to model and sandbox it by"
)

#: entity types the documents name that the connector does not offer -> why
UNSUPPORTED_TYPES: dict[str, str] = {
    "Addresses": f"crm/Addresses is {_NOT_IN_REFERENCE}; an account's visit address is "
    "on Accounts (AddressLine1–3, Postcode, City, Country)",
    "Currencies": f"general/Currencies is {_NOT_IN_REFERENCE}",
    "Employees": f"payroll/Employees is {_NOT_IN_REFERENCE}",
    "Quotations": f"crm/Quotations is {_NOT_IN_REFERENCE}",
    "Salesinvoices": f"salesinvoice/SalesInvoices is {_NOT_IN_REFERENCE}",
    "Units": f"logistics/Units is {_NOT_IN_REFERENCE}",
    "Vatcodes": f"vat/VATCodes is {_NOT_IN_REFERENCE}",
}

#: (entity type, property) the documents write that Exact does not let a client write
READ_ONLY_IN_EXACT: dict[tuple[str, str], str] = {
    ("Accounts", "ID"): "the key, given by Exact; documents use it to match",
    ("Contacts", "City"): "read-only on crm/Contacts (the account's address)",
    ("Contacts", "Country"): "read-only on crm/Contacts (the account's address)",
    ("Contacts", "FullName"): "read-only on crm/Contacts: write FirstName and LastName",
    ("Departments", "Code"): "hrm/Departments is read-only (GET only)",
    ("Departments", "Description"): "hrm/Departments is read-only (GET only)",
    ("SalesOrderLines", "CostPriceFC"): "read-only on salesorder/SalesOrderLines",
}
