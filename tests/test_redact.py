"""What the HTTP trace masks: credentials in headers, form bodies, JSON answers, query
strings and free text; nothing else."""

from __future__ import annotations

import json

from samband import redact


def test_secret_headers_are_masked_and_others_kept() -> None:
    shown = redact.headers(
        {
            "Authorization": "Bearer abc.def",
            "refreshToken": "webcrm-refresh-1",
            "Ocp-Apim-Subscription-Key": "sub-key-1",
            "Accept": "application/json",
        }
    )
    assert shown == {
        "Authorization": "***",
        "refreshToken": "***",
        "Ocp-Apim-Subscription-Key": "***",
        "Accept": "application/json",
    }


def test_form_and_json_bodies_mask_token_fields() -> None:
    form = redact.body(
        b"grant_type=refresh_token&refresh_token=r-123&client_id=me&client_secret=s-456"
        b"&password=p-789",
        "application/x-www-form-urlencoded",
    )
    assert "r-123" not in form and "s-456" not in form and "p-789" not in form
    assert "grant_type=refresh_token" in form and "client_id=me" in form
    answer = redact.body(
        json.dumps(
            {"access_token": "a-1", "refresh_token": "r-2", "expires_in": 600, "items": [1]}
        ).encode(),
        "application/json",
    )
    assert "a-1" not in answer and "r-2" not in answer
    assert json.loads(answer)["expires_in"] == 600


def test_query_string_secrets_and_remembered_values_are_masked() -> None:
    url = redact.url("https://api.example/x?api_key=k-1&code=c-2&page=3")
    assert "k-1" not in url and "c-2" not in url and "page=3" in url
    redact.remember(["remembered-secret-value"])
    assert redact.scrub("echoed: remembered-secret-value!") == "echoed: ***!"
    assert redact.scrub("Authorization: Bearer eyJ.abc") == "Authorization: Bearer ***"
