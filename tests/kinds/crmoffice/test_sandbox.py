"""The CRMOffice sandbox's own contract, spoken to with plain HTTP (no connector)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox

REDIRECT = "http://127.0.0.1:9/callback"
CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


@pytest.fixture
def box() -> CrmOfficeSandbox:
    sandbox = CrmOfficeSandbox()
    sandbox.seed(3, 2)
    return sandbox


@pytest.fixture
def http(box: CrmOfficeSandbox) -> Iterator[httpx.Client]:
    server = box.serve()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


def authorize(http: httpx.Client, **extra: str) -> dict[str, str]:
    params = {
        "client_id": "sandbox-client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "crmoffice offline_access",
        "state": "xyz",
        **extra,
    }
    answer = http.get("/connect/authorize", params=params)
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def token(http: httpx.Client, **fields: str) -> httpx.Response:
    return http.post("/connect/token", data={**CLIENT, **fields})


def bearer(http: httpx.Client) -> dict[str, str]:
    code = authorize(http)["code"]
    answer = token(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_authorize_errors(http: httpx.Client) -> None:
    unknown = http.get("/connect/authorize", params={"client_id": "x", "redirect_uri": REDIRECT})
    assert unknown.status_code == 400 and "unauthorized_client" in unknown.text
    assert authorize(http, response_type="token")["error"] == "unsupported_response_type"
    refused = authorize(http, scope="offline_access")
    assert refused["error"] == "invalid_scope" and refused["state"] == "xyz"


def test_codes_work_once_and_clients_authenticate(http: httpx.Client) -> None:
    code = authorize(http)["code"]
    wrong = http.post(
        "/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=("sandbox-client", "wrong"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    good = http.post(
        "/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=("sandbox-client", "sandbox-secret"),  # client_secret_basic
    )
    body = good.json()
    assert good.status_code == 200 and body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600 and body["access_token"].count(".") == 2
    again = token(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_is_checked(http: httpx.Client) -> None:
    verifier = "v" * 50
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    code = authorize(http, code_challenge=challenge, code_challenge_method="S256")["code"]
    bad = token(
        http,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier="x" * 50,
    )
    assert bad.status_code == 400
    code = authorize(http, code_challenge=challenge, code_challenge_method="S256")["code"]
    ok = token(
        http,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert ok.status_code == 200


def test_tokens_expire_on_the_sandbox_clock(http: httpx.Client, box: CrmOfficeSandbox) -> None:
    headers = bearer(http)
    assert http.get("/users", headers=headers).status_code == 200
    box.clock.advance(3601)
    expired = http.get("/users", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["content-type"].startswith("application/problem+json")
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


def test_problems_are_rfc7807(http: httpx.Client) -> None:
    headers = bearer(http)
    missing = http.get("/companies/424242", headers=headers)
    assert missing.status_code == 404
    problem: dict[str, Any] = missing.json()
    assert {"type", "title", "status", "detail", "traceId"} <= set(problem)
    too_big = http.get("/companies", params={"limit": 1000}, headers=headers)
    assert too_big.status_code == 400 and "limit" in too_big.json()["errors"]
    forged = http.get("/companies", params={"continuationToken": "nonsense"}, headers=headers)
    assert forged.status_code == 400 and "continuationToken" in forged.json()["errors"]
    bad_since = http.get("/companies", params={"updatedSince": "yesterday"}, headers=headers)
    assert bad_since.status_code == 400
    not_json = http.post(
        "/companies",
        content=b"{",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400


def test_merge_patch_and_tombstones(http: httpx.Client, box: CrmOfficeSandbox) -> None:
    headers = bearer(http)
    created = http.post(
        "/companies",
        json={"name": "Nytt AS", "visitAddress": {"postalArea": "Bergen", "postCode": "5003"}},
        headers=headers,
    )
    assert created.status_code == 201
    record = created.json()
    assert created.headers["location"] == f"/companies/{record['id']}"
    patched = http.patch(
        f"/companies/{record['id']}",
        json={"visitAddress": {"postCode": None}, "phone": "+47 55 55 55 55"},
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    ).json()
    assert patched["visitAddress"] == {"postalArea": "Bergen"}
    assert patched["updatedAt"] > record["updatedAt"]
    since = patched["updatedAt"]
    assert http.delete(f"/companies/{record['id']}", headers=headers).status_code == 204
    changes = http.get(
        "/companies", params={"updatedSince": since, "includeDeleted": "true"}, headers=headers
    ).json()["items"]
    assert {"id": record["id"], "isDeleted": True} == {
        k: v for k, v in changes[-1].items() if k != "updatedAt"
    }
    hidden = http.get("/companies", params={"updatedSince": since}, headers=headers).json()
    assert all(item["id"] != record["id"] for item in hidden["items"])


def test_rate_limit_answers_429_with_retry_after(http: httpx.Client, box: CrmOfficeSandbox) -> None:
    headers = bearer(http)
    box.rate_limit = (2, 60.0)
    assert [http.get("/users", headers=headers).status_code for _ in range(2)] == [200, 200]
    limited = http.get("/users", headers=headers)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining"] == "0"
    box.clock.advance(61)
    assert http.get("/users", headers=headers).status_code == 200


def test_seed_is_deterministic() -> None:
    one, two = CrmOfficeSandbox(), CrmOfficeSandbox()
    one.seed(4, 5)
    two.seed(4, 5)

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("createdAt", "updatedAt")} for r in rows]

    for collection in ("companies", "contacts", "activities", "users"):
        assert strip(one.records(collection)) == strip(two.records(collection))
        assert len(one.records(collection)) == 4


def test_first_page_only_answers_page_one_without_a_continuation_token(
    http: httpx.Client, box: CrmOfficeSandbox
) -> None:
    headers = bearer(http)
    paged = http.get("/contacts", params={"limit": 2}, headers=headers).json()
    assert len(paged["items"]) == 2 and paged["continuationToken"] is not None
    box.first_page_only = True  # a real API that pages another way, as the connector sees it
    cut = http.get("/contacts", params={"limit": 2}, headers=headers).json()
    assert cut["items"] == paged["items"] and cut["continuationToken"] is None
