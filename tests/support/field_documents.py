"""The field's documents: every property the discontinued service's dataflow documents name
for our vendor systems (``../shared/reference/field-properties.tsv``, beside the checkout).

Without ``../shared`` a test that needs the list is skipped with a message; with
``CI=true`` it fails instead, because CI must check what it claims to check.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

FIELD_PROPERTIES = (
    Path(__file__).resolve().parents[2].parent / "shared/reference/field-properties.tsv"
)


@dataclass(frozen=True)
class FieldProperty:
    """One row: a property that ``documents`` documents name for ``system``'s type."""

    system: str
    entity_type: str
    property: str
    target_types: tuple[str, ...]  # the data types given where it is a target; () if never
    documents: int
    example: str

    @property
    def is_target(self) -> bool:
        return bool(self.target_types)


def field_properties(system: str) -> list[FieldProperty]:
    """The rows of ``system`` (``webcrm``, ``crmoffice``, …); skips (or, in CI, fails)
    when the list is not there."""
    if not FIELD_PROPERTIES.is_file():
        message = f"{FIELD_PROPERTIES} is not there (../shared beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(f"{message}; the check against the field's documents needs it")
    with FIELD_PROPERTIES.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    result = [
        FieldProperty(
            system=row["system"],
            entity_type=row["entity type"],
            property=row["property"],
            target_types=tuple(
                t.strip()
                for t in row["data types given when it is a target"].split(",")
                if t.strip() not in ("", "-", "N/A")
            ),
            documents=int(row["documents naming it"]),
            example=row["example counterpart"],
        )
        for row in rows
        if row["system"] == system
    ]
    assert result, f"{FIELD_PROPERTIES} has no row for {system}"
    return result
