"""One recorded session against the PowerOffice GO sandbox, checked call by call.

The sandbox's request log shows: the token request, paging across pages with
``X-Pagination``, a JSON Patch update, the token renewed after the clock moved 20 minutes
(401 → new token → the same call again), the change filter, and a 429 retried after
``Retry-After``.
"""

from __future__ import annotations

import orjson

from samband.config.model import SystemConfig
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.sandbox import Exchange, PowerOfficeSandbox
from tests.support.poweroffice import KEYS, serve


def summary(log: list[Exchange]) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in log]


def test_recorded_session() -> None:
    box = PowerOfficeSandbox()  # the real limit, 10 requests/second
    box.seed(25, 11, only=("Customers",))
    box.clock.advance(60)
    box.recording = True
    server = serve(box)
    try:
        config = SystemConfig.model_validate(
            {"kind": "poweroffice-go", "base_url": f"{server.url}/v2", "page_size": 10}
        )
        po = PowerOfficeConnector("po", config, KEYS, overlap_seconds=0)
        po.wanted_fields["Customers"] = {"Name", "OrganizationNumber"}

        # 1. first read: a token, then three pages
        pages = list(po.read("Customers", None))
        assert [len(p.records) for p in pages] == [10, 10, 5]
        cursor = pages[-1].cursor
        assert summary(box.log) == [
            ("POST", "/OAuth/Token", 200),
            ("GET", "/v2/Customers", 200),
            ("GET", "/v2/Customers", 200),
            ("GET", "/v2/Customers", 200),
        ]
        token_call = box.log[0]
        assert token_call.request_headers["authorization"].startswith("Basic ")
        assert token_call.request_headers["ocp-apim-subscription-key"] == KEYS["subscription_key"]
        assert token_call.request_body == b"grant_type=client_credentials"
        assert token_call.json()["expires_in"] == 1200
        paging = [orjson.loads(e.response_headers["x-pagination"]) for e in box.log[1:]]
        assert paging[0]["TotalCount"] == 25 and paging[0]["TotalPages"] == 3
        assert "nextPageLink" in paging[0] and "nextPageLink" in paging[1]
        assert "nextPageLink" not in paging[2]
        # keyset paging: the next page starts at the last timestamp read (repeating that
        # one record, so the page is one larger)
        assert [e.params["PageSize"] for e in box.log[1:]] == ["10", "11", "11"]
        assert "lastChangedDateTimeOffsetGreaterThan" not in box.log[1].params
        for exchange in box.log[1:]:
            assert exchange.request_headers["authorization"].startswith("Bearer ")
            assert exchange.request_headers["ocp-apim-subscription-key"] == KEYS["subscription_key"]
            assert exchange.params["OrderBy"] == "LastChangedDateTimeOffset"
        for previous, exchange in zip(box.log[1:3], box.log[2:4], strict=True):
            last = previous.json()[-1]["LastChangedDateTimeOffset"]
            bound = exchange.params["lastChangedDateTimeOffsetGreaterThan"]
            assert bound[:19] == last[:19] and bound < last.replace("Z", "+00:00")
        first_token = box.log[1].request_headers["authorization"]

        # 2. a JSON Patch update of one property
        box.clock.advance(10)
        target = sorted(box.records("Customers"))[3]
        po.update("Customers", str(target), {"Name": "Omdøpt AS"})
        patch = box.log[-1]
        assert (patch.method, patch.path, patch.status) == ("PATCH", f"/v2/Customers/{target}", 200)
        assert patch.request_headers["content-type"] == "application/json-patch+json"
        assert orjson.loads(patch.request_body) == [
            {"op": "replace", "path": "/Name", "value": "Omdøpt AS"}
        ]

        # 3. twenty minutes later the token has expired: 401, a new token, the call again
        box.clock.advance(20 * 60)
        mark = len(box.log)
        changed = list(po.read("Customers", cursor))
        assert summary(box.log[mark:]) == [
            ("GET", "/v2/Customers", 401),
            ("POST", "/OAuth/Token", 200),
            ("GET", "/v2/Customers", 200),
        ]
        assert box.log[mark + 2].request_headers["authorization"] != first_token
        assert box.tokens_issued == 2

        # 4. ... and that read used the change filter: only the renamed customer came back
        params = box.log[-1].params
        assert "lastChangedDateTimeOffsetGreaterThan" in params
        assert params["OrderBy"] == "LastChangedDateTimeOffset"
        assert [(r.id, r.data["Name"]) for p in changed for r in p.records] == [
            (str(target), "Omdøpt AS")
        ]

        # 5. a 429 from the API is retried after Retry-After
        box.faults.update(burst_429=1)
        mark = len(box.log)
        assert po.get("Customers", str(target)) is not None
        assert summary(box.log[mark:]) == [
            ("GET", f"/v2/Customers/{target}", 429),
            ("GET", f"/v2/Customers/{target}", 200),
        ]
        assert box.log[mark].response_headers["retry-after"] == "1"
        assert po.stats.throttled == 1 and po.stats.retries == 1
        assert box.throttled == 0  # the client's own pacing kept under the real limit
    finally:
        server.stop()
