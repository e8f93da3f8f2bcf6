"""Realistic Norwegian and Dutch sample data: companies, persons and products.

Used by the sandboxes (seeded data), the custom PMS demo and the tests.  Everything is
deterministic per ``random.Random`` seed and needs no external package.  Norwegian
organisation numbers carry a valid mod-11 check digit; Dutch companies get an 8-digit KvK
number and a matching VAT number.  :func:`overlap` makes a share of the records of one
list carry the org number / e-mail of records in another, so that merge criteria
("match on org_no, then e-mail") have work to do when systems are synced for the first
time.
"""

from __future__ import annotations

import random
import re
import unicodedata
from decimal import Decimal
from typing import Any

__all__ = ["companies", "no_org_check_digit", "overlap", "persons", "products", "valid_no_org_no"]

_NO_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

# (zip code, city) pairs that exist.
_NO_PLACES = [
    ("0150", "Oslo"),
    ("0250", "Oslo"),
    ("0484", "Oslo"),
    ("0560", "Oslo"),
    ("0661", "Oslo"),
    ("1337", "Sandvika"),
    ("1366", "Lysaker"),
    ("1606", "Fredrikstad"),
    ("2317", "Hamar"),
    ("2609", "Lillehammer"),
    ("3015", "Drammen"),
    ("3117", "Tønsberg"),
    ("3202", "Sandefjord"),
    ("4006", "Stavanger"),
    ("4611", "Kristiansand"),
    ("5003", "Bergen"),
    ("5259", "Hjellestad"),
    ("6002", "Ålesund"),
    ("7010", "Trondheim"),
    ("7491", "Trondheim"),
    ("8006", "Bodø"),
    ("9008", "Tromsø"),
    ("9600", "Hammerfest"),
]
_NL_PLACES = [
    ("1012 JS", "Amsterdam"),
    ("1017 CE", "Amsterdam"),
    ("1071 XX", "Amsterdam"),
    ("2011 RM", "Haarlem"),
    ("2311 EZ", "Leiden"),
    ("2511 CV", "Den Haag"),
    ("3011 AD", "Rotterdam"),
    ("3511 LX", "Utrecht"),
    ("3811 BK", "Amersfoort"),
    ("5611 AB", "Eindhoven"),
    ("6211 LD", "Maastricht"),
    ("6511 JA", "Nijmegen"),
    ("7511 JE", "Enschede"),
    ("8011 CW", "Zwolle"),
    ("9711 LM", "Groningen"),
    ("4811 XX", "Breda"),
    ("5211 CS", "'s-Hertogenbosch"),
]
_NO_STREETS = [
    "Storgata",
    "Kirkegata",
    "Dronningens gate",
    "Kongens gate",
    "Strandveien",
    "Industriveien",
    "Parkveien",
    "Sjøgata",
    "Fjordveien",
    "Bryggen",
    "Markveien",
    "Tollbugata",
    "Nedre Slottsgate",
    "Øvre Vollgate",
    "Havnegata",
    "Løkkeveien",
]
_NL_STREETS = [
    "Kerkstraat",
    "Hoofdstraat",
    "Stationsweg",
    "Dorpsstraat",
    "Molenweg",
    "Herengracht",
    "Keizersgracht",
    "Prinsengracht",
    "Marktplein",
    "Julianalaan",
    "Beatrixstraat",
    "Industrieweg",
    "Havenstraat",
    "Nieuwe Binnenweg",
]
_NO_NAME_A = [
    "Nord",
    "Fjord",
    "Vest",
    "Øst",
    "Sør",
    "Fjell",
    "Polar",
    "Aurora",
    "Viking",
    "Berg",
    "Havørn",
    "Lysne",
    "Solberg",
    "Bjørke",
    "Tinde",
    "Skog",
    "Kyst",
    "Midnatt",
    "Hav",
    "Elv",
]
_NO_NAME_B = [
    "Bygg",
    "Regnskap",
    "Data",
    "Consult",
    "Elektro",
    "Transport",
    "Eiendom",
    "Marin",
    "Rør",
    "Maskin",
    "Design",
    "Invest",
    "Handel",
    "Teknikk",
    "Fisk",
    "Energi",
    "Media",
    "Revisjon",
]
_NO_SUFFIX = ["AS", "AS", "AS", "AS", "ASA", "ANS", "DA"]
_NL_NAME_A = [
    "Oranje",
    "Delta",
    "Polder",
    "Tulp",
    "Molen",
    "Dijk",
    "Zuider",
    "Noorder",
    "Rijn",
    "Maas",
    "Hollandse",
    "Gouden",
    "Groene",
    "Lage Landen",
    "Zeeuwse",
]
_NL_NAME_B = [
    "Bouw",
    "Techniek",
    "Logistiek",
    "Advies",
    "Installatie",
    "Handel",
    "Media",
    "Software",
    "Vastgoed",
    "Transport",
    "Accountants",
    "Energie",
    "Design",
    "Metaal",
]
_NL_SUFFIX = ["B.V.", "B.V.", "B.V.", "B.V.", "N.V.", "V.O.F."]

_NO_FIRST = [
    "Ola",
    "Kari",
    "Lars",
    "Ingrid",
    "Ole",
    "Anne",
    "Per",
    "Marit",
    "Jon",
    "Siri",
    "Bjørn",
    "Solveig",
    "Knut",
    "Hilde",
    "Espen",
    "Ragnhild",
    "Håkon",
    "Åse",
    "Magnus",
    "Nora",
    "Sindre",
    "Ingvild",
    "Øyvind",
    "Tone",
    "Eirik",
    "Liv",
]
_NO_LAST = [
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Johnsen",
    "Pettersen",
    "Eriksen",
    "Berg",
    "Haugen",
    "Hagen",
    "Johannessen",
    "Andreassen",
    "Jacobsen",
    "Dahl",
    "Jørgensen",
    "Halvorsen",
    "Lund",
    "Solberg",
    "Bakken",
    "Strøm",
    "Økland",
    "Aasen",
]
_NL_FIRST = [
    "Jan",
    "Sanne",
    "Pieter",
    "Lotte",
    "Daan",
    "Emma",
    "Bram",
    "Fleur",
    "Joost",
    "Anouk",
    "Sem",
    "Julia",
    "Thijs",
    "Eva",
    "Ruud",
    "Marieke",
    "Kees",
    "Femke",
    "Willem",
    "Noor",
    "Maarten",
    "Iris",
]
_NL_LAST = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "van der Meer",
]
_NO_TITLES = [
    "Daglig leder",
    "Økonomisjef",
    "Regnskapsfører",
    "Salgssjef",
    "Innkjøper",
    "Prosjektleder",
    "Kundeansvarlig",
    "IT-ansvarlig",
    "Styreleder",
    "Markedssjef",
]
_NL_TITLES = [
    "Directeur",
    "Financieel manager",
    "Boekhouder",
    "Verkoopmanager",
    "Inkoper",
    "Projectleider",
    "Accountmanager",
    "IT-manager",
    "Office manager",
]
_PERSONAL_DOMAINS = {
    "NO": ["gmail.com", "online.no", "hotmail.com", "outlook.com", "icloud.com"],
    "NL": ["gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"],
}
_PRODUCTS = [
    ("Konsulenttime", "Consulting hour", "hour", 950, 1450),
    ("Timepris senior", "Senior consultant hour", "hour", 1250, 1850),
    (
        "Lisens Standard",
        "Software licence, standard edition, per user and month",
        "month",
        149,
        399,
    ),
    ("Lisens Pro", "Software licence, professional edition, per user and month", "month", 299, 799),
    ("Serviceavtale", "Service agreement, yearly", "year", 4900, 14900),
    ("Kabel CAT6", "Network cable CAT6, per metre", "m", 8, 25),
    ("Stikkontakt", "Wall socket, double, white", "pcs", 45, 189),
    ("Rørkobling 22mm", "Pipe coupling 22 mm, brass", "pcs", 19, 79),
    ("Opplæring", "Training session, half day", "session", 3500, 9500),
    ("Reisekostnad", "Travel cost, per km", "km", 3, 6),
    ("Bærbar PC", "Laptop 14 inch, 16 GB", "pcs", 7900, 14900),
    ("Skjerm 27", "Monitor 27 inch", "pcs", 1900, 4200),
    ("Installasjon", "Installation work, per hour", "hour", 650, 1100),
    ("Hosting", "Managed hosting, per month", "month", 390, 1290),
]


def no_org_check_digit(first8: str) -> int | None:
    """The mod-11 check digit of a Norwegian organisation number (None: no valid digit)."""
    remainder = sum(int(d) * w for d, w in zip(first8, _NO_WEIGHTS, strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def valid_no_org_no(org_no: str) -> bool:
    """True when ``org_no`` is nine digits with a valid check digit."""
    if not re.fullmatch(r"\d{9}", org_no):
        return False
    return no_org_check_digit(org_no[:8]) == int(org_no[8])


def _no_org_no(rng: random.Random) -> str:
    while True:
        first8 = str(rng.choice((8, 9))) + "".join(str(rng.randrange(10)) for _ in range(7))
        check = no_org_check_digit(first8)
        if check is not None:
            return f"{first8}{check}"


def _nl_kvk(rng: random.Random) -> str:
    return str(rng.randrange(10_000_000, 100_000_000))


def _slug(text: str) -> str:
    text = text.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "", text)


def _country(country: str) -> str:
    code = country.upper()
    if code not in ("NO", "NL"):
        raise ValueError(f"country must be 'NO' or 'NL', not {country!r}")
    return code


def _phone(rng: random.Random, country: str, mobile: bool = False) -> str:
    if country == "NO":
        first = rng.choice("49") if mobile else rng.choice("2357")
        digits = first + "".join(str(rng.randrange(10)) for _ in range(7))
        if mobile:
            return f"+47 {digits[:3]} {digits[3:5]} {digits[5:]}"
        return f"+47 {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    if mobile:
        digits = "".join(str(rng.randrange(10)) for _ in range(8))
        return f"+31 6 {digits}"
    area = rng.choice(("20", "10", "30", "40", "50", "70"))
    digits = "".join(str(rng.randrange(10)) for _ in range(7))
    return f"+31 {area} {digits[:3]} {digits[3:]}"


def companies(count: int, rng: random.Random, country: str = "NO") -> list[dict[str, Any]]:
    """``count`` companies of ``country`` ("NO" or "NL"), unique names, org numbers and
    e-mail addresses within the list."""
    country = _country(country)
    result: list[dict[str, Any]] = []
    names: set[str] = set()
    numbers: set[str] = set()
    domains: set[str] = set()
    for _ in range(count):
        if country == "NO":
            parts, seconds, suffixes = _NO_NAME_A, _NO_NAME_B, _NO_SUFFIX
        else:
            parts, seconds, suffixes = _NL_NAME_A, _NL_NAME_B, _NL_SUFFIX
        base = f"{rng.choice(parts)} {rng.choice(seconds)}"
        name = f"{base} {rng.choice(suffixes)}"
        serial = 2
        while name in names:
            name = f"{base} {serial} {rng.choice(suffixes)}"
            serial += 1
        names.add(name)
        while True:
            org_no = _no_org_no(rng) if country == "NO" else _nl_kvk(rng)
            if org_no not in numbers:
                numbers.add(org_no)
                break
        if country == "NO":
            vat = f"NO{org_no}MVA"
            zip_code, city = rng.choice(_NO_PLACES)
            street = rng.choice(_NO_STREETS)
            tld = "no"
        else:
            vat = f"NL{rng.randrange(100_000_000, 1_000_000_000)}B{rng.randrange(1, 100):02d}"
            zip_code, city = rng.choice(_NL_PLACES)
            street = rng.choice(_NL_STREETS)
            tld = "nl"
        domain = f"{_slug(base)}.{tld}"
        number = 2
        while domain in domains:
            domain = f"{_slug(base)}{number}.{tld}"
            number += 1
        domains.add(domain)
        mailbox = rng.choice(("post", "info", "kontakt" if country == "NO" else "contact"))
        result.append(
            {
                "name": name,
                "org_no": org_no,
                "vat_number": vat,
                "email": f"{mailbox}@{domain}",
                "phone": _phone(rng, country),
                "website": f"https://www.{domain}",
                "address": f"{street} {rng.randrange(1, 120)}",
                "zip_code": zip_code,
                "city": city,
                "country": country,
            }
        )
    return result


def persons(
    count: int,
    rng: random.Random,
    country: str = "NO",
    companies: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``count`` persons of ``country``; with ``companies``, each works at one of them
    (``company_index``) and has an address at the company's domain."""
    country = _country(country)
    first_names, last_names = (_NO_FIRST, _NO_LAST) if country == "NO" else (_NL_FIRST, _NL_LAST)
    titles = _NO_TITLES if country == "NO" else _NL_TITLES
    result: list[dict[str, Any]] = []
    emails: set[str] = set()
    for _ in range(count):
        first, last = rng.choice(first_names), rng.choice(last_names)
        company_index: int | None = rng.randrange(len(companies)) if companies else None
        if company_index is not None and companies is not None:
            domain = str(companies[company_index]["email"]).split("@", 1)[1]
        else:
            domain = rng.choice(_PERSONAL_DOMAINS[country])
        local = f"{_slug(first)}.{_slug(last)}"
        email = f"{local}@{domain}"
        serial = 2
        while email in emails:
            email = f"{local}{serial}@{domain}"
            serial += 1
        emails.add(email)
        result.append(
            {
                "first_name": first,
                "last_name": last,
                "email": email,
                "phone": _phone(rng, country),
                "mobile": _phone(rng, country, mobile=True),
                "title": rng.choice(titles),
                "company_index": company_index,
            }
        )
    return result


def products(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` products with unique codes; prices are Decimals with two decimals and the
    cost below the price."""
    result: list[dict[str, Any]] = []
    for index in range(count):
        name, description, unit, low, high = _PRODUCTS[index % len(_PRODUCTS)]
        if index >= len(_PRODUCTS):
            name = f"{name} {index // len(_PRODUCTS) + 1}"
        price = Decimal(rng.randrange(low * 100, high * 100 + 1)) / 100
        margin = Decimal(rng.randrange(35, 80)) / 100
        cost = (price * margin).quantize(Decimal("0.01"))
        result.append(
            {
                "code": f"P{1000 + index}",
                "name": name,
                "description": f"{description} ({unit})",
                "unit_price": price.quantize(Decimal("0.01")),
                "unit_cost": cost,
            }
        )
    return result


def overlap(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    share: float,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """Make ``share`` (0..1) of the records in ``b`` copy ``org_no`` and ``email`` (and the
    VAT number that goes with the org number) of distinct records in ``a``, in place.

    Returns the ``(index in a, index in b)`` pairs that now match, so tests know which
    records the merge criteria should pair up.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, not {share!r}")
    wanted = min(round(len(b) * share), len(a))
    pairs = list(
        zip(rng.sample(range(len(a)), wanted), rng.sample(range(len(b)), wanted), strict=True)
    )
    for ia, ib in pairs:
        source, target = a[ia], b[ib]
        for key in ("org_no", "vat_number", "email"):
            if key in source and key in target:
                target[key] = source[key]
    return sorted(pairs, key=lambda pair: pair[1])
