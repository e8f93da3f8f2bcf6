"""The sample-data generator: deterministic, realistic, valid identifiers."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest

from samband import sampledata
from samband.sampledata import companies, overlap, persons, products, valid_no_org_no


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert companies(20, random.Random(7)) == companies(20, random.Random(7))
    assert companies(20, random.Random(7)) != companies(20, random.Random(8))
    assert persons(10, random.Random(3), "NL") == persons(10, random.Random(3), "NL")


@pytest.mark.parametrize("country", ["NO", "NL"])
def test_companies_have_every_key_and_unique_identifiers(country: str) -> None:
    rows = companies(300, random.Random(1), country)
    keys = {"name", "org_no", "vat_number", "email", "phone", "website"}
    keys |= {"address", "zip_code", "city", "country"}
    assert all(set(row) == keys for row in rows)
    assert len({r["org_no"] for r in rows}) == 300
    assert len({r["name"] for r in rows}) == 300
    assert len({r["email"] for r in rows}) == 300
    assert all(r["country"] == country for r in rows)
    assert all(re.fullmatch(r"[a-z]+@[a-z0-9]+\.(no|nl)", r["email"]) for r in rows)


def test_norwegian_org_numbers_pass_mod11() -> None:
    rows = companies(500, random.Random(2), "NO")
    for row in rows:
        assert valid_no_org_no(row["org_no"]), row["org_no"]
        assert row["vat_number"] == f"NO{row['org_no']}MVA"
        assert re.fullmatch(r"\d{4}", row["zip_code"])
        assert row["phone"].startswith("+47 ")


def test_mod11_check_digit_known_numbers() -> None:
    # Brønnøysundregistrene's own organisation number and DNB Bank ASA
    assert valid_no_org_no("974760673")
    assert valid_no_org_no("984851006")
    assert not valid_no_org_no("974760674")
    assert not valid_no_org_no("97476067")


def test_dutch_companies_have_kvk_and_vat() -> None:
    for row in companies(200, random.Random(3), "NL"):
        assert re.fullmatch(r"\d{8}", row["org_no"])
        assert re.fullmatch(r"NL\d{9}B\d{2}", row["vat_number"])
        assert re.fullmatch(r"\d{4} [A-Z]{2}", row["zip_code"])


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ValueError, match="country"):
        companies(1, random.Random(1), "SE")


def test_persons_work_at_given_companies() -> None:
    rng = random.Random(4)
    firms = companies(5, rng)
    people = persons(100, rng, "NO", companies=firms)
    assert len({p["email"] for p in people}) == 100
    for person in people:
        index = person["company_index"]
        assert index is not None and 0 <= index < 5
        assert person["email"].endswith("@" + firms[index]["email"].split("@")[1])
        assert person["mobile"][4] in "49"
        assert person["title"]
    loose = persons(5, rng, "NL")
    assert all(p["company_index"] is None for p in loose)


def test_products_prices_are_decimals_and_cost_below_price() -> None:
    rows = products(40, random.Random(5))
    assert len({r["code"] for r in rows}) == 40
    assert len({r["name"] for r in rows}) == 40
    for row in rows:
        assert isinstance(row["unit_price"], Decimal) and isinstance(row["unit_cost"], Decimal)
        assert row["unit_price"].as_tuple().exponent == -2
        assert 0 < row["unit_cost"] < row["unit_price"]


def test_overlap_copies_identifiers_for_the_given_share() -> None:
    rng = random.Random(6)
    a = companies(50, rng, "NO")
    b = companies(40, rng, "NO")
    before = {r["org_no"] for r in a}
    pairs = overlap(a, b, 0.25, rng)
    assert len(pairs) == 10
    assert len({ib for _, ib in pairs}) == 10 and len({ia for ia, _ in pairs}) == 10
    for ia, ib in pairs:
        assert b[ib]["org_no"] == a[ia]["org_no"]
        assert b[ib]["email"] == a[ia]["email"]
    assert sum(r["org_no"] in before for r in b) == 10
    with pytest.raises(ValueError):
        overlap(a, b, 1.5, rng)


def test_overlap_on_persons_copies_email_only() -> None:
    rng = random.Random(8)
    a, b = persons(10, rng), persons(10, rng, "NL")
    pairs = overlap(a, b, 0.5, rng)
    assert len(pairs) == 5
    assert all(b[ib]["email"] == a[ia]["email"] and "org_no" not in b[ib] for ia, ib in pairs)


def test_module_needs_only_the_standard_library() -> None:
    with open(sampledata.__file__, encoding="utf-8") as handle:
        source = handle.read()
    imports = set(re.findall(r"^(?:from|import) ([a-z_]+)", source, re.M))
    assert imports <= {"__future__", "random", "re", "unicodedata", "decimal", "typing"}
