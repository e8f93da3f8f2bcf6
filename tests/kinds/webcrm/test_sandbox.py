"""The WebCRM sandbox over plain HTTP: the shapes and rules the connector relies on."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN, WebCrmSandbox
from samband.sandbox.registry import create_sandbox
from tests.support.webcrm import serve


@pytest.fixture
def box() -> WebCrmSandbox:
    sandbox = WebCrmSandbox()
    sandbox.seed(5, rng_seed=1)
    return sandbox


@pytest.fixture
def http(box: WebCrmSandbox) -> Iterator[httpx.Client]:
    server = serve(box)
    try:
        with httpx.Client(base_url=server.url) as client:
            answer = client.post("/Auth/ApiLogin", data={"authCode": SANDBOX_API_TOKEN}).json()
            client.headers["Authorization"] = f"Bearer {answer['AccessToken']}"
            yield client
    finally:
        server.stop()


def test_registry_builds_it() -> None:
    assert isinstance(create_sandbox("webcrm"), WebCrmSandbox)


def test_seed_is_deterministic() -> None:
    a, b = WebCrmSandbox(), WebCrmSandbox()
    a.seed(4, 9)
    b.seed(4, 9)
    names = [r["OrganisationName"] for r in a.records("Organisations").values()]
    assert names == [r["OrganisationName"] for r in b.records("Organisations").values()]
    assert len(names) == 4 and len(a.records("Persons")) == 4 and len(a.records("Products")) == 4
    for person in a.records("Persons").values():
        assert person["PersonOrganisationId"] in a.records("Organisations")


def test_login_shapes(box: WebCrmSandbox, http: httpx.Client) -> None:
    good = http.post("/Auth/ApiLogin", headers={"authCode": SANDBOX_API_TOKEN})
    body = good.json()
    assert good.status_code == 200 and body["IsError"] is False
    assert body["ExpiresIn"] == 3600 and body["TokenType"] == "Bearer"
    bad = http.post("/Auth/ApiLogin", data={"authCode": "wrong"})
    assert bad.status_code == 200
    assert bad.json()["IsError"] is True and bad.json()["ErrorDescription"]
    # the refresh token goes in a header: in the form body it is not seen
    in_form = http.post("/Auth/ApiRefresh", data={"refreshToken": body["RefreshToken"]})
    assert in_form.json()["IsError"] is True
    refreshed = http.post("/Auth/ApiRefresh", headers={"refreshToken": body["RefreshToken"]})
    assert refreshed.json()["AccessToken"]
    again = http.post("/Auth/ApiRefresh", headers={"refreshToken": body["RefreshToken"]})
    assert again.json()["IsError"] is True  # a refresh token works once


def test_tokens_expire_on_the_sandbox_clock(box: WebCrmSandbox, http: httpx.Client) -> None:
    assert http.get("/Organisations").status_code == 200
    box.clock.advance(3600)
    denied = http.get("/Organisations")
    assert denied.status_code == 401 and "denied" in denied.json()["Message"]
    assert httpx.get(http.base_url.join("/Organisations")).status_code == 401


def test_paging_over_bare_arrays(http: httpx.Client) -> None:
    pages = [http.get("/Organisations", params={"Page": n, "Size": 2}).json() for n in (1, 2, 3)]
    assert [[r["OrganisationId"] for r in page] for page in pages] == [[1, 2], [3, 4], [5]]
    assert http.get("/Organisations", params={"Page": 4, "Size": 2}).json() == []
    assert http.get("/Organisations", params={"Size": 1001}).status_code == 400
    assert http.get("/organisations", params={"Size": 1}).status_code == 200  # any casing


def test_every_field_is_present_with_empty_dates(http: httpx.Client) -> None:
    person = http.get("/Persons/1").json()
    assert person["PersonBirthday"] == "0001-01-01T00:00:00+00:00"
    assert person["PersonName"] == f"{person['PersonFirstName']} {person['PersonLastName']}"
    assert person["PersonUpdatedAt"].endswith("+00:00")


def test_find_by_update_dates_is_half_open(box: WebCrmSandbox, http: httpx.Client) -> None:
    box.clock.advance(100)
    edited = box.edit("Organisations", 3, {"OrganisationCity": "Molde"})
    when = edited["OrganisationUpdatedAt"]

    def window(start: str, end: str) -> list[int]:
        path = f"/Organisations/FindByUpdateDates/{quote(start, safe='')}/{quote(end, safe='')}"
        return [r["OrganisationId"] for r in http.get(path).json()]

    assert window(when, "9999-12-31T00:00:00+00:00") == [3]
    assert window("2000-01-01T00:00:00+00:00", when) == [1, 2, 4, 5]


def test_queries_take_only_the_updated_at_form(box: WebCrmSandbox, http: httpx.Client) -> None:
    box.clock.advance(100)
    when = box.edit("Persons", 2, {"PersonTitle": "CEO"})["PersonUpdatedAt"]
    script = f"SELECT * FROM Person WHERE PersonUpdatedAt >= '{when}'"
    rows = http.get("/Queries", params={"script": script, "Page": 1, "Size": 10}).json()
    assert [r["PersonId"] for r in rows] == [2]
    for bad in (
        "SELECT * FROM Person",
        "SELECT * FROM Person WHERE PersonEmail >= 'a'",
        "DELETE FROM Person WHERE PersonUpdatedAt >= '2020-01-01'",
        f"SELECT * FROM Person WHERE PersonUpdatedAt >= '{when}' OR 1=1",
        "SELECT * FROM Nothing WHERE NothingUpdatedAt >= '2020-01-01'",
    ):
        refused = http.get("/Queries", params={"script": bad})
        assert refused.status_code == 400 and refused.json()["Message"], bad


def test_post_answers_the_id_and_put_replaces(box: WebCrmSandbox, http: httpx.Client) -> None:
    created = http.post(
        "/Persons",
        json={"PersonFirstName": "Ola", "PersonLastName": "N", "PersonOrganisationId": 1},
    )
    new_id = created.json()
    assert isinstance(new_id, int)
    put = http.put(f"/Persons/{new_id}", json={"PersonLastName": "Nordmann"})
    assert put.status_code == 200 and put.content == b""
    after = box.records("Persons")[new_id]
    assert after["PersonLastName"] == "Nordmann" and after["PersonFirstName"] == ""
    # …except the organisation, which the API cannot change
    assert after["PersonOrganisationId"] == 1
    moved = http.put(f"/Persons/{new_id}", json={"PersonLastName": "N", "PersonOrganisationId": 2})
    assert moved.status_code == 400 and "PersonOrganisationId" in moved.json()["Message"]
    nameless = http.put(f"/Persons/{new_id}", json={"PersonLastName": " "})
    assert nameless.status_code == 400 and "PersonLastName" in nameless.json()["Message"]


def test_validation_errors(http: httpx.Client) -> None:
    too_long = http.post("/Organisations", json={"OrganisationName": "x" * 201})
    assert too_long.status_code == 400
    assert "OrganisationName" in too_long.json()["Message"]
    assert too_long.json()["Type"] == "ValidationException"
    phone = http.put(
        "/Organisations/1", json={"OrganisationName": "A", "OrganisationTelephone": "1" * 51}
    )
    assert phone.status_code == 400
    assert http.post("/Organisations", json={"OrganisationCity": "Oslo"}).status_code == 400
    missing_parent = http.post("/Persons", json={"PersonOrganisationId": 999})
    assert missing_parent.status_code == 400


def test_delete_only_where_the_api_has_it(box: WebCrmSandbox, http: httpx.Client) -> None:
    assert http.delete("/Organisations/1").status_code == 405
    assert http.delete("/Persons/1").status_code == 405
    assert http.delete("/Products/1").status_code == 200
    assert http.get("/Products/1").status_code == 404
    assert 1 in box.records("Organisations")


def test_bulk_patch_upserts(box: WebCrmSandbox, http: httpx.Client) -> None:
    answer = http.patch(
        "/Organisations",
        json=[
            {"OrganisationName": "Ny AS"},
            {"OrganisationId": 2, "OrganisationCity": "Bodø"},
            {"OrganisationName": "x" * 201},
            {"OrganisationId": 404, "OrganisationName": "Nobody"},
        ],
    ).json()
    assert answer[0] == "6" and answer[1] == "2"
    assert "maximum length of 200" in answer[2] and "not found" in answer[3]
    records = box.records("Organisations")
    assert records[6]["OrganisationName"] == "Ny AS"
    assert records[2]["OrganisationCity"] == "Bodø" and records[2]["OrganisationName"]


def test_sliding_minute_limit(box: WebCrmSandbox, http: httpx.Client) -> None:
    box.rate_limit = 2
    assert [http.get("/Users").status_code for _ in range(2)] == [200, 200]
    limited = http.get("/Users")
    assert limited.status_code == 429
    body = limited.json()
    assert body["Type"] == "TooManyRequestsException" and body["Message"]
    assert body["RetryAfterSeconds"] == int(limited.headers["Retry-After"]) == 60
    box.clock.advance(60)
    assert http.get("/Users").status_code == 200


def test_fault_injection_uses_the_webcrm_error_shape(
    box: WebCrmSandbox, http: httpx.Client
) -> None:
    box.faults.update(error_rate=1.0)
    failed = http.get("/Users")
    assert failed.status_code == 503 and failed.json()["Message"] == "Service Unavailable"


@pytest.mark.parametrize("entity", ["Persons", "Products", "QuotationLines", "Opportunities"])
def test_find_by_update_dates_exists_for_organisations_only(
    http: httpx.Client, entity: str
) -> None:
    start, end = quote("2000-01-01T00:00:00+00:00", safe=""), quote("9999-01-01", safe="")
    assert http.get(f"/{entity}/FindByUpdateDates/{start}/{end}").status_code == 404
    assert http.get(f"/Organisations/FindByUpdateDates/{start}/{end}").status_code == 200


def test_unknown_fields_and_long_custom_values_are_refused(http: httpx.Client) -> None:
    # Persons have PersonCustom1–15, no ExtraCustom; Organisations ExtraCustom1–8 (≤ 50)
    person = {"PersonFirstName": "Kari", "PersonLastName": "Berg", "PersonExtraCustom10": "po:1"}
    assert http.post("/Persons", json=person).status_code == 400
    person = {"PersonFirstName": "K", "PersonLastName": "Berg", "PersonCustom1": "po:1"}
    assert http.post("/Persons", json=person).is_success
    org = {"OrganisationName": "Acme", "OrganisationExtraCustom10": "po:1"}
    assert http.post("/Organisations", json=org).status_code == 400
    org = {"OrganisationName": "Acme", "OrganisationExtraCustom8": "x" * 51}
    assert http.post("/Organisations", json=org).status_code == 400
    org["OrganisationExtraCustom8"] = "x" * 50
    assert http.post("/Organisations", json=org).is_success


@pytest.mark.parametrize(
    ("field", "longest"),
    [
        ("OrganisationCity", 50),
        ("OrganisationCountry", 50),
        ("OrganisationWww", 50),
        ("OrganisationAddress", 250),
    ],
)
def test_organisation_field_lengths_follow_the_swagger(
    http: httpx.Client, field: str, longest: int
) -> None:
    org = {"OrganisationName": "Acme", field: "x" * (longest + 1)}
    answer = http.post("/Organisations", json=org)
    assert answer.status_code == 400 and field in answer.json()["Message"]
    org[field] = "x" * longest
    assert http.post("/Organisations", json=org).is_success
