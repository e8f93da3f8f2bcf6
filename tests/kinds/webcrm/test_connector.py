"""The WebCRM connector against the WebCRM sandbox, in-process over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from samband.config.model import SystemConfig
from samband.config.validate import validate_file
from samband.connectors._http import _limiters
from samband.errors import AuthError, ContractError, RecordError, TransientError
from samband.kinds.webcrm.connector import EMPTY_DATE, WebCrmConnector, parse_timestamp
from samband.kinds.webcrm.sandbox import WebCrmSandbox
from samband.types import DataType
from tests.support.webcrm import connector, serve

ARCHIVE = {"archive_status": {"property": "OrganisationStatus", "value": "Inactive"}}


@pytest.fixture
def box() -> WebCrmSandbox:
    sandbox = WebCrmSandbox()
    sandbox.seed(7, rng_seed=3)
    return sandbox


@pytest.fixture
def url(box: WebCrmSandbox) -> Iterator[str]:
    server = serve(box)
    try:
        yield server.url
    finally:
        server.stop()


def ids(pages: Any) -> list[str]:
    return [record.id for page in pages for record in page.records]


# -- schema --------------------------------------------------------------------------


def test_describe_is_offline_and_declares_the_schema() -> None:
    config = SystemConfig(
        kind="webcrm",
        entity_types={
            "Organisations": {**ARCHIVE, "external_ref": "OrganisationExtraCustom1"},
            "Products": {"incremental": False},
        },
    )
    types = WebCrmConnector.describe(config)
    assert set(types) == {
        "Organisations",
        "Persons",
        "Products",
        "Quotationline",
        "Opportunities",
        "Users",
    }
    orgs, persons = types["Organisations"], types["Persons"]
    assert (orgs.id_field, orgs.modified_field) == ("OrganisationId", "OrganisationUpdatedAt")
    assert orgs.properties["OrganisationName"].max_length == 200
    assert orgs.properties["OrganisationTelephone"].max_length == 50
    assert orgs.archive == ("OrganisationStatus", "Inactive")
    assert orgs.external_ref_field == "OrganisationExtraCustom1"
    assert not orgs.can_delete and not persons.can_delete
    assert persons.archive is None
    ref = persons.properties["PersonOrganisationId"]
    assert (ref.type, ref.references) == (DataType.REFERENCE, "Organisations")
    assert types["Quotationline"].id_field == "QuotationLineId"
    assert types["Products"].can_delete and not types["Products"].incremental
    assert not types["Users"].read_only and not types["Users"].incremental
    assert not types["Users"].can_delete
    assert types["Persons"].canonical("personemail") == "PersonEmail"


def test_calls_share_one_limiter_of_250_per_minute_per_token(url: str) -> None:
    a = connector(url, token="token-a", rate_limit=250)
    b = connector(url, token="token-a", rate_limit=250)
    c = connector(url, token="token-b", rate_limit=250)
    assert a.http.limiter is b.http.limiter is a._auth_http.limiter
    assert a.http.limiter is not c.http.limiter
    # the limiter registry is keyed by a digest, never by the token itself
    assert not [key for scope, key in _limiters if "token-a" in key]
    assert (a.http.limiter.calls, a.http.limiter.period) == (250, 60.0)


# -- auth ----------------------------------------------------------------------------


def test_login_reads_every_page(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url, page_size=3)
    pages = list(crm.read("Organisations", None))
    assert ids(pages) == [str(n) for n in range(1, 8)]
    assert [len(page.records) for page in pages] == [3, 3, 1]
    # only the last page carries the cursor: the newest UpdatedAt minus the overlap
    assert [page.cursor is None for page in pages] == [True, True, False]
    newest = max(
        parse_timestamp(r["OrganisationUpdatedAt"]) for r in box.records("Organisations").values()
    )
    assert parse_timestamp(pages[-1].cursor) == newest - timedelta(seconds=5)
    assert box.logins == 1
    assert crm.stats.api_calls == 4  # login + three pages


def test_exact_multiple_of_the_page_size_stops_on_the_empty_page(url: str) -> None:
    crm = connector(url, page_size=7)
    pages = list(crm.read("Organisations", None))
    assert [len(page.records) for page in pages] == [7, 0]
    assert pages[-1].cursor is not None


def test_a_refused_token_is_an_auth_error_without_the_token(url: str) -> None:
    crm = connector(url, token="not-the-right-token-1234")
    with pytest.raises(AuthError) as caught:
        crm.check()
    message = str(caught.value)
    assert "IsError" in message and "authCode is not valid" in message
    assert "not-the-right-token-1234" not in message


def test_an_expired_token_is_refreshed_after_the_401(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    assert crm.get("Organisations", "1") is not None
    box.clock.advance(3601)  # the sandbox's token expires; the connector's clock did not move
    record = crm.get("Organisations", "2")
    assert record is not None and record.id == "2"
    assert (box.logins, box.refreshes) == (1, 1)


@pytest.mark.parametrize("failures", [2, 100])
def test_a_5xx_during_refresh_does_not_end_the_run(
    box: WebCrmSandbox, url: str, failures: int
) -> None:
    """A few 5xx are retried (transient); a refresh that keeps failing falls back to a
    new login instead of stopping the run."""
    sleeps: list[float] = []
    crm = connector(url, sleeps=sleeps)
    crm.check()
    box.quirks.refresh_error = failures
    box.clock.advance(3601)  # the access token expires: a 401, then a refresh
    record = crm.get("Organisations", "2")
    assert record is not None and record.id == "2"
    assert sleeps  # the 5xx were waited out, not given up on at once
    assert (box.logins, box.refreshes) == ((1, 1) if failures == 2 else (2, 0))


def test_login_again_when_the_refresh_token_is_refused(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    crm.check()
    box.clock.advance(3 * 24 * 3600)  # access and refresh tokens both expired
    assert crm.get("Organisations", "1") is not None
    assert (box.logins, box.refreshes) == (2, 0)


def test_tokens_are_renewed_before_they_expire_on_the_connectors_clock(
    box: WebCrmSandbox, url: str
) -> None:
    config = SystemConfig(kind="webcrm", base_url=url, rate_limit=0)
    crm = WebCrmConnector(
        "webcrm", config, {"api_token": next(iter(box.api_tokens))}, clock=box.clock.time
    )
    crm.check()
    box.clock.advance(3590)  # inside the last minute: renew without a 401 first
    crm.check()
    assert (box.logins, box.refreshes) == (1, 1)


# -- incremental reads ---------------------------------------------------------------


@pytest.mark.parametrize("changes", ["find_by_update_dates", "queries"])
def test_incremental_reads_see_edits(box: WebCrmSandbox, url: str, changes: str) -> None:
    crm = connector(url, changes=changes, page_size=2)
    first = list(crm.read("Organisations", None))
    cursor = first[-1].cursor
    box.clock.advance(60)
    box.edit("Organisations", 4, {"OrganisationTelephone": "+47 22 00 00 04"})
    second = list(crm.read("Organisations", cursor))
    # everything touched since the cursor (the first seven sit inside the overlap)
    assert "4" in ids(second)
    changed = {r.id: r for p in second for r in p.records}["4"]
    assert changed.data["OrganisationTelephone"] == "+47 22 00 00 04"
    cursor = second[-1].cursor
    assert parse_timestamp(cursor) == changed.modified - timedelta(seconds=5)
    box.clock.advance(60)
    box.edit("Organisations", 6, {"OrganisationCity": "Bergen"})
    third = list(crm.read("Organisations", cursor))
    assert sorted(ids(third)) == ["4", "6"]  # 4 again: it sits inside the overlap
    box.clock.advance(60)
    fourth = list(crm.read("Organisations", third[-1].cursor))
    assert ids(fourth) == ["6"]
    assert fourth[-1].cursor is None  # nothing newer: keep the cursor


def test_persons_are_read_in_full_without_find_by_update_dates(
    box: WebCrmSandbox, url: str
) -> None:
    """FindByUpdateDates exists for Organisations only: Persons are scanned in full on
    every run (the engine tells edits by content), never through a 404."""
    crm = connector(url, page_size=3)
    first = list(crm.read("Persons", None))
    cursor = first[-1].cursor
    assert cursor is not None
    box.clock.advance(60)
    box.edit("Persons", 2, {"PersonTitle": "CEO"})
    second = list(crm.read("Persons", cursor))
    assert sorted(ids(second), key=int) == [str(n) for n in range(1, 8)]
    edited = {r.id: r for p in second for r in p.records}["2"]
    assert edited.data["PersonTitle"] == "CEO"
    # with changes: queries, /Queries filters Persons too
    queried = list(connector(url, changes="queries").read("Persons", second[-1].cursor))
    assert ids(queried) == ["2"]


def test_users_are_read_in_full_every_time(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    first = list(crm.read("Users", None))
    assert ids(first) == ["1"] and first[-1].cursor is None
    assert ids(crm.read("Users", "2030-01-01T00:00:00+00:00")) == ["1"]


def test_empty_dates_and_missing_organisations_read_as_none(box: WebCrmSandbox, url: str) -> None:
    person = box.insert("Persons", {"PersonFirstName": "Ola", "PersonOrganisationId": 0})
    assert box.records("Persons")[person["PersonId"]]["PersonBirthday"] == EMPTY_DATE
    record = connector(url).get("Persons", str(person["PersonId"]))
    assert record is not None
    assert record.data["PersonBirthday"] is None
    assert record.data["PersonOrganisationId"] is None


# -- writes --------------------------------------------------------------------------


def test_create_update_and_archive(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url, types={"Organisations": ARCHIVE})
    org = crm.create(
        "Organisations",
        {"OrganisationName": "Fjord Data AS", "OrganisationTelephone": "+47 22 12 34 56"},
    )
    assert org.data["OrganisationName"] == "Fjord Data AS" and org.modified is not None
    person = crm.create(
        "Persons",
        {
            "PersonOrganisationId": org.id,
            "PersonFirstName": "Kari",
            "PersonLastName": "Nordmann",
            "PersonBirthday": date(1980, 5, 17),
            "PersonName": "ignored: WebCRM computes it",
        },
    )
    stored = box.records("Persons")[int(person.id)]
    assert stored["PersonOrganisationId"] == int(org.id)
    assert stored["PersonName"] == "Kari Nordmann"
    assert stored["PersonBirthday"].startswith("1980-05-17")
    assert person.data["PersonOrganisationId"] == int(org.id)

    assert crm.update("Organisations", org.id, {"OrganisationCity": "Bergen"}) is None
    after = box.records("Organisations")[int(org.id)]
    # a PUT replaces the whole record: the merge kept what was not changed
    assert after["OrganisationCity"] == "Bergen"
    assert after["OrganisationTelephone"] == "+47 22 12 34 56"
    assert after["OrganisationCreatedAt"] == org.data["OrganisationCreatedAt"]

    crm.update("Persons", person.id, {"PersonBirthday": None})
    cleared = box.records("Persons")[int(person.id)]
    assert cleared["PersonBirthday"] == EMPTY_DATE and cleared["PersonOrganisationId"] == int(
        org.id
    )

    crm.archive("Organisations", org.id)
    assert box.records("Organisations")[int(org.id)]["OrganisationStatus"] == "Inactive"


def test_a_persons_organisation_and_last_name_follow_webcrms_rules(
    box: WebCrmSandbox, url: str
) -> None:
    """WebCRM's own ERP integration: a last name is mandatory, and "we cannot change the
    organisation ID through the API" — refused before any write, with the reason."""
    crm = connector(url)
    with pytest.raises(RecordError, match="PersonLastName"):
        crm.create("Persons", {"PersonFirstName": "Ola"})
    person = crm.create("Persons", {"PersonLastName": "Nordmann", "PersonOrganisationId": "1"})
    with pytest.raises(RecordError, match="PersonLastName"):
        crm.update("Persons", person.id, {"PersonLastName": ""})
    writes = crm.stats.writes
    with pytest.raises(RecordError, match="does not let the API change PersonOrganisationId"):
        crm.update("Persons", person.id, {"PersonOrganisationId": "2"})
    with pytest.raises(RecordError, match="PersonOrganisationId"):
        crm.update("Persons", person.id, {"PersonOrganisationId": None})
    assert crm.stats.writes == writes
    assert box.records("Persons")[int(person.id)]["PersonOrganisationId"] == 1
    # the same organisation, or one given to a person who has none, is fine
    crm.update("Persons", person.id, {"PersonOrganisationId": "1", "PersonTitle": "CEO"})
    loose = crm.create("Persons", {"PersonLastName": "Berg"})
    crm.update("Persons", loose.id, {"PersonOrganisationId": "2"})
    assert box.records("Persons")[int(loose.id)]["PersonOrganisationId"] == 2


def test_decimals_go_out_as_numbers(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    product = crm.create("Products", {"ProductComment": "Kabel", "ProductPrice": Decimal("12.50")})
    assert box.records("Products")[int(product.id)]["ProductPrice"] == 12.5


def test_organisations_cannot_be_deleted_products_can(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    crm.check()
    calls = crm.stats.api_calls
    with pytest.raises(RecordError, match="no DELETE for Organisations"):
        crm.delete("Organisations", "1")
    assert crm.stats.api_calls == calls and 1 in box.records("Organisations")
    crm.delete("Products", "2")
    assert 2 not in box.records("Products")
    assert crm.get("Products", "2") is None


def test_too_long_values_are_refused_before_any_call(url: str) -> None:
    crm = connector(url)
    with pytest.raises(RecordError, match="OrganisationName is 201 characters"):
        crm.create("Organisations", {"OrganisationName": "x" * 201})
    with pytest.raises(RecordError, match="OrganisationTelephone"):
        crm.update("Organisations", "1", {"OrganisationTelephone": "1" * 51})
    assert crm.stats.api_calls <= 2  # the update's GET (and its login) at most


def test_a_refusal_by_webcrm_is_a_record_error_naming_the_request(url: str) -> None:
    crm = connector(url)
    with pytest.raises(RecordError) as caught:
        crm.create(
            "Persons",
            {"PersonFirstName": "Ola", "PersonLastName": "Nordmann", "PersonOrganisationId": "999"},
        )
    assert "POST /Persons: 400" in str(caught.value)
    assert "Organisation 999 does not exist" in str(caught.value)


def test_find_by_external_ref(box: WebCrmSandbox, url: str) -> None:
    crm = connector(
        url, page_size=3, types={"Organisations": {"external_ref": "OrganisationExtraCustom1"}}
    )
    created = crm.create("Organisations", {"OrganisationName": "Ref AS"}, external_ref="po:C:42")
    quoted = crm.create("Organisations", {"OrganisationName": "Q AS"}, external_ref="po:C:'7")
    reads = crm.stats.reads
    found = crm.find_by_external_ref("Organisations", "po:C:42")
    assert found is not None and found.id == created.id
    assert crm.stats.reads - reads == 1  # one record asked for, not a scan of every page
    found = crm.find_by_external_ref("Organisations", "po:C:'7")
    assert found is not None and found.id == quoted.id
    assert crm.find_by_external_ref("Organisations", "po:C:43") is None
    assert crm.find_by_external_ref("Persons", "po:C:42") is None  # no field configured


# -- limits and bad answers -----------------------------------------------------------


def test_429_waits_for_retry_after_seconds(box: WebCrmSandbox, url: str) -> None:
    box.rate_limit = 3
    sleeps: list[float] = []
    crm = connector(url, sleeps=sleeps, box=box)
    got = [crm.get("Organisations", str(n)) for n in range(1, 6)]
    assert [record.id for record in got if record] == ["1", "2", "3", "4", "5"]
    assert box.throttled == 1 and crm.stats.throttled == 1
    # the sandbox said "wait 60 s" (its window is a minute); nothing less was tried
    assert sleeps == [60.0]


def test_injected_429_bursts_are_retried(box: WebCrmSandbox, url: str) -> None:
    sleeps: list[float] = []
    crm = connector(url, sleeps=sleeps, box=box)
    crm.check()
    box.faults.update(burst_429=2)
    assert len(ids(crm.read("Organisations", None))) == 7
    assert sleeps == [1.0, 1.0]


def test_html_pages_are_retried_then_reported(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url, sleeps=[], box=box)
    crm.check()
    box.faults.update(html_rate=1.0)
    with pytest.raises(TransientError) as caught:
        list(crm.read("Organisations", None))
    assert "GET /Organisations" in str(caught.value) and "HTML" in str(caught.value)
    box.faults.update(html_rate=0.0)
    assert len(ids(crm.read("Organisations", None))) == 7


def test_a_body_that_is_not_json_is_a_contract_error(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    crm.check()
    box.faults.update(non_json_rate=1.0)
    with pytest.raises(ContractError, match="GET /Organisations/3 answered 200 with a body"):
        crm.get("Organisations", "3")


def test_is_error_on_a_read_is_a_contract_error(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    crm.check()
    box.quirks.is_error = 1
    with pytest.raises(ContractError, match="GET /Organisations answered IsError"):
        list(crm.read("Organisations", None))


def test_is_error_on_a_write_quarantines_and_loses_nothing(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    box.quirks.is_error, box.quirks.is_error_method = 1, "PUT"
    with pytest.raises(RecordError, match="PUT /Organisations/2 answered 200 with IsError"):
        crm.update("Organisations", "2", {"OrganisationCity": "Molde"})
    assert box.records("Organisations")[2]["OrganisationCity"] != "Molde"
    crm.update("Organisations", "2", {"OrganisationCity": "Molde"})  # the engine's retry
    assert box.records("Organisations")[2]["OrganisationCity"] == "Molde"


def test_is_error_at_login_is_an_auth_error(box: WebCrmSandbox, url: str) -> None:
    box.quirks.is_error = 1
    with pytest.raises(AuthError, match="could not be processed"):
        connector(url).check()


@pytest.mark.parametrize("answers_id", [True, False])
def test_post_organisations_with_or_without_the_id_in_its_answer(
    box: WebCrmSandbox, url: str, answers_id: bool
) -> None:
    box.organisation_post_answers_id = answers_id
    twin = box.insert("Organisations", {"OrganisationName": "Twin AS"})
    crm = connector(url, page_size=3)
    sent = {"OrganisationName": "Twin AS", "OrganisationCity": "Oslo"}
    record = crm.create("Organisations", sent)
    assert record.id != str(twin["OrganisationId"])
    assert box.records("Organisations")[int(record.id)]["OrganisationCity"] == "Oslo"
    again = crm.create("Organisations", {"OrganisationName": "Twin AS"})
    assert int(again.id) > int(record.id) > twin["OrganisationId"]
    names = [r["OrganisationName"] for r in box.records("Organisations").values()]
    assert names.count("Twin AS") == 3


def test_a_create_answer_without_id_is_reported(
    box: WebCrmSandbox, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = connector(url)
    monkeypatch.setattr(crm, "_find_sent", lambda *args: None)  # not to be found
    box.quirks.missing_id = 1
    with pytest.raises(ContractError) as caught:
        crm.create("Organisations", {"OrganisationName": "Lost AS"})
    assert "POST /Organisations answered 200 without the new OrganisationId" in str(caught.value)
    assert "may have been created" in str(caught.value)


def test_a_create_answer_without_id_is_found_by_external_ref(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url, types={"Organisations": {"external_ref": "OrganisationExtraCustom1"}})
    box.quirks.missing_id = 1
    record = crm.create("Organisations", {"OrganisationName": "Found AS"}, external_ref="x:y:1")
    assert record.data["OrganisationName"] == "Found AS"
    names = [r["OrganisationName"] for r in box.records("Organisations").values()]
    assert names.count("Found AS") == 1


def test_a_record_without_its_id_is_a_contract_error(box: WebCrmSandbox, url: str) -> None:
    box.tables["Organisations"][99] = {"OrganisationName": "No id", "OrganisationId": 0}
    with pytest.raises(
        ContractError, match="GET /Organisations answered a record without OrganisationId"
    ):
        list(connector(url).read("Organisations", None))


def test_validate_refuses_propagate_and_needs_an_archive_status() -> None:
    from samband.config import parse_config
    from samband.config.validate import check

    text = """
systems:
  po: {kind: memory, entity_types: {Customers: {}}}
  webcrm:
    kind: webcrm
    credentials: {api_token: "${WEBCRM_API_TOKEN}"}
    entity_types:
      Persons: {archive_status: {property: PersonStatus, value: Resigned}}
dataflows:
  - {source: po.Customers, target: webcrm.Organisations, on_delete: propagate}
  - {source: po.Customers, target: webcrm.Organisations, on_delete: archive}
  - {source: po.Customers, target: webcrm.Persons, on_delete: archive}
  - {source: po.Customers, target: webcrm.Products, on_delete: propagate}
"""
    problems = [p for p in check(parse_config(text)) if p.severity == "error"]
    messages = [p.message for p in problems]
    assert any("cannot be deleted through the API" in m for m in messages)
    assert any("has no archive flag" in m for m in messages)
    assert len(problems) == 2, messages


@pytest.mark.parametrize("changes", ["find_by_update_dates", "queries"])
def test_every_entity_type_reads_in_full_and_by_changes(
    box: WebCrmSandbox, url: str, changes: str
) -> None:
    crm = connector(url, changes=changes)
    for name, etype in crm.entity_types().items():
        pages = list(crm.read(name, None))
        records = [r for page in pages for r in page.records]
        assert records, name
        assert all(r.id == str(r.data[etype.id_field]) for r in records)
        if not etype.incremental:
            assert pages[-1].cursor is None
            continue
        cursor = pages[-1].cursor
        assert cursor is not None, name
        box.clock.advance(60)
        first = records[0].id
        box.edit(name, int(first), {})  # touched: a new UpdatedAt, same content
        changed = list(crm.read(name, cursor))
        assert first in ids(changed), name
        box.clock.advance(60)
        later = ids(crm.read(name, changed[-1].cursor))
        if changes == "queries" or name == "Organisations":
            # the edited record is the newest: the only one inside the overlap
            assert later == [first], name
        else:  # no FindByUpdateDates for this type: a full scan every run
            assert later == [r.id for r in records], name
    quotation = crm.get("Quotationline", "1")
    assert quotation is not None and quotation.data["QuotationLineOpportunityId"] == 1


def test_bodies_cut_short_are_read_again(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    box.quirks.cut_body = 2
    assert len(ids(crm.read("Organisations", None))) == 7
    box.quirks.cut_body = 1
    record = crm.get("Organisations", "3")
    assert record is not None and record.id == "3"
    box.quirks.cut_body = 3
    with pytest.raises(ContractError, match="GET /Organisations/3 answered 200 with a body"):
        crm.get("Organisations", "3")


def test_an_id_that_points_at_another_record_is_not_taken(box: WebCrmSandbox, url: str) -> None:
    crm = connector(url)
    box.quirks.wrong_id = 1
    with pytest.raises(ContractError, match="answered 200 id 1, which is not the record sent"):
        crm.create("Organisations", {"OrganisationName": "Ny Kunde AS"})
    stamped = connector(url, types={"Organisations": {"external_ref": "OrganisationExtraCustom1"}})
    box.quirks.wrong_id = 1
    record = stamped.create("Organisations", {"OrganisationName": "Ny Kunde AS"}, "po:C:7")
    assert record.data["OrganisationExtraCustom1"] == "po:C:7" and record.id != "1"


def test_validate_refuses_an_external_ref_field_webcrm_does_not_have(tmp_path: Path) -> None:
    # the field a config written before the swagger check named (Persons have no ExtraCustom)
    config = tmp_path / "samband.yaml"
    config.write_text(
        "systems:\n"
        "  crm:\n"
        "    kind: webcrm\n"
        "    entity_types:\n"
        "      Persons: {external_ref: PersonExtraCustom1}\n"
        "dataflows: []\n",
        encoding="utf-8",
    )
    (problem,) = [p for p in validate_file(config) if p.severity == "error"]
    assert "PersonExtraCustom1" in problem.message and "PersonCustom1" in (problem.hint or "")
    assert problem.line == 2  # the system


def test_external_ref_fields_exist_and_the_ref_length_is_checked(
    box: WebCrmSandbox, url: str
) -> None:
    with pytest.raises(ContractError, match="PersonCustom1"):
        connector(url, types={"Persons": {"external_ref": "PersonExtraCustom10"}})
    with pytest.raises(ContractError, match="OrganisationExtraCustom8"):
        connector(url, types={"Organisations": {"external_ref": "OrganisationExtraCustom10"}})
    crm = connector(
        url,
        types={
            "Organisations": {"external_ref": "OrganisationExtraCustom1"},
            "Persons": {"external_ref": "PersonCustom1"},
        },
    )
    person = crm.create(
        "Persons",
        {"PersonFirstName": "Kari", "PersonLastName": "Berg"},
        external_ref="po:Contact:9",
    )
    assert box.records("Persons")[int(person.id)]["PersonCustom1"] == "po:Contact:9"
    before = len(box.records("Organisations"))
    with pytest.raises(RecordError, match="at most 50"):
        crm.create("Organisations", {"OrganisationName": "Acme"}, external_ref="p:" + "9" * 60)
    assert len(box.records("Organisations")) == before  # refused before any call


@pytest.mark.parametrize(
    ("field", "longest"),
    [
        ("OrganisationCity", 50),
        ("OrganisationCountry", 50),
        ("OrganisationWww", 50),
        ("OrganisationAddress", 250),
    ],
)
def test_too_long_organisation_fields_are_record_errors_before_a_call(
    box: WebCrmSandbox, url: str, field: str, longest: int
) -> None:
    crm = connector(url)
    before = box.records("Organisations")
    with pytest.raises(RecordError, match=f"at most {longest}"):
        crm.create("Organisations", {"OrganisationName": "Acme", field: "x" * (longest + 1)})
    with pytest.raises(RecordError, match=f"at most {longest}"):
        crm.update("Organisations", "1", {field: "x" * (longest + 1)})
    assert box.records("Organisations") == before  # nothing sent
    assert crm.create("Organisations", {"OrganisationName": "Acme", field: "x" * longest}).id
