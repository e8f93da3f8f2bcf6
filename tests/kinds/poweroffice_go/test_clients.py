"""The PowerOffice GO sandbox serves several client companies of one integrator: one
application key and one subscription key, a client key and its own data per client, and
one rate limit for the subscription key whatever the client."""

from __future__ import annotations

import base64

import httpx
import pytest

from samband.config.model import SystemConfig
from samband.errors import AuthError
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.sandbox._base import Clock, SandboxServer
from tests.support.poweroffice import KEYS, serve

OTHER = "client-key-of-another-company"


@pytest.fixture
def box() -> PowerOfficeSandbox:
    sandbox = PowerOfficeSandbox(rate_limit=1000)
    sandbox.add_client(OTHER)
    return sandbox


def connector(server: SandboxServer, client_key: str) -> PowerOfficeConnector:
    config = SystemConfig.model_validate(
        {"kind": "poweroffice-go", "base_url": f"{server.url}/v2", "rate_limit": 1000}
    )
    return PowerOfficeConnector("po", config, {**KEYS, "client_key": client_key})


def test_each_client_sees_and_changes_its_own_data_only(
    box: PowerOfficeSandbox, server: SandboxServer
) -> None:
    mine, theirs = connector(server, KEYS["client_key"]), connector(server, OTHER)
    try:
        created = mine.create("Customers", {"Name": "Mine AS", "OrganizationNumber": "911111111"})
        theirs.create("Customers", {"Name": "Theirs AS", "OrganizationNumber": "922222222"})
        with box.as_client(OTHER):
            box.insert("Customers", {"Name": "Typed in by their user"})
        assert sorted(r["Name"] for r in box.records("Customers").values()) == ["Mine AS"]
        assert sorted(r["Name"] for r in box.records("Customers", OTHER).values()) == [
            "Theirs AS",
            "Typed in by their user",
        ]
        read = [r for page in theirs.read("Customers", None) for r in page.records]
        assert sorted(r.data["Name"] for r in read) == ["Theirs AS", "Typed in by their user"]
        # each company numbers its own records: one id, two companies, two customers
        names = [c.get("Customers", created.id) for c in (mine, theirs)]
        assert [r.data["Name"] if r else None for r in names] == ["Mine AS", "Theirs AS"]
    finally:
        mine.close()
        theirs.close()


def test_a_client_key_the_sandbox_does_not_know_gets_no_token(server: SandboxServer) -> None:
    stranger = connector(server, "a-client-that-granted-nothing")
    try:
        with pytest.raises(AuthError):
            stranger.check()
    finally:
        stranger.close()


def test_the_rate_limit_counts_every_client_of_the_subscription_key() -> None:
    box = PowerOfficeSandbox(rate_limit=4, clock=Clock(speed=0.0))  # time stands still
    box.add_client(OTHER)
    running = serve(box)
    try:
        with httpx.Client(base_url=running.url) as http:
            tokens = [_token(http, key) for key in (KEYS["client_key"], OTHER)]
            answers = [
                http.get(
                    "/v2/Customers",
                    headers={
                        "Authorization": f"Bearer {tokens[i % 2]}",
                        "Ocp-Apim-Subscription-Key": KEYS["subscription_key"],
                    },
                ).status_code
                for i in range(3)
            ]
    finally:
        running.stop()
    # two token requests and two calls fill the second; the fifth call is one too many
    assert answers == [204, 204, 429]
    assert box.throttled == 1


def _token(http: httpx.Client, client_key: str) -> str:
    basic = base64.b64encode(f"{KEYS['application_key']}:{client_key}".encode()).decode()
    answer = http.post(
        "/OAuth/Token",
        data={"grant_type": "client_credentials"},
        headers={
            "Authorization": f"Basic {basic}",
            "Ocp-Apim-Subscription-Key": KEYS["subscription_key"],
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_a_client_is_added_over_http(box: PowerOfficeSandbox, server: SandboxServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/_sandbox/clients", json={}).status_code == 400
        added = http.post("/_sandbox/clients", json={"client_key": "a-third-company"})
        assert added.status_code == 201
        _token(http, "a-third-company")
    assert box.records("Customers", "a-third-company") == {}
