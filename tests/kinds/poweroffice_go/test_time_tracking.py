"""Seed 003's Projectactivity and Timetrackingactivity on the v2 time-tracking catalogue
``/TimeTracking/ActivityTime``, and a sandbox that refuses v1's routes and fields."""

from __future__ import annotations

from typing import Any

import pytest

from samband.config.model import SystemConfig
from samband.errors import NotFound, RecordError
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.sandbox._base import SandboxServer
from tests.support.poweroffice import KEYS

ACTIVITY_TYPES = ("Projectactivity", "Timetrackingactivity")


@pytest.fixture
def box() -> PowerOfficeSandbox:
    sandbox = PowerOfficeSandbox(rate_limit=1000)
    sandbox.seed(6, 7)
    sandbox.clock.advance(60)
    sandbox.recording = True
    return sandbox


def make(server: SandboxServer, **settings: Any) -> PowerOfficeConnector:
    config = SystemConfig.model_validate(
        {"kind": "poweroffice-go", "base_url": f"{server.url}/v2", "rate_limit": 1000, **settings}
    )
    return PowerOfficeConnector("po", config, KEYS)


def read_ids(connector: PowerOfficeConnector, name: str) -> set[str]:
    return {r.id for page in connector.read(name, None) for r in page.records}


@pytest.mark.parametrize("name", ACTIVITY_TYPES)
def test_activities_are_read_from_the_v2_time_tracking_catalogue(
    server: SandboxServer, box: PowerOfficeSandbox, name: str
) -> None:
    archived = next(iter(box.records("ActivityTime")))
    box.edit("ActivityTime", archived, {"IsActive": False})
    ids = read_ids(make(server), name)
    assert ids == {str(i) for i in box.records("ActivityTime")}
    # an archived activity is read too, so that a full scan does not take it for deleted
    assert str(archived) in ids
    calls = [e for e in box.log if e.method == "GET" and e.path.startswith("/v2/")]
    assert calls and all(e.path == "/v2/TimeTracking/ActivityTime" for e in calls)
    assert all(e.params["includeInactive"] == "true" for e in calls)


def test_the_sandbox_hides_inactive_activities_unless_asked(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    archived = next(iter(box.records("ActivityTime")))
    box.edit("ActivityTime", archived, {"IsActive": False})
    po = make(server)
    listed = po.http.request("GET", "/TimeTracking/ActivityTime").json()
    assert archived not in {item["Id"] for item in listed}


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("Projectactivity", "/ProjectActivities"),
        ("Timetrackingactivity", "/TimeTrackingActivities"),
    ],
)
def test_v1_routes_do_not_exist_in_v2(server: SandboxServer, name: str, path: str) -> None:
    with pytest.raises(NotFound):
        make(server).http.request("GET", path)
    # the old configured paths fail instead of reading an invented collection
    with pytest.raises(NotFound):
        read_ids(make(server, entity_types={name: {"path": path}}), name)


@pytest.mark.parametrize(
    "v1_field", ["Code", "HourlyRate", "ProductCode", "ActivityCode", "ProjectCode", "IsBillable"]
)
def test_v1_fields_are_refused_by_the_sandbox_and_absent_from_the_schema(
    server: SandboxServer, v1_field: str
) -> None:
    po = make(server)
    for name in ACTIVITY_TYPES:
        assert po.entity_type(name).property(v1_field) is None
    response = po.http.request(
        "POST",
        "/TimeTracking/ActivityTime",
        json={"Name": "Rådgivning", v1_field: "A100"},
        ok=lambda r: True,
    )
    assert response.status_code == 400
    response = po.http.request(
        "GET",
        "/TimeTracking/ActivityTime",
        params={"Fields": f"Id,{v1_field}"},
        ok=lambda r: True,
    )
    assert response.status_code == 400


def test_a_project_activity_is_created_updated_and_archived(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    po = make(server)
    project = next(iter(box.records("Projects")))
    created = po.create("Projectactivity", {"name": "Kundemøte", "ProjectId": str(project)})
    stored = box.records("ActivityTime")[int(created.id)]
    assert stored["Name"] == "Kundemøte" and stored["ProjectId"] == project
    assert stored["IsActive"] is True
    po.update("Projectactivity", created.id, {"Name": "Workshop"})
    po.update("Projectactivity", created.id, {"IsActive": False})
    stored = box.records("ActivityTime")[int(created.id)]
    assert (stored["Name"], stored["IsActive"]) == ("Workshop", False)
    assert created.id in read_ids(po, "Projectactivity")
    patches = [e for e in box.log if e.method == "PATCH"]
    assert patches and all(e.path.startswith("/v2/TimeTracking/ActivityTime/") for e in patches)


def test_an_activity_needs_a_name_and_a_known_project(
    server: SandboxServer, box: PowerOfficeSandbox
) -> None:
    po = make(server)
    with pytest.raises(RecordError):
        po.create("Timetrackingactivity", {"IsActive": True})
    with pytest.raises((RecordError, NotFound)):
        po.create("Projectactivity", {"Name": "Reise", "ProjectId": "987654321"})
    assert all(r["Name"] for r in box.records("ActivityTime").values())
